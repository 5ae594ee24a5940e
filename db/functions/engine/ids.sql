-- Ids. Everything the engine creates gets a time-ordered UUID (version 7,
-- RFC 9562: 48 bits of Unix milliseconds, then random bits), so new rows
-- land at the right edge of every index on an id or an instance id instead of
-- on a random leaf page: after each checkpoint a random key dirties (and
-- writes a full-page image of) a new leaf page per insert, a time-ordered
-- one the same few pages (bench/README: WAL per transition).
create or replace function bpm_private.uuid_v7()
returns uuid
language plpgsql
volatile
set search_path = ''
as $$
declare
  -- a random (version 4) UUID whose first 6 bytes become the time and whose
  -- version nibble becomes 7; its variant bits are already RFC 9562's
  v_bytes bytea := pg_catalog.overlay(pg_catalog.uuid_send(pg_catalog.gen_random_uuid()),
    pg_catalog.substr(pg_catalog.int8send((pg_catalog.date_part('epoch', pg_catalog.clock_timestamp()) * 1000)::bigint), 3), 1, 6);
begin
  return pg_catalog.encode(pg_catalog.set_byte(v_bytes, 6, (pg_catalog.get_byte(v_bytes, 6) & 15) | 112), 'hex')::uuid;
end;
$$;
comment on function bpm_private.uuid_v7() is E'A new time-ordered UUID (version 7): the ids of instances, activity instances, tasks, tokens and subscriptions.';

-- Ids for many new rows of one call (the inner instances of a
-- multi-instance activity): a new UUIDv7, then the ones after it, counting
-- up its last 48 (random) bits (RFC 9562, "monotonic random"): one random
-- draw and one clock reading for all of them. Two blocks collide only when
-- their first 74 bits (the millisecond and 26 random bits) are equal and
-- their counted ranges overlap: about n * m / 2^74 for blocks of n and m ids.
create or replace function bpm_private.uuid_v7_block(n int)
returns uuid[]
language plpgsql
volatile
set search_path = ''
as $$
declare
  v_first text := bpm_private.uuid_v7()::text;
  v_seq bigint := ('x' || pg_catalog.right(v_first, 12))::bit(48)::bigint;
begin
  return array(
    select (pg_catalog.left(v_first, 24) || pg_catalog.lpad(pg_catalog.to_hex((v_seq + i) & 281474976710655), 12, '0'))::uuid
    from pg_catalog.generate_series(0, n - 1) as i);
end;
$$;
comment on function bpm_private.uuid_v7_block(int) is E'n new time-ordered ids: a new UUIDv7 and the n - 1 after it (counting up its last 48 bits).';
