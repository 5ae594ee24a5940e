-- A user's task inbox: the open tasks assigned to them, and the open
-- unassigned tasks offered to them as a candidate user or through one of
-- their groups, in inbox order (priority desc, created_at, id).
--
-- Offers are kept per identity in bpm_private.task_offer ("u:<user>",
-- "g:<group>"; only for open, unassigned tasks), so that each identity's
-- offers are one index range in inbox order: reading a page costs a few
-- rows per identity however many tasks the tenant has open. (Through
-- bpm.user_task and its row-level security the inbox of a user offered few
-- of many open tasks walks all of them.) The one statement that creates
-- tasks (run__flush_waits) writes their offers; triggers on bpm.user_task
-- keep them, so that every path that assigns, reprioritises, completes,
-- cancels or deletes a task keeps them without knowing of them.

-- The identities a task with these candidates is offered to, each once.
create or replace function bpm_private.task_offer__identities(candidate_users text[], candidate_groups text[])
returns text[]
language plpgsql
immutable
set search_path = ''
as $$
begin
  return array(
    select 'u:' || u from pg_catalog.unnest(candidate_users) u
    union
    select 'g:' || g from pg_catalog.unnest(candidate_groups) g);
end;
$$;
comment on function bpm_private.task_offer__identities(text[], text[]) is E'The identities ("u:<user>", "g:<group>") a task with these candidate users and groups is offered to, each once.';

-- The offers of one task, rewritten from its row when it changes or is
-- deleted (none when it is not open, is assigned, or has no candidates). It
-- runs as the engine function that wrote the task (bpm_owner, which owns
-- task_offer).
create or replace function bpm_private.task_offer__sync()
returns trigger
language plpgsql
volatile
set search_path = ''
as $$
begin
  delete from bpm_private.task_offer o where o.tenant_id = old.tenant_id and o.task_id = old.id;
  if tg_op = 'UPDATE' and new.state = 'open' and new.assignee is null then
    insert into bpm_private.task_offer (tenant_id, identity, rank, created_at, task_id)
    select new.tenant_id, i.identity, -new.priority, new.created_at, new.id
    from pg_catalog.unnest(bpm_private.task_offer__identities(new.candidate_users, new.candidate_groups)) as i(identity);
  end if;
  return null;
end;
$$;
comment on function bpm_private.task_offer__sync() is E'Trigger of bpm.user_task (updates and deletes): rewrites the task''s offers (bpm_private.task_offer) from its state, assignee, priority and candidates.';

-- (new tasks get their offers from the one statement that inserts tasks,
-- run__flush_waits: a trigger's WHEN condition is prepared again by every
-- insert statement, 2% of a start)
drop trigger if exists task_offer_on_insert on bpm.user_task;
drop trigger if exists task_offer_on_update on bpm.user_task;
create trigger task_offer_on_update after update of state, assignee, priority, candidate_users, candidate_groups on bpm.user_task
  -- (the smallest condition that skips tasks without candidates: every
  -- update statement prepares it again, completions included)
  for each row when (old.candidate_users || old.candidate_groups || new.candidate_users || new.candidate_groups <> '{}')
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
