--! Previous: sha1:30ee2113d73add90e371c0aa32a5891e2db920c2
--! Hash: sha1:61429a8baff2f1ba63633e2259e65f3d23bcefb0
--! Message: Inclusive joins per subprocess instance

-- An inclusive join inside a subprocess fires per subprocess instance: only
-- live tokens of that instance can hold it back.
--! Included engine/join.sql
-- Joins. Each token arriving at a join waits there (its own activity row).
-- A parallel join fires once every incoming flow has a token; an inclusive
-- join once no live token can still reach it. Firing consumes one token per
-- incoming flow that has one (stored tokens first, then buffered ones), so
-- joins reached repeatedly in loops and uneven branches work.

create or replace function bpm_private.join__flows_waiting(st bpm_private.run_state, node_id text)
returns text[]
language plpgsql
stable
set search_path = ''
as $$
declare
  v_flows text[] := '{}';
begin
  -- buffered tokens: walked by index (plain expressions, no query)
  for v_i in 1 .. pg_catalog.cardinality(st.w_el) loop
    if st.w_el[v_i] = node_id and st.w_kind[v_i] = 'join' and not (st.w_flow[v_i] = any(v_flows))
       and (st.cur_scope is null or st.a_scope[pg_catalog.array_position(st.a_id, st.w_id[v_i])] = st.cur_scope) then
      v_flows := v_flows || st.w_flow[v_i];
    end if;
  end loop;
  if not st.is_new then
    v_flows := v_flows || array(
      select distinct t.via_flow from bpm_private.token t
      where t.tenant_id = st.tenant_id and t.instance_id = st.instance_id and t.element_id = node_id and t.kind = 'join'
        and (st.cur_scope is null or exists (select 1 from bpm.activity_instance a
             where a.tenant_id = t.tenant_id and a.id = t.id and a.scope_id = st.cur_scope)));
  end if;
  return v_flows;
end;
$$;
comment on function bpm_private.join__flows_waiting(bpm_private.run_state, text) is E'Incoming flows of a join on which a token waits (buffered or stored).';

create or replace function bpm_private.join__consume(st bpm_private.run_state, node_id text, flows text[])
returns bpm_private.run_state
language plpgsql
volatile
set search_path = ''
as $$
declare
  v_ids uuid[] := '{}';
  v_done text[] := '{}';
  v_flow text;
  v_keep boolean[];
begin
  if not st.is_new then
    -- several tokens waiting on one flow: the first to arrive goes first
    -- (by the seq of its activity row; token ids are random)
    with picked as (
      select distinct on (t.via_flow) t.id, t.via_flow
      from bpm_private.token t
      join bpm.activity_instance a on a.tenant_id = t.tenant_id and a.id = t.id
      where t.tenant_id = st.tenant_id and t.instance_id = st.instance_id
        and t.element_id = node_id and t.kind = 'join' and t.via_flow = any(flows)
        and (st.cur_scope is null or a.scope_id = st.cur_scope)
      order by t.via_flow, a.seq
    ), deleted as (
      delete from bpm_private.token t using picked p
      where t.tenant_id = st.tenant_id and t.id = p.id
      returning t.id, t.via_flow
    )
    select coalesce(array_agg(d.id), '{}'), coalesce(array_agg(d.via_flow), '{}') into v_ids, v_done from deleted d;
  end if;
  -- buffered tokens, in arrival order: the first on each remaining flow goes
  v_keep := pg_catalog.array_fill(true, array[pg_catalog.cardinality(st.w_id)]);
  for v_i in 1 .. pg_catalog.cardinality(st.w_id) loop
    v_flow := st.w_flow[v_i];
    if st.w_el[v_i] = node_id and st.w_kind[v_i] = 'join' and v_flow = any(flows) and not (v_flow = any(v_done))
       and (st.cur_scope is null or st.a_scope[pg_catalog.array_position(st.a_id, st.w_id[v_i])] = st.cur_scope) then
      v_keep[v_i] := false;
      v_done := v_done || v_flow;
      v_ids := v_ids || st.w_id[v_i];
    end if;
  end loop;
  if not (true = all(v_keep)) then
    st := bpm_private.wait__keep(st, v_keep);
  end if;
  return bpm_private.activity__end(st, v_ids, 'completed');
end;
$$;
comment on function bpm_private.join__consume(bpm_private.run_state, text, text[]) is E'Consumes one waiting token per given incoming flow of a join and completes their activity rows.';

create or replace function bpm_private.parallel_join__arrive(st bpm_private.run_state, graph jsonb, node jsonb, id uuid, via_flow text)
returns bpm_private.run_state
language plpgsql
volatile
set search_path = ''
as $$
declare
  v_in text[] := bpm_private.jsonb_to_text_array(node -> 'in');
begin
  st := bpm_private.wait__add(st, id, node ->> 'id', 'join', via_flow, null);
  if not (bpm_private.join__flows_waiting(st, node ->> 'id') @> v_in) then
    return st;
  end if;
  st := bpm_private.join__consume(st, node ->> 'id', v_in);
  return bpm_private.node__leave(st, graph, node);
end;
$$;
comment on function bpm_private.parallel_join__arrive(bpm_private.run_state, jsonb, jsonb, uuid, text) is E'A token arrives at a parallel join; fires when every incoming flow has a token.';

create or replace function bpm_private.inclusive_join__try_fire(st bpm_private.run_state, graph jsonb, node_id text)
returns bpm_private.run_state
language plpgsql
volatile
set search_path = ''
as $$
declare
  v_node jsonb := graph -> 'nodes' -> node_id;
  v_scopes uuid[] := array[null::uuid];
  v_scope uuid;
  v_flows text[];
  v_upstream text[] := bpm_private.jsonb_to_text_array(v_node -> 'upstream');
begin
  if v_node ? 'scope' then
    -- inside a subprocess: each of its instances with a token waiting here, on its own
    v_scopes := array(
      select distinct x.s from (
        select st.a_scope[pg_catalog.array_position(st.a_id, w.id)] as s from unnest(st.w_id, st.w_el) as w(id, el) where w.el = node_id
        union all
        select a.scope_id from bpm_private.token t join bpm.activity_instance a on a.tenant_id = t.tenant_id and a.id = t.id
        where not st.is_new and t.tenant_id = st.tenant_id and t.instance_id = st.instance_id and t.element_id = node_id and t.kind = 'join') x);
  end if;
  foreach v_scope in array v_scopes loop
    st.cur_scope := v_scope;
    st := bpm_private.scope__load(st, v_scope);
    v_flows := bpm_private.join__flows_waiting(st, node_id);
    continue when pg_catalog.cardinality(v_flows) = 0 or bpm_private.inclusive_join__reachable(st, v_scope, v_upstream);
    st := bpm_private.join__consume(st, node_id, v_flows);
    return bpm_private.node__leave(st, graph, v_node);
  end loop;
  return st;
end;
$$;
comment on function bpm_private.inclusive_join__try_fire(bpm_private.run_state, jsonb, text) is E'Fires an inclusive join with waiting tokens once no live token can still reach it (inside a subprocess: per subprocess instance).';

-- Whether a live token can still reach an inclusive join: one on an element
-- of its upstream set, at process level (scope null) anywhere in the
-- instance, in a subprocess instance among that instance's activities.
create or replace function bpm_private.inclusive_join__reachable(st bpm_private.run_state, scope_id uuid, upstream text[])
returns boolean
language plpgsql
stable
set search_path = ''
as $$
begin
  if scope_id is null then
    return st.w_el && upstream or (not st.is_new and (
      exists (select 1 from bpm_private.token t
              where t.tenant_id = st.tenant_id and t.instance_id = st.instance_id and t.element_id = any(upstream))
      or exists (select 1 from bpm.user_task u
                 where u.tenant_id = st.tenant_id and u.instance_id = st.instance_id and (u.state = 'open') is true and u.element_id = any(upstream))
      or exists (select 1 from bpm.external_task e
                 where e.tenant_id = st.tenant_id and e.instance_id = st.instance_id and (e.state = 'open') is true and e.element_id = any(upstream))));
  end if;
  if exists (select 1 from unnest(st.a_el, st.a_scope, st.a_state) as u(el, s, state)
             where u.s = scope_id and u.state = 'active' and u.el = any(upstream)) then
    return true;
  end if;
  return not st.is_new and exists (select 1 from bpm.activity_instance a
    where a.tenant_id = st.tenant_id and a.scope_id = inclusive_join__reachable.scope_id and a.state = 'active'
      and a.element_id = any(upstream) and not (a.id = any(st.e_id)));
end;
$$;
comment on function bpm_private.inclusive_join__reachable(bpm_private.run_state, uuid, text[]) is E'True while a live token sits on an element of an inclusive join''s upstream set (in the join''s scope instance).';
--! EndIncluded engine/join.sql
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
