/**
 * moddle's parse warnings → problems and warnings of the file: unknown
 * camunda:/zeebe: attributes, unknown or unparsable elements (located in the
 * source text), duplicate ids, and references that resolve to no element.
 */
import { type FileCtx, problem, warn } from './context';
import { oneLine, type ParserWarning, parseUnparsable } from './xml';

/** Attributes moddle does not know but that are harmless (dropped from the schema to merge camunda + zeebe). */
const IGNORED_UNKNOWN_ATTRIBUTES: ReadonlySet<string> = new Set([
  'zeebe:modelerTemplate', 'zeebe:modelerTemplateVersion',
  // Camunda 7 reads it; camunda-bpmn-moddle lacks it (compiler/tasks.ts reads it from the element's attrs)
  'camunda:decisionRefVersionTag',
]);

export function classifyParserWarnings(ctx: FileCtx, warnings: ParserWarning[]): void {
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

export function reportLeftoverReferences(ctx: FileCtx): void {
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
