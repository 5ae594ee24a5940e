/**
 * Races on one instance, with real parallel connections: two completions of
 * the same user task (one wins, the other gets BP203), and the two last
 * branches of a parallel join completing at once (the join fires once).
 * Every call is its own transaction on its own connection; a gate (see
 * support.ts) makes the two calls of each race wait on the instance lock
 * together, so they truly collide.
 */
import type pg from 'pg';
import { createTestDb, type TestDb } from '../../helpers/db';
import { deployFixture } from '../../helpers/engine';
import { chunks, gated, outcome, tally, type PgError } from './support';

const RACES = 200;
/** Races per batch; each side of a race has its own pool of this many connections. */
const BATCH = 10;

jest.setTimeout(60_000);

let db: TestDb;
let left: pg.Pool;
let right: pg.Pool;

beforeAll(async () => {
  db = await createTestDb();
  const admin = await db.connectAs({ role: 'bpm_admin', tenant: 't-races', user: 'admin' });
  await deployFixture(admin, 'straight.bpmn', 'parallel.bpmn');
  await admin.end();
  left = db.pool({ role: 'bpm_admin', tenant: 't-races', user: 'left' }, BATCH);
  right = db.pool({ role: 'bpm_admin', tenant: 't-races', user: 'right' }, BATCH);
});

afterAll(async () => {
  await db?.close();
});

/** Starts `n` instances of `key` in one statement; returns their ids. */
async function startMany(key: string, n: number): Promise<string[]> {
  const { rows } = await left.query<{ id: string }>(
    'select p.id from generate_series(1, $2::int) g, lateral bpm.start_process($1, jsonb_build_object($3::text, g)) p order by g',
    [key, n, 'n'],
  );
  return rows.map((r) => r.id);
}

interface TaskRow {
  id: string;
  instance_id: string;
  element_id: string;
}

async function openTasks(instanceIds: string[]): Promise<Map<string, Record<string, string>>> {
  const { rows } = await left.query<TaskRow>(
    `select id, instance_id, element_id from bpm.user_task where instance_id = any($1::uuid[]) and state = 'open'`,
    [instanceIds],
  );
  const byInstance = new Map<string, Record<string, string>>();
  for (const r of rows) byInstance.set(r.instance_id, { ...byInstance.get(r.instance_id), [r.element_id]: r.id });
  return byInstance;
}

test(`${RACES} races of two completions of one user task: each time exactly one wins and the other fails with BP203`, async () => {
  const instances = await startMany('straight', RACES);
  const tasks = await openTasks(instances);
  expect(tasks.size).toBe(RACES);

  const outcomes: string[] = [];
  const winners: Array<{ state: string; completed_by: string }> = [];
  for (const batch of chunks(instances, BATCH)) {
    const results = await gated(db.root, batch, 2 * BATCH, () =>
      batch.flatMap((instanceId) => {
        const taskId = tasks.get(instanceId)?.task;
        return [
          left.query<{ state: string; completed_by: string }>('select state, completed_by from bpm.complete_task($1, $2)', [taskId, { by: 'left' }]),
          right.query<{ state: string; completed_by: string }>('select state, completed_by from bpm.complete_task($1, $2)', [taskId, { by: 'right' }]),
        ];
      }),
    );
    for (const pair of chunks(results, 2)) {
      outcomes.push(pair.map(outcome).sort().join(' + '));
      for (const r of pair) {
        if (r.status === 'fulfilled') winners.push(r.value.rows[0] as { state: string; completed_by: string });
        else expect((r.reason as PgError).message).toMatch(/user task .* is completed and cannot complete it/);
      }
    }
  }
  expect(tally(outcomes)).toEqual({ 'BP203 + ok': RACES });
  expect(winners.every((w) => w.state === 'completed' && ['left', 'right'].includes(w.completed_by))).toBe(true);

  // every instance completed exactly once, by the winner, with nothing left behind
  const { rows } = await db.root.query(
    `select s.*, count(*)::int as instances from (
     select i.state, i.variables ->> 'by' = t.completed_by as winner_variables,
            (select string_agg(a.element_id || ':' || a.state, ' ' order by a.seq) from bpm.activity_instance a
             where a.tenant_id = i.tenant_id and a.instance_id = i.id) as history,
            (select count(*)::int from bpm.user_task u where u.tenant_id = i.tenant_id and u.instance_id = i.id) as user_tasks,
            t.state as task_state,
            (select count(*)::int from bpm_private.token k where k.tenant_id = i.tenant_id and k.instance_id = i.id) as tokens
     from bpm.process_instance i
     join bpm.user_task t on t.tenant_id = i.tenant_id and t.instance_id = i.id
     where i.id = any($1::uuid[])
     ) s group by 1, 2, 3, 4, 5, 6`,
    [instances],
  );
  expect(rows).toEqual([
    {
      state: 'completed',
      winner_variables: true,
      history: 'start:completed task:completed end:completed',
      user_tasks: 1,
      task_state: 'completed',
      tokens: 0,
      instances: RACES,
    },
  ]);
});

test(`${RACES} races of the two last branches of a parallel join: each time both complete and the join fires exactly once`, async () => {
  const instances = await startMany('parallel', RACES);
  const tasks = await openTasks(instances);
  expect([...tasks.values()].every((t) => t.A !== undefined && t.B !== undefined)).toBe(true);

  const outcomes: string[] = [];
  for (const batch of chunks(instances, BATCH)) {
    const results = await gated(db.root, batch, 2 * BATCH, () =>
      batch.flatMap((instanceId) => {
        const t = tasks.get(instanceId) ?? {};
        return [
          left.query('select state from bpm.complete_task($1, $2)', [t.A, { a: 'done' }]),
          right.query('select state from bpm.complete_task($1, $2)', [t.B, { b: 'done' }]),
        ];
      }),
    );
    for (const pair of chunks(results, 2)) outcomes.push(pair.map(outcome).join(' + '));
  }
  expect(tally(outcomes)).toEqual({ 'ok + ok': RACES });

  const { rows } = await db.root.query(
    `select s.*, count(*)::int as instances from (
     select i.state, i.variables - 'n' as variables,
            (select string_agg(a.state, ',' order by a.state) from bpm.activity_instance a
             where a.tenant_id = i.tenant_id and a.instance_id = i.id and a.element_id = 'join') as join_rows,
            (select count(*)::int from bpm.activity_instance a
             where a.tenant_id = i.tenant_id and a.instance_id = i.id and a.element_id = 'end' and a.state = 'completed') as end_rows,
            (select count(*)::int from bpm.activity_instance a
             where a.tenant_id = i.tenant_id and a.instance_id = i.id and a.state <> 'completed') as unfinished_rows,
            (select string_agg(u.element_id || ':' || u.state, ',' order by u.element_id) from bpm.user_task u
             where u.tenant_id = i.tenant_id and u.instance_id = i.id) as user_tasks,
            (select count(*)::int from bpm_private.token k where k.tenant_id = i.tenant_id and k.instance_id = i.id) as tokens
     from bpm.process_instance i
     where i.id = any($1::uuid[])
     ) s group by 1, 2, 3, 4, 5, 6, 7`,
    [instances],
  );
  expect(rows).toEqual([
    {
      state: 'completed',
      variables: { a: 'done', b: 'done' },
      join_rows: 'completed,completed',
      end_rows: 1,
      unfinished_rows: 0,
      user_tasks: 'A:completed,B:completed',
      tokens: 0,
      instances: RACES,
    },
  ]);
});
