/** The benchmarks' own database: dropped, recreated and migrated for each run. */
import pg from 'pg';
import { ensureDatabase, resolveDatabase, withDatabase } from '../cli/database';
import { migrateDatabase } from '../cli/migrate';

export interface BenchDatabase {
  /** Superuser (or DATABASE_URL) login on the benchmark database. */
  url: string;
  /** bpm_authenticator login on the benchmark database. */
  authUrl: string;
  stop: () => Promise<void>;
}

/**
 * Drops and recreates `name` on the embedded server (or DATABASE_URL's) and
 * migrates it (BENCH_CURRENT=1: including db/migrations/current.sql).
 */
export async function prepareBenchDatabase(name: string): Promise<BenchDatabase> {
  const db = await resolveDatabase('app', { log: (m) => console.error(m) });
  const url = withDatabase(db.connectionString, name);
  const admin = new pg.Client({ connectionString: db.connectionString });
  await admin.connect();
  await admin.query(`drop database if exists ${admin.escapeIdentifier(name)} with (force)`);
  await admin.end();
  await ensureDatabase(db.connectionString, name);
  await migrateDatabase(url, { authenticatorPassword: db.authenticatorPassword, includeCurrent: process.env.BENCH_CURRENT === '1' });
  return { url, authUrl: withDatabase(db.authenticatorConnectionString, name), stop: () => db.stop() };
}
