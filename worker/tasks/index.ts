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
 *   export const fireTimerTask: Task<'bpm_fire_timer'> = async (payload, helpers) =>
 *     asTenant(helpers, payload.tenant_id, (client) => client.query('select bpm.fire_timer($1)', [payload.subscription_id]));
 *
 * Other code may add tasks at run time with registerTask() before the runner
 * starts (tests, embedding applications).
 */
import type { Task, TaskList } from 'graphile-worker';
import { cleanupHistoryTask, type HistorySettings } from './cleanup_history';
import { continueAsyncTask } from './continue_async';
import { deliverTask } from './deliver';
import { fireTimerTask } from './fire_timer';
import { pingTask } from './ping';
import { taskDeadlineTask } from './task_deadline';

export { asTenant } from './context';
export type { HistorySettings } from './cleanup_history';

declare global {
  // eslint-disable-next-line @typescript-eslint/no-namespace
  namespace GraphileWorker {
    interface Tasks {
      /** No-op job: proves the runner works (and measures a plain job round trip). */
      pgbpm_ping: { sentAt?: number };
      /** A timer subscription is due (bpm_private.timer__enqueue). */
      bpm_fire_timer: { tenant_id: string; subscription_id: string };
      /** An asynchronous continuation is ready (bpm_private.async__enqueue). */
      bpm_continue: { tenant_id: string; token_id: string };
      /** A user task's due date, follow-up date or escalation time has come. */
      bpm_task_deadline: { tenant_id: string; task_id: string; kind: 'due' | 'followUp' | 'escalate' };
      /** A signal or message thrown to a busy instance is to be delivered (bpm_private.delivery__defer). */
      bpm_deliver: { tenant_id: string; delivery_id: string };
      /** A tenant's history retention is due (bpm_private.history_cleanup__schedule, then the task itself). */
      bpm_cleanup_history: { tenant_id: string };
    }
  }
}

/** pgbpm's built-in tasks, by identifier. */
export const TASKS: TaskList = {
  pgbpm_ping: pingTask,
  bpm_fire_timer: fireTimerTask,
  bpm_continue: continueAsyncTask,
  bpm_task_deadline: taskDeadlineTask,
  bpm_deliver: deliverTask,
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

/** Retention settings when the runner is given none: event log kept 30 days, instance history per definition. */
export const HISTORY_DEFAULTS: HistorySettings = { defaultTtlMs: null, eventRetentionMs: 30 * 86_400_000, intervalMs: 3_600_000 };

/** The task list a runner gets: the built-in tasks (history cleanup with `history`) plus registered ones (and `extra`, which win). */
export function taskList(extra: TaskList = {}, history: HistorySettings = HISTORY_DEFAULTS): TaskList {
  return { ...TASKS, bpm_cleanup_history: cleanupHistoryTask(history), ...Object.fromEntries(registered), ...extra };
}

