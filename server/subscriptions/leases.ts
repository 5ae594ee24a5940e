/**
 * NOTIFY leases: the engine notifies channel bpm_event only for tenants with
 * a live registration (bpm.register_event_listener), because notifying
 * serialises commits. While a tenant has subscriptions on this server, the
 * server registers itself (listener id per server process) and renews the
 * lease every `renewMs` with a ttl of `ttlSeconds`, acting as a role of that
 * tenant (the settings of one of its live subscribers). When the tenant's last
 * subscription ends (or the server closes), renewing stops and the lease is
 * released (a ttl of 0); if that fails, it runs out within the ttl.
 * A failed registration is logged and retried at the next renewal; meanwhile
 * the fallback poll delivers the tenant's events.
 */
import type pg from 'pg';
import type { Logger } from '../observability';
import { registerListener, withSettings, type PgSettings } from './reader';

export interface LeaseOptions {
  pool: pg.Pool;
  listenerId: string;
  logger: Logger;
  /** Settings of a live subscriber of the tenant (role, bpm.tenant_id, …), or null when none is left. */
  settingsFor(tenant: string): PgSettings | null;
  ttlSeconds?: number;
  renewMs?: number;
}

export const DEFAULT_LEASE_TTL_SECONDS = 30;
export const DEFAULT_LEASE_RENEW_MS = 10_000;

interface Lease {
  timer: NodeJS.Timeout;
  /** The registration in flight or last made. */
  current: Promise<void>;
  /** The settings of the last registration (to release the lease with). */
  settings: PgSettings | null;
}

export class TenantLeases {
  private readonly options: LeaseOptions;
  private readonly leases = new Map<string, Lease>();
  /** Releases in flight, by tenant. */
  private readonly releasing = new Map<string, Promise<void>>();
  private readonly ttlSeconds: number;
  private readonly renewMs: number;

  constructor(options: LeaseOptions) {
    this.options = options;
    this.ttlSeconds = options.ttlSeconds ?? DEFAULT_LEASE_TTL_SECONDS;
    this.renewMs = options.renewMs ?? DEFAULT_LEASE_RENEW_MS;
    if (this.renewMs >= this.ttlSeconds * 1000) throw new Error('TenantLeases: renewMs must be shorter than the ttl');
  }

  /** Tenants with a lease being renewed. */
  get tenants(): string[] {
    return [...this.leases.keys()];
  }

  /** Starts registering for `tenant` (idempotent); resolves after the first registration (never rejects). */
  acquire(tenant: string): Promise<void> {
    const existing = this.leases.get(tenant);
    if (existing) return existing.current;
    const lease: Lease = { timer: setInterval(() => (lease.current = this.register(tenant, lease)), this.renewMs), current: Promise.resolve(), settings: null };
    lease.timer.unref();
    this.leases.set(tenant, lease);
    // after a release of the tenant still in flight, which would otherwise undo this registration
    lease.current = (this.releasing.get(tenant) ?? Promise.resolve()).then(() => this.register(tenant, lease));
    return lease.current;
  }

  /**
   * Stops renewing `tenant`'s lease and releases it (a ttl of 0, with the
   * settings it was last registered with); if that fails, it lapses within
   * the ttl. Resolves once released (never rejects).
   */
  release(tenant: string): Promise<void> {
    const lease = this.leases.get(tenant);
    if (!lease) return this.releasing.get(tenant) ?? Promise.resolve();
    clearInterval(lease.timer);
    this.leases.delete(tenant);
    const released = lease.current.then(async () => {
      if (!lease.settings) return;
      try {
        await withSettings(this.options.pool, lease.settings, (client) => registerListener(client, this.options.listenerId, 0), { readOnly: false });
      } catch (e) {
        this.options.logger.warn({ err: e, tenant }, 'events: cannot release the NOTIFY lease of a tenant; it lapses within its ttl');
      }
    });
    this.releasing.set(tenant, released);
    void released.then(() => {
      if (this.releasing.get(tenant) === released) this.releasing.delete(tenant);
    });
    return released;
  }

  /** Releases every lease (resolves when every release in flight is done). */
  async close(): Promise<void> {
    await Promise.all([...this.leases.keys()].map((tenant) => this.release(tenant)));
    await Promise.all([...this.releasing.values()]);
  }

  private async register(tenant: string, lease: Lease): Promise<void> {
    const settings = this.options.settingsFor(tenant);
    if (!settings) return;
    try {
      await withSettings(
        this.options.pool,
        settings,
        (client) => registerListener(client, this.options.listenerId, this.ttlSeconds),
        { readOnly: false },
      );
      lease.settings = settings;
    } catch (e) {
      this.options.logger.warn({ err: e, tenant }, 'events: cannot register the NOTIFY lease of a tenant; its subscriptions rely on polling until the next attempt');
    }
  }
}
