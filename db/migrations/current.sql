-- Call activities: a called instance's uncaught error can be retried
-- (retry_incident throws it at the call activity again); a call activity
-- cancelled in the run that entered it starts no child; a retried error end
-- event inside a subprocess is thrown from its scope.
-- Open tasks by id or instance: "(state = 'open') is true", which is no
-- index condition, so generic plans use the primary key or the instance
-- index. With "state = 'open'" they walked the inbox index (tenant_id,
-- state, …) over every open task of the tenant (a completion took 14 ms at
-- 90,000 open tasks), and the partial indexes of migration 000009 were
-- taken the same way for lookups by id; they go.
drop index if exists bpm.user_task_open_instance_idx;
drop index if exists bpm.external_task_open_instance_idx;

--!include engine/run.sql
--!include engine/subscription.sql
--!include engine/scope_cancel.sql
--!include engine/cancel.sql
--!include engine/join.sql
--!include api/instances.sql
--!include api/user_tasks.sql
--!include api/external_tasks.sql
--!include instance/migrate.sql
--!include instance/modify.sql
--!include elements/call_activity.sql
--!include elements/compensation.sql
--!include setup/ownership.sql
