/**
 * Jobs of dead workers run again within seconds, not hours.
 *
 * graphile-worker (0.16) releases the jobs a crashed process held (SIGKILL,
 * a lost VM) only after its 4-hour lock timeout: a timer whose job was
 * running then fires 4 hours late. So each worker process proves that its job
 * loops are alive: one connection holds a session advisory lock per loop id
 * (graphile-worker's `locked_by`), and PostgreSQL drops those locks when the
 * session ends, i.e. when the process dies or loses its connection. Every
 * `intervalMs` each process looks at the jobs locked for longer than
 * `staleAfterMs`; a `locked_by` whose advisory lock it can take belongs to
 * no live session, so its jobs are unlocked (force_unlock_workers) and run
 * again. Every task is idempotent, so a job released from a worker that was
 * only cut off for a moment and still finishes it runs twice at worst, as
 * graphile-worker's own timeout would do.
 *
 * Every process that runs jobs of this queue must be a pgbpm worker that
 * holds these locks (this version or later): jobs of other graphile-worker
 * processes would look dead after `staleAfterMs`.
 */
import type pg from 'pg';
import { errorMessage } from './errors';
import type { Logger } from './logger';
import { WORKER_SCHEMA } from './schema';

/** First key of the advisory locks ('bpmw'); the second is hashtext(loop id). */
export const LIVENESS_LOCK_SPACE = 0x62706d77;

export interface JobLivenessOptions {
  pool: pg.Pool;
  logger: Logger;
  intervalMs: number;
  staleAfterMs: number;
}

export class JobLiveness {
  /** Ids of this process's live job loops. */
  private readonly ids = new Set<string>();
  /** Ids whose lock the current session holds. */
  private held = new Set<string>();
  private client: pg.PoolClient | null = null;
  /** Every use of the connection, one after the other. */
  private queue: Promise<unknown> = Promise.resolve();
  private readonly timer: NodeJS.Timeout;
  private stopped = false;

  constructor(private readonly options: JobLivenessOptions) {
    this.timer = setInterval(() => void this.sweep(), options.intervalMs);
    this.timer.unref();
  }

  /** A job loop of this process started: hold its lock. */
  add(id: string): void {
    this.ids.add(id);
    void this.run(async (c) => this.hold(c));
  }

  /** A job loop of this process ended: let its lock go. */
  remove(id: string): void {
    if (!this.ids.delete(id)) return;
    void this.run(async (c) => {
      if (!this.held.delete(id)) return;
      await c.query('select pg_catalog.pg_advisory_unlock($1, pg_catalog.hashtext($2))', [LIVENESS_LOCK_SPACE, id]);
    });
  }

  /** Releases the jobs of loops no live session holds; resolves to their loop ids. */
  sweep(): Promise<string[]> {
    const released: string[] = [];
    return this.run(async (c) => {
      const { rows } = await c.query<{ locked_by: string }>(
        `select distinct j.locked_by from ${WORKER_SCHEMA}._private_jobs j
         where j.locked_by is not null and j.locked_at < pg_catalog.now() - pg_catalog.make_interval(secs => $1)`,
        [this.options.staleAfterMs / 1000],
      );
      for (const { locked_by: id } of rows) {
        // (a session takes its own advisory locks again: this process's loops are alive by definition)
        if (this.ids.has(id)) continue;
        const { rows: taken } = await c.query<{ dead: boolean }>(
          'select pg_catalog.pg_try_advisory_lock($1, pg_catalog.hashtext($2)) as dead',
          [LIVENESS_LOCK_SPACE, id],
        );
        if (!taken[0]?.dead) continue;
        try {
          await c.query(`select ${WORKER_SCHEMA}.force_unlock_workers($1::text[])`, [[id]]);
          released.push(id);
        } finally {
          await c.query('select pg_catalog.pg_advisory_unlock($1, pg_catalog.hashtext($2))', [LIVENESS_LOCK_SPACE, id]);
        }
      }
      if (released.length > 0) {
        this.options.logger.warn({ workers: released }, 'job runner: released the jobs of job loops no live worker holds (a worker died); they run again');
      }
    }).then(() => released);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    await this.queue;
    // ending the session lets every lock go
    this.client?.release(true);
    this.client = null;
  }

  /**
   * Takes the locks of the loops the session does not hold yet. (Without
   * waiting: a lock another session holds is one of a live loop whose id
   * hashes alike, which keeps this loop's jobs alive too; taken again later.)
   */
  private async hold(c: pg.PoolClient): Promise<void> {
    for (const id of this.ids) {
      if (this.held.has(id)) continue;
      const { rows } = await c.query<{ taken: boolean }>('select pg_catalog.pg_try_advisory_lock($1, pg_catalog.hashtext($2)) as taken', [LIVENESS_LOCK_SPACE, id]);
      if (rows[0]?.taken) this.held.add(id);
    }
  }

  /**
   * Runs `fn` on the liveness connection after everything queued before it,
   * (re)connecting first (a new session takes every lock again). A failure is
   * logged and drops the connection; the next check reconnects.
   */
  private run(fn: (c: pg.PoolClient) => Promise<void>): Promise<void> {
    const next = this.queue.then(async () => {
      if (this.stopped) return;
      let client = this.client;
      try {
        if (!client) {
          client = await this.options.pool.connect();
          this.client = client;
          this.held = new Set();
          await this.hold(client);
        }
        await fn(client);
      } catch (e) {
        this.options.logger.warn({ err: errorMessage(e) }, 'job runner: liveness check failed (retried at the next check)');
        if (client && this.client === client) {
          this.client = null;
          client.release(true);
        }
      }
    });
    this.queue = next;
    return next;
  }
}
