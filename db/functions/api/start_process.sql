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
  -- (inline first: most processes have no candidate starters)
  if pg_catalog.cardinality(v_definition.candidate_starter_users) > 0 or pg_catalog.cardinality(v_definition.candidate_starter_groups) > 0 then
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
-- (by user id or a group); other roles start any.
create or replace function bpm_private.definition__may_start(definition bpm.process_definition)
returns boolean
language plpgsql
stable
set search_path = ''
as $$
begin
  return (pg_catalog.cardinality(definition.candidate_starter_users) = 0 and pg_catalog.cardinality(definition.candidate_starter_groups) = 0)
    or bpm_private.caller_role() <> 'bpm_user'
    or bpm_private.current_user_id() = any(definition.candidate_starter_users)
    or definition.candidate_starter_groups && bpm_private.current_groups();
end;
$$;
comment on function bpm_private.definition__may_start(bpm.process_definition) is E'Whether the caller may start the definition: it has no candidate starters, the caller is not a bpm_user, or the user is one of them (by id or group).';

-- BP002 naming the definition's candidate starters unless the caller may start it.
create or replace function bpm_private.definition__require_starter(definition bpm.process_definition)
returns void
language plpgsql
stable
set search_path = ''
as $$
declare
  v_user text := bpm_private.current_user_id();
begin
  if bpm_private.definition__may_start(definition) then
    return;
  end if;
  raise exception 'user % may not start process %: its candidate starters are users {%} and groups {%}', coalesce(v_user, '(none)'), definition.key,
    pg_catalog.array_to_string(definition.candidate_starter_users, ', '), pg_catalog.array_to_string(definition.candidate_starter_groups, ', ')
    using errcode = 'BP002';
end;
$$;
comment on function bpm_private.definition__require_starter(bpm.process_definition) is E'Raises BP002 unless the caller may start the definition (definition__may_start).';

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
