/**
 * What every activity shares (compileActivity: default flow, boundary list,
 * input/output mappings, multi-instance, compensation handler flag, refused
 * BPMN data and resource elements) and the job settings of any flow node:
 * asynchronous continuations (camunda:asyncBefore / asyncAfter) and job
 * retries (camunda:failedJobRetryTimeCycle).
 */
import { baseNode, bool, extensions, kids, nonEmpty, problem, type ProcessCtx, str, warn, xmlName } from './context';
import { isExpression } from './expression';
import { checkExtensions } from './extensions';
import { defaultFlow } from './gateways';
import type { CompiledExpression, CompiledNode, NodeType } from './graph';
import { compileLoop } from './loops';
import { compileExpressionText, compileIoMappings, IO_CONSUMES } from './mappings';
import { parseRetryCycle } from './timer';
import type { XNode } from './xml';

// --- asynchronous continuations, job retries ---------------------------------------

/** camunda:asyncBefore (camunda:async) / camunda:asyncAfter and camunda:failedJobRetryTimeCycle of any flow node. */
export function compileJobSettings(ctx: ProcessCtx, el: XNode, node: CompiledNode): void {
  const before = bool(el, 'camunda:asyncBefore') === true || bool(el, 'camunda:async') === true;
  const after = bool(el, 'camunda:asyncAfter') === true;
  if (before) node.asyncBefore = true;
  if (after) node.asyncAfter = true;
  const priority = jobPriority(ctx, node.id, el);
  if (priority !== undefined) node.jobPriority = priority;
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
  // (node.loop is compiled by then: asynchronous inner instances use the cycle too)
  if (!before && !after && node.event?.kind !== 'timer' && node.loop?.asyncInner !== true) {
    warn(ctx, node.id, 'camunda:failedJobRetryTimeCycle has no effect without camunda:asyncBefore or camunda:asyncAfter (or a timer event)');
  }
}

/**
 * camunda:jobPriority of a flow node or process: an integer (higher runs
 * first when jobs are due together), or an expression evaluated when the
 * job is created (over the instance's variables). Undefined when absent.
 */
export function jobPriority(ctx: ProcessCtx, id: string, el: XNode): number | { expr: CompiledExpression } | undefined {
  const raw = nonEmpty(str(el, 'camunda:jobPriority'));
  if (raw === null) return undefined;
  if (isExpression(raw)) {
    const expr = compileExpressionText(ctx, id, 'camunda:jobPriority', raw, 'value', '');
    return expr === null ? undefined : { expr };
  }
  if (!/^-?\d{1,9}$/.test(raw.trim())) {
    problem(ctx, id, `camunda:jobPriority="${raw}" is not an integer`);
    return undefined;
  }
  return Number(raw.trim());
}

// --- activities --------------------------------------------------------------------

/** Activity-wide checks and fields (default flow, boundary list, input/output mappings, multi-instance). */
export function compileActivity(ctx: ProcessCtx, el: XNode, id: string, type: NodeType, consumes: ReadonlySet<string>): CompiledNode {
  checkExtensions(ctx, el, new Set([...consumes, ...IO_CONSUMES]));
  for (const io of kids(el, 'ioSpecification')) problem(ctx, id, `element type ${xmlName(io.type)} is not supported in this version`);
  for (const r of kids(el, 'resources')) {
    problem(ctx, id, `${xmlName(r.type)} is not supported in this version; assign user tasks with camunda:assignee / camunda:candidateGroups or zeebe:assignmentDefinition`);
  }
  const data = [...kids(el, 'dataInputAssociations'), ...kids(el, 'dataOutputAssociations')];
  if (data.length > 0) warn(ctx, id, 'data associations are ignored (data objects and stores have no semantics in this version)');
  if (kids(el, 'properties').length > 0) warn(ctx, id, 'bpmn:property elements are ignored');
  const node: CompiledNode = { ...baseNode(el, id, type), default: defaultFlow(ctx, el, id), boundary: [] };
  if (bool(el, 'isForCompensation') === true) node.isForCompensation = true;
  compileIoMappings(ctx, el, node);
  compileLoop(ctx, el, node);
  return node;
}
