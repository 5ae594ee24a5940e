create or replace function bpm.start_process(process_key text, variables jsonb default '{}', business_key text default null)
returns bpm.process_instance
language plpgsql
volatile
security definer
set search_path = ''
set plan_cache_mode = force_generic_plan
as $$
declare
  v_tenant text := bpm_private.require_context(array['bpm_admin', 'bpm_user'], 'start a process');
  v_variables jsonb := bpm_private.require_object(variables, 'variables');
  v_definition bpm.process_definition;
  v_graph jsonb;
  st bpm_private.run_state;
  v_done boolean;
  v_instance bpm.process_instance;
begin
  select * into v_definition from bpm.process_definition d
  where d.tenant_id = v_tenant and d.key = process_key
  order by d.version desc limit 1;
  if not found then
    raise exception 'process definition with key % not found', process_key using errcode = 'BP101';
  end if;
  -- walk in memory first: an instance that ends within this call is inserted completed
  v_graph := bpm_private.graph__in_memory(v_definition.graph);
  st := bpm_private.run__begin(v_tenant, pg_catalog.gen_random_uuid(), v_variables, true, v_definition.inclusive_joins);
  st := bpm_private.run__push(st, v_graph ->> 'start', null);
  st := bpm_private.run__drain(st, v_graph);
  v_done := st.terminated or pg_catalog.cardinality(st.w_id) = 0;
  st := bpm_private.run__event(st, 'instanceStarted', st.instance_id, null);
  if v_done then
    st := bpm_private.run__event(st, 'instanceCompleted', st.instance_id, null);
  end if;
  insert into bpm.process_instance (tenant_id, id, definition_id, business_key, state, variables, started_by, ended_at)
  values (v_tenant, st.instance_id, v_definition.id, start_process.business_key,
    case when v_done then 'completed' else 'active' end, st.variables, bpm_private.current_user_id(),
    case when v_done then pg_catalog.now() end)
  returning * into v_instance;
  perform bpm_private.run__flush(st);
  return v_instance;
end;
$$;
comment on function bpm.start_process(text, jsonb, text) is E'Starts an instance of the latest version of a process key and runs it until every token waits. Raises BP101 when the key is unknown in the tenant. Roles: bpm_admin, bpm_user.';
