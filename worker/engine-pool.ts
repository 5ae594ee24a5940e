/**
 * Connections of the worker: log in as bpm_authenticator (or the login
 * given) and SET ROLE bpm_engine before anything else runs on them; a
 * connection whose SET ROLE fails is never handed out. Never a superuser
 * session and never the owner: row-level security applies to every call.
 *
 * The tenant is a session setting (bpm.tenant_id) switched per call, only
 * when the connection last served another tenant (one extra round trip).
 * statement_timeout is a session setting too (PGBPM_WORKER_STATEMENT_TIMEOUT).
 */
import pg from 'pg';
import { handlePoolErrors } from '../server/pg-pool';

export const ENGINE_ROLE = 'bpm_engine';

export interface EnginePoolOptions {
  /** bpm_authenticator's connection string (or any login that may SET ROLE bpm_engine). */
  connectionString: string;
  max: number;
  applicationName: string;
  /** statement_timeout (ms) of its sessions; 0 or absent: none. */
  statementTimeoutMs?: number;
}

export function createEnginePool(options: EnginePoolOptions): pg.Pool {
  const pool = new pg.Pool({
    connectionString: options.connectionString,
    max: options.max,
    application_name: options.applicationName,
    onConnect: async (client: pg.ClientBase) => {
      await client.query(`set role ${ENGINE_ROLE}`);
      const timeout = Math.floor(options.statementTimeoutMs ?? 0);
      if (timeout > 0) await client.query(`set statement_timeout = ${timeout}`);
    },
  });
  // pg drops a failed connection; the next checkout opens a new one
  handlePoolErrors(pool, () => undefined);
  return pool;
}

const sessionTenant = new WeakMap<pg.ClientBase, string>();

/** Makes `tenant` the session's bpm.tenant_id unless it already is. */
export async function useTenant(client: pg.ClientBase, tenant: string): Promise<void> {
  if (sessionTenant.get(client) === tenant) return;
  sessionTenant.delete(client);
  await client.query({ name: 'pgbpm_worker_tenant', text: `select pg_catalog.set_config('bpm.tenant_id', $1, false)`, values: [tenant] });
  sessionTenant.set(client, tenant);
}

/** Runs `fn` on a pooled connection switched to `tenant`; a connection that failed is discarded. */
export async function withTenant<T>(pool: pg.Pool, tenant: string, fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  let broken: Error | undefined;
  try {
    await useTenant(client, tenant);
    return await fn(client);
  } catch (e) {
    // an engine error leaves the session intact; anything without a SQLSTATE may have broken it
    if (typeof (e as { code?: unknown }).code !== 'string' || !/^[0-9A-Z]{5}$/.test((e as { code: string }).code)) {
      broken = e instanceof Error ? e : new Error(String(e));
    }
    throw e;
  } finally {
    client.release(broken);
  }
}
