--! Previous: sha1:ca557b2bb6a79b1cce30d878b70121087bbbaf93
--! Hash: sha1:eada1d35bff93ff34d31c634ef2bfbe268bc7c4c
--! Message: Jobs for later without add_job's NOTIFY: job__schedule for timers, task deadlines and asynchronous continuations

-- Jobs for later without add_job's NOTIFY: bpm_private.job__schedule (timers,
-- task deadlines, asynchronous continuations).
--! Included engine/jobs.sql
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
  v_done boolean;
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
    v_done := bpm_private.job__unkey(job_key);
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

-- The key's job, held by a worker or out of attempts, loses its key and its
-- remaining attempts (as add_jobs does before inserting a job of that key).
-- By the key index whatever the statistics say (see timer__dequeue); a rare
-- path, so the settings' cost is not paid by every job__schedule.
create or replace function bpm_private.job__unkey(job_key text)
returns boolean
language plpgsql
volatile
set search_path = ''
set plan_cache_mode = force_generic_plan
set enable_seqscan = off
as $$
begin
  update graphile_worker._private_jobs j
  set key = null, attempts = j.max_attempts, updated_at = pg_catalog.now()
  where j.key = job__unkey.job_key;
  return found;
end;
$$;
comment on function bpm_private.job__unkey(text) is E'Takes a job key from the job that holds it (running, or out of attempts), which then never runs again; whether there was one.';
--! EndIncluded engine/jobs.sql
--! Included elements/timer.sql
-- Timers: when a timer fires. Definitions (compiler/graph.ts TimerSpec):
-- date (ISO 8601 date-time), duration (ISO 8601 duration from now), cycle
-- (R[n]/[start/]duration, or cron in UTC). Raises BP304 for values that are
-- none of these.

-- A cron field as the sorted list of values it allows. Names (JAN, MON) are
-- accepted; `?` and `*` allow everything; lists, ranges and steps.
create or replace function bpm_private.cron__field(field text, lo int, hi int, names text[], expr text)
returns int[]
language plpgsql
immutable
set search_path = ''
as $$
declare
  v_part text;
  v_range text;
  v_step int;
  v_from int;
  v_to int;
  v_result int[] := '{}';
  v_m text[];
begin
  foreach v_part in array pg_catalog.string_to_array(pg_catalog.upper(field), ',') loop
    v_step := 1;
    v_range := v_part;
    if v_part like '%/%' then
      v_range := pg_catalog.split_part(v_part, '/', 1);
      if pg_catalog.split_part(v_part, '/', 2) !~ '^\d{1,4}$' or pg_catalog.split_part(v_part, '/', 2)::int = 0 then
        raise exception 'cron expression "%" has an invalid step in "%"', expr, field using errcode = 'BP304';
      end if;
      v_step := pg_catalog.split_part(v_part, '/', 2)::int;
    end if;
    -- names to numbers (month JAN=1; day of week as given by the caller's list)
    if names is not null then
      for v_i in 1 .. pg_catalog.cardinality(names) loop
        v_range := pg_catalog.replace(v_range, names[v_i], (lo + v_i - 1)::text);
      end loop;
    end if;
    if v_range in ('*', '?') then
      v_from := lo;
      v_to := hi;
    else
      v_m := pg_catalog.regexp_match(v_range, '^(\d{1,4})(?:-(\d{1,4}))?$');
      if v_m is null then
        raise exception 'cron expression "%" has an invalid field "%"', expr, field using errcode = 'BP304';
      end if;
      v_from := v_m[1]::int;
      v_to := coalesce(v_m[2]::int, case when v_part like '%/%' then hi else v_from end);
    end if;
    if v_from < lo or v_to > hi or v_from > v_to then
      raise exception 'cron expression "%" has a value out of range %-% in "%"', expr, lo, hi, field using errcode = 'BP304';
    end if;
    for v_v in v_from .. v_to by v_step loop
      v_result := v_result || v_v;
    end loop;
  end loop;
  return v_result;
end;
$$;
comment on function bpm_private.cron__field(text, int, int, text[], text) is E'Values a cron field allows (BP304 when malformed).';

-- The next time after `after` that a cron expression matches, in UTC.
-- 5 fields: minute hour day-of-month month day-of-week (0-7, 0 and 7 = Sunday).
-- 6 or 7 fields (Quartz, Spring): seconds first, optional year last (only * or ?);
-- day-of-week 1-7 = Sunday-Saturday as in Quartz. Day names are accepted.
-- When both day fields are restricted, a day matching either matches.
create or replace function bpm_private.cron__next(expr text, after timestamptz)
returns timestamptz
language plpgsql
immutable
set search_path = ''
as $$
declare
  v_f text[] := pg_catalog.regexp_split_to_array(pg_catalog.btrim(expr), '\s+');
  v_n int := pg_catalog.cardinality(v_f);
  v_sec int[];
  v_min int[];
  v_hour int[];
  v_dom int[];
  v_mon int[];
  v_dow int[];
  v_dom_any boolean;
  v_dow_any boolean;
  v_t timestamp;
  v_day_ok boolean;
begin
  if v_n not in (5, 6, 7) then
    raise exception 'cron expression "%" must have 5, 6 or 7 fields', expr using errcode = 'BP304';
  end if;
  if v_n = 5 then
    v_f := array['0'] || v_f;
  elsif v_n = 7 and v_f[7] not in ('*', '?') then
    raise exception 'cron expression "%": only * is supported as the year', expr using errcode = 'BP304';
  end if;
  v_sec := bpm_private.cron__field(v_f[1], 0, 59, null, expr);
  v_min := bpm_private.cron__field(v_f[2], 0, 59, null, expr);
  v_hour := bpm_private.cron__field(v_f[3], 0, 23, null, expr);
  v_dom := bpm_private.cron__field(v_f[4], 1, 31, null, expr);
  v_mon := bpm_private.cron__field(v_f[5], 1, 12, array['JAN','FEB','MAR','APR','MAY','JUN','JUL','AUG','SEP','OCT','NOV','DEC'], expr);
  if v_n = 5 then
    -- 0-7, Sunday = 0 or 7; stored as isodow-like 0..6 (0 = Sunday)
    v_dow := array(select d % 7 from unnest(bpm_private.cron__field(v_f[6], 0, 7, array['SUN','MON','TUE','WED','THU','FRI','SAT'], expr)) d);
  else
    -- Quartz: 1-7, Sunday = 1
    v_dow := array(select d - 1 from unnest(bpm_private.cron__field(v_f[6], 1, 7, array['SUN','MON','TUE','WED','THU','FRI','SAT'], expr)) d);
  end if;
  v_dom_any := v_f[4] in ('*', '?');
  v_dow_any := v_f[6] in ('*', '?');
  v_t := pg_catalog.date_trunc('second', after at time zone 'UTC') + interval '1 second';
  for v_i in 1 .. 20000 loop
    if not (pg_catalog.date_part('month', v_t)::int = any(v_mon)) then
      v_t := pg_catalog.date_trunc('month', v_t) + interval '1 month';
      continue;
    end if;
    v_day_ok := case
      when v_dom_any and v_dow_any then true
      when v_dom_any then pg_catalog.date_part('dow', v_t)::int = any(v_dow)
      when v_dow_any then pg_catalog.date_part('day', v_t)::int = any(v_dom)
      else pg_catalog.date_part('day', v_t)::int = any(v_dom) or pg_catalog.date_part('dow', v_t)::int = any(v_dow)
    end;
    if not v_day_ok then
      v_t := pg_catalog.date_trunc('day', v_t) + interval '1 day';
      continue;
    end if;
    if not (pg_catalog.date_part('hour', v_t)::int = any(v_hour)) then
      v_t := pg_catalog.date_trunc('hour', v_t) + interval '1 hour';
      continue;
    end if;
    if not (pg_catalog.date_part('minute', v_t)::int = any(v_min)) then
      v_t := pg_catalog.date_trunc('minute', v_t) + interval '1 minute';
      continue;
    end if;
    if not (pg_catalog.floor(pg_catalog.date_part('second', v_t))::int = any(v_sec)) then
      v_t := v_t + interval '1 second';
      continue;
    end if;
    return v_t at time zone 'UTC';
  end loop;
  raise exception 'cron expression "%" never matches', expr using errcode = 'BP304';
end;
$$;
comment on function bpm_private.cron__next(text, timestamptz) is E'Next time after `after` matching a cron expression (UTC); BP304 when malformed or never matching.';

-- The next due time of a cycle after `after`: R[n]/[start/]duration adds the
-- duration; cron finds the next match.
create or replace function bpm_private.timer__next(cycle text, after timestamptz)
returns timestamptz
language plpgsql
immutable
set search_path = ''
as $$
declare
  v_parts text[];
begin
  if cycle ~ '^R\d*/' then
    v_parts := pg_catalog.string_to_array(cycle, '/');
    return after + pg_catalog.replace(v_parts[pg_catalog.cardinality(v_parts)], ',', '.')::interval;
  end if;
  return bpm_private.cron__next(cycle, after);
end;
$$;
comment on function bpm_private.timer__next(text, timestamptz) is E'Next due time of a timer cycle after the given time.';

-- Arms a timer: {due_at, cycle, repeats} for a TimerSpec evaluated now.
-- repeats = how many more times a cycle fires after the first (null: unbounded).
create or replace function bpm_private.timer__arm(timer jsonb, variables jsonb, element_id text)
returns jsonb
language plpgsql
stable
set search_path = ''
as $$
declare
  v_kind text := timer ->> 'kind';
  v_text text := bpm_private.value__to_text(bpm_private.value__eval(timer -> 'value', variables, element_id));
  v_parts text[];
  v_start timestamptz;
  v_due timestamptz;
  v_repeats int;
begin
  if v_text is null or v_text = '' then
    raise exception 'timer of element % has no value', element_id using errcode = 'BP304';
  end if;
  if v_kind in ('date', 'duration') then
    return pg_catalog.jsonb_build_object('due_at', bpm_private.value__to_timestamp(pg_catalog.to_jsonb(v_text), element_id, 'timer'));
  end if;
  begin
    if v_text ~ '^R\d*/' then
      v_parts := pg_catalog.string_to_array(v_text, '/');
      if pg_catalog.cardinality(v_parts) not in (2, 3) then
        raise exception 'bad cycle';
      end if;
      v_repeats := nullif(pg_catalog.substr(v_parts[1], 2), '')::int;
      if v_repeats is not null and v_repeats < 1 then
        raise exception 'bad cycle';
      end if;
      if pg_catalog.cardinality(v_parts) = 3 then
        -- the one date rule of the engine (value__to_timestamp): no offset is UTC
        v_start := bpm_private.value__to_timestamp(pg_catalog.to_jsonb(v_parts[2]), element_id, 'timer cycle start');
      end if;
      v_due := case when v_start is not null and v_start > pg_catalog.now() then v_start
                    else pg_catalog.now() + pg_catalog.replace(v_parts[pg_catalog.cardinality(v_parts)], ',', '.')::interval end;
      return pg_catalog.jsonb_build_object('due_at', v_due, 'cycle', v_text, 'repeats', v_repeats - 1);
    end if;
  exception when others then
    raise exception 'timer cycle of element % is not a repeating interval R[n]/[start/]duration: "%"', element_id, v_text
      using errcode = 'BP304';
  end;
  return pg_catalog.jsonb_build_object('due_at', bpm_private.cron__next(v_text, pg_catalog.now()), 'cycle', v_text);
end;
$$;
comment on function bpm_private.timer__arm(jsonb, jsonb, text) is E'Evaluates a timer definition: first due time, and the cycle and remaining repeats of cycles (BP304 when invalid).';

-- graphile-worker job of a timer subscription (job_key bpm-timer:<id>: arming
-- again replaces it, removing it cancels it), with the timer's job priority.
create or replace function bpm_private.timer__enqueue(tenant_id text, subscription_id uuid, due_at timestamptz, priority int)
returns void
language plpgsql
volatile
set search_path = ''
as $$
begin
  perform bpm_private.job__schedule('bpm_fire_timer',
    pg_catalog.json_build_object('tenant_id', tenant_id, 'subscription_id', subscription_id),
    due_at, 'bpm-timer:' || subscription_id::text, 5, bpm_private.job__priority(priority));
end;
$$;
comment on function bpm_private.timer__enqueue(text, uuid, timestamptz, int) is E'Schedules (or reschedules) the job that fires a timer subscription (priority: camunda:jobPriority, higher first).';

-- A camunda:jobPriority (higher runs first) as a graphile-worker priority
-- (lower runs first; smallint).
create or replace function bpm_private.job__priority(priority int)
returns int
language sql
immutable
set search_path = ''
as $$
  select -least(greatest(coalesce(priority, 0), -32767), 32767);
$$;
comment on function bpm_private.job__priority(int) is E'A camunda:jobPriority (higher first) as a graphile-worker job priority (lower first).';

-- A node's camunda:jobPriority: its integer, or its expression evaluated over
-- variables (BP303 when that is not an integer); 0 when it has none.
create or replace function bpm_private.node__job_priority(node jsonb, variables jsonb)
returns int
language plpgsql
stable
set search_path = ''
as $$
begin
  if pg_catalog.jsonb_typeof(node -> 'jobPriority') = 'object' then
    return bpm_private.priority__of(bpm_private.value__eval(node -> 'jobPriority', coalesce(variables, '{}'), node ->> 'id'), node ->> 'id', 0);
  end if;
  return coalesce((node ->> 'jobPriority')::int, 0);
end;
$$;
comment on function bpm_private.node__job_priority(jsonb, jsonb) is E'The camunda:jobPriority of a node: its integer, or its expression evaluated over the variables (BP303 unless an integer); 0 when absent.';

-- What graphile_worker.remove_job does, for all the given timers in two
-- statements: a job no worker holds goes; a job a worker holds (the firing
-- timer's own job, running now) loses its key and its remaining attempts, so
-- it never runs again. Calling remove_job per job cost a tenth of a batched
-- timer firing: its statements had to be planned afresh at each call, and it
-- sends a NOTIFY per removed job that no worker acts on. (Its generic plans,
-- made while the queue was small, kept a sequential scan of the queue's one
-- page as the queue grew, until it was next analysed: one full scan per
-- removal, a burst of timers fired three times slower;
-- test/db/events/job_plans.test.ts.) Here the plans are generic and made with
-- sequential scans off, so the job key index is taken whatever the
-- statistics say (the setting applies while this function runs, and its plans
-- stay its own). (job__schedule's lookup of a held job by key, job__unkey,
-- is made the same way.)
create or replace function bpm_private.timer__dequeue(subscription_ids uuid[])
returns void
language plpgsql
volatile
set search_path = ''
set plan_cache_mode = force_generic_plan
set enable_seqscan = off
as $$
declare
  -- (the job keys in one plain expression rather than a query: uuids hold no spaces)
  v_keys text[] := pg_catalog.string_to_array('bpm-timer:' || pg_catalog.array_to_string(subscription_ids, ' bpm-timer:'), ' ');
  v_removed int;
begin
  delete from graphile_worker._private_jobs j
  where j.key = any(v_keys) and (j.locked_at is null or j.locked_at < pg_catalog.now() - interval '4 hours');
  get diagnostics v_removed = row_count;
  if v_removed < pg_catalog.cardinality(v_keys) then
    -- held by a worker, or gone already
    update graphile_worker._private_jobs j
    set key = null, attempts = j.max_attempts, updated_at = pg_catalog.now()
    where j.key = any(v_keys);
  end if;
end;
$$;
comment on function bpm_private.timer__dequeue(uuid[]) is E'Cancels the jobs of timer subscriptions as graphile_worker.remove_job does, in two statements for all of them (no-op for jobs already gone).';

-- A timer subscription that fired: a cycle with repeats left is armed for its
-- next due time (its job replaced), anything else is closed.
create or replace function bpm_private.timer__rearm_or_close(sub bpm.event_subscription)
returns void
language plpgsql
volatile
set search_path = ''
as $$
begin
  if sub.cycle is not null and (sub.repeats_left is null or sub.repeats_left > 0) then
    update bpm.event_subscription s
    set due_at = bpm_private.timer__next(sub.cycle, greatest(sub.due_at, pg_catalog.now() - interval '1 minute')),
      repeats_left = sub.repeats_left - 1
    where s.tenant_id = sub.tenant_id and s.id = sub.id
    returning * into sub;
    perform bpm_private.timer__enqueue(sub.tenant_id, sub.id, sub.due_at, sub.job_priority);
  else
    delete from bpm.event_subscription s where s.tenant_id = sub.tenant_id and s.id = sub.id;
  end if;
end;
$$;
comment on function bpm_private.timer__rearm_or_close(bpm.event_subscription) is E'After a timer fired: arms the next cycle or closes the subscription.';
--! EndIncluded elements/timer.sql
--! Included elements/task_deadlines.sql
-- User task deadlines (issue 4): a task with a due date is marked overdue
-- when it passes (event taskOverdue), a follow-up date emits
-- taskFollowUpDue, and an escalation rule (pgbpm:escalateAfter, a duration
-- after the due date, or after creation without one) adds candidate groups
-- and/or reassigns the task (taskEscalated). Each is a graphile-worker job
-- (bpm_task_deadline, job_key bpm-task-<kind>:<task id>), enqueued when the
-- task is created; the handler re-checks the task under the instance lock.

-- Deadline data for a new task (merged into its wait data): escalation
-- evaluated now, flag `deadline` when any job is needed.
create or replace function bpm_private.user_task__deadlines(node jsonb, variables jsonb, data jsonb)
returns jsonb
language plpgsql
stable
set search_path = ''
as $$
declare
  v_rule jsonb := node -> 'taskEscalation';
  v_el text := node ->> 'id';
  v_after text;
  v_escalate_at timestamptz;
begin
  if v_rule is not null and v_rule <> 'null'::jsonb then
    v_after := bpm_private.value__to_text(bpm_private.value__eval(v_rule -> 'after', variables, v_el));
    begin
      v_escalate_at := coalesce((data ->> 'due_at')::timestamptz, pg_catalog.now()) + pg_catalog.replace(v_after, ',', '.')::interval;
    exception when others then
      raise exception 'pgbpm:escalateAfter of element % is not an ISO 8601 duration: "%"', v_el, v_after using errcode = 'BP304';
    end;
    data := data || pg_catalog.jsonb_build_object('escalate_at', v_escalate_at,
      'escalate_groups', pg_catalog.to_jsonb(bpm_private.value__to_text_array(bpm_private.value__eval(v_rule -> 'addCandidateGroups', variables, v_el))),
      'escalate_assignee', bpm_private.value__to_text(bpm_private.value__eval(v_rule -> 'reassignTo', variables, v_el)));
  end if;
  if data ->> 'due_at' is not null or data ->> 'follow_up_at' is not null or data ? 'escalate_at' then
    data := data || '{"deadline": true}'::jsonb;
  end if;
  return data;
end;
$$;
comment on function bpm_private.user_task__deadlines(jsonb, jsonb, jsonb) is E'Evaluates a task''s escalation rule and flags tasks that need deadline jobs.';

create or replace function bpm_private.user_task__enqueue_deadlines(tenant_id text, task_id uuid, data jsonb)
returns void
language plpgsql
volatile
set search_path = ''
as $$
declare
  v_kind text;
  v_at timestamptz;
begin
  foreach v_kind in array array['due', 'followUp', 'escalate'] loop
    v_at := (data ->> case v_kind when 'due' then 'due_at' when 'followUp' then 'follow_up_at' else 'escalate_at' end)::timestamptz;
    continue when v_at is null;
    perform bpm_private.job__schedule('bpm_task_deadline',
      pg_catalog.json_build_object('tenant_id', tenant_id, 'task_id', task_id, 'kind', v_kind),
      v_at, 'bpm-task-' || v_kind || ':' || task_id::text, 5, 0);
  end loop;
end;
$$;
comment on function bpm_private.user_task__enqueue_deadlines(text, uuid, jsonb) is E'Schedules the due, follow-up and escalation jobs of a new user task.';

create or replace function bpm.process_task_deadline(task_id uuid, kind text)
returns bpm.user_task
language plpgsql
volatile
security definer
set search_path = ''
set plan_cache_mode = force_generic_plan
as $$
declare
  v_tenant text := bpm_private.require_context(array['bpm_admin', 'bpm_engine'], 'process a task deadline');
  v_task bpm.user_task;
  v_instance bpm.process_instance;
  v_graph jsonb;
  v_data jsonb;
begin
  if kind is null or kind not in ('due', 'followUp', 'escalate') then
    raise exception 'invalid argument: kind must be due, followUp or escalate, got %', coalesce(kind, 'null') using errcode = 'BP401';
  end if;
  v_instance := bpm_private.instance__lock_tree(v_tenant, (select t.instance_id from bpm.user_task t where t.tenant_id = v_tenant and t.id = task_id));
  select * into v_task from bpm.user_task t where t.tenant_id = v_tenant and t.id = task_id;
  -- gone, done, or waiting for the instance's activation: nothing to do
  if not found or v_task.state <> 'open' or v_instance.state <> 'active' then
    return null;
  end if;
  if kind = 'due' then
    if v_task.due_at is null or v_task.due_at > pg_catalog.now() or v_task.overdue_since is not null then
      return null;
    end if;
    update bpm.user_task t set overdue_since = pg_catalog.now() where t.tenant_id = v_tenant and t.id = task_id returning * into v_task;
    perform bpm_private.event__emit(v_tenant, v_task.instance_id, array['taskOverdue'], array[v_task.id], array[v_task.element_id]);
  elsif kind = 'followUp' then
    if v_task.follow_up_at is null or v_task.follow_up_at > pg_catalog.now() then
      return null;
    end if;
    perform bpm_private.event__emit(v_tenant, v_task.instance_id, array['taskFollowUpDue'], array[v_task.id], array[v_task.element_id]);
  else
    if v_task.escalated_at is not null then
      return null;
    end if;
    select d.graph into v_graph from bpm.process_definition d where d.tenant_id = v_tenant and d.id = v_instance.definition_id;
    v_data := bpm_private.user_task__deadlines(v_graph -> 'nodes' -> v_task.element_id, v_instance.variables,
      pg_catalog.jsonb_build_object('due_at', v_task.due_at));
    if not v_data ? 'escalate_at' or (v_data ->> 'escalate_at')::timestamptz > pg_catalog.now() + interval '1 second' then
      -- no rule (any more), or not yet due (the due date moved): nothing now
      return null;
    end if;
    update bpm.user_task t
    set escalated_at = pg_catalog.now(),
      assignee = coalesce(v_data ->> 'escalate_assignee', t.assignee),
      candidate_groups = array(select distinct g from unnest(t.candidate_groups || coalesce(
        (select array_agg(e) from pg_catalog.jsonb_array_elements_text(v_data -> 'escalate_groups') e), '{}')) g order by g)
    where t.tenant_id = v_tenant and t.id = task_id
    returning * into v_task;
    perform bpm_private.event__emit(v_tenant, v_task.instance_id, array['taskEscalated'], array[v_task.id], array[v_task.element_id]);
  end if;
  return v_task;
end;
$$;
comment on function bpm.process_task_deadline(uuid, text) is E'Worker entry point (job bpm_task_deadline): kind due marks an open task overdue once its due date has passed (taskOverdue), followUp emits taskFollowUpDue, escalate applies the task''s escalation rule (adds pgbpm:escalateToGroups to the candidates and/or assigns pgbpm:escalateToAssignee; taskEscalated). Idempotent: a task completed, already marked or of a suspended instance is left alone and null returned. Roles: bpm_admin, bpm_engine.';

-- When an open task's escalation rule applies (null without a rule).
create or replace function bpm_private.user_task__escalate_at(tenant_id text, task bpm.user_task)
returns timestamptz
language plpgsql
stable
set search_path = ''
as $$
declare
  v_node jsonb := bpm_private.instance__node(tenant_id, task.instance_id, task.element_id);
  v_variables jsonb := (select i.variables from bpm.process_instance i where i.tenant_id = user_task__escalate_at.tenant_id and i.id = task.instance_id);
begin
  if v_node -> 'taskEscalation' is null then
    return null;
  end if;
  return (bpm_private.user_task__deadlines(v_node, v_variables, pg_catalog.jsonb_build_object('due_at', task.due_at)) ->> 'escalate_at')::timestamptz;
end;
$$;
comment on function bpm_private.user_task__escalate_at(text, bpm.user_task) is E'When an open task''s escalation rule applies, or null.';
--! EndIncluded elements/task_deadlines.sql
--! Included engine/async.sql
-- Asynchronous continuations (camunda:asyncBefore / asyncAfter): the token
-- waits (token kind asyncBefore: before executing the node, its activity row
-- already started; asyncAfter: after the node completed, before leaving it)
-- and a graphile-worker job (bpm_continue, job_key bpm-async:<token id>)
-- continues it in its own transaction. A continuation that keeps failing
-- becomes an incident failedJob on its last attempt.

create or replace function bpm_private.async__enqueue(tenant_id text, token_id uuid, node jsonb, variables jsonb)
returns void
language plpgsql
volatile
set search_path = ''
as $$
begin
  perform bpm_private.job__schedule('bpm_continue',
    pg_catalog.json_build_object('tenant_id', tenant_id, 'token_id', token_id),
    pg_catalog.now(), 'bpm-async:' || token_id::text,
    coalesce((node -> 'jobRetry' ->> 'retries')::int, 3) + 1,
    bpm_private.job__priority(bpm_private.node__job_priority(node, variables)));
end;
$$;
comment on function bpm_private.async__enqueue(text, uuid, jsonb, jsonb) is E'Schedules the job that continues an asynchronous token (retries from camunda:failedJobRetryTimeCycle, default 3; priority from camunda:jobPriority, an expression evaluated over variables).';

create or replace function bpm_private.async__wait(st bpm_private.run_state, node jsonb, kind text, via_flow text, token_id uuid)
returns bpm_private.run_state
language plpgsql
volatile
set search_path = ''
as $$
begin
  st := bpm_private.wait__add(st, token_id, node ->> 'id', kind, via_flow, null);
  perform bpm_private.async__enqueue(st.tenant_id, token_id, node, st.variables);
  return st;
end;
$$;
comment on function bpm_private.async__wait(bpm_private.run_state, jsonb, text, text, uuid) is E'Makes a token wait for its asynchronous continuation.';

create or replace function bpm.continue_async(token_id uuid, last_attempt boolean default true)
returns bpm.process_instance
language plpgsql
volatile
security definer
set search_path = ''
set plan_cache_mode = force_generic_plan
as $$
declare
  v_tenant text := bpm_private.require_context(array['bpm_admin', 'bpm_engine'], 'continue an asynchronous token');
  v_instance_id uuid;
  v_instance bpm.process_instance;
  v_token bpm_private.token;
  v_locked record;
  v_graph jsonb;
  st bpm_private.run_state;
begin
  select t.instance_id into v_instance_id from bpm_private.token t
  where t.tenant_id = v_tenant and t.id = token_id and t.kind in ('asyncBefore', 'asyncAfter');
  if not found then
    return null;
  end if;
  v_instance := bpm_private.instance__lock(v_tenant, v_instance_id);
  select * into v_token from bpm_private.token t where t.tenant_id = v_tenant and t.id = token_id;
  -- gone (continued already, cancelled) or waiting for activation: nothing to do
  if not found or v_instance.state <> 'active'
     or exists (select 1 from bpm.incident i where i.tenant_id = v_tenant and i.instance_id = v_instance_id
                and i.element_id = v_token.element_id and i.incident_type = 'failedJob' and (i.resolved_at is null) is true) then
    return null;
  end if;
  begin
    select d.graph, d.inclusive_joins into v_locked from bpm.process_definition d
    where d.tenant_id = v_tenant and d.id = v_instance.definition_id;
    v_graph := bpm_private.graph__in_memory(v_locked.graph);
    delete from bpm_private.token t where t.tenant_id = v_tenant and t.id = token_id;
    st := bpm_private.run__begin(v_tenant, v_instance_id, v_instance.variables, false, v_locked.inclusive_joins);
    st.business_key := v_instance.business_key;
    st := bpm_private.run__resume(st, v_graph -> 'nodes' -> v_token.element_id, v_token.id);
    if v_token.kind = 'asyncBefore' then
      st.resume_node := v_token.element_id;
      st.resume_id := v_token.id;
      st := bpm_private.run__push(st, v_token.element_id, v_token.via_flow);
    else
      st := bpm_private.node__leave_now(st, v_graph, v_graph -> 'nodes' -> v_token.element_id);
    end if;
    st := bpm_private.run__drain(st, v_graph);
    return bpm_private.run__finish(st, v_instance);
  exception when others then
    if not last_attempt or bpm_private.error__is_transient(sqlstate) then
      raise;
    end if;
    perform bpm_private.incident__raise(v_tenant, v_instance_id, v_token.element_id, 'failedJob',
      pg_catalog.format('asynchronous continuation %s of element %s failed: %s (SQLSTATE %s)', v_token.kind, v_token.element_id, sqlerrm, sqlstate));
    return v_instance;
  end;
end;
$$;
comment on function bpm.continue_async(uuid, boolean) is E'Runs the asynchronous continuation of a token (called by the worker''s bpm_continue job; idempotent: a token already continued or cancelled, or of a suspended instance, is left alone and null returned). A failure is raised so the job is retried, except on the last attempt, which records an incident failedJob (retry_incident schedules it again). Roles: bpm_admin, bpm_engine.';

create or replace function bpm_private.instance__node(tenant_id text, instance_id uuid, element_id text)
returns jsonb
language plpgsql
stable
set search_path = ''
as $$
begin
  return (select d.graph -> 'nodes' -> instance__node.element_id
          from bpm.process_instance i join bpm.process_definition d on d.tenant_id = i.tenant_id and d.id = i.definition_id
          where i.tenant_id = instance__node.tenant_id and i.id = instance__node.instance_id);
end;
$$;
comment on function bpm_private.instance__node(text, uuid, text) is E'An element of an instance''s process graph.';

-- Errors a job should be retried for rather than recorded as an incident:
-- serialization failures and deadlocks (40), resources (53), operator
-- intervention such as a cancelled statement (57), system errors (58).
create or replace function bpm_private.error__is_transient(sqlstate text)
returns boolean
language plpgsql
immutable
set search_path = ''
as $$
begin
  return pg_catalog.left(sqlstate, 2) in ('40', '53', '57', '58');
end;
$$;
comment on function bpm_private.error__is_transient(text) is E'Whether an SQLSTATE is transient (the job is retried) rather than a failure of the model (an incident).';
--! EndIncluded engine/async.sql
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
