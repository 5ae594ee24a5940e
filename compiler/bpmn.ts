/**
 * BPMN 2.0 XML → compiled graph (compiler/graph.ts).
 *
 * Three stages, each collecting every problem it finds:
 *
 *  1. prescanXml: a cheap, linear scan of the raw text before any parser sees
 *     it: no DOCTYPE / ENTITY (entity expansion, XXE), bounded nesting depth and
 *     element count.
 *  2. parseBpmnXml: bpmn-moddle (with the camunda and zeebe extensions) parses
 *     the text in a worker thread with a heap limit and a wall-clock timeout, and
 *     hands back a plain element tree (XNode) plus moddle's warnings. The worker
 *     also isolates bpmn-moddle, which ships as ES modules only, from this
 *     CommonJS code base (and from Jest's module system).
 *  3. compileDefinitions: the semantics, on the plain tree: which processes are
 *     executable, which elements and attributes are supported, and the graph the
 *     SQL engine walks.
 *
 * Adding an element kind in a later version: add its compile function to
 * NODE_COMPILERS (and its flow rules to checkNodeFlows); an event definition:
 * SUPPORTED_DEFINITIONS and compileEventOf; adding an extension element or
 * attribute: add it to EXTENSION_RULES / ATTRIBUTE_RULES. Literal timer texts
 * are checked in compiler/timer.ts.
 */
import { dirname, join } from 'path';
import { pathToFileURL } from 'url';
import { Worker } from 'worker_threads';
import { compileExpression, isExpression } from './expression';
import type {
  CompiledExpression,
  CompiledFlow,
  CompiledGraph,
  CompiledNode,
  CompiledProcess,
  CompiledValue,
  CompileProblem,
  EventDefinition,
  NodeType,
  UserTaskSpec,
} from './graph';
import {
  MAX_ATTRIBUTES_PER_ELEMENT,
  MAX_ELEMENTS,
  MAX_NESTING_DEPTH,
  MAX_PROBLEMS_PER_FILE,
  MAX_UPSTREAM_ENTRIES,
  PARSE_MAX_OLD_GENERATION_MB,
  PARSE_MAX_YOUNG_GENERATION_MB,
  PARSE_TIMEOUT_MS,
} from './limits';
import { isIsoDateTime, isIsoDuration, parseRetryCycle, timerLiteralProblem, type TimerKind } from './timer';

// ===========================================================================
// 1. Pre-scan of the raw text
// ===========================================================================

/**
 * Checks the raw XML text before parsing, in time linear in its length.
 * Returns file-level problem messages (empty when the text may be parsed).
 */
export function prescanXml(text: string): string[] {
  if (text.trim() === '') return ['file is empty'];
  const problems: string[] = [];
  if (/<!\s*DOCTYPE/i.test(text)) {
    problems.push('DOCTYPE declarations are not allowed in BPMN files (entity expansion / XXE defence)');
  }
  if (/<!\s*ENTITY/i.test(text)) {
    problems.push('ENTITY declarations are not allowed in BPMN files (entity expansion / XXE defence)');
  }
  const structure = scanStructure(text);
  if (structure !== null) problems.push(structure);
  return problems;
}

/** Counts element nesting and elements; returns a problem message or null. Malformed markup is left to the parser. */
function scanStructure(text: string): string | null {
  const n = text.length;
  let depth = 0;
  let elements = 0;
  let i = 0;
  for (;;) {
    const lt = text.indexOf('<', i);
    if (lt < 0 || lt + 1 >= n) return null;
    const next = text.charCodeAt(lt + 1);
    let end: number;
    if (text.startsWith('!--', lt + 1)) {
      end = text.indexOf('-->', lt + 4);
      if (end < 0) return null;
      i = end + 3;
      continue;
    }
    if (text.startsWith('![CDATA[', lt + 1)) {
      end = text.indexOf(']]>', lt + 9);
      if (end < 0) return null;
      i = end + 3;
      continue;
    }
    if (next === 0x3f /* ? */ || next === 0x21 /* ! */ || next === 0x2f /* / */) {
      end = text.indexOf('>', lt + 2);
      if (end < 0) return null;
      if (next === 0x2f) depth--;
      i = end + 1;
      continue;
    }
    // A start tag: find its '>' outside quoted attribute values, counting attributes.
    let quote = 0;
    let attributes = 0;
    let j = lt + 1;
    for (; j < n; j++) {
      const ch = text.charCodeAt(j);
      if (quote !== 0) {
        if (ch === quote) quote = 0;
      } else if (ch === 0x22 || ch === 0x27) {
        quote = ch;
      } else if (ch === 0x3d /* = */) {
        attributes++;
      } else if (ch === 0x3e /* > */) {
        break;
      }
    }
    if (j >= n) return null;
    if (attributes > MAX_ATTRIBUTES_PER_ELEMENT) return `an XML element has more than ${MAX_ATTRIBUTES_PER_ELEMENT} attributes`;
    elements++;
    if (elements > MAX_ELEMENTS) return `file has more than ${MAX_ELEMENTS} XML elements`;
    if (text.charCodeAt(j - 1) !== 0x2f /* self-closing */) {
      depth++;
      if (depth > MAX_NESTING_DEPTH) return `XML elements are nested deeper than ${MAX_NESTING_DEPTH} levels`;
    }
    i = j + 1;
  }
}

// ===========================================================================
// 2. Parsing (bpmn-moddle in a worker thread)
// ===========================================================================

/**
 * One element of the parsed model as a plain object. Keys: BPMN properties by
 * their local name (`id`, `name`, `sourceRef`), extension properties by their
 * qualified name (`camunda:topic`). Types are moddle type names
 * (`bpmn:UserTask`, `camunda:InputOutput`; generic elements of unknown
 * namespaces keep their XML name).
 */
export interface XNode {
  type: string;
  /** Attributes / simple properties present in the XML (no schema defaults). */
  props: Record<string, string | number | boolean>;
  /** Resolved references: ids of the referenced elements. */
  refs: Record<string, string[]>;
  /** Contained elements (a single child is a one-element list). Diagram (bpmndi) elements are dropped. */
  children: Record<string, XNode[]>;
  /** Attributes outside the schema (other namespaces, unknown names). */
  attrs: Record<string, string>;
}

/** A warning of the moddle reader. */
export interface ParserWarning {
  message: string;
  elementId: string | null;
  elementType: string | null;
  property: string | null;
  value: string | null;
}

export type ParseOutcome =
  | { ok: true; root: XNode; warnings: ParserWarning[] }
  | { ok: false; message: string };

/**
 * Runs inside the worker (CommonJS, eval'd). Imports bpmn-moddle natively,
 * parses, and posts the element tree as plain data.
 */
const WORKER_SOURCE = String.raw`
'use strict';
const { parentPort, workerData } = require('worker_threads');
const fs = require('fs');
const own = Object.prototype.hasOwnProperty;
function isElement(v) { return v !== null && typeof v === 'object' && typeof v.$type === 'string'; }
function isPrimitive(v) { return typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean'; }
function isDiagram(v) { return isElement(v) && v.$type.indexOf('bpmndi:') === 0; }
function keyOf(p) { return p.ns.prefix === 'bpmn' ? p.ns.localName : p.ns.name; }
function toNode(el) {
  const node = { type: el.$type, props: {}, refs: {}, children: {}, attrs: {} };
  const d = el.$descriptor;
  if (!d || d.isGeneric) {
    for (const k of Object.keys(el)) {
      if (k.charAt(0) !== '$' && isPrimitive(el[k])) node.attrs[k] = String(el[k]);
    }
    if (typeof el.$body === 'string') node.props.body = el.$body;
    if (Array.isArray(el.$children)) node.children.children = el.$children.filter(isElement).map(toNode);
    return node;
  }
  for (const p of d.properties) {
    if (!own.call(el, p.name)) continue;
    const v = el[p.name];
    if (v === undefined || v === null) continue;
    const key = keyOf(p);
    if (p.isReference) {
      const list = Array.isArray(v) ? v : [v];
      node.refs[key] = list.filter(function (r) { return r && typeof r.id === 'string'; }).map(function (r) { return r.id; });
    } else if (Array.isArray(v)) {
      const kids = v.filter(function (x) { return isElement(x) && !isDiagram(x); }).map(toNode);
      if (kids.length > 0) node.children[key] = kids;
    } else if (isElement(v)) {
      if (!isDiagram(v)) node.children[key] = [toNode(v)];
    } else if (isPrimitive(v)) {
      node.props[key] = v;
    }
  }
  const attrs = el.$attrs;
  if (attrs) {
    for (const k of Object.keys(attrs)) {
      if (typeof attrs[k] === 'string' && k !== 'xmlns' && k.indexOf('xmlns:') !== 0) node.attrs[k] = attrs[k];
    }
  }
  return node;
}
function toWarning(w) {
  const el = w && w.element;
  return {
    message: String((w && w.message) || ''),
    elementId: el && typeof el.id === 'string' ? el.id : null,
    elementType: el && typeof el.$type === 'string' ? el.$type : null,
    property: w && typeof w.property === 'string' ? w.property : null,
    value: w && typeof w.value === 'string' ? w.value : null,
  };
}
(async function main() {
  try {
    const mod = await import(workerData.moddleUrl);
    const BpmnModdle = mod.BpmnModdle || mod.default;
    const camunda = JSON.parse(fs.readFileSync(workerData.camundaSchema, 'utf8'));
    const zeebe = JSON.parse(fs.readFileSync(workerData.zeebeSchema, 'utf8'));
    // Both extensions define modelerTemplate(Version) on the same BPMN types;
    // moddle refuses the duplicate. They are modeler metadata only: keep camunda's.
    for (const t of zeebe.types) {
      if (t.name === 'TemplateSupported') {
        t.properties = t.properties.filter(function (p) { return p.name !== 'modelerTemplate' && p.name !== 'modelerTemplateVersion'; });
      }
    }
    const moddle = new BpmnModdle({ camunda: camunda, zeebe: zeebe });
    let result;
    try {
      result = await moddle.fromXML(workerData.xml);
    } catch (e) {
      parentPort.postMessage({ kind: 'invalid', message: String((e && e.message) || e) });
      return;
    }
    parentPort.postMessage({ kind: 'parsed', root: toNode(result.rootElement), warnings: result.warnings.map(toWarning) });
  } catch (e) {
    parentPort.postMessage({ kind: 'crashed', message: String((e && e.stack) || e) });
  }
})();
`;

interface ModdleLocations {
  moddleUrl: string;
  camundaSchema: string;
  zeebeSchema: string;
}

let locations: ModdleLocations | undefined;

function moddleLocations(): ModdleLocations {
  if (locations === undefined) {
    const bpmnDir = dirname(require.resolve('bpmn-moddle/package.json'));
    locations = {
      moddleUrl: pathToFileURL(join(bpmnDir, 'dist', 'index.js')).href,
      camundaSchema: require.resolve('camunda-bpmn-moddle/resources/camunda.json'),
      zeebeSchema: require.resolve('zeebe-bpmn-moddle/resources/zeebe.json'),
    };
  }
  return locations;
}

/**
 * Parses BPMN XML with bpmn-moddle in a worker thread bounded by `timeoutMs`
 * and the PARSE_MAX_* heap limits. `{ ok: false, message }` is a problem of the
 * file (not XML, not BPMN, too expensive to parse), message ready for the user;
 * an internal failure (the parser cannot be loaded) is thrown.
 *
 * The time limit matters: moddle computes the line of every parse warning by
 * rescanning the text, so a file full of unknown elements costs quadratic time.
 */
export function parseBpmnXml(xml: string, timeoutMs: number = PARSE_TIMEOUT_MS): Promise<ParseOutcome> {
  const where = moddleLocations();
  return new Promise<ParseOutcome>((resolve, reject) => {
    let settled = false;
    const worker = new Worker(WORKER_SOURCE, {
      eval: true,
      workerData: { ...where, xml },
      resourceLimits: {
        maxOldGenerationSizeMb: PARSE_MAX_OLD_GENERATION_MB,
        maxYoungGenerationSizeMb: PARSE_MAX_YOUNG_GENERATION_MB,
      },
      stdout: true,
      stderr: true,
    });
    const finish = (outcome: ParseOutcome | Error): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      void worker.terminate();
      if (outcome instanceof Error) reject(outcome);
      else resolve(outcome);
    };
    const timer = setTimeout(
      () => finish({ ok: false, message: `parsing did not finish within ${timeoutMs / 1000} s; the file is too large or too complex` }),
      timeoutMs,
    );
    worker.on('message', (m: unknown) => {
      try {
        finish(readWorkerMessage(m));
      } catch (e) {
        finish(e instanceof Error ? e : new Error(String(e)));
      }
    });
    worker.on('error', (e: Error & { code?: string }) => {
      if (e.code === 'ERR_WORKER_OUT_OF_MEMORY') {
        finish({ ok: false, message: `parsing needs more than ${PARSE_MAX_OLD_GENERATION_MB} MB of memory; the file is too large or too complex` });
      } else {
        finish(new Error(`BPMN parser worker failed: ${e.message}`));
      }
    });
    worker.on('exit', (code) => finish(new Error(`BPMN parser worker exited unexpectedly (code ${code})`)));
  });
}

function readWorkerMessage(m: unknown): ParseOutcome | Error {
  if (!isRecord(m)) return new Error('BPMN parser worker sent a malformed message');
  if (m.kind === 'parsed') {
    const warnings = Array.isArray(m.warnings) ? m.warnings.map(asParserWarning) : [];
    return { ok: true, root: asXNode(m.root), warnings };
  }
  if (m.kind === 'invalid' && typeof m.message === 'string') return { ok: false, message: describeParseFailure(m.message) };
  return new Error(`BPMN parser worker failed: ${typeof m.message === 'string' ? m.message : 'unknown error'}`);
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function asParserWarning(v: unknown): ParserWarning {
  const r = isRecord(v) ? v : {};
  const s = (x: unknown): string | null => (typeof x === 'string' ? x : null);
  return {
    message: s(r.message) ?? '',
    elementId: s(r.elementId),
    elementType: s(r.elementType),
    property: s(r.property),
    value: s(r.value),
  };
}

/** Validates the worker's tree (structured-cloned plain data) into XNode. */
function asXNode(v: unknown): XNode {
  if (!isRecord(v) || typeof v.type !== 'string') throw new Error('BPMN parser worker sent a malformed element');
  const node: XNode = { type: v.type, props: {}, refs: {}, children: {}, attrs: {} };
  if (isRecord(v.props)) {
    for (const [k, x] of Object.entries(v.props)) {
      if (typeof x === 'string' || typeof x === 'number' || typeof x === 'boolean') node.props[k] = x;
    }
  }
  if (isRecord(v.refs)) {
    for (const [k, x] of Object.entries(v.refs)) {
      if (Array.isArray(x)) node.refs[k] = x.filter((id): id is string => typeof id === 'string');
    }
  }
  if (isRecord(v.children)) {
    for (const [k, x] of Object.entries(v.children)) {
      if (Array.isArray(x)) node.children[k] = x.map(asXNode);
    }
  }
  if (isRecord(v.attrs)) {
    for (const [k, x] of Object.entries(v.attrs)) {
      if (typeof x === 'string') node.attrs[k] = x;
    }
  }
  return node;
}

/** Turns a fatal moddle error (thrown by fromXML) into a one-line message. */
function describeParseFailure(message: string): string {
  if (message.startsWith('failed to parse document as')) {
    return 'not a BPMN 2.0 file: the root element must be <bpmn:definitions> (namespace http://www.omg.org/spec/BPMN/20100524/MODEL)';
  }
  const u = parseUnparsable(message);
  if (u !== null) return `not well-formed XML (line ${u.line}, column ${u.column}): ${u.nested}`;
  return `not well-formed XML: ${oneLine(message)}`;
}

interface Unparsable {
  tag: string;
  line: number;
  column: number;
  nested: string;
}

/** moddle: "unparsable content <tag> detected\n\tline: L\n\tcolumn: C\n\tnested error: E" (L, C 0-based). */
function parseUnparsable(message: string): Unparsable | null {
  const m = /^unparsable content ([\s\S]*?)\s*detected\s+line: (\d+)\s+column: (\d+)\s+nested error: ([\s\S]*)$/.exec(message);
  if (m === null) return null;
  return { tag: m[1], line: Number(m[2]) + 1, column: Number(m[3]) + 1, nested: oneLine(m[4]) };
}

function oneLine(s: string): string {
  return s.replace(/\s*\n\s*/g, ' ').trim();
}

// ===========================================================================
// 3. Semantics
// ===========================================================================

export interface DefinitionsResult {
  processes: CompiledProcess[];
  problems: CompileProblem[];
  warnings: CompileProblem[];
}

/** File-wide compile state. */
interface FileCtx {
  file: string;
  xml: string;
  problems: CompileProblem[];
  warnings: CompileProblem[];
  /** bpmn:Error id → errorCode (null when the error has none). */
  errorCodes: Map<string, string | null>;
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

/** Per-process compile state. */
interface ProcessCtx extends FileCtx {
  processId: string;
  /** Every flow element of the process by id (whether supported or not). */
  elements: Map<string, XNode>;
  nodes: Record<string, CompiledNode>;
  flows: Record<string, CompiledFlow>;
  /** Start event elements (compiled or refused), none start events, message / signal / timer start events. */
  startElements: number;
  noneStarts: string[];
  eventStarts: string[];
}

function problem(ctx: FileCtx, elementId: string | null, message: string): void {
  report(ctx, ctx.problems, elementId, message);
}

function warn(ctx: FileCtx, elementId: string | null, message: string): void {
  report(ctx, ctx.warnings, elementId, message);
}

/** A problem of a root element (message, signal, …) shared by several events: reported once. */
function rootProblem(ctx: FileCtx, rootId: string, message: string): void {
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

// --- typed accessors on XNode ----------------------------------------------

function str(el: XNode, key: string): string | undefined {
  const v = el.props[key];
  return typeof v === 'string' ? v : undefined;
}

function bool(el: XNode, key: string): boolean | undefined {
  const v = el.props[key];
  return typeof v === 'boolean' ? v : undefined;
}

function kids(el: XNode, key: string): XNode[] {
  return el.children[key] ?? [];
}

function idOf(el: XNode): string | null {
  const id = str(el, 'id');
  return id !== undefined && id !== '' ? id : null;
}

function extensions(el: XNode): XNode[] {
  return kids(el, 'extensionElements').flatMap((e) => kids(e, 'values'));
}

function eventDefinitions(el: XNode): XNode[] {
  return kids(el, 'eventDefinitions');
}

/** `bpmn:SubProcess` → `bpmn:subProcess` (the XML element name). */
function xmlName(type: string): string {
  const i = type.indexOf(':');
  if (i < 0) return type;
  return type.slice(0, i + 1) + type.charAt(i + 1).toLowerCase() + type.slice(i + 2);
}

type RefLookup = { kind: 'none' } | { kind: 'ok'; id: string } | { kind: 'unresolved'; value: string };

/** A single-valued reference; an unresolved one is consumed (not reported again generically). */
function ref(ctx: FileCtx, el: XNode, key: string): RefLookup {
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

function nonEmpty(s: string | undefined): string | null {
  return s !== undefined && s.trim() !== '' ? s : null;
}

// --- moddle warnings -----------------------------------------------------------

/** Attributes moddle does not know but that are harmless (dropped from the schema to merge camunda + zeebe). */
const IGNORED_UNKNOWN_ATTRIBUTES: ReadonlySet<string> = new Set(['zeebe:modelerTemplate', 'zeebe:modelerTemplateVersion']);

function classifyParserWarnings(ctx: FileCtx, warnings: ParserWarning[]): void {
  for (const w of warnings) {
    if (w.message.startsWith('unresolved reference')) {
      const prop = (w.property ?? '').replace(/^bpmn:/, '');
      ctx.unresolved.set(`${w.elementId ?? ''}\0${prop}`, w.value ?? '');
      continue;
    }
    if (w.message.startsWith('unknown attribute')) {
      const name = w.property ?? '';
      if (IGNORED_UNKNOWN_ATTRIBUTES.has(name)) continue;
      if (name.startsWith('camunda:') || name.startsWith('zeebe:')) {
        problem(ctx, w.elementId, `unknown attribute ${name}="${w.value ?? ''}"`);
      } else {
        warn(ctx, w.elementId, `unknown attribute ${name} is ignored`);
      }
      continue;
    }
    const u = parseUnparsable(w.message);
    if (u !== null) {
      const found = elementAt(ctx, u.line, u.column);
      const dup = /^duplicate ID <(.*)>$/.exec(u.nested);
      const unknown = /^unknown type <(.*)>$/.exec(u.nested);
      if (dup !== null) {
        problem(ctx, dup[1], `id "${dup[1]}" is used by more than one element (line ${u.line})`);
      } else if (unknown !== null) {
        problem(ctx, found, `unknown element ${u.tag} (line ${u.line}, column ${u.column}): unknown type <${unknown[1]}>`);
      } else {
        problem(ctx, found, `unparsable content ${u.tag} (line ${u.line}, column ${u.column}): ${u.nested}`);
      }
      continue;
    }
    problem(ctx, w.elementId, oneLine(w.message));
  }
}

/** The id attribute of the tag starting at (1-based) line/column, if any. */
function elementAt(ctx: FileCtx, line: number, column: number): string | null {
  if (ctx.lineStarts === undefined) {
    const starts = [0];
    for (let i = ctx.xml.indexOf('\n'); i >= 0; i = ctx.xml.indexOf('\n', i + 1)) starts.push(i + 1);
    ctx.lineStarts = starts;
  }
  const lineStart = ctx.lineStarts[line - 1];
  if (lineStart === undefined) return null;
  const start = lineStart + column - 1;
  if (ctx.xml.charAt(start) !== '<') return null;
  const window = ctx.xml.slice(start, start + 4000);
  const end = window.indexOf('>');
  const m = /\sid\s*=\s*(?:"([^"]*)"|'([^']*)')/.exec(end < 0 ? window : window.slice(0, end));
  return m === null ? null : (m[1] ?? m[2] ?? null);
}

/** Unresolved references that point nowhere but carry no semantics here (diagram, lanes, redundant incoming/outgoing). */
const HARMLESS_REFERENCE_PROPERTIES: ReadonlySet<string> = new Set(['incoming', 'outgoing', 'flowNodeRef', 'bpmnElement']);

function reportLeftoverReferences(ctx: FileCtx): void {
  for (const [key, value] of ctx.unresolved) {
    const [elementId, prop] = key.split('\0');
    const id = elementId === '' ? null : elementId;
    if (HARMLESS_REFERENCE_PROPERTIES.has(prop) || prop.startsWith('bpmndi:') || prop.startsWith('di:')) {
      warn(ctx, id, `${prop} reference "${value}" does not resolve to any element (ignored)`);
    } else {
      problem(ctx, id, `${prop} reference "${value}" does not resolve to any element`);
    }
  }
  ctx.unresolved.clear();
}

// --- attributes and extension elements --------------------------------------------

/** How a camunda:/zeebe: attribute or extension element is treated when the element kind does not consume it. */
type Rule = (ctx: FileCtx, ownerId: string | null, owner: XNode, value: XNode | string | number | boolean) => void;

const IGNORE: Rule = () => undefined;

const EXTERNAL_TASK_HINT = 'use an external task (camunda:type="external" camunda:topic="...")';
const JOB_WORKER_HINT = 'use a job worker (zeebe:taskDefinition type="...")';

function quote(v: XNode | string | number | boolean): string {
  return typeof v === 'object' ? '' : `"${String(v)}"`;
}

const javaDelegate = (attr: string): Rule => (ctx, id, _owner, v) =>
  problem(ctx, id, `Java delegates are not supported (${attr}=${quote(v)}); ${EXTERNAL_TASK_HINT}`);

/** On flow nodes the async flags are read by compileJobSettings; camunda:async on a signal event definition is not. */
const asyncFlag = (attr: string): Rule => (ctx, id, owner, v) => {
  if (v === true && owner.type === 'bpmn:SignalEventDefinition') {
    warn(ctx, id, `${attr} on bpmn:signalEventDefinition is ignored: signals are delivered in the transaction that throws them`);
  }
};

const unsupportedAttribute = (attr: string): Rule => (ctx, id, _owner, v) =>
  problem(ctx, id, `attribute ${attr}=${quote(v)} is not supported in this version`);

/** camunda:/zeebe: attributes. Anything not listed here and not consumed by the element kind is refused. */
const ATTRIBUTE_RULES: Readonly<Record<string, Rule>> = {
  // modeler / operations metadata, no execution semantics here
  'camunda:versionTag': IGNORE,
  'camunda:historyTimeToLive': IGNORE,
  'camunda:candidateStarterGroups': IGNORE,
  'camunda:candidateStarterUsers': IGNORE,
  'camunda:isStartableInTasklist': IGNORE,
  'camunda:jobPriority': IGNORE,
  'camunda:taskPriority': IGNORE,
  'camunda:exclusive': IGNORE,
  'camunda:formKey': IGNORE,
  'camunda:formRef': IGNORE,
  'camunda:formRefBinding': IGNORE,
  'camunda:formRefVersion': IGNORE,
  'camunda:modelerTemplate': IGNORE,
  'camunda:modelerTemplateVersion': IGNORE,
  'camunda:errorMessage': IGNORE,
  'camunda:diagramRelationId': IGNORE,
  'zeebe:modelerTemplateIcon': IGNORE,
  'zeebe:retryCounter': IGNORE,
  // transaction boundaries (asyncBefore / asyncAfter of flow nodes, read by compileJobSettings)
  'camunda:async': asyncFlag('camunda:async'),
  'camunda:asyncBefore': asyncFlag('camunda:asyncBefore'),
  'camunda:asyncAfter': asyncFlag('camunda:asyncAfter'),
  // code
  'camunda:class': javaDelegate('camunda:class'),
  'camunda:delegateExpression': javaDelegate('camunda:delegateExpression'),
  'camunda:expression': javaDelegate('camunda:expression'),
  'camunda:formHandlerClass': javaDelegate('camunda:formHandlerClass'),
  'camunda:resultVariable': IGNORE, // only with camunda:expression / scripts / DMN, which are refused
  'camunda:decisionRef': (ctx, id, _o, v) =>
    problem(ctx, id, `DMN decisions are not supported (camunda:decisionRef=${quote(v)}); ${EXTERNAL_TASK_HINT}`),
  'camunda:decisionRefBinding': IGNORE,
  'camunda:decisionRefVersion': IGNORE,
  'camunda:decisionRefTenantId': IGNORE,
  'camunda:mapDecisionResult': IGNORE,
  'camunda:initiator': unsupportedAttribute('camunda:initiator'),
};

const listenerRule = (element: string): Rule => (ctx, id, _owner, v) => {
  if (typeof v !== 'object') return;
  const event = str(v, 'camunda:event');
  const on = event !== undefined ? ` event="${event}"` : '';
  for (const attr of ['class', 'delegateExpression', 'expression']) {
    const value = str(v, `camunda:${attr}`);
    if (value !== undefined) {
      problem(ctx, id, `Java delegates are not supported (${element}${on} camunda:${attr}="${value}"); ${EXTERNAL_TASK_HINT}`);
      return;
    }
  }
  const script = kids(v, 'camunda:script')[0];
  if (script !== undefined) {
    const format = str(script, 'camunda:scriptFormat');
    problem(ctx, id, `scripts are not supported (${element}${on} with camunda:script${format !== undefined ? ` scriptFormat="${format}"` : ''})`);
    return;
  }
  problem(ctx, id, `${element} is not supported in this version`);
};

const refuseExtension = (message: string): Rule => (ctx, id) => problem(ctx, id, message);

const IO_MAPPING = 'input/output mappings are not supported in this version';

/** Extension elements by moddle type. Unlisted camunda:/zeebe: types are refused; other namespaces are ignored with a warning. */
const EXTENSION_RULES: Readonly<Record<string, Rule>> = {
  'camunda:Properties': IGNORE,
  'camunda:FormData': IGNORE,
  'camunda:FormProperty': IGNORE,
  'camunda:PotentialStarter': IGNORE,
  'camunda:Field': IGNORE, // field injection belongs to Java delegates, which are refused
  'zeebe:Properties': IGNORE,
  'zeebe:TaskHeaders': IGNORE,
  'zeebe:UserTask': IGNORE,
  'zeebe:FormDefinition': IGNORE,
  'zeebe:UserTaskForm': IGNORE,
  'zeebe:JobPriorityDefinition': IGNORE,
  'zeebe:LinkedResources': IGNORE,
  'camunda:FailedJobRetryTimeCycle': IGNORE, // jobRetry of flow nodes, read by compileJobSettings
  'camunda:InputOutput': (ctx, id, _owner, v) => {
    problem(ctx, id, `${IO_MAPPING} (camunda:inputOutput)`);
    if (typeof v === 'object' && containsType(v, 'camunda:Script')) {
      problem(ctx, id, 'scripts are not supported (camunda:script in camunda:inputOutput)');
    }
  },
  'zeebe:IoMapping': refuseExtension(`${IO_MAPPING} (zeebe:ioMapping)`),
  'camunda:ExecutionListener': listenerRule('camunda:executionListener'),
  'camunda:TaskListener': listenerRule('camunda:taskListener'),
  'camunda:Connector': (ctx, id, _owner, v) => {
    const cid = typeof v === 'object' ? str(v, 'camunda:connectorId') : undefined;
    problem(ctx, id, `connectors are not supported (camunda:connector${cid !== undefined ? ` connectorId="${cid}"` : ''}); ${EXTERNAL_TASK_HINT}`);
  },
  'camunda:ErrorEventDefinition': refuseExtension('camunda:errorEventDefinition (error expressions on external tasks) is not supported in this version'),
  'zeebe:ExecutionListeners': refuseExtension('execution listeners are not supported in this version (zeebe:executionListeners)'),
  'zeebe:TaskListeners': refuseExtension('task listeners are not supported in this version (zeebe:taskListeners)'),
  'zeebe:Script': (ctx, id, _owner, v) => {
    const expr = typeof v === 'object' ? str(v, 'zeebe:expression') : undefined;
    problem(ctx, id, `scripts are not supported (zeebe:script${expr !== undefined ? ` expression="${expr}"` : ''}); ${JOB_WORKER_HINT}`);
  },
  'zeebe:CalledDecision': (ctx, id, _owner, v) => {
    const decision = typeof v === 'object' ? str(v, 'zeebe:decisionId') : undefined;
    problem(ctx, id, `DMN decisions are not supported (zeebe:calledDecision${decision !== undefined ? ` decisionId="${decision}"` : ''}); ${JOB_WORKER_HINT}`);
  },
};

function containsType(el: XNode, type: string): boolean {
  if (el.type === type) return true;
  return Object.values(el.children).some((list) => list.some((c) => containsType(c, type)));
}

function isExtensionNamespace(name: string): boolean {
  return name.startsWith('camunda:') || name.startsWith('zeebe:');
}

/**
 * Checks the camunda:/zeebe: attributes and the extension elements of an
 * element; `consumed` names what the element kind's compile function reads itself.
 * Problems name `ownerId` (an event definition's problems name its event).
 */
function checkExtensions(ctx: FileCtx, el: XNode, consumed: ReadonlySet<string> = NOTHING, ownerId: string | null = idOf(el)): void {
  const id = ownerId;
  for (const [name, value] of Object.entries(el.props)) {
    if (!isExtensionNamespace(name) || consumed.has(name)) continue;
    const rule = ATTRIBUTE_RULES[name] ?? unsupportedAttribute(name);
    rule(ctx, id, el, value);
  }
  for (const ext of extensions(el)) {
    if (consumed.has(ext.type)) continue;
    const rule = EXTENSION_RULES[ext.type];
    if (rule !== undefined) rule(ctx, id, el, ext);
    else if (isExtensionNamespace(ext.type)) problem(ctx, id, `extension element ${xmlName(ext.type)} is not supported in this version`);
    else warn(ctx, id, `extension element ${ext.type} is ignored`);
  }
}

const NOTHING: ReadonlySet<string> = new Set();

// --- process --------------------------------------------------------------------

/** Flow elements without execution semantics here: accepted with a warning. */
const DATA_ELEMENTS: ReadonlySet<string> = new Set(['bpmn:DataObject', 'bpmn:DataObjectReference', 'bpmn:DataStoreReference']);

function compileProcess(file: FileCtx, proc: XNode): CompiledProcess | null {
  const processId = idOf(proc);
  if (processId === null) {
    problem(file, null, 'executable process without id');
    return null;
  }
  const before = file.problems.length;
  const ctx: ProcessCtx = { ...file, processId, elements: new Map(), nodes: {}, flows: {}, startElements: 0, noneStarts: [], eventStarts: [] };
  // ctx shares the file's arrays and maps (spread copies the references).

  checkExtensions(ctx, proc, PROCESS_CONSUMES);
  checkProcessChildren(ctx, proc);

  const flowElements = kids(proc, 'flowElements');
  for (const el of flowElements) {
    const id = idOf(el);
    if (id === null) problem(ctx, null, `${xmlName(el.type)} without id in process ${processId}`);
    else ctx.elements.set(id, el);
  }
  const sequenceFlows: XNode[] = [];
  for (const el of flowElements) {
    const id = idOf(el);
    if (id === null) continue;
    if (el.type === 'bpmn:SequenceFlow') {
      sequenceFlows.push(el);
      continue;
    }
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
    compileJobSettings(ctx, el, node);
    compileTaskEscalation(ctx, el, node);
    ctx.nodes[id] = node;
  }
  for (const el of sequenceFlows) compileSequenceFlow(ctx, el);
  attachBoundaryEvents(ctx);
  for (const node of Object.values(ctx.nodes)) checkNodeFlows(ctx, node);
  checkStart(ctx, proc);
  computeUpstream(ctx);

  if (file.problems.length > before) return null;
  const start = ctx.noneStarts[0] ?? null;
  const graph: CompiledGraph = ctx.eventStarts.length > 0
    ? { start, eventStarts: ctx.eventStarts, nodes: ctx.nodes, flows: ctx.flows }
    : { start, nodes: ctx.nodes, flows: ctx.flows };
  return {
    key: processId,
    name: nonEmpty(str(proc, 'name')),
    versionTag: processVersionTag(proc),
    graph,
  };
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
  if (ctx.startElements === 0) {
    problem(ctx, idOf(proc), 'process has no start event (a none, message, signal or timer start event is required)');
  } else if (ctx.noneStarts.length > 1) {
    problem(ctx, idOf(proc), `process has ${ctx.noneStarts.length} none start events (${ctx.noneStarts.join(', ')}); exactly one is supported in this version`);
  }
  const messageStarts = new Map<string, string>();
  for (const id of ctx.eventStarts) {
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
};

function rejectElement(ctx: ProcessCtx, el: XNode, id: string): void {
  const defs = eventDefinitions(el).map((d) => xmlName(d.type));
  let detail = defs.length > 0 ? ` (${defs.join(', ')})` : '';
  if (el.type === 'bpmn:SubProcess' && bool(el, 'triggeredByEvent') === true) detail = ' (event sub-process)';
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

function baseNode(el: XNode, id: string, type: NodeType): CompiledNode {
  return { id, type, name: nonEmpty(str(el, 'name')), in: [], out: [] };
}

// --- events ------------------------------------------------------------------------

/** Where an event sits; also the wording of its messages ("message intermediate catch event"). */
type EventPosition = 'start' | 'end' | 'intermediate catch' | 'intermediate throw' | 'boundary';

const TIMER = 'bpmn:TimerEventDefinition';
const MESSAGE = 'bpmn:MessageEventDefinition';
const SIGNAL = 'bpmn:SignalEventDefinition';
const ERROR = 'bpmn:ErrorEventDefinition';
const ESCALATION = 'bpmn:EscalationEventDefinition';
const TERMINATE = 'bpmn:TerminateEventDefinition';

/** Event definitions supported per position; everything else (conditional, link, compensation, cancel, …) is refused. */
const SUPPORTED_DEFINITIONS: Readonly<Record<EventPosition, ReadonlySet<string>>> = {
  start: new Set([TIMER, MESSAGE, SIGNAL]),
  'intermediate catch': new Set([TIMER, MESSAGE, SIGNAL]),
  boundary: new Set([TIMER, MESSAGE, SIGNAL, ERROR, ESCALATION]),
  'intermediate throw': new Set([MESSAGE, SIGNAL, ESCALATION]),
  end: new Set([MESSAGE, SIGNAL, ERROR, ESCALATION, TERMINATE]),
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
    default: // TERMINATE
      event = { kind: 'terminate' };
      node.terminate = true;
  }
  if (event === null) return 'refused';
  node.event = event;
  return 'ok';
}

function compileStartEvent(ctx: ProcessCtx, el: XNode, id: string): CompiledNode {
  checkEventExtensions(ctx, el, 'start');
  ctx.startElements++;
  const node = baseNode(el, id, 'startEvent');
  const outcome = compileEventOf(ctx, el, id, node, 'start');
  if (outcome === 'none') ctx.noneStarts.push(id);
  else if (outcome === 'ok') ctx.eventStarts.push(id);
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
    problem(ctx, id, 'intermediate catch event without event definition (a message, timer or signal event definition is required)');
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

interface ExtensionProperty {
  label: 'camunda:property' | 'zeebe:property';
  name: string;
  value: string;
}

/** camunda:properties / zeebe:properties of an element, document order. */
function extensionProperties(el: XNode): ExtensionProperty[] {
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

type EscalationField = 'after' | 'addCandidateGroups' | 'reassignTo';

const ESCALATION_PROPERTIES: Readonly<Record<string, [EscalationField, ValueKind]>> = {
  'pgbpm:escalateAfter': ['after', 'duration'],
  'pgbpm:escalateToGroups': ['addCandidateGroups', 'list'],
  'pgbpm:escalateToAssignee': ['reassignTo', 'text'],
};

/** `pgbpm:` extension properties: the escalation of an overdue user task. Other properties are not ours and stay ignored. */
function compileTaskEscalation(ctx: ProcessCtx, el: XNode, node: CompiledNode): void {
  const props = extensionProperties(el).filter((p) => p.name.startsWith('pgbpm:'));
  if (props.length === 0) return;
  const known = props.filter((p) => {
    if (Object.prototype.hasOwnProperty.call(ESCALATION_PROPERTIES, p.name)) return true;
    problem(ctx, node.id, `unknown extension property ${p.name} (${p.label}); the pgbpm: properties are ${Object.keys(ESCALATION_PROPERTIES).join(', ')}`);
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

/** Activity-wide checks and fields (default flow, boundary list). */
function compileActivity(ctx: ProcessCtx, el: XNode, id: string, type: NodeType, consumes: ReadonlySet<string>): CompiledNode {
  checkExtensions(ctx, el, consumes);
  for (const loop of kids(el, 'loopCharacteristics')) {
    const what = loop.type === 'bpmn:MultiInstanceLoopCharacteristics' ? 'multi-instance activities' : 'loops';
    problem(ctx, id, `${what} (${xmlName(loop.type)}) are not supported in this version`);
  }
  if (bool(el, 'isForCompensation') === true) problem(ctx, id, 'compensation handlers (isForCompensation="true") are not supported in this version');
  for (const io of kids(el, 'ioSpecification')) problem(ctx, id, `element type ${xmlName(io.type)} is not supported in this version`);
  for (const r of kids(el, 'resources')) {
    problem(ctx, id, `${xmlName(r.type)} is not supported in this version; assign user tasks with camunda:assignee / camunda:candidateGroups or zeebe:assignmentDefinition`);
  }
  const data = [...kids(el, 'dataInputAssociations'), ...kids(el, 'dataOutputAssociations')];
  if (data.length > 0) warn(ctx, id, 'data associations are ignored (data objects and stores have no semantics in this version)');
  if (kids(el, 'properties').length > 0) warn(ctx, id, 'bpmn:property elements are ignored');
  return { ...baseNode(el, id, type), default: defaultFlow(ctx, el, id), boundary: [] };
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

/** Activities boundary events may be attached to (subprocesses and call activities are not supported yet). */
const TASK_TYPES: ReadonlySet<NodeType> = new Set<NodeType>(['task', 'manualTask', 'userTask', 'serviceTask', 'sendTask', 'businessRuleTask', 'receiveTask']);

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
    if (host === undefined) continue; // the host element itself was refused
    if (!TASK_TYPES.has(host.type)) {
      problem(ctx, node.id, `attachedToRef "${host.id}" is not an activity (${xmlName(`bpmn:${host.type}`)}); boundary events are attached to tasks`);
      continue;
    }
    host.boundary = [...(host.boundary ?? []), node.id];
    const clash = boundaryClash(node);
    if (clash === null) continue;
    const keys = seen.get(host.id) ?? new Set<string>();
    if (keys.has(clash.key)) problem(ctx, node.id, clash.message(host.id));
    keys.add(clash.key);
    seen.set(host.id, keys);
  }
}

/** What a boundary event catches, when two of them on one activity must not catch the same. */
function boundaryClash(node: CompiledNode): { key: string; message: (host: string) => string } | null {
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

const ACTIVITY_TYPES: ReadonlySet<NodeType> = TASK_TYPES;

const EVENT_TYPES: ReadonlySet<NodeType> = new Set<NodeType>(['startEvent', 'endEvent', 'intermediateCatchEvent', 'intermediateThrowEvent', 'boundaryEvent']);

function checkNodeFlows(ctx: ProcessCtx, node: CompiledNode): void {
  const conditional = node.out.filter((f) => ctx.flows[f]?.condition !== null);
  switch (node.type) {
    case 'startEvent':
      if (node.in.length > 0) problem(ctx, node.id, `start event must not have incoming sequence flows (${node.in.join(', ')})`);
      break;
    case 'boundaryEvent':
      if (node.in.length > 0) problem(ctx, node.id, `boundary event must not have incoming sequence flows (${node.in.join(', ')})`);
      break;
    case 'endEvent':
      if (node.out.length > 0) problem(ctx, node.id, `end event must not have outgoing sequence flows (${node.out.join(', ')})`);
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
  if (node.type !== 'startEvent' && node.type !== 'boundaryEvent' && node.in.length === 0) {
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
