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
--!include setup/ownership.sql
