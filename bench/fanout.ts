/**
 * Multi-instance fan-out benchmark (issue 5: scopes stay fast at scale). One
 * run, one database (BENCH_DATABASE, default pgbpm_bench_fanout, dropped,
 * recreated and migrated), one connection as bpm_admin. For each shape and
 * size, BENCH_RUNS (3) calls of start_process, each its own transaction;
 * prints the median and the spread, and the time per inner instance:
 *
 *   task      parallel multi-instance user task, assignee ${item}, over a
 *             collection of n items (all inner instances made in one step)
 *   complete  complete_task of one inner task of the n-item `task` instance
 *             (the body's state, which holds the collection, is rewritten)
 *   subprocess parallel multi-instance subprocess over n items, each with a
 *             user task assigned ${item} (inner instances opened in one
 *             step; each then runs its own tokens)
 *   batches   a multi-instance subprocess over n/100 batches, each with a
 *             multi-instance user task over its 100 items
 *
 *   npm run bench:fanout
 *   BENCH_RUNS=5 BENCH_SIZES=1000,10000 BENCH_SUBPROCESS_SIZES=500,1000 npm run bench:fanout
 */
import pg from 'pg';
import { compileBpmnFiles, formatProblems } from '../compiler';
import { redactPassword } from '../cli/database';
import { prepareBenchDatabase } from './database';
import { fmt, median } from './stats';

const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const SIZES = (process.env.BENCH_SIZES ?? '1000,5000,10000').split(',').map(Number);
/** Subprocess fan-outs cost more than linearly in their size: measured up to 5,000. */
const SUBPROCESS_SIZES = (process.env.BENCH_SUBPROCESS_SIZES ?? '1000,2000,5000').split(',').map(Number);
const DB_NAME = process.env.BENCH_DATABASE ?? 'pgbpm_bench_fanout';

function model(key: string, body: string): string {
  return `<?xml version="1.0" encoding="UTF-8"?>
<definitions xmlns="http://www.omg.org/spec/BPMN/20100524/MODEL" xmlns:camunda="http://camunda.org/schema/1.0/bpmn" id="defs_${key}" targetNamespace="http://pgbpm.bench">
  <process id="${key}" isExecutable="true">
    <startEvent id="s"/><sequenceFlow id="f1" sourceRef="s" targetRef="a"/>
    ${body}
    <sequenceFlow id="f2" sourceRef="a" targetRef="e"/><endEvent id="e"/>
  </process>
</definitions>`;
}

const MODELS = [
  model('fanout_task', `<userTask id="a" camunda:assignee="\${item}">
      <multiInstanceLoopCharacteristics camunda:collection="\${items}" camunda:elementVariable="item"/>
    </userTask>`),
  model('fanout_subprocess', `<subProcess id="a">
      <multiInstanceLoopCharacteristics camunda:collection="\${items}" camunda:elementVariable="item"/>
      <startEvent id="ss"/><sequenceFlow id="s1" sourceRef="ss" targetRef="t"/>
      <userTask id="t" camunda:assignee="\${item}"/>
      <sequenceFlow id="s2" sourceRef="t" targetRef="se"/><endEvent id="se"/>
    </subProcess>`),
  model('fanout_batches', `<subProcess id="a">
      <multiInstanceLoopCharacteristics camunda:collection="\${batches}" camunda:elementVariable="batch"/>
      <startEvent id="ss"/><sequenceFlow id="s1" sourceRef="ss" targetRef="t"/>
      <userTask id="t" camunda:assignee="\${item}">
        <multiInstanceLoopCharacteristics camunda:collection="\${batch}" camunda:elementVariable="item"/>
      </userTask>
      <sequenceFlow id="s2" sourceRef="t" targetRef="se"/><endEvent id="se"/>
    </subProcess>`),
];

const items = (n: number): string[] => Array.from({ length: n }, (_, i) => `user-${i}`);
const batches = (n: number): string[][] => Array.from({ length: Math.ceil(n / 100) }, (_, b) => items(n).slice(b * 100, b * 100 + 100));

/** Milliseconds of one call of `sql` (its own transaction); returns its first row too. */
async function timed(client: pg.Client, sql: string, values: unknown[]): Promise<{ ms: number; row: Record<string, unknown> }> {
  const t0 = process.hrtime.bigint();
  const { rows } = await client.query(sql, values);
  return { ms: Number(process.hrtime.bigint() - t0) / 1e6, row: rows[0] };
}

interface Row {
  shape: string;
  n: number;
  runs: number[];
}

async function main(): Promise<void> {
  const { url, authUrl, stop } = await prepareBenchDatabase(DB_NAME);
  const client = new pg.Client({ connectionString: authUrl, options: '-c role=bpm_admin -c bpm.tenant_id=t1' });
  try {
    const compiled = await compileBpmnFiles(MODELS.map((xml, i) => ({ name: `fanout${i}.bpmn`, xml })));
    if (!compiled.ok) throw new Error(formatProblems(compiled.problems));
    await client.connect();
    await client.query('select bpm.deploy($1::jsonb)', [JSON.stringify(compiled.resources)]);
    const { rows: settings } = await client.query(`select current_setting('server_version') v, current_setting('synchronous_commit') sc`);
    console.log(`pgbpm fan-out benchmark: ${redactPassword(url)}; server ${settings[0].v}, synchronous_commit=${settings[0].sc}; median of ${RUNS} calls`);
    const start = `select (bpm.start_process($1, $2::jsonb)).id`;
    const table: Row[] = [];
    for (const n of SIZES) {
      const task: Row = { shape: 'task: start', n, runs: [] };
      const complete: Row = { shape: 'task: complete one inner task', n, runs: [] };
      const batched: Row = { shape: 'batches of 100: start', n, runs: [] };
      for (let r = 0; r < RUNS; r++) {
        const started = await timed(client, start, ['fanout_task', JSON.stringify({ items: items(n) })]);
        task.runs.push(started.ms);
        const { rows } = await client.query(`select id from bpm.user_task where instance_id = $1 and assignee = $2`, [started.row.id, `user-${r}`]);
        complete.runs.push((await timed(client, `select (bpm.complete_task($1)).state`, [rows[0].id])).ms);
        batched.runs.push((await timed(client, start, ['fanout_batches', JSON.stringify({ batches: batches(n) })])).ms);
      }
      table.push(task, complete, batched);
      console.error(`  tasks n=${n} done`);
    }
    for (const n of SUBPROCESS_SIZES) {
      const sub: Row = { shape: 'subprocess: start', n, runs: [] };
      for (let r = 0; r < RUNS; r++) sub.runs.push((await timed(client, start, ['fanout_subprocess', JSON.stringify({ items: items(n) })])).ms);
      table.push(sub);
      console.error(`  subprocess n=${n} done`);
    }
    console.log('');
    console.log('| shape | inner instances | median ms | min–max ms | µs per inner instance |');
    console.log('| --- | --- | --- | --- | --- |');
    for (const row of table) {
      const m = median(row.runs);
      const perInner = row.shape.includes('complete') ? '-' : fmt((m * 1000) / row.n);
      console.log(`| ${row.shape} | ${row.n} | ${fmt(m)} | ${fmt(Math.min(...row.runs))}–${fmt(Math.max(...row.runs))} | ${perInner} |`);
    }
  } finally {
    await client.end().catch(() => undefined);
    await stop();
  }
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.stack ?? err.message : String(err));
  process.exitCode = 1;
});
