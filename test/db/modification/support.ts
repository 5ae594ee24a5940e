/**
 * Shared bits of the instance modification and migration tests: the admin
 * calls under test and models. Inspection goes through `root`; every call
 * under test goes through a connectAs client.
 */
import type pg from 'pg';
import { one, type InstanceRow } from '../api/support';

export * from '../api/support';
export { job, subscriptions, tokens } from '../events/support';

export const migrate = async (client: pg.ClientBase, ids: string[], target: string, mapping: Record<string, string> = {}): Promise<number> =>
  (await one<{ n: number }>(client, 'select bpm.migrate_process_instances($1::uuid[], $2, $3::jsonb) as n', [ids, target, JSON.stringify(mapping)])).n;

export type Instruction =
  | { startBefore: string; variables?: Record<string, unknown> }
  | { startAfter: string; variables?: Record<string, unknown> }
  | { cancel: string };

export const modify = (client: pg.ClientBase, id: string, instructions: Instruction[] | unknown): Promise<InstanceRow> =>
  one<InstanceRow>(client, 'select * from bpm.modify_process_instance($1, $2::jsonb)', [id, JSON.stringify(instructions)]);

/** A timer boundary event (PT1H) on `host` leading to an end event. */
export const timerBoundary = (id: string, host: string, flow: string): string => `
  <boundaryEvent id="${id}" attachedToRef="${host}"><timerEventDefinition><timeDuration>PT1H</timeDuration></timerEventDefinition></boundaryEvent>
  <sequenceFlow id="${flow}" sourceRef="${id}" targetRef="${id}_end"/><endEvent id="${id}_end"/>`;

/**
 * start → fork → (userTask A, assignee ${owner} | userTask B | external task W (topic)) → join → end.
 * ids: the three branch elements; flows keep their ids across versions.
 */
export function parallelModel(ids: { a: string; b: string; w: string }, topic: string, extra = ''): string {
  return `<startEvent id="start"/><sequenceFlow id="f1" sourceRef="start" targetRef="fork"/>
    <parallelGateway id="fork"/>
    <sequenceFlow id="fa" sourceRef="fork" targetRef="${ids.a}"/><sequenceFlow id="fb" sourceRef="fork" targetRef="${ids.b}"/>
    <sequenceFlow id="fw" sourceRef="fork" targetRef="${ids.w}"/>
    <userTask id="${ids.a}" camunda:assignee="\${owner}"/><userTask id="${ids.b}"/>
    <serviceTask id="${ids.w}" camunda:type="external" camunda:topic="${topic}"/>
    <sequenceFlow id="ja" sourceRef="${ids.a}" targetRef="join"/><sequenceFlow id="jb" sourceRef="${ids.b}" targetRef="join"/>
    <sequenceFlow id="jw" sourceRef="${ids.w}" targetRef="join"/>
    <parallelGateway id="join"/><sequenceFlow id="f9" sourceRef="join" targetRef="end"/><endEvent id="end"/>${extra}`;
}
