/**
 * None start and none end events, pass-through activities (task, manualTask)
 * and implicit ends (an activity without outgoing flow ends its token).
 */
import { createTestDb, type TestDb } from '../../helpers/db';
import { deployProcess } from '../../helpers/engine';
import { actors, completeTask, getInstance, history, openTask, startProcess, waits, userTasks, type Actors } from './support';

let db: TestDb;
let as: Actors;

beforeAll(async () => {
  db = await createTestDb();
  as = await actors(db);
  await deployProcess(as.admin, 'none_to_none', `
    <startEvent id="start"/>
    <sequenceFlow id="f1" sourceRef="start" targetRef="end"/>
    <endEvent id="end"/>`);
  await deployProcess(as.admin, 'pass_through', `
    <startEvent id="start"/>
    <sequenceFlow id="f1" sourceRef="start" targetRef="manual"/>
    <manualTask id="manual" name="Do it by hand"/>
    <sequenceFlow id="f2" sourceRef="manual" targetRef="plain"/>
    <task id="plain" name="Undefined task"/>
    <sequenceFlow id="f3" sourceRef="plain" targetRef="end"/>
    <endEvent id="end"/>`);
  await deployProcess(as.admin, 'implicit_end', `
    <startEvent id="start"/>
    <sequenceFlow id="f1" sourceRef="start" targetRef="deadEnd"/>
    <manualTask id="deadEnd"/>`);
  await deployProcess(as.admin, 'implicit_end_branch', `
    <startEvent id="start"/>
    <sequenceFlow id="f1" sourceRef="start" targetRef="fork"/>
    <parallelGateway id="fork"/>
    <sequenceFlow id="f2" sourceRef="fork" targetRef="deadEnd"/>
    <sequenceFlow id="f3" sourceRef="fork" targetRef="wait"/>
    <task id="deadEnd"/>
    <userTask id="wait"/>`);
});

afterAll(() => db.close());

test('a none start followed by a none end completes within start_process', async () => {
  const started = await startProcess(as.alice, 'none_to_none', { order: 7 });
  expect(started).toMatchObject({ state: 'completed', variables: { order: 7 }, started_by: 'alice', end_reason: null });
  expect(started.started_at).toBeInstanceOf(Date);
  expect(started.ended_at).toBeInstanceOf(Date);
  expect((started.ended_at as Date).getTime()).toBeGreaterThanOrEqual(started.started_at.getTime());

  // the row is inserted completed: it never was active
  const stored = await getInstance(as.admin, started.id);
  expect(stored).toEqual(started);
  expect(await history(as.admin, started.id)).toEqual(['start startEvent completed', 'end endEvent completed']);
  expect(await waits(db.root, started.id)).toEqual([]);
  expect(await userTasks(as.admin, started.id)).toEqual([]);
});

test('every history row of a finished run is ended, stamped and ordered by seq', async () => {
  const started = await startProcess(as.admin, 'none_to_none');
  const { rows } = await as.admin.query<{ element_id: string; ended_at: Date | null; started_at: Date; seq: string }>(
    'select element_id, started_at, ended_at, seq from bpm.activity_instance where instance_id = $1 order by seq',
    [started.id],
  );
  expect(rows.map((r) => r.element_id)).toEqual(['start', 'end']);
  for (const r of rows) {
    expect(r.ended_at).toBeInstanceOf(Date);
    expect((r.ended_at as Date).getTime()).toBeGreaterThanOrEqual(r.started_at.getTime());
  }
  expect(BigInt(rows[1].seq)).toBeGreaterThan(BigInt(rows[0].seq));
});

test('a manual task and an undefined task pass the token straight through', async () => {
  const started = await startProcess(as.admin, 'pass_through');
  expect(started.state).toBe('completed');
  expect(await history(as.admin, started.id)).toEqual([
    'start startEvent completed',
    'manual manualTask completed',
    'plain task completed',
    'end endEvent completed',
  ]);
  expect(await userTasks(as.admin, started.id)).toEqual([]);
  expect(await waits(db.root, started.id)).toEqual([]);
});

test('an activity without outgoing flow ends its token and, being the last, completes the instance', async () => {
  const started = await startProcess(as.admin, 'implicit_end');
  expect(started.state).toBe('completed');
  expect(started.ended_at).not.toBeNull();
  expect(await history(as.admin, started.id)).toEqual(['start startEvent completed', 'deadEnd manualTask completed']);
});

test('a branch ending at an activity without outgoing flow does not end the instance while another token waits', async () => {
  const started = await startProcess(as.admin, 'implicit_end_branch');
  expect(started.state).toBe('active');
  expect(started.ended_at).toBeNull();
  expect(await history(as.admin, started.id)).toEqual([
    'start startEvent completed',
    'fork parallelGateway completed',
    'deadEnd task completed',
    'wait userTask active',
  ]);
  expect(await waits(db.root, started.id)).toEqual(['wait userTask']);

  // the user task has no outgoing flow either: completing it ends the last token
  const wait = await openTask(as.admin, started.id, 'wait');
  const done = await completeTask(as.admin, wait.id);
  expect(done).toMatchObject({ state: 'completed', completed_by: 'admin' });
  const after = await getInstance(as.admin, started.id);
  expect(after.state).toBe('completed');
  expect(after.ended_at).not.toBeNull();
  expect(await history(as.admin, started.id)).toEqual([
    'start startEvent completed',
    'fork parallelGateway completed',
    'deadEnd task completed',
    'wait userTask completed',
  ]);
  expect(await waits(db.root, started.id)).toEqual([]);
});
