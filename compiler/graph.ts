/**
 * The compiled, immutable form of one BPMN process, as stored in
 * bpm.process_definition.graph (jsonb) and walked by the SQL engine.
 *
 * The TypeScript compiler (compiler/) produces it from BPMN XML; the engine
 * (db/functions/) reads it with one lookup per call and never looks at XML.
 * Keep this file and db/functions/ in step: every field the engine reads is
 * documented here.
 */

/** An expression compiled at deploy time into an SQL/JSON path over the instance variables. */
export interface CompiledExpression {
  /** The expression as written in the model, for error messages (`${amount > 1000}`, `=amount > 1000`). */
  src: string;
  /**
   * SQL/JSON path text evaluated against the instance variables (a jsonb object).
   * Conditions: evaluated with jsonb_path_match, must yield one boolean.
   * Values: evaluated with jsonb_path_query_first.
   */
  path: string;
  /** Top-level variable names that must exist when evaluated (else the engine raises BP302 naming the first missing one). */
  vars: string[];
}

/** A literal from the model, or an expression. */
export type CompiledValue = { literal: string | number | string[] } | { expr: CompiledExpression };

export type NodeType =
  | 'startEvent'
  | 'endEvent'
  | 'task'
  | 'manualTask'
  | 'userTask'
  | 'serviceTask'
  | 'sendTask'
  | 'businessRuleTask'
  | 'exclusiveGateway'
  | 'parallelGateway'
  | 'inclusiveGateway'
  | 'boundaryEvent';

export interface CompiledFlow {
  id: string;
  source: string;
  target: string;
  /** Null for an unconditional flow. */
  condition: CompiledExpression | null;
}

export interface UserTaskSpec {
  assignee?: CompiledValue;
  /** Literal list (comma-separated in the model, split and trimmed) or an expression yielding a string (comma-separated) or array. */
  candidateUsers?: CompiledValue;
  candidateGroups?: CompiledValue;
  /** ISO 8601 date-time or duration (literal), or an expression yielding one. */
  dueDate?: CompiledValue;
  followUpDate?: CompiledValue;
  /** Integer literal or expression; engine default 50. */
  priority?: CompiledValue;
}

export interface CompiledNode {
  id: string;
  type: NodeType;
  name: string | null;
  /** Incoming sequence flow ids, document order. */
  in: string[];
  /** Outgoing sequence flow ids, document order. */
  out: string[];
  /** Default flow id (exclusive / inclusive gateways, activities). */
  default?: string | null;
  /** endEvent with terminateEventDefinition. */
  terminate?: boolean;
  /** Ids of boundary events attached to this activity. */
  boundary?: string[];
  /** userTask only. */
  userTask?: UserTaskSpec;
  /** service/send/businessRule tasks: the external task topic. */
  topic?: string;
  /** boundaryEvent only. */
  attachedTo?: string;
  cancelActivity?: boolean;
  /** boundaryEvent with errorEventDefinition: errorCode, null = catch all. */
  error?: { code: string | null };
  /**
   * inclusiveGateway with more than one incoming flow: ids of every node from
   * which this gateway can be reached (excluding the gateway itself). A waiting
   * join fires once no live token sits on any of these nodes.
   */
  upstream?: string[];
}

export interface CompiledGraph {
  /** Id of the process's none start event. */
  start: string;
  nodes: Record<string, CompiledNode>;
  flows: Record<string, CompiledFlow>;
}

export interface CompiledProcess {
  /** The BPMN process id = definition key. */
  key: string;
  name: string | null;
  versionTag: string | null;
  graph: CompiledGraph;
}

/** One problem found while compiling; the compiler collects all of them. */
export interface CompileProblem {
  file: string;
  /** The BPMN element id, or null for file-level problems (not XML, too large, …). */
  elementId: string | null;
  message: string;
}

export interface CompiledResource {
  /** File name as given (used in messages and stored with the deployment). */
  name: string;
  /** sha256 hex of the exact bytes. */
  hash: string;
  xml: string;
  processes: CompiledProcess[];
}

export type CompileResult =
  | { ok: true; resource: CompiledResource; warnings: CompileProblem[] }
  | { ok: false; problems: CompileProblem[]; warnings: CompileProblem[] };
