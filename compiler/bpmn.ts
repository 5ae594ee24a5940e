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
 * NODE_COMPILERS (and its flow rules to checkNodeFlows); adding an extension
 * element or attribute: add it to EXTENSION_RULES / ATTRIBUTE_RULES.
 */
import { dirname, join } from 'path';
import { pathToFileURL } from 'url';
import { Worker } from 'worker_threads';
import { compileExpression, isExpression } from './expression';
import type {
  CompiledExpression,
  CompiledFlow,
  CompiledNode,
  CompiledProcess,
  CompiledValue,
  CompileProblem,
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
  noneStarts: string[];
}

function problem(ctx: FileCtx, elementId: string | null, message: string): void {
  report(ctx, ctx.problems, elementId, message);
}

function warn(ctx: FileCtx, elementId: string | null, message: string): void {
  report(ctx, ctx.warnings, elementId, message);
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
    if (el.type === 'bpmn:Error' && id !== null) ctx.errorCodes.set(id, nonEmpty(str(el, 'errorCode')));
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

const asyncFlag = (attr: string): Rule => (ctx, id, _owner, v) => {
  if (v === true) {
    warn(ctx, id, `${attr} is accepted but ignored: transaction boundaries are not implemented yet, the element is executed synchronously`);
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
  // transaction boundaries: accepted, executed synchronously
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
  'camunda:FailedJobRetryTimeCycle': (ctx, id) =>
    warn(ctx, id, 'camunda:failedJobRetryTimeCycle is ignored (no job executor in this version)'),
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
 */
function checkExtensions(ctx: FileCtx, el: XNode, consumed: ReadonlySet<string> = NOTHING): void {
  const id = idOf(el);
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
  const ctx: ProcessCtx = { ...file, processId, elements: new Map(), nodes: {}, flows: {}, noneStarts: [] };
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
    if (node !== null) ctx.nodes[id] = node;
  }
  for (const el of sequenceFlows) compileSequenceFlow(ctx, el);
  attachBoundaryEvents(ctx);
  for (const node of Object.values(ctx.nodes)) checkNodeFlows(ctx, node);
  checkStart(ctx, proc);
  computeUpstream(ctx);

  if (file.problems.length > before) return null;
  return {
    key: processId,
    name: nonEmpty(str(proc, 'name')),
    versionTag: processVersionTag(proc),
    graph: { start: ctx.noneStarts[0], nodes: ctx.nodes, flows: ctx.flows },
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

function checkStart(ctx: ProcessCtx, proc: XNode): void {
  if (ctx.noneStarts.length === 0) {
    problem(ctx, idOf(proc), 'process has no none start event (exactly one start event without event definition is required)');
  } else if (ctx.noneStarts.length > 1) {
    problem(ctx, idOf(proc), `process has ${ctx.noneStarts.length} none start events (${ctx.noneStarts.join(', ')}); exactly one is supported in this version`);
  }
}

// --- flow nodes ---------------------------------------------------------------

type NodeCompiler = (ctx: ProcessCtx, el: XNode, id: string) => CompiledNode | null;

const NODE_COMPILERS: Readonly<Record<string, NodeCompiler>> = {
  'bpmn:StartEvent': compileStartEvent,
  'bpmn:EndEvent': compileEndEvent,
  'bpmn:BoundaryEvent': compileBoundaryEvent,
  'bpmn:Task': (ctx, el, id) => compileActivity(ctx, el, id, 'task', NOTHING),
  'bpmn:ManualTask': (ctx, el, id) => compileActivity(ctx, el, id, 'manualTask', NOTHING),
  'bpmn:UserTask': compileUserTask,
  'bpmn:ServiceTask': (ctx, el, id) => compileExternalTask(ctx, el, id, 'serviceTask'),
  'bpmn:SendTask': (ctx, el, id) => compileExternalTask(ctx, el, id, 'sendTask'),
  'bpmn:BusinessRuleTask': (ctx, el, id) => compileExternalTask(ctx, el, id, 'businessRuleTask'),
  'bpmn:ExclusiveGateway': (ctx, el, id) => compileGateway(ctx, el, id, 'exclusiveGateway'),
  'bpmn:InclusiveGateway': (ctx, el, id) => compileGateway(ctx, el, id, 'inclusiveGateway'),
  'bpmn:ParallelGateway': (ctx, el, id) => compileGateway(ctx, el, id, 'parallelGateway'),
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

/** Event definition kind for messages: bpmn:TimerEventDefinition → "timer". */
function eventKind(def: XNode): string {
  const local = def.type.slice(def.type.indexOf(':') + 1).replace(/EventDefinition$/, '');
  const kind = local.charAt(0).toLowerCase() + local.slice(1);
  return kind === 'compensate' ? 'compensation' : kind;
}

function rejectEventDefinitions(ctx: ProcessCtx, id: string, defs: XNode[], where: string): void {
  if (defs.length > 1) {
    problem(ctx, id, `${where} events with several event definitions (${defs.map((d) => xmlName(d.type)).join(', ')}) are not supported in this version`);
    return;
  }
  for (const d of defs) {
    problem(ctx, id, `${eventKind(d)} ${where} events (${xmlName(d.type)}) are not supported in this version`);
  }
}

function compileStartEvent(ctx: ProcessCtx, el: XNode, id: string): CompiledNode {
  checkExtensions(ctx, el);
  const defs = eventDefinitions(el);
  if (defs.length === 0) ctx.noneStarts.push(id);
  else rejectEventDefinitions(ctx, id, defs, 'start');
  return baseNode(el, id, 'startEvent');
}

function compileEndEvent(ctx: ProcessCtx, el: XNode, id: string): CompiledNode {
  checkExtensions(ctx, el);
  const defs = eventDefinitions(el);
  const terminate = defs.length === 1 && defs[0].type === 'bpmn:TerminateEventDefinition';
  if (defs.length > 0 && !terminate) rejectEventDefinitions(ctx, id, defs, 'end');
  return { ...baseNode(el, id, 'endEvent'), terminate };
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

function compileExternalTask(ctx: ProcessCtx, el: XNode, id: string, type: NodeType): CompiledNode {
  const node = compileActivity(ctx, el, id, type, EXTERNAL_CONSUMES);
  return { ...node, topic: externalTopic(ctx, el, id, type) ?? '' };
}

const TASK_LABEL: Partial<Record<NodeType, string>> = {
  serviceTask: 'service task',
  sendTask: 'send task',
  businessRuleTask: 'business rule task',
};

/** The external task topic, from camunda:type="external" + camunda:topic or zeebe:taskDefinition type. */
function externalTopic(ctx: ProcessCtx, el: XNode, id: string, type: NodeType): string | null {
  const exts = extensions(el);
  const otherImplementation =
    ['camunda:class', 'camunda:delegateExpression', 'camunda:expression', 'camunda:decisionRef'].some((a) => str(el, a) !== undefined) ||
    exts.some((e) => e.type === 'camunda:Connector' || e.type === 'zeebe:CalledDecision');

  let camunda: string | null = null;
  const camundaType = str(el, 'camunda:type');
  const camundaTopic = nonEmpty(str(el, 'camunda:topic'));
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

  if (camunda !== null && zeebe !== null && camunda !== zeebe) {
    problem(ctx, id, `camunda:topic="${camunda}" and zeebe:taskDefinition type="${zeebe}" disagree`);
    return null;
  }
  const topic = camunda ?? zeebe;
  if (topic === null && camundaType === undefined && camundaTopic === null && definitions.length === 0 && !otherImplementation) {
    problem(ctx, id, `${TASK_LABEL[type] ?? 'task'} needs an implementation: camunda:type=external + camunda:topic or zeebe:taskDefinition`);
  }
  return topic;
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
type ValueKind = 'text' | 'list' | 'date' | 'integer';

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

const ISO_DATE = /^(\d{4})-(\d{2})-(\d{2})$/;
const ISO_DATE_TIME = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2})(?:\.\d{1,9})?)?(?:Z|[+-](\d{2}):?(\d{2}))?$/;
const ISO_DURATION = /^P(?!$)(\d+(?:[.,]\d+)?Y)?(\d+(?:[.,]\d+)?M)?(\d+(?:[.,]\d+)?W)?(\d+(?:[.,]\d+)?D)?(T(?=\d)(\d+(?:[.,]\d+)?H)?(\d+(?:[.,]\d+)?M)?(\d+(?:[.,]\d+)?S)?)?$/;

/** ISO 8601 date-time, date, or duration (P…). */
export function isIsoDateOrDuration(text: string): boolean {
  if (ISO_DURATION.test(text)) return true;
  const m = ISO_DATE_TIME.exec(text) ?? ISO_DATE.exec(text);
  if (m === null) return false;
  const [year, month, day] = [Number(m[1]), Number(m[2]), Number(m[3])];
  if (month < 1 || month > 12 || day < 1) return false;
  const daysInMonth = new Date(Date.UTC(year, month, 0)).getUTCDate();
  if (day > daysInMonth) return false;
  if (m[4] !== undefined && (Number(m[4]) > 23 || Number(m[5]) > 59 || (m[6] !== undefined && Number(m[6]) > 59))) return false;
  // UTC offsets run from -15:59 to +15:59 (what PostgreSQL accepts)
  if (m[7] !== undefined && (Number(m[7]) > 15 || Number(m[8]) > 59)) return false;
  return true;
}

// --- boundary events ------------------------------------------------------------------

const EXTERNAL_TYPES: ReadonlySet<NodeType> = new Set<NodeType>(['serviceTask', 'sendTask', 'businessRuleTask']);

function compileBoundaryEvent(ctx: ProcessCtx, el: XNode, id: string): CompiledNode {
  checkExtensions(ctx, el);
  const node: CompiledNode = { ...baseNode(el, id, 'boundaryEvent'), attachedTo: '', cancelActivity: true };
  const attached = ref(ctx, el, 'attachedToRef');
  if (attached.kind === 'none') problem(ctx, id, 'boundary event is not attached to an activity (attachedToRef is missing)');
  else if (attached.kind === 'unresolved') problem(ctx, id, `attachedToRef "${attached.value}" does not reference an element`);
  else node.attachedTo = attached.id;

  const defs = eventDefinitions(el);
  if (defs.length === 0) {
    problem(ctx, id, 'boundary event without event definition');
    return node;
  }
  if (defs.length > 1 || defs[0].type !== 'bpmn:ErrorEventDefinition') {
    rejectEventDefinitions(ctx, id, defs, 'boundary');
    return node;
  }
  const def = defs[0];
  checkExtensions(ctx, def);
  if (bool(el, 'cancelActivity') === false) {
    problem(ctx, id, 'error boundary events are always interrupting (cancelActivity="false" is invalid BPMN)');
  }
  node.error = { code: null };
  const errorRef = ref(ctx, def, 'errorRef');
  if (errorRef.kind === 'unresolved') {
    problem(ctx, id, `errorRef "${errorRef.value}" does not reference a bpmn:error`);
  } else if (errorRef.kind === 'ok') {
    if (!ctx.errorCodes.has(errorRef.id)) problem(ctx, id, `errorRef "${errorRef.id}" does not reference a bpmn:error`);
    else node.error = { code: ctx.errorCodes.get(errorRef.id) ?? null };
  }
  return node;
}

/** Registers boundary events on their activities (document order) and checks what they are attached to. */
function attachBoundaryEvents(ctx: ProcessCtx): void {
  const seenCodes = new Map<string, Set<string | null>>();
  for (const node of Object.values(ctx.nodes)) {
    if (node.type !== 'boundaryEvent' || node.attachedTo === undefined || node.attachedTo === '') continue;
    const host = ctx.nodes[node.attachedTo];
    const hostEl = ctx.elements.get(node.attachedTo);
    if (hostEl === undefined || hostEl.type === 'bpmn:SequenceFlow' || DATA_ELEMENTS.has(hostEl.type)) {
      problem(ctx, node.id, `attachedToRef "${node.attachedTo}" is not an activity of process ${ctx.processId}`);
      continue;
    }
    if (host === undefined) continue; // the host element itself was refused
    if (!EXTERNAL_TYPES.has(host.type)) {
      problem(ctx, node.id, `boundary events are only supported on service, send and business rule tasks (external tasks) in this version, not on ${xmlName(`bpmn:${host.type}`)}`);
      continue;
    }
    host.boundary = [...(host.boundary ?? []), node.id];
    if (node.error === undefined) continue; // not an error boundary event: already refused
    const code = node.error.code;
    const codes = seenCodes.get(host.id) ?? new Set<string | null>();
    if (codes.has(code)) {
      problem(ctx, node.id, code === null
        ? `several catch-all error boundary events on ${host.id}`
        : `several error boundary events on ${host.id} catch errorCode "${code}"`);
    }
    codes.add(code);
    seenCodes.set(host.id, codes);
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

const ACTIVITY_TYPES: ReadonlySet<NodeType> = new Set<NodeType>(['task', 'manualTask', 'userTask', 'serviceTask', 'sendTask', 'businessRuleTask']);

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
    default:
      break;
  }
  if (node.type === 'startEvent' || node.type === 'boundaryEvent' || node.type === 'endEvent') {
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
