--! Previous: sha1:b8e7bd2971d8f7a4c499b12c2b0c0a11122256cd
--! Hash: sha1:f0d548a14f2f4a91a911c00309bd12e52be2bf6f
--! Message: Migration keeps loops

-- Instance migration keeps a looped activity's loop (multi-instance ordering, standard loop).
--! Included instance/migrate.sql
-- Instance migration (admin): running instances move to another version of
-- their process (same key). Every element something waits at (active
-- activity rows, open user and external tasks, tokens, event subscriptions)
-- is mapped to an element of the target graph: the explicit mapping, else
-- the same id when the target has it. A mapping that would lose a token, or
-- put it on an element of another wait kind or in another scope, is refused
-- before anything changes. History keeps its old element ids; variables,
-- task ids, assignees, subscriptions (names, due times) and jobs stay.

-- What a token waiting at a node waits for; a node may only become a node
-- of the same kind. Receive tasks and catch events wait for their event
-- kind, boundary events likewise; everything else keeps its type (joins
-- stay joins of the same gateway type, subprocesses subprocesses, call
-- activities call activities, ad-hoc subprocesses ad-hoc ones). A
-- multi-instance activity stays one of the same ordering, a standard loop a
-- standard loop (their bodies' state has that shape).
create or replace function bpm_private.node__wait_kind(node jsonb)
returns text
language plpgsql
immutable
set search_path = ''
as $$
declare
  v_type text := node ->> 'type';
begin
  return case
    when v_type = 'userTask' then 'userTask'
    when v_type = 'serviceTask' or coalesce(node ->> 'topic', '') <> '' then 'external task'
    when v_type in ('receiveTask', 'intermediateCatchEvent') then coalesce(node -> 'event' ->> 'kind', 'none') || ' catch event'
    when v_type = 'boundaryEvent' then coalesce(node -> 'event' ->> 'kind', 'none') || ' boundary event'
    when node ? 'adHoc' then 'adHocSubProcess'
    else v_type
  end || case
    when node -> 'loop' ? 'standard' then ', standard loop'
    when (node -> 'loop' ->> 'sequential')::boolean then ', sequential multi-instance'
    when node ? 'loop' then ', parallel multi-instance'
    else ''
  end;
end;
$$;
comment on function bpm_private.node__wait_kind(jsonb) is E'What a token waiting at a node waits for (userTask, external task, <event> catch event, <event> boundary event, else the node type; with ", parallel multi-instance", ", sequential multi-instance" or ", standard loop" for a looped activity); migration maps a node only to one of the same kind.';

-- The element mapping of a migration, validated per source definition and
-- active element, returned once per source element id (the target of an id
-- is the same whatever version it comes from) (BP410 a token would be lost, BP112 the
-- mapping names an element the target lacks, BP411 another wait kind, another
-- scope, a boundary event on another activity, a join token arriving over a
-- flow the target join does not have). Errors name the first instance (by id).
create or replace function bpm_private.migration__plan(tenant_id text, ids uuid[], defs uuid[], target bpm.process_definition, mapping jsonb,
  out src text[], out tgt text[], out typ text[], out topic text[], out interrupting boolean[])
language plpgsql
stable
set search_path = ''
as $$
declare
  v_graph jsonb := bpm_private.graph__in_memory(target.graph) -> 'nodes';
  v_sources jsonb;
  v_src jsonb;
  v_tgt jsonb;
  v_tgt_id text;
  v_mapped text;
  v_where text := pg_catalog.format('%s version %s', target.key, target.version);
  r record;
begin
  src := '{}'; tgt := '{}'; typ := '{}'; topic := '{}'; interrupting := '{}';
  select pg_catalog.jsonb_object_agg(d.id::text, d.graph -> 'nodes') into v_sources
  from bpm.process_definition d where d.tenant_id = migration__plan.tenant_id and d.id = any(defs);
  for r in
    with x as (select * from unnest(ids, defs) as x(id, def)),
    active as (
      select a.instance_id, a.element_id from bpm.activity_instance a
      where a.tenant_id = migration__plan.tenant_id and a.instance_id = any(ids) and a.state = 'active'
      union select u.instance_id, u.element_id from bpm.user_task u
      where u.tenant_id = migration__plan.tenant_id and u.instance_id = any(ids) and (u.state = 'open') is true
      union select e.instance_id, e.element_id from bpm.external_task e
      where e.tenant_id = migration__plan.tenant_id and e.instance_id = any(ids) and (e.state = 'open') is true
      union select t.instance_id, t.element_id from bpm_private.token t
      where t.tenant_id = migration__plan.tenant_id and t.instance_id = any(ids)
      union select s.instance_id, s.element_id from bpm.event_subscription s
      where s.tenant_id = migration__plan.tenant_id and s.instance_id = any(ids)
    )
    select x.def, a.element_id, (array_agg(x.id order by x.id))[1] as instance_id
    from active a join x on x.id = a.instance_id
    group by x.def, a.element_id
    order by 3, 2
  loop
    v_src := v_sources -> r.def::text -> r.element_id;
    v_tgt_id := coalesce(mapping ->> r.element_id, case when v_graph ? r.element_id then r.element_id end);
    if v_tgt_id is null then
      raise exception 'cannot migrate process instance %: element % has no counterpart in % and the mapping names none, so its token would be lost',
        r.instance_id, r.element_id, v_where using errcode = 'BP410';
    end if;
    v_tgt := v_graph -> v_tgt_id;
    if v_tgt is null then
      raise exception 'cannot migrate process instance %: element % is mapped to %, which is not an element of %',
        r.instance_id, r.element_id, v_tgt_id, v_where using errcode = 'BP112';
    end if;
    if bpm_private.node__wait_kind(v_src) is distinct from bpm_private.node__wait_kind(v_tgt) then
      raise exception 'cannot migrate process instance %: element % (%) cannot become % (%) of %', r.instance_id, r.element_id,
        coalesce(bpm_private.node__wait_kind(v_src), 'unknown'), v_tgt_id, bpm_private.node__wait_kind(v_tgt), v_where using errcode = 'BP411';
    end if;
    v_mapped := coalesce(mapping ->> (v_src ->> 'scope'), v_src ->> 'scope');
    if v_mapped is distinct from v_tgt ->> 'scope' then
      raise exception 'cannot migrate process instance %: element % is inside %, but % of % is inside %', r.instance_id, r.element_id,
        coalesce(v_src ->> 'scope', 'the process'), v_tgt_id, v_where, coalesce(v_tgt ->> 'scope', 'the process') using errcode = 'BP411';
    end if;
    v_mapped := coalesce(mapping ->> (v_src ->> 'attachedTo'), v_src ->> 'attachedTo');
    if v_mapped is distinct from v_tgt ->> 'attachedTo' then
      raise exception 'cannot migrate process instance %: boundary event % of % would become % attached to % in %', r.instance_id, r.element_id,
        v_src ->> 'attachedTo', v_tgt_id, coalesce(v_tgt ->> 'attachedTo', 'nothing'), v_where using errcode = 'BP411';
    end if;
    continue when r.element_id = any(src);
    src := src || r.element_id; tgt := tgt || v_tgt_id; typ := typ || (v_tgt ->> 'type');
    -- (a topic expression is not evaluated again: the task keeps its topic)
    topic := topic || case when v_tgt ? 'topicExpr' then null else v_tgt ->> 'topic' end; interrupting := interrupting || coalesce((v_tgt ->> 'cancelActivity')::boolean, true);
  end loop;
  -- join tokens count per incoming flow: the flow must come into the target join too
  select t.instance_id, t.element_id, t.via_flow, m.tgt into r
  from bpm_private.token t
  join unnest(migration__plan.src, migration__plan.tgt) as m(src, tgt) on m.src = t.element_id
  where t.tenant_id = migration__plan.tenant_id and t.instance_id = any(ids) and t.kind = 'join'
    and not coalesce(v_graph -> m.tgt -> 'in' ? t.via_flow, false)
  order by t.instance_id, t.element_id
  limit 1;
  if found then
    raise exception 'cannot migrate process instance %: a token waits at join % having arrived over flow %, which does not enter % in %',
      r.instance_id, r.element_id, coalesce(r.via_flow, '(none)'), r.tgt, v_where using errcode = 'BP411';
  end if;
end;
$$;
comment on function bpm_private.migration__plan(text, uuid[], uuid[], bpm.process_definition, jsonb) is E'Validates a migration''s element mapping for the locked instances (BP410, BP411, BP112) and returns it per active source element id.';

-- Applies a validated plan to every instance at once: one statement per
-- table (only active rows: history keeps its old element ids), then one
-- instanceMigrated event per instance.
create or replace function bpm_private.migration__apply(tenant_id text, ids uuid[], target_id uuid,
  src text[], tgt text[], typ text[], topic text[], interrupting boolean[])
returns int
language plpgsql
volatile
set search_path = ''
as $$
declare
  v_count int;
  v_base bigint;
begin
  -- each table's rows of the instances (by its instance index) joined to the
  -- few mapped elements: a plan that stays linear in the number of instances
  with m as (
    select * from unnest(migration__apply.src, migration__apply.tgt, migration__apply.typ, migration__apply.topic,
      migration__apply.interrupting) as u(src, tgt, typ, topic, interrupting)
  ), activities as (
    update bpm.activity_instance a set element_id = m.tgt, element_type = m.typ
    from m where a.tenant_id = migration__apply.tenant_id and a.instance_id = any(ids) and a.element_id = m.src and a.state = 'active'
    returning 1
  ), user_tasks as (
    update bpm.user_task t set element_id = m.tgt
    from m where t.tenant_id = migration__apply.tenant_id and t.instance_id = any(ids) and t.element_id = m.src and (t.state = 'open') is true
    returning 1
  ), external_tasks as (
    update bpm.external_task e set element_id = m.tgt, topic = coalesce(m.topic, e.topic)
    from m where e.tenant_id = migration__apply.tenant_id and e.instance_id = any(ids) and e.element_id = m.src and (e.state = 'open') is true
    returning 1
  ), tokens as (
    update bpm_private.token t set element_id = m.tgt
    from m where t.tenant_id = migration__apply.tenant_id and t.instance_id = any(ids) and t.element_id = m.src
    returning 1
  ), subscriptions as (
    -- names, correlation keys and due times stay; only the catching element changes
    update bpm.event_subscription s set element_id = m.tgt, interrupting = m.interrupting
    from m where s.tenant_id = migration__apply.tenant_id and s.instance_id = any(ids) and s.element_id = m.src
    returning 1
  ), incidents as (
    update bpm.incident i set element_id = m.tgt
    from m where i.tenant_id = migration__apply.tenant_id and i.instance_id = any(ids) and i.element_id = m.src and i.resolved_at is null
    returning 1
  ), instances as (
    update bpm.process_instance i set definition_id = target_id
    where i.tenant_id = migration__apply.tenant_id and i.id = any(ids)
    returning 1
  )
  -- (data-modifying CTEs always run to completion, referenced or not)
  select pg_catalog.count(*) into v_count from instances;
  v_base := bpm_private.event__next_ids(pg_catalog.cardinality(ids));
  insert into bpm.event (tenant_id, id, instance_id, kind, subject_id, element_id)
  select migration__apply.tenant_id, v_base + x.ord, x.id, 'instanceMigrated', x.id, null
  from unnest(ids) with ordinality as x(id, ord);
  perform bpm_private.event__notify(tenant_id, v_base + pg_catalog.cardinality(ids));
  return v_count;
end;
$$;
comment on function bpm_private.migration__apply(text, uuid[], uuid, text[], text[], text[], text[], boolean[]) is E'Moves locked instances to the target definition with a validated plan (set-based) and records instanceMigrated per instance.';

-- Events the target adds are armed as if their host had just been entered:
-- message, signal and timer boundary events on activities that already wait,
-- and event subprocesses of the process or of running subprocess instances
-- (not of a scope where an interrupting event subprocess runs: it closed the
-- others). Their spec is evaluated over what the host sees (instance
-- variables and scope locals) and timers are scheduled. What was subscribed
-- already keeps its (mapped) subscription.
create or replace function bpm_private.migration__arm_added_events(tenant_id text, ids uuid[], target bpm.process_definition)
returns void
language plpgsql
volatile
set search_path = ''
as $$
declare
  v_graph jsonb := bpm_private.graph__in_memory(target.graph);
  st bpm_private.run_state;
  r record;
begin
  for r in
    with hosts as (
      -- activities with boundary events (seen from the activity's scope)
      select a.instance_id, a.id as host_id, a.element_id, a.scope_id as var_scope, a.id as var_token, false as esp
      from bpm.activity_instance a
      where a.tenant_id = migration__arm_added_events.tenant_id and a.instance_id = any(ids) and a.state = 'active'
        and v_graph -> 'nodes' -> a.element_id ? 'boundary'
      union all
      -- running subprocess instances with event subprocesses (seen from inside)
      select a.instance_id, a.id, a.element_id, a.id, null, true
      from bpm.activity_instance a
      where a.tenant_id = migration__arm_added_events.tenant_id and a.instance_id = any(ids) and a.state = 'active'
        and v_graph -> 'nodes' -> a.element_id ? 'eventSubprocesses'
      union all
      -- the process level
      select u.id, u.id, null, null, null, true
      from unnest(ids) as u(id) where v_graph ? 'eventSubprocesses'
    )
    select h.*, i.variables, i.business_key,
      coalesce((select array_agg(s.element_id) from bpm.event_subscription s
                where s.tenant_id = migration__arm_added_events.tenant_id and s.instance_id = h.instance_id and s.token_id = h.host_id), '{}') as armed
    from hosts h join bpm.process_instance i on i.tenant_id = migration__arm_added_events.tenant_id and i.id = h.instance_id
    where not (h.esp and exists (
      select 1 from bpm.activity_instance e
      where e.tenant_id = migration__arm_added_events.tenant_id and e.instance_id = h.instance_id and e.state = 'active'
        and e.scope_id is not distinct from case when h.host_id = h.instance_id then null else h.host_id end
        and coalesce((v_graph -> 'nodes' -> e.element_id ->> 'triggeredByEvent')::boolean, false)
        and coalesce((v_graph -> 'nodes' -> (v_graph -> 'nodes' -> e.element_id ->> 'start') ->> 'interrupting')::boolean, true)))
    order by h.instance_id, h.host_id
  loop
    st := bpm_private.run__begin(tenant_id, r.instance_id, r.variables, false, target.inclusive_joins);
    st.business_key := r.business_key;
    if r.var_scope is not null then
      st := bpm_private.scope__load(st, r.var_scope);
      st.variables := bpm_private.scope__variables(st, r.var_scope, r.var_token);
    end if;
    -- armed as on entering the host ...
    if not r.esp then
      st := bpm_private.boundary__arm(st, v_graph, v_graph -> 'nodes' -> r.element_id, r.host_id);
    elsif r.element_id is null then
      st := bpm_private.event_subprocess__arm(st, v_graph, v_graph -> 'eventSubprocesses', null);
    else
      st := bpm_private.event_subprocess__arm(st, v_graph, v_graph -> 'nodes' -> r.element_id -> 'eventSubprocesses', r.host_id);
    end if;
    -- ... but for what was subscribed already
    select coalesce(array_agg(u.token order by u.ord), '{}'), coalesce(array_agg(u.spec order by u.ord), '{}') into st.s_token, st.s_data
    from unnest(st.s_token, st.s_data) with ordinality as u(token, spec, ord)
    where not (u.spec ->> 'element' = any(r.armed));
    if pg_catalog.cardinality(st.s_token) > 0 then
      perform bpm_private.run__flush_subscriptions(st);
    end if;
  end loop;
end;
$$;
comment on function bpm_private.migration__arm_added_events(text, uuid[], bpm.process_definition) is E'Arms the message, signal, timer and conditional boundary events and event subprocesses a migration''s target adds to what already runs.';

create or replace function bpm.migrate_process_instances(instance_ids uuid[], target_definition_id uuid, element_mapping jsonb default '{}')
returns int
language plpgsql
volatile
security definer
set search_path = ''
set plan_cache_mode = force_generic_plan
as $$
declare
  v_tenant text := bpm_private.require_context(array['bpm_admin'], 'migrate process instances');
  v_mapping jsonb := coalesce(element_mapping, '{}');
  v_target bpm.process_definition;
  v_ids uuid[];
  v_defs uuid[];
  v_plan record;
  v_count int;
  r record;
begin
  -- ===== GUARD the arguments
  if instance_ids is null or pg_catalog.cardinality(instance_ids) = 0 or pg_catalog.array_position(instance_ids, null) is not null then
    raise exception 'invalid argument: instance_ids must list at least one process instance id (and no null)' using errcode = 'BP401';
  end if;
  if pg_catalog.jsonb_typeof(v_mapping) <> 'object'
     or exists (select 1 from pg_catalog.jsonb_each(v_mapping) e where pg_catalog.jsonb_typeof(e.value) <> 'string') then
    raise exception 'invalid argument: element_mapping must be a JSON object of source element id to target element id (strings)' using errcode = 'BP401';
  end if;
  select * into v_target from bpm.process_definition d where d.tenant_id = v_tenant and d.id = target_definition_id;
  if not found then
    raise exception 'process definition % not found', target_definition_id using errcode = 'BP110';
  end if;
  -- ===== LOCK every instance, in id order, after the roots of their call trees
  -- (the engine's lock order; concurrent migrations cannot deadlock)
  perform 1 from bpm.process_instance root
  where root.tenant_id = v_tenant and root.root_instance_id is null
    and (root.id = any(instance_ids)
         or root.id in (select c.root_instance_id from bpm.process_instance c where c.tenant_id = v_tenant and c.id = any(instance_ids)))
  order by root.id for update;
  select coalesce(array_agg(l.id order by l.id), '{}'), coalesce(array_agg(l.definition_id order by l.id), '{}') into v_ids, v_defs
  from (select i.id, i.definition_id from bpm.process_instance i
        where i.tenant_id = v_tenant and i.id = any(instance_ids)
        order by i.id for update) l;
  select u.id into r from unnest(instance_ids) as u(id) where not (u.id = any(v_ids)) order by u.id limit 1;
  if found then
    raise exception 'process instance % not found', r.id using errcode = 'BP102';
  end if;
  -- ===== GUARD each instance: running, and a version of the target's key
  select i.id, i.state, d.key, d.version into r
  from bpm.process_instance i join bpm.process_definition d on d.tenant_id = i.tenant_id and d.id = i.definition_id
  where i.tenant_id = v_tenant and i.id = any(v_ids) and (i.state not in ('active', 'suspended') or d.key <> v_target.key)
  order by i.id limit 1;
  if found and r.state not in ('active', 'suspended') then
    raise exception 'process instance % is % and cannot be migrated', r.id, r.state using errcode = 'BP201';
  elsif found then
    raise exception 'process instance % runs process % (version %), not %: it cannot be migrated to % version %',
      r.id, r.key, r.version, v_target.key, v_target.key, v_target.version using errcode = 'BP412';
  end if;
  -- ===== MIGRATE: validate the whole mapping first, then move everything at once
  v_plan := bpm_private.migration__plan(v_tenant, v_ids, v_defs, v_target, v_mapping);
  v_count := bpm_private.migration__apply(v_tenant, v_ids, v_target.id, v_plan.src, v_plan.tgt, v_plan.typ, v_plan.topic, v_plan.interrupting);
  perform bpm_private.migration__arm_added_events(v_tenant, v_ids, v_target);
  if v_target.graph ? 'conditionals' then
    -- conditional events the target adds, evaluated as they open
    perform bpm_private.conditions__check(v_tenant, u.id, null, null) from unnest(v_ids) as u(id);
  end if;
  return v_count;
end;
$$;
comment on function bpm.migrate_process_instances(uuid[], uuid, jsonb) is E'Migrates running (active or suspended) instances to another version of their process (same key), all or none, and returns how many were migrated. element_mapping maps source element ids to target element ids; an element missing from it keeps its id, which the target must have. Every element something waits at (tasks, tokens, event subscriptions) must map to an element of the same kind (user task, external task, the same kind of catch or boundary event, the same gateway type, subprocess, call activity) in the mapped scope. Tasks keep their ids and assignees (external tasks take the target''s topic), subscriptions their names and due times, the instance its variables; history keeps the old element ids; each instance records instanceMigrated. Message, signal, timer and conditional boundary events and event subprocesses the target adds to what already runs are armed (conditions evaluated at once). Errors: BP102 an instance not found, BP110 target not found, BP201 an instance ended, BP412 another process key, BP410 a token would be lost, BP411 incompatible element, BP112 mapped to an unknown element, BP401 malformed arguments. Roles: bpm_admin.';
--! EndIncluded instance/migrate.sql
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
