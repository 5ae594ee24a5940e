-- User task deadlines (issue 4): a task with a due date is marked overdue
-- when it passes (event taskOverdue), a follow-up date emits
-- taskFollowUpDue, and an escalation rule (pgbpm:escalateAfter, a duration
-- after the due date, or after creation without one) adds candidate groups
-- and/or reassigns the task (taskEscalated). Each is a graphile-worker job
-- (bpm_task_deadline, job_key bpm-task-<kind>:<task id>), enqueued when the
-- task is created; the handler re-checks the task under the instance lock.

-- Deadline data for a new task (merged into its wait data): escalation
-- evaluated now, flag `deadline` when any job is needed.
create or replace function bpm_private.user_task__deadlines(node jsonb, variables jsonb, data jsonb)
returns jsonb
language plpgsql
stable
set search_path = ''
as $$
declare
  v_rule jsonb := node -> 'taskEscalation';
  v_el text := node ->> 'id';
  v_after text;
  v_escalate_at timestamptz;
begin
  if v_rule is not null and v_rule <> 'null'::jsonb then
    v_after := bpm_private.value__to_text(bpm_private.value__eval(v_rule -> 'after', variables, v_el));
    begin
      v_escalate_at := coalesce((data ->> 'due_at')::timestamptz, pg_catalog.now()) + pg_catalog.replace(v_after, ',', '.')::interval;
    exception when others then
      raise exception 'pgbpm:escalateAfter of element % is not an ISO 8601 duration: "%"', v_el, v_after using errcode = 'BP304';
    end;
    data := data || pg_catalog.jsonb_build_object('escalate_at', v_escalate_at,
      'escalate_groups', pg_catalog.to_jsonb(bpm_private.value__to_text_array(bpm_private.value__eval(v_rule -> 'addCandidateGroups', variables, v_el))),
      'escalate_assignee', bpm_private.value__to_text(bpm_private.value__eval(v_rule -> 'reassignTo', variables, v_el)));
  end if;
  if data ->> 'due_at' is not null or data ->> 'follow_up_at' is not null or data ? 'escalate_at' then
    data := data || '{"deadline": true}'::jsonb;
  end if;
  return data;
end;
$$;
comment on function bpm_private.user_task__deadlines(jsonb, jsonb, jsonb) is E'Evaluates a task''s escalation rule and flags tasks that need deadline jobs.';

create or replace function bpm_private.user_task__enqueue_deadlines(tenant_id text, task_id uuid, data jsonb)
returns void
language plpgsql
volatile
set search_path = ''
as $$
declare
  v_kind text;
  v_at timestamptz;
begin
  foreach v_kind in array array['due', 'followUp', 'escalate'] loop
    v_at := (data ->> case v_kind when 'due' then 'due_at' when 'followUp' then 'follow_up_at' else 'escalate_at' end)::timestamptz;
    continue when v_at is null;
    perform bpm_private.job__schedule('bpm_task_deadline',
      pg_catalog.json_build_object('tenant_id', tenant_id, 'task_id', task_id, 'kind', v_kind),
      v_at, 'bpm-task-' || v_kind || ':' || task_id::text, 5, 0);
  end loop;
end;
$$;
comment on function bpm_private.user_task__enqueue_deadlines(text, uuid, jsonb) is E'Schedules the due, follow-up and escalation jobs of a new user task.';

create or replace function bpm.process_task_deadline(task_id uuid, kind text)
returns bpm.user_task
language plpgsql
volatile
security definer
set search_path = ''
set plan_cache_mode = force_generic_plan
as $$
declare
  v_tenant text := bpm_private.require_context(array['bpm_admin', 'bpm_engine'], 'process a task deadline');
  v_task bpm.user_task;
  v_instance bpm.process_instance;
  v_graph jsonb;
  v_data jsonb;
begin
  if kind is null or kind not in ('due', 'followUp', 'escalate') then
    raise exception 'invalid argument: kind must be due, followUp or escalate, got %', coalesce(kind, 'null') using errcode = 'BP401';
  end if;
  v_instance := bpm_private.instance__lock_tree(v_tenant, (select t.instance_id from bpm.user_task t where t.tenant_id = v_tenant and t.id = task_id));
  select * into v_task from bpm.user_task t where t.tenant_id = v_tenant and t.id = task_id;
  -- gone, done, or waiting for the instance's activation: nothing to do
  if not found or v_task.state <> 'open' or v_instance.state <> 'active' then
    return null;
  end if;
  if kind = 'due' then
    if v_task.due_at is null or v_task.due_at > pg_catalog.now() or v_task.overdue_since is not null then
      return null;
    end if;
    update bpm.user_task t set overdue_since = pg_catalog.now() where t.tenant_id = v_tenant and t.id = task_id returning * into v_task;
    perform bpm_private.event__emit(v_tenant, v_task.instance_id, array['taskOverdue'], array[v_task.id], array[v_task.element_id]);
  elsif kind = 'followUp' then
    if v_task.follow_up_at is null or v_task.follow_up_at > pg_catalog.now() then
      return null;
    end if;
    perform bpm_private.event__emit(v_tenant, v_task.instance_id, array['taskFollowUpDue'], array[v_task.id], array[v_task.element_id]);
  else
    if v_task.escalated_at is not null then
      return null;
    end if;
    select d.graph into v_graph from bpm.process_definition d where d.tenant_id = v_tenant and d.id = v_instance.definition_id;
    v_data := bpm_private.user_task__deadlines(v_graph -> 'nodes' -> v_task.element_id, v_instance.variables,
      pg_catalog.jsonb_build_object('due_at', v_task.due_at));
    if not v_data ? 'escalate_at' or (v_data ->> 'escalate_at')::timestamptz > pg_catalog.now() + interval '1 second' then
      -- no rule (any more), or not yet due (the due date moved): nothing now
      return null;
    end if;
    update bpm.user_task t
    set escalated_at = pg_catalog.now(),
      assignee = coalesce(v_data ->> 'escalate_assignee', t.assignee),
      candidate_groups = array(select distinct g from unnest(t.candidate_groups || coalesce(
        (select array_agg(e) from pg_catalog.jsonb_array_elements_text(v_data -> 'escalate_groups') e), '{}')) g order by g)
    where t.tenant_id = v_tenant and t.id = task_id
    returning * into v_task;
    perform bpm_private.event__emit(v_tenant, v_task.instance_id, array['taskEscalated'], array[v_task.id], array[v_task.element_id]);
  end if;
  return v_task;
end;
$$;
comment on function bpm.process_task_deadline(uuid, text) is E'Worker entry point (job bpm_task_deadline): kind due marks an open task overdue once its due date has passed (taskOverdue), followUp emits taskFollowUpDue, escalate applies the task''s escalation rule (adds pgbpm:escalateToGroups to the candidates and/or assigns pgbpm:escalateToAssignee; taskEscalated). Idempotent: a task completed, already marked or of a suspended instance is left alone and null returned. Roles: bpm_admin, bpm_engine.';

-- When an open task's escalation rule applies (null without a rule).
create or replace function bpm_private.user_task__escalate_at(tenant_id text, task bpm.user_task)
returns timestamptz
language plpgsql
stable
set search_path = ''
as $$
declare
  v_node jsonb := bpm_private.instance__node(tenant_id, task.instance_id, task.element_id);
  v_variables jsonb := (select i.variables from bpm.process_instance i where i.tenant_id = user_task__escalate_at.tenant_id and i.id = task.instance_id);
begin
  if v_node -> 'taskEscalation' is null then
    return null;
  end if;
  return (bpm_private.user_task__deadlines(v_node, v_variables, pg_catalog.jsonb_build_object('due_at', task.due_at)) ->> 'escalate_at')::timestamptz;
end;
$$;
comment on function bpm_private.user_task__escalate_at(text, bpm.user_task) is E'When an open task''s escalation rule applies, or null.';
