--! Previous: sha1:d45466213c5e3c8085fd1f6a87239d0a286ae672
--! Hash: sha1:f0924c0ced2813bade6b5b1003a9ba5eb0c49471
--! Message: One definition of timer re-arming, transient job errors and date reading

-- One definition each of re-arming a fired timer, of what counts as a
-- transient error for jobs, and of reading a date (a cycle's start follows
-- the engine's date rule).
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
-- again replaces it, removing it cancels it).
create or replace function bpm_private.timer__enqueue(tenant_id text, subscription_id uuid, due_at timestamptz)
returns void
language plpgsql
volatile
set search_path = ''
as $$
begin
  perform graphile_worker.add_job('bpm_fire_timer',
    pg_catalog.json_build_object('tenant_id', tenant_id, 'subscription_id', subscription_id),
    run_at => due_at, job_key => 'bpm-timer:' || subscription_id::text, max_attempts => 5);
end;
$$;
comment on function bpm_private.timer__enqueue(text, uuid, timestamptz) is E'Schedules (or reschedules) the job that fires a timer subscription.';

create or replace function bpm_private.timer__dequeue(subscription_ids uuid[])
returns void
language plpgsql
volatile
set search_path = ''
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
    perform bpm_private.timer__enqueue(sub.tenant_id, sub.id, sub.due_at);
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

create or replace function bpm_private.async__enqueue(tenant_id text, token_id uuid, node jsonb)
returns void
language plpgsql
volatile
set search_path = ''
as $$
begin
  perform graphile_worker.add_job('bpm_continue',
    pg_catalog.json_build_object('tenant_id', tenant_id, 'token_id', token_id),
    job_key => 'bpm-async:' || token_id::text,
    max_attempts => coalesce((node -> 'jobRetry' ->> 'retries')::int, 3) + 1);
end;
$$;
comment on function bpm_private.async__enqueue(text, uuid, jsonb) is E'Schedules the job that continues an asynchronous token (retries from camunda:failedJobRetryTimeCycle, default 3).';

create or replace function bpm_private.async__wait(st bpm_private.run_state, node jsonb, kind text, via_flow text, token_id uuid)
returns bpm_private.run_state
language plpgsql
volatile
set search_path = ''
as $$
begin
  st := bpm_private.wait__add(st, token_id, node ->> 'id', kind, via_flow, null);
  perform bpm_private.async__enqueue(st.tenant_id, token_id, node);
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
                and i.element_id = v_token.element_id and i.incident_type = 'failedJob' and i.resolved_at is null) then
    return null;
  end if;
  begin
    select d.graph, d.inclusive_joins into v_locked from bpm.process_definition d
    where d.tenant_id = v_tenant and d.id = v_instance.definition_id;
    v_graph := bpm_private.graph__in_memory(v_locked.graph);
    delete from bpm_private.token t where t.tenant_id = v_tenant and t.id = token_id;
    st := bpm_private.run__begin(v_tenant, v_instance_id, v_instance.variables, false, v_locked.inclusive_joins);
    st.business_key := v_instance.business_key;
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
--! Included engine/subscription.sql
-- Triggering event subscriptions: a message, signal or timer reached what
-- waits for it. The caller has locked the instance and re-read the
-- subscription after the lock (so a subscription triggers at most once).

-- Closes subscriptions of waiting tokens (and cancels their timer jobs).
create or replace function bpm_private.subscriptions__remove(tenant_id text, instance_id uuid, token_ids uuid[])
returns void
language plpgsql
volatile
set search_path = ''
as $$
declare
  v_timers uuid[];
begin
  with removed as (
    delete from bpm.event_subscription s
    where s.tenant_id = subscriptions__remove.tenant_id and s.instance_id = subscriptions__remove.instance_id
      and (token_ids is null or s.token_id = any(token_ids))
    returning s.id, s.kind
  )
  select coalesce(array_agg(r.id) filter (where r.kind = 'timer'), '{}') into v_timers from removed r;
  if pg_catalog.cardinality(v_timers) > 0 then
    perform bpm_private.timer__dequeue(v_timers);
  end if;
end;
$$;
comment on function bpm_private.subscriptions__remove(text, uuid, uuid[]) is E'Removes the event subscriptions of the given waiting tokens (null: all of the instance) and their timer jobs.';

-- Starts an instance at a given start event (null: the none start event,
-- BP308 without one; message, signal and timer starts: their triggers).
create or replace function bpm_private.instance__start(definition bpm.process_definition, start_node text, variables jsonb, business_key text, event_kind text, event_subject uuid)
returns bpm.process_instance
language plpgsql
volatile
set search_path = ''
as $$
declare
  -- the graph detoasted once (graph__in_memory, inlined: this is every start's path)
  v_graph jsonb := '{}'::jsonb || definition.graph;
  st bpm_private.run_state := bpm_private.run__begin(definition.tenant_id, pg_catalog.gen_random_uuid(), variables, true, definition.inclusive_joins);
  v_done boolean;
  v_instance bpm.process_instance;
begin
  if start_node is null then
    -- start_process: the none start event
    start_node := v_graph ->> 'start';
    if start_node is null then
      raise exception 'process % has no none start event: it starts by message, signal or timer only', definition.key using errcode = 'BP308';
    end if;
  end if;
  -- walk in memory first: an instance that ends within this call is inserted
  -- completed (run__event and run__push inlined)
  st.business_key := business_key;
  st.x_kind := array['instanceStarted'];
  st.x_subject := array[st.instance_id];
  st.x_el := array[null::text];
  if event_kind is not null then
    st := bpm_private.run__event(st, event_kind, event_subject, start_node);
  end if;
  st.q_node := array[start_node];
  st.q_flow := array[null::text];
  st := bpm_private.run__drain(st, v_graph);
  v_done := st.terminated or pg_catalog.cardinality(st.w_id) = 0;
  if v_done then
    st := bpm_private.run__event(st, 'instanceCompleted', st.instance_id, null);
  end if;
  insert into bpm.process_instance (tenant_id, id, definition_id, business_key, state, variables, started_by, ended_at)
  values (definition.tenant_id, st.instance_id, definition.id, business_key,
    case when v_done then 'completed' else 'active' end, st.variables, nullif(pg_catalog.current_setting('bpm.user_id', true), ''),
    case when v_done then pg_catalog.now() end)
  returning * into v_instance;
  perform bpm_private.run__flush(st);
  return v_instance;
end;
$$;
comment on function bpm_private.instance__start(bpm.process_definition, text, jsonb, text, text, uuid) is E'Starts an instance of a definition at a start event and runs it until every token waits.';

-- The activity a boundary event interrupts: its task or token ends as cancelled.
create or replace function bpm_private.host__cancel(st bpm_private.run_state, host jsonb, host_id uuid)
returns bpm_private.run_state
language plpgsql
volatile
set search_path = ''
as $$
declare
  v_type text := host ->> 'type';
begin
  if v_type = 'userTask' then
    update bpm.user_task u set state = 'cancelled', completed_at = pg_catalog.now()
    where u.tenant_id = st.tenant_id and u.id = host_id and u.state = 'open';
    st := bpm_private.run__event(st, 'taskCancelled', host_id, host ->> 'id');
  elsif coalesce(host ->> 'topic', '') <> '' then
    update bpm.external_task e set state = 'cancelled', ended_at = pg_catalog.now(), worker_id = null, locked_until = null
    where e.tenant_id = st.tenant_id and e.id = host_id and e.state = 'open';
    st := bpm_private.run__event(st, 'externalTaskCancelled', host_id, host ->> 'id');
  else
    delete from bpm_private.token t where t.tenant_id = st.tenant_id and t.id = host_id;
  end if;
  perform bpm_private.subscriptions__remove(st.tenant_id, st.instance_id, array[host_id]);
  return bpm_private.activity__end(st, array[host_id], 'cancelled');
end;
$$;
comment on function bpm_private.host__cancel(bpm_private.run_state, jsonb, uuid) is E'Cancels the task or token an interrupting boundary event interrupts, with its other subscriptions.';

create or replace function bpm_private.subscription__trigger(sub bpm.event_subscription, variables jsonb, event_kind text)
returns bpm.process_instance
language plpgsql
volatile
set search_path = ''
as $$
declare
  v_locked record;
  v_graph jsonb;
  v_node jsonb;
  v_token_el text;
  st bpm_private.run_state;
begin
  select i as instance, d.graph, d.inclusive_joins into v_locked
  from bpm.process_instance i
  join bpm.process_definition d on d.tenant_id = i.tenant_id and d.id = i.definition_id
  where i.tenant_id = sub.tenant_id and i.id = sub.instance_id;
  v_graph := bpm_private.graph__in_memory(v_locked.graph);
  st := bpm_private.run__begin(sub.tenant_id, sub.instance_id, (v_locked.instance).variables || variables, false, v_locked.inclusive_joins);
  st.business_key := (v_locked.instance).business_key;
  st := bpm_private.run__event(st, event_kind, sub.id, sub.element_id);
  v_node := v_graph -> 'nodes' -> sub.element_id;
  if v_node ->> 'type' = 'boundaryEvent' then
    if sub.interrupting then
      st := bpm_private.host__cancel(st, v_graph -> 'nodes' -> (v_node ->> 'attachedTo'), sub.token_id);
    elsif sub.kind = 'timer' then
      -- a non-interrupting cycle fires again while the activity waits
      perform bpm_private.timer__rearm_or_close(sub);
    end if;
    st := bpm_private.run__push(st, sub.element_id, null);
  else
    -- a catch event or receive task (the subscription's own element), or an
    -- event-based gateway whose first event this is: the token and every
    -- subscription of it go (a receive task's boundary events too)
    delete from bpm_private.token t where t.tenant_id = sub.tenant_id and t.id = sub.token_id
    returning t.element_id into v_token_el;
    perform bpm_private.subscriptions__remove(sub.tenant_id, sub.instance_id, array[sub.token_id]);
    st := bpm_private.activity__end(st, array[sub.token_id], 'completed');
    if v_token_el = sub.element_id then
      st := bpm_private.node__leave(st, v_graph, v_node);
    else
      st := bpm_private.catch__passed(st, v_graph, v_node, null);
    end if;
  end if;
  st := bpm_private.run__drain(st, v_graph);
  return bpm_private.run__finish(st, v_locked.instance);
end;
$$;
comment on function bpm_private.subscription__trigger(bpm.event_subscription, jsonb, text) is E'A message, signal or timer reached a subscription: the catch event, receive task or event-based gateway continues, or the boundary event starts its path (interrupting: its activity is cancelled). The instance is locked by the caller.';

-- What a run leaves to do once it is written: broadcast thrown signals,
-- publish thrown messages, raise incidents of unhandled errors, schedule
-- the deadline jobs of new user tasks.
create or replace function bpm_private.run__post(st bpm_private.run_state)
returns void
language plpgsql
volatile
set search_path = ''
as $$
declare
  v_action jsonb;
begin
  foreach v_action in array st.p_data loop
    if v_action ->> 'kind' = 'signal' then
      perform bpm_private.signal__broadcast(st.tenant_id, v_action ->> 'name', '{}');
    elsif v_action ->> 'kind' = 'message' then
      perform bpm_private.message__correlate(st.tenant_id, v_action ->> 'name', v_action ->> 'key', v_action -> 'variables', null, null, false);
    elsif v_action ->> 'kind' = 'deadline' then
      perform bpm_private.user_task__enqueue_deadlines(st.tenant_id, (v_action ->> 'task')::uuid, v_action -> 'data');
    elsif v_action ->> 'kind' = 'incident' then
      perform bpm_private.incident__raise(st.tenant_id, st.instance_id, v_action ->> 'element', v_action ->> 'type', v_action ->> 'message');
    end if;
  end loop;
end;
$$;
comment on function bpm_private.run__post(bpm_private.run_state) is E'Broadcasts signals, publishes messages and raises incidents a run produced, after it is written.';

-- Raises an incident of an instance (with its incidentCreated event).
create or replace function bpm_private.incident__raise(tenant_id text, instance_id uuid, element_id text, incident_type text, message text)
returns uuid
language plpgsql
volatile
set search_path = ''
as $$
declare
  v_incident uuid;
begin
  insert into bpm.incident (tenant_id, instance_id, element_id, incident_type, message)
  values (incident__raise.tenant_id, incident__raise.instance_id, incident__raise.element_id, incident__raise.incident_type, incident__raise.message)
  returning id into v_incident;
  perform bpm_private.event__emit(tenant_id, instance_id, array['incidentCreated'], array[v_incident], array[element_id]);
  return v_incident;
end;
$$;
comment on function bpm_private.incident__raise(text, uuid, text, text, text) is E'Raises an incident (failedJob, unhandledBpmnError, …) and records its event.';
--! EndIncluded engine/subscription.sql
--! Included api/events.sql
-- Messages, signals and timers (issue 4).

-- Delivers a message to exactly one receiver: a waiting subscription of an
-- instance whose key matches (a null key on either side matches any), else a
-- message start event (starts an instance with the key as business key).
-- Several matches: BP207. None: buffered when ttl is given (returns null),
-- else BP106 when required, else dropped (a message thrown by a process that
-- nobody waits for). message_id: a repeated id within a day, or while the
-- first is buffered, is a no-op returning what the first returned.
create or replace function bpm_private.message__correlate(tenant_id text, name text, correlation_key text, variables jsonb, ttl interval, message_id text, required boolean)
returns bpm.process_instance
language plpgsql
volatile
set search_path = ''
as $$
declare
  v_subs bpm.event_subscription[];
  v_sub bpm.event_subscription;
  v_instance bpm.process_instance;
  v_definition bpm.process_definition;
  v_first uuid;
begin
  if message_id is not null then
    perform pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtextextended(tenant_id || '/message/' || message_id, 0));
    select r.instance_id into v_first from bpm_private.message_receipt r
    where r.tenant_id = message__correlate.tenant_id and r.message_id = message__correlate.message_id
      and r.received_at > pg_catalog.now() - interval '1 day';
    if found then
      select * into v_instance from bpm.process_instance i where i.tenant_id = message__correlate.tenant_id and i.id = v_first;
      return v_instance;
    end if;
    if exists (select 1 from bpm.message_buffer b where b.tenant_id = message__correlate.tenant_id
               and b.message_id = message__correlate.message_id and b.expires_at > pg_catalog.now()) then
      return null;
    end if;
  end if;
  for v_attempt in 1 .. 5 loop
    v_subs := array(
      select s from bpm.event_subscription s
      where s.tenant_id = message__correlate.tenant_id and s.kind = 'message' and s.name = message__correlate.name
        and s.instance_id is not null and s.incident_id is null
        and (s.correlation_key is null or message__correlate.correlation_key is null or s.correlation_key = message__correlate.correlation_key)
      order by s.created_at, s.id limit 2);
    exit when pg_catalog.cardinality(v_subs) = 0;
    if pg_catalog.cardinality(v_subs) > 1 then
      raise exception 'message % (correlation key %) matches more than one waiting receiver (instances % and %)',
        name, coalesce(correlation_key, 'null'), (v_subs[1]).instance_id, (v_subs[2]).instance_id using errcode = 'BP207';
    end if;
    v_instance := bpm_private.instance__lock(tenant_id, (v_subs[1]).instance_id);
    -- read after the lock: a concurrent delivery may have taken it
    select * into v_sub from bpm.event_subscription s where s.tenant_id = message__correlate.tenant_id and s.id = (v_subs[1]).id;
    continue when not found;
    perform bpm_private.instance__require_active(v_instance, 'receive message ' || name);
    v_instance := bpm_private.subscription__trigger(v_sub, variables, 'messageCorrelated');
    if message_id is not null then
      perform bpm_private.message_receipt__record(tenant_id, message_id, v_instance.id);
    end if;
    return v_instance;
  end loop;
  -- message start events of the latest versions
  v_subs := array(
    select s from bpm.event_subscription s
    where s.tenant_id = message__correlate.tenant_id and s.kind = 'message' and s.name = message__correlate.name and s.instance_id is null
    order by s.created_at, s.id limit 2);
  if pg_catalog.cardinality(v_subs) > 1 then
    raise exception 'message % starts more than one process (definitions % and %)', name, (v_subs[1]).definition_id, (v_subs[2]).definition_id
      using errcode = 'BP207';
  end if;
  if pg_catalog.cardinality(v_subs) = 1 then
    select * into v_definition from bpm.process_definition d where d.tenant_id = message__correlate.tenant_id and d.id = (v_subs[1]).definition_id;
    v_instance := bpm_private.instance__start(v_definition, (v_subs[1]).element_id, variables, correlation_key, 'messageCorrelated', (v_subs[1]).id);
    if message_id is not null then
      perform bpm_private.message_receipt__record(tenant_id, message_id, v_instance.id);
    end if;
    return v_instance;
  end if;
  if ttl is not null then
    delete from bpm.message_buffer b where b.tenant_id = message__correlate.tenant_id and b.expires_at <= pg_catalog.now()
      and b.message_id = message__correlate.message_id;
    insert into bpm.message_buffer (tenant_id, id, name, correlation_key, variables, message_id, expires_at)
    values (tenant_id, pg_catalog.gen_random_uuid(), name, correlation_key, variables, message_id, pg_catalog.now() + ttl);
    perform bpm_private.event__emit(tenant_id, null, array['messageBuffered'], array[null::uuid], array[null]);
    return null;
  end if;
  if required then
    raise exception 'no process instance or message start event waits for message % (correlation key %)', name, coalesce(correlation_key, 'null')
      using errcode = 'BP106';
  end if;
  return null;
end;
$$;
comment on function bpm_private.message__correlate(text, text, text, jsonb, interval, text, boolean) is E'Delivers a message to its one receiver, starts a process, buffers it (ttl) or raises BP106/BP207.';

create or replace function bpm.correlate_message(message_name text, correlation_key text default null, variables jsonb default '{}', ttl interval default null, message_id text default null)
returns bpm.process_instance
language plpgsql
volatile
security definer
set search_path = ''
set plan_cache_mode = force_generic_plan
as $$
declare
  v_tenant text := bpm_private.require_context(array['bpm_admin', 'bpm_user', 'bpm_engine'], 'correlate a message');
  v_variables jsonb := bpm_private.require_object(variables, 'variables');
begin
  if coalesce(message_name, '') = '' then
    raise exception 'invalid argument: message_name is required' using errcode = 'BP401';
  end if;
  if ttl is not null and ttl <= interval '0' then
    raise exception 'invalid argument: ttl must be positive' using errcode = 'BP401';
  end if;
  if message_id = '' then
    raise exception 'invalid argument: message_id must not be empty' using errcode = 'BP401';
  end if;
  return bpm_private.message__correlate(v_tenant, message_name, correlation_key, v_variables, ttl, message_id, true);
end;
$$;
comment on function bpm.correlate_message(text, text, jsonb, interval, text) is E'Delivers a message to exactly one receiver in the caller''s tenant: a waiting message catch event, receive task, message boundary event or event-based gateway whose correlation key matches (zeebe: the subscription''s correlationKey; camunda: the instance''s business key; a null key on either side matches any), else a message start event (starts an instance, business key = correlation_key, and returns it). Variables merge into the instance. More than one match: BP207. No match: with ttl the message is kept and delivered to the first matching subscription that opens before it expires (returns null); without, BP106. message_id: a repeated correlation with the same id within a day (or while the first is buffered) is a no-op. A suspended receiver: BP202. Roles: bpm_admin, bpm_user, bpm_engine.';

-- Triggers every signal subscription of the tenant (instances one at a time,
-- in id order, so concurrent broadcasts cannot deadlock; suspended instances
-- are skipped) and starts the processes with that signal start event.
create or replace function bpm_private.signal__broadcast(tenant_id text, name text, variables jsonb)
returns int
language plpgsql
volatile
set search_path = ''
as $$
declare
  v_candidate record;
  v_sub bpm.event_subscription;
  v_instance bpm.process_instance;
  v_definition bpm.process_definition;
  v_count int := 0;
begin
  for v_candidate in
    select s.id, s.instance_id from bpm.event_subscription s
    where s.tenant_id = signal__broadcast.tenant_id and s.kind = 'signal' and s.name = signal__broadcast.name
      and s.instance_id is not null and s.incident_id is null
    order by s.instance_id, s.created_at, s.id
  loop
    v_instance := bpm_private.instance__lock(tenant_id, v_candidate.instance_id);
    continue when v_instance.state <> 'active';
    select * into v_sub from bpm.event_subscription s where s.tenant_id = signal__broadcast.tenant_id and s.id = v_candidate.id;
    continue when not found;
    perform bpm_private.subscription__trigger(v_sub, variables, 'signalBroadcast');
    v_count := v_count + 1;
  end loop;
  for v_candidate in
    select s.id, s.definition_id, s.element_id from bpm.event_subscription s
    where s.tenant_id = signal__broadcast.tenant_id and s.kind = 'signal' and s.name = signal__broadcast.name and s.instance_id is null
    order by s.created_at, s.id
  loop
    select * into v_definition from bpm.process_definition d where d.tenant_id = signal__broadcast.tenant_id and d.id = v_candidate.definition_id;
    perform bpm_private.instance__start(v_definition, v_candidate.element_id, variables, null, 'signalBroadcast', v_candidate.id);
    v_count := v_count + 1;
  end loop;
  return v_count;
end;
$$;
comment on function bpm_private.signal__broadcast(text, text, jsonb) is E'Triggers every signal catch event, boundary and start event of a signal in a tenant; returns how many.';

create or replace function bpm.broadcast_signal(signal_name text, variables jsonb default '{}')
returns int
language plpgsql
volatile
security definer
set search_path = ''
set plan_cache_mode = force_generic_plan
as $$
declare
  v_tenant text := bpm_private.require_context(array['bpm_admin', 'bpm_user', 'bpm_engine'], 'broadcast a signal');
  v_variables jsonb := bpm_private.require_object(variables, 'variables');
begin
  if coalesce(signal_name, '') = '' then
    raise exception 'invalid argument: signal_name is required' using errcode = 'BP401';
  end if;
  return bpm_private.signal__broadcast(v_tenant, signal_name, v_variables);
end;
$$;
comment on function bpm.broadcast_signal(text, jsonb) is E'Broadcasts a signal in the caller''s tenant: every waiting signal catch event and signal boundary event is triggered (variables merge into those instances) and every process with that signal start event is started. Returns how many were triggered plus started. Suspended instances are skipped. Roles: bpm_admin, bpm_user, bpm_engine.';

-- A timer start event fired: start an instance, then arm the next cycle or
-- close the subscription.
create or replace function bpm_private.timer_start__fire(sub bpm.event_subscription)
returns bpm.process_instance
language plpgsql
volatile
set search_path = ''
as $$
declare
  v_definition bpm.process_definition;
  v_instance bpm.process_instance;
begin
  select * into v_definition from bpm.process_definition d where d.tenant_id = sub.tenant_id and d.id = sub.definition_id;
  v_instance := bpm_private.instance__start(v_definition, sub.element_id, '{}', null, 'timerFired', sub.id);
  perform bpm_private.timer__rearm_or_close(sub);
  return v_instance;
end;
$$;
comment on function bpm_private.timer_start__fire(bpm.event_subscription) is E'Fires a timer start event: starts an instance and re-arms a cycle.';

-- The job handler's entry point (graphile-worker task bpm_fire_timer). It
-- may run more than once or late: it fires only a subscription that still
-- exists and is due, of an active instance; otherwise it does nothing. A
-- continuation that fails becomes an incident failedJob (retry_incident
-- fires it again); transient errors (serialization, deadlock) are raised so
-- that the job is retried.
create or replace function bpm.fire_timer(subscription_id uuid)
returns bpm.process_instance
language plpgsql
volatile
security definer
set search_path = ''
set plan_cache_mode = force_generic_plan
as $$
declare
  v_tenant text := bpm_private.require_context(array['bpm_admin', 'bpm_engine'], 'fire a timer');
  v_sub bpm.event_subscription;
  v_instance bpm.process_instance;
  v_incident uuid;
begin
  select * into v_sub from bpm.event_subscription s where s.tenant_id = v_tenant and s.id = subscription_id and s.kind = 'timer';
  if not found or v_sub.incident_id is not null then
    return null;
  end if;
  if v_sub.instance_id is null then
    select * into v_sub from bpm.event_subscription s where s.tenant_id = v_tenant and s.id = subscription_id for update;
    if not found or v_sub.due_at > pg_catalog.now() then
      return null;
    end if;
  else
    v_instance := bpm_private.instance__lock(v_tenant, v_sub.instance_id);
    select * into v_sub from bpm.event_subscription s where s.tenant_id = v_tenant and s.id = subscription_id;
    -- gone (fired, cancelled), not due (re-armed), or the instance waits for activation
    if not found or v_sub.due_at > pg_catalog.now() or v_instance.state <> 'active' then
      return null;
    end if;
  end if;
  begin
    if v_sub.instance_id is null then
      return bpm_private.timer_start__fire(v_sub);
    end if;
    return bpm_private.subscription__trigger(v_sub, '{}', 'timerFired');
  exception when others then
    if bpm_private.error__is_transient(sqlstate) then
      raise;
    end if;
    if v_sub.instance_id is null then
      raise;
    end if;
    v_incident := bpm_private.incident__raise(v_tenant, v_sub.instance_id, v_sub.element_id, 'failedJob',
      pg_catalog.format('timer %s of element %s failed: %s (SQLSTATE %s)', v_sub.id, v_sub.element_id, sqlerrm, sqlstate));
    update bpm.event_subscription s set incident_id = v_incident where s.tenant_id = v_tenant and s.id = v_sub.id;
    return v_instance;
  end;
end;
$$;
comment on function bpm.fire_timer(uuid) is E'Fires a due timer subscription (called by the worker''s bpm_fire_timer job; idempotent: a timer already fired, removed, re-armed for later, or of a suspended or ended instance is left alone and null returned). A failing continuation raises an incident failedJob instead of an error. Roles: bpm_admin, bpm_engine.';
--! EndIncluded api/events.sql
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
