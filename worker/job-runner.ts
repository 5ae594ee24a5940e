/**
 * The graphile-worker runner: runs the jobs in graphile_worker (timers and
 * other later work the engine enqueues) with the task list of worker/tasks.
 *
 * It connects like the rest of the worker (bpm_authenticator, SET ROLE
 * bpm_engine). At start graphile-worker checks its schema version; it never
 * needs to migrate here, because `pgbpm migrate` installed the schema as the
 * migrating login. If the schema is missing or older than this
 * graphile-worker, the start fails (bpm_engine may not create or alter it)
 * with a message saying to run pgbpm migrate.
 *
 * graphile-worker (0.16) ends one of its job loops for good when it cannot
 * record a job's outcome (the database went away while the job ran): the
 * loop logs "committing seppuku", its job stays locked (for 4 hours, in
 * graphile-worker's terms) and no new loop replaces it, so an outage would
 * leave the process running fewer loops, down to none. This runner restarts
 * graphile-worker when a loop dies: it stops the rest, then (retrying with
 * backoff until the database answers) unlocks the dead loops' jobs
 * (force_unlock_workers: they run again; every task is idempotent) and starts
 * a new graphile-worker runner. Jobs of a worker process that died are
 * released by the other workers' liveness checks (job-liveness.ts).
 */
import { EventEmitter } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { Logger as GraphileLogger, run, type Runner, type TaskList, type WorkerEvents } from 'graphile-worker';
import type pg from 'pg';
import { errorMessage } from './errors';
import { JobLiveness } from './job-liveness';
import { JobWaker } from './job-waker';
import type { Logger } from './logger';
import { WORKER_SCHEMA } from './schema';

export interface JobRunnerOptions {
  pool: pg.Pool;
  taskList: TaskList;
  concurrency: number;
  pollIntervalMs: number;
  logger: Logger;
  /** How often to look for jobs held by dead workers (job-liveness.ts); they are released once locked 3 × this long. */
  recoveryIntervalMs: number;
  /** Wake idle loops when a job comes due instead of at their next poll (job-waker.ts; default true). */
  wakeAtDue?: boolean;
}

/** graphile-worker's log calls as pino lines (its `warning` is pino's `warn`). */
function graphileLogger(logger: Logger): GraphileLogger {
  const log = logger.child({ component: 'graphile-worker' });
  return new GraphileLogger((scope) => (level, message, meta) => {
    const fields = { ...scope, ...(meta?.error instanceof Error ? { err: meta.error.message } : {}) };
    if (level === 'error') log.error(fields, message);
    else if (level === 'warning') log.warn(fields, message);
    else if (level === 'info') log.info(fields, message);
    else log.debug(fields, message);
  });
}

export class JobRunnerStartError extends Error {
  constructor(message: string, options: { cause: unknown }) {
    super(message, options);
    this.name = 'JobRunnerStartError';
  }
}

/** The job runner as the worker runtime sees it. */
export interface JobRunner {
  /** Restarts of graphile-worker after a job loop died (database outages). */
  readonly restarts: number;
  /** Times idle loops were woken because a job came due (0 without the waker). */
  readonly wakes: number;
  /** Stops taking jobs and waits for the ones in hand (also ends a restart under way). */
  stop(): Promise<void>;
}

const RESTART_MIN_BACKOFF_MS = 500;
const RESTART_MAX_BACKOFF_MS = 30_000;

export async function startJobRunner(options: JobRunnerOptions): Promise<JobRunner> {
  const { logger } = options;
  // one emitter for every graphile-worker runner this one starts (restarts included)
  const events = new EventEmitter() as WorkerEvents;
  const liveness = new JobLiveness({ pool: options.pool, logger, intervalMs: options.recoveryIntervalMs, staleAfterMs: 3 * options.recoveryIntervalMs });
  events.on('worker:create', ({ worker }) => liveness.add(worker.workerId));
  events.on('worker:stop', ({ worker }) => liveness.remove(worker.workerId));
  const waker =
    options.wakeAtDue === false
      ? null
      : new JobWaker({ pool: options.pool, logger, tasks: Object.keys(options.taskList), pollIntervalMs: options.pollIntervalMs });
  if (waker) {
    events.on('worker:getJob:empty', ({ worker }) => waker.loopIdle(worker));
    events.on('worker:getJob:start', ({ worker }) => waker.loopBusy(worker));
    events.on('worker:release', ({ worker }) => waker.loopBusy(worker));
  }
  let runner: Runner;
  try {
    runner = await startGraphileWorker(options, events);
  } catch (e) {
    waker?.stop();
    await liveness.stop();
    throw e;
  }
  let restarting: Promise<void> | null = null;
  let restarts = 0;
  const dead = new Set<string>();
  // ends a restart's back-off at once when the runner is stopped
  const stopping = new AbortController();

  const restart = async (): Promise<void> => {
    await runner.stop().catch(() => undefined);
    for (let backoff = RESTART_MIN_BACKOFF_MS; !stopping.signal.aborted; backoff = Math.min(2 * backoff, RESTART_MAX_BACKOFF_MS)) {
      try {
        await options.pool.query(`select ${WORKER_SCHEMA}.force_unlock_workers($1::text[])`, [[...dead]]);
        dead.clear();
        runner = await startGraphileWorker(options, events);
        restarts++;
        logger.info({ restarts }, 'job runner restarted');
        return;
      } catch (e) {
        logger.warn({ err: errorMessage(e), retryInMs: backoff }, 'job runner: cannot restart yet');
        await sleep(backoff, undefined, { signal: stopping.signal }).catch(() => undefined);
      }
    }
  };

  const scheduleRestart = (): void => {
    if (stopping.signal.aborted || restarting) return;
    restarting = restart().finally(() => {
      restarting = null;
      // a loop of the new runner that died while this restart finished
      if (dead.size > 0) scheduleRestart();
    });
  };

  events.on('worker:fatalError', ({ worker, error }) => {
    dead.add(worker.workerId);
    logger.warn({ err: errorMessage(error), workerId: worker.workerId }, 'a job loop died (database unavailable?); restarting the job runner');
    scheduleRestart();
  });

  return {
    get restarts() {
      return restarts;
    },
    get wakes() {
      return waker?.wakeCount ?? 0;
    },
    stop: async () => {
      stopping.abort();
      waker?.stop();
      await restarting;
      await runner.stop();
      await liveness.stop();
    },
  };
}

async function startGraphileWorker(options: JobRunnerOptions, events: WorkerEvents): Promise<Runner> {
  const identifiers = Object.keys(options.taskList);
  try {
    const runner = await run({
      pgPool: options.pool,
      schema: WORKER_SCHEMA,
      taskList: options.taskList,
      concurrency: options.concurrency,
      pollInterval: options.pollIntervalMs,
      noHandleSignals: true,
      events,
      // no crontab file lookup in the working directory
      parsedCronItems: [],
      logger: graphileLogger(options.logger),
    });
    options.logger.info({ tasks: identifiers, concurrency: options.concurrency, pollIntervalMs: options.pollIntervalMs }, 'job runner started');
    return runner;
  } catch (e) {
    const code = (e as { code?: unknown }).code;
    const hint =
      code === '42501' || code === '3F000' || code === '42P01'
        ? ` (graphile-worker's schema "${WORKER_SCHEMA}" is missing, older than this pgbpm's graphile-worker, ` +
          `or not granted to bpm_engine; bpm_engine may not install or upgrade it: run pgbpm migrate)`
        : '';
    throw new JobRunnerStartError(`cannot start the job runner: ${errorMessage(e)}${hint}`, { cause: e });
  }
}
