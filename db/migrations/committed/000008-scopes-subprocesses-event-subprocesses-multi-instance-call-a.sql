--! Previous: sha1:f0924c0ced2813bade6b5b1003a9ba5eb0c49471
--! Hash: sha1:dd45bee49c3e11b25c2d23562c5590cc333cbea7
--! Message: Scopes: subprocesses, event subprocesses, multi-instance, call activities, link events; instance modification and migration

-- Scopes (issue 5): embedded subprocesses, event subprocesses, multi-instance
-- bodies and call activities. Activity instances form a tree (scope_id);
-- scope instances are tokens (kind scope | body | call) whose data holds
-- their locals, loop state or child instance.
-- Instance modification and migration: modify_process_instance (start
-- before/after an element, cancel an activity instance) and
-- migrate_process_instances (to another version of the same key with an
-- element mapping), which records the new event kind instanceMigrated.
alter table bpm.activity_instance add column if not exists scope_id uuid;
comment on column bpm.activity_instance.scope_id is E'The activity instance this one runs in: an embedded or event subprocess, a multi-instance body (element_type multiInstanceBody); null at process level.';
create index if not exists activity_instance_scope_idx on bpm.activity_instance (tenant_id, scope_id) where scope_id is not null;

alter table bpm_private.token add column if not exists data jsonb;
comment on column bpm_private.token.data is E'Scope tokens: their locals ({vars}, kind scope), loop state (kind body) or called instance ({child}, kind call).';
alter table bpm_private.token drop constraint if exists kind_is_valid;
alter table bpm_private.token add constraint kind_is_valid
  check (kind in ('join', 'event', 'incident', 'asyncBefore', 'asyncAfter', 'scope', 'body', 'call'));
comment on column bpm_private.token.kind is E'What it waits for: join (more tokens), event (its event subscriptions), incident (an unhandled error end event), asyncBefore / asyncAfter (its job, continue_async), scope (an embedded or event subprocess instance: everything in it), body (a multi-instance body: its inner instances), call (a call activity: its called instance).';

-- a superset of the earlier check (not valid: no stored row can fail it)
alter domain bpm.event_kind drop constraint if exists event_kind_is_valid;
alter domain bpm.event_kind add constraint event_kind_is_valid check (value in (
    'definitionDeployed',
    'instanceStarted', 'instanceCompleted', 'instanceCancelled', 'instanceSuspended', 'instanceActivated', 'variablesUpdated', 'instanceMigrated',
    'activityStarted', 'activityCompleted', 'activityCancelled',
    'taskCreated', 'taskAssigned', 'taskCompleted', 'taskCancelled',
    'externalTaskCreated', 'externalTaskCompleted', 'externalTaskFailed', 'externalTaskCancelled',
    'incidentCreated', 'incidentResolved',
    'messageCorrelated', 'messageBuffered', 'signalBroadcast', 'timerFired', 'taskOverdue', 'taskFollowUpDue', 'taskEscalated',
    'errorCaught', 'escalationCaught')) not valid;
comment on domain bpm.event_kind is E'Kind of an event: definitionDeployed; instanceStarted | instanceCompleted | instanceCancelled | instanceSuspended | instanceActivated | variablesUpdated | instanceMigrated; activityStarted | activityCompleted | activityCancelled; taskCreated | taskAssigned | taskCompleted | taskCancelled; externalTaskCreated | externalTaskCompleted | externalTaskFailed | externalTaskCancelled; incidentCreated | incidentResolved; messageCorrelated | messageBuffered | signalBroadcast | timerFired; taskOverdue | taskFollowUpDue | taskEscalated; errorCaught | escalationCaught (by a boundary event or event subprocess).';

do $$
begin
  if not exists (select 1 from pg_catalog.pg_attribute a where a.attrelid = 'bpm_private.run_state'::pg_catalog.regclass and a.attname = 'cur_scope') then
    alter type bpm_private.run_state add attribute cur_scope uuid, add attribute q_scope uuid[], add attribute a_scope uuid[],
      add attribute c_scope uuid[], add attribute l_id uuid[], add attribute l_parent uuid[], add attribute l_el text[],
      add attribute l_kind text[], add attribute l_data jsonb[], add attribute l_state text[];
  end if;
end;
$$;
comment on type bpm_private.run_state is E'In-memory state of one engine call: queued tokens (q_*, with their scope), buffered history rows (a_*), stored history rows ended in this call (e_*), buffered wait states (w_*), explicit events (x_*), subscriptions (s_*), post actions (p_data), the current scope and the scopes the run touched (l_*), scopes to check for completion (c_scope).';

drop function if exists bpm_private.throw__enter(bpm_private.run_state, jsonb, uuid, text);

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
-- scopes, terminate) and at the end. Tokens at process level (scope null)
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
  v_node jsonb;
  v_type text;
  v_id uuid;
  v_flow text;
  v_flows text[];
  v_join text;
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
      else
        v_id := pg_catalog.gen_random_uuid();
        if (v_node ->> 'asyncBefore')::boolean then
          a_id := pg_catalog.array_append(a_id, v_id);
          a_el := pg_catalog.array_append(a_el, v_node_id);
          a_type := pg_catalog.array_append(a_type, v_type);
          a_state := pg_catalog.array_append(a_state, 'active'::text);
          a_scope := pg_catalog.array_append(a_scope, v_scope);
          st.a_scope := a_scope;
          st := bpm_private.async__wait(st, v_node, 'asyncBefore', v_via, v_id);
          continue;
        end if;
      end if;
      a_id := pg_catalog.array_append(a_id, v_id);
      a_el := pg_catalog.array_append(a_el, v_node_id);
      a_type := pg_catalog.array_append(a_type, v_type);
      a_state := pg_catalog.array_append(a_state, 'active'::text);
      a_scope := pg_catalog.array_append(a_scope, v_scope);
      v_vars := st.variables;
      v_inner := false;
      if v_scope is not null or v_node ? 'loop' then
        -- scoped tokens: locals, and the inner instances of a multi-instance body
        st := bpm_private.scope__load(st, v_scope);
        v_inner := v_node ? 'loop' and v_scope is not null
          and st.l_kind[pg_catalog.array_position(st.l_id, v_scope)] = 'body' and st.l_el[pg_catalog.array_position(st.l_id, v_scope)] = v_node_id;
        if v_node ? 'loop' and not v_inner then
          v_slow := 'multiInstance';
        else
          if v_inner then
            st := bpm_private.mi__inner_enter(st, v_scope, v_id);
          end if;
          v_vars := bpm_private.scope__variables(st, v_scope, v_id);
          v_slow := null;
        end if;
      else
        v_slow := null;
      end if;
      if v_node ? 'inputs' and v_type not in ('subProcess', 'callActivity') then
        -- input mappings of a task: locals its attributes see
        v_vars := v_vars || bpm_private.io__map(v_node -> 'inputs', v_vars, v_node_id);
      end if;
      -- ===== EXECUTE
      case
        when v_slow is not null then
          null;
        when v_type = 'userTask' then
          st := bpm_private.wait__add(st, v_id, v_node_id, 'userTask', v_via, bpm_private.user_task__create(v_node, v_vars));
          if st.w_data[pg_catalog.cardinality(st.w_data)] ? 'deadline' then
            st.p_data := st.p_data || pg_catalog.jsonb_build_object('kind', 'deadline', 'task', v_id, 'data', st.w_data[pg_catalog.cardinality(st.w_data)]);
          end if;
          if pg_catalog.jsonb_array_length(coalesce(v_node -> 'boundary', '[]')) > 0 and bpm_private.node__has_subscriptions(graph, v_node) and not v_inner then
            st := bpm_private.boundary__arm(st, graph, v_node, v_id);
          end if;
          continue;
        when v_type in ('serviceTask', 'businessRuleTask') or coalesce(v_node ->> 'topic', '') <> '' then
          st := bpm_private.wait__add(st, v_id, v_node_id, 'externalTask', v_via, bpm_private.external_task__create(v_node));
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
        when v_node -> 'event' ->> 'kind' = 'link' then
          -- a link throw jumps to its catch event; a link catch passes
          a_state[pg_catalog.cardinality(a_state)] := 'completed';
          if v_type = 'intermediateThrowEvent' then
            q_node := pg_catalog.array_append(q_node, v_node -> 'event' ->> 'target');
            q_flow := pg_catalog.array_append(q_flow, null::text);
            q_scope := pg_catalog.array_append(q_scope, v_scope);
            continue;
          end if;
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
      if v_inner then
        -- an inner instance of a multi-instance task completed
        st.q_node := q_node; st.q_flow := q_flow; st.q_scope := q_scope; st.q_pos := q_pos;
        st.a_id := a_id; st.a_el := a_el; st.a_type := a_type; st.a_state := a_state; st.a_scope := a_scope;
        st := bpm_private.mi__inner_done(st, graph, v_node, v_scope, v_id);
        q_node := st.q_node; q_flow := st.q_flow; q_scope := st.q_scope; q_pos := st.q_pos;
        a_id := st.a_id; a_el := st.a_el; a_type := st.a_type; a_state := st.a_state; a_scope := st.a_scope;
        continue;
      end if;
      if (v_node ->> 'asyncAfter')::boolean then
        st.a_scope := a_scope;
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
    exit when st.terminated;
    v_queued := pg_catalog.cardinality(st.q_node);
    -- ===== SCOPES nothing runs in any more complete (their tokens leave them)
    while pg_catalog.cardinality(st.c_scope) > 0 and pg_catalog.cardinality(st.q_node) = v_queued loop
      -- (a completing scope may end the last token of the scope around it)
      st := bpm_private.scope__complete_ended(st, graph);
    end loop;
    -- ===== INCLUSIVE JOINS
    if pg_catalog.cardinality(st.q_node) = v_queued and pg_catalog.cardinality(st.inclusive_joins) > 0 then
      foreach v_join in array st.inclusive_joins loop
        st := bpm_private.inclusive_join__try_fire(st, graph, v_join);
        exit when pg_catalog.cardinality(st.q_node) > v_queued or st.terminated;
      end loop;
    end if;
    exit when pg_catalog.cardinality(st.q_node) = v_queued or st.terminated;
    q_node := st.q_node; q_flow := st.q_flow; q_scope := st.q_scope; q_pos := st.q_pos;
    a_id := st.a_id; a_el := st.a_el; a_type := st.a_type; a_state := st.a_state; a_scope := st.a_scope;
  end loop;
  return st;
end;
$$;
comment on function bpm_private.run__drain(bpm_private.run_state, jsonb) is E'The token lifecycle: advances every queued token to its next wait state or end, completing scopes that ended (BP306 guards endless loops).';

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
    else
      return bpm_private.scope__terminate(st, id);
  end case;
end;
$$;
comment on function bpm_private.node__execute(bpm_private.run_state, jsonb, jsonb, uuid, text, text) is E'Runs the behaviour of an element that works on the whole run state (joins, catch and throw events, scopes, terminate).';

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
--! Included engine/node.sql
-- The generic token lifecycle lives in run__drain (engine/run.sql): enter
-- (history row, join policy), execute (the element's behaviour, dispatched
-- explicitly by type), leave (flow policy). This file holds the leave side.

create or replace function bpm_private.node__leave(st bpm_private.run_state, graph jsonb, node jsonb)
returns bpm_private.run_state
language plpgsql
volatile
set search_path = ''
as $$
begin
  if (node ->> 'asyncAfter')::boolean then
    -- camunda:asyncAfter: a job takes the outgoing flows (continue_async)
    return bpm_private.async__wait(st, node, 'asyncAfter', null, pg_catalog.gen_random_uuid());
  end if;
  return bpm_private.node__leave_now(st, graph, node);
end;
$$;
comment on function bpm_private.node__leave(bpm_private.run_state, jsonb, jsonb) is E'A token leaves a node over the flows its flow policy selects (asyncAfter: in a job).';

create or replace function bpm_private.node__leave_now(st bpm_private.run_state, graph jsonb, node jsonb)
returns bpm_private.run_state
language plpgsql
volatile
set search_path = ''
as $$
declare
  v_flows text[] := bpm_private.flows__select(graph, node, st.variables);
  v_flow text;
begin
  if pg_catalog.cardinality(v_flows) = 0 and st.cur_scope is not null then
    -- the token ends: its scope may be complete (run__drain checks)
    st.c_scope := st.c_scope || st.cur_scope;
  end if;
  foreach v_flow in array v_flows loop
    st := bpm_private.run__push(st, graph -> 'flows' -> v_flow ->> 'target', v_flow);
  end loop;
  return st;
end;
$$;
comment on function bpm_private.node__leave_now(bpm_private.run_state, jsonb, jsonb) is E'A token leaves a node over the flows its flow policy selects, now.';

-- Flow policies. Exclusive gateway: the first flow in document order whose
-- condition holds, else the default. Parallel gateway: every flow. Others
-- (inclusive gateway, activities, events): every unconditional or holding
-- flow, else the default. No flow out: the token ends here. Flows out but
-- none selected: BP301.
create or replace function bpm_private.flows__select(graph jsonb, node jsonb, variables jsonb)
returns text[]
language plpgsql
stable
set search_path = ''
as $$
declare
  v_type text := node ->> 'type';
  v_default text := node ->> 'default';
  v_out jsonb := node -> 'out';
  v_flow text;
  v_cond jsonb;
  v_taken text[] := '{}';
begin
  -- jsonb arrays are walked by index: plain expressions, no query per call
  for v_i in 0 .. pg_catalog.jsonb_array_length(v_out) - 1 loop
    v_flow := v_out ->> v_i;
    if v_type = 'parallelGateway' then
      v_taken := v_taken || v_flow;
      continue;
    end if;
    continue when v_flow = v_default;
    v_cond := graph -> 'flows' -> v_flow -> 'condition';
    if v_cond is null or v_cond = 'null'::jsonb or bpm_private.expression__test(v_cond, variables, v_flow) then
      if v_type = 'exclusiveGateway' then
        return array[v_flow];
      end if;
      v_taken := v_taken || v_flow;
    end if;
  end loop;
  if pg_catalog.cardinality(v_taken) = 0 and pg_catalog.jsonb_array_length(v_out) > 0 then
    if v_default is null then
      raise exception 'no outgoing sequence flow of % % can be taken: no condition holds and there is no default flow', v_type, node ->> 'id'
        using errcode = 'BP301';
    end if;
    v_taken := array[v_default];
  end if;
  return v_taken;
end;
$$;
comment on function bpm_private.flows__select(jsonb, jsonb, jsonb) is E'The outgoing flows a token takes from a node (BP301 when none can be taken).';
--! EndIncluded engine/node.sql
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
--! EndIncluded engine/graph.sql
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
               where u.tenant_id = st.tenant_id and u.instance_id = st.instance_id and u.state = 'open' and u.element_id = any(v_upstream))
    or exists (select 1 from bpm.external_task e
               where e.tenant_id = st.tenant_id and e.instance_id = st.instance_id and e.state = 'open' and e.element_id = any(v_upstream))
  ) then
    return st;
  end if;
  st := bpm_private.join__consume(st, node_id, v_flows);
  return bpm_private.node__leave(st, graph, v_node);
end;
$$;
comment on function bpm_private.inclusive_join__try_fire(bpm_private.run_state, jsonb, text) is E'Fires an inclusive join with waiting tokens once no live token can still reach it.';
--! EndIncluded engine/join.sql
--! Included engine/async.sql
-- Asynchronous continuations (camunda:asyncBefore / asyncAfter): the token
-- waits (token kind asyncBefore: before executing the node, its activity row
-- already started; asyncAfter: after the node completed, before leaving it)
-- and a graphile-worker job (bpm_continue, job_key bpm-async:<token id>)
-- continues it in its own transaction. A continuation that keeps failing
-- becomes an incident failedJob on its last attempt.

create or replace function bpm_private.async__enqueue(tenant_id text, token_id uuid, node jsonb)
returns void
language plpgsql
volatile
set search_path = ''
as $$
begin
  perform graphile_worker.add_job('bpm_continue',
    pg_catalog.json_build_object('tenant_id', tenant_id, 'token_id', token_id),
    job_key => 'bpm-async:' || token_id::text,
    max_attempts => coalesce((node -> 'jobRetry' ->> 'retries')::int, 3) + 1);
end;
$$;
comment on function bpm_private.async__enqueue(text, uuid, jsonb) is E'Schedules the job that continues an asynchronous token (retries from camunda:failedJobRetryTimeCycle, default 3).';

create or replace function bpm_private.async__wait(st bpm_private.run_state, node jsonb, kind text, via_flow text, token_id uuid)
returns bpm_private.run_state
language plpgsql
volatile
set search_path = ''
as $$
begin
  st := bpm_private.wait__add(st, token_id, node ->> 'id', kind, via_flow, null);
  perform bpm_private.async__enqueue(st.tenant_id, token_id, node);
  return st;
end;
$$;
comment on function bpm_private.async__wait(bpm_private.run_state, jsonb, text, text, uuid) is E'Makes a token wait for its asynchronous continuation.';

create or replace function bpm.continue_async(token_id uuid, last_attempt boolean default true)
returns bpm.process_instance
language plpgsql
volatile
security definer
set search_path = ''
set plan_cache_mode = force_generic_plan
as $$
declare
  v_tenant text := bpm_private.require_context(array['bpm_admin', 'bpm_engine'], 'continue an asynchronous token');
  v_instance_id uuid;
  v_instance bpm.process_instance;
  v_token bpm_private.token;
  v_locked record;
  v_graph jsonb;
  st bpm_private.run_state;
begin
  select t.instance_id into v_instance_id from bpm_private.token t
  where t.tenant_id = v_tenant and t.id = token_id and t.kind in ('asyncBefore', 'asyncAfter');
  if not found then
    return null;
  end if;
  v_instance := bpm_private.instance__lock(v_tenant, v_instance_id);
  select * into v_token from bpm_private.token t where t.tenant_id = v_tenant and t.id = token_id;
  -- gone (continued already, cancelled) or waiting for activation: nothing to do
  if not found or v_instance.state <> 'active'
     or exists (select 1 from bpm.incident i where i.tenant_id = v_tenant and i.instance_id = v_instance_id
                and i.element_id = v_token.element_id and i.incident_type = 'failedJob' and i.resolved_at is null) then
    return null;
  end if;
  begin
    select d.graph, d.inclusive_joins into v_locked from bpm.process_definition d
    where d.tenant_id = v_tenant and d.id = v_instance.definition_id;
    v_graph := bpm_private.graph__in_memory(v_locked.graph);
    delete from bpm_private.token t where t.tenant_id = v_tenant and t.id = token_id;
    st := bpm_private.run__begin(v_tenant, v_instance_id, v_instance.variables, false, v_locked.inclusive_joins);
    st.business_key := v_instance.business_key;
    st := bpm_private.run__resume(st, v_graph -> 'nodes' -> v_token.element_id, v_token.id);
    if v_token.kind = 'asyncBefore' then
      st.resume_node := v_token.element_id;
      st.resume_id := v_token.id;
      st := bpm_private.run__push(st, v_token.element_id, v_token.via_flow);
    else
      st := bpm_private.node__leave_now(st, v_graph, v_graph -> 'nodes' -> v_token.element_id);
    end if;
    st := bpm_private.run__drain(st, v_graph);
    return bpm_private.run__finish(st, v_instance);
  exception when others then
    if not last_attempt or bpm_private.error__is_transient(sqlstate) then
      raise;
    end if;
    perform bpm_private.incident__raise(v_tenant, v_instance_id, v_token.element_id, 'failedJob',
      pg_catalog.format('asynchronous continuation %s of element %s failed: %s (SQLSTATE %s)', v_token.kind, v_token.element_id, sqlerrm, sqlstate));
    return v_instance;
  end;
end;
$$;
comment on function bpm.continue_async(uuid, boolean) is E'Runs the asynchronous continuation of a token (called by the worker''s bpm_continue job; idempotent: a token already continued or cancelled, or of a suspended instance, is left alone and null returned). A failure is raised so the job is retried, except on the last attempt, which records an incident failedJob (retry_incident schedules it again). Roles: bpm_admin, bpm_engine.';

create or replace function bpm_private.instance__node(tenant_id text, instance_id uuid, element_id text)
returns jsonb
language plpgsql
stable
set search_path = ''
as $$
begin
  return (select d.graph -> 'nodes' -> instance__node.element_id
          from bpm.process_instance i join bpm.process_definition d on d.tenant_id = i.tenant_id and d.id = i.definition_id
          where i.tenant_id = instance__node.tenant_id and i.id = instance__node.instance_id);
end;
$$;
comment on function bpm_private.instance__node(text, uuid, text) is E'An element of an instance''s process graph.';

-- Errors a job should be retried for rather than recorded as an incident:
-- serialization failures and deadlocks (40), resources (53), operator
-- intervention such as a cancelled statement (57), system errors (58).
create or replace function bpm_private.error__is_transient(sqlstate text)
returns boolean
language plpgsql
immutable
set search_path = ''
as $$
begin
  return pg_catalog.left(sqlstate, 2) in ('40', '53', '57', '58');
end;
$$;
comment on function bpm_private.error__is_transient(text) is E'Whether an SQLSTATE is transient (the job is retried) rather than a failure of the model (an incident).';
--! EndIncluded engine/async.sql
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
-- (only looked up for elements inside a subprocess or multi-instance body).
create or replace function bpm_private.run__resume(st bpm_private.run_state, node jsonb, token_id uuid)
returns bpm_private.run_state
language plpgsql
volatile
set search_path = ''
as $$
begin
  if node ? 'scope' or node ? 'loop' then
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

-- A terminate end event: at process level the instance ends; inside a
-- subprocess every other token of that subprocess instance is cancelled and
-- the subprocess completes.
create or replace function bpm_private.scope__terminate(st bpm_private.run_state, id uuid)
returns bpm_private.run_state
language plpgsql
volatile
set search_path = ''
as $$
declare
  v_scope uuid := st.cur_scope;
  v_siblings uuid[];
begin
  if v_scope is null then
    return bpm_private.instance__terminate(st);
  end if;
  v_siblings := array(select a from unnest(st.a_id, st.a_scope, st.a_state) as u(a, s, state) where s = v_scope and state = 'active');
  if not st.is_new then
    v_siblings := v_siblings || array(select a.id from bpm.activity_instance a
      where a.tenant_id = st.tenant_id and a.scope_id = v_scope and a.state = 'active' and not (a.id = any(st.e_id)));
  end if;
  st := bpm_private.scope__cancel(st, v_siblings);
  st.c_scope := st.c_scope || v_scope;
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
  return v_spec || pg_catalog.jsonb_build_object('id', pg_catalog.gen_random_uuid(), 'element', v_el,
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
  v_variables jsonb;
  v_message_id text;
begin
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
  st.a_id := st.a_id || pg_catalog.gen_random_uuid();
  st.a_el := st.a_el || (node ->> 'id');
  st.a_type := st.a_type || (node ->> 'type');
  st.a_state := st.a_state || 'completed'::text;
  st.a_scope := st.a_scope || st.cur_scope;
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
    v_res := bpm_private.error__catch(st, graph, v_kind, v_event ->> 'code');
    st := v_res.st;
    v_caught := v_res.caught;
    if not v_caught and not st.is_new then
      select i.parent_instance_id into v_parent from bpm.process_instance i where i.tenant_id = st.tenant_id and i.id = st.instance_id;
    end if;
    if not v_caught and v_parent is not null then
      -- the calling instance's call activity may catch it (after this run is written)
      st.p_data := st.p_data || pg_catalog.jsonb_build_object('kind', 'throwToParent', 'event', v_kind, 'element', v_el, 'code', v_event ->> 'code');
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
    v_others := array(select u.a from unnest(st.a_id, st.a_scope, st.a_state) as u(a, s, state)
      where u.s is not distinct from event_subprocess__start.scope_id and u.state = 'active');
    if not st.is_new then
      v_others := v_others || array(select a.id from bpm.activity_instance a
        where a.tenant_id = st.tenant_id and a.instance_id = st.instance_id and a.scope_id is not distinct from event_subprocess__start.scope_id
          and a.state = 'active' and not (a.id = any(st.e_id)) and not (a.id = any(st.a_id)));
    end if;
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
  return bpm_private.run__push(st, node ->> 'start', null);
end;
$$;
comment on function bpm_private.subprocess__enter(bpm_private.run_state, jsonb, jsonb, uuid) is E'A token enters an embedded subprocess: a new scope instance with its locals, boundary events and event subprocesses; its start event runs.';

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
comment on function bpm_private.subprocess__complete(bpm_private.run_state, jsonb, uuid) is E'A subprocess instance in which nothing runs any more completes: outputs are mapped and its token leaves it.';
--! EndIncluded elements/subprocess.sql
--! Included elements/multi_instance.sql
-- Multi-instance activities. Entering the activity creates its body (a scope
-- instance: activity row type multiInstanceBody, token kind body) whose data
-- is the loop state: n (instances), next (index of the next inner instance),
-- active, completed, items (the input collection), el (element variable),
-- inner ({inner activity instance id: loopCounter}), out ({loopCounter:
-- output element}). Inner instances enter the activity itself, inside the
-- body; when one completes the body counts it, evaluates the completion
-- condition, starts the next one (sequential) or completes: the remaining
-- inner instances are cancelled, the output collection is written and the
-- token leaves the activity.

create or replace function bpm_private.mi__enter(st bpm_private.run_state, graph jsonb, node jsonb, id uuid)
returns bpm_private.run_state
language plpgsql
volatile
set search_path = ''
as $$
declare
  v_loop jsonb := node -> 'loop';
  v_el text := node ->> 'id';
  v_items jsonb;
  v_n int;
  v_count int;
begin
  if v_loop ? 'collection' then
    v_items := bpm_private.value__eval(v_loop -> 'collection', st.variables, v_el);
    if pg_catalog.jsonb_typeof(v_items) is distinct from 'array' then
      raise exception 'the multi-instance collection of element % is not a list (it is %)', v_el, coalesce(pg_catalog.jsonb_typeof(v_items), 'missing')
        using errcode = 'BP310';
    end if;
    v_n := pg_catalog.jsonb_array_length(v_items);
  else
    v_items := bpm_private.value__eval(v_loop -> 'cardinality', st.variables, v_el);
    if pg_catalog.jsonb_typeof(v_items) = 'string' and v_items #>> '{}' ~ '^\s*\d+\s*$' then
      v_items := pg_catalog.to_jsonb(pg_catalog.btrim(v_items #>> '{}')::int);
    end if;
    if pg_catalog.jsonb_typeof(v_items) is distinct from 'number' or (v_items #>> '{}')::numeric < 0
       or (v_items #>> '{}')::numeric <> pg_catalog.trunc((v_items #>> '{}')::numeric) then
      raise exception 'the multi-instance cardinality of element % is not a whole number ≥ 0 (it is %)', v_el, coalesce(v_items::text, 'missing')
        using errcode = 'BP310';
    end if;
    v_n := (v_items #>> '{}')::int;
    v_items := null;
  end if;
  if v_n > 10000 then
    raise exception 'the multi-instance activity % would start % instances; at most 10000 are allowed', v_el, v_n using errcode = 'BP310';
  end if;
  st.a_type[pg_catalog.array_position(st.a_id, id)] := 'multiInstanceBody';
  if v_n = 0 then
    -- nothing to do: the activity is skipped (an empty output collection)
    st.a_state[pg_catalog.array_position(st.a_id, id)] := 'completed';
    if v_loop ->> 'outputCollection' is not null then
      st := bpm_private.scope__set_variables(st, st.cur_scope, pg_catalog.jsonb_build_object(v_loop ->> 'outputCollection', '[]'::jsonb));
    end if;
    return bpm_private.node__leave(st, graph, node);
  end if;
  st := bpm_private.scope__add(st, id, v_el, 'body', pg_catalog.jsonb_build_object('n', v_n, 'next', 0, 'active', 0, 'completed', 0,
    'items', v_items, 'el', v_loop -> 'elementVariable', 'inner', '{}'::jsonb, 'out', '{}'::jsonb));
  if bpm_private.node__has_subscriptions(graph, node) then
    st := bpm_private.boundary__arm(st, graph, node, id);
  end if;
  st.cur_scope := id;
  v_count := case when (v_loop ->> 'sequential')::boolean then 1 else v_n end;
  for v_i in 1 .. v_count loop
    st := bpm_private.run__push(st, v_el, null);
  end loop;
  return st;
end;
$$;
comment on function bpm_private.mi__enter(bpm_private.run_state, jsonb, jsonb, uuid) is E'A token enters a multi-instance activity: its body starts every inner instance (parallel) or the first (sequential); an empty collection skips the activity (BP310 for a collection that is not a list).';

-- An inner instance starts: it gets the next loopCounter.
create or replace function bpm_private.mi__inner_enter(st bpm_private.run_state, body_id uuid, id uuid)
returns bpm_private.run_state
language plpgsql
immutable
set search_path = ''
as $$
declare
  v_data jsonb := st.l_data[pg_catalog.array_position(st.l_id, body_id)];
  v_k int := (v_data ->> 'next')::int;
begin
  v_data := v_data || pg_catalog.jsonb_build_object('next', v_k + 1, 'active', (v_data ->> 'active')::int + 1,
    'inner', (v_data -> 'inner') || pg_catalog.jsonb_build_object(id::text, v_k));
  return bpm_private.scope__set(st, body_id, v_data);
end;
$$;
comment on function bpm_private.mi__inner_enter(bpm_private.run_state, uuid, uuid) is E'Numbers a starting inner instance of a multi-instance body (loopCounter).';

-- An inner instance completed (task left, subprocess or called instance ended).
create or replace function bpm_private.mi__inner_done(st bpm_private.run_state, graph jsonb, node jsonb, body_id uuid, inner_id uuid)
returns bpm_private.run_state
language plpgsql
volatile
set search_path = ''
as $$
declare
  v_loop jsonb := node -> 'loop';
  v_el text := node ->> 'id';
  v_pos int := pg_catalog.array_position(st.l_id, body_id);
  v_data jsonb := st.l_data[v_pos];
  v_k text := v_data -> 'inner' ->> inner_id::text;
  v_vars jsonb;
  v_done boolean;
begin
  v_data := v_data || pg_catalog.jsonb_build_object('active', (v_data ->> 'active')::int - 1,
    'completed', (v_data ->> 'completed')::int + 1);
  st := bpm_private.scope__set(st, body_id, v_data);
  -- the inner instance's variables, counters updated
  v_vars := bpm_private.scope__variables(st, body_id, inner_id);
  if v_loop -> 'outputElement' is not null then
    v_data := pg_catalog.jsonb_set(v_data, array['out', v_k],
      coalesce(bpm_private.value__eval(v_loop -> 'outputElement', v_vars, v_el), 'null'::jsonb));
  end if;
  v_data := pg_catalog.jsonb_set(v_data, '{inner}', (v_data -> 'inner') - inner_id::text);
  st := bpm_private.scope__set(st, body_id, v_data);
  v_done := (v_data ->> 'completed')::int >= (v_data ->> 'n')::int
    or (v_loop -> 'completionCondition' is not null and bpm_private.expression__test(v_loop -> 'completionCondition', v_vars, v_el));
  if not v_done then
    if (v_loop ->> 'sequential')::boolean then
      st.cur_scope := body_id;
      st := bpm_private.run__push(st, v_el, null);
    end if;
    return st;
  end if;
  return bpm_private.mi__complete(st, graph, node, body_id);
end;
$$;
comment on function bpm_private.mi__inner_done(bpm_private.run_state, jsonb, jsonb, uuid, uuid) is E'Counts a completed inner instance, records its output element, starts the next (sequential) or completes the body.';

create or replace function bpm_private.mi__complete(st bpm_private.run_state, graph jsonb, node jsonb, body_id uuid)
returns bpm_private.run_state
language plpgsql
volatile
set search_path = ''
as $$
declare
  v_loop jsonb := node -> 'loop';
  v_pos int := pg_catalog.array_position(st.l_id, body_id);
  v_data jsonb := st.l_data[v_pos];
  v_parent uuid := st.l_parent[v_pos];
  v_inner uuid[];
begin
  -- inner instances still running are cancelled (completion condition)
  v_inner := array(select k::uuid from pg_catalog.jsonb_object_keys(v_data -> 'inner') k);
  if pg_catalog.cardinality(v_inner) > 0 then
    st := bpm_private.scope__cancel(st, v_inner);
  end if;
  -- queued inner instances that have not started yet
  for v_i in st.q_pos .. pg_catalog.cardinality(st.q_node) loop
    if st.q_scope[v_i] = body_id then
      st.q_node[v_i] := null;
    end if;
  end loop;
  st := bpm_private.scope__remove(st, body_id);
  st := bpm_private.subscriptions__drop(st, array[body_id]);
  st := bpm_private.activity__end(st, array[body_id], 'completed');
  st.cur_scope := v_parent;
  if v_loop ->> 'outputCollection' is not null then
    -- completed inner instances' outputs, in input order
    st := bpm_private.scope__set_variables(st, v_parent, pg_catalog.jsonb_build_object(v_loop ->> 'outputCollection',
      coalesce((select pg_catalog.jsonb_agg(o.value order by o.key::int) from pg_catalog.jsonb_each(v_data -> 'out') o), '[]'::jsonb)));
  end if;
  return bpm_private.node__leave(st, graph, node);
end;
$$;
comment on function bpm_private.mi__complete(bpm_private.run_state, jsonb, jsonb, uuid) is E'Completes a multi-instance body: cancels inner instances still running, writes the output collection, and the token leaves the activity.';
--! EndIncluded elements/multi_instance.sql
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
  if (v_found.token).id is null or (v_found.caller).state <> 'active' then
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
    update bpm_private.token t set data = t.data || '{"failed": true}' where t.tenant_id = call__child_threw.tenant_id and t.id = (v_found.token).id;
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
      where u.tenant_id = migration__plan.tenant_id and u.instance_id = any(ids) and u.state = 'open'
      union select e.instance_id, e.element_id from bpm.external_task e
      where e.tenant_id = migration__plan.tenant_id and e.instance_id = any(ids) and e.state = 'open'
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
    from m where t.tenant_id = migration__apply.tenant_id and t.instance_id = any(ids) and t.element_id = m.src and t.state = 'open'
    returning 1
  ), external_tasks as (
    update bpm.external_task e set element_id = m.tgt, topic = coalesce(m.topic, e.topic)
    from m where e.tenant_id = migration__apply.tenant_id and e.instance_id = any(ids) and e.element_id = m.src and e.state = 'open'
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
    if exists (select 1 from pg_catalog.jsonb_object_keys(v_instr) k where k not in ('startBefore', 'startAfter', 'cancel', 'variables'))
       or (v_ops[1] = 'cancel' and v_instr ? 'variables') then
      raise exception 'invalid modification: instruction % has unknown members (allowed: startBefore or startAfter with variables, or cancel alone)', v_i + 1
        using errcode = 'BP413';
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
-- them), event subprocesses and anything inside a subprocess (scopes are
-- not supported by modification yet), joins for startBefore (a token at a
-- join counts per incoming flow).
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
  if v_node ? 'scope' then
    raise exception 'cannot %: starting inside subprocess % (element %) is not supported yet', op, v_node ->> 'scope', element_id using errcode = 'BP414';
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
      st := bpm_private.activity__cancel(st, v_id);
      continue;
    end if;
    st.variables := st.variables || coalesce(v_instr -> 'variables', '{}');
    if v_instr ? 'startBefore' then
      v_node := bpm_private.modification__node(v_graph, v_instr ->> 'startBefore', 'start before ' || (v_instr ->> 'startBefore'));
      st := bpm_private.run__push(st, v_node ->> 'id', null);
    else
      v_node := bpm_private.modification__node(v_graph, v_instr ->> 'startAfter', 'start after ' || (v_instr ->> 'startAfter'));
      st := bpm_private.node__leave(st, v_graph, v_node);
    end if;
    st := bpm_private.run__drain(st, v_graph);
  end loop;
  -- ===== FINISH: inclusive joins a cancellation freed fire; nothing waiting: the instance completes
  st := bpm_private.run__drain(st, v_graph);
  return bpm_private.run__finish(st, v_instance);
end;
$$;
comment on function bpm.modify_process_instance(uuid, jsonb) is E'Modifies an active instance with a JSON array of instructions, applied in order in one transaction: {"startBefore": "<elementId>", "variables": {…}} starts a token entering that element (as if it arrived over a flow), {"startAfter": "<elementId>"} a token leaving it over its outgoing flows (variables merge into the instance first), {"cancel": "<activityInstanceId>"} cancels that active activity instance (its user or external task or its token, with its event subscriptions and timers). When nothing waits any more the instance completes. Errors: BP102 not found, BP201/BP202 ended or suspended, BP413 malformed instructions, BP112 unknown element, BP414 an element no token can start at (boundary event, event subprocess, joining gateway for startBefore, inside a subprocess: not supported yet), BP111 activity instance not of this instance, BP221 activity instance not active. Roles: bpm_admin.';
--! EndIncluded instance/modify.sql
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
