/**
 * Conditional events through the public functions: an intermediate catch
 * event waits until its condition holds (or passes at once), a boundary
 * event interrupts its activity or runs beside it, an event subprocess
 * starts; conditions are evaluated when they open and whenever the
 * instance's variables change (set_variables, complete_task, subprocess
 * locals), not while the instance is suspended; a condition that keeps
 * re-triggering itself is stopped (BP313) and nothing is kept.
 */
import { createTestDb, type TestDb } from '../../helpers/db';
import { expectRejectedUnchanged } from '../../helpers/engine';
import { actors, all, deployDefs, history, instanceState, openUserTask, start, subscriptions, tokens, type Actors } from './support';

const T = 'cond-t';
let db: TestDb;
let as: Actors;

async function setVariables(instanceId: string, variables: Record<string, unknown>): Promise<void> {
  await as.admin.query('select bpm.set_variables($1, $2::jsonb)', [instanceId, JSON.stringify(variables)]);
}

async function completeTask(taskId: string, variables: Record<string, unknown> = {}): Promise<void> {
  await as.admin.query('select bpm.complete_task($1, $2::jsonb)', [taskId, JSON.stringify(variables)]);
}

async function openTasks(instanceId: string): Promise<string[]> {
  return (await all<{ element_id: string }>(db.root, `select element_id from bpm.user_task where instance_id = $1 and state = 'open' order by created_at, element_id`, [instanceId])).map(
    (r) => r.element_id,
  );
}

async function eventKinds(instanceId: string, kind: string): Promise<string[]> {
  return (await all<{ element_id: string }>(db.root, `select element_id from bpm.event where instance_id = $1 and kind = $2 order by id`, [instanceId, kind])).map((r) => r.element_id);
}

beforeAll(async () => {
  db = await createTestDb();
  as = await actors(db, T);
  await deployDefs(as.admin, 'cond_catch', '', `
    <startEvent id="s"/><sequenceFlow id="f1" sourceRef="s" targetRef="wait"/>
    <intermediateCatchEvent id="wait"><conditionalEventDefinition><condition xsi:type="tFormalExpression" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">\${amount &gt; 100}</condition></conditionalEventDefinition></intermediateCatchEvent>
    <sequenceFlow id="f2" sourceRef="wait" targetRef="after"/>
    <userTask id="after"/>`);
  await deployDefs(as.admin, 'cond_boundary', '', `
    <startEvent id="s"/><sequenceFlow id="f1" sourceRef="s" targetRef="review"/>
    <userTask id="review"/>
    <boundaryEvent id="cancelled" attachedToRef="review"><conditionalEventDefinition><condition>=status = "cancelled"</condition></conditionalEventDefinition></boundaryEvent>
    <boundaryEvent id="noted" attachedToRef="review" cancelActivity="false"><conditionalEventDefinition><condition>\${notes &gt; 0}</condition></conditionalEventDefinition></boundaryEvent>
    <sequenceFlow id="f2" sourceRef="review" targetRef="done"/><endEvent id="done"/>
    <sequenceFlow id="f3" sourceRef="cancelled" targetRef="cleanup"/><userTask id="cleanup"/>
    <sequenceFlow id="f4" sourceRef="noted" targetRef="readNotes"/><userTask id="readNotes"/>`);
  await deployDefs(as.admin, 'cond_esp', '', `
    <startEvent id="s"/><sequenceFlow id="f1" sourceRef="s" targetRef="work"/>
    <userTask id="work"/>
    <sequenceFlow id="f2" sourceRef="work" targetRef="second"/><userTask id="second"/>
    <subProcess id="escalate" triggeredByEvent="true">
      <startEvent id="escStart" isInterrupting="false"><conditionalEventDefinition><condition>\${risk &gt;= 5}</condition></conditionalEventDefinition></startEvent>
      <sequenceFlow id="e1" sourceRef="escStart" targetRef="riskReview"/><userTask id="riskReview"/>
    </subProcess>
    <subProcess id="abort" triggeredByEvent="true">
      <startEvent id="abortStart"><conditionalEventDefinition><condition>\${aborted == true}</condition></conditionalEventDefinition></startEvent>
      <sequenceFlow id="a1" sourceRef="abortStart" targetRef="aborted"/><endEvent id="aborted"/>
    </subProcess>`);
  await deployDefs(as.admin, 'cond_sub', '', `
    <startEvent id="s"/><sequenceFlow id="f1" sourceRef="s" targetRef="sub"/>
    <subProcess id="sub">
      <extensionElements><camunda:inputOutput><camunda:inputParameter name="ready">\${false}</camunda:inputParameter></camunda:inputOutput></extensionElements>
      <startEvent id="is"/><sequenceFlow id="i1" sourceRef="is" targetRef="fork"/><parallelGateway id="fork"/>
      <sequenceFlow id="i2" sourceRef="fork" targetRef="prepare"/><userTask id="prepare"/>
      <sequenceFlow id="i3" sourceRef="prepare" targetRef="j"/>
      <sequenceFlow id="i4" sourceRef="fork" targetRef="gate"/>
      <intermediateCatchEvent id="gate"><conditionalEventDefinition><condition>\${ready}</condition></conditionalEventDefinition></intermediateCatchEvent>
      <sequenceFlow id="i5" sourceRef="gate" targetRef="j"/><parallelGateway id="j"/>
      <sequenceFlow id="i6" sourceRef="j" targetRef="ie"/><endEvent id="ie"/>
    </subProcess>
    <sequenceFlow id="f2" sourceRef="sub" targetRef="end"/><endEvent id="end"/>`);
  // camunda:variableName: re-evaluated only when "limit" changes (and only by an update)
  await deployDefs(as.admin, 'cond_filter', '', `
    <startEvent id="s"/><sequenceFlow id="f1" sourceRef="s" targetRef="wait"/>
    <intermediateCatchEvent id="wait"><conditionalEventDefinition camunda:variableName="limit" camunda:variableEvents="update"><condition>\${spent &gt; limit}</condition></conditionalEventDefinition></intermediateCatchEvent>
    <sequenceFlow id="f2" sourceRef="wait" targetRef="after"/><userTask id="after"/>`);
  // conditions reached by other calls: an external task's result, a message's variables, a subprocess's locals
  await deployDefs(as.admin, 'cond_paths', '<message id="m" name="Paid"/>', `
    <startEvent id="s"/><sequenceFlow id="f1" sourceRef="s" targetRef="fork"/><parallelGateway id="fork"/>
    <sequenceFlow id="f2" sourceRef="fork" targetRef="score"/>
    <serviceTask id="score" camunda:type="external" camunda:topic="score"/>
    <sequenceFlow id="f3" sourceRef="score" targetRef="e1"/><endEvent id="e1"/>
    <sequenceFlow id="f4" sourceRef="fork" targetRef="paid"/>
    <receiveTask id="paid" messageRef="m"/>
    <sequenceFlow id="f5" sourceRef="paid" targetRef="e2"/><endEvent id="e2"/>
    <sequenceFlow id="f6" sourceRef="fork" targetRef="review"/>
    <userTask id="review"/>
    <boundaryEvent id="risky" attachedToRef="review" cancelActivity="false"><conditionalEventDefinition><condition>\${score &gt; 80}</condition></conditionalEventDefinition></boundaryEvent>
    <sequenceFlow id="f7" sourceRef="risky" targetRef="riskCheck"/><userTask id="riskCheck"/>
    <boundaryEvent id="settled" attachedToRef="review"><conditionalEventDefinition><condition>\${amountPaid &gt;= 100}</condition></conditionalEventDefinition></boundaryEvent>
    <sequenceFlow id="f8" sourceRef="settled" targetRef="e3"/><endEvent id="e3"/>`);
  await deployDefs(as.admin, 'cond_scope', '', `
    <startEvent id="s"/><sequenceFlow id="f1" sourceRef="s" targetRef="sub"/>
    <subProcess id="sub">
      <extensionElements><camunda:inputOutput><camunda:inputParameter name="attempts">\${0}</camunda:inputParameter></camunda:inputOutput></extensionElements>
      <startEvent id="is"/><sequenceFlow id="i1" sourceRef="is" targetRef="try"/><userTask id="try"/>
      <sequenceFlow id="i2" sourceRef="try" targetRef="next"/><userTask id="next"/>
      <sequenceFlow id="i3" sourceRef="next" targetRef="ie"/><endEvent id="ie"/>
      <subProcess id="tooMany" triggeredByEvent="true">
        <startEvent id="tmStart"><conditionalEventDefinition><condition>\${attempts &gt;= 3}</condition></conditionalEventDefinition></startEvent>
        <sequenceFlow id="t1" sourceRef="tmStart" targetRef="tmEnd"/><endEvent id="tmEnd"/>
      </subProcess>
    </subProcess>
    <sequenceFlow id="f2" sourceRef="sub" targetRef="after"/><userTask id="after"/>`);
  // an event-based gateway racing a message, a timer and a condition
  for (const [key, first] of [['cond_gateway', ''], ['cond_gateway_late', '<userTask id="prepare"/><sequenceFlow id="f0" sourceRef="prepare" targetRef="g"/>']]) {
    await deployDefs(as.admin, key, '<message id="m" name="Approved"/>', `
    <startEvent id="s"/><sequenceFlow id="f1" sourceRef="s" targetRef="${first === '' ? 'g' : 'prepare'}"/>${first}
    <eventBasedGateway id="g"/>
    <sequenceFlow id="f2" sourceRef="g" targetRef="approved"/>
    <intermediateCatchEvent id="approved"><messageEventDefinition messageRef="m"/></intermediateCatchEvent>
    <sequenceFlow id="f3" sourceRef="approved" targetRef="ship"/><userTask id="ship"/>
    <sequenceFlow id="f4" sourceRef="g" targetRef="timeout"/>
    <intermediateCatchEvent id="timeout"><timerEventDefinition><timeDuration>P7D</timeDuration></timerEventDefinition></intermediateCatchEvent>
    <sequenceFlow id="f5" sourceRef="timeout" targetRef="remind"/><userTask id="remind"/>
    <sequenceFlow id="f6" sourceRef="g" targetRef="withdrawn"/>
    <intermediateCatchEvent id="withdrawn"><conditionalEventDefinition><condition>=status = "withdrawn"</condition></conditionalEventDefinition></intermediateCatchEvent>
    <sequenceFlow id="f7" sourceRef="withdrawn" targetRef="archive"/><userTask id="archive"/>`);
  }
  // two non-interrupting boundary events that set each other's condition
  await deployDefs(as.admin, 'cond_loop', '', `
    <startEvent id="s"/><sequenceFlow id="f1" sourceRef="s" targetRef="review"/>
    <userTask id="review"/>
    <boundaryEvent id="ping" attachedToRef="review" cancelActivity="false"><conditionalEventDefinition><condition>\${x == 1}</condition></conditionalEventDefinition></boundaryEvent>
    <sequenceFlow id="f2" sourceRef="ping" targetRef="toTwo"/>
    <task id="toTwo"><extensionElements><camunda:inputOutput><camunda:outputParameter name="x">\${2}</camunda:outputParameter></camunda:inputOutput></extensionElements></task>
    <sequenceFlow id="f3" sourceRef="toTwo" targetRef="stop1"/><endEvent id="stop1"/>
    <boundaryEvent id="pong" attachedToRef="review" cancelActivity="false"><conditionalEventDefinition><condition>\${x == 2}</condition></conditionalEventDefinition></boundaryEvent>
    <sequenceFlow id="f4" sourceRef="pong" targetRef="toOne"/>
    <task id="toOne"><extensionElements><camunda:inputOutput><camunda:outputParameter name="x">\${1}</camunda:outputParameter></camunda:inputOutput></extensionElements></task>
    <sequenceFlow id="f5" sourceRef="toOne" targetRef="stop2"/><endEvent id="stop2"/>`);
});

afterAll(() => db.close());

describe('intermediate conditional catch event', () => {
  test('a condition that holds when the token arrives passes at once', async () => {
    const inst = await start(as.admin, 'cond_catch', { amount: 500 });
    expect(await openTasks(inst.id)).toEqual(['after']);
    expect(await eventKinds(inst.id, 'conditionFulfilled')).toEqual(['wait']);
    expect(await subscriptions(db.root, inst.id)).toEqual([]);
  });

  test('otherwise it waits; a change that leaves it false does nothing, one that makes it true moves the token on', async () => {
    const inst = await start(as.admin, 'cond_catch', { amount: 5 });
    expect(await openTasks(inst.id)).toEqual([]);
    expect((await subscriptions(db.root, inst.id)).map((s) => [s.kind, s.element_id])).toEqual([['conditional', 'wait']]);
    await setVariables(inst.id, { amount: 50 });
    expect(await openTasks(inst.id)).toEqual([]);
    await setVariables(inst.id, { amount: 150 });
    expect(await openTasks(inst.id)).toEqual(['after']);
    expect(await subscriptions(db.root, inst.id)).toEqual([]);
    expect(await history(db.root, inst.id)).toEqual(['s:completed', 'wait:completed', 'after:active']);
  });

  test('an unset variable counts as false, not as an error', async () => {
    const inst = await start(as.admin, 'cond_catch');
    expect(await tokens(db.root, inst.id)).toEqual(['wait:event']);
    await setVariables(inst.id, { other: 1 });
    expect(await tokens(db.root, inst.id)).toEqual(['wait:event']);
  });

  test('inside a subprocess it sees the subprocess\'s locals; a task completion that sets the local releases it', async () => {
    const inst = await start(as.admin, 'cond_sub');
    expect(await tokens(db.root, inst.id)).toEqual(expect.arrayContaining(['gate:event']));
    const prepare = await openUserTask(db.root, inst.id);
    // "ready" is a local of the subprocess: completing with it sets the local, not an instance variable
    await completeTask(prepare.id, { ready: true });
    expect(await instanceState(db.root, inst.id)).toBe('completed');
    expect((await all<{ variables: Record<string, unknown> }>(db.root, 'select variables from bpm.process_instance where id = $1', [inst.id]))[0].variables).toEqual({});
  });
});

describe('variable filters (camunda:variableName, camunda:variableEvents)', () => {
  test('a filtered condition is evaluated when it opens, then only when its variable changes by an event it names', async () => {
    const holdsAtOnce = await start(as.admin, 'cond_filter', { spent: 10, limit: 5 });
    expect(await openTasks(holdsAtOnce.id)).toEqual(['after']);
    const inst = await start(as.admin, 'cond_filter', { spent: 1, limit: 5 });
    await setVariables(inst.id, { spent: 10 }); // holds now, but "limit" did not change
    expect(await openTasks(inst.id)).toEqual([]);
    await setVariables(inst.id, { limit: 6 }); // an update of "limit": evaluated, and it holds
    expect(await openTasks(inst.id)).toEqual(['after']);
    const created = await start(as.admin, 'cond_filter', { spent: 10 });
    await setVariables(created.id, { limit: 5 }); // "limit" created, not updated: not evaluated
    expect(await openTasks(created.id)).toEqual([]);
    await setVariables(created.id, { limit: 4 });
    expect(await openTasks(created.id)).toEqual(['after']);
  });
});

describe('conditional boundary events', () => {
  test('non-interrupting: runs beside the activity when the condition becomes true, again only after it was false', async () => {
    const inst = await start(as.admin, 'cond_boundary', { notes: 0 });
    expect(await openTasks(inst.id)).toEqual(['review']);
    await setVariables(inst.id, { notes: 1 });
    await setVariables(inst.id, { notes: 2 }); // still true: no new trigger
    expect(await openTasks(inst.id)).toEqual(['review', 'readNotes']);
    await setVariables(inst.id, { notes: 0 });
    await setVariables(inst.id, { notes: 3 });
    expect(await openTasks(inst.id)).toEqual(['review', 'readNotes', 'readNotes']);
    expect(await eventKinds(inst.id, 'conditionFulfilled')).toEqual(['noted', 'noted']);
  });

  test('interrupting: cancels the activity and takes its path; its other boundary events close', async () => {
    const inst = await start(as.admin, 'cond_boundary', { notes: 0 });
    await setVariables(inst.id, { status: 'open' });
    expect(await openTasks(inst.id)).toEqual(['review']);
    await setVariables(inst.id, { status: 'cancelled' });
    expect(await openTasks(inst.id)).toEqual(['cleanup']);
    expect(await subscriptions(db.root, inst.id)).toEqual([]);
    expect(await history(db.root, inst.id)).toEqual(['s:completed', 'review:cancelled', 'cancelled:completed', 'cleanup:active']);
  });

  test('a condition that holds when the activity starts triggers at once', async () => {
    const inst = await start(as.admin, 'cond_boundary', { status: 'cancelled', notes: 0 });
    expect(await openTasks(inst.id)).toEqual(['cleanup']);
  });

  test('a suspended instance does not react; activation evaluates what changed meanwhile', async () => {
    const inst = await start(as.admin, 'cond_boundary', { notes: 0 });
    await as.admin.query('select bpm.suspend_process_instance($1)', [inst.id]);
    await setVariables(inst.id, { status: 'cancelled' });
    expect(await openTasks(inst.id)).toEqual(['review']);
    await as.admin.query('select bpm.activate_process_instance($1)', [inst.id]);
    expect(await openTasks(inst.id)).toEqual(['cleanup']);
  });

  test('conditions that keep re-triggering each other are stopped with BP313 and the change is rolled back', async () => {
    const inst = await start(as.admin, 'cond_loop', { x: 0 });
    await expectRejectedUnchanged(db.root, () => setVariables(inst.id, { x: 1 }), 'BP313', /conditional event p[io]ng of instance .* triggered more than 100 times/);
    expect(await openTasks(inst.id)).toEqual(['review']);
  });
});

describe('what changes variables', () => {
  test('an external task\'s result triggers a non-interrupting boundary; a message\'s variables an interrupting one', async () => {
    const inst = await start(as.admin, 'cond_paths');
    const [task] = (await as.engine.query<{ id: string }>(`select id from bpm.fetch_and_lock('score', 'w1', 1, '1 minute')`)).rows;
    await as.engine.query(`select bpm.complete_external_task($1, 'w1', '{"score": 95}')`, [task.id]);
    expect(await openTasks(inst.id)).toEqual(['review', 'riskCheck']);
    await as.admin.query(`select bpm.correlate_message('Paid', null, '{"amountPaid": 120}')`);
    expect(await openTasks(inst.id)).toEqual(['riskCheck']);
    expect(await history(db.root, inst.id)).toEqual(expect.arrayContaining(['review:cancelled', 'settled:completed', 'e3:completed']));
  });

  test('an event subprocess of a subprocess sees its locals: completing a task that sets the local triggers it and ends the subprocess', async () => {
    const inst = await start(as.admin, 'cond_scope');
    const first = await openUserTask(db.root, inst.id);
    await completeTask(first.id, { attempts: 3 });
    // the task's variable "attempts" went to the subprocess's local of that name, which the event subprocess
    // sees; it interrupts the subprocess (its task "next" is cancelled) and the subprocess completes
    expect(await openTasks(inst.id)).toEqual(['after']);
    expect(await history(db.root, inst.id)).toEqual(expect.arrayContaining(['next:cancelled', 'tmEnd:completed']));
    expect(await eventKinds(inst.id, 'conditionFulfilled')).toContain('tmStart');
  });
});

describe('after an event-based gateway', () => {
  test('the condition becoming true wins the race: its path is taken, the message subscription and the timer and its job are gone', async () => {
    const inst = await start(as.admin, 'cond_gateway', { status: 'open' });
    const subs = await subscriptions(db.root, inst.id);
    expect(subs.map((s) => [s.kind, s.element_id]).sort()).toEqual([['conditional', 'withdrawn'], ['message', 'approved'], ['timer', 'timeout']]);
    const timerJob = `bpm-timer:${subs.find((s) => s.kind === 'timer')!.id}`;
    expect(await all(db.root, 'select 1 from graphile_worker.jobs where key = $1', [timerJob])).toHaveLength(1);
    await setVariables(inst.id, { status: 'pending' });
    expect(await openTasks(inst.id)).toEqual([]);
    await setVariables(inst.id, { status: 'withdrawn' });
    expect(await openTasks(inst.id)).toEqual(['archive']);
    expect(await subscriptions(db.root, inst.id)).toEqual([]);
    expect(await all(db.root, 'select 1 from graphile_worker.jobs where key = $1', [timerJob])).toHaveLength(0);
    expect(await history(db.root, inst.id)).toEqual(expect.arrayContaining(['g:completed', 'withdrawn:completed', 'archive:active']));
    await expectRejectedUnchanged(db.root, () => as.admin.query(`select bpm.correlate_message('Approved', null)`), 'BP106');
  });

  test('a condition that holds when the gateway is reached takes its path at once; otherwise another event wins and the condition no longer counts', async () => {
    const at = await start(as.admin, 'cond_gateway', { status: 'withdrawn' });
    expect(await openTasks(at.id)).toEqual(['archive']);
    expect(await subscriptions(db.root, at.id)).toEqual([]);
    // reached by a call that changes no variable
    const late = await start(as.admin, 'cond_gateway_late', { status: 'withdrawn' });
    await completeTask((await openUserTask(db.root, late.id)).id);
    expect(await openTasks(late.id)).toEqual(['archive']);
    expect(await subscriptions(db.root, late.id)).toEqual([]);
    const later = await start(as.admin, 'cond_gateway', { status: 'open' });
    await as.admin.query(`select bpm.correlate_message('Approved', null)`);
    expect(await openTasks(later.id)).toEqual(['ship']);
    await setVariables(later.id, { status: 'withdrawn' });
    expect(await openTasks(later.id)).toEqual(['ship']);
  });
});

describe('conditional event subprocesses', () => {
  test('non-interrupting: starts beside the main path when a task completion makes it hold; interrupting: ends the scope', async () => {
    const inst = await start(as.admin, 'cond_esp', { risk: 1 });
    const work = await openUserTask(db.root, inst.id);
    await completeTask(work.id, { risk: 7 });
    expect(await openTasks(inst.id)).toEqual(['riskReview', 'second']);
    await setVariables(inst.id, { aborted: true });
    expect(await instanceState(db.root, inst.id)).toBe('completed');
    expect(await openTasks(inst.id)).toEqual([]);
    // (each start is reported for its subscription and for the event subprocess instance it starts)
    expect(await eventKinds(inst.id, 'conditionFulfilled')).toEqual(['escStart', 'escStart', 'abortStart', 'abortStart']);
  });
});

describe('conditional start events (evaluate_conditions)', () => {
  const startModel = (condition: string): string => `
    <startEvent id="when"><conditionalEventDefinition><condition>${condition}</condition></conditionalEventDefinition></startEvent>
    <sequenceFlow id="f1" sourceRef="when" targetRef="handle"/><userTask id="handle"/>`;

  async function evaluate(client: Actors['admin'], variables: Record<string, unknown>, businessKey: string | null = null): Promise<Array<{ id: string; business_key: string | null }>> {
    return (await client.query<{ id: string; business_key: string | null }>('select id, business_key from bpm.evaluate_conditions($1::jsonb, $2)', [JSON.stringify(variables), businessKey])).rows;
  }

  async function definitionOf(instanceId: string): Promise<string> {
    return (await all<{ key: string }>(db.root, 'select d.key from bpm.process_instance i join bpm.process_definition d on d.id = i.definition_id where i.id = $1', [instanceId]))[0].key;
  }

  test('each process whose condition holds over the variables starts with them; none holding starts nothing', async () => {
    await deployDefs(as.admin, 'cs_big', '', startModel('\${amount &gt; 1000}'));
    await deployDefs(as.admin, 'cs_vip', '', startModel('=customer.vip = true'));
    expect(await evaluate(as.admin, { amount: 5, customer: { vip: false } })).toEqual([]);
    const started = await evaluate(as.admin, { amount: 5000, customer: { vip: true } }, 'B-1');
    expect(started).toHaveLength(2);
    expect((await Promise.all(started.map((i) => definitionOf(i.id)))).sort()).toEqual(['cs_big', 'cs_vip']);
    expect(started.every((i) => i.business_key === 'B-1')).toBe(true);
    for (const i of started) {
      expect(await openTasks(i.id)).toEqual(['handle']);
      expect(await eventKinds(i.id, 'conditionFulfilled')).toEqual(['when']);
    }
    expect((await all<{ variables: unknown }>(db.root, 'select variables from bpm.process_instance where id = $1', [started[0].id]))[0].variables).toEqual({
      amount: 5000,
      customer: { vip: true },
    });
    // only the latest version counts: a version without the conditional start stops it
    await deployDefs(as.admin, 'cs_vip', '', '<startEvent id="s"/><sequenceFlow id="f1" sourceRef="s" targetRef="h"/><userTask id="h"/>');
    expect((await evaluate(as.admin, { amount: 5000, customer: { vip: true } })).length).toBe(1);
    await expectRejectedUnchanged(db.root, () => as.admin.query(`select bpm.start_process('cs_big')`), 'BP308', /starts by message, signal, timer or condition only/);
  });

  test('a bpm_user starts only the processes whose candidate starters include them; variables must be an object', async () => {
    await deployDefs(as.admin, 'cs_staff', '', startModel('\${go == true}'));
    await deployDefs(as.admin, 'cs_managers', '', startModel('\${go == true}'));
    await db.root.query(`update bpm.process_definition set candidate_starter_groups = '{managers}' where key = 'cs_managers'`);
    const started = await evaluate(as.user, { go: true });
    expect(await Promise.all(started.map((i) => definitionOf(i.id)))).toEqual(['cs_staff']);
    await expectRejectedUnchanged(db.root, () => as.admin.query(`select * from bpm.evaluate_conditions('[1]')`), 'BP401', /variables must be a JSON object/);
  });
});
