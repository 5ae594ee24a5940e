-- Lock order in call trees: every transition locks the root of its call tree
-- first (bpm_private.instance__lock_tree), so a called instance walking up to
-- its caller and the caller walking down to it serialise instead of
-- deadlocking. The root is stored on every called instance.
alter table bpm.process_instance add column if not exists root_instance_id uuid;
comment on column bpm.process_instance.root_instance_id is E'The instance at the top of this instance''s call tree (null for an instance that was not started by a call activity).';
with recursive tree as (
  select i.tenant_id, i.id, i.id as root_id from bpm.process_instance i where i.parent_instance_id is null
  union all
  select c.tenant_id, c.id, t.root_id from bpm.process_instance c join tree t on t.tenant_id = c.tenant_id and c.parent_instance_id = t.id
)
update bpm.process_instance i set root_instance_id = t.root_id
from tree t
where t.tenant_id = i.tenant_id and t.id = i.id and i.parent_instance_id is not null and i.root_instance_id is distinct from t.root_id;
alter table bpm.process_instance drop constraint if exists process_instance_root_of_called;
alter table bpm.process_instance add constraint process_instance_root_of_called
  check ((parent_instance_id is null) = (root_instance_id is null));

--!include engine/cancel.sql
--!include engine/graph.sql
--!include engine/subscription.sql
--!include api/user_tasks.sql
--!include api/external_tasks.sql
--!include api/events.sql
--!include elements/task_deadlines.sql
--!include instance/migrate.sql
--!include elements/compensation.sql
-- History retention (api/history.sql): a time to live per definition
-- (camunda:historyTimeToLive), an index over ended call-tree roots per
-- definition, the result type of bpm.cleanup_history, and a cleanup job for
-- every tenant that has deployed something.
alter table bpm.process_definition add column if not exists history_ttl interval;
comment on column bpm.process_definition.history_ttl is E'How long the history of an ended instance of this definition is kept (camunda:historyTimeToLive); null: cleanup_history''s default_ttl applies (none: kept).';
alter table bpm.process_definition drop constraint if exists process_definition_history_ttl_not_negative;
alter table bpm.process_definition add constraint process_definition_history_ttl_not_negative check (history_ttl >= interval '0');
create index if not exists process_instance_ended_idx on bpm.process_instance (tenant_id, definition_id, ended_at)
  where ended_at is not null and root_instance_id is null;
drop type if exists bpm.history_cleanup cascade;
create type bpm.history_cleanup as (instances int, activities int, events int);
comment on type bpm.history_cleanup is E'What one cleanup_history call removed.';
comment on column bpm.history_cleanup.instances is E'Process instances removed (call trees count every instance in them).';
comment on column bpm.history_cleanup.activities is E'Activity instance (history) rows removed.';
comment on column bpm.history_cleanup.events is E'Event log rows removed.';

--!include api/history.sql
--!include api/deploy.sql
--!include setup/grants.sql
select graphile_worker.add_job('bpm_cleanup_history', json_build_object('tenant_id', t.tenant_id),
  run_at => now() + interval '1 minute', job_key => 'bpm-cleanup:' || t.tenant_id, job_key_mode => 'preserve_run_at', max_attempts => 5)
from (select distinct tenant_id from bpm.process_definition) t;

--!include setup/ownership.sql
