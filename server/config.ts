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

export interface ServerConfig {
  auth: AuthConfig;
  /** NODE_ENV === 'production': no GraphiQL, no introspection. */
  production: boolean;
  /** Largest accepted request body in bytes. */
  maxRequestBytes: number;
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
  return { auth: authConfigFromEnv(env, options), production: isProduction(env), maxRequestBytes };
}
