/**
 * Limits: query depth, field count and page size (rejected before any SQL),
 * statement_timeout per request, rate limit per tenant, no suggestions in
 * production; and /metrics without a token or monitoring login.
 *
 * "Before any SQL" is shown with a lock: while a superuser transaction holds
 * bpm.process_instance in ACCESS EXCLUSIVE mode, any query that reads it
 * waits (until the statement_timeout), and rejected queries answer at once.
 */
import type pg from 'pg';
import { requestPgSettings } from '../../../server/app';
import { createRateLimiter } from '../../../server/limits';
import { createTestDb, type TestDb } from '../../helpers/db';
import { startTestApi, token, type TestApi } from './support';

const TIMEOUT_MS = 400;

let db: TestDb;
let t: TestApi;
let tenantSeq = 0;

beforeAll(async () => {
  db = await createTestDb();
  t = await startTestApi(db, {
    production: true,
    config: { statementTimeoutMs: TIMEOUT_MS, maxQueryDepth: 6, maxQueryFields: 40, maxPageSize: 100, rateLimit: 0.01, rateLimitBurst: 3 },
  });
});

afterAll(async () => {
  await t?.close();
  await db?.close();
});

/** An admin of a tenant of its own (the rate limit allows 3 requests per tenant in this file). */
async function freshAdmin(): Promise<string> {
  tenantSeq += 1;
  return token({ tenant: `limits-${tenantSeq}`, sub: 'ada', roles: ['bpm_admin'] });
}

/** Runs fn while process_instance is locked by another transaction. */
async function whileLocked<T>(fn: () => Promise<T>): Promise<T> {
  const client: pg.PoolClient = await db.root.connect();
  try {
    await client.query('begin');
    await client.query('lock table bpm.process_instance in access exclusive mode');
    return await fn();
  } finally {
    await client.query('rollback').catch(() => undefined);
    client.release();
  }
}

async function timed<T>(fn: () => Promise<T>): Promise<{ value: T; ms: number }> {
  const start = performance.now();
  const value = await fn();
  return { value, ms: performance.now() - start };
}

const DEEP = `{ processInstances { nodes { userTasks { nodes { instance { userTasks { nodes { instance { id } } } } } } } } }`;

describe('query limits (checked before execution)', () => {
  test('a query nested deeper than the limit is rejected without touching the database', async () => {
    const admin = await freshAdmin();
    const { value: reply, ms } = await whileLocked(() => timed(() => t.gql(admin, DEEP)));
    expect(reply.body.data ?? null).toBeNull();
    expect(reply.body.errors).toEqual([
      expect.objectContaining({ message: expect.stringMatching(/too deep.*6 levels/), extensions: expect.objectContaining({ code: 'QUERY_TOO_DEEP' }) }),
    ]);
    expect(ms).toBeLessThan(TIMEOUT_MS);
  });

  test('fragments and aliases count: too many fields is rejected', async () => {
    const admin = await freshAdmin();
    const fields = Array.from({ length: 25 }, (_, i) => `a${i}: id`).join(' ');
    const query = `fragment F on ProcessInstance { ${fields} } { one: processInstances { nodes { ...F } } two: processInstances { nodes { ...F } } }`;
    const reply = await t.gql(admin, query);
    expect(reply.body.errors?.[0]?.extensions?.code).toBe('QUERY_TOO_COMPLEX');
    // a fragment cycle is reported by GraphQL, not looped over
    const cycle = await t.gql(admin, 'fragment A on Query { ...B } fragment B on Query { ...A } { ...A }');
    expect(cycle.body.errors?.length).toBeGreaterThan(0);
  });

  test('first/last above the page size, literal or in a variable, are rejected without touching the database', async () => {
    const admin = await freshAdmin();
    const { value: replies, ms } = await whileLocked(() =>
      timed(() =>
        Promise.all([
          t.gql(admin, '{ processInstances(first: 101) { nodes { id } } }'),
          t.gql(admin, 'query Q($n: Int) { processInstances(last: $n) { nodes { id } } }', { n: 5000 }),
          t.gql(admin, 'query Q($n: Int = 1000) { processInstances(first: $n) { nodes { id } } }'),
        ]),
      ),
    );
    for (const reply of replies) {
      expect(reply.body.data ?? null).toBeNull();
      expect(reply.body.errors).toEqual([
        expect.objectContaining({ message: expect.stringMatching(/must not exceed 100/), extensions: expect.objectContaining({ code: 'PAGE_SIZE_TOO_LARGE' }) }),
      ]);
    }
    expect(ms).toBeLessThan(TIMEOUT_MS);
  });

  test('queries within the limits work', async () => {
    const admin = await freshAdmin();
    const reply = await t.gql(admin, 'query Q($n: Int) { processInstances(first: $n) { totalCount nodes { definition { key } } } }', { n: 100 });
    expect(reply.body).toEqual({ data: { processInstances: { totalCount: 0, nodes: [] } } });
  });

  test('no "Did you mean" suggestions in production', async () => {
    const admin = await freshAdmin();
    const reply = await t.gql(admin, '{ processInstancez { totalCount } }');
    expect(reply.body.errors?.[0]?.message).toBe('Cannot query field "processInstancez" on type "Query".');
    expect(JSON.stringify(reply.body)).not.toMatch(/Did you mean/);
  });
});

describe('statement_timeout', () => {
  test('is part of every request’s pgSettings (PGBPM_STATEMENT_TIMEOUT; 0: none)', () => {
    const principal = { role: 'bpm_user' as const, tenant: 't', user: 'u', groups: [] };
    expect(requestPgSettings(principal, 2500)).toEqual(expect.objectContaining({ statement_timeout: '2500', role: 'bpm_user' }));
    expect(requestPgSettings(principal, 0)).not.toHaveProperty('statement_timeout');
    expect(requestPgSettings(principal)).toEqual(expect.objectContaining({ statement_timeout: '10000' }));
  });

  test('a query that waits longer is cancelled, with SQLSTATE 57014', async () => {
    const admin = await freshAdmin();
    const { value: reply, ms } = await whileLocked(() => timed(() => t.gql(admin, '{ processInstances { totalCount } }')));
    expect(reply.body.errors).toEqual([expect.objectContaining({ message: expect.stringMatching(/statement timeout/), extensions: { code: '57014' } })]);
    expect(ms).toBeGreaterThanOrEqual(TIMEOUT_MS - 50);
    expect(ms).toBeLessThan(5_000);
  });
});

describe('rate limit per tenant', () => {
  test('429 with Retry-After after the burst, other tenants unaffected', async () => {
    const a = await freshAdmin();
    const b = await freshAdmin();
    for (let i = 0; i < 3; i++) expect((await t.gql(a, '{ __typename }')).status).toBe(200);
    const limited = await t.gql(a, '{ __typename }');
    expect(limited.status).toBe(429);
    expect(limited.body.errors).toEqual([expect.objectContaining({ extensions: { code: 'RATE_LIMITED' } })]);
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    // same tenant, another user or role: same bucket
    const a2 = await token({ tenant: `limits-${tenantSeq - 1}`, sub: 'other', roles: ['bpm_user'] });
    expect((await t.gql(a2, '{ __typename }')).status).toBe(429);
    expect((await t.gql(b, '{ __typename }')).status).toBe(200);
    // health and metrics are not limited
    expect((await fetch(`${t.api.url}/health`)).status).toBe(200);
  });

  test('token bucket refills at the configured rate', () => {
    let now = 0;
    const limiter = createRateLimiter(2, 2, () => now);
    expect([limiter.take('x'), limiter.take('x')]).toEqual([0, 0]);
    expect(limiter.take('x')).toBeCloseTo(0.5);
    now = 500;
    expect(limiter.take('x')).toBe(0);
    expect(limiter.take('x')).toBeGreaterThan(0);
    expect(limiter.take('y')).toBe(0);
  });
});

describe('/metrics without token or monitoring login', () => {
  test('open, HTTP metrics only (no engine gauges)', async () => {
    const res = await fetch(`${t.api.url}/metrics`);
    expect(res.status).toBe(200);
    const text = await res.text();
    expect(text).toMatch(/^pgbpm_http_requests_total\{operation="Q",status="200"\} \d+$/m);
    expect(text).toMatch(/^pgbpm_http_requests_total\{operation="anonymous",status="429"\} 2$/m);
    expect(text).not.toMatch(/pgbpm_process_instances|pgbpm_metrics_database_up/);
  });
});
