/**
 * One LISTEN connection on one channel, kept open: the API server's on
 * `bpm_event` (server/subscriptions/hub.ts) and each worker's on
 * `bpm_external_task` (worker/external/wakeup.ts). Notifications carry no
 * tenant data (every listener of the cluster sees them): they only say
 * "something was committed, look". A lost connection is re-established with
 * backoff; `onConnected` fires after every (re)connect, because
 * notifications may have been missed meanwhile, and the owner's fallback
 * poll covers any gap.
 */
import pg from 'pg';
import type { Logger } from '../observability';

export const EVENT_CHANNEL = 'bpm_event';

export interface ListenerOptions {
  connectionString: string;
  channel: string;
  applicationName: string;
  /** Prefix of the log lines ("events", "external tasks"). */
  name: string;
  logger: Logger;
  /** Runs on every new connection after LISTEN (SET ROLE, leases, …); when it fails, so does the attempt. */
  prepare?(client: pg.Client): Promise<void>;
  /** A notification arrived on the channel (its payload, '' when none). */
  onNotify(payload: string): void;
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

  /** Runs `fn` on the connection when there is one (false when not connected). */
  async withConnection(fn: (client: pg.Client) => Promise<void>): Promise<boolean> {
    const client = this.client;
    if (!client) return false;
    await fn(client);
    return true;
  }

  private async connect(): Promise<void> {
    const { channel } = this.options;
    const client = new pg.Client({
      connectionString: this.options.connectionString,
      application_name: this.options.applicationName,
      keepAlive: true,
      connectionTimeoutMillis: 10_000,
    });
    client.on('error', (e) => this.lost(client, e));
    client.on('end', () => this.lost(client, null));
    client.on('notification', (message) => {
      if (message.channel === channel) this.options.onNotify(message.payload ?? '');
    });
    try {
      await client.connect();
      await client.query(`listen ${channel}`);
      await this.options.prepare?.(client);
    } catch (e) {
      client.removeAllListeners('end');
      await client.end().catch(() => undefined);
      this.scheduleRetry();
      throw new Error(`cannot LISTEN ${channel}: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
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
    this.options.logger.warn({ err: error ?? undefined }, `${this.options.name}: LISTEN connection lost; reconnecting`);
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
        this.options.logger.warn({ err: e }, `${this.options.name}: reconnecting the LISTEN connection failed`);
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
