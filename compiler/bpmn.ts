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
 * This module holds the entry point, the walk over the process and its scopes,
 * the dispatch to the compile function of each flow node kind, subprocesses,
 * sequence flows and the structural rules per node type. The rest of the
 * semantics sits in modules named for their job:
 *
 *  - context.ts: compile state (file, process, scope), problem reporting,
 *    accessors on XNode;
 *  - parser-warnings.ts: moddle's warnings → problems and warnings;
 *  - extensions.ts: camunda:/zeebe: attributes and extension elements;
 *  - activities.ts: what activities share, async continuations, job retries;
 *  - tasks.ts: external tasks, user tasks, user task escalation;
 *  - events.ts: events and event definitions, receive and send tasks, link
 *    events, boundary events;
 *  - compensation.ts: compensation, transactions;
 *  - gateways.ts: gateways, default flows;
 *  - mappings.ts: shared values, input/output mappings;
 *  - loops.ts: multi-instance;
 *  - calls.ts: call activities.
 *
 * Scopes: the flow elements of embedded and event subprocesses are compiled
 * into the same flat nodes / flows maps (node.scope = the subprocess id);
 * compileScope runs per scope with ctx.scope (start events, event
 * subprocesses), and flows, boundary attachments and link pairs are checked
 * to stay within one scope. Transactions (bpmn:transaction) are embedded
 * subprocesses with `transaction: true`.
 *
 * Adding an element kind in a later version: add its compile function to
 * NODE_COMPILERS (and its flow rules to checkNodeFlows); an event definition:
 * SUPPORTED_DEFINITIONS and compileEventOf (compiler/events.ts); adding an
 * extension element or attribute: EXTENSION_RULES / ATTRIBUTE_RULES
 * (compiler/extensions.ts). Literal timer texts are checked in compiler/timer.ts.
 */
import { compileActivity, compileJobSettings, jobPriority } from './activities';
import { compileCallActivity } from './calls';
import { compileAdHocSubProcess, isInAdHocSubProcess, linkAdHocSubProcesses } from './adhoc';
import { checkCompensationThrows, checkTransactions, isCompensationEventSubprocess, linkCompensationEventSubprocess, linkCompensationHandlers } from './compensation';
import {
  ACTIVITY_TYPES,
  baseNode,
  bool,
  DATA_ELEMENTS,
  eventDefinitions,
  extensionProperties,
  extensions,
  type FileCtx,
  idOf,
  isEnteredWithoutFlows,
  kids,
  newFileCtx,
  newScope,
  nonEmpty,
  NOTHING,
  problem,
  type ProcessCtx,
  ref,
  scopeLabel,
  type ScopeState,
  str,
  TRANSACTION,
  AD_HOC_SUB_PROCESS,
  warn,
  xmlName,
} from './context';
import {
  attachBoundaryEvents,
  compileBoundaryEvent,
  compileCatchEvent,
  compileEndEvent,
  compileReceiveTask,
  compileSendTask,
  compileStartEvent,
  compileThrowEvent,
  resolveLinks,
} from './events';
import { compileExpression, isExpression } from './expression';
import { checkExtensions } from './extensions';
import { checkEmbeddedFormKeys, compileEmbeddedForms } from './forms';
import { checkEventGateway, compileEventGateway, compileGateway } from './gateways';
import type {
  CompiledExpression,
  CompiledFlow,
  CompiledGraph,
  CompiledNode,
  CompiledProcess,
  CompileProblem,
  EventDefinition,
  NodeType,
} from './graph';
import { MAX_UPSTREAM_ENTRIES } from './limits';
import { classifyParserWarnings, reportLeftoverReferences } from './parser-warnings';
import { compileExtensionProperties, compileExternalTask, compileScriptTask, compileUserTask, taskPriority } from './tasks';
import type { ParserWarning, XNode } from './xml';

export { parseBpmnXml, prescanXml, type ParseOutcome, type ParserWarning, type XNode } from './xml';
export { isIsoDateOrDuration } from './tasks';

export interface DefinitionsResult {
  processes: CompiledProcess[];
  problems: CompileProblem[];
  warnings: CompileProblem[];
}

// --- entry point -------------------------------------------------------------------

/** Compiles a parsed bpmn:Definitions tree; `xml` is the source text (for locating parser findings). */
export function compileDefinitions(file: string, xml: string, root: XNode, parserWarnings: ParserWarning[]): DefinitionsResult {
  const ctx: FileCtx = newFileCtx(file, xml);
  if (root.type !== 'bpmn:Definitions') {
    problem(ctx, null, 'not a BPMN 2.0 file: the root element must be <bpmn:definitions>');
    return { processes: [], problems: ctx.problems, warnings: ctx.warnings };
  }
  classifyParserWarnings(ctx, parserWarnings);

  const rootElements = kids(root, 'rootElements');
  for (const el of rootElements) {
    const id = idOf(el);
    if (id === null) continue;
    if (el.type === 'bpmn:Error') {
      ctx.errorCodes.set(id, nonEmpty(str(el, 'errorCode')));
      const message = nonEmpty(str(el, 'camunda:errorMessage'));
      if (message !== null) ctx.errorMessages.set(id, message);
    }
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

// --- process -----------------------------------------------------------------------

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
  for (const esp of scope.eventSubprocesses.filter((e) => isCompensationEventSubprocess(ctx, e))) {
    problem(ctx, esp, 'a compensation event subprocess belongs in an embedded subprocess or transaction (it compensates that subprocess once it has completed); at process level nothing can compensate the process');
  }
  for (const el of ctx.elements.values()) {
    if (el.type === 'bpmn:SequenceFlow') compileSequenceFlow(ctx, el);
  }
  attachBoundaryEvents(ctx);
  resolveLinks(ctx);
  linkAdHocSubProcesses(ctx);
  linkCompensationHandlers(ctx);
  checkCompensationThrows(ctx);
  checkTransactions(ctx);
  for (const node of Object.values(ctx.nodes)) checkNodeFlows(ctx, node);
  checkStart(ctx, proc);
  computeUpstream(ctx);
  const ttl = historyTimeToLive(ctx, proc);
  const uniqueBusinessKey = processProperties(ctx, proc);
  const starters = candidateStarters(ctx, proc);
  processTaskPriority(ctx, proc);
  const forms = compileEmbeddedForms(ctx, proc);
  checkEmbeddedFormKeys(ctx, ctx.nodes, forms);

  if (file.problems.length > before) return null;
  const graph: Omit<CompiledGraph, 'nodes' | 'flows'> = { start: scope.noneStarts[0] ?? null };
  if (uniqueBusinessKey) graph.uniqueBusinessKey = true;
  if (Object.values(ctx.nodes).some((n) => n.event?.kind === 'conditional')) graph.conditionals = true;
  if (Object.values(ctx.nodes).some((n) => n.errorEvents !== undefined)) graph.taskErrorEvents = true;
  // camunda:jobPriority of the process: the default of the nodes that create jobs
  const processPriority = jobPriority(ctx, processId, proc);
  if (processPriority !== undefined && processPriority !== 0) {
    for (const n of Object.values(ctx.nodes)) {
      if (n.jobPriority === undefined && (n.asyncBefore === true || n.asyncAfter === true || n.event?.kind === 'timer')) n.jobPriority = processPriority;
    }
  }
  if (scope.eventStarts.length > 0) graph.eventStarts = scope.eventStarts;
  if (scope.eventSubprocesses.length > 0) graph.eventSubprocesses = scope.eventSubprocesses;
  const compiled: CompiledProcess = {
    key: processId,
    name: nonEmpty(str(proc, 'name')),
    versionTag: processVersionTag(proc),
    graph: { ...graph, nodes: ctx.nodes, flows: ctx.flows },
  };
  if (ttl !== null) compiled.historyTimeToLive = ttl;
  const startForm = graph.start !== null ? ctx.nodes[graph.start]?.form : undefined;
  if (startForm !== undefined) compiled.startForm = startForm;
  if (Object.keys(forms).length > 0) compiled.forms = forms;
  if (starters.users.length > 0) compiled.candidateStarterUsers = starters.users;
  if (starters.groups.length > 0) compiled.candidateStarterGroups = starters.groups;
  return compiled;
}

/**
 * camunda:historyTimeToLive: days, as a whole number ("180") or an ISO 8601
 * duration in days ("P180D"), as Camunda 7 takes it; compiled to P<n>D.
 */
function historyTimeToLive(ctx: ProcessCtx, proc: XNode): string | null {
  const raw = nonEmpty(str(proc, 'camunda:historyTimeToLive'));
  if (raw === null) return null;
  const days = /^\d{1,6}$/.test(raw) ? raw : /^P(\d{1,6})D$/.exec(raw)?.[1];
  if (days === undefined) {
    problem(ctx, ctx.processId, `camunda:historyTimeToLive="${raw}" is not a number of days (a whole number such as 180, or P180D)`);
    return null;
  }
  return `P${Number(days)}D`;
}

/**
 * The process's `pgbpm:` extension properties (camunda:properties or
 * zeebe:properties, as Camunda Modeler's "Extension properties" writes them):
 * `pgbpm:uniqueBusinessKey` ("true" or "false"). Returns whether business
 * keys are unique.
 */
function processProperties(ctx: ProcessCtx, proc: XNode): boolean {
  let unique: boolean | null = null;
  for (const p of extensionProperties(proc).filter((e) => e.name.startsWith('pgbpm:'))) {
    if (p.name !== 'pgbpm:uniqueBusinessKey') {
      problem(ctx, ctx.processId, `unknown extension property ${p.name} (${p.label}) on the process; the process's pgbpm: property is pgbpm:uniqueBusinessKey`);
    } else if (unique !== null) {
      problem(ctx, ctx.processId, `${p.name} is set more than once`);
    } else if (p.value.trim() === 'true' || p.value.trim() === 'false') {
      unique = p.value.trim() === 'true';
    } else {
      problem(ctx, ctx.processId, `${p.name}="${p.value}" must be true or false`);
      unique = false;
    }
  }
  return unique === true;
}

/** Container elements whose flow elements are compiled as a scope. */
function isSubProcessElement(el: XNode): boolean {
  return el.type === 'bpmn:SubProcess' || el.type === TRANSACTION || el.type === AD_HOC_SUB_PROCESS;
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

const PROCESS_CONSUMES: ReadonlySet<string> = new Set([
  'camunda:versionTag',
  'camunda:historyTimeToLive',
  'camunda:candidateStarterUsers',
  'camunda:candidateStarterGroups',
  'camunda:taskPriority',
  'zeebe:VersionTag',
  'zeebe:UserTaskForm',
]);

/** The process's camunda:taskPriority: the priority of its external tasks that set none. */
function processTaskPriority(ctx: ProcessCtx, proc: XNode): void {
  const priority = taskPriority(ctx, proc, ctx.processId);
  if (priority === undefined) return;
  for (const node of Object.values(ctx.nodes)) {
    if (node.topic !== undefined && node.topic !== '' && node.taskPriority === undefined) node.taskPriority = priority;
  }
}

/**
 * camunda:candidateStarterUsers / candidateStarterGroups: who may start the
 * process (comma-separated names; a bpm_user outside both lists may not,
 * when either is set).
 */
function candidateStarters(ctx: ProcessCtx, proc: XNode): { users: string[]; groups: string[] } {
  const list = (attr: string): string[] => {
    const raw = nonEmpty(str(proc, attr));
    if (raw === null) return [];
    if (isExpression(raw)) {
      problem(ctx, ctx.processId, `${attr}="${raw}" must be a comma-separated list of names; expressions are not supported here`);
      return [];
    }
    return raw.split(',').map((x) => x.trim()).filter((x) => x !== '');
  };
  return { users: list('camunda:candidateStarterUsers'), groups: list('camunda:candidateStarterGroups') };
}

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

// --- flow nodes --------------------------------------------------------------------

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
  'bpmn:ScriptTask': compileScriptTask,
  'bpmn:SubProcess': compileSubProcess,
  'bpmn:Transaction': compileTransaction,
  'bpmn:AdHocSubProcess': compileAdHocSubProcess,
  'bpmn:CallActivity': compileCallActivity,
};

function rejectElement(ctx: ProcessCtx, el: XNode, id: string): void {
  const defs = eventDefinitions(el).map((d) => xmlName(d.type));
  const detail = defs.length > 0 ? ` (${defs.join(', ')})` : '';
  problem(ctx, id, `element type ${xmlName(el.type)}${detail} is not supported in this version`);
}

// --- subprocesses ------------------------------------------------------------------

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
  const kind = node.triggeredByEvent === true ? 'eventSubProcess' : node.adHoc !== undefined ? 'adHocSubProcess' : 'subProcess';
  const scope = newScope(node.id, kind, node.transaction === true);
  compileScope({ ...ctx, scope }, el);
  if (scope.kind === 'subProcess') {
    const what = scope.transaction ? 'transaction' : 'subprocess';
    if (scope.startElements === 0) {
      problem(ctx, node.id, `${what} has no start event (exactly one none start event is required)`);
    } else if (scope.noneStarts.length > 1) {
      problem(ctx, node.id, `${what} has ${scope.noneStarts.length} none start events (${scope.noneStarts.join(', ')}); exactly one is required`);
    }
    if (scope.noneStarts.length > 0) node.start = scope.noneStarts[0];
  } else if (scope.kind === 'adHocSubProcess') {
    // no start event: its activities are activated (linkAdHocSubProcesses)
  } else if (scope.startElements === 1 && scope.eventStarts.length === 1) {
    node.start = scope.eventStarts[0];
  } else if (scope.startElements !== 1) {
    problem(ctx, node.id, scope.startElements === 0
      ? 'event subprocess has no start event (exactly one start event with a message, timer, signal, error or escalation event definition is required)'
      : `event subprocess has ${scope.startElements} start events; exactly one is required`);
  }
  linkCompensationEventSubprocess(ctx, node, scope);
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

// --- sequence flows ----------------------------------------------------------------

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

// --- structural rules per node type ------------------------------------------------

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
  if (node.in.length === 0 && !isEnteredWithoutFlows(node) && !isInAdHocSubProcess(ctx, node)) {
    warn(ctx, node.id, 'element has no incoming sequence flow and is never reached');
  }
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
