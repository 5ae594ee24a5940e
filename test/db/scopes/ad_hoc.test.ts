/**
 * Ad-hoc subprocesses through the public functions: activation on entry
 * (zeebe:adHoc activeElementsCollection) and later
 * (bpm.activate_ad_hoc_activities), completion by the completion condition
 * with or without cancelling what is still active, and every refusal
 * leaving the database as it was.
 */
import type pg from 'pg';
import { createTestDb, type TestDb } from '../../helpers/db';
import { deployProcess, expectRejectedUnchanged } from '../../helpers/engine';
import { actors, completeTask, getInstance, openTask, startProcess, userTasks, type Actors } from '../elements/support';

let db: TestDb;
let as: Actors;

/** start → ad-hoc subprocess `work` (tasks a, b, c; c → d chained) → after. */
const model = (attrs = '', inside = '') => `
  <startEvent id="s"/><sequenceFlow id="f1" sourceRef="s" targetRef="work"/>
  <adHocSubProcess id="work"${attrs}>
    ${inside}
    <userTask id="a"/><userTask id="b"/>
    <userTask id="c"/><sequenceFlow id="w1" sourceRef="c" targetRef="d"/><userTask id="d"/>
  </adHocSubProcess>
  <sequenceFlow id="f2" sourceRef="work" targetRef="after"/><userTask id="after"/>`;

const ACTIVE_FROM_VARIABLE = '<extensionElements><zeebe:adHoc activeElementsCollection="=tools"/></extensionElements>';
const condition = (expr: string) => `<completionCondition xsi:type="tFormalExpression">${expr}</completionCondition>`;

beforeAll(async () => {
  db = await createTestDb();
  as = await actors(db);
  await deployProcess(as.admin, 'adhoc_plain', model('', ACTIVE_FROM_VARIABLE));
  await deployProcess(as.admin, 'adhoc_done', model('', `${ACTIVE_FROM_VARIABLE}${condition('=done')}`));
  await deployProcess(as.admin, 'adhoc_wait', model(' cancelRemainingInstances="false"', `${ACTIVE_FROM_VARIABLE}${condition('=done')}`));
});

afterAll(async () => {
  await db?.close();
});

async function openElements(instanceId: string): Promise<string[]> {
  return (await userTasks(as.admin, instanceId)).filter((t) => t.state === 'open').map((t) => t.element_id).sort();
}

async function adHocInstance(client: pg.Client, instanceId: string): Promise<{ id: string; state: string; element_type: string }> {
  const { rows } = await client.query(`select id, state, element_type from bpm.activity_instance where instance_id = $1 and element_id = 'work'`, [instanceId]);
  expect(rows).toHaveLength(1);
  return rows[0];
}

async function activate(client: pg.Client, adHocId: string, elements: string[]): Promise<void> {
  await client.query('select bpm.activate_ad_hoc_activities($1, $2)', [adHocId, elements]);
}

test('entering activates the elements activeElementsCollection lists; it completes when nothing is active in it any more', async () => {
  const instance = await startProcess(as.admin, 'adhoc_plain', { tools: ['a', 'c'] });
  expect(await openElements(instance.id)).toEqual(['a', 'c']);
  const work = await adHocInstance(as.admin, instance.id);
  expect(work).toMatchObject({ state: 'active', element_type: 'adHocSubProcess' });
  await completeTask(as.admin, (await openTask(as.admin, instance.id, 'a')).id);
  // c's path goes on to d (a flow inside); the subprocess waits for it
  await completeTask(as.admin, (await openTask(as.admin, instance.id, 'c')).id);
  expect(await openElements(instance.id)).toEqual(['d']);
  await completeTask(as.admin, (await openTask(as.admin, instance.id, 'd')).id);
  expect(await openElements(instance.id)).toEqual(['after']);
  expect((await adHocInstance(as.admin, instance.id)).state).toBe('completed');
});

test('nothing listed: it waits until elements are activated, each any number of times, also by a worker', async () => {
  const instance = await startProcess(as.admin, 'adhoc_plain', { tools: [] });
  const work = await adHocInstance(as.admin, instance.id);
  expect(await openElements(instance.id)).toEqual([]);
  expect((await getInstance(as.admin, instance.id)).state).toBe('active');
  await activate(as.engine, work.id, ['b', 'b']);
  expect(await openElements(instance.id)).toEqual(['b', 'b']);
  for (const t of (await userTasks(as.admin, instance.id)).filter((u) => u.state === 'open')) await completeTask(as.admin, t.id);
  expect(await openElements(instance.id)).toEqual(['after']);
  const { rows } = await as.admin.query(`select element_id, state from bpm.activity_instance where instance_id = $1 and element_id in ('work', 'b') order by seq`, [instance.id]);
  expect(rows).toEqual([
    { element_id: 'work', state: 'completed' }, { element_id: 'b', state: 'completed' }, { element_id: 'b', state: 'completed' },
  ]);
});

test('a completion condition that holds completes it and cancels what is still active', async () => {
  const instance = await startProcess(as.admin, 'adhoc_done', { tools: ['a', 'b'], done: false });
  await completeTask(as.admin, (await openTask(as.admin, instance.id, 'a')).id, { done: true });
  expect(await openElements(instance.id)).toEqual(['after']);
  const states = (await userTasks(as.admin, instance.id)).map((t) => [t.element_id, t.state]);
  expect(states).toEqual(expect.arrayContaining([['a', 'completed'], ['b', 'cancelled'], ['after', 'open']]));
  expect((await adHocInstance(as.admin, instance.id)).state).toBe('completed');
});

test('a completion condition that does not hold keeps it waiting, also with nothing active', async () => {
  const instance = await startProcess(as.admin, 'adhoc_done', { tools: ['a'], done: false });
  await completeTask(as.admin, (await openTask(as.admin, instance.id, 'a')).id);
  expect(await openElements(instance.id)).toEqual([]);
  const work = await adHocInstance(as.admin, instance.id);
  expect(work.state).toBe('active');
  await activate(as.admin, work.id, ['b']);
  await completeTask(as.admin, (await openTask(as.admin, instance.id, 'b')).id, { done: true });
  expect(await openElements(instance.id)).toEqual(['after']);
});

test('cancelRemainingInstances="false": once the condition holds it waits for what is active, then completes; nothing more can be activated', async () => {
  const instance = await startProcess(as.admin, 'adhoc_wait', { tools: ['a', 'b'], done: false });
  await completeTask(as.admin, (await openTask(as.admin, instance.id, 'a')).id, { done: true });
  expect(await openElements(instance.id)).toEqual(['b']);
  const work = await adHocInstance(as.admin, instance.id);
  expect(work.state).toBe('active');
  await expectRejectedUnchanged(db.root, () => activate(as.admin, work.id, ['c']), 'BP222', /is completing \(its completion condition held\)/);
  // the condition is not evaluated again: b ends it although done is false by now
  await completeTask(as.admin, (await openTask(as.admin, instance.id, 'b')).id, { done: false });
  expect(await openElements(instance.id)).toEqual(['after']);
});

test('refused, changing nothing: a collection that lists what it cannot activate; bad activations', async () => {
  await expectRejectedUnchanged(db.root, () => startProcess(as.admin, 'adhoc_plain', { tools: ['a', 'd'] }), 'BP316',
    /activeElementsCollection of ad-hoc subprocess work lists "d", which is not an element it can activate \(it can activate \["a", "b", "c"\]\)/);
  await expectRejectedUnchanged(db.root, () => startProcess(as.admin, 'adhoc_plain', { tools: 'a' }), 'BP316', /is not a list of element ids/);
  const instance = await startProcess(as.admin, 'adhoc_plain', { tools: ['a'] });
  const work = await adHocInstance(as.admin, instance.id);
  const taskRow = (await as.admin.query(`select id from bpm.activity_instance where instance_id = $1 and element_id = 'a'`, [instance.id])).rows[0];
  await expectRejectedUnchanged(db.root, () => activate(as.admin, work.id, ['d']), 'BP414', /cannot activate d: it is not an element ad-hoc subprocess work can activate/);
  await expectRejectedUnchanged(db.root, () => activate(as.admin, work.id, ['nowhere']), 'BP112', /element nowhere is not in the process graph/);
  await expectRejectedUnchanged(db.root, () => activate(as.admin, work.id, []), 'BP401');
  await expectRejectedUnchanged(db.root, () => activate(as.admin, '00000000-0000-0000-0000-000000000000', ['a']), 'BP111');
  await expectRejectedUnchanged(db.root, () => activate(as.admin, taskRow.id, ['b']), 'BP222', /is not an active ad-hoc subprocess \(it is active userTask\)/);
  await as.admin.query('select bpm.suspend_process_instance($1)', [instance.id]);
  await expectRejectedUnchanged(db.root, () => activate(as.admin, work.id, ['b']), 'BP202');
  await as.admin.query('select bpm.activate_process_instance($1)', [instance.id]);
  // other tenants and bpm_user
  const other = await db.connectAs({ role: 'bpm_admin', tenant: 'other', user: 'admin' });
  await expectRejectedUnchanged(db.root, () => activate(other, work.id, ['b']), 'BP111');
  await other.end();
  await expectRejectedUnchanged(db.root, () => activate(as.alice, work.id, ['b']), '42501');
  // after it completed
  await completeTask(as.admin, (await openTask(as.admin, instance.id, 'a')).id);
  await expectRejectedUnchanged(db.root, () => activate(as.admin, work.id, ['b']), 'BP222', /is not an active ad-hoc subprocess \(it is completed adHocSubProcess\)/);
});

test('locals, boundary events and a multi-instance ad-hoc subprocess', async () => {
  await deployProcess(as.admin, 'adhoc_mi', `
    <startEvent id="s"/><sequenceFlow id="f1" sourceRef="s" targetRef="work"/>
    <adHocSubProcess id="work">
      <multiInstanceLoopCharacteristics><extensionElements><zeebe:loopCharacteristics inputCollection="=orders" inputElement="order"/></extensionElements></multiInstanceLoopCharacteristics>
      <extensionElements><zeebe:adHoc activeElementsCollection="=[&quot;check&quot;]"/><zeebe:ioMapping><zeebe:input source="=order + &quot;-x&quot;" target="ref"/></zeebe:ioMapping></extensionElements>
      <userTask id="check"><extensionElements><zeebe:assignmentDefinition assignee="=ref"/></extensionElements></userTask>
    </adHocSubProcess>
    <boundaryEvent id="late" attachedToRef="work"><timerEventDefinition><timeDuration>PT1H</timeDuration></timerEventDefinition></boundaryEvent>
    <sequenceFlow id="f3" sourceRef="late" targetRef="timedOut"/><endEvent id="timedOut"/>
    <sequenceFlow id="f2" sourceRef="work" targetRef="e"/><endEvent id="e"/>`);
  const instance = await startProcess(as.admin, 'adhoc_mi', { orders: ['o1', 'o2'] });
  const tasks = (await userTasks(as.admin, instance.id)).map((t) => t.assignee).sort();
  expect(tasks).toEqual(['o1-x', 'o2-x']);
  const { rows } = await as.admin.query(`select count(*)::int as n from bpm.event_subscription where instance_id = $1 and kind = 'timer'`, [instance.id]);
  expect(rows[0].n).toBe(1);
  // an inner instance takes more activations through the API; each sees that inner instance's locals
  const { rows: inner } = await as.admin.query(
    `select id from bpm.activity_instance where instance_id = $1 and element_id = 'work' and element_type = 'adHocSubProcess' order by seq`, [instance.id]);
  expect(inner).toHaveLength(2);
  await activate(as.engine, inner[1].id, ['check']);
  expect((await userTasks(as.admin, instance.id)).map((t) => t.assignee).sort()).toEqual(['o1-x', 'o2-x', 'o2-x']);
  for (const t of await userTasks(as.admin, instance.id)) await completeTask(as.admin, t.id);
  expect((await getInstance(as.admin, instance.id)).state).toBe('completed');
  expect((await getInstance(as.admin, instance.id)).variables).toEqual({ orders: ['o1', 'o2'] });
});
