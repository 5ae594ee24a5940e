/**
 * Wake-up calls for the external-task runner: one connection LISTENs on
 * channel `bpm_external_task`, which the engine notifies in the transaction
 * that makes an external task fetchable (created, failed with no delay,
 * incident retried), but only for tenants with a live lease: NOTIFY makes
 * committing transactions queue behind one another, so the engine sends it
 * only while someone listens. This connection holds the leases of the
 * tenants the worker serves (bpm.register_task_listener, renewed every
 * `LEASE_RENEW_MS` with a `LEASE_TTL` ttl; they lapse when the worker goes).
 *
 * The payload is empty: a notification is visible to every listener of the
 * cluster, so it carries no tenant data; the runner simply fetches. Polling
 * stays the fallback (tasks whose back-off expires, a lost connection): a
 * listener that fails reconnects with back-off and never stops the runner.
 */
import pg from 'pg';
import { errorMessage } from '../errors';
import type { Logger } from '../logger';
import { ENGINE_ROLE } from '../engine-pool';

export const EXTERNAL_TASK_CHANNEL = 'bpm_external_task';
const RECONNECT_MIN_MS = 500;
const RECONNECT_MAX_MS = 30_000;
const LEASE_RENEW_MS = 10_000;
const LEASE_TTL = '30 seconds';

export interface WakeListener {
  stop(): Promise<void>;
}

export interface WakeListenerOptions {
  connectionString: string;
  /** The tenants to hold leases for, and the listener id the leases carry. */
  tenants: string[];
  listenerId: string;
  onWake: () => void;
  logger: Logger;
}

export function startWakeListener(options: WakeListenerOptions): WakeListener {
  const { connectionString, tenants, listenerId, onWake, logger } = options;
  let client: pg.Client | undefined;
  let stopped = false;
  let retryTimer: NodeJS.Timeout | undefined;
  let renewTimer: NodeJS.Timeout | undefined;
  let delay = RECONNECT_MIN_MS;

  const renewLeases = async (c: pg.Client): Promise<void> => {
    for (const tenant of tenants) {
      await c.query({ name: 'pgbpm_listen_tenant', text: `select pg_catalog.set_config('bpm.tenant_id', $1, false)`, values: [tenant] });
      await c.query({ name: 'pgbpm_listen_lease', text: `select bpm.register_task_listener($1, $2::interval)`, values: [listenerId, LEASE_TTL] });
    }
  };

  const lost = (c: pg.Client, e: unknown, what: string): void => {
    logger.warn({ err: errorMessage(e) }, `external-task listener ${what}; polling until it is back`);
    if (client === c) {
      client = undefined;
      if (renewTimer) clearInterval(renewTimer);
      renewTimer = undefined;
    }
    c.end().catch(() => undefined);
    scheduleReconnect();
  };

  const scheduleReconnect = (): void => {
    if (stopped || retryTimer) return;
    retryTimer = setTimeout(() => {
      retryTimer = undefined;
      void connect();
    }, delay);
    retryTimer.unref();
    delay = Math.min(RECONNECT_MAX_MS, delay * 2);
  };

  const connect = async (): Promise<void> => {
    const c = new pg.Client({ connectionString, application_name: 'pgbpm-worker-listen' });
    c.on('error', (e) => lost(c, e, 'connection lost'));
    c.on('notification', () => onWake());
    try {
      await c.connect();
      await c.query(`set role ${ENGINE_ROLE}`);
      await c.query(`listen ${EXTERNAL_TASK_CHANNEL}`);
      await renewLeases(c);
    } catch (e) {
      lost(c, e, 'could not start');
      return;
    }
    if (stopped) {
      await c.end().catch(() => undefined);
      return;
    }
    client = c;
    delay = RECONNECT_MIN_MS;
    renewTimer = setInterval(() => {
      renewLeases(c).catch((e: unknown) => lost(c, e, 'could not renew its leases'));
    }, LEASE_RENEW_MS);
    renewTimer.unref();
    // tasks created while no one listened
    onWake();
  };

  void connect();
  return {
    stop: async () => {
      stopped = true;
      if (retryTimer) clearTimeout(retryTimer);
      if (renewTimer) clearInterval(renewTimer);
      const c = client;
      client = undefined;
      await c?.end().catch(() => undefined);
    },
  };
}
