/**
 * DMN 1.3 decisions (Camunda Modeler's DMN files, for Camunda 7 and 8) →
 * CompiledDecision (compiler/graph.ts), evaluated by the engine
 * (db/functions/elements/decision.sql).
 *
 * Supported: decision tables with every hit policy (UNIQUE, FIRST, PRIORITY,
 * ANY, COLLECT with or without SUM / MIN / MAX / COUNT, RULE ORDER, OUTPUT
 * ORDER), literal expression decisions, and required decisions of the same
 * file (a decision requirements graph). Expressions are FEEL (the default of
 * Camunda 7.13+ and Camunda 8); input expressions and output entries may
 * also be JUEL (`expressionLanguage="juel"`). An input entry is FEEL unary
 * tests: `-` (anything), values, comparisons (`< 10`), intervals
 * (`[1..5]`), lists of those (`"a", "b"`), `not(...)`, or an expression
 * over `?` (the input value).
 */
import { type FileCtx, idOf, kids, newFileCtx, nonEmpty, problem, str } from './context';
import { compileExpression } from './expression';
import { compileFeelTree, type FeelTree } from './feel-tree';
import type { Aggregation, CompiledDecision, CompiledValue, CompileProblem, DecisionRule, DecisionTest, HitPolicy } from './graph';
import { classifyParserWarnings } from './parser-warnings';
import type { ParserWarning, XNode } from './xml';

const HIT_POLICIES: ReadonlySet<string> = new Set(['UNIQUE', 'FIRST', 'PRIORITY', 'ANY', 'COLLECT', 'RULE ORDER', 'OUTPUT ORDER']);
const AGGREGATIONS: ReadonlySet<string> = new Set(['SUM', 'MIN', 'MAX', 'COUNT']);

/** The decisions of a parsed DMN file, or its problems. */
export function compileDmnDefinitions(file: string, xml: string, root: XNode, parserWarnings: ParserWarning[]): { decisions: CompiledDecision[]; problems: CompileProblem[] } {
  const ctx = newFileCtx(file, xml);
  // duplicate ids, unknown elements (camunda: attributes of DMN files, such as versionTag, are read from attrs)
  classifyParserWarnings(ctx, parserWarnings.filter((w) => !w.message.startsWith('unknown attribute')));
  if (root.type !== 'dmn:Definitions') {
    problem(ctx, null, 'not a DMN 1.3 file: the root element must be <definitions> in namespace https://www.omg.org/spec/DMN/20191111/MODEL/');
    return { decisions: [], problems: ctx.problems };
  }
  const decisions = compileDecisions(ctx, root);
  return { decisions, problems: ctx.problems };
}

/** Every decision of a DMN file's definitions (problems are added to ctx). */
function compileDecisions(ctx: FileCtx, root: XNode): CompiledDecision[] {
  const elements = kids(root, 'drgElement');
  const decisions: CompiledDecision[] = [];
  for (const el of elements) {
    const id = idOf(el);
    if (el.type !== 'dmn:Decision' || id === null) continue;
    const decision = compileDecision(ctx, el, id);
    if (decision !== null) decisions.push(decision);
  }
  if (decisions.length === 0 && ctx.problems.length === 0) problem(ctx, null, 'the DMN file defines no decision');
  checkRequirements(ctx, decisions);
  return decisions;
}

function compileDecision(ctx: FileCtx, el: XNode, id: string): CompiledDecision | null {
  const requires = kids(el, 'informationRequirement').flatMap((r) => kids(r, 'requiredDecision'))
    .map((ref) => str(ref, 'href') ?? '')
    .map((href) => {
      if (!href.startsWith('#')) problem(ctx, id, `required decision "${href}" is not in this file (only href="#id" references are supported)`);
      return href.slice(1);
    });
  const base = { key: id, name: nonEmpty(str(el, 'name')), versionTag: nonEmpty(el.attrs['camunda:versionTag'] ?? ''), requires };
  const [logic] = kids(el, 'decisionLogic');
  if (logic === undefined) {
    problem(ctx, id, 'decision without a decision table or literal expression');
    return null;
  }
  if (logic.type === 'dmn:LiteralExpression') {
    const value = compileDmnValue(ctx, id, 'literal expression', logic);
    const [variable] = kids(el, 'variable');
    const name = nonEmpty(variable !== undefined ? str(variable, 'name') : undefined) ?? id;
    return value === null ? null : { ...base, logic: { kind: 'literal', variable: name, value } };
  }
  if (logic.type !== 'dmn:DecisionTable') {
    problem(ctx, id, `decision logic ${logic.type.replace(/^dmn:/, '')} is not supported; use a decision table or a literal expression`);
    return null;
  }
  return compileTable(ctx, id, logic, base);
}

function compileTable(ctx: FileCtx, id: string, table: XNode, base: Omit<CompiledDecision, 'logic'>): CompiledDecision | null {
  const before = ctx.problems.length;
  const hitPolicy = (str(table, 'hitPolicy') ?? 'UNIQUE') as HitPolicy;
  if (!HIT_POLICIES.has(hitPolicy)) problem(ctx, id, `hit policy "${hitPolicy}" is not a DMN hit policy`);
  const aggregation = nonEmpty(str(table, 'aggregation'));
  if (aggregation !== null && (hitPolicy !== 'COLLECT' || !AGGREGATIONS.has(aggregation))) {
    problem(ctx, id, `aggregation "${aggregation}" is only allowed with hit policy COLLECT (SUM, MIN, MAX or COUNT)`);
  }
  const inputs = kids(table, 'input').map((input, i) => {
    const label = nonEmpty(str(input, 'label')) ?? idOf(input) ?? `input ${i + 1}`;
    const [expression] = kids(input, 'inputExpression');
    const value = expression === undefined ? null : compileDmnValue(ctx, id, `input "${label}"`, expression);
    if (expression === undefined) problem(ctx, id, `input "${label}" has no input expression`);
    return { label, value };
  });
  const outputs = kids(table, 'output').map((output, i) => ({
    name: nonEmpty(str(output, 'name')) ?? '',
    label: nonEmpty(str(output, 'label')) ?? `output ${i + 1}`,
    values: outputValues(ctx, id, output),
  }));
  if (outputs.length === 0) problem(ctx, id, 'decision table without an output');
  if (outputs.length > 1 && outputs.some((o) => o.name === '')) problem(ctx, id, 'a decision table with several outputs needs a name on each output');
  if (aggregation !== null && outputs.length > 1) problem(ctx, id, `aggregation ${aggregation} needs a decision table with one output`);
  if ((hitPolicy === 'PRIORITY' || hitPolicy === 'OUTPUT ORDER') && !outputs.some((o) => o.values !== null)) {
    problem(ctx, id, `hit policy ${hitPolicy} orders rules by the output values (outputValues) of an output; none has them`);
  }
  const rules: DecisionRule[] = kids(table, 'rule').map((rule, r) => {
    const ruleId = idOf(rule) ?? `rule ${r + 1}`;
    const entries = kids(rule, 'inputEntry');
    const results = kids(rule, 'outputEntry');
    if (entries.length !== inputs.length || results.length !== outputs.length) {
      problem(ctx, id, `rule ${ruleId} has ${entries.length} input and ${results.length} output entries; the table has ${inputs.length} inputs and ${outputs.length} outputs`);
    }
    return {
      id: ruleId,
      tests: entries.map((entry, i) => compileInputEntry(ctx, id, `rule ${ruleId}, input "${inputs[i]?.label ?? i + 1}"`, entry)),
      outputs: results.map((entry, i) => {
        const text = (str(entry, 'text') ?? '').trim();
        return text === '' ? null : compileDmnValue(ctx, id, `rule ${ruleId}, output "${outputs[i]?.label ?? i + 1}"`, entry);
      }),
    };
  });
  if (ctx.problems.length > before) return null;
  return {
    ...base,
    logic: {
      kind: 'table',
      hitPolicy,
      aggregation: aggregation as Aggregation | null,
      inputs: inputs.map((i) => ({ label: i.label, value: i.value as CompiledValue })),
      outputs: outputs.map((o) => (o.values !== null ? { name: o.name, values: o.values } : { name: o.name })),
      rules,
    },
  };
}

/** An output's allowed values (`outputValues`, FEEL unary tests of literals), in priority order; null without. */
function outputValues(ctx: FileCtx, id: string, output: XNode): Array<string | number | boolean> | null {
  const [values] = kids(output, 'outputValues');
  const text = values === undefined ? '' : (str(values, 'text') ?? '').trim();
  if (text === '') return null;
  const r = compileFeelTree(`[${text}]`, 'value');
  if (!r.ok || r.tree.k !== 'list' || r.tree.e.some((e) => e.k !== 'lit' || e.v === null)) {
    problem(ctx, id, `outputValues "${text}" must be a list of literals (e.g. "high","medium","low")`);
    return null;
  }
  return r.tree.e.map((e) => (e as { v: string | number | boolean }).v);
}

/** An input or output expression (FEEL by default, or JUEL) as a value. */
function compileDmnValue(ctx: FileCtx, id: string, label: string, el: XNode): CompiledValue | null {
  const text = (str(el, 'text') ?? '').trim();
  if (text === '') {
    problem(ctx, id, `${label} is empty`);
    return null;
  }
  const language = (str(el, 'expressionLanguage') ?? 'feel').toLowerCase();
  if (language === 'juel') {
    const r = compileExpression(text.startsWith('${') || text.startsWith('#{') ? text : `\${${text}}`, 'value');
    if (!r.ok) problem(ctx, id, `${label}: ${r.message}`);
    return r.ok ? { expr: r.expr } : null;
  }
  if (language !== 'feel' && !language.includes('feel')) {
    problem(ctx, id, `${label}: expression language "${language}" is not supported (FEEL or JUEL)`);
    return null;
  }
  const r = compileFeelTree(text.replace(/^=/, ''), 'value');
  if (!r.ok) {
    problem(ctx, id, `${label}: cannot compile FEEL "${text}": ${r.message}`);
    return null;
  }
  return { expr: { src: text, path: '', vars: r.vars, tree: r.tree } };
}

/** An input entry: null for "-" (or empty), else a boolean tree over "?" (the input value). */
function compileInputEntry(ctx: FileCtx, id: string, label: string, entry: XNode): DecisionTest | null {
  const text = (str(entry, 'text') ?? '').trim();
  if (text === '' || text === '-') return null;
  const language = (str(entry, 'expressionLanguage') ?? 'feel').toLowerCase();
  if (!language.includes('feel')) {
    problem(ctx, id, `${label}: input entries must be FEEL unary tests (expressionLanguage "${language}" is not supported)`);
    return null;
  }
  const negated = /^not\s*\(([\s\S]*)\)$/.exec(text);
  const tree = unaryTests(negated !== null ? negated[1] : text);
  if (!tree.ok) {
    problem(ctx, id, `${label}: cannot compile the unary tests "${text}": ${tree.message}`);
    return null;
  }
  return { src: text, vars: tree.vars, tree: negated !== null ? { k: 'call', f: 'not', a: [tree.tree] } : tree.tree };
}

/**
 * Unary tests as one boolean tree: an expression that uses `?` is the test
 * itself; anything else is matched as `? in (tests)`.
 */
function unaryTests(text: string): { ok: true; tree: FeelTree; vars: string[] } | { ok: false; message: string } {
  if (/\?/.test(text.replace(/"(?:[^"\\]|\\.)*"/g, '""'))) {
    const own = compileFeelTree(text, 'condition', true);
    if (own.ok) return own;
  }
  return compileFeelTree(`? in (${text})`, 'condition', true);
}

/** Required decisions exist in the file and form no cycle. */
function checkRequirements(ctx: FileCtx, decisions: CompiledDecision[]): void {
  const byKey = new Map(decisions.map((d) => [d.key, d]));
  for (const d of decisions) {
    for (const r of d.requires) if (r !== '' && !byKey.has(r)) problem(ctx, d.key, `required decision "${r}" is not a decision of this file`);
  }
  const state = new Map<string, 'visiting' | 'done'>();
  const visit = (d: CompiledDecision, path: string[]): void => {
    if (state.get(d.key) === 'done') return;
    if (state.get(d.key) === 'visiting') {
      problem(ctx, d.key, `required decisions form a cycle: ${[...path, d.key].join(' → ')}`);
      return;
    }
    state.set(d.key, 'visiting');
    for (const r of d.requires) {
      const next = byKey.get(r);
      if (next !== undefined) visit(next, [...path, d.key]);
    }
    state.set(d.key, 'done');
  };
  for (const d of decisions) visit(d, []);
}
