-- Multi-instance activities (and standard loops: a sequential body without a
-- collection, activity row type loopBody, data standard: true, that runs
-- again while its loop condition holds). Entering the activity creates its
-- body (a scope instance: activity row type multiInstanceBody, token kind
-- body) whose data is the loop state: n (instances; a standard loop: its
-- maximum or null), next (index of the next inner instance),
-- active, completed, items (the input collection), el (element variable),
-- inner ({inner activity instance id: loopCounter} of every inner instance
-- started), out ({loopCounter: output element}); items and inner are stored
-- apart (bpm_private.token.loop), so that counting a completed inner
-- instance does not write the collection again. Inner instances enter the activity itself, inside the
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
  if v_loop ? 'standard' then
    -- a standard loop: at most its maximum of iterations; testBefore: none unless its condition holds now
    v_n := (v_loop -> 'standard' ->> 'maximum')::int;
    if (v_loop -> 'standard' ->> 'testBefore')::boolean and v_loop -> 'standard' ? 'condition'
       and not bpm_private.expression__test(v_loop -> 'standard' -> 'condition', st.variables, v_el) then
      v_n := 0;
    end if;
  elsif v_loop ? 'collection' then
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
  st.a_type[pg_catalog.array_position(st.a_id, id)] := case when v_loop ? 'standard' then 'loopBody' else 'multiInstanceBody' end;
  if v_n = 0 then
    -- nothing to do: the activity is skipped (an empty output collection)
    st.a_state[pg_catalog.array_position(st.a_id, id)] := 'completed';
    if v_loop ->> 'outputCollection' is not null then
      st := bpm_private.scope__set_variables(st, st.cur_scope, pg_catalog.jsonb_build_object(v_loop ->> 'outputCollection', '[]'::jsonb));
    end if;
    return bpm_private.node__leave(st, graph, node);
  end if;
  st := bpm_private.scope__add(st, id, v_el, 'body', pg_catalog.jsonb_build_object('n', v_n, 'next', 0, 'active', 0, 'completed', 0,
    'items', v_items, 'el', v_loop -> 'elementVariable', 'inner', '{}'::jsonb, 'out', '{}'::jsonb)
    || case when v_loop ? 'standard' then '{"standard": true}'::jsonb else '{}'::jsonb end);
  if bpm_private.node__has_subscriptions(graph, node) then
    st := bpm_private.boundary__arm(st, graph, node, id);
  end if;
  -- the endless-loop guard (run__drain) allows 50 more automatic steps per
  -- inner instance, up to 500,000 more per call, the first time the activity
  -- is entered in its scope in this call (a cycle through it gains nothing)
  if (select pg_catalog.count(*) from unnest(st.a_el, st.a_scope, st.a_type) as a(el, scope, typ)
      where a.el = v_el and a.typ in ('multiInstanceBody', 'loopBody') and a.scope is not distinct from st.cur_scope) = 1 then
    st.step_credit := least(coalesce(st.step_credit, 0) + coalesce(v_n, 0) * 50, 500000);
  end if;
  st.cur_scope := id;
  v_kind := case when not (v_loop ->> 'sequential')::boolean then bpm_private.mi__task_kind(node) end;
  if v_kind is not null then
    return bpm_private.mi__start_tasks(st, node, id, v_n, v_kind);
  end if;
  if not (v_loop ->> 'sequential')::boolean and node ->> 'type' = 'subProcess' and node ? 'start'
     and not node ? 'eventSubprocesses' and not coalesce((node ->> 'asyncBefore')::boolean, false) and not v_loop ? 'asyncInner' then
    return bpm_private.mi__start_scopes(st, node, id, v_n);
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
-- external task but one with an asynchronous continuation before it or
-- before each inner instance (each inner instance then waits for its own
-- job); null for any other activity.
create or replace function bpm_private.mi__task_kind(node jsonb)
returns text
language plpgsql
immutable
set search_path = ''
as $$
begin
  -- (plpgsql, not sql: a non-inlined sql function is planned again in every transaction)
  return case
    when coalesce((node ->> 'asyncBefore')::boolean, false) or node -> 'loop' ? 'asyncInner' then null
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
  v_ids uuid[] := bpm_private.uuid_v7_block(n);
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

-- The inner instances of a parallel multi-instance embedded subprocess
-- (without event subprocesses or an asynchronous continuation), opened at
-- once instead of one queued token each (whose every step would copy a run
-- state that grows with the collection): their history rows, their scopes
-- with their locals (input mappings, evaluated per inner instance over what
-- it sees: the body's view plus its loop variables), their scope tokens, the
-- body's loop state, and a token at each one's start event, as
-- run__drain and subprocess__enter would make them one by one.
create or replace function bpm_private.mi__start_scopes(st bpm_private.run_state, node jsonb, body_id uuid, n int)
returns bpm_private.run_state
language plpgsql
volatile
set search_path = ''
as $$
declare
  v_el text := node ->> 'id';
  v_ids uuid[] := bpm_private.uuid_v7_block(n);
  v_pos int := pg_catalog.array_position(st.l_id, body_id);
  v_body jsonb := st.l_data[v_pos];
  v_seen jsonb;
  v_locals jsonb[] := pg_catalog.array_fill('{"vars": {}}'::jsonb, array[n]);
begin
  if node ? 'inputs' then
    v_seen := bpm_private.scope__variables(st, body_id, null);
    v_locals := array(
      select pg_catalog.jsonb_build_object('vars', bpm_private.io__map(node -> 'inputs', v_seen
        || pg_catalog.jsonb_build_object('nrOfActiveInstances', k, 'loopCounter', k - 1)
        || case when v_body ->> 'el' is not null then pg_catalog.jsonb_build_object(v_body ->> 'el', coalesce(v_body -> 'items' -> (k - 1), 'null'::jsonb)) else '{}' end,
        v_el))
      from pg_catalog.generate_series(1, n) k order by k);
  end if;
  st.a_id := st.a_id || v_ids;
  st.a_el := st.a_el || pg_catalog.array_fill(v_el, array[n]);
  st.a_type := st.a_type || pg_catalog.array_fill(node ->> 'type', array[n]);
  st.a_state := st.a_state || pg_catalog.array_fill('active'::text, array[n]);
  st.a_scope := st.a_scope || pg_catalog.array_fill(body_id, array[n]);
  st.l_id := st.l_id || v_ids;
  st.l_parent := st.l_parent || pg_catalog.array_fill(body_id, array[n]);
  st.l_el := st.l_el || pg_catalog.array_fill(v_el, array[n]);
  st.l_kind := st.l_kind || pg_catalog.array_fill('scope'::text, array[n]);
  st.l_data := st.l_data || v_locals;
  st.l_state := st.l_state || pg_catalog.array_fill('new'::text, array[n]);
  st.w_id := st.w_id || v_ids;
  st.w_el := st.w_el || pg_catalog.array_fill(v_el, array[n]);
  st.w_kind := st.w_kind || pg_catalog.array_fill('scope'::text, array[n]);
  st.w_flow := st.w_flow || pg_catalog.array_fill(null::text, array[n]);
  st.w_data := st.w_data || pg_catalog.array_fill(null::jsonb, array[n]);
  st.q_node := st.q_node || pg_catalog.array_fill(node ->> 'start', array[n]);
  st.q_flow := st.q_flow || pg_catalog.array_fill(null::text, array[n]);
  st.q_scope := st.q_scope || v_ids;
  st.l_data[v_pos] := v_body || pg_catalog.jsonb_build_object('next', n, 'active', n,
    'inner', (select pg_catalog.jsonb_object_agg(u.id::text, u.k - 1) from unnest(v_ids) with ordinality as u(id, k)));
  return st;
end;
$$;
comment on function bpm_private.mi__start_scopes(bpm_private.run_state, jsonb, uuid, int) is E'Opens every inner instance of a parallel multi-instance embedded subprocess at once (history rows, scopes with their locals, scope tokens, loop state) and queues each one''s start event.';

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
  st := bpm_private.scope__set(st, body_id, v_data);
  -- all done (a standard loop: its maximum, if any), the completion
  -- condition holds, or a standard loop's condition no longer does
  v_done := coalesce((v_data ->> 'completed')::int >= (v_data ->> 'n')::int, false)
    or (v_loop -> 'completionCondition' is not null and bpm_private.expression__test(v_loop -> 'completionCondition', v_vars, v_el))
    or (v_loop -> 'standard' -> 'condition' is not null and not bpm_private.expression__test(v_loop -> 'standard' -> 'condition', v_vars, v_el));
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
  v_inner := bpm_private.scope__active_children(st, body_id, null);
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
