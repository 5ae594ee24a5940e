/**
 * The API's withPgClient (server/pg-adaptor.ts): begin + settings written with
 * the request's first statement on a pipelined connection. One connection in
 * the pool, so every request reuses the previous one's session.
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

/** Who the session is, and whether this statement runs inside an explicit transaction (begun by an earlier statement). */
const session = `select current_user::text u, current_setting('bpm.tenant_id', true) t, transaction_timestamp() < statement_timestamp() tx`;

describe('pipelined withPgClient', () => {
  const withPgClient = () => makePipelinedWithPgClient(pool);

  it('runs the request as the settings say, in one transaction, and leaves nothing on the connection', async () => {
    const rows = await withPgClient()(settings, async (client) => {
      const a = await client.query<{ u: string; t: string; now: string }>({ text: `select current_user::text u, current_setting('bpm.tenant_id') t, now()::text now` });
      const b = await client.query<{ now: string }>({ text: 'select now()::text now', name: 'pgbpm_test_now' });
      return [a.rows[0], b.rows[0]];
    });
    expect(rows[0]).toMatchObject({ u: 'bpm_user', t: 't1' });
    expect(rows[1]?.now).toBe(rows[0]?.now); // same transaction
    const after = await withPgClient()(null, async (client) => (await client.query<{ u: string; t: string | null }>({ text: session })).rows[0]);
    expect(after).toMatchObject({ u: 'bpm_authenticator', t: '', tx: false });
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
      await client.query({ text: `select set_config('pgbpm.test', 'outer', true)` });
      await client
        .withTransaction(async (tx) => {
          await tx.query({ text: `select set_config('pgbpm.test', 'inner', true)` });
          await tx.query({ text: 'select 1/0' });
        })
        .catch(() => undefined);
      return (await client.query<{ v: string }>({ text: `select current_setting('pgbpm.test') v` })).rows[0]?.v;
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
