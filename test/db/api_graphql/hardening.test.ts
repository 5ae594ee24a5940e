/**
 * The API in production mode (NODE_ENV=production): no introspection, no
 * GraphiQL, a request body limit; and which errors clients see (engine
 * errors with their SQLSTATE, everything else masked with a logged id).
 */
import { SafeError } from 'postgraphile/grafast';
import { GraphQLError } from 'postgraphile/graphql';
import { makeMaskError } from '../../../server/errors';
import { createTestDb, type TestDb } from '../../helpers/db';
import { startTestApi, token, type TestApi } from './support';

const TENANT = 'tenant-h';
const LIMIT = 64 * 1024;

let db: TestDb;
let t: TestApi;
let admin: string;

beforeAll(async () => {
  db = await createTestDb();
  t = await startTestApi(db, { production: true, maxRequestBytes: LIMIT });
  admin = await token({ tenant: TENANT, sub: 'ada', roles: ['bpm_admin'] });
});

afterAll(async () => {
  await t?.close();
  await db?.close();
});

describe('production mode', () => {
  test('introspection is rejected', async () => {
    for (const query of ['{ __schema { types { name } } }', '{ __type(name: "UserTask") { fields { name } } }']) {
      const reply = await t.gql(admin, query);
      expect(reply.body.data ?? null).toBeNull();
      expect(reply.body.errors?.[0]?.message).toMatch(/introspection/i);
    }
  });

  test('ordinary queries still work (and __typename is not introspection)', async () => {
    expect(await t.data(admin, '{ __typename processDefinitions { totalCount } }')).toEqual({
      __typename: 'Query',
      processDefinitions: { totalCount: 0 },
    });
  });

  test('no GraphiQL (Ruru) and no static assets', async () => {
    for (const path of ['/graphiql', '/ruru-static/ruru.js', '/']) {
      const res = await fetch(`${t.api.url}${path}`, { headers: { accept: 'text/html' } });
      expect(res.status).toBe(404);
    }
  });

  test('a request body over the limit is refused before GraphQL', async () => {
    const res = await fetch(t.api.graphqlUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${admin}` },
      body: JSON.stringify({ query: `{ __typename }`, variables: { padding: 'x'.repeat(LIMIT) } }),
    });
    expect(res.status).toBe(413);
  });

  test('GraphQL over GET is not offered', async () => {
    const res = await fetch(`${t.api.graphqlUrl}?query=${encodeURIComponent('{ __typename }')}`, {
      headers: { authorization: `Bearer ${admin}`, accept: 'application/json' },
    });
    expect(res.status).toBeGreaterThanOrEqual(400);
    expect(res.status).toBeLessThan(500);
  });

  test('engine errors still reach the client with their SQLSTATE', async () => {
    const reply = await t.gql(admin, `mutation { startProcess(input: { processKey: "nope" }) { result { id } } }`);
    expect(reply.body.errors).toEqual([expect.objectContaining({ extensions: { code: 'BP101' } })]);
  });

  test('no x-powered-by header', async () => {
    const res = await fetch(`${t.api.url}/health`);
    expect(res.headers.get('x-powered-by')).toBeNull();
  });
});

describe('maskError', () => {
  const logged: Array<[string, unknown]> = [];
  const mask = makeMaskError((message, error) => logged.push([message, error]));
  const wrap = (original: Error): GraphQLError => new GraphQLError(original.message, { path: ['field'], originalError: original });
  const pgError = (code: string, message: string): Error => Object.assign(new Error(message), { code });

  test('engine errors (BP…), 42501, class 22 and the transient 40001/40P01 keep message and SQLSTATE', () => {
    for (const code of ['BP203', 'BP001', '42501', '22012', '40001', '40P01']) {
      const masked = mask(wrap(pgError(code, `message ${code}`)));
      expect(masked.message).toBe(`message ${code}`);
      expect(masked.extensions).toEqual({ code });
      expect(masked.path).toEqual(['field']);
    }
    expect(logged).toEqual([]);
  });

  test('other errors are masked, with an error id that is logged', () => {
    for (const original of [pgError('XX000', 'relation bpm_private.secret …'), pgError('23505', 'duplicate key'), new TypeError('x is undefined')]) {
      const masked = mask(wrap(original));
      const errorId = masked.extensions.errorId;
      expect(errorId).toMatch(/^[0-9a-f]{12}$/);
      expect(masked.message).toBe(`internal error (id ${String(errorId)})`);
      expect(masked.extensions).toEqual({ code: 'INTERNAL_SERVER_ERROR', errorId });
      expect(logged.pop()).toEqual([`internal error ${String(errorId)}`, original]);
    }
  });

  test('an unreachable or lost database is DATABASE_UNAVAILABLE (retry later), with an error id that is logged', () => {
    const socketError = (code: string): Error => Object.assign(new Error(`connect ${code} 127.0.0.1:5432`), { code, errno: -111, syscall: 'connect' });
    const originals = [
      pgError('57P01', 'terminating connection due to administrator command'),
      pgError('57P02', 'terminating connection because of crash of another server process'),
      pgError('57P03', 'the database system is starting up'),
      pgError('08006', 'connection failure'),
      pgError('53300', 'sorry, too many clients already'),
      socketError('ECONNREFUSED'),
      socketError('ECONNRESET'),
      new Error('Connection terminated unexpectedly'),
      new Error('timeout exceeded when trying to connect'),
      new Error('Client has encountered a connection error and is not queryable'),
    ];
    for (const original of originals) {
      const masked = mask(wrap(original));
      const errorId = String(masked.extensions.errorId);
      expect(masked.extensions).toEqual({ code: 'DATABASE_UNAVAILABLE', errorId });
      expect(masked.message).toMatch(new RegExp(`^database unavailable \\(id ${errorId}\\): retry later`));
      expect(masked.message).not.toContain('127.0.0.1');
      expect(logged.pop()).toEqual([`database unavailable ${errorId}`, original]);
    }
  });

  test('GraphQL errors and SafeErrors pass unchanged', () => {
    const validation = new GraphQLError('Cannot query field "x" on type "Query".');
    expect(mask(validation)).toBe(validation);
    const safe = mask(wrap(new SafeError('files must not be empty', { code: 'BAD_USER_INPUT' })));
    expect(safe.message).toBe('files must not be empty');
    expect(safe.extensions).toEqual({ code: 'BAD_USER_INPUT' });
  });
});
