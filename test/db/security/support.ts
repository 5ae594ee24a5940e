/**
 * What each API role may read and call (db/functions/setup/grants.sql), for
 * the isolation tests: a role without the grant gets 42501 from PostgreSQL
 * before any engine code runs; a role with it reaches the engine's guards.
 */
import type { ApiRole } from '../../helpers/db';

/** The public contract's tables. */
export const BPM_TABLES = [
  'bpm.deployment',
  'bpm.process_definition',
  'bpm.decision_definition',
  'bpm.process_instance',
  'bpm.user_task',
  'bpm.external_task',
  'bpm.incident',
  'bpm.activity_instance',
] as const;
export type BpmTable = (typeof BPM_TABLES)[number];

const ALL: readonly ApiRole[] = ['bpm_admin', 'bpm_designer', 'bpm_user', 'bpm_engine'];

/** Roles with SELECT on each table. */
export const READERS: Readonly<Record<BpmTable, readonly ApiRole[]>> = {
  'bpm.deployment': ['bpm_admin', 'bpm_designer', 'bpm_engine'],
  'bpm.process_definition': ALL,
  'bpm.decision_definition': ALL,
  'bpm.process_instance': ALL,
  'bpm.user_task': ALL,
  'bpm.external_task': ['bpm_admin', 'bpm_designer', 'bpm_engine'],
  'bpm.incident': ['bpm_admin', 'bpm_designer', 'bpm_engine'],
  'bpm.activity_instance': ['bpm_admin', 'bpm_designer', 'bpm_engine'],
};

/** Roles with EXECUTE on each API function. */
export const CALLERS: Readonly<Record<string, readonly ApiRole[]>> = {
  deploy: ['bpm_admin', 'bpm_designer'],
  start_process: ['bpm_admin', 'bpm_user'],
  complete_task: ['bpm_admin', 'bpm_user'],
  claim_task: ['bpm_admin', 'bpm_user'],
  unclaim_task: ['bpm_admin', 'bpm_user'],
  set_assignee: ['bpm_admin'],
  cancel_process_instance: ['bpm_admin'],
  suspend_process_instance: ['bpm_admin'],
  activate_process_instance: ['bpm_admin'],
  set_variables: ['bpm_admin'],
  fetch_and_lock: ['bpm_admin', 'bpm_engine'],
  complete_external_task: ['bpm_admin', 'bpm_engine'],
  complete_external_tasks: ['bpm_admin', 'bpm_engine'],
  fail_external_task: ['bpm_admin', 'bpm_engine'],
  throw_bpmn_error: ['bpm_admin', 'bpm_engine'],
  retry_incident: ['bpm_admin', 'bpm_engine'],
};

export function canCall(role: ApiRole, fn: string): boolean {
  const callers = CALLERS[fn];
  if (!callers) throw new Error(`unknown API function ${fn}`);
  return callers.includes(role);
}
