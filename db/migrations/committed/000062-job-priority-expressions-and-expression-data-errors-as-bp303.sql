--! Previous: sha1:6fe5644f09d58c53dcd2dd13cd5c555a6b0df93d
--! Hash: sha1:68ff0eed6e57971d480a7dad05e8ce787176807b
--! Message: Job priority expressions and expression data errors as BP303

-- camunda:jobPriority expressions: evaluated when the job is created.
drop function if exists bpm_private.async__enqueue(text, uuid, jsonb);
--! Included expression/evaluate.sql
-- Evaluation of expressions compiled at deploy time (compiler/expression.ts)
-- into SQL/JSON paths over the instance variables. No user text is ever
-- executed as SQL: paths are data, evaluated by jsonb_path_match/query_first.

create or replace function bpm_private.expression__require_vars(expr jsonb, variables jsonb, element_id text)
returns void
language plpgsql
stable
set search_path = ''
as $$
declare
  v_vars jsonb := expr -> 'vars';
  v_name text;
begin
  if v_vars is null then
    return;
  end if;
  for v_i in 0 .. pg_catalog.jsonb_array_length(v_vars) - 1 loop
    v_name := v_vars ->> v_i;
    if not variables ? v_name then
      raise exception 'unknown variable "%" in expression % of element %', v_name, expr ->> 'src', element_id
        using errcode = 'BP302';
    end if;
  end loop;
end;
$$;
comment on function bpm_private.expression__require_vars(jsonb, jsonb, text) is E'Raises BP302 naming the first variable the expression needs that is not set.';

create or replace function bpm_private.expression__test(expr jsonb, variables jsonb, element_id text)
returns boolean
language plpgsql
stable
set search_path = ''
as $$
declare
  v_result boolean;
  v_value jsonb;
begin
  perform bpm_private.expression__require_vars(expr, variables, element_id);
  if expr ? 'tree' then
    v_value := bpm_private.feel__value(expr, variables, element_id);
    v_result := case when pg_catalog.jsonb_typeof(v_value) = 'boolean' then (v_value #>> '{}')::boolean end;
  else
    v_result := coalesce(pg_catalog.jsonb_path_match(variables, (expr ->> 'path')::jsonpath, '{}', true),
      (bpm_private.path__diagnose(variables, expr, element_id, true) #>> '{}')::boolean);
  end if;
  if v_result is null then
    raise exception 'condition % of element % did not evaluate to a boolean', expr ->> 'src', element_id
      using errcode = 'BP303';
  end if;
  return v_result;
end;
$$;
comment on function bpm_private.expression__test(jsonb, jsonb, text) is E'Evaluates a compiled condition; BP302 for an unknown variable, BP303 if the result is not a boolean.';

-- Paths are evaluated silently (an error yields null), and only a null
-- result is evaluated again with errors on: an error there (arithmetic on a
-- value that is not a number, a division by zero) is BP303 naming the
-- expression and the element, not PostgreSQL's SQL/JSON error.
create or replace function bpm_private.path__diagnose(variables jsonb, expr jsonb, element_id text, is_condition boolean)
returns jsonb
language plpgsql
stable
set search_path = ''
as $$
begin
  if is_condition then
    return pg_catalog.to_jsonb(pg_catalog.jsonb_path_match(variables, (expr ->> 'path')::jsonpath));
  end if;
  return pg_catalog.jsonb_path_query_first(variables, (expr ->> 'path')::jsonpath);
exception when data_exception then
  raise exception 'expression % of element % cannot be evaluated: %', expr ->> 'src', element_id, sqlerrm using errcode = 'BP303';
end;
$$;
comment on function bpm_private.path__diagnose(jsonb, jsonb, text, boolean) is E'Evaluates an expression path with errors on: its value, or BP303 naming the expression, the element and the reason.';

-- A FEEL tree's value; a data error on the way (a numeric overflow, say) is
-- BP303 naming the expression and the element.
create or replace function bpm_private.feel__value(expr jsonb, variables jsonb, element_id text)
returns jsonb
language plpgsql
stable
set search_path = ''
as $$
begin
  return bpm_private.feel__eval(expr -> 'tree', variables);
exception when data_exception then
  raise exception 'expression % of element % cannot be evaluated: %', expr ->> 'src', element_id, sqlerrm using errcode = 'BP303';
end;
$$;
comment on function bpm_private.feel__value(jsonb, jsonb, text) is E'Evaluates a compiled FEEL tree expression; BP303 naming the expression, the element and the reason for a data error.';

-- A CompiledValue: {"literal": …} or {"expr": CompiledExpression}. Returns jsonb (null if absent).
create or replace function bpm_private.value__eval(value jsonb, variables jsonb, element_id text)
returns jsonb
language plpgsql
stable
set search_path = ''
as $$
begin
  if value is null or value = 'null'::jsonb then
    return null;
  end if;
  if value ? 'literal' then
    return value -> 'literal';
  end if;
  perform bpm_private.expression__require_vars(value -> 'expr', variables, element_id);
  if value -> 'expr' ? 'concat' then
    return bpm_private.value__concat(value -> 'expr' -> 'concat', variables);
  end if;
  if value -> 'expr' ? 'plus' then
    return bpm_private.value__plus(value -> 'expr' -> 'plus', variables);
  end if;
  if value -> 'expr' ? 'tree' then
    return bpm_private.feel__value(value -> 'expr', variables, element_id);
  end if;
  return coalesce(pg_catalog.jsonb_path_query_first(variables, (value -> 'expr' ->> 'path')::jsonpath, '{}', true),
    bpm_private.path__diagnose(variables, value -> 'expr', element_id, false));
end;
$$;
comment on function bpm_private.value__eval(jsonb, jsonb, text) is E'Evaluates a literal-or-expression value from the compiled graph.';

-- A string built from parts (a JUEL template, a FEEL concatenation): literal
-- text and jsonpaths whose results' text is appended. A part that yields
-- nothing adds nothing (nulls "empty", JUEL) or makes the value null (FEEL).
create or replace function bpm_private.value__concat(concat jsonb, variables jsonb)
returns jsonb
language plpgsql
stable
set search_path = ''
as $$
declare
  v_part jsonb;
  v_text text;
  v_out text := '';
begin
  for v_part in select p from pg_catalog.jsonb_array_elements(concat -> 'parts') p loop
    if v_part ? 'text' then
      v_text := v_part ->> 'text';
    else
      v_text := bpm_private.value__to_text(pg_catalog.jsonb_path_query_first(variables, (v_part ->> 'path')::jsonpath));
      if v_text is null and concat ->> 'nulls' = 'null' then
        return null;
      end if;
    end if;
    v_out := v_out || coalesce(v_text, '');
  end loop;
  return pg_catalog.to_jsonb(v_out);
end;
$$;
comment on function bpm_private.value__concat(jsonb, jsonb) is E'Evaluates a string built from parts (JUEL template, FEEL concatenation) over the variables.';

-- FEEL `a + b` over variables: strings concatenate, numbers add; a null
-- operand or operands of different types make it null (FEEL).
create or replace function bpm_private.value__plus(paths jsonb, variables jsonb)
returns jsonb
language plpgsql
stable
set search_path = ''
as $$
declare
  v_value jsonb;
  v_type text;
  v_text text := '';
  v_sum numeric := 0;
begin
  for v_i in 0 .. pg_catalog.jsonb_array_length(paths) - 1 loop
    v_value := pg_catalog.jsonb_path_query_first(variables, (paths ->> v_i)::jsonpath);
    if v_value is null or pg_catalog.jsonb_typeof(v_value) not in ('string', 'number')
       or (v_type is not null and pg_catalog.jsonb_typeof(v_value) <> v_type) then
      return null;
    end if;
    v_type := pg_catalog.jsonb_typeof(v_value);
    if v_type = 'string' then
      v_text := v_text || (v_value #>> '{}');
    else
      v_sum := v_sum + (v_value #>> '{}')::numeric;
    end if;
  end loop;
  return case when v_type = 'string' then pg_catalog.to_jsonb(v_text) else pg_catalog.to_jsonb(v_sum) end;
end;
$$;
comment on function bpm_private.value__plus(jsonb, jsonb) is E'Evaluates FEEL a + b over variables: strings concatenate, numbers add, anything else is null.';

create or replace function bpm_private.value__to_text(value jsonb)
returns text
language plpgsql
immutable
set search_path = ''
as $$
begin
  if value is null or value = 'null'::jsonb then
    return null;
  end if;
  if pg_catalog.jsonb_typeof(value) = 'string' then
    return value #>> '{}';
  end if;
  return value::text;
end;
$$;
comment on function bpm_private.value__to_text(jsonb) is E'A jsonb scalar as text (strings unquoted).';

-- A list of names: a JSON array of strings, or a comma-separated string.
create or replace function bpm_private.value__to_text_array(value jsonb)
returns text[]
language plpgsql
immutable
set search_path = ''
as $$
begin
  if value is null or value = 'null'::jsonb then
    return '{}';
  end if;
  if pg_catalog.jsonb_typeof(value) = 'array' then
    return array(select pg_catalog.btrim(e) from pg_catalog.jsonb_array_elements_text(value) e where pg_catalog.btrim(e) <> '');
  end if;
  return array(select pg_catalog.btrim(e) from pg_catalog.unnest(pg_catalog.string_to_array(bpm_private.value__to_text(value), ',')) e where pg_catalog.btrim(e) <> '');
end;
$$;
comment on function bpm_private.value__to_text_array(jsonb) is E'A JSON array or comma-separated string as text[] (trimmed, empty entries dropped).';

-- ISO 8601 date/date-time, or duration (P…) relative to now. Raises BP304.
create or replace function bpm_private.value__to_timestamp(value jsonb, element_id text, attribute text)
returns timestamptz
language plpgsql
stable
set search_path = ''
as $$
declare
  v_text text := bpm_private.value__to_text(value);
begin
  if v_text is null or v_text = '' then
    return null;
  end if;
  -- Values of the right shape can still be no date (2030-02-30, 25:00, +25:00)
  -- or out of range (P99999999999Y): PostgreSQL's 22007/22008/22009/22015
  -- become BP304 too.
  begin
    -- durations as the compiler accepts them: fractions written with '.' or ',' (PostgreSQL reads '.')
    if v_text ~ '^P(?!$)(\d+([.,]\d+)?Y)?(\d+([.,]\d+)?M)?(\d+([.,]\d+)?W)?(\d+([.,]\d+)?D)?(T(?=\d)(\d+([.,]\d+)?H)?(\d+([.,]\d+)?M)?(\d+([.,]\d+)?S)?)?$' then
      return pg_catalog.now() + pg_catalog.replace(v_text, ',', '.')::interval;
    end if;
    if v_text ~ '^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}(:?\d{2})?)?)?$' then
      if v_text ~ '(Z|[+-]\d{2}(:?\d{2})?)$' and v_text ~ '[T ]' then
        return v_text::timestamptz;
      end if;
      -- no offset: UTC, whatever the TimeZone of the session
      return v_text::timestamp at time zone 'UTC';
    end if;
  exception when invalid_datetime_format or datetime_field_overflow or invalid_time_zone_displacement_value
      or interval_field_overflow then
    null; -- reported below
  end;
  raise exception '% of element % is neither an ISO 8601 date nor a duration: "%"', attribute, element_id, v_text
    using errcode = 'BP304';
end;
$$;
comment on function bpm_private.value__to_timestamp(jsonb, text, text) is E'Due/follow-up dates and timers: ISO 8601 date-time (without offset: UTC), date (midnight UTC) or duration (from now); BP304 otherwise.';
--! EndIncluded expression/evaluate.sql
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
  perform graphile_worker.add_job('bpm_fire_timer',
    pg_catalog.json_build_object('tenant_id', tenant_id, 'subscription_id', subscription_id),
    run_at => due_at, job_key => 'bpm-timer:' || subscription_id::text, max_attempts => 5,
    priority => bpm_private.job__priority(priority));
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

-- Custom plans: remove_job deletes by job key in PL/pgSQL, and a generic plan
-- made while the queue was small (a sequential scan of its one page) stays
-- cached in the session as the queue grows, until the queue is next analysed:
-- one full scan per removal, a burst of timers fired three times slower
-- (test/db/events/job_plans.test.ts). Planning each removal costs about
-- 0.07 ms. (add_job has the same exposure in its lookup of a locked job by
-- key; there custom plans would cost 0.35 ms per timer armed, more than the
-- scans cost until autovacuum analyses the queue, so it keeps generic plans.)
create or replace function bpm_private.timer__dequeue(subscription_ids uuid[])
returns void
language plpgsql
volatile
set search_path = ''
set plan_cache_mode = force_custom_plan
as $$
begin
  perform graphile_worker.remove_job('bpm-timer:' || s::text) from unnest(subscription_ids) s;
end;
$$;
comment on function bpm_private.timer__dequeue(uuid[]) is E'Cancels the jobs of timer subscriptions (no-op for jobs already gone).';

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
  perform graphile_worker.add_job('bpm_continue',
    pg_catalog.json_build_object('tenant_id', tenant_id, 'token_id', token_id),
    job_key => 'bpm-async:' || token_id::text,
    max_attempts => coalesce((node -> 'jobRetry' ->> 'retries')::int, 3) + 1,
    priority => bpm_private.job__priority(bpm_private.node__job_priority(node, variables)));
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
--! Included elements/events.sql
-- Event behaviours (issue 4). A catching node (intermediate catch event,
-- receive task) or an event-based gateway makes its token wait (kind
-- 'event') and opens event subscriptions (buffered in s_token/s_data, written
-- by run__flush, timers enqueued as graphile-worker jobs). Activities with
-- message, signal or timer boundary events open one subscription per boundary
-- while they wait. A message catch consumes a buffered message (correlated
-- earlier with a ttl) right away instead of waiting.

-- The subscription spec of a catching node or boundary event (its `event`).
create or replace function bpm_private.subscription__spec(node jsonb, variables jsonb, business_key text)
returns jsonb
language plpgsql
stable
set search_path = ''
as $$
declare
  v_event jsonb := node -> 'event';
  v_kind text := v_event ->> 'kind';
  v_el text := node ->> 'id';
  v_spec jsonb;
begin
  if v_kind = 'message' then
    v_spec := pg_catalog.jsonb_build_object('kind', 'message',
      'name', bpm_private.value__to_text(bpm_private.value__eval(v_event -> 'name', variables, v_el)),
      'key', case when v_event -> 'correlationKey' is null or v_event -> 'correlationKey' = 'null'::jsonb then business_key
                  else bpm_private.value__to_text(bpm_private.value__eval(pg_catalog.jsonb_build_object('expr', v_event -> 'correlationKey'), variables, v_el)) end);
  elsif v_kind = 'signal' then
    v_spec := pg_catalog.jsonb_build_object('kind', 'signal',
      'name', bpm_private.value__to_text(bpm_private.value__eval(v_event -> 'name', variables, v_el)));
  elsif v_kind = 'timer' then
    v_spec := pg_catalog.jsonb_build_object('kind', 'timer', 'priority', bpm_private.node__job_priority(node, variables))
      || bpm_private.timer__arm(v_event -> 'timer', variables, v_el);
  elsif v_kind = 'conditional' then
    -- evaluated when it opens and when variables change (condition.sql)
    v_spec := '{"kind": "conditional"}'::jsonb;
  else
    return null;
  end if;
  if v_kind in ('message', 'signal') and coalesce(v_spec ->> 'name', '') = '' then
    raise exception '% name of element % is empty', v_kind, v_el using errcode = 'BP303';
  end if;
  return v_spec || pg_catalog.jsonb_build_object('id', bpm_private.uuid_v7(), 'element', v_el,
    'interrupting', coalesce((node ->> 'cancelActivity')::boolean, true));
end;
$$;
comment on function bpm_private.subscription__spec(jsonb, jsonb, text) is E'Evaluates what a catching node or boundary event waits for (message name and key, signal name, timer due time, a condition); null for other events.';

create or replace function bpm_private.subscription__add(st bpm_private.run_state, token_id uuid, spec jsonb)
returns bpm_private.run_state
language plpgsql
immutable
set search_path = ''
as $$
begin
  st.s_token := st.s_token || token_id;
  st.s_data := st.s_data || spec;
  return st;
end;
$$;
comment on function bpm_private.subscription__add(bpm_private.run_state, uuid, jsonb) is E'Buffers an event subscription of a waiting token.';

-- A message id delivered to an instance: correlating it again within a day
-- is a no-op (message__correlate).
create or replace function bpm_private.message_receipt__record(tenant_id text, message_id text, instance_id uuid)
returns void
language plpgsql
volatile
set search_path = ''
as $$
begin
  insert into bpm_private.message_receipt (tenant_id, message_id, instance_id)
  values (message_receipt__record.tenant_id, message_receipt__record.message_id, message_receipt__record.instance_id)
  on conflict on constraint message_receipt_pkey do update set instance_id = excluded.instance_id, received_at = excluded.received_at;
end;
$$;
comment on function bpm_private.message_receipt__record(text, text, uuid) is E'Records that a message id was delivered (to an instance).';

-- Takes the oldest unexpired buffered message a new subscription matches
-- (null key on either side matches any). Returns its variables. A message
-- with a message id leaves a receipt, so that sending it again is a no-op.
create or replace function bpm_private.message_buffer__take(tenant_id text, instance_id uuid, name text, correlation_key text)
returns jsonb
language plpgsql
volatile
set search_path = ''
as $$
declare
  v_id uuid;
  v_variables jsonb;
  v_message_id text;
begin
  -- the oldest match, found by index: with the key, without one, or (a
  -- receiver without a key) any; then taken unless another transaction holds it
  select m.id into v_id from (
    (select b.id, b.created_at from bpm.message_buffer b
     where b.tenant_id = message_buffer__take.tenant_id and b.name = message_buffer__take.name
       and b.correlation_key = message_buffer__take.correlation_key and b.expires_at > pg_catalog.now()
     order by b.created_at, b.id limit 1)
    union all
    (select b.id, b.created_at from bpm.message_buffer b
     where b.tenant_id = message_buffer__take.tenant_id and b.name = message_buffer__take.name
       and b.correlation_key is null and b.expires_at > pg_catalog.now()
     order by b.created_at, b.id limit 1)
    union all
    (select b.id, b.created_at from bpm.message_buffer b
     where message_buffer__take.correlation_key is null
       and b.tenant_id = message_buffer__take.tenant_id and b.name = message_buffer__take.name and b.expires_at > pg_catalog.now()
     order by b.created_at, b.id limit 1)
  ) m
  order by m.created_at, m.id
  limit 1;
  if v_id is null then
    return null;
  end if;
  delete from bpm.message_buffer b
  where b.tenant_id = message_buffer__take.tenant_id
    and b.id = (select x.id from bpm.message_buffer x where x.tenant_id = message_buffer__take.tenant_id and x.id = v_id for update skip locked)
  returning b.variables, b.message_id into v_variables, v_message_id;
  if not found then
    -- another transaction holds (takes) it: the oldest match it does not hold
    with picked as (
      select b.id from bpm.message_buffer b
      where b.tenant_id = message_buffer__take.tenant_id and b.name = message_buffer__take.name
        and b.expires_at > pg_catalog.now()
        and (b.correlation_key is null or message_buffer__take.correlation_key is null or b.correlation_key = message_buffer__take.correlation_key)
      order by b.created_at, b.id
      limit 1
      for update skip locked
    )
    delete from bpm.message_buffer b using picked p
    where b.tenant_id = message_buffer__take.tenant_id and b.id = p.id
    returning b.variables, b.message_id into v_variables, v_message_id;
  end if;
  if v_message_id is not null then
    perform bpm_private.message_receipt__record(tenant_id, v_message_id, instance_id);
  end if;
  return v_variables;
end;
$$;
comment on function bpm_private.message_buffer__take(text, uuid, text, text) is E'Consumes the oldest buffered message a new subscription matches (leaving a receipt for its message id); its variables, or null.';

-- An intermediate catch event or receive task: consume a buffered message
-- (the token leaves at once), else wait for its message, signal or timer.
create or replace function bpm_private.catch__enter(st bpm_private.run_state, graph jsonb, node jsonb, id uuid, via_flow text)
returns bpm_private.run_state
language plpgsql
volatile
set search_path = ''
as $$
declare
  v_spec jsonb := bpm_private.subscription__spec(node, st.variables, st.business_key);
  v_vars jsonb;
begin
  if v_spec is null then
    raise exception 'element % of type % has no message, signal or timer to wait for', node ->> 'id', node ->> 'type' using errcode = 'BP305';
  end if;
  if v_spec ->> 'kind' = 'message' then
    v_vars := bpm_private.message_buffer__take(st.tenant_id, st.instance_id, v_spec ->> 'name', v_spec ->> 'key');
    if v_vars is not null then
      st.variables := st.variables || v_vars;
      st.a_state[pg_catalog.array_position(st.a_id, id)] := 'completed';
      st := bpm_private.run__event(st, 'messageCorrelated', id, node ->> 'id');
      return bpm_private.node__leave(st, graph, node);
    end if;
  elsif v_spec ->> 'kind' = 'conditional'
        and bpm_private.condition__test(node, case when st.cur_scope is null then st.variables else bpm_private.scope__variables(st, st.cur_scope, null) end) then
    -- the condition holds already: no wait
    st.a_state[pg_catalog.array_position(st.a_id, id)] := 'completed';
    st := bpm_private.run__event(st, 'conditionFulfilled', id, node ->> 'id');
    return bpm_private.node__leave(st, graph, node);
  end if;
  st := bpm_private.wait__add(st, id, node ->> 'id', 'event', via_flow, null);
  st := bpm_private.subscription__add(st, id, v_spec);
  if node ->> 'type' = 'receiveTask' and bpm_private.node__has_subscriptions(graph, node) then
    st := bpm_private.boundary__arm(st, graph, node, id);
  end if;
  return st;
end;
$$;
comment on function bpm_private.catch__enter(bpm_private.run_state, jsonb, jsonb, uuid, text) is E'Catch event / receive task behaviour: takes a buffered message, passes a condition that holds, or waits for its message, signal, timer or condition.';

-- Event-based gateway: the token waits at the gateway with one subscription
-- per following catch event; the first event wins (subscription__trigger).
-- A buffered message for one of them, or a condition that holds already,
-- wins at once (document order).
create or replace function bpm_private.event_gateway__enter(st bpm_private.run_state, graph jsonb, node jsonb, id uuid, via_flow text)
returns bpm_private.run_state
language plpgsql
volatile
set search_path = ''
as $$
declare
  v_flow text;
  v_target jsonb;
  v_spec jsonb;
  v_specs jsonb[] := '{}';
  v_vars jsonb;
begin
  for v_i in 0 .. pg_catalog.jsonb_array_length(node -> 'out') - 1 loop
    v_flow := node -> 'out' ->> v_i;
    v_target := graph -> 'nodes' -> (graph -> 'flows' -> v_flow ->> 'target');
    v_spec := bpm_private.subscription__spec(v_target, st.variables, st.business_key);
    if v_spec is null then
      raise exception 'event-based gateway % leads to % which waits for no event', node ->> 'id', v_target ->> 'id' using errcode = 'BP305';
    end if;
    if v_spec ->> 'kind' = 'message' then
      v_vars := bpm_private.message_buffer__take(st.tenant_id, st.instance_id, v_spec ->> 'name', v_spec ->> 'key');
      if v_vars is not null then
        st.variables := st.variables || v_vars;
        st.a_state[pg_catalog.array_position(st.a_id, id)] := 'completed';
        st := bpm_private.run__event(st, 'messageCorrelated', id, v_target ->> 'id');
        return bpm_private.catch__passed(st, graph, v_target, v_flow);
      end if;
    elsif v_spec ->> 'kind' = 'conditional'
          and bpm_private.condition__test(v_target, case when st.cur_scope is null then st.variables else bpm_private.scope__variables(st, st.cur_scope, null) end) then
      -- its condition holds already: that path is taken at once
      st.a_state[pg_catalog.array_position(st.a_id, id)] := 'completed';
      st := bpm_private.run__event(st, 'conditionFulfilled', id, v_target ->> 'id');
      return bpm_private.catch__passed(st, graph, v_target, v_flow);
    end if;
    v_specs := v_specs || v_spec;
  end loop;
  st := bpm_private.wait__add(st, id, node ->> 'id', 'event', via_flow, null);
  foreach v_spec in array v_specs loop
    st := bpm_private.subscription__add(st, id, v_spec);
  end loop;
  return st;
end;
$$;
comment on function bpm_private.event_gateway__enter(bpm_private.run_state, jsonb, jsonb, uuid, text) is E'Event-based gateway behaviour: waits for the first of the events after it (message, timer, signal or condition); a buffered message or a condition that holds wins at once.';

-- A catch event whose event has happened: its activity row (completed) and
-- the token leaves it.
create or replace function bpm_private.catch__passed(st bpm_private.run_state, graph jsonb, node jsonb, via_flow text)
returns bpm_private.run_state
language plpgsql
volatile
set search_path = ''
as $$
begin
  st := bpm_private.activity__add(st, bpm_private.uuid_v7(), node ->> 'id', node ->> 'type', 'completed');
  return bpm_private.node__leave(st, graph, node);
end;
$$;
comment on function bpm_private.catch__passed(bpm_private.run_state, jsonb, jsonb, text) is E'Records a catch event that was triggered and lets the token leave it.';

-- Boundary events of an activity that just started waiting: one subscription
-- per message, signal, timer or conditional boundary (error and escalation boundaries
-- catch what is thrown at them and need none).
create or replace function bpm_private.boundary__arm(st bpm_private.run_state, graph jsonb, node jsonb, host_id uuid)
returns bpm_private.run_state
language plpgsql
volatile
set search_path = ''
as $$
declare
  v_boundary jsonb;
  v_spec jsonb;
begin
  for v_i in 0 .. pg_catalog.jsonb_array_length(node -> 'boundary') - 1 loop
    v_boundary := graph -> 'nodes' -> (node -> 'boundary' ->> v_i);
    continue when coalesce(v_boundary -> 'event' ->> 'kind', 'error') not in ('message', 'signal', 'timer', 'conditional');
    v_spec := bpm_private.subscription__spec(v_boundary, st.variables, st.business_key);
    st := bpm_private.subscription__add(st, host_id, v_spec);
  end loop;
  return st;
end;
$$;
comment on function bpm_private.boundary__arm(bpm_private.run_state, jsonb, jsonb, uuid) is E'Opens the subscriptions of an activity''s message, signal, timer and conditional boundary events.';

create or replace function bpm_private.node__has_subscriptions(graph jsonb, node jsonb)
returns boolean
language plpgsql
immutable
set search_path = ''
as $$
begin
  if node -> 'boundary' is null or pg_catalog.jsonb_array_length(node -> 'boundary') = 0 then
    return false;
  end if;
  for v_i in 0 .. pg_catalog.jsonb_array_length(node -> 'boundary') - 1 loop
    if graph -> 'nodes' -> (node -> 'boundary' ->> v_i) -> 'event' ->> 'kind' in ('message', 'signal', 'timer', 'conditional') then
      return true;
    end if;
  end loop;
  return false;
end;
$$;
comment on function bpm_private.node__has_subscriptions(jsonb, jsonb) is E'Whether an activity has message, signal, timer or conditional boundary events.';

-- Throw events: signals are broadcast and messages published (to a receiver
-- in the tenant, if any) after the run has been written (run__post). Errors
-- and escalations are caught by the nearest matching event subprocess or
-- boundary event on the way out through the token's scopes (error_catch.sql)
-- and then, in a called instance, by its call activity. An error nobody
-- catches raises an incident and the token waits at the end event
-- (retry_incident throws again); an escalation nobody catches passes.
create or replace function bpm_private.throw__enter(st bpm_private.run_state, graph jsonb, node jsonb, id uuid, via_flow text)
returns bpm_private.run_state
language plpgsql
volatile
set search_path = ''
as $$
declare
  v_event jsonb := node -> 'event';
  v_kind text := v_event ->> 'kind';
  v_el text := node ->> 'id';
  v_caught boolean := false;
  v_res record;
  v_parent uuid;
  v_message text;
begin
  if v_kind = 'signal' then
    st.p_data := st.p_data || pg_catalog.jsonb_build_object('kind', 'signal', 'element', v_el,
      'name', bpm_private.value__to_text(bpm_private.value__eval(v_event -> 'name', st.variables, v_el)));
  elsif v_kind = 'message' then
    st.p_data := st.p_data || pg_catalog.jsonb_build_object('kind', 'message', 'element', v_el,
      'name', bpm_private.value__to_text(bpm_private.value__eval(v_event -> 'name', st.variables, v_el)),
      'key', case when v_event -> 'correlationKey' is null or v_event -> 'correlationKey' = 'null'::jsonb then null
                  else bpm_private.value__to_text(bpm_private.value__eval(pg_catalog.jsonb_build_object('expr', v_event -> 'correlationKey'), st.variables, v_el)) end,
      'variables', st.variables);
  elsif v_kind in ('error', 'escalation') then
    if v_kind = 'error' or node ->> 'type' = 'endEvent' then
      st.a_state[pg_catalog.array_position(st.a_id, id)] := 'completed';
    end if;
    v_message := bpm_private.value__to_text(bpm_private.value__eval(v_event -> 'message', st.variables, v_el));
    v_res := bpm_private.error__catch(st, graph, v_kind, v_event ->> 'code', v_message);
    st := v_res.st;
    v_caught := v_res.caught;
    if not v_caught and st.is_new then
      v_parent := st.parent_id;
    elsif not v_caught then
      select i.parent_instance_id into v_parent from bpm.process_instance i where i.tenant_id = st.tenant_id and i.id = st.instance_id;
    end if;
    if not v_caught and v_parent is not null then
      -- the calling instance's call activity may catch it (after this run is written)
      st.p_data := st.p_data || pg_catalog.jsonb_build_object('kind', 'throwToParent', 'event', v_kind, 'element', v_el, 'code', v_event ->> 'code',
        'message', v_message);
    elsif not v_caught and v_kind = 'error' then
      st.a_state[pg_catalog.array_position(st.a_id, id)] := 'active';
      st := bpm_private.wait__add(st, id, v_el, 'incident', via_flow, null);
      st.p_data := st.p_data || pg_catalog.jsonb_build_object('kind', 'incident', 'element', v_el, 'type', 'unhandledBpmnError',
        'message', pg_catalog.format('BPMN error %s thrown by end event %s is not caught by any error boundary or event subprocess',
          coalesce(v_event ->> 'code', '(no code)'), v_el));
    end if;
    if node ->> 'type' = 'endEvent' and st.cur_scope is not null and st.a_state[pg_catalog.array_position(st.a_id, id)] = 'completed' then
      -- the token ended: its scope may be complete
      st.c_scope := st.c_scope || st.cur_scope;
    end if;
  end if;
  return st;
end;
$$;
comment on function bpm_private.throw__enter(bpm_private.run_state, jsonb, jsonb, uuid, text) is E'Throw and end events with a signal, message, error or escalation.';
--! EndIncluded elements/events.sql
--! Included api/instances.sql
create or replace function bpm_private.instance__cancel(instance bpm.process_instance, reason text)
returns bpm.process_instance
language plpgsql
volatile
set search_path = ''
as $$
declare
  v_child bpm.process_instance;
  v_result bpm.process_instance;
begin
  perform bpm_private.instance__cancel_tokens(instance.tenant_id, instance.id);
  for v_child in
    select * from bpm.process_instance c
    where c.tenant_id = instance.tenant_id and c.parent_instance_id = instance.id and (c.state in ('active', 'suspended')) is true
    order by c.id
    for update
  loop
    perform bpm_private.instance__cancel(v_child, reason);
  end loop;
  update bpm.process_instance i
  set state = 'cancelled', ended_at = pg_catalog.now(), end_reason = reason
  where i.tenant_id = instance.tenant_id and i.id = instance.id
  returning * into v_result;
  perform bpm_private.event__emit(instance.tenant_id, instance.id, array['instanceCancelled'], array[instance.id], array[null]);
  return v_result;
end;
$$;
comment on function bpm_private.instance__cancel(bpm.process_instance, text) is E'Cancels a locked instance, its tasks and its called child instances.';

create or replace function bpm.cancel_process_instance(instance_id uuid, reason text default null)
returns bpm.process_instance
language plpgsql
volatile
security definer
set search_path = ''
set plan_cache_mode = force_generic_plan
as $$
declare
  v_tenant text := bpm_private.require_context(array['bpm_admin'], 'cancel a process instance');
  v_instance bpm.process_instance := bpm_private.instance__lock(v_tenant, instance_id);
begin
  if v_instance.state not in ('active', 'suspended') then
    raise exception 'process instance % is % and cannot be cancelled', instance_id, v_instance.state using errcode = 'BP201';
  end if;
  return bpm_private.instance__cancel(v_instance, reason);
end;
$$;
comment on function bpm.cancel_process_instance(uuid, text) is E'Cancels an active or suspended instance: open user and external tasks become cancelled, timers are removed, called child instances are cancelled too. BP201 if it has already ended. Roles: bpm_admin.';

create or replace function bpm_private.instance__set_suspended(instance_id uuid, suspended boolean)
returns bpm.process_instance
language plpgsql
volatile
set search_path = ''
as $$
declare
  v_tenant text := bpm_private.require_context(array['bpm_admin'],
    case when suspended then 'suspend a process instance' else 'activate a process instance' end);
  v_instance bpm.process_instance := bpm_private.instance__lock(v_tenant, instance_id);
begin
  if v_instance.state not in ('active', 'suspended') then
    raise exception 'process instance % is % and cannot be %', instance_id, v_instance.state,
      case when suspended then 'suspended' else 'activated' end using errcode = 'BP201';
  end if;
  if (v_instance.state = 'suspended') = suspended then
    return v_instance;
  end if;
  update bpm.process_instance i
  set state = case when suspended then 'suspended' else 'active' end
  where i.tenant_id = v_tenant and i.id = instance_id
  returning * into v_instance;
  perform bpm_private.event__emit(v_tenant, instance_id,
    array[case when suspended then 'instanceSuspended' else 'instanceActivated' end], array[instance_id], array[null]);
  if not suspended then
    -- timers, asynchronous continuations and task deadlines that came due
    -- while suspended did nothing: schedule them again
    perform bpm_private.timer__enqueue(v_tenant, s.id, s.due_at, s.job_priority)
    from bpm.event_subscription s
    where s.tenant_id = v_tenant and s.instance_id = instance__set_suspended.instance_id and s.kind = 'timer' and s.incident_id is null;
    perform bpm_private.async__enqueue(v_tenant, t.id, bpm_private.instance__node(v_tenant, t.instance_id, t.element_id), v_instance.variables)
    from bpm_private.token t
    where t.tenant_id = v_tenant and t.instance_id = instance__set_suspended.instance_id and t.kind in ('asyncBefore', 'asyncAfter');
    -- task deadlines that passed while suspended (their jobs did nothing)
    perform bpm_private.user_task__enqueue_deadlines(v_tenant, u.id, pg_catalog.jsonb_build_object(
        'due_at', case when u.overdue_since is null then u.due_at end,
        'follow_up_at', case when u.follow_up_at <= pg_catalog.now() then u.follow_up_at end,
        'escalate_at', case when u.escalated_at is null then bpm_private.user_task__escalate_at(v_tenant, u) end))
    from bpm.user_task u
    where u.tenant_id = v_tenant and u.instance_id = instance__set_suspended.instance_id and (u.state = 'open') is true;
    -- conditions that came to hold while suspended
    if bpm_private.conditions__check(v_tenant, instance_id, null, null) then
      select * into v_instance from bpm.process_instance i where i.tenant_id = v_tenant and i.id = instance_id;
    end if;
  end if;
  return v_instance;
end;
$$;
comment on function bpm_private.instance__set_suspended(uuid, boolean) is E'Suspends or activates an instance (idempotent).';

create or replace function bpm.suspend_process_instance(instance_id uuid)
returns bpm.process_instance
language plpgsql
volatile
security definer
set search_path = ''
set plan_cache_mode = force_generic_plan
as $$
begin
  return bpm_private.instance__set_suspended(instance_id, true);
end;
$$;
comment on function bpm.suspend_process_instance(uuid) is E'Suspends an active instance: task completion, message delivery and external-task fetch/complete are rejected (BP202) and its timers wait until it is activated. Suspending a suspended instance is a no-op; an ended one raises BP201. Roles: bpm_admin.';

create or replace function bpm.activate_process_instance(instance_id uuid)
returns bpm.process_instance
language plpgsql
volatile
security definer
set search_path = ''
set plan_cache_mode = force_generic_plan
as $$
begin
  return bpm_private.instance__set_suspended(instance_id, false);
end;
$$;
comment on function bpm.activate_process_instance(uuid) is E'Activates a suspended instance (no-op when active; BP201 when ended). Roles: bpm_admin.';

create or replace function bpm.set_variables(instance_id uuid, variables jsonb)
returns bpm.process_instance
language plpgsql
volatile
security definer
set search_path = ''
set plan_cache_mode = force_generic_plan
as $$
declare
  v_tenant text := bpm_private.require_context(array['bpm_admin'], 'set variables');
  v_variables jsonb := bpm_private.require_object(variables, 'variables');
  v_instance bpm.process_instance := bpm_private.instance__lock(v_tenant, instance_id);
  v_before jsonb;
begin
  if v_instance.state not in ('active', 'suspended') then
    raise exception 'process instance % is % and its variables cannot change', instance_id, v_instance.state using errcode = 'BP201';
  end if;
  v_before := v_instance.variables;
  update bpm.process_instance i set variables = i.variables || v_variables
  where i.tenant_id = v_tenant and i.id = instance_id
  returning * into v_instance;
  perform bpm_private.event__emit(v_tenant, instance_id, array['variablesUpdated'], array[instance_id], array[null]);
  -- conditional events that hold now are triggered (active instances; suspended ones when activated)
  if v_instance.state = 'active' and v_instance.variables <> v_before
     and bpm_private.conditions__check(v_tenant, instance_id, v_before, v_instance.variables) then
    select * into v_instance from bpm.process_instance i where i.tenant_id = v_tenant and i.id = instance_id;
  end if;
  return v_instance;
end;
$$;
comment on function bpm.set_variables(uuid, jsonb) is E'Merges variables into an instance per top-level key (a null value is stored as JSON null); conditional events whose condition now holds are triggered. BP201 when the instance has ended. Roles: bpm_admin.';
--! EndIncluded api/instances.sql
--! Included api/external_tasks.sql
create or replace function bpm.fetch_and_lock(topic text, worker_id text, max_tasks int default 1, lock_duration interval default '5 minutes')
returns setof bpm.external_task
language plpgsql
volatile
security definer
set search_path = ''
set plan_cache_mode = force_generic_plan
as $$
declare
  v_tenant text := bpm_private.require_context(array['bpm_admin', 'bpm_engine'], 'fetch external tasks');
begin
  if coalesce(worker_id, '') = '' then
    raise exception 'invalid argument: worker_id is required' using errcode = 'BP401';
  end if;
  if max_tasks is null or max_tasks < 1 or max_tasks > 1000 then
    raise exception 'invalid argument: max_tasks must be between 1 and 1000, got %', max_tasks using errcode = 'BP401';
  end if;
  if lock_duration is null or lock_duration <= interval '0' then
    raise exception 'invalid argument: lock_duration must be positive' using errcode = 'BP401';
  end if;
  -- highest priority first, then oldest available (picked and returned in that order); tasks locked
  -- by a concurrent fetch are skipped
  return query
  with picked as (
    select e.id, e.instance_id
    from bpm.external_task e
    where e.tenant_id = v_tenant and e.topic = fetch_and_lock.topic and e.state = 'open'
      and e.available_at <= pg_catalog.now()
      and (e.retries is null or e.retries > 0)
      and (e.locked_until is null or e.locked_until < pg_catalog.now())
      -- a primary-key lookup per candidate (an EXISTS may be planned as a
      -- scan of the tenant's instances per task before the first ANALYZE)
      and (select i.state from bpm.process_instance i where i.tenant_id = v_tenant and i.id = e.instance_id) = 'active'
    -- (the order of external_task_fetch_priority_idx: the scan stops after max_tasks
    -- fetchable ones, however long the queue)
    order by e.priority desc, e.available_at, e.created_at, e.id
    limit max_tasks
    for update of e skip locked
  ), locked as (
    update bpm.external_task e
    set worker_id = fetch_and_lock.worker_id,
      locked_until = pg_catalog.now() + lock_duration,
      variables = (select i.variables from bpm.process_instance i where i.tenant_id = v_tenant and i.id = p.instance_id)
        || coalesce(e.local_variables, '{}')
    from picked p
    where e.tenant_id = v_tenant and e.id = p.id
    returning e.*
  )
  select l.* from locked l order by l.priority desc, l.available_at, l.created_at, l.id;
end;
$$;
comment on function bpm.fetch_and_lock(text, text, int, interval) is E'Locks up to max_tasks open external tasks of a topic in the caller''s tenant for a worker (highest priority first, then oldest; FOR UPDATE SKIP LOCKED so concurrent workers never get the same task) and returns them with the variables each one sees: the instance variables, overlaid by its local_variables (scope locals, loop variables, input mappings). Skips suspended instances, tasks in back-off and tasks with an open incident. Roles: bpm_admin, bpm_engine.';

-- Locks the external task's instance and checks the task is open and locked
-- by this worker. Raises BP104, BP203, BP205, and (when must_be_active) BP202/BP201.
create or replace function bpm_private.external_task__lock(tenant_id text, task_id uuid, worker_id text, action text, out task bpm.external_task, out instance bpm.process_instance)
language plpgsql
volatile
set search_path = ''
as $$
begin
  instance := bpm_private.instance__lock_tree(tenant_id,
    (select e.instance_id from bpm.external_task e where e.tenant_id = external_task__lock.tenant_id and e.id = task_id));
  if instance.id is null then
    raise exception 'external task % not found', task_id using errcode = 'BP104';
  end if;
  -- read after the lock: sees what a concurrent call on the instance committed
  select * into task from bpm.external_task e where e.tenant_id = external_task__lock.tenant_id and e.id = task_id;
  if task.state <> 'open' then
    raise exception 'external task % is % and cannot %', task_id, task.state, action using errcode = 'BP203';
  end if;
  if task.worker_id is distinct from external_task__lock.worker_id then
    raise exception 'external task % is not locked by worker % (locked by %)', task_id, worker_id, coalesce(task.worker_id, 'nobody')
      using errcode = 'BP205';
  end if;
end;
$$;
comment on function bpm_private.external_task__lock(text, uuid, text, text) is E'Locks the instance and checks an external task is open and held by the worker.';

create or replace function bpm.complete_external_task(task_id uuid, worker_id text, variables jsonb default '{}')
returns bpm.external_task
language plpgsql
volatile
security definer
set search_path = ''
set plan_cache_mode = force_generic_plan
as $$
declare
  v_tenant text := bpm_private.require_context(array['bpm_admin', 'bpm_engine'], 'complete an external task');
  v_variables jsonb := bpm_private.require_object(variables, 'variables');
  v_task bpm.external_task;
  v_instance bpm.process_instance;
  v_locked record;
begin
  -- ===== LOCK the instance (loading its graph), then close the task if every rule holds
  -- (a called instance locks the root of its call tree first, see complete_task)
  select i as instance, d.graph, d.inclusive_joins into v_locked
  from bpm.process_instance i
  join bpm.process_definition d on d.tenant_id = i.tenant_id and d.id = i.definition_id
  where i.tenant_id = v_tenant
    and i.id = (select e.instance_id from bpm.external_task e where e.tenant_id = v_tenant and e.id = task_id)
    and i.root_instance_id is null
  for update of i;
  if not found then
    select i as instance, d.graph, d.inclusive_joins into v_locked
    from bpm_private.instance__lock_tree(v_tenant, (select e.instance_id from bpm.external_task e where e.tenant_id = v_tenant and e.id = task_id)) i
    join bpm.process_definition d on d.tenant_id = i.tenant_id and d.id = i.definition_id;
  end if;
  v_instance := v_locked.instance;
  update bpm.external_task e
  set state = 'completed', ended_at = pg_catalog.now(), locked_until = null
  where e.tenant_id = v_tenant and e.id = task_id and (e.state = 'open') is true and e.worker_id = complete_external_task.worker_id
    and v_instance.state = 'active'
  returning * into v_task;
  if not found then
    -- ===== GUARD: say precisely why (BP104, BP203, BP205, BP202/BP201)
    perform bpm_private.external_task__lock(v_tenant, task_id, worker_id, 'complete it');
    perform bpm_private.instance__require_active(v_instance, 'complete external task ' || task_id);
  end if;
  -- ===== LEAVE the task
  perform bpm_private.token__move(v_instance, v_locked.graph, v_locked.inclusive_joins, v_task.id, v_task.element_id, null, v_variables, 'externalTaskCompleted');
  return v_task;
end;
$$;
comment on function bpm.complete_external_task(uuid, text, jsonb) is E'Completes an external task locked by worker_id and continues the instance; variables merge per top-level key into the instance, or into the local of that name of the nearest enclosing subprocess that has one. Errors: BP104 not found, BP203 not open, BP205 not locked by this worker, BP202 instance suspended. Roles: bpm_admin, bpm_engine.';

create or replace function bpm.fail_external_task(task_id uuid, worker_id text, error_message text, retries int, retry_after interval default '0')
returns bpm.external_task
language plpgsql
volatile
security definer
set search_path = ''
set plan_cache_mode = force_generic_plan
as $$
declare
  v_tenant text := bpm_private.require_context(array['bpm_admin', 'bpm_engine'], 'fail an external task');
  v_task bpm.external_task;
  v_incident uuid;
begin
  if retries is null or retries < 0 then
    raise exception 'invalid argument: retries must be 0 or more, got %', retries using errcode = 'BP401';
  end if;
  if retry_after is null or retry_after < interval '0' then
    raise exception 'invalid argument: retry_after must not be negative' using errcode = 'BP401';
  end if;
  v_task := (bpm_private.external_task__lock(v_tenant, task_id, worker_id, 'fail it')).task;
  update bpm.external_task e
  set retries = fail_external_task.retries, error_message = fail_external_task.error_message,
    worker_id = null, locked_until = null, available_at = pg_catalog.now() + retry_after
  where e.tenant_id = v_tenant and e.id = task_id
  returning * into v_task;
  if retries = 0 then
    insert into bpm.incident (tenant_id, instance_id, element_id, incident_type, message, external_task_id)
    values (v_tenant, v_task.instance_id, v_task.element_id, 'failedExternalTask', error_message, v_task.id)
    returning id into v_incident;
  elsif retry_after = interval '0' then
    perform bpm_private.external_task__notify(v_tenant);
  end if;
  perform bpm_private.event__emit(v_tenant, v_task.instance_id,
    array['externalTaskFailed'] || case when v_incident is not null then array['incidentCreated'] else '{}' end,
    array[v_task.id] || case when v_incident is not null then array[v_incident] else '{}' end,
    array[v_task.element_id] || case when v_incident is not null then array[v_task.element_id] else '{}' end);
  return v_task;
end;
$$;
comment on function bpm.fail_external_task(uuid, text, text, int, interval) is E'Reports a failure of an external task locked by worker_id. retries = how many retries remain; the task is fetchable again after retry_after. With 0 retries an incident failedExternalTask is raised. Roles: bpm_admin, bpm_engine.';

-- error_message: what the worker says about the error; a catching event
-- with camunda:errorMessageVariable stores it (and the code by
-- camunda:errorCodeVariable).
create or replace function bpm.throw_bpmn_error(task_id uuid, worker_id text, error_code text, variables jsonb default '{}', error_message text default null)
returns bpm.external_task
language plpgsql
volatile
security definer
set search_path = ''
set plan_cache_mode = force_generic_plan
as $$
declare
  v_tenant text := bpm_private.require_context(array['bpm_admin', 'bpm_engine'], 'throw a BPMN error');
  v_variables jsonb := bpm_private.require_object(variables, 'variables');
  v_task bpm.external_task;
  v_instance bpm.process_instance;
  v_boundary text;
  v_graph jsonb;
  v_joins text[];
  v_locked record;
  v_incident uuid;
  v_message text := 'BPMN error ' || coalesce(error_code, '(no code)') || coalesce(': ' || error_message, '');
begin
  v_locked := bpm_private.external_task__lock(v_tenant, task_id, worker_id, 'throw an error from it');
  v_task := v_locked.task;
  v_instance := v_locked.instance;
  perform bpm_private.instance__require_active(v_instance, 'throw a BPMN error from external task ' || task_id);
  select d.graph, d.inclusive_joins into v_graph, v_joins from bpm.process_definition d
  where d.tenant_id = v_tenant and d.id = v_instance.definition_id;
  v_boundary := bpm_private.error_boundary__find(v_graph, v_task.element_id, error_code);
  if v_boundary is null and bpm_private.token__throw(v_instance, v_graph, v_joins, v_task.id, v_task.element_id, 'error', error_code, error_message, v_variables) then
    -- caught on the way out (an enclosing subprocess, event subprocess, multi-instance body)
    update bpm.external_task e set error_message = v_message, locked_until = null
    where e.tenant_id = v_tenant and e.id = task_id
    returning * into v_task;
    return v_task;
  end if;
  if v_boundary is null then
    update bpm.external_task e
    set retries = 0, error_message = v_message || ' is not caught', worker_id = null, locked_until = null
    where e.tenant_id = v_tenant and e.id = task_id
    returning * into v_task;
    insert into bpm.incident (tenant_id, instance_id, element_id, incident_type, message, external_task_id)
    values (v_tenant, v_task.instance_id, v_task.element_id, 'unhandledBpmnError',
      v_message || ' thrown by element ' || v_task.element_id || ' is not caught by any error boundary event', v_task.id)
    returning id into v_incident;
    perform bpm_private.event__emit(v_tenant, v_task.instance_id, array['externalTaskFailed', 'incidentCreated'],
      array[v_task.id, v_incident], array[v_task.element_id, v_task.element_id]);
    return v_task;
  end if;
  update bpm.external_task e
  set state = 'cancelled', ended_at = pg_catalog.now(), locked_until = null, error_message = v_message
  where e.tenant_id = v_tenant and e.id = task_id
  returning * into v_task;
  perform bpm_private.token__move(v_instance, v_graph, v_joins, v_task.id, v_task.element_id, v_boundary,
    v_variables || bpm_private.catch__variables(v_graph -> 'nodes' -> v_boundary, error_code, error_message), 'externalTaskCancelled');
  return v_task;
end;
$$;
comment on function bpm.throw_bpmn_error(uuid, text, text, jsonb, text) is E'Reports a business error for an external task locked by worker_id: the matching error boundary event (by code, else a catch-all) interrupts the task and its path is taken; else the nearest matching catch on the way out (an error event subprocess or a boundary of an enclosing subprocess, which is cancelled); variables merge into the instance, and the catching event''s camunda:errorCodeVariable / errorMessageVariable receive error_code / error_message. Nothing catches it: incident unhandledBpmnError (retry_incident makes the task available again). Roles: bpm_admin, bpm_engine.';

create or replace function bpm.retry_incident(incident_id uuid, retries int default 1)
returns bpm.incident
language plpgsql
volatile
security definer
set search_path = ''
set plan_cache_mode = force_generic_plan
as $$
declare
  v_tenant text := bpm_private.require_context(array['bpm_admin', 'bpm_engine'], 'retry an incident');
  v_incident bpm.incident;
  v_instance_id uuid;
begin
  if retries is null or retries < 1 then
    raise exception 'invalid argument: retries must be at least 1, got %', retries using errcode = 'BP401';
  end if;
  select i.instance_id into v_instance_id from bpm.incident i where i.tenant_id = v_tenant and i.id = incident_id;
  if not found then
    raise exception 'incident % not found', incident_id using errcode = 'BP105';
  end if;
  perform bpm_private.instance__lock(v_tenant, v_instance_id);
  select * into v_incident from bpm.incident i where i.tenant_id = v_tenant and i.id = incident_id;
  if v_incident.resolved_at is not null then
    raise exception 'incident % is already resolved', incident_id using errcode = 'BP206';
  end if;
  update bpm.external_task e
  set retries = retry_incident.retries, available_at = pg_catalog.now()
  where e.tenant_id = v_tenant and e.id = v_incident.external_task_id and (e.state = 'open') is true;
  if found then
    perform bpm_private.external_task__notify(v_tenant);
  end if;
  update bpm.incident i set resolved_at = pg_catalog.now()
  where i.tenant_id = v_tenant and i.id = incident_id
  returning * into v_incident;
  if v_incident.external_task_id is null then
    perform bpm_private.incident__retry_element(v_incident);
  end if;
  perform bpm_private.event__emit(v_tenant, v_incident.instance_id, array['incidentResolved'], array[v_incident.id], array[v_incident.element_id]);
  return v_incident;
end;
$$;
comment on function bpm.retry_incident(uuid, int) is E'Resolves an open incident and makes its work available again with the given retries (external task: fetchable again; failedJob of a timer: the timer fires again; unhandled error end event: it is entered again). Errors: BP105 not found, BP206 already resolved. Roles: bpm_admin, bpm_engine.';

-- Incidents without an external task: a timer or asynchronous continuation
-- that failed (its job runs again now), or an error end event nobody caught (its token
-- enters it again, which raises a new incident unless a catcher appeared), or
-- a called instance's error nobody caught (thrown at the call activity again).
create or replace function bpm_private.incident__retry_element(incident bpm.incident)
returns void
language plpgsql
volatile
set search_path = ''
as $$
declare
  v_sub bpm.event_subscription;
  v_token uuid;
  v_data jsonb;
  v_locked record;
  st bpm_private.run_state;
  v_graph jsonb;
begin
  update bpm.event_subscription s set incident_id = null
  where s.tenant_id = incident.tenant_id and s.incident_id = incident.id
  returning * into v_sub;
  if found then
    perform bpm_private.timer__enqueue(v_sub.tenant_id, v_sub.id, pg_catalog.now(), v_sub.job_priority);
    return;
  end if;
  select t.id into v_token from bpm_private.token t
  where t.tenant_id = incident.tenant_id and t.instance_id = incident.instance_id and t.element_id = incident.element_id
    and t.kind in ('asyncBefore', 'asyncAfter')
  limit 1;
  if found then
    perform bpm_private.async__enqueue(incident.tenant_id, v_token, bpm_private.instance__node(incident.tenant_id, incident.instance_id, incident.element_id),
      (select i.variables from bpm.process_instance i where i.tenant_id = incident.tenant_id and i.id = incident.instance_id));
    return;
  end if;
  -- a call activity whose called instance threw an error nobody caught: thrown again
  update bpm_private.token t set data = t.data - 'failed'
  where t.tenant_id = incident.tenant_id and t.instance_id = incident.instance_id and t.element_id = incident.element_id
    and t.kind = 'call' and t.data ? 'failed'
  returning t.data into v_data;
  if found then
    perform bpm_private.call__child_threw(incident.tenant_id, (v_data ->> 'child')::uuid, v_data -> 'failed_with');
    return;
  end if;
  delete from bpm_private.token t
  where t.tenant_id = incident.tenant_id and t.instance_id = incident.instance_id and t.element_id = incident.element_id and t.kind = 'incident'
  returning t.id into v_token;
  if not found then
    return;
  end if;
  select i as instance, d.graph, d.inclusive_joins into v_locked
  from bpm.process_instance i join bpm.process_definition d on d.tenant_id = i.tenant_id and d.id = i.definition_id
  where i.tenant_id = incident.tenant_id and i.id = incident.instance_id;
  v_graph := bpm_private.graph__in_memory(v_locked.graph);
  st := bpm_private.run__begin(incident.tenant_id, incident.instance_id, (v_locked.instance).variables, false, v_locked.inclusive_joins);
  st.business_key := (v_locked.instance).business_key;
  st := bpm_private.run__resume(st, v_graph -> 'nodes' -> incident.element_id, v_token);
  st := bpm_private.activity__end(st, array[v_token], 'cancelled');
  st := bpm_private.run__push(st, incident.element_id, null);
  st := bpm_private.run__drain(st, v_graph);
  perform bpm_private.run__finish(st, v_locked.instance);
end;
$$;
comment on function bpm_private.incident__retry_element(bpm.incident) is E'Retries an incident that has no external task: fires the failed timer again, or re-enters the error end event.';

-- Wake-up calls for workers: a worker that LISTENs on channel
-- bpm_external_task holds a lease per tenant it serves; while one is live,
-- transactions that make an external task of the tenant fetchable notify the
-- channel (no payload: every listener of the cluster sees it). Without a
-- lease nothing is sent, because NOTIFY makes committing transactions queue
-- behind one another; workers then find tasks by polling.
create or replace function bpm_private.external_task__notify(tenant_id text)
returns void
language plpgsql
volatile
set search_path = ''
as $$
begin
  if exists (select 1 from bpm_private.task_listener l
             where l.tenant_id = external_task__notify.tenant_id and l.expires_at > pg_catalog.now()) then
    perform pg_catalog.pg_notify('bpm_external_task', '');
  end if;
end;
$$;
comment on function bpm_private.external_task__notify(text) is E'Notifies channel bpm_external_task (empty payload) when a worker holds a live lease of the tenant.';

create or replace function bpm.register_task_listener(listener_id text, ttl interval default '30 seconds')
returns timestamptz
language plpgsql
volatile
security definer
set search_path = ''
set plan_cache_mode = force_generic_plan
as $$
declare
  v_tenant text := bpm_private.require_context(array['bpm_admin', 'bpm_engine'], 'listen for external tasks');
  v_expires timestamptz;
begin
  perform bpm_private.lease__check(listener_id, ttl);
  -- expired leases go; a ttl of 0 releases this one (a worker that stops)
  delete from bpm_private.task_listener l where l.tenant_id = v_tenant
    and (l.expires_at < pg_catalog.now() or (ttl = interval '0' and l.listener_id = register_task_listener.listener_id));
  if ttl = interval '0' then
    return pg_catalog.now();
  end if;
  insert into bpm_private.task_listener (tenant_id, listener_id, expires_at)
  values (v_tenant, register_task_listener.listener_id, pg_catalog.now() + ttl)
  on conflict on constraint task_listener_pkey do update set expires_at = excluded.expires_at
  returning task_listener.expires_at into v_expires;
  return v_expires;
end;
$$;
comment on function bpm.register_task_listener(text, interval) is E'Worker-side: while registered (until ttl passes; renew it), transactions that make an external task of the caller''s tenant fetchable (created, failed with retry_after 0, incident retried) NOTIFY channel bpm_external_task with an empty payload, so LISTENing workers fetch at once instead of at their next poll. A ttl of 0 releases the lease at once (a worker that stops). Returns the expiry. Errors: BP401 malformed arguments. Roles: bpm_admin, bpm_engine.';
--! EndIncluded api/external_tasks.sql
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
