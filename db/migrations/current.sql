-- camunda:jobPriority: timers and asynchronous continuations become
-- graphile-worker jobs with that priority (higher first).
alter table bpm.event_subscription add column job_priority int not null default 0;
comment on column bpm.event_subscription.job_priority is E'Timers: camunda:jobPriority of the timer event (else of its process), the priority of its job (higher first); 0 otherwise.';
drop function if exists bpm_private.timer__enqueue(text, uuid, timestamptz);
--!include elements/timer.sql
--!include elements/events.sql
--!include engine/async.sql
--!include engine/run.sql
--!include api/deploy.sql
--!include api/instances.sql
--!include api/external_tasks.sql
--!include setup/ownership.sql
