/**
 * User task attributes from Camunda 7 (camunda:assignee, candidateUsers,
 * candidateGroups, dueDate, followUpDate, priority) and Camunda 8
 * (zeebe:assignmentDefinition, zeebe:taskSchedule, zeebe:priorityDefinition),
 * as literals and expressions, evaluated when the token arrives.
 */
import type pg from 'pg';
import { createTestDb, type TestDb } from '../../helpers/db';
import { deployProcess, expectRejectedUnchanged } from '../../helpers/engine';
import { actors, completeTask, getInstance, openTask, startProcess, TENANT, userTasks, type Actors, type UserTask, type Variables } from './support';

let db: TestDb;
let as: Actors;

/** A process start → one user task "t" (with the given attributes / extension elements) → end. */
async function deployTask(key: string, attributes: string, extensions = ''): Promise<void> {
  const ext = extensions === '' ? '' : `<extensionElements>${extensions}</extensionElements>`;
  await deployProcess(as.admin, key, `
    <startEvent id="start"/>
    <sequenceFlow id="f1" sourceRef="start" targetRef="t"/>
    <userTask id="t" name="Task ${key}" ${attributes}>${ext}</userTask>
    <sequenceFlow id="f2" sourceRef="t" targetRef="end"/>
    <endEvent id="end"/>`);
}

/** Starts `key` as admin and returns its user task "t". */
async function taskOf(key: string, variables: Variables = {}): Promise<UserTask> {
  const started = await startProcess(as.admin, key, variables);
  return openTask(as.admin, started.id, 't');
}

/** due_at - created_at and follow_up_at - created_at of a task, as interval text. */
async function offsets(client: pg.ClientBase, taskId: string): Promise<{ due: string | null; follow_up: string | null }> {
  const { rows } = await client.query<{ due: string | null; follow_up: string | null }>(
    `select (due_at - created_at)::text as due, (follow_up_at - created_at)::text as follow_up from bpm.user_task where id = $1`,
    [taskId],
  );
  return rows[0];
}

beforeAll(async () => {
  db = await createTestDb();
  as = await actors(db);
  await deployTask('plain', '');
  await deployTask('assignee_literal', 'camunda:assignee="alice"');
  await deployTask('assignee_expression', 'camunda:assignee="${initiator}"');
  await deployTask('candidates_literal', 'camunda:candidateUsers="anna, ben ,carl" camunda:candidateGroups="sales,ops"');
  await deployTask('candidates_expression', 'camunda:candidateUsers="${reviewers}" camunda:candidateGroups="${groups}"');
  await deployTask('dates_literal', 'camunda:dueDate="2030-01-15T09:00:00Z" camunda:followUpDate="2030-01-10T08:30:00+01:00"');
  await deployTask('dates_duration', 'camunda:dueDate="P2D" camunda:followUpDate="PT4H"');
  await deployTask('dates_fraction', 'camunda:dueDate="P1,5D" camunda:followUpDate="PT1.5H"');
  await deployTask('dates_expression', 'camunda:dueDate="${due}" camunda:followUpDate="#{followUp}"');
  await deployTask('priority_literal', 'camunda:priority="80"');
  await deployTask('priority_expression', 'camunda:priority="${prio}"');
  await deployTask('assignee_only', 'camunda:assignee="dora"');
  await deployTask('zeebe', '', `
    <zeebe:userTask/>
    <zeebe:assignmentDefinition assignee="=owner" candidateGroups="sales, ops" candidateUsers="=[&quot;anna&quot;, &quot;ben&quot;]"/>
    <zeebe:taskSchedule dueDate="=due" followUpDate="2030-01-01T00:00:00Z"/>
    <zeebe:priorityDefinition priority="=prio"/>`);
  await deployTask('zeebe_literals', '', `
    <zeebe:assignmentDefinition assignee="olga" candidateUsers="u1,u2" candidateGroups="=teams"/>
    <zeebe:taskSchedule dueDate="P1DT2H"/>
    <zeebe:priorityDefinition priority="15"/>`);
  await deployTask('form_key', 'camunda:formKey="embedded:app:forms/approve.html"');
  await deployTask('form_key_expression', 'camunda:formKey="${formName}"');
  await deployTask('form_ref', 'camunda:formRef="approval" camunda:formRefBinding="version" camunda:formRefVersion="3"');
  await deployTask('form_ref_latest', 'camunda:formRef="approval"');
  await deployTask('form_linked', '', '<zeebe:formDefinition formId="approval-form" bindingType="versionTag" versionTag="v2"/>');
  await deployTask('form_external', '', '<zeebe:formDefinition externalReference="=formUrl"/>');
  // a Camunda 8 model with a form embedded in it, also on its start event
  await deployProcess(as.admin, 'form_embedded', `
    <extensionElements>
      <zeebe:userTaskForm id="UserTaskForm_1">{ "components": [{ "key": "approved", "type": "checkbox", "label": "Approve" }], "type": "default" }</zeebe:userTaskForm>
    </extensionElements>
    <startEvent id="start"><extensionElements><zeebe:formDefinition formKey="camunda-forms:bpmn:UserTaskForm_1"/></extensionElements></startEvent>
    <sequenceFlow id="f1" sourceRef="start" targetRef="t"/>
    <userTask id="t"><extensionElements><zeebe:formDefinition formKey="camunda-forms:bpmn:UserTaskForm_1"/></extensionElements></userTask>`);
  await deployProcess(as.admin, 'form_start', `
    <startEvent id="start" camunda:formKey="embedded:app:forms/start.html"/>
    <sequenceFlow id="f1" sourceRef="start" targetRef="t"/>
    <userTask id="t"/>`);
  await deployProcess(as.admin, 'form_multi', `
    <startEvent id="start"/>
    <sequenceFlow id="f1" sourceRef="start" targetRef="t"/>
    <userTask id="t" camunda:formKey="embedded:app:forms/review.html">
      <multiInstanceLoopCharacteristics><loopCardinality>3</loopCardinality></multiInstanceLoopCharacteristics>
    </userTask>`);
  // a Camunda 7 generated form: fields, a default from a variable, beside a key expression
  await deployTask('form_generated', 'camunda:formKey="${formName}"', `<camunda:formData businessKey="orderNo">
      <camunda:formField id="orderNo" label="Order" />
      <camunda:formField id="amount" type="long" defaultValue="\${total}"><camunda:validation><camunda:constraint name="required" /></camunda:validation></camunda:formField>
      <camunda:formField id="note" defaultValue="Note for \${customer}" />
      <camunda:formField id="level" type="enum" defaultValue="b"><camunda:value id="a" name="Low" /><camunda:value id="b" name="High" /></camunda:formField>
    </camunda:formData>`);
  await deployProcess(as.admin, 'form_generated_start', `
    <startEvent id="start"><extensionElements><camunda:formData><camunda:formField id="reason" label="Reason" type="string" /></camunda:formData></extensionElements></startEvent>
    <sequenceFlow id="f1" sourceRef="start" targetRef="end"/>
    <endEvent id="end"/>`);
  // the second task's due date is evaluated in complete_task of the first
  await deployProcess(as.admin, 'due_after_task', `
    <startEvent id="start"/>
    <sequenceFlow id="f1" sourceRef="start" targetRef="first"/>
    <userTask id="first"/>
    <sequenceFlow id="f2" sourceRef="first" targetRef="t"/>
    <userTask id="t" camunda:dueDate="\${due}"/>`);
  // review → (rework) fix → review …: each arrival evaluates the attributes again
  await deployProcess(as.admin, 'reassign_loop', `
    <startEvent id="start"/>
    <sequenceFlow id="f1" sourceRef="start" targetRef="t"/>
    <userTask id="t" camunda:assignee="\${reviewer}" camunda:priority="\${prio}" default="rework"/>
    <sequenceFlow id="ok" sourceRef="t" targetRef="end"><conditionExpression>\${approved}</conditionExpression></sequenceFlow>
    <sequenceFlow id="rework" sourceRef="t" targetRef="t"/>
    <endEvent id="end"/>`);
});

afterAll(() => db.close());

describe('assignee', () => {
  test('a literal camunda:assignee assigns the task, and the assignee (a bpm_user) sees and completes it', async () => {
    const task = await taskOf('assignee_literal');
    expect(task).toMatchObject({ assignee: 'alice', candidate_users: [], candidate_groups: [], priority: 50, name: 'Task assignee_literal' });
    const seen = await as.alice.query<{ id: string }>('select id from bpm.user_task where id = $1', [task.id]);
    expect(seen.rows).toEqual([{ id: task.id }]);
    const done = await completeTask(as.alice, task.id);
    expect(done).toMatchObject({ state: 'completed', completed_by: 'alice', assignee: 'alice' });
    expect((await getInstance(as.admin, task.instance_id)).state).toBe('completed');
  });

  test('camunda:assignee="${initiator}" takes the assignee from the variable', async () => {
    const task = await taskOf('assignee_expression', { initiator: 'bob' });
    expect(task.assignee).toBe('bob');
  });

  test('an assignee expression over an unset variable is BP302, rolled back', async () => {
    await expectRejectedUnchanged(db.root, () => startProcess(as.admin, 'assignee_expression'), 'BP302', /"initiator"/);
  });
});

describe('candidates', () => {
  test('comma lists of camunda:candidateUsers / candidateGroups are split and trimmed', async () => {
    const task = await taskOf('candidates_literal');
    expect(task).toMatchObject({ assignee: null, candidate_users: ['anna', 'ben', 'carl'], candidate_groups: ['sales', 'ops'] });
    // alice is in group sales: the unassigned task is offered to her
    const seen = await as.alice.query<{ id: string }>('select id from bpm.user_task where id = $1', [task.id]);
    expect(seen.rows).toEqual([{ id: task.id }]);
  });

  test('candidate expressions accept a JSON array and a comma-separated string', async () => {
    const task = await taskOf('candidates_expression', { reviewers: ['xena', ' yuri '], groups: 'audit, ,legal ' });
    expect(task.candidate_users).toEqual(['xena', 'yuri']);
    expect(task.candidate_groups).toEqual(['audit', 'legal']);
  });

  test('a bpm_user outside every candidate list does not see the task', async () => {
    const task = await taskOf('candidates_expression', { reviewers: ['xena'], groups: ['audit'] });
    const seen = await as.alice.query('select id from bpm.user_task where id = $1', [task.id]);
    expect(seen.rows).toEqual([]);
  });
});

describe('due and follow-up dates', () => {
  test('ISO 8601 date-times are stored as given (UTC and with an offset)', async () => {
    const task = await taskOf('dates_literal');
    expect(task.due_at?.toISOString()).toBe('2030-01-15T09:00:00.000Z');
    expect(task.follow_up_at?.toISOString()).toBe('2030-01-10T07:30:00.000Z');
  });

  test('ISO 8601 durations are added to now(): P2D is two days after creation, PT4H four hours', async () => {
    const before = Date.now();
    const task = await taskOf('dates_duration');
    expect(await offsets(as.admin, task.id)).toEqual({ due: '2 days', follow_up: '04:00:00' });
    const due = task.due_at?.getTime() ?? 0;
    expect(due - before).toBeGreaterThan(2 * 86_400_000 - 60_000);
    expect(due - Date.now()).toBeLessThan(2 * 86_400_000 + 60_000);
  });

  test('date expressions may yield a date-time, a date or a duration', async () => {
    const exact = await taskOf('dates_expression', { due: '2031-03-04T05:06:07Z', followUp: '2031-03-01T00:00:00-02:00' });
    expect(exact.due_at?.toISOString()).toBe('2031-03-04T05:06:07.000Z');
    expect(exact.follow_up_at?.toISOString()).toBe('2031-03-01T02:00:00.000Z');

    const relative = await taskOf('dates_expression', { due: 'P3D', followUp: 'PT30M' });
    expect(await offsets(as.admin, relative.id)).toEqual({ due: '3 days', follow_up: '00:30:00' });

    // a plain date is midnight in the session's time zone, like a cast to timestamptz
    const dateOnly = await taskOf('dates_expression', { due: '2031-12-24', followUp: null });
    const { rows } = await as.admin.query<{ t: Date }>(`select '2031-12-24'::timestamptz as t`);
    expect(dateOnly.due_at).toEqual(rows[0].t);
    expect(dateOnly.follow_up_at).toBeNull();
  });

  test('a date expression yielding no date is BP304 and start_process is rolled back', async () => {
    await expectRejectedUnchanged(
      db.root,
      () => startProcess(as.admin, 'dates_expression', { due: 'next tuesday', followUp: 'P1D' }),
      'BP304',
      /dueDate of element t .*"next tuesday"/,
    );
    await expectRejectedUnchanged(
      db.root,
      () => startProcess(as.admin, 'dates_expression', { due: 'P1D', followUp: 20300101 }),
      'BP304',
      /followUpDate/,
    );
  });

  test('a value shaped like a date or duration that is none (2030-02-30, 25:00, +25:00, out of range) is BP304', async () => {
    for (const due of ['2030-02-30', '2030-01-15T25:00:00Z', '2030-01-15T10:00:00+25:00', 'P99999999999Y', 'P200000000D']) {
      await expectRejectedUnchanged(
        db.root,
        () => startProcess(as.admin, 'dates_expression', { due, followUp: null }),
        'BP304',
        new RegExp(`dueDate of element t .*"${due.replace(/[.+]/g, '\\$&')}"`),
      );
    }
  });

  test('fractional durations the compiler accepts (PT1.5H, P1,5D) are added to now()', async () => {
    const task = await taskOf('dates_fraction');
    expect(await offsets(as.admin, task.id)).toEqual({ due: '1 day 12:00:00', follow_up: '01:30:00' });
    const fromExpression = await taskOf('dates_expression', { due: 'P0.5D', followUp: 'PT2,5M' });
    expect(await offsets(as.admin, fromExpression.id)).toEqual({ due: '12:00:00', follow_up: '00:02:30' });
  });

  test('a bad date expression in complete_task is BP304 and the completed task stays open', async () => {
    const started = await startProcess(as.admin, 'due_after_task');
    const first = await openTask(as.admin, started.id, 'first');
    await expectRejectedUnchanged(db.root, () => completeTask(as.admin, first.id, { due: '15.01.2030' }), 'BP304', /"15\.01\.2030"/);
    expect((await openTask(as.admin, started.id, 'first')).state).toBe('open');
    await completeTask(as.admin, first.id, { due: '2030-01-15T00:00:00Z' });
    const second = await openTask(as.admin, started.id, 't');
    expect(second.due_at?.toISOString()).toBe('2030-01-15T00:00:00.000Z');
  });
});

describe('priority', () => {
  test('a task without attributes has priority 50 and no assignee, candidates or dates', async () => {
    const task = await taskOf('plain');
    expect(task).toMatchObject({
      tenant_id: TENANT,
      element_id: 't',
      name: 'Task plain',
      assignee: null,
      candidate_users: [],
      candidate_groups: [],
      priority: 50,
      due_at: null,
      follow_up_at: null,
      state: 'open',
      completed_at: null,
      completed_by: null,
    });
  });

  test('a task with other attributes but no priority has priority 50', async () => {
    const task = await taskOf('assignee_only');
    expect(task).toMatchObject({ assignee: 'dora', priority: 50 });
  });

  test('camunda:priority as a literal and as an expression', async () => {
    expect((await taskOf('priority_literal')).priority).toBe(80);
    expect((await taskOf('priority_expression', { prio: 7 })).priority).toBe(7);
    expect((await taskOf('priority_expression', { prio: '-3' })).priority).toBe(-3);
  });

  test('a priority expression that is not an integer is BP303, rolled back', async () => {
    await expectRejectedUnchanged(db.root, () => startProcess(as.admin, 'priority_expression', { prio: 'high' }), 'BP303', /priority/);
    await expectRejectedUnchanged(db.root, () => startProcess(as.admin, 'priority_expression', { prio: 7.5 }), 'BP303', /priority/);
  });
});

describe('zeebe extension elements', () => {
  test('assignmentDefinition, taskSchedule and priorityDefinition with FEEL expressions', async () => {
    const task = await taskOf('zeebe', { owner: 'olga', due: '2030-06-01T12:00:00+02:00', prio: 90 });
    expect(task).toMatchObject({
      assignee: 'olga',
      candidate_users: ['anna', 'ben'],
      candidate_groups: ['sales', 'ops'],
      priority: 90,
    });
    expect(task.due_at?.toISOString()).toBe('2030-06-01T10:00:00.000Z');
    expect(task.follow_up_at?.toISOString()).toBe('2030-01-01T00:00:00.000Z');
  });

  test('zeebe literals, a duration and a candidate group list from a variable', async () => {
    const task = await taskOf('zeebe_literals', { teams: ['night', 'day'] });
    expect(task).toMatchObject({
      assignee: 'olga',
      candidate_users: ['u1', 'u2'],
      candidate_groups: ['night', 'day'],
      priority: 15,
    });
    expect((await offsets(as.admin, task.id)).due).toBe('1 day 02:00:00');
  });

  test('a bad zeebe due date from a FEEL expression is BP304, rolled back', async () => {
    await expectRejectedUnchanged(
      db.root,
      () => startProcess(as.admin, 'zeebe', { owner: 'olga', due: 'soon', prio: 1 }),
      'BP304',
      /dueDate/,
    );
  });
});

test('all attributes of a task are kept after completion', async () => {
  const task = await taskOf('candidates_literal');
  await completeTask(as.admin, task.id);
  const [stored] = await userTasks(as.admin, task.instance_id);
  expect(stored).toMatchObject({
    candidate_users: ['anna', 'ben', 'carl'],
    candidate_groups: ['sales', 'ops'],
    state: 'completed',
    completed_by: 'admin',
    assignee: null,
  });
});

test('attributes are evaluated anew each time a token enters the task, with the variables of that moment', async () => {
  const started = await startProcess(as.admin, 'reassign_loop', { reviewer: 'alice', prio: 10, approved: false });
  const first = await openTask(as.admin, started.id, 't');
  expect(first).toMatchObject({ assignee: 'alice', priority: 10 });
  await completeTask(as.alice, first.id, { reviewer: 'bob', prio: 99 });
  const second = await openTask(as.admin, started.id, 't');
  expect(second.id).not.toBe(first.id);
  expect(second).toMatchObject({ assignee: 'bob', priority: 99 });
  expect((await userTasks(as.admin, started.id)).map((t) => [t.assignee, t.state])).toEqual([
    ['alice', 'completed'],
    ['bob', 'open'],
  ]);
});

describe('forms', () => {
  /** The process definition row of a key (latest version). */
  async function definition(key: string): Promise<{ start_form: unknown; forms: unknown }> {
    const { rows } = await as.admin.query<{ start_form: unknown; forms: unknown }>(
      `select start_form, forms from bpm.process_definition where key = $1 order by version desc limit 1`,
      [key],
    );
    return rows[0];
  }

  test('a task without a form has form null; a literal camunda:formKey is the task\'s {key}', async () => {
    expect((await taskOf('plain')).form).toBeNull();
    expect((await taskOf('form_key')).form).toEqual({ key: 'embedded:app:forms/approve.html' });
  });

  test('a camunda:formKey expression is evaluated when the task is created', async () => {
    expect((await taskOf('form_key_expression', { formName: 'embedded:app:forms/invoice.html' })).form).toEqual({ key: 'embedded:app:forms/invoice.html' });
  });

  test('camunda:formRef keeps its binding and version (latest by default)', async () => {
    expect((await taskOf('form_ref')).form).toEqual({ ref: 'approval', binding: 'version', version: 3 });
    expect((await taskOf('form_ref_latest')).form).toEqual({ ref: 'approval', binding: 'latest' });
  });

  test('zeebe:formDefinition: a linked form (formId, bindingType, versionTag) and an external reference from FEEL', async () => {
    expect((await taskOf('form_linked')).form).toEqual({ id: 'approval-form', binding: 'versionTag', versionTag: 'v2' });
    expect((await taskOf('form_external', { formUrl: 'https://forms.example.com/orders/42' })).form).toEqual({ externalReference: 'https://forms.example.com/orders/42' });
  });

  test('a form embedded in a Camunda 8 model is kept with the definition; task and start name it by key', async () => {
    const task = await taskOf('form_embedded');
    expect(task.form).toEqual({ key: 'camunda-forms:bpmn:UserTaskForm_1' });
    expect(await definition('form_embedded')).toEqual({
      start_form: { key: 'camunda-forms:bpmn:UserTaskForm_1' },
      forms: { UserTaskForm_1: { components: [{ key: 'approved', type: 'checkbox', label: 'Approve' }], type: 'default' } },
    });
    // a bpm_user who may start processes reads the start form of the definition
    const seen = await as.alice.query<{ forms: unknown }>(`select forms from bpm.process_definition where key = 'form_embedded'`);
    expect(seen.rows).toHaveLength(1);
  });

  test('the start form of a process is its none start event\'s; without one it is null', async () => {
    expect(await definition('form_start')).toEqual({ start_form: { key: 'embedded:app:forms/start.html' }, forms: null });
    expect(await definition('plain')).toEqual({ start_form: null, forms: null });
  });

  test('every inner task of a multi-instance user task carries the form', async () => {
    const started = await startProcess(as.admin, 'form_multi');
    const tasks = await userTasks(as.admin, started.id);
    expect(tasks.map((t) => t.form)).toEqual(Array(3).fill({ key: 'embedded:app:forms/review.html' }));
  });

  test('camunda:formData: the task\'s form holds the fields in model order, expression defaults evaluated when the task is created', async () => {
    const task = await taskOf('form_generated', { formName: 'app:order', total: 120, customer: 'ACME' });
    expect(task.form).toEqual({
      key: 'app:order',
      businessKey: 'orderNo',
      fields: [
        { id: 'orderNo', type: 'string', label: 'Order' },
        { id: 'amount', type: 'long', validation: [{ name: 'required' }], defaultValue: 120 },
        { id: 'note', type: 'string', defaultValue: 'Note for ACME' },
        { id: 'level', type: 'enum', defaultValue: 'b', values: [{ id: 'a', name: 'Low' }, { id: 'b', name: 'High' }] },
      ],
    });
    // a default over a variable that is not set yet: no default, the task is created (Camunda 7 evaluates it when the form is shown)
    const early = await taskOf('form_generated', { formName: 'app:order' });
    const fields = (early.form as { fields: Array<{ id: string; defaultValue?: unknown }> }).fields;
    expect(fields.map((f) => [f.id, f.defaultValue ?? null])).toEqual([['orderNo', null], ['amount', null], ['note', null], ['level', 'b']]);
    expect(await definition('form_generated_start')).toEqual({ start_form: { fields: [{ id: 'reason', type: 'string', label: 'Reason' }] }, forms: null });
  });

  test('a form key expression over an unset variable is BP302, rolled back', async () => {
    await expectRejectedUnchanged(db.root, () => startProcess(as.admin, 'form_key_expression'), 'BP302', /"formName"/);
  });
});
