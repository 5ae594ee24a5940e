-- Execute grants: each API function to exactly the roles its guard admits
-- (the guard still checks; the grant keeps others from reaching it at all).
revoke execute on all functions in schema bpm from public;
revoke execute on all functions in schema bpm_private from public;
grant execute on function bpm.deploy(jsonb) to bpm_admin, bpm_designer;
grant execute on function bpm.start_process(text, jsonb, text) to bpm_admin, bpm_user;
grant execute on function bpm.complete_task(uuid, jsonb) to bpm_admin, bpm_user;
grant execute on function bpm.claim_task(uuid) to bpm_admin, bpm_user;
grant execute on function bpm.unclaim_task(uuid) to bpm_admin, bpm_user;
grant execute on function bpm.set_assignee(uuid, text) to bpm_admin;
grant execute on function bpm.cancel_process_instance(uuid, text) to bpm_admin;
grant execute on function bpm.suspend_process_instance(uuid) to bpm_admin;
grant execute on function bpm.activate_process_instance(uuid) to bpm_admin;
grant execute on function bpm.set_variables(uuid, jsonb) to bpm_admin;
grant execute on function bpm.fetch_and_lock(text, text, int, interval) to bpm_admin, bpm_engine;
grant execute on function bpm.complete_external_task(uuid, text, jsonb) to bpm_admin, bpm_engine;
grant execute on function bpm.fail_external_task(uuid, text, text, int, interval) to bpm_admin, bpm_engine;
grant execute on function bpm.throw_bpmn_error(uuid, text, text, jsonb) to bpm_admin, bpm_engine;
grant execute on function bpm.retry_incident(uuid, int) to bpm_admin, bpm_engine;
grant execute on function bpm.events_after(bigint, uuid, int) to bpm_admin, bpm_designer, bpm_user, bpm_engine;
grant execute on function bpm.register_event_listener(text, interval) to bpm_admin, bpm_designer, bpm_user, bpm_engine;
grant execute on function bpm.correlate_message(text, text, jsonb, interval, text) to bpm_admin, bpm_user, bpm_engine;
grant execute on function bpm.broadcast_signal(text, jsonb) to bpm_admin, bpm_user, bpm_engine;
grant execute on function bpm.fire_timer(uuid) to bpm_admin, bpm_engine;
grant execute on function bpm.fire_due_timers(uuid, int) to bpm_admin, bpm_engine;
grant execute on function bpm.continue_async(uuid, boolean) to bpm_admin, bpm_engine;
grant execute on function bpm.process_task_deadline(uuid, text) to bpm_admin, bpm_engine;
grant execute on function bpm.migrate_process_instances(uuid[], uuid, jsonb) to bpm_admin;
grant execute on function bpm.modify_process_instance(uuid, jsonb) to bpm_admin;
