--! Previous: sha1:d35f0e8bfe364ccd7c3566f9152479b4965c42f3
--! Hash: sha1:77225d7417dce50459d0e803edf25b0558d3fd23
--! Message: A user's own tasks are read through an index on the assignee

-- "My tasks": the open tasks assigned to a user are found through an index
-- on the assignee, not by reading the tenant's open tasks (35 ms at 94,000
-- open tasks for a user with 50). Not partial: PostGraphile passes the state
-- as a parameter, which a partial index's predicate cannot match.
create index user_task_assignee_idx on bpm.user_task (tenant_id, assignee, state, priority desc, created_at, id);
comment on index bpm.user_task_assignee_idx is E'Tasks of an assignee by state in inbox order (userTasks(condition: {assignee, state}), a user''s own tasks).';
