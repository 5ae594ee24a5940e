/**
 * The event log (bpm.event): every transition appends its events in the same
 * transaction; events_after returns them gapless in id order; RLS scopes them
 * to the tenant (and for a bpm_user to the instances it sees); NOTIFY goes out
 * only while a listener of the tenant is registered.
 */
import pg from 'pg';
import { createTestDb, type TestDb } from '../../helpers/db';
import { bpmnProcess, deployXml } from '../../helpers/engine';
import { externalTaskBody, newId, one, openUserTask, start, userTaskBody } from '../api/support';

const A = 'ev-a';
const B = 'ev-b';

interface EventRow {
  id: string;
  instance_id: string | null;
  kind: string;
  subject_id: string | null;
  element_id: string | null;
}

let db: TestDb;
let adminA: pg.Client;
let adminB: pg.Client;
let engineA: pg.Client;

beforeAll(async () => {
  db = await createTestDb();
  adminA = await db.connectAs({ role: 'bpm_admin', tenant: A, user: 'boss' });
  adminB = await db.connectAs({ role: 'bpm_admin', tenant: B, user: 'boss' });
  engineA = await db.connectAs({ role: 'bpm_engine', tenant: A });
  for (const admin of [adminA, adminB]) {
    await deployXml(admin, [
      { name: 'ev.bpmn', xml: bpmnProcess('ev', userTaskBody('camunda:candidateGroups="sales"')) },
      { name: 'evx.bpmn', xml: bpmnProcess('evx', externalTaskBody('ev-work')) },
    ]);
  }
});
afterAll(() => db.close());

async function lastId(client: pg.ClientBase): Promise<string> {
  return (await one<{ id: string }>(client, `select coalesce(max(id), 0)::text as id from bpm.events_after(0, null, 10000)`)).id;
}

async function eventsAfter(client: pg.ClientBase, after: string, instanceId: string | null = null): Promise<EventRow[]> {
  return (
    await client.query<EventRow>(
      `select id::text, instance_id, kind, subject_id, element_id from bpm.events_after($1::bigint, $2::uuid, 10000)`,
      [after, instanceId],
    )
  ).rows;
}

const kinds = (events: EventRow[]): string[] => events.map((e) => (e.element_id ? `${e.kind}:${e.element_id}` : e.kind));

test('start, claim and complete append their events in order, in the same transaction', async () => {
  const before = await lastId(adminA);
  const inst = await start(adminA, 'ev');
  const task = await openUserTask(db.root, inst.id);
  await adminA.query('select bpm.claim_task($1)', [task.id]);
  await adminA.query(`select bpm.complete_task($1, '{"ok": true}')`, [task.id]);
  const events = await eventsAfter(adminA, before, inst.id);
  expect(kinds(events)).toEqual([
    'instanceStarted',
    'activityCompleted:start',
    'activityStarted:task',
    'taskCreated:task',
    'taskAssigned:task',
    'taskCompleted:task',
    'activityCompleted:task',
    'activityCompleted:end',
    'instanceCompleted',
  ]);
  const ids = events.map((e) => BigInt(e.id));
  expect([...ids].sort((x, y) => (x < y ? -1 : x > y ? 1 : 0))).toEqual(ids);
  expect(new Set(ids).size).toBe(ids.length);
  expect(events.find((e) => e.kind === 'taskCreated')?.subject_id).toBe(task.id);
  expect(events.every((e) => e.instance_id === inst.id)).toBe(true);
});

test('cancel, suspend, activate and set_variables append their events', async () => {
  const inst = await start(adminA, 'ev');
  const before = await lastId(adminA);
  await adminA.query('select bpm.suspend_process_instance($1)', [inst.id]);
  await adminA.query('select bpm.activate_process_instance($1)', [inst.id]);
  await adminA.query(`select bpm.set_variables($1, '{"x": 1}')`, [inst.id]);
  await adminA.query('select bpm.cancel_process_instance($1)', [inst.id]);
  expect(kinds(await eventsAfter(adminA, before, inst.id))).toEqual([
    'instanceSuspended',
    'instanceActivated',
    'variablesUpdated',
    'taskCancelled:task',
    'activityCancelled:task',
    'instanceCancelled',
  ]);
});

test('external task failure, incident and retry append their events', async () => {
  const inst = await start(adminA, 'evx');
  const [locked] = (await engineA.query<{ id: string }>(`select id from bpm.fetch_and_lock('ev-work', 'w1')`)).rows;
  expect(locked).toBeDefined();
  await engineA.query(`select bpm.fail_external_task($1, 'w1', 'boom', 0)`, [locked?.id]);
  const incident = await one<{ id: string }>(db.root, 'select id from bpm.incident where instance_id = $1', [inst.id]);
  await engineA.query('select bpm.retry_incident($1)', [incident.id]);
  const [again] = (await engineA.query<{ id: string }>(`select id from bpm.fetch_and_lock('ev-work', 'w2')`)).rows;
  await engineA.query(`select bpm.complete_external_task($1, 'w2')`, [again?.id]);
  const events = await eventsAfter(adminA, '0', inst.id);
  expect(kinds(events)).toEqual([
    'instanceStarted',
    'activityCompleted:start',
    'activityStarted:work',
    'externalTaskCreated:work',
    'externalTaskFailed:work',
    'incidentCreated:work',
    'incidentResolved:work',
    'externalTaskCompleted:work',
    'activityCompleted:work',
    'activityCompleted:end',
    'instanceCompleted',
  ]);
  expect(events.find((e) => e.kind === 'incidentCreated')?.subject_id).toBe(incident.id);
});

test('a deployment appends definitionDeployed per new definition', async () => {
  const before = await lastId(adminA);
  const [def] = await deployXml(adminA, [{ name: 'ev2.bpmn', xml: bpmnProcess('ev2', userTaskBody()) }]);
  const events = await eventsAfter(adminA, before);
  expect(events.map((e) => [e.kind, e.subject_id, e.instance_id])).toEqual([['definitionDeployed', def?.id, null]]);
});

test('a failing call appends nothing', async () => {
  const before = await lastId(adminA);
  await expect(adminA.query('select bpm.complete_task($1)', [newId()])).rejects.toMatchObject({ code: 'BP103' });
  await expect(adminA.query(`select bpm.start_process('nope')`)).rejects.toMatchObject({ code: 'BP101' });
  expect(await eventsAfter(adminA, before)).toEqual([]);
});

test('events_after holds back events of later transactions until every earlier one has finished, so resuming never skips', async () => {
  const before = await lastId(adminA);
  const slow = await db.connectAs({ role: 'bpm_admin', tenant: A, user: 'boss' });
  const fast = await db.connectAs({ role: 'bpm_admin', tenant: A, user: 'boss' });
  try {
    // the slow transaction takes its transaction id (and so lower event ids) first
    await slow.query('begin');
    const s = await one<{ id: string }>(slow, `select id from bpm.start_process('ev')`);
    const f = await one<{ id: string }>(fast, `select id from bpm.start_process('ev')`);
    // fast has committed, but an older transaction is still open: nothing is returned yet
    expect(await eventsAfter(adminA, before)).toEqual([]);
    await slow.query('commit');
    const events = await eventsAfter(adminA, before);
    const byInstance = events.map((e) => e.instance_id);
    // all of the older transaction's events come first, by id
    expect(byInstance).toEqual([...Array(4).fill(s.id), ...Array(4).fill(f.id)]);
    // resuming from any id returns exactly the rest
    for (let i = 0; i < events.length; i++) {
      expect(await eventsAfter(adminA, events[i]?.id ?? '0')).toEqual(events.slice(i + 1));
    }
  } finally {
    await slow.end();
    await fast.end();
  }
});

test('tenant B sees none of tenant A’s events; a bpm_user sees only the events of instances it sees', async () => {
  const inst = await start(adminA, 'ev');
  const ofA = await eventsAfter(adminA, '0', inst.id);
  expect(ofA.length).toBeGreaterThan(0);
  expect(await eventsAfter(adminB, '0', inst.id)).toEqual([]);
  const { rows } = await adminB.query<{ n: number }>('select count(*)::int as n from bpm.event where instance_id = $1', [inst.id]);
  expect(rows[0]?.n).toBe(0);
  // alice (group sales) is offered the task: she sees the instance and its events
  const alice = await db.connectAs({ role: 'bpm_user', tenant: A, user: 'alice', groups: ['sales'] });
  const bob = await db.connectAs({ role: 'bpm_user', tenant: A, user: 'bob', groups: ['hr'] });
  try {
    expect(await eventsAfter(alice, '0', inst.id)).toEqual(ofA);
    expect(await eventsAfter(bob, '0', inst.id)).toEqual([]);
    // deployments concern no instance: not shown to users
    const own = await eventsAfter(bob, '0');
    expect(own.filter((e) => e.kind === 'definitionDeployed')).toEqual([]);
  } finally {
    await alice.end();
    await bob.end();
  }
});

describe('NOTIFY', () => {
  async function collect(listener: pg.Client, during: () => Promise<void>): Promise<string[]> {
    const got: string[] = [];
    const onNote = (n: pg.Notification): void => {
      if (n.channel === 'bpm_event') got.push(n.payload ?? '');
    };
    listener.on('notification', onNote);
    try {
      await during();
      // notifications are delivered after commit; give the socket a moment
      await new Promise((r) => setTimeout(r, 200));
    } finally {
      listener.off('notification', onNote);
    }
    return got;
  }

  test('only while a listener of the tenant is registered; the payload is an event id and nothing else', async () => {
    const listener = new pg.Client({ connectionString: db.urls.authenticator });
    await listener.connect();
    try {
      await listener.query('listen bpm_event');
      // nobody registered: no notification
      expect(await collect(listener, async () => void (await start(adminA, 'ev')))).toEqual([]);
      // tenant B registered: A's transitions still do not notify
      await adminB.query(`select bpm.register_event_listener('server-b', '1 minute')`);
      expect(await collect(listener, async () => void (await start(adminA, 'ev')))).toEqual([]);
      // tenant A registered: one notification per transaction, payload = an event id of it
      await adminA.query(`select bpm.register_event_listener('server-a', '1 minute')`);
      let instanceId = '';
      const got = await collect(listener, async () => {
        instanceId = (await start(adminA, 'ev')).id;
      });
      expect(got).toHaveLength(1);
      expect(got[0]).toMatch(/^\d+$/);
      const ids = (await eventsAfter(adminA, '0', instanceId)).map((e) => e.id);
      expect(ids).toContain(got[0]);
    } finally {
      await listener.end();
      await db.root.query('delete from bpm_private.event_listener');
    }
  });

  test('an expired registration stops notifications', async () => {
    await adminA.query(`select bpm.register_event_listener('short', '1 millisecond')`);
    await new Promise((r) => setTimeout(r, 20));
    const listener = new pg.Client({ connectionString: db.urls.authenticator });
    await listener.connect();
    try {
      await listener.query('listen bpm_event');
      expect(await collect(listener, async () => void (await start(adminA, 'ev')))).toEqual([]);
    } finally {
      await listener.end();
    }
  });

  test('register_event_listener validates its arguments (BP401)', async () => {
    await expect(adminA.query(`select bpm.register_event_listener('')`)).rejects.toMatchObject({ code: 'BP401' });
    await expect(adminA.query(`select bpm.register_event_listener('x', '2 hours')`)).rejects.toMatchObject({ code: 'BP401' });
  });
});
