--! Previous: sha1:0a20080715bbbc02423ce7f521cb5bb9c8af7f9d
--! Hash: sha1:bd9e6ca64ecd9f7b1f6cc5fe44a080d064226ee9
--! Message: Candidate starters: camunda:candidateStarterUsers / Groups on process_definition; a bpm_user outside them may not start the process

-- Candidate starters (camunda:candidateStarterUsers / candidateStarterGroups):
-- who may start a process; a bpm_user outside them may not.
alter table bpm.process_definition add column candidate_starter_users text[] not null default '{}';
alter table bpm.process_definition add column candidate_starter_groups text[] not null default '{}';
comment on column bpm.process_definition.candidate_starter_users is E'camunda:candidateStarterUsers: users who may start the process. When this or candidate_starter_groups is non-empty, a bpm_user who is in neither may not (BP002); bpm_admin always may. Empty: anyone.';
comment on column bpm.process_definition.candidate_starter_groups is E'camunda:candidateStarterGroups: groups whose members may start the process (see candidate_starter_users).';

--! Included api/deploy.sql
-- resources: the compiler's CompiledResource[] (compiler/graph.ts):
-- [{name, hash, xml, processes: [{key, name, versionTag, historyTimeToLive?, startForm?, forms?,
--   candidateStarterUsers?, candidateStarterGroups?, graph}]}].
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
      insert into bpm.process_definition (tenant_id, key, version, name, version_tag, deployment_id, resource_hash, start_form, forms,
        candidate_starter_users, candidate_starter_groups, graph, inclusive_joins, history_ttl)
      values (v_tenant, v_process ->> 'key', coalesce(v_latest.version, 0) + 1, v_process ->> 'name', v_process ->> 'versionTag',
        v_deployment, v_resource ->> 'hash', v_process -> 'startForm', v_process -> 'forms',
        array(select pg_catalog.jsonb_array_elements_text(case when pg_catalog.jsonb_typeof(v_process -> 'candidateStarterUsers') = 'array' then v_process -> 'candidateStarterUsers' else '[]' end)),
        array(select pg_catalog.jsonb_array_elements_text(case when pg_catalog.jsonb_typeof(v_process -> 'candidateStarterGroups') = 'array' then v_process -> 'candidateStarterGroups' else '[]' end)),
        v_process -> 'graph',
        array(select n.key from pg_catalog.jsonb_each(v_process -> 'graph' -> 'nodes') n
              where n.value ->> 'type' = 'inclusiveGateway' and pg_catalog.jsonb_array_length(n.value -> 'in') > 1 order by n.key),
        bpm_private.history_ttl__parse(v_process ->> 'historyTimeToLive'))
      returning * into v_definition;
      perform bpm_private.event__emit(v_tenant, null, array['definitionDeployed'], array[v_definition.id], array[null]);
      perform bpm_private.definition__subscribe(v_definition);
      v_latest := null;
      return next v_definition;
    end loop;
  end loop;
  -- the tenant's history cleanup runs from now on (history.sql)
  perform bpm_private.history_cleanup__schedule(v_tenant, interval '1 minute', false);
end;
$$;
comment on function bpm.deploy(jsonb) is E'Deploys compiled BPMN resources (the message, signal and timer start events of a new version replace those of the previous one) (as produced by the pgbpm compiler; use `pgbpm deploy` or the deployProcess mutation rather than calling this directly) in one transaction. A process whose file is byte-identical to the latest version of its key is not deployed again: that definition is returned. Roles: bpm_admin, bpm_designer.';

-- The message, signal and timer start events of a newly deployed version
-- replace those of the key's earlier versions (their timer jobs go too).
create or replace function bpm_private.definition__subscribe(definition bpm.process_definition)
returns void
language plpgsql
volatile
set search_path = ''
as $$
declare
  v_timers uuid[];
  v_node jsonb;
  v_spec jsonb;
begin
  with removed as (
    delete from bpm.event_subscription s
    using bpm.process_definition d
    where s.tenant_id = definition.tenant_id and s.instance_id is null
      and d.tenant_id = s.tenant_id and d.id = s.definition_id and d.key = definition.key and d.id <> definition.id
    returning s.id, s.kind
  )
  select coalesce(array_agg(r.id) filter (where r.kind = 'timer'), '{}') into v_timers from removed r;
  if pg_catalog.cardinality(v_timers) > 0 then
    perform bpm_private.timer__dequeue(v_timers);
  end if;
  for v_node in
    select definition.graph -> 'nodes' -> e from pg_catalog.jsonb_array_elements_text(coalesce(definition.graph -> 'eventStarts', '[]')) e
  loop
    v_spec := bpm_private.subscription__spec(v_node, '{}', null);
    continue when v_spec is null;
    insert into bpm.event_subscription (tenant_id, id, kind, name, definition_id, element_id, due_at, cycle, repeats_left)
    values (definition.tenant_id, (v_spec ->> 'id')::uuid, v_spec ->> 'kind', v_spec ->> 'name', definition.id, v_node ->> 'id',
      (v_spec ->> 'due_at')::timestamptz, v_spec ->> 'cycle', (v_spec ->> 'repeats')::int);
    if v_spec ->> 'kind' = 'timer' then
      perform bpm_private.timer__enqueue(definition.tenant_id, (v_spec ->> 'id')::uuid, (v_spec ->> 'due_at')::timestamptz);
    end if;
  end loop;
end;
$$;
comment on function bpm_private.definition__subscribe(bpm.process_definition) is E'Opens the start-event subscriptions of a new definition version, replacing the earlier versions''.';
--! EndIncluded api/deploy.sql
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
  if (pg_catalog.cardinality(v_definition.candidate_starter_users) > 0 or pg_catalog.cardinality(v_definition.candidate_starter_groups) > 0)
     and bpm_private.caller_role() = 'bpm_user' then
    perform bpm_private.definition__require_starter(v_definition);
  end if;
  v_instance := bpm_private.instance__start(v_definition, null, v_variables, business_key, null, null);
  if request_id is not null then
    insert into bpm_private.start_request (tenant_id, request_id, instance_id) values (v_tenant, start_process.request_id, v_instance.id);
  end if;
  return v_instance;
end;
$$;
comment on function bpm.start_process(text, jsonb, text, text) is E'Starts an instance of the latest version of a process key and runs it until every token waits. With a request_id, a repeated call (a retry whose first answer was lost) returns the instance the first call started, as it is now, instead of starting another. Raises BP101 when the key is unknown in the tenant, BP308 when the process has no none start event (it starts by message, signal or timer), BP208 when the request_id started an instance of another process, BP209 when the process has unique business keys (pgbpm:uniqueBusinessKey) and an active or suspended instance of it has this business_key, BP401 for an empty or over-long request_id, BP002 for a bpm_user who is none of the process''s candidate starters (camunda:candidateStarterUsers / candidateStarterGroups, when it has any). Roles: bpm_admin, bpm_user.';

-- A bpm_user starts a process with candidate starters only as one of them
-- (by user id or a group).
create or replace function bpm_private.definition__require_starter(definition bpm.process_definition)
returns void
language plpgsql
stable
set search_path = ''
as $$
declare
  v_user text := bpm_private.current_user_id();
begin
  if v_user = any(definition.candidate_starter_users) or definition.candidate_starter_groups && bpm_private.current_groups() then
    return;
  end if;
  raise exception 'user % may not start process %: its candidate starters are users {%} and groups {%}', coalesce(v_user, '(none)'), definition.key,
    pg_catalog.array_to_string(definition.candidate_starter_users, ', '), pg_catalog.array_to_string(definition.candidate_starter_groups, ', ')
    using errcode = 'BP002';
end;
$$;
comment on function bpm_private.definition__require_starter(bpm.process_definition) is E'Raises BP002 unless the acting user is one of the definition''s candidate starters (by user id or group).';

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
