/**
 * Lock order in a call tree. A transition of a called instance that reaches
 * its caller (the child completes, or throws an error the parent catches)
 * and a transition of the caller that reaches its children (cancel, an
 * interrupting boundary on the call activity) touch the same two rows from
 * opposite ends. Every transition therefore locks the root of its call tree
 * first: the two serialise instead of deadlocking (40P01).
 */
import type pg from 'pg';
import { createTestDb, type TestDb } from '../../helpers/db';
import { deployProcess } from '../../helpers/engine';
import { outcome } from './support';

jest.setTimeout(60_000);

const TENANT = 't-call-locks';
let db: TestDb;

beforeAll(async () => {
  db = await createTestDb();
  const admin = await db.connectAs({ role: 'bpm_admin', tenant: TENANT });
  await deployProcess(admin, 'lock_leaf', `
    <startEvent id="s"/><sequenceFlow id="f1" sourceRef="s" targetRef="work"/>
    <userTask id="work"/><sequenceFlow id="f2" sourceRef="work" targetRef="e"/><endEvent id="e"/>`);
  await deployProcess(admin, 'lock_middle', `
    <startEvent id="s"/><sequenceFlow id="f1" sourceRef="s" targetRef="call"/>
    <callActivity id="call" calledElement="lock_leaf"/>
    <sequenceFlow id="f2" sourceRef="call" targetRef="e"/><endEvent id="e"/>`);
  await deployProcess(admin, 'lock_top', `
    <startEvent id="s"/><sequenceFlow id="f1" sourceRef="s" targetRef="call"/>
    <callActivity id="call" calledElement="lock_middle"/>
    <sequenceFlow id="f2" sourceRef="call" targetRef="e"/><endEvent id="e"/>`);
  await admin.end();
});

afterAll(async () => {
  await db?.close();
});

/** Resolves once `n` backends of this database wait on a lock. */
async function waitersBlocked(n: number): Promise<void> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    const { rows } = await db.root.query<{ n: number }>(
      `select count(*)::int as n from pg_catalog.pg_stat_activity
       where datname = current_database() and wait_event_type = 'Lock' and cardinality(pg_catalog.pg_blocking_pids(pid)) > 0`);
    if ((rows[0]?.n ?? 0) >= n) return;
    if (Date.now() > deadline) throw new Error(`only ${rows[0]?.n} backends wait on a lock, expected ${n}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

async function startTree(admin: pg.Client): Promise<{ top: string; middle: string; leaf: string; task: string }> {
  const { rows: [top] } = await admin.query<{ id: string }>(`select (bpm.start_process('lock_top')).id`);
  const { rows: [middle] } = await admin.query<{ id: string }>(`select id from bpm.process_instance where parent_instance_id = $1`, [top.id]);
  const { rows: [leaf] } = await admin.query<{ id: string; root_instance_id: string }>(
    `select id, root_instance_id from bpm.process_instance where parent_instance_id = $1`, [middle.id]);
  expect(leaf.root_instance_id).toBe(top.id);
  const { rows: [task] } = await admin.query<{ id: string }>(`select id from bpm.user_task where instance_id = $1`, [leaf.id]);
  return { top: top.id, middle: middle.id, leaf: leaf.id, task: task.id };
}

test('completing the leaf of a depth-3 call tree while its root is being cancelled: no deadlock, the cancel wins whole', async () => {
  const holder = await db.connectAs({ role: 'bpm_admin', tenant: TENANT });
  const worker = await db.connectAs({ role: 'bpm_admin', tenant: TENANT });
  try {
    const tree = await startTree(holder);
    // the root's transition is under way (it holds the root's row) ...
    await holder.query('begin');
    await holder.query(`select bpm.set_variables($1, '{"step": 1}')`, [tree.top]);
    // ... when the leaf's task is completed: completing the leaf would walk up to the root
    const completion = worker.query(`select bpm.complete_task($1)`, [tree.task]);
    await waitersBlocked(1);
    // the root's transition now cancels the whole tree, reaching down to the leaf
    await holder.query(`select bpm.cancel_process_instance($1, 'stop')`, [tree.top]);
    await holder.query('commit');
    const [completed] = await Promise.allSettled([completion]);
    // the completion waited for the root, then found its task cancelled
    expect(outcome(completed)).toBe('BP203');
    const { rows } = await db.root.query<{ id: string; state: string }>(
      `select id, state from bpm.process_instance where id = any($1::uuid[]) order by started_at`, [[tree.top, tree.middle, tree.leaf]]);
    expect(rows.map((r) => r.state)).toEqual(['cancelled', 'cancelled', 'cancelled']);
    const { rows: [task] } = await db.root.query<{ state: string }>(`select state from bpm.user_task where id = $1`, [tree.task]);
    expect(task.state).toBe('cancelled');
  } finally {
    await holder.query('rollback').catch(() => undefined);
    await holder.end();
    await worker.end();
  }
});

test('the leaf completing while the root cancels, 20 times at full speed: every pair ends without a deadlock', async () => {
  const admin = await db.connectAs({ role: 'bpm_admin', tenant: TENANT });
  const a = await db.connectAs({ role: 'bpm_admin', tenant: TENANT });
  const b = await db.connectAs({ role: 'bpm_admin', tenant: TENANT });
  try {
    const outcomes: string[] = [];
    for (let i = 0; i < 20; i++) {
      const tree = await startTree(admin);
      const [done, cancelled] = await Promise.allSettled([
        a.query(`select bpm.complete_task($1)`, [tree.task]),
        b.query(`select bpm.cancel_process_instance($1)`, [tree.top]),
      ]);
      outcomes.push(`${outcome(done)}/${outcome(cancelled)}`);
      const { rows } = await db.root.query<{ state: string }>(
        `select state from bpm.process_instance where id = any($1::uuid[])`, [[tree.top, tree.middle, tree.leaf]]);
      // whichever came first had the whole tree: completed throughout (the cancel then finds it ended), or cancelled throughout
      const expected = outcome(done) === 'ok' ? 'completed' : 'cancelled';
      expect(rows.map((r) => r.state)).toEqual([expected, expected, expected]);
    }
    expect(outcomes.filter((o) => o.includes('40P01'))).toEqual([]);
    expect(outcomes.filter((o) => o !== 'ok/BP201' && o !== 'BP203/ok')).toEqual([]);
  } finally {
    await admin.end();
    await a.end();
    await b.end();
  }
});
