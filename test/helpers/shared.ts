/**
 * What globalSetup hands to the test workers (through process.env, which jest
 * workers inherit), and the naming of the databases a test run creates.
 *
 *   pgbpm_template_<run>            migrated template, one per test run
 *   pgbpm_t_<run>_<worker>_<rand>   one per createTestDb() call, cloned from it
 *
 * <run> = <start time, base 36>_<pid of the jest process, base 36>, so that
 * concurrent runs against one server never collide, and leftovers of crashed
 * runs can be recognised (by age, and on the embedded server by a dead pid).
 */
import type pg from 'pg';

export const ENV_ROOT_URL = 'PGBPM_TEST_ROOT_URL';
export const ENV_AUTH_URL = 'PGBPM_TEST_AUTH_URL';
export const ENV_TEMPLATE = 'PGBPM_TEST_TEMPLATE';
export const ENV_RUN_ID = 'PGBPM_TEST_RUN_ID';

export const TEMPLATE_PREFIX = 'pgbpm_template_';
export const TEST_DB_PREFIX = 'pgbpm_t_';

export function newRunId(now = Date.now(), pid = process.pid): string {
  return `${now.toString(36)}_${pid.toString(36)}`;
}

export interface ParsedRunDatabase {
  kind: 'template' | 'test';
  runId: string;
  startedAt: number;
  pid: number;
}

/** Recognises the databases test runs create; null for anything else. */
export function parseRunDatabase(name: string): ParsedRunDatabase | null {
  const m =
    /^pgbpm_template_([0-9a-z]+)_([0-9a-z]+)$/.exec(name) ?? /^pgbpm_t_([0-9a-z]+)_([0-9a-z]+)_[0-9a-z]+_[0-9a-z]+$/.exec(name);
  if (!m) return null;
  const startedAt = Number.parseInt(m[1] as string, 36);
  const pid = Number.parseInt(m[2] as string, 36);
  if (!Number.isFinite(startedAt) || !Number.isFinite(pid)) return null;
  return { kind: name.startsWith(TEMPLATE_PREFIX) ? 'template' : 'test', runId: `${m[1]}_${m[2]}`, startedAt, pid };
}

export function requireEnv(name: string): string {
  const value = process.env[name];
  if (!value) {
    throw new Error(
      `${name} is not set: test/helpers/db.ts works only in the jest project "db", whose globalSetup ` +
        '(test/helpers/globalSetup.ts) prepares the test server. Run e.g. `npx jest --selectProjects db`.',
    );
  }
  return value;
}

export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Drops one database of a test run (template or clone), ignoring races with other runs. */
export async function dropRunDatabase(client: pg.Client, name: string): Promise<void> {
  const id = client.escapeIdentifier(name);
  try {
    await client.query(`alter database ${id} with is_template false allow_connections true`);
  } catch {
    // already gone, or not a template
  }
  try {
    await client.query(`drop database if exists ${id} with (force)`);
  } catch (err) {
    process.stderr.write(`[pgbpm test db] could not drop ${name}: ${(err as Error).message}\n`);
  }
}
