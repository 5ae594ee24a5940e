-- Evaluation of expressions compiled at deploy time (compiler/expression.ts)
-- into SQL/JSON paths over the instance variables. No user text is ever
-- executed as SQL: paths are data, evaluated by jsonb_path_match/query_first.

create or replace function bpm_private.expression__require_vars(expr jsonb, variables jsonb, element_id text)
returns void
language plpgsql
stable
set search_path = ''
as $$
declare
  v_vars jsonb := expr -> 'vars';
  v_name text;
begin
  if v_vars is null then
    return;
  end if;
  for v_i in 0 .. pg_catalog.jsonb_array_length(v_vars) - 1 loop
    v_name := v_vars ->> v_i;
    if not variables ? v_name then
      raise exception 'unknown variable "%" in expression % of element %', v_name, expr ->> 'src', element_id
        using errcode = 'BP302';
    end if;
  end loop;
end;
$$;
comment on function bpm_private.expression__require_vars(jsonb, jsonb, text) is E'Raises BP302 naming the first variable the expression needs that is not set.';

create or replace function bpm_private.expression__test(expr jsonb, variables jsonb, element_id text)
returns boolean
language plpgsql
stable
set search_path = ''
as $$
declare
  v_result boolean;
  v_value jsonb;
begin
  perform bpm_private.expression__require_vars(expr, variables, element_id);
  if expr ? 'tree' then
    v_value := bpm_private.feel__value(expr, variables, element_id);
    v_result := case when pg_catalog.jsonb_typeof(v_value) = 'boolean' then (v_value #>> '{}')::boolean end;
  else
    v_result := coalesce(pg_catalog.jsonb_path_match(variables, (expr ->> 'path')::jsonpath, '{}', true),
      (bpm_private.path__diagnose(variables, expr, element_id, true) #>> '{}')::boolean);
  end if;
  if v_result is null then
    raise exception 'condition % of element % did not evaluate to a boolean', expr ->> 'src', element_id
      using errcode = 'BP303';
  end if;
  return v_result;
end;
$$;
comment on function bpm_private.expression__test(jsonb, jsonb, text) is E'Evaluates a compiled condition; BP302 for an unknown variable, BP303 if the result is not a boolean.';

-- Paths are evaluated silently (an error yields null), and only a null
-- result is evaluated again with errors on: an error there (arithmetic on a
-- value that is not a number, a division by zero) is BP303 naming the
-- expression and the element, not PostgreSQL's SQL/JSON error.
create or replace function bpm_private.path__diagnose(variables jsonb, expr jsonb, element_id text, is_condition boolean)
returns jsonb
language plpgsql
stable
set search_path = ''
as $$
begin
  if is_condition then
    return pg_catalog.to_jsonb(pg_catalog.jsonb_path_match(variables, (expr ->> 'path')::jsonpath));
  end if;
  return pg_catalog.jsonb_path_query_first(variables, (expr ->> 'path')::jsonpath);
exception when data_exception then
  raise exception 'expression % of element % cannot be evaluated: %', expr ->> 'src', element_id, sqlerrm using errcode = 'BP303';
end;
$$;
comment on function bpm_private.path__diagnose(jsonb, jsonb, text, boolean) is E'Evaluates an expression path with errors on: its value, or BP303 naming the expression, the element and the reason.';

-- A FEEL tree's value; a data error on the way (a numeric overflow, say) is
-- BP303 naming the expression and the element.
create or replace function bpm_private.feel__value(expr jsonb, variables jsonb, element_id text)
returns jsonb
language plpgsql
stable
set search_path = ''
as $$
begin
  return bpm_private.feel__eval(expr -> 'tree', variables);
exception when data_exception then
  raise exception 'expression % of element % cannot be evaluated: %', expr ->> 'src', element_id, sqlerrm using errcode = 'BP303';
end;
$$;
comment on function bpm_private.feel__value(jsonb, jsonb, text) is E'Evaluates a compiled FEEL tree expression; BP303 naming the expression, the element and the reason for a data error.';

-- A CompiledValue: {"literal": …} or {"expr": CompiledExpression}. Returns jsonb (null if absent).
create or replace function bpm_private.value__eval(value jsonb, variables jsonb, element_id text)
returns jsonb
language plpgsql
stable
set search_path = ''
as $$
begin
  if value is null or value = 'null'::jsonb then
    return null;
  end if;
  if value ? 'literal' then
    return value -> 'literal';
  end if;
  perform bpm_private.expression__require_vars(value -> 'expr', variables, element_id);
  if value -> 'expr' ? 'concat' then
    return bpm_private.value__concat(value -> 'expr' -> 'concat', variables);
  end if;
  if value -> 'expr' ? 'plus' then
    return bpm_private.value__plus(value -> 'expr' -> 'plus', variables);
  end if;
  if value -> 'expr' ? 'tree' then
    return bpm_private.feel__value(value -> 'expr', variables, element_id);
  end if;
  return coalesce(pg_catalog.jsonb_path_query_first(variables, (value -> 'expr' ->> 'path')::jsonpath, '{}', true),
    bpm_private.path__diagnose(variables, value -> 'expr', element_id, false));
end;
$$;
comment on function bpm_private.value__eval(jsonb, jsonb, text) is E'Evaluates a literal-or-expression value from the compiled graph.';

-- A string built from parts (a JUEL template, a FEEL concatenation): literal
-- text and jsonpaths whose results' text is appended. A part that yields
-- nothing adds nothing (nulls "empty", JUEL) or makes the value null (FEEL).
create or replace function bpm_private.value__concat(concat jsonb, variables jsonb)
returns jsonb
language plpgsql
stable
set search_path = ''
as $$
declare
  v_part jsonb;
  v_text text;
  v_out text := '';
begin
  for v_part in select p from pg_catalog.jsonb_array_elements(concat -> 'parts') p loop
    if v_part ? 'text' then
      v_text := v_part ->> 'text';
    else
      v_text := bpm_private.value__to_text(pg_catalog.jsonb_path_query_first(variables, (v_part ->> 'path')::jsonpath));
      if v_text is null and concat ->> 'nulls' = 'null' then
        return null;
      end if;
    end if;
    v_out := v_out || coalesce(v_text, '');
  end loop;
  return pg_catalog.to_jsonb(v_out);
end;
$$;
comment on function bpm_private.value__concat(jsonb, jsonb) is E'Evaluates a string built from parts (JUEL template, FEEL concatenation) over the variables.';

-- FEEL `a + b` over variables: strings concatenate, numbers add; a null
-- operand or operands of different types make it null (FEEL).
create or replace function bpm_private.value__plus(paths jsonb, variables jsonb)
returns jsonb
language plpgsql
stable
set search_path = ''
as $$
declare
  v_value jsonb;
  v_type text;
  v_text text := '';
  v_sum numeric := 0;
begin
  for v_i in 0 .. pg_catalog.jsonb_array_length(paths) - 1 loop
    v_value := pg_catalog.jsonb_path_query_first(variables, (paths ->> v_i)::jsonpath);
    if v_value is null or pg_catalog.jsonb_typeof(v_value) not in ('string', 'number')
       or (v_type is not null and pg_catalog.jsonb_typeof(v_value) <> v_type) then
      return null;
    end if;
    v_type := pg_catalog.jsonb_typeof(v_value);
    if v_type = 'string' then
      v_text := v_text || (v_value #>> '{}');
    else
      v_sum := v_sum + (v_value #>> '{}')::numeric;
    end if;
  end loop;
  return case when v_type = 'string' then pg_catalog.to_jsonb(v_text) else pg_catalog.to_jsonb(v_sum) end;
end;
$$;
comment on function bpm_private.value__plus(jsonb, jsonb) is E'Evaluates FEEL a + b over variables: strings concatenate, numbers add, anything else is null.';

create or replace function bpm_private.value__to_text(value jsonb)
returns text
language plpgsql
immutable
set search_path = ''
as $$
begin
  if value is null or value = 'null'::jsonb then
    return null;
  end if;
  if pg_catalog.jsonb_typeof(value) = 'string' then
    return value #>> '{}';
  end if;
  return value::text;
end;
$$;
comment on function bpm_private.value__to_text(jsonb) is E'A jsonb scalar as text (strings unquoted).';

-- A list of names: a JSON array of strings, or a comma-separated string.
create or replace function bpm_private.value__to_text_array(value jsonb)
returns text[]
language plpgsql
immutable
set search_path = ''
as $$
begin
  if value is null or value = 'null'::jsonb then
    return '{}';
  end if;
  if pg_catalog.jsonb_typeof(value) = 'array' then
    return array(select pg_catalog.btrim(e) from pg_catalog.jsonb_array_elements_text(value) e where pg_catalog.btrim(e) <> '');
  end if;
  return array(select pg_catalog.btrim(e) from pg_catalog.unnest(pg_catalog.string_to_array(bpm_private.value__to_text(value), ',')) e where pg_catalog.btrim(e) <> '');
end;
$$;
comment on function bpm_private.value__to_text_array(jsonb) is E'A JSON array or comma-separated string as text[] (trimmed, empty entries dropped).';

-- ISO 8601 date/date-time, or duration (P…) relative to now. Raises BP304.
create or replace function bpm_private.value__to_timestamp(value jsonb, element_id text, attribute text)
returns timestamptz
language plpgsql
stable
set search_path = ''
as $$
declare
  v_text text := bpm_private.value__to_text(value);
begin
  if v_text is null or v_text = '' then
    return null;
  end if;
  -- Values of the right shape can still be no date (2030-02-30, 25:00, +25:00)
  -- or out of range (P99999999999Y): PostgreSQL's 22007/22008/22009/22015
  -- become BP304 too.
  begin
    -- durations as the compiler accepts them: fractions written with '.' or ',' (PostgreSQL reads '.')
    if v_text ~ '^P(?!$)(\d+([.,]\d+)?Y)?(\d+([.,]\d+)?M)?(\d+([.,]\d+)?W)?(\d+([.,]\d+)?D)?(T(?=\d)(\d+([.,]\d+)?H)?(\d+([.,]\d+)?M)?(\d+([.,]\d+)?S)?)?$' then
      return pg_catalog.now() + pg_catalog.replace(v_text, ',', '.')::interval;
    end if;
    if v_text ~ '^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}(:?\d{2})?)?)?$' then
      if v_text ~ '(Z|[+-]\d{2}(:?\d{2})?)$' and v_text ~ '[T ]' then
        return v_text::timestamptz;
      end if;
      -- no offset: UTC, whatever the TimeZone of the session
      return v_text::timestamp at time zone 'UTC';
    end if;
  exception when invalid_datetime_format or datetime_field_overflow or invalid_time_zone_displacement_value
      or interval_field_overflow then
    null; -- reported below
  end;
  raise exception '% of element % is neither an ISO 8601 date nor a duration: "%"', attribute, element_id, v_text
    using errcode = 'BP304';
end;
$$;
comment on function bpm_private.value__to_timestamp(jsonb, text, text) is E'Due/follow-up dates and timers: ISO 8601 date-time (without offset: UTC), date (midnight UTC) or duration (from now); BP304 otherwise.';
