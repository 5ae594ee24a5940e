-- User task: evaluates assignment and dates from the compiled spec and waits.
create or replace function bpm_private.user_task__enter(st bpm_private.run_state, node jsonb, id uuid, via_flow text)
returns bpm_private.run_state
language plpgsql
stable
set search_path = ''
as $$
declare
  v_spec jsonb := node -> 'userTask';
  v_el text := node ->> 'id';
  v_data jsonb;
begin
  if v_spec is null or v_spec = '{}'::jsonb then
    v_data := pg_catalog.jsonb_build_object('name', node -> 'name');
  else
    v_data := pg_catalog.jsonb_build_object(
      'name', node -> 'name',
      'assignee', bpm_private.value__to_text(bpm_private.value__eval(v_spec -> 'assignee', st.variables, v_el)),
      'candidate_users', pg_catalog.to_jsonb(bpm_private.value__to_text_array(bpm_private.value__eval(v_spec -> 'candidateUsers', st.variables, v_el))),
      'candidate_groups', pg_catalog.to_jsonb(bpm_private.value__to_text_array(bpm_private.value__eval(v_spec -> 'candidateGroups', st.variables, v_el))),
      'priority', bpm_private.user_task__priority(bpm_private.value__eval(v_spec -> 'priority', st.variables, v_el), v_el),
      'due_at', bpm_private.value__to_timestamp(bpm_private.value__eval(v_spec -> 'dueDate', st.variables, v_el), v_el, 'dueDate'),
      'follow_up_at', bpm_private.value__to_timestamp(bpm_private.value__eval(v_spec -> 'followUpDate', st.variables, v_el), v_el, 'followUpDate'));
  end if;
  return bpm_private.wait__add(st, id, v_el, 'userTask', via_flow, v_data);
end;
$$;
comment on function bpm_private.user_task__enter(bpm_private.run_state, jsonb, uuid, text) is E'User task behaviour: create the task (buffered) and wait.';

create or replace function bpm_private.user_task__priority(value jsonb, element_id text)
returns int
language plpgsql
immutable
set search_path = ''
as $$
declare
  v_text text := bpm_private.value__to_text(value);
begin
  if v_text is null then
    return 50;
  end if;
  if v_text !~ '^\s*-?\d{1,9}\s*$' then
    raise exception 'priority of element % is not an integer: "%"', element_id, v_text using errcode = 'BP303';
  end if;
  return v_text::int;
end;
$$;
comment on function bpm_private.user_task__priority(jsonb, text) is E'Task priority from a value (default 50; BP303 if not an integer).';

-- Service, send and business-rule tasks with a topic: an external task waits
-- for a worker (fetch_and_lock).
create or replace function bpm_private.external_task__enter(st bpm_private.run_state, node jsonb, id uuid, via_flow text)
returns bpm_private.run_state
language plpgsql
immutable
set search_path = ''
as $$
begin
  if node ->> 'topic' is null then
    raise exception 'element % has no external task topic', node ->> 'id' using errcode = 'BP305';
  end if;
  return bpm_private.wait__add(st, id, node ->> 'id', 'externalTask', via_flow, pg_catalog.jsonb_build_object('topic', node ->> 'topic'));
end;
$$;
comment on function bpm_private.external_task__enter(bpm_private.run_state, jsonb, uuid, text) is E'External task behaviour: create the task (buffered) and wait for a worker.';
