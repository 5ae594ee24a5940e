/**
 * Parallel gateways: a fork takes every outgoing flow; a join waits until a
 * token arrived on every incoming flow and then fires exactly once. Each token
 * arriving at the join has its own activity row, completed when it fires.
 */
import { createTestDb, type TestDb } from '../../helpers/db';
import { deployFixture, deployProcess } from '../../helpers/engine';
import {
  actors,
  completeTask,
  getInstance,
  history,
  openTask,
  openTaskIds,
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
  await deployFixture(as.admin, 'parallel.bpmn', 'parallel10.bpmn');
  await deployProcess(as.admin, 'uneven', `
    <startEvent id="start"/>
    <sequenceFlow id="f1" sourceRef="start" targetRef="fork"/>
    <parallelGateway id="fork"/>
    <sequenceFlow id="toA1" sourceRef="fork" targetRef="A1"/>
    <sequenceFlow id="toB" sourceRef="fork" targetRef="B"/>
    <userTask id="A1"/>
    <sequenceFlow id="a12" sourceRef="A1" targetRef="A2"/>
    <userTask id="A2"/>
    <sequenceFlow id="a23" sourceRef="A2" targetRef="A3"/>
    <userTask id="A3"/>
    <sequenceFlow id="fromA" sourceRef="A3" targetRef="join"/>
    <userTask id="B"/>
    <sequenceFlow id="fromB" sourceRef="B" targetRef="join"/>
    <parallelGateway id="join"/>
    <sequenceFlow id="f2" sourceRef="join" targetRef="end"/>
    <endEvent id="end"/>`);
  // merge → fork → A, B → join → gw: loops back to the merge while loop < 3
  await deployProcess(as.admin, 'join_loop', `
    <startEvent id="start"/>
    <sequenceFlow id="f1" sourceRef="start" targetRef="merge"/>
    <exclusiveGateway id="merge"/>
    <sequenceFlow id="f2" sourceRef="merge" targetRef="fork"/>
    <parallelGateway id="fork"/>
    <sequenceFlow id="toA" sourceRef="fork" targetRef="A"/>
    <sequenceFlow id="toB" sourceRef="fork" targetRef="B"/>
    <userTask id="A"/>
    <userTask id="B"/>
    <sequenceFlow id="fromA" sourceRef="A" targetRef="join"/>
    <sequenceFlow id="fromB" sourceRef="B" targetRef="join"/>
    <parallelGateway id="join"/>
    <sequenceFlow id="f3" sourceRef="join" targetRef="gw"/>
    <exclusiveGateway id="gw" default="toEnd"/>
    <sequenceFlow id="again" sourceRef="gw" targetRef="merge"><conditionExpression>\${loop &lt; 3}</conditionExpression></sequenceFlow>
    <sequenceFlow id="toEnd" sourceRef="gw" targetRef="end"/>
    <endEvent id="end"/>`);
  // two joins in a row without wait states, fired within start_process
  await deployProcess(as.admin, 'nested_parallel', `
    <startEvent id="start"/>
    <sequenceFlow id="f1" sourceRef="start" targetRef="outer"/>
    <parallelGateway id="outer"/>
    <sequenceFlow id="o1" sourceRef="outer" targetRef="inner"/>
    <sequenceFlow id="o2" sourceRef="outer" targetRef="solo"/>
    <parallelGateway id="inner"/>
    <sequenceFlow id="i1" sourceRef="inner" targetRef="m1"/>
    <sequenceFlow id="i2" sourceRef="inner" targetRef="m2"/>
    <manualTask id="m1"/>
    <manualTask id="m2"/>
    <sequenceFlow id="j1" sourceRef="m1" targetRef="innerJoin"/>
    <sequenceFlow id="j2" sourceRef="m2" targetRef="innerJoin"/>
    <parallelGateway id="innerJoin"/>
    <sequenceFlow id="j3" sourceRef="innerJoin" targetRef="outerJoin"/>
    <manualTask id="solo"/>
    <sequenceFlow id="j4" sourceRef="solo" targetRef="outerJoin"/>
    <parallelGateway id="outerJoin"/>
    <sequenceFlow id="f2" sourceRef="outerJoin" targetRef="end"/>
    <endEvent id="end"/>`);
  // X is entered twice (two flows from the fork), so two tokens arrive at the join over fromX
  await deployProcess(as.admin, 'same_flow_twice', `
    <startEvent id="start"/>
    <sequenceFlow id="f1" sourceRef="start" targetRef="fork"/>
    <parallelGateway id="fork"/>
    <sequenceFlow id="toX1" sourceRef="fork" targetRef="X"/>
    <sequenceFlow id="toX2" sourceRef="fork" targetRef="X"/>
    <sequenceFlow id="toY" sourceRef="fork" targetRef="Y"/>
    <userTask id="X"/>
    <userTask id="Y"/>
    <sequenceFlow id="fromX" sourceRef="X" targetRef="join"/>
    <sequenceFlow id="fromY" sourceRef="Y" targetRef="join"/>
    <parallelGateway id="join"/>
    <sequenceFlow id="f2" sourceRef="join" targetRef="end"/>
    <endEvent id="end"/>`);
  // a gateway that joins two flows and forks into two
  await deployProcess(as.admin, 'join_and_fork', `
    <startEvent id="start"/>
    <sequenceFlow id="f1" sourceRef="start" targetRef="fork"/>
    <parallelGateway id="fork"/>
    <sequenceFlow id="toA" sourceRef="fork" targetRef="A"/>
    <sequenceFlow id="toB" sourceRef="fork" targetRef="B"/>
    <userTask id="A"/>
    <userTask id="B"/>
    <sequenceFlow id="fromA" sourceRef="A" targetRef="both"/>
    <sequenceFlow id="fromB" sourceRef="B" targetRef="both"/>
    <parallelGateway id="both"/>
    <sequenceFlow id="toC" sourceRef="both" targetRef="C"/>
    <sequenceFlow id="toD" sourceRef="both" targetRef="D"/>
    <userTask id="C"/>
    <userTask id="D"/>`);
});

afterAll(() => db.close());

test('parallel.bpmn: the fork creates both tasks and the join fires exactly once, after both branches', async () => {
  const started = await startProcess(as.admin, 'parallel');
  expect(started.state).toBe('active');
  expect(await openTaskIds(as.admin, started.id)).toEqual(['A', 'B']);

  await completeTask(as.admin, (await openTask(as.admin, started.id, 'A')).id);
  expect((await getInstance(as.admin, started.id)).state).toBe('active');
  expect(await history(as.admin, started.id)).toEqual([
    'start startEvent completed',
    'fork parallelGateway completed',
    'A userTask completed',
    'B userTask active',
    'join parallelGateway active',
  ]);
  expect(await waits(db.root, started.id)).toEqual([
    'B userTask',
    'join token via f4',
  ]);

  await completeTask(as.admin, (await openTask(as.admin, started.id, 'B')).id);
  const done = await getInstance(as.admin, started.id);
  expect(done.state).toBe('completed');
  expect(done.ended_at).not.toBeNull();
  expect(await history(as.admin, started.id)).toEqual([
    'start startEvent completed',
    'fork parallelGateway completed',
    'A userTask completed',
    'B userTask completed',
    'join parallelGateway completed',
    'join parallelGateway completed',
    'end endEvent completed',
  ]);
  expect(await waits(db.root, started.id)).toEqual([]);
});

test('parallel.bpmn: completion order does not matter', async () => {
  const started = await startProcess(as.admin, 'parallel');
  await completeTask(as.admin, (await openTask(as.admin, started.id, 'B')).id);
  expect(await waits(db.root, started.id)).toEqual([
    'A userTask',
    'join token via f5',
  ]);
  await completeTask(as.admin, (await openTask(as.admin, started.id, 'A')).id);
  expect((await getInstance(as.admin, started.id)).state).toBe('completed');
  expect((await history(as.admin, started.id)).filter((r) => r.startsWith('end '))).toEqual(['end endEvent completed']);
});

test('uneven branches: the join waits for the three-task branch and fires once', async () => {
  const started = await startProcess(as.admin, 'uneven');
  expect(await openTaskIds(as.admin, started.id)).toEqual(['A1', 'B']);
  await completeTask(as.admin, (await openTask(as.admin, started.id, 'B')).id);
  for (const step of ['A1', 'A2']) {
    await completeTask(as.admin, (await openTask(as.admin, started.id, step)).id);
    expect((await getInstance(as.admin, started.id)).state).toBe('active');
    expect(await waits(db.root, started.id)).toContainEqual('join token via fromB');
  }
  await completeTask(as.admin, (await openTask(as.admin, started.id, 'A3')).id);
  expect((await getInstance(as.admin, started.id)).state).toBe('completed');
  expect(await history(as.admin, started.id)).toEqual([
    'start startEvent completed',
    'fork parallelGateway completed',
    'A1 userTask completed',
    'B userTask completed',
    'join parallelGateway completed',
    'A2 userTask completed',
    'A3 userTask completed',
    'join parallelGateway completed',
    'end endEvent completed',
  ]);
  expect(await waits(db.root, started.id)).toEqual([]);
});

test('a join reached repeatedly in a loop fires once per round', async () => {
  const started = await startProcess(as.admin, 'join_loop', { loop: 0 });
  for (let round = 1; round <= 3; round++) {
    // exactly one A and one B per round: the join fired once in the previous round
    expect(await openTaskIds(as.admin, started.id)).toEqual(['A', 'B']);
    await completeTask(as.admin, (await openTask(as.admin, started.id, 'A')).id);
    expect(await waits(db.root, started.id)).toEqual([
      'B userTask',
      'join token via fromA',
    ]);
    await completeTask(as.admin, (await openTask(as.admin, started.id, 'B')).id, { loop: round });
  }
  const done = await getInstance(as.admin, started.id);
  expect(done).toMatchObject({ state: 'completed', variables: { loop: 3 } });
  expect(await openTaskIds(as.admin, started.id)).toEqual([]);
  expect(await waits(db.root, started.id)).toEqual([]);

  const round = [
    'merge exclusiveGateway completed',
    'fork parallelGateway completed',
    'A userTask completed',
    'B userTask completed',
    'join parallelGateway completed',
    'join parallelGateway completed',
    'gw exclusiveGateway completed',
  ];
  expect(await history(as.admin, started.id)).toEqual([
    'start startEvent completed',
    ...round,
    ...round,
    ...round,
    'end endEvent completed',
  ]);
});

test('parallel10.bpmn: ten branches fork and join within start_process', async () => {
  const started = await startProcess(as.admin, 'parallel10');
  expect(started.state).toBe('completed');
  const rows = await history(as.admin, started.id);
  const steps = Array.from({ length: 10 }, (_, i) => `t${i + 1} manualTask completed`);
  expect(rows).toEqual([
    'start startEvent completed',
    'fork parallelGateway completed',
    ...steps,
    ...Array.from({ length: 10 }, () => 'join parallelGateway completed'),
    'end endEvent completed',
  ]);
  expect(rows.length).toBeGreaterThanOrEqual(10);
  expect(await waits(db.root, started.id)).toEqual([]);
});

test('nested forks and joins without wait states fire within start_process, inner join first', async () => {
  const started = await startProcess(as.admin, 'nested_parallel');
  expect(started.state).toBe('completed');
  expect(await history(as.admin, started.id)).toEqual([
    'start startEvent completed',
    'outer parallelGateway completed',
    'inner parallelGateway completed',
    'solo manualTask completed',
    'm1 manualTask completed',
    'm2 manualTask completed',
    'outerJoin parallelGateway completed',
    'innerJoin parallelGateway completed',
    'innerJoin parallelGateway completed',
    'outerJoin parallelGateway completed',
    'end endEvent completed',
  ]);
});

test('tokens waiting on the same incoming flow are consumed first come, first served: one per flow and firing', async () => {
  const started = await startProcess(as.admin, 'same_flow_twice');
  expect(await openTaskIds(as.admin, started.id)).toEqual(['X', 'X', 'Y']);
  const [x1, x2] = (await userTasks(as.admin, started.id)).filter((t) => t.element_id === 'X');
  await completeTask(as.admin, x1.id);
  await completeTask(as.admin, x2.id);
  expect(await waits(db.root, started.id)).toEqual([
    'Y userTask',
    'join token via fromX',
    'join token via fromX',
  ]);
  await completeTask(as.admin, (await openTask(as.admin, started.id, 'Y')).id);
  // the join fired once, with the first fromX token; the second one still waits for another fromY
  expect(await history(as.admin, started.id)).toEqual([
    'start startEvent completed',
    'fork parallelGateway completed',
    'X userTask completed',
    'X userTask completed',
    'Y userTask completed',
    'join parallelGateway completed',
    'join parallelGateway active',
    'join parallelGateway completed',
    'end endEvent completed',
  ]);
  expect(await waits(db.root, started.id)).toEqual(['join token via fromX']);
  expect((await getInstance(as.admin, started.id)).state).toBe('active');
});

test('a gateway that joins and forks at once fires once and takes every outgoing flow', async () => {
  const started = await startProcess(as.admin, 'join_and_fork');
  await completeTask(as.admin, (await openTask(as.admin, started.id, 'B')).id);
  expect(await openTaskIds(as.admin, started.id)).toEqual(['A']);
  await completeTask(as.admin, (await openTask(as.admin, started.id, 'A')).id);
  expect(await openTaskIds(as.admin, started.id)).toEqual(['C', 'D']);
  expect(await history(as.admin, started.id)).toEqual([
    'start startEvent completed',
    'fork parallelGateway completed',
    'A userTask completed',
    'B userTask completed',
    'both parallelGateway completed',
    'both parallelGateway completed',
    'C userTask active',
    'D userTask active',
  ]);
});
