/**
 * Scopes (issue 5) through the public functions, as the real roles:
 * embedded subprocesses (boundary events, terminate, errors, mappings),
 * event subprocesses, multi-instance, call activities and link events.
 */
import { createTestDb, type TestDb } from '../../helpers/db';
import { deployFixture, deployProcess } from '../../helpers/engine';
import { deployDefs } from '../events/support';
import { actors, completeTask, getInstance, history, openTask, startProcess, userTasks, type Actors } from '../elements/support';

let db: TestDb;
let as: Actors;

beforeAll(async () => {
  db = await createTestDb();
  as = await actors(db);
  await deployFixture(as.admin, 'scopes/subprocess-parallel-timer.bpmn', 'scopes/event-subprocess-message.bpmn',
    'scopes/multi-instance-collection.bpmn', 'scopes/call-grandchild.bpmn', 'scopes/call-child.bpmn', 'scopes/call-parent.bpmn',
    'scopes/link-events.bpmn');
});

afterAll(async () => {
  await db?.close();
});

async function openTasks(instanceId: string): Promise<{ id: string; element_id: string }[]> {
  return (await userTasks(as.admin, instanceId)).filter((t) => t.state === 'open');
}

async function subscriptions(instanceId: string): Promise<{ id: string; kind: string; element_id: string }[]> {
  const { rows } = await as.admin.query('select id, kind, element_id from bpm.event_subscription where instance_id = $1 order by element_id', [instanceId]);
  return rows;
}

async function timerJobs(subscriptionIds: string[]): Promise<number> {
  const { rows } = await db.root.query<{ n: string }>(
    `select count(*) as n from graphile_worker.jobs where key = any($1::text[])`, [subscriptionIds.map((id) => `bpm-timer:${id}`)]);
  return Number(rows[0].n);
}

describe('embedded subprocess', () => {
  test('three parallel inner tasks; completing all leaves the subprocess and ends the instance', async () => {
    const instance = await startProcess(as.admin, 'scopes-subprocess');
    const tasks = await openTasks(instance.id);
    expect(tasks.map((t) => t.element_id).sort()).toEqual(['Finance', 'Legal', 'Tech']);
    for (const t of tasks) await completeTask(as.admin, t.id);
    expect((await getInstance(as.admin, instance.id)).state).toBe('completed');
    const { rows } = await as.admin.query(
      `select element_id, state, scope_id is not null as scoped from bpm.activity_instance where instance_id = $1 and element_id in ('Review', 'Legal', 'Join')`, [instance.id]);
    expect(rows.filter((r) => r.element_id === 'Review')).toEqual([{ element_id: 'Review', state: 'completed', scoped: false }]);
    expect(rows.filter((r) => r.element_id === 'Legal')).toEqual([{ element_id: 'Legal', state: 'completed', scoped: true }]);
  });

  test('an interrupting timer boundary on the subprocess cancels all three inner tokens and the timer is gone', async () => {
    const instance = await startProcess(as.admin, 'scopes-subprocess');
    await completeTask(as.admin, (await openTask(as.admin, instance.id, 'Legal')).id);
    const subs = await subscriptions(instance.id);
    expect(subs.map((s) => [s.kind, s.element_id])).toEqual([['timer', 'ReviewTimeout']]);
    expect(await timerJobs(subs.map((s) => s.id))).toBe(1);
    await as.engine.query('select bpm.fire_timer($1)', [subs[0].id]).catch(() => undefined);
    // not due yet: nothing happens; make it due and fire
    await db.root.query('update bpm.event_subscription set due_at = now() - interval \'1 second\' where id = $1', [subs[0].id]);
    await as.engine.query('select bpm.fire_timer($1)', [subs[0].id]);
    expect((await getInstance(as.admin, instance.id)).state).toBe('completed');
    const tasks = await userTasks(as.admin, instance.id);
    expect(tasks.map((t) => [t.element_id, t.state]).sort()).toEqual([['Finance', 'cancelled'], ['Legal', 'completed'], ['Tech', 'cancelled']]);
    expect(await history(as.admin, instance.id)).toContain('TimedOut endEvent completed');
    const { rows } = await as.admin.query(`select element_id, state from bpm.activity_instance where instance_id = $1 and element_id in ('Review', 'Join', 'Finance', 'Tech') order by element_id`, [instance.id]);
    expect(rows).toEqual([
      { element_id: 'Finance', state: 'cancelled' }, { element_id: 'Join', state: 'cancelled' },
      { element_id: 'Review', state: 'cancelled' }, { element_id: 'Tech', state: 'cancelled' }]);
    expect(await subscriptions(instance.id)).toEqual([]);
    const tokens = await db.root.query('select kind from bpm_private.token where instance_id = $1', [instance.id]);
    expect(tokens.rows).toEqual([]);
  });

  test('completing the subprocess removes its boundary timer and its job', async () => {
    const instance = await startProcess(as.admin, 'scopes-subprocess');
    const subs = await subscriptions(instance.id);
    for (const t of await openTasks(instance.id)) await completeTask(as.admin, t.id);
    expect(await subscriptions(instance.id)).toEqual([]);
    expect(await timerJobs(subs.map((s) => s.id))).toBe(0);
  });

  test('input mappings are locals of the subprocess; output mappings write to the instance; terminate inside ends only the subprocess', async () => {
    await deployDefs(as.admin, 'scopes_io', ``, `
      <startEvent id="s"/><sequenceFlow id="f1" sourceRef="s" targetRef="sub"/>
      <subProcess id="sub">
        <extensionElements><camunda:inputOutput>
          <camunda:inputParameter name="limit">\${amount * 2}</camunda:inputParameter>
          <camunda:outputParameter name="result">\${limit + 1}</camunda:outputParameter>
        </camunda:inputOutput></extensionElements>
        <startEvent id="is"/><sequenceFlow id="i1" sourceRef="is" targetRef="fork"/>
        <parallelGateway id="fork"/>
        <sequenceFlow id="i2" sourceRef="fork" targetRef="wait"/>
        <sequenceFlow id="i3" sourceRef="fork" targetRef="check"/>
        <userTask id="wait" camunda:assignee="\${limit}"/>
        <userTask id="check"/>
        <sequenceFlow id="i4" sourceRef="check" targetRef="kill"/>
        <endEvent id="kill"><terminateEventDefinition/></endEvent>
      </subProcess>
      <sequenceFlow id="f2" sourceRef="sub" targetRef="after"/>
      <userTask id="after"/>
      <sequenceFlow id="f3" sourceRef="after" targetRef="e"/><endEvent id="e"/>`);
    const instance = await startProcess(as.admin, 'scopes_io', { amount: 21 });
    expect((await openTask(as.admin, instance.id, 'wait')).assignee).toBe('42');
    expect((await getInstance(as.admin, instance.id)).variables).toEqual({ amount: 21 });
    // the tasks inside show the subprocess's local (their users see what the model's expressions saw)
    const { rows: locals } = await as.admin.query('select element_id, local_variables from bpm.user_task where instance_id = $1 order by element_id', [instance.id]);
    expect(locals).toEqual([{ element_id: 'check', local_variables: { limit: 42 } }, { element_id: 'wait', local_variables: { limit: 42 } }]);
    await completeTask(as.admin, (await openTask(as.admin, instance.id, 'check')).id);
    const tasks = await userTasks(as.admin, instance.id);
    expect(tasks.find((t) => t.element_id === 'wait')?.state).toBe('cancelled');
    expect(tasks.find((t) => t.element_id === 'after')?.state).toBe('open');
    const after = await getInstance(as.admin, instance.id);
    expect(after.state).toBe('active');
    expect(after.variables).toEqual({ amount: 21, result: 43 });
  });

  test('variables of a task completed inside a subprocess update the subprocess\'s local of that name; other names go to the instance', async () => {
    await deployProcess(as.admin, 'scopes_completion_vars', `
      <startEvent id="s"/><sequenceFlow id="f1" sourceRef="s" targetRef="sub"/>
      <subProcess id="sub">
        <extensionElements><camunda:inputOutput>
          <camunda:inputParameter name="limit">\${amount * 10}</camunda:inputParameter>
          <camunda:outputParameter name="final_limit">\${limit}</camunda:outputParameter>
        </camunda:inputOutput></extensionElements>
        <startEvent id="is"/><sequenceFlow id="i1" sourceRef="is" targetRef="adjust"/>
        <userTask id="adjust"/><sequenceFlow id="i2" sourceRef="adjust" targetRef="check"/>
        <userTask id="check" camunda:assignee="\${limit}"/><sequenceFlow id="i3" sourceRef="check" targetRef="ie"/><endEvent id="ie"/>
      </subProcess>
      <sequenceFlow id="f2" sourceRef="sub" targetRef="after"/>
      <userTask id="after"/><sequenceFlow id="f3" sourceRef="after" targetRef="e"/><endEvent id="e"/>`);
    const instance = await startProcess(as.admin, 'scopes_completion_vars', { amount: 2 });
    await completeTask(as.admin, (await openTask(as.admin, instance.id, 'adjust')).id, { limit: 7, note: 'raised' });
    // the subprocess's own limit changed (the next task sees it); note, unknown inside, went to the instance
    expect((await openTask(as.admin, instance.id, 'check')).assignee).toBe('7');
    expect((await getInstance(as.admin, instance.id)).variables).toEqual({ amount: 2, note: 'raised' });
    await completeTask(as.admin, (await openTask(as.admin, instance.id, 'check')).id);
    expect((await getInstance(as.admin, instance.id)).variables).toEqual({ amount: 2, note: 'raised', final_limit: 7 });
  });

  test('the conditions on a task\'s outgoing flows see the subprocess\'s locals when the task completes', async () => {
    await deployProcess(as.admin, 'scopes_local_conditions', `
      <startEvent id="s"/><sequenceFlow id="f1" sourceRef="s" targetRef="sub"/>
      <subProcess id="sub">
        <extensionElements><camunda:inputOutput>
          <camunda:inputParameter name="limit">\${amount * 10}</camunda:inputParameter>
        </camunda:inputOutput></extensionElements>
        <startEvent id="is"/><sequenceFlow id="i1" sourceRef="is" targetRef="check"/>
        <userTask id="check" default="small"/>
        <sequenceFlow id="big" sourceRef="check" targetRef="approve"><conditionExpression>\${limit > 100}</conditionExpression></sequenceFlow>
        <sequenceFlow id="small" sourceRef="check" targetRef="ie"/>
        <userTask id="approve"/><sequenceFlow id="i2" sourceRef="approve" targetRef="ie"/><endEvent id="ie"/>
      </subProcess>
      <sequenceFlow id="f2" sourceRef="sub" targetRef="e"/><endEvent id="e"/>`);
    const big = await startProcess(as.admin, 'scopes_local_conditions', { amount: 20 });
    await completeTask(as.admin, (await openTask(as.admin, big.id, 'check')).id);
    expect((await openTasks(big.id)).map((t) => t.element_id)).toEqual(['approve']);
    const small = await startProcess(as.admin, 'scopes_local_conditions', { amount: 2 });
    await completeTask(as.admin, (await openTask(as.admin, small.id, 'check')).id);
    expect((await getInstance(as.admin, small.id)).state).toBe('completed');
  });

  test('an error end event in a nested subprocess propagates outward to the matching boundary, cancelling both scopes', async () => {
    await deployDefs(as.admin, 'scopes_error', `<error id="E1" errorCode="E-1"/><error id="E2" errorCode="E-2"/>`, `
      <startEvent id="s"/><sequenceFlow id="f1" sourceRef="s" targetRef="outer"/>
      <subProcess id="outer">
        <startEvent id="os"/><sequenceFlow id="o1" sourceRef="os" targetRef="ofork"/>
        <parallelGateway id="ofork"/>
        <sequenceFlow id="o2" sourceRef="ofork" targetRef="inner"/>
        <sequenceFlow id="o3" sourceRef="ofork" targetRef="sibling"/>
        <userTask id="sibling"/>
        <subProcess id="inner">
          <startEvent id="is"/><sequenceFlow id="i1" sourceRef="is" targetRef="work"/>
          <userTask id="work"/><sequenceFlow id="i2" sourceRef="work" targetRef="fail"/>
          <endEvent id="fail"><errorEventDefinition errorRef="E1"/></endEvent>
        </subProcess>
        <boundaryEvent id="wrongCode" attachedToRef="inner"><errorEventDefinition errorRef="E2"/></boundaryEvent>
        <sequenceFlow id="o4" sourceRef="wrongCode" targetRef="wrongEnd"/><endEvent id="wrongEnd"/>
      </subProcess>
      <boundaryEvent id="caught" attachedToRef="outer"><errorEventDefinition errorRef="E1"/></boundaryEvent>
      <sequenceFlow id="f2" sourceRef="caught" targetRef="handle"/>
      <userTask id="handle"/><sequenceFlow id="f3" sourceRef="handle" targetRef="e"/><endEvent id="e"/>`);
    const instance = await startProcess(as.admin, 'scopes_error');
    await completeTask(as.admin, (await openTask(as.admin, instance.id, 'work')).id);
    const tasks = await userTasks(as.admin, instance.id);
    expect(tasks.map((t) => [t.element_id, t.state]).sort()).toEqual([['handle', 'open'], ['sibling', 'cancelled'], ['work', 'completed']]);
    const { rows } = await as.admin.query(`select element_id, state from bpm.activity_instance where instance_id = $1 and element_id in ('inner', 'outer') order by element_id`, [instance.id]);
    expect(rows).toEqual([{ element_id: 'inner', state: 'cancelled' }, { element_id: 'outer', state: 'cancelled' }]);
    const { rows: events } = await as.admin.query(`select kind, element_id from bpm.event where instance_id = $1 and kind = 'errorCaught'`, [instance.id]);
    expect(events).toEqual([{ kind: 'errorCaught', element_id: 'caught' }]);
  });
});

describe('event subprocess', () => {
  test('a non-interrupting message event subprocess fires twice while the main path continues', async () => {
    const instance = await startProcess(as.admin, 'scopes-event-subprocess', { owner: 'alice' }, 'order-7');
    await as.admin.query(`select bpm.correlate_message('order-update', 'order-7', '{"update": 1}')`);
    await as.admin.query(`select bpm.correlate_message('order-update', 'order-7', '{"update": 2}')`);
    const tasks = await openTasks(instance.id);
    expect(tasks.map((t) => t.element_id).sort()).toEqual(['NoteUpdate', 'NoteUpdate', 'Work']);
    for (const t of tasks.filter((x) => x.element_id === 'NoteUpdate')) await completeTask(as.admin, t.id);
    expect((await getInstance(as.admin, instance.id)).state).toBe('active');
    await completeTask(as.admin, (await openTask(as.admin, instance.id, 'Work')).id);
    expect((await getInstance(as.admin, instance.id)).state).toBe('completed');
    expect(await subscriptions(instance.id)).toEqual([]);
  });

  test('an instance that completes closes its process-level timer event subprocess: subscription and job gone', async () => {
    await deployProcess(as.admin, 'scopes_esp_timer_done', `
      <startEvent id="s"/><sequenceFlow id="f1" sourceRef="s" targetRef="work"/><userTask id="work"/>
      <sequenceFlow id="f2" sourceRef="work" targetRef="e"/><endEvent id="e"/>
      <subProcess id="remind" triggeredByEvent="true">
        <startEvent id="rs" isInterrupting="false"><timerEventDefinition><timeDuration>P30D</timeDuration></timerEventDefinition></startEvent>
        <sequenceFlow id="r1" sourceRef="rs" targetRef="nudge"/><userTask id="nudge"/>
      </subProcess>`);
    const instance = await startProcess(as.admin, 'scopes_esp_timer_done');
    const subs = await subscriptions(instance.id);
    expect(subs.map((s) => [s.kind, s.element_id])).toEqual([['timer', 'rs']]);
    expect(await timerJobs(subs.map((s) => s.id))).toBe(1);
    await completeTask(as.admin, (await openTask(as.admin, instance.id, 'work')).id);
    expect((await getInstance(as.admin, instance.id)).state).toBe('completed');
    expect(await subscriptions(instance.id)).toEqual([]);
    expect(await timerJobs(subs.map((s) => s.id))).toBe(0);
  });

  test('an interrupting error event subprocess of a subprocess cancels the subprocess\'s other tokens', async () => {
    await deployDefs(as.admin, 'scopes_esp_error', `<error id="E9" errorCode="E-9"/>`, `
      <startEvent id="s"/><sequenceFlow id="f1" sourceRef="s" targetRef="sub"/>
      <subProcess id="sub">
        <startEvent id="is"/><sequenceFlow id="i1" sourceRef="is" targetRef="fork"/>
        <parallelGateway id="fork"/>
        <sequenceFlow id="i2" sourceRef="fork" targetRef="a"/>
        <sequenceFlow id="i3" sourceRef="fork" targetRef="b"/>
        <userTask id="a"/><userTask id="b"/>
        <sequenceFlow id="i4" sourceRef="b" targetRef="boom"/>
        <endEvent id="boom"><errorEventDefinition errorRef="E9"/></endEvent>
        <subProcess id="onError" triggeredByEvent="true">
          <startEvent id="es"><errorEventDefinition errorRef="E9"/></startEvent>
          <sequenceFlow id="e1" sourceRef="es" targetRef="fix"/>
          <userTask id="fix"/><sequenceFlow id="e2" sourceRef="fix" targetRef="ee"/><endEvent id="ee"/>
        </subProcess>
      </subProcess>
      <sequenceFlow id="f2" sourceRef="sub" targetRef="done"/><endEvent id="done"/>`);
    const instance = await startProcess(as.admin, 'scopes_esp_error');
    await completeTask(as.admin, (await openTask(as.admin, instance.id, 'b')).id);
    const tasks = await userTasks(as.admin, instance.id);
    expect(tasks.map((t) => [t.element_id, t.state]).sort()).toEqual([['a', 'cancelled'], ['b', 'completed'], ['fix', 'open']]);
    await completeTask(as.admin, (await openTask(as.admin, instance.id, 'fix')).id);
    expect((await getInstance(as.admin, instance.id)).state).toBe('completed');
  });
});

describe('multi-instance', () => {
  test('parallel over 100 voters with completion at 60: the remaining 40 are cancelled, the output holds the 60 results in input order', async () => {
    const voters = Array.from({ length: 100 }, (_, i) => `v${i}`);
    const instance = await startProcess(as.admin, 'scopes-multi-instance', { voters });
    const tasks = await openTasks(instance.id);
    expect(tasks).toHaveLength(100);
    const byAssignee = new Map((await userTasks(as.admin, instance.id)).map((t) => [t.assignee, t.id]));
    // complete in a scrambled order: voters 99, 97, … (odd, descending), then even ones
    const order = [...voters.filter((_, i) => i % 2 === 1).reverse(), ...voters.filter((_, i) => i % 2 === 0)].slice(0, 60);
    for (const v of order) await completeTask(as.admin, byAssignee.get(v)!, { approved: `yes-${v}` });
    const after = await userTasks(as.admin, instance.id);
    expect(after.filter((t) => t.state === 'completed')).toHaveLength(60);
    expect(after.filter((t) => t.state === 'cancelled')).toHaveLength(40);
    const done = await getInstance(as.admin, instance.id);
    expect(done.state).toBe('completed');
    const expected = voters.filter((v) => order.includes(v)).map((v) => `yes-${v}`);
    expect(done.variables.votes).toEqual(expected);
  });

  test('a parallel multi-instance user task with nothing to evaluate (all inner instances made at once): 100 tasks, completion condition at 60 %, outputs in input order', async () => {
    await deployDefs(as.admin, 'scopes_mi_plain', ``, `
      <startEvent id="s"/><sequenceFlow id="f1" sourceRef="s" targetRef="vote"/>
      <userTask id="vote" name="Vote">
        <extensionElements><camunda:properties>
          <camunda:property name="pgbpm:outputCollection" value="ballots"/>
          <camunda:property name="pgbpm:outputElement" value="\${voter * 100000 + loopCounter * 1000 + nrOfInstances}"/>
        </camunda:properties></extensionElements>
        <multiInstanceLoopCharacteristics camunda:collection="voters" camunda:elementVariable="voter">
          <completionCondition>\${nrOfCompletedInstances >= 60}</completionCondition>
        </multiInstanceLoopCharacteristics>
      </userTask>
      <sequenceFlow id="f2" sourceRef="vote" targetRef="e"/><endEvent id="e"/>`);
    const voters = Array.from({ length: 100 }, (_, i) => 100 + i);
    const instance = await startProcess(as.admin, 'scopes_mi_plain', { voters });
    const { rows: created } = await as.admin.query<{ id: string; name: string; assignee: string | null }>(
      `select t.id, t.name, t.assignee from bpm.user_task t join bpm.activity_instance a on a.tenant_id = t.tenant_id and a.id = t.id
       where t.instance_id = $1 order by a.seq`, [instance.id]);
    expect(created).toHaveLength(100);
    expect(new Set(created.map((t) => `${t.name}/${t.assignee}`))).toEqual(new Set(['Vote/null']));
    // each task shows its voter and loop counter (its local variables), in creation order
    const { rows: locals } = await as.admin.query<{ local_variables: unknown }>(
      `select t.local_variables from bpm.user_task t join bpm.activity_instance a on a.tenant_id = t.tenant_id and a.id = t.id
       where t.instance_id = $1 order by a.seq`, [instance.id]);
    expect(locals.map((r) => r.local_variables)).toEqual(voters.map((voter, i) => ({ voter, loopCounter: i, nrOfInstances: 100 })));
    expect(await history(as.admin, instance.id)).toEqual([
      's startEvent completed',
      'vote multiInstanceBody active',
      ...Array(100).fill('vote userTask active'),
    ]);
    // the last 60 created complete first, in reverse: the output keeps input order
    for (const task of created.slice(40).reverse()) await completeTask(as.admin, task.id);
    const done = await getInstance(as.admin, instance.id);
    expect(done.state).toBe('completed');
    // element variable, loopCounter and nrOfInstances of each completed inner instance
    expect(done.variables.ballots).toEqual(voters.slice(40).map((v, i) => v * 100000 + (i + 40) * 1000 + 100));
    const after = await history(as.admin, instance.id);
    expect(after.filter((r) => r === 'vote userTask cancelled')).toHaveLength(40);
    expect(after.filter((r) => r === 'vote userTask completed')).toHaveLength(60);
    expect((await openTasks(instance.id))).toEqual([]);
  });

  test('a parallel multi-instance service task (all inner instances made at once): one external task each, the element variable sent to the worker, outputs in input order', async () => {
    await deployDefs(as.admin, 'scopes_mi_ext', ``, `
      <startEvent id="s"/><sequenceFlow id="f1" sourceRef="s" targetRef="notify"/>
      <serviceTask id="notify" camunda:type="external" camunda:topic="scopes-mi-notify">
        <extensionElements><camunda:properties>
          <camunda:property name="pgbpm:outputCollection" value="receipts"/>
          <camunda:property name="pgbpm:outputElement" value="\${receipt}"/>
        </camunda:properties></extensionElements>
        <multiInstanceLoopCharacteristics camunda:collection="recipients" camunda:elementVariable="recipient"/>
      </serviceTask>
      <sequenceFlow id="f2" sourceRef="notify" targetRef="e"/><endEvent id="e"/>`);
    const instance = await startProcess(as.admin, 'scopes_mi_ext', { recipients: [7, 8, 9] });
    const { rows: locked } = await as.engine.query<{ id: string; variables: { loopCounter: number } }>('select * from bpm.fetch_and_lock($1, $2, 10)', ['scopes-mi-notify', 'w-mi']);
    expect(locked).toHaveLength(3);
    // each worker sees its recipient and loop counter on top of the instance's variables
    expect(locked.map((t) => t.variables).sort((a, b) => a.loopCounter - b.loopCounter)).toEqual([7, 8, 9].map((recipient, i) => ({
      recipients: [7, 8, 9], recipient, loopCounter: i, nrOfInstances: 3,
    })));
    // complete in reverse: each reports its receipt; the output keeps input order
    for (const task of [...locked].reverse()) {
      await as.engine.query('select bpm.complete_external_task($1, $2, $3::jsonb)', [task.id, 'w-mi', JSON.stringify({ receipt: `r-${task.id}` })]);
    }
    const done = await getInstance(as.admin, instance.id);
    expect(done.state).toBe('completed');
    const inInputOrder = [...locked].sort((a, b) => a.variables.loopCounter - b.variables.loopCounter);
    expect(done.variables.receipts).toEqual(inInputOrder.map((t) => `r-${t.id}`));
  });

  test('sequential over a collection, with loopCounter; an empty collection skips the activity', async () => {
    await deployDefs(as.admin, 'scopes_seq', ``, `
      <startEvent id="s"/><sequenceFlow id="f1" sourceRef="s" targetRef="t"/>
      <userTask id="t" camunda:assignee="\${item}">
        <extensionElements><camunda:properties>
          <camunda:property name="pgbpm:outputCollection" value="out"/>
          <camunda:property name="pgbpm:outputElement" value="\${loopCounter}"/>
        </camunda:properties></extensionElements>
        <multiInstanceLoopCharacteristics isSequential="true" camunda:collection="items" camunda:elementVariable="item"/>
      </userTask>
      <sequenceFlow id="f2" sourceRef="t" targetRef="e"/><endEvent id="e"/>`);
    const instance = await startProcess(as.admin, 'scopes_seq', { items: ['a', 'b', 'c'] });
    for (const expected of ['a', 'b', 'c']) {
      const open = await openTasks(instance.id);
      expect(open).toHaveLength(1);
      expect((await openTask(as.admin, instance.id, 't')).assignee).toBe(expected);
      await completeTask(as.admin, open[0].id);
    }
    const done = await getInstance(as.admin, instance.id);
    expect(done.state).toBe('completed');
    expect(done.variables.out).toEqual([0, 1, 2]);
    const empty = await startProcess(as.admin, 'scopes_seq', { items: [] });
    expect(empty.state).toBe('completed');
    expect((await getInstance(as.admin, empty.id)).variables.out).toEqual([]);
  });

  test('a parallel multi-instance subprocess keeps each inner instance\'s element variable; cardinality works', async () => {
    await deployProcess(as.admin, 'scopes_mi_sub', `
      <startEvent id="s"/><sequenceFlow id="f1" sourceRef="s" targetRef="sub"/>
      <subProcess id="sub">
        <multiInstanceLoopCharacteristics camunda:collection="\${items}" camunda:elementVariable="item"/>
        <startEvent id="is"/><sequenceFlow id="i1" sourceRef="is" targetRef="fork"/>
        <parallelGateway id="fork"/>
        <sequenceFlow id="i2" sourceRef="fork" targetRef="x"/><sequenceFlow id="i3" sourceRef="fork" targetRef="y"/>
        <userTask id="x" camunda:assignee="\${item}"/><userTask id="y" camunda:assignee="\${item}"/>
        <sequenceFlow id="i4" sourceRef="x" targetRef="join"/><sequenceFlow id="i5" sourceRef="y" targetRef="join"/>
        <parallelGateway id="join"/><sequenceFlow id="i6" sourceRef="join" targetRef="ie"/><endEvent id="ie"/>
      </subProcess>
      <sequenceFlow id="f2" sourceRef="sub" targetRef="e"/><endEvent id="e"/>`);
    const instance = await startProcess(as.admin, 'scopes_mi_sub', { items: ['p', 'q'] });
    const tasks = await userTasks(as.admin, instance.id);
    expect(tasks.map((t) => `${t.element_id}:${t.assignee}`).sort()).toEqual(['x:p', 'x:q', 'y:p', 'y:q']);
    // finish p's x and q's y: neither inner join may fire with the other's token
    await completeTask(as.admin, tasks.find((t) => t.element_id === 'x' && t.assignee === 'p')!.id);
    await completeTask(as.admin, tasks.find((t) => t.element_id === 'y' && t.assignee === 'q')!.id);
    expect((await getInstance(as.admin, instance.id)).state).toBe('active');
    await completeTask(as.admin, tasks.find((t) => t.element_id === 'y' && t.assignee === 'p')!.id);
    expect((await getInstance(as.admin, instance.id)).state).toBe('active');
    await completeTask(as.admin, tasks.find((t) => t.element_id === 'x' && t.assignee === 'q')!.id);
    expect((await getInstance(as.admin, instance.id)).state).toBe('completed');
  });

  test('a parallel multi-instance subprocess\'s input mappings see each inner instance\'s loop variables (all opened in one step)', async () => {
    await deployProcess(as.admin, 'scopes_mi_sub_inputs', `
      <startEvent id="s"/><sequenceFlow id="f1" sourceRef="s" targetRef="sub"/>
      <subProcess id="sub">
        <multiInstanceLoopCharacteristics camunda:collection="\${items}" camunda:elementVariable="item"/>
        <extensionElements><camunda:inputOutput>
          <camunda:inputParameter name="label">\${item}-\${loopCounter}</camunda:inputParameter>
          <camunda:inputParameter name="active">\${nrOfActiveInstances}</camunda:inputParameter>
          <camunda:inputParameter name="of">\${nrOfInstances}</camunda:inputParameter>
        </camunda:inputOutput></extensionElements>
        <startEvent id="is"/><sequenceFlow id="i1" sourceRef="is" targetRef="t"/>
        <userTask id="t" camunda:assignee="\${label}"/><sequenceFlow id="i2" sourceRef="t" targetRef="ie"/><endEvent id="ie"/>
      </subProcess>
      <sequenceFlow id="f2" sourceRef="sub" targetRef="e"/><endEvent id="e"/>`);
    const instance = await startProcess(as.admin, 'scopes_mi_sub_inputs', { items: ['p', 'q', 'r'] });
    const tasks = await userTasks(as.admin, instance.id);
    expect(tasks.map((t) => [t.assignee, t.local_variables])).toEqual([
      ['p-0', { label: 'p-0', active: 1, of: 3, item: 'p', loopCounter: 0, nrOfInstances: 3 }],
      ['q-1', { label: 'q-1', active: 2, of: 3, item: 'q', loopCounter: 1, nrOfInstances: 3 }],
      ['r-2', { label: 'r-2', active: 3, of: 3, item: 'r', loopCounter: 2, nrOfInstances: 3 }],
    ]);
    const { rows } = await as.admin.query(`select element_id, element_type, state from bpm.activity_instance where instance_id = $1 and element_id in ('sub', 'is') order by seq`, [instance.id]);
    expect(rows.map((r) => `${r.element_id} ${r.element_type} ${r.state}`)).toEqual([
      'sub multiInstanceBody active', 'sub subProcess active', 'sub subProcess active', 'sub subProcess active',
      'is startEvent completed', 'is startEvent completed', 'is startEvent completed',
    ]);
    for (const t of tasks) await completeTask(as.admin, t.id);
    expect((await getInstance(as.admin, instance.id)).state).toBe('completed');
  });
});

describe('asynchronous inner instances (camunda:asyncBefore on the loop characteristics)', () => {
  /** The instance's waiting tokens, kind:element, sorted. */
  async function tokenKinds(instanceId: string): Promise<string[]> {
    const { rows } = await db.root.query<{ t: string }>(`select kind || ':' || element_id as t from bpm_private.token where instance_id = $1 order by 1`, [instanceId]);
    return rows.map((r) => r.t);
  }
  /** Continues one waiting inner instance (as the worker's bpm_continue job does) and returns its token id. */
  async function continueOne(instanceId: string, lastAttempt = true): Promise<string> {
    const { rows: [token] } = await db.root.query<{ id: string }>(
      `select id from bpm_private.token where instance_id = $1 and kind = 'asyncBefore' order by id limit 1`, [instanceId]);
    await as.engine.query('select bpm.continue_async($1, $2)', [token.id, lastAttempt]);
    return token.id;
  }
  const body = (loop: string, activity = ''): string => `
      <startEvent id="s"/><sequenceFlow id="f1" sourceRef="s" targetRef="review"/>
      <userTask id="review" camunda:assignee="\${reviewer}"${activity}>
        <multiInstanceLoopCharacteristics ${loop} camunda:asyncBefore="true" camunda:collection="reviewers" camunda:elementVariable="reviewer"/>
      </userTask>
      <sequenceFlow id="f2" sourceRef="review" targetRef="e"/><endEvent id="e"/>`;

  test('parallel: the body opens in the caller\'s transaction; each inner instance waits for a job of its own, then runs with its element variable', async () => {
    await deployDefs(as.admin, 'scopes_mi_async', '', body('isSequential="false"'));
    const instance = await startProcess(as.admin, 'scopes_mi_async', { reviewers: ['ann', 'bob', 'cid'] });
    expect(await tokenKinds(instance.id)).toEqual(['asyncBefore:review', 'asyncBefore:review', 'asyncBefore:review', 'body:review']);
    expect(await history(as.admin, instance.id)).toEqual([
      's startEvent completed', 'review multiInstanceBody active', 'review userTask active', 'review userTask active', 'review userTask active',
    ]);
    expect(await openTasks(instance.id)).toEqual([]);
    // one bpm_continue job per inner instance
    const { rows: jobs } = await db.root.query(`select 1 from graphile_worker.jobs j join bpm_private.token t on j.key = 'bpm-async:' || t.id::text where t.instance_id = $1`, [instance.id]);
    expect(jobs).toHaveLength(3);
    for (let i = 0; i < 3; i++) await continueOne(instance.id);
    const tasks = await userTasks(as.admin, instance.id);
    expect(tasks.map((t) => t.assignee).sort()).toEqual(['ann', 'bob', 'cid']);
    expect(await tokenKinds(instance.id)).toEqual(['body:review']);
    for (const t of tasks) await completeTask(as.admin, t.id);
    expect((await getInstance(as.admin, instance.id)).state).toBe('completed');
    // one history row per inner instance, though each waited before it ran
    expect(await history(as.admin, instance.id)).toEqual([
      's startEvent completed', 'review multiInstanceBody completed', 'review userTask completed', 'review userTask completed', 'review userTask completed',
      'e endEvent completed',
    ]);
  });

  test('sequential: each next inner instance waits for its job too', async () => {
    await deployDefs(as.admin, 'scopes_mi_async_seq', '', body('isSequential="true"'));
    const instance = await startProcess(as.admin, 'scopes_mi_async_seq', { reviewers: ['ann', 'bob'] });
    for (const reviewer of ['ann', 'bob']) {
      expect(await tokenKinds(instance.id)).toEqual(['asyncBefore:review', 'body:review']);
      expect(await openTasks(instance.id)).toEqual([]);
      await continueOne(instance.id);
      const [task] = await openTasks(instance.id);
      expect((await userTasks(as.admin, instance.id)).find((t) => t.id === task.id)?.assignee).toBe(reviewer);
      await completeTask(as.admin, task.id);
    }
    expect((await getInstance(as.admin, instance.id)).state).toBe('completed');
  });

  test('a completion condition that holds cancels the inner instances still waiting for their jobs; those jobs then do nothing', async () => {
    await deployDefs(as.admin, 'scopes_mi_async_early', '', body('isSequential="false"')
      .replace('camunda:elementVariable="reviewer"/>', 'camunda:elementVariable="reviewer"><completionCondition>${nrOfCompletedInstances >= 1}</completionCondition></multiInstanceLoopCharacteristics>'));
    const instance = await startProcess(as.admin, 'scopes_mi_async_early', { reviewers: ['ann', 'bob', 'cid'] });
    const { rows: waiting } = await db.root.query<{ id: string }>(`select id from bpm_private.token where instance_id = $1 and kind = 'asyncBefore' order by id`, [instance.id]);
    expect(waiting).toHaveLength(3);
    await continueOne(instance.id);
    const [task] = await openTasks(instance.id);
    await completeTask(as.admin, task.id);
    expect((await getInstance(as.admin, instance.id)).state).toBe('completed');
    expect(await tokenKinds(instance.id)).toEqual([]);
    // the jobs of the two that never ran find nothing to continue
    for (const t of waiting.slice(1)) {
      const { rows: [r] } = await as.engine.query<{ id: string | null }>('select (bpm.continue_async($1)).id', [t.id]);
      expect(r.id).toBeNull();
    }
    // (the inner rows in any order: which one ran depends on the token ids)
    const rows = await history(as.admin, instance.id);
    expect([rows[0], rows[1], rows[5]]).toEqual(['s startEvent completed', 'review multiInstanceBody completed', 'e endEvent completed']);
    expect(rows.slice(2, 5).sort()).toEqual(['review userTask cancelled', 'review userTask cancelled', 'review userTask completed']);
  });

  test('with camunda:asyncBefore on the activity as well, the body waits first; an inner instance whose continuation fails becomes an incident of its own', async () => {
    await deployDefs(as.admin, 'scopes_mi_async_both', '', body('isSequential="false"', ' camunda:asyncBefore="true"')
      .replace('camunda:assignee="${reviewer}"', 'camunda:assignee="${reviewer.name}" camunda:dueDate="${reviewer.due}"'));
    // the second reviewer's due date is no date: that inner instance cannot be created, and its continuation fails alone
    const instance = await startProcess(as.admin, 'scopes_mi_async_both', { reviewers: [{ name: 'ann', due: 'P1D' }, { name: 'bob', due: 'soon' }] });
    expect(await tokenKinds(instance.id)).toEqual(['asyncBefore:review']);
    await continueOne(instance.id);
    expect(await tokenKinds(instance.id)).toEqual(['asyncBefore:review', 'asyncBefore:review', 'body:review']);
    await continueOne(instance.id);
    await continueOne(instance.id);
    const tasks = await userTasks(as.admin, instance.id);
    expect(tasks.map((t) => [t.state, t.assignee])).toEqual([['open', 'ann']]);
    const { rows: incidents } = await as.admin.query(`select incident_type, element_id, message from bpm.incident where instance_id = $1`, [instance.id]);
    expect(incidents).toEqual([{ incident_type: 'failedJob', element_id: 'review', message: expect.stringMatching(/asynchronous continuation asyncBefore of element review failed/) }]);
    expect(await tokenKinds(instance.id)).toEqual(['asyncBefore:review', 'body:review']);
  });
});

describe('call activity', () => {
  test('a chain of depth 3 maps variables down and up', async () => {
    const parent = await startProcess(as.admin, 'scopes-call-parent', { orderId: 'o-1', amount: 5 }, 'bk-1');
    const { rows: chain } = await as.admin.query(
      `with recursive c as (select id, parent_instance_id, business_key, variables, 1 as depth from bpm.process_instance where id = $1
         union all select i.id, i.parent_instance_id, i.business_key, i.variables, c.depth + 1 from bpm.process_instance i join c on i.parent_instance_id = c.id)
       select * from c order by depth`, [parent.id]);
    expect(chain).toHaveLength(3);
    expect(chain[1].business_key).toBe('bk-1');
    expect(chain[1].variables).toEqual({ orderId: 'o-1', doubled: 10 });
    expect(chain[2].variables).toEqual({ orderId: 'o-1', value: 11 });
    const work = await openTask(as.admin, chain[2].id, 'Work');
    await completeTask(as.admin, work.id);
    expect((await getInstance(as.admin, chain[2].id)).state).toBe('completed');
    expect((await getInstance(as.admin, chain[1].id)).state).toBe('completed');
    const top = await getInstance(as.admin, parent.id);
    expect(top.variables.result).toBe(11);
    expect((await openTask(as.admin, parent.id, 'Check'))).toBeDefined();
  });

  test('cancelling the top instance cancels all three', async () => {
    const parent = await startProcess(as.admin, 'scopes-call-parent', { orderId: 'o-2', amount: 1 });
    await as.admin.query('select bpm.cancel_process_instance($1)', [parent.id]);
    const { rows } = await as.admin.query(
      `with recursive c as (select id, state from bpm.process_instance where id = $1
         union all select i.id, i.state from bpm.process_instance i join c on i.parent_instance_id = c.id) select state from c`, [parent.id]);
    expect(rows.map((r) => r.state)).toEqual(['cancelled', 'cancelled', 'cancelled']);
  });

  test('a BPMN error of the child reaches the parent\'s boundary; an unknown called process is refused with BP311', async () => {
    await deployDefs(as.admin, 'scopes_failing_child', `<error id="EC" errorCode="CHILD-FAILED"/>`, `
      <startEvent id="s"/><sequenceFlow id="f1" sourceRef="s" targetRef="w"/>
      <userTask id="w"/><sequenceFlow id="f2" sourceRef="w" targetRef="err"/>
      <endEvent id="err"><errorEventDefinition errorRef="EC"/></endEvent>`);
    await deployDefs(as.admin, 'scopes_calls_failing', `<error id="EP" errorCode="CHILD-FAILED"/>`, `
      <startEvent id="s"/><sequenceFlow id="f1" sourceRef="s" targetRef="call"/>
      <callActivity id="call" calledElement="scopes_failing_child"/>
      <boundaryEvent id="onFail" attachedToRef="call"><errorEventDefinition errorRef="EP"/></boundaryEvent>
      <sequenceFlow id="f2" sourceRef="call" targetRef="ok"/><endEvent id="ok"/>
      <sequenceFlow id="f3" sourceRef="onFail" targetRef="handle"/><userTask id="handle"/>`);
    const parent = await startProcess(as.admin, 'scopes_calls_failing');
    const { rows: [child] } = await as.admin.query('select id from bpm.process_instance where parent_instance_id = $1', [parent.id]);
    await completeTask(as.admin, (await openTask(as.admin, child.id, 'w')).id);
    expect((await openTask(as.admin, parent.id, 'handle'))).toBeDefined();
    await deployProcess(as.admin, 'scopes_calls_nothing', `
      <startEvent id="s"/><sequenceFlow id="f1" sourceRef="s" targetRef="call"/>
      <callActivity id="call" calledElement="no_such_process"/>
      <sequenceFlow id="f2" sourceRef="call" targetRef="e"/><endEvent id="e"/>`);
    await expect(startProcess(as.admin, 'scopes_calls_nothing')).rejects.toMatchObject({ code: 'BP311' });
  });
});

describe('call activity edge cases', () => {
  test('an error of the child nobody catches: incident on the call activity; retry_incident throws it again', async () => {
    await deployDefs(as.admin, 'scopes_child_fails', '<error id="EF" errorCode="FATAL"/>', `
      <startEvent id="s"/><sequenceFlow id="f1" sourceRef="s" targetRef="w"/><userTask id="w"/>
      <sequenceFlow id="f2" sourceRef="w" targetRef="err"/><endEvent id="err"><errorEventDefinition errorRef="EF"/></endEvent>`);
    await deployProcess(as.admin, 'scopes_calls_unguarded', `
      <startEvent id="s"/><sequenceFlow id="f1" sourceRef="s" targetRef="call"/>
      <callActivity id="call" calledElement="scopes_child_fails"/>
      <sequenceFlow id="f2" sourceRef="call" targetRef="e"/><endEvent id="e"/>`);
    const parent = await startProcess(as.admin, 'scopes_calls_unguarded');
    const { rows: [child] } = await as.admin.query('select id from bpm.process_instance where parent_instance_id = $1', [parent.id]);
    await completeTask(as.admin, (await openTask(as.admin, child.id, 'w')).id);
    const incidents = async (): Promise<{ id: string; element_id: string; message: string; resolved_at: string | null }[]> =>
      (await as.admin.query('select id, element_id, message, resolved_at from bpm.incident where instance_id = $1 order by created_at', [parent.id])).rows;
    const [first] = await incidents();
    expect(first).toMatchObject({ element_id: 'call', resolved_at: null });
    expect(first.message).toMatch(/BPMN error FATAL thrown by element err of called instance .* is not caught/);
    expect((await getInstance(as.admin, parent.id)).state).toBe('active');
    await as.admin.query('select bpm.retry_incident($1)', [first.id]);
    const after = await incidents();
    expect(after).toHaveLength(2);
    expect(after[0].resolved_at).not.toBeNull();
    expect(after[1]).toMatchObject({ element_id: 'call', resolved_at: null });
    expect((await getInstance(as.admin, parent.id)).state).toBe('active');
  });

  test('a call activity cancelled in the run that entered it starts no child', async () => {
    await deployDefs(as.admin, 'scopes_call_target', '', `
      <startEvent id="s"/><sequenceFlow id="f1" sourceRef="s" targetRef="w"/><userTask id="w"/>`);
    await deployProcess(as.admin, 'scopes_call_then_terminate', `
      <startEvent id="s"/><sequenceFlow id="f1" sourceRef="s" targetRef="fork"/><parallelGateway id="fork"/>
      <sequenceFlow id="f2" sourceRef="fork" targetRef="call"/><sequenceFlow id="f3" sourceRef="fork" targetRef="kill"/>
      <callActivity id="call" calledElement="scopes_call_target"/>
      <endEvent id="kill"><terminateEventDefinition/></endEvent>`);
    const parent = await startProcess(as.admin, 'scopes_call_then_terminate');
    expect(parent.state).toBe('completed');
    const { rows } = await as.admin.query('select id from bpm.process_instance where parent_instance_id = $1', [parent.id]);
    expect(rows).toEqual([]);
  });
});

describe('call activity bindings, variables and limits', () => {
  test('binding version calls that version; variables="all" copies every variable down and up', async () => {
    const version = (task: string): string => `
      <startEvent id="s"/><sequenceFlow id="f1" sourceRef="s" targetRef="${task}"/><userTask id="${task}"/>
      <sequenceFlow id="f2" sourceRef="${task}" targetRef="e"/><endEvent id="e"/>`;
    const v1 = await deployProcess(as.admin, 'scopes_versioned', version('first'));
    await deployProcess(as.admin, 'scopes_versioned', version('second'));
    await deployProcess(as.admin, 'scopes_calls_v1', `
      <startEvent id="s"/><sequenceFlow id="f1" sourceRef="s" targetRef="call"/>
      <callActivity id="call" calledElement="scopes_versioned" camunda:calledElementBinding="version" camunda:calledElementVersion="${v1.version}">
        <extensionElements><camunda:in variables="all"/><camunda:out variables="all"/></extensionElements>
      </callActivity>
      <sequenceFlow id="f2" sourceRef="call" targetRef="after"/><userTask id="after"/>`);
    const parent = await startProcess(as.admin, 'scopes_calls_v1', { a: 1, nested: { b: [2] } });
    const { rows: [child] } = await as.admin.query('select id, variables from bpm.process_instance where parent_instance_id = $1', [parent.id]);
    expect(child.variables).toEqual({ a: 1, nested: { b: [2] } });
    await completeTask(as.admin, (await openTask(as.admin, child.id, 'first')).id, { fromChild: 'yes', a: 5 });
    expect((await getInstance(as.admin, parent.id)).variables).toEqual({ a: 5, nested: { b: [2] }, fromChild: 'yes' });
  });

  test('an escalation of the child reaches a non-interrupting escalation boundary of the call activity; the child goes on', async () => {
    await deployDefs(as.admin, 'scopes_child_escalates', '<escalation id="X" escalationCode="SLOW"/>', `
      <startEvent id="s"/><sequenceFlow id="f1" sourceRef="s" targetRef="raise"/>
      <intermediateThrowEvent id="raise"><escalationEventDefinition escalationRef="X"/></intermediateThrowEvent>
      <sequenceFlow id="f2" sourceRef="raise" targetRef="work"/><userTask id="work"/>
      <sequenceFlow id="f3" sourceRef="work" targetRef="e"/><endEvent id="e"/>`);
    await deployDefs(as.admin, 'scopes_calls_escalating', '<escalation id="X" escalationCode="SLOW"/>', `
      <startEvent id="s"/><sequenceFlow id="f1" sourceRef="s" targetRef="call"/>
      <callActivity id="call" calledElement="scopes_child_escalates"/>
      <boundaryEvent id="slow" attachedToRef="call" cancelActivity="false"><escalationEventDefinition escalationRef="X"/></boundaryEvent>
      <sequenceFlow id="f2" sourceRef="slow" targetRef="notify"/><userTask id="notify"/>
      <sequenceFlow id="f3" sourceRef="call" targetRef="e"/><endEvent id="e"/>`);
    const parent = await startProcess(as.admin, 'scopes_calls_escalating');
    expect((await openTasks(parent.id)).map((t) => t.element_id)).toEqual(['notify']);
    const { rows: [child] } = await as.admin.query('select id, state from bpm.process_instance where parent_instance_id = $1', [parent.id]);
    expect(child.state).toBe('active');
    await completeTask(as.admin, (await openTask(as.admin, child.id, 'work')).id);
    await completeTask(as.admin, (await openTask(as.admin, parent.id, 'notify')).id);
    expect((await getInstance(as.admin, parent.id)).state).toBe('completed');
  });

  test('a child that fails at once, with another branch still waiting: the caller\'s boundary takes the error and the child is cancelled', async () => {
    await deployDefs(as.admin, 'scopes_child_fails_at_once', '<error id="EN" errorCode="NOW"/>', `
      <startEvent id="s"/><sequenceFlow id="f1" sourceRef="s" targetRef="fork"/><parallelGateway id="fork"/>
      <sequenceFlow id="f2" sourceRef="fork" targetRef="wait"/><userTask id="wait"/>
      <sequenceFlow id="f3" sourceRef="fork" targetRef="fail"/><endEvent id="fail"><errorEventDefinition errorRef="EN"/></endEvent>`);
    await deployDefs(as.admin, 'scopes_calls_failing_at_once', '<error id="EN" errorCode="NOW"/>', `
      <startEvent id="s"/><sequenceFlow id="f1" sourceRef="s" targetRef="call"/>
      <callActivity id="call" calledElement="scopes_child_fails_at_once"/>
      <boundaryEvent id="failed" attachedToRef="call"><errorEventDefinition errorRef="EN"/></boundaryEvent>
      <sequenceFlow id="f2" sourceRef="failed" targetRef="handle"/><userTask id="handle"/>
      <sequenceFlow id="f3" sourceRef="call" targetRef="e"/><endEvent id="e"/>`);
    const parent = await startProcess(as.admin, 'scopes_calls_failing_at_once');
    expect((await openTasks(parent.id)).map((t) => t.element_id)).toEqual(['handle']);
    const { rows: [child] } = await as.admin.query('select id, state from bpm.process_instance where parent_instance_id = $1', [parent.id]);
    expect(child.state).toBe('cancelled');
    expect((await userTasks(as.admin, child.id)).map((t) => t.state)).toEqual(['cancelled']);
  });

  test('a process that calls itself without end is stopped at 32 nested calls with BP312, and nothing is left behind', async () => {
    await deployProcess(as.admin, 'scopes_recursive', `
      <startEvent id="s"/><sequenceFlow id="f1" sourceRef="s" targetRef="again"/>
      <callActivity id="again" calledElement="scopes_recursive"/>
      <sequenceFlow id="f2" sourceRef="again" targetRef="e"/><endEvent id="e"/>`);
    const before = (await as.admin.query('select count(*)::int as n from bpm.process_instance')).rows[0].n;
    await expect(startProcess(as.admin, 'scopes_recursive')).rejects.toMatchObject({ code: 'BP312', message: expect.stringMatching(/nested more than 32 deep/) });
    expect((await as.admin.query('select count(*)::int as n from bpm.process_instance')).rows[0].n).toBe(before);
  });

  test('a zeebe multi-instance with inputCollection, inputElement, outputCollection and outputElement', async () => {
    await deployProcess(as.admin, 'scopes_zeebe_mi', `
      <startEvent id="s"/><sequenceFlow id="f1" sourceRef="s" targetRef="t"/>
      <userTask id="t">
        <extensionElements><zeebe:assignmentDefinition assignee="=reviewer"/></extensionElements>
        <multiInstanceLoopCharacteristics isSequential="false">
          <extensionElements>
            <zeebe:loopCharacteristics inputCollection="=reviewers" inputElement="reviewer" outputCollection="verdicts" outputElement="=verdict"/>
          </extensionElements>
        </multiInstanceLoopCharacteristics>
      </userTask>
      <sequenceFlow id="f2" sourceRef="t" targetRef="e"/><endEvent id="e"/>`);
    const instance = await startProcess(as.admin, 'scopes_zeebe_mi', { reviewers: ['ann', 'bob'] });
    const tasks = await openTasks(instance.id);
    const byAssignee = new Map((await userTasks(as.admin, instance.id)).map((t) => [t.assignee, t.id]));
    expect(tasks).toHaveLength(2);
    await completeTask(as.admin, byAssignee.get('bob')!, { verdict: 'no' });
    await completeTask(as.admin, byAssignee.get('ann')!, { verdict: 'yes' });
    const done = await getInstance(as.admin, instance.id);
    expect(done.state).toBe('completed');
    expect(done.variables.verdicts).toEqual(['yes', 'no']);
  });
});

test('link events jump from the throw to the catch of the same name', async () => {
  const instance = await startProcess(as.admin, 'scopes-link');
  await completeTask(as.admin, (await openTask(as.admin, instance.id, 'First')).id);
  expect((await openTask(as.admin, instance.id, 'Second'))).toBeDefined();
  expect(await history(as.admin, instance.id)).toEqual(expect.arrayContaining(['GoToSecond intermediateThrowEvent completed', 'FromFirst intermediateCatchEvent completed']));
});

describe('inclusive joins in subprocess instances', () => {
  test('in a parallel multi-instance subprocess, each instance\'s inclusive join fires when its own branches are done', async () => {
    await deployProcess(as.admin, 'scopes_mi_inclusive', `
      <startEvent id="s"/><sequenceFlow id="f1" sourceRef="s" targetRef="sub"/>
      <subProcess id="sub">
        <multiInstanceLoopCharacteristics><loopCardinality>2</loopCardinality></multiInstanceLoopCharacteristics>
        <startEvent id="is"/><sequenceFlow id="i1" sourceRef="is" targetRef="fork"/>
        <inclusiveGateway id="fork"/>
        <sequenceFlow id="i2" sourceRef="fork" targetRef="a"><conditionExpression>\${true}</conditionExpression></sequenceFlow>
        <sequenceFlow id="i3" sourceRef="fork" targetRef="b"><conditionExpression>\${true}</conditionExpression></sequenceFlow>
        <userTask id="a"/><userTask id="b"/>
        <sequenceFlow id="i4" sourceRef="a" targetRef="join"/><sequenceFlow id="i5" sourceRef="b" targetRef="join"/>
        <inclusiveGateway id="join"/><sequenceFlow id="i6" sourceRef="join" targetRef="ie"/><endEvent id="ie"/>
      </subProcess>
      <sequenceFlow id="f2" sourceRef="sub" targetRef="e"/><endEvent id="e"/>`);
    const instance = await startProcess(as.admin, 'scopes_mi_inclusive');
    const scopeOf = async (taskId: string): Promise<string> =>
      (await as.admin.query<{ scope_id: string }>('select scope_id from bpm.activity_instance where id = $1', [taskId])).rows[0].scope_id;
    const tasks = await openTasks(instance.id);
    expect(tasks).toHaveLength(4);
    const first = await scopeOf(tasks[0].id);
    const mine = [];
    for (const t of tasks) if ((await scopeOf(t.id)) === first) mine.push(t);
    expect(mine.map((t) => t.element_id).sort()).toEqual(['a', 'b']);
    for (const t of mine) await completeTask(as.admin, t.id);
    // that inner instance is done while the other one still waits in a and b
    const { rows } = await as.admin.query(`select state from bpm.activity_instance where id = $1`, [first]);
    expect(rows[0].state).toBe('completed');
    expect((await openTasks(instance.id))).toHaveLength(2);
    for (const t of await openTasks(instance.id)) await completeTask(as.admin, t.id);
    expect((await getInstance(as.admin, instance.id)).state).toBe('completed');
  });
});

describe('errors and escalations from inside scopes', () => {
  test('a BPMN error of an external task inside a subprocess is caught by the subprocess\'s boundary; the sibling task is cancelled', async () => {
    await deployDefs(as.admin, 'scopes_ext_error', '<error id="EX" errorCode="NO-STOCK"/>', `
      <startEvent id="s"/><sequenceFlow id="f1" sourceRef="s" targetRef="sub"/>
      <subProcess id="sub">
        <startEvent id="is"/><sequenceFlow id="i1" sourceRef="is" targetRef="fork"/>
        <parallelGateway id="fork"/>
        <sequenceFlow id="i2" sourceRef="fork" targetRef="ship"/><sequenceFlow id="i3" sourceRef="fork" targetRef="note"/>
        <serviceTask id="ship" camunda:type="external" camunda:topic="scopes-ship"/>
        <userTask id="note"/>
      </subProcess>
      <boundaryEvent id="noStock" attachedToRef="sub"><errorEventDefinition errorRef="EX"/></boundaryEvent>
      <sequenceFlow id="f2" sourceRef="noStock" targetRef="reorder"/><userTask id="reorder"/>`);
    const instance = await startProcess(as.admin, 'scopes_ext_error');
    const [task] = (await as.engine.query('select * from bpm.fetch_and_lock($1, $2, 1)', ['scopes-ship', 'w1'])).rows;
    await as.engine.query('select bpm.throw_bpmn_error($1, $2, $3, $4::jsonb)', [task.id, 'w1', 'NO-STOCK', '{"reason": "empty"}']);
    const tasks = await userTasks(as.admin, instance.id);
    expect(tasks.map((t) => [t.element_id, t.state]).sort()).toEqual([['note', 'cancelled'], ['reorder', 'open']]);
    const { rows: [ext] } = await as.admin.query('select state from bpm.external_task where id = $1', [task.id]);
    expect(ext.state).toBe('cancelled');
    expect((await getInstance(as.admin, instance.id)).variables).toEqual({ reason: 'empty' });
  });

  test('a BPMN error of an external task two subprocesses deep passes the inner boundary of another code and reaches the outer one', async () => {
    await deployDefs(as.admin, 'scopes_ext_nested', '<error id="EA" errorCode="A"/><error id="EB" errorCode="B"/>', `
      <startEvent id="s"/><sequenceFlow id="f1" sourceRef="s" targetRef="outer"/>
      <subProcess id="outer">
        <startEvent id="os"/><sequenceFlow id="o1" sourceRef="os" targetRef="inner"/>
        <subProcess id="inner">
          <startEvent id="is"/><sequenceFlow id="i1" sourceRef="is" targetRef="call"/>
          <serviceTask id="call" camunda:type="external" camunda:topic="scopes-nested"/>
        </subProcess>
        <boundaryEvent id="innerCatchesA" attachedToRef="inner"><errorEventDefinition errorRef="EA"/></boundaryEvent>
        <sequenceFlow id="o2" sourceRef="innerCatchesA" targetRef="handledInside"/><userTask id="handledInside"/>
      </subProcess>
      <boundaryEvent id="outerCatchesB" attachedToRef="outer"><errorEventDefinition errorRef="EB"/></boundaryEvent>
      <sequenceFlow id="f2" sourceRef="outerCatchesB" targetRef="handledOutside"/><userTask id="handledOutside"/>`);
    const caught = async (code: string): Promise<string[]> => {
      const instance = await startProcess(as.admin, 'scopes_ext_nested');
      const [task] = (await as.engine.query('select * from bpm.fetch_and_lock($1, $2, 1)', ['scopes-nested', 'w2'])).rows;
      await as.engine.query('select bpm.throw_bpmn_error($1, $2, $3)', [task.id, 'w2', code]);
      const { rows } = await as.admin.query(`select element_id, state from bpm.activity_instance where instance_id = $1 and element_id in ('inner', 'outer') order by element_id`, [instance.id]);
      return [...(await openTasks(instance.id)).map((t) => t.element_id), ...rows.map((r) => `${r.element_id}:${r.state}`)];
    };
    expect(await caught('B')).toEqual(['handledOutside', 'inner:cancelled', 'outer:cancelled']);
    expect(await caught('A')).toEqual(['handledInside', 'inner:cancelled', 'outer:active']);
  });

  test('an escalation thrown inside a subprocess starts a non-interrupting boundary path while the subprocess goes on', async () => {
    await deployDefs(as.admin, 'scopes_escalation', '<escalation id="ESC" escalationCode="LATE"/>', `
      <startEvent id="s"/><sequenceFlow id="f1" sourceRef="s" targetRef="sub"/>
      <subProcess id="sub">
        <startEvent id="is"/><sequenceFlow id="i1" sourceRef="is" targetRef="raise"/>
        <intermediateThrowEvent id="raise"><escalationEventDefinition escalationRef="ESC"/></intermediateThrowEvent>
        <sequenceFlow id="i2" sourceRef="raise" targetRef="work"/><userTask id="work"/>
      </subProcess>
      <boundaryEvent id="late" attachedToRef="sub" cancelActivity="false"><escalationEventDefinition escalationRef="ESC"/></boundaryEvent>
      <sequenceFlow id="f2" sourceRef="late" targetRef="inform"/><userTask id="inform"/>
      <sequenceFlow id="f3" sourceRef="sub" targetRef="e"/><endEvent id="e"/>`);
    const instance = await startProcess(as.admin, 'scopes_escalation');
    expect((await openTasks(instance.id)).map((t) => t.element_id).sort()).toEqual(['inform', 'work']);
    await completeTask(as.admin, (await openTask(as.admin, instance.id, 'work')).id);
    await completeTask(as.admin, (await openTask(as.admin, instance.id, 'inform')).id);
    expect((await getInstance(as.admin, instance.id)).state).toBe('completed');
  });

  test('an interrupting message boundary on a multi-instance activity cancels every inner instance', async () => {
    await deployDefs(as.admin, 'scopes_mi_boundary', '<message id="M" name="scopes-stop"/>', `
      <startEvent id="s"/><sequenceFlow id="f1" sourceRef="s" targetRef="t"/>
      <userTask id="t"><multiInstanceLoopCharacteristics><loopCardinality>3</loopCardinality></multiInstanceLoopCharacteristics></userTask>
      <boundaryEvent id="stop" attachedToRef="t"><messageEventDefinition messageRef="M"/></boundaryEvent>
      <sequenceFlow id="f2" sourceRef="stop" targetRef="e"/><endEvent id="e"/>`);
    const instance = await startProcess(as.admin, 'scopes_mi_boundary', {}, 'mi-b-1');
    expect(await openTasks(instance.id)).toHaveLength(3);
    await as.admin.query(`select bpm.correlate_message('scopes-stop', 'mi-b-1')`);
    expect((await userTasks(as.admin, instance.id)).map((t) => t.state)).toEqual(['cancelled', 'cancelled', 'cancelled']);
    expect((await getInstance(as.admin, instance.id)).state).toBe('completed');
  });
});

describe('more scope cases', () => {
  test('an interrupting boundary on a subprocess cancels 3 parallel inner tokens and each one\'s own timer and job', async () => {
    const inner = (id: string): string => `
        <userTask id="${id}"/>
        <boundaryEvent id="${id}Late" attachedToRef="${id}"><timerEventDefinition><timeDuration>PT1H</timeDuration></timerEventDefinition></boundaryEvent>
        <sequenceFlow id="${id}L" sourceRef="${id}Late" targetRef="${id}End"/><endEvent id="${id}End"/>`;
    await deployDefs(as.admin, 'scopes_inner_timers', '<message id="M" name="scopes-abort"/>', `
      <startEvent id="s"/><sequenceFlow id="f1" sourceRef="s" targetRef="sub"/>
      <subProcess id="sub">
        <startEvent id="is"/><sequenceFlow id="i1" sourceRef="is" targetRef="fork"/><parallelGateway id="fork"/>
        <sequenceFlow id="i2" sourceRef="fork" targetRef="a"/><sequenceFlow id="i3" sourceRef="fork" targetRef="b"/>
        <sequenceFlow id="i4" sourceRef="fork" targetRef="c"/>
        ${inner('a')}${inner('b')}${inner('c')}
      </subProcess>
      <boundaryEvent id="abort" attachedToRef="sub"><messageEventDefinition messageRef="M"/></boundaryEvent>
      <sequenceFlow id="f2" sourceRef="abort" targetRef="aborted"/><endEvent id="aborted"/>`);
    const instance = await startProcess(as.admin, 'scopes_inner_timers', {}, 'abort-1');
    const timers = (await subscriptions(instance.id)).filter((s) => s.kind === 'timer');
    expect(timers.map((t) => t.element_id)).toEqual(['aLate', 'bLate', 'cLate']);
    expect(await timerJobs(timers.map((t) => t.id))).toBe(3);
    await as.admin.query(`select bpm.correlate_message('scopes-abort', 'abort-1')`);
    expect((await userTasks(as.admin, instance.id)).map((t) => t.state)).toEqual(['cancelled', 'cancelled', 'cancelled']);
    expect(await subscriptions(instance.id)).toEqual([]);
    expect(await timerJobs(timers.map((t) => t.id))).toBe(0);
    expect((await getInstance(as.admin, instance.id)).state).toBe('completed');
  });

  test('an interrupting timer event subprocess at process level cancels the main path when it fires', async () => {
    await deployProcess(as.admin, 'scopes_esp_timer', `
      <startEvent id="s"/><sequenceFlow id="f1" sourceRef="s" targetRef="work"/>
      <userTask id="work"/><sequenceFlow id="f2" sourceRef="work" targetRef="e"/><endEvent id="e"/>
      <subProcess id="deadline" triggeredByEvent="true">
        <startEvent id="ds"><timerEventDefinition><timeDuration>PT1H</timeDuration></timerEventDefinition></startEvent>
        <sequenceFlow id="d1" sourceRef="ds" targetRef="escalate"/><userTask id="escalate"/>
        <sequenceFlow id="d2" sourceRef="escalate" targetRef="de"/><endEvent id="de"/>
      </subProcess>`);
    const instance = await startProcess(as.admin, 'scopes_esp_timer');
    const [timer] = await subscriptions(instance.id);
    expect(timer).toMatchObject({ kind: 'timer', element_id: 'ds' });
    await db.root.query(`update bpm.event_subscription set due_at = now() - interval '1 second' where id = $1`, [timer.id]);
    await as.engine.query('select bpm.fire_timer($1)', [timer.id]);
    expect((await userTasks(as.admin, instance.id)).map((t) => [t.element_id, t.state])).toEqual([['work', 'cancelled'], ['escalate', 'open']]);
    expect(await subscriptions(instance.id)).toEqual([]);
    await completeTask(as.admin, (await openTask(as.admin, instance.id, 'escalate')).id);
    expect((await getInstance(as.admin, instance.id)).state).toBe('completed');
  });

  test('a non-interrupting signal event subprocess of a subprocess runs once per signal, only while the subprocess runs', async () => {
    await deployDefs(as.admin, 'scopes_esp_signal', '<signal id="S" name="scopes-ping"/>', `
      <startEvent id="s"/><sequenceFlow id="f1" sourceRef="s" targetRef="sub"/>
      <subProcess id="sub">
        <startEvent id="is"/><sequenceFlow id="i1" sourceRef="is" targetRef="work"/><userTask id="work"/>
        <sequenceFlow id="i2" sourceRef="work" targetRef="ie"/><endEvent id="ie"/>
        <subProcess id="onPing" triggeredByEvent="true">
          <startEvent id="ps" isInterrupting="false"><signalEventDefinition signalRef="S"/></startEvent>
          <sequenceFlow id="p1" sourceRef="ps" targetRef="log"/><task id="log"/>
          <sequenceFlow id="p2" sourceRef="log" targetRef="pe"/><endEvent id="pe"/>
        </subProcess>
      </subProcess>
      <sequenceFlow id="f2" sourceRef="sub" targetRef="after"/><userTask id="after"/>`);
    const instance = await startProcess(as.admin, 'scopes_esp_signal');
    await as.admin.query(`select bpm.broadcast_signal('scopes-ping')`);
    await as.admin.query(`select bpm.broadcast_signal('scopes-ping')`);
    const logs = async (): Promise<number> =>
      (await as.admin.query(`select count(*)::int as n from bpm.activity_instance where instance_id = $1 and element_id = 'log'`, [instance.id])).rows[0].n;
    expect(await logs()).toBe(2);
    await completeTask(as.admin, (await openTask(as.admin, instance.id, 'work')).id);
    expect((await openTask(as.admin, instance.id, 'after'))).toBeDefined();
    await as.admin.query(`select bpm.broadcast_signal('scopes-ping')`);
    expect(await logs()).toBe(2);
  });

  test('a parallel multi-instance call activity collects each child\'s result in input order; binding versionTag picks that version', async () => {
    await deployDefs(as.admin, 'scopes_square', '', `
      <startEvent id="s"/><sequenceFlow id="f1" sourceRef="s" targetRef="w"/><userTask id="w"/>
      <sequenceFlow id="f2" sourceRef="w" targetRef="e"/><endEvent id="e"/>`);
    await deployProcess(as.admin, 'scopes_mi_call', `
      <startEvent id="s"/><sequenceFlow id="f1" sourceRef="s" targetRef="call"/>
      <callActivity id="call" calledElement="scopes_square">
        <extensionElements>
          <camunda:in source="n" target="n"/><camunda:out source="square" target="square"/>
          <camunda:properties>
            <camunda:property name="pgbpm:outputCollection" value="squares"/>
            <camunda:property name="pgbpm:outputElement" value="\${square}"/>
          </camunda:properties>
        </extensionElements>
        <multiInstanceLoopCharacteristics camunda:collection="\${numbers}" camunda:elementVariable="n"/>
      </callActivity>
      <sequenceFlow id="f2" sourceRef="call" targetRef="e"/><endEvent id="e"/>`);
    const instance = await startProcess(as.admin, 'scopes_mi_call', { numbers: [3, 1, 2] });
    const { rows: children } = await as.admin.query<{ id: string; variables: { n: number } }>(
      'select id, variables from bpm.process_instance where parent_instance_id = $1', [instance.id]);
    expect(children.map((c) => c.variables.n).sort()).toEqual([1, 2, 3]);
    // complete the children in another order than the input's
    for (const n of [2, 3, 1]) {
      const child = children.find((c) => c.variables.n === n)!;
      await completeTask(as.admin, (await openTask(as.admin, child.id, 'w')).id, { square: n * n });
    }
    const done = await getInstance(as.admin, instance.id);
    expect(done.state).toBe('completed');
    expect(done.variables.squares).toEqual([9, 1, 4]);

    // versionTag binding: v1 tagged "stable" is called even after v2 exists
    const tagged = (tag: string, task: string): string => `<?xml version="1.0" encoding="UTF-8"?>
      <definitions xmlns="http://www.omg.org/spec/BPMN/20100524/MODEL" xmlns:camunda="http://camunda.org/schema/1.0/bpmn" id="d_${tag}" targetNamespace="t">
        <process id="scopes_tagged" isExecutable="true" camunda:versionTag="${tag}">
          <startEvent id="s"/><sequenceFlow id="f1" sourceRef="s" targetRef="${task}"/><userTask id="${task}"/>
        </process></definitions>`;
    const { deployXml } = await import('../../helpers/engine');
    await deployXml(as.admin, [{ name: 'tagged1.bpmn', xml: tagged('stable', 'old') }]);
    await deployXml(as.admin, [{ name: 'tagged2.bpmn', xml: tagged('next', 'new') }]);
    await deployProcess(as.admin, 'scopes_calls_tagged', `
      <startEvent id="s"/><sequenceFlow id="f1" sourceRef="s" targetRef="call"/>
      <callActivity id="call" calledElement="scopes_tagged" camunda:calledElementBinding="versionTag" camunda:calledElementVersionTag="stable"/>`);
    const caller = await startProcess(as.admin, 'scopes_calls_tagged');
    const { rows: [child] } = await as.admin.query('select id from bpm.process_instance where parent_instance_id = $1', [caller.id]);
    expect((await userTasks(as.admin, child.id)).map((t) => t.element_id)).toEqual(['old']);
  });

  test('an escalation end event in a subprocess is caught by an interrupting escalation event subprocess of the process', async () => {
    await deployDefs(as.admin, 'scopes_esc_esp', '<escalation id="X" escalationCode="TOO-LATE"/>', `
      <startEvent id="s"/><sequenceFlow id="f1" sourceRef="s" targetRef="sub"/>
      <subProcess id="sub">
        <startEvent id="is"/><sequenceFlow id="i1" sourceRef="is" targetRef="fork"/><parallelGateway id="fork"/>
        <sequenceFlow id="i2" sourceRef="fork" targetRef="other"/><sequenceFlow id="i3" sourceRef="fork" targetRef="raise"/>
        <userTask id="other"/>
        <endEvent id="raise"><escalationEventDefinition escalationRef="X"/></endEvent>
      </subProcess>
      <subProcess id="onLate" triggeredByEvent="true">
        <startEvent id="ls"><escalationEventDefinition escalationRef="X"/></startEvent>
        <sequenceFlow id="l1" sourceRef="ls" targetRef="handle"/><userTask id="handle"/>
      </subProcess>`);
    const instance = await startProcess(as.admin, 'scopes_esc_esp');
    // 'other' was created and cancelled within the start: its task was never written, its history row is cancelled
    expect((await userTasks(as.admin, instance.id)).map((t) => [t.element_id, t.state])).toEqual([['handle', 'open']]);
    const { rows: history } = await as.admin.query(`select element_id, state from bpm.activity_instance where instance_id = $1 and element_id in ('other', 'sub', 'onLate') order by element_id`, [instance.id]);
    expect(history).toEqual([{ element_id: 'onLate', state: 'active' }, { element_id: 'other', state: 'cancelled' }, { element_id: 'sub', state: 'cancelled' }]);
    const { rows } = await as.admin.query(`select kind, element_id from bpm.event where instance_id = $1 and kind = 'escalationCaught'`, [instance.id]);
    expect(rows).toEqual([{ kind: 'escalationCaught', element_id: 'ls' }]);
  });
});
