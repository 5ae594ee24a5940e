import path from 'node:path';
import { parseArgs } from 'node:util';
import { AUTHENTICATOR_ROLE, redactPassword, withCredentials } from '../database';
import { UsageError, errorMessage } from '../errors';
import { err, out } from '../io';
import { projectRoot } from '../paths';
import { describeReport, migrateApp, resolveAppDatabase } from './migrate';
import { startApi, waitForSignal, type RunningApi } from './serve';
import type { WorkerRuntime } from '../../worker/runtime';
import { startWorker } from './worker';

export const summary = 'start pgbpm: the database (embedded unless DATABASE_URL), migrated, the GraphQL API and the worker';

export const usage = `usage: pgbpm start

Resolves the database (DATABASE_URL, else the embedded PostgreSQL in
.pgbpm/data on port 54329), migrates it, serves the GraphQL API (as
pgbpm serve: PORT, default 4000; see pgbpm serve --help for tokens), prints
where both are, runs the worker in the same process (as pgbpm worker: the
job runner always; service-task handlers when PGBPM_WORKER_TENANTS is set,
with PGBPM_HANDLERS and the HTTP connector; see pgbpm worker --help) and keeps
running until SIGINT/SIGTERM (Ctrl-C), then stops the API, the worker
(waiting for handlers in flight) and the embedded server cleanly.`;

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
  let api: RunningApi | undefined;
  let worker: WorkerRuntime | null = null;
  let workerProblem: string | null = null;
  try {
    report = await migrateApp(db);
    api = await startApi(db);
    try {
      worker = await startWorker(db, {});
    } catch (e) {
      // a bad worker setting stops start; a worker that cannot run leaves the API running
      if (e instanceof UsageError) throw e;
      workerProblem = errorMessage(e);
    }
  } catch (e) {
    await api?.close().catch(() => undefined);
    await db.stop();
    throw e;
  }
  const runningApi = api;
  const runningWorker = worker;

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
    worker
      ? `Worker ${worker.workerId}: job runner` +
          (worker.externalTasks
            ? `; service tasks of tenants ${worker.tenants.join(', ')}, topics ${worker.topics.join(', ')}`
            : '; no service tasks (set PGBPM_WORKER_TENANTS and PGBPM_HANDLERS)')
      : `Worker NOT running (the API is): ${workerProblem ?? 'unknown error'}`,
    'Press Ctrl-C to stop.',
  );
  out(lines.join('\n'));

  return waitForSignal(
    async () => {
      await runningApi
        .close()
        .catch((e: unknown) => err(`pgbpm start: stopping the API failed: ${e instanceof Error ? e.message : String(e)}`));
      await runningWorker
        ?.stop()
        .catch((e: unknown) => err(`pgbpm start: stopping the worker failed: ${e instanceof Error ? e.message : String(e)}`));
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
