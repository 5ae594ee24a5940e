-- Events (issue 3): a durable, gapless event log of every state change,
-- read through RLS by subscriptions and pollers; NOTIFY while subscribed.
create domain bpm.event_kind as text
  constraint event_kind_is_valid check (value in (
    'definitionDeployed',
    'instanceStarted', 'instanceCompleted', 'instanceCancelled', 'instanceSuspended', 'instanceActivated', 'variablesUpdated',
    'activityStarted', 'activityCompleted', 'activityCancelled',
    'taskCreated', 'taskAssigned', 'taskCompleted', 'taskCancelled',
    'externalTaskCreated', 'externalTaskCompleted', 'externalTaskFailed', 'externalTaskCancelled',
    'incidentCreated', 'incidentResolved',
    'messageCorrelated', 'messageBuffered', 'signalBroadcast', 'timerFired', 'taskOverdue', 'taskFollowUpDue', 'taskEscalated'));
comment on domain bpm.event_kind is E'Kind of an event: definitionDeployed; instanceStarted | instanceCompleted | instanceCancelled | instanceSuspended | instanceActivated | variablesUpdated; activityStarted | activityCompleted | activityCancelled; taskCreated | taskAssigned | taskCompleted | taskCancelled; externalTaskCreated | externalTaskCompleted | externalTaskFailed | externalTaskCancelled; incidentCreated | incidentResolved; messageCorrelated | messageBuffered | signalBroadcast | timerFired; taskOverdue | taskFollowUpDue | taskEscalated.';

create table bpm.event (
  tenant_id text not null,
  id bigint not null,
  instance_id uuid,
  kind bpm.event_kind not null,
  subject_id uuid,
  element_id text,
  created_at timestamptz not null default now(),
  constraint event_pkey primary key (tenant_id, id)
);
comment on table bpm.event is E'Event log: one row per state change, appended in the transaction that made it. Ids increase in transaction order; read with events_after to resume without gaps. A bpm_user sees the events of the instances it sees.';
comment on column bpm.event.tenant_id is E'Owning tenant.';
comment on column bpm.event.id is E'Event id: (transaction id << 20) + ordinal in the transaction; increases monotonically in the order events_after returns them.';
comment on column bpm.event.instance_id is E'The process instance concerned (null for definitionDeployed).';
comment on column bpm.event.kind is E'What happened (see the domain bpm.event_kind).';
comment on column bpm.event.subject_id is E'The object concerned: the instance, activity instance, user task, external task, incident or definition id.';
comment on column bpm.event.element_id is E'The BPMN element concerned, if any.';
comment on column bpm.event.created_at is E'When the transaction that made the change ran.';

create unlogged table bpm_private.event_listener (
  tenant_id text not null,
  listener_id text not null,
  expires_at timestamptz not null,
  constraint event_listener_pkey primary key (tenant_id, listener_id)
);
comment on table bpm_private.event_listener is E'Servers with live subscribers per tenant (leases): the engine notifies only while one exists.';

alter type bpm_private.run_state add attribute x_kind text[], add attribute x_subject uuid[], add attribute x_el text[];

-- Events, timers and messages (issue 4): what waiting instances (and
-- deployed definitions with event starts) wait for.
create domain bpm.subscription_kind as text
  constraint subscription_kind_is_valid check (value in ('message', 'signal', 'timer'));
comment on domain bpm.subscription_kind is E'What an event subscription waits for: message | signal | timer.';

create table bpm.event_subscription (
  tenant_id text not null,
  id uuid not null,
  kind bpm.subscription_kind not null,
  name text,
  correlation_key text,
  definition_id uuid,
  instance_id uuid,
  token_id uuid,
  element_id text not null,
  interrupting boolean not null default true,
  due_at timestamptz,
  cycle text,
  repeats_left int,
  incident_id uuid,
  created_at timestamptz not null default now(),
  constraint event_subscription_pkey primary key (tenant_id, id)
);
create index event_subscription_name_idx on bpm.event_subscription (tenant_id, kind, name);
create index event_subscription_instance_idx on bpm.event_subscription (tenant_id, instance_id) where instance_id is not null;
comment on table bpm.event_subscription is E'What waits for a message, signal or timer: catch events, receive tasks, event-based gateways, boundary events of waiting activities (instance_id set) and message, signal and timer start events of the latest version of each process (instance_id null). Timers are graphile-worker jobs with job_key bpm-timer:<id>.';
comment on column bpm.event_subscription.tenant_id is E'Owning tenant.';
comment on column bpm.event_subscription.id is E'Subscription id.';
comment on column bpm.event_subscription.kind is E'message | signal | timer.';
comment on column bpm.event_subscription.name is E'Message or signal name (null for timers).';
comment on column bpm.event_subscription.correlation_key is E'Messages: the key evaluated when the subscription opened (zeebe correlationKey, else the instance''s business key); null matches any.';
comment on column bpm.event_subscription.definition_id is E'The process definition (start events: the one to start).';
comment on column bpm.event_subscription.instance_id is E'The waiting instance (null for start events).';
comment on column bpm.event_subscription.token_id is E'The waiting activity instance: the catch event, receive task or event-based gateway, or the activity a boundary event is attached to.';
comment on column bpm.event_subscription.element_id is E'The catching element: catch event, receive task, boundary event or start event.';
comment on column bpm.event_subscription.interrupting is E'Boundary events: whether triggering cancels the activity.';
comment on column bpm.event_subscription.due_at is E'Timers: when it fires next.';
comment on column bpm.event_subscription.cycle is E'Timer cycles: the cycle (R[n]/[start/]duration or cron) the next due time follows.';
comment on column bpm.event_subscription.repeats_left is E'Timer cycles: how many more times it fires after due_at (null: no limit).';
comment on column bpm.event_subscription.incident_id is E'Set while firing failed and an incident (failedJob) waits for retry_incident.';
comment on column bpm.event_subscription.created_at is E'When it opened.';

create table bpm.message_buffer (
  tenant_id text not null,
  id uuid not null,
  name text not null,
  correlation_key text,
  variables bpm.json_object not null,
  message_id text,
  created_at timestamptz not null default now(),
  expires_at timestamptz not null,
  constraint message_buffer_pkey primary key (tenant_id, id),
  constraint message_buffer_message_id_key unique (tenant_id, message_id)
);
create index message_buffer_name_idx on bpm.message_buffer (tenant_id, name, created_at);
comment on table bpm.message_buffer is E'Messages correlated with a ttl before anyone waited for them: delivered to the first matching subscription that opens before expires_at.';
comment on column bpm.message_buffer.tenant_id is E'Owning tenant.';
comment on column bpm.message_buffer.id is E'Buffered message id.';
comment on column bpm.message_buffer.name is E'Message name.';
comment on column bpm.message_buffer.correlation_key is E'Correlation key (null matches any subscription).';
comment on column bpm.message_buffer.variables is E'Variables delivered with the message.';
comment on column bpm.message_buffer.message_id is E'Caller''s message id (deduplication), if given.';
comment on column bpm.message_buffer.created_at is E'When it was correlated.';
comment on column bpm.message_buffer.expires_at is E'When it is dropped unless delivered.';

create table bpm_private.message_receipt (
  tenant_id text not null,
  message_id text not null,
  instance_id uuid,
  received_at timestamptz not null default now(),
  constraint message_receipt_pkey primary key (tenant_id, message_id)
);
comment on table bpm_private.message_receipt is E'Message ids already delivered (kept for the retention window): a repeated correlation with the same id is a no-op.';

alter type bpm_private.run_state add attribute s_token uuid[], add attribute s_data jsonb[], add attribute p_data jsonb[], add attribute business_key text,
  add attribute resume_node text, add attribute resume_id uuid, add attribute upsert boolean;
alter table bpm_private.token drop constraint kind_is_valid, add constraint kind_is_valid check (kind in ('join', 'event', 'incident', 'asyncBefore', 'asyncAfter'));
comment on column bpm_private.token.kind is E'What it waits for: join (more tokens), event (its event subscriptions), incident (an unhandled error end event), asyncBefore / asyncAfter (its job, continue_async).';

-- Task lists (issue 3): PostGraphile sends the state as a parameter
-- (state = $1), so once Postgres uses a generic plan a partial index
-- (where state = 'open') cannot serve it. This index has the state as a key
-- column and the inbox order (priority desc, created_at, then the primary
-- key PostGraphile adds for stable cursors): the first page of a user's
-- inbox walks it in order and stops after 20 visible rows. It replaces the
-- partial index on assignee, so the hot path still writes three indexes.
drop index bpm.user_task_open_assignee_idx;
create index user_task_inbox_idx on bpm.user_task (tenant_id, state, priority desc, created_at, id);

alter table bpm.user_task add column overdue_since timestamptz, add column escalated_at timestamptz;
comment on column bpm.user_task.overdue_since is E'When the task was found past its due date (open tasks; event taskOverdue).';
comment on column bpm.user_task.escalated_at is E'When its escalation rule (pgbpm:escalateAfter) was applied.';

drop function bpm_private.token__move(bpm.process_instance, jsonb, text[], uuid, text, text, jsonb);

--!include expression/evaluate.sql
--!include events/emit.sql
--!include elements/timer.sql
--!include elements/events.sql
--!include engine/subscription.sql
--!include engine/async.sql
--!include elements/tasks.sql
--!include elements/task_deadlines.sql
--!include engine/node.sql
--!include api/events.sql
--!include engine/run.sql
--!include engine/graph.sql
--!include engine/cancel.sql
--!include api/start_process.sql
--!include api/user_tasks.sql
--!include api/instances.sql
--!include api/external_tasks.sql
--!include api/deploy.sql
--!include setup/policies.sql
--!include setup/grants.sql
--!include setup/ownership.sql
--!include setup/worker_grants.sql
