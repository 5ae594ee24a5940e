/**
 * History retention: bpm.cleanup_history removes ended instances whose time
 * to live (camunda:historyTimeToLive, else the caller's default) has passed,
 * whole call trees with their history rows, tasks and incidents; trims the
 * event log by age; never touches running instances or another tenant; and
 * the worker's per-tenant job runs it and schedules its next run.
 */
import type pg from 'pg';
import { createTestDb, type TestDb } from '../../helpers/db';
import { bpmnProcess, deployXml, expectSqlState } from '../../helpers/engine';
import { startTestWorker, waitFor } from '../worker/support';
import { all, count, one, start } from './support';

const T = 'hist-t';
const OTHER = 'hist-other';

let db: TestDb;
let admin: pg.Client;
let other: pg.Client;

/** A user task between start and end; attributes go on the process element. */
const withTask = (key: string, processAttrs = ''): { name: string; xml: string } => ({
  name: `${key}.bpmn`,
  xml: bpmnProcess(key, `<startEvent id="s"/><sequenceFlow id="f1" sourceRef="s" targetRef="t"/><userTask id="t"/>
    <sequenceFlow id="f2" sourceRef="t" targetRef="e"/><endEvent id="e"/>`).replace(`<process id="${key}"`, `<process id="${key}" ${processAttrs}`),
});

async function finish(client: pg.ClientBase, instanceId: string): Promise<void> {
  await client.query(`select bpm.complete_task(id) from bpm.user_task where instance_id = $1 and state = 'open'`, [instanceId]);
}

async function cleanup(client: pg.ClientBase, args = ''): Promise<{ instances: number; activities: number; events: number }> {
  return one(client, `select * from bpm.cleanup_history(${args})`);
}

beforeAll(async () => {
  db = await createTestDb();
  admin = await db.connectAs({ role: 'bpm_admin', tenant: T });
  other = await db.connectAs({ role: 'bpm_admin', tenant: OTHER });
  await deployXml(admin, [withTask('h_zero', 'camunda:historyTimeToLive="0"'), withTask('h_year', 'camunda:historyTimeToLive="P365D"'), withTask('h_none')]);
  await deployXml(admin, [{
    name: 'h_parent.bpmn',
    xml: bpmnProcess('h_parent', `<startEvent id="s"/><sequenceFlow id="f1" sourceRef="s" targetRef="call"/>
      <callActivity id="call" calledElement="h_none"/><sequenceFlow id="f2" sourceRef="call" targetRef="e"/><endEvent id="e"/>`)
      .replace('<process id="h_parent"', '<process id="h_parent" camunda:historyTimeToLive="0"'),
  }]);
  await deployXml(other, [withTask('h_zero', 'camunda:historyTimeToLive="0"')]);
});

afterAll(async () => {
  await admin?.end();
  await other?.end();
  await db?.close();
});

test('the compiled time to live is stored per definition', async () => {
  const rows = await all<{ key: string; ttl: string | null }>(admin, `select key, history_ttl::text as ttl from bpm.process_definition order by key`);
  expect(rows).toEqual([
    { key: 'h_none', ttl: null },
    { key: 'h_parent', ttl: '00:00:00' },
    { key: 'h_year', ttl: '365 days' },
    { key: 'h_zero', ttl: '00:00:00' },
  ]);
});

test('ended instances past their time to live go with their history, tasks and incidents; running ones, younger ones and other tenants stay', async () => {
  const expired = await start(admin, 'h_zero');
  await finish(admin, expired.id);
  await admin.query(`select bpm.cancel_process_instance((select id from bpm.start_process('h_zero')))`);
  const running = await start(admin, 'h_zero');
  const young = await start(admin, 'h_year');
  await finish(admin, young.id);
  const noTtl = await start(admin, 'h_none');
  await finish(admin, noTtl.id);
  const foreign = await start(other, 'h_zero');
  await finish(other, foreign.id);
  // an incident on the expired instance's history (resolved) goes with it
  await db.root.query(`insert into bpm.incident (tenant_id, instance_id, element_id, incident_type, message, resolved_at) values ($1, $2, 't', 'failedJob', 'old', now())`, [T, expired.id]);

  const removed = await cleanup(admin);
  expect(removed.instances).toBe(2);
  expect(removed.activities).toBe(5); // start, task, end of the completed one; start, task of the cancelled one
  expect(await count(db.root, `select 1 from bpm.process_instance where id = $1`, [expired.id])).toBe(0);
  expect(await count(db.root, `select 1 from bpm.activity_instance where instance_id = $1`, [expired.id])).toBe(0);
  expect(await count(db.root, `select 1 from bpm.user_task where instance_id = $1`, [expired.id])).toBe(0);
  expect(await count(db.root, `select 1 from bpm.incident where instance_id = $1`, [expired.id])).toBe(0);
  for (const kept of [running.id, young.id, noTtl.id, foreign.id]) {
    expect(await count(db.root, `select 1 from bpm.process_instance where id = $1`, [kept])).toBe(1);
  }
  // a default time to live reaches the definitions without one of their own
  expect((await cleanup(admin, `default_ttl => interval '0'`)).instances).toBe(1);
  expect(await count(db.root, `select 1 from bpm.process_instance where id = $1`, [noTtl.id])).toBe(0);
  expect(await count(db.root, `select 1 from bpm.process_instance where id = $1`, [young.id])).toBe(1);
  // nothing left to remove: a second call removes nothing
  expect(await cleanup(admin, `default_ttl => interval '0'`)).toEqual({ instances: 0, activities: 0, events: 0 });
});

test('a call tree goes whole with its root, never a child while its root is kept', async () => {
  const parent = await start(admin, 'h_parent');
  const { id: child } = await one<{ id: string }>(admin, `select id from bpm.process_instance where parent_instance_id = $1`, [parent.id]);
  await finish(admin, child);
  expect((await one<{ state: string }>(admin, `select state from bpm.process_instance where id = $1`, [parent.id])).state).toBe('completed');
  // the child (h_none) alone has no time to live; with a default it would expire, but not without its root
  const kept = await start(admin, 'h_parent');
  expect((await cleanup(admin)).instances).toBe(2);
  expect(await count(db.root, `select 1 from bpm.process_instance where id = any($1::uuid[])`, [[parent.id, child]])).toBe(0);
  expect(await count(db.root, `select 1 from bpm.activity_instance where instance_id = any($1::uuid[])`, [[parent.id, child]])).toBe(0);
  const running = await all<{ id: string }>(db.root, `select id from bpm.process_instance where id = $1 or parent_instance_id = $1`, [kept.id]);
  expect(running).toHaveLength(2);
  expect((await cleanup(admin, `default_ttl => interval '0'`)).instances).toBe(0);
});

test('the event log is trimmed by age, oldest first, in batches', async () => {
  await db.root.query(`update bpm.event set created_at = now() - interval '40 days' where tenant_id = $1`, [T]);
  const old = await count(db.root, `select 1 from bpm.event where tenant_id = $1`, [T]);
  await start(admin, 'h_year'); // fresh events
  const fresh = await count(db.root, `select 1 from bpm.event where tenant_id = $1`, [T]) - old;
  expect(old).toBeGreaterThan(3);
  expect((await cleanup(admin, `event_retention => interval '30 days', max_events => 3`)).events).toBe(3);
  expect((await cleanup(admin, `event_retention => interval '30 days'`)).events).toBe(old - 3);
  expect(await count(db.root, `select 1 from bpm.event where tenant_id = $1`, [T])).toBe(fresh);
  expect(await count(db.root, `select 1 from bpm.event where tenant_id = $1`, [OTHER])).toBeGreaterThan(0);
});

test('arguments are checked (BP401); only bpm_admin and bpm_engine may clean up', async () => {
  await expectSqlState(admin.query(`select bpm.cleanup_history(0)`), 'BP401');
  await expectSqlState(admin.query(`select bpm.cleanup_history(10, interval '-1 day')`), 'BP401');
  const user = await db.connectAs({ role: 'bpm_user', tenant: T, user: 'u1' });
  const designer = await db.connectAs({ role: 'bpm_designer', tenant: T });
  try {
    await expectSqlState(user.query(`select bpm.cleanup_history()`), '42501');
    await expectSqlState(designer.query(`select bpm.cleanup_history()`), '42501');
  } finally {
    await user.end();
    await designer.end();
  }
});

test('deploy schedules the tenant\'s cleanup job; the worker runs it and schedules the next run', async () => {
  const job = await one<{ run_at: Date; identifier: string }>(db.root,
    `select j.run_at, t.identifier from graphile_worker._private_jobs j join graphile_worker._private_tasks t on t.id = j.task_id where j.key = $1`,
    [`bpm-cleanup:${T}`]);
  expect(job.identifier).toBe('bpm_cleanup_history');
  const ended = await start(admin, 'h_zero');
  await finish(admin, ended.id);
  await db.root.query(`update graphile_worker._private_jobs set run_at = now() where key = $1`, [`bpm-cleanup:${T}`]);
  const worker = await startTestWorker(db, { tenants: [], jobs: true, config: { history: { defaultTtlMs: null, eventRetentionMs: null, intervalMs: 3_600_000 } } });
  try {
    await waitFor('the expired instance removed', async () =>
      (await count(db.root, `select 1 from bpm.process_instance where id = $1`, [ended.id])) === 0 ? true : undefined);
    const next = await waitFor('the next run scheduled', async () => {
      const rows = await all<{ run_at: Date }>(db.root, `select run_at from graphile_worker._private_jobs where key = $1 and run_at > now() + interval '50 minutes'`, [`bpm-cleanup:${T}`]);
      return rows[0];
    });
    expect(next.run_at.getTime()).toBeGreaterThan(Date.now() + 50 * 60_000);
  } finally {
    await worker.stop();
  }
});
