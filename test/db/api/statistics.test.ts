/**
 * bpm.refresh_statistics: the engine tables a burst filled beyond what their
 * planner statistics say are analysed (so cached plans follow), the others
 * are left alone; only bpm_admin and bpm_engine may call it. The worker's
 * periodic call: test/db/worker/statistics.test.ts.
 */
import type pg from 'pg';
import { createTestDb, type TestDb } from '../../helpers/db';
import { deployProcess } from '../../helpers/engine';
import { externalTaskBody } from './support';

const TENANT = 'stats-t';

let db: TestDb;
let engine: pg.Client;

beforeAll(async () => {
  db = await createTestDb();
  engine = await db.connectAs({ role: 'bpm_engine', tenant: TENANT });
});
afterAll(() => db.close());

const refresh = async (client: pg.ClientBase): Promise<string[]> =>
  (await client.query<{ tables: string[] }>('select bpm.refresh_statistics() as tables')).rows[0]?.tables ?? [];

const reltuples = async (table: string): Promise<number> =>
  (await db.root.query<{ n: number }>(`select reltuples::float8 as n from pg_class where oid = $1::regclass`, [table])).rows[0]?.n ?? NaN;

/** Calls refresh_statistics until it analysed something (the inserting sessions report their rows within a second or so). */
async function refreshUntilAnalysed(): Promise<string[]> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const tables = await refresh(engine);
    if (tables.length > 0 || Date.now() > deadline) return tables;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

test('a table analysed while empty and filled since is analysed again; then nothing is until it grows again', async () => {
  const designer = await db.connectAs({ role: 'bpm_designer', tenant: TENANT });
  await deployProcess(designer, 'stats_burst', externalTaskBody('stats_burst'));
  await designer.end();
  // what autovacuum does to a queue-like table between bursts
  await db.root.query('analyze bpm.external_task');
  expect(await reltuples('bpm.external_task')).toBe(0);
  const admin = await db.connectAs({ role: 'bpm_admin', tenant: TENANT, user: 'boss' });
  await admin.query(`select count(bpm.start_process('stats_burst')) from generate_series(1, 1200)`);
  await admin.end();
  const analysed = await refreshUntilAnalysed();
  expect(analysed).toContain('bpm.external_task');
  expect(await reltuples('bpm.external_task')).toBe(1200);
  // in step now: nothing to do
  expect(await refresh(engine)).toEqual([]);
});

test('tables with fewer than 1,000 rows are left to autovacuum', async () => {
  await db.root.query('analyze bpm.user_task');
  const designer = await db.connectAs({ role: 'bpm_designer', tenant: TENANT });
  await deployProcess(designer, 'stats_small', `<startEvent id="s"/><sequenceFlow id="f1" sourceRef="s" targetRef="t"/><userTask id="t"/>`);
  await designer.end();
  const admin = await db.connectAs({ role: 'bpm_admin', tenant: TENANT, user: 'boss' });
  await admin.query(`select count(bpm.start_process('stats_small')) from generate_series(1, 50)`);
  await admin.end();
  await new Promise((resolve) => setTimeout(resolve, 1500));
  expect(await refresh(engine)).not.toContain('bpm.user_task');
  expect(await reltuples('bpm.user_task')).toBe(0);
});

test('a table a VACUUM (or anyone) holds is skipped after 100 ms, without an error, and analysed at a later call', async () => {
  const holder = await db.root.connect();
  try {
    await holder.query('begin');
    await holder.query('lock table bpm.user_task in share update exclusive mode'); // what a VACUUM holds
    const admin = await db.connectAs({ role: 'bpm_admin', tenant: TENANT, user: 'boss' });
    await admin.query(`select count(bpm.start_process('stats_small')) from generate_series(1, 1200)`);
    await admin.end();
    // until the inserting session has reported its rows nothing is due; then the table is due but held
    const deadline = Date.now() + 20_000;
    for (let due = false; !due; ) {
      expect(Date.now()).toBeLessThan(deadline);
      const { rows } = await db.root.query<{ n: number }>(`select n_live_tup::int as n from pg_stat_user_tables where relid = 'bpm.user_task'::regclass`);
      due = (rows[0]?.n ?? 0) >= 1000;
      const started = Date.now();
      expect(await refresh(engine)).not.toContain('bpm.user_task');
      expect(Date.now() - started).toBeLessThan(5000);
      if (!due) await new Promise((resolve) => setTimeout(resolve, 200));
    }
    expect(await reltuples('bpm.user_task')).toBe(0);
  } finally {
    await holder.query('rollback');
    holder.release();
  }
  expect(await refreshUntilAnalysed()).toContain('bpm.user_task');
  expect(await reltuples('bpm.user_task')).toBeGreaterThanOrEqual(1000);
});

test('only bpm_admin and bpm_engine may call it', async () => {
  const admin = await db.connectAs({ role: 'bpm_admin', tenant: TENANT, user: 'boss' });
  await expect(refresh(admin)).resolves.toEqual(expect.any(Array));
  await admin.end();
  for (const role of ['bpm_user', 'bpm_designer'] as const) {
    const client = await db.connectAs({ role, tenant: TENANT, user: 'u' });
    await expect(refresh(client)).rejects.toMatchObject({ code: '42501', message: 'permission denied for function refresh_statistics' });
    await client.end();
  }
});
