/**
 * The worker runtime: the graphile-worker job runner (timers and other
 * later work) and the external-task runner (service tasks handled by the
 * user's handlers and the built-in HTTP connector), on one database, until
 * stop() is called. Used by `pgbpm worker` and `pgbpm start`.
 */
import type { TaskList } from 'graphile-worker';
import type pg from 'pg';
import type { WorkerConfig } from './config';
import { createEnginePool } from './engine-pool';
import { WorkerConfigError } from './errors';
import { loadHandlerModule, resolveHandlers, type HandlerMap, type ResolvedHandler } from './handlers';
import { httpHandler, type HttpConnectorConfig } from './connectors/http';
import { startJobRunner, type JobRunner } from './job-runner';
import { createWorkerLogger, type Logger } from './logger';
import { startExternalTaskRunner, type ExternalTaskRunner, type StopReport } from './external/runner';
import type { LockedTask } from './external/engine-calls';
import { startWakeListener, type WakeListener } from './external/wakeup';
import type { Outcome } from './external/execute';
import { startStatisticsRefresher, type StatisticsRefresher } from './statistics';
import { taskList as defaultTaskList } from './tasks';

export interface WorkerRuntimeOptions {
  /** bpm_authenticator's connection string (any login that may SET ROLE bpm_engine). */
  connectionString: string;
  config: WorkerConfig;
  /** Handlers given directly (instead of config.handlersPath). */
  handlers?: HandlerMap;
  /** The built-in HTTP connector, or null for none. */
  http?: HttpConnectorConfig | null;
  /** Whether to run the graphile-worker job runner (default true). */
  jobs?: boolean;
  /** Extra graphile-worker tasks (added to worker/tasks' list). */
  tasks?: TaskList;
  logger?: Logger;
  /** Called as each external-task handler starts (latency measurements). */
  onHandlerStart?: (task: LockedTask) => void;
  /** Called when an external task's outcome has been reported (or could not be). */
  onTaskDone?: (task: LockedTask, outcome: Outcome) => void;
}

export interface WorkerRuntime {
  workerId: string;
  /** Topics with a handler (the user's and the HTTP connector's). */
  topics: string[];
  tenants: string[];
  externalTasks: ExternalTaskRunner | null;
  jobRunner: JobRunner | null;
  /** Calls bpm.refresh_statistics every config.statisticsIntervalMs, with the job runner (null without jobs or interval). */
  statistics: StatisticsRefresher | null;
  /** Stops fetching, waits for handlers in flight (config.shutdownTimeoutMs), stops the job runner. Idempotent. */
  stop(): Promise<StopReport>;
}

/** The handlers to serve: the user's (module or map), plus the HTTP connector unless the user took its topic. */
export function collectHandlers(options: Pick<WorkerRuntimeOptions, 'config' | 'handlers' | 'http'>): ResolvedHandler[] {
  const { config } = options;
  const map: Record<string, HandlerMap[string]> = {};
  if (options.http?.topic) map[options.http.topic] = httpHandler(options.http.options);
  const user = options.handlers ?? (config.handlersPath ? loadHandlerModule(config.handlersPath) : {});
  Object.assign(map, user);
  return resolveHandlers(map, {
    retries: config.retries,
    backoff: { baseMs: config.backoffBaseMs, maxMs: config.backoffMaxMs },
    lockDurationMs: config.lockDurationMs,
  });
}

export async function startWorkerRuntime(options: WorkerRuntimeOptions): Promise<WorkerRuntime> {
  const { config } = options;
  const logger = (options.logger ?? createWorkerLogger()).child({ workerId: config.workerId });
  const handlers = collectHandlers(options);
  if (config.handlersPath && config.tenants.length === 0) {
    throw new WorkerConfigError('handlers given but no tenant to serve: set --tenants or PGBPM_WORKER_TENANTS (a worker serves explicit tenants)');
  }
  const pools: pg.Pool[] = [];
  let externalTasks: ExternalTaskRunner | null = null;
  let jobRunner: JobRunner | null = null;
  let statistics: StatisticsRefresher | null = null;
  let listener: WakeListener | undefined;
  try {
    if (options.jobs !== false) {
      const pool = createEnginePool({
        connectionString: options.connectionString,
        // the loops, graphile-worker's LISTEN connection, the liveness connection, the statistics refresher, one spare
        max: config.jobConcurrency + 4,
        applicationName: 'pgbpm-worker-jobs',
        statementTimeoutMs: config.statementTimeoutMs,
      });
      pools.push(pool);
      jobRunner = await startJobRunner({
        pool,
        taskList: defaultTaskList(options.tasks, config.history),
        concurrency: config.jobConcurrency,
        pollIntervalMs: config.jobPollIntervalMs,
        wakeAtDue: config.jobWakeAtDue,
        recoveryIntervalMs: config.jobRecoveryIntervalMs,
        logger,
      });
      if (config.statisticsIntervalMs !== null) statistics = startStatisticsRefresher(pool, config.statisticsIntervalMs, logger);
    }
    if (config.tenants.length > 0 && handlers.length > 0) {
      const pool = createEnginePool({
        connectionString: options.connectionString,
        max: Math.min(config.concurrency, 10) + 1,
        applicationName: 'pgbpm-worker',
        statementTimeoutMs: config.statementTimeoutMs,
      });
      pools.push(pool);
      externalTasks = startExternalTaskRunner({
        pool,
        handlers,
        tenants: config.tenants,
        workerId: config.workerId,
        concurrency: config.concurrency,
        batchSize: config.batchSize,
        idleMs: config.idleMs,
        logger,
        onHandlerStart: options.onHandlerStart,
        onTaskDone: options.onTaskDone,
      });
      const runner = externalTasks;
      listener = startWakeListener({
        connectionString: options.connectionString,
        tenants: config.tenants,
        listenerId: config.workerId,
        onWake: () => runner.wake(),
        logger,
      });
    } else if (config.tenants.length === 0 && handlers.length > 0) {
      logger.info('no tenants configured (--tenants, PGBPM_WORKER_TENANTS): external tasks are not served');
    }
  } catch (e) {
    await statistics?.stop();
    await jobRunner?.stop().catch(() => undefined);
    await Promise.allSettled(pools.map((p) => p.end()));
    throw e;
  }

  let stopped: Promise<StopReport> | undefined;
  const stop = (): Promise<StopReport> => {
    stopped ??= (async () => {
      await listener?.stop();
      const report = (await externalTasks?.stop(config.shutdownTimeoutMs)) ?? { abandoned: 0, aborted: false };
      await statistics?.stop();
      if (jobRunner) {
        await jobRunner.stop().catch((e: unknown) => logger.error({ err: e instanceof Error ? e.message : String(e) }, 'stopping the job runner failed'));
      }
      // abandoned handlers may still hold a connection: do not wait for them
      await Promise.allSettled(pools.map((p) => (report.abandoned > 0 ? Promise.resolve() : p.end())));
      logger.info({ abandoned: report.abandoned }, 'worker stopped');
      return report;
    })();
    return stopped;
  };

  return {
    workerId: config.workerId,
    topics: handlers.map((h) => h.topic),
    tenants: config.tenants,
    externalTasks,
    jobRunner,
    statistics,
    stop,
  };
}
