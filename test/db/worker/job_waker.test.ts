/**
 * The job waker (worker/job-waker.ts): idle job loops are woken when a job of
 * theirs comes due, instead of finding it at their next poll. The loops here
 * poll every 10 s, so a timer that fires within a few hundred milliseconds of
 * its due time was woken for; the same run without the waker shows that
 * polling alone would have left it waiting.
 */
import type pg from 'pg';
import { createTestDb, type TestDb } from '../../helpers/db';
import { deployProcess } from '../../helpers/engine';
import { startProcess } from '../elements/support';
import { startTestWorker, waitFor, type TestWorker } from './support';

jest.setTimeout(60_000);

const TENANT = 'waker';
const SLOW_POLL = { jobPollIntervalMs: 10_000 };

let db: TestDb;
let admin: pg.Client;
let worker: TestWorker | undefined;

beforeAll(async () => {
  db = await createTestDb();
  admin = await db.connectAs({ role: 'bpm_admin', tenant: TENANT, user: 'boss' });
  await deployProcess(admin, 'waits', `
    <startEvent id="start"/>
    <sequenceFlow id="f1" sourceRef="start" targetRef="wait"/>
    <intermediateCatchEvent id="wait"><timerEventDefinition><timeDuration>\${delay}</timeDuration></timerEventDefinition></intermediateCatchEvent>
    <sequenceFlow id="f2" sourceRef="wait" targetRef="end"/>
    <endEvent id="end"/>`);
});

afterEach(async () => {
  await worker?.stop();
  worker = undefined;
});

afterAll(async () => {
  await db?.close();
});

interface Timer {
  due_at: Date;
  fired_at: Date | null;
}

/** The instance's timer: when it was due and when it fired (its timerFired event), if it did. */
async function timerOf(instanceId: string): Promise<Timer> {
  const { rows } = await admin.query<Timer>(
    `select (select s.due_at from bpm.event_subscription s where s.instance_id = $1 and s.kind = 'timer') as due_at,
            (select e.created_at from bpm.event e where e.instance_id = $1 and e.kind = 'timerFired') as fired_at`,
    [instanceId],
  );
  return rows[0];
}

async function firedAt(instanceId: string): Promise<Date> {
  return waitFor(`the timer of ${instanceId} to fire`, async () => (await timerOf(instanceId)).fired_at ?? undefined);
}

test('timers due 3 s and 4 s ahead fire within a few hundred milliseconds of their due times, though the loops poll every 10 s', async () => {
  const first = await startProcess(admin, 'waits', { delay: 'PT3S' });
  const second = await startProcess(admin, 'waits', { delay: 'PT4S' });
  const due = [(await timerOf(first.id)).due_at, (await timerOf(second.id)).due_at];
  // the loops look once at start (nothing is due yet), then sleep 10 s
  worker = await startTestWorker(db, { tenants: [], jobs: true, config: SLOW_POLL });

  const fired = [await firedAt(first.id), await firedAt(second.id)];
  for (const [i, at] of fired.entries()) {
    expect(at.getTime()).toBeGreaterThanOrEqual(due[i].getTime());
    expect(at.getTime() - due[i].getTime()).toBeLessThan(500);
  }
  expect(worker.runtime.jobRunner?.wakes).toBeGreaterThanOrEqual(2);
});

test('without the waker (PGBPM_JOB_WAKE_AT_DUE=false) the same timer still waits 1.5 s after its due time: only the next poll would find it', async () => {
  const instance = await startProcess(admin, 'waits', { delay: 'PT3S' });
  const { due_at: due } = await timerOf(instance.id);
  worker = await startTestWorker(db, { tenants: [], jobs: true, config: { ...SLOW_POLL, jobWakeAtDue: false } });

  await new Promise((resolve) => setTimeout(resolve, due.getTime() + 1500 - Date.now()));
  expect(await timerOf(instance.id)).toEqual({ due_at: due, fired_at: null });
  expect(worker.runtime.jobRunner?.wakes).toBe(0);
});

test('a job of a task this worker does not run (another application sharing the queue) never wakes its loops', async () => {
  await db.root.query(`select graphile_worker.add_job('not_pgbpm', '{}'::json, run_at => now() + interval '1 second', job_key => 'waker-foreign')`);
  worker = await startTestWorker(db, { tenants: [], jobs: true, config: SLOW_POLL });

  await new Promise((resolve) => setTimeout(resolve, 2000));
  expect(worker.runtime.jobRunner?.wakes).toBe(0);
  const { rows } = await db.root.query(`select attempts from graphile_worker.jobs where key = 'waker-foreign'`);
  expect(rows).toEqual([{ attempts: 0 }]);
});
