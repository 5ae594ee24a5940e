/**
 * The two real models, deployed unchanged and driven through every wait
 * state to the end: camunda7-order.bpmn (Camunda Modeler, camunda:
 * attributes, JUEL) and camunda8-order.bpmn (zeebe: extension elements,
 * FEEL). Each runs along several paths chosen by its variables.
 */
import fs from 'node:fs';
import path from 'node:path';
import type pg from 'pg';
import { createTestDb, type TestDb } from '../../helpers/db';
import { deployFixture, FIXTURES, type DeployedDefinition } from '../../helpers/engine';
import {
  actors,
  completeExternalTask,
  completeTask,
  externalTasks,
  fetchAndLock,
  getInstance,
  history,
  one,
  openTask,
  openTaskIds,
  startProcess,
  TENANT,
  throwBpmnError,
  waits,
  userTasks,
  type Actors,
  type ExternalTask,
  type Variables,
} from './support';

let db: TestDb;
let as: Actors;
/** bpm_users: sam (sales), will (warehouse), anna, ben, olga, rita. */
const users: Record<string, pg.Client> = {};
let c7: DeployedDefinition;
let c8: DeployedDefinition;

function user(name: string): pg.Client {
  const client = users[name];
  if (client === undefined) throw new Error(`no client for user ${name}`);
  return client;
}

beforeAll(async () => {
  db = await createTestDb();
  as = await actors(db);
  const groups: Record<string, string[]> = { sam: ['sales'], will: ['warehouse'], anna: [], ben: [], olga: [], rita: [] };
  for (const [name, g] of Object.entries(groups)) {
    users[name] = await db.connectAs({ role: 'bpm_user', tenant: TENANT, user: name, groups: g });
  }
  [c7] = await deployFixture(as.admin, 'camunda7-order.bpmn');
  [c8] = await deployFixture(as.admin, 'camunda8-order.bpmn');
});

afterAll(() => db.close());

/** Fetches the one open external task of `topic` and checks it belongs to the instance. */
/** The stored XML and version tag of a deployed definition. */
async function storedResource(definitionId: string): Promise<{ xml: string; version_tag: string | null }> {
  const { rows } = await as.admin.query<{ xml: string; version_tag: string | null }>(
    `select dep.xml, d.version_tag from bpm.process_definition d
     join bpm.deployment dep on dep.tenant_id = d.tenant_id and dep.id = d.deployment_id where d.id = $1`,
    [definitionId],
  );
  return one(rows, `definition ${definitionId}`);
}

async function fetchFor(instanceId: string, topic: string, worker: string): Promise<ExternalTask> {
  const fetched = one(await fetchAndLock(as.engine, topic, worker), `fetched ${topic} task`);
  expect(fetched).toMatchObject({ instance_id: instanceId, topic, worker_id: worker, state: 'open' });
  return fetched;
}

describe('camunda7-order.bpmn', () => {
  const KEY = 'order';

  test('deploys unchanged: the stored resource is the exact file, with its version tag', async () => {
    const definition = c7;
    expect(definition).toMatchObject({ key: KEY, version: 1, name: 'Order fulfilment' });
    const stored = await storedResource(definition.id);
    expect(stored.xml).toBe(fs.readFileSync(path.join(FIXTURES, 'camunda7-order.bpmn'), 'utf8'));
    expect(stored.version_tag).toBe('1.2');
  });

  /** Starts as sam and completes the review (offered to group sales) as sam. */
  async function startAndReview(variables: Variables): Promise<string> {
    const started = await startProcess(user('sam'), KEY, variables, `order-${String(variables.amount)}`);
    expect(started).toMatchObject({ state: 'active', started_by: 'sam', variables });
    const review = await openTask(as.admin, started.id, 'Task_Review');
    expect(review).toMatchObject({ name: 'Review order', assignee: null, candidate_groups: ['sales'], priority: 70 });
    const { rows } = await as.admin.query<{ due: string }>('select (due_at - created_at)::text as due from bpm.user_task where id = $1', [review.id]);
    expect(rows[0].due).toBe('2 days');
    const done = await completeTask(user('sam'), review.id);
    expect(done).toMatchObject({ state: 'completed', assignee: 'sam', completed_by: 'sam' });
    return started.id;
  }

  /**
   * Task_Charge is camunda:asyncBefore: the token waits for its bpm_continue
   * job; run the continuation as the worker's job would (as bpm_engine).
   */
  async function continueCharge(id: string): Promise<void> {
    const { rows } = await db.root.query<{ id: string; kind: string; element_id: string }>(
      'select id, kind, element_id from bpm_private.token where instance_id = $1',
      [id],
    );
    expect(rows).toEqual([{ id: expect.any(String), kind: 'asyncBefore', element_id: 'Task_Charge' }]);
    const job = await db.root.query(`select 1 from graphile_worker.jobs where key = $1 and task_identifier = 'bpm_continue'`, [`bpm-async:${rows[0].id}`]);
    expect(job.rowCount).toBe(1);
    await as.engine.query('select bpm.continue_async($1)', [rows[0].id]);
  }

  /** Ship (warehouse) and notify (candidate anna) after the parallel fork; returns when the instance is completed. */
  async function shipAndNotify(instanceId: string): Promise<void> {
    expect(await openTaskIds(as.admin, instanceId)).toEqual(['Task_Ship', 'Task_Notify']);
    const ship = await openTask(as.admin, instanceId, 'Task_Ship');
    const notify = await openTask(as.admin, instanceId, 'Task_Notify');
    expect(ship.candidate_groups).toEqual(['warehouse', 'logistics']);
    expect(notify.candidate_users).toEqual(['anna', 'bob']);
    expect(notify.follow_up_at?.toISOString()).toBe('2030-01-15T09:00:00.000Z');
    await completeTask(user('will'), ship.id);
    expect((await getInstance(as.admin, instanceId)).state).toBe('active');
    await completeTask(user('anna'), notify.id);
    const done = await getInstance(as.admin, instanceId);
    expect(done.state).toBe('completed');
    expect(done.ended_at).not.toBeNull();
    expect(await waits(db.root, instanceId)).toEqual([]);
  }

  const TAIL = [
    'Gateway_Merge exclusiveGateway completed',
    'Gateway_Fork parallelGateway completed',
    'Task_Ship userTask completed',
    'Task_Notify userTask completed',
    'Gateway_Join parallelGateway completed',
    'Gateway_Join parallelGateway completed',
    'EndEvent_Done endEvent completed',
  ];

  test('a large amount is charged by card (external task) and the order is fulfilled', async () => {
    const variables = { amount: 5000, customerType: 'regular', orderCount: 1, salesRep: 'rita' };
    const id = await startAndReview(variables);
    await continueCharge(id);
    expect(await waits(db.root, id)).toEqual(['Task_Charge externalTask']);
    const charge = await fetchFor(id, 'charge', 'pay-worker');
    expect(charge.variables).toEqual(variables);
    await completeExternalTask(as.engine, charge.id, 'pay-worker', { chargeId: 'ch_1' });
    await shipAndNotify(id);
    expect((await getInstance(as.admin, id)).variables).toEqual({ ...variables, chargeId: 'ch_1' });
    expect(await history(as.admin, id)).toEqual([
      'StartEvent_1 startEvent completed',
      'Task_Review userTask completed',
      'Gateway_Amount exclusiveGateway completed',
      'Task_Charge serviceTask completed',
      ...TAIL,
    ]);
  });

  test('a regular VIP order is charged by card through the second condition', async () => {
    // 500 is no large amount: only Flow_Vip (customerType == 'vip' && orderCount >= 3) leads to the charge
    const id = await startAndReview({ amount: 500, customerType: 'vip', orderCount: 3, salesRep: 'rita' });
    await continueCharge(id);
    expect(await waits(db.root, id)).toEqual(['Task_Charge externalTask']);
    const charge = await fetchFor(id, 'charge', 'pay-worker');
    await completeExternalTask(as.engine, charge.id, 'pay-worker');
    await shipAndNotify(id);
    expect((await history(as.admin, id)).slice(2, 4)).toEqual([
      'Gateway_Amount exclusiveGateway completed',
      'Task_Charge serviceTask completed',
    ]);
  });

  test('a small order takes the default flow: invoiced by mail (manual task), no external task', async () => {
    const id = await startAndReview({ amount: 50, customerType: 'vip', orderCount: 2, salesRep: 'rita' });
    await shipAndNotify(id);
    expect(await externalTasks(as.admin, id)).toEqual([]);
    expect(await history(as.admin, id)).toEqual([
      'StartEvent_1 startEvent completed',
      'Task_Review userTask completed',
      'Gateway_Amount exclusiveGateway completed',
      'Task_Invoice manualTask completed',
      ...TAIL,
    ]);
  });

  test('a declined card is caught by the error boundary and the sales rep contacts the customer', async () => {
    const id = await startAndReview({ amount: 2000, customerType: 'regular', orderCount: 0, salesRep: 'rita' });
    await continueCharge(id);
    const charge = await fetchFor(id, 'charge', 'pay-worker');
    await throwBpmnError(as.engine, charge.id, 'pay-worker', 'CARD_DECLINED', { declineReason: 'insufficient funds' });

    const [external] = await externalTasks(as.admin, id);
    expect(external).toMatchObject({ element_id: 'Task_Charge', state: 'cancelled' });
    const contact = await openTask(as.admin, id, 'Task_HandleDecline');
    expect(contact).toMatchObject({ name: 'Contact customer', assignee: 'rita' });
    await completeTask(user('rita'), contact.id);

    const done = await getInstance(as.admin, id);
    expect(done).toMatchObject({ state: 'completed', variables: { declineReason: 'insufficient funds' } });
    expect(await history(as.admin, id)).toEqual([
      'StartEvent_1 startEvent completed',
      'Task_Review userTask completed',
      'Gateway_Amount exclusiveGateway completed',
      'Task_Charge serviceTask cancelled',
      'Event_CardDeclined boundaryEvent completed',
      'Task_HandleDecline userTask completed',
      'EndEvent_Cancelled endEvent completed',
    ]);
    expect((await userTasks(as.admin, id)).map((t) => t.element_id)).toEqual(['Task_Review', 'Task_HandleDecline']);
    expect(await waits(db.root, id)).toEqual([]);
  });
});

describe('camunda8-order.bpmn', () => {
  const KEY = 'order-c8';

  test('deploys unchanged: the stored resource is the exact file, with its version tag', async () => {
    const definition = c8;
    expect(definition).toMatchObject({ key: KEY, version: 1, name: 'Order fulfilment (Camunda 8)' });
    const stored = await storedResource(definition.id);
    expect(stored.xml).toBe(fs.readFileSync(path.join(FIXTURES, 'camunda8-order.bpmn'), 'utf8'));
    expect(stored.version_tag).toBe('2.0.1');
  });

  /** Starts as sam; the review is assigned to =owner (olga), who completes it. */
  async function startAndReview(variables: Variables): Promise<string> {
    const all = { owner: 'olga', followUpAt: '2030-05-01T08:00:00Z', ...variables };
    const started = await startProcess(user('sam'), KEY, all);
    expect(started.state).toBe('active');
    const review = await openTask(as.admin, started.id, 'Task_Review');
    expect(review).toMatchObject({ name: 'Review order', assignee: 'olga', candidate_groups: ['sales', 'ops'], priority: 70 });
    expect(review.due_at?.toISOString()).toBe('2030-06-01T10:00:00.000Z');
    expect(review.follow_up_at?.toISOString()).toBe('2030-05-01T08:00:00.000Z');
    await completeTask(user('olga'), review.id);
    return started.id;
  }

  test('a large gift order with express shipping: charge, wrap and book, the inclusive join waits for both', async () => {
    const id = await startAndReview({ amount: 2000, giftWrap: true, express: true });
    const charge = await fetchFor(id, 'charge', 'pay-worker');
    await completeExternalTask(as.engine, charge.id, 'pay-worker', { paid: true });

    expect(await waits(db.root, id)).toEqual([
      'Task_BookExpress externalTask',
      'Task_Wrap userTask',
    ]);
    const wrap = await openTask(as.admin, id, 'Task_Wrap');
    expect(wrap.candidate_users).toEqual(['anna', 'ben']);
    await completeTask(user('ben'), wrap.id);
    // the express booking can still reach the join
    expect((await getInstance(as.admin, id)).state).toBe('active');
    expect(await waits(db.root, id)).toEqual([
      'Gateway_Join token via Flow_Wrapped',
      'Task_BookExpress externalTask',
    ]);

    const book = await fetchFor(id, 'book-express', 'ship-worker');
    expect(book.variables).toMatchObject({ amount: 2000, paid: true });
    await completeExternalTask(as.engine, book.id, 'ship-worker');

    const done = await getInstance(as.admin, id);
    expect(done).toMatchObject({ state: 'completed', variables: { amount: 2000, paid: true, owner: 'olga' } });
    expect(await history(as.admin, id)).toEqual([
      'StartEvent_1 startEvent completed',
      'Task_Review userTask completed',
      'Gateway_Amount exclusiveGateway completed',
      'Task_Charge serviceTask completed',
      'Gateway_Merge exclusiveGateway completed',
      'Gateway_Split inclusiveGateway completed',
      'Task_Wrap userTask completed',
      'Task_BookExpress sendTask completed',
      'Gateway_Join inclusiveGateway completed',
      'Gateway_Join inclusiveGateway completed',
      'EndEvent_Done endEvent completed',
    ]);
    expect(await waits(db.root, id)).toEqual([]);
  });

  test('a small order without options ships standard and ends within the review completion', async () => {
    // express needs amount > 50: not taken, so the default (standard shipping) is
    const id = await startAndReview({ amount: 40, giftWrap: false, express: true });
    expect((await getInstance(as.admin, id)).state).toBe('completed');
    expect(await externalTasks(as.admin, id)).toEqual([]);
    expect(await history(as.admin, id)).toEqual([
      'StartEvent_1 startEvent completed',
      'Task_Review userTask completed',
      'Gateway_Amount exclusiveGateway completed',
      'Gateway_Merge exclusiveGateway completed',
      'Gateway_Split inclusiveGateway completed',
      'Task_Standard task completed',
      'Gateway_Join inclusiveGateway completed',
      'EndEvent_Done endEvent completed',
    ]);
  });

  test('a mid-size gift order skips the charge and waits only for the wrapping', async () => {
    const id = await startAndReview({ amount: 500, giftWrap: true, express: false });
    expect(await waits(db.root, id)).toEqual(['Task_Wrap userTask']);
    await completeTask(user('anna'), (await openTask(as.admin, id, 'Task_Wrap')).id);
    expect((await getInstance(as.admin, id)).state).toBe('completed');
    expect(await history(as.admin, id)).toEqual([
      'StartEvent_1 startEvent completed',
      'Task_Review userTask completed',
      'Gateway_Amount exclusiveGateway completed',
      'Gateway_Merge exclusiveGateway completed',
      'Gateway_Split inclusiveGateway completed',
      'Task_Wrap userTask completed',
      'Gateway_Join inclusiveGateway completed',
      'EndEvent_Done endEvent completed',
    ]);
  });
});

describe('camunda7-claims.bpmn: Camunda 7 expressions (Spin, execution.getVariable, collection methods, ternaries, dateTime(), a JUEL script task, a conditional event after an event-based gateway)', () => {
  const KEY = 'c7-claims';
  const days = (d: Date | null): number => Math.round(((d?.getTime() ?? 0) - Date.now()) / 86_400_000);

  beforeAll(async () => {
    await deployFixture(as.admin, 'camunda7-claims.bpmn');
  });

  test('documents complete, a large claim: scored high by the script, assessed by the senior adjuster within 2 days, paid at priority 80', async () => {
    const started = await startProcess(as.admin, KEY, { claim: { amount: 8000 }, documents: ['photo', 'police-report'] });
    expect((await getInstance(as.admin, started.id)).variables).toMatchObject({ risk: 'high' });
    const assess = await openTask(as.admin, started.id, 'Assess');
    expect(assess).toMatchObject({ assignee: 'senior-adjuster', candidate_groups: ['claims'] });
    expect(days(assess.due_at)).toBe(2);
    await completeTask(as.admin, assess.id);
    const pay = await fetchFor(started.id, 'claims-payout', 'payer');
    expect(pay.priority).toBe(80);
    await completeExternalTask(as.engine, pay.id, 'payer');
    expect((await getInstance(as.admin, started.id)).state).toBe('completed');
  });

  test('documents missing: the message with them releases the wait; a small claim goes to an adjuster within 5 days', async () => {
    const started = await startProcess(as.admin, KEY, { claim: { amount: 300 }, documents: [] });
    expect(await waits(db.root, started.id)).toEqual(['WaitDocs token via Flow_Missing']);
    await as.admin.query(`select bpm.correlate_message('DocumentsReceived', null, $1::jsonb)`, [JSON.stringify({ documents: ['police-report'] })]);
    const assess = await openTask(as.admin, started.id, 'Assess');
    expect(assess.assignee).toBe('adjuster');
    expect(days(assess.due_at)).toBe(5);
  });

  test('documents missing, then withdrawn: the conditional event wins and the claim closes', async () => {
    const started = await startProcess(as.admin, KEY, { claim: { amount: 300 }, status: 'open' });
    await as.admin.query('select bpm.set_variables($1, $2::jsonb)', [started.id, JSON.stringify({ status: 'withdrawn' })]);
    expect((await getInstance(as.admin, started.id)).state).toBe('completed');
    expect((await history(as.admin, started.id)).slice(-2)).toEqual(['Withdrawn intermediateCatchEvent completed', 'Closed endEvent completed']);
  });
});

describe('camunda8-quotes.bpmn: Camunda 8 FEEL (script tasks, contexts, filters, for, every, list and string functions, temporal values, a multi-instance job over a computed collection)', () => {
  const KEY = 'c8-quotes';
  const request = (budget: number) => ({
    lines: [{ sku: 'a', qty: 2, price: 10 }, { sku: 'b', qty: 0, price: 5 }, { sku: 'c', qty: 1, price: 30 }],
    suppliers: ['acme', 'bolt', 'acme'], budget, owner: 'dana', department: 'ops',
  });

  beforeAll(async () => {
    await deployFixture(as.admin, 'camunda8-quotes.bpmn');
  });

  /** Starts, answers each supplier's quote job with its price, and returns the instance id. */
  async function quoted(budget: number, prices: Record<string, number>): Promise<string> {
    const started = await startProcess(as.admin, KEY, { request: request(budget) });
    expect((await getInstance(as.admin, started.id)).variables.prepared).toEqual({
      lines: [{ sku: 'a', qty: 2, price: 10 }, { sku: 'c', qty: 1, price: 30 }], total: 50, suppliers: ['acme', 'bolt'] });
    const jobs = await fetchAndLock(as.engine, 'quotes-ask', 'quoter');
    expect(jobs).toHaveLength(2);
    for (const job of jobs) {
      const asked = job.variables?.request as { supplier: string; lines: unknown[]; replyBy: string };
      expect(asked.lines).toHaveLength(2);
      expect(asked.replyBy).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/);
      await completeExternalTask(as.engine, job.id, 'quoter', { quote: { price: prices[asked.supplier] } });
    }
    return started.id;
  }

  test('quotes within budget: the cheapest is picked and the order placed', async () => {
    const id = await quoted(100, { acme: 45, bolt: 40 });
    const done = await getInstance(as.admin, id);
    expect(done.state).toBe('completed');
    expect(done.variables).toMatchObject({ quotes: [{ supplier: 'acme', price: 45 }, { supplier: 'bolt', price: 40 }], best: { supplier: 'bolt', price: 40 } });
  });

  test('over budget: approval by the owner (name capitalised) with the department among the candidate groups, due within a day', async () => {
    const id = await quoted(30, { acme: 45, bolt: 60 });
    const approve = await openTask(as.admin, id, 'Approve');
    expect(approve).toMatchObject({ assignee: 'Dana', candidate_groups: ['purchasing', 'ops'] });
    expect(Math.round(((approve.due_at?.getTime() ?? 0) - Date.now()) / 3_600_000)).toBe(24);
    await completeTask(as.admin, approve.id);
    expect((await getInstance(as.admin, id)).state).toBe('completed');
  });
});
