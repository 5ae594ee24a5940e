/**
 * Subscriptions deliver the event log over a real WebSocket (graphql-ws):
 * promptly after the commit (NOTIFY, not the 1 s fallback poll), in id order,
 * and a client that reconnects with `after: <last id seen>` receives exactly
 * the events it missed — also those of concurrent transactions that committed
 * out of order while it was away.
 */
import type pg from 'pg';
import { createTestDb, type TestDb } from '../../helpers/db';
import { bpmnProcess } from '../../helpers/engine';
import { userTaskBody } from '../api/support';
import { DEPLOY, startTestApi, token, type DeployData, type TestApi } from '../api_graphql/support';
import { EVENT_FIELDS, connect, currentEventId, sleep, type EventData, type WsClient } from './support';

const A = 'subs-delivery';

// servers, databases and waits for deliveries: slow on a loaded machine (hooks included)
jest.setTimeout(30_000);

let db: TestDb;
let t: TestApi;
let adminToken: string;
let admin: pg.Client;
const clients: WsClient[] = [];

function ws(tokenValue: string): WsClient {
  const client = connect(t.api.graphqlUrl, tokenValue);
  clients.push(client);
  return client;
}

beforeAll(async () => {
  db = await createTestDb();
  t = await startTestApi(db);
  adminToken = await token({ tenant: A, sub: 'ada', roles: ['bpm_admin'] });
  const deployed = await t.data<DeployData>(adminToken, DEPLOY, {
    files: [{ name: 'approval.bpmn', xml: bpmnProcess('approval', userTaskBody('camunda:candidateGroups="sales"')) }],
  });
  expect(deployed.deployProcess.problems).toEqual([]);
  admin = await db.connectAs({ role: 'bpm_admin', tenant: A, user: 'ada' });
});

afterAll(async () => {
  await Promise.all(clients.map((c) => c.dispose().catch(() => undefined)));
  await t?.close();
  await db?.close();
});

async function startInstance(client: pg.Pool | pg.ClientBase = admin): Promise<string> {
  const { rows } = await client.query<{ id: string }>(`select id from bpm.start_process('approval')`);
  const id = rows[0]?.id;
  if (!id) throw new Error('start_process returned no row');
  return id;
}

/** The tenant's event ids above `after`, in id order, as the database has them (superuser: ground truth). */
async function eventIdsAfter(after: string): Promise<string[]> {
  const { rows } = await db.root.query<{ id: string }>(
    'select id::text as id from bpm.event where tenant_id = $1 and id > $2::bigint order by id',
    [A, after],
  );
  return rows.map((r) => r.id);
}

function percentile(sorted: number[], p: number): number {
  const index = Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1);
  return sorted[Math.max(0, index)] as number;
}

test('a taskEvents subscriber receives taskCreated within 200 ms of the commit (median of 9 trials)', async () => {
  const client = ws(adminToken);
  await client.connected;
  const sub = client.subscribe<{ taskEvents: EventData & { userTask: { id: string; name: string } | null } }>(
    `subscription($after: BigInt) { taskEvents(after: $after) { ${EVENT_FIELDS} userTask { id name } } }`,
    { after: await currentEventId(db, A) },
  );
  // warm-up: the first event also proves the subscription (and the tenant's NOTIFY lease) is live
  const warmup = await startInstance();
  const [first] = await sub.waitForItems(1, 5000);
  expect(first?.data.taskEvents).toMatchObject({ kind: 'taskCreated', instanceId: warmup, elementId: 'task', userTask: { name: 'Task' } });

  const latencies: number[] = [];
  for (let trial = 0; trial < 9; trial++) {
    const before = sub.items.length;
    const instanceId = await startInstance(); // autocommit: the commit has returned when this resolves
    const committed = performance.now();
    const items = await sub.waitForItems(before + 1, 3000);
    const item = items[before];
    expect(item?.data.taskEvents).toMatchObject({ kind: 'taskCreated', instanceId });
    // the event may even arrive before the client has read the commit's reply
    latencies.push(Math.max(0, (item?.at ?? Infinity) - committed));
    await sleep(20);
  }
  const sorted = [...latencies].sort((x, y) => x - y);
  const median = percentile(sorted, 50);
  const p95 = percentile(sorted, 95);
  console.log(`taskEvents delivery latency after commit: median ${median.toFixed(1)} ms, p95 ${p95.toFixed(1)} ms, trials ${latencies.map((l) => l.toFixed(1)).join(' ')}`);
  expect(median).toBeLessThan(200);
  expect(sub.errors).toEqual([]);
}, 30_000);

test('events arrive in id order without duplicates, also from concurrent transactions', async () => {
  const client = ws(adminToken);
  await client.connected;
  const before = await currentEventId(db, A);
  const sub = client.subscribe<{ tenantEvents: EventData }>(`subscription($after: BigInt) { tenantEvents(after: $after) { ${EVENT_FIELDS} } }`, {
    after: before,
  });
  const pool = db.pool({ role: 'bpm_admin', tenant: A, user: 'ada' }, 4);
  await Promise.all(Array.from({ length: 12 }, () => startInstance(pool)));
  const expected = await eventIdsAfter(before);
  expect(expected).toHaveLength(12 * 4);
  await sub.waitForItems(expected.length, 5000);
  await sleep(300);
  expect(sub.items.map((i) => i.data.tenantEvents.id)).toEqual(expected);
});

test('resuming with `after` delivers exactly the missed events: no gap, no duplicate', async () => {
  // 1. connected: see two instances start
  const first = ws(adminToken);
  await first.connected;
  const live = first.subscribe<{ tenantEvents: EventData }>(`subscription($after: BigInt) { tenantEvents(after: $after) { ${EVENT_FIELDS} } }`, {
    after: await currentEventId(db, A),
  });
  await startInstance();
  await startInstance();
  await live.waitForItems(8, 5000);
  const seen = live.items.map((i) => i.data.tenantEvents.id);
  const lastSeen = seen[seen.length - 1] as string;
  await first.dispose();

  // 2. while disconnected: overlapping transactions that commit in the reverse order of
  //    their start (their event ids follow the start order), plus autocommit ones
  const sessions = await Promise.all(Array.from({ length: 4 }, () => db.connectAs({ role: 'bpm_admin', tenant: A, user: 'ada' })));
  try {
    for (const s of sessions) await s.query('begin');
    for (const s of sessions) await startInstance(s);
    const done = await startInstance();
    const { rows } = await admin.query<{ id: string }>(`select id from bpm.user_task where instance_id = $1`, [done]);
    await admin.query(`select bpm.complete_task($1, '{}')`, [rows[0]?.id]);
    for (const s of [...sessions].reverse()) await s.query('commit');
  } finally {
    await Promise.all(sessions.map((s) => s.end()));
  }
  const missed = await eventIdsAfter(lastSeen);
  expect(missed.length).toBe(4 * 4 + 4 + 4);

  // 3. reconnect and resume after the last id seen
  const second = ws(adminToken);
  await second.connected;
  const resumed = second.subscribe<{ tenantEvents: EventData }>(`subscription($after: BigInt) { tenantEvents(after: $after) { ${EVENT_FIELDS} } }`, {
    after: lastSeen,
  });
  await resumed.waitForItems(missed.length, 5000);
  // more events while resumed, from parallel transactions
  const pool = db.pool({ role: 'bpm_admin', tenant: A, user: 'ada' }, 3);
  await Promise.all(Array.from({ length: 6 }, () => startInstance(pool)));
  const all = await eventIdsAfter(lastSeen);
  await resumed.waitForItems(all.length, 5000);
  await sleep(1200); // past a fallback poll: nothing more may arrive
  const received = resumed.items.map((i) => i.data.tenantEvents.id);
  expect(received).toEqual(all);
  expect(new Set([...seen, ...received]).size).toBe(seen.length + received.length);
  expect(resumed.errors).toEqual([]);
});

test('instanceEvents delivers the events of that instance only', async () => {
  const watched = await startInstance();
  const other = await startInstance();
  const client = ws(adminToken);
  await client.connected;
  const sub = client.subscribe<{ instanceEvents: EventData & { instance: { id: string; state: string } | null } }>(
    `subscription($id: UUID!, $after: BigInt) { instanceEvents(instanceId: $id, after: $after) { ${EVENT_FIELDS} instance { id state } } }`,
    { id: watched, after: await currentEventId(db, A) },
  );
  for (const id of [other, watched]) {
    const { rows } = await admin.query<{ id: string }>(`select id from bpm.user_task where instance_id = $1`, [id]);
    await admin.query(`select bpm.complete_task($1, '{}')`, [rows[0]?.id]);
  }
  await sub.waitForItems(4, 5000);
  await sleep(300);
  expect(sub.items.map((i) => [i.data.instanceEvents.kind, i.data.instanceEvents.elementId])).toEqual([
    ['taskCompleted', 'task'],
    ['activityCompleted', 'task'],
    ['activityCompleted', 'end'],
    ['instanceCompleted', null],
  ]);
  expect(sub.items.every((i) => i.data.instanceEvents.instanceId === watched)).toBe(true);
  // the instance is read when the item is delivered, with the subscriber's role
  expect(sub.items[3]?.data.instanceEvents.instance).toEqual({ id: watched, state: 'completed' });
});

test('Query.eventCursor: subscribing after it misses nothing, not even a transaction that was running when it was read', async () => {
  const running = await db.connectAs({ role: 'bpm_admin', tenant: A, user: 'ada' });
  try {
    await running.query('begin');
    const early = await startInstance(running); // takes its transaction id (and event ids) now
    const { eventCursor } = await t.data<{ eventCursor: string }>(adminToken, `{ eventCursor }`);
    expect(eventCursor).toMatch(/^\d+$/);
    const later = await startInstance();
    await running.query('commit');
    const expected = await eventIdsAfter(eventCursor);
    const client = ws(adminToken);
    const sub = client.subscribe<{ tenantEvents: EventData }>(`subscription($after: BigInt) { tenantEvents(after: $after) { ${EVENT_FIELDS} } }`, {
      after: eventCursor,
    });
    await sub.waitForItems(expected.length, 5000);
    await sleep(300);
    expect(sub.items.map((i) => i.data.tenantEvents.id)).toEqual(expected);
    // the earlier transaction's events come first (lower ids), though it committed last
    expect(sub.items.map((i) => i.data.tenantEvents.instanceId)).toEqual([...Array(4).fill(early), ...Array(4).fill(later)]);
  } finally {
    await running.end();
  }
});
