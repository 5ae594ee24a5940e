/**
 * The job waker's scheduling (worker/job-waker.ts) with a stand-in for its
 * look-ahead statement and for graphile-worker's loops: when it looks, whom
 * it nudges, and when it stays quiet. test/db/worker/job_waker.test.ts runs
 * it against real jobs.
 */
import type pg from 'pg';
import type { Worker } from 'graphile-worker';
import { JobWaker } from '../../worker/job-waker';
import { createWorkerLogger } from '../../worker/logger';

const logger = createWorkerLogger({ level: 'fatal', write: () => undefined });
const tick = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Waits until `done()` holds (timers may run late on a loaded machine), at most 5 s. */
async function until(done: () => boolean): Promise<void> {
  for (const deadline = Date.now() + 5000; !done(); await tick(5)) {
    if (Date.now() > deadline) throw new Error('timed out');
  }
}

/** A look-ahead that answers from `answers` (ms until the next due job, or null), one per look. */
function fakePool(answers: Array<number | null>): { pool: pg.Pool; looks: () => number } {
  let looks = 0;
  const pool = {
    query: async () => ({ rows: [{ due_in_ms: looks < answers.length ? answers[looks++] : (looks++, null) }] }),
  } as unknown as pg.Pool;
  return { pool, looks: () => looks };
}

/** A loop that counts its nudges; `idle` says whether a nudge would wake it. */
function fakeLoop(name: string): Worker & { nudges: number; idle: boolean } {
  const loop = {
    workerId: name,
    nudges: 0,
    idle: true,
    nudge(): boolean {
      if (!loop.idle) return false;
      loop.nudges++;
      loop.idle = false;
      return true;
    },
  };
  return loop as unknown as Worker & { nudges: number; idle: boolean };
}

test('a due job wakes one idle loop, then the waker looks again for the loops still idle', async () => {
  const { pool, looks } = fakePool([20, 20]);
  const waker = new JobWaker({ pool, logger, tasks: ['t'], pollIntervalMs: 10_000 });
  const loops = [fakeLoop('a'), fakeLoop('b'), fakeLoop('c')];
  for (const loop of loops) waker.loopIdle(loop);
  expect(looks()).toBe(1);
  await until(() => looks() === 3);
  await tick(20);
  // two jobs 20 ms apart: two loops woken, one each; the third still sleeps
  expect(loops.map((l) => l.nudges).sort()).toEqual([0, 1, 1]);
  expect(waker.wakeCount).toBe(2);
  // after the second wake it looked again (nothing more due) and waits a poll interval
  expect(looks()).toBe(3);
  waker.stop();
});

test('nothing due: one look per poll interval while a loop is idle, none while every loop is busy', async () => {
  const { pool, looks } = fakePool([]);
  const waker = new JobWaker({ pool, logger, tasks: ['t'], pollIntervalMs: 30 });
  const loop = fakeLoop('a');
  waker.loopIdle(loop);
  await tick(100);
  const whileIdle = looks();
  // (about 4; fewer when timers run late)
  expect(whileIdle).toBeGreaterThanOrEqual(2);
  expect(whileIdle).toBeLessThanOrEqual(5);
  waker.loopBusy(loop);
  await tick(100);
  expect(looks()).toBe(whileIdle);
  expect(loop.nudges).toBe(0);
  waker.stop();
});

test('a loop that took a job before the due time is not nudged; a failing look is retried a poll interval later', async () => {
  let looks = 0;
  const pool = {
    query: async () => {
      looks++;
      if (looks === 1) throw new Error('connection lost');
      return { rows: [{ due_in_ms: 10 }] };
    },
  } as unknown as pg.Pool;
  const waker = new JobWaker({ pool, logger, tasks: ['t'], pollIntervalMs: 30 });
  const loop = fakeLoop('a');
  waker.loopIdle(loop);
  await until(() => loop.nudges === 1);
  expect(looks).toBe(2);
  // busy before the next due time: the timer is dropped with the last idle loop
  loop.idle = true;
  waker.loopIdle(loop);
  await until(() => looks === 3);
  waker.loopBusy(loop);
  await tick(40);
  expect(loop.nudges).toBe(1);
  waker.stop();
});

test('stopped: no more looks, no nudges', async () => {
  const { pool, looks } = fakePool([5]);
  const waker = new JobWaker({ pool, logger, tasks: ['t'], pollIntervalMs: 10 });
  const loop = fakeLoop('a');
  waker.loopIdle(loop);
  waker.stop();
  await tick(40);
  expect(looks()).toBe(1);
  expect(loop.nudges).toBe(0);
  waker.loopIdle(loop);
  expect(looks()).toBe(1);
});
