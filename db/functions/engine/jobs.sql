-- graphile-worker jobs the engine schedules for later (timers, task
-- deadlines) or at once (asynchronous continuations), in the caller's
-- transaction.
--
-- bpm_private.job__schedule does what graphile_worker.add_job does for a
-- keyed job in its default mode ('replace'), in one statement where add_job
-- (through add_jobs) runs five, and it notifies the workers only when the job
-- is due now. add_jobs always sends NOTIFY jobs:insert, which only nudges
-- idle workers to look for a job at once: for a job due later they find
-- nothing, and the job runs when a worker's poll finds it due, whether or not
-- it was announced. A NOTIFY is not free: PostgreSQL serialises the commits
-- of notifying transactions (a start that arms a one-hour timer ran at about
-- 810/s with add_job against 1,180/s with this, pgbench on PostgreSQL 15, 8
-- clients). graphile-worker's tables are private to it: this writes the
-- columns add_jobs writes, and test/db/events/job_schedule.test.ts checks it
-- against add_job's behaviour on the graphile-worker version the project
-- installs.

-- A keyed job no worker holds is replaced in place (its run_at, payload,
-- attempts and revision as add_job sets them); a job a worker holds (running
-- now: a timer cycle's own job arming its next firing) or one that used up
-- its attempts keeps running or stays failed, without its key and its
-- retries, and a new job takes the key. A task identifier no job has used yet
-- goes through add_job, which registers it.
create or replace function bpm_private.job__schedule(identifier text, payload json, run_at timestamptz, job_key text,
  max_attempts int, priority int)
returns void
language plpgsql
volatile
set search_path = ''
as $$
declare
  v_task_id int := (select t.id from graphile_worker._private_tasks t where t.identifier = job__schedule.identifier);
begin
  if v_task_id is null then
    perform graphile_worker.add_job(identifier, payload, run_at => run_at, job_key => job_key, max_attempts => max_attempts,
      priority => priority);
    return;
  end if;
  insert into graphile_worker._private_jobs as j (task_id, payload, run_at, max_attempts, key, priority)
  values (v_task_id, payload, run_at, max_attempts, job_key, priority)
  on conflict (key) do update set job_queue_id = excluded.job_queue_id, task_id = excluded.task_id, payload = excluded.payload,
    run_at = excluded.run_at, max_attempts = excluded.max_attempts, priority = excluded.priority, flags = excluded.flags,
    revision = j.revision + 1, attempts = 0, last_error = null, updated_at = pg_catalog.now()
  where j.locked_at is null and j.attempts < j.max_attempts;
  if not found then
    perform bpm_private.job__unkey(array[job_key]);
    insert into graphile_worker._private_jobs (task_id, payload, run_at, max_attempts, key, priority)
    values (v_task_id, payload, run_at, max_attempts, job_key, priority);
  end if;
  if run_at <= pg_catalog.now() then
    -- (a random part, as add_jobs: PostgreSQL sends one of identical notifications per transaction)
    perform pg_catalog.pg_notify('jobs:insert', '{"r":' || pg_catalog.random()::text || ',"count":1}');
  end if;
end;
$$;
comment on function bpm_private.job__schedule(text, json, timestamptz, text, int, int) is E'Schedules (or replaces) the graphile-worker job of a key as graphile_worker.add_job does (mode replace), notifying workers only when it is due now.';

-- The keys' jobs (held by a worker, or out of attempts) lose their keys and
-- their remaining attempts, so that they never run again: what add_jobs does
-- before inserting a job of a held key, and what remove_job does to a job a
-- worker holds (timer__dequeue). By the key index whatever the statistics
-- say (see timer__dequeue); a rare path, so the settings' cost is not paid by
-- every job__schedule.
create or replace function bpm_private.job__unkey(job_keys text[])
returns void
language plpgsql
volatile
set search_path = ''
set plan_cache_mode = force_generic_plan
set enable_seqscan = off
as $$
begin
  update graphile_worker._private_jobs j
  set key = null, attempts = j.max_attempts, updated_at = pg_catalog.now()
  where j.key = any(job_keys);
end;
$$;
comment on function bpm_private.job__unkey(text[]) is E'Takes job keys from the jobs that hold them (running, or out of attempts), which then never run again.';
