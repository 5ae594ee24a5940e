/**
 * The API's withPgClient (server/pg-adaptor.ts): a statement is its own
 * transaction, begin + settings, the statement and commit written at once on a
 * pipelined connection; withTransaction opens one for the rest of the call.
 * One connection in the pool, so every call reuses the previous one's session.
 */
import pg from 'pg';
import { makePipelinedWithPgClient, setupText } from '../../../server/pg-adaptor';
import { createTestDb, type TestDb } from '../../helpers/db';

let db: TestDb;
let pool: pg.Pool;
const settings = { role: 'bpm_user', 'bpm.tenant_id': 't1', 'bpm.user_id': 'alice', 'bpm.groups': '' };

beforeAll(async () => {
  db = await createTestDb();
  pool = new pg.Pool({ connectionString: db.urls.authenticator, max: 1, pipeline: true });
});
afterAll(async () => {
  await pool.end();
  await db.close();
});

/** The socket's write methods, to see what goes out in one write. */
interface SocketWrites {
  _write: (chunk: Buffer, encoding: BufferEncoding, cb: (err?: Error | null) => void) => void;
  _writev: (chunks: Array<{ chunk: Buffer }>, cb: (err?: Error | null) => void) => void;
}

/** Who the session is, and whether this statement runs inside an explicit transaction (begun by an earlier statement). */
const session = `select current_user::text u, current_setting('bpm.tenant_id', true) t, transaction_timestamp() < statement_timestamp() tx`;

describe('pipelined withPgClient', () => {
  const withPgClient = () => makePipelinedWithPgClient(pool);

  it('runs each statement as the settings say, in a transaction of its own, and leaves nothing on the connection', async () => {
    const rows = await withPgClient()(settings, async (client) => {
      const a = await client.query<{ u: string; t: string; tx: boolean; xid: string }>({ text: `${session}, pg_catalog.pg_current_xact_id()::text xid` });
      const b = await client.query<{ u: string; t: string; tx: boolean; xid: string }>({ text: `${session}, pg_catalog.pg_current_xact_id()::text xid`, name: 'pgbpm_test_xid' });
      return [a.rows[0], b.rows[0]];
    });
    expect(rows[0]).toMatchObject({ u: 'bpm_user', t: 't1', tx: true });
    expect(rows[1]).toMatchObject({ u: 'bpm_user', t: 't1', tx: true });
    expect(rows[1]?.xid).not.toBe(rows[0]?.xid); // committed one by one
    const after = await withPgClient()(null, async (client) => (await client.query<{ u: string; t: string | null }>({ text: session })).rows[0]);
    expect(after).toMatchObject({ u: 'bpm_authenticator', t: '', tx: false });
  });

  it('writes begin + settings, the statement and commit in one socket write', async () => {
    const client = await pool.connect();
    const stream = (client as unknown as { connection: { stream: SocketWrites } }).connection.stream;
    client.release();
    const writes: string[] = [];
    const { _write, _writev } = stream;
    stream._write = (chunk, encoding, cb) => {
      writes.push(chunk.toString('latin1'));
      _write.call(stream, chunk, encoding, cb);
    };
    stream._writev = (chunks, cb) => {
      writes.push(Buffer.concat(chunks.map((c) => c.chunk)).toString('latin1'));
      _writev.call(stream, chunks, cb);
    };
    try {
      const answer = await withPgClient()(settings, async (c) => (await c.query<{ m: string }>({ text: `select 'pgbpm-marker' m` })).rows[0]?.m);
      expect(answer).toBe('pgbpm-marker');
    } finally {
      stream._write = _write;
      stream._writev = _writev;
    }
    const written = writes.filter((w) => w.includes('pgbpm-marker'));
    expect(written).toHaveLength(1);
    expect(written[0]).toContain('begin; select pg_catalog.set_config');
    expect(written[0]).toContain('commit');
  });

  it('fails the call when its commit fails, and keeps the connection usable', async () => {
    // the statement succeeds; the deferred check it broke fails its commit
    const deferred = withPgClient()(settings, async (client) => {
      await client.query({ text: `create temp table pgbpm_test_deferred (id int unique deferrable initially deferred) on commit drop; insert into pgbpm_test_deferred values (1), (1)` });
      return 'answered before the commit';
    });
    await expect(deferred).rejects.toMatchObject({ code: '23505' });
    const after = await withPgClient()(settings, async (client) => (await client.query<{ u: string; tx: boolean }>({ text: session })).rows[0]);
    expect(after).toMatchObject({ u: 'bpm_user', t: 't1', tx: true });
  });

  it('runs a withTransaction and every later statement of the call in one transaction', async () => {
    const xids = await withPgClient()({ ...settings, role: 'bpm_admin' }, async (client) => {
      const inner = await client.withTransaction(async (tx) => (await tx.query<{ xid: string }>({ text: 'select pg_catalog.pg_current_xact_id()::text xid' })).rows[0]?.xid);
      const later = (await client.query<{ xid: string }>({ text: 'select pg_catalog.pg_current_xact_id()::text xid' })).rows[0]?.xid;
      return [inner, later];
    });
    expect(xids[0]).toBeDefined();
    expect(xids[1]).toBe(xids[0]);
  });

  it('rolls back a failed request, reports its error and keeps the connection usable', async () => {
    const failing = withPgClient()(settings, async (client) => {
      await client.query({ text: `select bpm.start_process('no_such_process')` });
    });
    await expect(failing).rejects.toMatchObject({ code: 'BP101' });
    const after = await withPgClient()(settings, async (client) => (await client.query<{ u: string; tx: boolean }>({ text: session })).rows[0]);
    expect(after).toMatchObject({ u: 'bpm_user', t: 't1', tx: true });
  });

  it('fails the whole request with the set-up error when a setting cannot be applied', async () => {
    let ran = false;
    const failing = withPgClient()({ ...settings, role: 'no_such_role' }, async (client) => {
      ran = true;
      return client.query({ text: 'select 1' });
    });
    await expect(failing).rejects.toThrow(/no_such_role/);
    expect(ran).toBe(true); // the statement was written behind the set-up, and met an aborted transaction
    const after = await withPgClient()(null, async (client) => (await client.query<{ u: string }>({ text: session })).rows[0]);
    expect(after).toMatchObject({ u: 'bpm_authenticator', tx: false });
  });

  it('nests withTransaction as a savepoint: an inner failure undoes only the inner work', async () => {
    const result = await withPgClient()({ ...settings, role: 'bpm_admin' }, async (client) => {
      return client.withTransaction(async (outer) => {
        await outer.query({ text: `select set_config('pgbpm.test', 'outer', true)` });
        await outer
          .withTransaction(async (tx) => {
            await tx.query({ text: `select set_config('pgbpm.test', 'inner', true)` });
            await tx.query({ text: 'select 1/0' });
          })
          .catch(() => undefined);
        return (await outer.query<{ v: string }>({ text: `select current_setting('pgbpm.test') v` })).rows[0]?.v;
      });
    });
    expect(result).toBe('outer');
  });

  it('runs a request without settings outside a transaction', async () => {
    const tx = await withPgClient()(null, async (client) => (await client.query<{ tx: boolean }>({ text: session })).rows[0]?.tx);
    expect(tx).toBe(false);
  });

  it('quotes setting values as literals', () => {
    const client = new pg.Client();
    expect(setupText(client, [['bpm.user_id', "o'brien\\"]])).toBe(
      "begin; select pg_catalog.set_config('bpm.user_id',  E'o''brien\\\\', true)", // pg's escapeLiteral: ' E'…' for a backslash
    );
  });
});
