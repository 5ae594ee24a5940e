/**
 * Shared bits of the event tests (test/db/events): models with root
 * elements (messages, signals, errors, escalations), a tenant's actors, and
 * the engine's view of what waits (subscriptions, tokens, jobs).
 */
import type pg from 'pg';
import type { TestDb } from '../../helpers/db';
import { deployXml, type DeployedDefinition } from '../../helpers/engine';
import { all, one } from '../api/support';

export { all, count, one, newId, history, instance, openUserTask, userTasks, incidents, start } from '../api/support';

/** A BPMN file with root elements (e.g. `<message id="m" name="Paid"/>`) next to one process. */
export function bpmnDefs(key: string, roots: string, body: string): string {
  return `<?xml version="1.0" encoding="UTF-8"?>
<definitions xmlns="http://www.omg.org/spec/BPMN/20100524/MODEL"
  xmlns:camunda="http://camunda.org/schema/1.0/bpmn"
  xmlns:zeebe="http://camunda.org/schema/zeebe/1.0"
  id="defs_${key}" targetNamespace="http://pgbpm.test">
  ${roots}
  <process id="${key}" isExecutable="true">
${body}
  </process>
</definitions>`;
}

export async function deployDefs(client: pg.ClientBase, key: string, roots: string, body: string): Promise<DeployedDefinition> {
  const [def] = await deployXml(client, [{ name: `${key}.bpmn`, xml: bpmnDefs(key, roots, body) }]);
  return def;
}

export interface Actors {
  admin: pg.Client;
  engine: pg.Client;
  user: pg.Client;
}

export async function actors(db: TestDb, tenant: string): Promise<Actors> {
  return {
    admin: await db.connectAs({ role: 'bpm_admin', tenant, user: 'boss' }),
    engine: await db.connectAs({ role: 'bpm_engine', tenant }),
    user: await db.connectAs({ role: 'bpm_user', tenant, user: 'ulla', groups: ['staff'] }),
  };
}

export interface SubscriptionRow {
  id: string;
  kind: 'message' | 'signal' | 'timer' | 'conditional';
  name: string | null;
  correlation_key: string | null;
  instance_id: string | null;
  definition_id: string | null;
  token_id: string | null;
  element_id: string;
  interrupting: boolean;
  due_at: Date | null;
  cycle: string | null;
  repeats_left: number | null;
  incident_id: string | null;
  job_priority: number;
}

/** Subscriptions of an instance (or, with null, the start-event subscriptions of a tenant), by element. */
export async function subscriptions(root: pg.Pool, instanceId: string | null, tenant?: string): Promise<SubscriptionRow[]> {
  if (instanceId === null) {
    return all<SubscriptionRow>(root, 'select * from bpm.event_subscription where instance_id is null and tenant_id = $1 order by element_id, id', [tenant]);
  }
  return all<SubscriptionRow>(root, 'select * from bpm.event_subscription where instance_id = $1 order by element_id, id', [instanceId]);
}

/** element:kind of every stored token of an instance. */
export async function tokens(root: pg.Pool, instanceId: string): Promise<string[]> {
  return (await all<{ t: string }>(root, `select element_id || ':' || kind as t from bpm_private.token where instance_id = $1 order by 1`, [instanceId])).map(
    (r) => r.t,
  );
}

export interface JobRow {
  task_identifier: string;
  run_at: Date;
  payload: Record<string, unknown>;
}

export async function job(root: pg.Pool, key: string): Promise<JobRow | null> {
  const rows = await all<JobRow>(
    root,
    `select t.identifier as task_identifier, j.run_at, j.payload
     from graphile_worker._private_jobs j join graphile_worker._private_tasks t on t.id = j.task_id
     where j.key = $1`,
    [key],
  );
  return rows[0] ?? null;
}

/** Makes a timer subscription due now (as if its time had come) and fires it as the worker's job would. */
export async function fireTimer(root: pg.Pool, engine: pg.Client, subscriptionId: string): Promise<{ id: string } | null> {
  await root.query(`update bpm.event_subscription set due_at = now() - interval '1 millisecond' where id = $1`, [subscriptionId]);
  const { rows } = await engine.query<{ id: string | null }>('select (bpm.fire_timer($1)).id', [subscriptionId]);
  return rows[0]?.id ? { id: rows[0].id } : null;
}

export async function instanceState(root: pg.Pool, id: string): Promise<string> {
  return (await one<{ state: string }>(root, 'select state from bpm.process_instance where id = $1', [id])).state;
}

/** Deletes a job as graphile-worker does once it has run. */
export async function dropJob(root: pg.Pool, key: string): Promise<void> {
  await root.query('delete from graphile_worker._private_jobs where key = $1', [key]);
}
