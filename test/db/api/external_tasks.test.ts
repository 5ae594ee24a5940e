/**
 * External task API: fetch_and_lock, complete_external_task,
 * complete_external_tasks, fail_external_task, throw_bpmn_error and
 * retry_incident. Locks, back-off, incidents, error boundaries, argument
 * checks, and that every refused call changes nothing. Each test uses its own topic, so fetches never see the
 * tasks of another test.
 */
import type pg from 'pg';
import { createTestDb, type TestDb } from '../../helpers/db';
import { deployFixture, deployProcess, deployXml, expectRejectedUnchanged } from '../../helpers/engine';
import {
  all,
  bpmnWithErrors,
  externalTask,
  externalTaskBody,
  externalTaskOf,
  history,
  incidents,
  instance,
  newId,
  one,
  openUserTask,
  start,
  type ExternalTaskRow,
  type IncidentRow,
  type InstanceRow,
  type Variables,
} from './support';

const TENANT = 'ext-t';

let db: TestDb;
let designer: pg.Client;
let admin: pg.Client;
let engine: pg.Client;

beforeAll(async () => {
  db = await createTestDb();
  designer = await db.connectAs({ role: 'bpm_designer', tenant: TENANT });
  admin = await db.connectAs({ role: 'bpm_admin', tenant: TENANT, user: 'boss' });
  engine = await db.connectAs({ role: 'bpm_engine', tenant: TENANT });
  await deployFixture(designer, 'external.bpmn');
});
afterAll(() => db.close());

/** Deploys start → work (topic) → end under key `topic` and returns the topic. */
async function topicModel(topic: string): Promise<string> {
  await deployProcess(designer, topic, externalTaskBody(topic));
  return topic;
}

const fetchAndLock = (client: pg.ClientBase, topic: string, worker: string, max = 1, lock = '5 minutes'): Promise<ExternalTaskRow[]> =>
  all<ExternalTaskRow>(client, 'select * from bpm.fetch_and_lock($1, $2, $3, $4::interval)', [topic, worker, max, lock]);
const completeExternal = (client: pg.ClientBase, id: string, worker: string, variables: Variables = {}): Promise<ExternalTaskRow> =>
  one<ExternalTaskRow>(client, 'select * from bpm.complete_external_task($1, $2, $3::jsonb)', [id, worker, JSON.stringify(variables)]);
const failExternal = (client: pg.ClientBase, id: string, worker: string, message: string, retries: number, after = '0'): Promise<ExternalTaskRow> =>
  one<ExternalTaskRow>(client, 'select * from bpm.fail_external_task($1, $2, $3, $4, $5::interval)', [id, worker, message, retries, after]);
const throwError = (client: pg.ClientBase, id: string, worker: string, code: string, variables: Variables = {}): Promise<ExternalTaskRow> =>
  one<ExternalTaskRow>(client, 'select * from bpm.throw_bpmn_error($1, $2, $3, $4::jsonb)', [id, worker, code, JSON.stringify(variables)]);
const retryIncident = (client: pg.ClientBase, id: string, retries = 1): Promise<IncidentRow> =>
  one<IncidentRow>(client, 'select * from bpm.retry_incident($1, $2)', [id, retries]);

/** Starts an instance of `key` and fetches its (only) task for `worker` (the topic is the key unless given). */
async function startAndLock(
  key: string,
  worker: string,
  variables: Variables = {},
  topic = key,
): Promise<{ inst: InstanceRow; task: ExternalTaskRow }> {
  const inst = await start(admin, key, variables);
  const [task] = await fetchAndLock(engine, topic, worker);
  if (!task || task.instance_id !== inst.id) throw new Error(`expected to lock the task of ${inst.id}`);
  return { inst, task };
}

describe('fetch_and_lock', () => {
  test('returns up to max_tasks tasks, oldest first, locked for the worker with the instance variables', async () => {
    const topic = await topicModel('t_fetch');
    const first = await start(admin, topic, { n: 1 });
    const second = await start(admin, topic, { n: 2 });
    const third = await start(admin, topic, { n: 3 });
    const fetched = await all<ExternalTaskRow & { fetched_at: Date }>(
      engine,
      `select f.*, now() as fetched_at from bpm.fetch_and_lock($1, 'w1', 2, '5 minutes') f`,
      [topic],
    );
    expect(fetched.map((t) => t.instance_id)).toEqual([first.id, second.id]);
    for (const t of fetched) {
      expect(t).toMatchObject({ topic, element_id: 'work', state: 'open', worker_id: 'w1', retries: null });
      expect(t.locked_until?.getTime()).toBe(t.fetched_at.getTime() + 5 * 60_000);
    }
    expect(fetched.map((t) => t.variables)).toEqual([{ n: 1 }, { n: 2 }]);
    const rest = await fetchAndLock(engine, topic, 'w2', 10);
    expect(rest.map((t) => [t.instance_id, t.worker_id])).toEqual([[third.id, 'w2']]);
    expect(await fetchAndLock(engine, topic, 'w3', 10)).toEqual([]);
  });

  test('a task carries its element\'s headers (zeebe:taskHeaders, camunda:properties) to the worker; without any they are null', async () => {
    await deployProcess(designer, 't_headers', `
      <startEvent id="start"/>
      <sequenceFlow id="f1" sourceRef="start" targetRef="work"/>
      <serviceTask id="work" camunda:type="external" camunda:topic="t_headers">
        <extensionElements>
          <camunda:properties><camunda:property name="template" value="invoice-v2"/></camunda:properties>
          <zeebe:taskHeaders><zeebe:header key="channel" value="email"/><zeebe:header key="retryPolicy" value="fast"/></zeebe:taskHeaders>
        </extensionElements>
      </serviceTask>
      <sequenceFlow id="f2" sourceRef="work" targetRef="mail"/>
      <intermediateThrowEvent id="mail"><extensionElements><zeebe:taskDefinition type="t_headers"/>
        <zeebe:taskHeaders><zeebe:header key="to" value="ops@example.com"/></zeebe:taskHeaders></extensionElements>
        <messageEventDefinition/></intermediateThrowEvent>
      <sequenceFlow id="f3" sourceRef="mail" targetRef="end"/>
      <endEvent id="end"/>`);
    const inst = await start(admin, 't_headers');
    const [task] = await fetchAndLock(engine, 't_headers', 'w1');
    expect(task?.headers).toEqual({ template: 'invoice-v2', channel: 'email', retryPolicy: 'fast' });
    await engine.query(`select bpm.complete_external_task($1, 'w1')`, [task?.id]);
    const [mail] = await fetchAndLock(engine, 't_headers', 'w1');
    expect(mail).toMatchObject({ instance_id: inst.id, element_id: 'mail', headers: { to: 'ops@example.com' } });
    const plain = await topicModel('t_no_headers');
    await start(admin, plain);
    expect((await fetchAndLock(engine, plain, 'w1'))[0]?.headers).toBeNull();
  });

  test('camunda:taskPriority (of the task, an expression, or the process\'s default) orders the fetch: highest first, then oldest', async () => {
    await deployXml(designer, [{
      name: 't_priority.bpmn',
      xml: `<?xml version="1.0" encoding="UTF-8"?>
        <definitions xmlns="http://www.omg.org/spec/BPMN/20100524/MODEL" xmlns:camunda="http://camunda.org/schema/1.0/bpmn" id="d" targetNamespace="http://pgbpm.test">
          <process id="t_priority" isExecutable="true" camunda:taskPriority="5">
            <startEvent id="s"/><sequenceFlow id="f1" sourceRef="s" targetRef="fork"/>
            <parallelGateway id="fork"/>
            <sequenceFlow id="f2" sourceRef="fork" targetRef="low"/><sequenceFlow id="f3" sourceRef="fork" targetRef="urgent"/>
            <sequenceFlow id="f4" sourceRef="fork" targetRef="usual"/>
            <serviceTask id="low" camunda:type="external" camunda:topic="t_priority" camunda:taskPriority="-1"/>
            <serviceTask id="urgent" camunda:type="external" camunda:topic="t_priority" camunda:taskPriority="\${urgency}"/>
            <serviceTask id="usual" camunda:type="external" camunda:topic="t_priority"/>
          </process>
        </definitions>`,
    }]);
    const first = await start(admin, 't_priority', { urgency: 90 });
    const second = await start(admin, 't_priority', { urgency: '7' });
    const fetched = await fetchAndLock(engine, 't_priority', 'w1', 10);
    expect(fetched.map((t) => [t.instance_id === first.id ? 'first' : t.instance_id === second.id ? 'second' : '?', t.element_id, t.priority])).toEqual([
      ['first', 'urgent', 90],
      ['second', 'urgent', 7],
      ['first', 'usual', 5],
      ['second', 'usual', 5],
      ['first', 'low', -1],
      ['second', 'low', -1],
    ]);
  });

  test('a task priority expression that is no integer is BP303, rolled back', async () => {
    await expectRejectedUnchanged(db.root, () => start(admin, 't_priority', { urgency: 'high' }), 'BP303', /priority of element urgent is not an integer: "high"/);
  });

  describe('a topic (job type) given by an expression', () => {
    beforeAll(async () => {
      await deployXml(designer, [{
        name: 't_dyn.bpmn',
        xml: `<?xml version="1.0" encoding="UTF-8"?>
          <definitions xmlns="http://www.omg.org/spec/BPMN/20100524/MODEL" xmlns:camunda="http://camunda.org/schema/1.0/bpmn"
            xmlns:zeebe="http://camunda.org/schema/zeebe/1.0" id="d" targetNamespace="http://pgbpm.test">
            <process id="t_dyn" isExecutable="true">
              <startEvent id="s"/><sequenceFlow id="f1" sourceRef="s" targetRef="c7"/>
              <serviceTask id="c7" camunda:type="external" camunda:topic="\${kind}"/>
              <sequenceFlow id="f2" sourceRef="c7" targetRef="c8"/>
              <serviceTask id="c8"><extensionElements><zeebe:taskDefinition type="=&quot;t_dyn-&quot; + region"/></extensionElements></serviceTask>
              <sequenceFlow id="f3" sourceRef="c8" targetRef="each"/>
              <serviceTask id="each" camunda:type="external" camunda:topic="\${item}">
                <multiInstanceLoopCharacteristics camunda:collection="\${items}" camunda:elementVariable="item"/>
              </serviceTask>
              <sequenceFlow id="f4" sourceRef="each" targetRef="e"/><endEvent id="e"/>
            </process>
          </definitions>`,
      }]);
    });

    test('each task gets the topic its expression yields when it is created (camunda:topic, zeebe:taskDefinition type, per inner instance)', async () => {
      const inst = await start(admin, 't_dyn', { kind: 't_dyn-charge', region: 'eu', items: ['t_dyn-a', 't_dyn-b', 't_dyn-a'] });
      expect(await fetchAndLock(engine, '${kind}', 'w1')).toEqual([]);
      const [c7] = await fetchAndLock(engine, 't_dyn-charge', 'w1');
      expect(c7).toMatchObject({ instance_id: inst.id, element_id: 'c7', topic: 't_dyn-charge' });
      await completeExternal(engine, c7.id, 'w1');
      const [c8] = await fetchAndLock(engine, 't_dyn-eu', 'w1');
      expect(c8).toMatchObject({ instance_id: inst.id, element_id: 'c8', topic: 't_dyn-eu' });
      await completeExternal(engine, c8.id, 'w1', { region: 'us' });
      const a = await fetchAndLock(engine, 't_dyn-a', 'w1', 10);
      const b = await fetchAndLock(engine, 't_dyn-b', 'w1', 10);
      expect([a.length, b.length]).toEqual([2, 1]);
      for (const t of [...a, ...b]) await completeExternal(engine, t.id, 'w1');
      expect((await instance(db.root, inst.id)).state).toBe('completed');
    });

    test.each<[string, Variables, string, RegExp]>([
      ['a number', { kind: 42 }, 'BP303', /topic \(job type\) of element c7 is not a non-empty string of at most 1000 characters: 42/],
      ['an empty string', { kind: ' ' }, 'BP303', /element c7 is not a non-empty string/],
      ['null', { kind: null }, 'BP303', /element c7 is not a non-empty string .*: null/],
      ['a missing variable', {}, 'BP302', /kind/],
    ])('a topic expression yielding %s is refused, nothing changes', async (_what, variables, sqlstate, message) => {
      await expectRejectedUnchanged(db.root, () => start(admin, 't_dyn', { region: 'eu', items: [], ...variables }), sqlstate, message);
    });
  });

  test('the variables are those of the instance at fetch time', async () => {
    const topic = await topicModel('t_vars');
    const inst = await start(admin, topic, { a: 1 });
    await admin.query(`select bpm.set_variables($1, '{"a": 2, "b": 3}')`, [inst.id]);
    const [task] = await fetchAndLock(engine, topic, 'w1');
    expect(task?.variables).toEqual({ a: 2, b: 3 });
    await admin.query(`select bpm.set_variables($1, '{"a": 9}')`, [inst.id]);
    expect((await externalTaskOf(db.root, inst.id)).variables).toEqual({ a: 2, b: 3 });
  });

  test('a task at process level without input mappings has no local variables: the worker gets the instance\'s', async () => {
    const topic = await topicModel('t_no_locals');
    const inst = await start(admin, topic, { a: 1 });
    expect((await externalTaskOf(db.root, inst.id)).local_variables).toBeNull();
    const [task] = await fetchAndLock(engine, topic, 'w1');
    expect(task?.variables).toEqual({ a: 1 });
  });

  test('input mappings (camunda:inputOutput, zeebe:ioMapping) reach the worker on top of the instance variables, and stay local', async () => {
    await deployXml(designer, [{
      name: 't_inputs.bpmn',
      xml: `<?xml version="1.0" encoding="UTF-8"?>
        <definitions xmlns="http://www.omg.org/spec/BPMN/20100524/MODEL" xmlns:camunda="http://camunda.org/schema/1.0/bpmn"
          xmlns:zeebe="http://camunda.org/schema/zeebe/1.0" id="d_inputs" targetNamespace="t">
          <process id="t_inputs" isExecutable="true">
            <startEvent id="s"/><sequenceFlow id="f1" sourceRef="s" targetRef="charge"/>
            <serviceTask id="charge" camunda:type="external" camunda:topic="t_inputs">
              <extensionElements><camunda:inputOutput>
                <camunda:inputParameter name="amount">\${order.total * 2}</camunda:inputParameter>
                <camunda:inputParameter name="currency">EUR</camunda:inputParameter>
              </camunda:inputOutput></extensionElements>
            </serviceTask>
            <sequenceFlow id="f2" sourceRef="charge" targetRef="e"/><endEvent id="e"/>
          </process>
          <process id="t_inputs8" isExecutable="true">
            <startEvent id="s8"/><sequenceFlow id="g1" sourceRef="s8" targetRef="charge8"/>
            <serviceTask id="charge8">
              <extensionElements>
                <zeebe:taskDefinition type="t_inputs8"/>
                <zeebe:ioMapping><zeebe:input source="=order.total" target="amount"/></zeebe:ioMapping>
              </extensionElements>
            </serviceTask>
            <sequenceFlow id="g2" sourceRef="charge8" targetRef="e8"/><endEvent id="e8"/>
          </process>
        </definitions>`,
    }]);
    const { inst, task } = await startAndLock('t_inputs', 'w1', { order: { total: 21 }, currency: 'USD' });
    expect(task.variables).toEqual({ order: { total: 21 }, amount: 42, currency: 'EUR' });
    expect((await externalTaskOf(db.root, inst.id)).local_variables).toEqual({ amount: 42, currency: 'EUR' });
    await completeExternal(engine, task.id, 'w1', { receipt: 'r1' });
    // the inputs were the task's: the instance keeps its own currency and gets no amount
    expect((await instance(db.root, inst.id)).variables).toEqual({ order: { total: 21 }, currency: 'USD', receipt: 'r1' });
    const zeebe = await startAndLock('t_inputs8', 'w1', { order: { total: 5 } });
    expect(zeebe.task.variables).toEqual({ order: { total: 5 }, amount: 5 });
  });

  test('a locked task is not fetched again until its lock expires, then another worker gets it', async () => {
    const topic = await topicModel('t_lock');
    const inst = await start(admin, topic);
    // within one transaction now() stands still: the 50 ms lock cannot have expired
    await engine.query('begin');
    try {
      const [locked] = await fetchAndLock(engine, topic, 'w1', 1, '50 milliseconds');
      expect(locked?.instance_id).toBe(inst.id);
      expect(await fetchAndLock(engine, topic, 'w2', 10)).toEqual([]);
      expect(await fetchAndLock(engine, topic, 'w1', 10)).toEqual([]);
    } finally {
      await engine.query('commit');
    }
    await engine.query('select pg_sleep(0.06)');
    const [relocked] = await fetchAndLock(engine, topic, 'w2', 10);
    expect(relocked).toMatchObject({ instance_id: inst.id, worker_id: 'w2' });
    await expectRejectedUnchanged(
      db.root,
      () => completeExternal(engine, relocked?.id ?? '', 'w1'),
      'BP205',
      new RegExp(`external task ${relocked?.id} is not locked by worker w1 \\(locked by w2\\)`),
    );
  });

  test('tasks of a suspended instance are skipped until it is activated', async () => {
    const topic = await topicModel('t_suspended');
    const inst = await start(admin, topic);
    await admin.query('select bpm.suspend_process_instance($1)', [inst.id]);
    expect(await fetchAndLock(engine, topic, 'w1', 10)).toEqual([]);
    await admin.query('select bpm.activate_process_instance($1)', [inst.id]);
    expect((await fetchAndLock(engine, topic, 'w1', 10)).map((t) => t.instance_id)).toEqual([inst.id]);
  });

  test('a bpm_admin may fetch too', async () => {
    const topic = await topicModel('t_admin');
    const inst = await start(admin, topic);
    expect((await fetchAndLock(admin, topic, 'admin-worker')).map((t) => [t.instance_id, t.worker_id])).toEqual([[inst.id, 'admin-worker']]);
  });

  test.each<[string, number | null, string | null, string | null, RegExp]>([
    ['max_tasks 0', 0, 'w', '1 minute', /max_tasks must be between 1 and 1000, got 0/],
    ['max_tasks 1001', 1001, 'w', '1 minute', /max_tasks must be between 1 and 1000, got 1001/],
    ['max_tasks null', null, 'w', '1 minute', /max_tasks must be between 1 and 1000/],
    ['an empty worker_id', 1, '', '1 minute', /worker_id is required/],
    ['a null worker_id', 1, null, '1 minute', /worker_id is required/],
    ['a zero lock_duration', 1, 'w', '0 seconds', /lock_duration must be positive/],
    ['a negative lock_duration', 1, 'w', '-1 second', /lock_duration must be positive/],
  ])('%s: BP401, nothing is locked', async (_what, max, worker, lock, message) => {
    const topic = await topicModel(`t_args_${newId().slice(0, 8)}`);
    await start(admin, topic);
    await expectRejectedUnchanged(
      db.root,
      () => engine.query('select * from bpm.fetch_and_lock($1, $2, $3, $4::interval)', [topic, worker, max, lock]),
      'BP401',
      message,
    );
  });
});

describe('complete_external_task', () => {
  test('the worker holding the lock completes the task: variables merge, the instance continues to its end', async () => {
    const topic = await topicModel('t_complete');
    const { inst, task } = await startAndLock(topic, 'w1', { a: 1 });
    const done = await completeExternal(engine, task.id, 'w1', { result: 'ok' });
    expect(done).toMatchObject({ id: task.id, state: 'completed', locked_until: null, worker_id: 'w1' });
    expect(done.ended_at).toBeInstanceOf(Date);
    expect(await instance(db.root, inst.id)).toMatchObject({ state: 'completed', variables: { a: 1, result: 'ok' } });
    expect(await history(db.root, inst.id)).toEqual(['start:completed', 'work:completed', 'end:completed']);
  });

  test('completing twice: BP203 the second time', async () => {
    const topic = await topicModel('t_twice');
    const { task } = await startAndLock(topic, 'w1');
    await completeExternal(engine, task.id, 'w1');
    await expectRejectedUnchanged(
      db.root,
      () => completeExternal(engine, task.id, 'w1'),
      'BP203',
      new RegExp(`external task ${task.id} is completed and cannot complete it`),
    );
  });

  test('completing by another worker: BP205 naming both workers', async () => {
    const topic = await topicModel('t_wrong_worker');
    const { task } = await startAndLock(topic, 'w1');
    await expectRejectedUnchanged(
      db.root,
      () => completeExternal(engine, task.id, 'w2'),
      'BP205',
      new RegExp(`external task ${task.id} is not locked by worker w2 \\(locked by w1\\)`),
    );
  });

  test('completing a task nobody fetched: BP205', async () => {
    const topic = await topicModel('t_unlocked');
    const inst = await start(admin, topic);
    const task = await externalTaskOf(db.root, inst.id);
    await expectRejectedUnchanged(
      db.root,
      () => completeExternal(engine, task.id, 'w1'),
      'BP205',
      new RegExp(`external task ${task.id} is not locked by worker w1 \\(locked by nobody\\)`),
    );
  });

  test('completing a task of a cancelled instance: BP203', async () => {
    const topic = await topicModel('t_cancelled');
    const { inst, task } = await startAndLock(topic, 'w1');
    await admin.query('select bpm.cancel_process_instance($1)', [inst.id]);
    await expectRejectedUnchanged(
      db.root,
      () => completeExternal(engine, task.id, 'w1'),
      'BP203',
      new RegExp(`external task ${task.id} is cancelled and cannot complete it`),
    );
  });

  test('completing or throwing from a task of a suspended instance: BP202', async () => {
    const topic = await topicModel('t_suspend_complete');
    const { inst, task } = await startAndLock(topic, 'w1');
    await admin.query('select bpm.suspend_process_instance($1)', [inst.id]);
    await expectRejectedUnchanged(
      db.root,
      () => completeExternal(engine, task.id, 'w1'),
      'BP202',
      new RegExp(`process instance ${inst.id} is suspended: cannot complete external task ${task.id}`),
    );
    await expectRejectedUnchanged(
      db.root,
      () => throwError(engine, task.id, 'w1', 'ANY'),
      'BP202',
      new RegExp(`process instance ${inst.id} is suspended: cannot throw a BPMN error from external task ${task.id}`),
    );
    await admin.query('select bpm.activate_process_instance($1)', [inst.id]);
    expect((await completeExternal(engine, task.id, 'w1')).state).toBe('completed');
  });

  test('variables that are not an object: BP401', async () => {
    const topic = await topicModel('t_complete_args');
    const { task } = await startAndLock(topic, 'w1');
    await expectRejectedUnchanged(
      db.root,
      () => engine.query(`select bpm.complete_external_task($1, 'w1', '[1]'::jsonb)`, [task.id]),
      'BP401',
      /variables must be a JSON object, got array/,
    );
  });

  test('an unknown task: BP104 for complete, fail and throw', async () => {
    const id = newId();
    const notFound = new RegExp(`external task ${id} not found`);
    await expectRejectedUnchanged(db.root, () => completeExternal(engine, id, 'w1'), 'BP104', notFound);
    await expectRejectedUnchanged(db.root, () => failExternal(engine, id, 'w1', 'boom', 1), 'BP104', notFound);
    await expectRejectedUnchanged(db.root, () => throwError(engine, id, 'w1', 'E'), 'BP104', notFound);
  });

  test('a task of another tenant is not found (BP104)', async () => {
    const topic = await topicModel('t_foreign');
    const { task } = await startAndLock(topic, 'w1');
    const foreign = await db.connectAs({ role: 'bpm_engine', tenant: 'ext-other' });
    await expectRejectedUnchanged(db.root, () => completeExternal(foreign, task.id, 'w1'), 'BP104', new RegExp(`external task ${task.id} not found`));
  });
});

describe('complete_external_tasks (a worker\'s batch of results)', () => {
  interface Report {
    task_id: string;
    error_code: string | null;
    error_message: string | null;
  }
  const completeBatch = (client: pg.ClientBase, ids: string[], worker: string, variables: Variables[] | null = null): Promise<Report[]> =>
    all<Report>(client, 'select * from bpm.complete_external_tasks($1::uuid[], $2, $3::jsonb[])', [
      ids,
      worker,
      variables && variables.map((v) => JSON.stringify(v)),
    ]);

  test('completes every task in one call: each instance continues to its end with its own variables; reported in the order given', async () => {
    const topic = await topicModel('t_batch');
    const started = [await start(admin, topic, { n: 1 }), await start(admin, topic, { n: 2 }), await start(admin, topic, { n: 3 })];
    const locked = await fetchAndLock(engine, topic, 'w1', 3);
    expect(locked).toHaveLength(3);
    const ids = [...locked].reverse().map((t) => t.id);
    const reports = await completeBatch(engine, ids, 'w1', ids.map((id) => ({ doneBy: id })));
    expect(reports).toEqual(ids.map((id) => ({ task_id: id, error_code: null, error_message: null })));
    for (const inst of started) {
      const task = locked.find((t) => t.instance_id === inst.id) as ExternalTaskRow;
      expect(await instance(db.root, inst.id)).toMatchObject({ state: 'completed', variables: { n: inst.variables.n, doneBy: task.id } });
      expect(await history(db.root, inst.id)).toEqual(['start:completed', 'work:completed', 'end:completed']);
      expect(await externalTask(db.root, task.id)).toMatchObject({ state: 'completed', locked_until: null });
    }
    // without variables: none merged
    const inst = await start(admin, topic, { n: 4 });
    const [task] = await fetchAndLock(engine, topic, 'w1');
    expect(await completeBatch(engine, [task.id], 'w1')).toEqual([{ task_id: task.id, error_code: null, error_message: null }]);
    expect(await instance(db.root, inst.id)).toMatchObject({ state: 'completed', variables: { n: 4 } });
  });

  test('a completion the engine refuses is reported with its SQLSTATE and undone alone; the others commit', async () => {
    const topic = await topicModel('t_batch_mixed');
    const good1 = await startAndLock(topic, 'w1', { g: 1 });
    const twice = await startAndLock(topic, 'w1');
    await completeExternal(engine, twice.task.id, 'w1');
    const otherWorker = await startAndLock(topic, 'w2', { o: 1 });
    const badVariables = await startAndLock(topic, 'w1', { b: 1 });
    const good2 = await startAndLock(topic, 'w1', { g: 2 });
    const unknown = newId();
    const foreign = await db.connectAs({ role: 'bpm_engine', tenant: 'ext-other' });
    expect(await completeBatch(foreign, [good1.task.id], 'w1')).toEqual([
      { task_id: good1.task.id, error_code: 'BP104', error_message: `external task ${good1.task.id} not found` },
    ]);
    const untouched = async (): Promise<unknown[]> => [
      await externalTask(db.root, otherWorker.task.id),
      await instance(db.root, otherWorker.inst.id),
      await history(db.root, otherWorker.inst.id),
      await externalTask(db.root, badVariables.task.id),
      await instance(db.root, badVariables.inst.id),
      await history(db.root, badVariables.inst.id),
      await externalTask(db.root, twice.task.id),
    ];
    const before = await untouched();
    const ids = [good1.task.id, twice.task.id, otherWorker.task.id, unknown, badVariables.task.id, good2.task.id];
    const reports = await completeBatch(engine, ids, 'w1', [{ a: 1 }, {}, {}, {}, [1] as unknown as Variables, { a: 2 }]);
    expect(reports).toEqual([
      { task_id: good1.task.id, error_code: null, error_message: null },
      { task_id: twice.task.id, error_code: 'BP203', error_message: `external task ${twice.task.id} is completed and cannot complete it` },
      { task_id: otherWorker.task.id, error_code: 'BP205', error_message: `external task ${otherWorker.task.id} is not locked by worker w1 (locked by w2)` },
      { task_id: unknown, error_code: 'BP104', error_message: `external task ${unknown} not found` },
      { task_id: badVariables.task.id, error_code: 'BP401', error_message: 'invalid argument: variables must be a JSON object, got array' },
      { task_id: good2.task.id, error_code: null, error_message: null },
    ]);
    expect(await untouched()).toEqual(before);
    expect(await instance(db.root, good1.inst.id)).toMatchObject({ state: 'completed', variables: { g: 1, a: 1 } });
    expect(await instance(db.root, good2.inst.id)).toMatchObject({ state: 'completed', variables: { g: 2, a: 2 } });
  });

  test('the same task twice in one batch: the second is BP203', async () => {
    const topic = await topicModel('t_batch_dup');
    const { inst, task } = await startAndLock(topic, 'w1');
    expect(await completeBatch(engine, [task.id, task.id], 'w1')).toEqual([
      { task_id: task.id, error_code: null, error_message: null },
      { task_id: task.id, error_code: 'BP203', error_message: `external task ${task.id} is completed and cannot complete it` },
    ]);
    expect((await instance(db.root, inst.id)).state).toBe('completed');
  });

  test('no ids, more than 1000, a null id, or not one variables entry per id: BP401, nothing completed', async () => {
    const topic = await topicModel('t_batch_args');
    const { task } = await startAndLock(topic, 'w1');
    const many = Array.from({ length: 1001 }, () => task.id);
    await expectRejectedUnchanged(db.root, () => completeBatch(engine, [], 'w1'), 'BP401', /task_ids must hold 1 to 1000 task ids, got 0/);
    await expectRejectedUnchanged(db.root, () => engine.query(`select * from bpm.complete_external_tasks(null, 'w1')`), 'BP401', /got 0/);
    await expectRejectedUnchanged(db.root, () => completeBatch(engine, many, 'w1'), 'BP401', /task_ids must hold 1 to 1000 task ids, got 1001/);
    await expectRejectedUnchanged(
      db.root,
      () => engine.query(`select * from bpm.complete_external_tasks(array[$1::uuid, null], 'w1')`, [task.id]),
      'BP401',
      /task_ids holds a null id \(position 2\)/,
    );
    await expectRejectedUnchanged(
      db.root,
      () => completeBatch(engine, [task.id], 'w1', [{}, {}]),
      'BP401',
      /variables must hold one entry per task id \(1 ids, 2 entries\)/,
    );
    expect((await externalTask(db.root, task.id)).state).toBe('open');
  });
});

describe('fail_external_task', () => {
  test('with retries left: unlocked, not fetchable before retry_after, then fetchable again', async () => {
    const topic = await topicModel('t_backoff');
    const { inst, task } = await startAndLock(topic, 'w1');
    await engine.query('begin');
    try {
      const failed = await failExternal(engine, task.id, 'w1', 'service down', 2, '50 milliseconds');
      const { now } = await one<{ now: Date }>(engine, 'select now()');
      expect(failed).toMatchObject({ state: 'open', retries: 2, error_message: 'service down', worker_id: null, locked_until: null });
      expect(failed.available_at.getTime()).toBe(now.getTime() + 50);
      expect(await fetchAndLock(engine, topic, 'w2', 10)).toEqual([]);
    } finally {
      await engine.query('commit');
    }
    expect(await incidents(db.root, inst.id)).toEqual([]);
    await expectRejectedUnchanged(
      db.root,
      () => completeExternal(engine, task.id, 'w1'),
      'BP205',
      new RegExp(`external task ${task.id} is not locked by worker w1 \\(locked by nobody\\)`),
    );
    await engine.query('select pg_sleep(0.06)');
    const [again] = await fetchAndLock(engine, topic, 'w2', 10);
    expect(again).toMatchObject({ id: task.id, worker_id: 'w2', retries: 2, error_message: 'service down' });
  });

  test('error details (a stack trace) are kept on the task, cut at 64 KiB; the next failure replaces them', async () => {
    const topic = await topicModel('t_details');
    const { task } = await startAndLock(topic, 'w1');
    const details = 'Error: connect ECONNREFUSED\n    at TCPConnectWrap.afterConnect (node:net:1555:16)';
    const failed = await one<ExternalTaskRow & { error_details: string | null }>(engine,
      `select * from bpm.fail_external_task($1, 'w1', 'service down', 2, '0', $2)`, [task.id, details]);
    expect(failed).toMatchObject({ error_message: 'service down', error_details: details, retries: 2 });
    const [again] = await fetchAndLock(engine, topic, 'w1', 1);
    const long = 'x'.repeat(70_000);
    const cut = await one<{ error_details: string }>(engine, `select error_details from bpm.fail_external_task($1, 'w1', 'again', 1, '0', $2)`, [again.id, long]);
    expect(cut.error_details).toBe(`${'x'.repeat(65_536)}\n… (truncated: 70000 characters)`);
    const [third] = await fetchAndLock(engine, topic, 'w1', 1);
    expect((await failExternal(engine, third.id, 'w1', 'no details', 1)) as ExternalTaskRow & { error_details: string | null }).toMatchObject({ error_details: null });
  });

  test('a long back-off keeps the task out of fetches', async () => {
    const topic = await topicModel('t_backoff_long');
    const { task } = await startAndLock(topic, 'w1');
    await failExternal(engine, task.id, 'w1', 'later', 1, '1 hour');
    expect(await fetchAndLock(engine, topic, 'w1', 10)).toEqual([]);
    expect((await externalTask(db.root, task.id)).retries).toBe(1);
  });

  test('with no retries left: an incident failedExternalTask, the task is not fetchable; retry_incident resolves it', async () => {
    const topic = await topicModel('t_incident');
    const { inst, task } = await startAndLock(topic, 'w1');
    const failed = await failExternal(engine, task.id, 'w1', 'gave up', 0);
    expect(failed).toMatchObject({ state: 'open', retries: 0, worker_id: null, error_message: 'gave up' });
    const [incident] = await incidents(db.root, inst.id);
    expect(incident).toMatchObject({
      instance_id: inst.id,
      element_id: 'work',
      incident_type: 'failedExternalTask',
      message: 'gave up',
      external_task_id: task.id,
      resolved_at: null,
    });
    expect(await fetchAndLock(engine, topic, 'w1', 10)).toEqual([]);
    expect((await instance(db.root, inst.id)).state).toBe('active');

    const resolved = await retryIncident(engine, incident?.id ?? '', 3);
    expect(resolved.id).toBe(incident?.id);
    expect(resolved.resolved_at).toBeInstanceOf(Date);
    expect((await externalTask(db.root, task.id)).retries).toBe(3);
    const [again] = await fetchAndLock(engine, topic, 'w2', 10);
    expect(again).toMatchObject({ id: task.id, worker_id: 'w2', retries: 3 });

    await expectRejectedUnchanged(
      db.root,
      () => retryIncident(engine, incident?.id ?? ''),
      'BP206',
      new RegExp(`incident ${incident?.id} is already resolved`),
    );
  });

  test('failing a task locked by another worker: BP205; a completed task: BP203', async () => {
    const topic = await topicModel('t_fail_checks');
    const { task } = await startAndLock(topic, 'w1');
    await expectRejectedUnchanged(
      db.root,
      () => failExternal(engine, task.id, 'w2', 'x', 1),
      'BP205',
      new RegExp(`external task ${task.id} is not locked by worker w2 \\(locked by w1\\)`),
    );
    await completeExternal(engine, task.id, 'w1');
    await expectRejectedUnchanged(
      db.root,
      () => failExternal(engine, task.id, 'w1', 'x', 1),
      'BP203',
      new RegExp(`external task ${task.id} is completed and cannot fail it`),
    );
  });

  test.each<[string, number | null, string | null, RegExp]>([
    ['negative retries', -1, '0', /retries must be 0 or more, got -1/],
    ['null retries', null, '0', /retries must be 0 or more/],
    ['a negative retry_after', 1, '-1 second', /retry_after must not be negative/],
  ])('%s: BP401, the task stays locked', async (_what, retries, after, message) => {
    const topic = await topicModel(`t_fail_args_${newId().slice(0, 8)}`);
    const { task } = await startAndLock(topic, 'w1');
    await expectRejectedUnchanged(
      db.root,
      () => engine.query(`select bpm.fail_external_task($1, 'w1', 'x', $2, $3::interval)`, [task.id, retries, after]),
      'BP401',
      message,
    );
  });
});

describe('retry_incident', () => {
  test('an unknown incident: BP105', async () => {
    const id = newId();
    await expectRejectedUnchanged(db.root, () => retryIncident(engine, id), 'BP105', new RegExp(`incident ${id} not found`));
  });

  test('retries below 1: BP401, the incident stays open', async () => {
    const topic = await topicModel('t_retry_args');
    const { inst, task } = await startAndLock(topic, 'w1');
    await failExternal(engine, task.id, 'w1', 'x', 0);
    const [incident] = await incidents(db.root, inst.id);
    await expectRejectedUnchanged(db.root, () => retryIncident(engine, incident?.id ?? '', 0), 'BP401', /retries must be at least 1, got 0/);
  });

  test('cancelling the instance resolves its open incident, so it cannot be retried (BP206)', async () => {
    const topic = await topicModel('t_retry_cancelled');
    const { inst, task } = await startAndLock(topic, 'w1');
    await failExternal(engine, task.id, 'w1', 'x', 0);
    await admin.query('select bpm.cancel_process_instance($1)', [inst.id]);
    const [incident] = await incidents(db.root, inst.id);
    expect(incident?.resolved_at).toBeInstanceOf(Date);
    await expectRejectedUnchanged(db.root, () => retryIncident(admin, incident?.id ?? ''), 'BP206', new RegExp(`incident ${incident?.id} is already resolved`));
  });
});

describe('throw_bpmn_error', () => {
  const E_X = { E_X: 'X' };
  const boundaryModel = (key: string, catchAll: boolean): string =>
    bpmnWithErrors(
      key,
      E_X,
      `<startEvent id="start"/><sequenceFlow id="f1" sourceRef="start" targetRef="work"/>
       <serviceTask id="work" camunda:type="external" camunda:topic="${key}"/>
       <sequenceFlow id="f2" sourceRef="work" targetRef="end"/><endEvent id="end"/>
       <boundaryEvent id="onX" attachedToRef="work"><errorEventDefinition errorRef="E_X"/></boundaryEvent>
       <sequenceFlow id="fx" sourceRef="onX" targetRef="handleX"/>
       <userTask id="handleX"/><sequenceFlow id="fx2" sourceRef="handleX" targetRef="endX"/><endEvent id="endX"/>
       ${
         catchAll
           ? `<boundaryEvent id="onAny" attachedToRef="work"><errorEventDefinition/></boundaryEvent>
              <sequenceFlow id="fa" sourceRef="onAny" targetRef="handleAny"/>
              <userTask id="handleAny"/><sequenceFlow id="fa2" sourceRef="handleAny" targetRef="endAny"/><endEvent id="endAny"/>`
           : ''
       }`,
    );

  test('a matching (catch-all) error boundary interrupts the task and its path is taken', async () => {
    const { inst, task } = await startAndLock('external', 'w1', { a: 1 }, 'work');
    const thrown = await throwError(engine, task.id, 'w1', 'PAYMENT_DECLINED', { reason: 'card' });
    expect(thrown).toMatchObject({ id: task.id, state: 'cancelled', locked_until: null, error_message: 'BPMN error PAYMENT_DECLINED' });
    expect(thrown.ended_at).toBeInstanceOf(Date);
    expect(await history(db.root, inst.id)).toEqual(['start:completed', 'work:cancelled', 'err:completed', 'handle:active']);
    expect(await instance(db.root, inst.id)).toMatchObject({ state: 'active', variables: { a: 1, reason: 'card' } });
    expect((await openUserTask(db.root, inst.id)).element_id).toBe('handle');
    expect(await incidents(db.root, inst.id)).toEqual([]);
  });

  test('the boundary catching the exact code wins over a catch-all; other codes go to the catch-all', async () => {
    await deployXml(designer, [{ name: 'both.bpmn', xml: boundaryModel('t_both', true) }]);
    const exact = await startAndLock('t_both', 'w1');
    await throwError(engine, exact.task.id, 'w1', 'X');
    expect(await history(db.root, exact.inst.id)).toEqual(['start:completed', 'work:cancelled', 'onX:completed', 'handleX:active']);
    const other = await startAndLock('t_both', 'w1');
    await throwError(engine, other.task.id, 'w1', 'Z');
    expect(await history(db.root, other.inst.id)).toEqual(['start:completed', 'work:cancelled', 'onAny:completed', 'handleAny:active']);
  });

  test('a code no boundary catches: incident unhandledBpmnError, the task stays open without retries until retry_incident', async () => {
    await deployXml(designer, [{ name: 'only-x.bpmn', xml: boundaryModel('t_only_x', false) }]);
    const { inst, task } = await startAndLock('t_only_x', 'w1');
    const thrown = await throwError(engine, task.id, 'w1', 'Y', { ignored: true });
    expect(thrown).toMatchObject({ state: 'open', retries: 0, worker_id: null, locked_until: null, error_message: 'BPMN error Y is not caught' });
    const [incident] = await incidents(db.root, inst.id);
    expect(incident).toMatchObject({ incident_type: 'unhandledBpmnError', element_id: 'work', external_task_id: task.id, resolved_at: null });
    expect(incident?.message).toMatch(/BPMN error Y thrown by element work is not caught by any error boundary event/);
    expect(await instance(db.root, inst.id)).toMatchObject({ state: 'active', variables: {} });
    expect(await history(db.root, inst.id)).toEqual(['start:completed', 'work:active']);
    expect(await fetchAndLock(engine, 't_only_x', 'w2', 10)).toEqual([]);

    await retryIncident(engine, incident?.id ?? '');
    const [again] = await fetchAndLock(engine, 't_only_x', 'w2', 10);
    expect(again).toMatchObject({ id: task.id, worker_id: 'w2', retries: 1 });
    await throwError(engine, task.id, 'w2', 'X');
    expect(await history(db.root, inst.id)).toEqual(['start:completed', 'work:cancelled', 'onX:completed', 'handleX:active']);
  });

  test('throwing by a worker that does not hold the lock: BP205; from a completed task: BP203', async () => {
    const topic = await topicModel('t_throw_checks');
    const { task } = await startAndLock(topic, 'w1');
    await expectRejectedUnchanged(
      db.root,
      () => throwError(engine, task.id, 'w2', 'E'),
      'BP205',
      new RegExp(`external task ${task.id} is not locked by worker w2 \\(locked by w1\\)`),
    );
    await completeExternal(engine, task.id, 'w1');
    await expectRejectedUnchanged(
      db.root,
      () => throwError(engine, task.id, 'w1', 'E'),
      'BP203',
      new RegExp(`external task ${task.id} is completed and cannot throw an error from it`),
    );
  });

  test('variables that are not an object: BP401', async () => {
    const topic = await topicModel('t_throw_args');
    const { task } = await startAndLock(topic, 'w1');
    await expectRejectedUnchanged(
      db.root,
      () => engine.query(`select bpm.throw_bpmn_error($1, 'w1', 'E', '"x"'::jsonb)`, [task.id]),
      'BP401',
      /variables must be a JSON object, got string/,
    );
  });
});

describe('camunda:errorEventDefinition (error events evaluated when a worker reports)', () => {
  const MODEL = `<?xml version="1.0" encoding="UTF-8"?>
<definitions xmlns="http://www.omg.org/spec/BPMN/20100524/MODEL" xmlns:camunda="http://camunda.org/schema/1.0/bpmn" id="d" targetNamespace="http://pgbpm.test">
  <error id="Rejected" name="Rejected" errorCode="REJECTED"/>
  <error id="Timeout" name="Timeout" errorCode="TIMEOUT"/>
  <process id="t_eed" isExecutable="true">
    <startEvent id="s"/><sequenceFlow id="f1" sourceRef="s" targetRef="work"/>
    <serviceTask id="work" camunda:type="external" camunda:topic="t_eed">
      <extensionElements>
        <camunda:errorEventDefinition id="onReject" errorRef="Rejected" expression="\${status == 'rejected'}"/>
        <camunda:errorEventDefinition id="onTimeout" errorRef="Timeout" expression="\${externalTask.getErrorMessage() == 'timeout' &amp;&amp; externalTask.getWorkerId() == 'w1'}"/>
        <camunda:errorEventDefinition id="onQuota" errorRef="Rejected" expression="\${externalTask.getErrorDetails() == 'quota exceeded'}"/>
      </extensionElements>
    </serviceTask>
    <sequenceFlow id="f2" sourceRef="work" targetRef="done"/><endEvent id="done"/>
    <boundaryEvent id="rejected" attachedToRef="work"><errorEventDefinition errorRef="Rejected" camunda:errorCodeVariable="code"/></boundaryEvent>
    <sequenceFlow id="f3" sourceRef="rejected" targetRef="review"/><userTask id="review"/>
    <sequenceFlow id="f4" sourceRef="review" targetRef="end2"/><endEvent id="end2"/>
  </process>
</definitions>`;

  beforeAll(async () => {
    await deployXml(designer, [{ name: 't_eed.bpmn', xml: MODEL }]);
  });

  test('a completion whose variables make a definition hold throws its error at the task instead (caught by the boundary event)', async () => {
    const { inst, task } = await startAndLock('t_eed', 'w1', { status: 'new' });
    const done = await completeExternal(engine, task.id, 'w1', { status: 'rejected', reason: 'no stock' });
    expect(done).toMatchObject({ id: task.id, state: 'cancelled' });
    expect(await history(db.root, inst.id)).toEqual(['s:completed', 'work:cancelled', 'rejected:completed', 'review:active']);
    // the worker's variables are set, as with throw_bpmn_error; the boundary stores the code
    expect((await instance(db.root, inst.id)).variables).toMatchObject({ status: 'rejected', reason: 'no stock', code: 'REJECTED' });
  });

  test('a completion that makes none hold completes the task', async () => {
    const { inst, task } = await startAndLock('t_eed', 'w1', { status: 'new' });
    expect(await completeExternal(engine, task.id, 'w1', { status: 'shipped' })).toMatchObject({ state: 'completed' });
    expect(await history(db.root, inst.id)).toEqual(['s:completed', 'work:completed', 'done:completed']);
  });

  test('a failure whose message makes a definition hold throws its error instead; uncaught, it is an incident', async () => {
    const { inst, task } = await startAndLock('t_eed', 'w1', { status: 'new' });
    await failExternal(engine, task.id, 'w1', 'timeout', 3);
    const [incident] = await incidents(db.root, inst.id);
    expect(incident).toMatchObject({ incident_type: 'unhandledBpmnError', element_id: 'work' });
    expect(incident.message).toMatch(/BPMN error TIMEOUT: timeout/);
    // (as for an uncaught throw_bpmn_error: the task waits with no retries left until the incident is retried)
    expect(await externalTaskOf(db.root, inst.id)).toMatchObject({ state: 'open', retries: 0, error_message: 'BPMN error TIMEOUT: timeout is not caught' });
  });

  test('a failure whose details make a definition hold (externalTask.getErrorDetails()) throws its error, caught by the boundary', async () => {
    const { inst, task } = await startAndLock('t_eed', 'w1', { status: 'new' });
    const failed = await one<ExternalTaskRow>(engine, `select * from bpm.fail_external_task($1, 'w1', 'refused', 3, '0', 'quota exceeded')`, [task.id]);
    expect(failed).toMatchObject({ id: task.id, state: 'cancelled' });
    expect(await history(db.root, inst.id)).toEqual(['s:completed', 'work:cancelled', 'rejected:completed', 'review:active']);
    expect((await instance(db.root, inst.id)).variables).toMatchObject({ code: 'REJECTED' });
  });

  test('a failure is recorded as a failure when no definition holds, or one cannot be evaluated', async () => {
    // another message: no definition holds
    const first = await startAndLock('t_eed', 'w1', { status: 'new' });
    expect(await failExternal(engine, first.task.id, 'w1', 'disk full', 2, '1 hour')).toMatchObject({ retries: 2, error_message: 'disk full', worker_id: null });
    expect(await incidents(db.root, first.inst.id)).toEqual([]);
    // no status variable at all: ${status == 'rejected'} cannot be evaluated; the failure is still recorded
    const second = await startAndLock('t_eed', 'w1');
    expect(await failExternal(engine, second.task.id, 'w1', 'disk full', 0)).toMatchObject({ retries: 0 });
    expect((await incidents(db.root, second.inst.id)).map((i) => i.incident_type)).toEqual(['failedExternalTask']);
  });

  test('a completion whose definition cannot be evaluated is refused and changes nothing', async () => {
    const { task } = await startAndLock('t_eed', 'w1');
    await expectRejectedUnchanged(db.root, () => completeExternal(engine, task.id, 'w1', { other: 1 }), 'BP302', /unknown variable "status" in expression \$\{status == 'rejected'\} of element work/);
  });

  test('a report by another worker is refused as before, whatever the definitions say', async () => {
    const { task } = await startAndLock('t_eed', 'w1', { status: 'new' });
    await expectRejectedUnchanged(db.root, () => completeExternal(engine, task.id, 'w2', { status: 'rejected' }), 'BP205');
    await expectRejectedUnchanged(db.root, () => failExternal(engine, task.id, 'w2', 'timeout', 1), 'BP205');
  });
});

describe('roles', () => {
  const calls: Array<[string, (c: pg.ClientBase, taskId: string) => Promise<unknown>, RegExp]> = [
    ['fetch_and_lock', (c) => fetchAndLock(c, 't_roles', 'w1'), /permission denied for function fetch_and_lock/],
    ['complete_external_task', (c, id) => completeExternal(c, id, 'w1'), /permission denied for function complete_external_task/],
    ['fail_external_task', (c, id) => failExternal(c, id, 'w1', 'x', 0), /permission denied for function fail_external_task/],
    ['throw_bpmn_error', (c, id) => throwError(c, id, 'w1', 'E'), /permission denied for function throw_bpmn_error/],
    ['retry_incident', (c) => retryIncident(c, newId()), /permission denied for function retry_incident/],
  ];

  let taskId: string;
  beforeAll(async () => {
    await topicModel('t_roles');
    taskId = (await startAndLock('t_roles', 'w1')).task.id;
  });

  for (const role of ['bpm_user', 'bpm_designer'] as const) {
    test.each(calls)(`${role} has no execute grant on %s (42501)`, async (_name, call, message) => {
      const client = await db.connectAs({ role, tenant: TENANT, user: 'u' });
      await expectRejectedUnchanged(db.root, () => call(client, taskId), '42501', message);
    });
  }
});
