/**
 * GraphQL subscriptions over a real WebSocket: a graphql-ws client (with the
 * `ws` implementation) against the server started by startTestApi.
 */
import { createClient, type Client, type ExecutionResult } from 'graphql-ws';
import WebSocket from 'ws';
import type { GraphQLError } from '../api_graphql/support';
import type { TestDb } from '../../helpers/db';

export interface Closed {
  code: number;
  reason: string;
}

export interface Item<T> {
  /** performance.now() when the client received it. */
  at: number;
  data: T;
}

export interface Subscription<T> {
  readonly items: ReadonlyArray<Item<T>>;
  /** GraphQL errors received (an `error` message, or a `next` with errors). */
  readonly errors: ReadonlyArray<GraphQLError>;
  readonly completed: boolean;
  /** Resolves when `n` items have arrived in total (rejects after timeoutMs, naming what arrived). */
  waitForItems(n: number, timeoutMs?: number): Promise<Array<Item<T>>>;
  /** Resolves when the subscription has ended (complete or error). */
  ended(timeoutMs?: number): Promise<void>;
  unsubscribe(): void;
}

export interface WsClient {
  client: Client;
  /** Resolves when connection_ack arrived; rejects when the socket closed first. */
  connected: Promise<void>;
  /** Resolves with the close code and reason when the socket closes. */
  closed: Promise<Closed>;
  subscribe<T>(query: string, variables?: Record<string, unknown>): Subscription<T>;
  dispose(): Promise<void>;
}

export function wsUrl(graphqlUrl: string): string {
  return graphqlUrl.replace(/^http/, 'ws');
}

function isCloseLike(value: unknown): value is { code: number; reason?: unknown } {
  return typeof value === 'object' && value !== null && typeof (value as { code?: unknown }).code === 'number';
}

/** Connects at once (not lazily), without retries; `token` null: no connectionParams.authorization. */
export function connect(graphqlUrl: string, token: string | null, connectionParams?: Record<string, unknown>): WsClient {
  let onConnected!: () => void;
  let onFailed!: (e: Error) => void;
  const connected = new Promise<void>((resolve, reject) => {
    onConnected = resolve;
    onFailed = reject;
  });
  connected.catch(() => undefined);
  let onClosed!: (c: Closed) => void;
  const closed = new Promise<Closed>((resolve) => {
    onClosed = resolve;
  });
  const client = createClient({
    url: wsUrl(graphqlUrl),
    webSocketImpl: WebSocket,
    lazy: false,
    retryAttempts: 0,
    connectionParams: connectionParams ?? (token === null ? {} : { authorization: `Bearer ${token}` }),
    onNonLazyError: () => undefined,
    on: {
      connected: () => onConnected(),
      closed: (event) => {
        const c = isCloseLike(event) ? { code: event.code, reason: String(event.reason ?? '') } : { code: 0, reason: String(event) };
        onFailed(new Error(`closed before connection_ack: ${c.code} ${c.reason}`));
        onClosed(c);
      },
    },
  });

  const subscribe = <T>(query: string, variables?: Record<string, unknown>): Subscription<T> => {
    const items: Array<Item<T>> = [];
    const errors: GraphQLError[] = [];
    let completed = false;
    const waiters = new Set<() => void>();
    const notify = (): void => {
      for (const w of [...waiters]) w();
    };
    const unsubscribe = client.subscribe<T>(
      { query, variables },
      {
        next(result: ExecutionResult<T>) {
          const at = performance.now();
          if (result.errors) errors.push(...(result.errors as unknown as GraphQLError[]));
          if (result.data) items.push({ at, data: result.data });
          notify();
        },
        error(e: unknown) {
          if (Array.isArray(e)) errors.push(...(e as GraphQLError[]));
          else errors.push({ message: isCloseLike(e) ? `closed ${e.code} ${String(e.reason)}` : String(e) });
          completed = true;
          notify();
        },
        complete() {
          completed = true;
          notify();
        },
      },
    );
    const waitUntil = (done: () => boolean, timeoutMs: number, what: () => string): Promise<void> =>
      new Promise((resolve, reject) => {
        if (done()) {
          resolve();
          return;
        }
        const check = (): void => {
          if (!done()) return;
          clearTimeout(timer);
          waiters.delete(check);
          resolve();
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what()}`));
        }, timeoutMs);
        waiters.add(check);
      });
    return {
      items,
      errors,
      get completed() {
        return completed;
      },
      async waitForItems(n, timeoutMs = 5000) {
        await waitUntil(
          () => items.length >= n || completed,
          timeoutMs,
          () => `${n} items; got ${items.length}: ${JSON.stringify(items.map((i) => i.data))}; errors ${JSON.stringify(errors)}`,
        );
        if (items.length < n) {
          throw new Error(`subscription ended after ${items.length} of ${n} items; errors ${JSON.stringify(errors)}`);
        }
        return items.slice(0, n);
      },
      ended(timeoutMs = 5000) {
        return waitUntil(() => completed, timeoutMs, () => `the end of the subscription (errors ${JSON.stringify(errors)})`);
      },
      unsubscribe,
    };
  };

  return {
    client,
    connected,
    closed,
    subscribe,
    async dispose() {
      await client.dispose();
    },
  };
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** The event fields every test selects. */
export const EVENT_FIELDS = 'id kind instanceId subjectId elementId createdAt';

export interface EventData {
  id: string;
  kind: string;
  instanceId: string | null;
  subjectId: string | null;
  elementId: string | null;
  createdAt: string;
}

/** The tenant's highest event id, read as superuser (ground truth): subscribing with it as `after` misses nothing from here on. */
export async function currentEventId(db: Pick<TestDb, 'root'>, tenant: string): Promise<string> {
  const { rows } = await db.root.query<{ id: string }>('select coalesce(max(id), 0)::text as id from bpm.event where tenant_id = $1', [tenant]);
  return rows[0]?.id ?? '0';
}
