/**
 * Compensation and transactions (issue 5) through the public functions:
 * handlers run in reverse order of completion, one at a time, exactly once;
 * a cancel end event compensates the transaction, then takes its cancel
 * boundary event.
 */
import { createTestDb, type TestDb } from '../../helpers/db';
import { deployFixture, deployProcess } from '../../helpers/engine';
import { deployDefs } from '../events/support';
import { actors, completeTask, getInstance, openTask, startProcess, userTasks, type Actors } from '../elements/support';

let db: TestDb;
let as: Actors;

beforeAll(async () => {
  db = await createTestDb();
  as = await actors(db);
  await deployFixture(as.admin, 'scopes/compensation.bpmn', 'scopes/transaction.bpmn');
});

afterAll(async () => {
  await db?.close();
});

async function activityStates(instanceId: string, elements: string[]): Promise<Record<string, string[]>> {
  const { rows } = await as.admin.query<{ element_id: string; state: string }>(
    'select element_id, state from bpm.activity_instance where instance_id = $1 and element_id = any($2) order by seq', [instanceId, elements]);
  const out: Record<string, string[]> = {};
  for (const r of rows) (out[r.element_id] ??= []).push(r.state);
  return out;
}

/** Completes the open tasks one at a time until `after` opens; what ran: element ids (element:assignee for assigned tasks). */
async function runHandlers(instanceId: string): Promise<string[]> {
  const ran: string[] = [];
  for (;;) {
    const open = (await userTasks(as.admin, instanceId)).filter((t) => t.state === 'open');
    expect(open.length).toBeLessThanOrEqual(1); // one handler at a time
    if (open.length === 0 || open[0].element_id === 'after') return ran;
    ran.push(open[0].assignee === null ? open[0].element_id : `${open[0].element_id}:${open[0].assignee}`);
    await completeTask(as.admin, open[0].id);
  }
}

/** After `book`: charge (handler refund) → a compensation throw (throwRef: its attributes) → after. */
const chargeThenUndo = (throwRef: string) => `
    <sequenceFlow id="f2" sourceRef="book" targetRef="charge"/>
    <task id="charge"/>
    <boundaryEvent id="chargeComp" attachedToRef="charge"><compensateEventDefinition/></boundaryEvent>
    <userTask id="refund" isForCompensation="true"/>
    <association id="a3" sourceRef="chargeComp" targetRef="refund" associationDirection="One"/>
    <sequenceFlow id="f3" sourceRef="charge" targetRef="undo"/>
    <intermediateThrowEvent id="undo"><compensateEventDefinition${throwRef}/></intermediateThrowEvent>
    <sequenceFlow id="f4" sourceRef="undo" targetRef="after"/>
    <userTask id="after"/><sequenceFlow id="f5" sourceRef="after" targetRef="e"/><endEvent id="e"/>`;

test('a compensation throw runs the handlers of the completed activities in reverse completion order, one at a time', async () => {
  const instance = await startProcess(as.admin, 'scopes-compensation');
  await completeTask(as.admin, (await openTask(as.admin, instance.id, 'Decide')).id, { ok: false });
  // the flight was booked last: its handler runs first, alone
  let open = (await userTasks(as.admin, instance.id)).filter((t) => t.state === 'open');
  expect(open.map((t) => t.element_id)).toEqual(['CancelFlight']);
  await completeTask(as.admin, open[0].id);
  open = (await userTasks(as.admin, instance.id)).filter((t) => t.state === 'open');
  expect(open.map((t) => t.element_id)).toEqual(['CancelHotel']);
  await completeTask(as.admin, open[0].id);
  expect((await getInstance(as.admin, instance.id)).state).toBe('completed');
  expect(await activityStates(instance.id, ['BookHotel', 'BookFlight', 'UndoBookings', 'CancelHotel', 'CancelFlight'])).toEqual({
    BookHotel: ['compensated'], BookFlight: ['compensated'], UndoBookings: ['completed'], CancelFlight: ['completed'], CancelHotel: ['completed'],
  });
});

test('no compensation when the path does not throw; an activity is compensated exactly once', async () => {
  const ok = await startProcess(as.admin, 'scopes-compensation');
  await completeTask(as.admin, (await openTask(as.admin, ok.id, 'Decide')).id, { ok: true });
  expect((await getInstance(as.admin, ok.id)).state).toBe('completed');
  expect(await activityStates(ok.id, ['BookHotel', 'BookFlight'])).toEqual({ BookHotel: ['completed'], BookFlight: ['completed'] });

  await deployProcess(as.admin, 'scopes_comp_twice', `
    <startEvent id="s"/><sequenceFlow id="f1" sourceRef="s" targetRef="pay"/>
    <task id="pay"/>
    <boundaryEvent id="payComp" attachedToRef="pay"><compensateEventDefinition/></boundaryEvent>
    <userTask id="refund" isForCompensation="true"/>
    <association id="a1" sourceRef="payComp" targetRef="refund" associationDirection="One"/>
    <sequenceFlow id="f2" sourceRef="pay" targetRef="undo1"/>
    <intermediateThrowEvent id="undo1"><compensateEventDefinition/></intermediateThrowEvent>
    <sequenceFlow id="f3" sourceRef="undo1" targetRef="undo2"/>
    <intermediateThrowEvent id="undo2"><compensateEventDefinition activityRef="pay"/></intermediateThrowEvent>
    <sequenceFlow id="f4" sourceRef="undo2" targetRef="after"/>
    <userTask id="after"/><sequenceFlow id="f5" sourceRef="after" targetRef="e"/><endEvent id="e"/>`);
  const twice = await startProcess(as.admin, 'scopes_comp_twice');
  await completeTask(as.admin, (await openTask(as.admin, twice.id, 'refund')).id);
  const tasks = await userTasks(as.admin, twice.id);
  expect(tasks.map((t) => [t.element_id, t.state])).toEqual([['refund', 'completed'], ['after', 'open']]);
});

test('a cancel end event compensates the transaction, cancels it and takes its cancel boundary event', async () => {
  const instance = await startProcess(as.admin, 'scopes-transaction');
  await completeTask(as.admin, (await openTask(as.admin, instance.id, 'Confirm')).id, { confirmed: false });
  expect((await openTask(as.admin, instance.id, 'Release'))).toBeDefined();
  await completeTask(as.admin, (await openTask(as.admin, instance.id, 'Release')).id);
  expect((await openTask(as.admin, instance.id, 'Cancelled'))).toBeDefined();
  expect(await activityStates(instance.id, ['Booking', 'Reserve', 'BookingCancelled'])).toEqual({
    Booking: ['cancelled'], Reserve: ['compensated'], BookingCancelled: ['completed'],
  });
  const { rows } = await as.admin.query(`select element_id from bpm.event where instance_id = $1 and kind = 'transactionCancelled'`, [instance.id]);
  expect(rows).toEqual([{ element_id: 'BookingCancel' }]);
});

test('a confirmed transaction completes normally and leaves over its flow', async () => {
  const instance = await startProcess(as.admin, 'scopes-transaction');
  await completeTask(as.admin, (await openTask(as.admin, instance.id, 'Confirm')).id, { confirmed: true });
  expect((await getInstance(as.admin, instance.id)).state).toBe('completed');
  expect(await activityStates(instance.id, ['Booking', 'Reserve'])).toEqual({ Booking: ['completed'], Reserve: ['completed'] });
});

test('a compensation throw in an event subprocess compensates the scope the event subprocess interrupted', async () => {
  await deployDefs(as.admin, 'scopes_comp_esp', '<message id="MC" name="scopes-order-cancelled"/>', `
    <startEvent id="s"/><sequenceFlow id="f1" sourceRef="s" targetRef="charge"/>
    <task id="charge"/>
    <boundaryEvent id="chargeComp" attachedToRef="charge"><compensateEventDefinition/></boundaryEvent>
    <userTask id="refund" isForCompensation="true"/>
    <association id="a1" sourceRef="chargeComp" targetRef="refund" associationDirection="One"/>
    <sequenceFlow id="f2" sourceRef="charge" targetRef="ship"/><userTask id="ship"/>
    <sequenceFlow id="f3" sourceRef="ship" targetRef="e"/><endEvent id="e"/>
    <subProcess id="onCancel" triggeredByEvent="true">
      <startEvent id="cs"><messageEventDefinition messageRef="MC"/></startEvent>
      <sequenceFlow id="c1" sourceRef="cs" targetRef="undo"/>
      <intermediateThrowEvent id="undo"><compensateEventDefinition/></intermediateThrowEvent>
      <sequenceFlow id="c2" sourceRef="undo" targetRef="ce"/><endEvent id="ce"/>
    </subProcess>`);
  const instance = await startProcess(as.admin, 'scopes_comp_esp', {}, 'order-9');
  await as.admin.query(`select bpm.correlate_message('scopes-order-cancelled', 'order-9')`);
  const tasks = await userTasks(as.admin, instance.id);
  expect(tasks.map((t) => [t.element_id, t.state])).toEqual([['ship', 'cancelled'], ['refund', 'open']]);
  await completeTask(as.admin, tasks[1].id);
  expect((await getInstance(as.admin, instance.id)).state).toBe('completed');
  expect(await activityStates(instance.id, ['charge'])).toEqual({ charge: ['compensated'] });
});

describe('nested compensation', () => {
  // book (sub: hotel → flight, each with a handler) → charge (handler refund) → compensate all → after
  const trip = (throwRef = '') => `
    <startEvent id="s"/><sequenceFlow id="f1" sourceRef="s" targetRef="book"/>
    <subProcess id="book">
      <startEvent id="bs"/><sequenceFlow id="b1" sourceRef="bs" targetRef="hotel"/>
      <task id="hotel"/><sequenceFlow id="b2" sourceRef="hotel" targetRef="flight"/>
      <task id="flight"/><sequenceFlow id="b3" sourceRef="flight" targetRef="be"/><endEvent id="be"/>
      <boundaryEvent id="hotelComp" attachedToRef="hotel"><compensateEventDefinition/></boundaryEvent>
      <userTask id="cancelHotel" isForCompensation="true"/>
      <association id="a1" sourceRef="hotelComp" targetRef="cancelHotel" associationDirection="One"/>
      <boundaryEvent id="flightComp" attachedToRef="flight"><compensateEventDefinition/></boundaryEvent>
      <userTask id="cancelFlight" isForCompensation="true"/>
      <association id="a2" sourceRef="flightComp" targetRef="cancelFlight" associationDirection="One"/>
    </subProcess>
    ${chargeThenUndo(throwRef)}`;

  test('compensating the process compensates the activities inside a completed subprocess, latest first, after the later ones', async () => {
    await deployProcess(as.admin, 'scopes_comp_nested', trip());
    const instance = await startProcess(as.admin, 'scopes_comp_nested');
    expect(await runHandlers(instance.id)).toEqual(['refund', 'cancelFlight', 'cancelHotel']);
    expect((await openTask(as.admin, instance.id, 'after'))).toBeDefined();
    expect(await activityStates(instance.id, ['hotel', 'flight', 'charge', 'book'])).toEqual({
      book: ['completed'], hotel: ['compensated'], flight: ['compensated'], charge: ['compensated'],
    });
  });

  test('a throw naming the completed subprocess compensates only what ran inside it', async () => {
    await deployProcess(as.admin, 'scopes_comp_nested_ref', trip(' activityRef="book"'));
    const instance = await startProcess(as.admin, 'scopes_comp_nested_ref');
    expect(await runHandlers(instance.id)).toEqual(['cancelFlight', 'cancelHotel']);
    expect(await activityStates(instance.id, ['hotel', 'flight', 'charge'])).toEqual({
      hotel: ['compensated'], flight: ['compensated'], charge: ['completed'],
    });
  });
});

describe('compensating a multi-instance activity', () => {
  // reserve one seat per passenger (parallel multi-instance user task) → compensate → after
  const seats = (extra = '') => `
    <startEvent id="s"/><sequenceFlow id="f1" sourceRef="s" targetRef="reserve"/>
    <userTask id="reserve" camunda:assignee="\${passenger}">
      <multiInstanceLoopCharacteristics camunda:collection="\${passengers}" camunda:elementVariable="passenger"/>
    </userTask>
    <boundaryEvent id="reserveComp" attachedToRef="reserve"><compensateEventDefinition/></boundaryEvent>
    <userTask id="release" isForCompensation="true" camunda:assignee="\${passenger}"/>
    <association id="a1" sourceRef="reserveComp" targetRef="release" associationDirection="One"/>
    <sequenceFlow id="f2" sourceRef="reserve" targetRef="${extra === '' ? 'undo' : 'pick'}"/>${extra}
    <intermediateThrowEvent id="undo"><compensateEventDefinition/></intermediateThrowEvent>
    <sequenceFlow id="f4" sourceRef="undo" targetRef="after"/>
    <userTask id="after"/>`;

  test('each completed inner instance is compensated by its own handler run, latest first, seeing its locals; each once', async () => {
    await deployProcess(as.admin, 'scopes_comp_mi', seats());
    const instance = await startProcess(as.admin, 'scopes_comp_mi', { passengers: ['ann', 'bob', 'cy'] });
    // complete in the order bob, cy, ann
    for (const who of ['bob', 'cy', 'ann']) {
      const task = (await userTasks(as.admin, instance.id)).find((t) => t.state === 'open' && t.assignee === who);
      await completeTask(as.admin, (task as { id: string }).id);
    }
    const released: Array<[string | null, unknown]> = [];
    for (;;) {
      const open = (await userTasks(as.admin, instance.id)).filter((t) => t.state === 'open');
      expect(open.length).toBe(1); // one handler at a time
      if (open[0].element_id === 'after') break;
      released.push([open[0].assignee, (open[0].local_variables as Record<string, unknown> | null)?.passenger ?? null]);
      await completeTask(as.admin, open[0].id);
    }
    expect(released).toEqual([['ann', 'ann'], ['cy', 'cy'], ['bob', 'bob']]);
    expect(await activityStates(instance.id, ['reserve'])).toEqual({ reserve: ['completed', 'compensated', 'compensated', 'compensated'] });
    // the handler's locals were the inner instance's (element variable, loopCounter), not left on the instance
    expect((await getInstance(as.admin, instance.id)).variables).toEqual({ passengers: ['ann', 'bob', 'cy'] });
  });

  test('only completed inner instances are compensated: a completion condition that cancels the rest leaves them out', async () => {
    await deployProcess(as.admin, 'scopes_comp_mi_partial', seats().replace(
      'camunda:elementVariable="passenger"/>',
      'camunda:elementVariable="passenger"><completionCondition>${nrOfCompletedInstances == 2}</completionCondition></multiInstanceLoopCharacteristics>',
    ));
    const instance = await startProcess(as.admin, 'scopes_comp_mi_partial', { passengers: ['ann', 'bob', 'cy'] });
    for (const who of ['cy', 'ann']) {
      const task = (await userTasks(as.admin, instance.id)).find((t) => t.state === 'open' && t.assignee === who);
      await completeTask(as.admin, (task as { id: string }).id);
    }
    const released: string[] = [];
    for (;;) {
      const open = (await userTasks(as.admin, instance.id)).filter((t) => t.state === 'open');
      if (open[0].element_id === 'after') break;
      released.push(open[0].assignee as string);
      await completeTask(as.admin, open[0].id);
    }
    expect(released).toEqual(['ann', 'cy']);
  });
});

test('an activity completed in the same call as the throw is compensated too', async () => {
  await deployProcess(as.admin, 'scopes_comp_same_call', `
    <startEvent id="s"/><sequenceFlow id="f1" sourceRef="s" targetRef="book"/>
    <userTask id="book"/>
    <boundaryEvent id="bookComp" attachedToRef="book"><compensateEventDefinition/></boundaryEvent>
    <userTask id="unbook" isForCompensation="true"/>
    <association id="a1" sourceRef="bookComp" targetRef="unbook" associationDirection="One"/>
    <sequenceFlow id="f2" sourceRef="book" targetRef="undo"/>
    <intermediateThrowEvent id="undo"><compensateEventDefinition/></intermediateThrowEvent>
    <sequenceFlow id="f3" sourceRef="undo" targetRef="e"/><endEvent id="e"/>`);
  const instance = await startProcess(as.admin, 'scopes_comp_same_call');
  await completeTask(as.admin, (await openTask(as.admin, instance.id, 'book')).id);
  const unbook = await openTask(as.admin, instance.id, 'unbook');
  await completeTask(as.admin, unbook.id);
  expect((await getInstance(as.admin, instance.id)).state).toBe('completed');
  expect(await activityStates(instance.id, ['book', 'unbook'])).toEqual({ book: ['compensated'], unbook: ['completed'] });
});

describe('compensation event subprocesses', () => {
  // book (sub: locals bookingRef; hotel with a handler, flight without; a
  // compensation event subprocess: cancelBooking, then compensate inside) →
  // charge (handler refund) → compensate → after
  const trip = (throwRef = '', espTail = '<intermediateThrowEvent id="undoInside"><compensateEventDefinition/></intermediateThrowEvent>') => `
    <startEvent id="s"/><sequenceFlow id="f1" sourceRef="s" targetRef="book"/>
    <subProcess id="book">
      <extensionElements><camunda:inputOutput><camunda:inputParameter name="bookingRef">B-\${order}</camunda:inputParameter></camunda:inputOutput></extensionElements>
      <startEvent id="bs"/><sequenceFlow id="b1" sourceRef="bs" targetRef="hotel"/>
      <task id="hotel"/><sequenceFlow id="b2" sourceRef="hotel" targetRef="flight"/>
      <task id="flight"/><sequenceFlow id="b3" sourceRef="flight" targetRef="be"/><endEvent id="be"/>
      <boundaryEvent id="hotelComp" attachedToRef="hotel"><compensateEventDefinition/></boundaryEvent>
      <userTask id="cancelHotel" isForCompensation="true"/>
      <association id="a1" sourceRef="hotelComp" targetRef="cancelHotel" associationDirection="One"/>
      <subProcess id="undoBooking" triggeredByEvent="true">
        <startEvent id="cs"><compensateEventDefinition/></startEvent>
        <sequenceFlow id="c1" sourceRef="cs" targetRef="cancelBooking"/>
        <userTask id="cancelBooking" camunda:assignee="\${bookingRef}"/>
        <sequenceFlow id="c2" sourceRef="cancelBooking" targetRef="undoInside"/>
        ${espTail}
        <sequenceFlow id="c3" sourceRef="undoInside" targetRef="ce"/><endEvent id="ce"/>
      </subProcess>
    </subProcess>
    ${chargeThenUndo(throwRef)}`;

  test('compensating a completed subprocess runs its compensation event subprocess with the locals it completed with; a throw inside compensates what completed inside', async () => {
    await deployProcess(as.admin, 'scopes_comp_esp_sub', trip());
    const instance = await startProcess(as.admin, 'scopes_comp_esp_sub', { order: 7 });
    expect(await runHandlers(instance.id)).toEqual(['refund', 'cancelBooking:B-7', 'cancelHotel']);
    expect(await activityStates(instance.id, ['book', 'hotel', 'flight', 'charge', 'undoBooking', 'cs', 'undoInside'])).toEqual({
      book: ['compensated'], hotel: ['compensated'], flight: ['completed'], charge: ['compensated'],
      undoBooking: ['completed'], cs: ['completed'], undoInside: ['completed'],
    });
    // the subprocess's locals stayed local
    expect((await getInstance(as.admin, instance.id)).variables).toEqual({ order: 7 });
    await completeTask(as.admin, (await openTask(as.admin, instance.id, 'after')).id);
    expect((await getInstance(as.admin, instance.id)).state).toBe('completed');
  });

  test('it replaces the implicit compensation of what completed inside: without a throw in it, inner handlers do not run', async () => {
    await deployProcess(as.admin, 'scopes_comp_esp_only', trip('', '<task id="undoInside"/>'));
    const instance = await startProcess(as.admin, 'scopes_comp_esp_only', { order: 8 });
    expect(await runHandlers(instance.id)).toEqual(['refund', 'cancelBooking:B-8']);
    expect(await activityStates(instance.id, ['book', 'hotel'])).toEqual({ book: ['compensated'], hotel: ['completed'] });
  });

  test('a throw naming the subprocess runs only its compensation event subprocess; while the subprocess runs it is not armed', async () => {
    await deployProcess(as.admin, 'scopes_comp_esp_ref', trip(' activityRef="book"'));
    const instance = await startProcess(as.admin, 'scopes_comp_esp_ref', { order: 9 });
    expect(await runHandlers(instance.id)).toEqual(['cancelBooking:B-9', 'cancelHotel']);
    expect(await activityStates(instance.id, ['book', 'charge'])).toEqual({ book: ['compensated'], charge: ['completed'] });
    const { rows } = await as.admin.query(`select count(*)::int as n from bpm.event_subscription where instance_id = $1`, [instance.id]);
    expect(rows[0].n).toBe(0);
  });

  test('not compensated: the subprocess completes normally and its compensation event subprocess never runs', async () => {
    await deployProcess(as.admin, 'scopes_comp_esp_none', trip().replace('<sequenceFlow id="f3" sourceRef="charge" targetRef="undo"/>', '<sequenceFlow id="f3" sourceRef="charge" targetRef="after"/>')
      .replace(/<intermediateThrowEvent id="undo">.*?<\/intermediateThrowEvent>\s*<sequenceFlow id="f4"[^>]*>/s, ''));
    const instance = await startProcess(as.admin, 'scopes_comp_esp_none', { order: 1 });
    expect((await userTasks(as.admin, instance.id)).map((t) => t.element_id)).toEqual(['after']);
    expect(await activityStates(instance.id, ['book', 'undoBooking'])).toEqual({ book: ['completed'] });
  });

  test('a multi-instance subprocess: each completed inner instance is compensated by its own run, latest first, seeing its element variable and locals', async () => {
    await deployProcess(as.admin, 'scopes_comp_esp_mi', `
      <startEvent id="s"/><sequenceFlow id="f1" sourceRef="s" targetRef="leg"/>
      <subProcess id="leg">
        <multiInstanceLoopCharacteristics isSequential="true" camunda:collection="\${legs}" camunda:elementVariable="leg"/>
        <extensionElements><camunda:inputOutput><camunda:inputParameter name="seat">\${leg}-1A</camunda:inputParameter></camunda:inputOutput></extensionElements>
        <startEvent id="ls"/><sequenceFlow id="l1" sourceRef="ls" targetRef="fly"/><userTask id="fly" camunda:assignee="\${leg}"/>
        <sequenceFlow id="l2" sourceRef="fly" targetRef="le"/><endEvent id="le"/>
        <subProcess id="unbookLeg" triggeredByEvent="true">
          <startEvent id="us"><compensateEventDefinition/></startEvent>
          <sequenceFlow id="u1" sourceRef="us" targetRef="release"/><userTask id="release" camunda:assignee="\${seat}"/>
          <sequenceFlow id="u2" sourceRef="release" targetRef="ue"/><endEvent id="ue"/>
        </subProcess>
      </subProcess>
      <sequenceFlow id="f2" sourceRef="leg" targetRef="undo"/>
      <intermediateThrowEvent id="undo"><compensateEventDefinition/></intermediateThrowEvent>
      <sequenceFlow id="f3" sourceRef="undo" targetRef="after"/><userTask id="after"/>`);
    const instance = await startProcess(as.admin, 'scopes_comp_esp_mi', { legs: ['LHR', 'JFK'] });
    expect(await runHandlers(instance.id)).toEqual(['fly:LHR', 'fly:JFK', 'release:JFK-1A', 'release:LHR-1A']);
    expect(await activityStates(instance.id, ['leg'])).toEqual({ leg: ['completed', 'compensated', 'compensated'] });
    expect((await getInstance(as.admin, instance.id)).variables).toEqual({ legs: ['LHR', 'JFK'] });
  });
});
