--! Previous: sha1:7072f7a7ee2b9a315fe14e440013deff795b7c3c
--! Hash: sha1:6fa3de15c6abf39f13c6271291d8c477f9f31c2d
--! Message: bpm.refresh_statistics: analyse engine tables a burst filled beyond their planner statistics

-- bpm.refresh_statistics: the worker analyses engine tables whose planner
-- statistics say they are (nearly) empty while they hold many rows.
--! Included engine/statistics.sql
-- Planner statistics of the engine's tables between autovacuum's visits.
-- Tokens, event subscriptions, open tasks and jobs come and go: autovacuum
-- may analyse such a table while it is nearly empty, and a burst fills it
-- again within seconds. Until the next ANALYZE (autovacuum looks once a
-- minute by default, then waits for 10 % of the rows to change) the planner
-- believes the table empty, every index of it looks as good as another, and
-- the cached plans of the engine's statements may read a tenant's whole
-- table through its tenant prefix where the primary key finds one row: a
-- burst of 10,000 timers fired at 1,400/s instead of 5,000/s (npm run
-- bench:timers, 20 single trials before the burst). The worker calls this
-- every second (PGBPM_STATISTICS_INTERVAL): it analyses each table of the
-- engine that holds at least 1,000 rows and twice as many as its statistics
-- say (or has none), so plans follow a burst within a second or two.
-- ANALYZE conflicts only with other ANALYZEs, VACUUMs and schema changes;
-- one caller at a time runs it (an advisory lock), the others skip.
create or replace function bpm.refresh_statistics()
returns text[]
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  v_role text := bpm_private.caller_role();
  v_table text;
  v_analysed text[] := '{}';
begin
  if not (v_role = any(array['bpm_admin', 'bpm_engine'])) then
    raise exception 'permission denied: role % may not refresh statistics', v_role
      using errcode = 'BP002', hint = 'allowed roles: bpm_admin, bpm_engine';
  end if;
  if not pg_catalog.pg_try_advisory_xact_lock(pg_catalog.hashtext('pgbpm: refresh_statistics')) then
    return v_analysed;
  end if;
  for v_table in
    select pg_catalog.format('%I.%I', s.schemaname, s.relname)
    from pg_catalog.pg_stat_user_tables s
    join pg_catalog.pg_class c on c.oid = s.relid
    where s.schemaname in ('bpm', 'bpm_private')
      and s.n_live_tup >= 1000 and s.n_live_tup >= 2 * c.reltuples
    order by s.relname
  loop
    execute 'analyze ' || v_table;
    v_analysed := v_analysed || v_table;
  end loop;
  return v_analysed;
end;
$$;
comment on function bpm.refresh_statistics() is E'Analyses the engine''s tables that hold at least 1,000 rows and twice as many as their planner statistics say (a queue-like table analysed while nearly empty, then filled by a burst), so that cached plans follow within a second instead of after autovacuum''s next visit; returns the tables analysed (none while another caller runs it). The worker calls it every PGBPM_STATISTICS_INTERVAL. Roles: bpm_admin, bpm_engine.';
--! EndIncluded engine/statistics.sql
--! Included setup/grants.sql
-- Execute grants: each API function to exactly the roles its guard admits
-- (the guard still checks; the grant keeps others from reaching it at all).
revoke execute on all functions in schema bpm from public;
revoke execute on all functions in schema bpm_private from public;
grant execute on function bpm.deploy(jsonb) to bpm_admin, bpm_designer;
grant execute on function bpm.evaluate_decision(text, jsonb, int) to bpm_admin, bpm_designer, bpm_user, bpm_engine;
grant execute on function bpm.start_process(text, jsonb, text, text) to bpm_admin, bpm_user;
grant execute on function bpm.complete_task(uuid, jsonb) to bpm_admin, bpm_user;
grant execute on function bpm.claim_task(uuid) to bpm_admin, bpm_user;
grant execute on function bpm.unclaim_task(uuid) to bpm_admin, bpm_user;
grant execute on function bpm.task_inbox(uuid, int) to bpm_admin, bpm_user;
grant execute on function bpm.set_assignee(uuid, text) to bpm_admin;
grant execute on function bpm.update_task(uuid, jsonb) to bpm_admin;
grant execute on function bpm.cancel_process_instance(uuid, text) to bpm_admin;
grant execute on function bpm.suspend_process_instance(uuid) to bpm_admin;
grant execute on function bpm.activate_process_instance(uuid) to bpm_admin;
grant execute on function bpm.set_variables(uuid, jsonb) to bpm_admin;
grant execute on function bpm.fetch_and_lock(text, text, int, interval) to bpm_admin, bpm_engine;
grant execute on function bpm.complete_external_task(uuid, text, jsonb) to bpm_admin, bpm_engine;
grant execute on function bpm.complete_external_tasks(uuid[], text, jsonb[]) to bpm_admin, bpm_engine;
grant execute on function bpm.fail_external_task(uuid, text, text, int, interval, text) to bpm_admin, bpm_engine;
grant execute on function bpm.register_task_listener(text, interval) to bpm_admin, bpm_engine;
grant execute on function bpm.throw_bpmn_error(uuid, text, text, jsonb, text) to bpm_admin, bpm_engine;
grant execute on function bpm.retry_incident(uuid, int) to bpm_admin, bpm_engine;
grant execute on function bpm.events_after(bigint, uuid, int) to bpm_admin, bpm_designer, bpm_user, bpm_engine;
grant execute on function bpm.register_event_listener(text, interval) to bpm_admin, bpm_designer, bpm_user, bpm_engine;
grant execute on function bpm.correlate_message(text, text, jsonb, interval, text) to bpm_admin, bpm_user, bpm_engine;
grant execute on function bpm.evaluate_conditions(jsonb, text) to bpm_admin, bpm_user, bpm_engine;
grant execute on function bpm.broadcast_signal(text, jsonb) to bpm_admin, bpm_user, bpm_engine;
grant execute on function bpm.fire_timer(uuid) to bpm_admin, bpm_engine;
grant execute on function bpm.fire_due_timers(uuid, int) to bpm_admin, bpm_engine;
grant execute on function bpm.deliver_deferred(uuid) to bpm_admin, bpm_engine;
grant execute on function bpm.continue_async(uuid, boolean) to bpm_admin, bpm_engine;
grant execute on function bpm.process_task_deadline(uuid, text) to bpm_admin, bpm_engine;
grant execute on function bpm.migrate_process_instances(uuid[], uuid, jsonb) to bpm_admin;
grant execute on function bpm.modify_process_instance(uuid, jsonb) to bpm_admin;
grant execute on function bpm.activate_ad_hoc_activities(uuid, text[]) to bpm_admin, bpm_engine;
grant execute on function bpm.cleanup_history(int, interval, interval, int) to bpm_admin, bpm_engine;
grant execute on function bpm.refresh_statistics() to bpm_admin, bpm_engine;
--! EndIncluded setup/grants.sql
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
