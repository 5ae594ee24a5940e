--! Previous: sha1:f9aa5652fa5872a35a41496ea0dfd9fb8acc03f4
--! Hash: sha1:c4e1067f30e7192ace811d9e999df6a29f516707
--! Message: FEEL calendar functions

-- FEEL calendar functions: day of week, day of year, week of year, month of
-- year, last day of month, years and months duration.
--! Included expression/feel.sql
-- The FEEL interpreter: expressions that SQL/JSON path cannot express,
-- compiled at deploy time into a tree of JSON nodes (compiler/feel-tree.ts)
-- and evaluated here over the variables. Each node kind and each function is
-- one of a fixed set: the tree is data, never code. FEEL null is SQL null
-- (a missing variable, a JSON null, or a value of the wrong type for an
-- operation); lists and contexts hold JSON nulls.

-- A node's value over vars (the variables) and bound (names bound by
-- contexts, filters, for / some / every, which hide variables of the same
-- name; kept apart so that iterating over a large list never copies the
-- variables).
create or replace function bpm_private.feel__eval(t jsonb, vars jsonb, bound jsonb default '{}')
returns jsonb
language plpgsql
stable
set search_path = ''
as $$
declare
  v_kind text := t ->> 'k';
  v jsonb;
  w jsonb;
begin
  case v_kind
    when 'lit' then
      return nullif(t -> 'v', 'null');
    when 'var' then
      return nullif(case when bound ? (t ->> 'n') then bound -> (t ->> 'n') else vars -> (t ->> 'n') end, 'null');
    when 'get' then
      v := bpm_private.feel__eval(t -> 'o', vars, bound);
      if pg_catalog.jsonb_typeof(v) = 'array' then
        -- a property of a list is the list of the items' properties
        return coalesce((select pg_catalog.jsonb_agg(coalesce(e -> (t ->> 'n'), 'null') order by n)
          from pg_catalog.jsonb_array_elements(v) with ordinality as x(e, n)), '[]');
      end if;
      return case when pg_catalog.jsonb_typeof(v) = 'object' then nullif(v -> (t ->> 'n'), 'null') end;
    when 'at' then
      v := bpm_private.feel__eval(t -> 'o', vars, bound);
      w := bpm_private.feel__eval(t -> 'i', vars, bound);
      if pg_catalog.jsonb_typeof(w) <> 'number' or (w #>> '{}')::numeric <> pg_catalog.trunc((w #>> '{}')::numeric) then
        return null;
      end if;
      if pg_catalog.jsonb_typeof(v) <> 'array' then
        v := pg_catalog.jsonb_build_array(v);
      end if;
      return nullif(v -> case when (w #>> '{}')::int > 0 then (w #>> '{}')::int - 1 else pg_catalog.jsonb_array_length(v) + (w #>> '{}')::int end, 'null');
    when 'flt', 'some', 'every', 'for' then
      return bpm_private.feel__iterate(t, vars, bound);
    when 'ar' then
      return bpm_private.feel__arith(t ->> 'op', bpm_private.feel__eval(t -> 'l', vars, bound), bpm_private.feel__eval(t -> 'r', vars, bound));
    when 'neg' then
      v := bpm_private.feel__eval(t -> 'a', vars, bound);
      return case when pg_catalog.jsonb_typeof(v) = 'number' then pg_catalog.to_jsonb(-(v #>> '{}')::numeric) end;
    when 'cmp' then
      return bpm_private.feel__compare(t ->> 'op', bpm_private.feel__eval(t -> 'l', vars, bound), bpm_private.feel__eval(t -> 'r', vars, bound));
    when 'and', 'or' then
      -- three-valued: false (and) / true (or) decides whatever the other side is
      v := bpm_private.feel__eval(t -> 'l', vars, bound);
      if v = pg_catalog.to_jsonb(v_kind = 'or') then
        return v;
      end if;
      w := bpm_private.feel__eval(t -> 'r', vars, bound);
      if w = pg_catalog.to_jsonb(v_kind = 'or') then
        return w;
      end if;
      return case when pg_catalog.jsonb_typeof(v) = 'boolean' and pg_catalog.jsonb_typeof(w) = 'boolean' then w end;
    when 'if' then
      v := bpm_private.feel__eval(t -> 'c', vars, bound);
      return bpm_private.feel__eval(case when v = 'true' then t -> 't' else t -> 'e' end, vars, bound);
    when 'ctx' then
      -- later entries see the earlier ones
      v := '{}';
      for i in 0 .. pg_catalog.jsonb_array_length(t -> 'e') - 1 loop
        v := v || pg_catalog.jsonb_build_object(t -> 'e' -> i ->> 0, coalesce(bpm_private.feel__eval(t -> 'e' -> i -> 1, vars, bound || v), 'null'));
      end loop;
      return v;
    when 'list' then
      return coalesce((select pg_catalog.jsonb_agg(coalesce(bpm_private.feel__eval(e, vars, bound), 'null') order by n)
        from pg_catalog.jsonb_array_elements(t -> 'e') with ordinality as x(e, n)), '[]');
    when 'call' then
      return bpm_private.feel__call(t ->> 'f', array(select bpm_private.feel__eval(a, vars, bound)
        from pg_catalog.jsonb_array_elements(t -> 'a') with ordinality as x(a, n) order by n));
    when 'def' then
      -- is defined: the variable or property exists (even when null)
      if t -> 'a' ->> 'k' = 'var' then
        return pg_catalog.to_jsonb(bound ? (t -> 'a' ->> 'n') or vars ? (t -> 'a' ->> 'n'));
      elsif t -> 'a' ->> 'k' = 'get' then
        v := bpm_private.feel__eval(t -> 'a' -> 'o', vars, bound);
        return pg_catalog.to_jsonb(pg_catalog.jsonb_typeof(v) = 'object' and v ? (t -> 'a' ->> 'n'));
      end if;
      return pg_catalog.to_jsonb(bpm_private.feel__eval(t -> 'a', vars, bound) is not null);
    else
      raise exception 'unknown FEEL node kind %', v_kind using errcode = 'BP305';
  end case;
end;
$$;
comment on function bpm_private.feel__eval(jsonb, jsonb, jsonb) is E'Evaluates a compiled FEEL tree (compiler/feel-tree.ts) over the variables; FEEL null is SQL null.';

-- Filters (l[cond]: the items for which cond holds; names are the item's
-- properties, or `item`), quantifiers (some / every v in l satisfies c) and
-- for v in l return e. A value that is not a list counts as a list of one.
create or replace function bpm_private.feel__iterate(t jsonb, vars jsonb, bound jsonb)
returns jsonb
language plpgsql
stable
set search_path = ''
as $$
declare
  v_kind text := t ->> 'k';
  v_list jsonb := bpm_private.feel__eval(case when v_kind = 'flt' then t -> 'o' else t -> 'in' end, vars, bound);
begin
  if v_list is null then
    return null;
  end if;
  if pg_catalog.jsonb_typeof(v_list) <> 'array' then
    v_list := pg_catalog.jsonb_build_array(v_list);
  end if;
  case v_kind
    when 'flt' then
      return coalesce((select pg_catalog.jsonb_agg(e order by n) from pg_catalog.jsonb_array_elements(v_list) with ordinality as x(e, n)
        where bpm_private.feel__eval(t -> 'c', vars, bound || pg_catalog.jsonb_build_object('item', e)
          || case when pg_catalog.jsonb_typeof(e) = 'object' then e else '{}' end) = 'true'), '[]');
    when 'for' then
      return coalesce((select pg_catalog.jsonb_agg(coalesce(bpm_private.feel__eval(t -> 'r', vars, bound || pg_catalog.jsonb_build_object(t ->> 'v', e)), 'null') order by n)
        from pg_catalog.jsonb_array_elements(v_list) with ordinality as x(e, n)), '[]');
    when 'some' then
      return pg_catalog.to_jsonb(exists (select from pg_catalog.jsonb_array_elements(v_list) e
        where bpm_private.feel__eval(t -> 'c', vars, bound || pg_catalog.jsonb_build_object(t ->> 'v', e)) = 'true'));
    else
      return pg_catalog.to_jsonb(not exists (select from pg_catalog.jsonb_array_elements(v_list) e
        where bpm_private.feel__eval(t -> 'c', vars, bound || pg_catalog.jsonb_build_object(t ->> 'v', e)) is distinct from 'true'));
  end case;
end;
$$;
comment on function bpm_private.feel__iterate(jsonb, jsonb, jsonb) is E'FEEL list filters, some / every and for over a list (a single value counts as a list of one).';

-- + - * / ** on numbers; + joins strings; a date or date-time plus or minus
-- a duration (ISO 8601 strings, as date(), date and time(), now(), today()
-- and duration() make them) is a date or a date-time; anything else is null.
create or replace function bpm_private.feel__arith(op text, l jsonb, r jsonb)
returns jsonb
language plpgsql
stable
set search_path = ''
as $$
declare
  v_l text := l #>> '{}';
  v_r text := r #>> '{}';
begin
  if pg_catalog.jsonb_typeof(l) = 'number' and pg_catalog.jsonb_typeof(r) = 'number' then
    return case op
      when '+' then pg_catalog.to_jsonb(v_l::numeric + v_r::numeric)
      when '-' then pg_catalog.to_jsonb(v_l::numeric - v_r::numeric)
      when '*' then pg_catalog.to_jsonb(v_l::numeric * v_r::numeric)
      when '/' then case when v_r::numeric <> 0 then pg_catalog.to_jsonb(v_l::numeric / v_r::numeric) end
      when '**' then pg_catalog.to_jsonb(pg_catalog.power(v_l::numeric, v_r::numeric))
    end;
  end if;
  if pg_catalog.jsonb_typeof(l) <> 'string' or pg_catalog.jsonb_typeof(r) <> 'string' then
    return null;
  end if;
  if op = '+' and not (v_r ~ '^-?P' and v_l ~ '^\d{4}-\d{2}-\d{2}') then
    return pg_catalog.to_jsonb(v_l || v_r);
  end if;
  if op in ('+', '-') and v_r ~ '^-?P' and v_l ~ '^\d{4}-\d{2}-\d{2}' then
    begin
      if pg_catalog.length(v_l) = 10 then
        return pg_catalog.to_jsonb(pg_catalog.to_char(case op when '+' then v_l::date + v_r::interval else v_l::date - v_r::interval end, 'YYYY-MM-DD'));
      end if;
      return bpm_private.feel__date_time(case op when '+' then bpm_private.feel__timestamp(v_l) + v_r::interval else bpm_private.feel__timestamp(v_l) - v_r::interval end);
    exception when invalid_datetime_format or datetime_field_overflow or invalid_parameter_value then
      return null;
    end;
  end if;
  return null;
end;
$$;
comment on function bpm_private.feel__arith(text, jsonb, jsonb) is E'FEEL arithmetic: numbers, string concatenation, dates and date-times plus or minus durations; null otherwise.';

-- = and != compare any values (null equals only null); < <= > >= compare
-- numbers with numbers and strings with strings (ISO dates and date-times in
-- UTC, as date() and date and time() make them, order as text); else null.
create or replace function bpm_private.feel__compare(op text, l jsonb, r jsonb)
returns jsonb
language plpgsql
immutable
set search_path = ''
as $$
begin
  if op in ('=', '!=') then
    return pg_catalog.to_jsonb((l is not distinct from r) = (op = '='));
  end if;
  if pg_catalog.jsonb_typeof(l) is distinct from pg_catalog.jsonb_typeof(r) or pg_catalog.jsonb_typeof(l) not in ('number', 'string') then
    return null;
  end if;
  if pg_catalog.jsonb_typeof(l) = 'number' then
    return pg_catalog.to_jsonb(case op when '<' then (l #>> '{}')::numeric < (r #>> '{}')::numeric when '<=' then (l #>> '{}')::numeric <= (r #>> '{}')::numeric
      when '>' then (l #>> '{}')::numeric > (r #>> '{}')::numeric else (l #>> '{}')::numeric >= (r #>> '{}')::numeric end);
  end if;
  return pg_catalog.to_jsonb(case op when '<' then (l #>> '{}') < (r #>> '{}') collate "C" when '<=' then (l #>> '{}') <= (r #>> '{}') collate "C"
    when '>' then (l #>> '{}') > (r #>> '{}') collate "C" else (l #>> '{}') >= (r #>> '{}') collate "C" end);
end;
$$;
comment on function bpm_private.feel__compare(text, jsonb, jsonb) is E'FEEL comparison: = and != on any values, ordering on numbers or on strings; null for other types.';

-- An ISO 8601 date-time (without an offset: UTC) as a timestamptz.
create or replace function bpm_private.feel__timestamp(value text)
returns timestamptz
language plpgsql
immutable
set search_path = ''
as $$
begin
  if value ~ '(Z|[+-]\d{2}(:?\d{2})?)$' then
    return value::timestamptz;
  end if;
  return value::timestamp at time zone 'UTC';
end;
$$;
comment on function bpm_private.feel__timestamp(text) is E'Parses an ISO 8601 date-time; one without an offset is UTC.';

-- A timestamptz as FEEL date-times are written here: ISO 8601 in UTC.
create or replace function bpm_private.feel__date_time(value timestamptz)
returns jsonb
language plpgsql
immutable
set search_path = ''
as $$
begin
  return pg_catalog.to_jsonb(pg_catalog.to_char(value at time zone 'UTC',
    case when pg_catalog.date_part('microseconds', value)::bigint % 1000000 = 0 then 'YYYY-MM-DD"T"HH24:MI:SS"Z"' else 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"' end));
end;
$$;
comment on function bpm_private.feel__date_time(timestamptz) is E'A date-time as an ISO 8601 string in UTC (2030-01-15T09:00:00Z).';

-- A built-in function (compiler/feel-tree.ts FEEL_TREE_FUNCTIONS) applied to
-- its evaluated arguments; a wrong type or a bad argument gives null.
create or replace function bpm_private.feel__call(fn text, a jsonb[])
returns jsonb
language plpgsql
stable
set search_path = ''
as $$
declare
  v_text text := a[1] #>> '{}';
begin
  case fn
    when 'not' then
      return case when pg_catalog.jsonb_typeof(a[1]) = 'boolean' then pg_catalog.to_jsonb(not (a[1]::text)::boolean) end;
    when '__in' then
      -- x in v: one of the list v's items, or v itself
      return pg_catalog.to_jsonb(case when pg_catalog.jsonb_typeof(a[2]) = 'array' then a[2] @> pg_catalog.jsonb_build_array(a[1]) else a[1] = a[2] end);
    when 'get value' then
      return case when pg_catalog.jsonb_typeof(a[1]) = 'object' then nullif(a[1] -> (a[2] #>> '{}'), 'null') end;
    when 'get entries' then
      return case when pg_catalog.jsonb_typeof(a[1]) = 'object' then coalesce((select pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object('key', e.key, 'value', e.value))
        from pg_catalog.jsonb_each(a[1]) e), '[]') end;
    when 'context put' then
      return case when pg_catalog.jsonb_typeof(a[1]) = 'object' and pg_catalog.jsonb_typeof(a[2]) = 'string'
        then a[1] || pg_catalog.jsonb_build_object(a[2] #>> '{}', coalesce(a[3], 'null')) end;
    when 'context merge' then
      return case when pg_catalog.jsonb_typeof(a[1]) = 'array' then coalesce((select pg_catalog.jsonb_object_agg(e.key, e.value)
        from pg_catalog.jsonb_array_elements(a[1]) with ordinality as x(c, n), pg_catalog.jsonb_each(case when pg_catalog.jsonb_typeof(x.c) = 'object' then x.c else '{}' end) e), '{}') end;
    when 'now' then
      return bpm_private.feel__date_time(pg_catalog.now());
    when 'today' then
      return pg_catalog.to_jsonb(pg_catalog.to_char(pg_catalog.now() at time zone 'UTC', 'YYYY-MM-DD'));
    when 'date', 'date and time', 'duration' then
      if pg_catalog.jsonb_typeof(a[1]) <> 'string' then
        return null;
      end if;
      begin
        return case fn
          when 'date' then pg_catalog.to_jsonb(pg_catalog.to_char(pg_catalog.left(v_text, 10)::date, 'YYYY-MM-DD'))
          when 'date and time' then bpm_private.feel__date_time(bpm_private.feel__timestamp(v_text))
          else case when v_text ~ '^-?P(?=\d|T\d)(\d+Y)?(\d+M)?(\d+W)?(\d+D)?(T(?=\d)(\d+H)?(\d+M)?(\d+(\.\d+)?S)?)?$' and v_text::interval is not null then a[1] end
        end;
      exception when invalid_datetime_format or datetime_field_overflow or invalid_parameter_value then
        return null;
      end;
    when 'day of week', 'day of year', 'week of year', 'month of year', 'last day of month', 'years and months duration' then
      return bpm_private.feel__calendar(fn, a);
    when 'string length', 'upper case', 'lower case', 'substring', 'substring before', 'substring after', 'contains', 'starts with',
         'ends with', 'matches', 'replace', 'split', 'trim', 'string', 'number' then
      return bpm_private.feel__string(fn, a);
    when 'abs', 'floor', 'ceiling', 'decimal', 'round up', 'round down', 'round half up', 'round half down', 'modulo', 'sqrt', 'odd', 'even' then
      return bpm_private.feel__number(fn, a);
    else
      return bpm_private.feel__list(fn, a);
  end case;
end;
$$;
comment on function bpm_private.feel__call(text, jsonb[]) is E'Applies a FEEL built-in function to evaluated arguments (null for a wrong type or a bad argument).';

-- FEEL calendar functions of a date or a date-time (its date, in UTC for a
-- date-time): day of week and month of year in English, day of year, ISO
-- week of year, last day of month (a date), and the years and months between
-- two of them (a duration). Null for anything that is not one.
create or replace function bpm_private.feel__calendar(fn text, a jsonb[])
returns jsonb
language plpgsql
immutable
set search_path = ''
as $$
declare
  v_dates date[];
  v_months int;
begin
  begin
    v_dates := array(select case when pg_catalog.length(x #>> '{}') = 10 then (x #>> '{}')::date
        else (bpm_private.feel__timestamp(x #>> '{}') at time zone 'UTC')::date end
      from unnest(a) with ordinality as u(x, n) order by n);
  exception when invalid_datetime_format or datetime_field_overflow or invalid_parameter_value or invalid_text_representation then
    return null;
  end;
  if exists (select from unnest(a) x where pg_catalog.jsonb_typeof(x) is distinct from 'string') then
    return null;
  end if;
  return case fn
    when 'day of week' then pg_catalog.to_jsonb(pg_catalog.to_char(v_dates[1], 'FMDay'))
    when 'month of year' then pg_catalog.to_jsonb(pg_catalog.to_char(v_dates[1], 'FMMonth'))
    when 'day of year' then pg_catalog.to_jsonb(pg_catalog.date_part('doy', v_dates[1])::int)
    when 'week of year' then pg_catalog.to_jsonb(pg_catalog.date_part('week', v_dates[1])::int)
    when 'last day of month' then pg_catalog.to_jsonb(pg_catalog.to_char(pg_catalog.date_trunc('month', v_dates[1]) + interval '1 month - 1 day', 'YYYY-MM-DD'))
    else pg_catalog.to_jsonb(bpm_private.feel__months_text(
      (pg_catalog.date_part('year', pg_catalog.age(v_dates[2], v_dates[1])) * 12 + pg_catalog.date_part('month', pg_catalog.age(v_dates[2], v_dates[1])))::int))
  end;
end;
$$;
comment on function bpm_private.feel__calendar(text, jsonb[]) is E'FEEL day of week, month of year, day of year, week of year, last day of month and years and months duration over dates or date-times.';

-- A number of months as an ISO 8601 years-and-months duration (P1Y2M, -P3M, P0M).
create or replace function bpm_private.feel__months_text(months int)
returns text
language plpgsql
immutable
set search_path = ''
as $$
begin
  return case when months < 0 then '-' else '' end || 'P'
    || case when pg_catalog.abs(months) >= 12 then (pg_catalog.abs(months) / 12)::text || 'Y' else '' end
    || case when pg_catalog.abs(months) % 12 <> 0 or months = 0 then (pg_catalog.abs(months) % 12)::text || 'M' else '' end;
end;
$$;
comment on function bpm_private.feel__months_text(int) is E'A number of months as an ISO 8601 duration of years and months.';

-- FEEL string functions (positions from 1; a negative start counts from the
-- end; patterns are regular expressions).
create or replace function bpm_private.feel__string(fn text, a jsonb[])
returns jsonb
language plpgsql
stable
set search_path = ''
as $$
declare
  s text := a[1] #>> '{}';
  m text := a[2] #>> '{}';
  v_start int;
begin
  if fn = 'string' then
    return case pg_catalog.jsonb_typeof(a[1]) when 'string' then a[1] when 'number' then pg_catalog.to_jsonb(pg_catalog.trim_scale(s::numeric)::text) when 'boolean' then pg_catalog.to_jsonb(s)
      else case when a[1] is not null then pg_catalog.to_jsonb(a[1]::text) end end;
  end if;
  if pg_catalog.jsonb_typeof(a[1]) is distinct from 'string' then
    return null;
  end if;
  if fn in ('substring before', 'substring after', 'contains', 'starts with', 'ends with', 'matches', 'replace', 'split')
     and pg_catalog.jsonb_typeof(a[2]) is distinct from 'string' then
    return null;
  end if;
  begin
    case fn
      when 'string length' then return pg_catalog.to_jsonb(pg_catalog.char_length(s));
      when 'upper case' then return pg_catalog.to_jsonb(pg_catalog.upper(s));
      when 'lower case' then return pg_catalog.to_jsonb(pg_catalog.lower(s));
      when 'trim' then return pg_catalog.to_jsonb(pg_catalog.btrim(s));
      when 'number' then return case when s ~ '^\s*-?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?\s*$' then pg_catalog.to_jsonb(s::numeric) end;
      when 'substring' then
        if pg_catalog.jsonb_typeof(a[2]) <> 'number' or (a[3] is not null and pg_catalog.jsonb_typeof(a[3]) <> 'number') then
          return null;
        end if;
        v_start := (a[2] #>> '{}')::numeric::int;
        v_start := case when v_start < 0 then pg_catalog.char_length(s) + v_start + 1 else v_start end;
        return pg_catalog.to_jsonb(case when a[3] is null then pg_catalog.substr(s, v_start)
          else pg_catalog.substr(s, v_start, greatest((a[3] #>> '{}')::numeric::int, 0)) end);
      when 'substring before' then
        return pg_catalog.to_jsonb(case when pg_catalog.strpos(s, m) > 0 then pg_catalog.left(s, pg_catalog.strpos(s, m) - 1) else '' end);
      when 'substring after' then
        return pg_catalog.to_jsonb(case when m = '' then s when pg_catalog.strpos(s, m) > 0 then pg_catalog.substr(s, pg_catalog.strpos(s, m) + pg_catalog.char_length(m)) else '' end);
      when 'contains' then return pg_catalog.to_jsonb(pg_catalog.strpos(s, m) > 0);
      when 'starts with' then return pg_catalog.to_jsonb(pg_catalog.left(s, pg_catalog.char_length(m)) = m);
      when 'ends with' then return pg_catalog.to_jsonb(pg_catalog.right(s, pg_catalog.char_length(m)) = m);
      when 'matches' then
        return pg_catalog.to_jsonb(case when coalesce(a[3] #>> '{}', '') like '%i%' then s ~* m else s ~ m end);
      when 'replace' then
        -- FEEL writes groups as $1; PostgreSQL as \1
        return pg_catalog.to_jsonb(pg_catalog.regexp_replace(s, m, pg_catalog.regexp_replace(a[3] #>> '{}', '\$(\d)', '\\\1', 'g'),
          'g' || case when coalesce(a[4] #>> '{}', '') like '%i%' then 'i' else '' end));
      else
        return pg_catalog.to_jsonb(pg_catalog.regexp_split_to_array(s, m));
    end case;
  exception when invalid_regular_expression then
    return null;
  end;
end;
$$;
comment on function bpm_private.feel__string(text, jsonb[]) is E'FEEL string functions: string length, upper / lower case, substring (before / after), contains, starts / ends with, matches, replace, split, trim, string, number.';

-- FEEL numeric functions; decimal rounds half to even, as FEEL does.
create or replace function bpm_private.feel__number(fn text, a jsonb[])
returns jsonb
language plpgsql
immutable
set search_path = ''
as $$
declare
  n numeric;
  s int;
  v_scaled numeric;
  v_result jsonb;
begin
  if pg_catalog.jsonb_typeof(a[1]) is distinct from 'number' then
    return null;
  end if;
  n := (a[1] #>> '{}')::numeric;
  if fn in ('odd', 'even') then
    return case when n = pg_catalog.trunc(n) then pg_catalog.to_jsonb((pg_catalog.mod(n, 2) <> 0) = (fn = 'odd')) end;
  end if;
  if fn in ('decimal', 'round up', 'round down', 'round half up', 'round half down', 'modulo') then
    if pg_catalog.jsonb_typeof(a[2]) is distinct from 'number' then
      return null;
    end if;
    s := (a[2] #>> '{}')::numeric::int;
    v_scaled := n * pg_catalog.power(10::numeric, s);
  end if;
  v_result := case fn
    when 'abs' then pg_catalog.to_jsonb(pg_catalog.abs(n))
    when 'floor' then pg_catalog.to_jsonb(pg_catalog.floor(n))
    when 'ceiling' then pg_catalog.to_jsonb(pg_catalog.ceil(n))
    when 'sqrt' then case when n >= 0 then pg_catalog.to_jsonb(pg_catalog.sqrt(n)) end
    when 'modulo' then case when (a[2] #>> '{}')::numeric <> 0
      then pg_catalog.to_jsonb(n - (a[2] #>> '{}')::numeric * pg_catalog.floor(n / (a[2] #>> '{}')::numeric)) end
    when 'round up' then pg_catalog.to_jsonb(pg_catalog.sign(n) * pg_catalog.ceil(pg_catalog.abs(v_scaled)) / pg_catalog.power(10::numeric, s))
    when 'round down' then pg_catalog.to_jsonb(pg_catalog.trunc(v_scaled) / pg_catalog.power(10::numeric, s))
    when 'round half up' then pg_catalog.to_jsonb(pg_catalog.round(v_scaled) / pg_catalog.power(10::numeric, s))
    when 'round half down' then pg_catalog.to_jsonb(pg_catalog.sign(n) * pg_catalog.ceil(pg_catalog.abs(v_scaled) - 0.5) / pg_catalog.power(10::numeric, s))
    else -- decimal: half to even
      pg_catalog.to_jsonb(case when pg_catalog.abs(v_scaled - pg_catalog.trunc(v_scaled)) = 0.5 and pg_catalog.mod(pg_catalog.trunc(v_scaled), 2) = 0
        then pg_catalog.trunc(v_scaled) else pg_catalog.round(v_scaled) end / pg_catalog.power(10::numeric, s))
  end;
  -- 2.5 rounds to 2, not 2.0000000000000000
  return case when pg_catalog.jsonb_typeof(v_result) = 'number' then pg_catalog.to_jsonb(pg_catalog.trim_scale((v_result #>> '{}')::numeric)) else v_result end;
end;
$$;
comment on function bpm_private.feel__number(text, jsonb[]) is E'FEEL numeric functions: abs, floor, ceiling, decimal (half even), round up / down / half up / half down, modulo, sqrt, odd, even.';

-- FEEL list functions. sum, min, max, mean, product, all and any take one
-- list or several arguments.
create or replace function bpm_private.feel__list(fn text, a jsonb[])
returns jsonb
language plpgsql
stable
set search_path = ''
as $$
declare
  l jsonb := a[1];
  v_start int;
begin
  if fn in ('sum', 'min', 'max', 'mean', 'product', 'all', 'any') and (pg_catalog.cardinality(a) > 1 or pg_catalog.jsonb_typeof(l) <> 'array') then
    l := (select pg_catalog.jsonb_agg(coalesce(e, 'null') order by n) from unnest(a) with ordinality as x(e, n));
  end if;
  if fn = 'concatenate' then
    return case when bool_and(pg_catalog.jsonb_typeof(e) = 'array') then coalesce(pg_catalog.jsonb_agg(i order by n, m), '[]') end
      from unnest(a) with ordinality as x(e, n) left join lateral pg_catalog.jsonb_array_elements(case when pg_catalog.jsonb_typeof(x.e) = 'array' then x.e end) with ordinality as y(i, m) on true;
  end if;
  if pg_catalog.jsonb_typeof(l) is distinct from 'array' then
    return null;
  end if;
  case fn
    when 'count' then return pg_catalog.to_jsonb(pg_catalog.jsonb_array_length(l));
    when 'is empty' then return pg_catalog.to_jsonb(pg_catalog.jsonb_array_length(l) = 0);
    when 'list contains' then return pg_catalog.to_jsonb(l @> pg_catalog.jsonb_build_array(coalesce(a[2], 'null')));
    when 'reverse' then return coalesce((select pg_catalog.jsonb_agg(e order by n desc) from pg_catalog.jsonb_array_elements(l) with ordinality as x(e, n)), '[]');
    when 'append' then return l || (select coalesce(pg_catalog.jsonb_agg(coalesce(e, 'null') order by n), '[]') from unnest(a[2:]) with ordinality as x(e, n));
    when 'index of' then return coalesce((select pg_catalog.jsonb_agg(n order by n) from pg_catalog.jsonb_array_elements(l) with ordinality as x(e, n)
      where e = coalesce(a[2], 'null')), '[]');
    when 'distinct values' then return coalesce((select pg_catalog.jsonb_agg(e order by n) from (select e, min(n) as n from pg_catalog.jsonb_array_elements(l) with ordinality as x(e, n) group by e) d), '[]');
    when 'flatten' then return coalesce((select pg_catalog.jsonb_agg(e) from pg_catalog.jsonb_path_query(l, 'strict $.** ? (@.type() != "array")') e
      where e is not null), '[]');
    when 'sublist' then
      if pg_catalog.jsonb_typeof(a[2]) <> 'number' then
        return null;
      end if;
      v_start := (a[2] #>> '{}')::numeric::int;
      v_start := case when v_start < 0 then pg_catalog.jsonb_array_length(l) + v_start + 1 else v_start end;
      return coalesce((select pg_catalog.jsonb_agg(e order by n) from pg_catalog.jsonb_array_elements(l) with ordinality as x(e, n)
        where n >= v_start and (a[3] is null or n < v_start + (a[3] #>> '{}')::numeric::int)), '[]');
    when 'string join' then
      return case when not exists (select from pg_catalog.jsonb_array_elements(l) e where pg_catalog.jsonb_typeof(e) not in ('string', 'null'))
        then pg_catalog.to_jsonb(coalesce((select pg_catalog.string_agg(e #>> '{}', coalesce(a[2] #>> '{}', '') order by n)
          from pg_catalog.jsonb_array_elements(l) with ordinality as x(e, n) where pg_catalog.jsonb_typeof(e) = 'string'), '')) end;
    when 'all', 'any' then
      if exists (select from pg_catalog.jsonb_array_elements(l) e where pg_catalog.jsonb_typeof(e) <> 'boolean') then
        return null;
      end if;
      return pg_catalog.to_jsonb(case fn when 'all' then not (l @> '[false]') else l @> '[true]' end);
    else
      return bpm_private.feel__aggregate(fn, l);
  end case;
end;
$$;
comment on function bpm_private.feel__list(text, jsonb[]) is E'FEEL list functions: count, sum, min, max, mean, product, all, any, sublist, append, concatenate, reverse, index of, distinct values, flatten, list contains, is empty, string join.';

-- sum, product and mean of numbers; min and max of numbers or of strings; null
-- for an empty list or mixed items.
create or replace function bpm_private.feel__aggregate(fn text, l jsonb)
returns jsonb
language plpgsql
immutable
set search_path = ''
as $$
declare
  v_types text[] := array(select distinct pg_catalog.jsonb_typeof(e) from pg_catalog.jsonb_array_elements(l) e);
begin
  if pg_catalog.cardinality(v_types) <> 1 or (v_types[1] <> 'number' and not (v_types[1] = 'string' and fn in ('min', 'max'))) then
    return null;
  end if;
  if fn = 'product' then
    return pg_catalog.to_jsonb((select bpm_private.numeric__product(pg_catalog.array_agg((e #>> '{}')::numeric)) from pg_catalog.jsonb_array_elements(l) e));
  end if;
  if v_types[1] = 'string' then
    return (select pg_catalog.to_jsonb(case fn when 'min' then min(e #>> '{}' collate "C") else max(e #>> '{}' collate "C") end)
      from pg_catalog.jsonb_array_elements(l) e);
  end if;
  return (select pg_catalog.to_jsonb(case fn when 'sum' then sum((e #>> '{}')::numeric) when 'mean' then pg_catalog.trim_scale(avg((e #>> '{}')::numeric))
      when 'min' then min((e #>> '{}')::numeric) else max((e #>> '{}')::numeric) end)
    from pg_catalog.jsonb_array_elements(l) e);
end;
$$;
comment on function bpm_private.feel__aggregate(text, jsonb) is E'FEEL sum, product, mean, min and max over a list of numbers (min and max also of strings); null for an empty or mixed list.';

create or replace function bpm_private.numeric__product(xs numeric[])
returns numeric
language plpgsql
immutable
set search_path = ''
as $$
declare
  v numeric := 1;
  x numeric;
begin
  foreach x in array xs loop
    v := v * x;
  end loop;
  return v;
end;
$$;
comment on function bpm_private.numeric__product(numeric[]) is E'The product of the numbers.';
--! EndIncluded expression/feel.sql
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
