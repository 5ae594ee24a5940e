/**
 * Plans made before the engine's tables were ever analysed: a new database
 * that takes a burst right after its first deployment, before autovacuum
 * has looked at the tables. PL/pgSQL keeps the generic plans it made then for
 * the life of the session (a worker's pool connection), and without
 * statistics every equality looks equally selective, so indexes tie. Firing
 * a timer looked its subscription up "by id and kind = 'timer'", and the
 * tie went to the (tenant, kind, name) index: every firing read every timer
 * of the tenant (a burst of 10,000 timers fired at a third of its speed).
 * Correlating a message to receivers without a key likewise read every
 * receiver of the message name. The plans are read through auto_explain
 * (as notices) with the row counts the scans really read.
 */
import { createTestDb, type TestDb } from '../../helpers/db';
import { deployProcess, deployXml } from '../../helpers/engine';
import { explainingSession } from '../../helpers/plans';

jest.setTimeout(60_000);

const T = 't-unanalysed';
let db: TestDb;

const ORDERS = `<?xml version="1.0" encoding="UTF-8"?>
<definitions xmlns="http://www.omg.org/spec/BPMN/20100524/MODEL" xmlns:zeebe="http://camunda.org/schema/zeebe/1.0" id="d" targetNamespace="http://pgbpm.test">
  <message id="paid" name="paid"><extensionElements><zeebe:subscription correlationKey="=orderId"/></extensionElements></message>
  <message id="anyPaid" name="paid"/>
  <process id="fresh_order" isExecutable="true">
    <startEvent id="s"/><sequenceFlow id="f1" sourceRef="s" targetRef="wait"/>
    <intermediateCatchEvent id="wait"><messageEventDefinition messageRef="paid"/></intermediateCatchEvent>
    <sequenceFlow id="f2" sourceRef="wait" targetRef="e"/><endEvent id="e"/>
  </process>
  <process id="fresh_audit" isExecutable="true">
    <startEvent id="s2"/><sequenceFlow id="g1" sourceRef="s2" targetRef="wait2"/>
    <intermediateCatchEvent id="wait2"><messageEventDefinition messageRef="anyPaid"/></intermediateCatchEvent>
    <sequenceFlow id="g2" sourceRef="wait2" targetRef="e2"/><endEvent id="e2"/>
  </process>
</definitions>`;

/** Most rows a plan node read (returned plus removed by its filter, times its loops), in a plan made with auto_explain's analyze. */
function rowsRead(plan: string): number {
  let most = 0;
  // plan nodes are " -> Name …" (a jsonb "->" in a condition is followed by a quote, not a capital)
  for (const node of plan.split(/ -> (?=[A-Z])/)) {
    const actual = /\(actual rows=(\d+) loops=(\d+)\)/.exec(node);
    if (!actual) continue;
    const removed = /Rows Removed by Filter: (\d+)/.exec(node);
    most = Math.max(most, (Number(actual[1]) + Number(removed?.[1] ?? 0)) * Number(actual[2]));
  }
  return most;
}

beforeAll(async () => {
  db = await createTestDb();
  // the tables as a new database has them: never analysed, and not while the test runs
  await db.root.query(`alter table bpm.event_subscription set (autovacuum_enabled = false)`);
  const { rows: [stats] } = await db.root.query<{ reltuples: number }>(`select reltuples from pg_class where oid = 'bpm.event_subscription'::regclass`);
  expect(stats.reltuples).toBe(-1);
  const admin = await db.connectAs({ role: 'bpm_admin', tenant: T });
  await deployProcess(admin, 'fresh_timer', `
    <startEvent id="s"/><sequenceFlow id="f1" sourceRef="s" targetRef="wait"/>
    <intermediateCatchEvent id="wait"><timerEventDefinition><timeDate>\${dueAt}</timeDate></timerEventDefinition></intermediateCatchEvent>
    <sequenceFlow id="f2" sourceRef="wait" targetRef="e"/><endEvent id="e"/>`);
  await deployXml(admin, [{ name: 'fresh_orders.bpmn', xml: ORDERS }]);
  // 2,000 timers due now; 2,000 orders wait for their payment by key, one listener for any payment
  await admin.query(`select count(bpm.start_process('fresh_timer', jsonb_build_object('dueAt', (now() - interval '1 minute')::text))) from generate_series(1, 2000)`);
  await admin.query(`select count(bpm.start_process('fresh_order', jsonb_build_object('orderId', 'o' || g))) from generate_series(1, 2000) g`);
  await admin.query(`select bpm.start_process('fresh_audit')`);
  await admin.end();
});

afterAll(async () => {
  await db?.close();
});

test('a firing reads its timer subscription by primary key, not every timer of the tenant', async () => {
  const { session, record, close } = await explainingSession(db.root, 'bpm_engine', T, { analyze: true });
  try {
    // the job's own timer (timer__take) and the others of its batch (fire_due_timers)
    const recorded = record('from bpm.event_subscription s where s.tenant_id = ');
    const { rows: [due] } = await session.query<{ id: string }>(`select id from bpm.event_subscription where kind = 'timer' limit 1`);
    const { rows: [fired] } = await session.query<{ n: number }>(`select bpm.fire_due_timers($1, 5) as n`, [due.id]);
    expect(fired.n).toBe(5);
    const plans = recorded.filter((p) => /s\.id = (subscription_id|v_due\.id)\b/.test(p));
    expect(plans.filter((p) => p.includes('s.id = subscription_id')).length).toBeGreaterThanOrEqual(1);
    expect(plans.filter((p) => p.includes('s.id = v_due.id')).length).toBe(4);
    for (const plan of plans) {
      expect(plan).toMatch(/Index Scan using event_subscription_pkey on event_subscription s/);
      expect(rowsRead(plan)).toBeLessThanOrEqual(1);
    }
  } finally {
    await close();
  }
});

test('a message that no keyed receiver waits for reaches the receiver without a key reading a few index entries, not every receiver of its name', async () => {
  const { session, record, close } = await explainingSession(db.root, 'bpm_admin', T, { analyze: true });
  try {
    const plans = record('s.correlation_key = message__receivers.correlation_key');
    const { rows: [hit] } = await session.query<{ business_key: string; state: string }>(`select business_key, state from bpm.correlate_message('paid', 'o-unknown')`);
    expect(hit).toEqual({ business_key: null, state: 'completed' });
    expect(plans).toHaveLength(1);
    expect(plans[0]).not.toMatch(/Seq Scan on event_subscription/);
    // a few entries per branch, not the 2,000 orders waiting for "paid"
    expect(rowsRead(plans[0])).toBeLessThanOrEqual(2);
  } finally {
    await close();
  }
});
