-- Wake-up calls for external-task workers: a worker LISTENing on channel
-- bpm_external_task registers a lease per tenant (bpm.register_task_listener);
-- while one is live, a transaction that makes an external task of the tenant
-- fetchable notifies the channel (empty payload), and the worker fetches at
-- once instead of at its next poll.
create unlogged table if not exists bpm_private.task_listener (
  tenant_id text not null,
  listener_id text not null,
  expires_at timestamptz not null,
  constraint task_listener_pkey primary key (tenant_id, listener_id)
);
comment on table bpm_private.task_listener is E'Workers listening for new external tasks per tenant (leases): the engine notifies channel bpm_external_task only while one exists.';
--!include api/external_tasks.sql
--!include engine/run.sql
--!include setup/policies.sql
--!include setup/ownership.sql
--!include setup/grants.sql
