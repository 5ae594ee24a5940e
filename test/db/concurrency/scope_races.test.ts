/**
 * Races inside scopes, with real parallel connections: the inner instances
 * of a parallel multi-instance task inside a subprocess completed all at
 * once. Every completion locks the instance row, so they serialise: the body
 * counts each exactly once, the subprocess and the instance complete once,
 * and the output collection holds every result in input order.
 */
import type pg from 'pg';
import { createTestDb, type TestDb } from '../../helpers/db';
import { deployProcess } from '../../helpers/engine';

const N = 10;
const ROUNDS = 20;

jest.setTimeout(60_000);

let db: TestDb;
let pool: pg.Pool;

beforeAll(async () => {
  db = await createTestDb();
  const admin = await db.connectAs({ role: 'bpm_admin', tenant: 't-scope-races', user: 'admin' });
  await deployProcess(admin, 'scope_race', `
    <startEvent id="s"/><sequenceFlow id="f1" sourceRef="s" targetRef="sub"/>
    <subProcess id="sub">
      <startEvent id="is"/><sequenceFlow id="i1" sourceRef="is" targetRef="vote"/>
      <userTask id="vote" camunda:assignee="\${voter}">
        <extensionElements><camunda:properties>
          <camunda:property name="pgbpm:outputCollection" value="votes"/>
          <camunda:property name="pgbpm:outputElement" value="\${vote}"/>
        </camunda:properties></extensionElements>
        <multiInstanceLoopCharacteristics camunda:collection="\${voters}" camunda:elementVariable="voter"/>
      </userTask>
      <sequenceFlow id="i2" sourceRef="vote" targetRef="ie"/><endEvent id="ie"/>
    </subProcess>
    <sequenceFlow id="f2" sourceRef="sub" targetRef="e"/><endEvent id="e"/>`);
  await admin.end();
  pool = db.pool({ role: 'bpm_admin', tenant: 't-scope-races', user: 'racer' }, N);
});

afterAll(async () => {
  await db?.close();
});

test(`${ROUNDS} rounds of ${N} inner instances completed at once: each counted once, the instance completes once, outputs in input order`, async () => {
  const voters = Array.from({ length: N }, (_, i) => `v${i}`);
  for (let round = 0; round < ROUNDS; round++) {
    const { rows: [inst] } = await pool.query<{ id: string }>(`select (bpm.start_process('scope_race', $1::jsonb)).id`, [JSON.stringify({ voters })]);
    const { rows: tasks } = await pool.query<{ id: string; assignee: string }>(
      `select id, assignee from bpm.user_task where instance_id = $1`, [inst.id]);
    expect(tasks).toHaveLength(N);
    // every inner instance completed at the same moment, each on its own connection, voting its voter's name
    const results = await Promise.allSettled(tasks.map((t) =>
      pool.query(`select bpm.complete_task($1, jsonb_build_object('vote', $2::text))`, [t.id, t.assignee])));
    expect(results.filter((r) => r.status === 'rejected')).toEqual([]);
    const { rows: [done] } = await pool.query<{ state: string; votes: string[] }>(
      `select state, variables -> 'votes' as votes from bpm.process_instance where id = $1`, [inst.id]);
    expect(done.state).toBe('completed');
    expect(done.votes).toEqual(voters);
    const { rows: events } = await pool.query<{ kind: string; n: number }>(
      `select kind, count(*)::int as n from bpm.event where instance_id = $1 and kind in ('instanceCompleted', 'taskCompleted') group by kind order by kind`, [inst.id]);
    expect(events).toEqual([{ kind: 'instanceCompleted', n: 1 }, { kind: 'taskCompleted', n: N }]);
    const { rows: sub } = await pool.query(`select state from bpm.activity_instance where instance_id = $1 and element_id = 'sub'`, [inst.id]);
    expect(sub).toEqual([{ state: 'completed' }]);
  }
});
