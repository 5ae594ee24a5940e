/**
 * graphile_worker, the job queue, is graphile-worker's own schema: installed
 * by `pgbpm migrate` before pgbpm's migrations, owned by the migrating login,
 * outside bpm/bpm_private (so outside the catalog checks of catalog.test.ts:
 * no tenant column, no pgbpm row-level security of its own). What pgbpm's
 * roles may do on it (db/functions/setup/worker_grants.sql) is checked here:
 * the worker role runs the queue, the engine's owner enqueues and cancels
 * jobs, and the API roles get nothing at all.
 */
import { createTestDb, type TestDb } from '../../helpers/db';

let db: TestDb;

beforeAll(async () => {
  db = await createTestDb();
});
afterAll(() => db.close());

const NO_ACCESS_ROLES = ['bpm_admin', 'bpm_designer', 'bpm_user', 'bpm_authenticator', 'public'];

interface Privileges {
  role: string;
  usage: boolean;
  tables: string[];
  functions: string[];
}

async function privileges(roles: string[]): Promise<Privileges[]> {
  const { rows } = await db.root.query<Privileges>(
    `select r.role,
            case when r.role = 'public'
                 then exists (select 1 from pg_catalog.pg_namespace n, pg_catalog.aclexplode(n.nspacl) x
                              where n.nspname = 'graphile_worker' and x.grantee = 0)
                 else pg_catalog.has_schema_privilege(r.role, 'graphile_worker', 'USAGE') end as usage,
            coalesce((select array_agg(c.relname || ':' || p.priv order by c.relname, p.priv)
                      from pg_catalog.pg_class c join pg_catalog.pg_namespace n on n.oid = c.relnamespace
                      cross join unnest(array['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'TRUNCATE']) p(priv)
                      where n.nspname = 'graphile_worker' and c.relkind in ('r', 'v') and r.role <> 'public'
                        and pg_catalog.has_table_privilege(r.role, c.oid, p.priv)), '{}') as tables,
            coalesce((select array_agg(p.proname::text order by p.proname)
                      from pg_catalog.pg_proc p join pg_catalog.pg_namespace n on n.oid = p.pronamespace
                      where n.nspname = 'graphile_worker'
                        and (case when r.role = 'public'
                                  then p.proacl is null or exists (select 1 from pg_catalog.aclexplode(p.proacl) x where x.grantee = 0)
                                  else pg_catalog.has_function_privilege(r.role, p.oid, 'EXECUTE') end)), '{}') as functions
     from unnest($1::text[]) r(role) order by r.role`,
    [roles],
  );
  return rows;
}

test('the API roles, the login role and PUBLIC have no privilege at all on graphile_worker', async () => {
  expect(await privileges(NO_ACCESS_ROLES)).toEqual(
    [...NO_ACCESS_ROLES].sort().map((role) => ({ role, usage: false, tables: [], functions: [] })),
  );
});

test('bpm_engine runs the queue: its tables (read-only migrations) and functions', async () => {
  const [engine] = await privileges(['bpm_engine']);
  expect(engine?.usage).toBe(true);
  const dml = (t: string): string[] => ['DELETE', 'INSERT', 'SELECT', 'UPDATE'].map((p) => `${t}:${p}`);
  expect(engine?.tables).toEqual([
    ...dml('_private_job_queues'),
    ...dml('_private_jobs'),
    ...dml('_private_known_crontabs'),
    ...dml('_private_tasks'),
    ...dml('jobs'),
    'migrations:SELECT',
  ]);
  expect(engine?.functions).toEqual(expect.arrayContaining(['add_job', 'add_jobs', 'complete_jobs', 'remove_job']));
});

test('bpm_owner (the engine functions) may enqueue and cancel jobs, and nothing else', async () => {
  const [owner] = await privileges(['bpm_owner']);
  expect(owner).toMatchObject({ usage: true, functions: ['add_job', 'add_jobs'] });
  const client = await db.root.connect();
  try {
    await client.query('begin');
    await client.query('set local role bpm_owner');
    const added = await client.query<{ id: string; key: string }>(
      `select id, key from graphile_worker.add_job('pgbpm_ping', '{}', job_key := 'test-key', run_at := now() + interval '1 hour')`,
    );
    expect(added.rows[0]?.key).toBe('test-key');
    // cancelled as bpm_private.timer__dequeue does it
    const removed = await client.query<{ id: string }>(`delete from graphile_worker._private_jobs where key = 'test-key' returning id`);
    expect(removed.rows[0]?.id).toBe(added.rows[0]?.id);
    await expect(client.query('select graphile_worker.complete_jobs(array[1::bigint])')).rejects.toMatchObject({ code: '42501' });
  } finally {
    await client.query('rollback');
    client.release();
  }
});

test('an API role cannot enqueue a job', async () => {
  for (const role of ['bpm_admin', 'bpm_designer', 'bpm_user'] as const) {
    const client = await db.connectAs({ role, tenant: 't', user: 'u' });
    await expect(client.query(`select graphile_worker.add_job('pgbpm_ping')`)).rejects.toMatchObject({
      code: '42501',
      message: 'permission denied for schema graphile_worker',
    });
    await client.end();
  }
});
