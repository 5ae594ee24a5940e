-- bpm: the public contract (readable tables and API functions, exposed by GraphQL).
-- bpm_private: engine internals, never granted to API roles.
create schema if not exists bpm;
create schema if not exists bpm_private;
revoke all on schema bpm from public;
revoke all on schema bpm_private from public;
grant usage on schema bpm to bpm_admin, bpm_designer, bpm_user, bpm_engine;
-- No function is executable by anyone unless granted explicitly.
alter default privileges revoke execute on functions from public;
alter default privileges in schema bpm revoke execute on functions from public;
alter default privileges in schema bpm_private revoke execute on functions from public;
comment on schema bpm is E'pgbpm public contract: process definitions, instances, tasks, history and the engine''s API functions. Every table is filtered by row-level security to the caller''s tenant (setting bpm.tenant_id).';
comment on schema bpm_private is E'pgbpm internals (tokens, run state, helpers). Not part of the contract; never granted to API roles.';
