/**
 * Shared helpers of the compiler unit tests: compile a
 * fixture or an inline model and read the compiled graph or the problems.
 */
import fs from 'node:fs';
import path from 'node:path';
import { compileBpmn, formatProblems } from '../../compiler';
import type { CompiledNode, CompiledProcess, CompileProblem } from '../../compiler/graph';

export const SCOPES = path.join(__dirname, '..', 'fixtures', 'bpmn', 'scopes');

export function lines(problems: CompileProblem[]): string[] {
  return problems.length === 0 ? [] : formatProblems(problems).split('\n');
}

export async function compileOk(name: string, xml: string | Buffer): Promise<{ process: CompiledProcess; warnings: string[] }> {
  const r = await compileBpmn(name, xml);
  if (!r.ok) throw new Error(`${name} should compile:\n${formatProblems(r.problems)}`);
  expect(r.resource.processes).toHaveLength(1);
  return { process: r.resource.processes[0], warnings: lines(r.warnings) };
}

export async function fixture(name: string): Promise<CompiledProcess> {
  const { process, warnings } = await compileOk(name, fs.readFileSync(path.join(SCOPES, name)));
  expect(warnings).toEqual([]);
  return process;
}

export async function problemsOf(xml: string): Promise<string[]> {
  const r = await compileBpmn('inline.bpmn', xml);
  if (r.ok) throw new Error('inline.bpmn should not compile');
  return lines(r.problems);
}

export function node(p: CompiledProcess, id: string): CompiledNode {
  const n = p.graph.nodes[id];
  if (n === undefined) throw new Error(`no node ${id}`);
  return n;
}

export function model(body: string, extraRoot = ''): string {
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
export function around(activity: string): string {
  return `<startEvent id="s"/><sequenceFlow id="f0" sourceRef="s" targetRef="t"/>
    ${activity}
    <sequenceFlow id="f1" sourceRef="t" targetRef="e"/><endEvent id="e"/>`;
}

/** A value reading one variable (`vars`: required ones). */
