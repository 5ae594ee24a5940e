import type { Task } from 'graphile-worker';
import { asTenant } from './context';

/**
 * Timers fired per job transaction: the job's own timer and up to this many
 * minus one others of the tenant that are already due (a burst of timers is
 * fired in batches, one commit each, instead of one job and one commit per
 * timer). 50 keeps a batch transaction around 25 ms.
 */
export const TIMER_BATCH = 50;

/**
 * `bpm_fire_timer`: a timer subscription is due (job enqueued by the engine
 * with job_key bpm-timer:<subscription id> and run_at = its due time).
 * bpm.fire_due_timers decides everything under the instance locks and is
 * idempotent: a job that runs twice, late, or after the timer was removed or
 * fired by another job's batch does nothing. A failing continuation becomes
 * an incident (failedJob) in SQL; only transient errors (deadlock,
 * serialization) fail the job, which graphile-worker then retries with
 * back-off.
 */
export const fireTimerTask: Task<'bpm_fire_timer'> = async (payload, helpers) => {
  if (typeof payload?.tenant_id !== 'string' || typeof payload.subscription_id !== 'string') {
    throw new Error(`bpm_fire_timer: malformed payload ${JSON.stringify(payload)}`);
  }
  await asTenant(helpers, payload.tenant_id, (client) =>
    client.query('select bpm.fire_due_timers($1, $2)', [payload.subscription_id, TIMER_BATCH]),
  );
};
