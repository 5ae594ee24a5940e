--! Previous: sha1:dd45bee49c3e11b25c2d23562c5590cc333cbea7
--! Hash: sha1:1eebbaac9628ee2bd1e0bc5aa6b276163860b6bf
--! Message: Compensation and transactions, open-task indexes, batched timer firing, modification inside subprocesses

-- Compensation and transactions (issue 5): compensated activity instances
-- end in state compensated (compensated exactly once); a cancelled
-- transaction records transactionCancelled.
alter domain bpm.activity_state drop constraint if exists activity_state_is_valid;
alter domain bpm.activity_state add constraint activity_state_is_valid check (value in ('active', 'completed', 'cancelled', 'compensated')) not valid;
comment on domain bpm.activity_state is E'State of an activity instance: active | completed | cancelled | compensated (completed, then undone by its compensation handler).';

-- Open tasks of one instance (completion checks, cancelling, suspending):
-- without these, a generic plan of "instance_id = $2 and state = 'open'"
-- walks the inbox index over every open task of the tenant (measured: a
-- completion took 7 ms at 27,000 open tasks, and grew with them).
create index if not exists user_task_open_instance_idx on bpm.user_task (tenant_id, instance_id) where state = 'open';
create index if not exists external_task_open_instance_idx on bpm.external_task (tenant_id, instance_id) where state = 'open';

alter domain bpm.event_kind drop constraint if exists event_kind_is_valid;
alter domain bpm.event_kind add constraint event_kind_is_valid check (value in (
    'definitionDeployed',
    'instanceStarted', 'instanceCompleted', 'instanceCancelled', 'instanceSuspended', 'instanceActivated', 'variablesUpdated', 'instanceMigrated',
    'activityStarted', 'activityCompleted', 'activityCancelled',
    'taskCreated', 'taskAssigned', 'taskCompleted', 'taskCancelled',
    'externalTaskCreated', 'externalTaskCompleted', 'externalTaskFailed', 'externalTaskCancelled',
    'incidentCreated', 'incidentResolved',
    'messageCorrelated', 'messageBuffered', 'signalBroadcast', 'timerFired', 'taskOverdue', 'taskFollowUpDue', 'taskEscalated',
    'errorCaught', 'escalationCaught', 'transactionCancelled')) not valid;
comment on domain bpm.event_kind is E'Kind of an event: definitionDeployed; instanceStarted | instanceCompleted | instanceCancelled | instanceSuspended | instanceActivated | variablesUpdated | instanceMigrated; activityStarted | activityCompleted | activityCancelled; taskCreated | taskAssigned | taskCompleted | taskCancelled; externalTaskCreated | externalTaskCompleted | externalTaskFailed | externalTaskCancelled; incidentCreated | incidentResolved; messageCorrelated | messageBuffered | signalBroadcast | timerFired; taskOverdue | taskFollowUpDue | taskEscalated; errorCaught | escalationCaught (by a boundary event or event subprocess); transactionCancelled.';

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
    '{}', '{}', '{}', '{}', '{}', '{}' -- l_id, l_parent, l_el, l_kind, l_data, l_state
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
        v_id := pg_catalog.gen_random_uuid();
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
            st := bpm_private.wait__add(st, v_id, v_node_id, 'externalTask', v_via, bpm_private.external_task__create(v_node));
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
        st := bpm_private.async__wait(st, v_node, 'asyncAfter', null, pg_catalog.gen_random_uuid());
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
      update bpm.activity_instance a
      set state = u.state, ended_at = pg_catalog.now()
      from unnest(st.e_id, st.e_state) as u(id, state)
      where a.tenant_id = st.tenant_id and a.id = u.id
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
      set state = u.state, ended_at = pg_catalog.now()
      from unnest(st.e_id, st.e_state) as u(id, state)
      where a.tenant_id = st.tenant_id and a.id = u.id
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
    update bpm_private.token t set data = l.data
    from unnest(st.l_id, st.l_data, st.l_state) as l(id, data, state)
    where l.state = 'dirty' and t.tenant_id = st.tenant_id and t.id = l.id;
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
    insert into bpm.user_task (tenant_id, id, instance_id, element_id, name, assignee, candidate_users, candidate_groups, priority, due_at, follow_up_at)
    select st.tenant_id, u.id, st.instance_id, u.el, u.data ->> 'name', u.data ->> 'assignee',
      coalesce((select array_agg(e) from pg_catalog.jsonb_array_elements_text(u.data -> 'candidate_users') e), '{}'),
      coalesce((select array_agg(e) from pg_catalog.jsonb_array_elements_text(u.data -> 'candidate_groups') e), '{}'),
      coalesce((u.data ->> 'priority')::int, 50), (u.data ->> 'due_at')::timestamptz, (u.data ->> 'follow_up_at')::timestamptz
    from unnest(st.w_id, st.w_el, st.w_kind, st.w_data) as u(id, el, kind, data)
    where u.kind = 'userTask';
  end if;
  if 'externalTask' = any(st.w_kind) then
    insert into bpm.external_task (tenant_id, id, instance_id, element_id, topic)
    select st.tenant_id, u.id, st.instance_id, u.el, u.data ->> 'topic'
    from unnest(st.w_id, st.w_el, st.w_kind, st.w_data) as u(id, el, kind, data)
    where u.kind = 'externalTask';
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
begin
  -- completion first (this run adds no wait state when it can complete, so
  -- the flush below changes nothing the check reads); its event is flushed too
  if st.terminated or pg_catalog.cardinality(st.w_id) = 0 then
    update bpm.process_instance i
    set variables = st.variables, state = 'completed', ended_at = pg_catalog.now()
    where i.tenant_id = st.tenant_id and i.id = st.instance_id
      and (st.terminated or (
        not exists (select 1 from bpm.user_task u where u.tenant_id = st.tenant_id and u.instance_id = st.instance_id and u.state = 'open')
        and not exists (select 1 from bpm.external_task e where e.tenant_id = st.tenant_id and e.instance_id = st.instance_id and e.state = 'open')
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
  if st.variables <> before.variables then
    update bpm.process_instance i set variables = st.variables
    where i.tenant_id = st.tenant_id and i.id = st.instance_id
    returning * into v_result;
  end if;
  perform bpm_private.run__flush(st);
  if pg_catalog.cardinality(st.p_data) > 0 then
    -- what the flush started (called instances, signals) may have moved it on
    select * into v_result from bpm.process_instance i where i.tenant_id = st.tenant_id and i.id = st.instance_id;
  end if;
  return v_result;
end;
$$;
comment on function bpm_private.run__finish(bpm_private.run_state, bpm.process_instance) is E'Completes the instance when nothing waits any more, then flushes the run.';

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
  insert into bpm.event_subscription (tenant_id, id, kind, name, correlation_key, instance_id, token_id, element_id, interrupting, due_at, cycle, repeats_left)
  select st.tenant_id, (d ->> 'id')::uuid, d ->> 'kind', d ->> 'name', d ->> 'key', st.instance_id, u.token, d ->> 'element',
    coalesce((d ->> 'interrupting')::boolean, true), (d ->> 'due_at')::timestamptz, d ->> 'cycle', (d ->> 'repeats')::int
  from unnest(st.s_token, st.s_data) as u(token, d);
  for v_timer in select (d ->> 'id')::uuid as id, (d ->> 'due_at')::timestamptz as due_at from unnest(st.s_data) d where d ->> 'kind' = 'timer' loop
    perform bpm_private.timer__enqueue(st.tenant_id, v_timer.id, v_timer.due_at);
  end loop;
end;
$$;
comment on function bpm_private.run__flush_subscriptions(bpm_private.run_state) is E'Writes the run''s new event subscriptions and schedules the jobs of its timers.';
--! EndIncluded engine/run.sql
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
  select * into instance from bpm.process_instance i
  where i.tenant_id = external_task__lock.tenant_id
    and i.id = (select e.instance_id from bpm.external_task e where e.tenant_id = external_task__lock.tenant_id and e.id = task_id)
  for update;
  if not found then
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
  select i as instance, d.graph, d.inclusive_joins into v_locked
  from bpm.process_instance i
  join bpm.process_definition d on d.tenant_id = i.tenant_id and d.id = i.definition_id
  where i.tenant_id = v_tenant
    and i.id = (select e.instance_id from bpm.external_task e where e.tenant_id = v_tenant and e.id = task_id)
  for update of i;
  v_instance := v_locked.instance;
  update bpm.external_task e
  set state = 'completed', ended_at = pg_catalog.now(), locked_until = null
  where e.tenant_id = v_tenant and e.id = task_id and e.state = 'open' and e.worker_id = complete_external_task.worker_id
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
comment on function bpm.complete_external_task(uuid, text, jsonb) is E'Completes an external task locked by worker_id and continues the instance; variables merge into the instance. Errors: BP104 not found, BP203 not open, BP205 not locked by this worker, BP202 instance suspended. Roles: bpm_admin, bpm_engine.';

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
  where e.tenant_id = v_tenant and e.id = v_incident.external_task_id and e.state = 'open';
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
-- enters it again, which raises a new incident unless a catcher appeared).
create or replace function bpm_private.incident__retry_element(incident bpm.incident)
returns void
language plpgsql
volatile
set search_path = ''
as $$
declare
  v_sub bpm.event_subscription;
  v_token uuid;
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
  st := bpm_private.activity__end(st, array[v_token], 'cancelled');
  st := bpm_private.run__push(st, incident.element_id, null);
  st := bpm_private.run__drain(st, v_graph);
  perform bpm_private.run__finish(st, v_locked.instance);
end;
$$;
comment on function bpm_private.incident__retry_element(bpm.incident) is E'Retries an incident that has no external task: fires the failed timer again, or re-enters the error end event.';
--! EndIncluded api/external_tasks.sql
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
-- BP308 without one; message, signal and timer starts: their triggers).
create or replace function bpm_private.instance__start(definition bpm.process_definition, start_node text, variables jsonb, business_key text, event_kind text, event_subject uuid)
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
  insert into bpm.process_instance (tenant_id, id, definition_id, business_key, state, variables, started_by, ended_at)
  values (definition.tenant_id, st.instance_id, definition.id, business_key,
    case when v_done then 'completed' else 'active' end, st.variables, nullif(pg_catalog.current_setting('bpm.user_id', true), ''),
    case when v_done then pg_catalog.now() end)
  returning * into v_instance;
  perform bpm_private.run__flush(st);
  if pg_catalog.cardinality(st.p_data) > 0 then
    -- what the flush started (called instances) may have moved it on
    select * into v_instance from bpm.process_instance i where i.tenant_id = definition.tenant_id and i.id = st.instance_id;
  end if;
  return v_instance;
end;
$$;
comment on function bpm_private.instance__start(bpm.process_definition, text, jsonb, text, text, uuid) is E'Starts an instance of a definition at a start event and runs it until every token waits.';

-- The activity a boundary event interrupts: its task or token ends as
-- cancelled; a subprocess, multi-instance body or call activity with
-- everything running in it.
create or replace function bpm_private.host__cancel(st bpm_private.run_state, host jsonb, host_id uuid)
returns bpm_private.run_state
language plpgsql
volatile
set search_path = ''
as $$
declare
  v_type text := host ->> 'type';
begin
  if v_type in ('subProcess', 'callActivity') or host ? 'loop' then
    return bpm_private.scope__cancel(st, array[host_id]);
  end if;
  if v_type = 'userTask' then
    update bpm.user_task u set state = 'cancelled', completed_at = pg_catalog.now()
    where u.tenant_id = st.tenant_id and u.id = host_id and u.state = 'open';
    st := bpm_private.run__event(st, 'taskCancelled', host_id, host ->> 'id');
  elsif coalesce(host ->> 'topic', '') <> '' then
    update bpm.external_task e set state = 'cancelled', ended_at = pg_catalog.now(), worker_id = null, locked_until = null
    where e.tenant_id = st.tenant_id and e.id = host_id and e.state = 'open';
    st := bpm_private.run__event(st, 'externalTaskCancelled', host_id, host ->> 'id');
  else
    delete from bpm_private.token t where t.tenant_id = st.tenant_id and t.id = host_id;
  end if;
  perform bpm_private.subscriptions__remove(st.tenant_id, st.instance_id, array[host_id]);
  return bpm_private.activity__end(st, array[host_id], 'cancelled');
end;
$$;
comment on function bpm_private.host__cancel(bpm_private.run_state, jsonb, uuid) is E'Cancels the activity an interrupting boundary event interrupts (a task or token, or a scope with everything in it), with its other subscriptions.';

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
      st := bpm_private.host__cancel(st, v_graph -> 'nodes' -> (v_node ->> 'attachedTo'), sub.token_id);
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
--! Included engine/scope.sql
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
    select t.kind, t.data, t.element_id, a.scope_id as parent into v_row
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
  v_data jsonb;
  v_local jsonb;
  v_k int;
begin
  while v_scope is not null loop
    v_pos := pg_catalog.array_position(st.l_id, v_scope);
    v_data := st.l_data[v_pos];
    if st.l_kind[v_pos] = 'scope' then
      v_vars := coalesce(v_data -> 'vars', '{}') || v_vars;
    elsif st.l_kind[v_pos] = 'body' then
      v_local := pg_catalog.jsonb_build_object('nrOfInstances', v_data -> 'n', 'nrOfActiveInstances', v_data -> 'active',
        'nrOfCompletedInstances', v_data -> 'completed');
      if v_child is not null and v_data -> 'inner' ? v_child::text then
        v_k := (v_data -> 'inner' ->> v_child::text)::int;
        v_local := v_local || pg_catalog.jsonb_build_object('loopCounter', v_k);
        if v_data ->> 'el' is not null then
          v_local := v_local || pg_catalog.jsonb_build_object(v_data ->> 'el', coalesce(v_data -> 'items' -> v_k, 'null'::jsonb));
        end if;
      end if;
      v_vars := v_local || v_vars;
    end if;
    v_child := v_scope;
    v_scope := st.l_parent[v_pos];
  end loop;
  return st.variables || v_vars;
end;
$$;
comment on function bpm_private.scope__variables(bpm_private.run_state, uuid, uuid) is E'The variables visible to a token in a scope: instance variables overlaid by the locals of its scopes.';

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
  v_pos int;
begin
  st := bpm_private.scope__load(st, scope_id);
  v_pos := pg_catalog.array_position(st.l_id, scope_id);
  is_inner := node ? 'loop' and v_pos is not null and st.l_kind[v_pos] = 'body' and st.l_el[v_pos] = node ->> 'id';
  is_body := node ? 'loop' and not is_inner;
  if is_body then
    variables := st.variables;
    return;
  end if;
  if is_inner then
    st := bpm_private.mi__inner_enter(st, scope_id, id);
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
    else
      v_value := coalesce(bpm_private.value__eval(v_value, variables || v_result, element_id), 'null'::jsonb);
    end if;
    v_result := v_result || pg_catalog.jsonb_build_object(v_map ->> 'target', v_value);
  end loop;
  return v_result;
end;
$$;
comment on function bpm_private.io__map(jsonb, jsonb, text) is E'Evaluates input/output mappings over variables (later mappings see earlier ones).';

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
--! EndIncluded engine/scope.sql
--! Included engine/scope_cancel.sql
-- Cancelling activity instances with everything inside them: an
-- interrupting boundary event on a subprocess, multi-instance body or call
-- activity, an interrupting event subprocess, a completion condition, a
-- terminate end event inside a subprocess, an error caught outside.

-- The active activity instances under the given ones (and they themselves),
-- stored and of this run.
create or replace function bpm_private.activity__subtree(st bpm_private.run_state, ids uuid[])
returns uuid[]
language plpgsql
stable
set search_path = ''
as $$
declare
  v_ids uuid[] := ids;
  v_n int;
begin
  if not st.is_new then
    with recursive tree(id) as (
      select a.id from bpm.activity_instance a
      where a.tenant_id = st.tenant_id and a.id = any(ids) and a.state = 'active' and not (a.id = any(st.e_id))
      union
      select a.id from bpm.activity_instance a join tree t on a.scope_id = t.id
      where a.tenant_id = st.tenant_id and a.state = 'active' and not (a.id = any(st.e_id))
    )
    select ids || coalesce(array_agg(t.id), '{}') into v_ids from tree t where not (t.id = any(ids));
  end if;
  -- rows of this run (appended in order: a scope comes before what runs in it)
  loop
    v_n := pg_catalog.cardinality(v_ids);
    for v_i in 1 .. pg_catalog.cardinality(st.a_id) loop
      if st.a_state[v_i] = 'active' and st.a_scope[v_i] = any(v_ids) and not (st.a_id[v_i] = any(v_ids)) then
        v_ids := v_ids || st.a_id[v_i];
      end if;
    end loop;
    exit when pg_catalog.cardinality(v_ids) = v_n;
  end loop;
  return v_ids;
end;
$$;
comment on function bpm_private.activity__subtree(bpm_private.run_state, uuid[]) is E'Active activity instances in and under the given ones.';

create or replace function bpm_private.scope__cancel(st bpm_private.run_state, ids uuid[])
returns bpm_private.run_state
language plpgsql
volatile
set search_path = ''
as $$
declare
  v_all uuid[] := bpm_private.activity__subtree(st, ids);
  v_children uuid[] := '{}';
  v_child bpm.process_instance;
  v_ev record;
begin
  if pg_catalog.cardinality(v_all) = 0 then
    return st;
  end if;
  if not st.is_new then
    -- stored waits: tokens (with their scopes and calls), tasks
    for v_ev in
      with tokens as (
        delete from bpm_private.token t where t.tenant_id = st.tenant_id and t.id = any(v_all)
        returning t.id, t.element_id, t.kind, t.data
      ), user_tasks as (
        update bpm.user_task u set state = 'cancelled', completed_at = pg_catalog.now()
        where u.tenant_id = st.tenant_id and u.id = any(v_all) and u.state = 'open'
        returning u.id, u.element_id
      ), external_tasks as (
        update bpm.external_task e set state = 'cancelled', ended_at = pg_catalog.now(), worker_id = null, locked_until = null
        where e.tenant_id = st.tenant_id and e.id = any(v_all) and e.state = 'open'
        returning e.id, e.element_id
      )
      select 'taskCancelled' as kind, u.id, u.element_id, null::uuid as child from user_tasks u
      union all select 'externalTaskCancelled', e.id, e.element_id, null from external_tasks e
      union all select null, t.id, t.element_id, (t.data ->> 'child')::uuid from tokens t where t.kind = 'call'
    loop
      if v_ev.kind is not null then
        st := bpm_private.run__event(st, v_ev.kind, v_ev.id, v_ev.element_id);
      elsif v_ev.child is not null then
        v_children := v_children || v_ev.child;
      end if;
    end loop;
    st := bpm_private.activity__end(st, array(select a from unnest(v_all) a where pg_catalog.array_position(st.a_id, a) is null), 'cancelled');
  end if;
  -- waits, queued tokens, scopes and history rows of this run
  st := bpm_private.wait__keep(st, array(select not (w = any(v_all)) from unnest(st.w_id) w));
  for v_i in st.q_pos .. pg_catalog.cardinality(st.q_node) loop
    if st.q_scope[v_i] = any(v_all) then
      st.q_node[v_i] := null;
    end if;
  end loop;
  for v_i in 1 .. pg_catalog.cardinality(st.a_id) loop
    if st.a_id[v_i] = any(v_all) and st.a_state[v_i] = 'active' then
      st.a_state[v_i] := 'cancelled';
    end if;
  end loop;
  for v_i in 1 .. pg_catalog.cardinality(st.l_id) loop
    if st.l_id[v_i] = any(v_all) then
      if st.l_kind[v_i] = 'call' and st.l_state[v_i] = 'new' then
        v_children := v_children || (st.l_data[v_i] ->> 'child')::uuid;
      end if;
      st.l_state[v_i] := 'gone';
    end if;
  end loop;
  st := bpm_private.subscriptions__drop(st, v_all);
  -- called instances end with the activity that called them
  for v_child in
    select * from bpm.process_instance c
    where c.tenant_id = st.tenant_id and c.id = any(v_children) and c.state in ('active', 'suspended')
    order by c.id for update
  loop
    perform bpm_private.instance__cancel(v_child, 'its call activity was cancelled');
  end loop;
  return st;
end;
$$;
comment on function bpm_private.scope__cancel(bpm_private.run_state, uuid[]) is E'Cancels activity instances and everything running in them: tasks, tokens, scopes, subscriptions, timers, called instances.';

-- The activity instances active directly in a scope instance (null: at
-- process level), stored and of this run, but one (except_id).
create or replace function bpm_private.scope__active_children(st bpm_private.run_state, scope_id uuid, except_id uuid)
returns uuid[]
language plpgsql
stable
set search_path = ''
as $$
declare
  v_ids uuid[];
begin
  v_ids := array(select u.a from unnest(st.a_id, st.a_scope, st.a_state) as u(a, s, state)
    where u.s is not distinct from scope__active_children.scope_id and u.state = 'active' and u.a is distinct from except_id);
  if not st.is_new then
    v_ids := v_ids || array(select a.id from bpm.activity_instance a
      where a.tenant_id = st.tenant_id and a.instance_id = st.instance_id and a.scope_id is not distinct from scope__active_children.scope_id
        and a.state = 'active' and not (a.id = any(st.e_id)) and not (a.id = any(st.a_id)));
  end if;
  return v_ids;
end;
$$;
comment on function bpm_private.scope__active_children(bpm_private.run_state, uuid, uuid) is E'Active activity instances directly in a scope instance (null: process level), but one.';

-- A terminate end event: at process level the instance ends; inside a
-- subprocess every other token of that subprocess instance is cancelled and
-- the subprocess completes.
create or replace function bpm_private.scope__terminate(st bpm_private.run_state, id uuid)
returns bpm_private.run_state
language plpgsql
volatile
set search_path = ''
as $$
begin
  if st.cur_scope is null then
    return bpm_private.instance__terminate(st);
  end if;
  st := bpm_private.scope__cancel(st, bpm_private.scope__active_children(st, st.cur_scope, id));
  st.c_scope := st.c_scope || st.cur_scope;
  return st;
end;
$$;
comment on function bpm_private.scope__terminate(bpm_private.run_state, uuid) is E'Terminate end event: ends the instance, or (inside a subprocess) cancels the subprocess''s other tokens so it completes.';

-- Whether nothing runs in a scope instance any more.
create or replace function bpm_private.scope__is_empty(st bpm_private.run_state, scope_id uuid)
returns boolean
language plpgsql
stable
set search_path = ''
as $$
begin
  for v_i in 1 .. pg_catalog.cardinality(st.a_id) loop
    if st.a_scope[v_i] = scope_id and st.a_state[v_i] = 'active' then
      return false;
    end if;
  end loop;
  if st.is_new then
    return true;
  end if;
  return not exists (select 1 from bpm.activity_instance a
    where a.tenant_id = st.tenant_id and a.scope_id = scope__is_empty.scope_id and a.state = 'active' and not (a.id = any(st.e_id)));
end;
$$;
comment on function bpm_private.scope__is_empty(bpm_private.run_state, uuid) is E'True when no activity instance is active in the scope instance.';

-- Completes the scopes whose last token ended in this run (run__drain).
create or replace function bpm_private.scope__complete_ended(st bpm_private.run_state, graph jsonb)
returns bpm_private.run_state
language plpgsql
volatile
set search_path = ''
as $$
declare
  v_scopes uuid[] := st.c_scope;
  v_scope uuid;
  v_pos int;
begin
  st.c_scope := '{}';
  foreach v_scope in array v_scopes loop
    v_pos := pg_catalog.array_position(st.l_id, v_scope);
    if v_pos is null then
      st := bpm_private.scope__load(st, v_scope);
      v_pos := pg_catalog.array_position(st.l_id, v_scope);
    end if;
    continue when st.l_state[v_pos] = 'gone' or st.l_kind[v_pos] <> 'scope';
    continue when not bpm_private.scope__is_empty(st, v_scope);
    st := bpm_private.subprocess__complete(st, graph, v_scope);
  end loop;
  return st;
end;
$$;
comment on function bpm_private.scope__complete_ended(bpm_private.run_state, jsonb) is E'Completes every subprocess instance of the run''s check list in which nothing is active any more.';
--! EndIncluded engine/scope_cancel.sql
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

create or replace function bpm_private.error__catch(inout st bpm_private.run_state, graph jsonb, kind text, code text, out caught boolean)
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
comment on function bpm_private.error__catch(bpm_private.run_state, jsonb, text, text) is E'Finds what catches an error or escalation thrown in the current scope and starts it (interrupting catches cancel the scope they interrupt).';

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
  v_id uuid := pg_catalog.gen_random_uuid();
  v_others uuid[];
begin
  if coalesce((start_node ->> 'interrupting')::boolean, true) then
    v_others := bpm_private.scope__active_children(st, event_subprocess__start.scope_id, null);
    st := bpm_private.scope__cancel(st, v_others);
    st := bpm_private.subscriptions__drop(st, array[coalesce(event_subprocess__start.scope_id, st.instance_id)]);
  end if;
  st.cur_scope := event_subprocess__start.scope_id;
  st.a_id := st.a_id || v_id;
  st.a_el := st.a_el || (v_esp ->> 'id');
  st.a_type := st.a_type || 'subProcess'::text;
  st.a_state := st.a_state || 'active'::text;
  st.a_scope := st.a_scope || event_subprocess__start.scope_id;
  st := bpm_private.run__event(st, event_kind, v_id, start_node ->> 'id');
  st := bpm_private.scope__add(st, v_id, v_esp ->> 'id', 'scope', '{"vars": {}}');
  st.cur_scope := v_id;
  return bpm_private.run__push(st, start_node ->> 'id', null);
end;
$$;
comment on function bpm_private.event_subprocess__start(bpm_private.run_state, jsonb, jsonb, uuid, text) is E'Starts an event subprocess in a scope instance (interrupting: the scope''s other activities are cancelled first).';
--! EndIncluded elements/error_catch.sql
--! Included elements/subprocess.sql
-- Embedded subprocess: a scope. Entering it creates the scope instance (its
-- input mappings become its locals), arms its boundary events and event
-- subprocesses and starts its none start event; it completes when nothing
-- runs in it any more (its output mappings go to the enclosing scope) and
-- the token leaves it over its outgoing flows.

create or replace function bpm_private.subprocess__enter(st bpm_private.run_state, graph jsonb, node jsonb, id uuid)
returns bpm_private.run_state
language plpgsql
volatile
set search_path = ''
as $$
begin
  st := bpm_private.subprocess__open(st, graph, node, id);
  return bpm_private.run__push(st, node ->> 'start', null);
end;
$$;
comment on function bpm_private.subprocess__enter(bpm_private.run_state, jsonb, jsonb, uuid) is E'A token enters an embedded subprocess: a new scope instance with its locals, boundary events and event subprocesses; its start event runs.';

-- A new instance of a subprocess (its activity row is the caller's): its
-- locals, boundary events and event subprocesses; the run is then in it.
create or replace function bpm_private.subprocess__open(st bpm_private.run_state, graph jsonb, node jsonb, id uuid)
returns bpm_private.run_state
language plpgsql
volatile
set search_path = ''
as $$
declare
  v_el text := node ->> 'id';
  v_locals jsonb := '{}';
  v_pos int := pg_catalog.array_position(st.l_id, st.cur_scope);
  v_inner boolean := v_pos is not null and st.l_kind[v_pos] = 'body' and st.l_el[v_pos] = v_el;
begin
  if node ? 'inputs' then
    -- st.variables: what the entering token sees
    v_locals := bpm_private.io__map(node -> 'inputs', st.variables, v_el);
  end if;
  st := bpm_private.scope__add(st, id, v_el, 'scope', pg_catalog.jsonb_build_object('vars', v_locals));
  if not v_inner and bpm_private.node__has_subscriptions(graph, node) then
    st := bpm_private.boundary__arm(st, graph, node, id);
  end if;
  st.cur_scope := id;
  if node ? 'eventSubprocesses' then
    st := bpm_private.event_subprocess__arm(st, graph, node -> 'eventSubprocesses', id);
  end if;
  return st;
end;
$$;
comment on function bpm_private.subprocess__open(bpm_private.run_state, jsonb, jsonb, uuid) is E'Opens a subprocess instance (scope, locals, boundary events, event subprocesses) and makes it the run''s current scope.';

create or replace function bpm_private.subprocess__complete(st bpm_private.run_state, graph jsonb, scope_id uuid)
returns bpm_private.run_state
language plpgsql
volatile
set search_path = ''
as $$
declare
  v_pos int := pg_catalog.array_position(st.l_id, scope_id);
  v_el text := st.l_el[v_pos];
  v_parent uuid := st.l_parent[v_pos];
  v_node jsonb := graph -> 'nodes' -> v_el;
  v_ppos int := pg_catalog.array_position(st.l_id, v_parent);
  v_out jsonb;
begin
  if v_node ->> 'type' in ('intermediateThrowEvent', 'endEvent') then
    -- the scope of a compensation: its handler ended, the next one runs
    return bpm_private.compensation__next(st, graph, scope_id);
  end if;
  if v_node ? 'outputs' then
    v_out := bpm_private.io__map(v_node -> 'outputs', bpm_private.scope__variables(st, scope_id, null), v_el);
  end if;
  st := bpm_private.scope__remove(st, scope_id);
  st := bpm_private.subscriptions__drop(st, array[scope_id]);
  st := bpm_private.activity__end(st, array[scope_id], 'completed');
  st.cur_scope := v_parent;
  if v_out is not null then
    st := bpm_private.scope__set_variables(st, v_parent, v_out);
  end if;
  if v_ppos is not null and st.l_kind[v_ppos] = 'body' and st.l_el[v_ppos] = v_el then
    -- an inner instance of a multi-instance subprocess
    return bpm_private.mi__inner_done(st, graph, v_node, v_parent, scope_id);
  end if;
  return bpm_private.node__leave(st, graph, v_node);
end;
$$;
comment on function bpm_private.subprocess__complete(bpm_private.run_state, jsonb, uuid) is E'A subprocess instance in which nothing runs any more completes: outputs are mapped and its token leaves it (a compensation scope: its next handler runs).';
--! EndIncluded elements/subprocess.sql
--! Included elements/compensation.sql
-- Compensation and transactions. A compensation throw event (or a cancel
-- end event of a transaction) compensates the completed activities of its
-- scope that have a compensation handler, most recently completed first,
-- one handler at a time: the throw event's activity instance becomes a
-- scope (token kind scope, data {comp: [[activity instance, handler], …]})
-- the handlers run in. A compensated activity instance ends in state
-- compensated, so it is compensated exactly once. When the last handler
-- ended, the throw event is left (a cancel end event: the transaction is
-- cancelled and its cancel boundary event taken).

create or replace function bpm_private.compensation__start(st bpm_private.run_state, graph jsonb, node jsonb, id uuid)
returns bpm_private.run_state
language plpgsql
volatile
set search_path = ''
as $$
declare
  v_scope uuid := st.cur_scope;
  v_elements text[];
  v_todo jsonb;
begin
  -- the compensable elements of the throw's scope (or the one it names)
  v_elements := array(select n.key from pg_catalog.jsonb_each(graph -> 'nodes') n
    where n.value ? 'compensation' and n.value ->> 'scope' is not distinct from node ->> 'scope'
      and (node -> 'event' ->> 'activity' is null or n.key = node -> 'event' ->> 'activity'));
  -- completed instances of them, latest first: this run's, then stored ones
  select coalesce(pg_catalog.jsonb_agg(pg_catalog.jsonb_build_array(c.id, graph -> 'nodes' -> c.el ->> 'compensation') order by c.run desc, c.ended desc, c.seq desc), '[]')
  into v_todo
  from (
    select u.id, u.el, 1 as run, null::timestamptz as ended, u.ord as seq
    from unnest(st.a_id, st.a_el, st.a_state, st.a_scope) with ordinality as u(id, el, state, scope, ord)
    where u.state = 'completed' and u.el = any(v_elements) and u.scope is not distinct from v_scope
    union all
    select a.id, a.element_id, 0, a.ended_at, a.seq from bpm.activity_instance a
    where not st.is_new and a.tenant_id = st.tenant_id and a.instance_id = st.instance_id and a.state = 'completed'
      and a.element_id = any(v_elements) and a.scope_id is not distinct from v_scope
      and not (a.id = any(st.a_id))
  ) c;
  st := bpm_private.scope__add(st, id, node ->> 'id', 'scope', pg_catalog.jsonb_build_object('vars', '{}'::jsonb, 'comp', v_todo));
  return bpm_private.compensation__next(st, graph, id);
end;
$$;
comment on function bpm_private.compensation__start(bpm_private.run_state, jsonb, jsonb, uuid) is E'A compensation throw (or cancel end event) starts compensating its scope''s completed compensable activities, latest first.';

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
--! Included instance/modify.sql
-- Instance modification (admin): start a token before or after an element,
-- cancel an active activity instance; instructions apply in order in one
-- engine run, and the instance completes when nothing waits any more.

-- The shape of the instructions (BP413): a non-empty JSON array of objects
-- with exactly one of startBefore / startAfter (an element id) or cancel (an
-- activity instance id); start instructions may carry variables (an object).
create or replace function bpm_private.modification__validate(instructions jsonb)
returns void
language plpgsql
immutable
set search_path = ''
as $$
declare
  v_instr jsonb;
  v_ops text[];
begin
  if pg_catalog.jsonb_typeof(instructions) is distinct from 'array' or pg_catalog.jsonb_array_length(instructions) = 0 then
    raise exception 'invalid modification: instructions must be a non-empty JSON array' using errcode = 'BP413';
  end if;
  for v_i in 0 .. pg_catalog.jsonb_array_length(instructions) - 1 loop
    v_instr := instructions -> v_i;
    if pg_catalog.jsonb_typeof(v_instr) <> 'object' then
      raise exception 'invalid modification: instruction % is not a JSON object', v_i + 1 using errcode = 'BP413';
    end if;
    v_ops := array(select k from pg_catalog.jsonb_object_keys(v_instr) k where k in ('startBefore', 'startAfter', 'cancel'));
    if pg_catalog.cardinality(v_ops) <> 1 then
      raise exception 'invalid modification: instruction % must have exactly one of startBefore, startAfter, cancel', v_i + 1 using errcode = 'BP413';
    end if;
    if exists (select 1 from pg_catalog.jsonb_object_keys(v_instr) k where k not in ('startBefore', 'startAfter', 'cancel', 'variables', 'scope'))
       or (v_ops[1] = 'cancel' and (v_instr ? 'variables' or v_instr ? 'scope')) then
      raise exception 'invalid modification: instruction % has unknown members (allowed: startBefore or startAfter with variables and scope, or cancel alone)', v_i + 1
        using errcode = 'BP413';
    end if;
    if v_instr ? 'scope' and coalesce(v_instr ->> 'scope', '') !~* '^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$' then
      raise exception 'invalid modification: scope of instruction % must be an activity instance id (uuid)', v_i + 1 using errcode = 'BP413';
    end if;
    if pg_catalog.jsonb_typeof(v_instr -> v_ops[1]) <> 'string' then
      raise exception 'invalid modification: % of instruction % must be a string', v_ops[1], v_i + 1 using errcode = 'BP413';
    end if;
    if v_ops[1] = 'cancel' and v_instr ->> 'cancel' !~* '^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$' then
      raise exception 'invalid modification: cancel of instruction % must be an activity instance id (uuid), got "%"', v_i + 1, v_instr ->> 'cancel'
        using errcode = 'BP413';
    end if;
    if v_instr ? 'variables' and pg_catalog.jsonb_typeof(v_instr -> 'variables') <> 'object' then
      raise exception 'invalid modification: variables of instruction % must be a JSON object', v_i + 1 using errcode = 'BP413';
    end if;
  end loop;
end;
$$;
comment on function bpm_private.modification__validate(jsonb) is E'Checks the shape of modify_process_instance''s instructions (BP413).';

-- The node a start instruction names, if the engine can start a token
-- there: BP112 unknown element; BP414 boundary events (their event triggers
-- them), event subprocesses, joins for startBefore (a token at a join
-- counts per incoming flow).
create or replace function bpm_private.modification__node(graph jsonb, element_id text, op text)
returns jsonb
language plpgsql
immutable
set search_path = ''
as $$
declare
  v_node jsonb := graph -> 'nodes' -> element_id;
  v_type text := v_node ->> 'type';
begin
  if v_node is null then
    raise exception 'cannot %: element % is not in the process graph', op, element_id using errcode = 'BP112';
  end if;
  if v_type = 'boundaryEvent' then
    raise exception 'cannot %: % is a boundary event, which only its event triggers', op, element_id using errcode = 'BP414';
  end if;
  if coalesce((v_node ->> 'triggeredByEvent')::boolean, false) then
    raise exception 'cannot %: % is an event subprocess, which only its start event triggers', op, element_id using errcode = 'BP414';
  end if;
  if op like 'start before%' and v_type in ('parallelGateway', 'inclusiveGateway') and pg_catalog.jsonb_array_length(v_node -> 'in') > 1 then
    raise exception 'cannot %: % is a joining gateway, whose tokens count per incoming flow (start after an element before it instead)', op, element_id
      using errcode = 'BP414';
  end if;
  return v_node;
end;
$$;
comment on function bpm_private.modification__node(jsonb, text, text) is E'The graph node a startBefore/startAfter instruction names, if a token can start there (BP112, BP414).';

-- The scope instance a start instruction runs in: process level, the
-- subprocess instance named by "scope", the one active instance of the
-- element's subprocess, or (none active) a new instance of it, opened in its
-- own scope the same way (BP111 a named scope that is not an active instance
-- of that subprocess; BP414 several active instances and none named, or a
-- multi-instance subprocess without an active inner instance).
create or replace function bpm_private.modification__enter_scope(st bpm_private.run_state, graph jsonb, node jsonb, scope_hint uuid)
returns bpm_private.run_state
language plpgsql
volatile
set search_path = ''
as $$
declare
  v_sub text := node ->> 'scope';
  v_sub_node jsonb := graph -> 'nodes' -> (node ->> 'scope');
  v_found uuid[];
  v_id uuid;
begin
  if v_sub is null then
    st.cur_scope := null;
    return st;
  end if;
  v_found := array(
    select t.id from bpm_private.token t
    where t.tenant_id = st.tenant_id and t.instance_id = st.instance_id and t.element_id = v_sub and t.kind = 'scope'
      and not (t.id = any(st.l_id) and st.l_state[pg_catalog.array_position(st.l_id, t.id)] = 'gone')
    union
    select l.id from unnest(st.l_id, st.l_el, st.l_kind, st.l_state) as l(id, el, kind, state)
    where l.el = v_sub and l.kind = 'scope' and l.state <> 'gone');
  if scope_hint is not null then
    if not (scope_hint = any(v_found)) then
      raise exception 'activity instance % is not an active instance of subprocess % in process instance %', scope_hint, v_sub, st.instance_id
        using errcode = 'BP111';
    end if;
    st.cur_scope := scope_hint;
  elsif pg_catalog.cardinality(v_found) = 1 then
    st.cur_scope := v_found[1];
  elsif pg_catalog.cardinality(v_found) > 1 then
    raise exception 'subprocess % has % active instances in process instance %: name the one to start in with "scope"', v_sub,
      pg_catalog.cardinality(v_found), st.instance_id using errcode = 'BP414';
  elsif v_sub_node ? 'loop' then
    raise exception 'multi-instance subprocess % has no active inner instance in process instance % to start in', v_sub, st.instance_id
      using errcode = 'BP414';
  else
    -- none: open one, inside its own scope
    st := bpm_private.modification__enter_scope(st, graph, v_sub_node, null);
    v_id := pg_catalog.gen_random_uuid();
    st.a_id := st.a_id || v_id;
    st.a_el := st.a_el || v_sub;
    st.a_type := st.a_type || 'subProcess'::text;
    st.a_state := st.a_state || 'active'::text;
    st.a_scope := st.a_scope || st.cur_scope;
    return bpm_private.subprocess__open(st, graph, v_sub_node, v_id);
  end if;
  return bpm_private.scope__load(st, st.cur_scope);
end;
$$;
comment on function bpm_private.modification__enter_scope(bpm_private.run_state, jsonb, jsonb, uuid) is E'Sets the scope instance a startBefore/startAfter instruction runs in, opening missing subprocess instances (BP111, BP414).';

-- Cancels one stored active activity instance of the run's instance, as an
-- interrupting boundary event does (bpm_private.host__cancel), whatever waits
-- there: its open user or external task, or its token; its event
-- subscriptions and timer jobs go, and incidents that waited on it are
-- resolved. Its activity row ends cancelled when the run is flushed.
create or replace function bpm_private.activity__cancel(st bpm_private.run_state, activity_id uuid)
returns bpm_private.run_state
language plpgsql
volatile
set search_path = ''
as $$
declare
  v_kinds text[];
  v_subjects uuid[];
  v_elements text[];
begin
  with tokens as (
    delete from bpm_private.token t where t.tenant_id = st.tenant_id and t.id = activity_id
    returning t.element_id, t.kind
  ), user_tasks as (
    update bpm.user_task u set state = 'cancelled', completed_at = pg_catalog.now()
    where u.tenant_id = st.tenant_id and u.id = activity_id and u.state = 'open'
    returning u.id, u.element_id
  ), external_tasks as (
    update bpm.external_task e set state = 'cancelled', ended_at = pg_catalog.now(), worker_id = null, locked_until = null
    where e.tenant_id = st.tenant_id and e.id = activity_id and e.state = 'open'
    returning e.id, e.element_id
  ), incidents as (
    update bpm.incident i set resolved_at = pg_catalog.now()
    where i.tenant_id = st.tenant_id and i.instance_id = st.instance_id and i.resolved_at is null
      and (i.external_task_id = activity_id
        or i.id in (select s.incident_id from bpm.event_subscription s
                    where s.tenant_id = st.tenant_id and s.instance_id = st.instance_id and s.token_id = activity_id)
        or (i.incident_type in ('unhandledBpmnError', 'failedJob')
            and i.element_id in (select t.element_id from tokens t where t.kind in ('incident', 'asyncBefore', 'asyncAfter'))))
    returning i.id, i.element_id
  ), events as (
    select 1 as grp, id, element_id, 'taskCancelled' as kind from user_tasks
    union all select 2, id, element_id, 'externalTaskCancelled' from external_tasks
    union all select 3, id, element_id, 'incidentResolved' from incidents
  )
  select coalesce(array_agg(ev.kind order by ev.grp, ev.id), '{}'), coalesce(array_agg(ev.id order by ev.grp, ev.id), '{}'),
    coalesce(array_agg(ev.element_id order by ev.grp, ev.id), '{}')
  into v_kinds, v_subjects, v_elements
  from events ev;
  st.x_kind := st.x_kind || v_kinds;
  st.x_subject := st.x_subject || v_subjects;
  st.x_el := st.x_el || v_elements;
  perform bpm_private.subscriptions__remove(st.tenant_id, st.instance_id, array[activity_id]);
  return bpm_private.activity__end(st, array[activity_id], 'cancelled');
end;
$$;
comment on function bpm_private.activity__cancel(bpm_private.run_state, uuid) is E'Cancels a stored active activity instance of the run''s instance: its task or token, subscriptions, timer jobs and incidents.';

create or replace function bpm.modify_process_instance(instance_id uuid, instructions jsonb)
returns bpm.process_instance
language plpgsql
volatile
security definer
set search_path = ''
set plan_cache_mode = force_generic_plan
as $$
declare
  v_tenant text := bpm_private.require_context(array['bpm_admin'], 'modify a process instance');
  v_instance bpm.process_instance;
  v_locked record;
  v_graph jsonb;
  v_instr jsonb;
  v_node jsonb;
  v_id uuid;
  v_activity record;
  v_pos int;
  v_scope uuid;
  st bpm_private.run_state;
begin
  -- ===== GUARD the instructions' shape, LOCK the instance, GUARD its state
  perform bpm_private.modification__validate(instructions);
  v_instance := bpm_private.instance__lock(v_tenant, instance_id);
  perform bpm_private.instance__require_active(v_instance, 'modify it');
  select d.graph, d.inclusive_joins into v_locked from bpm.process_definition d
  where d.tenant_id = v_tenant and d.id = v_instance.definition_id;
  v_graph := bpm_private.graph__in_memory(v_locked.graph);
  st := bpm_private.run__begin(v_tenant, instance_id, v_instance.variables, false, v_locked.inclusive_joins);
  st.business_key := v_instance.business_key;
  -- ===== APPLY each instruction in order, in one run
  for v_i in 0 .. pg_catalog.jsonb_array_length(instructions) - 1 loop
    v_instr := instructions -> v_i;
    if v_instr ? 'cancel' then
      v_id := (v_instr ->> 'cancel')::uuid;
      select a.instance_id, a.element_id, a.state into v_activity from bpm.activity_instance a
      where a.tenant_id = v_tenant and a.id = v_id;
      if not found or v_activity.instance_id <> modify_process_instance.instance_id then
        raise exception 'activity instance % not found in process instance %', v_id, instance_id using errcode = 'BP111';
      end if;
      v_pos := pg_catalog.array_position(st.e_id, v_id);
      if v_activity.state <> 'active' or v_pos is not null then
        raise exception 'activity instance % (element %) is % and cannot be cancelled', v_id, v_activity.element_id,
          coalesce(st.e_state[v_pos], v_activity.state) using errcode = 'BP221';
      end if;
      if exists (select 1 from bpm_private.token t where t.tenant_id = v_tenant and t.id = v_id and t.kind in ('scope', 'body', 'call')) then
        -- a subprocess, multi-instance body or call activity: with everything in it
        st := bpm_private.scope__cancel(st, array[v_id]);
      else
        st := bpm_private.activity__cancel(st, v_id);
      end if;
      -- scopes left empty are cancelled too, outward
      v_scope := (select a.scope_id from bpm.activity_instance a where a.tenant_id = v_tenant and a.id = v_id);
      while v_scope is not null and bpm_private.scope__is_empty(st, v_scope) loop
        st := bpm_private.scope__cancel(st, array[v_scope]);
        v_scope := (select a.scope_id from bpm.activity_instance a where a.tenant_id = v_tenant and a.id = v_scope);
      end loop;
      continue;
    end if;
    st.variables := st.variables || coalesce(v_instr -> 'variables', '{}');
    if v_instr ? 'startBefore' then
      v_node := bpm_private.modification__node(v_graph, v_instr ->> 'startBefore', 'start before ' || (v_instr ->> 'startBefore'));
      st := bpm_private.modification__enter_scope(st, v_graph, v_node, (v_instr ->> 'scope')::uuid);
      st := bpm_private.run__push(st, v_node ->> 'id', null);
    else
      v_node := bpm_private.modification__node(v_graph, v_instr ->> 'startAfter', 'start after ' || (v_instr ->> 'startAfter'));
      st := bpm_private.modification__enter_scope(st, v_graph, v_node, (v_instr ->> 'scope')::uuid);
      st := bpm_private.node__leave(st, v_graph, v_node);
    end if;
    st := bpm_private.run__drain(st, v_graph);
  end loop;
  -- ===== FINISH: inclusive joins a cancellation freed fire; nothing waiting: the instance completes
  st := bpm_private.run__drain(st, v_graph);
  return bpm_private.run__finish(st, v_instance);
end;
$$;
comment on function bpm.modify_process_instance(uuid, jsonb) is E'Modifies an active instance with a JSON array of instructions, applied in order in one transaction: {"startBefore": "<elementId>", "variables": {…}} starts a token entering that element (as if it arrived over a flow), {"startAfter": "<elementId>"} a token leaving it over its outgoing flows (variables merge into the instance first), {"cancel": "<activityInstanceId>"} cancels that active activity instance (its user or external task or its token, with its event subscriptions and timers; a subprocess, multi-instance body or call activity with everything in it; a subprocess left empty is cancelled too). An element inside a subprocess starts in its active instance (or the one named by "scope": "<activityInstanceId>"), or in a new instance when none is active. When nothing waits any more the instance completes. Errors: BP102 not found, BP201/BP202 ended or suspended, BP413 malformed instructions, BP112 unknown element, BP414 an element no token can start at (boundary event, event subprocess, joining gateway for startBefore) or a subprocess with several active instances and no "scope" naming one, BP111 activity instance not of this instance, BP221 activity instance not active. Roles: bpm_admin.';
--! EndIncluded instance/modify.sql
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
    perform 1 from bpm.process_instance i where i.tenant_id = v_tenant and i.id = v_due.instance_id and i.state = 'active'
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
