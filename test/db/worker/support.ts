/**
 * Shared bits of the worker tests: a worker runtime in this process against
 * a test database (logging in as bpm_authenticator, working as bpm_engine,
 * like `pgbpm worker`), with small retry and poll settings, its log lines
 * collected; and polling helpers that wait for database states instead of
 * sleeping for fixed times.
 */
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import type { TaskList } from 'graphile-worker';
import type { WorkerConfig } from '../../../worker/config';
import { WORKER_DEFAULTS } from '../../../worker/config';
import type { HttpConnectorConfig } from '../../../worker/connectors/http';
import type { LockedTask } from '../../../worker/external/engine-calls';
import type { HandlerMap } from '../../../worker/handlers';
import { createWorkerLogger } from '../../../worker/logger';
import { startWorkerRuntime, type WorkerRuntime } from '../../../worker/runtime';
import type { TestDb } from '../../helpers/db';

export interface TestWorker {
  runtime: WorkerRuntime;
  /** Parsed JSON log lines so far. */
  logs: Array<Record<string, unknown>>;
  stop(): ReturnType<WorkerRuntime['stop']>;
}

export interface TestWorkerOptions {
  tenants: string[];
  handlers?: HandlerMap;
  config?: Partial<WorkerConfig>;
  http?: HttpConnectorConfig | null;
  jobs?: boolean;
  tasks?: TaskList;
  onHandlerStart?: (task: LockedTask) => void;
}

let counter = 0;

export async function startTestWorker(db: Pick<TestDb, 'urls'>, options: TestWorkerOptions): Promise<TestWorker> {
  const logs: Array<Record<string, unknown>> = [];
  const config: WorkerConfig = {
    ...WORKER_DEFAULTS,
    handlersPath: null,
    tenants: options.tenants,
    workerId: `test-worker-${process.pid}-${++counter}`,
    idleMs: 5,
    backoffBaseMs: 10,
    backoffMaxMs: 100,
    shutdownTimeoutMs: 5000,
    jobPollIntervalMs: 100,
    ...options.config,
  };
  const runtime = await startWorkerRuntime({
    connectionString: db.urls.authenticator,
    config,
    handlers: options.handlers ?? {},
    http: options.http ?? null,
    jobs: options.jobs ?? false,
    tasks: options.tasks,
    logger: createWorkerLogger({ level: 'debug', write: (line) => logs.push(JSON.parse(line) as Record<string, unknown>) }),
    onHandlerStart: options.onHandlerStart,
  });
  return { runtime, logs, stop: () => runtime.stop() };
}

/** Polls `probe` until it returns a value other than undefined (or the time is up). */
export async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 20_000, everyMs = 20): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, everyMs));
  }
}

/** A promise with its resolve function, for handlers that wait for the test. */
export function deferred<T = void>(): { promise: Promise<T>; resolve: (value: T) => void } {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

/** The project's root folder. */
export const PROJECT_ROOT = path.join(__dirname, '..', '..', '..');

/** npm test type-checks but does not build: compiles the project (tsconfig.build.json) into `outDir`, for child processes. */
export async function buildProject(outDir: string): Promise<void> {
  await promisify(execFile)('npx', ['tsc', '-p', 'tsconfig.build.json', '--outDir', outDir, '--sourceMap', 'false'], {
    cwd: PROJECT_ROOT,
    timeout: 240_000,
  });
}
