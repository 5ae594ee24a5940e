/**
 * BPMN compiler: fixtures in test/fixtures/bpmn compiled to graphs (compiler/graph.ts),
 * every problem of every invalid fixture, hostile inputs in bounded time.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { compileBpmn, compileBpmnFiles, formatProblems } from '../../compiler';
import { isIsoDateOrDuration, parseBpmnXml, prescanXml } from '../../compiler/bpmn';
import type { CompiledNode, CompiledProcess, CompiledResource, CompileProblem } from '../../compiler/graph';
import { MAX_FILE_BYTES, MAX_PROBLEMS_PER_FILE } from '../../compiler/limits';
import { lines, model, node } from './compiler-support';

const FIXTURES = path.join(__dirname, '..', 'fixtures', 'bpmn');

function fixture(name: string): Buffer {
  return fs.readFileSync(path.join(FIXTURES, name));
}

interface Compiled {
  resource: CompiledResource;
  process: CompiledProcess;
  warnings: string[];
}

/** Compiles a model that must be valid and contain exactly one executable process. */
async function compileOk(name: string, xml: string | Buffer = fixture(name)): Promise<Compiled> {
  const r = await compileBpmn(name, xml);
  if (!r.ok) throw new Error(`${name} should compile:\n${formatProblems(r.problems)}`);
  expect(r.resource.processes).toHaveLength(1);
  return { resource: r.resource, process: r.resource.processes[0], warnings: lines(r.warnings) };
}

/** The problems (and warnings) of a model that must not compile, formatted one per line. */
async function compileFail(name: string, xml: string | Buffer = fixture(name)): Promise<{ problems: string[]; warnings: string[] }> {
  const r = await compileBpmn(name, xml);
  if (r.ok) throw new Error(`${name} should not compile`);
  expect(r.problems.length).toBeGreaterThan(0);
  return { problems: lines(r.problems), warnings: lines(r.warnings) };
}


async function timed<T>(fn: () => Promise<T>): Promise<{ value: T; ms: number }> {
  const t0 = process.hrtime.bigint();
  const value = await fn();
  return { value, ms: Number(process.hrtime.bigint() - t0) / 1e6 };
}

// ---------------------------------------------------------------------------
// Realistic Camunda Modeler models
// ---------------------------------------------------------------------------

describe('camunda7-order.bpmn (Camunda 7 model)', () => {
  let c: Compiled;
  beforeAll(async () => {
    c = await compileOk('camunda7-order.bpmn');
  });

  test('resource: name, sha256 of the exact bytes, xml, process key/name/versionTag', () => {
    const bytes = fixture('camunda7-order.bpmn');
    expect(c.resource.name).toBe('camunda7-order.bpmn');
    expect(c.resource.hash).toBe(createHash('sha256').update(bytes).digest('hex'));
    expect(c.resource.xml).toBe(bytes.toString('utf8'));
    expect(c.process.key).toBe('order');
    expect(c.process.name).toBe('Order fulfilment');
    expect(c.process.versionTag).toBe('1.2');
    expect(c.process.graph.start).toBe('StartEvent_1');
  });

  test('camunda:historyTimeToLive: days (a whole number or P<n>D) compile to P<n>D; absent: no field; anything else is refused', async () => {
    const withTtl = async (ttl: string | null) =>
      compileBpmnFiles([{ name: 'ttl.bpmn', xml: fixture('camunda7-order.bpmn').toString('utf8').replace(/ camunda:historyTimeToLive="[^"]*"/, '')
        .replace('<bpmn:process id="order"', ttl === null ? '<bpmn:process id="order"' : `<bpmn:process id="order" camunda:historyTimeToLive="${ttl}"`) }]);
    const ok = async (ttl: string | null) => {
      const r = await withTtl(ttl);
      if (!r.ok) throw new Error(formatProblems(r.problems));
      return r.resources[0]?.processes[0]?.historyTimeToLive;
    };
    expect(await ok('180')).toBe('P180D');
    expect(await ok('P30D')).toBe('P30D');
    expect(await ok('0')).toBe('P0D');
    expect(await ok(null)).toBeUndefined();
    const bad = await withTtl('6 months');
    expect(bad.ok ? [] : formatProblems(bad.problems)).toContain(
      'element order: camunda:historyTimeToLive="6 months" is not a number of days (a whole number such as 180, or P180D)');
  });

  test('pgbpm:uniqueBusinessKey (camunda or zeebe extension property of the process): true sets graph.uniqueBusinessKey; false or absent: no field; anything else is refused', async () => {
    const flow = '<startEvent id="s"/><sequenceFlow id="f" sourceRef="s" targetRef="e"/><endEvent id="e"/>';
    const props = (...entries: string[]): string =>
      `<extensionElements><camunda:properties>${entries.map((e) => `<camunda:property ${e}/>`).join('')}</camunda:properties></extensionElements>`;
    const graphOf = async (xml: string) => {
      const r = await compileBpmn('unique.bpmn', xml);
      if (!r.ok) throw new Error(formatProblems(r.problems));
      return r.resource.processes[0].graph;
    };
    const problems = async (xml: string) => {
      const r = await compileBpmn('unique.bpmn', xml);
      return r.ok ? [] : lines(r.problems);
    };
    expect((await graphOf(model(props('name="pgbpm:uniqueBusinessKey" value="true"') + flow))).uniqueBusinessKey).toBe(true);
    expect((await graphOf(model(
      '<extensionElements><zeebe:properties><zeebe:property name="pgbpm:uniqueBusinessKey" value="true"/></zeebe:properties></extensionElements>' + flow,
    ))).uniqueBusinessKey).toBe(true);
    expect(await graphOf(model(props('name="pgbpm:uniqueBusinessKey" value="false"') + flow))).not.toHaveProperty('uniqueBusinessKey');
    expect(await graphOf(model(flow))).not.toHaveProperty('uniqueBusinessKey');
    // other (non-pgbpm) properties are the user's own
    expect(await graphOf(model(props('name="team" value="sales"') + flow))).not.toHaveProperty('uniqueBusinessKey');
    expect(await problems(model(props('name="pgbpm:uniqueBusinessKey" value="yes"') + flow))).toEqual([
      'unique.bpmn: element p: pgbpm:uniqueBusinessKey="yes" must be true or false',
    ]);
    expect(await problems(model(props('name="pgbpm:uniqueBusinessKey" value="true"', 'name="pgbpm:uniqueBusinessKey" value="true"') + flow))).toEqual([
      'unique.bpmn: element p: pgbpm:uniqueBusinessKey is set more than once',
    ]);
    expect(await problems(model(props('name="pgbpm:uniqueKey" value="true"') + flow))).toEqual([
      'unique.bpmn: element p: unknown extension property pgbpm:uniqueKey (camunda:property) on the process; the process\'s pgbpm: property is pgbpm:uniqueBusinessKey',
    ]);
  });

  test('nodes in document order, with types; diagram, annotation, association, properties ignored', () => {
    expect(Object.values(c.process.graph.nodes).map((n) => [n.id, n.type])).toEqual([
      ['StartEvent_1', 'startEvent'],
      ['Task_Review', 'userTask'],
      ['Gateway_Amount', 'exclusiveGateway'],
      ['Task_Charge', 'serviceTask'],
      ['Event_CardDeclined', 'boundaryEvent'],
      ['Task_HandleDecline', 'userTask'],
      ['EndEvent_Cancelled', 'endEvent'],
      ['Task_Invoice', 'manualTask'],
      ['Gateway_Merge', 'exclusiveGateway'],
      ['Gateway_Fork', 'parallelGateway'],
      ['Task_Ship', 'userTask'],
      ['Task_Notify', 'userTask'],
      ['Gateway_Join', 'parallelGateway'],
      ['EndEvent_Done', 'endEvent'],
    ]);
    expect(Object.keys(c.process.graph.flows)).toHaveLength(15);
  });

  test('no warnings (camunda:asyncBefore is compiled)', () => {
    expect(c.warnings).toEqual([]);
  });

  test('exclusive gateway: outgoing flows in document order, default, JUEL conditions', () => {
    expect(node(c.process, 'Gateway_Amount')).toEqual({
      id: 'Gateway_Amount',
      type: 'exclusiveGateway',
      name: 'Payment?',
      in: ['Flow_2'],
      out: ['Flow_Large', 'Flow_Vip', 'Flow_Default'],
      default: 'Flow_Default',
    });
    const flows = c.process.graph.flows;
    expect(flows.Flow_Large).toEqual({
      id: 'Flow_Large',
      source: 'Gateway_Amount',
      target: 'Task_Charge',
      condition: { src: '${amount > 1000}', path: '($."amount" > 1000)', vars: ['amount'] },
    });
    expect(flows.Flow_Vip.condition).toEqual({
      src: "${customerType == 'vip' && orderCount >= 3}",
      path: '(($."customerType" == "vip") && ($."orderCount" >= 3))',
      vars: ['customerType', 'orderCount'],
    });
    expect(flows.Flow_Default.condition).toBeNull();
  });

  test('external service task with an error boundary event (errorRef → errorCode)', () => {
    expect(node(c.process, 'Task_Charge')).toEqual({
      id: 'Task_Charge',
      type: 'serviceTask',
      name: 'Charge credit card',
      in: ['Flow_Large', 'Flow_Vip'],
      out: ['Flow_Charged'],
      default: null,
      boundary: ['Event_CardDeclined'],
      topic: 'charge',
      asyncBefore: true,
    });
    expect(node(c.process, 'Event_CardDeclined')).toEqual({
      id: 'Event_CardDeclined',
      type: 'boundaryEvent',
      name: 'Card declined',
      in: [],
      out: ['Flow_Declined'],
      attachedTo: 'Task_Charge',
      cancelActivity: true,
      error: { code: 'CARD_DECLINED' },
      event: { kind: 'error', code: 'CARD_DECLINED' },
    });
  });

  test('user task specs: literals (lists split and trimmed, P2D, integer priority) and expressions', () => {
    expect(node(c.process, 'Task_Review').userTask).toEqual({
      candidateGroups: { literal: ['sales'] },
      dueDate: { literal: 'P2D' },
      priority: { literal: 70 },
    });
    expect(node(c.process, 'Task_HandleDecline').userTask).toEqual({
      assignee: { expr: { src: '${salesRep}', path: '$."salesRep"', vars: ['salesRep'] } },
    });
    expect(node(c.process, 'Task_Ship').userTask).toEqual({ candidateGroups: { literal: ['warehouse', 'logistics'] } });
    expect(node(c.process, 'Task_Notify').userTask).toEqual({
      candidateUsers: { literal: ['anna', 'bob'] },
      followUpDate: { literal: '2030-01-15T09:00:00Z' },
    });
  });

  test('manual task, merge, parallel fork/join, end events', () => {
    const g = c.process.graph;
    expect(node(c.process, 'Task_Invoice')).toMatchObject({ type: 'manualTask', in: ['Flow_Default'], out: ['Flow_Invoiced'], boundary: [] });
    expect(node(c.process, 'Gateway_Merge')).toMatchObject({ in: ['Flow_Charged', 'Flow_Invoiced'], out: ['Flow_ToFork'], default: null });
    expect(node(c.process, 'Gateway_Fork')).toEqual({
      id: 'Gateway_Fork', type: 'parallelGateway', name: null, in: ['Flow_ToFork'], out: ['Flow_ToShip', 'Flow_ToNotify'],
    });
    expect(node(c.process, 'Gateway_Join')).toEqual({
      id: 'Gateway_Join', type: 'parallelGateway', name: null, in: ['Flow_Shipped', 'Flow_Notified'], out: ['Flow_ToEnd'],
    });
    expect(node(c.process, 'EndEvent_Done')).toEqual({
      id: 'EndEvent_Done', type: 'endEvent', name: 'Order fulfilled', in: ['Flow_ToEnd'], out: [], terminate: false,
    });
    expect(node(c.process, 'StartEvent_1')).toEqual({
      id: 'StartEvent_1', type: 'startEvent', name: 'Order received', in: [], out: ['Flow_1'], form: { key: 'embedded:app:forms/order.html' },
    });
    expect(c.process.startForm).toEqual({ key: 'embedded:app:forms/order.html' });
    expect(g.nodes.Gateway_Join.upstream).toBeUndefined(); // only inclusive joins
  });
});

describe('camunda8-order.bpmn (Camunda 8 model)', () => {
  let c: Compiled;
  beforeAll(async () => {
    c = await compileOk('camunda8-order.bpmn');
  });

  test('process, no warnings, zeebe:versionTag', () => {
    expect(c.warnings).toEqual([]);
    expect(c.process.key).toBe('order-c8');
    expect(c.process.versionTag).toBe('2.0.1');
    expect(c.process.graph.start).toBe('StartEvent_1');
  });

  test('zeebe user task: assignmentDefinition, taskSchedule, priorityDefinition', () => {
    expect(node(c.process, 'Task_Review').userTask).toEqual({
      assignee: { expr: { src: '=owner', path: '$."owner"', vars: ['owner'] } },
      candidateGroups: { literal: ['sales', 'ops'] },
      dueDate: { literal: '2030-06-01T12:00:00+02:00' },
      followUpDate: { expr: { src: '=followUpAt', path: '$."followUpAt"', vars: ['followUpAt'] } },
      priority: { literal: 70 },
    });
    expect(node(c.process, 'Task_Wrap').userTask).toEqual({ candidateUsers: { literal: ['anna', 'ben'] } });
  });

  test('zeebe:taskDefinition type is the topic (service and send tasks)', () => {
    expect(node(c.process, 'Task_Charge')).toMatchObject({ type: 'serviceTask', topic: 'charge', boundary: [] });
    expect(node(c.process, 'Task_BookExpress')).toMatchObject({ type: 'sendTask', topic: 'book-express' });
  });

  test('FEEL conditions', () => {
    const f = c.process.graph.flows;
    expect(f.Flow_Large.condition).toEqual({ src: '=amount > 1000', path: '($."amount" > 1000)', vars: ['amount'] });
    expect(f.Flow_Gift.condition?.src).toBe('=giftWrap = true');
    expect(f.Flow_Express.condition?.vars).toEqual(['express', 'amount']);
    expect(f.Flow_Standard.condition).toBeNull();
  });

  test('inclusive fork (default) and join with upstream', () => {
    expect(node(c.process, 'Gateway_Split')).toEqual({
      id: 'Gateway_Split', type: 'inclusiveGateway', name: 'Shipping options', in: ['Flow_ToSplit'],
      out: ['Flow_Gift', 'Flow_Express', 'Flow_Standard'], default: 'Flow_Standard',
    });
    expect(node(c.process, 'Gateway_Join')).toEqual({
      id: 'Gateway_Join', type: 'inclusiveGateway', name: null,
      in: ['Flow_Wrapped', 'Flow_Booked', 'Flow_Shipped'], out: ['Flow_ToEnd'], default: null,
      upstream: ['StartEvent_1', 'Task_Review', 'Gateway_Amount', 'Task_Charge', 'Gateway_Merge', 'Gateway_Split', 'Task_Wrap', 'Task_BookExpress', 'Task_Standard'],
    });
    expect(node(c.process, 'Gateway_Split').upstream).toBeUndefined(); // one incoming flow
  });

  test('terminate end event, plain task', () => {
    expect(node(c.process, 'EndEvent_Done')).toMatchObject({ type: 'endEvent', terminate: true, in: ['Flow_ToEnd'], out: [] });
    expect(node(c.process, 'Task_Standard')).toMatchObject({ type: 'task', name: 'Standard shipping' });
  });
});

test('camunda7-collaboration.bpmn: pools, lanes, message flow, group; the non-executable pool is skipped; data objects warn', async () => {
  const r = await compileBpmn('camunda7-collaboration.bpmn', fixture('camunda7-collaboration.bpmn'));
  if (!r.ok) throw new Error(formatProblems(r.problems));
  expect(r.resource.processes.map((p) => [p.key, p.name, p.versionTag])).toEqual([['shop', 'Shop', '7']]);
  const g = r.resource.processes[0].graph;
  expect(Object.keys(g.nodes)).toEqual(['StartEvent_Shop', 'Task_Confirm', 'Task_Pack', 'EndEvent_Shop']);
  expect(g.nodes.Task_Confirm.userTask).toEqual({ candidateGroups: { literal: ['sales'] } });
  expect(lines(r.warnings)).toEqual([
    'camunda7-collaboration.bpmn: element Task_Confirm: data associations are ignored (data objects and stores have no semantics in this version)',
    'camunda7-collaboration.bpmn: element DataObjectReference_Order: bpmn:dataObjectReference is ignored (data objects and stores have no semantics in this version)',
    'camunda7-collaboration.bpmn: element DataObject_Order: bpmn:dataObject is ignored (data objects and stores have no semantics in this version)',
  ]);
});

// ---------------------------------------------------------------------------
// Small fixtures used by the engine tests
// ---------------------------------------------------------------------------

describe('engine fixtures', () => {
  test('straight.bpmn: start → task → end (whole graph)', async () => {
    const { process: p, warnings } = await compileOk('straight.bpmn');
    expect(warnings).toEqual([]);
    expect(p).toEqual({
      key: 'straight',
      name: 'Straight',
      versionTag: null,
      graph: {
        start: 'start',
        nodes: {
          start: { id: 'start', type: 'startEvent', name: null, in: [], out: ['f1'] },
          task: { id: 'task', type: 'userTask', name: 'Task', in: ['f1'], out: ['f2'], default: null, boundary: [], userTask: {} },
          end: { id: 'end', type: 'endEvent', name: null, in: ['f2'], out: [], terminate: false },
        },
        flows: {
          f1: { id: 'f1', source: 'start', target: 'task', condition: null },
          f2: { id: 'f2', source: 'task', target: 'end', condition: null },
        },
      },
    });
  });

  test('parallel.bpmn: fork → A, B → join', async () => {
    const { process: p } = await compileOk('parallel.bpmn');
    expect(node(p, 'fork')).toEqual({ id: 'fork', type: 'parallelGateway', name: null, in: ['f1'], out: ['f2', 'f3'] });
    expect(node(p, 'join')).toEqual({ id: 'join', type: 'parallelGateway', name: null, in: ['f4', 'f5'], out: ['f6'] });
    expect([node(p, 'A').type, node(p, 'B').type]).toEqual(['userTask', 'userTask']);
  });

  test('parallel10.bpmn: ten manual tasks between fork and join', async () => {
    const { process: p } = await compileOk('parallel10.bpmn');
    const ten = Array.from({ length: 10 }, (_, i) => i + 1);
    expect(node(p, 'fork').out).toEqual(ten.map((i) => `in${i}`));
    expect(node(p, 'join').in).toEqual(ten.map((i) => `out${i}`));
    for (const i of ten) expect(node(p, `t${i}`)).toMatchObject({ type: 'manualTask', in: [`in${i}`], out: [`out${i}`] });
    expect(Object.values(p.graph.nodes).some((n) => n.type === 'userTask' || n.type === 'serviceTask')).toBe(false);
  });

  test('exclusive.bpmn: conditions in document order, default last', async () => {
    const { process: p } = await compileOk('exclusive.bpmn');
    expect(node(p, 'gw')).toMatchObject({ out: ['toHigh', 'toMid', 'toLow'], default: 'toLow' });
    expect(p.graph.flows.toHigh.condition?.path).toBe('($."amount" > 1000)');
    expect(p.graph.flows.toMid.condition?.path).toBe('($."amount" > 100)');
    expect(node(p, 'merge').in).toEqual(['fromHigh', 'fromMid', 'fromLow']);
  });

  test('inclusive.bpmn: split with default, join upstream', async () => {
    const { process: p } = await compileOk('inclusive.bpmn');
    expect(node(p, 'split')).toMatchObject({ out: ['toA', 'toB', 'toC'], default: 'toC' });
    expect(node(p, 'join')).toMatchObject({ in: ['fromA', 'fromB', 'fromC'], upstream: ['start', 'split', 'A', 'B', 'C'] });
  });

  test('external.bpmn: topic "work", catch-all error boundary → handle', async () => {
    const { process: p } = await compileOk('external.bpmn');
    expect(node(p, 'work')).toEqual({
      id: 'work', type: 'serviceTask', name: 'Work', in: ['f1'], out: ['f2'], default: null, boundary: ['err'], topic: 'work',
    });
    expect(node(p, 'err')).toEqual({
      id: 'err', type: 'boundaryEvent', name: 'Any error', in: [], out: ['f3'], attachedTo: 'work', cancelActivity: true, error: { code: null },
      event: { kind: 'error', code: null },
    });
    expect(node(p, 'handle')).toMatchObject({ type: 'userTask', in: ['f3'], out: ['f4'] });
  });

  test('terminate.bpmn: terminate end event on one branch', async () => {
    const { process: p } = await compileOk('terminate.bpmn');
    expect(node(p, 'kill')).toEqual({ id: 'kill', type: 'endEvent', name: 'Terminate', in: ['f5'], out: [], terminate: true, event: { kind: 'terminate' } });
    expect(node(p, 'endA')).toMatchObject({ terminate: false });
  });
});

// ---------------------------------------------------------------------------
// Invalid fixtures: every problem, exactly
// ---------------------------------------------------------------------------

const JAVA_HINT = 'use an external task (camunda:type="external" camunda:topic="...")';
const JOB_HINT = 'use a job worker (zeebe:taskDefinition type="...")';
const XXE = 'declarations are not allowed in BPMN files (entity expansion / XXE defence)';

const INVALID: Record<string, string[]> = {
  'invalid-empty.bpmn': ['invalid-empty.bpmn: file is empty'],
  'invalid-not-xml.bpmn': ['invalid-not-xml.bpmn: not well-formed XML (line 1, column 1): missing start tag'],
  'invalid-not-bpmn.bpmn': [
    'invalid-not-bpmn.bpmn: not a BPMN 2.0 file: the root element must be <bpmn:definitions> (namespace http://www.omg.org/spec/BPMN/20100524/MODEL)',
  ],
  'invalid-syntax.bpmn': ['invalid-syntax.bpmn: not well-formed XML (line 5, column 3): closing tag mismatch'],
  'invalid-billion-laughs.bpmn': [`invalid-billion-laughs.bpmn: DOCTYPE ${XXE}`, `invalid-billion-laughs.bpmn: ENTITY ${XXE}`],
  'invalid-xxe.bpmn': [`invalid-xxe.bpmn: DOCTYPE ${XXE}`, `invalid-xxe.bpmn: ENTITY ${XXE}`],
  'invalid-not-executable.bpmn': ['invalid-not-executable.bpmn: element draft: no executable process (set isExecutable="true")'],
  'invalid-no-start.bpmn': [
    'invalid-no-start.bpmn: element no-start: process has no start event (a none, message, signal or timer start event is required)',
  ],
  'invalid-two-starts.bpmn': [
    'invalid-two-starts.bpmn: element two-starts: process has 2 none start events (startA, startB); exactly one is supported in this version',
  ],
  'invalid-flows.bpmn': [
    'invalid-flows.bpmn: element fLost: targetRef "Activity_Missing" does not reference an element',
    'invalid-flows.bpmn: element fNoSource: sequence flow without sourceRef',
    'invalid-flows.bpmn: element deadEnd: gateway has no outgoing sequence flow',
    'invalid-flows.bpmn: element end: end event must not have outgoing sequence flows (fBack)',
  ],
  'invalid-gateway-conditions.bpmn': [
    'invalid-gateway-conditions.bpmn: element H: default flow "toNowhere" does not exist',
    'invalid-gateway-conditions.bpmn: element mixed: gateway mixes conditional and unconditional outgoing sequence flows (unconditional: toB); give every outgoing flow except the default flow a condition',
    'invalid-gateway-conditions.bpmn: element toD: sequence flow out of parallel gateway fork must not have a condition',
    'invalid-gateway-conditions.bpmn: element toG: default flow of split must not have a condition',
  ],
  'invalid-java-delegate.bpmn': [
    `invalid-java-delegate.bpmn: element java: Java delegates are not supported (camunda:executionListener event="start" camunda:class="com.acme.ProcessStartListener"); ${JAVA_HINT}`,
    `invalid-java-delegate.bpmn: element classTask: Java delegates are not supported (camunda:class="com.acme.ChargeDelegate"); ${JAVA_HINT}`,
    `invalid-java-delegate.bpmn: element delegateTask: Java delegates are not supported (camunda:delegateExpression="\${chargeDelegate}"); ${JAVA_HINT}`,
    `invalid-java-delegate.bpmn: element expressionTask: Java delegates are not supported (camunda:expression="\${mailer.send(order)}"); ${JAVA_HINT}`,
    `invalid-java-delegate.bpmn: element connectorTask: connectors are not supported (camunda:connector connectorId="http-connector"); ${JAVA_HINT}`,
    'invalid-java-delegate.bpmn: element dmnTask: camunda:mapDecisionResult="firstEntry" is not one of singleEntry, singleResult, collectEntries, resultList',
    `invalid-java-delegate.bpmn: element scriptTask: script tasks are only supported with FEEL or JUEL expressions (zeebe:script, scriptFormat="feel" or "juel") (scriptFormat="groovy"); ${JAVA_HINT}`,
    'invalid-java-delegate.bpmn: element listenerTask: scripts are not supported (camunda:taskListener event="create" with camunda:script scriptFormat="javascript")',
    `invalid-java-delegate.bpmn: element listenerTask: Java delegates are not supported (camunda:executionListener event="end" camunda:delegateExpression="\${auditListener}"); ${JAVA_HINT}`,
    'invalid-java-delegate.bpmn: element ioTask: scripts are not supported (camunda:script scriptFormat="groovy" in camunda:inputParameter "total")',
  ],
  'invalid-zeebe-code.bpmn': [
    'invalid-zeebe-code.bpmn: element feelScript: zeebe:script without a resultVariable',
    'invalid-zeebe-code.bpmn: element decide: zeebe:calledDecision without a resultVariable',
    'invalid-zeebe-code.bpmn: element mapped: execution listeners are not supported in this version (zeebe:executionListeners)',
    'invalid-zeebe-code.bpmn: element dynamic: zeebe:taskDefinition type: cannot compile expression "=jobType +": syntax error: unexpected end of expression',
  ],
  'invalid-unsupported-elements.bpmn': [
    'invalid-unsupported-elements.bpmn: element receive: receive task does not reference a message (set messageRef to a bpmn:message)',
    'invalid-unsupported-elements.bpmn: element complex: element type bpmn:complexGateway is not supported in this version',
    'invalid-unsupported-elements.bpmn: element looped: a standard loop needs a loopCondition or a loopMaximum (without either it never ends)',
    'invalid-unsupported-elements.bpmn: element nonInterrupting: error boundary events are always interrupting (cancelActivity="false" is invalid BPMN)',
    'invalid-unsupported-elements.bpmn: element messageEnd: message end event needs a message to publish (messageRef) or an implementation: camunda:type=external + camunda:topic or zeebe:taskDefinition',
    'invalid-unsupported-elements.bpmn: element onGateway: attachedToRef "race" is not an activity (bpmn:eventBasedGateway); boundary events are attached to tasks, subprocesses and call activities',
    'invalid-unsupported-elements.bpmn: element compensation: compensation boundary event is not connected to a compensation handler (draw an association from it to an activity with isForCompensation="true")',
  ],
  'invalid-events.bpmn': [
    'invalid-events.bpmn: element dynamicStart: message start events need a literal message name, not an expression (bpmn:message Message_Dynamic name="${startMessage}")',
    'invalid-events.bpmn: element timerStart: timeDate="${startAt}": timer start events are scheduled when the process is deployed, without process variables; write a literal',
    'invalid-events.bpmn: element signalStart: signal start events need a literal signal name, not an expression (bpmn:signal Signal_Dynamic name="${startSignal}")',
    'invalid-events.bpmn: element cancelEnd: cancel end events are only allowed directly inside a transaction (bpmn:transaction); this one is in process invalid-events',
    'invalid-events.bpmn: element wordyDuration: timeDuration="5 minutes" is not an ISO 8601 duration (e.g. PT5M, P1DT12H, P2W)',
    'invalid-events.bpmn: element dateOnly: timeDate="2030-01-15" is not an ISO 8601 date-time (e.g. 2030-01-15T09:00:00Z)',
    'invalid-events.bpmn: element lastDay: timeCycle="0 0 12 L * ?" is not a supported cron expression: day-of-month "L" uses L, W or #, which are not supported',
    'invalid-events.bpmn: element dayNumbers: timeCycle="0 0 9 ? * 2-6" is not a supported cron expression: day-of-week "2-6" uses day numbers, which Quartz (1 = SUN) and Spring (0 = SUN) read differently; write day names (SUN-SAT, e.g. MON-FRI)',
    'invalid-events.bpmn: element zeroRepeat: timeCycle="R/PT0S" repeats every PT0S; the interval must be longer than zero',
    'invalid-events.bpmn: element noTime: timer event without timeDate, timeDuration or timeCycle',
    'invalid-events.bpmn: element badTimerExpression: timeDuration: cannot compile expression "${delay +}": unexpected end of expression',
    'invalid-events.bpmn: element noDefinition: intermediate catch event without event definition (a message, timer, signal or link event definition is required)',
    'invalid-events.bpmn: element noMessage: message intermediate catch event does not reference a message (set messageRef to a bpmn:message)',
    'invalid-events.bpmn: element lostMessage: messageRef "Message_Missing" does not reference a bpmn:message',
    'invalid-events.bpmn: element Message_Nameless: bpmn:message without name',
    'invalid-events.bpmn: element noSignal: signal intermediate catch event does not reference a signal (set signalRef to a bpmn:signal)',
    'invalid-events.bpmn: element codelessEscalation: escalation intermediate throw event: bpmn:escalation Escalation_NoCode has no escalationCode',
    'invalid-events.bpmn: element noEscalation: escalation end event does not reference an escalation (set escalationRef to a bpmn:escalation with an escalationCode)',
    'invalid-events.bpmn: element Error_Dynamic: errorCode="${errorCode}": expressions are not supported here; write a literal code',
    `invalid-events.bpmn: element javaMessage: Java delegates are not supported (camunda:class="com.acme.SendMessage"); ${JAVA_HINT}`,
    `invalid-events.bpmn: element expressionSend: Java delegates are not supported (camunda:expression="\${mailer.send(order)}"); ${JAVA_HINT}`,
    'invalid-events.bpmn: element bareSend: send task needs a message to publish (messageRef) or an implementation: camunda:type=external + camunda:topic or zeebe:taskDefinition',
    'invalid-events.bpmn: element plainKey: camunda:property correlationKey="orderId" is not an expression; write =name to correlate on a variable, or ="orderId" for a constant key',
    'invalid-events.bpmn: element review: camunda:failedJobRetryTimeCycle="PT5M,PT10M" lists of retry intervals are not supported; write R<retries>/<ISO 8601 duration> (e.g. R3/PT5M)',
    'invalid-events.bpmn: element review: unknown extension property pgbpm:escalateTo (camunda:property); the pgbpm: properties are pgbpm:escalateAfter, pgbpm:escalateToGroups, pgbpm:escalateToAssignee, pgbpm:outputCollection, pgbpm:outputElement',
    'invalid-events.bpmn: element review: pgbpm:escalateAfter="tomorrow" is not an ISO 8601 duration (e.g. PT4H, P1D)',
    'invalid-events.bpmn: element errorVariable: camunda:errorCodeVariable="${code}" must be a variable name',
    'invalid-events.bpmn: element approve: camunda:failedJobRetryTimeCycle="R3" is not R<retries>/<ISO 8601 duration> (e.g. R3/PT5M)',
    'invalid-events.bpmn: element approve: pgbpm:escalateToGroups without pgbpm:escalateAfter (when the task escalates)',
    'invalid-events.bpmn: element race: event-based gateways that start the process (instantiate="true") are not supported; use message, signal or timer start events',
    'invalid-events.bpmn: element receipt: receive tasks that start the process (instantiate="true") are not supported; use a message start event',
    'invalid-events.bpmn: element cancelB: several message boundary events on review wait for message "cancel"',
    'invalid-events.bpmn: element lateB: several escalation boundary events on review catch escalationCode "LATE"',
    'invalid-events.bpmn: element toPaid: sequence flow out of event-based gateway race must not have a condition',
    'invalid-events.bpmn: element race: event-based gateway: paid and paidAgain both wait for message "paid"',
    'invalid-events.bpmn: element race: event-based gateway: sequence flow toApprove leads to bpmn:userTask approve; every outgoing sequence flow must lead to an intermediate catch event (message, timer, signal or condition) or a receive task',
    'invalid-events.bpmn: element race: event-based gateway: receipt (after sequence flow toReceipt) must have no other incoming sequence flow (alsoReceipt)',
    'invalid-events.bpmn: element orderStartB: message start events orderStartA and orderStartB both wait for message "order"; the message names of start events must be unique in a process',
  ],
  'invalid-service-task.bpmn': [
    'invalid-service-task.bpmn: element noImpl: service task needs an implementation: camunda:type=external + camunda:topic or zeebe:taskDefinition',
    'invalid-service-task.bpmn: element noTopic: external task without topic (set camunda:topic)',
    'invalid-service-task.bpmn: element topicOnly: camunda:topic without camunda:type="external"',
    'invalid-service-task.bpmn: element exprTopic: camunda:topic: cannot compile expression "${topicName +}": unexpected end of expression',
  ],
  'invalid-expressions.bpmn': [
    'invalid-expressions.bpmn: element A: camunda:assignee: cannot compile expression "${user.}": expected a property name but found end of expression',
    'invalid-expressions.bpmn: element A: camunda:dueDate="tomorrow" is not an ISO 8601 date-time, date or duration (P…)',
    'invalid-expressions.bpmn: element A: camunda:followUpDate="2030-02-30" is not an ISO 8601 date-time, date or duration (P…)',
    'invalid-expressions.bpmn: element A: camunda:priority="high" is not an integer',
    'invalid-expressions.bpmn: element B: camunda:candidateGroups: cannot compile expression "${groups(}": function calls are not supported',
    'invalid-expressions.bpmn: element toA: conditionExpression: cannot compile expression "${amount >}": unexpected end of expression',
  ],
  'invalid-references.bpmn': [
    'invalid-references.bpmn: element work: unknown attribute camunda:retries="3"',
    'invalid-references.bpmn: element work: id "work" is used by more than one element (line 13)',
    'invalid-references.bpmn: element caught: errorRef "Error_Missing" does not reference a bpmn:error',
    'invalid-references.bpmn: element floating: attachedToRef "Activity_Gone" does not reference an element',
    'invalid-references.bpmn: element gw: default flow "Flow_Gone" does not exist',
  ],
};

describe('invalid fixtures: all problems, exactly', () => {
  test('every invalid-*.bpmn fixture is listed', () => {
    const files = fs.readdirSync(FIXTURES).filter((f) => f.startsWith('invalid-')).sort();
    expect(files).toEqual(Object.keys(INVALID).sort());
  });

  test.each(Object.entries(INVALID))('%s', async (name, expected) => {
    const { problems } = await compileFail(name);
    expect(problems).toEqual(expected);
  });
});

// ---------------------------------------------------------------------------
// Hostile input
// ---------------------------------------------------------------------------

describe('hostile input is refused in bounded time', () => {
  const BOUND_MS = 5000; // generous: the real cost is milliseconds (prescan) to ~1 s (worst parse)
  const HEAD = '<?xml version="1.0" encoding="UTF-8"?><bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="d"><bpmn:process id="p" isExecutable="true">';
  const TAIL = '</bpmn:process></bpmn:definitions>';

  const cases: Array<[string, () => string | Buffer, string]> = [
    ['an ENTITY without DOCTYPE', () => HEAD.replace('<bpmn:process', '<!ENTITY x "y"><bpmn:process') + TAIL, `h.bpmn: ENTITY ${XXE}`],
    ['larger than 5 MB', () => HEAD + ' '.repeat(MAX_FILE_BYTES) + TAIL, `h.bpmn: file is larger than 5 MB (${MAX_FILE_BYTES + HEAD.length + TAIL.length} bytes)`],
    ['nesting deeper than 100', () => HEAD + '<a>'.repeat(200_000), 'h.bpmn: XML elements are nested deeper than 100 levels'],
    ['100 001 elements', () => HEAD + '<a/>'.repeat(100_001) + TAIL, 'h.bpmn: file has more than 100000 XML elements'],
    ['an element with 10 000 attributes', () => HEAD + `<bpmn:task id="t" ${Array.from({ length: 10_000 }, (_, i) => `a${i}="1"`).join(' ')}/>` + TAIL,
      'h.bpmn: an XML element has more than 500 attributes'],
    ['an unterminated 4 MB attribute', () => HEAD + '<bpmn:task id="t" name="' + 'x'.repeat(4_000_000),
      `h.bpmn: not well-formed XML (line 1, column ${HEAD.length + 1}): unclosed tag`],
    ['an unterminated 4 MB comment', () => HEAD + '<!--' + '-'.repeat(4_000_000),
      `h.bpmn: not well-formed XML (line 1, column ${HEAD.length + 1}): unclosed comment`],
    ['invalid UTF-8', () => Buffer.concat([Buffer.from(HEAD), Buffer.from([0xc3, 0x28]), Buffer.from(TAIL)]), 'h.bpmn: file is not valid UTF-8 (BPMN files must be UTF-8 encoded)'],
    ['UTF-16', () => Buffer.from('\ufeff' + HEAD + TAIL, 'utf16le'), 'h.bpmn: file is not valid UTF-8 (BPMN files must be UTF-8 encoded)'],
  ];

  test.each(cases)('%s', async (_what, make, expected) => {
    const xml = make();
    const { value: r, ms } = await timed(() => compileBpmn('h.bpmn', xml));
    expect(r.ok).toBe(false);
    if (!r.ok) expect(lines(r.problems)).toEqual([expected]);
    expect(ms).toBeLessThan(BOUND_MS);
  });

  test('billion laughs', async () => {
    const { value: r, ms } = await timed(() => compileBpmn('h.bpmn', fixture('invalid-billion-laughs.bpmn')));
    expect(r.ok).toBe(false);
    if (!r.ok) expect(lines(r.problems)).toEqual([`h.bpmn: DOCTYPE ${XXE}`, `h.bpmn: ENTITY ${XXE}`]);
    expect(ms).toBeLessThan(BOUND_MS);
  });

  test('a 4.9 MB attribute and 300 000 character references parse quickly', async () => {
    for (const xml of [
      HEAD + `<bpmn:startEvent id="s" name="${'a'.repeat(4_900_000)}"/>` + TAIL,
      HEAD + `<bpmn:startEvent id="s" name="${'&amp;&#x41;&lt;'.repeat(300_000)}"/>` + TAIL,
    ]) {
      const { value: r, ms } = await timed(() => compileBpmn('h.bpmn', xml));
      expect(r.ok).toBe(true);
      expect(ms).toBeLessThan(BOUND_MS);
    }
  });

  test('chained inclusive joins: the upstream lists are budgeted', async () => {
    let body = '<bpmn:startEvent id="s"/><bpmn:sequenceFlow id="f0" sourceRef="s" targetRef="g0"/>';
    const n = 3000;
    for (let i = 0; i < n; i++) {
      body += `<bpmn:inclusiveGateway id="g${i}"/><bpmn:sequenceFlow id="a${i}" sourceRef="g${i}" targetRef="g${i + 1}"/><bpmn:sequenceFlow id="b${i}" sourceRef="g${i}" targetRef="g${i + 1}"/>`;
    }
    body += `<bpmn:inclusiveGateway id="g${n}"/><bpmn:sequenceFlow id="fe" sourceRef="g${n}" targetRef="e"/><bpmn:endEvent id="e"/>`;
    const { value: r, ms } = await timed(() => compileBpmn('h.bpmn', HEAD + body + TAIL));
    expect(r.ok).toBe(false);
    if (!r.ok) {
      expect(r.problems).toHaveLength(1);
      expect(r.problems[0].message).toBe('the inclusive gateway joins of process p are too large to compile (more than 1000000 upstream entries in total)');
    }
    expect(ms).toBeLessThan(BOUND_MS);
  });

  test('the parser runs under a time limit (worker terminated)', async () => {
    // moddle rescans the text for the line of every warning: quadratic in unknown elements.
    const xml = HEAD + Array.from({ length: 30_000 }, (_, i) => `<bpmn:foo id="x${i}"/>\n`).join('') + TAIL;
    const { value: r, ms } = await timed(() => parseBpmnXml(xml, 200));
    expect(r).toEqual({ ok: false, message: 'parsing did not finish within 0.2 s; the file is too large or too complex' });
    expect(ms).toBeLessThan(BOUND_MS);
  });

  test(`at most ${MAX_PROBLEMS_PER_FILE} problems per file, then a count`, async () => {
    const body = '<bpmn:startEvent id="s"/>' + Array.from({ length: 600 }, (_, i) => `<bpmn:subProcess id="x${i}"/>`).join('');
    const r = await compileBpmn('h.bpmn', HEAD + body + TAIL);
    if (r.ok) throw new Error('should fail');
    expect(r.problems).toHaveLength(MAX_PROBLEMS_PER_FILE + 1);
    expect(r.problems[MAX_PROBLEMS_PER_FILE - 1].elementId).toBe(`x${MAX_PROBLEMS_PER_FILE - 1}`);
    expect(r.problems[MAX_PROBLEMS_PER_FILE]).toEqual({ file: 'h.bpmn', elementId: null, message: '100 more not shown' });
  });

  test('prescan: comments, CDATA and quoted ">" do not confuse the depth count', () => {
    expect(prescanXml('<a><!-- <b><c><d> --><![CDATA[<x><y>]]><e x="<>"/></a>')).toEqual([]);
    expect(prescanXml('   \n ')).toEqual(['file is empty']);
    expect(prescanXml('<a>'.repeat(100))).toEqual([]);
    expect(prescanXml('<a>'.repeat(101))).toEqual(['XML elements are nested deeper than 100 levels']);
  });
});

// ---------------------------------------------------------------------------
// Semantics on small inline models
// ---------------------------------------------------------------------------

describe('semantics', () => {
  const start = '<startEvent id="s"/><sequenceFlow id="f0" sourceRef="s" targetRef="t"/>';

  test('inline model in the default namespace (as the engine tests write them)', async () => {
    const { process: p } = await compileOk('inline.bpmn', model(`${start}<task id="t"/>`));
    expect(p.graph.start).toBe('s');
    expect(node(p, 't')).toEqual({ id: 't', type: 'task', name: null, in: ['f0'], out: [], default: null, boundary: [] });
  });

  test('conditional flows out of an activity, with a default flow', async () => {
    const { process: p, warnings } = await compileOk('inline.bpmn', model(`${start}
      <userTask id="t" default="fd"/>
      <sequenceFlow id="fa" sourceRef="t" targetRef="a"><conditionExpression xsi:type="tFormalExpression">\${x &gt; 1}</conditionExpression></sequenceFlow>
      <sequenceFlow id="fb" sourceRef="t" targetRef="b"/>
      <sequenceFlow id="fd" sourceRef="t" targetRef="c"/>
      <endEvent id="a"/><endEvent id="b"/><endEvent id="c"/>`));
    expect(warnings).toEqual([]);
    expect(node(p, 't')).toMatchObject({ out: ['fa', 'fb', 'fd'], default: 'fd' });
    expect(p.graph.flows.fa.condition?.vars).toEqual(['x']);
    expect(p.graph.flows.fb.condition).toBeNull();
  });

  test('flow order is the document order of the sequenceFlow elements, not of incoming/outgoing', async () => {
    const { process: p } = await compileOk('inline.bpmn', model(`${start}
      <exclusiveGateway id="t"><outgoing>f2</outgoing><outgoing>f1</outgoing></exclusiveGateway>
      <sequenceFlow id="f1" sourceRef="t" targetRef="e"/>
      <sequenceFlow id="f2" sourceRef="t" targetRef="e"/>
      <endEvent id="e"/>`));
    expect(node(p, 't').out).toEqual(['f1', 'f2']);
    expect(node(p, 'e').in).toEqual(['f1', 'f2']);
  });

  test('exclusive gateway with several unconditional flows: warning (only the first is taken)', async () => {
    const { warnings } = await compileOk('inline.bpmn', model(`${start}
      <exclusiveGateway id="t"/>
      <sequenceFlow id="f1" sourceRef="t" targetRef="e"/><sequenceFlow id="f2" sourceRef="t" targetRef="e"/>
      <endEvent id="e"/>`));
    expect(warnings).toEqual(['inline.bpmn: element t: exclusive gateway has several unconditional outgoing sequence flows (f1, f2); only the first is ever taken']);
  });

  test('unreachable elements and unknown attributes warn; legacy camunda:async is asyncBefore', async () => {
    const { process: p, warnings } = await compileOk('inline.bpmn', model(`${start}
      <task id="t" foo="bar" camunda:async="true"/><task id="island"/>`));
    expect(warnings).toEqual([
      'inline.bpmn: element t: unknown attribute foo is ignored',
      'inline.bpmn: element island: element has no incoming sequence flow and is never reached',
    ]);
    expect(node(p, 't').asyncBefore).toBe(true);
  });

  test('camunda:jobPriority: of the element, else of the process for elements that create jobs; expressions compiled, non-integers refused', async () => {
    const xml = model(`${start}
      <task id="t"/><sequenceFlow id="ft" sourceRef="t" targetRef="a"/>
      <task id="a" camunda:asyncBefore="true" camunda:jobPriority="20"/><sequenceFlow id="fa" sourceRef="a" targetRef="b"/>
      <task id="b" camunda:asyncAfter="true"/><sequenceFlow id="fb" sourceRef="b" targetRef="c"/>
      <task id="c" camunda:asyncBefore="true" camunda:jobPriority="\${prio}"/><sequenceFlow id="fc" sourceRef="c" targetRef="d"/>
      <task id="d"/>`).replace('isExecutable="true"', 'isExecutable="true" camunda:jobPriority="5"');
    const { process: p, warnings } = await compileOk('inline.bpmn', xml);
    expect([node(p, 'a').jobPriority, node(p, 'b').jobPriority, node(p, 'c').jobPriority, node(p, 'd').jobPriority]).toEqual([
      20, 5, { expr: { src: '${prio}', path: '$."prio"', vars: ['prio'] } }, undefined]);
    expect(warnings).toEqual([]);
    expect((await compileFail('inline.bpmn', model(`${start}<task id="t" camunda:asyncBefore="true" camunda:jobPriority="high"/>`))).problems).toEqual([
      'inline.bpmn: element t: camunda:jobPriority="high" is not an integer',
    ]);
  });

  test('harmless extensions and attributes are ignored', async () => {
    const { warnings } = await compileOk('inline.bpmn', model(`${start}
      <userTask id="t" camunda:jobPriority="5" camunda:exclusive="false"
          zeebe:modelerTemplate="tpl" camunda:modelerTemplate="tpl2" xmlns:my="http://example.org/my" my:note="foreign namespaces are ignored">
        <documentation>docs</documentation>
        <extensionElements>
          <camunda:properties><camunda:property name="a" value="b"/></camunda:properties>
          <zeebe:properties><zeebe:property name="a" value="b"/></zeebe:properties>
          <zeebe:taskHeaders><zeebe:header key="k" value="v"/></zeebe:taskHeaders>
          <zeebe:userTask/>
        </extensionElements>
      </userTask>`));
    expect(warnings).toEqual([]);
  });

  test('user task values: zeebe FEEL string lists are literals, other FEEL lists are expressions, camunda + zeebe conflict', async () => {
    const { process: p } = await compileOk('inline.bpmn', model(`${start}
      <userTask id="t"><extensionElements>
        <zeebe:assignmentDefinition assignee="demo" candidateUsers="=[&quot;a&quot;,&quot;b, c&quot;]" candidateGroups="=groups"/>
        <zeebe:taskSchedule dueDate="2030-01-01" followUpDate="P1DT12H"/>
        <zeebe:priorityDefinition priority="=prio"/>
      </extensionElements></userTask>`));
    expect(node(p, 't').userTask).toEqual({
      assignee: { literal: 'demo' },
      candidateUsers: { literal: ['a', 'b, c'] },
      candidateGroups: { expr: { src: '=groups', path: '$."groups"', vars: ['groups'] } },
      dueDate: { literal: '2030-01-01' },
      followUpDate: { literal: 'P1DT12H' },
      priority: { expr: { src: '=prio', path: '$."prio"', vars: ['prio'] } },
    });
    const { problems } = await compileFail('inline.bpmn', model(`${start}
      <userTask id="t" camunda:assignee="x"><extensionElements><zeebe:assignmentDefinition assignee="y"/></extensionElements></userTask>`));
    expect(problems).toEqual(['inline.bpmn: element t: assignee is set more than once (camunda:assignee, zeebe:assignmentDefinition assignee)']);
  });

  test('error boundary events: errorRef to an error without code is catch-all; one event per code', async () => {
    const errors = '<error id="E1"/><error id="E2" errorCode="X"/>';
    const { process: p } = await compileOk('inline.bpmn', model(`${start}
      <serviceTask id="t" camunda:type="external" camunda:topic="w"/>
      <boundaryEvent id="b1" attachedToRef="t"><errorEventDefinition errorRef="E1"/></boundaryEvent>
      <boundaryEvent id="b2" attachedToRef="t"><errorEventDefinition errorRef="E2"/></boundaryEvent>`, errors));
    expect(node(p, 't').boundary).toEqual(['b1', 'b2']);
    expect([node(p, 'b1').error, node(p, 'b2').error]).toEqual([{ code: null }, { code: 'X' }]);
    const { problems } = await compileFail('inline.bpmn', model(`${start}
      <serviceTask id="t" camunda:type="external" camunda:topic="w"/>
      <boundaryEvent id="b1" attachedToRef="t"><errorEventDefinition errorRef="E2"/></boundaryEvent>
      <boundaryEvent id="b2" attachedToRef="t"><errorEventDefinition errorRef="E2"/></boundaryEvent>
      <boundaryEvent id="b3" attachedToRef="t"><errorEventDefinition errorRef="s"/></boundaryEvent>
      <sequenceFlow id="fx" sourceRef="s" targetRef="b3"/>`, errors));
    expect(problems).toEqual([
      'inline.bpmn: element b3: errorRef "s" does not reference a bpmn:error',
      'inline.bpmn: element b2: several error boundary events on t catch errorCode "X"',
      'inline.bpmn: element b3: boundary event must not have incoming sequence flows (fx)',
    ]);
  });

  test('upstream of an inclusive join goes through boundary events to their activity, and around loops', async () => {
    const { process: p } = await compileOk('inline.bpmn', model(`${start}
      <inclusiveGateway id="t"/>
      <sequenceFlow id="f1" sourceRef="t" targetRef="w"/><sequenceFlow id="f2" sourceRef="t" targetRef="u"/>
      <serviceTask id="w" camunda:type="external" camunda:topic="w"/>
      <boundaryEvent id="b" attachedToRef="w"><errorEventDefinition/></boundaryEvent>
      <userTask id="u"/>
      <sequenceFlow id="f3" sourceRef="b" targetRef="join"/><sequenceFlow id="f4" sourceRef="u" targetRef="join"/>
      <inclusiveGateway id="join"/>
      <sequenceFlow id="f5" sourceRef="join" targetRef="again"/>
      <exclusiveGateway id="again" default="f7"/>
      <sequenceFlow id="f6" sourceRef="again" targetRef="u"><conditionExpression>\${retry}</conditionExpression></sequenceFlow>
      <sequenceFlow id="f7" sourceRef="again" targetRef="e"/>
      <endEvent id="e"/>`));
    expect(node(p, 'join').upstream).toEqual(['s', 't', 'w', 'b', 'u', 'again']);
  });

  test('conditions out of events are refused; script conditions are refused', async () => {
    const { problems } = await compileFail('inline.bpmn', model(`
      <startEvent id="s"/>
      <sequenceFlow id="f0" sourceRef="s" targetRef="t"><conditionExpression>\${a}</conditionExpression></sequenceFlow>
      <task id="t"/>
      <sequenceFlow id="f1" sourceRef="t" targetRef="e"><conditionExpression language="groovy">a == 1</conditionExpression></sequenceFlow>
      <sequenceFlow id="f2" sourceRef="t" targetRef="e"><conditionExpression>a == 1</conditionExpression></sequenceFlow>
      <endEvent id="e"/>`));
    expect(problems).toEqual([
      'inline.bpmn: element f1: script conditions are not supported (language="groovy")',
      'inline.bpmn: element f2: conditionExpression "a == 1" is not an expression (write ${...} or =...)',
      'inline.bpmn: element f0: conditions are only allowed on sequence flows out of activities and exclusive/inclusive gateways (source s is a bpmn:startEvent)',
    ]);
  });

  test('no process at all; several executable processes compile together', async () => {
    const empty = '<?xml version="1.0"?><definitions xmlns="http://www.omg.org/spec/BPMN/20100524/MODEL" id="d"/>';
    expect((await compileFail('empty.bpmn', empty)).problems).toEqual(['empty.bpmn: no executable process (set isExecutable="true")']);
    const two = model(`${start}<task id="t"/>`).replace('</process>', `</process>
      <process id="q" isExecutable="true"><startEvent id="qs"/></process>`);
    const r = await compileBpmn('two.bpmn', two);
    expect(r.ok && r.resource.processes.map((p) => p.key)).toEqual(['p', 'q']);
  });

  test('UTF-8 BOM is accepted; a string and its UTF-8 bytes hash alike', async () => {
    const xml = model(`${start}<task id="t" name="Überprüfung"/>`);
    const a = await compileBpmn('a.bpmn', xml);
    const b = await compileBpmn('b.bpmn', Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(xml)]));
    if (!a.ok || !b.ok) throw new Error('should compile');
    expect(a.resource.hash).toBe(createHash('sha256').update(Buffer.from(xml, 'utf8')).digest('hex'));
    expect(b.resource.hash).not.toBe(a.resource.hash); // exact bytes, BOM included
    expect(b.resource.xml).toBe(xml);
    expect(b.resource.processes[0].graph.nodes.t.name).toBe('Überprüfung');
  });

  test('ISO 8601 literals', () => {
    for (const ok of ['P2D', 'PT1H30M', 'P1Y2M3DT4H5M6S', 'P1W', 'PT0.5S', '2030-01-15', '2030-01-15T09:00', '2030-01-15T09:00:00Z', '2030-01-15T09:00:00.123+01:00', '2030-01-15T09:00:00-1400', '2028-02-29']) {
      expect([ok, isIsoDateOrDuration(ok)]).toEqual([ok, true]);
    }
    for (const bad of ['P', 'PT', 'P1H', 'tomorrow', '2030-13-01', '2030-02-30', '2029-02-29', '2030-01-15T25:00', '2030-01-15T09:00:00+25:00', '2030-01-15T09:00:00+01:60', '15.01.2030', '']) {
      expect([bad, isIsoDateOrDuration(bad)]).toEqual([bad, false]);
    }
  });
});

// ---------------------------------------------------------------------------
// Several files, formatting
// ---------------------------------------------------------------------------

describe('compileBpmnFiles', () => {
  test('compiles all files, resources in the given order, warnings of all files', async () => {
    const r = await compileBpmnFiles(['straight.bpmn', 'camunda7-order.bpmn', 'parallel.bpmn'].map((name) => ({ name, xml: fixture(name) })));
    if (!r.ok) throw new Error(formatProblems(r.problems));
    expect(r.resources.map((x) => [x.name, x.processes.map((p) => p.key)])).toEqual([
      ['straight.bpmn', ['straight']],
      ['camunda7-order.bpmn', ['order']],
      ['parallel.bpmn', ['parallel']],
    ]);
    expect(r.warnings).toEqual([]);
  });

  test('collects every problem of every file', async () => {
    const names = ['invalid-flows.bpmn', 'straight.bpmn', 'invalid-java-delegate.bpmn', 'invalid-empty.bpmn'];
    const r = await compileBpmnFiles(names.map((name) => ({ name, xml: fixture(name) })));
    if (r.ok) throw new Error('should fail');
    expect(lines(r.problems)).toEqual([...INVALID['invalid-flows.bpmn'], ...INVALID['invalid-java-delegate.bpmn'], ...INVALID['invalid-empty.bpmn']]);
  });

  test('process ids and file names must be unique in a deployment', async () => {
    const straight = fixture('straight.bpmn');
    const r = await compileBpmnFiles([
      { name: 'a.bpmn', xml: straight },
      { name: 'b.bpmn', xml: straight.toString('utf8') },
      { name: 'a.bpmn', xml: fixture('parallel.bpmn') },
    ]);
    if (r.ok) throw new Error('should fail');
    expect(lines(r.problems)).toEqual([
      'a.bpmn: file name appears more than once in the deployment',
      'b.bpmn: element straight: process id "straight" is also defined in a.bpmn',
    ]);
  });
});

test('formatProblems: one line per problem', () => {
  expect(formatProblems([
    { file: 'a.bpmn', elementId: 'Task_1', message: 'bad\nthing' },
    { file: 'b.bpmn', elementId: null, message: 'file is empty' },
  ])).toBe('a.bpmn: element Task_1: bad thing\nb.bpmn: file is empty');
  expect(formatProblems([])).toBe('');
});

describe('candidate starters', () => {
  const withStarters = (attributes: string): string => model('<startEvent id="s"/>').replace('<process id="p" isExecutable="true">', `<process id="p" isExecutable="true" ${attributes}>`);

  test('camunda:candidateStarterUsers / Groups are kept as lists of names', async () => {
    const { process: p, warnings } = await compileOk('inline.bpmn', withStarters('camunda:candidateStarterUsers="ann, bob" camunda:candidateStarterGroups=" sales "'));
    expect(warnings).toEqual([]);
    expect(p).toMatchObject({ candidateStarterUsers: ['ann', 'bob'], candidateStarterGroups: ['sales'] });
    const { process: none } = await compileOk('inline.bpmn', withStarters(''));
    expect(none.candidateStarterUsers).toBeUndefined();
  });

  test('an expression is refused', async () => {
    const { problems } = await compileFail('inline.bpmn', withStarters('camunda:candidateStarterGroups="${groups}"'));
    expect(problems).toEqual(['inline.bpmn: element p: camunda:candidateStarterGroups="${groups}" must be a comma-separated list of names; expressions are not supported here']);
  });
});
