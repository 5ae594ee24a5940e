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
