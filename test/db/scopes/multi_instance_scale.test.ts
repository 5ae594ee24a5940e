/**
 * Large multi-instance activities (issue 5): a parallel multi-instance user
 * or external task creates all its inner instances at once, each one's
 * attributes evaluated as if it had been created alone; fan-outs of
 * thousands of inner instances run in one call, while a cycle without a
 * wait state is still stopped (BP306).
 */
import { createTestDb, type TestDb } from '../../helpers/db';
import { deployProcess, expectRejectedUnchanged } from '../../helpers/engine';
import { actors, completeTask, getInstance, startProcess, userTasks, type Actors } from '../elements/support';

let db: TestDb;
let as: Actors;

beforeAll(async () => {
  db = await createTestDb();
  as = await actors(db);
});

afterAll(async () => {
  await db?.close();
});

/** A user task whose every attribute is an expression over its item, with an input mapping, a generated form and an escalation rule. */
function reviewTask(sequential: boolean): string {
  return `
    <startEvent id="s"/><sequenceFlow id="f1" sourceRef="s" targetRef="review"/>
    <userTask id="review" name="Review" camunda:assignee="\${item.owner}" camunda:candidateGroups="\${item.group}, all"
        camunda:candidateUsers="\${boss}" camunda:priority="\${item.prio}" camunda:dueDate="\${item.due}" camunda:followUpDate="\${followUp}">
      <extensionElements>
        <camunda:inputOutput>
          <camunda:inputParameter name="label">Item \${loopCounter} of \${nrOfInstances}: \${item.name}</camunda:inputParameter>
          <camunda:inputParameter name="boss">\${item.owner}-boss</camunda:inputParameter>
        </camunda:inputOutput>
        <camunda:formData>
          <camunda:formField id="note" defaultValue="About \${label}" />
        </camunda:formData>
        <camunda:properties>
          <camunda:property name="pgbpm:escalateAfter" value="PT2H"/>
          <camunda:property name="pgbpm:escalateToGroups" value="\${item.group}-leads"/>
        </camunda:properties>
      </extensionElements>
      <multiInstanceLoopCharacteristics isSequential="${sequential}" camunda:collection="\${items}" camunda:elementVariable="item"/>
    </userTask>
    <sequenceFlow id="f2" sourceRef="review" targetRef="e"/><endEvent id="e"/>`;
}

interface TaskView {
  assignee: string | null;
  candidate_users: string[];
  candidate_groups: string[];
  priority: number;
  due_at: string | null;
  follow_up_at: string | null;
  form: unknown;
  local_variables: Record<string, unknown> | null;
  jobs: string[];
}

/** The task as a user and the worker see it, with its deadline jobs (by kind). */
async function view(taskId: string): Promise<TaskView> {
  const { rows } = await as.admin.query<Omit<TaskView, 'jobs'>>(
    `select assignee, candidate_users, candidate_groups, priority, due_at::text, follow_up_at::text, form, local_variables
     from bpm.user_task where id = $1`, [taskId]);
  const jobs = await db.root.query<{ key: string; run_at: string }>(
    `select split_part(key, ':', 1) as key from graphile_worker.jobs where key like 'bpm-task-%:' || $1 order by key`, [taskId]);
  return { ...rows[0], jobs: jobs.rows.map((j) => j.key) };
}

describe('parallel multi-instance tasks made at once', () => {
  const items = [
    { owner: 'ann', group: 'sales', prio: 70, due: '2031-01-01T10:00:00Z', name: 'first' },
    { owner: 'bob', group: 'ops', prio: 30, due: '2031-02-01T10:00:00Z', name: 'second' },
    { owner: 'cy', group: 'legal', prio: 55, due: '2031-03-01T10:00:00Z', name: 'third' },
  ];
  const variables = { items, followUp: '2030-12-24T08:00:00Z' };

  test('each inner task has the attributes, locals, form and deadline jobs it gets when inner instances are created one at a time', async () => {
    await deployProcess(as.admin, 'mi_scale_parallel', reviewTask(false));
    await deployProcess(as.admin, 'mi_scale_sequential', reviewTask(true));
    const parallel = await startProcess(as.admin, 'mi_scale_parallel', variables);
    const made = await userTasks(as.admin, parallel.id);
    expect(made).toHaveLength(3);
    const atOnce = await Promise.all(made.map((t) => view(t.id)));

    // the same task, sequential: each inner instance is created alone, after the previous one completes
    const sequential = await startProcess(as.admin, 'mi_scale_sequential', variables);
    const oneByOne: TaskView[] = [];
    for (let i = 0; i < items.length; i++) {
      const open = (await userTasks(as.admin, sequential.id)).filter((t) => t.state === 'open');
      expect(open).toHaveLength(1);
      oneByOne.push(await view(open[0].id));
      await completeTask(as.admin, open[0].id);
    }
    expect((await getInstance(as.admin, sequential.id)).state).toBe('completed');
    expect(atOnce).toEqual(oneByOne);

    // and what they are: each item's own values
    expect(atOnce.map((t) => [t.assignee, t.candidate_users, t.candidate_groups, t.priority])).toEqual([
      ['ann', ['ann-boss'], ['sales', 'all'], 70], ['bob', ['bob-boss'], ['ops', 'all'], 30], ['cy', ['cy-boss'], ['legal', 'all'], 55]]);
    expect(atOnce.map((t) => t.local_variables)).toEqual(items.map((item, i) => ({
      item, loopCounter: i, nrOfInstances: 3, label: `Item ${i} of 3: ${item.name}`, boss: `${item.owner}-boss`,
    })));
    expect(atOnce.map((t) => JSON.stringify(t.form))).toEqual(items.map((item, i) => expect.stringContaining(`About Item ${i} of 3: ${item.name}`)));
    expect(atOnce.map((t) => t.jobs)).toEqual(Array(3).fill(['bpm-task-due', 'bpm-task-escalate', 'bpm-task-followUp']));
    expect(new Date(atOnce[1].due_at!).toISOString()).toBe('2031-02-01T10:00:00.000Z');
  });

  test('an expression that fails for one item fails the start and leaves nothing behind', async () => {
    await expectRejectedUnchanged(
      db.root,
      () => startProcess(as.admin, 'mi_scale_parallel', { ...variables, items: [...items, { owner: 'dan', group: 'x', prio: 'high', due: null, name: 'bad' }] }),
      'BP303',
      /priority of element review is not an integer: "high"/,
    );
  });

  test('external tasks: each inner instance\'s priority and input mappings are its own, as when made one at a time', async () => {
    const notify = (sequential: boolean) => `
      <startEvent id="s"/><sequenceFlow id="f1" sourceRef="s" targetRef="n"/>
      <serviceTask id="n" camunda:type="external" camunda:topic="mi-scale-notify" camunda:taskPriority="\${item.prio * 10}">
        <extensionElements><camunda:inputOutput>
          <camunda:inputParameter name="to">\${item.owner}@example.com</camunda:inputParameter>
        </camunda:inputOutput></extensionElements>
        <multiInstanceLoopCharacteristics isSequential="${sequential}" camunda:collection="\${items}" camunda:elementVariable="item"/>
      </serviceTask>
      <sequenceFlow id="f2" sourceRef="n" targetRef="e"/><endEvent id="e"/>`;
    await deployProcess(as.admin, 'mi_scale_ext_parallel', notify(false));
    await deployProcess(as.admin, 'mi_scale_ext_sequential', notify(true));
    type Locked = { id: string; priority: number; variables: Record<string, unknown> };
    const lock = async (): Promise<Locked[]> =>
      (await as.engine.query<Locked>(`select id, priority, variables from bpm.fetch_and_lock('mi-scale-notify', 'w', 10)`)).rows;
    await startProcess(as.admin, 'mi_scale_ext_parallel', { items });
    const atOnce = (await lock()).map(({ priority, variables }) => ({ priority, variables }));
    for (const t of await as.engine.query<{ id: string }>(`select id from bpm.external_task where topic = 'mi-scale-notify'`).then((r) => r.rows)) {
      await as.engine.query(`select bpm.complete_external_task($1, 'w')`, [t.id]);
    }
    await startProcess(as.admin, 'mi_scale_ext_sequential', { items });
    const oneByOne: { priority: number; variables: Record<string, unknown> }[] = [];
    for (let i = 0; i < items.length; i++) {
      const [t] = await lock();
      oneByOne.push({ priority: t.priority, variables: t.variables });
      await as.engine.query(`select bpm.complete_external_task($1, 'w')`, [t.id]);
    }
    const byLoop = (a: { variables: Record<string, unknown> }, b: { variables: Record<string, unknown> }) =>
      Number(a.variables.loopCounter) - Number(b.variables.loopCounter);
    expect(atOnce.sort(byLoop)).toEqual(oneByOne);
    expect(oneByOne.map((t) => [t.priority, t.variables.to])).toEqual([[700, 'ann@example.com'], [300, 'bob@example.com'], [550, 'cy@example.com']]);
  });

  test('5,000 inner instances with expression attributes in one call, each with its own assignee', async () => {
    await deployProcess(as.admin, 'mi_scale_5000', `
      <startEvent id="s"/><sequenceFlow id="f1" sourceRef="s" targetRef="t"/>
      <userTask id="t" camunda:assignee="\${voter}" camunda:priority="\${loopCounter % 100}">
        <multiInstanceLoopCharacteristics camunda:collection="\${voters}" camunda:elementVariable="voter">
          <completionCondition>\${nrOfCompletedInstances >= 2}</completionCondition>
        </multiInstanceLoopCharacteristics>
      </userTask>
      <sequenceFlow id="f2" sourceRef="t" targetRef="e"/><endEvent id="e"/>`);
    const voters = Array.from({ length: 5000 }, (_, i) => `voter-${i}`);
    const instance = await startProcess(as.admin, 'mi_scale_5000', { voters });
    const { rows } = await as.admin.query<{ n: string; right: string }>(
      `select count(*) as n, count(*) filter (where t.assignee = 'voter-' || (t.local_variables ->> 'loopCounter')
         and t.priority = (t.local_variables ->> 'loopCounter')::int % 100) as right
       from bpm.user_task t where t.instance_id = $1 and t.state = 'open'`, [instance.id]);
    expect(rows[0]).toEqual({ n: '5000', right: '5000' });
    // their ids (one block, uuid_v7_block): distinct time-ordered UUIDs (version 7, RFC 9562 variant), ascending with loopCounter
    const { rows: ids } = await as.admin.query<{ distinct_ids: string; v7: string; ascending: boolean }>(
      `select count(distinct t.id) as distinct_ids,
         count(*) filter (where substr(t.id::text, 15, 1) = '7' and substr(t.id::text, 20, 1) in ('8', '9', 'a', 'b')) as v7,
         bool_and(t.id > t.previous) as ascending
       from (select id, lag(id) over (order by (local_variables ->> 'loopCounter')::int) as previous
             from bpm.user_task where instance_id = $1) t`, [instance.id]);
    expect(ids[0]).toEqual({ distinct_ids: '5000', v7: '5000', ascending: true });
    const tasks = await userTasks(as.admin, instance.id);
    await completeTask(as.admin, tasks[4999].id);
    await completeTask(as.admin, tasks[0].id);
    expect((await getInstance(as.admin, instance.id)).state).toBe('completed');
    const { rows: left } = await as.admin.query(`select count(*)::int as n from bpm.user_task where instance_id = $1 and state = 'open'`, [instance.id]);
    expect(left[0].n).toBe(0);
  }, 60_000);
});

describe('the body of a large multi-instance activity', () => {
  const model = `
    <startEvent id="s"/><sequenceFlow id="f1" sourceRef="s" targetRef="t"/>
    <userTask id="t" camunda:assignee="\${item}">
      <extensionElements><camunda:properties><camunda:property name="pgbpm:outputCollection" value="done"/><camunda:property name="pgbpm:outputElement" value="\${item}"/></camunda:properties></extensionElements>
      <multiInstanceLoopCharacteristics camunda:collection="\${items}" camunda:elementVariable="item">
        <completionCondition>\${nrOfCompletedInstances == 3}</completionCondition>
      </multiInstanceLoopCharacteristics>
    </userTask>
    <sequenceFlow id="f2" sourceRef="t" targetRef="e"/><endEvent id="e"/>`;

  async function bodyRow(instanceId: string): Promise<{ data: Record<string, unknown>; loop: Record<string, unknown> | null }> {
    const { rows } = await db.root.query(`select data, loop from bpm_private.token where instance_id = $1 and kind = 'body'`, [instanceId]);
    return rows[0];
  }

  test('keeps its collection and inner instances apart from its counters, unchanged when an inner task completes', async () => {
    await deployProcess(as.admin, 'mi_body_split', model);
    const items = Array.from({ length: 200 }, (_, i) => `u${i}`);
    const instance = await startProcess(as.admin, 'mi_body_split', { items });
    const before = await bodyRow(instance.id);
    expect(before.data).not.toHaveProperty('items');
    expect(before.data).not.toHaveProperty('inner');
    expect((before.loop?.items as string[]).length).toBe(200);
    const tasks = (await userTasks(as.admin, instance.id)).sort((a, b) => String(a.assignee).localeCompare(String(b.assignee)));
    await completeTask(as.admin, tasks.find((t) => t.assignee === 'u7')!.id);
    const after = await bodyRow(instance.id);
    expect(after.data).toMatchObject({ active: 199, completed: 1, out: { 7: 'u7' } });
    expect(after.loop).toEqual(before.loop);
  });

  test('a body stored before the split (collection and inner instances in its data) runs on and is split at its next update', async () => {
    const items = ['a', 'b', 'c', 'd'];
    const instance = await startProcess(as.admin, 'mi_body_split', { items });
    await db.root.query(`update bpm_private.token set data = data || loop, loop = null where instance_id = $1 and kind = 'body'`, [instance.id]);
    const tasks = await userTasks(as.admin, instance.id);
    for (const who of ['c', 'a']) await completeTask(as.admin, tasks.find((t) => t.assignee === who)!.id);
    const split = await bodyRow(instance.id);
    expect(split.data).not.toHaveProperty('items');
    expect(split.loop?.items).toEqual(items);
    await completeTask(as.admin, tasks.find((t) => t.assignee === 'd')!.id);
    // the completion condition held: b was cancelled, the outputs are in input order
    const done = await getInstance(as.admin, instance.id);
    expect(done.state).toBe('completed');
    expect(done.variables.done).toEqual(['a', 'c', 'd']);
    expect((await userTasks(as.admin, instance.id)).find((t) => t.assignee === 'b')?.state).toBe('cancelled');
  });
});

describe('the endless-loop guard and large fan-outs', () => {
  test('a parallel multi-instance subprocess over 1,000 items runs in one call (3,000 automatic steps)', async () => {
    await deployProcess(as.admin, 'mi_scale_sub', `
      <startEvent id="s"/><sequenceFlow id="f1" sourceRef="s" targetRef="sub"/>
      <subProcess id="sub">
        <multiInstanceLoopCharacteristics camunda:collection="\${items}" camunda:elementVariable="item"/>
        <startEvent id="ss"/><sequenceFlow id="s1" sourceRef="ss" targetRef="t"/>
        <userTask id="t" camunda:assignee="\${item}"/>
        <sequenceFlow id="s2" sourceRef="t" targetRef="se"/><endEvent id="se"/>
      </subProcess>
      <sequenceFlow id="f2" sourceRef="sub" targetRef="e"/><endEvent id="e"/>`);
    const items = Array.from({ length: 1000 }, (_, i) => `u${i}`);
    const instance = await startProcess(as.admin, 'mi_scale_sub', { items });
    const { rows } = await as.admin.query<{ assignees: string[] }>(
      `select array_agg(assignee order by assignee) as assignees from bpm.user_task where instance_id = $1 and state = 'open'`, [instance.id]);
    expect(rows[0].assignees).toEqual([...items].sort());
  }, 60_000);

  test('batches: a multi-instance subprocess over 100 batches, each with a multi-instance task over its own batch (a local of the subprocess instance): 10,000 tasks', async () => {
    await deployProcess(as.admin, 'mi_scale_batches', `
      <startEvent id="s"/><sequenceFlow id="f1" sourceRef="s" targetRef="sub"/>
      <subProcess id="sub">
        <multiInstanceLoopCharacteristics camunda:collection="\${batches}" camunda:elementVariable="batch"/>
        <startEvent id="ss"/><sequenceFlow id="s1" sourceRef="ss" targetRef="t"/>
        <userTask id="t" camunda:assignee="\${item}">
          <multiInstanceLoopCharacteristics camunda:collection="\${batch}" camunda:elementVariable="item"/>
        </userTask>
        <sequenceFlow id="s2" sourceRef="t" targetRef="se"/><endEvent id="se"/>
      </subProcess>
      <sequenceFlow id="f2" sourceRef="sub" targetRef="e"/><endEvent id="e"/>`);
    const batches = Array.from({ length: 100 }, (_, b) => Array.from({ length: 100 }, (_, i) => `b${b}-i${i}`));
    const instance = await startProcess(as.admin, 'mi_scale_batches', { batches });
    const { rows } = await as.admin.query<{ n: string; right: string }>(
      `select count(*) as n, count(*) filter (where t.assignee = t.local_variables ->> 'item') as right
       from bpm.user_task t where t.instance_id = $1 and t.state = 'open'`, [instance.id]);
    expect(rows[0]).toEqual({ n: '10000', right: '10000' });
    // the tasks of batch 7 complete: its subprocess instance completes, the others wait
    const { rows: batch7 } = await as.admin.query<{ id: string }>(
      `select id from bpm.user_task where instance_id = $1 and assignee like 'b7-%'`, [instance.id]);
    expect(batch7).toHaveLength(100);
    for (const t of batch7) await completeTask(as.admin, t.id);
    const { rows: subs } = await as.admin.query<{ state: string; n: string }>(
      `select state, count(*) as n from bpm.activity_instance where instance_id = $1 and element_id = 'sub' and element_type = 'subProcess' group by state order by state`, [instance.id]);
    expect(subs).toEqual([{ state: 'active', n: '99' }, { state: 'completed', n: '1' }]);
    expect((await getInstance(as.admin, instance.id)).state).toBe('active');
  }, 120_000);

  test('a cycle through a multi-instance activity without a wait state is still stopped with BP306, leaving nothing behind', async () => {
    await deployProcess(as.admin, 'mi_scale_endless', `
      <startEvent id="s"/><sequenceFlow id="f1" sourceRef="s" targetRef="m"/>
      <manualTask id="m"><multiInstanceLoopCharacteristics><loopCardinality>5</loopCardinality></multiInstanceLoopCharacteristics></manualTask>
      <sequenceFlow id="f2" sourceRef="m" targetRef="g"/>
      <exclusiveGateway id="g"/>
      <sequenceFlow id="back" sourceRef="g" targetRef="m"><conditionExpression>\${true}</conditionExpression></sequenceFlow>
      <sequenceFlow id="out" sourceRef="g" targetRef="e"><conditionExpression>\${false}</conditionExpression></sequenceFlow>
      <endEvent id="e"/>`);
    // 2,000 steps, plus 50 for each of the 5 inner instances of the first entry only
    await expectRejectedUnchanged(db.root, () => startProcess(as.admin, 'mi_scale_endless'), 'BP306', /took more than 2250 automatic steps in one call/);
  }, 60_000);
});
