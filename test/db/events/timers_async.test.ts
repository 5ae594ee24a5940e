/**
 * Timers, asynchronous continuations and task deadlines at the SQL level
 * (issue 4): what is armed, what a job does when it runs (on time, early,
 * twice, late, for a suspended instance), and the incidents of failing
 * continuations. test/db/worker/ runs the same through real jobs.
 */
import { createTestDb, type TestDb } from '../../helpers/db';
import { deployXml, expectRejectedUnchanged } from '../../helpers/engine';
import {
  actors,
  count,
  deployDefs,
  dropJob,
  all,
  bpmnDefs,
  fireTimer,
  history,
  incidents,
  instanceState,
  job,
  one,
  openUserTask,
  start,
  subscriptions,
  tokens,
  type Actors,
} from './support';

const T = 'tim-t';

let db: TestDb;
let as: Actors;

beforeAll(async () => {
  db = await createTestDb();
  as = await actors(db, T);
});
afterAll(() => db.close());

describe('cron and cycles', () => {
  const next = async (expr: string, after: string): Promise<string> =>
    (await one<{ t: string }>(db.root, `select to_char(bpm_private.cron__next($1, $2::timestamptz) at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS') as t`, [expr, after])).t;

  test.each([
    ['*/15 * * * *', '2026-03-01T10:07:00Z', '2026-03-01T10:15:00'],
    ['0 9 * * MON-FRI', '2026-11-27T10:00:00Z', '2026-11-30T09:00:00'], // Friday after 9 → Monday
    ['0 0 1 JAN *', '2026-06-01T00:00:00Z', '2027-01-01T00:00:00'],
    ['30 0 12 ? * SAT', '2026-11-26T00:00:00Z', '2026-11-28T12:00:30'], // 6 fields, seconds first
    ['0 0 0 29 FEB ?', '2026-03-01T00:00:00Z', '2028-02-29T00:00:00'],
    ['0 12 1,15 * *', '2026-01-15T12:00:00Z', '2026-02-01T12:00:00'],
  ])('cron %s after %s → %s', async (expr, after, expected) => {
    expect(await next(expr, after)).toBe(expected);
  });

  test('malformed cron is BP304', async () => {
    await expect(next('61 * * * *', '2026-01-01T00:00:00Z')).rejects.toMatchObject({ code: 'BP304' });
    await expect(next('* * *', '2026-01-01T00:00:00Z')).rejects.toMatchObject({ code: 'BP304' });
    await expect(next('0 0 30 FEB *', '2026-01-01T00:00:00Z')).rejects.toMatchObject({ code: 'BP304' });
  });
});

describe('timer boundaries', () => {
  beforeAll(async () => {
    await deployDefs(as.admin, 'nagging', '', `
    <startEvent id="start"/>
    <sequenceFlow id="f1" sourceRef="start" targetRef="work"/>
    <userTask id="work"/>
    <boundaryEvent id="nag" attachedToRef="work" cancelActivity="false"><timerEventDefinition><timeCycle>R3/PT1H</timeCycle></timerEventDefinition></boundaryEvent>
    <boundaryEvent id="giveUp" attachedToRef="work"><timerEventDefinition><timeDuration>P1D</timeDuration></timerEventDefinition></boundaryEvent>
    <sequenceFlow id="f2" sourceRef="work" targetRef="end"/>
    <endEvent id="end"/>
    <sequenceFlow id="f3" sourceRef="nag" targetRef="nagged"/>
    <endEvent id="nagged"/>
    <sequenceFlow id="f4" sourceRef="giveUp" targetRef="gaveUp"/>
    <endEvent id="gaveUp"/>`);
  });

  test('a non-interrupting cycle fires its repetitions while the task waits, then stops', async () => {
    const inst = await start(as.admin, 'nagging');
    const nag = (await subscriptions(db.root, inst.id)).find((s) => s.element_id === 'nag');
    expect(nag).toMatchObject({ cycle: 'R3/PT1H', repeats_left: 2, interrupting: false });
    for (let i = 0; i < 3; i++) {
      expect(await fireTimer(db.root, as.engine, nag?.id ?? '')).not.toBeNull();
      // a job running twice: the second run finds it not due (re-armed an hour later) and does nothing
      expect((await one<{ id: string | null }>(as.engine, 'select (bpm.fire_timer($1)).id', [nag?.id])).id).toBeNull();
    }
    expect(await fireTimer(db.root, as.engine, nag?.id ?? '')).toBeNull();
    expect((await subscriptions(db.root, inst.id)).map((s) => s.element_id)).toEqual(['giveUp']);
    expect((await history(db.root, inst.id)).filter((h) => h === 'nagged:completed')).toHaveLength(3);
    expect(await instanceState(db.root, inst.id)).toBe('active');
  });

  test('an interrupting timer cancels the task, removes the other timer, and takes its path', async () => {
    const inst = await start(as.admin, 'nagging');
    const subs = await subscriptions(db.root, inst.id);
    const giveUp = subs.find((s) => s.element_id === 'giveUp');
    const nag = subs.find((s) => s.element_id === 'nag');
    const task = await openUserTask(db.root, inst.id);
    await fireTimer(db.root, as.engine, giveUp?.id ?? '');
    expect(await instanceState(db.root, inst.id)).toBe('completed');
    expect((await one<{ state: string }>(db.root, 'select state from bpm.user_task where id = $1', [task.id])).state).toBe('cancelled');
    expect(await subscriptions(db.root, inst.id)).toEqual([]);
    expect(await job(db.root, `bpm-timer:${nag?.id}`)).toBeNull();
    await expect(as.admin.query('select bpm.complete_task($1)', [task.id])).rejects.toMatchObject({ code: 'BP203' });
  });

  test('a suspended instance’s timer does nothing until activation, which schedules it again', async () => {
    const inst = await start(as.admin, 'nagging');
    const giveUp = (await subscriptions(db.root, inst.id)).find((s) => s.element_id === 'giveUp');
    await as.admin.query('select bpm.suspend_process_instance($1)', [inst.id]);
    expect(await fireTimer(db.root, as.engine, giveUp?.id ?? '')).toBeNull();
    expect(await instanceState(db.root, inst.id)).toBe('suspended');
    await dropJob(db.root, `bpm-timer:${giveUp?.id}`);
    await as.admin.query('select bpm.activate_process_instance($1)', [inst.id]);
    const again = await job(db.root, `bpm-timer:${giveUp?.id}`);
    expect(again).toMatchObject({ task_identifier: 'bpm_fire_timer', payload: { tenant_id: T, subscription_id: giveUp?.id } });
    expect(await fireTimer(db.root, as.engine, giveUp?.id ?? '')).not.toBeNull();
    expect(await instanceState(db.root, inst.id)).toBe('completed');
  });

  test('cancelling the instance removes its timers and their jobs', async () => {
    const inst = await start(as.admin, 'nagging');
    const subs = await subscriptions(db.root, inst.id);
    await as.admin.query('select bpm.cancel_process_instance($1)', [inst.id]);
    expect(await subscriptions(db.root, inst.id)).toEqual([]);
    for (const s of subs) expect(await job(db.root, `bpm-timer:${s.id}`)).toBeNull();
  });

  test('a called instance’s timer locks the root of its call tree, fires, and the caller goes on', async () => {
    await deployDefs(as.admin, 'timer_child', '', `
      <startEvent id="cs"/><sequenceFlow id="c1" sourceRef="cs" targetRef="nap"/>
      <intermediateCatchEvent id="nap"><timerEventDefinition><timeDuration>PT1H</timeDuration></timerEventDefinition></intermediateCatchEvent>
      <sequenceFlow id="c2" sourceRef="nap" targetRef="ce"/><endEvent id="ce"/>`);
    await deployDefs(as.admin, 'timer_parent', '', `
      <startEvent id="ps"/><sequenceFlow id="p1" sourceRef="ps" targetRef="call"/>
      <callActivity id="call" calledElement="timer_child"/>
      <sequenceFlow id="p2" sourceRef="call" targetRef="pe"/><endEvent id="pe"/>`);
    const parent = await start(as.admin, 'timer_parent');
    const { rows: [child] } = await db.root.query<{ id: string; root_instance_id: string }>(
      'select id, root_instance_id from bpm.process_instance where parent_instance_id = $1', [parent.id]);
    expect(child.root_instance_id).toBe(parent.id);
    const [timer] = await subscriptions(db.root, child.id);
    expect(await fireTimer(db.root, as.engine, timer.id)).toEqual({ id: child.id });
    expect(await history(db.root, child.id)).toEqual(['cs:completed', 'nap:completed', 'ce:completed']);
    expect(await instanceState(db.root, parent.id)).toBe('completed');
    expect(await job(db.root, `bpm-timer:${timer.id}`)).toBeNull();
    // fired once: a second job for it finds nothing
    expect(await fireTimer(db.root, as.engine, timer.id)).toBeNull();
  });

  test('a timer job a worker holds is not deleted but never runs again; one held for over 4 hours (its worker gone) is deleted', async () => {
    const inst = await start(as.admin, 'nagging');
    const subs = await subscriptions(db.root, inst.id);
    const jobKey = (element: string): string => `bpm-timer:${subs.find((s) => s.element_id === element)!.id}`;
    const [held, stale] = [jobKey('nag'), jobKey('giveUp')];
    const { rows: ids } = await db.root.query<{ id: string; key: string }>(
      `update graphile_worker._private_jobs set locked_by = 'w-test-worker-1', locked_at = now() - case when key = $2 then interval '5 hours' else interval '1 second' end
       where key = any(array[$1, $2]) returning id, key`, [held, stale]);
    expect(ids).toHaveLength(2);
    await as.admin.query('select bpm.cancel_process_instance($1)', [inst.id]);
    const { rows } = await db.root.query<{ id: string; key: string | null; spent: boolean }>(
      'select id, key, attempts = max_attempts as spent from graphile_worker._private_jobs where id = any($1::bigint[])', [ids.map((j) => j.id)]);
    expect(rows).toEqual([{ id: ids.find((j) => j.key === held)!.id, key: null, spent: true }]);
  });
});

describe('a burst of due timers', () => {
  test('one job fires up to max_timers due timers of its tenant in one transaction and removes their jobs; the rest stay for their jobs', async () => {
    await deployDefs(as.admin, 'burst', '', `
      <startEvent id="s"/><sequenceFlow id="f1" sourceRef="s" targetRef="wait"/>
      <intermediateCatchEvent id="wait"><timerEventDefinition><timeDuration>PT1H</timeDuration></timerEventDefinition></intermediateCatchEvent>
      <sequenceFlow id="f2" sourceRef="wait" targetRef="e"/><endEvent id="e"/>`);
    const insts = [];
    for (let i = 0; i < 12; i++) insts.push(await start(as.admin, 'burst'));
    const subs = (await Promise.all(insts.map((i) => subscriptions(db.root, i.id)))).map(([s]) => s);
    // all due now but the last two
    await db.root.query(`update bpm.event_subscription set due_at = now() - interval '1 second' where id = any($1::uuid[])`, [subs.slice(0, 10).map((s) => s.id)]);
    const { rows: [first] } = await as.engine.query<{ n: number }>('select bpm.fire_due_timers($1, 6) as n', [subs[0].id]);
    expect(first.n).toBe(6);
    const states = await Promise.all(insts.map((i) => instanceState(db.root, i.id)));
    expect(states.filter((x) => x === 'completed')).toHaveLength(6);
    // fired ones have no job left; waiting ones keep theirs
    for (const [k, sub] of subs.entries()) {
      if (states[k] === 'completed' && k !== 0) expect(await job(db.root, `bpm-timer:${sub.id}`)).toBeNull();
      if (states[k] !== 'completed') expect(await job(db.root, `bpm-timer:${sub.id}`)).not.toBeNull();
    }
    // a second job takes the 4 still due; the 2 not due stay; a job for a fired timer does nothing
    const { rows: [second] } = await as.engine.query<{ n: number }>('select bpm.fire_due_timers($1, 50) as n', [subs[10].id]);
    expect(second.n).toBe(4);
    expect(await count(db.root, `select 1 from bpm.process_instance where id = any($1::uuid[]) and state = 'completed'`, [insts.map((i) => i.id)])).toBe(10);
    const { rows: [again] } = await as.engine.query<{ n: number }>('select bpm.fire_due_timers($1, 50) as n', [subs[0].id]);
    expect(again.n).toBe(0);
    await expect(as.engine.query('select bpm.fire_due_timers($1, 0)', [subs[0].id])).rejects.toMatchObject({ code: 'BP401' });
  });

  test('a batch passes over an instance another transaction holds, without waiting; that timer fires by a later job', async () => {
    await deployDefs(as.admin, 'burst_held', '', `
      <startEvent id="s"/><sequenceFlow id="f1" sourceRef="s" targetRef="wait"/>
      <intermediateCatchEvent id="wait"><timerEventDefinition><timeDuration>PT1H</timeDuration></timerEventDefinition></intermediateCatchEvent>
      <sequenceFlow id="f2" sourceRef="wait" targetRef="e"/><endEvent id="e"/>`);
    const insts = [];
    for (let i = 0; i < 4; i++) insts.push(await start(as.admin, 'burst_held'));
    const subs = (await Promise.all(insts.map((i) => subscriptions(db.root, i.id)))).map(([s]) => s);
    await db.root.query(`update bpm.event_subscription set due_at = now() - interval '1 second' where id = any($1::uuid[])`, [subs.map((s) => s.id)]);
    const holder = await db.root.connect();
    try {
      await holder.query('begin');
      await holder.query('select 1 from bpm.process_instance where id = $1 for update', [insts[2].id]);
      await as.engine.query(`set statement_timeout = '5s'`);
      const { rows: [fired] } = await as.engine.query<{ n: number }>('select bpm.fire_due_timers($1, 50) as n', [subs[0].id]);
      expect(fired.n).toBe(3);
      expect(await Promise.all(insts.map((i) => instanceState(db.root, i.id)))).toEqual(['completed', 'completed', 'active', 'completed']);
      expect(await job(db.root, `bpm-timer:${subs[2].id}`)).not.toBeNull();
    } finally {
      await holder.query('commit');
      holder.release();
      await as.engine.query('reset statement_timeout');
    }
    const { rows: [later] } = await as.engine.query<{ n: number }>('select bpm.fire_due_timers($1, 50) as n', [subs[2].id]);
    expect(later.n).toBe(1);
    expect(await instanceState(db.root, insts[2].id)).toBe('completed');
    expect(await history(db.root, insts[2].id)).toEqual(['s:completed', 'wait:completed', 'e:completed']);
  });

  test('a timer of the batch whose continuation fails becomes an incident of its own; the others of the batch fire', async () => {
    await deployDefs(as.admin, 'burst_fragile', '', `
      <startEvent id="s"/><sequenceFlow id="f1" sourceRef="s" targetRef="wait"/>
      <intermediateCatchEvent id="wait"><timerEventDefinition><timeDuration>PT1H</timeDuration></timerEventDefinition></intermediateCatchEvent>
      <sequenceFlow id="f2" sourceRef="wait" targetRef="gw"/><exclusiveGateway id="gw"/>
      <sequenceFlow id="f3" sourceRef="gw" targetRef="e"><conditionExpression>\${ready == true}</conditionExpression></sequenceFlow><endEvent id="e"/>`);
    // the job's own timer, then six others: the fourth cannot continue
    const insts = [];
    for (let i = 0; i < 7; i++) insts.push(await start(as.admin, 'burst_fragile', { ready: i !== 4 }));
    const subs = (await Promise.all(insts.map((i) => subscriptions(db.root, i.id)))).map(([s]) => s);
    await db.root.query(`update bpm.event_subscription set due_at = now() - interval '1 second' where id = any($1::uuid[])`, [subs.map((s) => s.id)]);
    // (the failing one counts: it fired, into an incident)
    const { rows: [fired] } = await as.engine.query<{ n: number }>('select bpm.fire_due_timers($1, 50) as n', [subs[0].id]);
    expect(fired.n).toBe(7);
    const states = await Promise.all(insts.map((i) => instanceState(db.root, i.id)));
    expect(states).toEqual(['completed', 'completed', 'completed', 'completed', 'active', 'completed', 'completed']);
    // the failing one: an incident on its timer, which keeps its subscription and its job, and nothing of its continuation
    const [incident] = await incidents(db.root, insts[4].id);
    expect(incident).toMatchObject({ incident_type: 'failedJob', element_id: 'wait', resolved_at: null });
    expect((await subscriptions(db.root, insts[4].id))[0]).toMatchObject({ id: subs[4].id, incident_id: incident.id });
    expect(await job(db.root, `bpm-timer:${subs[4].id}`)).not.toBeNull();
    expect(await history(db.root, insts[4].id)).toEqual(['s:completed', 'wait:active']);
    // the others fired once each, their jobs gone (the own job is graphile-worker's to delete)
    for (const k of [1, 2, 3, 5, 6]) {
      expect(await history(db.root, insts[k].id)).toEqual(['s:completed', 'wait:completed', 'gw:completed', 'e:completed']);
      expect(await job(db.root, `bpm-timer:${subs[k].id}`)).toBeNull();
    }
  });
});

describe('timer start events and failing continuations', () => {
  // a timer, then a gateway that cannot continue while ready is false
  const FRAGILE = `
    <startEvent id="start"/>
    <sequenceFlow id="f1" sourceRef="start" targetRef="pause"/>
    <intermediateCatchEvent id="pause"><timerEventDefinition><timeDuration>PT5M</timeDuration></timerEventDefinition></intermediateCatchEvent>
    <sequenceFlow id="f2" sourceRef="pause" targetRef="gw"/>
    <exclusiveGateway id="gw"/>
    <sequenceFlow id="f3" sourceRef="gw" targetRef="end"><conditionExpression>\${ready == true}</conditionExpression></sequenceFlow>
    <endEvent id="end"/>`;

  test('a timer start event is scheduled at deploy; a redeploy replaces it; firing starts an instance', async () => {
    const body = (id: string, date: string) => `
    <startEvent id="${id}"><timerEventDefinition><timeDate>${date}</timeDate></timerEventDefinition></startEvent>
    <sequenceFlow id="f1" sourceRef="${id}" targetRef="end"/>
    <endEvent id="end"/>`;
    await deployDefs(as.admin, 'nightly', '', body('at1', '2031-01-01T02:00:00Z'));
    const [first] = (await subscriptions(db.root, null, T)).filter((s) => s.element_id === 'at1');
    expect(first.due_at?.toISOString()).toBe('2031-01-01T02:00:00.000Z');
    expect((await job(db.root, `bpm-timer:${first.id}`))?.run_at.toISOString()).toBe('2031-01-01T02:00:00.000Z');
    await deployDefs(as.admin, 'nightly', '', body('at2', '2032-01-01T02:00:00Z'));
    const subs = (await subscriptions(db.root, null, T)).filter((s) => s.element_id.startsWith('at'));
    expect(subs.map((s) => s.element_id)).toEqual(['at2']);
    expect(await job(db.root, `bpm-timer:${first.id}`)).toBeNull();
    const started = await fireTimer(db.root, as.engine, subs[0].id);
    expect(started).not.toBeNull();
    expect(await history(db.root, started?.id ?? '')).toEqual(['at2:completed', 'end:completed']);
    expect((await subscriptions(db.root, null, T)).filter((s) => s.element_id === 'at2')).toEqual([]);
  });

  test('a continuation that fails in the job becomes an incident failedJob; retry_incident fires it again', async () => {
    await deployDefs(as.admin, 'fragile', '', FRAGILE);
    const inst = await start(as.admin, 'fragile', { ready: false });
    const [pause] = await subscriptions(db.root, inst.id);
    expect(await fireTimer(db.root, as.engine, pause.id)).not.toBeNull();
    const [incident] = await incidents(db.root, inst.id);
    expect(incident).toMatchObject({ incident_type: 'failedJob', element_id: 'pause', resolved_at: null });
    expect(incident.message).toMatch(/no outgoing sequence flow of exclusiveGateway gw can be taken.*BP301/);
    expect((await subscriptions(db.root, inst.id))[0].incident_id).toBe(incident.id);
    // while the incident is open the job does nothing
    expect(await fireTimer(db.root, as.engine, pause.id)).toBeNull();
    await as.admin.query(`select bpm.set_variables($1, '{"ready": true}')`, [inst.id]);
    await as.admin.query('select bpm.retry_incident($1)', [incident.id]);
    expect((await job(db.root, `bpm-timer:${pause.id}`))?.task_identifier).toBe('bpm_fire_timer');
    await fireTimer(db.root, as.engine, pause.id);
    expect(await instanceState(db.root, inst.id)).toBe('completed');
  });

  test('a timer job that waited for its instance while another transaction failed that timer into an incident does nothing', async () => {
    await deployDefs(as.admin, 'fragile_race', '', FRAGILE);
    const inst = await start(as.admin, 'fragile_race', { ready: false });
    const [pause] = await subscriptions(db.root, inst.id);
    await db.root.query(`update bpm.event_subscription set due_at = now() - interval '1 second' where id = $1`, [pause.id]);
    // another transaction holds the instance (as a batch firing this timer alone would) …
    const holder = await db.root.connect();
    try {
      await holder.query('begin');
      await holder.query('select 1 from bpm.process_instance where id = $1 for update', [inst.id]);
      // … while the timer's own job reads the subscription (no incident yet) and waits for the lock
      const firing = as.engine.query<{ id: string | null }>('select (bpm.fire_timer($1)).id', [pause.id]);
      for (let i = 0; i < 100; i++) {
        const { rows: [w] } = await db.root.query<{ n: number }>(`select count(*)::int as n from pg_catalog.pg_locks where not granted and locktype = 'transactionid'`);
        if (w.n > 0) break;
        await new Promise((r) => setTimeout(r, 50));
      }
      // the holder's firing failed: an incident on the timer
      await holder.query(`select set_config('bpm.tenant_id', $1, true)`, [T]);
      await holder.query(
        `update bpm.event_subscription set incident_id = bpm_private.incident__raise($1, $2, 'pause', 'failedJob', 'failed in the holder') where id = $3`,
        [T, inst.id, pause.id]);
      await holder.query('commit');
      const { rows: [fired] } = await firing;
      expect(fired.id).toBeNull();
    } finally {
      await holder.query('rollback').catch(() => undefined);
      holder.release();
    }
    // one incident (the holder's), the timer not fired again
    expect(await incidents(db.root, inst.id)).toHaveLength(1);
    expect(await history(db.root, inst.id)).toEqual(['start:completed', 'pause:active']);
    expect(await instanceState(db.root, inst.id)).toBe('active');
  });
});

describe('asynchronous continuations', () => {
  beforeAll(async () => {
    await deployDefs(as.admin, 'async', '', `
    <startEvent id="start" camunda:asyncAfter="true"/>
    <sequenceFlow id="f1" sourceRef="start" targetRef="work"/>
    <task id="work" camunda:asyncBefore="true"><extensionElements><camunda:failedJobRetryTimeCycle>R2/PT1M</camunda:failedJobRetryTimeCycle></extensionElements></task>
    <sequenceFlow id="f2" sourceRef="work" targetRef="gw"/>
    <exclusiveGateway id="gw"/>
    <sequenceFlow id="f3" sourceRef="gw" targetRef="end"><conditionExpression>\${go == true}</conditionExpression></sequenceFlow>
    <endEvent id="end"/>`);
  });

  async function continueToken(instanceId: string, lastAttempt = true): Promise<string> {
    const { rows } = await db.root.query<{ id: string }>(
      `select id from bpm_private.token where instance_id = $1 and kind in ('asyncBefore', 'asyncAfter')`,
      [instanceId],
    );
    expect(rows).toHaveLength(1);
    const id = rows[0]?.id ?? '';
    await as.engine.query('select bpm.continue_async($1, $2)', [id, lastAttempt]);
    return id;
  }

  test('asyncAfter and asyncBefore wait for their jobs; each continuation runs once', async () => {
    const inst = await start(as.admin, 'async', { go: true });
    expect(inst.state).toBe('active');
    expect(await tokens(db.root, inst.id)).toEqual(['start:asyncAfter']);
    const afterToken = await continueToken(inst.id);
    expect(await job(db.root, `bpm-async:${afterToken}`)).not.toBeNull(); // jobs are deleted by graphile-worker, not by the engine
    expect(await tokens(db.root, inst.id)).toEqual(['work:asyncBefore']);
    const [beforeToken] = (await db.root.query<{ id: string }>(`select id from bpm_private.token where instance_id = $1`, [inst.id])).rows;
    expect((await job(db.root, `bpm-async:${beforeToken.id}`))?.task_identifier).toBe('bpm_continue');
    await continueToken(inst.id);
    expect(await instanceState(db.root, inst.id)).toBe('completed');
    // one history row for the task, though its token waited before executing it
    expect(await history(db.root, inst.id)).toEqual(['start:completed', 'work:completed', 'gw:completed', 'end:completed']);
    // the job running again does nothing
    expect((await one<{ id: string | null }>(as.engine, 'select (bpm.continue_async($1)).id', [beforeToken.id])).id).toBeNull();
  });

  test('a failing continuation raises so the job retries; on the last attempt it becomes an incident; retry_incident schedules it again', async () => {
    const inst = await start(as.admin, 'async', { go: false });
    await continueToken(inst.id);
    const [token] = (await db.root.query<{ id: string }>(`select id from bpm_private.token where instance_id = $1`, [inst.id])).rows;
    await expect(as.engine.query('select bpm.continue_async($1, false)', [token.id])).rejects.toMatchObject({ code: 'BP301' });
    expect(await incidents(db.root, inst.id)).toEqual([]);
    await as.engine.query('select bpm.continue_async($1, true)', [token.id]);
    const [incident] = await incidents(db.root, inst.id);
    expect(incident).toMatchObject({ incident_type: 'failedJob', element_id: 'work' });
    expect(await tokens(db.root, inst.id)).toEqual(['work:asyncBefore']);
    expect((await job(db.root, `bpm-async:${token.id}`))?.payload).toEqual({ tenant_id: T, token_id: token.id });
    await dropJob(db.root, `bpm-async:${token.id}`);
    await as.admin.query(`select bpm.set_variables($1, '{"go": true}')`, [inst.id]);
    await as.admin.query('select bpm.retry_incident($1)', [incident.id]);
    expect(await job(db.root, `bpm-async:${token.id}`)).not.toBeNull();
    await as.engine.query('select bpm.continue_async($1)', [token.id]);
    expect(await instanceState(db.root, inst.id)).toBe('completed');
  });
});

describe('task deadlines', () => {
  test('due and escalation jobs: overdue marking, escalation to more candidate groups, each once', async () => {
    await deployDefs(as.admin, 'deadline', '', `
    <startEvent id="start"/>
    <sequenceFlow id="f1" sourceRef="start" targetRef="review"/>
    <userTask id="review" camunda:candidateGroups="clerks" camunda:dueDate="PT1H" camunda:followUpDate="PT30M">
      <extensionElements><camunda:properties>
        <camunda:property name="pgbpm:escalateAfter" value="PT2H"/>
        <camunda:property name="pgbpm:escalateToGroups" value="managers"/>
      </camunda:properties></extensionElements>
    </userTask>
    <sequenceFlow id="f2" sourceRef="review" targetRef="end"/>
    <endEvent id="end"/>`);
    const inst = await start(as.admin, 'deadline');
    const task = await openUserTask(db.root, inst.id);
    const due = await job(db.root, `bpm-task-due:${task.id}`);
    expect(due?.run_at.getTime()).toBe(task.due_at?.getTime());
    expect(await job(db.root, `bpm-task-followUp:${task.id}`)).not.toBeNull();
    const esc = await job(db.root, `bpm-task-escalate:${task.id}`);
    expect((esc?.run_at.getTime() ?? 0) - (task.due_at?.getTime() ?? 0)).toBe(2 * 3600_000);
    // not due yet: nothing
    expect((await one<{ id: string | null }>(as.engine, `select (bpm.process_task_deadline($1, 'due')).id`, [task.id])).id).toBeNull();
    await db.root.query(`update bpm.user_task set due_at = now() - interval '3 hours', follow_up_at = now() - interval '1 hour' where id = $1`, [task.id]);
    for (const kind of ['due', 'due', 'followUp', 'escalate', 'escalate']) {
      await as.engine.query('select bpm.process_task_deadline($1, $2)', [task.id, kind]);
    }
    const after = await one<{ overdue_since: Date | null; escalated_at: Date | null; candidate_groups: string[] }>(
      db.root,
      'select overdue_since, escalated_at, candidate_groups from bpm.user_task where id = $1',
      [task.id],
    );
    expect(after.overdue_since).not.toBeNull();
    expect(after.escalated_at).not.toBeNull();
    expect(after.candidate_groups).toEqual(['clerks', 'managers']);
    const kinds = (await db.root.query<{ kind: string }>(`select kind from bpm.event where subject_id = $1 order by id`, [task.id])).rows.map((r) => r.kind);
    expect(kinds).toEqual(['activityStarted', 'taskCreated', 'taskOverdue', 'taskFollowUpDue', 'taskEscalated']);
    expect(await count(db.root, 'select 1 from bpm.user_task where id = $1', [task.id])).toBe(1);
  });
});

describe('job priorities (camunda:jobPriority)', () => {
  async function priorityOf(key: string): Promise<number | null> {
    const rows = await all<{ priority: number }>(db.root, 'select priority from graphile_worker._private_jobs where key = $1', [key]);
    return rows[0]?.priority ?? null;
  }

  test('an asynchronous continuation and a timer get the priority of their element, else of their process (higher first: graphile-worker runs lower numbers first)', async () => {
    await deployDefs(as.admin, 'prio', '', `
    <startEvent id="start"/>
    <sequenceFlow id="f1" sourceRef="start" targetRef="urgent"/>
    <task id="urgent" camunda:asyncBefore="true" camunda:jobPriority="50"/>
    <sequenceFlow id="f2" sourceRef="urgent" targetRef="wait"/>
    <intermediateCatchEvent id="wait"><timerEventDefinition><timeDuration>PT1H</timeDuration></timerEventDefinition></intermediateCatchEvent>
    <sequenceFlow id="f3" sourceRef="wait" targetRef="end"/><endEvent id="end"/>`);
    const inst = await start(as.admin, 'prio');
    const [token] = await all<{ id: string }>(db.root, `select id from bpm_private.token where instance_id = $1`, [inst.id]);
    expect(await priorityOf(`bpm-async:${token.id}`)).toBe(-50);
    await as.engine.query('select bpm.continue_async($1)', [token.id]);
    const [timer] = await subscriptions(db.root, inst.id);
    expect(timer).toMatchObject({ kind: 'timer', job_priority: 0 });
    expect(await priorityOf(`bpm-timer:${timer.id}`)).toBe(0);
  });

  test('the process default applies to timers without their own; re-arming keeps it', async () => {
    await deployXml(as.admin, [{ name: 'prio_proc.bpmn', xml: bpmnDefs('prio_proc', '', `
    <startEvent id="start"/>
    <sequenceFlow id="f1" sourceRef="start" targetRef="review"/>
    <userTask id="review"/>
    <boundaryEvent id="remind" attachedToRef="review" cancelActivity="false"><timerEventDefinition><timeCycle>R3/PT1H</timeCycle></timerEventDefinition></boundaryEvent>
    <sequenceFlow id="f2" sourceRef="remind" targetRef="e2"/><endEvent id="e2"/>`).replace('<process id="prio_proc"', '<process id="prio_proc" camunda:jobPriority="7"') }]);
    const inst = await start(as.admin, 'prio_proc');
    const [timer] = await subscriptions(db.root, inst.id);
    expect(timer.job_priority).toBe(7);
    expect(await priorityOf(`bpm-timer:${timer.id}`)).toBe(-7);
    await db.root.query(`update bpm.event_subscription set due_at = now() where id = $1`, [timer.id]);
    await fireTimer(db.root, as.engine, timer.id);
    expect(await priorityOf(`bpm-timer:${timer.id}`)).toBe(-7);
  });

  test('an expression is evaluated over the variables when the job is created; one that cannot be evaluated is BP303 and nothing is kept', async () => {
    await deployDefs(as.admin, 'prio_expr', '', `
    <startEvent id="start"/>
    <sequenceFlow id="f1" sourceRef="start" targetRef="work"/>
    <task id="work" camunda:asyncBefore="true" camunda:jobPriority="\${level * 10}"/>
    <sequenceFlow id="f2" sourceRef="work" targetRef="wait"/>
    <intermediateCatchEvent id="wait" camunda:jobPriority="=if vip then 90 else 10"><timerEventDefinition><timeDuration>PT1H</timeDuration></timerEventDefinition></intermediateCatchEvent>
    <sequenceFlow id="f3" sourceRef="wait" targetRef="end"/><endEvent id="end"/>`);
    const inst = await start(as.admin, 'prio_expr', { level: 3, vip: true });
    const [token] = await all<{ id: string }>(db.root, `select id from bpm_private.token where instance_id = $1`, [inst.id]);
    expect(await priorityOf(`bpm-async:${token.id}`)).toBe(-30);
    await as.engine.query('select bpm.continue_async($1)', [token.id]);
    const [timer] = await subscriptions(db.root, inst.id);
    expect(timer.job_priority).toBe(90);
    expect(await priorityOf(`bpm-timer:${timer.id}`)).toBe(-90);
    await expectRejectedUnchanged(db.root, () => start(as.admin, 'prio_expr', { level: 'high', vip: false }), 'BP303', /expression \$\{level \* 10\} of element work cannot be evaluated: left operand of jsonpath operator \* is not a single numeric value/);
  });
});
