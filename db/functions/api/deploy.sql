-- resources: the compiler's CompiledResource[] (compiler/graph.ts):
-- [{name, hash, xml, processes: [{key, name, versionTag, historyTimeToLive?, startForm?, forms?,
--   candidateStarterUsers?, candidateStarterGroups?, graph}], decisions?: [{key, name, versionTag, requires, logic}]}].
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
  v_decision_deployments uuid[];
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
    union
    select distinct 'decision/' || (d ->> 'key') from pg_catalog.jsonb_array_elements(resources) r,
    pg_catalog.jsonb_array_elements(case when pg_catalog.jsonb_typeof(r -> 'decisions') = 'array' then r -> 'decisions' end) d
    order by 1) k;
  -- decisions first: a process may bind the version deployed with it (binding deployment)
  v_decision_deployments := array(select bpm_private.decisions__deploy(v_tenant, r)
    from pg_catalog.jsonb_array_elements(resources) with ordinality as x(r, n) order by n);
  for v_resource in select r from pg_catalog.jsonb_array_elements(resources) r loop
    if v_resource ->> 'name' is null or v_resource ->> 'hash' is null or v_resource ->> 'xml' is null
       or pg_catalog.jsonb_typeof(v_resource -> 'processes') is distinct from 'array' then
      raise exception 'invalid deployment: resource % lacks name, hash, xml or processes', coalesce(v_resource ->> 'name', '?') using errcode = 'BP501';
    end if;
    v_deployment := v_decision_deployments[1];
    v_decision_deployments := v_decision_deployments[2:];
    for v_process in select p from pg_catalog.jsonb_array_elements(v_resource -> 'processes') p loop
      if coalesce(v_process ->> 'key', '') = '' then
        raise exception 'invalid deployment: a process of resource % has no key', v_resource ->> 'name' using errcode = 'BP501';
      end if;
      perform bpm_private.graph__validate(v_process ->> 'key', v_process -> 'graph');
      if pg_catalog.jsonb_typeof(coalesce(v_process -> 'startForm', '{}')) <> 'object' or pg_catalog.jsonb_typeof(coalesce(v_process -> 'forms', '{}')) <> 'object' then
        raise exception 'invalid deployment: process % has a startForm or forms that is not a JSON object', v_process ->> 'key' using errcode = 'BP501';
      end if;
      select * into v_latest from bpm.process_definition d
      where d.tenant_id = v_tenant and d.key = v_process ->> 'key'
      order by d.version desc limit 1;
      if found and v_latest.resource_hash = v_resource ->> 'hash' then
        return next v_latest;
        continue;
      end if;
      v_deployment := coalesce(v_deployment, bpm_private.deployment__create(v_tenant, v_resource));
      insert into bpm.process_definition (tenant_id, key, version, name, version_tag, deployment_id, resource_hash, start_form, forms,
        candidate_starter_users, candidate_starter_groups, graph, inclusive_joins, history_ttl)
      values (v_tenant, v_process ->> 'key', coalesce(v_latest.version, 0) + 1, v_process ->> 'name', v_process ->> 'versionTag',
        v_deployment, v_resource ->> 'hash', v_process -> 'startForm', v_process -> 'forms',
        array(select pg_catalog.jsonb_array_elements_text(case when pg_catalog.jsonb_typeof(v_process -> 'candidateStarterUsers') = 'array' then v_process -> 'candidateStarterUsers' else '[]' end)),
        array(select pg_catalog.jsonb_array_elements_text(case when pg_catalog.jsonb_typeof(v_process -> 'candidateStarterGroups') = 'array' then v_process -> 'candidateStarterGroups' else '[]' end)),
        bpm_private.graph__pin_decisions(v_tenant, v_process ->> 'key', v_process -> 'graph'),
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
comment on function bpm.deploy(jsonb) is E'Deploys compiled BPMN and DMN resources (DMN decisions become rows of decision_definition; the message, signal and timer start events of a new version replace those of the previous one) (as produced by the pgbpm compiler; use `pgbpm deploy` or the deployProcess mutation rather than calling this directly) in one transaction. A process whose file is byte-identical to the latest version of its key is not deployed again: that definition is returned. Roles: bpm_admin, bpm_designer.';

-- The deployment row of a resource (its file), made when the first new
-- process or decision version of it is deployed.
create or replace function bpm_private.deployment__create(tenant_id text, resource jsonb)
returns uuid
language plpgsql
volatile
set search_path = ''
as $$
declare
  v_id uuid;
begin
  insert into bpm.deployment (tenant_id, name, resource_hash, xml, deployed_by)
  values (deployment__create.tenant_id, resource ->> 'name', resource ->> 'hash', resource ->> 'xml', bpm_private.current_user_id())
  returning id into v_id;
  return v_id;
end;
$$;
comment on function bpm_private.deployment__create(text, jsonb) is E'Records the deployment of one compiled resource (file) and returns its id.';

-- The decisions of a DMN resource: a new version of each key whose latest
-- version came from another file; returns the deployment it created for
-- them (null when every decision was deployed already, or there are none).
create or replace function bpm_private.decisions__deploy(tenant_id text, resource jsonb)
returns uuid
language plpgsql
volatile
set search_path = ''
as $$
declare
  v_decision jsonb;
  v_latest bpm.decision_definition;
  v_deployment uuid;
begin
  if resource ? 'decisions' and pg_catalog.jsonb_typeof(resource -> 'decisions') <> 'array' then
    raise exception 'invalid deployment: decisions of resource % is not a list', resource ->> 'name' using errcode = 'BP501';
  end if;
  for v_decision in select d from pg_catalog.jsonb_array_elements(coalesce(resource -> 'decisions', '[]')) d loop
    if coalesce(v_decision ->> 'key', '') = '' or v_decision -> 'logic' ->> 'kind' is distinct from 'table' and v_decision -> 'logic' ->> 'kind' is distinct from 'literal' then
      raise exception 'invalid deployment: a decision of resource % has no key or no decision logic', resource ->> 'name' using errcode = 'BP501';
    end if;
    select * into v_latest from bpm.decision_definition d
    where d.tenant_id = decisions__deploy.tenant_id and d.key = v_decision ->> 'key'
    order by d.version desc limit 1;
    continue when found and v_latest.resource_hash = resource ->> 'hash';
    v_deployment := coalesce(v_deployment, bpm_private.deployment__create(decisions__deploy.tenant_id, resource));
    insert into bpm.decision_definition (tenant_id, key, version, name, version_tag, deployment_id, resource_hash, requires, logic)
    values (decisions__deploy.tenant_id, v_decision ->> 'key', coalesce(v_latest.version, 0) + 1, v_decision ->> 'name', v_decision ->> 'versionTag',
      v_deployment, resource ->> 'hash',
      array(select pg_catalog.jsonb_array_elements_text(case when pg_catalog.jsonb_typeof(v_decision -> 'requires') = 'array' then v_decision -> 'requires' else '[]' end)),
      v_decision -> 'logic');
    v_latest := null;
  end loop;
  return v_deployment;
end;
$$;
comment on function bpm_private.decisions__deploy(text, jsonb) is E'Deploys the decisions of one compiled DMN resource (a new version per changed key); returns the deployment it created, if any.';

-- A new process graph with its business rule tasks bound to the deployment
-- (binding deployment) pinned to the version of their decision that is the
-- latest now, after the deployment's decisions were deployed (BP501 when
-- there is none: the compiler requires the DMN file in the same deployment).
create or replace function bpm_private.graph__pin_decisions(tenant_id text, process_key text, graph jsonb)
returns jsonb
language plpgsql
stable
set search_path = ''
as $$
declare
  v_at record;
  v_version int;
begin
  for v_at in
    select n.key as node, l.list, m.i - 1 as i, m.v -> 'value' -> 'decision' as call
    from pg_catalog.jsonb_each(graph -> 'nodes') n
    cross join (values ('inputs'), ('outputs')) l(list)
    cross join lateral pg_catalog.jsonb_array_elements(case when pg_catalog.jsonb_typeof(n.value -> l.list) = 'array' then n.value -> l.list else '[]' end)
      with ordinality as m(v, i)
    where m.v -> 'value' -> 'decision' ->> 'binding' = 'deployment'
  loop
    select d.version into v_version from bpm.decision_definition d
    where d.tenant_id = graph__pin_decisions.tenant_id and d.key = v_at.call ->> 'key'
    order by d.version desc limit 1;
    if not found then
      raise exception 'invalid deployment: element % of process % binds decision % to the deployment, which does not deploy it', v_at.node, process_key, v_at.call ->> 'key'
        using errcode = 'BP501';
    end if;
    graph := pg_catalog.jsonb_set(graph, array['nodes', v_at.node, v_at.list, v_at.i::text, 'value', 'decision'],
      v_at.call || pg_catalog.jsonb_build_object('binding', 'version', 'version', v_version));
  end loop;
  return graph;
end;
$$;
comment on function bpm_private.graph__pin_decisions(text, text, jsonb) is E'Pins the decisions a new process graph binds to its deployment to the version deployed with it.';

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
    insert into bpm.event_subscription (tenant_id, id, kind, name, definition_id, element_id, due_at, cycle, repeats_left, job_priority)
    values (definition.tenant_id, (v_spec ->> 'id')::uuid, v_spec ->> 'kind', v_spec ->> 'name', definition.id, v_node ->> 'id',
      (v_spec ->> 'due_at')::timestamptz, v_spec ->> 'cycle', (v_spec ->> 'repeats')::int, coalesce((v_spec ->> 'priority')::int, 0));
    if v_spec ->> 'kind' = 'timer' then
      perform bpm_private.timer__enqueue(definition.tenant_id, (v_spec ->> 'id')::uuid, (v_spec ->> 'due_at')::timestamptz, coalesce((v_spec ->> 'priority')::int, 0));
    end if;
  end loop;
end;
$$;
comment on function bpm_private.definition__subscribe(bpm.process_definition) is E'Opens the start-event subscriptions of a new definition version, replacing the earlier versions''.';
