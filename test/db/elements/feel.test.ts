/**
 * FEEL beyond SQL/JSON path (Camunda 8 models): contexts, lists, filters,
 * quantifiers, for, if-then-else values and the built-in functions, compiled
 * to a tree at deploy time and evaluated by the engine, through real
 * processes: zeebe:output mappings of a pass-through task write each case's
 * result to the instance, and FEEL conditions choose gateway paths.
 */
import { compileExpression } from '../../../compiler/expression';
import { createTestDb, type TestDb } from '../../helpers/db';
import { deployProcess, expectRejectedUnchanged } from '../../helpers/engine';
import { actors, getInstance, history, openTask, startProcess, type Actors } from './support';

let db: TestDb;
let as: Actors;

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** [FEEL value expression, expected result] over VARIABLES. */
const VALUES: Array<[string, Json]> = [
  ['=if amount > 10 then "big" else "small"', 'big'],
  ['=if amount > 1000 then "big" else null', null],
  ['={id: order.id, total: sum(order.items.price), count: count(order.items), label: "#" + string(order.id)}', { id: 7, total: 13.5, count: 3, label: '#7' }],
  ['={a: 1, b: a + 1}', { a: 1, b: 2 }],
  ['=[1, amount, "x", null]', [1, 20, 'x', null]],
  ['=order.items[price > 5].name', ['pen', 'ink']],
  ['=order.items[price > 100]', []],
  ['=order.items[1].name', 'cap'],
  ['=order.items[-1].name', 'ink'],
  ['=tags[item != "old"]', ['new', 'vip']],
  ['=for i in order.items return i.price * 2', [3, 12, 12]],
  ['=string length(name)', 5],
  ['=upper case(name) + "/" + lower case(name)', 'GRACE/grace'],
  ['=substring(name, 2, 3)', 'rac'],
  ['=substring(name, -2)', 'ce'],
  ['=substring before("a-b-c", "-") + substring after("a-b-c", "-")', 'ab-c'],
  ['=replace("2030-01-15", "(\\d+)-(\\d+)-(\\d+)", "$3.$2.$1")', '15.01.2030'],
  ['=split("a;b;c", ";")', ['a', 'b', 'c']],
  ['=string join(tags, ", ")', 'new, old, vip'],
  ['=trim("  x ")', 'x'],
  ['=number("12.5") * 2', 25],
  ['=string(amount)', '20'],
  ['=decimal(1 / 3, 2)', 0.33],
  ['=decimal(2.5, 0)', 2],
  ['=round half up(2.5, 0)', 3],
  ['=round down(-1.29, 1)', -1.2],
  ['=floor(1.7) + ceiling(1.2) + abs(-1)', 4],
  ['=modulo(-12, 5)', 3],
  ['=min(order.items.price)', 1.5],
  ['=max(3, 9, 4)', 9],
  ['=mean([1, 2, 6])', 3],
  ['=product([2, 3, 4])', 24],
  ['=sublist([1, 2, 3, 4], 2, 2)', [2, 3]],
  ['=append(tags, "x")', ['new', 'old', 'vip', 'x']],
  ['=concatenate([1], [2, 3])', [1, 2, 3]],
  ['=reverse([1, 2, 3])', [3, 2, 1]],
  ['=index of([1, 2, 1], 1)', [1, 3]],
  ['=distinct values([1, 2, 1, 3])', [1, 2, 3]],
  ['=flatten([1, [2, [3]]])', [1, 2, 3]],
  ['=get value(order, "id")', 7],
  ['=context put({a: 1}, "b", 2)', { a: 1, b: 2 }],
  ['=context merge([{a: 1}, {b: 2}, {a: 3}])', { a: 3, b: 2 }],
  ['=get entries({a: 1})', [{ key: 'a', value: 1 }]],
  ['=date and time("2030-01-15T09:00:00+01:00")', '2030-01-15T08:00:00Z'],
  ['=date and time("2030-01-15T09:00:00") + duration("PT1H30M")', '2030-01-15T10:30:00Z'],
  ['=date("2030-01-31") + duration("P1M")', '2030-02-28'],
  ['=duration("P3D")', 'P3D'],
  ['=duration("three days")', null],
  ['=@"2030-01-15T09:00:00Z" + @"P1D"', '2030-01-16T09:00:00Z'],
  ['=@"2030-01-15" < @"2030-02-01"', true],
  ['=day of week(date("2030-01-15")) + " " + month of year(@"2030-01-15T10:00:00Z")', 'Tuesday January'],
  ['=[day of year(@"2030-02-01"), week of year(@"2030-01-01")]', [32, 1]],
  ['=last day of month(@"2028-02-10")', '2028-02-29'],
  ['=years and months duration(@"2025-01-15", @"2026-03-20")', 'P1Y2M'],
  ['=some i in order.items satisfies i.price > 5', true],
  ['=every i in order.items satisfies i.price > 5', false],
  ['=string length(name) > 3 and list contains(tags, "vip")', true],
  ['=is defined(order.missing)', false],
  ['=upper case(amount)', null],
  // names bound by for, some / every and contexts hide variables of the same name
  ['=for amount in [1, 2] return amount * 10', [10, 20]],
  ['={amount: 1, twice: amount * 2}.twice', 2],
  // a filter over a large list (each item's names are bound apart from the variables: linear)
  ['=count(lines[qty > 50])', 2450],
];

const VARIABLES = {
  amount: 20,
  name: 'Grace',
  tags: ['new', 'old', 'vip'],
  order: { id: 7, items: [{ name: 'cap', price: 1.5 }, { name: 'pen', price: 6 }, { name: 'ink', price: 6 }] },
  lines: Array.from({ length: 5000 }, (_, i) => ({ sku: `s${i}`, qty: i % 100 })),
};

function xmlAttr(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

beforeAll(async () => {
  db = await createTestDb();
  as = await actors(db);
  const outputs = VALUES.map(([src], i) => `<zeebe:output source="${xmlAttr(src)}" target="r${i}"/>`).join('\n');
  await deployProcess(as.admin, 'feel_values', `
    <startEvent id="s"/><sequenceFlow id="f1" sourceRef="s" targetRef="t"/>
    <task id="t"><extensionElements><zeebe:ioMapping>
      <zeebe:output source="=now()" target="stamp"/>
      <zeebe:output source="=today()" target="day"/>
      <zeebe:output source="=now() + duration(&quot;P3D&quot;) &gt; now()" target="later"/>
      ${outputs}
    </zeebe:ioMapping></extensionElements></task>
    <sequenceFlow id="f2" sourceRef="t" targetRef="e"/><endEvent id="e"/>`);
  // FEEL conditions on the flows out of a gateway, and a due date computed in FEEL
  await deployProcess(as.admin, 'feel_route', `
    <startEvent id="s"/><sequenceFlow id="f1" sourceRef="s" targetRef="g"/>
    <exclusiveGateway id="g" default="other"/>
    <sequenceFlow id="vip" sourceRef="g" targetRef="vipDesk">
      <conditionExpression>=some i in order.items satisfies i.price &gt; 5 and string length(name) &gt; 3</conditionExpression>
    </sequenceFlow>
    <sequenceFlow id="other" sourceRef="g" targetRef="desk"/>
    <userTask id="vipDesk"><extensionElements>
      <zeebe:assignmentDefinition assignee="=lower case(name)"/>
      <zeebe:taskSchedule dueDate="=date and time(&quot;2030-01-15T09:00:00Z&quot;) + duration(&quot;P2D&quot;)"/>
    </extensionElements></userTask>
    <userTask id="desk"/>`);
});

afterAll(async () => {
  await db?.close();
});

describe('FEEL evaluated by the engine', () => {
  test('each expression compiles: most to a tree, those SQL/JSON path can express to a path', () => {
    const forms = VALUES.map(([src]) => {
      const r = compileExpression(src, 'value');
      return r.ok ? (r.expr.tree ? 'tree' : 'path') : r.message;
    });
    expect(forms.filter((f) => f !== 'tree' && f !== 'path')).toEqual([]);
    expect(VALUES.filter((_, i) => forms[i] === 'path').map(([src]) => src)).toEqual(['=order.items[1].name', '=order.items[-1].name', '=string(amount)', '=floor(1.7) + ceiling(1.2) + abs(-1)', '=is defined(order.missing)']);
  });

  test('values: contexts, lists, filters, for, if, string / numeric / list / context / temporal functions', async () => {
    const instance = await startProcess(as.admin, 'feel_values', VARIABLES);
    const { variables } = await getInstance(as.admin, instance.id);
    expect(VALUES.map(([src], i) => [src, variables[`r${i}`] ?? null])).toEqual(VALUES.map(([src, expected]) => [src, expected]));
    expect(variables.stamp).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/);
    expect(variables.day).toMatch(/^\d{4}-\d{2}-\d{2}$/);
    expect(variables.later).toBe(true);
  });

  test('conditions choose the path; attributes are computed in FEEL', async () => {
    const vip = await startProcess(as.admin, 'feel_route', VARIABLES);
    const task = await openTask(as.admin, vip.id, 'vipDesk');
    expect(task.assignee).toBe('grace');
    expect(new Date(task.due_at!).toISOString()).toBe('2030-01-17T09:00:00.000Z');
    const other = await startProcess(as.admin, 'feel_route', { ...VARIABLES, name: 'Al' });
    expect(await history(as.admin, other.id)).toContain('desk userTask active');
  });

  test('script tasks: zeebe:script and Camunda 7 FEEL / JUEL scripts store their result; with output mappings it is a local they read', async () => {
    await deployProcess(as.admin, 'feel_scripts', `
      <startEvent id="s"/><sequenceFlow id="f1" sourceRef="s" targetRef="total"/>
      <scriptTask id="total"><extensionElements>
        <zeebe:script expression="=sum(for i in order.items return i.price * 1.19)" resultVariable="gross"/>
      </extensionElements></scriptTask>
      <sequenceFlow id="f2" sourceRef="total" targetRef="label"/>
      <scriptTask id="label"><extensionElements>
        <zeebe:script expression="={text: upper case(name), n: count(tags)}" resultVariable="summary"/>
        <zeebe:ioMapping><zeebe:output source="=summary.text" target="shout"/></zeebe:ioMapping>
      </extensionElements></scriptTask>
      <sequenceFlow id="f3" sourceRef="label" targetRef="c7feel"/>
      <scriptTask id="c7feel" scriptFormat="feel" camunda:resultVariable="vip"><script>list contains(tags, "vip")</script></scriptTask>
      <sequenceFlow id="f4" sourceRef="c7feel" targetRef="c7juel"/>
      <scriptTask id="c7juel" scriptFormat="juel" camunda:resultVariable="big"><script>\${amount > 10}</script></scriptTask>
      <sequenceFlow id="f5" sourceRef="c7juel" targetRef="e"/><endEvent id="e"/>`);
    const instance = await startProcess(as.admin, 'feel_scripts', VARIABLES);
    const { variables } = await getInstance(as.admin, instance.id);
    expect(variables).toMatchObject({ gross: 16.065, shout: 'GRACE', vip: true, big: true });
    expect(variables).not.toHaveProperty('summary');
    expect((await history(as.admin, instance.id)).filter((r) => r.includes('scriptTask'))).toEqual([
      'total scriptTask completed', 'label scriptTask completed', 'c7feel scriptTask completed', 'c7juel scriptTask completed']);
  });

  test('Camunda 7 date arithmetic: dateTime() / now() with Joda-Time\'s plus and minus methods for due dates and timers', async () => {
    await deployProcess(as.admin, 'juel_dates', `
      <startEvent id="s"/><sequenceFlow id="f1" sourceRef="s" targetRef="fork"/><parallelGateway id="fork"/>
      <sequenceFlow id="f2" sourceRef="fork" targetRef="review"/>
      <userTask id="review" camunda:dueDate="\${dateTime().plusDays(5).toDate()}" camunda:followUpDate="\${now().plusHours(hours).minusMinutes(30)}"/>
      <sequenceFlow id="f3" sourceRef="fork" targetRef="wait"/>
      <intermediateCatchEvent id="wait"><timerEventDefinition><timeDate>\${dateTime().plusWeeks(1)}</timeDate></timerEventDefinition></intermediateCatchEvent>`);
    const instance = await startProcess(as.admin, 'juel_dates', { hours: 2 });
    const { rows } = await as.admin.query<{ due: number; follow_up: number; timer: number }>(
      `select extract(epoch from t.due_at - now())::int as due, extract(epoch from t.follow_up_at - now())::int as follow_up,
              (select extract(epoch from s.due_at - now())::int from bpm.event_subscription s where s.instance_id = t.instance_id) as timer
       from bpm.user_task t where t.instance_id = $1`, [instance.id]);
    const day = 86400;
    expect(rows[0].due).toBeGreaterThan(5 * day - 60);
    expect(rows[0].due).toBeLessThanOrEqual(5 * day);
    expect(rows[0].follow_up).toBeGreaterThan(90 * 60 - 60);
    expect(rows[0].follow_up).toBeLessThanOrEqual(90 * 60);
    expect(rows[0].timer).toBeGreaterThan(7 * day - 60);
    expect(compileExpression('${dateTime().plusDays(1) > due}', 'condition')).toMatchObject({ ok: false, message: expect.stringMatching(/only supported as a whole value/) });
  });

  test('Camunda 7 JUEL ternaries with values: an assignee and output parameters the engine evaluates', async () => {
    await deployProcess(as.admin, 'juel_ternary', `
      <startEvent id="s"/><sequenceFlow id="f1" sourceRef="s" targetRef="t"/>
      <task id="t"><extensionElements><camunda:inputOutput>
        <camunda:outputParameter name="tier">\${amount &gt; 100 ? 'gold' : amount &gt; 10 ? 'silver' : 'bronze'}</camunda:outputParameter>
        <camunda:outputParameter name="firstTag">\${empty tags ? 'none' : tags[0]}</camunda:outputParameter>
        <camunda:outputParameter name="net">\${vip ? amount * 0.9 : amount}</camunda:outputParameter>
      </camunda:inputOutput></extensionElements></task>
      <sequenceFlow id="f2" sourceRef="t" targetRef="review"/>
      <userTask id="review" camunda:assignee="\${vip ? 'senior' : 'junior'}"/>`);
    const vip = await startProcess(as.admin, 'juel_ternary', { amount: 20, tags: [], vip: true });
    expect((await getInstance(as.admin, vip.id)).variables).toMatchObject({ tier: 'silver', firstTag: 'none', net: 18 });
    expect((await openTask(as.admin, vip.id, 'review')).assignee).toBe('senior');
    const regular = await startProcess(as.admin, 'juel_ternary', { amount: 500, tags: ['new'], vip: false });
    expect((await getInstance(as.admin, regular.id)).variables).toMatchObject({ tier: 'gold', firstTag: 'new', net: 500 });
    expect((await openTask(as.admin, regular.id, 'review')).assignee).toBe('junior');
  });

  test('JUEL null guards: a variable read after "x != null &&" is not required, so the guard on an unset variable is false', async () => {
    await deployProcess(as.admin, 'juel_guard', `
      <startEvent id="s"/><sequenceFlow id="f1" sourceRef="s" targetRef="g"/>
      <exclusiveGateway id="g" default="other"/>
      <sequenceFlow id="docs" sourceRef="g" targetRef="withDocs">
        <conditionExpression>\${documents != null &amp;&amp; documents.contains("invoice") &amp;&amp; amount &gt; 10}</conditionExpression>
      </sequenceFlow>
      <sequenceFlow id="other" sourceRef="g" targetRef="without"/>
      <userTask id="withDocs"/><userTask id="without"/>`);
    const unset = await startProcess(as.admin, 'juel_guard', { amount: 20 });
    expect(await history(as.admin, unset.id)).toContain('without userTask active');
    const withDocs = await startProcess(as.admin, 'juel_guard', { documents: ['invoice'], amount: 20 });
    expect(await history(as.admin, withDocs.id)).toContain('withDocs userTask active');
    // amount is read unguarded: required as before
    await expectRejectedUnchanged(db.root, () => startProcess(as.admin, 'juel_guard', { documents: ['invoice'] }), 'BP302', /unknown variable "amount"/);
  });

  test('a variable the expression needs that is not set is BP302, and nothing is kept', async () => {
    await expectRejectedUnchanged(db.root, () => startProcess(as.admin, 'feel_values', { ...VARIABLES, order: undefined }), 'BP302', /unknown variable "order"/);
  });
});
