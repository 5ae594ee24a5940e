/**
 * bpm.start_process: which definition it starts, what it stores, who may
 * call it, and every error a start can raise (each rolls the whole start
 * back: no instance, no history, no task).
 */
import type pg from 'pg';
import { createTestDb, type TestDb } from '../../helpers/db';
import { deployFixture, deployProcess, deployXml, expectRejectedUnchanged } from '../../helpers/engine';
import {
  deployRaw,
  graphAround,
  handMadeResource,
  history,
  instance,
  one,
  start,
  tokenCount,
  userTaskBody,
  userTasks,
  type InstanceRow,
} from './support';

const TENANT = 'start-t';

let db: TestDb;
let designer: pg.Client;
let admin: pg.Client;
let ulla: pg.Client;

beforeAll(async () => {
  db = await createTestDb();
  designer = await db.connectAs({ role: 'bpm_designer', tenant: TENANT, user: 'dora' });
  admin = await db.connectAs({ role: 'bpm_admin', tenant: TENANT });
  ulla = await db.connectAs({ role: 'bpm_user', tenant: TENANT, user: 'ulla', groups: ['sales'] });
  await deployFixture(designer, 'straight.bpmn', 'exclusive.bpmn');
});
afterAll(() => db.close());

describe('what starts', () => {
  test('the latest version of the key starts', async () => {
    const body = (task: string): string => `
      <startEvent id="start"/><sequenceFlow id="f1" sourceRef="start" targetRef="${task}"/>
      <userTask id="${task}"/><sequenceFlow id="f2" sourceRef="${task}" targetRef="end"/>
      <endEvent id="end"/>`;
    await deployProcess(designer, 'latest', body('first'));
    await deployProcess(designer, 'latest', body('second'));
    const v3 = await deployProcess(designer, 'latest', body('third'));
    const started = await start(admin, 'latest');
    expect(started.definition_id).toBe(v3.id);
    expect((await userTasks(db.root, started.id)).map((t) => t.element_id)).toEqual(['third']);
  });

  test('an instance runs until every token waits: history and task are stored, the instance is active', async () => {
    const started = await start(ulla, 'straight', { amount: 5, nested: { a: [1, 2] } }, 'order-42');
    expect(started).toMatchObject({
      tenant_id: TENANT,
      business_key: 'order-42',
      state: 'active',
      variables: { amount: 5, nested: { a: [1, 2] } },
      started_by: 'ulla',
      ended_at: null,
      end_reason: null,
      parent_instance_id: null,
    });
    expect(await instance(db.root, started.id)).toEqual(started);
    expect(await history(db.root, started.id)).toEqual(['start:completed', 'task:active']);
    const [task] = await userTasks(db.root, started.id);
    expect(task).toMatchObject({ element_id: 'task', name: 'Task', state: 'open', assignee: null, priority: 50 });
  });

  test('started_by is the caller\'s bpm.user_id, null when it is not set', async () => {
    expect((await start(ulla, 'straight')).started_by).toBe('ulla');
    expect((await start(admin, 'straight')).started_by).toBeNull();
  });

  test('business_key is optional', async () => {
    const row = await one<InstanceRow>(admin, `select * from bpm.start_process('straight')`);
    expect(row.business_key).toBeNull();
    expect(row.variables).toEqual({});
  });

  test('null variables start with no variables', async () => {
    const row = await one<InstanceRow>(admin, `select * from bpm.start_process('straight', null)`);
    expect(row.variables).toEqual({});
  });

  test('an instance that reaches its end within the start is stored completed', async () => {
    await deployProcess(
      designer,
      'instant',
      `<startEvent id="s"/><sequenceFlow id="f" sourceRef="s" targetRef="e"/><endEvent id="e"/>`,
    );
    const row = await start(admin, 'instant', { x: 1 });
    expect(row.state).toBe('completed');
    expect(row.ended_at).toBeInstanceOf(Date);
    expect(await history(db.root, row.id)).toEqual(['s:completed', 'e:completed']);
    expect(await tokenCount(db.root, row.id)).toBe(0);
  });

  test('conditions see the start variables (exclusive gateway picks the matching branch)', async () => {
    const high = await start(admin, 'exclusive', { amount: 5000 });
    const low = await start(admin, 'exclusive', { amount: 5 });
    expect((await userTasks(db.root, high.id)).map((t) => t.element_id)).toEqual(['high']);
    expect((await userTasks(db.root, low.id)).map((t) => t.element_id)).toEqual(['low']);
  });
});

describe('refused starts change nothing', () => {
  test.each([
    ['an array', '[1, 2]', 'array'],
    ['a string', '"amount"', 'string'],
    ['a number', '7', 'number'],
  ])('variables that are %s: BP401', async (_what, json, type) => {
    await expectRejectedUnchanged(
      db.root,
      () => ulla.query(`select bpm.start_process('straight', $1::jsonb)`, [json]),
      'BP401',
      new RegExp(`invalid argument: variables must be a JSON object, got ${type}`),
    );
  });

  test('an unknown key: BP101 naming the key', async () => {
    await expectRejectedUnchanged(
      db.root,
      () => start(ulla, 'no-such-process'),
      'BP101',
      /process definition with key no-such-process not found/,
    );
  });

  test('a key deployed only in another tenant: BP101', async () => {
    const otherDesigner = await db.connectAs({ role: 'bpm_designer', tenant: 'start-other' });
    await deployProcess(otherDesigner, 'elsewhere', userTaskBody());
    await expectRejectedUnchanged(db.root, () => start(admin, 'elsewhere'), 'BP101', /process definition with key elsewhere not found/);
  });

  test.each(['bpm_designer', 'bpm_engine'] as const)('%s has no execute grant on start_process (42501)', async (role) => {
    const client = await db.connectAs({ role, tenant: TENANT, user: 'x' });
    await expectRejectedUnchanged(db.root, () => start(client, 'straight'), '42501', /permission denied for function start_process/);
  });

  test('no outgoing flow can be taken: BP301 naming the gateway', async () => {
    await deployProcess(
      designer,
      'dead_end',
      `<startEvent id="s"/><sequenceFlow id="f1" sourceRef="s" targetRef="gw"/>
       <exclusiveGateway id="gw"/>
       <sequenceFlow id="big" sourceRef="gw" targetRef="e"><conditionExpression>\${amount &gt; 10}</conditionExpression></sequenceFlow>
       <endEvent id="e"/>`,
    );
    await expectRejectedUnchanged(
      db.root,
      () => start(admin, 'dead_end', { amount: 1 }),
      'BP301',
      /no outgoing sequence flow of exclusiveGateway gw can be taken/,
    );
  });

  test('a condition over a variable that is not set: BP302 naming variable, expression and flow', async () => {
    await expectRejectedUnchanged(
      db.root,
      () => start(admin, 'exclusive', { other: 1 }),
      'BP302',
      /unknown variable "amount" in expression \$\{amount > 1000\} of element toHigh/,
    );
  });

  test('a priority that is not an integer: BP303 naming the element', async () => {
    await deployProcess(designer, 'bad_priority', userTaskBody('camunda:priority="${prio}"'));
    await expectRejectedUnchanged(
      db.root,
      () => start(admin, 'bad_priority', { prio: 'urgent' }),
      'BP303',
      /priority of element task is not an integer: "urgent"/,
    );
  });

  test('a due date that is neither an ISO 8601 date nor a duration: BP304 naming the element', async () => {
    await deployProcess(designer, 'bad_due', userTaskBody('camunda:dueDate="${due}"'));
    await expectRejectedUnchanged(
      db.root,
      () => start(admin, 'bad_due', { due: 'tomorrow' }),
      'BP304',
      /dueDate of element task is neither an ISO 8601 date nor a duration: "tomorrow"/,
    );
  });

  test('a division by zero in a condition makes it non-boolean: BP303 naming expression and flow', async () => {
    await deployProcess(
      designer,
      'div_zero_condition',
      `<startEvent id="s"/><sequenceFlow id="f1" sourceRef="s" targetRef="gw"/>
       <exclusiveGateway id="gw" default="other"/>
       <sequenceFlow id="ratio" sourceRef="gw" targetRef="e"><conditionExpression>\${amount / divisor &gt; 1}</conditionExpression></sequenceFlow>
       <sequenceFlow id="other" sourceRef="gw" targetRef="e"/>
       <endEvent id="e"/>`,
    );
    await expectRejectedUnchanged(
      db.root,
      () => start(admin, 'div_zero_condition', { amount: 1, divisor: 0 }),
      'BP303',
      /condition \$\{amount \/ divisor > 1\} of element ratio did not evaluate to a boolean/,
    );
  });

  test('a division by zero in a value expression is BP303 naming the expression, the element and the reason', async () => {
    await deployProcess(designer, 'div_zero_value', userTaskBody('camunda:priority="${amount / divisor}"'));
    await expectRejectedUnchanged(db.root, () => start(admin, 'div_zero_value', { amount: 1, divisor: 0 }), 'BP303',
      /expression \$\{amount \/ divisor\} of element task cannot be evaluated: division by zero/);
  });

  test('a numeric overflow in a FEEL expression is BP303 too', async () => {
    await deployProcess(designer, 'overflow_value', userTaskBody('camunda:priority="=if big then 10 ** 100000 * 10 ** 100000 else 1"'));
    await expectRejectedUnchanged(db.root, () => start(admin, 'overflow_value', { big: true }), 'BP303', /expression =if big .* of element task cannot be evaluated: /);
  });

  test('an element the engine cannot execute (hand-made graph: service task without topic): BP305 naming it', async () => {
    await deployRaw(designer, [handMadeResource('no_topic', graphAround({ id: 'work', type: 'serviceTask' }))]);
    await expectRejectedUnchanged(db.root, () => start(admin, 'no_topic'), 'BP305', /element work has no external task topic/);
  });

  test('a cycle without a wait state: BP306 after 2,000 steps, nothing stored', async () => {
    await deployProcess(
      designer,
      'endless',
      `<startEvent id="s"/><sequenceFlow id="f1" sourceRef="s" targetRef="m"/>
       <manualTask id="m"/><sequenceFlow id="f2" sourceRef="m" targetRef="g"/>
       <exclusiveGateway id="g"/>
       <sequenceFlow id="back" sourceRef="g" targetRef="m"><conditionExpression>\${true}</conditionExpression></sequenceFlow>
       <sequenceFlow id="out" sourceRef="g" targetRef="e"><conditionExpression>\${false}</conditionExpression></sequenceFlow>
       <endEvent id="e"/>`,
    );
    await expectRejectedUnchanged(
      db.root,
      () => start(admin, 'endless'),
      'BP306',
      /took more than 2000 automatic steps in one call .* at element [mg]\b/,
    );
  }, 60_000);
});

describe('request ids: a repeated start returns the first one\'s instance', () => {
  const startWithId = async (client: pg.Client, key: string, requestId: string, variables: object = {}): Promise<InstanceRow> =>
    one<InstanceRow>(client, `select * from bpm.start_process($1, $2::jsonb, null, $3)`, [key, JSON.stringify(variables), requestId]);
  const countWith = async (requestId: string, tenant = TENANT): Promise<number> => {
    const { rows } = await db.root.query<{ n: string }>(
      `select count(*) n from bpm_private.start_request where tenant_id = $1 and request_id = $2`,
      [tenant, requestId],
    );
    return Number(rows[0].n);
  };

  test('the same id twice: one instance, one task; the repeat returns the instance as it is now', async () => {
    const first = await startWithId(ulla, 'straight', 'req-1', { amount: 1 });
    await admin.query(`select bpm.set_variables($1, '{"amount": 2}')`, [first.id]);
    const again = await startWithId(ulla, 'straight', 'req-1', { amount: 99 });
    expect(again.id).toBe(first.id);
    expect(again.variables).toEqual({ amount: 2 });
    expect(await userTasks(db.root, first.id)).toHaveLength(1);
    expect(await countWith('req-1')).toBe(1);
  });

  test('two connections starting with one id at the same moment get the same instance', async () => {
    const other = await db.connectAs({ role: 'bpm_admin', tenant: TENANT });
    try {
      for (let round = 0; round < 20; round++) {
        const id = `race-${round}`;
        const [a, b] = await Promise.all([startWithId(admin, 'straight', id), startWithId(other, 'straight', id)]);
        expect(a.id).toBe(b.id);
        expect(await countWith(id)).toBe(1);
      }
      const { rows } = await db.root.query<{ n: string }>(
        `select count(*) n from bpm.process_instance i join bpm_private.start_request r on r.tenant_id = i.tenant_id and r.instance_id = i.id
         where r.tenant_id = $1 and r.request_id like 'race-%'`,
        [TENANT],
      );
      expect(Number(rows[0].n)).toBe(20);
    } finally {
      await other.end();
    }
  });

  test('ids belong to a tenant: the same id in another tenant starts its own instance', async () => {
    const otherDesigner = await db.connectAs({ role: 'bpm_designer', tenant: 'start-ids' });
    const otherAdmin = await db.connectAs({ role: 'bpm_admin', tenant: 'start-ids' });
    try {
      await deployFixture(otherDesigner, 'straight.bpmn');
      const mine = await startWithId(admin, 'straight', 'shared-id');
      const theirs = await startWithId(otherAdmin, 'straight', 'shared-id');
      expect(theirs.id).not.toBe(mine.id);
      expect(theirs.tenant_id).toBe('start-ids');
    } finally {
      await otherDesigner.end();
      await otherAdmin.end();
    }
  });

  test('an id that started another process: BP208 naming both, nothing started', async () => {
    const first = await startWithId(admin, 'straight', 'req-other');
    await expectRejectedUnchanged(
      db.root,
      () => startWithId(admin, 'exclusive', 'req-other', { amount: 5 }),
      'BP208',
      new RegExp(`request id req-other already started instance ${first.id} of process straight, not of exclusive`),
    );
  });

  test.each([
    ['empty', ''],
    ['over 200 characters', 'x'.repeat(201)],
  ])('a request id that is %s: BP401, nothing started', async (_what, requestId) => {
    await expectRejectedUnchanged(db.root, () => startWithId(admin, 'straight', requestId), 'BP401', /request_id must be 1 to 200 characters/);
  });

  test('a start that fails keeps no request id: the retry starts', async () => {
    await expectRejectedUnchanged(db.root, () => startWithId(admin, 'exclusive', 'req-fails', {}), 'BP302');
    const retried = await startWithId(admin, 'exclusive', 'req-fails', { amount: 5 });
    expect(retried.state).toBe('active');
    expect(await countWith('req-fails')).toBe(1);
  });

  test('the id lives as long as its instance: deleting the instance frees it', async () => {
    const first = await startWithId(admin, 'straight', 'req-deleted');
    await db.root.query(`delete from bpm.process_instance where tenant_id = $1 and id = $2`, [TENANT, first.id]);
    expect(await countWith('req-deleted')).toBe(0);
    const second = await startWithId(admin, 'straight', 'req-deleted');
    expect(second.id).not.toBe(first.id);
  });
});

describe('unique business keys (pgbpm:uniqueBusinessKey)', () => {
  const unique = (value = 'true', label: 'camunda' | 'zeebe' = 'camunda'): string =>
    label === 'camunda'
      ? `<extensionElements><camunda:properties><camunda:property name="pgbpm:uniqueBusinessKey" value="${value}"/></camunda:properties></extensionElements>`
      : `<extensionElements><zeebe:properties><zeebe:property name="pgbpm:uniqueBusinessKey" value="${value}"/></zeebe:properties></extensionElements>`;
  const startKey = (client: pg.ClientBase, key: string, businessKey: string): Promise<InstanceRow> => start(client, key, {}, businessKey);

  beforeAll(async () => {
    await deployProcess(designer, 'bk_unique', unique() + userTaskBody());
    await deployProcess(designer, 'bk_unique_zeebe', unique('true', 'zeebe') + userTaskBody());
    await deployProcess(designer, 'bk_free', unique('false') + userTaskBody());
    await deployXml(designer, [{
      name: 'bk_message.bpmn',
      xml: `<?xml version="1.0" encoding="UTF-8"?>
<definitions xmlns="http://www.omg.org/spec/BPMN/20100524/MODEL" xmlns:camunda="http://camunda.org/schema/1.0/bpmn" id="defs_bk_message" targetNamespace="http://pgbpm.test">
  <message id="m_order" name="OrderPlaced"/>
  <process id="bk_message" isExecutable="true">${unique()}
    <startEvent id="start"><messageEventDefinition messageRef="m_order"/></startEvent>
    <sequenceFlow id="f1" sourceRef="start" targetRef="task"/><userTask id="task"/>
    <sequenceFlow id="f2" sourceRef="task" targetRef="end"/><endEvent id="end"/>
  </process>
</definitions>`,
    }]);
  });

  test('a second start with the business key of an active instance: BP209 naming the process, the key and the instance; nothing started', async () => {
    const first = await startKey(ulla, 'bk_unique', 'order-1');
    await expectRejectedUnchanged(
      db.root,
      () => startKey(ulla, 'bk_unique', 'order-1'),
      'BP209',
      new RegExp(`process bk_unique has an active instance ${first.id} with business key order-1 already`),
    );
    // other keys, starts without a key, and other processes are not affected
    await startKey(ulla, 'bk_unique', 'order-2');
    await start(ulla, 'bk_unique');
    await start(ulla, 'bk_unique');
    await startKey(ulla, 'bk_free', 'order-1');
    await startKey(ulla, 'bk_free', 'order-1');
    await startKey(ulla, 'straight', 'order-1');
  });

  test('suspended instances hold their key; once the instance ended (completed or cancelled) the key is free again', async () => {
    const first = await startKey(admin, 'bk_unique', 'order-3');
    await admin.query('select bpm.suspend_process_instance($1)', [first.id]);
    await expectRejectedUnchanged(db.root, () => startKey(admin, 'bk_unique', 'order-3'), 'BP209');
    await admin.query('select bpm.activate_process_instance($1)', [first.id]);
    const [task] = await userTasks(db.root, first.id);
    await admin.query('select bpm.complete_task($1)', [task.id]);
    const second = await startKey(admin, 'bk_unique', 'order-3');
    await admin.query(`select bpm.cancel_process_instance($1, 'test')`, [second.id]);
    expect((await startKey(admin, 'bk_unique', 'order-3')).state).toBe('active');
  });

  test('the rule spans versions: an instance of v1 holds the key against a start of v2; zeebe:properties work the same', async () => {
    const v1 = await startKey(admin, 'bk_unique', 'order-4');
    expect((await deployProcess(designer, 'bk_unique', unique() + userTaskBody('camunda:priority="70"'))).version).toBe(2);
    await expectRejectedUnchanged(db.root, () => startKey(admin, 'bk_unique', 'order-4'), 'BP209', new RegExp(v1.id));
    await startKey(admin, 'bk_unique_zeebe', 'order-4');
    await expectRejectedUnchanged(db.root, () => startKey(admin, 'bk_unique_zeebe', 'order-4'), 'BP209');
  });

  test('a message start event takes the correlation key as business key: a second message for an active key is refused (BP209)', async () => {
    const { rows: [first] } = await admin.query<{ id: string; business_key: string }>(
      `select (i).id, (i).business_key from (select bpm.correlate_message('OrderPlaced', 'order-5') as i) s`);
    expect(first.business_key).toBe('order-5');
    await expectRejectedUnchanged(db.root, () => admin.query(`select bpm.correlate_message('OrderPlaced', 'order-5')`), 'BP209');
  });

  test('a call activity passing the business key to a process with unique keys: the second caller with that key fails (BP209) and starts nothing', async () => {
    await deployProcess(designer, 'bk_caller', `
      <startEvent id="s"/><sequenceFlow id="f1" sourceRef="s" targetRef="call"/>
      <callActivity id="call" calledElement="bk_unique"><extensionElements><camunda:in businessKey="#{execution.processBusinessKey}"/></extensionElements></callActivity>
      <sequenceFlow id="f2" sourceRef="call" targetRef="e"/><endEvent id="e"/>`);
    const first = await startKey(admin, 'bk_caller', 'order-7');
    const { rows: [child] } = await db.root.query<{ business_key: string }>('select business_key from bpm.process_instance where parent_instance_id = $1', [first.id]);
    expect(child.business_key).toBe('order-7');
    await expectRejectedUnchanged(db.root, () => startKey(admin, 'bk_caller', 'order-7'), 'BP209', /process bk_unique has an active instance/);
  });

  test('two connections starting one key at the same moment: exactly one instance, the other gets BP209 (30 races)', async () => {
    const other = await db.connectAs({ role: 'bpm_user', tenant: TENANT, user: 'olga' });
    try {
      for (let round = 0; round < 30; round++) {
        const key = `race-${round}`;
        const settled = await Promise.allSettled([startKey(ulla, 'bk_unique', key), startKey(other, 'bk_unique', key)]);
        const codes = settled.map((r) => (r.status === 'fulfilled' ? 'ok' : (r.reason as { code?: string }).code)).sort();
        expect(codes).toEqual(['BP209', 'ok']);
      }
      const { rows } = await db.root.query<{ n: number }>(
        `select count(*)::int as n from bpm.process_instance where tenant_id = $1 and business_key like 'race-%'`, [TENANT]);
      expect(rows[0].n).toBe(30);
    } finally {
      await other.end();
    }
  });

  test('business keys are unique per tenant: another tenant starts its own instance with the same key', async () => {
    const otherDesigner = await db.connectAs({ role: 'bpm_designer', tenant: 'start-bk' });
    const otherAdmin = await db.connectAs({ role: 'bpm_admin', tenant: 'start-bk' });
    try {
      await deployProcess(otherDesigner, 'bk_unique', unique() + userTaskBody());
      await startKey(admin, 'bk_unique', 'order-6');
      expect((await startKey(otherAdmin, 'bk_unique', 'order-6')).tenant_id).toBe('start-bk');
    } finally {
      await otherDesigner.end();
      await otherAdmin.end();
    }
  });
});

describe('candidate starters (camunda:candidateStarterUsers / candidateStarterGroups)', () => {
  const MODEL = (attributes: string): string => `<?xml version="1.0" encoding="UTF-8"?>
<definitions xmlns="http://www.omg.org/spec/BPMN/20100524/MODEL" xmlns:camunda="http://camunda.org/schema/1.0/bpmn" id="d" targetNamespace="http://pgbpm.test">
  <process id="starters" isExecutable="true" ${attributes}>
    <startEvent id="s"/><sequenceFlow id="f1" sourceRef="s" targetRef="t"/><userTask id="t"/>
  </process>
</definitions>`;

  test('a bpm_user starts a process with candidate starters only as one of them; an admin always may', async () => {
    await deployXml(designer, [{ name: 'starters.bpmn', xml: MODEL('camunda:candidateStarterGroups="sales, support" camunda:candidateStarterUsers="olga"') }]);
    const { rows: [def] } = await ulla.query<{ candidate_starter_users: string[]; candidate_starter_groups: string[] }>(
      `select candidate_starter_users, candidate_starter_groups from bpm.process_definition where key = 'starters'`,
    );
    expect(def).toEqual({ candidate_starter_users: ['olga'], candidate_starter_groups: ['sales', 'support'] });
    // ulla is in group sales
    const { rows: [byGroup] } = await ulla.query<{ state: string }>(`select (bpm.start_process('starters')).state`);
    expect(byGroup.state).toBe('active');
    const olga = await db.connectAs({ role: 'bpm_user', tenant: TENANT, user: 'olga', groups: ['finance'] });
    const pete = await db.connectAs({ role: 'bpm_user', tenant: TENANT, user: 'pete', groups: ['finance'] });
    try {
      const { rows: [byUser] } = await olga.query<{ state: string }>(`select (bpm.start_process('starters')).state`);
      expect(byUser.state).toBe('active');
      await expectRejectedUnchanged(db.root, () => pete.query(`select bpm.start_process('starters')`), 'BP002',
        /user pete may not start process starters: its candidate starters are users \{olga\} and groups \{sales, support\}/);
    } finally {
      await olga.end();
      await pete.end();
    }
    const { rows: [byAdmin] } = await admin.query<{ state: string }>(`select (bpm.start_process('starters')).state`);
    expect(byAdmin.state).toBe('active');
  });

  test('without candidate starters any bpm_user may start it', async () => {
    await deployXml(designer, [{ name: 'starters.bpmn', xml: MODEL('') }]);
    const pete = await db.connectAs({ role: 'bpm_user', tenant: TENANT, user: 'pete' });
    try {
      const { rows: [started] } = await pete.query<{ state: string }>(`select (bpm.start_process('starters')).state`);
      expect(started.state).toBe('active');
    } finally {
      await pete.end();
    }
  });
});
