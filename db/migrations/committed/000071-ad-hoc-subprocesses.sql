--! Previous: sha1:ebd0f9eec854cff82ab233dd8e8afed8c7d5e834
--! Hash: sha1:d8951d569f53e90315150c8858fd077c7336f613
--! Message: Ad-hoc subprocesses

-- Ad-hoc subprocesses (bpmn:adHocSubProcess): activities activated on entry
-- (zeebe:adHoc activeElementsCollection) or by bpm.activate_ad_hoc_activities,
-- completed by their completion condition.
--! Included elements/ad_hoc.sql
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
  v_empty boolean := bpm_private.scope__is_empty(st, scope_id);
begin
  if v_spec ? 'completionCondition' and not coalesce((st.l_data[v_pos] ->> 'completing')::boolean, false) then
    st.cur_scope := scope_id;
    if not bpm_private.expression__test(v_spec -> 'completionCondition', bpm_private.scope__variables(st, scope_id, null), v_node ->> 'id') then
      return st;
    end if;
    if not v_empty and (v_spec ->> 'cancelRemaining')::boolean then
      st := bpm_private.scope__cancel(st, bpm_private.scope__active_children(st, scope_id, null));
      v_empty := true;
    elsif not v_empty then
      -- it completes once the active elements have ended
      return bpm_private.scope__set(st, scope_id, st.l_data[v_pos] || '{"completing": true}');
    end if;
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
  select a.state into v_activity from bpm.activity_instance a where a.tenant_id = v_tenant and a.id = ad_hoc_instance_id;
  if not (v_node ? 'adHoc') or v_activity.state <> 'active' then
    raise exception 'activity instance % (element %) is not an active ad-hoc subprocess (it is % %)', ad_hoc_instance_id, v_node ->> 'id',
      v_activity.state, case when v_node ? 'adHoc' then 'adHocSubProcess' else v_node ->> 'type' end using errcode = 'BP222';
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
--! EndIncluded elements/ad_hoc.sql
--! Included elements/subprocess.sql
-- Embedded subprocess: a scope. Entering it creates the scope instance (its
-- input mappings become its locals), arms its boundary events and event
-- subprocesses and starts its none start event; it completes when nothing
-- runs in it any more (its output mappings go to the enclosing scope) and
-- the token leaves it over its outgoing flows.

create or replace function bpm_private.subprocess__enter(st bpm_private.run_state, graph jsonb, node jsonb, id uuid)
returns bpm_private.run_state
language plpgsql
volatile
set search_path = ''
as $$
begin
  if node ? 'adHoc' then
    -- no start event: its activities are activated (ad_hoc.sql)
    return bpm_private.ad_hoc__enter(st, graph, node, id);
  end if;
  st := bpm_private.subprocess__open(st, graph, node, id);
  return bpm_private.run__push(st, node ->> 'start', null);
end;
$$;
comment on function bpm_private.subprocess__enter(bpm_private.run_state, jsonb, jsonb, uuid) is E'A token enters an embedded subprocess: a new scope instance with its locals, boundary events and event subprocesses; its start event runs (an ad-hoc subprocess: its active elements are activated).';

-- A new instance of a subprocess (its activity row is the caller's): its
-- locals, boundary events and event subprocesses; the run is then in it.
create or replace function bpm_private.subprocess__open(st bpm_private.run_state, graph jsonb, node jsonb, id uuid)
returns bpm_private.run_state
language plpgsql
volatile
set search_path = ''
as $$
declare
  v_el text := node ->> 'id';
  v_locals jsonb := '{}';
  v_pos int := pg_catalog.array_position(st.l_id, st.cur_scope);
  v_inner boolean := v_pos is not null and st.l_kind[v_pos] = 'body' and st.l_el[v_pos] = v_el;
begin
  if node ? 'inputs' then
    -- st.variables: what the entering token sees
    v_locals := bpm_private.io__map(node -> 'inputs', st.variables, v_el);
  end if;
  st := bpm_private.scope__add(st, id, v_el, 'scope', pg_catalog.jsonb_build_object('vars', v_locals));
  if not v_inner and bpm_private.node__has_subscriptions(graph, node) then
    st := bpm_private.boundary__arm(st, graph, node, id);
  end if;
  st.cur_scope := id;
  if node ? 'eventSubprocesses' then
    st := bpm_private.event_subprocess__arm(st, graph, node -> 'eventSubprocesses', id);
  end if;
  return st;
end;
$$;
comment on function bpm_private.subprocess__open(bpm_private.run_state, jsonb, jsonb, uuid) is E'Opens a subprocess instance (scope, locals, boundary events, event subprocesses) and makes it the run''s current scope.';

create or replace function bpm_private.subprocess__complete(st bpm_private.run_state, graph jsonb, scope_id uuid)
returns bpm_private.run_state
language plpgsql
volatile
set search_path = ''
as $$
declare
  v_pos int := pg_catalog.array_position(st.l_id, scope_id);
  v_el text := st.l_el[v_pos];
  v_parent uuid := st.l_parent[v_pos];
  v_node jsonb := graph -> 'nodes' -> v_el;
  v_ppos int := pg_catalog.array_position(st.l_id, v_parent);
  v_out jsonb;
begin
  if v_node ->> 'type' in ('intermediateThrowEvent', 'endEvent') then
    -- the scope of a compensation: its handler ended, the next one runs
    return bpm_private.compensation__next(st, graph, scope_id);
  end if;
  if v_node ? 'outputs' then
    v_out := bpm_private.io__map(v_node -> 'outputs', bpm_private.scope__variables(st, scope_id, null), v_el);
  end if;
  if bpm_private.node__compensated_by_event_subprocess(graph, v_node) then
    -- kept on its history row for its compensation event subprocess (compensation__completed)
    st.p_data := st.p_data || pg_catalog.jsonb_build_object('kind', 'innerLocals', 'activity', scope_id,
      'vars', coalesce(bpm_private.task__locals(bpm_private.scope__variables(st, scope_id, null), st.variables), '{}'::jsonb) - 'nrOfInstances');
  end if;
  st := bpm_private.scope__remove(st, scope_id);
  st := bpm_private.subscriptions__drop(st, array[scope_id]);
  st := bpm_private.activity__end(st, array[scope_id], 'completed');
  st.cur_scope := v_parent;
  if v_out is not null then
    st := bpm_private.scope__set_variables(st, v_parent, v_out);
  end if;
  if v_ppos is not null and st.l_kind[v_ppos] = 'body' and st.l_el[v_ppos] = v_el then
    -- an inner instance of a multi-instance subprocess
    return bpm_private.mi__inner_done(st, graph, v_node, v_parent, scope_id);
  end if;
  return bpm_private.node__leave(st, graph, v_node);
end;
$$;
comment on function bpm_private.subprocess__complete(bpm_private.run_state, jsonb, uuid) is E'A subprocess instance in which nothing runs any more completes: outputs are mapped and its token leaves it (a compensation scope: its next handler runs).';

create or replace function bpm_private.node__compensated_by_event_subprocess(graph jsonb, node jsonb)
returns boolean
language plpgsql
immutable
set search_path = ''
as $$
begin
  return node ? 'compensation' and coalesce((graph -> 'nodes' -> (node ->> 'compensation') ->> 'triggeredByEvent')::boolean, false);
end;
$$;
comment on function bpm_private.node__compensated_by_event_subprocess(jsonb, jsonb) is E'Whether a subprocess''s compensation handler is its compensation event subprocess.';
--! EndIncluded elements/subprocess.sql
--! Included engine/scope_cancel.sql
-- Cancelling activity instances with everything inside them: an
-- interrupting boundary event on a subprocess, multi-instance body or call
-- activity, an interrupting event subprocess, a completion condition, a
-- terminate end event inside a subprocess, an error caught outside.

-- The active activity instances under the given ones (and they themselves),
-- stored and of this run.
create or replace function bpm_private.activity__subtree(st bpm_private.run_state, ids uuid[])
returns uuid[]
language plpgsql
stable
set search_path = ''
as $$
declare
  v_ids uuid[];
  v_n int;
begin
  -- the given ones that are active: of this run, and stored with what runs in them
  v_ids := array(select u.a from unnest(st.a_id, st.a_state) as u(a, state) where u.state = 'active' and u.a = any(ids));
  if not st.is_new then
    with recursive tree(id) as (
      select a.id from bpm.activity_instance a
      where a.tenant_id = st.tenant_id and a.id = any(ids) and a.state = 'active' and not (a.id = any(st.e_id))
      union
      select a.id from bpm.activity_instance a join tree t on a.scope_id = t.id
      where a.tenant_id = st.tenant_id and a.state = 'active' and not (a.id = any(st.e_id))
    )
    select v_ids || coalesce(array_agg(t.id), '{}') into v_ids from tree t where not (t.id = any(st.a_id));
  end if;
  -- rows of this run (appended in order: a scope comes before what runs in it)
  loop
    v_n := pg_catalog.cardinality(v_ids);
    for v_i in 1 .. pg_catalog.cardinality(st.a_id) loop
      if st.a_state[v_i] = 'active' and st.a_scope[v_i] = any(v_ids) and not (st.a_id[v_i] = any(v_ids)) then
        v_ids := v_ids || st.a_id[v_i];
      end if;
    end loop;
    exit when pg_catalog.cardinality(v_ids) = v_n;
  end loop;
  return v_ids;
end;
$$;
comment on function bpm_private.activity__subtree(bpm_private.run_state, uuid[]) is E'Active activity instances in and under the given ones.';

create or replace function bpm_private.scope__cancel(st bpm_private.run_state, ids uuid[])
returns bpm_private.run_state
language plpgsql
volatile
set search_path = ''
as $$
declare
  v_all uuid[] := bpm_private.activity__subtree(st, ids);
  v_children uuid[] := '{}';
  v_child bpm.process_instance;
  v_ev record;
begin
  if pg_catalog.cardinality(v_all) = 0 then
    return st;
  end if;
  if not st.is_new then
    -- stored waits: tokens (with their scopes and calls), tasks
    for v_ev in
      with tokens as (
        delete from bpm_private.token t where t.tenant_id = st.tenant_id and t.id = any(v_all)
        returning t.id, t.element_id, t.kind, t.data
      ), user_tasks as (
        update bpm.user_task u set state = 'cancelled', completed_at = pg_catalog.now()
        where u.tenant_id = st.tenant_id and u.id = any(v_all) and (u.state = 'open') is true
        returning u.id, u.element_id
      ), external_tasks as (
        update bpm.external_task e set state = 'cancelled', ended_at = pg_catalog.now(), worker_id = null, locked_until = null
        where e.tenant_id = st.tenant_id and e.id = any(v_all) and (e.state = 'open') is true
        returning e.id, e.element_id
      ), incidents as (
        -- incidents that waited on what is cancelled need nobody any more
        update bpm.incident i set resolved_at = pg_catalog.now()
        where i.tenant_id = st.tenant_id and i.instance_id = st.instance_id and (i.resolved_at is null) is true
          and (i.external_task_id = any(v_all)
            or i.id in (select s.incident_id from bpm.event_subscription s
                        where s.tenant_id = st.tenant_id and s.instance_id = st.instance_id and s.token_id = any(v_all))
            or (i.incident_type in ('unhandledBpmnError', 'failedJob')
                and i.element_id in (select t.element_id from tokens t where t.kind in ('incident', 'asyncBefore', 'asyncAfter', 'call'))))
        returning i.id, i.element_id
      )
      select 'taskCancelled' as kind, u.id, u.element_id, null::uuid as child from user_tasks u
      union all select 'externalTaskCancelled', e.id, e.element_id, null from external_tasks e
      union all select 'incidentResolved', i.id, i.element_id, null from incidents i
      union all select null, t.id, t.element_id, (t.data ->> 'child')::uuid from tokens t where t.kind = 'call'
    loop
      if v_ev.kind is not null then
        st := bpm_private.run__event(st, v_ev.kind, v_ev.id, v_ev.element_id);
      elsif v_ev.child is not null then
        v_children := v_children || v_ev.child;
      end if;
    end loop;
    st := bpm_private.activity__end(st, array(select a from unnest(v_all) a where pg_catalog.array_position(st.a_id, a) is null), 'cancelled');
  end if;
  -- waits, queued tokens, scopes and history rows of this run
  st := bpm_private.wait__keep(st, array(select not (w = any(v_all)) from unnest(st.w_id) w));
  for v_i in st.q_pos .. pg_catalog.cardinality(st.q_node) loop
    if st.q_scope[v_i] = any(v_all) then
      st.q_node[v_i] := null;
    end if;
  end loop;
  for v_i in 1 .. pg_catalog.cardinality(st.a_id) loop
    if st.a_id[v_i] = any(v_all) and st.a_state[v_i] = 'active' then
      st.a_state[v_i] := 'cancelled';
    end if;
  end loop;
  for v_i in 1 .. pg_catalog.cardinality(st.l_id) loop
    if st.l_id[v_i] = any(v_all) then
      if st.l_kind[v_i] = 'call' and st.l_state[v_i] = 'new' then
        v_children := v_children || (st.l_data[v_i] ->> 'child')::uuid;
      end if;
      st.l_state[v_i] := 'gone';
    end if;
  end loop;
  st := bpm_private.subscriptions__drop(st, v_all);
  -- called instances end with the activity that called them
  for v_child in
    select * from bpm.process_instance c
    where c.tenant_id = st.tenant_id and c.id = any(v_children) and (c.state in ('active', 'suspended')) is true
    order by c.id for update
  loop
    perform bpm_private.instance__cancel(v_child, 'its call activity was cancelled');
  end loop;
  return st;
end;
$$;
comment on function bpm_private.scope__cancel(bpm_private.run_state, uuid[]) is E'Cancels activity instances and everything running in them: tasks, tokens, scopes, subscriptions, timers, called instances; incidents that waited on them are resolved.';

-- The activity instances active directly in a scope instance (null: at
-- process level), stored and of this run, but one (except_id).
create or replace function bpm_private.scope__active_children(st bpm_private.run_state, scope_id uuid, except_id uuid)
returns uuid[]
language plpgsql
stable
set search_path = ''
as $$
declare
  v_ids uuid[];
begin
  v_ids := array(select u.a from unnest(st.a_id, st.a_scope, st.a_state) as u(a, s, state)
    where u.s is not distinct from scope__active_children.scope_id and u.state = 'active' and u.a is distinct from except_id);
  if not st.is_new then
    v_ids := v_ids || array(select a.id from bpm.activity_instance a
      where a.tenant_id = st.tenant_id and a.instance_id = st.instance_id and a.scope_id is not distinct from scope__active_children.scope_id
        and a.state = 'active' and not (a.id = any(st.e_id)) and not (a.id = any(st.a_id)));
  end if;
  return v_ids;
end;
$$;
comment on function bpm_private.scope__active_children(bpm_private.run_state, uuid, uuid) is E'Active activity instances directly in a scope instance (null: process level), but one.';

-- A terminate end event: at process level the instance ends; inside a
-- subprocess every other token of that subprocess instance is cancelled and
-- the subprocess completes.
create or replace function bpm_private.scope__terminate(st bpm_private.run_state, id uuid)
returns bpm_private.run_state
language plpgsql
volatile
set search_path = ''
as $$
begin
  if st.cur_scope is null then
    return bpm_private.instance__terminate(st);
  end if;
  st := bpm_private.scope__cancel(st, bpm_private.scope__active_children(st, st.cur_scope, id));
  st.c_scope := st.c_scope || st.cur_scope;
  return st;
end;
$$;
comment on function bpm_private.scope__terminate(bpm_private.run_state, uuid) is E'Terminate end event: ends the instance, or (inside a subprocess) cancels the subprocess''s other tokens so it completes.';

-- Whether nothing runs in a scope instance any more.
create or replace function bpm_private.scope__is_empty(st bpm_private.run_state, scope_id uuid)
returns boolean
language plpgsql
stable
set search_path = ''
as $$
begin
  for v_i in 1 .. pg_catalog.cardinality(st.a_id) loop
    if st.a_scope[v_i] = scope_id and st.a_state[v_i] = 'active' then
      return false;
    end if;
  end loop;
  if st.is_new then
    return true;
  end if;
  return not exists (select 1 from bpm.activity_instance a
    where a.tenant_id = st.tenant_id and a.scope_id = scope__is_empty.scope_id and a.state = 'active' and not (a.id = any(st.e_id)));
end;
$$;
comment on function bpm_private.scope__is_empty(bpm_private.run_state, uuid) is E'True when no activity instance is active in the scope instance.';

-- Completes the scopes whose last token ended in this run (run__drain).
create or replace function bpm_private.scope__complete_ended(st bpm_private.run_state, graph jsonb)
returns bpm_private.run_state
language plpgsql
volatile
set search_path = ''
as $$
declare
  v_scopes uuid[] := st.c_scope;
  v_scope uuid;
  v_pos int;
begin
  st.c_scope := '{}';
  foreach v_scope in array v_scopes loop
    v_pos := pg_catalog.array_position(st.l_id, v_scope);
    if v_pos is null then
      st := bpm_private.scope__load(st, v_scope);
      v_pos := pg_catalog.array_position(st.l_id, v_scope);
    end if;
    continue when st.l_state[v_pos] = 'gone' or st.l_kind[v_pos] <> 'scope';
    if graph -> 'nodes' -> st.l_el[v_pos] ? 'adHoc' then
      -- an ad-hoc subprocess completes by its completion condition (ad_hoc.sql)
      st := bpm_private.ad_hoc__check(st, graph, v_scope);
      continue;
    end if;
    continue when not bpm_private.scope__is_empty(st, v_scope);
    st := bpm_private.subprocess__complete(st, graph, v_scope);
  end loop;
  return st;
end;
$$;
comment on function bpm_private.scope__complete_ended(bpm_private.run_state, jsonb) is E'Completes every subprocess instance of the run''s check list in which nothing is active any more.';
--! EndIncluded engine/scope_cancel.sql
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
  elsif graph ->> 'start' is null and pg_catalog.jsonb_array_length(coalesce(graph -> 'eventStarts', '[]')) = 0 then
    v_problem := 'no start node (neither start nor eventStarts)';
  elsif graph ->> 'start' is not null and graph -> 'nodes' -> (graph ->> 'start') is null then
    v_problem := pg_catalog.format('start node %s does not exist', graph ->> 'start');
  elsif exists (select 1 from pg_catalog.jsonb_array_elements_text(coalesce(graph -> 'eventStarts', '[]')) e
                where graph -> 'nodes' -> e -> 'event' is null) then
    v_problem := 'an event start node does not exist or has no event';
  else
    select case
        when coalesce(n.value ->> 'type', '') not in ('startEvent', 'endEvent', 'task', 'manualTask', 'scriptTask', 'userTask', 'serviceTask',
          'sendTask', 'businessRuleTask', 'exclusiveGateway', 'parallelGateway', 'inclusiveGateway', 'boundaryEvent',
          'intermediateCatchEvent', 'intermediateThrowEvent', 'receiveTask', 'eventBasedGateway', 'subProcess', 'callActivity')
          then pg_catalog.format('node %s has unsupported type %s', n.key, coalesce(n.value ->> 'type', '(none)'))
        when n.value ->> 'id' is distinct from n.key
          then pg_catalog.format('node %s has id %s', n.key, coalesce(n.value ->> 'id', '(none)'))
        else pg_catalog.format('node %s lacks its in or out list of flows', n.key)
      end into v_problem
    from pg_catalog.jsonb_each(graph -> 'nodes') n
    where coalesce(n.value ->> 'type', '') not in ('startEvent', 'endEvent', 'task', 'manualTask', 'scriptTask', 'userTask', 'serviceTask',
      'sendTask', 'businessRuleTask', 'exclusiveGateway', 'parallelGateway', 'inclusiveGateway', 'boundaryEvent',
      'intermediateCatchEvent', 'intermediateThrowEvent', 'receiveTask', 'eventBasedGateway', 'subProcess', 'callActivity')
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
      -- scopes: a subprocess starts at its start event (an ad-hoc one has none), nodes live in existing subprocesses
      select case when n.value ->> 'type' = 'subProcess' and not coalesce((n.value ->> 'triggeredByEvent')::boolean, false)
                       and not n.value ? 'adHoc' and graph -> 'nodes' -> (n.value ->> 'start') is null
                  then pg_catalog.format('subprocess %s has no start node', n.key)
                  else pg_catalog.format('node %s is in scope %s, which is not a subprocess', n.key, n.value ->> 'scope') end
      into v_problem
      from pg_catalog.jsonb_each(graph -> 'nodes') n
      where (n.value ->> 'type' = 'subProcess' and not coalesce((n.value ->> 'triggeredByEvent')::boolean, false)
             and not n.value ? 'adHoc' and graph -> 'nodes' -> (n.value ->> 'start') is null)
         or (n.value ? 'scope' and graph -> 'nodes' -> (n.value ->> 'scope') ->> 'type' is distinct from 'subProcess')
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
-- user or external task row; event_kind says how, e.g. taskCompleted): its
-- activity row ends.
-- Completed (to_node null): the run continues over the node's outgoing flows.
-- Interrupted (to_node = a boundary event): the run continues from there.
create or replace function bpm_private.token__move(instance bpm.process_instance, graph jsonb, joins text[], token_id uuid, node_id text, to_node text, variables jsonb, event_kind text)
returns bpm.process_instance
language plpgsql
volatile
set search_path = ''
as $$
declare
  st bpm_private.run_state := bpm_private.run__begin(instance.tenant_id, instance.id, instance.variables || variables, false, joins);
  v_graph jsonb := bpm_private.graph__in_memory(graph);
begin
  st.business_key := instance.business_key;
  st := bpm_private.run__event(st, event_kind, token_id, node_id);
  st := bpm_private.run__resume(st, v_graph -> 'nodes' -> node_id, token_id);
  if st.cur_scope is not null and variables <> '{}' then
    -- in a scope, a name that it (or a scope around it) has as a local is set
    -- there, as Camunda and Zeebe do; other names go to the instance
    st.variables := instance.variables;
    st := bpm_private.scope__set_variables(st, st.cur_scope, variables);
  end if;
  st := bpm_private.activity__end(st, array[token_id], case when to_node is null then 'completed' else 'cancelled' end);
  if pg_catalog.jsonb_array_length(coalesce(v_graph -> 'nodes' -> node_id -> 'boundary', '[]')) > 0
     and bpm_private.node__has_subscriptions(v_graph, v_graph -> 'nodes' -> node_id) then
    perform bpm_private.subscriptions__remove(instance.tenant_id, instance.id, array[token_id]);
  end if;
  if to_node is null then
    st := bpm_private.node__complete(st, v_graph, v_graph -> 'nodes' -> node_id, token_id);
  else
    st := bpm_private.run__push(st, to_node, null);
  end if;
  st := bpm_private.run__drain(st, v_graph);
  return bpm_private.run__finish(st, instance);
end;
$$;
comment on function bpm_private.token__move(bpm.process_instance, jsonb, text[], uuid, text, text, jsonb, text) is E'Continues an instance after a wait state completed (to_node null) or was interrupted by the boundary event to_node; records event_kind for the wait state.';

-- A waiting token throws an error or escalation (an external task's BPMN
-- error): if something on the way out catches it, the run goes on from there
-- (true); else nothing is changed (false).
create or replace function bpm_private.token__throw(instance bpm.process_instance, graph jsonb, joins text[], token_id uuid, node_id text, kind text, code text, message text,
  variables jsonb)
returns boolean
language plpgsql
volatile
set search_path = ''
as $$
declare
  v_graph jsonb := bpm_private.graph__in_memory(graph);
  st bpm_private.run_state := bpm_private.run__begin(instance.tenant_id, instance.id, instance.variables || variables, false, joins);
  v_res record;
begin
  if not (v_graph -> 'nodes' -> node_id ? 'scope' or v_graph -> 'nodes' -> node_id ? 'loop' or v_graph ? 'eventSubprocesses') then
    return false;
  end if;
  st.business_key := instance.business_key;
  st := bpm_private.run__resume(st, v_graph -> 'nodes' -> node_id, token_id);
  v_res := bpm_private.error__catch(st, v_graph, kind, code, message);
  if not v_res.caught then
    return false;
  end if;
  st := bpm_private.run__drain(v_res.st, v_graph);
  perform bpm_private.run__finish(st, instance);
  return true;
end;
$$;
comment on function bpm_private.token__throw(bpm.process_instance, jsonb, text[], uuid, text, text, text, text, jsonb) is E'A waiting token throws an error or escalation; true when a catch on the way out took it (the run went on), false when nothing catches it (nothing changed).';
--! EndIncluded engine/graph.sql
--! Included instance/modify.sql
-- Instance modification (admin): start a token before or after an element,
-- cancel an active activity instance; instructions apply in order in one
-- engine run, and the instance completes when nothing waits any more.

-- The shape of the instructions (BP413): a non-empty JSON array of objects
-- with exactly one of startBefore / startAfter (an element id) or cancel (an
-- activity instance id); start instructions may carry variables (an object).
create or replace function bpm_private.modification__validate(instructions jsonb)
returns void
language plpgsql
immutable
set search_path = ''
as $$
declare
  v_instr jsonb;
  v_ops text[];
begin
  if pg_catalog.jsonb_typeof(instructions) is distinct from 'array' or pg_catalog.jsonb_array_length(instructions) = 0 then
    raise exception 'invalid modification: instructions must be a non-empty JSON array' using errcode = 'BP413';
  end if;
  for v_i in 0 .. pg_catalog.jsonb_array_length(instructions) - 1 loop
    v_instr := instructions -> v_i;
    if pg_catalog.jsonb_typeof(v_instr) <> 'object' then
      raise exception 'invalid modification: instruction % is not a JSON object', v_i + 1 using errcode = 'BP413';
    end if;
    v_ops := array(select k from pg_catalog.jsonb_object_keys(v_instr) k where k in ('startBefore', 'startAfter', 'cancel'));
    if pg_catalog.cardinality(v_ops) <> 1 then
      raise exception 'invalid modification: instruction % must have exactly one of startBefore, startAfter, cancel', v_i + 1 using errcode = 'BP413';
    end if;
    if exists (select 1 from pg_catalog.jsonb_object_keys(v_instr) k where k not in ('startBefore', 'startAfter', 'cancel', 'variables', 'scope'))
       or (v_ops[1] = 'cancel' and (v_instr ? 'variables' or v_instr ? 'scope')) then
      raise exception 'invalid modification: instruction % has unknown members (allowed: startBefore or startAfter with variables and scope, or cancel alone)', v_i + 1
        using errcode = 'BP413';
    end if;
    if v_instr ? 'scope' and coalesce(v_instr ->> 'scope', '') !~* '^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$' then
      raise exception 'invalid modification: scope of instruction % must be an activity instance id (uuid)', v_i + 1 using errcode = 'BP413';
    end if;
    if pg_catalog.jsonb_typeof(v_instr -> v_ops[1]) <> 'string' then
      raise exception 'invalid modification: % of instruction % must be a string', v_ops[1], v_i + 1 using errcode = 'BP413';
    end if;
    if v_ops[1] = 'cancel' and v_instr ->> 'cancel' !~* '^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$' then
      raise exception 'invalid modification: cancel of instruction % must be an activity instance id (uuid), got "%"', v_i + 1, v_instr ->> 'cancel'
        using errcode = 'BP413';
    end if;
    if v_instr ? 'variables' and pg_catalog.jsonb_typeof(v_instr -> 'variables') <> 'object' then
      raise exception 'invalid modification: variables of instruction % must be a JSON object', v_i + 1 using errcode = 'BP413';
    end if;
  end loop;
end;
$$;
comment on function bpm_private.modification__validate(jsonb) is E'Checks the shape of modify_process_instance''s instructions (BP413).';

-- The node a start instruction names, if the engine can start a token
-- there: BP112 unknown element; BP414 boundary events (their event triggers
-- them), event subprocesses, joins for startBefore (a token at a join
-- counts per incoming flow).
create or replace function bpm_private.modification__node(graph jsonb, element_id text, op text)
returns jsonb
language plpgsql
immutable
set search_path = ''
as $$
declare
  v_node jsonb := graph -> 'nodes' -> element_id;
  v_type text := v_node ->> 'type';
begin
  if v_node is null then
    raise exception 'cannot %: element % is not in the process graph', op, element_id using errcode = 'BP112';
  end if;
  if v_type = 'boundaryEvent' then
    raise exception 'cannot %: % is a boundary event, which only its event triggers', op, element_id using errcode = 'BP414';
  end if;
  if coalesce((v_node ->> 'triggeredByEvent')::boolean, false) then
    raise exception 'cannot %: % is an event subprocess, which only its start event triggers', op, element_id using errcode = 'BP414';
  end if;
  if op like 'start before%' and v_type in ('parallelGateway', 'inclusiveGateway') and pg_catalog.jsonb_array_length(v_node -> 'in') > 1 then
    raise exception 'cannot %: % is a joining gateway, whose tokens count per incoming flow (start after an element before it instead)', op, element_id
      using errcode = 'BP414';
  end if;
  return v_node;
end;
$$;
comment on function bpm_private.modification__node(jsonb, text, text) is E'The graph node a startBefore/startAfter instruction names, if a token can start there (BP112, BP414).';

-- The scope instance a start instruction runs in: process level, the
-- subprocess instance named by "scope", the one active instance of the
-- element's subprocess, or (none active) a new instance of it, opened in its
-- own scope the same way (BP111 a named scope that is not an active instance
-- of that subprocess; BP414 several active instances and none named, or a
-- multi-instance subprocess without an active inner instance).
create or replace function bpm_private.modification__enter_scope(st bpm_private.run_state, graph jsonb, node jsonb, scope_hint uuid)
returns bpm_private.run_state
language plpgsql
volatile
set search_path = ''
as $$
declare
  v_sub text := node ->> 'scope';
  v_sub_node jsonb := graph -> 'nodes' -> (node ->> 'scope');
  v_found uuid[];
  v_id uuid;
begin
  if v_sub is null then
    st.cur_scope := null;
    return st;
  end if;
  v_found := array(
    select t.id from bpm_private.token t
    where t.tenant_id = st.tenant_id and t.instance_id = st.instance_id and t.element_id = v_sub and t.kind = 'scope'
      and not (t.id = any(st.l_id) and st.l_state[pg_catalog.array_position(st.l_id, t.id)] = 'gone')
    union
    select l.id from unnest(st.l_id, st.l_el, st.l_kind, st.l_state) as l(id, el, kind, state)
    where l.el = v_sub and l.kind = 'scope' and l.state <> 'gone');
  if scope_hint is not null then
    if not (scope_hint = any(v_found)) then
      raise exception 'activity instance % is not an active instance of subprocess % in process instance %', scope_hint, v_sub, st.instance_id
        using errcode = 'BP111';
    end if;
    st.cur_scope := scope_hint;
  elsif pg_catalog.cardinality(v_found) = 1 then
    st.cur_scope := v_found[1];
  elsif pg_catalog.cardinality(v_found) > 1 then
    raise exception 'subprocess % has % active instances in process instance %: name the one to start in with "scope"', v_sub,
      pg_catalog.cardinality(v_found), st.instance_id using errcode = 'BP414';
  elsif v_sub_node ? 'loop' then
    raise exception 'multi-instance subprocess % has no active inner instance in process instance % to start in', v_sub, st.instance_id
      using errcode = 'BP414';
  else
    -- none: open one, inside its own scope
    st := bpm_private.modification__enter_scope(st, graph, v_sub_node, null);
    v_id := bpm_private.uuid_v7();
    st := bpm_private.activity__add(st, v_id, v_sub, case when v_sub_node ? 'adHoc' then 'adHocSubProcess' else 'subProcess' end, 'active');
    return bpm_private.subprocess__open(st, graph, v_sub_node, v_id);
  end if;
  return bpm_private.scope__load(st, st.cur_scope);
end;
$$;
comment on function bpm_private.modification__enter_scope(bpm_private.run_state, jsonb, jsonb, uuid) is E'Sets the scope instance a startBefore/startAfter instruction runs in, opening missing subprocess instances (BP111, BP414).';

create or replace function bpm.modify_process_instance(instance_id uuid, instructions jsonb)
returns bpm.process_instance
language plpgsql
volatile
security definer
set search_path = ''
set plan_cache_mode = force_generic_plan
as $$
declare
  v_tenant text := bpm_private.require_context(array['bpm_admin'], 'modify a process instance');
  v_instance bpm.process_instance;
  v_locked record;
  v_graph jsonb;
  v_instr jsonb;
  v_node jsonb;
  v_id uuid;
  v_activity record;
  v_pos int;
  v_scope uuid;
  st bpm_private.run_state;
begin
  -- ===== GUARD the instructions' shape, LOCK the instance, GUARD its state
  perform bpm_private.modification__validate(instructions);
  v_instance := bpm_private.instance__lock(v_tenant, instance_id);
  perform bpm_private.instance__require_active(v_instance, 'modify it');
  select d.graph, d.inclusive_joins into v_locked from bpm.process_definition d
  where d.tenant_id = v_tenant and d.id = v_instance.definition_id;
  v_graph := bpm_private.graph__in_memory(v_locked.graph);
  st := bpm_private.run__begin(v_tenant, instance_id, v_instance.variables, false, v_locked.inclusive_joins);
  st.business_key := v_instance.business_key;
  -- ===== APPLY each instruction in order, in one run
  for v_i in 0 .. pg_catalog.jsonb_array_length(instructions) - 1 loop
    v_instr := instructions -> v_i;
    if v_instr ? 'cancel' then
      v_id := (v_instr ->> 'cancel')::uuid;
      select a.instance_id, a.element_id, a.state into v_activity from bpm.activity_instance a
      where a.tenant_id = v_tenant and a.id = v_id;
      if not found or v_activity.instance_id <> modify_process_instance.instance_id then
        raise exception 'activity instance % not found in process instance %', v_id, instance_id using errcode = 'BP111';
      end if;
      v_pos := pg_catalog.array_position(st.e_id, v_id);
      if v_activity.state <> 'active' or v_pos is not null then
        raise exception 'activity instance % (element %) is % and cannot be cancelled', v_id, v_activity.element_id,
          coalesce(st.e_state[v_pos], v_activity.state) using errcode = 'BP221';
      end if;
      -- its task or token, or (a subprocess, multi-instance body or call activity) everything in it
      st := bpm_private.scope__cancel(st, array[v_id]);
      -- scopes left empty are cancelled too, outward
      v_scope := (select a.scope_id from bpm.activity_instance a where a.tenant_id = v_tenant and a.id = v_id);
      while v_scope is not null and bpm_private.scope__is_empty(st, v_scope) loop
        st := bpm_private.scope__cancel(st, array[v_scope]);
        v_scope := (select a.scope_id from bpm.activity_instance a where a.tenant_id = v_tenant and a.id = v_scope);
      end loop;
      continue;
    end if;
    st.variables := st.variables || coalesce(v_instr -> 'variables', '{}');
    if v_instr ? 'startBefore' then
      v_node := bpm_private.modification__node(v_graph, v_instr ->> 'startBefore', 'start before ' || (v_instr ->> 'startBefore'));
      st := bpm_private.modification__enter_scope(st, v_graph, v_node, (v_instr ->> 'scope')::uuid);
      st := bpm_private.run__push(st, v_node ->> 'id', null);
    else
      v_node := bpm_private.modification__node(v_graph, v_instr ->> 'startAfter', 'start after ' || (v_instr ->> 'startAfter'));
      st := bpm_private.modification__enter_scope(st, v_graph, v_node, (v_instr ->> 'scope')::uuid);
      st := bpm_private.node__leave(st, v_graph, v_node);
    end if;
    st := bpm_private.run__drain(st, v_graph);
  end loop;
  -- ===== FINISH: inclusive joins a cancellation freed fire; nothing waiting: the instance completes
  st := bpm_private.run__drain(st, v_graph);
  return bpm_private.run__finish(st, v_instance);
end;
$$;
comment on function bpm.modify_process_instance(uuid, jsonb) is E'Modifies an active instance with a JSON array of instructions, applied in order in one transaction: {"startBefore": "<elementId>", "variables": {…}} starts a token entering that element (as if it arrived over a flow), {"startAfter": "<elementId>"} a token leaving it over its outgoing flows (variables merge into the instance first), {"cancel": "<activityInstanceId>"} cancels that active activity instance (its user or external task or its token, with its event subscriptions and timers; a subprocess, multi-instance body or call activity with everything in it; a subprocess left empty is cancelled too). An element inside a subprocess starts in its active instance (or the one named by "scope": "<activityInstanceId>"), or in a new instance when none is active. When nothing waits any more the instance completes. Errors: BP102 not found, BP201/BP202 ended or suspended, BP413 malformed instructions, BP112 unknown element, BP414 an element no token can start at (boundary event, event subprocess, joining gateway for startBefore) or a subprocess with several active instances and no "scope" naming one, BP111 activity instance not of this instance, BP221 activity instance not active. Roles: bpm_admin.';
--! EndIncluded instance/modify.sql
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
grant execute on function bpm.activate_ad_hoc_activities(uuid, text[]) to bpm_admin, bpm_engine;
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
