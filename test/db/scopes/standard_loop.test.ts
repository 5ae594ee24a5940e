/**
 * Standard loops (bpmn:standardLoopCharacteristics) through the public
 * functions: the activity runs again while its loop condition holds (after
 * each iteration; with testBefore also before the first), at most
 * loopMaximum times; each iteration sees loopCounter.
 */
import { createTestDb, type TestDb } from '../../helpers/db';
import { deployProcess, expectRejectedUnchanged } from '../../helpers/engine';
import { actors, completeTask, getInstance, openTask, startProcess, userTasks, type Actors } from '../elements/support';

let db: TestDb;
let as: Actors;

const loopOf = (activity: string, loop: string) => `
  <startEvent id="s"/><sequenceFlow id="f1" sourceRef="s" targetRef="a"/>
  ${activity.replace('LOOP', `<standardLoopCharacteristics${loop}</standardLoopCharacteristics>`)}
  <sequenceFlow id="f2" sourceRef="a" targetRef="after"/><userTask id="after"/>`;

beforeAll(async () => {
  db = await createTestDb();
  as = await actors(db);
});

afterAll(async () => {
  await db?.close();
});

async function loopRows(instanceId: string): Promise<string[]> {
  const { rows } = await as.admin.query(`select element_type, state from bpm.activity_instance where instance_id = $1 and element_id = 'a' order by seq`, [instanceId]);
  return rows.map((r) => `${r.element_type} ${r.state}`);
}

test('a user task runs again while the loop condition holds over the variables its completion set (test after)', async () => {
  await deployProcess(as.admin, 'loop_retry', loopOf('<userTask id="a" camunda:assignee="try-${loopCounter}">LOOP</userTask>',
    '><loopCondition xsi:type="tFormalExpression">${!approved}</loopCondition>'));
  const instance = await startProcess(as.admin, 'loop_retry', { approved: true });
  // tested after: the first iteration runs although the condition is false already
  await completeTask(as.admin, (await openTask(as.admin, instance.id, 'a')).id, { approved: false });
  expect((await openTask(as.admin, instance.id, 'a')).assignee).toBe('try-1');
  await completeTask(as.admin, (await openTask(as.admin, instance.id, 'a')).id, { approved: true });
  expect((await userTasks(as.admin, instance.id)).map((t) => `${t.element_id} ${t.assignee} ${t.state}`)).toEqual([
    'a try-0 completed', 'a try-1 completed', 'after null open',
  ]);
  expect(await loopRows(instance.id)).toEqual(['loopBody completed', 'userTask completed', 'userTask completed']);
  // the loop variables were the iterations' own
  expect((await getInstance(as.admin, instance.id)).variables).toEqual({ approved: true });
  const task = (await userTasks(as.admin, instance.id))[1];
  expect(task.local_variables).toEqual({ loopCounter: 1 });
});

test('testBefore: a condition false on entry skips the activity; loopMaximum bounds the iterations', async () => {
  await deployProcess(as.admin, 'loop_before', loopOf('<userTask id="a">LOOP</userTask>',
    ' testBefore="true" loopMaximum="2"><loopCondition xsi:type="tFormalExpression">=more</loopCondition>'));
  const skipped = await startProcess(as.admin, 'loop_before', { more: false });
  expect((await userTasks(as.admin, skipped.id)).map((t) => t.element_id)).toEqual(['after']);
  const bounded = await startProcess(as.admin, 'loop_before', { more: true });
  await completeTask(as.admin, (await openTask(as.admin, bounded.id, 'a')).id);
  await completeTask(as.admin, (await openTask(as.admin, bounded.id, 'a')).id);
  expect((await userTasks(as.admin, bounded.id)).filter((t) => t.state === 'open').map((t) => t.element_id)).toEqual(['after']);
  expect(await loopRows(bounded.id)).toEqual(['loopBody completed', 'userTask completed', 'userTask completed']);
});

test('an automatic activity loops within the call; loopMaximum alone repeats it that many times', async () => {
  await deployProcess(as.admin, 'loop_auto', loopOf('<scriptTask id="a" scriptFormat="feel" camunda:resultVariable="last"><script>=loopCounter * 10</script>LOOP</scriptTask>',
    '><loopCondition xsi:type="tFormalExpression">${loopCounter &lt; 4}</loopCondition>'));
  const instance = await startProcess(as.admin, 'loop_auto');
  expect(await loopRows(instance.id)).toEqual(['loopBody completed', ...Array(5).fill('scriptTask completed')]);
  expect((await getInstance(as.admin, instance.id)).variables).toEqual({ last: 40 });
  await deployProcess(as.admin, 'loop_max', loopOf('<manualTask id="a">LOOP</manualTask>', ' loopMaximum="3">'));
  expect(await loopRows((await startProcess(as.admin, 'loop_max')).id)).toEqual(['loopBody completed', ...Array(3).fill('manualTask completed')]);
});

test('a loop condition that cannot be evaluated rolls the call back', async () => {
  await deployProcess(as.admin, 'loop_bad', loopOf('<manualTask id="a">LOOP</manualTask>',
    '><loopCondition xsi:type="tFormalExpression">${missing > 1}</loopCondition>'));
  await expectRejectedUnchanged(db.root, () => startProcess(as.admin, 'loop_bad'), 'BP302', /missing/);
});
