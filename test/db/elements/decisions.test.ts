/**
 * DMN decisions: deployed from DMN files with bpm.deploy, evaluated by
 * bpm.evaluate_decision and by business rule tasks (Camunda 7's
 * camunda:decisionRef with camunda:mapDecisionResult, Camunda 8's
 * zeebe:calledDecision): every hit policy, unary tests, required decisions,
 * version bindings, and the errors that leave everything unchanged.
 */
import fs from 'fs';
import path from 'path';
import type pg from 'pg';
import { createTestDb, type TestDb } from '../../helpers/db';
import { bpmnProcess, deployProcess, deployXml, expectRejectedUnchanged, expectSqlState } from '../../helpers/engine';
import { actors, getInstance, history, startProcess, TENANT, type Actors } from './support';

let db: TestDb;
let as: Actors;
let designer: pg.Client;

const FIXTURES = path.join(__dirname, '..', '..', 'fixtures', 'dmn');
const dmn = (name: string): { name: string; xml: string } => ({ name, xml: fs.readFileSync(path.join(FIXTURES, name), 'utf8') });

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

const evaluate = async (client: pg.ClientBase, key: string, variables: Record<string, Json>, version: number | null = null): Promise<Json> =>
  (await client.query<{ r: Json }>('select bpm.evaluate_decision($1, $2::jsonb, $3) as r', [key, JSON.stringify(variables), version])).rows[0].r;

beforeAll(async () => {
  db = await createTestDb();
  as = await actors(db);
  designer = await db.connectAs({ role: 'bpm_designer', tenant: TENANT });
  await deployXml(designer, [dmn('dish.dmn'), dmn('discount.dmn')]);
});
afterAll(() => db.close());

describe('deploying DMN files', () => {
  test('each decision of the file becomes version 1 of its key, with its required decisions; a byte-identical redeploy adds nothing', async () => {
    const rows = (await db.root.query('select key, version, name, version_tag, requires from bpm.decision_definition where tenant_id = $1 order by key', [TENANT])).rows;
    expect(rows.map((r) => r.key)).toEqual([
      'beverages', 'discount_any', 'discount_first', 'discount_output_order', 'discount_priority', 'discount_rule_order', 'discount_unique',
      'dish', 'label', 'points_count', 'points_sum',
    ]);
    expect(rows.find((r) => r.key === 'dish')).toMatchObject({ version: 1, name: 'Dish', version_tag: 'v1', requires: [] });
    expect(rows.find((r) => r.key === 'beverages')).toMatchObject({ version: 1, requires: ['dish'] });
    await deployXml(designer, [dmn('dish.dmn')]);
    expect((await db.root.query('select count(*)::int n from bpm.decision_definition where tenant_id = $1', [TENANT])).rows[0].n).toBe(11);
  });

  test('another tenant sees none of them and cannot evaluate them (BP113)', async () => {
    const other = await db.connectAs({ role: 'bpm_admin', tenant: 'elsewhere', user: 'eve' });
    expect((await other.query('select * from bpm.decision_definition')).rows).toEqual([]);
    await expectSqlState(evaluate(other, 'dish', { season: 'Fall', guestCount: 2 }), 'BP113', /decision dish \(latest version\) is not deployed/);
  });
});

describe('evaluate_decision', () => {
  test.each<[string, Record<string, Json>, Json]>([
    // UNIQUE (the default), string and number unary tests, intervals, lists, "-"
    ['dish', { season: 'Fall', guestCount: 8 }, 'Spareribs'],
    ['dish', { season: 'Spring', guestCount: 5 }, 'Steak'],
    ['dish', { season: 'Spring', guestCount: 4 }, 'Dry Aged Gourmet Steak'],
    ['dish', { season: 'Winter', guestCount: 9 }, 'Stew'],
    ['dish', { season: 'Summer', guestCount: 200 }, 'Light Salad and a nice Steak'],
    ['dish', { season: 'Monsoon', guestCount: 2 }, null],
    // COLLECT over a required decision's result (by its output name, as Camunda 7 models read it)
    ['beverages', { season: 'Fall', guestCount: 2, guestsWithChildren: true }, ['Aecht Schlenkerla Rauchbier', 'Apple Juice', 'Water']],
    ['beverages', { season: 'Monsoon', guestCount: 2, guestsWithChildren: false }, ['Water']],
    // FIRST with two outputs (a context), FEEL input expressions, not(...), "?" tests, an empty output entry
    ['discount_first', { customer: { tier: 'gold' }, items: [{ price: 60 }, { price: 45 }] }, { discount: 15, reason: 'gold, 2 items' }],
    ['discount_first', { customer: { tier: 'gold' }, items: [{ price: 10 }] }, { discount: 10, reason: 'gold' }],
    ['discount_first', { customer: { tier: 'silver' }, items: [{ price: 50 }] }, { discount: 5, reason: 'volume' }],
    ['discount_first', { customer: { tier: 'basic' }, items: [{ price: 50 }] }, null],
    ['discount_first', { customer: { tier: 'platinum' }, items: [{ price: 1 }] }, { discount: 20, reason: null }],
    // ANY: matching rules that agree
    ['discount_any', { total: 25 }, 5],
    // PRIORITY and OUTPUT ORDER by outputValues ("high","medium","low"), RULE ORDER keeps rule order
    ['discount_priority', { total: 150 }, 'high'],
    ['discount_priority', { total: 60 }, 'medium'],
    ['discount_output_order', { total: 150 }, ['high', 'medium', 'low']],
    ['discount_rule_order', { total: 150 }, [{ level: 'low', points: 1 }, { level: 'high', points: 3 }]],
    ['discount_rule_order', { total: -1 }, []],
    // COLLECT with SUM and COUNT
    ['points_sum', { total: 150 }, 7.5],
    ['points_sum', { total: -1 }, null],
    ['points_count', { total: 60 }, 2],
    ['points_count', { total: -1 }, 0],
    // a literal expression decision
    ['label', { customer: { tier: 'gold' } }, 'GOLD customer'],
  ])('%s over %j', async (key, variables, expected) => {
    expect(await evaluate(as.alice, key, variables)).toEqual(expected);
  });

  test('a violated hit policy is BP315 naming the decision and the rules', async () => {
    await expectSqlState(evaluate(as.admin, 'discount_unique', { customer: { tier: 'platinum' } }), 'BP315', /decision discount_unique has hit policy UNIQUE, but rules u_gold, u_plat match/);
    await expectSqlState(evaluate(as.admin, 'discount_any', { total: 35 }), 'BP315', /hit policy ANY, but the matching rules y_a, y_b, y_c have different outputs/);
  });

  test('a missing input variable is BP302; values of the wrong type match nothing (FEEL null); variables must be an object (BP401)', async () => {
    await expectSqlState(evaluate(as.admin, 'dish', { season: 'Fall' }), 'BP302', /unknown variable "guestCount" in expression guestCount of element decision dish/);
    expect(await evaluate(as.admin, 'discount_any', { total: 'lots' })).toBeNull();
    expect(await evaluate(as.admin, 'label', { customer: { tier: 5 } })).toBeNull();
    await expectSqlState(as.admin.query(`select bpm.evaluate_decision('dish', '[1]'::jsonb)`), 'BP401', /variables must be a JSON object/);
  });

  test('a data error while testing a rule (a numeric overflow) is BP303 naming the decision', async () => {
    await deployXml(designer, [{
      name: 'overflow.dmn',
      xml: `<?xml version="1.0" encoding="UTF-8"?>
        <definitions xmlns="https://www.omg.org/spec/DMN/20191111/MODEL/" id="o" name="O" namespace="http://pgbpm.test/dmn">
          <decision id="overflow"><decisionTable id="ot">
            <input id="oi"><inputExpression id="oe"><text>amount</text></inputExpression></input>
            <output id="oo" name="x"/>
            <rule id="or"><inputEntry id="ori"><text>&gt; 10 ** 100000 * 10 ** 100000</text></inputEntry><outputEntry id="oro"><text>1</text></outputEntry></rule>
          </decisionTable></decision>
        </definitions>`,
    }]);
    await expectSqlState(evaluate(as.admin, 'overflow', { amount: 1 }), 'BP303', /^decision overflow cannot be evaluated: /);
  });

  test('a changed file deploys version 2 of its decisions; evaluate_decision takes the latest or a given version', async () => {
    const v2 = dmn('dish.dmn');
    v2.xml = v2.xml.replace('"Spareribs"', '"Pulled Pork"');
    await deployXml(designer, [v2]);
    expect(await evaluate(as.admin, 'dish', { season: 'Fall', guestCount: 2 })).toBe('Pulled Pork');
    expect(await evaluate(as.admin, 'dish', { season: 'Fall', guestCount: 2 }, 1)).toBe('Spareribs');
    // version 2 of beverages requires version 2 of dish (the same deployment)
    expect(await evaluate(as.admin, 'beverages', { season: 'Fall', guestCount: 2, guestsWithChildren: false })).toEqual(['Water']);
    expect(await evaluate(as.admin, 'beverages', { season: 'Fall', guestCount: 2, guestsWithChildren: false }, 1)).toEqual(['Aecht Schlenkerla Rauchbier', 'Water']);
    await expectSqlState(evaluate(as.admin, 'dish', {}, 9), 'BP113', /decision dish \(version 9\) is not deployed/);
  });
});

describe('business rule tasks', () => {
  beforeAll(async () => {
    await deployProcess(designer, 'c7_dinner', `
      <startEvent id="s"/><sequenceFlow id="f1" sourceRef="s" targetRef="decideDish"/>
      <businessRuleTask id="decideDish" camunda:decisionRef="dish" camunda:decisionRefBinding="version" camunda:decisionRefVersion="1"
        camunda:resultVariable="desiredDish" camunda:mapDecisionResult="singleEntry"/>
      <sequenceFlow id="f2" sourceRef="decideDish" targetRef="drinks"/>
      <businessRuleTask id="drinks" camunda:decisionRef="beverages" camunda:resultVariable="drinks" camunda:mapDecisionResult="collectEntries"/>
      <sequenceFlow id="f3" sourceRef="drinks" targetRef="all"/>
      <businessRuleTask id="all" camunda:decisionRef="discount_rule_order" camunda:resultVariable="levels"/>
      <sequenceFlow id="f4" sourceRef="all" targetRef="mapped"/>
      <businessRuleTask id="mapped" camunda:decisionRef="discount_first" camunda:mapDecisionResult="singleResult">
        <extensionElements><camunda:inputOutput><camunda:outputParameter name="pct">\${decisionResult.discount}</camunda:outputParameter></camunda:inputOutput></extensionElements>
      </businessRuleTask>
      <sequenceFlow id="f5" sourceRef="mapped" targetRef="gw"/>
      <exclusiveGateway id="gw" default="toEnd"/>
      <sequenceFlow id="toBig" sourceRef="gw" targetRef="big"><conditionExpression>\${pct >= 15}</conditionExpression></sequenceFlow>
      <sequenceFlow id="toEnd" sourceRef="gw" targetRef="e"/>
      <userTask id="big"/><sequenceFlow id="f6" sourceRef="big" targetRef="e"/>
      <endEvent id="e"/>`);
    await deployProcess(designer, 'c8_dinner', `
      <startEvent id="s"/><sequenceFlow id="f1" sourceRef="s" targetRef="drinks"/>
      <businessRuleTask id="drinks">
        <extensionElements><zeebe:calledDecision decisionId="beverages" resultVariable="drinks"/></extensionElements>
      </businessRuleTask>
      <sequenceFlow id="f2" sourceRef="drinks" targetRef="discount"/>
      <businessRuleTask id="discount">
        <extensionElements>
          <zeebe:calledDecision decisionId="discount_first" resultVariable="d"/>
          <zeebe:ioMapping><zeebe:output source="=d.discount" target="discount"/></zeebe:ioMapping>
        </extensionElements>
      </businessRuleTask>
      <sequenceFlow id="f3" sourceRef="discount" targetRef="e"/><endEvent id="e"/>`);
  });

  test('Camunda 7: each task evaluates its decision when reached and stores the result as camunda:mapDecisionResult maps it', async () => {
    const inst = await startProcess(as.alice, 'c7_dinner', {
      season: 'Fall', guestCount: 3, guestsWithChildren: false, total: 150, customer: { tier: 'gold' }, items: [{ price: 120 }],
    });
    expect(inst.state).toBe('active');
    expect(inst.variables).toMatchObject({
      desiredDish: 'Spareribs', // version 1, bound by camunda:decisionRefVersion
      drinks: ['Water'], // the latest beverages (version 2 above) requires dish version 2: "Pulled Pork", which has no beverage rule
      levels: [{ level: 'low', points: 1 }, { level: 'high', points: 3 }],
      pct: 15,
    });
    expect(inst.variables).not.toHaveProperty('decisionResult');
    expect(await history(as.admin, inst.id)).toEqual([
      's startEvent completed', 'decideDish businessRuleTask completed', 'drinks businessRuleTask completed', 'all businessRuleTask completed',
      'mapped businessRuleTask completed', 'gw exclusiveGateway completed', 'big userTask active',
    ]);
  });

  test('Camunda 8: zeebe:calledDecision stores the decision result (a list, a context) and output mappings read it', async () => {
    const inst = await startProcess(as.alice, 'c8_dinner', {
      season: 'Winter', guestCount: 20, guestsWithChildren: true, customer: { tier: 'silver' }, items: [{ price: 70 }],
    });
    expect(inst.state).toBe('completed');
    expect((await getInstance(as.admin, inst.id)).variables).toMatchObject({ drinks: ['Guiness', 'Apple Juice', 'Water'], discount: 5 });
    expect((await getInstance(as.admin, inst.id)).variables).not.toHaveProperty('d');
  });

  test('a result that does not fit camunda:mapDecisionResult is BP315 naming the element; the start is rolled back', async () => {
    await deployProcess(designer, 'c7_single', `
      <startEvent id="s"/><sequenceFlow id="f1" sourceRef="s" targetRef="one"/>
      <businessRuleTask id="one" camunda:decisionRef="discount_rule_order" camunda:resultVariable="x" camunda:mapDecisionResult="singleResult"/>
      <sequenceFlow id="f2" sourceRef="one" targetRef="e"/><endEvent id="e"/>`);
    await expectRejectedUnchanged(db.root, () => startProcess(as.admin, 'c7_single', { total: 150 }), 'BP315',
      /one \(decision discount_rule_order\) gives 2 results; camunda:mapDecisionResult="singleResult" needs at most one/);
  });

  test('binding deployment: the process uses the version deployed with it, whatever is deployed later', async () => {
    const model = `<startEvent id="s"/><sequenceFlow id="f1" sourceRef="s" targetRef="d"/>
      <businessRuleTask id="d" camunda:decisionRef="label" camunda:decisionRefBinding="deployment" camunda:resultVariable="label" camunda:mapDecisionResult="singleEntry"/>
      <sequenceFlow id="f2" sourceRef="d" targetRef="e"/><endEvent id="e"/>`;
    const withDecisions = dmn('discount.dmn');
    withDecisions.xml = withDecisions.xml.replace('" customer"', '" client"');
    await deployXml(designer, [{ name: 'pinned.bpmn', xml: bpmnProcess('pinned', model) }, withDecisions]);
    const later = dmn('discount.dmn');
    later.xml = later.xml.replace('" customer"', '" account"');
    await deployXml(designer, [later]);
    expect(await evaluate(as.admin, 'label', { customer: { tier: 'gold' } })).toBe('GOLD account');
    const inst = await startProcess(as.admin, 'pinned', { customer: { tier: 'gold' } });
    expect(inst.variables).toMatchObject({ label: 'GOLD client' });
  });

  test('binding versionTag: the latest version carrying the tag; a tag no version carries is BP314', async () => {
    const tagged = (tag: string): string => `<startEvent id="s"/><sequenceFlow id="f1" sourceRef="s" targetRef="d"/>
      <businessRuleTask id="d"><extensionElements><zeebe:calledDecision decisionId="dish" resultVariable="dish" bindingType="versionTag" versionTag="${tag}"/></extensionElements></businessRuleTask>
      <sequenceFlow id="f2" sourceRef="d" targetRef="e"/><endEvent id="e"/>`;
    await deployProcess(designer, 'tag_v1', tagged('v1'));
    await deployProcess(designer, 'tag_v9', tagged('v9'));
    // versions 1 and 2 of dish both carry camunda:versionTag="v1" (version 2: "Pulled Pork", deployed above)
    expect((await startProcess(as.admin, 'tag_v1', { season: 'Fall', guestCount: 2 })).variables).toMatchObject({ dish: 'Pulled Pork' });
    await expectRejectedUnchanged(db.root, () => startProcess(as.admin, 'tag_v9', { season: 'Fall', guestCount: 2 }), 'BP314',
      /decision dish \(version tag v9\) of element d is not deployed/);
  });

  test('a decision that is not deployed (or not in that version) is BP314 naming it and the element; nothing changes', async () => {
    await deployProcess(designer, 'c7_missing', `
      <startEvent id="s"/><sequenceFlow id="f1" sourceRef="s" targetRef="rate"/>
      <businessRuleTask id="rate" camunda:decisionRef="risk" camunda:resultVariable="risk"/>
      <sequenceFlow id="f2" sourceRef="rate" targetRef="e"/><endEvent id="e"/>`);
    await expectRejectedUnchanged(db.root, () => startProcess(as.admin, 'c7_missing'), 'BP314', /decision risk \(latest version\) of element rate is not deployed/);
  });
});
