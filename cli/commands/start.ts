import path from 'node:path';
import { parseArgs } from 'node:util';
import { AUTHENTICATOR_ROLE, redactPassword, withCredentials } from '../database';
import { UsageError } from '../errors';
import { err, out } from '../io';
import { projectRoot } from '../paths';
import { describeReport, migrateApp, resolveAppDatabase } from './migrate';
import { startApi, waitForSignal, type RunningApi } from './serve';

export const summary = 'start pgbpm: the database (embedded unless DATABASE_URL), migrated, and the GraphQL API';

export const usage = `usage: pgbpm start

Resolves the database (DATABASE_URL, else the embedded PostgreSQL in
.pgbpm/data on port 54329), migrates it, serves the GraphQL API (as
pgbpm serve: PORT, default 4000; see pgbpm serve --help for tokens), prints
where both are and keeps running until SIGINT/SIGTERM (Ctrl-C), then stops
the API and the embedded server cleanly.
The job worker arrives in a later version of pgbpm.`;

function relativeToRoot(p: string): string {
  const rel = path.relative(projectRoot(), p);
  return rel.startsWith('..') ? p : rel;
}

export async function run(args: string[]): Promise<number> {
  const { values } = parseArgs({ args, options: { help: { type: 'boolean', short: 'h' } }, strict: false });
  if (values.help) {
    out(usage);
    return 0;
  }
  if (args.length > 0) throw new UsageError(`pgbpm start takes no arguments\n\n${usage}`);

  const db = await resolveAppDatabase();
  let report;
  let api: RunningApi;
  try {
    report = await migrateApp(db);
    api = await startApi(db);
  } catch (e) {
    await db.stop();
    throw e;
  }

  const lines: string[] = [];
  if (db.embedded && db.cluster) {
    const c = db.cluster;
    lines.push(
      `Database: embedded PostgreSQL 17 on 127.0.0.1:${c.port}${c.owned ? '' : ' (already running; reused)'}`,
      `  data: ${relativeToRoot(c.dataDir)}   server log: ${relativeToRoot(c.logFile)}`,
      `  API login:  ${withCredentials(db.authenticatorConnectionString, AUTHENTICATOR_ROLE, null)}` +
        `  (password: ${process.env.PGBPM_AUTHENTICATOR_PASSWORD ? '$PGBPM_AUTHENTICATOR_PASSWORD' : '"pgbpm-dev"'})`,
      `  superuser:  ${db.connectionString}`,
    );
  } else {
    lines.push(`Database: ${redactPassword(db.connectionString)} (DATABASE_URL)`);
    if (process.env.AUTH_DATABASE_URL) lines.push(`  API login:  ${redactPassword(db.authenticatorConnectionString)} (AUTH_DATABASE_URL)`);
  }
  lines.push(
    `Migrated: ${describeReport(report)}.`,
    ...api.lines,
    'The job worker arrives in a later version of pgbpm. Press Ctrl-C to stop.',
  );
  out(lines.join('\n'));

  return waitForSignal(
    async () => {
      await api
        .close()
        .catch((e: unknown) => err(`pgbpm start: stopping the API failed: ${e instanceof Error ? e.message : String(e)}`));
      try {
        await db.stop();
      } catch (e) {
        err(`pgbpm start: stopping the embedded server failed: ${e instanceof Error ? e.message : String(e)}`);
        return 1;
      }
      err('Stopped.');
      return 0;
    },
    (finish, stopping) => {
      // Ctrl-C in a terminal signals the server too; give the signal handler a moment to claim the shutdown.
      db.cluster?.process?.once('exit', (code, signal) => {
        setTimeout(() => {
          if (stopping()) return;
          err(
            `pgbpm start: the embedded PostgreSQL server exited unexpectedly (code ${code ?? 'none'}, signal ${signal ?? 'none'}); ` +
              `see ${db.cluster?.logFile ?? 'its log'}`,
          );
          finish(1);
        }, 200);
      });
    },
  );
}
