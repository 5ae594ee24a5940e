-- Compensation and transactions. A compensation throw event (or a cancel
-- end event of a transaction) compensates the completed activities of its
-- scope (thrown in an event subprocess: of the scope around it) that have a
-- compensation handler, and what completed inside its completed
-- subprocesses, most recently completed first,
-- one handler at a time: the throw event's activity instance becomes a
-- scope (token kind scope, data {comp: [[activity instance, handler,
-- locals], …], current: the activity instance being compensated, vars: its
-- locals}) the handlers run in. A subprocess with a compensation event
-- subprocess is compensated by it (it sees the subprocess's locals as they
-- were when it completed; a compensation throw in it compensates what
-- completed inside that subprocess instance). A compensated activity instance ends in state
-- compensated, so it is compensated exactly once. When the last handler
-- ended, the throw event is left (a cancel end event: the transaction is
-- cancelled and its cancel boundary event taken).

-- The completed compensable activity instances of a scope instance (null:
-- the process level), latest first, as [[activity instance, handler], …]:
-- this run's rows, then stored ones. A completed embedded subprocess without
-- a handler of its own stands for what completed inside it (BPMN's nested
-- compensation), expanded at its place in the order. activity: only that
-- element of the scope (a throw's activityRef).
create or replace function bpm_private.compensation__collect(st bpm_private.run_state, graph jsonb, scope_el text, scope_id uuid, activity text)
returns jsonb
language plpgsql
stable
set search_path = ''
as $$
declare
  v_elements text[];
  v_todo jsonb := '[]';
  r record;
begin
  -- elements of the scope with a handler, or subprocesses with such elements inside (at any depth)
  with recursive holders as (
    select n.value ->> 'scope' as el from pg_catalog.jsonb_each(graph -> 'nodes') n where n.value ? 'compensation'
    union
    select graph -> 'nodes' -> h.el ->> 'scope' from holders h where h.el is not null
  )
  select array(
    select n.key from pg_catalog.jsonb_each(graph -> 'nodes') n
    where n.value ->> 'scope' is not distinct from compensation__collect.scope_el and (compensation__collect.activity is null or n.key = compensation__collect.activity)
      and (n.value ? 'compensation'
           or (n.value ->> 'type' = 'subProcess' and not n.value ? 'loop' and n.key in (select h.el from holders h where h.el is not null))))
  into v_elements;
  if pg_catalog.cardinality(v_elements) = 0 then
    return v_todo;
  end if;
  for r in
    select c.id, c.el, c.locals from bpm_private.compensation__completed(st, compensation__collect.scope_id) c
    where c.el = any(v_elements)
  loop
    if graph -> 'nodes' -> r.el ? 'compensation' and graph -> 'nodes' -> r.el ? 'loop' then
      -- a multi-instance activity (r is its body): each completed inner instance, with its locals
      v_todo := v_todo || bpm_private.compensation__inner_instances(st, r.id, graph -> 'nodes' -> r.el ->> 'compensation');
    elsif graph -> 'nodes' -> r.el ? 'compensation' then
      -- (a subprocess compensated by its compensation event subprocess: with the locals it completed with)
      v_todo := v_todo || pg_catalog.jsonb_build_array(pg_catalog.jsonb_build_array(r.id, graph -> 'nodes' -> r.el ->> 'compensation', coalesce(r.locals, '{}')));
    else
      v_todo := v_todo || bpm_private.compensation__collect(st, graph, r.el, r.id, null);
    end if;
  end loop;
  return v_todo;
end;
$$;
comment on function bpm_private.compensation__collect(bpm_private.run_state, jsonb, text, uuid, text) is E'The completed compensable activity instances of a scope instance, latest first, with what completed inside completed subprocesses expanded in place.';

-- The completed activity instances of a scope instance (null: the process
-- level), latest first: this run's rows, then stored rows that this run
-- completed (in the order it ended them), then stored rows completed earlier;
-- with the locals a compensable multi-instance inner instance had (stored,
-- or in this run's post action that will store them).
create or replace function bpm_private.compensation__completed(st bpm_private.run_state, scope_id uuid)
returns table (id uuid, el text, locals jsonb)
language plpgsql
stable
set search_path = ''
as $$
begin
  return query
  select c.id, c.el, coalesce(c.locals,
    (select p -> 'vars' from unnest(st.p_data) p where p ->> 'kind' = 'innerLocals' and p ->> 'activity' = c.id::text))
  from (
    select u.id, u.el, null::jsonb as locals, 2 as run, null::timestamptz as ended, u.ord as seq
    from unnest(st.a_id, st.a_el, st.a_state, st.a_scope) with ordinality as u(id, el, state, scope, ord)
    where u.state = 'completed' and u.scope is not distinct from compensation__completed.scope_id
    union all
    select a.id, a.element_id, a.local_variables, case when a.id = any(st.e_id) then 1 else 0 end, a.ended_at,
      case when a.id = any(st.e_id) then pg_catalog.array_position(st.e_id, a.id) else a.seq end
    from bpm.activity_instance a
    where not st.is_new and a.tenant_id = st.tenant_id and a.instance_id = st.instance_id
      and coalesce(st.e_state[pg_catalog.array_position(st.e_id, a.id)], a.state) = 'completed'
      and a.scope_id is not distinct from compensation__completed.scope_id
      and not (a.id = any(st.a_id))
  ) c
  order by c.run desc, c.ended desc nulls first, c.seq desc;
end;
$$;
comment on function bpm_private.compensation__completed(bpm_private.run_state, uuid) is E'The completed activity instances of a scope instance, latest first (this run''s and stored ones), with the locals kept for compensable multi-instance inner instances.';

-- The completed inner instances of a completed multi-instance body, latest
-- first, as [[activity instance, handler, locals], …]: each is compensated
-- by its own run of the handler, which sees the locals the inner instance
-- had (its element variable, loopCounter, input mappings).
create or replace function bpm_private.compensation__inner_instances(st bpm_private.run_state, body_id uuid, handler text)
returns jsonb
language plpgsql
stable
set search_path = ''
as $$
begin
  return coalesce((
    select pg_catalog.jsonb_agg(pg_catalog.jsonb_build_array(c.id, handler, coalesce(c.locals, '{}')) order by c.ord)
    from bpm_private.compensation__completed(st, body_id) with ordinality as c(id, el, locals, ord)), '[]');
end;
$$;
comment on function bpm_private.compensation__inner_instances(bpm_private.run_state, uuid, text) is E'The completed inner instances of a multi-instance body, latest first, each with the handler and the locals it had.';

create or replace function bpm_private.compensation__start(st bpm_private.run_state, graph jsonb, node jsonb, id uuid)
returns bpm_private.run_state
language plpgsql
volatile
set search_path = ''
as $$
declare
  v_scope uuid := st.cur_scope;
  v_scope_el text := node ->> 'scope';
begin
  if coalesce((graph -> 'nodes' -> v_scope_el ->> 'triggeredByEvent')::boolean, false) then
    -- thrown in an event subprocess: it compensates the scope the event subprocess runs in
    v_scope := st.l_parent[pg_catalog.array_position(st.l_id, st.cur_scope)];
    if graph -> 'nodes' -> (graph -> 'nodes' -> v_scope_el ->> 'start') -> 'event' ->> 'kind' = 'compensate' then
      -- a compensation event subprocess runs in the compensation of its
      -- completed subprocess instance (started by an instance modification: in the live one)
      v_scope := coalesce((st.l_data[pg_catalog.array_position(st.l_id, v_scope)] ->> 'current')::uuid, v_scope);
    end if;
    v_scope_el := graph -> 'nodes' -> v_scope_el ->> 'scope';
  end if;
  st := bpm_private.scope__add(st, id, node ->> 'id', 'scope', pg_catalog.jsonb_build_object('vars', '{}'::jsonb,
    'comp', bpm_private.compensation__collect(st, graph, v_scope_el, v_scope, node -> 'event' ->> 'activity')));
  return bpm_private.compensation__next(st, graph, id);
end;
$$;
comment on function bpm_private.compensation__start(bpm_private.run_state, jsonb, jsonb, uuid) is E'A compensation throw (or cancel end event) starts compensating its scope''s completed compensable activities, latest first (nested ones of completed subprocesses included).';

-- Runs the next handler of a compensation, or ends it.
create or replace function bpm_private.compensation__next(st bpm_private.run_state, graph jsonb, comp_id uuid)
returns bpm_private.run_state
language plpgsql
volatile
set search_path = ''
as $$
declare
  v_pos int := pg_catalog.array_position(st.l_id, comp_id);
  v_data jsonb := st.l_data[v_pos];
  v_next jsonb := v_data -> 'comp' -> 0;
  v_apos int;
begin
  if v_next is null then
    return bpm_private.compensation__done(st, graph, comp_id);
  end if;
  -- the handler sees the locals the compensated activity instance completed
  -- with (a multi-instance inner instance, a subprocess compensated by its
  -- compensation event subprocess), else none
  st := bpm_private.scope__set(st, comp_id, v_data || pg_catalog.jsonb_build_object('comp', (v_data -> 'comp') - 0,
    'vars', coalesce(v_next -> 2, '{}'::jsonb), 'current', v_next -> 0));
  -- the compensated activity instance: compensated exactly once
  v_apos := pg_catalog.array_position(st.a_id, (v_next ->> 0)::uuid);
  if v_apos is not null then
    st.a_state[v_apos] := 'compensated';
  elsif (v_next ->> 0)::uuid = any(st.e_id) then
    -- completed in this run: its row is written completed, then marked (run__post)
    st.p_data := st.p_data || pg_catalog.jsonb_build_object('kind', 'compensated', 'activity', v_next ->> 0);
  else
    update bpm.activity_instance a set state = 'compensated'
    where a.tenant_id = st.tenant_id and a.id = (v_next ->> 0)::uuid and a.state = 'completed';
  end if;
  st.cur_scope := comp_id;
  return bpm_private.run__push(st, v_next ->> 1, null);
end;
$$;
comment on function bpm_private.compensation__next(bpm_private.run_state, jsonb, uuid) is E'Starts the handler of the next activity to compensate (marking that activity compensated), or ends the compensation.';

create or replace function bpm_private.compensation__done(st bpm_private.run_state, graph jsonb, comp_id uuid)
returns bpm_private.run_state
language plpgsql
volatile
set search_path = ''
as $$
declare
  v_pos int := pg_catalog.array_position(st.l_id, comp_id);
  v_node jsonb := graph -> 'nodes' -> st.l_el[v_pos];
  v_parent uuid := st.l_parent[v_pos];
  v_tpos int;
  v_boundary jsonb;
begin
  st := bpm_private.scope__remove(st, comp_id);
  st := bpm_private.activity__end(st, array[comp_id], 'completed');
  st.cur_scope := v_parent;
  if v_node -> 'event' ->> 'kind' <> 'cancel' then
    return bpm_private.node__leave(st, graph, v_node);
  end if;
  -- a cancel end event: the transaction ends cancelled, its cancel boundary is taken
  v_tpos := pg_catalog.array_position(st.l_id, v_parent);
  v_boundary := bpm_private.boundary__find_catch(graph, st.l_el[v_tpos], 'cancel', null);
  st.cur_scope := st.l_parent[v_tpos];
  st := bpm_private.scope__cancel(st, array[v_parent]);
  if v_boundary is null then
    raise exception 'transaction % has no cancel boundary event', st.l_el[v_tpos] using errcode = 'BP305';
  end if;
  st := bpm_private.run__event(st, 'transactionCancelled', v_parent, v_boundary ->> 'id');
  return bpm_private.run__push(st, v_boundary ->> 'id', null);
end;
$$;
comment on function bpm_private.compensation__done(bpm_private.run_state, jsonb, uuid) is E'All handlers ran: the throw event is left, or (cancel end event) the transaction is cancelled and its cancel boundary taken.';

-- A cancel end event inside a transaction: every other token of the
-- transaction is cancelled, then its completed activities are compensated.
create or replace function bpm_private.transaction__cancel(st bpm_private.run_state, graph jsonb, node jsonb, id uuid)
returns bpm_private.run_state
language plpgsql
volatile
set search_path = ''
as $$
declare
  v_scope uuid := st.cur_scope;
  v_others uuid[];
begin
  if v_scope is null or not coalesce((graph -> 'nodes' -> (node ->> 'scope') ->> 'transaction')::boolean, false) then
    raise exception 'cancel end event % is not inside a transaction', node ->> 'id' using errcode = 'BP305';
  end if;
  v_others := bpm_private.scope__active_children(st, v_scope, id);
  st := bpm_private.scope__cancel(st, v_others);
  return bpm_private.compensation__start(st, graph, node, id);
end;
$$;
comment on function bpm_private.transaction__cancel(bpm_private.run_state, jsonb, jsonb, uuid) is E'Cancel end event: cancels the transaction''s other tokens and compensates its completed activities before its cancel boundary is taken.';
