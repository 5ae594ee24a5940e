-- Conditional events: intermediate catch, boundary (interrupting and not)
-- and event subprocess starts, evaluated when they open and whenever the
-- instance's variables change (engine/condition.sql). Subscription kind
-- conditional, event kind conditionFulfilled.
alter domain bpm.subscription_kind drop constraint if exists subscription_kind_is_valid;
alter domain bpm.subscription_kind add constraint subscription_kind_is_valid check (value in ('message', 'signal', 'timer', 'conditional')) not valid;
comment on domain bpm.subscription_kind is E'What an event subscription waits for: message | signal | timer | conditional.';
comment on column bpm.event_subscription.kind is E'message | signal | timer | conditional (a condition over the variables, evaluated when they change).';
comment on table bpm.event_subscription is E'What waits for a message, signal, timer or condition: catch events, receive tasks, event-based gateways, boundary events of waiting activities, event subprocess starts (instance_id set) and message, signal and timer start events of the latest version of each process (instance_id null). Timers are graphile-worker jobs with job_key bpm-timer:<id>.';
alter table bpm.event_subscription add column condition_held boolean;
comment on column bpm.event_subscription.condition_held is E'Conditional subscriptions: whether the condition held at its last evaluation (it triggers when it becomes true); null otherwise.';
alter domain bpm.event_kind drop constraint if exists event_kind_is_valid;
alter domain bpm.event_kind add constraint event_kind_is_valid check (value in (
    'definitionDeployed',
    'instanceStarted', 'instanceCompleted', 'instanceCancelled', 'instanceSuspended', 'instanceActivated', 'variablesUpdated', 'instanceMigrated',
    'activityStarted', 'activityCompleted', 'activityCancelled',
    'taskCreated', 'taskAssigned', 'taskUpdated', 'taskCompleted', 'taskCancelled',
    'externalTaskCreated', 'externalTaskCompleted', 'externalTaskFailed', 'externalTaskCancelled',
    'incidentCreated', 'incidentResolved',
    'messageCorrelated', 'messageBuffered', 'signalBroadcast', 'timerFired', 'conditionFulfilled', 'taskOverdue', 'taskFollowUpDue', 'taskEscalated',
    'errorCaught', 'escalationCaught', 'transactionCancelled')) not valid;
comment on domain bpm.event_kind is E'Kind of an event: definitionDeployed; instanceStarted | instanceCompleted | instanceCancelled | instanceSuspended | instanceActivated | variablesUpdated | instanceMigrated; activityStarted | activityCompleted | activityCancelled; taskCreated | taskAssigned | taskUpdated | taskCompleted | taskCancelled; externalTaskCreated | externalTaskCompleted | externalTaskFailed | externalTaskCancelled; incidentCreated | incidentResolved; messageCorrelated | messageBuffered | signalBroadcast | timerFired | conditionFulfilled; taskOverdue | taskFollowUpDue | taskEscalated; errorCaught | escalationCaught (by a boundary event or event subprocess); transactionCancelled.';
--!include engine/condition.sql
--!include elements/events.sql
--!include elements/error_catch.sql
--!include engine/run.sql
--!include engine/subscription.sql
--!include api/instances.sql
--!include setup/ownership.sql
