-- Camunda 7 generated forms (camunda:formData): a user task's form carries
-- the fields; default values given as expressions are evaluated when the
-- task is created. user_task__form takes the static form and the spec.
drop function if exists bpm_private.user_task__form(jsonb, jsonb, text);
--!include elements/tasks.sql
--!include setup/ownership.sql
