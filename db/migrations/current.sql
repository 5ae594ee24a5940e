-- Instance modification and migration (issue 5): modify_process_instance
-- (start before/after an element, cancel an activity instance) and
-- migrate_process_instances (to another version of the same key with an
-- element mapping). A migration records the new event kind instanceMigrated.
-- The domain's check is replaced by a superset, so no stored row can fail it
-- (not valid: nothing to re-check in bpm.event).
alter domain bpm.event_kind drop constraint if exists event_kind_is_valid;
alter domain bpm.event_kind add constraint event_kind_is_valid check (value in (
    'definitionDeployed',
    'instanceStarted', 'instanceCompleted', 'instanceCancelled', 'instanceSuspended', 'instanceActivated', 'variablesUpdated', 'instanceMigrated',
    'activityStarted', 'activityCompleted', 'activityCancelled',
    'taskCreated', 'taskAssigned', 'taskCompleted', 'taskCancelled',
    'externalTaskCreated', 'externalTaskCompleted', 'externalTaskFailed', 'externalTaskCancelled',
    'incidentCreated', 'incidentResolved',
    'messageCorrelated', 'messageBuffered', 'signalBroadcast', 'timerFired', 'taskOverdue', 'taskFollowUpDue', 'taskEscalated')) not valid;
comment on domain bpm.event_kind is E'Kind of an event: definitionDeployed; instanceStarted | instanceCompleted | instanceCancelled | instanceSuspended | instanceActivated | variablesUpdated | instanceMigrated; activityStarted | activityCompleted | activityCancelled; taskCreated | taskAssigned | taskCompleted | taskCancelled; externalTaskCreated | externalTaskCompleted | externalTaskFailed | externalTaskCancelled; incidentCreated | incidentResolved; messageCorrelated | messageBuffered | signalBroadcast | timerFired; taskOverdue | taskFollowUpDue | taskEscalated.';

--!include instance/migrate.sql
--!include instance/modify.sql
--!include setup/grants.sql
--!include setup/ownership.sql
