/**
 * migrate_process_instances (admin): running instances move to another
 * version of their process with an element mapping; all or none.
 */
import type pg from 'pg';
import { createTestDb, type TestDb } from '../../helpers/db';
import { deployDefs } from '../events/support';
import { deployProcess, expectRejectedUnchanged, expectSqlState, type DeployedDefinition } from '../../helpers/engine';
import {
  all,
  count,
  externalTaskOf,
  history,
  instance,
  migrate,
  newId,
  one,
  parallelModel,
  re,
  start,
  subscriptions,
  timerBoundary,
  job,
  tokens,
  userTasks,
  type InstanceRow,
  type UserTaskRow,
} from './support';

const T = 'mig-t';
const OTHER = 'mig-other';

let db: TestDb;
let admin: pg.Client;
let designer: pg.Client;
let v1: DeployedDefinition;
let v2: DeployedDefinition;
let runner: InstanceRow;

beforeAll(async () => {
  db = await createTestDb();
  designer = await db.connectAs({ role: 'bpm_designer', tenant: T });
  admin = await db.connectAs({ role: 'bpm_admin', tenant: T, user: 'boss' });
  v1 = await deployProcess(designer, 'order', parallelModel({ a: 'a', b: 'b', w: 'w' }, 'ship-v1', timerBoundary('late', 'b', 'fl')));
  // instances of v1 (start_process starts the latest version)
  await admin.query(
    `select bpm.start_process('order', jsonb_build_object('owner', 'user' || g, 'n', g, 'nested', jsonb_build_object('g', g))) from generate_series(1, 1000) g`,
  );
  runner = await start(admin, 'order', { owner: 'olga', n: -1 });
  // v2 renames every branch element; the external task gets a new topic; the timer boundary stays on (renamed) b
  v2 = await deployProcess(designer, 'order', parallelModel({ a: 'approve', b: 'check', w: 'dispatch' }, 'ship-v2', timerBoundary('late', 'check', 'fl')));
});
afterAll(() => db.close());

const RENAME = { a: 'approve', b: 'check', w: 'dispatch' };

describe('migrating running instances', () => {
  test('1,000 instances v1 → v2 with a renaming mapping keep every task (id, assignee), token, subscription and variable', async () => {
    // half of them have completed b: a token waits at the join (arrived over jb)
    await admin.query(
      `select bpm.complete_task(u.id) from bpm.user_task u join bpm.process_instance i on i.id = u.instance_id
       where u.element_id = 'b' and (i.variables ->> 'n')::int % 2 = 0`,
    );
    const ids = (await all<{ id: string }>(db.root, `select id from bpm.process_instance where tenant_id = $1 and definition_id = $2 and id <> $3 order by id`, [T, v1.id, runner.id])).map(
      (r) => r.id,
    );
    expect(ids).toHaveLength(1000);
    const q = (sql: string) => all<Record<string, unknown>>(db.root, sql, [ids]);
    const tasksBefore = await q(`select id, instance_id, element_id, assignee, state from bpm.user_task where instance_id = any($1) order by id`);
    const externalBefore = await q(`select id, instance_id, element_id, topic from bpm.external_task where instance_id = any($1) and state = 'open' order by id`);
    const varsBefore = await q(`select id, variables from bpm.process_instance where id = any($1) order by id`);
    const subsBefore = await q(`select id, instance_id, token_id, due_at from bpm.event_subscription where instance_id = any($1) order by id`);
    const historyBefore = await q(`select id, element_id from bpm.activity_instance where instance_id = any($1) and state <> 'active' order by id`);
    expect(subsBefore).toHaveLength(500); // the timer of every open b

    const started = Date.now();
    expect(await migrate(admin, ids, v2.id, RENAME)).toBe(1000);
    const elapsed = Date.now() - started;
    expect(elapsed).toBeLessThan(10000); // about 150 ms on a development machine

    const rename = (el: unknown) => RENAME[el as keyof typeof RENAME] ?? el;
    // tasks: same ids, assignees and states; open ones renamed, completed ones keep their history ids
    expect(await q(`select id, instance_id, element_id, assignee, state from bpm.user_task where instance_id = any($1) order by id`)).toEqual(
      tasksBefore.map((t) => ({ ...t, element_id: t.state === 'open' ? rename(t.element_id) : t.element_id })),
    );
    expect(await q(`select id, instance_id, element_id, topic from bpm.external_task where instance_id = any($1) and state = 'open' order by id`)).toEqual(
      externalBefore.map((t) => ({ ...t, element_id: 'dispatch', topic: 'ship-v2' })),
    );
    expect(await q(`select id, variables from bpm.process_instance where id = any($1) order by id`)).toEqual(varsBefore);
    expect(await count(db.root, `select 1 from bpm.process_instance where id = any($1) and definition_id = $2 and state = 'active'`, [ids, v2.id])).toBe(1000);
    // timers keep their ids, hosts and due times, on the same boundary event
    expect(await q(`select id, instance_id, token_id, due_at from bpm.event_subscription where instance_id = any($1) order by id`)).toEqual(subsBefore);
    // history rows that ended keep their old element ids; active rows follow
    expect(await q(`select id, element_id from bpm.activity_instance where instance_id = any($1) and state <> 'active' order by id`)).toEqual(historyBefore);
    expect(
      await count(db.root, `select 1 from bpm.activity_instance where instance_id = any($1) and state = 'active' and element_id in ('a', 'b', 'w')`, [ids]),
    ).toBe(0);
    expect(await count(db.root, `select 1 from bpm_private.token where instance_id = any($1) and element_id = 'join' and via_flow = 'jb'`, [ids])).toBe(500);
    expect(await count(db.root, `select 1 from bpm.event where instance_id = any($1) and kind = 'instanceMigrated'`, [ids])).toBe(1000);
  }, 120000);

  test('a migrated instance runs on in the new version (its tasks complete, its join fires, it completes)', async () => {
    const inst = runner;
    expect(await migrate(admin, [inst.id], v2.id, RENAME)).toBe(1);
    for (const task of (await userTasks(db.root, inst.id)).filter((t) => t.state === 'open')) {
      await admin.query('select bpm.complete_task($1)', [task.id]);
    }
    const engine = await db.connectAs({ role: 'bpm_engine', tenant: T });
    const work = await externalTaskOf(db.root, inst.id);
    expect(work).toMatchObject({ element_id: 'dispatch', topic: 'ship-v2', state: 'open' });
    // fetched by its new topic (with the other 1,000 migrated ones)
    const locked = (await engine.query<{ id: string }>(`select id from bpm.fetch_and_lock('ship-v2', 'w1', 1000)`)).rows.map((r) => r.id);
    const more = (await engine.query<{ id: string }>(`select id from bpm.fetch_and_lock('ship-v2', 'w1', 1000)`)).rows.map((r) => r.id);
    expect([...locked, ...more]).toContain(work.id);
    await engine.query(`select bpm.complete_external_task($1, 'w1')`, [work.id]);
    expect((await instance(db.root, inst.id)).state).toBe('completed');
    expect(await history(db.root, inst.id)).toEqual(expect.arrayContaining(['approve:completed', 'check:completed', 'dispatch:completed', 'join:completed', 'end:completed']));
    expect(await subscriptions(db.root, inst.id)).toEqual([]);
  });

  test('a suspended instance migrates too; an element missing from the mapping keeps its id', async () => {
    const v3 = await deployProcess(designer, 'order', parallelModel({ a: 'approve', b: 'b', w: 'w' }, 'ship-v1', timerBoundary('late', 'b', 'fl')));
    const inst = await start(admin, 'order', { owner: 'sam' }); // starts v3
    await admin.query('select bpm.suspend_process_instance($1)', [inst.id]);
    expect(await migrate(admin, [inst.id], v1.id, { approve: 'a' })).toBe(1);
    const moved = await instance(db.root, inst.id);
    expect(moved).toMatchObject({ definition_id: v1.id, state: 'suspended', variables: { owner: 'sam' } });
    expect((await userTasks(db.root, inst.id)).map((t) => [t.element_id, t.assignee]).sort()).toEqual([
      ['a', 'sam'],
      ['b', null],
    ]);
    expect(v3.version).toBe(3);
  });
});

describe('a target whose external task topic is an expression', () => {
  test('the migrated task keeps its topic (the expression is not evaluated again); new instances evaluate it', async () => {
    const static1 = await deployProcess(designer, 'dyn_order', parallelModel({ a: 'a', b: 'b', w: 'w' }, 'ship-static'));
    const inst = await start(admin, 'dyn_order', { owner: 'ann' });
    const dyn2 = await deployProcess(designer, 'dyn_order', parallelModel({ a: 'a', b: 'b', w: 'w' }, '${carrier}'));
    expect(await migrate(admin, [inst.id], dyn2.id)).toBe(1);
    expect(await externalTaskOf(db.root, inst.id)).toMatchObject({ element_id: 'w', topic: 'ship-static' });
    const fresh = await start(admin, 'dyn_order', { owner: 'bo', carrier: 'dhl' });
    expect(await externalTaskOf(db.root, fresh.id)).toMatchObject({ element_id: 'w', topic: 'dhl' });
    expect(static1.version).toBe(1);
  });
});

describe('migrating instances with scopes', () => {
  const nested = (sub: string, x: string, y: string, extraInside = ''): string => `
    <startEvent id="start"/><sequenceFlow id="f1" sourceRef="start" targetRef="${sub}"/>
    <subProcess id="${sub}">
      <extensionElements><camunda:inputOutput><camunda:inputParameter name="local">\${n + 1}</camunda:inputParameter></camunda:inputOutput></extensionElements>
      <startEvent id="s1"/><sequenceFlow id="g1" sourceRef="s1" targetRef="fork"/><parallelGateway id="fork"/>
      <sequenceFlow id="g2" sourceRef="fork" targetRef="${x}"/><sequenceFlow id="g3" sourceRef="fork" targetRef="${y}"/>
      <userTask id="${x}" camunda:assignee="amy"/><userTask id="${y}"/>
      <sequenceFlow id="g4" sourceRef="${x}" targetRef="join"/><sequenceFlow id="g5" sourceRef="${y}" targetRef="join"/>
      <parallelGateway id="join"/><sequenceFlow id="g6" sourceRef="join" targetRef="e1"/><endEvent id="e1"/>${extraInside}
    </subProcess>
    <sequenceFlow id="f2" sourceRef="${sub}" targetRef="after"/><userTask id="after"/>
    <sequenceFlow id="f3" sourceRef="after" targetRef="end"/><endEvent id="end"/>`;

  test('tokens inside a subprocess move with it (renamed subprocess and tasks); its locals stay; the instance runs on', async () => {
    const n1 = await deployProcess(designer, 'nested_mig', nested('sub', 'x', 'y'));
    const insts = [];
    for (let i = 0; i < 20; i++) insts.push(await start(admin, 'nested_mig', { n: i }));
    // one of them already finished x: its join token waits inside the subprocess
    const [x0] = (await userTasks(db.root, insts[0].id)).filter((t) => t.element_id === 'x');
    await admin.query('select bpm.complete_task($1)', [x0.id]);
    const n2 = await deployProcess(designer, 'nested_mig', nested('review', 'legal', 'tech'));
    expect(n2.version).toBe(n1.version + 1);
    expect(await migrate(admin, insts.map((i) => i.id), n2.id, { sub: 'review', x: 'legal', y: 'tech' })).toBe(20);
    const { rows: scopes } = await db.root.query<{ element_id: string; kind: string; data: { vars: { local: number } } }>(
      `select element_id, kind, data from bpm_private.token where instance_id = $1 and kind = 'scope'`, [insts[3].id]);
    expect(scopes).toEqual([{ element_id: 'review', kind: 'scope', data: { vars: { local: 4 } } }]);
    for (const inst of insts) {
      for (const task of (await userTasks(db.root, inst.id)).filter((t) => t.state === 'open')) {
        expect(['legal', 'tech']).toContain(task.element_id);
        await admin.query('select bpm.complete_task($1)', [task.id]);
      }
      const [after] = (await userTasks(db.root, inst.id)).filter((t) => t.state === 'open');
      expect(after.element_id).toBe('after');
    }
  });

  test('a mapping that moves a task out of its subprocess is refused (BP411) and changes nothing', async () => {
    await deployProcess(designer, 'nested_out', nested('sub', 'x', 'y'));
    const inst = await start(admin, 'nested_out', { n: 1 });
    const target = await deployProcess(designer, 'nested_out', nested('sub', 'x2', 'y') + '<userTask id="outside"/>');
    await expectRejectedUnchanged(db.root, () => migrate(admin, [inst.id], target.id, { x: 'outside' }), 'BP411');
  });
});

describe('boundary events the target adds', () => {
  const reviewModel = (boundaries: string): string => `
    <startEvent id="start"/><sequenceFlow id="f1" sourceRef="start" targetRef="sub"/>
    <subProcess id="sub">
      <extensionElements><camunda:inputOutput><camunda:inputParameter name="wait">PT3H</camunda:inputParameter></camunda:inputOutput></extensionElements>
      <startEvent id="s1"/><sequenceFlow id="g1" sourceRef="s1" targetRef="review"/>
      <userTask id="review"/><sequenceFlow id="g2" sourceRef="review" targetRef="e1"/><endEvent id="e1"/>${boundaries}
    </subProcess>
    <sequenceFlow id="f2" sourceRef="sub" targetRef="end"/><endEvent id="end"/>`;
  const late = `
      <boundaryEvent id="late" attachedToRef="review"><timerEventDefinition><timeDuration>\${wait}</timeDuration></timerEventDefinition></boundaryEvent>
      <sequenceFlow id="g3" sourceRef="late" targetRef="escalated"/><userTask id="escalated"/>
      <sequenceFlow id="g4" sourceRef="escalated" targetRef="e2"/><endEvent id="e2"/>`;
  const withdrawn = `
      <boundaryEvent id="withdrawn" attachedToRef="review" cancelActivity="false"><messageEventDefinition messageRef="m_withdrawn"/></boundaryEvent>
      <sequenceFlow id="g5" sourceRef="withdrawn" targetRef="e3"/><endEvent id="e3"/>`;

  test('a timer and a message boundary added to a waiting task are armed over what the task sees; the timer fires and interrupts it', async () => {
    await deployProcess(designer, 'added_boundaries', reviewModel(''));
    const inst = await start(admin, 'added_boundaries', { n: 2 });
    expect(await subscriptions(db.root, inst.id)).toEqual([]);
    const v2b = await deployDefs(designer, 'added_boundaries', '<message id="m_withdrawn" name="withdrawn"/>', reviewModel(late + withdrawn));
    const before = Date.now();
    expect(await migrate(admin, [inst.id], v2b.id)).toBe(1);
    const subs = await subscriptions(db.root, inst.id);
    expect(subs.map((s) => [s.element_id, s.kind, s.name, s.interrupting])).toEqual([
      ['late', 'timer', null, true],
      ['withdrawn', 'message', 'withdrawn', false],
    ]);
    const [review] = (await userTasks(db.root, inst.id)).filter((t) => t.element_id === 'review');
    expect(subs.every((s) => s.token_id === review.id)).toBe(true);
    // ${wait}: the subprocess's local PT3H
    const due = new Date(subs[0].due_at as unknown as string).getTime();
    expect(Math.abs(due - (before + 3 * 3600_000))).toBeLessThan(60_000);
    expect((await job(db.root, `bpm-timer:${subs[0].id}`))?.task_identifier).toBe('bpm_fire_timer');
    // migrating again arms nothing twice
    expect(await migrate(admin, [inst.id], v2b.id)).toBe(1);
    expect(await subscriptions(db.root, inst.id)).toHaveLength(2);
    // the timer is real: due now, it fires and interrupts the task
    await db.root.query(`update bpm.event_subscription set due_at = now() where id = $1`, [subs[0].id]);
    const engine = await db.connectAs({ role: 'bpm_engine', tenant: T });
    await engine.query('select bpm.fire_timer($1)', [subs[0].id]);
    await engine.end();
    const tasks = await userTasks(db.root, inst.id);
    expect(tasks.map((t) => [t.element_id, t.state])).toEqual(expect.arrayContaining([['review', 'cancelled'], ['escalated', 'open']]));
    expect(await subscriptions(db.root, inst.id)).toEqual([]);
  });

  test('an added conditional boundary is evaluated as it opens: one that holds interrupts the task at once, one that does not waits', async () => {
    const stopped = `
      <boundaryEvent id="stopped" attachedToRef="review"><conditionalEventDefinition><condition>\${halt == true}</condition></conditionalEventDefinition></boundaryEvent>
      <sequenceFlow id="g6" sourceRef="stopped" targetRef="e4"/><endEvent id="e4"/>`;
    await deployProcess(designer, 'added_condition', reviewModel(''));
    const holds = await start(admin, 'added_condition', { halt: true });
    const waits = await start(admin, 'added_condition', { halt: false });
    const v2 = await deployDefs(designer, 'added_condition', '', reviewModel(stopped));
    expect(await migrate(admin, [holds.id, waits.id], v2.id)).toBe(2);
    expect((await userTasks(db.root, holds.id)).map((t) => [t.element_id, t.state])).toEqual([['review', 'cancelled']]);
    expect((await subscriptions(db.root, waits.id)).map((s) => [s.element_id, s.kind])).toEqual([['stopped', 'conditional']]);
    await admin.query(`select bpm.set_variables($1, '{"halt": true}')`, [waits.id]);
    expect((await userTasks(db.root, waits.id)).map((t) => [t.element_id, t.state])).toEqual([['review', 'cancelled']]);
  });
});

describe('event subprocesses the target adds', () => {
  const model = (esps: { process?: string; sub?: string }): string => `
    <startEvent id="start"/><sequenceFlow id="f1" sourceRef="start" targetRef="sub"/>
    <subProcess id="sub">
      <extensionElements><camunda:inputOutput><camunda:inputParameter name="wait">PT2H</camunda:inputParameter></camunda:inputOutput></extensionElements>
      <startEvent id="s1"/><sequenceFlow id="g1" sourceRef="s1" targetRef="review"/>
      <userTask id="review"/><sequenceFlow id="g2" sourceRef="review" targetRef="e1"/><endEvent id="e1"/>${esps.sub ?? ''}
    </subProcess>
    <sequenceFlow id="f2" sourceRef="sub" targetRef="end"/><endEvent id="end"/>${esps.process ?? ''}`;
  const onNote = `
    <subProcess id="onNote" triggeredByEvent="true">
      <startEvent id="noteStart" isInterrupting="false"><messageEventDefinition messageRef="m_note"/></startEvent>
      <sequenceFlow id="n1" sourceRef="noteStart" targetRef="readNote"/><userTask id="readNote"/>
      <sequenceFlow id="n2" sourceRef="readNote" targetRef="noteEnd"/><endEvent id="noteEnd"/>
    </subProcess>`;
  const onTimeout = `
      <subProcess id="onTimeout" triggeredByEvent="true">
        <startEvent id="timeoutStart"><timerEventDefinition><timeDuration>\${wait}</timeDuration></timerEventDefinition></startEvent>
        <sequenceFlow id="t1" sourceRef="timeoutStart" targetRef="escalate"/><userTask id="escalate"/>
        <sequenceFlow id="t2" sourceRef="escalate" targetRef="timeoutEnd"/><endEvent id="timeoutEnd"/>
      </subProcess>`;

  test('a message event subprocess of the process and a timer event subprocess of a running subprocess are armed; both fire', async () => {
    await deployProcess(designer, 'added_esps', model({}));
    const inst = await start(admin, 'added_esps', {});
    const v2e = await deployDefs(designer, 'added_esps', '<message id="m_note" name="note"/>', model({ process: onNote, sub: onTimeout }));
    const before = Date.now();
    expect(await migrate(admin, [inst.id], v2e.id)).toBe(1);
    const subs = await subscriptions(db.root, inst.id);
    expect(subs.map((s) => [s.element_id, s.kind, s.name, s.interrupting])).toEqual([
      ['noteStart', 'message', 'note', false],
      ['timeoutStart', 'timer', null, true],
    ]);
    const [scope] = await all<{ id: string }>(db.root, `select id from bpm.activity_instance where instance_id = $1 and element_id = 'sub'`, [inst.id]);
    expect(subs.map((s) => s.token_id)).toEqual([inst.id, scope.id]);
    // the timer sees the subprocess's local wait = PT2H
    expect(Math.abs(new Date(subs[1].due_at as unknown as string).getTime() - (before + 2 * 3600_000))).toBeLessThan(60_000);
    expect(await migrate(admin, [inst.id], v2e.id)).toBe(1);
    expect(await subscriptions(db.root, inst.id)).toHaveLength(2);
    // the message starts the non-interrupting one beside the task
    await admin.query(`select bpm.correlate_message('note', null)`);
    expect((await userTasks(db.root, inst.id)).filter((t) => t.state === 'open').map((t) => t.element_id).sort()).toEqual(['readNote', 'review']);
    // the timer interrupts the subprocess
    await db.root.query(`update bpm.event_subscription set due_at = now() where id = $1`, [subs[1].id]);
    const engine = await db.connectAs({ role: 'bpm_engine', tenant: T });
    await engine.query('select bpm.fire_timer($1)', [subs[1].id]);
    await engine.end();
    const tasks = await userTasks(db.root, inst.id);
    expect(tasks.map((t) => [t.element_id, t.state]).sort()).toEqual([['escalate', 'open'], ['readNote', 'open'], ['review', 'cancelled']]);
  });
});

describe('refusals leave everything as it was', () => {
  let inst: InstanceRow;
  beforeAll(async () => {
    inst = await start(admin, 'order', { owner: 'rita' });
    await admin.query('select bpm.migrate_process_instances($1::uuid[], $2, $3)', [[inst.id], v1.id, JSON.stringify({ approve: 'a' })]);
  });

  test('a token would be lost (the target lacks b and the mapping names nothing): BP410 naming instance and element', async () => {
    const lossy = await deployProcess(designer, 'order', parallelModel({ a: 'a', b: 'b2', w: 'w' }, 'ship-v1'));
    const other = await start(admin, 'order', { owner: 'x' }); // now on `lossy`
    await migrate(admin, [other.id], v1.id, { b2: 'b' });
    await expectRejectedUnchanged(
      db.root,
      () => migrate(admin, [inst.id, other.id], lossy.id),
      'BP410',
      new RegExp(`process instance (${re(inst.id)}|${re(other.id)}): element b has no counterpart in order version ${lossy.version}`),
    );
  });

  test('a boundary timer whose event is gone from the target loses a subscription: BP410', async () => {
    // v2 without the boundary: `late` has no counterpart
    const bare = await deployProcess(designer, 'order', parallelModel({ a: 'a', b: 'b', w: 'w' }, 'ship-v1'));
    await expectRejectedUnchanged(db.root, () => migrate(admin, [inst.id], bare.id), 'BP410', /element late has no counterpart/);
  });

  test('an incompatible element type (user task → external task): BP411', async () => {
    await expectRejectedUnchanged(
      db.root,
      () => migrate(admin, [inst.id], v2.id, { ...RENAME, a: 'dispatch' }),
      'BP411',
      new RegExp(`process instance ${re(inst.id)}: element a \\(userTask\\) cannot become dispatch \\(external task\\)`),
    );
  });

  test('a boundary event moved to another activity: BP411', async () => {
    await expectRejectedUnchanged(db.root, () => migrate(admin, [inst.id], v2.id, { a: 'approve', b: 'approve', w: 'dispatch' }), 'BP411');
  });

  test('a looped activity keeps its loop: multi-instance ordering and standard loops must match (BP411)', async () => {
    const looped = (loop: string) => `
      <startEvent id="s"/><sequenceFlow id="f1" sourceRef="s" targetRef="a"/>
      <userTask id="a">${loop}</userTask><sequenceFlow id="f2" sourceRef="a" targetRef="e"/><endEvent id="e"/>`;
    const parallel = '<multiInstanceLoopCharacteristics><loopCardinality>2</loopCardinality></multiInstanceLoopCharacteristics>';
    const sequential = '<multiInstanceLoopCharacteristics isSequential="true"><loopCardinality>2</loopCardinality></multiInstanceLoopCharacteristics>';
    const standard = '<standardLoopCharacteristics loopMaximum="2"/>';
    await deployProcess(designer, 'mig_loop', looped(parallel));
    const running = await start(admin, 'mig_loop');
    const cases: Array<[string, string]> = [[sequential, 'userTask, sequential multi-instance'], [standard, 'userTask, standard loop'], ['', 'userTask']];
    for (const [loop, kind] of cases) {
      const target = await deployProcess(designer, 'mig_loop', looped(loop));
      await expectRejectedUnchanged(db.root, () => migrate(admin, [running.id], target.id), 'BP411',
        new RegExp(`element a \\(userTask, parallel multi-instance\\) cannot become a \\(${re(kind)}\\)`));
    }
    const same = await deployProcess(designer, 'mig_loop', looped(parallel.replace('<loopCardinality>2', '<loopCardinality>3')));
    expect(await migrate(admin, [running.id], same.id)).toBe(1);
  });

  test('mapped to an element the target does not have: BP112', async () => {
    await expectRejectedUnchanged(db.root, () => migrate(admin, [inst.id], v2.id, { ...RENAME, a: 'nowhere' }), 'BP112', /element a is mapped to nowhere/);
  });

  test('another process key: BP412; an ended instance: BP201; an unknown target: BP110; an unknown instance: BP102', async () => {
    const otherKey = await deployProcess(designer, 'other', `<startEvent id="start"/><sequenceFlow id="f" sourceRef="start" targetRef="a"/><userTask id="a"/>`);
    await expectRejectedUnchanged(db.root, () => migrate(admin, [inst.id], otherKey.id), 'BP412', new RegExp(`process instance ${re(inst.id)} runs process order`));
    const ended = await start(admin, 'order', { owner: 'e' });
    await admin.query('select bpm.cancel_process_instance($1)', [ended.id]);
    await expectRejectedUnchanged(db.root, () => migrate(admin, [inst.id, ended.id], v2.id, RENAME), 'BP201', new RegExp(`process instance ${re(ended.id)} is cancelled`));
    await expectRejectedUnchanged(db.root, () => migrate(admin, [inst.id], newId(), RENAME), 'BP110');
    const ghost = newId();
    await expectRejectedUnchanged(db.root, () => migrate(admin, [inst.id, ghost], v2.id, RENAME), 'BP102', new RegExp(`process instance ${ghost} not found`));
  });

  test('malformed arguments: BP401', async () => {
    await expectRejectedUnchanged(db.root, () => migrate(admin, [], v2.id), 'BP401');
    await expectRejectedUnchanged(
      db.root,
      () => one(admin, 'select bpm.migrate_process_instances($1::uuid[], $2, $3::jsonb)', [[inst.id], v2.id, '{"a": 1}']),
      'BP401',
    );
  });

  test("another tenant's admin cannot migrate the tenant's instances: not found", async () => {
    const foreignDesigner = await db.connectAs({ role: 'bpm_designer', tenant: OTHER });
    const foreignAdmin = await db.connectAs({ role: 'bpm_admin', tenant: OTHER });
    const theirs = await deployProcess(foreignDesigner, 'order', parallelModel(RENAME, 'ship-v2', timerBoundary('late', 'check', 'fl')));
    await expectRejectedUnchanged(db.root, () => migrate(foreignAdmin, [inst.id], theirs.id, RENAME), 'BP102', new RegExp(`process instance ${re(inst.id)} not found`));
    await expectRejectedUnchanged(db.root, () => migrate(foreignAdmin, [inst.id], v2.id, RENAME), 'BP110');
  });

  test('bpm_user and bpm_designer have no execute grant (42501); a caller without SET ROLE: BP002', async () => {
    for (const role of ['bpm_user', 'bpm_designer'] as const) {
      const client = await db.connectAs({ role, tenant: T, user: 'u' });
      await expectRejectedUnchanged(db.root, () => migrate(client, [inst.id], v2.id, RENAME), '42501', /permission denied for function migrate_process_instances/);
    }
    const superuser = await db.root.connect();
    try {
      await superuser.query(`select set_config('bpm.tenant_id', $1, false)`, [T]);
      await expectSqlState(migrate(superuser, [inst.id], v2.id, RENAME), 'BP002', /may not migrate process instances/);
    } finally {
      superuser.release(true);
    }
  });

  test('the instance is untouched after all refusals and still migrates', async () => {
    const tasks = await userTasks(db.root, inst.id);
    expect(await migrate(admin, [inst.id], v2.id, RENAME)).toBe(1);
    expect((await userTasks(db.root, inst.id)).map((t: UserTaskRow) => [t.id, t.element_id, t.assignee])).toEqual(
      tasks.map((t) => [t.id, RENAME[t.element_id as keyof typeof RENAME], t.assignee]),
    );
    expect(await tokens(db.root, inst.id)).toEqual([]);
    const [timer] = await subscriptions(db.root, inst.id);
    expect(await job(db.root, `bpm-timer:${timer?.id}`)).not.toBeNull();
  });
});
