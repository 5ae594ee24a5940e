/**
 * BPMN compiler: compensation (boundary events, handlers, throw events),
 * transactions and cancel events, compiled to graph.ts (event kinds
 * `compensate` and `cancel`, node fields `compensation`, `isForCompensation`,
 * `transaction`), and every problem refused. The fixtures
 * scopes/compensation.bpmn and scopes/transaction.bpmn are deployed by the
 * engine tests.
 */
import { around, compileOk, fixture, model, node, problemsOf } from './compiler-support';

function compensation(b: string, host: string, handler: string): string {
  return `<boundaryEvent id="${b}" attachedToRef="${host}"><compensateEventDefinition/></boundaryEvent>
    <association id="a_${b}" associationDirection="One" sourceRef="${b}" targetRef="${handler}"/>`;
}

const COMPENSATE_BOUNDARY = { kind: 'compensate', activity: null };
const CLERK = { assignee: { literal: 'clerk' } };

// ---------------------------------------------------------------------------
// Fixtures for the engine tests
// ---------------------------------------------------------------------------

describe('scopes/ fixtures', () => {
  test('compensation.bpmn: two compensable tasks with user task handlers, a compensate-all throw event', async () => {
    const p = await fixture('compensation.bpmn');
    expect(p.key).toBe('scopes-compensation');
    expect(p.graph.start).toBe('Start');
    expect(node(p, 'BookHotel')).toEqual({
      id: 'BookHotel', type: 'task', name: 'Book hotel', in: ['Flow_ToHotel'], out: ['Flow_ToFlight'],
      default: null, boundary: ['HotelCompensation'], compensation: 'CancelHotel',
    });
    expect(node(p, 'BookFlight')).toEqual({
      id: 'BookFlight', type: 'task', name: 'Book flight', in: ['Flow_ToFlight'], out: ['Flow_ToDecide'],
      default: null, boundary: ['FlightCompensation'], compensation: 'CancelFlight',
    });
    expect(node(p, 'HotelCompensation')).toEqual({
      id: 'HotelCompensation', type: 'boundaryEvent', name: null, in: [], out: [], attachedTo: 'BookHotel', cancelActivity: true,
      event: COMPENSATE_BOUNDARY,
    });
    expect(node(p, 'FlightCompensation')).toEqual({
      id: 'FlightCompensation', type: 'boundaryEvent', name: null, in: [], out: [], attachedTo: 'BookFlight', cancelActivity: true,
      event: COMPENSATE_BOUNDARY,
    });
    expect(node(p, 'CancelHotel')).toEqual({
      id: 'CancelHotel', type: 'userTask', name: 'Cancel hotel', in: [], out: [], default: null, boundary: [],
      isForCompensation: true, userTask: CLERK,
    });
    expect(node(p, 'CancelFlight')).toEqual({
      id: 'CancelFlight', type: 'userTask', name: 'Cancel flight', in: [], out: [], default: null, boundary: [],
      isForCompensation: true, userTask: CLERK,
    });
    expect(node(p, 'Decide')).toEqual({
      id: 'Decide', type: 'userTask', name: 'Decide', in: ['Flow_ToDecide'], out: ['Flow_ToOk'], default: null, boundary: [], userTask: CLERK,
    });
    expect(node(p, 'Ok')).toEqual({ id: 'Ok', type: 'exclusiveGateway', name: 'Trip ok?', in: ['Flow_ToOk'], out: ['Flow_Ok', 'Flow_NotOk'], default: 'Flow_NotOk' });
    expect(p.graph.flows.Flow_Ok.condition).toEqual({ src: '${ok}', path: '($."ok" == true)', vars: ['ok'] });
    expect(node(p, 'UndoBookings')).toEqual({
      id: 'UndoBookings', type: 'intermediateThrowEvent', name: 'Undo bookings', in: ['Flow_NotOk'], out: ['Flow_ToUndone'],
      event: { kind: 'compensate', activity: null },
    });
    expect(node(p, 'Undone')).toEqual({ id: 'Undone', type: 'endEvent', name: 'Trip cancelled', in: ['Flow_ToUndone'], out: [], terminate: false });
    expect(Object.keys(p.graph.nodes)).toHaveLength(12);
  });

  test('transaction.bpmn: a transaction with a compensable task, a cancel end event and a cancel boundary event', async () => {
    const p = await fixture('transaction.bpmn');
    expect(p.key).toBe('scopes-transaction');
    expect(p.graph.start).toBe('Start');
    expect(node(p, 'Booking')).toEqual({
      id: 'Booking', type: 'subProcess', name: 'Booking', in: ['Flow_ToBooking'], out: ['Flow_ToBooked'],
      default: null, boundary: ['BookingCancel'], transaction: true, start: 'BookingStart',
    });
    for (const id of ['BookingStart', 'Reserve', 'ReserveCompensation', 'Release', 'Confirm', 'Confirmed', 'BookingEnd', 'BookingCancelled']) {
      expect(node(p, id).scope).toBe('Booking');
    }
    for (const id of ['Start', 'Booking', 'BookingCancel', 'Cancelled', 'CancelledEnd', 'Booked']) expect(node(p, id).scope).toBeUndefined();
    expect(node(p, 'Reserve')).toEqual({
      id: 'Reserve', type: 'task', name: 'Reserve', in: ['Flow_ToReserve'], out: ['Flow_ToConfirm'], default: null,
      boundary: ['ReserveCompensation'], scope: 'Booking', compensation: 'Release',
    });
    expect(node(p, 'ReserveCompensation')).toEqual({
      id: 'ReserveCompensation', type: 'boundaryEvent', name: null, in: [], out: [], attachedTo: 'Reserve', cancelActivity: true,
      scope: 'Booking', event: COMPENSATE_BOUNDARY,
    });
    expect(node(p, 'Release')).toEqual({
      id: 'Release', type: 'userTask', name: 'Release', in: [], out: [], default: null, boundary: [], scope: 'Booking',
      isForCompensation: true, userTask: CLERK,
    });
    expect(node(p, 'BookingCancelled')).toEqual({
      id: 'BookingCancelled', type: 'endEvent', name: 'Cancel booking', in: ['Flow_NotConfirmed'], out: [], terminate: false,
      scope: 'Booking', event: { kind: 'cancel' },
    });
    expect(node(p, 'BookingEnd')).toEqual({ id: 'BookingEnd', type: 'endEvent', name: null, in: ['Flow_Confirmed'], out: [], terminate: false, scope: 'Booking' });
    expect(node(p, 'BookingCancel')).toEqual({
      id: 'BookingCancel', type: 'boundaryEvent', name: 'Booking cancelled', in: [], out: ['Flow_ToCancelled'], attachedTo: 'Booking',
      cancelActivity: true, event: { kind: 'cancel' },
    });
    expect(node(p, 'Cancelled')).toEqual({
      id: 'Cancelled', type: 'userTask', name: 'Cancelled', in: ['Flow_ToCancelled'], out: ['Flow_ToCancelledEnd'], default: null, boundary: [], userTask: CLERK,
    });
    expect(p.graph.flows.Flow_Confirmed.condition).toEqual({ src: '${confirmed}', path: '($."confirmed" == true)', vars: ['confirmed'] });
    expect(Object.keys(p.graph.nodes)).toHaveLength(14);
  });
});

// ---------------------------------------------------------------------------
// Compensation boundary events and handlers
// ---------------------------------------------------------------------------

describe('compensation boundary events and handlers', () => {
  test('every kind of activity can be compensated; handlers compile like any activity', async () => {
    const hosts: Array<[string, string]> = [
      ['task', '<task id="h_task"/>'],
      ['manualTask', '<manualTask id="h_manualTask"/>'],
      ['userTask', '<userTask id="h_userTask" camunda:assignee="clerk"/>'],
      ['serviceTask', '<serviceTask id="h_serviceTask" camunda:type="external" camunda:topic="charge"/>'],
      ['sendTask', '<sendTask id="h_sendTask" camunda:type="external" camunda:topic="mail"/>'],
      ['businessRuleTask', '<businessRuleTask id="h_businessRuleTask"><extensionElements><zeebe:taskDefinition type="rate"/></extensionElements></businessRuleTask>'],
      ['receiveTask', '<receiveTask id="h_receiveTask" messageRef="M"/>'],
      ['subProcess', '<subProcess id="h_subProcess"><startEvent id="hs"/><sequenceFlow id="hf" sourceRef="hs" targetRef="he"/><endEvent id="he"/></subProcess>'],
      ['callActivity', '<callActivity id="h_callActivity" calledElement="child"/>'],
    ];
    const chain = hosts.map(([, xml]) => xml).join('\n    ');
    const flows = hosts.map(([type], i) => {
      const target = i + 1 < hosts.length ? `h_${hosts[i + 1][0]}` : 'e';
      return `<sequenceFlow id="g_${type}" sourceRef="h_${type}" targetRef="${target}"/>`;
    }).join('\n    ');
    const boundaries = hosts.map(([type]) => compensation(`b_${type}`, `h_${type}`, `u_${type}`)).join('\n    ');
    const { process: p, warnings } = await compileOk('hosts.bpmn', model(`
    <startEvent id="s"/><sequenceFlow id="f0" sourceRef="s" targetRef="h_task"/>
    ${chain}
    ${flows}
    <endEvent id="e"/>
    ${boundaries}
    <task id="u_task" isForCompensation="true"/>
    <manualTask id="u_manualTask" isForCompensation="true"/>
    <userTask id="u_userTask" isForCompensation="true" camunda:candidateGroups="clerks, managers"/>
    <serviceTask id="u_serviceTask" isForCompensation="true" camunda:type="external" camunda:topic="refund"/>
    <sendTask id="u_sendTask" isForCompensation="true" messageRef="M"/>
    <businessRuleTask id="u_businessRuleTask" isForCompensation="true" camunda:type="external" camunda:topic="unrate"/>
    <receiveTask id="u_receiveTask" isForCompensation="true" messageRef="M"/>
    <subProcess id="u_subProcess" isForCompensation="true">
      <startEvent id="us"/><sequenceFlow id="uf1" sourceRef="us" targetRef="undoInner"/>
      <userTask id="undoInner"/><sequenceFlow id="uf2" sourceRef="undoInner" targetRef="ue"/><endEvent id="ue"/>
    </subProcess>
    <callActivity id="u_callActivity" isForCompensation="true" calledElement="undo-child"/>`, '<message id="M" name="m"/>'));
    expect(warnings).toEqual([]);
    for (const [type] of hosts) {
      expect(node(p, `h_${type}`)).toMatchObject({ type, boundary: [`b_${type}`], compensation: `u_${type}` });
      expect(node(p, `b_${type}`)).toEqual({
        id: `b_${type}`, type: 'boundaryEvent', name: null, in: [], out: [], attachedTo: `h_${type}`, cancelActivity: true, event: COMPENSATE_BOUNDARY,
      });
      expect(node(p, `u_${type}`)).toMatchObject({ type, in: [], out: [], boundary: [], isForCompensation: true });
      expect(node(p, `u_${type}`).compensation).toBeUndefined();
    }
    expect(node(p, 'u_userTask')).toEqual({
      id: 'u_userTask', type: 'userTask', name: null, in: [], out: [], default: null, boundary: [], isForCompensation: true,
      userTask: { candidateGroups: { literal: ['clerks', 'managers'] } },
    });
    expect(node(p, 'u_serviceTask')).toEqual({
      id: 'u_serviceTask', type: 'serviceTask', name: null, in: [], out: [], default: null, boundary: [], isForCompensation: true, topic: 'refund',
    });
    expect(node(p, 'u_sendTask')).toEqual({
      id: 'u_sendTask', type: 'sendTask', name: null, in: [], out: [], default: null, boundary: [], isForCompensation: true,
      event: { kind: 'message', name: { literal: 'm' }, correlationKey: null },
    });
    expect(node(p, 'u_subProcess')).toEqual({
      id: 'u_subProcess', type: 'subProcess', name: null, in: [], out: [], default: null, boundary: [], isForCompensation: true, start: 'us',
    });
    for (const id of ['us', 'undoInner', 'ue']) expect(node(p, id).scope).toBe('u_subProcess');
    expect(node(p, 'undoInner').isForCompensation).toBeUndefined();
    expect(node(p, 'u_callActivity').call).toMatchObject({ processId: { literal: 'undo-child' } });
  });

  test('inside a subprocess, with the association at process level or in the subprocess; other associations are not counted', async () => {
    const { process: p, warnings } = await compileOk('nested.bpmn', model(around(`
    <subProcess id="t">
      <startEvent id="ss"/><sequenceFlow id="g0" sourceRef="ss" targetRef="a"/>
      <task id="a"/><sequenceFlow id="g1" sourceRef="a" targetRef="b"/>
      <task id="b"/><sequenceFlow id="g2" sourceRef="b" targetRef="undoAll"/>
      <endEvent id="undoAll"><compensateEventDefinition activityRef="a"/></endEvent>
      <boundaryEvent id="ba" attachedToRef="a"><compensateEventDefinition/></boundaryEvent>
      <boundaryEvent id="bb" attachedToRef="b"><compensateEventDefinition/></boundaryEvent>
      <task id="undoA" isForCompensation="true"/>
      <task id="undoB" isForCompensation="true"/>
      <association id="inner" associationDirection="One" sourceRef="bb" targetRef="undoB"/>
      <textAnnotation id="note"><text>undo b</text></textAnnotation>
      <association id="toNote" sourceRef="bb" targetRef="note"/>
    </subProcess>`) + `
    <association id="outer" associationDirection="One" sourceRef="ba" targetRef="undoA"/>`));
    expect(warnings).toEqual([]);
    expect(node(p, 'a')).toMatchObject({ scope: 't', boundary: ['ba'], compensation: 'undoA' });
    expect(node(p, 'b')).toMatchObject({ scope: 't', boundary: ['bb'], compensation: 'undoB' });
    expect(node(p, 'ba')).toEqual({
      id: 'ba', type: 'boundaryEvent', name: null, in: [], out: [], attachedTo: 'a', cancelActivity: true, scope: 't', event: COMPENSATE_BOUNDARY,
    });
    expect(node(p, 'undoA')).toEqual({ id: 'undoA', type: 'task', name: null, in: [], out: [], default: null, boundary: [], scope: 't', isForCompensation: true });
    expect(node(p, 'undoAll')).toEqual({
      id: 'undoAll', type: 'endEvent', name: null, in: ['g2'], out: [], terminate: false, scope: 't', event: { kind: 'compensate', activity: 'a' },
    });
    expect(node(p, 't').compensation).toBeUndefined();
  });

  test('a compensable subprocess and a compensable transaction; a compensation boundary with cancelActivity="false" keeps it', async () => {
    const { process: p } = await compileOk('scopes.bpmn', model(`
    <startEvent id="s"/><sequenceFlow id="f0" sourceRef="s" targetRef="sub"/>
    <subProcess id="sub"><startEvent id="ss"/><sequenceFlow id="g0" sourceRef="ss" targetRef="se"/><endEvent id="se"/></subProcess>
    <sequenceFlow id="f1" sourceRef="sub" targetRef="tx"/>
    <transaction id="tx"><startEvent id="ts"/><sequenceFlow id="g1" sourceRef="ts" targetRef="te"/><endEvent id="te"/></transaction>
    <sequenceFlow id="f2" sourceRef="tx" targetRef="e"/><endEvent id="e"/>
    ${compensation('bSub', 'sub', 'undoSub')}
    <boundaryEvent id="bTx" attachedToRef="tx" cancelActivity="false"><compensateEventDefinition/></boundaryEvent>
    <association id="aTx" associationDirection="One" sourceRef="bTx" targetRef="undoTx"/>
    <userTask id="undoSub" isForCompensation="true"/>
    <userTask id="undoTx" isForCompensation="true"/>`));
    expect(node(p, 'sub')).toEqual({
      id: 'sub', type: 'subProcess', name: null, in: ['f0'], out: ['f1'], default: null, boundary: ['bSub'], start: 'ss', compensation: 'undoSub',
    });
    expect(node(p, 'tx')).toEqual({
      id: 'tx', type: 'subProcess', name: null, in: ['f1'], out: ['f2'], default: null, boundary: ['bTx'], start: 'ts', transaction: true, compensation: 'undoTx',
    });
    expect(node(p, 'bTx')).toMatchObject({ cancelActivity: false, event: COMPENSATE_BOUNDARY });
  });

  test('refused: multi-instance hosts, flows, missing or extra associations, bad handlers, handlers in another scope', async () => {
    expect(await problemsOf(model(`
    <startEvent id="s"/><sequenceFlow id="f0" sourceRef="s" targetRef="mi"/>
    <task id="mi"><multiInstanceLoopCharacteristics><loopCardinality>3</loopCardinality></multiInstanceLoopCharacteristics></task>
    <sequenceFlow id="f1" sourceRef="mi" targetRef="t1"/>
    <task id="t1"/><sequenceFlow id="f2" sourceRef="t1" targetRef="t2"/>
    <task id="t2"/><sequenceFlow id="f3" sourceRef="t2" targetRef="t3"/>
    <task id="t3"/><sequenceFlow id="f4" sourceRef="t3" targetRef="t4"/>
    <task id="t4"/><sequenceFlow id="f5" sourceRef="t4" targetRef="t5"/>
    <task id="t5"/><sequenceFlow id="f6" sourceRef="t5" targetRef="t6"/>
    <task id="t6"/><sequenceFlow id="f7" sourceRef="t6" targetRef="t7"/>
    <task id="t7"/><sequenceFlow id="f8" sourceRef="t7" targetRef="sub"/>
    <subProcess id="sub">
      <startEvent id="ss"/><sequenceFlow id="g0" sourceRef="ss" targetRef="se"/><endEvent id="se"/>
      <task id="innerUndo" isForCompensation="true"/>
    </subProcess>
    <sequenceFlow id="f9" sourceRef="sub" targetRef="e"/><endEvent id="e"/>
    ${compensation('bMi', 'mi', 'undoMi')}
    <boundaryEvent id="bFlows" attachedToRef="t1"><compensateEventDefinition/></boundaryEvent>
    <association id="aFlows" associationDirection="One" sourceRef="bFlows" targetRef="undo1"/>
    <sequenceFlow id="bad" sourceRef="bFlows" targetRef="undo1"/>
    <boundaryEvent id="bNone" attachedToRef="t2"><compensateEventDefinition/></boundaryEvent>
    <boundaryEvent id="bTwo" attachedToRef="t3"><compensateEventDefinition/></boundaryEvent>
    <association id="aTwo1" sourceRef="bTwo" targetRef="undo3a"/><association id="aTwo2" sourceRef="bTwo" targetRef="undo3b"/>
    ${compensation('bGateway', 't4', 'gw')}
    ${compensation('bPlain', 't5', 'plain')}
    ${compensation('bOtherScope', 't6', 'innerUndo')}
    ${compensation('bData', 't7', 'data')}
    ${compensation('bSecond', 't7', 'undo7')}
    <task id="undoMi" isForCompensation="true"/>
    <task id="undo1" isForCompensation="true"/><sequenceFlow id="out" sourceRef="undo1" targetRef="e"/>
    <task id="undo3a" isForCompensation="true"/><task id="undo3b" isForCompensation="true"/>
    <task id="undo7" isForCompensation="true"/>
    <exclusiveGateway id="gw"/><sequenceFlow id="gwOut" sourceRef="gw" targetRef="e"/>
    <task id="plain"/>
    <dataObjectReference id="data" dataObjectRef="obj"/><dataObject id="obj"/>
    <task id="lonelyUndo" isForCompensation="true"/>`))).toEqual([
      'inline.bpmn: element bSecond: several compensation boundary events on t7',
      'inline.bpmn: element bNone: compensation boundary event is not connected to a compensation handler (draw an association from it to an activity with isForCompensation="true")',
      'inline.bpmn: element bTwo: compensation boundary event has 2 associations (to undo3a, undo3b); exactly one, to its compensation handler, is required',
      'inline.bpmn: element bGateway: the association of compensation boundary event leads to gw, a bpmn:exclusiveGateway; a compensation handler is a task, subprocess or call activity with isForCompensation="true"',
      'inline.bpmn: element bPlain: the association of compensation boundary event leads to plain, which is not a compensation handler (set isForCompensation="true" on it)',
      'inline.bpmn: element bOtherScope: compensation handler innerUndo is in subprocess sub; it must be in the same scope as the activity it compensates (process p)',
      'inline.bpmn: element bData: the association of compensation boundary event leads to data, a bpmn:dataObjectReference; it must lead to its compensation handler (an activity with isForCompensation="true")',
      'inline.bpmn: element undo3a: compensation handler (isForCompensation="true") is not connected to a compensation boundary event (draw an association from a compensation boundary event to it)',
      'inline.bpmn: element undo3b: compensation handler (isForCompensation="true") is not connected to a compensation boundary event (draw an association from a compensation boundary event to it)',
      'inline.bpmn: element lonelyUndo: compensation handler (isForCompensation="true") is not connected to a compensation boundary event (draw an association from a compensation boundary event to it)',
      'inline.bpmn: element bFlows: compensation boundary event must not have outgoing sequence flows (bad); it is connected to its compensation handler by an association',
      'inline.bpmn: element undo1: compensation handler must not have incoming or outgoing sequence flows (bad, out); it is started by compensation only',
    ]);
  });

  test('refused: a handler shared by two boundaries, boundary events on handlers, event subprocesses as handlers', async () => {
    expect(await problemsOf(model(`
    <startEvent id="s"/><sequenceFlow id="f0" sourceRef="s" targetRef="a"/>
    <task id="a"/><sequenceFlow id="f1" sourceRef="a" targetRef="b"/>
    <task id="b"/><sequenceFlow id="f2" sourceRef="b" targetRef="c"/>
    <task id="c"/><sequenceFlow id="f3" sourceRef="c" targetRef="e"/><endEvent id="e"/>
    ${compensation('ba', 'a', 'shared')}
    ${compensation('bb', 'b', 'shared')}
    ${compensation('bc', 'c', 'esp')}
    <userTask id="shared" isForCompensation="true"/>
    <boundaryEvent id="onHandler" attachedToRef="shared"><timerEventDefinition><timeDuration>PT1H</timeDuration></timerEventDefinition></boundaryEvent>
    <sequenceFlow id="late" sourceRef="onHandler" targetRef="e"/>
    <subProcess id="esp" triggeredByEvent="true" isForCompensation="true">
      <startEvent id="es"><signalEventDefinition signalRef="S"/></startEvent>
    </subProcess>`, '<signal id="S" name="s"/>'))).toEqual([
      'inline.bpmn: element esp: an event subprocess cannot be a compensation handler (isForCompensation="true")',
      'inline.bpmn: element onHandler: attachedToRef "shared" is a compensation handler (isForCompensation="true"); boundary events on compensation handlers are not supported in this version',
      'inline.bpmn: element bc: the association of compensation boundary event leads to esp, an event subprocess; a compensation handler is a task, subprocess or call activity with isForCompensation="true"',
      'inline.bpmn: element shared: compensation handler is connected to several compensation boundary events (ba, bb); each compensated activity needs a handler of its own',
    ]);
  });
});

// ---------------------------------------------------------------------------
// Compensation throw events
// ---------------------------------------------------------------------------

describe('compensation throw events', () => {
  test('intermediate throw and end events, with and without activityRef; waitForCompletion="true" is the default', async () => {
    const { process: p, warnings } = await compileOk('throws.bpmn', model(`
    <startEvent id="s"/><sequenceFlow id="f0" sourceRef="s" targetRef="a"/>
    <task id="a"/><sequenceFlow id="f1" sourceRef="a" targetRef="undoA"/>
    <intermediateThrowEvent id="undoA" name="Undo a"><compensateEventDefinition activityRef="a" waitForCompletion="true"/></intermediateThrowEvent>
    <sequenceFlow id="f2" sourceRef="undoA" targetRef="undoEverything"/>
    <endEvent id="undoEverything"><compensateEventDefinition/></endEvent>
    ${compensation('ba', 'a', 'handlerA')}
    <task id="handlerA" isForCompensation="true"/>`));
    expect(warnings).toEqual([]);
    expect(node(p, 'undoA')).toEqual({
      id: 'undoA', type: 'intermediateThrowEvent', name: 'Undo a', in: ['f1'], out: ['f2'], event: { kind: 'compensate', activity: 'a' },
    });
    expect(node(p, 'undoEverything')).toEqual({
      id: 'undoEverything', type: 'endEvent', name: null, in: ['f2'], out: [], terminate: false, event: { kind: 'compensate', activity: null },
    });
  });

  test('activityRef naming a subprocess with compensable activities inside (nested compensation); a multi-instance one is refused', async () => {
    const { process: p, warnings } = await compileOk('nested.bpmn', model(`
    <startEvent id="s"/><sequenceFlow id="f0" sourceRef="s" targetRef="sub"/>
    <subProcess id="sub">
      <startEvent id="ss"/><sequenceFlow id="g0" sourceRef="ss" targetRef="deep"/>
      <subProcess id="deep">
        <startEvent id="ds"/><sequenceFlow id="d0" sourceRef="ds" targetRef="inner"/>
        <task id="inner"/><sequenceFlow id="d1" sourceRef="inner" targetRef="de"/><endEvent id="de"/>
        ${compensation('bInner', 'inner', 'undoInner')}
        <task id="undoInner" isForCompensation="true"/>
      </subProcess>
      <sequenceFlow id="g1" sourceRef="deep" targetRef="se"/><endEvent id="se"/>
    </subProcess>
    <sequenceFlow id="f1" sourceRef="sub" targetRef="undoSub"/>
    <intermediateThrowEvent id="undoSub"><compensateEventDefinition activityRef="sub"/></intermediateThrowEvent>
    <sequenceFlow id="f2" sourceRef="undoSub" targetRef="e"/><endEvent id="e"/>`));
    expect(warnings).toEqual([]);
    expect(node(p, 'undoSub').event).toEqual({ kind: 'compensate', activity: 'sub' });
    expect(await problemsOf(model(`
    <startEvent id="s"/><sequenceFlow id="f0" sourceRef="s" targetRef="sub"/>
    <subProcess id="sub">
      <multiInstanceLoopCharacteristics><loopCardinality>2</loopCardinality></multiInstanceLoopCharacteristics>
      <startEvent id="ss"/><sequenceFlow id="g0" sourceRef="ss" targetRef="inner"/>
      <task id="inner"/><sequenceFlow id="g1" sourceRef="inner" targetRef="se"/><endEvent id="se"/>
      ${compensation('bInner', 'inner', 'undoInner')}
      <task id="undoInner" isForCompensation="true"/>
    </subProcess>
    <sequenceFlow id="f1" sourceRef="sub" targetRef="undoSub"/>
    <intermediateThrowEvent id="undoSub"><compensateEventDefinition activityRef="sub"/></intermediateThrowEvent>
    <sequenceFlow id="f2" sourceRef="undoSub" targetRef="e"/><endEvent id="e"/>`))).toEqual([
      'inline.bpmn: element undoSub: activityRef "sub" has no compensation boundary event; only activities with a compensation handler (or subprocesses with such activities inside) can be compensated',
    ]);
  });

  test('refused: activityRef in another scope, without compensation boundary, not an activity, unresolved; waitForCompletion="false"; compensation start and catch events', async () => {
    expect(await problemsOf(model(`
    <startEvent id="s"/><sequenceFlow id="f0" sourceRef="s" targetRef="sub"/>
    <subProcess id="sub">
      <startEvent id="ss"/><sequenceFlow id="g0" sourceRef="ss" targetRef="inner"/>
      <task id="inner"/><sequenceFlow id="g1" sourceRef="inner" targetRef="fromInside"/>
      <endEvent id="fromInside"><compensateEventDefinition activityRef="outer"/></endEvent>
      ${compensation('bInner', 'inner', 'undoInner')}
      <task id="undoInner" isForCompensation="true"/>
    </subProcess>
    <sequenceFlow id="f1" sourceRef="sub" targetRef="outer"/>
    <task id="outer"/><sequenceFlow id="f2" sourceRef="outer" targetRef="intoSub"/>
    ${compensation('bOuter', 'outer', 'undoOuter')}
    <task id="undoOuter" isForCompensation="true"/>
    <intermediateThrowEvent id="intoSub"><compensateEventDefinition activityRef="inner"/></intermediateThrowEvent>
    <sequenceFlow id="f3" sourceRef="intoSub" targetRef="noBoundary"/>
    <intermediateThrowEvent id="noBoundary"><compensateEventDefinition activityRef="plain"/></intermediateThrowEvent>
    <sequenceFlow id="f4" sourceRef="noBoundary" targetRef="plain"/><task id="plain"/><sequenceFlow id="f4b" sourceRef="plain" targetRef="gateway"/>
    <intermediateThrowEvent id="gateway"><compensateEventDefinition activityRef="g"/></intermediateThrowEvent>
    <sequenceFlow id="f5" sourceRef="gateway" targetRef="g"/>
    <exclusiveGateway id="g"/><sequenceFlow id="f6" sourceRef="g" targetRef="dangling"/>
    <intermediateThrowEvent id="dangling"><compensateEventDefinition activityRef="nowhere"/></intermediateThrowEvent>
    <sequenceFlow id="f7" sourceRef="dangling" targetRef="otherProcess"/>
    <intermediateThrowEvent id="otherProcess"><compensateEventDefinition activityRef="elsewhere"/></intermediateThrowEvent>
    <sequenceFlow id="f8" sourceRef="otherProcess" targetRef="noWait"/>
    <endEvent id="noWait"><compensateEventDefinition waitForCompletion="false"/></endEvent>
    <startEvent id="compStart"><compensateEventDefinition/></startEvent>
    <intermediateCatchEvent id="compCatch"><compensateEventDefinition/></intermediateCatchEvent>`,
    '<process id="other"><task id="elsewhere"/></process>'))).toEqual([
      'inline.bpmn: element dangling: activityRef "nowhere" does not reference an element',
      'inline.bpmn: element noWait: waitForCompletion="false" is not supported; compensation throw events wait until the compensation handlers have completed',
      'inline.bpmn: element compStart: compensation start events (bpmn:compensateEventDefinition) are not supported in this version',
      'inline.bpmn: element compCatch: compensation intermediate catch events (bpmn:compensateEventDefinition) are not supported in this version',
      'inline.bpmn: element fromInside: activityRef "outer" is in process p; a compensation throw event compensates activities of its own scope (subprocess sub)',
      'inline.bpmn: element intoSub: activityRef "inner" is in subprocess sub; a compensation throw event compensates activities of its own scope (process p)',
      'inline.bpmn: element noBoundary: activityRef "plain" has no compensation boundary event; only activities with a compensation handler (or subprocesses with such activities inside) can be compensated',
      'inline.bpmn: element gateway: activityRef "g" is a bpmn:exclusiveGateway, not an activity with a compensation boundary event',
      'inline.bpmn: element otherProcess: activityRef "elsewhere" is not an activity of process p',
    ]);
  });

  test('a compensation event subprocess is its subprocess\'s compensation handler, not armed with the other event subprocesses', async () => {
    const { process: p, warnings } = await compileOk('esp.bpmn', model(around(`
    <subProcess id="t">
      <startEvent id="bs"/><sequenceFlow id="b1" sourceRef="bs" targetRef="hotel"/><task id="hotel"/>
      <subProcess id="undoBooking" triggeredByEvent="true">
        <startEvent id="cs" isInterrupting="false"><compensateEventDefinition/></startEvent>
        <sequenceFlow id="c1" sourceRef="cs" targetRef="undoAll"/>
        <intermediateThrowEvent id="undoAll"><compensateEventDefinition activityRef="hotel"/></intermediateThrowEvent>
      </subProcess>
      ${compensation('hotelComp', 'hotel', 'cancelHotel')}<task id="cancelHotel" isForCompensation="true"/>
      <subProcess id="onCancel" triggeredByEvent="true">
        <startEvent id="ms"><timerEventDefinition><timeDuration>PT1H</timeDuration></timerEventDefinition></startEvent>
      </subProcess>
    </subProcess>`)));
    expect(node(p, 't')).toMatchObject({ compensation: 'undoBooking', eventSubprocesses: ['onCancel'] });
    expect(node(p, 'undoBooking')).toMatchObject({ triggeredByEvent: true, start: 'cs' });
    expect(node(p, 'cs')).toMatchObject({ type: 'startEvent', event: { kind: 'compensate', activity: null } });
    expect(node(p, 'cs').interrupting).toBeUndefined();
    // a throw in it names activities of the subprocess it compensates
    expect(node(p, 'undoAll').event).toEqual({ kind: 'compensate', activity: 'hotel' });
    expect(warnings).toEqual([
      'esp.bpmn: element cs: isInterrupting="false" on a compensation start event is ignored: compensation starts after the subprocess has completed, there is nothing to interrupt',
    ]);
  });

  test('a throw may name a subprocess compensated by its compensation event subprocess, also nested', async () => {
    const { process: p } = await compileOk('esp-ref.bpmn', model(`
    <startEvent id="s"/><sequenceFlow id="f0" sourceRef="s" targetRef="outer"/>
    <subProcess id="outer"><startEvent id="os"/><sequenceFlow id="o1" sourceRef="os" targetRef="inner"/>
      <subProcess id="inner"><startEvent id="is"/>
        <subProcess id="undoInner" triggeredByEvent="true"><startEvent id="cs"><compensateEventDefinition/></startEvent></subProcess>
      </subProcess>
    </subProcess>
    <sequenceFlow id="x1" sourceRef="outer" targetRef="undoOuter"/>
    <intermediateThrowEvent id="undoOuter"><compensateEventDefinition activityRef="outer"/></intermediateThrowEvent>`));
    expect(node(p, 'inner').compensation).toBe('undoInner');
    expect(node(p, 'undoOuter').event).toEqual({ kind: 'compensate', activity: 'outer' });
  });

  test('refused: compensation event subprocesses at process level, in an event subprocess, two in one subprocess, or beside a compensation boundary event', async () => {
    const esp = (id: string) => `<subProcess id="${id}" triggeredByEvent="true"><startEvent id="${id}Start"><compensateEventDefinition/></startEvent></subProcess>`;
    expect(await problemsOf(model(`${around('<task id="t"/>')}
    ${esp('atTop')}
    <subProcess id="twice"><startEvent id="ws"/>${esp('first')}${esp('second')}</subProcess>
    <subProcess id="both"><startEvent id="bs"/>${esp('third')}</subProcess>
    ${compensation('bothComp', 'both', 'undoBoth')}<task id="undoBoth" isForCompensation="true"/>
    <subProcess id="onTimer" triggeredByEvent="true"><startEvent id="ts"><timerEventDefinition><timeDuration>PT1H</timeDuration></timerEventDefinition></startEvent>${esp('nested')}</subProcess>`))).toEqual([
      'inline.bpmn: element twice: subprocess twice has 2 compensation event subprocesses (first, second); at most one is allowed',
      'inline.bpmn: element nested: a compensation event subprocess belongs in an embedded subprocess or transaction; event subprocess onTimer is never compensated as a whole',
      'inline.bpmn: element atTop: a compensation event subprocess belongs in an embedded subprocess or transaction (it compensates that subprocess once it has completed); at process level nothing can compensate the process',
      'inline.bpmn: element bothComp: both has a compensation event subprocess (third) and this compensation boundary event; one compensation handler is allowed',
    ]);
  });
});

// ---------------------------------------------------------------------------
// Transactions and cancel events
// ---------------------------------------------------------------------------

describe('transactions and cancel events', () => {
  test('a transaction compiles like an embedded subprocess plus transaction: true; nested transactions, mappings and multi-instance', async () => {
    const { process: p, warnings } = await compileOk('tx.bpmn', model(around(`
    <transaction id="t" name="Pay" method="##Compensate">
      <extensionElements><camunda:inputOutput><camunda:inputParameter name="attempt">1</camunda:inputParameter></camunda:inputOutput></extensionElements>
      <multiInstanceLoopCharacteristics isSequential="true"><loopCardinality>2</loopCardinality></multiInstanceLoopCharacteristics>
      <startEvent id="ts"/><sequenceFlow id="g0" sourceRef="ts" targetRef="inner"/>
      <transaction id="inner">
        <startEvent id="is"/><sequenceFlow id="h0" sourceRef="is" targetRef="ic"/><endEvent id="ic"><cancelEventDefinition/></endEvent>
      </transaction>
      <boundaryEvent id="innerCancelled" attachedToRef="inner"><cancelEventDefinition/></boundaryEvent>
      <sequenceFlow id="g1" sourceRef="innerCancelled" targetRef="tc"/><endEvent id="tc"><cancelEventDefinition/></endEvent>
      <sequenceFlow id="g2" sourceRef="inner" targetRef="te"/><endEvent id="te"/>
    </transaction>`) + `
    <boundaryEvent id="cancelled" attachedToRef="t"><cancelEventDefinition/></boundaryEvent>
    <sequenceFlow id="f2" sourceRef="cancelled" targetRef="e"/>`));
    expect(warnings).toEqual([]);
    expect(node(p, 't')).toEqual({
      id: 't', type: 'subProcess', name: 'Pay', in: ['f0'], out: ['f1'], default: null, boundary: ['cancelled'], transaction: true, start: 'ts',
      inputs: [{ target: 'attempt', value: { literal: '1' } }],
      loop: { sequential: true, cardinality: { literal: 2 } },
    });
    expect(node(p, 'inner')).toEqual({
      id: 'inner', type: 'subProcess', name: null, in: ['g0'], out: ['g2'], default: null, boundary: ['innerCancelled'], transaction: true, start: 'is', scope: 't',
    });
    expect(node(p, 'ic')).toEqual({ id: 'ic', type: 'endEvent', name: null, in: ['h0'], out: [], terminate: false, scope: 'inner', event: { kind: 'cancel' } });
    expect(node(p, 'innerCancelled')).toEqual({
      id: 'innerCancelled', type: 'boundaryEvent', name: null, in: [], out: ['g1'], attachedTo: 'inner', cancelActivity: true, scope: 't', event: { kind: 'cancel' },
    });
    expect(node(p, 'tc')).toMatchObject({ scope: 't', event: { kind: 'cancel' } });
    expect(node(p, 'cancelled')).toEqual({
      id: 'cancelled', type: 'boundaryEvent', name: null, in: [], out: ['f2'], attachedTo: 't', cancelActivity: true, event: { kind: 'cancel' },
    });
  });

  test('a cancel boundary event on a transaction without cancel end event is accepted with a warning', async () => {
    const { warnings } = await compileOk('w.bpmn', model(around(`
    <transaction id="t"><startEvent id="ts"/><sequenceFlow id="g0" sourceRef="ts" targetRef="te"/><endEvent id="te"/></transaction>`) + `
    <boundaryEvent id="cancelled" attachedToRef="t"><cancelEventDefinition/></boundaryEvent>
    <sequenceFlow id="f2" sourceRef="cancelled" targetRef="e"/>`));
    expect(warnings).toEqual(['w.bpmn: element cancelled: cancel boundary event never fires: transaction t has no cancel end event']);
  });

  test('refused: cancel end events outside a transaction, cancel boundary events off transactions, non-interrupting or twice, no cancel boundary', async () => {
    expect(await problemsOf(model(`
    <startEvent id="s"/><sequenceFlow id="f0" sourceRef="s" targetRef="tx"/>
    <transaction id="tx">
      <startEvent id="ts"/><sequenceFlow id="g0" sourceRef="ts" targetRef="nested"/>
      <subProcess id="nested">
        <startEvent id="ns"/><sequenceFlow id="h0" sourceRef="ns" targetRef="nestedCancel"/>
        <endEvent id="nestedCancel"><cancelEventDefinition/></endEvent>
      </subProcess>
      <sequenceFlow id="g1" sourceRef="nested" targetRef="txCancel"/><endEvent id="txCancel"><cancelEventDefinition/></endEvent>
      <subProcess id="esp" triggeredByEvent="true">
        <startEvent id="es"><signalEventDefinition signalRef="S"/></startEvent>
        <sequenceFlow id="h1" sourceRef="es" targetRef="espCancel"/><endEvent id="espCancel"><cancelEventDefinition/></endEvent>
      </subProcess>
    </transaction>
    <sequenceFlow id="f1" sourceRef="tx" targetRef="t"/>
    <task id="t"/><sequenceFlow id="f2" sourceRef="t" targetRef="tx2"/>
    <transaction id="tx2"><startEvent id="t2s"/><sequenceFlow id="k0" sourceRef="t2s" targetRef="t2c"/><endEvent id="t2c"><cancelEventDefinition/></endEvent></transaction>
    <sequenceFlow id="f3" sourceRef="tx2" targetRef="topCancel"/>
    <endEvent id="topCancel"><cancelEventDefinition/></endEvent>
    <boundaryEvent id="onTask" attachedToRef="t"><cancelEventDefinition/></boundaryEvent>
    <boundaryEvent id="onSub" attachedToRef="nested"><cancelEventDefinition/></boundaryEvent>
    <boundaryEvent id="nonInterrupting" attachedToRef="tx2" cancelActivity="false"><cancelEventDefinition/></boundaryEvent>
    <boundaryEvent id="first" attachedToRef="tx"><cancelEventDefinition/></boundaryEvent>
    <boundaryEvent id="second" attachedToRef="tx"><cancelEventDefinition/></boundaryEvent>
    <intermediateThrowEvent id="cancelThrow"><cancelEventDefinition/></intermediateThrowEvent>
    <transaction id="esTx" triggeredByEvent="true"><startEvent id="ets"><signalEventDefinition signalRef="S"/></startEvent></transaction>
    <transaction id="noStart"><task id="lonely"/></transaction>`, '<signal id="S" name="s"/>'))).toEqual([
      'inline.bpmn: element nestedCancel: cancel end events are only allowed directly inside a transaction (bpmn:transaction); this one is in subprocess nested',
      'inline.bpmn: element espCancel: cancel end events are only allowed directly inside a transaction (bpmn:transaction); this one is in event subprocess esp',
      'inline.bpmn: element topCancel: cancel end events are only allowed directly inside a transaction (bpmn:transaction); this one is in process p',
      'inline.bpmn: element nonInterrupting: cancel boundary events are always interrupting (cancelActivity="false" is invalid BPMN)',
      'inline.bpmn: element cancelThrow: cancel intermediate throw events (bpmn:cancelEventDefinition) are not supported in this version',
      'inline.bpmn: element esTx: a transaction cannot be an event subprocess (triggeredByEvent="true")',
      'inline.bpmn: element noStart: transaction has no start event (exactly one none start event is required)',
      'inline.bpmn: element onTask: attachedToRef "t" is a bpmn:task; cancel boundary events are attached to transactions (bpmn:transaction)',
      'inline.bpmn: element onSub: attachedToRef "nested" is in transaction tx; a boundary event must be in the same scope as its activity (this one is in process p)',
      'inline.bpmn: element second: several cancel boundary events on tx',
    ]);
  });

  test('refused: a transaction with a cancel end event but no cancel boundary event; cancel boundary on a subprocess', async () => {
    expect(await problemsOf(model(`
    <startEvent id="s"/><sequenceFlow id="f0" sourceRef="s" targetRef="tx"/>
    <transaction id="tx">
      <startEvent id="ts"/><sequenceFlow id="g0" sourceRef="ts" targetRef="c1"/><endEvent id="c1"><cancelEventDefinition/></endEvent>
      <endEvent id="c2"><cancelEventDefinition/></endEvent>
    </transaction>
    <sequenceFlow id="f1" sourceRef="tx" targetRef="sub"/>
    <subProcess id="sub"><startEvent id="ss"/><sequenceFlow id="g1" sourceRef="ss" targetRef="se"/><endEvent id="se"/></subProcess>
    <sequenceFlow id="f2" sourceRef="sub" targetRef="e"/><endEvent id="e"/>
    <boundaryEvent id="onSub" attachedToRef="sub"><cancelEventDefinition/></boundaryEvent>
    <sequenceFlow id="f3" sourceRef="onSub" targetRef="e"/>`))).toEqual([
      'inline.bpmn: element onSub: attachedToRef "sub" is a bpmn:subProcess; cancel boundary events are attached to transactions (bpmn:transaction)',
      'inline.bpmn: element tx: transaction has a cancel end event (c1, c2) but no cancel boundary event',
    ]);
  });
});
