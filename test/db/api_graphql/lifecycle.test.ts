/**
 * The GraphQL API end to end as one tenant: deployProcess → startProcess →
 * userTasks → completeTask → the instance completed; invalid BPMN returns
 * every problem and deploys nothing; engine errors reach the client with
 * their SQLSTATE; privileges (42501) too; /health and /ready.
 */
import fs from 'node:fs';
import path from 'node:path';
import { createTestDb, type TestDb } from '../../helpers/db';
import { bpmnProcess } from '../../helpers/engine';
import {
  COMPLETE,
  DEPLOY,
  INSTANCES,
  START,
  USER_TASKS,
  fixture,
  startTestApi,
  token,
  type CompleteData,
  type DeployData,
  type InstancesData,
  type StartData,
  type TestApi,
  type UserTasksData,
} from './support';

const TENANT = 'tenant-a';
let db: TestDb;
let t: TestApi;
let admin: string;
let designer: string;
let user: string;

beforeAll(async () => {
  db = await createTestDb();
  t = await startTestApi(db);
  admin = await token({ tenant: TENANT, sub: 'ada', roles: ['bpm_admin'] });
  designer = await token({ tenant: TENANT, sub: 'dora', roles: ['bpm_designer'] });
  user = await token({ tenant: TENANT, sub: 'uma', roles: ['bpm_user'], groups: ['sales'] });
});

afterAll(async () => {
  await t?.close();
  await db?.close();
});

async function count(table: string): Promise<number> {
  const { rows } = await db.root.query<{ n: string }>(`select count(*) as n from ${table} where tenant_id = $1`, [TENANT]);
  return Number(rows[0]?.n);
}

describe('deploy, start, work and finish a process over GraphQL', () => {
  let instanceId: string;
  let taskId: string;

  test('deployProcess compiles and deploys BPMN files', async () => {
    const { deployProcess } = await t.data<DeployData>(admin, DEPLOY, { files: [fixture('straight.bpmn')] });
    expect(deployProcess.problems).toEqual([]);
    expect(deployProcess.definitions).toEqual([
      { id: expect.stringMatching(/^[0-9a-f-]{36}$/), key: 'straight', version: 1, name: 'Straight' },
    ]);
    // recorded with the caller's tenant and user (pgSettings)
    const { rows } = await db.root.query<{ tenant_id: string; deployed_by: string }>(
      `select tenant_id, deployed_by from bpm.deployment where name = 'straight.bpmn'`,
    );
    expect(rows).toEqual([{ tenant_id: TENANT, deployed_by: 'ada' }]);
  });

  test('startProcess starts the latest version and returns the instance', async () => {
    const { startProcess } = await t.data<StartData>(admin, START, { key: 'straight', variables: { amount: 1500 }, businessKey: 'order-1' });
    expect(startProcess.result).toEqual({
      id: expect.any(String),
      state: 'active',
      variables: { amount: 1500 },
      businessKey: 'order-1',
      startedBy: 'ada',
    });
    instanceId = startProcess.result.id;
  });

  test('userTasks lists the open task', async () => {
    const { userTasks } = await t.data<UserTasksData>(admin, USER_TASKS, { condition: { state: 'open' } });
    expect(userTasks.totalCount).toBe(1);
    expect(userTasks.nodes[0]).toMatchObject({ instanceId, elementId: 'task', name: 'Task', state: 'open', assignee: null });
    taskId = userTasks.nodes[0]?.id as string;
  });

  test('completeTask completes it and the instance ends', async () => {
    const { completeTask } = await t.data<CompleteData>(admin, COMPLETE, { id: taskId, variables: { approved: true } });
    expect(completeTask?.result).toEqual({ id: taskId, state: 'completed', completedBy: 'ada' });

    const { processInstances } = await t.data<InstancesData>(admin, INSTANCES);
    expect(processInstances.nodes).toEqual([
      { id: instanceId, state: 'completed', businessKey: 'order-1', endedAt: expect.any(String), definition: { key: 'straight', version: 1 } },
    ]);
    const history = await t.data<{ activityInstances: { nodes: Array<{ elementId: string; state: string }> } }>(
      admin,
      `query($id: UUID!) { activityInstances(condition: { instanceId: $id }, orderBy: SEQ_ASC) { nodes { elementId state } } }`,
      { id: instanceId },
    );
    expect(history.activityInstances.nodes).toEqual([
      { elementId: 'start', state: 'completed' },
      { elementId: 'task', state: 'completed' },
      { elementId: 'end', state: 'completed' },
    ]);
    const variables = await t.data<{ processInstance: { variables: unknown } }>(
      admin,
      `query($tenant: String!, $id: UUID!) { processInstance(tenantId: $tenant, id: $id) { variables } }`,
      { tenant: TENANT, id: instanceId },
    );
    expect(variables.processInstance.variables).toEqual({ amount: 1500, approved: true });
  });

  test('completing it again: the engine error reaches the client with its SQLSTATE (BP203)', async () => {
    const reply = await t.gql<CompleteData>(admin, COMPLETE, { id: taskId });
    expect(reply.status).toBe(200);
    expect(reply.body.data).toEqual({ completeTask: null });
    expect(reply.body.errors).toEqual([
      expect.objectContaining({
        message: `user task ${taskId} is completed and cannot complete it`,
        path: ['completeTask'],
        extensions: { code: 'BP203' },
      }),
    ]);
  });

  test('other engine errors too: an unknown process key is BP101', async () => {
    const reply = await t.gql(admin, START, { key: 'no_such_process' });
    expect(reply.body.errors).toEqual([expect.objectContaining({ extensions: { code: 'BP101' }, message: expect.stringContaining('no_such_process') })]);
  });
});

describe('startProcess with a requestId', () => {
  const startWithId = `
    mutation Start($key: String!, $requestId: String) {
      startProcess(input: { processKey: $key, requestId: $requestId }) { result { id state } }
    }`;

  test('a retried start (same requestId) returns the first instance instead of starting another', async () => {
    const before = await count('bpm.process_instance');
    const first = await t.data<StartData>(admin, startWithId, { key: 'straight', requestId: 'gql-req-1' });
    const again = await t.data<StartData>(admin, startWithId, { key: 'straight', requestId: 'gql-req-1' });
    expect(again.startProcess.result.id).toBe(first.startProcess.result.id);
    expect(await count('bpm.process_instance')).toBe(before + 1);
  });

  test('a requestId that started another process reaches the client as BP208', async () => {
    const reply = await t.gql(admin, startWithId, { key: 'no-such-key', requestId: 'gql-req-1' });
    expect(reply.body.errors).toEqual([expect.objectContaining({ extensions: { code: 'BP208' } })]);
  });
});

describe('startProcess of a process with unique business keys', () => {
  test('a second start with the business key of an active instance reaches the client as BP209 and starts nothing', async () => {
    const xml = bpmnProcess('gql_unique', `
      <extensionElements><camunda:properties><camunda:property name="pgbpm:uniqueBusinessKey" value="true"/></camunda:properties></extensionElements>
      <startEvent id="s"/><sequenceFlow id="f1" sourceRef="s" targetRef="t"/><userTask id="t"/>
      <sequenceFlow id="f2" sourceRef="t" targetRef="e"/><endEvent id="e"/>`);
    const { deployProcess } = await t.data<DeployData>(designer, DEPLOY, { files: [{ name: 'gql_unique.bpmn', xml }] });
    expect(deployProcess.problems).toEqual([]);
    const startWithKey = `
      mutation Start($key: String!, $businessKey: String) {
        startProcess(input: { processKey: $key, businessKey: $businessKey }) { result { id businessKey } }
      }`;
    const first = await t.data<{ startProcess: { result: { id: string; businessKey: string } } }>(admin, startWithKey, { key: 'gql_unique', businessKey: 'order-42' });
    expect(first.startProcess.result.businessKey).toBe('order-42');
    const before = await count('bpm.process_instance');
    const reply = await t.gql(admin, startWithKey, { key: 'gql_unique', businessKey: 'order-42' });
    expect(reply.body.errors).toEqual([
      expect.objectContaining({ extensions: { code: 'BP209' }, message: expect.stringContaining(`active instance ${first.startProcess.result.id} with business key order-42`) }),
    ]);
    expect(await count('bpm.process_instance')).toBe(before);
  });
});

describe('a task\'s local variables', () => {
  test('a user task inside a multi-instance subprocess shows its element variable and the subprocess\'s input to its user', async () => {
    const xml = bpmnProcess('gql_locals', `
      <startEvent id="s"/><sequenceFlow id="f1" sourceRef="s" targetRef="sub"/>
      <subProcess id="sub">
        <extensionElements><camunda:inputOutput>
          <camunda:inputParameter name="limit">\${amount * 2}</camunda:inputParameter>
        </camunda:inputOutput></extensionElements>
        <multiInstanceLoopCharacteristics camunda:collection="documents" camunda:elementVariable="document"/>
        <startEvent id="is"/><sequenceFlow id="i1" sourceRef="is" targetRef="review"/>
        <userTask id="review" camunda:candidateGroups="sales"/><sequenceFlow id="i2" sourceRef="review" targetRef="ie"/><endEvent id="ie"/>
      </subProcess>
      <sequenceFlow id="f2" sourceRef="sub" targetRef="e"/><endEvent id="e"/>`);
    const { deployProcess } = await t.data<DeployData>(designer, DEPLOY, { files: [{ name: 'gql_locals.bpmn', xml }] });
    expect(deployProcess.problems).toEqual([]);
    const { startProcess } = await t.data<StartData>(admin, START, { key: 'gql_locals', variables: { amount: 5, documents: ['a.pdf', 'b.pdf'] } });
    const { userTasks } = await t.data<{ userTasks: { nodes: Array<{ elementId: string; localVariables: Record<string, unknown> | null }> } }>(
      user,
      `query($instanceId: UUID!) { userTasks(condition: { instanceId: $instanceId }, orderBy: [CREATED_AT_ASC, ID_ASC]) { nodes { elementId localVariables } } }`,
      { instanceId: startProcess.result.id },
    );
    expect(userTasks.nodes.map((n) => n.localVariables).sort((a, b) => String(a?.document).localeCompare(String(b?.document)))).toEqual([
      { limit: 10, document: 'a.pdf', loopCounter: 0, nrOfInstances: 2 },
      { limit: 10, document: 'b.pdf', loopCounter: 1, nrOfInstances: 2 },
    ]);
  });
});

describe('forms', () => {
  test('a task list reads the start form and embedded forms of a definition and the form of a task', async () => {
    const xml = bpmnProcess('gql_forms', `
      <extensionElements><zeebe:userTaskForm id="F1">{"components": [{"key": "ok", "type": "checkbox"}]}</zeebe:userTaskForm></extensionElements>
      <startEvent id="s" camunda:formKey="embedded:app:forms/start.html"/><sequenceFlow id="f1" sourceRef="s" targetRef="review"/>
      <userTask id="review"><extensionElements><zeebe:formDefinition formKey="camunda-forms:bpmn:F1"/></extensionElements></userTask>`);
    const { deployProcess } = await t.data<DeployData>(designer, DEPLOY, { files: [{ name: 'gql_forms.bpmn', xml }] });
    expect(deployProcess.problems).toEqual([]);
    const { processDefinitions } = await t.data<{ processDefinitions: { nodes: Array<{ startForm: unknown; forms: unknown }> } }>(
      user,
      `{ processDefinitions(condition: { key: "gql_forms" }) { nodes { startForm forms } } }`,
    );
    expect(processDefinitions.nodes).toEqual([
      { startForm: { key: 'embedded:app:forms/start.html' }, forms: { F1: { components: [{ key: 'ok', type: 'checkbox' }] } } },
    ]);
    const { startProcess } = await t.data<StartData>(admin, START, { key: 'gql_forms', variables: {} });
    const { userTasks } = await t.data<{ userTasks: { nodes: Array<{ form: unknown }> } }>(
      admin,
      `query($instanceId: UUID!) { userTasks(condition: { instanceId: $instanceId }) { nodes { form } } }`,
      { instanceId: startProcess.result.id },
    );
    expect(userTasks.nodes).toEqual([{ form: { key: 'camunda-forms:bpmn:F1' } }]);
  });
});

describe('taskInbox and updateTask', () => {
  test('a user reads their inbox page by page, highest priority first; updateTask of an admin changes who is offered a task and its place', async () => {
    const xml = bpmnProcess('gql_inbox', `
      <startEvent id="s"/><sequenceFlow id="f1" sourceRef="s" targetRef="work"/>
      <userTask id="work" camunda:priority="\${p}" camunda:candidateGroups="\${g}"/>`);
    const { deployProcess } = await t.data<DeployData>(designer, DEPLOY, { files: [{ name: 'gql_inbox.bpmn', xml }] });
    expect(deployProcess.problems).toEqual([]);
    const started: string[] = [];
    for (const [p, g] of [[10, 'crew'], [90, 'crew'], [99, 'hr'], [50, 'crew']] as const) {
      const { startProcess } = await t.data<StartData>(admin, START, { key: 'gql_inbox', variables: { p, g } });
      started.push(startProcess.result.id);
    }
    type Inbox = { taskInbox: { nodes: Array<{ id: string; priority: number; instanceId: string }> } };
    const query = `query($after: UUID, $max: Int) { taskInbox(afterTaskId: $after, maxTasks: $max) { nodes { id priority instanceId } } }`;
    const ivy = await token({ tenant: TENANT, sub: 'ivy', roles: ['bpm_user'], groups: ['crew'] });
    const first = await t.data<Inbox>(ivy, query, { max: 2 });
    expect(first.taskInbox.nodes.map((n) => [n.priority, n.instanceId])).toEqual([[90, started[1]], [50, started[3]]]);
    const next = await t.data<Inbox>(ivy, query, { max: 2, after: first.taskInbox.nodes[1].id });
    expect(next.taskInbox.nodes.map((n) => n.priority)).toEqual([10]);
    // an admin withdraws the top task from the crew and raises the last one
    const update = `mutation($id: UUID!, $changes: JSON!) { updateTask(input: { taskId: $id, changes: $changes }) { result { priority candidateGroups } } }`;
    const hr = await t.data<{ updateTask: { result: { priority: number; candidateGroups: string[] } } }>(admin, update, {
      id: first.taskInbox.nodes[0].id,
      changes: { candidateGroups: ['hr'] },
    });
    expect(hr.updateTask.result).toEqual({ priority: 90, candidateGroups: ['hr'] });
    await t.data(admin, update, { id: next.taskInbox.nodes[0].id, changes: { priority: 95 } });
    const now = await t.data<Inbox>(ivy, query, { max: 10 });
    expect(now.taskInbox.nodes.map((n) => n.priority)).toEqual([95, 50]);
  });
});

describe('an ad-hoc subprocess driven over GraphQL', () => {
  test('deployProcess, startProcess, activateAdHocActivities as an engine worker; a refusal carries its SQLSTATE', async () => {
    const xml = bpmnProcess('gql_adhoc', `
      <startEvent id="s"/><sequenceFlow id="f1" sourceRef="s" targetRef="work"/>
      <adHocSubProcess id="work"><userTask id="call"/><userTask id="visit"/></adHocSubProcess>
      <sequenceFlow id="f2" sourceRef="work" targetRef="e"/><endEvent id="e"/>`);
    const { deployProcess } = await t.data<DeployData>(admin, DEPLOY, { files: [{ name: 'gql_adhoc.bpmn', xml }] });
    expect(deployProcess.problems).toEqual([]);
    const { startProcess } = await t.data<StartData>(admin, START, { key: 'gql_adhoc' });
    const { rows } = await db.root.query<{ id: string }>(`select id from bpm.activity_instance where instance_id = $1 and element_id = 'work'`, [startProcess.result.id]);
    const activate = `mutation($id: UUID!, $elements: [String]!) { activateAdHocActivities(input: { adHocInstanceId: $id, elementIds: $elements }) { result { id state } } }`;
    const engine = await token({ tenant: TENANT, sub: 'agent', roles: ['bpm_engine'] });
    const done = await t.data<{ activateAdHocActivities: { result: { id: string; state: string } } }>(engine, activate, { id: rows[0].id, elements: ['visit'] });
    expect(done.activateAdHocActivities.result).toEqual({ id: startProcess.result.id, state: 'active' });
    const { rows: open } = await db.root.query(`select element_id from bpm.user_task where instance_id = $1 and state = 'open'`, [startProcess.result.id]);
    expect(open).toEqual([{ element_id: 'visit' }]);
    const refused = await t.gql(engine, activate, { id: rows[0].id, elements: ['nowhere'] });
    expect(refused.body.errors).toEqual([expect.objectContaining({ extensions: { code: 'BP112' } })]);
    const denied = await t.gql(user, activate, { id: rows[0].id, elements: ['call'] });
    expect(denied.body.errors?.[0]).toEqual(expect.objectContaining({ extensions: { code: '42501' } }));
  });
});

describe('an external task over GraphQL', () => {
  test('fetchAndLock, then failExternalTask with errorDetails: the task keeps message and details, and is fetchable again', async () => {
    const xml = bpmnProcess('gql_external', `
      <startEvent id="s"/><sequenceFlow id="f1" sourceRef="s" targetRef="charge"/>
      <serviceTask id="charge" camunda:type="external" camunda:topic="gql-charge"/>
      <sequenceFlow id="f2" sourceRef="charge" targetRef="e"/><endEvent id="e"/>`);
    expect((await t.data<DeployData>(admin, DEPLOY, { files: [{ name: 'gql_external.bpmn', xml }] })).deployProcess.problems).toEqual([]);
    await t.data<StartData>(admin, START, { key: 'gql_external' });
    const engine = await token({ tenant: TENANT, sub: 'agent', roles: ['bpm_engine'] });
    const fetch = `mutation { fetchAndLock(input: { topic: "gql-charge", workerId: "w1", maxTasks: 1 }) { result { id topic } } }`;
    const locked = await t.data<{ fetchAndLock: { result: Array<{ id: string; topic: string }> } }>(engine, fetch);
    const [task] = locked.fetchAndLock.result;
    expect(task.topic).toBe('gql-charge');
    const details = 'Error: card service down\n    at charge (handler.js:7:11)';
    const fail = `mutation($id: UUID!, $details: String) {
      failExternalTask(input: { taskId: $id, workerId: "w1", errorMessage: "card service down", retries: 2, errorDetails: $details }) {
        result { id retries errorMessage errorDetails workerId }
      } }`;
    const failed = await t.data<{ failExternalTask: { result: Record<string, unknown> } }>(engine, fail, { id: task.id, details });
    expect(failed.failExternalTask.result).toEqual({ id: task.id, retries: 2, errorMessage: 'card service down', errorDetails: details, workerId: null });
    const again = await t.data<{ fetchAndLock: { result: Array<{ id: string }> } }>(engine, fetch);
    expect(again.fetchAndLock.result.map((r) => r.id)).toEqual([task.id]);
  });

  test('completeExternalTasks reports each task of a batch: completed, or refused with its SQLSTATE', async () => {
    const xml = bpmnProcess('gql_batch', `
      <startEvent id="s"/><sequenceFlow id="f1" sourceRef="s" targetRef="work"/>
      <serviceTask id="work" camunda:type="external" camunda:topic="gql-batch"/>
      <sequenceFlow id="f2" sourceRef="work" targetRef="e"/><endEvent id="e"/>`);
    expect((await t.data<DeployData>(admin, DEPLOY, { files: [{ name: 'gql_batch.bpmn', xml }] })).deployProcess.problems).toEqual([]);
    const first = await t.data<StartData>(admin, START, { key: 'gql_batch' });
    const second = await t.data<StartData>(admin, START, { key: 'gql_batch' });
    const engine = await token({ tenant: TENANT, sub: 'agent', roles: ['bpm_engine'] });
    const fetch = `mutation { fetchAndLock(input: { topic: "gql-batch", workerId: "w1", maxTasks: 1 }) { result { id instanceId } } }`;
    const [task] = (await t.data<{ fetchAndLock: { result: Array<{ id: string; instanceId: string }> } }>(engine, fetch)).fetchAndLock.result;
    const unlocked = (await db.root.query<{ id: string }>(`select id from bpm.external_task where instance_id = any($1::uuid[]) and id <> $2`, [
      [first.startProcess.result.id, second.startProcess.result.id],
      task.id,
    ])).rows[0].id;
    const batch = `mutation($ids: [UUID]!, $variables: [JSON]) {
      completeExternalTasks(input: { taskIds: $ids, workerId: "w1", variables: $variables }) { result { taskId errorCode errorMessage } } }`;
    const reply = await t.data<{ completeExternalTasks: { result: Array<Record<string, unknown>> } }>(engine, batch, {
      ids: [task.id, unlocked],
      variables: [{ paid: true }, {}],
    });
    expect(reply.completeExternalTasks.result).toEqual([
      { taskId: task.id, errorCode: null, errorMessage: null },
      { taskId: unlocked, errorCode: 'BP205', errorMessage: `external task ${unlocked} is not locked by worker w1 (locked by nobody)` },
    ]);
    const { rows } = await db.root.query(`select state, variables from bpm.process_instance where id = $1`, [task.instanceId]);
    expect(rows[0]).toEqual({ state: 'completed', variables: { paid: true } });
  });
});

describe('deployProcess with invalid BPMN', () => {
  test('returns every problem (file, element, message) and deploys nothing', async () => {
    const before = { deployments: await count('bpm.deployment'), definitions: await count('bpm.process_definition') };
    const { deployProcess } = await t.data<DeployData>(admin, DEPLOY, {
      files: [fixture('parallel.bpmn'), fixture('invalid-flows.bpmn'), { name: 'broken.bpmn', xml: '<definitions' }],
    });
    expect(deployProcess.definitions).toEqual([]);
    expect(deployProcess.problems.length).toBeGreaterThanOrEqual(2);
    expect(deployProcess.problems).toContainEqual({ file: 'broken.bpmn', elementId: null, message: expect.stringContaining('XML') });
    const flowProblems = deployProcess.problems.filter((p) => p.file === 'invalid-flows.bpmn');
    expect(flowProblems.length).toBeGreaterThan(0);
    expect(flowProblems.some((p) => p.elementId !== null)).toBe(true);
    // the valid file of the same deployment was not deployed either
    expect(deployProcess.problems.some((p) => p.file === 'parallel.bpmn')).toBe(false);
    expect({ deployments: await count('bpm.deployment'), definitions: await count('bpm.process_definition') }).toEqual(before);
  });

  test('an empty file list is refused', async () => {
    const reply = await t.gql(admin, DEPLOY, { files: [] });
    expect(reply.body.errors).toEqual([expect.objectContaining({ message: 'files must not be empty', extensions: { code: 'BAD_USER_INPUT' } })]);
  });
});

describe('roles', () => {
  test('a designer may deploy; redeploying an identical file returns the same definition', async () => {
    const first = await t.data<DeployData>(designer, DEPLOY, { files: [fixture('exclusive.bpmn')] });
    const again = await t.data<DeployData>(designer, DEPLOY, { files: [fixture('exclusive.bpmn')] });
    expect(again.deployProcess.definitions).toEqual(first.deployProcess.definitions);
    expect(first.deployProcess.definitions[0]?.version).toBe(1);
  });

  test('a bpm_user may not deploy: insufficient_privilege reaches the client as 42501', async () => {
    const before = await count('bpm.deployment');
    const reply = await t.gql<DeployData>(user, DEPLOY, { files: [fixture('parallel.bpmn')] });
    expect(reply.body.errors).toEqual([expect.objectContaining({ extensions: { code: '42501' }, message: expect.stringContaining('permission denied') })]);
    expect(await count('bpm.deployment')).toBe(before);
  });

  test('a bpm_user may not read deployments (no grant): 42501', async () => {
    const reply = await t.gql(user, `{ deployments { totalCount } }`);
    expect(reply.body.errors).toEqual([expect.objectContaining({ extensions: { code: '42501' } })]);
  });

  test('the hidden bpm.deploy(jsonb) is not part of the schema', async () => {
    const reply = await t.gql(admin, `mutation { deploy(input: { resources: [] }) { clientMutationId } }`);
    expect(reply.body.errors?.[0]?.message).toMatch(/Cannot query field "deploy" on type "Mutation"/);
  });
});

describe('service endpoints', () => {
  test('/health answers 200 while the process is up', async () => {
    const res = await fetch(`${t.api.url}/health`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ status: 'ok' });
  });

  test('/ready answers 200 when the database is migrated', async () => {
    const res = await fetch(`${t.api.url}/ready`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ status: 'ready' });
  });

  test('nothing was logged as an internal error', () => {
    expect(t.logs.filter((l) => l.includes('internal error'))).toEqual([]);
  });
});

describe('DMN decisions over GraphQL', () => {
  test('deployProcess deploys a DMN file; decisionDefinitions lists its decisions; evaluateDecision evaluates one as a bpm_user', async () => {
    const dish = { name: 'dish.dmn', xml: fs.readFileSync(path.join(__dirname, '..', '..', 'fixtures', 'dmn', 'dish.dmn'), 'utf8') };
    const { deployProcess } = await t.data<DeployData>(designer, DEPLOY, { files: [dish] });
    expect(deployProcess).toMatchObject({
      problems: [],
      definitions: [],
      decisions: [
        { key: 'beverages', version: 1, name: 'Beverages' },
        { key: 'dish', version: 1, name: 'Dish' },
      ],
    });
    const listed = await t.data<{ decisionDefinitions: { nodes: Array<{ key: string; version: number; requires: string[] }> } }>(
      user,
      `{ decisionDefinitions(orderBy: KEY_ASC) { nodes { key version requires } } }`,
    );
    expect(listed.decisionDefinitions.nodes).toEqual([
      { key: 'beverages', version: 1, requires: ['dish'] },
      { key: 'dish', version: 1, requires: [] },
    ]);
    const evaluated = await t.data<{ evaluateDecision: unknown }>(
      user,
      `query($v: JSON!) { evaluateDecision(decisionKey: "beverages", variables: $v) }`,
      { v: { season: 'Winter', guestCount: 6, guestsWithChildren: true } },
    );
    expect(evaluated.evaluateDecision).toEqual(['Bordeaux', 'Apple Juice', 'Water']);
  });
});
