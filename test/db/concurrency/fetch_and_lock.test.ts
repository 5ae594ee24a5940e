/**
 * Concurrent workers: four bpm_engine connections fetch batches of the same
 * topic at once until nothing is left, then complete their tasks at once.
 * FOR UPDATE SKIP LOCKED must hand every task to exactly one worker.
 */
import type pg from 'pg';
import { createTestDb, type TestDb } from '../../helpers/db';
import { deployFixture } from '../../helpers/engine';

jest.setTimeout(60_000);

const TASKS = 1000;
const WORKERS = [
  { id: 'worker-1', batch: 10 },
  { id: 'worker-2', batch: 20 },
  { id: 'worker-3', batch: 35 },
  { id: 'worker-4', batch: 50 },
];
const TENANT = 't-workers';

let db: TestDb;

beforeAll(async () => {
  db = await createTestDb();
});

afterAll(async () => {
  await db?.close();
});

interface Fetched {
  id: string;
  instance_id: string;
  worker_id: string;
  variables: { n: number };
}

/** Fetches batches until the topic is empty; returns what this worker got, batch by batch. */
async function drain(client: pg.Client, workerId: string, batch: number): Promise<Fetched[][]> {
  const batches: Fetched[][] = [];
  for (;;) {
    const { rows } = await client.query<Fetched>(
      `select id, instance_id, worker_id, variables from bpm.fetch_and_lock('work', $1, $2, interval '10 minutes')`,
      [workerId, batch],
    );
    if (rows.length === 0) return batches;
    batches.push(rows);
  }
}

test(`four workers fetching ${TASKS} external tasks concurrently lock each task exactly once, then complete them all concurrently`, async () => {
  const admin = await db.connectAs({ role: 'bpm_admin', tenant: TENANT });
  await deployFixture(admin, 'external.bpmn');
  const { rows: started } = await admin.query<{ id: string }>(
    `select p.id from generate_series(1, $1::int) g, lateral bpm.start_process('external', jsonb_build_object('n', g)) p`,
    [TASKS],
  );
  expect(started).toHaveLength(TASKS);
  const workers = await Promise.all(WORKERS.map(() => db.connectAs({ role: 'bpm_engine', tenant: TENANT })));

  // fetch: all four loops run at once, each on its own connection
  const fetched = await Promise.all(WORKERS.map((w, i) => drain(workers[i] as pg.Client, w.id, w.batch)));

  const all = fetched.flatMap((batches) => batches.flat());
  const ids = all.map((t) => t.id);
  expect(ids).toHaveLength(TASKS);
  expect(new Set(ids).size).toBe(TASKS); // no task went to two workers
  const { rows: expected } = await db.root.query<{ id: string }>(
    `select id from bpm.external_task where tenant_id = $1 and topic = 'work'`,
    [TENANT],
  );
  expect(new Set(ids)).toEqual(new Set(expected.map((r) => r.id)));
  WORKERS.forEach((w, i) => {
    const got = (fetched[i] ?? []).flat();
    expect(got.length).toBeGreaterThan(0); // every worker took part
    expect(got.every((t) => t.worker_id === w.id)).toBe(true);
    expect((fetched[i] ?? []).every((b) => b.length <= w.batch)).toBe(true);
  });
  // each task carries its own instance's variables
  const startedOrder = new Map(started.map((r, i) => [r.id, i + 1]));
  expect(all.filter((t) => startedOrder.get(t.instance_id) !== t.variables.n)).toEqual([]);

  // the database agrees: every task is open and locked by the worker that received it
  const { rows: locks } = await db.root.query<{ id: string; worker_id: string; state: string; locked: boolean }>(
    `select id, worker_id, state, locked_until > now() as locked from bpm.external_task where tenant_id = $1`,
    [TENANT],
  );
  const receivedBy = new Map(all.map((t) => [t.id, t.worker_id]));
  expect(locks.filter((l) => l.state !== 'open' || !l.locked || receivedBy.get(l.id) !== l.worker_id)).toEqual([]);

  // complete: the four workers complete their own tasks at once, one call (transaction) per task
  const completions = await Promise.all(
    WORKERS.map(async (w, i) => {
      const client = workers[i] as pg.Client;
      let done = 0;
      for (const task of (fetched[i] ?? []).flat()) {
        const { rows } = await client.query<{ state: string }>('select state from bpm.complete_external_task($1, $2, $3)', [
          task.id,
          w.id,
          { doneBy: w.id },
        ]);
        if (rows[0]?.state === 'completed') done += 1;
      }
      return done;
    }),
  );
  expect(completions.reduce((a, b) => a + b, 0)).toBe(TASKS);

  const { rows: shapes } = await db.root.query(
    `select s.*, count(*)::int as instances from (
       select i.state, i.variables ->> 'doneBy' = e.worker_id as completed_by_locker, e.state as task_state,
              (select string_agg(a.element_id || ':' || a.state, ' ' order by a.seq) from bpm.activity_instance a
               where a.tenant_id = i.tenant_id and a.instance_id = i.id) as history,
              (select count(*)::int from bpm_private.token k where k.tenant_id = i.tenant_id and k.instance_id = i.id) as tokens
       from bpm.process_instance i
       join bpm.external_task e on e.tenant_id = i.tenant_id and e.instance_id = i.id
       where i.tenant_id = $1
     ) s group by 1, 2, 3, 4, 5`,
    [TENANT],
  );
  expect(shapes).toEqual([
    {
      state: 'completed',
      completed_by_locker: true,
      task_state: 'completed',
      history: 'start:completed work:completed end:completed',
      tokens: 0,
      instances: TASKS,
    },
  ]);
  const { rows: incidents } = await db.root.query('select count(*)::int as n from bpm.incident where tenant_id = $1', [TENANT]);
  expect(incidents).toEqual([{ n: 0 }]);
});
