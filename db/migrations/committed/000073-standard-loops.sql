--! Previous: sha1:1e24e1ecd202c0e02dd803f1857c840c7f458231
--! Hash: sha1:b8e7bd2971d8f7a4c499b12c2b0c0a11122256cd
--! Message: Standard loops

-- Standard loops (bpmn:standardLoopCharacteristics): a sequential body that
-- runs the activity again while its loop condition holds.
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
begin
  while v_scope is not null loop
    v_pos := pg_catalog.array_position(st.l_id, v_scope);
    v_vars := bpm_private.scope__locals(st.l_kind[v_pos], st.l_data[v_pos], v_child) || v_vars;
    v_child := v_scope;
    v_scope := st.l_parent[v_pos];
  end loop;
  return st.variables || v_vars;
end;
$$;
comment on function bpm_private.scope__variables(bpm_private.run_state, uuid, uuid) is E'The variables visible to a token in a scope: instance variables overlaid by the locals of its scopes.';

-- The locals one scope level gives what runs in it: a subprocess its
-- variables; a multi-instance body its counts and, to its inner instance
-- child (or what runs in it), loopCounter and the element variable.
create or replace function bpm_private.scope__locals(kind text, data jsonb, child uuid)
returns jsonb
language plpgsql
immutable
set search_path = ''
as $$
declare
  v_local jsonb;
  v_k int;
begin
  if kind = 'scope' then
    return coalesce(data -> 'vars', '{}');
  elsif kind <> 'body' then
    return '{}';
  end if;
  -- (a standard loop has no instance counts, only loopCounter)
  v_local := case when data ? 'standard' then '{}'::jsonb else pg_catalog.jsonb_build_object('nrOfInstances', data -> 'n',
    'nrOfActiveInstances', data -> 'active', 'nrOfCompletedInstances', data -> 'completed') end;
  if child is not null and data -> 'inner' ? child::text then
    v_k := (data -> 'inner' ->> child::text)::int;
    v_local := v_local || pg_catalog.jsonb_build_object('loopCounter', v_k);
    if data ->> 'el' is not null then
      v_local := v_local || pg_catalog.jsonb_build_object(data ->> 'el', coalesce(data -> 'items' -> v_k, 'null'::jsonb));
    end if;
  end if;
  return v_local;
end;
$$;
comment on function bpm_private.scope__locals(text, jsonb, uuid) is E'The locals one cached scope (kind, data) gives what runs in it (child: the inner instance on the way, for a multi-instance body''s loop variables).';

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
--! Included elements/multi_instance.sql
-- Multi-instance activities (and standard loops: a sequential body without a
-- collection, activity row type loopBody, data standard: true, that runs
-- again while its loop condition holds). Entering the activity creates its
-- body (a scope instance: activity row type multiInstanceBody, token kind
-- body) whose data is the loop state: n (instances; a standard loop: its
-- maximum or null), next (index of the next inner instance),
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
     and not node ? 'eventSubprocesses' and not coalesce((node ->> 'asyncBefore')::boolean, false) then
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
  v_ids uuid[] := array(select bpm_private.uuid_v7() from pg_catalog.generate_series(1, n));
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
  v_data := pg_catalog.jsonb_set(v_data, '{inner}', (v_data -> 'inner') - inner_id::text);
  st := bpm_private.scope__set(st, body_id, v_data);
  if v_loop ? 'standard' then
    -- a standard loop ends at its maximum, or when its condition no longer holds
    v_done := coalesce((v_data ->> 'completed')::int >= (v_data ->> 'n')::int, false)
      or (v_loop -> 'standard' ? 'condition' and not bpm_private.expression__test(v_loop -> 'standard' -> 'condition', v_vars, v_el));
  else
    v_done := (v_data ->> 'completed')::int >= (v_data ->> 'n')::int
      or (v_loop -> 'completionCondition' is not null and bpm_private.expression__test(v_loop -> 'completionCondition', v_vars, v_el));
  end if;
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
