-- Review mend: an interrupting boundary event cancels its activity through
-- scope__cancel (host__cancel was its twin for single activities); call
-- activity continuations read the caller's definition once.
drop function if exists bpm_private.host__cancel(bpm_private.run_state, jsonb, uuid);
--!include engine/subscription.sql
--!include elements/call_activity.sql
--!include instance/modify.sql
-- A token leaving an element in a scope (outside the token loop: a task
-- completed, a catch event triggered, a scope completed) selects its flows
-- over the scope's locals too.
--!include engine/node.sql
-- Review mend: modification cancels through scope__cancel too (activity__cancel
-- was its twin for single activities); scope__cancel resolves the incidents
-- that waited on what it cancels (boundary events, completion conditions and
-- interrupting event subprocesses included).
drop function if exists bpm_private.activity__cancel(bpm_private.run_state, uuid);
--!include engine/scope_cancel.sql
--!include setup/ownership.sql
