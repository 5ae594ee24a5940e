/**
 * BPMN compiler, issue 5: embedded and event subprocesses (scopes), call
 * activities, multi-instance, input/output mappings and link events, compiled
 * to graph.ts (scope, start, triggeredByEvent, interrupting,
 * eventSubprocesses, inputs/outputs, loop, call, link events), and what is
 * still refused (compensation and transactions:
 * bpmn-compiler-compensation.test.ts). The fixtures under
 * test/fixtures/bpmn/scopes/ are deployed by the engine tests.
 */
import { around, compileOk, fixture, model, node, problemsOf } from './compiler-support';

function read(src: string, name: string, required = true): { expr: { src: string; path: string; vars: string[] } } {
  return { expr: { src, path: `$."${name}"`, vars: required ? [name] : [] } };
}

// ---------------------------------------------------------------------------
// Fixtures for the engine tests
// ---------------------------------------------------------------------------

describe('scopes/ fixtures', () => {
  test('subprocess-parallel-timer.bpmn: inner nodes carry scope, the subprocess has start and its boundary timer', async () => {
    const p = await fixture('subprocess-parallel-timer.bpmn');
    expect(p.graph.start).toBe('Start');
    expect(p.graph.eventSubprocesses).toBeUndefined();
    expect(node(p, 'Review')).toEqual({
      id: 'Review', type: 'subProcess', name: 'Review', in: ['Flow_ToReview'], out: ['Flow_ToDone'],
      default: null, boundary: ['ReviewTimeout'], start: 'ReviewStart',
    });
    for (const id of ['ReviewStart', 'Fork', 'Legal', 'Finance', 'Tech', 'Join', 'ReviewEnd']) expect(node(p, id).scope).toBe('Review');
    for (const id of ['Start', 'Review', 'Done', 'ReviewTimeout', 'TimedOut']) expect(node(p, id).scope).toBeUndefined();
    expect(node(p, 'Fork').out).toEqual(['Flow_ToLegal', 'Flow_ToFinance', 'Flow_ToTech']);
    expect(node(p, 'ReviewTimeout')).toEqual({
      id: 'ReviewTimeout', type: 'boundaryEvent', name: '1 hour', in: [], out: ['Flow_ToTimedOut'], attachedTo: 'Review', cancelActivity: true,
      event: { kind: 'timer', timer: { kind: 'duration', value: { literal: 'PT1H' } } },
    });
  });

  test('event-subprocess-message.bpmn: a non-interrupting message event subprocess', async () => {
    const p = await fixture('event-subprocess-message.bpmn');
    expect(p.graph.start).toBe('Start');
    expect(p.graph.eventStarts).toBeUndefined();
    expect(p.graph.eventSubprocesses).toEqual(['OnUpdate']);
    expect(node(p, 'OnUpdate')).toEqual({ id: 'OnUpdate', type: 'subProcess', name: 'On update', in: [], out: [], triggeredByEvent: true, start: 'UpdateReceived' });
    expect(node(p, 'UpdateReceived')).toEqual({
      id: 'UpdateReceived', type: 'startEvent', name: 'Update received', in: [], out: ['Flow_ToNote'], scope: 'OnUpdate',
      interrupting: false, event: { kind: 'message', name: { literal: 'order-update' }, correlationKey: null },
    });
    expect(node(p, 'NoteUpdate').scope).toBe('OnUpdate');
  });

  test('multi-instance-collection.bpmn: parallel user task over a collection with completion condition and output collection', async () => {
    const p = await fixture('multi-instance-collection.bpmn');
    expect(node(p, 'Vote').loop).toEqual({
      sequential: false,
      collection: read('${voters}', 'voters'),
      elementVariable: 'voter',
      completionCondition: { src: '${nrOfCompletedInstances >= 60}', path: '($."nrOfCompletedInstances" >= 60)', vars: ['nrOfCompletedInstances'] },
      outputCollection: 'votes',
      outputElement: read('${approved}', 'approved'),
    });
    expect(node(p, 'Vote').userTask).toEqual({ assignee: read('${voter}', 'voter') });
  });

  test('call-parent / call-child / call-grandchild.bpmn: camunda:in/out, zeebe:calledElement + ioMapping, task mappings', async () => {
    const parent = await fixture('call-parent.bpmn');
    expect(node(parent, 'CallChild')).toEqual({
      id: 'CallChild', type: 'callActivity', name: 'Call child', in: ['Flow_ToCall'], out: ['Flow_ToCheck'], default: null, boundary: [],
      call: {
        processId: { literal: 'scopes-call-child' },
        binding: 'latest',
        inAll: false,
        in: [
          { target: 'orderId', value: read('${orderId}', 'orderId', false) },
          { target: 'doubled', value: { expr: { src: '${amount * 2}', path: '($."amount" * 2)', vars: ['amount'] } } },
        ],
        outAll: false,
        out: [{ target: 'result', value: read('${childResult}', 'childResult', false) }],
        businessKey: 'parent',
      },
    });
    const child = await fixture('call-child.bpmn');
    expect(node(child, 'CallGrandchild').call).toEqual({
      processId: { literal: 'scopes-call-grandchild' },
      binding: 'latest',
      inAll: false,
      in: [
        { target: 'orderId', value: read('=orderId', 'orderId') },
        { target: 'value', value: { expr: { src: '=doubled + 1', path: '($."doubled" + 1)', vars: ['doubled'] } } },
      ],
      outAll: false,
      out: [{ target: 'childResult', value: read('=grandchildResult', 'grandchildResult') }],
    });
    expect(node(child, 'CallGrandchild').inputs).toBeUndefined();
    const grandchild = await fixture('call-grandchild.bpmn');
    expect(node(grandchild, 'Work').inputs).toEqual([
      { target: 'hint', value: { literal: 'Compute the result' } },
      { target: 'order', value: read('${orderId}', 'orderId') },
    ]);
    expect(node(grandchild, 'Work').outputs).toEqual([{ target: 'grandchildResult', value: read('${value}', 'value') }]);
  });

  test('link-events.bpmn: the throw event names its catch event', async () => {
    const p = await fixture('link-events.bpmn');
    expect(node(p, 'GoToSecond')).toEqual({
      id: 'GoToSecond', type: 'intermediateThrowEvent', name: 'to page 2', in: ['Flow_ToThrow'], out: [],
      event: { kind: 'link', name: 'page2', target: 'FromFirst' },
    });
    expect(node(p, 'FromFirst')).toEqual({
      id: 'FromFirst', type: 'intermediateCatchEvent', name: 'from page 1', in: [], out: ['Flow_ToSecond'], event: { kind: 'link', name: 'page2' },
    });
  });
});

// ---------------------------------------------------------------------------
// Subprocesses and event subprocesses
// ---------------------------------------------------------------------------

describe('subprocesses', () => {
  test('nested subprocesses nest scopes; event subprocesses are listed by their enclosing subprocess', async () => {
    const { process: p, warnings } = await compileOk('nested.bpmn', model(around(`
    <subProcess id="t">
      <startEvent id="s1"/><sequenceFlow id="g1" sourceRef="s1" targetRef="inner"/>
      <subProcess id="inner">
        <startEvent id="s2"/><sequenceFlow id="g2" sourceRef="s2" targetRef="work"/>
        <userTask id="work"/><sequenceFlow id="g3" sourceRef="work" targetRef="e2"/><endEvent id="e2"/>
      </subProcess>
      <sequenceFlow id="g4" sourceRef="inner" targetRef="e1"/><endEvent id="e1"/>
      <subProcess id="onError" triggeredByEvent="true">
        <startEvent id="es1"><errorEventDefinition errorRef="E"/></startEvent>
        <sequenceFlow id="g5" sourceRef="es1" targetRef="ee1"/><endEvent id="ee1"/>
      </subProcess>
      <subProcess id="onLate" triggeredByEvent="true">
        <startEvent id="es2" isInterrupting="false"><escalationEventDefinition/></startEvent>
        <sequenceFlow id="g6" sourceRef="es2" targetRef="ee2"/><endEvent id="ee2"/>
      </subProcess>
      <subProcess id="onTimer" triggeredByEvent="true">
        <startEvent id="es3" isInterrupting="false"><timerEventDefinition><timeCycle>\${every}</timeCycle></timerEventDefinition></startEvent>
        <sequenceFlow id="g7" sourceRef="es3" targetRef="ee3"/><endEvent id="ee3"/>
      </subProcess>
      <subProcess id="onSignal" triggeredByEvent="true">
        <startEvent id="es4"><signalEventDefinition signalRef="S"/></startEvent>
        <sequenceFlow id="g8" sourceRef="es4" targetRef="ee4"/><endEvent id="ee4"/>
      </subProcess>
    </subProcess>`), '<error id="E" errorCode="FAIL"/><signal id="S" name="${signalName}"/>'));
    expect(warnings).toEqual([]);
    expect(p.graph.eventSubprocesses).toBeUndefined();
    expect(node(p, 't')).toEqual({
      id: 't', type: 'subProcess', name: null, in: ['f0'], out: ['f1'], default: null, boundary: [], start: 's1',
      eventSubprocesses: ['onError', 'onLate', 'onTimer', 'onSignal'],
    });
    expect(node(p, 'inner')).toMatchObject({ scope: 't', start: 's2' });
    expect(node(p, 'work').scope).toBe('inner');
    expect(node(p, 'onError')).toEqual({ id: 'onError', type: 'subProcess', name: null, in: [], out: [], triggeredByEvent: true, scope: 't', start: 'es1' });
    expect(node(p, 'es1')).toEqual({
      id: 'es1', type: 'startEvent', name: null, in: [], out: ['g5'], scope: 'onError', interrupting: true, event: { kind: 'error', code: 'FAIL' },
    });
    expect(node(p, 'es2')).toMatchObject({ scope: 'onLate', interrupting: false, event: { kind: 'escalation', code: null } });
    expect(node(p, 'es3')).toMatchObject({
      interrupting: false, event: { kind: 'timer', timer: { kind: 'cycle', value: read('${every}', 'every') } },
    });
    expect(node(p, 'es4')).toMatchObject({ interrupting: true, event: { kind: 'signal', name: read('${signalName}', 'signalName') } });
  });

  test('zeebe message event subprocess at process level: correlation key from zeebe:subscription', async () => {
    const { process: p } = await compileOk('esp.bpmn', model(`${around('<task id="t"/>')}
    <subProcess id="cancel" triggeredByEvent="true">
      <startEvent id="cs"><messageEventDefinition messageRef="M"/></startEvent>
      <sequenceFlow id="c1" sourceRef="cs" targetRef="ce"/><endEvent id="ce"><terminateEventDefinition/></endEvent>
    </subProcess>`, `<message id="M" name="cancel"><extensionElements><zeebe:subscription correlationKey="=orderId"/></extensionElements></message>`));
    expect(p.graph.eventSubprocesses).toEqual(['cancel']);
    expect(p.graph.eventStarts).toBeUndefined();
    expect(node(p, 'cs')).toMatchObject({
      scope: 'cancel', interrupting: true, event: { kind: 'message', name: { literal: 'cancel' }, correlationKey: read('=orderId', 'orderId').expr },
    });
    expect(node(p, 'ce')).toMatchObject({ scope: 'cancel', terminate: true });
  });

  test('boundary events on subprocesses and call activities (all supported kinds); inclusive joins stay within their scope', async () => {
    const { process: p } = await compileOk('boundaries.bpmn', model(`
    <startEvent id="s"/><sequenceFlow id="f0" sourceRef="s" targetRef="sub"/>
    <subProcess id="sub">
      <startEvent id="ss"/><sequenceFlow id="i0" sourceRef="ss" targetRef="split"/>
      <inclusiveGateway id="split"/>
      <sequenceFlow id="i1" sourceRef="split" targetRef="a"><conditionExpression>\${x}</conditionExpression></sequenceFlow>
      <sequenceFlow id="i2" sourceRef="split" targetRef="b"><conditionExpression>\${y}</conditionExpression></sequenceFlow>
      <task id="a"/><task id="b"/>
      <sequenceFlow id="i3" sourceRef="a" targetRef="join"/><sequenceFlow id="i4" sourceRef="b" targetRef="join"/>
      <inclusiveGateway id="join"/><sequenceFlow id="i5" sourceRef="join" targetRef="se"/><endEvent id="se"/>
    </subProcess>
    <sequenceFlow id="f1" sourceRef="sub" targetRef="call"/>
    <callActivity id="call" calledElement="other"/>
    <sequenceFlow id="f2" sourceRef="call" targetRef="e"/><endEvent id="e"/>
    <boundaryEvent id="bm" attachedToRef="sub" cancelActivity="false"><messageEventDefinition messageRef="M"/></boundaryEvent>
    <boundaryEvent id="bs" attachedToRef="sub"><signalEventDefinition signalRef="S"/></boundaryEvent>
    <boundaryEvent id="be" attachedToRef="call"><errorEventDefinition/></boundaryEvent>
    <boundaryEvent id="bx" attachedToRef="call" cancelActivity="false"><escalationEventDefinition/></boundaryEvent>
    <sequenceFlow id="b1" sourceRef="bm" targetRef="e2"/><sequenceFlow id="b2" sourceRef="bs" targetRef="e2"/>
    <sequenceFlow id="b3" sourceRef="be" targetRef="e2"/><sequenceFlow id="b4" sourceRef="bx" targetRef="e2"/><endEvent id="e2"/>`,
    '<message id="M" name="m"/><signal id="S" name="s"/>'));
    expect(node(p, 'sub').boundary).toEqual(['bm', 'bs']);
    expect(node(p, 'call').boundary).toEqual(['be', 'bx']);
    expect(node(p, 'be')).toMatchObject({ attachedTo: 'call', cancelActivity: true, error: { code: null }, event: { kind: 'error', code: null } });
    expect(node(p, 'bx')).toMatchObject({ attachedTo: 'call', cancelActivity: false, event: { kind: 'escalation', code: null } });
    expect(node(p, 'join').upstream).toEqual(['ss', 'split', 'a', 'b']);
  });

  test('refused: start events of subprocesses, flows across scopes, boundary across scopes, event subprocess rules', async () => {
    expect(await problemsOf(model(`
    <startEvent id="s"/><sequenceFlow id="f0" sourceRef="s" targetRef="sub"/>
    <subProcess id="sub">
      <startEvent id="ms"><messageEventDefinition messageRef="M"/></startEvent>
      <task id="in"/><sequenceFlow id="cross" sourceRef="in" targetRef="e"/>
      <boundaryEvent id="bOut" attachedToRef="sub"><timerEventDefinition><timeDuration>PT1M</timeDuration></timerEventDefinition></boundaryEvent>
    </subProcess>
    <sequenceFlow id="f1" sourceRef="sub" targetRef="e"/><endEvent id="e"/>
    <subProcess id="empty"><task id="lonely"/></subProcess>
    <subProcess id="twoStarts"><startEvent id="a1"/><startEvent id="a2"/></subProcess>
    <subProcess id="esp" triggeredByEvent="true">
      <startEvent id="espStart"/>
    </subProcess>
    <subProcess id="espErr" triggeredByEvent="true">
      <startEvent id="errStart" isInterrupting="false"><errorEventDefinition/></startEvent>
      <startEvent id="second"><signalEventDefinition signalRef="S"/></startEvent>
    </subProcess>
    <subProcess id="espNoStart" triggeredByEvent="true"/>
    <subProcess id="espFlows" triggeredByEvent="true">
      <startEvent id="fs"><escalationEventDefinition/></startEvent>
      <multiInstanceLoopCharacteristics><loopCardinality>2</loopCardinality></multiInstanceLoopCharacteristics>
    </subProcess>
    <sequenceFlow id="toEsp" sourceRef="e0" targetRef="espFlows"/><intermediateThrowEvent id="e0"/>
    <boundaryEvent id="onEsp" attachedToRef="espFlows"><signalEventDefinition signalRef="S"/></boundaryEvent>
    <subProcess id="err1" triggeredByEvent="true"><startEvent id="x1"><errorEventDefinition errorRef="E"/></startEvent></subProcess>
    <subProcess id="err2" triggeredByEvent="true"><startEvent id="x2"><errorEventDefinition errorRef="E"/></startEvent></subProcess>`,
    '<message id="M" name="m"/><signal id="S" name="s"/><error id="E" errorCode="E1"/>'))).toEqual([
      'inline.bpmn: element ms: the start event of an embedded subprocess must be a none start event, not a message start event; use an event subprocess (triggeredByEvent="true") or a boundary event for events',
      'inline.bpmn: element empty: subprocess has no start event (exactly one none start event is required)',
      'inline.bpmn: element twoStarts: subprocess has 2 none start events (a1, a2); exactly one is required',
      'inline.bpmn: element espStart: the start event of an event subprocess needs a message, timer, signal, error or escalation event definition',
      'inline.bpmn: element errStart: error start events of event subprocesses are always interrupting (isInterrupting="false" is invalid BPMN)',
      'inline.bpmn: element espErr: event subprocess has 2 start events; exactly one is required',
      'inline.bpmn: element espNoStart: event subprocess has no start event (exactly one start event with a message, timer, signal, error or escalation event definition is required)',
      'inline.bpmn: element espFlows: event subprocesses cannot be multi-instance or looped (bpmn:multiInstanceLoopCharacteristics)',
      'inline.bpmn: element cross: targetRef "e" is in process p, the sequence flow in subprocess sub; sequence flows connect elements of one scope (a subprocess is entered through its start event)',
      'inline.bpmn: element bOut: attachedToRef "sub" is in process p; a boundary event must be in the same scope as its activity (this one is in subprocess sub)',
      'inline.bpmn: element onEsp: attachedToRef "espFlows" is an event subprocess; boundary events are attached to tasks, subprocesses and call activities',
      'inline.bpmn: element espFlows: event subprocess must not have incoming or outgoing sequence flows (toEsp)',
      'inline.bpmn: element err2: event subprocesses err1 and err2 of process p both catch errorCode "E1"',
    ]);
  });
});

// ---------------------------------------------------------------------------
// Call activities
// ---------------------------------------------------------------------------

describe('call activities', () => {
  test('camunda: binding version / versionTag, variables="all", businessKey expression, local ignored with a warning', async () => {
    const { process: p, warnings } = await compileOk('call.bpmn', model(around(`
    <callActivity id="t" calledElement="\${childKey}" camunda:calledElementBinding="version" camunda:calledElementVersion="3">
      <extensionElements>
        <camunda:in variables="all"/>
        <camunda:in businessKey="\${orderId}"/>
        <camunda:out variables="all" local="true"/>
      </extensionElements>
    </callActivity>`)));
    expect(warnings).toEqual(['call.bpmn: element t: camunda:out local="true" is ignored: variables are read from and written to the scope of the call activity']);
    expect(node(p, 't').call).toEqual({
      processId: read('${childKey}', 'childKey'), binding: 'version', version: 3,
      inAll: true, in: [], outAll: true, out: [], businessKey: read('${orderId}', 'orderId'),
    });
    const { process: q } = await compileOk('tag.bpmn', model(around(`
    <callActivity id="t" calledElement="child" camunda:calledElementBinding="versionTag" camunda:calledElementVersionTag="v2"/>`)));
    expect(node(q, 't').call).toEqual({ processId: { literal: 'child' }, binding: 'versionTag', versionTag: 'v2', inAll: false, in: [], outAll: false, out: [] });
  });

  test('zeebe: propagation defaults to true, processId expression, bindingType, io mapping into call.in / call.out; camunda:inputOutput stays on the node', async () => {
    const { process: p } = await compileOk('zeebe-call.bpmn', model(around(`
    <callActivity id="t">
      <extensionElements>
        <zeebe:calledElement processId="=childId" bindingType="deployment"/>
        <zeebe:ioMapping><zeebe:input source="=a" target="b"/><zeebe:output source="=c" target="d"/></zeebe:ioMapping>
        <camunda:inputOutput><camunda:inputParameter name="local">x</camunda:inputParameter></camunda:inputOutput>
      </extensionElements>
    </callActivity>`)));
    expect(node(p, 't').call).toEqual({
      processId: read('=childId', 'childId'), binding: 'deployment', inAll: true,
      in: [{ target: 'b', value: read('=a', 'a') }], outAll: true, out: [{ target: 'd', value: read('=c', 'c') }],
    });
    expect(node(p, 't').inputs).toEqual([{ target: 'local', value: { literal: 'x' } }]);
    const { process: q } = await compileOk('feel-literal.bpmn', model(around(`
    <callActivity id="t"><extensionElements><zeebe:calledElement processId="=&quot;child&quot;" propagateAllChildVariables="false"/></extensionElements></callActivity>`)));
    expect(node(q, 't').call).toMatchObject({ processId: { literal: 'child' }, inAll: true, outAll: false });
  });

  test('refused: tenant, CMMN, Java variable mappings, missing process, bad bindings and mappings', async () => {
    expect(await problemsOf(model(`
    <startEvent id="s"/>
    <callActivity id="tenant" calledElement="c" camunda:calledElementTenantId="other"/>
    <callActivity id="cmmn" camunda:caseRef="case"/>
    <callActivity id="java" calledElement="c" camunda:variableMappingClass="com.acme.Mapping"/>
    <callActivity id="javaExpr" calledElement="c" camunda:variableMappingDelegateExpression="\${mapper}"/>
    <callActivity id="none"/>
    <callActivity id="disagree" calledElement="a"><extensionElements><zeebe:calledElement processId="b"/></extensionElements></callActivity>
    <callActivity id="badBinding" calledElement="c" camunda:calledElementBinding="newest"/>
    <callActivity id="noVersion" calledElement="c" camunda:calledElementBinding="version"/>
    <callActivity id="exprVersion" calledElement="c" camunda:calledElementBinding="version" camunda:calledElementVersion="\${v}"/>
    <callActivity id="noTag" calledElement="c" camunda:calledElementBinding="versionTag"/>
    <callActivity id="mappings" calledElement="c">
      <extensionElements>
        <camunda:in source="a"/>
        <camunda:in target="b"/>
        <camunda:in source="a" sourceExpression="\${a}" target="b"/>
        <camunda:in source="a-b" target="c"/>
        <camunda:in variables="some"/>
        <camunda:out businessKey="\${k}"/>
        <camunda:in businessKey="\${foo()}"/>
        <zeebe:ioMapping><zeebe:input source="=a" target="order..id"/><zeebe:output source="=x"/></zeebe:ioMapping>
      </extensionElements>
    </callActivity>
    <callActivity id="businessId"><extensionElements><zeebe:calledElement processId="c" businessId="=k"/></extensionElements></callActivity>
    <task id="notCall"><extensionElements><camunda:in variables="all"/></extensionElements></task>`))).toEqual([
      'inline.bpmn: element tenant: calling a process of another tenant (camunda:calledElementTenantId="other") is not supported; call activities call processes of their own tenant',
      'inline.bpmn: element cmmn: calling CMMN cases (camunda:caseRef="case") is not supported; call a BPMN process with calledElement',
      'inline.bpmn: element cmmn: call activity without a process to call (set calledElement, or zeebe:calledElement processId)',
      'inline.bpmn: element java: Java variable mappings are not supported (camunda:variableMappingClass="com.acme.Mapping"); map variables with camunda:in / camunda:out',
      'inline.bpmn: element javaExpr: Java variable mappings are not supported (camunda:variableMappingDelegateExpression="${mapper}"); map variables with camunda:in / camunda:out',
      'inline.bpmn: element none: call activity without a process to call (set calledElement, or zeebe:calledElement processId)',
      'inline.bpmn: element disagree: calledElement="a" and zeebe:calledElement processId="b" disagree',
      'inline.bpmn: element badBinding: camunda:calledElementBinding="newest" is not supported; use latest, deployment, version or versionTag',
      'inline.bpmn: element noVersion: camunda:calledElementBinding="version" without camunda:calledElementVersion',
      'inline.bpmn: element exprVersion: camunda:calledElementVersion="${v}" must be a version number (expressions are not supported here)',
      'inline.bpmn: element noTag: binding versionTag without a version tag (camunda:calledElementVersionTag or zeebe:calledElement versionTag)',
      'inline.bpmn: element mappings: camunda:in source="a" without target',
      'inline.bpmn: element mappings: camunda:in target="b" without source or sourceExpression',
      'inline.bpmn: element mappings: camunda:in with both source="a" and sourceExpression="${a}"; set one',
      'inline.bpmn: element mappings: camunda:in source="a-b" is not a variable name (use sourceExpression for expressions)',
      'inline.bpmn: element mappings: camunda:in variables="some" is not supported; write variables="all"',
      'inline.bpmn: element mappings: camunda:out businessKey is not supported (the business key is passed down with camunda:in)',
      'inline.bpmn: element mappings: camunda:in businessKey: cannot compile expression "${foo()}": function calls are not supported',
      'inline.bpmn: element mappings: zeebe:input target="order..id": an empty name in the target path; use a variable name or a path like order.customer.id',
      'inline.bpmn: element mappings: zeebe:output without target',
      'inline.bpmn: element businessId: zeebe:calledElement businessId="=k" is not supported in this version',
      'inline.bpmn: element notCall: camunda:in is only supported on call activities',
    ]);
  });
});

// ---------------------------------------------------------------------------
// Multi-instance
// ---------------------------------------------------------------------------

describe('multi-instance', () => {
  test('cardinality (literal, expression), sequential, on subprocesses and call activities; zeebe loopCharacteristics', async () => {
    const { process: p } = await compileOk('mi.bpmn', model(`
    <startEvent id="s"/><sequenceFlow id="f0" sourceRef="s" targetRef="three"/>
    <manualTask id="three"><multiInstanceLoopCharacteristics isSequential="true"><loopCardinality>3</loopCardinality></multiInstanceLoopCharacteristics></manualTask>
    <sequenceFlow id="f1" sourceRef="three" targetRef="n"/>
    <receiveTask id="n" messageRef="M"><multiInstanceLoopCharacteristics><loopCardinality>\${count}</loopCardinality></multiInstanceLoopCharacteristics></receiveTask>
    <sequenceFlow id="f2" sourceRef="n" targetRef="sub"/>
    <subProcess id="sub">
      <multiInstanceLoopCharacteristics camunda:collection="items" camunda:elementVariable="item"/>
      <startEvent id="ss"/><sequenceFlow id="g" sourceRef="ss" targetRef="se"/><endEvent id="se"/>
    </subProcess>
    <sequenceFlow id="f3" sourceRef="sub" targetRef="call"/>
    <callActivity id="call">
      <extensionElements><zeebe:calledElement processId="child"/></extensionElements>
      <multiInstanceLoopCharacteristics isSequential="true">
        <extensionElements>
          <zeebe:loopCharacteristics inputCollection="=orders" inputElement="order" outputCollection="results" outputElement="=result"/>
        </extensionElements>
        <completionCondition>=nrOfCompletedInstances &gt; 2</completionCondition>
      </multiInstanceLoopCharacteristics>
    </callActivity>
    <sequenceFlow id="f4" sourceRef="call" targetRef="job"/>
    <serviceTask id="job">
      <extensionElements><zeebe:taskDefinition type="charge"/></extensionElements>
      <multiInstanceLoopCharacteristics><extensionElements><zeebe:loopCharacteristics inputCollection="=cards"/></extensionElements></multiInstanceLoopCharacteristics>
    </serviceTask>
    <sequenceFlow id="f5" sourceRef="job" targetRef="e"/><endEvent id="e"/>`, '<message id="M" name="m"/>'));
    expect(node(p, 'three').loop).toEqual({ sequential: true, cardinality: { literal: 3 } });
    expect(node(p, 'n').loop).toEqual({ sequential: false, cardinality: read('${count}', 'count') });
    expect(node(p, 'sub').loop).toEqual({ sequential: false, collection: read('${items}', 'items'), elementVariable: 'item' });
    expect(node(p, 'call').loop).toEqual({
      sequential: true, collection: read('=orders', 'orders'), elementVariable: 'order',
      completionCondition: { src: '=nrOfCompletedInstances > 2', path: '($."nrOfCompletedInstances" > 2)', vars: ['nrOfCompletedInstances'] },
      outputCollection: 'results', outputElement: read('=result', 'result'),
    });
    expect(node(p, 'job').loop).toEqual({ sequential: false, collection: read('=cards', 'cards') });
  });

  test('refused: standard loops, no / both sources, a job after each inner instance, bad names and outputs', async () => {
    expect(await problemsOf(model(`
    <startEvent id="s"/>
    <task id="standard"><standardLoopCharacteristics/></task>
    <task id="neither"><multiInstanceLoopCharacteristics/></task>
    <task id="both"><multiInstanceLoopCharacteristics camunda:collection="xs"><loopCardinality>2</loopCardinality></multiInstanceLoopCharacteristics></task>
    <task id="async">
      <multiInstanceLoopCharacteristics camunda:asyncBefore="true" camunda:asyncAfter="true" camunda:collection="xs">
        <extensionElements><camunda:failedJobRetryTimeCycle>R3/PT5M</camunda:failedJobRetryTimeCycle></extensionElements>
      </multiInstanceLoopCharacteristics>
    </task>
    <task id="badCardinality"><multiInstanceLoopCharacteristics><loopCardinality>many</loopCardinality></multiInstanceLoopCharacteristics></task>
    <task id="badCollection"><multiInstanceLoopCharacteristics camunda:collection="my list"/></task>
    <task id="plainFeel"><multiInstanceLoopCharacteristics><extensionElements><zeebe:loopCharacteristics inputCollection="items" inputElement="=x"/></extensionElements></multiInstanceLoopCharacteristics></task>
    <task id="noElement"><multiInstanceLoopCharacteristics><loopCardinality>2</loopCardinality><completionCondition>done</completionCondition></multiInstanceLoopCharacteristics>
      <extensionElements><camunda:properties><camunda:property name="pgbpm:outputCollection" value="out"/></camunda:properties></extensionElements>
    </task>
    <task id="onlyElement"><extensionElements><camunda:properties><camunda:property name="pgbpm:outputElement" value="\${x}"/></camunda:properties></extensionElements>
      <multiInstanceLoopCharacteristics><loopCardinality>2</loopCardinality></multiInstanceLoopCharacteristics></task>`))).toEqual([
      'inline.bpmn: element standard: a standard loop needs a loopCondition or a loopMaximum (without either it never ends)',
      'inline.bpmn: element neither: multi-instance needs loopCardinality or a collection (camunda:collection or zeebe:loopCharacteristics inputCollection)',
      'inline.bpmn: element both: multi-instance with both loopCardinality and a collection; set exactly one',
      'inline.bpmn: element async: camunda:asyncAfter on bpmn:multiInstanceLoopCharacteristics (a job after each inner instance) is not supported in this version; use camunda:asyncBefore on it, or camunda:asyncAfter on the activity',
      "inline.bpmn: element async: camunda:failedJobRetryTimeCycle on bpmn:multiInstanceLoopCharacteristics is not supported in this version; set it on the activity (it applies to every job of the activity, its inner instances' included)",
      'inline.bpmn: element badCardinality: loopCardinality="many" is not a non-negative integer or an expression',
      'inline.bpmn: element badCollection: camunda:collection="my list" is neither a variable name nor an expression (${...})',
      'inline.bpmn: element plainFeel: zeebe:loopCharacteristics inputCollection="items" is not an expression; write =items to read a variable',
      'inline.bpmn: element plainFeel: zeebe:loopCharacteristics inputElement="=x" must be a variable name, not an expression',
      'inline.bpmn: element noElement: completionCondition="done" is not an expression; write ${...} or =...',
      'inline.bpmn: element noElement: output collection without an output element (zeebe:loopCharacteristics outputElement or pgbpm:outputElement)',
      'inline.bpmn: element onlyElement: output element without an output collection (zeebe:loopCharacteristics outputCollection or pgbpm:outputCollection)',
    ]);
  });

  test('camunda:asyncBefore (or camunda:async) on the loop characteristics: asynchronous inner instances; the activity\'s retry cycle then has an effect', async () => {
    for (const attr of ['camunda:asyncBefore', 'camunda:async']) {
      const { process: p, warnings } = await compileOk('a.bpmn', model(around(`
      <userTask id="t"><extensionElements><camunda:failedJobRetryTimeCycle>R2/PT1M</camunda:failedJobRetryTimeCycle></extensionElements>
        <multiInstanceLoopCharacteristics ${attr}="true" camunda:collection="xs" camunda:elementVariable="x"/></userTask>`)));
      expect(node(p, 't').loop).toMatchObject({ sequential: false, asyncInner: true });
      expect(node(p, 't').asyncBefore).toBeUndefined();
      expect(node(p, 't').jobRetry).toBeDefined();
      expect(warnings).toEqual([]);
    }
    const { process: plain } = await compileOk('b.bpmn', model(around('<userTask id="t"><multiInstanceLoopCharacteristics camunda:collection="xs"/></userTask>')));
    expect(node(plain, 't').loop?.asyncInner).toBeUndefined();
  });

  test('pgbpm:outputCollection without multi-instance is ignored with a warning', async () => {
    const { warnings } = await compileOk('w.bpmn', model(around(`
    <task id="t"><extensionElements><camunda:properties><camunda:property name="pgbpm:outputCollection" value="out"/></camunda:properties></extensionElements></task>`)));
    expect(warnings).toEqual(['w.bpmn: element t: pgbpm:outputCollection only apply to multi-instance activities and are ignored here']);
  });
});

// ---------------------------------------------------------------------------
// Input/output mappings
// ---------------------------------------------------------------------------

describe('input/output mappings', () => {
  test('camunda text, expression, empty, list and map bodies; zeebe mappings on tasks and subprocesses', async () => {
    const { process: p } = await compileOk('io.bpmn', model(`
    <startEvent id="s"/><sequenceFlow id="f0" sourceRef="s" targetRef="t"/>
    <userTask id="t">
      <extensionElements>
        <camunda:inputOutput>
          <camunda:inputParameter name="text">hello</camunda:inputParameter>
          <camunda:inputParameter name="sum">\${a + b}</camunda:inputParameter>
          <camunda:inputParameter name="nothing"/>
          <camunda:inputParameter name="list"><camunda:list><camunda:value>x</camunda:value><camunda:value>y</camunda:value><camunda:list><camunda:value>z</camunda:value></camunda:list></camunda:list></camunda:inputParameter>
          <camunda:inputParameter name="map"><camunda:map><camunda:entry key="k">v</camunda:entry><camunda:entry key="nested"><camunda:list><camunda:value>1</camunda:value></camunda:list></camunda:entry></camunda:map></camunda:inputParameter>
          <camunda:outputParameter name="result">\${answer}</camunda:outputParameter>
        </camunda:inputOutput>
      </extensionElements>
    </userTask>
    <sequenceFlow id="f1" sourceRef="t" targetRef="job"/>
    <serviceTask id="job">
      <extensionElements>
        <zeebe:taskDefinition type="charge"/>
        <zeebe:ioMapping><zeebe:input source="=amount * 2" target="total"/><zeebe:input source="fixed" target="mode"/><zeebe:output source="=receipt" target="receipt"/></zeebe:ioMapping>
      </extensionElements>
    </serviceTask>
    <sequenceFlow id="f2" sourceRef="job" targetRef="sub"/>
    <subProcess id="sub">
      <extensionElements><zeebe:ioMapping><zeebe:input source="=items" target="localItems"/></zeebe:ioMapping></extensionElements>
      <startEvent id="ss"/><sequenceFlow id="g" sourceRef="ss" targetRef="se"/><endEvent id="se"/>
    </subProcess>
    <sequenceFlow id="f3" sourceRef="sub" targetRef="e"/><endEvent id="e"/>`));
    expect(node(p, 't').inputs).toEqual([
      { target: 'text', value: { literal: 'hello' } },
      { target: 'sum', value: { expr: { src: '${a + b}', path: '($."a" + $."b")', vars: ['a', 'b'] } } },
      { target: 'nothing', value: null },
      { target: 'list', value: { json: ['x', 'y', ['z']] } },
      { target: 'map', value: { json: { k: 'v', nested: ['1'] } } },
    ]);
    expect(node(p, 't').outputs).toEqual([{ target: 'result', value: read('${answer}', 'answer') }]);
    expect(node(p, 'job').inputs).toEqual([
      { target: 'total', value: { expr: { src: '=amount * 2', path: '($."amount" * 2)', vars: ['amount'] } } },
      { target: 'mode', value: { literal: 'fixed' } },
    ]);
    expect(node(p, 'job').outputs).toEqual([{ target: 'receipt', value: read('=receipt', 'receipt') }]);
    expect(node(p, 'sub').inputs).toEqual([{ target: 'localItems', value: read('=items', 'items') }]);
    expect(node(p, 'sub').outputs).toBeUndefined();
  });

  test('refused: scripts, expressions inside lists, mappings on events, gateways and event subprocesses', async () => {
    expect(await problemsOf(model(`
    <startEvent id="s"><extensionElements><zeebe:ioMapping><zeebe:output source="=a" target="b"/></zeebe:ioMapping></extensionElements></startEvent>
    <task id="t">
      <extensionElements>
        <camunda:inputOutput>
          <camunda:inputParameter name="script"><camunda:script scriptFormat="groovy">1 + 1</camunda:script></camunda:inputParameter>
          <camunda:inputParameter name="exprList"><camunda:list><camunda:value>\${a}</camunda:value></camunda:list></camunda:inputParameter>
          <camunda:outputParameter>\${x}</camunda:outputParameter>
          <camunda:outputParameter name="bad">\${x +}</camunda:outputParameter>
        </camunda:inputOutput>
      </extensionElements>
    </task>
    <exclusiveGateway id="g"><extensionElements><camunda:inputOutput><camunda:inputParameter name="x">1</camunda:inputParameter></camunda:inputOutput></extensionElements></exclusiveGateway>
    <subProcess id="esp" triggeredByEvent="true">
      <extensionElements><zeebe:ioMapping><zeebe:input source="=a" target="b"/></zeebe:ioMapping></extensionElements>
      <startEvent id="es"><signalEventDefinition signalRef="S"/></startEvent>
    </subProcess>`, '<signal id="S" name="s"/>'))).toEqual([
      'inline.bpmn: element s: input/output mappings (zeebe:ioMapping) on bpmn:startEvent elements are not supported in this version; they are supported on tasks, subprocesses and call activities',
      'inline.bpmn: element t: scripts are not supported (camunda:script scriptFormat="groovy" in camunda:inputParameter "script")',
      'inline.bpmn: element t: expressions inside camunda:list / camunda:map are not supported (camunda:inputParameter "exprList": "${a}"); compute the value with one expression instead',
      'inline.bpmn: element t: camunda:outputParameter without name',
      'inline.bpmn: element t: camunda:outputParameter "bad": cannot compile expression "${x +}": unexpected end of expression',
      'inline.bpmn: element g: input/output mappings (camunda:inputOutput) on bpmn:exclusiveGateway elements are not supported in this version; they are supported on tasks, subprocesses and call activities',
      'inline.bpmn: element esp: input/output mappings (zeebe:ioMapping) on event subprocesses are not supported in this version; they are supported on tasks, subprocesses and call activities',
      'inline.bpmn: element g: gateway has no outgoing sequence flow',
    ]);
  });
});

// ---------------------------------------------------------------------------
// Link events, and what stays refused
// ---------------------------------------------------------------------------

describe('link events', () => {
  test('links pair within a subprocess; the same name may be used in another scope', async () => {
    const { process: p } = await compileOk('links.bpmn', model(`
    <startEvent id="s"/><sequenceFlow id="f0" sourceRef="s" targetRef="throwTop"/>
    <intermediateThrowEvent id="throwTop"><linkEventDefinition name="next"/></intermediateThrowEvent>
    <intermediateCatchEvent id="catchTop"><linkEventDefinition name="next"/></intermediateCatchEvent>
    <sequenceFlow id="f1" sourceRef="catchTop" targetRef="sub"/>
    <subProcess id="sub">
      <startEvent id="ss"/><sequenceFlow id="g0" sourceRef="ss" targetRef="throwIn"/>
      <intermediateThrowEvent id="throwIn"><linkEventDefinition name="next"/></intermediateThrowEvent>
      <intermediateCatchEvent id="catchIn"><linkEventDefinition name="next"/></intermediateCatchEvent>
      <sequenceFlow id="g1" sourceRef="catchIn" targetRef="se"/><endEvent id="se"/>
    </subProcess>
    <sequenceFlow id="f2" sourceRef="sub" targetRef="e"/><endEvent id="e"/>`));
    expect(node(p, 'throwTop').event).toEqual({ kind: 'link', name: 'next', target: 'catchTop' });
    expect(node(p, 'throwIn').event).toEqual({ kind: 'link', name: 'next', target: 'catchIn' });
    expect(node(p, 'catchIn')).toMatchObject({ scope: 'sub', event: { kind: 'link', name: 'next' } });
  });

  test('refused: no catch in the scope, two catches, flows into a catch or out of a throw, no name', async () => {
    expect(await problemsOf(model(`
    <startEvent id="s"/><sequenceFlow id="f0" sourceRef="s" targetRef="lost"/>
    <intermediateThrowEvent id="lost"><linkEventDefinition name="nowhere"/></intermediateThrowEvent>
    <intermediateThrowEvent id="leaky"><linkEventDefinition name="dup"/></intermediateThrowEvent>
    <sequenceFlow id="f1" sourceRef="leaky" targetRef="c1"/>
    <intermediateCatchEvent id="c1"><linkEventDefinition name="dup"/></intermediateCatchEvent>
    <intermediateCatchEvent id="c2"><linkEventDefinition name="dup"/></intermediateCatchEvent>
    <intermediateCatchEvent id="nameless"><linkEventDefinition/></intermediateCatchEvent>
    <subProcess id="sub"><startEvent id="ss"/><intermediateCatchEvent id="inner"><linkEventDefinition name="nowhere"/></intermediateCatchEvent></subProcess>`))).toEqual([
      'inline.bpmn: element nameless: link event without name (set name on its bpmn:linkEventDefinition)',
      'inline.bpmn: element c1: link catch event must not have incoming sequence flows (f1); it is entered through its link throw events',
      'inline.bpmn: element c2: link catch events c1 and c2 in process p both have the name "dup"; link names must be unique in a scope',
      'inline.bpmn: element lost: link throw event: there is no link catch event named "nowhere" in process p',
      'inline.bpmn: element leaky: link throw event must not have outgoing sequence flows (f1); the token continues at its link catch event',
    ]);
  });
});

describe('standard loops', () => {
  test('compile to a sequential loop with `standard`: condition, testBefore, maximum', async () => {
    const { process: p } = await compileOk('loop.bpmn', model(around(`
    <userTask id="t"><standardLoopCharacteristics testBefore="true" loopMaximum="5">
      <loopCondition xsi:type="tFormalExpression">\${attempts &lt; 3}</loopCondition></standardLoopCharacteristics></userTask>`)));
    expect(node(p, 't').loop).toEqual({ sequential: true, standard: { testBefore: true, maximum: 5, condition: expect.any(Object) } });
  });

  test('refused: no way to end, a bad maximum, an empty or uncompilable condition, other loop attributes', async () => {
    expect(await problemsOf(model(`
    <startEvent id="s"/><sequenceFlow id="f0" sourceRef="s" targetRef="a"/>
    <task id="a"><standardLoopCharacteristics/></task><sequenceFlow id="f1" sourceRef="a" targetRef="b"/>
    <task id="b"><standardLoopCharacteristics loopMaximum="20000"/></task><sequenceFlow id="f2" sourceRef="b" targetRef="c"/>
    <task id="c"><standardLoopCharacteristics><loopCondition xsi:type="tFormalExpression"> </loopCondition></standardLoopCharacteristics></task>
    <sequenceFlow id="f3" sourceRef="c" targetRef="d"/>
    <task id="d"><standardLoopCharacteristics camunda:asyncBefore="true"><loopCondition xsi:type="tFormalExpression">\${a ==}</loopCondition></standardLoopCharacteristics></task>`))).toEqual([
      'inline.bpmn: unknown attribute camunda:asyncBefore="true"',
      'inline.bpmn: element a: a standard loop needs a loopCondition or a loopMaximum (without either it never ends)',
      'inline.bpmn: element b: loopMaximum="20000" must be a whole number from 0 to 10000',
      'inline.bpmn: element c: empty loopCondition',
      expect.stringMatching(/^inline\.bpmn: element d: loopCondition: /),
    ]);
  });
});

describe('ad-hoc subprocesses', () => {
  test('compile to a subProcess node with adHoc: activatable elements (no incoming flows), activeElementsCollection, completion', async () => {
    const { process: p, warnings } = await compileOk('adhoc.bpmn', model(around(`
    <adHocSubProcess id="t" cancelRemainingInstances="false">
      <extensionElements><zeebe:adHoc activeElementsCollection="=tools"/></extensionElements>
      <completionCondition xsi:type="tFormalExpression">=done</completionCondition>
      <task id="free"/><userTask id="first"/><sequenceFlow id="a1" sourceRef="first" targetRef="second"/><userTask id="second"/>
      <intermediateCatchEvent id="wait"><timerEventDefinition><timeDuration>PT1M</timeDuration></timerEventDefinition></intermediateCatchEvent>
      <boundaryEvent id="b" attachedToRef="free"><timerEventDefinition><timeDuration>PT1M</timeDuration></timerEventDefinition></boundaryEvent>
    </adHocSubProcess>`)));
    expect(node(p, 't')).toMatchObject({
      type: 'subProcess',
      adHoc: {
        cancelRemaining: false,
        activatable: ['free', 'first', 'wait'],
        activeElements: { expr: expect.any(Object) },
        completionCondition: expect.any(Object),
      },
    });
    expect(node(p, 't').start).toBeUndefined();
    // its elements without incoming flows are activated, not "never reached"
    expect(warnings).toEqual([]);
  });

  test('refused: start and end events inside, sequential ordering, job-worker ad-hoc subprocesses, nothing to activate, as an event subprocess', async () => {
    expect(await problemsOf(model(`
    <startEvent id="s"/><sequenceFlow id="f0" sourceRef="s" targetRef="a1"/>
    <adHocSubProcess id="a1" ordering="Sequential">
      <extensionElements><zeebe:adHoc outputCollection="results"/></extensionElements>
      <startEvent id="inStart"/><task id="x"/><endEvent id="inEnd"/>
    </adHocSubProcess>
    <sequenceFlow id="f1" sourceRef="a1" targetRef="a2"/>
    <adHocSubProcess id="a2"><task id="y"/><sequenceFlow id="g1" sourceRef="y" targetRef="y2"/><task id="y2"/><sequenceFlow id="g2" sourceRef="y2" targetRef="y"/></adHocSubProcess>
    <sequenceFlow id="f2" sourceRef="a2" targetRef="e"/><endEvent id="e"/>
    <adHocSubProcess id="a3" triggeredByEvent="true"><task id="z"/></adHocSubProcess>`))).toEqual([
      'inline.bpmn: element a1: ordering="Sequential" is not supported in this version; the activities of an ad-hoc subprocess run in parallel',
      'inline.bpmn: element a1: zeebe:adHoc outputCollection is not supported in this version (it belongs to ad-hoc subprocesses implemented by a job worker)',
      'inline.bpmn: element a3: an ad-hoc subprocess cannot be an event subprocess (triggeredByEvent="true")',
      'inline.bpmn: element inStart: ad-hoc subprocess a1 must not have start events: its activities are activated (zeebe:adHoc activeElementsCollection, bpm.activate_ad_hoc_activities)',
      'inline.bpmn: element inEnd: ad-hoc subprocess a1 must not have end events: it completes by its completionCondition, or when nothing is active in it any more',
      'inline.bpmn: element a2: ad-hoc subprocess has no element to activate (an activity or event without incoming sequence flows)',
    ]);
  });
});
