--! Previous: sha1:c4e1067f30e7192ace811d9e999df6a29f516707
--! Hash: sha1:8b4723d49d938bbc262ee19a4a8aca065e0ce34d
--! Message: External task topics given by expressions

-- Topics (job types) given by expressions: evaluated when each external task is created
--! Included elements/tasks.sql
-- User task behaviour: the task's attributes, evaluated from the compiled
-- spec when the token arrives; the token then waits (run__flush writes it).
create or replace function bpm_private.user_task__create(node jsonb, variables jsonb)
returns jsonb
language plpgsql
stable
set search_path = ''
as $$
declare
  v_spec jsonb := coalesce(node -> 'userTask', '{}');
  v_el text := node ->> 'id';
  v_data jsonb;
begin
  if (v_spec is null or v_spec = '{}'::jsonb) and node -> 'taskEscalation' is null then
    v_data := pg_catalog.jsonb_build_object('name', node -> 'name', 'form', node -> 'form');
  else
    v_data := pg_catalog.jsonb_build_object(
      'name', node -> 'name',
      'form', bpm_private.user_task__form(node -> 'form', v_spec, variables, v_el),
      'assignee', bpm_private.value__to_text(bpm_private.value__eval(v_spec -> 'assignee', variables, v_el)),
      'candidate_users', pg_catalog.to_jsonb(bpm_private.value__to_text_array(bpm_private.value__eval(v_spec -> 'candidateUsers', variables, v_el))),
      'candidate_groups', pg_catalog.to_jsonb(bpm_private.value__to_text_array(bpm_private.value__eval(v_spec -> 'candidateGroups', variables, v_el))),
      'priority', bpm_private.user_task__priority(bpm_private.value__eval(v_spec -> 'priority', variables, v_el), v_el),
      'due_at', bpm_private.value__to_timestamp(bpm_private.value__eval(v_spec -> 'dueDate', variables, v_el), v_el, 'dueDate'),
      'follow_up_at', bpm_private.value__to_timestamp(bpm_private.value__eval(v_spec -> 'followUpDate', variables, v_el), v_el, 'followUpDate'));
    v_data := bpm_private.user_task__deadlines(node, variables, v_data);
  end if;
  return v_data;
end;
$$;
comment on function bpm_private.user_task__create(jsonb, jsonb) is E'User task behaviour: assignee, candidates, priority and dates for a new task.';

-- The form of a new task: the node's static form (a form key or reference,
-- generated fields) with what is evaluated now: a form key or external
-- reference given as an expression, and default values of generated fields
-- given as expressions. Null when the task has no form.
create or replace function bpm_private.user_task__form(static jsonb, spec jsonb, variables jsonb, element_id text)
returns jsonb
language plpgsql
stable
set search_path = ''
as $$
declare
  v_form jsonb := static;
  v_target jsonb := spec -> 'form';
  v_field text := case when v_target ? 'key' then 'key' else 'externalReference' end;
  v_text text;
begin
  if v_target is not null then
    v_text := bpm_private.value__to_text(bpm_private.value__eval(v_target -> v_field, variables, element_id));
    if v_text is not null and pg_catalog.btrim(v_text) <> '' then
      v_form := coalesce(v_form, '{}') || pg_catalog.jsonb_build_object(v_field, pg_catalog.btrim(v_text));
    end if;
  end if;
  if spec ? 'formDefaults' then
    v_form := pg_catalog.jsonb_set(v_form, '{fields}', coalesce((
      select pg_catalog.jsonb_agg(case when d.value is null then f else f || pg_catalog.jsonb_build_object('defaultValue', d.value) end order by f.n)
      from pg_catalog.jsonb_array_elements(v_form -> 'fields') with ordinality as f(f, n)
      left join lateral (select bpm_private.form_field__default(spec -> 'formDefaults' -> (f.f ->> 'id'), variables, element_id) as value) d on true), '[]'));
  end if;
  return v_form;
end;
$$;
comment on function bpm_private.user_task__form(jsonb, jsonb, jsonb, text) is E'The form of a new user task: its static form with a form key or external reference given as an expression and the expression defaults of generated fields evaluated; null when it has none.';

-- The default of a generated form field given as an expression. Camunda 7
-- evaluates it when the form is shown; here when the task is created, so a
-- variable that is not set yet leaves the field without a default instead of
-- failing the transition.
create or replace function bpm_private.form_field__default(value jsonb, variables jsonb, element_id text)
returns jsonb
language plpgsql
stable
set search_path = ''
as $$
begin
  if value is null then
    return null;
  end if;
  return nullif(bpm_private.value__eval(value, variables, element_id), 'null');
exception when sqlstate 'BP302' then
  return null;
end;
$$;
comment on function bpm_private.form_field__default(jsonb, jsonb, text) is E'The default value of a generated form field given as an expression, or null when a variable it reads is not set.';

-- A task priority from a value: an integer (text or number), or the
-- fallback when there is none; BP303 for anything else.
create or replace function bpm_private.priority__of(value jsonb, element_id text, fallback int)
returns int
language plpgsql
immutable
set search_path = ''
as $$
declare
  v_text text := bpm_private.value__to_text(value);
begin
  if v_text is null then
    return fallback;
  end if;
  if v_text !~ '^\s*-?\d{1,9}\s*$' then
    raise exception 'priority of element % is not an integer: "%"', element_id, v_text using errcode = 'BP303';
  end if;
  return v_text::int;
end;
$$;
comment on function bpm_private.priority__of(jsonb, text, int) is E'A task priority from a value (the fallback when null; BP303 if not an integer).';

create or replace function bpm_private.user_task__priority(value jsonb, element_id text)
returns int
language plpgsql
immutable
set search_path = ''
as $$
begin
  return bpm_private.priority__of(value, element_id, 50);
end;
$$;
comment on function bpm_private.user_task__priority(jsonb, text) is E'User task priority from a value (default 50; BP303 if not an integer).';

-- The topic of an external task given by an expression: a non-empty string
-- (at most 1,000 characters), else BP303 naming the element.
create or replace function bpm_private.topic__of(value jsonb, element_id text)
returns text
language plpgsql
immutable
set search_path = ''
as $$
begin
  if pg_catalog.jsonb_typeof(value) is distinct from 'string' or pg_catalog.btrim(value #>> '{}') = ''
     or pg_catalog.length(value #>> '{}') > 1000 then
    raise exception 'the topic (job type) of element % is not a non-empty string of at most 1000 characters: %', element_id, coalesce(value::text, 'null')
      using errcode = 'BP303';
  end if;
  return pg_catalog.btrim(value #>> '{}');
end;
$$;
comment on function bpm_private.topic__of(jsonb, text) is E'The topic of an external task from the value of its topic expression (BP303 unless a non-empty string).';

-- Service, send and business-rule tasks with a topic: an external task waits
-- for a worker (fetch_and_lock). Its topic, when an expression, and its
-- priority (camunda:taskPriority, default 0) are evaluated over what the
-- task sees.
create or replace function bpm_private.external_task__create(node jsonb, variables jsonb)
returns jsonb
language plpgsql
stable
set search_path = ''
as $$
begin
  if node ->> 'topic' is null then
    raise exception 'element % has no external task topic', node ->> 'id' using errcode = 'BP305';
  end if;
  return pg_catalog.jsonb_build_object('topic', case when node ? 'topicExpr'
      then bpm_private.topic__of(bpm_private.value__eval(node -> 'topicExpr', variables, node ->> 'id'), node ->> 'id') else node ->> 'topic' end,
    'headers', node -> 'headers',
    'priority', case when node ? 'taskPriority'
      then bpm_private.priority__of(bpm_private.value__eval(node -> 'taskPriority', variables, node ->> 'id'), node ->> 'id', 0) else 0 end);
end;
$$;
comment on function bpm_private.external_task__create(jsonb, jsonb) is E'External task behaviour: the topic, headers and priority of a new external task.';
--! EndIncluded elements/tasks.sql
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
    when v_type in ('serviceTask', 'businessRuleTask') or coalesce(node ->> 'topic', '') <> '' then 'external task'
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
