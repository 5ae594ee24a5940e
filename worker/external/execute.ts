/**
 * Runs one locked external task: calls its handler and reports the outcome
 * to the engine (complete, BPMN error, or failure with back-off). Never
 * throws: whatever goes wrong is logged, and the lock's expiry makes the
 * task available again (at-least-once).
 */
import type pg from 'pg';
import { errorMessage, isBpmnError, isNonRetryable, retryTransient, sqlState, type Variables } from '../errors';
import type { ResolvedHandler } from '../handlers';
import { taskLogger, type Logger } from '../logger';
import { withTenant } from '../engine-pool';
import { attemptOf, retryDelayMs } from './backoff';
import type { CompletionBatcher } from './completions';
import { failExternalTask, throwBpmnError, type LockedTask } from './engine-calls';

/** Longest error message stored on the task (and the incident). */
const MAX_ERROR_MESSAGE = 4000;

/**
 * The engine refused the result itself (a condition after the task cannot be
 * evaluated, bad variables, …): the transition rolled back. Reported as a
 * failure of the task, so that it ends in an incident instead of running
 * again at every lock expiry.
 */
function isResultRejected(code: string | undefined): boolean {
  return code !== undefined && (code.startsWith('BP3') || code === 'BP401' || code.startsWith('22'));
}

/** The engine refused a report because this worker no longer holds the task: expected, not a crash. */
const LOST_TASK_STATES: Readonly<Record<string, string>> = {
  BP203: 'the task is no longer open',
  BP205: 'the task is locked by another worker now (our lock expired)',
  BP104: 'the task no longer exists',
  BP201: 'the instance has ended',
  BP202: 'the instance is suspended (the task is fetched again once it is activated and the lock expired)',
};

export type Outcome = 'completed' | 'bpmnError' | 'failed' | 'released' | 'lost' | 'reportFailed';

export interface ExecuteDeps {
  pool: pg.Pool;
  /** Where completions go (batched with other handlers' that are ready at the same time). */
  completions: CompletionBatcher;
  workerId: string;
  logger: Logger;
  /** Fires when the shutdown timeout has passed. */
  abortSignal: AbortSignal;
  /** Called when the handler starts (for latency measurements). */
  onStart?: (task: LockedTask) => void;
}

function describeFailure(err: unknown): string {
  const text = err instanceof Error ? (err.name && err.name !== 'Error' && err.name !== 'NonRetryableError' ? `${err.name}: ${err.message}` : err.message) : String(err);
  return text.length > MAX_ERROR_MESSAGE ? `${text.slice(0, MAX_ERROR_MESSAGE - 1)}…` : text;
}

/** What a failure's report carries beyond its message: its stack and its causes' (up to 5; the engine keeps 64 KiB). */
function failureDetails(err: unknown): string | null {
  const parts: string[] = [];
  let current: unknown = err;
  for (let depth = 0; current instanceof Error && depth < 5; depth++) {
    const text = current.stack ?? `${current.name}: ${current.message}`;
    parts.push(depth === 0 ? text : `Caused by: ${text}`);
    current = current.cause;
  }
  return parts.length > 0 ? parts.join('\n') : null;
}

function isPlainObject(value: unknown): value is Variables {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const proto: unknown = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

export async function executeTask(task: LockedTask, spec: ResolvedHandler, deps: ExecuteDeps): Promise<Outcome> {
  const { attempt, retriesLeft } = attemptOf(task.retries, spec.retries);
  const log = deps.logger.child({
    tenant: task.tenant_id,
    topic: task.topic,
    taskId: task.id,
    instanceId: task.instance_id,
    elementId: task.element_id,
    attempt,
  });
  let result: { kind: 'ok'; variables: Variables } | { kind: 'error'; error: unknown };
  deps.onStart?.(task);
  try {
    const returned = await spec.handler(task.variables ?? {}, {
      taskId: task.id,
      instanceId: task.instance_id,
      elementId: task.element_id,
      topic: task.topic,
      headers: task.headers ?? {},
      tenant: task.tenant_id,
      workerId: deps.workerId,
      attempt,
      retries: spec.retries,
      retriesLeft,
      lockedUntil: task.locked_until,
      signal: deps.abortSignal,
      logger: taskLogger(log),
    });
    if (returned === undefined || returned === null) result = { kind: 'ok', variables: {} };
    else if (!isPlainObject(returned)) {
      result = { kind: 'error', error: new TypeError(`the handler returned ${Array.isArray(returned) ? 'an array' : typeof returned}, not an object of variables`) };
    } else {
      JSON.stringify(returned); // throws (a failure of the handler) for BigInt, cycles, …
      result = { kind: 'ok', variables: returned };
    }
  } catch (e) {
    result = { kind: 'error', error: e };
  }

  const fail = (client: pg.PoolClient, message: string, left: number, delay: number, details: string | null = null): Promise<void> =>
    failExternalTask(client, task.id, deps.workerId, message, left, delay, details);

  try {
    if (result.kind === 'ok') {
      // batched with other handlers' results that are ready (completions.ts)
      await deps.completions.complete(task.tenant_id, task.id, result.variables);
      log.debug('completed');
      return 'completed';
    }
    const error = result.error;
    // the result is in hand: a report aborted by a deadlock is sent again, not the handler run again
    return await retryTransient(() => withTenant(deps.pool, task.tenant_id, async (client) => {
      if (isBpmnError(error)) {
        await throwBpmnError(client, task.id, deps.workerId, error.code, error.variables, error.errorMessage);
        log.info({ errorCode: error.code, err: error.message }, 'BPMN error thrown');
        return 'bpmnError';
      }
      if (deps.abortSignal.aborted) {
        // stopped by the shutdown, not a failure of the work: hand it back at once, no retry used
        await fail(client, `released by worker ${deps.workerId} at shutdown: ${describeFailure(error)}`, Math.max(1, task.retries ?? spec.retries), 0);
        log.warn('released at shutdown');
        return 'released';
      }
      const left = isNonRetryable(error) ? 0 : retriesLeft;
      const delay = left === 0 ? 0 : retryDelayMs(attempt, spec.backoff);
      await fail(client, describeFailure(error), left, delay, failureDetails(error));
      if (left === 0) log.error({ err: describeFailure(error) }, 'failed; no retries left: incident raised');
      else log.warn({ err: describeFailure(error), retriesLeft: left, retryInMs: delay }, 'failed; will be retried');
      return 'failed';
    }));
  } catch (e) {
    const code = sqlState(e);
    const lost = code ? LOST_TASK_STATES[code] : undefined;
    if (lost) {
      log.warn({ sqlstate: code, err: errorMessage(e) }, `result not recorded: ${lost}`);
      return 'lost';
    }
    if (isResultRejected(code)) {
      const message = `the engine refused the result: ${errorMessage(e)} (SQLSTATE ${code})`;
      const delay = retriesLeft === 0 ? 0 : retryDelayMs(attempt, spec.backoff);
      try {
        await withTenant(deps.pool, task.tenant_id, (client) => fail(client, message, retriesLeft, delay));
        log.error({ sqlstate: code, err: errorMessage(e), retriesLeft }, retriesLeft === 0 ? 'result refused; incident raised' : 'result refused; will be retried');
        return 'failed';
      } catch (e2) {
        log.error({ sqlstate: sqlState(e2), err: errorMessage(e2) }, `result refused (${message}) and reporting the failure failed too`);
        return 'reportFailed';
      }
    }
    log.error({ sqlstate: code, err: errorMessage(e) }, 'reporting the result failed; the task runs again when its lock expires');
    return 'reportFailed';
  }
}
