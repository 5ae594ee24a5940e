/**
 * Call activities: the called process (calledElement / zeebe:calledElement),
 * its binding (latest, deployment, version, versionTag), camunda:in /
 * camunda:out, zeebe propagation flags and zeebe:ioMapping → node.call
 * (CallSpec).
 */
import { compileActivity } from './activities';
import { bool, extensions, nonEmpty, problem, type ProcessCtx, str, warn } from './context';
import { isExpression } from './expression';
import type { CallSpec, CompiledNode, CompiledValue } from './graph';
import { compileValueText, isVariableName, readVariable, zeebeMappings } from './mappings';
import type { XNode } from './xml';

const CALL_CONSUMES: ReadonlySet<string> = new Set([
  'camunda:calledElementBinding',
  'camunda:calledElementVersion',
  'camunda:calledElementVersionTag',
  'camunda:In',
  'camunda:Out',
  'zeebe:CalledElement',
]);

export function compileCallActivity(ctx: ProcessCtx, el: XNode, id: string): CompiledNode {
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
