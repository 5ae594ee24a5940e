/**
 * Logs, request ids and metrics of the API.
 *
 * - Logs are JSON lines (pino). Every line logged while a request is handled
 *   carries its `reqId` (AsyncLocalStorage), also the masked-error lines.
 * - Request id: the `x-request-id` header when it is a sane token (at most
 *   128 of [A-Za-z0-9._:-]), else a random UUID; echoed in the response.
 * - /metrics (Prometheus text format, prom-client, a registry per app):
 *     pgbpm_http_requests_total{operation,status}
 *     pgbpm_http_request_duration_seconds{operation,status}   (histogram)
 *   for requests to /graphql, `operation` being the GraphQL operation name
 *   ("anonymous" without one; at most MAX_OPERATION_LABELS distinct names,
 *   then "other"), plus Node.js process metrics (pgbpm_process_…, pgbpm_nodejs_…).
 *   With a monitoring database login (PGBPM_METRICS_DATABASE_URL) engine
 *   gauges are read from the database when /metrics is scraped, summed over
 *   all tenants (no tenant label; external-task topics are the only data
 *   in labels):
 *     pgbpm_process_instances{state}
 *     pgbpm_user_tasks_open
 *     pgbpm_incidents_open
 *     pgbpm_external_tasks_open{topic,locked}
 *     pgbpm_metrics_database_up   1 when the last read succeeded
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import crypto from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import pg from 'pg';
import pino, { type Logger } from 'pino';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { logSerializers } from './log-errors';
import { handlePoolErrors } from './pg-pool';

export type { Logger } from 'pino';

export interface RequestState {
  id: string;
  /** GraphQL operation name, once known. */
  operation?: string;
}

const requestStorage = new AsyncLocalStorage<RequestState>();
const requestStates = new WeakMap<IncomingMessage, RequestState>();

/** The state of the request being handled (AsyncLocalStorage), if any. */
export function currentRequest(): RequestState | undefined {
  return requestStorage.getStore();
}

/** Runs `fn` as part of a request (its id appears in the log lines); for tests and background work. */
export function withRequestState<T>(state: RequestState, fn: () => T): T {
  return requestStorage.run(state, fn);
}

export function requestStateOf(req: IncomingMessage | undefined): RequestState | undefined {
  return req ? requestStates.get(req) : undefined;
}

export interface LoggerOptions {
  level?: string;
  /** Where lines go: a function per line (tests), else stderr. */
  write?: (line: string) => void;
}

/** The API's pino logger: JSON lines with `reqId` of the current request. */
export function createLogger(options: LoggerOptions = {}): Logger {
  const destination = options.write
    ? { write: (line: string) => options.write?.(line.endsWith('\n') ? line.slice(0, -1) : line) }
    : pino.destination({ fd: 2, sync: false });
  return pino(
    {
      name: 'pgbpm-api',
      level: options.level ?? 'info',
      base: { pid: process.pid },
      serializers: logSerializers,
      mixin() {
        const state = requestStorage.getStore();
        return state ? { reqId: state.id } : {};
      },
    },
    destination,
  );
}

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

export const MAX_OPERATION_LABELS = 200;
const OPERATION_NAME = /^[_A-Za-z][_0-9A-Za-z]{0,99}$/;

export interface HttpMetrics {
  registry: Registry;
  /** Express middleware: request id, access log line, request metrics (first middleware of the app). */
  middleware: RequestHandler;
  /** Records the GraphQL operation name of a request (label of its metrics). */
  setOperation(req: IncomingMessage | undefined, name: string | null | undefined): void;
}

const QUIET_PATHS = new Set(['/health', '/ready', '/metrics']);

export function createHttpMetrics(logger: Logger, graphqlPath: string): HttpMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'pgbpm_' });
  const requests = new Counter({
    name: 'pgbpm_http_requests_total',
    help: 'GraphQL HTTP requests by operation name and HTTP status',
    labelNames: ['operation', 'status'] as const,
    registers: [registry],
  });
  const duration = new Histogram({
    name: 'pgbpm_http_request_duration_seconds',
    help: 'Latency of GraphQL HTTP requests by operation name and HTTP status',
    labelNames: ['operation', 'status'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [registry],
  });
  const knownOperations = new Set<string>();

  const operationLabel = (name: string | undefined): string => {
    if (!name) return 'anonymous';
    if (knownOperations.has(name)) return name;
    if (!OPERATION_NAME.test(name) || knownOperations.size >= MAX_OPERATION_LABELS) return 'other';
    knownOperations.add(name);
    return name;
  };

  const middleware: RequestHandler = (req: Request, res: Response, next: NextFunction) => {
    const header = req.get('x-request-id');
    const state: RequestState = { id: header && REQUEST_ID.test(header) ? header : crypto.randomUUID() };
    requestStates.set(req, state);
    res.set('x-request-id', state.id);
    const start = process.hrtime.bigint();
    const isGraphQL = req.path === graphqlPath;
    res.on('finish', () => {
      const seconds = Number(process.hrtime.bigint() - start) / 1e9;
      const status = String(res.statusCode);
      if (isGraphQL) {
        const labels = { operation: operationLabel(state.operation), status };
        requests.inc(labels);
        duration.observe(labels, seconds);
      }
      const line = {
        reqId: state.id,
        method: req.method,
        path: req.path,
        status: res.statusCode,
        ms: Math.round(seconds * 10_000) / 10,
        ...(state.operation ? { operation: state.operation } : {}),
      };
      if (QUIET_PATHS.has(req.path)) logger.debug(line, 'request');
      else logger.info(line, 'request');
    });
    requestStorage.run(state, next);
  };

  return {
    registry,
    middleware,
    setOperation(req, name) {
      const state = requestStateOf(req);
      if (state && name) state.operation = name;
    },
  };
}

export interface EngineGauges {
  close(): Promise<void>;
}

/**
 * Engine gauges read when /metrics is scraped, through a dedicated pool (one
 * connection) of a monitoring login. The counts cover the tenants that login
 * can see: with row-level security forced on the bpm tables, only a login
 * with BYPASSRLS (or a superuser) sees all of them.
 */
export function createEngineGauges(registry: Registry, connectionString: string, logger: Logger): EngineGauges {
  const pool = new pg.Pool({ connectionString, max: 1, application_name: 'pgbpm-metrics', connectionTimeoutMillis: 5_000 });
  handlePoolErrors(pool, (e) => logger.warn({ err: e }, 'metrics database connection failed'));

  // One read per scrape, shared by the gauges' collect() calls of that scrape
  // (prom-client calls them all before it renders any).
  let pending: Promise<void> | null = null;
  const collect = (): Promise<void> => refresh();
  const common = { registers: [registry], collect };
  const instances = new Gauge({ name: 'pgbpm_process_instances', help: 'Process instances by state (all tenants)', labelNames: ['state'] as const, ...common });
  const userTasks = new Gauge({ name: 'pgbpm_user_tasks_open', help: 'Open user tasks (all tenants)', ...common });
  const incidents = new Gauge({ name: 'pgbpm_incidents_open', help: 'Unresolved incidents (all tenants)', ...common });
  const externalTasks = new Gauge({
    name: 'pgbpm_external_tasks_open',
    help: 'Open external tasks by topic, locked by a worker or waiting (all tenants)',
    labelNames: ['topic', 'locked'] as const,
    ...common,
  });
  const jobs = new Gauge({
    name: 'pgbpm_jobs',
    help: 'graphile-worker jobs by task and state: due (waiting for a job loop), scheduled (run_at ahead), running (locked by a worker), failed (out of attempts); all tenants',
    labelNames: ['task', 'state'] as const,
    ...common,
  });
  const up = new Gauge({ name: 'pgbpm_metrics_database_up', help: '1 when the engine gauges were read from the database at the last scrape', ...common });

  const read = async (): Promise<void> => {
    const client = await pool.connect();
    try {
      await client.query("set statement_timeout = '5s'");
      // one connection: the queries run one after the other
      const byState = await client.query<{ state: string; n: string }>(
        'select state::text as state, count(*) as n from bpm.process_instance group by state',
      );
      const open = await client.query<{ tasks: string; incidents: string }>(
        `select (select count(*) from bpm.user_task where state = 'open') as tasks,
                (select count(*) from bpm.incident where resolved_at is null) as incidents`,
      );
      const ext = await client.query<{ topic: string; locked: boolean; n: string }>(
        `select topic, coalesce(locked_until > now(), false) as locked, count(*) as n
           from bpm.external_task where state = 'open' group by 1, 2`,
      );
      instances.reset();
      for (const row of byState.rows) instances.set({ state: row.state }, Number(row.n));
      userTasks.set(Number(open.rows[0]?.tasks ?? 0));
      incidents.set(Number(open.rows[0]?.incidents ?? 0));
      externalTasks.reset();
      for (const row of ext.rows) externalTasks.set({ topic: row.topic, locked: String(row.locked) }, Number(row.n));
      await readJobs(client);
      up.set(1);
    } finally {
      client.release();
    }
  };
  // the job queue (timers, continuations, deadlines, deferred deliveries) lives in
  // graphile_worker: a login without access to it still gets the engine gauges
  const readJobs = async (client: pg.PoolClient): Promise<void> => {
    jobs.reset();
    try {
      const { rows } = await client.query<{ task: string; state: string; n: string }>(
        `select task_identifier as task,
                case when locked_at is not null then 'running' when attempts >= max_attempts then 'failed'
                     when run_at > now() then 'scheduled' else 'due' end as state,
                count(*) as n
           from graphile_worker.jobs group by 1, 2`,
      );
      for (const row of rows) jobs.set({ task: row.task, state: row.state }, Number(row.n));
    } catch (e) {
      logger.debug({ err: e }, 'metrics: cannot read the job queue (graphile_worker); pgbpm_jobs omitted');
    }
  };
  function refresh(): Promise<void> {
    pending ??= read()
      .catch((e: unknown) => {
        up.set(0);
        logger.warn({ err: e }, 'metrics: cannot read the engine gauges');
      })
      .finally(() => {
        // the other gauges of this scrape reuse the result
        setImmediate(() => {
          pending = null;
        });
      });
    return pending;
  }
  return { close: () => pool.end() };
}

/** GET /metrics, optionally behind a bearer token. */
export function metricsHandler(registry: Registry, token: string | null | undefined): RequestHandler {
  const expected = token ? Buffer.from(`Bearer ${token}`) : null;
  return (req: Request, res: Response, next: NextFunction) => {
    if (expected) {
      const given = Buffer.from(req.get('authorization') ?? '');
      if (given.length !== expected.length || !crypto.timingSafeEqual(given, expected)) {
        res.set('WWW-Authenticate', 'Bearer');
        res.status(401).json({ errors: [{ message: 'metrics token required', extensions: { code: 'UNAUTHENTICATED' } }] });
        return;
      }
    }
    registry.metrics().then(
      (text) => {
        res.set('Content-Type', registry.contentType).send(text);
      },
      (e: unknown) => next(e),
    );
  };
}
