/**
 * GraphQL over WebSocket (the graphql-ws protocol, subprotocol
 * `graphql-transport-ws`) on the GraphQL path, for subscriptions.
 *
 * Grafserv's own upgrade handler has no hook for refusing a connection, so
 * pgbpm runs graphql-ws itself with grafserv's configuration
 * (makeGraphQLWSConfig: same schema, validation rules — depth, field count,
 * no introspection in production —, grafast middleware and error masking as
 * HTTP) plus:
 *
 * - authentication at `connection_init`: `connectionParams.authorization`
 *   ("Bearer <JWT>") is verified exactly like the HTTP header; missing,
 *   invalid or expired: the socket is closed with 4401, an authentic token
 *   that makes no API caller with 4403 (reason: why). The connection ends
 *   (4401) when the token expires;
 * - only subscription operations (queries and mutations: POST /graphql, with
 *   its rate limit, metrics and logs);
 * - at most `maxSubscriptions` subscriptions at a time per connection
 *   (TOO_MANY_SUBSCRIPTIONS);
 * - each subscribe counts against the tenant's rate limit (RATE_LIMITED);
 * - messages larger than `maxPayloadBytes` close the socket (1009);
 * - ping every `keepaliveMs`; a connection without pong is terminated.
 */
import type http from 'node:http';
import type { Duplex } from 'node:stream';
import { CloseCode, makeServer, type ServerOptions } from 'graphql-ws';
import { GraphQLError, getOperationAST } from 'postgraphile/graphql';
import { makeGraphQLWSConfig, type GrafservBase } from 'postgraphile/grafserv';
import { WebSocketServer, type RawData, type WebSocket } from 'ws';
import type { Authenticator, Principal } from '../auth';
import type { RateLimiter } from '../limits';
import type { Logger } from '../observability';

export interface WebSocketOptions {
  path: string;
  serv: GrafservBase;
  authenticator: Authenticator;
  logger: Logger;
  maxPayloadBytes: number;
  maxSubscriptions: number;
  rateLimiter: RateLimiter | null;
  /** Ping interval (default 12 s, grafserv's). */
  keepaliveMs?: number;
  /** Time for connection_init after the upgrade (default 3 s). */
  connectionInitWaitTimeoutMs?: number;
}

export interface WebSocketHandle {
  /** Closes every connection (1001) and stops accepting upgrades. */
  close(): Promise<void>;
  /** Open connections. */
  readonly connections: number;
}

interface Extra {
  socket: WebSocket;
  request: http.IncomingMessage;
}

/** Close codes of refused or ended connections. */
export const WS_UNAUTHORIZED = 4401;
export const WS_FORBIDDEN = 4403;

/** Principals of authenticated sockets, for grafast.context. */
const principals = new WeakMap<WebSocket, Principal>();

export function principalOfSocket(socket: WebSocket | undefined): Principal | undefined {
  return socket ? principals.get(socket) : undefined;
}

/** A close reason fits in 123 bytes (RFC 6455). */
function reason(text: string): string {
  let out = text;
  while (Buffer.byteLength(out) > 123) out = out.slice(0, -1);
  return out;
}

function authorizationOf(params: Readonly<Record<string, unknown>> | undefined): string | undefined {
  if (!params) return undefined;
  for (const [key, value] of Object.entries(params)) {
    if (key.toLowerCase() === 'authorization' && typeof value === 'string') return value;
  }
  return undefined;
}

const MAX_TIMER_MS = 2 ** 31 - 1;

/** Closes `socket` with 4401 when the token expires (`expiresAt` in seconds). */
function closeOnExpiry(socket: WebSocket, expiresAt: number | undefined): void {
  if (expiresAt === undefined) return;
  let timer: NodeJS.Timeout | undefined;
  const arm = (): void => {
    const wait = expiresAt * 1000 - Date.now();
    if (wait <= 0) {
      socket.close(WS_UNAUTHORIZED, 'Unauthorized: token has expired');
      return;
    }
    timer = setTimeout(arm, Math.min(wait, MAX_TIMER_MS));
    timer.unref();
  };
  arm();
  socket.once('close', () => clearTimeout(timer));
}

function keepalive(socket: WebSocket, intervalMs: number): void {
  if (!Number.isFinite(intervalMs) || intervalMs <= 0) return;
  let alive = true;
  socket.on('pong', () => {
    alive = true;
  });
  const timer = setInterval(() => {
    if (!alive) {
      socket.terminate();
      return;
    }
    alive = false;
    socket.ping();
  }, intervalMs);
  timer.unref();
  socket.once('close', () => clearInterval(timer));
}

export function attachWebSockets(server: http.Server, options: WebSocketOptions): WebSocketHandle {
  const { authenticator, logger, maxSubscriptions, rateLimiter } = options;
  const wss = new WebSocketServer({ noServer: true, maxPayload: options.maxPayloadBytes });
  const base = makeGraphQLWSConfig(options.serv) as ServerOptions<Record<string, unknown> | undefined, Extra>;
  const baseOnSubscribe = base.onSubscribe;
  if (!baseOnSubscribe) throw new Error('attachWebSockets: grafserv provides no onSubscribe');

  const graphqlWs = makeServer<Record<string, unknown> | undefined, Extra>({
    ...base,
    connectionInitWaitTimeout: options.connectionInitWaitTimeoutMs ?? 3000,
    async onConnect(ctx) {
      const { socket } = ctx.extra;
      const result = await authenticator.authenticate(authorizationOf(ctx.connectionParams));
      if (!result.ok) {
        const code = result.status === 401 ? WS_UNAUTHORIZED : WS_FORBIDDEN;
        const label = result.status === 401 ? 'Unauthorized' : 'Forbidden';
        logger.info({ code, reason: result.message }, 'websocket: connection refused');
        // graphql-ws then closes with 4403 "Forbidden", which is ignored: this close comes first
        socket.close(code, reason(`${label}: ${result.message}`));
        return false;
      }
      principals.set(socket, result.principal);
      closeOnExpiry(socket, result.expiresAt);
      return true;
    },
    async onSubscribe(ctx, id, payload) {
      const principal = principals.get(ctx.extra.socket);
      if (!principal) return [new GraphQLError('not authenticated', { extensions: { code: 'UNAUTHENTICATED' } })];
      // ctx.subscriptions already holds this one
      if (Object.keys(ctx.subscriptions).length > maxSubscriptions) {
        return [
          new GraphQLError(`at most ${maxSubscriptions} subscriptions per connection`, {
            extensions: { code: 'TOO_MANY_SUBSCRIPTIONS', maxSubscriptions },
          }),
        ];
      }
      if (rateLimiter) {
        const wait = rateLimiter.take(principal.tenant);
        if (wait > 0) {
          return [
            new GraphQLError('rate limit exceeded', { extensions: { code: 'RATE_LIMITED', retryAfter: Math.max(1, Math.ceil(wait)) } }),
          ];
        }
      }
      const result = await baseOnSubscribe(ctx, id, payload);
      if (!result || Array.isArray(result)) return result;
      const args = result as Exclude<typeof result, readonly GraphQLError[] | void>;
      const operation = getOperationAST(args.document, args.operationName);
      if (operation && operation.operation !== 'subscription') {
        return [
          new GraphQLError('only subscriptions are served over WebSocket; send queries and mutations with POST /graphql', {
            extensions: { code: 'OPERATION_NOT_ALLOWED' },
          }),
        ];
      }
      return args;
    },
  });

  const onConnection = (socket: WebSocket, request: http.IncomingMessage): void => {
    const openedAt = performance.now();
    keepalive(socket, options.keepaliveMs ?? 12_000);
    const closed = graphqlWs.opened(
      {
        protocol: socket.protocol,
        send: (data) =>
          new Promise<void>((resolve, reject) => {
            socket.send(data, (err) => (err ? reject(err) : resolve()));
          }),
        close: (code, why) => socket.close(code, why),
        onMessage: (cb) =>
          socket.on('message', (data: RawData) => {
            cb(data.toString()).catch((err: unknown) => {
              logger.error({ err }, 'websocket: message handling failed');
              try {
                socket.close(CloseCode.InternalServerError, 'Internal server error');
              } catch {
                // already closed
              }
            });
          }),
      },
      { socket, request },
    );
    socket.once('close', (code: number, why: Buffer) => {
        const principal = principals.get(socket);
      if (principal) {
        // one line per authenticated connection, like the access log line of an HTTP request
        logger.info(
          { tenant: principal.tenant, role: principal.role, code, ms: Math.round(performance.now() - openedAt) },
          'websocket closed',
        );
      }
      closed(code, why.toString()).catch((err: unknown) => logger.error({ err }, 'websocket: cleanup after close failed'));
    });
  };
  wss.on('connection', onConnection);

  const onUpgrade = (req: http.IncomingMessage, socket: Duplex, head: Buffer): void => {
    const url = req.url ?? '';
    const q = url.indexOf('?');
    const pathname = q >= 0 ? url.slice(0, q) : url;
    if (pathname !== options.path) {
      socket.destroy();
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => {
      wss.emit('connection', ws, req);
    });
  };
  server.on('upgrade', onUpgrade);

  let closing: Promise<void> | undefined;
  return {
    get connections() {
      return wss.clients.size;
    },
    close() {
      closing ??= (async () => {
        server.off('upgrade', onUpgrade);
        for (const client of wss.clients) client.close(1001, 'server shutting down');
        // give clients a moment to acknowledge the close, then cut what is left
        const deadline = Date.now() + 1000;
        while (wss.clients.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
        for (const client of wss.clients) client.terminate();
        await new Promise<void>((resolve) => wss.close(() => resolve()));
      })();
      return closing;
    },
  };
}
