-- Cancels everything that waits in an instance: its tokens go, open user
-- and external tasks become cancelled, and so do their activity rows.
create or replace function bpm_private.instance__cancel_tokens(tenant_id text, instance_id uuid)
returns int
language plpgsql
volatile
set search_path = ''
as $$
declare
  v_count int;
  v_kinds text[];
  v_subjects uuid[];
  v_elements text[];
begin
  with tokens as (
    delete from bpm_private.token t
    where t.tenant_id = instance__cancel_tokens.tenant_id and t.instance_id = instance__cancel_tokens.instance_id
    returning t.id
  ), user_tasks as (
    update bpm.user_task u
    set state = 'cancelled', completed_at = pg_catalog.now()
    where u.tenant_id = instance__cancel_tokens.tenant_id and u.instance_id = instance__cancel_tokens.instance_id and (u.state = 'open') is true
    returning u.id, u.element_id
  ), external_tasks as (
    update bpm.external_task e
    set state = 'cancelled', ended_at = pg_catalog.now(), worker_id = null, locked_until = null
    where e.tenant_id = instance__cancel_tokens.tenant_id and e.instance_id = instance__cancel_tokens.instance_id and (e.state = 'open') is true
    returning e.id, e.element_id
  ), waits as (
    select id from tokens union all select id from user_tasks union all select id from external_tasks
  ), activities as (
    update bpm.activity_instance a
    set state = 'cancelled', ended_at = pg_catalog.now()
    where a.tenant_id = instance__cancel_tokens.tenant_id and a.id in (select w.id from waits w) and a.state = 'active'
    returning a.id, a.element_id
  ), incidents as (
    -- open incidents of the instance no longer need anyone
    update bpm.incident i set resolved_at = pg_catalog.now()
    where i.tenant_id = instance__cancel_tokens.tenant_id and i.instance_id = instance__cancel_tokens.instance_id and (i.resolved_at is null) is true
    returning i.id, i.element_id
  ), events as (
    select 1 as grp, id, element_id, 'taskCancelled' as kind from user_tasks
    union all select 2, id, element_id, 'externalTaskCancelled' from external_tasks
    union all select 3, id, element_id, 'incidentResolved' from incidents
    union all select 4, id, element_id, 'activityCancelled' from activities
  )
  select (select pg_catalog.count(*) from waits), coalesce(array_agg(ev.kind order by ev.grp, ev.id), '{}'),
    coalesce(array_agg(ev.id order by ev.grp, ev.id), '{}'), coalesce(array_agg(ev.element_id order by ev.grp, ev.id), '{}')
  into v_count, v_kinds, v_subjects, v_elements
  from events ev;
  perform bpm_private.event__emit(tenant_id, instance_id, v_kinds, v_subjects, v_elements);
  perform bpm_private.subscriptions__remove(tenant_id, instance_id, null);
  return v_count;
end;
$$;
comment on function bpm_private.instance__cancel_tokens(text, uuid) is E'Cancels everything that waits in an instance: tokens, open user and external tasks, their activity rows.';

-- A terminate end event: every other token of the instance ends as cancelled.
create or replace function bpm_private.instance__terminate(st bpm_private.run_state)
returns bpm_private.run_state
language plpgsql
volatile
set search_path = ''
as $$
declare
  v_pos int;
begin
  if not st.is_new then
    perform bpm_private.instance__cancel_tokens(st.tenant_id, st.instance_id);
  end if;
  for v_pos in 1 .. pg_catalog.cardinality(st.w_id) loop
    st.a_state[pg_catalog.array_position(st.a_id, st.w_id[v_pos])] := 'cancelled';
  end loop;
  st.w_id := '{}'; st.w_el := '{}'; st.w_kind := '{}'; st.w_flow := '{}'; st.w_data := '{}';
  st.q_pos := pg_catalog.cardinality(st.q_node) + 1;
  st.terminated := true;
  return st;
end;
$$;
comment on function bpm_private.instance__terminate(bpm_private.run_state) is E'Terminate end event: cancels every other token; the instance completes.';

-- Serialises transitions of one instance: every engine call locks the
-- instance row first (instance__lock: BP102 when it is not visible in the
-- tenant). Lock order: every transition locks the root of its call tree first, then
-- the instance it works on. A called instance's transition may walk up to its
-- callers (it completes, it throws) while its caller's transition walks down
-- (cancel, an interrupting boundary): both hold the root first, so they
-- serialise instead of deadlocking. Instances without a caller are their own
-- root: one statement, as before.
create or replace function bpm_private.instance__lock_tree(tenant_id text, instance_id uuid)
returns bpm.process_instance
language plpgsql
volatile
set search_path = ''
as $$
declare
  v_instance bpm.process_instance;
begin
  select * into v_instance from bpm.process_instance i
  where i.tenant_id = instance__lock_tree.tenant_id and i.id = instance__lock_tree.instance_id and i.root_instance_id is null
  for update;
  if found or instance_id is null then
    return v_instance;
  end if;
  -- a called instance (or none): the root of its call tree first
  perform 1 from bpm.process_instance r
  where r.tenant_id = instance__lock_tree.tenant_id
    and r.id = (select c.root_instance_id from bpm.process_instance c where c.tenant_id = instance__lock_tree.tenant_id and c.id = instance__lock_tree.instance_id)
  for update;
  select * into v_instance from bpm.process_instance i
  where i.tenant_id = instance__lock_tree.tenant_id and i.id = instance__lock_tree.instance_id
  for update;
  return v_instance;
end;
$$;
comment on function bpm_private.instance__lock_tree(text, uuid) is E'Locks an instance after the root of its call tree (the engine''s lock order); null if there is no such instance in the tenant.';

create or replace function bpm_private.instance__lock(tenant_id text, instance_id uuid)
returns bpm.process_instance
language plpgsql
volatile
set search_path = ''
as $$
declare
  v_instance bpm.process_instance := bpm_private.instance__lock_tree(tenant_id, instance_id);
begin
  if v_instance.id is null then
    raise exception 'process instance % not found', instance_id using errcode = 'BP102';
  end if;
  return v_instance;
end;
$$;
comment on function bpm_private.instance__lock(text, uuid) is E'Locks an instance row, after the root of its call tree (BP102 if not found in the tenant).';

-- Guard: the instance must be active (BP201 ended, BP202 suspended).
create or replace function bpm_private.instance__require_active(instance bpm.process_instance, action text)
returns void
language plpgsql
immutable
set search_path = ''
as $$
begin
  if instance.state = 'suspended' then
    raise exception 'process instance % is suspended: cannot %', instance.id, action using errcode = 'BP202';
  elsif instance.state <> 'active' then
    raise exception 'process instance % is %: cannot %', instance.id, instance.state, action using errcode = 'BP201';
  end if;
end;
$$;
comment on function bpm_private.instance__require_active(bpm.process_instance, text) is E'Raises BP201/BP202 unless the instance is active.';
