/**
 * Signals and messages thrown to a busy instance (reliability plan: lock
 * order). A throw is delivered in the thrower's transaction, which holds the
 * thrower's instance. Two instances throwing at each other at once used to
 * wait for each other's lock: a deadlock (40P01). Now a receiver another
 * transaction holds is never waited for: the delivery is deferred to a
 * bpm_deliver job that delivers it right after that transaction ends, once
 * (the job deletes its delivery in the delivering transaction).
 */
import type pg from 'pg';
import { createTestDb, type TestDb } from '../../helpers/db';
import { actors, deployDefs, instanceState, one, openUserTask, start, type Actors } from '../events/support';
import { deliveryJobs, outcome, type DeliveryJob } from './support';

jest.setTimeout(20_000);

const T = 'deferred-t';
const OTHER = 'deferred-other';
const ROOTS = `<signal id="s_ping" name="ToPing"/><signal id="s_pong" name="ToPong"/><message id="m_ping" name="MsgPing"/><message id="m_pong" name="MsgPong"/>`;

let db: TestDb;
let as: Actors;
let other: Actors;

/** work → throw `throws`; meanwhile a catch waits for `catches`; both branches end. */
function pairBody(throws: string, catches: string, kind: 'signal' | 'message'): string {
  const def = (ref: string): string => (kind === 'signal' ? `<signalEventDefinition signalRef="${ref}"/>` : `<messageEventDefinition messageRef="${ref}"/>`);
  return `
    <startEvent id="start"/><sequenceFlow id="f1" sourceRef="start" targetRef="fork"/>
    <parallelGateway id="fork"/>
    <sequenceFlow id="f2" sourceRef="fork" targetRef="work"/><sequenceFlow id="f3" sourceRef="fork" targetRef="wait"/>
    <userTask id="work"/><sequenceFlow id="f4" sourceRef="work" targetRef="throw"/>
    <intermediateThrowEvent id="throw">${def(throws)}</intermediateThrowEvent>
    <sequenceFlow id="f5" sourceRef="throw" targetRef="thrown"/><endEvent id="thrown"/>
    <intermediateCatchEvent id="wait">${def(catches)}</intermediateCatchEvent>
    <sequenceFlow id="f6" sourceRef="wait" targetRef="caught"/><endEvent id="caught"/>`;
}

beforeAll(async () => {
  db = await createTestDb();
  as = await actors(db, T);
  other = await actors(db, OTHER);
  await deployDefs(as.admin, 'ping', ROOTS, pairBody('s_pong', 's_ping', 'signal'));
  await deployDefs(as.admin, 'pong', ROOTS, pairBody('s_ping', 's_pong', 'signal'));
  await deployDefs(as.admin, 'msg_ping', ROOTS, pairBody('m_pong', 'm_ping', 'message'));
  await deployDefs(as.admin, 'msg_pong', ROOTS, pairBody('m_ping', 'm_pong', 'message'));
  await deployDefs(as.admin, 'guarded', ROOTS, `
    <startEvent id="start"/><sequenceFlow id="f1" sourceRef="start" targetRef="work"/>
    <userTask id="work"/><sequenceFlow id="f2" sourceRef="work" targetRef="done"/><endEvent id="done"/>
    <boundaryEvent id="alarm" attachedToRef="work"><signalEventDefinition signalRef="s_ping"/></boundaryEvent>
    <sequenceFlow id="f3" sourceRef="alarm" targetRef="alarmed"/><endEvent id="alarmed"/>`);
});

afterAll(async () => {
  await db?.close();
});

/** The deliveries waiting in bpm_deliver jobs (as the worker would find them). */
function pendingDeliveries(): Promise<DeliveryJob[]> {
  return deliveryJobs(db.root);
}

/** Runs every bpm_deliver job as the worker does (bpm_engine of the job's tenant); the jobs are gone afterwards. */
async function runDeliveries(): Promise<number[]> {
  const results: number[] = [];
  for (const d of await deliveryJobs(db.root, true)) {
    const engine = d.tenant_id === T ? as.engine : other.engine;
    results.push((await one<{ n: number }>(engine, 'select bpm.deliver_deferred($1) as n', [d.delivery_id])).n);
  }
  return results;
}

async function startPair(a: string, b: string): Promise<{ a: string; b: string; taskA: string; taskB: string }> {
  const ia = await start(as.admin, a);
  const ib = await start(as.admin, b);
  return { a: ia.id, b: ib.id, taskA: (await openUserTask(db.root, ia.id)).id, taskB: (await openUserTask(db.root, ib.id)).id };
}

/**
 * Two connections each hold one instance of the pair (as a transition under
 * way does), then complete its task, which throws at the other instance:
 * before deferred deliveries, each waited for the other's lock (40P01).
 */
async function completeBothWhileHeld(pair: { a: string; b: string; taskA: string; taskB: string }): Promise<void> {
  const c1 = await db.connectAs({ role: 'bpm_admin', tenant: T });
  const c2 = await db.connectAs({ role: 'bpm_admin', tenant: T });
  try {
    await c1.query('begin');
    await c1.query(`select bpm.set_variables($1, '{"step": 1}')`, [pair.a]);
    await c2.query('begin');
    await c2.query(`select bpm.set_variables($1, '{"step": 1}')`, [pair.b]);
    await c1.query('select bpm.complete_task($1)', [pair.taskA]);
    await c2.query('select bpm.complete_task($1)', [pair.taskB]);
    await c1.query('commit');
    await c2.query('commit');
  } finally {
    await c1.end();
    await c2.end();
  }
}

/** How often each catch event fired, by instance. */
async function caughtCount(instanceId: string): Promise<number> {
  return (await one<{ n: number }>(db.root, `select count(*)::int as n from bpm.activity_instance where instance_id = $1 and element_id = 'caught'`, [instanceId])).n;
}

afterEach(async () => {
  // every test leaves no delivery behind
  expect(await pendingDeliveries()).toEqual([]);
  const { rows } = await db.root.query('select * from bpm_private.deferred_delivery');
  expect(rows).toEqual([]);
});

test('two instances throwing signals at each other while each is held: neither waits, no deadlock; both signals are delivered after', async () => {
  const pair = await startPair('ping', 'pong');
  await completeBothWhileHeld(pair);
  // the catches have not fired yet: each signal waits in a delivery
  expect(await caughtCount(pair.a)).toBe(0);
  expect(await caughtCount(pair.b)).toBe(0);
  expect(await pendingDeliveries()).toHaveLength(2);
  expect(await runDeliveries()).toEqual([1, 1]);
  expect(await instanceState(db.root, pair.a)).toBe('completed');
  expect(await instanceState(db.root, pair.b)).toBe('completed');
  expect(await caughtCount(pair.a)).toBe(1);
  expect(await caughtCount(pair.b)).toBe(1);
});

test('50 races of two instances completing their throwing tasks at once: no error, every signal delivered exactly once', async () => {
  const c1 = await db.connectAs({ role: 'bpm_admin', tenant: T });
  const c2 = await db.connectAs({ role: 'bpm_admin', tenant: T });
  try {
    const pairs = [];
    for (let i = 0; i < 50; i++) pairs.push(await startPair('ping', 'pong'));
    for (const pair of pairs) {
      const settled = await Promise.allSettled([
        c1.query('select bpm.complete_task($1)', [pair.taskA]),
        c2.query('select bpm.complete_task($1)', [pair.taskB]),
      ]);
      expect(settled.map(outcome)).toEqual(['ok', 'ok']);
    }
    await runDeliveries();
    for (const pair of pairs) {
      expect([await instanceState(db.root, pair.a), await instanceState(db.root, pair.b)]).toEqual(['completed', 'completed']);
      expect([await caughtCount(pair.a), await caughtCount(pair.b)]).toEqual([1, 1]);
    }
  } finally {
    await c1.end();
    await c2.end();
  }
});

test('broadcast_signal does not wait for an instance another transaction holds: it counts it, and the signal arrives once that transaction ends', async () => {
  const held = await start(as.admin, 'guarded');
  const free = await start(as.admin, 'guarded');
  const holder = await db.connectAs({ role: 'bpm_admin', tenant: T });
  try {
    await holder.query('begin');
    await holder.query(`select bpm.set_variables($1, '{"busy": true}')`, [held.id]);
    const t0 = Date.now();
    expect((await one<{ n: number }>(as.user, `select bpm.broadcast_signal('ToPing') as n`)).n).toBe(2);
    expect(Date.now() - t0).toBeLessThan(2000);
    expect(await instanceState(db.root, free.id)).toBe('completed');
    await holder.query('commit');
  } finally {
    await holder.end();
  }
  expect(await instanceState(db.root, held.id)).toBe('active');
  const [delivery] = await pendingDeliveries();
  expect(await runDeliveries()).toEqual([1]);
  const { rows } = await db.root.query(`select element_id from bpm.activity_instance where instance_id = $1 and state = 'completed' order by seq`, [held.id]);
  expect(rows.map((r) => r.element_id)).toEqual(['start', 'alarm', 'alarmed']);
  // the job ran twice (a worker died after the delivery committed): nothing more happens
  expect((await one<{ n: number }>(as.engine, 'select bpm.deliver_deferred($1) as n', [delivery.delivery_id])).n).toBe(0);
});

test('a deferred signal whose subscription is gone when it is delivered (the holder completed the task) triggers nothing', async () => {
  const held = await start(as.admin, 'guarded');
  const task = await openUserTask(db.root, held.id);
  const holder = await db.connectAs({ role: 'bpm_admin', tenant: T });
  try {
    await holder.query('begin');
    await holder.query('select bpm.complete_task($1)', [task.id]);
    expect((await one<{ n: number }>(as.admin, `select bpm.broadcast_signal('ToPing') as n`)).n).toBe(1);
    await holder.query('commit');
  } finally {
    await holder.end();
  }
  expect(await runDeliveries()).toEqual([0]);
  const { rows } = await db.root.query(`select element_id from bpm.activity_instance where instance_id = $1 order by seq`, [held.id]);
  expect(rows.map((r) => r.element_id)).toEqual(['start', 'work', 'done']);
  expect(await instanceState(db.root, held.id)).toBe('completed');
});

test('messages thrown at each other while both instances are held are deferred, then correlated once each', async () => {
  const pair = await startPair('msg_ping', 'msg_pong');
  await completeBothWhileHeld(pair);
  expect(await runDeliveries()).toEqual([1, 1]);
  expect([await instanceState(db.root, pair.a), await instanceState(db.root, pair.b)]).toEqual(['completed', 'completed']);
  expect([await caughtCount(pair.a), await caughtCount(pair.b)]).toEqual([1, 1]);
});

test('a deferred message whose receiver is suspended when it is delivered fails (BP202) and stays for the retry, then arrives after activation', async () => {
  const pair = await startPair('msg_ping', 'msg_pong');
  const holder = await db.connectAs({ role: 'bpm_admin', tenant: T });
  try {
    await holder.query('begin');
    await holder.query(`select bpm.set_variables($1, '{"step": 1}')`, [pair.b]);
    await as.admin.query('select bpm.complete_task($1)', [pair.taskA]);
    await holder.query('select bpm.suspend_process_instance($1)', [pair.b]);
    await holder.query('commit');
  } finally {
    await holder.end();
  }
  const [delivery] = await pendingDeliveries();
  await expect(as.engine.query('select bpm.deliver_deferred($1)', [delivery.delivery_id])).rejects.toMatchObject({ code: 'BP202' });
  expect((await db.root.query('select 1 from bpm_private.deferred_delivery where id = $1', [delivery.delivery_id])).rowCount).toBe(1);
  await as.admin.query('select bpm.activate_process_instance($1)', [pair.b]);
  expect(await runDeliveries()).toEqual([1]);
  expect(await caughtCount(pair.b)).toBe(1);
  // B still waits in its task; A waits for B's message
  expect(await instanceState(db.root, pair.b)).toBe('active');
  await as.admin.query('select bpm.complete_task($1)', [pair.taskB]);
  expect(await runDeliveries()).toEqual([]);
  expect([await instanceState(db.root, pair.a), await instanceState(db.root, pair.b)]).toEqual(['completed', 'completed']);
});

test('a delivery is its tenant\'s: another tenant\'s engine delivers nothing; bpm_user may not call deliver_deferred', async () => {
  const held = await start(as.admin, 'guarded');
  const holder = await db.connectAs({ role: 'bpm_admin', tenant: T });
  try {
    await holder.query('begin');
    await holder.query(`select bpm.set_variables($1, '{"busy": true}')`, [held.id]);
    await as.admin.query(`select bpm.broadcast_signal('ToPing')`);
    await holder.query('commit');
  } finally {
    await holder.end();
  }
  const [delivery] = await pendingDeliveries();
  expect((await one<{ n: number }>(other.engine, 'select bpm.deliver_deferred($1) as n', [delivery.delivery_id])).n).toBe(0);
  await expect(as.user.query('select bpm.deliver_deferred($1)', [delivery.delivery_id])).rejects.toMatchObject({ code: '42501' });
  expect(await instanceState(db.root, held.id)).toBe('active');
  expect(await runDeliveries()).toEqual([1]);
  expect(await instanceState(db.root, held.id)).toBe('completed');
});

test('a deferred signal for an instance that is gone (deleted by retention) when it is delivered is dropped', async () => {
  const held = await start(as.admin, 'guarded');
  const holder = await db.connectAs({ role: 'bpm_admin', tenant: T });
  try {
    await holder.query('begin');
    await holder.query(`select bpm.cancel_process_instance($1, 'gone')`, [held.id]);
    await as.admin.query(`select bpm.broadcast_signal('ToPing')`);
    await holder.query('commit');
  } finally {
    await holder.end();
  }
  await db.root.query('delete from bpm.process_instance where id = $1', [held.id]);
  expect(await runDeliveries()).toEqual([0]);
});
