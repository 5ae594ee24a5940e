-- camunda:variableName / variableEvents on conditional events: re-evaluated
-- only when that variable changes (by those kinds of change).
drop function if exists bpm_private.conditions__check(text, uuid);
--!include engine/condition.sql
--!include engine/run.sql
--!include engine/subscription.sql
--!include api/instances.sql
--!include instance/migrate.sql
--!include setup/ownership.sql
