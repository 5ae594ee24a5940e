import type { Task } from 'graphile-worker';
import { asTenant } from './context';

/** History retention settings (worker config: PGBPM_HISTORY_TTL, PGBPM_EVENT_RETENTION, PGBPM_CLEANUP_INTERVAL). */
export interface HistorySettings {
  /** Time to live of ended instances whose definition sets none; null: kept. */
  defaultTtlMs: number | null;
  /** Age beyond which event log rows are removed; null: kept. */
  eventRetentionMs: number | null;
  /** Time between a tenant's cleanup runs. */
  intervalMs: number;
}

/** Batches per job: a run stops after this many full batches and goes on at its next run. */
const MAX_BATCHES = 20;
/** Call trees and events removed per batch (one transaction each). */
const INSTANCES_PER_BATCH = 500;
const EVENTS_PER_BATCH = 5000;

const interval = (ms: number | null): string | null => (ms === null ? null : `${Math.round(ms)} milliseconds`);

/**
 * `bpm_cleanup_history`: one tenant's history retention (job key
 * bpm-cleanup:<tenant>, first scheduled by bpm.deploy). Calls
 * bpm.cleanup_history, one transaction per batch, while batches come back
 * full, then schedules its next run. Idempotent: what is gone is gone, a run
 * twice removes nothing more.
 */
export function cleanupHistoryTask(settings: HistorySettings): Task<'bpm_cleanup_history'> {
  return async (payload, helpers) => {
    if (typeof payload?.tenant_id !== 'string') {
      throw new Error(`bpm_cleanup_history: malformed payload ${JSON.stringify(payload)}`);
    }
    const tenant = payload.tenant_id;
    const total = { instances: 0, activities: 0, events: 0 };
    for (let batch = 0; batch < MAX_BATCHES; batch++) {
      const removed = await asTenant(helpers, tenant, async (client) => {
        const { rows } = await client.query<{ instances: number; activities: number; events: number }>(
          `select instances, activities, events from bpm.cleanup_history($1, $2::interval, $3::interval, $4)`,
          [INSTANCES_PER_BATCH, interval(settings.defaultTtlMs), interval(settings.eventRetentionMs), EVENTS_PER_BATCH],
        );
        return rows[0] ?? { instances: 0, activities: 0, events: 0 };
      });
      total.instances += removed.instances;
      total.activities += removed.activities;
      total.events += removed.events;
      if (removed.instances < INSTANCES_PER_BATCH && removed.events < EVENTS_PER_BATCH) break;
    }
    if (total.instances + total.events > 0) helpers.logger.info(`history cleanup of tenant ${tenant}: ${JSON.stringify(total)}`);
    await helpers.addJob('bpm_cleanup_history', { tenant_id: tenant }, {
      runAt: new Date(Date.now() + settings.intervalMs),
      jobKey: `bpm-cleanup:${tenant}`,
      jobKeyMode: 'replace',
      maxAttempts: 5,
    });
  };
}
