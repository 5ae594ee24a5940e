/**
 * The security conventions of the engine's schemas, checked in pg_catalog (as
 * the superuser, inspection only): forced RLS and a leading tenant_id on every
 * table and key, pinned search_path on every function, comments, no PUBLIC
 * execute, one owner without superpowers, and no write privileges or
 * bpm_private access for the API roles. Each check lists the offending
 * objects, so a failure says exactly what to fix; a last test plants a
 * violation of each kind (in a rolled-back transaction) to prove that every
 * check really catches it.
 */
import type pg from 'pg';
import { API_ROLES, createTestDb, type TestDb } from '../../helpers/db';

const SCHEMAS = ['bpm', 'bpm_private'];
/** The API roles plus the login role that switches to them. */
const CLIENT_ROLES = [...API_ROLES, 'bpm_authenticator'];

let db: TestDb;

beforeAll(async () => {
  db = await createTestDb();
});

afterAll(async () => {
  await db?.close();
});

/** Tables (plain and partitioned) of the engine's schemas. $1 = schema names. */
const TABLES = `
  select c.oid, c.oid::regclass::text as name, n.nspname, c.relrowsecurity, c.relforcerowsecurity
  from pg_catalog.pg_class c
  join pg_catalog.pg_namespace n on n.oid = c.relnamespace
  where n.nspname = any($1) and c.relkind in ('r', 'p')`;

/** Functions and procedures of the engine's schemas, with their search_path setting if any. $1 = schema names. */
const FUNCTIONS = `
  select p.oid, p.oid::regprocedure::text as name, n.nspname, p.prosecdef, p.proowner, p.proacl,
         (select substr(c, length('search_path=') + 1) from unnest(p.proconfig) c where c like 'search_path=%') as search_path
  from pg_catalog.pg_proc p
  join pg_catalog.pg_namespace n on n.oid = p.pronamespace
  where n.nspname = any($1)`;

/** The two forms of the tenant rule, as pg_get_expr prints them. */
const ONCE_PER_STATEMENT = `'(tenant_id = ( SELECT NULLIF(current_setting(''bpm.tenant_id''::text, true), ''''::text) AS "nullif"))'`;
const DIRECT = `'(tenant_id = NULLIF(current_setting(''bpm.tenant_id''::text, true), ''''::text))'`;

interface Check {
  /** The rule, as a behaviour sentence. */
  rule: string;
  /** Returns one `offender` text column per violation; $1 = schema names, $2 = client roles. */
  sql: string;
}

const CHECKS: Check[] = [
  {
    rule: 'every table of bpm and bpm_private has row-level security enabled and forced',
    sql: `select t.name || ' (rowsecurity ' || t.relrowsecurity || ', force ' || t.relforcerowsecurity || ')' as offender
          from (${TABLES}) t
          where not (t.relrowsecurity and t.relforcerowsecurity)`,
  },
  {
    rule: 'every table has a tenant_isolation policy on bpm.tenant_id for bpm_admin, bpm_designer and bpm_engine, the setting read once per statement (an init plan)',
    sql: `select t.name as offender
          from (${TABLES}) t
          where not exists (
            select 1 from pg_catalog.pg_policy p
            where p.polrelid = t.oid and p.polname = 'tenant_isolation' and p.polcmd = '*' and p.polpermissive
              and pg_catalog.pg_get_expr(p.polqual, p.polrelid) = ${ONCE_PER_STATEMENT}
              and pg_catalog.pg_get_expr(p.polwithcheck, p.polrelid) = ${ONCE_PER_STATEMENT}
              and (select array_agg(r.rolname::text order by r.rolname) from pg_catalog.pg_roles r where r.oid = any(p.polroles))
                  = array['bpm_admin', 'bpm_designer', 'bpm_engine'])`,
  },
  {
    rule: 'every table has an engine_tenant_isolation policy on bpm.tenant_id for bpm_owner (the engine), the setting read directly',
    sql: `select t.name as offender
          from (${TABLES}) t
          where not exists (
            select 1 from pg_catalog.pg_policy p
            where p.polrelid = t.oid and p.polname = 'engine_tenant_isolation' and p.polcmd = '*' and p.polpermissive
              and pg_catalog.pg_get_expr(p.polqual, p.polrelid) = ${DIRECT}
              and pg_catalog.pg_get_expr(p.polwithcheck, p.polrelid) = ${DIRECT}
              and p.polroles = array['bpm_owner'::regrole]::oid[])`,
  },
  {
    rule: 'bpm_owner and the tenant roles have no other policies than these (bpm_user has its own, for reading)',
    sql: `select p.polname || ' on ' || p.polrelid::regclass::text as offender
          from pg_catalog.pg_policy p
          join pg_catalog.pg_class c on c.oid = p.polrelid
          join pg_catalog.pg_namespace n on n.oid = c.relnamespace
          where n.nspname = any($1) and p.polname not in ('tenant_isolation', 'engine_tenant_isolation')
            and exists (select 1 from pg_catalog.pg_roles r where r.oid = any(p.polroles) and r.rolname in ('bpm_owner', 'bpm_admin', 'bpm_designer', 'bpm_engine'))`,
  },
  {
    rule: 'every table has a not null text tenant_id column',
    sql: `select t.name as offender
          from (${TABLES}) t
          where not exists (
            select 1 from pg_catalog.pg_attribute a
            where a.attrelid = t.oid and a.attname = 'tenant_id' and not a.attisdropped
              and a.attnotnull and a.atttypid = 'text'::regtype)`,
  },
  {
    rule: 'every primary key, unique constraint and unique index leads with tenant_id',
    sql: `select 'index ' || i.indexrelid::regclass::text || ' on ' || i.indrelid::regclass::text
                 || ' (first column ' || coalesce(a.attname::text, 'an expression') || ')' as offender
          from pg_catalog.pg_index i
          join pg_catalog.pg_class c on c.oid = i.indrelid
          join pg_catalog.pg_namespace n on n.oid = c.relnamespace
          left join pg_catalog.pg_attribute a on a.attrelid = i.indrelid and a.attnum = i.indkey[0]
          where n.nspname = any($1) and (i.indisunique or i.indisprimary)
            and a.attname is distinct from 'tenant_id'
          union all
          select 'constraint ' || con.conname || ' on ' || con.conrelid::regclass::text || ' (type ' || con.contype::text || ')'
          from pg_catalog.pg_constraint con
          join pg_catalog.pg_namespace n on n.oid = con.connamespace
          where n.nspname = any($1) and con.contype in ('p', 'u', 'x')
            and (select a.attname from pg_catalog.pg_attribute a where a.attrelid = con.conrelid and a.attnum = con.conkey[1])
                is distinct from 'tenant_id'`,
  },
  {
    rule: 'every foreign key leads with tenant_id on both sides (tenant_id references tenant_id)',
    sql: `select con.conname || ' on ' || con.conrelid::regclass::text || ' (' ||
                 (select string_agg(a.attname, ', ' order by k.ord) from unnest(con.conkey) with ordinality k(attnum, ord)
                  join pg_catalog.pg_attribute a on a.attrelid = con.conrelid and a.attnum = k.attnum)
                 || ') → ' || con.confrelid::regclass::text || ' (' ||
                 (select string_agg(a.attname, ', ' order by k.ord) from unnest(con.confkey) with ordinality k(attnum, ord)
                  join pg_catalog.pg_attribute a on a.attrelid = con.confrelid and a.attnum = k.attnum)
                 || ')' as offender
          from pg_catalog.pg_constraint con
          join pg_catalog.pg_namespace n on n.oid = con.connamespace
          where n.nspname = any($1) and con.contype = 'f'
            and not (
              (select a.attname from pg_catalog.pg_attribute a where a.attrelid = con.conrelid and a.attnum = con.conkey[1]) = 'tenant_id'
              and (select a.attname from pg_catalog.pg_attribute a where a.attrelid = con.confrelid and a.attnum = con.confkey[1]) = 'tenant_id')`,
  },
  {
    rule: 'every security definer function has search_path in proconfig',
    sql: `select f.name as offender from (${FUNCTIONS}) f where f.prosecdef and f.search_path is null`,
  },
  {
    rule: 'every function pins an empty search_path (the convention: everything is schema-qualified)',
    sql: `select f.name || ' (search_path ' || coalesce(f.search_path, 'not set') || ')' as offender
          from (${FUNCTIONS}) f where f.search_path is distinct from '""'`,
  },
  {
    // bpm_private.token's columns are internals and documented by its table
    // comment; the public contract documents every column.
    rule: 'every schema, table, type and function of the engine, and every column of bpm, has a comment',
    sql: `select 'table ' || t.name as offender from (${TABLES}) t
          where pg_catalog.obj_description(t.oid, 'pg_class') is null
          union all
          select 'column ' || t.name || '.' || a.attname
          from (${TABLES}) t
          join pg_catalog.pg_attribute a on a.attrelid = t.oid and a.attnum > 0 and not a.attisdropped
          where t.nspname = 'bpm' and pg_catalog.col_description(t.oid, a.attnum) is null
          union all
          select 'function ' || f.name from (${FUNCTIONS}) f
          where pg_catalog.obj_description(f.oid, 'pg_proc') is null
          union all
          select 'type ' || ty.oid::regtype::text
          from pg_catalog.pg_type ty
          join pg_catalog.pg_namespace n on n.oid = ty.typnamespace
          where n.nspname = any($1) and ty.typtype in ('c', 'd', 'e')
            and not exists (select 1 from pg_catalog.pg_class c where c.oid = ty.typrelid and c.relkind <> 'c')
            and pg_catalog.obj_description(ty.oid, 'pg_type') is null
          union all
          select 'schema ' || n.nspname from pg_catalog.pg_namespace n
          where n.nspname = any($1) and pg_catalog.obj_description(n.oid, 'pg_namespace') is null`,
  },
  {
    rule: 'no function of bpm or bpm_private is executable by PUBLIC',
    // a null proacl means the built-in default: EXECUTE for PUBLIC
    sql: `select f.name || case when f.proacl is null then ' (default privileges)' else ' (granted to PUBLIC)' end as offender
          from (${FUNCTIONS}) f
          where f.proacl is null
             or exists (select 1 from pg_catalog.aclexplode(f.proacl) x where x.grantee = 0 and x.privilege_type = 'EXECUTE')`,
  },
  {
    rule: 'no client role can execute a bpm_private function, and the login role itself can execute none at all',
    sql: `select f.name || ' by ' || r.role as offender
          from (${FUNCTIONS}) f
          cross join unnest($2::text[]) r(role)
          where (f.nspname = 'bpm_private' or r.role = 'bpm_authenticator')
            and pg_catalog.has_function_privilege(r.role, f.oid, 'EXECUTE')`,
  },
  {
    rule: 'every object of bpm and bpm_private is owned by bpm_owner',
    sql: `select 'schema ' || n.nspname || ' (owner ' || pg_catalog.pg_get_userbyid(n.nspowner) || ')' as offender
          from pg_catalog.pg_namespace n
          where n.nspname = any($1) and pg_catalog.pg_get_userbyid(n.nspowner) <> 'bpm_owner'
          union all
          select 'relation ' || c.oid::regclass::text || ' (kind ' || c.relkind::text || ', owner ' || pg_catalog.pg_get_userbyid(c.relowner) || ')'
          from pg_catalog.pg_class c join pg_catalog.pg_namespace n on n.oid = c.relnamespace
          where n.nspname = any($1) and pg_catalog.pg_get_userbyid(c.relowner) <> 'bpm_owner'
          union all
          select 'function ' || f.name || ' (owner ' || pg_catalog.pg_get_userbyid(f.proowner) || ')'
          from (${FUNCTIONS}) f where pg_catalog.pg_get_userbyid(f.proowner) <> 'bpm_owner'
          union all
          select 'type ' || ty.oid::regtype::text || ' (owner ' || pg_catalog.pg_get_userbyid(ty.typowner) || ')'
          from pg_catalog.pg_type ty join pg_catalog.pg_namespace n on n.oid = ty.typnamespace
          where n.nspname = any($1) and pg_catalog.pg_get_userbyid(ty.typowner) <> 'bpm_owner'`,
  },
  {
    rule: 'no client role has INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES or TRIGGER on any table, column or sequence',
    sql: `select t.name || ': ' || r.role || ' has ' || p.priv as offender
          from (${TABLES}) t
          cross join unnest($2::text[]) r(role)
          cross join unnest(array['INSERT', 'UPDATE', 'DELETE', 'TRUNCATE', 'REFERENCES', 'TRIGGER']) p(priv)
          where pg_catalog.has_table_privilege(r.role, t.oid, p.priv)
          union all
          select t.name || ': ' || r.role || ' has column-level ' || p.priv
          from (${TABLES}) t
          cross join unnest($2::text[]) r(role)
          cross join unnest(array['INSERT', 'UPDATE', 'REFERENCES']) p(priv)
          where pg_catalog.has_any_column_privilege(r.role, t.oid, p.priv)
          union all
          select c.oid::regclass::text || ': ' || r.role || ' has ' || p.priv
          from pg_catalog.pg_class c join pg_catalog.pg_namespace n on n.oid = c.relnamespace
          cross join unnest($2::text[]) r(role)
          cross join unnest(array['USAGE', 'UPDATE']) p(priv)
          where n.nspname = any($1) and c.relkind = 'S' and pg_catalog.has_sequence_privilege(r.role, c.oid, p.priv)`,
  },
  {
    rule: 'no client role has USAGE on bpm_private, and none may create objects in bpm or bpm_private',
    sql: `select s.nspname || ': ' || r.role || ' has ' || p.priv as offender
          from unnest($1::text[]) s(nspname)
          cross join unnest($2::text[]) r(role)
          cross join unnest(array['USAGE', 'CREATE']) p(priv)
          where pg_catalog.has_schema_privilege(r.role, s.nspname, p.priv)
            and not (s.nspname = 'bpm' and p.priv = 'USAGE' and r.role <> 'bpm_authenticator')`,
  },
  {
    rule: 'no client role is a member of bpm_owner',
    sql: `select r.role as offender from unnest($2::text[]) r(role)
          where pg_catalog.pg_has_role(r.role, 'bpm_owner', 'member')`,
  },
];

async function offenders(client: pg.ClientBase | pg.Pool, check: Check): Promise<string[]> {
  // every check gets both parameters, whether it uses them or not
  const { rows } = await client.query<{ offender: string }>(
    `select q.offender from (${check.sql}) q where cardinality($1::text[]) > 0 and cardinality($2::text[]) > 0`,
    [SCHEMAS, CLIENT_ROLES],
  );
  return rows.map((r) => r.offender).sort();
}

test('the catalog checks see the engine tables and functions they are meant to check', async () => {
  const { rows } = await db.root.query<{ tables: string[]; functions: number; foreign_keys: number }>(
    `select (select array_agg(t.name order by t.name) from (${TABLES}) t) as tables,
            (select count(*)::int from (${FUNCTIONS}) f) as functions,
            (select count(*)::int from pg_catalog.pg_constraint con join pg_catalog.pg_namespace n on n.oid = con.connamespace
             where n.nspname = any($1) and con.contype = 'f') as foreign_keys`,
    [SCHEMAS],
  );
  expect(rows[0]?.tables).toEqual([
    'bpm.activity_instance',
    'bpm.decision_definition',
    'bpm.deployment',
    'bpm.event',
    'bpm.event_subscription',
    'bpm.external_task',
    'bpm.incident',
    'bpm.message_buffer',
    'bpm.process_definition',
    'bpm.process_instance',
    'bpm.user_task',
    'bpm_private.deferred_delivery',
    'bpm_private.event_listener',
    'bpm_private.message_receipt',
    'bpm_private.start_request',
    'bpm_private.task_listener',
    'bpm_private.task_offer',
    'bpm_private.token',
  ]);
  expect(rows[0]?.functions).toBeGreaterThan(30);
  expect(rows[0]?.foreign_keys).toBeGreaterThanOrEqual(7);
});

test.each(CHECKS.map((c) => [c.rule, c] as const))('%s', async (rule, check) => {
  const found = await offenders(db.root, check);
  if (found.length > 0) throw new Error(`${rule}: ${found.length} offending object(s):\n  ${found.join('\n  ')}`);
});

test('bpm_owner cannot log in and is neither superuser nor exempt from row-level security', async () => {
  const { rows } = await db.root.query(
    `select rolname, rolsuper, rolbypassrls, rolcanlogin, rolcreaterole, rolcreatedb
     from pg_catalog.pg_roles where rolname = 'bpm_owner'`,
  );
  expect(rows).toEqual([
    { rolname: 'bpm_owner', rolsuper: false, rolbypassrls: false, rolcanlogin: false, rolcreaterole: false, rolcreatedb: false },
  ]);
});

test('the API roles and the login role are neither superusers nor exempt from row-level security, and only the login role (NOINHERIT) can log in', async () => {
  const { rows } = await db.root.query(
    `select rolname, rolsuper, rolbypassrls, rolcanlogin, rolinherit
     from pg_catalog.pg_roles where rolname = any($1) order by rolname`,
    [CLIENT_ROLES],
  );
  expect(rows).toEqual([
    { rolname: 'bpm_admin', rolsuper: false, rolbypassrls: false, rolcanlogin: false, rolinherit: true },
    { rolname: 'bpm_authenticator', rolsuper: false, rolbypassrls: false, rolcanlogin: true, rolinherit: false },
    { rolname: 'bpm_designer', rolsuper: false, rolbypassrls: false, rolcanlogin: false, rolinherit: true },
    { rolname: 'bpm_engine', rolsuper: false, rolbypassrls: false, rolcanlogin: false, rolinherit: true },
    { rolname: 'bpm_user', rolsuper: false, rolbypassrls: false, rolcanlogin: false, rolinherit: true },
  ]);
});

test('the API roles reach schema bpm and read exactly the contract tables they are granted', async () => {
  const { rows } = await db.root.query<{ role: string; usage: boolean; tables: string[] }>(
    `select r.role, pg_catalog.has_schema_privilege(r.role, 'bpm', 'USAGE') as usage,
            coalesce(array_agg(t.name order by t.name) filter (where pg_catalog.has_table_privilege(r.role, t.oid, 'SELECT')), '{}') as tables
     from unnest($2::text[]) r(role) cross join (${TABLES}) t
     group by r.role order by r.role`,
    [SCHEMAS, CLIENT_ROLES],
  );
  const contract = [
    'bpm.activity_instance',
    'bpm.decision_definition',
    'bpm.deployment',
    'bpm.event',
    'bpm.event_subscription',
    'bpm.external_task',
    'bpm.incident',
    'bpm.message_buffer',
    'bpm.process_definition',
    'bpm.process_instance',
    'bpm.user_task',
  ];
  expect(rows).toEqual([
    { role: 'bpm_admin', usage: true, tables: contract },
    { role: 'bpm_authenticator', usage: false, tables: [] },
    { role: 'bpm_designer', usage: true, tables: contract },
    { role: 'bpm_engine', usage: true, tables: contract },
    { role: 'bpm_user', usage: true, tables: ['bpm.decision_definition', 'bpm.event', 'bpm.process_definition', 'bpm.process_instance', 'bpm.user_task'] },
  ]);
});

test('each API function is executable by exactly the roles its guard admits', async () => {
  const { rows } = await db.root.query<{ fn: string; roles: string[] }>(
    `select p.proname::text as fn,
            coalesce(array_agg(r.role order by r.role) filter (where pg_catalog.has_function_privilege(r.role, p.oid, 'EXECUTE')), '{}') as roles
     from pg_catalog.pg_proc p join pg_catalog.pg_namespace n on n.oid = p.pronamespace
     cross join unnest($1::text[]) r(role)
     where n.nspname = 'bpm'
     group by p.oid, p.proname order by p.proname`,
    [CLIENT_ROLES],
  );
  const admin = ['bpm_admin'];
  const adminUser = ['bpm_admin', 'bpm_user'];
  const adminEngine = ['bpm_admin', 'bpm_engine'];
  const everyone = ['bpm_admin', 'bpm_designer', 'bpm_engine', 'bpm_user'];
  expect(Object.fromEntries(rows.map((r) => [r.fn, r.roles]))).toEqual({
    activate_ad_hoc_activities: adminEngine,
    activate_process_instance: admin,
    cancel_process_instance: admin,
    broadcast_signal: ['bpm_admin', 'bpm_engine', 'bpm_user'],
    claim_task: adminUser,
    complete_external_task: adminEngine,
    complete_external_tasks: adminEngine,
    cleanup_history: adminEngine,
    continue_async: adminEngine,
    complete_task: adminUser,
    correlate_message: ['bpm_admin', 'bpm_engine', 'bpm_user'],
    evaluate_conditions: ['bpm_admin', 'bpm_engine', 'bpm_user'],
    evaluate_decision: everyone,
    deploy: ['bpm_admin', 'bpm_designer'],
    events_after: everyone,
    fail_external_task: adminEngine,
    fetch_and_lock: adminEngine,
    fire_timer: adminEngine,
    fire_due_timers: adminEngine,
    deliver_deferred: adminEngine,
    migrate_process_instances: admin,
    modify_process_instance: admin,
    process_task_deadline: adminEngine,
    refresh_statistics: adminEngine,
    register_event_listener: everyone,
    register_task_listener: adminEngine,
    retry_incident: adminEngine,
    set_assignee: admin,
    set_variables: admin,
    start_process: adminUser,
    suspend_process_instance: admin,
    task_inbox: adminUser,
    throw_bpmn_error: adminEngine,
    unclaim_task: adminUser,
    update_task: admin,
  });
});

test('every check reports a planted violation of its rule', async () => {
  const client = await db.root.connect();
  try {
    await client.query('begin');
    // planted as the superuser (so not owned by bpm_owner), without RLS,
    // tenant_id, comments or search_path, and with grants that must not exist
    await client.query(`
      create table bpm.planted (id int primary key, note text);
      create unique index planted_note_idx on bpm.planted (note);
      create table bpm_private.planted_child (tenant_id text not null, parent int references bpm.planted (id));
      alter table bpm_private.planted_child enable row level security;
      create policy planted_policy on bpm_private.planted_child to bpm_owner using (true);
      create function bpm.planted_fn() returns int language sql security definer as 'select 1';
      create function bpm_private.planted_helper() returns int language sql set search_path = public as 'select 1';
      grant execute on function bpm.planted_fn() to public;
      grant insert on bpm.planted to bpm_user;
      grant update (note) on bpm.planted to bpm_engine;
      grant execute on function bpm_private.planted_helper() to bpm_engine;
      grant usage on schema bpm_private to bpm_designer;
      grant create on schema bpm to bpm_admin;
    `);
    const results: Record<string, string[]> = {};
    for (const check of CHECKS) results[check.rule] = await offenders(client, check);
    // last, as it hands bpm_user every privilege of the owner
    await client.query('grant bpm_owner to bpm_user');
    const rules = CHECKS.map((c) => c.rule);
    const last = CHECKS[CHECKS.length - 1] as Check;
    results[last.rule] = await offenders(client, last);
    expect(results).toEqual({
      [rules[0] as string]: ['bpm.planted (rowsecurity false, force false)', 'bpm_private.planted_child (rowsecurity true, force false)'],
      [rules[1] as string]: ['bpm.planted', 'bpm_private.planted_child'],
      [rules[2] as string]: ['bpm.planted', 'bpm_private.planted_child'],
      [rules[3] as string]: ['planted_policy on bpm_private.planted_child'],
      [rules[4] as string]: ['bpm.planted'],
      [rules[5] as string]: [
        'constraint planted_pkey on bpm.planted (type p)',
        'index bpm.planted_note_idx on bpm.planted (first column note)',
        'index bpm.planted_pkey on bpm.planted (first column id)',
      ],
      [rules[6] as string]: ['planted_child_parent_fkey on bpm_private.planted_child (parent) → bpm.planted (id)'],
      [rules[7] as string]: ['bpm.planted_fn()'],
      [rules[8] as string]: ['bpm.planted_fn() (search_path not set)', 'bpm_private.planted_helper() (search_path public)'],
      [rules[9] as string]: [
        'column bpm.planted.id',
        'column bpm.planted.note',
        'function bpm.planted_fn()',
        'function bpm_private.planted_helper()',
        'table bpm.planted',
        'table bpm_private.planted_child',
      ],
      [rules[10] as string]: ['bpm.planted_fn() (granted to PUBLIC)'],
      [rules[11] as string]: ['bpm.planted_fn() by bpm_authenticator', 'bpm_private.planted_helper() by bpm_engine'],
      [rules[12] as string]: expect.arrayContaining([
        expect.stringMatching(/^relation bpm\.planted \(kind r, owner /),
        expect.stringMatching(/^relation bpm_private\.planted_child \(kind r, owner /),
        expect.stringMatching(/^function bpm\.planted_fn\(\) \(owner /),
        expect.stringMatching(/^type bpm\.planted \(owner /),
      ]),
      [rules[13] as string]: [
        'bpm.planted: bpm_engine has column-level UPDATE',
        'bpm.planted: bpm_user has INSERT',
        'bpm.planted: bpm_user has column-level INSERT',
      ],
      [rules[14] as string]: ['bpm: bpm_admin has CREATE', 'bpm_private: bpm_designer has USAGE'],
      // membership is transitive: the login role reaches bpm_owner through bpm_user
      [rules[15] as string]: ['bpm_authenticator', 'bpm_user'],
    });
  } finally {
    await client.query('rollback');
    client.release();
  }
});
