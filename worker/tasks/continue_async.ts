import type { Task } from 'graphile-worker';
import { asTenant } from './context';

/**
 * `bpm_continue`: an asynchronous continuation (camunda:asyncBefore /
 * asyncAfter) is ready. bpm.continue_async is idempotent; a failing
 * continuation fails the job (graphile-worker retries it with back-off)
 * except on the job's last attempt, where the engine records an incident
 * failedJob instead.
 */
export const continueAsyncTask: Task<'bpm_continue'> = async (payload, helpers) => {
  if (typeof payload?.tenant_id !== 'string' || typeof payload.token_id !== 'string') {
    throw new Error(`bpm_continue: malformed payload ${JSON.stringify(payload)}`);
  }
  const lastAttempt = helpers.job.attempts >= helpers.job.max_attempts;
  await asTenant(helpers, payload.tenant_id, (client) =>
    client.query('select bpm.continue_async($1, $2)', [payload.token_id, lastAttempt]),
  );
};
