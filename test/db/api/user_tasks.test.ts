/**
 * User task API: complete_task, claim_task, unclaim_task, set_assignee.
 * Who may act on which task (assigned, offered by candidate user/group, or
 * neither), the state rules, and that every refused call changes nothing.
 */
import type pg from 'pg';
import { createTestDb, type TestDb } from '../../helpers/db';
import { deployFixture, deployProcess, expectRejectedUnchanged, snapshot } from '../../helpers/engine';
import {
  history,
  instance,
  newId,
  one,
  openUserTask,
  start,
  tokenCount,
  userTask,
  userTaskBody,
  userTasks,
  type UserTaskRow,
  type Variables,
} from './support';

const TENANT = 'tasks-t';

let db: TestDb;
let admin: pg.Client; // bpm.user_id = boss
let alice: pg.Client; // sales
let bob: pg.Client; // sales
let carl: pg.Client; // no groups; a candidate user of "offer"
let dave: pg.Client; // ops

beforeAll(async () => {
  db = await createTestDb();
  const designer = await db.connectAs({ role: 'bpm_designer', tenant: TENANT });
  admin = await db.connectAs({ role: 'bpm_admin', tenant: TENANT, user: 'boss' });
  alice = await db.connectAs({ role: 'bpm_user', tenant: TENANT, user: 'alice', groups: ['sales'] });
  bob = await db.connectAs({ role: 'bpm_user', tenant: TENANT, user: 'bob', groups: ['sales', 'ops'] });
  carl = await db.connectAs({ role: 'bpm_user', tenant: TENANT, user: 'carl', groups: [] });
  dave = await db.connectAs({ role: 'bpm_user', tenant: TENANT, user: 'dave', groups: ['ops'] });
  await deployFixture(designer, 'straight.bpmn', 'terminate.bpmn');
  await deployProcess(designer, 'offer', userTaskBody('camunda:candidateGroups="sales" camunda:candidateUsers="carl"'));
  await deployProcess(designer, 'owned', userTaskBody('camunda:assignee="${owner}" camunda:candidateGroups="sales"'));
  await deployProcess(
    designer,
    'guarded',
    `<startEvent id="start"/><sequenceFlow id="f1" sourceRef="start" targetRef="task"/>
     <userTask id="task"/><sequenceFlow id="f2" sourceRef="task" targetRef="gw"/>
     <exclusiveGateway id="gw"/>
     <sequenceFlow id="ok" sourceRef="gw" targetRef="end"><conditionExpression>\${ok}</conditionExpression></sequenceFlow>
     <endEvent id="end"/>`,
  );
});
afterAll(() => db.close());

/** Starts `key` as admin and returns its only open user task. */
async function taskOf(key: string, variables: Variables = {}): Promise<UserTaskRow> {
  const started = await start(admin, key, variables);
  return openUserTask(db.root, started.id);
}

const complete = (client: pg.ClientBase, id: string, variables: Variables = {}): Promise<UserTaskRow> =>
  one<UserTaskRow>(client, 'select * from bpm.complete_task($1, $2::jsonb)', [id, JSON.stringify(variables)]);
const claim = (client: pg.ClientBase, id: string): Promise<UserTaskRow> =>
  one<UserTaskRow>(client, 'select * from bpm.claim_task($1)', [id]);
const unclaim = (client: pg.ClientBase, id: string): Promise<UserTaskRow> =>
  one<UserTaskRow>(client, 'select * from bpm.unclaim_task($1)', [id]);
const setAssignee = (client: pg.ClientBase, id: string, assignee: string | null): Promise<UserTaskRow> =>
  one<UserTaskRow>(client, 'select * from bpm.set_assignee($1, $2)', [id, assignee]);

describe('complete_task', () => {
  test('an admin completes a task: it is completed by them, the instance continues to its end', async () => {
    const task = await taskOf('straight', { a: 1, b: 1 });
    const done = await complete(admin, task.id, { b: 2, c: { deep: true } });
    expect(done).toMatchObject({ id: task.id, state: 'completed', completed_by: 'boss', assignee: null });
    expect(done.completed_at).toBeInstanceOf(Date);
    expect(await userTask(db.root, task.id)).toEqual(done);
    const inst = await instance(db.root, task.instance_id);
    expect(inst).toMatchObject({ state: 'completed', variables: { a: 1, b: 2, c: { deep: true } } });
    expect(inst.ended_at).toBeInstanceOf(Date);
    expect(await history(db.root, task.instance_id)).toEqual(['start:completed', 'task:completed', 'end:completed']);
    expect(await tokenCount(db.root, task.instance_id)).toBe(0);
  });

  test('completing a task twice: BP203 the second time, nothing changes', async () => {
    const task = await taskOf('straight');
    await complete(admin, task.id);
    await expectRejectedUnchanged(
      db.root,
      () => complete(admin, task.id),
      'BP203',
      new RegExp(`user task ${task.id} is completed and cannot complete it`),
    );
  });

  test('completing a task of a cancelled instance: BP203 (the task is cancelled)', async () => {
    const task = await taskOf('straight');
    await admin.query('select bpm.cancel_process_instance($1)', [task.instance_id]);
    expect((await userTask(db.root, task.id)).state).toBe('cancelled');
    await expectRejectedUnchanged(
      db.root,
      () => complete(admin, task.id),
      'BP203',
      new RegExp(`user task ${task.id} is cancelled and cannot complete it`),
    );
  });

  test('a task cancelled by a terminate end event cannot be completed (BP203); the instance has completed', async () => {
    const started = await start(admin, 'terminate');
    const [a, b] = await userTasks(db.root, started.id);
    const [taskA, taskB] = a?.element_id === 'A' ? [a, b] : [b, a];
    if (!taskA || !taskB) throw new Error('terminate has two tasks');
    await complete(admin, taskB.id);
    expect((await instance(db.root, started.id)).state).toBe('completed');
    expect((await userTask(db.root, taskA.id)).state).toBe('cancelled');
    await expectRejectedUnchanged(
      db.root,
      () => complete(admin, taskA.id),
      'BP203',
      new RegExp(`user task ${taskA.id} is cancelled and cannot complete it`),
    );
  });

  test('an unknown task id: BP103 naming it', async () => {
    const id = newId();
    await expectRejectedUnchanged(db.root, () => complete(admin, id), 'BP103', new RegExp(`user task ${id} not found`));
  });

  test('a task of another tenant is not found (BP103)', async () => {
    const task = await taskOf('straight');
    const foreign = await db.connectAs({ role: 'bpm_admin', tenant: 'tasks-other', user: 'boss' });
    await expectRejectedUnchanged(db.root, () => complete(foreign, task.id), 'BP103', new RegExp(`user task ${task.id} not found`));
  });

  test.each([
    ['an array', '[]', 'array'],
    ['a string', '"x"', 'string'],
  ])('variables that are %s: BP401, the task stays open', async (_what, json, type) => {
    const task = await taskOf('straight');
    await expectRejectedUnchanged(
      db.root,
      () => admin.query('select bpm.complete_task($1, $2::jsonb)', [task.id, json]),
      'BP401',
      new RegExp(`variables must be a JSON object, got ${type}`),
    );
  });

  test('when the continuation fails (BP301) the completion is rolled back and the task stays open', async () => {
    const task = await taskOf('guarded');
    await expectRejectedUnchanged(
      db.root,
      () => complete(admin, task.id, { ok: false }),
      'BP301',
      /no outgoing sequence flow of exclusiveGateway gw can be taken/,
    );
    expect((await userTask(db.root, task.id)).state).toBe('open');
    await complete(admin, task.id, { ok: true });
    expect((await instance(db.root, task.instance_id)).state).toBe('completed');
  });

  test('a bpm_user completes a task assigned to them', async () => {
    const task = await taskOf('owned', { owner: 'alice' });
    expect(task.assignee).toBe('alice');
    const done = await complete(alice, task.id, { approved: true });
    expect(done).toMatchObject({ state: 'completed', assignee: 'alice', completed_by: 'alice' });
    expect((await instance(db.root, task.instance_id)).variables).toEqual({ owner: 'alice', approved: true });
  });

  test('a bpm_user completes an unassigned task offered to their group, which claims it for them', async () => {
    const task = await taskOf('offer');
    expect(task).toMatchObject({ assignee: null, candidate_groups: ['sales'], candidate_users: ['carl'] });
    const done = await complete(alice, task.id);
    expect(done).toMatchObject({ state: 'completed', assignee: 'alice', completed_by: 'alice' });
  });

  test('a bpm_user completes an unassigned task offered to them as candidate user', async () => {
    const task = await taskOf('offer');
    const done = await complete(carl, task.id);
    expect(done).toMatchObject({ state: 'completed', assignee: 'carl', completed_by: 'carl' });
  });

  test('a bpm_user cannot complete a task offered to others: BP103, as if it did not exist', async () => {
    const offered = await taskOf('offer');
    await expectRejectedUnchanged(db.root, () => complete(dave, offered.id), 'BP103', new RegExp(`user task ${offered.id} not found`));
    const unoffered = await taskOf('straight');
    await expectRejectedUnchanged(db.root, () => complete(alice, unoffered.id), 'BP103', new RegExp(`user task ${unoffered.id} not found`));
  });

  test('a bpm_user cannot complete a task assigned to someone else, not even as a candidate: BP204', async () => {
    const task = await taskOf('owned', { owner: 'alice' });
    await expectRejectedUnchanged(
      db.root,
      () => complete(bob, task.id),
      'BP204',
      new RegExp(`user task ${task.id} is assigned to another user`),
    );
  });

  test('a task assigned to someone else and not offered to the caller is not found (BP103)', async () => {
    const task = await taskOf('owned', { owner: 'alice' });
    await expectRejectedUnchanged(db.root, () => complete(dave, task.id), 'BP103', new RegExp(`user task ${task.id} not found`));
  });

  test('an admin completes a task assigned to someone else', async () => {
    const task = await taskOf('owned', { owner: 'alice' });
    expect(await complete(admin, task.id)).toMatchObject({ state: 'completed', assignee: 'alice', completed_by: 'boss' });
  });

  test('a task of a suspended instance cannot be completed: BP202', async () => {
    const task = await taskOf('offer');
    await admin.query('select bpm.suspend_process_instance($1)', [task.instance_id]);
    await expectRejectedUnchanged(
      db.root,
      () => complete(alice, task.id),
      'BP202',
      new RegExp(`process instance ${task.instance_id} is suspended: cannot complete it`),
    );
    await admin.query('select bpm.activate_process_instance($1)', [task.instance_id]);
    expect((await complete(alice, task.id)).state).toBe('completed');
  });

  test.each(['bpm_designer', 'bpm_engine'] as const)('%s has no execute grant on complete_task (42501)', async (role) => {
    const task = await taskOf('straight');
    const client = await db.connectAs({ role, tenant: TENANT, user: 'boss' });
    await expectRejectedUnchanged(db.root, () => complete(client, task.id), '42501', /permission denied for function complete_task/);
  });
});

describe('claim_task', () => {
  test('a bpm_user claims an offered task: it is assigned to their bpm.user_id', async () => {
    const task = await taskOf('offer');
    const claimed = await claim(alice, task.id);
    expect(claimed).toMatchObject({ id: task.id, state: 'open', assignee: 'alice' });
    expect(await userTask(db.root, task.id)).toEqual(claimed);
  });

  test('claiming one\'s own task again is a no-op', async () => {
    const task = await taskOf('offer');
    await claim(alice, task.id);
    const before = await snapshot(db.root);
    expect((await claim(alice, task.id)).assignee).toBe('alice');
    expect(await snapshot(db.root)).toEqual(before);
  });

  test('claiming a task assigned to someone else: BP204', async () => {
    const task = await taskOf('offer');
    await claim(alice, task.id);
    await expectRejectedUnchanged(
      db.root,
      () => claim(bob, task.id),
      'BP204',
      new RegExp(`user task ${task.id} is already assigned to another user`),
    );
    await expectRejectedUnchanged(
      db.root,
      () => claim(admin, task.id),
      'BP204',
      new RegExp(`user task ${task.id} is already assigned to another user`),
    );
  });

  test('a bpm_user cannot claim a task not offered to them (BP103)', async () => {
    const task = await taskOf('offer');
    await expectRejectedUnchanged(db.root, () => claim(dave, task.id), 'BP103', new RegExp(`user task ${task.id} not found`));
  });

  test('an admin claims a task for their own bpm.user_id', async () => {
    const task = await taskOf('straight');
    expect((await claim(admin, task.id)).assignee).toBe('boss');
  });

  test('claiming a completed task: BP203', async () => {
    const task = await taskOf('offer');
    await complete(alice, task.id);
    await expectRejectedUnchanged(db.root, () => claim(alice, task.id), 'BP203', new RegExp(`user task ${task.id} is completed and cannot claim it`));
  });

  test('claiming a task of a suspended instance: BP202', async () => {
    const task = await taskOf('offer');
    await admin.query('select bpm.suspend_process_instance($1)', [task.instance_id]);
    await expectRejectedUnchanged(
      db.root,
      () => claim(alice, task.id),
      'BP202',
      new RegExp(`process instance ${task.instance_id} is suspended: cannot claim it`),
    );
  });

  test('claiming an unknown task: BP103', async () => {
    const id = newId();
    await expectRejectedUnchanged(db.root, () => claim(alice, id), 'BP103', new RegExp(`user task ${id} not found`));
  });
});

describe('unclaim_task', () => {
  test('a bpm_user unclaims their own task: it is offered to the candidates again', async () => {
    const task = await taskOf('offer');
    await claim(alice, task.id);
    expect(await unclaim(alice, task.id)).toMatchObject({ assignee: null, state: 'open' });
    expect((await claim(bob, task.id)).assignee).toBe('bob');
  });

  test('a bpm_user cannot unclaim a task assigned to someone else: BP204', async () => {
    const task = await taskOf('offer');
    await claim(alice, task.id);
    await expectRejectedUnchanged(db.root, () => unclaim(bob, task.id), 'BP204', new RegExp(`user task ${task.id} is not assigned to you`));
  });

  test('a bpm_user cannot unclaim an unassigned task offered to them: BP204', async () => {
    const task = await taskOf('offer');
    await expectRejectedUnchanged(db.root, () => unclaim(bob, task.id), 'BP204', new RegExp(`user task ${task.id} is not assigned to you`));
  });

  test('an admin unclaims anyone\'s task', async () => {
    const task = await taskOf('owned', { owner: 'alice' });
    expect((await unclaim(admin, task.id)).assignee).toBeNull();
  });

  test('unclaiming a cancelled task: BP203; of a suspended instance: BP202', async () => {
    const cancelled = await taskOf('owned', { owner: 'alice' });
    await admin.query('select bpm.cancel_process_instance($1)', [cancelled.instance_id]);
    await expectRejectedUnchanged(db.root, () => unclaim(admin, cancelled.id), 'BP203', new RegExp(`user task ${cancelled.id} is cancelled`));
    const suspended = await taskOf('owned', { owner: 'alice' });
    await admin.query('select bpm.suspend_process_instance($1)', [suspended.instance_id]);
    await expectRejectedUnchanged(
      db.root,
      () => unclaim(alice, suspended.id),
      'BP202',
      new RegExp(`process instance ${suspended.instance_id} is suspended: cannot unclaim it`),
    );
  });
});

describe('set_assignee', () => {
  test('an admin assigns a task to anyone, and clears it with null or an empty string', async () => {
    const task = await taskOf('offer');
    expect((await setAssignee(admin, task.id, 'zoe')).assignee).toBe('zoe');
    expect((await setAssignee(admin, task.id, 'alice')).assignee).toBe('alice');
    expect((await setAssignee(admin, task.id, null)).assignee).toBeNull();
    await setAssignee(admin, task.id, 'zoe');
    expect((await setAssignee(admin, task.id, '')).assignee).toBeNull();
  });

  test('the new assignee may then complete it; the former one may not', async () => {
    const task = await taskOf('offer');
    await setAssignee(admin, task.id, 'bob');
    await expectRejectedUnchanged(db.root, () => complete(alice, task.id), 'BP204', new RegExp(`user task ${task.id} is assigned to another user`));
    expect((await complete(bob, task.id)).completed_by).toBe('bob');
  });

  test('a bpm_user has no execute grant on set_assignee (42501)', async () => {
    const task = await taskOf('owned', { owner: 'alice' });
    await expectRejectedUnchanged(db.root, () => setAssignee(alice, task.id, 'alice'), '42501', /permission denied for function set_assignee/);
  });

  test('reassigning a completed task: BP203; an unknown task: BP103', async () => {
    const task = await taskOf('straight');
    await complete(admin, task.id);
    await expectRejectedUnchanged(db.root, () => setAssignee(admin, task.id, 'zoe'), 'BP203', new RegExp(`user task ${task.id} is completed and cannot reassign it`));
    const id = newId();
    await expectRejectedUnchanged(db.root, () => setAssignee(admin, id, 'zoe'), 'BP103', new RegExp(`user task ${id} not found`));
  });
});

describe('a bpm_user without bpm.user_id', () => {
  let anonymous: pg.Client;
  beforeAll(async () => {
    anonymous = await db.connectAs({ role: 'bpm_user', tenant: TENANT, groups: ['sales'] });
  });

  test('cannot complete, claim or unclaim an offered task: BP002', async () => {
    const task = await taskOf('offer');
    await expectRejectedUnchanged(db.root, () => complete(anonymous, task.id), 'BP002', /bpm\.user_id is not set: a bpm_user cannot complete task [0-9a-f-]{36}/);
    await expectRejectedUnchanged(
      db.root,
      () => claim(anonymous, task.id),
      'BP002',
      new RegExp(`bpm\\.user_id is not set: nobody to claim task ${task.id} for`),
    );
    await expectRejectedUnchanged(db.root, () => unclaim(anonymous, task.id), 'BP002', /bpm\.user_id is not set: a bpm_user cannot unclaim it/);
  });

  test('an admin without bpm.user_id cannot claim either (nobody to assign it to): BP002', async () => {
    const task = await taskOf('straight');
    const anonymousAdmin = await db.connectAs({ role: 'bpm_admin', tenant: TENANT });
    await expectRejectedUnchanged(
      db.root,
      () => claim(anonymousAdmin, task.id),
      'BP002',
      new RegExp(`bpm\\.user_id is not set: nobody to claim task ${task.id} for`),
    );
  });
});
