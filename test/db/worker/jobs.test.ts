/**
 * The graphile-worker job runner as the worker runs it: logged in as
 * bpm_authenticator, SET ROLE bpm_engine (never the owner of
 * graphile_worker), running jobs the engine's owner enqueues in its own
 * transaction, and refusing clearly to start on a database whose job queue
 * schema pgbpm migrate has not installed.
 */
import { createEnginePool } from '../../../worker/engine-pool';
import { startJobRunner } from '../../../worker/job-runner';
import { createWorkerLogger } from '../../../worker/logger';
import { asTenant, taskList } from '../../../worker/tasks';
import { createTestDb, type TestDb } from '../../helpers/db';
import { deferred, startTestWorker, waitFor } from './support';

// waits poll the database for states the worker reaches; on a loaded machine that can take a while
jest.setTimeout(60_000);

let db: TestDb;

beforeAll(async () => {
  db = await createTestDb();
});
afterAll(() => db.close());

/** Enqueues a job as bpm_owner (as the engine functions will), committed. */
async function addJobAsOwner(identifier: string, payload: unknown, runAtSql = 'now()'): Promise<void> {
  const client = await db.root.connect();
  try {
    await client.query('begin');
    await client.query('set local role bpm_owner');
    await client.query(`select graphile_worker.add_job($1, $2::json, run_at := ${runAtSql})`, [identifier, JSON.stringify(payload)]);
    await client.query('commit');
  } finally {
    client.release();
  }
}

test('the runner works as bpm_engine: a job enqueued by bpm_owner runs at once, and a task can call the engine as a tenant', async () => {
  const ran = deferred<{ payload: unknown; role: string; tenant: string }>();
  const w = await startTestWorker(db, {
    tenants: [],
    jobs: true,
    tasks: {
      test_job: async (payload, helpers) => {
        const seen = await asTenant(helpers, 'jobs-t', async (client) => {
          const { rows } = await client.query<{ role: string; tenant: string }>(
            `select current_user as role, current_setting('bpm.tenant_id') as tenant`,
          );
          return rows[0] as { role: string; tenant: string };
        });
        ran.resolve({ payload, ...seen });
      },
    },
  });
  try {
    const t0 = Date.now();
    await addJobAsOwner('test_job', { n: 1 });
    expect(await ran.promise).toEqual({ payload: { n: 1 }, role: 'bpm_engine', tenant: 'jobs-t' });
    expect(Date.now() - t0).toBeLessThan(1000);
    const sessions = await db.root.query<{ usename: string }>(
      `select distinct usename from pg_catalog.pg_stat_activity where datname = current_database() and application_name = 'pgbpm-worker-jobs'`,
    );
    expect(sessions.rows).toEqual([{ usename: 'bpm_authenticator' }]);
  } finally {
    await w.stop();
  }
});

test('a job that becomes due later runs within a poll interval of its run_at', async () => {
  let ranAt = 0;
  const w = await startTestWorker(db, {
    tenants: [],
    jobs: true,
    config: { jobPollIntervalMs: 200 },
    tasks: {
      later_job: () => {
        ranAt = Date.now();
      },
    },
  });
  try {
    const due = Date.now() + 400;
    await addJobAsOwner('later_job', {}, `now() + interval '400 milliseconds'`);
    await waitFor('the job to run', async () => (ranAt > 0 ? true : undefined), 5000);
    expect(ranAt).toBeGreaterThanOrEqual(due - 50);
    expect(ranAt - due).toBeLessThan(1000);
  } finally {
    await w.stop();
  }
});

test('PGBPM_WORKER_STATEMENT_TIMEOUT: an engine call stuck behind a lock fails after the timeout and its job is retried, instead of holding a job loop', async () => {
  const ran = deferred<{ code: string | undefined; ms: number }>();
  const held = await db.root.connect();
  const w = await startTestWorker(db, {
    tenants: [],
    jobs: true,
    config: { statementTimeoutMs: 300 },
    tasks: {
      stuck_job: async (_payload, helpers) => {
        const t0 = Date.now();
        try {
          await asTenant(helpers, 'jobs-t', (client) => client.query('select pg_advisory_xact_lock(4242)'));
          ran.resolve({ code: 'none', ms: Date.now() - t0 });
        } catch (e) {
          ran.resolve({ code: (e as { code?: string }).code, ms: Date.now() - t0 });
          throw e;
        }
      },
    },
  });
  try {
    // another transaction holds what the job needs, for good
    await held.query('begin');
    await held.query('select pg_advisory_xact_lock(4242)');
    await addJobAsOwner('stuck_job', {});
    const outcome = await ran.promise;
    expect(outcome.code).toBe('57014'); // query_canceled: statement timeout
    expect(outcome.ms).toBeLessThan(5_000);
    const job = await waitFor('the job to be failed for a retry', async () => {
      const { rows } = await db.root.query<{ attempts: number; last_error: string | null }>(
        `select attempts, last_error from graphile_worker.jobs where task_identifier = 'stuck_job'`,
      );
      return rows[0]?.last_error ? rows[0] : undefined;
    });
    expect(job.attempts).toBe(1);
    expect(job.last_error).toMatch(/statement timeout/);
  } finally {
    await held.query('rollback').catch(() => undefined);
    held.release();
    await w.stop();
    await db.root.query(`delete from graphile_worker._private_jobs j using graphile_worker._private_tasks t where t.id = j.task_id and t.identifier = 'stuck_job'`);
  }
});

describe('jobs of a worker process that died', () => {
  // graphile-worker alone releases them after 4 hours: a timer whose job was running would fire 4 hours late
  test('are released by a live worker\'s liveness check within seconds, and run', async () => {
    const ran = deferred<number>();
    await addJobAsOwner('orphan_job', {});
    // as if a worker process had taken it and been killed (no session holds its loop's lock)
    await db.root.query(
      `update graphile_worker._private_jobs j set locked_at = now() - interval '1 minute', locked_by = 'worker-killed-with-sigkill'
       from graphile_worker._private_tasks t where t.id = j.task_id and t.identifier = 'orphan_job'`,
    );
    const t0 = Date.now();
    const w = await startTestWorker(db, { tenants: [], jobs: true, config: { jobRecoveryIntervalMs: 200 }, tasks: { orphan_job: () => ran.resolve(Date.now() - t0) } });
    try {
      expect(await ran.promise).toBeLessThan(5_000);
      expect(w.logs.some((l) => l.msg === 'job runner: released the jobs of job loops no live worker holds (a worker died); they run again')).toBe(true);
    } finally {
      await w.stop();
    }
  });

  test('a long job of a live worker (another process) is never taken for dead: it runs once', async () => {
    let runs = 0;
    const done = deferred();
    const slow = async (): Promise<void> => {
      runs++;
      await new Promise((resolve) => setTimeout(resolve, 2_000));
      done.resolve();
    };
    // two runners with their own connections, as two processes; both may run the job, both check liveness every 200 ms
    const a = await startTestWorker(db, { tenants: [], jobs: true, config: { jobRecoveryIntervalMs: 200 }, tasks: { slow_job: slow } });
    const b = await startTestWorker(db, { tenants: [], jobs: true, config: { jobRecoveryIntervalMs: 200 }, tasks: { slow_job: slow } });
    try {
      await addJobAsOwner('slow_job', {});
      await done.promise;
      // locked 2 s, more than three liveness intervals: still its worker's
      await new Promise((resolve) => setTimeout(resolve, 1_000));
      expect(runs).toBe(1);
      for (const w of [a, b]) expect(w.logs.some((l) => String(l.msg).startsWith('job runner: released'))).toBe(false);
    } finally {
      await a.stop();
      await b.stop();
    }
  });
});

test('the built-in task list has pgbpm_ping, and registered tasks join it', () => {
  expect(Object.keys(taskList())).toContain('pgbpm_ping');
  expect(Object.keys(taskList({ extra: () => undefined }))).toEqual(expect.arrayContaining(['pgbpm_ping', 'extra']));
});

test('without graphile-worker schema the runner refuses to start (bpm_engine may not install it) and says to run pgbpm migrate', async () => {
  const bare = await createTestDb();
  try {
    await bare.root.query('drop schema graphile_worker cascade');
    const pool = createEnginePool({ connectionString: bare.urls.authenticator, max: 2, applicationName: 'pgbpm-test-jobs' });
    try {
      await expect(
        startJobRunner({ pool, taskList: taskList(), concurrency: 1, pollIntervalMs: 100, recoveryIntervalMs: 10_000, logger: createWorkerLogger({ level: 'silent' }) }),
      ).rejects.toThrow(/cannot start the job runner: permission denied for database .*run pgbpm migrate/s);
    } finally {
      await pool.end();
    }
    const schema = await bare.root.query(`select 1 from pg_catalog.pg_namespace where nspname = 'graphile_worker'`);
    expect(schema.rowCount).toBe(0);
  } finally {
    await bare.close();
  }
});
