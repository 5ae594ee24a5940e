/**
 * Jest globalTeardown of the "db" project: drops this run's template and any
 * clone a test forgot to close, then stops the embedded server if this run
 * started it: after waiting for other live test runs that reuse the same
 * embedded server (concurrent `jest` in one checkout) to finish.
 */
import pg from 'pg';
import { TEST_DB_PREFIX, dropRunDatabase, parseRunDatabase, pidAlive } from './shared';

const WAIT_FOR_OTHER_RUNS_MS = 15 * 60_000;

async function otherLiveRuns(client: pg.Client, runId: string): Promise<number[]> {
  const { rows } = await client.query<{ datname: string }>(
    `select datname from pg_catalog.pg_database where datname like 'pgbpm\\_template\\_%'`,
  );
  const pids = new Set<number>();
  for (const { datname } of rows) {
    const parsed = parseRunDatabase(datname);
    if (parsed && parsed.runId !== runId && pidAlive(parsed.pid)) pids.add(parsed.pid);
  }
  return [...pids];
}

export default async function globalTeardown(): Promise<void> {
  const state = globalThis.__PGBPM_TEST_STATE__;
  if (!state) return;
  globalThis.__PGBPM_TEST_STATE__ = undefined;
  const { db, runId, template } = state;
  try {
    const client = new pg.Client({ connectionString: db.connectionString, application_name: 'pgbpm-test-teardown' });
    client.on('error', () => undefined);
    await client.connect();
    try {
      const { rows } = await client.query<{ datname: string }>(
        'select datname from pg_catalog.pg_database where datname = $1 or starts_with(datname, $2)',
        [template, `${TEST_DB_PREFIX}${runId}_`],
      );
      for (const { datname } of rows) await dropRunDatabase(client, datname);

      if (db.embedded && db.cluster?.owned) {
        const deadline = Date.now() + WAIT_FOR_OTHER_RUNS_MS;
        let others = await otherLiveRuns(client, runId);
        if (others.length > 0) {
          process.stderr.write(
            `[pgbpm test db] waiting for other test runs using the embedded server to finish (pids ${others.join(', ')}) …\n`,
          );
        }
        while (others.length > 0 && Date.now() < deadline) {
          await new Promise((resolve) => setTimeout(resolve, 500));
          others = await otherLiveRuns(client, runId);
        }
      }
    } finally {
      await client.end();
    }
  } finally {
    await db.stop();
  }
}
