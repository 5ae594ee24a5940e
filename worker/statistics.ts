/**
 * Keeps the planner statistics of the engine's tables in step with bursts:
 * every `intervalMs` it calls bpm.refresh_statistics(), which analyses the
 * engine tables that hold many more rows than their statistics say (a
 * queue-like table analysed while nearly empty and filled since; see
 * db/functions/engine/statistics.sql). One call at a time; a failure is
 * logged and the next interval tries again.
 */
import type pg from 'pg';
import { errorMessage } from './errors';
import type { Logger } from './logger';

export interface StatisticsRefresher {
  /** The tables analysed at least once since the start (for tests). */
  analysed(): string[];
  stop(): Promise<void>;
}

export function startStatisticsRefresher(pool: pg.Pool, intervalMs: number, logger: Logger): StatisticsRefresher {
  // (a set: a long-running worker analyses the same few tables again and again)
  const analysed = new Set<string>();
  let stopping = false;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> = Promise.resolve();

  const refresh = async (): Promise<void> => {
    try {
      const { rows } = await pool.query<{ tables: string[] }>({ name: 'pgbpm_refresh_statistics', text: 'select bpm.refresh_statistics() as tables' });
      const tables = rows[0]?.tables ?? [];
      if (tables.length > 0) {
        for (const table of tables) analysed.add(table);
        logger.debug({ tables }, 'planner statistics refreshed');
      }
    } catch (e) {
      logger.warn({ err: errorMessage(e) }, 'refreshing planner statistics failed (tried again at the next interval)');
    }
  };

  const schedule = (): void => {
    if (stopping) return;
    timer = setTimeout(() => {
      running = refresh().finally(schedule);
    }, intervalMs);
    timer.unref();
  };
  schedule();

  return {
    analysed: () => [...analysed],
    async stop() {
      stopping = true;
      if (timer) clearTimeout(timer);
      await running;
    },
  };
}
