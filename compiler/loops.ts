/**
 * Multi-instance activities: bpmn:multiInstanceLoopCharacteristics with
 * loopCardinality or a collection (camunda:collection / elementVariable,
 * zeebe:loopCharacteristics), completionCondition and the output collection
 * (zeebe:loopCharacteristics or pgbpm: extension properties) → node.loop.
 * Standard loops (bpmn:standardLoopCharacteristics: loopCondition, testBefore,
 * loopMaximum) → node.loop with `standard`, run as a sequential body.
 */
import {
  bool,
  extensionProperties,
  NOTHING,
  type ExtensionProperty,
  extensions,
  kids,
  nonEmpty,
  problem,
  type ProcessCtx,
  str,
  warn,
  xmlName,
} from './context';
import { compileExpression, isExpression } from './expression';
import { checkExtensions } from './extensions';
import type { CompiledNode, CompiledValue, LoopSpec } from './graph';
import { compileConditionElement, compileExpressionText, compileValueText, isVariableName, readVariable } from './mappings';
import type { XNode } from './xml';

export const MULTI_INSTANCE = 'bpmn:MultiInstanceLoopCharacteristics';
const STANDARD_LOOP = 'bpmn:StandardLoopCharacteristics';
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
export const LOOP_PROPERTIES: ReadonlySet<string> = new Set(['pgbpm:outputCollection', 'pgbpm:outputElement']);
/** Children of bpmn:multiInstanceLoopCharacteristics read here. */
const LOOP_CHILDREN: ReadonlySet<string> = new Set(['extensionElements', 'documentation', 'loopCardinality', 'completionCondition']);

/** bpmn:multiInstanceLoopCharacteristics and bpmn:standardLoopCharacteristics → node.loop. */
export function compileLoop(ctx: ProcessCtx, el: XNode, node: CompiledNode): void {
  const loops = kids(el, 'loopCharacteristics');
  for (const loop of loops) {
    if (loop.type !== MULTI_INSTANCE && loop.type !== STANDARD_LOOP) {
      problem(ctx, node.id, `loops (${xmlName(loop.type)}) are not supported in this version; use multi-instance (bpmn:multiInstanceLoopCharacteristics) or a sequence flow back to the activity`);
      continue;
    }
    const spec = loop.type === STANDARD_LOOP ? compileStandardLoop(ctx, node.id, loop) : compileMultiInstance(ctx, el, node.id, loop);
    if (spec !== null) node.loop = spec;
  }
}

/**
 * A standard loop: the activity runs again while loopCondition holds
 * (evaluated after each iteration; with testBefore also before the first),
 * at most loopMaximum times; one of the two is required.
 */
function compileStandardLoop(ctx: ProcessCtx, id: string, loop: XNode): LoopSpec | null {
  const before = ctx.problems.length;
  checkExtensions(ctx, loop, NOTHING, id);
  const others = [...Object.keys(loop.children).filter((k) => !['extensionElements', 'documentation', 'loopCondition'].includes(k)), ...Object.keys(loop.refs)];
  if (others.length > 0) problem(ctx, id, `standard loop ${others.join(', ')} are not supported in this version`);
  const standard: NonNullable<LoopSpec['standard']> = { testBefore: bool(loop, 'testBefore') === true };
  const condition = compileConditionElement(ctx, id, loop, 'loopCondition');
  if (condition) standard.condition = condition;
  const maximum = loop.props.loopMaximum;
  if (maximum !== undefined) {
    const raw = String(maximum).trim();
    if (!/^\d{1,5}$/.test(raw) || Number(raw) > 10_000) problem(ctx, id, `loopMaximum="${raw}" must be a whole number from 0 to 10000`);
    else standard.maximum = Number(raw);
  }
  if (condition === undefined && maximum === undefined) {
    problem(ctx, id, 'a standard loop needs a loopCondition or a loopMaximum (without either it never ends)');
  }
  return ctx.problems.length === before ? { sequential: true, standard } : null;
}

function compileMultiInstance(ctx: ProcessCtx, el: XNode, id: string, loop: XNode): LoopSpec | null {
  const before = ctx.problems.length;
  checkLoopElement(ctx, id, loop);
  const zeebeAll = extensions(loop).filter((e) => e.type === 'zeebe:LoopCharacteristics');
  if (zeebeAll.length > 1) problem(ctx, id, 'several zeebe:loopCharacteristics elements');
  const zeebe = zeebeAll[0];
  const spec: LoopSpec = { sequential: bool(loop, 'isSequential') === true };
  if (bool(loop, 'camunda:asyncBefore') === true || bool(loop, 'camunda:async') === true) spec.asyncInner = true;
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
  const completion = compileConditionElement(ctx, id, loop, 'completionCondition');
  if (completion) spec.completionCondition = completion;
  loopOutput(ctx, el, id, zeebe, spec);
  return ctx.problems.length === before ? spec : null;
}

/** What the loop element may carry: asyncBefore (asynchronous inner instances), no asyncAfter, no BPMN data inputs/outputs or behaviors. */
function checkLoopElement(ctx: ProcessCtx, id: string, loop: XNode): void {
  if (bool(loop, 'camunda:asyncAfter') === true) {
    problem(ctx, id, 'camunda:asyncAfter on bpmn:multiInstanceLoopCharacteristics (a job after each inner instance) is not supported in this version; use camunda:asyncBefore on it, or camunda:asyncAfter on the activity');
  }
  if (extensions(loop).some((e) => e.type === 'camunda:FailedJobRetryTimeCycle')) {
    problem(ctx, id, 'camunda:failedJobRetryTimeCycle on bpmn:multiInstanceLoopCharacteristics is not supported in this version; set it on the activity (it applies to every job of the activity, its inner instances\' included)');
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
export function checkLoopProperties(ctx: ProcessCtx, el: XNode, id: string, props: ExtensionProperty[]): void {
  const names = props.filter((p) => LOOP_PROPERTIES.has(p.name)).map((p) => p.name);
  if (names.length === 0) return;
  for (const name of new Set(names)) {
    if (names.indexOf(name) !== names.lastIndexOf(name)) problem(ctx, id, `${name} is set more than once`);
  }
  if (!kids(el, 'loopCharacteristics').some((l) => l.type === MULTI_INSTANCE)) {
    warn(ctx, id, `${[...new Set(names)].join(', ')} only apply to multi-instance activities and are ignored here`);
  }
}
