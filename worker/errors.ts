/** Errors of the worker runtime and its handler API. */

const BPMN_ERROR = Symbol.for('pgbpm.BpmnError');

export type Variables = Record<string, unknown>;

/**
 * A business error a handler throws: the engine routes it to the matching
 * error boundary event of the task (bpm.throw_bpmn_error), else raises an
 * incident `unhandledBpmnError`. It is never retried. `variables` are merged
 * into the instance with it; the catching event's camunda:errorCodeVariable
 * and errorMessageVariable receive the code and the message.
 *
 *   throw new BpmnError('CARD_DECLINED', 'card 4711 declined', { declineReason: 'limit' });
 */
export class BpmnError extends Error {
  readonly code: string;
  readonly variables: Variables;
  /** The message as given (null when none): a catching event's camunda:errorMessageVariable receives it. */
  readonly errorMessage: string | null;
  readonly [BPMN_ERROR] = true;
  constructor(code: string, message?: string, variables: Variables = {}) {
    super(message ?? `BPMN error ${code}`);
    if (typeof code !== 'string' || code === '') throw new TypeError('BpmnError: code must be a non-empty string');
    this.name = 'BpmnError';
    this.code = code;
    this.variables = variables;
    this.errorMessage = message ?? null;
  }
}

/**
 * Whether `err` is a BpmnError, also one made by another copy of this module
 * (a handler module may load pgbpm from another path than the runtime).
 */
export function isBpmnError(err: unknown): err is BpmnError {
  return typeof err === 'object' && err !== null && (err as { [BPMN_ERROR]?: unknown })[BPMN_ERROR] === true;
}

/**
 * A technical failure that retrying cannot fix (bad input, a refused host):
 * the task fails with no retries left, so the engine raises an incident at
 * once. Any other error thrown by a handler is retried with back-off.
 */
export class NonRetryableError extends Error {
  readonly retryable = false;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'NonRetryableError';
  }
}

/** Whether a handler's error asks not to be retried (`retryable === false`, e.g. NonRetryableError). */
export function isNonRetryable(err: unknown): boolean {
  return typeof err === 'object' && err !== null && (err as { retryable?: unknown }).retryable === false;
}

/** Invalid worker configuration or handler module: reported as one message, exit status 2. */
export class WorkerConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'WorkerConfigError';
  }
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** The SQLSTATE of a PostgreSQL error, if any. */
export function sqlState(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

/** SQLSTATEs of a call PostgreSQL aborted because it met another in a lock cycle or a serialization conflict: it changed nothing, calling again is safe. */
const TRANSIENT_STATES = new Set(['40P01', '40001']);

/**
 * Runs `call` again (up to `attempts` times in all, after 10-60 ms) while it
 * fails with a transient SQLSTATE (deadlock, serialization failure); any
 * other error, or the last transient one, is thrown.
 */
export async function retryTransient<T>(call: () => Promise<T>, attempts = 4): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await call();
    } catch (e) {
      const code = sqlState(e);
      if (attempt >= attempts || code === undefined || !TRANSIENT_STATES.has(code)) throw e;
      await new Promise((resolve) => setTimeout(resolve, 10 + Math.floor(Math.random() * 50)));
    }
  }
}
