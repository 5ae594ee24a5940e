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
  v_users text[];
  v_groups text[];
begin
  if (v_spec is null or v_spec = '{}'::jsonb) and node -> 'taskEscalation' is null then
    v_data := pg_catalog.jsonb_build_object('name', node -> 'name', 'form', node -> 'form');
  else
    v_users := bpm_private.value__to_text_array(bpm_private.value__eval(v_spec -> 'candidateUsers', variables, v_el));
    v_groups := bpm_private.value__to_text_array(bpm_private.value__eval(v_spec -> 'candidateGroups', variables, v_el));
    -- candidates as array literals (read back with a cast when the task is
    -- written; "{}" when none)
    v_data := pg_catalog.jsonb_build_object(
      'name', node -> 'name',
      'form', bpm_private.user_task__form(node -> 'form', v_spec, variables, v_el),
      'assignee', bpm_private.value__to_text(bpm_private.value__eval(v_spec -> 'assignee', variables, v_el)),
      'candidate_users', v_users::text,
      'candidate_groups', v_groups::text,
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

-- The topic of an external task given by an expression: a non-empty string
-- (at most 1,000 characters), else BP303 naming the element.
create or replace function bpm_private.topic__of(value jsonb, element_id text)
returns text
language plpgsql
immutable
set search_path = ''
as $$
begin
  if pg_catalog.jsonb_typeof(value) is distinct from 'string' or pg_catalog.btrim(value #>> '{}') = ''
     or pg_catalog.length(value #>> '{}') > 1000 then
    raise exception 'the topic (job type) of element % is not a non-empty string of at most 1000 characters: %', element_id, coalesce(value::text, 'null')
      using errcode = 'BP303';
  end if;
  return pg_catalog.btrim(value #>> '{}');
end;
$$;
comment on function bpm_private.topic__of(jsonb, text) is E'The topic of an external task from the value of its topic expression (BP303 unless a non-empty string).';

-- Service, send and business-rule tasks with a topic: an external task waits
-- for a worker (fetch_and_lock). Its topic, when an expression, and its
-- priority (camunda:taskPriority, default 0) are evaluated over what the
-- task sees.
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
  return pg_catalog.jsonb_build_object('topic', case when node ? 'topicExpr'
      then bpm_private.topic__of(bpm_private.value__eval(node -> 'topicExpr', variables, node ->> 'id'), node ->> 'id') else node ->> 'topic' end,
    'headers', node -> 'headers',
    'priority', case when node ? 'taskPriority'
      then bpm_private.priority__of(bpm_private.value__eval(node -> 'taskPriority', variables, node ->> 'id'), node ->> 'id', 0) else 0 end);
end;
$$;
comment on function bpm_private.external_task__create(jsonb, jsonb) is E'External task behaviour: the topic, headers and priority of a new external task.';
