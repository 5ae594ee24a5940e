/**
 * Terminate end events: the instance completes and every other token ends as
 * cancelled (waiting user tasks, external tasks, join tokens), whether they
 * were stored by earlier calls or created in the same call.
 */
import { createTestDb, type TestDb } from '../../helpers/db';
import { deployFixture, deployProcess, expectRejectedUnchanged } from '../../helpers/engine';
import {
  actors,
  completeExternalTask,
  completeTask,
  externalTasks,
  fetchAndLock,
  getInstance,
  history,
  openTask,
  startProcess,
  waits,
  userTasks,
  type Actors,
} from './support';

let db: TestDb;
let as: Actors;

beforeAll(async () => {
  db = await createTestDb();
  as = await actors(db);
  await deployFixture(as.admin, 'terminate.bpmn');
  // fork → P, Q → join → end; fork → W (external) → endW; fork → K → kill (terminate)
  await deployProcess(as.admin, 'terminate_many', `
    <startEvent id="start"/>
    <sequenceFlow id="f1" sourceRef="start" targetRef="fork"/>
    <parallelGateway id="fork"/>
    <sequenceFlow id="toP" sourceRef="fork" targetRef="P"/>
    <sequenceFlow id="toQ" sourceRef="fork" targetRef="Q"/>
    <sequenceFlow id="toW" sourceRef="fork" targetRef="W"/>
    <sequenceFlow id="toK" sourceRef="fork" targetRef="K"/>
    <userTask id="P"/>
    <userTask id="Q"/>
    <serviceTask id="W" camunda:type="external" camunda:topic="terminate-work"/>
    <userTask id="K"/>
    <sequenceFlow id="fromP" sourceRef="P" targetRef="join"/>
    <sequenceFlow id="fromQ" sourceRef="Q" targetRef="join"/>
    <parallelGateway id="join"/>
    <sequenceFlow id="f2" sourceRef="join" targetRef="end"/>
    <endEvent id="end"/>
    <sequenceFlow id="fromW" sourceRef="W" targetRef="endW"/>
    <endEvent id="endW"/>
    <sequenceFlow id="fromK" sourceRef="K" targetRef="kill"/>
    <endEvent id="kill"><terminateEventDefinition/></endEvent>`);
  // the terminate is reached within start_process after A started waiting
  await deployProcess(as.admin, 'terminate_at_start', `
    <startEvent id="start"/>
    <sequenceFlow id="f1" sourceRef="start" targetRef="fork"/>
    <parallelGateway id="fork"/>
    <sequenceFlow id="toA" sourceRef="fork" targetRef="A"/>
    <sequenceFlow id="toM" sourceRef="fork" targetRef="M"/>
    <userTask id="A"/>
    <manualTask id="M"/>
    <sequenceFlow id="fromM" sourceRef="M" targetRef="kill"/>
    <endEvent id="kill"><terminateEventDefinition/></endEvent>`);
  // the terminate is the first token of the fork: the other token never enters anything
  await deployProcess(as.admin, 'terminate_first', `
    <startEvent id="start"/>
    <sequenceFlow id="f1" sourceRef="start" targetRef="fork"/>
    <parallelGateway id="fork"/>
    <sequenceFlow id="toKill" sourceRef="fork" targetRef="kill"/>
    <sequenceFlow id="toM" sourceRef="fork" targetRef="M"/>
    <endEvent id="kill"><terminateEventDefinition/></endEvent>
    <manualTask id="M"/>
    <sequenceFlow id="fromM" sourceRef="M" targetRef="A"/>
    <userTask id="A"/>`);
  // completing K forks into a new user task N and the terminate in the same call
  await deployProcess(as.admin, 'terminate_same_call', `
    <startEvent id="start"/>
    <sequenceFlow id="f1" sourceRef="start" targetRef="K"/>
    <userTask id="K"/>
    <sequenceFlow id="f2" sourceRef="K" targetRef="fork"/>
    <parallelGateway id="fork"/>
    <sequenceFlow id="toN" sourceRef="fork" targetRef="N"/>
    <sequenceFlow id="toX" sourceRef="fork" targetRef="X"/>
    <userTask id="N"/>
    <serviceTask id="X" camunda:type="external" camunda:topic="never-fetched"/>
    <sequenceFlow id="toKill" sourceRef="fork" targetRef="kill"/>
    <endEvent id="kill"><terminateEventDefinition/></endEvent>`);
});

afterAll(() => db.close());

test('terminate.bpmn: the terminate end event completes the instance and cancels the task still waiting', async () => {
  const started = await startProcess(as.admin, 'terminate');
  expect(started.state).toBe('active');
  const b = await openTask(as.admin, started.id, 'B');
  const a = await openTask(as.admin, started.id, 'A');

  await completeTask(as.admin, b.id);

  const after = await getInstance(as.admin, started.id);
  expect(after.state).toBe('completed');
  expect(after.ended_at).not.toBeNull();
  expect(after.end_reason).toBeNull();
  const tasks = await userTasks(as.admin, started.id);
  expect(tasks.map((t) => [t.element_id, t.state])).toEqual([
    ['A', 'cancelled'],
    ['B', 'completed'],
  ]);
  const cancelled = tasks.find((t) => t.id === a.id);
  expect(cancelled?.completed_at).toBeInstanceOf(Date);
  expect(cancelled?.completed_by).toBeNull();
  expect(await history(as.admin, started.id)).toEqual([
    'start startEvent completed',
    'fork parallelGateway completed',
    'A userTask cancelled',
    'B userTask completed',
    'kill endEvent completed',
  ]);
  expect(await waits(db.root, started.id)).toEqual([]);

  // the cancelled task cannot be completed any more
  await expectRejectedUnchanged(db.root, () => completeTask(as.admin, a.id), 'BP203', /cancelled/);
});

test('terminate.bpmn: a token that ended normally before does not prevent the terminate from completing the instance', async () => {
  const started = await startProcess(as.admin, 'terminate');
  await completeTask(as.admin, (await openTask(as.admin, started.id, 'A')).id);
  expect((await getInstance(as.admin, started.id)).state).toBe('active');
  await completeTask(as.admin, (await openTask(as.admin, started.id, 'B')).id);
  expect((await getInstance(as.admin, started.id)).state).toBe('completed');
  expect(await history(as.admin, started.id)).toEqual([
    'start startEvent completed',
    'fork parallelGateway completed',
    'A userTask completed',
    'B userTask completed',
    'endA endEvent completed',
    'kill endEvent completed',
  ]);
});

test('a terminate cancels waiting user tasks, locked external tasks and join tokens stored by earlier calls', async () => {
  const started = await startProcess(as.admin, 'terminate_many');
  expect(await waits(db.root, started.id)).toEqual([
    'K userTask',
    'P userTask',
    'Q userTask',
    'W externalTask',
  ]);
  // P reaches the join and waits there; W is locked by a worker
  await completeTask(as.admin, (await openTask(as.admin, started.id, 'P')).id);
  const [locked] = await fetchAndLock(as.engine, 'terminate-work', 'worker-1');
  expect(locked).toMatchObject({ element_id: 'W', instance_id: started.id, worker_id: 'worker-1', state: 'open' });
  expect(await waits(db.root, started.id)).toEqual([
    'K userTask',
    'Q userTask',
    'W externalTask',
    'join token via fromP',
  ]);

  await completeTask(as.admin, (await openTask(as.admin, started.id, 'K')).id);

  const after = await getInstance(as.admin, started.id);
  expect(after.state).toBe('completed');
  expect(after.ended_at).not.toBeNull();
  expect((await userTasks(as.admin, started.id)).map((t) => [t.element_id, t.state])).toEqual([
    ['P', 'completed'],
    ['Q', 'cancelled'],
    ['K', 'completed'],
  ]);
  const [external] = await externalTasks(as.admin, started.id);
  expect(external).toMatchObject({ element_id: 'W', state: 'cancelled', worker_id: null, locked_until: null });
  expect(external.ended_at).toBeInstanceOf(Date);
  expect(await history(as.admin, started.id)).toEqual([
    'start startEvent completed',
    'fork parallelGateway completed',
    'P userTask completed',
    'Q userTask cancelled',
    'W serviceTask cancelled',
    'K userTask completed',
    'join parallelGateway cancelled',
    'kill endEvent completed',
  ]);
  expect(await waits(db.root, started.id)).toEqual([]);

  // the worker that held W can no longer complete it
  await expectRejectedUnchanged(db.root, () => completeExternalTask(as.engine, locked.id, 'worker-1'), 'BP203', /cancelled/);
  // and nothing is fetchable for the topic
  expect(await fetchAndLock(as.engine, 'terminate-work', 'worker-2')).toEqual([]);
});

test('a terminate reached within start_process inserts the instance completed and cancels the task created in the same call', async () => {
  const started = await startProcess(as.admin, 'terminate_at_start');
  expect(started.state).toBe('completed');
  expect(started.ended_at).not.toBeNull();
  expect(await history(as.admin, started.id)).toEqual([
    'start startEvent completed',
    'fork parallelGateway completed',
    'A userTask cancelled',
    'M manualTask completed',
    'kill endEvent completed',
  ]);
  // the task never became visible work
  expect(await userTasks(as.admin, started.id)).toEqual([]);
  expect(await waits(db.root, started.id)).toEqual([]);
});

test('tokens still queued when the terminate is reached never enter their next element', async () => {
  const started = await startProcess(as.admin, 'terminate_first');
  expect(started.state).toBe('completed');
  expect(await history(as.admin, started.id)).toEqual([
    'start startEvent completed',
    'fork parallelGateway completed',
    'kill endEvent completed',
  ]);
  expect(await userTasks(as.admin, started.id)).toEqual([]);
});

test('a terminate reached in complete_task also cancels wait states created earlier in the same call', async () => {
  const started = await startProcess(as.admin, 'terminate_same_call');
  await completeTask(as.admin, (await openTask(as.admin, started.id, 'K')).id);
  expect((await getInstance(as.admin, started.id)).state).toBe('completed');
  expect(await history(as.admin, started.id)).toEqual([
    'start startEvent completed',
    'K userTask completed',
    'fork parallelGateway completed',
    'N userTask cancelled',
    'X serviceTask cancelled',
    'kill endEvent completed',
  ]);
  expect((await userTasks(as.admin, started.id)).map((t) => t.element_id)).toEqual(['K']);
  expect(await externalTasks(as.admin, started.id)).toEqual([]);
  expect(await waits(db.root, started.id)).toEqual([]);
});
