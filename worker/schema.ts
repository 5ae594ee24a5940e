/**
 * graphile-worker's own schema (graphile_worker): its tables, functions and
 * migrations belong to graphile-worker, not to pgbpm's migrations. `pgbpm
 * migrate` installs or upgrades it (graphile-worker's runMigrations) as the
 * migrating login before graphile-migrate runs pgbpm's migrations, which then
 * grant bpm_engine and bpm_owner what they need on it
 * (db/functions/setup/worker_grants.sql).
 */
import pg from 'pg';
import { Logger, runMigrations } from 'graphile-worker';
import { handlePoolErrors } from '../server/pg-pool';

/** The schema graphile-worker lives in (its default; pgbpm's grants name it). */
export const WORKER_SCHEMA = 'graphile_worker';

export type SchemaLogLevel = 'error' | 'warning' | 'info' | 'debug';

export interface InstallWorkerSchemaOptions {
  /** graphile-worker's messages; default: errors and warnings to stderr. */
  log?: (level: SchemaLogLevel, message: string) => void;
  /** application_name of the connection (default pgbpm-worker-schema). */
  applicationName?: string;
}

const defaultLog = (level: SchemaLogLevel, message: string): void => {
  if (level === 'error' || level === 'warning') process.stderr.write(`${message}\n`);
};

/**
 * Installs graphile-worker's schema in the database, or brings it to this
 * graphile-worker version. Idempotent; safe to run concurrently (graphile-worker
 * detects a migration another process applied). Needs a login that may create
 * a schema in the database (its owner, or a superuser). Closes its
 * connection before it returns.
 */
export async function installWorkerSchema(connectionString: string, options: InstallWorkerSchemaOptions = {}): Promise<void> {
  const log = options.log ?? defaultLog;
  const pool = new pg.Pool({ connectionString, max: 1, application_name: options.applicationName ?? 'pgbpm-worker-schema' });
  handlePoolErrors(pool, () => undefined);
  try {
    await runMigrations({
      pgPool: pool,
      schema: WORKER_SCHEMA,
      logger: new Logger(() => (level, message) => log(level as SchemaLogLevel, message)),
    });
  } finally {
    await pool.end();
  }
}
