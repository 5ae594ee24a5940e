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
 */
import { Logger as GraphileLogger, run, type Runner, type TaskList } from 'graphile-worker';
import type pg from 'pg';
import { errorMessage } from './errors';
import type { Logger } from './logger';
import { WORKER_SCHEMA } from './schema';

export interface JobRunnerOptions {
  pool: pg.Pool;
  taskList: TaskList;
  concurrency: number;
  pollIntervalMs: number;
  logger: Logger;
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

export async function startJobRunner(options: JobRunnerOptions): Promise<Runner> {
  const identifiers = Object.keys(options.taskList);
  try {
    const runner = await run({
      pgPool: options.pool,
      schema: WORKER_SCHEMA,
      taskList: options.taskList,
      concurrency: options.concurrency,
      pollInterval: options.pollIntervalMs,
      noHandleSignals: true,
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
