/**
 * Engine benchmark (issue: engine core, item 5). One run, one database:
 *   (a) raw ceiling: a plain transaction of 3 INSERTs (instance, task, history)
 *   (b) start_process of a process that reaches one user task
 *   (c) full lifecycle: start -> user task -> complete -> end
 *   (d) a 10-branch parallel fork/join (completes within start_process)
 *   (e) scopes: start_process of an embedded subprocess holding a 10-instance
 *       parallel multi-instance user task (the instance waits in 10 tasks)
 *   (f) scopes lifecycle: (e), then complete the 10 inner tasks one call
 *       each (11 transitions); reported per transition against (c) (2)
 * each at 1 and 8 connections: instances/s and p50/p95 latency per instance,
 * and (b)-(d) as a ratio to (a) at the same concurrency. Every figure is the
 * median of BENCH_RUNS runs of BENCH_SECONDS each (synchronous_commit on),
 * measured in rounds (a..f, then a..f again) so that every cell sees the
 * same moments of a noisy machine.
 *
 *   npm run bench                       # embedded Postgres (or DATABASE_URL's server)
 *   BENCH_SECONDS=10 BENCH_RUNS=5 npm run bench
 *
 * Settings (environment): BENCH_SECONDS per cell (8), BENCH_RUNS per cell (3),
 * BENCH_CONNECTIONS (1,8), BENCH_SEED instances preloaded before measuring
 * (20000), BENCH_DATABASE (pgbpm_bench, dropped and recreated),
 * BENCH_CURRENT=1 to include db/migrations/current.sql (uncommitted work).
 *
 * The client is Node `pg` on the same machine (as the server): it competes
 * for the same cores, which is why (a) is measured with the same client.
 */
import fs from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import { compileBpmnFiles, formatProblems } from '../compiler';
import { redactPassword } from '../cli/database';
import { prepareBenchDatabase, RAW_CEILING_TABLES } from './database';
import { fmt, median, percentile } from './stats';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 8);
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const CONCURRENCY = (process.env.BENCH_CONNECTIONS ?? '1,8').split(',').map(Number);
const TENANTS = 10;
const SEED_INSTANCES = Number(process.env.BENCH_SEED ?? 20000);
const DB_NAME = process.env.BENCH_DATABASE ?? 'pgbpm_bench';
const FIXTURES = path.join(__dirname, '..', '..', 'test', 'fixtures', 'bpmn');

type Op = (client: pg.PoolClient) => Promise<void>;
interface Workload {
  id: string;
  title: string;
  op: Op;
}
interface RunResult {
  perSecond: number;
  p50: number;
  p95: number;
}


/** Runs `op` in a closed loop on `connections` clients for SECONDS; one op = one instance. */
async function measure(pool: pg.Pool, connections: number, op: Op): Promise<RunResult> {
  const latencies: number[] = [];
  const deadline = Date.now() + SECONDS * 1000;
  const started = process.hrtime.bigint();
  await Promise.all(
    Array.from({ length: connections }, async () => {
      const client = await pool.connect();
      try {
        while (Date.now() < deadline) {
          const t0 = process.hrtime.bigint();
          await op(client);
          latencies.push(Number(process.hrtime.bigint() - t0) / 1e6);
        }
      } finally {
        client.release();
      }
    }),
  );
  const elapsed = Number(process.hrtime.bigint() - started) / 1e9;
  latencies.sort((a, b) => a - b);
  return { perSecond: latencies.length / elapsed, p50: percentile(latencies, 50), p95: percentile(latencies, 95) };
}

/**
 * Each connection acts as bpm_admin for one tenant (set once per session,
 * tenants spread over the connections), so every operation below is one
 * statement: one round trip, one transaction, as a worker pool would run it.
 */
const workloads: Workload[] = [
  {
    id: 'a',
    title: 'raw: 3 INSERTs in one transaction',
    op: async (c) => {
      await c.query(
        `begin;
         insert into bench_raw.instance (tenant_id, variables) values (current_setting('bpm.tenant_id'), '{}');
         insert into bench_raw.task (tenant_id, name) values (current_setting('bpm.tenant_id'), 'task');
         insert into bench_raw.history (tenant_id, element_id) values (current_setting('bpm.tenant_id'), 'task');
         commit;`,
      );
    },
  },
  {
    id: 'b',
    title: 'start_process -> one user task',
    op: async (c) => {
      await c.query({ name: 'b', text: `select (bpm.start_process('straight')).id` });
    },
  },
  {
    id: 'c',
    title: 'lifecycle: start -> user task -> complete -> end',
    op: async (c) => {
      const started = await c.query<{ id: string }>({ name: 'c1', text: `select (bpm.start_process('straight')).id` });
      const done = await c.query<{ state: string }>({
        name: 'c2',
        text: `select (bpm.complete_task((select t.id from bpm.user_task t where t.tenant_id = current_setting('bpm.tenant_id') and t.instance_id = $1))).state`,
        values: [started.rows[0].id],
      });
      if (done.rows[0]?.state !== 'completed') throw new Error(`lifecycle: task of ${started.rows[0].id} not completed`);
    },
  },
  {
    id: 'd',
    title: '10-branch parallel fork/join',
    op: async (c) => {
      const r = await c.query<{ state: string }>({ name: 'd', text: `select (bpm.start_process('parallel10')).state` });
      if (r.rows[0]?.state !== 'completed') throw new Error('parallel10 did not complete within start_process');
    },
  },
  {
    id: 'e',
    title: 'scopes: start -> subprocess -> 10 parallel multi-instance tasks',
    op: async (c) => {
      await c.query({ name: 'e', text: `select (bpm.start_process('scoped10')).id` });
    },
  },
  {
    id: 'f',
    title: 'scopes lifecycle: (e) + complete the 10 inner tasks (11 transitions)',
    op: async (c) => {
      const started = await c.query<{ id: string }>({ name: 'f1', text: `select (bpm.start_process('scoped10')).id` });
      const tasks = await c.query<{ id: string }>({
        name: 'f2',
        text: `select t.id from bpm.user_task t where t.tenant_id = current_setting('bpm.tenant_id') and t.instance_id = $1 and t.state = 'open'`,
        values: [started.rows[0].id],
      });
      let state = '';
      for (const t of tasks.rows) {
        const done = await c.query<{ state: string }>({ name: 'f3', text: `select (bpm.complete_task($1)).state`, values: [t.id] });
        state = done.rows[0]?.state ?? '';
      }
      if (tasks.rows.length !== 10 || state !== 'completed') throw new Error(`scopes lifecycle: ${started.rows[0].id} did not complete`);
    },
  },
];

/** Transitions (engine calls) per instance of a workload, for per-transition ratios. */
const TRANSITIONS: Record<string, number> = { b: 1, c: 2, d: 1, e: 1, f: 11 };


async function seed(url: string, authUrl: string): Promise<void> {
  const files = ['straight.bpmn', 'parallel10.bpmn', 'scoped10.bpmn'].map((name) => ({ name, xml: fs.readFileSync(path.join(FIXTURES, name), 'utf8') }));
  const compiled = await compileBpmnFiles(files);
  if (!compiled.ok) throw new Error(formatProblems(compiled.problems));
  const root = new pg.Client({ connectionString: url });
  await root.connect();
  await root.query(RAW_CEILING_TABLES);
  await root.end();
  const api = new pg.Client({ connectionString: authUrl });
  await api.connect();
  await api.query(`set role bpm_admin`);
  for (let t = 1; t <= TENANTS; t++) {
    await api.query(`select set_config('bpm.tenant_id', $1, false)`, [`t${t}`]);
    await api.query(`select bpm.deploy($1::jsonb)`, [JSON.stringify(compiled.resources)]);
  }
  // base volume, tenants interleaved, so plans are made on realistic statistics
  const perTenant = Math.ceil(SEED_INSTANCES / TENANTS);
  for (let i = 0; i < perTenant; i += 500) {
    for (let t = 1; t <= TENANTS; t++) {
      await api.query(`select set_config('bpm.tenant_id', $1, false)`, [`t${t}`]);
      await api.query(`select bpm.start_process('straight') from generate_series(1, $1)`, [Math.min(500, perTenant - i)]);
      await api.query(`insert into bench_raw.instance (tenant_id, variables) select $1, '{}' from generate_series(1, $2)`, [`t${t}`, Math.min(500, perTenant - i)]).catch(() => undefined);
    }
  }
  await api.end();
  const analyze = new pg.Client({ connectionString: url });
  await analyze.connect();
  await analyze.query('analyze');
  await analyze.query('checkpoint');
  await analyze.end();
}


async function main(): Promise<void> {
  const { url, authUrl, stop } = await prepareBenchDatabase(DB_NAME);
  try {
    console.log(`pgbpm engine benchmark: ${redactPassword(url)}; ${SECONDS}s x ${RUNS} runs per cell (median), seed ${SEED_INSTANCES} instances over ${TENANTS} tenants`);
    await seed(url, authUrl);
    const root = new pg.Client({ connectionString: url });
    await root.connect();
    const settings = await root.query(`select current_setting('server_version') v, current_setting('synchronous_commit') sc, current_setting('fsync') f`);
    console.log(`server ${settings.rows[0].v}, synchronous_commit=${settings.rows[0].sc}, fsync=${settings.rows[0].f}`);
    await root.end();
    let connections = 0;
    const pool = new pg.Pool({ connectionString: authUrl, max: Math.max(...CONCURRENCY), options: '-c role=bpm_admin' });
    pool.on('error', () => undefined);
    pool.on('connect', (client) => {
      const tenant = `t${(connections++ % TENANTS) + 1}`;
      client.query(`select set_config('bpm.tenant_id', $1, false)`, [tenant]).catch(() => undefined);
    });
    const results = new Map<string, RunResult>();
    for (const conns of CONCURRENCY) {
      // rounds of every workload in turn, so that a slow spell of the machine
      // hits all of them alike and the ratios of the medians stay fair
      const runs = new Map<string, RunResult[]>(workloads.map((w) => [w.id, []]));
      for (let r = 0; r < RUNS; r++) {
        for (const w of workloads) runs.get(w.id)!.push(await measure(pool, conns, w.op));
      }
      for (const w of workloads) {
        const cell = runs.get(w.id)!;
        const agg = { perSecond: median(cell.map((x) => x.perSecond)), p50: median(cell.map((x) => x.p50)), p95: median(cell.map((x) => x.p95)) };
        results.set(`${w.id}/${conns}`, agg);
        console.error(`  ${w.id} @${conns}: ${cell.map((x) => fmt(x.perSecond)).join(', ')} /s`);
      }
    }
    await pool.end();
    console.log('');
    console.log('| workload | conns | instances/s | p50 ms | p95 ms | ratio to (a) |');
    console.log('| --- | --- | --- | --- | --- | --- |');
    for (const conns of CONCURRENCY) {
      const raw = results.get(`a/${conns}`)!;
      for (const w of workloads) {
        const r = results.get(`${w.id}/${conns}`)!;
        const ratio = w.id === 'a' ? '1.00' : fmt(r.perSecond / raw.perSecond, 2);
        console.log(`| (${w.id}) ${w.title} | ${conns} | ${fmt(r.perSecond)} | ${fmt(r.p50, 2)} | ${fmt(r.p95, 2)} | ${ratio} |`);
      }
    }
    // issue 5: the scoped model per transition, against the flat lifecycle (c)
    console.log('');
    console.log('| scopes | conns | transitions/s | ratio to (c) per transition |');
    console.log('| --- | --- | --- | --- |');
    for (const conns of CONCURRENCY) {
      const flat = results.get(`c/${conns}`)!.perSecond * TRANSITIONS.c;
      for (const id of ['e', 'f']) {
        const perTransition = results.get(`${id}/${conns}`)!.perSecond * TRANSITIONS[id];
        console.log(`| (${id}) | ${conns} | ${fmt(perTransition)} | ${fmt(perTransition / flat, 2)} |`);
      }
    }
  } finally {
    await stop();
  }
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.stack ?? err.message : String(err));
  process.exitCode = 1;
});
