create or replace function bpm.fetch_and_lock(topic text, worker_id text, max_tasks int default 1, lock_duration interval default '5 minutes')
returns setof bpm.external_task
language plpgsql
volatile
security definer
set search_path = ''
set plan_cache_mode = force_generic_plan
as $$
declare
  v_tenant text := bpm_private.require_context(array['bpm_admin', 'bpm_engine'], 'fetch external tasks');
begin
  if coalesce(worker_id, '') = '' then
    raise exception 'invalid argument: worker_id is required' using errcode = 'BP401';
  end if;
  if max_tasks is null or max_tasks < 1 or max_tasks > 1000 then
    raise exception 'invalid argument: max_tasks must be between 1 and 1000, got %', max_tasks using errcode = 'BP401';
  end if;
  if lock_duration is null or lock_duration <= interval '0' then
    raise exception 'invalid argument: lock_duration must be positive' using errcode = 'BP401';
  end if;
  -- highest priority first, then oldest available (picked and returned in that order); tasks locked
  -- by a concurrent fetch are skipped
  return query
  with picked as (
    select e.id, e.instance_id
    from bpm.external_task e
    where e.tenant_id = v_tenant and e.topic = fetch_and_lock.topic and e.state = 'open'
      and e.available_at <= pg_catalog.now()
      and (e.retries is null or e.retries > 0)
      and (e.locked_until is null or e.locked_until < pg_catalog.now())
      -- a primary-key lookup per candidate (an EXISTS may be planned as a
      -- scan of the tenant's instances per task before the first ANALYZE)
      and (select i.state from bpm.process_instance i where i.tenant_id = v_tenant and i.id = e.instance_id) = 'active'
    -- (the order of external_task_fetch_priority_idx: the scan stops after max_tasks
    -- fetchable ones, however long the queue)
    order by e.priority desc, e.available_at, e.created_at, e.id
    limit max_tasks
    for update of e skip locked
  ), locked as (
    update bpm.external_task e
    set worker_id = fetch_and_lock.worker_id,
      locked_until = pg_catalog.now() + lock_duration,
      variables = (select i.variables from bpm.process_instance i where i.tenant_id = v_tenant and i.id = p.instance_id)
        || coalesce(e.local_variables, '{}')
    from picked p
    where e.tenant_id = v_tenant and e.id = p.id
    returning e.*
  )
  select l.* from locked l order by l.priority desc, l.available_at, l.created_at, l.id;
end;
$$;
comment on function bpm.fetch_and_lock(text, text, int, interval) is E'Locks up to max_tasks open external tasks of a topic in the caller''s tenant for a worker (highest priority first, then oldest; FOR UPDATE SKIP LOCKED so concurrent workers never get the same task) and returns them with the variables each one sees: the instance variables, overlaid by its local_variables (scope locals, loop variables, input mappings). Skips suspended instances, tasks in back-off and tasks with an open incident. Roles: bpm_admin, bpm_engine.';

-- Locks the external task's instance and checks the task is open and locked
-- by this worker. Raises BP104, BP203, BP205, and (when must_be_active) BP202/BP201.
create or replace function bpm_private.external_task__lock(tenant_id text, task_id uuid, worker_id text, action text, out task bpm.external_task, out instance bpm.process_instance)
language plpgsql
volatile
set search_path = ''
as $$
begin
  instance := bpm_private.instance__lock_tree(tenant_id,
    (select e.instance_id from bpm.external_task e where e.tenant_id = external_task__lock.tenant_id and e.id = task_id));
  if instance.id is null then
    raise exception 'external task % not found', task_id using errcode = 'BP104';
  end if;
  -- read after the lock: sees what a concurrent call on the instance committed
  select * into task from bpm.external_task e where e.tenant_id = external_task__lock.tenant_id and e.id = task_id;
  if task.state <> 'open' then
    raise exception 'external task % is % and cannot %', task_id, task.state, action using errcode = 'BP203';
  end if;
  if task.worker_id is distinct from external_task__lock.worker_id then
    raise exception 'external task % is not locked by worker % (locked by %)', task_id, worker_id, coalesce(task.worker_id, 'nobody')
      using errcode = 'BP205';
  end if;
end;
$$;
comment on function bpm_private.external_task__lock(text, uuid, text, text) is E'Locks the instance and checks an external task is open and held by the worker.';

-- camunda:errorEventDefinition (compiler: a node's errorEvents): when a
-- worker completes or fails an external task, the first entry whose
-- condition holds over what the task sees, the variables the worker sends and
-- `externalTask` (id, activityId, processInstanceId, topicName, workerId,
-- errorMessage, errorDetails, retries, priority: of `task`, which a failure
-- passes with its message and details) names the error thrown at the task
-- instead. Null: none holds. A condition that cannot be evaluated (an unset
-- variable, not a boolean) fails a completion (BP302/BP303) but counts as
-- false for a failure, which is recorded whatever the model says.
drop function if exists bpm_private.external_task__error_event(bpm.external_task, bpm.process_instance, jsonb, jsonb, boolean, text);
create or replace function bpm_private.external_task__error_event(task bpm.external_task, instance bpm.process_instance, node jsonb, variables jsonb, failing boolean)
returns text
language plpgsql
stable
set search_path = ''
as $$
declare
  v_vars jsonb;
  v_event jsonb;
  v_holds boolean;
begin
  if node -> 'errorEvents' is null then
    return null;
  end if;
  v_vars := instance.variables || coalesce(task.local_variables, '{}') || variables
    || pg_catalog.jsonb_build_object('externalTask', pg_catalog.jsonb_build_object(
      'id', task.id, 'activityId', task.element_id, 'processInstanceId', task.instance_id, 'topicName', task.topic,
      'workerId', task.worker_id, 'errorMessage', task.error_message, 'errorDetails', task.error_details, 'retries', task.retries,
      'priority', task.priority));
  for v_event in select e from pg_catalog.jsonb_array_elements(node -> 'errorEvents') e loop
    continue when pg_catalog.jsonb_typeof(v_event -> 'condition') is distinct from 'object';
    if not failing then
      v_holds := bpm_private.expression__test(v_event -> 'condition', v_vars, task.element_id);
    else
      -- a failure is recorded even when a condition cannot be evaluated (as Camunda 7 does)
      begin
        v_holds := bpm_private.expression__test(v_event -> 'condition', v_vars, task.element_id);
      exception when sqlstate 'BP302' or sqlstate 'BP303' then
        v_holds := false;
      end;
    end if;
    if v_holds then
      return v_event ->> 'code';
    end if;
  end loop;
  return null;
end;
$$;
comment on function bpm_private.external_task__error_event(bpm.external_task, bpm.process_instance, jsonb, jsonb, boolean) is E'The error code of the first camunda:errorEventDefinition of an external task''s node whose condition holds (over the task''s variables, the worker''s and externalTask), or null.';

create or replace function bpm.complete_external_task(task_id uuid, worker_id text, variables jsonb default '{}')
returns bpm.external_task
language plpgsql
volatile
security definer
set search_path = ''
set plan_cache_mode = force_generic_plan
as $$
declare
  v_tenant text := bpm_private.require_context(array['bpm_admin', 'bpm_engine'], 'complete an external task');
  v_variables jsonb := bpm_private.require_object(variables, 'variables');
  v_task bpm.external_task;
  v_instance bpm.process_instance;
  v_locked record;
  v_code text;
begin
  -- ===== LOCK the instance (loading its graph), then close the task if every rule holds
  -- (a called instance locks the root of its call tree first, see complete_task)
  select i as instance, d.graph, d.inclusive_joins into v_locked
  from bpm.process_instance i
  join bpm.process_definition d on d.tenant_id = i.tenant_id and d.id = i.definition_id
  where i.tenant_id = v_tenant
    and i.id = (select e.instance_id from bpm.external_task e where e.tenant_id = v_tenant and e.id = task_id)
    and i.root_instance_id is null
  for update of i;
  if not found then
    select i as instance, d.graph, d.inclusive_joins into v_locked
    from bpm_private.instance__lock_tree(v_tenant, (select e.instance_id from bpm.external_task e where e.tenant_id = v_tenant and e.id = task_id)) i
    join bpm.process_definition d on d.tenant_id = i.tenant_id and d.id = i.definition_id;
  end if;
  v_instance := v_locked.instance;
  if v_locked.graph ? 'taskErrorEvents' and v_instance.state = 'active' then
    -- camunda:errorEventDefinition: a condition that holds throws its error
    -- instead (a task not open or not this worker's: the guard below says why)
    select * into v_task from bpm.external_task e
    where e.tenant_id = v_tenant and e.id = task_id and (e.state = 'open') is true and e.worker_id = complete_external_task.worker_id;
    if found then
      v_code := bpm_private.external_task__error_event(v_task, v_instance, v_locked.graph -> 'nodes' -> v_task.element_id, v_variables, false);
      if v_code is not null then
        return bpm.throw_bpmn_error(task_id, worker_id, v_code, v_variables);
      end if;
    end if;
  end if;
  update bpm.external_task e
  set state = 'completed', ended_at = pg_catalog.now(), locked_until = null
  where e.tenant_id = v_tenant and e.id = task_id and (e.state = 'open') is true and e.worker_id = complete_external_task.worker_id
    and v_instance.state = 'active'
  returning * into v_task;
  if not found then
    -- ===== GUARD: say precisely why (BP104, BP203, BP205, BP202/BP201)
    perform bpm_private.external_task__lock(v_tenant, task_id, worker_id, 'complete it');
    perform bpm_private.instance__require_active(v_instance, 'complete external task ' || task_id);
  end if;
  -- ===== LEAVE the task
  perform bpm_private.token__move(v_instance, v_locked.graph, v_locked.inclusive_joins, v_task.id, v_task.element_id, null, v_variables, 'externalTaskCompleted');
  return v_task;
end;
$$;
comment on function bpm.complete_external_task(uuid, text, jsonb) is E'Completes an external task locked by worker_id and continues the instance; variables merge per top-level key into the instance, or into the local of that name of the nearest enclosing subprocess that has one. When a camunda:errorEventDefinition of the task holds (over its variables, these and externalTask), its error is thrown at the task instead (as throw_bpmn_error). Errors: BP104 not found, BP203 not open, BP205 not locked by this worker, BP202 instance suspended. Roles: bpm_admin, bpm_engine.';

-- A worker's batch of results: several external tasks completed in one
-- transaction, so that a busy worker pays one commit and one round trip for
-- many completions instead of one each. Each completion is the transition
-- complete_external_task makes, under its instance's lock, and succeeds or
-- fails alone: the batch runs under one savepoint (a savepoint each would
-- cost every completion); when one of them fails, the batch's completions are
-- undone and made again one by one, each under its own savepoint, so that
-- the failing ones are reported (SQLSTATE and message) and the others
-- commit. Instances are locked in the order of their ids, so that two
-- batches cannot deadlock each other. A transient error (deadlock,
-- serialization failure, statement timeout) fails the whole call: the caller
-- sends the batch again.
create or replace function bpm.complete_external_tasks(task_ids uuid[], worker_id text, variables jsonb[] default null)
returns table (task_id uuid, error_code text, error_message text)
language plpgsql
volatile
security definer
set search_path = ''
set plan_cache_mode = force_generic_plan
as $$
declare
  v_tenant text := bpm_private.require_context(array['bpm_admin', 'bpm_engine'], 'complete external tasks');
  v_n int := coalesce(pg_catalog.cardinality(task_ids), 0);
  v_order int[];
  v_codes text[] := pg_catalog.array_fill(null::text, array[v_n]);
  v_messages text[] := pg_catalog.array_fill(null::text, array[v_n]);
  v_alone boolean := false;
  v_i int;
  v_state text;
begin
  -- ===== GUARD: 1 to 1000 ids, none null, and as many variables (or none)
  if v_n < 1 or v_n > 1000 then
    raise exception 'task_ids must hold 1 to 1000 task ids, got %', v_n using errcode = 'BP401';
  end if;
  if pg_catalog.array_position(task_ids, null) is not null then
    raise exception 'task_ids holds a null id (position %)', pg_catalog.array_position(task_ids, null) using errcode = 'BP401';
  end if;
  if variables is not null and coalesce(pg_catalog.cardinality(variables), 0) <> v_n then
    raise exception 'variables must hold one entry per task id (% ids, % entries)', v_n, coalesce(pg_catalog.cardinality(variables), 0)
      using errcode = 'BP401';
  end if;
  -- (unknown ids last: their completion reports BP104)
  select pg_catalog.array_agg(u.ord order by e.instance_id, u.ord) into v_order
  from unnest(task_ids) with ordinality as u(id, ord)
  left join bpm.external_task e on e.tenant_id = v_tenant and e.id = u.id;
  -- ===== COMPLETE each: together under one savepoint; when one fails, again one by one
  loop
    begin
      foreach v_i in array v_order loop
        if v_alone then
          begin
            v_state := (bpm.complete_external_task(task_ids[v_i], worker_id, coalesce(variables[v_i], '{}'))).state;
          exception when others then
            if bpm_private.error__is_transient(sqlstate) then
              raise;
            end if;
            v_codes[v_i] := sqlstate;
            v_messages[v_i] := sqlerrm;
          end;
        else
          v_state := (bpm.complete_external_task(task_ids[v_i], worker_id, coalesce(variables[v_i], '{}'))).state;
        end if;
      end loop;
      exit;
    exception when others then
      if v_alone or bpm_private.error__is_transient(sqlstate) then
        raise;
      end if;
      v_alone := true;
    end;
  end loop;
  return query select u.id, u.code, u.message from unnest(task_ids, v_codes, v_messages) as u(id, code, message);
end;
$$;
comment on function bpm.complete_external_tasks(uuid[], text, jsonb[]) is E'Completes several external tasks locked by worker_id in one transaction, each as complete_external_task would (variables: one object per task, or null: none), and reports each in the order given: error_code and error_message null when it completed, else the SQLSTATE and message of its error (BP104, BP203, BP205, BP202, ...), which undid that completion alone. Errors: BP401 no ids, more than 1000, a null id, or variables not one per id; a transient error (deadlock, serialization failure, timeout) fails the whole call, to be sent again. Roles: bpm_admin, bpm_engine.';

-- error_details: what a worker knows beyond the message (a stack trace;
-- Camunda 7's errorDetails), kept on the task up to 64 KiB.
drop function if exists bpm.fail_external_task(uuid, text, text, int, interval);
create or replace function bpm.fail_external_task(task_id uuid, worker_id text, error_message text, retries int, retry_after interval default '0',
  error_details text default null)
returns bpm.external_task
language plpgsql
volatile
security definer
set search_path = ''
set plan_cache_mode = force_generic_plan
as $$
declare
  v_tenant text := bpm_private.require_context(array['bpm_admin', 'bpm_engine'], 'fail an external task');
  v_task bpm.external_task;
  v_locked record;
  v_node jsonb;
  v_code text;
  v_incident uuid;
begin
  if retries is null or retries < 0 then
    raise exception 'invalid argument: retries must be 0 or more, got %', retries using errcode = 'BP401';
  end if;
  if retry_after is null or retry_after < interval '0' then
    raise exception 'invalid argument: retry_after must not be negative' using errcode = 'BP401';
  end if;
  v_locked := bpm_private.external_task__lock(v_tenant, task_id, worker_id, 'fail it');
  v_task := v_locked.task;
  if pg_catalog.length(error_details) > 65536 then
    error_details := pg_catalog.left(error_details, 65536) || E'\n… (truncated: ' || pg_catalog.length(error_details) || ' characters)';
  end if;
  -- (what the error event definitions read as externalTask.errorMessage / errorDetails)
  v_task.error_message := coalesce(error_message, v_task.error_message);
  v_task.error_details := error_details;
  if (v_locked.instance).state = 'active' then
    -- camunda:errorEventDefinition: a condition that holds throws its error instead of the failure
    select d.graph -> 'nodes' -> v_task.element_id into v_node from bpm.process_definition d
    where d.tenant_id = v_tenant and d.id = (v_locked.instance).definition_id and d.graph ? 'taskErrorEvents';
    v_code := bpm_private.external_task__error_event(v_task, v_locked.instance, v_node, '{}', true);
    if v_code is not null then
      return bpm.throw_bpmn_error(task_id, worker_id, v_code, '{}', error_message);
    end if;
  end if;
  update bpm.external_task e
  set retries = fail_external_task.retries, error_message = fail_external_task.error_message, error_details = fail_external_task.error_details,
    worker_id = null, locked_until = null, available_at = pg_catalog.now() + retry_after
  where e.tenant_id = v_tenant and e.id = task_id
  returning * into v_task;
  if retries = 0 then
    insert into bpm.incident (tenant_id, instance_id, element_id, incident_type, message, external_task_id)
    values (v_tenant, v_task.instance_id, v_task.element_id, 'failedExternalTask', error_message, v_task.id)
    returning id into v_incident;
  elsif retry_after = interval '0' then
    perform bpm_private.external_task__notify(v_tenant);
  end if;
  perform bpm_private.event__emit(v_tenant, v_task.instance_id,
    array['externalTaskFailed'] || case when v_incident is not null then array['incidentCreated'] else '{}' end,
    array[v_task.id] || case when v_incident is not null then array[v_incident] else '{}' end,
    array[v_task.element_id] || case when v_incident is not null then array[v_task.element_id] else '{}' end);
  return v_task;
end;
$$;
comment on function bpm.fail_external_task(uuid, text, text, int, interval, text) is E'Reports a failure of an external task locked by worker_id. retries = how many retries remain; the task is fetchable again after retry_after. With 0 retries an incident failedExternalTask is raised. error_details (a stack trace, say) is kept on the task (error_details, up to 64 KiB; longer text is cut there and marked). When a camunda:errorEventDefinition of the task holds (externalTask.errorMessage is error_message, externalTask.errorDetails error_details), its error is thrown at the task instead (as throw_bpmn_error). Roles: bpm_admin, bpm_engine.';

-- error_message: what the worker says about the error; a catching event
-- with camunda:errorMessageVariable stores it (and the code by
-- camunda:errorCodeVariable).
create or replace function bpm.throw_bpmn_error(task_id uuid, worker_id text, error_code text, variables jsonb default '{}', error_message text default null)
returns bpm.external_task
language plpgsql
volatile
security definer
set search_path = ''
set plan_cache_mode = force_generic_plan
as $$
declare
  v_tenant text := bpm_private.require_context(array['bpm_admin', 'bpm_engine'], 'throw a BPMN error');
  v_variables jsonb := bpm_private.require_object(variables, 'variables');
  v_task bpm.external_task;
  v_instance bpm.process_instance;
  v_boundary text;
  v_graph jsonb;
  v_joins text[];
  v_locked record;
  v_incident uuid;
  v_message text := 'BPMN error ' || coalesce(error_code, '(no code)') || coalesce(': ' || error_message, '');
begin
  v_locked := bpm_private.external_task__lock(v_tenant, task_id, worker_id, 'throw an error from it');
  v_task := v_locked.task;
  v_instance := v_locked.instance;
  perform bpm_private.instance__require_active(v_instance, 'throw a BPMN error from external task ' || task_id);
  select d.graph, d.inclusive_joins into v_graph, v_joins from bpm.process_definition d
  where d.tenant_id = v_tenant and d.id = v_instance.definition_id;
  v_boundary := bpm_private.error_boundary__find(v_graph, v_task.element_id, error_code);
  if v_boundary is null and bpm_private.token__throw(v_instance, v_graph, v_joins, v_task.id, v_task.element_id, 'error', error_code, error_message, v_variables) then
    -- caught on the way out (an enclosing subprocess, event subprocess, multi-instance body)
    update bpm.external_task e set error_message = v_message, locked_until = null
    where e.tenant_id = v_tenant and e.id = task_id
    returning * into v_task;
    return v_task;
  end if;
  if v_boundary is null then
    update bpm.external_task e
    set retries = 0, error_message = v_message || ' is not caught', worker_id = null, locked_until = null
    where e.tenant_id = v_tenant and e.id = task_id
    returning * into v_task;
    insert into bpm.incident (tenant_id, instance_id, element_id, incident_type, message, external_task_id)
    values (v_tenant, v_task.instance_id, v_task.element_id, 'unhandledBpmnError',
      v_message || ' thrown by element ' || v_task.element_id || ' is not caught by any error boundary event', v_task.id)
    returning id into v_incident;
    perform bpm_private.event__emit(v_tenant, v_task.instance_id, array['externalTaskFailed', 'incidentCreated'],
      array[v_task.id, v_incident], array[v_task.element_id, v_task.element_id]);
    return v_task;
  end if;
  update bpm.external_task e
  set state = 'cancelled', ended_at = pg_catalog.now(), locked_until = null, error_message = v_message
  where e.tenant_id = v_tenant and e.id = task_id
  returning * into v_task;
  perform bpm_private.token__move(v_instance, v_graph, v_joins, v_task.id, v_task.element_id, v_boundary,
    v_variables || bpm_private.catch__variables(v_graph -> 'nodes' -> v_boundary, error_code, error_message), 'externalTaskCancelled');
  return v_task;
end;
$$;
comment on function bpm.throw_bpmn_error(uuid, text, text, jsonb, text) is E'Reports a business error for an external task locked by worker_id: the matching error boundary event (by code, else a catch-all) interrupts the task and its path is taken; else the nearest matching catch on the way out (an error event subprocess or a boundary of an enclosing subprocess, which is cancelled); variables merge into the instance, and the catching event''s camunda:errorCodeVariable / errorMessageVariable receive error_code / error_message. Nothing catches it: incident unhandledBpmnError (retry_incident makes the task available again). Roles: bpm_admin, bpm_engine.';

create or replace function bpm.retry_incident(incident_id uuid, retries int default 1)
returns bpm.incident
language plpgsql
volatile
security definer
set search_path = ''
set plan_cache_mode = force_generic_plan
as $$
declare
  v_tenant text := bpm_private.require_context(array['bpm_admin', 'bpm_engine'], 'retry an incident');
  v_incident bpm.incident;
  v_instance_id uuid;
begin
  if retries is null or retries < 1 then
    raise exception 'invalid argument: retries must be at least 1, got %', retries using errcode = 'BP401';
  end if;
  select i.instance_id into v_instance_id from bpm.incident i where i.tenant_id = v_tenant and i.id = incident_id;
  if not found then
    raise exception 'incident % not found', incident_id using errcode = 'BP105';
  end if;
  perform bpm_private.instance__lock(v_tenant, v_instance_id);
  select * into v_incident from bpm.incident i where i.tenant_id = v_tenant and i.id = incident_id;
  if v_incident.resolved_at is not null then
    raise exception 'incident % is already resolved', incident_id using errcode = 'BP206';
  end if;
  update bpm.external_task e
  set retries = retry_incident.retries, available_at = pg_catalog.now()
  where e.tenant_id = v_tenant and e.id = v_incident.external_task_id and (e.state = 'open') is true;
  if found then
    perform bpm_private.external_task__notify(v_tenant);
  end if;
  update bpm.incident i set resolved_at = pg_catalog.now()
  where i.tenant_id = v_tenant and i.id = incident_id
  returning * into v_incident;
  if v_incident.external_task_id is null then
    perform bpm_private.incident__retry_element(v_incident);
  end if;
  perform bpm_private.event__emit(v_tenant, v_incident.instance_id, array['incidentResolved'], array[v_incident.id], array[v_incident.element_id]);
  return v_incident;
end;
$$;
comment on function bpm.retry_incident(uuid, int) is E'Resolves an open incident and makes its work available again with the given retries (external task: fetchable again; failedJob of a timer: the timer fires again; unhandled error end event: it is entered again). Errors: BP105 not found, BP206 already resolved. Roles: bpm_admin, bpm_engine.';

-- Incidents without an external task: a timer or asynchronous continuation
-- that failed (its job runs again now), or an error end event nobody caught (its token
-- enters it again, which raises a new incident unless a catcher appeared), or
-- a called instance's error nobody caught (thrown at the call activity again).
create or replace function bpm_private.incident__retry_element(incident bpm.incident)
returns void
language plpgsql
volatile
set search_path = ''
as $$
declare
  v_sub bpm.event_subscription;
  v_token uuid;
  v_data jsonb;
  v_locked record;
  st bpm_private.run_state;
  v_graph jsonb;
begin
  update bpm.event_subscription s set incident_id = null
  where s.tenant_id = incident.tenant_id and s.incident_id = incident.id
  returning * into v_sub;
  if found then
    perform bpm_private.timer__enqueue(v_sub.tenant_id, v_sub.id, pg_catalog.now(), v_sub.job_priority);
    return;
  end if;
  select t.id into v_token from bpm_private.token t
  where t.tenant_id = incident.tenant_id and t.instance_id = incident.instance_id and t.element_id = incident.element_id
    and t.kind in ('asyncBefore', 'asyncAfter')
  limit 1;
  if found then
    perform bpm_private.async__enqueue(incident.tenant_id, v_token, bpm_private.instance__node(incident.tenant_id, incident.instance_id, incident.element_id),
      (select i.variables from bpm.process_instance i where i.tenant_id = incident.tenant_id and i.id = incident.instance_id));
    return;
  end if;
  -- a call activity whose called instance threw an error nobody caught: thrown again
  update bpm_private.token t set data = t.data - 'failed'
  where t.tenant_id = incident.tenant_id and t.instance_id = incident.instance_id and t.element_id = incident.element_id
    and t.kind = 'call' and t.data ? 'failed'
  returning t.data into v_data;
  if found then
    perform bpm_private.call__child_threw(incident.tenant_id, (v_data ->> 'child')::uuid, v_data -> 'failed_with');
    return;
  end if;
  delete from bpm_private.token t
  where t.tenant_id = incident.tenant_id and t.instance_id = incident.instance_id and t.element_id = incident.element_id and t.kind = 'incident'
  returning t.id into v_token;
  if not found then
    return;
  end if;
  select i as instance, d.graph, d.inclusive_joins into v_locked
  from bpm.process_instance i join bpm.process_definition d on d.tenant_id = i.tenant_id and d.id = i.definition_id
  where i.tenant_id = incident.tenant_id and i.id = incident.instance_id;
  v_graph := bpm_private.graph__in_memory(v_locked.graph);
  st := bpm_private.run__begin(incident.tenant_id, incident.instance_id, (v_locked.instance).variables, false, v_locked.inclusive_joins);
  st.business_key := (v_locked.instance).business_key;
  st := bpm_private.run__resume(st, v_graph -> 'nodes' -> incident.element_id, v_token);
  st := bpm_private.activity__end(st, array[v_token], 'cancelled');
  st := bpm_private.run__push(st, incident.element_id, null);
  st := bpm_private.run__drain(st, v_graph);
  perform bpm_private.run__finish(st, v_locked.instance);
end;
$$;
comment on function bpm_private.incident__retry_element(bpm.incident) is E'Retries an incident that has no external task: fires the failed timer again, or re-enters the error end event.';

-- Wake-up calls for workers: a worker that LISTENs on channel
-- bpm_external_task holds a lease per tenant it serves; while one is live,
-- transactions that make an external task of the tenant fetchable notify the
-- channel (no payload: every listener of the cluster sees it). Without a
-- lease nothing is sent, because NOTIFY makes committing transactions queue
-- behind one another; workers then find tasks by polling.
create or replace function bpm_private.external_task__notify(tenant_id text)
returns void
language plpgsql
volatile
set search_path = ''
as $$
begin
  if exists (select 1 from bpm_private.task_listener l
             where l.tenant_id = external_task__notify.tenant_id and l.expires_at > pg_catalog.now()) then
    perform pg_catalog.pg_notify('bpm_external_task', '');
  end if;
end;
$$;
comment on function bpm_private.external_task__notify(text) is E'Notifies channel bpm_external_task (empty payload) when a worker holds a live lease of the tenant.';

create or replace function bpm.register_task_listener(listener_id text, ttl interval default '30 seconds')
returns timestamptz
language plpgsql
volatile
security definer
set search_path = ''
set plan_cache_mode = force_generic_plan
as $$
declare
  v_tenant text := bpm_private.require_context(array['bpm_admin', 'bpm_engine'], 'listen for external tasks');
  v_expires timestamptz;
begin
  perform bpm_private.lease__check(listener_id, ttl);
  -- expired leases go; a ttl of 0 releases this one (a worker that stops)
  delete from bpm_private.task_listener l where l.tenant_id = v_tenant
    and (l.expires_at < pg_catalog.now() or (ttl = interval '0' and l.listener_id = register_task_listener.listener_id));
  if ttl = interval '0' then
    return pg_catalog.now();
  end if;
  insert into bpm_private.task_listener (tenant_id, listener_id, expires_at)
  values (v_tenant, register_task_listener.listener_id, pg_catalog.now() + ttl)
  on conflict on constraint task_listener_pkey do update set expires_at = excluded.expires_at
  returning task_listener.expires_at into v_expires;
  return v_expires;
end;
$$;
comment on function bpm.register_task_listener(text, interval) is E'Worker-side: while registered (until ttl passes; renew it), transactions that make an external task of the caller''s tenant fetchable (created, failed with retry_after 0, incident retried) NOTIFY channel bpm_external_task with an empty payload, so LISTENing workers fetch at once instead of at their next poll. A ttl of 0 releases the lease at once (a worker that stops). Returns the expiry. Errors: BP401 malformed arguments. Roles: bpm_admin, bpm_engine.';
