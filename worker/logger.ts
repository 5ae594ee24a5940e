/** The worker's logs: JSON lines (pino) on stderr, like the API's. */
import pino, { type Logger } from 'pino';
import { logSerializers } from '../server/log-errors';
import type { TaskLogger } from './handlers';

export type { Logger } from 'pino';

export interface WorkerLoggerOptions {
  level?: string;
  /** Where lines go: a function per line (tests), else stderr. */
  write?: (line: string) => void;
}

export function createWorkerLogger(options: WorkerLoggerOptions = {}): Logger {
  const destination = options.write
    ? { write: (line: string) => options.write?.(line.endsWith('\n') ? line.slice(0, -1) : line) }
    : pino.destination({ fd: 2, sync: false });
  return pino({ name: 'pgbpm-worker', level: options.level ?? 'info', base: { pid: process.pid }, serializers: logSerializers }, destination);
}

/** A handler's logger: message first, fields second; every line carries the task's ids. */
export function taskLogger(logger: Logger): TaskLogger {
  return {
    debug: (message, fields) => logger.debug(fields ?? {}, message),
    info: (message, fields) => logger.info(fields ?? {}, message),
    warn: (message, fields) => logger.warn(fields ?? {}, message),
    error: (message, fields) => logger.error(fields ?? {}, message),
  };
}
