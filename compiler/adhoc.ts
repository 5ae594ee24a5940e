/**
 * Ad-hoc subprocesses (bpmn:adHocSubProcess): an embedded subprocess whose
 * inner activities have no start event; they are activated when it is
 * entered (zeebe:adHoc activeElementsCollection) or later through
 * bpm.activate_ad_hoc_activities, any number of times, and it completes by
 * its completionCondition (or when nothing is active inside any more).
 * Compiled to a subProcess node with `adHoc` (graph.ts AdHocSpec).
 */
import { compileActivity } from './activities';
import { bool, extensions, isEnteredWithoutFlows, nonEmpty, problem, type ProcessCtx, str } from './context';
import type { CompiledNode } from './graph';
import { compileConditionElement, compileExpressionText } from './mappings';
import type { XNode } from './xml';

const AD_HOC_CONSUMES: ReadonlySet<string> = new Set(['zeebe:AdHoc']);

export function compileAdHocSubProcess(ctx: ProcessCtx, el: XNode, id: string): CompiledNode {
  if (bool(el, 'triggeredByEvent') === true) problem(ctx, id, 'an ad-hoc subprocess cannot be an event subprocess (triggeredByEvent="true")');
  const node = compileActivity(ctx, el, id, 'subProcess', AD_HOC_CONSUMES);
  const ordering = str(el, 'ordering');
  if (ordering === 'Sequential') {
    problem(ctx, id, 'ordering="Sequential" is not supported in this version; the activities of an ad-hoc subprocess run in parallel');
  }
  node.adHoc = { cancelRemaining: bool(el, 'cancelRemainingInstances') !== false, activatable: [] };
  const zeebe = extensions(el).filter((e) => e.type === 'zeebe:AdHoc');
  if (zeebe.length > 1) problem(ctx, id, 'several zeebe:adHoc elements');
  if (zeebe[0] !== undefined) {
    for (const attr of ['zeebe:outputCollection', 'zeebe:outputElement']) {
      if (str(zeebe[0], attr) !== undefined) {
        problem(ctx, id, `zeebe:adHoc ${attr.slice('zeebe:'.length)} is not supported in this version (it belongs to ad-hoc subprocesses implemented by a job worker)`);
      }
    }
    const active = nonEmpty(str(zeebe[0], 'zeebe:activeElementsCollection'));
    if (active !== null) {
      const expr = compileExpressionText(ctx, id, 'zeebe:adHoc activeElementsCollection', active, 'value', `write =${active.trim()} to read a variable`);
      if (expr !== null) node.adHoc.activeElements = { expr };
    }
  }
  const completion = compileConditionElement(ctx, id, el, 'completionCondition');
  if (completion) node.adHoc.completionCondition = completion;
  return node;
}

/**
 * Once every node and sequence flow is compiled: no start or end events in
 * an ad-hoc subprocess (its activities are activated, and it ends by its
 * completion condition); its activatable elements (directly inside, no
 * incoming sequence flow, entered otherwise than by a flow: not boundary
 * events, event subprocesses, compensation handlers or link catch events),
 * at least one.
 */
export function linkAdHocSubProcesses(ctx: ProcessCtx): void {
  for (const node of Object.values(ctx.nodes)) {
    if (node.adHoc === undefined) continue;
    const inside = Object.values(ctx.nodes).filter((n) => n.scope === node.id);
    for (const n of inside) {
      if (n.type === 'startEvent') {
        problem(ctx, n.id, `ad-hoc subprocess ${node.id} must not have start events: its activities are activated (zeebe:adHoc activeElementsCollection, bpm.activate_ad_hoc_activities)`);
      }
      if (n.type === 'endEvent') problem(ctx, n.id, `ad-hoc subprocess ${node.id} must not have end events: it completes by its completionCondition, or when nothing is active in it any more`);
    }
    node.adHoc.activatable = inside.filter((n) => n.in.length === 0 && n.type !== 'endEvent' && !isEnteredWithoutFlows(n)).map((n) => n.id);
    if (node.adHoc.activatable.length === 0) {
      problem(ctx, node.id, 'ad-hoc subprocess has no element to activate (an activity or event without incoming sequence flows)');
    }
  }
}

/** Whether `node` sits directly in an ad-hoc subprocess (it is activated there, not reached by flows). */
export function isInAdHocSubProcess(ctx: ProcessCtx, node: CompiledNode): boolean {
  return node.scope !== undefined && ctx.nodes[node.scope]?.adHoc !== undefined;
}
