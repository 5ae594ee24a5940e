/**
 * Errors in the JSON logs: what a failed `pg` connection logs. pg's errors
 * carry the client they came from; the standard pino serializer printed it
 * whole (pool, socket, type parsers: kilobytes per line).
 */
import { DatabaseError } from 'pg';
import { createLogger } from '../../server/observability';
import { createWorkerLogger } from '../../worker/logger';

function pgError(): Error {
  const err = new DatabaseError('terminating connection due to administrator command', 116, 'error');
  Object.assign(err, { severity: 'FATAL', code: '57P01', routine: 'ProcessInterrupts' });
  // as pg's idle-client errors have it: the client, with its connection, pool and parsers
  Object.assign(err, { client: { connectionParameters: { user: 'bpm_authenticator', password: 'secret' }, _types: { builtins: { BOOL: 16 } } } });
  return err;
}

test.each([
  ['API', (write: (l: string) => void) => createLogger({ write })],
  ['worker', (write: (l: string) => void) => createWorkerLogger({ write })],
])('the %s logger logs an error\'s type, message, stack and scalar fields, not the objects it carries', (_name, make) => {
  const lines: string[] = [];
  const logger = make((l) => lines.push(l));
  const cause = new Error('socket closed');
  const err = pgError();
  (err as Error & { cause?: unknown }).cause = cause;
  logger.error({ err }, 'idle database connection failed');
  expect(lines).toHaveLength(1);
  const line = JSON.parse(lines[0]) as { err: Record<string, unknown>; msg: string };
  expect(line.msg).toBe('idle database connection failed');
  expect(line.err).toMatchObject({
    type: 'DatabaseError',
    message: 'terminating connection due to administrator command',
    code: '57P01',
    severity: 'FATAL',
    routine: 'ProcessInterrupts',
    cause: { type: 'Error', message: 'socket closed' },
  });
  expect(String(line.err.stack)).toContain('log_errors.test.ts');
  expect(line.err).not.toHaveProperty('client');
  expect(lines[0]).not.toContain('secret');
  expect(lines[0].length).toBeLessThan(4000);
});

test('values that are not errors are logged as they are', () => {
  const lines: string[] = [];
  createLogger({ write: (l) => lines.push(l) }).warn({ err: 'just text' }, 'odd');
  expect(JSON.parse(lines[0]).err).toBe('just text');
});
