/**
 * The server's one LISTEN connection (channel `bpm_event`), logged in as the
 * API's login (bpm_authenticator; LISTEN needs no privilege). The payload is
 * an event id and nothing else (no tenant data): it only says "something was
 * committed, look". A lost connection is re-established with backoff; after
 * a reconnect the hub is woken, and the fallback poll covers any gap.
 */
import pg from 'pg';
import type { Logger } from '../observability';

export const EVENT_CHANNEL = 'bpm_event';

export interface ListenerOptions {
  connectionString: string;
  logger: Logger;
  /** An event id was notified (the highest of a committed transaction). */
  onNotify(id: bigint): void;
  /** (Re)connected: notifications may have been missed meanwhile. */
  onConnected(): void;
  /** Backoff between reconnection attempts (default 250 ms, doubling to 10 s). */
  minBackoffMs?: number;
  maxBackoffMs?: number;
}

export class NotificationListener {
  private readonly options: ListenerOptions;
  private client: pg.Client | null = null;
  private connecting: Promise<void> | null = null;
  private retryTimer: NodeJS.Timeout | null = null;
  private backoffMs: number;
  private closed = false;

  constructor(options: ListenerOptions) {
    this.options = options;
    this.backoffMs = options.minBackoffMs ?? 250;
  }

  get listening(): boolean {
    return this.client !== null;
  }

  /** Connects and LISTENs (idempotent). Rejects when this attempt fails; retries continue in the background. */
  start(): Promise<void> {
    if (this.closed) return Promise.reject(new Error('notification listener is closed'));
    if (this.client) return Promise.resolve();
    this.connecting ??= this.connect().finally(() => {
      this.connecting = null;
    });
    return this.connecting;
  }

  private async connect(): Promise<void> {
    const client = new pg.Client({
      connectionString: this.options.connectionString,
      application_name: 'pgbpm-api-events',
      keepAlive: true,
      connectionTimeoutMillis: 10_000,
    });
    client.on('error', (e) => this.lost(client, e));
    client.on('end', () => this.lost(client, null));
    client.on('notification', (message) => {
      if (message.channel !== EVENT_CHANNEL) return;
      const payload = message.payload ?? '';
      this.options.onNotify(/^\d{1,19}$/.test(payload) ? BigInt(payload) : 0n);
    });
    try {
      await client.connect();
      await client.query(`listen ${EVENT_CHANNEL}`);
    } catch (e) {
      client.removeAllListeners('end');
      await client.end().catch(() => undefined);
      this.scheduleRetry();
      throw new Error(`cannot LISTEN ${EVENT_CHANNEL}: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
    }
    if (this.closed) {
      await client.end().catch(() => undefined);
      return;
    }
    this.client = client;
    this.backoffMs = this.options.minBackoffMs ?? 250;
    this.options.onConnected();
  }

  private lost(client: pg.Client, error: Error | null): void {
    if (this.client !== client) return;
    this.client = null;
    if (this.closed) return;
    this.options.logger.warn({ err: error ?? undefined }, `events: LISTEN connection lost; reconnecting`);
    client.end().catch(() => undefined);
    this.scheduleRetry();
  }

  private scheduleRetry(): void {
    if (this.closed || this.retryTimer) return;
    const delay = this.backoffMs;
    this.backoffMs = Math.min(this.backoffMs * 2, this.options.maxBackoffMs ?? 10_000);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      this.start().catch((e: unknown) => {
        this.options.logger.warn({ err: e }, 'events: reconnecting the LISTEN connection failed');
      });
    }, delay);
    this.retryTimer.unref();
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    await this.connecting?.catch(() => undefined);
    const client = this.client;
    this.client = null;
    await client?.end().catch(() => undefined);
  }
}
