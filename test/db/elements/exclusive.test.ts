/**
 * Exclusive gateways: the first outgoing flow in document order whose
 * condition holds (JUEL or FEEL), else the default flow; no flow at all is
 * BP301, and evaluation errors (BP302 unknown variable, BP303 non-boolean)
 * roll the whole call back, in start_process as in complete_task.
 */
import { createTestDb, type TestDb } from '../../helpers/db';
import { deployFixture, deployProcess, expectRejectedUnchanged } from '../../helpers/engine';
import { actors, completeTask, getInstance, history, openTask, openTaskIds, path, startProcess, waits, type Actors } from './support';

let db: TestDb;
let as: Actors;

beforeAll(async () => {
  db = await createTestDb();
  as = await actors(db);
  await deployFixture(as.admin, 'exclusive.bpmn');
  // document order differs from id order: zFirst is declared before aSecond
  await deployProcess(as.admin, 'xor_document_order', `
    <startEvent id="start"/>
    <sequenceFlow id="f1" sourceRef="start" targetRef="gw"/>
    <exclusiveGateway id="gw"/>
    <sequenceFlow id="zFirst" sourceRef="gw" targetRef="first"><conditionExpression>\${x &gt; 1}</conditionExpression></sequenceFlow>
    <sequenceFlow id="aSecond" sourceRef="gw" targetRef="second"><conditionExpression>\${x &gt; 0}</conditionExpression></sequenceFlow>
    <manualTask id="first"/>
    <manualTask id="second"/>`);
  await deployProcess(as.admin, 'xor_feel', `
    <startEvent id="start"/>
    <sequenceFlow id="f1" sourceRef="start" targetRef="gw"/>
    <exclusiveGateway id="gw" default="toOther"/>
    <sequenceFlow id="toGold" sourceRef="gw" targetRef="gold"><conditionExpression>=tier = "gold" and amount &gt;= 100</conditionExpression></sequenceFlow>
    <sequenceFlow id="toBig" sourceRef="gw" targetRef="big"><conditionExpression>=amount &gt;= 100</conditionExpression></sequenceFlow>
    <sequenceFlow id="toOther" sourceRef="gw" targetRef="other"/>
    <userTask id="gold"/>
    <userTask id="big"/>
    <userTask id="other"/>`);
  // no default flow: x between 0 and 10 leaves no way out
  await deployProcess(as.admin, 'xor_no_default', `
    <startEvent id="start"/>
    <sequenceFlow id="f1" sourceRef="start" targetRef="gw"/>
    <exclusiveGateway id="gw"/>
    <sequenceFlow id="toHigh" sourceRef="gw" targetRef="high"><conditionExpression>\${x &gt; 10}</conditionExpression></sequenceFlow>
    <sequenceFlow id="toNeg" sourceRef="gw" targetRef="neg"><conditionExpression>\${x &lt; 0}</conditionExpression></sequenceFlow>
    <endEvent id="high"/>
    <endEvent id="neg"/>`);
  // the same gateway behind a user task: the decision happens in complete_task
  await deployProcess(as.admin, 'xor_after_task', `
    <startEvent id="start"/>
    <sequenceFlow id="f1" sourceRef="start" targetRef="decide"/>
    <userTask id="decide"/>
    <sequenceFlow id="f2" sourceRef="decide" targetRef="gw"/>
    <exclusiveGateway id="gw"/>
    <sequenceFlow id="toHigh" sourceRef="gw" targetRef="high"><conditionExpression>\${x &gt; 10}</conditionExpression></sequenceFlow>
    <sequenceFlow id="toNeg" sourceRef="gw" targetRef="neg"><conditionExpression>\${x &lt; 0}</conditionExpression></sequenceFlow>
    <endEvent id="high"/>
    <endEvent id="neg"/>`);
  await deployProcess(as.admin, 'xor_non_boolean', `
    <startEvent id="start"/>
    <sequenceFlow id="f1" sourceRef="start" targetRef="gw"/>
    <exclusiveGateway id="gw" default="toOther"/>
    <sequenceFlow id="toFlag" sourceRef="gw" targetRef="flagged"><conditionExpression>\${flag}</conditionExpression></sequenceFlow>
    <sequenceFlow id="toOther" sourceRef="gw" targetRef="other"/>
    <endEvent id="flagged"/>
    <endEvent id="other"/>`);
  await deployProcess(as.admin, 'xor_feel_non_boolean', `
    <startEvent id="start"/>
    <sequenceFlow id="f1" sourceRef="start" targetRef="gw"/>
    <exclusiveGateway id="gw" default="toOther"/>
    <sequenceFlow id="toBig" sourceRef="gw" targetRef="big"><conditionExpression>=amount &gt; 100</conditionExpression></sequenceFlow>
    <sequenceFlow id="toOther" sourceRef="gw" targetRef="other"/>
    <endEvent id="big"/>
    <endEvent id="other"/>`);
  // the second condition needs a variable the first one does not
  await deployProcess(as.admin, 'xor_lazy', `
    <startEvent id="start"/>
    <sequenceFlow id="f1" sourceRef="start" targetRef="gw"/>
    <exclusiveGateway id="gw" default="toC"/>
    <sequenceFlow id="toA" sourceRef="gw" targetRef="A"><conditionExpression>\${x &gt; 0}</conditionExpression></sequenceFlow>
    <sequenceFlow id="toB" sourceRef="gw" targetRef="B"><conditionExpression>\${y &gt; 0}</conditionExpression></sequenceFlow>
    <sequenceFlow id="toC" sourceRef="gw" targetRef="C"/>
    <endEvent id="A"/>
    <endEvent id="B"/>
    <endEvent id="C"/>`);
});

afterAll(() => db.close());

describe('exclusive.bpmn (JUEL conditions, default flow)', () => {
  test('when several conditions hold the first flow in document order is taken', async () => {
    const started = await startProcess(as.admin, 'exclusive', { amount: 5000 }); // > 1000 and > 100
    expect(await history(as.admin, started.id)).toEqual([
      'start startEvent completed',
      'gw exclusiveGateway completed',
      'high userTask active',
    ]);
    expect(await waits(db.root, started.id)).toEqual(['high userTask']);
  });

  test('the second flow is taken when only its condition holds', async () => {
    const started = await startProcess(as.admin, 'exclusive', { amount: 500 });
    expect(await openTaskIds(as.admin, started.id)).toEqual(['mid']);
  });

  test('the default flow is taken when no condition holds, and the merge passes the token on', async () => {
    const started = await startProcess(as.admin, 'exclusive', { amount: 5 });
    expect(await openTaskIds(as.admin, started.id)).toEqual(['low']);
    await completeTask(as.admin, (await openTask(as.admin, started.id, 'low')).id);
    expect((await getInstance(as.admin, started.id)).state).toBe('completed');
    expect(await history(as.admin, started.id)).toEqual([
      'start startEvent completed',
      'gw exclusiveGateway completed',
      'low userTask completed',
      'merge exclusiveGateway completed',
      'end endEvent completed',
    ]);
  });

  test('comparisons at the boundaries are exact (1001 high, 1000 and 101 mid, 100 low)', async () => {
    const paths: string[][] = [];
    for (const amount of [1001, 1000, 101, 100]) {
      paths.push(await openTaskIds(as.admin, (await startProcess(as.admin, 'exclusive', { amount })).id));
    }
    expect(paths).toEqual([['high'], ['mid'], ['mid'], ['low']]);
  });
});

test('document order, not id order, decides between holding conditions', async () => {
  const both = await startProcess(as.admin, 'xor_document_order', { x: 5 });
  expect(await path(as.admin, both.id)).toEqual(['start', 'gw', 'first']);
  const onlySecond = await startProcess(as.admin, 'xor_document_order', { x: 1 });
  expect(await path(as.admin, onlySecond.id)).toEqual(['start', 'gw', 'second']);
});

test('FEEL conditions choose the first holding flow, else the default', async () => {
  const gold = await startProcess(as.admin, 'xor_feel', { tier: 'gold', amount: 150 });
  expect(await openTaskIds(as.admin, gold.id)).toEqual(['gold']);
  const big = await startProcess(as.admin, 'xor_feel', { tier: 'silver', amount: 150 });
  expect(await openTaskIds(as.admin, big.id)).toEqual(['big']);
  const other = await startProcess(as.admin, 'xor_feel', { tier: 'gold', amount: 99 });
  expect(await openTaskIds(as.admin, other.id)).toEqual(['other']);
});

test('no holding condition and no default flow in start_process is BP301 and no instance is created', async () => {
  await expectRejectedUnchanged(db.root, () => startProcess(as.admin, 'xor_no_default', { x: 5 }), 'BP301', /exclusiveGateway gw/);
  // the same model runs when a condition holds
  const ok = await startProcess(as.admin, 'xor_no_default', { x: -1 });
  expect(ok.state).toBe('completed');
  expect(await path(as.admin, ok.id)).toEqual(['start', 'gw', 'neg']);
});

test('no holding condition and no default flow in complete_task is BP301 and the task stays open', async () => {
  const started = await startProcess(as.admin, 'xor_after_task', { x: 5 });
  const task = await openTask(as.admin, started.id, 'decide');
  await expectRejectedUnchanged(db.root, () => completeTask(as.admin, task.id, { x: 3, note: 'nope' }), 'BP301', /gw/);

  const still = await openTask(as.admin, started.id, 'decide');
  expect(still).toEqual(task);
  const instance = await getInstance(as.admin, started.id);
  expect(instance.state).toBe('active');
  expect(instance.variables).toEqual({ x: 5 });
  expect(await waits(db.root, started.id)).toEqual(['decide userTask']);

  // completing it with a value that leads somewhere works afterwards
  await completeTask(as.admin, task.id, { x: 11 });
  const done = await getInstance(as.admin, started.id);
  expect(done).toMatchObject({ state: 'completed', variables: { x: 11 } });
  expect(await history(as.admin, started.id)).toEqual([
    'start startEvent completed',
    'decide userTask completed',
    'gw exclusiveGateway completed',
    'high endEvent completed',
  ]);
});

test('a condition over an unset variable is BP302 naming the variable, rolled back in start_process', async () => {
  await expectRejectedUnchanged(db.root, () => startProcess(as.admin, 'exclusive', { amont: 5 }), 'BP302', /"amount"/);
});

test('a condition over an unset variable is BP302 in complete_task and the task stays open', async () => {
  const started = await startProcess(as.admin, 'xor_after_task');
  const task = await openTask(as.admin, started.id, 'decide');
  await expectRejectedUnchanged(db.root, () => completeTask(as.admin, task.id, { y: 20 }), 'BP302', /"x"/);
  expect((await openTask(as.admin, started.id, 'decide')).state).toBe('open');
});

test('a JUEL condition that is not a boolean is BP303 and rolled back', async () => {
  await expectRejectedUnchanged(db.root, () => startProcess(as.admin, 'xor_non_boolean', { flag: 5 }), 'BP303', /did not evaluate to a boolean/);
  await expectRejectedUnchanged(db.root, () => startProcess(as.admin, 'xor_non_boolean', { flag: 'yes' }), 'BP303');
  // a real boolean works either way
  expect(await path(as.admin, (await startProcess(as.admin, 'xor_non_boolean', { flag: true })).id)).toEqual(['start', 'gw', 'flagged']);
  expect(await path(as.admin, (await startProcess(as.admin, 'xor_non_boolean', { flag: false })).id)).toEqual(['start', 'gw', 'other']);
});

test('a FEEL comparison of a string with a number is BP303 and rolled back', async () => {
  await expectRejectedUnchanged(db.root, () => startProcess(as.admin, 'xor_feel_non_boolean', { amount: 'lots' }), 'BP303');
  expect(await path(as.admin, (await startProcess(as.admin, 'xor_feel_non_boolean', { amount: 101 })).id)).toEqual(['start', 'gw', 'big']);
});

test('conditions after the first holding one are not evaluated (no BP302 for variables only they use)', async () => {
  const started = await startProcess(as.admin, 'xor_lazy', { x: 1 });
  expect(await path(as.admin, started.id)).toEqual(['start', 'gw', 'A']);
  await expectRejectedUnchanged(db.root, () => startProcess(as.admin, 'xor_lazy', { x: 0 }), 'BP302', /"y"/);
});
