/**
 * History retention benchmark. One run, one database (BENCH_DATABASE,
 * default pgbpm_bench_retention, dropped, recreated and migrated):
 *
 *   seed     BENCH_ENDED ended instances (20000) of a process with
 *            camunda:historyTimeToLive="0" (start -> user task -> end, each
 *            completed: 3 activity rows, 1 task, 6 events per instance), and
 *            as many running instances of a process without one (kept)
 *   measure  bpm.cleanup_history(BENCH_BATCH) as bpm_admin until it removes
 *            nothing: instances removed per second per call (median and
 *            p95 of the calls' durations), then the event log trimmed with
 *            event_retention 0 in batches of 5,000 events
 *
 *   npm run bench:retention
 *   BENCH_ENDED=50000 BENCH_BATCH=1000 npm run bench:retention
 */
import pg from 'pg';
import { compileBpmnFiles, formatProblems } from '../compiler';
import { redactPassword } from '../cli/database';
import { prepareBenchDatabase } from './database';
import { fmt, median, percentile } from './stats';

const ENDED = Number(process.env.BENCH_ENDED ?? 20000);
const BATCH = Number(process.env.BENCH_BATCH ?? 500);
const DB_NAME = process.env.BENCH_DATABASE ?? 'pgbpm_bench_retention';
const TENANT = 'bench';

const model = (key: string, ttl: string): string => `<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" xmlns:camunda="http://camunda.org/schema/1.0/bpmn" id="d_${key}" targetNamespace="http://pgbpm.bench">
  <bpmn:process id="${key}" isExecutable="true"${ttl}>
    <bpmn:startEvent id="s"/><bpmn:sequenceFlow id="f1" sourceRef="s" targetRef="t"/>
    <bpmn:userTask id="t"/><bpmn:sequenceFlow id="f2" sourceRef="t" targetRef="e"/><bpmn:endEvent id="e"/>
  </bpmn:process>
</bpmn:definitions>`;

interface Measured {
  removed: number;
  seconds: number;
  callsMs: number[];
}

async function drain(client: pg.Client, sql: string, column: 'instances' | 'events'): Promise<Measured> {
  const callsMs: number[] = [];
  let removed = 0;
  const started = process.hrtime.bigint();
  for (;;) {
    const t0 = process.hrtime.bigint();
    const { rows } = await client.query<{ instances: number; events: number }>(sql);
    const n = rows[0]?.[column] ?? 0;
    if (n === 0) break;
    callsMs.push(Number(process.hrtime.bigint() - t0) / 1e6);
    removed += n;
  }
  return { removed, seconds: Number(process.hrtime.bigint() - started) / 1e9, callsMs: callsMs.sort((a, b) => a - b) };
}

function report(what: string, m: Measured, per: number): void {
  console.log(`| ${what} | ${m.removed} | ${m.callsMs.length} | ${fmt(m.removed / m.seconds)} | ${fmt(median(m.callsMs), 1)} | ${fmt(percentile(m.callsMs, 95), 1)} | ${per} |`);
}

async function main(): Promise<void> {
  const { url, authUrl, stop } = await prepareBenchDatabase(DB_NAME);
  try {
    console.log(`pgbpm retention benchmark: ${redactPassword(url)}; ${ENDED} ended instances, batches of ${BATCH}`);
    const compiled = await compileBpmnFiles([
      { name: 'expiring.bpmn', xml: model('expiring', ' camunda:historyTimeToLive="0"') },
      { name: 'kept.bpmn', xml: model('kept', '') },
    ]);
    if (!compiled.ok) throw new Error(formatProblems(compiled.problems));
    const client = new pg.Client({ connectionString: authUrl });
    await client.connect();
    await client.query(`set role bpm_admin`);
    await client.query(`select set_config('bpm.tenant_id', $1, false)`, [TENANT]);
    await client.query(`select bpm.deploy($1::jsonb)`, [JSON.stringify(compiled.resources)]);
    for (let done = 0; done < ENDED; done += 1000) {
      const n = Math.min(1000, ENDED - done);
      await client.query(`select bpm.start_process('expiring') from generate_series(1, $1)`, [n]);
      await client.query(`select bpm.start_process('kept') from generate_series(1, $1)`, [n]);
      await client.query(`select count(bpm.complete_task(t.id)) from bpm.user_task t
        join bpm.process_instance i on i.tenant_id = t.tenant_id and i.id = t.instance_id
        join bpm.process_definition d on d.tenant_id = i.tenant_id and d.id = i.definition_id
        where t.tenant_id = $1 and d.key = 'expiring' and t.state = 'open'`, [TENANT]);
    }
    const root = new pg.Client({ connectionString: url });
    await root.connect();
    await root.query('vacuum analyze');
    await root.query('checkpoint');
    const sizes = await root.query<{ events: string; activities: string }>(
      `select (select count(*) from bpm.event) as events, (select count(*) from bpm.activity_instance) as activities`);
    console.log(`seeded: ${sizes.rows[0].activities} activity rows, ${sizes.rows[0].events} events`);
    await root.end();

    console.log('');
    console.log('| removed | rows | calls | rows/s | p50 ms per call | p95 ms per call | batch |');
    console.log('| --- | --- | --- | --- | --- | --- | --- |');
    report('ended instances (with 3 activity rows and a task each)', await drain(client, `select * from bpm.cleanup_history(${BATCH})`, 'instances'), BATCH);
    report('events', await drain(client, `select * from bpm.cleanup_history(1, null, interval '0', 5000)`, 'events'), 5000);
    const kept = await client.query<{ n: string }>(`select count(*) as n from bpm.process_instance where state = 'active'`);
    console.log(`\nrunning instances kept: ${kept.rows[0].n} of ${ENDED}`);
    await client.end();
  } finally {
    await stop();
  }
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.stack ?? err.message : String(err));
  process.exitCode = 1;
});
