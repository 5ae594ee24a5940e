/**
 * API benchmark (issue 3, item 3). One run, one database (BENCH_DATABASE,
 * default pgbpm_bench_api, dropped and recreated, migrated):
 *
 *   preload  BENCH_PRELOAD open user tasks (100000) over 10 tenants: half
 *            assigned to one of 50 users per tenant, half offered to one of
 *            10 groups; then ANALYZE
 *   API      startApiServer in this process on an ephemeral port, HS256 JWTs
 *            (mintToken), RLS on; load from autocannon in a child process
 *   SQL      the same operations through a `pg` pool, each connection set up
 *            once with role, tenant, user and groups
 *
 * Operations: (1) startProcess of `straight` (one user task) and (2) the
 * inbox of a bpm_user (taskInbox, bpm.task_inbox): open tasks assigned to
 * them or offered to their groups, first 20 by priority desc, created_at. Each cell is the
 * median of BENCH_RUNS runs of BENCH_SECONDS on each of BENCH_CONNECTIONS
 * (a list: 1,8 — one client alone shows the latency of a request, eight
 * saturate the 2 cores and show throughput and latency under load),
 * after an unmeasured warm-up of BENCH_WARMUP_SECONDS (3) per operation and
 * path (the first run was 10–40 % slower than the next ones without it).
 *
 *   npm run bench:api
 *   BENCH_SECONDS=10 BENCH_RUNS=3 BENCH_CONNECTIONS=1,8 BENCH_PRELOAD=100000 npm run bench:api
 *   BENCH_CPU_PROFILE=/tmp/prof npm run bench:api   # + a V8 CPU profile of the API process per API cell
 *   BENCH_API_PROCESSES=2 npm run bench:api         # the API in two processes on one port (node:cluster, bench/api-cluster.ts)
 *
 * Each cell also gives CPU per request: of this process (the API server, whose
 * load generator runs in a child process; or the SQL path's pg client; with
 * BENCH_API_PROCESSES > 1, of the API's processes together), and
 * of the whole machine (/proc/stat: the server, PostgreSQL and the load
 * generator together). On one 2-core machine the two paths share the cores,
 * so CPU per request says where a request's cost goes, and moves less from
 * run to run than requests/s.
 *
 * Every request runs as a bpm_user (tokens and connections rotate over the
 * tenants and users). The inbox runs before startProcess so that it sees the
 * preloaded volume only. EXPLAIN (ANALYZE, BUFFERS) of the inbox SQL as a
 * bpm_user is printed once.
 */
import { printWarnings } from './api-env';
import { fork } from 'node:child_process';
import fs from 'node:fs';
import inspector from 'node:inspector';
import path from 'node:path';
import pg from 'pg';
import { compileBpmnFiles, formatProblems } from '../compiler';
import { redactPassword } from '../cli/database';
import { prepareBenchDatabase } from './database';
import { fmt, machineBusyUs, machineJiffies, median, percentile, processesCpuUs } from './stats';
import { startApiServer } from '../server/app';
import { serverConfigFromEnv } from '../server/config';
import { mintToken } from '../server/token';
import type { LoadRequest, LoadResult } from './api-load';
import type { ClusterReady, ClusterRequest } from './api-cluster';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 10);
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const CONNECTIONS = (process.env.BENCH_CONNECTIONS ?? '1,8').split(',').map(Number);
const MAX_CONNECTIONS = Math.max(...CONNECTIONS);
const PRELOAD = Number(process.env.BENCH_PRELOAD ?? 100000);
const DB_NAME = process.env.BENCH_DATABASE ?? 'pgbpm_bench_api';
const CPU_PROFILE_DIR = process.env.BENCH_CPU_PROFILE;
const WARMUP_SECONDS = Number(process.env.BENCH_WARMUP_SECONDS ?? 3);
const API_PROCESSES = Number(process.env.BENCH_API_PROCESSES ?? 1);
const TENANTS = 10;
const USERS = 50; // per tenant: u1..u50
const GROUPS = 10; // per tenant: g1..g10; user uK is in group g((K-1) % 10 + 1)
const BATCH = 1000;
const JWT_SECRET = 'pgbpm-api-benchmark-secret-0123456789abcdef';
const FIXTURES = path.join(__dirname, '..', '..', 'test', 'fixtures', 'bpmn');

/** `straight` with its user task assigned (${owner}) or offered (${group}), priority from ${prio}. */
const INBOX_BPMN = `<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" xmlns:camunda="http://camunda.org/schema/1.0/bpmn" id="inbox_defs" targetNamespace="http://bpmn.io/schema/bpmn">
  <bpmn:process id="inbox" name="Inbox" isExecutable="true">
    <bpmn:startEvent id="start"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:userTask id="task" name="Review" camunda:assignee="\${owner}" camunda:candidateGroups="\${group}" camunda:priority="\${prio}">
      <bpmn:incoming>f1</bpmn:incoming><bpmn:outgoing>f2</bpmn:outgoing>
    </bpmn:userTask>
    <bpmn:endEvent id="end"><bpmn:incoming>f2</bpmn:incoming></bpmn:endEvent>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="task" />
    <bpmn:sequenceFlow id="f2" sourceRef="task" targetRef="end" />
  </bpmn:process>
</bpmn:definitions>`;

const START_MUTATION = `mutation Start { startProcess(input: { processKey: "straight" }) { result { id } } }`;
const INBOX_QUERY = `query Inbox {
  taskInbox(maxTasks: 20) {
    nodes { id name priority createdAt dueAt assignee candidateGroups instanceId }
  }
}`;
const START_SQL = `select (bpm.start_process('straight')).id`;
/** What the inbox query asks for: bpm.task_inbox, the user's open tasks (assigned, or offered to them or their groups) in inbox order. */
const INBOX_SQL = `select id, name, priority, created_at, due_at, assignee, candidate_groups, instance_id from bpm.task_inbox(null, 20)`;

interface Principal {
  tenant: string;
  user: string;
  groups: string[];
}
interface Stats {
  perSecond: number;
  p50: number;
  p95: number;
  p99: number;
  /** CPU per request, µs: of this process (the API server, or the SQL path's client) and of the whole machine. */
  cpuUs: { process: number; machine: number };
}

/** What a load loop measures: Stats before CPU, and how many requests it made. */
type Measured = Omit<Stats, 'cpuUs'> & { count: number };

/** CPU time used so far (µs) by the process(es) a cell charges: this one unless the API runs in processes of its own. */
type CpuReader = () => number;

const thisProcessCpuUs: CpuReader = () => {
  const used = process.cpuUsage();
  return used.user + used.system;
};

/** Runs `work` and adds its CPU per request (over `count`, the requests it made): of `cpu`'s processes and of the machine. */
async function withCpu(work: () => Promise<Measured>, cpu: CpuReader = thisProcessCpuUs): Promise<Stats> {
  const process0 = cpu();
  const machine0 = machineJiffies();
  const result = await work();
  const used = cpu() - process0;
  const machine1 = machineJiffies();
  const machineUs = machineBusyUs(machine0, machine1);
  const { count, ...stats } = result;
  return { ...stats, cpuUs: { process: used / count, machine: machineUs / count } };
}

interface BenchApi {
  graphqlUrl: string;
  /** CPU of the API's processes so far (µs). */
  cpu: CpuReader;
  close(): Promise<void>;
}

/** The API in this process (its load generator runs in a child process). */
async function startInProcessApi(options: Parameters<typeof startApiServer>[0]): Promise<BenchApi> {
  const server = await startApiServer(options);
  return { graphqlUrl: server.graphqlUrl, cpu: thisProcessCpuUs, close: () => server.close() };
}

/** The API in API_PROCESSES cluster workers on one port (bench/api-cluster.ts). */
function startApiCluster(request: ClusterRequest): Promise<BenchApi> {
  return new Promise((resolve, reject) => {
    const child = fork(path.join(__dirname, 'api-cluster.js'), [], { stdio: 'inherit' });
    child.once('error', reject);
    child.once('exit', (code) => reject(new Error(`the API cluster exited with ${code} before it was ready`)));
    child.once('message', (m) => {
      const ready = m as ClusterReady;
      resolve({
        graphqlUrl: ready.graphqlUrl,
        cpu: () => processesCpuUs(ready.pids),
        close: () =>
          new Promise<void>((done) => {
            child.removeAllListeners('exit');
            child.once('exit', () => done());
            child.kill('SIGTERM');
          }),
      });
    });
    child.send(request);
  });
}

function principals(): Principal[] {
  // interleaved so that any prefix spreads over the tenants
  const all: Principal[] = [];
  for (let u = 1; u <= USERS; u++) {
    for (let t = 1; t <= TENANTS; t++) all.push({ tenant: `t${t}`, user: `u${u}`, groups: [`g${((u - 1) % GROUPS) + 1}`] });
  }
  return all;
}

function medianStats(runs: Stats[]): Stats {
  return {
    perSecond: median(runs.map((r) => r.perSecond)),
    p50: median(runs.map((r) => r.p50)),
    p95: median(runs.map((r) => r.p95)),
    p99: median(runs.map((r) => r.p99)),
    cpuUs: {
      process: median(runs.map((r) => r.cpuUs.process)),
      machine: median(runs.map((r) => r.cpuUs.machine)),
    },
  };
}


/** Deploys straight + inbox to every tenant and preloads PRELOAD open inbox tasks (2 connections in parallel). */
async function seed(url: string, authUrl: string): Promise<void> {
  const files = [
    { name: 'straight.bpmn', xml: fs.readFileSync(path.join(FIXTURES, 'straight.bpmn'), 'utf8') },
    { name: 'inbox.bpmn', xml: INBOX_BPMN },
  ];
  const compiled = await compileBpmnFiles(files);
  if (!compiled.ok) throw new Error(formatProblems(compiled.problems));
  const perTenant = Math.ceil(PRELOAD / TENANTS);
  const t0 = Date.now();
  const worker = async (tenants: number[]): Promise<void> => {
    const c = new pg.Client({ connectionString: authUrl });
    await c.connect();
    try {
      await c.query(`set role bpm_admin`);
      for (const t of tenants) {
        await c.query(`select set_config('bpm.tenant_id', $1, false)`, [`t${t}`]);
        await c.query(`select bpm.deploy($1::jsonb)`, [JSON.stringify(compiled.resources)]);
      }
      for (let i = 0; i < perTenant; i += BATCH) {
        for (const t of tenants) {
          await c.query(`select set_config('bpm.tenant_id', $1, false)`, [`t${t}`]);
          // even g: assigned to a user; odd g: offered to a group; priorities 0..100 step 25, uncorrelated with the user/group
          await c.query(
            `select bpm.start_process('inbox', jsonb_build_object(
               'owner', case when g % 2 = 0 then 'u' || ((g / 2) % ${USERS} + 1) end,
               'group', case when g % 2 = 1 then 'g' || ((g / 2) % ${GROUPS} + 1) end,
               'prio', ((g / 20) % 5) * 25))
             from generate_series($1::int, $2::int) g`,
            [i, Math.min(perTenant, i + BATCH) - 1],
          );
        }
      }
    } finally {
      await c.end();
    }
  };
  const all = Array.from({ length: TENANTS }, (_, i) => i + 1);
  await Promise.all([worker(all.filter((t) => t % 2 === 1)), worker(all.filter((t) => t % 2 === 0))]);
  const root = new pg.Client({ connectionString: url });
  await root.connect();
  await root.query('analyze');
  await root.query('checkpoint');
  const counts = await root.query<{ assigned: string; offered: string }>(
    `select count(*) filter (where assignee is not null) assigned, count(*) filter (where assignee is null and cardinality(candidate_groups) > 0) offered
       from bpm.user_task where state = 'open'`,
  );
  await root.end();
  console.error(
    `  preloaded ${PRELOAD} tasks in ${((Date.now() - t0) / 1000).toFixed(1)}s: ${counts.rows[0].assigned} assigned, ${counts.rows[0].offered} offered to groups`,
  );
}

/** A pool whose every connection acts as one bpm_user (set once per session, rotating over the principals). */
function userPool(authUrl: string, users: Principal[]): pg.Pool {
  let n = 0;
  const pool = new pg.Pool({ connectionString: authUrl, max: MAX_CONNECTIONS });
  pool.on('error', () => undefined);
  pool.on('connect', (client) => {
    const p = users[n++ % users.length];
    client
      .query(
        `select set_config('role', 'bpm_user', false), set_config('bpm.tenant_id', $1, false), set_config('bpm.user_id', $2, false), set_config('bpm.groups', $3, false)`,
        [p.tenant, p.user, p.groups.join(',')],
      )
      .catch(() => undefined);
  });
  return pool;
}

/** Closed loop on `connections` clients for SECONDS (as bench/engine.ts). */
function measureSql(pool: pg.Pool, connections: number, name: string, text: string, seconds = SECONDS): Promise<Stats> {
  return withCpu(() => sqlLoop(pool, connections, name, text, seconds));
}

async function sqlLoop(pool: pg.Pool, connections: number, name: string, text: string, seconds: number): Promise<Measured> {
  const latencies: number[] = [];
  const deadline = Date.now() + seconds * 1000;
  const started = process.hrtime.bigint();
  await Promise.all(
    Array.from({ length: connections }, async () => {
      const client = await pool.connect();
      try {
        while (Date.now() < deadline) {
          const t0 = process.hrtime.bigint();
          await client.query({ name, text });
          latencies.push(Number(process.hrtime.bigint() - t0) / 1e6);
        }
      } finally {
        client.release();
      }
    }),
  );
  const elapsed = Number(process.hrtime.bigint() - started) / 1e9;
  latencies.sort((a, b) => a - b);
  return {
    perSecond: latencies.length / elapsed,
    p50: percentile(latencies, 50),
    p95: percentile(latencies, 95),
    p99: percentile(latencies, 99),
    count: latencies.length,
  };
}

/** autocannon in a child process against the in-process API. */
function measureApi(api: BenchApi, connections: number, query: string, tokens: string[], seconds = SECONDS): Promise<Stats> {
  return withCpu(() => apiLoad(api.graphqlUrl, connections, query, tokens, seconds), api.cpu);
}

function apiLoad(graphqlUrl: string, connections: number, query: string, tokens: string[], seconds: number): Promise<Measured> {
  const request: LoadRequest = { url: graphqlUrl, seconds, connections, body: JSON.stringify({ query }), tokens };
  return new Promise((resolve, reject) => {
    const child = fork(path.join(__dirname, 'api-load.js'), [], { stdio: 'inherit' });
    let result: LoadResult | undefined;
    child.once('message', (m) => {
      result = m as LoadResult;
    });
    child.once('error', reject);
    child.once('exit', (code) => {
      if (!result) return reject(new Error(`load generator exited with ${code} and no result`));
      if (result.failed > 0) return reject(new Error(`${result.failed} failed requests (${result.ok} ok); first: ${result.sample}`));
      resolve({ ...result, count: result.ok });
    });
    child.send(request);
  });
}

/** CPU per request: this process's and the machine's, µs. */
function cpuText(s: Stats): string {
  return `${fmt(s.cpuUs.process)} µs here, ${fmt(s.cpuUs.machine)} µs machine per request`;
}

/** Runs `work` under the V8 CPU profiler when BENCH_CPU_PROFILE names a folder (one .cpuprofile per API cell). */
async function profiled<T>(name: string, work: () => Promise<T>): Promise<T> {
  if (!CPU_PROFILE_DIR) return work();
  const session = new inspector.Session();
  session.connect();
  const post = (method: string, params?: object): Promise<unknown> =>
    new Promise((resolve, reject) => session.post(method, params ?? {}, (err, result) => (err ? reject(err) : resolve(result))));
  await post('Profiler.enable');
  await post('Profiler.start');
  try {
    return await work();
  } finally {
    const { profile } = (await post('Profiler.stop')) as { profile: unknown };
    fs.mkdirSync(CPU_PROFILE_DIR, { recursive: true });
    fs.writeFileSync(path.join(CPU_PROFILE_DIR, `api-${name}.cpuprofile`), JSON.stringify(profile));
    session.disconnect();
  }
}

async function graphql(graphqlUrl: string, token: string, query: string): Promise<unknown> {
  const res = await fetch(graphqlUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify({ query }),
  });
  const body = (await res.json()) as { data?: unknown; errors?: unknown };
  if (res.status !== 200 || body.errors) throw new Error(`GraphQL ${res.status}: ${JSON.stringify(body)}`);
  return body.data;
}

async function main(): Promise<void> {
  const { url, authUrl, stop } = await prepareBenchDatabase(DB_NAME);
  try {
    console.log(
      `pgbpm API benchmark: ${redactPassword(url)}; ${SECONDS}s x ${RUNS} runs per cell (median), ${CONNECTIONS.join(' and ')} connections, ` +
        `${PRELOAD} open user tasks over ${TENANTS} tenants`,
    );
    await seed(url, authUrl);
    const root = new pg.Client({ connectionString: url });
    await root.connect();
    const settings = await root.query(`select current_setting('server_version') v, current_setting('synchronous_commit') sc, current_setting('fsync') f`);
    await root.end();
    console.log(`server ${settings.rows[0].v}, synchronous_commit=${settings.rows[0].sc}, fsync=${settings.rows[0].f}; node ${process.version}, GRAPHILE_ENV=${process.env.GRAPHILE_ENV}`);

    const users = principals();
    // production settings, but without the per-tenant rate limit (100 req/s by
    // default there): it would cap what is measured at 10 tenants × 100 /s
    const config = serverConfigFromEnv({ PGBPM_JWT_SECRET: JWT_SECRET, NODE_ENV: 'production', PGBPM_RATE_LIMIT: '0' });
    const secret = config.auth.secret!;
    const tokens = await Promise.all(
      users.map((p) => mintToken({ tenant: p.tenant, user: p.user, roles: ['bpm_user'], groups: p.groups }, { secret, claims: config.auth.claims, expiresIn: '2h' })),
    );
    const poolSize = Math.max(10, MAX_CONNECTIONS);
    const api: BenchApi =
      API_PROCESSES > 1
        ? await startApiCluster({ processes: API_PROCESSES, connectionString: authUrl, jwtSecret: JWT_SECRET, poolSize })
        : await startInProcessApi({ ...config, connectionString: authUrl, poolSize, port: 0, host: '127.0.0.1', log: printWarnings });
    const pool = userPool(authUrl, users);
    try {
      // the operations work, and the inbox is what we think it is
      const inbox = (await graphql(api.graphqlUrl, tokens[0], INBOX_QUERY)) as { taskInbox: { nodes: Array<{ assignee: string | null; priority: number }> } };
      const nodes = inbox.taskInbox.nodes;
      const own = nodes.filter((n) => n.assignee === users[0].user).length;
      console.error(`  inbox of ${users[0].tenant}/${users[0].user} (${users[0].groups.join(',')}): ${nodes.length} tasks, ${own} assigned, ${nodes.length - own} offered; priorities ${nodes.map((n) => n.priority).join(',')}`);
      if (nodes.length === 0) throw new Error('the inbox is empty: is the preload too small?');
      await graphql(api.graphqlUrl, tokens[0], START_MUTATION);

      // EXPLAIN of the inbox as a bpm_user
      const explainClient = await pool.connect();
      try {
        const who = await explainClient.query(`select current_user, current_setting('bpm.tenant_id') t, current_setting('bpm.user_id') u, current_setting('bpm.groups') g`);
        const plan = await explainClient.query<{ 'QUERY PLAN': string }>(`explain (analyze, buffers) ${INBOX_SQL}`);
        const w = who.rows[0];
        console.log('');
        console.log(`EXPLAIN (ANALYZE, BUFFERS) of the inbox as ${w.current_user} ${w.t}/${w.u} (groups ${w.g}):`);
        console.log('```');
        console.log(INBOX_SQL.replace(/\s+/g, ' '));
        for (const r of plan.rows) console.log(r['QUERY PLAN']);
        console.log('```');
      } finally {
        explainClient.release();
      }

      const ops = [
        { id: 'inbox', title: 'inbox: first 20 open tasks of a bpm_user', query: INBOX_QUERY, sql: INBOX_SQL },
        { id: 'start', title: 'startProcess (straight -> one user task)', query: START_MUTATION, sql: START_SQL },
      ];
      const results = new Map<string, Stats>();
      for (const op of ops) {
        // warm-up, not measured: V8's optimised code, prepared statements and plans of every connection
        await measureApi(api, MAX_CONNECTIONS, op.query, tokens, WARMUP_SECONDS);
        await measureSql(pool, MAX_CONNECTIONS, op.id, op.sql, WARMUP_SECONDS);
        for (const conns of CONNECTIONS) {
          const apiRuns: Stats[] = [];
          const sqlRuns: Stats[] = [];
          for (let r = 0; r < RUNS; r++) {
            apiRuns.push(await profiled(`${op.id}-${conns}-${r + 1}`, () => measureApi(api, conns, op.query, tokens)));
            sqlRuns.push(await measureSql(pool, conns, op.id, op.sql));
            console.error(
              `  ${op.id} @${conns} run ${r + 1}: API ${fmt(apiRuns[r].perSecond)}/s p95 ${fmt(apiRuns[r].p95, 2)} ms, CPU ${cpuText(apiRuns[r])}; ` +
                `SQL ${fmt(sqlRuns[r].perSecond)}/s p95 ${fmt(sqlRuns[r].p95, 2)} ms, CPU ${cpuText(sqlRuns[r])}`,
            );
          }
          results.set(`${op.id}/${conns}/api`, medianStats(apiRuns));
          results.set(`${op.id}/${conns}/sql`, medianStats(sqlRuns));
        }
      }

      console.log('');
      console.log(`| operation | conns | via | req/s | p50 ms | p95 ms | p99 ms | API/SQL req/s | CPU µs/req: Node process | CPU µs/req: machine |`);
      console.log('| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |');
      for (const op of ops) {
        for (const conns of CONNECTIONS) {
          const a = results.get(`${op.id}/${conns}/api`)!;
          const s = results.get(`${op.id}/${conns}/sql`)!;
          console.log(`| ${op.title} | ${conns} | GraphQL API | ${fmt(a.perSecond)} | ${fmt(a.p50, 2)} | ${fmt(a.p95, 2)} | ${fmt(a.p99, 2)} | ${fmt(a.perSecond / s.perSecond, 2)} | ${fmt(a.cpuUs.process)} | ${fmt(a.cpuUs.machine)} |`);
          console.log(`| ${op.title} | ${conns} | SQL (pg) | ${fmt(s.perSecond)} | ${fmt(s.p50, 2)} | ${fmt(s.p95, 2)} | ${fmt(s.p99, 2)} | 1.00 | ${fmt(s.cpuUs.process)} | ${fmt(s.cpuUs.machine)} |`);
        }
      }
    } finally {
      await pool.end();
      await api.close();
    }
  } finally {
    await stop();
  }
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? (err.stack ?? err.message) : String(err));
  process.exitCode = 1;
});
