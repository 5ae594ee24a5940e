-- pgbpm engine core (contract v1). Functions live in db/functions (included);
-- tables and types are defined here once.
--!include setup/roles.sql
--!include setup/schemas.sql
-- Tables of the engine. Every table has tenant_id; every primary, unique and
-- foreign key leads with it, so a cross-tenant reference cannot exist.

-- States as domains with named checks. Domain constraints are prepared once
-- per session (type cache), whereas table CHECK constraints are re-read for
-- every INSERT/UPDATE statement; on the engine's hot path that cost 14-16% of
-- a transition. Timestamp coherence (ended_at set exactly when a state is
-- final) is therefore kept by the engine functions, which are the only
-- writers, and asserted by the tests, rather than by table checks.
create domain bpm.instance_state as text
  constraint instance_state_is_valid check (value in ('active', 'suspended', 'completed', 'cancelled'));
comment on domain bpm.instance_state is E'State of a process instance: active | suspended | completed | cancelled.';
create domain bpm.task_state as text
  constraint task_state_is_valid check (value in ('open', 'completed', 'cancelled'));
comment on domain bpm.task_state is E'State of a user or external task: open | completed | cancelled.';
create domain bpm.activity_state as text
  constraint activity_state_is_valid check (value in ('active', 'completed', 'cancelled'));
comment on domain bpm.activity_state is E'State of an activity instance: active | completed | cancelled.';
create domain bpm.json_object as jsonb
  constraint json_object_is_object check (pg_catalog.jsonb_typeof(value) = 'object');
comment on domain bpm.json_object is E'A JSON object (process variables).';

create table bpm.deployment (
  tenant_id text not null,
  id uuid not null default gen_random_uuid(),
  name text not null,
  resource_hash text not null,
  xml text not null,
  deployed_at timestamptz not null default now(),
  deployed_by text,
  constraint deployment_pkey primary key (tenant_id, id)
);
comment on table bpm.deployment is E'One deployed BPMN file (resource) with its exact source.';
comment on column bpm.deployment.tenant_id is E'Owning tenant.';
comment on column bpm.deployment.id is E'Deployment resource id.';
comment on column bpm.deployment.name is E'File name given at deploy time.';
comment on column bpm.deployment.resource_hash is E'sha256 (hex) of the exact bytes of the file.';
comment on column bpm.deployment.xml is E'The BPMN XML as deployed.';
comment on column bpm.deployment.deployed_at is E'When it was deployed.';
comment on column bpm.deployment.deployed_by is E'bpm.user_id of the deployer, if set.';

create table bpm.process_definition (
  tenant_id text not null,
  id uuid not null default gen_random_uuid(),
  key text not null,
  version int not null,
  name text,
  version_tag text,
  deployment_id uuid not null,
  resource_hash text not null,
  graph jsonb not null,
  inclusive_joins text[] not null default '{}',
  deployed_at timestamptz not null default now(),
  constraint process_definition_pkey primary key (tenant_id, id),
  constraint process_definition_key_version_key unique (tenant_id, key, version),
  constraint process_definition_deployment_fkey foreign key (tenant_id, deployment_id)
    references bpm.deployment (tenant_id, id) on delete cascade,
  constraint version_is_positive check (version > 0),
  constraint graph_has_start_and_nodes check (graph ? 'start' and jsonb_typeof(graph -> 'nodes') = 'object' and jsonb_typeof(graph -> 'flows') = 'object')
);
comment on table bpm.process_definition is E'A deployed, immutable version of a BPMN process. Deploying a changed model of the same key creates version n+1.';
comment on column bpm.process_definition.tenant_id is E'Owning tenant.';
comment on column bpm.process_definition.id is E'Definition id.';
comment on column bpm.process_definition.key is E'The BPMN process id; start_process starts the latest version of a key.';
comment on column bpm.process_definition.version is E'1, 2, … per key and tenant.';
comment on column bpm.process_definition.name is E'The process name from the model.';
comment on column bpm.process_definition.version_tag is E'camunda:versionTag / zeebe:versionTag, if any.';
comment on column bpm.process_definition.deployment_id is E'The deployment (file) it came from.';
comment on column bpm.process_definition.resource_hash is E'sha256 of the file; an identical redeploy returns this definition instead of a new version.';
comment on column bpm.process_definition.graph is E'The compiled, immutable process graph the engine walks (see compiler/graph.ts).';
comment on column bpm.process_definition.inclusive_joins is E'Ids of inclusive gateways that join (more than one incoming flow).';
comment on column bpm.process_definition.deployed_at is E'When this version was deployed.';

create table bpm.process_instance (
  tenant_id text not null,
  id uuid not null default gen_random_uuid(),
  definition_id uuid not null,
  business_key text,
  state bpm.instance_state not null default 'active',
  variables bpm.json_object not null default '{}',
  parent_instance_id uuid,
  started_by text,
  started_at timestamptz not null default now(),
  ended_at timestamptz,
  end_reason text,
  constraint process_instance_pkey primary key (tenant_id, id),
  constraint process_instance_definition_fkey foreign key (tenant_id, definition_id)
    references bpm.process_definition (tenant_id, id) on delete cascade,
  constraint process_instance_parent_fkey foreign key (tenant_id, parent_instance_id)
    references bpm.process_instance (tenant_id, id) on delete cascade
);
-- running instances of a definition (version migration, monitoring); partial, so it
-- never competes with the primary key in foreign-key checks
create index process_instance_definition_idx on bpm.process_instance (tenant_id, definition_id) where state in ('active', 'suspended');
create index process_instance_business_key_idx on bpm.process_instance (tenant_id, business_key) where business_key is not null;
create index process_instance_parent_idx on bpm.process_instance (tenant_id, parent_instance_id) where parent_instance_id is not null;
comment on table bpm.process_instance is E'A running or finished execution of a process definition.';
comment on column bpm.process_instance.tenant_id is E'Owning tenant.';
comment on column bpm.process_instance.id is E'Instance id.';
comment on column bpm.process_instance.definition_id is E'The definition version it runs; it stays on it for life.';
comment on column bpm.process_instance.business_key is E'Caller-chosen key (also used to correlate messages in Camunda 7 models).';
comment on column bpm.process_instance.state is E'active | suspended | completed | cancelled. A terminate end event completes the instance.';
comment on column bpm.process_instance.variables is E'Process variables (a JSON object).';
comment on column bpm.process_instance.parent_instance_id is E'Calling instance, for instances started by a call activity.';
comment on column bpm.process_instance.started_by is E'bpm.user_id of the starter, if set.';
comment on column bpm.process_instance.started_at is E'When it started.';
comment on column bpm.process_instance.ended_at is E'When it completed or was cancelled.';
comment on column bpm.process_instance.end_reason is E'Why it was cancelled, if given.';

-- A token waiting at a wait state that is not a task (a join). Open user and
-- external tasks are wait states themselves. Tokens passing through automatic
-- steps are never written: the engine walks them in memory within one call.
-- id = the activity instance id of the wait state.
create table bpm_private.token (
  tenant_id text not null,
  id uuid not null,
  instance_id uuid not null,
  element_id text not null,
  kind text not null,
  via_flow text,
  constraint token_pkey primary key (tenant_id, id),
  constraint token_instance_fkey foreign key (tenant_id, instance_id)
    references bpm.process_instance (tenant_id, id) on delete cascade,
  constraint kind_is_valid check (kind in ('join'))
);
create index token_instance_idx on bpm_private.token (tenant_id, instance_id, element_id);
comment on table bpm_private.token is E'Tokens waiting at wait states that are not tasks (joins; later: events); id = activity_instance.id. User and external tasks are wait states themselves (state open).';
comment on column bpm_private.token.tenant_id is E'Owning tenant.';
comment on column bpm_private.token.id is E'The activity instance id of the token''s wait.';
comment on column bpm_private.token.instance_id is E'The process instance.';
comment on column bpm_private.token.element_id is E'The node the token waits at.';
comment on column bpm_private.token.kind is E'What it waits for: join.';
comment on column bpm_private.token.via_flow is E'The sequence flow it arrived by (joins count tokens per incoming flow).';

create table bpm.user_task (
  tenant_id text not null,
  id uuid not null,
  instance_id uuid not null,
  element_id text not null,
  name text,
  assignee text,
  candidate_users text[] not null default '{}',
  candidate_groups text[] not null default '{}',
  priority int not null default 50,
  due_at timestamptz,
  follow_up_at timestamptz,
  state bpm.task_state not null default 'open',
  created_at timestamptz not null default now(),
  completed_at timestamptz,
  completed_by text,
  constraint user_task_pkey primary key (tenant_id, id),
  constraint user_task_instance_fkey foreign key (tenant_id, instance_id)
    references bpm.process_instance (tenant_id, id) on delete cascade
);
create index user_task_instance_idx on bpm.user_task (tenant_id, instance_id);
create index user_task_open_assignee_idx on bpm.user_task (tenant_id, assignee, priority desc, created_at) where state = 'open';
comment on table bpm.user_task is E'A task for a person. A bpm_user sees only tasks assigned to them or offered to them as candidate user or through a candidate group.';
comment on column bpm.user_task.tenant_id is E'Owning tenant.';
comment on column bpm.user_task.id is E'Task id (equal to its activity instance id).';
comment on column bpm.user_task.instance_id is E'The process instance.';
comment on column bpm.user_task.element_id is E'The BPMN userTask id.';
comment on column bpm.user_task.name is E'The task name from the model.';
comment on column bpm.user_task.assignee is E'The user who has the task, or null.';
comment on column bpm.user_task.candidate_users is E'Users the task is offered to.';
comment on column bpm.user_task.candidate_groups is E'Groups the task is offered to (matched against bpm.groups).';
comment on column bpm.user_task.priority is E'Priority, default 50 (higher is more urgent).';
comment on column bpm.user_task.due_at is E'Due date.';
comment on column bpm.user_task.follow_up_at is E'Follow-up date.';
comment on column bpm.user_task.state is E'open | completed | cancelled.';
comment on column bpm.user_task.created_at is E'When the task was created.';
comment on column bpm.user_task.completed_at is E'When it was completed or cancelled.';
comment on column bpm.user_task.completed_by is E'bpm.user_id of the completer.';

create table bpm.external_task (
  tenant_id text not null,
  id uuid not null,
  instance_id uuid not null,
  element_id text not null,
  topic text not null,
  state bpm.task_state not null default 'open',
  retries int,
  worker_id text,
  locked_until timestamptz,
  available_at timestamptz not null default now(),
  error_message text,
  variables jsonb,
  created_at timestamptz not null default now(),
  ended_at timestamptz,
  constraint external_task_pkey primary key (tenant_id, id),
  constraint external_task_instance_fkey foreign key (tenant_id, instance_id)
    references bpm.process_instance (tenant_id, id) on delete cascade,
  constraint retries_is_not_negative check (retries >= 0)
);
create index external_task_instance_idx on bpm.external_task (tenant_id, instance_id);
create index external_task_fetchable_idx on bpm.external_task (tenant_id, topic, available_at) where state = 'open';
comment on table bpm.external_task is E'Work for a worker outside the engine (service, send and business-rule tasks with a topic), fetched with fetch_and_lock. Rows stay after completion.';
comment on column bpm.external_task.tenant_id is E'Owning tenant.';
comment on column bpm.external_task.id is E'External task id (equal to its activity instance id).';
comment on column bpm.external_task.instance_id is E'The process instance.';
comment on column bpm.external_task.element_id is E'The BPMN task id.';
comment on column bpm.external_task.topic is E'camunda:topic or zeebe:taskDefinition type.';
comment on column bpm.external_task.state is E'open | completed | cancelled.';
comment on column bpm.external_task.retries is E'Retries left; null until the first failure; 0 means an incident is open.';
comment on column bpm.external_task.worker_id is E'Worker holding the lock.';
comment on column bpm.external_task.locked_until is E'Lock expiry; after it another worker may fetch the task.';
comment on column bpm.external_task.available_at is E'Not fetchable before this time (retry back-off).';
comment on column bpm.external_task.error_message is E'Last failure message.';
comment on column bpm.external_task.variables is E'The instance variables at fetch time.';
comment on column bpm.external_task.created_at is E'When the task was created.';
comment on column bpm.external_task.ended_at is E'When it was completed or cancelled.';

create table bpm.incident (
  tenant_id text not null,
  id uuid not null default gen_random_uuid(),
  instance_id uuid not null,
  element_id text not null,
  incident_type text not null,
  message text,
  external_task_id uuid,
  created_at timestamptz not null default now(),
  resolved_at timestamptz,
  constraint incident_pkey primary key (tenant_id, id),
  constraint incident_instance_fkey foreign key (tenant_id, instance_id)
    references bpm.process_instance (tenant_id, id) on delete cascade,
  constraint incident_external_task_fkey foreign key (tenant_id, external_task_id)
    references bpm.external_task (tenant_id, id) on delete cascade,
  constraint incident_type_is_valid check (incident_type in ('failedExternalTask', 'failedJob', 'unhandledBpmnError'))
);
create index incident_instance_idx on bpm.incident (tenant_id, instance_id);
create index incident_open_idx on bpm.incident (tenant_id, created_at) where resolved_at is null;
comment on table bpm.incident is E'Something that needs a person: failedExternalTask (retries exhausted), failedJob (a worker job failed), unhandledBpmnError (a BPMN error nobody catches). Resolved by retry_incident.';
comment on column bpm.incident.tenant_id is E'Owning tenant.';
comment on column bpm.incident.id is E'Incident id.';
comment on column bpm.incident.instance_id is E'The process instance.';
comment on column bpm.incident.element_id is E'The BPMN element where it happened.';
comment on column bpm.incident.incident_type is E'failedExternalTask | failedJob | unhandledBpmnError.';
comment on column bpm.incident.message is E'What went wrong.';
comment on column bpm.incident.external_task_id is E'The external task concerned, if any.';
comment on column bpm.incident.created_at is E'When it was raised.';
comment on column bpm.incident.resolved_at is E'When it was resolved (retry_incident), or null while open.';

-- History: one row per activity instance. No foreign key (history is
-- append-mostly, cheap to write and may be partitioned for retention later);
-- only the engine writes it, always with the instance's own tenant.
create sequence bpm_private.activity_seq;
create table bpm.activity_instance (
  tenant_id text not null,
  id uuid not null,
  instance_id uuid not null,
  element_id text not null,
  element_type text not null,
  state bpm.activity_state not null,
  started_at timestamptz not null default now(),
  ended_at timestamptz,
  seq bigint not null default nextval('bpm_private.activity_seq'),
  constraint activity_instance_pkey primary key (tenant_id, id)
);
create index activity_instance_instance_idx on bpm.activity_instance (tenant_id, instance_id, seq);
comment on table bpm.activity_instance is E'History: one row each time a token enters a flow node (each token arriving at a join gets its own row, completed when the join fires).';
comment on column bpm.activity_instance.tenant_id is E'Owning tenant.';
comment on column bpm.activity_instance.id is E'Activity instance id (= user/external task id for tasks).';
comment on column bpm.activity_instance.instance_id is E'The process instance.';
comment on column bpm.activity_instance.element_id is E'The BPMN element id.';
comment on column bpm.activity_instance.element_type is E'BPMN local name: startEvent, userTask, exclusiveGateway, …';
comment on column bpm.activity_instance.state is E'active | completed | cancelled.';
comment on column bpm.activity_instance.started_at is E'When the token entered.';
comment on column bpm.activity_instance.ended_at is E'When it left or was cancelled.';
comment on column bpm.activity_instance.seq is E'Taken when the row is created; increases monotonically.';

-- Run state of one engine call (see db/functions/engine/run.sql).
create type bpm_private.run_state as (
  tenant_id text,
  instance_id uuid,
  variables jsonb,
  is_new boolean,
  terminated boolean,
  inclusive_joins text[],
  steps int,
  q_node text[],
  q_flow text[],
  q_pos int,
  a_id uuid[],
  a_el text[],
  a_type text[],
  a_state text[],
  e_id uuid[],
  e_state text[],
  w_id uuid[],
  w_el text[],
  w_kind text[],
  w_flow text[],
  w_data jsonb[]
);
comment on type bpm_private.run_state is E'In-memory state of one engine call: queued tokens (q_*), buffered history rows (a_*), stored history rows ended in this call (e_*), buffered wait states (w_*).';

--!include setup/context.sql
--!include expression/evaluate.sql
--!include engine/wait.sql
--!include engine/run.sql
--!include engine/node.sql
--!include engine/join.sql
--!include engine/cancel.sql
--!include engine/graph.sql
--!include elements/tasks.sql
--!include elements/error_boundary.sql
--!include api/deploy.sql
--!include api/start_process.sql
--!include api/user_tasks.sql
--!include api/instances.sql
--!include api/external_tasks.sql
--!include setup/policies.sql
--!include setup/grants.sql
--!include setup/ownership.sql
