/**
 * What a bpm_user sees and may touch, as the real role: only the user tasks
 * assigned to them or, unassigned, offered to them as a candidate user or
 * through a candidate group (bpm.groups); only the instances they started or
 * hold such a task of; no history, external tasks or incidents at all.
 * Also documents the trust boundary: tenant, user and role are session state
 * chosen by the server (the GraphQL layer sets them from the JWT), not
 * something the database can defend against a client that runs its own SQL.
 */
import type pg from 'pg';
import { createTestDb, type TestDb } from '../../helpers/db';
import { deployProcess, expectRejectedUnchanged } from '../../helpers/engine';

const TENANT = 'tenant-u';
const OTHER = 'tenant-other';

/** One instance, seven user tasks with every kind of assignment. */
const TASKS = [
  ['assignedAlice', 'camunda:assignee="alice"'],
  ['assignedBob', 'camunda:assignee="bob" camunda:candidateUsers="alice" camunda:candidateGroups="sales"'],
  ['candidateAlice', 'camunda:candidateUsers="alice,carol"'],
  ['groupSales', 'camunda:candidateGroups="sales,marketing"'],
  ['groupHr', 'camunda:candidateGroups="hr"'],
  ['candidateCarol', 'camunda:candidateUsers="carol"'],
  ['nobody', ''],
] as const;
type TaskName = (typeof TASKS)[number][0];

const VISIBILITY = `
  <startEvent id="s"/><sequenceFlow id="f0" sourceRef="s" targetRef="fork"/>
  <parallelGateway id="fork"/>
  ${TASKS.map(
    ([id, attrs]) => `
  <sequenceFlow id="to_${id}" sourceRef="fork" targetRef="${id}"/>
  <userTask id="${id}" ${attrs}/>
  <sequenceFlow id="from_${id}" sourceRef="${id}" targetRef="join"/>`,
  ).join('')}
  <parallelGateway id="join"/><sequenceFlow id="f9" sourceRef="join" targetRef="e"/><endEvent id="e"/>`;
const PLAIN = `
  <startEvent id="s"/><sequenceFlow id="f1" sourceRef="s" targetRef="t"/>
  <userTask id="t"/><sequenceFlow id="f2" sourceRef="t" targetRef="e"/><endEvent id="e"/>`;

let db: TestDb;
/** Task ids of the tenant-u instance, by element id. */
const task = {} as Record<TaskName, string>;
let visibilityInstance: string;
let aliceStarted: string;
let bobStarted: string;
let otherTenantAliceTask: string;

beforeAll(async () => {
  db = await createTestDb();
  for (const tenant of [TENANT, OTHER]) {
    const admin = await db.connectAs({ role: 'bpm_admin', tenant, user: 'admin' });
    await deployProcess(admin, 'visibility', VISIBILITY);
    await deployProcess(admin, 'plain', PLAIN);
    if (tenant === OTHER) await deployProcess(admin, 'other_only', PLAIN);
    const { rows } = await admin.query<{ id: string }>(`select id from bpm.start_process('visibility')`);
    const instance = (rows[0] as { id: string }).id;
    const tasks = await admin.query<{ id: string; element_id: TaskName }>('select id, element_id from bpm.user_task where instance_id = $1', [instance]);
    if (tenant === TENANT) {
      visibilityInstance = instance;
      for (const t of tasks.rows) task[t.element_id] = t.id;
    } else {
      otherTenantAliceTask = (tasks.rows.find((t) => t.element_id === 'assignedAlice') as { id: string }).id;
    }
    await admin.end();
  }
  const alice = await db.connectAs({ role: 'bpm_user', tenant: TENANT, user: 'alice' });
  const bob = await db.connectAs({ role: 'bpm_user', tenant: TENANT, user: 'bob' });
  aliceStarted = (await alice.query<{ id: string }>(`select id from bpm.start_process('plain')`)).rows[0]?.id as string;
  bobStarted = (await bob.query<{ id: string }>(`select id from bpm.start_process('plain')`)).rows[0]?.id as string;
  await alice.end();
  await bob.end();
});

afterAll(async () => {
  await db?.close();
});

async function visibleTasks(client: pg.Client): Promise<string[]> {
  const { rows } = await client.query<{ element_id: string }>('select element_id from bpm.user_task order by element_id');
  return rows.map((r) => r.element_id);
}

async function user(name: string | null, groups?: string[], tenant: string = TENANT): Promise<pg.Client> {
  return db.connectAs({ role: 'bpm_user', tenant, user: name, groups });
}

test('the model assigns and offers its tasks as written', async () => {
  const { rows } = await db.root.query(
    `select element_id, assignee, candidate_users, candidate_groups from bpm.user_task where tenant_id = $1 and instance_id = $2 order by element_id`,
    [TENANT, visibilityInstance],
  );
  expect(rows).toEqual([
    { element_id: 'assignedAlice', assignee: 'alice', candidate_users: [], candidate_groups: [] },
    { element_id: 'assignedBob', assignee: 'bob', candidate_users: ['alice'], candidate_groups: ['sales'] },
    { element_id: 'candidateAlice', assignee: null, candidate_users: ['alice', 'carol'], candidate_groups: [] },
    { element_id: 'candidateCarol', assignee: null, candidate_users: ['carol'], candidate_groups: [] },
    { element_id: 'groupHr', assignee: null, candidate_users: [], candidate_groups: ['hr'] },
    { element_id: 'groupSales', assignee: null, candidate_users: [], candidate_groups: ['sales', 'marketing'] },
    { element_id: 'nobody', assignee: null, candidate_users: [], candidate_groups: [] },
  ]);
});

test('a bpm_user sees the tasks assigned to them and the unassigned tasks offered to them or their groups, nothing else', async () => {
  const alice = await user('alice', ['sales']);
  expect(await visibleTasks(alice)).toEqual(['assignedAlice', 'candidateAlice', 'groupSales']);
  await alice.end();
  const aliceNoGroups = await user('alice');
  expect(await visibleTasks(aliceNoGroups)).toEqual(['assignedAlice', 'candidateAlice']);
  await aliceNoGroups.end();
  const aliceHr = await user('alice', ['hr', 'marketing']);
  expect(await visibleTasks(aliceHr)).toEqual(['assignedAlice', 'candidateAlice', 'groupHr', 'groupSales']);
  await aliceHr.end();
  const bob = await user('bob', []);
  expect(await visibleTasks(bob)).toEqual(['assignedBob']);
  await bob.end();
  const carol = await user('carol', ['support']);
  expect(await visibleTasks(carol)).toEqual(['candidateAlice', 'candidateCarol']);
  await carol.end();
  const dave = await user('dave', ['support']);
  expect(await visibleTasks(dave)).toEqual([]);
  await dave.end();
});

test('a bpm_user does not see tasks of another tenant assigned to the same user name', async () => {
  const alice = await user('alice', ['sales']);
  const { rows } = await alice.query('select count(*)::int as n from bpm.user_task where id = $1 or tenant_id <> $2', [otherTenantAliceTask, TENANT]);
  expect(rows).toEqual([{ n: 0 }]);
  await expectRejectedUnchanged(db.root, () => alice.query('select bpm.complete_task($1)', [otherTenantAliceTask]), 'BP103', /not found/);
  await alice.end();
});

test('a task claimed by someone else disappears from the other candidates until it is unclaimed', async () => {
  const alice = await user('alice');
  const carol = await user('carol');
  try {
    await carol.query('select bpm.claim_task($1)', [task.candidateAlice]);
    expect(await visibleTasks(alice)).toEqual(['assignedAlice']);
    expect(await visibleTasks(carol)).toEqual(['candidateAlice', 'candidateCarol']);
    // the functions still know alice as a candidate: "taken by someone else" (see the BP204 note below)
    await expectRejectedUnchanged(db.root, () => alice.query('select bpm.claim_task($1)', [task.candidateAlice]), 'BP204', /already assigned to another user/);
    await carol.query('select bpm.unclaim_task($1)', [task.candidateAlice]);
    expect(await visibleTasks(alice)).toEqual(['assignedAlice', 'candidateAlice']);
  } finally {
    await alice.end();
    await carol.end();
  }
});

test('a bpm_user cannot complete, claim or unclaim a task they cannot see: BP103 and nothing changes', async () => {
  const alice = await user('alice', ['sales']);
  try {
    for (const name of ['groupHr', 'candidateCarol', 'nobody'] as const) {
      for (const fn of ['complete_task', 'claim_task', 'unclaim_task']) {
        await expectRejectedUnchanged(db.root, () => alice.query(`select bpm.${fn}($1)`, [task[name]]), 'BP103', /not found/);
      }
    }
    // BP204 note: a task assigned to bob that still lists alice as a candidate
    // is hidden from alice's SELECT (offered means unassigned), but the
    // functions treat her as a candidate who lost it: BP204, not BP103. That
    // is the documented contract (ERROR_CODES.md, BP204 "claim, complete or
    // unclaim by a bpm_user"); it tells a candidate the task exists and is taken.
    await expectRejectedUnchanged(db.root, () => alice.query('select bpm.complete_task($1)', [task.assignedBob]), 'BP204', /is assigned to another user/);
    await expectRejectedUnchanged(db.root, () => alice.query('select bpm.claim_task($1)', [task.assignedBob]), 'BP204', /already assigned to another user/);
    await expectRejectedUnchanged(db.root, () => alice.query('select bpm.unclaim_task($1)', [task.assignedBob]), 'BP204', /not assigned to you/);
    // visible but not theirs to unclaim
    await expectRejectedUnchanged(db.root, () => alice.query('select bpm.unclaim_task($1)', [task.groupSales]), 'BP204', /not assigned to you/);
    // and admin-only functions are not theirs at all
    await expectRejectedUnchanged(db.root, () => alice.query(`select bpm.set_assignee($1, 'alice')`, [task.groupHr]), '42501');
  } finally {
    await alice.end();
  }
});

test('a bpm_user completing a task offered to their group claims and completes it', async () => {
  const alice = await user('alice', ['sales']);
  const { rows } = await alice.query('select element_id, state, assignee, completed_by from bpm.complete_task($1)', [task.groupSales]);
  expect(rows).toEqual([{ element_id: 'groupSales', state: 'completed', assignee: 'alice', completed_by: 'alice' }]);
  // still theirs to see, now as the assignee
  expect(await visibleTasks(alice)).toEqual(['assignedAlice', 'candidateAlice', 'groupSales']);
  await alice.end();
});

test('a bpm_user reads no history, external tasks, incidents, deployments or engine internals', async () => {
  const alice = await user('alice', ['sales']);
  try {
    for (const table of ['activity_instance', 'external_task', 'incident', 'deployment']) {
      await expect(alice.query(`select count(*) from bpm.${table}`)).rejects.toMatchObject({
        code: '42501',
        message: `permission denied for table ${table}`,
      });
    }
    await expect(alice.query('select count(*) from bpm_private.token')).rejects.toMatchObject({ code: '42501' });
  } finally {
    await alice.end();
  }
});

test('a bpm_user sees the process instances they started or hold a visible task of, and every definition of the tenant', async () => {
  const alice = await user('alice', ['sales']);
  const bob = await user('bob');
  const dave = await user('dave');
  try {
    const instances = async (c: pg.Client): Promise<string[]> =>
      (await c.query<{ id: string }>('select id from bpm.process_instance order by id')).rows.map((r) => r.id);
    expect(await instances(alice)).toEqual([aliceStarted, visibilityInstance].sort());
    expect(await instances(bob)).toEqual([bobStarted, visibilityInstance].sort());
    expect(await instances(dave)).toEqual([]);
    const { rows } = await alice.query('select key from bpm.process_definition order by key');
    expect(rows).toEqual([{ key: 'plain' }, { key: 'visibility' }]);
  } finally {
    await alice.end();
    await bob.end();
    await dave.end();
  }
});

test('a bpm_user without bpm.user_id sees only group-offered tasks and cannot act: BP002', async () => {
  const anonymous = await user(null, ['hr']);
  try {
    expect(await visibleTasks(anonymous)).toEqual(['groupHr']);
    for (const fn of ['complete_task', 'claim_task']) {
      await expectRejectedUnchanged(db.root, () => anonymous.query(`select bpm.${fn}($1)`, [task.groupHr]), 'BP002', /bpm\.user_id is not set/);
    }
  } finally {
    await anonymous.end();
  }
});

/*
 * Trust boundary. bpm.tenant_id, bpm.user_id, bpm.groups and the role are
 * plain session state: the database trusts whoever sets them. Choosing them is
 * the authenticator's job, i.e. the server's: the GraphQL layer sets them per
 * transaction from the verified JWT and never lets a client run its own SQL.
 * These tests pin down what a session that CAN run arbitrary SQL can do, so
 * that the boundary is explicit (and a change to it is noticed).
 */
test('trust boundary: a bpm_user session that sets bpm.tenant_id or bpm.user_id itself sees that tenant or user', async () => {
  const alice = await user('alice', ['sales']);
  try {
    await alice.query(`select set_config('bpm.tenant_id', $1, false)`, [OTHER]);
    const { rows } = await alice.query<{ tenant_id: string; element_id: string }>(
      'select tenant_id, element_id from bpm.user_task order by element_id',
    );
    expect(rows).toEqual(['assignedAlice', 'candidateAlice', 'groupSales'].map((element_id) => ({ tenant_id: OTHER, element_id })));
    expect(await alice.query('select count(*)::int as n from bpm.user_task where id = $1', [otherTenantAliceTask])).toMatchObject({ rows: [{ n: 1 }] });
    await alice.query(`select set_config('bpm.tenant_id', $1, false), set_config('bpm.user_id', 'bob', false)`, [TENANT]);
    expect(await visibleTasks(alice)).toEqual(['assignedBob']);
  } finally {
    await alice.end();
  }
});

test('trust boundary: a bpm_user session can SET ROLE bpm_admin, because the login role holds every API role', async () => {
  // bpm_authenticator is NOINHERIT but a member of all API roles, and SET ROLE
  // is checked against the session user: once connected, any API role can be
  // entered. Only the server deciding the role (SET LOCAL ROLE per
  // transaction, no client SQL) keeps a bpm_user a bpm_user.
  const alice = await user('alice', ['sales']);
  try {
    await alice.query('set role bpm_admin');
    const { rows } = await alice.query(`select current_user::text as role, (select count(*)::int from bpm.user_task) as tasks`);
    expect(rows).toEqual([{ role: 'bpm_admin', tasks: 9 }]); // every task of the tenant (7 + 2 of the plain instances)
    // the login role itself holds no privileges at all
    await alice.query('reset role');
    const me = await alice.query(`select current_user::text as role`);
    expect(me.rows).toEqual([{ role: 'bpm_authenticator' }]);
    await expect(alice.query('select count(*) from bpm.user_task')).rejects.toMatchObject({ code: '42501' });
    await expectRejectedUnchanged(db.root, () => alice.query('select bpm.complete_task($1)', [task.nobody]), '42501');
    // and it cannot become the owner
    await expect(alice.query('set role bpm_owner')).rejects.toMatchObject({ code: '42501' });
  } finally {
    await alice.end();
  }
});
