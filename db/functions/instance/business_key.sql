-- Unique business keys (pgbpm:uniqueBusinessKey on the process): an
-- instance with a business key starts only while no active or suspended
-- instance of the same process key (any version) has it. Concurrent starts
-- with one key serialise on an advisory lock of (tenant, process key,
-- business key), taken before the check and held until commit, so exactly
-- one of them starts.
create or replace function bpm_private.business_key__claim(definition bpm.process_definition, business_key text)
returns void
language plpgsql
volatile
set search_path = ''
as $$
declare
  v_other uuid;
begin
  perform pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtextextended(definition.tenant_id || '/business-key/' || definition.key || '/' || business_key, 0));
  select i.id into v_other
  from bpm.process_instance i
  join bpm.process_definition d on d.tenant_id = i.tenant_id and d.id = i.definition_id
  where i.tenant_id = definition.tenant_id and i.business_key = business_key__claim.business_key and d.key = definition.key
    and i.state in ('active', 'suspended')
  limit 1;
  if found then
    raise exception 'process % has an active instance % with business key % already (business keys of this process are unique)',
      definition.key, v_other, business_key using errcode = 'BP209';
  end if;
end;
$$;
comment on function bpm_private.business_key__claim(bpm.process_definition, text) is E'Unique business keys: raises BP209 when an active or suspended instance of the definition''s process key has the business key (serialised per key by an advisory lock held until commit).';
