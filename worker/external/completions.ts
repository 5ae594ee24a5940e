/**
 * Completions in batches: the results of handlers that finish while an
 * earlier report is on its way are sent together, in one call of
 * bpm.complete_external_tasks (one transaction, one commit, one round trip),
 * instead of one complete_external_task call each. Nothing waits on purpose:
 * a result goes out at once when no report of its tenant is under way, so a
 * handler alone reports as fast as before; results that arrive while one is
 * under way go together right after it. Batches form only when results come
 * faster than the database takes them, and grow with the load.
 *
 * Each completion still succeeds or fails alone (the function undoes a failing
 * one only); its promise rejects with the engine's SQLSTATE and message, as a
 * single call would, so callers treat both the same. A transient error of the
 * whole call (deadlock, serialization failure) sends the batch again.
 */
import type pg from 'pg';
import { retryTransient, type Variables } from '../errors';
import { withTenant } from '../engine-pool';
import { completeExternalTasks } from './engine-calls';

/**
 * Reports of one tenant under way at once. One: npm run bench:worker spent
 * 1,700–2,300 µs of machine CPU per service-task round trip with one, 2,040–2,530
 * with two (smaller batches) and 2,550–2,890 completing each task alone.
 */
export const COMPLETION_REPORTS_IN_FLIGHT = 1;
/** Most completions per call. */
export const COMPLETION_BATCH_MAX = 100;

/** An engine error of one completion of a batch: the SQLSTATE and message a single call would have raised. */
export class CompletionRefused extends Error {
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.name = 'CompletionRefused';
    this.code = code;
  }
}

interface Pending {
  taskId: string;
  variables: Variables;
  resolve: () => void;
  reject: (e: unknown) => void;
}

interface TenantQueue {
  pending: Pending[];
  inFlight: number;
}

export interface CompletionBatcher {
  /** Completes a task locked by this worker; rejects with the engine's error (CompletionRefused, or the call's own). */
  complete(tenant: string, taskId: string, variables: Variables): Promise<void>;
}

export function createCompletionBatcher(
  pool: pg.Pool,
  workerId: string,
  maxInFlight = COMPLETION_REPORTS_IN_FLIGHT,
  maxBatch = COMPLETION_BATCH_MAX,
): CompletionBatcher {
  const queues = new Map<string, TenantQueue>();

  const send = async (tenant: string, queue: TenantQueue): Promise<void> => {
    queue.inFlight += 1;
    try {
      while (queue.pending.length > 0) {
        const batch = queue.pending.splice(0, maxBatch);
        try {
          const reports = await retryTransient(() =>
            withTenant(pool, tenant, (client) =>
              completeExternalTasks(
                client,
                batch.map((p) => p.taskId),
                workerId,
                batch.map((p) => p.variables),
              ),
            ),
          );
          batch.forEach((p, i) => {
            const report = reports[i];
            if (!report || report.task_id !== p.taskId) {
              p.reject(new Error(`complete_external_tasks answered out of order at position ${i} (task ${p.taskId})`));
            } else if (report.error_code === null) p.resolve();
            else p.reject(new CompletionRefused(report.error_code, report.error_message ?? `SQLSTATE ${report.error_code}`));
          });
        } catch (e) {
          for (const p of batch) p.reject(e);
        }
      }
    } finally {
      queue.inFlight -= 1;
      if (queue.inFlight === 0 && queue.pending.length === 0) queues.delete(tenant);
    }
  };

  return {
    complete(tenant, taskId, variables) {
      return new Promise<void>((resolve, reject) => {
        let queue = queues.get(tenant);
        if (!queue) {
          queue = { pending: [], inFlight: 0 };
          queues.set(tenant, queue);
        }
        queue.pending.push({ taskId, variables, resolve, reject });
        if (queue.inFlight < maxInFlight) void send(tenant, queue);
      });
    },
  };
}
