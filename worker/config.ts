/**
 * Worker settings: environment variables, overridden by command-line options.
 *
 *   PGBPM_HANDLERS                 handler module (--handlers)
 *   PGBPM_WORKER_TENANTS           tenants served, comma-separated (--tenants)
 *   PGBPM_WORKER_ID                lock holder id (default <host>-<pid>-<random>)
 *   PGBPM_WORKER_CONCURRENCY       handlers in flight at most (10)
 *   PGBPM_WORKER_BATCH             max_tasks per fetch_and_lock (10)
 *   PGBPM_WORKER_IDLE_MS           sleep after a round of fetches found nothing (500ms;
 *                                  new tasks wake the runner at once)
 *   PGBPM_WORKER_LOCK_DURATION     lock per fetched task (5min)
 *   PGBPM_WORKER_RETRIES           default retries after a first failure (3)
 *   PGBPM_WORKER_BACKOFF_BASE      delay before the first retry (1s), doubling
 *   PGBPM_WORKER_BACKOFF_MAX       longest delay between retries (5min)
 *   PGBPM_WORKER_SHUTDOWN_TIMEOUT  how long a stop waits for handlers in flight (30s)
 *   PGBPM_WORKER_STATEMENT_TIMEOUT statement_timeout of the worker's connections (1min; 0: none)
 *   PGBPM_JOB_CONCURRENCY          graphile-worker jobs in flight (4)
 *   PGBPM_JOB_POLL_INTERVAL        graphile-worker's poll for jobs that became due (500ms)
 *   PGBPM_JOB_WAKE_AT_DUE          wake idle job loops when a job comes due (true; job-waker.ts)
 *   PGBPM_JOB_RECOVERY_INTERVAL    how often to look for jobs held by dead workers (10s);
 *                                  released once locked 3 × this long (job-liveness.ts)
 *   PGBPM_STATISTICS_INTERVAL      how often to analyse engine tables a burst filled beyond what
 *                                  their planner statistics say (1s; "none": never; statistics.ts)
 *   PGBPM_HISTORY_TTL              history kept after an instance ends, for definitions
 *                                  without camunda:historyTimeToLive (none: kept)
 *   PGBPM_EVENT_RETENTION          event log rows kept this long (30d; "none": kept)
 *   PGBPM_CLEANUP_INTERVAL         time between a tenant's history cleanups (1h)
 *
 * Durations: milliseconds, or a number with ms, s, min, h or d.
 *
 * The job defaults are chosen so that a due timer fires within a second
 * (npm run bench:timers measures it). graphile-worker finds jobs that become
 * due (a timer's run_at) only by polling: each of its `concurrency` loops
 * sleeps a poll interval after finding nothing. The waker (job-waker.ts)
 * looks two poll intervals ahead while a loop is idle and nudges an idle
 * loop when the next job comes due, so a timer armed at least one poll
 * interval ahead fires within milliseconds of its due time; one armed for
 * sooner waits at most one poll interval (500 ms), as it would without the
 * waker (PGBPM_JOB_WAKE_AT_DUE=false). When many timers come due at once, each timer
 * job fires up to 50 due timers in one transaction (bpm.fire_due_timers), so
 * a burst is bound by database CPU, not by commits: on the 2-core
 * development machine a burst of 10,000 timers drained in 3.9 s with 4 loops
 * and in 11.1 s with 16 (before batching, 16 loops were faster than 4); other
 * runs with 4 loops took about 10 s (README, Performance). The
 * runner's pool holds concurrency + 2 connections (one listens for new jobs).
 */
import crypto from 'node:crypto';
import os from 'node:os';
import { WorkerConfigError } from './errors';
import { HISTORY_DEFAULTS, type HistorySettings } from './tasks';

export interface WorkerConfig {
  /** Handler module path, or null: no external-task handlers. */
  handlersPath: string | null;
  tenants: string[];
  workerId: string;
  concurrency: number;
  batchSize: number;
  idleMs: number;
  lockDurationMs: number;
  retries: number;
  backoffBaseMs: number;
  backoffMaxMs: number;
  shutdownTimeoutMs: number;
  /**
   * statement_timeout (ms) of every connection of the worker, 0: none. An
   * engine call queued behind a lock that another transaction holds for good
   * (an administrator's forgotten open transaction) fails instead of holding a
   * handler slot or a job loop forever: the job is retried with back-off, the
   * external task's report is retried or its lock expires.
   */
  statementTimeoutMs: number;
  jobConcurrency: number;
  jobPollIntervalMs: number;
  /** Wake idle job loops when a job comes due rather than at their next poll (job-waker.ts). */
  jobWakeAtDue: boolean;
  /** How often to look for jobs whose worker died; they are released once locked 3 × this long (job-liveness.ts). */
  jobRecoveryIntervalMs: number;
  /** How often to call bpm.refresh_statistics (statistics.ts); null: never. */
  statisticsIntervalMs: number | null;
  history: HistorySettings;
}

export const WORKER_DEFAULTS = {
  concurrency: 10,
  batchSize: 10,
  // new tasks wake the runner through NOTIFY; the poll only finds back-off expiries (or covers a lost LISTEN connection)
  idleMs: 500,
  lockDurationMs: 5 * 60_000,
  retries: 3,
  backoffBaseMs: 1000,
  backoffMaxMs: 5 * 60_000,
  shutdownTimeoutMs: 30_000,
  statementTimeoutMs: 60_000,
  jobConcurrency: 4,
  jobPollIntervalMs: 500,
  jobWakeAtDue: true,
  jobRecoveryIntervalMs: 10_000,
  statisticsIntervalMs: 1000,
  history: HISTORY_DEFAULTS,
} as const;

/** Milliseconds of "250", "250ms", "10s", "5min", "1h" or "30d". */
export function parseDurationMs(raw: string, name: string): number {
  const match = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|min|h|d)?\s*$/.exec(raw);
  if (!match) throw new WorkerConfigError(`${name} must be milliseconds or a number with ms, s, min, h or d, got "${raw}"`);
  const factor = { ms: 1, s: 1000, min: 60_000, h: 3_600_000, d: 86_400_000 }[match[2] ?? 'ms'] ?? 1;
  return Math.round(Number(match[1]) * factor);
}

function positiveInteger(raw: string, name: string): number {
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 1) throw new WorkerConfigError(`${name} must be a positive integer, got "${raw}"`);
  return value;
}

function nonNegativeInteger(raw: string, name: string): number {
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 0) throw new WorkerConfigError(`${name} must be an integer of at least 0, got "${raw}"`);
  return value;
}

/** "a, b,,c" → ["a", "b", "c"], without duplicates. */
export function parseList(raw: string | undefined): string[] {
  if (!raw) return [];
  return [...new Set(raw.split(',').map((s) => s.trim()).filter((s) => s.length > 0))];
}

export function defaultWorkerId(): string {
  return `${os.hostname()}-${process.pid}-${crypto.randomBytes(3).toString('hex')}`;
}

/** Command-line values, which win over the environment. */
export interface WorkerOverrides {
  handlersPath?: string;
  tenants?: string;
  workerId?: string;
  concurrency?: string;
}

export function workerConfigFromEnv(env: NodeJS.ProcessEnv = process.env, overrides: WorkerOverrides = {}): WorkerConfig {
  const pick = (name: string): string | undefined => (env[name] === undefined || env[name] === '' ? undefined : env[name]);
  const duration = (name: string, fallback: number): number => {
    const raw = pick(name);
    return raw === undefined ? fallback : parseDurationMs(raw, name);
  };
  // a duration, or "none" (kept forever)
  const optionalDuration = (name: string, fallback: number | null): number | null => {
    const raw = pick(name);
    if (raw === undefined) return fallback;
    return raw.trim().toLowerCase() === 'none' ? null : parseDurationMs(raw, name);
  };
  const boolean = (name: string, fallback: boolean): boolean => {
    const raw = pick(name)?.trim().toLowerCase();
    if (raw === undefined) return fallback;
    if (raw === 'true' || raw === '1') return true;
    if (raw === 'false' || raw === '0') return false;
    throw new WorkerConfigError(`${name} must be true or false, got "${pick(name)}"`);
  };
  const integer = (name: string, fallback: number, parse: (raw: string, name: string) => number): number => {
    const raw = pick(name);
    return raw === undefined ? fallback : parse(raw, name);
  };
  const concurrency =
    overrides.concurrency !== undefined
      ? positiveInteger(overrides.concurrency, '--concurrency')
      : integer('PGBPM_WORKER_CONCURRENCY', WORKER_DEFAULTS.concurrency, positiveInteger);
  const config: WorkerConfig = {
    handlersPath: overrides.handlersPath ?? pick('PGBPM_HANDLERS') ?? null,
    tenants: parseList(overrides.tenants ?? pick('PGBPM_WORKER_TENANTS')),
    workerId: overrides.workerId ?? pick('PGBPM_WORKER_ID') ?? defaultWorkerId(),
    concurrency,
    batchSize: integer('PGBPM_WORKER_BATCH', WORKER_DEFAULTS.batchSize, positiveInteger),
    idleMs: duration('PGBPM_WORKER_IDLE_MS', WORKER_DEFAULTS.idleMs),
    lockDurationMs: duration('PGBPM_WORKER_LOCK_DURATION', WORKER_DEFAULTS.lockDurationMs),
    retries: integer('PGBPM_WORKER_RETRIES', WORKER_DEFAULTS.retries, nonNegativeInteger),
    backoffBaseMs: duration('PGBPM_WORKER_BACKOFF_BASE', WORKER_DEFAULTS.backoffBaseMs),
    backoffMaxMs: duration('PGBPM_WORKER_BACKOFF_MAX', WORKER_DEFAULTS.backoffMaxMs),
    shutdownTimeoutMs: duration('PGBPM_WORKER_SHUTDOWN_TIMEOUT', WORKER_DEFAULTS.shutdownTimeoutMs),
    statementTimeoutMs: duration('PGBPM_WORKER_STATEMENT_TIMEOUT', WORKER_DEFAULTS.statementTimeoutMs),
    jobConcurrency: integer('PGBPM_JOB_CONCURRENCY', WORKER_DEFAULTS.jobConcurrency, positiveInteger),
    jobPollIntervalMs: duration('PGBPM_JOB_POLL_INTERVAL', WORKER_DEFAULTS.jobPollIntervalMs),
    jobWakeAtDue: boolean('PGBPM_JOB_WAKE_AT_DUE', WORKER_DEFAULTS.jobWakeAtDue),
    jobRecoveryIntervalMs: duration('PGBPM_JOB_RECOVERY_INTERVAL', WORKER_DEFAULTS.jobRecoveryIntervalMs),
    statisticsIntervalMs: optionalDuration('PGBPM_STATISTICS_INTERVAL', WORKER_DEFAULTS.statisticsIntervalMs),
    history: {
      defaultTtlMs: optionalDuration('PGBPM_HISTORY_TTL', HISTORY_DEFAULTS.defaultTtlMs),
      eventRetentionMs: optionalDuration('PGBPM_EVENT_RETENTION', HISTORY_DEFAULTS.eventRetentionMs),
      intervalMs: duration('PGBPM_CLEANUP_INTERVAL', HISTORY_DEFAULTS.intervalMs),
    },
  };
  if (config.history.intervalMs < 1000) throw new WorkerConfigError('PGBPM_CLEANUP_INTERVAL must be at least 1s');
  if (config.batchSize > 1000) throw new WorkerConfigError(`PGBPM_WORKER_BATCH must be at most 1000, got ${config.batchSize}`);
  if (config.lockDurationMs < 1) throw new WorkerConfigError('PGBPM_WORKER_LOCK_DURATION must be positive');
  if (config.jobPollIntervalMs < 1) throw new WorkerConfigError('PGBPM_JOB_POLL_INTERVAL must be positive');
  if (config.jobRecoveryIntervalMs < 100) throw new WorkerConfigError('PGBPM_JOB_RECOVERY_INTERVAL must be at least 100ms');
  if (config.statisticsIntervalMs !== null && config.statisticsIntervalMs < 100) {
    throw new WorkerConfigError('PGBPM_STATISTICS_INTERVAL must be at least 100ms (or "none")');
  }
  if (config.workerId.trim() === '') throw new WorkerConfigError('the worker id must not be empty');
  return config;
}
