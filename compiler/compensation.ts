/**
 * Compensation and transactions. A compensation boundary event names no
 * flows; its handler (an activity with isForCompensation="true", in the
 * host's scope) is found through the one bpmn:association leaving the
 * boundary (associations are looked up in the artifacts of the process and of
 * every subprocess) and is named by the host in `compensation`. Compensation
 * throw events name the activity they compensate (activityRef) or null for the
 * whole scope. A subprocess's compensation event subprocess is its handler
 * (named in `compensation` too). Transactions: cancel end events inside, a
 * cancel boundary event on the transaction.
 */
import { ACTIVITY_TYPES, bool, DATA_ELEMENTS, problem, type ProcessCtx, ref, type ScopeState, scopeLabel, warn, xmlName } from './context';
import type { EventPosition } from './events';
import type { CompiledNode, EventDefinition } from './graph';
import type { XNode } from './xml';

/**
 * Compensation boundary events (activity null) and compensation intermediate
 * throw / end events (activityRef, or null for the whole scope; checked by
 * checkCompensationThrows once every node is compiled).
 */
export function compileCompensate(ctx: ProcessCtx, id: string, def: XNode, position: EventPosition): EventDefinition | null {
  if (position === 'boundary') return { kind: 'compensate', activity: null };
  if (bool(def, 'waitForCompletion') === false) {
    problem(ctx, id, 'waitForCompletion="false" is not supported; compensation throw events wait until the compensation handlers have completed');
    return null;
  }
  const r = ref(ctx, def, 'activityRef');
  if (r.kind === 'unresolved') {
    problem(ctx, id, `activityRef "${r.value}" does not reference an element`);
    return null;
  }
  return { kind: 'compensate', activity: r.kind === 'ok' ? r.id : null };
}

/** Cancel end events sit directly in a transaction; cancel boundary events are checked when attached. */
export function compileCancel(ctx: ProcessCtx, id: string, position: EventPosition): EventDefinition | null {
  if (position === 'end' && !ctx.scope.transaction) {
    problem(ctx, id, `cancel end events are only allowed directly inside a transaction (bpmn:transaction); this one is in ${scopeLabel(ctx, ctx.scope.id)}`);
    return null;
  }
  return { kind: 'cancel' };
}

/** Whether event subprocess `id` starts with a compensation start event. */
export function isCompensationEventSubprocess(ctx: ProcessCtx, id: string): boolean {
  const start = ctx.nodes[id]?.start;
  return start !== undefined && ctx.nodes[start]?.event?.kind === 'compensate';
}

/**
 * A compensation event subprocess of an embedded subprocess (or transaction)
 * is the subprocess's compensation handler: named by it in `compensation`,
 * like the handler of a compensation boundary event, and taken out of the
 * event subprocesses that open with the subprocess. It runs when the
 * completed subprocess is compensated, instead of the handlers of what
 * completed inside (a compensation throw event in it compensates those).
 */
export function linkCompensationEventSubprocess(ctx: ProcessCtx, node: CompiledNode, scope: ScopeState): void {
  const handlers = scope.eventSubprocesses.filter((e) => isCompensationEventSubprocess(ctx, e));
  if (handlers.length === 0) return;
  scope.eventSubprocesses = scope.eventSubprocesses.filter((e) => !handlers.includes(e));
  if (scope.kind === 'eventSubProcess') {
    for (const h of handlers) problem(ctx, h, `a compensation event subprocess belongs in an embedded subprocess or transaction; event subprocess ${node.id} is never compensated as a whole`);
  } else if (handlers.length > 1) {
    problem(ctx, node.id, `${scopeLabel(ctx, node.id)} has ${handlers.length} compensation event subprocesses (${handlers.join(', ')}); at most one is allowed`);
  } else {
    node.compensation = handlers[0];
  }
}

/** The flow element ids the associations leaving `sourceId` lead to (associations to text annotations and other artifacts are not counted). */
function associatedElements(ctx: ProcessCtx, sourceId: string): string[] {
  const targets: string[] = [];
  for (const a of ctx.associations) {
    if (a.refs.sourceRef?.[0] !== sourceId) continue;
    const target = a.refs.targetRef?.[0];
    if (target !== undefined && ctx.elements.has(target)) targets.push(target);
  }
  return targets;
}

/**
 * Connects each compensation boundary event to its handler (the one activity
 * its association leads to) and names the handler on the host
 * (`compensation`). Every compensation handler must be the handler of exactly
 * one compensation boundary event.
 */
export function linkCompensationHandlers(ctx: ProcessCtx): void {
  const usedBy = new Map<string, string[]>();
  for (const boundary of Object.values(ctx.nodes)) {
    if (boundary.type !== 'boundaryEvent' || boundary.event?.kind !== 'compensate') continue;
    const targets = associatedElements(ctx, boundary.id);
    if (targets.length !== 1) {
      problem(ctx, boundary.id, targets.length === 0
        ? 'compensation boundary event is not connected to a compensation handler (draw an association from it to an activity with isForCompensation="true")'
        : `compensation boundary event has ${targets.length} associations (to ${targets.join(', ')}); exactly one, to its compensation handler, is required`);
      continue;
    }
    usedBy.set(targets[0], [...(usedBy.get(targets[0]) ?? []), boundary.id]);
    const handler = compensationHandler(ctx, boundary, targets[0]);
    const host = ctx.nodes[boundary.attachedTo ?? ''];
    if (host?.compensation !== undefined && isCompensationEventSubprocess(ctx, host.compensation)) {
      problem(ctx, boundary.id, `${host.id} has a compensation event subprocess (${host.compensation}) and this compensation boundary event; one compensation handler is allowed`);
    } else if (handler !== null && host !== undefined && host.boundary?.includes(boundary.id) === true) {
      host.compensation = handler;
    }
  }
  for (const node of Object.values(ctx.nodes)) {
    if (node.isForCompensation !== true) continue;
    const boundaries = usedBy.get(node.id) ?? [];
    if (boundaries.length === 0) {
      problem(ctx, node.id, 'compensation handler (isForCompensation="true") is not connected to a compensation boundary event (draw an association from a compensation boundary event to it)');
    } else if (boundaries.length > 1) {
      problem(ctx, node.id, `compensation handler is connected to several compensation boundary events (${boundaries.join(', ')}); each compensated activity needs a handler of its own`);
    }
  }
}

/** The handler `target` of a compensation boundary event: an activity with isForCompensation="true" in the host's scope; null when refused. */
function compensationHandler(ctx: ProcessCtx, boundary: CompiledNode, target: string): string | null {
  const handler = ctx.nodes[target];
  const el = ctx.elements.get(target);
  if (handler === undefined) {
    if (el !== undefined && (el.type === 'bpmn:SequenceFlow' || DATA_ELEMENTS.has(el.type))) {
      problem(ctx, boundary.id, `the association of compensation boundary event leads to ${target}, a ${xmlName(el.type)}; it must lead to its compensation handler (an activity with isForCompensation="true")`);
    }
    return null; // otherwise the element itself was refused
  }
  if (!ACTIVITY_TYPES.has(handler.type) || handler.triggeredByEvent === true) {
    const what = handler.triggeredByEvent === true ? 'an event subprocess' : `a ${xmlName(`bpmn:${handler.type}`)}`;
    problem(ctx, boundary.id, `the association of compensation boundary event leads to ${target}, ${what}; a compensation handler is a task, subprocess or call activity with isForCompensation="true"`);
    return null;
  }
  if (handler.isForCompensation !== true) {
    problem(ctx, boundary.id, `the association of compensation boundary event leads to ${target}, which is not a compensation handler (set isForCompensation="true" on it)`);
    return null;
  }
  const scope = ctx.scopeOf.get(boundary.id) ?? null;
  const handlerScope = ctx.scopeOf.get(target) ?? null;
  if (handlerScope !== scope) {
    problem(ctx, boundary.id, `compensation handler ${target} is in ${scopeLabel(ctx, handlerScope)}; it must be in the same scope as the activity it compensates (${scopeLabel(ctx, scope)})`);
    return null;
  }
  return target;
}

/** activityRef of compensation throw events: an activity of the throw event's scope with a compensation boundary event. */
export function checkCompensationThrows(ctx: ProcessCtx): void {
  for (const node of Object.values(ctx.nodes)) {
    if (node.event?.kind !== 'compensate' || node.type === 'boundaryEvent' || node.event.activity === null) continue;
    const target = node.event.activity;
    const el = ctx.elements.get(target);
    if (el === undefined || el.type === 'bpmn:SequenceFlow' || DATA_ELEMENTS.has(el.type)) {
      problem(ctx, node.id, `activityRef "${target}" is not an activity of process ${ctx.processId}`);
      continue;
    }
    // thrown in an event subprocess: activities of the scope it runs in
    const scope = node.scope !== undefined && ctx.nodes[node.scope]?.triggeredByEvent === true ? ctx.scopeOf.get(node.scope) ?? null : node.scope ?? null;
    const targetScope = ctx.scopeOf.get(target) ?? null;
    if (targetScope !== scope) {
      problem(ctx, node.id, `activityRef "${target}" is in ${scopeLabel(ctx, targetScope)}; a compensation throw event compensates activities of its own scope (${scopeLabel(ctx, scope)})`);
      continue;
    }
    const activity = ctx.nodes[target];
    if (activity === undefined) continue; // refused itself
    if (!ACTIVITY_TYPES.has(activity.type) || activity.triggeredByEvent === true) {
      problem(ctx, node.id, `activityRef "${target}" is ${activity.triggeredByEvent === true ? 'an event subprocess' : `a ${xmlName(`bpmn:${activity.type}`)}`}, not an activity with a compensation boundary event`);
    } else if (hasCompensationBoundary(ctx, target) || hasCompensationEventSubprocess(ctx, activity)) {
      continue;
    } else if (activity.type === 'subProcess' && activity.loop === undefined && hasCompensationInside(ctx, target)) {
      continue; // a subprocess without a handler of its own: what completed inside it is compensated
    } else {
      problem(ctx, node.id, `activityRef "${target}" has no compensation boundary event; only activities with a compensation handler (or subprocesses with such activities inside) can be compensated`);
    }
  }
}

/** Whether a compensation boundary event is attached to `activity` (valid or not: its own problems are reported with it). */
function hasCompensationBoundary(ctx: ProcessCtx, activity: string): boolean {
  return Object.values(ctx.nodes).some((n) => n.type === 'boundaryEvent' && n.attachedTo === activity && n.event?.kind === 'compensate');
}

function hasCompensationEventSubprocess(ctx: ProcessCtx, activity: CompiledNode): boolean {
  return activity.compensation !== undefined && isCompensationEventSubprocess(ctx, activity.compensation);
}

/** Whether an activity inside `subprocess` (at any depth) has a compensation boundary event or compensation event subprocess. */
function hasCompensationInside(ctx: ProcessCtx, subprocess: string): boolean {
  return Object.values(ctx.nodes).some((n) => {
    const compensable = n.type === 'boundaryEvent' && n.event?.kind === 'compensate' ? n.attachedTo : hasCompensationEventSubprocess(ctx, n) ? n.id : undefined;
    if (compensable === undefined) return false;
    for (let scope = ctx.scopeOf.get(compensable) ?? null; scope !== null; scope = ctx.scopeOf.get(scope) ?? null) {
      if (scope === subprocess) return true;
    }
    return false;
  });
}

/** A transaction with cancel end events needs a cancel boundary event; a cancel boundary event without cancel end events never fires. */
export function checkTransactions(ctx: ProcessCtx): void {
  for (const tx of Object.values(ctx.nodes)) {
    if (tx.transaction !== true) continue;
    const cancelEnds = Object.values(ctx.nodes).filter((n) => n.scope === tx.id && n.type === 'endEvent' && n.event?.kind === 'cancel').map((n) => n.id);
    const cancelBoundary = (tx.boundary ?? []).find((b) => ctx.nodes[b]?.event?.kind === 'cancel');
    if (cancelEnds.length > 0 && cancelBoundary === undefined) {
      problem(ctx, tx.id, `transaction has a cancel end event (${cancelEnds.join(', ')}) but no cancel boundary event`);
    } else if (cancelEnds.length === 0 && cancelBoundary !== undefined) {
      warn(ctx, cancelBoundary, `cancel boundary event never fires: transaction ${tx.id} has no cancel end event`);
    }
  }
}
