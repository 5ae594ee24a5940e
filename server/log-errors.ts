/**
 * How errors appear in the JSON logs of the API and the worker. pino's
 * standard serializer copies every enumerable property of an error, and
 * errors of `pg` carry the client they came from (`client`: its pool,
 * socket, type parsers…): one failed idle connection printed kilobytes of
 * connection internals. Logged instead: the error's type, message, stack
 * and cause, and the scalar fields PostgreSQL and Node report (SQLSTATE,
 * severity, detail, hint, where, table, constraint, errno, syscall…).
 */
import type { SerializedError } from 'pino';

const MAX_CAUSES = 5;

function isScalar(value: unknown): value is string | number | boolean {
  return typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean';
}

export function serializeError(err: unknown, depth = 0): SerializedError | unknown {
  if (!(err instanceof Error)) return err;
  const out: Record<string, unknown> = { type: err.constructor?.name ?? 'Error', message: err.message, stack: err.stack ?? '' };
  for (const [key, value] of Object.entries(err)) {
    if (key !== 'message' && key !== 'stack' && isScalar(value)) out[key] = value;
  }
  if (err.cause !== undefined && depth < MAX_CAUSES) out.cause = serializeError(err.cause, depth + 1);
  return out as SerializedError;
}

/** pino `serializers` for the engine's loggers. */
export const logSerializers = { err: (err: unknown) => serializeError(err) };
