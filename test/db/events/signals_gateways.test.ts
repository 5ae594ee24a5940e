/**
 * Signals, event-based gateways, error and escalation events (issue 4).
 */
import { createTestDb, type TestDb } from '../../helpers/db';
import { expectRejectedUnchanged } from '../../helpers/engine';
import {
  actors,
  count,
  deployDefs,
  fireTimer,
  history,
  incidents,
  instanceState,
  one,
  openUserTask,
  start,
  subscriptions,
  tokens,
  type Actors,
} from './support';

const T = 'sig-t';
const OTHER = 'sig-other';

let db: TestDb;
let as: Actors;
let other: Actors;

const SIGNALS = `<signal id="s_alarm" name="Alarm"/><signal id="s_done" name="Done"/><message id="m_pay" name="Pay"/>`;

beforeAll(async () => {
  db = await createTestDb();
  as = await actors(db, T);
  other = await actors(db, OTHER);
  for (const a of [as, other]) {
    await deployDefs(a.admin, 'waiter', SIGNALS, `
    <startEvent id="start"/>
    <sequenceFlow id="f1" sourceRef="start" targetRef="wait"/>
    <intermediateCatchEvent id="wait"><signalEventDefinition signalRef="s_alarm"/></intermediateCatchEvent>
    <sequenceFlow id="f2" sourceRef="wait" targetRef="end"/>
    <endEvent id="end"/>`);
  }
  await deployDefs(as.admin, 'guarded', SIGNALS, `
    <startEvent id="start"/>
    <sequenceFlow id="f1" sourceRef="start" targetRef="work"/>
    <userTask id="work"/>
    <boundaryEvent id="alarm" attachedToRef="work"><signalEventDefinition signalRef="s_alarm"/></boundaryEvent>
    <sequenceFlow id="f2" sourceRef="work" targetRef="end"/>
    <endEvent id="end"/>
    <sequenceFlow id="f3" sourceRef="alarm" targetRef="evacuated"/>
    <endEvent id="evacuated"/>`);
  await deployDefs(as.admin, 'on-alarm', SIGNALS, `
    <startEvent id="byAlarm"><signalEventDefinition signalRef="s_alarm"/></startEvent>
    <sequenceFlow id="f1" sourceRef="byAlarm" targetRef="react"/>
    <userTask id="react"/>
    <sequenceFlow id="f2" sourceRef="react" targetRef="end"/>
    <endEvent id="end"/>`);
  await deployDefs(as.admin, 'raiser', SIGNALS, `
    <startEvent id="start"/>
    <sequenceFlow id="f1" sourceRef="start" targetRef="raise"/>
    <endEvent id="raise"><signalEventDefinition signalRef="s_done"/></endEvent>`);
  await deployDefs(as.admin, 'done-waiter', SIGNALS, `
    <startEvent id="start"/>
    <sequenceFlow id="f1" sourceRef="start" targetRef="wait"/>
    <intermediateCatchEvent id="wait"><signalEventDefinition signalRef="s_done"/></intermediateCatchEvent>
    <sequenceFlow id="f2" sourceRef="wait" targetRef="end"/>
    <endEvent id="end"/>`);
  await deployDefs(as.admin, 'race', SIGNALS, `
    <startEvent id="start"/>
    <sequenceFlow id="f1" sourceRef="start" targetRef="gw"/>
    <eventBasedGateway id="gw"/>
    <sequenceFlow id="f2" sourceRef="gw" targetRef="paid"/>
    <sequenceFlow id="f3" sourceRef="gw" targetRef="timeout"/>
    <sequenceFlow id="f4" sourceRef="gw" targetRef="alarmed"/>
    <intermediateCatchEvent id="paid"><messageEventDefinition messageRef="m_pay"/></intermediateCatchEvent>
    <intermediateCatchEvent id="timeout"><timerEventDefinition><timeDuration>PT1H</timeDuration></timerEventDefinition></intermediateCatchEvent>
    <intermediateCatchEvent id="alarmed"><signalEventDefinition signalRef="s_alarm"/></intermediateCatchEvent>
    <sequenceFlow id="f5" sourceRef="paid" targetRef="endPaid"/>
    <sequenceFlow id="f6" sourceRef="timeout" targetRef="endTimeout"/>
    <sequenceFlow id="f7" sourceRef="alarmed" targetRef="endAlarm"/>
    <endEvent id="endPaid"/><endEvent id="endTimeout"/><endEvent id="endAlarm"/>`);
  await deployDefs(as.admin, 'failing', `<error id="e_bad" errorCode="BAD"/><escalation id="x_late" escalationCode="LATE"/>`, `
    <startEvent id="start"/>
    <sequenceFlow id="f1" sourceRef="start" targetRef="late"/>
    <intermediateThrowEvent id="late"><escalationEventDefinition escalationRef="x_late"/></intermediateThrowEvent>
    <sequenceFlow id="f2" sourceRef="late" targetRef="check"/>
    <exclusiveGateway id="check" default="f4"/>
    <sequenceFlow id="f3" sourceRef="check" targetRef="bad"><conditionExpression>\${fail}</conditionExpression></sequenceFlow>
    <sequenceFlow id="f4" sourceRef="check" targetRef="ok"/>
    <endEvent id="bad"><errorEventDefinition errorRef="e_bad"/></endEvent>
    <endEvent id="ok"/>`);
});
afterAll(() => db.close());

async function broadcast(client = as.admin, name: string, variables: object = {}): Promise<number> {
  return (await one<{ n: number }>(client, 'select bpm.broadcast_signal($1, $2::jsonb) as n', [name, JSON.stringify(variables)])).n;
}

describe('signals', () => {
  test('a broadcast triggers every catch event and boundary of the tenant and starts the processes with that signal start', async () => {
    const w1 = await start(as.admin, 'waiter');
    const w2 = await start(as.admin, 'waiter');
    const g = await start(as.admin, 'guarded');
    const suspended = await start(as.admin, 'waiter');
    await as.admin.query('select bpm.suspend_process_instance($1)', [suspended.id]);
    const foreign = await start(other.admin, 'waiter');
    const startedBefore = await count(db.root, `select 1 from bpm.process_instance i join bpm.process_definition d on d.id = i.definition_id where d.key = 'on-alarm'`);
    // 2 waiters + 1 boundary + 1 start; the suspended waiter is skipped; the other tenant is not reached
    expect(await broadcast(as.user, 'Alarm', { level: 3 })).toBe(4);
    for (const id of [w1.id, w2.id]) expect(await instanceState(db.root, id)).toBe('completed');
    expect(await history(db.root, g.id)).toEqual(['start:completed', 'work:cancelled', 'alarm:completed', 'evacuated:completed']);
    expect(await instanceState(db.root, suspended.id)).toBe('suspended');
    expect(await instanceState(db.root, foreign.id)).toBe('active');
    expect(await count(db.root, `select 1 from bpm.process_instance i join bpm.process_definition d on d.id = i.definition_id where d.key = 'on-alarm'`)).toBe(startedBefore + 1);
    expect((await one<{ variables: unknown }>(db.root, 'select variables from bpm.process_instance where id = $1', [w1.id])).variables).toEqual({ level: 3 });
    // tenant B's own broadcast reaches its own waiter only
    expect(await broadcast(other.engine, 'Alarm')).toBe(1);
    expect(await instanceState(db.root, foreign.id)).toBe('completed');
  });

  test('a signal end event broadcasts within the same transaction', async () => {
    const w = await start(as.admin, 'done-waiter');
    const r = await start(as.admin, 'raiser');
    expect(r.state).toBe('completed');
    expect(await instanceState(db.root, w.id)).toBe('completed');
  });

  test('a broadcast nobody waits for returns 0; an empty name is BP401', async () => {
    expect(await broadcast(as.admin, 'Nobody')).toBe(0);
    await expectRejectedUnchanged(db.root, () => broadcast(as.admin, ''), 'BP401');
  });
});

describe('event-based gateway', () => {
  test('waits for all three events; the message wins and removes the timer and the signal subscription', async () => {
    const inst = await start(as.admin, 'race', {}, 'race-1');
    const subs = await subscriptions(db.root, inst.id);
    expect(subs.map((s) => [s.element_id, s.kind])).toEqual([['alarmed', 'signal'], ['paid', 'message'], ['timeout', 'timer']]);
    const timer = subs.find((s) => s.kind === 'timer');
    expect(await count(db.root, 'select 1 from graphile_worker.jobs where key = $1', [`bpm-timer:${timer?.id}`])).toBe(1);
    await as.admin.query(`select bpm.correlate_message('Pay', 'race-1')`);
    expect(await history(db.root, inst.id)).toEqual(['start:completed', 'gw:completed', 'paid:completed', 'endPaid:completed']);
    expect(await subscriptions(db.root, inst.id)).toEqual([]);
    expect(await count(db.root, 'select 1 from graphile_worker.jobs where key = $1', [`bpm-timer:${timer?.id}`])).toBe(0);
    // the timer's job, had it run anyway, does nothing
    expect(await fireTimer(db.root, as.engine, timer?.id ?? '')).toBeNull();
  });

  test('the timer wins', async () => {
    const inst = await start(as.admin, 'race', {}, 'race-2');
    const timer = (await subscriptions(db.root, inst.id)).find((s) => s.kind === 'timer');
    await fireTimer(db.root, as.engine, timer?.id ?? '');
    expect(await history(db.root, inst.id)).toEqual(['start:completed', 'gw:completed', 'timeout:completed', 'endTimeout:completed']);
    await expectRejectedUnchanged(db.root, () => as.admin.query(`select bpm.correlate_message('Pay', 'race-2')`), 'BP106');
  });

  test('a message and a signal at the same moment: exactly one path is taken, 30 times', async () => {
    const a = await db.connectAs({ role: 'bpm_admin', tenant: T, user: 'a' });
    const b = await db.connectAs({ role: 'bpm_admin', tenant: T, user: 'b' });
    try {
      for (let i = 0; i < 30; i++) {
        const inst = await start(as.admin, 'race', {}, `race-c-${i}`);
        await Promise.allSettled([
          a.query(`select bpm.correlate_message('Pay', $1)`, [`race-c-${i}`]),
          b.query(`select bpm.broadcast_signal('Alarm')`),
        ]);
        const ends = (await history(db.root, inst.id)).filter((h) => h.startsWith('end'));
        expect(ends).toHaveLength(1);
        expect(await instanceState(db.root, inst.id)).toBe('completed');
        expect(await subscriptions(db.root, inst.id)).toEqual([]);
      }
    } finally {
      await a.end();
      await b.end();
    }
  });
});

describe('error and escalation events', () => {
  test('an escalation nobody catches passes; an error end event nobody catches raises an incident and the token waits', async () => {
    const ok = await start(as.admin, 'failing', { fail: false });
    expect(ok.state).toBe('completed');
    expect(await history(db.root, ok.id)).toEqual(['start:completed', 'late:completed', 'check:completed', 'ok:completed']);
    const bad = await start(as.admin, 'failing', { fail: true });
    expect(bad.state).toBe('active');
    expect(await tokens(db.root, bad.id)).toEqual(['bad:incident']);
    const [incident] = await incidents(db.root, bad.id);
    expect(incident).toMatchObject({ incident_type: 'unhandledBpmnError', element_id: 'bad', resolved_at: null });
    expect(incident.message).toMatch(/BPMN error BAD thrown by end event bad is not caught/);
    // retry enters the end event again: still nobody catches it, a new incident
    await as.admin.query('select bpm.retry_incident($1)', [incident.id]);
    const after = await incidents(db.root, bad.id);
    expect(after.map((i) => i.resolved_at === null)).toEqual([false, true]);
    expect(await tokens(db.root, bad.id)).toEqual(['bad:incident']);
    // cancelling the instance resolves it and removes the token
    await as.admin.query('select bpm.cancel_process_instance($1)', [bad.id]);
    expect(await tokens(db.root, bad.id)).toEqual([]);
    expect((await incidents(db.root, bad.id)).every((i) => i.resolved_at !== null)).toBe(true);
  });
});

describe('user task boundaries with timers', () => {
  test('a user task with a timer boundary: completing the task removes the timer and its job', async () => {
    await deployDefs(as.admin, 'reminder', '', `
    <startEvent id="start"/>
    <sequenceFlow id="f1" sourceRef="start" targetRef="work"/>
    <userTask id="work"/>
    <boundaryEvent id="late" attachedToRef="work"><timerEventDefinition><timeDuration>PT10M</timeDuration></timerEventDefinition></boundaryEvent>
    <sequenceFlow id="f2" sourceRef="work" targetRef="end"/>
    <endEvent id="end"/>
    <sequenceFlow id="f3" sourceRef="late" targetRef="tooLate"/>
    <endEvent id="tooLate"/>`);
    const inst = await start(as.admin, 'reminder');
    const [timer] = await subscriptions(db.root, inst.id);
    const due = timer.due_at?.getTime() ?? 0;
    expect(Math.abs(due - Date.now() - 10 * 60_000)).toBeLessThan(60_000);
    const job = await one<{ run_at: Date }>(db.root, 'select run_at from graphile_worker.jobs where key = $1', [`bpm-timer:${timer.id}`]);
    expect(job.run_at.getTime()).toBe(due);
    // not due yet: the job does nothing
    expect((await one<{ id: string | null }>(as.engine, 'select (bpm.fire_timer($1)).id', [timer.id])).id).toBeNull();
    const task = await openUserTask(db.root, inst.id);
    await as.admin.query('select bpm.complete_task($1)', [task.id]);
    expect(await subscriptions(db.root, inst.id)).toEqual([]);
    expect(await count(db.root, 'select 1 from graphile_worker.jobs where key = $1', [`bpm-timer:${timer.id}`])).toBe(0);
    expect(await fireTimer(db.root, as.engine, timer.id)).toBeNull();
    expect(await history(db.root, inst.id)).toEqual(['start:completed', 'work:completed', 'end:completed']);
  });
});
