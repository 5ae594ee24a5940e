/**
 * Plans of task-list queries. "My tasks" (the open tasks assigned to a user,
 * as userTasks(condition: {assignee, state}) asks for them, parameters and
 * all) read the tenant's open tasks and sorted them: 35 ms at 94,000 open
 * tasks for a user with 50. An index on the assignee serves it now. The
 * plans are read through auto_explain (as notices) as the bpm_user's session
 * meets them, with the generic plan a prepared statement gets.
 */
import { createTestDb, type TestDb } from '../../helpers/db';
import { deployProcess } from '../../helpers/engine';
import { explainingSession } from '../../helpers/plans';

jest.setTimeout(60_000);

const T = 't-task-plans';
let db: TestDb;

beforeAll(async () => {
  db = await createTestDb();
  const admin = await db.connectAs({ role: 'bpm_admin', tenant: T });
  await deployProcess(admin, 'plans_tasks', `
    <startEvent id="s"/><sequenceFlow id="f1" sourceRef="s" targetRef="t"/>
    <userTask id="t" camunda:assignee="\${owner}" camunda:candidateGroups="sales"/>`);
  // 3,000 open tasks offered to sales, 50 of them assigned to ann
  await admin.query(`select count(bpm.start_process('plans_tasks', jsonb_build_object('owner', case when g % 60 = 0 then 'ann' end))) from generate_series(1, 3000) g`);
  await db.root.query('analyze bpm.user_task');
  await admin.end();
});

afterAll(async () => {
  await db?.close();
});

test('a user\'s own open tasks are read through the assignee index, not the tenant\'s open tasks', async () => {
  const { session, record, close } = await explainingSession(db.root, 'bpm_user', T);
  try {
    await session.query(`select set_config('bpm.user_id', 'ann', false), set_config('bpm.groups', '', false)`);
    await session.query('set plan_cache_mode = force_generic_plan');
    const plans = record('where assignee = $1 and state = $2');
    const { rows } = await session.query<{ id: string; assignee: string }>({
      name: 'my_tasks',
      text: `select id, assignee from bpm.user_task where assignee = $1 and state = $2 order by priority desc, created_at asc, tenant_id desc, id desc limit 20`,
      values: ['ann', 'open'],
    });
    expect(rows).toHaveLength(20);
    expect(rows.every((r) => r.assignee === 'ann')).toBe(true);
    expect(plans).toHaveLength(1);
    // (an index scan, or a bitmap scan of the same index followed by the top-20 sort)
    expect(plans[0]).toMatch(/Index Scan (using|on) user_task_assignee_idx.*Index Cond: \(\(tenant_id = .+?\) AND \(assignee = \$1\) AND \(\(state\)::text = \$2\)\)/);
    expect(plans[0]).not.toMatch(/user_task_inbox_idx|Seq Scan on user_task/);
  } finally {
    await close();
  }
});
