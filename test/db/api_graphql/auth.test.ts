/**
 * Authentication before GraphQL: without a valid token nothing reaches the
 * schema (401, or 403 for an authentic token that makes no API caller), and
 * no role is ever assumed by default. HS256 with the shared secret, and
 * RS256/ES256 through a JWKS endpoint (served here on a local port).
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { SignJWT, UnsecuredJWT, base64url, exportJWK, generateKeyPair, type CryptoKey, type JWK } from 'jose';
import { createTestDb, type TestDb } from '../../helpers/db';
import { AUDIENCE, ISSUER, SECRET_BYTES, startTestApi, token, type TestApi } from './support';

const TENANT = 'tenant-auth';
const QUERY = `{ processDefinitions { totalCount } }`;

let db: TestDb;
let t: TestApi;
let jwksServer: http.Server;
let ecKey: { privateKey: CryptoKey; publicKey: CryptoKey };
let rsaKey: { privateKey: CryptoKey; publicKey: CryptoKey };
let publicJwk: JWK;

beforeAll(async () => {
  ecKey = await generateKeyPair('ES256', { extractable: true });
  rsaKey = await generateKeyPair('RS256', { extractable: true });
  publicJwk = { ...(await exportJWK(ecKey.publicKey)), kid: 'ec-1', alg: 'ES256', use: 'sig' };
  const keys = [publicJwk, { ...(await exportJWK(rsaKey.publicKey)), kid: 'rsa-1', alg: 'RS256', use: 'sig' }];
  jwksServer = http.createServer((_req, res) => {
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ keys }));
  });
  await new Promise<void>((resolve) => jwksServer.listen(0, '127.0.0.1', resolve));
  const { port } = jwksServer.address() as AddressInfo;

  db = await createTestDb();
  t = await startTestApi(db, { auth: { jwksUrl: new URL(`http://127.0.0.1:${port}/.well-known/jwks.json`) } });
});

afterAll(async () => {
  await t?.close();
  await db?.close();
  await new Promise<void>((resolve) => (jwksServer ? jwksServer.close(() => resolve()) : resolve()));
});

async function post(headers: Record<string, string>): Promise<{ status: number; body: unknown; wwwAuthenticate: string | null }> {
  const res = await fetch(t.api.graphqlUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify({ query: QUERY }),
  });
  return { status: res.status, body: await res.json(), wwwAuthenticate: res.headers.get('www-authenticate') };
}

function bearer(jwt: string): Record<string, string> {
  return { authorization: `Bearer ${jwt}` };
}

const claims = { tenant: TENANT, sub: 'ada', roles: ['bpm_admin'] };
const now = (): number => Math.floor(Date.now() / 1000);

function expect401(reply: { status: number; body: unknown; wwwAuthenticate: string | null }, message: string | RegExp): void {
  expect(reply.status).toBe(401);
  expect(reply.wwwAuthenticate).toBe('Bearer error="invalid_token"');
  expect(reply.body).toEqual({ errors: [{ message: expect.stringMatching(message), extensions: { code: 'UNAUTHENTICATED' } }] });
}

describe('a valid token reaches GraphQL', () => {
  test('HS256 with the shared secret', async () => {
    const reply = await post(bearer(await token(claims)));
    expect(reply).toEqual({ status: 200, body: { data: { processDefinitions: { totalCount: 0 } } }, wwwAuthenticate: null });
  });

  test('ES256 signed by a key of the JWKS', async () => {
    const jwt = await new SignJWT(claims)
      .setProtectedHeader({ alg: 'ES256', kid: 'ec-1' })
      .setIssuer(ISSUER)
      .setAudience(AUDIENCE)
      .setExpirationTime('5m')
      .sign(ecKey.privateKey);
    expect((await post(bearer(jwt))).status).toBe(200);
  });

  test('RS256 signed by a key of the JWKS', async () => {
    const jwt = await new SignJWT(claims)
      .setProtectedHeader({ alg: 'RS256', kid: 'rsa-1' })
      .setIssuer(ISSUER)
      .setAudience(AUDIENCE)
      .setExpirationTime('5m')
      .sign(rsaKey.privateKey);
    expect((await post(bearer(jwt))).status).toBe(200);
  });
});

describe('401 before GraphQL', () => {
  test('no Authorization header', async () => {
    expect401(await post({}), /missing bearer token/);
  });

  test('not a bearer token', async () => {
    expect401(await post({ authorization: 'Basic YWRhOnNlY3JldA==' }), /Bearer <JWT>/);
  });

  test('not a JWT', async () => {
    expect401(await post(bearer('abc.def')), /malformed|invalid/);
  });

  test('expired', async () => {
    expect401(await post(bearer(await token(claims, { expiresAt: now() - 60 }))), 'token has expired');
  });

  test('without expiry (exp)', async () => {
    const jwt = await new SignJWT(claims).setProtectedHeader({ alg: 'HS256' }).setIssuer(ISSUER).setAudience(AUDIENCE).sign(SECRET_BYTES);
    expect401(await post(bearer(jwt)), /exp/);
  });

  test('signed with another secret (forged)', async () => {
    const forged = await token(claims, { secret: new TextEncoder().encode('not-the-secret-but-long-enough-for-hs256') });
    expect401(await post(bearer(forged)), 'token signature is invalid');
  });

  test('payload changed after signing', async () => {
    const [header, , signature] = (await token({ ...claims, roles: ['bpm_user'] })).split('.');
    const payload = base64url.encode(JSON.stringify({ ...claims, iss: ISSUER, aud: AUDIENCE, exp: now() + 600 }));
    expect401(await post(bearer(`${header}.${payload}.${signature}`)), 'token signature is invalid');
  });

  test('alg "none" (unsecured JWT)', async () => {
    const unsecured = new UnsecuredJWT(claims).setIssuer(ISSUER).setAudience(AUDIENCE).setExpirationTime('5m').encode();
    expect(unsecured.endsWith('.')).toBe(true);
    expect401(await post(bearer(unsecured)), /algorithm|malformed|invalid/);
  });

  test('HS256 keyed with the public JWK (algorithm confusion)', async () => {
    const jwt = await token(claims, { secret: new TextEncoder().encode(JSON.stringify(publicJwk)) });
    expect401(await post(bearer(jwt)), 'token signature is invalid');
  });

  test('ES256 from a key that is not in the JWKS', async () => {
    const stranger = await generateKeyPair('ES256');
    for (const kid of ['ec-1', 'unknown-kid']) {
      const jwt = await new SignJWT(claims)
        .setProtectedHeader({ alg: 'ES256', kid })
        .setIssuer(ISSUER)
        .setAudience(AUDIENCE)
        .setExpirationTime('5m')
        .sign(stranger.privateKey);
      expect401(await post(bearer(jwt)), /signature is invalid|signing key is unknown/);
    }
  });

  test('wrong issuer', async () => {
    const jwt = await new SignJWT(claims)
      .setProtectedHeader({ alg: 'HS256' })
      .setIssuer('https://evil.example/')
      .setAudience(AUDIENCE)
      .setExpirationTime('5m')
      .sign(SECRET_BYTES);
    expect401(await post(bearer(jwt)), 'token issuer is not accepted');
  });

  test('wrong audience', async () => {
    const jwt = await new SignJWT(claims)
      .setProtectedHeader({ alg: 'HS256' })
      .setIssuer(ISSUER)
      .setAudience('another-api')
      .setExpirationTime('5m')
      .sign(SECRET_BYTES);
    expect401(await post(bearer(jwt)), 'token audience is not accepted');
  });

  test('HS384 (an algorithm that is not allowed)', async () => {
    const jwt = await new SignJWT(claims)
      .setProtectedHeader({ alg: 'HS384' })
      .setIssuer(ISSUER)
      .setAudience(AUDIENCE)
      .setExpirationTime('5m')
      .sign(new Uint8Array(48).fill(7));
    expect401(await post(bearer(jwt)), 'token algorithm is not accepted');
  });
});

describe('403: authentic, but not an API caller', () => {
  const cases: Array<[string, Record<string, unknown>, RegExp]> = [
    ['no API role in the roles claim', { tenant: TENANT, sub: 'ada', roles: ['offline_access', 'admin'] }, /names no API role/],
    ['no roles claim at all', { tenant: TENANT, sub: 'ada' }, /names no API role/],
    ['no tenant', { sub: 'ada', roles: ['bpm_admin'] }, /no tenant/],
    ['an empty tenant', { tenant: ' ', sub: 'ada', roles: ['bpm_admin'] }, /no tenant/],
    ['a group name with a comma', { tenant: TENANT, sub: 'ada', roles: ['bpm_user'], groups: ['sales,hr'] }, /commas/],
  ];
  test.each(cases)('%s', async (_name, payload, message) => {
    const reply = await post(bearer(await token(payload)));
    expect(reply.status).toBe(403);
    expect(reply.body).toEqual({ errors: [{ message: expect.stringMatching(message), extensions: { code: 'FORBIDDEN' } }] });
  });
});

describe('role selection', () => {
  test('the first API role in claim order is used (never a more privileged one)', async () => {
    const jwt = await token({ tenant: TENANT, sub: 'uma', roles: ['uma_authorization', 'bpm_user', 'bpm_admin'] });
    const reply = await t.gql(jwt, `{ deployments { totalCount } }`);
    // bpm_user has no grant on bpm.deployment; bpm_admin would have one
    expect(reply.body.errors).toEqual([expect.objectContaining({ extensions: { code: '42501' } })]);
    const allowed = await t.gql(jwt, `{ processDefinitions { totalCount } }`);
    expect(allowed.body).toEqual({ data: { processDefinitions: { totalCount: 0 } } });
  });

  test('a space-separated roles string works like a list', async () => {
    const jwt = await token({ tenant: TENANT, sub: 'ada', roles: 'openid bpm_admin' });
    expect(await t.gql(jwt, `{ deployments { totalCount } }`)).toMatchObject({ status: 200, body: { data: { deployments: { totalCount: 0 } } } });
  });
});
