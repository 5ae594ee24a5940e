--! Previous: sha1:6fcd01efb01c469b83f5480177ee92036184a506
--! Hash: sha1:10d6b6166b210b7b364ac928885328f86c51746c
--! Message: Conditional start events: bpm.evaluate_conditions

-- Conditional start events of a process: bpm.evaluate_conditions starts an
-- instance of each whose condition holds over the given variables.
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
  v_is_user boolean := bpm_private.caller_role() = 'bpm_user';
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
    continue when v_is_user and (pg_catalog.cardinality(v_definition.candidate_starter_users) > 0 or pg_catalog.cardinality(v_definition.candidate_starter_groups) > 0)
      and not (bpm_private.current_user_id() = any(v_definition.candidate_starter_users) or v_definition.candidate_starter_groups && bpm_private.current_groups());
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

-- A burst of due timers: the job of one timer also fires other timers of the
-- tenant that are due, in the same transaction (one commit for many
-- firings), removing their own jobs. Instances another transaction holds are
-- skipped (their jobs, or a concurrent batch, take them); concurrent batches
-- take the earliest due timers in a different order each, so they share the
-- work rather than queue on the same instances.
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
  v_fired int := 0;
  v_due record;
  v_instance bpm.process_instance;
begin
  if max_timers is null or max_timers < 1 or max_timers > 1000 then
    raise exception 'max_timers must be between 1 and 1000, got %', coalesce(max_timers::text, 'null') using errcode = 'BP401';
  end if;
  -- (a composite "is not null" needs every field set: test the id)
  v_instance := bpm.fire_timer(subscription_id);
  if v_instance.id is not null then
    v_fired := 1;
  end if;
  for v_due in
    select d.id, d.instance_id from (
      select s.id, s.instance_id from bpm.event_subscription s
      where s.tenant_id = v_tenant and s.kind = 'timer' and s.instance_id is not null and s.incident_id is null
        and s.due_at <= pg_catalog.now() and s.id <> subscription_id
      order by s.due_at limit (max_timers - 1) * 4) d
    order by pg_catalog.hashtext(d.id::text || subscription_id::text)
    limit max_timers - 1
  loop
    -- (instances without a caller only: a called instance's timer fires by its
    -- own job, which locks the root of its call tree first)
    -- ("is true": by primary key; a bare state = 'active' matches the partial
    -- index of active instances, which a generic plan may walk whole)
    perform 1 from bpm.process_instance i where i.tenant_id = v_tenant and i.id = v_due.instance_id and (i.state = 'active') is true
      and i.root_instance_id is null
    for update skip locked;
    continue when not found;
    -- fired here: firing removes its job with its subscription (a cycle that
    -- re-arms moves its job to the next due time; one that failed and raised
    -- an incident keeps a job that will find it so and do nothing)
    v_instance := bpm.fire_timer(v_due.id);
    if v_instance.id is not null then
      v_fired := v_fired + 1;
    end if;
  end loop;
  return v_fired;
end;
$$;
comment on function bpm.fire_due_timers(uuid, int) is E'Fires a due timer subscription (as fire_timer) and up to max_timers - 1 other timers of the tenant that are due, in one transaction, removing their jobs (called by the worker''s bpm_fire_timer job; idempotent like fire_timer). Returns how many fired. Roles: bpm_admin, bpm_engine.';
--! EndIncluded api/events.sql
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
  if v_graph ? 'conditionals' and not v_done then
    -- conditional events that hold as they open (condition.sql)
    perform bpm_private.conditions__check(definition.tenant_id, st.instance_id);
  end if;
  if (v_graph ? 'conditionals' and not v_done) or pg_catalog.cardinality(st.p_data) > 0 then
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
  v_graph jsonb;
  v_node jsonb;
  v_token_el text;
  v_scope uuid;
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
--! Included setup/grants.sql
-- Execute grants: each API function to exactly the roles its guard admits
-- (the guard still checks; the grant keeps others from reaching it at all).
revoke execute on all functions in schema bpm from public;
revoke execute on all functions in schema bpm_private from public;
grant execute on function bpm.deploy(jsonb) to bpm_admin, bpm_designer;
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
grant execute on function bpm.fail_external_task(uuid, text, text, int, interval) to bpm_admin, bpm_engine;
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
grant execute on function bpm.cleanup_history(int, interval, interval, int) to bpm_admin, bpm_engine;
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
