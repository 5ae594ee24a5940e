/**
 * Timers, asynchronous continuations and task deadlines through real
 * graphile-worker jobs (issue 4): the engine enqueues bpm_fire_timer,
 * bpm_continue and bpm_task_deadline jobs in the transaction that needs them,
 * and the worker's job runner (bpm_authenticator → SET ROLE bpm_engine, as
 * `pgbpm worker` runs it) runs them when they come due. test/db/events/
 * checks the same SQL functions called directly; here nothing calls them but
 * the worker.
 *
 * One job runner serves the whole file (tenant-agnostic: each job carries
 * its tenant). Tests poll the database for the states they expect; the few
 * fixed waits are the ones that prove that nothing happens after a due time.
 */
import type pg from 'pg';
import { createTestDb, type TestDb } from '../../helpers/db';
import { deployProcess, deployXml } from '../../helpers/engine';
import { completeTask, getInstance, history, startProcess, userTasks, type ProcessInstance, type UserTask } from '../elements/support';
import { startTestWorker, waitFor, type TestWorker } from './support';

jest.setTimeout(60_000);

const TENANT = 'timers-w';

let db: TestDb;
let admin: pg.Client;
let worker: TestWorker;

beforeAll(async () => {
  db = await createTestDb();
  admin = await db.connectAs({ role: 'bpm_admin', tenant: TENANT, user: 'boss' });
  worker = await startTestWorker(db, { tenants: [], jobs: true });
});

afterAll(async () => {
  await worker?.stop();
  await db?.close();
});

// ---------------------------------------------------------------------------
// helpers
// ---------------------------------------------------------------------------

interface Subscription {
  id: string;
  instance_id: string | null;
  definition_id: string | null;
  element_id: string;
  due_at: Date | null;
  cycle: string | null;
  repeats_left: number | null;
  incident_id: string | null;
}

interface Job {
  key: string;
  task_identifier: string;
  run_at: Date;
  attempts: number;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Sleeps until `at` plus `marginMs` (the only kind of fixed wait here: proving nothing happens after a due time). */
async function sleepPast(at: Date, marginMs: number): Promise<void> {
  const ms = at.getTime() + marginMs - Date.now();
  if (ms > 0) await sleep(ms);
}

async function timerSubscriptions(instanceId: string): Promise<Subscription[]> {
  const { rows } = await db.root.query<Subscription>(
    `select id, instance_id, definition_id, element_id, due_at, cycle, repeats_left, incident_id
     from bpm.event_subscription where tenant_id = $1 and instance_id = $2 and kind = 'timer' order by element_id`,
    [TENANT, instanceId],
  );
  return rows;
}

async function startSubscriptions(definitionId: string): Promise<Subscription[]> {
  const { rows } = await db.root.query<Subscription>(
    `select id, instance_id, definition_id, element_id, due_at, cycle, repeats_left, incident_id
     from bpm.event_subscription where tenant_id = $1 and definition_id = $2 and instance_id is null order by element_id`,
    [TENANT, definitionId],
  );
  return rows;
}

/** graphile-worker's job of a timer subscription (job_key bpm-timer:<id>), if any. */
async function timerJob(subscriptionId: string): Promise<Job | undefined> {
  const { rows } = await db.root.query<Job>(
    `select key, task_identifier, run_at, attempts from graphile_worker.jobs where key = $1`,
    [`bpm-timer:${subscriptionId}`],
  );
  return rows[0];
}

async function jobsOfKeys(prefix: string): Promise<Job[]> {
  const { rows } = await db.root.query<Job>(
    `select key, task_identifier, run_at, attempts from graphile_worker.jobs where key like $1 order by key`,
    [`${prefix}%`],
  );
  return rows;
}

interface EventRow {
  kind: string;
  element_id: string | null;
  subject_id: string | null;
  created_at: Date;
}

async function events(instanceId: string, kind?: string): Promise<EventRow[]> {
  const { rows } = await admin.query<EventRow>(
    `select kind, element_id, subject_id, created_at from bpm.event where instance_id = $1 and ($2::text is null or kind = $2) order by id`,
    [instanceId, kind ?? null],
  );
  return rows;
}

async function instanceWhen(id: string, what: string, accept: (i: ProcessInstance) => boolean, timeoutMs = 20_000): Promise<ProcessInstance> {
  return waitFor(what, async () => {
    const i = await getInstance(admin, id);
    return accept(i) ? i : undefined;
  }, timeoutMs);
}

async function onlyTask(instanceId: string, elementId: string): Promise<UserTask> {
  const tasks = (await userTasks(admin, instanceId)).filter((t) => t.element_id === elementId);
  if (tasks.length !== 1) throw new Error(`expected one task ${elementId} in ${instanceId}, got ${tasks.length}`);
  return tasks[0];
}

/** An ISO 8601 UTC date-time `ms` from now, to the millisecond. */
const isoIn = (ms: number): string => new Date(Date.now() + ms).toISOString();

const timer = (kind: 'timeDate' | 'timeDuration' | 'timeCycle', value: string): string =>
  `<timerEventDefinition><${kind}>${value}</${kind}></timerEventDefinition>`;

// ---------------------------------------------------------------------------
// intermediate timers
// ---------------------------------------------------------------------------

test('an intermediate timer (PT1S) fires through its bpm_fire_timer job and the instance moves on within about 2 s of starting', async () => {
  await deployProcess(admin, 'w_catch', `
    <startEvent id="start"/>
    <sequenceFlow id="f1" sourceRef="start" targetRef="wait"/>
    <intermediateCatchEvent id="wait">${timer('timeDuration', 'PT1S')}</intermediateCatchEvent>
    <sequenceFlow id="f2" sourceRef="wait" targetRef="end"/>
    <endEvent id="end"/>`);
  const started = await startProcess(admin, 'w_catch');
  expect(started.state).toBe('active');
  const [sub] = await timerSubscriptions(started.id);
  expect(sub).toMatchObject({ element_id: 'wait', cycle: null });
  const due = sub.due_at as Date;
  expect(due.getTime() - started.started_at.getTime()).toBeGreaterThanOrEqual(999);
  expect(await timerJob(sub.id)).toMatchObject({ task_identifier: 'bpm_fire_timer', run_at: due });

  const done = await instanceWhen(started.id, 'the timer to fire and the instance to complete', (i) => i.state === 'completed');
  const [fired] = await events(started.id, 'timerFired');
  expect(fired).toMatchObject({ element_id: 'wait', subject_id: sub.id });
  // never early; late by at most a poll interval plus the work (generous bound for a loaded machine)
  expect(fired.created_at.getTime()).toBeGreaterThanOrEqual(due.getTime());
  expect(fired.created_at.getTime() - due.getTime()).toBeLessThan(1500);
  expect((done.ended_at as Date).getTime() - started.started_at.getTime()).toBeLessThan(2500);
  expect(await history(admin, started.id)).toEqual([
    'start startEvent completed',
    'wait intermediateCatchEvent completed',
    'end endEvent completed',
  ]);
  expect(await timerSubscriptions(started.id)).toEqual([]);
  expect(await timerJob(sub.id)).toBeUndefined();
});

// ---------------------------------------------------------------------------
// timer boundary events
// ---------------------------------------------------------------------------

describe('timer boundary events on a user task', () => {
  beforeAll(async () => {
    await deployProcess(admin, 'w_deadline', `
      <startEvent id="start"/>
      <sequenceFlow id="f1" sourceRef="start" targetRef="review"/>
      <userTask id="review"/>
      <boundaryEvent id="late" attachedToRef="review">${timer('timeDuration', 'PT1S')}</boundaryEvent>
      <sequenceFlow id="f2" sourceRef="review" targetRef="done"/>
      <endEvent id="done"/>
      <sequenceFlow id="f3" sourceRef="late" targetRef="timedOut"/>
      <endEvent id="timedOut"/>`);
    await deployProcess(admin, 'w_nag', `
      <startEvent id="start"/>
      <sequenceFlow id="f1" sourceRef="start" targetRef="review"/>
      <userTask id="review"/>
      <boundaryEvent id="nag" attachedToRef="review" cancelActivity="false">${timer('timeCycle', 'R3/PT1S')}</boundaryEvent>
      <sequenceFlow id="f2" sourceRef="review" targetRef="done"/>
      <endEvent id="done"/>
      <sequenceFlow id="f3" sourceRef="nag" targetRef="nagged"/>
      <endEvent id="nagged"/>`);
  });

  test('an interrupting timer fires through its job: the task is cancelled and the boundary path taken', async () => {
    const started = await startProcess(admin, 'w_deadline');
    const [sub] = await timerSubscriptions(started.id);
    expect(sub).toMatchObject({ element_id: 'late' });
    expect(await timerJob(sub.id)).toBeDefined();

    await instanceWhen(started.id, 'the boundary timer to end the instance', (i) => i.state === 'completed');
    const task = await onlyTask(started.id, 'review');
    expect(task.state).toBe('cancelled');
    expect(await history(admin, started.id)).toEqual([
      'start startEvent completed',
      'review userTask cancelled',
      'late boundaryEvent completed',
      'timedOut endEvent completed',
    ]);
    expect((await events(started.id)).map((e) => e.kind)).toEqual(expect.arrayContaining(['timerFired', 'taskCancelled', 'instanceCompleted']));
    expect(await timerJob(sub.id)).toBeUndefined();
  });

  test('the timer of a task completed before it is due never fires: its job is removed with the completion', async () => {
    const started = await startProcess(admin, 'w_deadline');
    const [sub] = await timerSubscriptions(started.id);
    expect(await timerJob(sub.id)).toBeDefined();
    await completeTask(admin, (await onlyTask(started.id, 'review')).id);
    // in the same transaction as the completion
    expect(await timerJob(sub.id)).toBeUndefined();
    expect(await timerSubscriptions(started.id)).toEqual([]);
    const after = await getInstance(admin, started.id);
    expect(after.state).toBe('completed');
    const historyBefore = await history(admin, started.id);

    await sleepPast(sub.due_at as Date, 1200);
    expect(await events(started.id, 'timerFired')).toEqual([]);
    expect(await history(admin, started.id)).toEqual(historyBefore);
    expect(historyBefore).toEqual(['start startEvent completed', 'review userTask completed', 'done endEvent completed']);
    expect(await getInstance(admin, started.id)).toEqual(after);
  });

  test('a non-interrupting cycle R3/PT1S fires three times while the task waits, then stops', async () => {
    const started = await startProcess(admin, 'w_nag');
    const [sub] = await timerSubscriptions(started.id);
    expect(sub).toMatchObject({ element_id: 'nag', cycle: 'R3/PT1S', repeats_left: 2 });

    const fired = await waitFor('three firings', async () => {
      const f = await events(started.id, 'timerFired');
      return f.length >= 3 ? f : undefined;
    });
    // the cycle is used up: subscription and job gone, the task still waits
    await waitFor('the cycle subscription to close', async () => ((await timerSubscriptions(started.id)).length === 0 ? true : undefined));
    expect(await timerJob(sub.id)).toBeUndefined();
    // each firing at least a second after the previous one (the cycle's period)
    for (let i = 1; i < fired.length; i++) {
      expect(fired[i].created_at.getTime() - fired[i - 1].created_at.getTime()).toBeGreaterThanOrEqual(500);
    }
    await sleep(1500);
    expect(await events(started.id, 'timerFired')).toHaveLength(3);
    const task = await onlyTask(started.id, 'review');
    expect(task.state).toBe('open');
    expect((await history(admin, started.id)).filter((h) => h === 'nagged endEvent completed')).toHaveLength(3);
    expect((await getInstance(admin, started.id)).state).toBe('active');

    await completeTask(admin, task.id);
    expect((await getInstance(admin, started.id)).state).toBe('completed');
  });

  test('a non-interrupting cycle stops when its task completes: the next repetition’s job is removed', async () => {
    const started = await startProcess(admin, 'w_nag');
    const [sub] = await timerSubscriptions(started.id);
    await waitFor('the first firing', async () => ((await events(started.id, 'timerFired')).length >= 1 ? true : undefined));
    const rearmed = await waitFor('the cycle to be re-armed', async () => {
      const [s] = await timerSubscriptions(started.id);
      return s && (s.repeats_left ?? 0) < 2 ? s : undefined;
    });
    expect(rearmed.id).toBe(sub.id);
    await completeTask(admin, (await onlyTask(started.id, 'review')).id);
    expect(await timerJob(sub.id)).toBeUndefined();
    expect(await timerSubscriptions(started.id)).toEqual([]);
    const firedSoFar = (await events(started.id, 'timerFired')).length;
    expect(firedSoFar).toBeLessThan(3);

    await sleepPast(rearmed.due_at as Date, 1200);
    expect(await events(started.id, 'timerFired')).toHaveLength(firedSoFar);
    expect((await getInstance(admin, started.id)).state).toBe('completed');
  });
});

// ---------------------------------------------------------------------------
// timer start events
// ---------------------------------------------------------------------------

async function instancesOf(definitionId: string): Promise<ProcessInstance[]> {
  const { rows } = await admin.query<ProcessInstance>('select * from bpm.process_instance where definition_id = $1 order by started_at', [definitionId]);
  return rows;
}

const timerStart = (date: string): string => `
  <startEvent id="tick">${timer('timeDate', date)}</startEvent>
  <sequenceFlow id="f1" sourceRef="tick" targetRef="work"/>
  <userTask id="work"/>
  <sequenceFlow id="f2" sourceRef="work" targetRef="end"/>
  <endEvent id="end"/>`;

test('a timer start event with a timeDate two seconds ahead starts an instance through its job', async () => {
  const def = await deployProcess(admin, 'w_start', timerStart(isoIn(2000)));
  const [sub] = await startSubscriptions(def.id);
  expect(sub).toMatchObject({ element_id: 'tick', instance_id: null });
  expect(await timerJob(sub.id)).toMatchObject({ task_identifier: 'bpm_fire_timer' });
  expect(await instancesOf(def.id)).toEqual([]);

  const [started] = await waitFor('the timer start event to start an instance', async () => {
    const list = await instancesOf(def.id);
    return list.length > 0 ? list : undefined;
  });
  expect(started.state).toBe('active');
  expect(started.started_at.getTime()).toBeGreaterThanOrEqual((sub.due_at as Date).getTime());
  expect(await events(started.id, 'timerFired')).toMatchObject([{ element_id: 'tick', subject_id: sub.id }]);
  expect(await history(admin, started.id)).toEqual(['tick startEvent completed', 'work userTask active']);
  // a date fires once: subscription and job are gone
  expect(await startSubscriptions(def.id)).toEqual([]);
  expect(await timerJob(sub.id)).toBeUndefined();
  await sleep(500);
  expect(await instancesOf(def.id)).toHaveLength(1);
});

test('redeploying a timer start event replaces its schedule: the old job is removed, only the new version starts', async () => {
  const v1 = await deployProcess(admin, 'w_restart', timerStart(isoIn(4000)));
  const [old] = await startSubscriptions(v1.id);
  expect(await timerJob(old.id)).toBeDefined();

  const v2 = await deployProcess(admin, 'w_restart', timerStart(isoIn(2000)));
  expect(v2.version).toBe(v1.version + 1);
  const [replacement] = await startSubscriptions(v2.id);
  expect(await startSubscriptions(v1.id)).toEqual([]);
  expect(await timerJob(old.id)).toBeUndefined();
  expect((await jobsOfKeys('bpm-timer:')).map((j) => j.key)).toContain(`bpm-timer:${replacement.id}`);

  await waitFor('version 2 to start an instance', async () => ((await instancesOf(v2.id)).length > 0 ? true : undefined));
  // past version 1's due time: it never starts anything
  await sleepPast(old.due_at as Date, 1200);
  expect(await instancesOf(v1.id)).toEqual([]);
  expect(await instancesOf(v2.id)).toHaveLength(1);
});

// ---------------------------------------------------------------------------
// suspended instances
// ---------------------------------------------------------------------------

test('the timer of a suspended instance does not fire until the instance is activated, then fires at once', async () => {
  await deployProcess(admin, 'w_suspend', `
    <startEvent id="start"/>
    <sequenceFlow id="f1" sourceRef="start" targetRef="wait"/>
    <intermediateCatchEvent id="wait">${timer('timeDuration', 'PT1S')}</intermediateCatchEvent>
    <sequenceFlow id="f2" sourceRef="wait" targetRef="after"/>
    <userTask id="after"/>`);
  const started = await startProcess(admin, 'w_suspend');
  const [sub] = await timerSubscriptions(started.id);
  await admin.query('select bpm.suspend_process_instance($1)', [started.id]);

  // the job comes due and runs, finds the instance suspended and does nothing
  await waitFor('the due job to run (and do nothing)', async () => ((await timerJob(sub.id)) === undefined ? true : undefined));
  await sleepPast(sub.due_at as Date, 300);
  expect(await events(started.id, 'timerFired')).toEqual([]);
  expect(await timerSubscriptions(started.id)).toMatchObject([{ id: sub.id }]);
  expect(await history(admin, started.id)).toEqual(['start startEvent completed', 'wait intermediateCatchEvent active']);
  expect((await getInstance(admin, started.id)).state).toBe('suspended');

  const activatedAt = Date.now();
  await admin.query('select bpm.activate_process_instance($1)', [started.id]);
  expect(await timerJob(sub.id)).toBeDefined();
  await waitFor('the timer to fire after activation', async () => ((await events(started.id, 'timerFired')).length === 1 ? true : undefined));
  const [fired] = await events(started.id, 'timerFired');
  expect(fired.created_at.getTime() - activatedAt).toBeLessThan(2000);
  expect(await history(admin, started.id)).toEqual([
    'start startEvent completed',
    'wait intermediateCatchEvent completed',
    'after userTask active',
  ]);
});

// ---------------------------------------------------------------------------
// incidents of failing timer continuations
// ---------------------------------------------------------------------------

test('a timer whose continuation fails (BP301 at the gateway after it) becomes an incident failedJob; retry_incident after set_variables fires it again', async () => {
  await deployProcess(admin, 'w_failing', `
    <startEvent id="start"/>
    <sequenceFlow id="f1" sourceRef="start" targetRef="wait"/>
    <intermediateCatchEvent id="wait">${timer('timeDuration', 'PT1S')}</intermediateCatchEvent>
    <sequenceFlow id="f2" sourceRef="wait" targetRef="route"/>
    <exclusiveGateway id="route"/>
    <sequenceFlow id="big" sourceRef="route" targetRef="bigEnd"><conditionExpression xsi:type="tFormalExpression">\${amount > 10}</conditionExpression></sequenceFlow>
    <sequenceFlow id="negative" sourceRef="route" targetRef="negEnd"><conditionExpression xsi:type="tFormalExpression">\${amount &lt; 0}</conditionExpression></sequenceFlow>
    <endEvent id="bigEnd"/>
    <endEvent id="negEnd"/>`);
  const started = await startProcess(admin, 'w_failing', { amount: 5 });
  const [sub] = await timerSubscriptions(started.id);

  interface Incident {
    id: string;
    element_id: string;
    incident_type: string;
    message: string;
    resolved_at: Date | null;
  }
  const incident = await waitFor('the incident', async () => {
    const { rows } = await admin.query<Incident>('select id, element_id, incident_type, message, resolved_at from bpm.incident where instance_id = $1', [started.id]);
    return rows[0];
  });
  expect(incident).toMatchObject({ element_id: 'wait', incident_type: 'failedJob', resolved_at: null });
  expect(incident.message).toMatch(/BP301/);
  // the timer's job is done (it did its work: recording the incident); the subscription waits for the retry
  await waitFor('the job to finish', async () => ((await timerJob(sub.id)) === undefined ? true : undefined));
  expect(await timerSubscriptions(started.id)).toMatchObject([{ id: sub.id, incident_id: incident.id }]);
  expect((await getInstance(admin, started.id)).state).toBe('active');
  expect(await history(admin, started.id)).toEqual(['start startEvent completed', 'wait intermediateCatchEvent active']);
  expect(await events(started.id, 'timerFired')).toEqual([]);

  await admin.query(`select bpm.set_variables($1, '{"amount": 50}')`, [started.id]);
  await admin.query('select bpm.retry_incident($1)', [incident.id]);
  const done = await instanceWhen(started.id, 'the retried timer to complete the instance', (i) => i.state === 'completed');
  expect(done.variables).toEqual({ amount: 50 });
  expect(await history(admin, started.id)).toEqual([
    'start startEvent completed',
    'wait intermediateCatchEvent completed',
    'route exclusiveGateway completed',
    'bigEnd endEvent completed',
  ]);
  const { rows: after } = await admin.query<{ resolved_at: Date | null }>('select resolved_at from bpm.incident where id = $1', [incident.id]);
  expect(after[0].resolved_at).toBeInstanceOf(Date);
  expect(await events(started.id, 'timerFired')).toHaveLength(1);
});

// ---------------------------------------------------------------------------
// asynchronous continuations
// ---------------------------------------------------------------------------

test('asyncBefore on a none task and on a service task: each continues through its bpm_continue job', async () => {
  await deployProcess(admin, 'w_async', `
    <startEvent id="start"/>
    <sequenceFlow id="f1" sourceRef="start" targetRef="prepare"/>
    <task id="prepare" camunda:asyncBefore="true"/>
    <sequenceFlow id="f2" sourceRef="prepare" targetRef="charge"/>
    <serviceTask id="charge" camunda:asyncBefore="true" camunda:type="external" camunda:topic="w-charge"/>
    <sequenceFlow id="f3" sourceRef="charge" targetRef="end"/>
    <endEvent id="end"/>`);
  const started = await startProcess(admin, 'w_async');
  expect(started.state).toBe('active');
  // the instance waits before 'prepare' until the job runs; it never runs in start_process
  const { rows: tokens } = await db.root.query<{ id: string; element_id: string; kind: string }>(
    `select id, element_id, kind from bpm_private.token where instance_id = $1`,
    [started.id],
  );
  expect(tokens).toMatchObject([{ element_id: 'prepare', kind: 'asyncBefore' }]);

  const external = await waitFor('both continuations to run and the external task to open', async () => {
    const { rows } = await admin.query<{ id: string; state: string; topic: string }>(
      `select id, state, topic from bpm.external_task where instance_id = $1`,
      [started.id],
    );
    return rows[0];
  });
  expect(external).toMatchObject({ state: 'open', topic: 'w-charge' });
  expect(await history(admin, started.id)).toEqual(['start startEvent completed', 'prepare task completed', 'charge serviceTask active']);
  const { rows: left } = await db.root.query(`select 1 from bpm_private.token where instance_id = $1`, [started.id]);
  expect(left).toEqual([]);
  // graphile-worker deletes a job after its task returned, a moment after the task's commit
  await waitFor('the continuation jobs to be done', async () => ((await jobsOfKeys('bpm-async:')).length === 0 ? true : undefined), 5_000);
});

// ---------------------------------------------------------------------------
// task deadlines
// ---------------------------------------------------------------------------

test('a user task past its due date becomes overdue through bpm_task_deadline, then its escalation rule adds candidate groups', async () => {
  await deployProcess(admin, 'w_due', `
    <startEvent id="start"/>
    <sequenceFlow id="f1" sourceRef="start" targetRef="review"/>
    <userTask id="review" camunda:candidateGroups="sales" camunda:dueDate="PT1S">
      <extensionElements>
        <camunda:properties>
          <camunda:property name="pgbpm:escalateAfter" value="PT1S"/>
          <camunda:property name="pgbpm:escalateToGroups" value="managers, leads"/>
        </camunda:properties>
      </extensionElements>
    </userTask>
    <sequenceFlow id="f2" sourceRef="review" targetRef="end"/>
    <endEvent id="end"/>`);
  const started = await startProcess(admin, 'w_due');
  const task = await onlyTask(started.id, 'review');
  const due = task.due_at as Date;
  expect(due.getTime() - task.created_at.getTime()).toBeGreaterThanOrEqual(999);
  const keys = (await jobsOfKeys('bpm-task-')).map((j) => j.key);
  expect(keys).toEqual(expect.arrayContaining([`bpm-task-due:${task.id}`, `bpm-task-escalate:${task.id}`]));

  interface DeadlineTask extends UserTask {
    overdue_since: Date | null;
    escalated_at: Date | null;
  }
  const read = async (): Promise<DeadlineTask> =>
    (await admin.query<DeadlineTask>('select * from bpm.user_task where id = $1', [task.id])).rows[0];

  const overdue = await waitFor('the task to become overdue', async () => {
    const t = await read();
    return t.overdue_since ? t : undefined;
  });
  expect((overdue.overdue_since as Date).getTime()).toBeGreaterThanOrEqual(due.getTime());
  expect(await events(started.id, 'taskOverdue')).toMatchObject([{ subject_id: task.id, element_id: 'review' }]);

  const escalated = await waitFor('the escalation', async () => {
    const t = await read();
    return t.escalated_at ? t : undefined;
  });
  expect((escalated.escalated_at as Date).getTime()).toBeGreaterThanOrEqual(due.getTime() + 1000);
  expect(escalated.candidate_groups).toEqual(['leads', 'managers', 'sales']);
  expect(escalated.state).toBe('open');
  expect(await events(started.id, 'taskEscalated')).toMatchObject([{ subject_id: task.id }]);
  // graphile-worker deletes a job after its task returned, a moment after the task's commit
  await waitFor('the deadline jobs to be done', async () => ((await jobsOfKeys(`bpm-task-`)).length === 0 ? true : undefined), 5_000);
  // each once
  expect(await events(started.id, 'taskOverdue')).toHaveLength(1);
});

// ---------------------------------------------------------------------------
// Engine bugs these tests found (since fixed), kept as regression tests.
// ---------------------------------------------------------------------------

test('two instances throwing signals at each other while each is held by another transaction: the bpm_deliver jobs deliver both once the holders commit', async () => {
  const roots = '<signal id="s_ping" name="WToPing"/><signal id="s_pong" name="WToPong"/>';
  const pair = (key: string, throws: string, catches: string): { name: string; xml: string } => ({
    name: `${key}.bpmn`,
    xml: `<?xml version="1.0" encoding="UTF-8"?>
<definitions xmlns="http://www.omg.org/spec/BPMN/20100524/MODEL" id="defs_${key}" targetNamespace="http://pgbpm.test">${roots}
  <process id="${key}" isExecutable="true">
    <startEvent id="start"/><sequenceFlow id="f1" sourceRef="start" targetRef="fork"/><parallelGateway id="fork"/>
    <sequenceFlow id="f2" sourceRef="fork" targetRef="work"/><sequenceFlow id="f3" sourceRef="fork" targetRef="wait"/>
    <userTask id="work"/><sequenceFlow id="f4" sourceRef="work" targetRef="throw"/>
    <intermediateThrowEvent id="throw"><signalEventDefinition signalRef="${throws}"/></intermediateThrowEvent>
    <sequenceFlow id="f5" sourceRef="throw" targetRef="thrown"/><endEvent id="thrown"/>
    <intermediateCatchEvent id="wait"><signalEventDefinition signalRef="${catches}"/></intermediateCatchEvent>
    <sequenceFlow id="f6" sourceRef="wait" targetRef="caught"/><endEvent id="caught"/>
  </process>
</definitions>`,
  });
  await deployXml(admin, [pair('w_ping', 's_pong', 's_ping'), pair('w_pong', 's_ping', 's_pong')]);
  const a = await startProcess(admin, 'w_ping');
  const b = await startProcess(admin, 'w_pong');
  const [taskA] = await userTasks(admin, a.id);
  const [taskB] = await userTasks(admin, b.id);
  const c1 = await db.connectAs({ role: 'bpm_admin', tenant: TENANT });
  const c2 = await db.connectAs({ role: 'bpm_admin', tenant: TENANT });
  try {
    await c1.query('begin');
    await c1.query(`select bpm.set_variables($1, '{"step": 1}')`, [a.id]);
    await c2.query('begin');
    await c2.query(`select bpm.set_variables($1, '{"step": 1}')`, [b.id]);
    await c1.query('select bpm.complete_task($1)', [taskA.id]);
    await c2.query('select bpm.complete_task($1)', [taskB.id]);
    await c1.query('commit');
    await c2.query('commit');
  } finally {
    await c1.end();
    await c2.end();
  }
  for (const id of [a.id, b.id]) {
    await instanceWhen(id, 'the deferred signal to arrive and the instance to complete', (i) => i.state === 'completed', 10_000);
    expect(await history(admin, id)).toEqual(expect.arrayContaining(['wait intermediateCatchEvent completed', 'caught endEvent completed']));
  }
  const { rows } = await db.root.query(`select 1 from bpm_private.deferred_delivery`);
  expect(rows).toEqual([]);
});

describe('engine bugs found here', () => {
  // activate_process_instance rescheduled timers and continuations but not
  // the bpm_task_deadline jobs; a due job that ran while the instance was
  // suspended did nothing (process_task_deadline returns null), so the task
  // never became overdue and was never escalated.
  test('a task that came due while its instance was suspended becomes overdue once the instance is activated', async () => {
    await deployProcess(admin, 'w_due_suspended', `
      <startEvent id="start"/>
      <sequenceFlow id="f1" sourceRef="start" targetRef="review"/>
      <userTask id="review" camunda:dueDate="PT1S"/>
      <sequenceFlow id="f2" sourceRef="review" targetRef="end"/>
      <endEvent id="end"/>`);
    const started = await startProcess(admin, 'w_due_suspended');
    const task = await onlyTask(started.id, 'review');
    await admin.query('select bpm.suspend_process_instance($1)', [started.id]);
    await waitFor('the due job to run while suspended', async () =>
      (await jobsOfKeys(`bpm-task-due:${task.id}`)).length === 0 ? true : undefined,
    );
    await admin.query('select bpm.activate_process_instance($1)', [started.id]);
    await waitFor('the task to become overdue after activation', async () => {
      const { rows } = await admin.query<{ overdue_since: Date | null }>('select overdue_since from bpm.user_task where id = $1', [task.id]);
      return rows[0].overdue_since ?? undefined;
    }, 5000);
  });

  // compiler/graph.ts: a timeDate "with or without offset; none = UTC". The
  // engine cast the text with ::timestamptz, which reads a date-time
  // without offset in the session's TimeZone (the server's default, or
  // whatever the client set), so the same model fired at different instants
  // depending on who started the instance.
  test('a timeDate without offset is UTC whatever the TimeZone of the session that arms it', async () => {
    await deployProcess(admin, 'w_naive_date', `
      <startEvent id="start"/>
      <sequenceFlow id="f1" sourceRef="start" targetRef="wait"/>
      <intermediateCatchEvent id="wait">${timer('timeDate', '2030-01-15T09:00:00')}</intermediateCatchEvent>
      <sequenceFlow id="f2" sourceRef="wait" targetRef="end"/>
      <endEvent id="end"/>`);
    const ny = await db.connectAs({ role: 'bpm_admin', tenant: TENANT, user: 'boss' });
    try {
      await ny.query(`set timezone = 'America/New_York'`);
      const started = await startProcess(ny, 'w_naive_date');
      const [sub] = await timerSubscriptions(started.id);
      expect((sub.due_at as Date).toISOString()).toBe('2030-01-15T09:00:00.000Z');
    } finally {
      await ny.end();
    }
  });

  // Rescheduling an asynchronous continuation (activate_process_instance,
  // retry_incident) called async__enqueue(…, '{}') instead of with the node,
  // so the job got the default 3 retries (max_attempts 4) instead of those
  // of camunda:failedJobRetryTimeCycle.
  test('retry_incident of a failed continuation keeps the retries of camunda:failedJobRetryTimeCycle', async () => {
    await deployProcess(admin, 'w_async_retries', `
      <startEvent id="start"/>
      <sequenceFlow id="f1" sourceRef="start" targetRef="route"/>
      <exclusiveGateway id="route" camunda:asyncBefore="true">
        <extensionElements><camunda:failedJobRetryTimeCycle>R1/PT1M</camunda:failedJobRetryTimeCycle></extensionElements>
      </exclusiveGateway>
      <sequenceFlow id="yes" sourceRef="route" targetRef="end"><conditionExpression xsi:type="tFormalExpression">\${ok}</conditionExpression></sequenceFlow>
      <endEvent id="end"/>`);
    const started = await startProcess(admin, 'w_async_retries', { ok: false });
    const { rows: tokens } = await db.root.query<{ id: string }>(`select id from bpm_private.token where instance_id = $1`, [started.id]);
    const key = `bpm-async:${tokens[0].id}`;
    const { rows: jobs } = await db.root.query<{ max_attempts: number }>('select max_attempts from graphile_worker.jobs where key = $1', [key]);
    expect(jobs[0]?.max_attempts ?? 2).toBe(2);
    const incident = await waitFor('the failedJob incident (two attempts)', async () => {
      const { rows } = await admin.query<{ id: string }>(`select id from bpm.incident where instance_id = $1 and incident_type = 'failedJob'`, [started.id]);
      return rows[0];
    }, 30_000);
    await admin.query('select bpm.retry_incident($1)', [incident.id]);
    const { rows: again } = await db.root.query<{ max_attempts: number }>('select max_attempts from graphile_worker.jobs where key = $1', [key]);
    expect(again[0].max_attempts).toBe(2);
  });

  // The same for the start of a repeating interval: timer__arm casts the
  // start of R[n]/start/duration with ::timestamptz, so a start without
  // offset (which the compiler accepts, e.g. R/2030-01-01T08:00:00/P1D) is
  // read in the TimeZone of the session that arms the timer.
  test('the start of a repeating interval without offset is UTC whatever the session TimeZone', async () => {
    await deployProcess(admin, 'w_naive_cycle', `
      <startEvent id="start"/>
      <sequenceFlow id="f1" sourceRef="start" targetRef="work"/>
      <userTask id="work"/>
      <boundaryEvent id="daily" attachedToRef="work" cancelActivity="false">${timer('timeCycle', 'R3/2030-01-15T09:00:00/P1D')}</boundaryEvent>
      <sequenceFlow id="f2" sourceRef="daily" targetRef="noted"/>
      <endEvent id="noted"/>`);
    const ny = await db.connectAs({ role: 'bpm_admin', tenant: TENANT, user: 'boss' });
    try {
      await ny.query(`set timezone = 'America/New_York'`);
      const started = await startProcess(ny, 'w_naive_cycle');
      const [sub] = await timerSubscriptions(started.id);
      expect((sub.due_at as Date).toISOString()).toBe('2030-01-15T09:00:00.000Z');
    } finally {
      await ny.end();
    }
  });
});
