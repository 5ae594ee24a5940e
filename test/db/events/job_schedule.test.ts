/**
 * The jobs the engine schedules (bpm_private.job__schedule, db/functions/engine/jobs.sql):
 * written as graphile_worker.add_job writes a keyed job in its 'replace' mode,
 * with NOTIFY jobs:insert only for a job due now. The reference is add_job
 * itself, called by the superuser on the same queue with another key; the
 * engine is driven through its public functions (a timer armed by a start,
 * re-armed by an activation; an asynchronous continuation).
 */
import type pg from 'pg';
import { createTestDb, type TestDb } from '../../helpers/db';
import { deployProcess } from '../../helpers/engine';

const T = 't-job-schedule';
let db: TestDb;
let admin: pg.Client;

/** A job row's columns as JobRow reads them. */
const JOB_COLUMNS = 'id::text, task_id, job_queue_id, payload, run_at, priority, attempts, max_attempts, key, revision, flags, last_error, locked_at';

interface JobRow {
  id: string;
  task_id: number;
  job_queue_id: number | null;
  payload: unknown;
  run_at: Date;
  priority: number;
  attempts: number;
  max_attempts: number;
  key: string | null;
  revision: number;
  flags: unknown;
  last_error: string | null;
  locked_at: Date | null;
}

beforeAll(async () => {
  db = await createTestDb();
  admin = await db.connectAs({ role: 'bpm_admin', tenant: T });
  await deployProcess(admin, 'sched_timer', `
    <startEvent id="s"/><sequenceFlow id="f1" sourceRef="s" targetRef="wait"/>
    <intermediateCatchEvent id="wait" camunda:jobPriority="7"><timerEventDefinition><timeDuration>PT1H</timeDuration></timerEventDefinition></intermediateCatchEvent>
    <sequenceFlow id="f2" sourceRef="wait" targetRef="e"/><endEvent id="e"/>`);
  await deployProcess(admin, 'sched_async', `
    <startEvent id="s"/><sequenceFlow id="f1" sourceRef="s" targetRef="task"/>
    <userTask id="task" camunda:asyncBefore="true"/>
    <sequenceFlow id="f2" sourceRef="task" targetRef="e"/><endEvent id="e"/>`);
});

afterAll(async () => {
  await admin?.end();
  await db?.close();
});

/** The job rows of a key, oldest first, and those that lost it (key null) for the same payload. */
async function jobsOf(payloadField: string, id: string): Promise<JobRow[]> {
  const { rows } = await db.root.query<JobRow>(
    `select ${JOB_COLUMNS} from graphile_worker._private_jobs j where j.payload ->> $1 = $2 order by j.id`,
    [payloadField, id],
  );
  return rows;
}

/** The timer subscription of an instance's catch event (its id names the job key). */
async function timerOf(instanceId: string): Promise<{ id: string; due_at: Date }> {
  const { rows } = await admin.query<{ id: string; due_at: Date }>(
    `select id, due_at from bpm.event_subscription where instance_id = $1 and kind = 'timer'`,
    [instanceId],
  );
  expect(rows).toHaveLength(1);
  return rows[0] as { id: string; due_at: Date };
}

/** Notifications on jobs:insert that arrive while `work` runs and for 300 ms after. */
async function jobNotifications(work: () => Promise<void>): Promise<string[]> {
  const listener = await db.root.connect();
  const seen: string[] = [];
  const onNotification = (n: pg.Notification): void => {
    if (n.channel === 'jobs:insert') seen.push(n.payload ?? '');
  };
  listener.on('notification', onNotification);
  try {
    await listener.query('listen "jobs:insert"');
    await work();
    await new Promise((resolve) => setTimeout(resolve, 300));
    return seen;
  } finally {
    listener.off('notification', onNotification);
    await listener.query('unlisten "jobs:insert"');
    listener.release();
  }
}

async function startTimer(): Promise<{ instanceId: string; timer: { id: string; due_at: Date } }> {
  const { rows } = await admin.query<{ id: string }>(`select (bpm.start_process('sched_timer')).id`);
  const instanceId = rows[0]?.id as string;
  return { instanceId, timer: await timerOf(instanceId) };
}

/** Suspends and activates an instance: activation schedules its timers again (the same keys). */
async function suspendAndActivate(instanceId: string): Promise<void> {
  await admin.query('select bpm.suspend_process_instance($1)', [instanceId]);
  await admin.query('select bpm.activate_process_instance($1)', [instanceId]);
}

describe('jobs the engine schedules', () => {
  test('a timer due later: the job add_job would write, and no NOTIFY', async () => {
    let started: { instanceId: string; timer: { id: string; due_at: Date } } | undefined;
    const notified = await jobNotifications(async () => {
      started = await startTimer();
    });
    expect(notified).toEqual([]);
    const { timer } = started as { timer: { id: string; due_at: Date } };
    const [job] = await jobsOf('subscription_id', timer.id);
    // the reference: add_job with the same arguments (another key), as the engine called it before
    const { rows: [reference] } = await db.root.query<JobRow>(
      `select ${JOB_COLUMNS} from graphile_worker.add_job('bpm_fire_timer', $1::json, run_at => $2, job_key => $3, max_attempts => 5, priority => -7)`,
      [JSON.stringify({ tenant_id: T, subscription_id: timer.id }), timer.due_at, `reference:${timer.id}`],
    );
    await db.root.query(`delete from graphile_worker._private_jobs where key = $1`, [`reference:${timer.id}`]);
    const comparable = (r: JobRow | undefined): Partial<JobRow> => {
      const { id: _id, key: _key, ...rest } = r as JobRow;
      return rest;
    };
    expect(job?.key).toBe(`bpm-timer:${timer.id}`);
    expect(job?.run_at).toEqual(timer.due_at);
    expect(comparable(job)).toEqual(comparable(reference));
  });

  test('a job due now (an asynchronous continuation) notifies the workers', async () => {
    const notified = await jobNotifications(async () => {
      await admin.query(`select bpm.start_process('sched_async')`);
    });
    expect(notified).toHaveLength(1);
    expect(JSON.parse(notified[0] as string)).toMatchObject({ count: 1 });
  });

  test('scheduling a key again replaces its job in place, as add_job does', async () => {
    const { instanceId, timer } = await startTimer();
    const [before] = await jobsOf('subscription_id', timer.id);
    await db.root.query(`update graphile_worker._private_jobs set attempts = 2, last_error = 'earlier failure' where id = $1`, [before?.id]);
    await suspendAndActivate(instanceId);
    const after = await jobsOf('subscription_id', timer.id);
    expect(after).toHaveLength(1);
    expect(after[0]).toMatchObject({ id: before?.id, key: `bpm-timer:${timer.id}`, revision: 1, attempts: 0, last_error: null });
  });

  test('a key whose job a worker holds: that job keeps running without key or retries, a new job takes the key', async () => {
    const { instanceId, timer } = await startTimer();
    const [held] = await jobsOf('subscription_id', timer.id);
    await db.root.query(`update graphile_worker._private_jobs set locked_at = now(), locked_by = 'another worker' where id = $1`, [held?.id]);
    await suspendAndActivate(instanceId);
    const after = await jobsOf('subscription_id', timer.id);
    expect(after).toHaveLength(2);
    expect(after[0]).toMatchObject({ id: held?.id, key: null, attempts: 5, max_attempts: 5 });
    expect(after[1]).toMatchObject({ key: `bpm-timer:${timer.id}`, attempts: 0, revision: 0, locked_at: null });
    expect(after[1]?.run_at).toEqual(timer.due_at);
  });

  test('a key whose job used up its attempts: a new job takes the key, the failed one stays as it was', async () => {
    const { instanceId, timer } = await startTimer();
    const [failed] = await jobsOf('subscription_id', timer.id);
    await db.root.query(`update graphile_worker._private_jobs set attempts = max_attempts, last_error = 'gave up' where id = $1`, [failed?.id]);
    await suspendAndActivate(instanceId);
    const after = await jobsOf('subscription_id', timer.id);
    expect(after).toHaveLength(2);
    expect(after[0]).toMatchObject({ id: failed?.id, key: null, attempts: 5, last_error: 'gave up' });
    expect(after[1]).toMatchObject({ key: `bpm-timer:${timer.id}`, attempts: 0 });
  });

  test('the first job of a task identifier the queue does not know yet goes through add_job, which registers it', async () => {
    // a fresh queue: no job of bpm_fire_timer was ever added
    await db.root.query(`delete from graphile_worker._private_jobs j using graphile_worker._private_tasks t where t.id = j.task_id and t.identifier = 'bpm_fire_timer'`);
    await db.root.query(`delete from graphile_worker._private_tasks where identifier = 'bpm_fire_timer'`);
    const { timer } = await startTimer();
    const [job] = await jobsOf('subscription_id', timer.id);
    const { rows } = await db.root.query<{ id: number }>(`select id from graphile_worker._private_tasks where identifier = 'bpm_fire_timer'`);
    expect(rows).toHaveLength(1);
    expect(job).toMatchObject({ task_id: rows[0]?.id, key: `bpm-timer:${timer.id}` });
  });
});
