/**
 * BPMN 2.0 XML → compiled graph (compiler/graph.ts).
 *
 * Three stages, each collecting every problem it finds:
 *
 *  1. prescanXml (compiler/xml.ts): a cheap, linear scan of the raw text
 *     before any parser sees it: no DOCTYPE / ENTITY (entity expansion, XXE),
 *     bounded nesting depth and element count.
 *  2. parseBpmnXml (compiler/xml.ts): bpmn-moddle (with the camunda and zeebe
 *     extensions) parses the text in a worker thread with a heap limit and a
 *     wall-clock timeout, and hands back a plain element tree (XNode) plus
 *     moddle's warnings.
 *  3. compileDefinitions (here): the semantics, on the plain tree: which
 *     processes are executable, which elements and attributes are supported,
 *     and the graph the SQL engine walks.
 *
 * Shared by the semantic stage: compiler/context.ts (compile state, problem
 * reporting, accessors on XNode), compiler/parser-warnings.ts (moddle's
 * warnings → problems and warnings) and compiler/extensions.ts (camunda: /
 * zeebe: attributes and extension elements).
 *
 * Scopes: the flow elements of embedded and event subprocesses are compiled
 * into the same flat nodes / flows maps (node.scope = the subprocess id);
 * compileScope runs per scope with ctx.scope (start events, event
 * subprocesses), and flows, boundary attachments and link pairs are checked
 * to stay within one scope. Transactions (bpmn:transaction) are embedded
 * subprocesses with `transaction: true`.
 *
 * Compensation: a compensation boundary event names no flows; its handler (an
 * activity with isForCompensation="true", in the host's scope) is found through
 * the one bpmn:association leaving the boundary (associations are looked up in
 * the artifacts of the process and of every subprocess) and is named by the
 * host in `compensation`. Compensation throw events name the activity they
 * compensate (activityRef) or null for the whole scope.
 *
 * Adding an element kind in a later version: add its compile function to
 * NODE_COMPILERS (and its flow rules to checkNodeFlows); an event definition:
 * SUPPORTED_DEFINITIONS and compileEventOf; adding an extension element or
 * attribute: add it to EXTENSION_RULES / ATTRIBUTE_RULES
 * (compiler/extensions.ts). Literal timer texts are checked in
 * compiler/timer.ts.
 */
import {
  ACTIVITY_TYPES,
  baseNode,
  bool,
  DATA_ELEMENTS,
  eventDefinitions,
  extensionProperties,
  type ExtensionProperty,
  extensions,
  type FileCtx,
  idOf,
  kids,
  newScope,
  nonEmpty,
  NOTHING,
  problem,
  type ProcessCtx,
  ref,
  rootProblem,
  scopeLabel,
  type ScopeState,
  str,
  TRANSACTION,
  warn,
  xmlName,
} from './context';
import { compileExpression, isExpression } from './expression';
import { checkExtensions, EXTERNAL_TASK_HINT, JOB_WORKER_HINT } from './extensions';
import type {
  CallSpec,
  CompiledExpression,
  CompiledFlow,
  CompiledGraph,
  CompiledNode,
  CompiledProcess,
  CompiledValue,
  CompileProblem,
  EventDefinition,
  IoMapping,
  LoopSpec,
  NodeType,
  UserTaskSpec,
} from './graph';
import { MAX_UPSTREAM_ENTRIES } from './limits';
import { classifyParserWarnings, reportLeftoverReferences } from './parser-warnings';
import { isIsoDateTime, isIsoDuration, parseRetryCycle, type TimerKind, timerLiteralProblem } from './timer';
import type { ParserWarning, XNode } from './xml';

export { parseBpmnXml, prescanXml, type ParseOutcome, type ParserWarning, type XNode } from './xml';

export interface DefinitionsResult {
  processes: CompiledProcess[];
  problems: CompileProblem[];
  warnings: CompileProblem[];
}

// --- entry point -------------------------------------------------------------

/** Compiles a parsed bpmn:Definitions tree; `xml` is the source text (for locating parser findings). */
export function compileDefinitions(file: string, xml: string, root: XNode, parserWarnings: ParserWarning[]): DefinitionsResult {
  const ctx: FileCtx = {
    file,
    xml,
    problems: [],
    warnings: [],
    errorCodes: new Map(),
    escalationCodes: new Map(),
    messages: new Map(),
    signals: new Map(),
    rootProblems: new Set(),
    unresolved: new Map(),
  };
  if (root.type !== 'bpmn:Definitions') {
    problem(ctx, null, 'not a BPMN 2.0 file: the root element must be <bpmn:definitions>');
    return { processes: [], problems: ctx.problems, warnings: ctx.warnings };
  }
  classifyParserWarnings(ctx, parserWarnings);

  const rootElements = kids(root, 'rootElements');
  for (const el of rootElements) {
    const id = idOf(el);
    if (id === null) continue;
    if (el.type === 'bpmn:Error') ctx.errorCodes.set(id, nonEmpty(str(el, 'errorCode')));
    else if (el.type === 'bpmn:Escalation') ctx.escalationCodes.set(id, nonEmpty(str(el, 'escalationCode')));
    else if (el.type === 'bpmn:Message') ctx.messages.set(id, el);
    else if (el.type === 'bpmn:Signal') ctx.signals.set(id, el);
  }
  const processes = rootElements.filter((el) => el.type === 'bpmn:Process');
  const executable = processes.filter((p) => bool(p, 'isExecutable') === true);
  const compiled: CompiledProcess[] = [];
  if (executable.length === 0) {
    const only = processes.length === 1 ? idOf(processes[0]) : null;
    problem(ctx, only, 'no executable process (set isExecutable="true")');
  }
  for (const p of executable) {
    const c = compileProcess(ctx, p);
    if (c !== null) compiled.push(c);
  }
  reportLeftoverReferences(ctx);
  return { processes: ctx.problems.length === 0 ? compiled : [], problems: ctx.problems, warnings: ctx.warnings };
}

// --- process --------------------------------------------------------------------

function compileProcess(file: FileCtx, proc: XNode): CompiledProcess | null {
  const processId = idOf(proc);
  if (processId === null) {
    problem(file, null, 'executable process without id');
    return null;
  }
  const before = file.problems.length;
  const scope = newScope(null, 'process');
  const ctx: ProcessCtx = { ...file, processId, elements: new Map(), scopeOf: new Map(), associations: [], nodes: {}, flows: {}, scope };
  // ctx shares the file's arrays and maps (spread copies the references).

  checkExtensions(ctx, proc, PROCESS_CONSUMES);
  checkProcessChildren(ctx, proc);
  collectElements(ctx, proc, null);
  compileScope(ctx, proc);
  for (const el of ctx.elements.values()) {
    if (el.type === 'bpmn:SequenceFlow') compileSequenceFlow(ctx, el);
  }
  attachBoundaryEvents(ctx);
  resolveLinks(ctx);
  linkCompensationHandlers(ctx);
  checkCompensationThrows(ctx);
  checkTransactions(ctx);
  for (const node of Object.values(ctx.nodes)) checkNodeFlows(ctx, node);
  checkStart(ctx, proc);
  computeUpstream(ctx);

  if (file.problems.length > before) return null;
  const graph: Omit<CompiledGraph, 'nodes' | 'flows'> = { start: scope.noneStarts[0] ?? null };
  if (scope.eventStarts.length > 0) graph.eventStarts = scope.eventStarts;
  if (scope.eventSubprocesses.length > 0) graph.eventSubprocesses = scope.eventSubprocesses;
  return {
    key: processId,
    name: nonEmpty(str(proc, 'name')),
    versionTag: processVersionTag(proc),
    graph: { ...graph, nodes: ctx.nodes, flows: ctx.flows },
  };
}

/** Container elements whose flow elements are compiled as a scope. */
function isSubProcessElement(el: XNode): boolean {
  return el.type === 'bpmn:SubProcess' || el.type === TRANSACTION;
}

/**
 * Registers the flow elements of `container` (and, recursively, of its
 * subprocesses) with their scope, and collects the associations.
 */
function collectElements(ctx: ProcessCtx, container: XNode, scopeId: string | null): void {
  ctx.associations.push(...kids(container, 'artifacts').filter((a) => a.type === 'bpmn:Association'));
  for (const el of kids(container, 'flowElements')) {
    const id = idOf(el);
    if (id === null) {
      problem(ctx, null, `${xmlName(el.type)} without id in ${scopeLabel(ctx, scopeId)}`);
      continue;
    }
    ctx.elements.set(id, el);
    ctx.scopeOf.set(id, scopeId);
    if (isSubProcessElement(el)) collectElements(ctx, el, id);
  }
}

/** Compiles the flow nodes of `container` (the process or a subprocess) in ctx.scope; sequence flows are compiled afterwards. */
function compileScope(ctx: ProcessCtx, container: XNode): void {
  for (const el of kids(container, 'flowElements')) {
    const id = idOf(el);
    if (id === null || el.type === 'bpmn:SequenceFlow') continue;
    if (DATA_ELEMENTS.has(el.type)) {
      warn(ctx, id, `${xmlName(el.type)} is ignored (data objects and stores have no semantics in this version)`);
      continue;
    }
    const compileNode = NODE_COMPILERS[el.type];
    if (compileNode === undefined) {
      rejectElement(ctx, el, id);
      continue;
    }
    const node = compileNode(ctx, el, id);
    if (node === null) continue;
    if (ctx.scope.id !== null) node.scope = ctx.scope.id;
    compileJobSettings(ctx, el, node);
    compileExtensionProperties(ctx, el, node);
    ctx.nodes[id] = node;
    if (isSubProcessElement(el)) compileSubProcessScope(ctx, el, node);
  }
}

const PROCESS_CONSUMES: ReadonlySet<string> = new Set(['camunda:versionTag', 'zeebe:VersionTag']);

function processVersionTag(proc: XNode): string | null {
  const camunda = nonEmpty(str(proc, 'camunda:versionTag'));
  if (camunda !== null) return camunda;
  const zeebe = extensions(proc).find((e) => e.type === 'zeebe:VersionTag');
  return zeebe !== undefined ? nonEmpty(str(zeebe, 'zeebe:value')) : null;
}

/** Process children other than flow elements. */
function checkProcessChildren(ctx: ProcessCtx, proc: XNode): void {
  for (const [key, list] of Object.entries(proc.children)) {
    switch (key) {
      case 'flowElements':
      case 'extensionElements':
      case 'documentation':
      case 'laneSets':
      case 'artifacts': // text annotations, associations, groups
        break;
      case 'properties':
      case 'resources':
      case 'monitoring':
      case 'auditing':
        warn(ctx, ctx.processId, `${list.map((c) => xmlName(c.type)).join(', ')} on the process ${list.length > 1 ? 'are' : 'is'} ignored`);
        break;
      default:
        for (const c of list) problem(ctx, idOf(c) ?? ctx.processId, `element type ${xmlName(c.type)} is not supported in this version`);
    }
  }
}

/** At least one start event; at most one none start event; message start events wait for distinct messages. */
function checkStart(ctx: ProcessCtx, proc: XNode): void {
  const scope = ctx.scope;
  if (scope.startElements === 0) {
    problem(ctx, idOf(proc), 'process has no start event (a none, message, signal or timer start event is required)');
  } else if (scope.noneStarts.length > 1) {
    problem(ctx, idOf(proc), `process has ${scope.noneStarts.length} none start events (${scope.noneStarts.join(', ')}); exactly one is supported in this version`);
  }
  checkEventSubprocessClashes(ctx, scope);
  const messageStarts = new Map<string, string>();
  for (const id of scope.eventStarts) {
    const event = ctx.nodes[id]?.event;
    if (event?.kind !== 'message' || !('literal' in event.name)) continue;
    const name = String(event.name.literal);
    const first = messageStarts.get(name);
    if (first !== undefined) problem(ctx, id, `message start events ${first} and ${id} both wait for message "${name}"; the message names of start events must be unique in a process`);
    else messageStarts.set(name, id);
  }
}

// --- flow nodes ---------------------------------------------------------------

type NodeCompiler = (ctx: ProcessCtx, el: XNode, id: string) => CompiledNode | null;

const NODE_COMPILERS: Readonly<Record<string, NodeCompiler>> = {
  'bpmn:StartEvent': compileStartEvent,
  'bpmn:EndEvent': compileEndEvent,
  'bpmn:IntermediateCatchEvent': compileCatchEvent,
  'bpmn:IntermediateThrowEvent': compileThrowEvent,
  'bpmn:BoundaryEvent': compileBoundaryEvent,
  'bpmn:Task': (ctx, el, id) => compileActivity(ctx, el, id, 'task', NOTHING),
  'bpmn:ManualTask': (ctx, el, id) => compileActivity(ctx, el, id, 'manualTask', NOTHING),
  'bpmn:UserTask': compileUserTask,
  'bpmn:ServiceTask': (ctx, el, id) => compileExternalTask(ctx, el, id, 'serviceTask'),
  'bpmn:SendTask': compileSendTask,
  'bpmn:BusinessRuleTask': (ctx, el, id) => compileExternalTask(ctx, el, id, 'businessRuleTask'),
  'bpmn:ReceiveTask': compileReceiveTask,
  'bpmn:ExclusiveGateway': (ctx, el, id) => compileGateway(ctx, el, id, 'exclusiveGateway'),
  'bpmn:InclusiveGateway': (ctx, el, id) => compileGateway(ctx, el, id, 'inclusiveGateway'),
  'bpmn:ParallelGateway': (ctx, el, id) => compileGateway(ctx, el, id, 'parallelGateway'),
  'bpmn:EventBasedGateway': compileEventGateway,
  'bpmn:ScriptTask': rejectScriptTask,
  'bpmn:SubProcess': compileSubProcess,
  'bpmn:Transaction': compileTransaction,
  'bpmn:CallActivity': compileCallActivity,
};

function rejectElement(ctx: ProcessCtx, el: XNode, id: string): void {
  const defs = eventDefinitions(el).map((d) => xmlName(d.type));
  const detail = defs.length > 0 ? ` (${defs.join(', ')})` : '';
  problem(ctx, id, `element type ${xmlName(el.type)}${detail} is not supported in this version`);
}

function rejectScriptTask(ctx: ProcessCtx, el: XNode, id: string): null {
  if (extensions(el).some((e) => e.type === 'zeebe:Script')) {
    checkExtensions(ctx, el); // reports zeebe:script
    return null;
  }
  const format = str(el, 'scriptFormat');
  const how = format !== undefined ? ` (scriptFormat="${format}")` : '';
  const hint = extensions(el).some((e) => e.type === 'zeebe:TaskDefinition') ? JOB_WORKER_HINT : EXTERNAL_TASK_HINT;
  problem(ctx, id, `script tasks are not supported${how}; ${hint}`);
  return null;
}

// --- events ------------------------------------------------------------------------

/** Where an event sits; also the wording of its messages ("message intermediate catch event"). */
type EventPosition = 'start' | 'event subprocess start' | 'end' | 'intermediate catch' | 'intermediate throw' | 'boundary';

const TIMER = 'bpmn:TimerEventDefinition';
const MESSAGE = 'bpmn:MessageEventDefinition';
const SIGNAL = 'bpmn:SignalEventDefinition';
const ERROR = 'bpmn:ErrorEventDefinition';
const ESCALATION = 'bpmn:EscalationEventDefinition';
const TERMINATE = 'bpmn:TerminateEventDefinition';
const LINK = 'bpmn:LinkEventDefinition';
const COMPENSATE = 'bpmn:CompensateEventDefinition';
const CANCEL = 'bpmn:CancelEventDefinition';

/**
 * Event definitions supported per position; everything else (conditional,
 * compensation start events, cancel outside end and boundary events, …) is refused.
 */
const SUPPORTED_DEFINITIONS: Readonly<Record<EventPosition, ReadonlySet<string>>> = {
  start: new Set([TIMER, MESSAGE, SIGNAL]),
  'event subprocess start': new Set([TIMER, MESSAGE, SIGNAL, ERROR, ESCALATION]),
  'intermediate catch': new Set([TIMER, MESSAGE, SIGNAL, LINK]),
  boundary: new Set([TIMER, MESSAGE, SIGNAL, ERROR, ESCALATION, COMPENSATE, CANCEL]),
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
const JOB_WORKER_CONSUMES: ReadonlySet<string> = new Set(['zeebe:TaskDefinition']);
const MESSAGE_DEFINITION_CONSUMES: ReadonlySet<string> = new Set(['camunda:type', 'camunda:topic']);

/** camunda:/zeebe: extensions of an event element (a message throw reads its zeebe:taskDefinition itself). */
function checkEventExtensions(ctx: ProcessCtx, el: XNode, position: EventPosition): void {
  const defs = eventDefinitions(el);
  const messageThrow = isThrowing(position) && defs.length === 1 && defs[0].type === MESSAGE;
  checkExtensions(ctx, el, messageThrow ? JOB_WORKER_CONSUMES : NOTHING);
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
  checkExtensions(ctx, def, NOTHING, id);
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
      event = compileError(ctx, id, def);
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
function compileStartEvent(ctx: ProcessCtx, el: XNode, id: string): CompiledNode {
  checkEventExtensions(ctx, el, 'start');
  const scope = ctx.scope;
  scope.startElements++;
  const node = baseNode(el, id, 'startEvent');
  if (scope.kind === 'eventSubProcess') return compileEventSubprocessStart(ctx, el, id, node);
  const defs = eventDefinitions(el);
  if (scope.kind === 'subProcess' && defs.length > 0) {
    problem(ctx, id, `the start event of an embedded subprocess must be a none start event, not a ${defs.map(eventKind).join(', ')} start event; use an event subprocess (triggeredByEvent="true") or a boundary event for events`);
    return node;
  }
  const outcome = compileEventOf(ctx, el, id, node, 'start');
  if (outcome === 'none') scope.noneStarts.push(id);
  else if (outcome === 'ok') scope.eventStarts.push(id);
  return node;
}

/** The start event of an event subprocess: an event definition is required; error starts always interrupt. */
function compileEventSubprocessStart(ctx: ProcessCtx, el: XNode, id: string, node: CompiledNode): CompiledNode {
  const interrupting = bool(el, 'isInterrupting') !== false;
  node.interrupting = interrupting;
  if (eventDefinitions(el).some((d) => d.type === COMPENSATE)) {
    problem(ctx, id, 'compensation event subprocesses are not supported in this version');
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

function compileEndEvent(ctx: ProcessCtx, el: XNode, id: string): CompiledNode {
  checkEventExtensions(ctx, el, 'end');
  const node: CompiledNode = { ...baseNode(el, id, 'endEvent'), terminate: false };
  compileEventOf(ctx, el, id, node, 'end');
  return node;
}

function compileCatchEvent(ctx: ProcessCtx, el: XNode, id: string): CompiledNode {
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
function compileThrowEvent(ctx: ProcessCtx, el: XNode, id: string): CompiledNode {
  checkEventExtensions(ctx, el, 'intermediate throw');
  const node = baseNode(el, id, 'intermediateThrowEvent');
  compileEventOf(ctx, el, id, node, 'intermediate throw');
  return node;
}

function compileBoundaryEvent(ctx: ProcessCtx, el: XNode, id: string): CompiledNode {
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

// --- timers --------------------------------------------------------------------------

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

// --- messages, signals, errors, escalations -----------------------------------------

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
  if (impl.topic !== null) node.topic = impl.topic;
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

/** A literal error or escalation code (expressions are refused). */
function literalCode(ctx: ProcessCtx, rootId: string, attr: string, code: string | null): boolean {
  if (code === null || !isExpression(code)) return true;
  rootProblem(ctx, rootId, `${attr}="${code}": expressions are not supported here; write a literal code`);
  return false;
}

/** Error end events and error boundary events: errorRef → errorCode (none: catch-all / no code). */
function compileError(ctx: ProcessCtx, id: string, def: XNode): EventDefinition | null {
  const r = ref(ctx, def, 'errorRef');
  if (r.kind === 'none') return { kind: 'error', code: null };
  if (r.kind === 'unresolved' || !ctx.errorCodes.has(r.id)) {
    problem(ctx, id, `errorRef "${r.kind === 'ok' ? r.id : r.value}" does not reference a bpmn:error`);
    return null;
  }
  const code = ctx.errorCodes.get(r.id) ?? null;
  return literalCode(ctx, r.id, 'errorCode', code) ? { kind: 'error', code } : null;
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
  return { kind: 'escalation', code };
}

// --- receive tasks, event-based gateways ---------------------------------------------

function compileReceiveTask(ctx: ProcessCtx, el: XNode, id: string): CompiledNode {
  const node = compileActivity(ctx, el, id, 'receiveTask', NOTHING);
  if (bool(el, 'instantiate') === true) {
    problem(ctx, id, 'receive tasks that start the process (instantiate="true") are not supported; use a message start event');
  }
  const event = compileMessageCatch(ctx, id, el, false, 'receive task');
  if (event !== null) node.event = event;
  return node;
}

function compileEventGateway(ctx: ProcessCtx, el: XNode, id: string): CompiledNode {
  checkExtensions(ctx, el);
  if (bool(el, 'instantiate') === true) {
    problem(ctx, id, 'event-based gateways that start the process (instantiate="true") are not supported; use message, signal or timer start events');
  }
  const type = str(el, 'eventGatewayType');
  if (type !== undefined && type !== 'Exclusive') {
    problem(ctx, id, `parallel event-based gateways (eventGatewayType="${type}") are not supported in this version`);
  }
  return baseNode(el, id, 'eventBasedGateway');
}

/** Outgoing flows of an event-based gateway: unconditional, each to a catch event or receive task only it leads to. */
function checkEventGateway(ctx: ProcessCtx, node: CompiledNode): void {
  const messages = new Map<string, string>();
  for (const f of node.out) {
    const flow = ctx.flows[f];
    if (flow === undefined) continue;
    if (flow.condition !== null) problem(ctx, f, `sequence flow out of event-based gateway ${node.id} must not have a condition`);
    const target = ctx.nodes[flow.target];
    if (target === undefined) continue; // unresolved or refused target: already reported
    if (target.type !== 'intermediateCatchEvent' && target.type !== 'receiveTask') {
      problem(ctx, node.id, `event-based gateway: sequence flow ${f} leads to ${xmlName(`bpmn:${target.type}`)} ${target.id}; every outgoing sequence flow must lead to an intermediate catch event (message, timer or signal) or a receive task`);
      continue;
    }
    const others = target.in.filter((i) => i !== f);
    if (others.length > 0) {
      problem(ctx, node.id, `event-based gateway: ${target.id} (after sequence flow ${f}) must have no other incoming sequence flow (${others.join(', ')})`);
    }
    const event = target.event;
    if (event?.kind === 'message' && 'literal' in event.name) {
      const name = String(event.name.literal);
      const first = messages.get(name);
      if (first !== undefined) problem(ctx, node.id, `event-based gateway: ${first} and ${target.id} both wait for message "${name}"`);
      else messages.set(name, target.id);
    }
  }
}

// --- asynchronous continuations, job retries, user task escalation -------------------

/** camunda:asyncBefore (camunda:async) / camunda:asyncAfter and camunda:failedJobRetryTimeCycle of any flow node. */
function compileJobSettings(ctx: ProcessCtx, el: XNode, node: CompiledNode): void {
  const before = bool(el, 'camunda:asyncBefore') === true || bool(el, 'camunda:async') === true;
  const after = bool(el, 'camunda:asyncAfter') === true;
  if (before) node.asyncBefore = true;
  if (after) node.asyncAfter = true;
  const cycles = extensions(el).filter((e) => e.type === 'camunda:FailedJobRetryTimeCycle');
  if (cycles.length === 0) return;
  if (cycles.length > 1) {
    problem(ctx, node.id, 'several camunda:failedJobRetryTimeCycle elements');
    return;
  }
  const text = (str(cycles[0], 'camunda:body') ?? '').trim();
  if (text === '') {
    problem(ctx, node.id, 'empty camunda:failedJobRetryTimeCycle');
    return;
  }
  if (isExpression(text)) {
    problem(ctx, node.id, `camunda:failedJobRetryTimeCycle="${text}": expressions are not supported here; write R<retries>/<ISO 8601 duration> (e.g. R3/PT5M)`);
    return;
  }
  const retry = parseRetryCycle(text);
  if (typeof retry === 'string') {
    problem(ctx, node.id, `camunda:failedJobRetryTimeCycle="${text}" ${retry}`);
    return;
  }
  node.jobRetry = retry;
  if (!before && !after && node.event?.kind !== 'timer') {
    warn(ctx, node.id, 'camunda:failedJobRetryTimeCycle has no effect without camunda:asyncBefore or camunda:asyncAfter (or a timer event)');
  }
}

type EscalationField = 'after' | 'addCandidateGroups' | 'reassignTo';

const ESCALATION_PROPERTIES: Readonly<Record<string, [EscalationField, ValueKind]>> = {
  'pgbpm:escalateAfter': ['after', 'duration'],
  'pgbpm:escalateToGroups': ['addCandidateGroups', 'list'],
  'pgbpm:escalateToAssignee': ['reassignTo', 'text'],
};

/**
 * `pgbpm:` extension properties: the escalation of an overdue user task (and
 * the output collection of multi-instance activities, read by compileLoop).
 * Other properties are not ours and stay ignored.
 */
function compileExtensionProperties(ctx: ProcessCtx, el: XNode, node: CompiledNode): void {
  const all = extensionProperties(el).filter((p) => p.name.startsWith('pgbpm:'));
  checkLoopProperties(ctx, el, node.id, all);
  const props = all.filter((p) => !LOOP_PROPERTIES.has(p.name));
  if (props.length === 0) return;
  const known = props.filter((p) => {
    if (Object.prototype.hasOwnProperty.call(ESCALATION_PROPERTIES, p.name)) return true;
    problem(ctx, node.id, `unknown extension property ${p.name} (${p.label}); the pgbpm: properties are ${[...Object.keys(ESCALATION_PROPERTIES), ...LOOP_PROPERTIES].join(', ')}`);
    return false;
  });
  if (node.type !== 'userTask') {
    for (const p of known) warn(ctx, node.id, `${p.name} only applies to user tasks and is ignored here`);
    return;
  }
  const spec: Partial<Record<EscalationField, CompiledValue>> = {};
  const seen = new Set<string>();
  for (const p of known) {
    if (seen.has(p.name)) {
      problem(ctx, node.id, `${p.name} is set more than once`);
      continue;
    }
    seen.add(p.name);
    const [field, kind] = ESCALATION_PROPERTIES[p.name];
    if (p.value.trim() === '') {
      problem(ctx, node.id, `${p.name} has no value`);
      continue;
    }
    const value = compileUserTaskValue(ctx, node.id, p.name, p.value, kind, p.label === 'zeebe:property');
    if (value !== null) spec[field] = value;
  }
  if (!seen.has('pgbpm:escalateAfter')) {
    problem(ctx, node.id, `${[...seen].join(', ')} without pgbpm:escalateAfter (when the task escalates)`);
    return;
  }
  if (spec.after === undefined) return;
  node.taskEscalation = { after: spec.after };
  if (spec.addCandidateGroups !== undefined) node.taskEscalation.addCandidateGroups = spec.addCandidateGroups;
  if (spec.reassignTo !== undefined) node.taskEscalation.reassignTo = spec.reassignTo;
}

/** Activity-wide checks and fields (default flow, boundary list, input/output mappings, multi-instance). */
function compileActivity(ctx: ProcessCtx, el: XNode, id: string, type: NodeType, consumes: ReadonlySet<string>): CompiledNode {
  checkExtensions(ctx, el, new Set([...consumes, ...IO_CONSUMES]));
  for (const io of kids(el, 'ioSpecification')) problem(ctx, id, `element type ${xmlName(io.type)} is not supported in this version`);
  for (const r of kids(el, 'resources')) {
    problem(ctx, id, `${xmlName(r.type)} is not supported in this version; assign user tasks with camunda:assignee / camunda:candidateGroups or zeebe:assignmentDefinition`);
  }
  const data = [...kids(el, 'dataInputAssociations'), ...kids(el, 'dataOutputAssociations')];
  if (data.length > 0) warn(ctx, id, 'data associations are ignored (data objects and stores have no semantics in this version)');
  if (kids(el, 'properties').length > 0) warn(ctx, id, 'bpmn:property elements are ignored');
  const node: CompiledNode = { ...baseNode(el, id, type), default: defaultFlow(ctx, el, id), boundary: [] };
  if (bool(el, 'isForCompensation') === true) node.isForCompensation = true;
  compileIoMappings(ctx, el, node);
  compileLoop(ctx, el, node);
  return node;
}

// --- values shared by mappings, loops and call activities ------------------------------

/** A plain variable name (no expression, not empty). */
function isVariableName(text: string): boolean {
  return /^[A-Za-z_][A-Za-z0-9_]*$/.test(text);
}

/**
 * An expression reading variable `name`. `required`: the engine raises BP302
 * when it is missing; otherwise a missing variable reads as null.
 */
function readVariable(name: string, required: boolean): CompiledExpression | null {
  const r = compileExpression(`\${${name}}`, 'value');
  if (!r.ok) return null;
  return required ? r.expr : { ...r.expr, vars: [] };
}

/** Text that is an expression (compiled as a value) or a literal string. */
function compileValueText(ctx: ProcessCtx, id: string, label: string, raw: string): CompiledValue | null {
  const text = raw.trim();
  if (!isExpression(text)) return { literal: text };
  const feelString = /^=\s*"([^"\\]*)"\s*$/.exec(text);
  if (feelString !== null) return { literal: feelString[1] };
  const r = compileExpression(text, 'value');
  if (!r.ok) {
    problem(ctx, id, `${label}: ${r.message}`);
    return null;
  }
  return { expr: r.expr };
}

/** Text that must be an expression (`${...}`, `=...`). */
function compileExpressionText(ctx: ProcessCtx, id: string, label: string, raw: string, kind: 'condition' | 'value', hint: string): CompiledExpression | null {
  const text = raw.trim();
  if (!isExpression(text)) {
    problem(ctx, id, `${label}="${text}" is not an expression; ${hint}`);
    return null;
  }
  const r = compileExpression(text, kind);
  if (!r.ok) {
    problem(ctx, id, `${label}: ${r.message}`);
    return null;
  }
  return r.expr;
}

// --- input/output mappings ------------------------------------------------------------

const IO_CONSUMES: ReadonlySet<string> = new Set(['camunda:InputOutput', 'zeebe:IoMapping']);

type IoValue = IoMapping['value'];
type JsonValue = string | null | JsonValue[] | { [key: string]: JsonValue };

/**
 * camunda:inputOutput and zeebe:ioMapping of an activity → node.inputs /
 * node.outputs (a call activity's zeebe:ioMapping maps variables into and out
 * of the called process instead: compileCall).
 */
function compileIoMappings(ctx: ProcessCtx, el: XNode, node: CompiledNode): void {
  const exts = extensions(el);
  const camunda = exts.filter((e) => e.type === 'camunda:InputOutput');
  const zeebe = node.type === 'callActivity' ? [] : exts.filter((e) => e.type === 'zeebe:IoMapping');
  if (camunda.length > 1) problem(ctx, node.id, 'several camunda:inputOutput elements');
  if (zeebe.length > 1) problem(ctx, node.id, 'several zeebe:ioMapping elements');
  const inputs: IoMapping[] = [];
  const outputs: IoMapping[] = [];
  for (const io of camunda.slice(0, 1)) {
    inputs.push(...camundaParameters(ctx, node.id, io, 'input'));
    outputs.push(...camundaParameters(ctx, node.id, io, 'output'));
  }
  for (const io of zeebe.slice(0, 1)) {
    inputs.push(...zeebeMappings(ctx, node.id, io, 'input'));
    outputs.push(...zeebeMappings(ctx, node.id, io, 'output'));
  }
  if (inputs.length > 0) node.inputs = inputs;
  if (outputs.length > 0) node.outputs = outputs;
}

/** camunda:inputParameter / camunda:outputParameter elements: name → target, text, `${expr}`, camunda:list or camunda:map body. */
function camundaParameters(ctx: ProcessCtx, id: string, io: XNode, dir: 'input' | 'output'): IoMapping[] {
  const label = `camunda:${dir}Parameter`;
  const mappings: IoMapping[] = [];
  for (const p of kids(io, `camunda:${dir}Parameters`)) {
    const target = nonEmpty(str(p, 'camunda:name'));
    if (target === null) {
      problem(ctx, id, `${label} without name`);
      continue;
    }
    const value = camundaParameterValue(ctx, id, `${label} "${target}"`, p);
    if (value !== undefined) mappings.push({ target, value });
  }
  return mappings;
}

/** The value of a camunda parameter or map entry; undefined when a problem was reported. */
function camundaParameterValue(ctx: ProcessCtx, id: string, label: string, p: XNode): IoValue | undefined {
  const definition = kids(p, 'camunda:definition')[0];
  if (definition !== undefined) {
    const json = camundaJson(ctx, id, label, definition);
    return json === undefined ? undefined : { json };
  }
  const body = nonEmpty(str(p, 'camunda:value'));
  if (body === null) return null;
  return compileValueText(ctx, id, label, body) ?? undefined;
}

/** camunda:list / camunda:map (nested) → a JSON value; expressions inside and scripts are refused. Undefined: problem reported. */
function camundaJson(ctx: ProcessCtx, id: string, label: string, def: XNode): JsonValue | undefined {
  switch (def.type) {
    case 'camunda:Script': {
      const format = str(def, 'camunda:scriptFormat');
      problem(ctx, id, `scripts are not supported (camunda:script${format !== undefined ? ` scriptFormat="${format}"` : ''} in ${label})`);
      return undefined;
    }
    case 'camunda:Value':
      return camundaJsonText(ctx, id, label, str(def, 'camunda:value'));
    case 'camunda:List': {
      const items = kids(def, 'camunda:items').map((item) => camundaJson(ctx, id, label, item));
      return items.every((x): x is JsonValue => x !== undefined) ? items : undefined;
    }
    case 'camunda:Map':
      return camundaJsonMap(ctx, id, label, def);
    default:
      problem(ctx, id, `${xmlName(def.type)} in ${label} is not supported`);
      return undefined;
  }
}

function camundaJsonMap(ctx: ProcessCtx, id: string, label: string, def: XNode): JsonValue | undefined {
  const map: { [key: string]: JsonValue } = {};
  let ok = true;
  for (const entry of kids(def, 'camunda:entries')) {
    const key = str(entry, 'camunda:key');
    if (key === undefined) {
      problem(ctx, id, `camunda:entry without key in ${label}`);
      ok = false;
      continue;
    }
    const nested = kids(entry, 'camunda:definition')[0];
    const value = nested !== undefined ? camundaJson(ctx, id, label, nested) : camundaJsonText(ctx, id, label, str(entry, 'camunda:value'));
    if (value === undefined) ok = false;
    else map[key] = value;
  }
  return ok ? map : undefined;
}

/** A text item of a camunda:list / camunda:map: a string (null when empty); expressions are refused. */
function camundaJsonText(ctx: ProcessCtx, id: string, label: string, text: string | undefined): JsonValue | undefined {
  if (text === undefined || text.trim() === '') return null;
  if (isExpression(text)) {
    problem(ctx, id, `expressions inside camunda:list / camunda:map are not supported (${label}: "${text.trim()}"); compute the value with one expression instead`);
    return undefined;
  }
  return text.trim();
}

/** zeebe:input / zeebe:output: source (`=expr` or a literal) → target (a variable name). */
function zeebeMappings(ctx: ProcessCtx, id: string, io: XNode, dir: 'input' | 'output'): IoMapping[] {
  const label = `zeebe:${dir}`;
  const mappings: IoMapping[] = [];
  for (const p of kids(io, `zeebe:${dir}Parameters`)) {
    const target = nonEmpty(str(p, 'zeebe:target'));
    if (target === null) {
      problem(ctx, id, `${label} without target`);
      continue;
    }
    if (target.includes('.')) {
      problem(ctx, id, `${label} target="${target}": nested targets are not supported in this version; map to a variable name`);
      continue;
    }
    const source = nonEmpty(str(p, 'zeebe:source'));
    const value = source === null ? null : compileValueText(ctx, id, `${label} target="${target}" source`, source);
    if (value !== null || source === null) mappings.push({ target: target.trim(), value });
  }
  return mappings;
}

// --- multi-instance ------------------------------------------------------------------

const MULTI_INSTANCE = 'bpmn:MultiInstanceLoopCharacteristics';
const LOOP_CONSUMES: ReadonlySet<string> = new Set([
  'camunda:collection',
  'camunda:elementVariable',
  'camunda:exclusive',
  'camunda:async',
  'camunda:asyncBefore',
  'camunda:asyncAfter',
  'camunda:FailedJobRetryTimeCycle',
  'zeebe:LoopCharacteristics',
]);
/** Extension properties of a multi-instance activity (Camunda 7 models have no attribute for them). */
const LOOP_PROPERTIES: ReadonlySet<string> = new Set(['pgbpm:outputCollection', 'pgbpm:outputElement']);
/** Children of bpmn:multiInstanceLoopCharacteristics read here. */
const LOOP_CHILDREN: ReadonlySet<string> = new Set(['extensionElements', 'documentation', 'loopCardinality', 'completionCondition']);

/** bpmn:multiInstanceLoopCharacteristics → node.loop; standard loops are refused. */
function compileLoop(ctx: ProcessCtx, el: XNode, node: CompiledNode): void {
  const loops = kids(el, 'loopCharacteristics');
  for (const loop of loops) {
    if (loop.type !== MULTI_INSTANCE) {
      problem(ctx, node.id, `loops (${xmlName(loop.type)}) are not supported in this version; use multi-instance (bpmn:multiInstanceLoopCharacteristics) or a sequence flow back to the activity`);
      continue;
    }
    const spec = compileMultiInstance(ctx, el, node.id, loop);
    if (spec !== null) node.loop = spec;
  }
}

function compileMultiInstance(ctx: ProcessCtx, el: XNode, id: string, loop: XNode): LoopSpec | null {
  const before = ctx.problems.length;
  checkLoopElement(ctx, id, loop);
  const zeebeAll = extensions(loop).filter((e) => e.type === 'zeebe:LoopCharacteristics');
  if (zeebeAll.length > 1) problem(ctx, id, 'several zeebe:loopCharacteristics elements');
  const zeebe = zeebeAll[0];
  const spec: LoopSpec = { sequential: bool(loop, 'isSequential') === true };
  const cardinality = loopCardinality(ctx, id, loop);
  const collection = loopCollection(ctx, id, loop, zeebe);
  if (cardinality !== undefined && collection !== undefined) {
    problem(ctx, id, 'multi-instance with both loopCardinality and a collection; set exactly one');
  } else if (cardinality === undefined && collection === undefined) {
    problem(ctx, id, 'multi-instance needs loopCardinality or a collection (camunda:collection or zeebe:loopCharacteristics inputCollection)');
  }
  if (cardinality !== undefined && cardinality !== null) spec.cardinality = cardinality;
  if (collection !== undefined && collection !== null) spec.collection = collection;
  const element = loopNames(ctx, id, 'element variable', [
    ['camunda:elementVariable', str(loop, 'camunda:elementVariable')],
    ['zeebe:loopCharacteristics inputElement', zeebe !== undefined ? str(zeebe, 'zeebe:inputElement') : undefined],
  ]);
  if (element !== null) spec.elementVariable = element;
  if (element !== null && collection === undefined) problem(ctx, id, `element variable "${element}" without a collection`);
  const completion = kids(loop, 'completionCondition')[0];
  const completionText = completion !== undefined ? (str(completion, 'body') ?? '').trim() : '';
  if (completion !== undefined && completionText === '') problem(ctx, id, 'empty completionCondition');
  if (completionText !== '') {
    const expr = compileExpressionText(ctx, id, 'completionCondition', completionText, 'condition', 'write ${...} or =...');
    if (expr !== null) spec.completionCondition = expr;
  }
  loopOutput(ctx, el, id, zeebe, spec);
  return ctx.problems.length === before ? spec : null;
}

/** What the loop element may carry: no asynchronous inner instances, no BPMN data inputs/outputs or behaviors. */
function checkLoopElement(ctx: ProcessCtx, id: string, loop: XNode): void {
  for (const attr of ['camunda:asyncBefore', 'camunda:asyncAfter', 'camunda:async']) {
    if (bool(loop, attr) === true) {
      problem(ctx, id, `${attr} on bpmn:multiInstanceLoopCharacteristics (asynchronous inner instances) is not supported in this version; set it on the activity itself`);
    }
  }
  if (extensions(loop).some((e) => e.type === 'camunda:FailedJobRetryTimeCycle')) {
    problem(ctx, id, 'camunda:failedJobRetryTimeCycle on bpmn:multiInstanceLoopCharacteristics (asynchronous inner instances) is not supported in this version; set it on the activity itself');
  }
  checkExtensions(ctx, loop, LOOP_CONSUMES, id);
  const others = [...Object.keys(loop.children).filter((k) => !LOOP_CHILDREN.has(k)), ...Object.keys(loop.refs)];
  if (others.length > 0) {
    problem(ctx, id, `multi-instance ${others.join(', ')} are not supported in this version; use camunda:collection / camunda:elementVariable or zeebe:loopCharacteristics`);
  }
  const behavior = str(loop, 'behavior');
  if (behavior !== undefined && behavior !== 'All') problem(ctx, id, `multi-instance behavior="${behavior}" is not supported in this version`);
}

/** bpmn:loopCardinality: an integer literal or an expression. Undefined: absent; null: a problem was reported. */
function loopCardinality(ctx: ProcessCtx, id: string, loop: XNode): CompiledValue | null | undefined {
  const el = kids(loop, 'loopCardinality')[0];
  if (el === undefined) return undefined;
  const text = (str(el, 'body') ?? '').trim();
  if (text === '') {
    problem(ctx, id, 'empty loopCardinality');
    return null;
  }
  if (isExpression(text)) return compileValueText(ctx, id, 'loopCardinality', text);
  if (!/^\d{1,9}$/.test(text)) {
    problem(ctx, id, `loopCardinality="${text}" is not a non-negative integer or an expression`);
    return null;
  }
  return { literal: Number(text) };
}

/** camunda:collection (`${expr}` or a variable name) / zeebe inputCollection (`=expr`). Undefined: absent; null: a problem was reported. */
function loopCollection(ctx: ProcessCtx, id: string, loop: XNode, zeebe: XNode | undefined): CompiledValue | null | undefined {
  const camunda = nonEmpty(str(loop, 'camunda:collection'));
  const feel = zeebe !== undefined ? nonEmpty(str(zeebe, 'zeebe:inputCollection')) : null;
  if (camunda !== null && feel !== null) {
    problem(ctx, id, 'camunda:collection and zeebe:loopCharacteristics inputCollection are both set; set one');
    return null;
  }
  if (feel !== null) {
    const expr = compileExpressionText(ctx, id, 'zeebe:loopCharacteristics inputCollection', feel, 'value', `write =${feel.trim()} to read a variable`);
    return expr === null ? null : { expr };
  }
  if (camunda === null) return undefined;
  return variableOrExpression(ctx, id, 'camunda:collection', camunda);
}

/** `${expr}` / `=expr`, or a plain variable name read as a required variable. */
function variableOrExpression(ctx: ProcessCtx, id: string, label: string, raw: string): CompiledValue | null {
  const text = raw.trim();
  if (isExpression(text)) {
    const r = compileExpression(text, 'value');
    if (r.ok) return { expr: r.expr };
    problem(ctx, id, `${label}: ${r.message}`);
    return null;
  }
  const expr = isVariableName(text) ? readVariable(text, true) : null;
  if (expr === null) problem(ctx, id, `${label}="${text}" is neither a variable name nor an expression (\${...})`);
  return expr === null ? null : { expr };
}

/** A variable name given by one or more sources that must agree; null when none (or a problem was reported). */
function loopNames(ctx: ProcessCtx, id: string, what: string, sources: Array<[string, string | undefined]>): string | null {
  const given = sources.flatMap(([label, v]) => (v !== undefined && v.trim() !== '' ? [{ label, value: v.trim() }] : []));
  if (given.length === 0) return null;
  for (const g of given) {
    if (isExpression(g.value)) {
      problem(ctx, id, `${g.label}="${g.value}" must be a variable name, not an expression`);
      return null;
    }
  }
  if (given.some((g) => g.value !== given[0].value)) {
    problem(ctx, id, `the ${what} is set differently by ${given.map((g) => `${g.label}="${g.value}"`).join(' and ')}`);
    return null;
  }
  return given[0].value;
}

/** outputCollection / outputElement: zeebe:loopCharacteristics or the pgbpm: extension properties of the activity. */
function loopOutput(ctx: ProcessCtx, el: XNode, id: string, zeebe: XNode | undefined, spec: LoopSpec): void {
  const props = extensionProperties(el);
  const prop = (name: string): string | undefined => props.find((p) => p.name === name)?.value;
  const collection = loopNames(ctx, id, 'output collection', [
    ['zeebe:loopCharacteristics outputCollection', zeebe !== undefined ? str(zeebe, 'zeebe:outputCollection') : undefined],
    ['pgbpm:outputCollection', prop('pgbpm:outputCollection')],
  ]);
  const zeebeElement = zeebe !== undefined ? nonEmpty(str(zeebe, 'zeebe:outputElement')) : null;
  const pgbpmElement = nonEmpty(prop('pgbpm:outputElement') ?? '');
  if (zeebeElement !== null && pgbpmElement !== null) {
    problem(ctx, id, 'zeebe:loopCharacteristics outputElement and pgbpm:outputElement are both set; set one');
    return;
  }
  let element: CompiledValue | null = null;
  if (zeebeElement !== null) {
    const expr = compileExpressionText(ctx, id, 'zeebe:loopCharacteristics outputElement', zeebeElement, 'value', `write =${zeebeElement.trim()} to read a variable`);
    element = expr === null ? null : { expr };
  } else if (pgbpmElement !== null) {
    element = variableOrExpression(ctx, id, 'pgbpm:outputElement', pgbpmElement);
  }
  const hasElement = zeebeElement !== null || pgbpmElement !== null;
  const hasCollection = (zeebe !== undefined && nonEmpty(str(zeebe, 'zeebe:outputCollection')) !== null) || nonEmpty(prop('pgbpm:outputCollection') ?? '') !== null;
  if (hasCollection && !hasElement) problem(ctx, id, 'output collection without an output element (zeebe:loopCharacteristics outputElement or pgbpm:outputElement)');
  if (!hasCollection && hasElement) problem(ctx, id, 'output element without an output collection (zeebe:loopCharacteristics outputCollection or pgbpm:outputCollection)');
  if (collection !== null && element !== null) {
    spec.outputCollection = collection;
    spec.outputElement = element;
  }
}

/** pgbpm:outputCollection / pgbpm:outputElement: at most once each, on multi-instance activities only. */
function checkLoopProperties(ctx: ProcessCtx, el: XNode, id: string, props: ExtensionProperty[]): void {
  const names = props.filter((p) => LOOP_PROPERTIES.has(p.name)).map((p) => p.name);
  if (names.length === 0) return;
  for (const name of new Set(names)) {
    if (names.indexOf(name) !== names.lastIndexOf(name)) problem(ctx, id, `${name} is set more than once`);
  }
  if (!kids(el, 'loopCharacteristics').some((l) => l.type === MULTI_INSTANCE)) {
    warn(ctx, id, `${[...new Set(names)].join(', ')} only apply to multi-instance activities and are ignored here`);
  }
}

// --- subprocesses -------------------------------------------------------------------

/** Embedded subprocesses (an activity) and event subprocesses (triggeredByEvent, no sequence flows). */
function compileSubProcess(ctx: ProcessCtx, el: XNode, id: string): CompiledNode {
  if (bool(el, 'triggeredByEvent') !== true) return compileActivity(ctx, el, id, 'subProcess', NOTHING);
  checkExtensions(ctx, el);
  for (const loop of kids(el, 'loopCharacteristics')) {
    problem(ctx, id, `event subprocesses cannot be multi-instance or looped (${xmlName(loop.type)})`);
  }
  if (bool(el, 'isForCompensation') === true) problem(ctx, id, 'an event subprocess cannot be a compensation handler (isForCompensation="true")');
  ctx.scope.eventSubprocesses.push(id);
  return { ...baseNode(el, id, 'subProcess'), triggeredByEvent: true };
}

/**
 * A bpmn:transaction: an embedded subprocess (its own scope) with
 * `transaction: true`; cancel end events inside, a cancel boundary event on it.
 */
function compileTransaction(ctx: ProcessCtx, el: XNode, id: string): CompiledNode | null {
  if (bool(el, 'triggeredByEvent') === true) {
    problem(ctx, id, 'a transaction cannot be an event subprocess (triggeredByEvent="true")');
    return null;
  }
  return { ...compileActivity(ctx, el, id, 'subProcess', NOTHING), transaction: true };
}

/** Compiles the flow elements of a subprocess as a scope of its own; sets node.start and node.eventSubprocesses. */
function compileSubProcessScope(ctx: ProcessCtx, el: XNode, node: CompiledNode): void {
  const scope = newScope(node.id, node.triggeredByEvent === true ? 'eventSubProcess' : 'subProcess', node.transaction === true);
  compileScope({ ...ctx, scope }, el);
  if (scope.kind === 'subProcess') {
    const what = scope.transaction ? 'transaction' : 'subprocess';
    if (scope.startElements === 0) {
      problem(ctx, node.id, `${what} has no start event (exactly one none start event is required)`);
    } else if (scope.noneStarts.length > 1) {
      problem(ctx, node.id, `${what} has ${scope.noneStarts.length} none start events (${scope.noneStarts.join(', ')}); exactly one is required`);
    }
    if (scope.noneStarts.length > 0) node.start = scope.noneStarts[0];
  } else if (scope.startElements === 1 && scope.eventStarts.length === 1) {
    node.start = scope.eventStarts[0];
  } else if (scope.startElements !== 1) {
    problem(ctx, node.id, scope.startElements === 0
      ? 'event subprocess has no start event (exactly one start event with a message, timer, signal, error or escalation event definition is required)'
      : `event subprocess has ${scope.startElements} start events; exactly one is required`);
  }
  if (scope.eventSubprocesses.length > 0) node.eventSubprocesses = scope.eventSubprocesses;
  checkEventSubprocessClashes(ctx, scope);
}

/** The event subprocesses of one scope must not wait for the same message, error code or escalation code. */
function checkEventSubprocessClashes(ctx: ProcessCtx, scope: ScopeState): void {
  if (scope.eventSubprocesses.length < 2) return;
  const subprocesses = new Set(scope.eventSubprocesses);
  const seen = new Map<string, string>();
  for (const node of Object.values(ctx.nodes)) {
    if (node.type !== 'startEvent' || node.scope === undefined || !subprocesses.has(node.scope)) continue;
    const clash = startClash(node.event);
    if (clash === null) continue;
    const first = seen.get(clash.key);
    if (first === undefined) seen.set(clash.key, node.scope);
    else problem(ctx, node.scope, `event subprocesses ${first} and ${node.scope} of ${scopeLabel(ctx, scope.id)} both ${clash.what}`);
  }
}

function startClash(event: EventDefinition | undefined): { key: string; what: string } | null {
  switch (event?.kind) {
    case 'message':
      return 'literal' in event.name ? { key: `message\0${String(event.name.literal)}`, what: `wait for message "${String(event.name.literal)}"` } : null;
    case 'error':
      return { key: `error\0${event.code ?? '\0'}`, what: event.code === null ? 'catch all errors' : `catch errorCode "${event.code}"` };
    case 'escalation':
      return { key: `escalation\0${event.code ?? '\0'}`, what: event.code === null ? 'catch all escalations' : `catch escalationCode "${event.code}"` };
    default:
      return null;
  }
}

// --- call activities ------------------------------------------------------------------

const CALL_CONSUMES: ReadonlySet<string> = new Set([
  'camunda:calledElementBinding',
  'camunda:calledElementVersion',
  'camunda:calledElementVersionTag',
  'camunda:In',
  'camunda:Out',
  'zeebe:CalledElement',
]);

function compileCallActivity(ctx: ProcessCtx, el: XNode, id: string): CompiledNode {
  const node = compileActivity(ctx, el, id, 'callActivity', CALL_CONSUMES);
  const call = compileCall(ctx, el, id);
  if (call !== null) node.call = call;
  return node;
}

/** calledElement / zeebe:calledElement, binding, camunda:in / camunda:out, zeebe propagation and zeebe:ioMapping → CallSpec. */
function compileCall(ctx: ProcessCtx, el: XNode, id: string): CallSpec | null {
  const before = ctx.problems.length;
  const exts = extensions(el);
  const zeebeAll = exts.filter((e) => e.type === 'zeebe:CalledElement');
  if (zeebeAll.length > 1) problem(ctx, id, 'several zeebe:calledElement elements');
  const zeebe = zeebeAll[0];
  if (zeebe !== undefined) checkZeebeCalledElement(ctx, id, zeebe);
  const processId = calledProcess(ctx, el, id, zeebe);
  const binding = callBinding(ctx, el, id, zeebe);
  const spec: CallSpec = {
    processId: processId ?? { literal: '' },
    binding: binding.binding,
    inAll: zeebe !== undefined && bool(zeebe, 'zeebe:propagateAllParentVariables') !== false,
    in: [],
    outAll: zeebe !== undefined && bool(zeebe, 'zeebe:propagateAllChildVariables') !== false,
    out: [],
  };
  if (binding.version !== undefined) spec.version = binding.version;
  if (binding.versionTag !== undefined) spec.versionTag = binding.versionTag;
  for (const e of exts) {
    if (e.type === 'camunda:In') camundaCallMapping(ctx, id, e, 'in', spec);
    else if (e.type === 'camunda:Out') camundaCallMapping(ctx, id, e, 'out', spec);
  }
  const io = exts.filter((e) => e.type === 'zeebe:IoMapping');
  if (io.length > 1) problem(ctx, id, 'several zeebe:ioMapping elements');
  for (const m of io.slice(0, 1)) {
    spec.in.push(...zeebeMappings(ctx, id, m, 'input'));
    spec.out.push(...zeebeMappings(ctx, id, m, 'output'));
  }
  return ctx.problems.length === before ? spec : null;
}

/** Attributes of zeebe:calledElement other than processId, propagation and binding. */
function checkZeebeCalledElement(ctx: ProcessCtx, id: string, zeebe: XNode): void {
  for (const attr of ['zeebe:businessId', 'zeebe:processIdExpression']) {
    const v = str(zeebe, attr);
    if (v !== undefined) problem(ctx, id, `zeebe:calledElement ${attr.slice('zeebe:'.length)}="${v}" is not supported in this version`);
  }
}

/** The called process id: calledElement (Camunda 7) or zeebe:calledElement processId; a literal or an expression. */
function calledProcess(ctx: ProcessCtx, el: XNode, id: string, zeebe: XNode | undefined): CompiledValue | null {
  const camunda = nonEmpty(str(el, 'calledElement'));
  const feel = zeebe !== undefined ? nonEmpty(str(zeebe, 'zeebe:processId')) : null;
  if (camunda !== null && feel !== null && camunda.trim() !== feel.trim()) {
    problem(ctx, id, `calledElement="${camunda}" and zeebe:calledElement processId="${feel}" disagree`);
    return null;
  }
  const raw = camunda ?? feel;
  if (raw === null) {
    problem(ctx, id, 'call activity without a process to call (set calledElement, or zeebe:calledElement processId)');
    return null;
  }
  const label = camunda !== null ? 'calledElement' : 'zeebe:calledElement processId';
  const value = compileValueText(ctx, id, label, raw);
  if (value !== null && 'literal' in value && value.literal === '') {
    problem(ctx, id, `${label} is empty`);
    return null;
  }
  return value;
}

const CAMUNDA_BINDINGS: ReadonlySet<string> = new Set(['latest', 'deployment', 'version', 'versionTag']);
const ZEEBE_BINDINGS: ReadonlySet<string> = new Set(['latest', 'deployment', 'versionTag']);

interface CallBinding {
  binding: CallSpec['binding'];
  version?: number;
  versionTag?: string;
}

/** camunda:calledElementBinding (+ Version / VersionTag) / zeebe:calledElement bindingType (+ versionTag). */
function callBinding(ctx: ProcessCtx, el: XNode, id: string, zeebe: XNode | undefined): CallBinding {
  const camunda = nonEmpty(str(el, 'camunda:calledElementBinding'));
  const feel = zeebe !== undefined ? nonEmpty(str(zeebe, 'zeebe:bindingType')) : null;
  if (camunda !== null && !CAMUNDA_BINDINGS.has(camunda)) {
    problem(ctx, id, `camunda:calledElementBinding="${camunda}" is not supported; use latest, deployment, version or versionTag`);
  }
  if (feel !== null && !ZEEBE_BINDINGS.has(feel)) {
    problem(ctx, id, `zeebe:calledElement bindingType="${feel}" is not supported; use latest, deployment or versionTag`);
  }
  if (camunda !== null && feel !== null && camunda !== feel) {
    problem(ctx, id, `camunda:calledElementBinding="${camunda}" and zeebe:calledElement bindingType="${feel}" disagree`);
  }
  const name = camunda ?? feel ?? 'latest';
  const binding: CallSpec['binding'] = name === 'deployment' || name === 'version' || name === 'versionTag' ? name : 'latest';
  const result: CallBinding = { binding };
  const version = nonEmpty(str(el, 'camunda:calledElementVersion'));
  if (binding === 'version') {
    if (version === null) problem(ctx, id, 'camunda:calledElementBinding="version" without camunda:calledElementVersion');
    else if (!/^\s*[1-9]\d{0,8}\s*$/.test(version)) problem(ctx, id, `camunda:calledElementVersion="${version}" must be a version number (expressions are not supported here)`);
    else result.version = Number(version);
  } else if (version !== null) {
    warn(ctx, id, `camunda:calledElementVersion is ignored without camunda:calledElementBinding="version"`);
  }
  const tags = [nonEmpty(str(el, 'camunda:calledElementVersionTag')), zeebe !== undefined ? nonEmpty(str(zeebe, 'zeebe:versionTag')) : null];
  const tag = tags[0] ?? tags[1];
  if (tags[0] !== null && tags[1] !== null && tags[0] !== tags[1]) {
    problem(ctx, id, `camunda:calledElementVersionTag="${tags[0]}" and zeebe:calledElement versionTag="${tags[1]}" disagree`);
  } else if (binding === 'versionTag') {
    if (tag === null) problem(ctx, id, 'binding versionTag without a version tag (camunda:calledElementVersionTag or zeebe:calledElement versionTag)');
    else if (isExpression(tag)) problem(ctx, id, `version tag "${tag}": expressions are not supported here; write the tag`);
    else result.versionTag = tag.trim();
  } else if (tag !== null) {
    warn(ctx, id, 'the version tag is ignored without binding versionTag');
  }
  return result;
}

const PARENT_BUSINESS_KEY = /^[$#]\{\s*execution\s*\.\s*processBusinessKey\s*\}$/;

/** One camunda:in / camunda:out: variables="all", businessKey, or source / sourceExpression → target. */
function camundaCallMapping(ctx: ProcessCtx, id: string, e: XNode, dir: 'in' | 'out', spec: CallSpec): void {
  const label = `camunda:${dir}`;
  if (bool(e, 'camunda:local') === true) warn(ctx, id, `${label} local="true" is ignored: variables are read from and written to the scope of the call activity`);
  const variables = str(e, 'camunda:variables');
  if (variables !== undefined) {
    if (variables !== 'all') problem(ctx, id, `${label} variables="${variables}" is not supported; write variables="all"`);
    else if (dir === 'in') spec.inAll = true;
    else spec.outAll = true;
  }
  const businessKey = str(e, 'camunda:businessKey');
  if (businessKey !== undefined) {
    if (dir === 'out') problem(ctx, id, 'camunda:out businessKey is not supported (the business key is passed down with camunda:in)');
    else callBusinessKey(ctx, id, businessKey, spec);
  }
  const source = nonEmpty(str(e, 'camunda:source'));
  const sourceExpression = nonEmpty(str(e, 'camunda:sourceExpression'));
  const target = nonEmpty(str(e, 'camunda:target'));
  if (source === null && sourceExpression === null) {
    if (target !== null) problem(ctx, id, `${label} target="${target}" without source or sourceExpression`);
    else if (variables === undefined && businessKey === undefined) problem(ctx, id, `${label} without source, sourceExpression, variables or businessKey`);
    return;
  }
  if (source !== null && sourceExpression !== null) {
    problem(ctx, id, `${label} with both source="${source}" and sourceExpression="${sourceExpression}"; set one`);
    return;
  }
  if (target === null) {
    problem(ctx, id, `${label} ${source !== null ? `source="${source}"` : `sourceExpression="${sourceExpression ?? ''}"`} without target`);
    return;
  }
  const value = source !== null ? callSource(ctx, id, label, source) : compileValueText(ctx, id, `${label} sourceExpression`, sourceExpression ?? '');
  if (value !== null) spec[dir].push({ target: target.trim(), value });
}

/** camunda:in/out source: the name of a variable (a missing variable maps as null, as in Camunda 7). */
function callSource(ctx: ProcessCtx, id: string, label: string, source: string): CompiledValue | null {
  const name = source.trim();
  const expr = isVariableName(name) ? readVariable(name, false) : null;
  if (expr === null) {
    problem(ctx, id, `${label} source="${name}" is not a variable name (use sourceExpression for expressions)`);
    return null;
  }
  return { expr };
}

function callBusinessKey(ctx: ProcessCtx, id: string, raw: string, spec: CallSpec): void {
  if (spec.businessKey !== undefined) {
    problem(ctx, id, 'the business key is set by more than one camunda:in');
    return;
  }
  const text = raw.trim();
  if (PARENT_BUSINESS_KEY.test(text)) {
    spec.businessKey = 'parent';
    return;
  }
  // other uses of `execution` are refused by the expression compiler
  const value = compileValueText(ctx, id, 'camunda:in businessKey', text);
  if (value !== null) spec.businessKey = value;
}

// --- link events ----------------------------------------------------------------------

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
function resolveLinks(ctx: ProcessCtx): void {
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

function defaultFlow(ctx: ProcessCtx, el: XNode, id: string): string | null {
  const d = ref(ctx, el, 'default');
  if (d.kind === 'unresolved') problem(ctx, id, `default flow "${d.value}" does not exist`);
  return d.kind === 'ok' ? d.id : null;
}

function compileGateway(ctx: ProcessCtx, el: XNode, id: string, type: NodeType): CompiledNode {
  checkExtensions(ctx, el);
  const node = baseNode(el, id, type);
  if (type === 'parallelGateway') return node;
  return { ...node, default: defaultFlow(ctx, el, id) };
}

// --- external (service / send / business rule) tasks ------------------------------

const EXTERNAL_CONSUMES: ReadonlySet<string> = new Set(['camunda:type', 'camunda:topic', 'zeebe:TaskDefinition']);

function compileExternalTask(ctx: ProcessCtx, el: XNode, id: string, type: 'serviceTask' | 'businessRuleTask'): CompiledNode {
  const node = compileActivity(ctx, el, id, type, EXTERNAL_CONSUMES);
  const impl = externalImplementation(ctx, el, id, el);
  if (!impl.present) {
    problem(ctx, id, `${type === 'serviceTask' ? 'service task' : 'business rule task'} needs an implementation: camunda:type=external + camunda:topic or zeebe:taskDefinition`);
  }
  return { ...node, topic: impl.topic ?? '' };
}

/** A send task is an external task (topic) or publishes its message (messageRef). */
function compileSendTask(ctx: ProcessCtx, el: XNode, id: string): CompiledNode {
  const node = compileActivity(ctx, el, id, 'sendTask', EXTERNAL_CONSUMES);
  compileMessageThrow(ctx, el, id, null, node, 'send task');
  return node;
}

/**
 * The external task topic, from camunda:type="external" + camunda:topic (on
 * `camundaEl`: the task itself, or the messageEventDefinition of a message
 * throw event) or zeebe:taskDefinition type (on the element). `present`: the
 * element states an implementation (valid or not, Java delegates and
 * connectors included, which are refused elsewhere).
 */
function externalImplementation(ctx: ProcessCtx, el: XNode, id: string, camundaEl: XNode): { topic: string | null; present: boolean } {
  const exts = camundaEl === el ? extensions(el) : [...extensions(el), ...extensions(camundaEl)];
  const otherImplementation =
    ['camunda:class', 'camunda:delegateExpression', 'camunda:expression', 'camunda:decisionRef'].some((a) => str(camundaEl, a) !== undefined) ||
    exts.some((e) => e.type === 'camunda:Connector' || e.type === 'zeebe:CalledDecision');

  let camunda: string | null = null;
  const camundaType = str(camundaEl, 'camunda:type');
  const camundaTopic = nonEmpty(str(camundaEl, 'camunda:topic'));
  if (camundaType !== undefined && camundaType !== 'external') {
    problem(ctx, id, `camunda:type="${camundaType}" is not supported; only external tasks (camunda:type="external" camunda:topic="...")`);
  } else if (camundaType === 'external' && camundaTopic === null) {
    problem(ctx, id, 'external task without topic (set camunda:topic)');
  } else if (camundaType === undefined && camundaTopic !== null) {
    problem(ctx, id, 'camunda:topic without camunda:type="external"');
  } else if (camundaTopic !== null) {
    camunda = checkStaticTopic(ctx, id, 'camunda:topic', camundaTopic);
  }

  let zeebe: string | null = null;
  const definitions = exts.filter((e) => e.type === 'zeebe:TaskDefinition');
  if (definitions.length > 1) problem(ctx, id, 'several zeebe:taskDefinition elements');
  if (definitions.length > 0) {
    const jobType = nonEmpty(str(definitions[0], 'zeebe:type'));
    if (jobType === null) problem(ctx, id, 'zeebe:taskDefinition without type');
    else zeebe = checkStaticTopic(ctx, id, 'zeebe:taskDefinition type', jobType);
  }

  const present = camundaType !== undefined || camundaTopic !== null || definitions.length > 0 || otherImplementation;
  if (camunda !== null && zeebe !== null && camunda !== zeebe) {
    problem(ctx, id, `camunda:topic="${camunda}" and zeebe:taskDefinition type="${zeebe}" disagree`);
    return { topic: null, present };
  }
  return { topic: camunda ?? zeebe, present };
}

function checkStaticTopic(ctx: ProcessCtx, id: string, label: string, topic: string): string | null {
  if (isExpression(topic)) {
    problem(ctx, id, `${label}="${topic}" must be a static name; expressions are not supported here`);
    return null;
  }
  return topic.trim();
}

// --- user tasks -----------------------------------------------------------------

type UserTaskField = keyof UserTaskSpec;
type ValueKind = 'text' | 'list' | 'date' | 'duration' | 'integer';

const USER_TASK_FIELDS: ReadonlyArray<[UserTaskField, ValueKind]> = [
  ['assignee', 'text'],
  ['candidateUsers', 'list'],
  ['candidateGroups', 'list'],
  ['dueDate', 'date'],
  ['followUpDate', 'date'],
  ['priority', 'integer'],
];

/** zeebe extension element and attribute for each field. */
const ZEEBE_USER_TASK: Readonly<Record<UserTaskField, [string, string]>> = {
  assignee: ['zeebe:AssignmentDefinition', 'assignee'],
  candidateUsers: ['zeebe:AssignmentDefinition', 'candidateUsers'],
  candidateGroups: ['zeebe:AssignmentDefinition', 'candidateGroups'],
  dueDate: ['zeebe:TaskSchedule', 'dueDate'],
  followUpDate: ['zeebe:TaskSchedule', 'followUpDate'],
  priority: ['zeebe:PriorityDefinition', 'priority'],
};

const USER_TASK_CONSUMES: ReadonlySet<string> = new Set([
  ...USER_TASK_FIELDS.map(([f]) => `camunda:${f}`),
  'zeebe:AssignmentDefinition',
  'zeebe:TaskSchedule',
  'zeebe:PriorityDefinition',
]);

function compileUserTask(ctx: ProcessCtx, el: XNode, id: string): CompiledNode {
  const node = compileActivity(ctx, el, id, 'userTask', USER_TASK_CONSUMES);
  const exts = extensions(el);
  const spec: UserTaskSpec = {};
  for (const [field, kind] of USER_TASK_FIELDS) {
    const sources: Array<{ label: string; raw: string; feelList: boolean }> = [];
    const camunda = nonEmpty(str(el, `camunda:${field}`));
    if (camunda !== null) sources.push({ label: `camunda:${field}`, raw: camunda, feelList: false });
    const [extType, attr] = ZEEBE_USER_TASK[field];
    for (const ext of exts.filter((e) => e.type === extType)) {
      const raw = nonEmpty(str(ext, `zeebe:${attr}`));
      if (raw !== null) sources.push({ label: `${xmlName(extType)} ${attr}`, raw, feelList: true });
    }
    if (sources.length > 1) {
      problem(ctx, id, `${field} is set more than once (${sources.map((s) => s.label).join(', ')})`);
      continue;
    }
    if (sources.length === 0) continue;
    const value = compileUserTaskValue(ctx, id, sources[0].label, sources[0].raw, kind, sources[0].feelList);
    if (value !== null) spec[field] = value;
  }
  return { ...node, userTask: spec };
}

function compileUserTaskValue(ctx: ProcessCtx, id: string, label: string, raw: string, kind: ValueKind, feelList: boolean): CompiledValue | null {
  if (isExpression(raw)) {
    if (kind === 'list' && feelList) {
      const list = feelStringList(raw);
      if (list !== null) return { literal: list };
    }
    const r = compileExpression(raw, 'value');
    if (!r.ok) {
      problem(ctx, id, `${label}: ${r.message}`);
      return null;
    }
    return { expr: r.expr };
  }
  const text = raw.trim();
  switch (kind) {
    case 'text':
      return { literal: text };
    case 'list':
      return { literal: text.split(',').map((s) => s.trim()).filter((s) => s !== '') };
    case 'date':
      if (!isIsoDateOrDuration(text)) {
        problem(ctx, id, `${label}="${text}" is not an ISO 8601 date-time, date or duration (P…)`);
        return null;
      }
      return { literal: text };
    case 'duration':
      if (!isIsoDuration(text)) {
        problem(ctx, id, `${label}="${text}" is not an ISO 8601 duration (e.g. PT4H, P1D)`);
        return null;
      }
      return { literal: text };
    case 'integer':
      if (!/^[+-]?\d{1,9}$/.test(text)) {
        problem(ctx, id, `${label}="${text}" is not an integer`);
        return null;
      }
      return { literal: Number(text) };
  }
}

/** `=["a", "b"]` (a FEEL list of string literals only) → ['a', 'b']; anything else → null. */
function feelStringList(raw: string): string[] | null {
  const body = raw.trim().slice(1).trim();
  if (!/^\[\s*("(?:[^"\\]|\\.)*"\s*(,\s*"(?:[^"\\]|\\.)*"\s*)*)?\]$/.test(body)) return null;
  try {
    const parsed: unknown = JSON.parse(body);
    if (Array.isArray(parsed) && parsed.every((x): x is string => typeof x === 'string')) return parsed;
  } catch {
    // not JSON-compatible string escapes: leave it to the expression compiler
  }
  return null;
}

/** ISO 8601 date-time, date, or duration (P…). */
export function isIsoDateOrDuration(text: string): boolean {
  return isIsoDuration(text) || isIsoDateTime(text, true);
}

// --- boundary events ------------------------------------------------------------------

/**
 * Registers boundary events on their activities (document order) and checks
 * what they are attached to; on one activity, error and escalation codes and
 * message names must be distinct (which event catches would be ambiguous).
 */
function attachBoundaryEvents(ctx: ProcessCtx): void {
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
    if (!checkBoundaryHost(ctx, node, host, hostEl)) continue;
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
 * compensation boundaries not on multi-instance activities; cancel boundaries
 * on transactions only.
 */
function checkBoundaryHost(ctx: ProcessCtx, node: CompiledNode, host: CompiledNode, hostEl: XNode): boolean {
  if (host.isForCompensation === true) {
    problem(ctx, node.id, `attachedToRef "${host.id}" is a compensation handler (isForCompensation="true"); boundary events on compensation handlers are not supported in this version`);
    return false;
  }
  const kind = node.event?.kind;
  if (kind === 'compensate' && kids(hostEl, 'loopCharacteristics').some((l) => l.type === MULTI_INSTANCE)) {
    problem(ctx, node.id, `attachedToRef "${host.id}": compensation of multi-instance activities is not supported in this version`);
    return false;
  }
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

// --- compensation, transactions ---------------------------------------------------------

/**
 * Compensation boundary events (activity null) and compensation intermediate
 * throw / end events (activityRef, or null for the whole scope; checked by
 * checkCompensationThrows once every node is compiled).
 */
function compileCompensate(ctx: ProcessCtx, id: string, def: XNode, position: EventPosition): EventDefinition | null {
  if (position === 'boundary') return { kind: 'compensate', activity: null };
  if (bool(def, 'waitForCompletion') === false) {
    problem(ctx, id, 'waitForCompletion="false" is not supported; compensation throw events wait until the compensation handlers have completed');
    return null;
  }
  const r = ref(ctx, def, 'activityRef');
  if (r.kind === 'unresolved') {
    problem(ctx, id, `activityRef "${r.value}" does not reference an element`);
    return null;
  }
  return { kind: 'compensate', activity: r.kind === 'ok' ? r.id : null };
}

/** Cancel end events sit directly in a transaction; cancel boundary events are checked when attached. */
function compileCancel(ctx: ProcessCtx, id: string, position: EventPosition): EventDefinition | null {
  if (position === 'end' && !ctx.scope.transaction) {
    problem(ctx, id, `cancel end events are only allowed directly inside a transaction (bpmn:transaction); this one is in ${scopeLabel(ctx, ctx.scope.id)}`);
    return null;
  }
  return { kind: 'cancel' };
}

/** The flow element ids the associations leaving `sourceId` lead to (associations to text annotations and other artifacts are not counted). */
function associatedElements(ctx: ProcessCtx, sourceId: string): string[] {
  const targets: string[] = [];
  for (const a of ctx.associations) {
    if (a.refs.sourceRef?.[0] !== sourceId) continue;
    const target = a.refs.targetRef?.[0];
    if (target !== undefined && ctx.elements.has(target)) targets.push(target);
  }
  return targets;
}

/**
 * Connects each compensation boundary event to its handler (the one activity
 * its association leads to) and names the handler on the host
 * (`compensation`). Every compensation handler must be the handler of exactly
 * one compensation boundary event.
 */
function linkCompensationHandlers(ctx: ProcessCtx): void {
  const usedBy = new Map<string, string[]>();
  for (const boundary of Object.values(ctx.nodes)) {
    if (boundary.type !== 'boundaryEvent' || boundary.event?.kind !== 'compensate') continue;
    const targets = associatedElements(ctx, boundary.id);
    if (targets.length !== 1) {
      problem(ctx, boundary.id, targets.length === 0
        ? 'compensation boundary event is not connected to a compensation handler (draw an association from it to an activity with isForCompensation="true")'
        : `compensation boundary event has ${targets.length} associations (to ${targets.join(', ')}); exactly one, to its compensation handler, is required`);
      continue;
    }
    usedBy.set(targets[0], [...(usedBy.get(targets[0]) ?? []), boundary.id]);
    const handler = compensationHandler(ctx, boundary, targets[0]);
    const host = ctx.nodes[boundary.attachedTo ?? ''];
    if (handler !== null && host !== undefined && host.boundary?.includes(boundary.id) === true) host.compensation = handler;
  }
  for (const node of Object.values(ctx.nodes)) {
    if (node.isForCompensation !== true) continue;
    const boundaries = usedBy.get(node.id) ?? [];
    if (boundaries.length === 0) {
      problem(ctx, node.id, 'compensation handler (isForCompensation="true") is not connected to a compensation boundary event (draw an association from a compensation boundary event to it)');
    } else if (boundaries.length > 1) {
      problem(ctx, node.id, `compensation handler is connected to several compensation boundary events (${boundaries.join(', ')}); each compensated activity needs a handler of its own`);
    }
  }
}

/** The handler `target` of a compensation boundary event: an activity with isForCompensation="true" in the host's scope; null when refused. */
function compensationHandler(ctx: ProcessCtx, boundary: CompiledNode, target: string): string | null {
  const handler = ctx.nodes[target];
  const el = ctx.elements.get(target);
  if (handler === undefined) {
    if (el !== undefined && (el.type === 'bpmn:SequenceFlow' || DATA_ELEMENTS.has(el.type))) {
      problem(ctx, boundary.id, `the association of compensation boundary event leads to ${target}, a ${xmlName(el.type)}; it must lead to its compensation handler (an activity with isForCompensation="true")`);
    }
    return null; // otherwise the element itself was refused
  }
  if (!ACTIVITY_TYPES.has(handler.type) || handler.triggeredByEvent === true) {
    const what = handler.triggeredByEvent === true ? 'an event subprocess' : `a ${xmlName(`bpmn:${handler.type}`)}`;
    problem(ctx, boundary.id, `the association of compensation boundary event leads to ${target}, ${what}; a compensation handler is a task, subprocess or call activity with isForCompensation="true"`);
    return null;
  }
  if (handler.isForCompensation !== true) {
    problem(ctx, boundary.id, `the association of compensation boundary event leads to ${target}, which is not a compensation handler (set isForCompensation="true" on it)`);
    return null;
  }
  const scope = ctx.scopeOf.get(boundary.id) ?? null;
  const handlerScope = ctx.scopeOf.get(target) ?? null;
  if (handlerScope !== scope) {
    problem(ctx, boundary.id, `compensation handler ${target} is in ${scopeLabel(ctx, handlerScope)}; it must be in the same scope as the activity it compensates (${scopeLabel(ctx, scope)})`);
    return null;
  }
  return target;
}

/** activityRef of compensation throw events: an activity of the throw event's scope with a compensation boundary event. */
function checkCompensationThrows(ctx: ProcessCtx): void {
  for (const node of Object.values(ctx.nodes)) {
    if (node.event?.kind !== 'compensate' || node.type === 'boundaryEvent' || node.event.activity === null) continue;
    const target = node.event.activity;
    const el = ctx.elements.get(target);
    if (el === undefined || el.type === 'bpmn:SequenceFlow' || DATA_ELEMENTS.has(el.type)) {
      problem(ctx, node.id, `activityRef "${target}" is not an activity of process ${ctx.processId}`);
      continue;
    }
    const scope = node.scope ?? null;
    const targetScope = ctx.scopeOf.get(target) ?? null;
    if (targetScope !== scope) {
      problem(ctx, node.id, `activityRef "${target}" is in ${scopeLabel(ctx, targetScope)}; a compensation throw event compensates activities of its own scope (${scopeLabel(ctx, scope)})`);
      continue;
    }
    const activity = ctx.nodes[target];
    if (activity === undefined) continue; // refused itself
    if (!ACTIVITY_TYPES.has(activity.type) || activity.triggeredByEvent === true) {
      problem(ctx, node.id, `activityRef "${target}" is ${activity.triggeredByEvent === true ? 'an event subprocess' : `a ${xmlName(`bpmn:${activity.type}`)}`}, not an activity with a compensation boundary event`);
    } else if (!hasCompensationBoundary(ctx, target)) {
      problem(ctx, node.id, `activityRef "${target}" has no compensation boundary event; only activities with a compensation handler can be compensated`);
    }
  }
}

/** Whether a compensation boundary event is attached to `activity` (valid or not: its own problems are reported with it). */
function hasCompensationBoundary(ctx: ProcessCtx, activity: string): boolean {
  return Object.values(ctx.nodes).some((n) => n.type === 'boundaryEvent' && n.attachedTo === activity && n.event?.kind === 'compensate');
}

/** A transaction with cancel end events needs a cancel boundary event; a cancel boundary event without cancel end events never fires. */
function checkTransactions(ctx: ProcessCtx): void {
  for (const tx of Object.values(ctx.nodes)) {
    if (tx.transaction !== true) continue;
    const cancelEnds = Object.values(ctx.nodes).filter((n) => n.scope === tx.id && n.type === 'endEvent' && n.event?.kind === 'cancel').map((n) => n.id);
    const cancelBoundary = (tx.boundary ?? []).find((b) => ctx.nodes[b]?.event?.kind === 'cancel');
    if (cancelEnds.length > 0 && cancelBoundary === undefined) {
      problem(ctx, tx.id, `transaction has a cancel end event (${cancelEnds.join(', ')}) but no cancel boundary event`);
    } else if (cancelEnds.length === 0 && cancelBoundary !== undefined) {
      warn(ctx, cancelBoundary, `cancel boundary event never fires: transaction ${tx.id} has no cancel end event`);
    }
  }
}

// --- sequence flows ---------------------------------------------------------------------

function compileSequenceFlow(ctx: ProcessCtx, el: XNode): void {
  const id = idOf(el);
  if (id === null) return;
  checkExtensions(ctx, el);
  const source = flowEnd(ctx, el, id, 'sourceRef');
  const target = flowEnd(ctx, el, id, 'targetRef');
  const condition = compileCondition(ctx, el, id);
  const flow: CompiledFlow = { id, source: source ?? '', target: target ?? '', condition };
  ctx.flows[id] = flow;
  if (source !== null) ctx.nodes[source]?.out.push(id);
  if (target !== null) ctx.nodes[target]?.in.push(id);
}

function flowEnd(ctx: ProcessCtx, el: XNode, id: string, key: 'sourceRef' | 'targetRef'): string | null {
  const r = ref(ctx, el, key);
  if (r.kind === 'none') {
    problem(ctx, id, `sequence flow without ${key}`);
    return null;
  }
  if (r.kind === 'unresolved') {
    problem(ctx, id, `${key} "${r.value}" does not reference an element`);
    return null;
  }
  const end = ctx.elements.get(r.id);
  if (end === undefined || end.type === 'bpmn:SequenceFlow' || DATA_ELEMENTS.has(end.type)) {
    problem(ctx, id, `${key} "${r.id}" is not a flow node of process ${ctx.processId}`);
    return null;
  }
  const scope = ctx.scopeOf.get(id) ?? null;
  const endScope = ctx.scopeOf.get(r.id) ?? null;
  if (endScope !== scope) {
    problem(ctx, id, `${key} "${r.id}" is in ${scopeLabel(ctx, endScope)}, the sequence flow in ${scopeLabel(ctx, scope)}; sequence flows connect elements of one scope (a subprocess is entered through its start event)`);
    return null;
  }
  return r.id;
}

function compileCondition(ctx: ProcessCtx, el: XNode, id: string): CompiledExpression | null {
  const expr = kids(el, 'conditionExpression')[0];
  if (expr === undefined) return null;
  const language = nonEmpty(str(expr, 'language') ?? expr.attrs.language); // an attribute only on tFormalExpression
  if (language !== null && !/^(juel|feel|http:\/\/www\.omg\.org\/spec\/FEEL\/\d+)$/i.test(language.trim())) {
    problem(ctx, id, `script conditions are not supported (language="${language}")`);
    return null;
  }
  if (str(expr, 'camunda:resource') !== undefined) {
    problem(ctx, id, `conditions from external resources are not supported (camunda:resource="${str(expr, 'camunda:resource') ?? ''}")`);
    return null;
  }
  const body = (str(expr, 'body') ?? '').trim();
  if (body === '') {
    problem(ctx, id, 'empty conditionExpression');
    return null;
  }
  if (!isExpression(body)) {
    problem(ctx, id, `conditionExpression "${body}" is not an expression (write \${...} or =...)`);
    return null;
  }
  const r = compileExpression(body, 'condition');
  if (!r.ok) {
    problem(ctx, id, `conditionExpression: ${r.message}`);
    return null;
  }
  return r.expr;
}

// --- structural rules per node type -------------------------------------------------------

const EVENT_TYPES: ReadonlySet<NodeType> = new Set<NodeType>(['startEvent', 'endEvent', 'intermediateCatchEvent', 'intermediateThrowEvent', 'boundaryEvent']);

function checkNodeFlows(ctx: ProcessCtx, node: CompiledNode): void {
  const conditional = node.out.filter((f) => ctx.flows[f]?.condition !== null);
  switch (node.type) {
    case 'startEvent':
      if (node.in.length > 0) problem(ctx, node.id, `start event must not have incoming sequence flows (${node.in.join(', ')})`);
      break;
    case 'boundaryEvent':
      if (node.in.length > 0) problem(ctx, node.id, `boundary event must not have incoming sequence flows (${node.in.join(', ')})`);
      if (node.event?.kind === 'compensate' && node.out.length > 0) {
        problem(ctx, node.id, `compensation boundary event must not have outgoing sequence flows (${node.out.join(', ')}); it is connected to its compensation handler by an association`);
      }
      break;
    case 'endEvent':
      if (node.out.length > 0) problem(ctx, node.id, `end event must not have outgoing sequence flows (${node.out.join(', ')})`);
      break;
    case 'subProcess':
      if (node.triggeredByEvent === true && node.in.length + node.out.length > 0) {
        problem(ctx, node.id, `event subprocess must not have incoming or outgoing sequence flows (${[...node.in, ...node.out].join(', ')})`);
      }
      break;
    case 'parallelGateway':
      for (const f of conditional) problem(ctx, f, `sequence flow out of parallel gateway ${node.id} must not have a condition`);
      break;
    case 'exclusiveGateway':
    case 'inclusiveGateway':
      checkBranching(ctx, node, conditional);
      break;
    case 'eventBasedGateway':
      checkEventGateway(ctx, node);
      break;
    default:
      break;
  }
  if (EVENT_TYPES.has(node.type)) {
    for (const f of conditional) {
      problem(ctx, f, `conditions are only allowed on sequence flows out of activities and exclusive/inclusive gateways (source ${node.id} is a ${xmlName(`bpmn:${node.type}`)})`);
    }
  }
  if (node.type.endsWith('Gateway') && node.out.length === 0) problem(ctx, node.id, 'gateway has no outgoing sequence flow');
  if (ACTIVITY_TYPES.has(node.type)) checkDefault(ctx, node);
  if (node.isForCompensation === true && node.in.length + node.out.length > 0) {
    problem(ctx, node.id, `compensation handler must not have incoming or outgoing sequence flows (${[...node.in, ...node.out].join(', ')}); it is started by compensation only`);
  }
  if (node.in.length === 0 && !isEnteredWithoutFlows(node)) {
    warn(ctx, node.id, 'element has no incoming sequence flow and is never reached');
  }
}

/** Start and boundary events, event subprocesses, compensation handlers and link catch events are entered without sequence flows. */
function isEnteredWithoutFlows(node: CompiledNode): boolean {
  if (node.type === 'startEvent' || node.type === 'boundaryEvent' || node.isForCompensation === true) return true;
  if (node.type === 'subProcess') return node.triggeredByEvent === true;
  return node.type === 'intermediateCatchEvent' && node.event?.kind === 'link';
}

/** Exclusive / inclusive gateways: conditions, default flow. */
function checkBranching(ctx: ProcessCtx, node: CompiledNode, conditional: string[]): void {
  const def = checkDefault(ctx, node);
  const unconditional = node.out.filter((f) => f !== def && ctx.flows[f]?.condition === null);
  if (node.out.length > 1 && conditional.length > 0 && unconditional.length > 0) {
    problem(ctx, node.id, `gateway mixes conditional and unconditional outgoing sequence flows (unconditional: ${unconditional.join(', ')}); give every outgoing flow except the default flow a condition`);
  } else if (node.type === 'exclusiveGateway' && unconditional.length > 1) {
    warn(ctx, node.id, `exclusive gateway has several unconditional outgoing sequence flows (${unconditional.join(', ')}); only the first is ever taken`);
  }
}

/** The default flow must leave this node and carry no condition. Returns it when valid. */
function checkDefault(ctx: ProcessCtx, node: CompiledNode): string | null {
  const def = node.default ?? null;
  if (def === null) return null;
  if (!node.out.includes(def)) {
    problem(ctx, node.id, `default flow "${def}" is not an outgoing sequence flow of ${node.id}`);
    return null;
  }
  if (ctx.flows[def]?.condition !== null) problem(ctx, def, `default flow of ${node.id} must not have a condition`);
  return def;
}

/** inclusiveGateway joins: every node from which the gateway is reachable (boundary events count for their activity). */
function computeUpstream(ctx: ProcessCtx): void {
  const predecessors = new Map<string, string[]>();
  const add = (to: string, from: string): void => {
    const list = predecessors.get(to);
    if (list === undefined) predecessors.set(to, [from]);
    else list.push(from);
  };
  for (const flow of Object.values(ctx.flows)) {
    if (flow.source !== '' && flow.target !== '') add(flow.target, flow.source);
  }
  for (const node of Object.values(ctx.nodes)) {
    if (node.type === 'boundaryEvent' && node.attachedTo !== undefined && ctx.nodes[node.attachedTo] !== undefined) {
      add(node.id, node.attachedTo);
    }
  }
  const order = new Map(Object.keys(ctx.nodes).map((id, i) => [id, i]));
  let budget = MAX_UPSTREAM_ENTRIES;
  for (const gateway of Object.values(ctx.nodes)) {
    if (gateway.type !== 'inclusiveGateway' || gateway.in.length <= 1) continue;
    const seen = new Set<string>([gateway.id]);
    const queue = [gateway.id];
    while (queue.length > 0) {
      const current = queue.pop() as string;
      for (const p of predecessors.get(current) ?? []) {
        if (!seen.has(p)) {
          seen.add(p);
          queue.push(p);
        }
      }
    }
    budget -= seen.size;
    if (budget < 0) {
      problem(ctx, gateway.id, `the inclusive gateway joins of process ${ctx.processId} are too large to compile (more than ${MAX_UPSTREAM_ENTRIES} upstream entries in total)`);
      return;
    }
    seen.delete(gateway.id);
    gateway.upstream = [...seen].sort((a, b) => (order.get(a) ?? Infinity) - (order.get(b) ?? Infinity));
  }
}
