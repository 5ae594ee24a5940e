--! Previous: sha1:44ac4a182ce99b2d1ce73c8d516847d6ff06f7d8
--! Hash: sha1:41d7eedc3b313518ba3f579283d25a7b59cc73ea
--! Message: Idempotent starts: start_process(request_id) returns the first call's instance on a repeat

-- Idempotent starts: bpm.start_process takes an optional request_id; a
-- repeated call with the same id returns the instance the first one started.
create table if not exists bpm_private.start_request (
  tenant_id text not null,
  request_id text not null,
  instance_id uuid not null,
  created_at timestamptz not null default now(),
  constraint start_request_pkey primary key (tenant_id, request_id),
  constraint start_request_instance_fkey foreign key (tenant_id, instance_id) references bpm.process_instance (tenant_id, id) on delete cascade
);
create index if not exists start_request_instance_idx on bpm_private.start_request (tenant_id, instance_id);
comment on table bpm_private.start_request is E'Request ids of start_process calls and the instances they started (as long as the instance exists): a repeated start with the same id returns that instance.';

drop function if exists bpm.start_process(text, jsonb, text);
--! Included api/start_process.sql
-- request_id: the caller's id for this start. A start whose answer was lost
-- (a connection cut while it committed) can be repeated with the same id: it
-- returns the instance the first call started (as it is now) instead of
-- starting another, for as long as that instance exists. Concurrent calls
-- with one id serialise on an advisory lock of (tenant, id).
create or replace function bpm.start_process(process_key text, variables jsonb default '{}', business_key text default null, request_id text default null)
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
  v_instance bpm.process_instance;
begin
  if request_id is not null then
    v_instance := bpm_private.start_request__find(v_tenant, request_id, process_key);
    if v_instance.id is not null then
      return v_instance;
    end if;
  end if;
  select * into v_definition from bpm.process_definition d
  where d.tenant_id = v_tenant and d.key = process_key
  order by d.version desc limit 1;
  if not found then
    raise exception 'process definition with key % not found', process_key using errcode = 'BP101';
  end if;
  v_instance := bpm_private.instance__start(v_definition, null, v_variables, business_key, null, null);
  if request_id is not null then
    insert into bpm_private.start_request (tenant_id, request_id, instance_id) values (v_tenant, start_process.request_id, v_instance.id);
  end if;
  return v_instance;
end;
$$;
comment on function bpm.start_process(text, jsonb, text, text) is E'Starts an instance of the latest version of a process key and runs it until every token waits. With a request_id, a repeated call (a retry whose first answer was lost) returns the instance the first call started, as it is now, instead of starting another. Raises BP101 when the key is unknown in the tenant, BP308 when the process has no none start event (it starts by message, signal or timer), BP208 when the request_id started an instance of another process, BP401 for an empty or over-long request_id. Roles: bpm_admin, bpm_user.';

-- The instance a request id started (locking the id for this transaction),
-- or an empty row; BP208 if it started another process.
create or replace function bpm_private.start_request__find(tenant_id text, request_id text, process_key text)
returns bpm.process_instance
language plpgsql
volatile
set search_path = ''
as $$
declare
  v_found record;
begin
  if request_id = '' or pg_catalog.length(request_id) > 200 then
    raise exception 'invalid argument: request_id must be 1 to 200 characters' using errcode = 'BP401';
  end if;
  perform pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtextextended(tenant_id || '/start/' || request_id, 0));
  select i as instance, d.key into v_found
  from bpm_private.start_request r
  join bpm.process_instance i on i.tenant_id = r.tenant_id and i.id = r.instance_id
  join bpm.process_definition d on d.tenant_id = i.tenant_id and d.id = i.definition_id
  where r.tenant_id = start_request__find.tenant_id and r.request_id = start_request__find.request_id;
  if not found then
    return null;
  end if;
  if v_found.key is distinct from process_key then
    raise exception 'request id % already started instance % of process %, not of %', request_id, (v_found.instance).id, v_found.key, process_key
      using errcode = 'BP208';
  end if;
  return v_found.instance;
end;
$$;
comment on function bpm_private.start_request__find(text, text, text) is E'The instance a start request id started (after taking the id''s transaction lock), or an empty row; BP208 when it started another process.';
--! EndIncluded api/start_process.sql
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
    'bpm.external_task', 'bpm.incident', 'bpm.activity_instance', 'bpm.event', 'bpm.event_subscription',
    'bpm.message_buffer', 'bpm_private.token', 'bpm_private.event_listener', 'bpm_private.message_receipt',
    'bpm_private.task_listener', 'bpm_private.start_request'
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

drop policy if exists user_reads_events_of_own_instances on bpm.event;
create policy user_reads_events_of_own_instances on bpm.event for select to bpm_user
  using (
    tenant_id = (select nullif(pg_catalog.current_setting('bpm.tenant_id', true), ''))
    and exists (select 1 from bpm.process_instance i where i.tenant_id = event.tenant_id and i.id = event.instance_id)
  );

-- Reads: API roles read the contract's tables (under the policies above).
-- Writes: never granted; state changes only through the API functions.
grant select on bpm.deployment, bpm.process_definition, bpm.process_instance, bpm.user_task,
  bpm.external_task, bpm.incident, bpm.activity_instance, bpm.event, bpm.event_subscription, bpm.message_buffer
  to bpm_admin, bpm_designer, bpm_engine;
grant select on bpm.process_definition, bpm.process_instance, bpm.user_task, bpm.event to bpm_user;
--! EndIncluded setup/policies.sql
--! Included setup/grants.sql
-- Execute grants: each API function to exactly the roles its guard admits
-- (the guard still checks; the grant keeps others from reaching it at all).
revoke execute on all functions in schema bpm from public;
revoke execute on all functions in schema bpm_private from public;
grant execute on function bpm.deploy(jsonb) to bpm_admin, bpm_designer;
grant execute on function bpm.start_process(text, jsonb, text, text) to bpm_admin, bpm_user;
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
grant execute on function bpm.register_task_listener(text, interval) to bpm_admin, bpm_engine;
grant execute on function bpm.throw_bpmn_error(uuid, text, text, jsonb) to bpm_admin, bpm_engine;
grant execute on function bpm.retry_incident(uuid, int) to bpm_admin, bpm_engine;
grant execute on function bpm.events_after(bigint, uuid, int) to bpm_admin, bpm_designer, bpm_user, bpm_engine;
grant execute on function bpm.register_event_listener(text, interval) to bpm_admin, bpm_designer, bpm_user, bpm_engine;
grant execute on function bpm.correlate_message(text, text, jsonb, interval, text) to bpm_admin, bpm_user, bpm_engine;
grant execute on function bpm.broadcast_signal(text, jsonb) to bpm_admin, bpm_user, bpm_engine;
grant execute on function bpm.fire_timer(uuid) to bpm_admin, bpm_engine;
grant execute on function bpm.fire_due_timers(uuid, int) to bpm_admin, bpm_engine;
grant execute on function bpm.continue_async(uuid, boolean) to bpm_admin, bpm_engine;
grant execute on function bpm.process_task_deadline(uuid, text) to bpm_admin, bpm_engine;
grant execute on function bpm.migrate_process_instances(uuid[], uuid, jsonb) to bpm_admin;
grant execute on function bpm.modify_process_instance(uuid, jsonb) to bpm_admin;
grant execute on function bpm.cleanup_history(int, interval, interval, int) to bpm_admin, bpm_engine;
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
