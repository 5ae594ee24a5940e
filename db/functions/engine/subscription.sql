-- Triggering event subscriptions: a message, signal or timer reached what
-- waits for it. The caller has locked the instance and re-read the
-- subscription after the lock (so a subscription triggers at most once).

-- Closes subscriptions of waiting tokens (and cancels their timer jobs).
create or replace function bpm_private.subscriptions__remove(tenant_id text, instance_id uuid, token_ids uuid[])
returns void
language plpgsql
volatile
set search_path = ''
as $$
declare
  v_timers uuid[];
  v_done text;
begin
  with removed as (
    delete from bpm.event_subscription s
    where s.tenant_id = subscriptions__remove.tenant_id and s.instance_id = subscriptions__remove.instance_id
      and (token_ids is null or s.token_id = any(token_ids))
    returning s.id, s.kind
  )
  select coalesce(array_agg(r.id) filter (where r.kind = 'timer'), '{}') into v_timers from removed r;
  if pg_catalog.cardinality(v_timers) > 0 then
    -- (an assignment, not PERFORM: an expression, not a statement with its executor)
    v_done := bpm_private.timer__dequeue(v_timers);
  end if;
end;
$$;
comment on function bpm_private.subscriptions__remove(text, uuid, uuid[]) is E'Removes the event subscriptions of the given waiting tokens (null: all of the instance) and their timer jobs.';

-- Starts an instance at a given start event (null: the none start event,
-- BP308 without one; message, signal and timer starts: their triggers);
-- parent_instance_id: the calling instance of a call activity's child.
create or replace function bpm_private.instance__start(definition bpm.process_definition, start_node text, variables jsonb, business_key text, event_kind text, event_subject uuid,
  parent_instance_id uuid default null)
returns bpm.process_instance
language plpgsql
volatile
set search_path = ''
as $$
declare
  -- the graph detoasted once (graph__in_memory, inlined: this is every start's path)
  v_graph jsonb := '{}'::jsonb || definition.graph;
  st bpm_private.run_state := bpm_private.run__begin(definition.tenant_id, bpm_private.uuid_v7(), variables, true, definition.inclusive_joins);
  v_done boolean;
  v_flushed text;
  v_instance bpm.process_instance;
begin
  if start_node is null then
    -- start_process: the none start event
    start_node := v_graph ->> 'start';
    if start_node is null then
      raise exception 'process % has no none start event: it starts by message, signal, timer or condition only', definition.key using errcode = 'BP308';
    end if;
  end if;
  if v_graph -> 'nodes' -> start_node ? 'initiator' then
    -- camunda:initiator: the starting user's id (null when none is set)
    st.variables := st.variables || pg_catalog.jsonb_build_object(v_graph -> 'nodes' -> start_node ->> 'initiator', bpm_private.current_user_id());
  end if;
  if business_key is not null and v_graph ? 'uniqueBusinessKey' then
    perform bpm_private.business_key__claim(definition, business_key);
  end if;
  -- walk in memory first: an instance that ends within this call is inserted
  -- completed (run__event and run__push inlined)
  st.business_key := business_key;
  st.parent_id := parent_instance_id;
  st.x_kind := array['instanceStarted'];
  st.x_subject := array[st.instance_id];
  st.x_el := array[null::text];
  if event_kind is not null then
    st := bpm_private.run__event(st, event_kind, event_subject, start_node);
  end if;
  st.q_node := array[start_node];
  st.q_flow := array[null::text];
  st.q_scope := array[null::uuid];
  if v_graph ? 'eventSubprocesses' then
    st := bpm_private.event_subprocess__arm(st, v_graph, v_graph -> 'eventSubprocesses', null);
  end if;
  st := bpm_private.run__drain(st, v_graph);
  v_done := st.terminated or pg_catalog.cardinality(st.w_id) = 0;
  if v_done and pg_catalog.cardinality(st.s_token) > 0 then
    -- an instance that ends at once keeps none of its event subprocesses' subscriptions
    st := bpm_private.subscriptions__drop(st, array[st.instance_id]);
  end if;
  if v_done then
    st := bpm_private.run__event(st, 'instanceCompleted', st.instance_id, null);
  end if;
  insert into bpm.process_instance (tenant_id, id, definition_id, business_key, state, variables, started_by, ended_at, parent_instance_id, root_instance_id)
  values (definition.tenant_id, st.instance_id, definition.id, business_key,
    case when v_done then 'completed' else 'active' end, st.variables, nullif(pg_catalog.current_setting('bpm.user_id', true), ''),
    case when v_done then pg_catalog.now() end, instance__start.parent_instance_id,
    case when instance__start.parent_instance_id is not null then
      (select coalesce(p.root_instance_id, p.id) from bpm.process_instance p
       where p.tenant_id = definition.tenant_id and p.id = instance__start.parent_instance_id) end)
  returning * into v_instance;
  v_flushed := bpm_private.run__flush(st);
  -- conditional events that hold as they open (condition.sql)
  if (v_graph ? 'conditionals' and not v_done and bpm_private.conditions__check(definition.tenant_id, st.instance_id, null, null))
     or pg_catalog.cardinality(st.p_data) > 0 then
    -- what the flush started (called instances, conditional events) may have moved it on
    select * into v_instance from bpm.process_instance i where i.tenant_id = definition.tenant_id and i.id = st.instance_id;
  end if;
  return v_instance;
end;
$$;
comment on function bpm_private.instance__start(bpm.process_definition, text, jsonb, text, text, uuid, uuid) is E'Starts an instance of a definition at a start event (of a calling instance, for call activities) and runs it until every token waits.';

-- A token resumes in the scope it waited in: the scope of its activity row
-- (only looked up for elements inside a subprocess or multi-instance body,
-- and compensation handlers, which run in their compensation's scope).
create or replace function bpm_private.run__resume(st bpm_private.run_state, node jsonb, token_id uuid)
returns bpm_private.run_state
language plpgsql
volatile
set search_path = ''
as $$
begin
  if node ? 'scope' or node ? 'loop' or node ? 'isForCompensation' then
    st.cur_scope := (select a.scope_id from bpm.activity_instance a where a.tenant_id = st.tenant_id and a.id = token_id);
    st := bpm_private.scope__load(st, st.cur_scope);
  end if;
  return st;
end;
$$;
comment on function bpm_private.run__resume(bpm_private.run_state, jsonb, uuid) is E'Sets the run''s current scope to the scope a waiting token is in.';

-- A waiting token's activity completed: it leaves over its flows, or, as an
-- inner instance of a multi-instance body, is counted there.
create or replace function bpm_private.node__complete(st bpm_private.run_state, graph jsonb, node jsonb, token_id uuid)
returns bpm_private.run_state
language plpgsql
volatile
set search_path = ''
as $$
declare
  v_pos int := pg_catalog.array_position(st.l_id, st.cur_scope);
  v_vars jsonb;
begin
  if node ? 'outputs' and node ->> 'type' not in ('subProcess', 'callActivity') then
    -- output mappings of a task, over what it sees (its inputs included)
    v_vars := case when st.cur_scope is null then st.variables else bpm_private.scope__variables(st, st.cur_scope, token_id) end;
    v_vars := v_vars || bpm_private.io__map(node -> 'inputs', v_vars, node ->> 'id');
    st := bpm_private.scope__set_variables(st, st.cur_scope, bpm_private.io__map(node -> 'outputs', v_vars, node ->> 'id'));
  end if;
  if node ? 'loop' and v_pos is not null and st.l_kind[v_pos] = 'body' and st.l_el[v_pos] = node ->> 'id' then
    return bpm_private.mi__inner_done(st, graph, node, st.cur_scope, token_id);
  end if;
  return bpm_private.node__leave(st, graph, node);
end;
$$;
comment on function bpm_private.node__complete(bpm_private.run_state, jsonb, jsonb, uuid) is E'A wait state''s activity completed: leave it, or count it in its multi-instance body.';

create or replace function bpm_private.subscription__trigger(sub bpm.event_subscription, variables jsonb, event_kind text)
returns bpm.process_instance
language plpgsql
volatile
set search_path = ''
as $$
declare
  v_locked record;
begin
  select i as instance, d.graph, d.inclusive_joins into v_locked
  from bpm.process_instance i
  join bpm.process_definition d on d.tenant_id = i.tenant_id and d.id = i.definition_id
  where i.tenant_id = sub.tenant_id and i.id = sub.instance_id;
  return bpm_private.subscription__fire(sub, variables, event_kind, v_locked.instance, v_locked.graph, v_locked.inclusive_joins);
end;
$$;
comment on function bpm_private.subscription__trigger(bpm.event_subscription, jsonb, text) is E'A message, signal or timer reached a subscription of an instance the caller has locked: reads the instance and its definition, then subscription__fire.';

-- (a batch of timers reads each instance with its definition as it locks it:
-- one statement instead of two)
create or replace function bpm_private.subscription__fire(sub bpm.event_subscription, variables jsonb, event_kind text,
  instance bpm.process_instance, graph jsonb, inclusive_joins text[])
returns bpm.process_instance
language plpgsql
volatile
set search_path = ''
as $$
declare
  v_graph jsonb := bpm_private.graph__in_memory(graph);
  v_node jsonb;
  v_token_el text;
  v_scope uuid;
  v_done text;
  st bpm_private.run_state := bpm_private.run__begin(sub.tenant_id, sub.instance_id, instance.variables || variables, false, inclusive_joins);
begin
  st.business_key := instance.business_key;
  st := bpm_private.run__event(st, event_kind, sub.id, sub.element_id);
  v_node := v_graph -> 'nodes' -> sub.element_id;
  if v_node ->> 'type' = 'boundaryEvent' then
    -- the boundary event runs where its activity is
    st := bpm_private.run__resume(st, v_node, sub.token_id);
    if sub.interrupting then
      -- the activity it is attached to ends cancelled, with everything in it
      st := bpm_private.scope__cancel(st, array[sub.token_id]);
    elsif sub.kind = 'timer' then
      -- a non-interrupting cycle fires again while the activity waits
      perform bpm_private.timer__rearm_or_close(sub);
    end if;
    st := bpm_private.run__push(st, sub.element_id, null);
  elsif v_node ->> 'type' = 'startEvent' then
    -- an event subprocess of a scope instance (its token) or of the instance
    v_scope := nullif(sub.token_id, sub.instance_id);
    st := bpm_private.scope__load(st, v_scope);
    if not sub.interrupting and sub.kind = 'timer' then
      perform bpm_private.timer__rearm_or_close(sub);
    elsif sub.interrupting or sub.kind = 'timer' then
      delete from bpm.event_subscription s where s.tenant_id = sub.tenant_id and s.id = sub.id;
    end if;
    st := bpm_private.event_subprocess__start(st, v_graph, v_node, v_scope, event_kind);
  else
    -- a catch event or receive task (the subscription's own element), or an
    -- event-based gateway whose first event this is: the token and every
    -- subscription of it go (a receive task's boundary events too)
    delete from bpm_private.token t where t.tenant_id = sub.tenant_id and t.id = sub.token_id
    returning t.element_id into v_token_el;
    st := bpm_private.run__resume(st, v_node, sub.token_id);
    v_done := bpm_private.subscriptions__remove(sub.tenant_id, sub.instance_id, array[sub.token_id]);
    st := bpm_private.activity__end(st, array[sub.token_id], 'completed');
    if v_token_el = sub.element_id then
      st := bpm_private.node__complete(st, v_graph, v_node, sub.token_id);
    else
      st := bpm_private.catch__passed(st, v_graph, v_node, null);
    end if;
  end if;
  st := bpm_private.run__drain(st, v_graph);
  return bpm_private.run__finish(st, instance);
end;
$$;
comment on function bpm_private.subscription__fire(bpm.event_subscription, jsonb, text, bpm.process_instance, jsonb, text[]) is E'A message, signal or timer reached a subscription: the catch event, receive task or event-based gateway continues, or the boundary event starts its path (interrupting: its activity is cancelled). The caller has locked the instance and read it with its definition''s graph.';

-- What a run leaves to do once it is written: broadcast thrown signals,
-- publish thrown messages, raise incidents of unhandled errors, schedule
-- the deadline jobs of new user tasks, mark compensated what completed in
-- the run, keep the locals of completed compensable multi-instance inner
-- instances.
create or replace function bpm_private.run__post(st bpm_private.run_state)
returns void
language plpgsql
volatile
set search_path = ''
as $$
declare
  v_action jsonb;
begin
  foreach v_action in array st.p_data loop
    if v_action ->> 'kind' = 'signal' then
      perform bpm_private.signal__broadcast(st.tenant_id, v_action ->> 'name', '{}');
    elsif v_action ->> 'kind' = 'message' then
      perform bpm_private.message__correlate(st.tenant_id, v_action ->> 'name', v_action ->> 'key', v_action -> 'variables', null, null, false, false);
    elsif v_action ->> 'kind' = 'deadline' then
      perform bpm_private.user_task__enqueue_deadlines(st.tenant_id, (v_action ->> 'task')::uuid, v_action -> 'data');
    elsif v_action ->> 'kind' = 'incident' then
      perform bpm_private.incident__raise(st.tenant_id, st.instance_id, v_action ->> 'element', v_action ->> 'type', v_action ->> 'message');
    elsif v_action ->> 'kind' = 'call' then
      perform bpm_private.call__start(st.tenant_id, st.instance_id, v_action);
    elsif v_action ->> 'kind' = 'throwToParent' then
      perform bpm_private.call__child_threw(st.tenant_id, st.instance_id, v_action);
    elsif v_action ->> 'kind' = 'childCompleted' then
      perform bpm_private.call__child_completed(st.tenant_id, st.instance_id);
    elsif v_action ->> 'kind' = 'compensated' then
      update bpm.activity_instance a set state = 'compensated'
      where a.tenant_id = st.tenant_id and a.id = (v_action ->> 'activity')::uuid and a.state = 'completed';
    elsif v_action ->> 'kind' = 'innerLocals' then
      update bpm.activity_instance a set local_variables = v_action -> 'vars'
      where a.tenant_id = st.tenant_id and a.id = (v_action ->> 'activity')::uuid;
    end if;
  end loop;
end;
$$;
comment on function bpm_private.run__post(bpm_private.run_state) is E'Broadcasts signals, publishes messages and raises incidents a run produced, after it is written.';

-- Raises an incident of an instance (with its incidentCreated event).
create or replace function bpm_private.incident__raise(tenant_id text, instance_id uuid, element_id text, incident_type text, message text)
returns uuid
language plpgsql
volatile
set search_path = ''
as $$
declare
  v_incident uuid;
begin
  insert into bpm.incident (tenant_id, instance_id, element_id, incident_type, message)
  values (incident__raise.tenant_id, incident__raise.instance_id, incident__raise.element_id, incident__raise.incident_type, incident__raise.message)
  returning id into v_incident;
  perform bpm_private.event__emit(tenant_id, instance_id, array['incidentCreated'], array[v_incident], array[element_id]);
  return v_incident;
end;
$$;
comment on function bpm_private.incident__raise(text, uuid, text, text, text) is E'Raises an incident (failedJob, unhandledBpmnError, …) and records its event.';
