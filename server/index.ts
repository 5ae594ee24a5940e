/**
 * pgbpm's GraphQL API server (PostGraphile v5 over the `bpm` schema).
 * See server/app.ts for the routes, server/auth.ts for tokens and
 * server/errors.ts for what errors clients see, server/limits.ts for query
 * and rate limits, server/observability.ts for logs and /metrics.
 */
export {
  createApiApp,
  requestPgSettings,
  startApiServer,
  GRAPHQL_PATH,
  GRAPHIQL_PATH,
  METRICS_PATH,
  type ApiOptions,
  type ApiServer,
  type ListenOptions,
} from './app';
export { createLogger, type Logger } from './observability';
export { createAuthenticator, pgSettingsFor, principalFromClaims, type Principal } from './auth';
export {
  API_ROLES,
  ConfigError,
  DEV_JWT_SECRET,
  authConfigFromEnv,
  claimNamesFromEnv,
  isApiRole,
  isProduction,
  resolveSecret,
  serverConfigFromEnv,
  type ApiRole,
  type AuthConfig,
  type ClaimNames,
  type ServerConfig,
} from './config';
export { mintToken, type TokenClaims } from './token';
