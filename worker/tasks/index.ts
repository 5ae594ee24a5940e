/**
 * graphile-worker tasks of pgbpm: what jobs in graphile_worker run.
 *
 * The engine enqueues jobs from SQL, in the transaction of the transition
 * that needs them (graphile_worker.add_job, granted to bpm_owner), e.g. a
 * timer's `fire_timer` job with a job_key and run_at; the worker's
 * graphile-worker runner (as bpm_engine) runs them. A task does its side
 * effect, then calls one engine function; engine decisions stay in SQL.
 *
 * Adding a task: write it in this folder (one file per task identifier,
 * named `<table>__<action>` or for what it does), give its payload a type in
 * the GraphileWorker.Tasks declaration below, and add it to TASKS:
 *
 *   // worker/tasks/fire_timer.ts
 *   export const fireTimer: Task<'fire_timer'> = async (payload, helpers) =>
 *     asTenant(helpers, payload.tenant, (client) => client.query('select bpm.fire_timer($1)', [payload.timerId]));
 *
 * Other code may add tasks at run time with registerTask() before the runner
 * starts (tests, embedding applications).
 */
import type { JobHelpers, Task, TaskList } from 'graphile-worker';
import type pg from 'pg';
import { pingTask } from './ping';

declare global {
  // eslint-disable-next-line @typescript-eslint/no-namespace
  namespace GraphileWorker {
    interface Tasks {
      /** No-op job: proves the runner works (and measures a plain job round trip). */
      pgbpm_ping: { sentAt?: number };
      // fire_timer: { tenant: string; timerId: string };   ← the engine's timers (next)
    }
  }
}

/** pgbpm's built-in tasks, by identifier. */
export const TASKS: TaskList = {
  pgbpm_ping: pingTask,
};

const registered = new Map<string, Task>();

/** Adds (or replaces) a task for runners started afterwards. */
export function registerTask(identifier: string, task: Task): void {
  if (!/^[A-Za-z_][A-Za-z0-9_:.-]*$/.test(identifier)) throw new Error(`registerTask: invalid task identifier "${identifier}"`);
  registered.set(identifier, task);
}

export function unregisterTask(identifier: string): void {
  registered.delete(identifier);
}

/** The task list a runner gets: the built-in tasks plus registered ones (and `extra`, which win). */
export function taskList(extra: TaskList = {}): TaskList {
  return { ...TASKS, ...Object.fromEntries(registered), ...extra };
}

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
