/**
 * Plans of a timer job's removal. A timer's job is cancelled (the timer fired
 * or its token left) by job key, as graphile_worker.remove_job does. A
 * PL/pgSQL function that ran a few times while the job queue was small keeps
 * a generic plan made then, and the planner's best plan for a table of one
 * page is a sequential scan, kept when the queue has grown to thousands of
 * jobs until the queue is next analysed (measured with remove_job: 1.9 ms per
 * removal at 20,000 jobs instead of 0.1 ms; the timer benchmark's burst
 * drained at half its speed in such runs). The engine removes timer jobs with
 * generic plans made with sequential scans off (bpm_private.timer__dequeue).
 * Read through auto_explain (as notices), in one long-lived session. (The
 * engine's lookup of a held job by key when it schedules one, job__unkey, is
 * planned the same way: see bpm_private.timer__dequeue.)
 */
import { createTestDb, type TestDb } from '../../helpers/db';
import { deployProcess } from '../../helpers/engine';
import { explainingSession } from '../../helpers/plans';

jest.setTimeout(60_000);

const T = 't-job-plans';
let db: TestDb;

beforeAll(async () => {
  db = await createTestDb();
  const admin = await db.connectAs({ role: 'bpm_admin', tenant: T });
  await deployProcess(admin, 'plans_job', `
    <startEvent id="s"/><sequenceFlow id="f1" sourceRef="s" targetRef="wait"/>
    <intermediateCatchEvent id="wait"><timerEventDefinition><timeDuration>PT1H</timeDuration></timerEventDefinition></intermediateCatchEvent>
    <sequenceFlow id="f2" sourceRef="wait" targetRef="e"/><endEvent id="e"/>`);
  await admin.end();
});

afterAll(async () => {
  await db?.close();
});

test('a session that cancelled timers on a small queue still removes their jobs by key when the queue is large', async () => {
  const { session, record, close } = await explainingSession(db.root, 'bpm_admin', T);
  const startAndCancel = async (): Promise<void> => {
    const { rows: [i] } = await session.query<{ id: string }>(`select (bpm.start_process('plans_job')).id`);
    await session.query(`select bpm.cancel_process_instance($1)`, [i.id]);
  };
  try {
    // an idle system's queue, as autovacuum last analysed it: empty
    await db.root.query('analyze graphile_worker._private_jobs');
    // a small queue: enough calls for PostgreSQL to settle on a generic plan
    for (let n = 0; n < 8; n++) await startAndCancel();
    // the queue grows (another session): 3,000 armed timers
    const other = await db.connectAs({ role: 'bpm_admin', tenant: T });
    await other.query(`select count(bpm.start_process('plans_job')) from generate_series(1, 3000)`);
    await other.end();
    const plans = record('_private_jobs');
    await startAndCancel();
    const removal = plans.filter((p) => /delete from graphile_worker\._private_jobs/i.test(p));
    expect(removal.length).toBe(1);
    expect(removal[0]).not.toMatch(/Seq Scan on _private_jobs/);
    expect(removal[0]).toMatch(/Index Scan using jobs_key_key\d* on _private_jobs/);
  } finally {
    await close();
  }
});
