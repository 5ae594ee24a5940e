/**
 * The GraphQL API: an express app serving PostGraphile v5 (grafserv's express
 * adapter) over the `bpm` schema at /graphql, plus /health and /ready.
 *
 *   POST /graphql   Bearer JWT required (server/auth.ts), then GraphQL with
 *                   pgSettings { role, bpm.tenant_id, bpm.user_id, bpm.groups }
 *   GET  /graphiql  Ruru (GraphiQL), only when not in production
 *   GET  /health    200 while the process is up
 *   GET  /ready     200 when the database answers and is migrated, else 503
 *   GET  /metrics   Prometheus metrics (server/observability.ts); Bearer
 *                   PGBPM_METRICS_TOKEN when configured
 *   WS   /graphql   subscriptions over graphql-ws (server/subscriptions/): the
 *                   JWT in connectionParams.authorization, verified as for HTTP
 *
 * Every response carries `x-request-id`; logs are JSON lines (pino) with it.
 * Limits (server/limits.ts): query depth, field count and page size before
 * execution, statement_timeout per request, requests per second per tenant.
 */
import './preload';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import express, { type NextFunction, type Request, type Response } from 'express';
import pg from 'pg';
import { postgraphile, type PostGraphileInstance } from 'postgraphile';
import { makePgService } from 'postgraphile/adaptors/pg';
import { pipelinedPgAdaptor } from './pg-adaptor';
import { grafserv } from 'postgraphile/grafserv/express/v4';
import { PostGraphileAmberPreset } from 'postgraphile/presets/amber';
import { PgSimplifyInflectionPreset } from '@graphile/simplify-inflection';
import { getOperationAST } from 'postgraphile/graphql';
import { Gauge } from 'prom-client';
import { authMiddleware, createAuthenticator, pgSettingsFor, principalOf, type Principal } from './auth';
import {
  DEFAULT_MAX_PAGE_SIZE,
  DEFAULT_MAX_QUERY_DEPTH,
  DEFAULT_EVENT_POLL_INTERVAL_MS,
  DEFAULT_MAX_QUERY_FIELDS,
  DEFAULT_MAX_SUBSCRIPTIONS_PER_CONNECTION,
  DEFAULT_STATEMENT_TIMEOUT_MS,
  type ServerConfig,
} from './config';
import { makeMaskError } from './errors';
import { createRateLimiter, makeQueryLimitsPlugin } from './limits';
import {
  createEngineGauges,
  createHttpMetrics,
  createLogger,
  metricsHandler,
  type EngineGauges,
  type HttpMetrics,
  type Logger,
} from './observability';
import { BpmSmartTagsPlugin, DeployProcessPlugin, NoIntrospectionPlugin, PrimaryKeyIdPlugin } from './plugins';
import { EventHub } from './subscriptions/hub';
import { hasEventLog } from './subscriptions/reader';
import { EventSubscriptionsPlugin } from './subscriptions/schema';
import { createEventSubscriber } from './subscriptions/subscriber';
import { attachWebSockets, principalOfSocket, type WebSocketHandle } from './subscriptions/websocket';
import { handlePoolErrors } from './pg-pool';

export const GRAPHQL_PATH = '/graphql';
export const GRAPHIQL_PATH = '/graphiql';
export const METRICS_PATH = '/metrics';

export interface ApiOptions extends ServerConfig {
  /** Login of the API's connections: bpm_authenticator (or a login that may SET ROLE to the API roles). */
  connectionString: string;
  /** Connections in the pool (default 10). */
  poolSize?: number;
  /** The pino logger (JSON lines); default: one writing to `log`, else to stderr, at `logLevel`. */
  logger?: Logger;
  /** Receives each JSON log line instead of stderr (tests; `() => {}` silences). Ignored with `logger`. */
  log?: (line: string) => void;
}

export interface ApiServer {
  /** http://host:port (no trailing slash). */
  url: string;
  graphqlUrl: string;
  server: http.Server;
  app: express.Express;
  /** Stops accepting connections, releases PostGraphile and ends the pool. Idempotent. */
  close(): Promise<void>;
}

export interface ListenOptions {
  port: number;
  host: string;
}

/** The pgSettings of a GraphQL request: the principal's, plus statement_timeout (ms) unless 0. */
export function requestPgSettings(principal: Principal, statementTimeoutMs: number = DEFAULT_STATEMENT_TIMEOUT_MS): Record<string, string> {
  const settings = pgSettingsFor(principal);
  if (statementTimeoutMs > 0) settings.statement_timeout = String(statementTimeoutMs);
  return settings;
}

/** Records each request's GraphQL operation name (label of the HTTP metrics, field of the access log). */
function makeOperationNamePlugin(metrics: HttpMetrics): GraphileConfig.Plugin {
  return {
    name: 'PgbpmOperationNamePlugin',
    version: '0.1.0',
    description: 'Records the GraphQL operation name of each HTTP request for metrics and logs',
    grafserv: {
      middleware: {
        processGraphQLRequestBody(next, event) {
          const name = event.body.operationName;
          if (typeof name === 'string') metrics.setOperation(event.request?.requestContext.expressv4?.req, name);
          return next();
        },
      },
    },
    grafast: {
      middleware: {
        execute(next, event) {
          const { document, operationName, requestContext } = event.args;
          const name = getOperationAST(document, operationName)?.name?.value;
          if (name) metrics.setOperation(requestContext?.expressv4?.req, name);
          return next();
        },
      },
    },
  };
}

/** The principal of a GraphQL operation: from the HTTP request (authMiddleware) or the WebSocket (connection_init). */
function principalOfRequest(requestContext: Partial<Grafast.RequestContext>): Principal | undefined {
  return principalOf(requestContext.expressv4?.req) ?? principalOfSocket(requestContext.ws?.socket);
}

function buildPreset(
  options: ApiOptions,
  pool: pg.Pool,
  logger: Logger,
  metrics: HttpMetrics,
  hub: EventHub,
  subscriptions: boolean,
): GraphileConfig.Preset {
  const maskError = makeMaskError(
    (message, error) => {
      logger.error({ err: error }, message);
    },
    { hideSuggestions: options.production },
  );
  const statementTimeoutMs = options.statementTimeoutMs ?? DEFAULT_STATEMENT_TIMEOUT_MS;
  const limits = {
    maxDepth: options.maxQueryDepth ?? DEFAULT_MAX_QUERY_DEPTH,
    maxFields: options.maxQueryFields ?? DEFAULT_MAX_QUERY_FIELDS,
    maxPageSize: options.maxPageSize ?? DEFAULT_MAX_PAGE_SIZE,
  };
  return {
    extends: [PostGraphileAmberPreset, PgSimplifyInflectionPreset],
    plugins: [
      PrimaryKeyIdPlugin,
      BpmSmartTagsPlugin,
      DeployProcessPlugin,
      ...(subscriptions ? [EventSubscriptionsPlugin] : []),
      makeOperationNamePlugin(metrics),
      makeQueryLimitsPlugin(limits, { hideSuggestions: options.production }),
      ...(options.production ? [NoIntrospectionPlugin] : []),
    ],
    schema: {
      // Tables are read-only to every API role (no grants); state changes only through the bpm.* functions.
      defaultBehavior: '-insert -update -delete',
    },
    pgServices: [{ ...makePgService({ pool, schemas: ['bpm'], pubsub: false }), adaptor: pipelinedPgAdaptor }],
    grafast: {
      explain: false,
      context(requestContext) {
        const principal = principalOfRequest(requestContext);
        // authMiddleware (HTTP) or onConnect (WebSocket) runs first; never run without a principal
        if (!principal) throw new Error('request reached GraphQL without an authenticated principal');
        const pgSettings = requestPgSettings(principal, statementTimeoutMs);
        const bpmEvents = requestContext.ws?.socket ? createEventSubscriber(hub, principal, pgSettings) : null;
        return { pgSettings, bpmEvents };
      },
    },
    grafserv: {
      graphqlPath: GRAPHQL_PATH,
      graphqlOverGET: false,
      graphiql: !options.production,
      graphiqlOnGraphQLGET: false,
      graphiqlPath: GRAPHIQL_PATH,
      // served by server/subscriptions/websocket.ts (grafserv's handler cannot refuse a connection)
      websockets: true,
      watch: false,
      maxRequestLength: options.maxRequestBytes,
      maskError,
    },
  };
}

/** Builds the express app and its PostGraphile instance (the schema is built before this resolves). */
export async function createApiApp(
  options: ApiOptions,
): Promise<{
  app: express.Express;
  attach(server: http.Server): Promise<void>;
  /** Closes the WebSocket connections (their subscriptions end); before closing the HTTP server. */
  closeWebSockets(): Promise<void>;
  release(): Promise<void>;
}> {
  const logger = options.logger ?? createLogger({ level: options.logLevel, write: options.log });
  const authenticator = createAuthenticator(options.auth, (message) => logger.warn(message));
  const pool = new pg.Pool({
    connectionString: options.connectionString,
    max: options.poolSize ?? 10,
    application_name: 'pgbpm-api',
    // requests write begin + settings ahead of their first query (server/pg-adaptor.ts)
    pipeline: true,
    connectionTimeoutMillis: 10_000,
  });
  handlePoolErrors(pool, (e) => logger.error({ err: e }, 'idle database connection failed'));
  const metrics = createHttpMetrics(logger, GRAPHQL_PATH);
  // subscriptions read the event log through their own small pool, so that they never starve HTTP requests
  const eventPool = new pg.Pool({
    connectionString: options.connectionString,
    max: 3,
    application_name: 'pgbpm-api-events',
    connectionTimeoutMillis: 10_000,
    idleTimeoutMillis: 30_000,
  });
  handlePoolErrors(eventPool, (e) => logger.error({ err: e }, 'idle event-log connection failed'));
  const hub = new EventHub({
    pool: eventPool,
    listenConnectionString: options.connectionString,
    logger,
    pollIntervalMs: options.eventPollIntervalMs ?? DEFAULT_EVENT_POLL_INTERVAL_MS,
  });

  let pgl: PostGraphileInstance | undefined;
  try {
    // a database whose event-log migration is not applied yet: serve the API without subscriptions
    const subscriptions = await hasEventLog(pool);
    if (!subscriptions) logger.warn('the database has no event log (bpm.event): GraphQL subscriptions are not served');
    pgl = postgraphile(buildPreset(options, pool, logger, metrics, hub, subscriptions));
    await pgl.getSchema();
  } catch (e) {
    await pgl?.release();
    await pool.end().catch(() => undefined);
    await eventPool.end().catch(() => undefined);
    throw new Error(
      `cannot build the GraphQL schema from the database (is it migrated? run pgbpm migrate): ${e instanceof Error ? e.message : String(e)}`,
    );
  }
  const instance = pgl;
  const serv = instance.createServ(grafserv);

  let gauges: EngineGauges | undefined;
  if (options.metricsDatabaseUrl) gauges = createEngineGauges(metrics.registry, options.metricsDatabaseUrl, logger);
  let websockets: WebSocketHandle | undefined;
  new Gauge({
    name: 'pgbpm_websocket_connections',
    help: 'Open GraphQL WebSocket connections',
    registers: [metrics.registry],
    collect() {
      this.set(websockets?.connections ?? 0);
    },
  });
  new Gauge({
    name: 'pgbpm_subscriptions',
    help: 'Live GraphQL subscriptions (instanceEvents, taskEvents, tenantEvents)',
    registers: [metrics.registry],
    collect() {
      this.set(hub.stats().subscriptions);
    },
  });

  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  // request id, access log and request metrics, for every route
  app.use(metrics.middleware);

  app.get(METRICS_PATH, metricsHandler(metrics.registry, options.metricsToken));

  app.get('/health', (_req, res) => {
    res.json({ status: 'ok' });
  });

  app.get('/ready', (_req, res) => {
    isReady(pool).then(
      (state) => {
        res.status(state === 'ready' ? 200 : 503).json({ status: state });
      },
      () => {
        res.status(503).json({ status: 'database unavailable' });
      },
    );
  });

  // Every GraphQL route (/graphql and anything below it) needs a valid token.
  app.use(GRAPHQL_PATH, authMiddleware(authenticator));
  // one budget per tenant for HTTP requests and WebSocket subscribes
  const rateLimiter =
    options.rateLimit && options.rateLimit > 0
      ? createRateLimiter(options.rateLimit, options.rateLimitBurst ?? Math.max(1, Math.ceil(2 * options.rateLimit)))
      : null;
  if (rateLimiter && options.rateLimit) {
    const rate = options.rateLimit;
    const limiter = rateLimiter;
    app.use(GRAPHQL_PATH, (req: Request, res: Response, next: NextFunction) => {
      const principal = principalOf(req);
      const wait = principal ? limiter.take(principal.tenant) : 0;
      if (wait === 0) {
        next();
        return;
      }
      res.set('Retry-After', String(Math.max(1, Math.ceil(wait))));
      res.status(429).json({ errors: [{ message: `rate limit exceeded (${rate} requests per second per tenant)`, extensions: { code: 'RATE_LIMITED' } }] });
    });
  }

  let attached = false;
  let released: Promise<void> | undefined;
  return {
    app,
    async attach(server) {
      if (attached) throw new Error('createApiApp: attach() may be called once');
      attached = true;
      await serv.addTo(app, server, false);
      websockets = attachWebSockets(server, {
        path: GRAPHQL_PATH,
        serv,
        authenticator,
        logger,
        maxPayloadBytes: options.maxRequestBytes,
        maxSubscriptions: options.maxSubscriptionsPerConnection ?? DEFAULT_MAX_SUBSCRIPTIONS_PER_CONNECTION,
        rateLimiter,
      });
      app.use((_req: Request, res: Response) => {
        res.status(404).json({ errors: [{ message: 'not found', extensions: { code: 'NOT_FOUND' } }] });
      });
      // Express error handler (4 arguments): never leak details
      app.use((e: unknown, _req: Request, res: Response, _next: NextFunction) => {
        logger.error({ err: e }, 'request failed');
        if (!res.headersSent) res.status(500).json({ errors: [{ message: 'internal error', extensions: { code: 'INTERNAL_SERVER_ERROR' } }] });
      });
    },
    async closeWebSockets() {
      await websockets?.close();
      await hub.close();
    },
    release() {
      released ??= (async () => {
        await websockets?.close();
        await hub.close();
        await instance.release(); // releases serv too
        await pool.end().catch(() => undefined);
        await eventPool.end().catch(() => undefined);
        await gauges?.close().catch(() => undefined);
        logger.flush();
      })();
      return released;
    },
  };
}

type Readiness = 'ready' | 'not migrated';

async function isReady(pool: pg.Pool): Promise<Readiness> {
  const client = await pool.connect();
  try {
    await client.query("set statement_timeout = '5s'");
    // Same answer as to_regclass('bpm.process_instance') is not null, but read from the
    // catalog: to_regclass raises "permission denied for schema bpm" for the login role,
    // which (NOINHERIT) has no privilege of its own on the schema.
    const { rows } = await client.query<{ migrated: boolean }>(
      `select exists (
         select 1 from pg_catalog.pg_class c join pg_catalog.pg_namespace n on n.oid = c.relnamespace
         where n.nspname = 'bpm' and c.relname = 'process_instance' and c.relkind in ('r', 'p')
       ) as migrated`,
    );
    return rows[0]?.migrated ? 'ready' : 'not migrated';
  } finally {
    await client.query('reset statement_timeout').catch(() => undefined);
    client.release();
  }
}

/** Starts the API on host:port (port 0: an ephemeral port). */
export async function startApiServer(options: ApiOptions & ListenOptions): Promise<ApiServer> {
  const api = await createApiApp(options);
  const server = http.createServer(api.app);
  // slow-client limits
  server.headersTimeout = 20_000;
  server.requestTimeout = 60_000;
  server.keepAliveTimeout = 5_000;
  try {
    await api.attach(server);
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(options.port, options.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
  } catch (e) {
    await api.release();
    throw e;
  }
  const address = server.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  const url = `http://${host}:${address.port}`;
  let closed: Promise<void> | undefined;
  return {
    url,
    graphqlUrl: `${url}${GRAPHQL_PATH}`,
    server,
    app: api.app,
    close() {
      closed ??= (async () => {
        const httpClosed = new Promise<void>((resolve) => {
          server.close(() => resolve());
          server.closeIdleConnections();
        });
        // upgraded (WebSocket) connections keep server.close() waiting until they end
        await api.closeWebSockets();
        await httpClosed;
        await api.release();
      })();
      return closed;
    },
  };
}
