/**
 * The external-task contract (schema bpm), called as bpm_engine for one
 * tenant: fetch_and_lock, complete_external_task, fail_external_task and
 * throw_bpmn_error. Named statements: each connection parses them once.
 */
import type pg from 'pg';
import type { Variables } from '../errors';

/** A task as fetch_and_lock returns it (the columns the worker uses). */
export interface LockedTask {
  tenant_id: string;
  id: string;
  instance_id: string;
  element_id: string;
  topic: string;
  /** null until the first failure; then what remains. */
  retries: number | null;
  locked_until: Date;
  created_at: Date;
  /** What the task sees at fetch time: the instance's variables, overlaid by its local variables (subprocess locals, loop variables, input mappings). */
  variables: Variables | null;
  /** The element's zeebe:taskHeaders and camunda:properties, name → value (null: none). */
  headers: Record<string, string> | null;
}

function interval(ms: number): string {
  return `${Math.max(0, Math.round(ms))} milliseconds`;
}

export async function fetchAndLock(
  client: pg.ClientBase,
  topic: string,
  workerId: string,
  maxTasks: number,
  lockDurationMs: number,
): Promise<LockedTask[]> {
  const { rows } = await client.query<LockedTask>({
    name: 'pgbpm_worker_fetch',
    text: `select tenant_id, id, instance_id, element_id, topic, headers, retries, locked_until, created_at, variables
           from bpm.fetch_and_lock($1, $2, $3, $4::interval)`,
    values: [topic, workerId, maxTasks, interval(lockDurationMs)],
  });
  return rows;
}

export async function completeExternalTask(client: pg.ClientBase, taskId: string, workerId: string, variables: Variables): Promise<void> {
  await client.query({
    name: 'pgbpm_worker_complete',
    text: 'select state from bpm.complete_external_task($1, $2, $3::jsonb)',
    values: [taskId, workerId, JSON.stringify(variables)],
  });
}

export async function failExternalTask(
  client: pg.ClientBase,
  taskId: string,
  workerId: string,
  errorMessage: string,
  retries: number,
  retryAfterMs: number,
  errorDetails: string | null,
): Promise<void> {
  await client.query({
    name: 'pgbpm_worker_fail',
    text: 'select state from bpm.fail_external_task($1, $2, $3, $4, $5::interval, $6)',
    values: [taskId, workerId, errorMessage, retries, interval(retryAfterMs), errorDetails],
  });
}

export async function throwBpmnError(
  client: pg.ClientBase,
  taskId: string,
  workerId: string,
  errorCode: string,
  variables: Variables,
  errorMessage: string | null,
): Promise<void> {
  await client.query({
    name: 'pgbpm_worker_bpmn_error_v2',
    text: 'select state from bpm.throw_bpmn_error($1, $2, $3, $4::jsonb, $5)',
    values: [taskId, workerId, errorCode, JSON.stringify(variables), errorMessage],
  });
}
