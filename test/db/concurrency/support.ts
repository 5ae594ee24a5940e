/**
 * Helpers for the concurrency tests: a gate that makes calls really collide,
 * and settled-result inspection.
 */
import type pg from 'pg';

export type PgError = Error & { code?: string };

/**
 * Starts `calls` while a superuser transaction holds FOR UPDATE locks on the
 * given process instances, waits until `waiters` backends are blocked behind
 * that transaction, then releases it. So every call has passed its first
 * statements and is queued on the instance lock when the gate opens: the
 * calls of each race truly overlap instead of merely being issued together.
 */
export async function gated<T>(
  root: pg.Pool,
  instanceIds: string[],
  waiters: number,
  calls: () => Array<Promise<T>>,
): Promise<Array<PromiseSettledResult<T>>> {
  const gate = await root.connect();
  try {
    await gate.query('begin');
    const locked = await gate.query('select id from bpm.process_instance where id = any($1::uuid[]) for update', [instanceIds]);
    if (locked.rowCount !== instanceIds.length) throw new Error(`gate: locked ${locked.rowCount} of ${instanceIds.length} instances`);
    const settled = Promise.allSettled(calls());
    const deadline = Date.now() + 15_000;
    for (;;) {
      // behind the gate directly, or behind another call queued for the same row
      const blocked = await root.query<{ n: number }>(
        `select count(*)::int as n from pg_catalog.pg_stat_activity
         where datname = current_database() and wait_event_type = 'Lock' and cardinality(pg_catalog.pg_blocking_pids(pid)) > 0`,
      );
      if ((blocked.rows[0]?.n ?? 0) >= waiters) break;
      if (Date.now() > deadline) throw new Error(`gate: only ${blocked.rows[0]?.n} of ${waiters} calls are waiting on the gate`);
      await new Promise((resolve) => setTimeout(resolve, 2));
    }
    await gate.query('commit');
    return await settled;
  } catch (err) {
    await gate.query('rollback').catch(() => undefined);
    throw err;
  } finally {
    gate.release();
  }
}

/** The SQLSTATE of a rejected result, or 'ok' for a fulfilled one. */
export function outcome(result: PromiseSettledResult<unknown>): string {
  return result.status === 'fulfilled' ? 'ok' : ((result.reason as PgError).code ?? `no code: ${String(result.reason)}`);
}

/** Splits an array into chunks of `size`. */
export function chunks<T>(items: T[], size: number): T[][] {
  const result: T[][] = [];
  for (let i = 0; i < items.length; i += size) result.push(items.slice(i, i + size));
  return result;
}

/** How often each value occurs (for compact assertions over many races). */
export function tally(values: string[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const v of values) counts[v] = (counts[v] ?? 0) + 1;
  return counts;
}

/** A deferred delivery waiting in a bpm_deliver job. */
export interface DeliveryJob {
  delivery_id: string;
  tenant_id: string;
}

/**
 * The bpm_deliver jobs waiting, oldest first; with `take`, they are also
 * deleted, as graphile-worker does once it ran them (the caller runs each
 * one's bpm.deliver_deferred as the worker would).
 */
export async function deliveryJobs(root: pg.Pool, take = false): Promise<DeliveryJob[]> {
  const { rows } = await root.query<DeliveryJob & { id: string }>(
    take
      ? `delete from graphile_worker._private_jobs j using graphile_worker._private_tasks t
         where t.id = j.task_id and t.identifier = 'bpm_deliver'
         returning j.id, j.payload ->> 'delivery_id' as delivery_id, j.payload ->> 'tenant_id' as tenant_id`
      : `select j.id, j.payload ->> 'delivery_id' as delivery_id, j.payload ->> 'tenant_id' as tenant_id
         from graphile_worker._private_jobs j join graphile_worker._private_tasks t on t.id = j.task_id
         where t.identifier = 'bpm_deliver'`,
  );
  return rows.sort((a, b) => Number(a.id) - Number(b.id)).map(({ delivery_id, tenant_id }) => ({ delivery_id, tenant_id }));
}
