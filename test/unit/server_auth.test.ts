/**
 * The authenticator keeps tokens that verified until they expire (a client
 * sends the same token with every request): a kept token authenticates the
 * same principal, stops working at its expiry like any other, and a token
 * that differs in any character (a forged signature) is verified, not looked up.
 */
import { createAuthenticator } from '../../server/auth';
import { serverConfigFromEnv } from '../../server/config';
import { mintToken } from '../../server/token';

const config = serverConfigFromEnv({ PGBPM_JWT_SECRET: 'y'.repeat(32) });
const auth = { ...config.auth, clockToleranceSeconds: 0 };

test('a verified token is kept until it expires, then refused', async () => {
  const authenticator = createAuthenticator(auth);
  const token = await mintToken({ tenant: 't1', user: 'u1', roles: ['bpm_user'] }, { secret: auth.secret!, claims: auth.claims, expiresIn: '2s' });
  const first = await authenticator.authenticate(`Bearer ${token}`);
  const again = await authenticator.authenticate(`Bearer ${token}`);
  expect(first.ok).toBe(true);
  expect(again).toBe(first); // the kept result itself: not verified again
  await new Promise((resolve) => setTimeout(resolve, 2100));
  const late = await authenticator.authenticate(`Bearer ${token}`);
  expect(late).toMatchObject({ ok: false, status: 401, message: 'token has expired' });
});

test('a token with a changed signature is verified (and refused), not taken for the kept one', async () => {
  const authenticator = createAuthenticator(auth);
  const token = await mintToken({ tenant: 't1', user: 'u1', roles: ['bpm_user'] }, { secret: auth.secret!, claims: auth.claims, expiresIn: '1h' });
  expect((await authenticator.authenticate(`Bearer ${token}`)).ok).toBe(true);
  const last = token.at(-2) === 'A' ? 'B' : 'A';
  const forged = `${token.slice(0, -2)}${last}${token.slice(-1)}`;
  expect(await authenticator.authenticate(`Bearer ${forged}`)).toMatchObject({ ok: false, status: 401, message: 'token signature is invalid' });
});
