/**
 * BPMN compiler, issue 4: timer, message, signal, error and escalation events,
 * receive and send tasks, event-based gateways, asynchronous continuations and
 * user task escalation, compiled to graph.ts (event, topic, asyncBefore/After,
 * jobRetry, taskEscalation, start / eventStarts) or refused with every problem.
 * The refusals of invalid-events.bpmn are listed in bpmn-compiler.test.ts.
 */
import fs from 'node:fs';
import path from 'node:path';
import { compileBpmn, formatProblems } from '../../compiler';
import type { CompiledNode, CompiledProcess, CompileProblem } from '../../compiler/graph';
import { cronProblem, isIsoDateTime, isIsoDuration, parseRetryCycle, timerLiteralProblem } from '../../compiler/timer';
import { around, compileOk, lines, model, node, problemsOf } from './compiler-support';

const FIXTURES = path.join(__dirname, '..', 'fixtures', 'bpmn');

const START = '<startEvent id="s"/><sequenceFlow id="f0" sourceRef="s" targetRef="t"/>';
const expr = (src: string, varName: string): { expr: { src: string; path: string; vars: string[] } } => ({
  expr: { src, path: `$."${varName}"`, vars: [varName] },
});

// ---------------------------------------------------------------------------
// Camunda Modeler fixtures
// ---------------------------------------------------------------------------

describe('camunda7-events.bpmn (Camunda 7 model)', () => {
  let p: CompiledProcess;
  let warnings: string[];
  beforeAll(async () => {
    ({ process: p, warnings } = await compileOk('camunda7-events.bpmn', fs.readFileSync(path.join(FIXTURES, 'camunda7-events.bpmn'))));
  });

  test('no warnings; none start plus message, timer and signal starts (document order)', () => {
    expect(warnings).toEqual([]);
    expect(p.key).toBe('order-events');
    expect(p.graph.start).toBe('StartEvent_1');
    expect(p.graph.eventStarts).toEqual(['StartEvent_Order', 'StartEvent_Nightly', 'StartEvent_Restock']);
  });

  test('start events: asyncBefore on the none start, message / timer cycle (cron) / signal starts', () => {
    expect(node(p, 'StartEvent_1')).toEqual({
      id: 'StartEvent_1', type: 'startEvent', name: 'Order entered', in: [], out: ['Flow_Start'], asyncBefore: true,
    });
    expect(node(p, 'StartEvent_Order')).toEqual({
      id: 'StartEvent_Order', type: 'startEvent', name: 'Order placed', in: [], out: ['Flow_Message'],
      event: { kind: 'message', name: { literal: 'order-placed' }, correlationKey: null },
    });
    expect(node(p, 'StartEvent_Nightly').event).toEqual({ kind: 'timer', timer: { kind: 'cycle', value: { literal: '0 0 2 ? * MON-FRI' } } });
    expect(node(p, 'StartEvent_Restock').event).toEqual({ kind: 'signal', name: { literal: 'restock' } });
  });

  test('user task: escalation properties, other properties ignored; timer (non-interrupting) and message boundary events', () => {
    expect(node(p, 'Task_Review')).toEqual({
      id: 'Task_Review', type: 'userTask', name: 'Review order',
      in: ['Flow_Start', 'Flow_Message', 'Flow_Nightly'], out: ['Flow_Reviewed'], default: null,
      boundary: ['Event_Remind', 'Event_Cancelled'],
      userTask: { candidateGroups: { literal: ['sales'] }, dueDate: { literal: 'P1D' } },
      taskEscalation: { after: { literal: 'PT4H' }, addCandidateGroups: { literal: ['managers', 'leads'] } },
    });
    expect(node(p, 'Event_Remind')).toEqual({
      id: 'Event_Remind', type: 'boundaryEvent', name: '2 hours', in: [], out: ['Flow_Remind'],
      attachedTo: 'Task_Review', cancelActivity: false,
      event: { kind: 'timer', timer: { kind: 'duration', value: { literal: 'PT2H' } } },
    });
    expect(node(p, 'Event_Cancelled')).toEqual({
      id: 'Event_Cancelled', type: 'boundaryEvent', name: 'Order cancelled', in: [], out: ['Flow_Cancelled'],
      attachedTo: 'Task_Review', cancelActivity: true,
      event: { kind: 'message', name: { literal: 'order-cancelled' }, correlationKey: null },
    });
  });

  test('external task: asyncAfter, failedJobRetryTimeCycle, error and non-interrupting escalation boundary events', () => {
    expect(node(p, 'Task_Charge')).toEqual({
      id: 'Task_Charge', type: 'serviceTask', name: 'Charge card', in: ['Flow_Reviewed'], out: ['Flow_Charged'],
      default: null, boundary: ['Event_Declined', 'Event_Slow'], topic: 'charge',
      asyncAfter: true, jobRetry: { retries: 5, delay: 'PT10M' },
    });
    expect(node(p, 'Event_Declined')).toEqual({
      id: 'Event_Declined', type: 'boundaryEvent', name: 'Card declined', in: [], out: ['Flow_Declined'],
      attachedTo: 'Task_Charge', cancelActivity: true,
      error: { code: 'CARD_DECLINED' }, event: { kind: 'error', code: 'CARD_DECLINED' },
    });
    expect(node(p, 'Event_Slow')).toMatchObject({ cancelActivity: false, event: { kind: 'escalation', code: 'LATE' } });
    expect(node(p, 'Event_Slow').error).toBeUndefined();
  });

  test('end events: error, escalation, signal (expression name), message with correlationKey property', () => {
    expect(node(p, 'EndEvent_Failed')).toEqual({
      id: 'EndEvent_Failed', type: 'endEvent', name: 'Order failed', in: ['Flow_Declined'], out: [], terminate: false,
      event: { kind: 'error', code: 'ORDER_FAILED' },
    });
    expect(node(p, 'EndEvent_Late').event).toEqual({ kind: 'escalation', code: 'LATE' });
    expect(node(p, 'EndEvent_Done').event).toEqual({ kind: 'signal', name: expr('${doneSignal}', 'doneSignal') });
    expect(node(p, 'EndEvent_Aborted')).toEqual({
      id: 'EndEvent_Aborted', type: 'endEvent', name: 'Aborted', in: ['Flow_Aborted'], out: [], terminate: false,
      event: { kind: 'message', name: { literal: 'order-aborted' }, correlationKey: expr('${orderId}', 'orderId').expr },
    });
    expect(node(p, 'EndEvent_Restocked')).toEqual({
      id: 'EndEvent_Restocked', type: 'endEvent', name: 'Restocked', in: ['Flow_Restock'], out: [], terminate: false,
    });
  });

  test('intermediate throw events: external message (topic on the messageEventDefinition), signal, escalation, none', () => {
    expect(node(p, 'Event_Notify')).toEqual({
      id: 'Event_Notify', type: 'intermediateThrowEvent', name: 'Notify customer', in: ['Flow_Charged'], out: ['Flow_Notified'],
      topic: 'notify', event: { kind: 'message', name: { literal: 'order-charged' }, correlationKey: null },
    });
    expect(node(p, 'Event_Reminder').event).toEqual({ kind: 'signal', name: { literal: 'review-reminder' } });
    expect(node(p, 'Event_Escalate').event).toEqual({ kind: 'escalation', code: 'DONE' });
    expect(node(p, 'Event_Shipped')).toEqual({
      id: 'Event_Shipped', type: 'intermediateThrowEvent', name: 'Shipped', in: ['Flow_Ship'], out: ['Flow_Shipped'],
    });
  });

  test('event-based gateway to a message catch (expression name), a timer catch (expression) and a receive task', () => {
    expect(node(p, 'Gateway_Wait')).toEqual({
      id: 'Gateway_Wait', type: 'eventBasedGateway', name: 'Payment?', in: ['Flow_Notified'],
      out: ['Flow_ToPaid', 'Flow_ToTimeout', 'Flow_ToConfirmation'],
    });
    expect(node(p, 'Event_Paid')).toEqual({
      id: 'Event_Paid', type: 'intermediateCatchEvent', name: 'Payment received', in: ['Flow_ToPaid'], out: ['Flow_Paid'],
      event: { kind: 'message', name: expr('${paymentMessage}', 'paymentMessage'), correlationKey: null },
    });
    expect(node(p, 'Event_Timeout').event).toEqual({ kind: 'timer', timer: { kind: 'duration', value: expr('${paymentTimeout}', 'paymentTimeout') } });
    expect(node(p, 'Task_Confirmation')).toEqual({
      id: 'Task_Confirmation', type: 'receiveTask', name: 'Receive bank confirmation', in: ['Flow_ToConfirmation'], out: ['Flow_Confirmed'],
      default: null, boundary: ['Event_Abort'],
      event: { kind: 'message', name: { literal: 'bank-confirmation' }, correlationKey: null },
    });
    expect(node(p, 'Event_Abort')).toMatchObject({ attachedTo: 'Task_Confirmation', cancelActivity: true, event: { kind: 'signal', name: { literal: 'abort-all' } } });
  });

  test('send task publishing a message; timer date catch event', () => {
    expect(node(p, 'Task_Ship')).toEqual({
      id: 'Task_Ship', type: 'sendTask', name: 'Ship order', in: ['Flow_Paid', 'Flow_Confirmed'], out: ['Flow_Ship'],
      default: null, boundary: [],
      event: { kind: 'message', name: { literal: 'order-shipped' }, correlationKey: expr('${orderId}', 'orderId').expr },
    });
    expect(node(p, 'Task_Ship').topic).toBeUndefined();
    expect(node(p, 'Event_Settle').event).toEqual({ kind: 'timer', timer: { kind: 'date', value: { literal: '2030-01-15T09:00:00Z' } } });
  });
});

describe('camunda8-events.bpmn (Camunda 8 model)', () => {
  let p: CompiledProcess;
  let warnings: string[];
  beforeAll(async () => {
    ({ process: p, warnings } = await compileOk('camunda8-events.bpmn', fs.readFileSync(path.join(FIXTURES, 'camunda8-events.bpmn'))));
  });

  test('no warnings; start events: none, timer date, message (no correlation key on a start), timer cycle', () => {
    expect(warnings).toEqual([]);
    expect(p.versionTag).toBe('1.0');
    expect(p.graph.start).toBe('StartEvent_1');
    expect(p.graph.eventStarts).toEqual(['StartEvent_Timer', 'StartEvent_Message', 'StartEvent_Hourly']);
    expect(node(p, 'StartEvent_Timer').event).toEqual({ kind: 'timer', timer: { kind: 'date', value: { literal: '2030-01-01T00:00:00+01:00' } } });
    expect(node(p, 'StartEvent_Message').event).toEqual({ kind: 'message', name: { literal: 'order-placed' }, correlationKey: null });
    expect(node(p, 'StartEvent_Hourly').event).toEqual({ kind: 'timer', timer: { kind: 'cycle', value: { literal: 'R/PT1H' } } });
  });

  test('zeebe:properties escalation (FEEL, FEEL string list); non-interrupting R3 cycle boundary', () => {
    expect(node(p, 'Task_Approve').taskEscalation).toEqual({
      after: expr('=escalationDelay', 'escalationDelay'),
      addCandidateGroups: { literal: ['managers'] },
      reassignTo: expr('=supervisor', 'supervisor'),
    });
    expect(node(p, 'Event_Remind')).toMatchObject({
      attachedTo: 'Task_Approve', cancelActivity: false,
      event: { kind: 'timer', timer: { kind: 'cycle', value: { literal: 'R3/PT1H' } } },
    });
  });

  test('message throw / end events with zeebe:taskDefinition are external tasks (no messageRef: no event)', () => {
    expect(node(p, 'Event_SendReminder')).toEqual({
      id: 'Event_SendReminder', type: 'intermediateThrowEvent', name: 'Send reminder', in: ['Flow_Remind'], out: ['Flow_Reminded'], topic: 'send-reminder',
      headers: { template: 'reminder' },
    });
    expect(node(p, 'EndEvent_Withdrawn')).toEqual({
      id: 'EndEvent_Withdrawn', type: 'endEvent', name: 'Withdrawn', in: ['Flow_Withdrawn'], out: [], terminate: false, topic: 'publish-withdrawal',
    });
  });

  test('zeebe:subscription correlationKey (FEEL, nested, constant) on catch events, receive tasks and boundaries', () => {
    expect(node(p, 'Event_Payment').event).toEqual({
      kind: 'message', name: { literal: 'payment-received' }, correlationKey: expr('=orderId', 'orderId').expr,
    });
    expect(node(p, 'Task_Receipt')).toMatchObject({
      type: 'receiveTask', boundary: ['Event_Withdrawn', 'Event_AnyEscalation'],
      event: {
        kind: 'message',
        name: expr('=receiptMessage', 'receiptMessage'),
        correlationKey: { src: '=order.id', path: '$."order"."id"', vars: ['order'] },
      },
    });
    expect(node(p, 'Event_Withdrawn').event).toEqual({
      kind: 'message', name: { literal: 'order-withdrawn' }, correlationKey: { src: '="fixed-key"', path: '"fixed-key"', vars: [] },
    });
    expect(node(p, 'Event_AnyEscalation')).toMatchObject({ cancelActivity: false, event: { kind: 'escalation', code: null } });
  });

  test('event-based gateway targets: message, FEEL string literal timer, signal with FEEL name', () => {
    expect(node(p, 'Gateway_Event').out).toEqual(['Flow_ToPayment', 'Flow_ToDeadline', 'Flow_ToCancel']);
    expect(node(p, 'Event_Deadline').event).toEqual({ kind: 'timer', timer: { kind: 'duration', value: { literal: 'PT15M' } } });
    expect(node(p, 'Event_Cancel').event).toEqual({ kind: 'signal', name: expr('=cancelSignal', 'cancelSignal') });
  });

  test('escalation / error / terminate end events; error boundary on a job worker task; message and signal throws', () => {
    expect(node(p, 'EndEvent_Late').event).toEqual({ kind: 'escalation', code: 'LATE' });
    expect(node(p, 'EndEvent_Cancelled').event).toEqual({ kind: 'error', code: 'CANCELLED' });
    expect(node(p, 'EndEvent_Terminated')).toMatchObject({ terminate: true, event: { kind: 'terminate' } });
    expect(node(p, 'Event_NotifyFailed')).toMatchObject({ error: { code: 'NOTIFY_FAILED' }, event: { kind: 'error', code: 'NOTIFY_FAILED' } });
    expect(node(p, 'Event_Publish')).toEqual({
      id: 'Event_Publish', type: 'intermediateThrowEvent', name: 'Publish order', in: ['Flow_Notified'], out: ['Flow_Published'],
      event: { kind: 'message', name: { literal: 'order-published' }, correlationKey: expr('=orderId', 'orderId').expr },
    });
    expect(node(p, 'Event_Done').event).toEqual({ kind: 'signal', name: { literal: 'order-done' } });
  });
});

// ---------------------------------------------------------------------------
// Inline models
// ---------------------------------------------------------------------------

describe('start events', () => {
  test('only event start events: start is null; eventStarts in document order', async () => {
    const { process: p } = await compileOk('inline.bpmn', model(`
      <startEvent id="byTimer"><timerEventDefinition><timeDuration>PT1H</timeDuration></timerEventDefinition></startEvent>
      <startEvent id="byMessage"><messageEventDefinition messageRef="M"/></startEvent>
      <sequenceFlow id="f1" sourceRef="byTimer" targetRef="e"/><sequenceFlow id="f2" sourceRef="byMessage" targetRef="e"/>
      <endEvent id="e"/>`, '<message id="M" name="go"/>'));
    expect(p.graph.start).toBeNull();
    expect(p.graph.eventStarts).toEqual(['byTimer', 'byMessage']);
  });

  test('a none start only: no eventStarts field', async () => {
    const { process: p } = await compileOk('inline.bpmn', model(`${START}<task id="t"/>`));
    expect(p.graph).not.toHaveProperty('eventStarts');
  });

  test('several none starts stay refused next to event starts; a refused start event counts as a start event', async () => {
    expect(await problemsOf(model(`
      <startEvent id="a"/><startEvent id="b"/>
      <startEvent id="m"><messageEventDefinition messageRef="M"/></startEvent>`, '<message id="M" name="go"/>'))).toEqual([
      'inline.bpmn: element p: process has 2 none start events (a, b); exactly one is supported in this version',
    ]);
    expect(await problemsOf(model(`
      <startEvent id="c"><compensateEventDefinition/></startEvent>`))).toEqual([
      'inline.bpmn: element c: compensation start events (bpmn:compensateEventDefinition) are not supported in this version',
    ]);
  });

  test('a conditional start event of the process is an event start (started by evaluate_conditions)', async () => {
    const { process: p } = await compileOk('inline.bpmn', model(`
      <startEvent id="c"><conditionalEventDefinition><condition>\${amount &gt; 1000}</condition></conditionalEventDefinition></startEvent>
      <sequenceFlow id="f1" sourceRef="c" targetRef="t"/><userTask id="t"/>`));
    expect(p.graph.start).toBeNull();
    expect(p.graph.eventStarts).toEqual(['c']);
    expect(node(p, 'c').event).toMatchObject({ kind: 'conditional', condition: { vars: ['amount'] } });
  });

  test('a message shared by a start event and a catch event: the start event has no correlation key', async () => {
    const { process: p } = await compileOk('inline.bpmn', model(`
      <startEvent id="s"><messageEventDefinition messageRef="M"/></startEvent>
      <sequenceFlow id="f1" sourceRef="s" targetRef="c"/>
      <intermediateCatchEvent id="c"><messageEventDefinition messageRef="M"/></intermediateCatchEvent>`,
    '<message id="M" name="order"><extensionElements><zeebe:subscription correlationKey="=orderId"/></extensionElements></message>'));
    expect(node(p, 's').event).toEqual({ kind: 'message', name: { literal: 'order' }, correlationKey: null });
    expect(node(p, 'c').event).toEqual({ kind: 'message', name: { literal: 'order' }, correlationKey: expr('=orderId', 'orderId').expr });
  });
});

describe('timers', () => {
  const catchTimer = (field: string, body: string): string => model(`${START}
    <intermediateCatchEvent id="t"><timerEventDefinition><${field}>${body}</${field}></timerEventDefinition></intermediateCatchEvent>`);

  test('literals of every kind compile to { literal }', async () => {
    for (const [field, kind, text] of [
      ['timeDate', 'date', '2030-01-15T09:00'],
      ['timeDuration', 'duration', 'P2W'],
      ['timeCycle', 'cycle', 'R5/2030-01-01T08:00:00Z/P1D'],
      ['timeCycle', 'cycle', '*/15 * * * *'],
      ['timeCycle', 'cycle', '0 0/30 8-18 ? JAN-MAR,DEC mon-fri 2030'],
    ] as const) {
      const { process: p } = await compileOk('inline.bpmn', catchTimer(field, ` ${text} `));
      expect(node(p, 't').event).toEqual({ kind: 'timer', timer: { kind, value: { literal: text } } });
    }
  });

  test('FEEL expressions compile like other values; FEEL string literals are checked as literals', async () => {
    const { process: p } = await compileOk('inline.bpmn', catchTimer('timeDate', '=followUp.at'));
    expect(node(p, 't').event).toEqual({
      kind: 'timer', timer: { kind: 'date', value: { expr: { src: '=followUp.at', path: '$."followUp"."at"', vars: ['followUp'] } } },
    });
    expect(await problemsOf(catchTimer('timeDuration', '="P1X"'))).toEqual([
      'inline.bpmn: element t: timeDuration="P1X" is not an ISO 8601 duration (e.g. PT5M, P1DT12H, P2W)',
    ]);
  });

  test('a cycle on a catch event or an interrupting boundary event fires once: warning', async () => {
    const { warnings } = await compileOk('inline.bpmn', model(`${START}
      <intermediateCatchEvent id="t"><timerEventDefinition><timeCycle>R3/PT1M</timeCycle></timerEventDefinition></intermediateCatchEvent>
      <sequenceFlow id="f1" sourceRef="t" targetRef="u"/><userTask id="u"/>
      <boundaryEvent id="b1" attachedToRef="u"><timerEventDefinition><timeCycle>R3/PT1M</timeCycle></timerEventDefinition></boundaryEvent>
      <boundaryEvent id="b2" attachedToRef="u" cancelActivity="false"><timerEventDefinition><timeCycle>R3/PT1M</timeCycle></timerEventDefinition></boundaryEvent>`));
    expect(warnings).toEqual([
      'inline.bpmn: element t: timeCycle on an intermediate catch event: the event fires once, at the first occurrence of the cycle',
      'inline.bpmn: element b1: timeCycle on an interrupting boundary event: the event fires once, at the first occurrence of the cycle (set cancelActivity="false" to repeat)',
    ]);
  });

  test('refused: several time fields, empty body, a date alone', async () => {
    expect(await problemsOf(model(`${START}
      <intermediateCatchEvent id="t"><timerEventDefinition><timeDate>2030-01-01T00:00:00Z</timeDate><timeDuration>PT1H</timeDuration></timerEventDefinition></intermediateCatchEvent>
      <intermediateCatchEvent id="u"><timerEventDefinition><timeDuration> </timeDuration></timerEventDefinition></intermediateCatchEvent>`))).toEqual([
      'inline.bpmn: element t: timer event with timeDate and timeDuration; set exactly one of timeDate, timeDuration, timeCycle',
      'inline.bpmn: element u: empty timeDuration',
    ]);
  });

  test('literal checks (compiler/timer.ts)', () => {
    for (const ok of ['2030-01-15T09:00:00Z', '2030-01-15T09:00', '2030-01-15T09:00:00.5+0130', '2028-02-29T00:00:00-15:59']) expect([ok, isIsoDateTime(ok)]).toEqual([ok, true]);
    for (const bad of ['2030-01-15', '2030-02-30T00:00', '2030-01-15T24:00', '2030-01-15T09:00+16:00', 'now']) expect([bad, isIsoDateTime(bad)]).toEqual([bad, false]);
    expect(isIsoDateTime('2030-01-15', true)).toBe(true);
    for (const ok of ['PT0S', 'P1W', 'P1Y2M3W4DT5H6M7.5S', 'PT1,5H']) expect([ok, isIsoDuration(ok)]).toEqual([ok, true]);
    for (const bad of ['P', 'PT', 'P1H', 'PT1D', '1H', 'p1d']) expect([bad, isIsoDuration(bad)]).toEqual([bad, false]);

    const cycles: Array<[string, string | null]> = [
      ['R/PT1M', null],
      ['R12/P1D', null],
      ['R/2030-01-01T00:00:00Z/PT6H', null],
      ['R0/PT1H', 'repeats zero times (R0)'],
      ['R/PT0S', 'repeats every PT0S; the interval must be longer than zero'],
      ['R3', 'is not a supported repeating interval (R[n]/duration or R[n]/start/duration, e.g. R3/PT10M, R/2030-01-01T08:00:00Z/P1D)'],
      ['R3/PT1H/2030-01-01T00:00:00Z', 'is not a supported repeating interval (R[n]/duration or R[n]/start/duration, e.g. R3/PT10M, R/2030-01-01T08:00:00Z/P1D): "PT1H" is not an ISO 8601 date-time'],
      ['R/tomorrow/PT1H', 'is not a supported repeating interval (R[n]/duration or R[n]/start/duration, e.g. R3/PT10M, R/2030-01-01T08:00:00Z/P1D): "tomorrow" is not an ISO 8601 date-time'],
      ['0 9 * * 1-5', null],
      ['0 9 * * 0,7', null],
      ['0 0 9 * * *', null],
      ['0 0 9 ? * SUN', null],
      ['0 0 12 1/5 * ?', null],
      ['0 15 10 ? * MON-FRI 2030-2035', null],
      ['0 0 9 ? * 1', 'is not a supported cron expression: day-of-week "1" uses day numbers, which Quartz (1 = SUN) and Spring (0 = SUN) read differently; write day names (SUN-SAT, e.g. MON-FRI)'],
      ['0 0 9 ? * 6#3', 'is not a supported cron expression: day-of-week "6#3" uses L, W or #, which are not supported'],
      ['0 0 9 15W * ?', 'is not a supported cron expression: day-of-month "15W" uses L, W or #, which are not supported'],
      ['0 0 9 ? * FRIL', 'is not a supported cron expression: day-of-week "FRIL" uses L, W or #, which are not supported'],
      ['60 * * * *', 'is not a supported cron expression: minute "60" has 60 outside 0-59'],
      ['0 0 25 * * ?', 'is not a supported cron expression: hour "25" has 25 outside 0-23'],
      ['0 0 9 ? FOO *', 'is not a supported cron expression: month "FOO" is not valid ("FOO" is not a number or a name)'],
      ['0 0 9 * * 1-5 2030 x', 'is neither a repeating interval (R[n]/…) nor a cron expression (5 fields: minute hour day-of-month month day-of-week; 6 or 7 fields: seconds first, year last)'],
      ['0 ? * * *', 'is not a supported cron expression: hour "?" uses ?, which is only allowed in the day-of-month and day-of-week fields'],
      ['0 0 9 ? * FRI-MON', 'is not a supported cron expression: day-of-week "FRI-MON" has a range FRI-MON that runs backwards'],
      ['*/0 * * * *', 'is not a supported cron expression: minute "*/0" has step /0 outside 1-59'],
      ['@daily', 'is not supported: cron macros (@daily, @hourly, …) are not supported; write the fields (e.g. 0 0 0 * * ?)'],
      ['every day', 'is neither a repeating interval (R[n]/…) nor a cron expression (5 fields: minute hour day-of-month month day-of-week; 6 or 7 fields: seconds first, year last)'],
    ];
    for (const [text, reason] of cycles) expect([text, timerLiteralProblem('cycle', text)]).toEqual([text, reason]);
    expect(cronProblem('0 0 0 1 1 ? 1969')).toBe('is not a supported cron expression: year "1969" has 1969 outside 1970-2099');
  });
});

describe('messages and signals', () => {
  test('zeebe:subscription correlationKey must be an expression; compile errors are reported once, on the message', async () => {
    expect(await problemsOf(model(`${START}
      <intermediateCatchEvent id="t"><messageEventDefinition messageRef="M"/></intermediateCatchEvent>
      <receiveTask id="r" messageRef="M"/>
      <intermediateCatchEvent id="u"><messageEventDefinition messageRef="N"/></intermediateCatchEvent>
      <intermediateCatchEvent id="v"><messageEventDefinition messageRef="O"/></intermediateCatchEvent>`, `
      <message id="M" name="a"><extensionElements><zeebe:subscription correlationKey="orderId"/></extensionElements></message>
      <message id="N" name="b"><extensionElements><zeebe:subscription correlationKey="=order."/></extensionElements></message>
      <message id="O" name="=name("/>`))).toEqual([
      'inline.bpmn: element M: zeebe:subscription correlationKey="orderId" is not an expression; write =name to correlate on a variable, or ="orderId" for a constant key',
      'inline.bpmn: element N: zeebe:subscription correlationKey: cannot compile expression "=order.": syntax error: unexpected end of expression',
      'inline.bpmn: element O: name: cannot compile expression "=name(": syntax error: unexpected end of expression',
    ]);
  });

  test('message throw with camunda:type="external" and a messageRef: topic and event (correlationKey property ignored)', async () => {
    const { process: p } = await compileOk('inline.bpmn', model(`${START}
      <intermediateThrowEvent id="t">
        <extensionElements><camunda:properties><camunda:property name="correlationKey" value="\${id}"/></camunda:properties></extensionElements>
        <messageEventDefinition messageRef="M" camunda:type="external" camunda:topic=" publish "/>
      </intermediateThrowEvent>
      <sequenceFlow id="f1" sourceRef="t" targetRef="e"/>
      <endEvent id="e"><extensionElements><zeebe:taskDefinition type="end-job"/></extensionElements><messageEventDefinition messageRef="M"/></endEvent>`,
    '<message id="M" name="done"/>'));
    expect(node(p, 't')).toMatchObject({ topic: 'publish', event: { kind: 'message', name: { literal: 'done' }, correlationKey: null } });
    expect(node(p, 'e')).toMatchObject({ topic: 'end-job', event: { kind: 'message', name: { literal: 'done' }, correlationKey: null } });
  });

  test('message throw implementation problems: no topic, camunda:type other than external, correlationKey twice', async () => {
    expect(await problemsOf(model(`${START}
      <intermediateThrowEvent id="t"><messageEventDefinition messageRef="M" camunda:type="external"/></intermediateThrowEvent>
      <endEvent id="e"><messageEventDefinition camunda:type="connector"/></endEvent>
      <sendTask id="k" messageRef="M"><extensionElements>
        <camunda:properties><camunda:property name="correlationKey" value="\${a}"/></camunda:properties>
        <zeebe:properties><zeebe:property name="correlationKey" value="=a"/></zeebe:properties>
      </extensionElements></sendTask>`, '<message id="M" name="m"/>'))).toEqual([
      'inline.bpmn: element t: external task without topic (set camunda:topic)',
      'inline.bpmn: element e: camunda:type="connector" is not supported; only external tasks (camunda:type="external" camunda:topic="...")',
      'inline.bpmn: element k: correlationKey is set more than once (camunda:property, zeebe:property)',
    ]);
  });

  test('send task as external task keeps its messageRef as event', async () => {
    const { process: p } = await compileOk('inline.bpmn', model(`${START}
      <sendTask id="t" messageRef="M" camunda:type="external" camunda:topic="mail"/>`, '<message id="M" name="=kind"/>'));
    expect(node(p, 't')).toEqual({
      id: 't', type: 'sendTask', name: null, in: ['f0'], out: [], default: null, boundary: [], topic: 'mail',
      event: { kind: 'message', name: expr('=kind', 'kind'), correlationKey: null },
    });
  });

  test('signal throw with zeebe:taskDefinition is refused; camunda:async on a signal definition warns', async () => {
    expect(await problemsOf(model(`${START}
      <intermediateThrowEvent id="t"><extensionElements><zeebe:taskDefinition type="x"/></extensionElements><signalEventDefinition signalRef="S"/></intermediateThrowEvent>`,
    '<signal id="S" name="go"/>'))).toEqual([
      'inline.bpmn: element t: extension element zeebe:taskDefinition is not supported in this version',
    ]);
    const { process: p, warnings } = await compileOk('inline.bpmn', model(`${START}
      <intermediateThrowEvent id="t"><signalEventDefinition signalRef="S" camunda:async="true"/></intermediateThrowEvent>`, '<signal id="S" name="go"/>'));
    expect(warnings).toEqual(['inline.bpmn: element t: camunda:async on bpmn:signalEventDefinition is ignored: signals are delivered in the transaction that throws them']);
    expect(node(p, 't').asyncBefore).toBeUndefined();
  });

  test('signal references: unknown signal, signal without name', async () => {
    expect(await problemsOf(model(`${START}
      <intermediateCatchEvent id="t"><signalEventDefinition signalRef="M"/></intermediateCatchEvent>
      <endEvent id="e"><signalEventDefinition signalRef="S"/></endEvent>
      <endEvent id="e2"><signalEventDefinition signalRef="S"/></endEvent>`, '<message id="M" name="m"/><signal id="S"/>'))).toEqual([
      'inline.bpmn: element t: signalRef "M" does not reference a bpmn:signal',
      'inline.bpmn: element S: bpmn:signal without name',
    ]);
  });
});

describe('boundary events', () => {
  const TASKS = [
    ['userTask', ''],
    ['receiveTask', ' messageRef="M"'],
    ['serviceTask', ' camunda:type="external" camunda:topic="w"'],
    ['sendTask', ' messageRef="M"'],
    ['businessRuleTask', ' camunda:type="external" camunda:topic="w"'],
    ['task', ''],
    ['manualTask', ''],
  ] as const;
  const ROOTS = '<message id="M" name="m"/><message id="C" name="cancel"/><signal id="S" name="s"/><error id="E" errorCode="E1"/><escalation id="X" escalationCode="X1"/>';

  test.each(TASKS)('every kind, interrupting and not, on a %s', async (type, attrs) => {
    const { process: p } = await compileOk('inline.bpmn', model(`${START}
      <${type} id="t"${attrs}/>
      <boundaryEvent id="timer" attachedToRef="t" cancelActivity="false"><timerEventDefinition><timeDuration>PT1H</timeDuration></timerEventDefinition></boundaryEvent>
      <boundaryEvent id="message" attachedToRef="t"><messageEventDefinition messageRef="C"/></boundaryEvent>
      <boundaryEvent id="signal" attachedToRef="t" cancelActivity="false"><signalEventDefinition signalRef="S"/></boundaryEvent>
      <boundaryEvent id="error" attachedToRef="t"><errorEventDefinition errorRef="E"/></boundaryEvent>
      <boundaryEvent id="escalation" attachedToRef="t" cancelActivity="false"><escalationEventDefinition escalationRef="X"/></boundaryEvent>
      <boundaryEvent id="anyEscalation" attachedToRef="t"><escalationEventDefinition/></boundaryEvent>`, ROOTS));
    expect(node(p, 't').boundary).toEqual(['timer', 'message', 'signal', 'error', 'escalation', 'anyEscalation']);
    expect(['timer', 'message', 'signal', 'error', 'escalation', 'anyEscalation'].map((id) => [id, node(p, id).cancelActivity, node(p, id).event?.kind])).toEqual([
      ['timer', false, 'timer'],
      ['message', true, 'message'],
      ['signal', false, 'signal'],
      ['error', true, 'error'],
      ['escalation', false, 'escalation'],
      ['anyEscalation', true, 'escalation'],
    ]);
    expect(node(p, 'error').error).toEqual({ code: 'E1' });
    expect(node(p, 'anyEscalation').event).toEqual({ kind: 'escalation', code: null });
  });

  test('refused: attached to an event or a gateway, several catch-all escalations, no definition', async () => {
    expect(await problemsOf(model(`${START}
      <userTask id="t"/>
      <sequenceFlow id="f1" sourceRef="t" targetRef="g"/><exclusiveGateway id="g"/>
      <sequenceFlow id="f2" sourceRef="g" targetRef="c"/>
      <intermediateCatchEvent id="c"><signalEventDefinition signalRef="S"/></intermediateCatchEvent>
      <boundaryEvent id="onGateway" attachedToRef="g"><signalEventDefinition signalRef="S"/></boundaryEvent>
      <boundaryEvent id="onEvent" attachedToRef="c"><signalEventDefinition signalRef="S"/></boundaryEvent>
      <boundaryEvent id="x1" attachedToRef="t"><escalationEventDefinition/></boundaryEvent>
      <boundaryEvent id="x2" attachedToRef="t" cancelActivity="false"><escalationEventDefinition/></boundaryEvent>
      <boundaryEvent id="bare" attachedToRef="t"/>`, '<signal id="S" name="s"/>'))).toEqual([
      'inline.bpmn: element bare: boundary event without event definition',
      'inline.bpmn: element onGateway: attachedToRef "g" is not an activity (bpmn:exclusiveGateway); boundary events are attached to tasks, subprocesses and call activities',
      'inline.bpmn: element onEvent: attachedToRef "c" is not an activity (bpmn:intermediateCatchEvent); boundary events are attached to tasks, subprocesses and call activities',
      'inline.bpmn: element x2: several catch-all escalation boundary events on t',
    ]);
  });

  test('several timer and signal boundary events on one task are fine', async () => {
    const { process: p } = await compileOk('inline.bpmn', model(`${START}
      <userTask id="t"/>
      <boundaryEvent id="a" attachedToRef="t" cancelActivity="false"><timerEventDefinition><timeDuration>PT1H</timeDuration></timerEventDefinition></boundaryEvent>
      <boundaryEvent id="b" attachedToRef="t"><timerEventDefinition><timeDuration>P1D</timeDuration></timerEventDefinition></boundaryEvent>
      <boundaryEvent id="c" attachedToRef="t"><signalEventDefinition signalRef="S"/></boundaryEvent>
      <boundaryEvent id="d" attachedToRef="t" cancelActivity="false"><signalEventDefinition signalRef="S"/></boundaryEvent>`, '<signal id="S" name="s"/>'));
    expect(node(p, 't').boundary).toEqual(['a', 'b', 'c', 'd']);
  });
});

describe('flows around events', () => {
  test('conditions out of intermediate events are refused', async () => {
    expect(await problemsOf(model(`${START}
      <intermediateThrowEvent id="t"/>
      <sequenceFlow id="f1" sourceRef="t" targetRef="c"><conditionExpression>\${a}</conditionExpression></sequenceFlow>
      <intermediateCatchEvent id="c"><timerEventDefinition><timeDuration>PT1M</timeDuration></timerEventDefinition></intermediateCatchEvent>
      <sequenceFlow id="f2" sourceRef="c" targetRef="e"><conditionExpression>=a</conditionExpression></sequenceFlow>
      <endEvent id="e"/>`))).toEqual([
      'inline.bpmn: element f1: conditions are only allowed on sequence flows out of activities and exclusive/inclusive gateways (source t is a bpmn:intermediateThrowEvent)',
      'inline.bpmn: element f2: conditions are only allowed on sequence flows out of activities and exclusive/inclusive gateways (source c is a bpmn:intermediateCatchEvent)',
    ]);
  });

  test('receive task: default flow and conditions like other activities', async () => {
    const { process: p } = await compileOk('inline.bpmn', model(`${START}
      <receiveTask id="t" messageRef="M" default="fd"/>
      <sequenceFlow id="fa" sourceRef="t" targetRef="e"><conditionExpression>\${ok}</conditionExpression></sequenceFlow>
      <sequenceFlow id="fd" sourceRef="t" targetRef="e"/>
      <endEvent id="e"/>`, '<message id="M" name="m"/>'));
    expect(node(p, 't')).toMatchObject({ out: ['fa', 'fd'], default: 'fd' });
  });

  test('event-based gateway without outgoing flows; targets refused elsewhere are not reported twice; a conditional event after one is fine', async () => {
    expect(await problemsOf(model(`${START}
      <eventBasedGateway id="t"/>
      <eventBasedGateway id="g2"/>
      <sequenceFlow id="f1" sourceRef="g2" targetRef="c"/>
      <intermediateCatchEvent id="c"><conditionalEventDefinition><condition>\${x}</condition></conditionalEventDefinition></intermediateCatchEvent>
      <sequenceFlow id="f2" sourceRef="g2" targetRef="bad"/>
      <intermediateCatchEvent id="bad"><escalationEventDefinition/></intermediateCatchEvent>`))).toEqual([
      'inline.bpmn: element bad: escalation intermediate catch events (bpmn:escalationEventDefinition) are not supported in this version',
      'inline.bpmn: element t: gateway has no outgoing sequence flow',
    ]);
  });

  test('conditional events: intermediate catch, boundary (interrupting or not) and event subprocess starts compile their condition', async () => {
    const { process: p } = await compileOk('inline.bpmn', model(`<startEvent id="s"/>
      <sequenceFlow id="f1" sourceRef="s" targetRef="c"/>
      <intermediateCatchEvent id="c"><conditionalEventDefinition><condition xsi:type="tFormalExpression" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">\${amount &gt; 100}</condition></conditionalEventDefinition></intermediateCatchEvent>
      <sequenceFlow id="f2" sourceRef="c" targetRef="t"/><userTask id="t"/>
      <boundaryEvent id="b" attachedToRef="t" cancelActivity="false"><conditionalEventDefinition><condition>=status = "late"</condition></conditionalEventDefinition></boundaryEvent>
      <sequenceFlow id="f3" sourceRef="b" targetRef="e"/><endEvent id="e"/>
      <subProcess id="esp" triggeredByEvent="true"><startEvent id="es"><conditionalEventDefinition><condition>\${stop}</condition></conditionalEventDefinition></startEvent>
        <sequenceFlow id="e1" sourceRef="es" targetRef="ee"/><endEvent id="ee"/></subProcess>`));
    expect(node(p, 'c').event).toMatchObject({ kind: 'conditional', condition: { vars: ['amount'] } });
    expect(node(p, 'b')).toMatchObject({ cancelActivity: false, event: { kind: 'conditional', condition: { vars: ['status'] } } });
    expect(node(p, 'es').event).toMatchObject({ kind: 'conditional', condition: { vars: ['stop'] } });
    expect(p.graph.conditionals).toBe(true);
  });

  test('conditional events without a condition, with one that does not compile, or with bad variable filters are refused', async () => {
    expect(await problemsOf(model(`<startEvent id="s"/>
      <sequenceFlow id="f1" sourceRef="s" targetRef="a"/>
      <intermediateCatchEvent id="a"><conditionalEventDefinition/></intermediateCatchEvent>
      <sequenceFlow id="f2" sourceRef="a" targetRef="b"/>
      <intermediateCatchEvent id="b"><conditionalEventDefinition><condition>amount</condition></conditionalEventDefinition></intermediateCatchEvent>
      <sequenceFlow id="f3" sourceRef="b" targetRef="c"/>
      <intermediateCatchEvent id="c"><conditionalEventDefinition camunda:variableName="\${x}"><condition>\${amount &gt; 1}</condition></conditionalEventDefinition></intermediateCatchEvent>
      <sequenceFlow id="f4" sourceRef="c" targetRef="d"/>
      <intermediateCatchEvent id="d"><conditionalEventDefinition camunda:variableName="amount" camunda:variableEvents="create, rename"><condition>\${amount &gt; 1}</condition></conditionalEventDefinition></intermediateCatchEvent>`))).toEqual([
      'inline.bpmn: element a: conditional event without a condition',
      'inline.bpmn: element b: condition="amount" is not an expression; write ${...} or =...',
      'inline.bpmn: element c: camunda:variableName="${x}" must be a variable name',
      'inline.bpmn: element d: camunda:variableEvents="create, rename": rename is not a variable event (use create, update, delete)',
    ]);
  });

  test('camunda:variableName and camunda:variableEvents restrict when a condition is evaluated again', async () => {
    const { process: p } = await compileOk('inline.bpmn', model(`<startEvent id="s"/><sequenceFlow id="f1" sourceRef="s" targetRef="c"/>
      <intermediateCatchEvent id="c"><conditionalEventDefinition camunda:variableName="amount" camunda:variableEvents="update, create, update"><condition>\${amount &gt; 1}</condition></conditionalEventDefinition></intermediateCatchEvent>`));
    expect(node(p, 'c').event).toMatchObject({ kind: 'conditional', variableName: 'amount', variableEvents: ['update', 'create'] });
  });

  test('inclusive join upstream runs through an event-based gateway, catch events, a receive task and boundary events', async () => {
    const { process: p } = await compileOk('inline.bpmn', model(`
      <startEvent id="s"><signalEventDefinition signalRef="S"/></startEvent>
      <sequenceFlow id="f0" sourceRef="s" targetRef="split"/>
      <inclusiveGateway id="split"/>
      <sequenceFlow id="f1" sourceRef="split" targetRef="race"/><sequenceFlow id="f2" sourceRef="split" targetRef="u"/>
      <eventBasedGateway id="race"/>
      <sequenceFlow id="f3" sourceRef="race" targetRef="wait"/><sequenceFlow id="f4" sourceRef="race" targetRef="r"/>
      <intermediateCatchEvent id="wait"><timerEventDefinition><timeDuration>PT1H</timeDuration></timerEventDefinition></intermediateCatchEvent>
      <receiveTask id="r" messageRef="M"/>
      <userTask id="u"/>
      <boundaryEvent id="b" attachedToRef="u" cancelActivity="false"><timerEventDefinition><timeDuration>PT1H</timeDuration></timerEventDefinition></boundaryEvent>
      <intermediateThrowEvent id="pass"/>
      <sequenceFlow id="f5" sourceRef="wait" targetRef="join"/><sequenceFlow id="f6" sourceRef="r" targetRef="join"/>
      <sequenceFlow id="f7" sourceRef="u" targetRef="join"/><sequenceFlow id="f8" sourceRef="b" targetRef="pass"/>
      <sequenceFlow id="f9" sourceRef="pass" targetRef="join"/>
      <inclusiveGateway id="join"/>
      <sequenceFlow id="f10" sourceRef="join" targetRef="e"/>
      <endEvent id="e"><escalationEventDefinition escalationRef="X"/></endEvent>`,
    '<signal id="S" name="s"/><message id="M" name="m"/><escalation id="X" escalationCode="X1"/>'));
    expect(p.graph.start).toBeNull();
    expect(node(p, 'join').upstream).toEqual(['s', 'split', 'race', 'wait', 'r', 'u', 'b', 'pass']);
  });
});

describe('asynchronous continuations and job retries', () => {
  test('asyncBefore / asyncAfter on gateways and events; false is omitted; retry cycle on a timer event needs no async', async () => {
    const { process: p, warnings } = await compileOk('inline.bpmn', model(`
      <startEvent id="s" camunda:asyncAfter="true"/><sequenceFlow id="f0" sourceRef="s" targetRef="g"/>
      <parallelGateway id="g" camunda:asyncBefore="true" camunda:asyncAfter="false" camunda:exclusive="false"/>
      <sequenceFlow id="f1" sourceRef="g" targetRef="w"/>
      <intermediateCatchEvent id="w">
        <extensionElements><camunda:failedJobRetryTimeCycle>R1/PT30S</camunda:failedJobRetryTimeCycle></extensionElements>
        <timerEventDefinition><timeDuration>PT1M</timeDuration></timerEventDefinition>
      </intermediateCatchEvent>
      <sequenceFlow id="f2" sourceRef="w" targetRef="e"/><endEvent id="e" camunda:asyncBefore="false"/>`));
    expect(warnings).toEqual([]);
    expect(node(p, 's')).toEqual({ id: 's', type: 'startEvent', name: null, in: [], out: ['f0'], asyncAfter: true });
    expect(node(p, 'g')).toEqual({ id: 'g', type: 'parallelGateway', name: null, in: ['f0'], out: ['f1'], asyncBefore: true });
    expect(node(p, 'w').jobRetry).toEqual({ retries: 1, delay: 'PT30S' });
    expect(node(p, 'e')).not.toHaveProperty('asyncBefore');
  });

  test('a retry cycle without async continuation warns; expressions and several cycles are refused', async () => {
    const { process: p, warnings } = await compileOk('inline.bpmn', model(`${START}
      <task id="t"><extensionElements><camunda:failedJobRetryTimeCycle> R10/P1D </camunda:failedJobRetryTimeCycle></extensionElements></task>`));
    expect(node(p, 't').jobRetry).toEqual({ retries: 10, delay: 'P1D' });
    expect(warnings).toEqual(['inline.bpmn: element t: camunda:failedJobRetryTimeCycle has no effect without camunda:asyncBefore or camunda:asyncAfter (or a timer event)']);
    expect(await problemsOf(model(`${START}
      <task id="t" camunda:asyncBefore="true"><extensionElements><camunda:failedJobRetryTimeCycle>\${cycle}</camunda:failedJobRetryTimeCycle></extensionElements></task>
      <task id="u" camunda:asyncBefore="true"><extensionElements>
        <camunda:failedJobRetryTimeCycle>R1/PT1M</camunda:failedJobRetryTimeCycle><camunda:failedJobRetryTimeCycle>R2/PT1M</camunda:failedJobRetryTimeCycle>
      </extensionElements></task>
      <task id="v" camunda:asyncBefore="true"><extensionElements><camunda:failedJobRetryTimeCycle>R2/soon</camunda:failedJobRetryTimeCycle></extensionElements></task>`))).toEqual([
      'inline.bpmn: element t: camunda:failedJobRetryTimeCycle="${cycle}": expressions are not supported here; write R<retries>/<ISO 8601 duration> (e.g. R3/PT5M)',
      'inline.bpmn: element u: several camunda:failedJobRetryTimeCycle elements',
      'inline.bpmn: element v: camunda:failedJobRetryTimeCycle="R2/soon" is not R<retries>/<ISO 8601 duration> (e.g. R3/PT5M): "soon" is not an ISO 8601 duration',
    ]);
  });

  test('parseRetryCycle', () => {
    expect(parseRetryCycle('R3/PT5M')).toEqual({ retries: 3, delay: 'PT5M' });
    expect(parseRetryCycle('R0/PT1S')).toEqual({ retries: 0, delay: 'PT1S' });
    expect(parseRetryCycle('PT5M')).toBe('is not R<retries>/<ISO 8601 duration> (e.g. R3/PT5M)');
  });
});

describe('user task escalation properties', () => {
  test('escalateAfter alone; escalateToAssignee literal; camunda list literal', async () => {
    const { process: p } = await compileOk('inline.bpmn', model(`${START}
      <userTask id="t"><extensionElements><camunda:properties>
        <camunda:property name="pgbpm:escalateAfter" value="P2D"/>
      </camunda:properties></extensionElements></userTask>
      <sequenceFlow id="f1" sourceRef="t" targetRef="u"/>
      <userTask id="u"><extensionElements><camunda:properties>
        <camunda:property name="pgbpm:escalateToAssignee" value="boss"/>
        <camunda:property name="pgbpm:escalateAfter" value="\${slack}"/>
        <camunda:property name="pgbpm:escalateToGroups" value="\${groups}"/>
      </camunda:properties></extensionElements></userTask>`));
    expect(node(p, 't').taskEscalation).toEqual({ after: { literal: 'P2D' } });
    expect(node(p, 'u').taskEscalation).toEqual({
      after: expr('${slack}', 'slack'),
      addCandidateGroups: expr('${groups}', 'groups'),
      reassignTo: { literal: 'boss' },
    });
  });

  test('pgbpm properties elsewhere warn; duplicates and empty values are refused', async () => {
    const { warnings } = await compileOk('inline.bpmn', model(`${START}
      <serviceTask id="t" camunda:type="external" camunda:topic="w"><extensionElements><camunda:properties>
        <camunda:property name="pgbpm:escalateAfter" value="PT1H"/>
      </camunda:properties></extensionElements></serviceTask>`));
    expect(warnings).toEqual(['inline.bpmn: element t: pgbpm:escalateAfter only applies to user tasks and is ignored here']);
    expect(await problemsOf(model(`${START}
      <userTask id="t"><extensionElements>
        <camunda:properties><camunda:property name="pgbpm:escalateAfter" value="PT1H"/></camunda:properties>
        <zeebe:properties><zeebe:property name="pgbpm:escalateAfter" value="PT2H"/><zeebe:property name="pgbpm:escalateToAssignee" value=" "/></zeebe:properties>
      </extensionElements></userTask>`))).toEqual([
      'inline.bpmn: element t: pgbpm:escalateAfter is set more than once',
      'inline.bpmn: element t: pgbpm:escalateToAssignee has no value',
    ]);
  });
});

describe('variables of caught errors and escalations (Camunda 7)', () => {
  const defs = '<error id="e1" errorCode="E1" camunda:errorMessage="failed for ${customer}"/><escalation id="x1" escalationCode="X1"/>';

  test('catching events name the variables; an error end event carries its error\'s message', async () => {
    const { process: p } = await compileOk('inline.bpmn', model(`<startEvent id="s"/><sequenceFlow id="f0" sourceRef="s" targetRef="t"/>
      <serviceTask id="t" camunda:type="external" camunda:topic="x"/><sequenceFlow id="f1" sourceRef="t" targetRef="e"/>
      <endEvent id="e"><errorEventDefinition errorRef="e1"/></endEvent>
      <boundaryEvent id="b" attachedToRef="t"><errorEventDefinition camunda:errorCodeVariable="code" camunda:errorMessageVariable="msg"/></boundaryEvent>
      <boundaryEvent id="bx" attachedToRef="t" cancelActivity="false"><escalationEventDefinition escalationRef="x1" camunda:escalationCodeVariable="esc"/></boundaryEvent>`, defs));
    expect(node(p, 'b').event).toEqual({ kind: 'error', code: null, codeVariable: 'code', messageVariable: 'msg' });
    expect(node(p, 'bx').event).toEqual({ kind: 'escalation', code: 'X1', codeVariable: 'esc' });
    expect(node(p, 'e').event).toMatchObject({ kind: 'error', code: 'E1', message: { expr: { vars: ['customer'] } } });
  });

  test('a variable attribute that is no name, or on a throwing event, is a problem', async () => {
    const problems = await problemsOf(model(`<startEvent id="s"/><sequenceFlow id="f0" sourceRef="s" targetRef="t"/>
      <serviceTask id="t" camunda:type="external" camunda:topic="x"/><sequenceFlow id="f1" sourceRef="t" targetRef="e"/>
      <endEvent id="e"><errorEventDefinition errorRef="e1" camunda:errorCodeVariable="code"/></endEvent>
      <boundaryEvent id="b" attachedToRef="t"><errorEventDefinition camunda:errorCodeVariable="\${x}"/></boundaryEvent>`, defs));
    expect(problems).toEqual([
      'inline.bpmn: element e: attribute camunda:errorCodeVariable="code" is not supported in this version',
      'inline.bpmn: element b: camunda:errorCodeVariable="${x}" must be a variable name',
    ]);
  });
});

describe('camunda:initiator', () => {
  test('on a start event of the process it names the variable for the starting user; elsewhere it is refused', async () => {
    const { process: p } = await compileOk('inline.bpmn', model(around('<task id="t"/>').replace('<startEvent id="s"/>', '<startEvent id="s" camunda:initiator="starter"/>')));
    expect(node(p, 's').initiator).toBe('starter');
    const problems = await problemsOf(model(`<startEvent id="s" camunda:initiator="\${x}"/><sequenceFlow id="f0" sourceRef="s" targetRef="sub"/>
      <subProcess id="sub"><startEvent id="is" camunda:initiator="inner"/><sequenceFlow id="i1" sourceRef="is" targetRef="ie"/><endEvent id="ie"/></subProcess>`));
    expect(problems).toEqual([
      'inline.bpmn: element s: camunda:initiator="${x}" must be a variable name',
      'inline.bpmn: element is: camunda:initiator is only supported on start events of the process',
    ]);
  });
});

describe('camunda:errorEventDefinition on external tasks', () => {
  const ERRORS = '<error id="Rejected" errorCode="REJECTED"/><error id="Timeout" errorCode="TIMEOUT"/><error id="NoCode"/><error id="ExprCode" errorCode="${code}"/><message id="M" name="m"/>';
  const def = (attrs: string): string => `<camunda:errorEventDefinition ${attrs}/>`;
  const task = (type: string, attrs: string, defs: string): string =>
    around(`<${type} id="t"${attrs}><extensionElements>${defs}</extensionElements></${type}>`);

  test('compiled in document order with their codes and conditions; externalTask getters read the task the engine describes', async () => {
    const { process: p, warnings } = await compileOk('inline.bpmn', model(task('serviceTask', ' camunda:type="external" camunda:topic="rpa"',
      def('id="a" errorRef="Rejected" expression="${status == \'rejected\'}"') +
      def('id="b" errorRef="Timeout" expression="${externalTask.getErrorMessage() == \'timeout\' &amp;&amp; externalTask.getRetries() == null}"') +
      def('id="c" errorRef="Timeout"')), ERRORS));
    expect(node(p, 't').errorEvents).toEqual([
      { code: 'REJECTED', condition: { src: "${status == 'rejected'}", path: '($."status" == "rejected")', vars: ['status'] } },
      {
        code: 'TIMEOUT',
        condition: expect.objectContaining({ src: "${externalTask.getErrorMessage() == 'timeout' && externalTask.getRetries() == null}", vars: ['externalTask'] }),
      },
      { code: 'TIMEOUT', condition: null },
    ]);
    expect(p.graph.taskErrorEvents).toBe(true);
    expect(warnings).toEqual(['inline.bpmn: element t: camunda:errorEventDefinition c has no expression: it never throws']);
  });

  test('on send and business rule tasks with a topic too; a process without them has no flag', async () => {
    for (const type of ['sendTask', 'businessRuleTask']) {
      const { process: p } = await compileOk('inline.bpmn', model(task(type, ' camunda:type="external" camunda:topic="w"', def('errorRef="Rejected" expression="=true"')), ERRORS));
      expect(node(p, 't').errorEvents).toEqual([{ code: 'REJECTED', condition: expect.objectContaining({ src: '=true' }) }]);
    }
    const { process: plain } = await compileOk('inline.bpmn', model(around('<serviceTask id="t" camunda:type="external" camunda:topic="w"/>')));
    expect(plain.graph.taskErrorEvents).toBeUndefined();
  });

  test('refused: not on an external task, no or an unknown errorRef, an error without a literal code, an unknown getter, an expression that does not compile', async () => {
    expect(await problemsOf(model(task('userTask', '', def('errorRef="Rejected" expression="${true}"')), ERRORS))).toEqual([
      'inline.bpmn: element t: camunda:errorEventDefinition is only supported on external tasks (service, send and business rule tasks with camunda:type="external" camunda:topic)',
    ]);
    expect(await problemsOf(model(task('sendTask', ' messageRef="M"', def('errorRef="Rejected" expression="${true}"')), ERRORS))).toEqual([
      'inline.bpmn: element t: camunda:errorEventDefinition is only supported on external tasks (camunda:type="external" camunda:topic, or zeebe:taskDefinition)',
    ]);
    expect(await problemsOf(model(task('serviceTask', ' camunda:type="external" camunda:topic="w"',
      def('id="x1" expression="${true}"') +
      def('id="x2" errorRef="Nope" expression="${true}"') +
      def('id="x3" errorRef="NoCode" expression="${true}"') +
      def('id="x4" errorRef="ExprCode" expression="${true}"') +
      def('id="x5" errorRef="Rejected" expression="${externalTask.getExecutionId() != null}"') +
      def('id="x6" errorRef="Rejected" expression="${status ==}"')), ERRORS))).toEqual([
      'inline.bpmn: element t: camunda:errorEventDefinition x1 needs an errorRef to a bpmn:error',
      'inline.bpmn: element t: camunda:errorEventDefinition x2 needs an errorRef to a bpmn:error ("Nope" is none)',
      'inline.bpmn: element t: camunda:errorEventDefinition x3: the error NoCode needs a literal errorCode to be thrown',
      'inline.bpmn: element t: camunda:errorEventDefinition x4: the error ExprCode needs a literal errorCode to be thrown',
      'inline.bpmn: element t: camunda:errorEventDefinition x5: externalTask.getExecutionId() is not supported (supported: getId, getActivityId, getProcessInstanceId, getTopicName, getWorkerId, getErrorMessage, getErrorDetails, getRetries, getPriority)',
      'inline.bpmn: element t: camunda:errorEventDefinition x6: cannot compile expression "${status ==}": unexpected end of expression',
    ]);
  });
});
