/**
 * Bearer-token authentication of API requests (jose), before GraphQL.
 *
 * A request reaches GraphQL only with a token that verifies (signature with
 * an allowed algorithm, `exp` present and not passed, `iss`/`aud` when
 * configured) and whose claims name a tenant and an API role. Anything else
 * is answered here: 401 (no token, malformed, forged, expired, wrong issuer
 * or audience) or 403 (authentic, but no tenant, no API role, bad groups).
 * There is no anonymous or default role.
 */
import type { IncomingMessage } from 'node:http';
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import { createRemoteJWKSet, errors as joseErrors, jwtVerify, type JWTPayload, type JWTVerifyGetKey } from 'jose';
import { API_ROLES, isApiRole, type ApiRole, type AuthConfig, type ClaimNames } from './config';

/** Who is calling: what becomes role, bpm.tenant_id, bpm.user_id and bpm.groups. */
export interface Principal {
  role: ApiRole;
  tenant: string;
  user: string | null;
  groups: string[];
}

export type AuthFailure = { ok: false; status: 401 | 403; code: 'UNAUTHENTICATED' | 'FORBIDDEN'; message: string };
/** `expiresAt`: the token's `exp` (seconds since the epoch), when known; long-lived connections end then. */
export type AuthResult = { ok: true; principal: Principal; expiresAt?: number } | AuthFailure;

const HS_ALGORITHMS = ['HS256'];
const ASYMMETRIC_ALGORITHMS = ['RS256', 'ES256'];
/** Longer Authorization headers are refused without parsing. */
const MAX_TOKEN_LENGTH = 16 * 1024;

function unauthenticated(message: string): AuthFailure {
  return { ok: false, status: 401, code: 'UNAUTHENTICATED', message };
}

function forbidden(message: string): AuthFailure {
  return { ok: false, status: 403, code: 'FORBIDDEN', message };
}

/** A claim by exact name, else (for names with dots, e.g. `realm_access.roles`) by path. */
export function readClaim(payload: JWTPayload, name: string): unknown {
  if (Object.prototype.hasOwnProperty.call(payload, name)) return payload[name];
  if (!name.includes('.')) return undefined;
  let value: unknown = payload;
  for (const part of name.split('.')) {
    if (value === null || typeof value !== 'object' || Array.isArray(value)) return undefined;
    if (!Object.prototype.hasOwnProperty.call(value, part)) return undefined;
    value = (value as Record<string, unknown>)[part];
  }
  return value;
}

/** An array of strings, or one string of names separated by commas or spaces. */
function stringList(value: unknown): string[] | null {
  if (value === undefined || value === null) return [];
  if (typeof value === 'string') return value.split(/[\s,]+/).filter((s) => s.length > 0);
  if (Array.isArray(value) && value.every((v): v is string => typeof v === 'string')) return value;
  return null;
}

/** Maps verified claims to a Principal (403 when they do not make an API caller). */
export function principalFromClaims(payload: JWTPayload, claims: ClaimNames): AuthResult {
  const tenantClaim = readClaim(payload, claims.tenant);
  const tenant = typeof tenantClaim === 'number' ? String(tenantClaim) : tenantClaim;
  if (typeof tenant !== 'string' || tenant.trim() === '') {
    return forbidden(`token has no tenant (claim "${claims.tenant}")`);
  }

  const roles = stringList(readClaim(payload, claims.roles));
  if (roles === null) return forbidden(`claim "${claims.roles}" must be a string or an array of strings`);
  // the first API role in the claim's order; other roles of the identity provider are ignored
  const role = roles.find(isApiRole);
  if (!role) return forbidden(`token names no API role (claim "${claims.roles}" must include one of ${API_ROLES.join(', ')})`);

  const userClaim = readClaim(payload, claims.user);
  if (userClaim !== undefined && userClaim !== null && typeof userClaim !== 'string') {
    return forbidden(`claim "${claims.user}" must be a string`);
  }
  const user = typeof userClaim === 'string' && userClaim !== '' ? userClaim : null;

  const groupsClaim = readClaim(payload, claims.groups);
  let groups: string[];
  if (typeof groupsClaim === 'string') {
    groups = groupsClaim.split(',').map((g) => g.trim()).filter((g) => g.length > 0);
  } else if (groupsClaim === undefined || groupsClaim === null) {
    groups = [];
  } else if (Array.isArray(groupsClaim) && groupsClaim.every((g): g is string => typeof g === 'string')) {
    // bpm.groups is comma-separated: a comma inside a name would add a group
    if (groupsClaim.some((g) => g.includes(','))) return forbidden(`group names (claim "${claims.groups}") must not contain commas`);
    groups = groupsClaim.filter((g) => g.length > 0);
  } else {
    return forbidden(`claim "${claims.groups}" must be a string or an array of strings`);
  }

  return { ok: true, principal: { role, tenant, user, groups } };
}

function describeJoseError(e: unknown): string {
  if (e instanceof joseErrors.JWTExpired) return 'token has expired';
  if (e instanceof joseErrors.JWTClaimValidationFailed) {
    if (e.claim === 'iss') return 'token issuer is not accepted';
    if (e.claim === 'aud') return 'token audience is not accepted';
    if (e.claim === 'exp') return 'token has no expiry (exp)';
    return `token claim "${e.claim}" is not valid`;
  }
  if (e instanceof joseErrors.JOSEAlgNotAllowed) return 'token algorithm is not accepted';
  if (e instanceof joseErrors.JWSSignatureVerificationFailed) return 'token signature is invalid';
  if (e instanceof joseErrors.JWKSNoMatchingKey) return 'token signing key is unknown';
  if (e instanceof joseErrors.JWSInvalid || e instanceof joseErrors.JWTInvalid) return 'token is malformed';
  return 'token is invalid';
}

export interface Authenticator {
  /** Authenticates an Authorization header value (`Bearer <JWT>`). */
  authenticate(authorization: string | undefined): Promise<AuthResult>;
}

export function createAuthenticator(config: AuthConfig, log: (message: string) => void = () => undefined): Authenticator {
  const { secret } = config;
  const jwks = config.jwksUrl ? createRemoteJWKSet(config.jwksUrl) : null;
  if (!secret && !jwks) throw new Error('createAuthenticator: neither an HS256 secret nor a JWKS URL is configured');
  const algorithms = [...(secret ? HS_ALGORITHMS : []), ...(jwks ? ASYMMETRIC_ALGORITHMS : [])];

  const getKey: JWTVerifyGetKey = (header, token) => {
    if (header.alg !== undefined && HS_ALGORITHMS.includes(header.alg)) {
      if (!secret) throw new joseErrors.JOSEAlgNotAllowed('HS256 is not configured');
      return secret;
    }
    if (!jwks) throw new joseErrors.JOSEAlgNotAllowed(`${header.alg ?? 'no algorithm'} is not configured`);
    return jwks(header, token);
  };

  // Tokens that verified, until they expire: a client sends the same token
  // with every request, and verifying its signature again each time (HMAC or
  // ECDSA/RSA through WebCrypto) was 7 % of the server's CPU under load. Keyed
  // by the whole token, signature included; only successes are kept; bounded
  // (oldest out first). A token is stateless, so a cached one is exactly as
  // valid as a verified one until its exp (+ the clock tolerance jose allows).
  const verified = new Map<string, { result: AuthResult; validUntilMs: number }>();

  return {
    async authenticate(authorization) {
      if (!authorization) return unauthenticated('missing bearer token (Authorization: Bearer <JWT>)');
      if (authorization.length > MAX_TOKEN_LENGTH) return unauthenticated('token is too large');
      const match = /^Bearer[ ]+([A-Za-z0-9_\-.=]+)[ ]*$/i.exec(authorization);
      if (!match) return unauthenticated('Authorization header must be "Bearer <JWT>"');
      const token = match[1] as string;
      const cached = verified.get(token);
      if (cached !== undefined) {
        if (Date.now() < cached.validUntilMs) return cached.result;
        verified.delete(token);
      }
      let payload: JWTPayload;
      try {
        const result = await jwtVerify(token, getKey, {
          algorithms,
          issuer: config.issuer ?? undefined,
          audience: config.audience ?? undefined,
          requiredClaims: ['exp'],
          clockTolerance: config.clockToleranceSeconds,
        });
        payload = result.payload;
      } catch (e) {
        if (!(e instanceof joseErrors.JOSEError)) {
          // e.g. the JWKS endpoint cannot be reached: still no access, but worth a log line
          log(`token verification failed: ${e instanceof Error ? e.message : String(e)}`);
        } else if (e instanceof joseErrors.JWKSTimeout || e instanceof joseErrors.JWKSInvalid) {
          log(`token verification failed: ${e.message}`);
        }
        return unauthenticated(describeJoseError(e));
      }
      const principal = principalFromClaims(payload, config.claims);
      if (!principal.ok || typeof payload.exp !== 'number') return principal;
      const result: AuthResult = { ...principal, expiresAt: payload.exp };
      if (verified.size >= VERIFIED_TOKENS_KEPT) verified.delete(verified.keys().next().value as string);
      verified.set(token, { result, validUntilMs: (payload.exp + config.clockToleranceSeconds) * 1000 });
      return result;
    },
  };
}

/** How many verified tokens an authenticator keeps (about 1 KB each). */
const VERIFIED_TOKENS_KEPT = 10_000;

/** Principals of authenticated requests, for grafast.context (keyed by the request object). */
const principals = new WeakMap<IncomingMessage, Principal>();

export function principalOf(req: IncomingMessage | undefined): Principal | undefined {
  return req ? principals.get(req) : undefined;
}

export function sendAuthFailure(res: Response, failure: AuthFailure): void {
  if (failure.status === 401) res.set('WWW-Authenticate', 'Bearer error="invalid_token"');
  res.status(failure.status).json({ errors: [{ message: failure.message, extensions: { code: failure.code } }] });
}

/** Express middleware: authenticates or answers 401/403 itself. */
export function authMiddleware(authenticator: Authenticator): RequestHandler {
  return (req: Request, res: Response, next: NextFunction): void => {
    authenticator.authenticate(req.get('authorization')).then(
      (result) => {
        if (!result.ok) {
          sendAuthFailure(res, result);
          return;
        }
        principals.set(req, result.principal);
        next();
      },
      (e: unknown) => next(e),
    );
  };
}

/** The pgSettings of a principal, applied by PostGraphile with set_config(…, true) per transaction. */
export function pgSettingsFor(principal: Principal): Record<string, string> {
  return {
    role: principal.role,
    'bpm.tenant_id': principal.tenant,
    'bpm.user_id': principal.user ?? '',
    'bpm.groups': principal.groups.join(','),
  };
}
