/**
 * The test harness itself: cloned databases carry the migrated schema, are
 * isolated from each other, and API connections really run as the API roles
 * (logged in as bpm_authenticator, not as a superuser).
 */
import fs from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import { migrationsFolder } from '../../cli/paths';
import { API_ROLES, createTestDb, type TestDb } from '../helpers/db';

function committedMigrations(): string[] {
  const dir = path.join(migrationsFolder(), 'committed');
  return fs.existsSync(dir) ? fs.readdirSync(dir).filter((f) => /^\d{6}(-.*)?\.sql$/.test(f)) : [];
}

/** Whether the template includes a current.sql with SQL in it (see globalSetup). */
function currentMigrationHasSql(): boolean {
  if (process.env.PGBPM_TEST_CURRENT === '0') return false;
  const file = path.join(migrationsFolder(), 'current.sql');
  if (!fs.existsSync(file)) return false;
  return fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .some((line) => line.trim() !== '' && !line.trim().startsWith('--'));
}

let db: TestDb;

beforeAll(async () => {
  db = await createTestDb();
});

afterAll(async () => {
  await db?.close();
});

test('the clone carries the migrated schema', async () => {
  const { rows } = await db.root.query<{ db: string; n: number }>(
    'select current_database() as db, (select count(*)::int from graphile_migrate.migrations) as n',
  );
  expect(rows[0]).toEqual({ db: db.name, n: committedMigrations().length });
  if (committedMigrations().length > 0 || currentMigrationHasSql()) {
    const schemas = await db.root.query(`select 1 from pg_catalog.pg_namespace where nspname = 'bpm'`);
    expect(schemas.rowCount).toBe(1);
  }
});

test.each(API_ROLES)('connectAs(%s) logs in as bpm_authenticator and runs as the role', async (role) => {
  const client = await db.connectAs({ role, tenant: 'tenant-a', user: 'alice', groups: ['sales', 'ops'] });
  const { rows } = await client.query(
    `select current_user::text as current_user, session_user::text as session_user,
            (select rolsuper from pg_catalog.pg_roles where rolname = current_user) as role_super,
            (select rolsuper from pg_catalog.pg_roles where rolname = session_user) as login_super,
            current_setting('bpm.tenant_id', true) as tenant,
            current_setting('bpm.user_id', true) as "user",
            current_setting('bpm.groups', true) as groups,
            current_database() as db`,
  );
  expect(rows[0]).toEqual({
    current_user: role,
    session_user: 'bpm_authenticator',
    role_super: false,
    login_super: false,
    tenant: 'tenant-a',
    user: 'alice',
    groups: 'sales,ops',
    db: db.name,
  });
  // the setting survives transactions (session level)
  await client.query('begin');
  await client.query('commit');
  const again = await client.query(`select current_user::text as u, current_setting('bpm.tenant_id', true) as t`);
  expect(again.rows[0]).toEqual({ u: role, t: 'tenant-a' });
});

test('an API session cannot become a superuser', async () => {
  const client = await db.connectAs({ role: 'bpm_user', tenant: 'tenant-a' });
  const superuser = (await db.root.query<{ u: string }>('select current_user::text as u')).rows[0]?.u ?? 'postgres';
  await expect(client.query(`set role ${client.escapeIdentifier(superuser)}`)).rejects.toThrow(/permission denied/);
  await client.query('reset role');
  const { rows } = await client.query(
    `select current_user::text as u, (select rolsuper or rolbypassrls from pg_catalog.pg_roles where rolname = current_user) as privileged`,
  );
  expect(rows[0]).toEqual({ u: 'bpm_authenticator', privileged: false });
});

test('unset context stays unset', async () => {
  const client = await db.connectAs({ role: 'bpm_engine' });
  const { rows } = await client.query(
    `select current_setting('bpm.tenant_id', true) as tenant, current_setting('bpm.user_id', true) as "user"`,
  );
  expect(rows[0]).toEqual({ tenant: null, user: null });
});

test('pool() sets up every connection like connectAs', async () => {
  const pool = db.pool({ role: 'bpm_designer', tenant: 'tenant-b' }, 3);
  const results = await Promise.all(
    Array.from({ length: 6 }, () =>
      pool.query<{ u: string; t: string; pid: number }>(
        `select current_user::text as u, current_setting('bpm.tenant_id', true) as t, pg_backend_pid() as pid, pg_sleep(0.05)`,
      ),
    ),
  );
  const rows = results.map((r) => r.rows[0]);
  expect(new Set(rows.map((r) => r?.pid)).size).toBe(3);
  for (const r of rows) expect(r).toMatchObject({ u: 'bpm_designer', t: 'tenant-b' });
});

test('connectAs rejects roles outside the API roles', async () => {
  await expect(db.connectAs({ role: 'postgres' as never })).rejects.toThrow(/role must be one of/);
});

test('databases are isolated and close() drops them', async () => {
  const other = await createTestDb();
  expect(other.name).not.toBe(db.name);
  await other.root.query('create table harness_probe (id int)');
  const mine = await db.root.query(`select to_regclass('public.harness_probe') as t`);
  expect(mine.rows[0]).toEqual({ t: null });
  const leaked = await other.connectAs({ role: 'bpm_user' }); // left open on purpose: close() must end it
  expect(leaked).toBeDefined();
  await other.close();
  const check = new pg.Client({ connectionString: db.urls.root });
  await check.connect();
  try {
    const { rowCount } = await check.query('select 1 from pg_catalog.pg_database where datname = $1', [other.name]);
    expect(rowCount).toBe(0);
  } finally {
    await check.end();
  }
});
