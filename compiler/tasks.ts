/**
 * Tasks: external tasks (service and business rule tasks; the topic is also
 * read for send tasks and message throw events, compiler/events.ts), user
 * tasks (assignment, candidates, dates, priority) and the pgbpm: escalation of
 * overdue user tasks. Receive and send tasks, which wait for or publish
 * messages, are compiled with the message events in compiler/events.ts.
 */
import { compileActivity } from './activities';
import { extensionProperties, extensions, idOf, kids, nonEmpty, problem, type ProcessCtx, ref, str, warn, xmlName } from './context';
import { compileExpression, isExpression } from './expression';
import { EXTERNAL_TASK_HINT, JOB_WORKER_HINT } from './extensions';
import { compileForm, FORM_CONSUMES } from './forms';
import type { CompiledNode, CompiledValue, DecisionCall, ExternalErrorEvent, IoMapping, UserTaskSpec } from './graph';
import { checkLoopProperties, LOOP_PROPERTIES } from './loops';
import { compileValueText } from './mappings';
import { isIsoDateTime, isIsoDuration } from './timer';
import type { XNode } from './xml';

// --- external (service / business rule) tasks --------------------------------------

export const EXTERNAL_CONSUMES: ReadonlySet<string> = new Set(['camunda:type', 'camunda:topic', 'camunda:taskPriority', 'zeebe:TaskDefinition', 'zeebe:TaskHeaders', 'camunda:ErrorEventDefinition']);

export function compileExternalTask(ctx: ProcessCtx, el: XNode, id: string, type: 'serviceTask' | 'businessRuleTask'): CompiledNode {
  if (type === 'businessRuleTask' && (str(el, 'camunda:decisionRef') !== undefined || extensions(el).some((e) => e.type === 'zeebe:CalledDecision'))) {
    return compileDecisionTask(ctx, el, id);
  }
  const node = compileActivity(ctx, el, id, type, EXTERNAL_CONSUMES);
  const impl = externalImplementation(ctx, el, id, el);
  if (!impl.present) {
    problem(ctx, id, `${type === 'serviceTask' ? 'service task' : 'business rule task'} needs an implementation: camunda:type=external + camunda:topic or zeebe:taskDefinition`);
  }
  const headers = externalTaskHeaders(ctx, el, id);
  const compiled: CompiledNode = headers !== null ? { ...node, topic: impl.topic ?? '', headers } : { ...node, topic: impl.topic ?? '' };
  if (impl.topicExpr !== undefined) compiled.topicExpr = impl.topicExpr;
  const priority = taskPriority(ctx, el, id);
  if (priority !== undefined) compiled.taskPriority = priority;
  compileExternalErrorEvents(ctx, el, id, compiled);
  return compiled;
}

/** What `externalTask` offers in a camunda:errorEventDefinition expression: getter → field. */
const EXTERNAL_TASK_GETTERS: Readonly<Record<string, string>> = {
  getId: 'id',
  getActivityId: 'activityId',
  getProcessInstanceId: 'processInstanceId',
  getTopicName: 'topicName',
  getWorkerId: 'workerId',
  getErrorMessage: 'errorMessage',
  getErrorDetails: 'errorDetails',
  getRetries: 'retries',
  getPriority: 'priority',
};

/**
 * camunda:errorEventDefinition entries of an element (Camunda 7.14+): on an
 * external task, `errorEvents` (see CompiledNode); anywhere else a problem.
 * Their expressions may read `externalTask` through its getters
 * (externalTask.getErrorMessage(), …), compiled as fields of a variable the
 * engine provides while it evaluates them.
 */
export function compileExternalErrorEvents(ctx: ProcessCtx, el: XNode, id: string, node: CompiledNode): void {
  const defs = extensions(el).filter((e) => e.type === 'camunda:ErrorEventDefinition');
  if (defs.length === 0) return;
  if (node.topic === undefined) {
    problem(ctx, id, 'camunda:errorEventDefinition is only supported on external tasks (camunda:type="external" camunda:topic, or zeebe:taskDefinition)');
    return;
  }
  const events: ExternalErrorEvent[] = [];
  for (const def of defs) {
    const label = `camunda:errorEventDefinition${idOf(def) !== null ? ` ${idOf(def)}` : ''}`;
    const r = ref(ctx, def, 'errorRef');
    const code = r.kind === 'ok' ? ctx.errorCodes.get(r.id) : undefined;
    if (r.kind !== 'ok' || !ctx.errorCodes.has(r.id)) {
      problem(ctx, id, `${label} needs an errorRef to a bpmn:error${r.kind === 'unresolved' ? ` ("${r.value}" is none)` : ''}`);
      continue;
    }
    if (code === undefined || code === null || code.trim() === '' || isExpression(code)) {
      problem(ctx, id, `${label}: the error ${r.id} needs a literal errorCode to be thrown`);
      continue;
    }
    const raw = nonEmpty(str(def, 'camunda:expression'));
    if (raw === null) {
      warn(ctx, id, `${label} has no expression: it never throws`);
      events.push({ code, condition: null });
      continue;
    }
    let unsupported = false;
    const text = raw.replace(/\bexternalTask\.(get[A-Z]\w*)\(\s*\)/g, (whole: string, getter: string) => {
      const field = EXTERNAL_TASK_GETTERS[getter];
      if (field !== undefined) return `externalTask.${field}`;
      problem(ctx, id, `${label}: externalTask.${getter}() is not supported (supported: ${Object.keys(EXTERNAL_TASK_GETTERS).join(', ')})`);
      unsupported = true;
      return whole;
    });
    if (unsupported) continue;
    const compiled = compileExpression(text, 'condition');
    if (!compiled.ok) {
      problem(ctx, id, `${label}: ${compiled.message.replace(text, raw)}`);
      continue;
    }
    events.push({ code, condition: { ...compiled.expr, src: raw } });
  }
  if (events.length > 0) node.errorEvents = events;
}

/**
 * camunda:taskPriority of an element with an external task (an integer or an
 * expression yielding one; evaluated when the task is created): workers fetch
 * higher priorities first. The process's camunda:taskPriority is the default
 * (applied by the process compiler).
 */
export function taskPriority(ctx: ProcessCtx, el: XNode, id: string): CompiledValue | undefined {
  const raw = nonEmpty(str(el, 'camunda:taskPriority'));
  if (raw === null) return undefined;
  return compileUserTaskValue(ctx, id, 'camunda:taskPriority', raw, 'integer', false) ?? undefined;
}

/**
 * What a worker gets with an external task besides its variables: the
 * element's zeebe:taskHeaders (Camunda 8's custom headers) and its
 * camunda:properties other than pgbpm:… (Camunda 7's extension properties),
 * name → value; null when there are none. A name set twice is a problem.
 */
export function externalTaskHeaders(ctx: ProcessCtx, el: XNode, id: string): Record<string, string> | null {
  const entries: Array<{ label: string; name: string; value: string }> = [];
  for (const ext of extensions(el).filter((e) => e.type === 'zeebe:TaskHeaders')) {
    for (const h of kids(ext, 'zeebe:values')) entries.push({ label: 'zeebe:header', name: str(h, 'zeebe:key') ?? '', value: str(h, 'zeebe:value') ?? '' });
  }
  for (const p of extensionProperties(el).filter((x) => x.label === 'camunda:property' && !x.name.startsWith('pgbpm:'))) {
    entries.push({ label: p.label, name: p.name, value: p.value });
  }
  if (entries.length === 0) return null;
  const headers: Record<string, string> = {};
  for (const e of entries) {
    if (e.name.trim() === '') {
      problem(ctx, id, `a ${e.label} without a name`);
    } else if (Object.hasOwn(headers, e.name)) {
      problem(ctx, id, `the header ${e.name} is set more than once (zeebe:taskHeaders / camunda:properties)`);
    } else {
      headers[e.name] = e.value;
    }
  }
  return headers;
}

/**
 * The external task topic, from camunda:type="external" + camunda:topic (on
 * `camundaEl`: the task itself, or the messageEventDefinition of a message
 * throw event) or zeebe:taskDefinition type (on the element). `present`: the
 * element states an implementation (valid or not, Java delegates and
 * connectors included, which are refused elsewhere).
 */
export interface ExternalImplementation {
  /** The topic: a name, or the text of an expression (then `topicExpr` computes it). */
  topic: string | null;
  topicExpr?: CompiledValue;
  present: boolean;
}

export function externalImplementation(ctx: ProcessCtx, el: XNode, id: string, camundaEl: XNode): ExternalImplementation {
  const exts = camundaEl === el ? extensions(el) : [...extensions(el), ...extensions(camundaEl)];
  const otherImplementation =
    ['camunda:class', 'camunda:delegateExpression', 'camunda:expression', 'camunda:decisionRef'].some((a) => str(camundaEl, a) !== undefined) ||
    exts.some((e) => e.type === 'camunda:Connector' || e.type === 'zeebe:CalledDecision');

  let camunda: Topic | null = null;
  const camundaType = str(camundaEl, 'camunda:type');
  const camundaTopic = nonEmpty(str(camundaEl, 'camunda:topic'));
  if (camundaType !== undefined && camundaType !== 'external') {
    problem(ctx, id, `camunda:type="${camundaType}" is not supported; only external tasks (camunda:type="external" camunda:topic="...")`);
  } else if (camundaType === 'external' && camundaTopic === null) {
    problem(ctx, id, 'external task without topic (set camunda:topic)');
  } else if (camundaType === undefined && camundaTopic !== null) {
    problem(ctx, id, 'camunda:topic without camunda:type="external"');
  } else if (camundaTopic !== null) {
    camunda = compileTopic(ctx, id, 'camunda:topic', camundaTopic);
  }

  let zeebe: Topic | null = null;
  const definitions = exts.filter((e) => e.type === 'zeebe:TaskDefinition');
  if (definitions.length > 1) problem(ctx, id, 'several zeebe:taskDefinition elements');
  if (definitions.length > 0) {
    const jobType = nonEmpty(str(definitions[0], 'zeebe:type'));
    if (jobType === null) problem(ctx, id, 'zeebe:taskDefinition without type');
    else zeebe = compileTopic(ctx, id, 'zeebe:taskDefinition type', jobType);
  }

  const present = camundaType !== undefined || camundaTopic !== null || definitions.length > 0 || otherImplementation;
  if (camunda !== null && zeebe !== null && camunda.text !== zeebe.text) {
    problem(ctx, id, `camunda:topic="${camunda.text}" and zeebe:taskDefinition type="${zeebe.text}" disagree`);
    return { topic: null, present };
  }
  const topic = camunda ?? zeebe;
  if (topic === null) return { topic: null, present };
  return topic.expr !== undefined ? { topic: topic.text, topicExpr: topic.expr, present } : { topic: topic.text, present };
}

/** A topic (job type): a name, or an expression evaluated when each task is created. */
interface Topic {
  text: string;
  expr?: CompiledValue;
}

function compileTopic(ctx: ProcessCtx, id: string, label: string, raw: string): Topic | null {
  const value = compileValueText(ctx, id, label, raw);
  if (value === null) return null;
  if ('literal' in value) return { text: String(value.literal) };
  return { text: raw.trim(), expr: value };
}

// --- user tasks --------------------------------------------------------------------

type UserTaskField = Exclude<keyof UserTaskSpec, 'form' | 'formDefaults'>;
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
  ...FORM_CONSUMES,
]);

export function compileUserTask(ctx: ProcessCtx, el: XNode, id: string): CompiledNode {
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
  const { form, generated } = compileForm(ctx, el, id);
  if (form !== null && 'evaluated' in form) spec.form = form.evaluated;
  if (generated !== null && Object.keys(generated.defaults).length > 0) spec.formDefaults = generated.defaults;
  if (form !== null && 'literal' in form) return { ...node, userTask: spec, form: form.literal };
  return generated !== null ? { ...node, userTask: spec, form: generated.form } : { ...node, userTask: spec };
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

// --- user task escalation ----------------------------------------------------------

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
export function compileExtensionProperties(ctx: ProcessCtx, el: XNode, node: CompiledNode): void {
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

/**
 * A script task whose script is an expression: Camunda 8's
 * `zeebe:script expression="=…" resultVariable="…"`, or a Camunda 7 script
 * in `scriptFormat="feel"` or `"juel"` with `camunda:resultVariable`. It runs
 * as a pass-through task that stores the expression's value in the result
 * variable: with output mappings (zeebe:output / camunda:outputParameter)
 * the result is a local the mappings read, as in Camunda 8; else it is
 * written to the instance (or to the scope's local of that name). Scripts in
 * other languages are refused.
 */
export function compileScriptTask(ctx: ProcessCtx, el: XNode, id: string): CompiledNode | null {
  const zeebe = extensions(el).find((e) => e.type === 'zeebe:Script');
  const format = str(el, 'scriptFormat')?.trim().toLowerCase();
  let source: string | undefined;
  let result: string | undefined;
  if (zeebe !== undefined) {
    source = str(zeebe, 'zeebe:expression');
    result = str(zeebe, 'zeebe:resultVariable');
    if (source === undefined || source.trim() === '') problem(ctx, id, 'zeebe:script without an expression');
    if (result === undefined || result.trim() === '') problem(ctx, id, 'zeebe:script without a resultVariable');
  } else if (format === 'feel' || format === 'juel') {
    const text = (str(el, 'script') ?? '').trim();
    if (text === '') problem(ctx, id, `script task with scriptFormat="${format}" and no script`);
    // a FEEL script is an expression without the leading "=" of attributes
    source = format === 'feel' && !text.startsWith('=') ? `=${text}` : text;
    result = str(el, 'camunda:resultVariable');
  } else {
    const how = format !== undefined ? ` (scriptFormat="${str(el, 'scriptFormat')}")` : '';
    const hint = extensions(el).some((e) => e.type === 'zeebe:TaskDefinition') ? JOB_WORKER_HINT : EXTERNAL_TASK_HINT;
    problem(ctx, id, `script tasks are only supported with FEEL or JUEL expressions (zeebe:script, scriptFormat="feel" or "juel")${how}; ${hint}`);
    return null;
  }
  const node = compileActivity(ctx, el, id, 'scriptTask', SCRIPT_CONSUMES);
  if (source === undefined || source.trim() === '' || result === undefined || result.trim() === '') return node;
  const r = compileExpression(source, 'value');
  if (!r.ok) {
    problem(ctx, id, `script: ${r.message}`);
    return node;
  }
  storeResult(node, { target: result.trim(), value: { expr: r.expr } });
  return node;
}

/**
 * Where a task's result goes (script and decision tasks): with output
 * mappings, a local they read (an input mapping, as in Camunda 8); else
 * written as an output.
 */
function storeResult(node: CompiledNode, mapping: IoMapping): void {
  if (node.outputs !== undefined && node.outputs.length > 0) node.inputs = [...(node.inputs ?? []), mapping];
  else node.outputs = [mapping];
}

const SCRIPT_CONSUMES: ReadonlySet<string> = new Set(['zeebe:Script']);

// --- business rule tasks with a DMN decision ------------------------------------

const DECISION_CONSUMES: ReadonlySet<string> = new Set([
  'camunda:decisionRef', 'camunda:decisionRefBinding', 'camunda:decisionRefVersion', 'camunda:decisionRefVersionTag',
  'camunda:resultVariable', 'camunda:mapDecisionResult', 'zeebe:CalledDecision',
]);
const MAP_RESULTS: ReadonlySet<string> = new Set(['singleEntry', 'singleResult', 'collectEntries', 'resultList']);

/**
 * A business rule task that evaluates a deployed DMN decision (Camunda 7's
 * camunda:decisionRef, Camunda 8's zeebe:calledDecision) when it is reached
 * and completes at once, like a script task: the result goes to the result
 * variable (with output mappings: a local they read; Camunda 7 without a
 * result variable: the local `decisionResult`).
 */
function compileDecisionTask(ctx: ProcessCtx, el: XNode, id: string): CompiledNode {
  const node = compileActivity(ctx, el, id, 'businessRuleTask', DECISION_CONSUMES);
  const zeebe = extensions(el).find((e) => e.type === 'zeebe:CalledDecision');
  const c7 = str(el, 'camunda:decisionRef');
  if (zeebe !== undefined && c7 !== undefined) problem(ctx, id, 'both camunda:decisionRef and zeebe:calledDecision');
  const key = nonEmpty(zeebe !== undefined ? str(zeebe, 'zeebe:decisionId') : c7);
  const result = nonEmpty(zeebe !== undefined ? str(zeebe, 'zeebe:resultVariable') : str(el, 'camunda:resultVariable'));
  const label = zeebe !== undefined ? 'zeebe:calledDecision decisionId' : 'camunda:decisionRef';
  if (key === null) problem(ctx, id, `${label} is empty`);
  else if (isExpression(key)) problem(ctx, id, `${label}="${key}" must be a decision id; expressions are not supported here`);
  if (zeebe !== undefined && result === null) problem(ctx, id, 'zeebe:calledDecision without a resultVariable');
  const call = decisionBinding(ctx, id, el, zeebe, key ?? '');
  if (call === null || key === null || isExpression(key)) return node;
  const mapping = { target: result ?? 'decisionResult', value: { decision: call } };
  // without a result variable or output mappings: evaluated for its checks only (Camunda 7 drops a result nobody maps)
  if (result === null && (node.outputs === undefined || node.outputs.length === 0)) node.inputs = [...(node.inputs ?? []), mapping];
  else storeResult(node, mapping);
  return node;
}

function decisionBinding(ctx: ProcessCtx, id: string, el: XNode, zeebe: XNode | undefined, key: string): DecisionCall | null {
  const before = ctx.problems.length;
  const binding = (zeebe !== undefined ? str(zeebe, 'zeebe:bindingType') : str(el, 'camunda:decisionRefBinding'))?.trim() || 'latest';
  const mapResult = zeebe !== undefined ? 'dmn' : (str(el, 'camunda:mapDecisionResult')?.trim() || 'resultList');
  if (mapResult !== 'dmn' && !MAP_RESULTS.has(mapResult)) {
    problem(ctx, id, `camunda:mapDecisionResult="${mapResult}" is not one of singleEntry, singleResult, collectEntries, resultList`);
  }
  const call: DecisionCall = { key, binding: 'latest', mapResult: mapResult as DecisionCall['mapResult'] };
  if (binding === 'version' && zeebe === undefined) {
    const version = str(el, 'camunda:decisionRefVersion')?.trim() ?? '';
    if (!/^[1-9]\d{0,8}$/.test(version)) problem(ctx, id, `camunda:decisionRefVersion="${version}" must be a version number (expressions are not supported here)`);
    call.binding = 'version';
    call.version = Number(version);
  } else if (binding === 'versionTag') {
    const tag = nonEmpty(zeebe !== undefined ? str(zeebe, 'zeebe:versionTag') : el.attrs['camunda:decisionRefVersionTag']);
    if (tag === null) problem(ctx, id, 'a decision bound by versionTag needs the version tag');
    call.binding = 'versionTag';
    if (tag !== null) call.versionTag = tag;
  } else if (binding === 'deployment') {
    // the decision's DMN file must be deployed together with the process (compileBpmnFiles checks)
    call.binding = 'deployment';
  } else if (binding !== 'latest') {
    problem(ctx, id, `decision binding "${binding}" is not one of latest, deployment, version, versionTag`);
  }
  return ctx.problems.length > before ? null : call;
}
