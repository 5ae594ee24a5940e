/**
 * The external-task runner in this process against a real database: it
 * fetches through bpm.fetch_and_lock as bpm_engine and reports through
 * complete_external_tasks, throw_bpmn_error and fail_external_task. Each test
 * has its own topic and its own worker, so workers never see each other's
 * tasks.
 */
import type pg from 'pg';
import { BpmnError, NonRetryableError } from '../../../worker/errors';
import type { TaskContext } from '../../../worker/handlers';
import { createTestDb, type TestDb } from '../../helpers/db';
import { deployProcess, deployXml } from '../../helpers/engine';
import {
  all,
  bpmnWithErrors,
  externalTaskBody,
  externalTaskOf,
  history,
  incidents,
  instance,
  start,
  type ExternalTaskRow,
  type InstanceRow,
} from '../api/support';
import { deferred, startTestWorker, waitFor, type TestWorker } from './support';

// waits poll the database for states the worker reaches; on a loaded machine that can take a while
jest.setTimeout(60_000);

const TENANT = 'wk-t';

let db: TestDb;
const admins = new Map<string, pg.Client>();
const designers = new Map<string, pg.Client>();
const workers: TestWorker[] = [];

async function admin(tenant = TENANT): Promise<pg.Client> {
  let c = admins.get(tenant);
  if (!c) {
    c = await db.connectAs({ role: 'bpm_admin', tenant, user: 'boss' });
    admins.set(tenant, c);
  }
  return c;
}

async function designer(tenant = TENANT): Promise<pg.Client> {
  let c = designers.get(tenant);
  if (!c) {
    c = await db.connectAs({ role: 'bpm_designer', tenant });
    designers.set(tenant, c);
  }
  return c;
}

/** Deploys start → work (topic) → end under key = topic in each tenant. */
async function topicModel(topic: string, tenants = [TENANT]): Promise<string> {
  for (const t of tenants) await deployProcess(await designer(t), topic, externalTaskBody(topic));
  return topic;
}

async function worker(options: Parameters<typeof startTestWorker>[1]): Promise<TestWorker> {
  const w = await startTestWorker(db, options);
  workers.push(w);
  return w;
}

const ended = (id: string) => async (): Promise<InstanceRow | undefined> => {
  const i = await instance(db.root, id);
  return i.state === 'completed' ? i : undefined;
};

beforeAll(async () => {
  db = await createTestDb();
});
afterEach(async () => {
  await Promise.all(workers.splice(0).map((w) => w.stop()));
});
afterAll(() => db.close());

describe('a handler', () => {
  test('gets the variables and its context; what it returns completes the task and merges into the instance', async () => {
    const topic = await topicModel('w_complete');
    const seen: Array<{ variables: Record<string, unknown>; ctx: TaskContext }> = [];
    await worker({
      tenants: [TENANT],
      handlers: {
        [topic]: (variables, ctx) => {
          seen.push({ variables, ctx });
          return { charged: true, amount: Number(variables.amount) * 2 };
        },
      },
    });
    const inst = await start(await admin(), topic, { amount: 21 });
    const done = await waitFor('the instance to complete', ended(inst.id));
    expect(done.variables).toEqual({ amount: 42, charged: true });
    expect(seen).toHaveLength(1);
    const { variables, ctx } = seen[0] as (typeof seen)[number];
    const task = await externalTaskOf(db.root, inst.id);
    expect(variables).toEqual({ amount: 21 });
    expect(ctx).toMatchObject({
      taskId: task.id,
      instanceId: inst.id,
      elementId: 'work',
      topic,
      tenant: TENANT,
      attempt: 1,
      retries: 3,
      retriesLeft: 3,
    });
    expect(ctx.headers).toEqual({});
    expect(ctx.signal.aborted).toBe(false);
    expect(ctx.lockedUntil).toBeInstanceOf(Date);
    expect(task).toMatchObject({ state: 'completed', retries: null, error_message: null });
    expect(await history(db.root, inst.id)).toEqual(['start:completed', 'work:completed', 'end:completed']);
  });

  test('gets the service task\'s headers (zeebe:taskHeaders, camunda:properties) as ctx.headers', async () => {
    const topic = 'w_headers';
    await deployProcess(await designer(TENANT), topic, `
      <startEvent id="start"/>
      <sequenceFlow id="f1" sourceRef="start" targetRef="work"/>
      <serviceTask id="work"><extensionElements>
        <zeebe:taskDefinition type="${topic}"/>
        <zeebe:taskHeaders><zeebe:header key="template" value="welcome"/></zeebe:taskHeaders>
      </extensionElements></serviceTask>
      <sequenceFlow id="f2" sourceRef="work" targetRef="end"/>
      <endEvent id="end"/>`);
    await worker({ tenants: [TENANT], handlers: { [topic]: (_variables, ctx) => ({ template: ctx.headers.template }) } });
    const inst = await start(await admin(), topic);
    expect((await waitFor('the instance to complete', ended(inst.id))).variables).toEqual({ template: 'welcome' });
  });
});

describe('BPMN errors', () => {
  test('a BpmnError thrown by the handler takes the matching error boundary, with its variables, code and message', async () => {
    const key = 'w_bpmn_error';
    await deployXml(await designer(), [
      {
        name: `${key}.bpmn`,
        xml: bpmnWithErrors(
          key,
          { E_DECLINED: 'CARD_DECLINED' },
          `<startEvent id="start"/><sequenceFlow id="f1" sourceRef="start" targetRef="work"/>
           <serviceTask id="work" camunda:type="external" camunda:topic="${key}"/>
           <sequenceFlow id="f2" sourceRef="work" targetRef="end"/><endEvent id="end"/>
           <boundaryEvent id="onDeclined" attachedToRef="work">
             <errorEventDefinition errorRef="E_DECLINED" camunda:errorCodeVariable="errorCode" camunda:errorMessageVariable="errorMessage"/>
           </boundaryEvent>
           <sequenceFlow id="fx" sourceRef="onDeclined" targetRef="handleDeclined"/>
           <userTask id="handleDeclined"/><sequenceFlow id="fx2" sourceRef="handleDeclined" targetRef="endX"/><endEvent id="endX"/>`,
        ),
      },
    ]);
    let calls = 0;
    await worker({
      tenants: [TENANT],
      handlers: {
        [key]: () => {
          calls += 1;
          throw new BpmnError('CARD_DECLINED', 'card 4711 declined', { declineReason: 'limit' });
        },
      },
    });
    const inst = await start(await admin(), key, { card: '4711' });
    await waitFor('the error path', async () =>
      (await history(db.root, inst.id)).includes('handleDeclined:active') ? true : undefined,
    );
    expect(await history(db.root, inst.id)).toEqual(['start:completed', 'work:cancelled', 'onDeclined:completed', 'handleDeclined:active']);
    expect(await instance(db.root, inst.id)).toMatchObject({
      state: 'active',
      variables: { card: '4711', declineReason: 'limit', errorCode: 'CARD_DECLINED', errorMessage: 'card 4711 declined' },
    });
    expect(await externalTaskOf(db.root, inst.id)).toMatchObject({ state: 'cancelled', error_message: 'BPMN error CARD_DECLINED: card 4711 declined' });
    expect(await incidents(db.root, inst.id)).toEqual([]);
    expect(calls).toBe(1);
  });
});

describe('failures and retries', () => {
  test('a handler that fails three times and then succeeds completes the instance exactly once, retried with exponential back-off', async () => {
    const topic = await topicModel('w_retry');
    const starts: Array<{ attempt: number; retriesLeft: number; at: number }> = [];
    await worker({
      tenants: [TENANT],
      handlers: {
        [topic]: {
          backoff: { baseMs: 60, maxMs: 1000 },
          handler: (_variables, ctx) => {
            starts.push({ attempt: ctx.attempt, retriesLeft: ctx.retriesLeft, at: Date.now() });
            if (ctx.attempt <= 3) throw new Error(`service down (attempt ${ctx.attempt})`);
            return { done: ctx.attempt };
          },
        },
      },
    });
    const inst = await start(await admin(), topic);
    const done = await waitFor('the instance to complete', ended(inst.id));
    expect(done.variables).toEqual({ done: 4 });
    expect(starts.map((s) => [s.attempt, s.retriesLeft])).toEqual([
      [1, 3],
      [2, 2],
      [3, 1],
      [4, 0],
    ]);
    // retry n waits base · 2^(n-1): 60, 120, 240 ms (a few ms of clock slack between Node and PostgreSQL)
    const gaps = starts.slice(1).map((s, i) => s.at - (starts[i] as (typeof starts)[number]).at);
    expect(gaps[0]).toBeGreaterThanOrEqual(55);
    expect(gaps[1]).toBeGreaterThanOrEqual(115);
    expect(gaps[2]).toBeGreaterThanOrEqual(235);
    // one transition: exactly one completed row per element
    expect(await history(db.root, inst.id)).toEqual(['start:completed', 'work:completed', 'end:completed']);
    expect(await externalTaskOf(db.root, inst.id)).toMatchObject({ state: 'completed', retries: 1, error_message: 'service down (attempt 3)' });
    expect(await incidents(db.root, inst.id)).toEqual([]);
  });

  test('when the retries are used up the engine raises an incident failedExternalTask and the handler is not called again', async () => {
    const topic = await topicModel('w_exhausted');
    let calls = 0;
    await worker({
      tenants: [TENANT],
      handlers: {
        [topic]: {
          retries: 2,
          handler: () => {
            calls += 1;
            throw new Error('card service down', { cause: new Error('connect ECONNREFUSED 10.0.0.7:443') });
          },
        },
      },
    });
    const inst = await start(await admin(), topic);
    const [incident] = await waitFor('an incident', async () => {
      const found = await incidents(db.root, inst.id);
      return found.length > 0 ? found : undefined;
    });
    const task = await externalTaskOf(db.root, inst.id);
    expect(incident).toMatchObject({ incident_type: 'failedExternalTask', message: 'card service down', external_task_id: task.id, resolved_at: null });
    expect(task).toMatchObject({ state: 'open', retries: 0, worker_id: null, error_message: 'card service down' });
    // the details: the handler's stack and its cause's
    const { rows } = await db.root.query<{ details: string }>('select error_details as details from bpm.external_task where id = $1', [task.id]);
    expect(rows[0].details).toMatch(/^Error: card service down\n\s+at .*\nCaused by: Error: connect ECONNREFUSED 10\.0\.0\.7:443\n\s+at /s);
    expect(calls).toBe(3);
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(calls).toBe(3);
    expect((await instance(db.root, inst.id)).state).toBe('active');
  });

  test('retry_incident makes the task available again and the worker completes it', async () => {
    const topic = await topicModel('w_incident_retry');
    let fail = true;
    await worker({
      tenants: [TENANT],
      handlers: {
        [topic]: {
          retries: 0,
          handler: () => {
            if (fail) throw new Error('not yet');
            return { recovered: true };
          },
        },
      },
    });
    const inst = await start(await admin(), topic);
    const [incident] = await waitFor('an incident', async () => {
      const found = await incidents(db.root, inst.id);
      return found.length > 0 ? found : undefined;
    });
    fail = false;
    const engine = await db.connectAs({ role: 'bpm_engine', tenant: TENANT });
    await engine.query('select bpm.retry_incident($1, 1)', [incident?.id]);
    await engine.end();
    expect((await waitFor('the instance to complete', ended(inst.id))).variables).toEqual({ recovered: true });
  });

  test('a NonRetryableError (and a result that is not an object) raises the incident at the first failure', async () => {
    const topic = await topicModel('w_non_retryable');
    await worker({
      tenants: [TENANT],
      handlers: {
        [topic]: (variables) => {
          if (variables.kind === 'bad input') throw new NonRetryableError('customer id missing');
          return [1, 2] as unknown as Record<string, unknown>;
        },
      },
    });
    const bad = await start(await admin(), topic, { kind: 'bad input' });
    const array = await start(await admin(), topic, { kind: 'array' });
    const messages = await waitFor('two incidents', async () => {
      const rows = await all<{ message: string; instance_id: string }>(
        db.root,
        `select message, instance_id from bpm.incident where instance_id = any($1) order by instance_id = $2 desc`,
        [[bad.id, array.id], bad.id],
      );
      return rows.length === 2 ? rows : undefined;
    });
    expect(messages).toEqual([
      { instance_id: bad.id, message: 'customer id missing' },
      { instance_id: array.id, message: 'TypeError: the handler returned an array, not an object of variables' },
    ]);
  });

  test('a result reported after another worker took the task over (lock expired) is refused with BP205 and logged; the runner goes on', async () => {
    const topic = await topicModel('w_lost_lock');
    const release = deferred();
    let calls = 0;
    const w = await worker({
      tenants: [TENANT],
      handlers: {
        [topic]: {
          lockDurationMs: 100,
          handler: async () => {
            calls += 1;
            if (calls === 1) await release.promise;
            return { by: 'worker' };
          },
        },
      },
      config: { concurrency: 1 },
    });
    const engine = await db.connectAs({ role: 'bpm_engine', tenant: TENANT });
    const inst = await start(await admin(), topic);
    await waitFor('the worker to lock the task', async () => ((await externalTaskOf(db.root, inst.id)).worker_id ? true : undefined));
    // another worker takes it once the worker's lock has expired
    const [stolen] = await waitFor('the lock to expire', async () => {
      const { rows } = await engine.query<ExternalTaskRow>(`select * from bpm.fetch_and_lock($1, 'thief', 1, '1 minute')`, [topic]);
      return rows.length > 0 ? rows : undefined;
    });
    release.resolve();
    await waitFor('the refusal to be logged', async () => (w.logs.some((l) => l.sqlstate === 'BP205') ? true : undefined));
    const line = w.logs.find((l) => l.sqlstate === 'BP205');
    expect(line).toMatchObject({ level: 40, taskId: stolen?.id, msg: expect.stringContaining('locked by another worker') });
    await engine.query(`select bpm.complete_external_task($1, 'thief', '{"by": "thief"}')`, [stolen?.id]);
    await engine.end();
    expect((await waitFor('the instance to complete', ended(inst.id))).variables).toEqual({ by: 'thief' });
    // the runner is still working
    const next = await start(await admin(), topic);
    expect((await waitFor('the next instance to complete', ended(next.id))).variables).toEqual({ by: 'worker' });
    // the runner counts an outcome after the engine call committed, so the count may trail the instance by a moment
    const outcomes = await waitFor('the runner to count the completion', async () => {
      const counted = w.runtime.externalTasks?.stats().outcomes;
      return counted && counted.completed >= 1 ? counted : undefined;
    });
    expect(outcomes).toMatchObject({ lost: 1, completed: 1 });
  });

  test('results ready at the same time are reported together, in few transactions; each instance gets its own result', async () => {
    const topic = await topicModel('w_batched');
    const release = deferred();
    let running = 0;
    await worker({
      tenants: [TENANT],
      handlers: {
        [topic]: async (variables) => {
          running += 1;
          await release.promise;
          return { doubled: (variables.n as number) * 2 };
        },
      },
      config: { concurrency: 10, batchSize: 10 },
    });
    const started: InstanceRow[] = [];
    for (let n = 0; n < 10; n++) started.push(await start(await admin(), topic, { n }));
    await waitFor('ten handlers to run', async () => (running === 10 ? true : undefined));
    release.resolve();
    for (const inst of started) {
      expect((await waitFor('the instance to complete', ended(inst.id))).variables).toEqual({ n: inst.variables.n, doubled: (inst.variables.n as number) * 2 });
    }
    // an event id carries its transaction (id >> 20): the first result went alone, the nine that came while it was under way together
    const { rows } = await db.root.query<{ transactions: number }>(
      `select count(distinct e.id >> 20)::int as transactions from bpm.event e
       where e.tenant_id = $1 and e.kind = 'instanceCompleted' and e.instance_id = any($2::uuid[])`,
      [TENANT, started.map((i) => i.id)],
    );
    expect(rows[0]?.transactions).toBeLessThanOrEqual(3);
  });

  test('a result the engine refuses (a condition after the task needs a variable nobody set) fails the task into an incident, not an endless rerun', async () => {
    const key = 'w_refused';
    await deployProcess(
      await designer(),
      key,
      `<startEvent id="start"/><sequenceFlow id="f1" sourceRef="start" targetRef="work"/>
       <serviceTask id="work" camunda:type="external" camunda:topic="${key}"/>
       <sequenceFlow id="f2" sourceRef="work" targetRef="gw"/>
       <exclusiveGateway id="gw"/>
       <sequenceFlow id="yes" sourceRef="gw" targetRef="end"><conditionExpression>\${approved}</conditionExpression></sequenceFlow>
       <sequenceFlow id="no" sourceRef="gw" targetRef="end"><conditionExpression>\${not approved}</conditionExpression></sequenceFlow>
       <endEvent id="end"/>`,
    );
    let calls = 0;
    await worker({
      tenants: [TENANT],
      handlers: {
        [key]: {
          retries: 1,
          handler: () => {
            calls += 1;
            return { checked: true };
          },
        },
      },
    });
    const inst = await start(await admin(), key);
    const [incident] = await waitFor('an incident', async () => {
      const found = await incidents(db.root, inst.id);
      return found.length > 0 ? found : undefined;
    });
    expect(incident?.message).toMatch(/^the engine refused the result: .*approved.* \(SQLSTATE BP302\)$/);
    expect(calls).toBe(2);
    expect(await history(db.root, inst.id)).toEqual(['start:completed', 'work:active']);
    expect(await instance(db.root, inst.id)).toMatchObject({ state: 'active', variables: {} });
  });
});

describe('wake-up calls (LISTEN bpm_external_task)', () => {
  /** The worker's leases of `tenant` (as superuser: inspection only). */
  const leases = (tenant: string) => async (): Promise<number | undefined> => {
    const { rows } = await db.root.query<{ n: number }>(
      `select count(*)::int as n from bpm_private.task_listener where tenant_id = $1 and expires_at > now()`,
      [tenant],
    );
    return (rows[0]?.n ?? 0) > 0 ? rows[0]?.n : undefined;
  };

  test('a worker that polls once a minute still takes new tasks, and tasks failed without delay, at once: the engine notifies it', async () => {
    const topic = await topicModel('w_wake');
    let calls = 0;
    await worker({
      tenants: [TENANT],
      config: { idleMs: 60_000, backoffBaseMs: 0, backoffMaxMs: 0 },
      handlers: {
        [topic]: () => {
          calls += 1;
          if (calls === 2) throw new Error('once');
          return { ok: true };
        },
      },
    });
    await waitFor('the worker to hold a lease', leases(TENANT), 10_000);
    for (let i = 0; i < 2; i++) {
      const started = Date.now();
      const { id } = await start(await admin(), topic);
      // the second one fails once (retry_after 0) and is fetched again at once too
      await waitFor(`instance ${i} to complete`, ended(id), 5_000);
      expect(Date.now() - started).toBeLessThan(5_000);
    }
    expect(calls).toBe(3);
  });

  test('a listener whose connection is killed reconnects, renews its lease and wakes the worker again', async () => {
    const topic = await topicModel('w_relisten');
    await worker({ tenants: [TENANT], config: { idleMs: 60_000 }, handlers: { [topic]: () => ({ ok: true }) } });
    const listening = async (): Promise<number | undefined> => {
      const { rows } = await db.root.query<{ pid: number }>(
        `select pid from pg_stat_activity where application_name = 'pgbpm-worker-listen' and query ilike 'select bpm.register_task_listener%'`,
      );
      return rows[0]?.pid;
    };
    const pid = await waitFor('the listener connection', listening, 10_000);
    await db.root.query('select pg_terminate_backend($1)', [pid]);
    await waitFor('a new listener connection', async () => {
      const next = await listening();
      return next !== undefined && next !== pid ? next : undefined;
    }, 10_000);
    const { id } = await start(await admin(), topic);
    await waitFor('the instance to complete after the reconnect', ended(id), 5_000);
  });

  test('the engine notifies only for tenants with a live lease, with an empty payload; the lease needs bpm_engine or bpm_admin and a valid ttl', async () => {
    // a tenant no worker of this file serves (their leases outlive them by up to 30 s)
    const tenant = 'wk-notify';
    const topic = await topicModel('w_notify', [tenant, 'wk-quiet']);
    const heard: string[] = [];
    const listener = await db.connectAs({ role: 'bpm_engine', tenant });
    try {
      listener.on('notification', (n) => heard.push(n.payload ?? ''));
      await listener.query('listen bpm_external_task');
      const settle = () => new Promise((resolve) => setTimeout(resolve, 300));

      await start(await admin(tenant), topic);
      await settle();
      expect(heard).toEqual([]); // no lease yet: nothing is sent

      const { rows } = await listener.query<{ expires: Date }>(`select bpm.register_task_listener('probe', '2 seconds') as expires`);
      expect(rows[0]?.expires.getTime()).toBeGreaterThan(Date.now());
      await start(await admin(tenant), topic);
      await start(await admin('wk-quiet'), topic); // another tenant, no lease
      await settle();
      expect(heard).toEqual(['']);

      await new Promise((resolve) => setTimeout(resolve, 2_100)); // the lease lapses
      await start(await admin(tenant), topic);
      await settle();
      expect(heard).toEqual(['']);

      // a ttl of 0 releases a lease at once
      await listener.query(`select bpm.register_task_listener('probe', '1 minute')`);
      await start(await admin(tenant), topic);
      await settle();
      expect(heard).toEqual(['', '']);
      await listener.query(`select bpm.register_task_listener('probe', '0')`);
      await start(await admin(tenant), topic);
      await settle();
      expect(heard).toEqual(['', '']);

      await expect(listener.query(`select bpm.register_task_listener('probe', '2 hours')`)).rejects.toMatchObject({ code: 'BP401' });
      await expect(listener.query(`select bpm.register_task_listener('probe', '-1 second')`)).rejects.toMatchObject({ code: 'BP401' });
      await expect(listener.query(`select bpm.register_task_listener('', '1 minute')`)).rejects.toMatchObject({ code: 'BP401' });
      const user = await db.connectAs({ role: 'bpm_user', tenant, user: 'u' });
      try {
        await expect(user.query(`select bpm.register_task_listener('probe')`)).rejects.toMatchObject({ code: '42501' });
      } finally {
        await user.end();
      }
    } finally {
      await listener.end();
    }
  });
});

describe('tenants', () => {
  test('a worker serves only the tenants it is given', async () => {
    const topic = await topicModel('w_tenants', [TENANT, 'wk-other']);
    await worker({ tenants: [TENANT], handlers: { [topic]: () => ({ ok: true }) } });
    const other = await start(await admin('wk-other'), topic);
    const mine = await start(await admin(), topic);
    await waitFor('my instance to complete', ended(mine.id));
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(await externalTaskOf(db.root, other.id)).toMatchObject({ state: 'open', worker_id: null });
  });

  test('round-robin: a tenant with 200 waiting tasks does not starve a tenant with 5', async () => {
    const busy = 'wk-busy';
    const quiet = 'wk-quiet';
    const topic = await topicModel('w_fair', [busy, quiet]);
    const busyAdmin = await admin(busy);
    for (let i = 0; i < 200; i++) await start(busyAdmin, topic);
    for (let i = 0; i < 5; i++) await start(await admin(quiet), topic);
    const order: string[] = [];
    await worker({
      tenants: [busy, quiet],
      handlers: {
        [topic]: async (_v, ctx) => {
          order.push(ctx.tenant);
          await new Promise((resolve) => setTimeout(resolve, 1));
          return {};
        },
      },
      config: { concurrency: 2, batchSize: 10 },
    });
    await waitFor('every task', async () => (order.length === 205 ? true : undefined), 50_000);
    const lastQuiet = order.lastIndexOf(quiet);
    // fetches alternate between the tenants, one slot's worth each: the quiet tenant's 5 come within the first ~12
    expect(lastQuiet).toBeLessThan(20);
  });
});

describe('shutdown', () => {
  test('a worker that stops releases its NOTIFY leases at once (the engine stops notifying for its tenants)', async () => {
    const tenant = 'wk-release';
    const topic = await topicModel('w_release', [tenant]);
    const leases = async (): Promise<number> =>
      (await db.root.query('select 1 from bpm_private.task_listener where tenant_id = $1 and expires_at > now()', [tenant])).rowCount ?? 0;
    const w = await startTestWorker(db, { tenants: [tenant], handlers: { [topic]: () => ({ ok: true }) } });
    try {
      await waitFor('the lease', async () => ((await leases()) === 1 ? true : undefined), 10_000);
    } finally {
      await w.stop();
    }
    expect(await leases()).toBe(0);
  });

  test('stop() fetches nothing more and waits for the handlers in hand, which complete their tasks', async () => {
    const topic = await topicModel('w_graceful');
    const release = deferred();
    let started = 0;
    const w = await worker({
      tenants: [TENANT],
      handlers: {
        [topic]: async () => {
          started += 1;
          await release.promise;
          return { finished: true };
        },
      },
      config: { concurrency: 3 },
    });
    const insts = [await start(await admin(), topic), await start(await admin(), topic), await start(await admin(), topic)];
    await waitFor('three handlers in flight', async () => (started === 3 ? true : undefined));
    const stopping = w.stop();
    const late = await start(await admin(), topic);
    await new Promise((resolve) => setTimeout(resolve, 100));
    release.resolve();
    expect(await stopping).toEqual({ abandoned: 0, aborted: false });
    for (const i of insts) expect((await instance(db.root, i.id)).state).toBe('completed');
    expect(await externalTaskOf(db.root, late.id)).toMatchObject({ state: 'open', worker_id: null });
    expect(started).toBe(3);
  });

  test('past the shutdown timeout the AbortSignal fires; a handler that stops hands its task back without using a retry', async () => {
    const topic = await topicModel('w_abort');
    let started = false;
    const w = await worker({
      tenants: [TENANT],
      handlers: {
        [topic]: (_v, ctx) =>
          new Promise((_resolve, reject) => {
            started = true;
            ctx.signal.addEventListener('abort', () => reject(new Error('aborted by the signal')));
          }),
      },
      config: { shutdownTimeoutMs: 200 },
    });
    const inst = await start(await admin(), topic);
    await waitFor('the handler to start', async () => (started ? true : undefined));
    expect(await w.stop()).toEqual({ abandoned: 0, aborted: true });
    const task = await externalTaskOf(db.root, inst.id);
    expect(task).toMatchObject({ state: 'open', worker_id: null, locked_until: null, retries: 3 });
    expect(task.error_message).toMatch(/^released by worker test-worker-.* at shutdown: aborted by the signal$/);
    expect(await incidents(db.root, inst.id)).toEqual([]);
  });
});
