/**
 * Deploy-time compiler for BPMN expressions.
 *
 * Two surface languages are accepted:
 *  - FEEL (Camunda 8 style): text starting with `=`, parsed with `lezer-feel`;
 *  - a JUEL subset (Camunda 7 style): `${...}` or `#{...}`, parsed by hand below.
 *
 * Both are lowered to one small AST, then rendered as a PostgreSQL SQL/JSON path
 * (`jsonpath`, lax mode) evaluated against the instance variables (a jsonb object):
 * conditions with `jsonb_path_match`, values with `jsonb_path_query_first`.
 * Nothing is ever evaluated in JavaScript: whatever jsonpath cannot express is
 * rejected here with a message naming the expression and the reason.
 */
import { parser as feelParser } from 'lezer-feel';
import { compileFeelTree, decodeString, type FeelNode, type FeelTree, findError, NOT_A_CONDITION, rawChildren } from './feel-tree';
import type { CompiledExpression } from './graph';

/** What the expression is used for: a condition (one boolean) or a value (any jsonb). */
export type ExpressionKind = 'condition' | 'value';

/** Outcome of {@link compileExpression}: the compiled expression, or why it cannot be compiled. */
export type ExpressionResult = { ok: true; expr: CompiledExpression } | { ok: false; message: string };

/** True if the text is an expression (`=...`, `${...}`, `#{...}`) rather than a literal. */
export function isExpression(text: string): boolean {
  const t = text.trim();
  return t.startsWith('=') || /[$#]\{/.test(t);
}

/**
 * Compile FEEL (`=...`) or JUEL (`${...}`/`#{...}`) text into an SQL/JSON path.
 *
 * kind 'condition' yields one boolean predicate (evaluate with
 * `jsonb_path_match(vars, path::jsonpath)`); kind 'value' yields a value (evaluate
 * with `jsonb_path_query_first(vars, path::jsonpath)`). `vars` lists the top-level
 * variables that must exist; variables used only in null / emptiness / `is defined`
 * checks are optional and behave as null when missing. Never throws: every problem
 * is reported as `{ ok: false, message }`.
 */
export function compileExpression(text: string, kind: ExpressionKind): ExpressionResult {
  const src = text.trim();
  try {
    if (kind === 'value') {
      const concat = compileConcat(src);
      if (concat !== null) return { ok: true, expr: concat };
    }
    const ast = parse(src);
    if (ast.k === 'instant') {
      if (kind === 'condition') fail('a date-time is not a condition');
      return { ok: true, expr: { src, path: '', vars: ast.vars, tree: ast.tree } };
    }
    return { ok: true, expr: renderOrTree(src, ast, kind) };
  } catch (e) {
    const reason = failureReason(e);
    if (e instanceof CompileError && src.startsWith('=')) {
      // what jsonpath cannot express, the engine's FEEL interpreter may
      const tree = compileFeelTree(src.slice(1), kind);
      if (tree.ok) return { ok: true, expr: { src, path: '', vars: tree.vars, tree: tree.tree } };
      // the tree's reason, unless it only says less (a syntax error, an unsupported construct, a narrower "not a condition")
      const treeSaysMore = tree.message !== 'syntax error' && !tree.message.startsWith('unsupported FEEL construct') && !reason.endsWith(NOT_A_CONDITION);
      if (treeSaysMore) {
        return { ok: false, message: `cannot compile expression "${src}": ${tree.message}` };
      }
    }
    return { ok: false, message: `cannot compile expression "${src}": ${reason}` };
  }
}

/**
 * The jsonpath form of a parsed expression; for a JUEL value that jsonpath
 * cannot express (a ternary with values, `${vip ? 'senior' : 'junior'}`),
 * the same expression as a FEEL tree the engine evaluates.
 */
function renderOrTree(src: string, ast: Ast, kind: ExpressionKind): CompiledExpression {
  try {
    return { src, ...render(ast, kind) };
  } catch (e) {
    if (!(e instanceof CompileError) || kind !== 'value' || src.startsWith('=')) throw e;
    const lowering = new TreeLowering();
    let tree: FeelTree;
    try {
      tree = lowering.tree(ast);
    } catch {
      throw e; // the jsonpath compiler's reason is the clearer one
    }
    return { src, path: '', vars: [...lowering.required], tree };
  }
}

/** A JUEL AST as a FEEL tree (feel-tree.ts), with the variables it requires (as PathRenderer counts them). */
class TreeLowering {
  readonly required = new Set<string>();

  tree(n: Ast, optional = false): FeelTree {
    switch (n.k) {
      case 'num': return { k: 'lit', v: Number(n.text) };
      case 'str': return { k: 'lit', v: n.value };
      case 'bool': return { k: 'lit', v: n.value };
      case 'null': return { k: 'lit', v: null };
      case 'path':
        if (!optional && !n.optional) this.required.add(n.root);
        return pathTree(n);
      case 'neg': return { k: 'neg', a: this.tree(n.arg) };
      case 'arith':
        // JUEL's + adds numbers only (strings are joined by templates)
        if (n.left.k === 'str' || n.right.k === 'str') return fail('string arithmetic');
        return n.op === '%' ? { k: 'call', f: 'modulo', a: [this.tree(n.left), this.tree(n.right)] } : { k: 'ar', op: n.op, l: this.tree(n.left), r: this.tree(n.right) };
      case 'method': return { k: 'call', f: n.name === 'size' ? 'count' : n.name, a: [this.tree(n.arg)] };
      case 'cmp': {
        const nullCheck = n.left.k === 'null' || n.right.k === 'null';
        return { k: 'cmp', op: n.op === '==' ? '=' : n.op, l: this.tree(n.left, nullCheck), r: this.tree(n.right, nullCheck) };
      }
      case 'not': return { k: 'call', f: 'not', a: [this.tree(n.arg)] };
      case 'logic': return { k: n.op === '&&' ? 'and' : 'or', l: this.tree(n.left), r: this.tree(n.right) };
      case 'defined': return { k: 'def', a: this.tree(n.arg, true) };
      case 'empty': {
        // null, "" or an empty list (as JUEL's empty, but for maps)
        const x = this.tree(n.arg, true);
        const is = (r: FeelTree): FeelTree => ({ k: 'cmp', op: '=', l: x, r });
        return { k: 'or', l: is({ k: 'lit', v: null }), r: { k: 'or', l: is({ k: 'lit', v: '' }), r: { k: 'cmp', op: '=', l: { k: 'call', f: 'count', a: [x] }, r: { k: 'lit', v: 0 } } } };
      }
      case 'startsWith': return { k: 'call', f: 'starts with', a: [this.tree(n.subject), { k: 'lit', v: n.prefix }] };
      case 'regex': return { k: 'call', f: 'matches', a: [this.tree(n.subject), { k: 'lit', v: n.pattern }, { k: 'lit', v: n.flags }] };
      case 'if': return { k: 'if', c: this.tree(n.test), t: this.tree(n.then), e: this.tree(n.else) };
      case 'text': return { k: 'call', f: 'string', a: [this.tree(n.arg)] };
      case 'instant': n.vars.forEach((v) => this.required.add(v)); return n.tree;
      default: return fail(`${n.k} is not supported here`);
    }
  }
}


function failureReason(e: unknown): string {
  if (e instanceof CompileError) return e.message;
  if (e instanceof RangeError) return 'expression is too deeply nested';
  return `internal error: ${e instanceof Error ? e.message : String(e)}`;
}

/** A user-facing reason why an expression cannot be compiled (internal; turned into `{ ok: false }`). */
class CompileError extends Error {}

function fail(reason: string): never {
  throw new CompileError(reason);
}

// ---------------------------------------------------------------------------
// Strings built from parts (values only): a JUEL template (`Order ${id} of
// ${customer.name}`) or a FEEL concatenation (`="Order " + string(id)`).
// jsonpath cannot concatenate, so the parts are rendered one by one and the
// engine joins their text (bpm_private.value__concat).
// ---------------------------------------------------------------------------

type ConcatPart = { text: string } | { ast: Ast };

/** A string built from parts, or null when the text is a plain expression. */
function compileConcat(src: string): CompiledExpression | null {
  if (src.startsWith('=')) {
    const ast = parseFeel(src.slice(1));
    const parts = feelConcatParts(ast);
    if (parts !== null) return renderConcat(src, parts, 'null');
    const operands = feelPlusOperands(ast);
    return operands === null ? null : renderPlus(src, operands);
  }
  const parts = juelTemplateParts(src);
  return parts === null ? null : renderConcat(src, parts, 'empty');
}

/**
 * The parts of a JUEL template: literal text and `${...}` expressions; null
 * when the text is one expression and nothing else. Like JUEL, a part that
 * is null adds nothing.
 */
function juelTemplateParts(src: string): ConcatPart[] | null {
  const parts: ConcatPart[] = [];
  let pos = 0;
  for (let open = src.slice(pos).search(/[$#]\{/); open >= 0; open = src.slice(pos).search(/[$#]\{/)) {
    const start = pos + open;
    if (start > pos) parts.push({ text: src.slice(pos, start) });
    const { end } = new JuelLexer(src, start + 2).tokenize();
    parts.push({ ast: parseJuel(src.slice(start, end)) });
    pos = end;
  }
  if (pos < src.length) parts.push({ text: src.slice(pos) });
  const expressions = parts.filter((p) => 'ast' in p).length;
  return expressions === 0 || (expressions === 1 && parts.length === 1) ? null : parts;
}

/** The operands of a chain of `+` (one operand when the expression is no `+`). */
function plusChain(ast: Ast): Ast[] {
  return ast.k === 'arith' && ast.op === '+' ? [...plusChain(ast.left), ...plusChain(ast.right)] : [ast];
}

/**
 * The operands of a FEEL `+` chain that has a string literal or string()
 * among them (a concatenation); null for anything else. Like FEEL, a null
 * operand makes the whole string null.
 */
function feelConcatParts(ast: Ast): ConcatPart[] | null {
  const operands = plusChain(ast);
  if (!operands.some((o) => o.k === 'str' || o.k === 'text') || (operands.length === 1 && operands[0].k !== 'text')) return null;
  return operands.map((o) => (o.k === 'str' ? { text: o.value } : { ast: o }));
}

/**
 * The operands of a FEEL `+` chain of variables or paths only (`a + b.c`):
 * strings concatenate, numbers add, and FEEL decides by the values' types,
 * which are known only when it runs; null for anything else (a chain with a
 * literal is a concatenation or plain arithmetic).
 */
function feelPlusOperands(ast: Ast): Ast[] | null {
  const operands = plusChain(ast);
  return operands.length > 1 && operands.every((o) => o.k === 'path') ? operands : null;
}

function renderPlus(src: string, operands: Ast[]): CompiledExpression {
  const r = new PathRenderer(false);
  const paths = operands.map((o) => r.value(o));
  return { src, path: '', vars: [...r.required], plus: paths };
}

function renderConcat(src: string, parts: ConcatPart[], nulls: 'empty' | 'null'): CompiledExpression {
  const r = new PathRenderer(false);
  const rendered = parts.map((p) => ('text' in p ? p : { path: r.value(p.ast.k === 'text' ? p.ast.arg : p.ast) }));
  return { src, path: '', vars: [...r.required], concat: { parts: rendered, nulls } };
}

function parse(src: string): Ast {
  if (src.startsWith('=')) return parseFeel(src.slice(1));
  if (/[$#]\{/.test(src)) return parseJuel(src);
  return fail('not an expression (FEEL expressions start with "=", JUEL expressions are written as ${...})');
}

// ---------------------------------------------------------------------------
// Common AST
// ---------------------------------------------------------------------------

type PathStep = { key: string } | { index: number } | { fromEnd: number } | { each: true };
type ArithOp = '+' | '-' | '*' | '/' | '%';
type CmpOp = '==' | '!=' | '<' | '<=' | '>' | '>=';
type NumMethod = 'abs' | 'floor' | 'ceiling' | 'size';

type Ast =
  | { k: 'num'; text: string }
  | { k: 'str'; value: string }
  | { k: 'bool'; value: boolean }
  | { k: 'null' }
  /** A variable (root) and the steps into it; optional: null when missing rather than an error (execution.getVariable). */
  | { k: 'path'; root: string; steps: PathStep[]; optional?: true }
  | { k: 'neg'; arg: Ast }
  | { k: 'arith'; op: ArithOp; left: Ast; right: Ast }
  | { k: 'method'; name: NumMethod; arg: Ast }
  | { k: 'cmp'; op: CmpOp; left: Ast; right: Ast }
  | { k: 'not'; arg: Ast }
  | { k: 'logic'; op: '&&' | '||'; left: Ast; right: Ast }
  | { k: 'empty'; arg: Ast }
  | { k: 'defined'; arg: Ast }
  | { k: 'startsWith'; subject: Ast; prefix: string }
  | { k: 'regex'; subject: Ast; pattern: string; flags: string }
  | { k: 'if'; test: Ast; then: Ast; else: Ast }
  /** FEEL string(x): the text of a value; only inside a string concatenation. */
  | { k: 'text'; arg: Ast }
  /** JUEL x.contains(v): a substring of a string, or an element of a list. */
  | { k: 'contains'; subject: PathAst; value: Ast }
  /** JUEL now() / dateTime() and its plus / minus methods: a date-time the engine computes (a FEEL tree); only as a whole value. */
  | { k: 'instant'; tree: FeelTree; vars: string[] };

type PathAst = Extract<Ast, { k: 'path' }>;

const PREDICATE_KINDS: ReadonlySet<Ast['k']> = new Set<Ast['k']>([
  'cmp', 'not', 'logic', 'empty', 'defined', 'startsWith', 'regex', 'if', 'contains',
]);

function isPredicate(n: Ast): boolean {
  return PREDICATE_KINDS.has(n.k);
}

/** Append a property / index step to a path; anything else cannot be navigated in jsonpath. */
function extendPath(base: Ast, step: PathStep): PathAst {
  if (base.k !== 'path') fail('property access and indexing are only supported on variables');
  return { ...base, steps: [...base.steps, step] };
}

/** A JUEL variable path (property and index steps: JUEL has no others) as a FEEL tree. */
function pathTree(p: PathAst): FeelTree {
  let t: FeelTree = { k: 'var', n: p.root };
  for (const step of p.steps) {
    if ('key' in step) t = { k: 'get', o: t, n: step.key };
    else if ('index' in step) t = { k: 'at', o: t, i: { k: 'lit', v: step.index + 1 } };
    else fail('only property and index steps can be evaluated here');
  }
  return t;
}

function orChain(items: Ast[]): Ast {
  if (items.length === 0) return { k: 'bool', value: false };
  return items.reduce((left, right) => ({ k: 'logic', op: '||', left, right }));
}

// ---------------------------------------------------------------------------
// Rendering to SQL/JSON path
// ---------------------------------------------------------------------------

function render(ast: Ast, kind: ExpressionKind): { path: string; vars: string[] } {
  const r = new PathRenderer(kind === 'condition');
  const path = kind === 'condition' || isPredicate(ast) ? r.predicate(ast) : r.value(ast);
  return { path, vars: [...r.required] };
}

/** Renders AST nodes as jsonpath text, collecting the variables that must exist. */
class PathRenderer {
  readonly required = new Set<string>();
  /** Variables checked for null (or emptiness, or being defined) so far: read after such a check, they are not required. */
  private checked = new Set<string>();

  constructor(private readonly allowIf: boolean) {}

  /** A jsonpath predicate (usable with &&, ||, ! and jsonb_path_match). */
  predicate(n: Ast): string {
    switch (n.k) {
      case 'cmp': return this.compare(n.op, n.left, n.right);
      case 'not': return `!(${this.predicate(n.arg)})`;
      case 'logic': return `(${this.predicate(n.left)} ${n.op} ${this.guard(() => this.predicate(n.right))})`;
      case 'empty': return emptyCheck(this.optionalPath(n.arg, 'empty'));
      case 'defined': return `exists(${this.optionalPath(n.arg, 'is defined')})`;
      case 'startsWith': return `(${this.value(n.subject)} starts with ${quote(n.prefix)})`;
      case 'regex': return this.regex(n.subject, n.pattern, n.flags);
      case 'if': return this.conditional(n.test, n.then, n.else);
      case 'contains': return this.contains(n.subject, n.value);
      case 'path': return `(${this.value(n)} == true)`;
      case 'bool': return `(true == ${n.value})`;
      default: return fail(`${describe(n)} ${NOT_A_CONDITION}`);
    }
  }

  /** A jsonpath value expression (literal, path, arithmetic). */
  value(n: Ast): string {
    switch (n.k) {
      case 'num': return n.text;
      case 'str': return quote(n.value);
      case 'bool': return String(n.value);
      case 'null': return 'null';
      case 'path': return this.path(n, true);
      case 'neg': return `(-${this.number(n.arg)})`;
      case 'arith': return `(${this.number(n.left)} ${n.op} ${this.number(n.right)})`;
      case 'method': return `(${this.number(n.arg)}).${n.name}()`;
      case 'text': return fail('string() is only supported where a value is expected (alone or in a concatenation "text " + string(x)), not in a condition');
      case 'instant': return fail('now() and dateTime() are only supported as a whole value (a due date, a timer date), not inside another expression');
      default: return fail(`${describe(n)} cannot be used as a value here (only as a whole condition or inside and/or/not)`);
    }
  }

  private number(n: Ast): string {
    if (n.k === 'str') fail('string concatenation is only supported in values (not in conditions), and string arithmetic not at all');
    if (n.k === 'bool' || n.k === 'null') fail(`arithmetic on ${describe(n)} is not supported`);
    return this.value(n);
  }

  private compare(op: CmpOp, left: Ast, right: Ast): string {
    if ((op === '==' || op === '!=') && (left.k === 'null' || right.k === 'null')) {
      const other = left.k === 'null' ? right : left;
      return nullCheck(this.optionalPath(other, 'comparison with null'), op === '!=');
    }
    if (left.k === 'null' || right.k === 'null') fail(`null cannot be compared with "${op}"`);
    return `(${this.value(left)} ${op} ${this.value(right)})`;
  }

  /** A string containing the text, or a list with the value as an element (JUEL's String and Collection contains). */
  private contains(subject: PathAst, value: Ast): string {
    const p = this.path(subject, true);
    const inList = `(${p}.type() == "array" && exists(${p}[*] ? (@ == ${this.value(value)})))`;
    if (value.k !== 'str') return inList;
    return `((${p}.type() == "string" && ${p} like_regex ${quote(escapeRegex(value.value))}) || ${inList})`;
  }

  private regex(subject: Ast, pattern: string, flags: string): string {
    const flagText = flags ? ` flag ${quote(flags)}` : '';
    return `(${this.value(subject)} like_regex ${quote(pattern)}${flagText})`;
  }

  private conditional(test: Ast, then: Ast, otherwise: Ast): string {
    if (!this.allowIf) fail('if-then-else / ?: is only supported in conditions whose branches are conditions');
    const c = this.predicate(test);
    return `((${c} && ${this.guard(() => this.predicate(then))}) || (!(${c}) && ${this.guard(() => this.predicate(otherwise))}))`;
  }

  /**
   * Renders the part JUEL evaluates only when the part before it leaves the
   * result open (the right of && / ||, the branches of ?:): a variable the
   * part before checked for null (`x != null && x.size() > 0`) is not
   * required there, since it is read only when it is set.
   */
  private guard<T>(render: () => T): T {
    const before = new Set(this.checked);
    try {
      return render();
    } finally {
      this.checked = before;
    }
  }

  /** A path whose absence is tolerated (null checks); its root is not added to the required vars. */
  private optionalPath(n: Ast, what: string): string {
    if (n.k !== 'path') fail(`${what} is only supported on a variable or property, not on ${describe(n)}`);
    return this.path(n, false);
  }

  private path(n: PathAst, required: boolean): string {
    if (!required) this.checked.add(n.root);
    else if (!n.optional && !this.checked.has(n.root)) this.required.add(n.root);
    return '$' + [{ key: n.root }, ...n.steps].map(renderStep).join('');
  }
}

function renderStep(step: PathStep): string {
  if ('key' in step) return `.${quote(step.key)}`;
  if ('index' in step) return `[${step.index}]`;
  if ('fromEnd' in step) return step.fromEnd === 0 ? '[last]' : `[last - ${step.fromEnd}]`;
  return '[*]';
}

/** Missing or JSON null. `.type()` is not auto-unwrapped in lax mode, so `[null]` is not null. */
function nullCheck(p: string, negate: boolean): string {
  return negate ? `(exists(${p}) && ${p}.type() != "null")` : `(!exists(${p}) || ${p}.type() == "null")`;
}

/** JUEL `empty`: missing, null, "", [] or {}. (Lax `.size()` is 1 for strings and objects, hence the type tests.) */
function emptyCheck(p: string): string {
  return (
    `(!exists(${p}) || ${p}.type() == "null"` +
    ` || (${p}.type() == "string" && ${p} == "")` +
    ` || (${p}.type() == "array" && ${p}.size() == 0)` +
    ` || (${p}.type() == "object" && !exists(${p}.keyvalue())))`
  );
}

function describe(n: Ast): string {
  switch (n.k) {
    case 'num': return `the number ${n.text}`;
    case 'str': return `the string ${quote(n.value)}`;
    case 'bool': return `the boolean ${n.value}`;
    case 'null': return 'null';
    case 'path': return 'a variable';
    case 'neg': case 'arith': return 'an arithmetic expression';
    case 'method': return 'a number';
    case 'text': return 'string()';
    default: return 'a condition';
  }
}

/** A jsonpath string literal (same escapes as JSON). PostgreSQL text cannot hold NUL. */
function quote(s: string): string {
  if (s.includes('\u0000')) fail('NUL characters are not supported in names or strings');
  return JSON.stringify(s);
}

/** Normalise a decimal literal into jsonpath syntax (no leading zeros, digit before the point). */
function numberLiteral(raw: string, negative = false): Ast {
  const m = /^(\d*)(?:\.(\d*))?(?:[eE]([+-]?\d+))?$/.exec(raw);
  if (!m || (!m[1] && !m[2])) return fail(`invalid number "${raw}"`);
  const int = m[1].replace(/^0+(?=\d)/, '') || '0';
  const text = `${negative ? '-' : ''}${int}${m[2] ? `.${m[2]}` : ''}${m[3] !== undefined ? `e${m[3]}` : ''}`;
  return { k: 'num', text };
}

/** An integer literal usable as a jsonpath subscript (int32), or undefined. */
function integerOf(n: Ast): number | undefined {
  if (n.k !== 'num' || !/^-?\d+$/.test(n.text)) return undefined;
  const v = Number(n.text);
  return Math.abs(v) <= 2147483647 ? v : undefined;
}

/** Escape POSIX regex metacharacters so a literal substring can be matched with like_regex. */
function escapeRegex(s: string): string {
  return s.replace(/[\\^$.|?*+()[\]{}]/g, '\\$&');
}

// ---------------------------------------------------------------------------
// JUEL subset: tokenizer
// ---------------------------------------------------------------------------

type Token =
  | { t: 'num'; v: string; pos: number }
  | { t: 'str'; v: string; pos: number }
  | { t: 'id'; v: string; pos: number }
  | { t: 'op'; v: string; pos: number }
  | { t: 'eof'; v: ''; pos: number };

const JUEL_OPS = ['==', '!=', '<=', '>=', '&&', '||', '<', '>', '!', '(', ')', '[', ']', '.', '?', ':', '+', '-', '*', '/', '%', ',', '}', '=', '{'];
const JUEL_KEYWORDS = new Set(['and', 'or', 'not', 'eq', 'ne', 'lt', 'gt', 'le', 'ge', 'true', 'false', 'null', 'empty', 'div', 'mod', 'instanceof']);
const JUEL_CONTEXT_OBJECTS: Record<string, string> = {
  execution: 'the execution object is not supported (only process variables can be used)',
  task: 'the task object is not supported (only process variables can be used)',
  variableScope: 'the variableScope object is not supported (only process variables can be used)',
};

/** Tokenizes a JUEL body starting at `start` (just after `${`) up to and including the closing `}`. */
class JuelLexer {
  private pos: number;

  constructor(private readonly src: string, start: number) {
    this.pos = start;
  }

  /** Tokens up to the first `}` outside string literals; returns them and the index after `}`. */
  tokenize(): { tokens: Token[]; end: number } {
    const tokens: Token[] = [];
    for (;;) {
      const tok = this.next();
      if (tok.t === 'eof') fail('missing closing "}"');
      if (tok.t === 'op' && tok.v === '{') fail('set and map literals are not supported');
      if (tok.t === 'op' && tok.v === '}') {
        tokens.push({ t: 'eof', v: '', pos: tok.pos });
        return { tokens, end: this.pos };
      }
      tokens.push(tok);
    }
  }

  private next(): Token {
    while (this.pos < this.src.length && /\s/.test(this.src[this.pos])) this.pos++;
    const pos = this.pos;
    if (pos >= this.src.length) return { t: 'eof', v: '', pos };
    const rest = this.src.slice(pos);
    const num = /^(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?/.exec(rest);
    if (num) return this.take({ t: 'num', v: num[0], pos }, num[0].length);
    const id = /^[A-Za-z_$][\w$]*/.exec(rest);
    if (id) return this.take({ t: 'id', v: id[0], pos }, id[0].length);
    if (rest[0] === "'" || rest[0] === '"') return this.string(rest[0]);
    const op = JUEL_OPS.find((o) => rest.startsWith(o));
    if (op) return this.take({ t: 'op', v: op, pos }, op.length);
    return fail(`unexpected character "${rest[0]}"`);
  }

  private take(tok: Token, length: number): Token {
    this.pos += length;
    return tok;
  }

  /** A quoted string; `\\`, `\'` and `\"` are escapes, any other backslash is literal. */
  private string(q: string): Token {
    const pos = this.pos;
    let out = '';
    for (let i = pos + 1; i < this.src.length; i++) {
      const c = this.src[i];
      if (c === q) {
        this.pos = i + 1;
        return { t: 'str', v: out, pos };
      }
      if (c === '\\' && /['"\\]/.test(this.src[i + 1] ?? '')) out += this.src[++i];
      else out += c;
    }
    return fail('unterminated string literal');
  }
}

// ---------------------------------------------------------------------------
// JUEL subset: recursive-descent parser
// ---------------------------------------------------------------------------

const JUEL_EQUALITY: Record<string, CmpOp> = { '==': '==', eq: '==', '!=': '!=', ne: '!=' };
const JUEL_RELATIONAL: Record<string, CmpOp> = { '<': '<', lt: '<', '<=': '<=', le: '<=', '>': '>', gt: '>', '>=': '>=', ge: '>=' };
const JUEL_ADDITIVE: Record<string, ArithOp> = { '+': '+', '-': '-' };
const JUEL_MULTIPLICATIVE: Record<string, ArithOp> = { '*': '*', '/': '/', div: '/', '%': '%', mod: '%' };

function parseJuel(src: string): Ast {
  const open = src.search(/[$#]\{/);
  const template = 'text mixed with expressions (a string template) is only supported where a value is expected, not in a condition';
  if (open > 0) fail(template);
  const { tokens, end } = new JuelLexer(src, open + 2).tokenize();
  if (end < src.length) fail(template);
  if (tokens.length === 1) fail('empty expression');
  return new JuelParser(tokens).parseAll();
}

/** Grammar: ternary > or > and > equality > relational > additive > multiplicative > unary > postfix. */
class JuelParser {
  private i = 0;

  constructor(private readonly tokens: Token[]) {}

  parseAll(): Ast {
    const e = this.ternary();
    const t = this.peek();
    if (t.t !== 'eof') this.unexpected(t);
    return e;
  }

  private ternary(): Ast {
    const test = this.or();
    if (!this.accept('?')) return test;
    const then = this.ternary();
    this.expect(':');
    return { k: 'if', test, then, else: this.ternary() };
  }

  private or(): Ast {
    let left = this.and();
    while (this.accept('||', 'or')) left = { k: 'logic', op: '||', left, right: this.and() };
    return left;
  }

  private and(): Ast {
    let left = this.equality();
    while (this.accept('&&', 'and')) left = { k: 'logic', op: '&&', left, right: this.equality() };
    return left;
  }

  private equality(): Ast {
    return this.binaryCmp(() => this.relational(), JUEL_EQUALITY);
  }

  private relational(): Ast {
    return this.binaryCmp(() => this.additive(), JUEL_RELATIONAL);
  }

  private binaryCmp(operand: () => Ast, ops: Record<string, CmpOp>): Ast {
    let left = operand();
    for (let op = this.acceptFrom(ops); op; op = this.acceptFrom(ops)) left = { k: 'cmp', op, left, right: operand() };
    return left;
  }

  private additive(): Ast {
    return this.binaryArith(() => this.multiplicative(), JUEL_ADDITIVE);
  }

  private multiplicative(): Ast {
    return this.binaryArith(() => this.unary(), JUEL_MULTIPLICATIVE);
  }

  private binaryArith(operand: () => Ast, ops: Record<string, ArithOp>): Ast {
    let left = operand();
    for (let op = this.acceptFrom(ops); op; op = this.acceptFrom(ops)) left = { k: 'arith', op, left, right: operand() };
    return left;
  }

  private unary(): Ast {
    if (this.accept('!', 'not')) return { k: 'not', arg: this.unary() };
    if (this.accept('empty')) return { k: 'empty', arg: this.unary() };
    if (this.accept('-')) {
      const arg = this.unary();
      return arg.k === 'num' && !arg.text.startsWith('-') ? { k: 'num', text: `-${arg.text}` } : { k: 'neg', arg };
    }
    return this.postfix();
  }

  private postfix(): Ast {
    let base = this.primary();
    for (;;) {
      if (this.accept('.')) {
        const name = this.propertyName();
        base = this.peekOp('(') ? this.method(base, name) : extendPath(base, { key: name });
      } else if (this.accept('[')) base = this.subscript(base);
      else if (this.peekOp('(')) return fail('function calls are not supported');
      else return base;
    }
  }

  /**
   * `x.name(args)` on a variable or property: Java's collection and string
   * methods that have a jsonpath equivalent, and Camunda Spin's JSON
   * navigation (`S(x).prop("a").stringValue()`), which is plain property
   * access on a JSON variable.
   */
  private method(base: Ast, name: string): Ast {
    if (base.k === 'instant') return this.instantMethod(base, name);
    const args = this.arguments();
    const subject = base.k === 'path' ? base : fail(`method ${name}() is only supported on a variable or property`);
    const literal = (): Ast => {
      if (args.length !== 1 || !['str', 'num', 'bool'].includes(args[0].k)) fail(`${name}() takes one string, number or boolean literal`);
      return args[0];
    };
    const none = (): void => {
      if (args.length > 0) fail(`${name}() takes no arguments`);
    };
    switch (name) {
      case 'size': none(); return { k: 'method', name: 'size', arg: subject };
      case 'isEmpty': none(); return { k: 'empty', arg: subject };
      case 'contains': return { k: 'contains', subject, value: literal() };
      case 'startsWith': { const v = literal(); return v.k === 'str' ? { k: 'startsWith', subject, prefix: v.value } : fail('startsWith() takes a string literal'); }
      case 'endsWith': { const v = literal(); return v.k === 'str' ? { k: 'regex', subject, pattern: `${escapeRegex(v.value)}$`, flags: '' } : fail('endsWith() takes a string literal'); }
      case 'equals': return { k: 'cmp', op: '==', left: subject, right: literal() };
      // Spin
      case 'prop': { const v = literal(); return v.k === 'str' ? extendPath(subject, { key: v.value }) : fail('prop() takes a string literal'); }
      case 'hasProp': { const v = literal(); return v.k === 'str' ? { k: 'defined', arg: extendPath(subject, { key: v.value }) } : fail('hasProp() takes a string literal'); }
      case 'elements': case 'stringValue': case 'numberValue': case 'boolValue': case 'value': none(); return subject;
      default: return fail(`method ${name}() is not supported (supported: size, isEmpty, contains, startsWith, endsWith, equals, and Spin's prop, hasProp, elements, stringValue, numberValue, boolValue, value)`);
    }
  }

  /**
   * Joda-Time's plusDays(n), minusHours(n), … on now() / dateTime() (n a
   * whole number, a variable or an expression), and toDate() / toString(),
   * which keep the date-time (ISO 8601, UTC).
   */
  private instantMethod(base: Extract<Ast, { k: 'instant' }>, name: string): Ast {
    const args = this.arguments();
    if (name === 'toDate' || name === 'toString') {
      if (args.length > 0) fail(`${name}() takes no arguments`);
      return base;
    }
    const m = /^(plus|minus)(Years|Months|Weeks|Days|Hours|Minutes|Seconds)$/.exec(name);
    if (!m) return fail(`method ${name}() of a date-time is not supported (supported: plus / minus Years, Months, Weeks, Days, Hours, Minutes, Seconds; toDate, toString)`);
    if (args.length !== 1) fail(`${name}() takes one number`);
    const unit = { Years: ['P', 'Y'], Months: ['P', 'M'], Weeks: ['P', 'W'], Days: ['P', 'D'], Hours: ['PT', 'H'], Minutes: ['PT', 'M'], Seconds: ['PT', 'S'] }[m[2]]!;
    const arg = args[0];
    let amount: FeelTree;
    const vars = [...base.vars];
    if (arg.k === 'num' && /^\d+$/.test(arg.text)) amount = { k: 'lit', v: arg.text };
    else {
      // a variable or an expression (a ternary, arithmetic), evaluated by the engine
      const lowering = new TreeLowering();
      amount = { k: 'call', f: 'string', a: [lowering.tree(arg)] };
      vars.push(...lowering.required);
    }
    const text: FeelTree = { k: 'ar', op: '+', l: { k: 'ar', op: '+', l: { k: 'lit', v: unit[0] }, r: amount }, r: { k: 'lit', v: unit[1] } };
    const duration: FeelTree = { k: 'call', f: 'duration', a: [text] };
    return { k: 'instant', tree: { k: 'ar', op: m[1] === 'plus' ? '+' : '-', l: base.tree, r: duration }, vars };
  }

  /** `( a, b, … )` */
  private arguments(): Ast[] {
    this.expect('(');
    const args: Ast[] = [];
    if (this.accept(')')) return args;
    do args.push(this.ternary()); while (this.accept(','));
    this.expect(')');
    return args;
  }

  private subscript(base: Ast): Ast {
    const index = this.ternary();
    this.expect(']');
    if (index.k === 'str') return extendPath(base, { key: index.value });
    const n = integerOf(index);
    if (n === undefined || n < 0) fail('only non-negative integer literals and string literals are supported inside [...]');
    return extendPath(base, { index: n });
  }

  private primary(): Ast {
    const t = this.advance();
    if (t.t === 'num') return numberLiteral(t.v);
    if (t.t === 'str') return { k: 'str', value: t.v };
    if (t.t === 'op' && t.v === '(') {
      const e = this.ternary();
      this.expect(')');
      return e;
    }
    if (t.t === 'id') return this.identifier(t.v);
    return this.unexpected(t);
  }

  private identifier(name: string): Ast {
    if (name === 'true' || name === 'false') return { k: 'bool', value: name === 'true' };
    if (name === 'null') return { k: 'null' };
    if (JUEL_KEYWORDS.has(name)) fail(`unexpected keyword "${name}"`);
    if (this.peekOp(':') && this.peekAt(1).t === 'id' && this.peekAt(2).v === '(') fail('function calls are not supported');
    if (name === 'execution' && this.peekOp('.') && ['getVariable', 'getVariableLocal'].includes(this.peekAt(1).v)) return this.executionVariable();
    if ((name === 'now' || name === 'dateTime') && this.peekOp('(')) {
      if (this.arguments().length > 0) fail(`${name}() takes no arguments`);
      return { k: 'instant', tree: { k: 'call', f: 'now', a: [] }, vars: [] };
    }
    if (name === 'S' && this.peekOp('(')) {
      // Camunda Spin: S(x) is the JSON variable x itself
      const args = this.arguments();
      return args.length === 1 && args[0].k === 'path' ? args[0] : fail('S() takes one variable');
    }
    const contextObject = JUEL_CONTEXT_OBJECTS[name];
    if (contextObject) fail(contextObject);
    return { k: 'path', root: name, steps: [] };
  }

  /** `execution.getVariable("x")` (or getVariableLocal): the variable x as the token sees it, null when it is not set. */
  private executionVariable(): Ast {
    this.expect('.');
    const method = this.advance().v;
    const args = this.arguments();
    if (args.length !== 1 || args[0].k !== 'str') fail(`execution.${method}() takes one string literal (the variable name)`);
    return { k: 'path', root: args[0].value, steps: [], optional: true };
  }

  private propertyName(): string {
    const t = this.advance();
    if (t.t !== 'id' || JUEL_KEYWORDS.has(t.v)) return this.unexpected(t, 'a property name');
    return t.v;
  }

  // --- token helpers ---

  private peek(): Token {
    return this.peekAt(0);
  }

  private peekAt(offset: number): Token {
    return this.tokens[Math.min(this.i + offset, this.tokens.length - 1)];
  }

  private peekOp(v: string): boolean {
    const t = this.peek();
    return t.t === 'op' && t.v === v;
  }

  private advance(): Token {
    const t = this.peek();
    if (t.t !== 'eof') this.i++;
    return t;
  }

  /** Consume the next token if it is one of the given operators / keywords. */
  private accept(...values: string[]): boolean {
    const t = this.peek();
    if ((t.t === 'op' || t.t === 'id') && values.includes(t.v)) {
      this.i++;
      return true;
    }
    return false;
  }

  private acceptFrom<T>(ops: Record<string, T>): T | undefined {
    const t = this.peek();
    if ((t.t !== 'op' && t.t !== 'id') || !Object.prototype.hasOwnProperty.call(ops, t.v)) return undefined;
    this.i++;
    return ops[t.v];
  }

  private expect(v: string): void {
    if (!this.accept(v)) this.unexpected(this.peek(), `"${v}"`);
  }

  private unexpected(t: Token, wanted?: string): never {
    const found = t.t === 'eof' ? 'end of expression' : `"${t.v}"`;
    if (t.t === 'op' && t.v === '=') fail('unexpected "=" (assignment is not supported; compare with "==" or "eq")');
    if (t.t === 'op' && t.v === '{') fail('set and map literals are not supported');
    return fail(wanted ? `expected ${wanted} but found ${found}` : `unexpected ${found}`);
  }
}

// ---------------------------------------------------------------------------
// FEEL: lezer-feel tree walker
// ---------------------------------------------------------------------------

const FEEL_PUNCTUATION = new Set(['.', '..', ',', '(', ')', '[', ']']);
const FEEL_BOOLEAN_NODES = new Set(['Comparison', 'Conjunction', 'Disjunction']);
const FEEL_DATE_TIME_FUNCTIONS = new Set([
  'now', 'today', 'date', 'time', 'date and time', 'duration', 'years and months duration',
  'day of week', 'day of year', 'week of year', 'month of year', 'last day of month',
]);
/** What SQL/JSON path cannot express; compileExpression then tries the FEEL tree (feel-tree.ts), which reports its own reasons. */
const FEEL_UNSUPPORTED: Record<string, string> = {
  ForExpression: '"for" expressions are not supported',
  QuantifiedExpression: '"some" / "every" expressions are not supported',
  Context: 'contexts ({...}) are not supported',
  FunctionDefinition: 'function definitions (lambdas) are not supported',
  InstanceOfExpression: '"instance of" is not supported',
  DateTimeLiteral: 'date and time values are not supported',
  List: 'list literals are only supported after "in"',
  SimplePositiveUnaryTest: 'unary tests (like "> 5") are only supported after "in"',
  Interval: 'ranges are only supported after "in"',
  '?': 'the implicit "?" value is not supported',
};

function parseFeel(body: string): Ast {
  if (body.trim() === '') fail('empty FEEL expression');
  const top: FeelNode = feelParser.parse(body).topNode;
  rejectSyntaxErrors(top, body);
  const parts = children(top);
  if (parts.length !== 1) fail('syntax error');
  return new FeelWalker(body).expr(parts[0]);
}

function rejectSyntaxErrors(top: FeelNode, body: string): void {
  const err = findError(top);
  if (!err) return;
  if (err.from >= body.trimEnd().length) fail('syntax error: unexpected end of expression');
  const near = body.slice(err.from, err.from + 20).trim();
  fail(`syntax error at character ${err.from + 2} near "${near}"`); // 1-based, counting the leading "="
}

/** Child nodes, without comments and punctuation (`.`, `..`, brackets, parentheses). */
function children(n: FeelNode): FeelNode[] {
  return rawChildren(n).filter((c) => !FEEL_PUNCTUATION.has(c.name));
}

/** Lowers a lezer-feel syntax tree to the common AST. */
class FeelWalker {
  constructor(private readonly src: string) {}

  expr(n: FeelNode): Ast {
    switch (n.name) {
      case 'ParenthesizedExpression': return this.expr(this.inner(n));
      case 'NumericLiteral': return this.number(n);
      case 'StringLiteral': return { k: 'str', value: decodeString(this.text(n)) };
      case 'BooleanLiteral': return { k: 'bool', value: this.text(n) === 'true' };
      case 'null': return { k: 'null' };
      case 'VariableName': return { k: 'path', root: this.name(n), steps: [] };
      case 'PathExpression': return this.pathExpression(n);
      case 'FilterExpression': return this.filterExpression(n);
      case 'ArithmeticExpression': return this.arithmetic(n);
      case 'Comparison': return this.comparison(n);
      case 'Conjunction': return this.logic(n, '&&');
      case 'Disjunction': return this.logic(n, '||');
      case 'FunctionInvocation': return this.invocation(n);
      case 'IfExpression': return this.ifExpression(n);
      default: return fail(FEEL_UNSUPPORTED[n.name] ?? `unsupported FEEL construct "${this.text(n)}"`);
    }
  }

  private text(n: FeelNode): string {
    return this.src.slice(n.from, n.to);
  }

  /** A variable or property name; multi-word names are normalised to single spaces. */
  private name(n: FeelNode): string {
    return this.text(n).trim().replace(/\s+/g, ' ');
  }

  /** The single expression inside `( ... )`. */
  private inner(n: FeelNode): FeelNode {
    const inside = children(n);
    if (inside.length !== 1) fail(`unsupported FEEL construct "${this.text(n)}"`);
    return inside[0];
  }

  private number(n: FeelNode): Ast {
    const raw = this.text(n).replace(/\s+/g, '');
    return raw.startsWith('-') ? numberLiteral(raw.slice(1), true) : numberLiteral(raw);
  }

  private pathExpression(n: FeelNode): Ast {
    const [base, prop] = children(n);
    return extendPath(this.expr(base), { key: this.name(prop) });
  }

  /** `a[1]` (1-based; negative counts from the end) or `a["key"]`; real filters are rejected. */
  private filterExpression(n: FeelNode): Ast {
    const [base, selector] = children(n);
    const sel = this.expr(selector);
    if (sel.k === 'str') return extendPath(this.expr(base), { key: sel.value });
    const i = integerOf(sel);
    if (i === undefined) return fail('list filters are not supported (only integer indexes like a[1] and a["key"])');
    if (i === 0) fail('FEEL list indexes start at 1 (a[0] is always null)');
    return extendPath(this.expr(base), i > 0 ? { index: i - 1 } : { fromEnd: -i - 1 });
  }

  private arithmetic(n: FeelNode): Ast {
    const parts = children(n);
    if (parts.length === 2) return this.negate(parts[0], parts[1]);
    const [left, opNode, right] = parts;
    const op = this.text(opNode);
    if (op === '**') fail('exponentiation (**) is not supported');
    if (!['+', '-', '*', '/'].includes(op)) fail(`unsupported operator "${op}"`);
    return { k: 'arith', op: op as ArithOp, left: this.expr(left), right: this.expr(right) };
  }

  private negate(opNode: FeelNode, argNode: FeelNode): Ast {
    if (this.text(opNode) !== '-') fail(`unsupported unary operator "${this.text(opNode)}"`);
    const arg = this.expr(argNode);
    return arg.k === 'num' && !arg.text.startsWith('-') ? { k: 'num', text: `-${arg.text}` } : { k: 'neg', arg };
  }

  private logic(n: FeelNode, op: '&&' | '||'): Ast {
    const [left, , right] = children(n);
    return { k: 'logic', op, left: this.expr(left), right: this.expr(right) };
  }

  private comparison(n: FeelNode): Ast {
    const parts = children(n);
    const left = this.expr(parts[0]);
    const kind = parts[1].name;
    if (kind === 'between') return this.between(left, parts[2], parts[4]);
    if (kind === 'in') return this.inTests(left, parts.slice(2));
    return { k: 'cmp', op: feelCompareOp(this.text(parts[1])), left, right: this.expr(parts[2]) };
  }

  private between(subject: Ast, lo: FeelNode, hi: FeelNode): Ast {
    const low: Ast = { k: 'cmp', op: '>=', left: subject, right: this.expr(lo) };
    return { k: 'logic', op: '&&', left: low, right: { k: 'cmp', op: '<=', left: subject, right: this.expr(hi) } };
  }

  /** `x in <tests>`: `(t1, t2)`, a list, a range, `< 5`, or a single value. */
  private inTests(subject: Ast, rest: FeelNode[]): Ast {
    const list = rest.length === 1 && rest[0].name === 'PositiveUnaryTests' ? children(rest[0]) : rest;
    return orChain(list.map((t) => this.unaryTest(subject, t)));
  }

  private unaryTest(subject: Ast, n: FeelNode): Ast {
    switch (n.name) {
      case 'PositiveUnaryTest': return this.unaryTest(subject, this.inner(n));
      case 'ParenthesizedExpression': return this.unaryTest(subject, this.inner(n));
      case 'SimplePositiveUnaryTest': return this.simpleTest(subject, n);
      case 'Interval': return this.interval(subject, n);
      case 'List': return orChain(children(n).map((c) => this.unaryTest(subject, c)));
      default:
        if (FEEL_BOOLEAN_NODES.has(n.name)) fail('boolean tests after "in" are not supported; list the allowed values');
        return this.equalsTest(subject, this.expr(n));
    }
  }

  private equalsTest(subject: Ast, value: Ast): Ast {
    if (isPredicate(value)) fail('boolean tests after "in" are not supported; list the allowed values');
    return { k: 'cmp', op: '==', left: subject, right: value };
  }

  private simpleTest(subject: Ast, n: FeelNode): Ast {
    const [first, second] = children(n);
    if (first.name === 'Interval') return this.interval(subject, first);
    return { k: 'cmp', op: feelCompareOp(this.text(first)), left: subject, right: this.expr(second) };
  }

  /** `[a..b]`, `(a..b)`, `]a..b[` and mixes; `(` and `]` on the left (`)` and `[` on the right) exclude the endpoint. */
  private interval(subject: Ast, n: FeelNode): Ast {
    const raw = rawChildren(n);
    const [open, close] = [raw[0], raw[raw.length - 1]];
    const [lo, hi] = children(n);
    const low: Ast = { k: 'cmp', op: open.name === '[' ? '>=' : '>', left: subject, right: this.expr(lo) };
    const high: Ast = { k: 'cmp', op: close.name === ']' ? '<=' : '<', left: subject, right: this.expr(hi) };
    return { k: 'logic', op: '&&', left: low, right: high };
  }

  private ifExpression(n: FeelNode): Ast {
    const [, test, , then, , otherwise] = children(n);
    return { k: 'if', test: this.expr(test), then: this.expr(then), else: this.expr(otherwise) };
  }

  private invocation(n: FeelNode): Ast {
    const [callee, params] = children(n);
    if (callee.name !== 'VariableName') fail('calling functions stored in variables or contexts is not supported');
    if (params.name === 'NamedParameters') fail('named function parameters are not supported');
    const name = this.name(callee);
    const args = params.name === 'PositionalParameters' ? children(params).map((a) => this.expr(a)) : [];
    return feelFunction(name, args);
  }
}

function feelCompareOp(op: string): CmpOp {
  switch (op) {
    case '=': return '==';
    case '!=': case '<': case '<=': case '>': case '>=': return op;
    default: return fail(`unsupported comparison operator "${op}"`);
  }
}

type FeelFunction = (args: Ast[]) => Ast;

function asPath(a: Ast, fn: string): PathAst {
  if (a.k !== 'path') fail(`the argument of ${fn}() must be a variable or property`);
  return a;
}

function stringArg(args: Ast[], i: number, fn: string): string {
  const a = args[i];
  if (!a || a.k !== 'str') fail(`argument ${i + 1} of ${fn}() must be a string literal`);
  return a.value;
}

/** FEEL built-ins that map onto jsonpath, by name and arity. */
const FEEL_FUNCTIONS: Record<string, { arity: number[]; build: FeelFunction }> = {
  not: { arity: [1], build: ([a]) => ({ k: 'not', arg: a }) },
  'is defined': { arity: [1], build: ([a]) => ({ k: 'defined', arg: a }) },
  'starts with': { arity: [2], build: (a) => ({ k: 'startsWith', subject: a[0], prefix: stringArg(a, 1, 'starts with') }) },
  'ends with': { arity: [2], build: (a) => ({ k: 'regex', subject: a[0], pattern: `${escapeRegex(stringArg(a, 1, 'ends with'))}$`, flags: '' }) },
  contains: { arity: [2], build: (a) => ({ k: 'regex', subject: a[0], pattern: escapeRegex(stringArg(a, 1, 'contains')), flags: '' }) },
  matches: { arity: [2, 3], build: buildMatches },
  'list contains': { arity: [2], build: ([l, v]) => ({ k: 'cmp', op: '==', left: extendPath(l, { each: true }), right: v }) },
  count: { arity: [1], build: ([l]) => ({ k: 'method', name: 'size', arg: asPath(l, 'count') }) },
  abs: { arity: [1], build: ([a]) => ({ k: 'method', name: 'abs', arg: a }) },
  floor: { arity: [1], build: ([a]) => ({ k: 'method', name: 'floor', arg: a }) },
  ceiling: { arity: [1], build: ([a]) => ({ k: 'method', name: 'ceiling', arg: a }) },
  string: { arity: [1], build: ([a]) => ({ k: 'text', arg: a }) },
};

function buildMatches(args: Ast[]): Ast {
  const flags = args.length === 3 ? stringArg(args, 2, 'matches') : '';
  if (!/^[imsxq]*$/.test(flags)) fail(`unsupported regular expression flags "${flags}" (allowed: i, m, s, x, q)`);
  return { k: 'regex', subject: args[0], pattern: stringArg(args, 1, 'matches'), flags };
}

function feelFunction(name: string, args: Ast[]): Ast {
  if (FEEL_DATE_TIME_FUNCTIONS.has(name)) fail(`function "${name}" is not supported: date and time functions cannot be evaluated`);
  const fn = Object.prototype.hasOwnProperty.call(FEEL_FUNCTIONS, name) ? FEEL_FUNCTIONS[name] : undefined;
  if (!fn) return fail(`unknown or unsupported function "${name}"`);
  if (!fn.arity.includes(args.length)) fail(`function "${name}" expects ${fn.arity.join(' or ')} argument(s), got ${args.length}`);
  return fn.build(args);
}
