/**
 * NOTIFY leases: the engine notifies channel bpm_event only for tenants with
 * a live registration (bpm.register_event_listener), because notifying
 * serialises commits. While a tenant has subscriptions on this server, the
 * server registers itself (listener id per server process) and renews the
 * lease every `renewMs` with a ttl of `ttlSeconds`, acting as a role of that
 * tenant (the settings of one of its live subscribers). When the tenant's last
 * subscription ends, renewing stops and the lease runs out within the ttl.
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
}

export class TenantLeases {
  private readonly options: LeaseOptions;
  private readonly leases = new Map<string, Lease>();
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
    const timer = setInterval(() => {
      const lease = this.leases.get(tenant);
      if (lease) lease.current = this.register(tenant);
    }, this.renewMs);
    timer.unref();
    const lease: Lease = { timer, current: this.register(tenant) };
    this.leases.set(tenant, lease);
    return lease.current;
  }

  /** Stops renewing `tenant`'s lease (it expires within the ttl). */
  release(tenant: string): void {
    const lease = this.leases.get(tenant);
    if (!lease) return;
    clearInterval(lease.timer);
    this.leases.delete(tenant);
  }

  close(): void {
    for (const tenant of [...this.leases.keys()]) this.release(tenant);
  }

  private async register(tenant: string): Promise<void> {
    const settings = this.options.settingsFor(tenant);
    if (!settings) return;
    try {
      await withSettings(
        this.options.pool,
        settings,
        (client) => registerListener(client, this.options.listenerId, this.ttlSeconds),
        { readOnly: false },
      );
    } catch (e) {
      this.options.logger.warn({ err: e, tenant }, 'events: cannot register the NOTIFY lease of a tenant; its subscriptions rely on polling until the next attempt');
    }
  }
}
