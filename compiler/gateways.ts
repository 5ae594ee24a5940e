/**
 * Gateways: exclusive, inclusive and parallel gateways (default flows, also
 * of activities), event-based gateways and the rules on their outgoing flows.
 * The branching rules of exclusive / inclusive gateways are structural rules
 * of compiler/bpmn.ts (checkNodeFlows).
 */
import { baseNode, bool, problem, type ProcessCtx, ref, str, xmlName } from './context';
import { checkExtensions } from './extensions';
import type { CompiledNode, NodeType } from './graph';
import type { XNode } from './xml';

export function defaultFlow(ctx: ProcessCtx, el: XNode, id: string): string | null {
  const d = ref(ctx, el, 'default');
  if (d.kind === 'unresolved') problem(ctx, id, `default flow "${d.value}" does not exist`);
  return d.kind === 'ok' ? d.id : null;
}

export function compileGateway(ctx: ProcessCtx, el: XNode, id: string, type: NodeType): CompiledNode {
  checkExtensions(ctx, el);
  const node = baseNode(el, id, type);
  if (type === 'parallelGateway') return node;
  return { ...node, default: defaultFlow(ctx, el, id) };
}

export function compileEventGateway(ctx: ProcessCtx, el: XNode, id: string): CompiledNode {
  checkExtensions(ctx, el);
  if (bool(el, 'instantiate') === true) {
    problem(ctx, id, 'event-based gateways that start the process (instantiate="true") are not supported; use message, signal or timer start events');
  }
  const type = str(el, 'eventGatewayType');
  if (type !== undefined && type !== 'Exclusive') {
    problem(ctx, id, `parallel event-based gateways (eventGatewayType="${type}") are not supported in this version`);
  }
  return baseNode(el, id, 'eventBasedGateway');
}

/** Outgoing flows of an event-based gateway: unconditional, each to a catch event or receive task only it leads to. */
export function checkEventGateway(ctx: ProcessCtx, node: CompiledNode): void {
  const messages = new Map<string, string>();
  for (const f of node.out) {
    const flow = ctx.flows[f];
    if (flow === undefined) continue;
    if (flow.condition !== null) problem(ctx, f, `sequence flow out of event-based gateway ${node.id} must not have a condition`);
    const target = ctx.nodes[flow.target];
    if (target === undefined) continue; // unresolved or refused target: already reported
    if (target.type !== 'intermediateCatchEvent' && target.type !== 'receiveTask') {
      problem(ctx, node.id, `event-based gateway: sequence flow ${f} leads to ${xmlName(`bpmn:${target.type}`)} ${target.id}; every outgoing sequence flow must lead to an intermediate catch event (message, timer, signal or condition) or a receive task`);
      continue;
    }
    const others = target.in.filter((i) => i !== f);
    if (others.length > 0) {
      problem(ctx, node.id, `event-based gateway: ${target.id} (after sequence flow ${f}) must have no other incoming sequence flow (${others.join(', ')})`);
    }
    const event = target.event;
    if (event?.kind === 'message' && 'literal' in event.name) {
      const name = String(event.name.literal);
      const first = messages.get(name);
      if (first !== undefined) problem(ctx, node.id, `event-based gateway: ${first} and ${target.id} both wait for message "${name}"`);
      else messages.set(name, target.id);
    }
  }
}
