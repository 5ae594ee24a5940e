--! Previous: sha1:eada1d35bff93ff34d31c634ef2bfbe268bc7c4c
--! Hash: sha1:d8347960916ef5f5938fa5653aa3cf434306aa42
--! Message: Worker grants: header names job__schedule

-- The worker grants' header names job__schedule among what bpm_owner's
-- functions do on graphile-worker's tables (comment only; the grants are
-- idempotent).
--! Included setup/worker_grants.sql
-- graphile_worker: the job queue (graphile-worker's own schema, tables and
-- functions). It is infrastructure, not part of the engine: `pgbpm migrate`
-- installs and upgrades it with graphile-worker's runMigrations as the
-- migrating login *before* these migrations run (cli/migrate.ts), so it exists
-- here. It is owned by that login and holds no tenant column: one queue for
-- every tenant (a job's payload names its tenant; the engine functions a job
-- calls check it under bpm's row-level security). The security catalog tests
-- cover bpm and bpm_private only; test/db/security/worker_schema.test.ts
-- covers what is granted here.
--
--   bpm_engine  runs the graphile-worker runner (the worker logs in as
--               bpm_authenticator and SET ROLE bpm_engine): it reads the
--               migrations table at start-up, takes, completes, fails and
--               reschedules jobs and registers task identifiers, all on the
--               tables directly (graphile-worker's hot path is SQL in Node).
--   bpm_owner   owns the engine functions, which enqueue and cancel jobs
--               (timers) in the caller's transaction: add_job and add_jobs,
--               which run with the caller's rights, job__schedule, which
--               upserts keyed jobs as add_job would (engine/jobs.sql), and
--               timer__dequeue, which deletes jobs by key as remove_job
--               would (set-based).
--   API roles   (bpm_admin, bpm_designer, bpm_user) nothing at all.
revoke all on schema graphile_worker from public;
revoke execute on all functions in schema graphile_worker from public;
grant usage on schema graphile_worker to bpm_engine, bpm_owner;
grant select, insert, update, delete on all tables in schema graphile_worker to bpm_engine;
revoke insert, update, delete on graphile_worker.migrations from bpm_engine;
grant usage, select, update on all sequences in schema graphile_worker to bpm_engine;
grant execute on all functions in schema graphile_worker to bpm_engine;
-- what graphile-worker's later migrations create (they run as this same login)
alter default privileges in schema graphile_worker grant select, insert, update, delete on tables to bpm_engine;
alter default privileges in schema graphile_worker grant usage, select, update on sequences to bpm_engine;
alter default privileges in schema graphile_worker revoke execute on functions from public;
alter default privileges in schema graphile_worker grant execute on functions to bpm_engine;
-- by name only, so that the grant does not depend on graphile-worker's argument types
grant execute on function graphile_worker.add_job, graphile_worker.add_jobs to bpm_owner;
revoke execute on function graphile_worker.remove_job from bpm_owner;
grant select, insert, update, delete on graphile_worker._private_jobs to bpm_owner;
grant select, insert on graphile_worker._private_tasks, graphile_worker._private_job_queues to bpm_owner;
grant usage, select on all sequences in schema graphile_worker to bpm_owner;
-- graphile-worker enables row-level security on its tables without policies
-- (only their owner may use them); these let the two roles above through,
-- on every row: the queue is not split by tenant.
do $$
declare
  v_table record;
begin
  for v_table in
    select c.relname
    from pg_catalog.pg_class c
    join pg_catalog.pg_namespace n on n.oid = c.relnamespace
    where n.nspname = 'graphile_worker' and c.relkind in ('r', 'p') and c.relrowsecurity
  loop
    execute pg_catalog.format('drop policy if exists pgbpm_worker on graphile_worker.%I', v_table.relname);
    execute pg_catalog.format(
      'create policy pgbpm_worker on graphile_worker.%I to %s using (true) with check (true)',
      v_table.relname,
      case when v_table.relname in ('_private_jobs', '_private_tasks', '_private_job_queues')
        then 'bpm_engine, bpm_owner' else 'bpm_engine' end);
  end loop;
end;
$$;
--! EndIncluded setup/worker_grants.sql
