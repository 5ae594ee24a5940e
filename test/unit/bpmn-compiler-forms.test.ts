/**
 * Forms (compiler/forms.ts): camunda:formKey / formRef and
 * zeebe:formDefinition on user tasks and the process's none start event, and
 * forms embedded in a Camunda 8 model (zeebe:userTaskForm); and what a
 * worker gets with an external task besides its variables (headers).
 */
import { around, compileOk, model, node, problemsOf } from './compiler-support';

const EMBEDDED = '<extensionElements><zeebe:userTaskForm id="F1">{"components": []}</zeebe:userTaskForm></extensionElements>';

describe('forms', () => {
  test('static forms are node.form; a key or external reference given as an expression is userTask.form', async () => {
    const { process: p, warnings } = await compileOk('inline.bpmn', model(`<startEvent id="s" camunda:formRef="start" camunda:formRefBinding="deployment"/>
      <sequenceFlow id="f0" sourceRef="s" targetRef="a"/>
      <userTask id="a" camunda:formKey=" embedded:app:forms/a.html "/>
      <sequenceFlow id="f1" sourceRef="a" targetRef="b"/>
      <userTask id="b" camunda:formKey="\${formName}"/>
      <sequenceFlow id="f2" sourceRef="b" targetRef="c"/>
      <userTask id="c"><extensionElements><zeebe:formDefinition formId="linked"/></extensionElements></userTask>
      <sequenceFlow id="f3" sourceRef="c" targetRef="d"/>
      <userTask id="d"><extensionElements><zeebe:formDefinition externalReference="=url"/></extensionElements></userTask>
      <sequenceFlow id="f4" sourceRef="d" targetRef="e"/>
      <userTask id="e" camunda:formRef="x" camunda:formRefBinding="version" camunda:formRefVersion="7"/>`));
    expect(warnings).toEqual([]);
    expect(p.startForm).toEqual({ ref: 'start', binding: 'deployment' });
    expect(p.forms).toBeUndefined();
    expect(node(p, 'a').form).toEqual({ key: 'embedded:app:forms/a.html' });
    expect(node(p, 'a').userTask).toEqual({});
    expect(node(p, 'b').form).toBeUndefined();
    expect(node(p, 'b').userTask?.form).toMatchObject({ key: { expr: { vars: ['formName'] } } });
    expect(node(p, 'c').form).toEqual({ id: 'linked', binding: 'latest' });
    expect(node(p, 'd').userTask?.form).toMatchObject({ externalReference: { expr: { vars: ['url'] } } });
    expect(node(p, 'e').form).toEqual({ ref: 'x', binding: 'version', version: 7 });
  });

  test('embedded forms are kept by id with the process; the keys that name them are checked', async () => {
    const { process: p, warnings } = await compileOk('inline.bpmn', model(`${EMBEDDED}
      ${around('<userTask id="t"><extensionElements><zeebe:formDefinition formKey="camunda-forms:bpmn:F1"/></extensionElements></userTask>')}`));
    expect(warnings).toEqual([]);
    expect(p.forms).toEqual({ F1: { components: [] } });
    expect(node(p, 't').form).toEqual({ key: 'camunda-forms:bpmn:F1' });
    expect(p.startForm).toBeUndefined();
  });

  test('an embedded form nothing uses is a warning', async () => {
    const { warnings } = await compileOk('inline.bpmn', model(`${EMBEDDED}${around('<userTask id="t"/>')}`));
    expect(warnings).toEqual(['inline.bpmn: element p: zeebe:userTaskForm id="F1" is not used by any user task or start event']);
  });

  test('wrong forms: every problem, with the element and the reason', async () => {
    const problems = await problemsOf(model(`<extensionElements>
        <zeebe:userTaskForm id="F1">{"components": []}</zeebe:userTaskForm>
        <zeebe:userTaskForm id="F1">{}</zeebe:userTaskForm>
        <zeebe:userTaskForm id="bad">{ not json</zeebe:userTaskForm>
      </extensionElements>
      <startEvent id="s" camunda:formKey="\${x}"/>
      <sequenceFlow id="f0" sourceRef="s" targetRef="a"/>
      <userTask id="a" camunda:formKey="k"><extensionElements><zeebe:formDefinition formId="f"/></extensionElements></userTask>
      <sequenceFlow id="f1" sourceRef="a" targetRef="b"/>
      <userTask id="b" camunda:formRef="r" camunda:formRefBinding="version"/>
      <sequenceFlow id="f2" sourceRef="b" targetRef="c"/>
      <userTask id="c" camunda:formRefVersion="2"/>
      <sequenceFlow id="f3" sourceRef="c" targetRef="d"/>
      <userTask id="d"><extensionElements><zeebe:formDefinition formId="f" externalReference="u"/></extensionElements></userTask>
      <sequenceFlow id="f4" sourceRef="d" targetRef="e"/>
      <userTask id="e"><extensionElements><zeebe:formDefinition formId="f" bindingType="versionTag"/></extensionElements></userTask>
      <sequenceFlow id="f5" sourceRef="e" targetRef="g"/>
      <userTask id="g"><extensionElements><zeebe:formDefinition formKey="camunda-forms:bpmn:missing"/></extensionElements></userTask>
      <sequenceFlow id="f6" sourceRef="g" targetRef="h"/>
      <userTask id="h" camunda:formRef="r" camunda:formRefBinding="sometimes"/>
      <sequenceFlow id="f7" sourceRef="h" targetRef="i"/>
      <userTask id="i" camunda:formKey="\${broken(}"/>`));
    expect(problems).toEqual([
      'inline.bpmn: element s: the form of a start event must be static (no expression): it is read before the instance has variables',
      'inline.bpmn: element a: the form is set more than once (camunda:formKey, zeebe:formDefinition); name one form',
      'inline.bpmn: element b: camunda:formRefBinding="version" needs camunda:formRefVersion',
      'inline.bpmn: element c: camunda:formRefBinding / camunda:formRefVersion without camunda:formRef',
      'inline.bpmn: element d: zeebe:formDefinition sets formId and externalReference; set one',
      'inline.bpmn: element e: zeebe:formDefinition bindingType="versionTag" needs versionTag',
      'inline.bpmn: element h: camunda:formRefBinding="sometimes" is not supported; use latest, deployment or version',
      expect.stringMatching(/^inline\.bpmn: element i: camunda:formKey: cannot compile expression "\$\{broken\(\}"/),
      'inline.bpmn: element p: zeebe:userTaskForm id="F1" is defined more than once',
      expect.stringMatching(/^inline\.bpmn: element p: zeebe:userTaskForm id="bad" is not JSON/),
      'inline.bpmn: element g: form key "camunda-forms:bpmn:missing" names no zeebe:userTaskForm of the process (id "missing")',
    ]);
  });
});

describe('Camunda 7 generated forms (camunda:formData)', () => {
  const FIELDS = `<camunda:formData businessKey="orderNo">
      <camunda:formField id="orderNo" label="Order" />
      <camunda:formField id="amount" label="Amount" type="long" defaultValue="\${total}">
        <camunda:validation><camunda:constraint name="required" /><camunda:constraint name="min" config="1" /></camunda:validation>
      </camunda:formField>
      <camunda:formField id="rush" type="boolean" defaultValue="false" />
      <camunda:formField id="due" type="date" datePattern="dd/MM/yyyy" />
      <camunda:formField id="level" type="enum" defaultValue="b">
        <camunda:properties><camunda:property id="hint" value="pick one" /></camunda:properties>
        <camunda:value id="a" name="Low" /><camunda:value id="b" name="High" />
      </camunda:formField>
    </camunda:formData>`;

  test('the fields of a user task are its form, in model order; defaults given as expressions are evaluated when the task is created', async () => {
    const { process: p, warnings } = await compileOk('inline.bpmn', model(around(`<userTask id="t"><extensionElements>${FIELDS}</extensionElements></userTask>`)));
    expect(warnings).toEqual([]);
    expect(node(p, 't').form).toEqual({
      businessKey: 'orderNo',
      fields: [
        { id: 'orderNo', type: 'string', label: 'Order' },
        { id: 'amount', type: 'long', label: 'Amount', validation: [{ name: 'required' }, { name: 'min', config: '1' }] },
        { id: 'rush', type: 'boolean', defaultValue: 'false' },
        { id: 'due', type: 'date', datePattern: 'dd/MM/yyyy' },
        { id: 'level', type: 'enum', defaultValue: 'b', values: [{ id: 'a', name: 'Low' }, { id: 'b', name: 'High' }], properties: { hint: 'pick one' } },
      ],
    });
    expect(node(p, 't').userTask?.formDefaults).toMatchObject({ amount: { expr: { vars: ['total'] } } });
  });

  test('fields beside a form key are kept with it; on the start event they are the start form (expression defaults warned about)', async () => {
    const { process: p, warnings } = await compileOk('inline.bpmn', model(`<startEvent id="s"><extensionElements><camunda:formData>
        <camunda:formField id="who" defaultValue="\${initiator}" /></camunda:formData></extensionElements></startEvent>
      <sequenceFlow id="f0" sourceRef="s" targetRef="a"/>
      <userTask id="a" camunda:formKey="\${formName}"><extensionElements><camunda:formData><camunda:formField id="x" /></camunda:formData></extensionElements></userTask>
      <sequenceFlow id="f1" sourceRef="a" targetRef="b"/>
      <userTask id="b" camunda:formKey="app:b"><extensionElements><camunda:formData><camunda:formField id="y" /></camunda:formData></extensionElements></userTask>`));
    expect(warnings).toEqual([
      'inline.bpmn: element s: camunda:formField "who": a default value given as an expression is not evaluated on a start form (it is read before the instance has variables); the field has no default',
    ]);
    expect(p.startForm).toEqual({ fields: [{ id: 'who', type: 'string' }] });
    expect(node(p, 'a').form).toEqual({ fields: [{ id: 'x', type: 'string' }] });
    expect(node(p, 'a').userTask?.form).toMatchObject({ key: { expr: { vars: ['formName'] } } });
    expect(node(p, 'b').form).toEqual({ key: 'app:b', fields: [{ id: 'y', type: 'string' }] });
  });

  test('wrong fields: every problem, with the element and the reason; formData elsewhere is ignored with a warning', async () => {
    const problems = await problemsOf(model(around(`<userTask id="t"><extensionElements><camunda:formData businessKey="nope">
        <camunda:formField label="no id" />
        <camunda:formField id="a" type="money" />
        <camunda:formField id="b" /><camunda:formField id="b" />
        <camunda:formField id="c" type="enum" />
        <camunda:formField id="d" type="long" datePattern="yyyy"><camunda:value id="x" name="X" /></camunda:formField>
        <camunda:formField id="e" defaultValue="\${broken(}" />
      </camunda:formData></extensionElements></userTask>`)));
    expect(problems).toEqual([
      'inline.bpmn: element t: camunda:formField without id',
      'inline.bpmn: element t: camunda:formField "a": type "money" is not supported; use string, long, boolean, date or enum',
      'inline.bpmn: element t: camunda:formField "b" is defined more than once',
      'inline.bpmn: element t: camunda:formField "c": an enum field needs camunda:value entries',
      'inline.bpmn: element t: camunda:formField "d": datePattern belongs to date fields',
      'inline.bpmn: element t: camunda:formField "d": camunda:value entries belong to enum fields (type is "long")',
      expect.stringMatching(/^inline\.bpmn: element t: camunda:formField "e" defaultValue: cannot compile expression/),
      'inline.bpmn: element t: camunda:formData businessKey="nope" names no form field',
    ]);
    const { warnings } = await compileOk('inline.bpmn', model(around(`<serviceTask id="t" camunda:type="external" camunda:topic="x"><extensionElements>
        <camunda:formData><camunda:formField id="a" /></camunda:formData></extensionElements></serviceTask>`)));
    expect(warnings).toEqual(['inline.bpmn: element t: camunda:formData is read on user tasks and on the none start event of a process only; here it is ignored']);
  });
});

describe('Camunda 7 form properties (camunda:formProperty)', () => {
  test('each readable property is a field: name → label, required / writable="false" → constraints, enum values, defaults (expressions evaluated when the task is created)', async () => {
    const { process: p, warnings } = await compileOk('inline.bpmn', model(around(`<userTask id="t"><extensionElements>
        <camunda:formProperty id="customer" name="Customer" required="true" />
        <camunda:formProperty id="amount" name="Amount" type="long" default="\${total}" />
        <camunda:formProperty id="rush" type="boolean" default="false" writable="false" />
        <camunda:formProperty id="due" type="date" datePattern="dd-MM-yyyy" />
        <camunda:formProperty id="secret" readable="false" />
        <camunda:formProperty id="level" type="enum"><camunda:value id="a" name="Low" /><camunda:value id="b" name="High" /></camunda:formProperty>
      </extensionElements></userTask>`)));
    expect(warnings).toEqual([]);
    expect(node(p, 't').form).toEqual({
      fields: [
        { id: 'customer', type: 'string', label: 'Customer', validation: [{ name: 'required' }] },
        { id: 'amount', type: 'long', label: 'Amount' },
        { id: 'rush', type: 'boolean', defaultValue: 'false', validation: [{ name: 'readonly' }] },
        { id: 'due', type: 'date', datePattern: 'dd-MM-yyyy' },
        { id: 'level', type: 'enum', values: [{ id: 'a', name: 'Low' }, { id: 'b', name: 'High' }] },
      ],
    });
    expect(node(p, 't').userTask?.formDefaults).toMatchObject({ amount: { expr: { vars: ['total'] } } });
  });

  test('refused: another variable, an expression, an unknown type, an enum without values, formData beside it', async () => {
    expect(await problemsOf(model(around(`<userTask id="t"><extensionElements>
        <camunda:formData><camunda:formField id="x" /></camunda:formData>
        <camunda:formProperty id="a" variable="other" />
        <camunda:formProperty id="b" expression="\${x.y}" />
        <camunda:formProperty id="c" type="money" />
        <camunda:formProperty id="d" type="enum" />
      </extensionElements></userTask>`)))).toEqual([
      'inline.bpmn: element t: camunda:formData and camunda:formProperty both describe the form; use one',
    ]);
    expect(await problemsOf(model(around(`<userTask id="t"><extensionElements>
        <camunda:formProperty id="a" variable="other" />
        <camunda:formProperty id="b" expression="\${x.y}" />
        <camunda:formProperty id="c" type="money" />
        <camunda:formProperty id="d" type="enum" />
      </extensionElements></userTask>`)))).toEqual([
      'inline.bpmn: element t: camunda:formProperty "a": camunda:variable="other" (a field stored under another variable) is not supported; name the property after its variable',
      'inline.bpmn: element t: camunda:formProperty "b": camunda:expression is not supported; use camunda:default for a default value',
      'inline.bpmn: element t: camunda:formProperty "c": type "money" is not supported; use string, long, boolean, date or enum',
      'inline.bpmn: element t: camunda:formProperty "d": an enum property needs camunda:value entries',
    ]);
  });
});

describe('external task headers', () => {
  test('zeebe:taskHeaders and camunda:properties (not pgbpm:…) of a service task become its headers', async () => {
    const { process: p } = await compileOk('inline.bpmn', model(around(`<serviceTask id="t" camunda:type="external" camunda:topic="x"><extensionElements>
        <camunda:properties><camunda:property name="a" value="1"/><camunda:property name="pgbpm:outputCollection" value="out"/></camunda:properties>
        <zeebe:taskHeaders><zeebe:header key="b" value="2"/></zeebe:taskHeaders>
      </extensionElements></serviceTask>`)));
    expect(node(p, 't').headers).toEqual({ a: '1', b: '2' });
    const { process: plain } = await compileOk('inline.bpmn', model(around('<serviceTask id="t" camunda:type="external" camunda:topic="x"/>')));
    expect(node(plain, 't').headers).toBeUndefined();
  });

  test('a header set twice, or without a name, is a problem', async () => {
    const problems = await problemsOf(model(around(`<serviceTask id="t" camunda:type="external" camunda:topic="x"><extensionElements>
        <camunda:properties><camunda:property name="a" value="1"/><camunda:property value="nameless"/></camunda:properties>
        <zeebe:taskHeaders><zeebe:header key="a" value="2"/></zeebe:taskHeaders>
      </extensionElements></serviceTask>`)));
    expect(problems).toEqual([
      'inline.bpmn: element t: the header a is set more than once (zeebe:taskHeaders / camunda:properties)',
      'inline.bpmn: element t: a camunda:property without a name',
    ]);
  });
});

describe('external task priority', () => {
  test('camunda:taskPriority of the task, else of the process; an integer or an expression', async () => {
    const { process: p } = await compileOk('inline.bpmn', model(`<startEvent id="s"/><sequenceFlow id="f0" sourceRef="s" targetRef="a"/>
      <serviceTask id="a" camunda:type="external" camunda:topic="x" camunda:taskPriority="10"/><sequenceFlow id="f1" sourceRef="a" targetRef="b"/>
      <serviceTask id="b" camunda:type="external" camunda:topic="x" camunda:taskPriority="\${prio}"/><sequenceFlow id="f2" sourceRef="b" targetRef="c"/>
      <serviceTask id="c" camunda:type="external" camunda:topic="x"/>`).replace('isExecutable="true"', 'isExecutable="true" camunda:taskPriority="3"'));
    expect(node(p, 'a').taskPriority).toEqual({ literal: 10 });
    expect(node(p, 'b').taskPriority).toMatchObject({ expr: { vars: ['prio'] } });
    expect(node(p, 'c').taskPriority).toEqual({ literal: 3 });
    const problems = await problemsOf(model(around('<serviceTask id="t" camunda:type="external" camunda:topic="x" camunda:taskPriority="high"/>')));
    expect(problems).toEqual(['inline.bpmn: element t: camunda:taskPriority="high" is not an integer']);
  });
});
