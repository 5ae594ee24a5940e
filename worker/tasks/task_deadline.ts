import type { Task } from 'graphile-worker';
import { asTenant } from './context';

const KINDS = new Set(['due', 'followUp', 'escalate']);

/**
 * `bpm_task_deadline`: a user task's due date, follow-up date or escalation
 * time has come. bpm.process_task_deadline re-checks the task under the
 * instance lock and is idempotent.
 */
export const taskDeadlineTask: Task<'bpm_task_deadline'> = async (payload, helpers) => {
  if (typeof payload?.tenant_id !== 'string' || typeof payload.task_id !== 'string' || !KINDS.has(payload.kind)) {
    throw new Error(`bpm_task_deadline: malformed payload ${JSON.stringify(payload)}`);
  }
  await asTenant(helpers, payload.tenant_id, (client) =>
    client.query('select bpm.process_task_deadline($1, $2)', [payload.task_id, payload.kind]),
  );
};
