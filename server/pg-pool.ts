/**
 * Connection failures of pooled clients. pg-pool reports a failure of an
 * idle client as the pool's 'error' event, but it stops listening to a client
 * while it is checked out; a checked-out client whose connection dies (the
 * server crashed or restarted, a network cut) emits 'error' itself, and an
 * 'error' event nobody listens to ends the Node process. The query in flight
 * on that client fails with the same error, which is where it is reported;
 * the client is dropped when it is released (pg marks it not queryable).
 */
import type pg from 'pg';

/** Listens to `pool`'s idle-client failures (onIdleError) and to failures of its checked-out clients. */
export function handlePoolErrors(pool: pg.Pool, onIdleError: (err: Error) => void): pg.Pool {
  pool.on('error', onIdleError);
  pool.on('connect', (client) => {
    client.on('error', () => undefined);
  });
  return pool;
}
