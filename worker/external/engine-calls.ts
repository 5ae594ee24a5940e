/**
 * The external-task contract (schema bpm), called as bpm_engine for one
 * tenant: fetch_and_lock, complete_external_tasks, fail_external_task and
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

/** One completion of a batch: error_code and error_message null when it completed. */
export interface CompletionReport {
  task_id: string;
  error_code: string | null;
  error_message: string | null;
}

/** Completes several tasks in one transaction; each succeeds or fails alone (reports in the order given). */
export async function completeExternalTasks(
  client: pg.ClientBase,
  taskIds: string[],
  workerId: string,
  variables: Variables[],
): Promise<CompletionReport[]> {
  const { rows } = await client.query<CompletionReport>({
    name: 'pgbpm_worker_complete_batch',
    text: 'select task_id, error_code, error_message from bpm.complete_external_tasks($1::uuid[], $2, $3::jsonb[])',
    values: [taskIds, workerId, variables.map((v) => JSON.stringify(v))],
  });
  return rows;
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
