import type { Task } from 'graphile-worker';
import { asTenant } from './context';

/**
 * `bpm_fire_timer`: a timer subscription is due (job enqueued by the engine
 * with job_key bpm-timer:<subscription id> and run_at = its due time).
 * bpm.fire_timer decides everything under the instance lock and is
 * idempotent: a job that runs twice, late, or after the timer was removed
 * does nothing. A failing continuation becomes an incident (failedJob) in
 * SQL; only transient errors (deadlock, serialization) fail the job, which
 * graphile-worker then retries with back-off.
 */
export const fireTimerTask: Task<'bpm_fire_timer'> = async (payload, helpers) => {
  if (typeof payload?.tenant_id !== 'string' || typeof payload.subscription_id !== 'string') {
    throw new Error(`bpm_fire_timer: malformed payload ${JSON.stringify(payload)}`);
  }
  await asTenant(helpers, payload.tenant_id, (client) => client.query('select bpm.fire_timer($1)', [payload.subscription_id]));
};
