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
-- stay its own). Jobs a worker holds lose their keys through job__unkey
-- (engine/jobs.sql), which job__schedule shares and which is planned the same
-- way.
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
  v_unkeyed text;
begin
  delete from graphile_worker._private_jobs j
  where j.key = any(v_keys) and (j.locked_at is null or j.locked_at < pg_catalog.now() - interval '4 hours');
  get diagnostics v_removed = row_count;
  if v_removed < pg_catalog.cardinality(v_keys) then
    -- held by a worker (a firing timer's own job, every firing), or gone
    -- already (an assignment, not PERFORM: an expression, not a statement
    -- with its executor)
    v_unkeyed := bpm_private.job__unkey(v_keys);
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
