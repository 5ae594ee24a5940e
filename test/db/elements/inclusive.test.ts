/**
 * Inclusive gateways: a fork takes every flow whose condition holds (the
 * default only when none does; none and no default is BP301); a join waits
 * until no live token can still reach it, so branches not taken never block
 * it and a branch still upstream (behind a task) holds it.
 */
import { createTestDb, type TestDb } from '../../helpers/db';
import { deployFixture, deployProcess, expectRejectedUnchanged } from '../../helpers/engine';
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
  startProcess,
  waits,
  type Actors,
} from './support';

let db: TestDb;
let as: Actors;

beforeAll(async () => {
  db = await createTestDb();
  as = await actors(db);
  // split: toA ${amount > 100}, toB ${vip == true}, default toC; A, B, C → join → end
  await deployFixture(as.admin, 'inclusive.bpmn');
  await deployProcess(as.admin, 'or_no_default', `
    <startEvent id="start"/>
    <sequenceFlow id="f1" sourceRef="start" targetRef="split"/>
    <inclusiveGateway id="split"/>
    <sequenceFlow id="toA" sourceRef="split" targetRef="A"><conditionExpression>=a</conditionExpression></sequenceFlow>
    <sequenceFlow id="toB" sourceRef="split" targetRef="B"><conditionExpression>=b</conditionExpression></sequenceFlow>
    <userTask id="A"/>
    <userTask id="B"/>`);
  // both branches always taken; the second one has two tasks in a row
  await deployProcess(as.admin, 'or_upstream', `
    <startEvent id="start"/>
    <sequenceFlow id="f1" sourceRef="start" targetRef="split"/>
    <inclusiveGateway id="split"/>
    <sequenceFlow id="toA" sourceRef="split" targetRef="A"/>
    <sequenceFlow id="toB" sourceRef="split" targetRef="B"/>
    <userTask id="A"/>
    <userTask id="B"/>
    <sequenceFlow id="bc" sourceRef="B" targetRef="C"/>
    <serviceTask id="C" camunda:type="external" camunda:topic="or-upstream"/>
    <sequenceFlow id="fromA" sourceRef="A" targetRef="join"/>
    <sequenceFlow id="fromC" sourceRef="C" targetRef="join"/>
    <inclusiveGateway id="join"/>
    <sequenceFlow id="f2" sourceRef="join" targetRef="end"/>
    <endEvent id="end"/>`);
  await deployProcess(as.admin, 'or_automatic', `
    <startEvent id="start"/>
    <sequenceFlow id="f1" sourceRef="start" targetRef="split"/>
    <inclusiveGateway id="split" default="toZ"/>
    <sequenceFlow id="toX" sourceRef="split" targetRef="X"><conditionExpression>\${n &gt; 0}</conditionExpression></sequenceFlow>
    <sequenceFlow id="toY" sourceRef="split" targetRef="Y"><conditionExpression>\${n &gt; 1}</conditionExpression></sequenceFlow>
    <sequenceFlow id="toZ" sourceRef="split" targetRef="Z"/>
    <manualTask id="X"/>
    <task id="Y"/>
    <manualTask id="Z"/>
    <sequenceFlow id="fromX" sourceRef="X" targetRef="join"/>
    <sequenceFlow id="fromY" sourceRef="Y" targetRef="join"/>
    <sequenceFlow id="fromZ" sourceRef="Z" targetRef="join"/>
    <inclusiveGateway id="join"/>
    <sequenceFlow id="f2" sourceRef="join" targetRef="end"/>
    <endEvent id="end"/>`);
  // B's token may leave the region without reaching the join (skip → elsewhere)
  await deployProcess(as.admin, 'or_bypass', `
    <startEvent id="start"/>
    <sequenceFlow id="f1" sourceRef="start" targetRef="split"/>
    <inclusiveGateway id="split"/>
    <sequenceFlow id="toA" sourceRef="split" targetRef="A"/>
    <sequenceFlow id="toB" sourceRef="split" targetRef="B"/>
    <userTask id="A"/>
    <userTask id="B"/>
    <sequenceFlow id="fromA" sourceRef="A" targetRef="join"/>
    <sequenceFlow id="fromB" sourceRef="B" targetRef="gw"/>
    <exclusiveGateway id="gw" default="toJoin"/>
    <sequenceFlow id="toElsewhere" sourceRef="gw" targetRef="elsewhere"><conditionExpression>\${skip}</conditionExpression></sequenceFlow>
    <sequenceFlow id="toJoin" sourceRef="gw" targetRef="join"/>
    <endEvent id="elsewhere"/>
    <inclusiveGateway id="join"/>
    <sequenceFlow id="f2" sourceRef="join" targetRef="end"/>
    <endEvent id="end"/>`);
  // merge → split (A if a, B if b) → join → again? back to merge
  await deployProcess(as.admin, 'or_loop', `
    <startEvent id="start"/>
    <sequenceFlow id="f1" sourceRef="start" targetRef="merge"/>
    <exclusiveGateway id="merge"/>
    <sequenceFlow id="f2" sourceRef="merge" targetRef="split"/>
    <inclusiveGateway id="split"/>
    <sequenceFlow id="toA" sourceRef="split" targetRef="A"><conditionExpression>=a</conditionExpression></sequenceFlow>
    <sequenceFlow id="toB" sourceRef="split" targetRef="B"><conditionExpression>=b</conditionExpression></sequenceFlow>
    <userTask id="A"/>
    <userTask id="B"/>
    <sequenceFlow id="fromA" sourceRef="A" targetRef="join"/>
    <sequenceFlow id="fromB" sourceRef="B" targetRef="join"/>
    <inclusiveGateway id="join"/>
    <sequenceFlow id="f3" sourceRef="join" targetRef="again"/>
    <exclusiveGateway id="again" default="toEnd"/>
    <sequenceFlow id="back" sourceRef="again" targetRef="merge"><conditionExpression>=round &lt; 2</conditionExpression></sequenceFlow>
    <sequenceFlow id="toEnd" sourceRef="again" targetRef="end"/>
    <endEvent id="end"/>`);
  // outer split → X → outerJoin; outer split → inner split → B, C → innerJoin → outerJoin
  await deployProcess(as.admin, 'or_nested', `
    <startEvent id="start"/>
    <sequenceFlow id="f1" sourceRef="start" targetRef="outer"/>
    <inclusiveGateway id="outer"/>
    <sequenceFlow id="toX" sourceRef="outer" targetRef="X"/>
    <sequenceFlow id="toInner" sourceRef="outer" targetRef="inner"/>
    <userTask id="X"/>
    <inclusiveGateway id="inner"/>
    <sequenceFlow id="toB" sourceRef="inner" targetRef="B"/>
    <sequenceFlow id="toC" sourceRef="inner" targetRef="C"/>
    <userTask id="B"/>
    <userTask id="C"/>
    <sequenceFlow id="fromB" sourceRef="B" targetRef="innerJoin"/>
    <sequenceFlow id="fromC" sourceRef="C" targetRef="innerJoin"/>
    <inclusiveGateway id="innerJoin"/>
    <sequenceFlow id="fromInner" sourceRef="innerJoin" targetRef="outerJoin"/>
    <sequenceFlow id="fromX" sourceRef="X" targetRef="outerJoin"/>
    <inclusiveGateway id="outerJoin"/>
    <sequenceFlow id="f2" sourceRef="outerJoin" targetRef="end"/>
    <endEvent id="end"/>`);
  // one branch reaches the join within start_process, the other waits at a task
  await deployProcess(as.admin, 'or_half_automatic', `
    <startEvent id="start"/>
    <sequenceFlow id="f1" sourceRef="start" targetRef="split"/>
    <inclusiveGateway id="split"/>
    <sequenceFlow id="toM" sourceRef="split" targetRef="M"/>
    <sequenceFlow id="toU" sourceRef="split" targetRef="U"/>
    <manualTask id="M"/>
    <userTask id="U"/>
    <sequenceFlow id="fromM" sourceRef="M" targetRef="join"/>
    <sequenceFlow id="fromU" sourceRef="U" targetRef="join"/>
    <inclusiveGateway id="join"/>
    <sequenceFlow id="f2" sourceRef="join" targetRef="end"/>
    <endEvent id="end"/>`);
});

afterAll(() => db.close());

test('the fork takes every holding flow but not the default; the join waits for both tokens and fires once', async () => {
  const started = await startProcess(as.admin, 'inclusive', { amount: 500, vip: true });
  expect(await openTaskIds(as.admin, started.id)).toEqual(['A', 'B']);

  await completeTask(as.admin, (await openTask(as.admin, started.id, 'A')).id);
  // B can still reach the join: it does not fire
  expect((await getInstance(as.admin, started.id)).state).toBe('active');
  expect(await waits(db.root, started.id)).toEqual([
    'B userTask',
    'join token via fromA',
  ]);
  expect(await history(as.admin, started.id)).toEqual([
    'start startEvent completed',
    'split inclusiveGateway completed',
    'A userTask completed',
    'B userTask active',
    'join inclusiveGateway active',
  ]);

  await completeTask(as.admin, (await openTask(as.admin, started.id, 'B')).id);
  expect((await getInstance(as.admin, started.id)).state).toBe('completed');
  expect(await history(as.admin, started.id)).toEqual([
    'start startEvent completed',
    'split inclusiveGateway completed',
    'A userTask completed',
    'B userTask completed',
    'join inclusiveGateway completed',
    'join inclusiveGateway completed',
    'end endEvent completed',
  ]);
  expect(await waits(db.root, started.id)).toEqual([]);
});

test('a branch that was not taken does not block the join', async () => {
  const started = await startProcess(as.admin, 'inclusive', { amount: 500, vip: false });
  expect(await openTaskIds(as.admin, started.id)).toEqual(['A']);
  await completeTask(as.admin, (await openTask(as.admin, started.id, 'A')).id);
  expect((await getInstance(as.admin, started.id)).state).toBe('completed');
  expect(await history(as.admin, started.id)).toEqual([
    'start startEvent completed',
    'split inclusiveGateway completed',
    'A userTask completed',
    'join inclusiveGateway completed',
    'end endEvent completed',
  ]);
});

test('the default flow is taken only when no condition holds', async () => {
  const onlyB = await startProcess(as.admin, 'inclusive', { amount: 5, vip: true });
  expect(await openTaskIds(as.admin, onlyB.id)).toEqual(['B']);
  const fallback = await startProcess(as.admin, 'inclusive', { amount: 5, vip: false });
  expect(await openTaskIds(as.admin, fallback.id)).toEqual(['C']);
  expect(await waits(db.root, fallback.id)).toEqual(['C userTask']);
  await completeTask(as.admin, (await openTask(as.admin, fallback.id, 'C')).id);
  expect((await getInstance(as.admin, fallback.id)).state).toBe('completed');
});

test('no holding condition and no default flow is BP301, rolled back', async () => {
  await expectRejectedUnchanged(db.root, () => startProcess(as.admin, 'or_no_default', { a: false, b: false }), 'BP301', /inclusiveGateway split/);
  const both = await startProcess(as.admin, 'or_no_default', { a: true, b: true });
  expect(await openTaskIds(as.admin, both.id)).toEqual(['A', 'B']);
});

test('the join keeps waiting while an active branch is still upstream behind a task', async () => {
  const started = await startProcess(as.admin, 'or_upstream');
  expect(await openTaskIds(as.admin, started.id)).toEqual(['A', 'B']);

  await completeTask(as.admin, (await openTask(as.admin, started.id, 'A')).id);
  await completeTask(as.admin, (await openTask(as.admin, started.id, 'B')).id);
  // the second branch now waits at the external task C, which can still reach the join
  expect((await getInstance(as.admin, started.id)).state).toBe('active');
  expect(await waits(db.root, started.id)).toEqual([
    'C externalTask',
    'join token via fromA',
  ]);

  const c = one(await fetchAndLock(as.engine, 'or-upstream', 'w'), 'external task C');
  await completeExternalTask(as.engine, c.id, 'w');
  expect((await getInstance(as.admin, started.id)).state).toBe('completed');
  expect(await history(as.admin, started.id)).toEqual([
    'start startEvent completed',
    'split inclusiveGateway completed',
    'A userTask completed',
    'B userTask completed',
    'join inclusiveGateway completed',
    'C serviceTask completed',
    'join inclusiveGateway completed',
    'end endEvent completed',
  ]);
  expect(await waits(db.root, started.id)).toEqual([]);
});

test('an inclusive fork and join without wait states complete within start_process', async () => {
  const two = await startProcess(as.admin, 'or_automatic', { n: 2 });
  expect(two.state).toBe('completed');
  expect(await history(as.admin, two.id)).toEqual([
    'start startEvent completed',
    'split inclusiveGateway completed',
    'X manualTask completed',
    'Y task completed',
    'join inclusiveGateway completed',
    'join inclusiveGateway completed',
    'end endEvent completed',
  ]);
  const byDefault = await startProcess(as.admin, 'or_automatic', { n: 0 });
  expect(byDefault.state).toBe('completed');
  expect(await history(as.admin, byDefault.id)).toEqual([
    'start startEvent completed',
    'split inclusiveGateway completed',
    'Z manualTask completed',
    'join inclusiveGateway completed',
    'end endEvent completed',
  ]);
  expect(await waits(db.root, byDefault.id)).toEqual([]);
});

test('every condition of an inclusive fork is evaluated: an unset variable in a later one is BP302', async () => {
  // amount > 100 holds, but vip is still needed for the second flow
  await expectRejectedUnchanged(db.root, () => startProcess(as.admin, 'inclusive', { amount: 500 }), 'BP302', /"vip"/);
});

test('the join fires once a token that could reach it leaves the region elsewhere', async () => {
  const started = await startProcess(as.admin, 'or_bypass');
  await completeTask(as.admin, (await openTask(as.admin, started.id, 'A')).id);
  expect(await waits(db.root, started.id)).toEqual(['B userTask', 'join token via fromA']);
  await completeTask(as.admin, (await openTask(as.admin, started.id, 'B')).id, { skip: true });
  expect((await getInstance(as.admin, started.id)).state).toBe('completed');
  expect(await history(as.admin, started.id)).toEqual([
    'start startEvent completed',
    'split inclusiveGateway completed',
    'A userTask completed',
    'B userTask completed',
    'join inclusiveGateway completed',
    'gw exclusiveGateway completed',
    'elsewhere endEvent completed',
    'end endEvent completed',
  ]);
  expect(await waits(db.root, started.id)).toEqual([]);
});

test('the same model joins both tokens when B reaches the join', async () => {
  const started = await startProcess(as.admin, 'or_bypass');
  await completeTask(as.admin, (await openTask(as.admin, started.id, 'B')).id, { skip: false });
  expect(await waits(db.root, started.id)).toEqual(['A userTask', 'join token via toJoin']);
  await completeTask(as.admin, (await openTask(as.admin, started.id, 'A')).id);
  expect((await getInstance(as.admin, started.id)).state).toBe('completed');
  expect((await history(as.admin, started.id)).filter((r) => r.startsWith('join ') || r.startsWith('end '))).toEqual([
    'join inclusiveGateway completed',
    'join inclusiveGateway completed',
    'end endEvent completed',
  ]);
});

test('an inclusive join in a loop fires once per round with the branches taken in that round', async () => {
  const started = await startProcess(as.admin, 'or_loop', { a: true, b: true, round: 0 });
  // round 1: both branches
  expect(await openTaskIds(as.admin, started.id)).toEqual(['A', 'B']);
  await completeTask(as.admin, (await openTask(as.admin, started.id, 'A')).id);
  expect(await waits(db.root, started.id)).toEqual(['B userTask', 'join token via fromA']);
  await completeTask(as.admin, (await openTask(as.admin, started.id, 'B')).id, { round: 1, a: false });
  // round 2: only B
  expect(await openTaskIds(as.admin, started.id)).toEqual(['B']);
  await completeTask(as.admin, (await openTask(as.admin, started.id, 'B')).id, { round: 2 });
  expect((await getInstance(as.admin, started.id)).state).toBe('completed');
  expect(await history(as.admin, started.id)).toEqual([
    'start startEvent completed',
    'merge exclusiveGateway completed',
    'split inclusiveGateway completed',
    'A userTask completed',
    'B userTask completed',
    'join inclusiveGateway completed',
    'join inclusiveGateway completed',
    'again exclusiveGateway completed',
    'merge exclusiveGateway completed',
    'split inclusiveGateway completed',
    'B userTask completed',
    'join inclusiveGateway completed',
    'again exclusiveGateway completed',
    'end endEvent completed',
  ]);
  expect(await waits(db.root, started.id)).toEqual([]);
});

test('nested inclusive joins: the outer join waits for the inner one, which waits for its own branches', async () => {
  const started = await startProcess(as.admin, 'or_nested');
  expect(await openTaskIds(as.admin, started.id)).toEqual(['X', 'B', 'C']);
  await completeTask(as.admin, (await openTask(as.admin, started.id, 'X')).id);
  await completeTask(as.admin, (await openTask(as.admin, started.id, 'B')).id);
  expect(await waits(db.root, started.id)).toEqual(['C userTask', 'innerJoin token via fromB', 'outerJoin token via fromX']);
  await completeTask(as.admin, (await openTask(as.admin, started.id, 'C')).id);
  expect((await getInstance(as.admin, started.id)).state).toBe('completed');
  expect(await history(as.admin, started.id)).toEqual([
    'start startEvent completed',
    'outer inclusiveGateway completed',
    'X userTask completed',
    'inner inclusiveGateway completed',
    'B userTask completed',
    'C userTask completed',
    'outerJoin inclusiveGateway completed',
    'innerJoin inclusiveGateway completed',
    'innerJoin inclusiveGateway completed',
    'outerJoin inclusiveGateway completed',
    'end endEvent completed',
  ]);
  expect(await waits(db.root, started.id)).toEqual([]);
});

test('a token reaching the join within start_process waits for the branch held at a task', async () => {
  const started = await startProcess(as.admin, 'or_half_automatic');
  expect(started.state).toBe('active');
  expect(await waits(db.root, started.id)).toEqual(['U userTask', 'join token via fromM']);
  await completeTask(as.admin, (await openTask(as.admin, started.id, 'U')).id);
  expect((await getInstance(as.admin, started.id)).state).toBe('completed');
  expect(await history(as.admin, started.id)).toEqual([
    'start startEvent completed',
    'split inclusiveGateway completed',
    'M manualTask completed',
    'U userTask completed',
    'join inclusiveGateway completed',
    'join inclusiveGateway completed',
    'end endEvent completed',
  ]);
});
