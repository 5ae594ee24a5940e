/**
 * camunda:/zeebe: attributes and extension elements that an element kind does
 * not read itself: each is ignored, refused (with a hint where there is an
 * alternative) or warned about. Adding an extension element or attribute:
 * add it to EXTENSION_RULES / ATTRIBUTE_RULES.
 */
import { extensions, type FileCtx, idOf, kids, NOTHING, problem, str, warn, xmlName } from './context';
import type { XNode } from './xml';

/** How a camunda:/zeebe: attribute or extension element is treated when the element kind does not consume it. */
type Rule = (ctx: FileCtx, ownerId: string | null, owner: XNode, value: XNode | string | number | boolean) => void;

const IGNORE: Rule = () => undefined;

export const EXTERNAL_TASK_HINT = 'use an external task (camunda:type="external" camunda:topic="...")';
export const JOB_WORKER_HINT = 'use a job worker (zeebe:taskDefinition type="...")';

function quote(v: XNode | string | number | boolean): string {
  return typeof v === 'object' ? '' : `"${String(v)}"`;
}

const javaDelegate = (attr: string): Rule => (ctx, id, _owner, v) =>
  problem(ctx, id, `Java delegates are not supported (${attr}=${quote(v)}); ${EXTERNAL_TASK_HINT}`);

/** On flow nodes the async flags are read by compileJobSettings; camunda:async on a signal event definition is not. */
const asyncFlag = (attr: string): Rule => (ctx, id, owner, v) => {
  if (v === true && owner.type === 'bpmn:SignalEventDefinition') {
    warn(ctx, id, `${attr} on bpmn:signalEventDefinition is ignored: signals are delivered in the transaction that throws them`);
  }
};

const unsupportedAttribute = (attr: string): Rule => (ctx, id, _owner, v) =>
  problem(ctx, id, `attribute ${attr}=${quote(v)} is not supported in this version`);

/** camunda:/zeebe: attributes. Anything not listed here and not consumed by the element kind is refused. */
const ATTRIBUTE_RULES: Readonly<Record<string, Rule>> = {
  // modeler / operations metadata, no execution semantics here
  'camunda:versionTag': IGNORE,
  'camunda:historyTimeToLive': IGNORE,
  'camunda:isStartableInTasklist': IGNORE,
  'camunda:jobPriority': IGNORE,
  'camunda:taskPriority': IGNORE, // on processes and elements with an external task it is read by compileTaskPriority
  'camunda:exclusive': IGNORE,
  'camunda:formKey': IGNORE,
  'camunda:formRef': IGNORE,
  'camunda:formRefBinding': IGNORE,
  'camunda:formRefVersion': IGNORE,
  'camunda:modelerTemplate': IGNORE,
  'camunda:modelerTemplateVersion': IGNORE,
  'camunda:errorMessage': IGNORE,
  'camunda:diagramRelationId': IGNORE,
  'zeebe:modelerTemplateIcon': IGNORE,
  'zeebe:retryCounter': IGNORE,
  // transaction boundaries (asyncBefore / asyncAfter of flow nodes, read by compileJobSettings)
  'camunda:async': asyncFlag('camunda:async'),
  'camunda:asyncBefore': asyncFlag('camunda:asyncBefore'),
  'camunda:asyncAfter': asyncFlag('camunda:asyncAfter'),
  // code
  'camunda:class': javaDelegate('camunda:class'),
  'camunda:delegateExpression': javaDelegate('camunda:delegateExpression'),
  'camunda:expression': javaDelegate('camunda:expression'),
  'camunda:formHandlerClass': javaDelegate('camunda:formHandlerClass'),
  'camunda:resultVariable': IGNORE, // read by script and business rule tasks; elsewhere it belongs to camunda:expression, which is refused
  // business rule tasks read the decision attributes (compiler/tasks.ts)
  'camunda:decisionRef': (ctx, id, _o, v) =>
    problem(ctx, id, `camunda:decisionRef=${quote(v)} is only supported on business rule tasks`),
  'camunda:decisionRefBinding': IGNORE,
  'camunda:decisionRefVersion': IGNORE,
  'camunda:decisionRefTenantId': (ctx, id, _o, v) =>
    problem(ctx, id, `calling a decision of another tenant (camunda:decisionRefTenantId=${quote(v)}) is not supported; decisions of the process's tenant are called`),
  'camunda:mapDecisionResult': IGNORE,
  // call activities (the supported ones are read by compileCall)
  'camunda:calledElementTenantId': (ctx, id, _o, v) =>
    problem(ctx, id, `calling a process of another tenant (camunda:calledElementTenantId=${quote(v)}) is not supported; call activities call processes of their own tenant`),
  'camunda:caseRef': (ctx, id, _o, v) => problem(ctx, id, `calling CMMN cases (camunda:caseRef=${quote(v)}) is not supported; call a BPMN process with calledElement`),
  'camunda:caseBinding': IGNORE, // only with camunda:caseRef, refused
  'camunda:caseVersion': IGNORE,
  'camunda:caseTenantId': IGNORE,
  'camunda:variableMappingClass': (ctx, id, _o, v) =>
    problem(ctx, id, `Java variable mappings are not supported (camunda:variableMappingClass=${quote(v)}); map variables with camunda:in / camunda:out`),
  'camunda:variableMappingDelegateExpression': (ctx, id, _o, v) =>
    problem(ctx, id, `Java variable mappings are not supported (camunda:variableMappingDelegateExpression=${quote(v)}); map variables with camunda:in / camunda:out`),
};

const listenerRule = (element: string): Rule => (ctx, id, _owner, v) => {
  if (typeof v !== 'object') return;
  const event = str(v, 'camunda:event');
  const on = event !== undefined ? ` event="${event}"` : '';
  for (const attr of ['class', 'delegateExpression', 'expression']) {
    const value = str(v, `camunda:${attr}`);
    if (value !== undefined) {
      problem(ctx, id, `Java delegates are not supported (${element}${on} camunda:${attr}="${value}"); ${EXTERNAL_TASK_HINT}`);
      return;
    }
  }
  const script = kids(v, 'camunda:script')[0];
  if (script !== undefined) {
    const format = str(script, 'camunda:scriptFormat');
    problem(ctx, id, `scripts are not supported (${element}${on} with camunda:script${format !== undefined ? ` scriptFormat="${format}"` : ''})`);
    return;
  }
  problem(ctx, id, `${element} is not supported in this version`);
};

const refuseExtension = (message: string): Rule => (ctx, id) => problem(ctx, id, message);

/** Input/output mappings are read by compileActivity; elsewhere (events, gateways, event subprocesses) they are refused. */
const ioMappingElsewhere = (ext: string): Rule => (ctx, id, owner) => {
  const what = owner.type === 'bpmn:SubProcess' ? 'event subprocesses' : `${xmlName(owner.type)} elements`;
  problem(ctx, id, `input/output mappings (${ext}) on ${what} are not supported in this version; they are supported on tasks, subprocesses and call activities`);
};

/** Extension elements by moddle type. Unlisted camunda:/zeebe: types are refused; other namespaces are ignored with a warning. */
const EXTENSION_RULES: Readonly<Record<string, Rule>> = {
  'camunda:Properties': IGNORE,
  // read on user tasks and the process's none start event (compiler/forms.ts)
  'camunda:FormData': (ctx, id) => warn(ctx, id, 'camunda:formData is read on user tasks and on the none start event of a process only; here it is ignored'),
  'camunda:FormProperty': (ctx, id) => warn(ctx, id, 'camunda:formProperty is read on user tasks and on the none start event of a process only; here it is ignored'),
  'camunda:PotentialStarter': IGNORE,
  'camunda:Field': IGNORE, // field injection belongs to Java delegates, which are refused
  'zeebe:Properties': IGNORE,
  'zeebe:TaskHeaders': IGNORE,
  'zeebe:UserTask': IGNORE,
  'zeebe:FormDefinition': IGNORE,
  'zeebe:UserTaskForm': IGNORE,
  'zeebe:JobPriorityDefinition': IGNORE,
  'zeebe:LinkedResources': IGNORE,
  'camunda:FailedJobRetryTimeCycle': IGNORE, // jobRetry of flow nodes, read by compileJobSettings
  'camunda:InputOutput': ioMappingElsewhere('camunda:inputOutput'),
  'zeebe:IoMapping': ioMappingElsewhere('zeebe:ioMapping'),
  'camunda:In': refuseExtension('camunda:in is only supported on call activities'),
  'camunda:Out': refuseExtension('camunda:out is only supported on call activities'),
  'camunda:ExecutionListener': listenerRule('camunda:executionListener'),
  'camunda:TaskListener': listenerRule('camunda:taskListener'),
  'camunda:Connector': (ctx, id, _owner, v) => {
    const cid = typeof v === 'object' ? str(v, 'camunda:connectorId') : undefined;
    problem(ctx, id, `connectors are not supported (camunda:connector${cid !== undefined ? ` connectorId="${cid}"` : ''}); ${EXTERNAL_TASK_HINT}`);
  },
  'camunda:ErrorEventDefinition': refuseExtension('camunda:errorEventDefinition is only supported on external tasks (service, send and business rule tasks with camunda:type="external" camunda:topic)'),
  'zeebe:ExecutionListeners': refuseExtension('execution listeners are not supported in this version (zeebe:executionListeners)'),
  'zeebe:TaskListeners': refuseExtension('task listeners are not supported in this version (zeebe:taskListeners)'),
  'zeebe:Script': (ctx, id, _owner, v) => {
    const expr = typeof v === 'object' ? str(v, 'zeebe:expression') : undefined;
    problem(ctx, id, `scripts are not supported (zeebe:script${expr !== undefined ? ` expression="${expr}"` : ''}); ${JOB_WORKER_HINT}`);
  },
  'zeebe:CalledDecision': (ctx, id, _owner, v) => {
    const decision = typeof v === 'object' ? str(v, 'zeebe:decisionId') : undefined;
    problem(ctx, id, `zeebe:calledDecision${decision !== undefined ? ` decisionId="${decision}"` : ''} is only supported on business rule tasks`);
  },
};

function isExtensionNamespace(name: string): boolean {
  return name.startsWith('camunda:') || name.startsWith('zeebe:');
}

/**
 * Checks the camunda:/zeebe: attributes and the extension elements of an
 * element; `consumed` names what the element kind's compile function reads itself.
 * Problems name `ownerId` (an event definition's problems name its event).
 */
export function checkExtensions(ctx: FileCtx, el: XNode, consumed: ReadonlySet<string> = NOTHING, ownerId: string | null = idOf(el)): void {
  const id = ownerId;
  for (const [name, value] of Object.entries(el.props)) {
    if (!isExtensionNamespace(name) || consumed.has(name)) continue;
    const rule = ATTRIBUTE_RULES[name] ?? unsupportedAttribute(name);
    rule(ctx, id, el, value);
  }
  for (const ext of extensions(el)) {
    if (consumed.has(ext.type)) continue;
    const rule = EXTENSION_RULES[ext.type];
    if (rule !== undefined) rule(ctx, id, el, ext);
    else if (isExtensionNamespace(ext.type)) problem(ctx, id, `extension element ${xmlName(ext.type)} is not supported in this version`);
    else warn(ctx, id, `extension element ${ext.type} is ignored`);
  }
}
