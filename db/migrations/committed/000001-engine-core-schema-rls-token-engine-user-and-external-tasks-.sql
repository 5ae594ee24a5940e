--! Previous: -
--! Hash: sha1:a0f4e87b7c6bf6b216d36c783120e9c14bbe57c2
--! Message: engine core: schema, RLS, token engine, user and external tasks, API functions

-- pgbpm engine core (contract v1). Functions live in db/functions (included);
-- tables and types are defined here once.
--! Included setup/roles.sql
-- Roles are cluster-wide: create each only if it is missing, so `pgbpm migrate`
-- can run against many databases of one cluster, repeatedly.
--   bpm_owner          owns every engine object; NOLOGIN; subject to forced RLS
--   bpm_authenticator  the only login role; switches to the API roles
--   bpm_admin          everything within its tenant
--   bpm_designer       deploy + read
--   bpm_user           start processes; sees and works the tasks offered to it
--   bpm_engine         the worker's role (external tasks, incidents, jobs)
do $$
declare
  v_role text;
begin
  foreach v_role in array array['bpm_owner', 'bpm_admin', 'bpm_designer', 'bpm_user', 'bpm_engine'] loop
    if not exists (select 1 from pg_catalog.pg_roles where rolname = v_role) then
      begin
        execute pg_catalog.format('create role %I nologin', v_role);
      exception when duplicate_object or unique_violation then
        null; -- created concurrently by a migration of another database
      end;
    end if;
  end loop;
  if not exists (select 1 from pg_catalog.pg_roles where rolname = 'bpm_authenticator') then
    begin
      create role bpm_authenticator login noinherit;
    exception when duplicate_object or unique_violation then
      null;
    end;
  end if;
  foreach v_role in array array['bpm_admin', 'bpm_designer', 'bpm_user', 'bpm_engine'] loop
    if not pg_catalog.pg_has_role('bpm_authenticator', v_role, 'member') then
      execute pg_catalog.format('grant %I to bpm_authenticator', v_role);
    end if;
  end loop;
  -- whoever migrates must be able to hand objects to bpm_owner
  if not (select rolsuper from pg_catalog.pg_roles where rolname = current_user) then
    execute pg_catalog.format('grant bpm_owner to %I', current_user);
  end if;
end;
$$;
--! EndIncluded setup/roles.sql
--! Included setup/schemas.sql
-- bpm: the public contract (readable tables and API functions, exposed by GraphQL).
-- bpm_private: engine internals, never granted to API roles.
create schema if not exists bpm;
create schema if not exists bpm_private;
revoke all on schema bpm from public;
revoke all on schema bpm_private from public;
grant usage on schema bpm to bpm_admin, bpm_designer, bpm_user, bpm_engine;
-- No function is executable by anyone unless granted explicitly.
alter default privileges revoke execute on functions from public;
alter default privileges in schema bpm revoke execute on functions from public;
alter default privileges in schema bpm_private revoke execute on functions from public;
comment on schema bpm is E'pgbpm public contract: process definitions, instances, tasks, history and the engine''s API functions. Every table is filtered by row-level security to the caller''s tenant (setting bpm.tenant_id).';
comment on schema bpm_private is E'pgbpm internals (tokens, run state, helpers). Not part of the contract; never granted to API roles.';
--! EndIncluded setup/schemas.sql
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

--! Included setup/context.sql
-- The caller's role: the role set with SET ROLE (the API roles are entered
-- that way), else the login role. Inside a security definer function
-- current_user is bpm_owner, but the `role` setting still names the caller;
-- it can only be changed by SET ROLE, which Postgres permission-checks.
create or replace function bpm_private.caller_role()
returns text
language plpgsql
stable
set search_path = ''
as $$
declare
  v_role text := pg_catalog.current_setting('role');
begin
  if v_role is null or v_role = 'none' then
    return session_user::text;
  end if;
  return v_role;
end;
$$;
comment on function bpm_private.caller_role() is E'Role of the caller of an API function (SET ROLE value, else the session user).';

-- Guard clause for every API function: the caller must act as one of
-- `allowed` and have a tenant. Returns the tenant id.
-- Raises BP002 (role not allowed) or BP001 (no tenant).
create or replace function bpm_private.require_context(allowed text[], action text)
returns text
language plpgsql
stable
set search_path = ''
as $$
declare
  v_role text := bpm_private.caller_role();
  v_tenant text := nullif(pg_catalog.current_setting('bpm.tenant_id', true), '');
begin
  if not (v_role = any(allowed)) then
    raise exception 'permission denied: role % may not %', v_role, action
      using errcode = 'BP002', hint = 'allowed roles: ' || pg_catalog.array_to_string(allowed, ', ');
  end if;
  if v_tenant is null then
    raise exception 'no tenant: set bpm.tenant_id before calling %', action
      using errcode = 'BP001';
  end if;
  return v_tenant;
end;
$$;
comment on function bpm_private.require_context(text[], text) is E'Permission check first: role allowed and tenant set; returns the tenant id.';

create or replace function bpm_private.current_user_id()
returns text
language plpgsql
stable
set search_path = ''
as $$
begin
  return nullif(pg_catalog.current_setting('bpm.user_id', true), '');
end;
$$;
comment on function bpm_private.current_user_id() is E'The acting user (bpm.user_id), or null.';

create or replace function bpm_private.current_groups()
returns text[]
language plpgsql
stable
set search_path = ''
as $$
begin
  return coalesce(pg_catalog.string_to_array(nullif(pg_catalog.current_setting('bpm.groups', true), ''), ','), '{}');
end;
$$;
comment on function bpm_private.current_groups() is E'The acting user''s groups (bpm.groups, comma-separated).';

create or replace function bpm_private.require_object(variables jsonb, what text)
returns jsonb
language plpgsql
immutable
set search_path = ''
as $$
begin
  if variables is null then
    return '{}'::jsonb;
  end if;
  if pg_catalog.jsonb_typeof(variables) <> 'object' then
    raise exception 'invalid argument: % must be a JSON object, got %', what, pg_catalog.jsonb_typeof(variables)
      using errcode = 'BP401';
  end if;
  return variables;
end;
$$;
comment on function bpm_private.require_object(jsonb, text) is E'Validates that variables are a JSON object (null = {}); raises BP401.';
--! EndIncluded setup/context.sql
--! Included expression/evaluate.sql
-- Evaluation of expressions compiled at deploy time (compiler/expression.ts)
-- into SQL/JSON paths over the instance variables. No user text is ever
-- executed as SQL: paths are data, evaluated by jsonb_path_match/query_first.

create or replace function bpm_private.expression__require_vars(expr jsonb, variables jsonb, element_id text)
returns void
language plpgsql
stable
set search_path = ''
as $$
declare
  v_vars jsonb := expr -> 'vars';
  v_name text;
begin
  if v_vars is null then
    return;
  end if;
  for v_i in 0 .. pg_catalog.jsonb_array_length(v_vars) - 1 loop
    v_name := v_vars ->> v_i;
    if not variables ? v_name then
      raise exception 'unknown variable "%" in expression % of element %', v_name, expr ->> 'src', element_id
        using errcode = 'BP302';
    end if;
  end loop;
end;
$$;
comment on function bpm_private.expression__require_vars(jsonb, jsonb, text) is E'Raises BP302 naming the first variable the expression needs that is not set.';

create or replace function bpm_private.expression__test(expr jsonb, variables jsonb, element_id text)
returns boolean
language plpgsql
stable
set search_path = ''
as $$
declare
  v_result boolean;
begin
  perform bpm_private.expression__require_vars(expr, variables, element_id);
  v_result := pg_catalog.jsonb_path_match(variables, (expr ->> 'path')::jsonpath);
  if v_result is null then
    raise exception 'condition % of element % did not evaluate to a boolean', expr ->> 'src', element_id
      using errcode = 'BP303';
  end if;
  return v_result;
end;
$$;
comment on function bpm_private.expression__test(jsonb, jsonb, text) is E'Evaluates a compiled condition; BP302 for an unknown variable, BP303 if the result is not a boolean.';

-- A CompiledValue: {"literal": …} or {"expr": CompiledExpression}. Returns jsonb (null if absent).
create or replace function bpm_private.value__eval(value jsonb, variables jsonb, element_id text)
returns jsonb
language plpgsql
stable
set search_path = ''
as $$
begin
  if value is null or value = 'null'::jsonb then
    return null;
  end if;
  if value ? 'literal' then
    return value -> 'literal';
  end if;
  perform bpm_private.expression__require_vars(value -> 'expr', variables, element_id);
  return pg_catalog.jsonb_path_query_first(variables, (value -> 'expr' ->> 'path')::jsonpath);
end;
$$;
comment on function bpm_private.value__eval(jsonb, jsonb, text) is E'Evaluates a literal-or-expression value from the compiled graph.';

create or replace function bpm_private.value__to_text(value jsonb)
returns text
language plpgsql
immutable
set search_path = ''
as $$
begin
  if value is null or value = 'null'::jsonb then
    return null;
  end if;
  if pg_catalog.jsonb_typeof(value) = 'string' then
    return value #>> '{}';
  end if;
  return value::text;
end;
$$;
comment on function bpm_private.value__to_text(jsonb) is E'A jsonb scalar as text (strings unquoted).';

-- A list of names: a JSON array of strings, or a comma-separated string.
create or replace function bpm_private.value__to_text_array(value jsonb)
returns text[]
language plpgsql
immutable
set search_path = ''
as $$
begin
  if value is null or value = 'null'::jsonb then
    return '{}';
  end if;
  if pg_catalog.jsonb_typeof(value) = 'array' then
    return array(select pg_catalog.btrim(e) from pg_catalog.jsonb_array_elements_text(value) e where pg_catalog.btrim(e) <> '');
  end if;
  return array(select pg_catalog.btrim(e) from pg_catalog.unnest(pg_catalog.string_to_array(bpm_private.value__to_text(value), ',')) e where pg_catalog.btrim(e) <> '');
end;
$$;
comment on function bpm_private.value__to_text_array(jsonb) is E'A JSON array or comma-separated string as text[] (trimmed, empty entries dropped).';

-- ISO 8601 date/date-time, or duration (P…) relative to now. Raises BP304.
create or replace function bpm_private.value__to_timestamp(value jsonb, element_id text, attribute text)
returns timestamptz
language plpgsql
stable
set search_path = ''
as $$
declare
  v_text text := bpm_private.value__to_text(value);
begin
  if v_text is null or v_text = '' then
    return null;
  end if;
  -- Values of the right shape can still be no date (2030-02-30, 25:00, +25:00)
  -- or out of range (P99999999999Y): PostgreSQL's 22007/22008/22009/22015
  -- become BP304 too.
  begin
    -- durations as the compiler accepts them: fractions written with '.' or ',' (PostgreSQL reads '.')
    if v_text ~ '^P(?!$)(\d+([.,]\d+)?Y)?(\d+([.,]\d+)?M)?(\d+([.,]\d+)?W)?(\d+([.,]\d+)?D)?(T(?=\d)(\d+([.,]\d+)?H)?(\d+([.,]\d+)?M)?(\d+([.,]\d+)?S)?)?$' then
      return pg_catalog.now() + pg_catalog.replace(v_text, ',', '.')::interval;
    end if;
    if v_text ~ '^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}(:?\d{2})?)?)?$' then
      return v_text::timestamptz;
    end if;
  exception when invalid_datetime_format or datetime_field_overflow or invalid_time_zone_displacement_value
      or interval_field_overflow then
    null; -- reported below
  end;
  raise exception '% of element % is neither an ISO 8601 date nor a duration: "%"', attribute, element_id, v_text
    using errcode = 'BP304';
end;
$$;
comment on function bpm_private.value__to_timestamp(jsonb, text, text) is E'Due/follow-up dates: ISO 8601 date-time, date or duration (from now); BP304 otherwise.';
--! EndIncluded expression/evaluate.sql
--! Included engine/wait.sql
-- Wait states created during one engine call are buffered in the run state
-- (w_* arrays) and written by run__flush in one set-based insert per table.

create or replace function bpm_private.wait__add(st bpm_private.run_state, id uuid, element_id text, kind text, via_flow text, data jsonb)
returns bpm_private.run_state
language plpgsql
immutable
set search_path = ''
as $$
begin
  st.w_id := st.w_id || id;
  st.w_el := st.w_el || element_id;
  st.w_kind := st.w_kind || kind;
  st.w_flow := st.w_flow || via_flow;
  st.w_data := st.w_data || data;
  return st;
end;
$$;
comment on function bpm_private.wait__add(bpm_private.run_state, uuid, text, text, text, jsonb) is E'Buffers a new wait-state token.';

create or replace function bpm_private.wait__keep(st bpm_private.run_state, keep boolean[])
returns bpm_private.run_state
language plpgsql
immutable
set search_path = ''
as $$
declare
  v_n int := pg_catalog.cardinality(st.w_id);
  v_id uuid[] := '{}';
  v_el text[] := '{}';
  v_kind text[] := '{}';
  v_flow text[] := '{}';
  v_data jsonb[] := '{}';
begin
  for v_i in 1 .. v_n loop
    continue when not keep[v_i];
    v_id := pg_catalog.array_append(v_id, st.w_id[v_i]);
    v_el := pg_catalog.array_append(v_el, st.w_el[v_i]);
    v_kind := pg_catalog.array_append(v_kind, st.w_kind[v_i]);
    v_flow := pg_catalog.array_append(v_flow, st.w_flow[v_i]);
    v_data := pg_catalog.array_append(v_data, st.w_data[v_i]);
  end loop;
  st.w_id := v_id; st.w_el := v_el; st.w_kind := v_kind; st.w_flow := v_flow; st.w_data := v_data;
  return st;
end;
$$;
comment on function bpm_private.wait__keep(bpm_private.run_state, boolean[]) is E'Keeps only the buffered wait tokens whose keep flag is true.';

create or replace function bpm_private.jsonb_to_text_array(value jsonb)
returns text[]
language plpgsql
immutable
set search_path = ''
as $$
declare
  v_result text[] := '{}';
begin
  if value is null or pg_catalog.jsonb_typeof(value) <> 'array' then
    return v_result;
  end if;
  for v_i in 0 .. pg_catalog.jsonb_array_length(value) - 1 loop
    v_result := pg_catalog.array_append(v_result, value ->> v_i);
  end loop;
  return v_result;
end;
$$;
comment on function bpm_private.jsonb_to_text_array(jsonb) is E'A JSON array of strings as text[] (null or non-array: empty), without a query.';

-- Records that a token entered a flow node: one history row, buffered.
create or replace function bpm_private.activity__add(st bpm_private.run_state, id uuid, element_id text, element_type text, state text)
returns bpm_private.run_state
language plpgsql
immutable
set search_path = ''
as $$
begin
  st.a_id := st.a_id || id;
  st.a_el := st.a_el || element_id;
  st.a_type := st.a_type || element_type;
  st.a_state := st.a_state || state;
  return st;
end;
$$;
comment on function bpm_private.activity__add(bpm_private.run_state, uuid, text, text, text) is E'Buffers an activity_instance row.';

-- Ends activity instances: in the buffer if created in this call, else
-- buffered as ended stored rows (run__flush updates them with its insert).
create or replace function bpm_private.activity__end(st bpm_private.run_state, ids uuid[], state text)
returns bpm_private.run_state
language plpgsql
immutable
set search_path = ''
as $$
declare
  v_id uuid;
  v_pos int;
begin
  foreach v_id in array ids loop
    v_pos := pg_catalog.array_position(st.a_id, v_id);
    if v_pos is null then
      st.e_id := st.e_id || v_id;
      st.e_state := st.e_state || state;
    else
      st.a_state[v_pos] := state;
    end if;
  end loop;
  return st;
end;
$$;
comment on function bpm_private.activity__end(bpm_private.run_state, uuid[], text) is E'Completes or cancels activity instances (written by run__flush).';
--! EndIncluded engine/wait.sql
--! Included engine/run.sql
-- The run: one engine call walks tokens in memory from where they are,
-- through every automatic step, until each token waits or ends; then
-- run__flush writes what changed with one set-based statement per table.

create or replace function bpm_private.run__begin(tenant_id text, instance_id uuid, variables jsonb, is_new boolean, inclusive_joins text[])
returns bpm_private.run_state
language plpgsql
immutable
set search_path = ''
as $$
declare
  st bpm_private.run_state;
begin
  st.tenant_id := tenant_id;
  st.instance_id := instance_id;
  st.variables := variables;
  st.is_new := is_new;
  st.terminated := false;
  st.inclusive_joins := coalesce(inclusive_joins, '{}');
  st.steps := 0;
  st.q_node := '{}'; st.q_flow := '{}'; st.q_pos := 1;
  st.a_id := '{}'; st.a_el := '{}'; st.a_type := '{}'; st.a_state := '{}';
  st.e_id := '{}'; st.e_state := '{}';
  st.w_id := '{}'; st.w_el := '{}'; st.w_kind := '{}'; st.w_flow := '{}'; st.w_data := '{}';
  return st;
end;
$$;
comment on function bpm_private.run__begin(text, uuid, jsonb, boolean, text[]) is E'A fresh run state for one engine call.';

create or replace function bpm_private.run__push(st bpm_private.run_state, node_id text, via_flow text)
returns bpm_private.run_state
language plpgsql
immutable
set search_path = ''
as $$
begin
  st.q_node := st.q_node || node_id;
  st.q_flow := st.q_flow || via_flow;
  return st;
end;
$$;
comment on function bpm_private.run__push(bpm_private.run_state, text, text) is E'Queues a token to enter node_id (arriving via via_flow).';

-- The token lifecycle. Runs queued tokens until all wait or end; then fires
-- inclusive joins that became ready (no token can reach them any more) and
-- runs on. Per token: ENTER (a history row), EXECUTE (the element's
-- behaviour, dispatched explicitly by type: wait, join, terminate or pass
-- through), LEAVE (the flow policy picks the outgoing flows).
-- This loop runs for every automatic step of every call, so the queue and
-- the history rows live in local arrays (appended in place); they are handed
-- to the run state only around behaviours that work on all of it (joins,
-- terminate) and at the end.
create or replace function bpm_private.run__drain(st bpm_private.run_state, graph jsonb)
returns bpm_private.run_state
language plpgsql
volatile
set search_path = ''
as $$
declare
  q_node text[] := st.q_node;
  q_flow text[] := st.q_flow;
  q_pos int := st.q_pos;
  a_id uuid[] := st.a_id;
  a_el text[] := st.a_el;
  a_type text[] := st.a_type;
  a_state text[] := st.a_state;
  v_node_id text;
  v_via text;
  v_node jsonb;
  v_type text;
  v_id uuid;
  v_flow text;
  v_join text;
  v_slow text;
  v_queued int;
  v_steps int := st.steps;
begin
  loop
    while not st.terminated and q_pos <= pg_catalog.cardinality(q_node) loop
      v_node_id := q_node[q_pos];
      v_via := q_flow[q_pos];
      q_pos := q_pos + 1;
      v_steps := v_steps + 1;
      if v_steps > 2000 then
        raise exception 'instance % took more than 2000 automatic steps in one call (endless loop without a wait state?) at element %', st.instance_id, v_node_id
          using errcode = 'BP306';
      end if;
      v_node := graph -> 'nodes' -> v_node_id;
      v_type := v_node ->> 'type';
      if v_node is null then
        raise exception 'element % is not in the process graph', v_node_id using errcode = 'BP305';
      end if;
      -- ===== ENTER
      v_id := pg_catalog.gen_random_uuid();
      a_id := pg_catalog.array_append(a_id, v_id);
      a_el := pg_catalog.array_append(a_el, v_node_id);
      a_type := pg_catalog.array_append(a_type, v_type);
      a_state := pg_catalog.array_append(a_state, 'active'::text);
      -- ===== EXECUTE
      v_slow := null;
      case
        when v_type = 'userTask' then
          st := bpm_private.wait__add(st, v_id, v_node_id, 'userTask', v_via, bpm_private.user_task__create(v_node, st.variables));
          continue;
        when v_type in ('serviceTask', 'sendTask', 'businessRuleTask') then
          st := bpm_private.wait__add(st, v_id, v_node_id, 'externalTask', v_via, bpm_private.external_task__create(v_node));
          continue;
        when v_type = 'parallelGateway' and pg_catalog.jsonb_array_length(v_node -> 'in') > 1 then
          v_slow := 'parallelJoin';
        when v_type = 'inclusiveGateway' and pg_catalog.jsonb_array_length(v_node -> 'in') > 1 then
          -- waits; fired below once no other token can reach it
          st := bpm_private.wait__add(st, v_id, v_node_id, 'join', v_via, null);
          continue;
        when v_type = 'endEvent' and v_node ? 'terminate' and (v_node ->> 'terminate')::boolean then
          a_state[pg_catalog.cardinality(a_state)] := 'completed';
          v_slow := 'terminate';
        when v_type in ('startEvent', 'endEvent', 'task', 'manualTask', 'exclusiveGateway', 'parallelGateway', 'inclusiveGateway', 'boundaryEvent') then
          a_state[pg_catalog.cardinality(a_state)] := 'completed';
        else
          raise exception 'element % has type % which this engine version cannot execute', v_node_id, v_type
            using errcode = 'BP305';
      end case;
      if v_slow is not null then
        -- behaviours on the whole run state
        st.q_node := q_node; st.q_flow := q_flow; st.q_pos := q_pos;
        st.a_id := a_id; st.a_el := a_el; st.a_type := a_type; st.a_state := a_state;
        if v_slow = 'parallelJoin' then
          st := bpm_private.parallel_join__arrive(st, graph, v_node, v_id, v_via);
        else
          st := bpm_private.instance__terminate(st);
        end if;
        q_node := st.q_node; q_flow := st.q_flow; q_pos := st.q_pos;
        a_id := st.a_id; a_el := st.a_el; a_type := st.a_type; a_state := st.a_state;
        continue;
      end if;
      -- ===== LEAVE
      foreach v_flow in array bpm_private.flows__select(graph, v_node, st.variables) loop
        q_node := pg_catalog.array_append(q_node, graph -> 'flows' -> v_flow ->> 'target');
        q_flow := pg_catalog.array_append(q_flow, v_flow);
      end loop;
    end loop;
    st.q_node := q_node; st.q_flow := q_flow; st.q_pos := q_pos; st.steps := v_steps;
    st.a_id := a_id; st.a_el := a_el; st.a_type := a_type; st.a_state := a_state;
    -- ===== INCLUSIVE JOINS
    exit when st.terminated or pg_catalog.cardinality(st.inclusive_joins) = 0;
    v_queued := pg_catalog.cardinality(st.q_node);
    foreach v_join in array st.inclusive_joins loop
      st := bpm_private.inclusive_join__try_fire(st, graph, v_join);
      exit when pg_catalog.cardinality(st.q_node) > v_queued or st.terminated;
    end loop;
    exit when pg_catalog.cardinality(st.q_node) = v_queued;
    q_node := st.q_node; q_flow := st.q_flow; q_pos := st.q_pos;
    a_id := st.a_id; a_el := st.a_el; a_type := st.a_type; a_state := st.a_state;
  end loop;
  return st;
end;
$$;
comment on function bpm_private.run__drain(bpm_private.run_state, jsonb) is E'The token lifecycle: advances every queued token to its next wait state or end (BP306 guards endless loops).';

create or replace function bpm_private.run__flush(st bpm_private.run_state)
returns void
language plpgsql
volatile
set search_path = ''
as $$
begin
  -- history: rows stored earlier that ended now, and the rows of this call
  -- (seq follows the order of the a_* arrays, the order tokens entered nodes)
  if pg_catalog.cardinality(st.e_id) > 0 then
    with ended as (
      update bpm.activity_instance a
      set state = u.state, ended_at = pg_catalog.now()
      from unnest(st.e_id, st.e_state) as u(id, state)
      where a.tenant_id = st.tenant_id and a.id = u.id
    )
    insert into bpm.activity_instance (tenant_id, id, instance_id, element_id, element_type, state, ended_at)
    select st.tenant_id, u.id, st.instance_id, u.el, u.typ, u.state,
      case when u.state = 'active' then null else pg_catalog.now() end
    from unnest(st.a_id, st.a_el, st.a_type, st.a_state) with ordinality as u(id, el, typ, state, ord)
    order by u.ord;
  elsif pg_catalog.cardinality(st.a_id) > 0 then
    insert into bpm.activity_instance (tenant_id, id, instance_id, element_id, element_type, state, ended_at)
    select st.tenant_id, u.id, st.instance_id, u.el, u.typ, u.state,
      case when u.state = 'active' then null else pg_catalog.now() end
    from unnest(st.a_id, st.a_el, st.a_type, st.a_state) with ordinality as u(id, el, typ, state, ord)
    order by u.ord;
  end if;
  if pg_catalog.cardinality(st.w_id) = 0 then
    return;
  end if;
  -- user and external tasks are wait states themselves; other waits are tokens
  if 'join' = any(st.w_kind) then
    insert into bpm_private.token (tenant_id, id, instance_id, element_id, kind, via_flow)
    select st.tenant_id, u.id, st.instance_id, u.el, u.kind, u.flow
    from unnest(st.w_id, st.w_el, st.w_kind, st.w_flow) as u(id, el, kind, flow)
    where u.kind not in ('userTask', 'externalTask');
  end if;
  if 'userTask' = any(st.w_kind) then
    insert into bpm.user_task (tenant_id, id, instance_id, element_id, name, assignee, candidate_users, candidate_groups, priority, due_at, follow_up_at)
    select st.tenant_id, u.id, st.instance_id, u.el, u.data ->> 'name', u.data ->> 'assignee',
      coalesce((select array_agg(e) from pg_catalog.jsonb_array_elements_text(u.data -> 'candidate_users') e), '{}'),
      coalesce((select array_agg(e) from pg_catalog.jsonb_array_elements_text(u.data -> 'candidate_groups') e), '{}'),
      coalesce((u.data ->> 'priority')::int, 50), (u.data ->> 'due_at')::timestamptz, (u.data ->> 'follow_up_at')::timestamptz
    from unnest(st.w_id, st.w_el, st.w_kind, st.w_data) as u(id, el, kind, data)
    where u.kind = 'userTask';
  end if;
  if 'externalTask' = any(st.w_kind) then
    insert into bpm.external_task (tenant_id, id, instance_id, element_id, topic)
    select st.tenant_id, u.id, st.instance_id, u.el, u.data ->> 'topic'
    from unnest(st.w_id, st.w_el, st.w_kind, st.w_data) as u(id, el, kind, data)
    where u.kind = 'externalTask';
  end if;
end;
$$;
comment on function bpm_private.run__flush(bpm_private.run_state) is E'Writes the run''s buffered history rows and wait states (one insert per table).';

-- After a run on an existing instance: store variables and, when nothing
-- waits any more, complete the instance (one statement in the common cases).
create or replace function bpm_private.run__finish(st bpm_private.run_state, before bpm.process_instance)
returns bpm.process_instance
language plpgsql
volatile
set search_path = ''
as $$
declare
  v_result bpm.process_instance;
begin
  perform bpm_private.run__flush(st);
  if st.terminated or pg_catalog.cardinality(st.w_id) = 0 then
    update bpm.process_instance i
    set variables = st.variables, state = 'completed', ended_at = pg_catalog.now()
    where i.tenant_id = st.tenant_id and i.id = st.instance_id
      and (st.terminated or (
        not exists (select 1 from bpm.user_task u where u.tenant_id = st.tenant_id and u.instance_id = st.instance_id and u.state = 'open')
        and not exists (select 1 from bpm.external_task e where e.tenant_id = st.tenant_id and e.instance_id = st.instance_id and e.state = 'open')
        and not exists (select 1 from bpm_private.token t where t.tenant_id = st.tenant_id and t.instance_id = st.instance_id)))
    returning * into v_result;
    if found then
      return v_result;
    end if;
  end if;
  if st.variables = before.variables then
    return before;
  end if;
  update bpm.process_instance i set variables = st.variables
  where i.tenant_id = st.tenant_id and i.id = st.instance_id
  returning * into v_result;
  return v_result;
end;
$$;
comment on function bpm_private.run__finish(bpm_private.run_state, bpm.process_instance) is E'Flushes the run and completes the instance when nothing waits any more.';
--! EndIncluded engine/run.sql
--! Included engine/node.sql
-- The generic token lifecycle lives in run__drain (engine/run.sql): enter
-- (history row, join policy), execute (the element's behaviour, dispatched
-- explicitly by type), leave (flow policy). This file holds the leave side.

create or replace function bpm_private.node__leave(st bpm_private.run_state, graph jsonb, node jsonb)
returns bpm_private.run_state
language plpgsql
volatile
set search_path = ''
as $$
declare
  v_flow text;
begin
  foreach v_flow in array bpm_private.flows__select(graph, node, st.variables) loop
    st := bpm_private.run__push(st, graph -> 'flows' -> v_flow ->> 'target', v_flow);
  end loop;
  return st;
end;
$$;
comment on function bpm_private.node__leave(bpm_private.run_state, jsonb, jsonb) is E'A token leaves a node over the flows its flow policy selects.';

-- Flow policies. Exclusive gateway: the first flow in document order whose
-- condition holds, else the default. Parallel gateway: every flow. Others
-- (inclusive gateway, activities, events): every unconditional or holding
-- flow, else the default. No flow out: the token ends here. Flows out but
-- none selected: BP301.
create or replace function bpm_private.flows__select(graph jsonb, node jsonb, variables jsonb)
returns text[]
language plpgsql
stable
set search_path = ''
as $$
declare
  v_type text := node ->> 'type';
  v_default text := node ->> 'default';
  v_out jsonb := node -> 'out';
  v_flow text;
  v_cond jsonb;
  v_taken text[] := '{}';
begin
  -- jsonb arrays are walked by index: plain expressions, no query per call
  for v_i in 0 .. pg_catalog.jsonb_array_length(v_out) - 1 loop
    v_flow := v_out ->> v_i;
    if v_type = 'parallelGateway' then
      v_taken := v_taken || v_flow;
      continue;
    end if;
    continue when v_flow = v_default;
    v_cond := graph -> 'flows' -> v_flow -> 'condition';
    if v_cond is null or v_cond = 'null'::jsonb or bpm_private.expression__test(v_cond, variables, v_flow) then
      if v_type = 'exclusiveGateway' then
        return array[v_flow];
      end if;
      v_taken := v_taken || v_flow;
    end if;
  end loop;
  if pg_catalog.cardinality(v_taken) = 0 and pg_catalog.jsonb_array_length(v_out) > 0 then
    if v_default is null then
      raise exception 'no outgoing sequence flow of % % can be taken: no condition holds and there is no default flow', v_type, node ->> 'id'
        using errcode = 'BP301';
    end if;
    v_taken := array[v_default];
  end if;
  return v_taken;
end;
$$;
comment on function bpm_private.flows__select(jsonb, jsonb, jsonb) is E'The outgoing flows a token takes from a node (BP301 when none can be taken).';
--! EndIncluded engine/node.sql
--! Included engine/join.sql
-- Joins. Each token arriving at a join waits there (its own activity row).
-- A parallel join fires once every incoming flow has a token; an inclusive
-- join once no live token can still reach it. Firing consumes one token per
-- incoming flow that has one (stored tokens first, then buffered ones), so
-- joins reached repeatedly in loops and uneven branches work.

create or replace function bpm_private.join__flows_waiting(st bpm_private.run_state, node_id text)
returns text[]
language plpgsql
stable
set search_path = ''
as $$
declare
  v_flows text[] := '{}';
begin
  -- buffered tokens: walked by index (plain expressions, no query)
  for v_i in 1 .. pg_catalog.cardinality(st.w_el) loop
    if st.w_el[v_i] = node_id and st.w_kind[v_i] = 'join' and not (st.w_flow[v_i] = any(v_flows)) then
      v_flows := v_flows || st.w_flow[v_i];
    end if;
  end loop;
  if not st.is_new then
    v_flows := v_flows || array(
      select distinct t.via_flow from bpm_private.token t
      where t.tenant_id = st.tenant_id and t.instance_id = st.instance_id and t.element_id = node_id and t.kind = 'join');
  end if;
  return v_flows;
end;
$$;
comment on function bpm_private.join__flows_waiting(bpm_private.run_state, text) is E'Incoming flows of a join on which a token waits (buffered or stored).';

create or replace function bpm_private.join__consume(st bpm_private.run_state, node_id text, flows text[])
returns bpm_private.run_state
language plpgsql
volatile
set search_path = ''
as $$
declare
  v_ids uuid[] := '{}';
  v_done text[] := '{}';
  v_flow text;
  v_keep boolean[];
begin
  if not st.is_new then
    -- several tokens waiting on one flow: the first to arrive goes first
    -- (by the seq of its activity row; token ids are random)
    with picked as (
      select distinct on (t.via_flow) t.id, t.via_flow
      from bpm_private.token t
      join bpm.activity_instance a on a.tenant_id = t.tenant_id and a.id = t.id
      where t.tenant_id = st.tenant_id and t.instance_id = st.instance_id
        and t.element_id = node_id and t.kind = 'join' and t.via_flow = any(flows)
      order by t.via_flow, a.seq
    ), deleted as (
      delete from bpm_private.token t using picked p
      where t.tenant_id = st.tenant_id and t.id = p.id
      returning t.id, t.via_flow
    )
    select coalesce(array_agg(d.id), '{}'), coalesce(array_agg(d.via_flow), '{}') into v_ids, v_done from deleted d;
  end if;
  -- buffered tokens, in arrival order: the first on each remaining flow goes
  v_keep := pg_catalog.array_fill(true, array[pg_catalog.cardinality(st.w_id)]);
  for v_i in 1 .. pg_catalog.cardinality(st.w_id) loop
    v_flow := st.w_flow[v_i];
    if st.w_el[v_i] = node_id and st.w_kind[v_i] = 'join' and v_flow = any(flows) and not (v_flow = any(v_done)) then
      v_keep[v_i] := false;
      v_done := v_done || v_flow;
      v_ids := v_ids || st.w_id[v_i];
    end if;
  end loop;
  if not (true = all(v_keep)) then
    st := bpm_private.wait__keep(st, v_keep);
  end if;
  return bpm_private.activity__end(st, v_ids, 'completed');
end;
$$;
comment on function bpm_private.join__consume(bpm_private.run_state, text, text[]) is E'Consumes one waiting token per given incoming flow of a join and completes their activity rows.';

create or replace function bpm_private.parallel_join__arrive(st bpm_private.run_state, graph jsonb, node jsonb, id uuid, via_flow text)
returns bpm_private.run_state
language plpgsql
volatile
set search_path = ''
as $$
declare
  v_in text[] := bpm_private.jsonb_to_text_array(node -> 'in');
begin
  st := bpm_private.wait__add(st, id, node ->> 'id', 'join', via_flow, null);
  if not (bpm_private.join__flows_waiting(st, node ->> 'id') @> v_in) then
    return st;
  end if;
  st := bpm_private.join__consume(st, node ->> 'id', v_in);
  return bpm_private.node__leave(st, graph, node);
end;
$$;
comment on function bpm_private.parallel_join__arrive(bpm_private.run_state, jsonb, jsonb, uuid, text) is E'A token arrives at a parallel join; fires when every incoming flow has a token.';

create or replace function bpm_private.inclusive_join__try_fire(st bpm_private.run_state, graph jsonb, node_id text)
returns bpm_private.run_state
language plpgsql
volatile
set search_path = ''
as $$
declare
  v_node jsonb := graph -> 'nodes' -> node_id;
  v_flows text[] := bpm_private.join__flows_waiting(st, node_id);
  v_upstream text[];
begin
  if pg_catalog.cardinality(v_flows) = 0 then
    return st;
  end if;
  v_upstream := bpm_private.jsonb_to_text_array(v_node -> 'upstream');
  if st.w_el && v_upstream then
    return st;
  end if;
  if not st.is_new and (
    exists (select 1 from bpm_private.token t
            where t.tenant_id = st.tenant_id and t.instance_id = st.instance_id and t.element_id = any(v_upstream))
    or exists (select 1 from bpm.user_task u
               where u.tenant_id = st.tenant_id and u.instance_id = st.instance_id and u.state = 'open' and u.element_id = any(v_upstream))
    or exists (select 1 from bpm.external_task e
               where e.tenant_id = st.tenant_id and e.instance_id = st.instance_id and e.state = 'open' and e.element_id = any(v_upstream))
  ) then
    return st;
  end if;
  st := bpm_private.join__consume(st, node_id, v_flows);
  return bpm_private.node__leave(st, graph, v_node);
end;
$$;
comment on function bpm_private.inclusive_join__try_fire(bpm_private.run_state, jsonb, text) is E'Fires an inclusive join with waiting tokens once no live token can still reach it.';
--! EndIncluded engine/join.sql
--! Included engine/cancel.sql
-- Cancels everything that waits in an instance: its tokens go, open user
-- and external tasks become cancelled, and so do their activity rows.
create or replace function bpm_private.instance__cancel_tokens(tenant_id text, instance_id uuid)
returns int
language plpgsql
volatile
set search_path = ''
as $$
declare
  v_count int;
begin
  with tokens as (
    delete from bpm_private.token t
    where t.tenant_id = instance__cancel_tokens.tenant_id and t.instance_id = instance__cancel_tokens.instance_id
    returning t.id
  ), user_tasks as (
    update bpm.user_task u
    set state = 'cancelled', completed_at = pg_catalog.now()
    where u.tenant_id = instance__cancel_tokens.tenant_id and u.instance_id = instance__cancel_tokens.instance_id and u.state = 'open'
    returning u.id
  ), external_tasks as (
    update bpm.external_task e
    set state = 'cancelled', ended_at = pg_catalog.now(), worker_id = null, locked_until = null
    where e.tenant_id = instance__cancel_tokens.tenant_id and e.instance_id = instance__cancel_tokens.instance_id and e.state = 'open'
    returning e.id
  ), waits as (
    select id from tokens union all select id from user_tasks union all select id from external_tasks
  ), activities as (
    update bpm.activity_instance a
    set state = 'cancelled', ended_at = pg_catalog.now()
    where a.tenant_id = instance__cancel_tokens.tenant_id and a.id in (select w.id from waits w) and a.state = 'active'
  )
  select pg_catalog.count(*) into v_count from waits;
  -- open incidents of the instance no longer need anyone
  update bpm.incident i set resolved_at = pg_catalog.now()
  where i.tenant_id = instance__cancel_tokens.tenant_id and i.instance_id = instance__cancel_tokens.instance_id and i.resolved_at is null;
  return v_count;
end;
$$;
comment on function bpm_private.instance__cancel_tokens(text, uuid) is E'Cancels everything that waits in an instance: tokens, open user and external tasks, their activity rows.';

-- A terminate end event: every other token of the instance ends as cancelled.
create or replace function bpm_private.instance__terminate(st bpm_private.run_state)
returns bpm_private.run_state
language plpgsql
volatile
set search_path = ''
as $$
declare
  v_pos int;
begin
  if not st.is_new then
    perform bpm_private.instance__cancel_tokens(st.tenant_id, st.instance_id);
  end if;
  for v_pos in 1 .. pg_catalog.cardinality(st.w_id) loop
    st.a_state[pg_catalog.array_position(st.a_id, st.w_id[v_pos])] := 'cancelled';
  end loop;
  st.w_id := '{}'; st.w_el := '{}'; st.w_kind := '{}'; st.w_flow := '{}'; st.w_data := '{}';
  st.q_pos := pg_catalog.cardinality(st.q_node) + 1;
  st.terminated := true;
  return st;
end;
$$;
comment on function bpm_private.instance__terminate(bpm_private.run_state) is E'Terminate end event: cancels every other token; the instance completes.';

-- Serialises transitions of one instance: every engine call locks the
-- instance row first. Raises BP102 when it is not visible in the tenant.
create or replace function bpm_private.instance__lock(tenant_id text, instance_id uuid)
returns bpm.process_instance
language plpgsql
volatile
set search_path = ''
as $$
declare
  v_instance bpm.process_instance;
begin
  select * into v_instance from bpm.process_instance i
  where i.tenant_id = instance__lock.tenant_id and i.id = instance__lock.instance_id
  for update;
  if not found then
    raise exception 'process instance % not found', instance_id using errcode = 'BP102';
  end if;
  return v_instance;
end;
$$;
comment on function bpm_private.instance__lock(text, uuid) is E'Locks an instance row (BP102 if not found in the tenant).';

-- Guard: the instance must be active (BP201 ended, BP202 suspended).
create or replace function bpm_private.instance__require_active(instance bpm.process_instance, action text)
returns void
language plpgsql
immutable
set search_path = ''
as $$
begin
  if instance.state = 'suspended' then
    raise exception 'process instance % is suspended: cannot %', instance.id, action using errcode = 'BP202';
  elsif instance.state <> 'active' then
    raise exception 'process instance % is %: cannot %', instance.id, instance.state, action using errcode = 'BP201';
  end if;
end;
$$;
comment on function bpm_private.instance__require_active(bpm.process_instance, text) is E'Raises BP201/BP202 unless the instance is active.';
--! EndIncluded engine/cancel.sql
--! Included engine/graph.sql
-- Defence in depth at deploy: the compiler validates models, but the engine
-- refuses a graph it could not walk. Raises BP501 naming what is wrong.
create or replace function bpm_private.graph__validate(key text, graph jsonb)
returns void
language plpgsql
immutable
set search_path = ''
as $$
declare
  v_problem text;
begin
  -- "is distinct from": a missing member (null) is a problem too, not a pass
  if pg_catalog.jsonb_typeof(graph) is distinct from 'object' or pg_catalog.jsonb_typeof(graph -> 'nodes') is distinct from 'object'
     or pg_catalog.jsonb_typeof(graph -> 'flows') is distinct from 'object' then
    v_problem := 'graph must be an object with nodes and flows';
  elsif graph -> 'nodes' -> (graph ->> 'start') is null then
    v_problem := pg_catalog.format('start node %s does not exist', coalesce(graph ->> 'start', '(none)'));
  else
    select case
        when coalesce(n.value ->> 'type', '') not in ('startEvent', 'endEvent', 'task', 'manualTask', 'userTask', 'serviceTask',
          'sendTask', 'businessRuleTask', 'exclusiveGateway', 'parallelGateway', 'inclusiveGateway', 'boundaryEvent')
          then pg_catalog.format('node %s has unsupported type %s', n.key, coalesce(n.value ->> 'type', '(none)'))
        when n.value ->> 'id' is distinct from n.key
          then pg_catalog.format('node %s has id %s', n.key, coalesce(n.value ->> 'id', '(none)'))
        else pg_catalog.format('node %s lacks its in or out list of flows', n.key)
      end into v_problem
    from pg_catalog.jsonb_each(graph -> 'nodes') n
    where coalesce(n.value ->> 'type', '') not in ('startEvent', 'endEvent', 'task', 'manualTask', 'userTask', 'serviceTask',
      'sendTask', 'businessRuleTask', 'exclusiveGateway', 'parallelGateway', 'inclusiveGateway', 'boundaryEvent')
      or n.value ->> 'id' is distinct from n.key
      or pg_catalog.jsonb_typeof(n.value -> 'in') is distinct from 'array' or pg_catalog.jsonb_typeof(n.value -> 'out') is distinct from 'array'
    limit 1;
    if v_problem is null then
      select pg_catalog.format('flow %s connects unknown nodes', f.key) into v_problem
      from pg_catalog.jsonb_each(graph -> 'flows') f
      where graph -> 'nodes' -> (f.value ->> 'source') is null or graph -> 'nodes' -> (f.value ->> 'target') is null
      limit 1;
    end if;
    if v_problem is null then
      -- the walk follows a node's out list through graph.flows
      select pg_catalog.format('node %s has outgoing flow %s, which does not exist', n.key, o.flow) into v_problem
      from pg_catalog.jsonb_each(graph -> 'nodes') n, pg_catalog.jsonb_array_elements_text(n.value -> 'out') o(flow)
      where graph -> 'flows' -> o.flow is null
      limit 1;
    end if;
  end if;
  if v_problem is not null then
    raise exception 'invalid process graph for %: %', key, v_problem using errcode = 'BP501';
  end if;
end;
$$;
comment on function bpm_private.graph__validate(text, jsonb) is E'Structural check of a compiled graph at deploy (BP501).';

-- The graph as one plain in-memory value. A stored graph is compressed (or
-- out of line) and PL/pgSQL keeps it that way, so every `->` on it would
-- decompress the whole graph again; the walk reads it dozens of times.
create or replace function bpm_private.graph__in_memory(graph jsonb)
returns jsonb
language plpgsql
immutable
set search_path = ''
as $$
begin
  -- jsonb || returns its detoasted right operand when the left one is empty
  return '{}'::jsonb || graph;
end;
$$;
comment on function bpm_private.graph__in_memory(jsonb) is E'Detoasts a stored graph once per engine call.';

-- A token leaves a task it waited in (the caller has already closed the
-- user or external task row): its activity row ends.
-- Completed (to_node null): the run continues over the node's outgoing flows.
-- Interrupted (to_node = a boundary event): the run continues from there.
create or replace function bpm_private.token__move(instance bpm.process_instance, graph jsonb, joins text[], token_id uuid, node_id text, to_node text, variables jsonb)
returns bpm.process_instance
language plpgsql
volatile
set search_path = ''
as $$
declare
  st bpm_private.run_state := bpm_private.run__begin(instance.tenant_id, instance.id, instance.variables || variables, false, joins);
  v_graph jsonb := bpm_private.graph__in_memory(graph);
begin
  st := bpm_private.activity__end(st, array[token_id], case when to_node is null then 'completed' else 'cancelled' end);
  if to_node is null then
    st := bpm_private.node__leave(st, v_graph, v_graph -> 'nodes' -> node_id);
  else
    st := bpm_private.run__push(st, to_node, null);
  end if;
  st := bpm_private.run__drain(st, v_graph);
  return bpm_private.run__finish(st, instance);
end;
$$;
comment on function bpm_private.token__move(bpm.process_instance, jsonb, text[], uuid, text, text, jsonb) is E'Continues an instance after a wait state completed (to_node null) or was interrupted by the boundary event to_node.';
--! EndIncluded engine/graph.sql
--! Included elements/tasks.sql
-- User task behaviour: the task's attributes, evaluated from the compiled
-- spec when the token arrives; the token then waits (run__flush writes it).
create or replace function bpm_private.user_task__create(node jsonb, variables jsonb)
returns jsonb
language plpgsql
stable
set search_path = ''
as $$
declare
  v_spec jsonb := node -> 'userTask';
  v_el text := node ->> 'id';
  v_data jsonb;
begin
  if v_spec is null or v_spec = '{}'::jsonb then
    v_data := pg_catalog.jsonb_build_object('name', node -> 'name');
  else
    v_data := pg_catalog.jsonb_build_object(
      'name', node -> 'name',
      'assignee', bpm_private.value__to_text(bpm_private.value__eval(v_spec -> 'assignee', variables, v_el)),
      'candidate_users', pg_catalog.to_jsonb(bpm_private.value__to_text_array(bpm_private.value__eval(v_spec -> 'candidateUsers', variables, v_el))),
      'candidate_groups', pg_catalog.to_jsonb(bpm_private.value__to_text_array(bpm_private.value__eval(v_spec -> 'candidateGroups', variables, v_el))),
      'priority', bpm_private.user_task__priority(bpm_private.value__eval(v_spec -> 'priority', variables, v_el), v_el),
      'due_at', bpm_private.value__to_timestamp(bpm_private.value__eval(v_spec -> 'dueDate', variables, v_el), v_el, 'dueDate'),
      'follow_up_at', bpm_private.value__to_timestamp(bpm_private.value__eval(v_spec -> 'followUpDate', variables, v_el), v_el, 'followUpDate'));
  end if;
  return v_data;
end;
$$;
comment on function bpm_private.user_task__create(jsonb, jsonb) is E'User task behaviour: assignee, candidates, priority and dates for a new task.';

create or replace function bpm_private.user_task__priority(value jsonb, element_id text)
returns int
language plpgsql
immutable
set search_path = ''
as $$
declare
  v_text text := bpm_private.value__to_text(value);
begin
  if v_text is null then
    return 50;
  end if;
  if v_text !~ '^\s*-?\d{1,9}\s*$' then
    raise exception 'priority of element % is not an integer: "%"', element_id, v_text using errcode = 'BP303';
  end if;
  return v_text::int;
end;
$$;
comment on function bpm_private.user_task__priority(jsonb, text) is E'Task priority from a value (default 50; BP303 if not an integer).';

-- Service, send and business-rule tasks with a topic: an external task waits
-- for a worker (fetch_and_lock).
create or replace function bpm_private.external_task__create(node jsonb)
returns jsonb
language plpgsql
immutable
set search_path = ''
as $$
begin
  if node ->> 'topic' is null then
    raise exception 'element % has no external task topic', node ->> 'id' using errcode = 'BP305';
  end if;
  return pg_catalog.jsonb_build_object('topic', node ->> 'topic');
end;
$$;
comment on function bpm_private.external_task__create(jsonb) is E'External task behaviour: the topic of a new external task.';
--! EndIncluded elements/tasks.sql
--! Included elements/error_boundary.sql
-- Error boundary events: the boundary attached to the element whose error
-- code matches, else a catch-all one (no code). Null when none catches.
create or replace function bpm_private.error_boundary__find(graph jsonb, element_id text, error_code text)
returns text
language plpgsql
immutable
set search_path = ''
as $$
declare
  v_graph jsonb := graph;
  v_exact text;
  v_catch_all text;
  v_boundary jsonb;
begin
  for v_boundary in
    select v_graph -> 'nodes' -> b from pg_catalog.jsonb_array_elements_text(coalesce(v_graph -> 'nodes' -> element_id -> 'boundary', '[]')) b
  loop
    continue when v_boundary -> 'error' is null;
    if v_boundary -> 'error' ->> 'code' is null then
      v_catch_all := coalesce(v_catch_all, v_boundary ->> 'id');
    elsif v_boundary -> 'error' ->> 'code' = error_code then
      v_exact := coalesce(v_exact, v_boundary ->> 'id');
    end if;
  end loop;
  return coalesce(v_exact, v_catch_all);
end;
$$;
comment on function bpm_private.error_boundary__find(jsonb, text, text) is E'The error boundary event catching error_code on an element, or null.';
--! EndIncluded elements/error_boundary.sql
--! Included api/deploy.sql
-- resources: the compiler's CompiledResource[] (compiler/graph.ts):
-- [{name, hash, xml, processes: [{key, name, versionTag, graph}]}].
create or replace function bpm.deploy(resources jsonb)
returns setof bpm.process_definition
language plpgsql
volatile
security definer
set search_path = ''
set plan_cache_mode = force_generic_plan
as $$
declare
  v_tenant text := bpm_private.require_context(array['bpm_admin', 'bpm_designer'], 'deploy');
  v_resource jsonb;
  v_process jsonb;
  v_deployment uuid;
  v_latest bpm.process_definition;
  v_definition bpm.process_definition;
begin
  if pg_catalog.jsonb_typeof(resources) is distinct from 'array' or pg_catalog.jsonb_array_length(resources) = 0 then
    raise exception 'invalid deployment: expected a non-empty array of compiled resources' using errcode = 'BP501';
  end if;
  -- versions of one key are assigned one deployment at a time (sorted: no
  -- deadlocks); malformed resources are skipped here and rejected below (BP501)
  perform pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtextextended(v_tenant || '/' || k.key, 0))
  from (select distinct p ->> 'key' as key from pg_catalog.jsonb_array_elements(resources) r,
    pg_catalog.jsonb_array_elements(case when pg_catalog.jsonb_typeof(r -> 'processes') = 'array' then r -> 'processes' end) p
    order by 1) k;
  for v_resource in select r from pg_catalog.jsonb_array_elements(resources) r loop
    if v_resource ->> 'name' is null or v_resource ->> 'hash' is null or v_resource ->> 'xml' is null
       or pg_catalog.jsonb_typeof(v_resource -> 'processes') is distinct from 'array' then
      raise exception 'invalid deployment: resource % lacks name, hash, xml or processes', coalesce(v_resource ->> 'name', '?') using errcode = 'BP501';
    end if;
    v_deployment := null;
    for v_process in select p from pg_catalog.jsonb_array_elements(v_resource -> 'processes') p loop
      if coalesce(v_process ->> 'key', '') = '' then
        raise exception 'invalid deployment: a process of resource % has no key', v_resource ->> 'name' using errcode = 'BP501';
      end if;
      perform bpm_private.graph__validate(v_process ->> 'key', v_process -> 'graph');
      select * into v_latest from bpm.process_definition d
      where d.tenant_id = v_tenant and d.key = v_process ->> 'key'
      order by d.version desc limit 1;
      if found and v_latest.resource_hash = v_resource ->> 'hash' then
        return next v_latest;
        continue;
      end if;
      if v_deployment is null then
        insert into bpm.deployment (tenant_id, name, resource_hash, xml, deployed_by)
        values (v_tenant, v_resource ->> 'name', v_resource ->> 'hash', v_resource ->> 'xml', bpm_private.current_user_id())
        returning id into v_deployment;
      end if;
      insert into bpm.process_definition (tenant_id, key, version, name, version_tag, deployment_id, resource_hash, graph, inclusive_joins)
      values (v_tenant, v_process ->> 'key', coalesce(v_latest.version, 0) + 1, v_process ->> 'name', v_process ->> 'versionTag',
        v_deployment, v_resource ->> 'hash', v_process -> 'graph',
        array(select n.key from pg_catalog.jsonb_each(v_process -> 'graph' -> 'nodes') n
              where n.value ->> 'type' = 'inclusiveGateway' and pg_catalog.jsonb_array_length(n.value -> 'in') > 1 order by n.key))
      returning * into v_definition;
      v_latest := null;
      return next v_definition;
    end loop;
  end loop;
end;
$$;
comment on function bpm.deploy(jsonb) is E'Deploys compiled BPMN resources (as produced by the pgbpm compiler; use `pgbpm deploy` or the deployProcess mutation rather than calling this directly) in one transaction. A process whose file is byte-identical to the latest version of its key is not deployed again: that definition is returned. Roles: bpm_admin, bpm_designer.';
--! EndIncluded api/deploy.sql
--! Included api/start_process.sql
create or replace function bpm.start_process(process_key text, variables jsonb default '{}', business_key text default null)
returns bpm.process_instance
language plpgsql
volatile
security definer
set search_path = ''
set plan_cache_mode = force_generic_plan
as $$
declare
  v_tenant text := bpm_private.require_context(array['bpm_admin', 'bpm_user'], 'start a process');
  v_variables jsonb := bpm_private.require_object(variables, 'variables');
  v_definition bpm.process_definition;
  st bpm_private.run_state;
  v_done boolean;
  v_instance bpm.process_instance;
begin
  select * into v_definition from bpm.process_definition d
  where d.tenant_id = v_tenant and d.key = process_key
  order by d.version desc limit 1;
  if not found then
    raise exception 'process definition with key % not found', process_key using errcode = 'BP101';
  end if;
  -- walk in memory first: an instance that ends within this call is inserted completed
  st := bpm_private.run__begin(v_tenant, pg_catalog.gen_random_uuid(), v_variables, true, v_definition.inclusive_joins);
  st := bpm_private.run__push(st, v_definition.graph ->> 'start', null);
  st := bpm_private.run__drain(st, bpm_private.graph__in_memory(v_definition.graph));
  v_done := st.terminated or pg_catalog.cardinality(st.w_id) = 0;
  insert into bpm.process_instance (tenant_id, id, definition_id, business_key, state, variables, started_by, ended_at)
  values (v_tenant, st.instance_id, v_definition.id, start_process.business_key,
    case when v_done then 'completed' else 'active' end, st.variables, bpm_private.current_user_id(),
    case when v_done then pg_catalog.now() end)
  returning * into v_instance;
  perform bpm_private.run__flush(st);
  return v_instance;
end;
$$;
comment on function bpm.start_process(text, jsonb, text) is E'Starts an instance of the latest version of a process key and runs it until every token waits. Raises BP101 when the key is unknown in the tenant. Roles: bpm_admin, bpm_user.';
--! EndIncluded api/start_process.sql
--! Included api/user_tasks.sql
-- Loads a user task after locking its instance (so concurrent calls on one
-- instance serialise and the task is read as of the lock), and checks that
-- the caller may act on it: bpm_admin any task of its tenant; bpm_user a task
-- assigned to it or, unassigned, offered to it. Raises BP103 (not found or
-- not visible), BP203 (not open), BP204 (assigned to someone else), BP202/BP201.
create or replace function bpm_private.user_task__lock(tenant_id text, task_id uuid, action text, out task bpm.user_task, out instance bpm.process_instance)
language plpgsql
volatile
set search_path = ''
as $$
declare
  v_user text := bpm_private.current_user_id();
  v_role text := bpm_private.caller_role();
begin
  select * into instance from bpm.process_instance i
  where i.tenant_id = user_task__lock.tenant_id
    and i.id = (select t.instance_id from bpm.user_task t where t.tenant_id = user_task__lock.tenant_id and t.id = task_id)
  for update;
  if not found then
    raise exception 'user task % not found', task_id using errcode = 'BP103';
  end if;
  -- read after the lock: sees what a concurrent call on the instance committed
  select * into task from bpm.user_task t where t.tenant_id = user_task__lock.tenant_id and t.id = task_id;
  if v_role = 'bpm_user' then
    if v_user is null then
      raise exception 'bpm.user_id is not set: a bpm_user cannot %', action using errcode = 'BP002';
    end if;
    if task.assignee is distinct from v_user
       and not (v_user = any(task.candidate_users) or task.candidate_groups && bpm_private.current_groups()) then
      raise exception 'user task % not found', task_id using errcode = 'BP103';
    end if;
  end if;
  if task.state <> 'open' then
    raise exception 'user task % is % and cannot %', task_id, task.state, action using errcode = 'BP203';
  end if;
  perform bpm_private.instance__require_active(instance, action);
end;
$$;
comment on function bpm_private.user_task__lock(text, uuid, text) is E'Locks the task''s instance, loads the task and checks the caller may act on it.';

create or replace function bpm.complete_task(task_id uuid, variables jsonb default '{}')
returns bpm.user_task
language plpgsql
volatile
security definer
set search_path = ''
set plan_cache_mode = force_generic_plan
as $$
declare
  v_tenant text := bpm_private.require_context(array['bpm_admin', 'bpm_user'], 'complete a task');
  v_variables jsonb := bpm_private.require_object(variables, 'variables');
  v_user text := bpm_private.current_user_id();
  v_is_user boolean := bpm_private.caller_role() = 'bpm_user';
  v_task bpm.user_task;
  v_instance bpm.process_instance;
  v_locked record;
begin
  if v_is_user and v_user is null then
    raise exception 'bpm.user_id is not set: a bpm_user cannot complete task %', task_id using errcode = 'BP002';
  end if;
  -- ===== LOCK the instance (loading its graph), then close the task if every rule holds
  select i as instance, d.graph, d.inclusive_joins into v_locked
  from bpm.process_instance i
  join bpm.process_definition d on d.tenant_id = i.tenant_id and d.id = i.definition_id
  where i.tenant_id = v_tenant
    and i.id = (select t.instance_id from bpm.user_task t where t.tenant_id = v_tenant and t.id = task_id)
  for update of i;
  v_instance := v_locked.instance;
  update bpm.user_task t
  set state = 'completed', completed_at = pg_catalog.now(), completed_by = v_user,
    assignee = coalesce(t.assignee, case when v_is_user then v_user end)
  where t.tenant_id = v_tenant and t.id = task_id and t.state = 'open' and v_instance.state = 'active'
    and (not v_is_user or t.assignee = v_user
         or (t.assignee is null and (v_user = any(t.candidate_users) or t.candidate_groups && bpm_private.current_groups())))
  returning * into v_task;
  if not found then
    -- ===== GUARD: say precisely why (BP103, BP002, BP203, BP202/BP201), else it is someone else's task
    perform bpm_private.user_task__lock(v_tenant, task_id, 'complete it');
    raise exception 'user task % is assigned to another user', task_id using errcode = 'BP204';
  end if;
  -- ===== LEAVE the task
  perform bpm_private.token__move(v_instance, v_locked.graph, v_locked.inclusive_joins, v_task.id, v_task.element_id, null, v_variables);
  return v_task;
end;
$$;
comment on function bpm.complete_task(uuid, jsonb) is E'Completes an open user task; variables merge into the instance per top-level key. A bpm_user may complete a task assigned to them, or an unassigned one offered to them (which claims it). Errors: BP103 not found, BP203 not open, BP204 assigned to another user, BP202 instance suspended. Roles: bpm_admin, bpm_user.';

create or replace function bpm.claim_task(task_id uuid)
returns bpm.user_task
language plpgsql
volatile
security definer
set search_path = ''
set plan_cache_mode = force_generic_plan
as $$
declare
  v_tenant text := bpm_private.require_context(array['bpm_admin', 'bpm_user'], 'claim a task');
  v_user text := bpm_private.current_user_id();
  v_task bpm.user_task;
begin
  if v_user is null then
    raise exception 'bpm.user_id is not set: nobody to claim task % for', task_id using errcode = 'BP002';
  end if;
  v_task := (bpm_private.user_task__lock(v_tenant, task_id, 'claim it')).task;
  if v_task.assignee = v_user then
    return v_task;
  end if;
  if v_task.assignee is not null then
    raise exception 'user task % is already assigned to another user', task_id using errcode = 'BP204';
  end if;
  update bpm.user_task t set assignee = v_user
  where t.tenant_id = v_tenant and t.id = task_id
  returning * into v_task;
  return v_task;
end;
$$;
comment on function bpm.claim_task(uuid) is E'Assigns an open task to the acting user (bpm.user_id). Claiming a task already assigned to oneself is a no-op; assigned to someone else: BP204. Roles: bpm_admin, bpm_user (only tasks offered to them).';

create or replace function bpm.unclaim_task(task_id uuid)
returns bpm.user_task
language plpgsql
volatile
security definer
set search_path = ''
set plan_cache_mode = force_generic_plan
as $$
declare
  v_tenant text := bpm_private.require_context(array['bpm_admin', 'bpm_user'], 'unclaim a task');
  v_task bpm.user_task;
begin
  v_task := (bpm_private.user_task__lock(v_tenant, task_id, 'unclaim it')).task;
  if bpm_private.caller_role() = 'bpm_user' and v_task.assignee is distinct from bpm_private.current_user_id() then
    raise exception 'user task % is not assigned to you', task_id using errcode = 'BP204';
  end if;
  update bpm.user_task t set assignee = null
  where t.tenant_id = v_tenant and t.id = task_id
  returning * into v_task;
  return v_task;
end;
$$;
comment on function bpm.unclaim_task(uuid) is E'Removes the assignee of an open task, offering it to its candidates again. A bpm_user may unclaim only their own task (BP204). Roles: bpm_admin, bpm_user.';

create or replace function bpm.set_assignee(task_id uuid, assignee text)
returns bpm.user_task
language plpgsql
volatile
security definer
set search_path = ''
set plan_cache_mode = force_generic_plan
as $$
declare
  v_tenant text := bpm_private.require_context(array['bpm_admin'], 'set the assignee of a task');
  v_task bpm.user_task;
begin
  perform bpm_private.user_task__lock(v_tenant, task_id, 'reassign it');
  update bpm.user_task t set assignee = nullif(set_assignee.assignee, '')
  where t.tenant_id = v_tenant and t.id = task_id
  returning * into v_task;
  return v_task;
end;
$$;
comment on function bpm.set_assignee(uuid, text) is E'Sets (or with null clears) the assignee of an open task. Roles: bpm_admin.';
--! EndIncluded api/user_tasks.sql
--! Included api/instances.sql
create or replace function bpm_private.instance__cancel(instance bpm.process_instance, reason text)
returns bpm.process_instance
language plpgsql
volatile
set search_path = ''
as $$
declare
  v_child bpm.process_instance;
  v_result bpm.process_instance;
begin
  perform bpm_private.instance__cancel_tokens(instance.tenant_id, instance.id);
  for v_child in
    select * from bpm.process_instance c
    where c.tenant_id = instance.tenant_id and c.parent_instance_id = instance.id and c.state in ('active', 'suspended')
    order by c.id
    for update
  loop
    perform bpm_private.instance__cancel(v_child, reason);
  end loop;
  update bpm.process_instance i
  set state = 'cancelled', ended_at = pg_catalog.now(), end_reason = reason
  where i.tenant_id = instance.tenant_id and i.id = instance.id
  returning * into v_result;
  return v_result;
end;
$$;
comment on function bpm_private.instance__cancel(bpm.process_instance, text) is E'Cancels a locked instance, its tasks and its called child instances.';

create or replace function bpm.cancel_process_instance(instance_id uuid, reason text default null)
returns bpm.process_instance
language plpgsql
volatile
security definer
set search_path = ''
set plan_cache_mode = force_generic_plan
as $$
declare
  v_tenant text := bpm_private.require_context(array['bpm_admin'], 'cancel a process instance');
  v_instance bpm.process_instance := bpm_private.instance__lock(v_tenant, instance_id);
begin
  if v_instance.state not in ('active', 'suspended') then
    raise exception 'process instance % is % and cannot be cancelled', instance_id, v_instance.state using errcode = 'BP201';
  end if;
  return bpm_private.instance__cancel(v_instance, reason);
end;
$$;
comment on function bpm.cancel_process_instance(uuid, text) is E'Cancels an active or suspended instance: open user and external tasks become cancelled, timers are removed, called child instances are cancelled too. BP201 if it has already ended. Roles: bpm_admin.';

create or replace function bpm_private.instance__set_suspended(instance_id uuid, suspended boolean)
returns bpm.process_instance
language plpgsql
volatile
set search_path = ''
as $$
declare
  v_tenant text := bpm_private.require_context(array['bpm_admin'],
    case when suspended then 'suspend a process instance' else 'activate a process instance' end);
  v_instance bpm.process_instance := bpm_private.instance__lock(v_tenant, instance_id);
begin
  if v_instance.state not in ('active', 'suspended') then
    raise exception 'process instance % is % and cannot be %', instance_id, v_instance.state,
      case when suspended then 'suspended' else 'activated' end using errcode = 'BP201';
  end if;
  if (v_instance.state = 'suspended') = suspended then
    return v_instance;
  end if;
  update bpm.process_instance i
  set state = case when suspended then 'suspended' else 'active' end
  where i.tenant_id = v_tenant and i.id = instance_id
  returning * into v_instance;
  return v_instance;
end;
$$;
comment on function bpm_private.instance__set_suspended(uuid, boolean) is E'Suspends or activates an instance (idempotent).';

create or replace function bpm.suspend_process_instance(instance_id uuid)
returns bpm.process_instance
language plpgsql
volatile
security definer
set search_path = ''
set plan_cache_mode = force_generic_plan
as $$
begin
  return bpm_private.instance__set_suspended(instance_id, true);
end;
$$;
comment on function bpm.suspend_process_instance(uuid) is E'Suspends an active instance: task completion, message delivery and external-task fetch/complete are rejected (BP202) and its timers wait until it is activated. Suspending a suspended instance is a no-op; an ended one raises BP201. Roles: bpm_admin.';

create or replace function bpm.activate_process_instance(instance_id uuid)
returns bpm.process_instance
language plpgsql
volatile
security definer
set search_path = ''
set plan_cache_mode = force_generic_plan
as $$
begin
  return bpm_private.instance__set_suspended(instance_id, false);
end;
$$;
comment on function bpm.activate_process_instance(uuid) is E'Activates a suspended instance (no-op when active; BP201 when ended). Roles: bpm_admin.';

create or replace function bpm.set_variables(instance_id uuid, variables jsonb)
returns bpm.process_instance
language plpgsql
volatile
security definer
set search_path = ''
set plan_cache_mode = force_generic_plan
as $$
declare
  v_tenant text := bpm_private.require_context(array['bpm_admin'], 'set variables');
  v_variables jsonb := bpm_private.require_object(variables, 'variables');
  v_instance bpm.process_instance := bpm_private.instance__lock(v_tenant, instance_id);
begin
  if v_instance.state not in ('active', 'suspended') then
    raise exception 'process instance % is % and its variables cannot change', instance_id, v_instance.state using errcode = 'BP201';
  end if;
  update bpm.process_instance i set variables = i.variables || v_variables
  where i.tenant_id = v_tenant and i.id = instance_id
  returning * into v_instance;
  return v_instance;
end;
$$;
comment on function bpm.set_variables(uuid, jsonb) is E'Merges variables into an instance per top-level key (a null value is stored as JSON null). BP201 when the instance has ended. Roles: bpm_admin.';
--! EndIncluded api/instances.sql
--! Included api/external_tasks.sql
create or replace function bpm.fetch_and_lock(topic text, worker_id text, max_tasks int default 1, lock_duration interval default '5 minutes')
returns setof bpm.external_task
language plpgsql
volatile
security definer
set search_path = ''
set plan_cache_mode = force_generic_plan
as $$
declare
  v_tenant text := bpm_private.require_context(array['bpm_admin', 'bpm_engine'], 'fetch external tasks');
begin
  if coalesce(worker_id, '') = '' then
    raise exception 'invalid argument: worker_id is required' using errcode = 'BP401';
  end if;
  if max_tasks is null or max_tasks < 1 or max_tasks > 1000 then
    raise exception 'invalid argument: max_tasks must be between 1 and 1000, got %', max_tasks using errcode = 'BP401';
  end if;
  if lock_duration is null or lock_duration <= interval '0' then
    raise exception 'invalid argument: lock_duration must be positive' using errcode = 'BP401';
  end if;
  -- oldest available first (picked and returned in that order); tasks locked
  -- by a concurrent fetch are skipped
  return query
  with picked as (
    select e.id, e.instance_id
    from bpm.external_task e
    where e.tenant_id = v_tenant and e.topic = fetch_and_lock.topic and e.state = 'open'
      and e.available_at <= pg_catalog.now()
      and (e.retries is null or e.retries > 0)
      and (e.locked_until is null or e.locked_until < pg_catalog.now())
      and exists (select 1 from bpm.process_instance i where i.tenant_id = v_tenant and i.id = e.instance_id and i.state = 'active')
    order by e.available_at, e.created_at
    limit max_tasks
    for update of e skip locked
  ), locked as (
    update bpm.external_task e
    set worker_id = fetch_and_lock.worker_id,
      locked_until = pg_catalog.now() + lock_duration,
      variables = (select i.variables from bpm.process_instance i where i.tenant_id = v_tenant and i.id = p.instance_id)
    from picked p
    where e.tenant_id = v_tenant and e.id = p.id
    returning e.*
  )
  select l.* from locked l order by l.available_at, l.created_at, l.id;
end;
$$;
comment on function bpm.fetch_and_lock(text, text, int, interval) is E'Locks up to max_tasks open external tasks of a topic in the caller''s tenant for a worker (oldest first, FOR UPDATE SKIP LOCKED so concurrent workers never get the same task) and returns them with the instance variables. Skips suspended instances, tasks in back-off and tasks with an open incident. Roles: bpm_admin, bpm_engine.';

-- Locks the external task's instance and checks the task is open and locked
-- by this worker. Raises BP104, BP203, BP205, and (when must_be_active) BP202/BP201.
create or replace function bpm_private.external_task__lock(tenant_id text, task_id uuid, worker_id text, action text, out task bpm.external_task, out instance bpm.process_instance)
language plpgsql
volatile
set search_path = ''
as $$
begin
  select * into instance from bpm.process_instance i
  where i.tenant_id = external_task__lock.tenant_id
    and i.id = (select e.instance_id from bpm.external_task e where e.tenant_id = external_task__lock.tenant_id and e.id = task_id)
  for update;
  if not found then
    raise exception 'external task % not found', task_id using errcode = 'BP104';
  end if;
  -- read after the lock: sees what a concurrent call on the instance committed
  select * into task from bpm.external_task e where e.tenant_id = external_task__lock.tenant_id and e.id = task_id;
  if task.state <> 'open' then
    raise exception 'external task % is % and cannot %', task_id, task.state, action using errcode = 'BP203';
  end if;
  if task.worker_id is distinct from external_task__lock.worker_id then
    raise exception 'external task % is not locked by worker % (locked by %)', task_id, worker_id, coalesce(task.worker_id, 'nobody')
      using errcode = 'BP205';
  end if;
end;
$$;
comment on function bpm_private.external_task__lock(text, uuid, text, text) is E'Locks the instance and checks an external task is open and held by the worker.';

create or replace function bpm.complete_external_task(task_id uuid, worker_id text, variables jsonb default '{}')
returns bpm.external_task
language plpgsql
volatile
security definer
set search_path = ''
set plan_cache_mode = force_generic_plan
as $$
declare
  v_tenant text := bpm_private.require_context(array['bpm_admin', 'bpm_engine'], 'complete an external task');
  v_variables jsonb := bpm_private.require_object(variables, 'variables');
  v_task bpm.external_task;
  v_instance bpm.process_instance;
  v_locked record;
begin
  -- ===== LOCK the instance (loading its graph), then close the task if every rule holds
  select i as instance, d.graph, d.inclusive_joins into v_locked
  from bpm.process_instance i
  join bpm.process_definition d on d.tenant_id = i.tenant_id and d.id = i.definition_id
  where i.tenant_id = v_tenant
    and i.id = (select e.instance_id from bpm.external_task e where e.tenant_id = v_tenant and e.id = task_id)
  for update of i;
  v_instance := v_locked.instance;
  update bpm.external_task e
  set state = 'completed', ended_at = pg_catalog.now(), locked_until = null
  where e.tenant_id = v_tenant and e.id = task_id and e.state = 'open' and e.worker_id = complete_external_task.worker_id
    and v_instance.state = 'active'
  returning * into v_task;
  if not found then
    -- ===== GUARD: say precisely why (BP104, BP203, BP205, BP202/BP201)
    perform bpm_private.external_task__lock(v_tenant, task_id, worker_id, 'complete it');
    perform bpm_private.instance__require_active(v_instance, 'complete external task ' || task_id);
  end if;
  -- ===== LEAVE the task
  perform bpm_private.token__move(v_instance, v_locked.graph, v_locked.inclusive_joins, v_task.id, v_task.element_id, null, v_variables);
  return v_task;
end;
$$;
comment on function bpm.complete_external_task(uuid, text, jsonb) is E'Completes an external task locked by worker_id and continues the instance; variables merge into the instance. Errors: BP104 not found, BP203 not open, BP205 not locked by this worker, BP202 instance suspended. Roles: bpm_admin, bpm_engine.';

create or replace function bpm.fail_external_task(task_id uuid, worker_id text, error_message text, retries int, retry_after interval default '0')
returns bpm.external_task
language plpgsql
volatile
security definer
set search_path = ''
set plan_cache_mode = force_generic_plan
as $$
declare
  v_tenant text := bpm_private.require_context(array['bpm_admin', 'bpm_engine'], 'fail an external task');
  v_task bpm.external_task;
begin
  if retries is null or retries < 0 then
    raise exception 'invalid argument: retries must be 0 or more, got %', retries using errcode = 'BP401';
  end if;
  if retry_after is null or retry_after < interval '0' then
    raise exception 'invalid argument: retry_after must not be negative' using errcode = 'BP401';
  end if;
  v_task := (bpm_private.external_task__lock(v_tenant, task_id, worker_id, 'fail it')).task;
  update bpm.external_task e
  set retries = fail_external_task.retries, error_message = fail_external_task.error_message,
    worker_id = null, locked_until = null, available_at = pg_catalog.now() + retry_after
  where e.tenant_id = v_tenant and e.id = task_id
  returning * into v_task;
  if retries = 0 then
    insert into bpm.incident (tenant_id, instance_id, element_id, incident_type, message, external_task_id)
    values (v_tenant, v_task.instance_id, v_task.element_id, 'failedExternalTask', error_message, v_task.id);
  end if;
  return v_task;
end;
$$;
comment on function bpm.fail_external_task(uuid, text, text, int, interval) is E'Reports a failure of an external task locked by worker_id. retries = how many retries remain; the task is fetchable again after retry_after. With 0 retries an incident failedExternalTask is raised. Roles: bpm_admin, bpm_engine.';

create or replace function bpm.throw_bpmn_error(task_id uuid, worker_id text, error_code text, variables jsonb default '{}')
returns bpm.external_task
language plpgsql
volatile
security definer
set search_path = ''
set plan_cache_mode = force_generic_plan
as $$
declare
  v_tenant text := bpm_private.require_context(array['bpm_admin', 'bpm_engine'], 'throw a BPMN error');
  v_variables jsonb := bpm_private.require_object(variables, 'variables');
  v_task bpm.external_task;
  v_instance bpm.process_instance;
  v_boundary text;
  v_graph jsonb;
  v_joins text[];
  v_locked record;
  v_message text := 'BPMN error ' || coalesce(error_code, '(no code)');
begin
  v_locked := bpm_private.external_task__lock(v_tenant, task_id, worker_id, 'throw an error from it');
  v_task := v_locked.task;
  v_instance := v_locked.instance;
  perform bpm_private.instance__require_active(v_instance, 'throw a BPMN error from external task ' || task_id);
  select d.graph, d.inclusive_joins into v_graph, v_joins from bpm.process_definition d
  where d.tenant_id = v_tenant and d.id = v_instance.definition_id;
  v_boundary := bpm_private.error_boundary__find(v_graph, v_task.element_id, error_code);
  if v_boundary is null then
    update bpm.external_task e
    set retries = 0, error_message = v_message || ' is not caught', worker_id = null, locked_until = null
    where e.tenant_id = v_tenant and e.id = task_id
    returning * into v_task;
    insert into bpm.incident (tenant_id, instance_id, element_id, incident_type, message, external_task_id)
    values (v_tenant, v_task.instance_id, v_task.element_id, 'unhandledBpmnError',
      v_message || ' thrown by element ' || v_task.element_id || ' is not caught by any error boundary event', v_task.id);
    return v_task;
  end if;
  update bpm.external_task e
  set state = 'cancelled', ended_at = pg_catalog.now(), locked_until = null, error_message = v_message
  where e.tenant_id = v_tenant and e.id = task_id
  returning * into v_task;
  perform bpm_private.token__move(v_instance, v_graph, v_joins, v_task.id, v_task.element_id, v_boundary, v_variables);
  return v_task;
end;
$$;
comment on function bpm.throw_bpmn_error(uuid, text, text, jsonb) is E'Reports a business error for an external task locked by worker_id: the matching error boundary event (by code, else a catch-all) interrupts the task and its path is taken; variables merge into the instance. No matching boundary: incident unhandledBpmnError (retry_incident makes the task available again). Roles: bpm_admin, bpm_engine.';

create or replace function bpm.retry_incident(incident_id uuid, retries int default 1)
returns bpm.incident
language plpgsql
volatile
security definer
set search_path = ''
set plan_cache_mode = force_generic_plan
as $$
declare
  v_tenant text := bpm_private.require_context(array['bpm_admin', 'bpm_engine'], 'retry an incident');
  v_incident bpm.incident;
  v_instance_id uuid;
begin
  if retries is null or retries < 1 then
    raise exception 'invalid argument: retries must be at least 1, got %', retries using errcode = 'BP401';
  end if;
  select i.instance_id into v_instance_id from bpm.incident i where i.tenant_id = v_tenant and i.id = incident_id;
  if not found then
    raise exception 'incident % not found', incident_id using errcode = 'BP105';
  end if;
  perform bpm_private.instance__lock(v_tenant, v_instance_id);
  select * into v_incident from bpm.incident i where i.tenant_id = v_tenant and i.id = incident_id;
  if v_incident.resolved_at is not null then
    raise exception 'incident % is already resolved', incident_id using errcode = 'BP206';
  end if;
  update bpm.external_task e
  set retries = retry_incident.retries, available_at = pg_catalog.now()
  where e.tenant_id = v_tenant and e.id = v_incident.external_task_id and e.state = 'open';
  update bpm.incident i set resolved_at = pg_catalog.now()
  where i.tenant_id = v_tenant and i.id = incident_id
  returning * into v_incident;
  return v_incident;
end;
$$;
comment on function bpm.retry_incident(uuid, int) is E'Resolves an open incident and makes its work available again with the given retries. Errors: BP105 not found, BP206 already resolved. Roles: bpm_admin, bpm_engine.';
--! EndIncluded api/external_tasks.sql
--! Included setup/policies.sql
-- Row-level security: enabled and FORCED on every table (so bpm_owner, which
-- runs the security definer API functions, is filtered too). The tenant is
-- read once per statement through (select …) and fails closed: an unset or
-- empty bpm.tenant_id matches no row.
do $$
declare
  v_table regclass;
begin
  foreach v_table in array array[
    'bpm.deployment', 'bpm.process_definition', 'bpm.process_instance', 'bpm.user_task',
    'bpm.external_task', 'bpm.incident', 'bpm.activity_instance', 'bpm_private.token'
  ]::regclass[] loop
    execute pg_catalog.format('alter table %s enable row level security', v_table);
    execute pg_catalog.format('alter table %s force row level security', v_table);
    execute pg_catalog.format('drop policy if exists tenant_isolation on %s', v_table);
    execute pg_catalog.format(
      'create policy tenant_isolation on %s to bpm_owner, bpm_admin, bpm_designer, bpm_engine '
      'using (tenant_id = (select nullif(pg_catalog.current_setting(''bpm.tenant_id'', true), ''''))) '
      'with check (tenant_id = (select nullif(pg_catalog.current_setting(''bpm.tenant_id'', true), '''')))',
      v_table);
  end loop;
end;
$$;

-- bpm_user: definitions of its tenant; only the tasks offered to it; only the
-- instances it started or holds a task of.
drop policy if exists user_reads_definitions on bpm.process_definition;
create policy user_reads_definitions on bpm.process_definition for select to bpm_user
  using (tenant_id = (select nullif(pg_catalog.current_setting('bpm.tenant_id', true), '')));

drop policy if exists user_reads_offered_tasks on bpm.user_task;
create policy user_reads_offered_tasks on bpm.user_task for select to bpm_user
  using (
    tenant_id = (select nullif(pg_catalog.current_setting('bpm.tenant_id', true), ''))
    and (
      assignee = (select nullif(pg_catalog.current_setting('bpm.user_id', true), ''))
      or (assignee is null and (
        candidate_users @> array[(select nullif(pg_catalog.current_setting('bpm.user_id', true), ''))]
        or candidate_groups && (select pg_catalog.string_to_array(nullif(pg_catalog.current_setting('bpm.groups', true), ''), ','))
      ))
    )
  );

drop policy if exists user_reads_own_instances on bpm.process_instance;
create policy user_reads_own_instances on bpm.process_instance for select to bpm_user
  using (
    tenant_id = (select nullif(pg_catalog.current_setting('bpm.tenant_id', true), ''))
    and (
      started_by = (select nullif(pg_catalog.current_setting('bpm.user_id', true), ''))
      or exists (select 1 from bpm.user_task t where t.tenant_id = process_instance.tenant_id and t.instance_id = process_instance.id)
    )
  );

-- Reads: API roles read the contract's tables (under the policies above).
-- Writes: never granted; state changes only through the API functions.
grant select on bpm.deployment, bpm.process_definition, bpm.process_instance, bpm.user_task,
  bpm.external_task, bpm.incident, bpm.activity_instance to bpm_admin, bpm_designer, bpm_engine;
grant select on bpm.process_definition, bpm.process_instance, bpm.user_task to bpm_user;
--! EndIncluded setup/policies.sql
--! Included setup/grants.sql
-- Execute grants: each API function to exactly the roles its guard admits
-- (the guard still checks; the grant keeps others from reaching it at all).
revoke execute on all functions in schema bpm from public;
revoke execute on all functions in schema bpm_private from public;
grant execute on function bpm.deploy(jsonb) to bpm_admin, bpm_designer;
grant execute on function bpm.start_process(text, jsonb, text) to bpm_admin, bpm_user;
grant execute on function bpm.complete_task(uuid, jsonb) to bpm_admin, bpm_user;
grant execute on function bpm.claim_task(uuid) to bpm_admin, bpm_user;
grant execute on function bpm.unclaim_task(uuid) to bpm_admin, bpm_user;
grant execute on function bpm.set_assignee(uuid, text) to bpm_admin;
grant execute on function bpm.cancel_process_instance(uuid, text) to bpm_admin;
grant execute on function bpm.suspend_process_instance(uuid) to bpm_admin;
grant execute on function bpm.activate_process_instance(uuid) to bpm_admin;
grant execute on function bpm.set_variables(uuid, jsonb) to bpm_admin;
grant execute on function bpm.fetch_and_lock(text, text, int, interval) to bpm_admin, bpm_engine;
grant execute on function bpm.complete_external_task(uuid, text, jsonb) to bpm_admin, bpm_engine;
grant execute on function bpm.fail_external_task(uuid, text, text, int, interval) to bpm_admin, bpm_engine;
grant execute on function bpm.throw_bpmn_error(uuid, text, text, jsonb) to bpm_admin, bpm_engine;
grant execute on function bpm.retry_incident(uuid, int) to bpm_admin, bpm_engine;
--! EndIncluded setup/grants.sql
--! Included setup/ownership.sql
-- Hand every object of the engine's schemas to bpm_owner (a NOLOGIN,
-- non-superuser role without BYPASSRLS), so that security definer functions
-- run under forced RLS, and lock execute down to explicit grants.
-- Included at the end of every migration; idempotent.
do $$
declare
  v_obj record;
begin
  execute 'alter schema bpm owner to bpm_owner';
  execute 'alter schema bpm_private owner to bpm_owner';
  for v_obj in
    select c.relname, n.nspname, c.relkind
    from pg_catalog.pg_class c
    join pg_catalog.pg_namespace n on n.oid = c.relnamespace
    where n.nspname in ('bpm', 'bpm_private')
      and c.relkind in ('r', 'v', 'S', 'p', 'm')
      and pg_catalog.pg_get_userbyid(c.relowner) <> 'bpm_owner'
  loop
    execute pg_catalog.format(
      'alter %s %I.%I owner to bpm_owner',
      case v_obj.relkind when 'S' then 'sequence' when 'v' then 'view' when 'm' then 'materialized view' else 'table' end,
      v_obj.nspname, v_obj.relname);
  end loop;
  for v_obj in
    select p.oid::regprocedure as sig
    from pg_catalog.pg_proc p
    join pg_catalog.pg_namespace n on n.oid = p.pronamespace
    where n.nspname in ('bpm', 'bpm_private')
      and pg_catalog.pg_get_userbyid(p.proowner) <> 'bpm_owner'
  loop
    execute pg_catalog.format('alter function %s owner to bpm_owner', v_obj.sig);
  end loop;
  for v_obj in
    select t.oid::regtype as typ, t.typtype
    from pg_catalog.pg_type t
    join pg_catalog.pg_namespace n on n.oid = t.typnamespace
    where n.nspname in ('bpm', 'bpm_private')
      and (t.typtype = 'd' or (t.typtype = 'c'
        and not exists (select 1 from pg_catalog.pg_class c where c.oid = t.typrelid and c.relkind <> 'c')))
      and pg_catalog.pg_get_userbyid(t.typowner) <> 'bpm_owner'
  loop
    execute pg_catalog.format('alter %s %s owner to bpm_owner', case v_obj.typtype when 'd' then 'domain' else 'type' end, v_obj.typ);
  end loop;
end;
$$;
--! EndIncluded setup/ownership.sql
