/**
 * Instance operations (admin only): cancel_process_instance,
 * suspend_process_instance, activate_process_instance, set_variables.
 */
import type pg from 'pg';
import { createTestDb, type TestDb } from '../../helpers/db';
import { deployFixture, deployProcess, expectRejectedUnchanged, snapshot } from '../../helpers/engine';
import {
  activities,
  externalTaskOf,
  incidents,
  instance,
  newId,
  one,
  openUserTask,
  start,
  tokenCount,
  userTasks,
  type InstanceRow,
  type Variables,
} from './support';

const TENANT = 'inst-t';

let db: TestDb;
let admin: pg.Client;
let engine: pg.Client;

beforeAll(async () => {
  db = await createTestDb();
  const designer = await db.connectAs({ role: 'bpm_designer', tenant: TENANT });
  admin = await db.connectAs({ role: 'bpm_admin', tenant: TENANT, user: 'boss' });
  engine = await db.connectAs({ role: 'bpm_engine', tenant: TENANT });
  await deployFixture(designer, 'straight.bpmn');
  // start → fork → (userTask "quick" | userTask "review" | external "work") → join → end
  await deployProcess(
    designer,
    'mixed',
    `<startEvent id="start"/><sequenceFlow id="f1" sourceRef="start" targetRef="fork"/>
     <parallelGateway id="fork"/>
     <sequenceFlow id="f2" sourceRef="fork" targetRef="quick"/><sequenceFlow id="f3" sourceRef="fork" targetRef="review"/>
     <sequenceFlow id="f4" sourceRef="fork" targetRef="work"/>
     <userTask id="quick"/><userTask id="review"/>
     <serviceTask id="work" camunda:type="external" camunda:topic="mixed"/>
     <sequenceFlow id="f5" sourceRef="quick" targetRef="join"/><sequenceFlow id="f6" sourceRef="review" targetRef="join"/>
     <sequenceFlow id="f7" sourceRef="work" targetRef="join"/>
     <parallelGateway id="join"/><sequenceFlow id="f8" sourceRef="join" targetRef="end"/><endEvent id="end"/>`,
  );
});
afterAll(() => db.close());

const cancel = (client: pg.ClientBase, id: string, reason: string | null = null): Promise<InstanceRow> =>
  one<InstanceRow>(client, 'select * from bpm.cancel_process_instance($1, $2)', [id, reason]);
const suspend = (client: pg.ClientBase, id: string): Promise<InstanceRow> =>
  one<InstanceRow>(client, 'select * from bpm.suspend_process_instance($1)', [id]);
const activate = (client: pg.ClientBase, id: string): Promise<InstanceRow> =>
  one<InstanceRow>(client, 'select * from bpm.activate_process_instance($1)', [id]);
const setVariables = (client: pg.ClientBase, id: string, variables: Variables): Promise<InstanceRow> =>
  one<InstanceRow>(client, 'select * from bpm.set_variables($1, $2::jsonb)', [id, JSON.stringify(variables)]);

/** An instance that has completed (straight, its task completed). */
async function completedInstance(): Promise<InstanceRow> {
  const inst = await start(admin, 'straight');
  await admin.query('select bpm.complete_task($1)', [(await openUserTask(db.root, inst.id)).id]);
  return instance(db.root, inst.id);
}

describe('cancel_process_instance', () => {
  test('cancels the instance, its open user and external tasks, waiting tokens, active history rows and open incidents', async () => {
    const inst = await start(admin, 'mixed', { a: 1 });
    // "quick" is done: its token waits at the join
    const quick = (await userTasks(db.root, inst.id)).find((t) => t.element_id === 'quick');
    await admin.query('select bpm.complete_task($1)', [quick?.id]);
    expect(await tokenCount(db.root, inst.id)).toBeGreaterThan(0);
    // the external task fails for good: an open incident
    const [locked] = await engine.query<{ id: string }>(`select id from bpm.fetch_and_lock('mixed', 'w1')`).then((r) => r.rows);
    await engine.query(`select bpm.fail_external_task($1, 'w1', 'down', 0)`, [locked?.id]);

    const cancelled = await cancel(admin, inst.id, 'customer withdrew');
    expect(cancelled).toMatchObject({ id: inst.id, state: 'cancelled', end_reason: 'customer withdrew', variables: { a: 1 } });
    expect(cancelled.ended_at).toBeInstanceOf(Date);
    expect(await instance(db.root, inst.id)).toEqual(cancelled);

    const tasks = await userTasks(db.root, inst.id);
    expect(tasks.map((t) => [t.element_id, t.state, t.completed_by]).sort()).toEqual([
      ['quick', 'completed', 'boss'],
      ['review', 'cancelled', null],
    ]);
    expect(tasks.every((t) => t.completed_at instanceof Date)).toBe(true);
    const work = await externalTaskOf(db.root, inst.id);
    expect(work).toMatchObject({ state: 'cancelled', worker_id: null, locked_until: null });
    expect(work.ended_at).toBeInstanceOf(Date);
    expect(await tokenCount(db.root, inst.id)).toBe(0);

    const rows = await activities(db.root, inst.id);
    expect(rows.map((r) => `${r.element_id}:${r.state}`).sort()).toEqual(
      ['start:completed', 'fork:completed', 'quick:completed', 'review:cancelled', 'work:cancelled', 'join:cancelled'].sort(),
    );
    expect(rows.every((r) => r.ended_at instanceof Date)).toBe(true);

    const [incident] = await incidents(db.root, inst.id);
    expect(incident).toMatchObject({ incident_type: 'failedExternalTask', external_task_id: work.id });
    expect(incident?.resolved_at).toBeInstanceOf(Date);
  });

  test('the reason is optional', async () => {
    const inst = await start(admin, 'straight');
    const cancelled = await one<InstanceRow>(admin, 'select * from bpm.cancel_process_instance($1)', [inst.id]);
    expect(cancelled).toMatchObject({ state: 'cancelled', end_reason: null });
  });

  test('a suspended instance can be cancelled', async () => {
    const inst = await start(admin, 'straight');
    await suspend(admin, inst.id);
    expect((await cancel(admin, inst.id, 'stop')).state).toBe('cancelled');
    expect((await userTasks(db.root, inst.id)).map((t) => t.state)).toEqual(['cancelled']);
  });

  test('cancelling twice: BP201 the second time, nothing changes', async () => {
    const inst = await start(admin, 'straight');
    await cancel(admin, inst.id, 'first');
    await expectRejectedUnchanged(
      db.root,
      () => cancel(admin, inst.id, 'second'),
      'BP201',
      new RegExp(`process instance ${inst.id} is cancelled and cannot be cancelled`),
    );
    expect((await instance(db.root, inst.id)).end_reason).toBe('first');
  });

  test('cancelling a completed instance: BP201', async () => {
    const inst = await completedInstance();
    await expectRejectedUnchanged(db.root, () => cancel(admin, inst.id), 'BP201', new RegExp(`process instance ${inst.id} is completed and cannot be cancelled`));
  });

  test('cancelling an unknown instance, or one of another tenant: BP102', async () => {
    const id = newId();
    await expectRejectedUnchanged(db.root, () => cancel(admin, id), 'BP102', new RegExp(`process instance ${id} not found`));
    const inst = await start(admin, 'straight');
    const foreign = await db.connectAs({ role: 'bpm_admin', tenant: 'inst-other' });
    await expectRejectedUnchanged(db.root, () => cancel(foreign, inst.id), 'BP102', new RegExp(`process instance ${inst.id} not found`));
  });
});

describe('suspend_process_instance / activate_process_instance', () => {
  test('suspend and activate round-trip; each is a no-op when repeated', async () => {
    const inst = await start(admin, 'straight', { v: 1 });
    expect(await suspend(admin, inst.id)).toMatchObject({ state: 'suspended', ended_at: null, variables: { v: 1 } });
    let before = await snapshot(db.root);
    expect((await suspend(admin, inst.id)).state).toBe('suspended');
    expect(await snapshot(db.root)).toEqual(before);

    expect(await activate(admin, inst.id)).toMatchObject({ state: 'active', ended_at: null });
    before = await snapshot(db.root);
    expect((await activate(admin, inst.id)).state).toBe('active');
    expect(await snapshot(db.root)).toEqual(before);

    // the instance works normally again
    await admin.query('select bpm.complete_task($1)', [(await openUserTask(db.root, inst.id)).id]);
    expect((await instance(db.root, inst.id)).state).toBe('completed');
  });

  test('suspending a completed instance or activating a cancelled one: BP201', async () => {
    const done = await completedInstance();
    await expectRejectedUnchanged(db.root, () => suspend(admin, done.id), 'BP201', new RegExp(`process instance ${done.id} is completed and cannot be suspended`));
    await expectRejectedUnchanged(db.root, () => activate(admin, done.id), 'BP201', new RegExp(`process instance ${done.id} is completed and cannot be activated`));
    const gone = await start(admin, 'straight');
    await cancel(admin, gone.id);
    await expectRejectedUnchanged(db.root, () => activate(admin, gone.id), 'BP201', new RegExp(`process instance ${gone.id} is cancelled and cannot be activated`));
  });

  test('an unknown instance: BP102', async () => {
    const id = newId();
    await expectRejectedUnchanged(db.root, () => suspend(admin, id), 'BP102', new RegExp(`process instance ${id} not found`));
    await expectRejectedUnchanged(db.root, () => activate(admin, id), 'BP102', new RegExp(`process instance ${id} not found`));
  });
});

describe('set_variables', () => {
  test('merges per top-level key: replaces values, keeps the others, stores null as JSON null', async () => {
    const inst = await start(admin, 'straight', { a: 1, b: { x: 1 }, keep: 'yes' });
    const updated = await setVariables(admin, inst.id, { b: { y: 2 }, c: null, a: [1, 2] });
    expect(updated.variables).toEqual({ a: [1, 2], b: { y: 2 }, c: null, keep: 'yes' });
    expect((await instance(db.root, inst.id)).variables).toEqual(updated.variables);
  });

  test('works on a suspended instance', async () => {
    const inst = await start(admin, 'straight');
    await suspend(admin, inst.id);
    expect(await setVariables(admin, inst.id, { x: 1 })).toMatchObject({ state: 'suspended', variables: { x: 1 } });
  });

  test('an ended instance: BP201', async () => {
    const done = await completedInstance();
    await expectRejectedUnchanged(
      db.root,
      () => setVariables(admin, done.id, { x: 1 }),
      'BP201',
      new RegExp(`process instance ${done.id} is completed and its variables cannot change`),
    );
  });

  test.each([
    ['an array', '[{"a": 1}]', 'array'],
    ['a string', '"a"', 'string'],
    ['null as JSON', 'null', 'null'],
  ])('variables that are %s: BP401', async (_what, json, type) => {
    const inst = await start(admin, 'straight');
    await expectRejectedUnchanged(
      db.root,
      () => admin.query('select bpm.set_variables($1, $2::jsonb)', [inst.id, json]),
      'BP401',
      new RegExp(`variables must be a JSON object, got ${type}`),
    );
  });

  test('an unknown instance: BP102', async () => {
    const id = newId();
    await expectRejectedUnchanged(db.root, () => setVariables(admin, id, { x: 1 }), 'BP102', new RegExp(`process instance ${id} not found`));
  });
});

describe('only bpm_admin may change instances', () => {
  const calls: Array<[string, (c: pg.ClientBase, id: string) => Promise<unknown>]> = [
    ['cancel_process_instance', (c, id) => cancel(c, id)],
    ['suspend_process_instance', (c, id) => suspend(c, id)],
    ['activate_process_instance', (c, id) => activate(c, id)],
    ['set_variables', (c, id) => setVariables(c, id, { x: 1 })],
  ];
  for (const role of ['bpm_user', 'bpm_engine', 'bpm_designer'] as const) {
    test.each(calls)(`${role} has no execute grant on %s (42501)`, async (name, call) => {
      const inst = await start(admin, 'straight');
      const client = await db.connectAs({ role, tenant: TENANT, user: 'boss' });
      await expectRejectedUnchanged(db.root, () => call(client, inst.id), '42501', new RegExp(`permission denied for function ${name}`));
    });
  }
});
