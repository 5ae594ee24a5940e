/** Retry accounting of external tasks (the engine stores what remains in external_task.retries). */
import type { ResolvedHandler } from '../handlers';

export interface Attempt {
  /** 1 on the first try, 2 on the first retry, … */
  attempt: number;
  /** Failures that will still be retried after this try fails (0: the next failure raises an incident). */
  retriesLeft: number;
}

/**
 * Where a fetched task stands: `retries` is null until its first failure,
 * then the retries that remain (set by the worker that failed it).
 */
export function attemptOf(taskRetries: number | null, handlerRetries: number): Attempt {
  if (taskRetries === null) return { attempt: 1, retriesLeft: handlerRetries };
  return { attempt: Math.max(1, handlerRetries - taskRetries + 2), retriesLeft: Math.max(0, taskRetries - 1) };
}

/** Delay before the retry after the n-th failure (n = attempt): base · 2^(n−1), at most max. */
export function retryDelayMs(attempt: number, backoff: ResolvedHandler['backoff']): number {
  const exponent = Math.min(Math.max(0, attempt - 1), 30);
  return Math.min(backoff.maxMs, backoff.baseMs * 2 ** exponent);
}
