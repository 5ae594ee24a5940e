import { parseArgs } from 'node:util';
import type { ResolvedDatabase } from '../database';
import { CliError, UsageError, errorMessage } from '../errors';
import { err, out } from '../io';
import { migrateApp, resolveAppDatabase } from './migrate';

export const summary = 'serve the GraphQL API (http://127.0.0.1:4000/graphql; PORT, HOST)';

export const usage = `usage: pgbpm serve

Serves the GraphQL API at http://HOST:PORT/graphql until SIGINT/SIGTERM.
The database is DATABASE_URL (not migrated here: run pgbpm migrate first),
else the embedded PostgreSQL in .pgbpm/data (started and migrated). API
connections log in as bpm_authenticator (AUTH_DATABASE_URL with DATABASE_URL).

Requests need "Authorization: Bearer <JWT>":
  PGBPM_JWT_SECRET         HS256 secret (at least 32 characters), or
  PGBPM_JWKS_URL           JWKS endpoint for RS256/ES256 tokens
  PGBPM_JWT_ISSUER, PGBPM_JWT_AUDIENCE   required iss/aud when set
  PGBPM_JWT_TENANT_CLAIM (tenant), PGBPM_JWT_USER_CLAIM (sub),
  PGBPM_JWT_ROLES_CLAIM (roles), PGBPM_JWT_GROUPS_CLAIM (groups)   claim names
With the embedded database and neither set, a built-in development secret is
used (never when NODE_ENV=production), and an admin token is printed.

  PORT (default 4000), HOST (default 127.0.0.1: set 0.0.0.0 to listen on every interface)
  PGBPM_MAX_REQUEST_BYTES  largest request body (default 10 MiB)
  PGBPM_STATEMENT_TIMEOUT  statement_timeout per request (default 10s; 0: none)
  PGBPM_RATE_LIMIT         requests/s per tenant (default 100 in production, else off; 0: off)
  PGBPM_RATE_LIMIT_BURST   bucket size per tenant (default 2 x PGBPM_RATE_LIMIT)
  PGBPM_MAX_QUERY_DEPTH (12), PGBPM_MAX_QUERY_FIELDS (500), PGBPM_MAX_PAGE_SIZE (1000)   query limits
  PGBPM_METRICS_TOKEN      bearer token required by /metrics, when set
  PGBPM_METRICS_DATABASE_URL  monitoring login (BYPASSRLS) for the engine gauges of /metrics
  PGBPM_LOG_LEVEL          JSON log lines on stderr (default info)
  NODE_ENV=production      no GraphiQL, no introspection, no development secret`;

/** server/, loaded on demand: it pulls in PostGraphile, which the other commands do not need. */
type ServerModule = typeof import('../../server/index');

function loadServer(): ServerModule {
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    return require('../../server/index') as ServerModule;
  } catch (e) {
    throw new CliError(`pgbpm: cannot load the API server (server/index): ${errorMessage(e)}`);
  }
}

export const DEFAULT_API_PORT = 4000;
/** Tenant of the admin token printed in development. */
export const DEV_TOKEN_TENANT = 'acme';

function listenPort(env: NodeJS.ProcessEnv): number {
  const raw = env.PORT;
  if (!raw) return DEFAULT_API_PORT;
  const port = Number(raw);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new CliError(`pgbpm: PORT must be a TCP port number, got "${raw}"`);
  return port;
}

export interface RunningApi {
  close(): Promise<void>;
  /** What to print: URLs and, in development, a ready-to-use admin token. */
  lines: string[];
}

/** Starts the API on a resolved (and migrated) database; used by `serve` and `start`. */
export async function startApi(db: ResolvedDatabase, env: NodeJS.ProcessEnv = process.env): Promise<RunningApi> {
  const server = loadServer();
  let config;
  try {
    config = server.serverConfigFromEnv(env, { allowDevSecret: db.embedded });
  } catch (e) {
    if (e instanceof server.ConfigError) throw new CliError(`pgbpm: ${e.message}`);
    throw e;
  }
  const port = listenPort(env);
  const host = env.HOST || '127.0.0.1';
  let api;
  try {
    api = await server.startApiServer({ ...config, connectionString: db.authenticatorConnectionString, port, host });
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EADDRINUSE') throw new CliError(`pgbpm: ${host}:${port} is already in use (set PORT)`);
    throw new CliError(`pgbpm: cannot start the API: ${errorMessage(e)}`);
  }

  const lines = [`GraphQL API: ${api.graphqlUrl}`];
  if (!config.production) lines.push(`  GraphiQL:   ${api.url}${server.GRAPHIQL_PATH} (add the Authorization header)`);
  lines.push(
    `  subscriptions: ${api.graphqlUrl.replace(/^http/, 'ws')} (graphql-ws; connectionParams {"authorization": "Bearer <token>"})`,
    `  health:     ${api.url}/health, ${api.url}/ready`,
    `  metrics:    ${api.url}/metrics`,
  );
  const { auth } = config;
  if (!config.production && auth.secret) {
    const token = await server.mintToken(
      { tenant: DEV_TOKEN_TENANT, user: 'admin', roles: ['bpm_admin'] },
      { secret: auth.secret, claims: auth.claims, expiresIn: '12h', issuer: auth.issuer, audience: auth.audience },
    );
    lines.push(
      auth.usingDevSecret
        ? '  tokens:     HS256 with the built-in development secret (embedded database only; PGBPM_JWT_SECRET to set one)'
        : '  tokens:     HS256 with PGBPM_JWT_SECRET',
      `  admin token (tenant "${DEV_TOKEN_TENANT}", user "admin", 12 h; pgbpm token for others):`,
      `    ${token}`,
    );
  }
  return { close: () => api.close(), lines };
}

/**
 * Runs `onFirst` at the first SIGINT/SIGTERM and resolves with its exit code;
 * a second signal resolves 1 at once. `watch` may end the wait itself (e.g.
 * when a child process dies): it gets `finish` and whether a stop is under way.
 */
export function waitForSignal(
  onFirst: (signal: NodeJS.Signals) => Promise<number>,
  watch?: (finish: (code: number) => void, stopping: () => boolean) => void,
): Promise<number> {
  return new Promise<number>((resolve) => {
    let stopping = false;
    const keepAlive = setInterval(() => undefined, 1 << 30);
    const finish = (code: number): void => {
      clearInterval(keepAlive);
      process.removeListener('SIGINT', onSignal);
      process.removeListener('SIGTERM', onSignal);
      resolve(code);
    };
    const onSignal = (signal: NodeJS.Signals): void => {
      if (stopping) {
        err(`${signal} again: exiting without waiting.`);
        finish(1);
        return;
      }
      stopping = true;
      err(`${signal}: stopping …`);
      onFirst(signal).then(finish, (e: unknown) => {
        err(`pgbpm: stopping failed: ${errorMessage(e)}`);
        finish(1);
      });
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    watch?.(finish, () => stopping);
  });
}

export async function run(args: string[]): Promise<number> {
  const { values } = parseArgs({ args, options: { help: { type: 'boolean', short: 'h' } }, strict: false });
  if (values.help) {
    out(usage);
    return 0;
  }
  if (args.length > 0) throw new UsageError(`pgbpm serve takes no arguments\n\n${usage}`);

  const db = await resolveAppDatabase();
  let running: RunningApi;
  try {
    if (db.embedded) await migrateApp(db);
    running = await startApi(db);
  } catch (e) {
    await db.stop();
    throw e;
  }
  out([...running.lines, 'Press Ctrl-C to stop.'].join('\n'));
  return waitForSignal(async () => {
    await running.close();
    await db.stop();
    err('Stopped.');
    return 0;
  });
}
