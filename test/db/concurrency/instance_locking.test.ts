/**
 * Lock scope: a call locks only its own instance. An open transaction that
 * has completed a task of instance X does not block work on instance Y, but
 * a second call on X waits for it, and then sees its outcome.
 */
import type pg from 'pg';
import { createTestDb, type TestDb } from '../../helpers/db';
import { deployFixture } from '../../helpers/engine';
import type { PgError } from './support';

jest.setTimeout(30_000);

const TENANT = 't-locks';

let db: TestDb;
let holder: pg.Client;
let other: pg.Client;
let waiter: pg.Client;

beforeAll(async () => {
  db = await createTestDb();
  holder = await db.connectAs({ role: 'bpm_admin', tenant: TENANT, user: 'holder' });
  other = await db.connectAs({ role: 'bpm_admin', tenant: TENANT, user: 'other' });
  waiter = await db.connectAs({ role: 'bpm_admin', tenant: TENANT, user: 'waiter' });
  await deployFixture(holder, 'straight.bpmn');
});

afterAll(async () => {
  await db?.close();
});

afterEach(async () => {
  await holder.query('rollback').catch(() => undefined);
  for (const c of [other, waiter]) await c.query('reset statement_timeout');
});

/** Starts a straight instance; returns its id and its user task's id. */
async function startStraight(): Promise<{ instance: string; task: string }> {
  const { rows } = await other.query<{ id: string }>(`select id from bpm.start_process('straight')`);
  const instance = (rows[0] as { id: string }).id;
  const tasks = await other.query<{ id: string }>('select id from bpm.user_task where instance_id = $1', [instance]);
  return { instance, task: (tasks.rows[0] as { id: string }).id };
}

async function backendPid(client: pg.Client): Promise<number> {
  const { rows } = await client.query<{ pid: number }>('select pg_backend_pid() as pid');
  return (rows[0] as { pid: number }).pid;
}

/** Waits until backend `pid` is blocked by backend `blocker`. */
async function waitUntilBlocked(pid: number, blocker: number): Promise<void> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const { rows } = await db.root.query<{ blocked: boolean }>(
      'select $2::int = any(pg_catalog.pg_blocking_pids($1)) as blocked',
      [pid, blocker],
    );
    if (rows[0]?.blocked) return;
    if (Date.now() > deadline) throw new Error(`backend ${pid} never waited for ${blocker}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

async function taskState(task: string): Promise<{ state: string; completed_by: string | null }> {
  const { rows } = await db.root.query<{ state: string; completed_by: string | null }>(
    'select state, completed_by from bpm.user_task where id = $1',
    [task],
  );
  return rows[0] as { state: string; completed_by: string | null };
}

test('an open transaction that completed a task of instance X does not block completing a task of instance Y', async () => {
  const x = await startStraight();
  const y = await startStraight();
  await holder.query('begin');
  const held = await holder.query<{ state: string }>('select state from bpm.complete_task($1)', [x.task]);
  expect(held.rows).toEqual([{ state: 'completed' }]);

  await other.query(`set statement_timeout = '2s'`);
  const started = Date.now();
  const done = await other.query<{ state: string; completed_by: string }>('select state, completed_by from bpm.complete_task($1)', [y.task]);
  expect(done.rows).toEqual([{ state: 'completed', completed_by: 'other' }]);
  expect(Date.now() - started).toBeLessThan(2000);
  // starting and reading are not blocked either; X's completion is not visible outside yet
  const z = await startStraight();
  expect(z.task).toEqual(expect.any(String));
  const seen = await other.query<{ id: string; state: string }>(
    'select id, state from bpm.user_task where id = any($1::uuid[]) order by state',
    [[x.task, y.task]],
  );
  expect(seen.rows).toEqual([
    { id: y.task, state: 'completed' },
    { id: x.task, state: 'open' },
  ]);

  await holder.query('commit');
  expect(await taskState(x.task)).toEqual({ state: 'completed', completed_by: 'holder' });
  expect(await taskState(y.task)).toEqual({ state: 'completed', completed_by: 'other' });
});

test('a second call on instance X waits for the open transaction and times out under a statement timeout, changing nothing', async () => {
  const x = await startStraight();
  await holder.query('begin');
  await holder.query('select state from bpm.complete_task($1)', [x.task]);

  await waiter.query(`set statement_timeout = '500ms'`);
  const started = Date.now();
  let error: PgError | undefined;
  try {
    await waiter.query('select state from bpm.complete_task($1)', [x.task]);
  } catch (e) {
    error = e as PgError;
  }
  expect(error?.code).toBe('57014'); // query_canceled: it was waiting for the lock on X
  expect(error?.message).toMatch(/statement timeout/);
  expect(Date.now() - started).toBeGreaterThanOrEqual(450);
  // also set_variables (another function on X) waits
  await expect(waiter.query(`select bpm.set_variables($1, '{"late": true}')`, [x.instance])).rejects.toMatchObject({ code: '57014' });

  await holder.query('commit');
  expect(await taskState(x.task)).toEqual({ state: 'completed', completed_by: 'holder' });
  const { rows } = await db.root.query('select state, variables from bpm.process_instance where id = $1', [x.instance]);
  expect(rows).toEqual([{ state: 'completed', variables: {} }]);
});

test('a second completion of task X waits for the open transaction and, once it commits, fails with BP203', async () => {
  const x = await startStraight();
  const holderPid = await backendPid(holder);
  const waiterPid = await backendPid(waiter);
  await holder.query('begin');
  await holder.query('select state from bpm.complete_task($1)', [x.task]);

  let settled = false;
  const second = waiter.query('select state from bpm.complete_task($1)', [x.task]).finally(() => {
    settled = true;
  });
  second.catch(() => undefined);
  await waitUntilBlocked(waiterPid, holderPid);
  expect(settled).toBe(false);

  await holder.query('commit');
  await expect(second).rejects.toMatchObject({ code: 'BP203', message: expect.stringMatching(/is completed and cannot complete it/) });
  expect(await taskState(x.task)).toEqual({ state: 'completed', completed_by: 'holder' });
});

test('a second completion of task X waits for the open transaction and, once it rolls back, succeeds', async () => {
  const x = await startStraight();
  const holderPid = await backendPid(holder);
  const waiterPid = await backendPid(waiter);
  await holder.query('begin');
  await holder.query('select state from bpm.complete_task($1)', [x.task]);

  const second = waiter.query<{ state: string; completed_by: string }>('select state, completed_by from bpm.complete_task($1)', [x.task]);
  second.catch(() => undefined);
  await waitUntilBlocked(waiterPid, holderPid);

  await holder.query('rollback');
  expect((await second).rows).toEqual([{ state: 'completed', completed_by: 'waiter' }]);
  expect(await taskState(x.task)).toEqual({ state: 'completed', completed_by: 'waiter' });
  const { rows } = await db.root.query(
    `select i.state, (select count(*)::int from bpm.activity_instance a where a.instance_id = i.id and a.element_id = 'end') as ends
     from bpm.process_instance i where i.id = $1`,
    [x.instance],
  );
  expect(rows).toEqual([{ state: 'completed', ends: 1 }]);
});
