/**
 * Operations: request ids, JSON logs and /metrics (HTTP metrics per GraphQL
 * operation, and engine gauges read through a monitoring login).
 */
import { makeMaskError } from '../../../server/errors';
import { createLogger, withRequestState } from '../../../server/observability';
import { GraphQLError, getIntrospectionQuery } from 'postgraphile/graphql';
import { createTestDb, type TestDb } from '../../helpers/db';
import { DEPLOY, START, USER_TASKS, fixture, startTestApi, token, type DeployData, type TestApi } from './support';

const METRICS_TOKEN = 'metrics-token-0123456789';

let db: TestDb;
let t: TestApi;
let adminA: string;
let adminB: string;

beforeAll(async () => {
  db = await createTestDb();
  // the superuser bypasses RLS: engine gauges over all tenants
  t = await startTestApi(db, { config: { metricsToken: METRICS_TOKEN, metricsDatabaseUrl: db.urls.root } });
  adminA = await token({ tenant: 'ops-a', sub: 'ada', roles: ['bpm_admin'] });
  adminB = await token({ tenant: 'ops-b', sub: 'bob', roles: ['bpm_admin'] });
});

afterAll(async () => {
  await t?.close();
  await db?.close();
});

async function scrape(authorization: string | null = `Bearer ${METRICS_TOKEN}`): Promise<Response> {
  return fetch(`${t.api.url}/metrics`, { headers: authorization ? { authorization } : {} });
}

function parseLogs(): Array<Record<string, unknown>> {
  return t.logs.map((line) => JSON.parse(line) as Record<string, unknown>);
}

describe('request ids', () => {
  test('generated when absent, echoed in the response and in the log line of the request', async () => {
    const reply = await t.gql(adminA, '{ __typename }');
    const id = reply.headers.get('x-request-id');
    expect(id).toMatch(/^[0-9a-f-]{36}$/);
    // the access log line is written when the response finishes
    await new Promise((r) => setTimeout(r, 20));
    expect(parseLogs()).toContainEqual(expect.objectContaining({ reqId: id, msg: 'request', method: 'POST', path: '/graphql', status: 200 }));
  });

  test('a given x-request-id is honoured; an unusable one is replaced', async () => {
    const given = await t.gql(adminA, '{ __typename }', undefined, { headers: { 'x-request-id': 'req-42.abc:1' } });
    expect(given.headers.get('x-request-id')).toBe('req-42.abc:1');
    const bad = await t.gql(adminA, '{ __typename }', undefined, { headers: { 'x-request-id': 'x'.repeat(200) } });
    expect(bad.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
    const health = await fetch(`${t.api.url}/health`, { headers: { 'x-request-id': 'probe-1' } });
    expect(health.headers.get('x-request-id')).toBe('probe-1');
  });

  test('also on requests refused before GraphQL (401)', async () => {
    const reply = await t.gql(null, '{ __typename }', undefined, { headers: { 'x-request-id': 'no-token-1' } });
    expect(reply.status).toBe(401);
    expect(reply.headers.get('x-request-id')).toBe('no-token-1');
  });

  test('masked errors are logged with the request id', () => {
    const lines: string[] = [];
    const logger = createLogger({ write: (line) => lines.push(line) });
    const mask = makeMaskError((message, error) => logger.error({ err: error }, message));
    const masked = withRequestState({ id: 'req-masked' }, () =>
      mask(new GraphQLError('boom', { originalError: Object.assign(new Error('relation secret'), { code: 'XX000' }) })),
    );
    const line = JSON.parse(lines[0] ?? '{}') as { reqId?: string; msg?: string; level?: number; err?: { message?: string } };
    expect(line).toEqual(expect.objectContaining({ reqId: 'req-masked', msg: `internal error ${String(masked.extensions.errorId)}`, level: 50 }));
    expect(line.err?.message).toBe('relation secret');
  });
});

test('outside production, GraphQL still suggests field names', async () => {
  const reply = await t.gql(adminA, '{ processInstancez { totalCount } }');
  expect(reply.body.errors?.[0]?.message).toMatch(/Did you mean .*"processInstances"\?/);
});

test('the query limits leave GraphiQL’s introspection query alone', async () => {
  const reply = await t.gql<{ __schema: { types: unknown[] } }>(adminA, getIntrospectionQuery());
  expect(reply.body.errors).toBeUndefined();
  expect(reply.body.data?.__schema.types.length).toBeGreaterThan(10);
});

test('the NOTIFY leases, the raw deploy and the worker\'s job entry points are not mutations', async () => {
  const reply = await t.gql<{ __schema: { mutationType: { fields: Array<{ name: string }> } } }>(
    adminA,
    '{ __schema { mutationType { fields { name } } } }',
  );
  const names = reply.body.data?.__schema.mutationType.fields.map((f) => f.name) ?? [];
  expect(names).toEqual(expect.arrayContaining(['startProcess', 'completeTask', 'fetchAndLock', 'deployProcess', 'activateAdHocActivities']));
  for (const hidden of ['registerEventListener', 'registerTaskListener', 'deploy', 'fireTimer', 'fireDueTimers', 'continueAsync', 'processTaskDeadline', 'deliverDeferred']) {
    expect(names).not.toContain(hidden);
  }
});

describe('/metrics', () => {
  test('needs the metrics token when one is configured', async () => {
    expect((await scrape(null)).status).toBe(401);
    expect((await scrape('Bearer wrong')).status).toBe(401);
    expect((await scrape(`Bearer ${adminA}`)).status).toBe(401);
    const res = await scrape();
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain/);
  });

  test('counts GraphQL requests by operation name and status, with a latency histogram', async () => {
    await t.data(adminA, USER_TASKS); // named "Tasks" in the document
    await t.gql(adminA, '{ __typename }');
    await t.gql(null, '{ __typename }');
    const text = await (await scrape()).text();
    expect(text).toMatch(/^pgbpm_http_requests_total\{operation="Tasks",status="200"\} 1$/m);
    expect(text).toMatch(/^pgbpm_http_requests_total\{operation="anonymous",status="401"\} \d+$/m);
    expect(text).toMatch(/^pgbpm_http_requests_total\{operation="anonymous",status="200"\} \d+$/m);
    expect(text).toMatch(/^pgbpm_http_request_duration_seconds_bucket\{le="0\.005",operation="Tasks",status="200"\} \d+$/m);
    expect(text).toMatch(/^pgbpm_http_request_duration_seconds_count\{operation="Tasks",status="200"\} 1$/m);
    expect(text).toMatch(/^pgbpm_process_cpu_seconds_total /m);
    // no tenant in any label
    expect(text).not.toMatch(/ops-a|ops-b/);
  }, 20_000);

  test('the operation name of the request body picks the operation', async () => {
    await t.gql(adminA, 'query One { __typename } query Two { __typename }', undefined, { operationName: 'Two' });
    const text = await (await scrape()).text();
    expect(text).toMatch(/^pgbpm_http_requests_total\{operation="Two",status="200"\} 1$/m);
  });

  test('engine gauges summed over all tenants, read when scraped', async () => {
    for (const admin of [adminA, adminB]) {
      const deployed = await t.data<DeployData>(admin, DEPLOY, { files: [fixture('straight.bpmn'), fixture('external.bpmn')] });
      expect(deployed.deployProcess.problems).toEqual([]);
    }
    await t.data(adminA, START, { key: 'straight' });
    await t.data(adminA, START, { key: 'external' });
    await t.data(adminB, START, { key: 'straight' });
    const text = await (await scrape()).text();
    expect(text).toMatch(/^pgbpm_metrics_database_up 1$/m);
    expect(text).toMatch(/^pgbpm_process_instances\{state="active"\} 3$/m);
    expect(text).toMatch(/^pgbpm_user_tasks_open 2$/m);
    expect(text).toMatch(/^pgbpm_incidents_open 0$/m);
    expect(text).toMatch(/^pgbpm_external_tasks_open\{topic="work",locked="false"\} 1$/m);
    expect(text).not.toMatch(/ops-a|ops-b/);
  }, 20_000);

  test('the job queue by task and state: timers scheduled, deliveries due, jobs out of attempts', async () => {
    await db.root.query(`select graphile_worker.add_job('bpm_fire_timer', '{}', run_at => now() + interval '1 hour', job_key => 'metrics-later')`);
    await db.root.query(`select graphile_worker.add_job('bpm_deliver', '{}', job_key => 'metrics-due')`);
    await db.root.query(`select graphile_worker.add_job('bpm_continue', '{}', job_key => 'metrics-failed', max_attempts => 1)`);
    await db.root.query(`update graphile_worker._private_jobs set attempts = 1 where key = 'metrics-failed'`);
    try {
      const text = await (await scrape()).text();
      expect(text).toMatch(/^pgbpm_jobs\{task="bpm_fire_timer",state="scheduled"\} 1$/m);
      expect(text).toMatch(/^pgbpm_jobs\{task="bpm_deliver",state="due"\} 1$/m);
      expect(text).toMatch(/^pgbpm_jobs\{task="bpm_continue",state="failed"\} 1$/m);
    } finally {
      await db.root.query(`delete from graphile_worker._private_jobs where key like 'metrics-%'`);
    }
  });
});
