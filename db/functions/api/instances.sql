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
