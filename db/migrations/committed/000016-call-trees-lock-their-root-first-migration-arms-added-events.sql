--! Previous: sha1:9310de4ea5acd4c42b0a143fd4cebcdedd042474
--! Hash: sha1:7d3066e55ce6d40cde1da7472b09254d399be7de
--! Message: Call trees lock their root first, migration arms added events, nested compensation, history retention

-- Lock order in call trees: every transition locks the root of its call tree
-- first (bpm_private.instance__lock_tree), so a called instance walking up to
-- its caller and the caller walking down to it serialise instead of
-- deadlocking. The root is stored on every called instance.
alter table bpm.process_instance add column if not exists root_instance_id uuid;
comment on column bpm.process_instance.root_instance_id is E'The instance at the top of this instance''s call tree (null for an instance that was not started by a call activity).';
with recursive tree as (
  select i.tenant_id, i.id, i.id as root_id from bpm.process_instance i where i.parent_instance_id is null
  union all
  select c.tenant_id, c.id, t.root_id from bpm.process_instance c join tree t on t.tenant_id = c.tenant_id and c.parent_instance_id = t.id
)
update bpm.process_instance i set root_instance_id = t.root_id
from tree t
where t.tenant_id = i.tenant_id and t.id = i.id and i.parent_instance_id is not null and i.root_instance_id is distinct from t.root_id;
alter table bpm.process_instance drop constraint if exists process_instance_root_of_called;
alter table bpm.process_instance add constraint process_instance_root_of_called
  check ((parent_instance_id is null) = (root_instance_id is null));

--! Included engine/cancel.sql
-- Cancels everything that waits in an instance: its tokens go, open user
-- and external tasks become cancelled, and so do their activity rows.
create or replace function bpm_private.instance__cancel_tokens(tenant_id text, instance_id uuid)
returns int
language plpgsql
volatile
set search_path = ''
as $$
declare
  v_count int;
  v_kinds text[];
  v_subjects uuid[];
  v_elements text[];
begin
  with tokens as (
    delete from bpm_private.token t
    where t.tenant_id = instance__cancel_tokens.tenant_id and t.instance_id = instance__cancel_tokens.instance_id
    returning t.id
  ), user_tasks as (
    update bpm.user_task u
    set state = 'cancelled', completed_at = pg_catalog.now()
    where u.tenant_id = instance__cancel_tokens.tenant_id and u.instance_id = instance__cancel_tokens.instance_id and (u.state = 'open') is true
    returning u.id, u.element_id
  ), external_tasks as (
    update bpm.external_task e
    set state = 'cancelled', ended_at = pg_catalog.now(), worker_id = null, locked_until = null
    where e.tenant_id = instance__cancel_tokens.tenant_id and e.instance_id = instance__cancel_tokens.instance_id and (e.state = 'open') is true
    returning e.id, e.element_id
  ), waits as (
    select id from tokens union all select id from user_tasks union all select id from external_tasks
  ), activities as (
    update bpm.activity_instance a
    set state = 'cancelled', ended_at = pg_catalog.now()
    where a.tenant_id = instance__cancel_tokens.tenant_id and a.id in (select w.id from waits w) and a.state = 'active'
    returning a.id, a.element_id
  ), incidents as (
    -- open incidents of the instance no longer need anyone
    update bpm.incident i set resolved_at = pg_catalog.now()
    where i.tenant_id = instance__cancel_tokens.tenant_id and i.instance_id = instance__cancel_tokens.instance_id and i.resolved_at is null
    returning i.id, i.element_id
  ), events as (
    select 1 as grp, id, element_id, 'taskCancelled' as kind from user_tasks
    union all select 2, id, element_id, 'externalTaskCancelled' from external_tasks
    union all select 3, id, element_id, 'incidentResolved' from incidents
    union all select 4, id, element_id, 'activityCancelled' from activities
  )
  select (select pg_catalog.count(*) from waits), coalesce(array_agg(ev.kind order by ev.grp, ev.id), '{}'),
    coalesce(array_agg(ev.id order by ev.grp, ev.id), '{}'), coalesce(array_agg(ev.element_id order by ev.grp, ev.id), '{}')
  into v_count, v_kinds, v_subjects, v_elements
  from events ev;
  perform bpm_private.event__emit(tenant_id, instance_id, v_kinds, v_subjects, v_elements);
  perform bpm_private.subscriptions__remove(tenant_id, instance_id, null);
  return v_count;
end;
$$;
comment on function bpm_private.instance__cancel_tokens(text, uuid) is E'Cancels everything that waits in an instance: tokens, open user and external tasks, their activity rows.';

-- A terminate end event: every other token of the instance ends as cancelled.
create or replace function bpm_private.instance__terminate(st bpm_private.run_state)
returns bpm_private.run_state
language plpgsql
volatile
set search_path = ''
as $$
declare
  v_pos int;
begin
  if not st.is_new then
    perform bpm_private.instance__cancel_tokens(st.tenant_id, st.instance_id);
  end if;
  for v_pos in 1 .. pg_catalog.cardinality(st.w_id) loop
    st.a_state[pg_catalog.array_position(st.a_id, st.w_id[v_pos])] := 'cancelled';
  end loop;
  st.w_id := '{}'; st.w_el := '{}'; st.w_kind := '{}'; st.w_flow := '{}'; st.w_data := '{}';
  st.q_pos := pg_catalog.cardinality(st.q_node) + 1;
  st.terminated := true;
  return st;
end;
$$;
comment on function bpm_private.instance__terminate(bpm_private.run_state) is E'Terminate end event: cancels every other token; the instance completes.';

-- Serialises transitions of one instance: every engine call locks the
-- instance row first. Raises BP102 when it is not visible in the tenant.
-- Lock order: every transition locks the root of its call tree first, then
-- the instance it works on. A called instance's transition may walk up to its
-- callers (it completes, it throws) while its caller's transition walks down
-- (cancel, an interrupting boundary): both hold the root first, so they
-- serialise instead of deadlocking. Instances without a caller are their own
-- root: one statement, as before.
create or replace function bpm_private.instance__lock_tree(tenant_id text, instance_id uuid)
returns bpm.process_instance
language plpgsql
volatile
set search_path = ''
as $$
declare
  v_instance bpm.process_instance;
begin
  select * into v_instance from bpm.process_instance i
  where i.tenant_id = instance__lock_tree.tenant_id and i.id = instance__lock_tree.instance_id and i.root_instance_id is null
  for update;
  if found or instance_id is null then
    return v_instance;
  end if;
  -- a called instance (or none): the root of its call tree first
  perform 1 from bpm.process_instance r
  where r.tenant_id = instance__lock_tree.tenant_id
    and r.id = (select c.root_instance_id from bpm.process_instance c where c.tenant_id = instance__lock_tree.tenant_id and c.id = instance__lock_tree.instance_id)
  for update;
  select * into v_instance from bpm.process_instance i
  where i.tenant_id = instance__lock_tree.tenant_id and i.id = instance__lock_tree.instance_id
  for update;
  return v_instance;
end;
$$;
comment on function bpm_private.instance__lock_tree(text, uuid) is E'Locks an instance after the root of its call tree (the engine''s lock order); null if there is no such instance in the tenant.';

create or replace function bpm_private.instance__lock(tenant_id text, instance_id uuid)
returns bpm.process_instance
language plpgsql
volatile
set search_path = ''
as $$
declare
  v_instance bpm.process_instance := bpm_private.instance__lock_tree(tenant_id, instance_id);
begin
  if v_instance.id is null then
    raise exception 'process instance % not found', instance_id using errcode = 'BP102';
  end if;
  return v_instance;
end;
$$;
comment on function bpm_private.instance__lock(text, uuid) is E'Locks an instance row, after the root of its call tree (BP102 if not found in the tenant).';

-- Guard: the instance must be active (BP201 ended, BP202 suspended).
create or replace function bpm_private.instance__require_active(instance bpm.process_instance, action text)
returns void
language plpgsql
immutable
set search_path = ''
as $$
begin
  if instance.state = 'suspended' then
    raise exception 'process instance % is suspended: cannot %', instance.id, action using errcode = 'BP202';
  elsif instance.state <> 'active' then
    raise exception 'process instance % is %: cannot %', instance.id, instance.state, action using errcode = 'BP201';
  end if;
end;
$$;
comment on function bpm_private.instance__require_active(bpm.process_instance, text) is E'Raises BP201/BP202 unless the instance is active.';
--! EndIncluded engine/cancel.sql
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
create or replace function bpm_private.token__throw(instance bpm.process_instance, graph jsonb, joins text[], token_id uuid, node_id text, kind text, code text, variables jsonb)
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
  v_res := bpm_private.error__catch(st, v_graph, kind, code);
  if not v_res.caught then
    return false;
  end if;
  st := bpm_private.run__drain(v_res.st, v_graph);
  perform bpm_private.run__finish(st, instance);
  return true;
end;
$$;
comment on function bpm_private.token__throw(bpm.process_instance, jsonb, text[], uuid, text, text, text, jsonb) is E'A waiting token throws an error or escalation; true when a catch on the way out took it (the run went on), false when nothing catches it (nothing changed).';
--! EndIncluded engine/graph.sql
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
begin
  with removed as (
    delete from bpm.event_subscription s
    where s.tenant_id = subscriptions__remove.tenant_id and s.instance_id = subscriptions__remove.instance_id
      and (token_ids is null or s.token_id = any(token_ids))
    returning s.id, s.kind
  )
  select coalesce(array_agg(r.id) filter (where r.kind = 'timer'), '{}') into v_timers from removed r;
  if pg_catalog.cardinality(v_timers) > 0 then
    perform bpm_private.timer__dequeue(v_timers);
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
  st bpm_private.run_state := bpm_private.run__begin(definition.tenant_id, pg_catalog.gen_random_uuid(), variables, true, definition.inclusive_joins);
  v_done boolean;
  v_instance bpm.process_instance;
begin
  if start_node is null then
    -- start_process: the none start event
    start_node := v_graph ->> 'start';
    if start_node is null then
      raise exception 'process % has no none start event: it starts by message, signal or timer only', definition.key using errcode = 'BP308';
    end if;
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
  perform bpm_private.run__flush(st);
  if pg_catalog.cardinality(st.p_data) > 0 then
    -- what the flush started (called instances) may have moved it on
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
  v_graph jsonb;
  v_node jsonb;
  v_token_el text;
  v_scope uuid;
  st bpm_private.run_state;
begin
  select i as instance, d.graph, d.inclusive_joins into v_locked
  from bpm.process_instance i
  join bpm.process_definition d on d.tenant_id = i.tenant_id and d.id = i.definition_id
  where i.tenant_id = sub.tenant_id and i.id = sub.instance_id;
  v_graph := bpm_private.graph__in_memory(v_locked.graph);
  st := bpm_private.run__begin(sub.tenant_id, sub.instance_id, (v_locked.instance).variables || variables, false, v_locked.inclusive_joins);
  st.business_key := (v_locked.instance).business_key;
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
    perform bpm_private.subscriptions__remove(sub.tenant_id, sub.instance_id, array[sub.token_id]);
    st := bpm_private.activity__end(st, array[sub.token_id], 'completed');
    if v_token_el = sub.element_id then
      st := bpm_private.node__complete(st, v_graph, v_node, sub.token_id);
    else
      st := bpm_private.catch__passed(st, v_graph, v_node, null);
    end if;
  end if;
  st := bpm_private.run__drain(st, v_graph);
  return bpm_private.run__finish(st, v_locked.instance);
end;
$$;
comment on function bpm_private.subscription__trigger(bpm.event_subscription, jsonb, text) is E'A message, signal or timer reached a subscription: the catch event, receive task or event-based gateway continues, or the boundary event starts its path (interrupting: its activity is cancelled). The instance is locked by the caller.';

-- What a run leaves to do once it is written: broadcast thrown signals,
-- publish thrown messages, raise incidents of unhandled errors, schedule
-- the deadline jobs of new user tasks.
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
      perform bpm_private.message__correlate(st.tenant_id, v_action ->> 'name', v_action ->> 'key', v_action -> 'variables', null, null, false);
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
--! Included api/user_tasks.sql
-- Loads a user task after locking its instance (so concurrent calls on one
-- instance serialise and the task is read as of the lock), and checks that
-- the caller may act on it: bpm_admin any task of its tenant; bpm_user a task
-- assigned to it or, unassigned, offered to it. Raises BP103 (not found or
-- not visible), BP203 (not open), BP204 (assigned to someone else), BP202/BP201.
create or replace function bpm_private.user_task__lock(tenant_id text, task_id uuid, action text, out task bpm.user_task, out instance bpm.process_instance)
language plpgsql
volatile
set search_path = ''
as $$
declare
  v_user text := bpm_private.current_user_id();
  v_role text := bpm_private.caller_role();
begin
  instance := bpm_private.instance__lock_tree(tenant_id,
    (select t.instance_id from bpm.user_task t where t.tenant_id = user_task__lock.tenant_id and t.id = task_id));
  if instance.id is null then
    raise exception 'user task % not found', task_id using errcode = 'BP103';
  end if;
  -- read after the lock: sees what a concurrent call on the instance committed
  select * into task from bpm.user_task t where t.tenant_id = user_task__lock.tenant_id and t.id = task_id;
  if v_role = 'bpm_user' then
    if v_user is null then
      raise exception 'bpm.user_id is not set: a bpm_user cannot %', action using errcode = 'BP002';
    end if;
    if task.assignee is distinct from v_user
       and not (v_user = any(task.candidate_users) or task.candidate_groups && bpm_private.current_groups()) then
      raise exception 'user task % not found', task_id using errcode = 'BP103';
    end if;
  end if;
  if task.state <> 'open' then
    raise exception 'user task % is % and cannot %', task_id, task.state, action using errcode = 'BP203';
  end if;
  perform bpm_private.instance__require_active(instance, action);
end;
$$;
comment on function bpm_private.user_task__lock(text, uuid, text) is E'Locks the task''s instance, loads the task and checks the caller may act on it.';

create or replace function bpm.complete_task(task_id uuid, variables jsonb default '{}')
returns bpm.user_task
language plpgsql
volatile
security definer
set search_path = ''
set plan_cache_mode = force_generic_plan
as $$
declare
  v_tenant text := bpm_private.require_context(array['bpm_admin', 'bpm_user'], 'complete a task');
  v_variables jsonb := bpm_private.require_object(variables, 'variables');
  v_user text := bpm_private.current_user_id();
  v_is_user boolean := bpm_private.caller_role() = 'bpm_user';
  v_task bpm.user_task;
  v_instance bpm.process_instance;
  v_locked record;
begin
  if v_is_user and v_user is null then
    raise exception 'bpm.user_id is not set: a bpm_user cannot complete task %', task_id using errcode = 'BP002';
  end if;
  -- ===== LOCK the instance (loading its graph), then close the task if every rule holds
  -- (an instance without a caller is the root of its call tree: one statement;
  -- a called instance locks its root first, see instance__lock_tree)
  select i as instance, d.graph, d.inclusive_joins into v_locked
  from bpm.process_instance i
  join bpm.process_definition d on d.tenant_id = i.tenant_id and d.id = i.definition_id
  where i.tenant_id = v_tenant
    and i.id = (select t.instance_id from bpm.user_task t where t.tenant_id = v_tenant and t.id = task_id)
    and i.root_instance_id is null
  for update of i;
  if not found then
    select i as instance, d.graph, d.inclusive_joins into v_locked
    from bpm_private.instance__lock_tree(v_tenant, (select t.instance_id from bpm.user_task t where t.tenant_id = v_tenant and t.id = task_id)) i
    join bpm.process_definition d on d.tenant_id = i.tenant_id and d.id = i.definition_id;
  end if;
  v_instance := v_locked.instance;
  -- ("is true": by primary key, not through the inbox index; see run__finish)
  update bpm.user_task t
  set state = 'completed', completed_at = pg_catalog.now(), completed_by = v_user,
    assignee = coalesce(t.assignee, case when v_is_user then v_user end)
  where t.tenant_id = v_tenant and t.id = task_id and (t.state = 'open') is true and v_instance.state = 'active'
    and (not v_is_user or t.assignee = v_user
         or (t.assignee is null and (v_user = any(t.candidate_users) or t.candidate_groups && bpm_private.current_groups())))
  returning * into v_task;
  if not found then
    -- ===== GUARD: say precisely why (BP103, BP002, BP203, BP202/BP201), else it is someone else's task
    perform bpm_private.user_task__lock(v_tenant, task_id, 'complete it');
    raise exception 'user task % is assigned to another user', task_id using errcode = 'BP204';
  end if;
  -- ===== LEAVE the task
  perform bpm_private.token__move(v_instance, v_locked.graph, v_locked.inclusive_joins, v_task.id, v_task.element_id, null, v_variables, 'taskCompleted');
  return v_task;
end;
$$;
comment on function bpm.complete_task(uuid, jsonb) is E'Completes an open user task; variables merge per top-level key into the instance, or into the local of that name of the nearest enclosing subprocess that has one. A bpm_user may complete a task assigned to them, or an unassigned one offered to them (which claims it). Errors: BP103 not found, BP203 not open, BP204 assigned to another user, BP202 instance suspended. Roles: bpm_admin, bpm_user.';

create or replace function bpm.claim_task(task_id uuid)
returns bpm.user_task
language plpgsql
volatile
security definer
set search_path = ''
set plan_cache_mode = force_generic_plan
as $$
declare
  v_tenant text := bpm_private.require_context(array['bpm_admin', 'bpm_user'], 'claim a task');
  v_user text := bpm_private.current_user_id();
  v_task bpm.user_task;
begin
  if v_user is null then
    raise exception 'bpm.user_id is not set: nobody to claim task % for', task_id using errcode = 'BP002';
  end if;
  v_task := (bpm_private.user_task__lock(v_tenant, task_id, 'claim it')).task;
  if v_task.assignee = v_user then
    return v_task;
  end if;
  if v_task.assignee is not null then
    raise exception 'user task % is already assigned to another user', task_id using errcode = 'BP204';
  end if;
  update bpm.user_task t set assignee = v_user
  where t.tenant_id = v_tenant and t.id = task_id
  returning * into v_task;
  perform bpm_private.event__emit(v_tenant, v_task.instance_id, array['taskAssigned'], array[v_task.id], array[v_task.element_id]);
  return v_task;
end;
$$;
comment on function bpm.claim_task(uuid) is E'Assigns an open task to the acting user (bpm.user_id). Claiming a task already assigned to oneself is a no-op; assigned to someone else: BP204. Roles: bpm_admin, bpm_user (only tasks offered to them).';

create or replace function bpm.unclaim_task(task_id uuid)
returns bpm.user_task
language plpgsql
volatile
security definer
set search_path = ''
set plan_cache_mode = force_generic_plan
as $$
declare
  v_tenant text := bpm_private.require_context(array['bpm_admin', 'bpm_user'], 'unclaim a task');
  v_task bpm.user_task;
begin
  v_task := (bpm_private.user_task__lock(v_tenant, task_id, 'unclaim it')).task;
  if bpm_private.caller_role() = 'bpm_user' and v_task.assignee is distinct from bpm_private.current_user_id() then
    raise exception 'user task % is not assigned to you', task_id using errcode = 'BP204';
  end if;
  update bpm.user_task t set assignee = null
  where t.tenant_id = v_tenant and t.id = task_id
  returning * into v_task;
  perform bpm_private.event__emit(v_tenant, v_task.instance_id, array['taskAssigned'], array[v_task.id], array[v_task.element_id]);
  return v_task;
end;
$$;
comment on function bpm.unclaim_task(uuid) is E'Removes the assignee of an open task, offering it to its candidates again. A bpm_user may unclaim only their own task (BP204). Roles: bpm_admin, bpm_user.';

create or replace function bpm.set_assignee(task_id uuid, assignee text)
returns bpm.user_task
language plpgsql
volatile
security definer
set search_path = ''
set plan_cache_mode = force_generic_plan
as $$
declare
  v_tenant text := bpm_private.require_context(array['bpm_admin'], 'set the assignee of a task');
  v_task bpm.user_task;
begin
  perform bpm_private.user_task__lock(v_tenant, task_id, 'reassign it');
  update bpm.user_task t set assignee = nullif(set_assignee.assignee, '')
  where t.tenant_id = v_tenant and t.id = task_id
  returning * into v_task;
  perform bpm_private.event__emit(v_tenant, v_task.instance_id, array['taskAssigned'], array[v_task.id], array[v_task.element_id]);
  return v_task;
end;
$$;
comment on function bpm.set_assignee(uuid, text) is E'Sets (or with null clears) the assignee of an open task. Roles: bpm_admin.';
--! EndIncluded api/user_tasks.sql
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
    order by e.available_at, e.created_at
    limit max_tasks
    for update of e skip locked
  ), locked as (
    update bpm.external_task e
    set worker_id = fetch_and_lock.worker_id,
      locked_until = pg_catalog.now() + lock_duration,
      variables = (select i.variables from bpm.process_instance i where i.tenant_id = v_tenant and i.id = p.instance_id)
    from picked p
    where e.tenant_id = v_tenant and e.id = p.id
    returning e.*
  )
  select l.* from locked l order by l.available_at, l.created_at, l.id;
end;
$$;
comment on function bpm.fetch_and_lock(text, text, int, interval) is E'Locks up to max_tasks open external tasks of a topic in the caller''s tenant for a worker (oldest first, FOR UPDATE SKIP LOCKED so concurrent workers never get the same task) and returns them with the instance variables. Skips suspended instances, tasks in back-off and tasks with an open incident. Roles: bpm_admin, bpm_engine.';

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
  end if;
  perform bpm_private.event__emit(v_tenant, v_task.instance_id,
    array['externalTaskFailed'] || case when v_incident is not null then array['incidentCreated'] else '{}' end,
    array[v_task.id] || case when v_incident is not null then array[v_incident] else '{}' end,
    array[v_task.element_id] || case when v_incident is not null then array[v_task.element_id] else '{}' end);
  return v_task;
end;
$$;
comment on function bpm.fail_external_task(uuid, text, text, int, interval) is E'Reports a failure of an external task locked by worker_id. retries = how many retries remain; the task is fetchable again after retry_after. With 0 retries an incident failedExternalTask is raised. Roles: bpm_admin, bpm_engine.';

create or replace function bpm.throw_bpmn_error(task_id uuid, worker_id text, error_code text, variables jsonb default '{}')
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
  v_message text := 'BPMN error ' || coalesce(error_code, '(no code)');
begin
  v_locked := bpm_private.external_task__lock(v_tenant, task_id, worker_id, 'throw an error from it');
  v_task := v_locked.task;
  v_instance := v_locked.instance;
  perform bpm_private.instance__require_active(v_instance, 'throw a BPMN error from external task ' || task_id);
  select d.graph, d.inclusive_joins into v_graph, v_joins from bpm.process_definition d
  where d.tenant_id = v_tenant and d.id = v_instance.definition_id;
  v_boundary := bpm_private.error_boundary__find(v_graph, v_task.element_id, error_code);
  if v_boundary is null and bpm_private.token__throw(v_instance, v_graph, v_joins, v_task.id, v_task.element_id, 'error', error_code, v_variables) then
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
  perform bpm_private.token__move(v_instance, v_graph, v_joins, v_task.id, v_task.element_id, v_boundary, v_variables, 'externalTaskCancelled');
  return v_task;
end;
$$;
comment on function bpm.throw_bpmn_error(uuid, text, text, jsonb) is E'Reports a business error for an external task locked by worker_id: the matching error boundary event (by code, else a catch-all) interrupts the task and its path is taken; else the nearest matching catch on the way out (an error event subprocess or a boundary of an enclosing subprocess, which is cancelled); variables merge into the instance. Nothing catches it: incident unhandledBpmnError (retry_incident makes the task available again). Roles: bpm_admin, bpm_engine.';

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
--! EndIncluded api/external_tasks.sql
--! Included api/events.sql
-- Messages, signals and timers (issue 4).

-- Delivers a message to exactly one receiver: a waiting subscription of an
-- instance whose key matches (a null key on either side matches any), else a
-- message start event (starts an instance with the key as business key).
-- Several matches: BP207. None: buffered when ttl is given (returns null),
-- else BP106 when required, else dropped (a message thrown by a process that
-- nobody waits for). message_id: a repeated id within a day, or while the
-- first is buffered, is a no-op returning what the first returned.
create or replace function bpm_private.message__correlate(tenant_id text, name text, correlation_key text, variables jsonb, ttl interval, message_id text, required boolean)
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
    v_subs := array(
      select s from bpm.event_subscription s
      where s.tenant_id = message__correlate.tenant_id and s.kind = 'message' and s.name = message__correlate.name
        and s.instance_id is not null and s.incident_id is null
        and (s.correlation_key is null or message__correlate.correlation_key is null or s.correlation_key = message__correlate.correlation_key)
      order by s.created_at, s.id limit 2);
    exit when pg_catalog.cardinality(v_subs) = 0;
    if pg_catalog.cardinality(v_subs) > 1 then
      raise exception 'message % (correlation key %) matches more than one waiting receiver (instances % and %)',
        name, coalesce(correlation_key, 'null'), (v_subs[1]).instance_id, (v_subs[2]).instance_id using errcode = 'BP207';
    end if;
    v_instance := bpm_private.instance__lock(tenant_id, (v_subs[1]).instance_id);
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
    values (tenant_id, pg_catalog.gen_random_uuid(), name, correlation_key, variables, message_id, pg_catalog.now() + ttl);
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
comment on function bpm_private.message__correlate(text, text, text, jsonb, interval, text, boolean) is E'Delivers a message to its one receiver, starts a process, buffers it (ttl) or raises BP106/BP207.';

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
  return bpm_private.message__correlate(v_tenant, message_name, correlation_key, v_variables, ttl, message_id, true);
end;
$$;
comment on function bpm.correlate_message(text, text, jsonb, interval, text) is E'Delivers a message to exactly one receiver in the caller''s tenant: a waiting message catch event, receive task, message boundary event or event-based gateway whose correlation key matches (zeebe: the subscription''s correlationKey; camunda: the instance''s business key; a null key on either side matches any), else a message start event (starts an instance, business key = correlation_key, and returns it). Variables merge into the instance. More than one match: BP207. No match: with ttl the message is kept and delivered to the first matching subscription that opens before it expires (returns null); without, BP106. message_id: a repeated correlation with the same id within a day (or while the first is buffered) is a no-op. A suspended receiver: BP202. Roles: bpm_admin, bpm_user, bpm_engine.';

-- Triggers every signal subscription of the tenant (instances one at a time,
-- in id order, so concurrent broadcasts cannot deadlock; suspended instances
-- are skipped) and starts the processes with that signal start event.
create or replace function bpm_private.signal__broadcast(tenant_id text, name text, variables jsonb)
returns int
language plpgsql
volatile
set search_path = ''
as $$
declare
  v_candidate record;
  v_sub bpm.event_subscription;
  v_instance bpm.process_instance;
  v_definition bpm.process_definition;
  v_count int := 0;
begin
  for v_candidate in
    select s.id, s.instance_id from bpm.event_subscription s
    where s.tenant_id = signal__broadcast.tenant_id and s.kind = 'signal' and s.name = signal__broadcast.name
      and s.instance_id is not null and s.incident_id is null
    order by s.instance_id, s.created_at, s.id
  loop
    v_instance := bpm_private.instance__lock(tenant_id, v_candidate.instance_id);
    continue when v_instance.state <> 'active';
    select * into v_sub from bpm.event_subscription s where s.tenant_id = signal__broadcast.tenant_id and s.id = v_candidate.id;
    continue when not found;
    perform bpm_private.subscription__trigger(v_sub, variables, 'signalBroadcast');
    v_count := v_count + 1;
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
comment on function bpm_private.signal__broadcast(text, text, jsonb) is E'Triggers every signal catch event, boundary and start event of a signal in a tenant; returns how many.';

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
comment on function bpm.broadcast_signal(text, jsonb) is E'Broadcasts a signal in the caller''s tenant: every waiting signal catch event and signal boundary event is triggered (variables merge into those instances) and every process with that signal start event is started. Returns how many were triggered plus started. Suspended instances are skipped. Roles: bpm_admin, bpm_user, bpm_engine.';

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
  v_sub bpm.event_subscription;
  v_instance bpm.process_instance;
  v_incident uuid;
begin
  select * into v_sub from bpm.event_subscription s where s.tenant_id = v_tenant and s.id = subscription_id and s.kind = 'timer';
  if not found or v_sub.incident_id is not null then
    return null;
  end if;
  if v_sub.instance_id is null then
    select * into v_sub from bpm.event_subscription s where s.tenant_id = v_tenant and s.id = subscription_id for update;
    if not found or v_sub.due_at > pg_catalog.now() then
      return null;
    end if;
  else
    v_instance := bpm_private.instance__lock(v_tenant, v_sub.instance_id);
    select * into v_sub from bpm.event_subscription s where s.tenant_id = v_tenant and s.id = subscription_id;
    -- gone (fired, cancelled), not due (re-armed), or the instance waits for activation
    if not found or v_sub.due_at > pg_catalog.now() or v_instance.state <> 'active' then
      return null;
    end if;
  end if;
  begin
    if v_sub.instance_id is null then
      return bpm_private.timer_start__fire(v_sub);
    end if;
    return bpm_private.subscription__trigger(v_sub, '{}', 'timerFired');
  exception when others then
    if bpm_private.error__is_transient(sqlstate) then
      raise;
    end if;
    if v_sub.instance_id is null then
      raise;
    end if;
    v_incident := bpm_private.incident__raise(v_tenant, v_sub.instance_id, v_sub.element_id, 'failedJob',
      pg_catalog.format('timer %s of element %s failed: %s (SQLSTATE %s)', v_sub.id, v_sub.element_id, sqlerrm, sqlstate));
    update bpm.event_subscription s set incident_id = v_incident where s.tenant_id = v_tenant and s.id = v_sub.id;
    return v_instance;
  end;
end;
$$;
comment on function bpm.fire_timer(uuid) is E'Fires a due timer subscription (called by the worker''s bpm_fire_timer job; idempotent: a timer already fired, removed, re-armed for later, or of a suspended or ended instance is left alone and null returned). A failing continuation raises an incident failedJob instead of an error. Roles: bpm_admin, bpm_engine.';

-- A burst of due timers: the job of one timer also fires other timers of the
-- tenant that are due, in the same transaction (one commit for many
-- firings), removing their own jobs. Instances another transaction holds are
-- skipped (their jobs, or a concurrent batch, take them); concurrent batches
-- take the earliest due timers in a different order each, so they share the
-- work rather than queue on the same instances.
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
  v_fired int := 0;
  v_due record;
  v_instance bpm.process_instance;
begin
  if max_timers is null or max_timers < 1 or max_timers > 1000 then
    raise exception 'max_timers must be between 1 and 1000, got %', coalesce(max_timers::text, 'null') using errcode = 'BP401';
  end if;
  -- (a composite "is not null" needs every field set: test the id)
  v_instance := bpm.fire_timer(subscription_id);
  if v_instance.id is not null then
    v_fired := 1;
  end if;
  for v_due in
    select d.id, d.instance_id from (
      select s.id, s.instance_id from bpm.event_subscription s
      where s.tenant_id = v_tenant and s.kind = 'timer' and s.instance_id is not null and s.incident_id is null
        and s.due_at <= pg_catalog.now() and s.id <> subscription_id
      order by s.due_at limit (max_timers - 1) * 4) d
    order by pg_catalog.hashtext(d.id::text || subscription_id::text)
    limit max_timers - 1
  loop
    -- (instances without a caller only: a called instance's timer fires by its
    -- own job, which locks the root of its call tree first)
    perform 1 from bpm.process_instance i where i.tenant_id = v_tenant and i.id = v_due.instance_id and i.state = 'active'
      and i.root_instance_id is null
    for update skip locked;
    continue when not found;
    -- fired here: its own job goes (a cycle that re-arms enqueues its next one)
    perform bpm_private.timer__dequeue(array[v_due.id]);
    v_instance := bpm.fire_timer(v_due.id);
    if v_instance.id is not null then
      v_fired := v_fired + 1;
    end if;
  end loop;
  return v_fired;
end;
$$;
comment on function bpm.fire_due_timers(uuid, int) is E'Fires a due timer subscription (as fire_timer) and up to max_timers - 1 other timers of the tenant that are due, in one transaction, removing their jobs (called by the worker''s bpm_fire_timer job; idempotent like fire_timer). Returns how many fired. Roles: bpm_admin, bpm_engine.';
--! EndIncluded api/events.sql
--! Included elements/task_deadlines.sql
-- User task deadlines (issue 4): a task with a due date is marked overdue
-- when it passes (event taskOverdue), a follow-up date emits
-- taskFollowUpDue, and an escalation rule (pgbpm:escalateAfter, a duration
-- after the due date, or after creation without one) adds candidate groups
-- and/or reassigns the task (taskEscalated). Each is a graphile-worker job
-- (bpm_task_deadline, job_key bpm-task-<kind>:<task id>), enqueued when the
-- task is created; the handler re-checks the task under the instance lock.

-- Deadline data for a new task (merged into its wait data): escalation
-- evaluated now, flag `deadline` when any job is needed.
create or replace function bpm_private.user_task__deadlines(node jsonb, variables jsonb, data jsonb)
returns jsonb
language plpgsql
stable
set search_path = ''
as $$
declare
  v_rule jsonb := node -> 'taskEscalation';
  v_el text := node ->> 'id';
  v_after text;
  v_escalate_at timestamptz;
begin
  if v_rule is not null and v_rule <> 'null'::jsonb then
    v_after := bpm_private.value__to_text(bpm_private.value__eval(v_rule -> 'after', variables, v_el));
    begin
      v_escalate_at := coalesce((data ->> 'due_at')::timestamptz, pg_catalog.now()) + pg_catalog.replace(v_after, ',', '.')::interval;
    exception when others then
      raise exception 'pgbpm:escalateAfter of element % is not an ISO 8601 duration: "%"', v_el, v_after using errcode = 'BP304';
    end;
    data := data || pg_catalog.jsonb_build_object('escalate_at', v_escalate_at,
      'escalate_groups', pg_catalog.to_jsonb(bpm_private.value__to_text_array(bpm_private.value__eval(v_rule -> 'addCandidateGroups', variables, v_el))),
      'escalate_assignee', bpm_private.value__to_text(bpm_private.value__eval(v_rule -> 'reassignTo', variables, v_el)));
  end if;
  if data ->> 'due_at' is not null or data ->> 'follow_up_at' is not null or data ? 'escalate_at' then
    data := data || '{"deadline": true}'::jsonb;
  end if;
  return data;
end;
$$;
comment on function bpm_private.user_task__deadlines(jsonb, jsonb, jsonb) is E'Evaluates a task''s escalation rule and flags tasks that need deadline jobs.';

create or replace function bpm_private.user_task__enqueue_deadlines(tenant_id text, task_id uuid, data jsonb)
returns void
language plpgsql
volatile
set search_path = ''
as $$
declare
  v_kind text;
  v_at timestamptz;
begin
  foreach v_kind in array array['due', 'followUp', 'escalate'] loop
    v_at := (data ->> case v_kind when 'due' then 'due_at' when 'followUp' then 'follow_up_at' else 'escalate_at' end)::timestamptz;
    continue when v_at is null;
    perform graphile_worker.add_job('bpm_task_deadline',
      pg_catalog.json_build_object('tenant_id', tenant_id, 'task_id', task_id, 'kind', v_kind),
      run_at => v_at, job_key => 'bpm-task-' || v_kind || ':' || task_id::text, max_attempts => 5);
  end loop;
end;
$$;
comment on function bpm_private.user_task__enqueue_deadlines(text, uuid, jsonb) is E'Schedules the due, follow-up and escalation jobs of a new user task.';

create or replace function bpm.process_task_deadline(task_id uuid, kind text)
returns bpm.user_task
language plpgsql
volatile
security definer
set search_path = ''
set plan_cache_mode = force_generic_plan
as $$
declare
  v_tenant text := bpm_private.require_context(array['bpm_admin', 'bpm_engine'], 'process a task deadline');
  v_task bpm.user_task;
  v_instance bpm.process_instance;
  v_graph jsonb;
  v_data jsonb;
begin
  if kind is null or kind not in ('due', 'followUp', 'escalate') then
    raise exception 'invalid argument: kind must be due, followUp or escalate, got %', coalesce(kind, 'null') using errcode = 'BP401';
  end if;
  v_instance := bpm_private.instance__lock_tree(v_tenant, (select t.instance_id from bpm.user_task t where t.tenant_id = v_tenant and t.id = task_id));
  select * into v_task from bpm.user_task t where t.tenant_id = v_tenant and t.id = task_id;
  -- gone, done, or waiting for the instance's activation: nothing to do
  if not found or v_task.state <> 'open' or v_instance.state <> 'active' then
    return null;
  end if;
  if kind = 'due' then
    if v_task.due_at is null or v_task.due_at > pg_catalog.now() or v_task.overdue_since is not null then
      return null;
    end if;
    update bpm.user_task t set overdue_since = pg_catalog.now() where t.tenant_id = v_tenant and t.id = task_id returning * into v_task;
    perform bpm_private.event__emit(v_tenant, v_task.instance_id, array['taskOverdue'], array[v_task.id], array[v_task.element_id]);
  elsif kind = 'followUp' then
    if v_task.follow_up_at is null or v_task.follow_up_at > pg_catalog.now() then
      return null;
    end if;
    perform bpm_private.event__emit(v_tenant, v_task.instance_id, array['taskFollowUpDue'], array[v_task.id], array[v_task.element_id]);
  else
    if v_task.escalated_at is not null then
      return null;
    end if;
    select d.graph into v_graph from bpm.process_definition d where d.tenant_id = v_tenant and d.id = v_instance.definition_id;
    v_data := bpm_private.user_task__deadlines(v_graph -> 'nodes' -> v_task.element_id, v_instance.variables,
      pg_catalog.jsonb_build_object('due_at', v_task.due_at));
    if not v_data ? 'escalate_at' or (v_data ->> 'escalate_at')::timestamptz > pg_catalog.now() + interval '1 second' then
      -- no rule (any more), or not yet due (the due date moved): nothing now
      return null;
    end if;
    update bpm.user_task t
    set escalated_at = pg_catalog.now(),
      assignee = coalesce(v_data ->> 'escalate_assignee', t.assignee),
      candidate_groups = array(select distinct g from unnest(t.candidate_groups || coalesce(
        (select array_agg(e) from pg_catalog.jsonb_array_elements_text(v_data -> 'escalate_groups') e), '{}')) g order by g)
    where t.tenant_id = v_tenant and t.id = task_id
    returning * into v_task;
    perform bpm_private.event__emit(v_tenant, v_task.instance_id, array['taskEscalated'], array[v_task.id], array[v_task.element_id]);
  end if;
  return v_task;
end;
$$;
comment on function bpm.process_task_deadline(uuid, text) is E'Worker entry point (job bpm_task_deadline): kind due marks an open task overdue once its due date has passed (taskOverdue), followUp emits taskFollowUpDue, escalate applies the task''s escalation rule (adds pgbpm:escalateToGroups to the candidates and/or assigns pgbpm:escalateToAssignee; taskEscalated). Idempotent: a task completed, already marked or of a suspended instance is left alone and null returned. Roles: bpm_admin, bpm_engine.';

-- When an open task's escalation rule applies (null without a rule).
create or replace function bpm_private.user_task__escalate_at(tenant_id text, task bpm.user_task)
returns timestamptz
language plpgsql
stable
set search_path = ''
as $$
declare
  v_node jsonb := bpm_private.instance__node(tenant_id, task.instance_id, task.element_id);
  v_variables jsonb := (select i.variables from bpm.process_instance i where i.tenant_id = user_task__escalate_at.tenant_id and i.id = task.instance_id);
begin
  if v_node -> 'taskEscalation' is null then
    return null;
  end if;
  return (bpm_private.user_task__deadlines(v_node, v_variables, pg_catalog.jsonb_build_object('due_at', task.due_at)) ->> 'escalate_at')::timestamptz;
end;
$$;
comment on function bpm_private.user_task__escalate_at(text, bpm.user_task) is E'When an open task''s escalation rule applies, or null.';
--! EndIncluded elements/task_deadlines.sql
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
    topic := topic || (v_tgt ->> 'topic'); interrupting := interrupting || coalesce((v_tgt ->> 'cancelActivity')::boolean, true);
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
  v_event jsonb;
  r record;
begin
  for r in
    with hosts as (
      -- activities and their boundary events (seen from the activity's scope)
      select a.instance_id, a.id as host_id, a.scope_id as var_scope, a.id as var_token, v_graph -> 'nodes' -> a.element_id -> 'boundary' as events, false as esp
      from bpm.activity_instance a
      where a.tenant_id = migration__arm_added_events.tenant_id and a.instance_id = any(ids) and a.state = 'active'
        and v_graph -> 'nodes' -> a.element_id ? 'boundary'
      union all
      -- running subprocess instances and their event subprocesses (seen from inside)
      select a.instance_id, a.id, a.id, null, v_graph -> 'nodes' -> a.element_id -> 'eventSubprocesses', true
      from bpm.activity_instance a
      where a.tenant_id = migration__arm_added_events.tenant_id and a.instance_id = any(ids) and a.state = 'active'
        and v_graph -> 'nodes' -> a.element_id ? 'eventSubprocesses'
      union all
      -- the process level
      select u.id, u.id, null, null, v_graph -> 'eventSubprocesses', true
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
    for v_i in 0 .. pg_catalog.jsonb_array_length(r.events) - 1 loop
      -- a boundary event itself, or an event subprocess's start event
      v_event := v_graph -> 'nodes' -> (r.events ->> v_i);
      if r.esp then
        v_event := v_graph -> 'nodes' -> (v_event ->> 'start');
      end if;
      continue when coalesce(v_event -> 'event' ->> 'kind', 'error') not in ('message', 'signal', 'timer')
        or (v_event ->> 'id') = any(r.armed);
      st := bpm_private.subscription__add(st, r.host_id, bpm_private.subscription__spec(v_event, st.variables, st.business_key)
        || case when r.esp then pg_catalog.jsonb_build_object('interrupting', coalesce((v_event ->> 'interrupting')::boolean, true)) else '{}' end);
    end loop;
    if pg_catalog.cardinality(st.s_token) > 0 then
      perform bpm_private.run__flush_subscriptions(st);
    end if;
  end loop;
end;
$$;
comment on function bpm_private.migration__arm_added_events(text, uuid[], bpm.process_definition) is E'Arms the message, signal and timer boundary events and event subprocesses a migration''s target adds to what already runs.';

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
  return v_count;
end;
$$;
comment on function bpm.migrate_process_instances(uuid[], uuid, jsonb) is E'Migrates running (active or suspended) instances to another version of their process (same key), all or none, and returns how many were migrated. element_mapping maps source element ids to target element ids; an element missing from it keeps its id, which the target must have. Every element something waits at (tasks, tokens, event subscriptions) must map to an element of the same kind (user task, external task, the same kind of catch or boundary event, the same gateway type, subprocess, call activity) in the mapped scope. Tasks keep their ids and assignees (external tasks take the target''s topic), subscriptions their names and due times, the instance its variables; history keeps the old element ids; each instance records instanceMigrated. Message, signal and timer boundary events and event subprocesses the target adds to what already runs are armed. Errors: BP102 an instance not found, BP110 target not found, BP201 an instance ended, BP412 another process key, BP410 a token would be lost, BP411 incompatible element, BP112 mapped to an unknown element, BP401 malformed arguments. Roles: bpm_admin.';
--! EndIncluded instance/migrate.sql
--! Included elements/compensation.sql
-- Compensation and transactions. A compensation throw event (or a cancel
-- end event of a transaction) compensates the completed activities of its
-- scope (thrown in an event subprocess: of the scope around it) that have a
-- compensation handler, and what completed inside its completed
-- subprocesses, most recently completed first,
-- one handler at a time: the throw event's activity instance becomes a
-- scope (token kind scope, data {comp: [[activity instance, handler], …]})
-- the handlers run in. A compensated activity instance ends in state
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
    select c.id, c.el from (
      select u.id, u.el, 1 as run, null::timestamptz as ended, u.ord as seq
      from unnest(st.a_id, st.a_el, st.a_state, st.a_scope) with ordinality as u(id, el, state, scope, ord)
      where u.state = 'completed' and u.el = any(v_elements) and u.scope is not distinct from compensation__collect.scope_id
      union all
      select a.id, a.element_id, 0, a.ended_at, a.seq from bpm.activity_instance a
      where not st.is_new and a.tenant_id = st.tenant_id and a.instance_id = st.instance_id and a.state = 'completed'
        and a.element_id = any(v_elements) and a.scope_id is not distinct from compensation__collect.scope_id
        and not (a.id = any(st.a_id))
    ) c
    order by c.run desc, c.ended desc, c.seq desc
  loop
    if graph -> 'nodes' -> r.el ? 'compensation' then
      v_todo := v_todo || pg_catalog.jsonb_build_array(pg_catalog.jsonb_build_array(r.id, graph -> 'nodes' -> r.el ->> 'compensation'));
    else
      v_todo := v_todo || bpm_private.compensation__collect(st, graph, r.el, r.id, null);
    end if;
  end loop;
  return v_todo;
end;
$$;
comment on function bpm_private.compensation__collect(bpm_private.run_state, jsonb, text, uuid, text) is E'The completed compensable activity instances of a scope instance, latest first, with what completed inside completed subprocesses expanded in place.';

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
  st := bpm_private.scope__set(st, comp_id, v_data || pg_catalog.jsonb_build_object('comp', (v_data -> 'comp') - 0));
  -- the compensated activity instance: compensated exactly once
  v_apos := pg_catalog.array_position(st.a_id, (v_next ->> 0)::uuid);
  if v_apos is not null then
    st.a_state[v_apos] := 'compensated';
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
-- History retention (api/history.sql): a time to live per definition
-- (camunda:historyTimeToLive), an index over ended call-tree roots per
-- definition, the result type of bpm.cleanup_history, and a cleanup job for
-- every tenant that has deployed something.
alter table bpm.process_definition add column if not exists history_ttl interval;
comment on column bpm.process_definition.history_ttl is E'How long the history of an ended instance of this definition is kept (camunda:historyTimeToLive); null: cleanup_history''s default_ttl applies (none: kept).';
alter table bpm.process_definition drop constraint if exists process_definition_history_ttl_not_negative;
alter table bpm.process_definition add constraint process_definition_history_ttl_not_negative check (history_ttl >= interval '0');
create index if not exists process_instance_ended_idx on bpm.process_instance (tenant_id, definition_id, ended_at)
  where ended_at is not null and root_instance_id is null;
drop type if exists bpm.history_cleanup cascade;
create type bpm.history_cleanup as (instances int, activities int, events int);
comment on type bpm.history_cleanup is E'What one cleanup_history call removed.';
comment on column bpm.history_cleanup.instances is E'Process instances removed (call trees count every instance in them).';
comment on column bpm.history_cleanup.activities is E'Activity instance (history) rows removed.';
comment on column bpm.history_cleanup.events is E'Event log rows removed.';

--! Included api/history.sql
-- History retention. An ended instance's history (the instance row, its
-- activity instances, tasks, incidents; for a call tree, the whole tree with
-- its root) is removed once its definition's time to live has passed since
-- it ended (camunda:historyTimeToLive, else the caller's default). The event
-- log is trimmed by age on its own (event_retention). Each tenant's cleanup
-- is a graphile-worker job (bpm_cleanup_history, job key
-- bpm-cleanup:<tenant>) that reschedules itself; bpm.deploy starts it.

-- camunda:historyTimeToLive as compiled (P<n>D), as an interval (null: none).
create or replace function bpm_private.history_ttl__parse(ttl text)
returns interval
language plpgsql
immutable
set search_path = ''
as $$
begin
  if ttl is null then
    return null;
  end if;
  if ttl !~ '^P[0-9]{1,6}D$' then
    raise exception 'invalid deployment: historyTimeToLive % is not P<days>D', ttl using errcode = 'BP501';
  end if;
  return ttl::interval;
end;
$$;
comment on function bpm_private.history_ttl__parse(text) is E'Reads a compiled historyTimeToLive (P<n>D) as an interval (BP501 if malformed).';

-- Schedules the tenant's cleanup job: keep an earlier scheduled run
-- (reschedule false: deploy) or move it (true: the job's own next run).
create or replace function bpm_private.history_cleanup__schedule(tenant_id text, run_in interval, reschedule boolean)
returns void
language plpgsql
volatile
set search_path = ''
as $$
begin
  perform graphile_worker.add_job('bpm_cleanup_history', pg_catalog.json_build_object('tenant_id', tenant_id),
    run_at => pg_catalog.now() + run_in, job_key => 'bpm-cleanup:' || tenant_id,
    job_key_mode => case when reschedule then 'replace' else 'preserve_run_at' end, max_attempts => 5);
end;
$$;
comment on function bpm_private.history_cleanup__schedule(text, interval, boolean) is E'Schedules the history cleanup job of a tenant (one per tenant, job key bpm-cleanup:<tenant>).';

-- The roots of ended call trees (and instances without a caller) whose time
-- to live has passed, oldest first, locked (skip locked: a tree being
-- cleaned by another call is left to it). Per definition, so the index range
-- holds only what has expired.
create or replace function bpm_private.history__expired(tenant_id text, max_instances int, default_ttl interval)
returns uuid[]
language plpgsql
volatile
set search_path = ''
as $$
declare
  v_ids uuid[] := '{}';
  d record;
begin
  for d in
    select p.id, coalesce(p.history_ttl, default_ttl) as ttl from bpm.process_definition p
    where p.tenant_id = history__expired.tenant_id and coalesce(p.history_ttl, default_ttl) is not null
    order by p.id
  loop
    v_ids := v_ids || array(
      select i.id from bpm.process_instance i
      where i.tenant_id = history__expired.tenant_id and i.definition_id = d.id
        and i.ended_at is not null and i.root_instance_id is null and i.ended_at < pg_catalog.now() - d.ttl
      order by i.ended_at
      limit max_instances - pg_catalog.cardinality(v_ids)
      for update skip locked);
    exit when pg_catalog.cardinality(v_ids) >= max_instances;
  end loop;
  return v_ids;
end;
$$;
comment on function bpm_private.history__expired(text, int, interval) is E'Locks and returns up to max_instances ended root instances of a tenant whose history time to live has passed.';

create or replace function bpm.cleanup_history(max_instances int default 500, default_ttl interval default null,
  event_retention interval default null, max_events int default 5000)
returns bpm.history_cleanup
language plpgsql
volatile
security definer
set search_path = ''
set plan_cache_mode = force_generic_plan
as $$
declare
  v_tenant text := bpm_private.require_context(array['bpm_admin', 'bpm_engine'], 'clean up history');
  v_roots uuid[];
  v_tree uuid[];
  v_result bpm.history_cleanup;
begin
  -- ===== GUARD the arguments
  if max_instances is null or max_instances not between 1 and 10000 or max_events is null or max_events not between 1 and 100000 then
    raise exception 'invalid argument: max_instances must be 1..10000 and max_events 1..100000' using errcode = 'BP401';
  end if;
  if default_ttl < interval '0' or event_retention < interval '0' then
    raise exception 'invalid argument: default_ttl and event_retention must not be negative' using errcode = 'BP401';
  end if;
  -- ===== LOCK the expired call trees (by their roots), then remove them whole
  v_roots := bpm_private.history__expired(v_tenant, max_instances, default_ttl);
  with recursive tree as (
    select r.id from unnest(v_roots) as r(id)
    union all
    select c.id from bpm.process_instance c join tree t on c.tenant_id = v_tenant and c.parent_instance_id = t.id
  )
  select coalesce(array_agg(t.id), '{}') into v_tree from tree t;
  delete from bpm.activity_instance a where a.tenant_id = v_tenant and a.instance_id = any(v_tree);
  get diagnostics v_result.activities = row_count;
  delete from bpm.event_subscription s where s.tenant_id = v_tenant and s.instance_id = any(v_tree);
  -- tasks, incidents, tokens and called instances go with their instance (on delete cascade)
  delete from bpm.process_instance i where i.tenant_id = v_tenant and i.id = any(v_roots);
  v_result.instances := pg_catalog.cardinality(v_tree);
  -- ===== TRIM the event log, oldest first (ids grow with time)
  v_result.events := 0;
  if event_retention is not null then
    with oldest as (
      select e.id from bpm.event e where e.tenant_id = v_tenant order by e.id limit max_events
    )
    delete from bpm.event e using oldest o
    where e.tenant_id = v_tenant and e.id = o.id and e.created_at < pg_catalog.now() - event_retention;
    get diagnostics v_result.events = row_count;
  end if;
  return v_result;
end;
$$;
comment on function bpm.cleanup_history(int, interval, interval, int) is E'Removes the history of ended instances whose time to live has passed (the definition''s historyTimeToLive, else default_ttl; none: kept): up to max_instances call trees (an instance with its called instances), with their activity instances, tasks and incidents; and, with event_retention, up to max_events events older than that. Returns what it removed; call it again while it removes a full batch. The worker runs it per tenant every PGBPM_CLEANUP_INTERVAL. Roles: bpm_admin, bpm_engine.';
--! EndIncluded api/history.sql
--! Included api/deploy.sql
-- resources: the compiler's CompiledResource[] (compiler/graph.ts):
-- [{name, hash, xml, processes: [{key, name, versionTag, historyTimeToLive?, graph}]}].
create or replace function bpm.deploy(resources jsonb)
returns setof bpm.process_definition
language plpgsql
volatile
security definer
set search_path = ''
set plan_cache_mode = force_generic_plan
as $$
declare
  v_tenant text := bpm_private.require_context(array['bpm_admin', 'bpm_designer'], 'deploy');
  v_resource jsonb;
  v_process jsonb;
  v_deployment uuid;
  v_latest bpm.process_definition;
  v_definition bpm.process_definition;
begin
  if pg_catalog.jsonb_typeof(resources) is distinct from 'array' or pg_catalog.jsonb_array_length(resources) = 0 then
    raise exception 'invalid deployment: expected a non-empty array of compiled resources' using errcode = 'BP501';
  end if;
  -- versions of one key are assigned one deployment at a time (sorted: no
  -- deadlocks); malformed resources are skipped here and rejected below (BP501)
  perform pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtextextended(v_tenant || '/' || k.key, 0))
  from (select distinct p ->> 'key' as key from pg_catalog.jsonb_array_elements(resources) r,
    pg_catalog.jsonb_array_elements(case when pg_catalog.jsonb_typeof(r -> 'processes') = 'array' then r -> 'processes' end) p
    order by 1) k;
  for v_resource in select r from pg_catalog.jsonb_array_elements(resources) r loop
    if v_resource ->> 'name' is null or v_resource ->> 'hash' is null or v_resource ->> 'xml' is null
       or pg_catalog.jsonb_typeof(v_resource -> 'processes') is distinct from 'array' then
      raise exception 'invalid deployment: resource % lacks name, hash, xml or processes', coalesce(v_resource ->> 'name', '?') using errcode = 'BP501';
    end if;
    v_deployment := null;
    for v_process in select p from pg_catalog.jsonb_array_elements(v_resource -> 'processes') p loop
      if coalesce(v_process ->> 'key', '') = '' then
        raise exception 'invalid deployment: a process of resource % has no key', v_resource ->> 'name' using errcode = 'BP501';
      end if;
      perform bpm_private.graph__validate(v_process ->> 'key', v_process -> 'graph');
      select * into v_latest from bpm.process_definition d
      where d.tenant_id = v_tenant and d.key = v_process ->> 'key'
      order by d.version desc limit 1;
      if found and v_latest.resource_hash = v_resource ->> 'hash' then
        return next v_latest;
        continue;
      end if;
      if v_deployment is null then
        insert into bpm.deployment (tenant_id, name, resource_hash, xml, deployed_by)
        values (v_tenant, v_resource ->> 'name', v_resource ->> 'hash', v_resource ->> 'xml', bpm_private.current_user_id())
        returning id into v_deployment;
      end if;
      insert into bpm.process_definition (tenant_id, key, version, name, version_tag, deployment_id, resource_hash, graph, inclusive_joins, history_ttl)
      values (v_tenant, v_process ->> 'key', coalesce(v_latest.version, 0) + 1, v_process ->> 'name', v_process ->> 'versionTag',
        v_deployment, v_resource ->> 'hash', v_process -> 'graph',
        array(select n.key from pg_catalog.jsonb_each(v_process -> 'graph' -> 'nodes') n
              where n.value ->> 'type' = 'inclusiveGateway' and pg_catalog.jsonb_array_length(n.value -> 'in') > 1 order by n.key),
        bpm_private.history_ttl__parse(v_process ->> 'historyTimeToLive'))
      returning * into v_definition;
      perform bpm_private.event__emit(v_tenant, null, array['definitionDeployed'], array[v_definition.id], array[null]);
      perform bpm_private.definition__subscribe(v_definition);
      v_latest := null;
      return next v_definition;
    end loop;
  end loop;
  -- the tenant's history cleanup runs from now on (history.sql)
  perform bpm_private.history_cleanup__schedule(v_tenant, interval '1 minute', false);
end;
$$;
comment on function bpm.deploy(jsonb) is E'Deploys compiled BPMN resources (the message, signal and timer start events of a new version replace those of the previous one) (as produced by the pgbpm compiler; use `pgbpm deploy` or the deployProcess mutation rather than calling this directly) in one transaction. A process whose file is byte-identical to the latest version of its key is not deployed again: that definition is returned. Roles: bpm_admin, bpm_designer.';

-- The message, signal and timer start events of a newly deployed version
-- replace those of the key's earlier versions (their timer jobs go too).
create or replace function bpm_private.definition__subscribe(definition bpm.process_definition)
returns void
language plpgsql
volatile
set search_path = ''
as $$
declare
  v_timers uuid[];
  v_node jsonb;
  v_spec jsonb;
begin
  with removed as (
    delete from bpm.event_subscription s
    using bpm.process_definition d
    where s.tenant_id = definition.tenant_id and s.instance_id is null
      and d.tenant_id = s.tenant_id and d.id = s.definition_id and d.key = definition.key and d.id <> definition.id
    returning s.id, s.kind
  )
  select coalesce(array_agg(r.id) filter (where r.kind = 'timer'), '{}') into v_timers from removed r;
  if pg_catalog.cardinality(v_timers) > 0 then
    perform bpm_private.timer__dequeue(v_timers);
  end if;
  for v_node in
    select definition.graph -> 'nodes' -> e from pg_catalog.jsonb_array_elements_text(coalesce(definition.graph -> 'eventStarts', '[]')) e
  loop
    v_spec := bpm_private.subscription__spec(v_node, '{}', null);
    continue when v_spec is null;
    insert into bpm.event_subscription (tenant_id, id, kind, name, definition_id, element_id, due_at, cycle, repeats_left)
    values (definition.tenant_id, (v_spec ->> 'id')::uuid, v_spec ->> 'kind', v_spec ->> 'name', definition.id, v_node ->> 'id',
      (v_spec ->> 'due_at')::timestamptz, v_spec ->> 'cycle', (v_spec ->> 'repeats')::int);
    if v_spec ->> 'kind' = 'timer' then
      perform bpm_private.timer__enqueue(definition.tenant_id, (v_spec ->> 'id')::uuid, (v_spec ->> 'due_at')::timestamptz);
    end if;
  end loop;
end;
$$;
comment on function bpm_private.definition__subscribe(bpm.process_definition) is E'Opens the start-event subscriptions of a new definition version, replacing the earlier versions''.';
--! EndIncluded api/deploy.sql
--! Included setup/grants.sql
-- Execute grants: each API function to exactly the roles its guard admits
-- (the guard still checks; the grant keeps others from reaching it at all).
revoke execute on all functions in schema bpm from public;
revoke execute on all functions in schema bpm_private from public;
grant execute on function bpm.deploy(jsonb) to bpm_admin, bpm_designer;
grant execute on function bpm.start_process(text, jsonb, text) to bpm_admin, bpm_user;
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
grant execute on function bpm.throw_bpmn_error(uuid, text, text, jsonb) to bpm_admin, bpm_engine;
grant execute on function bpm.retry_incident(uuid, int) to bpm_admin, bpm_engine;
grant execute on function bpm.events_after(bigint, uuid, int) to bpm_admin, bpm_designer, bpm_user, bpm_engine;
grant execute on function bpm.register_event_listener(text, interval) to bpm_admin, bpm_designer, bpm_user, bpm_engine;
grant execute on function bpm.correlate_message(text, text, jsonb, interval, text) to bpm_admin, bpm_user, bpm_engine;
grant execute on function bpm.broadcast_signal(text, jsonb) to bpm_admin, bpm_user, bpm_engine;
grant execute on function bpm.fire_timer(uuid) to bpm_admin, bpm_engine;
grant execute on function bpm.fire_due_timers(uuid, int) to bpm_admin, bpm_engine;
grant execute on function bpm.continue_async(uuid, boolean) to bpm_admin, bpm_engine;
grant execute on function bpm.process_task_deadline(uuid, text) to bpm_admin, bpm_engine;
grant execute on function bpm.migrate_process_instances(uuid[], uuid, jsonb) to bpm_admin;
grant execute on function bpm.modify_process_instance(uuid, jsonb) to bpm_admin;
grant execute on function bpm.cleanup_history(int, interval, interval, int) to bpm_admin, bpm_engine;
--! EndIncluded setup/grants.sql
select graphile_worker.add_job('bpm_cleanup_history', json_build_object('tenant_id', t.tenant_id),
  run_at => now() + interval '1 minute', job_key => 'bpm-cleanup:' || t.tenant_id, job_key_mode => 'preserve_run_at', max_attempts => 5)
from (select distinct tenant_id from bpm.process_definition) t;

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
