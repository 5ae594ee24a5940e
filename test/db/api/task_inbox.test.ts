/**
 * bpm.task_inbox: a user's open tasks, assigned to them or offered to them
 * (as a candidate user or through a group), in inbox order, page by page;
 * kept right through claim, unclaim, reassignment, completion and
 * cancellation; isolated by tenant; and read through one index range per
 * identity, however many tasks the tenant has open.
 */
import type pg from 'pg';
import { createTestDb, type TestDb } from '../../helpers/db';
import { deployProcess, expectRejectedUnchanged } from '../../helpers/engine';
import { explainingSession } from '../../helpers/plans';

jest.setTimeout(60_000);

const T = 't-inbox';
let db: TestDb;
let admin: pg.Client;
let alice: pg.Client;
let bob: pg.Client;

/** Starts one instance of "offer" and returns its task id. */
async function offer(name: string, priority: number, attrs: { assignee?: string; users?: string; groups?: string }): Promise<string> {
  const started = await admin.query<{ id: string }>(`select (bpm.start_process('offer', $1::jsonb)).id`, [
    JSON.stringify({ name, priority, assignee: attrs.assignee ?? null, users: attrs.users ?? '', groups: attrs.groups ?? '' }),
  ]);
  const { rows } = await admin.query<{ id: string }>(`select id from bpm.user_task where instance_id = $1`, [started.rows[0].id]);
  return rows[0].id;
}

async function inbox(client: pg.ClientBase, after: string | null = null, max = 50): Promise<string[]> {
  const { rows } = await client.query<{ id: string }>(`select id from bpm.task_inbox($1, $2)`, [after, max]);
  return rows.map((r) => r.id);
}

const ids: Record<string, string> = {};

beforeAll(async () => {
  db = await createTestDb();
  admin = await db.connectAs({ role: 'bpm_admin', tenant: T, user: 'admin' });
  alice = await db.connectAs({ role: 'bpm_user', tenant: T, user: 'alice', groups: ['sales', 'emea'] });
  bob = await db.connectAs({ role: 'bpm_user', tenant: T, user: 'bob', groups: ['sales'] });
  await deployProcess(admin, 'offer', `
    <startEvent id="s"/><sequenceFlow id="f1" sourceRef="s" targetRef="t"/>
    <userTask id="t" name="\${name}" camunda:priority="\${priority}" camunda:assignee="\${assignee}"
      camunda:candidateUsers="\${users}" camunda:candidateGroups="\${groups}"/>
    <sequenceFlow id="f2" sourceRef="t" targetRef="e"/><endEvent id="e"/>`);
  // alice's inbox, in order: p90 own, p80 by user and group (once), p70 emea, p50 sales (older), p50 own (newer)
  ids.own90 = await offer('own90', 90, { assignee: 'alice' });
  ids.both80 = await offer('both80', 80, { users: 'alice', groups: 'sales' });
  ids.emea70 = await offer('emea70', 70, { groups: 'emea' });
  ids.sales50 = await offer('sales50', 50, { groups: 'sales,hr' });
  ids.own50 = await offer('own50', 50, { assignee: 'alice', groups: 'sales' });
  // not hers: bob's, offered to others, assigned to bob though offered to sales
  ids.bob60 = await offer('bob60', 60, { assignee: 'bob' });
  ids.hr99 = await offer('hr99', 99, { groups: 'hr', users: 'carol' });
  ids.bobSales = await offer('bobSales', 95, { assignee: 'bob', groups: 'sales' });
});

afterAll(async () => {
  await db?.close();
});

describe('task_inbox', () => {
  test('assigned and offered open tasks, each once, highest priority first, then oldest', async () => {
    expect(await inbox(alice)).toEqual([ids.own90, ids.both80, ids.emea70, ids.sales50, ids.own50]);
    expect(await inbox(bob)).toEqual([ids.bobSales, ids.both80, ids.bob60, ids.sales50]);
  });

  test('pages follow each other without gaps or repeats', async () => {
    const all = await inbox(alice);
    const pages: string[] = [];
    let after: string | null = null;
    for (let i = 0; i < 10; i++) {
      const page = await inbox(alice, after, 2);
      if (page.length === 0) break;
      expect(page.length).toBeLessThanOrEqual(2);
      pages.push(...page);
      after = page[page.length - 1];
    }
    expect(pages).toEqual(all);
  });

  test('what inbox returns is what the user reads through bpm.user_task (row-level security), in the same order', async () => {
    const { rows } = await alice.query<{ id: string }>(`select id from bpm.user_task where state = 'open' order by priority desc, created_at, id`);
    expect(await inbox(alice)).toEqual(rows.map((r) => r.id));
  });

  test('claim, unclaim, reassignment, completion and cancellation keep every inbox right', async () => {
    await bob.query(`select bpm.claim_task($1)`, [ids.sales50]);
    expect(await inbox(alice)).not.toContain(ids.sales50);
    expect(await inbox(bob)).toContain(ids.sales50);
    await bob.query(`select bpm.unclaim_task($1)`, [ids.sales50]);
    expect(await inbox(alice)).toContain(ids.sales50);
    await admin.query(`select bpm.set_assignee($1, 'alice')`, [ids.emea70]);
    await admin.query(`select bpm.set_assignee($1, null)`, [ids.emea70]);
    expect(await inbox(alice)).toEqual([ids.own90, ids.both80, ids.emea70, ids.sales50, ids.own50]);
    await alice.query(`select bpm.complete_task($1)`, [ids.both80]);
    const instance = await db.root.query<{ instance_id: string }>(`select instance_id from bpm.user_task where id = $1`, [ids.emea70]);
    await admin.query(`select bpm.cancel_process_instance($1)`, [instance.rows[0].instance_id]);
    expect(await inbox(alice)).toEqual([ids.own90, ids.sales50, ids.own50]);
    expect(await inbox(bob)).toEqual([ids.bobSales, ids.bob60, ids.sales50]);
    // the offers held are exactly those of the open unassigned tasks
    const { rows } = await db.root.query<{ n: number }>(
      `select count(*)::int as n from bpm_private.task_offer o
       where not exists (select 1 from bpm.user_task t where t.tenant_id = o.tenant_id and t.id = o.task_id and t.state = 'open' and t.assignee is null)`,
    );
    expect(rows[0].n).toBe(0);
  });

  test('new tasks hold exactly the offers their candidates give: one statement, one multi-instance step, names that need quoting', async () => {
    const M = 't-inbox-offers';
    const tenantAdmin = await db.connectAs({ role: 'bpm_admin', tenant: M, user: 'admin' });
    await deployProcess(tenantAdmin, 'offers_mi', `
      <startEvent id="s"/><sequenceFlow id="f1" sourceRef="s" targetRef="fork"/><parallelGateway id="fork"/>
      <sequenceFlow id="f2" sourceRef="fork" targetRef="mi"/>
      <userTask id="mi" camunda:candidateUsers="carol, dave" camunda:candidateGroups="sales,sales, {odd} \\group, &quot;quoted&quot;">
        <multiInstanceLoopCharacteristics><loopCardinality>3</loopCardinality></multiInstanceLoopCharacteristics>
      </userTask>
      <sequenceFlow id="f3" sourceRef="fork" targetRef="assigned"/>
      <userTask id="assigned" camunda:assignee="erin" camunda:candidateGroups="sales"/>
      <sequenceFlow id="f4" sourceRef="fork" targetRef="plain"/><userTask id="plain"/>`);
    await tenantAdmin.query(`select bpm.start_process('offers_mi') from generate_series(1, 2)`);
    const held = await db.root.query<{ task: string; identity: string }>(
      `select t.element_id as task, o.identity from bpm_private.task_offer o join bpm.user_task t on t.tenant_id = o.tenant_id and t.id = o.task_id
       where o.tenant_id = $1 order by o.task_id, o.identity`, [M]);
    const expected = await db.root.query<{ task: string; identity: string }>(
      `select t.element_id as task, i.identity from bpm.user_task t
       cross join lateral (select 'u:' || u from unnest(t.candidate_users) u union select 'g:' || g from unnest(t.candidate_groups) g) i(identity)
       where t.tenant_id = $1 and t.state = 'open' and t.assignee is null order by t.id, i.identity`, [M]);
    expect(held.rows).toEqual(expected.rows);
    expect(held.rows).toHaveLength(2 * 3 * 5);
    const { rows } = await db.root.query<{ groups: string[] }>(`select candidate_groups as groups from bpm.user_task where tenant_id = $1 and element_id = 'mi' limit 1`, [M]);
    expect(rows[0].groups).toEqual(['sales', 'sales', '{odd} \\group', '"quoted"']);
  });

  test('another tenant\'s user with the same name and groups sees nothing of this tenant', async () => {
    const other = await db.connectAs({ role: 'bpm_user', tenant: 't-inbox-other', user: 'alice', groups: ['sales', 'emea'] });
    expect(await inbox(other)).toEqual([]);
  });

  test('errors: no user, max_tasks out of range, an unknown task to page after', async () => {
    const nobody = await db.connectAs({ role: 'bpm_user', tenant: T });
    await expectRejectedUnchanged(db.root, () => inbox(nobody), 'BP002', /bpm\.user_id is not set/);
    await expectRejectedUnchanged(db.root, () => inbox(alice, null, 0), 'BP401', /max_tasks must be 1 to 1000, not 0/);
    await expectRejectedUnchanged(db.root, () => inbox(alice, '00000000-0000-0000-0000-000000000000'), 'BP103', /user task 00000000-0000-0000-0000-000000000000 not found/);
    const designer = await db.connectAs({ role: 'bpm_designer', tenant: T, user: 'dee' });
    await expectRejectedUnchanged(db.root, () => inbox(designer), '42501');
  });
});

test('a user offered few of many open tasks reads one index range per identity, not the tenant\'s open tasks', async () => {
  const P = 't-inbox-plans';
  const tenantAdmin = await db.connectAs({ role: 'bpm_admin', tenant: P, user: 'admin' });
  await deployProcess(tenantAdmin, 'offer_many', `
    <startEvent id="s"/><sequenceFlow id="f1" sourceRef="s" targetRef="t"/>
    <userTask id="t" camunda:candidateGroups="\${group}"/>`);
  // 3,000 open tasks offered to "many", 3 to "few"
  await tenantAdmin.query(`select count(bpm.start_process('offer_many', jsonb_build_object('group', case when g % 1000 = 0 then 'few' else 'many' end))) from generate_series(1, 3000) g`);
  await db.root.query('analyze bpm.user_task; analyze bpm_private.task_offer');
  const { session, record, close } = await explainingSession(db.root, 'bpm_user', P);
  try {
    await session.query(`reset role; set auto_explain.log_analyze = on; set role bpm_user`);
    await session.query(`select set_config('bpm.user_id', 'fay', false), set_config('bpm.groups', 'few', false)`);
    const plans = record('task_offer');
    const rowsRead = record('t.id = any(v_ids)');
    const { rows } = await session.query<{ id: string }>(`select id from bpm.task_inbox(null, 20)`);
    expect(rows).toHaveLength(3);
    expect(plans).toHaveLength(1);
    expect(plans[0]).toMatch(/Index (Only )?Scan using task_offer_inbox_idx on task_offer/);
    // rows each plan node produced (rows per loop, rounded, times loops): the
    // 3 offers of "few" and their ids, a handful; nothing of the 2,997 others
    const counts = [...plans[0].matchAll(/actual time=[\d.]+\.\.[\d.]+ rows=(\d+) loops=(\d+)/g)].map((m) => Number(m[1]) * Number(m[2]));
    expect(counts.length).toBeGreaterThan(3);
    expect(Math.max(...counts)).toBeLessThanOrEqual(6);
    expect(plans[0]).not.toMatch(/Rows Removed by Filter|Seq Scan/);
    expect(rowsRead).toHaveLength(1);
    expect(rowsRead[0]).toMatch(/Index Scan using user_task_pkey on user_task/);
    expect(rowsRead[0]).not.toMatch(/Seq Scan|rows=[1-9]\d{2,} /);
  } finally {
    await close();
  }
});
