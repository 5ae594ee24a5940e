-- Wait states created during one engine call are buffered in the run state
-- (w_* arrays) and written by run__flush in one set-based insert per table.

create or replace function bpm_private.wait__add(st bpm_private.run_state, id uuid, element_id text, kind text, via_flow text, data jsonb)
returns bpm_private.run_state
language plpgsql
immutable
set search_path = ''
as $$
begin
  st.w_id := st.w_id || id;
  st.w_el := st.w_el || element_id;
  st.w_kind := st.w_kind || kind;
  st.w_flow := st.w_flow || via_flow;
  st.w_data := st.w_data || data;
  return st;
end;
$$;
comment on function bpm_private.wait__add(bpm_private.run_state, uuid, text, text, text, jsonb) is E'Buffers a new wait-state token.';

create or replace function bpm_private.wait__keep(st bpm_private.run_state, keep boolean[])
returns bpm_private.run_state
language plpgsql
immutable
set search_path = ''
as $$
declare
  v_n int := pg_catalog.cardinality(st.w_id);
  v_id uuid[] := '{}';
  v_el text[] := '{}';
  v_kind text[] := '{}';
  v_flow text[] := '{}';
  v_data jsonb[] := '{}';
begin
  for v_i in 1 .. v_n loop
    continue when not keep[v_i];
    v_id := pg_catalog.array_append(v_id, st.w_id[v_i]);
    v_el := pg_catalog.array_append(v_el, st.w_el[v_i]);
    v_kind := pg_catalog.array_append(v_kind, st.w_kind[v_i]);
    v_flow := pg_catalog.array_append(v_flow, st.w_flow[v_i]);
    v_data := pg_catalog.array_append(v_data, st.w_data[v_i]);
  end loop;
  st.w_id := v_id; st.w_el := v_el; st.w_kind := v_kind; st.w_flow := v_flow; st.w_data := v_data;
  return st;
end;
$$;
comment on function bpm_private.wait__keep(bpm_private.run_state, boolean[]) is E'Keeps only the buffered wait tokens whose keep flag is true.';

create or replace function bpm_private.jsonb_to_text_array(value jsonb)
returns text[]
language plpgsql
immutable
set search_path = ''
as $$
declare
  v_result text[] := '{}';
begin
  if value is null or pg_catalog.jsonb_typeof(value) <> 'array' then
    return v_result;
  end if;
  for v_i in 0 .. pg_catalog.jsonb_array_length(value) - 1 loop
    v_result := pg_catalog.array_append(v_result, value ->> v_i);
  end loop;
  return v_result;
end;
$$;
comment on function bpm_private.jsonb_to_text_array(jsonb) is E'A JSON array of strings as text[] (null or non-array: empty), without a query.';

-- A history row of this run (an activity instance in the current scope),
-- for behaviours that start activities outside the token loop.
create or replace function bpm_private.activity__add(st bpm_private.run_state, id uuid, element_id text, element_type text, state text)
returns bpm_private.run_state
language plpgsql
immutable
set search_path = ''
as $$
begin
  st.a_id := st.a_id || id;
  st.a_el := st.a_el || element_id;
  st.a_type := st.a_type || element_type;
  st.a_state := st.a_state || state;
  st.a_scope := st.a_scope || st.cur_scope;
  return st;
end;
$$;
comment on function bpm_private.activity__add(bpm_private.run_state, uuid, text, text, text) is E'Buffers a history row of the run in the current scope (written by run__flush).';

-- Ends activity instances: in the buffer if created in this call, else
-- buffered as ended stored rows (run__flush updates them with its insert).
create or replace function bpm_private.activity__end(st bpm_private.run_state, ids uuid[], state text)
returns bpm_private.run_state
language plpgsql
immutable
set search_path = ''
as $$
declare
  v_id uuid;
  v_pos int;
begin
  foreach v_id in array ids loop
    v_pos := pg_catalog.array_position(st.a_id, v_id);
    if v_pos is null then
      st.e_id := st.e_id || v_id;
      st.e_state := st.e_state || state;
    else
      st.a_state[v_pos] := state;
    end if;
  end loop;
  return st;
end;
$$;
comment on function bpm_private.activity__end(bpm_private.run_state, uuid[], text) is E'Completes or cancels activity instances (written by run__flush).';
