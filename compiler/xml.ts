/**
 * BPMN XML text → plain element tree (XNode): the first two stages of the
 * compiler (compiler/bpmn.ts runs the third, the semantics).
 *
 *  1. prescanXml: a cheap, linear scan of the raw text before any parser sees
 *     it: no DOCTYPE / ENTITY (entity expansion, XXE), bounded nesting depth and
 *     element count.
 *  2. parseBpmnXml: bpmn-moddle (with the camunda and zeebe extensions) parses
 *     the text in a worker thread with a heap limit and a wall-clock timeout, and
 *     hands back a plain element tree (XNode) plus moddle's warnings. The worker
 *     also isolates bpmn-moddle, which ships as ES modules only, from this
 *     CommonJS code base (and from Jest's module system). Its code is eval'd
 *     (WORKER_SOURCE): there is no worker file to locate, from the TypeScript
 *     sources or from dist/; bpmn-moddle and the schemas are found with
 *     require.resolve.
 */
import { dirname, join } from 'path';
import { pathToFileURL } from 'url';
import { Worker } from 'worker_threads';
import {
  MAX_ATTRIBUTES_PER_ELEMENT,
  MAX_ELEMENTS,
  MAX_NESTING_DEPTH,
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
function isDiagram(v) { return isElement(v) && (v.$type.indexOf('bpmndi:') === 0 || v.$type.indexOf('dmndi:') === 0); }
function keyOf(p) { return p.ns.prefix === 'bpmn' || p.ns.prefix === 'dmn' ? p.ns.localName : p.ns.name; }
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
    let moddle;
    if (workerData.kind === 'dmn') {
      const dmn = await import(workerData.dmnModdleUrl);
      moddle = new (dmn.DmnModdle || dmn.default)();
    } else {
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
    moddle = new BpmnModdle({ camunda: camunda, zeebe: zeebe });
    }
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
  dmnModdleUrl: string;
  camundaSchema: string;
  zeebeSchema: string;
}

let locations: ModdleLocations | undefined;

function moddleLocations(): ModdleLocations {
  if (locations === undefined) {
    const bpmnDir = dirname(require.resolve('bpmn-moddle/package.json'));
    locations = {
      moddleUrl: pathToFileURL(join(bpmnDir, 'dist', 'index.js')).href,
      dmnModdleUrl: pathToFileURL(join(dirname(require.resolve('dmn-moddle/package.json')), 'dist', 'index.js')).href,
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
export function parseBpmnXml(xml: string, timeoutMs: number = PARSE_TIMEOUT_MS, kind: 'bpmn' | 'dmn' = 'bpmn'): Promise<ParseOutcome> {
  const where = moddleLocations();
  return new Promise<ParseOutcome>((resolve, reject) => {
    let settled = false;
    const worker = new Worker(WORKER_SOURCE, {
      eval: true,
      workerData: { ...where, xml, kind },
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
export function parseUnparsable(message: string): Unparsable | null {
  const m = /^unparsable content ([\s\S]*?)\s*detected\s+line: (\d+)\s+column: (\d+)\s+nested error: ([\s\S]*)$/.exec(message);
  if (m === null) return null;
  return { tag: m[1], line: Number(m[2]) + 1, column: Number(m[3]) + 1, nested: oneLine(m[4]) };
}

export function oneLine(s: string): string {
  return s.replace(/\s*\n\s*/g, ' ').trim();
}
