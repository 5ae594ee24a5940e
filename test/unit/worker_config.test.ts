/**
 * The worker's pure parts: settings from the environment, retry accounting
 * and back-off, and the checks on handler maps and modules.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { WORKER_DEFAULTS, parseDurationMs, parseList, workerConfigFromEnv } from '../../worker/config';
import { attemptOf, retryDelayMs } from '../../worker/external/backoff';
import { BpmnError, NonRetryableError, isBpmnError, isNonRetryable } from '../../worker/errors';
import { defineHandlers, loadHandlerModule, resolveHandlers, type HandlerMap } from '../../worker/handlers';

describe('settings', () => {
  test('durations: milliseconds or ms, s, min, h, d', () => {
    expect(parseDurationMs('250', 'X')).toBe(250);
    expect(parseDurationMs('15ms', 'X')).toBe(15);
    expect(parseDurationMs('1.5s', 'X')).toBe(1500);
    expect(parseDurationMs('5min', 'X')).toBe(300_000);
    expect(parseDurationMs('2h', 'X')).toBe(7_200_000);
    expect(parseDurationMs('30d', 'X')).toBe(30 * 86_400_000);
    expect(() => parseDurationMs('5 minutes', 'PGBPM_WORKER_LOCK_DURATION')).toThrow(
      'PGBPM_WORKER_LOCK_DURATION must be milliseconds or a number with ms, s, min, h or d, got "5 minutes"',
    );
  });

  test('lists: trimmed, without empties and duplicates', () => {
    expect(parseList(' a, b,,a ,c')).toEqual(['a', 'b', 'c']);
    expect(parseList(undefined)).toEqual([]);
  });

  test('defaults, environment, and command-line values that win', () => {
    const config = workerConfigFromEnv({}, {});
    expect(config).toMatchObject({ ...WORKER_DEFAULTS, handlersPath: null, tenants: [] });
    expect(config.workerId).toMatch(/^.+-\d+-[0-9a-f]{6}$/);
    const env = {
      PGBPM_WORKER_TENANTS: 'a,b',
      PGBPM_HANDLERS: 'h.js',
      PGBPM_WORKER_CONCURRENCY: '3',
      PGBPM_WORKER_LOCK_DURATION: '30s',
      PGBPM_WORKER_RETRIES: '0',
      PGBPM_WORKER_ID: 'env-id',
      PGBPM_WORKER_STATEMENT_TIMEOUT: '0',
    };
    expect(workerConfigFromEnv(env, {})).toMatchObject({
      tenants: ['a', 'b'], handlersPath: 'h.js', concurrency: 3, lockDurationMs: 30_000, retries: 0, workerId: 'env-id', statementTimeoutMs: 0,
    });
    expect(config.statementTimeoutMs).toBe(60_000);
    expect(workerConfigFromEnv({ PGBPM_WORKER_STATEMENT_TIMEOUT: '30s' }).statementTimeoutMs).toBe(30_000);
    expect(config.jobRecoveryIntervalMs).toBe(10_000);
    expect(workerConfigFromEnv({ PGBPM_JOB_RECOVERY_INTERVAL: '2s' }).jobRecoveryIntervalMs).toBe(2_000);
    expect(() => workerConfigFromEnv({ PGBPM_JOB_RECOVERY_INTERVAL: '10' })).toThrow('PGBPM_JOB_RECOVERY_INTERVAL must be at least 100ms');
    expect(config.statisticsIntervalMs).toBe(1000);
    expect(workerConfigFromEnv({ PGBPM_STATISTICS_INTERVAL: '5s' }).statisticsIntervalMs).toBe(5000);
    expect(workerConfigFromEnv({ PGBPM_STATISTICS_INTERVAL: 'none' }).statisticsIntervalMs).toBeNull();
    expect(() => workerConfigFromEnv({ PGBPM_STATISTICS_INTERVAL: '50' })).toThrow('PGBPM_STATISTICS_INTERVAL must be at least 100ms (or "none")');
    expect(config.jobWakeAtDue).toBe(true);
    expect(workerConfigFromEnv({ PGBPM_JOB_WAKE_AT_DUE: 'false' }).jobWakeAtDue).toBe(false);
    expect(workerConfigFromEnv({ PGBPM_JOB_WAKE_AT_DUE: ' 0 ' }).jobWakeAtDue).toBe(false);
    expect(workerConfigFromEnv({ PGBPM_JOB_WAKE_AT_DUE: 'TRUE' }).jobWakeAtDue).toBe(true);
    expect(workerConfigFromEnv(env, { tenants: 'c', concurrency: '7', workerId: 'cli-id', handlersPath: 'x.js' })).toMatchObject({
      tenants: ['c'],
      concurrency: 7,
      workerId: 'cli-id',
      handlersPath: 'x.js',
    });
  });

  test('history retention: instance history kept unless PGBPM_HISTORY_TTL, event log 30 days unless PGBPM_EVENT_RETENTION (none: kept), hourly', () => {
    expect(workerConfigFromEnv({}).history).toEqual({ defaultTtlMs: null, eventRetentionMs: 30 * 86_400_000, intervalMs: 3_600_000 });
    expect(workerConfigFromEnv({ PGBPM_HISTORY_TTL: '90d', PGBPM_EVENT_RETENTION: 'none', PGBPM_CLEANUP_INTERVAL: '10min' }).history).toEqual({
      defaultTtlMs: 90 * 86_400_000, eventRetentionMs: null, intervalMs: 600_000,
    });
    expect(() => workerConfigFromEnv({ PGBPM_HISTORY_TTL: 'forever' })).toThrow('PGBPM_HISTORY_TTL must be milliseconds or a number with ms, s, min, h or d');
    expect(() => workerConfigFromEnv({ PGBPM_CLEANUP_INTERVAL: '10' })).toThrow('PGBPM_CLEANUP_INTERVAL must be at least 1s');
  });

  test('bad values are refused with the variable named', () => {
    expect(() => workerConfigFromEnv({ PGBPM_WORKER_CONCURRENCY: '0' })).toThrow('PGBPM_WORKER_CONCURRENCY must be a positive integer, got "0"');
    expect(() => workerConfigFromEnv({}, { concurrency: 'x' })).toThrow('--concurrency must be a positive integer, got "x"');
    expect(() => workerConfigFromEnv({ PGBPM_WORKER_RETRIES: '-1' })).toThrow('PGBPM_WORKER_RETRIES must be an integer of at least 0');
    expect(() => workerConfigFromEnv({ PGBPM_WORKER_BATCH: '5000' })).toThrow('PGBPM_WORKER_BATCH must be at most 1000');
    expect(() => workerConfigFromEnv({ PGBPM_WORKER_LOCK_DURATION: '0' })).toThrow('PGBPM_WORKER_LOCK_DURATION must be positive');
    expect(() => workerConfigFromEnv({ PGBPM_JOB_WAKE_AT_DUE: 'yes' })).toThrow('PGBPM_JOB_WAKE_AT_DUE must be true or false, got "yes"');
  });
});

describe('retries and back-off', () => {
  test('retries null (never failed) is attempt 1; the engine stores what remains', () => {
    // retries = 3: four tries in all, the fourth failure raises the incident
    expect(attemptOf(null, 3)).toEqual({ attempt: 1, retriesLeft: 3 });
    expect(attemptOf(3, 3)).toEqual({ attempt: 2, retriesLeft: 2 });
    expect(attemptOf(2, 3)).toEqual({ attempt: 3, retriesLeft: 1 });
    expect(attemptOf(1, 3)).toEqual({ attempt: 4, retriesLeft: 0 });
    expect(attemptOf(null, 0)).toEqual({ attempt: 1, retriesLeft: 0 });
    // retry_incident(…, 5) with a handler configured for fewer
    expect(attemptOf(5, 3)).toEqual({ attempt: 1, retriesLeft: 4 });
  });

  test('delay base · 2^(attempt-1), capped', () => {
    const backoff = { baseMs: 1000, maxMs: 5000 };
    expect([1, 2, 3, 4, 5, 60].map((a) => retryDelayMs(a, backoff))).toEqual([1000, 2000, 4000, 5000, 5000, 5000]);
  });
});

describe('errors', () => {
  test('BpmnError is recognised also from another copy of the module (by a registered symbol)', () => {
    const e = new BpmnError('CODE', undefined, { x: 1 });
    expect(e).toMatchObject({ name: 'BpmnError', code: 'CODE', message: 'BPMN error CODE', variables: { x: 1 } });
    expect(isBpmnError(e)).toBe(true);
    expect(isBpmnError(Object.assign(new Error('x'), { [Symbol.for('pgbpm.BpmnError')]: true }))).toBe(true);
    expect(isBpmnError(Object.assign(new Error('x'), { code: 'CODE' }))).toBe(false);
    expect(() => new BpmnError('')).toThrow('BpmnError: code must be a non-empty string');
  });

  test('NonRetryableError and any error with retryable === false are not retried', () => {
    expect(isNonRetryable(new NonRetryableError('x'))).toBe(true);
    expect(isNonRetryable(Object.assign(new Error('x'), { retryable: false }))).toBe(true);
    expect(isNonRetryable(new Error('x'))).toBe(false);
  });
});

describe('handler maps and modules', () => {
  const defaults = { retries: 3, backoff: { baseMs: 1000, maxMs: 300_000 }, lockDurationMs: 300_000 };

  test('functions and option objects resolve against the defaults', () => {
    const handler = (): Record<string, unknown> => ({});
    const map = defineHandlers({ a: handler, b: { handler, retries: 0, backoff: { baseMs: 5 }, lockDurationMs: 1000 } });
    expect(resolveHandlers(map, defaults)).toEqual([
      { topic: 'a', handler, retries: 3, backoff: { baseMs: 1000, maxMs: 300_000 }, lockDurationMs: 300_000 },
      { topic: 'b', handler, retries: 0, backoff: { baseMs: 5, maxMs: 300_000 }, lockDurationMs: 1000 },
    ]);
  });

  test('malformed maps are refused with the topic named', () => {
    const bad = (value: unknown): (() => void) => () => defineHandlers(value as HandlerMap);
    expect(bad([])).toThrow('defineHandlers: expected an object of topic → handler, got an array');
    expect(bad({ a: 42 })).toThrow('defineHandlers: topic "a": expected a function or { handler: function, … }');
    expect(bad({ a: { handler: () => undefined, retries: -1 } })).toThrow('topic "a": retries must be an integer of at least 0, got -1');
    expect(bad({ a: { handler: () => undefined, lockDurationMs: 0 } })).toThrow('topic "a": lockDurationMs must be a positive integer');
    expect(bad({ a: { handler: () => undefined, backoff: { maxMs: 1.5 } } })).toThrow('topic "a": backoff.maxMs must be an integer');
  });

  test('modules: module.exports or the default export; unreadable or empty modules are refused', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pgbpm-handlers-'));
    try {
      const write = (name: string, text: string): string => {
        const file = path.join(dir, name);
        fs.writeFileSync(file, text);
        return file;
      };
      expect(Object.keys(loadHandlerModule(write('cjs.js', 'module.exports = { a: () => ({}) };')))).toEqual(['a']);
      expect(Object.keys(loadHandlerModule(write('esm.js', 'exports.default = { b: () => ({}) };')))).toEqual(['b']);
      expect(() => loadHandlerModule(write('empty.js', 'module.exports = {};'))).toThrow(/defines no handler/);
      expect(() => loadHandlerModule(write('broken.js', 'module.exports = ;'))).toThrow(/cannot load the handler module .*broken\.js: /);
      expect(() => loadHandlerModule(path.join(dir, 'missing.js'))).toThrow(/cannot load the handler module .*missing\.js: .*Cannot find module/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
