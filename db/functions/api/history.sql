-- History retention. An ended instance's history (the instance row, its
-- activity instances, tasks, incidents; for a call tree, the whole tree with
-- its root) is removed once its definition's time to live has passed since
-- it ended (camunda:historyTimeToLive, else the caller's default). The event
-- log is trimmed by age on its own (event_retention). Each tenant's cleanup
-- is a graphile-worker job (bpm_cleanup_history, job key
-- bpm-cleanup:<tenant>) that reschedules itself; bpm.deploy starts it.

-- camunda:historyTimeToLive as compiled (P<n>D), as an interval (null: none).
create or replace function bpm_private.history_ttl__parse(ttl text)
returns interval
language plpgsql
immutable
set search_path = ''
as $$
begin
  if ttl is null then
    return null;
  end if;
  if ttl !~ '^P[0-9]{1,6}D$' then
    raise exception 'invalid deployment: historyTimeToLive % is not P<days>D', ttl using errcode = 'BP501';
  end if;
  return ttl::interval;
end;
$$;
comment on function bpm_private.history_ttl__parse(text) is E'Reads a compiled historyTimeToLive (P<n>D) as an interval (BP501 if malformed).';

-- Schedules the tenant's cleanup job: keep an earlier scheduled run
-- (reschedule false: deploy) or move it (true: the job's own next run).
create or replace function bpm_private.history_cleanup__schedule(tenant_id text, run_in interval, reschedule boolean)
returns void
language plpgsql
volatile
set search_path = ''
as $$
begin
  perform graphile_worker.add_job('bpm_cleanup_history', pg_catalog.json_build_object('tenant_id', tenant_id),
    run_at => pg_catalog.now() + run_in, job_key => 'bpm-cleanup:' || tenant_id,
    job_key_mode => case when reschedule then 'replace' else 'preserve_run_at' end, max_attempts => 5);
end;
$$;
comment on function bpm_private.history_cleanup__schedule(text, interval, boolean) is E'Schedules the history cleanup job of a tenant (one per tenant, job key bpm-cleanup:<tenant>).';

-- The roots of ended call trees (and instances without a caller) whose time
-- to live has passed, oldest first, locked (skip locked: a tree being
-- cleaned by another call is left to it). Per definition, so the index range
-- holds only what has expired.
create or replace function bpm_private.history__expired(tenant_id text, max_instances int, default_ttl interval)
returns uuid[]
language plpgsql
volatile
set search_path = ''
as $$
declare
  v_ids uuid[] := '{}';
  d record;
begin
  for d in
    select p.id, coalesce(p.history_ttl, default_ttl) as ttl from bpm.process_definition p
    where p.tenant_id = history__expired.tenant_id and coalesce(p.history_ttl, default_ttl) is not null
    order by p.id
  loop
    v_ids := v_ids || array(
      select i.id from bpm.process_instance i
      where i.tenant_id = history__expired.tenant_id and i.definition_id = d.id
        and i.ended_at is not null and i.root_instance_id is null and i.ended_at < pg_catalog.now() - d.ttl
      order by i.ended_at
      limit max_instances - pg_catalog.cardinality(v_ids)
      for update skip locked);
    exit when pg_catalog.cardinality(v_ids) >= max_instances;
  end loop;
  return v_ids;
end;
$$;
comment on function bpm_private.history__expired(text, int, interval) is E'Locks and returns up to max_instances ended root instances of a tenant whose history time to live has passed.';

create or replace function bpm.cleanup_history(max_instances int default 500, default_ttl interval default null,
  event_retention interval default null, max_events int default 5000)
returns bpm.history_cleanup
language plpgsql
volatile
security definer
set search_path = ''
set plan_cache_mode = force_generic_plan
as $$
declare
  v_tenant text := bpm_private.require_context(array['bpm_admin', 'bpm_engine'], 'clean up history');
  v_roots uuid[];
  v_tree uuid[];
  v_events bigint[];
  v_result bpm.history_cleanup;
begin
  -- ===== GUARD the arguments
  if max_instances is null or max_instances not between 1 and 10000 or max_events is null or max_events not between 1 and 100000 then
    raise exception 'invalid argument: max_instances must be 1..10000 and max_events 1..100000' using errcode = 'BP401';
  end if;
  if default_ttl < interval '0' or event_retention < interval '0' then
    raise exception 'invalid argument: default_ttl and event_retention must not be negative' using errcode = 'BP401';
  end if;
  -- ===== LOCK the expired call trees (by their roots), then remove them whole
  v_roots := bpm_private.history__expired(v_tenant, max_instances, default_ttl);
  with recursive tree as (
    select r.id from unnest(v_roots) as r(id)
    union all
    select c.id from bpm.process_instance c join tree t on c.tenant_id = v_tenant and c.parent_instance_id = t.id
  )
  select coalesce(array_agg(t.id), '{}') into v_tree from tree t;
  delete from bpm.activity_instance a where a.tenant_id = v_tenant and a.instance_id = any(v_tree);
  get diagnostics v_result.activities = row_count;
  delete from bpm.event_subscription s where s.tenant_id = v_tenant and s.instance_id = any(v_tree);
  -- tasks, incidents, tokens and called instances go with their instance (on delete cascade)
  delete from bpm.process_instance i where i.tenant_id = v_tenant and i.id = any(v_roots);
  v_result.instances := pg_catalog.cardinality(v_tree);
  -- ===== TRIM the event log, oldest first (ids grow with time)
  v_result.events := 0;
  if event_retention is not null then
    -- the oldest max_events ids (a bounded index scan, whatever their age),
    -- then those of them old enough (by id: a generic plan of a join would
    -- scan the whole log)
    v_events := array(select e.id from bpm.event e where e.tenant_id = v_tenant order by e.id limit max_events);
    delete from bpm.event e where e.tenant_id = v_tenant and e.id = any(v_events) and e.created_at < pg_catalog.now() - event_retention;
    get diagnostics v_result.events = row_count;
  end if;
  return v_result;
end;
$$;
comment on function bpm.cleanup_history(int, interval, interval, int) is E'Removes the history of ended instances whose time to live has passed (the definition''s historyTimeToLive, else default_ttl; none: kept): up to max_instances call trees (an instance with its called instances), with their activity instances, tasks and incidents; and, with event_retention, up to max_events events older than that. Returns what it removed; call it again while it removes a full batch. The worker runs it per tenant every PGBPM_CLEANUP_INTERVAL. Roles: bpm_admin, bpm_engine.';
