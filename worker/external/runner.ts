/**
 * The external-task runner: fetches tasks of the topics it has handlers for,
 * for the tenants it serves, and runs them with at most `concurrency`
 * handlers in flight.
 *
 * - Fairness: the (tenant, topic) pairs are visited round-robin, one fetch
 *   each, and one fetch takes at most a fair share of the slots
 *   (concurrency / pairs, at least 1), so a busy tenant or topic cannot starve
 *   the others: every pair gets a fetch whenever a slot frees.
 * - Adaptive poll: while fetches return work the next round starts at once;
 *   a round that found nothing sleeps `idleMs` (default 500 ms), unless
 *   `wake()` was called meanwhile: the runtime calls it when the engine
 *   notifies channel `bpm_external_task` (a task became fetchable), so a
 *   new task is picked up at once instead of after the sleep.
 * - Reports: results that are ready together are completed together, in
 *   one transaction (completions.ts); failures and BPMN errors one by one.
 * - Locks: fetch_and_lock (FOR UPDATE SKIP LOCKED) gives each task to one
 *   worker until its lock expires; then another worker may run it again
 *   (at-least-once). A report refused because the lock was lost is logged.
 * - Stop: no new fetches; handlers in flight get `timeoutMs` to finish, then
 *   their AbortSignal fires and they get a short grace to hand the task back;
 *   whatever still runs then is abandoned (its lock expires).
 */
import type pg from 'pg';
import { errorMessage, sqlState } from '../errors';
import type { ResolvedHandler } from '../handlers';
import type { Logger } from '../logger';
import { withTenant } from '../engine-pool';
import { createCompletionBatcher } from './completions';
import { executeTask, type Outcome } from './execute';
import { fetchAndLock, type LockedTask } from './engine-calls';

/** After the AbortSignal fired, how long handlers get to wind down. */
export const ABORT_GRACE_MS = 3000;
const FETCH_ERROR_DELAY_MIN_MS = 100;
const FETCH_ERROR_DELAY_MAX_MS = 5000;

export interface ExternalTaskRunnerOptions {
  pool: pg.Pool;
  handlers: ResolvedHandler[];
  tenants: string[];
  workerId: string;
  concurrency: number;
  batchSize: number;
  idleMs: number;
  logger: Logger;
  /** Called as each handler starts (latency measurements). */
  onHandlerStart?: (task: LockedTask) => void;
  /** Called when a task's outcome has been reported (or could not be). */
  onTaskDone?: (task: LockedTask, outcome: Outcome) => void;
}

export interface RunnerStats {
  fetched: number;
  inFlight: number;
  outcomes: Record<Outcome, number>;
}

export interface StopReport {
  /** Handlers that had not finished when the stop gave up on them (their locks expire). */
  abandoned: number;
  /** Whether the AbortSignal had to fire. */
  aborted: boolean;
}

export interface ExternalTaskRunner {
  stats(): RunnerStats;
  /** Stops fetching and waits for handlers in flight (see the module comment). Idempotent. */
  stop(timeoutMs: number): Promise<StopReport>;
  /** New work may be fetchable: ends an idle sleep now, or skips the next one. */
  wake(): void;
}

/** Resolves after `ms`, or at once when `wake` is called; never keeps the process alive longer. */
function wakeableSleep(ms: number): { promise: Promise<void>; wake: () => void } {
  let wake = (): void => undefined;
  const promise = new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, ms);
    wake = () => {
      clearTimeout(timer);
      resolve();
    };
  });
  return { promise, wake };
}

export function startExternalTaskRunner(options: ExternalTaskRunnerOptions): ExternalTaskRunner {
  const { pool, handlers, tenants, workerId, concurrency, batchSize, idleMs, logger } = options;
  const pairs = tenants.flatMap((tenant) => handlers.map((handler) => ({ tenant, handler })));
  if (pairs.length === 0) throw new Error('external-task runner: no tenant or no handler to serve');
  const fairShare = Math.max(1, Math.ceil(concurrency / pairs.length));
  const abort = new AbortController();
  const completions = createCompletionBatcher(pool, workerId);
  const inFlight = new Set<Promise<void>>();
  const outcomes: Record<Outcome, number> = { completed: 0, bpmnError: 0, failed: 0, released: 0, lost: 0, reportFailed: 0 };
  let fetched = 0;
  let stopping = false;
  let wakeLoop = (): void => undefined;
  let wakeIdle: (() => void) | undefined;
  let workSignalled = false;
  let next = 0;
  let errorDelay = FETCH_ERROR_DELAY_MIN_MS;

  const sleep = async (ms: number): Promise<void> => {
    const s = wakeableSleep(ms);
    wakeLoop = s.wake;
    await s.promise;
  };

  const dispatch = (task: LockedTask, handler: ResolvedHandler): void => {
    const run = executeTask(task, handler, {
      pool,
      completions,
      workerId,
      logger,
      abortSignal: abort.signal,
      onStart: options.onHandlerStart,
    }).then(
      (outcome) => {
        outcomes[outcome] += 1;
        try {
          options.onTaskDone?.(task, outcome);
        } catch (e) {
          logger.error({ taskId: task.id, err: errorMessage(e) }, 'onTaskDone hook failed');
        }
      },
      (e: unknown) => {
        // executeTask catches everything; this is a last line of defence
        outcomes.reportFailed += 1;
        logger.error({ taskId: task.id, err: errorMessage(e) }, 'unexpected error running a task');
      },
    );
    const tracked = run.finally(() => {
      inFlight.delete(tracked);
      wakeLoop();
    });
    inFlight.add(tracked);
  };

  const loop = async (): Promise<void> => {
    while (!stopping) {
      if (inFlight.size >= concurrency) {
        await sleep(60_000); // until a slot frees (or stop)
        continue;
      }
      let found = false;
      let failed = false;
      for (let i = 0; i < pairs.length && !stopping; i++) {
        const free = concurrency - inFlight.size;
        if (free <= 0) break;
        const { tenant, handler } = pairs[next] as (typeof pairs)[number];
        next = (next + 1) % pairs.length;
        let tasks: LockedTask[];
        try {
          tasks = await withTenant(pool, tenant, (client) =>
            fetchAndLock(client, handler.topic, workerId, Math.min(batchSize, free, fairShare), handler.lockDurationMs),
          );
        } catch (e) {
          failed = true;
          logger.error({ tenant, topic: handler.topic, sqlstate: sqlState(e), err: errorMessage(e) }, 'fetch_and_lock failed');
          continue;
        }
        fetched += tasks.length;
        if (tasks.length > 0) found = true;
        // tasks in hand are run even when a stop began during the fetch: they are locked to us
        for (const task of tasks) dispatch(task, handler);
      }
      if (failed && !found) {
        await sleep(errorDelay);
        errorDelay = Math.min(FETCH_ERROR_DELAY_MAX_MS, errorDelay * 2);
        continue;
      }
      errorDelay = FETCH_ERROR_DELAY_MIN_MS;
      if (!found && !stopping && !workSignalled) {
        const s = wakeableSleep(idleMs);
        wakeLoop = s.wake;
        wakeIdle = s.wake;
        await s.promise;
        wakeIdle = undefined;
      }
      workSignalled = false;
    }
  };

  const loopDone = loop().catch((e: unknown) => {
    logger.fatal({ err: errorMessage(e) }, 'external-task runner loop crashed');
  });
  logger.info(
    { tenants, topics: handlers.map((h) => h.topic), concurrency, batchSize, idleMs },
    'external-task runner started',
  );

  let stopped: Promise<StopReport> | undefined;
  const stop = (timeoutMs: number): Promise<StopReport> => {
    stopped ??= (async () => {
      stopping = true;
      wakeLoop();
      await loopDone;
      const settled = (): Promise<void> => Promise.allSettled([...inFlight]).then(() => undefined);
      let aborted = false;
      if (inFlight.size > 0) {
        logger.info({ inFlight: inFlight.size, timeoutMs }, 'waiting for handlers in flight');
        const timer = wakeableSleep(timeoutMs);
        const finished = await Promise.race([settled().then(() => true), timer.promise.then(() => false)]);
        timer.wake();
        if (!finished) {
          aborted = true;
          logger.warn({ inFlight: inFlight.size }, 'shutdown timeout: aborting handlers in flight');
          abort.abort(new Error('worker shutting down'));
          const grace = wakeableSleep(ABORT_GRACE_MS);
          await Promise.race([settled(), grace.promise]);
          grace.wake();
        }
      }
      const abandoned = inFlight.size;
      if (abandoned > 0) logger.warn({ abandoned }, 'handlers abandoned; their tasks run again when the locks expire');
      logger.info({ fetched, outcomes }, 'external-task runner stopped');
      return { abandoned, aborted };
    })();
    return stopped;
  };

  const wake = (): void => {
    // only the idle sleep ends early: a full runner waits for a slot, a failing one backs off
    if (wakeIdle) wakeIdle();
    else workSignalled = true;
  };

  return {
    stats: () => ({ fetched, inFlight: inFlight.size, outcomes: { ...outcomes } }),
    stop,
    wake,
  };
}
