/**
 * Plans of fetch_and_lock. It sorted every open task of the topic to pick
 * the oldest (its order had a tie-breaker no index had): 9 to 14 ms per fetch
 * at 3,000 queued tasks, growing with the queue. It reads the topic's queue
 * in index order now and stops after max_tasks fetchable tasks; tasks with
 * an incident (no retries left) are not in that index. The plans PostgreSQL
 * uses inside the call are read through auto_explain (as notices), as a
 * worker session meets them.
 */
import { createTestDb, type TestDb } from '../../helpers/db';
import { deployProcess } from '../../helpers/engine';
import { explainingSession } from '../../helpers/plans';
import { externalTaskBody } from './support';

jest.setTimeout(60_000);

const T = 't-fetch-plans';
let db: TestDb;

beforeAll(async () => {
  db = await createTestDb();
  const admin = await db.connectAs({ role: 'bpm_admin', tenant: T });
  await deployProcess(admin, 'plans_queue', externalTaskBody('plans_queue'));
  // a backlog of 3,000 tasks, 200 of them failed for good (incidents)
  await admin.query(`select count(bpm.start_process('plans_queue')) from generate_series(1, 3000)`);
  const engine = await db.connectAs({ role: 'bpm_engine', tenant: T });
  await engine.query(`select count(bpm.fail_external_task(f.id, 'w0', 'down', 0)) from bpm.fetch_and_lock('plans_queue', 'w0', 200) f`);
  await engine.end();
  await db.root.query('analyze bpm.external_task, bpm.process_instance');
  await admin.end();
});

afterAll(async () => {
  await db?.close();
});

test('fetch_and_lock reads the topic\'s queue in index order, without sorting the queue', async () => {
  const { session, record, close } = await explainingSession(db.root, 'bpm_engine', T);
  try {
    const plans = record('from bpm.external_task e where e.tenant_id = v_tenant and e.topic = fetch_and_lock.topic');
    const { rows } = await session.query<{ id: string; retries: number | null }>(`select id, retries from bpm.fetch_and_lock('plans_queue', 'w1', 5)`);
    expect(rows).toHaveLength(5);
    expect(rows.every((r) => r.retries === null)).toBe(true);
    expect(plans).toHaveLength(1);
    expect(plans[0]).toMatch(/Limit .*LockRows .*Index Scan using external_task_fetch_priority_idx on external_task e \([^)]*\) Index Cond: \(\(tenant_id = \$\d+\) AND \(topic = \$\d+\)(\)| AND \(available_at <= now\(\)\)\))/);
    expect(plans[0]).not.toMatch(/Sort Key: e\.(priority|available_at)|Seq Scan on external_task/);
  } finally {
    await close();
  }
});
