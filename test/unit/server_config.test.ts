/** Operations settings of the API from the environment (server/config.ts). */
import { ConfigError, parseDuration, serverConfigFromEnv } from '../../server/config';

const SECRET = { PGBPM_JWT_SECRET: 'x'.repeat(32) };

test('defaults: 10 s statement timeout, no rate limit in development, 100/s in production', () => {
  const dev = serverConfigFromEnv({ ...SECRET });
  expect(dev).toEqual(
    expect.objectContaining({
      statementTimeoutMs: 10_000,
      rateLimit: 0,
      maxQueryDepth: 12,
      maxQueryFields: 500,
      maxPageSize: 1000,
      metricsToken: null,
      metricsDatabaseUrl: null,
      logLevel: 'info',
      maxSubscriptionsPerConnection: 20,
      eventPollIntervalMs: 1000,
    }),
  );
  expect(serverConfigFromEnv({ ...SECRET, NODE_ENV: 'production' }).rateLimit).toBe(100);
  expect(serverConfigFromEnv({ ...SECRET, NODE_ENV: 'production', PGBPM_RATE_LIMIT: '0' }).rateLimit).toBe(0);
});

test('variables are read and checked', () => {
  const config = serverConfigFromEnv({
    ...SECRET,
    PGBPM_STATEMENT_TIMEOUT: '2s',
    PGBPM_RATE_LIMIT: '2.5',
    PGBPM_RATE_LIMIT_BURST: '10',
    PGBPM_MAX_QUERY_DEPTH: '8',
    PGBPM_MAX_QUERY_FIELDS: '100',
    PGBPM_MAX_PAGE_SIZE: '50',
    PGBPM_METRICS_TOKEN: 'tok',
    PGBPM_METRICS_DATABASE_URL: 'postgres://monitor@db/pgbpm',
    PGBPM_LOG_LEVEL: 'debug',
    PGBPM_WS_MAX_SUBSCRIPTIONS: '5',
    PGBPM_EVENT_POLL_INTERVAL: '250ms',
  });
  expect(config).toEqual(
    expect.objectContaining({
      statementTimeoutMs: 2000,
      rateLimit: 2.5,
      rateLimitBurst: 10,
      maxQueryDepth: 8,
      maxQueryFields: 100,
      maxPageSize: 50,
      metricsToken: 'tok',
      metricsDatabaseUrl: 'postgres://monitor@db/pgbpm',
      logLevel: 'debug',
      maxSubscriptionsPerConnection: 5,
      eventPollIntervalMs: 250,
    }),
  );
  expect([parseDuration('0', 'X'), parseDuration('250ms', 'X'), parseDuration('2min', 'X')]).toEqual([0, 250, 120_000]);
  for (const [name, value] of [
    ['PGBPM_STATEMENT_TIMEOUT', '10 seconds'],
    ['PGBPM_RATE_LIMIT', '-1'],
    ['PGBPM_MAX_QUERY_DEPTH', '0'],
    ['PGBPM_MAX_PAGE_SIZE', '1.5'],
    ['PGBPM_LOG_LEVEL', 'verbose'],
    ['PGBPM_WS_MAX_SUBSCRIPTIONS', '0'],
    ['PGBPM_EVENT_POLL_INTERVAL', '10ms'],
    ['PGBPM_EVENT_POLL_INTERVAL', '2min'],
  ] as const) {
    expect(() => serverConfigFromEnv({ ...SECRET, [name]: value })).toThrow(ConfigError);
  }
});
