--! Previous: sha1:7d3066e55ce6d40cde1da7472b09254d399be7de
--! Hash: sha1:560400c02c9791d905f0a87eae2542e2da219996
--! Message: Time-ordered ids, lookups that avoid partial indexes, event log trimmed by ids

-- Lookups of instances by id with a state condition no longer match the
-- partial indexes of active instances and open incidents ("(… ) is true"): a generic plan
-- walked every active instance of the tenant per lookup (timer batches: 1 ms
-- per timer with 10,000 active instances).
-- Time-ordered ids (engine/ids.sql): new instances, activity instances,
-- tasks, tokens and subscriptions get UUIDv7 ids, so inserts append to the
-- right edge of the id and instance indexes (far fewer full-page images in
-- the WAL after each checkpoint, and hot index pages stay cached).
--! Included engine/ids.sql
-- Ids. Everything the engine creates gets a time-ordered UUID (version 7,
-- RFC 9562: 48 bits of Unix milliseconds, then random bits), so new rows
-- land at the right edge of every index on an id or an instance id instead of
-- on a random leaf page: after each checkpoint a random key dirties (and
-- writes a full-page image of) a new leaf page per insert, a time-ordered
-- one the same few pages (bench/README: WAL per transition).
create or replace function bpm_private.uuid_v7()
returns uuid
language plpgsql
volatile
set search_path = ''
as $$
declare
  -- a random (version 4) UUID whose first 6 bytes become the time and whose
  -- version nibble becomes 7; its variant bits are already RFC 9562's
  v_bytes bytea := pg_catalog.overlay(pg_catalog.uuid_send(pg_catalog.gen_random_uuid()),
    pg_catalog.substr(pg_catalog.int8send((pg_catalog.date_part('epoch', pg_catalog.clock_timestamp()) * 1000)::bigint), 3), 1, 6);
begin
  return pg_catalog.encode(pg_catalog.set_byte(v_bytes, 6, (pg_catalog.get_byte(v_bytes, 6) & 15) | 112), 'hex')::uuid;
end;
$$;
comment on function bpm_private.uuid_v7() is E'A new time-ordered UUID (version 7): the ids of instances, activity instances, tasks, tokens and subscriptions.';
--! EndIncluded engine/ids.sql
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
    where i.tenant_id = instance__cancel_tokens.tenant_id and i.instance_id = instance__cancel_tokens.instance_id and (i.resolved_at is null) is true
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
-- instance row first (instance__lock: BP102 when it is not visible in the
-- tenant). Lock order: every transition locks the root of its call tree first, then
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
                and i.element_id = v_token.element_id and i.incident_type = 'failedJob' and (i.resolved_at is null) is true) then
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
    return bpm_private.async__wait(st, node, 'asyncAfter', null, bpm_private.uuid_v7());
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
  v_flows text[];
  v_flow text;
begin
  if st.cur_scope is null then
    v_flows := bpm_private.flows__select(graph, node, st.variables);
  else
    -- a token in a scope: conditions see the scope's locals too
    st := bpm_private.scope__load(st, st.cur_scope);
    v_flows := bpm_private.flows__select(graph, node, bpm_private.scope__variables(st, st.cur_scope, null));
  end if;
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
    if not v_caught and st.is_new then
      v_parent := st.parent_id;
    elsif not v_caught then
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
    -- ("is true": by primary key; a bare state = 'active' matches the partial
    -- index of active instances, which a generic plan may walk whole)
    perform 1 from bpm.process_instance i where i.tenant_id = v_tenant and i.id = v_due.instance_id and (i.state = 'active') is true
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
  v_events bigint[];
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
    -- the oldest max_events ids (a bounded index scan, whatever their age),
    -- then those of them old enough (by id: a generic plan of a join would
    -- scan the whole log)
    v_events := array(select e.id from bpm.event e where e.tenant_id = v_tenant order by e.id limit max_events);
    delete from bpm.event e where e.tenant_id = v_tenant and e.id = any(v_events) and e.created_at < pg_catalog.now() - event_retention;
    get diagnostics v_result.events = row_count;
  end if;
  return v_result;
end;
$$;
comment on function bpm.cleanup_history(int, interval, interval, int) is E'Removes the history of ended instances whose time to live has passed (the definition''s historyTimeToLive, else default_ttl; none: kept): up to max_instances call trees (an instance with its called instances), with their activity instances, tasks and incidents; and, with event_retention, up to max_events events older than that. Returns what it removed; call it again while it removes a full batch. The worker runs it per tenant every PGBPM_CLEANUP_INTERVAL. Roles: bpm_admin, bpm_engine.';
--! EndIncluded api/history.sql
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
    v_id := bpm_private.uuid_v7();
    st := bpm_private.activity__add(st, v_id, v_sub, 'subProcess', 'active');
    return bpm_private.subprocess__open(st, graph, v_sub_node, v_id);
  end if;
  return bpm_private.scope__load(st, st.cur_scope);
end;
$$;
comment on function bpm_private.modification__enter_scope(bpm_private.run_state, jsonb, jsonb, uuid) is E'Sets the scope instance a startBefore/startAfter instruction runs in, opening missing subprocess instances (BP111, BP414).';

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
      -- its task or token, or (a subprocess, multi-instance body or call activity) everything in it
      st := bpm_private.scope__cancel(st, array[v_id]);
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
      ), incidents as (
        -- incidents that waited on what is cancelled need nobody any more
        update bpm.incident i set resolved_at = pg_catalog.now()
        where i.tenant_id = st.tenant_id and i.instance_id = st.instance_id and (i.resolved_at is null) is true
          and (i.external_task_id = any(v_all)
            or i.id in (select s.incident_id from bpm.event_subscription s
                        where s.tenant_id = st.tenant_id and s.instance_id = st.instance_id and s.token_id = any(v_all))
            or (i.incident_type in ('unhandledBpmnError', 'failedJob')
                and i.element_id in (select t.element_id from tokens t where t.kind in ('incident', 'asyncBefore', 'asyncAfter', 'call'))))
        returning i.id, i.element_id
      )
      select 'taskCancelled' as kind, u.id, u.element_id, null::uuid as child from user_tasks u
      union all select 'externalTaskCancelled', e.id, e.element_id, null from external_tasks e
      union all select 'incidentResolved', i.id, i.element_id, null from incidents i
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
    where c.tenant_id = st.tenant_id and c.id = any(v_children) and (c.state in ('active', 'suspended')) is true
    order by c.id for update
  loop
    perform bpm_private.instance__cancel(v_child, 'its call activity was cancelled');
  end loop;
  return st;
end;
$$;
comment on function bpm_private.scope__cancel(bpm_private.run_state, uuid[]) is E'Cancels activity instances and everything running in them: tasks, tokens, scopes, subscriptions, timers, called instances; incidents that waited on them are resolved.';

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
