-- Loads a user task after locking its instance (so concurrent calls on one
-- instance serialise and the task is read as of the lock), and checks that
-- the caller may act on it: bpm_admin any task of its tenant; bpm_user a task
-- assigned to it or, unassigned, offered to it. Raises BP103 (not found or
-- not visible), BP203 (not open), BP204 (assigned to someone else), BP202/BP201.
create or replace function bpm_private.user_task__lock(tenant_id text, task_id uuid, action text, out task bpm.user_task, out instance bpm.process_instance)
language plpgsql
volatile
set search_path = ''
as $$
declare
  v_user text := bpm_private.current_user_id();
  v_role text := bpm_private.caller_role();
begin
  instance := bpm_private.instance__lock_tree(tenant_id,
    (select t.instance_id from bpm.user_task t where t.tenant_id = user_task__lock.tenant_id and t.id = task_id));
  if instance.id is null then
    raise exception 'user task % not found', task_id using errcode = 'BP103';
  end if;
  -- read after the lock: sees what a concurrent call on the instance committed
  select * into task from bpm.user_task t where t.tenant_id = user_task__lock.tenant_id and t.id = task_id;
  if v_role = 'bpm_user' then
    if v_user is null then
      raise exception 'bpm.user_id is not set: a bpm_user cannot %', action using errcode = 'BP002';
    end if;
    if task.assignee is distinct from v_user
       and not (v_user = any(task.candidate_users) or task.candidate_groups && bpm_private.current_groups()) then
      raise exception 'user task % not found', task_id using errcode = 'BP103';
    end if;
  end if;
  if task.state <> 'open' then
    raise exception 'user task % is % and cannot %', task_id, task.state, action using errcode = 'BP203';
  end if;
  perform bpm_private.instance__require_active(instance, action);
end;
$$;
comment on function bpm_private.user_task__lock(text, uuid, text) is E'Locks the task''s instance, loads the task and checks the caller may act on it.';

create or replace function bpm.complete_task(task_id uuid, variables jsonb default '{}')
returns bpm.user_task
language plpgsql
volatile
security definer
set search_path = ''
set plan_cache_mode = force_generic_plan
as $$
declare
  v_tenant text := bpm_private.require_context(array['bpm_admin', 'bpm_user'], 'complete a task');
  v_variables jsonb := bpm_private.require_object(variables, 'variables');
  v_user text := bpm_private.current_user_id();
  v_is_user boolean := bpm_private.caller_role() = 'bpm_user';
  v_task bpm.user_task;
  v_instance bpm.process_instance;
  v_locked record;
begin
  if v_is_user and v_user is null then
    raise exception 'bpm.user_id is not set: a bpm_user cannot complete task %', task_id using errcode = 'BP002';
  end if;
  -- ===== LOCK the instance (loading its graph), then close the task if every rule holds
  -- (an instance without a caller is the root of its call tree: one statement;
  -- a called instance locks its root first, see instance__lock_tree)
  select i as instance, d.graph, d.inclusive_joins into v_locked
  from bpm.process_instance i
  join bpm.process_definition d on d.tenant_id = i.tenant_id and d.id = i.definition_id
  where i.tenant_id = v_tenant
    and i.id = (select t.instance_id from bpm.user_task t where t.tenant_id = v_tenant and t.id = task_id)
    and i.root_instance_id is null
  for update of i;
  if not found then
    select i as instance, d.graph, d.inclusive_joins into v_locked
    from bpm_private.instance__lock_tree(v_tenant, (select t.instance_id from bpm.user_task t where t.tenant_id = v_tenant and t.id = task_id)) i
    join bpm.process_definition d on d.tenant_id = i.tenant_id and d.id = i.definition_id;
  end if;
  v_instance := v_locked.instance;
  -- ("is true": by primary key, not through the inbox index; see run__finish)
  update bpm.user_task t
  set state = 'completed', completed_at = pg_catalog.now(), completed_by = v_user,
    assignee = coalesce(t.assignee, case when v_is_user then v_user end)
  where t.tenant_id = v_tenant and t.id = task_id and (t.state = 'open') is true and v_instance.state = 'active'
    and (not v_is_user or t.assignee = v_user
         or (t.assignee is null and (v_user = any(t.candidate_users) or t.candidate_groups && bpm_private.current_groups())))
  returning * into v_task;
  if not found then
    -- ===== GUARD: say precisely why (BP103, BP002, BP203, BP202/BP201), else it is someone else's task
    perform bpm_private.user_task__lock(v_tenant, task_id, 'complete it');
    raise exception 'user task % is assigned to another user', task_id using errcode = 'BP204';
  end if;
  -- ===== LEAVE the task
  perform bpm_private.token__move(v_instance, v_locked.graph, v_locked.inclusive_joins, v_task.id, v_task.element_id, null, v_variables, 'taskCompleted');
  return v_task;
end;
$$;
comment on function bpm.complete_task(uuid, jsonb) is E'Completes an open user task; variables merge per top-level key into the instance, or into the local of that name of the nearest enclosing subprocess that has one. A bpm_user may complete a task assigned to them, or an unassigned one offered to them (which claims it). Errors: BP103 not found, BP203 not open, BP204 assigned to another user, BP202 instance suspended. Roles: bpm_admin, bpm_user.';

create or replace function bpm.claim_task(task_id uuid)
returns bpm.user_task
language plpgsql
volatile
security definer
set search_path = ''
set plan_cache_mode = force_generic_plan
as $$
declare
  v_tenant text := bpm_private.require_context(array['bpm_admin', 'bpm_user'], 'claim a task');
  v_user text := bpm_private.current_user_id();
  v_task bpm.user_task;
begin
  if v_user is null then
    raise exception 'bpm.user_id is not set: nobody to claim task % for', task_id using errcode = 'BP002';
  end if;
  v_task := (bpm_private.user_task__lock(v_tenant, task_id, 'claim it')).task;
  if v_task.assignee = v_user then
    return v_task;
  end if;
  if v_task.assignee is not null then
    raise exception 'user task % is already assigned to another user', task_id using errcode = 'BP204';
  end if;
  update bpm.user_task t set assignee = v_user
  where t.tenant_id = v_tenant and t.id = task_id
  returning * into v_task;
  perform bpm_private.event__emit(v_tenant, v_task.instance_id, array['taskAssigned'], array[v_task.id], array[v_task.element_id]);
  return v_task;
end;
$$;
comment on function bpm.claim_task(uuid) is E'Assigns an open task to the acting user (bpm.user_id). Claiming a task already assigned to oneself is a no-op; assigned to someone else: BP204. Roles: bpm_admin, bpm_user (only tasks offered to them).';

create or replace function bpm.unclaim_task(task_id uuid)
returns bpm.user_task
language plpgsql
volatile
security definer
set search_path = ''
set plan_cache_mode = force_generic_plan
as $$
declare
  v_tenant text := bpm_private.require_context(array['bpm_admin', 'bpm_user'], 'unclaim a task');
  v_task bpm.user_task;
begin
  v_task := (bpm_private.user_task__lock(v_tenant, task_id, 'unclaim it')).task;
  if bpm_private.caller_role() = 'bpm_user' and v_task.assignee is distinct from bpm_private.current_user_id() then
    raise exception 'user task % is not assigned to you', task_id using errcode = 'BP204';
  end if;
  update bpm.user_task t set assignee = null
  where t.tenant_id = v_tenant and t.id = task_id
  returning * into v_task;
  perform bpm_private.event__emit(v_tenant, v_task.instance_id, array['taskAssigned'], array[v_task.id], array[v_task.element_id]);
  return v_task;
end;
$$;
comment on function bpm.unclaim_task(uuid) is E'Removes the assignee of an open task, offering it to its candidates again. A bpm_user may unclaim only their own task (BP204). Roles: bpm_admin, bpm_user.';

create or replace function bpm.set_assignee(task_id uuid, assignee text)
returns bpm.user_task
language plpgsql
volatile
security definer
set search_path = ''
set plan_cache_mode = force_generic_plan
as $$
declare
  v_tenant text := bpm_private.require_context(array['bpm_admin'], 'set the assignee of a task');
  v_task bpm.user_task;
begin
  perform bpm_private.user_task__lock(v_tenant, task_id, 'reassign it');
  update bpm.user_task t set assignee = nullif(set_assignee.assignee, '')
  where t.tenant_id = v_tenant and t.id = task_id
  returning * into v_task;
  perform bpm_private.event__emit(v_tenant, v_task.instance_id, array['taskAssigned'], array[v_task.id], array[v_task.element_id]);
  return v_task;
end;
$$;
comment on function bpm.set_assignee(uuid, text) is E'Sets (or with null clears) the assignee of an open task. Roles: bpm_admin.';

-- Changes to an open task, as Camunda 8's user task update offers them:
-- candidate users and groups, due and follow-up dates, priority. Keys left
-- out stay as they are; null clears a date or a candidate list. A moved due
-- date clears the overdue mark and reschedules the due and escalation jobs
-- (jobs of dates cleared or moved find nothing to do when they run).
create or replace function bpm.update_task(task_id uuid, changes jsonb)
returns bpm.user_task
language plpgsql
volatile
security definer
set search_path = ''
set plan_cache_mode = force_generic_plan
as $$
declare
  v_tenant text := bpm_private.require_context(array['bpm_admin'], 'update a task');
  v_old bpm.user_task;
  v_task bpm.user_task;
  v_due timestamptz;
begin
  perform bpm_private.task_changes__check(changes);
  v_old := (bpm_private.user_task__lock(v_tenant, task_id, 'update it')).task;
  v_due := case when changes ? 'dueDate' then bpm_private.value__to_timestamp(changes -> 'dueDate', v_old.element_id, 'dueDate') else v_old.due_at end;
  update bpm.user_task t
  set candidate_users = case when changes ? 'candidateUsers' then bpm_private.task_changes__identities(changes, 'candidateUsers') else t.candidate_users end,
    candidate_groups = case when changes ? 'candidateGroups' then bpm_private.task_changes__identities(changes, 'candidateGroups') else t.candidate_groups end,
    priority = coalesce((changes ->> 'priority')::int, t.priority),
    due_at = v_due,
    overdue_since = case when v_due is distinct from t.due_at then null else t.overdue_since end,
    follow_up_at = case when changes ? 'followUpDate' then bpm_private.value__to_timestamp(changes -> 'followUpDate', t.element_id, 'followUpDate') else t.follow_up_at end
  where t.tenant_id = v_tenant and t.id = task_id
  returning * into v_task;
  perform bpm_private.user_task__enqueue_deadlines(v_tenant, task_id, pg_catalog.jsonb_build_object(
    'due_at', case when v_task.due_at is distinct from v_old.due_at then v_task.due_at end,
    'follow_up_at', case when v_task.follow_up_at is distinct from v_old.follow_up_at then v_task.follow_up_at end,
    'escalate_at', case when v_task.due_at is distinct from v_old.due_at and v_task.escalated_at is null then bpm_private.user_task__escalate_at(v_tenant, v_task) end));
  perform bpm_private.event__emit(v_tenant, v_task.instance_id, array['taskUpdated'], array[v_task.id], array[v_task.element_id]);
  return v_task;
end;
$$;
comment on function bpm.update_task(uuid, jsonb) is E'Changes an open task: changes is an object with any of candidateUsers and candidateGroups (arrays of names, null for none), dueDate and followUpDate (ISO 8601 date-time, date or duration from now; null clears), priority (an integer). Keys left out stay as they are. A moved due date clears the overdue mark and reschedules the due and escalation jobs. Emits taskUpdated. Errors: BP401 changes not an object, an unknown key or a value of the wrong type; BP304 a date that is none; BP103 not found; BP203 not open; BP202 instance suspended. Roles: bpm_admin.';

-- BP401 unless changes is an object of known keys with values of the right type.
create or replace function bpm_private.task_changes__check(changes jsonb)
returns void
language plpgsql
immutable
set search_path = ''
as $$
declare
  v_key text;
begin
  if changes is null or pg_catalog.jsonb_typeof(changes) <> 'object' then
    raise exception 'invalid argument: changes must be a JSON object' using errcode = 'BP401';
  end if;
  for v_key in select k from pg_catalog.jsonb_object_keys(changes) k loop
    if v_key not in ('candidateUsers', 'candidateGroups', 'dueDate', 'followUpDate', 'priority') then
      raise exception 'invalid argument: unknown change "%" (use candidateUsers, candidateGroups, dueDate, followUpDate, priority)', v_key using errcode = 'BP401';
    end if;
    if v_key = 'priority' and (pg_catalog.jsonb_typeof(changes -> v_key) <> 'number' or (changes ->> v_key)::numeric <> pg_catalog.trunc((changes ->> v_key)::numeric)
                               or abs((changes ->> v_key)::numeric) > 2147483647) then
      raise exception 'invalid argument: priority must be an integer, not %', changes -> v_key using errcode = 'BP401';
    end if;
    if v_key in ('dueDate', 'followUpDate') and pg_catalog.jsonb_typeof(changes -> v_key) not in ('string', 'null') then
      raise exception 'invalid argument: % must be a string or null, not %', v_key, changes -> v_key using errcode = 'BP401';
    end if;
    if v_key in ('candidateUsers', 'candidateGroups') and not (
         pg_catalog.jsonb_typeof(changes -> v_key) = 'null'
         or (pg_catalog.jsonb_typeof(changes -> v_key) = 'array'
             and not exists (select 1 from pg_catalog.jsonb_array_elements(changes -> v_key) e where pg_catalog.jsonb_typeof(e) <> 'string' or pg_catalog.btrim(e #>> '{}') = ''))) then
      raise exception 'invalid argument: % must be an array of non-empty names or null, not %', v_key, changes -> v_key using errcode = 'BP401';
    end if;
  end loop;
end;
$$;
comment on function bpm_private.task_changes__check(jsonb) is E'Checks the changes of bpm.update_task: an object of known keys with values of the right type (BP401).';

-- A checked candidate list of changes: its names trimmed, each once, in order.
create or replace function bpm_private.task_changes__identities(changes jsonb, key text)
returns text[]
language sql
immutable
set search_path = ''
as $$
  select coalesce(pg_catalog.array_agg(n order by first), '{}')
  from (select pg_catalog.btrim(e) as n, min(o) as first
        from pg_catalog.jsonb_array_elements_text(case when pg_catalog.jsonb_typeof(changes -> key) = 'array' then changes -> key else '[]' end) with ordinality x(e, o)
        group by pg_catalog.btrim(e)) d;
$$;
comment on function bpm_private.task_changes__identities(jsonb, text) is E'The candidate names of a bpm.update_task change (trimmed, each once, in order; null: none).';
