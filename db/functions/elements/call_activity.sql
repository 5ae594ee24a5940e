-- Call activity: the token waits (token kind call, data {child}) while a
-- child instance of the called process runs. The child is started once the
-- caller's run is written (run__post: the caller's row must exist first);
-- when it completes, its variables are mapped back and the call activity is
-- left. A BPMN error or escalation the child does not catch is thrown at the
-- call activity. Cancelling the call activity cancels the child.

create or replace function bpm_private.call__enter(st bpm_private.run_state, graph jsonb, node jsonb, id uuid)
returns bpm_private.run_state
language plpgsql
volatile
set search_path = ''
as $$
declare
  v_el text := node ->> 'id';
  v_call jsonb := node -> 'call';
  v_key text := bpm_private.value__to_text(bpm_private.value__eval(v_call -> 'processId', st.variables, v_el));
  v_vars jsonb;
  v_bk text;
  v_pos int := pg_catalog.array_position(st.l_id, st.cur_scope);
begin
  if coalesce(v_key, '') = '' then
    raise exception 'call activity % has no called process id', v_el using errcode = 'BP311';
  end if;
  -- variables down: all visible ones and/or the in mappings
  v_vars := case when coalesce((v_call ->> 'inAll')::boolean, false) then st.variables else '{}'::jsonb end
    || bpm_private.io__map(v_call -> 'in', st.variables, v_el);
  if v_call -> 'businessKey' = '"parent"'::jsonb then
    v_bk := st.business_key;
  elsif v_call ? 'businessKey' then
    v_bk := bpm_private.value__to_text(bpm_private.value__eval(v_call -> 'businessKey', st.variables, v_el));
  end if;
  st := bpm_private.scope__add(st, id, v_el, 'call', '{}');
  if not (v_pos is not null and st.l_kind[v_pos] = 'body' and st.l_el[v_pos] = v_el) and bpm_private.node__has_subscriptions(graph, node) then
    st := bpm_private.boundary__arm(st, graph, node, id);
  end if;
  st.p_data := st.p_data || pg_catalog.jsonb_build_object('kind', 'call', 'element', v_el, 'token', id, 'key', v_key,
    'binding', coalesce(v_call ->> 'binding', 'latest'), 'version', v_call -> 'version', 'versionTag', v_call -> 'versionTag',
    'variables', v_vars, 'businessKey', v_bk);
  return st;
end;
$$;
comment on function bpm_private.call__enter(bpm_private.run_state, jsonb, jsonb, uuid) is E'A token enters a call activity: it waits while the called process runs (started after the run is written).';

-- The definition a call activity calls: latest version of the key, a given
-- version, the latest with a version tag, or the one deployed together with
-- the caller. BP311 when there is none.
create or replace function bpm_private.call__definition(tenant_id text, caller_definition_id uuid, action jsonb)
returns bpm.process_definition
language plpgsql
stable
set search_path = ''
as $$
declare
  v_def bpm.process_definition;
  v_binding text := action ->> 'binding';
begin
  select d.* into v_def from bpm.process_definition d
  where d.tenant_id = call__definition.tenant_id and d.key = action ->> 'key'
    and (v_binding <> 'version' or d.version = (action ->> 'version')::int)
    and (v_binding <> 'versionTag' or d.version_tag = action ->> 'versionTag')
    and (v_binding <> 'deployment' or d.deployment_id = (select c.deployment_id from bpm.process_definition c
                                                         where c.tenant_id = call__definition.tenant_id and c.id = caller_definition_id))
  order by d.version desc limit 1;
  if not found then
    raise exception 'call activity %: no process % is deployed in this tenant (binding %)', action ->> 'element', action ->> 'key',
      v_binding || coalesce(' ' || coalesce(action ->> 'version', action ->> 'versionTag'), '') using errcode = 'BP311';
  end if;
  return v_def;
end;
$$;
comment on function bpm_private.call__definition(text, uuid, jsonb) is E'Resolves the definition a call activity calls by its binding (BP311 if none).';

-- Starts the child instance of a call activity (run__post of the caller).
create or replace function bpm_private.call__start(tenant_id text, instance_id uuid, action jsonb)
returns void
language plpgsql
volatile
set search_path = ''
as $$
declare
  v_caller bpm.process_instance;
  v_depth int;
  v_child bpm.process_instance;
begin
  select * into v_caller from bpm.process_instance i where i.tenant_id = call__start.tenant_id and i.id = call__start.instance_id;
  if not exists (select 1 from bpm_private.token t where t.tenant_id = call__start.tenant_id and t.id = (action ->> 'token')::uuid and t.kind = 'call') then
    -- the call activity was cancelled within the run that entered it: nothing to call
    return;
  end if;
  with recursive chain(id, parent, depth) as (
    select v_caller.id, v_caller.parent_instance_id, 1
    union all
    select i.id, i.parent_instance_id, c.depth + 1 from bpm.process_instance i join chain c on i.tenant_id = call__start.tenant_id and i.id = c.parent
    where c.depth <= 32
  )
  select pg_catalog.max(c.depth) into v_depth from chain c;
  if v_depth >= 32 then
    raise exception 'call activity % of instance %: calls are nested more than 32 deep (a process calling itself without end?)', action ->> 'element', instance_id
      using errcode = 'BP312';
  end if;
  -- the call token is found by the child's first run (an error or escalation it throws at once)
  update bpm_private.token t set data = '{"starting": true}'
  where t.tenant_id = call__start.tenant_id and t.id = (action ->> 'token')::uuid;
  begin
    v_child := bpm_private.instance__start(bpm_private.call__definition(tenant_id, v_caller.definition_id, action),
      null, action -> 'variables', action ->> 'businessKey', null, null, instance_id);
  exception when statement_too_complex then
    -- (54001: PostgreSQL's stack ran out before the depth limit; the innermost call says so)
    raise exception 'call activity % of instance %: calls are nested too deep for the database''s stack (at depth %; a process calling itself without end?)',
      action ->> 'element', instance_id, v_depth using errcode = 'BP312';
  end;
  update bpm_private.token t set data = pg_catalog.jsonb_build_object('child', v_child.id)
  where t.tenant_id = call__start.tenant_id and t.id = (action ->> 'token')::uuid;
  if not found then
    -- the call activity was interrupted by what its child threw while starting: the child ends too
    select * into v_child from bpm.process_instance i where i.tenant_id = call__start.tenant_id and i.id = v_child.id for update;
    if v_child.state in ('active', 'suspended') then
      perform bpm_private.instance__cancel(v_child, 'its call activity was cancelled');
    end if;
    return;
  end if;
  -- re-read: a child that completed within its start (or whose own calls did)
  if (select i.state from bpm.process_instance i where i.tenant_id = call__start.tenant_id and i.id = v_child.id) = 'completed' then
    perform bpm_private.call__child_completed(tenant_id, v_child.id);
  end if;
end;
$$;
comment on function bpm_private.call__start(text, uuid, jsonb) is E'Starts the instance a call activity calls (BP312 beyond 32 nested calls) and links it to its caller.';

-- The caller of a called instance, locked, with its waiting call token.
create or replace function bpm_private.call__caller(tenant_id text, child_id uuid, out caller bpm.process_instance, out token bpm_private.token)
language plpgsql
volatile
set search_path = ''
as $$
begin
  caller := bpm_private.instance__lock(tenant_id,
    (select i.parent_instance_id from bpm.process_instance i where i.tenant_id = call__caller.tenant_id and i.id = child_id));
  -- (a child still starting is the one whose call token says so: calls start one at a time)
  select * into token from bpm_private.token t
  where t.tenant_id = call__caller.tenant_id and t.instance_id = caller.id and t.kind = 'call'
    and (t.data ->> 'child' = child_id::text or t.data ? 'starting');
end;
$$;
comment on function bpm_private.call__caller(text, uuid) is E'Locks the calling instance of a child and finds the call token waiting for it (null if gone).';

-- A called instance completed: its variables go up, the call activity is left.
create or replace function bpm_private.call__child_completed(tenant_id text, child_id uuid)
returns void
language plpgsql
volatile
set search_path = ''
as $$
declare
  v_child bpm.process_instance;
  v_found record := bpm_private.call__caller(tenant_id, child_id);
  v_graph jsonb;
  v_joins text[];
  v_node jsonb;
  v_call jsonb;
  st bpm_private.run_state;
begin
  -- gone (cancelled, interrupted): nothing to do
  if (v_found.token).id is null or (v_found.token).data ? 'failed' or (v_found.caller).state not in ('active', 'suspended') then
    return;
  end if;
  select * into v_child from bpm.process_instance i where i.tenant_id = call__child_completed.tenant_id and i.id = child_id;
  select bpm_private.graph__in_memory(d.graph), d.inclusive_joins into v_graph, v_joins from bpm.process_definition d
  where d.tenant_id = call__child_completed.tenant_id and d.id = (v_found.caller).definition_id;
  v_node := v_graph -> 'nodes' -> (v_found.token).element_id;
  v_call := v_node -> 'call';
  st := bpm_private.run__begin(tenant_id, (v_found.caller).id, (v_found.caller).variables, false, v_joins);
  st.business_key := (v_found.caller).business_key;
  st := bpm_private.run__resume(st, v_node, (v_found.token).id);
  delete from bpm_private.token t where t.tenant_id = call__child_completed.tenant_id and t.id = (v_found.token).id;
  st := bpm_private.subscriptions__drop(st, array[(v_found.token).id]);
  st := bpm_private.activity__end(st, array[(v_found.token).id], 'completed');
  st := bpm_private.scope__set_variables(st, st.cur_scope,
    case when coalesce((v_call ->> 'outAll')::boolean, false) then v_child.variables else '{}'::jsonb end
    || bpm_private.io__map(v_call -> 'out', v_child.variables, v_node ->> 'id'));
  st := bpm_private.node__complete(st, v_graph, v_node, (v_found.token).id);
  st := bpm_private.run__drain(st, v_graph);
  perform bpm_private.run__finish(st, v_found.caller);
end;
$$;
comment on function bpm_private.call__child_completed(text, uuid) is E'A called instance completed: its outputs are mapped into the caller and the call activity is left.';

-- A called instance threw an error or escalation it did not catch: it is
-- thrown at the call activity in the caller. An error nobody catches there
-- either raises an incident on the call activity.
create or replace function bpm_private.call__child_threw(tenant_id text, child_id uuid, action jsonb)
returns void
language plpgsql
volatile
set search_path = ''
as $$
declare
  v_found record := bpm_private.call__caller(tenant_id, child_id);
  v_graph jsonb;
  v_joins text[];
  v_caught boolean;
  v_res record;
  st bpm_private.run_state;
begin
  if (v_found.token).id is null or (v_found.caller).state <> 'active' or (v_found.token).data ? 'failed' then
    return;
  end if;
  select bpm_private.graph__in_memory(d.graph), d.inclusive_joins into v_graph, v_joins from bpm.process_definition d
  where d.tenant_id = call__child_threw.tenant_id and d.id = (v_found.caller).definition_id;
  st := bpm_private.run__begin(tenant_id, (v_found.caller).id, (v_found.caller).variables, false, v_joins);
  st.business_key := (v_found.caller).business_key;
  -- thrown from inside the call activity: its token is the innermost scope
  st := bpm_private.run__resume(st, v_graph -> 'nodes' -> (v_found.token).element_id, (v_found.token).id);
  st.l_id := st.l_id || (v_found.token).id;
  st.l_parent := st.l_parent || st.cur_scope;
  st.l_el := st.l_el || (v_found.token).element_id;
  st.l_kind := st.l_kind || 'call'::text;
  st.l_data := st.l_data || (v_found.token).data;
  st.l_state := st.l_state || 'stored'::text;
  st.cur_scope := (v_found.token).id;
  v_res := bpm_private.error__catch(st, v_graph, action ->> 'event', action ->> 'code', action ->> 'message');
    st := v_res.st;
    v_caught := v_res.caught;
  if not v_caught and action ->> 'event' = 'error' then
    -- the call activity waits with an incident; retry_incident throws it again
    update bpm_private.token t set data = t.data || pg_catalog.jsonb_build_object('failed', true, 'failed_with', action)
    where t.tenant_id = call__child_threw.tenant_id and t.id = (v_found.token).id;
    perform bpm_private.incident__raise(tenant_id, (v_found.caller).id, (v_found.token).element_id, 'unhandledBpmnError',
      pg_catalog.format('BPMN error %s thrown by element %s of called instance %s is not caught by any error boundary or event subprocess',
        coalesce(action ->> 'code', '(no code)'), action ->> 'element', child_id));
    return;
  end if;
  st := bpm_private.run__drain(st, v_graph);
  perform bpm_private.run__finish(st, v_found.caller);
end;
$$;
comment on function bpm_private.call__child_threw(text, uuid, jsonb) is E'Throws a called instance''s uncaught error or escalation at its call activity in the caller.';
