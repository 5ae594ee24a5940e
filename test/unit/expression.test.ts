import { Client } from 'pg';
import { compileExpression, isExpression, type ExpressionKind } from '../../compiler/expression';
import type { CompiledExpression } from '../../compiler/graph';

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** The local Postgres (CI has it). Without it, only compilation is checked. */
let db: Client | null = null;

beforeAll(async () => {
  const client = new Client({ host: '127.0.0.1', port: 5432, user: 'postgres', database: 'test', connectionTimeoutMillis: 3000 });
  try {
    await client.connect();
    db = client;
  } catch (e) {
    console.warn(`expression.test: PostgreSQL on 127.0.0.1:5432 unreachable (${String(e)}); skipping jsonpath evaluation`);
  }
});

afterAll(async () => {
  await db?.end();
});

function compile(text: string, kind: ExpressionKind): CompiledExpression {
  const r = compileExpression(text, kind);
  if (!r.ok) throw new Error(r.message);
  return r.expr;
}

/** jsonb_path_match result: true / false / null (unknown); undefined when no database. */
async function matchOn(path: string, vars: Json): Promise<boolean | null | undefined> {
  if (!db) return undefined;
  const { rows } = await db.query<{ r: boolean | null }>('select jsonb_path_match($1::jsonb, $2::jsonpath) as r', [JSON.stringify(vars), path]);
  return rows[0].r;
}

/** jsonb_path_query_first result as JSON; undefined for "no item" (SQL NULL) — or when no database. */
async function valueOn(path: string, vars: Json): Promise<Json | undefined> {
  if (!db) return undefined;
  const { rows } = await db.query<{ r: string | null }>('select jsonb_path_query_first($1::jsonb, $2::jsonpath)::text as r', [JSON.stringify(vars), path]);
  return rows[0].r === null ? undefined : (JSON.parse(rows[0].r) as Json);
}

async function expectCondition(text: string, vars: Json, expected: boolean | null): Promise<void> {
  const { path } = compile(text, 'condition');
  if (!db) return;
  expect({ text, path, vars, result: await matchOn(path, vars) }).toEqual({ text, path, vars, result: expected });
}

async function expectValue(text: string, vars: Json, expected: Json | undefined): Promise<void> {
  const { path } = compile(text, 'value');
  if (!db) return;
  expect({ text, path, vars, result: await valueOn(path, vars) }).toEqual({ text, path, vars, result: expected });
}

type ConditionCase = [text: string, vars: Json, expected: boolean | null];

async function runConditions(cases: ConditionCase[]): Promise<void> {
  for (const [text, vars, expected] of cases) await expectCondition(text, vars, expected);
}

describe('isExpression', () => {
  it('recognises FEEL, JUEL and templates, not literals', () => {
    expect(isExpression('=amount > 1')).toBe(true);
    expect(isExpression('  =x')).toBe(true);
    expect(isExpression('${a}')).toBe(true);
    expect(isExpression('#{a}')).toBe(true);
    expect(isExpression('Hello ${name}')).toBe(true);
    expect(isExpression('demo')).toBe(false);
    expect(isExpression('PT5M')).toBe(false);
    expect(isExpression('a = b')).toBe(false);
    expect(isExpression('costs $5 {approx}')).toBe(false);
  });
});

describe('contract examples', () => {
  it('compiles to the expected jsonpath text', () => {
    expect(compile('${amount > 1000}', 'condition')).toEqual({ src: '${amount > 1000}', path: '($."amount" > 1000)', vars: ['amount'] });
    expect(compile('=approved', 'condition')).toEqual({ src: '=approved', path: '($."approved" == true)', vars: ['approved'] });
    expect(compile('${!approved}', 'condition').path).toBe('!(($."approved" == true))');
    expect(compile('${a.b}', 'condition').path).toBe('($."a"."b" == true)');
    expect(compile('${initiator}', 'value')).toEqual({ src: '${initiator}', path: '$."initiator"', vars: ['initiator'] });
    expect(compile('=x = null', 'condition')).toEqual({ src: '=x = null', path: '(!exists($."x") || $."x".type() == "null")', vars: [] });
  });

  it('JUEL conditions', async () => {
    await runConditions([
      ['${amount > 1000}', { amount: 1500 }, true],
      ['${amount > 1000}', { amount: 1000 }, false],
      ['${a.b}', { a: { b: true } }, true],
      ['${a.b}', { a: { b: false } }, false],
      ["${x == 'y' && n >= 3}", { x: 'y', n: 3 }, true],
      ["${x == 'y' && n >= 3}", { x: 'y', n: 2 }, false],
      ["${x == 'y' && n >= 3}", { x: 'z', n: 5 }, false],
      ['${empty x}', {}, true],
      ['${not approved}', { approved: false }, true],
      ['${not approved}', { approved: true }, false],
      ['${!approved}', { approved: false }, true],
      ['${a eq 1 or b ne 2}', { a: 1, b: 2 }, true],
      ['${a eq 1 or b ne 2}', { a: 0, b: 2 }, false],
      ['${a eq 1 or b ne 2}', { a: 0, b: 3 }, true],
      ['#{amount > 1}', { amount: 2 }, true],
    ]);
  });

  it('FEEL conditions', async () => {
    await runConditions([
      ['=amount > 1000', { amount: 1001 }, true],
      ['=amount > 1000', { amount: 999 }, false],
      ['=approved', { approved: true }, true],
      ['=approved', { approved: false }, false],
      ['=x = "y" and n >= 3', { x: 'y', n: 4 }, true],
      ['=x = "y" and n >= 3', { x: 'y', n: 1 }, false],
      ['=not(approved)', { approved: false }, true],
      ['=not(approved)', { approved: true }, false],
      ['=status in ["a","b"]', { status: 'b' }, true],
      ['=status in ["a","b"]', { status: 'c' }, false],
    ]);
  });
});

describe('JUEL', () => {
  it('comparison and logical operators', async () => {
    await runConditions([
      ['${a lt b}', { a: 1, b: 2 }, true],
      ['${a le b}', { a: 2, b: 2 }, true],
      ['${a gt b}', { a: 2, b: 2 }, false],
      ['${a ge b}', { a: 2, b: 2 }, true],
      ['${a != b}', { a: 'x', b: 'y' }, true],
      ['${a < b}', { a: 'abc', b: 'abd' }, true],
      ['${a && b || c}', { a: false, b: true, c: true }, true],
      ['${a and (b or c)}', { a: false, b: true, c: true }, false],
      ['${approved && amount > 1}', { approved: true, amount: 2 }, true],
      ['${not (a > 1 and b)}', { a: 2, b: true }, false],
      ['${true}', {}, true],
      ['${false}', {}, false],
      ['${1 < 2}', {}, true],
    ]);
  });

  it('arithmetic', async () => {
    await runConditions([
      ['${(a + b) * 2 > 10}', { a: 3, b: 3 }, true],
      ['${a + b * 2 == 7}', { a: 1, b: 3 }, true],
      ['${a div 2 == 2.5}', { a: 5 }, true],
      ['${a / 4 == 1.25}', { a: 5 }, true],
      ['${a mod 3 == 1 && a % 3 == 1}', { a: 7 }, true],
      ['${-a < 0}', { a: 4 }, true],
      ['${a - -2 == 3}', { a: 1 }, true],
      ['${a > 1.5e2}', { a: 151 }, true],
      ['${a == .5}', { a: 0.5 }, true],
      ['${a == 007}', { a: 7 }, true],
    ]);
  });

  it('property and index access', async () => {
    await runConditions([
      ["${list[0] == 'x'}", { list: ['x', 'y'] }, true],
      ["${list[1] == 'x'}", { list: ['x', 'y'] }, false],
      ["${m['odd key'].v == 1}", { m: { 'odd key': { v: 1 } } }, true],
      ['${m["q\\"uote"] == 2}', { m: { 'q"uote': 2 } }, true],
      ['${a.b.c >= 3}', { a: { b: { c: 3 } } }, true],
      ['${o.list[1].name == "n"}', { o: { list: [{}, { name: 'n' }] } }, true],
    ]);
  });

  it('string literals with escapes', async () => {
    await runConditions([
      ["${name == 'O\\'Brien'}", { name: "O'Brien" }, true],
      ['${name == "say \\"hi\\""}', { name: 'say "hi"' }, true],
      ["${p == 'C:\\\\dir'}", { p: 'C:\\dir' }, true],
      ["${s == '}'}", { s: '}' }, true],
      ["${s == 'ünï \\n'}", { s: 'ünï \\n' }, true],
    ]);
  });

  it('null checks do not require the variable', async () => {
    await runConditions([
      ['${x == null}', {}, true],
      ['${x == null}', { x: null }, true],
      ['${x == null}', { x: 1 }, false],
      ['${x == null}', { x: [null] }, false],
      ['${null eq x}', {}, true],
      ['${x != null}', {}, false],
      ['${x != null}', { x: 0 }, true],
      ['${x ne null}', { x: null }, false],
      ['${a.b == null}', {}, true],
      ['${a.b == null}', { a: {} }, true],
      ['${a.b == null}', { a: { b: 1 } }, false],
    ]);
    expect(compile('${x == null}', 'condition').vars).toEqual([]);
    expect(compile('${a.b eq null}', 'condition').vars).toEqual([]);
    // JUEL reads the right of && only when the left holds: after a null check, x is not required
    expect(compile('${x != null && x > 5}', 'condition').vars).toEqual([]);
    expect(compile('${x > 5 && y != null}', 'condition').vars).toEqual(['x']);
    expect(compile('${x == null || x > 5}', 'condition').vars).toEqual([]);
    await expectCondition('${x != null && x.contains("a")}', {}, false);
  });

  it('empty / not empty', async () => {
    await runConditions([
      ['${empty x}', {}, true],
      ['${empty x}', { x: null }, true],
      ['${empty x}', { x: '' }, true],
      ['${empty x}', { x: [] }, true],
      ['${empty x}', { x: {} }, true],
      ['${empty x}', { x: 'a' }, false],
      ['${empty x}', { x: 0 }, false],
      ['${empty x}', { x: false }, false],
      ['${empty x}', { x: [1] }, false],
      ['${empty x}', { x: [''] }, false],
      ['${empty x}', { x: [null] }, false],
      ['${empty x}', { x: { a: 1 } }, false],
      ['${not empty x}', { x: 'a' }, true],
      ['${not empty x}', {}, false],
      ['${!empty x.y}', { x: { y: [1] } }, true],
    ]);
    expect(compile('${empty x}', 'condition').vars).toEqual([]);
    expect(compile('${not empty a.b}', 'condition').vars).toEqual([]);
  });

  it('ternary in conditions with boolean branches', async () => {
    await runConditions([
      ['${c ? a > 1 : b}', { c: true, a: 2, b: false }, true],
      ['${c ? a > 1 : b}', { c: true, a: 0, b: true }, false],
      ['${c ? a > 1 : b}', { c: false, a: 0, b: true }, true],
      ['${c ? a > 1 : b}', { c: false, a: 9, b: false }, false],
    ]);
  });

  it('a non-boolean variable in boolean context is unknown (null), not false', async () => {
    await runConditions([
      ['${approved}', { approved: 5 }, null],
      ["${x == 'a'}", { x: 1 }, null],
    ]);
  });
});

describe('JUEL methods, execution variables and Spin (Camunda 7 models)', () => {
  it('execution.getVariable("x") is the variable x, null when it is not set', async () => {
    expect(compile('${execution.getVariable("amount") > 100}', 'condition').vars).toEqual([]);
    await runConditions([
      ['${execution.getVariable("amount") > 100}', { amount: 150 }, true],
      ["${execution.getVariableLocal('amount') > 100}", { amount: 50 }, false],
      ['${execution.getVariable("amount") > 100}', {}, false],
      ['${execution.getVariable("approved")}', { approved: true }, true],
      ['${execution.getVariable("o").total == 3}', { o: { total: 3 } }, true],
      ['${execution.getVariable("x") == null}', {}, true],
    ]);
    await expectValue('${execution.getVariable("o").total}', { o: { total: 3 } }, 3);
  });

  it('size, isEmpty, contains, startsWith, endsWith, equals on variables and properties', async () => {
    await runConditions([
      ['${items.size() == 2}', { items: [1, 2] }, true],
      ['${order.items.size() > 0}', { order: { items: [] } }, false],
      ['${items.isEmpty()}', { items: [] }, true],
      ['${items.isEmpty()}', { items: [0] }, false],
      ['${name.isEmpty()}', { name: '' }, true],
      ['${tags.contains("vip")}', { tags: ['new', 'vip'] }, true],
      ['${tags.contains("vi")}', { tags: ['new', 'vip'] }, false],
      ['${text.contains("vi")}', { text: 'a vip' }, true],
      ['${text.contains("x.y")}', { text: 'xzy' }, false],
      ['${ids.contains(3)}', { ids: [1, 3] }, true],
      ['${ids.contains(4)}', { ids: [1, 3] }, false],
      ['${name.startsWith("Dr")}', { name: 'Dr. No' }, true],
      ['${name.endsWith(".pdf")}', { name: 'a.pdf' }, true],
      ['${name.endsWith(".pdf")}', { name: 'apdf' }, false],
      ['${status.equals("OK")}', { status: 'OK' }, true],
      ['${x != null && x.contains("a")}', { x: 'cat' }, true],
    ]);
    await expectValue('${items.size()}', { items: [1, 2, 3] }, 3);
  });

  it('Spin: S(x).prop("a") is the property a of the JSON variable x', async () => {
    await runConditions([
      ['${S(order).prop("total").numberValue() > 10}', { order: { total: 12 } }, true],
      ['${S(order).prop("customer").prop("vip").boolValue()}', { order: { customer: { vip: true } } }, true],
      ['${S(order).hasProp("total")}', { order: {} }, false],
      ['${S(order).prop("items").elements().size() == 2}', { order: { items: [1, 2] } }, true],
    ]);
    await expectValue('${S(customer).prop("name").stringValue()}', { customer: { name: 'Ada' } }, 'Ada');
  });

  it('a ternary with values (beyond jsonpath) becomes a tree the engine evaluates, requiring what a path would', () => {
    const r = compileExpression("${vip ? 'senior' : amount > 10 ? 'mid' : owner}", 'value');
    expect(r).toMatchObject({ ok: true, expr: { path: '', vars: ['vip', 'amount', 'owner'], tree: { k: 'if', c: { k: 'var', n: 'vip' }, t: { k: 'lit', v: 'senior' } } } });
    expect(compileExpression("${empty items ? 'none' : items[0]}", 'value')).toMatchObject({ ok: true, expr: { vars: ['items'], tree: { k: 'if' } } });
    // conditions keep jsonpath's rule: branches must be conditions
    expect(compileExpression('${a ? 1 : 2}', 'condition')).toMatchObject({ ok: false, message: expect.stringMatching(/the number 1 is not a condition/) });
  });

  it('refuses other methods and calls with a reason', () => {
    const message = (text: string): string => {
      const r = compileExpression(text, 'condition');
      return r.ok ? 'compiled' : r.message;
    };
    expect(message('${x.foo()}')).toMatch(/method foo\(\) is not supported \(supported: size, isEmpty/);
    expect(message('${items.contains(other)}')).toMatch(/contains\(\) takes one string, number or boolean literal/);
    expect(message('${execution.getVariable(name)}')).toMatch(/execution.getVariable\(\) takes one string literal/);
    expect(message('${execution.processBusinessKey}')).toMatch(/the execution object is not supported/);
    expect(message('${dateTime().plusDays(1)}')).toMatch(/a date-time is not a condition/);
    expect(message('${formatDate(x)}')).toMatch(/function calls are not supported/);
  });
});

describe('FEEL', () => {
  it('comparisons, and/or, arithmetic', async () => {
    await runConditions([
      ['=a != b', { a: 1, b: 2 }, true],
      ['=a <= 2 or b', { a: 3, b: true }, true],
      ['=a <= 2 or b', { a: 3, b: false }, false],
      ['=priority + 10 > 50', { priority: 41 }, true],
      ['=(a - 1) * 2 / 4 = 1', { a: 3 }, true],
      ['=-x < 0', { x: 1 }, true],
      ['=x = -1.5', { x: -1.5 }, true],
      ['="a" = "a"', {}, true],
      ['=s = "tab\\there \\"q\\" \\u00e9"', { s: 'tab\there "q" é' }, true],
      ['=x > 1 // trailing comment', { x: 2 }, true],
      ['=x /* inline */ > 1', { x: 0 }, false],
      ['=true', {}, true],
      ['=false', {}, false],
    ]);
  });

  it('in: lists, unary tests, ranges; between', async () => {
    await runConditions([
      ['=status in ("a","b")', { status: 'a' }, true],
      ['=status in ("a","b")', { status: 'x' }, false],
      ['=x in [1,2,3]', { x: 3 }, true],
      ['=x in [1..5]', { x: 5 }, true],
      ['=x in [1..5)', { x: 5 }, false],
      ['=x in ]1..5]', { x: 1 }, false],
      ['=x in (1..5)', { x: 3 }, true],
      ['=x in < 5', { x: 4 }, true],
      ['=x in (>10, 1)', { x: 1 }, true],
      ['=x in (>10, 1)', { x: 5 }, false],
      ['=x in 5', { x: 5 }, true],
      ['=x in allowed', { x: 'b', allowed: ['a', 'b'] }, true],
      ['=x between 1 and 5', { x: 1 }, true],
      ['=x between 1 and 5', { x: 6 }, false],
      ['=x in null', {}, true],
    ]);
  });

  it('paths, 1-based list indexes, names with spaces', async () => {
    await runConditions([
      ['=items[1] = "first"', { items: ['first', 'second'] }, true],
      ['=items[2] = "first"', { items: ['first', 'second'] }, false],
      ['=items[-1] = "last"', { items: ['a', 'last'] }, true],
      ['=items[-2] = "a"', { items: ['a', 'last'] }, true],
      ['=order.lines[2].qty > 1', { order: { lines: [{ qty: 1 }, { qty: 2 }] } }, true],
      ['=a.b.c = 2', { a: { b: { c: 2 } } }, true],
      ['=m["k"] = 1', { m: { k: 1 } }, true],
      ['=first name = "Ann"', { 'first name': 'Ann' }, true],
    ]);
    expect(compile('=items[1] = "x"', 'condition').path).toBe('($."items"[0] == "x")');
    expect(compile('=first  name = "Ann"', 'condition').vars).toEqual(['first name']);
  });

  it('null checks and is defined do not require the variable', async () => {
    await runConditions([
      ['=x = null', {}, true],
      ['=x = null', { x: 'v' }, false],
      ['=x != null', {}, false],
      ['=x != null', { x: 'v' }, true],
      ['=x.y = null', { x: {} }, true],
      ['=is defined(x)', {}, false],
      ['=is defined(x)', { x: null }, true],
      ['=not(is defined(x))', {}, true],
      ['=is defined(x) and x > 5', { x: 6 }, true],
    ]);
    expect(compile('=x = null or is defined(y)', 'condition').vars).toEqual([]);
    expect(compile('=is defined(x) and x > 5', 'condition').vars).toEqual([]);
  });

  it('string and numeric functions', async () => {
    await runConditions([
      ['=starts with(s, "ab")', { s: 'abc' }, true],
      ['=starts with(s, "ab")', { s: 'cab' }, false],
      ['=ends with(s, "a.c")', { s: 'xa.c' }, true],
      ['=ends with(s, "a.c")', { s: 'xabc' }, false],
      ['=contains(s, "a.c")', { s: 'xa.cx' }, true],
      ['=contains(s, "a.c")', { s: 'xabcx' }, false],
      ['=contains(s, "(x)")', { s: 'a(x)b' }, true],
      ['=matches(s, "^a+$")', { s: 'aaa' }, true],
      ['=matches(s, "^a+$")', { s: 'aab' }, false],
      ['=matches(s, "^A", "i")', { s: 'abc' }, true],
      ['=list contains(roles, "admin")', { roles: ['user', 'admin'] }, true],
      ['=list contains(roles, "admin")', { roles: ['user'] }, false],
      ['=count(items) > 2', { items: [1, 2, 3] }, true],
      ['=abs(x) = 3', { x: -3 }, true],
      ['=floor(x) = 1 and ceiling(x) = 2', { x: 1.5 }, true],
    ]);
  });

  it('if-then-else in conditions with boolean branches', async () => {
    await runConditions([
      ['=if c then a > 1 else b', { c: true, a: 2, b: false }, true],
      ['=if c then a > 1 else b', { c: false, a: 2, b: false }, false],
      ['=if amount > 100 then approved else true', { amount: 5, approved: false }, true],
      ['=if amount > 100 then approved else true', { amount: 500, approved: false }, false],
    ]);
  });
});

describe('vars', () => {
  it('lists required top-level variables in order of first use, once', () => {
    expect(compile('${a.b > 1 && c[0] == 2 && a.d}', 'condition').vars).toEqual(['a', 'c']);
    expect(compile('=x > y and y < z', 'condition').vars).toEqual(['x', 'y', 'z']);
    expect(compile('=order.owner', 'value').vars).toEqual(['order']);
    expect(compile('=50', 'value').vars).toEqual([]);
    expect(compile('=empty = null', 'condition').vars).toEqual([]);
  });
});

describe('values', () => {
  it('variables, properties, literals, arithmetic, predicates', async () => {
    await expectValue('${initiator}', { initiator: 'demo' }, 'demo');
    await expectValue('=assignee', { assignee: 'kermit' }, 'kermit');
    await expectValue('=assignee', {}, undefined);
    await expectValue('=order.owner', { order: { owner: 'piggy' } }, 'piggy');
    await expectValue('${a.b[1]}', { a: { b: ['x', 'y'] } }, 'y');
    await expectValue('=list[1]', { list: ['x', 'y'] }, 'x');
    await expectValue("${'ab'}", {}, 'ab');
    await expectValue('=50', {}, 50);
    await expectValue('=-1.5', {}, -1.5);
    await expectValue('=priority + 10', { priority: 40 }, 50);
    await expectValue('${priority * 2 - 1}', { priority: 3 }, 5);
    await expectValue('=null', {}, null);
    await expectValue('=true', {}, true);
    await expectValue('=x > 1', { x: 2 }, true);
    await expectValue('${a == 1 && b}', { a: 1, b: false }, false);
    await expectValue('=count(xs)', { xs: [1, 2] }, 2);
    await expectValue('=groups', { groups: ['a', 'b'] }, ['a', 'b']);
    expect(compile('=priority + 10', 'value')).toEqual({ src: '=priority + 10', path: '($."priority" + 10)', vars: ['priority'] });
  });
});

describe('strings built from parts (values)', () => {
  const concat = (text: string): unknown => {
    const r = compileExpression(text, 'value');
    if (!r.ok) throw new Error(r.message);
    expect(r.expr.path).toBe('');
    return { vars: r.expr.vars, concat: r.expr.concat };
  };

  it('a JUEL template is its text and expressions; a null part adds nothing', () => {
    expect(concat('Order ${orderId} of ${customer.name}!')).toEqual({
      vars: ['orderId', 'customer'],
      concat: { nulls: 'empty', parts: [{ text: 'Order ' }, { path: '$."orderId"' }, { text: ' of ' }, { path: '$."customer"."name"' }, { text: '!' }] },
    });
    expect(concat('${a}${b}')).toEqual({ vars: ['a', 'b'], concat: { nulls: 'empty', parts: [{ path: '$."a"' }, { path: '$."b"' }] } });
    expect(concat('embedded:app:forms/#{form}.html')).toMatchObject({ concat: { parts: [{ text: 'embedded:app:forms/' }, { path: '$."form"' }, { text: '.html' }] } });
  });

  it('a FEEL + chain with a string literal or string() concatenates; a null operand makes it null', () => {
    expect(concat('="Order " + string(orderId) + " " + name')).toEqual({
      vars: ['orderId', 'name'],
      concat: { nulls: 'null', parts: [{ text: 'Order ' }, { path: '$."orderId"' }, { text: ' ' }, { path: '$."name"' }] },
    });
    expect(concat('=string(total * 2)')).toEqual({ vars: ['total'], concat: { nulls: 'null', parts: [{ path: '($."total" * 2)' }] } });
  });

  it('a single expression, and FEEL + with a number literal, stay plain expressions', () => {
    for (const [text, path] of [['${x}', '$."x"'], ['=a + 1', '($."a" + 1)'], ['=(a + b) * 2', '(($."a" + $."b") * 2)']]) {
      const r = compileExpression(text, 'value');
      expect(r.ok && r.expr).toEqual({ src: text, path, vars: expect.any(Array) });
    }
  });

  it('FEEL + over variables only is decided when it runs (strings concatenate, numbers add): its operands', () => {
    const r = compileExpression('=first + " " + last', 'value');
    expect(r.ok && r.expr.concat).toBeDefined(); // a string literal: a concatenation
    const plus = compileExpression('=firstName + lastName + order.suffix', 'value');
    expect(plus.ok && plus.expr).toEqual({
      src: '=firstName + lastName + order.suffix',
      path: '',
      vars: ['firstName', 'lastName', 'order'],
      plus: ['$."firstName"', '$."lastName"', '$."order"."suffix"'],
    });
    // in a condition it stays arithmetic
    expect(compileExpression('=a + b > 2', 'condition')).toMatchObject({ ok: true, expr: { path: '(($."a" + $."b") > 2)' } });
  });
});

describe('rejections', () => {
  const reject = (text: string, kind: ExpressionKind = 'condition'): string => {
    const r = compileExpression(text, kind);
    if (r.ok) throw new Error(`expected ${text} to be rejected, got ${r.expr.path}`);
    return r.message;
  };

  it('names the expression and the reason', () => {
    expect(reject('${bean.call()}')).toMatch(/^cannot compile expression "\$\{bean.call\(\)\}": method call\(\) is not supported \(supported: size, isEmpty, /);
    expect(reject('=foo(x)')).toBe('cannot compile expression "=foo(x)": unknown or unsupported function "foo"');
  });

  it.each<[string, ExpressionKind, RegExp]>([
    ['${foo()}', 'condition', /function calls are not supported/],
    ['${fn:upper(x) == "A"}', 'condition', /function calls are not supported/],
    ['${execution.processBusinessKey}', 'value', /execution object is not supported/],
    ['${task.name}', 'value', /task object is not supported/],
    ['Hello ${name}', 'condition', /a string template\) is only supported where a value is expected/],
    ['${a}${b}', 'condition', /a string template/],
    ['Approved: ${amount > 100}', 'value', /cannot be used as a value/],
    ['=string(x)', 'condition', /string\(\) is not a condition/],
    ["${'a' + b}", 'value', /string concatenation/],
    ['=@"10:00:00"', 'value', /@"10:00:00" is not a date, date-time or duration/],
    ['=function(x) x', 'value', /function definitions/],
    ['=foo(x)', 'condition', /unknown or unsupported function "foo"/],
    ['=', 'condition', /empty FEEL expression/],
    ['=   ', 'value', /empty FEEL expression/],
    ['${}', 'condition', /empty expression/],
    ['${ }', 'condition', /empty expression/],
    ['${a >}', 'condition', /expected|unexpected end of expression/],
    ['${a > 1', 'condition', /missing closing "}"/],
    ["${s == 'abc}", 'condition', /unterminated string literal/],
    ['${a = 1}', 'condition', /assignment is not supported/],
    ['${{1, 2}}', 'value', /set and map literals/],
    ['${a ~ b}', 'condition', /unexpected character "~"/],
    ['=x >', 'condition', /syntax error: unexpected end of expression/],
    ['=x > > 1', 'condition', /unary tests \(like "> 5"\) are only supported after "in"/],
    ['=x > * 1', 'condition', /syntax error at character 6 near "\* 1"/],
    ['=x[0]', 'value', /FEEL list indexes start at 1/],
    ['${x[-1]}', 'value', /non-negative integer/],
    ['${a[b]}', 'value', /only non-negative integer literals and string literals/],
    ['=if a then 1 else 2', 'condition', /the number 1 is not a condition/],
    ['${a ? 1 : 2}', 'condition', /the number 1 is not a condition/],
    ['=5', 'condition', /the number 5 is not a condition/],
    ['${"yes"}', 'condition', /the string "yes" is not a condition/],
    ['=amount + 1', 'condition', /an arithmetic expression is not a condition/],
    ['=null', 'condition', /null is not a condition/],
    // values only the FEEL interpreter can compute are still not conditions (not "unsupported")
    ['=now()', 'condition', /the function "now" is not a condition/],
    ['=date("2024-01-01")', 'condition', /the function "date" is not a condition/],
    ['={a: 1}', 'condition', /a context \(\{\.\.\.\}\) is not a condition/],
    ['=[1, 2]', 'condition', /a list is not a condition/],
    ['=count(items)', 'condition', /a number is not a condition/],
    ['${(a + 1) == null}', 'condition', /only supported on a variable or property/],
    ['${empty (a + 1)}', 'condition', /empty is only supported on a variable/],
    ['=x instance of string', 'condition', /"instance of" is not supported/],
    ['=not(a, b)', 'condition', /expects 1 argument/],
    ['=contains(s: "x", match: "y")', 'condition', /named function parameters/],
    ['=matches(s, "a", "g")', 'condition', /unsupported regular expression flags "g"/],
    ['=> 5', 'condition', /syntax error|unary tests/],
    ['=[1..5]', 'condition', /unary tests .* are only supported after "in"/],
    ['=a.b()', 'condition', /functions stored in variables/],
    ['plain text', 'value', /not an expression/],
    ['${a instanceof b}', 'condition', /unexpected "instanceof"|unexpected keyword/],
  ])('%s (%s)', (text, kind, reason) => {
    const message = reject(text, kind);
    expect(message.startsWith(`cannot compile expression "${text.trim()}": `)).toBe(true);
    expect(message).toMatch(reason);
  });

  it('never throws, whatever the input', () => {
    const inputs = ['${', '#{', '=(', '=)', '=[', '${[', '${a.}', '${a..b}', '${.}', '=' + '('.repeat(5000) + '1' + ')'.repeat(5000), '${' + '('.repeat(5000) + '1' + ')'.repeat(5000) + '}', '=\u0000', '${\u0000}', '=a.', '=a[', '="unterminated'];
    for (const text of inputs) {
      for (const kind of ['condition', 'value'] as const) {
        expect(() => compileExpression(text, kind)).not.toThrow();
      }
    }
  });
});

describe('generated paths are valid jsonpath', () => {
  it('parses every successful compilation of a mixed corpus', async () => {
    if (!db) return;
    const corpus = ['${a.b["c d"][2] > -1.25e-3}', '=x in ("a\\\\b", "\\"", "é")', '=is defined(a.b) or empty = null', '${empty m["\\\\"]}'];
    for (const text of corpus) {
      const { path } = compile(text, 'condition');
      await expect(db.query('select $1::jsonpath', [path])).resolves.toBeDefined();
    }
  });
});
