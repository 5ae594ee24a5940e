--! Previous: sha1:15b8950c22322ff8c23eb4a06add3351a09bf4b7
--! Hash: sha1:c106af65b86b86b4723a9859c81f7bd0ee596a4b
--! Message: Camunda 7 generated forms (camunda:formData) and the task inbox (bpm.task_inbox over bpm_private.task_offer)

-- Camunda 7 generated forms (camunda:formData): a user task's form carries
-- the fields; default values given as expressions are evaluated when the
-- task is created. user_task__form takes the static form and the spec.
drop function if exists bpm_private.user_task__form(jsonb, jsonb, text);
--! Included elements/tasks.sql
-- User task behaviour: the task's attributes, evaluated from the compiled
-- spec when the token arrives; the token then waits (run__flush writes it).
create or replace function bpm_private.user_task__create(node jsonb, variables jsonb)
returns jsonb
language plpgsql
stable
set search_path = ''
as $$
declare
  v_spec jsonb := coalesce(node -> 'userTask', '{}');
  v_el text := node ->> 'id';
  v_data jsonb;
begin
  if (v_spec is null or v_spec = '{}'::jsonb) and node -> 'taskEscalation' is null then
    v_data := pg_catalog.jsonb_build_object('name', node -> 'name', 'form', node -> 'form');
  else
    v_data := pg_catalog.jsonb_build_object(
      'name', node -> 'name',
      'form', bpm_private.user_task__form(node -> 'form', v_spec, variables, v_el),
      'assignee', bpm_private.value__to_text(bpm_private.value__eval(v_spec -> 'assignee', variables, v_el)),
      'candidate_users', pg_catalog.to_jsonb(bpm_private.value__to_text_array(bpm_private.value__eval(v_spec -> 'candidateUsers', variables, v_el))),
      'candidate_groups', pg_catalog.to_jsonb(bpm_private.value__to_text_array(bpm_private.value__eval(v_spec -> 'candidateGroups', variables, v_el))),
      'priority', bpm_private.user_task__priority(bpm_private.value__eval(v_spec -> 'priority', variables, v_el), v_el),
      'due_at', bpm_private.value__to_timestamp(bpm_private.value__eval(v_spec -> 'dueDate', variables, v_el), v_el, 'dueDate'),
      'follow_up_at', bpm_private.value__to_timestamp(bpm_private.value__eval(v_spec -> 'followUpDate', variables, v_el), v_el, 'followUpDate'));
    v_data := bpm_private.user_task__deadlines(node, variables, v_data);
  end if;
  return v_data;
end;
$$;
comment on function bpm_private.user_task__create(jsonb, jsonb) is E'User task behaviour: assignee, candidates, priority and dates for a new task.';

-- The form of a new task: the node's static form (a form key or reference,
-- generated fields) with what is evaluated now: a form key or external
-- reference given as an expression, and default values of generated fields
-- given as expressions. Null when the task has no form.
create or replace function bpm_private.user_task__form(static jsonb, spec jsonb, variables jsonb, element_id text)
returns jsonb
language plpgsql
stable
set search_path = ''
as $$
declare
  v_form jsonb := static;
  v_target jsonb := spec -> 'form';
  v_field text := case when v_target ? 'key' then 'key' else 'externalReference' end;
  v_text text;
begin
  if v_target is not null then
    v_text := bpm_private.value__to_text(bpm_private.value__eval(v_target -> v_field, variables, element_id));
    if v_text is not null and pg_catalog.btrim(v_text) <> '' then
      v_form := coalesce(v_form, '{}') || pg_catalog.jsonb_build_object(v_field, pg_catalog.btrim(v_text));
    end if;
  end if;
  if spec ? 'formDefaults' then
    v_form := pg_catalog.jsonb_set(v_form, '{fields}', coalesce((
      select pg_catalog.jsonb_agg(case when d.value is null then f else f || pg_catalog.jsonb_build_object('defaultValue', d.value) end order by f.n)
      from pg_catalog.jsonb_array_elements(v_form -> 'fields') with ordinality as f(f, n)
      left join lateral (select bpm_private.form_field__default(spec -> 'formDefaults' -> (f.f ->> 'id'), variables, element_id) as value) d on true), '[]'));
  end if;
  return v_form;
end;
$$;
comment on function bpm_private.user_task__form(jsonb, jsonb, jsonb, text) is E'The form of a new user task: its static form with a form key or external reference given as an expression and the expression defaults of generated fields evaluated; null when it has none.';

-- The default of a generated form field given as an expression. Camunda 7
-- evaluates it when the form is shown; here when the task is created, so a
-- variable that is not set yet leaves the field without a default instead of
-- failing the transition.
create or replace function bpm_private.form_field__default(value jsonb, variables jsonb, element_id text)
returns jsonb
language plpgsql
stable
set search_path = ''
as $$
begin
  if value is null then
    return null;
  end if;
  return nullif(bpm_private.value__eval(value, variables, element_id), 'null');
exception when sqlstate 'BP302' then
  return null;
end;
$$;
comment on function bpm_private.form_field__default(jsonb, jsonb, text) is E'The default value of a generated form field given as an expression, or null when a variable it reads is not set.';

-- A task priority from a value: an integer (text or number), or the
-- fallback when there is none; BP303 for anything else.
create or replace function bpm_private.priority__of(value jsonb, element_id text, fallback int)
returns int
language plpgsql
immutable
set search_path = ''
as $$
declare
  v_text text := bpm_private.value__to_text(value);
begin
  if v_text is null then
    return fallback;
  end if;
  if v_text !~ '^\s*-?\d{1,9}\s*$' then
    raise exception 'priority of element % is not an integer: "%"', element_id, v_text using errcode = 'BP303';
  end if;
  return v_text::int;
end;
$$;
comment on function bpm_private.priority__of(jsonb, text, int) is E'A task priority from a value (the fallback when null; BP303 if not an integer).';

create or replace function bpm_private.user_task__priority(value jsonb, element_id text)
returns int
language plpgsql
immutable
set search_path = ''
as $$
begin
  return bpm_private.priority__of(value, element_id, 50);
end;
$$;
comment on function bpm_private.user_task__priority(jsonb, text) is E'User task priority from a value (default 50; BP303 if not an integer).';

-- Service, send and business-rule tasks with a topic: an external task waits
-- for a worker (fetch_and_lock). Its priority (camunda:taskPriority, default
-- 0) is evaluated over what the task sees.
create or replace function bpm_private.external_task__create(node jsonb, variables jsonb)
returns jsonb
language plpgsql
stable
set search_path = ''
as $$
begin
  if node ->> 'topic' is null then
    raise exception 'element % has no external task topic', node ->> 'id' using errcode = 'BP305';
  end if;
  return pg_catalog.jsonb_build_object('topic', node ->> 'topic', 'headers', node -> 'headers',
    'priority', case when node ? 'taskPriority'
      then bpm_private.priority__of(bpm_private.value__eval(node -> 'taskPriority', variables, node ->> 'id'), node ->> 'id', 0) else 0 end);
end;
$$;
comment on function bpm_private.external_task__create(jsonb, jsonb) is E'External task behaviour: the topic, headers and priority of a new external task.';
--! EndIncluded elements/tasks.sql

-- A user's task inbox (bpm.task_inbox) reads the tasks offered to them per
-- identity (user or group) from bpm_private.task_offer, kept by a trigger
-- on bpm.user_task: one index range per identity in inbox order.
create table bpm_private.task_offer (
  tenant_id text not null,
  identity text not null,
  rank int not null,
  created_at timestamptz not null,
  task_id uuid not null,
  primary key (tenant_id, task_id, identity)
);
create index task_offer_inbox_idx on bpm_private.task_offer (tenant_id, identity, rank, created_at, task_id);
comment on table bpm_private.task_offer is E'Open unassigned user tasks by the identities they are offered to ("u:<user>", "g:<group>"), ranked as the inbox orders them (rank = -priority, then created_at); kept by triggers on bpm.user_task.';
--! Included setup/policies.sql
-- Row-level security: enabled and FORCED on every table (so bpm_owner, which
-- runs the security definer API functions, is filtered too). The tenant is
-- read once per statement through (select …) and fails closed: an unset or
-- empty bpm.tenant_id matches no row.
do $$
declare
  v_table regclass;
begin
  foreach v_table in array array[
    'bpm.deployment', 'bpm.process_definition', 'bpm.process_instance', 'bpm.user_task',
    'bpm.external_task', 'bpm.incident', 'bpm.activity_instance', 'bpm.event', 'bpm.event_subscription',
    'bpm.message_buffer', 'bpm_private.token', 'bpm_private.event_listener', 'bpm_private.message_receipt',
    'bpm_private.task_listener', 'bpm_private.start_request', 'bpm_private.deferred_delivery', 'bpm_private.task_offer'
  ]::regclass[] loop
    execute pg_catalog.format('alter table %s enable row level security', v_table);
    execute pg_catalog.format('alter table %s force row level security', v_table);
    execute pg_catalog.format('drop policy if exists tenant_isolation on %s', v_table);
    execute pg_catalog.format(
      'create policy tenant_isolation on %s to bpm_owner, bpm_admin, bpm_designer, bpm_engine '
      'using (tenant_id = (select nullif(pg_catalog.current_setting(''bpm.tenant_id'', true), ''''))) '
      'with check (tenant_id = (select nullif(pg_catalog.current_setting(''bpm.tenant_id'', true), '''')))',
      v_table);
  end loop;
end;
$$;

-- bpm_user: definitions of its tenant; only the tasks offered to it; only the
-- instances it started or holds a task of.
drop policy if exists user_reads_definitions on bpm.process_definition;
create policy user_reads_definitions on bpm.process_definition for select to bpm_user
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
grant select on bpm.deployment, bpm.process_definition, bpm.process_instance, bpm.user_task,
  bpm.external_task, bpm.incident, bpm.activity_instance, bpm.event, bpm.event_subscription, bpm.message_buffer
  to bpm_admin, bpm_designer, bpm_engine;
grant select on bpm.process_definition, bpm.process_instance, bpm.user_task, bpm.event to bpm_user;
--! EndIncluded setup/policies.sql
--! Included api/task_inbox.sql
-- A user's task inbox: the open tasks assigned to them, and the open
-- unassigned tasks offered to them as a candidate user or through one of
-- their groups, in inbox order (priority desc, created_at, id).
--
-- Offers are kept per identity in bpm_private.task_offer ("u:<user>",
-- "g:<group>"; only for open, unassigned tasks), so that each identity's
-- offers are one index range in inbox order: reading a page costs a few
-- rows per identity however many tasks the tenant has open. (Through
-- bpm.user_task and its row-level security the inbox of a user offered few
-- of many open tasks walks all of them.) A trigger on bpm.user_task keeps
-- the offers, so that every path that creates, assigns, reprioritises,
-- completes, cancels or deletes a task keeps them without knowing of them.

-- The offers of one task, rewritten from its row (none when it is not open,
-- is assigned, or has no candidates).
create or replace function bpm_private.task_offer__sync()
returns trigger
language plpgsql
volatile
security definer
set search_path = ''
as $$
begin
  if tg_op in ('UPDATE', 'DELETE') then
    delete from bpm_private.task_offer o where o.tenant_id = old.tenant_id and o.task_id = old.id;
  end if;
  if tg_op in ('INSERT', 'UPDATE') and new.state = 'open' and new.assignee is null then
    insert into bpm_private.task_offer (tenant_id, identity, rank, created_at, task_id)
    select new.tenant_id, i.identity, -new.priority, new.created_at, new.id
    from (
      select 'u:' || u as identity from pg_catalog.unnest(new.candidate_users) u
      union
      select 'g:' || g from pg_catalog.unnest(new.candidate_groups) g
    ) i;
  end if;
  return null;
end;
$$;
comment on function bpm_private.task_offer__sync() is E'Trigger of bpm.user_task: rewrites the task''s offers (bpm_private.task_offer) from its state, assignee, priority and candidates.';

drop trigger if exists task_offer_on_insert on bpm.user_task;
create trigger task_offer_on_insert after insert on bpm.user_task
  for each row when (new.assignee is null and (pg_catalog.cardinality(new.candidate_users) > 0 or pg_catalog.cardinality(new.candidate_groups) > 0))
  execute function bpm_private.task_offer__sync();
drop trigger if exists task_offer_on_update on bpm.user_task;
create trigger task_offer_on_update after update of state, assignee, priority, candidate_users, candidate_groups on bpm.user_task
  for each row when (
    (pg_catalog.cardinality(old.candidate_users) > 0 or pg_catalog.cardinality(old.candidate_groups) > 0
     or pg_catalog.cardinality(new.candidate_users) > 0 or pg_catalog.cardinality(new.candidate_groups) > 0)
    and (old.state, old.assignee, old.priority, old.candidate_users, old.candidate_groups)
        is distinct from (new.state, new.assignee, new.priority, new.candidate_users, new.candidate_groups))
  execute function bpm_private.task_offer__sync();
drop trigger if exists task_offer_on_delete on bpm.user_task;
create trigger task_offer_on_delete after delete on bpm.user_task
  for each row when (old.state = 'open' and old.assignee is null and (pg_catalog.cardinality(old.candidate_users) > 0 or pg_catalog.cardinality(old.candidate_groups) > 0))
  execute function bpm_private.task_offer__sync();

create or replace function bpm.task_inbox(after_task_id uuid default null, max_tasks int default 50)
returns setof bpm.user_task
language plpgsql
stable
security definer
set search_path = ''
as $$
declare
  v_tenant text := bpm_private.require_context(array['bpm_admin', 'bpm_user'], 'read a task inbox');
  v_user text := bpm_private.current_user_id();
  v_identities text[];
  v_after bpm.user_task;
  v_ids uuid[];
begin
  if v_user is null then
    raise exception 'bpm.user_id is not set: a task inbox is a user''s' using errcode = 'BP002';
  end if;
  if max_tasks is null or max_tasks < 1 or max_tasks > 1000 then
    raise exception 'invalid argument: max_tasks must be 1 to 1000, not %', coalesce(max_tasks::text, 'null') using errcode = 'BP401';
  end if;
  if after_task_id is not null then
    select * into v_after from bpm.user_task t where t.tenant_id = v_tenant and t.id = after_task_id;
    if not found then
      raise exception 'user task % not found', after_task_id using errcode = 'BP103';
    end if;
  end if;
  v_identities := array['u:' || v_user] || array(select 'g:' || g from pg_catalog.unnest(bpm_private.current_groups()) g);
  -- the page's ids, then its rows by primary key ("= any": an index scan
  -- whatever the statistics say)
  with page as (
    (select t.id, t.priority, t.created_at from bpm.user_task t
     where t.tenant_id = v_tenant and t.assignee = v_user and t.state = 'open'
       and (v_after.id is null or t.priority < v_after.priority
            or (t.priority = v_after.priority and (t.created_at, t.id) > (v_after.created_at, v_after.id)))
     order by t.priority desc, t.created_at, t.id
     limit max_tasks)
    union
    select o.task_id, -o.rank, o.created_at
    from pg_catalog.unnest(v_identities) i(identity)
    cross join lateral (
      select o.task_id, o.rank, o.created_at from bpm_private.task_offer o
      where o.tenant_id = v_tenant and o.identity = i.identity
        and (v_after.id is null or (o.rank, o.created_at, o.task_id) > (-v_after.priority, v_after.created_at, v_after.id))
      order by o.rank, o.created_at, o.task_id
      limit max_tasks) o
  )
  select array(select p.id from page p order by p.priority desc, p.created_at, p.id limit max_tasks) into v_ids;
  return query
  select t.* from bpm.user_task t
  where t.tenant_id = v_tenant and t.id = any(v_ids)
  order by t.priority desc, t.created_at, t.id;
end;
$$;
comment on function bpm.task_inbox(uuid, int) is E'The acting user''s task inbox: open tasks assigned to them and open unassigned tasks offered to them (as a candidate user or through one of their groups), highest priority first, then oldest; at most max_tasks (1..1000), after the task after_task_id (the last one of the previous page). Its cost does not grow with the number of open tasks the tenant has. Raises BP002 without bpm.user_id, BP103 when after_task_id names no task, BP401 for max_tasks out of range. Roles: bpm_admin, bpm_user.';
--! EndIncluded api/task_inbox.sql
insert into bpm_private.task_offer (tenant_id, identity, rank, created_at, task_id)
select t.tenant_id, i.identity, -t.priority, t.created_at, t.id
from bpm.user_task t
cross join lateral (
  select 'u:' || u as identity from unnest(t.candidate_users) u
  union
  select 'g:' || g from unnest(t.candidate_groups) g
) i
where t.state = 'open' and t.assignee is null;
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
