/**
 * Catching events that name variables for what they caught (Camunda 7):
 * camunda:errorCodeVariable and errorMessageVariable on error boundary
 * events and error event subprocess starts, camunda:escalationCodeVariable on
 * escalation catches. The message comes from the worker (throw_bpmn_error's
 * error_message) or from the bpmn:error's camunda:errorMessage (a literal or
 * an expression) of the end event that throws it.
 */
import { createTestDb, type TestDb } from '../../helpers/db';
import { deployXml } from '../../helpers/engine';
import { actors, fetchAndLock, getInstance, openTask, startProcess, type Actors } from './support';

let db: TestDb;
let as: Actors;

function definitions(body: string): string {
  return `<?xml version="1.0" encoding="UTF-8"?>
<definitions xmlns="http://www.omg.org/spec/BPMN/20100524/MODEL" xmlns:camunda="http://camunda.org/schema/1.0/bpmn" id="d" targetNamespace="http://pgbpm.test">
  <error id="declined" errorCode="DECLINED" camunda:errorMessage="card \${card} declined"/>
  <error id="fixed" errorCode="OUT_OF_STOCK" camunda:errorMessage="nothing left"/>
  <escalation id="late" escalationCode="LATE"/>
  ${body}
</definitions>`;
}

beforeAll(async () => {
  db = await createTestDb();
  as = await actors(db);
  const processes: Record<string, string> = {
    cv_worker: `
    <process id="cv_worker" isExecutable="true">
      <startEvent id="s"/><sequenceFlow id="f1" sourceRef="s" targetRef="charge"/>
      <serviceTask id="charge" camunda:type="external" camunda:topic="cv-charge"/>
      <sequenceFlow id="f2" sourceRef="charge" targetRef="done"/><endEvent id="done"/>
      <boundaryEvent id="failed" attachedToRef="charge">
        <errorEventDefinition camunda:errorCodeVariable="errorCode" camunda:errorMessageVariable="errorMessage"/>
      </boundaryEvent>
      <sequenceFlow id="f3" sourceRef="failed" targetRef="handle"/><userTask id="handle"/>
    </process>`,
    cv_nested: `
    <process id="cv_nested" isExecutable="true">
      <startEvent id="s"/><sequenceFlow id="f1" sourceRef="s" targetRef="sub"/>
      <subProcess id="sub">
        <startEvent id="is"/><sequenceFlow id="i1" sourceRef="is" targetRef="charge"/>
        <serviceTask id="charge" camunda:type="external" camunda:topic="cv-nested"/>
        <sequenceFlow id="i2" sourceRef="charge" targetRef="ie"/><endEvent id="ie"/>
      </subProcess>
      <sequenceFlow id="f2" sourceRef="sub" targetRef="done"/><endEvent id="done"/>
      <boundaryEvent id="failed" attachedToRef="sub">
        <errorEventDefinition errorRef="declined" camunda:errorCodeVariable="code" camunda:errorMessageVariable="why"/>
      </boundaryEvent>
      <sequenceFlow id="f3" sourceRef="failed" targetRef="handle"/><userTask id="handle"/>
    </process>`,
    cv_end_event: `
    <process id="cv_end_event" isExecutable="true">
      <startEvent id="s"/><sequenceFlow id="f1" sourceRef="s" targetRef="sub"/>
      <subProcess id="sub">
        <startEvent id="is"/><sequenceFlow id="i1" sourceRef="is" targetRef="decline"/>
        <endEvent id="decline"><errorEventDefinition errorRef="declined"/></endEvent>
      </subProcess>
      <sequenceFlow id="f2" sourceRef="sub" targetRef="done"/><endEvent id="done"/>
      <boundaryEvent id="failed" attachedToRef="sub">
        <errorEventDefinition errorRef="declined" camunda:errorCodeVariable="code" camunda:errorMessageVariable="why"/>
      </boundaryEvent>
      <sequenceFlow id="f3" sourceRef="failed" targetRef="handle"/><userTask id="handle"/>
    </process>`,
    cv_event_subprocess: `
    <process id="cv_event_subprocess" isExecutable="true">
      <startEvent id="s"/><sequenceFlow id="f1" sourceRef="s" targetRef="out"/>
      <endEvent id="out"><errorEventDefinition errorRef="fixed"/></endEvent>
      <subProcess id="onError" triggeredByEvent="true">
        <startEvent id="es"><errorEventDefinition camunda:errorCodeVariable="code" camunda:errorMessageVariable="why"/></startEvent>
        <sequenceFlow id="e1" sourceRef="es" targetRef="handle"/><userTask id="handle"/>
      </subProcess>
    </process>`,
    cv_escalation: `
    <process id="cv_escalation" isExecutable="true">
      <startEvent id="s"/><sequenceFlow id="f1" sourceRef="s" targetRef="sub"/>
      <subProcess id="sub">
        <startEvent id="is"/><sequenceFlow id="i1" sourceRef="is" targetRef="raise"/>
        <intermediateThrowEvent id="raise"><escalationEventDefinition escalationRef="late"/></intermediateThrowEvent>
        <sequenceFlow id="i2" sourceRef="raise" targetRef="work"/><userTask id="work"/>
      </subProcess>
      <boundaryEvent id="escalated" attachedToRef="sub" cancelActivity="false">
        <escalationEventDefinition camunda:escalationCodeVariable="escalation"/>
      </boundaryEvent>
      <sequenceFlow id="f3" sourceRef="escalated" targetRef="notify"/><userTask id="notify"/>
    </process>`,
    cv_child: `
    <process id="cv_child" isExecutable="true">
      <startEvent id="s"/><sequenceFlow id="f1" sourceRef="s" targetRef="decline"/>
      <endEvent id="decline"><errorEventDefinition errorRef="declined"/></endEvent>
    </process>`,
    cv_parent: `
    <process id="cv_parent" isExecutable="true">
      <startEvent id="s"/><sequenceFlow id="f1" sourceRef="s" targetRef="call"/>
      <callActivity id="call" calledElement="cv_child">
        <extensionElements><camunda:in source="card" target="card"/></extensionElements>
      </callActivity>
      <sequenceFlow id="f2" sourceRef="call" targetRef="done"/><endEvent id="done"/>
      <boundaryEvent id="failed" attachedToRef="call">
        <errorEventDefinition errorRef="declined" camunda:errorCodeVariable="code" camunda:errorMessageVariable="why"/>
      </boundaryEvent>
      <sequenceFlow id="f3" sourceRef="failed" targetRef="handle"/><userTask id="handle"/>
    </process>`,
  };
  for (const [key, xml] of Object.entries(processes)) await deployXml(as.admin, [{ name: `${key}.bpmn`, xml: definitions(xml) }]);
});

afterAll(() => db.close());

test('an error boundary on an external task receives the code and the worker\'s message', async () => {
  const started = await startProcess(as.admin, 'cv_worker', { amount: 5 });
  const [task] = await fetchAndLock(as.engine, 'cv-charge', 'w1');
  await as.engine.query(`select bpm.throw_bpmn_error($1, 'w1', 'LIMIT', '{"tries": 1}', 'over the card limit')`, [task?.id]);
  expect((await getInstance(as.admin, started.id)).variables).toEqual({ amount: 5, tries: 1, errorCode: 'LIMIT', errorMessage: 'over the card limit' });
  expect((await openTask(as.admin, started.id, 'handle')).state).toBe('open');
  const { rows } = await as.admin.query<{ error_message: string }>('select error_message from bpm.external_task where id = $1', [task?.id]);
  expect(rows[0].error_message).toBe('BPMN error LIMIT: over the card limit');
});

test('without a message the message variable is null', async () => {
  const started = await startProcess(as.admin, 'cv_worker');
  const [task] = await fetchAndLock(as.engine, 'cv-charge', 'w1');
  await as.engine.query(`select bpm.throw_bpmn_error($1, 'w1', 'LIMIT')`, [task?.id]);
  expect((await getInstance(as.admin, started.id)).variables).toEqual({ errorCode: 'LIMIT', errorMessage: null });
});

test('an error from a task inside a subprocess, caught by the subprocess\'s boundary, sets its variables', async () => {
  const started = await startProcess(as.admin, 'cv_nested');
  const [task] = await fetchAndLock(as.engine, 'cv-nested', 'w1');
  await as.engine.query(`select bpm.throw_bpmn_error($1, 'w1', 'DECLINED', '{}', 'insufficient funds')`, [task?.id]);
  expect((await getInstance(as.admin, started.id)).variables).toEqual({ code: 'DECLINED', why: 'insufficient funds' });
  expect((await openTask(as.admin, started.id, 'handle')).state).toBe('open');
});

test('an error end event throws its error\'s camunda:errorMessage, evaluated over the variables', async () => {
  const started = await startProcess(as.admin, 'cv_end_event', { card: '4711' });
  expect((await getInstance(as.admin, started.id)).variables).toEqual({ card: '4711', code: 'DECLINED', why: 'card 4711 declined' });
});

test('an error event subprocess start sets its code and message variables', async () => {
  const started = await startProcess(as.admin, 'cv_event_subprocess');
  expect((await getInstance(as.admin, started.id)).variables).toEqual({ code: 'OUT_OF_STOCK', why: 'nothing left' });
  expect((await openTask(as.admin, started.id, 'handle')).state).toBe('open');
});

test('a non-interrupting escalation boundary sets the escalation code variable; the subprocess goes on', async () => {
  const started = await startProcess(as.admin, 'cv_escalation');
  expect((await getInstance(as.admin, started.id)).variables).toEqual({ escalation: 'LATE' });
  expect((await openTask(as.admin, started.id, 'notify')).state).toBe('open');
  expect((await openTask(as.admin, started.id, 'work')).state).toBe('open');
});

test('an error thrown by a called process reaches the call activity\'s boundary with its code and message (evaluated in the child)', async () => {
  const started = await startProcess(as.admin, 'cv_parent', { card: '0815' });
  expect((await getInstance(as.admin, started.id)).variables).toEqual({ card: '0815', code: 'DECLINED', why: 'card 0815 declined' });
  expect((await openTask(as.admin, started.id, 'handle')).state).toBe('open');
});
