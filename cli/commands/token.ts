import { parseArgs } from 'node:util';
import { API_ROLES, ConfigError, claimNamesFromEnv, isApiRole, isProduction, resolveSecret, type ApiRole } from '../../server/config';
import { mintToken } from '../../server/token';
import { CliError, UsageError, errorMessage } from '../errors';
import { err, out } from '../io';

export const summary = 'mint a development JWT for the GraphQL API (HS256, PGBPM_JWT_SECRET)';

export const usage = `usage: pgbpm token --tenant T --roles R[,R...] [--user U] [--groups G[,G...]] [--expires 1h]

Prints an HS256 JWT for the GraphQL API, signed with PGBPM_JWT_SECRET, with the
claims the server reads (names from PGBPM_JWT_TENANT_CLAIM, _USER_CLAIM,
_ROLES_CLAIM, _GROUPS_CLAIM; iss/aud from PGBPM_JWT_ISSUER/_AUDIENCE).
Without PGBPM_JWT_SECRET and DATABASE_URL it uses the built-in development
secret of the embedded database (as pgbpm start/serve do). Refused when
NODE_ENV=production: production tokens come from your identity provider.

  --tenant T     tenant (required)
  --roles R,...  ${API_ROLES.join(', ')} (required; the server uses the first)
  --user U       user id (sub); needed for bpm_user
  --groups G,... groups (for candidate groups of user tasks)
  --expires D    lifetime: 30m, 1h (default), 12h, 7d, …`;

function list(value: string | undefined): string[] {
  return (value ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
}

export async function run(args: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      strict: true,
      options: {
        tenant: { type: 'string', short: 't' },
        user: { type: 'string', short: 'u' },
        roles: { type: 'string', short: 'r' },
        groups: { type: 'string', short: 'g' },
        expires: { type: 'string', default: '1h' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (e) {
    throw new UsageError(`pgbpm token: ${errorMessage(e)}\n\n${usage}`);
  }
  const { values } = parsed;
  if (values.help) {
    out(usage);
    return 0;
  }
  if (isProduction()) throw new CliError('pgbpm token: refused with NODE_ENV=production (use tokens of your identity provider)');
  if (!values.tenant) throw new UsageError(`pgbpm token: --tenant is required\n\n${usage}`);
  const roles = list(values.roles);
  if (roles.length === 0) throw new UsageError(`pgbpm token: --roles is required (${API_ROLES.join(', ')})`);
  const bad = roles.find((r) => !isApiRole(r));
  if (bad !== undefined) throw new UsageError(`pgbpm token: unknown role "${bad}" (roles: ${API_ROLES.join(', ')})`);
  const expires = values.expires as string;
  if (!/^\d+\s*(s|sec|secs|second|seconds|m|min|mins|minute|minutes|h|hr|hrs|hour|hours|d|day|days|w|week|weeks)$/i.test(expires)) {
    throw new UsageError(`pgbpm token: --expires must be a duration like 30m, 1h, 7d; got "${expires}"`);
  }

  let resolved;
  try {
    resolved = resolveSecret(process.env, { allowDevSecret: !process.env.DATABASE_URL });
  } catch (e) {
    if (e instanceof ConfigError) throw new CliError(`pgbpm token: ${e.message}`);
    throw e;
  }
  if (!resolved) {
    throw new CliError(
      'pgbpm token: no secret: set PGBPM_JWT_SECRET (the HS256 secret the API verifies with; with PGBPM_JWKS_URL, ' +
        'tokens come from your identity provider)',
    );
  }
  if (resolved.dev) err('pgbpm token: signed with the built-in development secret (embedded database only)');
  const token = await mintToken(
    { tenant: values.tenant, user: values.user ?? null, roles: roles as ApiRole[], groups: list(values.groups) },
    {
      secret: resolved.secret,
      claims: claimNamesFromEnv(),
      expiresIn: expires,
      issuer: process.env.PGBPM_JWT_ISSUER || null,
      audience: process.env.PGBPM_JWT_AUDIENCE || null,
    },
  );
  out(token);
  return 0;
}
