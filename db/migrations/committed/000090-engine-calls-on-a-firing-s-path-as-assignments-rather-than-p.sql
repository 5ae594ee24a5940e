--! Previous: sha1:e9db878d519e5fac97459f91282ee3b6512d5e91
--! Hash: sha1:d70c5104257e7e5e5bff44c3131f1d8df4de81c6
--! Message: Engine calls on a firing's path as assignments rather than PERFORM

--! Included engine/subscription.sql
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
--! EndIncluded engine/subscription.sql
--! Included engine/run.sql
-- The run: one engine call walks tokens in memory from where they are,
-- through every automatic step, until each token waits or ends; then
-- run__flush writes what changed with one set-based statement per table.

create or replace function bpm_private.run__begin(tenant_id text, instance_id uuid, variables jsonb, is_new boolean, inclusive_joins text[])
returns bpm_private.run_state
language plpgsql
immutable
set search_path = ''
as $$
begin
  -- one expression: PL/pgSQL prepares every expression once per transaction,
  -- so on this path fewer, larger expressions are cheaper than many small ones
  return row(tenant_id, instance_id, variables, is_new, false, coalesce(inclusive_joins, '{}'), 0,
    '{}', '{}', 1,            -- q_node, q_flow, q_pos
    '{}', '{}', '{}', '{}',   -- a_id, a_el, a_type, a_state
    '{}', '{}',               -- e_id, e_state
    '{}', '{}', '{}', '{}', '{}', -- w_id, w_el, w_kind, w_flow, w_data
    '{}', '{}', '{}',         -- x_kind, x_subject, x_el
    '{}', '{}', '{}', null,   -- s_token, s_data, p_data, business_key
    null, null, false,        -- resume_node, resume_id, upsert
    null, '{}', '{}', '{}',   -- cur_scope, q_scope, a_scope, c_scope
    '{}', '{}', '{}', '{}', '{}', '{}', -- l_id, l_parent, l_el, l_kind, l_data, l_state
    null,                     -- parent_id
    0,                        -- step_credit
    true                      -- process_subscriptions (unknown until run__drain reads the graph)
  )::bpm_private.run_state;
end;
$$;
comment on function bpm_private.run__begin(text, uuid, jsonb, boolean, text[]) is E'A fresh run state for one engine call.';

create or replace function bpm_private.run__push(st bpm_private.run_state, node_id text, via_flow text)
returns bpm_private.run_state
language plpgsql
immutable
set search_path = ''
as $$
begin
  st.q_node := st.q_node || node_id;
  st.q_flow := st.q_flow || via_flow;
  st.q_scope := st.q_scope || st.cur_scope;
  return st;
end;
$$;
comment on function bpm_private.run__push(bpm_private.run_state, text, text) is E'Queues a token to enter node_id (arriving via via_flow) in the current scope.';

-- The token lifecycle. Runs queued tokens until all wait or end; then
-- completes scopes (subprocesses, multi-instance bodies) nothing runs in any
-- more, fires inclusive joins that became ready (no token can reach them any
-- more) and runs on. Per token: ENTER (a history row, in the token's scope),
-- EXECUTE (the element's behaviour, dispatched explicitly by type: wait,
-- join, scope, terminate or pass through), LEAVE (the flow policy picks the
-- outgoing flows; a token with none ends, and its scope may be complete).
-- This loop runs for every automatic step of every call, so the queue, the
-- history rows and the new wait states live in local arrays (appended in
-- place); they are handed to the run state only around behaviours that work
-- on all of it (joins, scopes, terminate, asynchronous continuations) and at
-- the end. That is why this function is longer than the others: splitting
-- the loop would copy the arrays at every call. Tokens at process level
-- (scope null) read the instance variables as they are; tokens in a scope
-- see its locals.
create or replace function bpm_private.run__drain(st bpm_private.run_state, graph jsonb)
returns bpm_private.run_state
language plpgsql
volatile
set search_path = ''
as $$
declare
  q_node text[] := st.q_node;
  q_flow text[] := st.q_flow;
  q_scope uuid[] := st.q_scope;
  q_pos int := st.q_pos;
  a_id uuid[] := st.a_id;
  a_el text[] := st.a_el;
  a_type text[] := st.a_type;
  a_state text[] := st.a_state;
  a_scope uuid[] := st.a_scope;
  w_id uuid[] := st.w_id;
  w_el text[] := st.w_el;
  w_kind text[] := st.w_kind;
  w_flow text[] := st.w_flow;
  w_data jsonb[] := st.w_data;
  v_data jsonb;
  v_scope_pos jsonb;
  v_scope_count int;
  v_pos int;
  v_child uuid;
  v_locals jsonb;
  v_node_id text;
  v_via text;
  v_scope uuid;
  v_vars jsonb;
  v_inner boolean;
  v_entered record;
  v_node jsonb;
  v_type text;
  v_id uuid;
  v_flow text;
  v_flows text[];
  v_slow text;
  v_queued int;
  v_steps int := st.steps;
begin
  -- only process-level event subprocesses subscribe on the instance itself
  -- (run__finish: nothing to remove when the instance completes)
  st.process_subscriptions := graph ? 'eventSubprocesses';
  loop
    while not st.terminated and q_pos <= pg_catalog.cardinality(q_node) loop
      v_node_id := q_node[q_pos];
      v_via := q_flow[q_pos];
      v_scope := q_scope[q_pos];
      q_pos := q_pos + 1;
      -- a token of a scope cancelled in this call
      continue when v_node_id is null;
      v_steps := v_steps + 1;
      if v_steps > 2000 + coalesce(st.step_credit, 0) then
        raise exception 'instance % took more than % automatic steps in one call (endless loop without a wait state?) at element %', st.instance_id, 2000 + coalesce(st.step_credit, 0), v_node_id
          using errcode = 'BP306';
      end if;
      v_node := graph -> 'nodes' -> v_node_id;
      v_type := v_node ->> 'type';
      if v_node is null then
        raise exception 'element % is not in the process graph', v_node_id using errcode = 'BP305';
      end if;
      if v_scope is distinct from st.cur_scope then
        st.cur_scope := v_scope;
      end if;
      -- ===== ENTER (an asyncBefore continuation goes on with its stored row)
      if st.resume_id is not null and v_node_id = st.resume_node then
        v_id := st.resume_id;
        st.resume_id := null;
        st.upsert := true;
        v_slow := null;
      else
        v_id := bpm_private.uuid_v7();
        -- (asyncInner, camunda:asyncBefore on multi-instance loop
        -- characteristics: an inner instance, entering inside its body, waits)
        v_slow := case when (v_node ->> 'asyncBefore')::boolean
                         or (v_scope is not null and (v_node -> 'loop' ->> 'asyncInner')::boolean
                             and st.l_kind[pg_catalog.array_position(st.l_id, v_scope)] = 'body'
                             and st.l_el[pg_catalog.array_position(st.l_id, v_scope)] = v_node_id) then 'asyncBefore' end;
      end if;
      a_id := pg_catalog.array_append(a_id, v_id);
      a_el := pg_catalog.array_append(a_el, v_node_id);
      a_type := pg_catalog.array_append(a_type, v_type);
      a_state := pg_catalog.array_append(a_state, 'active'::text);
      a_scope := pg_catalog.array_append(a_scope, v_scope);
      if v_slow = 'asyncBefore' then
        st.w_id := w_id; st.w_el := w_el; st.w_kind := w_kind; st.w_flow := w_flow; st.w_data := w_data;
        st := bpm_private.async__wait(st, v_node, 'asyncBefore', v_via, v_id);
        w_id := st.w_id; w_el := st.w_el; w_kind := st.w_kind; w_flow := st.w_flow; w_data := st.w_data;
        continue;
      end if;
      v_vars := st.variables;
      v_inner := false;
      v_pos := null;
      v_locals := null;
      if v_scope is not null and not v_node ? 'loop' then
        -- a token in a cached scope sees its scopes' locals (scope__variables
        -- inlined over a map of the cached scopes' positions, rebuilt when
        -- scopes were added: a call would copy the run state, and a lookup
        -- scan the scopes, both of which grow with a large multi-instance)
        if v_scope_count is distinct from pg_catalog.cardinality(st.l_id) then
          v_scope_pos := coalesce((select pg_catalog.jsonb_object_agg(l.id, l.pos) from unnest(st.l_id) with ordinality as l(id, pos)), '{}');
          v_scope_count := pg_catalog.cardinality(st.l_id);
        end if;
        v_pos := (v_scope_pos ->> v_scope::text)::int;
      end if;
      if v_pos is not null then
        v_locals := '{}';
        v_child := v_id;
        while v_pos is not null loop
          v_locals := bpm_private.scope__locals(st.l_kind[v_pos], st.l_data[v_pos], v_child) || v_locals;
          v_child := st.l_id[v_pos];
          v_pos := (v_scope_pos ->> st.l_parent[v_pos]::text)::int;
        end loop;
        v_vars := st.variables || v_locals;
      elsif v_scope is not null or v_node ? 'loop' then
        -- scoped tokens see their scopes' locals; a multi-instance activity enters its body
        v_entered := bpm_private.scope__enter_token(st, v_node, v_id, v_scope);
        st := v_entered.st;
        v_vars := v_entered.variables;
        v_inner := v_entered.is_inner;
        v_slow := case when v_entered.is_body then 'multiInstance' end;
      end if;
      if v_node ? 'inputs' and v_type not in ('subProcess', 'callActivity') and v_slow is null then
        -- input mappings of a task (of each inner instance, not of a multi-instance body): locals its attributes see
        v_data := bpm_private.io__map(v_node -> 'inputs', v_vars, v_node_id);
        v_vars := v_vars || v_data;
        v_locals := v_locals || v_data;
      end if;
      -- ===== EXECUTE
      case
        when v_slow is not null then
          null;
        when v_type in ('userTask', 'serviceTask') or coalesce(v_node ->> 'topic', '') <> '' then
          -- tasks are wait states themselves (boundary events of inner instances belong to their body)
          -- (wait__add inlined on the local arrays)
          if v_type = 'userTask' then
            v_data := bpm_private.user_task__create(v_node, v_vars);
            if v_data ? 'deadline' then
              st.p_data := st.p_data || pg_catalog.jsonb_build_object('kind', 'deadline', 'task', v_id, 'data', v_data);
            end if;
          else
            v_data := bpm_private.external_task__create(v_node, v_vars);
          end if;
          if v_scope is not null or v_node ? 'inputs' then
            -- what the task sees beyond the instance's variables (scope locals, loop variables, inputs)
            -- (over the locals alone when known: the same result without comparing every instance variable)
            v_data := v_data || pg_catalog.jsonb_build_object('locals', bpm_private.task__locals(coalesce(v_locals, v_vars), st.variables));
          end if;
          w_id := pg_catalog.array_append(w_id, v_id);
          w_el := pg_catalog.array_append(w_el, v_node_id);
          w_kind := pg_catalog.array_append(w_kind, case when v_type = 'userTask' then 'userTask' else 'externalTask' end);
          w_flow := pg_catalog.array_append(w_flow, v_via);
          w_data := pg_catalog.array_append(w_data, v_data);
          if pg_catalog.jsonb_array_length(coalesce(v_node -> 'boundary', '[]')) > 0 and bpm_private.node__has_subscriptions(graph, v_node) and not v_inner then
            st := bpm_private.boundary__arm(st, graph, v_node, v_id);
          end if;
          continue;
        when v_type = 'parallelGateway' and pg_catalog.jsonb_array_length(v_node -> 'in') > 1 then
          v_slow := 'parallelJoin';
        when v_type = 'inclusiveGateway' and pg_catalog.jsonb_array_length(v_node -> 'in') > 1 then
          -- waits; fired below once no other token can reach it
          w_id := pg_catalog.array_append(w_id, v_id);
          w_el := pg_catalog.array_append(w_el, v_node_id);
          w_kind := pg_catalog.array_append(w_kind, 'join'::text);
          w_flow := pg_catalog.array_append(w_flow, v_via);
          w_data := pg_catalog.array_append(w_data, null::jsonb);
          continue;
        when v_type = 'endEvent' and v_node ? 'terminate' and (v_node ->> 'terminate')::boolean then
          a_state[pg_catalog.cardinality(a_state)] := 'completed';
          v_slow := 'terminate';
        when v_type in ('subProcess', 'callActivity') then
          v_slow := v_type;
        when v_node -> 'event' ->> 'kind' in ('compensate', 'cancel') and v_type in ('intermediateThrowEvent', 'endEvent') then
          v_slow := v_node -> 'event' ->> 'kind';
        when v_node -> 'event' ->> 'kind' = 'link' then
          -- a link throw jumps to its catch event; a link catch passes
          a_state[pg_catalog.cardinality(a_state)] := 'completed';
          v_slow := case when v_type = 'intermediateThrowEvent' then 'link' end;
        when v_type in ('intermediateCatchEvent', 'receiveTask') then
          v_slow := 'catch';
        when v_type = 'eventBasedGateway' then
          v_slow := 'eventGateway';
        when v_node -> 'event' ->> 'kind' in ('signal', 'message', 'error', 'escalation')
             and v_type in ('intermediateThrowEvent', 'endEvent', 'sendTask') then
          v_slow := 'throw';
        when v_type in ('task', 'manualTask', 'scriptTask', 'businessRuleTask') and v_node ? 'outputs' then
          -- a pass-through task's output mappings, over what it sees (its inputs included)
          a_state[pg_catalog.cardinality(a_state)] := 'completed';
          st := bpm_private.scope__set_variables(st, v_scope, bpm_private.io__map(v_node -> 'outputs', v_vars, v_node_id));
        when v_type in ('startEvent', 'endEvent', 'task', 'manualTask', 'scriptTask', 'businessRuleTask', 'exclusiveGateway', 'parallelGateway', 'inclusiveGateway',
                        'boundaryEvent', 'intermediateThrowEvent', 'sendTask') then
          a_state[pg_catalog.cardinality(a_state)] := 'completed';
        else
          raise exception 'element % has type % which this engine version cannot execute', v_node_id, v_type
            using errcode = 'BP305';
      end case;
      if v_slow is null and v_inner then
        -- an inner instance of a multi-instance task completed: its body counts it
        v_slow := 'innerDone';
      end if;
      if v_slow is not null then
        -- behaviours on the whole run state (scoped ones see the token's variables)
        st.q_node := q_node; st.q_flow := q_flow; st.q_scope := q_scope; st.q_pos := q_pos;
        st.a_id := a_id; st.a_el := a_el; st.a_type := a_type; st.a_state := a_state; st.a_scope := a_scope;
        st.w_id := w_id; st.w_el := w_el; st.w_kind := w_kind; st.w_flow := w_flow; st.w_data := w_data;
        if v_scope is not null then
          st := bpm_private.run__with_variables(st, graph, v_node, v_id, v_via, v_slow, v_vars);
        else
          st := bpm_private.node__execute(st, graph, v_node, v_id, v_via, v_slow);
        end if;
        q_node := st.q_node; q_flow := st.q_flow; q_scope := st.q_scope; q_pos := st.q_pos;
        a_id := st.a_id; a_el := st.a_el; a_type := st.a_type; a_state := st.a_state; a_scope := st.a_scope;
        w_id := st.w_id; w_el := st.w_el; w_kind := st.w_kind; w_flow := st.w_flow; w_data := st.w_data;
        continue;
      end if;
      -- ===== LEAVE
      if (v_node ->> 'asyncAfter')::boolean then
        st.w_id := w_id; st.w_el := w_el; st.w_kind := w_kind; st.w_flow := w_flow; st.w_data := w_data;
        st := bpm_private.async__wait(st, v_node, 'asyncAfter', null, bpm_private.uuid_v7());
        w_id := st.w_id; w_el := st.w_el; w_kind := st.w_kind; w_flow := st.w_flow; w_data := st.w_data;
        continue;
      end if;
      v_flows := bpm_private.flows__select(graph, v_node, v_vars);
      if pg_catalog.cardinality(v_flows) = 0 and v_scope is not null then
        -- the token ends: its scope may be complete (checked once the queue is empty)
        st.c_scope := st.c_scope || v_scope;
      end if;
      foreach v_flow in array v_flows loop
        q_node := pg_catalog.array_append(q_node, graph -> 'flows' -> v_flow ->> 'target');
        q_flow := pg_catalog.array_append(q_flow, v_flow);
        q_scope := pg_catalog.array_append(q_scope, v_scope);
      end loop;
    end loop;
    st.q_node := q_node; st.q_flow := q_flow; st.q_scope := q_scope; st.q_pos := q_pos; st.steps := v_steps;
    st.a_id := a_id; st.a_el := a_el; st.a_type := a_type; st.a_state := a_state; st.a_scope := a_scope;
    st.w_id := w_id; st.w_el := w_el; st.w_kind := w_kind; st.w_flow := w_flow; st.w_data := w_data;
    exit when st.terminated or (pg_catalog.cardinality(st.c_scope) = 0 and pg_catalog.cardinality(st.inclusive_joins) = 0);
    v_queued := pg_catalog.cardinality(st.q_node);
    st := bpm_private.run__settle(st, graph);
    exit when pg_catalog.cardinality(st.q_node) = v_queued or st.terminated;
    q_node := st.q_node; q_flow := st.q_flow; q_scope := st.q_scope; q_pos := st.q_pos;
    a_id := st.a_id; a_el := st.a_el; a_type := st.a_type; a_state := st.a_state; a_scope := st.a_scope;
    w_id := st.w_id; w_el := st.w_el; w_kind := st.w_kind; w_flow := st.w_flow; w_data := st.w_data;
  end loop;
  return st;
end;
$$;
comment on function bpm_private.run__drain(bpm_private.run_state, jsonb) is E'The token lifecycle: advances every queued token to its next wait state or end, completing scopes that ended (BP306 guards endless loops: 2,000 steps per call, plus 50 per inner instance of a multi-instance activity entered for the first time in its scope, at most 500,000 more).';

-- Once every queued token waits or ended: scopes nothing runs in any more
-- complete (a completing scope may end the last token of the scope around
-- it), then inclusive joins no token can reach any more fire (one at a
-- time: what it starts may reach the others).
create or replace function bpm_private.run__settle(st bpm_private.run_state, graph jsonb)
returns bpm_private.run_state
language plpgsql
volatile
set search_path = ''
as $$
declare
  v_queued int := pg_catalog.cardinality(st.q_node);
  v_join text;
begin
  while pg_catalog.cardinality(st.c_scope) > 0 and pg_catalog.cardinality(st.q_node) = v_queued loop
    st := bpm_private.scope__complete_ended(st, graph);
  end loop;
  if pg_catalog.cardinality(st.q_node) = v_queued then
    foreach v_join in array st.inclusive_joins loop
      st := bpm_private.inclusive_join__try_fire(st, graph, v_join);
      exit when pg_catalog.cardinality(st.q_node) > v_queued or st.terminated;
    end loop;
  end if;
  return st;
end;
$$;
comment on function bpm_private.run__settle(bpm_private.run_state, jsonb) is E'Completes ended scopes and fires ready inclusive joins once the run''s queue is empty.';

-- Behaviours that work on the whole run state, dispatched by kind.
create or replace function bpm_private.node__execute(st bpm_private.run_state, graph jsonb, node jsonb, id uuid, via text, kind text)
returns bpm_private.run_state
language plpgsql
volatile
set search_path = ''
as $$
begin
  case kind
    when 'parallelJoin' then
      return bpm_private.parallel_join__arrive(st, graph, node, id, via);
    when 'catch' then
      return bpm_private.catch__enter(st, graph, node, id, via);
    when 'eventGateway' then
      return bpm_private.event_gateway__enter(st, graph, node, id, via);
    when 'throw' then
      st := bpm_private.throw__enter(st, graph, node, id, via);
      if node -> 'event' ->> 'kind' in ('signal', 'message') or (node -> 'event' ->> 'kind' = 'escalation' and not st.terminated
         and st.a_state[pg_catalog.array_position(st.a_id, id)] = 'active') then
        st.a_state[pg_catalog.array_position(st.a_id, id)] := 'completed';
        st := bpm_private.node__leave(st, graph, node);
      end if;
      return st;
    when 'subProcess' then
      return bpm_private.subprocess__enter(st, graph, node, id);
    when 'callActivity' then
      return bpm_private.call__enter(st, graph, node, id);
    when 'multiInstance' then
      return bpm_private.mi__enter(st, graph, node, id);
    when 'innerDone' then
      return bpm_private.mi__inner_done(st, graph, node, st.cur_scope, id);
    when 'link' then
      return bpm_private.run__push(st, node -> 'event' ->> 'target', null);
    when 'compensate' then
      return bpm_private.compensation__start(st, graph, node, id);
    when 'cancel' then
      return bpm_private.transaction__cancel(st, graph, node, id);
    else
      return bpm_private.scope__terminate(st, id);
  end case;
end;
$$;
comment on function bpm_private.node__execute(bpm_private.run_state, jsonb, jsonb, uuid, text, text) is E'Runs the behaviour of an element that works on the whole run state (joins, catch and throw events, scopes, compensation, terminate).';

-- A behaviour of a token in a scope: it reads the variables the token sees
-- (the instance's and its scopes' locals); what it adds goes to the instance.
create or replace function bpm_private.run__with_variables(st bpm_private.run_state, graph jsonb, node jsonb, id uuid, via text, kind text, variables jsonb)
returns bpm_private.run_state
language plpgsql
volatile
set search_path = ''
as $$
declare
  v_instance jsonb := st.variables;
begin
  st.variables := variables;
  st := bpm_private.node__execute(st, graph, node, id, via, kind);
  -- keys the behaviour set or changed belong to the instance
  st.variables := v_instance || coalesce((select pg_catalog.jsonb_object_agg(e.key, e.value) from pg_catalog.jsonb_each(st.variables) e
    where not (variables ? e.key) or variables -> e.key is distinct from e.value), '{}');
  return st;
end;
$$;
comment on function bpm_private.run__with_variables(bpm_private.run_state, jsonb, jsonb, uuid, text, text, jsonb) is E'Runs a behaviour over the variables a scoped token sees; variables it sets are written to the instance.';

create or replace function bpm_private.run__flush(st bpm_private.run_state)
returns void
language plpgsql
volatile
set search_path = ''
as $$
declare
  v_nx int := pg_catalog.cardinality(st.x_kind);
  v_ne int := pg_catalog.cardinality(st.e_id);
  v_na int := pg_catalog.cardinality(st.a_id);
  v_nw int := pg_catalog.cardinality(st.w_id);
  -- event ids (bpm_private.event__next_ids, inlined: every call flushes)
  v_ord int := coalesce(nullif(pg_catalog.current_setting('bpm.event_ord', true), '')::int, 0);
  v_base bigint := (pg_catalog.pg_current_xact_id()::text::bigint << 20) + v_ord;
  v_listening boolean;
  v_ord_set text;
begin
  if v_ord < 0 or v_ord + v_nx + v_ne + v_na + v_nw + 1 >= 1048576 then
    raise exception 'more than 1048575 events in one transaction' using errcode = 'BP307';
  end if;
  -- (assignments, not PERFORM, here and below: an expression, not a
  -- statement with its executor; v_ord_set takes what they return)
  v_ord_set := pg_catalog.set_config('bpm.event_ord', (v_ord + v_nx + v_ne + v_na + v_nw + 1)::text, true);
  -- events, in this order: the explicit ones (x_*), ended stored history
  -- rows, the history rows and the tasks of this call, instanceCompleted
  -- last; ids are reserved per group (no sort; ids skip where a buffered wait
  -- is a join token: they only need to grow). History: rows stored earlier
  -- that ended now, and the rows of this call (seq follows the order of the
  -- a_* arrays, the order tokens entered nodes). One statement writes both,
  -- over one unnest of the rows (each statement costs its executor set-up),
  -- in three variants: an ON CONFLICT clause or an update of no rows would
  -- cost every call (1.6 % of a completion for ON CONFLICT).
  if st.upsert then
    -- an asyncBefore continuation: its row is stored already
    with ended as (
      -- by primary key, "= any": an index scan whatever the statistics say (a
      -- join with unnest may be planned as a hash join over the tenant's history)
      update bpm.activity_instance a
      set state = st.e_state[pg_catalog.array_position(st.e_id, a.id)], ended_at = pg_catalog.now()
      where a.tenant_id = st.tenant_id and a.id = any(st.e_id)
      returning a.id, a.element_id, a.state
    ), history as (
      insert into bpm.activity_instance (tenant_id, id, instance_id, element_id, element_type, state, ended_at, scope_id)
      select st.tenant_id, u.id, st.instance_id, u.el, u.typ, u.state,
        case when u.state = 'active' then null else pg_catalog.now() end, u.scope
      from unnest(st.a_id, st.a_el, st.a_type, st.a_state, st.a_scope) with ordinality as u(id, el, typ, state, scope, ord)
      order by u.ord
      on conflict on constraint activity_instance_pkey do update set state = excluded.state, ended_at = excluded.ended_at
    ), ins as (
      insert into bpm.event (tenant_id, id, instance_id, kind, subject_id, element_id)
      select st.tenant_id, v_base + case when x.kind = 'instanceCompleted' then v_nx + v_ne + v_na + v_nw + 1 else x.ord end,
        st.instance_id, x.kind, x.subject, x.el
      from unnest(st.x_kind, st.x_subject, st.x_el) with ordinality as x(kind, subject, el, ord)
      union all
      select st.tenant_id, v_base + v_nx + pg_catalog.array_position(st.e_id, e.id), st.instance_id,
        case e.state when 'completed' then 'activityCompleted' else 'activityCancelled' end, e.id, e.element_id
      from ended e
      union all
      select st.tenant_id, v_base + v_nx + v_ne + a.ord, st.instance_id,
        case a.state when 'active' then 'activityStarted' when 'completed' then 'activityCompleted' else 'activityCancelled' end, a.id, a.el
      from unnest(st.a_id, st.a_el, st.a_state) with ordinality as a(id, el, state, ord)
      union all
      select st.tenant_id, v_base + v_nx + v_ne + v_na + w.ord, st.instance_id,
        case w.kind when 'userTask' then 'taskCreated' else 'externalTaskCreated' end, w.id, w.el
      from unnest(st.w_id, st.w_el, st.w_kind) with ordinality as w(id, el, kind, ord)
      where w.kind in ('userTask', 'externalTask')
    )
    select exists (select 1 from bpm_private.event_listener l where l.tenant_id = st.tenant_id and l.expires_at > pg_catalog.now())
    into v_listening;
  elsif v_ne = 0 then
    -- (every start)
    with a as (
      select u.id, u.el, u.typ, u.state, u.scope, u.ord
      from unnest(st.a_id, st.a_el, st.a_type, st.a_state, st.a_scope) with ordinality as u(id, el, typ, state, scope, ord)
    ), history as (
      insert into bpm.activity_instance (tenant_id, id, instance_id, element_id, element_type, state, ended_at, scope_id)
      select st.tenant_id, a.id, st.instance_id, a.el, a.typ, a.state, case when a.state = 'active' then null else pg_catalog.now() end, a.scope
      from a order by a.ord
    ), ins as (
      insert into bpm.event (tenant_id, id, instance_id, kind, subject_id, element_id)
      select st.tenant_id, v_base + case when x.kind = 'instanceCompleted' then v_nx + v_na + v_nw + 1 else x.ord end,
        st.instance_id, x.kind, x.subject, x.el
      from unnest(st.x_kind, st.x_subject, st.x_el) with ordinality as x(kind, subject, el, ord)
      union all
      select st.tenant_id, v_base + v_nx + a.ord, st.instance_id,
        case a.state when 'active' then 'activityStarted' when 'completed' then 'activityCompleted' else 'activityCancelled' end, a.id, a.el
      from a
      union all
      select st.tenant_id, v_base + v_nx + v_na + w.ord, st.instance_id,
        case w.kind when 'userTask' then 'taskCreated' else 'externalTaskCreated' end, w.id, w.el
      from unnest(st.w_id, st.w_el, st.w_kind) with ordinality as w(id, el, kind, ord)
      where w.kind in ('userTask', 'externalTask')
    )
    select exists (select 1 from bpm_private.event_listener l where l.tenant_id = st.tenant_id and l.expires_at > pg_catalog.now())
    into v_listening;
  else
    -- (a task completed: its row ends)
    with ended as (
      update bpm.activity_instance a
      set state = st.e_state[pg_catalog.array_position(st.e_id, a.id)], ended_at = pg_catalog.now()
      where a.tenant_id = st.tenant_id and a.id = any(st.e_id)
      returning a.id, a.element_id, a.state
    ), a as (
      select u.id, u.el, u.typ, u.state, u.scope, u.ord
      from unnest(st.a_id, st.a_el, st.a_type, st.a_state, st.a_scope) with ordinality as u(id, el, typ, state, scope, ord)
    ), history as (
      insert into bpm.activity_instance (tenant_id, id, instance_id, element_id, element_type, state, ended_at, scope_id)
      select st.tenant_id, a.id, st.instance_id, a.el, a.typ, a.state, case when a.state = 'active' then null else pg_catalog.now() end, a.scope
      from a order by a.ord
    ), ins as (
      insert into bpm.event (tenant_id, id, instance_id, kind, subject_id, element_id)
      select st.tenant_id, v_base + case when x.kind = 'instanceCompleted' then v_nx + v_ne + v_na + v_nw + 1 else x.ord end,
        st.instance_id, x.kind, x.subject, x.el
      from unnest(st.x_kind, st.x_subject, st.x_el) with ordinality as x(kind, subject, el, ord)
      union all
      select st.tenant_id, v_base + v_nx + pg_catalog.array_position(st.e_id, e.id), st.instance_id,
        case e.state when 'completed' then 'activityCompleted' else 'activityCancelled' end, e.id, e.element_id
      from ended e
      union all
      select st.tenant_id, v_base + v_nx + v_ne + a.ord, st.instance_id,
        case a.state when 'active' then 'activityStarted' when 'completed' then 'activityCompleted' else 'activityCancelled' end, a.id, a.el
      from a
      union all
      select st.tenant_id, v_base + v_nx + v_ne + v_na + w.ord, st.instance_id,
        case w.kind when 'userTask' then 'taskCreated' else 'externalTaskCreated' end, w.id, w.el
      from unnest(st.w_id, st.w_el, st.w_kind) with ordinality as w(id, el, kind, ord)
      where w.kind in ('userTask', 'externalTask')
    )
    select exists (select 1 from bpm_private.event_listener l where l.tenant_id = st.tenant_id and l.expires_at > pg_catalog.now())
    into v_listening;
  end if;
  if v_listening then
    perform pg_catalog.pg_notify('bpm_event', (v_base + 1)::text);
  end if;
  if 'dirty' = any(st.l_state) then
    -- a body's collection and inner instances (token__columns) are written
    -- again only when they changed (a sequential body's next inner
    -- instance), not each time an inner instance completes
    update bpm_private.token t set (data, loop) = (
      select c.token_data, case when c.token_loop is not distinct from t.loop then t.loop else c.token_loop end
      from bpm_private.token__columns(st.l_kind[pg_catalog.array_position(st.l_id, t.id)], st.l_data[pg_catalog.array_position(st.l_id, t.id)]) c)
    where t.tenant_id = st.tenant_id
      and t.id = any(array(select l.id from unnest(st.l_id, st.l_state) as l(id, state) where l.state = 'dirty'));
  end if;
  if pg_catalog.cardinality(st.s_token) > 0 then
    v_ord_set := bpm_private.run__flush_subscriptions(st);
  end if;
  if pg_catalog.cardinality(st.w_id) > 0 then
    v_ord_set := bpm_private.run__flush_waits(st);
  end if;
  -- last: what the run triggers elsewhere sees everything it wrote
  if pg_catalog.cardinality(st.p_data) > 0 then
    v_ord_set := bpm_private.run__post(st);
  end if;
end;
$$;
comment on function bpm_private.run__flush(bpm_private.run_state) is E'Writes the run''s events, buffered history rows and wait states (one insert per table), then runs its post actions.';

create or replace function bpm_private.run__flush_waits(st bpm_private.run_state)
returns void
language plpgsql
volatile
set search_path = ''
as $$
declare
  v_done text;
begin
  -- user and external tasks are wait states themselves; other waits are tokens
  if not (st.w_kind <@ array['userTask', 'externalTask']) then
    -- scopes carry their data (locals, multi-instance state) as of the end of the run
    insert into bpm_private.token (tenant_id, id, instance_id, element_id, kind, via_flow, data, loop)
    select st.tenant_id, u.id, st.instance_id, u.el, u.kind, u.flow, c.token_data, c.token_loop
    from unnest(st.w_id, st.w_el, st.w_kind, st.w_flow) as u(id, el, kind, flow)
    cross join lateral bpm_private.token__columns(u.kind,
      case when u.kind in ('scope', 'body', 'call') then st.l_data[pg_catalog.array_position(st.l_id, u.id)] end) c
    where u.kind not in ('userTask', 'externalTask');
  end if;
  if 'userTask' = any(st.w_kind) then
    insert into bpm.user_task (tenant_id, id, instance_id, element_id, name, form, assignee, candidate_users, candidate_groups, priority, due_at, follow_up_at, local_variables)
    select st.tenant_id, u.id, st.instance_id, u.el, u.data ->> 'name', nullif(u.data -> 'form', 'null'), u.data ->> 'assignee',
      coalesce((u.data ->> 'candidate_users')::text[], '{}'), coalesce((u.data ->> 'candidate_groups')::text[], '{}'),
      coalesce((u.data ->> 'priority')::int, 50), (u.data ->> 'due_at')::timestamptz, (u.data ->> 'follow_up_at')::timestamptz,
      nullif(u.data -> 'locals', 'null')
    from unnest(st.w_id, st.w_el, st.w_kind, st.w_data) as u(id, el, kind, data)
    where u.kind = 'userTask';
    if pg_catalog.jsonb_path_exists(pg_catalog.to_jsonb(st.w_data), '$[*] ? (@.candidate_users != "{}" || @.candidate_groups != "{}")') then
      -- the offers of new unassigned tasks with candidates (task_inbox.sql:
      -- written here rather than by an insert trigger, whose condition every
      -- insert statement would prepare again; updates and deletes keep them
      -- by trigger)
      insert into bpm_private.task_offer (tenant_id, identity, rank, created_at, task_id)
      select t.tenant_id, i.identity, -t.priority, t.created_at, t.id
      from bpm.user_task t
      cross join pg_catalog.unnest(bpm_private.task_offer__identities(t.candidate_users, t.candidate_groups)) as i(identity)
      where t.tenant_id = st.tenant_id and t.id = any(st.w_id) and t.assignee is null;
    end if;
  end if;
  if 'externalTask' = any(st.w_kind) then
    insert into bpm.external_task (tenant_id, id, instance_id, element_id, topic, headers, priority, local_variables)
    select st.tenant_id, u.id, st.instance_id, u.el, u.data ->> 'topic', nullif(u.data -> 'headers', 'null'), coalesce((u.data ->> 'priority')::int, 0),
      nullif(u.data -> 'locals', 'null')
    from unnest(st.w_id, st.w_el, st.w_kind, st.w_data) as u(id, el, kind, data)
    where u.kind = 'externalTask';
    v_done := bpm_private.external_task__notify(st.tenant_id);
  end if;
end;
$$;
comment on function bpm_private.run__flush_waits(bpm_private.run_state) is E'Writes the run''s wait states: tokens, user tasks, external tasks (one insert per table).';

-- After a run on an existing instance: store variables and, when nothing
-- waits any more, complete the instance (one statement in the common cases).
create or replace function bpm_private.run__finish(st bpm_private.run_state, before bpm.process_instance)
returns bpm.process_instance
language plpgsql
volatile
set search_path = ''
as $$
declare
  v_result bpm.process_instance;
  v_changed boolean := st.variables <> before.variables;
  v_moved boolean := false;
  v_done text;
begin
  -- completion first (this run adds no wait state when it can complete, so
  -- the flush below changes nothing the check reads); its event is flushed too.
  -- "(state = 'open') is true" is not an index condition: the generic plan
  -- takes the instance index instead of walking the inbox index
  -- (tenant_id, state, …) over every open task of the tenant (engine-wide
  -- rule for "open" next to an id or instance id)
  if st.terminated or pg_catalog.cardinality(st.w_id) = 0 then
    update bpm.process_instance i
    set variables = st.variables, state = 'completed', ended_at = pg_catalog.now()
    where i.tenant_id = st.tenant_id and i.id = st.instance_id
      and (st.terminated or (
        not exists (select 1 from bpm.user_task u where u.tenant_id = st.tenant_id and u.instance_id = st.instance_id and (u.state = 'open') is true)
        and not exists (select 1 from bpm.external_task e where e.tenant_id = st.tenant_id and e.instance_id = st.instance_id and (e.state = 'open') is true)
        and not exists (select 1 from bpm_private.token t where t.tenant_id = st.tenant_id and t.instance_id = st.instance_id)))
    returning * into v_result;
    if found then
      st := bpm_private.run__event(st, 'instanceCompleted', st.instance_id, null);
      -- the instance's own event subprocesses stop listening
      if st.process_subscriptions is not false then
        st := bpm_private.subscriptions__drop(st, array[st.instance_id]);
      end if;
      if v_result.parent_instance_id is not null then
        -- a called instance: its call activity goes on (after this run is written)
        st.p_data := st.p_data || '{"kind": "childCompleted"}'::jsonb;
      end if;
      v_done := bpm_private.run__flush(st);
      return v_result;
    end if;
  end if;
  -- the instance row first: what the flush triggers afterwards (a signal this
  -- run threw, caught by the instance itself) must read it as of this run
  v_result := before;
  if v_changed then
    update bpm.process_instance i set variables = st.variables
    where i.tenant_id = st.tenant_id and i.id = st.instance_id
    returning * into v_result;
  end if;
  -- (assignments, not PERFORM: an expression, not a statement with its executor)
  v_done := bpm_private.run__flush(st);
  -- conditional events that hold now (condition.sql): after a run that
  -- changed variables (changes unknown when it changed a subprocess's
  -- locals) or opened conditional events
  if 'dirty' = any(st.l_state) then
    v_moved := bpm_private.conditions__check(st.tenant_id, st.instance_id, null, null);
  elsif v_changed or (pg_catalog.cardinality(st.s_data) > 0 and exists (select 1 from unnest(st.s_data) d where d ->> 'kind' = 'conditional')) then
    v_moved := bpm_private.conditions__check(st.tenant_id, st.instance_id, before.variables, st.variables);
  end if;
  if v_moved or pg_catalog.cardinality(st.p_data) > 0 then
    -- what the flush started (called instances, signals, conditional events) may have moved it on
    select * into v_result from bpm.process_instance i where i.tenant_id = st.tenant_id and i.id = st.instance_id;
  end if;
  return v_result;
end;
$$;
comment on function bpm_private.run__finish(bpm_private.run_state, bpm.process_instance) is E'Completes the instance when nothing waits any more, then flushes the run and, when it changed variables or opened conditional events, evaluates the instance''s conditions.';

create or replace function bpm_private.run__event(st bpm_private.run_state, kind text, subject uuid, element_id text)
returns bpm_private.run_state
language plpgsql
immutable
set search_path = ''
as $$
begin
  st.x_kind := st.x_kind || kind;
  st.x_subject := st.x_subject || subject;
  st.x_el := st.x_el || element_id;
  return st;
end;
$$;
comment on function bpm_private.run__event(bpm_private.run_state, text, uuid, text) is E'Buffers an explicit event of the run (written by run__flush).';

create or replace function bpm_private.run__flush_subscriptions(st bpm_private.run_state)
returns void
language plpgsql
volatile
set search_path = ''
as $$
declare
  v_timer record;
  v_done text;
begin
  insert into bpm.event_subscription (tenant_id, id, kind, name, correlation_key, instance_id, token_id, element_id, interrupting, due_at, cycle, repeats_left, job_priority)
  select st.tenant_id, (d ->> 'id')::uuid, d ->> 'kind', d ->> 'name', d ->> 'key', st.instance_id, u.token, d ->> 'element',
    coalesce((d ->> 'interrupting')::boolean, true), (d ->> 'due_at')::timestamptz, d ->> 'cycle', (d ->> 'repeats')::int,
    coalesce((d ->> 'priority')::int, 0)
  from unnest(st.s_token, st.s_data) as u(token, d);
  for v_timer in select (d ->> 'id')::uuid as id, (d ->> 'due_at')::timestamptz as due_at, coalesce((d ->> 'priority')::int, 0) as priority
                 from unnest(st.s_data) d where d ->> 'kind' = 'timer' loop
    v_done := bpm_private.timer__enqueue(st.tenant_id, v_timer.id, v_timer.due_at, v_timer.priority);
  end loop;
end;
$$;
comment on function bpm_private.run__flush_subscriptions(bpm_private.run_state) is E'Writes the run''s new event subscriptions and schedules the jobs of its timers.';
--! EndIncluded engine/run.sql
--! Included api/events.sql
-- Messages, signals and timers (issue 4).

-- Delivers a message to exactly one receiver: a waiting subscription of an
-- instance whose key matches (a null key on either side matches any), else a
-- message start event (starts an instance with the key as business key).
-- Several matches: BP207. None: buffered when ttl is given (returns null),
-- else BP106 when required, else dropped (a message thrown by a process that
-- nobody waits for). message_id: a repeated id within a day, or while the
-- first is buffered, is a no-op returning what the first returned.
-- may_wait: whether the receiver's lock may be waited for. A transition's
-- throw may not (it holds its own instance): a receiver another transaction
-- holds gets the message deferred (deferred.sql).
-- The waiting receivers of a message (at most two: one is the receiver, two
-- are an ambiguity): subscriptions of instances whose key is the message's,
-- or that have none (they take any), oldest first; a message without a key
-- goes to any receiver. Each branch is a range of
-- event_subscription_correlation_idx, so a correlation reads a few index
-- entries however many instances wait for the same message name.
create or replace function bpm_private.message__receivers(tenant_id text, name text, correlation_key text)
returns bpm.event_subscription[]
language plpgsql
stable
set search_path = ''
as $$
begin
  return array(
    select m.s from (
      (select s, s.created_at, s.id from bpm.event_subscription s
       where s.tenant_id = message__receivers.tenant_id and s.kind = 'message' and s.name = message__receivers.name
         and s.instance_id is not null and s.incident_id is null and s.correlation_key = message__receivers.correlation_key
       order by s.created_at, s.id limit 2)
      union all
      (select s, s.created_at, s.id from bpm.event_subscription s
       where s.tenant_id = message__receivers.tenant_id and s.kind = 'message' and s.name = message__receivers.name
         and s.instance_id is not null and s.incident_id is null and s.correlation_key is null
       order by s.created_at, s.id limit 2)
      union all
      (select s, s.created_at, s.id from bpm.event_subscription s
       where message__receivers.correlation_key is null
         and s.tenant_id = message__receivers.tenant_id and s.kind = 'message' and s.name = message__receivers.name
         and s.instance_id is not null and s.incident_id is null and s.correlation_key is not null
       limit 2)
    ) m(s, created_at, id)
    order by m.created_at, m.id limit 2);
end;
$$;
comment on function bpm_private.message__receivers(text, text, text) is E'Up to two waiting receivers of a message: subscriptions with its correlation key or none (a message without a key: any), oldest first.';

create or replace function bpm_private.message__correlate(tenant_id text, name text, correlation_key text, variables jsonb, ttl interval, message_id text, required boolean,
  may_wait boolean)
returns bpm.process_instance
language plpgsql
volatile
set search_path = ''
as $$
declare
  v_subs bpm.event_subscription[];
  v_sub bpm.event_subscription;
  v_instance bpm.process_instance;
  v_definition bpm.process_definition;
  v_first uuid;
  v_lock record;
begin
  if message_id is not null then
    perform pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtextextended(tenant_id || '/message/' || message_id, 0));
    select r.instance_id into v_first from bpm_private.message_receipt r
    where r.tenant_id = message__correlate.tenant_id and r.message_id = message__correlate.message_id
      and r.received_at > pg_catalog.now() - interval '1 day';
    if found then
      select * into v_instance from bpm.process_instance i where i.tenant_id = message__correlate.tenant_id and i.id = v_first;
      return v_instance;
    end if;
    if exists (select 1 from bpm.message_buffer b where b.tenant_id = message__correlate.tenant_id
               and b.message_id = message__correlate.message_id and b.expires_at > pg_catalog.now()) then
      return null;
    end if;
  end if;
  for v_attempt in 1 .. 5 loop
    v_subs := bpm_private.message__receivers(tenant_id, name, correlation_key);
    exit when pg_catalog.cardinality(v_subs) = 0;
    if pg_catalog.cardinality(v_subs) > 1 then
      raise exception 'message % (correlation key %) matches more than one waiting receiver (instances % and %)',
        name, coalesce(correlation_key, 'null'), (v_subs[1]).instance_id, (v_subs[2]).instance_id using errcode = 'BP207';
    end if;
    if may_wait then
      v_instance := bpm_private.instance__lock(tenant_id, (v_subs[1]).instance_id);
    else
      v_lock := bpm_private.instance__try_lock(tenant_id, (v_subs[1]).instance_id);
      if v_lock.busy then
        perform bpm_private.delivery__defer(tenant_id, 'message', null, name, correlation_key, variables);
        return null;
      end if;
      continue when (v_lock.instance).id is null;
      v_instance := v_lock.instance;
    end if;
    -- read after the lock: a concurrent delivery may have taken it
    select * into v_sub from bpm.event_subscription s where s.tenant_id = message__correlate.tenant_id and s.id = (v_subs[1]).id;
    continue when not found;
    perform bpm_private.instance__require_active(v_instance, 'receive message ' || name);
    v_instance := bpm_private.subscription__trigger(v_sub, variables, 'messageCorrelated');
    if message_id is not null then
      perform bpm_private.message_receipt__record(tenant_id, message_id, v_instance.id);
    end if;
    return v_instance;
  end loop;
  -- message start events of the latest versions
  v_subs := array(
    select s from bpm.event_subscription s
    where s.tenant_id = message__correlate.tenant_id and s.kind = 'message' and s.name = message__correlate.name and s.instance_id is null
    order by s.created_at, s.id limit 2);
  if pg_catalog.cardinality(v_subs) > 1 then
    raise exception 'message % starts more than one process (definitions % and %)', name, (v_subs[1]).definition_id, (v_subs[2]).definition_id
      using errcode = 'BP207';
  end if;
  if pg_catalog.cardinality(v_subs) = 1 then
    select * into v_definition from bpm.process_definition d where d.tenant_id = message__correlate.tenant_id and d.id = (v_subs[1]).definition_id;
    v_instance := bpm_private.instance__start(v_definition, (v_subs[1]).element_id, variables, correlation_key, 'messageCorrelated', (v_subs[1]).id);
    if message_id is not null then
      perform bpm_private.message_receipt__record(tenant_id, message_id, v_instance.id);
    end if;
    return v_instance;
  end if;
  if ttl is not null then
    delete from bpm.message_buffer b where b.tenant_id = message__correlate.tenant_id and b.expires_at <= pg_catalog.now()
      and b.message_id = message__correlate.message_id;
    insert into bpm.message_buffer (tenant_id, id, name, correlation_key, variables, message_id, expires_at)
    values (tenant_id, bpm_private.uuid_v7(), name, correlation_key, variables, message_id, pg_catalog.now() + ttl);
    perform bpm_private.event__emit(tenant_id, null, array['messageBuffered'], array[null::uuid], array[null]);
    return null;
  end if;
  if required then
    raise exception 'no process instance or message start event waits for message % (correlation key %)', name, coalesce(correlation_key, 'null')
      using errcode = 'BP106';
  end if;
  return null;
end;
$$;
comment on function bpm_private.message__correlate(text, text, text, jsonb, interval, text, boolean, boolean) is E'Delivers a message to its one receiver (deferred when it may not wait for a receiver another transaction holds), starts a process, buffers it (ttl) or raises BP106/BP207.';

create or replace function bpm.correlate_message(message_name text, correlation_key text default null, variables jsonb default '{}', ttl interval default null, message_id text default null)
returns bpm.process_instance
language plpgsql
volatile
security definer
set search_path = ''
set plan_cache_mode = force_generic_plan
as $$
declare
  v_tenant text := bpm_private.require_context(array['bpm_admin', 'bpm_user', 'bpm_engine'], 'correlate a message');
  v_variables jsonb := bpm_private.require_object(variables, 'variables');
begin
  if coalesce(message_name, '') = '' then
    raise exception 'invalid argument: message_name is required' using errcode = 'BP401';
  end if;
  if ttl is not null and ttl <= interval '0' then
    raise exception 'invalid argument: ttl must be positive' using errcode = 'BP401';
  end if;
  if message_id = '' then
    raise exception 'invalid argument: message_id must not be empty' using errcode = 'BP401';
  end if;
  return bpm_private.message__correlate(v_tenant, message_name, correlation_key, v_variables, ttl, message_id, true, true);
end;
$$;
comment on function bpm.correlate_message(text, text, jsonb, interval, text) is E'Delivers a message to exactly one receiver in the caller''s tenant: a waiting message catch event, receive task, message boundary event or event-based gateway whose correlation key matches (zeebe: the subscription''s correlationKey; camunda: the instance''s business key; a null key on either side matches any), else a message start event (starts an instance, business key = correlation_key, and returns it). Variables merge into the instance. More than one match: BP207. A message start event of a process with unique business keys whose active instance has correlation_key as business key: BP209. No match: with ttl the message is kept and delivered to the first matching subscription that opens before it expires (returns null); without, BP106. message_id: a repeated correlation with the same id within a day (or while the first is buffered) is a no-op. A suspended receiver: BP202. Roles: bpm_admin, bpm_user, bpm_engine.';

-- Triggers every signal subscription of the tenant and starts the processes
-- with that signal start event. It never waits for an instance lock: an
-- instance another transaction holds gets the signal deferred (deferred.sql),
-- so broadcasts and throws cannot deadlock. Suspended instances are skipped.
create or replace function bpm_private.signal__broadcast(tenant_id text, name text, variables jsonb)
returns int
language plpgsql
volatile
set search_path = ''
as $$
declare
  v_candidate record;
  v_lock record;
  v_definition bpm.process_definition;
  v_deferred uuid;
  v_count int := 0;
begin
  for v_candidate in
    select s.id, s.instance_id from bpm.event_subscription s
    where s.tenant_id = signal__broadcast.tenant_id and s.kind = 'signal' and s.name = signal__broadcast.name
      and s.instance_id is not null and s.incident_id is null
    order by s.instance_id, s.created_at, s.id
  loop
    -- (one deferral per instance: it reaches all its subscriptions)
    continue when v_candidate.instance_id = v_deferred;
    v_lock := bpm_private.instance__try_lock(tenant_id, v_candidate.instance_id);
    if v_lock.busy then
      perform bpm_private.delivery__defer(tenant_id, 'signal', v_candidate.instance_id, name, null, variables);
      v_deferred := v_candidate.instance_id;
      v_count := v_count + 1;
      continue;
    end if;
    continue when (v_lock.instance).state is distinct from 'active';
    v_count := v_count + bpm_private.signal__trigger(tenant_id, v_candidate.id, variables);
  end loop;
  for v_candidate in
    select s.id, s.definition_id, s.element_id from bpm.event_subscription s
    where s.tenant_id = signal__broadcast.tenant_id and s.kind = 'signal' and s.name = signal__broadcast.name and s.instance_id is null
    order by s.created_at, s.id
  loop
    select * into v_definition from bpm.process_definition d where d.tenant_id = signal__broadcast.tenant_id and d.id = v_candidate.definition_id;
    perform bpm_private.instance__start(v_definition, v_candidate.element_id, variables, null, 'signalBroadcast', v_candidate.id);
    v_count := v_count + 1;
  end loop;
  return v_count;
end;
$$;
comment on function bpm_private.signal__broadcast(text, text, jsonb) is E'Triggers every signal catch event, boundary and start event of a signal in a tenant (deferring instances other transactions hold); returns how many.';

create or replace function bpm.broadcast_signal(signal_name text, variables jsonb default '{}')
returns int
language plpgsql
volatile
security definer
set search_path = ''
set plan_cache_mode = force_generic_plan
as $$
declare
  v_tenant text := bpm_private.require_context(array['bpm_admin', 'bpm_user', 'bpm_engine'], 'broadcast a signal');
  v_variables jsonb := bpm_private.require_object(variables, 'variables');
begin
  if coalesce(signal_name, '') = '' then
    raise exception 'invalid argument: signal_name is required' using errcode = 'BP401';
  end if;
  return bpm_private.signal__broadcast(v_tenant, signal_name, v_variables);
end;
$$;
comment on function bpm.broadcast_signal(text, jsonb) is E'Broadcasts a signal in the caller''s tenant: every waiting signal catch event and signal boundary event is triggered (variables merge into those instances) and every process with that signal start event is started. Returns how many were triggered plus started. Suspended instances are skipped. An instance another transaction holds at that moment is not waited for: it receives the signal right after that transaction ends (deferred, delivered by the worker''s bpm_deliver job), and counts as one. Roles: bpm_admin, bpm_user, bpm_engine.';

-- Conditional start events (of the latest version of each process): each
-- whose condition holds over the given variables starts an instance with
-- them (Camunda's evaluateStartConditions / conditional start evaluation).
create or replace function bpm.evaluate_conditions(variables jsonb default '{}', business_key text default null)
returns setof bpm.process_instance
language plpgsql
volatile
security definer
set search_path = ''
set plan_cache_mode = force_generic_plan
as $$
declare
  v_tenant text := bpm_private.require_context(array['bpm_admin', 'bpm_user', 'bpm_engine'], 'evaluate conditional start events');
  v_variables jsonb := bpm_private.require_object(variables, 'variables');
  v_sub bpm.event_subscription;
  v_definition bpm.process_definition;
begin
  for v_sub in
    select * from bpm.event_subscription s
    where s.tenant_id = v_tenant and s.kind = 'conditional' and s.instance_id is null
    order by s.created_at, s.id
  loop
    select * into v_definition from bpm.process_definition d where d.tenant_id = v_tenant and d.id = v_sub.definition_id;
    -- a bpm_user starts only processes they may start (candidate starters)
    continue when not bpm_private.definition__may_start(v_definition);
    continue when not bpm_private.condition__test(v_definition.graph -> 'nodes' -> v_sub.element_id, v_variables);
    return next bpm_private.instance__start(v_definition, v_sub.element_id, v_variables, business_key, 'conditionFulfilled', v_sub.id);
  end loop;
end;
$$;
comment on function bpm.evaluate_conditions(jsonb, text) is E'Evaluates the conditional start events of the latest version of every process of the caller''s tenant over variables and starts an instance (with those variables and business_key) of each whose condition holds; returns the instances started (none when no condition holds). A bpm_user starts only processes whose candidate starters include them. Raises BP401 when variables is not an object, BP209 for a business key a process with unique business keys already runs. Roles: bpm_admin, bpm_user, bpm_engine.';

-- A timer start event fired: start an instance, then arm the next cycle or
-- close the subscription.
create or replace function bpm_private.timer_start__fire(sub bpm.event_subscription)
returns bpm.process_instance
language plpgsql
volatile
set search_path = ''
as $$
declare
  v_definition bpm.process_definition;
  v_instance bpm.process_instance;
begin
  select * into v_definition from bpm.process_definition d where d.tenant_id = sub.tenant_id and d.id = sub.definition_id;
  v_instance := bpm_private.instance__start(v_definition, sub.element_id, '{}', null, 'timerFired', sub.id);
  perform bpm_private.timer__rearm_or_close(sub);
  return v_instance;
end;
$$;
comment on function bpm_private.timer_start__fire(bpm.event_subscription) is E'Fires a timer start event: starts an instance and re-arms a cycle.';

-- A timer subscription that is to fire now: it still exists and is due, its
-- instance is active (locked first: a called instance's timer locks the root
-- of its call tree); a timer start event's subscription is locked itself.
-- With the subscription, the locked instance and its definition's graph
-- (read with the lock, in one statement, for an instance without a caller).
-- All null when there is nothing to fire (fired or removed already, re-armed
-- for later, an incident on it, its instance suspended or ended).
create or replace function bpm_private.timer__take(tenant_id text, subscription_id uuid,
  out sub bpm.event_subscription, out instance bpm.process_instance, out graph jsonb, out inclusive_joins text[])
language plpgsql
volatile
set search_path = ''
as $$
declare
  v_sub bpm.event_subscription;
  v_locked record;
begin
  -- (by primary key only: with "kind = 'timer'" beside it, a generic plan made
  -- before the table was analysed may take another index and read every
  -- timer of the tenant)
  select * into v_sub from bpm.event_subscription s where s.tenant_id = timer__take.tenant_id and s.id = subscription_id;
  if not found or v_sub.kind <> 'timer' or v_sub.incident_id is not null then
    return;
  end if;
  if v_sub.instance_id is null then
    select * into v_sub from bpm.event_subscription s where s.tenant_id = timer__take.tenant_id and s.id = subscription_id for update;
    if found and v_sub.due_at <= pg_catalog.now() then
      sub := v_sub;
    end if;
    return;
  end if;
  select i as instance, d.graph, d.inclusive_joins into v_locked
  from bpm.process_instance i
  join bpm.process_definition d on d.tenant_id = i.tenant_id and d.id = i.definition_id
  where i.tenant_id = timer__take.tenant_id and i.id = v_sub.instance_id and i.root_instance_id is null
  for update of i;
  if found then
    instance := v_locked.instance;
    graph := v_locked.graph;
    inclusive_joins := v_locked.inclusive_joins;
  else
    -- a called instance: the root of its call tree first (BP102 if it is gone)
    instance := bpm_private.instance__lock(tenant_id, v_sub.instance_id);
    select d.graph, d.inclusive_joins into graph, inclusive_joins
    from bpm.process_definition d where d.tenant_id = timer__take.tenant_id and d.id = instance.definition_id;
  end if;
  select * into v_sub from bpm.event_subscription s where s.tenant_id = timer__take.tenant_id and s.id = subscription_id;
  -- gone (fired, cancelled), not due (re-armed), or the instance waits for activation
  if not found or v_sub.due_at > pg_catalog.now() or instance.state <> 'active' then
    instance := null;
    graph := null;
    inclusive_joins := null;
    return;
  end if;
  sub := v_sub;
end;
$$;
comment on function bpm_private.timer__take(text, uuid) is E'Locks a timer subscription''s instance (or a timer start''s subscription) and returns the subscription when it is to fire now, with the locked instance and its definition''s graph and inclusive joins; all null otherwise.';

-- The job handler's entry point (graphile-worker task bpm_fire_timer). It
-- may run more than once or late: it fires only a subscription that still
-- exists and is due, of an active instance; otherwise it does nothing. A
-- continuation that fails becomes an incident failedJob (retry_incident
-- fires it again); transient errors (serialization, deadlock) are raised so
-- that the job is retried.
create or replace function bpm.fire_timer(subscription_id uuid)
returns bpm.process_instance
language plpgsql
volatile
security definer
set search_path = ''
set plan_cache_mode = force_generic_plan
as $$
declare
  v_tenant text := bpm_private.require_context(array['bpm_admin', 'bpm_engine'], 'fire a timer');
  v_taken record := bpm_private.timer__take(v_tenant, subscription_id);
  v_sub bpm.event_subscription := v_taken.sub;
  v_incident uuid;
begin
  -- (a composite "is null" needs every field null: test the id)
  if v_sub.id is null then
    return null;
  end if;
  begin
    if v_sub.instance_id is null then
      -- a timer start event starts an instance
      return bpm_private.timer_start__fire(v_sub);
    end if;
    return bpm_private.subscription__fire(v_sub, '{}', 'timerFired', v_taken.instance, v_taken.graph, v_taken.inclusive_joins);
  exception when others then
    if bpm_private.error__is_transient(sqlstate) or v_sub.instance_id is null then
      raise;
    end if;
    v_incident := bpm_private.incident__raise(v_tenant, v_sub.instance_id, v_sub.element_id, 'failedJob',
      pg_catalog.format('timer %s of element %s failed: %s (SQLSTATE %s)', v_sub.id, v_sub.element_id, sqlerrm, sqlstate));
    update bpm.event_subscription s set incident_id = v_incident where s.tenant_id = v_tenant and s.id = v_sub.id;
    return (select i from bpm.process_instance i where i.tenant_id = v_tenant and i.id = v_sub.instance_id);
  end;
end;
$$;
comment on function bpm.fire_timer(uuid) is E'Fires a due timer subscription (called by the worker''s bpm_fire_timer job; idempotent: a timer already fired, removed, re-armed for later, or of a suspended or ended instance is left alone and null returned). A failing continuation raises an incident failedJob instead of an error. Roles: bpm_admin, bpm_engine.';

-- A burst of due timers: the job of one timer also fires other timers of the
-- tenant that are due, in the same transaction (one commit for many
-- firings), removing their own jobs. Instances another transaction holds are
-- skipped (their jobs, or a concurrent batch, take them); concurrent batches
-- take the earliest due timers in a different order each, so they share the
-- work rather than queue on the same instances. The others are fired under
-- one savepoint, not one each (a savepoint per firing cost a tenth of a
-- firing): when one of them fails, the batch's firings are undone and fired
-- again one by one through fire_timer, so that only the failing one becomes
-- an incident.
create or replace function bpm.fire_due_timers(subscription_id uuid, max_timers int default 50)
returns int
language plpgsql
volatile
security definer
set search_path = ''
set plan_cache_mode = force_generic_plan
as $$
declare
  v_tenant text := bpm_private.require_context(array['bpm_admin', 'bpm_engine'], 'fire timers');
  v_own int := 0;
  v_fired int;
  v_alone boolean := false;
  v_hit boolean;
  v_due record;
  v_locked record;
  v_sub bpm.event_subscription;
  v_fired_instance bpm.process_instance;
begin
  if max_timers is null or max_timers < 1 or max_timers > 1000 then
    raise exception 'max_timers must be between 1 and 1000, got %', coalesce(max_timers::text, 'null') using errcode = 'BP401';
  end if;
  -- (a composite "is not null" needs every field set: test the id)
  if (bpm.fire_timer(subscription_id)).id is not null then
    v_own := 1;
  end if;
  -- the others: together under one savepoint; when one fails, again one by one
  loop
    v_fired := 0;
    begin
      for v_due in
        select d.id, d.instance_id from (
          select s.id, s.instance_id from bpm.event_subscription s
          where s.tenant_id = v_tenant and s.kind = 'timer' and s.instance_id is not null and s.incident_id is null
            and s.due_at <= pg_catalog.now() and s.id <> subscription_id
          order by s.due_at limit (max_timers - 1) * 4) d
        order by pg_catalog.hashtext(d.id::text || subscription_id::text)
        limit max_timers - 1
      loop
        -- the instance locked and read with its definition in one statement
        -- (instances without a caller only: a called instance's timer fires by its
        -- own job, which locks the root of its call tree first)
        -- ("is true": by primary key; a bare state = 'active' matches the partial
        -- index of active instances, which a generic plan may walk whole)
        select i as instance, d.graph, d.inclusive_joins into v_locked
        from bpm.process_instance i
        join bpm.process_definition d on d.tenant_id = i.tenant_id and d.id = i.definition_id
        where i.tenant_id = v_tenant and i.id = v_due.instance_id and (i.state = 'active') is true
          and i.root_instance_id is null
        for update of i skip locked;
        continue when not found;
        -- fired here: firing removes its job with its subscription (a cycle that
        -- re-arms moves its job to the next due time)
        if v_alone then
          -- (one that fails raises an incident and keeps a job that will find it so)
          v_hit := (bpm.fire_timer(v_due.id)).id is not null;
        else
          -- read again under the lock (as timer__take does): fired or re-armed meanwhile?
          select * into v_sub from bpm.event_subscription s where s.tenant_id = v_tenant and s.id = v_due.id;
          v_hit := found and v_sub.incident_id is null and v_sub.due_at <= pg_catalog.now();
          if v_hit then
            v_fired_instance := bpm_private.subscription__fire(v_sub, '{}', 'timerFired', v_locked.instance, v_locked.graph, v_locked.inclusive_joins);
          end if;
        end if;
        if v_hit then
          v_fired := v_fired + 1;
        end if;
      end loop;
      exit;
    exception when others then
      if v_alone or bpm_private.error__is_transient(sqlstate) then
        raise;
      end if;
      v_alone := true;
    end;
  end loop;
  return v_own + v_fired;
end;
$$;
comment on function bpm.fire_due_timers(uuid, int) is E'Fires a due timer subscription (as fire_timer) and up to max_timers - 1 other timers of the tenant that are due, in one transaction, removing their jobs (called by the worker''s bpm_fire_timer job; idempotent like fire_timer; a failing continuation becomes an incident of its timer alone). Returns how many fired. Roles: bpm_admin, bpm_engine.';
--! EndIncluded api/events.sql
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
