/**
 * The compiled, immutable form of one BPMN process, as stored in
 * bpm.process_definition.graph (jsonb) and walked by the SQL engine.
 *
 * The TypeScript compiler (compiler/) produces it from BPMN XML; the engine
 * (db/functions/) reads it with one lookup per call and never looks at XML.
 * Keep this file and db/functions/ in step: every field the engine reads is
 * documented here.
 */

import type { FeelTree } from './feel-tree';

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
  /**
   * Values only: a string built from parts (a JUEL template `Order ${id}`,
   * a FEEL `"Order " + string(id)`); `path` is then empty. Each part is
   * literal text or a jsonpath whose result's text is appended. A null part
   * adds nothing (`empty`, JUEL) or makes the whole value null (`null`, FEEL).
   */
  concat?: { parts: Array<{ text: string } | { path: string }>; nulls: 'empty' | 'null' };
  /**
   * Values only: FEEL `a + b` over variables (`path` is then empty): the
   * jsonpaths of the operands; strings concatenate, numbers add, anything
   * else (a null, mixed types) is null, as in FEEL.
   */
  plus?: string[];
  /**
   * FEEL that SQL/JSON path cannot express (contexts, lists, filters,
   * quantifiers, for, if-then-else values, string / list / numeric /
   * context / temporal functions): a tree the engine interprets
   * (bpm_private.feel__eval); `path` is then empty. See compiler/feel-tree.ts.
   */
  tree?: FeelTree;
}

/** A literal from the model, or an expression. */
export type CompiledValue = { literal: string | number | string[] } | { expr: CompiledExpression };

/** A camunda:errorEventDefinition of an external task: the error code it throws, and when. */
export interface ExternalErrorEvent {
  code: string;
  condition: CompiledExpression | null;
}

export type NodeType =
  | 'startEvent'
  | 'endEvent'
  | 'task'
  | 'manualTask'
  | 'scriptTask'
  | 'userTask'
  | 'serviceTask'
  | 'sendTask'
  | 'businessRuleTask'
  | 'exclusiveGateway'
  | 'parallelGateway'
  | 'inclusiveGateway'
  | 'boundaryEvent'
  | 'intermediateCatchEvent'
  | 'intermediateThrowEvent'
  | 'receiveTask'
  | 'eventBasedGateway'
  | 'subProcess'
  | 'callActivity';

/**
 * When a timer fires. Evaluated by the engine when the timer is armed (a token
 * arrives at the catch event, the host activity of a boundary event starts, or
 * the definition of a timer start event is deployed).
 * - date: an ISO 8601 date-time (with or without offset; none = UTC). A date
 *   without time is refused.
 * - duration: an ISO 8601 duration (PnYnMnDTnHnMnS or PnW).
 * - cycle: a repeating interval `R[n]/duration`, `R[n]/start/duration` (start an
 *   ISO date-time; n ≥ 1 when given; the duration longer than zero), or a cron
 *   expression (5 fields `min hour dom month dow`, or 6-7 fields with seconds
 *   first / year last as in Quartz and Spring; `?`, `*`, lists, ranges, steps,
 *   month and day names, case-insensitive). Day-of-week numbers are accepted
 *   only in the 5-field form (0-7, 0 and 7 = Sunday): Quartz (1 = Sunday) and
 *   Spring (0 = Sunday) number them differently, so the 6/7-field forms take
 *   day names (SUN-SAT) only. `L`, `W`, `#` and `@` macros are refused.
 * Literals are checked by the compiler; a FEEL string literal (`="PT5M"`) is
 * emitted as the literal. Expressions must yield such a string (FEEL
 * durations/dates yield their ISO text); timer start events take literals only
 * (they are armed at deployment, without variables).
 */
export interface TimerSpec {
  kind: 'date' | 'duration' | 'cycle';
  value: CompiledValue;
}

/**
 * The (single) event definition of an event node or a receive task.
 * - message: `name` from bpmn:message/@name (literal or expression; message
 *   and signal START events require a literal). `correlationKey`: zeebe
 *   `zeebe:subscription correlationKey` (catch side: intermediate catch and
 *   boundary events, receive tasks; evaluated when the subscription opens) or,
 *   on throw events / send tasks without a topic, a `correlationKey` extension
 *   property (camunda:properties / zeebe:properties); null otherwise (camunda
 *   catch events correlate on the instance's business key; message start
 *   events and throw events with a topic never have one). Correlation keys are
 *   always expressions (plain text is refused by the compiler: `="abc"` is a
 *   constant key). On message throw / end events and send tasks, `event` is
 *   present whenever the element references a message (with or without a
 *   topic); an element with a topic and no messageRef has no `event`.
 * - signal: `name` from bpmn:signal/@name (literal or expression).
 * - error: `code` from the referenced bpmn:error/@errorCode (null: catch-all
 *   on boundaries / no code on end events). Literal codes only.
 * - escalation: `code` from bpmn:escalation/@escalationCode (null: catch-all;
 *   boundaries only: escalation throw and end events always have a code).
 *   Literal codes only.
 * - terminate: end events only (also flagged by `terminate: true`).
 */
export type EventDefinition =
  | { kind: 'timer'; timer: TimerSpec }
  | { kind: 'message'; name: CompiledValue; correlationKey: CompiledExpression | null }
  | { kind: 'signal'; name: CompiledValue }
  /**
   * Errors and escalations. On catching events (boundary events, event
   * subprocess starts): codeVariable / messageVariable (camunda:errorCodeVariable,
   * errorMessageVariable, escalationCodeVariable) name the variables that
   * receive the caught code and error message. On error end events: the
   * error's message (camunda:errorMessage of the bpmn:error).
   */
  | { kind: 'error'; code: string | null; codeVariable?: string; messageVariable?: string; message?: CompiledValue }
  | { kind: 'escalation'; code: string | null; codeVariable?: string }
  | { kind: 'terminate' }
  /**
   * Conditional events (intermediate catch, boundary, event subprocess and
   * process start): the condition that triggers them; variableName /
   * variableEvents (camunda:) restrict re-evaluation to changes of that
   * variable (of those kinds: create, update, delete).
   */
  | { kind: 'conditional'; condition: CompiledExpression; variableName?: string; variableEvents?: string[] }
  /**
   * Link events (intermediate throw/catch only). On the throw event `target`
   * is the id of the one catch event with the same name in the same scope
   * (the compiler refuses a missing or ambiguous pair); a link catch event has
   * no incoming sequence flows and is entered only through its throw events.
   */
  | { kind: 'link'; name: string; target?: string }
  /**
   * Compensation. On intermediate throw and end events: `activity` is the id
   * of the activity to compensate (bpmn:compensateEventDefinition activityRef,
   * an activity of the same scope as the throw event), null = every
   * compensable activity of the scope; waitForCompletion (default true; false
   * is refused). On a boundary event (attached to the activity it
   * compensates): activity null; the boundary has no flows (its handler is
   * reached by an association) and the host node names the handler in
   * `compensation`. On the start event of a compensation event subprocess:
   * activity null. A throw event inside an event subprocess compensates
   * activities of the scope the event subprocess runs in.
   */
  | { kind: 'compensate'; activity: string | null }
  /** Cancel end events (inside a transaction) and cancel boundary events (attached to a transaction). */
  | { kind: 'cancel' };

export interface CompiledFlow {
  id: string;
  source: string;
  target: string;
  /** Null for an unconditional flow. */
  condition: CompiledExpression | null;
}

/**
 * The form a user task or the process's none start event is worked with, as
 * stored (bpm.user_task.form, bpm.process_definition.start_form): a form key
 * (camunda:formKey, zeebe:formDefinition formKey), a Camunda 7 form reference
 * (camunda:formRef, binding latest | deployment | version), a Camunda 8 linked
 * form (zeebe:formDefinition formId, binding latest | deployment | versionTag)
 * or an external reference (a URL); and the fields of a Camunda 7 generated
 * form (camunda:formData). See compiler/forms.ts.
 */
export type FormTarget =
  | { key: string }
  | { ref: string; binding: string; version?: number }
  | { id: string; binding: string; versionTag?: string }
  | { externalReference: string };

/** A Camunda 7 generated form (camunda:formData): its fields, and the field that holds the business key. */
export interface GeneratedForm {
  fields: FormField[];
  businessKey?: string;
}

/** A field of a generated form, as the model gives it (a default given as an expression: userTask.formDefaults). */
export interface FormField {
  id: string;
  type: string;
  label?: string;
  datePattern?: string;
  defaultValue?: string;
  validation?: Array<{ name: string; config?: string }>;
  properties?: Record<string, string>;
  values?: Array<{ id: string; name: string }>;
}

/** A form target, generated fields, or both. */
export type FormRef = FormTarget | GeneratedForm | (FormTarget & GeneratedForm);

export interface UserTaskSpec {
  /** A form key or external reference given as an expression (evaluated when the task is created); a static form is node.form. */
  form?: { key: CompiledValue } | { externalReference: CompiledValue };
  /** Default values of generated form fields given as expressions, by field id (evaluated when the task is created). */
  formDefaults?: Record<string, CompiledValue>;
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

/**
 * One input or output mapping (camunda:inputOutput inputParameter /
 * outputParameter with a text or `${expr}` body; zeebe:ioMapping input/output
 * with `source="=expr"`). Inputs are evaluated when the activity is entered,
 * over the variables visible there, and become LOCAL variables of the
 * activity's scope. Outputs are evaluated when the activity completes, over
 * the variables visible inside it (its locals first), and are written to the
 * enclosing scope. camunda:list / camunda:map bodies compile to a literal
 * JSON value (`{ json: ... }`); scripts are refused.
 */
export interface IoMapping {
  /** The variable set. */
  target: string;
  /** zeebe nested targets (`order.customer.id`): where in the variable the value goes. */
  path?: string[];
  value: CompiledValue | { json: unknown } | { decision: DecisionCall } | null;
}

/**
 * A business rule task's decision (camunda:decisionRef, zeebe:calledDecision):
 * the decision's key and version binding, and how its result becomes a value
 * (Camunda 7's camunda:mapDecisionResult; 'dmn' is Camunda 8's: the value of
 * a single output, a context of several, a list for multi-hit tables).
 */
export interface DecisionCall {
  key: string;
  /** 'deployment': the version deployed with the process (bpm.deploy pins it as 'version'). */
  binding: 'latest' | 'version' | 'versionTag' | 'deployment';
  version?: number;
  versionTag?: string;
  mapResult: 'singleEntry' | 'singleResult' | 'collectEntries' | 'resultList' | 'dmn';
}

/**
 * Multi-instance loop characteristics (bpmn:multiInstanceLoopCharacteristics).
 * Exactly one of cardinality / collection is present (neither for a standard loop).
 * - cardinality: bpmn:loopCardinality (integer literal or expression).
 * - collection: camunda:collection (`${expr}`, or a plain variable name which
 *   compiles to an expression reading that variable) or zeebe inputCollection
 *   (`=expr`); must yield a JSON array.
 * - elementVariable: camunda:elementVariable / zeebe inputElement; a local
 *   variable of each inner instance holding its item.
 * - completionCondition: evaluated after each inner instance completes, over
 *   the variables visible to that inner instance plus nrOfInstances,
 *   nrOfActiveInstances, nrOfCompletedInstances, loopCounter.
 * - outputCollection / outputElement: zeebe:loopCharacteristics attributes,
 *   or the extension properties pgbpm:outputCollection / pgbpm:outputElement
 *   (camunda:properties) in Camunda 7 models. outputElement is evaluated when
 *   an inner instance completes, over its variables; the collection is written
 *   to the enclosing scope in input order when the body completes (entries of
 *   inner instances that never completed are left out).
 */
export interface LoopSpec {
  sequential: boolean;
  /**
   * A standard loop (bpmn:standardLoopCharacteristics; sequential, no
   * collection or cardinality): the activity runs again while `condition`
   * holds over the variables of the iteration that ended (loopCounter
   * included; with testBefore also before the first iteration, over the
   * entering token's variables), at most `maximum` times.
   */
  standard?: { condition?: CompiledExpression; testBefore: boolean; maximum?: number };
  cardinality?: CompiledValue;
  collection?: CompiledValue;
  elementVariable?: string;
  completionCondition?: CompiledExpression;
  outputCollection?: string;
  outputElement?: CompiledValue;
  /**
   * camunda:asyncBefore (or camunda:async) on the multi-instance loop
   * characteristics: each inner instance waits for a job of its own
   * (bpm_continue) before it runs; the body opens in the caller's transaction
   * (camunda:asyncBefore on the activity makes the body wait as well).
   */
  asyncInner?: true;
}

/**
 * An ad-hoc subprocess (bpmn:adHocSubProcess, node type subProcess): its
 * inner activities have no start event and are activated. activeElements:
 * zeebe:adHoc activeElementsCollection, a list of element ids activated when
 * the subprocess is entered (none: nothing is activated then); later ones
 * through bpm.activate_ad_hoc_activities. activatable: the elements directly
 * inside without incoming sequence flows (what may be activated).
 * completionCondition: evaluated when a path inside ends; true completes the
 * subprocess (cancelRemaining, bpmn cancelRemainingInstances, default true:
 * active inner elements are cancelled; false: it completes when they have
 * ended). Without a condition it completes when nothing is active inside any
 * more after a path ended.
 */
export interface AdHocSpec {
  activeElements?: CompiledValue;
  completionCondition?: CompiledExpression;
  cancelRemaining: boolean;
  activatable: string[];
}

/**
 * A call activity. processId: calledElement (camunda) / zeebe:calledElement
 * processId (literal or expression). binding: camunda:calledElementBinding
 * (latest | deployment | version | versionTag) / zeebe bindingType (latest |
 * deployment | versionTag); default latest. version for binding version,
 * versionTag for binding versionTag.
 * Variables down: inAll (camunda:in variables="all", or zeebe
 * propagateAllParentVariables, default true in zeebe) copies every visible
 * variable; `in` mappings (camunda:in source / sourceExpression → target;
 * zeebe:ioMapping inputs) are evaluated over the parent's variables and set
 * in the child.
 * Variables up: outAll (camunda:out variables="all", zeebe
 * propagateAllChildVariables, default true) copies every child variable;
 * `out` mappings (camunda:out source/sourceExpression → target, zeebe
 * ioMapping outputs) are evaluated over the child's final variables.
 * businessKey: camunda:in businessKey="..." (expression over the parent's
 * variables; `${execution.processBusinessKey}` compiles to 'parent').
 */
export interface CallSpec {
  processId: CompiledValue;
  binding: 'latest' | 'deployment' | 'version' | 'versionTag';
  version?: number;
  versionTag?: string;
  inAll: boolean;
  in: IoMapping[];
  outAll: boolean;
  out: IoMapping[];
  businessKey?: 'parent' | CompiledValue;
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
  /** Ids of boundary events attached to this activity (tasks, subprocesses, call activities). */
  boundary?: string[];
  /**
   * Id of the enclosing (embedded or event) subProcess node; absent at
   * process level. Every node of a subprocess is in the one flat `nodes` map
   * (BPMN ids are unique per file); flows connect nodes of one scope only.
   */
  scope?: string;
  /** subProcess: the id of its one none start event; event subprocess: the id of its one (message, timer, signal, error or escalation) start event. */
  start?: string;
  /** subProcess: true for an event subprocess (no incoming or outgoing flows). */
  triggeredByEvent?: boolean;
  /**
   * Start event of an event subprocess: isInterrupting (default true). Its
   * `event` is a message, timer, signal, error or escalation definition (or
   * compensate, without `interrupting`: a compensation event subprocess).
   */
  interrupting?: boolean;
  /** subProcess and the graph itself: ids of the event subprocesses directly inside, document order. */
  eventSubprocesses?: string[];
  /** Activities: input/output mappings (subProcess, callActivity; tasks: inputs become locals of the task). */
  inputs?: IoMapping[];
  outputs?: IoMapping[];
  /** Activities: multi-instance loop characteristics. */
  loop?: LoopSpec;
  /** callActivity only. */
  call?: CallSpec;
  /**
   * An activity with a compensation boundary event: the id of its
   * compensation handler (the activity the boundary's association points to).
   * A subprocess with a compensation event subprocess: that event subprocess
   * (not listed in its eventSubprocesses: it runs only by compensation).
   */
  compensation?: string;
  /** A compensation handler (isForCompensation="true"): no sequence flows; run only by compensation. */
  isForCompensation?: boolean;
  /** subProcess only: a bpmn:transaction (cancel end events inside, cancel boundary events on it). */
  transaction?: boolean;
  /** subProcess only: a bpmn:adHocSubProcess. */
  adHoc?: AdHocSpec;
  /** userTask only. */
  userTask?: UserTaskSpec;
  /** Start events of the process: camunda:initiator, the variable that receives the starting user's id. */
  initiator?: string;
  /** userTask and the process's none start event: a static form (one given by an expression is userTask.form). */
  form?: FormRef;
  /**
   * userTask only: escalation of an overdue task (extension properties `pgbpm:escalateAfter`
   * = ISO 8601 duration after the due date (or after creation when no due
   * date), then `pgbpm:escalateToGroups` (comma-separated candidate groups to
   * add) and/or `pgbpm:escalateToAssignee` (new assignee)). Values compile like
   * UserTaskSpec values: `after` an ISO 8601 duration literal or an expression,
   * `addCandidateGroups` a literal list (string[]) or an expression,
   * `reassignTo` a literal string or an expression. `after` is required.
   */
  taskEscalation?: { after: CompiledValue; addCandidateGroups?: CompiledValue; reassignTo?: CompiledValue };
  /**
   * service/send/businessRule tasks, and message intermediate throw / end
   * events with camunda:type="external" camunda:topic or zeebe:taskDefinition:
   * the external task topic (the node then behaves as an external task).
   * Service and business rule tasks always have one; a send task or message
   * throw / end event without it publishes its message (`event`).
   */
  topic?: string;
  /**
   * A topic given by an expression (`camunda:topic="${...}"`, zeebe:taskDefinition
   * `type="=..."`): evaluated over what each task sees when it is created (a
   * non-empty string); `topic` then holds the expression's text.
   */
  topicExpr?: CompiledValue;
  /** With a topic: zeebe:taskHeaders and camunda:properties (other than pgbpm:…), name → value, handed to the worker with the task. */
  headers?: Record<string, string>;
  /** With a topic: camunda:taskPriority (of the element, else of the process), an integer literal or expression; engine default 0. */
  taskPriority?: CompiledValue;
  /**
   * With a topic: camunda:errorEventDefinition entries (Camunda 7), document
   * order. When a worker completes or fails the task and an entry's condition
   * holds (over the variables the task sees, those the worker sends, and
   * `externalTask`), the error `code` is thrown at the task instead; an entry
   * without a condition never throws.
   */
  errorEvents?: ExternalErrorEvent[];
  /**
   * Start, end, intermediate catch/throw and boundary events, receive tasks,
   * send tasks that reference a message: the event definition (absent = none
   * event). Terminate end events have `{ kind: 'terminate' }`. Error boundary
   * events also keep the older `error` field below.
   */
  event?: EventDefinition;
  /**
   * camunda:asyncBefore (or the legacy camunda:async) / camunda:asyncAfter on
   * any flow node: the continuation runs as a job. Present (true) only when set.
   */
  asyncBefore?: boolean;
  asyncAfter?: boolean;
  /**
   * Retry count of async jobs (camunda:failedJobRetryTimeCycle "R3/PT5M" →
   * {retries: 3, delay: "PT5M"}, the only accepted form: lists of intervals and
   * expressions are refused, so the compiler never emits a null delay); absent:
   * default 3 retries.
   */
  jobRetry?: { retries: number; delay: string | null };
  /**
   * camunda:jobPriority of the node, else of its process: the priority of the
   * jobs it creates (asynchronous continuations, timers); higher runs first
   * when several are due. An expression is evaluated when the job is created
   * (bpm_private.node__job_priority). Absent: 0.
   */
  jobPriority?: number | { expr: CompiledExpression };
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
  /** Id of the process's none start event; null when it has only message, signal or timer start events. */
  start: string | null;
  /** Ids of the message, signal, timer and conditional start events (each node has `event`), document order; absent when there are none. */
  eventStarts?: string[];
  /** Ids of the process-level event subprocesses, document order; absent when none. */
  eventSubprocesses?: string[];
  /**
   * Extension property `pgbpm:uniqueBusinessKey` = true: an instance with a
   * business key cannot start while an active or suspended instance of the
   * same process key (any version) has that key (BP209); absent: false.
   */
  uniqueBusinessKey?: true;
  /** Some node waits for a condition (conditional events): the engine re-evaluates conditions when variables change. */
  conditionals?: true;
  /** Some external task has camunda:errorEventDefinition entries (`errorEvents`): completions and failures evaluate them. */
  taskErrorEvents?: true;
  nodes: Record<string, CompiledNode>;
  flows: Record<string, CompiledFlow>;
}

export interface CompiledProcess {
  /** The BPMN process id = definition key. */
  key: string;
  name: string | null;
  versionTag: string | null;
  /**
   * How long the history of an ended instance is kept (camunda:historyTimeToLive:
   * a number of days, or P<n>D), as an ISO 8601 duration (P<n>D); absent: no
   * time to live of its own (cleanup_history's default applies).
   */
  historyTimeToLive?: string;
  /** The form of the none start event (static), if it names one. */
  startForm?: FormRef;
  /** Forms embedded in the model (zeebe:userTaskForm): id → the form's JSON. */
  forms?: Record<string, unknown>;
  /** camunda:candidateStarterUsers / candidateStarterGroups: who may start it (absent: anyone). */
  candidateStarterUsers?: string[];
  candidateStarterGroups?: string[];
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
  /** The processes of a BPMN file (none for a DMN file). */
  processes: CompiledProcess[];
  /** The decisions of a DMN file (none for a BPMN file). */
  decisions: CompiledDecision[];
}

// --- DMN decisions (compiler/dmn.ts, evaluated by db/functions/elements/decision.sql) ---

export type HitPolicy = 'UNIQUE' | 'FIRST' | 'PRIORITY' | 'ANY' | 'COLLECT' | 'RULE ORDER' | 'OUTPUT ORDER';
export type Aggregation = 'SUM' | 'MIN' | 'MAX' | 'COUNT';

/** An input entry: a boolean FEEL tree over `?` (the input value) and the variables it requires. */
export interface DecisionTest {
  src: string;
  vars: string[];
  tree: FeelTree;
}

export interface DecisionRule {
  id: string;
  /** Per input: null matches anything ("-"). */
  tests: (DecisionTest | null)[];
  /** Per output: null yields null (an empty entry). */
  outputs: (CompiledValue | null)[];
}

export type DecisionLogic =
  | {
      kind: 'table';
      hitPolicy: HitPolicy;
      aggregation: Aggregation | null;
      inputs: { label: string; value: CompiledValue }[];
      /** name '' only for a table's single unnamed output; values: outputValues in priority order (PRIORITY, OUTPUT ORDER). */
      outputs: { name: string; values?: Array<string | number | boolean> }[];
      rules: DecisionRule[];
    }
  | { kind: 'literal'; variable: string; value: CompiledValue };

/** One decision of a DMN file: key = the decision's id; requires: ids of the decisions of the file it requires. */
export interface CompiledDecision {
  key: string;
  name: string | null;
  versionTag: string | null;
  requires: string[];
  logic: DecisionLogic;
}

export type CompileResult =
  | { ok: true; resource: CompiledResource; warnings: CompileProblem[] }
  | { ok: false; problems: CompileProblem[]; warnings: CompileProblem[] };
