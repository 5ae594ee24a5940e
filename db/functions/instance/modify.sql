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
