-- Asynchronous continuations (camunda:asyncBefore / asyncAfter): the token
-- waits (token kind asyncBefore: before executing the node, its activity row
-- already started; asyncAfter: after the node completed, before leaving it)
-- and a graphile-worker job (bpm_continue, job_key bpm-async:<token id>)
-- continues it in its own transaction. A continuation that keeps failing
-- becomes an incident failedJob on its last attempt.

create or replace function bpm_private.async__enqueue(tenant_id text, token_id uuid, node jsonb, variables jsonb)
returns void
language plpgsql
volatile
set search_path = ''
as $$
begin
  perform bpm_private.job__schedule('bpm_continue',
    pg_catalog.json_build_object('tenant_id', tenant_id, 'token_id', token_id),
    pg_catalog.now(), 'bpm-async:' || token_id::text,
    coalesce((node -> 'jobRetry' ->> 'retries')::int, 3) + 1,
    bpm_private.job__priority(bpm_private.node__job_priority(node, variables)));
end;
$$;
comment on function bpm_private.async__enqueue(text, uuid, jsonb, jsonb) is E'Schedules the job that continues an asynchronous token (retries from camunda:failedJobRetryTimeCycle, default 3; priority from camunda:jobPriority, an expression evaluated over variables).';

create or replace function bpm_private.async__wait(st bpm_private.run_state, node jsonb, kind text, via_flow text, token_id uuid)
returns bpm_private.run_state
language plpgsql
volatile
set search_path = ''
as $$
begin
  st := bpm_private.wait__add(st, token_id, node ->> 'id', kind, via_flow, null);
  perform bpm_private.async__enqueue(st.tenant_id, token_id, node, st.variables);
  return st;
end;
$$;
comment on function bpm_private.async__wait(bpm_private.run_state, jsonb, text, text, uuid) is E'Makes a token wait for its asynchronous continuation.';

create or replace function bpm.continue_async(token_id uuid, last_attempt boolean default true)
returns bpm.process_instance
language plpgsql
volatile
security definer
set search_path = ''
set plan_cache_mode = force_generic_plan
as $$
declare
  v_tenant text := bpm_private.require_context(array['bpm_admin', 'bpm_engine'], 'continue an asynchronous token');
  v_instance_id uuid;
  v_instance bpm.process_instance;
  v_token bpm_private.token;
  v_locked record;
  v_graph jsonb;
  st bpm_private.run_state;
begin
  select t.instance_id into v_instance_id from bpm_private.token t
  where t.tenant_id = v_tenant and t.id = token_id and t.kind in ('asyncBefore', 'asyncAfter');
  if not found then
    return null;
  end if;
  v_instance := bpm_private.instance__lock(v_tenant, v_instance_id);
  select * into v_token from bpm_private.token t where t.tenant_id = v_tenant and t.id = token_id;
  -- gone (continued already, cancelled) or waiting for activation: nothing to do
  if not found or v_instance.state <> 'active'
     or exists (select 1 from bpm.incident i where i.tenant_id = v_tenant and i.instance_id = v_instance_id
                and i.element_id = v_token.element_id and i.incident_type = 'failedJob' and (i.resolved_at is null) is true) then
    return null;
  end if;
  begin
    select d.graph, d.inclusive_joins into v_locked from bpm.process_definition d
    where d.tenant_id = v_tenant and d.id = v_instance.definition_id;
    v_graph := bpm_private.graph__in_memory(v_locked.graph);
    delete from bpm_private.token t where t.tenant_id = v_tenant and t.id = token_id;
    st := bpm_private.run__begin(v_tenant, v_instance_id, v_instance.variables, false, v_locked.inclusive_joins);
    st.business_key := v_instance.business_key;
    st := bpm_private.run__resume(st, v_graph -> 'nodes' -> v_token.element_id, v_token.id);
    if v_token.kind = 'asyncBefore' then
      st.resume_node := v_token.element_id;
      st.resume_id := v_token.id;
      st := bpm_private.run__push(st, v_token.element_id, v_token.via_flow);
    else
      st := bpm_private.node__leave_now(st, v_graph, v_graph -> 'nodes' -> v_token.element_id);
    end if;
    st := bpm_private.run__drain(st, v_graph);
    return bpm_private.run__finish(st, v_instance);
  exception when others then
    if not last_attempt or bpm_private.error__is_transient(sqlstate) then
      raise;
    end if;
    perform bpm_private.incident__raise(v_tenant, v_instance_id, v_token.element_id, 'failedJob',
      pg_catalog.format('asynchronous continuation %s of element %s failed: %s (SQLSTATE %s)', v_token.kind, v_token.element_id, sqlerrm, sqlstate));
    return v_instance;
  end;
end;
$$;
comment on function bpm.continue_async(uuid, boolean) is E'Runs the asynchronous continuation of a token (called by the worker''s bpm_continue job; idempotent: a token already continued or cancelled, or of a suspended instance, is left alone and null returned). A failure is raised so the job is retried, except on the last attempt, which records an incident failedJob (retry_incident schedules it again). Roles: bpm_admin, bpm_engine.';

create or replace function bpm_private.instance__node(tenant_id text, instance_id uuid, element_id text)
returns jsonb
language plpgsql
stable
set search_path = ''
as $$
begin
  return (select d.graph -> 'nodes' -> instance__node.element_id
          from bpm.process_instance i join bpm.process_definition d on d.tenant_id = i.tenant_id and d.id = i.definition_id
          where i.tenant_id = instance__node.tenant_id and i.id = instance__node.instance_id);
end;
$$;
comment on function bpm_private.instance__node(text, uuid, text) is E'An element of an instance''s process graph.';

-- Errors a job should be retried for rather than recorded as an incident:
-- serialization failures and deadlocks (40), resources (53), operator
-- intervention such as a cancelled statement (57), system errors (58).
create or replace function bpm_private.error__is_transient(sqlstate text)
returns boolean
language plpgsql
immutable
set search_path = ''
as $$
begin
  return pg_catalog.left(sqlstate, 2) in ('40', '53', '57', '58');
end;
$$;
comment on function bpm_private.error__is_transient(text) is E'Whether an SQLSTATE is transient (the job is retried) rather than a failure of the model (an incident).';
