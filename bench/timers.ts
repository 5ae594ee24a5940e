/**
 * Timer benchmark (issue 4: "10,000 timers due in the same second; configure
 * the worker so a due timer fires within a second, and measure it"). One run,
 * one database, the worker's job runner in this process as `pgbpm worker`
 * runs it (bpm_authenticator, SET ROLE bpm_engine, graphile-worker with the
 * worker's settings), nothing else running:
 *
 *   (a) burst: BENCH_TIMERS instances (10,000) of `start → intermediate timer
 *       catch (timeDate from a variable) → end` are started in batches (not
 *       measured, no runner running) so that every timer comes due within
 *       the same second, a few seconds after the last one was started; their
 *       due times are spread evenly over that second (millisecond steps).
 *       The runner is started then, and is idle (polling) when they come due.
 *   (b) single: one timer at a time on the idle system (due 1 s after its
 *       start plus a random fraction of the poll interval), BENCH_SINGLE trials.
 *
 * How measured: per timer, lateness = the `timerFired` event's created_at
 * (now() of the transaction that fired it: the job's bpm.fire_timer call)
 * − the subscription's due_at (both from the database clock). Reported:
 * p50 / p95 / max lateness; drain = first due time → last firing; throughput
 * = timers / (last firing − first firing). Lateness includes the delay until
 * a job loop finds the due job (the worker's job waker nudges an idle loop at
 * the due time; PGBPM_JOB_WAKE_AT_DUE=false leaves it to polling: up to one
 * poll interval) and the queueing behind earlier timers of the burst. Every figure
 * is the median over BENCH_RUNS runs (single: over all trials of all runs).
 * Durable settings: synchronous_commit and fsync as the server has them.
 *
 *   npm run bench:timers
 *   BENCH_TIMERS=2000 BENCH_RUNS=1 BENCH_SINGLE=5 npm run bench:timers   # a smoke run
 *   BENCH_JOB_CONCURRENCY=4,8,16 npm run bench:timers                    # compare settings
 *   PGBPM_JOB_WAKE_AT_DUE=false npm run bench:timers                      # polling only
 *
 * Settings (environment): BENCH_TIMERS per burst (10000), BENCH_RUNS bursts
 * per setting (3), BENCH_SINGLE single-timer trials per setting (20),
 * BENCH_JOB_CONCURRENCY graphile-worker concurrency, a comma-separated list to
 * compare (default: the worker's default, PGBPM_JOB_CONCURRENCY),
 * BENCH_JOB_POLL_INTERVAL poll interval(s) in ms (default: the worker's,
 * PGBPM_JOB_POLL_INTERVAL), BENCH_BATCH instances started per transaction
 * (500), BENCH_TIMER_MODEL `catch` (intermediate catch event, default) or
 * `boundary` (interrupting timer boundary on a user task), BENCH_DATABASE
 * (pgbpm_bench_timers, dropped and recreated), BENCH_CURRENT=1 to include
 * db/migrations/current.sql (uncommitted work).
 */
import pg from 'pg';
import { compileBpmnFiles, formatProblems } from '../compiler';
import { redactPassword } from '../cli/database';
import { workerConfigFromEnv } from '../worker/config';
import { createWorkerLogger } from '../worker/logger';
import { startWorkerRuntime, type WorkerRuntime } from '../worker/runtime';
import { prepareBenchDatabase } from './database';
import { fmt, median, percentile } from './stats';

const TIMERS = Number(process.env.BENCH_TIMERS ?? 10_000);
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const SINGLE_TRIALS = Number(process.env.BENCH_SINGLE ?? 20);
const BATCH = Number(process.env.BENCH_BATCH ?? 500);
const MODEL = process.env.BENCH_TIMER_MODEL ?? 'catch';
const DB_NAME = process.env.BENCH_DATABASE ?? 'pgbpm_bench_timers';
const TENANT = 'bench';
const KEY = 'timer_bench';

/** The worker's own defaults (and PGBPM_JOB_* when set): what `pgbpm worker` would run with. */
const workerDefaults = workerConfigFromEnv(process.env);
const list = (raw: string | undefined, fallback: number): number[] =>
  raw ? raw.split(',').map((s) => Number(s.trim())).filter((n) => Number.isFinite(n) && n > 0) : [fallback];
const CONCURRENCIES = list(process.env.BENCH_JOB_CONCURRENCY, workerDefaults.jobConcurrency);
const POLL_INTERVALS = list(process.env.BENCH_JOB_POLL_INTERVAL, workerDefaults.jobPollIntervalMs);

const BODY: Record<string, string> = {
  catch: `
    <startEvent id="start"/><sequenceFlow id="f1" sourceRef="start" targetRef="wait"/>
    <intermediateCatchEvent id="wait"><timerEventDefinition><timeDate>\${dueAt}</timeDate></timerEventDefinition></intermediateCatchEvent>
    <sequenceFlow id="f2" sourceRef="wait" targetRef="end"/><endEvent id="end"/>`,
  boundary: `
    <startEvent id="start"/><sequenceFlow id="f1" sourceRef="start" targetRef="work"/>
    <userTask id="work"/><sequenceFlow id="f2" sourceRef="work" targetRef="end"/><endEvent id="end"/>
    <boundaryEvent id="late" attachedToRef="work"><timerEventDefinition><timeDate>\${dueAt}</timeDate></timerEventDefinition></boundaryEvent>
    <sequenceFlow id="f3" sourceRef="late" targetRef="timedOut"/><endEvent id="timedOut"/>`,
};

function modelXml(): string {
  const body = BODY[MODEL];
  if (!body) throw new Error(`BENCH_TIMER_MODEL must be catch or boundary, got "${MODEL}"`);
  return `<?xml version="1.0" encoding="UTF-8"?>
<definitions xmlns="http://www.omg.org/spec/BPMN/20100524/MODEL" id="defs_${KEY}" targetNamespace="http://pgbpm.bench">
  <process id="${KEY}" isExecutable="true">${body}
  </process>
</definitions>`;
}

interface Lateness {
  /** Lateness per timer (ms), ascending. */
  sorted: number[];
  /** first due → last fired (ms). */
  drainMs: number;
  /** first fired → last fired (ms). */
  firingMs: number;
}

interface BurstResult {
  p50: number;
  p95: number;
  max: number;
  drainMs: number;
  perSecond: number;
  /** How long starting the instances took (not measured; for the record). */
  setupMs: number;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Waits until no timer subscription of the tenant is left, or fails after `timeoutMs`. */
async function waitForDrain(root: pg.Client, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const { rows } = await root.query<{ n: number }>(
      `select count(*)::int as n from bpm.event_subscription where tenant_id = $1 and kind = 'timer' and instance_id is not null`,
      [TENANT],
    );
    if (rows[0].n === 0) return;
    if (Date.now() > deadline) throw new Error(`${rows[0].n} timers still waiting after ${timeoutMs} ms: are jobs failing? (PGBPM_LOG_LEVEL=debug)`);
    await sleep(200);
  }
}

/** Lateness of the timers fired since event id `afterEvent`, against the due times recorded before. */
async function lateness(root: pg.Client, due: Map<string, number>, afterEvent: string): Promise<Lateness> {
  const { rows } = await root.query<{ subject_id: string; fired: string }>(
    `select subject_id, (extract(epoch from created_at) * 1000)::float8 as fired
     from bpm.event where tenant_id = $1 and kind = 'timerFired' and id > $2`,
    [TENANT, afterEvent],
  );
  const values: number[] = [];
  let firstDue = Infinity;
  let firstFired = Infinity;
  let lastFired = -Infinity;
  for (const r of rows) {
    const d = due.get(r.subject_id);
    if (d === undefined) continue;
    const fired = Number(r.fired);
    values.push(fired - d);
    firstDue = Math.min(firstDue, d);
    firstFired = Math.min(firstFired, fired);
    lastFired = Math.max(lastFired, fired);
  }
  if (values.length !== due.size) throw new Error(`expected ${due.size} timerFired events, found ${values.length}`);
  values.sort((a, b) => a - b);
  return { sorted: values, drainMs: lastFired - firstDue, firingMs: lastFired - firstFired };
}

async function lastEventId(root: pg.Client): Promise<string> {
  const { rows } = await root.query<{ id: string }>(`select coalesce(max(id), 0)::text as id from bpm.event where tenant_id = $1`, [TENANT]);
  return rows[0].id;
}

/** Due times (epoch ms) of the tenant's waiting timers, by subscription id. */
async function dueTimes(root: pg.Client): Promise<Map<string, number>> {
  const { rows } = await root.query<{ id: string; due: string }>(
    `select id, (extract(epoch from due_at) * 1000)::float8 as due
     from bpm.event_subscription where tenant_id = $1 and kind = 'timer' and instance_id is not null`,
    [TENANT],
  );
  return new Map(rows.map((r) => [r.id, Number(r.due)]));
}

/** Starts `n` instances whose timers are spread evenly over the second from `dueSecond` (instance `offset + g` at (offset + g) × 1000 / TIMERS ms). */
async function startBatch(admin: pg.Client, offset: number, n: number, dueSecond: Date): Promise<void> {
  await admin.query(
    `select bpm.start_process($1, jsonb_build_object('dueAt',
       to_char(($2::timestamptz + (((($3::int + g) * 1000) / $4::int) || ' milliseconds')::interval) at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')))
     from generate_series(0, $5::int - 1) g`,
    [KEY, dueSecond.toISOString(), offset, TIMERS, n],
  );
}

/**
 * How long starting one instance takes (ms), to choose the lead time of a
 * burst: a probe batch with timers an hour ahead, cancelled afterwards.
 */
async function startCostMs(admin: pg.Client): Promise<number> {
  const n = Math.min(BATCH, TIMERS);
  const t0 = Date.now();
  await startBatch(admin, 0, n, new Date(Date.now() + 3_600_000));
  const ms = (Date.now() - t0) / n;
  await admin.query(`select count(bpm.cancel_process_instance(i.id, 'benchmark probe')) from bpm.process_instance i where i.state = 'active'`);
  return ms;
}

/**
 * (a): starts TIMERS instances whose timers come due within one second that
 * begins a few seconds after the last start (lead time: the estimated start
 * time × 2 + 5 s), with no job runner running (so none fires early however
 * long the starts take); then starts the runner, which polls idle until the
 * timers come due, and waits until every timer fired.
 */
async function burst(admin: pg.Client, root: pg.Client, perInstanceMs: number, startRunner: () => Promise<WorkerRuntime>): Promise<BurstResult> {
  const t0 = Date.now();
  const afterEvent = await lastEventId(root);
  // starting slows as the job queue grows: a generous lead (4x the probe) keeps the burst in the future
  const leadMs = Math.ceil(perInstanceMs * TIMERS * 4) + 10000;
  const dueSecond = new Date(Math.ceil((Date.now() + leadMs) / 1000) * 1000);
  for (let started = 0; started < TIMERS; started += BATCH) {
    await startBatch(admin, started, Math.min(BATCH, TIMERS - started), dueSecond);
  }
  const setupMs = Date.now() - t0;
  const due = await dueTimes(root);
  if (due.size !== TIMERS) throw new Error(`expected ${TIMERS} waiting timers, found ${due.size}`);
  const firstDue = Math.min(...due.values());
  const runtime = await startRunner();
  try {
    if (firstDue < Date.now() + 500) {
      throw new Error(
        `starting the instances took ${fmt(setupMs / 1000, 1)} s, longer than estimated: the first timer came due before the runner was idle (a busy machine? run again)`,
      );
    }
    await waitForDrain(root, Math.max(120_000, TIMERS * 20) + (firstDue - Date.now()));
  } finally {
    await runtime.stop();
  }
  const l = await lateness(root, due, afterEvent);
  return {
    p50: percentile(l.sorted, 50),
    p95: percentile(l.sorted, 95),
    max: l.sorted[l.sorted.length - 1],
    drainMs: l.drainMs,
    perSecond: (TIMERS / Math.max(l.firingMs, 1)) * 1000,
    setupMs,
  };
}

/** (b): one timer at a time, due 1 s after its start plus a random part of the poll interval. */
async function single(admin: pg.Client, root: pg.Client, pollIntervalMs: number, trials: number): Promise<number[]> {
  const values: number[] = [];
  for (let i = 0; i < trials; i++) {
    const afterEvent = await lastEventId(root);
    const dueAt = new Date(Date.now() + 1000 + Math.floor(Math.random() * pollIntervalMs));
    await admin.query(`select bpm.start_process($1, jsonb_build_object('dueAt', $2::text))`, [KEY, dueAt.toISOString()]);
    const due = await dueTimes(root);
    await waitForDrain(root, 30_000);
    values.push(...(await lateness(root, due, afterEvent)).sorted);
  }
  return values.sort((a, b) => a - b);
}

async function checkEngine(url: string): Promise<void> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    const { rows } = await c.query<{ ok: boolean }>(
      `select to_regprocedure('bpm.fire_timer(uuid)') is not null
          and to_regnamespace('graphile_worker') is not null
          and pg_catalog.has_schema_privilege('bpm_engine', 'graphile_worker', 'USAGE') as ok`,
    );
    if (!rows[0]?.ok) {
      throw new Error('the benchmark database has no timers (bpm.fire_timer) or no job queue grants: they are not in a committed migration yet; run with BENCH_CURRENT=1');
    }
  } finally {
    await c.end();
  }
}

interface Cell {
  concurrency: number;
  pollIntervalMs: number;
  burst: BurstResult;
  single: { p50: number; p95: number; max: number; n: number };
}

async function main(): Promise<void> {
  const { url, authUrl, stop } = await prepareBenchDatabase(DB_NAME);
  const cells: Cell[] = [];
  const clients: pg.Client[] = [];
  const client = (connectionString: string, name: string): pg.Client => {
    const c = new pg.Client({ connectionString, application_name: name });
    // the server stops when the benchmark ends (also on an error): do not crash on its goodbye
    c.on('error', () => undefined);
    clients.push(c);
    return c;
  };
  try {
    console.log(
      `pgbpm timer benchmark: ${redactPassword(url)}; model ${MODEL}; burst of ${TIMERS} timers due within one second, ${RUNS} runs (median); ` +
        `${SINGLE_TRIALS} single-timer trials per run of settings`,
    );
    await checkEngine(url);
    const compiled = await compileBpmnFiles([{ name: `${KEY}.bpmn`, xml: modelXml() }]);
    if (!compiled.ok) throw new Error(formatProblems(compiled.problems));

    const admin = client(authUrl, 'pgbpm-bench-timers');
    await admin.connect();
    await admin.query(`select set_config('role', 'bpm_admin', false), set_config('bpm.tenant_id', $1, false), set_config('bpm.user_id', 'bench', false)`, [TENANT]);
    await admin.query('select bpm.deploy($1::jsonb)', [JSON.stringify(compiled.resources)]);
    const root = client(url, 'pgbpm-bench-timers-observer');
    await root.connect();
    const settings = await root.query(`select current_setting('server_version') v, current_setting('synchronous_commit') sc, current_setting('fsync') f`);
    const perInstanceMs = await startCostMs(admin);
    console.log(
      `server ${settings.rows[0].v}, synchronous_commit=${settings.rows[0].sc}, fsync=${settings.rows[0].f}; ` +
        `starting an instance takes ${fmt(perInstanceMs, 2)} ms (batches of ${BATCH}, not measured)`,
    );

    for (const concurrency of CONCURRENCIES) {
      for (const pollIntervalMs of POLL_INTERVALS) {
        const startRunner = (): Promise<WorkerRuntime> =>
          startWorkerRuntime({
            connectionString: authUrl,
            config: { ...workerDefaults, handlersPath: null, tenants: [], workerId: `bench-${process.pid}`, jobConcurrency: concurrency, jobPollIntervalMs: pollIntervalMs },
            http: null,
            logger: createWorkerLogger({ level: process.env.PGBPM_LOG_LEVEL || 'warn' }),
          });
        const singles: number[] = [];
        const bursts: BurstResult[] = [];
        for (let r = 0; r < RUNS; r++) {
          const runtime = await startRunner();
          try {
            singles.push(...(await single(admin, root, pollIntervalMs, SINGLE_TRIALS)));
          } finally {
            await runtime.stop();
          }
          const b = await burst(admin, root, perInstanceMs, startRunner);
          bursts.push(b);
          console.error(
            `  concurrency ${concurrency}, poll ${pollIntervalMs} ms, run ${r + 1}: burst p50 ${fmt(b.p50)} p95 ${fmt(b.p95)} max ${fmt(b.max)} ms, ` +
              `drain ${fmt(b.drainMs)} ms, ${fmt(b.perSecond)} timers/s (started in ${fmt(b.setupMs / 1000, 1)} s)`,
          );
          await root.query('vacuum analyze bpm.event_subscription, bpm.process_instance, bpm_private.token');
        }
        singles.sort((a, b) => a - b);
        cells.push({
          concurrency,
          pollIntervalMs,
          burst: {
            p50: median(bursts.map((b) => b.p50)),
            p95: median(bursts.map((b) => b.p95)),
            max: median(bursts.map((b) => b.max)),
            drainMs: median(bursts.map((b) => b.drainMs)),
            perSecond: median(bursts.map((b) => b.perSecond)),
            setupMs: median(bursts.map((b) => b.setupMs)),
          },
          single: { p50: percentile(singles, 50), p95: percentile(singles, 95), max: singles[singles.length - 1], n: singles.length },
        });
      }
    }

    console.log('');
    console.log(`| job concurrency | poll ms | single p50 ms | single p95 ms | single max ms | burst ${TIMERS}: p50 ms | p95 ms | max ms | drain s | timers/s |`);
    console.log('| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |');
    for (const c of cells) {
      console.log(
        `| ${c.concurrency} | ${c.pollIntervalMs} | ${fmt(c.single.p50)} | ${fmt(c.single.p95)} | ${fmt(c.single.max)} | ` +
          `${fmt(c.burst.p50)} | ${fmt(c.burst.p95)} | ${fmt(c.burst.max)} | ${fmt(c.burst.drainMs / 1000, 1)} | ${fmt(c.burst.perSecond)} |`,
      );
    }
  } finally {
    await Promise.allSettled(clients.map((c) => c.end()));
    await stop();
  }
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? (err.stack ?? err.message) : String(err));
  process.exitCode = 1;
});
