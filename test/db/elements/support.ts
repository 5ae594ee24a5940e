/**
 * Shared helpers of the element tests (test/db/elements/*.test.ts): typed
 * wrappers around the public API functions, called as the client's role, and
 * readers for the state the tests assert (instances, tasks, history, tokens).
 *
 * Reads of engine state go through a bpm_admin client (RLS applies) except
 * waits(), which includes join tokens (bpm_private) and reads through `root`.
 */
import type pg from 'pg';
import type { TestDb } from '../../helpers/db';
import type { ExternalTaskRow as ExternalTask, InstanceRow as ProcessInstance, UserTaskRow as UserTask, Variables } from '../../helpers/rows';

export type { ExternalTaskRow as ExternalTask, InstanceRow as ProcessInstance, UserTaskRow as UserTask, Variables } from '../../helpers/rows';

export const TENANT = 'elements';





/** The usual cast of a test file: an admin, a user (alice, group sales) and a worker engine. */
export interface Actors {
  admin: pg.Client;
  alice: pg.Client;
  engine: pg.Client;
}

export async function actors(db: TestDb): Promise<Actors> {
  const [admin, alice, engine] = await Promise.all([
    db.connectAs({ role: 'bpm_admin', tenant: TENANT, user: 'admin' }),
    db.connectAs({ role: 'bpm_user', tenant: TENANT, user: 'alice', groups: ['sales'] }),
    db.connectAs({ role: 'bpm_engine', tenant: TENANT, user: 'worker' }),
  ]);
  return { admin, alice, engine };
}

// ---------------------------------------------------------------------------
// API calls
// ---------------------------------------------------------------------------

export async function startProcess(client: pg.ClientBase, key: string, variables: Variables = {}, businessKey: string | null = null): Promise<ProcessInstance> {
  const { rows } = await client.query<ProcessInstance>('select * from bpm.start_process($1, $2::jsonb, $3)', [
    key,
    JSON.stringify(variables),
    businessKey,
  ]);
  return one(rows, `start_process(${key})`);
}

export async function completeTask(client: pg.ClientBase, taskId: string, variables: Variables = {}): Promise<UserTask> {
  const { rows } = await client.query<UserTask>('select * from bpm.complete_task($1, $2::jsonb)', [taskId, JSON.stringify(variables)]);
  return one(rows, `complete_task(${taskId})`);
}

export async function fetchAndLock(client: pg.ClientBase, topic: string, workerId: string, maxTasks = 10): Promise<ExternalTask[]> {
  const { rows } = await client.query<ExternalTask>('select * from bpm.fetch_and_lock($1, $2, $3)', [topic, workerId, maxTasks]);
  return rows;
}

export async function completeExternalTask(client: pg.ClientBase, taskId: string, workerId: string, variables: Variables = {}): Promise<ExternalTask> {
  const { rows } = await client.query<ExternalTask>('select * from bpm.complete_external_task($1, $2, $3::jsonb)', [
    taskId,
    workerId,
    JSON.stringify(variables),
  ]);
  return one(rows, `complete_external_task(${taskId})`);
}

export async function throwBpmnError(client: pg.ClientBase, taskId: string, workerId: string, code: string, variables: Variables = {}): Promise<ExternalTask> {
  const { rows } = await client.query<ExternalTask>('select * from bpm.throw_bpmn_error($1, $2, $3, $4::jsonb)', [
    taskId,
    workerId,
    code,
    JSON.stringify(variables),
  ]);
  return one(rows, `throw_bpmn_error(${taskId})`);
}

// ---------------------------------------------------------------------------
// Reading state
// ---------------------------------------------------------------------------

export async function getInstance(client: pg.ClientBase, id: string): Promise<ProcessInstance> {
  const { rows } = await client.query<ProcessInstance>('select * from bpm.process_instance where id = $1', [id]);
  return one(rows, `process instance ${id}`);
}

/** Every user task of an instance, in the order the tokens entered them. */
export async function userTasks(client: pg.ClientBase, instanceId: string): Promise<UserTask[]> {
  const { rows } = await client.query<UserTask>(
    `select t.* from bpm.user_task t
     join bpm.activity_instance a on a.tenant_id = t.tenant_id and a.id = t.id
     where t.instance_id = $1 order by a.seq`,
    [instanceId],
  );
  return rows;
}

/** Open user tasks of an instance as "elementId" strings, in entry order. */
export async function openTaskIds(client: pg.ClientBase, instanceId: string): Promise<string[]> {
  return (await userTasks(client, instanceId)).filter((t) => t.state === 'open').map((t) => t.element_id);
}

/** The one open user task of an instance at an element (fails unless there is exactly one). */
export async function openTask(client: pg.ClientBase, instanceId: string, elementId: string): Promise<UserTask> {
  const open = (await userTasks(client, instanceId)).filter((t) => t.state === 'open' && t.element_id === elementId);
  return one(open, `open user task ${elementId} of instance ${instanceId}`);
}

/** Every external task of an instance, in the order the tokens entered them. */
export async function externalTasks(client: pg.ClientBase, instanceId: string): Promise<ExternalTask[]> {
  const { rows } = await client.query<ExternalTask>(
    `select e.* from bpm.external_task e
     join bpm.activity_instance a on a.tenant_id = e.tenant_id and a.id = e.id
     where e.instance_id = $1 order by a.seq`,
    [instanceId],
  );
  return rows;
}

/**
 * The instance's history (bpm.activity_instance) by seq, one
 * "elementId elementType state" string per row, e.g. "start startEvent completed".
 */
export async function history(client: pg.ClientBase, instanceId: string): Promise<string[]> {
  const { rows } = await client.query<{ element_id: string; element_type: string; state: string }>(
    'select element_id, element_type, state from bpm.activity_instance where instance_id = $1 order by seq',
    [instanceId],
  );
  return rows.map((r) => `${r.element_id} ${r.element_type} ${r.state}`);
}

/** Element ids of the instance's history by seq. */
export async function path(client: pg.ClientBase, instanceId: string): Promise<string[]> {
  const { rows } = await client.query<{ element_id: string }>(
    'select element_id from bpm.activity_instance where instance_id = $1 order by seq',
    [instanceId],
  );
  return rows.map((r) => r.element_id);
}

/**
 * Everything an instance waits on (read as superuser: join tokens live in
 * bpm_private), sorted by element id (C collation), one string each:
 * "review userTask" / "charge externalTask" for open tasks,
 * "join token via fromA" for a token waiting at a join.
 */
export async function waits(root: pg.Pool, instanceId: string): Promise<string[]> {
  const { rows } = await root.query<{ w: string }>(
    `select w from (
       select element_id, '' as via, element_id || ' userTask' as w from bpm.user_task where instance_id = $1 and state = 'open'
       union all
       select element_id, '', element_id || ' externalTask' from bpm.external_task where instance_id = $1 and state = 'open'
       union all
       select element_id, coalesce(via_flow, ''), element_id || ' token via ' || coalesce(via_flow, '(none)') from bpm_private.token where instance_id = $1
     ) x order by element_id collate "C", via collate "C"`,
    [instanceId],
  );
  return rows.map((r) => r.w);
}

/** The single element of a list, or a descriptive failure. */
export function one<T>(rows: T[], what: string): T {
  if (rows.length !== 1) throw new Error(`expected exactly one ${what}, got ${rows.length}`);
  return rows[0];
}
