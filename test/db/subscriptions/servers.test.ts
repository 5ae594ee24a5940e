/**
 * Several API servers on one database, as behind a load balancer: each holds
 * its own NOTIFY lease per tenant, so a subscriber on one server receives what
 * a mutation through another one did as promptly as on a single server (NOTIFY,
 * not the 1 s fallback poll), and one server releasing its lease leaves the
 * other's in place. Transitions sent to different servers serialise on the
 * instance like any two connections.
 */
import { createTestDb, type TestDb } from '../../helpers/db';
import { bpmnProcess } from '../../helpers/engine';
import { userTaskBody } from '../api/support';
import {
  COMPLETE,
  DEPLOY,
  START,
  startTestApi,
  token,
  type CompleteData,
  type DeployData,
  type StartData,
  type TestApi,
} from '../api_graphql/support';
import { EVENT_FIELDS, connect, currentEventId, sleep, type EventData, type Subscription, type WsClient } from './support';

const A = 'subs-servers';

// two servers, WebSockets and waits for deliveries: slow on a loaded machine (hooks included)
jest.setTimeout(60_000);

let db: TestDb;
let one: TestApi;
let two: TestApi;
let adminToken: string;
const clients: WsClient[] = [];

function ws(server: TestApi): WsClient {
  const client = connect(server.api.graphqlUrl, adminToken);
  clients.push(client);
  return client;
}

beforeAll(async () => {
  db = await createTestDb();
  [one, two] = await Promise.all([startTestApi(db), startTestApi(db)]);
  adminToken = await token({ tenant: A, sub: 'ada', roles: ['bpm_admin'] });
  const deployed = await one.data<DeployData>(adminToken, DEPLOY, {
    files: [{ name: 'approval.bpmn', xml: bpmnProcess('approval', userTaskBody()) }],
  });
  expect(deployed.deployProcess.problems).toEqual([]);
});

afterAll(async () => {
  await Promise.all(clients.map((c) => c.dispose().catch(() => undefined)));
  await Promise.all([one?.close(), two?.close()]);
  await db?.close();
});

async function liveLeases(): Promise<number> {
  const { rowCount } = await db.root.query('select 1 from bpm_private.event_listener where tenant_id = $1 and expires_at > now()', [A]);
  return rowCount ?? 0;
}

async function waitForLeases(n: number): Promise<void> {
  for (let i = 0; i < 250 && (await liveLeases()) !== n; i++) await sleep(20);
  expect(await liveLeases()).toBe(n);
}

interface TaskEvents {
  client: WsClient;
  sub: Subscription<{ taskEvents: EventData }>;
}

async function taskEvents(server: TestApi): Promise<TaskEvents> {
  const client = ws(server);
  await client.connected;
  const sub = client.subscribe<{ taskEvents: EventData }>(`subscription($after: BigInt) { taskEvents(after: $after) { ${EVENT_FIELDS} } }`, {
    after: await currentEventId(db, A),
  });
  return { client, sub };
}

/** Starts instances through `via`, one at a time; the median time from each mutation's reply to its taskCreated on `sub`. */
async function medianDelivery(via: TestApi, sub: TaskEvents['sub'], trials: number): Promise<number> {
  const latencies: number[] = [];
  for (let trial = 0; trial < trials; trial++) {
    const before = sub.items.length;
    const started = await via.data<StartData>(adminToken, START, { key: 'approval' });
    const replied = performance.now();
    const items = await sub.waitForItems(before + 1, 5000);
    expect(items[before]?.data.taskEvents).toMatchObject({ kind: 'taskCreated', instanceId: started.startProcess.result.id });
    latencies.push(Math.max(0, (items[before]?.at ?? Infinity) - replied));
    await sleep(20);
  }
  latencies.sort((x, y) => x - y);
  return latencies[Math.floor(latencies.length / 2)] as number;
}

let firstOnOne: TaskEvents;

test('a subscriber on one server receives what a mutation through the other did, within 200 ms (median of 7)', async () => {
  firstOnOne = await taskEvents(one);
  await waitForLeases(1);
  // warm-up: the first delivery also proves the subscription is live
  await medianDelivery(two, firstOnOne.sub, 1);
  const median = await medianDelivery(two, firstOnOne.sub, 7);
  expect(median).toBeLessThan(200);
  expect(firstOnOne.sub.errors).toEqual([]);
});

test('each server holds a lease of its own: when one server\'s last subscriber leaves, the other\'s still get NOTIFY', async () => {
  // a second subscriber on the first server shares its lease; one on the second server takes another
  const secondOnOne = await taskEvents(one);
  const onTwo = await taskEvents(two);
  await waitForLeases(2);
  await Promise.all([firstOnOne.client.dispose(), secondOnOne.client.dispose()]);
  await waitForLeases(1);
  await medianDelivery(one, onTwo.sub, 1);
  const median = await medianDelivery(one, onTwo.sub, 7);
  expect(median).toBeLessThan(200);
  expect(onTwo.sub.errors).toEqual([]);
});

test('completions of one task sent to both servers at once: exactly one succeeds, the other gets BP203 (20 races)', async () => {
  for (let race = 0; race < 20; race++) {
    const started = await two.data<StartData>(adminToken, START, { key: 'approval' });
    const { rows } = await db.root.query<{ id: string }>('select id from bpm.user_task where tenant_id = $1 and instance_id = $2', [
      A,
      started.startProcess.result.id,
    ]);
    const taskId = rows[0]?.id;
    const replies = await Promise.all([one, two].map((server) => server.gql<CompleteData>(adminToken, COMPLETE, { id: taskId })));
    const succeeded = replies.filter((r) => r.body.data?.completeTask?.result.state === 'completed');
    const refused = replies.filter((r) => r.body.errors?.[0]?.extensions?.code === 'BP203');
    expect({ race, succeeded: succeeded.length, refused: refused.length }).toEqual({ race, succeeded: 1, refused: 1 });
  }
  const { rows } = await db.root.query<{ completed: string; events: string }>(
    `select count(*) filter (where state = 'completed')::text as completed,
            (select count(*) from bpm.event e where e.tenant_id = $1 and e.kind = 'taskCompleted')::text as events
     from bpm.user_task where tenant_id = $1`,
    [A],
  );
  // each completed task has exactly one taskCompleted event: no completion was applied twice
  expect(rows[0]?.events).toBe(rows[0]?.completed);
});
