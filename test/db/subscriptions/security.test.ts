/**
 * Who receives what over the WebSocket: the connection is authenticated like
 * an HTTP request (JWT in connectionParams), every read runs with the
 * subscriber's own role and settings, so tenant B receives nothing of tenant
 * A, a bpm_user receives the task events of tasks offered to them only, and
 * tenantEvents is for bpm_admin. Plus the connection's limits.
 */
import type pg from 'pg';
import { SignJWT, UnsecuredJWT } from 'jose';
import { createTestDb, type TestDb } from '../../helpers/db';
import { bpmnProcess } from '../../helpers/engine';
import { AUDIENCE, DEPLOY, ISSUER, startTestApi, token, type DeployData, type TestApi } from '../api_graphql/support';
import { EVENT_FIELDS, connect, currentEventId, sleep, type EventData, type WsClient } from './support';

const A = 'subs-a';
const B = 'subs-b';
const MAX_SUBSCRIPTIONS = 3;

/** Three parallel tasks: offered to group sales, to group hr, assigned to bob. */
const OFFERS = bpmnProcess(
  'offers',
  `<startEvent id="s"/><sequenceFlow id="f0" sourceRef="s" targetRef="fork"/>
  <parallelGateway id="fork"/>
  <sequenceFlow id="a1" sourceRef="fork" targetRef="sales"/><userTask id="sales" name="Sales" camunda:candidateGroups="sales"/>
  <sequenceFlow id="a2" sourceRef="sales" targetRef="join"/>
  <sequenceFlow id="b1" sourceRef="fork" targetRef="hr"/><userTask id="hr" name="HR" camunda:candidateGroups="hr"/>
  <sequenceFlow id="b2" sourceRef="hr" targetRef="join"/>
  <sequenceFlow id="c1" sourceRef="fork" targetRef="bobs"/><userTask id="bobs" name="Bob's" camunda:assignee="bob"/>
  <sequenceFlow id="c2" sourceRef="bobs" targetRef="join"/>
  <parallelGateway id="join"/><sequenceFlow id="f9" sourceRef="join" targetRef="e"/><endEvent id="e"/>`,
);

type TaskEvent = EventData & { userTask: { id: string; elementId: string; assignee: string | null } | null };
const TASK_EVENTS = `subscription($after: BigInt) { taskEvents(after: $after) { ${EVENT_FIELDS} userTask { id elementId assignee } } }`;
const TENANT_EVENTS = `subscription($after: BigInt) { tenantEvents(after: $after) { ${EVENT_FIELDS} } }`;
const INSTANCE_EVENTS = `subscription($id: UUID!, $after: BigInt) { instanceEvents(instanceId: $id, after: $after) { ${EVENT_FIELDS} } }`;

// servers, databases and waits for deliveries: slow on a loaded machine (hooks included)
jest.setTimeout(30_000);

let db: TestDb;
let t: TestApi;
let adminA: pg.Client;
const tokens: Record<string, string> = {};
const clients: WsClient[] = [];

function ws(tokenValue: string | null, params?: Record<string, unknown>): WsClient {
  const client = connect(t.api.graphqlUrl, tokenValue, params);
  clients.push(client);
  return client;
}

async function eventIdsOf(instanceId: string): Promise<string[]> {
  const { rows } = await db.root.query<{ id: string }>('select id::text as id from bpm.event where instance_id = $1 order by id', [instanceId]);
  return rows.map((r) => r.id);
}

beforeAll(async () => {
  db = await createTestDb();
  t = await startTestApi(db, { config: { maxSubscriptionsPerConnection: MAX_SUBSCRIPTIONS } });
  tokens.adminA = await token({ tenant: A, sub: 'ada', roles: ['bpm_admin'] });
  tokens.adminB = await token({ tenant: B, sub: 'bea', roles: ['bpm_admin'] });
  tokens.alice = await token({ tenant: A, sub: 'alice', roles: ['bpm_user'], groups: ['sales'] });
  tokens.carol = await token({ tenant: A, sub: 'carol', roles: ['bpm_user'], groups: ['sales'] });
  tokens.bob = await token({ tenant: A, sub: 'bob', roles: ['bpm_user'] });
  tokens.dave = await token({ tenant: A, sub: 'dave', roles: ['bpm_user'] });
  tokens.designerA = await token({ tenant: A, sub: 'dan', roles: ['bpm_designer'] });
  for (const admin of [tokens.adminA, tokens.adminB]) {
    const deployed = await t.data<DeployData>(admin, DEPLOY, { files: [{ name: 'offers.bpmn', xml: OFFERS }] });
    expect(deployed.deployProcess.problems).toEqual([]);
  }
  adminA = await db.connectAs({ role: 'bpm_admin', tenant: A, user: 'ada' });
});

afterAll(async () => {
  await Promise.all(clients.map((c) => c.dispose().catch(() => undefined)));
  await t?.close();
  await db?.close();
});

describe('what each subscriber receives', () => {
  test('tenant B receives nothing of tenant A; a bpm_user only the tasks offered to them; a task assigned away is revoked once', async () => {
    const afterA = await currentEventId(db, A);
    const afterB = await currentEventId(db, B);
    const adminAWs = ws(tokens.adminA as string);
    const adminBWs = ws(tokens.adminB as string);
    const aliceWs = ws(tokens.alice as string);
    const carolWs = ws(tokens.carol as string);
    const bobWs = ws(tokens.bob as string);
    const ofA = adminAWs.subscribe<{ tenantEvents: EventData }>(TENANT_EVENTS, { after: afterA });
    const bAll = adminBWs.subscribe<{ tenantEvents: EventData }>(TENANT_EVENTS, { after: afterB });
    const bTasks = adminBWs.subscribe<{ taskEvents: TaskEvent }>(TASK_EVENTS, { after: afterB });
    // tenant B resumes from an id of tenant A: still nothing of A
    const bFromA = adminBWs.subscribe<{ taskEvents: TaskEvent }>(TASK_EVENTS, { after: afterA });
    const alice = aliceWs.subscribe<{ taskEvents: TaskEvent }>(TASK_EVENTS, { after: afterA });
    const carol = carolWs.subscribe<{ taskEvents: TaskEvent }>(TASK_EVENTS, { after: afterA });
    const bob = bobWs.subscribe<{ taskEvents: TaskEvent }>(TASK_EVENTS, { after: afterA });

    const { rows } = await adminA.query<{ id: string }>(`select id from bpm.start_process('offers')`);
    const instanceId = rows[0]?.id as string;
    const expected = await eventIdsOf(instanceId);
    expect(expected.length).toBeGreaterThan(6);
    await ofA.waitForItems(expected.length);
    expect(ofA.items.map((i) => i.data.tenantEvents.id)).toEqual(expected);

    const [aliceCreated] = await alice.waitForItems(1);
    const [carolCreated] = await carol.waitForItems(1);
    const [bobCreated] = await bob.waitForItems(1);
    expect(aliceCreated?.data.taskEvents).toMatchObject({ kind: 'taskCreated', elementId: 'sales', userTask: { elementId: 'sales', assignee: null } });
    expect(carolCreated?.data.taskEvents).toMatchObject({ kind: 'taskCreated', elementId: 'sales' });
    expect(bobCreated?.data.taskEvents).toMatchObject({ kind: 'taskCreated', elementId: 'bobs', userTask: { assignee: 'bob' } });
    const salesTask = aliceCreated?.data.taskEvents.subjectId as string;

    // carol claims the sales task: she sees it assigned to her. Alice, who neither started the
    // instance nor holds another task of it, no longer sees the instance, nor its events (RLS)
    const carolDb = await db.connectAs({ role: 'bpm_user', tenant: A, user: 'carol', groups: ['sales'] });
    const aliceDb = await db.connectAs({ role: 'bpm_user', tenant: A, user: 'alice', groups: ['sales'] });
    try {
      await carolDb.query('select bpm.claim_task($1)', [salesTask]);
      const [, carolAssigned] = await carol.waitForItems(2);
      expect(carolAssigned?.data.taskEvents).toMatchObject({ kind: 'taskAssigned', subjectId: salesTask, userTask: { assignee: 'carol' } });

      // an instance alice started herself: she keeps seeing it, and is told once that the task left her list
      const { rows: own } = await aliceDb.query<{ id: string }>(`select id from bpm.start_process('offers')`);
      const [, aliceCreated2] = await alice.waitForItems(2);
      expect(aliceCreated2?.data.taskEvents).toMatchObject({ kind: 'taskCreated', instanceId: own[0]?.id, elementId: 'sales' });
      const salesTask2 = aliceCreated2?.data.taskEvents.subjectId as string;
      await carol.waitForItems(3);
      await carolDb.query('select bpm.claim_task($1)', [salesTask2]);
      const [, , aliceRevoked] = await alice.waitForItems(3);
      expect(aliceRevoked?.data.taskEvents).toMatchObject({ kind: 'taskAssigned', subjectId: salesTask2, userTask: null });
      // carol completes both: alice hears nothing more of tasks that are no longer hers
      await carolDb.query(`select bpm.complete_task($1, '{}')`, [salesTask]);
      await carolDb.query(`select bpm.complete_task($1, '{}')`, [salesTask2]);
      const carolItems = await carol.waitForItems(6);
      expect(carolItems.map((i) => [i.data.taskEvents.kind, i.data.taskEvents.subjectId === salesTask ? 1 : 2])).toEqual([
        ['taskCreated', 1],
        ['taskAssigned', 1],
        ['taskCreated', 2],
        ['taskAssigned', 2],
        ['taskCompleted', 1],
        ['taskCompleted', 2],
      ]);
      await bob.waitForItems(2); // bob's task of alice's instance
    } finally {
      await carolDb.end();
      await aliceDb.end();
    }

    await sleep(1200); // past a fallback poll
    expect(alice.items.map((i) => i.data.taskEvents.kind)).toEqual(['taskCreated', 'taskCreated', 'taskAssigned']);
    expect(bob.items.map((i) => [i.data.taskEvents.kind, i.data.taskEvents.elementId])).toEqual([
      ['taskCreated', 'bobs'],
      ['taskCreated', 'bobs'],
    ]);
    expect(carol.items).toHaveLength(6);
    // the hr task (and everything else) never reached the users
    for (const s of [alice, carol, bob]) {
      expect(s.items.every((i) => i.data.taskEvents.elementId !== 'hr')).toBe(true);
      expect(s.errors).toEqual([]);
    }
    for (const s of [bAll, bTasks, bFromA]) {
      expect(s.items).toEqual([]);
      expect(s.errors).toEqual([]);
      expect(s.completed).toBe(false);
    }
  }, 20_000);

  test('a task offered to a user by update_task reaches them as taskUpdated; withdrawn, it is revoked once', async () => {
    // dave starts the instance, so that he keeps seeing it (and its events) when the task is withdrawn
    // from him; started before the subscription, so that the taskCreated event stays out of reach
    // (visibility is decided when an event is read)
    const daveDb = await db.connectAs({ role: 'bpm_user', tenant: A, user: 'dave' });
    const { rows } = await daveDb.query<{ id: string }>(`select id from bpm.start_process('offers')`);
    await daveDb.end();
    const after = await currentEventId(db, A);
    const daveWs = ws(tokens.dave as string);
    const dave = daveWs.subscribe<{ taskEvents: TaskEvent }>(TASK_EVENTS, { after });
    const hr = await db.root.query<{ id: string }>(`select id from bpm.user_task where instance_id = $1 and element_id = 'hr'`, [rows[0]?.id]);
    const hrTask = hr.rows[0]?.id as string;
    await adminA.query(`select bpm.update_task($1, '{"candidateUsers": ["dave"]}')`, [hrTask]);
    const [offered] = await dave.waitForItems(1);
    expect(offered?.data.taskEvents).toMatchObject({ kind: 'taskUpdated', subjectId: hrTask, userTask: { id: hrTask, elementId: 'hr' } });
    await adminA.query(`select bpm.update_task($1, '{"candidateUsers": null, "priority": 70}')`, [hrTask]);
    const [, withdrawn] = await dave.waitForItems(2);
    expect(withdrawn?.data.taskEvents).toMatchObject({ kind: 'taskUpdated', subjectId: hrTask, userTask: null });
    await adminA.query(`select bpm.update_task($1, '{"priority": 60}')`, [hrTask]);
    await sleep(1200); // past a fallback poll
    expect(dave.items).toHaveLength(2);
    expect(dave.errors).toEqual([]);
  });

  test('instanceEvents of an instance of another tenant: NOT_FOUND, never data', async () => {
    const { rows } = await adminA.query<{ id: string }>(`select id from bpm.start_process('offers')`);
    const instanceId = rows[0]?.id as string;
    const client = ws(tokens.adminB as string);
    const sub = client.subscribe<{ instanceEvents: EventData }>(INSTANCE_EVENTS, { id: instanceId, after: '0' });
    await sub.ended();
    expect(sub.items).toEqual([]);
    expect(sub.errors).toEqual([expect.objectContaining({ message: `process instance ${instanceId} not found`, extensions: { code: 'NOT_FOUND' } })]);
    // and an instance of A that dave (a user without a task in it, who did not start it) may not see: the same answer
    const daveSub = ws(tokens.dave as string).subscribe<{ instanceEvents: EventData }>(INSTANCE_EVENTS, { id: instanceId });
    await daveSub.ended();
    expect(daveSub.errors).toEqual([expect.objectContaining({ extensions: { code: 'NOT_FOUND' } })]);
    expect(daveSub.items).toEqual([]);
    // while bob, who holds a task of it, may watch it
    const bobSub = ws(tokens.bob as string).subscribe<{ instanceEvents: EventData }>(INSTANCE_EVENTS, { id: instanceId, after: '0' });
    await bobSub.waitForItems(1);
    expect(bobSub.items[0]?.data.instanceEvents).toMatchObject({ kind: 'instanceStarted', instanceId });
  });

  test('tenantEvents is refused to every role but bpm_admin, with a clear error', async () => {
    for (const who of ['alice', 'designerA']) {
      const sub = ws(tokens[who] as string).subscribe<{ tenantEvents: EventData }>(TENANT_EVENTS);
      await sub.ended();
      expect(sub.items).toEqual([]);
      expect(sub.errors).toEqual([
        expect.objectContaining({ message: expect.stringMatching(/^tenantEvents requires the role bpm_admin/), extensions: { code: 'FORBIDDEN' } }),
      ]);
    }
  });

  test('the server holds a NOTIFY lease for each tenant with live subscriptions', async () => {
    const client = ws(tokens.adminB as string);
    client.subscribe(TENANT_EVENTS);
    await client.connected;
    await sleep(200);
    const { rows } = await db.root.query<{ tenant_id: string; live: boolean }>(
      'select tenant_id, expires_at > now() as live from bpm_private.event_listener order by tenant_id',
    );
    expect(rows).toEqual(expect.arrayContaining([{ tenant_id: A, live: true }, { tenant_id: B, live: true }]));
  });

  test('when a tenant\'s last subscription ends, the server releases its lease at once instead of letting it lapse', async () => {
    const tenant = 'lease-release';
    const leaseOf = async (): Promise<number> =>
      (await db.root.query('select 1 from bpm_private.event_listener where tenant_id = $1 and expires_at > now()', [tenant])).rowCount ?? 0;
    const client = ws(await token({ tenant, sub: 'lee', roles: ['bpm_admin'] }));
    client.subscribe(TENANT_EVENTS);
    await client.connected;
    for (let i = 0; i < 100 && (await leaseOf()) === 0; i++) await sleep(20);
    expect(await leaseOf()).toBe(1);
    const disposed = Date.now();
    await client.dispose();
    for (let i = 0; i < 100 && (await leaseOf()) === 1; i++) await sleep(20);
    expect(await leaseOf()).toBe(0);
    // released, not lapsed: the ttl is 30 s
    expect(Date.now() - disposed).toBeLessThan(5_000);
  });
});

describe('the connection is authenticated like an HTTP request', () => {
  async function expectRefused(client: WsClient, code: number, reason: RegExp): Promise<void> {
    await expect(client.connected).rejects.toThrow();
    const closed = await client.closed;
    expect(closed.code).toBe(code);
    expect(closed.reason).toMatch(reason);
  }

  test('no token, a malformed one, a forged one, alg none, an expired one: closed with 4401', async () => {
    const forged = await new SignJWT({ tenant: A, roles: ['bpm_admin'] })
      .setProtectedHeader({ alg: 'HS256' })
      .setIssuer(ISSUER)
      .setAudience(AUDIENCE)
      .setExpirationTime('5m')
      .sign(new TextEncoder().encode('another-secret-of-at-least-32-characters!'));
    const none = new UnsecuredJWT({ tenant: A, roles: ['bpm_admin'] }).setIssuer(ISSUER).setAudience(AUDIENCE).setExpirationTime('5m').encode();
    const expired = await token({ tenant: A, roles: ['bpm_admin'] }, { expiresAt: Math.floor(Date.now() / 1000) - 60 });
    await expectRefused(ws(null), 4401, /^Unauthorized: missing bearer token/);
    await expectRefused(ws(null, { authorization: 'Basic abc' }), 4401, /^Unauthorized: Authorization header must be "Bearer <JWT>"/);
    await expectRefused(ws(forged), 4401, /^Unauthorized: token signature is invalid/);
    await expectRefused(ws(none), 4401, /^Unauthorized: /);
    await expectRefused(ws(expired), 4401, /^Unauthorized: token has expired/);
  });

  test('an authentic token that makes no API caller: closed with 4403', async () => {
    await expectRefused(ws(await token({ roles: ['bpm_admin'] })), 4403, /^Forbidden: token has no tenant/);
    await expectRefused(ws(await token({ tenant: A, roles: ['admin'] })), 4403, /^Forbidden: token names no API role/);
  });

  test('the connection ends (4401) when its token expires', async () => {
    const shortLived = await token({ tenant: A, sub: 'ada', roles: ['bpm_admin'] }, { expiresAt: Math.floor(Date.now() / 1000) + 2 });
    const client = ws(shortLived);
    await client.connected;
    const sub = client.subscribe(TENANT_EVENTS);
    const closed = await client.closed;
    expect(closed).toEqual({ code: 4401, reason: 'Unauthorized: token has expired' });
    await sub.ended();
  }, 10_000);

  test('clients cannot take NOTIFY leases themselves: registerEventListener is not in the schema', async () => {
    const reply = await t.gql(tokens.adminA as string, `mutation { registerEventListener(input: { listenerId: "x" }) { clientMutationId } }`);
    expect(reply.body.errors).toEqual([expect.objectContaining({ message: expect.stringMatching(/Cannot query field "registerEventListener"/) })]);
  });

  test('a subscription over HTTP is not served', async () => {
    const reply = await t.gql(tokens.adminA as string, `subscription { tenantEvents { id } }`);
    expect(reply.body.data ?? null).toBeNull();
    expect(reply.body.errors?.length).toBeGreaterThan(0);
  });
});

describe('limits of a connection', () => {
  test(`at most ${MAX_SUBSCRIPTIONS} subscriptions at a time per connection`, async () => {
    const client = ws(tokens.adminA as string);
    const subs = Array.from({ length: MAX_SUBSCRIPTIONS }, () => client.subscribe(TENANT_EVENTS));
    await client.connected;
    await sleep(100);
    const extra = client.subscribe(TENANT_EVENTS);
    await extra.ended();
    expect(extra.errors).toEqual([
      expect.objectContaining({ message: `at most ${MAX_SUBSCRIPTIONS} subscriptions per connection`, extensions: expect.objectContaining({ code: 'TOO_MANY_SUBSCRIPTIONS' }) }),
    ]);
    // ending one makes room
    subs[0]?.unsubscribe();
    await sleep(100);
    const again = client.subscribe(TENANT_EVENTS);
    await sleep(200);
    expect(again.completed).toBe(false);
    expect(again.errors).toEqual([]);
    for (const s of subs.slice(1)) expect(s.completed).toBe(false);
  });

  test('queries and mutations are not served over the WebSocket', async () => {
    const client = ws(tokens.adminA as string);
    const query = client.subscribe(`{ processInstances { totalCount } }`);
    await query.ended();
    expect(query.items).toEqual([]);
    expect(query.errors).toEqual([expect.objectContaining({ extensions: { code: 'OPERATION_NOT_ALLOWED' } })]);
  });

  test('the depth and field limits apply', async () => {
    const client = ws(tokens.adminA as string);
    const nested = 'instance { userTasks { nodes { '.repeat(4);
    const deep = client.subscribe(`subscription { taskEvents { userTask { ${nested} id ${'} } } '.repeat(4)} } } }`);
    await deep.ended();
    expect(deep.errors).toEqual([expect.objectContaining({ extensions: expect.objectContaining({ code: 'QUERY_TOO_DEEP' }) })]);
    const wide = client.subscribe(`subscription { tenantEvents { ${Array.from({ length: 501 }, (_, i) => `f${i}: id`).join(' ')} } }`);
    await wide.ended();
    expect(wide.errors).toEqual([expect.objectContaining({ extensions: expect.objectContaining({ code: 'QUERY_TOO_COMPLEX' }) })]);
    const page = client.subscribe(`subscription($n: Int) { tenantEvents { instance { userTasks(first: $n) { nodes { id } } } } }`, { n: 5000 });
    await page.ended();
    expect(page.errors).toEqual([expect.objectContaining({ extensions: expect.objectContaining({ code: 'PAGE_SIZE_TOO_LARGE' }) })]);
  });

  test('bad arguments are refused with BAD_USER_INPUT', async () => {
    const sub = ws(tokens.adminA as string).subscribe(TENANT_EVENTS, { after: '-5' });
    await sub.ended();
    expect(sub.errors).toEqual([expect.objectContaining({ extensions: expect.objectContaining({ code: 'BAD_USER_INPUT' }) })]);
  });
});

describe('in production', () => {
  let prod: TestApi;
  beforeAll(async () => {
    prod = await startTestApi(db, { production: true });
  });
  afterAll(() => prod?.close());

  test('introspection is refused over the WebSocket too; subscriptions work', async () => {
    const client = connect(prod.api.graphqlUrl, tokens.adminA as string);
    clients.push(client);
    const introspection = client.subscribe(`subscription { __schema { types { name } } }`);
    await introspection.ended();
    expect(introspection.items).toEqual([]);
    expect(introspection.errors.length).toBeGreaterThan(0);
    const after = await currentEventId(db, A);
    const sub = client.subscribe<{ tenantEvents: EventData }>(TENANT_EVENTS, { after });
    await adminA.query(`select bpm.start_process('offers')`);
    await sub.waitForItems(1);
    expect(sub.errors).toEqual([]);
  });
});
