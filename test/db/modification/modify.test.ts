/**
 * modify_process_instance (admin): start a token before or after an
 * element, cancel an activity instance; instructions apply in order in one
 * transaction.
 */
import type pg from 'pg';
import { createTestDb, type TestDb } from '../../helpers/db';
import { deployProcess, expectRejectedUnchanged } from '../../helpers/engine';
import {
  activities,
  all,
  externalTaskOf,
  history,
  incidents,
  instance,
  job,
  modify,
  newId,
  parallelModel,
  re,
  start,
  subscriptions,
  timerBoundary,
  tokens,
  userTasks,
  type UserTaskRow,
} from './support';

const T = 'mod-t';

let db: TestDb;
let admin: pg.Client;

beforeAll(async () => {
  db = await createTestDb();
  const designer = await db.connectAs({ role: 'bpm_designer', tenant: T });
  admin = await db.connectAs({ role: 'bpm_admin', tenant: T, user: 'boss' });
  // start → fork → (a | b with a PT1H timer boundary | external w) → join → end
  await deployProcess(designer, 'par', parallelModel({ a: 'a', b: 'b', w: 'w' }, 'mod-work', timerBoundary('late', 'b', 'fl')));
  // start → one → two → end
  await deployProcess(
    designer,
    'line',
    `<startEvent id="start"/><sequenceFlow id="f1" sourceRef="start" targetRef="one"/><userTask id="one"/>
     <sequenceFlow id="f2" sourceRef="one" targetRef="two"/><userTask id="two"/>
     <sequenceFlow id="f3" sourceRef="two" targetRef="end"/><endEvent id="end"/>`,
  );
  // start → sub { s1 → fork → (x | y) → join → e1 } → after → end
  await deployProcess(
    designer,
    'nested',
    `<startEvent id="start"/><sequenceFlow id="f1" sourceRef="start" targetRef="sub"/>
     <subProcess id="sub">
       <startEvent id="s1"/><sequenceFlow id="g1" sourceRef="s1" targetRef="fork"/><parallelGateway id="fork"/>
       <sequenceFlow id="g2" sourceRef="fork" targetRef="x"/><sequenceFlow id="g3" sourceRef="fork" targetRef="y"/>
       <userTask id="x"/><userTask id="y"/>
       <sequenceFlow id="g4" sourceRef="x" targetRef="join"/><sequenceFlow id="g5" sourceRef="y" targetRef="join"/>
       <parallelGateway id="join"/><sequenceFlow id="g6" sourceRef="join" targetRef="e1"/><endEvent id="e1"/>
     </subProcess>
     <sequenceFlow id="f2" sourceRef="sub" targetRef="after"/><userTask id="after"/>
     <sequenceFlow id="f3" sourceRef="after" targetRef="end"/><endEvent id="end"/>`,
  );
});
afterAll(() => db.close());

const open = async (instanceId: string): Promise<UserTaskRow[]> => (await userTasks(db.root, instanceId)).filter((t) => t.state === 'open');
const activityOf = async (instanceId: string, elementId: string): Promise<string> => {
  const row = (await activities(db.root, instanceId)).find((a) => a.element_id === elementId && a.state === 'active');
  if (!row) throw new Error(`no active ${elementId}`);
  return row.id;
};

describe('startBefore, startAfter and cancel on parallel tasks', () => {
  test('startBefore a task adds a second token there (with variables); the engine runs from it like a token over a flow', async () => {
    const inst = await start(admin, 'par', { owner: 'ann' });
    const result = await modify(admin, inst.id, [{ startBefore: 'a', variables: { extra: 1 } }]);
    expect(result).toMatchObject({ state: 'active', variables: { owner: 'ann', extra: 1 } });
    const tasks = await open(inst.id);
    expect(tasks.map((t) => [t.element_id, t.assignee]).sort()).toEqual([
      ['a', 'ann'],
      ['a', 'ann'],
      ['b', null],
    ]);
    const kinds = await all<{ kind: string; element_id: string }>(
      db.root,
      `select kind, element_id from bpm.event where instance_id = $1 and id > (select max(id) from bpm.event where instance_id = $1 and kind = 'externalTaskCreated') order by id`,
      [inst.id],
    );
    expect(kinds).toEqual([
      { kind: 'activityStarted', element_id: 'a' },
      { kind: 'taskCreated', element_id: 'a' },
    ]);
  });

  test('startAfter a task sends a token over its outgoing flows (to the join)', async () => {
    const inst = await start(admin, 'par', { owner: 'ben' });
    await modify(admin, inst.id, [{ startAfter: 'a' }]);
    expect(await tokens(db.root, inst.id)).toEqual(['join:join']);
  });

  test('cancel one parallel task: it ends cancelled; startAfter it lets the join fire once the others complete', async () => {
    const inst = await start(admin, 'par', { owner: 'cid' });
    const a = await activityOf(inst.id, 'a');
    await modify(admin, inst.id, [{ cancel: a }, { startAfter: 'a' }]);
    expect((await userTasks(db.root, inst.id)).find((t) => t.id === a)).toMatchObject({ state: 'cancelled' });
    expect(await history(db.root, inst.id)).toContain('a:cancelled');
    expect(await tokens(db.root, inst.id)).toEqual(['join:join']);
    const b = (await open(inst.id)).find((t) => t.element_id === 'b');
    await admin.query('select bpm.complete_task($1)', [b?.id]);
    const w = await externalTaskOf(db.root, inst.id);
    await modify(admin, inst.id, [{ cancel: w.id }, { startAfter: 'w' }]);
    expect(await instance(db.root, inst.id)).toMatchObject({ state: 'completed' });
    expect(await externalTaskOf(db.root, inst.id)).toMatchObject({ state: 'cancelled' });
    expect(await history(db.root, inst.id)).toEqual(expect.arrayContaining(['join:completed', 'end:completed']));
  });

  test('cancelling a host removes its timer boundary subscription and job', async () => {
    const inst = await start(admin, 'par', { owner: 'dan' });
    const [timer] = await subscriptions(db.root, inst.id);
    expect(timer).toMatchObject({ kind: 'timer', element_id: 'late' });
    expect(await job(db.root, `bpm-timer:${timer?.id}`)).not.toBeNull();
    await modify(admin, inst.id, [{ cancel: await activityOf(inst.id, 'b') }]);
    expect(await subscriptions(db.root, inst.id)).toEqual([]);
    expect(await job(db.root, `bpm-timer:${timer?.id}`)).toBeNull();
    const events = await all<{ kind: string }>(db.root, `select kind from bpm.event where instance_id = $1 and element_id = 'b' order by id`, [inst.id]);
    expect(events.map((e) => e.kind)).toEqual(['activityStarted', 'taskCreated', 'taskCancelled', 'activityCancelled']);
  });

  test('cancelling a failed external task resolves its incident', async () => {
    const inst = await start(admin, 'par', { owner: 'eve' });
    const engine = await db.connectAs({ role: 'bpm_engine', tenant: T });
    const w = await externalTaskOf(db.root, inst.id);
    await engine.query(`select bpm.fetch_and_lock('mod-work', 'w1', 1000)`);
    await engine.query(`select bpm.fail_external_task($1, 'w1', 'down', 0)`, [w.id]);
    await modify(admin, inst.id, [{ cancel: w.id }]);
    expect((await incidents(db.root, inst.id)).map((i) => i.resolved_at instanceof Date)).toEqual([true]);
  });
});

describe('completion', () => {
  test('cancelling the last activity completes the instance', async () => {
    const inst = await start(admin, 'line');
    const one = (await open(inst.id))[0];
    const result = await modify(admin, inst.id, [{ cancel: one?.id ?? '' }]);
    expect(result).toMatchObject({ state: 'completed' });
    expect(result.ended_at).toBeInstanceOf(Date);
    const kinds = (await all<{ kind: string }>(db.root, `select kind from bpm.event where instance_id = $1 order by id`, [inst.id])).map((e) => e.kind);
    expect(kinds.slice(-3)).toEqual(['taskCancelled', 'activityCancelled', 'instanceCompleted']);
  });

  test('instructions apply in order: cancel the only task, then start before the next one: the instance goes on', async () => {
    const inst = await start(admin, 'line');
    const one = (await open(inst.id))[0];
    const result = await modify(admin, inst.id, [{ cancel: one?.id ?? '' }, { startBefore: 'two' }]);
    expect(result.state).toBe('active');
    expect((await open(inst.id)).map((t) => t.element_id)).toEqual(['two']);
  });

  test('startAfter the last task runs to the end event and completes the instance (the task stays open until cancelled)', async () => {
    const inst = await start(admin, 'line');
    const one = (await open(inst.id))[0];
    const result = await modify(admin, inst.id, [{ cancel: one?.id ?? '' }, { startAfter: 'two' }]);
    expect(result.state).toBe('completed');
    expect(await history(db.root, inst.id)).toEqual(['start:completed', 'one:cancelled', 'end:completed']);
  });
});

describe('inside subprocesses', () => {
  const scopeOf = async (taskId: string): Promise<string | null> =>
    (await db.root.query<{ scope_id: string | null }>('select scope_id from bpm.activity_instance where id = $1', [taskId])).rows[0].scope_id;

  test('startBefore an element of an active subprocess instance starts it in that instance', async () => {
    const inst = await start(admin, 'nested');
    const sub = await activityOf(inst.id, 'sub');
    await modify(admin, inst.id, [{ startBefore: 'x' }]);
    const xs = (await open(inst.id)).filter((t) => t.element_id === 'x');
    expect(xs).toHaveLength(2);
    for (const t of xs) expect(await scopeOf(t.id)).toBe(sub);
  });

  test('with no active instance, startBefore opens a new subprocess instance; when it ends the token leaves the subprocess', async () => {
    const inst = await start(admin, 'nested');
    const first = await activityOf(inst.id, 'sub');
    // cancel the subprocess instance: the process waits nowhere... so start inside it again in the same call
    await modify(admin, inst.id, [{ cancel: first }, { startBefore: 'y' }]);
    const [y] = (await open(inst.id)).filter((t) => t.element_id === 'y');
    const second = await activityOf(inst.id, 'sub');
    expect(second).not.toBe(first);
    expect(await scopeOf(y.id)).toBe(second);
    expect((await open(inst.id)).map((t) => t.element_id)).toEqual(['y']);
    // the join inside waits for x too: start after x, then y completes the join
    await modify(admin, inst.id, [{ startAfter: 'x' }]);
    await admin.query('select bpm.complete_task($1)', [y.id]);
    expect((await open(inst.id)).map((t) => t.element_id)).toEqual(['after']);
  });

  test('two active instances and no "scope": BP414; naming one with "scope" starts there', async () => {
    const inst = await start(admin, 'nested');
    const first = await activityOf(inst.id, 'sub');
    await modify(admin, inst.id, [{ startBefore: 'sub' }]);
    await expectRejectedUnchanged(db.root, () => modify(admin, inst.id, [{ startBefore: 'x' }]), 'BP414', /subprocess sub has 2 active instances/);
    await modify(admin, inst.id, [{ startBefore: 'x', scope: first }]);
    const firstTasks = [];
    for (const t of await open(inst.id)) if ((await scopeOf(t.id)) === first) firstTasks.push(t.element_id);
    expect(firstTasks.sort()).toEqual(['x', 'x', 'y']);
    await expectRejectedUnchanged(db.root, () => modify(admin, inst.id, [{ startBefore: 'x', scope: inst.id }]), 'BP111');
  });

  test('cancelling a subprocess instance cancels everything in it; cancelling its last task cancels it too', async () => {
    const inst = await start(admin, 'nested');
    await modify(admin, inst.id, [{ cancel: await activityOf(inst.id, 'sub') }]);
    expect(await open(inst.id)).toEqual([]);
    expect((await db.root.query('select state from bpm.process_instance where id = $1', [inst.id])).rows[0].state).toBe('completed');

    const other = await start(admin, 'nested');
    const sub = await activityOf(other.id, 'sub');
    await modify(admin, other.id, [{ cancel: await activityOf(other.id, 'x') }, { cancel: await activityOf(other.id, 'y') }]);
    const { rows } = await db.root.query('select state from bpm.activity_instance where id = $1', [sub]);
    expect(rows[0].state).toBe('cancelled');
    expect(await open(other.id)).toEqual([]);
  });
});

describe('refusals leave everything as it was', () => {
  test('unknown element: BP112; boundary event: BP414; joining gateway for startBefore: BP414', async () => {
    const inst = await start(admin, 'par', { owner: 'fay' });
    await expectRejectedUnchanged(db.root, () => modify(admin, inst.id, [{ startBefore: 'nope' }]), 'BP112', /element nope is not in the process graph/);
    await expectRejectedUnchanged(db.root, () => modify(admin, inst.id, [{ startBefore: 'late' }]), 'BP414', /late is a boundary event/);
    await expectRejectedUnchanged(db.root, () => modify(admin, inst.id, [{ startAfter: 'late' }]), 'BP414');
    await expectRejectedUnchanged(db.root, () => modify(admin, inst.id, [{ startBefore: 'join' }]), 'BP414', /joining gateway/);
  });

  test('a later instruction failing rolls back the earlier ones', async () => {
    const inst = await start(admin, 'par', { owner: 'gus' });
    await expectRejectedUnchanged(
      db.root,
      () => modify(admin, inst.id, [{ cancel: inst.id }, { startBefore: 'a' }]),
      'BP111',
    );
    const a = await activityOf(inst.id, 'a');
    await expectRejectedUnchanged(db.root, () => modify(admin, inst.id, [{ cancel: a }, { startBefore: 'nope' }]), 'BP112');
    await expectRejectedUnchanged(db.root, () => modify(admin, inst.id, [{ cancel: a }, { cancel: a }]), 'BP221', new RegExp(`activity instance ${re(a)} \\(element a\\) is cancelled`));
  });

  test('activity instance of another instance, unknown or not active: BP111 / BP221', async () => {
    const inst = await start(admin, 'line');
    const other = await start(admin, 'line');
    const theirs = (await open(other.id))[0]?.id ?? '';
    await expectRejectedUnchanged(db.root, () => modify(admin, inst.id, [{ cancel: theirs }]), 'BP111', new RegExp(`activity instance ${re(theirs)} not found in process instance ${re(inst.id)}`));
    await expectRejectedUnchanged(db.root, () => modify(admin, inst.id, [{ cancel: newId() }]), 'BP111');
    const startRow = (await activities(db.root, inst.id)).find((r) => r.element_id === 'start');
    await expectRejectedUnchanged(db.root, () => modify(admin, inst.id, [{ cancel: startRow?.id ?? '' }]), 'BP221', /is completed and cannot be cancelled/);
  });

  test('malformed instructions: BP413', async () => {
    const inst = await start(admin, 'line');
    for (const bad of [[], {}, [{}], [{ startBefore: 'one', cancel: newId() }], [{ cancel: 'x' }], [{ startBefore: 1 }], [{ startBefore: 'one', variables: [] }], [{ cancel: newId(), variables: {} }], [{ jump: 'one' }]]) {
      await expectRejectedUnchanged(db.root, () => modify(admin, inst.id, bad), 'BP413');
    }
  });

  test('ended, suspended, unknown or foreign instances: BP201, BP202, BP102', async () => {
    const inst = await start(admin, 'line');
    await admin.query('select bpm.suspend_process_instance($1)', [inst.id]);
    await expectRejectedUnchanged(db.root, () => modify(admin, inst.id, [{ startBefore: 'one' }]), 'BP202');
    await admin.query('select bpm.cancel_process_instance($1)', [inst.id]);
    await expectRejectedUnchanged(db.root, () => modify(admin, inst.id, [{ startBefore: 'one' }]), 'BP201');
    await expectRejectedUnchanged(db.root, () => modify(admin, newId(), [{ startBefore: 'one' }]), 'BP102');
    const live = await start(admin, 'line');
    const foreign = await db.connectAs({ role: 'bpm_admin', tenant: 'mod-other' });
    await expectRejectedUnchanged(db.root, () => modify(foreign, live.id, [{ startBefore: 'one' }]), 'BP102', new RegExp(`process instance ${re(live.id)} not found`));
  });

  test('bpm_user and bpm_designer have no execute grant (42501)', async () => {
    const inst = await start(admin, 'line');
    for (const role of ['bpm_user', 'bpm_designer'] as const) {
      const client = await db.connectAs({ role, tenant: T, user: 'u' });
      await expectRejectedUnchanged(db.root, () => modify(client, inst.id, [{ startBefore: 'one' }]), '42501', /permission denied for function modify_process_instance/);
    }
  });
});
