/**
 * Sequence flows out of activities: every unconditional flow and every flow
 * whose condition (JUEL or FEEL) holds is taken; the default flow only when no
 * other flow is taken; conditional flows with none holding and no default are
 * BP301. Conditions see the variables of the call that completes the activity.
 */
import { createTestDb, type TestDb } from '../../helpers/db';
import { deployProcess, expectRejectedUnchanged } from '../../helpers/engine';
import {
  actors,
  completeExternalTask,
  completeTask,
  fetchAndLock,
  getInstance,
  history,
  one,
  openTask,
  openTaskIds,
  path,
  startProcess,
  waits,
  type Actors,
} from './support';

let db: TestDb;
let as: Actors;

beforeAll(async () => {
  db = await createTestDb();
  as = await actors(db);
  await deployProcess(as.admin, 'task_conditions', `
    <startEvent id="start"/>
    <sequenceFlow id="f1" sourceRef="start" targetRef="work"/>
    <manualTask id="work" default="dflt"/>
    <sequenceFlow id="c1" sourceRef="work" targetRef="A"><conditionExpression>\${a}</conditionExpression></sequenceFlow>
    <sequenceFlow id="c2" sourceRef="work" targetRef="B"><conditionExpression>=b = true</conditionExpression></sequenceFlow>
    <sequenceFlow id="dflt" sourceRef="work" targetRef="D"/>
    <userTask id="A"/>
    <userTask id="B"/>
    <userTask id="D"/>`);
  await deployProcess(as.admin, 'task_mixed', `
    <startEvent id="start"/>
    <sequenceFlow id="f1" sourceRef="start" targetRef="work"/>
    <task id="work"/>
    <sequenceFlow id="always" sourceRef="work" targetRef="U1"/>
    <sequenceFlow id="maybe" sourceRef="work" targetRef="U2"><conditionExpression>\${go == true}</conditionExpression></sequenceFlow>
    <userTask id="U1"/>
    <userTask id="U2"/>`);
  await deployProcess(as.admin, 'task_no_default', `
    <startEvent id="start"/>
    <sequenceFlow id="f1" sourceRef="start" targetRef="work"/>
    <manualTask id="work"/>
    <sequenceFlow id="c1" sourceRef="work" targetRef="A"><conditionExpression>\${a}</conditionExpression></sequenceFlow>
    <sequenceFlow id="c2" sourceRef="work" targetRef="B"><conditionExpression>\${b}</conditionExpression></sequenceFlow>
    <userTask id="A"/>
    <userTask id="B"/>`);
  await deployProcess(as.admin, 'review_loop', `
    <startEvent id="start"/>
    <sequenceFlow id="f1" sourceRef="start" targetRef="review"/>
    <userTask id="review" default="rework"/>
    <sequenceFlow id="ok" sourceRef="review" targetRef="done"><conditionExpression>\${approved}</conditionExpression></sequenceFlow>
    <sequenceFlow id="rework" sourceRef="review" targetRef="fix"/>
    <userTask id="fix"/>
    <sequenceFlow id="again" sourceRef="fix" targetRef="review"/>
    <endEvent id="done"/>`);
  await deployProcess(as.admin, 'external_conditions', `
    <startEvent id="start"/>
    <sequenceFlow id="f1" sourceRef="start" targetRef="check"/>
    <serviceTask id="check" camunda:type="external" camunda:topic="flows-check" default="toManual"/>
    <sequenceFlow id="toAuto" sourceRef="check" targetRef="auto"><conditionExpression>=score &gt;= 80</conditionExpression></sequenceFlow>
    <sequenceFlow id="toManual" sourceRef="check" targetRef="manual"/>
    <endEvent id="auto"/>
    <userTask id="manual"/>`);
  await deployProcess(as.admin, 'task_default_vs_unconditional', `
    <startEvent id="start"/>
    <sequenceFlow id="f1" sourceRef="start" targetRef="work"/>
    <manualTask id="work" default="dflt"/>
    <sequenceFlow id="plain" sourceRef="work" targetRef="P"/>
    <sequenceFlow id="dflt" sourceRef="work" targetRef="D"/>
    <userTask id="P"/>
    <userTask id="D"/>`);
  // a cycle without any wait state
  await deployProcess(as.admin, 'endless', `
    <startEvent id="start"/>
    <sequenceFlow id="f1" sourceRef="start" targetRef="spin"/>
    <manualTask id="spin"/>
    <sequenceFlow id="f2" sourceRef="spin" targetRef="gw"/>
    <exclusiveGateway id="gw" default="out"/>
    <sequenceFlow id="back" sourceRef="gw" targetRef="spin"><conditionExpression>\${forever}</conditionExpression></sequenceFlow>
    <sequenceFlow id="out" sourceRef="gw" targetRef="end"/>
    <endEvent id="end"/>`);
});

afterAll(() => db.close());

test('every holding conditional flow out of an activity is taken, the default is not', async () => {
  const started = await startProcess(as.admin, 'task_conditions', { a: true, b: true });
  expect(await history(as.admin, started.id)).toEqual([
    'start startEvent completed',
    'work manualTask completed',
    'A userTask active',
    'B userTask active',
  ]);
  expect(await waits(db.root, started.id)).toEqual([
    'A userTask',
    'B userTask',
  ]);
});

test('only the holding flows are taken (JUEL true, FEEL false)', async () => {
  const started = await startProcess(as.admin, 'task_conditions', { a: true, b: false });
  expect(await openTaskIds(as.admin, started.id)).toEqual(['A']);
  const other = await startProcess(as.admin, 'task_conditions', { a: false, b: true });
  expect(await openTaskIds(as.admin, other.id)).toEqual(['B']);
});

test('the default flow out of an activity is taken when no condition holds', async () => {
  const started = await startProcess(as.admin, 'task_conditions', { a: false, b: false });
  expect(await openTaskIds(as.admin, started.id)).toEqual(['D']);
  expect(await waits(db.root, started.id)).toEqual(['D userTask']);
});

test('an unconditional flow is always taken next to the holding conditional ones', async () => {
  const without = await startProcess(as.admin, 'task_mixed', { go: false });
  expect(await openTaskIds(as.admin, without.id)).toEqual(['U1']);
  const withBoth = await startProcess(as.admin, 'task_mixed', { go: true });
  expect(await openTaskIds(as.admin, withBoth.id)).toEqual(['U1', 'U2']);
});

test('conditional flows out of an activity with none holding and no default are BP301, rolled back', async () => {
  await expectRejectedUnchanged(db.root, () => startProcess(as.admin, 'task_no_default', { a: false, b: false }), 'BP301', /manualTask work/);
});

test('an unset variable in a condition out of an activity is BP302', async () => {
  await expectRejectedUnchanged(db.root, () => startProcess(as.admin, 'task_no_default', { a: false }), 'BP302', /"b"/);
});

test('conditions out of a user task see the variables given to complete_task, and the default loops back', async () => {
  const started = await startProcess(as.admin, 'review_loop');
  await completeTask(as.admin, (await openTask(as.admin, started.id, 'review')).id, { approved: false });
  expect(await openTaskIds(as.admin, started.id)).toEqual(['fix']);
  await completeTask(as.admin, (await openTask(as.admin, started.id, 'fix')).id);
  // a second review task: a new activity instance of the same element
  const second = await openTask(as.admin, started.id, 'review');
  await completeTask(as.admin, second.id, { approved: true });
  expect(await getInstance(as.admin, started.id)).toMatchObject({ state: 'completed', variables: { approved: true } });
  expect(await history(as.admin, started.id)).toEqual([
    'start startEvent completed',
    'review userTask completed',
    'fix userTask completed',
    'review userTask completed',
    'done endEvent completed',
  ]);
});

test('conditions out of an external task see the variables the worker completes it with', async () => {
  const high = await startProcess(as.admin, 'external_conditions');
  const low = await startProcess(as.admin, 'external_conditions');
  const fetched = await fetchAndLock(as.engine, 'flows-check', 'w');
  expect(fetched.map((t) => t.instance_id).sort()).toEqual([high.id, low.id].sort());
  const taskOf = (instanceId: string): string => one(fetched.filter((t) => t.instance_id === instanceId), 'fetched task').id;
  await completeExternalTask(as.engine, taskOf(high.id), 'w', { score: 95 });
  await completeExternalTask(as.engine, taskOf(low.id), 'w', { score: 20 });
  expect((await getInstance(as.admin, high.id)).state).toBe('completed');
  expect(await path(as.admin, high.id)).toEqual(['start', 'check', 'auto']);
  expect((await getInstance(as.admin, low.id)).state).toBe('active');
  expect(await path(as.admin, low.id)).toEqual(['start', 'check', 'manual']);
});

test('the default flow out of an activity is not taken when an unconditional flow leaves it', async () => {
  const started = await startProcess(as.admin, 'task_default_vs_unconditional');
  expect(await openTaskIds(as.admin, started.id)).toEqual(['P']);
});

test('a cycle without a wait state is BP306 and rolled back; the same cycle runs when it is left', async () => {
  await expectRejectedUnchanged(db.root, () => startProcess(as.admin, 'endless', { forever: true }), 'BP306', /more than \d+ automatic steps .* at element (spin|gw)/);
  const once = await startProcess(as.admin, 'endless', { forever: false });
  expect(once.state).toBe('completed');
  expect(await path(as.admin, once.id)).toEqual(['start', 'spin', 'gw', 'end']);
});
