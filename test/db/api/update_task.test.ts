/**
 * bpm.update_task (Camunda 8's user task update): candidates, dates and
 * priority of an open task; what it changes in inboxes, deadline jobs and
 * the event log; and every refusal leaves the database as it was.
 */
import type pg from 'pg';
import { createTestDb, type TestDb } from '../../helpers/db';
import { deployProcess, expectRejectedUnchanged } from '../../helpers/engine';
import { job } from '../events/support';

const T = 't-update-task';
let db: TestDb;
let admin: pg.Client;
let bob: pg.Client;

interface TaskRow {
  id: string;
  instance_id: string;
  candidate_users: string[];
  candidate_groups: string[];
  priority: number;
  due_at: Date | null;
  follow_up_at: Date | null;
  overdue_since: Date | null;
}

async function newTask(key = 'review'): Promise<TaskRow> {
  const started = await admin.query<{ id: string }>(`select (bpm.start_process($1)).id`, [key]);
  const { rows } = await db.root.query<TaskRow>(`select * from bpm.user_task where instance_id = $1`, [started.rows[0].id]);
  return rows[0];
}

async function update(taskId: string, changes: unknown, as: pg.ClientBase = admin): Promise<TaskRow> {
  const { rows } = await as.query<TaskRow>(`select * from bpm.update_task($1, $2::jsonb)`, [taskId, JSON.stringify(changes)]);
  return rows[0];
}

async function inbox(client: pg.ClientBase): Promise<string[]> {
  return (await client.query<{ id: string }>(`select id from bpm.task_inbox()`)).rows.map((r) => r.id);
}

beforeAll(async () => {
  db = await createTestDb();
  admin = await db.connectAs({ role: 'bpm_admin', tenant: T, user: 'admin' });
  bob = await db.connectAs({ role: 'bpm_user', tenant: T, user: 'bob', groups: ['sales'] });
  await deployProcess(admin, 'review', `
    <startEvent id="s"/><sequenceFlow id="f1" sourceRef="s" targetRef="t"/>
    <userTask id="t" camunda:candidateGroups="clerks" camunda:candidateUsers="carol" camunda:dueDate="PT1H" camunda:followUpDate="PT30M">
      <extensionElements><camunda:properties>
        <camunda:property name="pgbpm:escalateAfter" value="PT2H"/>
        <camunda:property name="pgbpm:escalateToGroups" value="managers"/>
      </camunda:properties></extensionElements>
    </userTask>
    <sequenceFlow id="f2" sourceRef="t" targetRef="e"/><endEvent id="e"/>`);
});

afterAll(async () => {
  await db?.close();
});

test('candidates and priority change; keys left out stay; the inbox follows; taskUpdated is in the event log', async () => {
  const task = await newTask();
  expect(await inbox(bob)).not.toContain(task.id);
  const updated = await update(task.id, { candidateGroups: ['sales', ' clerks ', 'sales'], priority: 80 });
  expect(updated).toMatchObject({ candidate_groups: ['sales', 'clerks'], candidate_users: ['carol'], priority: 80 });
  expect(updated.due_at).toEqual(task.due_at);
  expect(await inbox(bob)).toEqual([task.id]);
  await update(task.id, { candidateGroups: null, candidateUsers: [] });
  expect(await inbox(bob)).toEqual([]);
  const { rows } = await db.root.query<{ candidate_users: string[]; candidate_groups: string[] }>(
    `select candidate_users, candidate_groups from bpm.user_task where id = $1`,
    [task.id],
  );
  expect(rows[0]).toEqual({ candidate_users: [], candidate_groups: [] });
  const kinds = (await db.root.query<{ kind: string }>(`select kind from bpm.event where subject_id = $1 order by id`, [task.id])).rows.map((r) => r.kind);
  expect(kinds).toEqual(['activityStarted', 'taskCreated', 'taskUpdated', 'taskUpdated']);
});

test('a moved due date clears the overdue mark and moves the due and escalation jobs; a follow-up date its job; null clears', async () => {
  const task = await newTask();
  await db.root.query(`update bpm.user_task set overdue_since = now() where id = $1`, [task.id]);
  const updated = await update(task.id, { dueDate: '2031-05-01T09:00:00Z', followUpDate: 'P2D' });
  expect(updated.due_at?.toISOString()).toBe('2031-05-01T09:00:00.000Z');
  expect(updated.overdue_since).toBeNull();
  expect((updated.follow_up_at?.getTime() ?? 0) - Date.now()).toBeGreaterThan(2 * 86_400_000 - 60_000);
  expect((await job(db.root, `bpm-task-due:${task.id}`))?.run_at.toISOString()).toBe('2031-05-01T09:00:00.000Z');
  expect((await job(db.root, `bpm-task-escalate:${task.id}`))?.run_at.toISOString()).toBe('2031-05-01T11:00:00.000Z');
  expect((await job(db.root, `bpm-task-followUp:${task.id}`))?.run_at.getTime()).toBe(updated.follow_up_at?.getTime());
  const cleared = await update(task.id, { dueDate: null });
  expect(cleared.due_at).toBeNull();
  expect(cleared.follow_up_at).toEqual(updated.follow_up_at);
  // the old due job finds no due date when it runs
  expect((await admin.query<{ id: string | null }>(`select (bpm.process_task_deadline($1, 'due')).id`, [task.id])).rows[0].id).toBeNull();
});

test('refusals name the reason and change nothing', async () => {
  const task = await newTask();
  const bad: Array<[unknown, string, RegExp]> = [
    [[1], 'BP401', /changes must be a JSON object/],
    [{ assignee: 'x' }, 'BP401', /unknown change "assignee"/],
    [{ priority: 1.5 }, 'BP401', /priority must be an integer, not 1\.5/],
    [{ priority: '5' }, 'BP401', /priority must be an integer/],
    [{ dueDate: 5 }, 'BP401', /dueDate must be a string or null, not 5/],
    [{ candidateUsers: 'alice' }, 'BP401', /candidateUsers must be an array of non-empty names or null/],
    [{ candidateGroups: ['ok', ''] }, 'BP401', /candidateGroups must be an array of non-empty names or null/],
    [{ dueDate: 'next tuesday' }, 'BP304', /dueDate/],
  ];
  for (const [changes, code, message] of bad) {
    await expectRejectedUnchanged(db.root, () => update(task.id, changes), code, message);
  }
  await expectRejectedUnchanged(db.root, () => update('00000000-0000-0000-0000-000000000000', { priority: 1 }), 'BP103');
  await expectRejectedUnchanged(db.root, () => update(task.id, { priority: 1 }, bob), '42501');
  await admin.query(`select bpm.suspend_process_instance($1)`, [task.instance_id]);
  await expectRejectedUnchanged(db.root, () => update(task.id, { priority: 1 }), 'BP202');
  await admin.query(`select bpm.activate_process_instance($1)`, [task.instance_id]);
  await admin.query(`select bpm.complete_task($1)`, [task.id]);
  await expectRejectedUnchanged(db.root, () => update(task.id, { priority: 1 }), 'BP203');
});
