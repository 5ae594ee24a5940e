/**
 * The built-in HTTP connector: a handler that makes one HTTP request
 * described by the task's variables and stores the response in a variable.
 *
 * Variables read:
 *   httpUrl             the URL (http: or https: only; no user:password@)
 *   httpMethod          GET (default), HEAD, POST, PUT, PATCH, DELETE or OPTIONS
 *   httpHeaders         object of header name → string value
 *   httpBody            a string is sent as is; any other JSON value as JSON
 *                       (content-type application/json unless given)
 *   httpResultVariable  where the response goes (default httpResponse)
 *   httpFailOnStatus    false: store non-2xx responses instead of failing (default true)
 * Variable written: <httpResultVariable> = { status, statusText, headers, body }
 * with body parsed JSON when the response says JSON, else text.
 *
 * Safety:
 *   - only hosts on the allow-list (PGBPM_HTTP_ALLOW_HOSTS: `api.example.com`,
 *     `*.example.com` for subdomains, `host:port` for one port; empty: every
 *     request is refused), checked on the parsed URL, and again on every
 *     redirect (followed by hand, at most 5; a redirect to another host drops
 *     Authorization and Cookie headers);
 *   - a timeout (PGBPM_HTTP_TIMEOUT, 30s) and a response size limit
 *     (PGBPM_HTTP_MAX_RESPONSE_BYTES, 1 MiB);
 *   - refusals and bad variables fail the task without retries (incident
 *     with the reason); network errors, timeouts and non-2xx responses are
 *     retried with the handler's back-off.
 * The allow-list names hosts, not addresses: allow only hosts whose DNS you trust.
 */
import { NonRetryableError, WorkerConfigError, type Variables } from '../errors';
import type { Handler, HandlerOptions, TaskContext } from '../handlers';
import { parseDurationMs, parseList } from '../config';

export const HTTP_METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'] as const;
export type HttpMethod = (typeof HTTP_METHODS)[number];

export const DEFAULT_HTTP_TIMEOUT_MS = 30_000;
export const DEFAULT_HTTP_MAX_RESPONSE_BYTES = 1024 * 1024;
export const MAX_REDIRECTS = 5;
export const DEFAULT_RESULT_VARIABLE = 'httpResponse';

export interface HttpConnectorOptions {
  /** Allowed hosts: `name`, `*.suffix` (subdomains of suffix), optionally with `:port`. Empty: refuse all. */
  allowHosts: readonly string[];
  timeoutMs?: number;
  maxResponseBytes?: number;
  /** The fetch to use (tests); default Node's. */
  fetch?: typeof fetch;
}

export interface HttpResponseVariable {
  status: number;
  statusText: string;
  headers: Record<string, string>;
  body: unknown;
}

export interface AllowRule {
  host: string;
  wildcard: boolean;
  port: string | null;
}

export function parseRule(entry: string): AllowRule {
  const raw = entry.trim().toLowerCase();
  // [v6]:port, [v6], host:port, host
  const m = /^(\[[0-9a-f:.]+\]|[^:[\]]+)(?::(\d{1,5}))?$/.exec(raw);
  if (!m) throw new WorkerConfigError(`PGBPM_HTTP_ALLOW_HOSTS: cannot read "${entry}" (expected host, *.domain or host:port)`);
  const host = m[1] as string;
  const wildcard = host.startsWith('*.');
  if (host.includes('*') && (!wildcard || host.slice(2).includes('*'))) {
    throw new WorkerConfigError(`PGBPM_HTTP_ALLOW_HOSTS: "${entry}": a wildcard may only lead (*.example.com)`);
  }
  return { host: wildcard ? host.slice(2) : host, wildcard, port: m[2] ?? null };
}

function defaultPort(url: URL): string {
  return url.port || (url.protocol === 'https:' ? '443' : '80');
}

/** Checks the allow-list; returns a refusal message, or null when allowed. */
export function refusal(url: URL, rules: readonly AllowRule[]): string | null {
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return `scheme "${url.protocol.replace(/:$/, '')}" is not allowed (http and https only)`;
  if (url.username !== '' || url.password !== '') return 'URLs with credentials (user:password@) are not allowed';
  const host = url.hostname.toLowerCase();
  if (rules.length === 0) return `host "${host}" is not allowed: PGBPM_HTTP_ALLOW_HOSTS is empty, so every request is refused`;
  const port = defaultPort(url);
  const ok = rules.some(
    (r) => (r.wildcard ? host.endsWith(`.${r.host}`) : host === r.host) && (r.port === null || r.port === port),
  );
  return ok ? null : `host "${url.host}" is not in PGBPM_HTTP_ALLOW_HOSTS`;
}

function parseUrl(raw: string, what: string): URL {
  try {
    return new URL(raw);
  } catch {
    throw new NonRetryableError(`HTTP connector: ${what} is not a valid absolute URL: ${JSON.stringify(raw).slice(0, 200)}`);
  }
}

function readRequest(variables: Variables): {
  url: URL;
  method: HttpMethod;
  headers: Headers;
  body: string | undefined;
  resultVariable: string;
  failOnStatus: boolean;
} {
  const { httpUrl, httpMethod, httpHeaders, httpBody, httpResultVariable, httpFailOnStatus } = variables;
  if (typeof httpUrl !== 'string' || httpUrl === '') throw new NonRetryableError('HTTP connector: variable httpUrl (a string) is required');
  const url = parseUrl(httpUrl, 'httpUrl');
  const method = (httpMethod === undefined || httpMethod === null ? 'GET' : String(httpMethod).toUpperCase()) as HttpMethod;
  if (!HTTP_METHODS.includes(method)) throw new NonRetryableError(`HTTP connector: httpMethod must be one of ${HTTP_METHODS.join(', ')}, got ${JSON.stringify(httpMethod)}`);
  const headers = new Headers();
  if (httpHeaders !== undefined && httpHeaders !== null) {
    if (typeof httpHeaders !== 'object' || Array.isArray(httpHeaders)) throw new NonRetryableError('HTTP connector: httpHeaders must be an object of header name → string');
    for (const [name, value] of Object.entries(httpHeaders as Record<string, unknown>)) {
      if (typeof value !== 'string' && typeof value !== 'number') throw new NonRetryableError(`HTTP connector: header ${name} must be a string`);
      try {
        headers.set(name, String(value));
      } catch {
        throw new NonRetryableError(`HTTP connector: invalid header ${JSON.stringify(name)}`);
      }
    }
  }
  let body: string | undefined;
  if (httpBody !== undefined && httpBody !== null) {
    if (method === 'GET' || method === 'HEAD') throw new NonRetryableError(`HTTP connector: a ${method} request cannot have a body (httpBody)`);
    if (typeof httpBody === 'string') body = httpBody;
    else {
      body = JSON.stringify(httpBody);
      if (!headers.has('content-type')) headers.set('content-type', 'application/json');
    }
  }
  const resultVariable = httpResultVariable === undefined || httpResultVariable === null ? DEFAULT_RESULT_VARIABLE : httpResultVariable;
  if (typeof resultVariable !== 'string' || resultVariable === '') throw new NonRetryableError('HTTP connector: httpResultVariable must be a non-empty string');
  return { url, method, headers, body, resultVariable, failOnStatus: httpFailOnStatus !== false };
}

/** Reads at most `limit` bytes of the body; beyond: an error (the rest is not read). */
async function readLimited(response: Response, limit: number, where: string): Promise<Buffer> {
  const declared = Number(response.headers.get('content-length'));
  if (Number.isFinite(declared) && declared > limit) {
    await response.body?.cancel().catch(() => undefined);
    throw new Error(`HTTP connector: response of ${where} is ${declared} bytes, more than the limit of ${limit}`);
  }
  if (!response.body) return Buffer.alloc(0);
  const reader = response.body.getReader();
  const chunks: Buffer[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > limit) {
      await reader.cancel().catch(() => undefined);
      throw new Error(`HTTP connector: response of ${where} is more than the limit of ${limit} bytes`);
    }
    chunks.push(Buffer.from(value));
  }
  return Buffer.concat(chunks);
}

function decodeBody(buffer: Buffer, contentType: string | null): unknown {
  const text = buffer.toString('utf8');
  if (contentType && /^application\/([\w.+-]*\+)?json\b/i.test(contentType) && text.trim() !== '') {
    try {
      return JSON.parse(text) as unknown;
    } catch {
      return text;
    }
  }
  return text;
}

function isRedirect(status: number): boolean {
  return status === 301 || status === 302 || status === 303 || status === 307 || status === 308;
}

/** A handler making the request a task's variables describe (see the module comment). */
export function httpConnector(options: HttpConnectorOptions): Handler {
  const rules = options.allowHosts.map(parseRule);
  const timeoutMs = options.timeoutMs ?? DEFAULT_HTTP_TIMEOUT_MS;
  const maxResponseBytes = options.maxResponseBytes ?? DEFAULT_HTTP_MAX_RESPONSE_BYTES;
  const doFetch = options.fetch ?? fetch;

  return async (variables: Variables, ctx: TaskContext): Promise<Variables> => {
    const request = readRequest(variables);
    let { url, method, body } = request;
    const headers = request.headers;
    const signal = AbortSignal.any([ctx.signal, AbortSignal.timeout(timeoutMs)]);
    for (let hop = 0; ; hop++) {
      const refused = refusal(url, rules);
      if (refused) {
        throw new NonRetryableError(`HTTP connector: ${hop === 0 ? 'request' : `redirect ${hop}`} to ${url.origin} refused: ${refused}`);
      }
      const where = `${method} ${url.origin}${url.pathname}`;
      let response: Response;
      try {
        response = await doFetch(url, { method, headers, body, redirect: 'manual', signal });
      } catch (e) {
        const reason = signal.aborted
          ? ctx.signal.aborted
            ? 'aborted (worker shutting down)'
            : `timed out after ${timeoutMs} ms`
          : e instanceof Error
            ? `${e.message}${e.cause instanceof Error ? ` (${e.cause.message})` : ''}`
            : String(e);
        throw new Error(`HTTP connector: ${where} failed: ${reason}`);
      }
      if (isRedirect(response.status)) {
        await response.body?.cancel().catch(() => undefined);
        const location = response.headers.get('location');
        if (!location) throw new Error(`HTTP connector: ${where} answered ${response.status} without a Location`);
        if (hop + 1 > MAX_REDIRECTS) throw new NonRetryableError(`HTTP connector: more than ${MAX_REDIRECTS} redirects from ${request.url.origin}`);
        let target: URL;
        try {
          target = new URL(location, url);
        } catch {
          throw new NonRetryableError(`HTTP connector: ${where} redirected to an invalid URL: ${location.slice(0, 200)}`);
        }
        if (target.host !== url.host || target.protocol !== url.protocol) {
          headers.delete('authorization');
          headers.delete('cookie');
        }
        if (response.status === 303 || ((response.status === 301 || response.status === 302) && method === 'POST')) {
          method = method === 'HEAD' ? 'HEAD' : 'GET';
          body = undefined;
          headers.delete('content-type');
        }
        url = target;
        continue;
      }
      const buffer = method === 'HEAD' ? Buffer.alloc(0) : await readLimited(response, maxResponseBytes, where);
      const result: HttpResponseVariable = {
        status: response.status,
        statusText: response.statusText,
        headers: Object.fromEntries(response.headers.entries()),
        body: decodeBody(buffer, response.headers.get('content-type')),
      };
      if (request.failOnStatus && (response.status < 200 || response.status > 299)) {
        const excerpt = buffer.toString('utf8').slice(0, 200);
        throw new Error(`HTTP connector: ${where} answered ${response.status} ${response.statusText}${excerpt ? `: ${excerpt}` : ''}`);
      }
      return { [request.resultVariable]: result };
    }
  };
}

export interface HttpConnectorConfig {
  /** Topic served by the built-in connector, or null (PGBPM_HTTP_TOPIC=none). */
  topic: string | null;
  options: HttpConnectorOptions;
}

/**
 * PGBPM_HTTP_TOPIC (default http; none: no built-in connector),
 * PGBPM_HTTP_ALLOW_HOSTS, PGBPM_HTTP_TIMEOUT, PGBPM_HTTP_MAX_RESPONSE_BYTES.
 */
export function httpConnectorConfigFromEnv(env: NodeJS.ProcessEnv = process.env): HttpConnectorConfig {
  const topicRaw = env.PGBPM_HTTP_TOPIC?.trim();
  const topic = topicRaw === undefined || topicRaw === '' ? 'http' : topicRaw === 'none' ? null : topicRaw;
  const allowHosts = parseList(env.PGBPM_HTTP_ALLOW_HOSTS);
  allowHosts.forEach(parseRule); // fail at start, not on the first task
  const maxRaw = env.PGBPM_HTTP_MAX_RESPONSE_BYTES;
  let maxResponseBytes = DEFAULT_HTTP_MAX_RESPONSE_BYTES;
  if (maxRaw) {
    maxResponseBytes = Number(maxRaw);
    if (!Number.isInteger(maxResponseBytes) || maxResponseBytes < 1) {
      throw new WorkerConfigError(`PGBPM_HTTP_MAX_RESPONSE_BYTES must be a positive integer, got "${maxRaw}"`);
    }
  }
  return {
    topic,
    options: {
      allowHosts,
      timeoutMs: env.PGBPM_HTTP_TIMEOUT ? parseDurationMs(env.PGBPM_HTTP_TIMEOUT, 'PGBPM_HTTP_TIMEOUT') : DEFAULT_HTTP_TIMEOUT_MS,
      maxResponseBytes,
    },
  };
}

/** The built-in connector as a handler spec (its retries and back-off are the worker's). */
export function httpHandler(options: HttpConnectorOptions): HandlerOptions {
  return { handler: httpConnector(options) };
}
