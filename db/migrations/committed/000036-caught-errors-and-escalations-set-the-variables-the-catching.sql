--! Previous: sha1:2a42ff3e0ccb3a9693a9ac026830f1ffe346e971
--! Hash: sha1:39257134e0a5b45cce2b17272bc3bebad5d7fe8f
--! Message: Caught errors and escalations set the variables the catching event names (camunda:errorCodeVariable, errorMessageVariable, escalationCodeVariable); throw_bpmn_error takes an error message

-- Caught errors and escalations set the variables the catching event names
-- (camunda:errorCodeVariable, errorMessageVariable, escalationCodeVariable);
-- throw_bpmn_error takes the error's message; an error end event throws the
-- camunda:errorMessage of its bpmn:error.
drop function bpm.throw_bpmn_error(uuid, text, text, jsonb);
drop function bpm_private.token__throw(bpm.process_instance, jsonb, text[], uuid, text, text, text, jsonb);
drop function bpm_private.error__catch(bpm_private.run_state, jsonb, text, text);
--! Included elements/error_catch.sql
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
  if not (v_event ? 'codeVariable' or v_event ? 'messageVariable') then
    return '{}';
  end if;
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

-- Event subprocesses of a scope that start on a message, signal or timer:
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
    continue when v_start -> 'event' ->> 'kind' not in ('message', 'signal', 'timer');
    st := bpm_private.subscription__add(st, coalesce(scope_id, st.instance_id),
      bpm_private.subscription__spec(v_start, st.variables, st.business_key)
        || pg_catalog.jsonb_build_object('interrupting', coalesce((v_start ->> 'interrupting')::boolean, true)));
  end loop;
  return st;
end;
$$;
comment on function bpm_private.event_subprocess__arm(bpm_private.run_state, jsonb, jsonb, uuid) is E'Opens the subscriptions of the message, signal and timer event subprocesses of a scope instance.';

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
--! EndIncluded elements/error_catch.sql
--! Included elements/events.sql
-- Event behaviours (issue 4). A catching node (intermediate catch event,
-- receive task) or an event-based gateway makes its token wait (kind
-- 'event') and opens event subscriptions (buffered in s_token/s_data, written
-- by run__flush, timers enqueued as graphile-worker jobs). Activities with
-- message, signal or timer boundary events open one subscription per boundary
-- while they wait. A message catch consumes a buffered message (correlated
-- earlier with a ttl) right away instead of waiting.

-- The subscription spec of a catching node or boundary event (its `event`).
create or replace function bpm_private.subscription__spec(node jsonb, variables jsonb, business_key text)
returns jsonb
language plpgsql
stable
set search_path = ''
as $$
declare
  v_event jsonb := node -> 'event';
  v_kind text := v_event ->> 'kind';
  v_el text := node ->> 'id';
  v_spec jsonb;
begin
  if v_kind = 'message' then
    v_spec := pg_catalog.jsonb_build_object('kind', 'message',
      'name', bpm_private.value__to_text(bpm_private.value__eval(v_event -> 'name', variables, v_el)),
      'key', case when v_event -> 'correlationKey' is null or v_event -> 'correlationKey' = 'null'::jsonb then business_key
                  else bpm_private.value__to_text(bpm_private.value__eval(pg_catalog.jsonb_build_object('expr', v_event -> 'correlationKey'), variables, v_el)) end);
  elsif v_kind = 'signal' then
    v_spec := pg_catalog.jsonb_build_object('kind', 'signal',
      'name', bpm_private.value__to_text(bpm_private.value__eval(v_event -> 'name', variables, v_el)));
  elsif v_kind = 'timer' then
    v_spec := pg_catalog.jsonb_build_object('kind', 'timer') || bpm_private.timer__arm(v_event -> 'timer', variables, v_el);
  else
    return null;
  end if;
  if v_kind in ('message', 'signal') and coalesce(v_spec ->> 'name', '') = '' then
    raise exception '% name of element % is empty', v_kind, v_el using errcode = 'BP303';
  end if;
  return v_spec || pg_catalog.jsonb_build_object('id', bpm_private.uuid_v7(), 'element', v_el,
    'interrupting', coalesce((node ->> 'cancelActivity')::boolean, true));
end;
$$;
comment on function bpm_private.subscription__spec(jsonb, jsonb, text) is E'Evaluates what a catching node or boundary event waits for (message name and key, signal name, timer due time); null for other events.';

create or replace function bpm_private.subscription__add(st bpm_private.run_state, token_id uuid, spec jsonb)
returns bpm_private.run_state
language plpgsql
immutable
set search_path = ''
as $$
begin
  st.s_token := st.s_token || token_id;
  st.s_data := st.s_data || spec;
  return st;
end;
$$;
comment on function bpm_private.subscription__add(bpm_private.run_state, uuid, jsonb) is E'Buffers an event subscription of a waiting token.';

-- A message id delivered to an instance: correlating it again within a day
-- is a no-op (message__correlate).
create or replace function bpm_private.message_receipt__record(tenant_id text, message_id text, instance_id uuid)
returns void
language plpgsql
volatile
set search_path = ''
as $$
begin
  insert into bpm_private.message_receipt (tenant_id, message_id, instance_id)
  values (message_receipt__record.tenant_id, message_receipt__record.message_id, message_receipt__record.instance_id)
  on conflict on constraint message_receipt_pkey do update set instance_id = excluded.instance_id, received_at = excluded.received_at;
end;
$$;
comment on function bpm_private.message_receipt__record(text, text, uuid) is E'Records that a message id was delivered (to an instance).';

-- Takes the oldest unexpired buffered message a new subscription matches
-- (null key on either side matches any). Returns its variables. A message
-- with a message id leaves a receipt, so that sending it again is a no-op.
create or replace function bpm_private.message_buffer__take(tenant_id text, instance_id uuid, name text, correlation_key text)
returns jsonb
language plpgsql
volatile
set search_path = ''
as $$
declare
  v_id uuid;
  v_variables jsonb;
  v_message_id text;
begin
  -- the oldest match, found by index: with the key, without one, or (a
  -- receiver without a key) any; then taken unless another transaction holds it
  select m.id into v_id from (
    (select b.id, b.created_at from bpm.message_buffer b
     where b.tenant_id = message_buffer__take.tenant_id and b.name = message_buffer__take.name
       and b.correlation_key = message_buffer__take.correlation_key and b.expires_at > pg_catalog.now()
     order by b.created_at, b.id limit 1)
    union all
    (select b.id, b.created_at from bpm.message_buffer b
     where b.tenant_id = message_buffer__take.tenant_id and b.name = message_buffer__take.name
       and b.correlation_key is null and b.expires_at > pg_catalog.now()
     order by b.created_at, b.id limit 1)
    union all
    (select b.id, b.created_at from bpm.message_buffer b
     where message_buffer__take.correlation_key is null
       and b.tenant_id = message_buffer__take.tenant_id and b.name = message_buffer__take.name and b.expires_at > pg_catalog.now()
     order by b.created_at, b.id limit 1)
  ) m
  order by m.created_at, m.id
  limit 1;
  if v_id is null then
    return null;
  end if;
  delete from bpm.message_buffer b
  where b.tenant_id = message_buffer__take.tenant_id
    and b.id = (select x.id from bpm.message_buffer x where x.tenant_id = message_buffer__take.tenant_id and x.id = v_id for update skip locked)
  returning b.variables, b.message_id into v_variables, v_message_id;
  if not found then
    -- another transaction holds (takes) it: the oldest match it does not hold
    with picked as (
      select b.id from bpm.message_buffer b
      where b.tenant_id = message_buffer__take.tenant_id and b.name = message_buffer__take.name
        and b.expires_at > pg_catalog.now()
        and (b.correlation_key is null or message_buffer__take.correlation_key is null or b.correlation_key = message_buffer__take.correlation_key)
      order by b.created_at, b.id
      limit 1
      for update skip locked
    )
    delete from bpm.message_buffer b using picked p
    where b.tenant_id = message_buffer__take.tenant_id and b.id = p.id
    returning b.variables, b.message_id into v_variables, v_message_id;
  end if;
  if v_message_id is not null then
    perform bpm_private.message_receipt__record(tenant_id, v_message_id, instance_id);
  end if;
  return v_variables;
end;
$$;
comment on function bpm_private.message_buffer__take(text, uuid, text, text) is E'Consumes the oldest buffered message a new subscription matches (leaving a receipt for its message id); its variables, or null.';

-- An intermediate catch event or receive task: consume a buffered message
-- (the token leaves at once), else wait for its message, signal or timer.
create or replace function bpm_private.catch__enter(st bpm_private.run_state, graph jsonb, node jsonb, id uuid, via_flow text)
returns bpm_private.run_state
language plpgsql
volatile
set search_path = ''
as $$
declare
  v_spec jsonb := bpm_private.subscription__spec(node, st.variables, st.business_key);
  v_vars jsonb;
begin
  if v_spec is null then
    raise exception 'element % of type % has no message, signal or timer to wait for', node ->> 'id', node ->> 'type' using errcode = 'BP305';
  end if;
  if v_spec ->> 'kind' = 'message' then
    v_vars := bpm_private.message_buffer__take(st.tenant_id, st.instance_id, v_spec ->> 'name', v_spec ->> 'key');
    if v_vars is not null then
      st.variables := st.variables || v_vars;
      st.a_state[pg_catalog.array_position(st.a_id, id)] := 'completed';
      st := bpm_private.run__event(st, 'messageCorrelated', id, node ->> 'id');
      return bpm_private.node__leave(st, graph, node);
    end if;
  end if;
  st := bpm_private.wait__add(st, id, node ->> 'id', 'event', via_flow, null);
  st := bpm_private.subscription__add(st, id, v_spec);
  if node ->> 'type' = 'receiveTask' and bpm_private.node__has_subscriptions(graph, node) then
    st := bpm_private.boundary__arm(st, graph, node, id);
  end if;
  return st;
end;
$$;
comment on function bpm_private.catch__enter(bpm_private.run_state, jsonb, jsonb, uuid, text) is E'Catch event / receive task behaviour: takes a buffered message or waits for its message, signal or timer.';

-- Event-based gateway: the token waits at the gateway with one subscription
-- per following catch event; the first event wins (subscription__trigger).
-- A buffered message for one of them wins at once (document order).
create or replace function bpm_private.event_gateway__enter(st bpm_private.run_state, graph jsonb, node jsonb, id uuid, via_flow text)
returns bpm_private.run_state
language plpgsql
volatile
set search_path = ''
as $$
declare
  v_flow text;
  v_target jsonb;
  v_spec jsonb;
  v_specs jsonb[] := '{}';
  v_vars jsonb;
begin
  for v_i in 0 .. pg_catalog.jsonb_array_length(node -> 'out') - 1 loop
    v_flow := node -> 'out' ->> v_i;
    v_target := graph -> 'nodes' -> (graph -> 'flows' -> v_flow ->> 'target');
    v_spec := bpm_private.subscription__spec(v_target, st.variables, st.business_key);
    if v_spec is null then
      raise exception 'event-based gateway % leads to % which waits for no event', node ->> 'id', v_target ->> 'id' using errcode = 'BP305';
    end if;
    if v_spec ->> 'kind' = 'message' then
      v_vars := bpm_private.message_buffer__take(st.tenant_id, st.instance_id, v_spec ->> 'name', v_spec ->> 'key');
      if v_vars is not null then
        st.variables := st.variables || v_vars;
        st.a_state[pg_catalog.array_position(st.a_id, id)] := 'completed';
        st := bpm_private.run__event(st, 'messageCorrelated', id, v_target ->> 'id');
        return bpm_private.catch__passed(st, graph, v_target, v_flow);
      end if;
    end if;
    v_specs := v_specs || v_spec;
  end loop;
  st := bpm_private.wait__add(st, id, node ->> 'id', 'event', via_flow, null);
  foreach v_spec in array v_specs loop
    st := bpm_private.subscription__add(st, id, v_spec);
  end loop;
  return st;
end;
$$;
comment on function bpm_private.event_gateway__enter(bpm_private.run_state, jsonb, jsonb, uuid, text) is E'Event-based gateway behaviour: waits for the first of the events after it.';

-- A catch event whose event has happened: its activity row (completed) and
-- the token leaves it.
create or replace function bpm_private.catch__passed(st bpm_private.run_state, graph jsonb, node jsonb, via_flow text)
returns bpm_private.run_state
language plpgsql
volatile
set search_path = ''
as $$
begin
  st := bpm_private.activity__add(st, bpm_private.uuid_v7(), node ->> 'id', node ->> 'type', 'completed');
  return bpm_private.node__leave(st, graph, node);
end;
$$;
comment on function bpm_private.catch__passed(bpm_private.run_state, jsonb, jsonb, text) is E'Records a catch event that was triggered and lets the token leave it.';

-- Boundary events of an activity that just started waiting: one subscription
-- per message, signal or timer boundary (error and escalation boundaries
-- catch what is thrown at them and need none).
create or replace function bpm_private.boundary__arm(st bpm_private.run_state, graph jsonb, node jsonb, host_id uuid)
returns bpm_private.run_state
language plpgsql
volatile
set search_path = ''
as $$
declare
  v_boundary jsonb;
  v_spec jsonb;
begin
  for v_i in 0 .. pg_catalog.jsonb_array_length(node -> 'boundary') - 1 loop
    v_boundary := graph -> 'nodes' -> (node -> 'boundary' ->> v_i);
    continue when coalesce(v_boundary -> 'event' ->> 'kind', 'error') not in ('message', 'signal', 'timer');
    v_spec := bpm_private.subscription__spec(v_boundary, st.variables, st.business_key);
    st := bpm_private.subscription__add(st, host_id, v_spec);
  end loop;
  return st;
end;
$$;
comment on function bpm_private.boundary__arm(bpm_private.run_state, jsonb, jsonb, uuid) is E'Opens the subscriptions of an activity''s message, signal and timer boundary events.';

create or replace function bpm_private.node__has_subscriptions(graph jsonb, node jsonb)
returns boolean
language plpgsql
immutable
set search_path = ''
as $$
begin
  if node -> 'boundary' is null or pg_catalog.jsonb_array_length(node -> 'boundary') = 0 then
    return false;
  end if;
  for v_i in 0 .. pg_catalog.jsonb_array_length(node -> 'boundary') - 1 loop
    if graph -> 'nodes' -> (node -> 'boundary' ->> v_i) -> 'event' ->> 'kind' in ('message', 'signal', 'timer') then
      return true;
    end if;
  end loop;
  return false;
end;
$$;
comment on function bpm_private.node__has_subscriptions(jsonb, jsonb) is E'Whether an activity has message, signal or timer boundary events.';

-- Throw events: signals are broadcast and messages published (to a receiver
-- in the tenant, if any) after the run has been written (run__post). Errors
-- and escalations are caught by the nearest matching event subprocess or
-- boundary event on the way out through the token's scopes (error_catch.sql)
-- and then, in a called instance, by its call activity. An error nobody
-- catches raises an incident and the token waits at the end event
-- (retry_incident throws again); an escalation nobody catches passes.
create or replace function bpm_private.throw__enter(st bpm_private.run_state, graph jsonb, node jsonb, id uuid, via_flow text)
returns bpm_private.run_state
language plpgsql
volatile
set search_path = ''
as $$
declare
  v_event jsonb := node -> 'event';
  v_kind text := v_event ->> 'kind';
  v_el text := node ->> 'id';
  v_caught boolean := false;
  v_res record;
  v_parent uuid;
  v_message text;
begin
  if v_kind = 'signal' then
    st.p_data := st.p_data || pg_catalog.jsonb_build_object('kind', 'signal', 'element', v_el,
      'name', bpm_private.value__to_text(bpm_private.value__eval(v_event -> 'name', st.variables, v_el)));
  elsif v_kind = 'message' then
    st.p_data := st.p_data || pg_catalog.jsonb_build_object('kind', 'message', 'element', v_el,
      'name', bpm_private.value__to_text(bpm_private.value__eval(v_event -> 'name', st.variables, v_el)),
      'key', case when v_event -> 'correlationKey' is null or v_event -> 'correlationKey' = 'null'::jsonb then null
                  else bpm_private.value__to_text(bpm_private.value__eval(pg_catalog.jsonb_build_object('expr', v_event -> 'correlationKey'), st.variables, v_el)) end,
      'variables', st.variables);
  elsif v_kind in ('error', 'escalation') then
    if v_kind = 'error' or node ->> 'type' = 'endEvent' then
      st.a_state[pg_catalog.array_position(st.a_id, id)] := 'completed';
    end if;
    v_message := bpm_private.value__to_text(bpm_private.value__eval(v_event -> 'message', st.variables, v_el));
    v_res := bpm_private.error__catch(st, graph, v_kind, v_event ->> 'code', v_message);
    st := v_res.st;
    v_caught := v_res.caught;
    if not v_caught and st.is_new then
      v_parent := st.parent_id;
    elsif not v_caught then
      select i.parent_instance_id into v_parent from bpm.process_instance i where i.tenant_id = st.tenant_id and i.id = st.instance_id;
    end if;
    if not v_caught and v_parent is not null then
      -- the calling instance's call activity may catch it (after this run is written)
      st.p_data := st.p_data || pg_catalog.jsonb_build_object('kind', 'throwToParent', 'event', v_kind, 'element', v_el, 'code', v_event ->> 'code',
        'message', v_message);
    elsif not v_caught and v_kind = 'error' then
      st.a_state[pg_catalog.array_position(st.a_id, id)] := 'active';
      st := bpm_private.wait__add(st, id, v_el, 'incident', via_flow, null);
      st.p_data := st.p_data || pg_catalog.jsonb_build_object('kind', 'incident', 'element', v_el, 'type', 'unhandledBpmnError',
        'message', pg_catalog.format('BPMN error %s thrown by end event %s is not caught by any error boundary or event subprocess',
          coalesce(v_event ->> 'code', '(no code)'), v_el));
    end if;
    if node ->> 'type' = 'endEvent' and st.cur_scope is not null and st.a_state[pg_catalog.array_position(st.a_id, id)] = 'completed' then
      -- the token ended: its scope may be complete
      st.c_scope := st.c_scope || st.cur_scope;
    end if;
  end if;
  return st;
end;
$$;
comment on function bpm_private.throw__enter(bpm_private.run_state, jsonb, jsonb, uuid, text) is E'Throw and end events with a signal, message, error or escalation.';
--! EndIncluded elements/events.sql
--! Included elements/call_activity.sql
-- Call activity: the token waits (token kind call, data {child}) while a
-- child instance of the called process runs. The child is started once the
-- caller's run is written (run__post: the caller's row must exist first);
-- when it completes, its variables are mapped back and the call activity is
-- left. A BPMN error or escalation the child does not catch is thrown at the
-- call activity. Cancelling the call activity cancels the child.

create or replace function bpm_private.call__enter(st bpm_private.run_state, graph jsonb, node jsonb, id uuid)
returns bpm_private.run_state
language plpgsql
volatile
set search_path = ''
as $$
declare
  v_el text := node ->> 'id';
  v_call jsonb := node -> 'call';
  v_key text := bpm_private.value__to_text(bpm_private.value__eval(v_call -> 'processId', st.variables, v_el));
  v_vars jsonb;
  v_bk text;
  v_pos int := pg_catalog.array_position(st.l_id, st.cur_scope);
begin
  if coalesce(v_key, '') = '' then
    raise exception 'call activity % has no called process id', v_el using errcode = 'BP311';
  end if;
  -- variables down: all visible ones and/or the in mappings
  v_vars := case when coalesce((v_call ->> 'inAll')::boolean, false) then st.variables else '{}'::jsonb end
    || bpm_private.io__map(v_call -> 'in', st.variables, v_el);
  if v_call -> 'businessKey' = '"parent"'::jsonb then
    v_bk := st.business_key;
  elsif v_call ? 'businessKey' then
    v_bk := bpm_private.value__to_text(bpm_private.value__eval(v_call -> 'businessKey', st.variables, v_el));
  end if;
  st := bpm_private.scope__add(st, id, v_el, 'call', '{}');
  if not (v_pos is not null and st.l_kind[v_pos] = 'body' and st.l_el[v_pos] = v_el) and bpm_private.node__has_subscriptions(graph, node) then
    st := bpm_private.boundary__arm(st, graph, node, id);
  end if;
  st.p_data := st.p_data || pg_catalog.jsonb_build_object('kind', 'call', 'element', v_el, 'token', id, 'key', v_key,
    'binding', coalesce(v_call ->> 'binding', 'latest'), 'version', v_call -> 'version', 'versionTag', v_call -> 'versionTag',
    'variables', v_vars, 'businessKey', v_bk);
  return st;
end;
$$;
comment on function bpm_private.call__enter(bpm_private.run_state, jsonb, jsonb, uuid) is E'A token enters a call activity: it waits while the called process runs (started after the run is written).';

-- The definition a call activity calls: latest version of the key, a given
-- version, the latest with a version tag, or the one deployed together with
-- the caller. BP311 when there is none.
create or replace function bpm_private.call__definition(tenant_id text, caller_definition_id uuid, action jsonb)
returns bpm.process_definition
language plpgsql
stable
set search_path = ''
as $$
declare
  v_def bpm.process_definition;
  v_binding text := action ->> 'binding';
begin
  select d.* into v_def from bpm.process_definition d
  where d.tenant_id = call__definition.tenant_id and d.key = action ->> 'key'
    and (v_binding <> 'version' or d.version = (action ->> 'version')::int)
    and (v_binding <> 'versionTag' or d.version_tag = action ->> 'versionTag')
    and (v_binding <> 'deployment' or d.deployment_id = (select c.deployment_id from bpm.process_definition c
                                                         where c.tenant_id = call__definition.tenant_id and c.id = caller_definition_id))
  order by d.version desc limit 1;
  if not found then
    raise exception 'call activity %: no process % is deployed in this tenant (binding %)', action ->> 'element', action ->> 'key',
      v_binding || coalesce(' ' || coalesce(action ->> 'version', action ->> 'versionTag'), '') using errcode = 'BP311';
  end if;
  return v_def;
end;
$$;
comment on function bpm_private.call__definition(text, uuid, jsonb) is E'Resolves the definition a call activity calls by its binding (BP311 if none).';

-- Starts the child instance of a call activity (run__post of the caller).
create or replace function bpm_private.call__start(tenant_id text, instance_id uuid, action jsonb)
returns void
language plpgsql
volatile
set search_path = ''
as $$
declare
  v_caller bpm.process_instance;
  v_depth int;
  v_child bpm.process_instance;
begin
  select * into v_caller from bpm.process_instance i where i.tenant_id = call__start.tenant_id and i.id = call__start.instance_id;
  if not exists (select 1 from bpm_private.token t where t.tenant_id = call__start.tenant_id and t.id = (action ->> 'token')::uuid and t.kind = 'call') then
    -- the call activity was cancelled within the run that entered it: nothing to call
    return;
  end if;
  with recursive chain(id, parent, depth) as (
    select v_caller.id, v_caller.parent_instance_id, 1
    union all
    select i.id, i.parent_instance_id, c.depth + 1 from bpm.process_instance i join chain c on i.tenant_id = call__start.tenant_id and i.id = c.parent
    where c.depth <= 32
  )
  select pg_catalog.max(c.depth) into v_depth from chain c;
  if v_depth >= 32 then
    raise exception 'call activity % of instance %: calls are nested more than 32 deep (a process calling itself without end?)', action ->> 'element', instance_id
      using errcode = 'BP312';
  end if;
  -- the call token is found by the child's first run (an error or escalation it throws at once)
  update bpm_private.token t set data = '{"starting": true}'
  where t.tenant_id = call__start.tenant_id and t.id = (action ->> 'token')::uuid;
  begin
    v_child := bpm_private.instance__start(bpm_private.call__definition(tenant_id, v_caller.definition_id, action),
      null, action -> 'variables', action ->> 'businessKey', null, null, instance_id);
  exception when statement_too_complex then
    -- (54001: PostgreSQL's stack ran out before the depth limit; the innermost call says so)
    raise exception 'call activity % of instance %: calls are nested too deep for the database''s stack (at depth %; a process calling itself without end?)',
      action ->> 'element', instance_id, v_depth using errcode = 'BP312';
  end;
  update bpm_private.token t set data = pg_catalog.jsonb_build_object('child', v_child.id)
  where t.tenant_id = call__start.tenant_id and t.id = (action ->> 'token')::uuid;
  if not found then
    -- the call activity was interrupted by what its child threw while starting: the child ends too
    select * into v_child from bpm.process_instance i where i.tenant_id = call__start.tenant_id and i.id = v_child.id for update;
    if v_child.state in ('active', 'suspended') then
      perform bpm_private.instance__cancel(v_child, 'its call activity was cancelled');
    end if;
    return;
  end if;
  -- re-read: a child that completed within its start (or whose own calls did)
  if (select i.state from bpm.process_instance i where i.tenant_id = call__start.tenant_id and i.id = v_child.id) = 'completed' then
    perform bpm_private.call__child_completed(tenant_id, v_child.id);
  end if;
end;
$$;
comment on function bpm_private.call__start(text, uuid, jsonb) is E'Starts the instance a call activity calls (BP312 beyond 32 nested calls) and links it to its caller.';

-- The caller of a called instance, locked, with its waiting call token.
create or replace function bpm_private.call__caller(tenant_id text, child_id uuid, out caller bpm.process_instance, out token bpm_private.token)
language plpgsql
volatile
set search_path = ''
as $$
begin
  caller := bpm_private.instance__lock(tenant_id,
    (select i.parent_instance_id from bpm.process_instance i where i.tenant_id = call__caller.tenant_id and i.id = child_id));
  -- (a child still starting is the one whose call token says so: calls start one at a time)
  select * into token from bpm_private.token t
  where t.tenant_id = call__caller.tenant_id and t.instance_id = caller.id and t.kind = 'call'
    and (t.data ->> 'child' = child_id::text or t.data ? 'starting');
end;
$$;
comment on function bpm_private.call__caller(text, uuid) is E'Locks the calling instance of a child and finds the call token waiting for it (null if gone).';

-- A called instance completed: its variables go up, the call activity is left.
create or replace function bpm_private.call__child_completed(tenant_id text, child_id uuid)
returns void
language plpgsql
volatile
set search_path = ''
as $$
declare
  v_child bpm.process_instance;
  v_found record := bpm_private.call__caller(tenant_id, child_id);
  v_graph jsonb;
  v_joins text[];
  v_node jsonb;
  v_call jsonb;
  st bpm_private.run_state;
begin
  -- gone (cancelled, interrupted): nothing to do
  if (v_found.token).id is null or (v_found.token).data ? 'failed' or (v_found.caller).state not in ('active', 'suspended') then
    return;
  end if;
  select * into v_child from bpm.process_instance i where i.tenant_id = call__child_completed.tenant_id and i.id = child_id;
  select bpm_private.graph__in_memory(d.graph), d.inclusive_joins into v_graph, v_joins from bpm.process_definition d
  where d.tenant_id = call__child_completed.tenant_id and d.id = (v_found.caller).definition_id;
  v_node := v_graph -> 'nodes' -> (v_found.token).element_id;
  v_call := v_node -> 'call';
  st := bpm_private.run__begin(tenant_id, (v_found.caller).id, (v_found.caller).variables, false, v_joins);
  st.business_key := (v_found.caller).business_key;
  st := bpm_private.run__resume(st, v_node, (v_found.token).id);
  delete from bpm_private.token t where t.tenant_id = call__child_completed.tenant_id and t.id = (v_found.token).id;
  st := bpm_private.subscriptions__drop(st, array[(v_found.token).id]);
  st := bpm_private.activity__end(st, array[(v_found.token).id], 'completed');
  st := bpm_private.scope__set_variables(st, st.cur_scope,
    case when coalesce((v_call ->> 'outAll')::boolean, false) then v_child.variables else '{}'::jsonb end
    || bpm_private.io__map(v_call -> 'out', v_child.variables, v_node ->> 'id'));
  st := bpm_private.node__complete(st, v_graph, v_node, (v_found.token).id);
  st := bpm_private.run__drain(st, v_graph);
  perform bpm_private.run__finish(st, v_found.caller);
end;
$$;
comment on function bpm_private.call__child_completed(text, uuid) is E'A called instance completed: its outputs are mapped into the caller and the call activity is left.';

-- A called instance threw an error or escalation it did not catch: it is
-- thrown at the call activity in the caller. An error nobody catches there
-- either raises an incident on the call activity.
create or replace function bpm_private.call__child_threw(tenant_id text, child_id uuid, action jsonb)
returns void
language plpgsql
volatile
set search_path = ''
as $$
declare
  v_found record := bpm_private.call__caller(tenant_id, child_id);
  v_graph jsonb;
  v_joins text[];
  v_caught boolean;
  v_res record;
  st bpm_private.run_state;
begin
  if (v_found.token).id is null or (v_found.caller).state <> 'active' or (v_found.token).data ? 'failed' then
    return;
  end if;
  select bpm_private.graph__in_memory(d.graph), d.inclusive_joins into v_graph, v_joins from bpm.process_definition d
  where d.tenant_id = call__child_threw.tenant_id and d.id = (v_found.caller).definition_id;
  st := bpm_private.run__begin(tenant_id, (v_found.caller).id, (v_found.caller).variables, false, v_joins);
  st.business_key := (v_found.caller).business_key;
  -- thrown from inside the call activity: its token is the innermost scope
  st := bpm_private.run__resume(st, v_graph -> 'nodes' -> (v_found.token).element_id, (v_found.token).id);
  st.l_id := st.l_id || (v_found.token).id;
  st.l_parent := st.l_parent || st.cur_scope;
  st.l_el := st.l_el || (v_found.token).element_id;
  st.l_kind := st.l_kind || 'call'::text;
  st.l_data := st.l_data || (v_found.token).data;
  st.l_state := st.l_state || 'stored'::text;
  st.cur_scope := (v_found.token).id;
  v_res := bpm_private.error__catch(st, v_graph, action ->> 'event', action ->> 'code', action ->> 'message');
    st := v_res.st;
    v_caught := v_res.caught;
  if not v_caught and action ->> 'event' = 'error' then
    -- the call activity waits with an incident; retry_incident throws it again
    update bpm_private.token t set data = t.data || pg_catalog.jsonb_build_object('failed', true, 'failed_with', action)
    where t.tenant_id = call__child_threw.tenant_id and t.id = (v_found.token).id;
    perform bpm_private.incident__raise(tenant_id, (v_found.caller).id, (v_found.token).element_id, 'unhandledBpmnError',
      pg_catalog.format('BPMN error %s thrown by element %s of called instance %s is not caught by any error boundary or event subprocess',
        coalesce(action ->> 'code', '(no code)'), action ->> 'element', child_id));
    return;
  end if;
  st := bpm_private.run__drain(st, v_graph);
  perform bpm_private.run__finish(st, v_found.caller);
end;
$$;
comment on function bpm_private.call__child_threw(text, uuid, jsonb) is E'Throws a called instance''s uncaught error or escalation at its call activity in the caller.';
--! EndIncluded elements/call_activity.sql
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
        when coalesce(n.value ->> 'type', '') not in ('startEvent', 'endEvent', 'task', 'manualTask', 'userTask', 'serviceTask',
          'sendTask', 'businessRuleTask', 'exclusiveGateway', 'parallelGateway', 'inclusiveGateway', 'boundaryEvent',
          'intermediateCatchEvent', 'intermediateThrowEvent', 'receiveTask', 'eventBasedGateway', 'subProcess', 'callActivity')
          then pg_catalog.format('node %s has unsupported type %s', n.key, coalesce(n.value ->> 'type', '(none)'))
        when n.value ->> 'id' is distinct from n.key
          then pg_catalog.format('node %s has id %s', n.key, coalesce(n.value ->> 'id', '(none)'))
        else pg_catalog.format('node %s lacks its in or out list of flows', n.key)
      end into v_problem
    from pg_catalog.jsonb_each(graph -> 'nodes') n
    where coalesce(n.value ->> 'type', '') not in ('startEvent', 'endEvent', 'task', 'manualTask', 'userTask', 'serviceTask',
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
      -- scopes: a subprocess starts at its start event, nodes live in existing subprocesses
      select case when n.value ->> 'type' = 'subProcess' and not coalesce((n.value ->> 'triggeredByEvent')::boolean, false)
                       and graph -> 'nodes' -> (n.value ->> 'start') is null
                  then pg_catalog.format('subprocess %s has no start node', n.key)
                  else pg_catalog.format('node %s is in scope %s, which is not a subprocess', n.key, n.value ->> 'scope') end
      into v_problem
      from pg_catalog.jsonb_each(graph -> 'nodes') n
      where (n.value ->> 'type' = 'subProcess' and not coalesce((n.value ->> 'triggeredByEvent')::boolean, false)
             and graph -> 'nodes' -> (n.value ->> 'start') is null)
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
--! Included api/external_tasks.sql
create or replace function bpm.fetch_and_lock(topic text, worker_id text, max_tasks int default 1, lock_duration interval default '5 minutes')
returns setof bpm.external_task
language plpgsql
volatile
security definer
set search_path = ''
set plan_cache_mode = force_generic_plan
as $$
declare
  v_tenant text := bpm_private.require_context(array['bpm_admin', 'bpm_engine'], 'fetch external tasks');
begin
  if coalesce(worker_id, '') = '' then
    raise exception 'invalid argument: worker_id is required' using errcode = 'BP401';
  end if;
  if max_tasks is null or max_tasks < 1 or max_tasks > 1000 then
    raise exception 'invalid argument: max_tasks must be between 1 and 1000, got %', max_tasks using errcode = 'BP401';
  end if;
  if lock_duration is null or lock_duration <= interval '0' then
    raise exception 'invalid argument: lock_duration must be positive' using errcode = 'BP401';
  end if;
  -- oldest available first (picked and returned in that order); tasks locked
  -- by a concurrent fetch are skipped
  return query
  with picked as (
    select e.id, e.instance_id
    from bpm.external_task e
    where e.tenant_id = v_tenant and e.topic = fetch_and_lock.topic and e.state = 'open'
      and e.available_at <= pg_catalog.now()
      and (e.retries is null or e.retries > 0)
      and (e.locked_until is null or e.locked_until < pg_catalog.now())
      -- a primary-key lookup per candidate (an EXISTS may be planned as a
      -- scan of the tenant's instances per task before the first ANALYZE)
      and (select i.state from bpm.process_instance i where i.tenant_id = v_tenant and i.id = e.instance_id) = 'active'
    -- (the order of external_task_fetch_idx: the scan stops after max_tasks
    -- fetchable ones, however long the queue)
    order by e.available_at, e.created_at, e.id
    limit max_tasks
    for update of e skip locked
  ), locked as (
    update bpm.external_task e
    set worker_id = fetch_and_lock.worker_id,
      locked_until = pg_catalog.now() + lock_duration,
      variables = (select i.variables from bpm.process_instance i where i.tenant_id = v_tenant and i.id = p.instance_id)
        || coalesce(e.local_variables, '{}')
    from picked p
    where e.tenant_id = v_tenant and e.id = p.id
    returning e.*
  )
  select l.* from locked l order by l.available_at, l.created_at, l.id;
end;
$$;
comment on function bpm.fetch_and_lock(text, text, int, interval) is E'Locks up to max_tasks open external tasks of a topic in the caller''s tenant for a worker (oldest first, FOR UPDATE SKIP LOCKED so concurrent workers never get the same task) and returns them with the variables each one sees: the instance variables, overlaid by its local_variables (scope locals, loop variables, input mappings). Skips suspended instances, tasks in back-off and tasks with an open incident. Roles: bpm_admin, bpm_engine.';

-- Locks the external task's instance and checks the task is open and locked
-- by this worker. Raises BP104, BP203, BP205, and (when must_be_active) BP202/BP201.
create or replace function bpm_private.external_task__lock(tenant_id text, task_id uuid, worker_id text, action text, out task bpm.external_task, out instance bpm.process_instance)
language plpgsql
volatile
set search_path = ''
as $$
begin
  instance := bpm_private.instance__lock_tree(tenant_id,
    (select e.instance_id from bpm.external_task e where e.tenant_id = external_task__lock.tenant_id and e.id = task_id));
  if instance.id is null then
    raise exception 'external task % not found', task_id using errcode = 'BP104';
  end if;
  -- read after the lock: sees what a concurrent call on the instance committed
  select * into task from bpm.external_task e where e.tenant_id = external_task__lock.tenant_id and e.id = task_id;
  if task.state <> 'open' then
    raise exception 'external task % is % and cannot %', task_id, task.state, action using errcode = 'BP203';
  end if;
  if task.worker_id is distinct from external_task__lock.worker_id then
    raise exception 'external task % is not locked by worker % (locked by %)', task_id, worker_id, coalesce(task.worker_id, 'nobody')
      using errcode = 'BP205';
  end if;
end;
$$;
comment on function bpm_private.external_task__lock(text, uuid, text, text) is E'Locks the instance and checks an external task is open and held by the worker.';

create or replace function bpm.complete_external_task(task_id uuid, worker_id text, variables jsonb default '{}')
returns bpm.external_task
language plpgsql
volatile
security definer
set search_path = ''
set plan_cache_mode = force_generic_plan
as $$
declare
  v_tenant text := bpm_private.require_context(array['bpm_admin', 'bpm_engine'], 'complete an external task');
  v_variables jsonb := bpm_private.require_object(variables, 'variables');
  v_task bpm.external_task;
  v_instance bpm.process_instance;
  v_locked record;
begin
  -- ===== LOCK the instance (loading its graph), then close the task if every rule holds
  -- (a called instance locks the root of its call tree first, see complete_task)
  select i as instance, d.graph, d.inclusive_joins into v_locked
  from bpm.process_instance i
  join bpm.process_definition d on d.tenant_id = i.tenant_id and d.id = i.definition_id
  where i.tenant_id = v_tenant
    and i.id = (select e.instance_id from bpm.external_task e where e.tenant_id = v_tenant and e.id = task_id)
    and i.root_instance_id is null
  for update of i;
  if not found then
    select i as instance, d.graph, d.inclusive_joins into v_locked
    from bpm_private.instance__lock_tree(v_tenant, (select e.instance_id from bpm.external_task e where e.tenant_id = v_tenant and e.id = task_id)) i
    join bpm.process_definition d on d.tenant_id = i.tenant_id and d.id = i.definition_id;
  end if;
  v_instance := v_locked.instance;
  update bpm.external_task e
  set state = 'completed', ended_at = pg_catalog.now(), locked_until = null
  where e.tenant_id = v_tenant and e.id = task_id and (e.state = 'open') is true and e.worker_id = complete_external_task.worker_id
    and v_instance.state = 'active'
  returning * into v_task;
  if not found then
    -- ===== GUARD: say precisely why (BP104, BP203, BP205, BP202/BP201)
    perform bpm_private.external_task__lock(v_tenant, task_id, worker_id, 'complete it');
    perform bpm_private.instance__require_active(v_instance, 'complete external task ' || task_id);
  end if;
  -- ===== LEAVE the task
  perform bpm_private.token__move(v_instance, v_locked.graph, v_locked.inclusive_joins, v_task.id, v_task.element_id, null, v_variables, 'externalTaskCompleted');
  return v_task;
end;
$$;
comment on function bpm.complete_external_task(uuid, text, jsonb) is E'Completes an external task locked by worker_id and continues the instance; variables merge per top-level key into the instance, or into the local of that name of the nearest enclosing subprocess that has one. Errors: BP104 not found, BP203 not open, BP205 not locked by this worker, BP202 instance suspended. Roles: bpm_admin, bpm_engine.';

create or replace function bpm.fail_external_task(task_id uuid, worker_id text, error_message text, retries int, retry_after interval default '0')
returns bpm.external_task
language plpgsql
volatile
security definer
set search_path = ''
set plan_cache_mode = force_generic_plan
as $$
declare
  v_tenant text := bpm_private.require_context(array['bpm_admin', 'bpm_engine'], 'fail an external task');
  v_task bpm.external_task;
  v_incident uuid;
begin
  if retries is null or retries < 0 then
    raise exception 'invalid argument: retries must be 0 or more, got %', retries using errcode = 'BP401';
  end if;
  if retry_after is null or retry_after < interval '0' then
    raise exception 'invalid argument: retry_after must not be negative' using errcode = 'BP401';
  end if;
  v_task := (bpm_private.external_task__lock(v_tenant, task_id, worker_id, 'fail it')).task;
  update bpm.external_task e
  set retries = fail_external_task.retries, error_message = fail_external_task.error_message,
    worker_id = null, locked_until = null, available_at = pg_catalog.now() + retry_after
  where e.tenant_id = v_tenant and e.id = task_id
  returning * into v_task;
  if retries = 0 then
    insert into bpm.incident (tenant_id, instance_id, element_id, incident_type, message, external_task_id)
    values (v_tenant, v_task.instance_id, v_task.element_id, 'failedExternalTask', error_message, v_task.id)
    returning id into v_incident;
  elsif retry_after = interval '0' then
    perform bpm_private.external_task__notify(v_tenant);
  end if;
  perform bpm_private.event__emit(v_tenant, v_task.instance_id,
    array['externalTaskFailed'] || case when v_incident is not null then array['incidentCreated'] else '{}' end,
    array[v_task.id] || case when v_incident is not null then array[v_incident] else '{}' end,
    array[v_task.element_id] || case when v_incident is not null then array[v_task.element_id] else '{}' end);
  return v_task;
end;
$$;
comment on function bpm.fail_external_task(uuid, text, text, int, interval) is E'Reports a failure of an external task locked by worker_id. retries = how many retries remain; the task is fetchable again after retry_after. With 0 retries an incident failedExternalTask is raised. Roles: bpm_admin, bpm_engine.';

-- error_message: what the worker says about the error; a catching event
-- with camunda:errorMessageVariable stores it (and the code by
-- camunda:errorCodeVariable).
create or replace function bpm.throw_bpmn_error(task_id uuid, worker_id text, error_code text, variables jsonb default '{}', error_message text default null)
returns bpm.external_task
language plpgsql
volatile
security definer
set search_path = ''
set plan_cache_mode = force_generic_plan
as $$
declare
  v_tenant text := bpm_private.require_context(array['bpm_admin', 'bpm_engine'], 'throw a BPMN error');
  v_variables jsonb := bpm_private.require_object(variables, 'variables');
  v_task bpm.external_task;
  v_instance bpm.process_instance;
  v_boundary text;
  v_graph jsonb;
  v_joins text[];
  v_locked record;
  v_incident uuid;
  v_message text := 'BPMN error ' || coalesce(error_code, '(no code)') || coalesce(': ' || error_message, '');
begin
  v_locked := bpm_private.external_task__lock(v_tenant, task_id, worker_id, 'throw an error from it');
  v_task := v_locked.task;
  v_instance := v_locked.instance;
  perform bpm_private.instance__require_active(v_instance, 'throw a BPMN error from external task ' || task_id);
  select d.graph, d.inclusive_joins into v_graph, v_joins from bpm.process_definition d
  where d.tenant_id = v_tenant and d.id = v_instance.definition_id;
  v_boundary := bpm_private.error_boundary__find(v_graph, v_task.element_id, error_code);
  if v_boundary is null and bpm_private.token__throw(v_instance, v_graph, v_joins, v_task.id, v_task.element_id, 'error', error_code, error_message, v_variables) then
    -- caught on the way out (an enclosing subprocess, event subprocess, multi-instance body)
    update bpm.external_task e set error_message = v_message, locked_until = null
    where e.tenant_id = v_tenant and e.id = task_id
    returning * into v_task;
    return v_task;
  end if;
  if v_boundary is null then
    update bpm.external_task e
    set retries = 0, error_message = v_message || ' is not caught', worker_id = null, locked_until = null
    where e.tenant_id = v_tenant and e.id = task_id
    returning * into v_task;
    insert into bpm.incident (tenant_id, instance_id, element_id, incident_type, message, external_task_id)
    values (v_tenant, v_task.instance_id, v_task.element_id, 'unhandledBpmnError',
      v_message || ' thrown by element ' || v_task.element_id || ' is not caught by any error boundary event', v_task.id)
    returning id into v_incident;
    perform bpm_private.event__emit(v_tenant, v_task.instance_id, array['externalTaskFailed', 'incidentCreated'],
      array[v_task.id, v_incident], array[v_task.element_id, v_task.element_id]);
    return v_task;
  end if;
  update bpm.external_task e
  set state = 'cancelled', ended_at = pg_catalog.now(), locked_until = null, error_message = v_message
  where e.tenant_id = v_tenant and e.id = task_id
  returning * into v_task;
  perform bpm_private.token__move(v_instance, v_graph, v_joins, v_task.id, v_task.element_id, v_boundary,
    v_variables || bpm_private.catch__variables(v_graph -> 'nodes' -> v_boundary, error_code, error_message), 'externalTaskCancelled');
  return v_task;
end;
$$;
comment on function bpm.throw_bpmn_error(uuid, text, text, jsonb, text) is E'Reports a business error for an external task locked by worker_id: the matching error boundary event (by code, else a catch-all) interrupts the task and its path is taken; else the nearest matching catch on the way out (an error event subprocess or a boundary of an enclosing subprocess, which is cancelled); variables merge into the instance, and the catching event''s camunda:errorCodeVariable / errorMessageVariable receive error_code / error_message. Nothing catches it: incident unhandledBpmnError (retry_incident makes the task available again). Roles: bpm_admin, bpm_engine.';

create or replace function bpm.retry_incident(incident_id uuid, retries int default 1)
returns bpm.incident
language plpgsql
volatile
security definer
set search_path = ''
set plan_cache_mode = force_generic_plan
as $$
declare
  v_tenant text := bpm_private.require_context(array['bpm_admin', 'bpm_engine'], 'retry an incident');
  v_incident bpm.incident;
  v_instance_id uuid;
begin
  if retries is null or retries < 1 then
    raise exception 'invalid argument: retries must be at least 1, got %', retries using errcode = 'BP401';
  end if;
  select i.instance_id into v_instance_id from bpm.incident i where i.tenant_id = v_tenant and i.id = incident_id;
  if not found then
    raise exception 'incident % not found', incident_id using errcode = 'BP105';
  end if;
  perform bpm_private.instance__lock(v_tenant, v_instance_id);
  select * into v_incident from bpm.incident i where i.tenant_id = v_tenant and i.id = incident_id;
  if v_incident.resolved_at is not null then
    raise exception 'incident % is already resolved', incident_id using errcode = 'BP206';
  end if;
  update bpm.external_task e
  set retries = retry_incident.retries, available_at = pg_catalog.now()
  where e.tenant_id = v_tenant and e.id = v_incident.external_task_id and (e.state = 'open') is true;
  if found then
    perform bpm_private.external_task__notify(v_tenant);
  end if;
  update bpm.incident i set resolved_at = pg_catalog.now()
  where i.tenant_id = v_tenant and i.id = incident_id
  returning * into v_incident;
  if v_incident.external_task_id is null then
    perform bpm_private.incident__retry_element(v_incident);
  end if;
  perform bpm_private.event__emit(v_tenant, v_incident.instance_id, array['incidentResolved'], array[v_incident.id], array[v_incident.element_id]);
  return v_incident;
end;
$$;
comment on function bpm.retry_incident(uuid, int) is E'Resolves an open incident and makes its work available again with the given retries (external task: fetchable again; failedJob of a timer: the timer fires again; unhandled error end event: it is entered again). Errors: BP105 not found, BP206 already resolved. Roles: bpm_admin, bpm_engine.';

-- Incidents without an external task: a timer or asynchronous continuation
-- that failed (its job runs again now), or an error end event nobody caught (its token
-- enters it again, which raises a new incident unless a catcher appeared), or
-- a called instance's error nobody caught (thrown at the call activity again).
create or replace function bpm_private.incident__retry_element(incident bpm.incident)
returns void
language plpgsql
volatile
set search_path = ''
as $$
declare
  v_sub bpm.event_subscription;
  v_token uuid;
  v_data jsonb;
  v_locked record;
  st bpm_private.run_state;
  v_graph jsonb;
begin
  update bpm.event_subscription s set incident_id = null
  where s.tenant_id = incident.tenant_id and s.incident_id = incident.id
  returning * into v_sub;
  if found then
    perform bpm_private.timer__enqueue(v_sub.tenant_id, v_sub.id, pg_catalog.now());
    return;
  end if;
  select t.id into v_token from bpm_private.token t
  where t.tenant_id = incident.tenant_id and t.instance_id = incident.instance_id and t.element_id = incident.element_id
    and t.kind in ('asyncBefore', 'asyncAfter')
  limit 1;
  if found then
    perform bpm_private.async__enqueue(incident.tenant_id, v_token, bpm_private.instance__node(incident.tenant_id, incident.instance_id, incident.element_id));
    return;
  end if;
  -- a call activity whose called instance threw an error nobody caught: thrown again
  update bpm_private.token t set data = t.data - 'failed'
  where t.tenant_id = incident.tenant_id and t.instance_id = incident.instance_id and t.element_id = incident.element_id
    and t.kind = 'call' and t.data ? 'failed'
  returning t.data into v_data;
  if found then
    perform bpm_private.call__child_threw(incident.tenant_id, (v_data ->> 'child')::uuid, v_data -> 'failed_with');
    return;
  end if;
  delete from bpm_private.token t
  where t.tenant_id = incident.tenant_id and t.instance_id = incident.instance_id and t.element_id = incident.element_id and t.kind = 'incident'
  returning t.id into v_token;
  if not found then
    return;
  end if;
  select i as instance, d.graph, d.inclusive_joins into v_locked
  from bpm.process_instance i join bpm.process_definition d on d.tenant_id = i.tenant_id and d.id = i.definition_id
  where i.tenant_id = incident.tenant_id and i.id = incident.instance_id;
  v_graph := bpm_private.graph__in_memory(v_locked.graph);
  st := bpm_private.run__begin(incident.tenant_id, incident.instance_id, (v_locked.instance).variables, false, v_locked.inclusive_joins);
  st.business_key := (v_locked.instance).business_key;
  st := bpm_private.run__resume(st, v_graph -> 'nodes' -> incident.element_id, v_token);
  st := bpm_private.activity__end(st, array[v_token], 'cancelled');
  st := bpm_private.run__push(st, incident.element_id, null);
  st := bpm_private.run__drain(st, v_graph);
  perform bpm_private.run__finish(st, v_locked.instance);
end;
$$;
comment on function bpm_private.incident__retry_element(bpm.incident) is E'Retries an incident that has no external task: fires the failed timer again, or re-enters the error end event.';

-- Wake-up calls for workers: a worker that LISTENs on channel
-- bpm_external_task holds a lease per tenant it serves; while one is live,
-- transactions that make an external task of the tenant fetchable notify the
-- channel (no payload: every listener of the cluster sees it). Without a
-- lease nothing is sent, because NOTIFY makes committing transactions queue
-- behind one another; workers then find tasks by polling.
create or replace function bpm_private.external_task__notify(tenant_id text)
returns void
language plpgsql
volatile
set search_path = ''
as $$
begin
  if exists (select 1 from bpm_private.task_listener l
             where l.tenant_id = external_task__notify.tenant_id and l.expires_at > pg_catalog.now()) then
    perform pg_catalog.pg_notify('bpm_external_task', '');
  end if;
end;
$$;
comment on function bpm_private.external_task__notify(text) is E'Notifies channel bpm_external_task (empty payload) when a worker holds a live lease of the tenant.';

create or replace function bpm.register_task_listener(listener_id text, ttl interval default '30 seconds')
returns timestamptz
language plpgsql
volatile
security definer
set search_path = ''
set plan_cache_mode = force_generic_plan
as $$
declare
  v_tenant text := bpm_private.require_context(array['bpm_admin', 'bpm_engine'], 'listen for external tasks');
  v_expires timestamptz;
begin
  perform bpm_private.lease__check(listener_id, ttl);
  -- expired leases go; a ttl of 0 releases this one (a worker that stops)
  delete from bpm_private.task_listener l where l.tenant_id = v_tenant
    and (l.expires_at < pg_catalog.now() or (ttl = interval '0' and l.listener_id = register_task_listener.listener_id));
  if ttl = interval '0' then
    return pg_catalog.now();
  end if;
  insert into bpm_private.task_listener (tenant_id, listener_id, expires_at)
  values (v_tenant, register_task_listener.listener_id, pg_catalog.now() + ttl)
  on conflict on constraint task_listener_pkey do update set expires_at = excluded.expires_at
  returning task_listener.expires_at into v_expires;
  return v_expires;
end;
$$;
comment on function bpm.register_task_listener(text, interval) is E'Worker-side: while registered (until ttl passes; renew it), transactions that make an external task of the caller''s tenant fetchable (created, failed with retry_after 0, incident retried) NOTIFY channel bpm_external_task with an empty payload, so LISTENing workers fetch at once instead of at their next poll. A ttl of 0 releases the lease at once (a worker that stops). Returns the expiry. Errors: BP401 malformed arguments. Roles: bpm_admin, bpm_engine.';
--! EndIncluded api/external_tasks.sql
--! Included setup/grants.sql
-- Execute grants: each API function to exactly the roles its guard admits
-- (the guard still checks; the grant keeps others from reaching it at all).
revoke execute on all functions in schema bpm from public;
revoke execute on all functions in schema bpm_private from public;
grant execute on function bpm.deploy(jsonb) to bpm_admin, bpm_designer;
grant execute on function bpm.start_process(text, jsonb, text, text) to bpm_admin, bpm_user;
grant execute on function bpm.complete_task(uuid, jsonb) to bpm_admin, bpm_user;
grant execute on function bpm.claim_task(uuid) to bpm_admin, bpm_user;
grant execute on function bpm.unclaim_task(uuid) to bpm_admin, bpm_user;
grant execute on function bpm.set_assignee(uuid, text) to bpm_admin;
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
grant execute on function bpm.broadcast_signal(text, jsonb) to bpm_admin, bpm_user, bpm_engine;
grant execute on function bpm.fire_timer(uuid) to bpm_admin, bpm_engine;
grant execute on function bpm.fire_due_timers(uuid, int) to bpm_admin, bpm_engine;
grant execute on function bpm.deliver_deferred(uuid) to bpm_admin, bpm_engine;
grant execute on function bpm.continue_async(uuid, boolean) to bpm_admin, bpm_engine;
grant execute on function bpm.process_task_deadline(uuid, text) to bpm_admin, bpm_engine;
grant execute on function bpm.migrate_process_instances(uuid[], uuid, jsonb) to bpm_admin;
grant execute on function bpm.modify_process_instance(uuid, jsonb) to bpm_admin;
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
