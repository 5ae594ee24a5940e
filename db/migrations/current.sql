-- Call activities: a child starts knowing its caller (instance__start takes
-- parent_instance_id), so an error or escalation it throws in its first run
-- reaches the call activity; a call chain that exhausts the stack says so
-- with BP312.
do $$
begin
  if not exists (select 1 from pg_catalog.pg_attribute a where a.attrelid = 'bpm_private.run_state'::pg_catalog.regclass and a.attname = 'parent_id') then
    alter type bpm_private.run_state add attribute parent_id uuid;
  end if;
end;
$$;
drop function if exists bpm_private.instance__start(bpm.process_definition, text, jsonb, text, text, uuid);

--!include engine/run.sql
--!include engine/subscription.sql
--!include elements/events.sql
--!include elements/call_activity.sql
--!include setup/ownership.sql
