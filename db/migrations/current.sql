-- Review mend: an interrupting boundary event cancels its activity through
-- scope__cancel (host__cancel was its twin for single activities); call
-- activity continuations read the caller's definition once.
drop function if exists bpm_private.host__cancel(bpm_private.run_state, jsonb, uuid);
--!include engine/subscription.sql
--!include elements/call_activity.sql
--!include instance/modify.sql
--!include setup/ownership.sql
