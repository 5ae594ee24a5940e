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
      'form', coalesce(bpm_private.user_task__form(v_spec -> 'form', variables, v_el), node -> 'form'),
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

-- A form key or external reference given as an expression (a static form is
-- the node's own "form"): {"key": …} or {"externalReference": …}, null when
-- the expression yields nothing.
create or replace function bpm_private.user_task__form(spec jsonb, variables jsonb, element_id text)
returns jsonb
language plpgsql
stable
set search_path = ''
as $$
declare
  v_field text := case when spec ? 'key' then 'key' else 'externalReference' end;
  v_text text;
begin
  if spec is null then
    return null;
  end if;
  v_text := bpm_private.value__to_text(bpm_private.value__eval(spec -> v_field, variables, element_id));
  if v_text is null or pg_catalog.btrim(v_text) = '' then
    return null;
  end if;
  return pg_catalog.jsonb_build_object(v_field, pg_catalog.btrim(v_text));
end;
$$;
comment on function bpm_private.user_task__form(jsonb, jsonb, text) is E'The form of a new user task whose form key or external reference is an expression: {"key": …} or {"externalReference": …}, null when it yields nothing.';

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
