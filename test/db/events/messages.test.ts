/**
 * Messages (issue 4): correlate_message delivers to exactly one receiver —
 * catch events, receive tasks, boundary events, start events — by name and
 * correlation key; ttl buffers early messages; message ids deduplicate;
 * errors leave everything as it was; other tenants are out of reach.
 */
import { createTestDb, type TestDb } from '../../helpers/db';
import { expectRejectedUnchanged } from '../../helpers/engine';
import { actors, all, count, deployDefs, history, instanceState, one, openUserTask, start, subscriptions, tokens, type Actors } from './support';

const T = 'msg-t';
const OTHER = 'msg-other';

let db: TestDb;
let as: Actors;
let other: Actors;

const PAID = `<message id="m_paid" name="Paid"/>`;
const catchPaid = (extra = '') => `
    <startEvent id="start"/>
    <sequenceFlow id="f1" sourceRef="start" targetRef="wait"/>
    <intermediateCatchEvent id="wait"><messageEventDefinition messageRef="m_paid"/></intermediateCatchEvent>
    <sequenceFlow id="f2" sourceRef="wait" targetRef="end"/>
    <endEvent id="end"/>${extra}`;

beforeAll(async () => {
  db = await createTestDb();
  as = await actors(db, T);
  other = await actors(db, OTHER);
  await deployDefs(as.admin, 'paid', PAID, catchPaid());
  await deployDefs(other.admin, 'paid', PAID, catchPaid());
  await deployDefs(
    as.admin,
    'paid-c8',
    `<message id="m_paid" name="Paid8"><extensionElements><zeebe:subscription correlationKey="=orderId"/></extensionElements></message>`,
    catchPaid(),
  );
  await deployDefs(
    as.admin,
    'approval',
    `<message id="m_cancel" name="Cancel"/><message id="m_nudge" name="Nudge"/>`,
    `
    <startEvent id="start"/>
    <sequenceFlow id="f1" sourceRef="start" targetRef="approve"/>
    <userTask id="approve" camunda:assignee="boss"/>
    <boundaryEvent id="cancelled" attachedToRef="approve"><messageEventDefinition messageRef="m_cancel"/></boundaryEvent>
    <boundaryEvent id="nudged" attachedToRef="approve" cancelActivity="false"><messageEventDefinition messageRef="m_nudge"/></boundaryEvent>
    <sequenceFlow id="f2" sourceRef="approve" targetRef="done"/>
    <endEvent id="done"/>
    <sequenceFlow id="f3" sourceRef="cancelled" targetRef="gone"/>
    <endEvent id="gone"/>
    <sequenceFlow id="f4" sourceRef="nudged" targetRef="noted"/>
    <endEvent id="noted"/>`,
  );
  await deployDefs(
    as.admin,
    'receipt',
    `<message id="m_receipt" name="Receipt"/>`,
    `
    <startEvent id="start"/>
    <sequenceFlow id="f1" sourceRef="start" targetRef="receive"/>
    <receiveTask id="receive" messageRef="m_receipt"/>
    <sequenceFlow id="f2" sourceRef="receive" targetRef="end"/>
    <endEvent id="end"/>`,
  );
  await deployDefs(
    as.admin,
    'ordering',
    `<message id="m_order" name="Order"/>`,
    `
    <startEvent id="byMessage"><messageEventDefinition messageRef="m_order"/></startEvent>
    <sequenceFlow id="f1" sourceRef="byMessage" targetRef="handle"/>
    <userTask id="handle"/>
    <sequenceFlow id="f2" sourceRef="handle" targetRef="end"/>
    <endEvent id="end"/>`,
  );
});
afterAll(() => db.close());

async function correlate(client = as.admin, name: string, key: string | null = null, variables: object = {}, ttl: string | null = null, messageId: string | null = null) {
  const { rows } = await client.query<{ id: string | null; state: string | null; business_key: string | null; variables: Record<string, unknown> | null }>(
    'select id, state, business_key, variables from bpm.correlate_message($1, $2, $3::jsonb, $4::interval, $5)',
    [name, key, JSON.stringify(variables), ttl, messageId],
  );
  return rows[0];
}

describe('catch events', () => {
  test('a camunda catch event correlates on the business key; variables merge; the instance moves on', async () => {
    const inst = await start(as.admin, 'paid', {}, 'o-1');
    const [sub] = await subscriptions(db.root, inst.id);
    expect(sub).toMatchObject({ kind: 'message', name: 'Paid', correlation_key: 'o-1', element_id: 'wait' });
    expect(await tokens(db.root, inst.id)).toEqual(['wait:event']);
    const got = await correlate(as.admin, 'Paid', 'o-1', { paid: true });
    expect(got).toMatchObject({ id: inst.id, state: 'completed', variables: { paid: true } });
    expect(await history(db.root, inst.id)).toEqual(['start:completed', 'wait:completed', 'end:completed']);
    expect(await subscriptions(db.root, inst.id)).toEqual([]);
    expect(await tokens(db.root, inst.id)).toEqual([]);
    expect(await count(db.root, `select 1 from bpm.event where instance_id = $1 and kind = 'messageCorrelated'`, [inst.id])).toBe(1);
  });

  test('a zeebe subscription correlates on its correlationKey expression, evaluated when it opens', async () => {
    const inst = await start(as.admin, 'paid-c8', { orderId: 'A7' });
    expect((await subscriptions(db.root, inst.id))[0]).toMatchObject({ name: 'Paid8', correlation_key: 'A7' });
    await expectRejectedUnchanged(db.root, () => correlate(as.admin, 'Paid8', 'B1'), 'BP106', /no process instance or message start event waits for message Paid8 \(correlation key B1\)/);
    expect((await correlate(as.admin, 'Paid8', 'A7')).state).toBe('completed');
  });

  test('a null key matches any waiting receiver; two matches are an error that changes nothing', async () => {
    const a = await start(as.admin, 'paid', {}, 'n-1');
    const b = await start(as.admin, 'paid', {}, 'n-2');
    await expectRejectedUnchanged(db.root, () => correlate(as.admin, 'Paid'), 'BP207', /message Paid \(correlation key null\) matches more than one waiting receiver/);
    await correlate(as.admin, 'Paid', 'n-1');
    expect((await correlate(as.admin, 'Paid')).id).toBe(b.id);
    expect(await instanceState(db.root, a.id)).toBe('completed');
  });

  test('a receive task waits for its message', async () => {
    const inst = await start(as.admin, 'receipt', {}, 'r-1');
    expect(await tokens(db.root, inst.id)).toEqual(['receive:event']);
    expect((await correlate(as.user, 'Receipt', 'r-1', { receipt: 'ok' })).state).toBe('completed');
    expect(await history(db.root, inst.id)).toEqual(['start:completed', 'receive:completed', 'end:completed']);
  });
});

describe('boundary events', () => {
  test('an interrupting message boundary cancels the user task and takes its path', async () => {
    const inst = await start(as.admin, 'approval', {}, 'b-1');
    const task = await openUserTask(db.root, inst.id);
    expect((await subscriptions(db.root, inst.id)).map((s) => [s.element_id, s.token_id, s.interrupting])).toEqual([
      ['cancelled', task.id, true],
      ['nudged', task.id, false],
    ]);
    expect((await correlate(as.admin, 'Cancel', 'b-1')).state).toBe('completed');
    expect((await one<{ state: string }>(db.root, 'select state from bpm.user_task where id = $1', [task.id])).state).toBe('cancelled');
    expect(await history(db.root, inst.id)).toEqual(['start:completed', 'approve:cancelled', 'cancelled:completed', 'gone:completed']);
    expect(await subscriptions(db.root, inst.id)).toEqual([]);
  });

  test('a non-interrupting message boundary fires each time while the task waits; completing the task closes it', async () => {
    const inst = await start(as.admin, 'approval', {}, 'b-2');
    await correlate(as.admin, 'Nudge', 'b-2');
    await correlate(as.admin, 'Nudge', 'b-2');
    const task = await openUserTask(db.root, inst.id);
    expect(await instanceState(db.root, inst.id)).toBe('active');
    await as.admin.query('select bpm.complete_task($1)', [task.id]);
    expect(await instanceState(db.root, inst.id)).toBe('completed');
    expect(await subscriptions(db.root, inst.id)).toEqual([]);
    expect(await history(db.root, inst.id)).toEqual([
      'start:completed', 'approve:completed', 'nudged:completed', 'noted:completed', 'nudged:completed', 'noted:completed', 'done:completed',
    ]);
    await expectRejectedUnchanged(db.root, () => correlate(as.admin, 'Nudge', 'b-2'), 'BP106');
  });
});

describe('start events', () => {
  test('a message start event starts an instance with the correlation key as business key', async () => {
    const got = await correlate(as.user, 'Order', 'ord-9', { item: 'book' });
    expect(got).toMatchObject({ state: 'active', business_key: 'ord-9', variables: { item: 'book' } });
    expect(await history(db.root, got.id ?? '')).toEqual(['byMessage:completed', 'handle:active']);
    // start_process cannot start it: it has no none start event
    await expectRejectedUnchanged(db.root, () => as.admin.query(`select bpm.start_process('ordering')`), 'BP308', /process ordering has no none start event/);
  });

  test('a redeploy replaces the start subscription; a second process with the same message start makes it ambiguous', async () => {
    const before = await subscriptions(db.root, null, T);
    expect(before.filter((s) => s.name === 'Order')).toHaveLength(1);
    await deployDefs(as.admin, 'ordering', `<message id="m_order" name="Order"/>`, `
    <startEvent id="byMessage2"><messageEventDefinition messageRef="m_order"/></startEvent>
    <sequenceFlow id="f1" sourceRef="byMessage2" targetRef="end"/>
    <endEvent id="end"/>`);
    const after = (await subscriptions(db.root, null, T)).filter((s) => s.name === 'Order');
    expect(after.map((s) => s.element_id)).toEqual(['byMessage2']);
    await deployDefs(as.admin, 'ordering-too', `<message id="m_order" name="Order"/>`, `
    <startEvent id="s"><messageEventDefinition messageRef="m_order"/></startEvent>
    <sequenceFlow id="f1" sourceRef="s" targetRef="end"/>
    <endEvent id="end"/>`);
    await expectRejectedUnchanged(db.root, () => correlate(as.admin, 'Order', 'x'), 'BP207', /message Order starts more than one process/);
  });
});

describe('ttl buffer and message ids', () => {
  test('an early message with a ttl is kept and delivered when the subscription opens', async () => {
    expect((await correlate(as.admin, 'Paid', 'early-1', { early: true }, '1 hour')).id).toBeNull();
    expect(await count(db.root, `select 1 from bpm.message_buffer where tenant_id = $1 and correlation_key = 'early-1'`, [T])).toBe(1);
    const inst = await start(as.admin, 'paid', {}, 'early-1');
    expect(inst.state).toBe('completed');
    expect(inst.variables).toEqual({ early: true });
    expect(await count(db.root, `select 1 from bpm.message_buffer where tenant_id = $1 and correlation_key = 'early-1'`, [T])).toBe(0);
  });

  test('an expired message is not delivered', async () => {
    await correlate(as.admin, 'Paid', 'early-2', {}, '5 milliseconds');
    await new Promise((r) => setTimeout(r, 30));
    const inst = await start(as.admin, 'paid', {}, 'early-2');
    expect(inst.state).toBe('active');
    expect(await tokens(db.root, inst.id)).toEqual(['wait:event']);
    await correlate(as.admin, 'Paid', 'early-2');
  });

  test('without a ttl, a message nobody waits for is an error that changes nothing', async () => {
    await expectRejectedUnchanged(db.root, () => correlate(as.admin, 'Nobody', 'k'), 'BP106', /no process instance or message start event waits for message Nobody \(correlation key k\)/);
  });

  test('a repeated message id is a no-op while buffered and after delivery', async () => {
    expect((await correlate(as.admin, 'Paid', 'dup-1', { n: 1 }, '1 hour', 'msg-1')).id).toBeNull();
    expect((await correlate(as.admin, 'Paid', 'dup-1', { n: 2 }, '1 hour', 'msg-1')).id).toBeNull();
    expect(await count(db.root, `select 1 from bpm.message_buffer where message_id = 'msg-1'`)).toBe(1);
    const inst = await start(as.admin, 'paid', {}, 'dup-2');
    const first = await correlate(as.admin, 'Paid', 'dup-2', { n: 3 }, null, 'msg-2');
    expect(first).toMatchObject({ id: inst.id, state: 'completed' });
    const again = await correlate(as.admin, 'Paid', 'dup-2', { n: 4 }, null, 'msg-2');
    expect(again).toMatchObject({ id: inst.id, variables: { n: 3 } });
  });
});

describe('errors and isolation', () => {
  test('a suspended receiver rejects the message (BP202) and nothing changes', async () => {
    const inst = await start(as.admin, 'paid', {}, 's-1');
    await as.admin.query('select bpm.suspend_process_instance($1)', [inst.id]);
    await expectRejectedUnchanged(db.root, () => correlate(as.admin, 'Paid', 's-1'), 'BP202', /suspended/);
    await as.admin.query('select bpm.activate_process_instance($1)', [inst.id]);
    expect((await correlate(as.admin, 'Paid', 's-1')).state).toBe('completed');
  });

  test('tenant B cannot correlate into tenant A: no receiver (BP106), A still waits', async () => {
    const inst = await start(as.admin, 'paid', {}, 'iso-1');
    await expectRejectedUnchanged(db.root, () => correlate(other.admin, 'Paid', 'iso-1'), 'BP106');
    await expectRejectedUnchanged(db.root, () => correlate(other.engine, 'Paid'), 'BP106');
    expect(await tokens(db.root, inst.id)).toEqual(['wait:event']);
    expect(await count(other.admin, 'select 1 from bpm.event_subscription')).toBe(0);
    expect((await correlate(as.admin, 'Paid', 'iso-1')).state).toBe('completed');
  });

  test('invalid arguments are BP401', async () => {
    await expectRejectedUnchanged(db.root, () => correlate(as.admin, ''), 'BP401', /message_name is required/);
    await expectRejectedUnchanged(db.root, () => correlate(as.admin, 'Paid', null, {}, '-1 hour'), 'BP401', /ttl must be positive/);
    await expectRejectedUnchanged(db.root, () => as.admin.query(`select bpm.correlate_message('Paid', null, '[]')`), 'BP401');
  });

  test('thrown messages reach a receiver in the same tenant within the same transaction', async () => {
    await deployDefs(as.admin, 'pinger', `<message id="m_ping" name="Paid"/>`, `
    <startEvent id="start"/>
    <sequenceFlow id="f1" sourceRef="start" targetRef="ping"/>
    <intermediateThrowEvent id="ping">
      <extensionElements><camunda:properties><camunda:property name="correlationKey" value="\${target}"/></camunda:properties></extensionElements>
      <messageEventDefinition messageRef="m_ping"/>
    </intermediateThrowEvent>
    <sequenceFlow id="f2" sourceRef="ping" targetRef="end"/>
    <endEvent id="end"/>`);
    const receiver = await start(as.admin, 'paid', {}, 'ping-1');
    const pinger = await start(as.admin, 'pinger', { target: 'ping-1' });
    expect(pinger.state).toBe('completed');
    expect(await instanceState(db.root, receiver.id)).toBe('completed');
    // nobody waiting for that key: the throw passes
    expect((await start(as.admin, 'pinger', { target: 'nobody' })).state).toBe('completed');
  });
});

describe('concurrency', () => {
  test('two correlations racing for one receiver: exactly one delivers, 50 times', async () => {
    const a = await db.connectAs({ role: 'bpm_admin', tenant: T, user: 'a' });
    const b = await db.connectAs({ role: 'bpm_admin', tenant: T, user: 'b' });
    try {
      for (let i = 0; i < 50; i++) {
        const inst = await start(as.admin, 'paid', {}, `race-${i}`);
        const results = await Promise.allSettled([correlate(a, 'Paid', `race-${i}`), correlate(b, 'Paid', `race-${i}`)]);
        const ok = results.filter((r) => r.status === 'fulfilled');
        const failed = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
        expect(ok).toHaveLength(1);
        expect(failed.map((f) => (f.reason as { code?: string }).code)).toEqual(['BP106']);
        expect(await all(db.root, `select 1 from bpm.activity_instance where instance_id = $1 and element_id = 'wait' and state = 'completed'`, [inst.id])).toHaveLength(1);
      }
    } finally {
      await a.end();
      await b.end();
    }
  });
});
