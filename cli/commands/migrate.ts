import { parseArgs } from 'node:util';
import { redactPassword, resolveDatabase, type ResolvedDatabase } from '../database';
import { UsageError } from '../errors';
import { err, out } from '../io';
import { migrateDatabase, type MigrateReport } from '../migrate';

export const summary = 'bring the database (DATABASE_URL or the embedded one) to the latest schema';

export const usage = `usage: pgbpm migrate

Runs every committed migration (db/migrations/committed) not yet applied to the
database, then sets bpm_authenticator's password when one is configured
(PGBPM_AUTHENTICATOR_PASSWORD; "pgbpm-dev" on the embedded server).
Idempotent: running it again changes nothing.

Database: DATABASE_URL (a login allowed to create roles and schemas, e.g. the
database owner with CREATEROLE, or a superuser), else the embedded PostgreSQL
in .pgbpm/data, port 54329 (PGBPM_EMBEDDED_PORT).`;

/** Resolves the app database, logging embedded-server progress to stderr. */
export function resolveAppDatabase(): Promise<ResolvedDatabase> {
  return resolveDatabase('app', { log: (m) => err(m) });
}

/** Migrates a resolved app database (quietly; errors carry the context). */
export function migrateApp(db: ResolvedDatabase): Promise<MigrateReport> {
  return migrateDatabase(db.connectionString, { authenticatorPassword: db.authenticatorPassword });
}

export function describeReport(report: MigrateReport): string {
  const schema = report.lastMigration ? `schema at ${report.lastMigration}` : 'no committed migrations yet';
  const auth = !report.authenticatorExists
    ? 'role bpm_authenticator does not exist yet'
    : report.authenticatorPasswordSet
      ? 'bpm_authenticator password set'
      : 'bpm_authenticator password left unchanged (PGBPM_AUTHENTICATOR_PASSWORD not set)';
  return `${schema}; ${auth}`;
}

export async function run(args: string[]): Promise<number> {
  const { values } = parseArgs({ args, options: { help: { type: 'boolean', short: 'h' } }, strict: false });
  if (values.help) {
    out(usage);
    return 0;
  }
  if (args.length > 0) throw new UsageError(`pgbpm migrate takes no arguments\n\n${usage}`);
  const db = await resolveAppDatabase();
  try {
    const report = await migrateApp(db);
    out(`Migrated ${redactPassword(db.connectionString)}: ${describeReport(report)}.`);
    return 0;
  } finally {
    await db.stop();
  }
}
