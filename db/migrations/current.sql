-- Camunda 7 generated forms (camunda:formData): a user task's form carries
-- the fields; default values given as expressions are evaluated when the
-- task is created. user_task__form takes the static form and the spec.
drop function if exists bpm_private.user_task__form(jsonb, jsonb, text);
--!include elements/tasks.sql

-- A user's task inbox (bpm.task_inbox) reads the tasks offered to them per
-- identity (user or group) from bpm_private.task_offer, kept by a trigger
-- on bpm.user_task: one index range per identity in inbox order.
create table bpm_private.task_offer (
  tenant_id text not null,
  identity text not null,
  rank int not null,
  created_at timestamptz not null,
  task_id uuid not null,
  primary key (tenant_id, task_id, identity)
);
create index task_offer_inbox_idx on bpm_private.task_offer (tenant_id, identity, rank, created_at, task_id);
comment on table bpm_private.task_offer is E'Open unassigned user tasks by the identities they are offered to ("u:<user>", "g:<group>"), ranked as the inbox orders them (rank = -priority, then created_at); kept by triggers on bpm.user_task.';
--!include setup/policies.sql
--!include api/task_inbox.sql
insert into bpm_private.task_offer (tenant_id, identity, rank, created_at, task_id)
select t.tenant_id, i.identity, -t.priority, t.created_at, t.id
from bpm.user_task t
cross join lateral (
  select 'u:' || u as identity from unnest(t.candidate_users) u
  union
  select 'g:' || g from unnest(t.candidate_groups) g
) i
where t.state = 'open' and t.assignee is null;
--!include setup/grants.sql
--!include setup/ownership.sql
