-- activity rows are appended inline by run__drain; the helper is unused
drop function if exists bpm_private.activity__add(bpm_private.run_state, uuid, text, text, text);
--!include engine/wait.sql
--!include setup/ownership.sql
