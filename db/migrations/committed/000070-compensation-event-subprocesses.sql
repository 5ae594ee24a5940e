--! Previous: sha1:70faa6651c17db7f76dfed1061e45b2fa70d5cc2
--! Hash: sha1:ebd0f9eec854cff82ab233dd8e8afed8c7d5e834
--! Message: Compensation event subprocesses

-- Compensation event subprocesses: a subprocess's compensation handler can be
-- an event subprocess with a compensation start event inside it.
comment on column bpm.activity_instance.local_variables is E'The locals a completed activity instance had, kept for its compensation handler, which sees them: an inner instance of a multi-instance activity with a compensation handler (element variable, loopCounter, input mappings), a subprocess with a compensation event subprocess (its locals as it completed); null otherwise.';
--! Included elements/compensation.sql
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
--! EndIncluded elements/compensation.sql
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
  st := bpm_private.subprocess__open(st, graph, node, id);
  return bpm_private.run__push(st, node ->> 'start', null);
end;
$$;
comment on function bpm_private.subprocess__enter(bpm_private.run_state, jsonb, jsonb, uuid) is E'A token enters an embedded subprocess: a new scope instance with its locals, boundary events and event subprocesses; its start event runs.';

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
    select t.data || pg_catalog.jsonb_build_object('locals', bpm_private.task__locals(v_locals || l.loop || t.inputs, st.variables))
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
  if node ? 'compensation' and not bpm_private.node__compensated_by_event_subprocess(graph, node) then
    -- kept on its history row for its compensation handler (compensation__inner_instances;
    -- a subprocess with a compensation event subprocess keeps its own locals too: subprocess__complete)
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
