import { parseArgs } from 'node:util';
import type { ResolvedDatabase } from '../database';
import { CliError, UsageError, errorMessage } from '../errors';
import { err, out } from '../io';
import { migrateApp, resolveAppDatabase } from './migrate';
import { waitForSignal } from './serve';

export const summary = 'run the worker: service-task handlers (external tasks) and jobs (timers) until SIGTERM';

export const usage = `usage: pgbpm worker [--handlers FILE] [--tenants a,b] [--worker-id ID] [--concurrency N]

Runs until SIGINT/SIGTERM:
  - the job runner (graphile-worker): timers and other work the engine enqueues;
  - the external-task runner: for each tenant served and each topic with a
    handler, fetches service tasks (bpm.fetch_and_lock) and runs the handler.

  --handlers FILE    handler module (PGBPM_HANDLERS): module.exports or the
                     default export = defineHandlers({ topic: async (variables, ctx) => ({…}) })
  --tenants a,b      tenants served (PGBPM_WORKER_TENANTS); a worker serves
                     exactly the tenants it is given, round-robin
  --worker-id ID     lock holder id (PGBPM_WORKER_ID; default host-pid-random);
                     must differ between running workers
  --concurrency N    handlers in flight at most (PGBPM_WORKER_CONCURRENCY, 10)

  PGBPM_WORKER_BATCH (10)              tasks per fetch
  PGBPM_WORKER_IDLE_MS (15ms)          sleep after a round of fetches found nothing
  PGBPM_WORKER_LOCK_DURATION (5min)    lock per fetched task; after it another worker may run it
  PGBPM_WORKER_RETRIES (3)             retries after a first failure; then an incident
  PGBPM_WORKER_BACKOFF_BASE (1s), PGBPM_WORKER_BACKOFF_MAX (5min)   retry delay base·2^(n-1), capped
  PGBPM_WORKER_SHUTDOWN_TIMEOUT (30s)  how long a stop waits for handlers; then their AbortSignal fires
  PGBPM_WORKER_STATEMENT_TIMEOUT (1min; 0: none)  statement_timeout of the worker's connections
  PGBPM_JOB_CONCURRENCY (4), PGBPM_JOB_POLL_INTERVAL (500ms)  job runner
  PGBPM_JOB_RECOVERY_INTERVAL (10s)   how often to release jobs of workers that died
  PGBPM_HTTP_TOPIC (http; none: off)   topic of the built-in HTTP connector
  PGBPM_HTTP_ALLOW_HOSTS               hosts it may call (host, *.domain, host:port); empty: none
  PGBPM_HTTP_TIMEOUT (30s), PGBPM_HTTP_MAX_RESPONSE_BYTES (1048576)
  PGBPM_LOG_LEVEL (info)               JSON log lines on stderr

Durations: milliseconds or a number with ms, s, min or h.
Database: DATABASE_URL (not migrated here: run pgbpm migrate first) with
AUTH_DATABASE_URL as the bpm_authenticator login, else the embedded
PostgreSQL (started and migrated). The worker logs in as bpm_authenticator and
works as bpm_engine. Handlers run at least once per task: a task whose lock
expired (slow handler, killed worker) runs again.`;

/** worker/, loaded on demand: it pulls in graphile-worker, which other commands do not need. */
type WorkerModule = typeof import('../../worker/cli');

export function loadWorker(): WorkerModule {
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    return require('../../worker/cli') as WorkerModule;
  } catch (e) {
    throw new CliError(`pgbpm: cannot load the worker (worker/cli): ${errorMessage(e)}`);
  }
}

export interface WorkerArgs {
  handlers?: string;
  tenants?: string;
  workerId?: string;
  concurrency?: string;
}

/** Starts the worker runtime on a resolved database; used by `worker` and `start`. */
export async function startWorker(
  db: ResolvedDatabase,
  args: WorkerArgs,
  env: NodeJS.ProcessEnv = process.env,
): Promise<import('../../worker/runtime').WorkerRuntime> {
  const worker = loadWorker();
  try {
    return await worker.startWorkerFromEnv(db.authenticatorConnectionString, env, {
      handlersPath: args.handlers,
      tenants: args.tenants,
      workerId: args.workerId,
      concurrency: args.concurrency,
    });
  } catch (e) {
    if (worker.isWorkerConfigError(e)) throw new UsageError(`pgbpm worker: ${e.message}`);
    throw new CliError(`pgbpm worker: ${errorMessage(e)}`);
  }
}

export async function run(args: string[]): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args,
      strict: true,
      options: {
        handlers: { type: 'string' },
        tenants: { type: 'string' },
        'worker-id': { type: 'string' },
        concurrency: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (e) {
    throw new UsageError(`pgbpm worker: ${errorMessage(e)}\n\n${usage}`);
  }
  if (values.help) {
    out(usage);
    return 0;
  }
  const db = await resolveAppDatabase();
  let runtime;
  try {
    if (db.embedded) await migrateApp(db);
    runtime = await startWorker(db, {
      handlers: values.handlers,
      tenants: values.tenants,
      workerId: values['worker-id'],
      concurrency: values.concurrency,
    });
  } catch (e) {
    await db.stop();
    throw e;
  }
  err(
    `pgbpm worker ${runtime.workerId}: ` +
      (runtime.externalTasks
        ? `tenants ${runtime.tenants.join(', ')}; topics ${runtime.topics.join(', ')}`
        : 'no external tasks served (no tenant or no handler)') +
      '. Stop with SIGTERM/SIGINT.',
  );
  return waitForSignal(async () => {
    const report = await runtime.stop();
    await db.stop();
    err(report.abandoned > 0 ? `Stopped; ${report.abandoned} handler(s) abandoned (their tasks run again when the locks expire).` : 'Stopped.');
    return 0;
  });
}
