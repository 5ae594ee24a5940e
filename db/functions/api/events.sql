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
-- With the subscription, the locked instance and its definition's graph
-- (read with the lock, in one statement, for an instance without a caller).
-- All null when there is nothing to fire (fired or removed already, re-armed
-- for later, an incident on it, its instance suspended or ended).
create or replace function bpm_private.timer__take(tenant_id text, subscription_id uuid,
  out sub bpm.event_subscription, out instance bpm.process_instance, out graph jsonb, out inclusive_joins text[])
language plpgsql
volatile
set search_path = ''
as $$
declare
  v_sub bpm.event_subscription;
  v_locked record;
begin
  -- (by primary key only: with "kind = 'timer'" beside it, a generic plan made
  -- before the table was analysed may take another index and read every
  -- timer of the tenant)
  select * into v_sub from bpm.event_subscription s where s.tenant_id = timer__take.tenant_id and s.id = subscription_id;
  if not found or v_sub.kind <> 'timer' or v_sub.incident_id is not null then
    return;
  end if;
  if v_sub.instance_id is null then
    select * into v_sub from bpm.event_subscription s where s.tenant_id = timer__take.tenant_id and s.id = subscription_id for update;
    if found and v_sub.due_at <= pg_catalog.now() then
      sub := v_sub;
    end if;
    return;
  end if;
  select i as instance, d.graph, d.inclusive_joins into v_locked
  from bpm.process_instance i
  join bpm.process_definition d on d.tenant_id = i.tenant_id and d.id = i.definition_id
  where i.tenant_id = timer__take.tenant_id and i.id = v_sub.instance_id and i.root_instance_id is null
  for update of i;
  if found then
    instance := v_locked.instance;
    graph := v_locked.graph;
    inclusive_joins := v_locked.inclusive_joins;
  else
    -- a called instance: the root of its call tree first (BP102 if it is gone)
    instance := bpm_private.instance__lock(tenant_id, v_sub.instance_id);
    select d.graph, d.inclusive_joins into graph, inclusive_joins
    from bpm.process_definition d where d.tenant_id = timer__take.tenant_id and d.id = instance.definition_id;
  end if;
  select * into v_sub from bpm.event_subscription s where s.tenant_id = timer__take.tenant_id and s.id = subscription_id;
  -- gone (fired, cancelled), not due (re-armed), failed meanwhile (an incident
  -- raised by the transaction that held the lock), or the instance waits for
  -- activation: the same conditions as fire_due_timers' read under the lock
  if not found or v_sub.due_at > pg_catalog.now() or v_sub.incident_id is not null or instance.state <> 'active' then
    instance := null;
    graph := null;
    inclusive_joins := null;
    return;
  end if;
  sub := v_sub;
end;
$$;
comment on function bpm_private.timer__take(text, uuid) is E'Locks a timer subscription''s instance (or a timer start''s subscription) and returns the subscription when it is to fire now, with the locked instance and its definition''s graph and inclusive joins; all null otherwise.';

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
  v_taken record := bpm_private.timer__take(v_tenant, subscription_id);
  v_sub bpm.event_subscription := v_taken.sub;
  v_incident uuid;
begin
  -- (a composite "is null" needs every field null: test the id)
  if v_sub.id is null then
    return null;
  end if;
  begin
    if v_sub.instance_id is null then
      -- a timer start event starts an instance
      return bpm_private.timer_start__fire(v_sub);
    end if;
    return bpm_private.subscription__fire(v_sub, '{}', 'timerFired', v_taken.instance, v_taken.graph, v_taken.inclusive_joins);
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
  v_fired_instance bpm.process_instance;
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
            v_fired_instance := bpm_private.subscription__fire(v_sub, '{}', 'timerFired', v_locked.instance, v_locked.graph, v_locked.inclusive_joins);
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
