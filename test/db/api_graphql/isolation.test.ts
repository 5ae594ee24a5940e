/**
 * Tenant isolation and user visibility through the GraphQL API: the token's
 * claims become role, bpm.tenant_id, bpm.user_id and bpm.groups, and RLS does
 * the rest. Tenant B sees nothing of tenant A and cannot complete A's task;
 * a bpm_user sees only the tasks offered to them.
 */
import { createTestDb, type TestDb } from '../../helpers/db';
import { bpmnProcess } from '../../helpers/engine';
import {
  COMPLETE,
  DEPLOY,
  INSTANCES,
  START,
  USER_TASKS,
  startTestApi,
  token,
  type CompleteData,
  type DeployData,
  type InstancesData,
  type StartData,
  type TestApi,
  type UserTasksData,
} from './support';

const A = 'tenant-a';
const B = 'tenant-b';

/** Three parallel tasks: offered to group sales, to group hr, assigned to bob. */
const OFFERS = bpmnProcess(
  'offers',
  `<startEvent id="s"/><sequenceFlow id="f0" sourceRef="s" targetRef="fork"/>
  <parallelGateway id="fork"/>
  <sequenceFlow id="a1" sourceRef="fork" targetRef="sales"/><userTask id="sales" name="Sales" camunda:candidateGroups="sales"/>
  <sequenceFlow id="a2" sourceRef="sales" targetRef="join"/>
  <sequenceFlow id="b1" sourceRef="fork" targetRef="hr"/><userTask id="hr" name="HR" camunda:candidateGroups="hr"/>
  <sequenceFlow id="b2" sourceRef="hr" targetRef="join"/>
  <sequenceFlow id="c1" sourceRef="fork" targetRef="bobs"/><userTask id="bobs" name="Bob's" camunda:assignee="bob"/>
  <sequenceFlow id="c2" sourceRef="bobs" targetRef="join"/>
  <parallelGateway id="join"/><sequenceFlow id="f9" sourceRef="join" targetRef="e"/><endEvent id="e"/>`,
);

let db: TestDb;
let t: TestApi;
let adminA: string;
let adminB: string;
let instanceA: string;
const taskA: Record<string, string> = {};

beforeAll(async () => {
  db = await createTestDb();
  t = await startTestApi(db);
  adminA = await token({ tenant: A, sub: 'ada', roles: ['bpm_admin'] });
  adminB = await token({ tenant: B, sub: 'bea', roles: ['bpm_admin'] });

  const deployed = await t.data<DeployData>(adminA, DEPLOY, { files: [{ name: 'offers.bpmn', xml: OFFERS }] });
  expect(deployed.deployProcess.problems).toEqual([]);
  const started = await t.data<StartData>(adminA, START, { key: 'offers', businessKey: 'a-1' });
  instanceA = started.startProcess.result.id;
  const { userTasks } = await t.data<UserTasksData>(adminA, USER_TASKS);
  for (const task of userTasks.nodes) taskA[task.elementId] = task.id;
  expect(Object.keys(taskA).sort()).toEqual(['bobs', 'hr', 'sales']);
});

afterAll(async () => {
  await t?.close();
  await db?.close();
});

describe('tenant B sees none of tenant A', () => {
  test('no process definitions, instances, tasks or history', async () => {
    const data = await t.data<{
      processDefinitions: { totalCount: number };
      processInstances: { totalCount: number };
      userTasks: { totalCount: number };
      activityInstances: { totalCount: number };
      deployments: { totalCount: number };
    }>(
      adminB,
      `{ processDefinitions { totalCount } processInstances { totalCount } userTasks { totalCount }
         activityInstances { totalCount } deployments { totalCount } }`,
    );
    expect(data).toEqual({
      processDefinitions: { totalCount: 0 },
      processInstances: { totalCount: 0 },
      userTasks: { totalCount: 0 },
      activityInstances: { totalCount: 0 },
      deployments: { totalCount: 0 },
    });
  });

  test('not even by primary key with tenant A named explicitly', async () => {
    const data = await t.data<{ processInstance: unknown; userTask: unknown }>(
      adminB,
      `query($tenant: String!, $i: UUID!, $t: UUID!) { processInstance(tenantId: $tenant, id: $i) { id } userTask(tenantId: $tenant, id: $t) { id } }`,
      { tenant: A, i: instanceA, t: taskA.sales },
    );
    expect(data).toEqual({ processInstance: null, userTask: null });
  });

  test("cannot complete A's task: BP103, and nothing changes", async () => {
    const reply = await t.gql<CompleteData>(adminB, COMPLETE, { id: taskA.sales });
    expect(reply.body.errors).toEqual([expect.objectContaining({ extensions: { code: 'BP103' } })]);
    const { rows } = await db.root.query<{ state: string }>('select state from bpm.user_task where id = $1', [taskA.sales]);
    expect(rows).toEqual([{ state: 'open' }]);
  });

  test("cannot start A's process: BP101", async () => {
    const reply = await t.gql(adminB, START, { key: 'offers' });
    expect(reply.body.errors).toEqual([expect.objectContaining({ extensions: { code: 'BP101' } })]);
  });

  test('tenant A still sees its own', async () => {
    const { processInstances } = await t.data<InstancesData>(adminA, INSTANCES);
    expect(processInstances.nodes.map((n) => n.id)).toEqual([instanceA]);
  });
});

describe('a bpm_user sees only the tasks offered to them', () => {
  test('alice (group sales) sees the sales task only', async () => {
    const alice = await token({ tenant: A, sub: 'alice', roles: ['bpm_user'], groups: ['sales'] });
    const { userTasks } = await t.data<UserTasksData>(alice, USER_TASKS);
    expect(userTasks.nodes.map((n) => n.elementId)).toEqual(['sales']);
    // and the instance she holds a task of
    const { processInstances } = await t.data<InstancesData>(alice, `{ processInstances { totalCount nodes { id } } }`);
    expect(processInstances.nodes).toEqual([{ id: instanceA }]);
  });

  test('bob (no groups) sees the task assigned to him only', async () => {
    const bob = await token({ tenant: A, sub: 'bob', roles: ['bpm_user'] });
    const { userTasks } = await t.data<UserTasksData>(bob, USER_TASKS);
    expect(userTasks.nodes.map((n) => n.elementId)).toEqual(['bobs']);
  });

  test('groups given as a comma-separated string work too', async () => {
    const carol = await token({ tenant: A, sub: 'carol', roles: ['bpm_user'], groups: 'hr, sales' });
    const { userTasks } = await t.data<UserTasksData>(carol, USER_TASKS);
    expect(userTasks.nodes.map((n) => n.elementId).sort()).toEqual(['hr', 'sales']);
  });

  test('the same user in tenant B sees nothing', async () => {
    const aliceB = await token({ tenant: B, sub: 'alice', roles: ['bpm_user'], groups: ['sales'] });
    const { userTasks } = await t.data<UserTasksData>(aliceB, USER_TASKS);
    expect(userTasks.totalCount).toBe(0);
  });

  test("alice cannot complete the hr task nor bob's: not visible to her, BP103", async () => {
    const alice = await token({ tenant: A, sub: 'alice', roles: ['bpm_user'], groups: ['sales'] });
    for (const id of [taskA.hr, taskA.bobs]) {
      const reply = await t.gql<CompleteData>(alice, COMPLETE, { id });
      expect(reply.body.errors).toEqual([expect.objectContaining({ extensions: { code: 'BP103' } })]);
    }
  });

  test('alice completes the sales task offered to her, which claims it', async () => {
    const alice = await token({ tenant: A, sub: 'alice', roles: ['bpm_user'], groups: ['sales'] });
    const { completeTask } = await t.data<CompleteData>(alice, COMPLETE, { id: taskA.sales, variables: { ok: true } });
    expect(completeTask?.result).toEqual({ id: taskA.sales, state: 'completed', completedBy: 'alice' });
  });

  test('a bpm_user may not call admin functions: 42501', async () => {
    const alice = await token({ tenant: A, sub: 'alice', roles: ['bpm_user'], groups: ['sales'] });
    const reply = await t.gql(alice, `mutation($id: UUID!) { cancelProcessInstance(input: { instanceId: $id }) { result { state } } }`, { id: instanceA });
    expect(reply.body.errors).toEqual([expect.objectContaining({ extensions: { code: '42501' } })]);
    const { rows } = await db.root.query<{ state: string }>('select state from bpm.process_instance where id = $1', [instanceA]);
    expect(rows).toEqual([{ state: 'active' }]);
  });
});
