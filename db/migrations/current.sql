-- Scopes (issue 5): embedded subprocesses, event subprocesses, multi-instance
-- bodies and call activities. Activity instances form a tree (scope_id);
-- scope instances are tokens (kind scope | body | call) whose data holds
-- their locals, loop state or child instance.
-- Instance modification and migration: modify_process_instance (start
-- before/after an element, cancel an activity instance) and
-- migrate_process_instances (to another version of the same key with an
-- element mapping), which records the new event kind instanceMigrated.
alter table bpm.activity_instance add column if not exists scope_id uuid;
comment on column bpm.activity_instance.scope_id is E'The activity instance this one runs in: an embedded or event subprocess, a multi-instance body (element_type multiInstanceBody); null at process level.';
create index if not exists activity_instance_scope_idx on bpm.activity_instance (tenant_id, scope_id) where scope_id is not null;

alter table bpm_private.token add column if not exists data jsonb;
comment on column bpm_private.token.data is E'Scope tokens: their locals ({vars}, kind scope), loop state (kind body) or called instance ({child}, kind call).';
alter table bpm_private.token drop constraint if exists kind_is_valid;
alter table bpm_private.token add constraint kind_is_valid
  check (kind in ('join', 'event', 'incident', 'asyncBefore', 'asyncAfter', 'scope', 'body', 'call'));
comment on column bpm_private.token.kind is E'What it waits for: join (more tokens), event (its event subscriptions), incident (an unhandled error end event), asyncBefore / asyncAfter (its job, continue_async), scope (an embedded or event subprocess instance: everything in it), body (a multi-instance body: its inner instances), call (a call activity: its called instance).';

-- a superset of the earlier check (not valid: no stored row can fail it)
alter domain bpm.event_kind drop constraint if exists event_kind_is_valid;
alter domain bpm.event_kind add constraint event_kind_is_valid check (value in (
    'definitionDeployed',
    'instanceStarted', 'instanceCompleted', 'instanceCancelled', 'instanceSuspended', 'instanceActivated', 'variablesUpdated', 'instanceMigrated',
    'activityStarted', 'activityCompleted', 'activityCancelled',
    'taskCreated', 'taskAssigned', 'taskCompleted', 'taskCancelled',
    'externalTaskCreated', 'externalTaskCompleted', 'externalTaskFailed', 'externalTaskCancelled',
    'incidentCreated', 'incidentResolved',
    'messageCorrelated', 'messageBuffered', 'signalBroadcast', 'timerFired', 'taskOverdue', 'taskFollowUpDue', 'taskEscalated',
    'errorCaught', 'escalationCaught')) not valid;
comment on domain bpm.event_kind is E'Kind of an event: definitionDeployed; instanceStarted | instanceCompleted | instanceCancelled | instanceSuspended | instanceActivated | variablesUpdated | instanceMigrated; activityStarted | activityCompleted | activityCancelled; taskCreated | taskAssigned | taskCompleted | taskCancelled; externalTaskCreated | externalTaskCompleted | externalTaskFailed | externalTaskCancelled; incidentCreated | incidentResolved; messageCorrelated | messageBuffered | signalBroadcast | timerFired; taskOverdue | taskFollowUpDue | taskEscalated; errorCaught | escalationCaught (by a boundary event or event subprocess).';

do $$
begin
  if not exists (select 1 from pg_catalog.pg_attribute a where a.attrelid = 'bpm_private.run_state'::pg_catalog.regclass and a.attname = 'cur_scope') then
    alter type bpm_private.run_state add attribute cur_scope uuid, add attribute q_scope uuid[], add attribute a_scope uuid[],
      add attribute c_scope uuid[], add attribute l_id uuid[], add attribute l_parent uuid[], add attribute l_el text[],
      add attribute l_kind text[], add attribute l_data jsonb[], add attribute l_state text[];
  end if;
end;
$$;
comment on type bpm_private.run_state is E'In-memory state of one engine call: queued tokens (q_*, with their scope), buffered history rows (a_*), stored history rows ended in this call (e_*), buffered wait states (w_*), explicit events (x_*), subscriptions (s_*), post actions (p_data), the current scope and the scopes the run touched (l_*), scopes to check for completion (c_scope).';

drop function if exists bpm_private.throw__enter(bpm_private.run_state, jsonb, uuid, text);

--!include engine/run.sql
--!include engine/node.sql
--!include engine/graph.sql
--!include engine/join.sql
--!include engine/async.sql
--!include engine/subscription.sql
--!include engine/scope.sql
--!include engine/scope_cancel.sql
--!include elements/events.sql
--!include elements/error_catch.sql
--!include elements/subprocess.sql
--!include elements/multi_instance.sql
--!include elements/call_activity.sql
--!include instance/migrate.sql
--!include instance/modify.sql
--!include setup/grants.sql
--!include setup/ownership.sql
