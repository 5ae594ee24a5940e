/**
 * Process variables: start variables are stored as given; complete_task and
 * complete_external_task merge per top-level key (jsonb ||): a null value is
 * stored as JSON null, a nested object replaces the old one (no deep merge).
 */
import { createTestDb, type TestDb } from '../../helpers/db';
import { deployProcess, expectRejectedUnchanged } from '../../helpers/engine';
import {
  actors,
  completeExternalTask,
  completeTask,
  fetchAndLock,
  getInstance,
  one,
  openTask,
  startProcess,
  TENANT,
  type Actors,
} from './support';

let db: TestDb;
let as: Actors;

beforeAll(async () => {
  db = await createTestDb();
  as = await actors(db);
  // start → first (user) → work (external, own topic per key) → last (user) → end
  for (const key of ['vars', 'vars_external']) {
    await deployProcess(as.admin, key, `
      <startEvent id="start"/>
      <sequenceFlow id="f1" sourceRef="start" targetRef="first"/>
      <userTask id="first"/>
      <sequenceFlow id="f2" sourceRef="first" targetRef="work"/>
      <serviceTask id="work" camunda:type="external" camunda:topic="${key}-work"/>
      <sequenceFlow id="f3" sourceRef="work" targetRef="last"/>
      <userTask id="last"/>
      <sequenceFlow id="f4" sourceRef="last" targetRef="end"/>
      <endEvent id="end"/>`);
  }
  await deployProcess(as.admin, 'vars_auto', `
    <startEvent id="start"/>
    <sequenceFlow id="f1" sourceRef="start" targetRef="end"/>
    <endEvent id="end"/>`);
});

afterAll(() => db.close());

/** The instance variables as stored, with the jsonb type of one key (to tell JSON null from a missing key). */
async function stored(instanceId: string, key: string): Promise<{ variables: Record<string, unknown>; type: string | null; has: boolean }> {
  const { rows } = await as.admin.query<{ variables: Record<string, unknown>; type: string | null; has: boolean }>(
    'select variables, jsonb_typeof(variables -> $2) as type, variables ? $2 as has from bpm.process_instance where id = $1',
    [instanceId, key],
  );
  return one(rows, `instance ${instanceId}`);
}

const START = {
  text: 'héllo "quoted" \\ ✓',
  int: 42,
  float: 3.25,
  negative: -7,
  yes: true,
  no: false,
  nothing: null,
  list: [1, 'two', { three: 3 }, null],
  nested: { a: { b: { c: [true] } }, keep: 'me' },
  empty: {},
};

test('start variables are stored exactly, with every JSON type', async () => {
  const started = await startProcess(as.alice, 'vars', START);
  expect(started.variables).toEqual(START);
  expect((await getInstance(as.admin, started.id)).variables).toEqual(START);
  const nothing = await stored(started.id, 'nothing');
  expect(nothing).toMatchObject({ has: true, type: 'null' });
});

test('variables of an instance that ends within start_process are stored too', async () => {
  const started = await startProcess(as.admin, 'vars_auto', { a: 1 });
  expect(started).toMatchObject({ state: 'completed', variables: { a: 1 } });
  expect((await getInstance(as.admin, started.id)).variables).toEqual({ a: 1 });
});

test('complete_task merges per top-level key: overwrite, add, keep, JSON null, nested objects replaced', async () => {
  const started = await startProcess(as.admin, 'vars', { a: 1, b: { x: 1, y: 2 }, c: 'keep', d: 'to null' });
  const first = await openTask(as.admin, started.id, 'first');
  await completeTask(as.admin, first.id, { a: 2, b: { x: 9 }, d: null, e: [1] });

  const after = await stored(started.id, 'd');
  expect(after.variables).toEqual({ a: 2, b: { x: 9 }, c: 'keep', d: null, e: [1] });
  expect(after).toMatchObject({ has: true, type: 'null' });
  // the nested object was replaced, not deep-merged: b.y is gone
  expect(await stored(started.id, 'b')).toMatchObject({ type: 'object', variables: { b: { x: 9 } } });
});

test('complete_task with no variables leaves them unchanged', async () => {
  const started = await startProcess(as.admin, 'vars', { a: 1 });
  await completeTask(as.admin, (await openTask(as.admin, started.id, 'first')).id);
  expect((await getInstance(as.admin, started.id)).variables).toEqual({ a: 1 });
});

test('an external task sees the variables at fetch time and its completion merges like complete_task', async () => {
  const started = await startProcess(as.admin, 'vars_external', { a: 1, nested: { x: 1, y: 1 } });
  await completeTask(as.admin, (await openTask(as.admin, started.id, 'first')).id, { fromUser: 'u' });

  const work = one(await fetchAndLock(as.engine, 'vars_external-work', 'w'), 'vars_external-work task');
  expect(work.variables).toEqual({ a: 1, nested: { x: 1, y: 1 }, fromUser: 'u' });
  await completeExternalTask(as.engine, work.id, 'w', { a: null, nested: { z: 3 }, result: 'ok' });
  expect((await getInstance(as.admin, started.id)).variables).toEqual({ a: null, nested: { z: 3 }, fromUser: 'u', result: 'ok' });

  // a bpm_user completing the last task merges as well
  const last = await openTask(as.admin, started.id, 'last');
  await as.admin.query('select bpm.set_assignee($1, $2)', [last.id, 'alice']);
  await completeTask(as.alice, last.id, { approvedBy: 'alice' });
  const done = await getInstance(as.admin, started.id);
  expect(done.state).toBe('completed');
  expect(done.variables).toEqual({ a: null, nested: { z: 3 }, fromUser: 'u', result: 'ok', approvedBy: 'alice' });
});

test('variables that are not a JSON object are BP401 and change nothing', async () => {
  await expectRejectedUnchanged(
    db.root,
    () => as.admin.query(`select bpm.start_process('vars', '[1, 2]'::jsonb)`),
    'BP401',
    /variables must be a JSON object/,
  );
  const started = await startProcess(as.admin, 'vars', { a: 1 });
  const first = await openTask(as.admin, started.id, 'first');
  await expectRejectedUnchanged(db.root, () => as.admin.query(`select bpm.complete_task($1, '"x"'::jsonb)`, [first.id]), 'BP401');
  expect((await openTask(as.admin, started.id, 'first')).state).toBe('open');
});

describe('strings built from parts', () => {
  beforeAll(async () => {
    // output mappings of a task write the built strings to the instance
    await deployProcess(as.admin, 'vars_strings', `
      <startEvent id="start"/>
      <sequenceFlow id="f1" sourceRef="start" targetRef="t"/>
      <task id="t"><extensionElements>
        <camunda:inputOutput>
          <camunda:outputParameter name="subject">Order \${orderId} for \${customer.name} (\${customer.vip})</camunda:outputParameter>
          <camunda:outputParameter name="withNull">[\${nothing}]</camunda:outputParameter>
        </camunda:inputOutput>
      </extensionElements></task>
      <sequenceFlow id="f2" sourceRef="t" targetRef="u"/>
      <task id="u"><extensionElements>
        <zeebe:ioMapping>
          <zeebe:output source="=&quot;#&quot; + string(orderId) + &quot; / &quot; + customer.name" target="label"/>
          <zeebe:output source="=&quot;total: &quot; + string(total * 2)" target="doubled"/>
          <zeebe:output source="=&quot;[&quot; + nothing + &quot;]&quot;" target="feelNull"/>
        </zeebe:ioMapping>
      </extensionElements></task>
      <sequenceFlow id="f3" sourceRef="u" targetRef="ask"/>
      <userTask id="ask" camunda:assignee="\${customer.name}-desk" camunda:formKey="embedded:app:forms/\${form}.html"/>`);
  });

  test('a JUEL template and a FEEL concatenation build text from the variables (numbers and booleans as text)', async () => {
    const started = await startProcess(as.admin, 'vars_strings', { orderId: 1042, customer: { name: 'Ada', vip: true }, nothing: null, total: 12.5, form: 'approve' });
    const { variables } = await getInstance(as.admin, started.id);
    expect(variables).toMatchObject({
      subject: 'Order 1042 for Ada (true)',
      withNull: '[]',
      label: '#1042 / Ada',
      doubled: 'total: 25.0',
      feelNull: null,
    });
    const task = await openTask(as.admin, started.id, 'ask');
    expect(task).toMatchObject({ assignee: 'Ada-desk', form: { key: 'embedded:app:forms/approve.html' } });
  });

  test('a template over a variable that is not set is BP302, rolled back', async () => {
    await expectRejectedUnchanged(db.root, () => startProcess(as.admin, 'vars_strings', { customer: { name: 'Ada' } }), 'BP302', /"orderId"/);
  });
});

describe('FEEL + over variables', () => {
  test('strings concatenate, numbers add, a null or mixed types give null (decided when it runs)', async () => {
    await deployProcess(as.admin, 'vars_plus', `
      <startEvent id="start"/><sequenceFlow id="f1" sourceRef="start" targetRef="t"/>
      <task id="t"><extensionElements><zeebe:ioMapping>
        <zeebe:output source="=first + last" target="name"/>
        <zeebe:output source="=a + b + c" target="sum"/>
        <zeebe:output source="=first + a" target="mixed"/>
        <zeebe:output source="=first + missing" target="withNull"/>
      </zeebe:ioMapping></extensionElements></task>
      <sequenceFlow id="f2" sourceRef="t" targetRef="ask"/><userTask id="ask"/>`);
    const started = await startProcess(as.admin, 'vars_plus', { first: 'Ada', last: 'Lovelace', a: 1, b: 2.5, c: -1, missing: null });
    const { variables } = await getInstance(as.admin, started.id);
    expect(variables).toMatchObject({ name: 'AdaLovelace', sum: 2.5, mixed: null, withNull: null });
  });
});

describe('zeebe mappings with nested targets', () => {
  beforeAll(async () => {
    await deployProcess(as.admin, 'vars_nested', `
      <startEvent id="start"/>
      <sequenceFlow id="f1" sourceRef="start" targetRef="sub"/>
      <subProcess id="sub">
        <extensionElements><zeebe:ioMapping>
          <zeebe:input source="=customer.name" target="sender.name"/>
          <zeebe:input source="=customer.city" target="sender.address.city"/>
          <zeebe:output source="=sender" target="order.sender"/>
        </zeebe:ioMapping></extensionElements>
        <startEvent id="is"/><sequenceFlow id="i1" sourceRef="is" targetRef="ask"/>
        <userTask id="ask"/><sequenceFlow id="i2" sourceRef="ask" targetRef="ie"/><endEvent id="ie"/>
      </subProcess>
      <sequenceFlow id="f2" sourceRef="sub" targetRef="u"/>
      <task id="u"><extensionElements><zeebe:ioMapping>
        <zeebe:output source="=shipping.price" target="order.costs.shipping"/>
        <zeebe:output source="=&quot;paid&quot;" target="order.status"/>
        <zeebe:output source="=1" target="flag.on"/>
      </zeebe:ioMapping></extensionElements></task>
      <sequenceFlow id="f3" sourceRef="u" targetRef="done"/>
      <userTask id="done"/>`);
  });

  test('a nested target sets a path inside its variable, keeping the rest; missing objects are created, a non-object replaced', async () => {
    const started = await startProcess(as.admin, 'vars_nested', {
      customer: { name: 'Ada', city: 'Turin' },
      order: { id: 7, costs: { handling: 2 } },
      shipping: { price: 9.5 },
      flag: 'x',
    });
    const ask = await openTask(as.admin, started.id, 'ask');
    expect(ask.local_variables).toEqual({ sender: { name: 'Ada', address: { city: 'Turin' } } });
    await completeTask(as.admin, ask.id);
    const { variables } = await getInstance(as.admin, started.id);
    expect(variables.order).toEqual({ id: 7, costs: { handling: 2, shipping: 9.5 }, status: 'paid', sender: { name: 'Ada', address: { city: 'Turin' } } });
    expect(variables.flag).toEqual({ on: 1 });
    expect(variables).not.toHaveProperty('sender');
  });
});

describe('camunda:initiator', () => {
  beforeAll(async () => {
    await deployProcess(as.admin, 'vars_initiator', `
      <startEvent id="start" camunda:initiator="starter"/>
      <sequenceFlow id="f1" sourceRef="start" targetRef="review"/>
      <userTask id="review" camunda:assignee="\${starter}"/>`);
  });

  test('the variable named by camunda:initiator holds the id of the user who started the instance', async () => {
    const started = await startProcess(as.alice, 'vars_initiator', { amount: 1 });
    expect((await getInstance(as.admin, started.id)).variables).toEqual({ amount: 1, starter: 'alice' });
    expect((await openTask(as.admin, started.id, 'review')).assignee).toBe('alice');
  });

  test('without a user id it is null', async () => {
    const anonymous = await db.connectAs({ role: 'bpm_admin', tenant: TENANT });
    try {
      const started = await startProcess(anonymous, 'vars_initiator');
      expect((await getInstance(as.admin, started.id)).variables).toEqual({ starter: null });
    } finally {
      await anonymous.end();
    }
  });
});
