--! Previous: sha1:5ecae7e0ff008cf61c7f96b94c6d4740c2fd0c68
--! Hash: sha1:c0bd16e452978efa5494bfafa3d26a2397bd22e6
--! Message: Review mend: one definition of a task's offer identities; offers gated on candidates; failure message on the task

-- Review mend: one definition of the identities a task is offered to
-- (task_offer__identities, used by the update/delete trigger and by the
-- insert path); whether new tasks get offers is read from their candidates
-- rather than a separate flag; a failure's message reaches the error event
-- definitions on the task, as its details do
--! Included api/task_inbox.sql
-- A user's task inbox: the open tasks assigned to them, and the open
-- unassigned tasks offered to them as a candidate user or through one of
-- their groups, in inbox order (priority desc, created_at, id).
--
-- Offers are kept per identity in bpm_private.task_offer ("u:<user>",
-- "g:<group>"; only for open, unassigned tasks), so that each identity's
-- offers are one index range in inbox order: reading a page costs a few
-- rows per identity however many tasks the tenant has open. (Through
-- bpm.user_task and its row-level security the inbox of a user offered few
-- of many open tasks walks all of them.) The one statement that creates
-- tasks (run__flush_waits) writes their offers; triggers on bpm.user_task
-- keep them, so that every path that assigns, reprioritises, completes,
-- cancels or deletes a task keeps them without knowing of them.

-- The identities a task with these candidates is offered to, each once.
create or replace function bpm_private.task_offer__identities(candidate_users text[], candidate_groups text[])
returns text[]
language plpgsql
immutable
set search_path = ''
as $$
begin
  return array(
    select 'u:' || u from pg_catalog.unnest(candidate_users) u
    union
    select 'g:' || g from pg_catalog.unnest(candidate_groups) g);
end;
$$;
comment on function bpm_private.task_offer__identities(text[], text[]) is E'The identities ("u:<user>", "g:<group>") a task with these candidate users and groups is offered to, each once.';

-- The offers of one task, rewritten from its row when it changes or is
-- deleted (none when it is not open, is assigned, or has no candidates). It
-- runs as the engine function that wrote the task (bpm_owner, which owns
-- task_offer).
create or replace function bpm_private.task_offer__sync()
returns trigger
language plpgsql
volatile
set search_path = ''
as $$
begin
  delete from bpm_private.task_offer o where o.tenant_id = old.tenant_id and o.task_id = old.id;
  if tg_op = 'UPDATE' and new.state = 'open' and new.assignee is null then
    insert into bpm_private.task_offer (tenant_id, identity, rank, created_at, task_id)
    select new.tenant_id, i.identity, -new.priority, new.created_at, new.id
    from pg_catalog.unnest(bpm_private.task_offer__identities(new.candidate_users, new.candidate_groups)) as i(identity);
  end if;
  return null;
end;
$$;
comment on function bpm_private.task_offer__sync() is E'Trigger of bpm.user_task (updates and deletes): rewrites the task''s offers (bpm_private.task_offer) from its state, assignee, priority and candidates.';

-- (new tasks get their offers from the one statement that inserts tasks,
-- run__flush_waits: a trigger's WHEN condition is prepared again by every
-- insert statement, 2% of a start)
drop trigger if exists task_offer_on_insert on bpm.user_task;
drop trigger if exists task_offer_on_update on bpm.user_task;
create trigger task_offer_on_update after update of state, assignee, priority, candidate_users, candidate_groups on bpm.user_task
  -- (the smallest condition that skips tasks without candidates: every
  -- update statement prepares it again, completions included)
  for each row when (old.candidate_users || old.candidate_groups || new.candidate_users || new.candidate_groups <> '{}')
  execute function bpm_private.task_offer__sync();
drop trigger if exists task_offer_on_delete on bpm.user_task;
create trigger task_offer_on_delete after delete on bpm.user_task
  for each row when (old.state = 'open' and old.assignee is null and (pg_catalog.cardinality(old.candidate_users) > 0 or pg_catalog.cardinality(old.candidate_groups) > 0))
  execute function bpm_private.task_offer__sync();

create or replace function bpm.task_inbox(after_task_id uuid default null, max_tasks int default 50)
returns setof bpm.user_task
language plpgsql
stable
security definer
set search_path = ''
as $$
declare
  v_tenant text := bpm_private.require_context(array['bpm_admin', 'bpm_user'], 'read a task inbox');
  v_user text := bpm_private.current_user_id();
  v_identities text[];
  v_after bpm.user_task;
  v_ids uuid[];
begin
  if v_user is null then
    raise exception 'bpm.user_id is not set: a task inbox is a user''s' using errcode = 'BP002';
  end if;
  if max_tasks is null or max_tasks < 1 or max_tasks > 1000 then
    raise exception 'invalid argument: max_tasks must be 1 to 1000, not %', coalesce(max_tasks::text, 'null') using errcode = 'BP401';
  end if;
  if after_task_id is not null then
    select * into v_after from bpm.user_task t where t.tenant_id = v_tenant and t.id = after_task_id;
    if not found then
      raise exception 'user task % not found', after_task_id using errcode = 'BP103';
    end if;
  end if;
  v_identities := array['u:' || v_user] || array(select 'g:' || g from pg_catalog.unnest(bpm_private.current_groups()) g);
  -- the page's ids, then its rows by primary key ("= any": an index scan
  -- whatever the statistics say)
  with page as (
    (select t.id, t.priority, t.created_at from bpm.user_task t
     where t.tenant_id = v_tenant and t.assignee = v_user and t.state = 'open'
       and (v_after.id is null or t.priority < v_after.priority
            or (t.priority = v_after.priority and (t.created_at, t.id) > (v_after.created_at, v_after.id)))
     order by t.priority desc, t.created_at, t.id
     limit max_tasks)
    union
    select o.task_id, -o.rank, o.created_at
    from pg_catalog.unnest(v_identities) i(identity)
    cross join lateral (
      select o.task_id, o.rank, o.created_at from bpm_private.task_offer o
      where o.tenant_id = v_tenant and o.identity = i.identity
        and (v_after.id is null or (o.rank, o.created_at, o.task_id) > (-v_after.priority, v_after.created_at, v_after.id))
      order by o.rank, o.created_at, o.task_id
      limit max_tasks) o
  )
  select array(select p.id from page p order by p.priority desc, p.created_at, p.id limit max_tasks) into v_ids;
  return query
  select t.* from bpm.user_task t
  where t.tenant_id = v_tenant and t.id = any(v_ids)
  order by t.priority desc, t.created_at, t.id;
end;
$$;
comment on function bpm.task_inbox(uuid, int) is E'The acting user''s task inbox: open tasks assigned to them and open unassigned tasks offered to them (as a candidate user or through one of their groups), highest priority first, then oldest; at most max_tasks (1..1000), after the task after_task_id (the last one of the previous page). Its cost does not grow with the number of open tasks the tenant has. Raises BP002 without bpm.user_id, BP103 when after_task_id names no task, BP401 for max_tasks out of range. Roles: bpm_admin, bpm_user.';
--! EndIncluded api/task_inbox.sql
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
  -- (an assignment, not PERFORM: an expression, not a statement with its executor)
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
      if st.process_subscriptions is not false then
        st := bpm_private.subscriptions__drop(st, array[st.instance_id]);
      end if;
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
--! Included elements/tasks.sql
-- User task behaviour: the task's attributes, evaluated from the compiled
-- spec when the token arrives; the token then waits (run__flush writes it).
create or replace function bpm_private.user_task__create(node jsonb, variables jsonb)
returns jsonb
language plpgsql
stable
set search_path = ''
as $$
declare
  v_spec jsonb := coalesce(node -> 'userTask', '{}');
  v_el text := node ->> 'id';
  v_data jsonb;
  v_users text[];
  v_groups text[];
begin
  if (v_spec is null or v_spec = '{}'::jsonb) and node -> 'taskEscalation' is null then
    v_data := pg_catalog.jsonb_build_object('name', node -> 'name', 'form', node -> 'form');
  else
    v_users := bpm_private.value__to_text_array(bpm_private.value__eval(v_spec -> 'candidateUsers', variables, v_el));
    v_groups := bpm_private.value__to_text_array(bpm_private.value__eval(v_spec -> 'candidateGroups', variables, v_el));
    -- candidates as array literals (read back with a cast when the task is
    -- written; "{}" when none)
    v_data := pg_catalog.jsonb_build_object(
      'name', node -> 'name',
      'form', bpm_private.user_task__form(node -> 'form', v_spec, variables, v_el),
      'assignee', bpm_private.value__to_text(bpm_private.value__eval(v_spec -> 'assignee', variables, v_el)),
      'candidate_users', v_users::text,
      'candidate_groups', v_groups::text,
      'priority', bpm_private.user_task__priority(bpm_private.value__eval(v_spec -> 'priority', variables, v_el), v_el),
      'due_at', bpm_private.value__to_timestamp(bpm_private.value__eval(v_spec -> 'dueDate', variables, v_el), v_el, 'dueDate'),
      'follow_up_at', bpm_private.value__to_timestamp(bpm_private.value__eval(v_spec -> 'followUpDate', variables, v_el), v_el, 'followUpDate'));
    v_data := bpm_private.user_task__deadlines(node, variables, v_data);
  end if;
  return v_data;
end;
$$;
comment on function bpm_private.user_task__create(jsonb, jsonb) is E'User task behaviour: assignee, candidates, priority and dates for a new task.';

-- The form of a new task: the node's static form (a form key or reference,
-- generated fields) with what is evaluated now: a form key or external
-- reference given as an expression, and default values of generated fields
-- given as expressions. Null when the task has no form.
create or replace function bpm_private.user_task__form(static jsonb, spec jsonb, variables jsonb, element_id text)
returns jsonb
language plpgsql
stable
set search_path = ''
as $$
declare
  v_form jsonb := static;
  v_target jsonb := spec -> 'form';
  v_field text := case when v_target ? 'key' then 'key' else 'externalReference' end;
  v_text text;
begin
  if v_target is not null then
    v_text := bpm_private.value__to_text(bpm_private.value__eval(v_target -> v_field, variables, element_id));
    if v_text is not null and pg_catalog.btrim(v_text) <> '' then
      v_form := coalesce(v_form, '{}') || pg_catalog.jsonb_build_object(v_field, pg_catalog.btrim(v_text));
    end if;
  end if;
  if spec ? 'formDefaults' then
    v_form := pg_catalog.jsonb_set(v_form, '{fields}', coalesce((
      select pg_catalog.jsonb_agg(case when d.value is null then f else f || pg_catalog.jsonb_build_object('defaultValue', d.value) end order by f.n)
      from pg_catalog.jsonb_array_elements(v_form -> 'fields') with ordinality as f(f, n)
      left join lateral (select bpm_private.form_field__default(spec -> 'formDefaults' -> (f.f ->> 'id'), variables, element_id) as value) d on true), '[]'));
  end if;
  return v_form;
end;
$$;
comment on function bpm_private.user_task__form(jsonb, jsonb, jsonb, text) is E'The form of a new user task: its static form with a form key or external reference given as an expression and the expression defaults of generated fields evaluated; null when it has none.';

-- The default of a generated form field given as an expression. Camunda 7
-- evaluates it when the form is shown; here when the task is created, so a
-- variable that is not set yet leaves the field without a default instead of
-- failing the transition.
create or replace function bpm_private.form_field__default(value jsonb, variables jsonb, element_id text)
returns jsonb
language plpgsql
stable
set search_path = ''
as $$
begin
  if value is null then
    return null;
  end if;
  return nullif(bpm_private.value__eval(value, variables, element_id), 'null');
exception when sqlstate 'BP302' then
  return null;
end;
$$;
comment on function bpm_private.form_field__default(jsonb, jsonb, text) is E'The default value of a generated form field given as an expression, or null when a variable it reads is not set.';

-- A task priority from a value: an integer (text or number), or the
-- fallback when there is none; BP303 for anything else.
create or replace function bpm_private.priority__of(value jsonb, element_id text, fallback int)
returns int
language plpgsql
immutable
set search_path = ''
as $$
declare
  v_text text := bpm_private.value__to_text(value);
begin
  if v_text is null then
    return fallback;
  end if;
  if v_text !~ '^\s*-?\d{1,9}\s*$' then
    raise exception 'priority of element % is not an integer: "%"', element_id, v_text using errcode = 'BP303';
  end if;
  return v_text::int;
end;
$$;
comment on function bpm_private.priority__of(jsonb, text, int) is E'A task priority from a value (the fallback when null; BP303 if not an integer).';

create or replace function bpm_private.user_task__priority(value jsonb, element_id text)
returns int
language plpgsql
immutable
set search_path = ''
as $$
begin
  return bpm_private.priority__of(value, element_id, 50);
end;
$$;
comment on function bpm_private.user_task__priority(jsonb, text) is E'User task priority from a value (default 50; BP303 if not an integer).';

-- The topic of an external task given by an expression: a non-empty string
-- (at most 1,000 characters), else BP303 naming the element.
create or replace function bpm_private.topic__of(value jsonb, element_id text)
returns text
language plpgsql
immutable
set search_path = ''
as $$
begin
  if pg_catalog.jsonb_typeof(value) is distinct from 'string' or pg_catalog.btrim(value #>> '{}') = ''
     or pg_catalog.length(value #>> '{}') > 1000 then
    raise exception 'the topic (job type) of element % is not a non-empty string of at most 1000 characters: %', element_id, coalesce(value::text, 'null')
      using errcode = 'BP303';
  end if;
  return pg_catalog.btrim(value #>> '{}');
end;
$$;
comment on function bpm_private.topic__of(jsonb, text) is E'The topic of an external task from the value of its topic expression (BP303 unless a non-empty string).';

-- Service, send and business-rule tasks with a topic: an external task waits
-- for a worker (fetch_and_lock). Its topic, when an expression, and its
-- priority (camunda:taskPriority, default 0) are evaluated over what the
-- task sees.
create or replace function bpm_private.external_task__create(node jsonb, variables jsonb)
returns jsonb
language plpgsql
stable
set search_path = ''
as $$
begin
  if node ->> 'topic' is null then
    raise exception 'element % has no external task topic', node ->> 'id' using errcode = 'BP305';
  end if;
  return pg_catalog.jsonb_build_object('topic', case when node ? 'topicExpr'
      then bpm_private.topic__of(bpm_private.value__eval(node -> 'topicExpr', variables, node ->> 'id'), node ->> 'id') else node ->> 'topic' end,
    'headers', node -> 'headers',
    'priority', case when node ? 'taskPriority'
      then bpm_private.priority__of(bpm_private.value__eval(node -> 'taskPriority', variables, node ->> 'id'), node ->> 'id', 0) else 0 end);
end;
$$;
comment on function bpm_private.external_task__create(jsonb, jsonb) is E'External task behaviour: the topic, headers and priority of a new external task.';
--! EndIncluded elements/tasks.sql
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
  -- highest priority first, then oldest available (picked and returned in that order); tasks locked
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
    -- (the order of external_task_fetch_priority_idx: the scan stops after max_tasks
    -- fetchable ones, however long the queue)
    order by e.priority desc, e.available_at, e.created_at, e.id
    limit max_tasks
    for update of e skip locked
  ), locked as (
    update bpm.external_task e
    set worker_id = fetch_and_lock.worker_id,
      locked_until = pg_catalog.now() + lock_duration,
      variables = (select i.variables from bpm.process_instance i where i.tenant_id = v_tenant and i.id = p.instance_id)
        || coalesce(e.local_variables, '{}')
    from picked p
    where e.tenant_id = v_tenant and e.id = p.id
    returning e.*
  )
  select l.* from locked l order by l.priority desc, l.available_at, l.created_at, l.id;
end;
$$;
comment on function bpm.fetch_and_lock(text, text, int, interval) is E'Locks up to max_tasks open external tasks of a topic in the caller''s tenant for a worker (highest priority first, then oldest; FOR UPDATE SKIP LOCKED so concurrent workers never get the same task) and returns them with the variables each one sees: the instance variables, overlaid by its local_variables (scope locals, loop variables, input mappings). Skips suspended instances, tasks in back-off and tasks with an open incident. Roles: bpm_admin, bpm_engine.';

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

-- camunda:errorEventDefinition (compiler: a node's errorEvents): when a
-- worker completes or fails an external task, the first entry whose
-- condition holds over what the task sees, the variables the worker sends and
-- `externalTask` (id, activityId, processInstanceId, topicName, workerId,
-- errorMessage, errorDetails, retries, priority: of `task`, which a failure
-- passes with its message and details) names the error thrown at the task
-- instead. Null: none holds. A condition that cannot be evaluated (an unset
-- variable, not a boolean) fails a completion (BP302/BP303) but counts as
-- false for a failure, which is recorded whatever the model says.
drop function if exists bpm_private.external_task__error_event(bpm.external_task, bpm.process_instance, jsonb, jsonb, boolean, text);
create or replace function bpm_private.external_task__error_event(task bpm.external_task, instance bpm.process_instance, node jsonb, variables jsonb, failing boolean)
returns text
language plpgsql
stable
set search_path = ''
as $$
declare
  v_vars jsonb;
  v_event jsonb;
  v_holds boolean;
begin
  if node -> 'errorEvents' is null then
    return null;
  end if;
  v_vars := instance.variables || coalesce(task.local_variables, '{}') || variables
    || pg_catalog.jsonb_build_object('externalTask', pg_catalog.jsonb_build_object(
      'id', task.id, 'activityId', task.element_id, 'processInstanceId', task.instance_id, 'topicName', task.topic,
      'workerId', task.worker_id, 'errorMessage', task.error_message, 'errorDetails', task.error_details, 'retries', task.retries,
      'priority', task.priority));
  for v_event in select e from pg_catalog.jsonb_array_elements(node -> 'errorEvents') e loop
    continue when pg_catalog.jsonb_typeof(v_event -> 'condition') is distinct from 'object';
    if not failing then
      v_holds := bpm_private.expression__test(v_event -> 'condition', v_vars, task.element_id);
    else
      -- a failure is recorded even when a condition cannot be evaluated (as Camunda 7 does)
      begin
        v_holds := bpm_private.expression__test(v_event -> 'condition', v_vars, task.element_id);
      exception when sqlstate 'BP302' or sqlstate 'BP303' then
        v_holds := false;
      end;
    end if;
    if v_holds then
      return v_event ->> 'code';
    end if;
  end loop;
  return null;
end;
$$;
comment on function bpm_private.external_task__error_event(bpm.external_task, bpm.process_instance, jsonb, jsonb, boolean) is E'The error code of the first camunda:errorEventDefinition of an external task''s node whose condition holds (over the task''s variables, the worker''s and externalTask), or null.';

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
  v_code text;
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
  if v_locked.graph ? 'taskErrorEvents' and v_instance.state = 'active' then
    -- camunda:errorEventDefinition: a condition that holds throws its error
    -- instead (a task not open or not this worker's: the guard below says why)
    select * into v_task from bpm.external_task e
    where e.tenant_id = v_tenant and e.id = task_id and (e.state = 'open') is true and e.worker_id = complete_external_task.worker_id;
    if found then
      v_code := bpm_private.external_task__error_event(v_task, v_instance, v_locked.graph -> 'nodes' -> v_task.element_id, v_variables, false);
      if v_code is not null then
        return bpm.throw_bpmn_error(task_id, worker_id, v_code, v_variables);
      end if;
    end if;
  end if;
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
comment on function bpm.complete_external_task(uuid, text, jsonb) is E'Completes an external task locked by worker_id and continues the instance; variables merge per top-level key into the instance, or into the local of that name of the nearest enclosing subprocess that has one. When a camunda:errorEventDefinition of the task holds (over its variables, these and externalTask), its error is thrown at the task instead (as throw_bpmn_error). Errors: BP104 not found, BP203 not open, BP205 not locked by this worker, BP202 instance suspended. Roles: bpm_admin, bpm_engine.';

-- error_details: what a worker knows beyond the message (a stack trace;
-- Camunda 7's errorDetails), kept on the task up to 64 KiB.
drop function if exists bpm.fail_external_task(uuid, text, text, int, interval);
create or replace function bpm.fail_external_task(task_id uuid, worker_id text, error_message text, retries int, retry_after interval default '0',
  error_details text default null)
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
  v_locked record;
  v_node jsonb;
  v_code text;
  v_incident uuid;
begin
  if retries is null or retries < 0 then
    raise exception 'invalid argument: retries must be 0 or more, got %', retries using errcode = 'BP401';
  end if;
  if retry_after is null or retry_after < interval '0' then
    raise exception 'invalid argument: retry_after must not be negative' using errcode = 'BP401';
  end if;
  v_locked := bpm_private.external_task__lock(v_tenant, task_id, worker_id, 'fail it');
  v_task := v_locked.task;
  if pg_catalog.length(error_details) > 65536 then
    error_details := pg_catalog.left(error_details, 65536) || E'\n… (truncated: ' || pg_catalog.length(error_details) || ' characters)';
  end if;
  -- (what the error event definitions read as externalTask.errorMessage / errorDetails)
  v_task.error_message := coalesce(error_message, v_task.error_message);
  v_task.error_details := error_details;
  if (v_locked.instance).state = 'active' then
    -- camunda:errorEventDefinition: a condition that holds throws its error instead of the failure
    select d.graph -> 'nodes' -> v_task.element_id into v_node from bpm.process_definition d
    where d.tenant_id = v_tenant and d.id = (v_locked.instance).definition_id and d.graph ? 'taskErrorEvents';
    v_code := bpm_private.external_task__error_event(v_task, v_locked.instance, v_node, '{}', true);
    if v_code is not null then
      return bpm.throw_bpmn_error(task_id, worker_id, v_code, '{}', error_message);
    end if;
  end if;
  update bpm.external_task e
  set retries = fail_external_task.retries, error_message = fail_external_task.error_message, error_details = fail_external_task.error_details,
    worker_id = null, locked_until = null, available_at = pg_catalog.now() + retry_after
  where e.tenant_id = v_tenant and e.id = task_id
  returning * into v_task;
  if retries = 0 then
    insert into bpm.incident (tenant_id, instance_id, element_id, incident_type, message, external_task_id)
    values (v_tenant, v_task.instance_id, v_task.element_id, 'failedExternalTask', error_message, v_task.id)
    returning id into v_incident;
  elsif retry_after = interval '0' then
    perform bpm_private.external_task__notify(v_tenant);
  end if;
  perform bpm_private.event__emit(v_tenant, v_task.instance_id,
    array['externalTaskFailed'] || case when v_incident is not null then array['incidentCreated'] else '{}' end,
    array[v_task.id] || case when v_incident is not null then array[v_incident] else '{}' end,
    array[v_task.element_id] || case when v_incident is not null then array[v_task.element_id] else '{}' end);
  return v_task;
end;
$$;
comment on function bpm.fail_external_task(uuid, text, text, int, interval, text) is E'Reports a failure of an external task locked by worker_id. retries = how many retries remain; the task is fetchable again after retry_after. With 0 retries an incident failedExternalTask is raised. error_details (a stack trace, say) is kept on the task (error_details, up to 64 KiB; longer text is cut there and marked). When a camunda:errorEventDefinition of the task holds (externalTask.errorMessage is error_message, externalTask.errorDetails error_details), its error is thrown at the task instead (as throw_bpmn_error). Roles: bpm_admin, bpm_engine.';

-- error_message: what the worker says about the error; a catching event
-- with camunda:errorMessageVariable stores it (and the code by
-- camunda:errorCodeVariable).
create or replace function bpm.throw_bpmn_error(task_id uuid, worker_id text, error_code text, variables jsonb default '{}', error_message text default null)
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
  v_message text := 'BPMN error ' || coalesce(error_code, '(no code)') || coalesce(': ' || error_message, '');
begin
  v_locked := bpm_private.external_task__lock(v_tenant, task_id, worker_id, 'throw an error from it');
  v_task := v_locked.task;
  v_instance := v_locked.instance;
  perform bpm_private.instance__require_active(v_instance, 'throw a BPMN error from external task ' || task_id);
  select d.graph, d.inclusive_joins into v_graph, v_joins from bpm.process_definition d
  where d.tenant_id = v_tenant and d.id = v_instance.definition_id;
  v_boundary := bpm_private.error_boundary__find(v_graph, v_task.element_id, error_code);
  if v_boundary is null and bpm_private.token__throw(v_instance, v_graph, v_joins, v_task.id, v_task.element_id, 'error', error_code, error_message, v_variables) then
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
  perform bpm_private.token__move(v_instance, v_graph, v_joins, v_task.id, v_task.element_id, v_boundary,
    v_variables || bpm_private.catch__variables(v_graph -> 'nodes' -> v_boundary, error_code, error_message), 'externalTaskCancelled');
  return v_task;
end;
$$;
comment on function bpm.throw_bpmn_error(uuid, text, text, jsonb, text) is E'Reports a business error for an external task locked by worker_id: the matching error boundary event (by code, else a catch-all) interrupts the task and its path is taken; else the nearest matching catch on the way out (an error event subprocess or a boundary of an enclosing subprocess, which is cancelled); variables merge into the instance, and the catching event''s camunda:errorCodeVariable / errorMessageVariable receive error_code / error_message. Nothing catches it: incident unhandledBpmnError (retry_incident makes the task available again). Roles: bpm_admin, bpm_engine.';

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
  if found then
    perform bpm_private.external_task__notify(v_tenant);
  end if;
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
    perform bpm_private.timer__enqueue(v_sub.tenant_id, v_sub.id, pg_catalog.now(), v_sub.job_priority);
    return;
  end if;
  select t.id into v_token from bpm_private.token t
  where t.tenant_id = incident.tenant_id and t.instance_id = incident.instance_id and t.element_id = incident.element_id
    and t.kind in ('asyncBefore', 'asyncAfter')
  limit 1;
  if found then
    perform bpm_private.async__enqueue(incident.tenant_id, v_token, bpm_private.instance__node(incident.tenant_id, incident.instance_id, incident.element_id),
      (select i.variables from bpm.process_instance i where i.tenant_id = incident.tenant_id and i.id = incident.instance_id));
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

-- Wake-up calls for workers: a worker that LISTENs on channel
-- bpm_external_task holds a lease per tenant it serves; while one is live,
-- transactions that make an external task of the tenant fetchable notify the
-- channel (no payload: every listener of the cluster sees it). Without a
-- lease nothing is sent, because NOTIFY makes committing transactions queue
-- behind one another; workers then find tasks by polling.
create or replace function bpm_private.external_task__notify(tenant_id text)
returns void
language plpgsql
volatile
set search_path = ''
as $$
begin
  if exists (select 1 from bpm_private.task_listener l
             where l.tenant_id = external_task__notify.tenant_id and l.expires_at > pg_catalog.now()) then
    perform pg_catalog.pg_notify('bpm_external_task', '');
  end if;
end;
$$;
comment on function bpm_private.external_task__notify(text) is E'Notifies channel bpm_external_task (empty payload) when a worker holds a live lease of the tenant.';

create or replace function bpm.register_task_listener(listener_id text, ttl interval default '30 seconds')
returns timestamptz
language plpgsql
volatile
security definer
set search_path = ''
set plan_cache_mode = force_generic_plan
as $$
declare
  v_tenant text := bpm_private.require_context(array['bpm_admin', 'bpm_engine'], 'listen for external tasks');
  v_expires timestamptz;
begin
  perform bpm_private.lease__check(listener_id, ttl);
  -- expired leases go; a ttl of 0 releases this one (a worker that stops)
  delete from bpm_private.task_listener l where l.tenant_id = v_tenant
    and (l.expires_at < pg_catalog.now() or (ttl = interval '0' and l.listener_id = register_task_listener.listener_id));
  if ttl = interval '0' then
    return pg_catalog.now();
  end if;
  insert into bpm_private.task_listener (tenant_id, listener_id, expires_at)
  values (v_tenant, register_task_listener.listener_id, pg_catalog.now() + ttl)
  on conflict on constraint task_listener_pkey do update set expires_at = excluded.expires_at
  returning task_listener.expires_at into v_expires;
  return v_expires;
end;
$$;
comment on function bpm.register_task_listener(text, interval) is E'Worker-side: while registered (until ttl passes; renew it), transactions that make an external task of the caller''s tenant fetchable (created, failed with retry_after 0, incident retried) NOTIFY channel bpm_external_task with an empty payload, so LISTENing workers fetch at once instead of at their next poll. A ttl of 0 releases the lease at once (a worker that stops). Returns the expiry. Errors: BP401 malformed arguments. Roles: bpm_admin, bpm_engine.';
--! EndIncluded api/external_tasks.sql
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
