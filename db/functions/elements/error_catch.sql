-- Catching errors and escalations on the way out of a token's scopes. At
-- each level, innermost first: an event subprocess of that scope with a
-- matching start event, then a matching boundary event of the scope's
-- activity (a subprocess, a multi-instance body, a call activity). A code
-- matches exactly; a definition without code catches every code. Error
-- catches always interrupt; escalation catches interrupt when they say so.

-- The boundary event of an element that catches an error or escalation code.
create or replace function bpm_private.boundary__find_catch(graph jsonb, element_id text, kind text, code text)
returns jsonb
language plpgsql
immutable
set search_path = ''
as $$
declare
  v_boundary jsonb;
  v_catch_all jsonb;
begin
  for v_i in 0 .. coalesce(pg_catalog.jsonb_array_length(graph -> 'nodes' -> element_id -> 'boundary'), 0) - 1 loop
    v_boundary := graph -> 'nodes' -> (graph -> 'nodes' -> element_id -> 'boundary' ->> v_i);
    continue when coalesce(v_boundary -> 'event' ->> 'kind', case when v_boundary ? 'error' then 'error' end) is distinct from kind;
    if coalesce(v_boundary -> 'event' ->> 'code', v_boundary -> 'error' ->> 'code') is null then
      v_catch_all := coalesce(v_catch_all, v_boundary);
    elsif coalesce(v_boundary -> 'event' ->> 'code', v_boundary -> 'error' ->> 'code') = code then
      return v_boundary;
    end if;
  end loop;
  return v_catch_all;
end;
$$;
comment on function bpm_private.boundary__find_catch(jsonb, text, text, text) is E'The boundary event of an element catching an error or escalation code (exact first, then catch-all), or null.';

-- The start event of an event subprocess (among ids) catching a code.
create or replace function bpm_private.event_subprocess__find_catch(graph jsonb, ids jsonb, kind text, code text)
returns jsonb
language plpgsql
immutable
set search_path = ''
as $$
declare
  v_start jsonb;
  v_catch_all jsonb;
begin
  for v_i in 0 .. coalesce(pg_catalog.jsonb_array_length(ids), 0) - 1 loop
    v_start := graph -> 'nodes' -> (graph -> 'nodes' -> (ids ->> v_i) ->> 'start');
    continue when v_start -> 'event' ->> 'kind' is distinct from kind;
    if v_start -> 'event' ->> 'code' is null then
      v_catch_all := coalesce(v_catch_all, v_start);
    elsif v_start -> 'event' ->> 'code' = code then
      return v_start;
    end if;
  end loop;
  return v_catch_all;
end;
$$;
comment on function bpm_private.event_subprocess__find_catch(jsonb, jsonb, text, text) is E'The start event of an event subprocess catching an error or escalation code, or null.';

-- What a catching event sets (camunda:errorCodeVariable, errorMessageVariable,
-- escalationCodeVariable): {name: value}, empty when it names no variables.
create or replace function bpm_private.catch__variables(catch_node jsonb, code text, message text)
returns jsonb
language plpgsql
immutable
set search_path = ''
as $$
declare
  v_event jsonb := catch_node -> 'event';
begin
  return case when v_event ? 'codeVariable' then pg_catalog.jsonb_build_object(v_event ->> 'codeVariable', code) else '{}' end
    || case when v_event ? 'messageVariable' then pg_catalog.jsonb_build_object(v_event ->> 'messageVariable', message) else '{}' end;
end;
$$;
comment on function bpm_private.catch__variables(jsonb, text, text) is E'The variables a catching error or escalation event sets from the caught code and message (by its codeVariable / messageVariable).';

create or replace function bpm_private.error__catch(inout st bpm_private.run_state, graph jsonb, kind text, code text, message text, out caught boolean)
language plpgsql
volatile
set search_path = ''
as $$
declare
  v_from uuid := st.cur_scope;
  v_scope uuid := st.cur_scope;
  v_pos int;
  v_ppos int;
  v_el text;
  v_catch jsonb;
begin
  caught := false;
  loop
    if v_scope is null then
      v_catch := bpm_private.event_subprocess__find_catch(graph, graph -> 'eventSubprocesses', kind, code);
      if v_catch is not null then
        st := bpm_private.event_subprocess__start(st, graph, v_catch, null, kind || 'Caught');
        st := bpm_private.scope__set_variables(st, null, bpm_private.catch__variables(v_catch, code, message));
        caught := true;
      end if;
      exit;
    end if;
    st := bpm_private.scope__load(st, v_scope);
    v_pos := pg_catalog.array_position(st.l_id, v_scope);
    v_el := st.l_el[v_pos];
    v_ppos := pg_catalog.array_position(st.l_id, st.l_parent[v_pos]);
    if st.l_kind[v_pos] = 'scope' then
      v_catch := bpm_private.event_subprocess__find_catch(graph, graph -> 'nodes' -> v_el -> 'eventSubprocesses', kind, code);
      if v_catch is not null then
        st := bpm_private.event_subprocess__start(st, graph, v_catch, v_scope, kind || 'Caught');
        st := bpm_private.scope__set_variables(st, v_scope, bpm_private.catch__variables(v_catch, code, message));
        caught := true;
        exit;
      end if;
    end if;
    -- boundary events of a multi-instance activity belong to its body
    if not (st.l_kind[v_pos] = 'scope' and v_ppos is not null and st.l_kind[v_ppos] = 'body' and st.l_el[v_ppos] = v_el) then
      v_catch := bpm_private.boundary__find_catch(graph, v_el, kind, code);
      if v_catch is not null then
        st.cur_scope := st.l_parent[v_pos];
        if kind = 'error' or coalesce((v_catch ->> 'cancelActivity')::boolean, true) then
          st := bpm_private.scope__cancel(st, array[v_scope]);
        end if;
        st := bpm_private.run__event(st, kind || 'Caught', v_scope, v_catch ->> 'id');
        st := bpm_private.scope__set_variables(st, st.cur_scope, bpm_private.catch__variables(v_catch, code, message));
        st := bpm_private.run__push(st, v_catch ->> 'id', null);
        caught := true;
        exit;
      end if;
    end if;
    v_scope := st.l_parent[v_pos];
  end loop;
  st.cur_scope := v_from;
end;
$$;
comment on function bpm_private.error__catch(bpm_private.run_state, jsonb, text, text, text) is E'Finds what catches an error or escalation thrown in the current scope and starts it (interrupting catches cancel the scope they interrupt), setting the variables it names for the code and message.';

-- Event subprocesses of a scope that start on a message, signal, timer or condition:
-- one subscription each, on the scope instance (at process level, on the
-- instance id), opened when the scope starts and closed when it ends.
create or replace function bpm_private.event_subprocess__arm(st bpm_private.run_state, graph jsonb, ids jsonb, scope_id uuid)
returns bpm_private.run_state
language plpgsql
volatile
set search_path = ''
as $$
declare
  v_start jsonb;
begin
  for v_i in 0 .. coalesce(pg_catalog.jsonb_array_length(ids), 0) - 1 loop
    v_start := graph -> 'nodes' -> (graph -> 'nodes' -> (ids ->> v_i) ->> 'start');
    continue when v_start -> 'event' ->> 'kind' not in ('message', 'signal', 'timer', 'conditional');
    st := bpm_private.subscription__add(st, coalesce(scope_id, st.instance_id),
      bpm_private.subscription__spec(v_start, st.variables, st.business_key)
        || pg_catalog.jsonb_build_object('interrupting', coalesce((v_start ->> 'interrupting')::boolean, true)));
  end loop;
  return st;
end;
$$;
comment on function bpm_private.event_subprocess__arm(bpm_private.run_state, jsonb, jsonb, uuid) is E'Opens the subscriptions of the message, signal, timer and conditional event subprocesses of a scope instance.';

-- An event subprocess starts in its scope instance (null: process level).
-- Interrupting: everything else in that scope is cancelled first, with the
-- scope's other event subprocess subscriptions.
create or replace function bpm_private.event_subprocess__start(st bpm_private.run_state, graph jsonb, start_node jsonb, scope_id uuid, event_kind text)
returns bpm_private.run_state
language plpgsql
volatile
set search_path = ''
as $$
declare
  v_esp jsonb := graph -> 'nodes' -> (start_node ->> 'scope');
  v_id uuid := bpm_private.uuid_v7();
  v_others uuid[];
begin
  if coalesce((start_node ->> 'interrupting')::boolean, true) then
    v_others := bpm_private.scope__active_children(st, event_subprocess__start.scope_id, null);
    st := bpm_private.scope__cancel(st, v_others);
    st := bpm_private.subscriptions__drop(st, array[coalesce(event_subprocess__start.scope_id, st.instance_id)]);
  end if;
  st.cur_scope := event_subprocess__start.scope_id;
  st := bpm_private.activity__add(st, v_id, v_esp ->> 'id', 'subProcess', 'active');
  st := bpm_private.run__event(st, event_kind, v_id, start_node ->> 'id');
  st := bpm_private.scope__add(st, v_id, v_esp ->> 'id', 'scope', '{"vars": {}}');
  st.cur_scope := v_id;
  return bpm_private.run__push(st, start_node ->> 'id', null);
end;
$$;
comment on function bpm_private.event_subprocess__start(bpm_private.run_state, jsonb, jsonb, uuid, text) is E'Starts an event subprocess in a scope instance (interrupting: the scope''s other activities are cancelled first).';
