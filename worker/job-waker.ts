/**
 * Idle job loops wake when a job comes due, not at their next poll.
 *
 * graphile-worker (0.16) finds a job that becomes due later (a timer's
 * run_at) only by polling: each idle loop looks again every poll interval, so
 * a timer fired up to one interval (500 ms) late, half of it on average. The
 * engine does not NOTIFY when it arms a job due later (engine/jobs.sql: that
 * would wake every worker to find nothing, and NOTIFY serialises commits).
 *
 * This waker looks ahead instead, only while at least one loop of this
 * process is idle: it asks for the earliest run_at, within the next two
 * poll intervals, among the available jobs of this process's tasks, sleeps
 * until then and nudges one idle loop (graphile-worker's `Worker.nudge`),
 * which takes the job at once; then it looks again for the loops still idle.
 * Finding nothing, it asks again after one poll interval (two statements a
 * second at the default 500 ms, where four idle loops poll eight times). A
 * job armed later for a time sooner than the waker's next look is found by
 * the loops' own polling, as before. Loops busy with jobs take the next job
 * without sleeping, so during a burst the waker has nothing to do.
 *
 * The look-ahead is one statement on graphile-worker's main index (priority,
 * run_at, partial on is_available): for each priority present (a loose index
 * scan over them), the first run_at in the window; 0.2 ms with 100,000 jobs
 * waiting. A nudge that finds the job gone (another process took it, or the
 * engine removed it) costs the loop one empty look, as a poll would.
 */
import type pg from 'pg';
import type { Worker } from 'graphile-worker';
import { errorMessage } from './errors';
import type { Logger } from './logger';
import { WORKER_SCHEMA } from './schema';

export interface JobWakerOptions {
  pool: pg.Pool;
  logger: Logger;
  /** Task identifiers this process runs: only their jobs wake it. */
  tasks: string[];
  /** The loops' poll interval: the waker looks two ahead, once per interval. */
  pollIntervalMs: number;
}

/** Milliseconds until the earliest available job of `$1` due within `$2` ms, or null. */
const NEXT_DUE_SQL = `
with recursive priorities(priority) as (
  (select j.priority from ${WORKER_SCHEMA}._private_jobs j where j.is_available order by j.priority limit 1)
  union all
  select (select j.priority from ${WORKER_SCHEMA}._private_jobs j where j.is_available and j.priority > p.priority order by j.priority limit 1)
  from priorities p where p.priority is not null
)
select pg_catalog.date_part('epoch', pg_catalog.min(n.run_at) - pg_catalog.now()) * 1000 as due_in_ms
from priorities p
cross join lateral (
  select j.run_at from ${WORKER_SCHEMA}._private_jobs j
  where j.is_available and j.priority = p.priority
    and j.run_at > pg_catalog.now() and j.run_at <= pg_catalog.now() + pg_catalog.make_interval(secs => $2::float8 / 1000)
    and j.task_id = any(array(select t.id from ${WORKER_SCHEMA}._private_tasks t where t.identifier = any($1::text[])))
  order by j.run_at limit 1) n`;

export class JobWaker {
  private readonly idle = new Set<Worker>();
  private timer: NodeJS.Timeout | null = null;
  private looking = false;
  private stopped = false;
  private wakes = 0;

  constructor(private readonly options: JobWakerOptions) {}

  /** Times this waker nudged idle loops because a job came due. */
  get wakeCount(): number {
    return this.wakes;
  }

  /** A loop found no job and sleeps until its next poll. */
  loopIdle(worker: Worker): void {
    if (this.stopped) return;
    this.idle.add(worker);
    if (this.timer === null && !this.looking) void this.look();
  }

  /** A loop is looking for a job (or was released): it is not idle. */
  loopBusy(worker: Worker): void {
    this.idle.delete(worker);
    if (this.idle.size === 0 && this.timer !== null) {
      clearTimeout(this.timer);
      this.timer = null;
    }
  }

  stop(): void {
    this.stopped = true;
    this.idle.clear();
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
  }

  private async look(): Promise<void> {
    this.looking = true;
    let dueInMs: number | null = null;
    try {
      const { rows } = await this.options.pool.query<{ due_in_ms: number | null }>(NEXT_DUE_SQL, [this.options.tasks, 2 * this.options.pollIntervalMs]);
      dueInMs = rows[0]?.due_in_ms ?? null;
    } catch (e) {
      // the loops' own polling still finds every job
      this.options.logger.debug({ err: errorMessage(e) }, 'job waker: look-ahead failed (retried)');
    } finally {
      this.looking = false;
    }
    if (this.stopped || this.idle.size === 0) return;
    if (dueInMs === null) {
      this.schedule(() => void this.look(), this.options.pollIntervalMs);
    } else {
      // (1 ms past run_at: the job is due by the database's clock when the loop asks)
      this.schedule(() => this.wake(), Math.max(0, dueInMs) + 1);
    }
  }

  private schedule(fn: () => void, ms: number): void {
    this.timer = setTimeout(() => {
      this.timer = null;
      fn();
    }, ms);
    this.timer.unref();
  }

  /**
   * Nudges one idle loop, which takes the job (and, finding more due, goes on
   * without sleeping); then looks ahead again for the other idle loops. One
   * loop per due job: nudging every idle loop would send all of them to look
   * for a single job (a steady trickle of timers would cost four lookups each).
   */
  private wake(): void {
    for (const worker of this.idle) {
      this.idle.delete(worker);
      let nudged = false;
      try {
        nudged = worker.nudge();
      } catch {
        // (a loop released meanwhile: nothing to wake)
      }
      if (nudged) {
        this.wakes++;
        break;
      }
    }
    if (this.idle.size > 0 && this.timer === null && !this.looking) void this.look();
  }
}
