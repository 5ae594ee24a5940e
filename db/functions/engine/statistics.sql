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
-- one caller at a time runs it (an advisory lock), the others skip. A table
-- another session holds that way is skipped after 100 ms (lock_timeout) and
-- tried at the next call: waiting for an autovacuum longer than
-- deadlock_timeout would make PostgreSQL cancel the autovacuum.
create or replace function bpm.refresh_statistics()
returns text[]
language plpgsql
volatile
security definer
set search_path = ''
set lock_timeout = '100ms'
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
    begin
      execute 'analyze ' || v_table;
      v_analysed := v_analysed || v_table;
    exception when lock_not_available then
      null; -- (held by a VACUUM or a schema change: at the next call)
    end;
  end loop;
  return v_analysed;
end;
$$;
comment on function bpm.refresh_statistics() is E'Analyses the engine''s tables that hold at least 1,000 rows and twice as many as their planner statistics say (a queue-like table analysed while nearly empty, then filled by a burst), so that cached plans follow within a second instead of after autovacuum''s next visit; returns the tables analysed (none while another caller runs it; a table a VACUUM holds is left for the next call after 100 ms). The worker calls it every PGBPM_STATISTICS_INTERVAL. Roles: bpm_admin, bpm_engine.';
