/**
 * Compile state and helpers shared by every module of the semantic stage
 * (compiler/bpmn.ts and the modules it delegates to): the file, process and
 * scope contexts, problems and warnings (at most MAX_PROBLEMS_PER_FILE each),
 * typed accessors on XNode, and the element and node type sets several
 * modules check against.
 */
import type { CompiledFlow, CompiledNode, CompileProblem, NodeType } from './graph';
import { MAX_PROBLEMS_PER_FILE } from './limits';
import { oneLine, type XNode } from './xml';

/** File-wide compile state. */
export interface FileCtx {
  file: string;
  xml: string;
  problems: CompileProblem[];
  warnings: CompileProblem[];
  /** bpmn:Error id → errorCode (null when the error has none). */
  errorCodes: Map<string, string | null>;
  /** camunda:errorMessage of each bpmn:error (literal or expression), by id. */
  errorMessages: Map<string, string>;
  /** bpmn:Escalation id → escalationCode (null when the escalation has none). */
  escalationCodes: Map<string, string | null>;
  /** bpmn:Message and bpmn:Signal elements by id. */
  messages: Map<string, XNode>;
  signals: Map<string, XNode>;
  /** Problems already reported on shared root elements (messages, signals, errors, escalations): `${id}\0${message}`. */
  rootProblems: Set<string>;
  /** Unresolved references reported by moddle: `${elementId}\0${property}` → the id written in the model. */
  unresolved: Map<string, string>;
  /** Offsets of the line starts of `xml` (computed on first use). */
  lineStarts?: number[];
}

/** An empty context for one file. */
export function newFileCtx(file: string, xml: string): FileCtx {
  return {
    file,
    xml,
    problems: [],
    warnings: [],
    errorCodes: new Map(),
    errorMessages: new Map(),
    escalationCodes: new Map(),
    messages: new Map(),
    signals: new Map(),
    rootProblems: new Set(),
    unresolved: new Map(),
  };
}

/**
 * One scope: the process, an embedded subprocess or an event subprocess.
 * Its nodes carry `scope: id` (absent at process level).
 */
export interface ScopeState {
  /** The subprocess id; null for the process. */
  id: string | null;
  kind: 'process' | 'subProcess' | 'eventSubProcess' | 'adHocSubProcess';
  /** A bpmn:transaction (kind 'subProcess'): cancel end events may sit directly inside. */
  transaction: boolean;
  /** Start event elements (compiled or refused), none start events, message / signal / timer / error / escalation start events. */
  startElements: number;
  noneStarts: string[];
  eventStarts: string[];
  /** Event subprocesses directly inside, document order. */
  eventSubprocesses: string[];
}

/** Per-process compile state; `scope` is the scope whose flow elements are being compiled. */
export interface ProcessCtx extends FileCtx {
  processId: string;
  /** Every flow element of the process and of its subprocesses by id (whether supported or not). */
  elements: Map<string, XNode>;
  /** The scope (subprocess id, null = process) each element of `elements` sits in. */
  scopeOf: Map<string, string | null>;
  /** bpmn:association elements of the process and of every subprocess (compensation handlers are found through them). */
  associations: XNode[];
  nodes: Record<string, CompiledNode>;
  flows: Record<string, CompiledFlow>;
  scope: ScopeState;
}

export function newScope(id: string | null, kind: ScopeState['kind'], transaction = false): ScopeState {
  return { id, kind, transaction, startElements: 0, noneStarts: [], eventStarts: [], eventSubprocesses: [] };
}

/** "process p" / "subprocess s" / "event subprocess e" / "transaction t", for messages. */
export function scopeLabel(ctx: ProcessCtx, scopeId: string | null): string {
  if (scopeId === null) return `process ${ctx.processId}`;
  const el = ctx.elements.get(scopeId);
  if (el?.type === TRANSACTION) return `transaction ${scopeId}`;
  if (el?.type === AD_HOC_SUB_PROCESS) return `ad-hoc subprocess ${scopeId}`;
  return el !== undefined && bool(el, 'triggeredByEvent') === true ? `event subprocess ${scopeId}` : `subprocess ${scopeId}`;
}

export function problem(ctx: FileCtx, elementId: string | null, message: string): void {
  report(ctx, ctx.problems, elementId, message);
}

export function warn(ctx: FileCtx, elementId: string | null, message: string): void {
  report(ctx, ctx.warnings, elementId, message);
}

/** A problem of a root element (message, signal, …) shared by several events: reported once. */
export function rootProblem(ctx: FileCtx, rootId: string, message: string): void {
  const key = `${rootId}\0${message}`;
  if (ctx.rootProblems.has(key)) return;
  ctx.rootProblems.add(key);
  problem(ctx, rootId, message);
}

/** Appends to `list` up to MAX_PROBLEMS_PER_FILE entries; the last entry then counts the rest. */
function report(ctx: FileCtx, list: CompileProblem[], elementId: string | null, message: string): void {
  if (list.length < MAX_PROBLEMS_PER_FILE) {
    list.push({ file: ctx.file, elementId, message: oneLine(message) });
    return;
  }
  const last = list[list.length - 1];
  const more = /^(\d+) more not shown$/.exec(last.message);
  if (more !== null) last.message = `${Number(more[1]) + 1} more not shown`;
  else list.push({ file: ctx.file, elementId: null, message: '1 more not shown' });
}

// --- typed accessors on XNode ------------------------------------------------------

export function str(el: XNode, key: string): string | undefined {
  const v = el.props[key];
  return typeof v === 'string' ? v : undefined;
}

export function bool(el: XNode, key: string): boolean | undefined {
  const v = el.props[key];
  return typeof v === 'boolean' ? v : undefined;
}

export function kids(el: XNode, key: string): XNode[] {
  return el.children[key] ?? [];
}

export function idOf(el: XNode): string | null {
  const id = str(el, 'id');
  return id !== undefined && id !== '' ? id : null;
}

export function extensions(el: XNode): XNode[] {
  return kids(el, 'extensionElements').flatMap((e) => kids(e, 'values'));
}

export function eventDefinitions(el: XNode): XNode[] {
  return kids(el, 'eventDefinitions');
}

/** `bpmn:SubProcess` → `bpmn:subProcess` (the XML element name). */
export function xmlName(type: string): string {
  const i = type.indexOf(':');
  if (i < 0) return type;
  return type.slice(0, i + 1) + type.charAt(i + 1).toLowerCase() + type.slice(i + 2);
}

type RefLookup = { kind: 'none' } | { kind: 'ok'; id: string } | { kind: 'unresolved'; value: string };

/** A single-valued reference; an unresolved one is consumed (not reported again generically). */
export function ref(ctx: FileCtx, el: XNode, key: string): RefLookup {
  const ids = el.refs[key];
  if (ids !== undefined && ids.length > 0) return { kind: 'ok', id: ids[0] };
  const id = idOf(el);
  const k = `${id ?? ''}\0${key}`;
  const value = ctx.unresolved.get(k);
  if (value !== undefined) {
    ctx.unresolved.delete(k);
    return { kind: 'unresolved', value };
  }
  return { kind: 'none' };
}

export function nonEmpty(s: string | undefined): string | null {
  return s !== undefined && s.trim() !== '' ? s : null;
}

export interface ExtensionProperty {
  label: 'camunda:property' | 'zeebe:property';
  name: string;
  value: string;
}

/** camunda:properties / zeebe:properties of an element, document order. */
export function extensionProperties(el: XNode): ExtensionProperty[] {
  const props: ExtensionProperty[] = [];
  for (const ext of extensions(el)) {
    if (ext.type === 'camunda:Properties') {
      for (const p of kids(ext, 'camunda:values')) {
        props.push({ label: 'camunda:property', name: str(p, 'camunda:name') ?? '', value: str(p, 'camunda:value') ?? '' });
      }
    } else if (ext.type === 'zeebe:Properties') {
      for (const p of kids(ext, 'zeebe:properties')) {
        props.push({ label: 'zeebe:property', name: str(p, 'zeebe:name') ?? '', value: str(p, 'zeebe:value') ?? '' });
      }
    }
  }
  return props;
}

// --- shared element and node types -------------------------------------------------

export const NOTHING: ReadonlySet<string> = new Set();

export const TRANSACTION = 'bpmn:Transaction';
export const AD_HOC_SUB_PROCESS = 'bpmn:AdHocSubProcess';

/** Flow elements without execution semantics here: accepted with a warning. */
export const DATA_ELEMENTS: ReadonlySet<string> = new Set(['bpmn:DataObject', 'bpmn:DataObjectReference', 'bpmn:DataStoreReference']);

const TASK_TYPES: ReadonlySet<NodeType> = new Set<NodeType>(['task', 'manualTask', 'scriptTask', 'userTask', 'serviceTask', 'sendTask', 'businessRuleTask', 'receiveTask']);

/** Activities: tasks, (embedded) subprocesses, call activities. Boundary events may be attached to them (not to event subprocesses). */
export const ACTIVITY_TYPES: ReadonlySet<NodeType> = new Set<NodeType>([...TASK_TYPES, 'subProcess', 'callActivity']);

export function baseNode(el: XNode, id: string, type: NodeType): CompiledNode {
  return { id, type, name: nonEmpty(str(el, 'name')), in: [], out: [] };
}

/** Start and boundary events, event subprocesses, compensation handlers and link catch events are entered without sequence flows. */
export function isEnteredWithoutFlows(node: CompiledNode): boolean {
  if (node.type === 'startEvent' || node.type === 'boundaryEvent' || node.isForCompensation === true) return true;
  if (node.type === 'subProcess') return node.triggeredByEvent === true;
  return node.type === 'intermediateCatchEvent' && node.event?.kind === 'link';
}
