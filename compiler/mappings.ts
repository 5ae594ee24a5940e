/**
 * Values shared by input/output mappings, multi-instance loops and call
 * activities (a literal or an expression, a variable read), and the
 * input/output mappings of activities: camunda:inputOutput (with camunda:list
 * / camunda:map bodies) and zeebe:ioMapping → node.inputs / node.outputs.
 */
import { extensions, kids, nonEmpty, problem, type ProcessCtx, str, xmlName } from './context';
import { compileExpression, isExpression } from './expression';
import type { CompiledExpression, CompiledNode, CompiledValue, IoMapping } from './graph';
import type { XNode } from './xml';

// --- values shared by mappings, loops and call activities --------------------------

/** A plain variable name (no expression, not empty). */
export function isVariableName(text: string): boolean {
  return /^[A-Za-z_][A-Za-z0-9_]*$/.test(text);
}

/**
 * An expression reading variable `name`. `required`: the engine raises BP302
 * when it is missing; otherwise a missing variable reads as null.
 */
export function readVariable(name: string, required: boolean): CompiledExpression | null {
  const r = compileExpression(`\${${name}}`, 'value');
  if (!r.ok) return null;
  return required ? r.expr : { ...r.expr, vars: [] };
}

/** Text that is an expression (compiled as a value) or a literal string. */
export function compileValueText(ctx: ProcessCtx, id: string, label: string, raw: string): CompiledValue | null {
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
/**
 * An optional condition child element (completionCondition, loopCondition):
 * undefined when absent, null when a problem was reported (empty, or no
 * expression that compiles).
 */
export function compileConditionElement(ctx: ProcessCtx, id: string, parent: XNode, name: string): CompiledExpression | null | undefined {
  const el = kids(parent, name)[0];
  if (el === undefined) return undefined;
  const text = (str(el, 'body') ?? '').trim();
  if (text === '') {
    problem(ctx, id, `empty ${name}`);
    return null;
  }
  return compileExpressionText(ctx, id, name, text, 'condition', 'write ${...} or =...');
}

export function compileExpressionText(ctx: ProcessCtx, id: string, label: string, raw: string, kind: 'condition' | 'value', hint: string): CompiledExpression | null {
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

// --- input/output mappings ---------------------------------------------------------

export const IO_CONSUMES: ReadonlySet<string> = new Set(['camunda:InputOutput', 'zeebe:IoMapping']);

type IoValue = IoMapping['value'];
type JsonValue = string | null | JsonValue[] | { [key: string]: JsonValue };

/**
 * camunda:inputOutput and zeebe:ioMapping of an activity → node.inputs /
 * node.outputs (a call activity's zeebe:ioMapping maps variables into and out
 * of the called process instead: compileCall).
 */
export function compileIoMappings(ctx: ProcessCtx, el: XNode, node: CompiledNode): void {
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

/**
 * zeebe:input / zeebe:output: source (`=expr` or a literal) → target: a
 * variable name, or a path into one (`order.customer.id`: the value is set
 * there, in a copy of the variable as the sources see it, or of what an
 * earlier mapping of the list made of it; missing objects are created).
 */
export function zeebeMappings(ctx: ProcessCtx, id: string, io: XNode, dir: 'input' | 'output'): IoMapping[] {
  const label = `zeebe:${dir}`;
  const mappings: IoMapping[] = [];
  for (const p of kids(io, `zeebe:${dir}Parameters`)) {
    const target = nonEmpty(str(p, 'zeebe:target'));
    if (target === null) {
      problem(ctx, id, `${label} without target`);
      continue;
    }
    const [name, ...path] = target.trim().split('.').map((part) => part.trim());
    if ([name, ...path].some((part) => part === '')) {
      problem(ctx, id, `${label} target="${target}": an empty name in the target path; use a variable name or a path like order.customer.id`);
      continue;
    }
    const source = nonEmpty(str(p, 'zeebe:source'));
    const value = source === null ? null : compileValueText(ctx, id, `${label} target="${target}" source`, source);
    if (value !== null || source === null) mappings.push(path.length > 0 ? { target: name, path, value } : { target: name, value });
  }
  return mappings;
}
