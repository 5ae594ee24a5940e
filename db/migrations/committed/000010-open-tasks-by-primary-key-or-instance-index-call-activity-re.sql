--! Previous: sha1:1eebbaac9628ee2bd1e0bc5aa6b276163860b6bf
--! Hash: sha1:fafaf805a936255819bc29df37c7fd9ff270ce18
--! Message: Open tasks by primary key or instance index; call activity retries; compensation from event subprocesses

-- Call activities: a called instance's uncaught error can be retried
-- (retry_incident throws it at the call activity again); a call activity
-- cancelled in the run that entered it starts no child; a retried error end
-- event inside a subprocess is thrown from its scope.
-- Open tasks by id or instance: "(state = 'open') is true", which is no
-- index condition, so generic plans use the primary key or the instance
-- index. With "state = 'open'" they walked the inbox index (tenant_id,
-- state, …) over every open task of the tenant (a completion took 14 ms at
-- 90,000 open tasks), and the partial indexes of migration 000009 were
-- taken the same way for lookups by id; they go.
drop index if exists bpm.user_task_open_instance_idx;
drop index if exists bpm.external_task_open_instance_idx;

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
    where u.tenant_id = st.tenant_id and u.id = host_id and (u.state = 'open') is true;
    st := bpm_private.run__event(st, 'taskCancelled', host_id, host ->> 'id');
  elsif coalesce(host ->> 'topic', '') <> '' then
    update bpm.external_task e set state = 'cancelled', ended_at = pg_catalog.now(), worker_id = null, locked_until = null
    where e.tenant_id = st.tenant_id and e.id = host_id and (e.state = 'open') is true;
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
  v_ids uuid[];
  v_n int;
begin
  -- the given ones that are active: of this run, and stored with what runs in them
  v_ids := array(select u.a from unnest(st.a_id, st.a_state) as u(a, state) where u.state = 'active' and u.a = any(ids));
  if not st.is_new then
    with recursive tree(id) as (
      select a.id from bpm.activity_instance a
      where a.tenant_id = st.tenant_id and a.id = any(ids) and a.state = 'active' and not (a.id = any(st.e_id))
      union
      select a.id from bpm.activity_instance a join tree t on a.scope_id = t.id
      where a.tenant_id = st.tenant_id and a.state = 'active' and not (a.id = any(st.e_id))
    )
    select v_ids || coalesce(array_agg(t.id), '{}') into v_ids from tree t where not (t.id = any(st.a_id));
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
        where u.tenant_id = st.tenant_id and u.id = any(v_all) and (u.state = 'open') is true
        returning u.id, u.element_id
      ), external_tasks as (
        update bpm.external_task e set state = 'cancelled', ended_at = pg_catalog.now(), worker_id = null, locked_until = null
        where e.tenant_id = st.tenant_id and e.id = any(v_all) and (e.state = 'open') is true
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
create or replace function bpm_private.instance__lock(tenant_id text, instance_id uuid)
returns bpm.process_instance
language plpgsql
volatile
set search_path = ''
as $$
declare
  v_instance bpm.process_instance;
begin
  select * into v_instance from bpm.process_instance i
  where i.tenant_id = instance__lock.tenant_id and i.id = instance__lock.instance_id
  for update;
  if not found then
    raise exception 'process instance % not found', instance_id using errcode = 'BP102';
  end if;
  return v_instance;
end;
$$;
comment on function bpm_private.instance__lock(text, uuid) is E'Locks an instance row (BP102 if not found in the tenant).';

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
--! Included engine/join.sql
-- Joins. Each token arriving at a join waits there (its own activity row).
-- A parallel join fires once every incoming flow has a token; an inclusive
-- join once no live token can still reach it. Firing consumes one token per
-- incoming flow that has one (stored tokens first, then buffered ones), so
-- joins reached repeatedly in loops and uneven branches work.

create or replace function bpm_private.join__flows_waiting(st bpm_private.run_state, node_id text)
returns text[]
language plpgsql
stable
set search_path = ''
as $$
declare
  v_flows text[] := '{}';
begin
  -- buffered tokens: walked by index (plain expressions, no query)
  for v_i in 1 .. pg_catalog.cardinality(st.w_el) loop
    if st.w_el[v_i] = node_id and st.w_kind[v_i] = 'join' and not (st.w_flow[v_i] = any(v_flows))
       and (st.cur_scope is null or st.a_scope[pg_catalog.array_position(st.a_id, st.w_id[v_i])] = st.cur_scope) then
      v_flows := v_flows || st.w_flow[v_i];
    end if;
  end loop;
  if not st.is_new then
    v_flows := v_flows || array(
      select distinct t.via_flow from bpm_private.token t
      where t.tenant_id = st.tenant_id and t.instance_id = st.instance_id and t.element_id = node_id and t.kind = 'join'
        and (st.cur_scope is null or exists (select 1 from bpm.activity_instance a
             where a.tenant_id = t.tenant_id and a.id = t.id and a.scope_id = st.cur_scope)));
  end if;
  return v_flows;
end;
$$;
comment on function bpm_private.join__flows_waiting(bpm_private.run_state, text) is E'Incoming flows of a join on which a token waits (buffered or stored).';

create or replace function bpm_private.join__consume(st bpm_private.run_state, node_id text, flows text[])
returns bpm_private.run_state
language plpgsql
volatile
set search_path = ''
as $$
declare
  v_ids uuid[] := '{}';
  v_done text[] := '{}';
  v_flow text;
  v_keep boolean[];
begin
  if not st.is_new then
    -- several tokens waiting on one flow: the first to arrive goes first
    -- (by the seq of its activity row; token ids are random)
    with picked as (
      select distinct on (t.via_flow) t.id, t.via_flow
      from bpm_private.token t
      join bpm.activity_instance a on a.tenant_id = t.tenant_id and a.id = t.id
      where t.tenant_id = st.tenant_id and t.instance_id = st.instance_id
        and t.element_id = node_id and t.kind = 'join' and t.via_flow = any(flows)
        and (st.cur_scope is null or a.scope_id = st.cur_scope)
      order by t.via_flow, a.seq
    ), deleted as (
      delete from bpm_private.token t using picked p
      where t.tenant_id = st.tenant_id and t.id = p.id
      returning t.id, t.via_flow
    )
    select coalesce(array_agg(d.id), '{}'), coalesce(array_agg(d.via_flow), '{}') into v_ids, v_done from deleted d;
  end if;
  -- buffered tokens, in arrival order: the first on each remaining flow goes
  v_keep := pg_catalog.array_fill(true, array[pg_catalog.cardinality(st.w_id)]);
  for v_i in 1 .. pg_catalog.cardinality(st.w_id) loop
    v_flow := st.w_flow[v_i];
    if st.w_el[v_i] = node_id and st.w_kind[v_i] = 'join' and v_flow = any(flows) and not (v_flow = any(v_done))
       and (st.cur_scope is null or st.a_scope[pg_catalog.array_position(st.a_id, st.w_id[v_i])] = st.cur_scope) then
      v_keep[v_i] := false;
      v_done := v_done || v_flow;
      v_ids := v_ids || st.w_id[v_i];
    end if;
  end loop;
  if not (true = all(v_keep)) then
    st := bpm_private.wait__keep(st, v_keep);
  end if;
  return bpm_private.activity__end(st, v_ids, 'completed');
end;
$$;
comment on function bpm_private.join__consume(bpm_private.run_state, text, text[]) is E'Consumes one waiting token per given incoming flow of a join and completes their activity rows.';

create or replace function bpm_private.parallel_join__arrive(st bpm_private.run_state, graph jsonb, node jsonb, id uuid, via_flow text)
returns bpm_private.run_state
language plpgsql
volatile
set search_path = ''
as $$
declare
  v_in text[] := bpm_private.jsonb_to_text_array(node -> 'in');
begin
  st := bpm_private.wait__add(st, id, node ->> 'id', 'join', via_flow, null);
  if not (bpm_private.join__flows_waiting(st, node ->> 'id') @> v_in) then
    return st;
  end if;
  st := bpm_private.join__consume(st, node ->> 'id', v_in);
  return bpm_private.node__leave(st, graph, node);
end;
$$;
comment on function bpm_private.parallel_join__arrive(bpm_private.run_state, jsonb, jsonb, uuid, text) is E'A token arrives at a parallel join; fires when every incoming flow has a token.';

create or replace function bpm_private.inclusive_join__try_fire(st bpm_private.run_state, graph jsonb, node_id text)
returns bpm_private.run_state
language plpgsql
volatile
set search_path = ''
as $$
declare
  v_node jsonb := graph -> 'nodes' -> node_id;
  v_flows text[];
  v_upstream text[];
begin
  if v_node ? 'scope' then
    -- the scope of a token waiting there (one subprocess instance at a time)
    st.cur_scope := coalesce(
      (select s from unnest(st.w_id, st.w_el) as w(id, el), lateral (select st.a_scope[pg_catalog.array_position(st.a_id, w.id)] as s) x
       where w.el = node_id limit 1),
      (select a.scope_id from bpm_private.token t join bpm.activity_instance a on a.tenant_id = t.tenant_id and a.id = t.id
       where t.tenant_id = st.tenant_id and t.instance_id = st.instance_id and t.element_id = node_id and t.kind = 'join' limit 1));
    st := bpm_private.scope__load(st, st.cur_scope);
  else
    st.cur_scope := null;
  end if;
  v_flows := bpm_private.join__flows_waiting(st, node_id);
  if pg_catalog.cardinality(v_flows) = 0 then
    return st;
  end if;
  v_upstream := bpm_private.jsonb_to_text_array(v_node -> 'upstream');
  if st.w_el && v_upstream then
    return st;
  end if;
  if not st.is_new and (
    exists (select 1 from bpm_private.token t
            where t.tenant_id = st.tenant_id and t.instance_id = st.instance_id and t.element_id = any(v_upstream))
    or exists (select 1 from bpm.user_task u
               where u.tenant_id = st.tenant_id and u.instance_id = st.instance_id and (u.state = 'open') is true and u.element_id = any(v_upstream))
    or exists (select 1 from bpm.external_task e
               where e.tenant_id = st.tenant_id and e.instance_id = st.instance_id and (e.state = 'open') is true and e.element_id = any(v_upstream))
  ) then
    return st;
  end if;
  st := bpm_private.join__consume(st, node_id, v_flows);
  return bpm_private.node__leave(st, graph, v_node);
end;
$$;
comment on function bpm_private.inclusive_join__try_fire(bpm_private.run_state, jsonb, text) is E'Fires an inclusive join with waiting tokens once no live token can still reach it.';
--! EndIncluded engine/join.sql
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
    where c.tenant_id = instance.tenant_id and c.parent_instance_id = instance.id and c.state in ('active', 'suspended')
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
    perform bpm_private.timer__enqueue(v_tenant, s.id, s.due_at)
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
begin
  if v_instance.state not in ('active', 'suspended') then
    raise exception 'process instance % is % and its variables cannot change', instance_id, v_instance.state using errcode = 'BP201';
  end if;
  update bpm.process_instance i set variables = i.variables || v_variables
  where i.tenant_id = v_tenant and i.id = instance_id
  returning * into v_instance;
  perform bpm_private.event__emit(v_tenant, instance_id, array['variablesUpdated'], array[instance_id], array[null]);
  return v_instance;
end;
$$;
comment on function bpm.set_variables(uuid, jsonb) is E'Merges variables into an instance per top-level key (a null value is stored as JSON null). BP201 when the instance has ended. Roles: bpm_admin.';
--! EndIncluded api/instances.sql
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
  select * into instance from bpm.process_instance i
  where i.tenant_id = user_task__lock.tenant_id
    and i.id = (select t.instance_id from bpm.user_task t where t.tenant_id = user_task__lock.tenant_id and t.id = task_id)
  for update;
  if not found then
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
  select i as instance, d.graph, d.inclusive_joins into v_locked
  from bpm.process_instance i
  join bpm.process_definition d on d.tenant_id = i.tenant_id and d.id = i.definition_id
  where i.tenant_id = v_tenant
    and i.id = (select t.instance_id from bpm.user_task t where t.tenant_id = v_tenant and t.id = task_id)
  for update of i;
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
comment on function bpm.complete_task(uuid, jsonb) is E'Completes an open user task; variables merge into the instance per top-level key. A bpm_user may complete a task assigned to them, or an unassigned one offered to them (which claims it). Errors: BP103 not found, BP203 not open, BP204 assigned to another user, BP202 instance suspended. Roles: bpm_admin, bpm_user.';

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
  -- ===== LOCK every instance, in id order (concurrent migrations cannot deadlock)
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
  return bpm_private.migration__apply(v_tenant, v_ids, v_target.id, v_plan.src, v_plan.tgt, v_plan.typ, v_plan.topic, v_plan.interrupting);
end;
$$;
comment on function bpm.migrate_process_instances(uuid[], uuid, jsonb) is E'Migrates running (active or suspended) instances to another version of their process (same key), all or none, and returns how many were migrated. element_mapping maps source element ids to target element ids; an element missing from it keeps its id, which the target must have. Every element something waits at (tasks, tokens, event subscriptions) must map to an element of the same kind (user task, external task, the same kind of catch or boundary event, the same gateway type, subprocess, call activity) in the mapped scope. Tasks keep their ids and assignees (external tasks take the target''s topic), subscriptions their names and due times, the instance its variables; history keeps the old element ids; each instance records instanceMigrated. Errors: BP102 an instance not found, BP110 target not found, BP201 an instance ended, BP412 another process key, BP410 a token would be lost, BP411 incompatible element, BP112 mapped to an unknown element, BP401 malformed arguments. Roles: bpm_admin.';
--! EndIncluded instance/migrate.sql
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
    where u.tenant_id = st.tenant_id and u.id = activity_id and (u.state = 'open') is true
    returning u.id, u.element_id
  ), external_tasks as (
    update bpm.external_task e set state = 'cancelled', ended_at = pg_catalog.now(), worker_id = null, locked_until = null
    where e.tenant_id = st.tenant_id and e.id = activity_id and (e.state = 'open') is true
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
  v_child := bpm_private.instance__start(bpm_private.call__definition(tenant_id, v_caller.definition_id, action),
    null, action -> 'variables', action ->> 'businessKey', null, null);
  update bpm.process_instance i set parent_instance_id = call__start.instance_id
  where i.tenant_id = call__start.tenant_id and i.id = v_child.id;
  update bpm_private.token t set data = pg_catalog.jsonb_build_object('child', v_child.id)
  where t.tenant_id = call__start.tenant_id and t.id = (action ->> 'token')::uuid;
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
  select * into token from bpm_private.token t
  where t.tenant_id = call__caller.tenant_id and t.instance_id = caller.id and t.kind = 'call' and t.data ->> 'child' = child_id::text;
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
  v_node jsonb;
  v_call jsonb;
  st bpm_private.run_state;
begin
  -- gone (cancelled, interrupted): nothing to do
  if (v_found.token).id is null or (v_found.token).data ? 'failed' or (v_found.caller).state not in ('active', 'suspended') then
    return;
  end if;
  select * into v_child from bpm.process_instance i where i.tenant_id = call__child_completed.tenant_id and i.id = child_id;
  select bpm_private.graph__in_memory(d.graph) into v_graph from bpm.process_definition d
  where d.tenant_id = call__child_completed.tenant_id and d.id = (v_found.caller).definition_id;
  v_node := v_graph -> 'nodes' -> (v_found.token).element_id;
  v_call := v_node -> 'call';
  st := bpm_private.run__begin(tenant_id, (v_found.caller).id, (v_found.caller).variables, false,
    (select d.inclusive_joins from bpm.process_definition d where d.tenant_id = call__child_completed.tenant_id and d.id = (v_found.caller).definition_id));
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
  v_caught boolean;
  v_res record;
  st bpm_private.run_state;
begin
  if (v_found.token).id is null or (v_found.caller).state <> 'active' or (v_found.token).data ? 'failed' then
    return;
  end if;
  select bpm_private.graph__in_memory(d.graph) into v_graph from bpm.process_definition d
  where d.tenant_id = call__child_threw.tenant_id and d.id = (v_found.caller).definition_id;
  st := bpm_private.run__begin(tenant_id, (v_found.caller).id, (v_found.caller).variables, false,
    (select d.inclusive_joins from bpm.process_definition d where d.tenant_id = call__child_threw.tenant_id and d.id = (v_found.caller).definition_id));
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
  v_res := bpm_private.error__catch(st, v_graph, action ->> 'event', action ->> 'code');
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
--! Included elements/compensation.sql
-- Compensation and transactions. A compensation throw event (or a cancel
-- end event of a transaction) compensates the completed activities of its
-- scope (thrown in an event subprocess: of the scope around it) that have a
-- compensation handler, most recently completed first,
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
  v_scope_el text := node ->> 'scope';
  v_elements text[];
  v_todo jsonb;
begin
  if coalesce((graph -> 'nodes' -> v_scope_el ->> 'triggeredByEvent')::boolean, false) then
    -- thrown in an event subprocess: it compensates the scope the event subprocess runs in
    v_scope := st.l_parent[pg_catalog.array_position(st.l_id, st.cur_scope)];
    v_scope_el := graph -> 'nodes' -> v_scope_el ->> 'scope';
  end if;
  -- the compensable elements of that scope (or the one the throw names)
  v_elements := array(select n.key from pg_catalog.jsonb_each(graph -> 'nodes') n
    where n.value ? 'compensation' and n.value ->> 'scope' is not distinct from v_scope_el
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
