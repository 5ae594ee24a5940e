/**
 * The event hub: one per server. It owns the LISTEN connection, the NOTIFY
 * leases and every live subscription, and reads the event log for them.
 *
 * Wake-ups: a notification (any tenant: the payload has no tenant), the
 * fallback poll (every `pollIntervalMs` while subscriptions exist), a new
 * subscription, or a retry while a notified event is still held back by
 * events_after (an older transaction is running). Wake-ups coalesce: at most
 * one read pass runs at a time, and any number of wake-ups during a pass
 * cause exactly one more.
 *
 * A pass reads once per *feed*: the subscriptions of one principal (same
 * role, tenant, user and groups) share a read, in one transaction with that
 * principal's settings, from the lowest cursor among them (narrowed to an
 * instance when they all watch the same one); each subscription then takes
 * what it wants (server/subscriptions/subscription.ts). So a pass costs one
 * short read-only transaction per distinct principal with live
 * subscriptions, however many subscriptions (tabs, fields) each has.
 * Different users of a tenant are read separately: each sees what RLS lets
 * them see, nothing is filtered on their behalf from another's read.
 *
 * Backpressure: a subscription with `maxBuffered` undelivered events is left
 * out of reads (its cursor stays) until its client has taken them all, which
 * wakes a pass.
 */
import crypto from 'node:crypto';
import os from 'node:os';
import type pg from 'pg';
import type { Logger } from '../observability';
import { TenantLeases } from './leases';
import { EVENT_CHANNEL, NotificationListener } from './listener';
import { EventReadError, instanceVisible, readEvents, withSettings, type EventRow, type PgSettings } from './reader';
import { EventStream } from './stream';
import { Subscription, type EventFilter } from './subscription';

export interface SubscriberIdentity {
  role: string;
  tenant: string;
  user: string | null;
  groups: readonly string[];
}

export interface SubscribeRequest {
  identity: SubscriberIdentity;
  /** The subscriber's pgSettings (role, bpm.tenant_id, bpm.user_id, bpm.groups, statement_timeout). */
  settings: PgSettings;
  filter: EventFilter;
  /** Resume after this event id; null: from now on. */
  after: bigint | null;
}

/** A subscription that cannot be made; `code` becomes the GraphQL error's extensions.code. */
export class SubscriptionRefused extends Error {
  readonly code: string;
  constructor(message: string, code: string) {
    super(message);
    this.name = 'SubscriptionRefused';
    this.code = code;
  }
}

export interface EventHubOptions {
  /** Connections (as the API login) for reads and lease registrations. */
  pool: pg.Pool;
  /** Login for the LISTEN connection (the API login). */
  listenConnectionString: string;
  logger: Logger;
  /** Fallback poll interval in ms (default 1000). */
  pollIntervalMs?: number;
  /** Events per read (default 500). */
  batchSize?: number;
  /** Undelivered events per subscription before reads for it pause (default 1000). */
  maxBuffered?: number;
  /** Feeds read concurrently in a pass (default 2). */
  readConcurrency?: number;
  /** Consecutive failed reads of a feed before its subscriptions end with an error (default 10). */
  maxReadFailures?: number;
  /** The registration name of this server (default: host, pid and a random suffix). */
  listenerId?: string;
  leaseTtlSeconds?: number;
  leaseRenewMs?: number;
}

/** Reads per feed and pass before yielding to the other feeds (the rest follows in the next pass). */
const MAX_ROUNDS_PER_PASS = 4;
const RETRY_MIN_MS = 5;

class Feed {
  readonly key: string;
  readonly tenant: string;
  readonly settings: PgSettings;
  readonly subscriptions = new Set<Subscription>();
  failures = 0;

  constructor(key: string, tenant: string, settings: PgSettings) {
    this.key = key;
    this.tenant = tenant;
    this.settings = settings;
  }
}

function feedKey(identity: SubscriberIdentity): string {
  return JSON.stringify([identity.role, identity.tenant, identity.user, [...identity.groups].sort()]);
}

function defaultListenerId(): string {
  return `pgbpm-api:${os.hostname().slice(0, 100)}:${process.pid}:${crypto.randomBytes(4).toString('hex')}`;
}

async function forEachLimited<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const item = items[next++] as T;
      await fn(item);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

export class EventHub {
  private readonly options: EventHubOptions;
  private readonly logger: Logger;
  private readonly pollIntervalMs: number;
  private readonly batchSize: number;
  private readonly maxBuffered: number;
  private readonly readConcurrency: number;
  private readonly maxReadFailures: number;
  readonly listenerId: string;
  private readonly feeds = new Map<string, Feed>();
  private readonly tenantCounts = new Map<string, number>();
  private readonly listener: NotificationListener;
  private readonly leases: TenantLeases;
  private pollTimer: NodeJS.Timeout | null = null;
  private retryTimer: NodeJS.Timeout | null = null;
  private retryDelayMs = RETRY_MIN_MS;
  private maxNotified = 0n;
  private scheduled = false;
  private running: Promise<void> | null = null;
  private again = false;
  private closed = false;

  constructor(options: EventHubOptions) {
    this.options = options;
    this.logger = options.logger;
    this.pollIntervalMs = options.pollIntervalMs ?? 1000;
    this.batchSize = options.batchSize ?? 500;
    this.maxBuffered = options.maxBuffered ?? 1000;
    this.readConcurrency = options.readConcurrency ?? 2;
    this.maxReadFailures = options.maxReadFailures ?? 10;
    this.listenerId = options.listenerId ?? defaultListenerId();
    this.listener = new NotificationListener({
      connectionString: options.listenConnectionString,
      channel: EVENT_CHANNEL,
      applicationName: 'pgbpm-api-events',
      name: 'events',
      logger: options.logger,
      onNotify: (payload) => {
        // the payload is an event id (the highest of a committed transaction)
        const id = /^\d{1,19}$/.test(payload) ? BigInt(payload) : 0n;
        if (id > this.maxNotified) this.maxNotified = id;
        this.wake();
      },
      onConnected: () => this.wake(),
    });
    this.leases = new TenantLeases({
      pool: options.pool,
      listenerId: this.listenerId,
      logger: options.logger,
      settingsFor: (tenant) => this.settingsFor(tenant),
      ttlSeconds: options.leaseTtlSeconds,
      renewMs: options.leaseRenewMs,
    });
  }

  /** Live subscriptions, feeds (distinct principals) and tenants with a lease. */
  stats(): { subscriptions: number; feeds: number; tenants: number } {
    let subscriptions = 0;
    for (const feed of this.feeds.values()) subscriptions += feed.subscriptions.size;
    return { subscriptions, feeds: this.feeds.size, tenants: this.tenantCounts.size };
  }

  /**
   * Starts a subscription: checks it (SubscriptionRefused), fixes its start
   * (`after`, else the current horizon: only events committed from now on),
   * makes sure notifications flow (LISTEN, lease of the tenant), and returns
   * its stream. Ending the stream (return()) ends the subscription.
   */
  async subscribe(request: SubscribeRequest): Promise<EventStream> {
    if (this.closed) throw new SubscriptionRefused('the server is shutting down', 'UNAVAILABLE');
    const { filter, identity, settings } = request;
    if (filter.field === 'tenantEvents' && identity.role !== 'bpm_admin') {
      throw new SubscriptionRefused(`tenantEvents requires the role bpm_admin (the token's role is ${identity.role})`, 'FORBIDDEN');
    }
    if (request.after !== null && request.after < 0n) throw new SubscriptionRefused('after must not be negative', 'BAD_USER_INPUT');

    let start: { result: boolean; horizon: bigint };
    try {
      start = await withSettings(this.options.pool, settings, async (client) =>
        filter.field === 'instanceEvents' ? instanceVisible(client, filter.instanceId) : true,
      );
    } catch (e) {
      throw new EventReadError('cannot start the subscription', e);
    }
    if (!start.result) {
      // unknown, of another tenant, or not visible to the subscriber: the same answer
      throw new SubscriptionRefused(`process instance ${filter.field === 'instanceEvents' ? filter.instanceId : ''} not found`, 'NOT_FOUND');
    }
    if (this.closed) throw new SubscriptionRefused('the server is shutting down', 'UNAVAILABLE');

    const key = feedKey(identity);
    let feed = this.feeds.get(key);
    if (!feed) {
      feed = new Feed(key, identity.tenant, settings);
      this.feeds.set(key, feed);
    }
    const owner = feed;
    const subscription: Subscription = new Subscription(
      filter,
      request.after ?? start.horizon - 1n,
      new EventStream(() => this.unsubscribe(owner, subscription), { highWater: this.maxBuffered, onDrain: () => this.wake() }),
    );
    owner.subscriptions.add(subscription);
    this.tenantCounts.set(identity.tenant, (this.tenantCounts.get(identity.tenant) ?? 0) + 1);
    this.startPolling();

    // once these resolve, notifications of the tenant's commits flow (acquire: idempotent, never rejects)
    await Promise.all([
      this.leases.acquire(identity.tenant),
      this.listener.start().catch((e: unknown) => this.logger.warn({ err: e }, 'events: no LISTEN connection; subscriptions poll')),
    ]);
    this.wake();
    return subscription.stream;
  }

  private unsubscribe(feed: Feed, subscription: Subscription): void {
    if (!feed.subscriptions.delete(subscription)) return;
    if (feed.subscriptions.size === 0 && this.feeds.get(feed.key) === feed) this.feeds.delete(feed.key);
    const count = (this.tenantCounts.get(feed.tenant) ?? 1) - 1;
    if (count > 0) {
      this.tenantCounts.set(feed.tenant, count);
    } else {
      this.tenantCounts.delete(feed.tenant);
      void this.leases.release(feed.tenant);
    }
    if (this.feeds.size === 0) this.stopPolling();
  }

  private settingsFor(tenant: string): PgSettings | null {
    for (const feed of this.feeds.values()) if (feed.tenant === tenant) return feed.settings;
    return null;
  }

  private startPolling(): void {
    if (this.pollTimer || this.closed) return;
    this.pollTimer = setInterval(() => this.wake(), this.pollIntervalMs);
    this.pollTimer.unref();
  }

  private stopPolling(): void {
    if (this.pollTimer) clearInterval(this.pollTimer);
    this.pollTimer = null;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = null;
  }

  /** Asks for a read pass (coalesced). */
  wake(): void {
    if (this.closed) return;
    if (this.running) {
      this.again = true;
      return;
    }
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      this.runPass();
    });
  }

  private runPass(): void {
    if (this.closed || this.running) return;
    this.again = false;
    this.running = this.pass()
      .catch((e: unknown) => this.logger.error({ err: e }, 'events: read pass failed'))
      .finally(() => {
        this.running = null;
        if (this.again) this.wake();
      });
  }

  private async pass(): Promise<void> {
    const feeds = [...this.feeds.values()];
    if (feeds.length === 0) return;
    let latestHorizon: bigint | null = null;
    await forEachLimited(feeds, this.readConcurrency, async (feed) => {
      const horizon = await this.readFeed(feed);
      if (horizon !== null && (latestHorizon === null || horizon > latestHorizon)) latestHorizon = horizon;
    });
    const horizon: bigint | null = latestHorizon;
    if (horizon !== null && this.maxNotified >= horizon) {
      // a notified event is not readable yet: an older transaction is still running
      this.scheduleRetry();
    } else {
      this.retryDelayMs = RETRY_MIN_MS;
    }
  }

  private scheduleRetry(): void {
    if (this.retryTimer || this.closed) return;
    const delay = this.retryDelayMs;
    this.retryDelayMs = Math.min(this.retryDelayMs * 2, this.pollIntervalMs);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      this.wake();
    }, delay);
    this.retryTimer.unref();
  }

  /** Reads for one feed until it is caught up (or MAX_ROUNDS_PER_PASS); returns the last read's horizon. */
  private async readFeed(feed: Feed): Promise<bigint | null> {
    let horizon: bigint | null = null;
    for (let round = 0; round < MAX_ROUNDS_PER_PASS; round++) {
      const active = [...feed.subscriptions].filter((s) => !s.stream.isEnded && s.stream.buffered < this.maxBuffered);
      if (active.length === 0) return horizon;
      let from = (active[0] as Subscription).cursor;
      const instances = new Set<string | null>();
      let taskVisibility = false;
      for (const s of active) {
        if (s.cursor < from) from = s.cursor;
        instances.add(s.instanceId);
        taskVisibility ||= s.needsTaskVisibility;
      }
      const instanceId = instances.size === 1 ? ([...instances][0] ?? null) : null;
      let events: EventRow[];
      try {
        const read = await withSettings(this.options.pool, feed.settings, (client) =>
          readEvents(client, from, instanceId, this.batchSize, taskVisibility),
        );
        events = read.result;
        horizon = read.horizon;
        feed.failures = 0;
      } catch (e) {
        this.readFailed(feed, e);
        return horizon;
      }
      const last = events[events.length - 1];
      if (this.logger.isLevelEnabled('trace')) {
        this.logger.trace({ tenant: feed.tenant, from: String(from), events: events.length, horizon: String(horizon) }, 'events: read');
      }
      if (!last) return horizon;
      for (const s of active) s.offer(events, last.id);
      if (events.length < this.batchSize) return horizon;
    }
    // more to read: continue in the next pass, after the other feeds
    this.again = true;
    return horizon;
  }

  private readFailed(feed: Feed, e: unknown): void {
    feed.failures++;
    const error = new EventReadError(`cannot read the event log (attempt ${feed.failures} of ${this.maxReadFailures})`, e);
    if (feed.failures < this.maxReadFailures) {
      this.logger.warn({ err: error, tenant: feed.tenant }, 'events: read failed; retrying at the next poll');
      return;
    }
    this.logger.error({ err: error, tenant: feed.tenant }, 'events: reads keep failing; ending the subscriptions of this principal');
    for (const s of [...feed.subscriptions]) s.stream.fail(new SubscriptionRefused('the event log cannot be read; resubscribe with `after` to resume', 'EVENTS_UNAVAILABLE'));
  }

  /** Ends every subscription, stops renewing leases, closes the LISTEN connection. */
  async close(): Promise<void> {
    if (this.closed) return;
    for (const feed of [...this.feeds.values()]) for (const s of [...feed.subscriptions]) s.stream.close();
    this.closed = true;
    this.stopPolling();
    await this.leases.close();
    await this.running;
    await this.listener.close();
  }
}
