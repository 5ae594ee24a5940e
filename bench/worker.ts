/**
 * Worker benchmark (issue 4, item 5). One run, one database, the worker
 * runtime in this process (as `pgbpm worker` runs it: bpm_authenticator,
 * SET ROLE bpm_engine):
 *   (a) service-task round trip: start_process → the external task is
 *       fetched and handled by the external-task runner → completed → the
 *       instance ends. Instances/s, and pickup latency: the task's created_at
 *       (the start transaction's time) → its handler starting.
 *   (b) a plain graphile-worker job round trip on the same runtime:
 *       add_job → the task function starting (jobs/s, latency).
 * Each with BENCH_CLIENTS closed-loop clients (each starts one instance / adds
 * one job and waits until it is handled, then the next), as the ratio (a)/(b).
 * Also the busy CPU time of the whole machine per round trip (/proc/stat:
 * this process, which is both the clients and the worker, and PostgreSQL).
 * Every figure is the median of BENCH_RUNS runs of BENCH_SECONDS each, after
 * an unmeasured warm-up, on tables holding a base volume with statistics.
 *
 *   npm run bench:worker
 *   BENCH_SECONDS=2 BENCH_RUNS=1 npm run bench:worker     # a smoke run
 *
 * Settings (environment): BENCH_SECONDS per cell (5), BENCH_RUNS per cell (3),
 * BENCH_CLIENTS (1,8,32,64), BENCH_WORKER_CONCURRENCY handlers in flight (10),
 * BENCH_WORKER_IDLE_MS idle poll sleep (the worker's default, 500), BENCH_JOB_CONCURRENCY (8),
 * BENCH_SEED instances run to their end before the runs (5000; then ANALYZE),
 * BENCH_WARMUP_SECONDS unmeasured before each cell's runs (2),
 * BENCH_DATABASE (pgbpm_bench_worker, dropped and recreated),
 * BENCH_CURRENT=1 to include db/migrations/current.sql (uncommitted work).
 */
import pg from 'pg';
import type { JobHelpers } from 'graphile-worker';
import { compileBpmnFiles, formatProblems } from '../compiler';
import { redactPassword } from '../cli/database';
import { WORKER_DEFAULTS } from '../worker/config';
import type { LockedTask } from '../worker/external/engine-calls';
import { createWorkerLogger } from '../worker/logger';
import { startWorkerRuntime } from '../worker/runtime';
import { prepareBenchDatabase } from './database';
import { fmt, machineBusyUs, machineJiffies, median, percentile } from './stats';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const WARMUP_SECONDS = Number(process.env.BENCH_WARMUP_SECONDS ?? 2);
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const CLIENTS = (process.env.BENCH_CLIENTS ?? '1,8,32,64').split(',').map(Number);
const WORKER_CONCURRENCY = Number(process.env.BENCH_WORKER_CONCURRENCY ?? 10);
const IDLE_MS = Number(process.env.BENCH_WORKER_IDLE_MS ?? WORKER_DEFAULTS.idleMs);
const JOB_CONCURRENCY = Number(process.env.BENCH_JOB_CONCURRENCY ?? 8);
const SEED = Number(process.env.BENCH_SEED ?? 5000);
const DB_NAME = process.env.BENCH_DATABASE ?? 'pgbpm_bench_worker';
const TENANT = 'bench';
const TOPIC = 'bench_work';
/** A bench session's role ($1) and tenant, for the session. */
const ACT_AS = `select set_config('role', $1, false), set_config('bpm.tenant_id', '${TENANT}', false), set_config('bpm.user_id', 'bench', false)`;

interface RunResult {
  perSecond: number;
  /** Busy CPU time of the whole machine per round trip (µs; /proc/stat): this process and PostgreSQL. */
  cpuUs: number;
  /** Pickup latency (ms): task created → handler start; job added → task start. */
  p50: number;
  p95: number;
}

const MODEL = `<?xml version="1.0" encoding="UTF-8"?>
<definitions xmlns="http://www.omg.org/spec/BPMN/20100524/MODEL" xmlns:camunda="http://camunda.org/schema/1.0/bpmn"
  id="defs_bench_work" targetNamespace="http://pgbpm.bench">
  <process id="${TOPIC}" isExecutable="true">
    <startEvent id="start"/><sequenceFlow id="f1" sourceRef="start" targetRef="work"/>
    <serviceTask id="work" camunda:type="external" camunda:topic="${TOPIC}"/>
    <sequenceFlow id="f2" sourceRef="work" targetRef="end"/><endEvent id="end"/>
  </process>
</definitions>`;

/** Waiters by key, resolved by the worker's hooks (also when resolved before anyone waits). */
class Waiters {
  private readonly map = new Map<string, () => void>();
  private readonly early = new Set<string>();
  wait(key: string): Promise<void> {
    if (this.early.delete(key)) return Promise.resolve();
    return new Promise((resolve) => this.map.set(key, resolve));
  }
  resolve(key: string): void {
    const r = this.map.get(key);
    if (r) {
      this.map.delete(key);
      r();
    } else this.early.add(key);
  }
}

/** Round trips per second of `clients` closed loops, each on its own connection acting as `role`, and the machine's CPU per round trip. */
async function closedLoop(
  seconds: number,
  clients: number,
  role: string,
  op: (client: pg.PoolClient) => Promise<void>,
  pool: pg.Pool,
): Promise<{ perSecond: number; cpuUs: number }> {
  let count = 0;
  const cpu0 = machineJiffies();
  const deadline = Date.now() + seconds * 1000;
  const started = process.hrtime.bigint();
  await Promise.all(
    Array.from({ length: clients }, async () => {
      const client = await pool.connect();
      try {
        // bpm_admin starts instances (a), bpm_engine adds jobs (b): set once per client and cell
        await client.query(ACT_AS, [role]);
        while (Date.now() < deadline) {
          await op(client);
          count += 1;
        }
      } finally {
        client.release();
      }
    }),
  );
  const elapsed = Number(process.hrtime.bigint() - started) / 1e9;
  return { perSecond: count / elapsed, cpuUs: machineBusyUs(cpu0, machineJiffies()) / count };
}

async function checkGrants(url: string): Promise<void> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    const { rows } = await c.query<{ ok: boolean }>(
      `select to_regnamespace('graphile_worker') is not null and pg_catalog.has_schema_privilege('bpm_engine', 'graphile_worker', 'USAGE') as ok`,
    );
    if (!rows[0]?.ok) {
      throw new Error('bpm_engine has no access to graphile_worker in the benchmark database: its grants are not in a committed migration yet; run with BENCH_CURRENT=1');
    }
  } finally {
    await c.end();
  }
}

/**
 * Deploys the model and gives the tables a base volume of SEED finished
 * instances with fresh statistics before any measured connection plans its
 * statements (a plan made while a table is empty may read a whole tenant per
 * call until autovacuum's first ANALYZE replaces it; npm run bench does the same).
 */
async function deployAndSeed(url: string, authUrl: string, resources: unknown): Promise<void> {
  const admin = new pg.Client({ connectionString: authUrl });
  await admin.connect();
  try {
    await admin.query(ACT_AS, ['bpm_admin']);
    await admin.query('select bpm.deploy($1::jsonb)', [JSON.stringify(resources)]);
    for (let done = 0; done < SEED; done += 500) {
      await admin.query(`select bpm.start_process('${TOPIC}') from generate_series(1, $1)`, [Math.min(500, SEED - done)]);
      await admin.query(
        `select count(*) from bpm.complete_external_tasks(
           array(select id from bpm.fetch_and_lock('${TOPIC}', 'seed', 1000, '1 minute')), 'seed')`,
      );
    }
  } finally {
    await admin.end();
  }
  const su = new pg.Client({ connectionString: url });
  await su.connect();
  await su.query('analyze');
  await su.query('checkpoint');
  await su.end();
}

async function main(): Promise<void> {
  const { url, authUrl, stop } = await prepareBenchDatabase(DB_NAME);
  try {
    console.log(`pgbpm worker benchmark: ${redactPassword(url)}; ${SECONDS}s x ${RUNS} runs per cell (median); clients ${CLIENTS.join(',')}`);
    await checkGrants(url);
    const compiled = await compileBpmnFiles([{ name: 'bench_work.bpmn', xml: MODEL }]);
    if (!compiled.ok) throw new Error(formatProblems(compiled.problems));

    await deployAndSeed(url, authUrl, compiled.resources);

    const serviceDone = new Waiters();
    const jobStarted = new Waiters();
    const pickups: number[] = [];
    let recordPickups = false;
    const runtime = await startWorkerRuntime({
      connectionString: authUrl,
      config: {
        ...WORKER_DEFAULTS,
        handlersPath: null,
        tenants: [TENANT],
        workerId: `bench-${process.pid}`,
        concurrency: WORKER_CONCURRENCY,
        idleMs: IDLE_MS,
        jobConcurrency: JOB_CONCURRENCY,
      },
      handlers: { [TOPIC]: () => ({ handled: true }) },
      http: null,
      tasks: {
        bench_job: (payload: unknown, _helpers: JobHelpers) => {
          const { key, sentAt } = payload as { key: string; sentAt: number };
          if (recordPickups) pickups.push(Date.now() - sentAt);
          jobStarted.resolve(key);
        },
      },
      logger: createWorkerLogger({ level: 'warn' }),
      onHandlerStart: (task: LockedTask) => {
        if (recordPickups) pickups.push(Date.now() - task.created_at.getTime());
      },
      onTaskDone: (task: LockedTask) => serviceDone.resolve(task.instance_id),
    });

    const pool = new pg.Pool({ connectionString: authUrl, max: Math.max(...CLIENTS) });
    pool.on('error', () => undefined);
    const settings = await pool.query(`select current_setting('server_version') v, current_setting('synchronous_commit') sc, current_setting('fsync') f`);
    console.log(`server ${settings.rows[0].v}, synchronous_commit=${settings.rows[0].sc}, fsync=${settings.rows[0].f}; worker concurrency ${WORKER_CONCURRENCY}, idle poll ${IDLE_MS} ms, job concurrency ${JOB_CONCURRENCY}`);

    let jobSeq = 0;
    const service = (client: pg.PoolClient): Promise<void> =>
      (async () => {
        const { rows } = await client.query<{ id: string }>({ name: 'bench_start', text: `select id from bpm.start_process('${TOPIC}')` });
        await serviceDone.wait(rows[0]?.id as string);
      })();
    const job = (client: pg.PoolClient): Promise<void> =>
      (async () => {
        const key = `j${++jobSeq}`;
        const started = jobStarted.wait(key);
        await client.query({ name: 'bench_add_job', text: `select graphile_worker.add_job('bench_job', $1::json)`, values: [JSON.stringify({ key, sentAt: Date.now() })] });
        await started;
      })();

    const results = new Map<string, RunResult>();
    const cells: Array<{ id: 'a' | 'b'; title: string; role: string; op: (c: pg.PoolClient) => Promise<void> }> = [
      { id: 'a', title: 'service task: start → handler → complete → end', role: 'bpm_admin', op: service },
      { id: 'b', title: 'graphile-worker job: add_job → task', role: 'bpm_engine', op: job },
    ];
    for (const clients of CLIENTS) {
      for (const cell of cells) {
        const runs: RunResult[] = [];
        // unmeasured: new connections compile the engine's functions and plan its statements
        if (WARMUP_SECONDS > 0) await closedLoop(WARMUP_SECONDS, clients, cell.role, cell.op, pool);
        for (let r = 0; r < RUNS; r++) {
          pickups.length = 0;
          recordPickups = true;
          const { perSecond, cpuUs } = await closedLoop(SECONDS, clients, cell.role, cell.op, pool);
          recordPickups = false;
          const sorted = [...pickups].sort((x, y) => x - y);
          runs.push({ perSecond, cpuUs, p50: percentile(sorted, 50), p95: percentile(sorted, 95) });
        }
        results.set(`${cell.id}/${clients}`, {
          perSecond: median(runs.map((x) => x.perSecond)),
          cpuUs: median(runs.map((x) => x.cpuUs)),
          p50: median(runs.map((x) => x.p50)),
          p95: median(runs.map((x) => x.p95)),
        });
        console.error(`  ${cell.id} @${clients}: ${runs.map((x) => `${fmt(x.perSecond)}/s ${fmt(x.cpuUs)} µs`).join(', ')}`);
      }
    }
    await pool.end();
    await runtime.stop();

    console.log('');
    console.log('| round trip | clients | per s | machine CPU µs per round trip | pickup p50 ms | pickup p95 ms | (a)/(b) per s | (a)/(b) p95 |');
    console.log('| --- | --- | --- | --- | --- | --- | --- | --- |');
    for (const clients of CLIENTS) {
      const a = results.get(`a/${clients}`) as RunResult;
      const b = results.get(`b/${clients}`) as RunResult;
      for (const cell of cells) {
        const r = cell.id === 'a' ? a : b;
        const ratio = cell.id === 'a' ? `${fmt(a.perSecond / b.perSecond, 2)} | ${fmt(a.p95 / b.p95, 2)}` : '1.00 | 1.00';
        console.log(`| (${cell.id}) ${cell.title} | ${clients} | ${fmt(r.perSecond)} | ${fmt(r.cpuUs)} | ${fmt(r.p50, 1)} | ${fmt(r.p95, 1)} | ${ratio} |`);
      }
    }
  } finally {
    await stop();
  }
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? (err.stack ?? err.message) : String(err));
  process.exitCode = 1;
});
