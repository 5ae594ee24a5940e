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
    v_spec := pg_catalog.jsonb_build_object('kind', 'timer', 'priority', bpm_private.node__job_priority(node, variables))
      || bpm_private.timer__arm(v_event -> 'timer', variables, v_el);
  elsif v_kind = 'conditional' then
    -- evaluated when it opens and when variables change (condition.sql)
    v_spec := '{"kind": "conditional"}'::jsonb;
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
comment on function bpm_private.subscription__spec(jsonb, jsonb, text) is E'Evaluates what a catching node or boundary event waits for (message name and key, signal name, timer due time, a condition); null for other events.';

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
  elsif v_spec ->> 'kind' = 'conditional'
        and bpm_private.condition__test(node, case when st.cur_scope is null then st.variables else bpm_private.scope__variables(st, st.cur_scope, null) end) then
    -- the condition holds already: no wait
    st.a_state[pg_catalog.array_position(st.a_id, id)] := 'completed';
    st := bpm_private.run__event(st, 'conditionFulfilled', id, node ->> 'id');
    return bpm_private.node__leave(st, graph, node);
  end if;
  st := bpm_private.wait__add(st, id, node ->> 'id', 'event', via_flow, null);
  st := bpm_private.subscription__add(st, id, v_spec);
  if node ->> 'type' = 'receiveTask' and bpm_private.node__has_subscriptions(graph, node) then
    st := bpm_private.boundary__arm(st, graph, node, id);
  end if;
  return st;
end;
$$;
comment on function bpm_private.catch__enter(bpm_private.run_state, jsonb, jsonb, uuid, text) is E'Catch event / receive task behaviour: takes a buffered message, passes a condition that holds, or waits for its message, signal, timer or condition.';

-- Event-based gateway: the token waits at the gateway with one subscription
-- per following catch event; the first event wins (subscription__trigger).
-- A buffered message for one of them, or a condition that holds already,
-- wins at once (document order).
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
    elsif v_spec ->> 'kind' = 'conditional'
          and bpm_private.condition__test(v_target, case when st.cur_scope is null then st.variables else bpm_private.scope__variables(st, st.cur_scope, null) end) then
      -- its condition holds already: that path is taken at once
      st.a_state[pg_catalog.array_position(st.a_id, id)] := 'completed';
      st := bpm_private.run__event(st, 'conditionFulfilled', id, v_target ->> 'id');
      return bpm_private.catch__passed(st, graph, v_target, v_flow);
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
comment on function bpm_private.event_gateway__enter(bpm_private.run_state, jsonb, jsonb, uuid, text) is E'Event-based gateway behaviour: waits for the first of the events after it (message, timer, signal or condition); a buffered message or a condition that holds wins at once.';

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
-- per message, signal, timer or conditional boundary (error and escalation boundaries
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
    continue when coalesce(v_boundary -> 'event' ->> 'kind', 'error') not in ('message', 'signal', 'timer', 'conditional');
    v_spec := bpm_private.subscription__spec(v_boundary, st.variables, st.business_key);
    st := bpm_private.subscription__add(st, host_id, v_spec);
  end loop;
  return st;
end;
$$;
comment on function bpm_private.boundary__arm(bpm_private.run_state, jsonb, jsonb, uuid) is E'Opens the subscriptions of an activity''s message, signal, timer and conditional boundary events.';

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
    if graph -> 'nodes' -> (node -> 'boundary' ->> v_i) -> 'event' ->> 'kind' in ('message', 'signal', 'timer', 'conditional') then
      return true;
    end if;
  end loop;
  return false;
end;
$$;
comment on function bpm_private.node__has_subscriptions(jsonb, jsonb) is E'Whether an activity has message, signal, timer or conditional boundary events.';

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
