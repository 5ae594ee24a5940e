/**
 * The built-in HTTP connector end to end: a service task with topic `http`
 * whose variables describe the request, served by the worker, against a
 * local HTTP server; refused hosts end in an incident that says why.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type pg from 'pg';
import { createTestDb, type TestDb } from '../../helpers/db';
import { deployProcess } from '../../helpers/engine';
import { externalTaskBody, externalTaskOf, incidents, instance, start } from '../api/support';
import { startTestWorker, waitFor, type TestWorker } from './support';

// waits poll the database for states the worker reaches; on a loaded machine that can take a while
jest.setTimeout(60_000);

const TENANT = 'http-t';

let db: TestDb;
let admin: pg.Client;
let worker: TestWorker;
let server: http.Server;
let port: number;
let otherHits = 0;
let other: http.Server;
let otherPort: number;

beforeAll(async () => {
  other = http.createServer((_req, res) => {
    otherHits += 1;
    res.end('other');
  });
  await new Promise<void>((resolve) => other.listen(0, '127.0.0.1', resolve));
  otherPort = (other.address() as AddressInfo).port;
  server = http.createServer((req, res) => {
    if (req.url === '/orders') {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString('utf8')));
      req.on('end', () => {
        res.setHeader('content-type', 'application/json');
        res.statusCode = 201;
        res.end(JSON.stringify({ id: 'order-1', received: JSON.parse(body) as unknown }));
      });
      return;
    }
    res.statusCode = 302;
    res.setHeader('location', `http://localhost:${otherPort}/`);
    res.end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as AddressInfo).port;

  db = await createTestDb();
  const designer = await db.connectAs({ role: 'bpm_designer', tenant: TENANT });
  await deployProcess(designer, 'call_api', externalTaskBody('http'));
  await designer.end();
  admin = await db.connectAs({ role: 'bpm_admin', tenant: TENANT, user: 'boss' });
  worker = await startTestWorker(db, {
    tenants: [TENANT],
    http: { topic: 'http', options: { allowHosts: [`127.0.0.1:${port}`], timeoutMs: 5000 } },
  });
});

afterAll(async () => {
  await worker?.stop();
  await db?.close();
  await new Promise((resolve) => server.close(resolve));
  await new Promise((resolve) => other.close(resolve));
});

test('a request to an allowed host: the response lands in the result variable and the instance goes on', async () => {
  const inst = await start(admin, 'call_api', {
    httpUrl: `http://127.0.0.1:${port}/orders`,
    httpMethod: 'POST',
    httpBody: { sku: 'A-1', qty: 2 },
    httpResultVariable: 'orderResponse',
  });
  const done = await waitFor('the instance to complete', async () => {
    const i = await instance(db.root, inst.id);
    return i.state === 'completed' ? i : undefined;
  });
  expect(done.variables.orderResponse).toMatchObject({ status: 201, body: { id: 'order-1', received: { sku: 'A-1', qty: 2 } } });
});

test.each([
  ['a host not on the allow-list', () => `http://localhost:${otherPort}/`, () => `request to http://localhost:${otherPort} refused`],
  ['a redirect to a host not on the allow-list', () => `http://127.0.0.1:${port}/elsewhere`, () => `redirect 1 to http://localhost:${otherPort} refused`],
])('%s: refused without retries, an incident says why, the host is never called', async (_name, target, reason) => {
  const inst = await start(admin, 'call_api', { httpUrl: target() });
  const [incident] = await waitFor('an incident', async () => {
    const found = await incidents(db.root, inst.id);
    return found.length > 0 ? found : undefined;
  });
  expect(incident?.incident_type).toBe('failedExternalTask');
  expect(incident?.message).toBe(
    `HTTP connector: ${reason()}: host "localhost:${otherPort}" is not in PGBPM_HTTP_ALLOW_HOSTS`,
  );
  expect((await externalTaskOf(db.root, inst.id)).retries).toBe(0);
  expect(otherHits).toBe(0);
});
