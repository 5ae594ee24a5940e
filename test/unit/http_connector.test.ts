/**
 * The built-in HTTP connector against local HTTP servers (127.0.0.1 only):
 * requests from task variables, the host allow-list checked on the parsed
 * URL and on every redirect, timeouts and size limits, and which failures
 * are retried.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { NonRetryableError } from '../../worker/errors';
import { httpConnector, parseRule, refusal, type HttpConnectorOptions } from '../../worker/connectors/http';
import type { TaskContext } from '../../worker/handlers';

interface Received {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  body: string;
}

interface TestServer {
  port: number;
  received: Received[];
  close(): Promise<void>;
}

async function server(respond: (req: Received, res: http.ServerResponse) => void): Promise<TestServer> {
  const received: Received[] = [];
  const s = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const r = { method: req.method ?? '', url: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks).toString('utf8') };
      received.push(r);
      respond(r, res);
    });
  });
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  return {
    port: (s.address() as AddressInfo).port,
    received,
    close: () =>
      new Promise<void>((resolve) => {
        s.closeAllConnections();
        s.close(() => resolve());
      }),
  };
}

function ctx(signal = new AbortController().signal): TaskContext {
  const noop = (): void => undefined;
  return {
    taskId: 't1',
    instanceId: 'i1',
    elementId: 'call',
    topic: 'http',
    headers: {},
    tenant: 'acme',
    workerId: 'w1',
    attempt: 1,
    retries: 3,
    retriesLeft: 3,
    lockedUntil: new Date(Date.now() + 60_000),
    signal,
    logger: { debug: noop, info: noop, warn: noop, error: noop },
  };
}

let api: TestServer;
let other: TestServer;

beforeAll(async () => {
  other = await server((_req, res) => res.end('other'));
  api = await server((req, res) => {
    const path = req.url;
    if (path === '/json') {
      res.setHeader('content-type', 'application/json; charset=utf-8');
      res.end(JSON.stringify({ ok: true, n: 42 }));
    } else if (path === '/echo') {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ method: req.method, contentType: req.headers['content-type'] ?? null, auth: req.headers.authorization ?? null, body: req.body }));
    } else if (path === '/text') {
      res.end('plain text');
    } else if (path === '/down') {
      res.statusCode = 503;
      res.end('maintenance');
    } else if (path === '/to-json') {
      res.statusCode = 302;
      res.setHeader('location', '/json');
      res.end();
    } else if (path === '/to-echo-303') {
      res.statusCode = 303;
      res.setHeader('location', '/echo');
      res.end();
    } else if (path === '/to-other') {
      res.statusCode = 302;
      res.setHeader('location', `http://localhost:${other.port}/stolen`);
      res.end();
    } else if (path === '/loop') {
      res.statusCode = 307;
      res.setHeader('location', '/loop');
      res.end();
    } else if (path === '/big') {
      res.end('x'.repeat(5000));
    } else if (path === '/big-chunked') {
      for (let i = 0; i < 5; i++) res.write('y'.repeat(1000));
      res.end();
    } else if (path === '/slow') {
      setTimeout(() => res.end('late'), 2000).unref();
    } else {
      res.statusCode = 404;
      res.end('not found');
    }
  });
});

afterAll(async () => {
  await api.close();
  await other.close();
});

function connector(options: Partial<HttpConnectorOptions> = {}) {
  return httpConnector({ allowHosts: [`127.0.0.1:${api.port}`], ...options });
}

const url = (path: string): string => `http://127.0.0.1:${api.port}${path}`;

describe('requests', () => {
  test('GET (the default) stores status, headers and the parsed JSON body in httpResponse', async () => {
    const result = await connector()({ httpUrl: url('/json') }, ctx());
    expect(result).toEqual({
      httpResponse: {
        status: 200,
        statusText: 'OK',
        headers: expect.objectContaining({ 'content-type': 'application/json; charset=utf-8' }),
        body: { ok: true, n: 42 },
      },
    });
  });

  test('a body that is not a string is sent as JSON; headers and httpResultVariable are honoured', async () => {
    const result = await connector()(
      { httpUrl: url('/echo'), httpMethod: 'post', httpHeaders: { Authorization: 'Bearer abc' }, httpBody: { a: 1 }, httpResultVariable: 'reply' },
      ctx(),
    );
    expect(result).toEqual({
      reply: expect.objectContaining({
        status: 200,
        body: { method: 'POST', contentType: 'application/json', auth: 'Bearer abc', body: '{"a":1}' },
      }),
    });
  });

  test('a text response stays text', async () => {
    expect(await connector()({ httpUrl: url('/text') }, ctx())).toMatchObject({ httpResponse: { body: 'plain text' } });
  });

  test('a non-2xx answer is a failure to retry (plain Error), unless httpFailOnStatus is false', async () => {
    const failure = connector()({ httpUrl: url('/down') }, ctx());
    await expect(failure).rejects.toThrow(`HTTP connector: GET http://127.0.0.1:${api.port}/down answered 503 Service Unavailable: maintenance`);
    await expect(failure).rejects.not.toBeInstanceOf(NonRetryableError);
    expect(await connector()({ httpUrl: url('/down'), httpFailOnStatus: false }, ctx())).toMatchObject({
      httpResponse: { status: 503, body: 'maintenance' },
    });
  });

  test('bad variables fail without retries', async () => {
    await expect(connector()({}, ctx())).rejects.toThrow(new NonRetryableError('HTTP connector: variable httpUrl (a string) is required'));
    await expect(connector()({ httpUrl: '/relative' }, ctx())).rejects.toThrow(/httpUrl is not a valid absolute URL/);
    await expect(connector()({ httpUrl: url('/json'), httpMethod: 'TRACE' }, ctx())).rejects.toThrow(/httpMethod must be one of GET, HEAD/);
    await expect(connector()({ httpUrl: url('/json'), httpBody: 'x' }, ctx())).rejects.toThrow(/a GET request cannot have a body/);
    await expect(connector()({ httpUrl: url('/json'), httpHeaders: ['x'] }, ctx())).rejects.toBeInstanceOf(NonRetryableError);
  });
});

describe('the allow-list', () => {
  test('a host that is not on the list is refused before any request, with a clear message', async () => {
    const before = other.received.length;
    const refused = connector()({ httpUrl: `http://localhost:${other.port}/x` }, ctx());
    await expect(refused).rejects.toBeInstanceOf(NonRetryableError);
    await expect(refused).rejects.toThrow(
      `HTTP connector: request to http://localhost:${other.port} refused: host "localhost:${other.port}" is not in PGBPM_HTTP_ALLOW_HOSTS`,
    );
    // the same host on another port is another entry
    await expect(connector()({ httpUrl: `http://127.0.0.1:${other.port}/x` }, ctx())).rejects.toThrow(/is not in PGBPM_HTTP_ALLOW_HOSTS/);
    expect(other.received.length).toBe(before);
  });

  test('an empty list refuses everything and says so', async () => {
    await expect(httpConnector({ allowHosts: [] })({ httpUrl: url('/json') }, ctx())).rejects.toThrow(
      'PGBPM_HTTP_ALLOW_HOSTS is empty, so every request is refused',
    );
  });

  test('only http and https, and no credentials in the URL', async () => {
    await expect(connector()({ httpUrl: `file:///etc/passwd` }, ctx())).rejects.toThrow(/scheme "file" is not allowed/);
    await expect(connector()({ httpUrl: `ftp://127.0.0.1:${api.port}/` }, ctx())).rejects.toThrow(/scheme "ftp" is not allowed/);
    await expect(connector()({ httpUrl: `http://evil.example@127.0.0.1:${api.port}/json` }, ctx())).rejects.toThrow(
      /URLs with credentials \(user:password@\) are not allowed/,
    );
  });

  test('redirects are followed by hand within the list; a redirect to a host not on it is refused and never reached', async () => {
    expect(await connector()({ httpUrl: url('/to-json') }, ctx())).toMatchObject({ httpResponse: { status: 200, body: { ok: true, n: 42 } } });
    const before = other.received.length;
    await expect(connector()({ httpUrl: url('/to-other') }, ctx())).rejects.toThrow(
      `HTTP connector: redirect 1 to http://localhost:${other.port} refused: host "localhost:${other.port}" is not in PGBPM_HTTP_ALLOW_HOSTS`,
    );
    expect(other.received.length).toBe(before);
    await expect(connector()({ httpUrl: url('/loop') }, ctx())).rejects.toThrow(/more than 5 redirects/);
  });

  test('303 turns a POST into a GET without a body', async () => {
    expect(await connector()({ httpUrl: url('/to-echo-303'), httpMethod: 'POST', httpBody: { a: 1 } }, ctx())).toMatchObject({
      httpResponse: { body: { method: 'GET', contentType: null, body: '' } },
    });
  });

  test('rules: exact host, *.domain for subdomains only, host:port for one port, IPv6 in brackets; the URL is normalised first', () => {
    const rules = ['api.example.com', '*.corp.example', 'svc.local:8443', '[::1]'].map(parseRule);
    const check = (u: string): string | null => refusal(new URL(u), rules);
    expect(check('https://API.Example.com/x')).toBeNull();
    expect(check('https://api.example.com.evil.net/')).toMatch(/not in/);
    expect(check('https://a.b.corp.example/')).toBeNull();
    expect(check('https://corp.example/')).toMatch(/not in/);
    expect(check('https://svc.local:8443/')).toBeNull();
    expect(check('https://svc.local/')).toMatch(/not in/);
    expect(check('http://[::1]:9000/')).toBeNull();
    expect(refusal(new URL('http://2130706433/'), [parseRule('127.0.0.1')])).toBeNull();
    expect(() => parseRule('a*.example.com')).toThrow(/a wildcard may only lead/);
  });
});

describe('limits', () => {
  test('a response larger than the limit fails', async () => {
    await expect(connector({ maxResponseBytes: 1000 })({ httpUrl: url('/big') }, ctx())).rejects.toThrow(
      /response of GET http:\/\/127\.0\.0\.1:\d+\/big is 5000 bytes, more than the limit of 1000/,
    );
    // without a content-length: counted while reading
    await expect(connector({ maxResponseBytes: 1000 })({ httpUrl: url('/big-chunked') }, ctx())).rejects.toThrow(
      /response of GET http:\/\/127\.0\.0\.1:\d+\/big-chunked is more than the limit of 1000 bytes/,
    );
  });

  test('a request slower than the timeout fails (to be retried)', async () => {
    const failure = connector({ timeoutMs: 100 })({ httpUrl: url('/slow') }, ctx());
    await expect(failure).rejects.toThrow(/\/slow failed: timed out after 100 ms/);
    await expect(failure).rejects.not.toBeInstanceOf(NonRetryableError);
  });

  test('the task signal (worker shutdown) aborts the request', async () => {
    const abort = new AbortController();
    const pending = connector()({ httpUrl: url('/slow') }, ctx(abort.signal));
    setTimeout(() => abort.abort(), 50);
    await expect(pending).rejects.toThrow(/aborted \(worker shutting down\)/);
  });
});
