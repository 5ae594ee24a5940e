/**
 * BPMN compiler, issue 5: embedded and event subprocesses (scopes), call
 * activities, multi-instance, input/output mappings and link events, compiled
 * to graph.ts (scope, start, triggeredByEvent, interrupting,
 * eventSubprocesses, inputs/outputs, loop, call, link events), and what is
 * still refused. The fixtures under test/fixtures/bpmn/scopes/ are deployed
 * by the engine tests.
 */
import fs from 'node:fs';
import path from 'node:path';
import { compileBpmn, formatProblems } from '../../compiler';
import type { CompiledNode, CompiledProcess, CompileProblem } from '../../compiler/graph';

const SCOPES = path.join(__dirname, '..', 'fixtures', 'bpmn', 'scopes');

function lines(problems: CompileProblem[]): string[] {
  return problems.length === 0 ? [] : formatProblems(problems).split('\n');
}

async function compileOk(name: string, xml: string | Buffer): Promise<{ process: CompiledProcess; warnings: string[] }> {
  const r = await compileBpmn(name, xml);
  if (!r.ok) throw new Error(`${name} should compile:\n${formatProblems(r.problems)}`);
  expect(r.resource.processes).toHaveLength(1);
  return { process: r.resource.processes[0], warnings: lines(r.warnings) };
}

async function fixture(name: string): Promise<CompiledProcess> {
  const { process, warnings } = await compileOk(name, fs.readFileSync(path.join(SCOPES, name)));
  expect(warnings).toEqual([]);
  return process;
}

async function problemsOf(xml: string): Promise<string[]> {
  const r = await compileBpmn('inline.bpmn', xml);
  if (r.ok) throw new Error('inline.bpmn should not compile');
  return lines(r.problems);
}

function node(p: CompiledProcess, id: string): CompiledNode {
  const n = p.graph.nodes[id];
  if (n === undefined) throw new Error(`no node ${id}`);
  return n;
}

function model(body: string, extraRoot = ''): string {
  return `<?xml version="1.0" encoding="UTF-8"?>
<definitions xmlns="http://www.omg.org/spec/BPMN/20100524/MODEL"
  xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
  xmlns:camunda="http://camunda.org/schema/1.0/bpmn"
  xmlns:zeebe="http://camunda.org/schema/zeebe/1.0"
  id="defs" targetNamespace="http://pgbpm.test">
  <process id="p" isExecutable="true">
${body}
  </process>
${extraRoot}
</definitions>`;
}

/** s → t → e around an activity t. */
function around(activity: string): string {
  return `<startEvent id="s"/><sequenceFlow id="f0" sourceRef="s" targetRef="t"/>
    ${activity}
    <sequenceFlow id="f1" sourceRef="t" targetRef="e"/><endEvent id="e"/>`;
}

/** A value reading one variable (`vars`: required ones). */
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
    expect(node(p, 'OnUpdate')).toEqual({ id: 'OnUpdate', type: 'subProcess', name: 'On update', in: [], out: [], triggeredByEvent: true });
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
