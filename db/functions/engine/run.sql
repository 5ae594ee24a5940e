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
