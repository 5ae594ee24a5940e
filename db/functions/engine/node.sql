-- The generic token lifecycle: enter (history row, join policy), execute
-- (the element's behaviour, dispatched explicitly by type), leave (flow
-- policy). Pass-through elements complete at once and leave.
create or replace function bpm_private.node__enter(st bpm_private.run_state, graph jsonb, node_id text, via_flow text)
returns bpm_private.run_state
language plpgsql
volatile
set search_path = ''
as $$
declare
  v_node jsonb := graph -> 'nodes' -> node_id;
  v_type text := v_node ->> 'type';
  v_id uuid := pg_catalog.gen_random_uuid();
begin
  if v_node is null then
    raise exception 'element % is not in the process graph', node_id using errcode = 'BP305';
  end if;
  st := bpm_private.activity__add(st, v_id, node_id, v_type, 'active');
  case v_type
    when 'userTask' then
      return bpm_private.user_task__enter(st, v_node, v_id, via_flow);
    when 'serviceTask', 'sendTask', 'businessRuleTask' then
      return bpm_private.external_task__enter(st, v_node, v_id, via_flow);
    when 'parallelGateway' then
      if pg_catalog.jsonb_array_length(v_node -> 'in') > 1 then
        return bpm_private.parallel_join__arrive(st, graph, v_node, v_id, via_flow);
      end if;
    when 'inclusiveGateway' then
      if pg_catalog.jsonb_array_length(v_node -> 'in') > 1 then
        -- waits; run__drain fires it once no other token can reach it
        return bpm_private.wait__add(st, v_id, node_id, 'join', via_flow, null);
      end if;
    when 'endEvent' then
      if coalesce((v_node ->> 'terminate')::boolean, false) then
        st.a_state[pg_catalog.cardinality(st.a_state)] := 'completed';
        return bpm_private.instance__terminate(st);
      end if;
    when 'startEvent', 'task', 'manualTask', 'exclusiveGateway', 'boundaryEvent' then
      null;
    else
      raise exception 'element % has type % which this engine version cannot execute', node_id, v_type
        using errcode = 'BP305';
  end case;
  st.a_state[pg_catalog.cardinality(st.a_state)] := 'completed';
  return bpm_private.node__leave(st, graph, v_node);
end;
$$;
comment on function bpm_private.node__enter(bpm_private.run_state, jsonb, text, text) is E'A token enters a flow node: history row, then the element''s behaviour.';

create or replace function bpm_private.node__leave(st bpm_private.run_state, graph jsonb, node jsonb)
returns bpm_private.run_state
language plpgsql
volatile
set search_path = ''
as $$
declare
  v_flow text;
begin
  foreach v_flow in array bpm_private.flows__select(graph, node, st.variables) loop
    st := bpm_private.run__push(st, graph -> 'flows' -> v_flow ->> 'target', v_flow);
  end loop;
  return st;
end;
$$;
comment on function bpm_private.node__leave(bpm_private.run_state, jsonb, jsonb) is E'A token leaves a node over the flows its flow policy selects.';

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
  v_flow text;
  v_cond jsonb;
  v_taken text[] := '{}';
begin
  if node -> 'out' = '[]'::jsonb then
    return v_taken;
  end if;
  if v_type = 'parallelGateway' then
    return array(select pg_catalog.jsonb_array_elements_text(node -> 'out'));
  end if;
  for v_flow in select pg_catalog.jsonb_array_elements_text(node -> 'out') loop
    continue when v_flow = v_default;
    v_cond := graph -> 'flows' -> v_flow -> 'condition';
    if v_cond is null or v_cond = 'null'::jsonb or bpm_private.expression__test(v_cond, variables, v_flow) then
      if v_type = 'exclusiveGateway' then
        return array[v_flow];
      end if;
      v_taken := v_taken || v_flow;
    end if;
  end loop;
  if pg_catalog.cardinality(v_taken) = 0 then
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
