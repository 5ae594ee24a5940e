/**
 * Wake-up calls for the external-task runner: one connection LISTENs on
 * channel `bpm_external_task` (the server's NotificationListener: reconnects
 * with backoff), which the engine notifies in the transaction that makes an
 * external task fetchable (created, failed with no delay, incident retried),
 * but only for tenants with a live lease: NOTIFY makes committing
 * transactions queue behind one another, so the engine sends it only while
 * someone listens. This connection holds the leases of the tenants the
 * worker serves (bpm.register_task_listener, taken on every connect and
 * renewed every `LEASE_RENEW_MS` with a `LEASE_TTL` ttl; a failed renewal is
 * logged and retried at the next one; a worker that stops releases them, one
 * that dies leaves them to lapse within the ttl).
 *
 * The payload is empty: a notification is visible to every listener of the
 * cluster, so it carries no tenant data; the runner simply fetches. Polling
 * stays the fallback (tasks whose back-off expires, a lost connection).
 */
import type pg from 'pg';
import { NotificationListener } from '../../server/subscriptions/listener';
import { errorMessage } from '../errors';
import type { Logger } from '../logger';
import { ENGINE_ROLE, useTenant } from '../engine-pool';

export const EXTERNAL_TASK_CHANNEL = 'bpm_external_task';
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
  const { tenants, listenerId, onWake, logger } = options;

  /** Takes or renews the leases; a ttl of 0 releases them. */
  const setLeases = async (c: pg.Client, ttl: string): Promise<void> => {
    for (const tenant of tenants) {
      await useTenant(c, tenant);
      await c.query({ name: 'pgbpm_listen_lease', text: `select bpm.register_task_listener($1, $2::interval)`, values: [listenerId, ttl] });
    }
  };
  const renewLeases = (c: pg.Client): Promise<void> => setLeases(c, LEASE_TTL);

  const listener = new NotificationListener({
    connectionString: options.connectionString,
    channel: EXTERNAL_TASK_CHANNEL,
    applicationName: 'pgbpm-worker-listen',
    name: 'external tasks',
    logger,
    prepare: async (c) => {
      await c.query(`set role ${ENGINE_ROLE}`);
      await renewLeases(c);
    },
    onNotify: () => onWake(),
    // tasks created while no one listened
    onConnected: () => onWake(),
    minBackoffMs: 500,
    maxBackoffMs: 30_000,
  });
  listener.start().catch((e: unknown) => logger.warn({ err: errorMessage(e) }, 'external tasks: no LISTEN connection yet; polling until there is one'));

  const renewTimer = setInterval(() => {
    listener.withConnection(renewLeases).catch((e: unknown) => {
      logger.warn({ err: errorMessage(e) }, 'external tasks: cannot renew the NOTIFY leases; retried at the next renewal');
    });
  }, LEASE_RENEW_MS);
  renewTimer.unref();

  return {
    stop: async () => {
      clearInterval(renewTimer);
      // released, so that the engine stops notifying now rather than when they lapse
      await listener.withConnection((c) => setLeases(c, '0')).catch((e: unknown) => {
        logger.warn({ err: errorMessage(e) }, 'external tasks: cannot release the NOTIFY leases; they lapse within their ttl');
      });
      await listener.close();
    },
  };
}
