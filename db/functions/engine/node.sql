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
