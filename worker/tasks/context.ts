import type { JobHelpers } from 'graphile-worker';
import type pg from 'pg';

/**
 * Runs `fn` in a transaction on the job's connection (as bpm_engine) with
 * bpm.tenant_id set for that transaction only: how a task calls the engine.
 */
export function asTenant<T>(helpers: JobHelpers, tenant: string, fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  return helpers.withPgClient(async (client) => {
    await client.query('begin');
    try {
      await client.query(`select pg_catalog.set_config('bpm.tenant_id', $1, true)`, [tenant]);
      const result = await fn(client);
      await client.query('commit');
      return result;
    } catch (e) {
      await client.query('rollback').catch(() => undefined);
      throw e;
    }
  });
}
