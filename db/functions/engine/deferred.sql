-- Deferred deliveries. A signal or message thrown by a transition is
-- delivered in the thrower's transaction, which holds the thrower's instance
-- lock. Waiting there for the receiver's lock could deadlock: two instances
-- throwing at each other at the same moment each hold their own lock and
-- wait for the other's (so could a broadcast and a throw). So deliveries
-- never wait for an instance lock while holding one: a receiver that another
-- transaction holds at that moment gets the delivery recorded here, and a
-- job (bpm_deliver) delivers it as soon as that transaction ends, as if the
-- signal or message had come right after it. The row is deleted in the
-- delivering transaction, so a job that runs twice delivers once.

-- Locks an instance (after the root of its call tree, the engine's lock
-- order) unless another transaction holds either: then busy. Gone: both null
-- and not busy. Locks this transaction holds already are taken again at once.
create or replace function bpm_private.instance__try_lock(tenant_id text, instance_id uuid, out instance bpm.process_instance, out busy boolean)
language plpgsql
volatile
set search_path = ''
as $$
declare
  v_root uuid;
begin
  busy := false;
  select * into instance from bpm.process_instance i
  where i.tenant_id = instance__try_lock.tenant_id and i.id = instance__try_lock.instance_id and i.root_instance_id is null
  for update skip locked;
  if found then
    return;
  end if;
  select i.root_instance_id into v_root from bpm.process_instance i
  where i.tenant_id = instance__try_lock.tenant_id and i.id = instance__try_lock.instance_id;
  if not found then
    return;
  end if;
  if v_root is not null then
    perform 1 from bpm.process_instance r where r.tenant_id = instance__try_lock.tenant_id and r.id = v_root for update skip locked;
    if found then
      select * into instance from bpm.process_instance i
      where i.tenant_id = instance__try_lock.tenant_id and i.id = instance__try_lock.instance_id
      for update skip locked;
    end if;
  end if;
  busy := instance.id is null;
end;
$$;
comment on function bpm_private.instance__try_lock(text, uuid) is E'Locks an instance after the root of its call tree without waiting: busy when another transaction holds either; neither instance nor busy when it does not exist.';

-- Records a delivery to a busy receiver and enqueues its job. A signal names
-- the receiving instance; a message is correlated again when delivered.
create or replace function bpm_private.delivery__defer(tenant_id text, kind text, instance_id uuid, name text, correlation_key text, variables jsonb)
returns void
language plpgsql
volatile
set search_path = ''
as $$
declare
  v_id uuid := bpm_private.uuid_v7();
begin
  insert into bpm_private.deferred_delivery (tenant_id, id, kind, instance_id, name, correlation_key, variables)
  values (tenant_id, v_id, kind, instance_id, name, correlation_key, variables);
  -- (default attempts: a delivery that fails, e.g. a message to a suspended
  -- receiver, is retried with graphile-worker's back-off for about 3 days)
  perform graphile_worker.add_job('bpm_deliver', pg_catalog.json_build_object('tenant_id', tenant_id, 'delivery_id', v_id));
end;
$$;
comment on function bpm_private.delivery__defer(text, text, uuid, text, text, jsonb) is E'Defers a signal or message for a receiver another transaction holds: records it and enqueues the job that delivers it.';

-- One signal subscription is triggered, if it is still there (under its
-- instance's lock, which the caller holds); 1 if it was.
create or replace function bpm_private.signal__trigger(tenant_id text, subscription_id uuid, variables jsonb)
returns int
language plpgsql
volatile
set search_path = ''
as $$
declare
  v_sub bpm.event_subscription;
begin
  select * into v_sub from bpm.event_subscription s where s.tenant_id = signal__trigger.tenant_id and s.id = subscription_id;
  if not found then
    return 0;
  end if;
  perform bpm_private.subscription__trigger(v_sub, variables, 'signalBroadcast');
  return 1;
end;
$$;
comment on function bpm_private.signal__trigger(text, uuid, jsonb) is E'Triggers a signal subscription that is still open (the caller holds its instance''s lock); 1 if triggered, else 0.';

-- A deferred signal: every subscription to it the instance has now.
create or replace function bpm_private.signal__deliver(tenant_id text, instance_id uuid, name text, variables jsonb)
returns int
language plpgsql
volatile
set search_path = ''
as $$
declare
  v_instance bpm.process_instance := bpm_private.instance__lock_tree(tenant_id, instance_id);
  v_sub uuid;
  v_count int := 0;
begin
  if v_instance.id is null or v_instance.state <> 'active' then
    return 0;
  end if;
  for v_sub in
    select s.id from bpm.event_subscription s
    where s.tenant_id = signal__deliver.tenant_id and s.instance_id = signal__deliver.instance_id and s.kind = 'signal'
      and s.name = signal__deliver.name and s.incident_id is null
    order by s.created_at, s.id
  loop
    v_count := v_count + bpm_private.signal__trigger(tenant_id, v_sub, variables);
  end loop;
  return v_count;
end;
$$;
comment on function bpm_private.signal__deliver(text, uuid, text, jsonb) is E'Delivers a deferred signal to the subscriptions an instance has now (none if it ended or is suspended); returns how many were triggered.';

create or replace function bpm.deliver_deferred(delivery_id uuid)
returns int
language plpgsql
volatile
security definer
set search_path = ''
set plan_cache_mode = force_generic_plan
as $$
declare
  v_tenant text := bpm_private.require_context(array['bpm_admin', 'bpm_engine'], 'deliver a deferred signal or message');
  v_delivery bpm_private.deferred_delivery;
  v_instance bpm.process_instance;
begin
  delete from bpm_private.deferred_delivery d where d.tenant_id = v_tenant and d.id = delivery_id
  returning * into v_delivery;
  if not found then
    return 0;
  end if;
  if v_delivery.kind = 'signal' then
    return bpm_private.signal__deliver(v_tenant, v_delivery.instance_id, v_delivery.name, v_delivery.variables);
  end if;
  v_instance := bpm_private.message__correlate(v_tenant, v_delivery.name, v_delivery.correlation_key, v_delivery.variables, null, null, false, true);
  return case when v_instance.id is null then 0 else 1 end;
end;
$$;
comment on function bpm.deliver_deferred(uuid) is E'Delivers a signal or message that a transition threw to an instance another transaction held at that moment (called by the worker''s bpm_deliver job; idempotent: a delivery already made returns 0). A signal reaches the subscriptions the instance has now; a message is correlated again (no receiver any more: dropped, as a throw without a receiver is). Returns how many subscriptions were triggered. Roles: bpm_admin, bpm_engine.';
