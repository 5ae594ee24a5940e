/**
 * FEEL expressions that SQL/JSON path cannot express (values built from
 * contexts and lists, if-then-else values, list filters, quantifiers, for
 * loops, string, list, numeric, context and temporal functions), compiled at
 * deploy time to a small JSON tree that the engine interprets
 * (bpm_private.feel__eval, db/functions/expression/feel.sql). As with paths,
 * no user text is executed: the tree is data, each node one of the kinds
 * below, and each function one of FEEL_TREE_FUNCTIONS.
 *
 * Used by compileExpression only when the jsonpath rendering refuses an
 * expression, so the common expressions keep their fast path.
 */
import { parser as feelParser } from 'lezer-feel';

/** A node of the tree (see feel__eval for the semantics of each kind). */
export type FeelTree =
  | { k: 'lit'; v: null | boolean | number | string }
  | { k: 'var'; n: string }
  | { k: 'get'; o: FeelTree; n: string }
  | { k: 'at'; o: FeelTree; i: FeelTree }
  | { k: 'flt'; o: FeelTree; c: FeelTree }
  | { k: 'ar'; op: '+' | '-' | '*' | '/' | '**'; l: FeelTree; r: FeelTree }
  | { k: 'neg'; a: FeelTree }
  | { k: 'cmp'; op: '=' | '!=' | '<' | '<=' | '>' | '>='; l: FeelTree; r: FeelTree }
  | { k: 'and' | 'or'; l: FeelTree; r: FeelTree }
  | { k: 'if'; c: FeelTree; t: FeelTree; e: FeelTree }
  | { k: 'ctx'; e: [string, FeelTree][] }
  | { k: 'list'; e: FeelTree[] }
  | { k: 'call'; f: string; a: FeelTree[] }
  | { k: 'def'; a: FeelTree }
  | { k: 'some' | 'every'; v: string; in: FeelTree; c: FeelTree }
  | { k: 'for'; v: string; in: FeelTree; r: FeelTree };

/** Built-in functions the engine evaluates, by FEEL name, with the argument counts each takes. */
export const FEEL_TREE_FUNCTIONS: Record<string, [min: number, max: number]> = {
  // boolean
  not: [1, 1],
  // string
  'string length': [1, 1], 'upper case': [1, 1], 'lower case': [1, 1], substring: [2, 3], 'substring before': [2, 2],
  'substring after': [2, 2], contains: [2, 2], 'starts with': [2, 2], 'ends with': [2, 2], matches: [2, 3],
  replace: [3, 4], split: [2, 2], 'string join': [1, 2], trim: [1, 1], string: [1, 1], number: [1, 1],
  // numeric
  abs: [1, 1], floor: [1, 1], ceiling: [1, 1], decimal: [2, 2], 'round up': [2, 2], 'round down': [2, 2],
  'round half up': [2, 2], 'round half down': [2, 2], modulo: [2, 2], sqrt: [1, 1], odd: [1, 1], even: [1, 1],
  // list
  count: [1, 1], sum: [1, 99], min: [1, 99], max: [1, 99], mean: [1, 99], all: [1, 99], any: [1, 99], sublist: [2, 3],
  append: [2, 99], concatenate: [1, 99], reverse: [1, 1], 'index of': [2, 2], 'distinct values': [1, 1], flatten: [1, 1],
  'list contains': [2, 2], 'is empty': [1, 1], product: [1, 99],
  // context
  'get value': [2, 2], 'get entries': [1, 1], 'context put': [3, 3], 'context merge': [1, 1],
  // temporal (values are ISO 8601 strings: date and time in UTC, dates, durations)
  now: [0, 0], today: [0, 0], date: [1, 1], 'date and time': [1, 1], duration: [1, 1],
  'day of week': [1, 1], 'day of year': [1, 1], 'week of year': [1, 1], 'month of year': [1, 1], 'last day of month': [1, 1],
  'years and months duration': [2, 2],
};

/** Functions whose result is a boolean (a condition may be one of them). */
const BOOLEAN_FUNCTIONS = new Set(['not', 'contains', 'starts with', 'ends with', 'matches', 'list contains', 'all', 'any', 'is empty', 'odd', 'even', '__in']);

/** The part of @lezer/common's SyntaxNode the FEEL walkers need. */
export interface FeelNode {
  readonly name: string;
  readonly from: number;
  readonly to: number;
  readonly type: { readonly isError: boolean };
  readonly firstChild: FeelNode | null;
  readonly nextSibling: FeelNode | null;
}

const COMMENTS = new Set(['LineComment', 'BlockComment']);
const PUNCTUATION = new Set(['.', '..', ',', '(', ')', '[', ']', '{', '}', ':']);
const KEYWORDS = new Set(['if', 'then', 'else', 'some', 'every', 'in', 'satisfies', 'for', 'return', 'between', 'and', 'or']);

/** The end of the reason for a condition that is not boolean by its form (this compiler and the jsonpath one). */
export const NOT_A_CONDITION = 'is not a condition (a boolean is required)';

class TreeError extends Error {}
function fail(reason: string): never {
  throw new TreeError(reason);
}

export type FeelTreeResult = { ok: true; tree: FeelTree; vars: string[] } | { ok: false; message: string };

/**
 * The tree of a FEEL body (without the leading `=`), with the variables it
 * requires (read outside null checks, `is defined`, list filters and names
 * bound by for / some / every). A condition must be boolean by its form.
 */
export function compileFeelTree(body: string, kind: 'condition' | 'value', inputTest = false): FeelTreeResult {
  try {
    const top: FeelNode = feelParser.parse(body).topNode;
    if (findError(top)) fail('syntax error');
    const parts = children(top);
    if (parts.length !== 1) fail('syntax error');
    const walker = new TreeWalker(body, inputTest);
    const tree = walker.expr(parts[0]);
    if (kind === 'condition' && !booleanForm(tree)) fail(`${describeTree(tree)} ${NOT_A_CONDITION}`);
    return { ok: true, tree, vars: [...walker.required] };
  } catch (e) {
    if (e instanceof TreeError) return { ok: false, message: e.message };
    if (e instanceof RangeError) return { ok: false, message: 'expression is too deeply nested' };
    throw e;
  }
}

/** Whether the tree yields a boolean by its form (comparison, logic, quantifier, boolean function, or an if / variable that may). */
function booleanForm(t: FeelTree): boolean {
  switch (t.k) {
    case 'cmp': case 'and': case 'or': case 'some': case 'every': case 'def': return true;
    case 'lit': return typeof t.v === 'boolean';
    case 'if': return booleanForm(t.t) && booleanForm(t.e);
    case 'call': return BOOLEAN_FUNCTIONS.has(t.f);
    case 'var': case 'get': case 'at': return true;
    default: return false;
  }
}

/** What a tree that is not boolean by its form yields, for error messages. */
function describeTree(t: FeelTree): string {
  switch (t.k) {
    case 'lit': return t.v === null ? 'null' : typeof t.v === 'number' ? `the number ${t.v}` : `the string ${JSON.stringify(t.v)}`;
    case 'ar': case 'neg': return 'an arithmetic expression';
    case 'ctx': return 'a context ({...})';
    case 'list': case 'flt': case 'for': return 'a list';
    case 'call': return `the function "${t.f}"`;
    case 'if': return `an if expression whose branches are not both boolean`;
    default: return 'the expression';
  }
}

/** The first syntax error node below n, if any. */
export function findError(n: FeelNode): FeelNode | undefined {
  if (n.type.isError) return n;
  for (let c = n.firstChild; c; c = c.nextSibling) {
    const e = findError(c);
    if (e) return e;
  }
  return undefined;
}

/** Child nodes, without comments. */
export function rawChildren(n: FeelNode): FeelNode[] {
  const out: FeelNode[] = [];
  for (let c = n.firstChild; c; c = c.nextSibling) if (!COMMENTS.has(c.name)) out.push(c);
  return out;
}

function children(n: FeelNode): FeelNode[] {
  return rawChildren(n).filter((c) => !PUNCTUATION.has(c.name) && !KEYWORDS.has(c.name));
}

/** Lowers a lezer-feel syntax tree to a FeelTree, collecting required variables. */
class TreeWalker {
  readonly required = new Set<string>();
  /** Names bound by for / some / every around the node being walked. */
  private bound: string[] = [];
  /** Inside a list filter (names may be the item's properties) or a null check: reads require nothing. */
  private lenient = 0;

  constructor(
    private readonly src: string,
    /** A decision table's input entry: `?` is the input value (the variable "?", bound by the evaluator). */
    private readonly inputTest = false,
  ) {}

  expr(n: FeelNode): FeelTree {
    switch (n.name) {
      case 'ParenthesizedExpression': return this.expr(this.only(n));
      case 'NumericLiteral': return { k: 'lit', v: Number(this.text(n).replace(/\s+/g, '')) };
      case 'StringLiteral': return { k: 'lit', v: decodeString(this.text(n)) };
      case 'BooleanLiteral': return { k: 'lit', v: this.text(n) === 'true' };
      case 'null': return { k: 'lit', v: null };
      case 'VariableName': return this.variable(this.name(n));
      case 'PathExpression': { const [o, p] = children(n); return { k: 'get', o: this.expr(o), n: this.name(p) }; }
      case 'FilterExpression': return this.filter(n);
      case 'ArithmeticExpression': return this.arithmetic(n);
      case 'Comparison': return this.comparison(n);
      case 'Conjunction': { const [l, r] = children(n); return { k: 'and', l: this.expr(l), r: this.expr(r) }; }
      case 'Disjunction': { const [l, r] = children(n); return { k: 'or', l: this.expr(l), r: this.expr(r) }; }
      case 'IfExpression': { const [c, t, e] = children(n); return { k: 'if', c: this.expr(c), t: this.expr(t), e: this.expr(e) }; }
      case 'Context': return this.context(n);
      case 'List': return { k: 'list', e: children(n).map((c) => this.expr(c)) };
      case 'FunctionInvocation': return this.invocation(n);
      case 'DateTimeLiteral': return this.temporal(n);
      case 'QuantifiedExpression': return this.quantified(n);
      case 'ForExpression': return this.forExpression(n);
      case 'FunctionDefinition': return fail('function definitions (lambdas) are not supported');
      case '?': return this.inputTest ? { k: 'var', n: '?' } : fail('"?" (the input value) is only defined in the input entries of a decision table');
      case 'InstanceOfExpression': return fail('"instance of" is not supported');
      default: return fail(`unsupported FEEL construct "${this.text(n)}"`);
    }
  }

  private text(n: FeelNode): string {
    return this.src.slice(n.from, n.to);
  }

  private name(n: FeelNode): string {
    return this.text(n).trim().replace(/\s+/g, ' ');
  }

  private only(n: FeelNode): FeelNode {
    const inside = children(n);
    if (inside.length !== 1) fail(`unsupported FEEL construct "${this.text(n)}"`);
    return inside[0];
  }

  private variable(name: string): FeelTree {
    if (!this.lenient && !this.bound.includes(name)) this.required.add(name);
    return { k: 'var', n: name };
  }

  private leniently<T>(walk: () => T): T {
    this.lenient++;
    try {
      return walk();
    } finally {
      this.lenient--;
    }
  }

  /** `l[cond]` keeps the items for which cond holds (names are the item's properties, or `item`); `l[n]` is the n-th item. */
  private filter(n: FeelNode): FeelTree {
    const [base, selector] = children(n);
    const o = this.expr(base);
    if (selector.name === 'NumericLiteral' || (selector.name === 'ArithmeticExpression' && children(selector).length === 2)) {
      const i = this.expr(selector);
      if (i.k === 'lit' && i.v === 0) fail('FEEL list indexes start at 1 (a[0] is always null)');
      return { k: 'at', o, i };
    }
    if (selector.name === 'StringLiteral') return { k: 'get', o, n: decodeString(this.text(selector)) };
    const c = this.leniently(() => this.expr(selector));
    return { k: 'flt', o, c };
  }

  private arithmetic(n: FeelNode): FeelTree {
    const parts = children(n);
    if (parts.length === 2) {
      if (this.text(parts[0]) !== '-') fail(`unsupported unary operator "${this.text(parts[0])}"`);
      return { k: 'neg', a: this.expr(parts[1]) };
    }
    const [l, opNode, r] = parts;
    const op = this.text(opNode);
    if (!['+', '-', '*', '/', '**'].includes(op)) fail(`unsupported operator "${op}"`);
    return { k: 'ar', op: op as '+', l: this.expr(l), r: this.expr(r) };
  }

  private comparison(n: FeelNode): FeelTree {
    const parts = children(n);
    if (parts.length === 3 && parts[1].name === 'CompareOp') {
      const op = this.text(parts[1]) as '=';
      const nullCheck = parts[0].name === 'null' || parts[2].name === 'null';
      const walk = (x: FeelNode): FeelTree => (nullCheck ? this.leniently(() => this.expr(x)) : this.expr(x));
      return { k: 'cmp', op, l: walk(parts[0]), r: walk(parts[2]) };
    }
    // x between a and b; x in tests
    const raw = rawChildren(n).filter((c) => !COMMENTS.has(c.name));
    const keyword = raw.find((c) => c.name === 'between' || c.name === 'in');
    if (keyword?.name === 'between') {
      const [s, lo, hi] = children(n);
      const subject = this.expr(s);
      return { k: 'and', l: { k: 'cmp', op: '>=', l: subject, r: this.expr(lo) }, r: { k: 'cmp', op: '<=', l: subject, r: this.expr(hi) } };
    }
    if (keyword?.name === 'in') {
      const [s, ...tests] = children(n);
      const subject = this.expr(s);
      const list = tests.length === 1 && tests[0].name === 'PositiveUnaryTests' ? children(tests[0]) : tests;
      return list.map((t) => this.unaryTest(subject, t)).reduce((l, r) => ({ k: 'or', l, r }));
    }
    return fail(`unsupported comparison "${this.text(n)}"`);
  }

  private unaryTest(subject: FeelTree, n: FeelNode): FeelTree {
    switch (n.name) {
      case 'PositiveUnaryTest': case 'ParenthesizedExpression': return this.unaryTest(subject, this.only(n));
      case 'SimplePositiveUnaryTest': {
        const [first, second] = children(n);
        if (first.name === 'Interval') return this.interval(subject, first);
        return { k: 'cmp', op: this.text(first) as '<', l: subject, r: this.expr(second) };
      }
      case 'Interval': return this.interval(subject, n);
      case 'List': return children(n).map((c) => this.unaryTest(subject, c)).reduce<FeelTree>((l, r) => ({ k: 'or', l, r }), { k: 'lit', v: false });
      default: return { k: 'call', f: '__in', a: [subject, this.expr(n)] };
    }
  }

  private interval(subject: FeelTree, n: FeelNode): FeelTree {
    const raw = rawChildren(n);
    const [lo, hi] = children(n);
    const low: FeelTree = { k: 'cmp', op: raw[0].name === '[' ? '>=' : '>', l: subject, r: this.expr(lo) };
    const high: FeelTree = { k: 'cmp', op: raw[raw.length - 1].name === ']' ? '<=' : '<', l: subject, r: this.expr(hi) };
    return { k: 'and', l: low, r: high };
  }

  private context(n: FeelNode): FeelTree {
    const entries: [string, FeelTree][] = [];
    for (const entry of children(n)) {
      const [key, value] = children(entry);
      const keyNode = children(key)[0] ?? key;
      const name = keyNode.name === 'StringLiteral' ? decodeString(this.text(keyNode)) : this.name(keyNode);
      // later entries may read earlier ones
      this.bound.push(name);
      entries.push([name, this.expr(value)]);
    }
    this.bound.splice(this.bound.length - entries.length, entries.length);
    return { k: 'ctx', e: entries };
  }

  private invocation(n: FeelNode): FeelTree {
    const [callee, params] = children(n);
    // (names with keywords in them, like "years and months duration", parse as SpecialFunctionName)
    if (callee.name !== 'VariableName' && callee.name !== 'SpecialFunctionName') fail('calling functions stored in variables or contexts is not supported');
    if (params?.name === 'NamedParameters') fail('named function parameters are not supported');
    const name = this.name(callee);
    if (name === 'is defined') {
      const args = params ? children(params) : [];
      if (args.length !== 1) fail('function "is defined" expects 1 argument');
      return { k: 'def', a: this.leniently(() => this.expr(args[0])) };
    }
    const arity = Object.prototype.hasOwnProperty.call(FEEL_TREE_FUNCTIONS, name) ? FEEL_TREE_FUNCTIONS[name] : undefined;
    if (!arity) return fail(`unknown or unsupported function "${name}"`);
    const args = params && params.name === 'PositionalParameters' ? children(params).map((a) => this.expr(a)) : [];
    if (args.length < arity[0] || args.length > arity[1]) {
      fail(`function "${name}" expects ${arity[0] === arity[1] ? arity[0] : `${arity[0]} to ${arity[1]}`} argument(s), got ${args.length}`);
    }
    const flags = name === 'matches' ? args[2] : name === 'replace' ? args[3] : undefined;
    if (flags?.k === 'lit' && (typeof flags.v !== 'string' || !/^[imsxq]*$/.test(flags.v))) {
      fail(`unsupported regular expression flags ${JSON.stringify(flags.v)} (allowed: i, m, s, x, q)`);
    }
    return { k: 'call', f: name, a: args };
  }

  /** `date("…")`, `date and time("…")`, `duration("…")` (parsed as DateTimeLiteral), and `@"…"` literals of those. */
  private temporal(n: FeelNode): FeelTree {
    const parts = children(n);
    const at = parts.find((p) => p.name === 'AtLiteral');
    if (at) {
      // @"…": a date, a date-time or a duration, by its form
      const text = decodeString(this.text(children(at)[0] ?? at));
      const f = /^-?P/.test(text) ? 'duration' : /^\d{4}-\d{2}-\d{2}$/.test(text) ? 'date' : /^\d{4}-\d{2}-\d{2}T/.test(text) ? 'date and time' : undefined;
      if (!f) return fail(`@"${text}" is not a date, date-time or duration (times of day are not supported)`);
      return { k: 'call', f, a: [{ k: 'lit', v: text }] };
    }
    const ctor = parts.find((p) => p.name === 'DateTimeConstructor');
    if (!ctor) return fail(`unsupported FEEL construct "${this.text(n)}"`);
    const name = this.name(ctor);
    if (!['date', 'date and time', 'duration'].includes(name)) fail(`function "${name}" is not supported (date, date and time, duration, now and today are)`);
    const params = parts.find((p) => p.name === 'PositionalParameters');
    const args = params ? children(params).map((a) => this.expr(a)) : [];
    if (args.length !== 1) fail(`function "${name}" expects 1 argument(s), got ${args.length}`);
    return { k: 'call', f: name, a: args };
  }

  /** `some x in l satisfies c` / `every …` (one iteration variable). */
  private quantified(n: FeelNode): FeelTree {
    const raw = rawChildren(n);
    const which = raw[0].name === 'every' ? 'every' : 'some';
    const [ins, cond] = children(n);
    const { v, list } = this.iteration(ins);
    const c = this.binding(v, () => this.expr(cond));
    return { k: which, v, in: list, c };
  }

  /** `for x in l return e` (one iteration variable). */
  private forExpression(n: FeelNode): FeelTree {
    const [ins, ret] = children(n);
    const { v, list } = this.iteration(ins);
    return { k: 'for', v, in: list, r: this.binding(v, () => this.expr(ret)) };
  }

  private iteration(ins: FeelNode): { v: string; list: FeelTree } {
    const inExpressions = children(ins);
    if (inExpressions.length !== 1) fail('only one iteration variable is supported in for / some / every');
    const [nameNode, context] = children(inExpressions[0]);
    const inner = children(context);
    if (inner.length !== 1) fail('ranges (1..n) in for / some / every are not supported; iterate over a list');
    return { v: this.name(nameNode), list: this.expr(inner[0]) };
  }

  private binding<T>(name: string, walk: () => T): T {
    this.bound.push(name);
    try {
      return walk();
    } finally {
      this.bound.pop();
    }
  }
}

/** FEEL string escapes: \" \' \\ \n \r \t \uXXXX (other escapes are kept verbatim). */
export function decodeString(raw: string): string {
  const body = raw.slice(1, -1);
  const simple: Record<string, string> = { n: '\n', r: '\r', t: '\t', '"': '"', "'": "'", '\\': '\\' };
  return body.replace(/\\(u[0-9a-fA-F]{4}|.)/g, (all, esc: string) => {
    if (esc.length === 5) return String.fromCharCode(parseInt(esc.slice(1), 16));
    return simple[esc] ?? all;
  });
}
