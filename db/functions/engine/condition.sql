-- Conditional events (intermediate catch, boundary, event subprocess start):
-- a condition over the variables the event sees. An intermediate catch event
-- whose condition holds when the token arrives passes at once; otherwise it,
-- and every conditional boundary event and event subprocess start, waits
-- with an event subscription of kind conditional. The conditions of an
-- instance's conditional subscriptions are evaluated when they open and
-- after every engine call that changed the instance's variables (or a
-- subprocess's locals). Each is triggered like a message
-- (subscription__trigger) when its condition becomes true: when it holds as
-- the event opens, or holds where at the previous evaluation it did not
-- (BPMN: the condition must become false before a non-interrupting event
-- triggers again; event_subscription.condition_held remembers). A variable
-- the condition reads that is not set counts as not holding (FEEL's null),
-- not as an error. Conditional start events of a process are evaluated by
-- bpm.evaluate_conditions (api/events.sql).

-- Whether the condition of a conditional subscription holds over the
-- variables its event sees (its scope's locals over the instance's).
create or replace function bpm_private.condition__holds(sub bpm.event_subscription, variables jsonb, graph jsonb)
returns boolean
language plpgsql
volatile
set search_path = ''
as $$
declare
  v_node jsonb := graph -> 'nodes' -> sub.element_id;
  st bpm_private.run_state := bpm_private.run__begin(sub.tenant_id, sub.instance_id, variables, false, '{}');
begin
  if v_node ->> 'type' = 'startEvent' then
    -- an event subprocess start: its subscription sits on the scope instance
    st.cur_scope := nullif(sub.token_id, sub.instance_id);
    st := bpm_private.scope__load(st, st.cur_scope);
  else
    st := bpm_private.run__resume(st, v_node, sub.token_id);
  end if;
  return bpm_private.condition__test(v_node, case when st.cur_scope is null then st.variables else bpm_private.scope__variables(st, st.cur_scope, null) end);
end;
$$;
comment on function bpm_private.condition__holds(bpm.event_subscription, jsonb, jsonb) is E'Whether a conditional subscription''s condition holds over what its event sees.';

-- A conditional event's condition over variables; an unset variable makes it false.
create or replace function bpm_private.condition__test(node jsonb, variables jsonb)
returns boolean
language plpgsql
stable
set search_path = ''
as $$
begin
  return bpm_private.expression__test(node -> 'event' -> 'condition', variables, node ->> 'id');
exception when sqlstate 'BP302' then
  return false;
end;
$$;
comment on function bpm_private.condition__test(jsonb, jsonb) is E'Evaluates the condition of a conditional event (false when a variable it reads is not set; BP303 when it yields no boolean).';

-- Evaluates the conditional subscriptions of an active instance (the caller
-- holds the instance lock): first every condition, recording whether it
-- holds (one with camunda:variableName only when the call changed that
-- variable from before to after, by one of its variableEvents, or when it
-- was never evaluated; before null: changes unknown, every condition), then,
-- oldest first, triggers those that became true and still hold (a trigger
-- before it may have changed the variables; the evaluation it made then is
-- recorded too). Returns whether it triggered any. Triggered runs evaluate
-- again when they change variables; a chain of more than 100 triggers in
-- one transaction is conditions that keep re-triggering each other: BP313,
-- and the transaction rolls back.
create or replace function bpm_private.conditions__check(tenant_id text, instance_id uuid, before jsonb, after jsonb)
returns boolean
language plpgsql
volatile
set search_path = ''
as $$
declare
  v_sub bpm.event_subscription;
  v_instance bpm.process_instance;
  v_graph jsonb;
  v_changes jsonb;
  v_event jsonb;
  v_holds boolean;
  v_fire uuid[] := '{}';
  v_id uuid;
  v_count int;
begin
  -- (most instances have none: this one index probe is all)
  for v_sub in
    select * from bpm.event_subscription s
    where s.tenant_id = conditions__check.tenant_id and s.instance_id = conditions__check.instance_id and s.kind = 'conditional'
    order by s.created_at, s.id
  loop
    if v_graph is null then
      select * into v_instance from bpm.process_instance i where i.tenant_id = conditions__check.tenant_id and i.id = conditions__check.instance_id;
      if v_instance.state is distinct from 'active' then
        return false;
      end if;
      v_graph := bpm_private.graph__in_memory((select d.graph from bpm.process_definition d where d.tenant_id = v_instance.tenant_id and d.id = v_instance.definition_id));
      v_changes := case when before is not null then bpm_private.variables__changes(before, after) end;
    end if;
    v_event := v_graph -> 'nodes' -> v_sub.element_id -> 'event';
    continue when v_changes is not null and v_sub.condition_held is not null and v_event ? 'variableName'
      and (not v_changes ? (v_event ->> 'variableName')
           or (v_event ? 'variableEvents' and not (v_event -> 'variableEvents') ? (v_changes ->> (v_event ->> 'variableName'))));
    v_holds := bpm_private.condition__holds(v_sub, v_instance.variables, v_graph);
    if v_holds is distinct from v_sub.condition_held then
      -- (recorded also when it first evaluates false: the filters apply from then on)
      update bpm.event_subscription s set condition_held = v_holds where s.tenant_id = v_sub.tenant_id and s.id = v_sub.id;
      if v_holds then
        v_fire := v_fire || v_sub.id;
      end if;
    end if;
  end loop;
  foreach v_id in array v_fire loop
    -- still open, its instance still active, and not seen false since
    select * into v_sub from bpm.event_subscription s where s.tenant_id = conditions__check.tenant_id and s.id = v_id;
    continue when not found or not v_sub.condition_held;
    exit when (select i.state from bpm.process_instance i where i.tenant_id = v_sub.tenant_id and i.id = v_sub.instance_id) is distinct from 'active';
    v_count := coalesce(nullif(pg_catalog.current_setting('bpm.condition_triggers', true), '')::int, 0) + 1;
    if v_count > 100 then
      raise exception 'conditional event % of instance % triggered more than 100 times in one transaction: conditions keep re-triggering each other', v_sub.element_id, v_sub.instance_id
        using errcode = 'BP313';
    end if;
    perform pg_catalog.set_config('bpm.condition_triggers', v_count::text, true);
    perform bpm_private.subscription__trigger(v_sub, '{}', 'conditionFulfilled');
  end loop;
  return pg_catalog.cardinality(v_fire) > 0;
end;
$$;
comment on function bpm_private.conditions__check(text, uuid, jsonb, jsonb) is E'Evaluates an instance''s conditional event subscriptions (filtered by the variables that changed from before to after; before null: unknown) and triggers those whose condition became true; returns whether it triggered any (BP313 past 100 triggers in one transaction).';

-- What changed between two sets of variables: name -> create | update | delete.
create or replace function bpm_private.variables__changes(before jsonb, after jsonb)
returns jsonb
language sql
immutable
set search_path = ''
as $$
  select coalesce(pg_catalog.jsonb_object_agg(coalesce(a.k, b.k), case when b.v is null then 'create' when a.v is null then 'delete' else 'update' end), '{}')
  from pg_catalog.jsonb_each(before) b(k, v)
  full join pg_catalog.jsonb_each(after) a(k, v) on a.k = b.k
  where b.v is distinct from a.v;
$$;
comment on function bpm_private.variables__changes(jsonb, jsonb) is E'The variables that differ between two sets, as name -> create | update | delete.';
