import type { Task } from 'graphile-worker';
import { asTenant } from './context';

/**
 * `bpm_deliver`: a signal or message was thrown to an instance another
 * transaction held at that moment (bpm_private.delivery__defer); deliver it
 * now. bpm.deliver_deferred deletes the delivery in the delivering
 * transaction, so a job that runs twice delivers once. A delivery that fails
 * (e.g. a message to a suspended receiver) fails the job, which
 * graphile-worker retries with back-off.
 */
export const deliverTask: Task<'bpm_deliver'> = async (payload, helpers) => {
  if (typeof payload?.tenant_id !== 'string' || typeof payload.delivery_id !== 'string') {
    throw new Error(`bpm_deliver: malformed payload ${JSON.stringify(payload)}`);
  }
  await asTenant(helpers, payload.tenant_id, (client) => client.query('select bpm.deliver_deferred($1)', [payload.delivery_id]));
};
