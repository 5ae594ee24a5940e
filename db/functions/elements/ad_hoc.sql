-- Ad-hoc subprocesses: an embedded subprocess (a scope, subprocess.sql)
-- whose activities have no start event. Entering it activates the elements
-- its activeElements expression lists (compiler/graph.ts AdHocSpec); more
-- are activated with bpm.activate_ad_hoc_activities. Each activation starts
-- a token at the element in the subprocess instance. When a path inside
-- ends, its completion condition decides: true completes it (cancelling
-- what is still active, or with cancelRemaining false waiting for it: the
-- scope's data then holds completing: true); false keeps it waiting for more
-- activations. Without a condition it completes when nothing is active in
-- it any more.

-- The element ids an activeElements value lists (BP316 unless a JSON list of
-- ids of elements the subprocess can activate).
create or replace function bpm_private.ad_hoc__elements(node jsonb, elements jsonb)
returns text[]
language plpgsql
immutable
set search_path = ''
as $$
declare
  v_bad jsonb;
begin
  if elements is null or pg_catalog.jsonb_typeof(elements) = 'null' then
    return '{}';
  end if;
  if pg_catalog.jsonb_typeof(elements) <> 'array' then
    raise exception 'the activeElementsCollection of ad-hoc subprocess % is not a list of element ids (it is %)', node ->> 'id', elements
      using errcode = 'BP316';
  end if;
  select e into v_bad from pg_catalog.jsonb_array_elements(elements) e
  where pg_catalog.jsonb_typeof(e) <> 'string' or not (node -> 'adHoc' -> 'activatable') ? (e #>> '{}')
  limit 1;
  if found then
    raise exception 'the activeElementsCollection of ad-hoc subprocess % lists %, which is not an element it can activate (it can activate %)',
      node ->> 'id', v_bad, node -> 'adHoc' -> 'activatable' using errcode = 'BP316';
  end if;
  return array(select pg_catalog.jsonb_array_elements_text(elements));
end;
$$;
comment on function bpm_private.ad_hoc__elements(jsonb, jsonb) is E'The element ids an ad-hoc subprocess''s activeElementsCollection lists (BP316 unless a list of ids of elements it can activate).';

-- Activates elements in an ad-hoc subprocess instance: a token enters each.
create or replace function bpm_private.ad_hoc__activate(st bpm_private.run_state, scope_id uuid, elements text[])
returns bpm_private.run_state
language plpgsql
immutable
set search_path = ''
as $$
begin
  st.cur_scope := scope_id;
  st.q_node := st.q_node || elements;
  st.q_flow := st.q_flow || pg_catalog.array_fill(null::text, array[pg_catalog.cardinality(elements)]);
  st.q_scope := st.q_scope || pg_catalog.array_fill(scope_id, array[pg_catalog.cardinality(elements)]);
  return st;
end;
$$;
comment on function bpm_private.ad_hoc__activate(bpm_private.run_state, uuid, text[]) is E'Queues a token entering each element in an ad-hoc subprocess instance.';

-- A token enters an ad-hoc subprocess: its instance opens (locals, boundary
-- events, event subprocesses) and its activeElements are activated.
create or replace function bpm_private.ad_hoc__enter(st bpm_private.run_state, graph jsonb, node jsonb, id uuid)
returns bpm_private.run_state
language plpgsql
volatile
set search_path = ''
as $$
begin
  st := bpm_private.subprocess__open(st, graph, node, id);
  st.a_type[pg_catalog.array_position(st.a_id, id)] := 'adHocSubProcess';
  if node -> 'adHoc' ? 'activeElements' then
    st := bpm_private.ad_hoc__activate(st, id, bpm_private.ad_hoc__elements(node,
      bpm_private.value__eval(node -> 'adHoc' -> 'activeElements', bpm_private.scope__variables(st, id, null), node ->> 'id')));
  end if;
  return st;
end;
$$;
comment on function bpm_private.ad_hoc__enter(bpm_private.run_state, jsonb, jsonb, uuid) is E'A token enters an ad-hoc subprocess: its instance opens and the elements its activeElementsCollection lists are activated.';

-- A path in an ad-hoc subprocess instance ended (run__settle): it completes
-- when its completion condition holds (what is still active is cancelled,
-- or with cancelRemaining false waited for), or without a condition when
-- nothing is active in it any more; otherwise it waits.
create or replace function bpm_private.ad_hoc__check(st bpm_private.run_state, graph jsonb, scope_id uuid)
returns bpm_private.run_state
language plpgsql
volatile
set search_path = ''
as $$
declare
  v_pos int := pg_catalog.array_position(st.l_id, scope_id);
  v_node jsonb := graph -> 'nodes' -> st.l_el[v_pos];
  v_spec jsonb := v_node -> 'adHoc';
  v_empty boolean;
begin
  if v_spec ? 'completionCondition' and not coalesce((st.l_data[v_pos] ->> 'completing')::boolean, false) then
    st.cur_scope := scope_id;
    if not bpm_private.expression__test(v_spec -> 'completionCondition', bpm_private.scope__variables(st, scope_id, null), v_node ->> 'id') then
      return st;
    end if;
    v_empty := bpm_private.scope__is_empty(st, scope_id);
    if not v_empty and (v_spec ->> 'cancelRemaining')::boolean then
      st := bpm_private.scope__cancel(st, bpm_private.scope__active_children(st, scope_id, null));
      v_empty := true;
    elsif not v_empty then
      -- it completes once the active elements have ended
      return bpm_private.scope__set(st, scope_id, st.l_data[v_pos] || '{"completing": true}');
    end if;
  else
    v_empty := bpm_private.scope__is_empty(st, scope_id);
  end if;
  if not v_empty then
    return st;
  end if;
  return bpm_private.subprocess__complete(st, graph, scope_id);
end;
$$;
comment on function bpm_private.ad_hoc__check(bpm_private.run_state, jsonb, uuid) is E'Completes an ad-hoc subprocess instance in which a path ended when its completion condition holds (cancelling or awaiting what is still active), or without one when nothing is active in it any more.';

create or replace function bpm.activate_ad_hoc_activities(ad_hoc_instance_id uuid, element_ids text[])
returns bpm.process_instance
language plpgsql
volatile
security definer
set search_path = ''
set plan_cache_mode = force_generic_plan
as $$
declare
  v_tenant text := bpm_private.require_context(array['bpm_admin', 'bpm_engine'], 'activate ad-hoc activities');
  v_activity record;
  v_state text;
  v_definition record;
  v_instance bpm.process_instance;
  v_graph jsonb;
  v_node jsonb;
  v_element text;
  st bpm_private.run_state;
begin
  -- ===== GUARD the arguments, LOCK the instance, GUARD the subprocess instance's state
  if pg_catalog.cardinality(element_ids) is null or pg_catalog.cardinality(element_ids) = 0 or pg_catalog.array_position(element_ids, null) is not null then
    raise exception 'invalid argument: element_ids must be a non-empty list of element ids without nulls' using errcode = 'BP401';
  end if;
  select a.instance_id, a.element_id into v_activity from bpm.activity_instance a where a.tenant_id = v_tenant and a.id = ad_hoc_instance_id;
  if not found then
    raise exception 'activity instance % not found', ad_hoc_instance_id using errcode = 'BP111';
  end if;
  v_instance := bpm_private.instance__lock(v_tenant, v_activity.instance_id);
  perform bpm_private.instance__require_active(v_instance, 'activate ad-hoc activities in it');
  select d.graph, d.inclusive_joins into v_definition from bpm.process_definition d where d.tenant_id = v_tenant and d.id = v_instance.definition_id;
  v_graph := bpm_private.graph__in_memory(v_definition.graph);
  v_node := v_graph -> 'nodes' -> v_activity.element_id;
  -- (its state as of the lock)
  select a.state into v_state from bpm.activity_instance a where a.tenant_id = v_tenant and a.id = ad_hoc_instance_id;
  if not coalesce(v_node ? 'adHoc', false) or v_state <> 'active' then
    raise exception 'activity instance % (element %) is not an active ad-hoc subprocess (it is % %)', ad_hoc_instance_id, v_activity.element_id,
      v_state, case when v_node ? 'adHoc' then 'adHocSubProcess' else coalesce(v_node ->> 'type', 'not in the process graph') end using errcode = 'BP222';
  end if;
  foreach v_element in array element_ids loop
    if v_graph -> 'nodes' -> v_element is null then
      raise exception 'cannot activate %: element % is not in the process graph', v_element, v_element using errcode = 'BP112';
    elsif not (v_node -> 'adHoc' -> 'activatable') ? v_element then
      raise exception 'cannot activate %: it is not an element ad-hoc subprocess % can activate (it can activate %)', v_element, v_node ->> 'id',
        v_node -> 'adHoc' -> 'activatable' using errcode = 'BP414';
    end if;
  end loop;
  st := bpm_private.run__begin(v_tenant, v_instance.id, v_instance.variables, false, v_definition.inclusive_joins);
  st.business_key := v_instance.business_key;
  st := bpm_private.scope__load(st, ad_hoc_instance_id);
  if coalesce((st.l_data[pg_catalog.array_position(st.l_id, ad_hoc_instance_id)] ->> 'completing')::boolean, false) then
    raise exception 'ad-hoc subprocess % (activity instance %) is completing (its completion condition held): nothing more can be activated in it',
      v_node ->> 'id', ad_hoc_instance_id using errcode = 'BP222';
  end if;
  -- ===== APPLY: a token enters each element, in the subprocess instance, in one run
  st := bpm_private.ad_hoc__activate(st, ad_hoc_instance_id, element_ids);
  st := bpm_private.run__drain(st, v_graph);
  return bpm_private.run__finish(st, v_instance);
end;
$$;
comment on function bpm.activate_ad_hoc_activities(uuid, text[]) is E'Activates elements of an active ad-hoc subprocess instance (its activity instance id): a token enters each listed element (an element directly inside without incoming sequence flows; one may be listed several times), in one transaction, and runs until it waits. Errors: BP401 empty list or a null element, BP111 no such activity instance in the tenant, BP201/BP202 instance ended or suspended, BP222 not an active ad-hoc subprocess (or one completing: its completion condition held), BP112 an element not in the process, BP414 an element the subprocess cannot activate. Roles: bpm_admin, bpm_engine.';
