-- Events: every state change the engine makes is appended to bpm.event in
-- the same transaction (durable, readable through RLS), and when the tenant
-- has a live subscriber the engine NOTIFYs channel `bpm_event` with an event
-- id (a number, never tenant data; a wake-up call: read with events_after).
--
-- Event ids: (transaction id << 20) + ordinal within the transaction. Ids
-- therefore follow transaction-id order, and a reader that only returns
-- events of transactions older than every transaction still running
-- (pg_snapshot_xmin) never has to return an id below one it already
-- returned: resuming "after id N" has no gaps and no duplicates.
--
-- NOTIFY makes committing transactions queue behind one another (Postgres
-- serialises commits that notify), so the engine only notifies while a
-- server has registered a subscriber of the tenant (register_event_listener);
-- readers poll as a fallback.

create or replace function bpm_private.event__next_ids(n int)
returns bigint
language plpgsql
volatile
set search_path = ''
as $$
declare
  v_ord int := coalesce(nullif(pg_catalog.current_setting('bpm.event_ord', true), '')::int, 0);
begin
  if v_ord < 0 or v_ord + n >= 1048576 then
    raise exception 'more than 1048575 events in one transaction' using errcode = 'BP307';
  end if;
  perform pg_catalog.set_config('bpm.event_ord', (v_ord + n)::text, true);
  -- the first id is the returned base + 1
  return (pg_catalog.pg_current_xact_id()::text::bigint << 20) + v_ord;
end;
$$;
comment on function bpm_private.event__next_ids(int) is E'Reserves n event ids of the current transaction; returns the id before the first (BP307 past 2^20 - 1 per transaction).';

create or replace function bpm_private.event__notify(tenant_id text, last_id bigint)
returns void
language plpgsql
volatile
set search_path = ''
as $$
begin
  if exists (select 1 from bpm_private.event_listener l
             where l.tenant_id = event__notify.tenant_id and l.expires_at > pg_catalog.now()) then
    perform pg_catalog.pg_notify('bpm_event', last_id::text);
  end if;
end;
$$;
comment on function bpm_private.event__notify(text, bigint) is E'Notifies channel bpm_event (payload: an event id) when the tenant has a live subscriber.';

create or replace function bpm_private.event__emit(tenant_id text, instance_id uuid, kinds text[], subjects uuid[], elements text[])
returns void
language plpgsql
volatile
set search_path = ''
as $$
declare
  v_n int := pg_catalog.cardinality(kinds);
  v_base bigint;
begin
  if v_n = 0 then
    return;
  end if;
  v_base := bpm_private.event__next_ids(v_n);
  insert into bpm.event (tenant_id, id, instance_id, kind, subject_id, element_id)
  select event__emit.tenant_id, v_base + u.ord, event__emit.instance_id, u.kind, u.subject, u.el
  from unnest(kinds, subjects, elements) with ordinality as u(kind, subject, el, ord);
  perform bpm_private.event__notify(tenant_id, v_base + v_n);
end;
$$;
comment on function bpm_private.event__emit(text, uuid, text[], uuid[], text[]) is E'Appends events of one instance (or of none) and notifies live subscribers.';

create or replace function bpm.events_after(after_id bigint default 0, instance_id uuid default null, max_events int default 500)
returns setof bpm.event
language sql
stable
set search_path = ''
as $$
  -- only transactions older than every running one: their events are final,
  -- and any event still to come gets a higher id
  select e.* from bpm.event e
  where e.tenant_id = (select nullif(pg_catalog.current_setting('bpm.tenant_id', true), ''))
    and e.id > coalesce(events_after.after_id, 0)
    and e.id < (pg_catalog.pg_snapshot_xmin(pg_catalog.pg_current_snapshot())::text::bigint << 20)
    and (events_after.instance_id is null or e.instance_id = events_after.instance_id)
  order by e.id
  limit least(greatest(coalesce(max_events, 500), 1), 10000);
$$;
comment on function bpm.events_after(bigint, uuid, int) is E'Events visible to the caller with an id above after_id (of one instance, if given), oldest first, at most max_events (1..10000). Only events of finished transactions older than every running one are returned, so resuming from the last id seen never skips or repeats an event. Roles: every API role (rows filtered by row-level security).';

create or replace function bpm_private.lease__check(listener_id text, ttl interval)
returns void
language plpgsql
immutable
set search_path = ''
as $$
begin
  if coalesce(listener_id, '') = '' or pg_catalog.length(listener_id) > 200 then
    raise exception 'invalid argument: listener_id must be 1 to 200 characters' using errcode = 'BP401';
  end if;
  if ttl is null or ttl < interval '0' or ttl > interval '1 hour' then
    raise exception 'invalid argument: ttl must be between 0 (release the lease) and 1 hour' using errcode = 'BP401';
  end if;
end;
$$;
comment on function bpm_private.lease__check(text, interval) is E'Checks the arguments of a NOTIFY lease (event or task listener): BP401 unless listener_id has 1 to 200 characters and ttl is between 0 (a release) and 1 hour.';

create or replace function bpm.register_event_listener(listener_id text, ttl interval default '30 seconds')
returns timestamptz
language plpgsql
volatile
security definer
set search_path = ''
set plan_cache_mode = force_generic_plan
as $$
declare
  v_tenant text := bpm_private.require_context(array['bpm_admin', 'bpm_designer', 'bpm_user', 'bpm_engine'], 'listen for events');
  v_expires timestamptz;
begin
  perform bpm_private.lease__check(listener_id, ttl);
  -- expired leases go; a ttl of 0 releases this one
  delete from bpm_private.event_listener l where l.tenant_id = v_tenant
    and (l.expires_at < pg_catalog.now() or (ttl = interval '0' and l.listener_id = register_event_listener.listener_id));
  if ttl = interval '0' then
    return pg_catalog.now();
  end if;
  insert into bpm_private.event_listener (tenant_id, listener_id, expires_at)
  values (v_tenant, register_event_listener.listener_id, pg_catalog.now() + ttl)
  on conflict on constraint event_listener_pkey do update set expires_at = excluded.expires_at
  returning event_listener.expires_at into v_expires;
  return v_expires;
end;
$$;
comment on function bpm.register_event_listener(text, interval) is E'Server-side: while registered (until ttl passes; renew it), transitions of the caller''s tenant NOTIFY channel bpm_event. A ttl of 0 releases the lease at once. Returns the expiry. Errors: BP401 malformed arguments. Roles: every API role.';
