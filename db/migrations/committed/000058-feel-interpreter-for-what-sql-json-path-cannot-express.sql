--! Previous: sha1:cfb0f5225304b306db79c0ba0d277b4defd20901
--! Hash: sha1:5eb62175e3d984225190d37d06e7a468bb25012b
--! Message: FEEL interpreter for what SQL/JSON path cannot express

-- FEEL beyond SQL/JSON path: an interpreter for compiled FEEL trees
-- (contexts, lists, filters, quantifiers, for, if-then-else values, string,
-- list, numeric, context and temporal functions).
--! Included expression/feel.sql
-- The FEEL interpreter: expressions that SQL/JSON path cannot express,
-- compiled at deploy time into a tree of JSON nodes (compiler/feel-tree.ts)
-- and evaluated here over the variables. Each node kind and each function is
-- one of a fixed set: the tree is data, never code. FEEL null is SQL null
-- (a missing variable, a JSON null, or a value of the wrong type for an
-- operation); lists and contexts hold JSON nulls.

-- A node's value over vars (the variables, with names bound by contexts,
-- filters, for / some / every on top).
create or replace function bpm_private.feel__eval(t jsonb, vars jsonb)
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
      return nullif(vars -> (t ->> 'n'), 'null');
    when 'get' then
      v := bpm_private.feel__eval(t -> 'o', vars);
      if pg_catalog.jsonb_typeof(v) = 'array' then
        -- a property of a list is the list of the items' properties
        return coalesce((select pg_catalog.jsonb_agg(coalesce(e -> (t ->> 'n'), 'null') order by n)
          from pg_catalog.jsonb_array_elements(v) with ordinality as x(e, n)), '[]');
      end if;
      return case when pg_catalog.jsonb_typeof(v) = 'object' then nullif(v -> (t ->> 'n'), 'null') end;
    when 'at' then
      v := bpm_private.feel__eval(t -> 'o', vars);
      w := bpm_private.feel__eval(t -> 'i', vars);
      if pg_catalog.jsonb_typeof(w) <> 'number' or (w #>> '{}')::numeric <> pg_catalog.trunc((w #>> '{}')::numeric) then
        return null;
      end if;
      if pg_catalog.jsonb_typeof(v) <> 'array' then
        v := pg_catalog.jsonb_build_array(v);
      end if;
      return nullif(v -> case when (w #>> '{}')::int > 0 then (w #>> '{}')::int - 1 else pg_catalog.jsonb_array_length(v) + (w #>> '{}')::int end, 'null');
    when 'flt', 'some', 'every', 'for' then
      return bpm_private.feel__iterate(t, vars);
    when 'ar' then
      return bpm_private.feel__arith(t ->> 'op', bpm_private.feel__eval(t -> 'l', vars), bpm_private.feel__eval(t -> 'r', vars));
    when 'neg' then
      v := bpm_private.feel__eval(t -> 'a', vars);
      return case when pg_catalog.jsonb_typeof(v) = 'number' then pg_catalog.to_jsonb(-(v #>> '{}')::numeric) end;
    when 'cmp' then
      return bpm_private.feel__compare(t ->> 'op', bpm_private.feel__eval(t -> 'l', vars), bpm_private.feel__eval(t -> 'r', vars));
    when 'and', 'or' then
      -- three-valued: false (and) / true (or) decides whatever the other side is
      v := bpm_private.feel__eval(t -> 'l', vars);
      if v = pg_catalog.to_jsonb(v_kind = 'or') then
        return v;
      end if;
      w := bpm_private.feel__eval(t -> 'r', vars);
      if w = pg_catalog.to_jsonb(v_kind = 'or') then
        return w;
      end if;
      return case when pg_catalog.jsonb_typeof(v) = 'boolean' and pg_catalog.jsonb_typeof(w) = 'boolean' then w end;
    when 'if' then
      v := bpm_private.feel__eval(t -> 'c', vars);
      return bpm_private.feel__eval(case when v = 'true' then t -> 't' else t -> 'e' end, vars);
    when 'ctx' then
      -- later entries see the earlier ones
      v := '{}';
      for i in 0 .. pg_catalog.jsonb_array_length(t -> 'e') - 1 loop
        v := v || pg_catalog.jsonb_build_object(t -> 'e' -> i ->> 0, coalesce(bpm_private.feel__eval(t -> 'e' -> i -> 1, vars || v), 'null'));
      end loop;
      return v;
    when 'list' then
      return coalesce((select pg_catalog.jsonb_agg(coalesce(bpm_private.feel__eval(e, vars), 'null') order by n)
        from pg_catalog.jsonb_array_elements(t -> 'e') with ordinality as x(e, n)), '[]');
    when 'call' then
      return bpm_private.feel__call(t ->> 'f', array(select bpm_private.feel__eval(a, vars)
        from pg_catalog.jsonb_array_elements(t -> 'a') with ordinality as x(a, n) order by n));
    when 'def' then
      -- is defined: the variable or property exists (even when null)
      if t -> 'a' ->> 'k' = 'var' then
        return pg_catalog.to_jsonb(vars ? (t -> 'a' ->> 'n'));
      elsif t -> 'a' ->> 'k' = 'get' then
        v := bpm_private.feel__eval(t -> 'a' -> 'o', vars);
        return pg_catalog.to_jsonb(pg_catalog.jsonb_typeof(v) = 'object' and v ? (t -> 'a' ->> 'n'));
      end if;
      return pg_catalog.to_jsonb(bpm_private.feel__eval(t -> 'a', vars) is not null);
    else
      raise exception 'unknown FEEL node kind %', v_kind using errcode = 'BP305';
  end case;
end;
$$;
comment on function bpm_private.feel__eval(jsonb, jsonb) is E'Evaluates a compiled FEEL tree (compiler/feel-tree.ts) over the variables; FEEL null is SQL null.';

-- Filters (l[cond]: the items for which cond holds; names are the item's
-- properties, or `item`), quantifiers (some / every v in l satisfies c) and
-- for v in l return e. A value that is not a list counts as a list of one.
create or replace function bpm_private.feel__iterate(t jsonb, vars jsonb)
returns jsonb
language plpgsql
stable
set search_path = ''
as $$
declare
  v_kind text := t ->> 'k';
  v_list jsonb := bpm_private.feel__eval(case when v_kind = 'flt' then t -> 'o' else t -> 'in' end, vars);
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
        where bpm_private.feel__eval(t -> 'c', vars || pg_catalog.jsonb_build_object('item', e)
          || case when pg_catalog.jsonb_typeof(e) = 'object' then e else '{}' end) = 'true'), '[]');
    when 'for' then
      return coalesce((select pg_catalog.jsonb_agg(coalesce(bpm_private.feel__eval(t -> 'r', vars || pg_catalog.jsonb_build_object(t ->> 'v', e)), 'null') order by n)
        from pg_catalog.jsonb_array_elements(v_list) with ordinality as x(e, n)), '[]');
    when 'some' then
      return pg_catalog.to_jsonb(exists (select from pg_catalog.jsonb_array_elements(v_list) e
        where bpm_private.feel__eval(t -> 'c', vars || pg_catalog.jsonb_build_object(t ->> 'v', e)) = 'true'));
    else
      return pg_catalog.to_jsonb(not exists (select from pg_catalog.jsonb_array_elements(v_list) e
        where bpm_private.feel__eval(t -> 'c', vars || pg_catalog.jsonb_build_object(t ->> 'v', e)) is distinct from 'true'));
  end case;
end;
$$;
comment on function bpm_private.feel__iterate(jsonb, jsonb) is E'FEEL list filters, some / every and for over a list (a single value counts as a list of one).';

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
--! Included expression/evaluate.sql
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
    v_value := bpm_private.feel__eval(expr -> 'tree', variables);
    v_result := case when pg_catalog.jsonb_typeof(v_value) = 'boolean' then (v_value #>> '{}')::boolean end;
  else
    v_result := pg_catalog.jsonb_path_match(variables, (expr ->> 'path')::jsonpath);
  end if;
  if v_result is null then
    raise exception 'condition % of element % did not evaluate to a boolean', expr ->> 'src', element_id
      using errcode = 'BP303';
  end if;
  return v_result;
end;
$$;
comment on function bpm_private.expression__test(jsonb, jsonb, text) is E'Evaluates a compiled condition; BP302 for an unknown variable, BP303 if the result is not a boolean.';

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
    return bpm_private.feel__eval(value -> 'expr' -> 'tree', variables);
  end if;
  return pg_catalog.jsonb_path_query_first(variables, (value -> 'expr' ->> 'path')::jsonpath);
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
--! EndIncluded expression/evaluate.sql
--! Included elements/multi_instance.sql
-- Multi-instance activities. Entering the activity creates its body (a scope
-- instance: activity row type multiInstanceBody, token kind body) whose data
-- is the loop state: n (instances), next (index of the next inner instance),
-- active, completed, items (the input collection), el (element variable),
-- inner ({inner activity instance id: loopCounter}), out ({loopCounter:
-- output element}). Inner instances enter the activity itself, inside the
-- body; when one completes the body counts it, evaluates the completion
-- condition, starts the next one (sequential) or completes: the remaining
-- inner instances are cancelled, the output collection is written and the
-- token leaves the activity.

create or replace function bpm_private.mi__enter(st bpm_private.run_state, graph jsonb, node jsonb, id uuid)
returns bpm_private.run_state
language plpgsql
volatile
set search_path = ''
as $$
declare
  v_loop jsonb := node -> 'loop';
  v_el text := node ->> 'id';
  v_items jsonb;
  v_n int;
  v_count int;
  v_kind text;
begin
  if v_loop ? 'collection' then
    v_items := bpm_private.value__eval(v_loop -> 'collection', st.variables, v_el);
    if pg_catalog.jsonb_typeof(v_items) is distinct from 'array' then
      raise exception 'the multi-instance collection of element % is not a list (it is %)', v_el, coalesce(pg_catalog.jsonb_typeof(v_items), 'missing')
        using errcode = 'BP310';
    end if;
    v_n := pg_catalog.jsonb_array_length(v_items);
  else
    v_items := bpm_private.value__eval(v_loop -> 'cardinality', st.variables, v_el);
    if pg_catalog.jsonb_typeof(v_items) = 'string' and v_items #>> '{}' ~ '^\s*\d+\s*$' then
      v_items := pg_catalog.to_jsonb(pg_catalog.btrim(v_items #>> '{}')::int);
    end if;
    if pg_catalog.jsonb_typeof(v_items) is distinct from 'number' or (v_items #>> '{}')::numeric < 0
       or (v_items #>> '{}')::numeric <> pg_catalog.trunc((v_items #>> '{}')::numeric) then
      raise exception 'the multi-instance cardinality of element % is not a whole number ≥ 0 (it is %)', v_el, coalesce(v_items::text, 'missing')
        using errcode = 'BP310';
    end if;
    v_n := (v_items #>> '{}')::int;
    v_items := null;
  end if;
  if v_n > 10000 then
    raise exception 'the multi-instance activity % would start % instances; at most 10000 are allowed', v_el, v_n using errcode = 'BP310';
  end if;
  st.a_type[pg_catalog.array_position(st.a_id, id)] := 'multiInstanceBody';
  if v_n = 0 then
    -- nothing to do: the activity is skipped (an empty output collection)
    st.a_state[pg_catalog.array_position(st.a_id, id)] := 'completed';
    if v_loop ->> 'outputCollection' is not null then
      st := bpm_private.scope__set_variables(st, st.cur_scope, pg_catalog.jsonb_build_object(v_loop ->> 'outputCollection', '[]'::jsonb));
    end if;
    return bpm_private.node__leave(st, graph, node);
  end if;
  st := bpm_private.scope__add(st, id, v_el, 'body', pg_catalog.jsonb_build_object('n', v_n, 'next', 0, 'active', 0, 'completed', 0,
    'items', v_items, 'el', v_loop -> 'elementVariable', 'inner', '{}'::jsonb, 'out', '{}'::jsonb));
  if bpm_private.node__has_subscriptions(graph, node) then
    st := bpm_private.boundary__arm(st, graph, node, id);
  end if;
  -- the endless-loop guard (run__drain) allows 50 more automatic steps per
  -- inner instance, up to 500,000 more per call, the first time the activity
  -- is entered in its scope in this call (a cycle through it gains nothing)
  if (select pg_catalog.count(*) from unnest(st.a_el, st.a_scope, st.a_type) as a(el, scope, typ)
      where a.el = v_el and a.typ = 'multiInstanceBody' and a.scope is not distinct from st.cur_scope) = 1 then
    st.step_credit := least(coalesce(st.step_credit, 0) + v_n * 50, 500000);
  end if;
  st.cur_scope := id;
  v_kind := case when not (v_loop ->> 'sequential')::boolean then bpm_private.mi__task_kind(node) end;
  if v_kind is not null then
    return bpm_private.mi__start_tasks(st, node, id, v_n, v_kind);
  end if;
  v_count := case when (v_loop ->> 'sequential')::boolean then 1 else v_n end;
  for v_i in 1 .. v_count loop
    st := bpm_private.run__push(st, v_el, null);
  end loop;
  return st;
end;
$$;
comment on function bpm_private.mi__enter(bpm_private.run_state, jsonb, jsonb, uuid) is E'A token enters a multi-instance activity: its body starts every inner instance (parallel) or the first (sequential); an empty collection skips the activity (BP310 for a collection that is not a list).';

-- The wait state kind (userTask, externalTask) of a task whose parallel
-- inner instances are created at once (mi__start_tasks): every user or
-- external task but one with an asynchronous continuation before it (each
-- inner instance then waits for its own job); null for any other activity.
create or replace function bpm_private.mi__task_kind(node jsonb)
returns text
language plpgsql
immutable
set search_path = ''
as $$
begin
  -- (plpgsql, not sql: a non-inlined sql function is planned again in every transaction)
  return case
    when coalesce((node ->> 'asyncBefore')::boolean, false) then null
    when node ->> 'type' = 'userTask' then 'userTask'
    when coalesce(node ->> 'topic', '') <> '' then 'externalTask'
  end;
end;
$$;
comment on function bpm_private.mi__task_kind(jsonb) is E'userTask or externalTask for a task whose parallel inner instances are created at once (mi__start_tasks), else null.';

-- The names of the variables the expressions of a task read when it is
-- created: the root of every compiled path ($."name", compiler/expression.ts)
-- outside its loop characteristics and output mappings (evaluated later), and
-- the targets of nested input mappings (io__map reads them by name). It may
-- name more (a string that looks like a path), never fewer; null when a name
-- is escaped in a path or an expression is a FEEL tree (then every variable
-- counts).
create or replace function bpm_private.node__variable_refs(node jsonb)
returns text[]
language plpgsql
immutable
set search_path = ''
as $$
declare
  v_refs text[];
begin
  if pg_catalog.jsonb_path_exists(node - 'loop' - 'outputs', 'strict $.**.tree') then
    -- a FEEL tree (feel__eval) reads names, not paths: every variable counts
    return null;
  end if;
  v_refs := array(
    select distinct m[1]
    from pg_catalog.jsonb_path_query(node - 'loop' - 'outputs', 'strict $.**') s(v)
    cross join lateral pg_catalog.regexp_matches(s.v #>> '{}', '\$\."((?:[^"\\]|\\.)*)"', 'g') m
    where pg_catalog.jsonb_typeof(s.v) = 'string');
  if exists (select from unnest(v_refs) r where pg_catalog.strpos(r, E'\\') > 0) then
    return null;
  end if;
  return v_refs || array(select m ->> 'target' from pg_catalog.jsonb_array_elements(coalesce(node -> 'inputs', '[]')) m where m ? 'path');
end;
$$;
comment on function bpm_private.node__variable_refs(jsonb) is E'The variables the expressions of a task read when it is created (path roots outside its loop and output mappings, nested input mapping targets; possibly more, never fewer); null when it cannot tell.';

-- The inner instances of a parallel multi-instance task, created at once
-- instead of one queued token each: their history rows, their wait states
-- with what each sees stored as its locals (task__locals: the scopes'
-- locals, its loopCounter and element variable, its input mappings), their
-- deadlines and loop numbers (0 .. n-1, in creation order), as run__drain
-- would make them one by one. Attributes (assignee, candidates, dates,
-- priority, form defaults, input mappings) are evaluated per inner instance
-- over the variables their expressions read (node__variable_refs) plus the
-- loop variables, so each costs the same whatever the size of the
-- collection; a task with none is built once.
create or replace function bpm_private.mi__start_tasks(st bpm_private.run_state, node jsonb, body_id uuid, n int, kind text)
returns bpm_private.run_state
language plpgsql
volatile
set search_path = ''
as $$
declare
  v_el text := node ->> 'id';
  v_ids uuid[] := array(select bpm_private.uuid_v7() from pg_catalog.generate_series(1, n));
  v_pos int := pg_catalog.array_position(st.l_id, body_id);
  v_body jsonb := st.l_data[v_pos];
  v_items jsonb := v_body -> 'items';
  v_seen jsonb := bpm_private.scope__variables(st, body_id, null);
  -- what every inner instance sees beyond the instance's variables, before its loop variables
  v_locals jsonb := coalesce(bpm_private.task__locals(v_seen, st.variables), '{}');
  v_static boolean := not node ? 'inputs' and case kind
    when 'userTask' then coalesce(node -> 'userTask', '{}') = '{}' and node -> 'taskEscalation' is null
    else not coalesce(node -> 'taskPriority' ? 'expr', false) end;
  v_refs text[];
  v_data jsonb[];
begin
  if not v_static then
    v_refs := bpm_private.node__variable_refs(node);
    if v_refs is not null then
      v_seen := coalesce((select pg_catalog.jsonb_object_agg(e.key, e.value) from pg_catalog.jsonb_each(v_seen) e where e.key = any(v_refs)), '{}');
    end if;
  end if;
  v_data := array(
    select t.data || pg_catalog.jsonb_build_object('locals', bpm_private.task__locals(v_locals || l.loop || t.inputs, st.variables))
    from pg_catalog.generate_series(1, n) k
    -- loop variables as the k-th inner instance sees them when it is created alone
    cross join lateral (select pg_catalog.jsonb_build_object('loopCounter', k - 1)
      || case when v_body ->> 'el' is not null then pg_catalog.jsonb_build_object(v_body ->> 'el', coalesce(v_items -> (k - 1), 'null'::jsonb)) else '{}' end
      as loop) l
    cross join lateral (select v_seen || pg_catalog.jsonb_build_object('nrOfActiveInstances', k) || l.loop as vars) v
    cross join lateral (select case when node ? 'inputs' then bpm_private.io__map(node -> 'inputs', v.vars, v_el) else '{}' end as inputs) i
    cross join lateral (select case
      when v_static and kind = 'userTask' then bpm_private.user_task__create(node, null)
      when v_static then bpm_private.external_task__create(node, null)
      when kind = 'userTask' then bpm_private.user_task__create(node, v.vars || i.inputs)
      else bpm_private.external_task__create(node, v.vars || i.inputs) end as data, i.inputs) t
    order by k);
  st.a_id := st.a_id || v_ids;
  st.a_el := st.a_el || pg_catalog.array_fill(v_el, array[n]);
  st.a_type := st.a_type || pg_catalog.array_fill(node ->> 'type', array[n]);
  st.a_state := st.a_state || pg_catalog.array_fill('active'::text, array[n]);
  st.a_scope := st.a_scope || pg_catalog.array_fill(body_id, array[n]);
  st.w_id := st.w_id || v_ids;
  st.w_el := st.w_el || pg_catalog.array_fill(v_el, array[n]);
  st.w_kind := st.w_kind || pg_catalog.array_fill(kind, array[n]);
  st.w_flow := st.w_flow || pg_catalog.array_fill(null::text, array[n]);
  st.w_data := st.w_data || v_data;
  if kind = 'userTask' and not v_static then
    -- due, follow-up and escalation jobs (as run__drain queues them)
    st.p_data := st.p_data || array(
      select pg_catalog.jsonb_build_object('kind', 'deadline', 'task', u.id, 'data', u.data - 'locals')
      from unnest(v_ids, v_data) as u(id, data) where u.data ? 'deadline');
  end if;
  st.l_data[v_pos] := st.l_data[v_pos] || pg_catalog.jsonb_build_object('next', n, 'active', n,
    'inner', (select pg_catalog.jsonb_object_agg(u.id::text, u.k - 1) from unnest(v_ids) with ordinality as u(id, k)));
  return st;
end;
$$;
comment on function bpm_private.mi__start_tasks(bpm_private.run_state, jsonb, uuid, int, text) is E'Creates every inner instance of a parallel multi-instance user or external task at once, each with its attributes evaluated.';

-- An inner instance completed (task left, subprocess or called instance ended).
create or replace function bpm_private.mi__inner_done(st bpm_private.run_state, graph jsonb, node jsonb, body_id uuid, inner_id uuid)
returns bpm_private.run_state
language plpgsql
volatile
set search_path = ''
as $$
declare
  v_loop jsonb := node -> 'loop';
  v_el text := node ->> 'id';
  v_pos int := pg_catalog.array_position(st.l_id, body_id);
  v_data jsonb := st.l_data[v_pos];
  v_k text := v_data -> 'inner' ->> inner_id::text;
  v_vars jsonb;
  v_done boolean;
begin
  if v_k is null then
    -- not (any more) an inner instance of this body: nothing to count
    return st;
  end if;
  v_data := v_data || pg_catalog.jsonb_build_object('active', (v_data ->> 'active')::int - 1,
    'completed', (v_data ->> 'completed')::int + 1);
  st := bpm_private.scope__set(st, body_id, v_data);
  -- the inner instance's variables, counters updated
  v_vars := bpm_private.scope__variables(st, body_id, inner_id);
  if node ? 'compensation' then
    -- kept on its history row for its compensation handler (compensation__inner_instances)
    st.p_data := st.p_data || pg_catalog.jsonb_build_object('kind', 'innerLocals', 'activity', inner_id,
      'vars', coalesce(bpm_private.task__locals(v_vars, st.variables), '{}'::jsonb) - 'nrOfInstances');
  end if;
  if v_loop -> 'outputElement' is not null then
    v_data := pg_catalog.jsonb_set(v_data, array['out', v_k],
      coalesce(bpm_private.value__eval(v_loop -> 'outputElement', v_vars, v_el), 'null'::jsonb));
  end if;
  v_data := pg_catalog.jsonb_set(v_data, '{inner}', (v_data -> 'inner') - inner_id::text);
  st := bpm_private.scope__set(st, body_id, v_data);
  v_done := (v_data ->> 'completed')::int >= (v_data ->> 'n')::int
    or (v_loop -> 'completionCondition' is not null and bpm_private.expression__test(v_loop -> 'completionCondition', v_vars, v_el));
  if not v_done then
    if (v_loop ->> 'sequential')::boolean then
      st.cur_scope := body_id;
      st := bpm_private.run__push(st, v_el, null);
    end if;
    return st;
  end if;
  return bpm_private.mi__complete(st, graph, node, body_id);
end;
$$;
comment on function bpm_private.mi__inner_done(bpm_private.run_state, jsonb, jsonb, uuid, uuid) is E'Counts a completed inner instance, records its output element, starts the next (sequential) or completes the body.';

create or replace function bpm_private.mi__complete(st bpm_private.run_state, graph jsonb, node jsonb, body_id uuid)
returns bpm_private.run_state
language plpgsql
volatile
set search_path = ''
as $$
declare
  v_loop jsonb := node -> 'loop';
  v_pos int := pg_catalog.array_position(st.l_id, body_id);
  v_data jsonb := st.l_data[v_pos];
  v_parent uuid := st.l_parent[v_pos];
  v_inner uuid[];
begin
  -- inner instances still running are cancelled (completion condition)
  v_inner := array(select k::uuid from pg_catalog.jsonb_object_keys(v_data -> 'inner') k);
  if pg_catalog.cardinality(v_inner) > 0 then
    st := bpm_private.scope__cancel(st, v_inner);
  end if;
  -- queued inner instances that have not started yet
  for v_i in st.q_pos .. pg_catalog.cardinality(st.q_node) loop
    if st.q_scope[v_i] = body_id then
      st.q_node[v_i] := null;
    end if;
  end loop;
  st := bpm_private.scope__remove(st, body_id);
  st := bpm_private.subscriptions__drop(st, array[body_id]);
  st := bpm_private.activity__end(st, array[body_id], 'completed');
  st.cur_scope := v_parent;
  if v_loop ->> 'outputCollection' is not null then
    -- completed inner instances' outputs, in input order
    st := bpm_private.scope__set_variables(st, v_parent, pg_catalog.jsonb_build_object(v_loop ->> 'outputCollection',
      coalesce((select pg_catalog.jsonb_agg(o.value order by o.key::int) from pg_catalog.jsonb_each(v_data -> 'out') o), '[]'::jsonb)));
  end if;
  return bpm_private.node__leave(st, graph, node);
end;
$$;
comment on function bpm_private.mi__complete(bpm_private.run_state, jsonb, jsonb, uuid) is E'Completes a multi-instance body: cancels inner instances still running, writes the output collection, and the token leaves the activity.';
--! EndIncluded elements/multi_instance.sql
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
