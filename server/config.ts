/**
 * Configuration of the GraphQL API server, from the environment.
 *
 *   PGBPM_JWT_SECRET        HS256 secret (at least 32 characters)
 *   PGBPM_JWKS_URL          JWKS endpoint for RS256/ES256 tokens (createRemoteJWKSet)
 *   PGBPM_JWT_ISSUER        required `iss`, when set
 *   PGBPM_JWT_AUDIENCE      required `aud`, when set
 *   PGBPM_JWT_TENANT_CLAIM  claim holding the tenant          (default `tenant`)
 *   PGBPM_JWT_USER_CLAIM    claim holding the user id         (default `sub`)
 *   PGBPM_JWT_ROLES_CLAIM   claim holding the role(s)         (default `roles`)
 *   PGBPM_JWT_GROUPS_CLAIM  claim holding the groups          (default `groups`)
 *   PGBPM_MAX_REQUEST_BYTES largest accepted request body     (default 10 MiB)
 *   PGBPM_STATEMENT_TIMEOUT statement_timeout of API requests (default 10s; 0: none)
 *   PGBPM_RATE_LIMIT        requests/s per tenant (default: 0 = off in development, 100 in production)
 *   PGBPM_RATE_LIMIT_BURST  bucket size per tenant            (default 2 × PGBPM_RATE_LIMIT)
 *   PGBPM_MAX_QUERY_DEPTH   deepest selection set nesting     (default 12)
 *   PGBPM_MAX_QUERY_FIELDS  most fields in one operation, fragments expanded (default 500)
 *   PGBPM_MAX_PAGE_SIZE     largest `first`/`last`            (default 1000)
 *   PGBPM_METRICS_TOKEN     bearer token /metrics requires, when set
 *   PGBPM_METRICS_DATABASE_URL  monitoring login for the engine gauges of /metrics (omitted when unset)
 *   PGBPM_LOG_LEVEL         pino level (default info)
 *   PGBPM_WS_MAX_SUBSCRIPTIONS  subscriptions per WebSocket connection (default 20)
 *   PGBPM_EVENT_POLL_INTERVAL   fallback poll of the event log by subscriptions (default 1s)
 *   NODE_ENV=production     no GraphiQL (Ruru), no introspection, no development secret
 */

/** The database roles a token may map to (bpm_authenticator may SET ROLE to each). */
export const API_ROLES = ['bpm_admin', 'bpm_designer', 'bpm_user', 'bpm_engine'] as const;
export type ApiRole = (typeof API_ROLES)[number];

export function isApiRole(value: string): value is ApiRole {
  return (API_ROLES as readonly string[]).includes(value);
}

/**
 * HS256 secret used when nothing else is configured, only for the embedded
 * development database and never in production. Public by design: tokens
 * signed with it prove nothing.
 */
export const DEV_JWT_SECRET = 'pgbpm-development-secret-not-for-production-use';

export const MIN_SECRET_LENGTH = 32;
export const DEFAULT_MAX_REQUEST_BYTES = 10 * 1024 * 1024;

export interface ClaimNames {
  tenant: string;
  user: string;
  roles: string;
  groups: string;
}

export interface AuthConfig {
  /** HS256 secret, or null. */
  secret: Uint8Array | null;
  /** JWKS endpoint for RS256/ES256, or null. */
  jwksUrl: URL | null;
  issuer: string | null;
  audience: string | null;
  claims: ClaimNames;
  /** Seconds of clock skew tolerated for exp/nbf/iat. */
  clockToleranceSeconds: number;
  /** True when `secret` is DEV_JWT_SECRET (the embedded development database). */
  usingDevSecret: boolean;
}

export const DEFAULT_STATEMENT_TIMEOUT_MS = 10_000;
export const DEFAULT_PRODUCTION_RATE_LIMIT = 100;
export const DEFAULT_MAX_QUERY_DEPTH = 12;
export const DEFAULT_MAX_QUERY_FIELDS = 500;
export const DEFAULT_MAX_PAGE_SIZE = 1000;
export const DEFAULT_MAX_SUBSCRIPTIONS_PER_CONNECTION = 20;
export const DEFAULT_EVENT_POLL_INTERVAL_MS = 1000;

export interface ServerConfig {
  auth: AuthConfig;
  /** NODE_ENV === 'production': no GraphiQL, no introspection. */
  production: boolean;
  /** Largest accepted request body in bytes. */
  maxRequestBytes: number;
  /** statement_timeout (ms) of every GraphQL request's transaction; 0: none (default 10 s). */
  statementTimeoutMs?: number;
  /** Requests per second per tenant (token bucket); 0 or unset: no limit. */
  rateLimit?: number;
  /** Bucket size per tenant (default 2 × rateLimit, at least 1). */
  rateLimitBurst?: number;
  /** Deepest nesting of selection sets (default 12). */
  maxQueryDepth?: number;
  /** Most field selections in one operation, fragments expanded, aliases counted (default 500). */
  maxQueryFields?: number;
  /** Largest `first`/`last` argument (default 1000). */
  maxPageSize?: number;
  /** Bearer token /metrics requires; unset: /metrics is open. */
  metricsToken?: string | null;
  /** Login for the engine gauges of /metrics (cross-tenant counts); unset: no engine gauges. */
  metricsDatabaseUrl?: string | null;
  /** pino log level (default info). */
  logLevel?: string;
  /** Most subscriptions one WebSocket connection may hold at once (default 20). */
  maxSubscriptionsPerConnection?: number;
  /** Fallback poll of the event log by subscriptions, in ms (default 1000), besides NOTIFY. */
  eventPollIntervalMs?: number;
}

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

export function isProduction(env: NodeJS.ProcessEnv = process.env): boolean {
  return env.NODE_ENV === 'production';
}

function claimName(env: NodeJS.ProcessEnv, name: string, fallback: string): string {
  const value = env[name]?.trim();
  return value ? value : fallback;
}

export function claimNamesFromEnv(env: NodeJS.ProcessEnv = process.env): ClaimNames {
  return {
    tenant: claimName(env, 'PGBPM_JWT_TENANT_CLAIM', 'tenant'),
    user: claimName(env, 'PGBPM_JWT_USER_CLAIM', 'sub'),
    roles: claimName(env, 'PGBPM_JWT_ROLES_CLAIM', 'roles'),
    groups: claimName(env, 'PGBPM_JWT_GROUPS_CLAIM', 'groups'),
  };
}

export function encodeSecret(secret: string): Uint8Array {
  if (secret.length < MIN_SECRET_LENGTH) {
    throw new ConfigError(`PGBPM_JWT_SECRET must be at least ${MIN_SECRET_LENGTH} characters long`);
  }
  return new TextEncoder().encode(secret);
}

export interface AuthConfigOptions {
  /**
   * Whether DEV_JWT_SECRET may be used when neither PGBPM_JWT_SECRET nor
   * PGBPM_JWKS_URL is set: only for the embedded development database, and
   * never when NODE_ENV is production (then this option is ignored).
   */
  allowDevSecret?: boolean;
}

/** The HS256 secret configured for minting/verifying, or null (see AuthConfigOptions.allowDevSecret). */
export function resolveSecret(
  env: NodeJS.ProcessEnv,
  options: AuthConfigOptions = {},
): { secret: Uint8Array; dev: boolean } | null {
  const raw = env.PGBPM_JWT_SECRET;
  if (raw) return { secret: encodeSecret(raw), dev: false };
  if (options.allowDevSecret && !isProduction(env) && !env.PGBPM_JWKS_URL) {
    return { secret: encodeSecret(DEV_JWT_SECRET), dev: true };
  }
  return null;
}

export function authConfigFromEnv(env: NodeJS.ProcessEnv = process.env, options: AuthConfigOptions = {}): AuthConfig {
  const resolved = resolveSecret(env, options);
  let jwksUrl: URL | null = null;
  if (env.PGBPM_JWKS_URL) {
    try {
      jwksUrl = new URL(env.PGBPM_JWKS_URL);
    } catch {
      throw new ConfigError(`PGBPM_JWKS_URL is not a URL: ${env.PGBPM_JWKS_URL}`);
    }
    if (jwksUrl.protocol !== 'https:' && jwksUrl.protocol !== 'http:') {
      throw new ConfigError(`PGBPM_JWKS_URL must be an http(s) URL, got ${jwksUrl.protocol}`);
    }
  }
  if (!resolved && !jwksUrl) {
    throw new ConfigError(
      'no JWT verification configured: set PGBPM_JWT_SECRET (HS256, at least 32 characters) or PGBPM_JWKS_URL (RS256/ES256)',
    );
  }
  return {
    secret: resolved?.secret ?? null,
    jwksUrl,
    issuer: env.PGBPM_JWT_ISSUER || null,
    audience: env.PGBPM_JWT_AUDIENCE || null,
    claims: claimNamesFromEnv(env),
    clockToleranceSeconds: 5,
    usingDevSecret: resolved?.dev ?? false,
  };
}

export function serverConfigFromEnv(env: NodeJS.ProcessEnv = process.env, options: AuthConfigOptions = {}): ServerConfig {
  let maxRequestBytes = DEFAULT_MAX_REQUEST_BYTES;
  if (env.PGBPM_MAX_REQUEST_BYTES) {
    maxRequestBytes = Number(env.PGBPM_MAX_REQUEST_BYTES);
    if (!Number.isInteger(maxRequestBytes) || maxRequestBytes < 1024) {
      throw new ConfigError(`PGBPM_MAX_REQUEST_BYTES must be an integer of at least 1024, got "${env.PGBPM_MAX_REQUEST_BYTES}"`);
    }
  }
  const production = isProduction(env);
  const rateLimit = env.PGBPM_RATE_LIMIT ? nonNegativeNumber(env, 'PGBPM_RATE_LIMIT') : production ? DEFAULT_PRODUCTION_RATE_LIMIT : 0;
  const logLevel = env.PGBPM_LOG_LEVEL?.trim() || 'info';
  if (!LOG_LEVELS.includes(logLevel)) throw new ConfigError(`PGBPM_LOG_LEVEL must be one of ${LOG_LEVELS.join(', ')}, got "${logLevel}"`);
  return {
    auth: authConfigFromEnv(env, options),
    production,
    maxRequestBytes,
    statementTimeoutMs: env.PGBPM_STATEMENT_TIMEOUT ? parseDuration(env.PGBPM_STATEMENT_TIMEOUT, 'PGBPM_STATEMENT_TIMEOUT') : DEFAULT_STATEMENT_TIMEOUT_MS,
    rateLimit,
    rateLimitBurst: env.PGBPM_RATE_LIMIT_BURST ? positiveInteger(env, 'PGBPM_RATE_LIMIT_BURST') : undefined,
    maxQueryDepth: env.PGBPM_MAX_QUERY_DEPTH ? positiveInteger(env, 'PGBPM_MAX_QUERY_DEPTH') : DEFAULT_MAX_QUERY_DEPTH,
    maxQueryFields: env.PGBPM_MAX_QUERY_FIELDS ? positiveInteger(env, 'PGBPM_MAX_QUERY_FIELDS') : DEFAULT_MAX_QUERY_FIELDS,
    maxPageSize: env.PGBPM_MAX_PAGE_SIZE ? positiveInteger(env, 'PGBPM_MAX_PAGE_SIZE') : DEFAULT_MAX_PAGE_SIZE,
    metricsToken: env.PGBPM_METRICS_TOKEN || null,
    metricsDatabaseUrl: env.PGBPM_METRICS_DATABASE_URL || null,
    logLevel,
    maxSubscriptionsPerConnection: env.PGBPM_WS_MAX_SUBSCRIPTIONS
      ? positiveInteger(env, 'PGBPM_WS_MAX_SUBSCRIPTIONS')
      : DEFAULT_MAX_SUBSCRIPTIONS_PER_CONNECTION,
    eventPollIntervalMs: env.PGBPM_EVENT_POLL_INTERVAL
      ? pollInterval(env.PGBPM_EVENT_POLL_INTERVAL)
      : DEFAULT_EVENT_POLL_INTERVAL_MS,
  };
}

function pollInterval(raw: string): number {
  const ms = parseDuration(raw, 'PGBPM_EVENT_POLL_INTERVAL');
  if (ms < 50 || ms > 60_000) throw new ConfigError(`PGBPM_EVENT_POLL_INTERVAL must be between 50ms and 60s, got "${raw}"`);
  return ms;
}

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

function positiveInteger(env: NodeJS.ProcessEnv, name: string): number {
  const value = Number(env[name]);
  if (!Number.isInteger(value) || value < 1) throw new ConfigError(`${name} must be a positive integer, got "${env[name]}"`);
  return value;
}

function nonNegativeNumber(env: NodeJS.ProcessEnv, name: string): number {
  const value = Number(env[name]);
  if (!Number.isFinite(value) || value < 0) throw new ConfigError(`${name} must be a number of at least 0, got "${env[name]}"`);
  return value;
}

/** Milliseconds of "10000", "250ms", "10s" or "2min" (PostgreSQL's units for statement_timeout). */
export function parseDuration(raw: string, name: string): number {
  const match = /^\s*(\d+)\s*(ms|s|min)?\s*$/.exec(raw);
  if (!match) throw new ConfigError(`${name} must be milliseconds or a number with ms, s or min, got "${raw}"`);
  const factor = match[2] === 's' ? 1000 : match[2] === 'min' ? 60_000 : 1;
  return Number(match[1]) * factor;
}
