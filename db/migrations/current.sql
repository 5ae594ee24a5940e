-- Compensation of multi-instance activities: each completed inner instance
-- is compensated by its own run of the handler, which sees the locals the
-- inner instance had (kept on its history row).
alter table bpm.activity_instance add column local_variables jsonb;
comment on column bpm.activity_instance.local_variables is E'A completed inner instance of a multi-instance activity with a compensation handler: the locals it had (element variable, loopCounter, input mappings), which its compensation handler sees; null otherwise.';
--!include elements/compensation.sql
--!include elements/multi_instance.sql
--!include engine/subscription.sql
--!include setup/ownership.sql
