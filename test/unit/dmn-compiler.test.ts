/**
 * DMN compiler (compiler/dmn.ts): DMN 1.3 files → CompiledDecision (decision
 * tables, literal expressions, required decisions), and business rule tasks
 * that call a decision (compiler/tasks.ts); every problem reported with the
 * element and the reason. Evaluation is tested in test/db/elements/decisions.test.ts.
 */
import fs from 'node:fs';
import path from 'node:path';
import { compileBpmn, compileBpmnFiles } from '../../compiler';
import type { CompiledDecision } from '../../compiler/graph';
import { compileOk, lines, model, node, problemsOf } from './compiler-support';

const FIXTURES = path.join(__dirname, '..', 'fixtures', 'dmn');

function dmn(body: string, ns = 'https://www.omg.org/spec/DMN/20191111/MODEL/'): string {
  return `<?xml version="1.0" encoding="UTF-8"?>
<definitions xmlns="${ns}" xmlns:camunda="http://camunda.org/schema/1.0/dmn" id="defs" name="D" namespace="http://pgbpm.test/dmn">
${body}
</definitions>`;
}

/** A one-input, one-output table with the given rules ([input entry, output entry]) and table attributes. */
function table(id: string, rules: Array<[string, string]>, attributes = '', output = `<output id="${id}_o" name="out"/>`): string {
  return `<decision id="${id}"><decisionTable id="${id}_t" ${attributes}>
    <input id="${id}_i" label="Amount"><inputExpression id="${id}_e"><text>amount</text></inputExpression></input>
    ${output}
    ${rules.map(([i, o], n) => `<rule id="${id}_r${n}"><inputEntry id="${id}_r${n}i"><text>${i}</text></inputEntry><outputEntry id="${id}_r${n}o"><text>${o}</text></outputEntry></rule>`).join('\n')}
  </decisionTable></decision>`;
}

async function decisions(xml: string): Promise<CompiledDecision[]> {
  const r = await compileBpmn('d.dmn', xml);
  if (!r.ok) throw new Error(lines(r.problems).join('\n'));
  return r.resource.decisions;
}

async function dmnProblems(xml: string, name = 'd.dmn'): Promise<string[]> {
  const r = await compileBpmn(name, xml);
  if (r.ok) throw new Error(`${name} should not compile`);
  return lines(r.problems);
}

describe('DMN files', () => {
  test('dish.dmn: two decision tables, the second requires the first; no processes', async () => {
    const r = await compileBpmn('dish.dmn', fs.readFileSync(path.join(FIXTURES, 'dish.dmn')));
    if (!r.ok) throw new Error(lines(r.problems).join('\n'));
    expect(r.resource.processes).toEqual([]);
    expect(r.resource.decisions.map((d) => [d.key, d.name, d.versionTag, d.requires, d.logic.kind])).toEqual([
      ['dish', 'Dish', 'v1', [], 'table'],
      ['beverages', 'Beverages', null, ['dish'], 'table'],
    ]);
    const beverages = r.resource.decisions[1].logic;
    expect(beverages).toMatchObject({ kind: 'table', hitPolicy: 'COLLECT', aggregation: null, outputs: [{ name: 'beverages' }] });
  });

  test('a Camunda Modeler 5 file (Camunda 8): input data, knowledge sources, modeler and diagram attributes are ignored; empty entries match anything', async () => {
    const r = await compileBpmn('camunda8-risk.dmn', fs.readFileSync(path.join(FIXTURES, 'camunda8-risk.dmn')));
    if (!r.ok) throw new Error(lines(r.problems).join('\n'));
    expect(r.warnings).toEqual([]);
    expect(r.resource.decisions).toMatchObject([
      { key: 'Decision_risk', name: 'Risk', requires: [], logic: { kind: 'table', hitPolicy: 'FIRST', rules: [{ id: 'DecisionRule_1' }, { id: 'DecisionRule_2', tests: [null] }] } },
    ]);
  });

  test('unary tests: "-" matches anything (null); values, comparisons, intervals and not(...) become one boolean tree over "?"', async () => {
    const [d] = await decisions(dmn(table('t', [['-', '1'], ['not("a", "b")', '2'], ['[1..5[', '3'], ['? > limit', '4'], ['', '5']])));
    if (d.logic.kind !== 'table') throw new Error('table expected');
    const tests = d.logic.rules.map((r) => r.tests[0]);
    expect(tests[0]).toBeNull();
    expect(tests[4]).toBeNull();
    expect(tests[1]?.tree).toMatchObject({ k: 'call', f: 'not', a: [{ k: 'or' }] });
    expect(tests[2]?.tree).toEqual({
      k: 'and',
      l: { k: 'cmp', op: '>=', l: { k: 'var', n: '?' }, r: { k: 'lit', v: 1 } },
      r: { k: 'cmp', op: '<', l: { k: 'var', n: '?' }, r: { k: 'lit', v: 5 } },
    });
    // an expression over "?" is the test itself, and requires the variables it reads
    expect(tests[3]).toMatchObject({ vars: ['limit'], tree: { k: 'cmp', op: '>', l: { k: 'var', n: '?' }, r: { k: 'var', n: 'limit' } } });
  });

  test('JUEL input expressions (expressionLanguage="juel") and literal expression decisions compile', async () => {
    const [a, b] = await decisions(dmn(`
      <decision id="a"><decisionTable id="at">
        <input id="ai"><inputExpression id="ae" expressionLanguage="juel"><text>\${order.total}</text></inputExpression></input>
        <output id="ao" name="x"/>
        <rule id="ar"><inputEntry id="ari"><text>&gt; 5</text></inputEntry><outputEntry id="aro"><text>"big"</text></outputEntry></rule>
      </decisionTable></decision>
      <decision id="b"><variable id="bv" name="greeting"/><literalExpression id="bl"><text>"Hello " + name</text></literalExpression></decision>`));
    expect(a.logic).toMatchObject({ kind: 'table', inputs: [{ label: 'ai', value: { expr: { src: '${order.total}', vars: ['order'] } } }] });
    expect(b.logic).toMatchObject({ kind: 'literal', variable: 'greeting', value: { expr: { vars: ['name'] } } });
  });

  test('every problem of a DMN file, naming the decision', async () => {
    expect(await dmnProblems(dmn(`
      ${table('agg', [['1', '1']], 'hitPolicy="FIRST" aggregation="SUM"')}
      ${table('prio', [['1', '"a"']], 'hitPolicy="PRIORITY"')}
      ${table('bad', [['>> 5', '1'], ['1', 'x +'], ['1', '? + 1']])}
      <decision id="short"><decisionTable id="st">
        <input id="si"><inputExpression id="se"><text>a</text></inputExpression></input>
        <input id="si2"><inputExpression id="se2"><text>b</text></inputExpression></input>
        <output id="so" name="x"/>
        <rule id="sr"><inputEntry id="sri"><text>1</text></inputEntry><outputEntry id="sro"><text>1</text></outputEntry></rule>
      </decisionTable></decision>
      <decision id="unnamed"><decisionTable id="ut"><input id="ui"><inputExpression id="ue"><text>a</text></inputExpression></input>
        <output id="uo1" name="x"/><output id="uo2"/></decisionTable></decision>
      <decision id="loopA"><informationRequirement id="ir1"><requiredDecision href="#loopB"/></informationRequirement>${'<literalExpression id="la"><text>1</text></literalExpression>'}</decision>
      <decision id="loopB"><informationRequirement id="ir2"><requiredDecision href="#loopA"/></informationRequirement><literalExpression id="lb"><text>2</text></literalExpression></decision>
      <decision id="lost"><informationRequirement id="ir3"><requiredDecision href="#nowhere"/></informationRequirement><literalExpression id="ll"><text>3</text></literalExpression></decision>
      <decision id="empty"/>
      <decision id="empty"/>`))).toEqual([
      'd.dmn: element empty: id "empty" is used by more than one element (line 33)',
      'd.dmn: element agg: aggregation "SUM" is only allowed with hit policy COLLECT (SUM, MIN, MAX or COUNT)',
      'd.dmn: element prio: hit policy PRIORITY orders rules by the output values (outputValues) of an output; none has them',
      'd.dmn: element bad: rule bad_r0, input "Amount": cannot compile the unary tests ">> 5": unsupported FEEL construct "> 5"',
      'd.dmn: element bad: rule bad_r1, output "output 1": cannot compile FEEL "x +": syntax error',
      'd.dmn: element bad: rule bad_r2, output "output 1": cannot compile FEEL "? + 1": "?" (the input value) is only defined in the input entries of a decision table',
      'd.dmn: element short: rule sr has 1 input and 1 output entries; the table has 2 inputs and 1 outputs',
      'd.dmn: element unnamed: a decision table with several outputs needs a name on each output',
      'd.dmn: element empty: decision without a decision table or literal expression',
      'd.dmn: element lost: required decision "nowhere" is not a decision of this file',
      'd.dmn: element loopA: required decisions form a cycle: loopA → loopB → loopA',
    ]);
  });

  test('a DMN 1.1 file is refused with how to convert it; a file without decisions too; decision ids are unique across files', async () => {
    expect(await dmnProblems(dmn(table('old', [['1', '1']]), 'http://www.omg.org/spec/DMN/20151101/dmn.xsd'))).toEqual([
      expect.stringMatching(/^d\.dmn: not a DMN 1\.3 file: .*open and save DMN 1\.1 or 1\.2 files in Camunda Modeler 5 or later/),
    ]);
    expect(await dmnProblems(dmn(''))).toEqual(['d.dmn: the DMN file defines no decision']);
    const twice = await compileBpmnFiles([{ name: 'a.dmn', xml: dmn(table('same', [['1', '1']])) }, { name: 'b.dmn', xml: dmn(table('same', [['1', '1']])) }]);
    expect(twice.ok ? [] : lines(twice.problems)).toEqual(['b.dmn: element same: decision id "same" is also defined in a.dmn']);
  });
});

describe('business rule tasks that call a decision', () => {
  const around = (task: string): string => model(`<startEvent id="s"/><sequenceFlow id="f1" sourceRef="s" targetRef="t"/>${task}<sequenceFlow id="f2" sourceRef="t" targetRef="e"/><endEvent id="e"/>`);

  test('camunda:decisionRef: the result variable gets the decision (no topic: evaluated as the task is reached)', async () => {
    const { process } = await compileOk('p.bpmn', around('<businessRuleTask id="t" camunda:decisionRef="dish" camunda:decisionRefBinding="versionTag" camunda:decisionRefVersionTag="v1" camunda:resultVariable="dish" camunda:mapDecisionResult="singleEntry"/>'));
    const t = node(process, 't');
    expect(t.topic).toBeUndefined();
    expect(t.outputs).toEqual([{ target: 'dish', value: { decision: { key: 'dish', binding: 'versionTag', versionTag: 'v1', mapResult: 'singleEntry' } } }]);
  });

  test('zeebe:calledDecision with output mappings: the result is a local the mappings read', async () => {
    const { process } = await compileOk('p.bpmn', around(`<businessRuleTask id="t"><extensionElements>
      <zeebe:calledDecision decisionId="discount" resultVariable="d"/>
      <zeebe:ioMapping><zeebe:output source="=d.pct" target="pct"/></zeebe:ioMapping></extensionElements></businessRuleTask>`));
    const t = node(process, 't');
    expect(t.inputs).toEqual([{ target: 'd', value: { decision: { key: 'discount', binding: 'latest', mapResult: 'dmn' } } }]);
    expect(t.outputs).toMatchObject([{ target: 'pct' }]);
  });

  test('binding deployment: the decision must be in a DMN file of the same deployment', async () => {
    const bpmn = { name: 'p.bpmn', xml: around('<businessRuleTask id="t" camunda:decisionRef="dish" camunda:decisionRefBinding="deployment" camunda:resultVariable="r"/>') };
    const alone = await compileBpmnFiles([bpmn]);
    expect(alone.ok ? [] : lines(alone.problems)).toEqual([
      'p.bpmn: element t: decision dish is bound to the deployment, but none of its DMN files defines it; deploy the DMN file together with the process',
    ]);
    const together = await compileBpmnFiles([bpmn, { name: 'dish.dmn', xml: fs.readFileSync(path.join(FIXTURES, 'dish.dmn'), 'utf8') }]);
    if (!together.ok) throw new Error(lines(together.problems).join('\n'));
    expect(node(together.resources[0].processes[0], 't').outputs).toEqual([
      { target: 'r', value: { decision: { key: 'dish', binding: 'deployment', mapResult: 'resultList' } } },
    ]);
  });

  test('refused: an expression as decision id, a version that is no number, versionTag without a tag, an unknown binding', async () => {
    expect(await problemsOf(around('<businessRuleTask id="t" camunda:decisionRef="${which}" camunda:resultVariable="r"/>'))).toEqual([
      'inline.bpmn: element t: camunda:decisionRef="${which}" must be a decision id; expressions are not supported here',
    ]);
    expect(await problemsOf(around('<businessRuleTask id="t" camunda:decisionRef="d" camunda:decisionRefTenantId="other"/>'))).toEqual([
      `inline.bpmn: element t: calling a decision of another tenant (camunda:decisionRefTenantId="other") is not supported; decisions of the process's tenant are called`,
    ]);
    expect(await problemsOf(around('<serviceTask id="t"><extensionElements><zeebe:calledDecision decisionId="d" resultVariable="r"/><zeebe:taskDefinition type="x"/></extensionElements></serviceTask>'))).toEqual([
      'inline.bpmn: element t: zeebe:calledDecision decisionId="d" is only supported on business rule tasks',
    ]);
    expect(await problemsOf(around('<businessRuleTask id="t" camunda:decisionRef="d" camunda:decisionRefBinding="newest"/>'))).toEqual([
      'inline.bpmn: element t: decision binding "newest" is not one of latest, deployment, version, versionTag',
    ]);
    expect(await problemsOf(around('<businessRuleTask id="t" camunda:decisionRef="d" camunda:decisionRefBinding="version" camunda:decisionRefVersion="${v}"/>'))).toEqual([
      'inline.bpmn: element t: camunda:decisionRefVersion="${v}" must be a version number (expressions are not supported here)',
    ]);
    expect(await problemsOf(around('<businessRuleTask id="t"><extensionElements><zeebe:calledDecision decisionId="d" resultVariable="r" bindingType="versionTag"/></extensionElements></businessRuleTask>'))).toEqual([
      'inline.bpmn: element t: a decision bound by versionTag needs the version tag',
    ]);
  });
});
