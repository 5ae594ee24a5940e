-- Events (issue 3): a durable, gapless event log of every state change,
-- read through RLS by subscriptions and pollers; NOTIFY while subscribed.
create domain bpm.event_kind as text
  constraint event_kind_is_valid check (value in (
    'definitionDeployed',
    'instanceStarted', 'instanceCompleted', 'instanceCancelled', 'instanceSuspended', 'instanceActivated', 'variablesUpdated',
    'activityStarted', 'activityCompleted', 'activityCancelled',
    'taskCreated', 'taskAssigned', 'taskCompleted', 'taskCancelled',
    'externalTaskCreated', 'externalTaskCompleted', 'externalTaskFailed', 'externalTaskCancelled',
    'incidentCreated', 'incidentResolved'));
comment on domain bpm.event_kind is E'Kind of an event: definitionDeployed; instanceStarted | instanceCompleted | instanceCancelled | instanceSuspended | instanceActivated | variablesUpdated; activityStarted | activityCompleted | activityCancelled; taskCreated | taskAssigned | taskCompleted | taskCancelled; externalTaskCreated | externalTaskCompleted | externalTaskFailed | externalTaskCancelled; incidentCreated | incidentResolved.';

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

drop function bpm_private.token__move(bpm.process_instance, jsonb, text[], uuid, text, text, jsonb);

--!include events/emit.sql
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
