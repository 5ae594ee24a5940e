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
    st := bpm_private.activity__add(st, v_id, v_sub, case when v_sub_node ? 'adHoc' then 'adHocSubProcess' else 'subProcess' end, 'active');
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
