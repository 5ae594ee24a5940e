/**
 * The caller context every API function requires: a tenant (BP001 without
 * one, before anything else is looked at) and an API role entered with SET
 * ROLE (a superuser or the bare login role cannot use the API).
 */
import pg from 'pg';
import { createTestDb, type ApiRole, type TestDb } from '../../helpers/db';
import { bpmnProcess, deployFixture, expectRejectedUnchanged } from '../../helpers/engine';
import { compiledResources, count, newId, openUserTask, start, userTaskBody } from './support';

const TENANT = 'ctx-t';

let db: TestDb;
let resources: unknown[];
/** Real objects of TENANT, so that a leak across the missing tenant would be visible. */
let taskId: string;
let instanceId: string;

beforeAll(async () => {
  db = await createTestDb();
  const admin = await db.connectAs({ role: 'bpm_admin', tenant: TENANT, user: 'boss' });
  await deployFixture(admin, 'straight.bpmn');
  const inst = await start(admin, 'straight');
  instanceId = inst.id;
  taskId = (await openUserTask(db.root, inst.id)).id;
  resources = await compiledResources([{ name: 'ctx.bpmn', xml: bpmnProcess('ctx', userTaskBody()) }]);
});
afterAll(() => db.close());

interface ApiCall {
  fn: string;
  role: ApiRole;
  action: string;
  sql: () => { text: string; values: unknown[] };
}

const CALLS: ApiCall[] = [
  { fn: 'deploy', role: 'bpm_designer', action: 'deploy', sql: () => ({ text: 'select bpm.deploy($1::jsonb)', values: [JSON.stringify(resources)] }) },
  { fn: 'start_process', role: 'bpm_user', action: 'start a process', sql: () => ({ text: `select bpm.start_process('straight')`, values: [] }) },
  { fn: 'complete_task', role: 'bpm_user', action: 'complete a task', sql: () => ({ text: 'select bpm.complete_task($1)', values: [taskId] }) },
  { fn: 'claim_task', role: 'bpm_user', action: 'claim a task', sql: () => ({ text: 'select bpm.claim_task($1)', values: [taskId] }) },
  { fn: 'unclaim_task', role: 'bpm_admin', action: 'unclaim a task', sql: () => ({ text: 'select bpm.unclaim_task($1)', values: [taskId] }) },
  { fn: 'task_inbox', role: 'bpm_user', action: 'read a task inbox', sql: () => ({ text: 'select * from bpm.task_inbox()', values: [] }) },
  { fn: 'update_task', role: 'bpm_admin', action: 'update a task', sql: () => ({ text: `select bpm.update_task($1, '{}')`, values: [taskId] }) },
  { fn: 'set_assignee', role: 'bpm_admin', action: 'set the assignee of a task', sql: () => ({ text: `select bpm.set_assignee($1, 'x')`, values: [taskId] }) },
  {
    fn: 'cancel_process_instance',
    role: 'bpm_admin',
    action: 'cancel a process instance',
    sql: () => ({ text: 'select bpm.cancel_process_instance($1)', values: [instanceId] }),
  },
  {
    fn: 'suspend_process_instance',
    role: 'bpm_admin',
    action: 'suspend a process instance',
    sql: () => ({ text: 'select bpm.suspend_process_instance($1)', values: [instanceId] }),
  },
  {
    fn: 'activate_process_instance',
    role: 'bpm_admin',
    action: 'activate a process instance',
    sql: () => ({ text: 'select bpm.activate_process_instance($1)', values: [instanceId] }),
  },
  {
    fn: 'activate_ad_hoc_activities',
    role: 'bpm_engine',
    action: 'activate ad-hoc activities',
    sql: () => ({ text: `select bpm.activate_ad_hoc_activities($1, array['task'])`, values: [instanceId] }),
  },
  {
    fn: 'modify_process_instance',
    role: 'bpm_admin',
    action: 'modify a process instance',
    sql: () => ({ text: `select bpm.modify_process_instance($1, '[{"startBefore": "task"}]')`, values: [instanceId] }),
  },
  {
    fn: 'migrate_process_instances',
    role: 'bpm_admin',
    action: 'migrate process instances',
    sql: () => ({ text: `select bpm.migrate_process_instances(array[$1]::uuid[], $2)`, values: [instanceId, newId()] }),
  },
  { fn: 'set_variables', role: 'bpm_admin', action: 'set variables', sql: () => ({ text: `select bpm.set_variables($1, '{"x": 1}')`, values: [instanceId] }) },
  { fn: 'fetch_and_lock', role: 'bpm_engine', action: 'fetch external tasks', sql: () => ({ text: `select bpm.fetch_and_lock('work', 'w1')`, values: [] }) },
  {
    fn: 'complete_external_task',
    role: 'bpm_engine',
    action: 'complete an external task',
    sql: () => ({ text: `select bpm.complete_external_task($1, 'w1')`, values: [newId()] }),
  },
  {
    fn: 'complete_external_tasks',
    role: 'bpm_engine',
    action: 'complete external tasks',
    sql: () => ({ text: `select * from bpm.complete_external_tasks(array[$1::uuid], 'w1')`, values: [newId()] }),
  },
  {
    fn: 'fail_external_task',
    role: 'bpm_engine',
    action: 'fail an external task',
    sql: () => ({ text: `select bpm.fail_external_task($1, 'w1', 'x', 0)`, values: [newId()] }),
  },
  {
    fn: 'throw_bpmn_error',
    role: 'bpm_engine',
    action: 'throw a BPMN error',
    sql: () => ({ text: `select bpm.throw_bpmn_error($1, 'w1', 'E')`, values: [newId()] }),
  },
  { fn: 'retry_incident', role: 'bpm_engine', action: 'retry an incident', sql: () => ({ text: 'select bpm.retry_incident($1)', values: [newId()] }) },
  { fn: 'evaluate_conditions', role: 'bpm_user', action: 'evaluate conditional start events', sql: () => ({ text: `select * from bpm.evaluate_conditions('{}')`, values: [] }) },
  { fn: 'evaluate_decision', role: 'bpm_user', action: 'evaluate a decision', sql: () => ({ text: `select bpm.evaluate_decision('dish')`, values: [] }) },
  {
    fn: 'correlate_message',
    role: 'bpm_user',
    action: 'correlate a message',
    sql: () => ({ text: `select bpm.correlate_message('m', null, '{}', '1 hour')`, values: [] }),
  },
  { fn: 'broadcast_signal', role: 'bpm_user', action: 'broadcast a signal', sql: () => ({ text: `select bpm.broadcast_signal('s')`, values: [] }) },
  { fn: 'continue_async', role: 'bpm_engine', action: 'continue an asynchronous token', sql: () => ({ text: 'select bpm.continue_async($1)', values: [newId()] }) },
  { fn: 'cleanup_history', role: 'bpm_engine', action: 'clean up history', sql: () => ({ text: 'select bpm.cleanup_history()', values: [] }) },
  {
    fn: 'process_task_deadline',
    role: 'bpm_engine',
    action: 'process a task deadline',
    sql: () => ({ text: `select bpm.process_task_deadline($1, 'due')`, values: [newId()] }),
  },
  { fn: 'fire_timer', role: 'bpm_engine', action: 'fire a timer', sql: () => ({ text: 'select bpm.fire_timer($1)', values: [newId()] }) },
  { fn: 'fire_due_timers', role: 'bpm_engine', action: 'fire timers', sql: () => ({ text: 'select bpm.fire_due_timers($1)', values: [newId()] }) },
  { fn: 'deliver_deferred', role: 'bpm_engine', action: 'deliver a deferred signal or message', sql: () => ({ text: 'select bpm.deliver_deferred($1)', values: [newId()] }) },
  {
    fn: 'register_event_listener',
    role: 'bpm_user',
    action: 'listen for events',
    sql: () => ({ text: `select bpm.register_event_listener('server-1')`, values: [] }),
  },
  {
    fn: 'register_task_listener',
    role: 'bpm_engine',
    action: 'listen for external tasks',
    sql: () => ({ text: `select bpm.register_task_listener('worker-1')`, values: [] }),
  },
];
/** Read-only functions: like the tables, they fail closed (return nothing) without a tenant. */
const READS = ['events_after'];
/** Maintenance of the database as a whole, no tenant's data: no tenant needed, an API role still is. */
const MAINTENANCE = ['refresh_statistics'];

test('the list covers every function of schema bpm', async () => {
  const { rows } = await db.root.query<{ proname: string }>(
    `select distinct p.proname from pg_catalog.pg_proc p join pg_catalog.pg_namespace n on n.oid = p.pronamespace
     where n.nspname = 'bpm' order by 1`,
  );
  expect(rows.map((r) => r.proname)).toEqual([...CALLS.map((c) => c.fn), ...READS, ...MAINTENANCE].sort());
});

test('refresh_statistics needs no tenant (it reads and returns no tenant\'s data), but an API role: BP002 for a superuser without SET ROLE', async () => {
  const engine = await db.connectAs({ role: 'bpm_engine', tenant: null });
  await expect(engine.query('select bpm.refresh_statistics() as tables')).resolves.toMatchObject({ rows: [{ tables: expect.any(Array) }] });
  await engine.end();
  const superuser = new pg.Client({ connectionString: db.urls.root });
  await superuser.connect();
  try {
    await expect(superuser.query('select bpm.refresh_statistics()')).rejects.toMatchObject({ code: 'BP002', message: expect.stringMatching(/^permission denied: role \S+ may not refresh statistics$/) });
  } finally {
    await superuser.end();
  }
});

describe.each([
  ['unset', null],
  ['empty', ''],
])('bpm.tenant_id %s', (_what, tenant) => {
  test.each(CALLS.map((c) => [c.fn, c] as const))('%s: BP001, nothing changes', async (_fn, call) => {
    const client = await db.connectAs({ role: call.role, tenant, user: 'alice', groups: ['sales'] });
    const { text, values } = call.sql();
    await expectRejectedUnchanged(
      db.root,
      () => client.query(text, values),
      'BP001',
      new RegExp(`no tenant: set bpm\\.tenant_id before calling ${call.action}`),
    );
  });

  test('the readable tables show nothing (row-level security fails closed)', async () => {
    const client = await db.connectAs({ role: 'bpm_admin', tenant });
    for (const table of ['bpm.deployment', 'bpm.process_definition', 'bpm.process_instance', 'bpm.user_task', 'bpm.activity_instance', 'bpm.event']) {
      expect(await count(db.root, `select 1 from ${table}`)).toBeGreaterThan(0);
      expect(await count(client, `select 1 from ${table}`)).toBe(0);
    }
    expect(await count(client, 'select 1 from bpm.events_after(0)')).toBe(0);
  });
});

describe('without an API role', () => {
  test('a superuser calling the API without SET ROLE: BP002 naming its role', async () => {
    const superuser = new pg.Client({ connectionString: db.urls.root });
    superuser.on('error', () => undefined);
    await superuser.connect();
    try {
      await superuser.query(`select set_config('bpm.tenant_id', $1, false), set_config('bpm.user_id', 'root', false)`, [TENANT]);
      const { rows } = await superuser.query<{ u: string }>('select session_user::text as u');
      const name = rows[0]?.u ?? '';
      await expectRejectedUnchanged(
        db.root,
        () => superuser.query(`select bpm.start_process('straight')`),
        'BP002',
        new RegExp(`permission denied: role ${name} may not start a process`),
      );
      await expectRejectedUnchanged(
        db.root,
        () => superuser.query('select bpm.cancel_process_instance($1)', [instanceId]),
        'BP002',
        new RegExp(`permission denied: role ${name} may not cancel a process instance`),
      );
    } finally {
      await superuser.end();
    }
  });

  test('the login role bpm_authenticator without SET ROLE has no execute grant (42501)', async () => {
    const client = await db.connectAs({ role: 'bpm_admin', tenant: TENANT });
    await client.query('reset role');
    expect((await client.query<{ u: string }>('select current_user::text as u')).rows[0]?.u).toBe('bpm_authenticator');
    await expectRejectedUnchanged(db.root, () => client.query('select bpm.cancel_process_instance($1)', [instanceId]), '42501', /permission denied/);
  });
});
