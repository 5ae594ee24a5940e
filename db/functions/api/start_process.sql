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
begin
  select * into v_definition from bpm.process_definition d
  where d.tenant_id = v_tenant and d.key = process_key
  order by d.version desc limit 1;
  if not found then
    raise exception 'process definition with key % not found', process_key using errcode = 'BP101';
  end if;
  return bpm_private.instance__start(v_definition, null, v_variables, business_key, null, null);
end;
$$;
comment on function bpm.start_process(text, jsonb, text) is E'Starts an instance of the latest version of a process key and runs it until every token waits. Raises BP101 when the key is unknown in the tenant, BP308 when the process has no none start event (it starts by message, signal or timer). Roles: bpm_admin, bpm_user.';
