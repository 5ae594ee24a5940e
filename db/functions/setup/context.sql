-- The caller's role: the role set with SET ROLE (the API roles are entered
-- that way), else the login role. Inside a security definer function
-- current_user is bpm_owner, but the `role` setting still names the caller;
-- it can only be changed by SET ROLE, which Postgres permission-checks.
create or replace function bpm_private.caller_role()
returns text
language plpgsql
stable
set search_path = ''
as $$
declare
  v_role text := pg_catalog.current_setting('role');
begin
  if v_role is null or v_role = 'none' then
    return session_user::text;
  end if;
  return v_role;
end;
$$;
comment on function bpm_private.caller_role() is E'Role of the caller of an API function (SET ROLE value, else the session user).';

-- Guard clause for every API function: the caller must act as one of
-- `allowed` and have a tenant. Returns the tenant id.
-- Raises BP002 (role not allowed) or BP001 (no tenant).
create or replace function bpm_private.require_context(allowed text[], action text)
returns text
language plpgsql
stable
set search_path = ''
as $$
declare
  v_role text := bpm_private.caller_role();
  v_tenant text := nullif(pg_catalog.current_setting('bpm.tenant_id', true), '');
begin
  if not (v_role = any(allowed)) then
    raise exception 'permission denied: role % may not %', v_role, action
      using errcode = 'BP002', hint = 'allowed roles: ' || pg_catalog.array_to_string(allowed, ', ');
  end if;
  if v_tenant is null then
    raise exception 'no tenant: set bpm.tenant_id before calling %', action
      using errcode = 'BP001';
  end if;
  return v_tenant;
end;
$$;
comment on function bpm_private.require_context(text[], text) is E'Permission check first: role allowed and tenant set; returns the tenant id.';

create or replace function bpm_private.current_user_id()
returns text
language plpgsql
stable
set search_path = ''
as $$
begin
  return nullif(pg_catalog.current_setting('bpm.user_id', true), '');
end;
$$;
comment on function bpm_private.current_user_id() is E'The acting user (bpm.user_id), or null.';

create or replace function bpm_private.current_groups()
returns text[]
language plpgsql
stable
set search_path = ''
as $$
begin
  return coalesce(pg_catalog.string_to_array(nullif(pg_catalog.current_setting('bpm.groups', true), ''), ','), '{}');
end;
$$;
comment on function bpm_private.current_groups() is E'The acting user''s groups (bpm.groups, comma-separated).';

create or replace function bpm_private.require_object(variables jsonb, what text)
returns jsonb
language plpgsql
immutable
set search_path = ''
as $$
begin
  if variables is null then
    return '{}'::jsonb;
  end if;
  if pg_catalog.jsonb_typeof(variables) <> 'object' then
    raise exception 'invalid argument: % must be a JSON object, got %', what, pg_catalog.jsonb_typeof(variables)
      using errcode = 'BP401';
  end if;
  return variables;
end;
$$;
comment on function bpm_private.require_object(jsonb, text) is E'Validates that variables are a JSON object (null = {}); raises BP401.';
