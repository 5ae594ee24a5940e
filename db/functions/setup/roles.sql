-- Roles are cluster-wide: create each only if it is missing, so `pgbpm migrate`
-- can run against many databases of one cluster, repeatedly.
--   bpm_owner          owns every engine object; NOLOGIN; subject to forced RLS
--   bpm_authenticator  the only login role; switches to the API roles
--   bpm_admin          everything within its tenant
--   bpm_designer       deploy + read
--   bpm_user           start processes; sees and works the tasks offered to it
--   bpm_engine         the worker's role (external tasks, incidents, jobs)
do $$
declare
  v_role text;
begin
  foreach v_role in array array['bpm_owner', 'bpm_admin', 'bpm_designer', 'bpm_user', 'bpm_engine'] loop
    if not exists (select 1 from pg_catalog.pg_roles where rolname = v_role) then
      begin
        execute pg_catalog.format('create role %I nologin', v_role);
      exception when duplicate_object or unique_violation then
        null; -- created concurrently by a migration of another database
      end;
    end if;
  end loop;
  if not exists (select 1 from pg_catalog.pg_roles where rolname = 'bpm_authenticator') then
    begin
      create role bpm_authenticator login noinherit;
    exception when duplicate_object or unique_violation then
      null;
    end;
  end if;
  foreach v_role in array array['bpm_admin', 'bpm_designer', 'bpm_user', 'bpm_engine'] loop
    if not pg_catalog.pg_has_role('bpm_authenticator', v_role, 'member') then
      execute pg_catalog.format('grant %I to bpm_authenticator', v_role);
    end if;
  end loop;
  -- whoever migrates must be able to hand objects to bpm_owner
  if not (select rolsuper from pg_catalog.pg_roles where rolname = current_user) then
    execute pg_catalog.format('grant bpm_owner to %I', current_user);
  end if;
end;
$$;
