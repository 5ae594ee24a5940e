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
    -- (a body's collection and inner instances are kept apart: bpm_private.token.loop)
    select t.kind, coalesce(t.loop, '{}') || t.data as data, t.element_id, a.scope_id as parent into v_row
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

-- How a cached scope's state is stored (scope__load merges it back): a
-- body's collection and inner instances go to the token's loop column,
-- apart from its counters and outputs in data, so that counting a completed
-- inner instance does not write the collection again.
create or replace function bpm_private.token__columns(kind text, state jsonb, out token_data jsonb, out token_loop jsonb)
language plpgsql
immutable
set search_path = ''
as $$
begin
  token_data := state - 'items' - 'inner';
  token_loop := case when kind = 'body' then pg_catalog.jsonb_build_object('items', state -> 'items', 'inner', state -> 'inner') end;
end;
$$;
comment on function bpm_private.token__columns(text, jsonb) is E'The data and loop columns of a scope token whose cached state is given (a body''s collection and inner instances in loop, null for other kinds).';

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
