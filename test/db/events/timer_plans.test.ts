/**
 * Plans of a timer batch. bpm.fire_due_timers locks each due timer's
 * instance by id; written as "state = 'active'", that condition matches the
 * partial index of active instances, and a generic plan made on statistics
 * that saw few of them walked every active instance of the tenant for each
 * timer (1 ms per timer at 10,000 active instances: a burst of 10,000 timers
 * took 18 s instead of 3). The plans PostgreSQL uses inside the call are
 * read through auto_explain (as notices), on statistics made before the
 * burst existed, as a worker session meets them. Likewise the history rows a
 * firing ends: an UPDATE joined with unnest() of their ids was planned as a
 * hash join over the tenant's whole history (1 ms per timer at 5,000 rows,
 * growing with the history); they are updated by primary key. And the due
 * timers of a batch: they were picked from every armed timer of the tenant
 * (7 ms per batch at 20,000 timers due next month); an index on the due time
 * reads only the due ones.
 */
import { createTestDb, type TestDb } from '../../helpers/db';
import { deployProcess } from '../../helpers/engine';
import { explainingSession } from '../../helpers/plans';

jest.setTimeout(60_000);

const T = 't-timer-plans';
let db: TestDb;

beforeAll(async () => {
  db = await createTestDb();
  const admin = await db.connectAs({ role: 'bpm_admin', tenant: T });
  await deployProcess(admin, 'plans_timer', `
    <startEvent id="s"/><sequenceFlow id="f1" sourceRef="s" targetRef="wait"/>
    <intermediateCatchEvent id="wait"><timerEventDefinition><timeDate>\${dueAt}</timeDate></timerEventDefinition></intermediateCatchEvent>
    <sequenceFlow id="f2" sourceRef="wait" targetRef="e"/><endEvent id="e"/>`);
  // statistics of an (almost) empty engine, then the burst: 3,000 active instances waiting on due timers
  await db.root.query('analyze bpm.process_instance, bpm.event_subscription, bpm.incident, bpm.activity_instance, bpm_private.token');
  await admin.query(`select count(bpm.start_process('plans_timer', jsonb_build_object('dueAt', (now() - interval '1 minute')::text))) from generate_series(1, 3000)`);
  // and 2,000 timers due next month
  await admin.query(`select count(bpm.start_process('plans_timer', jsonb_build_object('dueAt', (now() + interval '30 days')::text))) from generate_series(1, 2000)`);
  await admin.end();
});

afterAll(async () => {
  await db?.close();
});

test('a timer batch locks each instance by its primary key, not by walking the active instances', async () => {
  const { session, record, close } = await explainingSession(db.root, 'bpm_engine', T);
  try {
    const plans = record('process_instance');
    const { rows: [due] } = await session.query<{ id: string }>(`select id from bpm.event_subscription where kind = 'timer' limit 1`);
    const { rows: [fired] } = await session.query<{ n: number }>(`select bpm.fire_due_timers($1, 50) as n`, [due.id]);
    expect(fired.n).toBe(50);
    const lookups = plans.filter((p) => /from bpm\.process_instance i join bpm\.process_definition d .* where i\.tenant_id = v_tenant and i\.id = v_due\.instance_id/i.test(p));
    expect(lookups.length).toBeGreaterThan(0);
    expect(lookups.filter((p) => p.includes('process_instance_definition_idx'))).toEqual([]);
    expect(lookups.every((p) => p.includes('process_instance_pkey'))).toBe(true);
  } finally {
    await close();
  }
});

test('each firing ends its history row by primary key, not by a join over the tenant\'s history', async () => {
  const { session, record, close } = await explainingSession(db.root, 'bpm_engine', T);
  try {
    const plans = record('update bpm.activity_instance');
    const { rows: [due] } = await session.query<{ id: string }>(`select id from bpm.event_subscription where kind = 'timer' limit 1`);
    const { rows: [fired] } = await session.query<{ n: number }>(`select bpm.fire_due_timers($1, 20) as n`, [due.id]);
    expect(fired.n).toBe(20);
    expect(plans.length).toBeGreaterThanOrEqual(20);
    for (const plan of plans) {
      expect(plan).toMatch(/Index Scan using activity_instance_pkey on activity_instance a/);
      expect(plan).not.toMatch(/Hash Join|Seq Scan on activity_instance|activity_instance_instance_idx/);
    }
  } finally {
    await close();
  }
});

test('a timer batch reads the due timers through the due-time index, not every armed timer of the tenant', async () => {
  const { session, record, close } = await explainingSession(db.root, 'bpm_engine', T);
  try {
    const plans = record('s.due_at <= pg_catalog.now()');
    const { rows: [due] } = await session.query<{ id: string }>(`select id from bpm.event_subscription where kind = 'timer' and due_at < now() limit 1`);
    const { rows: [fired] } = await session.query<{ n: number }>(`select bpm.fire_due_timers($1, 10) as n`, [due.id]);
    expect(fired.n).toBe(10);
    expect(plans).toHaveLength(1);
    expect(plans[0]).toMatch(/Index Scan using event_subscription_due_idx on event_subscription s \([^)]*\) Index Cond: \(\(tenant_id = \$\d+\) AND \(due_at <= now\(\)\)\)/);
    expect(plans[0]).not.toMatch(/event_subscription_start_idx|Seq Scan on event_subscription/);
  } finally {
    await close();
  }
});
