--! Previous: sha1:8b4723d49d938bbc262ee19a4a8aca065e0ce34d
--! Hash: sha1:2f9aaa5f375a47164cc1e80d1c05050224b75393
--! Message: DMN decisions

-- DMN decisions: deployed with bpm.deploy, evaluated by business rule tasks
-- (camunda:decisionRef, zeebe:calledDecision) and bpm.evaluate_decision
create table if not exists bpm.decision_definition (
  tenant_id text not null,
  id uuid not null default gen_random_uuid(),
  key text not null,
  version int not null,
  name text,
  version_tag text,
  deployment_id uuid not null,
  resource_hash text not null,
  requires text[] not null default '{}',
  logic jsonb not null,
  deployed_at timestamptz not null default now(),
  constraint decision_definition_pkey primary key (tenant_id, id),
  constraint decision_definition_key_version_key unique (tenant_id, key, version),
  constraint decision_definition_deployment_fkey foreign key (tenant_id, deployment_id)
    references bpm.deployment (tenant_id, id) on delete cascade,
  constraint decision_version_is_positive check (version > 0),
  constraint decision_logic_is_table_or_literal check (logic ->> 'kind' in ('table', 'literal'))
);
create index if not exists decision_definition_deployment_idx on bpm.decision_definition (tenant_id, deployment_id);
comment on table bpm.decision_definition is E'A deployed, immutable version of a DMN decision (a decision table or a literal expression). Deploying a changed DMN file creates version n+1 of each of its decisions.';
comment on column bpm.decision_definition.tenant_id is E'Owning tenant.';
comment on column bpm.decision_definition.id is E'Decision definition id.';
comment on column bpm.decision_definition.key is E'The DMN decision id; business rule tasks and evaluate_decision name it.';
comment on column bpm.decision_definition.version is E'1, 2, … per key and tenant.';
comment on column bpm.decision_definition.name is E'The decision name from the model.';
comment on column bpm.decision_definition.version_tag is E'camunda:versionTag of the decision, if any (binding versionTag).';
comment on column bpm.decision_definition.deployment_id is E'The deployment (DMN file) it came from; its required decisions come from the same one.';
comment on column bpm.decision_definition.resource_hash is E'sha256 of the DMN file; an identical redeploy creates no new version.';
comment on column bpm.decision_definition.requires is E'Keys of the decisions of the same file it requires (their results are inputs it sees).';
comment on column bpm.decision_definition.logic is E'The compiled decision table or literal expression the engine evaluates (see compiler/graph.ts, DecisionLogic).';
comment on column bpm.decision_definition.deployed_at is E'When this version was deployed.';
--! Included elements/decision.sql
-- DMN decisions (compiler/dmn.ts): decision tables and literal expressions,
-- evaluated by business rule tasks (camunda:decisionRef,
-- zeebe:calledDecision) and by bpm.evaluate_decision. A decision's raw
-- result is a list of contexts, one per matched rule (output name → value),
-- as Camunda 7's DmnDecisionResult; decision__shape turns it into the value
-- a task stores.

-- The deployed decision a call names: its key and binding (latest, version,
-- versionTag) in the caller's tenant; BP314 naming the element when none.
create or replace function bpm_private.decision__find(tenant_id text, call jsonb, element_id text)
returns bpm.decision_definition
language plpgsql
stable
set search_path = ''
as $$
declare
  v_def bpm.decision_definition;
begin
  select * into v_def from bpm.decision_definition d
  where d.tenant_id = decision__find.tenant_id and d.key = call ->> 'key'
    and (call ->> 'binding' <> 'version' or d.version = (call ->> 'version')::int)
    and (call ->> 'binding' <> 'versionTag' or d.version_tag = call ->> 'versionTag')
  order by d.version desc
  limit 1;
  if not found then
    raise exception 'decision % (%) of element % is not deployed in this tenant', call ->> 'key',
      case call ->> 'binding' when 'version' then 'version ' || (call ->> 'version') when 'versionTag' then 'version tag ' || (call ->> 'versionTag') else 'latest version' end,
      element_id using errcode = 'BP314';
  end if;
  return v_def;
end;
$$;
comment on function bpm_private.decision__find(text, jsonb, text) is E'The deployed decision a business rule task names (key and binding); BP314 when there is none.';

-- The raw result of a decision: its required decisions (same deployment)
-- are evaluated first and their results added to what it sees, under the
-- required decision's id (the shaped result, as Camunda 8) and under its
-- output names (as Camunda 7): the values of its one result, nulls when no
-- rule matched (with several results, only under its id).
create or replace function bpm_private.decision__evaluate(definition bpm.decision_definition, variables jsonb, label text)
returns jsonb
language plpgsql
stable
set search_path = ''
as $$
declare
  v_vars jsonb := variables;
  v_required bpm.decision_definition;
  v_raw jsonb;
begin
  for v_required in
    select d.* from bpm.decision_definition d
    where d.tenant_id = definition.tenant_id and d.deployment_id = definition.deployment_id and d.key = any(definition.requires)
  loop
    v_raw := bpm_private.decision__evaluate(v_required, variables, label);
    v_vars := v_vars || case pg_catalog.jsonb_array_length(v_raw)
        when 1 then v_raw -> 0
        when 0 then coalesce((select pg_catalog.jsonb_object_agg(o ->> 'name', null) from pg_catalog.jsonb_array_elements(v_required.logic -> 'outputs') o),
          pg_catalog.jsonb_build_object(v_required.logic ->> 'variable', null))
        else '{}' end
      || pg_catalog.jsonb_build_object(v_required.key, bpm_private.decision__shape(v_required.logic, v_raw, 'dmn', label));
  end loop;
  if definition.logic ->> 'kind' = 'literal' then
    return pg_catalog.jsonb_build_array(pg_catalog.jsonb_build_object(definition.logic ->> 'variable',
      coalesce(bpm_private.value__eval(definition.logic -> 'value', v_vars, label), 'null')));
  end if;
  return bpm_private.decision__table(definition.key, definition.logic, v_vars, label);
end;
$$;
comment on function bpm_private.decision__evaluate(bpm.decision_definition, jsonb, text) is E'The raw result of a decision (a list of output contexts), its required decisions evaluated first.';

-- A decision table: the inputs evaluated once, each rule's input entries
-- tested in order ("?" is the input value), the outputs of the matching
-- rules, then the hit policy (BP315 when UNIQUE or ANY is violated).
create or replace function bpm_private.decision__table(key text, logic jsonb, variables jsonb, label text)
returns jsonb
language plpgsql
stable
set search_path = ''
as $$
declare
  v_inputs jsonb := '[]';
  v_matched jsonb := '[]';
  v_rule jsonb;
  v_test jsonb;
  v_ok boolean;
  v_out jsonb;
  v_policy text := logic ->> 'hitPolicy';
begin
  for v_i in 0 .. pg_catalog.jsonb_array_length(logic -> 'inputs') - 1 loop
    v_inputs := v_inputs || pg_catalog.jsonb_build_array(coalesce(bpm_private.value__eval(logic -> 'inputs' -> v_i -> 'value', variables, label), 'null'));
  end loop;
  for v_r in 0 .. pg_catalog.jsonb_array_length(logic -> 'rules') - 1 loop
    v_rule := logic -> 'rules' -> v_r;
    v_ok := true;
    for v_i in 0 .. pg_catalog.jsonb_array_length(v_rule -> 'tests') - 1 loop
      v_test := v_rule -> 'tests' -> v_i;
      continue when v_test = 'null';
      perform bpm_private.expression__require_vars(v_test, variables, label);
      v_ok := bpm_private.feel__eval(v_test -> 'tree', variables,
        pg_catalog.jsonb_build_object('?', v_inputs -> v_i, 'cellInput', v_inputs -> v_i)) is not distinct from 'true';
      exit when not v_ok;
    end loop;
    continue when not v_ok;
    v_out := (select pg_catalog.jsonb_object_agg(o.value ->> 'name',
        coalesce(bpm_private.value__eval(nullif(v_rule -> 'outputs' -> (o.ord::int - 1), 'null'), variables, label), 'null'))
      from pg_catalog.jsonb_array_elements(logic -> 'outputs') with ordinality as o(value, ord));
    v_matched := v_matched || pg_catalog.jsonb_build_array(pg_catalog.jsonb_build_object('rule', v_rule ->> 'id', 'out', v_out));
    exit when v_policy = 'FIRST';
  end loop;
  return bpm_private.decision__hit_policy(key, logic, v_matched);
exception when data_exception then
  raise exception 'decision % of element % cannot be evaluated: %', key, label, sqlerrm using errcode = 'BP303';
end;
$$;
comment on function bpm_private.decision__table(text, jsonb, jsonb, text) is E'Evaluates a decision table: the outputs of its matching rules under its hit policy (BP303 for a data error, BP315 for a violated hit policy).';

-- The hit policy over the matched rules ({rule, out} in rule order): the
-- raw result list.
create or replace function bpm_private.decision__hit_policy(key text, logic jsonb, matched jsonb)
returns jsonb
language plpgsql
immutable
set search_path = ''
as $$
declare
  v_policy text := logic ->> 'hitPolicy';
  v_n int := pg_catalog.jsonb_array_length(matched);
  v_rules text := (select pg_catalog.string_agg(m ->> 'rule', ', ') from pg_catalog.jsonb_array_elements(matched) m);
  v_output text := logic -> 'outputs' -> 0 ->> 'name';
begin
  if v_policy = 'UNIQUE' and v_n > 1 then
    raise exception 'decision % has hit policy UNIQUE, but rules % match', key, v_rules using errcode = 'BP315';
  end if;
  if v_policy = 'ANY' and (select pg_catalog.count(distinct m -> 'out') from pg_catalog.jsonb_array_elements(matched) m) > 1 then
    raise exception 'decision % has hit policy ANY, but the matching rules % have different outputs', key, v_rules using errcode = 'BP315';
  end if;
  if v_policy in ('PRIORITY', 'OUTPUT ORDER') then
    -- by the position of each output's value in its outputValues (values not listed last), then rule order
    matched := (select pg_catalog.jsonb_agg(m.v order by p.key, m.ord)
      from pg_catalog.jsonb_array_elements(matched) with ordinality as m(v, ord)
      cross join lateral (select array(
        select coalesce((select l.ord from pg_catalog.jsonb_array_elements(o.value -> 'values') with ordinality as l(value, ord)
                         where l.value = m.v -> 'out' -> (o.value ->> 'name')), 2147483647)
        from pg_catalog.jsonb_array_elements(logic -> 'outputs') with ordinality as o(value, ord)
        where o.value ? 'values' order by o.ord) as key) p);
  end if;
  if v_policy in ('UNIQUE', 'ANY', 'FIRST', 'PRIORITY') and v_n > 1 then
    matched := pg_catalog.jsonb_build_array(matched -> 0);
  end if;
  if logic ->> 'aggregation' = 'COUNT' then
    return pg_catalog.jsonb_build_array(pg_catalog.jsonb_build_object(v_output,
      (select pg_catalog.count(*) from pg_catalog.jsonb_array_elements(matched) m where m -> 'out' -> v_output <> 'null')));
  elsif logic ->> 'aggregation' is not null then
    return coalesce((select pg_catalog.jsonb_build_array(pg_catalog.jsonb_build_object(v_output,
        case logic ->> 'aggregation' when 'SUM' then pg_catalog.sum((m -> 'out' ->> v_output)::numeric)
          when 'MIN' then pg_catalog.min((m -> 'out' ->> v_output)::numeric) else pg_catalog.max((m -> 'out' ->> v_output)::numeric) end))
      from pg_catalog.jsonb_array_elements(matched) m where m -> 'out' -> v_output <> 'null' having pg_catalog.count(*) > 0), '[]');
  end if;
  return coalesce((select pg_catalog.jsonb_agg(m -> 'out' order by ord) from pg_catalog.jsonb_array_elements(matched) with ordinality as x(m, ord)), '[]');
end;
$$;
comment on function bpm_private.decision__hit_policy(text, jsonb, jsonb) is E'Applies a decision table''s hit policy (and aggregation) to its matched rules: the raw result list; BP315 when UNIQUE or ANY is violated.';

-- A raw result as the value a task stores: Camunda 7's mapDecisionResult
-- (singleEntry, singleResult, collectEntries, resultList; BP315 when the
-- result does not fit), or 'dmn' (Camunda 8): the value of a single output,
-- a context of several, a list for multi-hit tables, null for no match.
create or replace function bpm_private.decision__shape(logic jsonb, raw jsonb, map text, label text)
returns jsonb
language plpgsql
immutable
set search_path = ''
as $$
declare
  v_n int := pg_catalog.jsonb_array_length(raw);
  v_single boolean := logic ->> 'kind' = 'literal' or pg_catalog.jsonb_array_length(logic -> 'outputs') = 1;
  v_each jsonb := (select coalesce(pg_catalog.jsonb_agg(case when v_single then (select e.value from pg_catalog.jsonb_each(r) e limit 1) else r end order by ord), '[]')
    from pg_catalog.jsonb_array_elements(raw) with ordinality as x(r, ord));
begin
  if map = 'resultList' then
    return raw;
  elsif map in ('singleEntry', 'singleResult') and v_n > 1 then
    raise exception '% gives % results; camunda:mapDecisionResult="%" needs at most one', label, v_n, map using errcode = 'BP315';
  elsif map in ('singleEntry', 'collectEntries') and not v_single then
    raise exception '% has several outputs; camunda:mapDecisionResult="%" needs one', label, map using errcode = 'BP315';
  elsif map = 'singleEntry' then
    return v_each -> 0;
  elsif map = 'singleResult' then
    return raw -> 0;
  elsif map = 'collectEntries' then
    return v_each;
  end if;
  -- Camunda 8: single-hit tables, aggregations and literal expressions yield one value (or context)
  if logic ->> 'kind' = 'literal' or logic ->> 'aggregation' is not null or logic ->> 'hitPolicy' in ('UNIQUE', 'ANY', 'FIRST', 'PRIORITY') then
    return v_each -> 0;
  end if;
  return v_each;
end;
$$;
comment on function bpm_private.decision__shape(jsonb, jsonb, text, text) is E'A decision''s raw result as the value a task stores (camunda:mapDecisionResult, or Camunda 8''s shape).';

-- A business rule task's decision (an input/output mapping value, io__map).
create or replace function bpm_private.decision__call(call jsonb, variables jsonb, element_id text)
returns jsonb
language plpgsql
stable
set search_path = ''
as $$
declare
  v_def bpm.decision_definition := bpm_private.decision__find(pg_catalog.current_setting('bpm.tenant_id'), call, element_id);
  v_label text := pg_catalog.format('%s (decision %s)', element_id, v_def.key);
begin
  return bpm_private.decision__shape(v_def.logic, bpm_private.decision__evaluate(v_def, variables, v_label), call ->> 'mapResult', v_label);
end;
$$;
comment on function bpm_private.decision__call(jsonb, jsonb, text) is E'Evaluates the decision a business rule task names over what it sees and returns the value it stores.';

create or replace function bpm.evaluate_decision(decision_key text, variables jsonb default '{}', version int default null)
returns jsonb
language plpgsql
stable
security definer
set search_path = ''
as $$
declare
  v_tenant text := bpm_private.require_context(array['bpm_admin', 'bpm_designer', 'bpm_user', 'bpm_engine'], 'evaluate a decision');
  v_def bpm.decision_definition;
begin
  if pg_catalog.jsonb_typeof(variables) is distinct from 'object' then
    raise exception 'variables must be a JSON object' using errcode = 'BP401';
  end if;
  select * into v_def from bpm.decision_definition d
  where d.tenant_id = v_tenant and d.key = decision_key and (evaluate_decision.version is null or d.version = evaluate_decision.version)
  order by d.version desc limit 1;
  if not found then
    raise exception 'decision % (%) is not deployed in this tenant', decision_key,
      coalesce('version ' || evaluate_decision.version, 'latest version') using errcode = 'BP113';
  end if;
  return bpm_private.decision__shape(v_def.logic, bpm_private.decision__evaluate(v_def, variables, 'decision ' || v_def.key), 'dmn', 'decision ' || v_def.key);
end;
$$;
comment on function bpm.evaluate_decision(text, jsonb, int) is E'Evaluates a deployed DMN decision (the latest version of its key, or the given version) over variables and returns its result as Camunda 8 shapes it: the value of a single output, an object of several, a list for multi-hit tables (COLLECT, RULE ORDER, OUTPUT ORDER), the aggregate of COLLECT with SUM/MIN/MAX/COUNT, null when no rule matches. Changes nothing. Errors: BP113 the decision is not deployed, BP302 an input needs a variable that is not set, BP303 an expression cannot be evaluated, BP315 hit policy UNIQUE or ANY violated, BP401 variables not an object. Roles: bpm_admin, bpm_designer, bpm_user, bpm_engine.';
--! EndIncluded elements/decision.sql
--! Included api/deploy.sql
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
  for v_resource in select r from pg_catalog.jsonb_array_elements(resources) r loop
    if v_resource ->> 'name' is null or v_resource ->> 'hash' is null or v_resource ->> 'xml' is null
       or pg_catalog.jsonb_typeof(v_resource -> 'processes') is distinct from 'array' then
      raise exception 'invalid deployment: resource % lacks name, hash, xml or processes', coalesce(v_resource ->> 'name', '?') using errcode = 'BP501';
    end if;
    v_deployment := bpm_private.decisions__deploy(v_tenant, v_resource);
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
comment on function bpm.deploy(jsonb) is E'Deploys compiled BPMN and DMN resources (DMN decisions become rows of decision_definition; the message, signal and timer start events of a new version replace those of the previous one) (as produced by the pgbpm compiler; use `pgbpm deploy` or the deployProcess mutation rather than calling this directly) in one transaction. A process whose file is byte-identical to the latest version of its key is not deployed again: that definition is returned. Roles: bpm_admin, bpm_designer.';

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
    if v_deployment is null then
      insert into bpm.deployment (tenant_id, name, resource_hash, xml, deployed_by)
      values (decisions__deploy.tenant_id, resource ->> 'name', resource ->> 'hash', resource ->> 'xml', bpm_private.current_user_id())
      returning id into v_deployment;
    end if;
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
--! EndIncluded api/deploy.sql
--! Included engine/scope.sql
-- Scopes: embedded subprocesses, multi-instance bodies and call activities.
-- A scope instance is an activity instance that other activity instances run
-- in (activity_instance.scope_id points to it) and a token of kind scope,
-- body or call whose data holds its locals (scope: {vars}), its loop state
-- (body) or its child instance (call). During a run, scopes the run touches
-- are cached in the run state (l_*: id, parent scope, element, kind, data,
-- state new | stored | dirty | gone) and written back by run__flush.

-- Loads a scope and the scopes around it into the run's cache.
create or replace function bpm_private.scope__load(st bpm_private.run_state, scope_id uuid)
returns bpm_private.run_state
language plpgsql
volatile
set search_path = ''
as $$
declare
  v_scope uuid := scope_id;
  v_row record;
begin
  -- a cached scope's outer scopes are cached too
  while v_scope is not null and pg_catalog.array_position(st.l_id, v_scope) is null loop
    select t.kind, t.data, t.element_id, a.scope_id as parent into v_row
    from bpm_private.token t
    join bpm.activity_instance a on a.tenant_id = t.tenant_id and a.id = t.id
    where t.tenant_id = st.tenant_id and t.id = v_scope;
    if not found then
      raise exception 'scope % of process instance % does not exist any more', v_scope, st.instance_id using errcode = 'BP309';
    end if;
    st.l_id := st.l_id || v_scope;
    st.l_parent := st.l_parent || v_row.parent;
    st.l_el := st.l_el || v_row.element_id;
    st.l_kind := st.l_kind || v_row.kind;
    st.l_data := st.l_data || v_row.data;
    st.l_state := st.l_state || 'stored'::text;
    v_scope := v_row.parent;
  end loop;
  return st;
end;
$$;
comment on function bpm_private.scope__load(bpm_private.run_state, uuid) is E'Caches a scope instance and its enclosing scopes in the run state (BP309 if it is gone).';

-- The variables a token in a scope sees: the instance's, then each
-- enclosing scope's locals (inner ones shadow outer ones). Inside a
-- multi-instance body: nrOfInstances, nrOfActiveInstances,
-- nrOfCompletedInstances and, for its inner instance token_id (or the inner
-- scope on the way), loopCounter (from 0) and the element variable.
create or replace function bpm_private.scope__variables(st bpm_private.run_state, scope_id uuid, token_id uuid)
returns jsonb
language plpgsql
stable
set search_path = ''
as $$
declare
  v_vars jsonb := '{}';
  v_scope uuid := scope_id;
  v_child uuid := token_id;
  v_pos int;
  v_data jsonb;
  v_local jsonb;
  v_k int;
begin
  while v_scope is not null loop
    v_pos := pg_catalog.array_position(st.l_id, v_scope);
    v_data := st.l_data[v_pos];
    if st.l_kind[v_pos] = 'scope' then
      v_vars := coalesce(v_data -> 'vars', '{}') || v_vars;
    elsif st.l_kind[v_pos] = 'body' then
      v_local := pg_catalog.jsonb_build_object('nrOfInstances', v_data -> 'n', 'nrOfActiveInstances', v_data -> 'active',
        'nrOfCompletedInstances', v_data -> 'completed');
      if v_child is not null and v_data -> 'inner' ? v_child::text then
        v_k := (v_data -> 'inner' ->> v_child::text)::int;
        v_local := v_local || pg_catalog.jsonb_build_object('loopCounter', v_k);
        if v_data ->> 'el' is not null then
          v_local := v_local || pg_catalog.jsonb_build_object(v_data ->> 'el', coalesce(v_data -> 'items' -> v_k, 'null'::jsonb));
        end if;
      end if;
      v_vars := v_local || v_vars;
    end if;
    v_child := v_scope;
    v_scope := st.l_parent[v_pos];
  end loop;
  return st.variables || v_vars;
end;
$$;
comment on function bpm_private.scope__variables(bpm_private.run_state, uuid, uuid) is E'The variables visible to a token in a scope: instance variables overlaid by the locals of its scopes.';

-- What a task sees beyond the instance's variables, stored with it for its
-- worker or user: the locals of its scopes, its loop variables and its
-- input mappings (names whose value differs from the instance's). The
-- running counts of a multi-instance body (nrOfActiveInstances,
-- nrOfCompletedInstances) change after the task is created and are left
-- out. Null when there is nothing.
create or replace function bpm_private.task__locals(seen jsonb, instance jsonb)
returns jsonb
language plpgsql
immutable
set search_path = ''
as $$
begin
  -- (plpgsql, not sql: a non-inlined sql function is planned again in every transaction)
  return (select pg_catalog.jsonb_object_agg(e.key, e.value)
    from pg_catalog.jsonb_each(seen) e
    where (not instance ? e.key or instance -> e.key is distinct from e.value)
      and e.key not in ('nrOfActiveInstances', 'nrOfCompletedInstances'));
end;
$$;
comment on function bpm_private.task__locals(jsonb, jsonb) is E'The variables a task sees that the instance does not have (or has with another value), without the running multi-instance counts; null when none.';

-- A token enters an element inside a scope or a multi-instance activity
-- (run__drain): its scopes are loaded; entering a multi-instance activity
-- from outside enters its body (is_body); an inner instance of a body gets
-- its loopCounter (is_inner); variables: what the token sees.
create or replace function bpm_private.scope__enter_token(inout st bpm_private.run_state, node jsonb, id uuid, scope_id uuid,
  out variables jsonb, out is_inner boolean, out is_body boolean)
language plpgsql
volatile
set search_path = ''
as $$
declare
  v_pos int := pg_catalog.array_position(st.l_id, scope_id);
  v_data jsonb;
  v_k int;
begin
  -- (inlined: scope__load when cached, mi__inner_enter: once per inner instance)
  if v_pos is null and scope_id is not null then
    st := bpm_private.scope__load(st, scope_id);
    v_pos := pg_catalog.array_position(st.l_id, scope_id);
  end if;
  is_inner := node ? 'loop' and v_pos is not null and st.l_kind[v_pos] = 'body' and st.l_el[v_pos] = node ->> 'id';
  is_body := node ? 'loop' and not is_inner;
  if is_body then
    -- the body sees what the entering token sees (its collection may be a local of an enclosing scope)
    variables := case when scope_id is null then st.variables else bpm_private.scope__variables(st, scope_id, id) end;
    return;
  end if;
  if is_inner then
    -- the inner instance gets the next loopCounter
    v_data := st.l_data[v_pos];
    v_k := (v_data ->> 'next')::int;
    st.l_data[v_pos] := v_data || pg_catalog.jsonb_build_object('next', v_k + 1, 'active', (v_data ->> 'active')::int + 1,
      'inner', (v_data -> 'inner') || pg_catalog.jsonb_build_object(id::text, v_k));
    if st.l_state[v_pos] = 'stored' then
      st.l_state[v_pos] := 'dirty';
    end if;
  end if;
  variables := bpm_private.scope__variables(st, scope_id, id);
end;
$$;
comment on function bpm_private.scope__enter_token(bpm_private.run_state, jsonb, uuid, uuid) is E'A token enters an element in a scope or a multi-instance activity: loads its scopes, numbers inner instances, returns what it sees.';

-- A new scope instance of this run (its token is buffered like any wait).
create or replace function bpm_private.scope__add(st bpm_private.run_state, id uuid, element_id text, kind text, data jsonb)
returns bpm_private.run_state
language plpgsql
immutable
set search_path = ''
as $$
begin
  st.l_id := st.l_id || id;
  st.l_parent := st.l_parent || st.cur_scope;
  st.l_el := st.l_el || element_id;
  st.l_kind := st.l_kind || kind;
  st.l_data := st.l_data || data;
  st.l_state := st.l_state || 'new'::text;
  return bpm_private.wait__add(st, id, element_id, kind, null, null);
end;
$$;
comment on function bpm_private.scope__add(bpm_private.run_state, uuid, text, text, jsonb) is E'Registers a scope instance created by this run (enclosed by the current scope).';

create or replace function bpm_private.scope__set(st bpm_private.run_state, id uuid, data jsonb)
returns bpm_private.run_state
language plpgsql
immutable
set search_path = ''
as $$
declare
  v_pos int := pg_catalog.array_position(st.l_id, id);
begin
  st.l_data[v_pos] := data;
  if st.l_state[v_pos] = 'stored' then
    st.l_state[v_pos] := 'dirty';
  end if;
  return st;
end;
$$;
comment on function bpm_private.scope__set(bpm_private.run_state, uuid, jsonb) is E'Replaces the data of a cached scope (written back by run__flush).';

-- Writes variables into a scope: a name that is a local of the scope or of
-- an enclosing subprocess is set there, any other on the instance.
create or replace function bpm_private.scope__set_variables(st bpm_private.run_state, scope_id uuid, variables jsonb)
returns bpm_private.run_state
language plpgsql
immutable
set search_path = ''
as $$
declare
  v_key text;
  v_scope uuid;
  v_pos int;
  v_done boolean;
begin
  for v_key in select pg_catalog.jsonb_object_keys(variables) loop
    v_scope := scope_id;
    v_done := false;
    while v_scope is not null and not v_done loop
      v_pos := pg_catalog.array_position(st.l_id, v_scope);
      if st.l_kind[v_pos] = 'scope' and st.l_data[v_pos] -> 'vars' ? v_key then
        st := bpm_private.scope__set(st, v_scope, pg_catalog.jsonb_set(st.l_data[v_pos], array['vars', v_key], variables -> v_key));
        v_done := true;
      end if;
      v_scope := st.l_parent[v_pos];
    end loop;
    if not v_done then
      st.variables := st.variables || pg_catalog.jsonb_build_object(v_key, variables -> v_key);
    end if;
  end loop;
  return st;
end;
$$;
comment on function bpm_private.scope__set_variables(bpm_private.run_state, uuid, jsonb) is E'Sets variables as seen from a scope: on the nearest scope that has the name as a local, else on the instance.';

-- Input or output mappings (compiler/graph.ts IoMapping) evaluated over variables.
create or replace function bpm_private.io__map(mappings jsonb, variables jsonb, element_id text)
returns jsonb
language plpgsql
stable
set search_path = ''
as $$
declare
  v_result jsonb := '{}';
  v_map jsonb;
  v_value jsonb;
begin
  for v_i in 0 .. coalesce(pg_catalog.jsonb_array_length(mappings), 0) - 1 loop
    v_map := mappings -> v_i;
    v_value := v_map -> 'value';
    if v_value is null or v_value = 'null'::jsonb then
      v_value := 'null';
    elsif v_value ? 'json' then
      v_value := v_value -> 'json';
    elsif v_value ? 'decision' then
      -- a business rule task's DMN decision (decision.sql)
      v_value := coalesce(bpm_private.decision__call(v_value -> 'decision', variables || v_result, element_id), 'null'::jsonb);
    else
      v_value := coalesce(bpm_private.value__eval(v_value, variables || v_result, element_id), 'null'::jsonb);
    end if;
    if v_map ? 'path' then
      -- a nested target: set inside the variable as the sources see it (or as an earlier mapping made it)
      v_value := bpm_private.jsonb__set_path(coalesce(v_result -> (v_map ->> 'target'), variables -> (v_map ->> 'target')),
        array(select pg_catalog.jsonb_array_elements_text(v_map -> 'path')), v_value);
    end if;
    v_result := v_result || pg_catalog.jsonb_build_object(v_map ->> 'target', v_value);
  end loop;
  return v_result;
end;
$$;
comment on function bpm_private.io__map(jsonb, jsonb, text) is E'Evaluates input/output mappings over variables (later mappings see earlier ones; a nested target sets a path inside its variable).';

-- base with value at path, objects created where the path finds none (a
-- value that is not an object on the way is replaced by one).
create or replace function bpm_private.jsonb__set_path(base jsonb, path text[], value jsonb)
returns jsonb
language plpgsql
immutable
set search_path = ''
as $$
declare
  v_object jsonb := case when pg_catalog.jsonb_typeof(base) = 'object' then base else '{}' end;
begin
  if pg_catalog.cardinality(path) = 1 then
    return v_object || pg_catalog.jsonb_build_object(path[1], value);
  end if;
  return v_object || pg_catalog.jsonb_build_object(path[1], bpm_private.jsonb__set_path(v_object -> path[1], path[2:], value));
end;
$$;
comment on function bpm_private.jsonb__set_path(jsonb, text[], jsonb) is E'A JSON object with value set at path, creating the objects on the way.';

-- Removes a scope token: stored ones are deleted, buffered ones dropped.
create or replace function bpm_private.scope__remove(st bpm_private.run_state, id uuid)
returns bpm_private.run_state
language plpgsql
volatile
set search_path = ''
as $$
declare
  v_pos int := pg_catalog.array_position(st.l_id, id);
begin
  if st.l_state[v_pos] = 'new' then
    st := bpm_private.wait__keep(st, array(select w <> id from unnest(st.w_id) w));
  else
    delete from bpm_private.token t where t.tenant_id = st.tenant_id and t.id = scope__remove.id;
  end if;
  st.l_state[v_pos] := 'gone';
  return st;
end;
$$;
comment on function bpm_private.scope__remove(bpm_private.run_state, uuid) is E'Removes the token of a scope that ended.';

-- Closes the event subscriptions of waiting tokens, stored or buffered.
create or replace function bpm_private.subscriptions__drop(st bpm_private.run_state, token_ids uuid[])
returns bpm_private.run_state
language plpgsql
volatile
set search_path = ''
as $$
declare
  v_keep boolean[];
begin
  if st.s_token && token_ids then
    v_keep := array(select not (t = any(token_ids)) from unnest(st.s_token) t);
    st.s_data := array(select d from unnest(st.s_data, v_keep) as u(d, k) where k);
    st.s_token := array(select t from unnest(st.s_token, v_keep) as u(t, k) where k);
  end if;
  if not st.is_new then
    perform bpm_private.subscriptions__remove(st.tenant_id, st.instance_id, token_ids);
  end if;
  return st;
end;
$$;
comment on function bpm_private.subscriptions__drop(bpm_private.run_state, uuid[]) is E'Removes the subscriptions (and timer jobs) of tokens, including those buffered by this run.';
--! EndIncluded engine/scope.sql
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
begin
  -- one expression: PL/pgSQL prepares every expression once per transaction,
  -- so on this path fewer, larger expressions are cheaper than many small ones
  return row(tenant_id, instance_id, variables, is_new, false, coalesce(inclusive_joins, '{}'), 0,
    '{}', '{}', 1,            -- q_node, q_flow, q_pos
    '{}', '{}', '{}', '{}',   -- a_id, a_el, a_type, a_state
    '{}', '{}',               -- e_id, e_state
    '{}', '{}', '{}', '{}', '{}', -- w_id, w_el, w_kind, w_flow, w_data
    '{}', '{}', '{}',         -- x_kind, x_subject, x_el
    '{}', '{}', '{}', null,   -- s_token, s_data, p_data, business_key
    null, null, false,        -- resume_node, resume_id, upsert
    null, '{}', '{}', '{}',   -- cur_scope, q_scope, a_scope, c_scope
    '{}', '{}', '{}', '{}', '{}', '{}', -- l_id, l_parent, l_el, l_kind, l_data, l_state
    null,                     -- parent_id
    0                         -- step_credit
  )::bpm_private.run_state;
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
  st.q_scope := st.q_scope || st.cur_scope;
  return st;
end;
$$;
comment on function bpm_private.run__push(bpm_private.run_state, text, text) is E'Queues a token to enter node_id (arriving via via_flow) in the current scope.';

-- The token lifecycle. Runs queued tokens until all wait or end; then
-- completes scopes (subprocesses, multi-instance bodies) nothing runs in any
-- more, fires inclusive joins that became ready (no token can reach them any
-- more) and runs on. Per token: ENTER (a history row, in the token's scope),
-- EXECUTE (the element's behaviour, dispatched explicitly by type: wait,
-- join, scope, terminate or pass through), LEAVE (the flow policy picks the
-- outgoing flows; a token with none ends, and its scope may be complete).
-- This loop runs for every automatic step of every call, so the queue and
-- the history rows live in local arrays (appended in place); they are handed
-- to the run state only around behaviours that work on all of it (joins,
-- scopes, terminate) and at the end. That is why this function is longer than
-- the others: splitting the loop would copy the arrays at every call. Tokens at process level (scope null)
-- read the instance variables as they are; tokens in a scope see its locals.
create or replace function bpm_private.run__drain(st bpm_private.run_state, graph jsonb)
returns bpm_private.run_state
language plpgsql
volatile
set search_path = ''
as $$
declare
  q_node text[] := st.q_node;
  q_flow text[] := st.q_flow;
  q_scope uuid[] := st.q_scope;
  q_pos int := st.q_pos;
  a_id uuid[] := st.a_id;
  a_el text[] := st.a_el;
  a_type text[] := st.a_type;
  a_state text[] := st.a_state;
  a_scope uuid[] := st.a_scope;
  v_node_id text;
  v_via text;
  v_scope uuid;
  v_vars jsonb;
  v_inner boolean;
  v_entered record;
  v_node jsonb;
  v_type text;
  v_id uuid;
  v_flow text;
  v_flows text[];
  v_slow text;
  v_queued int;
  v_steps int := st.steps;
begin
  loop
    while not st.terminated and q_pos <= pg_catalog.cardinality(q_node) loop
      v_node_id := q_node[q_pos];
      v_via := q_flow[q_pos];
      v_scope := q_scope[q_pos];
      q_pos := q_pos + 1;
      -- a token of a scope cancelled in this call
      continue when v_node_id is null;
      v_steps := v_steps + 1;
      if v_steps > 2000 + coalesce(st.step_credit, 0) then
        raise exception 'instance % took more than % automatic steps in one call (endless loop without a wait state?) at element %', st.instance_id, 2000 + coalesce(st.step_credit, 0), v_node_id
          using errcode = 'BP306';
      end if;
      v_node := graph -> 'nodes' -> v_node_id;
      v_type := v_node ->> 'type';
      if v_node is null then
        raise exception 'element % is not in the process graph', v_node_id using errcode = 'BP305';
      end if;
      if v_scope is distinct from st.cur_scope then
        st.cur_scope := v_scope;
      end if;
      -- ===== ENTER (an asyncBefore continuation goes on with its stored row)
      if st.resume_id is not null and v_node_id = st.resume_node then
        v_id := st.resume_id;
        st.resume_id := null;
        st.upsert := true;
        v_slow := null;
      else
        v_id := bpm_private.uuid_v7();
        v_slow := case when (v_node ->> 'asyncBefore')::boolean then 'asyncBefore' end;
      end if;
      a_id := pg_catalog.array_append(a_id, v_id);
      a_el := pg_catalog.array_append(a_el, v_node_id);
      a_type := pg_catalog.array_append(a_type, v_type);
      a_state := pg_catalog.array_append(a_state, 'active'::text);
      a_scope := pg_catalog.array_append(a_scope, v_scope);
      if v_slow = 'asyncBefore' then
        st := bpm_private.async__wait(st, v_node, 'asyncBefore', v_via, v_id);
        continue;
      end if;
      v_vars := st.variables;
      v_inner := false;
      if v_scope is not null or v_node ? 'loop' then
        -- scoped tokens see their scopes' locals; a multi-instance activity enters its body
        v_entered := bpm_private.scope__enter_token(st, v_node, v_id, v_scope);
        st := v_entered.st;
        v_vars := v_entered.variables;
        v_inner := v_entered.is_inner;
        v_slow := case when v_entered.is_body then 'multiInstance' end;
      end if;
      if v_node ? 'inputs' and v_type not in ('subProcess', 'callActivity') and v_slow is null then
        -- input mappings of a task (of each inner instance, not of a multi-instance body): locals its attributes see
        v_vars := v_vars || bpm_private.io__map(v_node -> 'inputs', v_vars, v_node_id);
      end if;
      -- ===== EXECUTE
      case
        when v_slow is not null then
          null;
        when v_type in ('userTask', 'serviceTask') or coalesce(v_node ->> 'topic', '') <> '' then
          -- tasks are wait states themselves (boundary events of inner instances belong to their body)
          if v_type = 'userTask' then
            st := bpm_private.wait__add(st, v_id, v_node_id, 'userTask', v_via, bpm_private.user_task__create(v_node, v_vars));
            if st.w_data[pg_catalog.cardinality(st.w_data)] ? 'deadline' then
              st.p_data := st.p_data || pg_catalog.jsonb_build_object('kind', 'deadline', 'task', v_id, 'data', st.w_data[pg_catalog.cardinality(st.w_data)]);
            end if;
          else
            st := bpm_private.wait__add(st, v_id, v_node_id, 'externalTask', v_via, bpm_private.external_task__create(v_node, v_vars));
          end if;
          if v_scope is not null or v_node ? 'inputs' then
            -- what the task sees beyond the instance's variables (scope locals, loop variables, inputs)
            st.w_data[pg_catalog.cardinality(st.w_data)] := st.w_data[pg_catalog.cardinality(st.w_data)]
              || pg_catalog.jsonb_build_object('locals', bpm_private.task__locals(v_vars, st.variables));
          end if;
          if pg_catalog.jsonb_array_length(coalesce(v_node -> 'boundary', '[]')) > 0 and bpm_private.node__has_subscriptions(graph, v_node) and not v_inner then
            st := bpm_private.boundary__arm(st, graph, v_node, v_id);
          end if;
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
        when v_type in ('subProcess', 'callActivity') then
          v_slow := v_type;
        when v_node -> 'event' ->> 'kind' in ('compensate', 'cancel') and v_type in ('intermediateThrowEvent', 'endEvent') then
          v_slow := v_node -> 'event' ->> 'kind';
        when v_node -> 'event' ->> 'kind' = 'link' then
          -- a link throw jumps to its catch event; a link catch passes
          a_state[pg_catalog.cardinality(a_state)] := 'completed';
          v_slow := case when v_type = 'intermediateThrowEvent' then 'link' end;
        when v_type in ('intermediateCatchEvent', 'receiveTask') then
          v_slow := 'catch';
        when v_type = 'eventBasedGateway' then
          v_slow := 'eventGateway';
        when v_node -> 'event' ->> 'kind' in ('signal', 'message', 'error', 'escalation')
             and v_type in ('intermediateThrowEvent', 'endEvent', 'sendTask') then
          v_slow := 'throw';
        when v_type in ('task', 'manualTask', 'scriptTask', 'businessRuleTask') and v_node ? 'outputs' then
          -- a pass-through task's output mappings, over what it sees (its inputs included)
          a_state[pg_catalog.cardinality(a_state)] := 'completed';
          st := bpm_private.scope__set_variables(st, v_scope, bpm_private.io__map(v_node -> 'outputs', v_vars, v_node_id));
        when v_type in ('startEvent', 'endEvent', 'task', 'manualTask', 'scriptTask', 'businessRuleTask', 'exclusiveGateway', 'parallelGateway', 'inclusiveGateway',
                        'boundaryEvent', 'intermediateThrowEvent', 'sendTask') then
          a_state[pg_catalog.cardinality(a_state)] := 'completed';
        else
          raise exception 'element % has type % which this engine version cannot execute', v_node_id, v_type
            using errcode = 'BP305';
      end case;
      if v_slow is null and v_inner then
        -- an inner instance of a multi-instance task completed: its body counts it
        v_slow := 'innerDone';
      end if;
      if v_slow is not null then
        -- behaviours on the whole run state (scoped ones see the token's variables)
        st.q_node := q_node; st.q_flow := q_flow; st.q_scope := q_scope; st.q_pos := q_pos;
        st.a_id := a_id; st.a_el := a_el; st.a_type := a_type; st.a_state := a_state; st.a_scope := a_scope;
        if v_scope is not null then
          st := bpm_private.run__with_variables(st, graph, v_node, v_id, v_via, v_slow, v_vars);
        else
          st := bpm_private.node__execute(st, graph, v_node, v_id, v_via, v_slow);
        end if;
        q_node := st.q_node; q_flow := st.q_flow; q_scope := st.q_scope; q_pos := st.q_pos;
        a_id := st.a_id; a_el := st.a_el; a_type := st.a_type; a_state := st.a_state; a_scope := st.a_scope;
        continue;
      end if;
      -- ===== LEAVE
      if (v_node ->> 'asyncAfter')::boolean then
        st := bpm_private.async__wait(st, v_node, 'asyncAfter', null, bpm_private.uuid_v7());
        continue;
      end if;
      v_flows := bpm_private.flows__select(graph, v_node, v_vars);
      if pg_catalog.cardinality(v_flows) = 0 and v_scope is not null then
        -- the token ends: its scope may be complete (checked once the queue is empty)
        st.c_scope := st.c_scope || v_scope;
      end if;
      foreach v_flow in array v_flows loop
        q_node := pg_catalog.array_append(q_node, graph -> 'flows' -> v_flow ->> 'target');
        q_flow := pg_catalog.array_append(q_flow, v_flow);
        q_scope := pg_catalog.array_append(q_scope, v_scope);
      end loop;
    end loop;
    st.q_node := q_node; st.q_flow := q_flow; st.q_scope := q_scope; st.q_pos := q_pos; st.steps := v_steps;
    st.a_id := a_id; st.a_el := a_el; st.a_type := a_type; st.a_state := a_state; st.a_scope := a_scope;
    exit when st.terminated or (pg_catalog.cardinality(st.c_scope) = 0 and pg_catalog.cardinality(st.inclusive_joins) = 0);
    v_queued := pg_catalog.cardinality(st.q_node);
    st := bpm_private.run__settle(st, graph);
    exit when pg_catalog.cardinality(st.q_node) = v_queued or st.terminated;
    q_node := st.q_node; q_flow := st.q_flow; q_scope := st.q_scope; q_pos := st.q_pos;
    a_id := st.a_id; a_el := st.a_el; a_type := st.a_type; a_state := st.a_state; a_scope := st.a_scope;
  end loop;
  return st;
end;
$$;
comment on function bpm_private.run__drain(bpm_private.run_state, jsonb) is E'The token lifecycle: advances every queued token to its next wait state or end, completing scopes that ended (BP306 guards endless loops: 2,000 steps per call, plus 50 per inner instance of a multi-instance activity entered for the first time in its scope, at most 500,000 more).';

-- Once every queued token waits or ended: scopes nothing runs in any more
-- complete (a completing scope may end the last token of the scope around
-- it), then inclusive joins no token can reach any more fire (one at a
-- time: what it starts may reach the others).
create or replace function bpm_private.run__settle(st bpm_private.run_state, graph jsonb)
returns bpm_private.run_state
language plpgsql
volatile
set search_path = ''
as $$
declare
  v_queued int := pg_catalog.cardinality(st.q_node);
  v_join text;
begin
  while pg_catalog.cardinality(st.c_scope) > 0 and pg_catalog.cardinality(st.q_node) = v_queued loop
    st := bpm_private.scope__complete_ended(st, graph);
  end loop;
  if pg_catalog.cardinality(st.q_node) = v_queued then
    foreach v_join in array st.inclusive_joins loop
      st := bpm_private.inclusive_join__try_fire(st, graph, v_join);
      exit when pg_catalog.cardinality(st.q_node) > v_queued or st.terminated;
    end loop;
  end if;
  return st;
end;
$$;
comment on function bpm_private.run__settle(bpm_private.run_state, jsonb) is E'Completes ended scopes and fires ready inclusive joins once the run''s queue is empty.';

-- Behaviours that work on the whole run state, dispatched by kind.
create or replace function bpm_private.node__execute(st bpm_private.run_state, graph jsonb, node jsonb, id uuid, via text, kind text)
returns bpm_private.run_state
language plpgsql
volatile
set search_path = ''
as $$
begin
  case kind
    when 'parallelJoin' then
      return bpm_private.parallel_join__arrive(st, graph, node, id, via);
    when 'catch' then
      return bpm_private.catch__enter(st, graph, node, id, via);
    when 'eventGateway' then
      return bpm_private.event_gateway__enter(st, graph, node, id, via);
    when 'throw' then
      st := bpm_private.throw__enter(st, graph, node, id, via);
      if node -> 'event' ->> 'kind' in ('signal', 'message') or (node -> 'event' ->> 'kind' = 'escalation' and not st.terminated
         and st.a_state[pg_catalog.array_position(st.a_id, id)] = 'active') then
        st.a_state[pg_catalog.array_position(st.a_id, id)] := 'completed';
        st := bpm_private.node__leave(st, graph, node);
      end if;
      return st;
    when 'subProcess' then
      return bpm_private.subprocess__enter(st, graph, node, id);
    when 'callActivity' then
      return bpm_private.call__enter(st, graph, node, id);
    when 'multiInstance' then
      return bpm_private.mi__enter(st, graph, node, id);
    when 'innerDone' then
      return bpm_private.mi__inner_done(st, graph, node, st.cur_scope, id);
    when 'link' then
      return bpm_private.run__push(st, node -> 'event' ->> 'target', null);
    when 'compensate' then
      return bpm_private.compensation__start(st, graph, node, id);
    when 'cancel' then
      return bpm_private.transaction__cancel(st, graph, node, id);
    else
      return bpm_private.scope__terminate(st, id);
  end case;
end;
$$;
comment on function bpm_private.node__execute(bpm_private.run_state, jsonb, jsonb, uuid, text, text) is E'Runs the behaviour of an element that works on the whole run state (joins, catch and throw events, scopes, compensation, terminate).';

-- A behaviour of a token in a scope: it reads the variables the token sees
-- (the instance's and its scopes' locals); what it adds goes to the instance.
create or replace function bpm_private.run__with_variables(st bpm_private.run_state, graph jsonb, node jsonb, id uuid, via text, kind text, variables jsonb)
returns bpm_private.run_state
language plpgsql
volatile
set search_path = ''
as $$
declare
  v_instance jsonb := st.variables;
begin
  st.variables := variables;
  st := bpm_private.node__execute(st, graph, node, id, via, kind);
  -- keys the behaviour set or changed belong to the instance
  st.variables := v_instance || coalesce((select pg_catalog.jsonb_object_agg(e.key, e.value) from pg_catalog.jsonb_each(st.variables) e
    where not (variables ? e.key) or variables -> e.key is distinct from e.value), '{}');
  return st;
end;
$$;
comment on function bpm_private.run__with_variables(bpm_private.run_state, jsonb, jsonb, uuid, text, text, jsonb) is E'Runs a behaviour over the variables a scoped token sees; variables it sets are written to the instance.';

create or replace function bpm_private.run__flush(st bpm_private.run_state)
returns void
language plpgsql
volatile
set search_path = ''
as $$
declare
  v_nx int := pg_catalog.cardinality(st.x_kind);
  v_ne int := pg_catalog.cardinality(st.e_id);
  v_na int := pg_catalog.cardinality(st.a_id);
  v_nw int := pg_catalog.cardinality(st.w_id);
  -- event ids (bpm_private.event__next_ids, inlined: every call flushes)
  v_ord int := coalesce(nullif(pg_catalog.current_setting('bpm.event_ord', true), '')::int, 0);
  v_base bigint := (pg_catalog.pg_current_xact_id()::text::bigint << 20) + v_ord;
  v_listening boolean;
begin
  if v_ord < 0 or v_ord + v_nx + v_ne + v_na + v_nw + 1 >= 1048576 then
    raise exception 'more than 1048575 events in one transaction' using errcode = 'BP307';
  end if;
  perform pg_catalog.set_config('bpm.event_ord', (v_ord + v_nx + v_ne + v_na + v_nw + 1)::text, true);
  -- events, in this order: the explicit ones (x_*), ended stored history
  -- rows, the history rows and the tasks of this call, instanceCompleted
  -- last; ids are reserved per group (no sort; ids skip where a buffered wait
  -- is a join token: they only need to grow)
  with ins as (
    insert into bpm.event (tenant_id, id, instance_id, kind, subject_id, element_id)
    select st.tenant_id, v_base + case when x.kind = 'instanceCompleted' then v_nx + v_ne + v_na + v_nw + 1 else x.ord end,
      st.instance_id, x.kind, x.subject, x.el
    from unnest(st.x_kind, st.x_subject, st.x_el) with ordinality as x(kind, subject, el, ord)
    union all
    select st.tenant_id, v_base + v_nx + e.ord, st.instance_id,
      case e.state when 'completed' then 'activityCompleted' else 'activityCancelled' end, e.id,
      (select a.element_id from bpm.activity_instance a where a.tenant_id = st.tenant_id and a.id = e.id)
    from unnest(st.e_id, st.e_state) with ordinality as e(id, state, ord)
    union all
    select st.tenant_id, v_base + v_nx + v_ne + a.ord, st.instance_id,
      case a.state when 'active' then 'activityStarted' when 'completed' then 'activityCompleted' else 'activityCancelled' end, a.id, a.el
    from unnest(st.a_id, st.a_el, st.a_state) with ordinality as a(id, el, state, ord)
    union all
    select st.tenant_id, v_base + v_nx + v_ne + v_na + w.ord, st.instance_id,
      case w.kind when 'userTask' then 'taskCreated' else 'externalTaskCreated' end, w.id, w.el
    from unnest(st.w_id, st.w_el, st.w_kind) with ordinality as w(id, el, kind, ord)
    where w.kind in ('userTask', 'externalTask')
  )
  select exists (select 1 from bpm_private.event_listener l where l.tenant_id = st.tenant_id and l.expires_at > pg_catalog.now())
  into v_listening;
  if v_listening then
    perform pg_catalog.pg_notify('bpm_event', (v_base + 1)::text);
  end if;
  -- history: rows stored earlier that ended now, and the rows of this call
  -- (seq follows the order of the a_* arrays, the order tokens entered nodes)
  if st.upsert then
    -- an asyncBefore continuation: its row is stored already
    with ended as (
      -- by primary key, "= any": an index scan whatever the statistics say (a
      -- join with unnest may be planned as a hash join over the tenant's history)
      update bpm.activity_instance a
      set state = st.e_state[pg_catalog.array_position(st.e_id, a.id)], ended_at = pg_catalog.now()
      where a.tenant_id = st.tenant_id and a.id = any(st.e_id)
    )
    insert into bpm.activity_instance (tenant_id, id, instance_id, element_id, element_type, state, ended_at, scope_id)
    select st.tenant_id, u.id, st.instance_id, u.el, u.typ, u.state,
      case when u.state = 'active' then null else pg_catalog.now() end, u.scope
    from unnest(st.a_id, st.a_el, st.a_type, st.a_state, st.a_scope) with ordinality as u(id, el, typ, state, scope, ord)
    order by u.ord
    on conflict on constraint activity_instance_pkey do update set state = excluded.state, ended_at = excluded.ended_at;
  elsif pg_catalog.cardinality(st.e_id) > 0 then
    with ended as (
      update bpm.activity_instance a
      set state = st.e_state[pg_catalog.array_position(st.e_id, a.id)], ended_at = pg_catalog.now()
      where a.tenant_id = st.tenant_id and a.id = any(st.e_id)
    )
    insert into bpm.activity_instance (tenant_id, id, instance_id, element_id, element_type, state, ended_at, scope_id)
    select st.tenant_id, u.id, st.instance_id, u.el, u.typ, u.state,
      case when u.state = 'active' then null else pg_catalog.now() end, u.scope
    from unnest(st.a_id, st.a_el, st.a_type, st.a_state, st.a_scope) with ordinality as u(id, el, typ, state, scope, ord)
    order by u.ord;
  elsif pg_catalog.cardinality(st.a_id) > 0 then
    insert into bpm.activity_instance (tenant_id, id, instance_id, element_id, element_type, state, ended_at, scope_id)
    select st.tenant_id, u.id, st.instance_id, u.el, u.typ, u.state,
      case when u.state = 'active' then null else pg_catalog.now() end, u.scope
    from unnest(st.a_id, st.a_el, st.a_type, st.a_state, st.a_scope) with ordinality as u(id, el, typ, state, scope, ord)
    order by u.ord;
  end if;
  if 'dirty' = any(st.l_state) then
    update bpm_private.token t set data = st.l_data[pg_catalog.array_position(st.l_id, t.id)]
    where t.tenant_id = st.tenant_id
      and t.id = any(array(select l.id from unnest(st.l_id, st.l_state) as l(id, state) where l.state = 'dirty'));
  end if;
  if pg_catalog.cardinality(st.s_token) > 0 then
    perform bpm_private.run__flush_subscriptions(st);
  end if;
  if pg_catalog.cardinality(st.w_id) > 0 then
    perform bpm_private.run__flush_waits(st);
  end if;
  -- last: what the run triggers elsewhere sees everything it wrote
  if pg_catalog.cardinality(st.p_data) > 0 then
    perform bpm_private.run__post(st);
  end if;
end;
$$;
comment on function bpm_private.run__flush(bpm_private.run_state) is E'Writes the run''s events, buffered history rows and wait states (one insert per table), then runs its post actions.';

create or replace function bpm_private.run__flush_waits(st bpm_private.run_state)
returns void
language plpgsql
volatile
set search_path = ''
as $$
begin
  -- user and external tasks are wait states themselves; other waits are tokens
  if not (st.w_kind <@ array['userTask', 'externalTask']) then
    -- scopes carry their data (locals, multi-instance state) as of the end of the run
    insert into bpm_private.token (tenant_id, id, instance_id, element_id, kind, via_flow, data)
    select st.tenant_id, u.id, st.instance_id, u.el, u.kind, u.flow,
      case when u.kind in ('scope', 'body', 'call') then st.l_data[pg_catalog.array_position(st.l_id, u.id)] end
    from unnest(st.w_id, st.w_el, st.w_kind, st.w_flow) as u(id, el, kind, flow)
    where u.kind not in ('userTask', 'externalTask');
  end if;
  if 'userTask' = any(st.w_kind) then
    insert into bpm.user_task (tenant_id, id, instance_id, element_id, name, form, assignee, candidate_users, candidate_groups, priority, due_at, follow_up_at, local_variables)
    select st.tenant_id, u.id, st.instance_id, u.el, u.data ->> 'name', nullif(u.data -> 'form', 'null'), u.data ->> 'assignee',
      coalesce((select array_agg(e) from pg_catalog.jsonb_array_elements_text(u.data -> 'candidate_users') e), '{}'),
      coalesce((select array_agg(e) from pg_catalog.jsonb_array_elements_text(u.data -> 'candidate_groups') e), '{}'),
      coalesce((u.data ->> 'priority')::int, 50), (u.data ->> 'due_at')::timestamptz, (u.data ->> 'follow_up_at')::timestamptz,
      nullif(u.data -> 'locals', 'null')
    from unnest(st.w_id, st.w_el, st.w_kind, st.w_data) as u(id, el, kind, data)
    where u.kind = 'userTask';
  end if;
  if 'externalTask' = any(st.w_kind) then
    insert into bpm.external_task (tenant_id, id, instance_id, element_id, topic, headers, priority, local_variables)
    select st.tenant_id, u.id, st.instance_id, u.el, u.data ->> 'topic', nullif(u.data -> 'headers', 'null'), coalesce((u.data ->> 'priority')::int, 0),
      nullif(u.data -> 'locals', 'null')
    from unnest(st.w_id, st.w_el, st.w_kind, st.w_data) as u(id, el, kind, data)
    where u.kind = 'externalTask';
    perform bpm_private.external_task__notify(st.tenant_id);
  end if;
end;
$$;
comment on function bpm_private.run__flush_waits(bpm_private.run_state) is E'Writes the run''s wait states: tokens, user tasks, external tasks (one insert per table).';

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
  v_changed boolean := st.variables <> before.variables;
  v_moved boolean := false;
begin
  -- completion first (this run adds no wait state when it can complete, so
  -- the flush below changes nothing the check reads); its event is flushed too.
  -- "(state = 'open') is true" is not an index condition: the generic plan
  -- takes the instance index instead of walking the inbox index
  -- (tenant_id, state, …) over every open task of the tenant (engine-wide
  -- rule for "open" next to an id or instance id)
  if st.terminated or pg_catalog.cardinality(st.w_id) = 0 then
    update bpm.process_instance i
    set variables = st.variables, state = 'completed', ended_at = pg_catalog.now()
    where i.tenant_id = st.tenant_id and i.id = st.instance_id
      and (st.terminated or (
        not exists (select 1 from bpm.user_task u where u.tenant_id = st.tenant_id and u.instance_id = st.instance_id and (u.state = 'open') is true)
        and not exists (select 1 from bpm.external_task e where e.tenant_id = st.tenant_id and e.instance_id = st.instance_id and (e.state = 'open') is true)
        and not exists (select 1 from bpm_private.token t where t.tenant_id = st.tenant_id and t.instance_id = st.instance_id)))
    returning * into v_result;
    if found then
      st := bpm_private.run__event(st, 'instanceCompleted', st.instance_id, null);
      -- the instance's own event subprocesses stop listening
      st := bpm_private.subscriptions__drop(st, array[st.instance_id]);
      if v_result.parent_instance_id is not null then
        -- a called instance: its call activity goes on (after this run is written)
        st.p_data := st.p_data || '{"kind": "childCompleted"}'::jsonb;
      end if;
      perform bpm_private.run__flush(st);
      return v_result;
    end if;
  end if;
  -- the instance row first: what the flush triggers afterwards (a signal this
  -- run threw, caught by the instance itself) must read it as of this run
  v_result := before;
  if v_changed then
    update bpm.process_instance i set variables = st.variables
    where i.tenant_id = st.tenant_id and i.id = st.instance_id
    returning * into v_result;
  end if;
  perform bpm_private.run__flush(st);
  -- conditional events that hold now (condition.sql): after a run that
  -- changed variables (changes unknown when it changed a subprocess's
  -- locals) or opened conditional events
  if 'dirty' = any(st.l_state) then
    v_moved := bpm_private.conditions__check(st.tenant_id, st.instance_id, null, null);
  elsif v_changed or (pg_catalog.cardinality(st.s_data) > 0 and exists (select 1 from unnest(st.s_data) d where d ->> 'kind' = 'conditional')) then
    v_moved := bpm_private.conditions__check(st.tenant_id, st.instance_id, before.variables, st.variables);
  end if;
  if v_moved or pg_catalog.cardinality(st.p_data) > 0 then
    -- what the flush started (called instances, signals, conditional events) may have moved it on
    select * into v_result from bpm.process_instance i where i.tenant_id = st.tenant_id and i.id = st.instance_id;
  end if;
  return v_result;
end;
$$;
comment on function bpm_private.run__finish(bpm_private.run_state, bpm.process_instance) is E'Completes the instance when nothing waits any more, then flushes the run and, when it changed variables or opened conditional events, evaluates the instance''s conditions.';

create or replace function bpm_private.run__event(st bpm_private.run_state, kind text, subject uuid, element_id text)
returns bpm_private.run_state
language plpgsql
immutable
set search_path = ''
as $$
begin
  st.x_kind := st.x_kind || kind;
  st.x_subject := st.x_subject || subject;
  st.x_el := st.x_el || element_id;
  return st;
end;
$$;
comment on function bpm_private.run__event(bpm_private.run_state, text, uuid, text) is E'Buffers an explicit event of the run (written by run__flush).';

create or replace function bpm_private.run__flush_subscriptions(st bpm_private.run_state)
returns void
language plpgsql
volatile
set search_path = ''
as $$
declare
  v_timer record;
begin
  insert into bpm.event_subscription (tenant_id, id, kind, name, correlation_key, instance_id, token_id, element_id, interrupting, due_at, cycle, repeats_left, job_priority)
  select st.tenant_id, (d ->> 'id')::uuid, d ->> 'kind', d ->> 'name', d ->> 'key', st.instance_id, u.token, d ->> 'element',
    coalesce((d ->> 'interrupting')::boolean, true), (d ->> 'due_at')::timestamptz, d ->> 'cycle', (d ->> 'repeats')::int,
    coalesce((d ->> 'priority')::int, 0)
  from unnest(st.s_token, st.s_data) as u(token, d);
  for v_timer in select (d ->> 'id')::uuid as id, (d ->> 'due_at')::timestamptz as due_at, coalesce((d ->> 'priority')::int, 0) as priority
                 from unnest(st.s_data) d where d ->> 'kind' = 'timer' loop
    perform bpm_private.timer__enqueue(st.tenant_id, v_timer.id, v_timer.due_at, v_timer.priority);
  end loop;
end;
$$;
comment on function bpm_private.run__flush_subscriptions(bpm_private.run_state) is E'Writes the run''s new event subscriptions and schedules the jobs of its timers.';
--! EndIncluded engine/run.sql
--! Included instance/migrate.sql
-- Instance migration (admin): running instances move to another version of
-- their process (same key). Every element something waits at (active
-- activity rows, open user and external tasks, tokens, event subscriptions)
-- is mapped to an element of the target graph: the explicit mapping, else
-- the same id when the target has it. A mapping that would lose a token, or
-- put it on an element of another wait kind or in another scope, is refused
-- before anything changes. History keeps its old element ids; variables,
-- task ids, assignees, subscriptions (names, due times) and jobs stay.

-- What a token waiting at a node waits for; a node may only become a node
-- of the same kind. Receive tasks and catch events wait for their event
-- kind, boundary events likewise; everything else keeps its type (joins
-- stay joins of the same gateway type, subprocesses subprocesses, call
-- activities call activities).
create or replace function bpm_private.node__wait_kind(node jsonb)
returns text
language plpgsql
immutable
set search_path = ''
as $$
declare
  v_type text := node ->> 'type';
begin
  return case
    when v_type = 'userTask' then 'userTask'
    when v_type = 'serviceTask' or coalesce(node ->> 'topic', '') <> '' then 'external task'
    when v_type in ('receiveTask', 'intermediateCatchEvent') then coalesce(node -> 'event' ->> 'kind', 'none') || ' catch event'
    when v_type = 'boundaryEvent' then coalesce(node -> 'event' ->> 'kind', 'none') || ' boundary event'
    else v_type
  end;
end;
$$;
comment on function bpm_private.node__wait_kind(jsonb) is E'What a token waiting at a node waits for (userTask, external task, <event> catch event, <event> boundary event, else the node type); migration maps a node only to one of the same kind.';

-- The element mapping of a migration, validated per source definition and
-- active element, returned once per source element id (the target of an id
-- is the same whatever version it comes from) (BP410 a token would be lost, BP112 the
-- mapping names an element the target lacks, BP411 another wait kind, another
-- scope, a boundary event on another activity, a join token arriving over a
-- flow the target join does not have). Errors name the first instance (by id).
create or replace function bpm_private.migration__plan(tenant_id text, ids uuid[], defs uuid[], target bpm.process_definition, mapping jsonb,
  out src text[], out tgt text[], out typ text[], out topic text[], out interrupting boolean[])
language plpgsql
stable
set search_path = ''
as $$
declare
  v_graph jsonb := bpm_private.graph__in_memory(target.graph) -> 'nodes';
  v_sources jsonb;
  v_src jsonb;
  v_tgt jsonb;
  v_tgt_id text;
  v_mapped text;
  v_where text := pg_catalog.format('%s version %s', target.key, target.version);
  r record;
begin
  src := '{}'; tgt := '{}'; typ := '{}'; topic := '{}'; interrupting := '{}';
  select pg_catalog.jsonb_object_agg(d.id::text, d.graph -> 'nodes') into v_sources
  from bpm.process_definition d where d.tenant_id = migration__plan.tenant_id and d.id = any(defs);
  for r in
    with x as (select * from unnest(ids, defs) as x(id, def)),
    active as (
      select a.instance_id, a.element_id from bpm.activity_instance a
      where a.tenant_id = migration__plan.tenant_id and a.instance_id = any(ids) and a.state = 'active'
      union select u.instance_id, u.element_id from bpm.user_task u
      where u.tenant_id = migration__plan.tenant_id and u.instance_id = any(ids) and (u.state = 'open') is true
      union select e.instance_id, e.element_id from bpm.external_task e
      where e.tenant_id = migration__plan.tenant_id and e.instance_id = any(ids) and (e.state = 'open') is true
      union select t.instance_id, t.element_id from bpm_private.token t
      where t.tenant_id = migration__plan.tenant_id and t.instance_id = any(ids)
      union select s.instance_id, s.element_id from bpm.event_subscription s
      where s.tenant_id = migration__plan.tenant_id and s.instance_id = any(ids)
    )
    select x.def, a.element_id, (array_agg(x.id order by x.id))[1] as instance_id
    from active a join x on x.id = a.instance_id
    group by x.def, a.element_id
    order by 3, 2
  loop
    v_src := v_sources -> r.def::text -> r.element_id;
    v_tgt_id := coalesce(mapping ->> r.element_id, case when v_graph ? r.element_id then r.element_id end);
    if v_tgt_id is null then
      raise exception 'cannot migrate process instance %: element % has no counterpart in % and the mapping names none, so its token would be lost',
        r.instance_id, r.element_id, v_where using errcode = 'BP410';
    end if;
    v_tgt := v_graph -> v_tgt_id;
    if v_tgt is null then
      raise exception 'cannot migrate process instance %: element % is mapped to %, which is not an element of %',
        r.instance_id, r.element_id, v_tgt_id, v_where using errcode = 'BP112';
    end if;
    if bpm_private.node__wait_kind(v_src) is distinct from bpm_private.node__wait_kind(v_tgt) then
      raise exception 'cannot migrate process instance %: element % (%) cannot become % (%) of %', r.instance_id, r.element_id,
        coalesce(bpm_private.node__wait_kind(v_src), 'unknown'), v_tgt_id, bpm_private.node__wait_kind(v_tgt), v_where using errcode = 'BP411';
    end if;
    v_mapped := coalesce(mapping ->> (v_src ->> 'scope'), v_src ->> 'scope');
    if v_mapped is distinct from v_tgt ->> 'scope' then
      raise exception 'cannot migrate process instance %: element % is inside %, but % of % is inside %', r.instance_id, r.element_id,
        coalesce(v_src ->> 'scope', 'the process'), v_tgt_id, v_where, coalesce(v_tgt ->> 'scope', 'the process') using errcode = 'BP411';
    end if;
    v_mapped := coalesce(mapping ->> (v_src ->> 'attachedTo'), v_src ->> 'attachedTo');
    if v_mapped is distinct from v_tgt ->> 'attachedTo' then
      raise exception 'cannot migrate process instance %: boundary event % of % would become % attached to % in %', r.instance_id, r.element_id,
        v_src ->> 'attachedTo', v_tgt_id, coalesce(v_tgt ->> 'attachedTo', 'nothing'), v_where using errcode = 'BP411';
    end if;
    continue when r.element_id = any(src);
    src := src || r.element_id; tgt := tgt || v_tgt_id; typ := typ || (v_tgt ->> 'type');
    -- (a topic expression is not evaluated again: the task keeps its topic)
    topic := topic || case when v_tgt ? 'topicExpr' then null else v_tgt ->> 'topic' end; interrupting := interrupting || coalesce((v_tgt ->> 'cancelActivity')::boolean, true);
  end loop;
  -- join tokens count per incoming flow: the flow must come into the target join too
  select t.instance_id, t.element_id, t.via_flow, m.tgt into r
  from bpm_private.token t
  join unnest(migration__plan.src, migration__plan.tgt) as m(src, tgt) on m.src = t.element_id
  where t.tenant_id = migration__plan.tenant_id and t.instance_id = any(ids) and t.kind = 'join'
    and not coalesce(v_graph -> m.tgt -> 'in' ? t.via_flow, false)
  order by t.instance_id, t.element_id
  limit 1;
  if found then
    raise exception 'cannot migrate process instance %: a token waits at join % having arrived over flow %, which does not enter % in %',
      r.instance_id, r.element_id, coalesce(r.via_flow, '(none)'), r.tgt, v_where using errcode = 'BP411';
  end if;
end;
$$;
comment on function bpm_private.migration__plan(text, uuid[], uuid[], bpm.process_definition, jsonb) is E'Validates a migration''s element mapping for the locked instances (BP410, BP411, BP112) and returns it per active source element id.';

-- Applies a validated plan to every instance at once: one statement per
-- table (only active rows: history keeps its old element ids), then one
-- instanceMigrated event per instance.
create or replace function bpm_private.migration__apply(tenant_id text, ids uuid[], target_id uuid,
  src text[], tgt text[], typ text[], topic text[], interrupting boolean[])
returns int
language plpgsql
volatile
set search_path = ''
as $$
declare
  v_count int;
  v_base bigint;
begin
  -- each table's rows of the instances (by its instance index) joined to the
  -- few mapped elements: a plan that stays linear in the number of instances
  with m as (
    select * from unnest(migration__apply.src, migration__apply.tgt, migration__apply.typ, migration__apply.topic,
      migration__apply.interrupting) as u(src, tgt, typ, topic, interrupting)
  ), activities as (
    update bpm.activity_instance a set element_id = m.tgt, element_type = m.typ
    from m where a.tenant_id = migration__apply.tenant_id and a.instance_id = any(ids) and a.element_id = m.src and a.state = 'active'
    returning 1
  ), user_tasks as (
    update bpm.user_task t set element_id = m.tgt
    from m where t.tenant_id = migration__apply.tenant_id and t.instance_id = any(ids) and t.element_id = m.src and (t.state = 'open') is true
    returning 1
  ), external_tasks as (
    update bpm.external_task e set element_id = m.tgt, topic = coalesce(m.topic, e.topic)
    from m where e.tenant_id = migration__apply.tenant_id and e.instance_id = any(ids) and e.element_id = m.src and (e.state = 'open') is true
    returning 1
  ), tokens as (
    update bpm_private.token t set element_id = m.tgt
    from m where t.tenant_id = migration__apply.tenant_id and t.instance_id = any(ids) and t.element_id = m.src
    returning 1
  ), subscriptions as (
    -- names, correlation keys and due times stay; only the catching element changes
    update bpm.event_subscription s set element_id = m.tgt, interrupting = m.interrupting
    from m where s.tenant_id = migration__apply.tenant_id and s.instance_id = any(ids) and s.element_id = m.src
    returning 1
  ), incidents as (
    update bpm.incident i set element_id = m.tgt
    from m where i.tenant_id = migration__apply.tenant_id and i.instance_id = any(ids) and i.element_id = m.src and i.resolved_at is null
    returning 1
  ), instances as (
    update bpm.process_instance i set definition_id = target_id
    where i.tenant_id = migration__apply.tenant_id and i.id = any(ids)
    returning 1
  )
  -- (data-modifying CTEs always run to completion, referenced or not)
  select pg_catalog.count(*) into v_count from instances;
  v_base := bpm_private.event__next_ids(pg_catalog.cardinality(ids));
  insert into bpm.event (tenant_id, id, instance_id, kind, subject_id, element_id)
  select migration__apply.tenant_id, v_base + x.ord, x.id, 'instanceMigrated', x.id, null
  from unnest(ids) with ordinality as x(id, ord);
  perform bpm_private.event__notify(tenant_id, v_base + pg_catalog.cardinality(ids));
  return v_count;
end;
$$;
comment on function bpm_private.migration__apply(text, uuid[], uuid, text[], text[], text[], text[], boolean[]) is E'Moves locked instances to the target definition with a validated plan (set-based) and records instanceMigrated per instance.';

-- Events the target adds are armed as if their host had just been entered:
-- message, signal and timer boundary events on activities that already wait,
-- and event subprocesses of the process or of running subprocess instances
-- (not of a scope where an interrupting event subprocess runs: it closed the
-- others). Their spec is evaluated over what the host sees (instance
-- variables and scope locals) and timers are scheduled. What was subscribed
-- already keeps its (mapped) subscription.
create or replace function bpm_private.migration__arm_added_events(tenant_id text, ids uuid[], target bpm.process_definition)
returns void
language plpgsql
volatile
set search_path = ''
as $$
declare
  v_graph jsonb := bpm_private.graph__in_memory(target.graph);
  st bpm_private.run_state;
  r record;
begin
  for r in
    with hosts as (
      -- activities with boundary events (seen from the activity's scope)
      select a.instance_id, a.id as host_id, a.element_id, a.scope_id as var_scope, a.id as var_token, false as esp
      from bpm.activity_instance a
      where a.tenant_id = migration__arm_added_events.tenant_id and a.instance_id = any(ids) and a.state = 'active'
        and v_graph -> 'nodes' -> a.element_id ? 'boundary'
      union all
      -- running subprocess instances with event subprocesses (seen from inside)
      select a.instance_id, a.id, a.element_id, a.id, null, true
      from bpm.activity_instance a
      where a.tenant_id = migration__arm_added_events.tenant_id and a.instance_id = any(ids) and a.state = 'active'
        and v_graph -> 'nodes' -> a.element_id ? 'eventSubprocesses'
      union all
      -- the process level
      select u.id, u.id, null, null, null, true
      from unnest(ids) as u(id) where v_graph ? 'eventSubprocesses'
    )
    select h.*, i.variables, i.business_key,
      coalesce((select array_agg(s.element_id) from bpm.event_subscription s
                where s.tenant_id = migration__arm_added_events.tenant_id and s.instance_id = h.instance_id and s.token_id = h.host_id), '{}') as armed
    from hosts h join bpm.process_instance i on i.tenant_id = migration__arm_added_events.tenant_id and i.id = h.instance_id
    where not (h.esp and exists (
      select 1 from bpm.activity_instance e
      where e.tenant_id = migration__arm_added_events.tenant_id and e.instance_id = h.instance_id and e.state = 'active'
        and e.scope_id is not distinct from case when h.host_id = h.instance_id then null else h.host_id end
        and coalesce((v_graph -> 'nodes' -> e.element_id ->> 'triggeredByEvent')::boolean, false)
        and coalesce((v_graph -> 'nodes' -> (v_graph -> 'nodes' -> e.element_id ->> 'start') ->> 'interrupting')::boolean, true)))
    order by h.instance_id, h.host_id
  loop
    st := bpm_private.run__begin(tenant_id, r.instance_id, r.variables, false, target.inclusive_joins);
    st.business_key := r.business_key;
    if r.var_scope is not null then
      st := bpm_private.scope__load(st, r.var_scope);
      st.variables := bpm_private.scope__variables(st, r.var_scope, r.var_token);
    end if;
    -- armed as on entering the host ...
    if not r.esp then
      st := bpm_private.boundary__arm(st, v_graph, v_graph -> 'nodes' -> r.element_id, r.host_id);
    elsif r.element_id is null then
      st := bpm_private.event_subprocess__arm(st, v_graph, v_graph -> 'eventSubprocesses', null);
    else
      st := bpm_private.event_subprocess__arm(st, v_graph, v_graph -> 'nodes' -> r.element_id -> 'eventSubprocesses', r.host_id);
    end if;
    -- ... but for what was subscribed already
    select coalesce(array_agg(u.token order by u.ord), '{}'), coalesce(array_agg(u.spec order by u.ord), '{}') into st.s_token, st.s_data
    from unnest(st.s_token, st.s_data) with ordinality as u(token, spec, ord)
    where not (u.spec ->> 'element' = any(r.armed));
    if pg_catalog.cardinality(st.s_token) > 0 then
      perform bpm_private.run__flush_subscriptions(st);
    end if;
  end loop;
end;
$$;
comment on function bpm_private.migration__arm_added_events(text, uuid[], bpm.process_definition) is E'Arms the message, signal, timer and conditional boundary events and event subprocesses a migration''s target adds to what already runs.';

create or replace function bpm.migrate_process_instances(instance_ids uuid[], target_definition_id uuid, element_mapping jsonb default '{}')
returns int
language plpgsql
volatile
security definer
set search_path = ''
set plan_cache_mode = force_generic_plan
as $$
declare
  v_tenant text := bpm_private.require_context(array['bpm_admin'], 'migrate process instances');
  v_mapping jsonb := coalesce(element_mapping, '{}');
  v_target bpm.process_definition;
  v_ids uuid[];
  v_defs uuid[];
  v_plan record;
  v_count int;
  r record;
begin
  -- ===== GUARD the arguments
  if instance_ids is null or pg_catalog.cardinality(instance_ids) = 0 or pg_catalog.array_position(instance_ids, null) is not null then
    raise exception 'invalid argument: instance_ids must list at least one process instance id (and no null)' using errcode = 'BP401';
  end if;
  if pg_catalog.jsonb_typeof(v_mapping) <> 'object'
     or exists (select 1 from pg_catalog.jsonb_each(v_mapping) e where pg_catalog.jsonb_typeof(e.value) <> 'string') then
    raise exception 'invalid argument: element_mapping must be a JSON object of source element id to target element id (strings)' using errcode = 'BP401';
  end if;
  select * into v_target from bpm.process_definition d where d.tenant_id = v_tenant and d.id = target_definition_id;
  if not found then
    raise exception 'process definition % not found', target_definition_id using errcode = 'BP110';
  end if;
  -- ===== LOCK every instance, in id order, after the roots of their call trees
  -- (the engine's lock order; concurrent migrations cannot deadlock)
  perform 1 from bpm.process_instance root
  where root.tenant_id = v_tenant and root.root_instance_id is null
    and (root.id = any(instance_ids)
         or root.id in (select c.root_instance_id from bpm.process_instance c where c.tenant_id = v_tenant and c.id = any(instance_ids)))
  order by root.id for update;
  select coalesce(array_agg(l.id order by l.id), '{}'), coalesce(array_agg(l.definition_id order by l.id), '{}') into v_ids, v_defs
  from (select i.id, i.definition_id from bpm.process_instance i
        where i.tenant_id = v_tenant and i.id = any(instance_ids)
        order by i.id for update) l;
  select u.id into r from unnest(instance_ids) as u(id) where not (u.id = any(v_ids)) order by u.id limit 1;
  if found then
    raise exception 'process instance % not found', r.id using errcode = 'BP102';
  end if;
  -- ===== GUARD each instance: running, and a version of the target's key
  select i.id, i.state, d.key, d.version into r
  from bpm.process_instance i join bpm.process_definition d on d.tenant_id = i.tenant_id and d.id = i.definition_id
  where i.tenant_id = v_tenant and i.id = any(v_ids) and (i.state not in ('active', 'suspended') or d.key <> v_target.key)
  order by i.id limit 1;
  if found and r.state not in ('active', 'suspended') then
    raise exception 'process instance % is % and cannot be migrated', r.id, r.state using errcode = 'BP201';
  elsif found then
    raise exception 'process instance % runs process % (version %), not %: it cannot be migrated to % version %',
      r.id, r.key, r.version, v_target.key, v_target.key, v_target.version using errcode = 'BP412';
  end if;
  -- ===== MIGRATE: validate the whole mapping first, then move everything at once
  v_plan := bpm_private.migration__plan(v_tenant, v_ids, v_defs, v_target, v_mapping);
  v_count := bpm_private.migration__apply(v_tenant, v_ids, v_target.id, v_plan.src, v_plan.tgt, v_plan.typ, v_plan.topic, v_plan.interrupting);
  perform bpm_private.migration__arm_added_events(v_tenant, v_ids, v_target);
  if v_target.graph ? 'conditionals' then
    -- conditional events the target adds, evaluated as they open
    perform bpm_private.conditions__check(v_tenant, u.id, null, null) from unnest(v_ids) as u(id);
  end if;
  return v_count;
end;
$$;
comment on function bpm.migrate_process_instances(uuid[], uuid, jsonb) is E'Migrates running (active or suspended) instances to another version of their process (same key), all or none, and returns how many were migrated. element_mapping maps source element ids to target element ids; an element missing from it keeps its id, which the target must have. Every element something waits at (tasks, tokens, event subscriptions) must map to an element of the same kind (user task, external task, the same kind of catch or boundary event, the same gateway type, subprocess, call activity) in the mapped scope. Tasks keep their ids and assignees (external tasks take the target''s topic), subscriptions their names and due times, the instance its variables; history keeps the old element ids; each instance records instanceMigrated. Message, signal, timer and conditional boundary events and event subprocesses the target adds to what already runs are armed (conditions evaluated at once). Errors: BP102 an instance not found, BP110 target not found, BP201 an instance ended, BP412 another process key, BP410 a token would be lost, BP411 incompatible element, BP112 mapped to an unknown element, BP401 malformed arguments. Roles: bpm_admin.';
--! EndIncluded instance/migrate.sql
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
    'bpm.deployment', 'bpm.process_definition', 'bpm.decision_definition', 'bpm.process_instance', 'bpm.user_task',
    'bpm.external_task', 'bpm.incident', 'bpm.activity_instance', 'bpm.event', 'bpm.event_subscription',
    'bpm.message_buffer', 'bpm_private.token', 'bpm_private.event_listener', 'bpm_private.message_receipt',
    'bpm_private.task_listener', 'bpm_private.start_request', 'bpm_private.deferred_delivery', 'bpm_private.task_offer'
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

drop policy if exists user_reads_decisions on bpm.decision_definition;
create policy user_reads_decisions on bpm.decision_definition for select to bpm_user
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
grant select on bpm.deployment, bpm.process_definition, bpm.decision_definition, bpm.process_instance, bpm.user_task,
  bpm.external_task, bpm.incident, bpm.activity_instance, bpm.event, bpm.event_subscription, bpm.message_buffer
  to bpm_admin, bpm_designer, bpm_engine;
grant select on bpm.process_definition, bpm.decision_definition, bpm.process_instance, bpm.user_task, bpm.event to bpm_user;
--! EndIncluded setup/policies.sql
--! Included setup/grants.sql
-- Execute grants: each API function to exactly the roles its guard admits
-- (the guard still checks; the grant keeps others from reaching it at all).
revoke execute on all functions in schema bpm from public;
revoke execute on all functions in schema bpm_private from public;
grant execute on function bpm.deploy(jsonb) to bpm_admin, bpm_designer;
grant execute on function bpm.evaluate_decision(text, jsonb, int) to bpm_admin, bpm_designer, bpm_user, bpm_engine;
grant execute on function bpm.start_process(text, jsonb, text, text) to bpm_admin, bpm_user;
grant execute on function bpm.complete_task(uuid, jsonb) to bpm_admin, bpm_user;
grant execute on function bpm.claim_task(uuid) to bpm_admin, bpm_user;
grant execute on function bpm.unclaim_task(uuid) to bpm_admin, bpm_user;
grant execute on function bpm.task_inbox(uuid, int) to bpm_admin, bpm_user;
grant execute on function bpm.set_assignee(uuid, text) to bpm_admin;
grant execute on function bpm.update_task(uuid, jsonb) to bpm_admin;
grant execute on function bpm.cancel_process_instance(uuid, text) to bpm_admin;
grant execute on function bpm.suspend_process_instance(uuid) to bpm_admin;
grant execute on function bpm.activate_process_instance(uuid) to bpm_admin;
grant execute on function bpm.set_variables(uuid, jsonb) to bpm_admin;
grant execute on function bpm.fetch_and_lock(text, text, int, interval) to bpm_admin, bpm_engine;
grant execute on function bpm.complete_external_task(uuid, text, jsonb) to bpm_admin, bpm_engine;
grant execute on function bpm.fail_external_task(uuid, text, text, int, interval) to bpm_admin, bpm_engine;
grant execute on function bpm.register_task_listener(text, interval) to bpm_admin, bpm_engine;
grant execute on function bpm.throw_bpmn_error(uuid, text, text, jsonb, text) to bpm_admin, bpm_engine;
grant execute on function bpm.retry_incident(uuid, int) to bpm_admin, bpm_engine;
grant execute on function bpm.events_after(bigint, uuid, int) to bpm_admin, bpm_designer, bpm_user, bpm_engine;
grant execute on function bpm.register_event_listener(text, interval) to bpm_admin, bpm_designer, bpm_user, bpm_engine;
grant execute on function bpm.correlate_message(text, text, jsonb, interval, text) to bpm_admin, bpm_user, bpm_engine;
grant execute on function bpm.evaluate_conditions(jsonb, text) to bpm_admin, bpm_user, bpm_engine;
grant execute on function bpm.broadcast_signal(text, jsonb) to bpm_admin, bpm_user, bpm_engine;
grant execute on function bpm.fire_timer(uuid) to bpm_admin, bpm_engine;
grant execute on function bpm.fire_due_timers(uuid, int) to bpm_admin, bpm_engine;
grant execute on function bpm.deliver_deferred(uuid) to bpm_admin, bpm_engine;
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
--! Included elements/multi_instance.sql
-- Multi-instance activities. Entering the activity creates its body (a scope
-- instance: activity row type multiInstanceBody, token kind body) whose data
-- is the loop state: n (instances), next (index of the next inner instance),
-- active, completed, items (the input collection), el (element variable),
-- inner ({inner activity instance id: loopCounter}), out ({loopCounter:
-- output element}). Inner instances enter the activity itself, inside the
-- body; when one completes the body counts it, evaluates the completion
-- condition, starts the next one (sequential) or completes: the remaining
-- inner instances are cancelled, the output collection is written and the
-- token leaves the activity.

create or replace function bpm_private.mi__enter(st bpm_private.run_state, graph jsonb, node jsonb, id uuid)
returns bpm_private.run_state
language plpgsql
volatile
set search_path = ''
as $$
declare
  v_loop jsonb := node -> 'loop';
  v_el text := node ->> 'id';
  v_items jsonb;
  v_n int;
  v_count int;
  v_kind text;
begin
  if v_loop ? 'collection' then
    v_items := bpm_private.value__eval(v_loop -> 'collection', st.variables, v_el);
    if pg_catalog.jsonb_typeof(v_items) is distinct from 'array' then
      raise exception 'the multi-instance collection of element % is not a list (it is %)', v_el, coalesce(pg_catalog.jsonb_typeof(v_items), 'missing')
        using errcode = 'BP310';
    end if;
    v_n := pg_catalog.jsonb_array_length(v_items);
  else
    v_items := bpm_private.value__eval(v_loop -> 'cardinality', st.variables, v_el);
    if pg_catalog.jsonb_typeof(v_items) = 'string' and v_items #>> '{}' ~ '^\s*\d+\s*$' then
      v_items := pg_catalog.to_jsonb(pg_catalog.btrim(v_items #>> '{}')::int);
    end if;
    if pg_catalog.jsonb_typeof(v_items) is distinct from 'number' or (v_items #>> '{}')::numeric < 0
       or (v_items #>> '{}')::numeric <> pg_catalog.trunc((v_items #>> '{}')::numeric) then
      raise exception 'the multi-instance cardinality of element % is not a whole number ≥ 0 (it is %)', v_el, coalesce(v_items::text, 'missing')
        using errcode = 'BP310';
    end if;
    v_n := (v_items #>> '{}')::int;
    v_items := null;
  end if;
  if v_n > 10000 then
    raise exception 'the multi-instance activity % would start % instances; at most 10000 are allowed', v_el, v_n using errcode = 'BP310';
  end if;
  st.a_type[pg_catalog.array_position(st.a_id, id)] := 'multiInstanceBody';
  if v_n = 0 then
    -- nothing to do: the activity is skipped (an empty output collection)
    st.a_state[pg_catalog.array_position(st.a_id, id)] := 'completed';
    if v_loop ->> 'outputCollection' is not null then
      st := bpm_private.scope__set_variables(st, st.cur_scope, pg_catalog.jsonb_build_object(v_loop ->> 'outputCollection', '[]'::jsonb));
    end if;
    return bpm_private.node__leave(st, graph, node);
  end if;
  st := bpm_private.scope__add(st, id, v_el, 'body', pg_catalog.jsonb_build_object('n', v_n, 'next', 0, 'active', 0, 'completed', 0,
    'items', v_items, 'el', v_loop -> 'elementVariable', 'inner', '{}'::jsonb, 'out', '{}'::jsonb));
  if bpm_private.node__has_subscriptions(graph, node) then
    st := bpm_private.boundary__arm(st, graph, node, id);
  end if;
  -- the endless-loop guard (run__drain) allows 50 more automatic steps per
  -- inner instance, up to 500,000 more per call, the first time the activity
  -- is entered in its scope in this call (a cycle through it gains nothing)
  if (select pg_catalog.count(*) from unnest(st.a_el, st.a_scope, st.a_type) as a(el, scope, typ)
      where a.el = v_el and a.typ = 'multiInstanceBody' and a.scope is not distinct from st.cur_scope) = 1 then
    st.step_credit := least(coalesce(st.step_credit, 0) + v_n * 50, 500000);
  end if;
  st.cur_scope := id;
  v_kind := case when not (v_loop ->> 'sequential')::boolean then bpm_private.mi__task_kind(node) end;
  if v_kind is not null then
    return bpm_private.mi__start_tasks(st, node, id, v_n, v_kind);
  end if;
  v_count := case when (v_loop ->> 'sequential')::boolean then 1 else v_n end;
  for v_i in 1 .. v_count loop
    st := bpm_private.run__push(st, v_el, null);
  end loop;
  return st;
end;
$$;
comment on function bpm_private.mi__enter(bpm_private.run_state, jsonb, jsonb, uuid) is E'A token enters a multi-instance activity: its body starts every inner instance (parallel) or the first (sequential); an empty collection skips the activity (BP310 for a collection that is not a list).';

-- The wait state kind (userTask, externalTask) of a task whose parallel
-- inner instances are created at once (mi__start_tasks): every user or
-- external task but one with an asynchronous continuation before it (each
-- inner instance then waits for its own job); null for any other activity.
create or replace function bpm_private.mi__task_kind(node jsonb)
returns text
language plpgsql
immutable
set search_path = ''
as $$
begin
  -- (plpgsql, not sql: a non-inlined sql function is planned again in every transaction)
  return case
    when coalesce((node ->> 'asyncBefore')::boolean, false) then null
    when node ->> 'type' = 'userTask' then 'userTask'
    when coalesce(node ->> 'topic', '') <> '' then 'externalTask'
  end;
end;
$$;
comment on function bpm_private.mi__task_kind(jsonb) is E'userTask or externalTask for a task whose parallel inner instances are created at once (mi__start_tasks), else null.';

-- The names of the variables the expressions of a task read when it is
-- created: the root of every compiled path ($."name", compiler/expression.ts)
-- outside its loop characteristics and output mappings (evaluated later), and
-- the targets of nested input mappings (io__map reads them by name). It may
-- name more (a string that looks like a path), never fewer; null when a name
-- is escaped in a path or an expression is a FEEL tree (then every variable
-- counts).
create or replace function bpm_private.node__variable_refs(node jsonb)
returns text[]
language plpgsql
immutable
set search_path = ''
as $$
declare
  v_refs text[];
begin
  if pg_catalog.jsonb_path_exists(node - 'loop' - 'outputs', 'strict $.**.tree') then
    -- a FEEL tree (feel__eval) reads names, not paths: every variable counts
    return null;
  end if;
  v_refs := array(
    select distinct m[1]
    from pg_catalog.jsonb_path_query(node - 'loop' - 'outputs', 'strict $.**') s(v)
    cross join lateral pg_catalog.regexp_matches(s.v #>> '{}', '\$\."((?:[^"\\]|\\.)*)"', 'g') m
    where pg_catalog.jsonb_typeof(s.v) = 'string');
  if exists (select from unnest(v_refs) r where pg_catalog.strpos(r, E'\\') > 0) then
    return null;
  end if;
  return v_refs || array(select m ->> 'target' from pg_catalog.jsonb_array_elements(coalesce(node -> 'inputs', '[]')) m where m ? 'path');
end;
$$;
comment on function bpm_private.node__variable_refs(jsonb) is E'The variables the expressions of a task read when it is created (path roots outside its loop and output mappings, nested input mapping targets; possibly more, never fewer); null when it cannot tell.';

-- The inner instances of a parallel multi-instance task, created at once
-- instead of one queued token each: their history rows, their wait states
-- with what each sees stored as its locals (task__locals: the scopes'
-- locals, its loopCounter and element variable, its input mappings), their
-- deadlines and loop numbers (0 .. n-1, in creation order), as run__drain
-- would make them one by one. Attributes (assignee, candidates, dates,
-- priority, form defaults, input mappings) are evaluated per inner instance
-- over the variables their expressions read (node__variable_refs) plus the
-- loop variables, so each costs the same whatever the size of the
-- collection; a task with none is built once.
create or replace function bpm_private.mi__start_tasks(st bpm_private.run_state, node jsonb, body_id uuid, n int, kind text)
returns bpm_private.run_state
language plpgsql
volatile
set search_path = ''
as $$
declare
  v_el text := node ->> 'id';
  v_ids uuid[] := array(select bpm_private.uuid_v7() from pg_catalog.generate_series(1, n));
  v_pos int := pg_catalog.array_position(st.l_id, body_id);
  v_body jsonb := st.l_data[v_pos];
  v_items jsonb := v_body -> 'items';
  v_seen jsonb := bpm_private.scope__variables(st, body_id, null);
  -- what every inner instance sees beyond the instance's variables, before its loop variables
  v_locals jsonb := coalesce(bpm_private.task__locals(v_seen, st.variables), '{}');
  v_static boolean := not node ? 'inputs' and case kind
    when 'userTask' then coalesce(node -> 'userTask', '{}') = '{}' and node -> 'taskEscalation' is null
    else not coalesce(node -> 'taskPriority' ? 'expr', false) and not node ? 'topicExpr' end;
  v_refs text[];
  v_data jsonb[];
  v_static_data jsonb;
begin
  if v_static then
    v_static_data := case kind when 'userTask' then bpm_private.user_task__create(node, null) else bpm_private.external_task__create(node, null) end;
  else
    v_refs := bpm_private.node__variable_refs(node);
    if v_refs is not null then
      v_seen := coalesce((select pg_catalog.jsonb_object_agg(e.key, e.value) from pg_catalog.jsonb_each(v_seen) e where e.key = any(v_refs)), '{}');
    end if;
  end if;
  v_data := array(
    -- (task__locals inlined: a function call per inner instance costs more than the rest of its row)
    select t.data || pg_catalog.jsonb_build_object('locals', (select pg_catalog.jsonb_object_agg(e.key, e.value)
      from pg_catalog.jsonb_each(v_locals || l.loop || t.inputs) e
      where (not st.variables ? e.key or st.variables -> e.key is distinct from e.value)
        and e.key not in ('nrOfActiveInstances', 'nrOfCompletedInstances')))
    from pg_catalog.generate_series(1, n) k
    -- loop variables as the k-th inner instance sees them when it is created alone
    cross join lateral (select pg_catalog.jsonb_build_object('loopCounter', k - 1)
      || case when v_body ->> 'el' is not null then pg_catalog.jsonb_build_object(v_body ->> 'el', coalesce(v_items -> (k - 1), 'null'::jsonb)) else '{}' end
      as loop) l
    cross join lateral (select v_seen || pg_catalog.jsonb_build_object('nrOfActiveInstances', k) || l.loop as vars) v
    cross join lateral (select case when node ? 'inputs' then bpm_private.io__map(node -> 'inputs', v.vars, v_el) else '{}' end as inputs) i
    cross join lateral (select case
      when v_static then v_static_data
      when kind = 'userTask' then bpm_private.user_task__create(node, v.vars || i.inputs)
      else bpm_private.external_task__create(node, v.vars || i.inputs) end as data, i.inputs) t
    order by k);
  st.a_id := st.a_id || v_ids;
  st.a_el := st.a_el || pg_catalog.array_fill(v_el, array[n]);
  st.a_type := st.a_type || pg_catalog.array_fill(node ->> 'type', array[n]);
  st.a_state := st.a_state || pg_catalog.array_fill('active'::text, array[n]);
  st.a_scope := st.a_scope || pg_catalog.array_fill(body_id, array[n]);
  st.w_id := st.w_id || v_ids;
  st.w_el := st.w_el || pg_catalog.array_fill(v_el, array[n]);
  st.w_kind := st.w_kind || pg_catalog.array_fill(kind, array[n]);
  st.w_flow := st.w_flow || pg_catalog.array_fill(null::text, array[n]);
  st.w_data := st.w_data || v_data;
  if kind = 'userTask' and not v_static then
    -- due, follow-up and escalation jobs (as run__drain queues them)
    st.p_data := st.p_data || array(
      select pg_catalog.jsonb_build_object('kind', 'deadline', 'task', u.id, 'data', u.data - 'locals')
      from unnest(v_ids, v_data) as u(id, data) where u.data ? 'deadline');
  end if;
  st.l_data[v_pos] := st.l_data[v_pos] || pg_catalog.jsonb_build_object('next', n, 'active', n,
    'inner', (select pg_catalog.jsonb_object_agg(u.id::text, u.k - 1) from unnest(v_ids) with ordinality as u(id, k)));
  return st;
end;
$$;
comment on function bpm_private.mi__start_tasks(bpm_private.run_state, jsonb, uuid, int, text) is E'Creates every inner instance of a parallel multi-instance user or external task at once, each with its attributes evaluated.';

-- An inner instance completed (task left, subprocess or called instance ended).
create or replace function bpm_private.mi__inner_done(st bpm_private.run_state, graph jsonb, node jsonb, body_id uuid, inner_id uuid)
returns bpm_private.run_state
language plpgsql
volatile
set search_path = ''
as $$
declare
  v_loop jsonb := node -> 'loop';
  v_el text := node ->> 'id';
  v_pos int := pg_catalog.array_position(st.l_id, body_id);
  v_data jsonb := st.l_data[v_pos];
  v_k text := v_data -> 'inner' ->> inner_id::text;
  v_vars jsonb;
  v_done boolean;
begin
  if v_k is null then
    -- not (any more) an inner instance of this body: nothing to count
    return st;
  end if;
  v_data := v_data || pg_catalog.jsonb_build_object('active', (v_data ->> 'active')::int - 1,
    'completed', (v_data ->> 'completed')::int + 1);
  st := bpm_private.scope__set(st, body_id, v_data);
  -- the inner instance's variables, counters updated
  v_vars := bpm_private.scope__variables(st, body_id, inner_id);
  if node ? 'compensation' then
    -- kept on its history row for its compensation handler (compensation__inner_instances)
    st.p_data := st.p_data || pg_catalog.jsonb_build_object('kind', 'innerLocals', 'activity', inner_id,
      'vars', coalesce(bpm_private.task__locals(v_vars, st.variables), '{}'::jsonb) - 'nrOfInstances');
  end if;
  if v_loop -> 'outputElement' is not null then
    v_data := pg_catalog.jsonb_set(v_data, array['out', v_k],
      coalesce(bpm_private.value__eval(v_loop -> 'outputElement', v_vars, v_el), 'null'::jsonb));
  end if;
  v_data := pg_catalog.jsonb_set(v_data, '{inner}', (v_data -> 'inner') - inner_id::text);
  st := bpm_private.scope__set(st, body_id, v_data);
  v_done := (v_data ->> 'completed')::int >= (v_data ->> 'n')::int
    or (v_loop -> 'completionCondition' is not null and bpm_private.expression__test(v_loop -> 'completionCondition', v_vars, v_el));
  if not v_done then
    if (v_loop ->> 'sequential')::boolean then
      st.cur_scope := body_id;
      st := bpm_private.run__push(st, v_el, null);
    end if;
    return st;
  end if;
  return bpm_private.mi__complete(st, graph, node, body_id);
end;
$$;
comment on function bpm_private.mi__inner_done(bpm_private.run_state, jsonb, jsonb, uuid, uuid) is E'Counts a completed inner instance, records its output element, starts the next (sequential) or completes the body.';

create or replace function bpm_private.mi__complete(st bpm_private.run_state, graph jsonb, node jsonb, body_id uuid)
returns bpm_private.run_state
language plpgsql
volatile
set search_path = ''
as $$
declare
  v_loop jsonb := node -> 'loop';
  v_pos int := pg_catalog.array_position(st.l_id, body_id);
  v_data jsonb := st.l_data[v_pos];
  v_parent uuid := st.l_parent[v_pos];
  v_inner uuid[];
begin
  -- inner instances still running are cancelled (completion condition)
  v_inner := array(select k::uuid from pg_catalog.jsonb_object_keys(v_data -> 'inner') k);
  if pg_catalog.cardinality(v_inner) > 0 then
    st := bpm_private.scope__cancel(st, v_inner);
  end if;
  -- queued inner instances that have not started yet
  for v_i in st.q_pos .. pg_catalog.cardinality(st.q_node) loop
    if st.q_scope[v_i] = body_id then
      st.q_node[v_i] := null;
    end if;
  end loop;
  st := bpm_private.scope__remove(st, body_id);
  st := bpm_private.subscriptions__drop(st, array[body_id]);
  st := bpm_private.activity__end(st, array[body_id], 'completed');
  st.cur_scope := v_parent;
  if v_loop ->> 'outputCollection' is not null then
    -- completed inner instances' outputs, in input order
    st := bpm_private.scope__set_variables(st, v_parent, pg_catalog.jsonb_build_object(v_loop ->> 'outputCollection',
      coalesce((select pg_catalog.jsonb_agg(o.value order by o.key::int) from pg_catalog.jsonb_each(v_data -> 'out') o), '[]'::jsonb)));
  end if;
  return bpm_private.node__leave(st, graph, node);
end;
$$;
comment on function bpm_private.mi__complete(bpm_private.run_state, jsonb, jsonb, uuid) is E'Completes a multi-instance body: cancels inner instances still running, writes the output collection, and the token leaves the activity.';
--! EndIncluded elements/multi_instance.sql
