-- Error boundary events: the boundary attached to the element whose error
-- code matches, else a catch-all one (no code). Null when none catches.
create or replace function bpm_private.error_boundary__find(graph jsonb, element_id text, error_code text)
returns text
language plpgsql
immutable
set search_path = ''
as $$
declare
  v_graph jsonb := graph;
  v_exact text;
  v_catch_all text;
  v_boundary jsonb;
begin
  for v_boundary in
    select v_graph -> 'nodes' -> b from pg_catalog.jsonb_array_elements_text(coalesce(v_graph -> 'nodes' -> element_id -> 'boundary', '[]')) b
  loop
    continue when v_boundary -> 'error' is null;
    if v_boundary -> 'error' ->> 'code' is null then
      v_catch_all := coalesce(v_catch_all, v_boundary ->> 'id');
    elsif v_boundary -> 'error' ->> 'code' = error_code then
      v_exact := coalesce(v_exact, v_boundary ->> 'id');
    end if;
  end loop;
  return coalesce(v_exact, v_catch_all);
end;
$$;
comment on function bpm_private.error_boundary__find(jsonb, text, text) is E'The error boundary event catching error_code on an element, or null.';
