--! Previous: sha1:e088456ae33fee396aa6f56718adf2d3e6b83890
--! Hash: sha1:af596119a3b00431eec47a711fa8c3528b880097
--! Message: Decision data error message

-- A decision table's data error names the decision (and the element) once
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
  -- label: "decision <key>", or "<element> (decision <key>)" for a business rule task
  raise exception '% cannot be evaluated: %', label, sqlerrm using errcode = 'BP303';
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
