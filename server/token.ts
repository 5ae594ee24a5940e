/**
 * Minting HS256 tokens for development and tests (`pgbpm token`, the admin
 * token `pgbpm start` prints). Production tokens come from an identity
 * provider; the server only verifies.
 */
import { SignJWT } from 'jose';
import { API_ROLES, isApiRole, type ApiRole, type ClaimNames } from './config';

export interface TokenClaims {
  tenant: string;
  user?: string | null;
  roles: ApiRole[];
  groups?: string[];
}

export interface MintOptions {
  secret: Uint8Array;
  claims: ClaimNames;
  /** jose time span: "1h", "30m", "7d", … (default 1h). */
  expiresIn?: string;
  issuer?: string | null;
  audience?: string | null;
}

export async function mintToken(claims: TokenClaims, options: MintOptions): Promise<string> {
  if (!claims.tenant) throw new Error('a token needs a tenant');
  if (claims.roles.length === 0 || !claims.roles.every(isApiRole)) {
    throw new Error(`roles must be one or more of ${API_ROLES.join(', ')}`);
  }
  const groups = claims.groups ?? [];
  const bad = groups.find((g) => g.includes(','));
  if (bad !== undefined) throw new Error(`group names must not contain commas: ${bad}`);
  const payload: Record<string, unknown> = {
    [options.claims.tenant]: claims.tenant,
    [options.claims.roles]: claims.roles,
  };
  if (groups.length > 0) payload[options.claims.groups] = groups;
  if (claims.user) payload[options.claims.user] = claims.user;
  let jwt = new SignJWT(payload).setProtectedHeader({ alg: 'HS256', typ: 'JWT' }).setIssuedAt().setExpirationTime(options.expiresIn ?? '1h');
  if (options.issuer) jwt = jwt.setIssuer(options.issuer);
  if (options.audience) jwt = jwt.setAudience(options.audience);
  return jwt.sign(options.secret);
}
