/** The benchmarks' own database: dropped, recreated and migrated for each run. */
import pg from 'pg';
import { ensureDatabase, resolveDatabase, withDatabase } from '../cli/database';
import { migrateDatabase } from '../cli/migrate';

export interface BenchDatabase {
  /** Superuser (or DATABASE_URL) login on the benchmark database. */
  url: string;
  /** bpm_authenticator login on the benchmark database. */
  authUrl: string;
  stop: () => Promise<void>;
}

/**
 * Drops and recreates `name` on the embedded server (or DATABASE_URL's) and
 * migrates it (BENCH_CURRENT=1: including db/migrations/current.sql).
 */
export async function prepareBenchDatabase(name: string): Promise<BenchDatabase> {
  const db = await resolveDatabase('app', { log: (m) => console.error(m) });
  const url = withDatabase(db.connectionString, name);
  const admin = new pg.Client({ connectionString: db.connectionString });
  await admin.connect();
  await admin.query(`drop database if exists ${admin.escapeIdentifier(name)} with (force)`);
  await admin.end();
  await ensureDatabase(db.connectionString, name);
  await migrateDatabase(url, { authenticatorPassword: db.authenticatorPassword, includeCurrent: process.env.BENCH_CURRENT === '1' });
  return { url, authUrl: withDatabase(db.authenticatorConnectionString, name), stop: () => db.stop() };
}

/**
 * The raw ceiling's tables (bench (a): a transaction of 3 INSERTs): the same
 * shape of keys as the engine's tables, RLS forced, owned by a non-superuser,
 * writable by bpm_admin. Their policy has the form of the engine's own
 * (engine_tenant_isolation: the tenant setting read directly, no init plan),
 * the cheaper one: until migration 000087 both read it through an init plan,
 * which cost the ceiling 98 k of its 529 k instructions.
 */
export const RAW_CEILING_TABLES = `
    create schema bench_raw;
    create table bench_raw.instance (tenant_id text not null, id uuid not null default gen_random_uuid(), variables jsonb not null, started_at timestamptz not null default now(), primary key (tenant_id, id));
    create table bench_raw.task (tenant_id text not null, id uuid not null default gen_random_uuid(), name text, created_at timestamptz not null default now(), primary key (tenant_id, id));
    create table bench_raw.history (tenant_id text not null, id uuid not null default gen_random_uuid(), element_id text, started_at timestamptz not null default now(), primary key (tenant_id, id));
    do $$ declare t text; begin foreach t in array array['instance','task','history'] loop
      execute format('alter table bench_raw.%I enable row level security', t);
      execute format('alter table bench_raw.%I force row level security', t);
      execute format($p$create policy tenant on bench_raw.%I using (tenant_id = nullif(current_setting('bpm.tenant_id', true), '')) with check (tenant_id = nullif(current_setting('bpm.tenant_id', true), ''))$p$, t);
      execute format('grant select, insert on bench_raw.%I to bpm_admin', t);
    end loop; end $$;
    grant usage on schema bench_raw to bpm_admin;
    alter schema bench_raw owner to bpm_owner;
    alter table bench_raw.instance owner to bpm_owner; alter table bench_raw.task owner to bpm_owner; alter table bench_raw.history owner to bpm_owner;`;
