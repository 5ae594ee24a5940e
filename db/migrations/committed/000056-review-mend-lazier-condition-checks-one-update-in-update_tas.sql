--! Previous: sha1:e9e544cddce39171299171ac6aad1497cc5d149f
--! Hash: sha1:9fe72664a59d73e3b05934fa347a15b78359fe6e
--! Message: Review mend: lazier condition checks, one update in update_task, shared starter check and compensation rows

-- Review mend: conditions__check computes what changed only when the
-- instance has conditional subscriptions and says whether it triggered any
-- (callers re-read the instance only then); update_task writes its row once;
-- one candidate-starter check (definition__may_start) for start_process and
-- evaluate_conditions; one query for a scope's completed activity instances
-- (compensation__completed) behind both compensation collectors.
drop function if exists bpm_private.conditions__check(text, uuid, jsonb);
--! Included engine/condition.sql
-- Conditional events (intermediate catch, boundary, event subprocess start):
-- a condition over the variables the event sees. An intermediate catch event
-- whose condition holds when the token arrives passes at once; otherwise it,
-- and every conditional boundary event and event subprocess start, waits
-- with an event subscription of kind conditional. The conditions of an
-- instance's conditional subscriptions are evaluated when they open and
-- after every engine call that changed the instance's variables (or a
-- subprocess's locals). Each is triggered like a message
-- (subscription__trigger) when its condition becomes true: when it holds as
-- the event opens, or holds where at the previous evaluation it did not
-- (BPMN: the condition must become false before a non-interrupting event
-- triggers again; event_subscription.condition_held remembers). A variable
-- the condition reads that is not set counts as not holding (FEEL's null),
-- not as an error. Conditional start events of a process are evaluated by
-- bpm.evaluate_conditions (api/events.sql).

-- Whether the condition of a conditional subscription holds over the
-- variables its event sees (its scope's locals over the instance's).
create or replace function bpm_private.condition__holds(sub bpm.event_subscription, variables jsonb, graph jsonb)
returns boolean
language plpgsql
volatile
set search_path = ''
as $$
declare
  v_node jsonb := graph -> 'nodes' -> sub.element_id;
  st bpm_private.run_state := bpm_private.run__begin(sub.tenant_id, sub.instance_id, variables, false, '{}');
begin
  if v_node ->> 'type' = 'startEvent' then
    -- an event subprocess start: its subscription sits on the scope instance
    st.cur_scope := nullif(sub.token_id, sub.instance_id);
    st := bpm_private.scope__load(st, st.cur_scope);
  else
    st := bpm_private.run__resume(st, v_node, sub.token_id);
  end if;
  return bpm_private.condition__test(v_node, case when st.cur_scope is null then st.variables else bpm_private.scope__variables(st, st.cur_scope, null) end);
end;
$$;
comment on function bpm_private.condition__holds(bpm.event_subscription, jsonb, jsonb) is E'Whether a conditional subscription''s condition holds over what its event sees.';

-- A conditional event's condition over variables; an unset variable makes it false.
create or replace function bpm_private.condition__test(node jsonb, variables jsonb)
returns boolean
language plpgsql
stable
set search_path = ''
as $$
begin
  return bpm_private.expression__test(node -> 'event' -> 'condition', variables, node ->> 'id');
exception when sqlstate 'BP302' then
  return false;
end;
$$;
comment on function bpm_private.condition__test(jsonb, jsonb) is E'Evaluates the condition of a conditional event (false when a variable it reads is not set; BP303 when it yields no boolean).';

-- Evaluates the conditional subscriptions of an active instance (the caller
-- holds the instance lock): first every condition, recording whether it
-- holds (one with camunda:variableName only when the call changed that
-- variable from before to after, by one of its variableEvents, or when it
-- was never evaluated; before null: changes unknown, every condition), then,
-- oldest first, triggers those that became true and still hold (a trigger
-- before it may have changed the variables; the evaluation it made then is
-- recorded too). Returns whether it triggered any. Triggered runs evaluate
-- again when they change variables; a chain of more than 100 triggers in
-- one transaction is conditions that keep re-triggering each other: BP313,
-- and the transaction rolls back.
create or replace function bpm_private.conditions__check(tenant_id text, instance_id uuid, before jsonb, after jsonb)
returns boolean
language plpgsql
volatile
set search_path = ''
as $$
declare
  v_sub bpm.event_subscription;
  v_instance bpm.process_instance;
  v_graph jsonb;
  v_changes jsonb;
  v_event jsonb;
  v_holds boolean;
  v_fire uuid[] := '{}';
  v_id uuid;
  v_count int;
begin
  -- (most instances have none: this one index probe is all)
  for v_sub in
    select * from bpm.event_subscription s
    where s.tenant_id = conditions__check.tenant_id and s.instance_id = conditions__check.instance_id and s.kind = 'conditional'
    order by s.created_at, s.id
  loop
    if v_graph is null then
      select * into v_instance from bpm.process_instance i where i.tenant_id = conditions__check.tenant_id and i.id = conditions__check.instance_id;
      if v_instance.state is distinct from 'active' then
        return false;
      end if;
      v_graph := bpm_private.graph__in_memory((select d.graph from bpm.process_definition d where d.tenant_id = v_instance.tenant_id and d.id = v_instance.definition_id));
      v_changes := case when before is not null then bpm_private.variables__changes(before, after) end;
    end if;
    v_event := v_graph -> 'nodes' -> v_sub.element_id -> 'event';
    continue when v_changes is not null and v_sub.condition_held is not null and v_event ? 'variableName'
      and (not v_changes ? (v_event ->> 'variableName')
           or (v_event ? 'variableEvents' and not (v_event -> 'variableEvents') ? (v_changes ->> (v_event ->> 'variableName'))));
    v_holds := bpm_private.condition__holds(v_sub, v_instance.variables, v_graph);
    if v_holds is distinct from v_sub.condition_held then
      -- (recorded also when it first evaluates false: the filters apply from then on)
      update bpm.event_subscription s set condition_held = v_holds where s.tenant_id = v_sub.tenant_id and s.id = v_sub.id;
      if v_holds then
        v_fire := v_fire || v_sub.id;
      end if;
    end if;
  end loop;
  foreach v_id in array v_fire loop
    -- still open, its instance still active, and not seen false since
    select * into v_sub from bpm.event_subscription s where s.tenant_id = conditions__check.tenant_id and s.id = v_id;
    continue when not found or not v_sub.condition_held;
    exit when (select i.state from bpm.process_instance i where i.tenant_id = v_sub.tenant_id and i.id = v_sub.instance_id) is distinct from 'active';
    v_count := coalesce(nullif(pg_catalog.current_setting('bpm.condition_triggers', true), '')::int, 0) + 1;
    if v_count > 100 then
      raise exception 'conditional event % of instance % triggered more than 100 times in one transaction: conditions keep re-triggering each other', v_sub.element_id, v_sub.instance_id
        using errcode = 'BP313';
    end if;
    perform pg_catalog.set_config('bpm.condition_triggers', v_count::text, true);
    perform bpm_private.subscription__trigger(v_sub, '{}', 'conditionFulfilled');
  end loop;
  return pg_catalog.cardinality(v_fire) > 0;
end;
$$;
comment on function bpm_private.conditions__check(text, uuid, jsonb, jsonb) is E'Evaluates an instance''s conditional event subscriptions (filtered by the variables that changed from before to after; before null: unknown) and triggers those whose condition became true; returns whether it triggered any (BP313 past 100 triggers in one transaction).';

-- What changed between two sets of variables: name -> create | update | delete.
create or replace function bpm_private.variables__changes(before jsonb, after jsonb)
returns jsonb
language sql
immutable
set search_path = ''
as $$
  select coalesce(pg_catalog.jsonb_object_agg(coalesce(a.k, b.k), case when b.v is null then 'create' when a.v is null then 'delete' else 'update' end), '{}')
  from pg_catalog.jsonb_each(before) b(k, v)
  full join pg_catalog.jsonb_each(after) a(k, v) on a.k = b.k
  where b.v is distinct from a.v;
$$;
comment on function bpm_private.variables__changes(jsonb, jsonb) is E'The variables that differ between two sets, as name -> create | update | delete.';
--! EndIncluded engine/condition.sql
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
    null                      -- parent_id
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
-- This loop runs for every automatic step of every call, so the queue and
-- the history rows live in local arrays (appended in place); they are handed
-- to the run state only around behaviours that work on all of it (joins,
-- scopes, terminate) and at the end. That is why this function is longer than
-- the others: splitting the loop would copy the arrays at every call. Tokens at process level (scope null)
-- read the instance variables as they are; tokens in a scope see its locals.
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
  loop
    while not st.terminated and q_pos <= pg_catalog.cardinality(q_node) loop
      v_node_id := q_node[q_pos];
      v_via := q_flow[q_pos];
      v_scope := q_scope[q_pos];
      q_pos := q_pos + 1;
      -- a token of a scope cancelled in this call
      continue when v_node_id is null;
      v_steps := v_steps + 1;
      if v_steps > 2000 then
        raise exception 'instance % took more than 2000 automatic steps in one call (endless loop without a wait state?) at element %', st.instance_id, v_node_id
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
        v_slow := case when (v_node ->> 'asyncBefore')::boolean then 'asyncBefore' end;
      end if;
      a_id := pg_catalog.array_append(a_id, v_id);
      a_el := pg_catalog.array_append(a_el, v_node_id);
      a_type := pg_catalog.array_append(a_type, v_type);
      a_state := pg_catalog.array_append(a_state, 'active'::text);
      a_scope := pg_catalog.array_append(a_scope, v_scope);
      if v_slow = 'asyncBefore' then
        st := bpm_private.async__wait(st, v_node, 'asyncBefore', v_via, v_id);
        continue;
      end if;
      v_vars := st.variables;
      v_inner := false;
      if v_scope is not null or v_node ? 'loop' then
        -- scoped tokens see their scopes' locals; a multi-instance activity enters its body
        v_entered := bpm_private.scope__enter_token(st, v_node, v_id, v_scope);
        st := v_entered.st;
        v_vars := v_entered.variables;
        v_inner := v_entered.is_inner;
        v_slow := case when v_entered.is_body then 'multiInstance' end;
      end if;
      if v_node ? 'inputs' and v_type not in ('subProcess', 'callActivity') then
        -- input mappings of a task: locals its attributes see
        v_vars := v_vars || bpm_private.io__map(v_node -> 'inputs', v_vars, v_node_id);
      end if;
      -- ===== EXECUTE
      case
        when v_slow is not null then
          null;
        when v_type in ('userTask', 'serviceTask', 'businessRuleTask') or coalesce(v_node ->> 'topic', '') <> '' then
          -- tasks are wait states themselves (boundary events of inner instances belong to their body)
          if v_type = 'userTask' then
            st := bpm_private.wait__add(st, v_id, v_node_id, 'userTask', v_via, bpm_private.user_task__create(v_node, v_vars));
            if st.w_data[pg_catalog.cardinality(st.w_data)] ? 'deadline' then
              st.p_data := st.p_data || pg_catalog.jsonb_build_object('kind', 'deadline', 'task', v_id, 'data', st.w_data[pg_catalog.cardinality(st.w_data)]);
            end if;
          else
            st := bpm_private.wait__add(st, v_id, v_node_id, 'externalTask', v_via, bpm_private.external_task__create(v_node, v_vars));
          end if;
          if v_scope is not null or v_node ? 'inputs' then
            -- what the task sees beyond the instance's variables (scope locals, loop variables, inputs)
            st.w_data[pg_catalog.cardinality(st.w_data)] := st.w_data[pg_catalog.cardinality(st.w_data)]
              || pg_catalog.jsonb_build_object('locals', bpm_private.task__locals(v_vars, st.variables));
          end if;
          if pg_catalog.jsonb_array_length(coalesce(v_node -> 'boundary', '[]')) > 0 and bpm_private.node__has_subscriptions(graph, v_node) and not v_inner then
            st := bpm_private.boundary__arm(st, graph, v_node, v_id);
          end if;
          continue;
        when v_type = 'parallelGateway' and pg_catalog.jsonb_array_length(v_node -> 'in') > 1 then
          v_slow := 'parallelJoin';
        when v_type = 'inclusiveGateway' and pg_catalog.jsonb_array_length(v_node -> 'in') > 1 then
          -- waits; fired below once no other token can reach it
          st := bpm_private.wait__add(st, v_id, v_node_id, 'join', v_via, null);
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
        when v_type in ('task', 'manualTask') and v_node ? 'outputs' then
          -- a pass-through task's output mappings, over what it sees (its inputs included)
          a_state[pg_catalog.cardinality(a_state)] := 'completed';
          st := bpm_private.scope__set_variables(st, v_scope, bpm_private.io__map(v_node -> 'outputs', v_vars, v_node_id));
        when v_type in ('startEvent', 'endEvent', 'task', 'manualTask', 'exclusiveGateway', 'parallelGateway', 'inclusiveGateway',
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
        if v_scope is not null then
          st := bpm_private.run__with_variables(st, graph, v_node, v_id, v_via, v_slow, v_vars);
        else
          st := bpm_private.node__execute(st, graph, v_node, v_id, v_via, v_slow);
        end if;
        q_node := st.q_node; q_flow := st.q_flow; q_scope := st.q_scope; q_pos := st.q_pos;
        a_id := st.a_id; a_el := st.a_el; a_type := st.a_type; a_state := st.a_state; a_scope := st.a_scope;
        continue;
      end if;
      -- ===== LEAVE
      if (v_node ->> 'asyncAfter')::boolean then
        st := bpm_private.async__wait(st, v_node, 'asyncAfter', null, bpm_private.uuid_v7());
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
    exit when st.terminated or (pg_catalog.cardinality(st.c_scope) = 0 and pg_catalog.cardinality(st.inclusive_joins) = 0);
    v_queued := pg_catalog.cardinality(st.q_node);
    st := bpm_private.run__settle(st, graph);
    exit when pg_catalog.cardinality(st.q_node) = v_queued or st.terminated;
    q_node := st.q_node; q_flow := st.q_flow; q_scope := st.q_scope; q_pos := st.q_pos;
    a_id := st.a_id; a_el := st.a_el; a_type := st.a_type; a_state := st.a_state; a_scope := st.a_scope;
  end loop;
  return st;
end;
$$;
comment on function bpm_private.run__drain(bpm_private.run_state, jsonb) is E'The token lifecycle: advances every queued token to its next wait state or end, completing scopes that ended (BP306 guards endless loops).';

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
begin
  if v_ord < 0 or v_ord + v_nx + v_ne + v_na + v_nw + 1 >= 1048576 then
    raise exception 'more than 1048575 events in one transaction' using errcode = 'BP307';
  end if;
  perform pg_catalog.set_config('bpm.event_ord', (v_ord + v_nx + v_ne + v_na + v_nw + 1)::text, true);
  -- events, in this order: the explicit ones (x_*), ended stored history
  -- rows, the history rows and the tasks of this call, instanceCompleted
  -- last; ids are reserved per group (no sort; ids skip where a buffered wait
  -- is a join token: they only need to grow)
  with ins as (
    insert into bpm.event (tenant_id, id, instance_id, kind, subject_id, element_id)
    select st.tenant_id, v_base + case when x.kind = 'instanceCompleted' then v_nx + v_ne + v_na + v_nw + 1 else x.ord end,
      st.instance_id, x.kind, x.subject, x.el
    from unnest(st.x_kind, st.x_subject, st.x_el) with ordinality as x(kind, subject, el, ord)
    union all
    select st.tenant_id, v_base + v_nx + e.ord, st.instance_id,
      case e.state when 'completed' then 'activityCompleted' else 'activityCancelled' end, e.id,
      (select a.element_id from bpm.activity_instance a where a.tenant_id = st.tenant_id and a.id = e.id)
    from unnest(st.e_id, st.e_state) with ordinality as e(id, state, ord)
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
  if v_listening then
    perform pg_catalog.pg_notify('bpm_event', (v_base + 1)::text);
  end if;
  -- history: rows stored earlier that ended now, and the rows of this call
  -- (seq follows the order of the a_* arrays, the order tokens entered nodes)
  if st.upsert then
    -- an asyncBefore continuation: its row is stored already
    with ended as (
      -- by primary key, "= any": an index scan whatever the statistics say (a
      -- join with unnest may be planned as a hash join over the tenant's history)
      update bpm.activity_instance a
      set state = st.e_state[pg_catalog.array_position(st.e_id, a.id)], ended_at = pg_catalog.now()
      where a.tenant_id = st.tenant_id and a.id = any(st.e_id)
    )
    insert into bpm.activity_instance (tenant_id, id, instance_id, element_id, element_type, state, ended_at, scope_id)
    select st.tenant_id, u.id, st.instance_id, u.el, u.typ, u.state,
      case when u.state = 'active' then null else pg_catalog.now() end, u.scope
    from unnest(st.a_id, st.a_el, st.a_type, st.a_state, st.a_scope) with ordinality as u(id, el, typ, state, scope, ord)
    order by u.ord
    on conflict on constraint activity_instance_pkey do update set state = excluded.state, ended_at = excluded.ended_at;
  elsif pg_catalog.cardinality(st.e_id) > 0 then
    with ended as (
      update bpm.activity_instance a
      set state = st.e_state[pg_catalog.array_position(st.e_id, a.id)], ended_at = pg_catalog.now()
      where a.tenant_id = st.tenant_id and a.id = any(st.e_id)
    )
    insert into bpm.activity_instance (tenant_id, id, instance_id, element_id, element_type, state, ended_at, scope_id)
    select st.tenant_id, u.id, st.instance_id, u.el, u.typ, u.state,
      case when u.state = 'active' then null else pg_catalog.now() end, u.scope
    from unnest(st.a_id, st.a_el, st.a_type, st.a_state, st.a_scope) with ordinality as u(id, el, typ, state, scope, ord)
    order by u.ord;
  elsif pg_catalog.cardinality(st.a_id) > 0 then
    insert into bpm.activity_instance (tenant_id, id, instance_id, element_id, element_type, state, ended_at, scope_id)
    select st.tenant_id, u.id, st.instance_id, u.el, u.typ, u.state,
      case when u.state = 'active' then null else pg_catalog.now() end, u.scope
    from unnest(st.a_id, st.a_el, st.a_type, st.a_state, st.a_scope) with ordinality as u(id, el, typ, state, scope, ord)
    order by u.ord;
  end if;
  if 'dirty' = any(st.l_state) then
    update bpm_private.token t set data = st.l_data[pg_catalog.array_position(st.l_id, t.id)]
    where t.tenant_id = st.tenant_id
      and t.id = any(array(select l.id from unnest(st.l_id, st.l_state) as l(id, state) where l.state = 'dirty'));
  end if;
  if pg_catalog.cardinality(st.s_token) > 0 then
    perform bpm_private.run__flush_subscriptions(st);
  end if;
  if pg_catalog.cardinality(st.w_id) > 0 then
    perform bpm_private.run__flush_waits(st);
  end if;
  -- last: what the run triggers elsewhere sees everything it wrote
  if pg_catalog.cardinality(st.p_data) > 0 then
    perform bpm_private.run__post(st);
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
begin
  -- user and external tasks are wait states themselves; other waits are tokens
  if not (st.w_kind <@ array['userTask', 'externalTask']) then
    -- scopes carry their data (locals, multi-instance state) as of the end of the run
    insert into bpm_private.token (tenant_id, id, instance_id, element_id, kind, via_flow, data)
    select st.tenant_id, u.id, st.instance_id, u.el, u.kind, u.flow,
      case when u.kind in ('scope', 'body', 'call') then st.l_data[pg_catalog.array_position(st.l_id, u.id)] end
    from unnest(st.w_id, st.w_el, st.w_kind, st.w_flow) as u(id, el, kind, flow)
    where u.kind not in ('userTask', 'externalTask');
  end if;
  if 'userTask' = any(st.w_kind) then
    insert into bpm.user_task (tenant_id, id, instance_id, element_id, name, form, assignee, candidate_users, candidate_groups, priority, due_at, follow_up_at, local_variables)
    select st.tenant_id, u.id, st.instance_id, u.el, u.data ->> 'name', nullif(u.data -> 'form', 'null'), u.data ->> 'assignee',
      coalesce((select array_agg(e) from pg_catalog.jsonb_array_elements_text(u.data -> 'candidate_users') e), '{}'),
      coalesce((select array_agg(e) from pg_catalog.jsonb_array_elements_text(u.data -> 'candidate_groups') e), '{}'),
      coalesce((u.data ->> 'priority')::int, 50), (u.data ->> 'due_at')::timestamptz, (u.data ->> 'follow_up_at')::timestamptz,
      nullif(u.data -> 'locals', 'null')
    from unnest(st.w_id, st.w_el, st.w_kind, st.w_data) as u(id, el, kind, data)
    where u.kind = 'userTask';
  end if;
  if 'externalTask' = any(st.w_kind) then
    insert into bpm.external_task (tenant_id, id, instance_id, element_id, topic, headers, priority, local_variables)
    select st.tenant_id, u.id, st.instance_id, u.el, u.data ->> 'topic', nullif(u.data -> 'headers', 'null'), coalesce((u.data ->> 'priority')::int, 0),
      nullif(u.data -> 'locals', 'null')
    from unnest(st.w_id, st.w_el, st.w_kind, st.w_data) as u(id, el, kind, data)
    where u.kind = 'externalTask';
    perform bpm_private.external_task__notify(st.tenant_id);
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
      st := bpm_private.subscriptions__drop(st, array[st.instance_id]);
      if v_result.parent_instance_id is not null then
        -- a called instance: its call activity goes on (after this run is written)
        st.p_data := st.p_data || '{"kind": "childCompleted"}'::jsonb;
      end if;
      perform bpm_private.run__flush(st);
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
  perform bpm_private.run__flush(st);
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
begin
  insert into bpm.event_subscription (tenant_id, id, kind, name, correlation_key, instance_id, token_id, element_id, interrupting, due_at, cycle, repeats_left, job_priority)
  select st.tenant_id, (d ->> 'id')::uuid, d ->> 'kind', d ->> 'name', d ->> 'key', st.instance_id, u.token, d ->> 'element',
    coalesce((d ->> 'interrupting')::boolean, true), (d ->> 'due_at')::timestamptz, d ->> 'cycle', (d ->> 'repeats')::int,
    coalesce((d ->> 'priority')::int, 0)
  from unnest(st.s_token, st.s_data) as u(token, d);
  for v_timer in select (d ->> 'id')::uuid as id, (d ->> 'due_at')::timestamptz as due_at, coalesce((d ->> 'priority')::int, 0) as priority
                 from unnest(st.s_data) d where d ->> 'kind' = 'timer' loop
    perform bpm_private.timer__enqueue(st.tenant_id, v_timer.id, v_timer.due_at, v_timer.priority);
  end loop;
end;
$$;
comment on function bpm_private.run__flush_subscriptions(bpm_private.run_state) is E'Writes the run''s new event subscriptions and schedules the jobs of its timers.';
--! EndIncluded engine/run.sql
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
  st bpm_private.run_state := bpm_private.run__begin(definition.tenant_id, bpm_private.uuid_v7(), variables, true, definition.inclusive_joins);
  v_done boolean;
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
  perform bpm_private.run__flush(st);
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
--! Included api/instances.sql
create or replace function bpm_private.instance__cancel(instance bpm.process_instance, reason text)
returns bpm.process_instance
language plpgsql
volatile
set search_path = ''
as $$
declare
  v_child bpm.process_instance;
  v_result bpm.process_instance;
begin
  perform bpm_private.instance__cancel_tokens(instance.tenant_id, instance.id);
  for v_child in
    select * from bpm.process_instance c
    where c.tenant_id = instance.tenant_id and c.parent_instance_id = instance.id and (c.state in ('active', 'suspended')) is true
    order by c.id
    for update
  loop
    perform bpm_private.instance__cancel(v_child, reason);
  end loop;
  update bpm.process_instance i
  set state = 'cancelled', ended_at = pg_catalog.now(), end_reason = reason
  where i.tenant_id = instance.tenant_id and i.id = instance.id
  returning * into v_result;
  perform bpm_private.event__emit(instance.tenant_id, instance.id, array['instanceCancelled'], array[instance.id], array[null]);
  return v_result;
end;
$$;
comment on function bpm_private.instance__cancel(bpm.process_instance, text) is E'Cancels a locked instance, its tasks and its called child instances.';

create or replace function bpm.cancel_process_instance(instance_id uuid, reason text default null)
returns bpm.process_instance
language plpgsql
volatile
security definer
set search_path = ''
set plan_cache_mode = force_generic_plan
as $$
declare
  v_tenant text := bpm_private.require_context(array['bpm_admin'], 'cancel a process instance');
  v_instance bpm.process_instance := bpm_private.instance__lock(v_tenant, instance_id);
begin
  if v_instance.state not in ('active', 'suspended') then
    raise exception 'process instance % is % and cannot be cancelled', instance_id, v_instance.state using errcode = 'BP201';
  end if;
  return bpm_private.instance__cancel(v_instance, reason);
end;
$$;
comment on function bpm.cancel_process_instance(uuid, text) is E'Cancels an active or suspended instance: open user and external tasks become cancelled, timers are removed, called child instances are cancelled too. BP201 if it has already ended. Roles: bpm_admin.';

create or replace function bpm_private.instance__set_suspended(instance_id uuid, suspended boolean)
returns bpm.process_instance
language plpgsql
volatile
set search_path = ''
as $$
declare
  v_tenant text := bpm_private.require_context(array['bpm_admin'],
    case when suspended then 'suspend a process instance' else 'activate a process instance' end);
  v_instance bpm.process_instance := bpm_private.instance__lock(v_tenant, instance_id);
begin
  if v_instance.state not in ('active', 'suspended') then
    raise exception 'process instance % is % and cannot be %', instance_id, v_instance.state,
      case when suspended then 'suspended' else 'activated' end using errcode = 'BP201';
  end if;
  if (v_instance.state = 'suspended') = suspended then
    return v_instance;
  end if;
  update bpm.process_instance i
  set state = case when suspended then 'suspended' else 'active' end
  where i.tenant_id = v_tenant and i.id = instance_id
  returning * into v_instance;
  perform bpm_private.event__emit(v_tenant, instance_id,
    array[case when suspended then 'instanceSuspended' else 'instanceActivated' end], array[instance_id], array[null]);
  if not suspended then
    -- timers, asynchronous continuations and task deadlines that came due
    -- while suspended did nothing: schedule them again
    perform bpm_private.timer__enqueue(v_tenant, s.id, s.due_at, s.job_priority)
    from bpm.event_subscription s
    where s.tenant_id = v_tenant and s.instance_id = instance__set_suspended.instance_id and s.kind = 'timer' and s.incident_id is null;
    perform bpm_private.async__enqueue(v_tenant, t.id, bpm_private.instance__node(v_tenant, t.instance_id, t.element_id))
    from bpm_private.token t
    where t.tenant_id = v_tenant and t.instance_id = instance__set_suspended.instance_id and t.kind in ('asyncBefore', 'asyncAfter');
    -- task deadlines that passed while suspended (their jobs did nothing)
    perform bpm_private.user_task__enqueue_deadlines(v_tenant, u.id, pg_catalog.jsonb_build_object(
        'due_at', case when u.overdue_since is null then u.due_at end,
        'follow_up_at', case when u.follow_up_at <= pg_catalog.now() then u.follow_up_at end,
        'escalate_at', case when u.escalated_at is null then bpm_private.user_task__escalate_at(v_tenant, u) end))
    from bpm.user_task u
    where u.tenant_id = v_tenant and u.instance_id = instance__set_suspended.instance_id and (u.state = 'open') is true;
    -- conditions that came to hold while suspended
    if bpm_private.conditions__check(v_tenant, instance_id, null, null) then
      select * into v_instance from bpm.process_instance i where i.tenant_id = v_tenant and i.id = instance_id;
    end if;
  end if;
  return v_instance;
end;
$$;
comment on function bpm_private.instance__set_suspended(uuid, boolean) is E'Suspends or activates an instance (idempotent).';

create or replace function bpm.suspend_process_instance(instance_id uuid)
returns bpm.process_instance
language plpgsql
volatile
security definer
set search_path = ''
set plan_cache_mode = force_generic_plan
as $$
begin
  return bpm_private.instance__set_suspended(instance_id, true);
end;
$$;
comment on function bpm.suspend_process_instance(uuid) is E'Suspends an active instance: task completion, message delivery and external-task fetch/complete are rejected (BP202) and its timers wait until it is activated. Suspending a suspended instance is a no-op; an ended one raises BP201. Roles: bpm_admin.';

create or replace function bpm.activate_process_instance(instance_id uuid)
returns bpm.process_instance
language plpgsql
volatile
security definer
set search_path = ''
set plan_cache_mode = force_generic_plan
as $$
begin
  return bpm_private.instance__set_suspended(instance_id, false);
end;
$$;
comment on function bpm.activate_process_instance(uuid) is E'Activates a suspended instance (no-op when active; BP201 when ended). Roles: bpm_admin.';

create or replace function bpm.set_variables(instance_id uuid, variables jsonb)
returns bpm.process_instance
language plpgsql
volatile
security definer
set search_path = ''
set plan_cache_mode = force_generic_plan
as $$
declare
  v_tenant text := bpm_private.require_context(array['bpm_admin'], 'set variables');
  v_variables jsonb := bpm_private.require_object(variables, 'variables');
  v_instance bpm.process_instance := bpm_private.instance__lock(v_tenant, instance_id);
  v_before jsonb;
begin
  if v_instance.state not in ('active', 'suspended') then
    raise exception 'process instance % is % and its variables cannot change', instance_id, v_instance.state using errcode = 'BP201';
  end if;
  v_before := v_instance.variables;
  update bpm.process_instance i set variables = i.variables || v_variables
  where i.tenant_id = v_tenant and i.id = instance_id
  returning * into v_instance;
  perform bpm_private.event__emit(v_tenant, instance_id, array['variablesUpdated'], array[instance_id], array[null]);
  -- conditional events that hold now are triggered (active instances; suspended ones when activated)
  if v_instance.state = 'active' and v_instance.variables <> v_before
     and bpm_private.conditions__check(v_tenant, instance_id, v_before, v_instance.variables) then
    select * into v_instance from bpm.process_instance i where i.tenant_id = v_tenant and i.id = instance_id;
  end if;
  return v_instance;
end;
$$;
comment on function bpm.set_variables(uuid, jsonb) is E'Merges variables into an instance per top-level key (a null value is stored as JSON null); conditional events whose condition now holds are triggered. BP201 when the instance has ended. Roles: bpm_admin.';
--! EndIncluded api/instances.sql
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

-- Changes to an open task, as Camunda 8's user task update offers them:
-- candidate users and groups, due and follow-up dates, priority. Keys left
-- out stay as they are; null clears a date or a candidate list. A moved due
-- date clears the overdue mark and reschedules the due and escalation jobs
-- (jobs of dates cleared or moved find nothing to do when they run).
create or replace function bpm.update_task(task_id uuid, changes jsonb)
returns bpm.user_task
language plpgsql
volatile
security definer
set search_path = ''
set plan_cache_mode = force_generic_plan
as $$
declare
  v_tenant text := bpm_private.require_context(array['bpm_admin'], 'update a task');
  v_old bpm.user_task;
  v_task bpm.user_task;
  v_due timestamptz;
begin
  perform bpm_private.task_changes__check(changes);
  v_old := (bpm_private.user_task__lock(v_tenant, task_id, 'update it')).task;
  v_due := case when changes ? 'dueDate' then bpm_private.value__to_timestamp(changes -> 'dueDate', v_old.element_id, 'dueDate') else v_old.due_at end;
  update bpm.user_task t
  set candidate_users = case when changes ? 'candidateUsers' then bpm_private.task_changes__identities(changes, 'candidateUsers') else t.candidate_users end,
    candidate_groups = case when changes ? 'candidateGroups' then bpm_private.task_changes__identities(changes, 'candidateGroups') else t.candidate_groups end,
    priority = coalesce((changes ->> 'priority')::int, t.priority),
    due_at = v_due,
    overdue_since = case when v_due is distinct from t.due_at then null else t.overdue_since end,
    follow_up_at = case when changes ? 'followUpDate' then bpm_private.value__to_timestamp(changes -> 'followUpDate', t.element_id, 'followUpDate') else t.follow_up_at end
  where t.tenant_id = v_tenant and t.id = task_id
  returning * into v_task;
  perform bpm_private.user_task__enqueue_deadlines(v_tenant, task_id, pg_catalog.jsonb_build_object(
    'due_at', case when v_task.due_at is distinct from v_old.due_at then v_task.due_at end,
    'follow_up_at', case when v_task.follow_up_at is distinct from v_old.follow_up_at then v_task.follow_up_at end,
    'escalate_at', case when v_task.due_at is distinct from v_old.due_at and v_task.escalated_at is null then bpm_private.user_task__escalate_at(v_tenant, v_task) end));
  perform bpm_private.event__emit(v_tenant, v_task.instance_id, array['taskUpdated'], array[v_task.id], array[v_task.element_id]);
  return v_task;
end;
$$;
comment on function bpm.update_task(uuid, jsonb) is E'Changes an open task: changes is an object with any of candidateUsers and candidateGroups (arrays of names, null for none), dueDate and followUpDate (ISO 8601 date-time, date or duration from now; null clears), priority (an integer). Keys left out stay as they are. A moved due date clears the overdue mark and reschedules the due and escalation jobs. Emits taskUpdated. Errors: BP401 changes not an object, an unknown key or a value of the wrong type; BP304 a date that is none; BP103 not found; BP203 not open; BP202 instance suspended. Roles: bpm_admin.';

-- BP401 unless changes is an object of known keys with values of the right type.
create or replace function bpm_private.task_changes__check(changes jsonb)
returns void
language plpgsql
immutable
set search_path = ''
as $$
declare
  v_key text;
begin
  if changes is null or pg_catalog.jsonb_typeof(changes) <> 'object' then
    raise exception 'invalid argument: changes must be a JSON object' using errcode = 'BP401';
  end if;
  for v_key in select k from pg_catalog.jsonb_object_keys(changes) k loop
    if v_key not in ('candidateUsers', 'candidateGroups', 'dueDate', 'followUpDate', 'priority') then
      raise exception 'invalid argument: unknown change "%" (use candidateUsers, candidateGroups, dueDate, followUpDate, priority)', v_key using errcode = 'BP401';
    end if;
    if v_key = 'priority' and (pg_catalog.jsonb_typeof(changes -> v_key) <> 'number' or (changes ->> v_key)::numeric <> pg_catalog.trunc((changes ->> v_key)::numeric)
                               or abs((changes ->> v_key)::numeric) > 2147483647) then
      raise exception 'invalid argument: priority must be an integer, not %', changes -> v_key using errcode = 'BP401';
    end if;
    if v_key in ('dueDate', 'followUpDate') and pg_catalog.jsonb_typeof(changes -> v_key) not in ('string', 'null') then
      raise exception 'invalid argument: % must be a string or null, not %', v_key, changes -> v_key using errcode = 'BP401';
    end if;
    if v_key in ('candidateUsers', 'candidateGroups') and not (
         pg_catalog.jsonb_typeof(changes -> v_key) = 'null'
         or (pg_catalog.jsonb_typeof(changes -> v_key) = 'array'
             and not exists (select 1 from pg_catalog.jsonb_array_elements(changes -> v_key) e where pg_catalog.jsonb_typeof(e) <> 'string' or pg_catalog.btrim(e #>> '{}') = ''))) then
      raise exception 'invalid argument: % must be an array of non-empty names or null, not %', v_key, changes -> v_key using errcode = 'BP401';
    end if;
  end loop;
end;
$$;
comment on function bpm_private.task_changes__check(jsonb) is E'Checks the changes of bpm.update_task: an object of known keys with values of the right type (BP401).';

-- A checked candidate list of changes: its names trimmed, each once, in order.
create or replace function bpm_private.task_changes__identities(changes jsonb, key text)
returns text[]
language sql
immutable
set search_path = ''
as $$
  select coalesce(pg_catalog.array_agg(n order by first), '{}')
  from (select pg_catalog.btrim(e) as n, min(o) as first
        from pg_catalog.jsonb_array_elements_text(case when pg_catalog.jsonb_typeof(changes -> key) = 'array' then changes -> key else '[]' end) with ordinality x(e, o)
        group by pg_catalog.btrim(e)) d;
$$;
comment on function bpm_private.task_changes__identities(jsonb, text) is E'The candidate names of a bpm.update_task change (trimmed, each once, in order; null: none).';
--! EndIncluded api/user_tasks.sql
--! Included api/start_process.sql
-- request_id: the caller's id for this start. A start whose answer was lost
-- (a connection cut while it committed) can be repeated with the same id: it
-- returns the instance the first call started (as it is now) instead of
-- starting another, for as long as that instance exists. Concurrent calls
-- with one id serialise on an advisory lock of (tenant, id).
create or replace function bpm.start_process(process_key text, variables jsonb default '{}', business_key text default null, request_id text default null)
returns bpm.process_instance
language plpgsql
volatile
security definer
set search_path = ''
set plan_cache_mode = force_generic_plan
as $$
declare
  v_tenant text := bpm_private.require_context(array['bpm_admin', 'bpm_user'], 'start a process');
  v_variables jsonb := bpm_private.require_object(variables, 'variables');
  v_definition bpm.process_definition;
  v_instance bpm.process_instance;
begin
  if request_id is not null then
    v_instance := bpm_private.start_request__find(v_tenant, request_id, process_key);
    if v_instance.id is not null then
      return v_instance;
    end if;
  end if;
  select * into v_definition from bpm.process_definition d
  where d.tenant_id = v_tenant and d.key = process_key
  order by d.version desc limit 1;
  if not found then
    raise exception 'process definition with key % not found', process_key using errcode = 'BP101';
  end if;
  -- (inline first: most processes have no candidate starters)
  if pg_catalog.cardinality(v_definition.candidate_starter_users) > 0 or pg_catalog.cardinality(v_definition.candidate_starter_groups) > 0 then
    perform bpm_private.definition__require_starter(v_definition);
  end if;
  v_instance := bpm_private.instance__start(v_definition, null, v_variables, business_key, null, null);
  if request_id is not null then
    insert into bpm_private.start_request (tenant_id, request_id, instance_id) values (v_tenant, start_process.request_id, v_instance.id);
  end if;
  return v_instance;
end;
$$;
comment on function bpm.start_process(text, jsonb, text, text) is E'Starts an instance of the latest version of a process key and runs it until every token waits. With a request_id, a repeated call (a retry whose first answer was lost) returns the instance the first call started, as it is now, instead of starting another. Raises BP101 when the key is unknown in the tenant, BP308 when the process has no none start event (it starts by message, signal or timer), BP208 when the request_id started an instance of another process, BP209 when the process has unique business keys (pgbpm:uniqueBusinessKey) and an active or suspended instance of it has this business_key, BP401 for an empty or over-long request_id, BP002 for a bpm_user who is none of the process''s candidate starters (camunda:candidateStarterUsers / candidateStarterGroups, when it has any). Roles: bpm_admin, bpm_user.';

-- A bpm_user starts a process with candidate starters only as one of them
-- (by user id or a group); other roles start any.
create or replace function bpm_private.definition__may_start(definition bpm.process_definition)
returns boolean
language plpgsql
stable
set search_path = ''
as $$
begin
  return (pg_catalog.cardinality(definition.candidate_starter_users) = 0 and pg_catalog.cardinality(definition.candidate_starter_groups) = 0)
    or bpm_private.caller_role() <> 'bpm_user'
    or bpm_private.current_user_id() = any(definition.candidate_starter_users)
    or definition.candidate_starter_groups && bpm_private.current_groups();
end;
$$;
comment on function bpm_private.definition__may_start(bpm.process_definition) is E'Whether the caller may start the definition: it has no candidate starters, the caller is not a bpm_user, or the user is one of them (by id or group).';

-- BP002 naming the definition's candidate starters unless the caller may start it.
create or replace function bpm_private.definition__require_starter(definition bpm.process_definition)
returns void
language plpgsql
stable
set search_path = ''
as $$
declare
  v_user text := bpm_private.current_user_id();
begin
  if bpm_private.definition__may_start(definition) then
    return;
  end if;
  raise exception 'user % may not start process %: its candidate starters are users {%} and groups {%}', coalesce(v_user, '(none)'), definition.key,
    pg_catalog.array_to_string(definition.candidate_starter_users, ', '), pg_catalog.array_to_string(definition.candidate_starter_groups, ', ')
    using errcode = 'BP002';
end;
$$;
comment on function bpm_private.definition__require_starter(bpm.process_definition) is E'Raises BP002 unless the caller may start the definition (definition__may_start).';

-- The instance a request id started (locking the id for this transaction),
-- or an empty row; BP208 if it started another process.
create or replace function bpm_private.start_request__find(tenant_id text, request_id text, process_key text)
returns bpm.process_instance
language plpgsql
volatile
set search_path = ''
as $$
declare
  v_found record;
begin
  if request_id = '' or pg_catalog.length(request_id) > 200 then
    raise exception 'invalid argument: request_id must be 1 to 200 characters' using errcode = 'BP401';
  end if;
  perform pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtextextended(tenant_id || '/start/' || request_id, 0));
  select i as instance, d.key into v_found
  from bpm_private.start_request r
  join bpm.process_instance i on i.tenant_id = r.tenant_id and i.id = r.instance_id
  join bpm.process_definition d on d.tenant_id = i.tenant_id and d.id = i.definition_id
  where r.tenant_id = start_request__find.tenant_id and r.request_id = start_request__find.request_id;
  if not found then
    return null;
  end if;
  if v_found.key is distinct from process_key then
    raise exception 'request id % already started instance % of process %, not of %', request_id, (v_found.instance).id, v_found.key, process_key
      using errcode = 'BP208';
  end if;
  return v_found.instance;
end;
$$;
comment on function bpm_private.start_request__find(text, text, text) is E'The instance a start request id started (after taking the id''s transaction lock), or an empty row; BP208 when it started another process.';
--! EndIncluded api/start_process.sql
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
    -- ("is true": by primary key; a bare state = 'active' matches the partial
    -- index of active instances, which a generic plan may walk whole)
    perform 1 from bpm.process_instance i where i.tenant_id = v_tenant and i.id = v_due.instance_id and (i.state = 'active') is true
      and i.root_instance_id is null
    for update skip locked;
    continue when not found;
    -- fired here: firing removes its job with its subscription (a cycle that
    -- re-arms moves its job to the next due time; one that failed and raised
    -- an incident keeps a job that will find it so and do nothing)
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
    select c.id, c.el from bpm_private.compensation__completed(st, compensation__collect.scope_id) c
    where c.el = any(v_elements)
  loop
    if graph -> 'nodes' -> r.el ? 'compensation' and graph -> 'nodes' -> r.el ? 'loop' then
      -- a multi-instance activity (r is its body): each completed inner instance, with its locals
      v_todo := v_todo || bpm_private.compensation__inner_instances(st, r.id, graph -> 'nodes' -> r.el ->> 'compensation');
    elsif graph -> 'nodes' -> r.el ? 'compensation' then
      v_todo := v_todo || pg_catalog.jsonb_build_array(pg_catalog.jsonb_build_array(r.id, graph -> 'nodes' -> r.el ->> 'compensation'));
    else
      v_todo := v_todo || bpm_private.compensation__collect(st, graph, r.el, r.id, null);
    end if;
  end loop;
  return v_todo;
end;
$$;
comment on function bpm_private.compensation__collect(bpm_private.run_state, jsonb, text, uuid, text) is E'The completed compensable activity instances of a scope instance, latest first, with what completed inside completed subprocesses expanded in place.';

-- The completed activity instances of a scope instance (null: the process
-- level), latest first: this run's rows, then stored rows that this run
-- completed (in the order it ended them), then stored rows completed earlier;
-- with the locals a compensable multi-instance inner instance had (stored,
-- or in this run's post action that will store them).
create or replace function bpm_private.compensation__completed(st bpm_private.run_state, scope_id uuid)
returns table (id uuid, el text, locals jsonb)
language plpgsql
stable
set search_path = ''
as $$
begin
  return query
  select c.id, c.el, coalesce(c.locals,
    (select p -> 'vars' from unnest(st.p_data) p where p ->> 'kind' = 'innerLocals' and p ->> 'activity' = c.id::text))
  from (
    select u.id, u.el, null::jsonb as locals, 2 as run, null::timestamptz as ended, u.ord as seq
    from unnest(st.a_id, st.a_el, st.a_state, st.a_scope) with ordinality as u(id, el, state, scope, ord)
    where u.state = 'completed' and u.scope is not distinct from compensation__completed.scope_id
    union all
    select a.id, a.element_id, a.local_variables, case when a.id = any(st.e_id) then 1 else 0 end, a.ended_at,
      case when a.id = any(st.e_id) then pg_catalog.array_position(st.e_id, a.id) else a.seq end
    from bpm.activity_instance a
    where not st.is_new and a.tenant_id = st.tenant_id and a.instance_id = st.instance_id
      and coalesce(st.e_state[pg_catalog.array_position(st.e_id, a.id)], a.state) = 'completed'
      and a.scope_id is not distinct from compensation__completed.scope_id
      and not (a.id = any(st.a_id))
  ) c
  order by c.run desc, c.ended desc nulls first, c.seq desc;
end;
$$;
comment on function bpm_private.compensation__completed(bpm_private.run_state, uuid) is E'The completed activity instances of a scope instance, latest first (this run''s and stored ones), with the locals kept for compensable multi-instance inner instances.';

-- The completed inner instances of a completed multi-instance body, latest
-- first, as [[activity instance, handler, locals], …]: each is compensated
-- by its own run of the handler, which sees the locals the inner instance
-- had (its element variable, loopCounter, input mappings).
create or replace function bpm_private.compensation__inner_instances(st bpm_private.run_state, body_id uuid, handler text)
returns jsonb
language plpgsql
stable
set search_path = ''
as $$
begin
  return coalesce((
    select pg_catalog.jsonb_agg(pg_catalog.jsonb_build_array(c.id, handler, coalesce(c.locals, '{}')) order by c.ord)
    from bpm_private.compensation__completed(st, body_id) with ordinality as c(id, el, locals, ord)), '[]');
end;
$$;
comment on function bpm_private.compensation__inner_instances(bpm_private.run_state, uuid, text) is E'The completed inner instances of a multi-instance body, latest first, each with the handler and the locals it had.';

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
  -- the handler sees the compensated inner instance's locals (multi-instance), else none
  st := bpm_private.scope__set(st, comp_id, v_data || pg_catalog.jsonb_build_object('comp', (v_data -> 'comp') - 0,
    'vars', coalesce(v_next -> 2, '{}'::jsonb)));
  -- the compensated activity instance: compensated exactly once
  v_apos := pg_catalog.array_position(st.a_id, (v_next ->> 0)::uuid);
  if v_apos is not null then
    st.a_state[v_apos] := 'compensated';
  elsif (v_next ->> 0)::uuid = any(st.e_id) then
    -- completed in this run: its row is written completed, then marked (run__post)
    st.p_data := st.p_data || pg_catalog.jsonb_build_object('kind', 'compensated', 'activity', v_next ->> 0);
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
