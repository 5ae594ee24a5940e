--! Previous: sha1:c0bd16e452978efa5494bfafa3d26a2397bd22e6
--! Hash: sha1:11ba2c23e6f2a783913bd2ad0ad4e19953b00d6c
--! Message: Timer jobs removed set-based; engine RLS policy without init plan; a timer batch reads each instance once

-- Timer jobs are removed in two set-based statements with generic plans
-- (sequential scans off) instead of one graphile_worker.remove_job call per
-- job, each planned afresh and each sending a NOTIFY no worker acts on.
-- The engine's statements (run by bpm_owner) read the tenant setting in their
-- row-level security policy directly instead of through an init plan.
-- A batch of due timers locks each instance and reads its definition in one
-- statement, and fires the timer without reading either again.
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

-- What graphile_worker.remove_job does, for all the given timers in two
-- statements: a job no worker holds goes; a job a worker holds (the firing
-- timer's own job, running now) loses its key and its remaining attempts, so
-- it never runs again. remove_job itself costs more per timer than firing it
-- needs: one call per job, planned afresh each time (force_custom_plan, see
-- below), and a NOTIFY per removed job that no worker acts on. Its plans: a
-- generic plan made while the queue was small (a sequential scan of its one
-- page) stays cached in the session as the queue grows, until the queue is
-- next analysed: one full scan per removal, a burst of timers fired three
-- times slower (test/db/events/job_plans.test.ts). Here the plans are generic
-- and made with sequential scans off, so the job key index is taken whatever
-- the statistics say (the plans stay this function's). (add_job has the same
-- exposure in its lookup of a locked job by key; it is called once per timer
-- armed and keeps its generic plans.)
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
--! Included setup/policies.sql
-- Row-level security: enabled and FORCED on every table (so bpm_owner, which
-- runs the security definer API functions, is filtered too). An unset or
-- empty bpm.tenant_id matches no row (fails closed). Two forms of one rule:
-- - tenant_isolation, for the API roles' own queries: the tenant is read
--   once per statement through (select ...), an init plan, so that a query
--   filtering many rows outside an index (a report) does not read the
--   setting again for each row (a sequential scan of 88,000 history rows:
--   9.5 ms this way, 15.5 ms with the setting read per row);
-- - engine_tenant_isolation, for bpm_owner, which runs the engine's
--   statements (every transition): the setting itself, which an index scan
--   on the tenant_id-leading indexes the engine reads by evaluates once, and
--   no init plan (a plan node of its own, set up again at every execution of
--   every statement on a table: 4 % of a timer firing's instructions, 3 % of
--   a task completion's).
do $$
declare
  v_table regclass;
begin
  foreach v_table in array array[
    'bpm.deployment', 'bpm.process_definition', 'bpm.decision_definition', 'bpm.process_instance', 'bpm.user_task',
    'bpm.external_task', 'bpm.incident', 'bpm.activity_instance', 'bpm.event', 'bpm.event_subscription',
    'bpm.message_buffer', 'bpm_private.token', 'bpm_private.event_listener', 'bpm_private.message_receipt',
    'bpm_private.task_listener', 'bpm_private.start_request', 'bpm_private.deferred_delivery', 'bpm_private.task_offer'
  ]::regclass[] loop
    execute pg_catalog.format('alter table %s enable row level security', v_table);
    execute pg_catalog.format('alter table %s force row level security', v_table);
    execute pg_catalog.format('drop policy if exists tenant_isolation on %s', v_table);
    execute pg_catalog.format(
      'create policy tenant_isolation on %s to bpm_admin, bpm_designer, bpm_engine '
      'using (tenant_id = (select nullif(pg_catalog.current_setting(''bpm.tenant_id'', true), ''''))) '
      'with check (tenant_id = (select nullif(pg_catalog.current_setting(''bpm.tenant_id'', true), '''')))',
      v_table);
    execute pg_catalog.format('drop policy if exists engine_tenant_isolation on %s', v_table);
    execute pg_catalog.format(
      'create policy engine_tenant_isolation on %s to bpm_owner '
      'using (tenant_id = nullif(pg_catalog.current_setting(''bpm.tenant_id'', true), '''')) '
      'with check (tenant_id = nullif(pg_catalog.current_setting(''bpm.tenant_id'', true), ''''))',
      v_table);
  end loop;
end;
$$;

-- bpm_user: definitions of its tenant; only the tasks offered to it; only the
-- instances it started or holds a task of.
drop policy if exists user_reads_definitions on bpm.process_definition;
create policy user_reads_definitions on bpm.process_definition for select to bpm_user
  using (tenant_id = (select nullif(pg_catalog.current_setting('bpm.tenant_id', true), '')));

drop policy if exists user_reads_decisions on bpm.decision_definition;
create policy user_reads_decisions on bpm.decision_definition for select to bpm_user
  using (tenant_id = (select nullif(pg_catalog.current_setting('bpm.tenant_id', true), '')));

drop policy if exists user_reads_offered_tasks on bpm.user_task;
create policy user_reads_offered_tasks on bpm.user_task for select to bpm_user
  using (
    tenant_id = (select nullif(pg_catalog.current_setting('bpm.tenant_id', true), ''))
    and (
      assignee = (select nullif(pg_catalog.current_setting('bpm.user_id', true), ''))
      or (assignee is null and (
        candidate_users @> array[(select nullif(pg_catalog.current_setting('bpm.user_id', true), ''))]
        or candidate_groups && (select pg_catalog.string_to_array(nullif(pg_catalog.current_setting('bpm.groups', true), ''), ','))
      ))
    )
  );

drop policy if exists user_reads_own_instances on bpm.process_instance;
create policy user_reads_own_instances on bpm.process_instance for select to bpm_user
  using (
    tenant_id = (select nullif(pg_catalog.current_setting('bpm.tenant_id', true), ''))
    and (
      started_by = (select nullif(pg_catalog.current_setting('bpm.user_id', true), ''))
      or exists (select 1 from bpm.user_task t where t.tenant_id = process_instance.tenant_id and t.instance_id = process_instance.id)
    )
  );

drop policy if exists user_reads_events_of_own_instances on bpm.event;
create policy user_reads_events_of_own_instances on bpm.event for select to bpm_user
  using (
    tenant_id = (select nullif(pg_catalog.current_setting('bpm.tenant_id', true), ''))
    and exists (select 1 from bpm.process_instance i where i.tenant_id = event.tenant_id and i.id = event.instance_id)
  );

-- Reads: API roles read the contract's tables (under the policies above).
-- Writes: never granted; state changes only through the API functions.
grant select on bpm.deployment, bpm.process_definition, bpm.decision_definition, bpm.process_instance, bpm.user_task,
  bpm.external_task, bpm.incident, bpm.activity_instance, bpm.event, bpm.event_subscription, bpm.message_buffer
  to bpm_admin, bpm_designer, bpm_engine;
grant select on bpm.process_definition, bpm.decision_definition, bpm.process_instance, bpm.user_task, bpm.event to bpm_user;
--! EndIncluded setup/policies.sql
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
-- BP308 without one; message, signal and timer starts: their triggers);
-- parent_instance_id: the calling instance of a call activity's child.
create or replace function bpm_private.instance__start(definition bpm.process_definition, start_node text, variables jsonb, business_key text, event_kind text, event_subject uuid,
  parent_instance_id uuid default null)
returns bpm.process_instance
language plpgsql
volatile
set search_path = ''
as $$
declare
  -- the graph detoasted once (graph__in_memory, inlined: this is every start's path)
  v_graph jsonb := '{}'::jsonb || definition.graph;
  st bpm_private.run_state := bpm_private.run__begin(definition.tenant_id, bpm_private.uuid_v7(), variables, true, definition.inclusive_joins);
  v_done boolean;
  v_instance bpm.process_instance;
begin
  if start_node is null then
    -- start_process: the none start event
    start_node := v_graph ->> 'start';
    if start_node is null then
      raise exception 'process % has no none start event: it starts by message, signal, timer or condition only', definition.key using errcode = 'BP308';
    end if;
  end if;
  if v_graph -> 'nodes' -> start_node ? 'initiator' then
    -- camunda:initiator: the starting user's id (null when none is set)
    st.variables := st.variables || pg_catalog.jsonb_build_object(v_graph -> 'nodes' -> start_node ->> 'initiator', bpm_private.current_user_id());
  end if;
  if business_key is not null and v_graph ? 'uniqueBusinessKey' then
    perform bpm_private.business_key__claim(definition, business_key);
  end if;
  -- walk in memory first: an instance that ends within this call is inserted
  -- completed (run__event and run__push inlined)
  st.business_key := business_key;
  st.parent_id := parent_instance_id;
  st.x_kind := array['instanceStarted'];
  st.x_subject := array[st.instance_id];
  st.x_el := array[null::text];
  if event_kind is not null then
    st := bpm_private.run__event(st, event_kind, event_subject, start_node);
  end if;
  st.q_node := array[start_node];
  st.q_flow := array[null::text];
  st.q_scope := array[null::uuid];
  if v_graph ? 'eventSubprocesses' then
    st := bpm_private.event_subprocess__arm(st, v_graph, v_graph -> 'eventSubprocesses', null);
  end if;
  st := bpm_private.run__drain(st, v_graph);
  v_done := st.terminated or pg_catalog.cardinality(st.w_id) = 0;
  if v_done and pg_catalog.cardinality(st.s_token) > 0 then
    -- an instance that ends at once keeps none of its event subprocesses' subscriptions
    st := bpm_private.subscriptions__drop(st, array[st.instance_id]);
  end if;
  if v_done then
    st := bpm_private.run__event(st, 'instanceCompleted', st.instance_id, null);
  end if;
  insert into bpm.process_instance (tenant_id, id, definition_id, business_key, state, variables, started_by, ended_at, parent_instance_id, root_instance_id)
  values (definition.tenant_id, st.instance_id, definition.id, business_key,
    case when v_done then 'completed' else 'active' end, st.variables, nullif(pg_catalog.current_setting('bpm.user_id', true), ''),
    case when v_done then pg_catalog.now() end, instance__start.parent_instance_id,
    case when instance__start.parent_instance_id is not null then
      (select coalesce(p.root_instance_id, p.id) from bpm.process_instance p
       where p.tenant_id = definition.tenant_id and p.id = instance__start.parent_instance_id) end)
  returning * into v_instance;
  perform bpm_private.run__flush(st);
  -- conditional events that hold as they open (condition.sql)
  if (v_graph ? 'conditionals' and not v_done and bpm_private.conditions__check(definition.tenant_id, st.instance_id, null, null))
     or pg_catalog.cardinality(st.p_data) > 0 then
    -- what the flush started (called instances, conditional events) may have moved it on
    select * into v_instance from bpm.process_instance i where i.tenant_id = definition.tenant_id and i.id = st.instance_id;
  end if;
  return v_instance;
end;
$$;
comment on function bpm_private.instance__start(bpm.process_definition, text, jsonb, text, text, uuid, uuid) is E'Starts an instance of a definition at a start event (of a calling instance, for call activities) and runs it until every token waits.';

-- A token resumes in the scope it waited in: the scope of its activity row
-- (only looked up for elements inside a subprocess or multi-instance body,
-- and compensation handlers, which run in their compensation's scope).
create or replace function bpm_private.run__resume(st bpm_private.run_state, node jsonb, token_id uuid)
returns bpm_private.run_state
language plpgsql
volatile
set search_path = ''
as $$
begin
  if node ? 'scope' or node ? 'loop' or node ? 'isForCompensation' then
    st.cur_scope := (select a.scope_id from bpm.activity_instance a where a.tenant_id = st.tenant_id and a.id = token_id);
    st := bpm_private.scope__load(st, st.cur_scope);
  end if;
  return st;
end;
$$;
comment on function bpm_private.run__resume(bpm_private.run_state, jsonb, uuid) is E'Sets the run''s current scope to the scope a waiting token is in.';

-- A waiting token's activity completed: it leaves over its flows, or, as an
-- inner instance of a multi-instance body, is counted there.
create or replace function bpm_private.node__complete(st bpm_private.run_state, graph jsonb, node jsonb, token_id uuid)
returns bpm_private.run_state
language plpgsql
volatile
set search_path = ''
as $$
declare
  v_pos int := pg_catalog.array_position(st.l_id, st.cur_scope);
  v_vars jsonb;
begin
  if node ? 'outputs' and node ->> 'type' not in ('subProcess', 'callActivity') then
    -- output mappings of a task, over what it sees (its inputs included)
    v_vars := case when st.cur_scope is null then st.variables else bpm_private.scope__variables(st, st.cur_scope, token_id) end;
    v_vars := v_vars || bpm_private.io__map(node -> 'inputs', v_vars, node ->> 'id');
    st := bpm_private.scope__set_variables(st, st.cur_scope, bpm_private.io__map(node -> 'outputs', v_vars, node ->> 'id'));
  end if;
  if node ? 'loop' and v_pos is not null and st.l_kind[v_pos] = 'body' and st.l_el[v_pos] = node ->> 'id' then
    return bpm_private.mi__inner_done(st, graph, node, st.cur_scope, token_id);
  end if;
  return bpm_private.node__leave(st, graph, node);
end;
$$;
comment on function bpm_private.node__complete(bpm_private.run_state, jsonb, jsonb, uuid) is E'A wait state''s activity completed: leave it, or count it in its multi-instance body.';

create or replace function bpm_private.subscription__trigger(sub bpm.event_subscription, variables jsonb, event_kind text)
returns bpm.process_instance
language plpgsql
volatile
set search_path = ''
as $$
declare
  v_locked record;
begin
  select i as instance, d.graph, d.inclusive_joins into v_locked
  from bpm.process_instance i
  join bpm.process_definition d on d.tenant_id = i.tenant_id and d.id = i.definition_id
  where i.tenant_id = sub.tenant_id and i.id = sub.instance_id;
  return bpm_private.subscription__fire(sub, variables, event_kind, v_locked.instance, v_locked.graph, v_locked.inclusive_joins);
end;
$$;
comment on function bpm_private.subscription__trigger(bpm.event_subscription, jsonb, text) is E'A message, signal or timer reached a subscription of an instance the caller has locked: reads the instance and its definition, then subscription__fire.';

-- (a batch of timers reads each instance with its definition as it locks it:
-- one statement instead of two)
create or replace function bpm_private.subscription__fire(sub bpm.event_subscription, variables jsonb, event_kind text,
  instance bpm.process_instance, graph jsonb, inclusive_joins text[])
returns bpm.process_instance
language plpgsql
volatile
set search_path = ''
as $$
declare
  v_graph jsonb := bpm_private.graph__in_memory(graph);
  v_node jsonb;
  v_token_el text;
  v_scope uuid;
  st bpm_private.run_state := bpm_private.run__begin(sub.tenant_id, sub.instance_id, instance.variables || variables, false, inclusive_joins);
begin
  st.business_key := instance.business_key;
  st := bpm_private.run__event(st, event_kind, sub.id, sub.element_id);
  v_node := v_graph -> 'nodes' -> sub.element_id;
  if v_node ->> 'type' = 'boundaryEvent' then
    -- the boundary event runs where its activity is
    st := bpm_private.run__resume(st, v_node, sub.token_id);
    if sub.interrupting then
      -- the activity it is attached to ends cancelled, with everything in it
      st := bpm_private.scope__cancel(st, array[sub.token_id]);
    elsif sub.kind = 'timer' then
      -- a non-interrupting cycle fires again while the activity waits
      perform bpm_private.timer__rearm_or_close(sub);
    end if;
    st := bpm_private.run__push(st, sub.element_id, null);
  elsif v_node ->> 'type' = 'startEvent' then
    -- an event subprocess of a scope instance (its token) or of the instance
    v_scope := nullif(sub.token_id, sub.instance_id);
    st := bpm_private.scope__load(st, v_scope);
    if not sub.interrupting and sub.kind = 'timer' then
      perform bpm_private.timer__rearm_or_close(sub);
    elsif sub.interrupting or sub.kind = 'timer' then
      delete from bpm.event_subscription s where s.tenant_id = sub.tenant_id and s.id = sub.id;
    end if;
    st := bpm_private.event_subprocess__start(st, v_graph, v_node, v_scope, event_kind);
  else
    -- a catch event or receive task (the subscription's own element), or an
    -- event-based gateway whose first event this is: the token and every
    -- subscription of it go (a receive task's boundary events too)
    delete from bpm_private.token t where t.tenant_id = sub.tenant_id and t.id = sub.token_id
    returning t.element_id into v_token_el;
    st := bpm_private.run__resume(st, v_node, sub.token_id);
    perform bpm_private.subscriptions__remove(sub.tenant_id, sub.instance_id, array[sub.token_id]);
    st := bpm_private.activity__end(st, array[sub.token_id], 'completed');
    if v_token_el = sub.element_id then
      st := bpm_private.node__complete(st, v_graph, v_node, sub.token_id);
    else
      st := bpm_private.catch__passed(st, v_graph, v_node, null);
    end if;
  end if;
  st := bpm_private.run__drain(st, v_graph);
  return bpm_private.run__finish(st, instance);
end;
$$;
comment on function bpm_private.subscription__fire(bpm.event_subscription, jsonb, text, bpm.process_instance, jsonb, text[]) is E'A message, signal or timer reached a subscription: the catch event, receive task or event-based gateway continues, or the boundary event starts its path (interrupting: its activity is cancelled). The caller has locked the instance and read it with its definition''s graph.';

-- What a run leaves to do once it is written: broadcast thrown signals,
-- publish thrown messages, raise incidents of unhandled errors, schedule
-- the deadline jobs of new user tasks, mark compensated what completed in
-- the run, keep the locals of completed compensable multi-instance inner
-- instances.
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
      perform bpm_private.message__correlate(st.tenant_id, v_action ->> 'name', v_action ->> 'key', v_action -> 'variables', null, null, false, false);
    elsif v_action ->> 'kind' = 'deadline' then
      perform bpm_private.user_task__enqueue_deadlines(st.tenant_id, (v_action ->> 'task')::uuid, v_action -> 'data');
    elsif v_action ->> 'kind' = 'incident' then
      perform bpm_private.incident__raise(st.tenant_id, st.instance_id, v_action ->> 'element', v_action ->> 'type', v_action ->> 'message');
    elsif v_action ->> 'kind' = 'call' then
      perform bpm_private.call__start(st.tenant_id, st.instance_id, v_action);
    elsif v_action ->> 'kind' = 'throwToParent' then
      perform bpm_private.call__child_threw(st.tenant_id, st.instance_id, v_action);
    elsif v_action ->> 'kind' = 'childCompleted' then
      perform bpm_private.call__child_completed(st.tenant_id, st.instance_id);
    elsif v_action ->> 'kind' = 'compensated' then
      update bpm.activity_instance a set state = 'compensated'
      where a.tenant_id = st.tenant_id and a.id = (v_action ->> 'activity')::uuid and a.state = 'completed';
    elsif v_action ->> 'kind' = 'innerLocals' then
      update bpm.activity_instance a set local_variables = v_action -> 'vars'
      where a.tenant_id = st.tenant_id and a.id = (v_action ->> 'activity')::uuid;
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
-- may_wait: whether the receiver's lock may be waited for. A transition's
-- throw may not (it holds its own instance): a receiver another transaction
-- holds gets the message deferred (deferred.sql).
-- The waiting receivers of a message (at most two: one is the receiver, two
-- are an ambiguity): subscriptions of instances whose key is the message's,
-- or that have none (they take any), oldest first; a message without a key
-- goes to any receiver. Each branch is a range of
-- event_subscription_correlation_idx, so a correlation reads a few index
-- entries however many instances wait for the same message name.
create or replace function bpm_private.message__receivers(tenant_id text, name text, correlation_key text)
returns bpm.event_subscription[]
language plpgsql
stable
set search_path = ''
as $$
begin
  return array(
    select m.s from (
      (select s, s.created_at, s.id from bpm.event_subscription s
       where s.tenant_id = message__receivers.tenant_id and s.kind = 'message' and s.name = message__receivers.name
         and s.instance_id is not null and s.incident_id is null and s.correlation_key = message__receivers.correlation_key
       order by s.created_at, s.id limit 2)
      union all
      (select s, s.created_at, s.id from bpm.event_subscription s
       where s.tenant_id = message__receivers.tenant_id and s.kind = 'message' and s.name = message__receivers.name
         and s.instance_id is not null and s.incident_id is null and s.correlation_key is null
       order by s.created_at, s.id limit 2)
      union all
      (select s, s.created_at, s.id from bpm.event_subscription s
       where message__receivers.correlation_key is null
         and s.tenant_id = message__receivers.tenant_id and s.kind = 'message' and s.name = message__receivers.name
         and s.instance_id is not null and s.incident_id is null and s.correlation_key is not null
       limit 2)
    ) m(s, created_at, id)
    order by m.created_at, m.id limit 2);
end;
$$;
comment on function bpm_private.message__receivers(text, text, text) is E'Up to two waiting receivers of a message: subscriptions with its correlation key or none (a message without a key: any), oldest first.';

create or replace function bpm_private.message__correlate(tenant_id text, name text, correlation_key text, variables jsonb, ttl interval, message_id text, required boolean,
  may_wait boolean)
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
  v_lock record;
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
    v_subs := bpm_private.message__receivers(tenant_id, name, correlation_key);
    exit when pg_catalog.cardinality(v_subs) = 0;
    if pg_catalog.cardinality(v_subs) > 1 then
      raise exception 'message % (correlation key %) matches more than one waiting receiver (instances % and %)',
        name, coalesce(correlation_key, 'null'), (v_subs[1]).instance_id, (v_subs[2]).instance_id using errcode = 'BP207';
    end if;
    if may_wait then
      v_instance := bpm_private.instance__lock(tenant_id, (v_subs[1]).instance_id);
    else
      v_lock := bpm_private.instance__try_lock(tenant_id, (v_subs[1]).instance_id);
      if v_lock.busy then
        perform bpm_private.delivery__defer(tenant_id, 'message', null, name, correlation_key, variables);
        return null;
      end if;
      continue when (v_lock.instance).id is null;
      v_instance := v_lock.instance;
    end if;
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
    values (tenant_id, bpm_private.uuid_v7(), name, correlation_key, variables, message_id, pg_catalog.now() + ttl);
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
comment on function bpm_private.message__correlate(text, text, text, jsonb, interval, text, boolean, boolean) is E'Delivers a message to its one receiver (deferred when it may not wait for a receiver another transaction holds), starts a process, buffers it (ttl) or raises BP106/BP207.';

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
  return bpm_private.message__correlate(v_tenant, message_name, correlation_key, v_variables, ttl, message_id, true, true);
end;
$$;
comment on function bpm.correlate_message(text, text, jsonb, interval, text) is E'Delivers a message to exactly one receiver in the caller''s tenant: a waiting message catch event, receive task, message boundary event or event-based gateway whose correlation key matches (zeebe: the subscription''s correlationKey; camunda: the instance''s business key; a null key on either side matches any), else a message start event (starts an instance, business key = correlation_key, and returns it). Variables merge into the instance. More than one match: BP207. A message start event of a process with unique business keys whose active instance has correlation_key as business key: BP209. No match: with ttl the message is kept and delivered to the first matching subscription that opens before it expires (returns null); without, BP106. message_id: a repeated correlation with the same id within a day (or while the first is buffered) is a no-op. A suspended receiver: BP202. Roles: bpm_admin, bpm_user, bpm_engine.';

-- Triggers every signal subscription of the tenant and starts the processes
-- with that signal start event. It never waits for an instance lock: an
-- instance another transaction holds gets the signal deferred (deferred.sql),
-- so broadcasts and throws cannot deadlock. Suspended instances are skipped.
create or replace function bpm_private.signal__broadcast(tenant_id text, name text, variables jsonb)
returns int
language plpgsql
volatile
set search_path = ''
as $$
declare
  v_candidate record;
  v_lock record;
  v_definition bpm.process_definition;
  v_deferred uuid;
  v_count int := 0;
begin
  for v_candidate in
    select s.id, s.instance_id from bpm.event_subscription s
    where s.tenant_id = signal__broadcast.tenant_id and s.kind = 'signal' and s.name = signal__broadcast.name
      and s.instance_id is not null and s.incident_id is null
    order by s.instance_id, s.created_at, s.id
  loop
    -- (one deferral per instance: it reaches all its subscriptions)
    continue when v_candidate.instance_id = v_deferred;
    v_lock := bpm_private.instance__try_lock(tenant_id, v_candidate.instance_id);
    if v_lock.busy then
      perform bpm_private.delivery__defer(tenant_id, 'signal', v_candidate.instance_id, name, null, variables);
      v_deferred := v_candidate.instance_id;
      v_count := v_count + 1;
      continue;
    end if;
    continue when (v_lock.instance).state is distinct from 'active';
    v_count := v_count + bpm_private.signal__trigger(tenant_id, v_candidate.id, variables);
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
comment on function bpm_private.signal__broadcast(text, text, jsonb) is E'Triggers every signal catch event, boundary and start event of a signal in a tenant (deferring instances other transactions hold); returns how many.';

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
comment on function bpm.broadcast_signal(text, jsonb) is E'Broadcasts a signal in the caller''s tenant: every waiting signal catch event and signal boundary event is triggered (variables merge into those instances) and every process with that signal start event is started. Returns how many were triggered plus started. Suspended instances are skipped. An instance another transaction holds at that moment is not waited for: it receives the signal right after that transaction ends (deferred, delivered by the worker''s bpm_deliver job), and counts as one. Roles: bpm_admin, bpm_user, bpm_engine.';

-- Conditional start events (of the latest version of each process): each
-- whose condition holds over the given variables starts an instance with
-- them (Camunda's evaluateStartConditions / conditional start evaluation).
create or replace function bpm.evaluate_conditions(variables jsonb default '{}', business_key text default null)
returns setof bpm.process_instance
language plpgsql
volatile
security definer
set search_path = ''
set plan_cache_mode = force_generic_plan
as $$
declare
  v_tenant text := bpm_private.require_context(array['bpm_admin', 'bpm_user', 'bpm_engine'], 'evaluate conditional start events');
  v_variables jsonb := bpm_private.require_object(variables, 'variables');
  v_sub bpm.event_subscription;
  v_definition bpm.process_definition;
begin
  for v_sub in
    select * from bpm.event_subscription s
    where s.tenant_id = v_tenant and s.kind = 'conditional' and s.instance_id is null
    order by s.created_at, s.id
  loop
    select * into v_definition from bpm.process_definition d where d.tenant_id = v_tenant and d.id = v_sub.definition_id;
    -- a bpm_user starts only processes they may start (candidate starters)
    continue when not bpm_private.definition__may_start(v_definition);
    continue when not bpm_private.condition__test(v_definition.graph -> 'nodes' -> v_sub.element_id, v_variables);
    return next bpm_private.instance__start(v_definition, v_sub.element_id, v_variables, business_key, 'conditionFulfilled', v_sub.id);
  end loop;
end;
$$;
comment on function bpm.evaluate_conditions(jsonb, text) is E'Evaluates the conditional start events of the latest version of every process of the caller''s tenant over variables and starts an instance (with those variables and business_key) of each whose condition holds; returns the instances started (none when no condition holds). A bpm_user starts only processes whose candidate starters include them. Raises BP401 when variables is not an object, BP209 for a business key a process with unique business keys already runs. Roles: bpm_admin, bpm_user, bpm_engine.';

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

-- A timer subscription that is to fire now: it still exists and is due, its
-- instance is active (locked first: a called instance's timer locks the root
-- of its call tree); a timer start event's subscription is locked itself.
-- Null when there is nothing to fire (fired or removed already, re-armed for
-- later, an incident on it, its instance suspended or ended).
create or replace function bpm_private.timer__take(tenant_id text, subscription_id uuid)
returns bpm.event_subscription
language plpgsql
volatile
set search_path = ''
as $$
declare
  v_sub bpm.event_subscription;
  v_instance bpm.process_instance;
begin
  -- (by primary key only: with "kind = 'timer'" beside it, a generic plan made
  -- before the table was analysed may take another index and read every
  -- timer of the tenant)
  select * into v_sub from bpm.event_subscription s where s.tenant_id = timer__take.tenant_id and s.id = subscription_id;
  if not found or v_sub.kind <> 'timer' or v_sub.incident_id is not null then
    return null;
  end if;
  if v_sub.instance_id is null then
    select * into v_sub from bpm.event_subscription s where s.tenant_id = timer__take.tenant_id and s.id = subscription_id for update;
    if not found or v_sub.due_at > pg_catalog.now() then
      return null;
    end if;
    return v_sub;
  end if;
  v_instance := bpm_private.instance__lock(tenant_id, v_sub.instance_id);
  select * into v_sub from bpm.event_subscription s where s.tenant_id = timer__take.tenant_id and s.id = subscription_id;
  -- gone (fired, cancelled), not due (re-armed), or the instance waits for activation
  if not found or v_sub.due_at > pg_catalog.now() or v_instance.state <> 'active' then
    return null;
  end if;
  return v_sub;
end;
$$;
comment on function bpm_private.timer__take(text, uuid) is E'Locks a timer subscription''s instance (or a timer start''s subscription) and returns the subscription when it is to fire now; null otherwise.';

-- Fires a taken timer: a timer start event starts an instance, an instance's
-- timer triggers its waiting token.
create or replace function bpm_private.timer__fire(sub bpm.event_subscription)
returns bpm.process_instance
language plpgsql
volatile
set search_path = ''
as $$
begin
  if sub.instance_id is null then
    return bpm_private.timer_start__fire(sub);
  end if;
  return bpm_private.subscription__trigger(sub, '{}', 'timerFired');
end;
$$;
comment on function bpm_private.timer__fire(bpm.event_subscription) is E'Fires a timer subscription taken by timer__take.';

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
  v_sub bpm.event_subscription := bpm_private.timer__take(v_tenant, subscription_id);
  v_incident uuid;
begin
  -- (a composite "is null" needs every field null: test the id)
  if v_sub.id is null then
    return null;
  end if;
  begin
    return bpm_private.timer__fire(v_sub);
  exception when others then
    if bpm_private.error__is_transient(sqlstate) or v_sub.instance_id is null then
      raise;
    end if;
    v_incident := bpm_private.incident__raise(v_tenant, v_sub.instance_id, v_sub.element_id, 'failedJob',
      pg_catalog.format('timer %s of element %s failed: %s (SQLSTATE %s)', v_sub.id, v_sub.element_id, sqlerrm, sqlstate));
    update bpm.event_subscription s set incident_id = v_incident where s.tenant_id = v_tenant and s.id = v_sub.id;
    return (select i from bpm.process_instance i where i.tenant_id = v_tenant and i.id = v_sub.instance_id);
  end;
end;
$$;
comment on function bpm.fire_timer(uuid) is E'Fires a due timer subscription (called by the worker''s bpm_fire_timer job; idempotent: a timer already fired, removed, re-armed for later, or of a suspended or ended instance is left alone and null returned). A failing continuation raises an incident failedJob instead of an error. Roles: bpm_admin, bpm_engine.';

-- A burst of due timers: the job of one timer also fires other timers of the
-- tenant that are due, in the same transaction (one commit for many
-- firings), removing their own jobs. Instances another transaction holds are
-- skipped (their jobs, or a concurrent batch, take them); concurrent batches
-- take the earliest due timers in a different order each, so they share the
-- work rather than queue on the same instances. The others are fired under
-- one savepoint, not one each (a savepoint per firing cost a tenth of a
-- firing): when one of them fails, the batch's firings are undone and fired
-- again one by one through fire_timer, so that only the failing one becomes
-- an incident.
create or replace function bpm.fire_due_timers(subscription_id uuid, max_timers int default 50)
returns int
language plpgsql
volatile
security definer
set search_path = ''
set plan_cache_mode = force_generic_plan
as $$
declare
  v_tenant text := bpm_private.require_context(array['bpm_admin', 'bpm_engine'], 'fire timers');
  v_own int := 0;
  v_fired int;
  v_alone boolean := false;
  v_hit boolean;
  v_due record;
  v_locked record;
  v_sub bpm.event_subscription;
begin
  if max_timers is null or max_timers < 1 or max_timers > 1000 then
    raise exception 'max_timers must be between 1 and 1000, got %', coalesce(max_timers::text, 'null') using errcode = 'BP401';
  end if;
  -- (a composite "is not null" needs every field set: test the id)
  if (bpm.fire_timer(subscription_id)).id is not null then
    v_own := 1;
  end if;
  -- the others: together under one savepoint; when one fails, again one by one
  loop
    v_fired := 0;
    begin
      for v_due in
        select d.id, d.instance_id from (
          select s.id, s.instance_id from bpm.event_subscription s
          where s.tenant_id = v_tenant and s.kind = 'timer' and s.instance_id is not null and s.incident_id is null
            and s.due_at <= pg_catalog.now() and s.id <> subscription_id
          order by s.due_at limit (max_timers - 1) * 4) d
        order by pg_catalog.hashtext(d.id::text || subscription_id::text)
        limit max_timers - 1
      loop
        -- the instance locked and read with its definition in one statement
        -- (instances without a caller only: a called instance's timer fires by its
        -- own job, which locks the root of its call tree first)
        -- ("is true": by primary key; a bare state = 'active' matches the partial
        -- index of active instances, which a generic plan may walk whole)
        select i as instance, d.graph, d.inclusive_joins into v_locked
        from bpm.process_instance i
        join bpm.process_definition d on d.tenant_id = i.tenant_id and d.id = i.definition_id
        where i.tenant_id = v_tenant and i.id = v_due.instance_id and (i.state = 'active') is true
          and i.root_instance_id is null
        for update of i skip locked;
        continue when not found;
        -- fired here: firing removes its job with its subscription (a cycle that
        -- re-arms moves its job to the next due time)
        if v_alone then
          -- (one that fails raises an incident and keeps a job that will find it so)
          v_hit := (bpm.fire_timer(v_due.id)).id is not null;
        else
          -- read again under the lock (as timer__take does): fired or re-armed meanwhile?
          select * into v_sub from bpm.event_subscription s where s.tenant_id = v_tenant and s.id = v_due.id;
          v_hit := found and v_sub.incident_id is null and v_sub.due_at <= pg_catalog.now();
          if v_hit then
            perform bpm_private.subscription__fire(v_sub, '{}', 'timerFired', v_locked.instance, v_locked.graph, v_locked.inclusive_joins);
          end if;
        end if;
        if v_hit then
          v_fired := v_fired + 1;
        end if;
      end loop;
      exit;
    exception when others then
      if v_alone or bpm_private.error__is_transient(sqlstate) then
        raise;
      end if;
      v_alone := true;
    end;
  end loop;
  return v_own + v_fired;
end;
$$;
comment on function bpm.fire_due_timers(uuid, int) is E'Fires a due timer subscription (as fire_timer) and up to max_timers - 1 other timers of the tenant that are due, in one transaction, removing their jobs (called by the worker''s bpm_fire_timer job; idempotent like fire_timer; a failing continuation becomes an incident of its timer alone). Returns how many fired. Roles: bpm_admin, bpm_engine.';
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
