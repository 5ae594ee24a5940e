/**
 * Jest globalSetup of the "db" project: resolves the test server
 * (TEST_DATABASE_URL, else the embedded cluster .pgbpm/test-data on port
 * 54339), drops leftovers of crashed earlier runs, creates this run's template
 * database, migrates it (committed migrations, plus db/migrations/current.sql
 * unless PGBPM_TEST_CURRENT=0) and marks it as a template. Test files clone it
 * with createTestDb() (test/helpers/db.ts).
 */
import pg from 'pg';
import { resolveDatabase, withDatabase, type ResolvedDatabase } from '../../cli/database';
import { migrateDatabase } from '../../cli/migrate';
import {
  ENV_AUTH_URL,
  ENV_ROOT_URL,
  ENV_RUN_ID,
  ENV_TEMPLATE,
  TEMPLATE_PREFIX,
  dropRunDatabase,
  newRunId,
  parseRunDatabase,
  pidAlive,
} from './shared';

export interface GlobalTestState {
  db: ResolvedDatabase;
  runId: string;
  template: string;
}

declare global {
  // shared between globalSetup and globalTeardown (same process)
  // eslint-disable-next-line no-var
  var __PGBPM_TEST_STATE__: GlobalTestState | undefined;
}

const STALE_AFTER_MS = Number(process.env.PGBPM_TEST_STALE_MINUTES ?? 60) * 60_000;

function note(message: string): void {
  process.stderr.write(`[pgbpm test db] ${message}\n`);
}

/** Leftovers of earlier runs: older than an hour, or (embedded) of a jest process that is gone. */
async function dropStaleDatabases(client: pg.Client, embedded: boolean): Promise<void> {
  const { rows } = await client.query<{ datname: string }>(
    `select datname from pg_catalog.pg_database where datname like 'pgbpm\\_template\\_%' or datname like 'pgbpm\\_t\\_%'`,
  );
  const now = Date.now();
  for (const { datname } of rows) {
    const parsed = parseRunDatabase(datname);
    if (!parsed) continue;
    const stale = now - parsed.startedAt > STALE_AFTER_MS || (embedded && !pidAlive(parsed.pid));
    if (stale) await dropRunDatabase(client, datname);
  }
}

export default async function globalSetup(): Promise<void> {
  const started = Date.now();
  const db = await resolveDatabase('test', { log: note });
  const runId = newRunId();
  const template = `${TEMPLATE_PREFIX}${runId}`;
  try {
    const client = new pg.Client({ connectionString: db.connectionString, application_name: 'pgbpm-test-setup' });
    client.on('error', () => undefined);
    await client.connect();
    try {
      await dropStaleDatabases(client, db.embedded);
      await client.query(`create database ${client.escapeIdentifier(template)}`);
      try {
        await migrateDatabase(withDatabase(db.connectionString, template), {
          authenticatorPassword: db.authenticatorPassword,
          includeCurrent: process.env.PGBPM_TEST_CURRENT !== '0',
        });
      } catch (err) {
        await dropRunDatabase(client, template);
        throw err;
      }
      // no connections to a template: cloning it must never wait for one
      await client.query(`alter database ${client.escapeIdentifier(template)} with is_template true allow_connections false`);
    } finally {
      await client.end();
    }
    process.env[ENV_ROOT_URL] = db.connectionString;
    process.env[ENV_AUTH_URL] = db.authenticatorConnectionString;
    process.env[ENV_TEMPLATE] = template;
    process.env[ENV_RUN_ID] = runId;
    globalThis.__PGBPM_TEST_STATE__ = { db, runId, template };
    if (process.env.PGBPM_TEST_VERBOSE) {
      note(`template ${template} ready on ${db.embedded ? 'the embedded server' : 'TEST_DATABASE_URL'} in ${Date.now() - started} ms`);
    }
  } catch (err) {
    await db.stop();
    throw err;
  }
}
