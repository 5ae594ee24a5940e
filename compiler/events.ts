/**
 * Events: start (of the process, of subprocesses and of event subprocesses),
 * end, intermediate catch / throw and boundary events, and their event
 * definitions: timers, messages, signals, errors, escalations, links
 * (compensation and cancel: compiler/compensation.ts). Also receive and send
 * tasks (they wait for and publish messages like message events), link
 * pairing and the rules on what boundary events are attached to.
 *
 * Adding an event definition: SUPPORTED_DEFINITIONS and compileEventOf.
 * Literal timer texts are checked in compiler/timer.ts.
 */
import { compileActivity } from './activities';
import { compileCancel, compileCompensate } from './compensation';
import { compileForm } from './forms';
import {
  ACTIVITY_TYPES,
  baseNode,
  bool,
  DATA_ELEMENTS,
  eventDefinitions,
  extensionProperties,
  extensions,
  idOf,
  kids,
  nonEmpty,
  NOTHING,
  problem,
  type ProcessCtx,
  ref,
  rootProblem,
  scopeLabel,
  str,
  warn,
  xmlName,
} from './context';
import { compileExpression, isExpression } from './expression';
import { compileExpressionText } from './mappings';
import { checkExtensions } from './extensions';
import type { CompiledExpression, CompiledNode, CompiledValue, EventDefinition } from './graph';
import { compileExternalErrorEvents, EXTERNAL_CONSUMES, externalImplementation, externalTaskHeaders, taskPriority } from './tasks';
import { type TimerKind, timerLiteralProblem } from './timer';
import type { XNode } from './xml';

// --- events ------------------------------------------------------------------------

/** Where an event sits; also the wording of its messages ("message intermediate catch event"). */
export type EventPosition = 'start' | 'event subprocess start' | 'end' | 'intermediate catch' | 'intermediate throw' | 'boundary';

const TIMER = 'bpmn:TimerEventDefinition';
const MESSAGE = 'bpmn:MessageEventDefinition';
const SIGNAL = 'bpmn:SignalEventDefinition';
const ERROR = 'bpmn:ErrorEventDefinition';
const ESCALATION = 'bpmn:EscalationEventDefinition';
const TERMINATE = 'bpmn:TerminateEventDefinition';
const LINK = 'bpmn:LinkEventDefinition';
const COMPENSATE = 'bpmn:CompensateEventDefinition';
const CANCEL = 'bpmn:CancelEventDefinition';
const CONDITIONAL = 'bpmn:ConditionalEventDefinition';

/**
 * Event definitions supported per position; everything else (compensation
 * start events, cancel outside end and boundary events, …) is refused.
 */
const SUPPORTED_DEFINITIONS: Readonly<Record<EventPosition, ReadonlySet<string>>> = {
  start: new Set([TIMER, MESSAGE, SIGNAL, CONDITIONAL]),
  'event subprocess start': new Set([TIMER, MESSAGE, SIGNAL, ERROR, ESCALATION, CONDITIONAL]),
  'intermediate catch': new Set([TIMER, MESSAGE, SIGNAL, LINK, CONDITIONAL]),
  boundary: new Set([TIMER, MESSAGE, SIGNAL, ERROR, ESCALATION, COMPENSATE, CANCEL, CONDITIONAL]),
  'intermediate throw': new Set([MESSAGE, SIGNAL, ESCALATION, LINK, COMPENSATE]),
  end: new Set([MESSAGE, SIGNAL, ERROR, ESCALATION, TERMINATE, COMPENSATE, CANCEL]),
};

/** Event definition kind for messages: bpmn:TimerEventDefinition → "timer". */
function eventKind(def: XNode): string {
  const local = def.type.slice(def.type.indexOf(':') + 1).replace(/EventDefinition$/, '');
  const kind = local.charAt(0).toLowerCase() + local.slice(1);
  return kind === 'compensate' ? 'compensation' : kind;
}

function rejectEventDefinitions(ctx: ProcessCtx, id: string, defs: XNode[], where: EventPosition): void {
  if (defs.length > 1) {
    problem(ctx, id, `${where} events with several event definitions (${defs.map((d) => xmlName(d.type)).join(', ')}) are not supported in this version`);
    return;
  }
  for (const d of defs) {
    problem(ctx, id, `${eventKind(d)} ${where} events (${xmlName(d.type)}) are not supported in this version`);
  }
}

function isThrowing(position: EventPosition): boolean {
  return position === 'end' || position === 'intermediate throw';
}

/** A message throw event's implementation: zeebe:taskDefinition on the event (camunda:type/topic sit on its messageEventDefinition). */
const JOB_WORKER_CONSUMES: ReadonlySet<string> = new Set(['zeebe:TaskDefinition', 'zeebe:TaskHeaders']);
const MESSAGE_DEFINITION_CONSUMES: ReadonlySet<string> = new Set(['camunda:type', 'camunda:topic', 'camunda:taskPriority']);

/** camunda:/zeebe: extensions of an event element (a message throw reads its zeebe:taskDefinition itself). */
function checkEventExtensions(ctx: ProcessCtx, el: XNode, position: EventPosition): void {
  const defs = eventDefinitions(el);
  const messageThrow = isThrowing(position) && defs.length === 1 && defs[0].type === MESSAGE;
  checkExtensions(ctx, el, messageThrow ? JOB_WORKER_CONSUMES : position === 'start' ? START_CONSUMES : NOTHING);
}

/** Start events read camunda:initiator and camunda:formData (compileStartForm) themselves. */
const START_CONSUMES: ReadonlySet<string> = new Set(['camunda:initiator', 'camunda:FormData']);

/**
 * camunda:initiator on a start event of the process: the variable that
 * receives the id of the user who starts the instance (bpm.user_id).
 */
function compileInitiator(ctx: ProcessCtx, el: XNode, id: string, node: CompiledNode): void {
  if (str(el, 'camunda:initiator') === undefined) return;
  if (ctx.scope.kind !== 'process') {
    problem(ctx, id, 'camunda:initiator is only supported on start events of the process');
    return;
  }
  const name = variableName(ctx, id, el, 'camunda:initiator');
  if (name !== undefined) node.initiator = name;
}

/**
 * Compiles the event definition of an event element into node.event (and, for
 * message throw events implemented as external tasks, node.topic). Returns
 * 'none' for an event without definition, 'refused' when problems were reported.
 */
function compileEventOf(ctx: ProcessCtx, el: XNode, id: string, node: CompiledNode, position: EventPosition): 'none' | 'ok' | 'refused' {
  const defs = eventDefinitions(el);
  if (defs.length === 0) return 'none';
  if (defs.length > 1 || !SUPPORTED_DEFINITIONS[position].has(defs[0].type)) {
    rejectEventDefinitions(ctx, id, defs, position);
    return 'refused';
  }
  const def = defs[0];
  if (def.type === MESSAGE && isThrowing(position)) return compileMessageThrow(ctx, el, id, def, node, `message ${position} event`) ? 'ok' : 'refused';
  checkExtensions(ctx, def, def.type === CONDITIONAL ? CONDITION_FILTER_ATTRIBUTES : isCatching(position) ? CATCH_VARIABLE_ATTRIBUTES : NOTHING, id);
  let event: EventDefinition | null;
  switch (def.type) {
    case TIMER:
      event = compileTimer(ctx, id, def, position);
      break;
    case MESSAGE:
      event = compileMessageCatch(ctx, id, def, position === 'start', `message ${position} event`);
      break;
    case SIGNAL:
      event = compileSignal(ctx, id, def, position);
      break;
    case ERROR:
      event = compileError(ctx, id, def, position);
      break;
    case ESCALATION:
      event = compileEscalation(ctx, id, def, position);
      break;
    case LINK:
      event = compileLink(ctx, id, def);
      break;
    case COMPENSATE:
      event = compileCompensate(ctx, id, def, position);
      break;
    case CANCEL:
      event = compileCancel(ctx, id, position);
      break;
    case CONDITIONAL:
      event = compileConditional(ctx, id, def);
      break;
    default: // TERMINATE
      event = { kind: 'terminate' };
      node.terminate = true;
  }
  if (event === null) return 'refused';
  node.event = event;
  return 'ok';
}

/**
 * Start events: of the process (none, message, signal, timer), of an embedded
 * subprocess (none only), of an event subprocess (message, timer, signal,
 * error, escalation; `interrupting`).
 */
export function compileStartEvent(ctx: ProcessCtx, el: XNode, id: string): CompiledNode {
  checkEventExtensions(ctx, el, 'start');
  const scope = ctx.scope;
  scope.startElements++;
  const node = baseNode(el, id, 'startEvent');
  compileInitiator(ctx, el, id, node);
  if (scope.kind === 'eventSubProcess') return compileEventSubprocessStart(ctx, el, id, node);
  const defs = eventDefinitions(el);
  if (scope.kind === 'subProcess' && defs.length > 0) {
    problem(ctx, id, `the start event of an embedded subprocess must be a none start event, not a ${defs.map(eventKind).join(', ')} start event; use an event subprocess (triggeredByEvent="true") or a boundary event for events`);
    return node;
  }
  const outcome = compileEventOf(ctx, el, id, node, 'start');
  if (outcome === 'none') scope.noneStarts.push(id);
  else if (outcome === 'ok') scope.eventStarts.push(id);
  if (outcome === 'none' && scope.kind === 'process') compileStartForm(ctx, el, id, node);
  else if (extensions(el).some((e) => e.type === 'camunda:FormData')) warn(ctx, id, 'camunda:formData is read on the none start event of a process only; here it is ignored');
  return node;
}

/** The start form of the process (its none start event): static only, there are no variables to evaluate an expression over yet. */
function compileStartForm(ctx: ProcessCtx, el: XNode, id: string, node: CompiledNode): void {
  const { form, generated } = compileForm(ctx, el, id);
  for (const field of Object.keys(generated?.defaults ?? {})) {
    warn(ctx, id, `camunda:formField "${field}": a default value given as an expression is not evaluated on a start form (it is read before the instance has variables); the field has no default`);
  }
  if (form === null) {
    if (generated !== null) node.form = generated.form;
    return;
  }
  if ('literal' in form) node.form = form.literal;
  else problem(ctx, id, 'the form of a start event must be static (no expression): it is read before the instance has variables');
}

/** The start event of an event subprocess: an event definition is required; error starts always interrupt. */
function compileEventSubprocessStart(ctx: ProcessCtx, el: XNode, id: string, node: CompiledNode): CompiledNode {
  const interrupting = bool(el, 'isInterrupting') !== false;
  node.interrupting = interrupting;
  const defs = eventDefinitions(el);
  if (defs.length === 1 && defs[0].type === COMPENSATE) {
    // a compensation event subprocess: the compensation handler of the
    // subprocess around it (compileSubProcessScope names it there)
    checkExtensions(ctx, defs[0], NOTHING, id);
    if (bool(el, 'isInterrupting') === false) warn(ctx, id, 'isInterrupting="false" on a compensation start event is ignored: compensation starts after the subprocess has completed, there is nothing to interrupt');
    delete node.interrupting;
    node.event = { kind: 'compensate', activity: null };
    ctx.scope.eventStarts.push(id);
    return node;
  }
  const outcome = compileEventOf(ctx, el, id, node, 'event subprocess start');
  if (outcome === 'none') {
    problem(ctx, id, 'the start event of an event subprocess needs a message, timer, signal, error or escalation event definition');
    return node;
  }
  if (outcome === 'ok') ctx.scope.eventStarts.push(id);
  const event = node.event;
  if (event?.kind === 'error' && !interrupting) {
    problem(ctx, id, 'error start events of event subprocesses are always interrupting (isInterrupting="false" is invalid BPMN)');
  }
  if (event?.kind === 'timer' && event.timer.kind === 'cycle' && interrupting) {
    warn(ctx, id, 'timeCycle on an interrupting event subprocess start event: the event fires once, at the first occurrence of the cycle (set isInterrupting="false" to repeat)');
  }
  return node;
}

export function compileEndEvent(ctx: ProcessCtx, el: XNode, id: string): CompiledNode {
  checkEventExtensions(ctx, el, 'end');
  const node: CompiledNode = { ...baseNode(el, id, 'endEvent'), terminate: false };
  compileEventOf(ctx, el, id, node, 'end');
  return node;
}

export function compileCatchEvent(ctx: ProcessCtx, el: XNode, id: string): CompiledNode {
  checkEventExtensions(ctx, el, 'intermediate catch');
  const node = baseNode(el, id, 'intermediateCatchEvent');
  if (compileEventOf(ctx, el, id, node, 'intermediate catch') === 'none') {
    problem(ctx, id, 'intermediate catch event without event definition (a message, timer, signal or link event definition is required)');
  }
  const event = node.event;
  if (event?.kind === 'timer' && event.timer.kind === 'cycle') {
    warn(ctx, id, 'timeCycle on an intermediate catch event: the event fires once, at the first occurrence of the cycle');
  }
  return node;
}

/** A throw event without definition is a none intermediate event: the token passes through. */
export function compileThrowEvent(ctx: ProcessCtx, el: XNode, id: string): CompiledNode {
  checkEventExtensions(ctx, el, 'intermediate throw');
  const node = baseNode(el, id, 'intermediateThrowEvent');
  compileEventOf(ctx, el, id, node, 'intermediate throw');
  return node;
}

export function compileBoundaryEvent(ctx: ProcessCtx, el: XNode, id: string): CompiledNode {
  checkExtensions(ctx, el);
  const cancelActivity = bool(el, 'cancelActivity') !== false;
  const node: CompiledNode = { ...baseNode(el, id, 'boundaryEvent'), attachedTo: '', cancelActivity };
  const attached = ref(ctx, el, 'attachedToRef');
  if (attached.kind === 'none') problem(ctx, id, 'boundary event is not attached to an activity (attachedToRef is missing)');
  else if (attached.kind === 'unresolved') problem(ctx, id, `attachedToRef "${attached.value}" does not reference an element`);
  else node.attachedTo = attached.id;

  const defs = eventDefinitions(el);
  if (defs.length === 0) {
    problem(ctx, id, 'boundary event without event definition');
    return node;
  }
  const isError = defs.length === 1 && defs[0].type === ERROR;
  if (isError) {
    if (!cancelActivity) problem(ctx, id, 'error boundary events are always interrupting (cancelActivity="false" is invalid BPMN)');
    node.error = { code: null };
  }
  if (defs.length === 1 && defs[0].type === CANCEL && !cancelActivity) {
    problem(ctx, id, 'cancel boundary events are always interrupting (cancelActivity="false" is invalid BPMN)');
  }
  compileEventOf(ctx, el, id, node, 'boundary');
  const event = node.event;
  if (event?.kind === 'error') node.error = { code: event.code };
  if (event?.kind === 'timer' && event.timer.kind === 'cycle' && cancelActivity) {
    warn(ctx, id, 'timeCycle on an interrupting boundary event: the event fires once, at the first occurrence of the cycle (set cancelActivity="false" to repeat)');
  }
  return node;
}

// --- timers ------------------------------------------------------------------------

const TIMER_FIELDS: ReadonlyArray<[string, TimerKind]> = [
  ['timeDate', 'date'],
  ['timeDuration', 'duration'],
  ['timeCycle', 'cycle'],
];

function compileTimer(ctx: ProcessCtx, id: string, def: XNode, position: EventPosition): EventDefinition | null {
  const present = TIMER_FIELDS.filter(([field]) => kids(def, field).length > 0);
  if (present.length === 0) {
    problem(ctx, id, 'timer event without timeDate, timeDuration or timeCycle');
    return null;
  }
  if (present.length > 1) {
    problem(ctx, id, `timer event with ${present.map(([f]) => f).join(' and ')}; set exactly one of timeDate, timeDuration, timeCycle`);
    return null;
  }
  const [field, kind] = present[0];
  const raw = (str(kids(def, field)[0], 'body') ?? '').trim();
  if (raw === '') {
    problem(ctx, id, `empty ${field}`);
    return null;
  }
  // a FEEL string literal is a literal (="PT5M")
  const feelString = /^=\s*"([^"\\]*)"\s*$/.exec(raw);
  if (feelString === null && isExpression(raw)) {
    if (position === 'start') {
      problem(ctx, id, `${field}="${raw}": timer start events are scheduled when the process is deployed, without process variables; write a literal`);
      return null;
    }
    const r = compileExpression(raw, 'value');
    if (!r.ok) {
      problem(ctx, id, `${field}: ${r.message}`);
      return null;
    }
    return { kind: 'timer', timer: { kind, value: { expr: r.expr } } };
  }
  const text = feelString !== null ? feelString[1].trim() : raw;
  const reason = timerLiteralProblem(kind, text);
  if (reason !== null) {
    problem(ctx, id, `${field}="${text}" ${reason}`);
    return null;
  }
  return { kind: 'timer', timer: { kind, value: { literal: text } } };
}

// --- messages, signals, errors, escalations ----------------------------------------

/** The root element (message, signal) a definition references: 'none' when it references none, null when a problem was reported. */
function referencedRoot(ctx: ProcessCtx, id: string, holder: XNode, key: string, roots: Map<string, XNode>, label: string): XNode | 'none' | null {
  const r = ref(ctx, holder, key);
  if (r.kind === 'none') return 'none';
  const target = r.kind === 'ok' ? roots.get(r.id) : undefined;
  if (target === undefined) {
    problem(ctx, id, `${key} "${r.kind === 'ok' ? r.id : r.value}" does not reference a ${label}`);
    return null;
  }
  return target;
}

/** The name of a bpmn:message / bpmn:signal: a literal, or an expression (not on start events). */
function rootName(ctx: ProcessCtx, id: string, root: XNode, what: 'message' | 'signal', literalOnly: boolean): CompiledValue | null {
  const rootId = idOf(root) ?? '';
  const name = nonEmpty(str(root, 'name'));
  if (name === null) {
    rootProblem(ctx, rootId, `bpmn:${what} without name`);
    return null;
  }
  if (!isExpression(name)) return { literal: name };
  if (literalOnly) {
    problem(ctx, id, `${what} start events need a literal ${what} name, not an expression (bpmn:${what} ${rootId} name="${name}")`);
    return null;
  }
  const r = compileExpression(name, 'value');
  if (!r.ok) {
    rootProblem(ctx, rootId, `name: ${r.message}`);
    return null;
  }
  return { expr: r.expr };
}

/**
 * A correlation key: an expression (`=orderId`, `${orderId}`). Plain text is
 * refused: Zeebe would read it as a constant, Camunda 7 users mean a variable.
 */
function correlationKey(raw: string, label: string, report: (message: string) => void): CompiledExpression | null {
  const text = raw.trim();
  if (!isExpression(text)) {
    report(`${label}="${text}" is not an expression; write =name to correlate on a variable, or ="${text}" for a constant key`);
    return null;
  }
  const r = compileExpression(text, 'value');
  if (!r.ok) {
    report(`${label}: ${r.message}`);
    return null;
  }
  return r.expr;
}

/** Catch side: zeebe:subscription correlationKey of the message, evaluated when the subscription opens. */
function subscriptionKey(ctx: ProcessCtx, message: XNode): CompiledExpression | null {
  const rootId = idOf(message) ?? '';
  const subscriptions = extensions(message).filter((e) => e.type === 'zeebe:Subscription');
  if (subscriptions.length > 1) rootProblem(ctx, rootId, 'several zeebe:subscription elements');
  const raw = subscriptions.length > 0 ? nonEmpty(str(subscriptions[0], 'zeebe:correlationKey')) : null;
  if (raw === null) return null;
  return correlationKey(raw, 'zeebe:subscription correlationKey', (m) => rootProblem(ctx, rootId, m));
}

/** Message start / intermediate catch / boundary events and receive tasks (messageRef on `holder`). */
function compileMessageCatch(ctx: ProcessCtx, id: string, holder: XNode, start: boolean, label: string): EventDefinition | null {
  const message = referencedRoot(ctx, id, holder, 'messageRef', ctx.messages, 'bpmn:message');
  if (message === 'none') {
    problem(ctx, id, `${label} does not reference a message (set messageRef to a bpmn:message)`);
    return null;
  }
  if (message === null) return null;
  const name = rootName(ctx, id, message, 'message', start);
  // start events create instances: there are no variables to correlate on
  const key = start ? null : subscriptionKey(ctx, message);
  return name === null ? null : { kind: 'message', name, correlationKey: key };
}

/**
 * Message intermediate throw / end events (`def`) and send tasks (`def` null):
 * an external task when camunda:type="external" camunda:topic (on the event
 * definition, or on the send task) or zeebe:taskDefinition are set; otherwise
 * the message is published (a message is then required). `event` is set
 * whenever a message is referenced. Returns false when problems were reported.
 */
function compileMessageThrow(ctx: ProcessCtx, el: XNode, id: string, def: XNode | null, node: CompiledNode, label: string): boolean {
  const before = ctx.problems.length;
  const holder = def ?? el;
  if (def !== null) checkExtensions(ctx, def, MESSAGE_DEFINITION_CONSUMES, id);
  const impl = externalImplementation(ctx, el, id, holder);
  if (impl.topic !== null) {
    node.topic = impl.topic;
    if (impl.topicExpr !== undefined) node.topicExpr = impl.topicExpr;
    const headers = externalTaskHeaders(ctx, el, id);
    if (headers !== null) node.headers = headers;
    const priority = taskPriority(ctx, holder, id);
    if (priority !== undefined) node.taskPriority = priority;
  }
  const message = referencedRoot(ctx, id, holder, 'messageRef', ctx.messages, 'bpmn:message');
  if (message === 'none') {
    if (!impl.present) {
      problem(ctx, id, `${label} needs a message to publish (messageRef) or an implementation: camunda:type=external + camunda:topic or zeebe:taskDefinition`);
    }
  } else if (message !== null) {
    const name = rootName(ctx, id, message, 'message', false);
    const key = impl.present ? null : propertyCorrelationKey(ctx, el, id);
    if (name !== null) node.event = { kind: 'message', name, correlationKey: key };
  }
  return ctx.problems.length === before;
}

/** Throw side: the `correlationKey` extension property (camunda:properties / zeebe:properties). */
function propertyCorrelationKey(ctx: ProcessCtx, el: XNode, id: string): CompiledExpression | null {
  const props = extensionProperties(el).filter((p) => p.name === 'correlationKey');
  if (props.length === 0) return null;
  if (props.length > 1) {
    problem(ctx, id, `correlationKey is set more than once (${props.map((p) => p.label).join(', ')})`);
    return null;
  }
  return correlationKey(props[0].value, `${props[0].label} correlationKey`, (m) => problem(ctx, id, m));
}

function compileSignal(ctx: ProcessCtx, id: string, def: XNode, position: EventPosition): EventDefinition | null {
  const signal = referencedRoot(ctx, id, def, 'signalRef', ctx.signals, 'bpmn:signal');
  if (signal === 'none') {
    problem(ctx, id, `signal ${position} event does not reference a signal (set signalRef to a bpmn:signal)`);
    return null;
  }
  if (signal === null) return null;
  const name = rootName(ctx, id, signal, 'signal', position === 'start');
  return name === null ? null : { kind: 'signal', name };
}

/** What a conditional event definition reads besides its condition. */
const CONDITION_FILTER_ATTRIBUTES: ReadonlySet<string> = new Set(['camunda:variableName', 'camunda:variableEvents']);
const VARIABLE_EVENTS: ReadonlySet<string> = new Set(['create', 'update', 'delete']);

/**
 * A conditional event: its condition (`${…}` or `=…`), evaluated over the
 * variables the event sees when it starts waiting and when variables change;
 * with camunda:variableName only when that variable changes (and with
 * camunda:variableEvents only by those kinds of change: create, update,
 * delete).
 */
function compileConditional(ctx: ProcessCtx, id: string, def: XNode): EventDefinition | null {
  const condition = kids(def, 'condition')[0];
  const text = condition !== undefined ? (str(condition, 'body') ?? '').trim() : '';
  if (text === '') {
    problem(ctx, id, 'conditional event without a condition');
    return null;
  }
  const expr = compileExpressionText(ctx, id, 'condition', text, 'condition', 'write ${...} or =...');
  const name = variableName(ctx, id, def, 'camunda:variableName');
  const eventsText = nonEmpty(str(def, 'camunda:variableEvents'));
  const events = eventsText === null ? [] : eventsText.split(',').map((e) => e.trim()).filter((e) => e !== '');
  const unknown = events.filter((e) => !VARIABLE_EVENTS.has(e));
  if (unknown.length > 0) problem(ctx, id, `camunda:variableEvents="${eventsText ?? ''}": ${unknown.join(', ')} is not a variable event (use create, update, delete)`);
  if (expr === null || unknown.length > 0 || (name === undefined && nonEmpty(str(def, 'camunda:variableName')) !== null)) return null;
  const event: EventDefinition = { kind: 'conditional', condition: expr };
  if (name !== undefined) event.variableName = name;
  if (events.length > 0) event.variableEvents = [...new Set(events)];
  return event;
}

/** A literal error or escalation code (expressions are refused). */
function literalCode(ctx: ProcessCtx, rootId: string, attr: string, code: string | null): boolean {
  if (code === null || !isExpression(code)) return true;
  rootProblem(ctx, rootId, `${attr}="${code}": expressions are not supported here; write a literal code`);
  return false;
}

/** Where an error or escalation is caught: boundary events and event subprocess starts. */
function isCatching(position: EventPosition): boolean {
  return position === 'boundary' || position === 'event subprocess start';
}

/** Attributes of a catching error / escalation definition naming the variables that receive what was caught. */
const CATCH_VARIABLE_ATTRIBUTES: ReadonlySet<string> = new Set(['camunda:errorCodeVariable', 'camunda:errorMessageVariable', 'camunda:escalationCodeVariable']);

/** An attribute naming a variable (camunda:initiator, camunda:errorCodeVariable, …): a name, not an expression. */
function variableName(ctx: ProcessCtx, id: string, def: XNode, attr: string): string | undefined {
  const name = nonEmpty(str(def, attr));
  if (name === null) return undefined;
  if (isExpression(name) || !/^[A-Za-z_][\w-]*$/.test(name)) {
    problem(ctx, id, `${attr}="${name}" must be a variable name`);
    return undefined;
  }
  return name;
}

/**
 * Error end events and error boundary events: errorRef → errorCode (none:
 * catch-all / no code). Catching: the variables for the code and message;
 * throwing: the error's camunda:errorMessage.
 */
function compileError(ctx: ProcessCtx, id: string, def: XNode, position: EventPosition): EventDefinition | null {
  const r = ref(ctx, def, 'errorRef');
  let code: string | null = null;
  if (r.kind === 'unresolved' || (r.kind === 'ok' && !ctx.errorCodes.has(r.id))) {
    problem(ctx, id, `errorRef "${r.kind === 'ok' ? r.id : r.value}" does not reference a bpmn:error`);
    return null;
  }
  if (r.kind === 'ok') {
    code = ctx.errorCodes.get(r.id) ?? null;
    if (!literalCode(ctx, r.id, 'errorCode', code)) return null;
  }
  const event: EventDefinition = { kind: 'error', code };
  if (isCatching(position)) {
    const codeVariable = variableName(ctx, id, def, 'camunda:errorCodeVariable');
    const messageVariable = variableName(ctx, id, def, 'camunda:errorMessageVariable');
    if (codeVariable !== undefined) event.codeVariable = codeVariable;
    if (messageVariable !== undefined) event.messageVariable = messageVariable;
  } else if (r.kind === 'ok' && ctx.errorMessages.has(r.id)) {
    const message = errorMessage(ctx, r.id, ctx.errorMessages.get(r.id) as string);
    if (message !== null) event.message = message;
  }
  return event;
}

/** camunda:errorMessage of a bpmn:error: a literal or an expression (evaluated when the error is thrown). */
function errorMessage(ctx: ProcessCtx, errorId: string, raw: string): CompiledValue | null {
  if (!isExpression(raw)) return { literal: raw.trim() };
  const r = compileExpression(raw, 'value');
  if (!r.ok) {
    rootProblem(ctx, errorId, `camunda:errorMessage: ${r.message}`);
    return null;
  }
  return { expr: r.expr };
}

/** Escalation throw (code required) and boundary (none: catch-all) events. */
function compileEscalation(ctx: ProcessCtx, id: string, def: XNode, position: EventPosition): EventDefinition | null {
  const r = ref(ctx, def, 'escalationRef');
  if (r.kind === 'unresolved' || (r.kind === 'ok' && !ctx.escalationCodes.has(r.id))) {
    problem(ctx, id, `escalationRef "${r.kind === 'ok' ? r.id : r.value}" does not reference a bpmn:escalation`);
    return null;
  }
  const code = r.kind === 'ok' ? (ctx.escalationCodes.get(r.id) ?? null) : null;
  if (r.kind === 'ok' && !literalCode(ctx, r.id, 'escalationCode', code)) return null;
  if (code === null && isThrowing(position)) {
    problem(ctx, id, r.kind === 'ok'
      ? `escalation ${position} event: bpmn:escalation ${r.id} has no escalationCode`
      : `escalation ${position} event does not reference an escalation (set escalationRef to a bpmn:escalation with an escalationCode)`);
    return null;
  }
  const codeVariable = isCatching(position) ? variableName(ctx, id, def, 'camunda:escalationCodeVariable') : undefined;
  return codeVariable !== undefined ? { kind: 'escalation', code, codeVariable } : { kind: 'escalation', code };
}

// --- receive tasks, send tasks -----------------------------------------------------

export function compileReceiveTask(ctx: ProcessCtx, el: XNode, id: string): CompiledNode {
  const node = compileActivity(ctx, el, id, 'receiveTask', NOTHING);
  if (bool(el, 'instantiate') === true) {
    problem(ctx, id, 'receive tasks that start the process (instantiate="true") are not supported; use a message start event');
  }
  const event = compileMessageCatch(ctx, id, el, false, 'receive task');
  if (event !== null) node.event = event;
  return node;
}

/** A send task is an external task (topic) or publishes its message (messageRef). */
export function compileSendTask(ctx: ProcessCtx, el: XNode, id: string): CompiledNode {
  const node = compileActivity(ctx, el, id, 'sendTask', EXTERNAL_CONSUMES);
  compileMessageThrow(ctx, el, id, null, node, 'send task');
  compileExternalErrorEvents(ctx, el, id, node);
  return node;
}

// --- link events -------------------------------------------------------------------

function compileLink(ctx: ProcessCtx, id: string, def: XNode): EventDefinition | null {
  const name = nonEmpty(str(def, 'name'));
  if (name === null) {
    problem(ctx, id, 'link event without name (set name on its bpmn:linkEventDefinition)');
    return null;
  }
  return { kind: 'link', name: name.trim() };
}

/**
 * Pairs link throw events with the one link catch event of the same name in
 * their scope (event.target); catch events have no incoming flows, throw
 * events no outgoing flows.
 */
export function resolveLinks(ctx: ProcessCtx): void {
  const catches = new Map<string, string>();
  const links = Object.values(ctx.nodes).filter((n) => n.event?.kind === 'link');
  for (const node of links) {
    if (node.type !== 'intermediateCatchEvent' || node.event?.kind !== 'link') continue;
    if (node.in.length > 0) problem(ctx, node.id, `link catch event must not have incoming sequence flows (${node.in.join(', ')}); it is entered through its link throw events`);
    const key = `${node.scope ?? ''}\0${node.event.name}`;
    const first = catches.get(key);
    if (first !== undefined) {
      problem(ctx, node.id, `link catch events ${first} and ${node.id} in ${scopeLabel(ctx, node.scope ?? null)} both have the name "${node.event.name}"; link names must be unique in a scope`);
    } else {
      catches.set(key, node.id);
    }
  }
  for (const node of links) {
    if (node.type !== 'intermediateThrowEvent' || node.event?.kind !== 'link') continue;
    if (node.out.length > 0) problem(ctx, node.id, `link throw event must not have outgoing sequence flows (${node.out.join(', ')}); the token continues at its link catch event`);
    const target = catches.get(`${node.scope ?? ''}\0${node.event.name}`);
    if (target === undefined) problem(ctx, node.id, `link throw event: there is no link catch event named "${node.event.name}" in ${scopeLabel(ctx, node.scope ?? null)}`);
    else node.event = { kind: 'link', name: node.event.name, target };
  }
}

// --- boundary events ---------------------------------------------------------------

/**
 * Registers boundary events on their activities (document order) and checks
 * what they are attached to; on one activity, error and escalation codes and
 * message names must be distinct (which event catches would be ambiguous).
 */
export function attachBoundaryEvents(ctx: ProcessCtx): void {
  const seen = new Map<string, Set<string>>();
  for (const node of Object.values(ctx.nodes)) {
    if (node.type !== 'boundaryEvent' || node.attachedTo === undefined || node.attachedTo === '') continue;
    const host = ctx.nodes[node.attachedTo];
    const hostEl = ctx.elements.get(node.attachedTo);
    if (hostEl === undefined || hostEl.type === 'bpmn:SequenceFlow' || DATA_ELEMENTS.has(hostEl.type)) {
      problem(ctx, node.id, `attachedToRef "${node.attachedTo}" is not an activity of process ${ctx.processId}`);
      continue;
    }
    const scope = node.scope ?? null;
    const hostScope = ctx.scopeOf.get(node.attachedTo) ?? null;
    if (hostScope !== scope) {
      problem(ctx, node.id, `attachedToRef "${node.attachedTo}" is in ${scopeLabel(ctx, hostScope)}; a boundary event must be in the same scope as its activity (this one is in ${scopeLabel(ctx, scope)})`);
      continue;
    }
    if (host === undefined) continue; // the host element itself was refused
    if (!ACTIVITY_TYPES.has(host.type) || host.triggeredByEvent === true) {
      const what = host.triggeredByEvent === true ? 'an event subprocess' : `not an activity (${xmlName(`bpmn:${host.type}`)})`;
      problem(ctx, node.id, `attachedToRef "${host.id}" is ${what}; boundary events are attached to tasks, subprocesses and call activities`);
      continue;
    }
    if (!checkBoundaryHost(ctx, node, host)) continue;
    host.boundary = [...(host.boundary ?? []), node.id];
    const clash = boundaryClash(node);
    if (clash === null) continue;
    const keys = seen.get(host.id) ?? new Set<string>();
    if (keys.has(clash.key)) problem(ctx, node.id, clash.message(host.id));
    keys.add(clash.key);
    seen.set(host.id, keys);
  }
}

/**
 * Host rules of particular boundary events: none on compensation handlers;
 * cancel boundaries on transactions only.
 */
function checkBoundaryHost(ctx: ProcessCtx, node: CompiledNode, host: CompiledNode): boolean {
  if (host.isForCompensation === true) {
    problem(ctx, node.id, `attachedToRef "${host.id}" is a compensation handler (isForCompensation="true"); boundary events on compensation handlers are not supported in this version`);
    return false;
  }
  const kind = node.event?.kind;
  if (kind === 'cancel' && host.transaction !== true) {
    problem(ctx, node.id, `attachedToRef "${host.id}" is a ${xmlName(`bpmn:${host.type}`)}; cancel boundary events are attached to transactions (bpmn:transaction)`);
    return false;
  }
  return true;
}

/** What a boundary event catches, when two of them on one activity must not catch the same. */
function boundaryClash(node: CompiledNode): { key: string; message: (host: string) => string } | null {
  if (node.event?.kind === 'compensate') return { key: 'compensate', message: (host) => `several compensation boundary events on ${host}` };
  if (node.event?.kind === 'cancel') return { key: 'cancel', message: (host) => `several cancel boundary events on ${host}` };
  if (node.error !== undefined) {
    const code = node.error.code;
    return {
      key: `error\0${code ?? ''}\0${code === null}`,
      message: (host) => (code === null ? `several catch-all error boundary events on ${host}` : `several error boundary events on ${host} catch errorCode "${code}"`),
    };
  }
  const event = node.event;
  if (event?.kind === 'escalation') {
    const code = event.code;
    return {
      key: `escalation\0${code ?? ''}\0${code === null}`,
      message: (host) => (code === null ? `several catch-all escalation boundary events on ${host}` : `several escalation boundary events on ${host} catch escalationCode "${code}"`),
    };
  }
  if (event?.kind === 'message' && 'literal' in event.name) {
    const name = String(event.name.literal);
    return { key: `message\0${name}`, message: (host) => `several message boundary events on ${host} wait for message "${name}"` };
  }
  return null;
}
