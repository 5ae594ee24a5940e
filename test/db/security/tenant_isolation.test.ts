/**
 * Tenant isolation as the real roles. Tenants A and B both deploy and run
 * processes (completed, cancelled, suspended and active instances, user
 * tasks, locked and open external tasks, an incident). Then, acting as each
 * API role of tenant B: no row of A can be seen or counted, no function can
 * reach an object of A (each call fails with the engine's not-found code and
 * changes nothing), and no API role can write any table directly. Without a
 * tenant a session sees nothing and every function raises BP001.
 */
import fs from 'node:fs';
import path from 'node:path';
import type pg from 'pg';
import { API_ROLES, createTestDb, type ApiRole, type TestDb } from '../../helpers/db';
import { deployFixture, deployProcess, deployXml, expectRejectedUnchanged, snapshot } from '../../helpers/engine';
import { BPM_TABLES, READERS, canCall, type BpmTable } from './support';

jest.setTimeout(30_000);

const A = 'tenant-a';
const B = 'tenant-b';

/** Ids of one tenant's rows, per table, plus the objects the attacks aim at. */
interface TenantData {
  rows: Record<BpmTable, string[]>;
  activeInstance: string;
  suspendedInstance: string;
  openTask: string;
  lockedExternalTask: string;
  openIncident: string;
  /** External tasks of topic 'work' that fetch_and_lock can hand out (open, unlocked, retries left). */
  fetchableWork: string[];
}

let db: TestDb;
let tenantA: TenantData;
let tenantB: TenantData;

const OFFERED_TO_BOB = `
  <startEvent id="s"/><sequenceFlow id="f1" sourceRef="s" targetRef="review"/>
  <userTask id="review" name="Review" camunda:candidateUsers="bob"/>
  <sequenceFlow id="f2" sourceRef="review" targetRef="e"/><endEvent id="e"/>`;
const ONLY_A = `
  <startEvent id="s"/><sequenceFlow id="f1" sourceRef="s" targetRef="call"/>
  <serviceTask id="call" camunda:type="external" camunda:topic="only-a"/>
  <sequenceFlow id="f2" sourceRef="call" targetRef="e"/><endEvent id="e"/>`;
const STRAIGHT_V2 = `
  <startEvent id="start"/><sequenceFlow id="f1" sourceRef="start" targetRef="task"/>
  <userTask id="task" name="Task v2"/>
  <sequenceFlow id="f2" sourceRef="task" targetRef="end"/><endEvent id="end"/>`;

async function one<T>(client: pg.ClientBase, sql: string, values: unknown[] = []): Promise<T> {
  const { rows } = await client.query(sql, values);
  if (rows.length !== 1) throw new Error(`expected one row from ${sql}, got ${rows.length}`);
  return rows[0] as T;
}

/** Deploys and runs the same scenario in a tenant; returns the ids of everything it created. */
async function populate(tenant: string, extra: boolean): Promise<TenantData> {
  const admin = await db.connectAs({ role: 'bpm_admin', tenant, user: `admin-${tenant}` });
  const bob = await db.connectAs({ role: 'bpm_user', tenant, user: 'bob' });
  const engine = await db.connectAs({ role: 'bpm_engine', tenant });
  await deployFixture(admin, 'straight.bpmn', 'external.bpmn', 'parallel.bpmn');
  await deployXml(admin, [{ name: 'dish.dmn', xml: fs.readFileSync(path.join(__dirname, '..', '..', 'fixtures', 'dmn', 'dish.dmn'), 'utf8') }]);
  await deployProcess(admin, 'offered', OFFERED_TO_BOB);
  if (extra) {
    await deployProcess(admin, 'only_a', ONLY_A);
    await deployProcess(admin, 'straight', STRAIGHT_V2); // A has straight v2, B only v1
    await admin.query(`select bpm.start_process('only_a')`);
  }
  const start = async (key: string): Promise<string> => (await one<{ id: string }>(admin, 'select id from bpm.start_process($1)', [key])).id;
  const taskOf = async (instance: string): Promise<string> =>
    (await one<{ id: string }>(admin, `select id from bpm.user_task where instance_id = $1 and state = 'open'`, [instance])).id;

  const completed = await start('straight');
  await admin.query('select bpm.complete_task($1)', [await taskOf(completed)]);
  const active = await start('straight');
  const openTask = await taskOf(active);
  await admin.query('select bpm.cancel_process_instance($1)', [await start('straight')]);
  const suspended = await start('straight');
  await admin.query('select bpm.suspend_process_instance($1)', [suspended]);
  await bob.query(`select bpm.start_process('offered')`);
  // a token waiting at a join (bpm_private.token)
  const parallel = await start('parallel');
  await admin.query(`select bpm.complete_task(id) from bpm.user_task where instance_id = $1 and element_id = 'A'`, [parallel]);

  // external: one failed into an incident, one locked, one open
  const externals: string[] = [];
  for (let i = 0; i < 3; i += 1) externals.push(await start('external'));
  const taskByInstance = async (instance: string): Promise<string> =>
    (await one<{ id: string }>(admin, 'select id from bpm.external_task where instance_id = $1', [instance])).id;
  const externalTasks: string[] = [];
  for (const instance of externals) externalTasks.push(await taskByInstance(instance));
  const [failing, locked, open] = externalTasks as [string, string, string];
  await engine.query(`select bpm.fetch_and_lock('work', 'worker', 1000)`);
  await admin.query(`select bpm.fail_external_task($1, 'worker', 'boom', 3)`, [open]); // unlocked again, 3 retries
  await admin.query(`select bpm.fail_external_task($1, 'worker', 'boom', 0)`, [failing]);
  const incident = await one<{ id: string }>(admin, 'select id from bpm.incident where external_task_id = $1', [failing]);

  const rows = {} as Record<BpmTable, string[]>;
  for (const table of BPM_TABLES) {
    const r = await db.root.query<{ id: string }>(`select id from ${table} where tenant_id = $1 order by id`, [tenant]);
    rows[table] = r.rows.map((x) => x.id);
  }
  for (const c of [admin, bob, engine]) await c.end();
  return {
    rows,
    activeInstance: active,
    suspendedInstance: suspended,
    openTask,
    lockedExternalTask: locked,
    openIncident: incident.id,
    fetchableWork: [open],
  };
}

/** The sessions of tenant B, one per API role (bpm_user is bob). */
const sessions = new Map<ApiRole, pg.Client>();
function as(role: ApiRole): pg.Client {
  const client = sessions.get(role);
  if (!client) throw new Error(`no session for ${role}`);
  return client;
}

beforeAll(async () => {
  db = await createTestDb();
  tenantA = await populate(A, true);
  tenantB = await populate(B, false);
  for (const role of API_ROLES) sessions.set(role, await db.connectAs({ role, tenant: B, user: role === 'bpm_user' ? 'bob' : `${role}-b` }));
});

afterAll(async () => {
  await db?.close();
});

test('both tenants have rows in every bpm table and in bpm_private.token', async () => {
  const { rows } = await db.root.query(`select tenant_id, count(*)::int as tokens from bpm_private.token group by 1 order by 1`);
  // the parallel instance's branch A waits at the join
  expect(rows).toEqual([
    { tenant_id: A, tokens: 1 },
    { tenant_id: B, tokens: 1 },
  ]);
  for (const table of BPM_TABLES) {
    expect([table, tenantA.rows[table].length > 0, tenantB.rows[table].length > 0]).toEqual([table, true, true]);
  }
});

/** What bob (bpm_user of B) may see: all definitions; the task offered to him and the instance he started. */
function expectedCount(role: ApiRole, table: BpmTable): number {
  if (role !== 'bpm_user' || table === 'bpm.process_definition' || table === 'bpm.decision_definition') return tenantB.rows[table].length;
  if (table === 'bpm.user_task' || table === 'bpm.process_instance') return 1;
  throw new Error(`bpm_user cannot read ${table}`);
}

describe.each(API_ROLES)('as tenant B %s', (role) => {
  test('every bpm table counts only tenant B rows, and none of tenant A, not even by id', async () => {
    const client = as(role);
    for (const table of BPM_TABLES) {
      if (!READERS[table].includes(role)) {
        await expect(client.query(`select count(*) from ${table}`)).rejects.toMatchObject({
          code: '42501',
          message: `permission denied for table ${table.slice('bpm.'.length)}`,
        });
        continue;
      }
      const { rows } = await client.query(
        `select count(*)::int as total, count(*) filter (where tenant_id <> $1)::int as other_tenants,
                count(*) filter (where id = any($2::uuid[]))::int as tenant_a_ids
         from ${table}`,
        [B, tenantA.rows[table]],
      );
      expect([table, rows[0]]).toEqual([table, { total: expectedCount(role, table), other_tenants: 0, tenant_a_ids: 0 }]);
      const byTenant = await client.query(`select count(*)::int as n from ${table} where tenant_id = $1`, [A]);
      expect([table, byTenant.rows[0]]).toEqual([table, { n: 0 }]);
    }
    await expect(client.query('select count(*) from bpm_private.token')).rejects.toMatchObject({
      code: '42501',
      message: 'permission denied for schema bpm_private',
    });
  });

  test("every function aimed at tenant A's objects fails as not found (or 42501 without the grant) and changes nothing", async () => {
    const client = as(role);
    const attacks: Array<[fn: string, sql: string, args: unknown[], notFound: string]> = [
      ['complete_task', 'select bpm.complete_task($1)', [tenantA.openTask], 'BP103'],
      ['claim_task', 'select bpm.claim_task($1)', [tenantA.openTask], 'BP103'],
      ['unclaim_task', 'select bpm.unclaim_task($1)', [tenantA.openTask], 'BP103'],
      ['set_assignee', `select bpm.set_assignee($1, 'bob')`, [tenantA.openTask], 'BP103'],
      ['cancel_process_instance', 'select bpm.cancel_process_instance($1)', [tenantA.activeInstance], 'BP102'],
      ['suspend_process_instance', 'select bpm.suspend_process_instance($1)', [tenantA.activeInstance], 'BP102'],
      ['activate_process_instance', 'select bpm.activate_process_instance($1)', [tenantA.suspendedInstance], 'BP102'],
      ['set_variables', `select bpm.set_variables($1, '{"x": 1}')`, [tenantA.activeInstance], 'BP102'],
      ['complete_external_task', `select bpm.complete_external_task($1, 'worker')`, [tenantA.lockedExternalTask], 'BP104'],
      ['fail_external_task', `select bpm.fail_external_task($1, 'worker', 'x', 0)`, [tenantA.lockedExternalTask], 'BP104'],
      ['throw_bpmn_error', `select bpm.throw_bpmn_error($1, 'worker', 'E1')`, [tenantA.lockedExternalTask], 'BP104'],
      ['retry_incident', 'select bpm.retry_incident($1)', [tenantA.openIncident], 'BP105'],
      ['start_process', 'select bpm.start_process($1)', ['only_a'], 'BP101'],
    ];
    for (const [fn, sql, args, notFound] of attacks) {
      const allowed = canCall(role, fn);
      await expectRejectedUnchanged(
        db.root,
        () => client.query(sql, args),
        allowed ? notFound : '42501',
        allowed ? /not found/ : new RegExp(`permission denied for function ${fn}`),
      );
    }
  });

  test("a batch of completions aimed at tenant A's task reports it not found (or 42501 without the grant) and changes nothing", async () => {
    const client = as(role);
    const batch = () => client.query(`select * from bpm.complete_external_tasks(array[$1::uuid], 'worker')`, [tenantA.lockedExternalTask]);
    if (!canCall(role, 'complete_external_tasks')) {
      await expectRejectedUnchanged(db.root, batch, '42501', /permission denied for function complete_external_tasks/);
      return;
    }
    const before = await snapshot(db.root);
    const { rows } = await batch();
    expect(rows).toEqual([{ task_id: tenantA.lockedExternalTask, error_code: 'BP104', error_message: `external task ${tenantA.lockedExternalTask} not found` }]);
    expect(await snapshot(db.root)).toEqual(before);
  });

  test("fetch_and_lock on a topic both tenants use returns only tenant B's tasks and locks none of A's", async () => {
    const client = as(role);
    if (!canCall(role, 'fetch_and_lock')) {
      await expectRejectedUnchanged(db.root, () => client.query(`select * from bpm.fetch_and_lock('work', 'worker', 100)`), '42501');
      return;
    }
    await client.query('begin');
    try {
      const { rows } = await client.query<{ id: string; tenant_id: string }>(
        `select id, tenant_id from bpm.fetch_and_lock('work', 'worker', 100)`,
      );
      expect(rows).toEqual(tenantB.fetchableWork.map((id) => ({ id, tenant_id: B })));
      const onlyA = await client.query(`select id from bpm.fetch_and_lock('only-a', 'worker', 100)`);
      expect(onlyA.rows).toEqual([]);
      // while B's transaction is open, none of A's external tasks is row-locked by it
      const unlocked = await db.root.query<{ n: number }>(
        `select count(*)::int as n from (select id from bpm.external_task where tenant_id = $1 for update skip locked) t`,
        [A],
      );
      expect(unlocked.rows[0]?.n).toBe(tenantA.rows['bpm.external_task'].length);
    } finally {
      await client.query('rollback');
    }
  });

  test('no direct INSERT, UPDATE, DELETE or TRUNCATE on any bpm table or bpm_private.token', async () => {
    const client = as(role);
    const before = await snapshot(db.root);
    for (const table of [...BPM_TABLES, 'bpm_private.token']) {
      const denied = table.startsWith('bpm_private.')
        ? 'permission denied for schema bpm_private'
        : `permission denied for table ${table.slice('bpm.'.length)}`;
      for (const sql of [
        `insert into ${table} (tenant_id) values (current_setting('bpm.tenant_id'))`,
        `update ${table} set tenant_id = tenant_id`,
        `update ${table} set tenant_id = '${A}' where tenant_id = '${B}'`,
        `delete from ${table}`,
        `truncate ${table}`,
      ]) {
        await expect(client.query(sql)).rejects.toMatchObject({ code: '42501', message: denied });
      }
    }
    expect(await snapshot(db.root)).toEqual(before);
  });
});

describe.each([
  ['unset', null],
  ['empty', ''],
])('with bpm.tenant_id %s', (_label, tenant) => {
  test.each(API_ROLES)('%s sees no row anywhere and every function it may call raises BP001', async (role) => {
    const client = await db.connectAs({ role, tenant, user: 'bob' });
    try {
      for (const table of BPM_TABLES) {
        if (!READERS[table].includes(role)) continue;
        const { rows } = await client.query(`select count(*)::int as n from ${table}`);
        expect([table, rows[0]]).toEqual([table, { n: 0 }]);
      }
      // aimed at real objects of tenant B: without a tenant nothing is reachable
      const calls: Array<[fn: string, sql: string, args: unknown[]]> = [
        ['deploy', `select bpm.deploy('[]')`, []],
        ['start_process', `select bpm.start_process('straight')`, []],
        ['complete_task', 'select bpm.complete_task($1)', [tenantB.openTask]],
        ['claim_task', 'select bpm.claim_task($1)', [tenantB.openTask]],
        ['unclaim_task', 'select bpm.unclaim_task($1)', [tenantB.openTask]],
        ['set_assignee', `select bpm.set_assignee($1, 'bob')`, [tenantB.openTask]],
        ['cancel_process_instance', 'select bpm.cancel_process_instance($1)', [tenantB.activeInstance]],
        ['suspend_process_instance', 'select bpm.suspend_process_instance($1)', [tenantB.activeInstance]],
        ['activate_process_instance', 'select bpm.activate_process_instance($1)', [tenantB.suspendedInstance]],
        ['set_variables', `select bpm.set_variables($1, '{"x": 1}')`, [tenantB.activeInstance]],
        ['fetch_and_lock', `select * from bpm.fetch_and_lock('work', 'worker', 10)`, []],
        ['complete_external_task', `select bpm.complete_external_task($1, 'worker')`, [tenantB.lockedExternalTask]],
        ['complete_external_tasks', `select * from bpm.complete_external_tasks(array[$1::uuid], 'worker')`, [tenantB.lockedExternalTask]],
        ['fail_external_task', `select bpm.fail_external_task($1, 'worker', 'x', 0)`, [tenantB.lockedExternalTask]],
        ['throw_bpmn_error', `select bpm.throw_bpmn_error($1, 'worker', 'E1')`, [tenantB.lockedExternalTask]],
        ['retry_incident', 'select bpm.retry_incident($1)', [tenantB.openIncident]],
      ];
      for (const [fn, sql, args] of calls) {
        const allowed = canCall(role, fn);
        await expectRejectedUnchanged(db.root, () => client.query(sql, args), allowed ? 'BP001' : '42501', allowed ? /no tenant/ : /permission denied/);
      }
    } finally {
      await client.end();
    }
  });
});

test("an admin of a tenant that has nothing sees no rows and reaches none of tenant A's objects", async () => {
  const client = await db.connectAs({ role: 'bpm_admin', tenant: 'tenant-c', user: 'carl' });
  try {
    for (const table of BPM_TABLES) {
      const { rows } = await client.query(`select count(*)::int as n from ${table}`);
      expect([table, rows[0]]).toEqual([table, { n: 0 }]);
    }
    await expectRejectedUnchanged(db.root, () => client.query('select bpm.complete_task($1)', [tenantA.openTask]), 'BP103');
    await expectRejectedUnchanged(db.root, () => client.query('select bpm.cancel_process_instance($1)', [tenantA.activeInstance]), 'BP102');
    await expectRejectedUnchanged(db.root, () => client.query(`select bpm.start_process('straight')`), 'BP101');
  } finally {
    await client.end();
  }
});

test("start_process uses the caller's tenant's definition even when another tenant has a later version of the key", async () => {
  const versions = await db.root.query(
    `select tenant_id, max(version)::int as latest from bpm.process_definition where key = 'straight' group by 1 order by 1`,
  );
  expect(versions.rows).toEqual([
    { tenant_id: A, latest: 2 },
    { tenant_id: B, latest: 1 },
  ]);
  const client = as('bpm_admin');
  await client.query('begin');
  try {
    const { rows } = await client.query<{ id: string; tenant_id: string; definition_id: string }>(
      `select id, tenant_id, definition_id from bpm.start_process('straight')`,
    );
    expect(rows[0]?.tenant_id).toBe(B);
    const started = await client.query(
      `select d.tenant_id, d.version, t.name as task
       from bpm.process_definition d, bpm.user_task t
       where d.id = $1 and t.instance_id = $2`,
      [rows[0]?.definition_id, rows[0]?.id],
    );
    expect(started.rows).toEqual([{ tenant_id: B, version: 1, task: 'Task' }]);
  } finally {
    await client.query('rollback');
  }
});
