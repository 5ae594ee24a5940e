/**
 * Plans of message correlation. A correlation by key used to read every
 * waiting receiver of the message name (the index stopped at the name; the
 * key was a filter, then a sort by age): 5 ms per correlation at 20,000
 * waiting orders, growing with them. Receivers and buffered messages are
 * found through indexes on (name, correlation key, age) now. The plans
 * PostgreSQL uses inside the calls are read through auto_explain (as
 * notices), as an API session meets them.
 */
import { createTestDb, type TestDb } from '../../helpers/db';
import { deployXml } from '../../helpers/engine';
import { explainingSession } from '../../helpers/plans';

jest.setTimeout(60_000);

const T = 't-message-plans';
let db: TestDb;

const MODEL = `<?xml version="1.0" encoding="UTF-8"?>
<definitions xmlns="http://www.omg.org/spec/BPMN/20100524/MODEL" xmlns:zeebe="http://camunda.org/schema/zeebe/1.0" id="d" targetNamespace="http://pgbpm.test">
  <message id="paid" name="paid"><extensionElements><zeebe:subscription correlationKey="=orderId"/></extensionElements></message>
  <process id="plans_order" isExecutable="true">
    <startEvent id="s"/><sequenceFlow id="f1" sourceRef="s" targetRef="wait"/>
    <intermediateCatchEvent id="wait"><messageEventDefinition messageRef="paid"/></intermediateCatchEvent>
    <sequenceFlow id="f2" sourceRef="wait" targetRef="e"/><endEvent id="e"/>
  </process>
</definitions>`;

beforeAll(async () => {
  db = await createTestDb();
  const admin = await db.connectAs({ role: 'bpm_admin', tenant: T });
  await deployXml(admin, [{ name: 'plans_order.bpmn', xml: MODEL }]);
  // 3,000 orders wait for their payment; 500 early payments of other orders are buffered
  await admin.query(`select count(bpm.start_process('plans_order', jsonb_build_object('orderId', 'o' || g))) from generate_series(1, 3000) g`);
  await admin.query(`select count(bpm.correlate_message('paid', 'early' || g, '{}', interval '1 hour')) from generate_series(1, 500) g`);
  await db.root.query('analyze bpm.event_subscription, bpm.message_buffer');
  await admin.end();
});

afterAll(async () => {
  await db?.close();
});

test('a correlation by key finds its receiver through the correlation index, not by reading the name\'s receivers', async () => {
  const { session, record, close } = await explainingSession(db.root, 'bpm_admin', T);
  try {
    const plans = record('from bpm.event_subscription s');
    const { rows: [hit] } = await session.query<{ state: string }>(`select (bpm.correlate_message('paid', 'o1234', '{"paid": true}')).state`);
    expect(hit.state).toBe('completed');
    const receivers = plans.filter((p) => p.includes('s.correlation_key = message__receivers.correlation_key'));
    expect(receivers).toHaveLength(1);
    // the receivers with the key, and those without one: each a range of the index
    expect(receivers[0]).toMatch(
      /Index Scan using event_subscription_correlation_idx on event_subscription s \([^)]*\) Index Cond: \(\(tenant_id = \$1\) AND \(\(kind\)::text = 'message'::text\) AND \(name = \$2\) AND \(correlation_key = \$3\)\)/,
    );
    expect(receivers[0]).toMatch(/Index Scan using event_subscription_correlation_idx on event_subscription s_1 \([^)]*\) Index Cond: \(.*\(correlation_key IS NULL\)\)/);
    // the receivers with any key only for a message without one
    expect(receivers[0]).toMatch(/One-Time Filter: \(\(\$3 IS NULL\) AND .* on event_subscription s_2/);
    expect(receivers[0]).not.toMatch(/event_subscription_start_idx/);
  } finally {
    await close();
  }
});

test('a new receiver takes its buffered message through the buffer\'s correlation index', async () => {
  const { session, record, close } = await explainingSession(db.root, 'bpm_admin', T);
  try {
    const plans = record('from bpm.message_buffer b');
    const { rows: [started] } = await session.query<{ state: string }>(`select (bpm.start_process('plans_order', '{"orderId": "early321"}')).state`);
    expect(started.state).toBe('completed');
    const lookups = plans.filter((p) => p.includes('b.correlation_key = message_buffer__take.correlation_key'));
    expect(lookups).toHaveLength(1);
    expect(lookups[0]).toMatch(/Index Scan using message_buffer_correlation_idx on message_buffer b \([^)]*\) Index Cond: \(\(tenant_id = \$1\) AND \(name = \$3\) AND \(correlation_key = \$4\)\)/);
    expect(lookups[0]).toMatch(/Index Scan using message_buffer_correlation_idx on message_buffer b_1 \([^)]*\) Index Cond: \(.*\(correlation_key IS NULL\)\)/);
    expect(lookups[0]).toMatch(/One-Time Filter: \(\(\$4 IS NULL\) AND .* on message_buffer b_2/);
  } finally {
    await close();
  }
  const { rows } = await db.root.query<{ n: string }>(`select count(*) as n from bpm.message_buffer where tenant_id = $1`, [T]);
  expect(Number(rows[0].n)).toBe(499);
});
