/**
 * Shared bits of the API tests (test/db/api): row types of the readable
 * tables, small query helpers, inline models and hand-made resources.
 * Inspection goes through `root` (superuser); every call under test goes
 * through a connectAs client.
 */
import { randomUUID } from 'node:crypto';
import type pg from 'pg';
import { compileBpmnFiles, formatProblems } from '../../../compiler';
import type { DeployedDefinition } from '../../helpers/engine';
import type { ExternalTaskRow, InstanceRow, UserTaskRow, Variables } from '../../helpers/rows';

export type { ExternalTaskRow, InstanceRow, UserTaskRow, Variables } from '../../helpers/rows';

export type Queryable = pg.ClientBase | pg.Pool;




export interface IncidentRow {
  tenant_id: string;
  id: string;
  instance_id: string;
  element_id: string;
  incident_type: 'failedExternalTask' | 'failedJob' | 'unhandledBpmnError';
  message: string | null;
  external_task_id: string | null;
  created_at: Date;
  resolved_at: Date | null;
}

export interface ActivityRow {
  id: string;
  element_id: string;
  element_type: string;
  state: 'active' | 'completed' | 'cancelled';
  ended_at: Date | null;
}

/** The only row of a query (fails the test when there is not exactly one). */
export async function one<T extends pg.QueryResultRow>(db: Queryable, sql: string, params: unknown[] = []): Promise<T> {
  const { rows } = await db.query<T>(sql, params);
  if (rows.length !== 1) throw new Error(`expected one row, got ${rows.length}: ${sql}`);
  return rows[0] as T;
}

export async function all<T extends pg.QueryResultRow>(db: Queryable, sql: string, params: unknown[] = []): Promise<T[]> {
  return (await db.query<T>(sql, params)).rows;
}

export async function count(db: Queryable, sql: string, params: unknown[] = []): Promise<number> {
  return (await one<{ n: number }>(db, `select count(*)::int as n from (${sql}) q`, params)).n;
}

export const newId = (): string => randomUUID();

/** Escapes a string for use inside a RegExp. */
export function re(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

export async function instance(root: pg.Pool, id: string): Promise<InstanceRow> {
  return one<InstanceRow>(root, 'select * from bpm.process_instance where id = $1', [id]);
}

export async function userTasks(root: pg.Pool, instanceId: string): Promise<UserTaskRow[]> {
  return all<UserTaskRow>(root, 'select * from bpm.user_task where instance_id = $1 order by created_at, element_id', [instanceId]);
}

/** The only open user task of an instance. */
export async function openUserTask(root: pg.Pool, instanceId: string): Promise<UserTaskRow> {
  return one<UserTaskRow>(root, `select * from bpm.user_task where instance_id = $1 and state = 'open'`, [instanceId]);
}

export async function userTask(root: pg.Pool, id: string): Promise<UserTaskRow> {
  return one<UserTaskRow>(root, 'select * from bpm.user_task where id = $1', [id]);
}

export async function externalTask(root: pg.Pool, id: string): Promise<ExternalTaskRow> {
  return one<ExternalTaskRow>(root, 'select * from bpm.external_task where id = $1', [id]);
}

/** The only external task of an instance. */
export async function externalTaskOf(root: pg.Pool, instanceId: string): Promise<ExternalTaskRow> {
  return one<ExternalTaskRow>(root, 'select * from bpm.external_task where instance_id = $1', [instanceId]);
}

export async function incidents(root: pg.Pool, instanceId: string): Promise<IncidentRow[]> {
  return all<IncidentRow>(root, 'select * from bpm.incident where instance_id = $1 order by created_at, id', [instanceId]);
}

/** History of an instance in seq order. */
export async function activities(root: pg.Pool, instanceId: string): Promise<ActivityRow[]> {
  return all<ActivityRow>(
    root,
    'select id, element_id, element_type, state, ended_at from bpm.activity_instance where instance_id = $1 order by seq',
    [instanceId],
  );
}

/** element_id:state of every history row, in seq order. */
export async function history(root: pg.Pool, instanceId: string): Promise<string[]> {
  return (await activities(root, instanceId)).map((a) => `${a.element_id}:${a.state}`);
}

export async function tokenCount(root: pg.Pool, instanceId: string): Promise<number> {
  return count(root, 'select 1 from bpm_private.token where instance_id = $1', [instanceId]);
}

export async function start(client: pg.ClientBase, key: string, variables: Variables = {}, businessKey: string | null = null): Promise<InstanceRow> {
  return one<InstanceRow>(client, 'select * from bpm.start_process($1, $2::jsonb, $3)', [key, JSON.stringify(variables), businessKey]);
}

/** start → userTask "task" → end, optionally with extra userTask attributes. */
export function userTaskBody(attributes = ''): string {
  return `
    <startEvent id="start"/>
    <sequenceFlow id="f1" sourceRef="start" targetRef="task"/>
    <userTask id="task" name="Task" ${attributes}/>
    <sequenceFlow id="f2" sourceRef="task" targetRef="end"/>
    <endEvent id="end"/>`;
}

/** start → external serviceTask "work" (topic) → end. */
export function externalTaskBody(topic: string): string {
  return `
    <startEvent id="start"/>
    <sequenceFlow id="f1" sourceRef="start" targetRef="work"/>
    <serviceTask id="work" name="Work" camunda:type="external" camunda:topic="${topic}"/>
    <sequenceFlow id="f2" sourceRef="work" targetRef="end"/>
    <endEvent id="end"/>`;
}

/** A full BPMN file with bpmn:error definitions next to the process (error boundaries need them). */
export function bpmnWithErrors(key: string, errors: Record<string, string>, body: string): string {
  const defs = Object.entries(errors)
    .map(([id, code]) => `<error id="${id}" errorCode="${code}"/>`)
    .join('\n  ');
  return `<?xml version="1.0" encoding="UTF-8"?>
<definitions xmlns="http://www.omg.org/spec/BPMN/20100524/MODEL"
  xmlns:camunda="http://camunda.org/schema/1.0/bpmn"
  id="defs_${key}" targetNamespace="http://pgbpm.test">
  ${defs}
  <process id="${key}" isExecutable="true">
${body}
  </process>
</definitions>`;
}

/** Compiles inline BPMN (must be valid) into the resources bpm.deploy takes. */
export async function compiledResources(files: { name: string; xml: string }[]): Promise<unknown[]> {
  const compiled = await compileBpmnFiles(files);
  if (!compiled.ok) throw new Error(`test model does not compile:\n${formatProblems(compiled.problems)}`);
  return compiled.resources;
}

/**
 * A hand-made resource (as if from another compiler version) around a graph,
 * for what the real compiler never produces.
 */
export function handMadeResource(key: string, graph: unknown, name = `${key}.bpmn`): unknown {
  return {
    name,
    hash: `hand-made-${key}-${randomUUID()}`,
    xml: `<definitions><!-- hand-made ${key} --></definitions>`,
    processes: [{ key, name: null, versionTag: null, graph }],
  };
}

/** start → node → end, where node is whatever the test needs (type and extra fields). */
export function graphAround(node: Record<string, unknown>): Record<string, unknown> {
  const id = String(node.id);
  return {
    start: 'start',
    nodes: {
      start: { id: 'start', type: 'startEvent', name: null, in: [], out: ['f1'] },
      [id]: { name: null, in: ['f1'], out: ['f2'], ...node },
      end: { id: 'end', type: 'endEvent', name: null, in: ['f2'], out: [] },
    },
    flows: {
      f1: { id: 'f1', source: 'start', target: id, condition: null },
      f2: { id: 'f2', source: id, target: 'end', condition: null },
    },
  };
}

/** bpm.deploy with raw resources (JSON), as the client's role. */
export async function deployRaw(client: pg.ClientBase, resources: unknown): Promise<DeployedDefinition[]> {
  return all<DeployedDefinition>(client, 'select id, key, version, name from bpm.deploy($1::jsonb)', [JSON.stringify(resources)]);
}
