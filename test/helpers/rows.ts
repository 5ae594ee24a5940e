/**
 * Row types of the engine's readable tables (schema bpm), as node-postgres
 * returns them. One definition for every test folder.
 */
export type Variables = Record<string, unknown>;

export interface InstanceRow {
  tenant_id: string;
  id: string;
  definition_id: string;
  business_key: string | null;
  state: 'active' | 'suspended' | 'completed' | 'cancelled';
  variables: Variables;
  parent_instance_id: string | null;
  started_by: string | null;
  started_at: Date;
  ended_at: Date | null;
  end_reason: string | null;
}

export interface UserTaskRow {
  tenant_id: string;
  id: string;
  instance_id: string;
  element_id: string;
  name: string | null;
  /** The form as the model names it (see the column comment); null: none. */
  form: Record<string, unknown> | null;
  assignee: string | null;
  candidate_users: string[];
  candidate_groups: string[];
  priority: number;
  due_at: Date | null;
  follow_up_at: Date | null;
  state: 'open' | 'completed' | 'cancelled';
  created_at: Date;
  completed_at: Date | null;
  completed_by: string | null;
  local_variables: Variables | null;
}

export interface ExternalTaskRow {
  tenant_id: string;
  id: string;
  instance_id: string;
  element_id: string;
  topic: string;
  state: 'open' | 'completed' | 'cancelled';
  retries: number | null;
  worker_id: string | null;
  locked_until: Date | null;
  available_at: Date;
  error_message: string | null;
  variables: Variables | null;
  created_at: Date;
  ended_at: Date | null;
  /** camunda:taskPriority as evaluated at creation (default 0). */
  priority: number;
  /** zeebe:taskHeaders and camunda:properties of the element (null: none). */
  headers: Record<string, string> | null;
  local_variables: Variables | null;
}
