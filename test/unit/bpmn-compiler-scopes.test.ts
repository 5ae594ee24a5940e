/**
 * BPMN compiler, issue 5: embedded and event subprocesses (scopes), call
 * activities, multi-instance, input/output mappings and link events, compiled
 * to graph.ts (scope, start, triggeredByEvent, interrupting,
 * eventSubprocesses, inputs/outputs, loop, call, link events), and what is
 * still refused. The fixtures under test/fixtures/bpmn/scopes/ are deployed
 * by the engine tests.
 */
import fs from 'node:fs';
import path from 'node:path';
import { compileBpmn, formatProblems } from '../../compiler';
import type { CompiledNode, CompiledProcess, CompileProblem } from '../../compiler/graph';

const SCOPES = path.join(__dirname, '..', 'fixtures', 'bpmn', 'scopes');

function lines(problems: CompileProblem[]): string[] {
  return problems.length === 0 ? [] : formatProblems(problems).split('\n');
}

async function compileOk(name: string, xml: string | Buffer): Promise<{ process: CompiledProcess; warnings: string[] }> {
  const r = await compileBpmn(name, xml);
  if (!r.ok) throw new Error(`${name} should compile:\n${formatProblems(r.problems)}`);
  expect(r.resource.processes).toHaveLength(1);
  return { process: r.resource.processes[0], warnings: lines(r.warnings) };
}

async function fixture(name: string): Promise<CompiledProcess> {
  const { process, warnings } = await compileOk(name, fs.readFileSync(path.join(SCOPES, name)));
  expect(warnings).toEqual([]);
  return process;
}

async function problemsOf(xml: string): Promise<string[]> {
  const r = await compileBpmn('inline.bpmn', xml);
  if (r.ok) throw new Error('inline.bpmn should not compile');
  return lines(r.problems);
}

function node(p: CompiledProcess, id: string): CompiledNode {
  const n = p.graph.nodes[id];
  if (n === undefined) throw new Error(`no node ${id}`);
  return n;
}

function model(body: string, extraRoot = ''): string {
  return `<?xml version="1.0" encoding="UTF-8"?>
<definitions xmlns="http://www.omg.org/spec/BPMN/20100524/MODEL"
  xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
  xmlns:camunda="http://camunda.org/schema/1.0/bpmn"
  xmlns:zeebe="http://camunda.org/schema/zeebe/1.0"
  id="defs" targetNamespace="http://pgbpm.test">
  <process id="p" isExecutable="true">
${body}
  </process>
${extraRoot}
</definitions>`;
}

/** s → t → e around an activity t. */
function around(activity: string): string {
  return `<startEvent id="s"/><sequenceFlow id="f0" sourceRef="s" targetRef="t"/>
    ${activity}
    <sequenceFlow id="f1" sourceRef="t" targetRef="e"/><endEvent id="e"/>`;
}

/** A value reading one variable (`vars`: required ones). */
function read(src: string, name: string, required = true): { expr: { src: string; path: string; vars: string[] } } {
  return { expr: { src, path: `$."${name}"`, vars: required ? [name] : [] } };
}

// ---------------------------------------------------------------------------
// Fixtures for the engine tests
// ---------------------------------------------------------------------------

describe('scopes/ fixtures', () => {
  test('subprocess-parallel-timer.bpmn: inner nodes carry scope, the subprocess has start and its boundary timer', async () => {
    const p = await fixture('subprocess-parallel-timer.bpmn');
    expect(p.graph.start).toBe('Start');
    expect(p.graph.eventSubprocesses).toBeUndefined();
    expect(node(p, 'Review')).toEqual({
      id: 'Review', type: 'subProcess', name: 'Review', in: ['Flow_ToReview'], out: ['Flow_ToDone'],
      default: null, boundary: ['ReviewTimeout'], start: 'ReviewStart',
    });
    for (const id of ['ReviewStart', 'Fork', 'Legal', 'Finance', 'Tech', 'Join', 'ReviewEnd']) expect(node(p, id).scope).toBe('Review');
    for (const id of ['Start', 'Review', 'Done', 'ReviewTimeout', 'TimedOut']) expect(node(p, id).scope).toBeUndefined();
    expect(node(p, 'Fork').out).toEqual(['Flow_ToLegal', 'Flow_ToFinance', 'Flow_ToTech']);
    expect(node(p, 'ReviewTimeout')).toEqual({
      id: 'ReviewTimeout', type: 'boundaryEvent', name: '1 hour', in: [], out: ['Flow_ToTimedOut'], attachedTo: 'Review', cancelActivity: true,
      event: { kind: 'timer', timer: { kind: 'duration', value: { literal: 'PT1H' } } },
    });
  });

  test('event-subprocess-message.bpmn: a non-interrupting message event subprocess', async () => {
    const p = await fixture('event-subprocess-message.bpmn');
    expect(p.graph.start).toBe('Start');
    expect(p.graph.eventStarts).toBeUndefined();
    expect(p.graph.eventSubprocesses).toEqual(['OnUpdate']);
    expect(node(p, 'OnUpdate')).toEqual({ id: 'OnUpdate', type: 'subProcess', name: 'On update', in: [], out: [], triggeredByEvent: true });
    expect(node(p, 'UpdateReceived')).toEqual({
      id: 'UpdateReceived', type: 'startEvent', name: 'Update received', in: [], out: ['Flow_ToNote'], scope: 'OnUpdate',
      interrupting: false, event: { kind: 'message', name: { literal: 'order-update' }, correlationKey: null },
    });
    expect(node(p, 'NoteUpdate').scope).toBe('OnUpdate');
  });

  test('multi-instance-collection.bpmn: parallel user task over a collection with completion condition and output collection', async () => {
    const p = await fixture('multi-instance-collection.bpmn');
    expect(node(p, 'Vote').loop).toEqual({
      sequential: false,
      collection: read('${voters}', 'voters'),
      elementVariable: 'voter',
      completionCondition: { src: '${nrOfCompletedInstances >= 60}', path: '($."nrOfCompletedInstances" >= 60)', vars: ['nrOfCompletedInstances'] },
      outputCollection: 'votes',
      outputElement: read('${approved}', 'approved'),
    });
    expect(node(p, 'Vote').userTask).toEqual({ assignee: read('${voter}', 'voter') });
  });

  test('call-parent / call-child / call-grandchild.bpmn: camunda:in/out, zeebe:calledElement + ioMapping, task mappings', async () => {
    const parent = await fixture('call-parent.bpmn');
    expect(node(parent, 'CallChild')).toEqual({
      id: 'CallChild', type: 'callActivity', name: 'Call child', in: ['Flow_ToCall'], out: ['Flow_ToCheck'], default: null, boundary: [],
      call: {
        processId: { literal: 'scopes-call-child' },
        binding: 'latest',
        inAll: false,
        in: [
          { target: 'orderId', value: read('${orderId}', 'orderId', false) },
          { target: 'doubled', value: { expr: { src: '${amount * 2}', path: '($."amount" * 2)', vars: ['amount'] } } },
        ],
        outAll: false,
        out: [{ target: 'result', value: read('${childResult}', 'childResult', false) }],
        businessKey: 'parent',
      },
    });
    const child = await fixture('call-child.bpmn');
    expect(node(child, 'CallGrandchild').call).toEqual({
      processId: { literal: 'scopes-call-grandchild' },
      binding: 'latest',
      inAll: false,
      in: [
        { target: 'orderId', value: read('=orderId', 'orderId') },
        { target: 'value', value: { expr: { src: '=doubled + 1', path: '($."doubled" + 1)', vars: ['doubled'] } } },
      ],
      outAll: false,
      out: [{ target: 'childResult', value: read('=grandchildResult', 'grandchildResult') }],
    });
    expect(node(child, 'CallGrandchild').inputs).toBeUndefined();
    const grandchild = await fixture('call-grandchild.bpmn');
    expect(node(grandchild, 'Work').inputs).toEqual([
      { target: 'hint', value: { literal: 'Compute the result' } },
      { target: 'order', value: read('${orderId}', 'orderId') },
    ]);
    expect(node(grandchild, 'Work').outputs).toEqual([{ target: 'grandchildResult', value: read('${value}', 'value') }]);
  });

  test('link-events.bpmn: the throw event names its catch event', async () => {
    const p = await fixture('link-events.bpmn');
    expect(node(p, 'GoToSecond')).toEqual({
      id: 'GoToSecond', type: 'intermediateThrowEvent', name: 'to page 2', in: ['Flow_ToThrow'], out: [],
      event: { kind: 'link', name: 'page2', target: 'FromFirst' },
    });
    expect(node(p, 'FromFirst')).toEqual({
      id: 'FromFirst', type: 'intermediateCatchEvent', name: 'from page 1', in: [], out: ['Flow_ToSecond'], event: { kind: 'link', name: 'page2' },
    });
  });
});

// ---------------------------------------------------------------------------
// Subprocesses and event subprocesses
// ---------------------------------------------------------------------------

describe('subprocesses', () => {
  test('nested subprocesses nest scopes; event subprocesses are listed by their enclosing subprocess', async () => {
    const { process: p, warnings } = await compileOk('nested.bpmn', model(around(`
    <subProcess id="t">
      <startEvent id="s1"/><sequenceFlow id="g1" sourceRef="s1" targetRef="inner"/>
      <subProcess id="inner">
        <startEvent id="s2"/><sequenceFlow id="g2" sourceRef="s2" targetRef="work"/>
        <userTask id="work"/><sequenceFlow id="g3" sourceRef="work" targetRef="e2"/><endEvent id="e2"/>
      </subProcess>
      <sequenceFlow id="g4" sourceRef="inner" targetRef="e1"/><endEvent id="e1"/>
      <subProcess id="onError" triggeredByEvent="true">
        <startEvent id="es1"><errorEventDefinition errorRef="E"/></startEvent>
        <sequenceFlow id="g5" sourceRef="es1" targetRef="ee1"/><endEvent id="ee1"/>
      </subProcess>
      <subProcess id="onLate" triggeredByEvent="true">
        <startEvent id="es2" isInterrupting="false"><escalationEventDefinition/></startEvent>
        <sequenceFlow id="g6" sourceRef="es2" targetRef="ee2"/><endEvent id="ee2"/>
      </subProcess>
      <subProcess id="onTimer" triggeredByEvent="true">
        <startEvent id="es3" isInterrupting="false"><timerEventDefinition><timeCycle>\${every}</timeCycle></timerEventDefinition></startEvent>
        <sequenceFlow id="g7" sourceRef="es3" targetRef="ee3"/><endEvent id="ee3"/>
      </subProcess>
      <subProcess id="onSignal" triggeredByEvent="true">
        <startEvent id="es4"><signalEventDefinition signalRef="S"/></startEvent>
        <sequenceFlow id="g8" sourceRef="es4" targetRef="ee4"/><endEvent id="ee4"/>
      </subProcess>
    </subProcess>`), '<error id="E" errorCode="FAIL"/><signal id="S" name="${signalName}"/>'));
    expect(warnings).toEqual([]);
    expect(p.graph.eventSubprocesses).toBeUndefined();
    expect(node(p, 't')).toEqual({
      id: 't', type: 'subProcess', name: null, in: ['f0'], out: ['f1'], default: null, boundary: [], start: 's1',
      eventSubprocesses: ['onError', 'onLate', 'onTimer', 'onSignal'],
    });
    expect(node(p, 'inner')).toMatchObject({ scope: 't', start: 's2' });
    expect(node(p, 'work').scope).toBe('inner');
    expect(node(p, 'onError')).toEqual({ id: 'onError', type: 'subProcess', name: null, in: [], out: [], triggeredByEvent: true, scope: 't' });
    expect(node(p, 'es1')).toEqual({
      id: 'es1', type: 'startEvent', name: null, in: [], out: ['g5'], scope: 'onError', interrupting: true, event: { kind: 'error', code: 'FAIL' },
    });
    expect(node(p, 'es2')).toMatchObject({ scope: 'onLate', interrupting: false, event: { kind: 'escalation', code: null } });
    expect(node(p, 'es3')).toMatchObject({
      interrupting: false, event: { kind: 'timer', timer: { kind: 'cycle', value: read('${every}', 'every') } },
    });
    expect(node(p, 'es4')).toMatchObject({ interrupting: true, event: { kind: 'signal', name: read('${signalName}', 'signalName') } });
  });

  test('zeebe message event subprocess at process level: correlation key from zeebe:subscription', async () => {
    const { process: p } = await compileOk('esp.bpmn', model(`${around('<task id="t"/>')}
    <subProcess id="cancel" triggeredByEvent="true">
      <startEvent id="cs"><messageEventDefinition messageRef="M"/></startEvent>
      <sequenceFlow id="c1" sourceRef="cs" targetRef="ce"/><endEvent id="ce"><terminateEventDefinition/></endEvent>
    </subProcess>`, `<message id="M" name="cancel"><extensionElements><zeebe:subscription correlationKey="=orderId"/></extensionElements></message>`));
    expect(p.graph.eventSubprocesses).toEqual(['cancel']);
    expect(p.graph.eventStarts).toBeUndefined();
    expect(node(p, 'cs')).toMatchObject({
      scope: 'cancel', interrupting: true, event: { kind: 'message', name: { literal: 'cancel' }, correlationKey: read('=orderId', 'orderId').expr },
    });
    expect(node(p, 'ce')).toMatchObject({ scope: 'cancel', terminate: true });
  });

  test('boundary events on subprocesses and call activities (all supported kinds); inclusive joins stay within their scope', async () => {
    const { process: p } = await compileOk('boundaries.bpmn', model(`
    <startEvent id="s"/><sequenceFlow id="f0" sourceRef="s" targetRef="sub"/>
    <subProcess id="sub">
      <startEvent id="ss"/><sequenceFlow id="i0" sourceRef="ss" targetRef="split"/>
      <inclusiveGateway id="split"/>
      <sequenceFlow id="i1" sourceRef="split" targetRef="a"><conditionExpression>\${x}</conditionExpression></sequenceFlow>
      <sequenceFlow id="i2" sourceRef="split" targetRef="b"><conditionExpression>\${y}</conditionExpression></sequenceFlow>
      <task id="a"/><task id="b"/>
      <sequenceFlow id="i3" sourceRef="a" targetRef="join"/><sequenceFlow id="i4" sourceRef="b" targetRef="join"/>
      <inclusiveGateway id="join"/><sequenceFlow id="i5" sourceRef="join" targetRef="se"/><endEvent id="se"/>
    </subProcess>
    <sequenceFlow id="f1" sourceRef="sub" targetRef="call"/>
    <callActivity id="call" calledElement="other"/>
    <sequenceFlow id="f2" sourceRef="call" targetRef="e"/><endEvent id="e"/>
    <boundaryEvent id="bm" attachedToRef="sub" cancelActivity="false"><messageEventDefinition messageRef="M"/></boundaryEvent>
    <boundaryEvent id="bs" attachedToRef="sub"><signalEventDefinition signalRef="S"/></boundaryEvent>
    <boundaryEvent id="be" attachedToRef="call"><errorEventDefinition/></boundaryEvent>
    <boundaryEvent id="bx" attachedToRef="call" cancelActivity="false"><escalationEventDefinition/></boundaryEvent>
    <sequenceFlow id="b1" sourceRef="bm" targetRef="e2"/><sequenceFlow id="b2" sourceRef="bs" targetRef="e2"/>
    <sequenceFlow id="b3" sourceRef="be" targetRef="e2"/><sequenceFlow id="b4" sourceRef="bx" targetRef="e2"/><endEvent id="e2"/>`,
    '<message id="M" name="m"/><signal id="S" name="s"/>'));
    expect(node(p, 'sub').boundary).toEqual(['bm', 'bs']);
    expect(node(p, 'call').boundary).toEqual(['be', 'bx']);
    expect(node(p, 'be')).toMatchObject({ attachedTo: 'call', cancelActivity: true, error: { code: null }, event: { kind: 'error', code: null } });
    expect(node(p, 'bx')).toMatchObject({ attachedTo: 'call', cancelActivity: false, event: { kind: 'escalation', code: null } });
    expect(node(p, 'join').upstream).toEqual(['ss', 'split', 'a', 'b']);
  });

  test('refused: start events of subprocesses, flows across scopes, boundary across scopes, event subprocess rules', async () => {
    expect(await problemsOf(model(`
    <startEvent id="s"/><sequenceFlow id="f0" sourceRef="s" targetRef="sub"/>
    <subProcess id="sub">
      <startEvent id="ms"><messageEventDefinition messageRef="M"/></startEvent>
      <task id="in"/><sequenceFlow id="cross" sourceRef="in" targetRef="e"/>
      <boundaryEvent id="bOut" attachedToRef="sub"><timerEventDefinition><timeDuration>PT1M</timeDuration></timerEventDefinition></boundaryEvent>
    </subProcess>
    <sequenceFlow id="f1" sourceRef="sub" targetRef="e"/><endEvent id="e"/>
    <subProcess id="empty"><task id="lonely"/></subProcess>
    <subProcess id="twoStarts"><startEvent id="a1"/><startEvent id="a2"/></subProcess>
    <subProcess id="esp" triggeredByEvent="true">
      <startEvent id="espStart"/>
    </subProcess>
    <subProcess id="espErr" triggeredByEvent="true">
      <startEvent id="errStart" isInterrupting="false"><errorEventDefinition/></startEvent>
      <startEvent id="second"><signalEventDefinition signalRef="S"/></startEvent>
    </subProcess>
    <subProcess id="espNoStart" triggeredByEvent="true"/>
    <subProcess id="espFlows" triggeredByEvent="true">
      <startEvent id="fs"><escalationEventDefinition/></startEvent>
      <multiInstanceLoopCharacteristics><loopCardinality>2</loopCardinality></multiInstanceLoopCharacteristics>
    </subProcess>
    <sequenceFlow id="toEsp" sourceRef="e0" targetRef="espFlows"/><intermediateThrowEvent id="e0"/>
    <boundaryEvent id="onEsp" attachedToRef="espFlows"><signalEventDefinition signalRef="S"/></boundaryEvent>
    <subProcess id="err1" triggeredByEvent="true"><startEvent id="x1"><errorEventDefinition errorRef="E"/></startEvent></subProcess>
    <subProcess id="err2" triggeredByEvent="true"><startEvent id="x2"><errorEventDefinition errorRef="E"/></startEvent></subProcess>`,
    '<message id="M" name="m"/><signal id="S" name="s"/><error id="E" errorCode="E1"/>'))).toEqual([
      'inline.bpmn: element ms: the start event of an embedded subprocess must be a none start event, not a message start event; use an event subprocess (triggeredByEvent="true") or a boundary event for events',
      'inline.bpmn: element empty: subprocess has no start event (exactly one none start event is required)',
      'inline.bpmn: element twoStarts: subprocess has 2 none start events (a1, a2); exactly one is required',
      'inline.bpmn: element espStart: the start event of an event subprocess needs a message, timer, signal, error or escalation event definition',
      'inline.bpmn: element errStart: error start events of event subprocesses are always interrupting (isInterrupting="false" is invalid BPMN)',
      'inline.bpmn: element espErr: event subprocess has 2 start events; exactly one is required',
      'inline.bpmn: element espNoStart: event subprocess has no start event (exactly one start event with a message, timer, signal, error or escalation event definition is required)',
      'inline.bpmn: element espFlows: event subprocesses cannot be multi-instance or looped (bpmn:multiInstanceLoopCharacteristics)',
      'inline.bpmn: element cross: targetRef "e" is in process p, the sequence flow in subprocess sub; sequence flows connect elements of one scope (a subprocess is entered through its start event)',
      'inline.bpmn: element bOut: attachedToRef "sub" is in process p; a boundary event must be in the same scope as its activity (this one is in subprocess sub)',
      'inline.bpmn: element onEsp: attachedToRef "espFlows" is an event subprocess; boundary events are attached to tasks, subprocesses and call activities',
      'inline.bpmn: element espFlows: event subprocess must not have incoming or outgoing sequence flows (toEsp)',
      'inline.bpmn: element err2: event subprocesses err1 and err2 of process p both catch errorCode "E1"',
    ]);
  });
});
