/**
 * The worker's statistics refresher (worker/statistics.ts): with its job
 * runner it calls bpm.refresh_statistics every PGBPM_STATISTICS_INTERVAL, so
 * an engine table analysed while empty and then filled by a burst gets fresh
 * planner statistics within about a second; "none" turns it off.
 */
import { createTestDb, type TestDb } from '../../helpers/db';
import { deployProcess } from '../../helpers/engine';
import { externalTaskBody } from '../api/support';
import { startTestWorker, waitFor, type TestWorker } from './support';

jest.setTimeout(60_000);

const TENANT = 'stats-w';

let db: TestDb;
const workers: TestWorker[] = [];

beforeAll(async () => {
  db = await createTestDb();
  const designer = await db.connectAs({ role: 'bpm_designer', tenant: TENANT });
  await deployProcess(designer, 'stats_work', externalTaskBody('stats_work'));
  await designer.end();
});
afterEach(async () => {
  await Promise.all(workers.splice(0).map((w) => w.stop()));
});
afterAll(() => db.close());

const reltuples = async (table: string): Promise<number> =>
  (await db.root.query<{ n: number }>(`select reltuples::float8 as n from pg_class where oid = $1::regclass`, [table])).rows[0]?.n ?? NaN;

async function burst(instances: number): Promise<void> {
  const admin = await db.connectAs({ role: 'bpm_admin', tenant: TENANT, user: 'boss' });
  await admin.query(`select count(bpm.start_process('stats_work')) from generate_series(1, $1)`, [instances]);
  await admin.end();
}

test('a table a burst filled after it was analysed empty is analysed again by the worker', async () => {
  await db.root.query('analyze bpm.external_task');
  const w = await startTestWorker(db, { tenants: [], jobs: true, config: { statisticsIntervalMs: 100 } });
  workers.push(w);
  await burst(1500);
  await waitFor('the worker to analyse bpm.external_task', async () => (w.runtime.statistics?.analysed().includes('bpm.external_task') ? true : undefined));
  expect(await reltuples('bpm.external_task')).toBeGreaterThanOrEqual(1500);
});

test('PGBPM_STATISTICS_INTERVAL=none: no refresher', async () => {
  const w = await startTestWorker(db, { tenants: [], jobs: true, config: { statisticsIntervalMs: null } });
  workers.push(w);
  expect(w.runtime.statistics).toBeNull();
});
