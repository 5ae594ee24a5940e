/**
 * Forms: which form a user task, or the process's none start event, is worked
 * with, as the model names it. The engine does not render forms; it hands the
 * reference to the task list (bpm.user_task.form, and
 * bpm.process_definition.start_form / forms). One of:
 *
 *   camunda:formKey="embedded:app:forms/a.html" (or ${expr})     → { key }
 *   camunda:formRef="id" camunda:formRefBinding camunda:formRefVersion
 *                                                    → { ref, binding, version? }
 *   zeebe:formDefinition formKey="camunda-forms:bpmn:UserTaskForm_1" → { key }
 *   zeebe:formDefinition formId="id" bindingType versionTag
 *                                                    → { id, binding, versionTag? }
 *   zeebe:formDefinition externalReference="https://…" (or =expr) → { externalReference }
 *   camunda:formData (a Camunda 7 generated form)  → { fields, businessKey? }
 *   camunda:formProperty (its older form)           → { fields }
 *                                       (beside a key or reference: both)
 *
 * A form embedded in the model (zeebe:userTaskForm, Camunda 8's
 * camunda-forms:bpmn:<id>) is kept with the definition (CompiledProcess.forms);
 * a key naming one that is not there is a problem.
 */
import { extensions, kids, nonEmpty, problem, type ProcessCtx, str, warn } from './context';
import { compileExpression, isExpression } from './expression';
import type { CompiledNode, CompiledValue, FormField, FormRef, FormTarget, GeneratedForm } from './graph';
import type { XNode } from './xml';

/** What a user task or start event reads for its form. */
export const FORM_CONSUMES: ReadonlySet<string> = new Set([
  'camunda:formKey',
  'camunda:formRef',
  'camunda:formRefBinding',
  'camunda:formRefVersion',
  'zeebe:FormDefinition',
  'camunda:FormData',
  'camunda:FormProperty',
]);

/** The field types of Camunda 7 generated forms. */
const FIELD_TYPES: ReadonlySet<string> = new Set(['string', 'long', 'boolean', 'date', 'enum']);
/** The built-in validation constraints of Camunda 7 generated forms (custom validators are Java classes). */
const CONSTRAINTS: ReadonlySet<string> = new Set(['required', 'readonly', 'minlength', 'maxlength', 'min', 'max']);

/** The prefix of a Camunda 8 form key that names a form embedded in the model. */
const EMBEDDED_PREFIX = 'camunda-forms:bpmn:';
const CAMUNDA_BINDINGS: ReadonlySet<string> = new Set(['latest', 'deployment', 'version']);
const ZEEBE_BINDINGS: ReadonlySet<string> = new Set(['latest', 'deployment', 'versionTag']);

/**
 * The form of a user task or start event: `literal` (stored as it is) or
 * `evaluated` (a key or external reference given as an expression, evaluated
 * when the task is created); null when the element names no form or the
 * model is wrong (problems reported).
 */
export type CompiledForm = { literal: FormRef } | { evaluated: { key: CompiledValue } | { externalReference: CompiledValue } };

/**
 * A form and its generated fields: `form` as compileFormTarget; `generated`
 * the camunda:formData fields (null when the element has none), with the
 * default values given as expressions (`defaults`, by field id).
 */
export interface ElementForm {
  form: CompiledForm | null;
  generated: { form: GeneratedForm; defaults: Record<string, CompiledValue> } | null;
}

/**
 * The form of a user task or start event (see the head of this file). A
 * static target with generated fields is one literal; an evaluated target
 * keeps its fields in the node's static form, merged when the task is created.
 */
export function compileForm(ctx: ProcessCtx, el: XNode, id: string): ElementForm {
  const form = compileFormTarget(ctx, el, id);
  const generated = compileFormData(ctx, el, id);
  if (generated === null || form === null || 'evaluated' in form) return { form, generated };
  return { form: { literal: { ...form.literal, ...generated.form } }, generated };
}

function compileFormTarget(ctx: ProcessCtx, el: XNode, id: string): CompiledForm | null {
  const found: Array<{ label: string; form: CompiledForm | null }> = [];
  const camundaKey = nonEmpty(str(el, 'camunda:formKey'));
  if (camundaKey !== null) found.push({ label: 'camunda:formKey', form: textForm(ctx, id, 'camunda:formKey', 'key', camundaKey) });
  const camundaRef = camundaFormRef(ctx, el, id);
  if (camundaRef !== undefined) found.push({ label: 'camunda:formRef', form: camundaRef });
  for (const def of extensions(el).filter((e) => e.type === 'zeebe:FormDefinition')) {
    found.push({ label: 'zeebe:formDefinition', form: zeebeForm(ctx, def, id) });
  }
  if (found.length > 1) {
    problem(ctx, id, `the form is set more than once (${found.map((f) => f.label).join(', ')}); name one form`);
    return null;
  }
  return found[0]?.form ?? null;
}

function textForm(ctx: ProcessCtx, id: string, label: string, field: 'key' | 'externalReference', raw: string): CompiledForm | null {
  if (!isExpression(raw)) return { literal: (field === 'key' ? { key: raw.trim() } : { externalReference: raw.trim() }) satisfies FormTarget };
  const r = compileExpression(raw, 'value');
  if (!r.ok) {
    problem(ctx, id, `${label}: ${r.message}`);
    return null;
  }
  const value: CompiledValue = { expr: r.expr };
  return { evaluated: field === 'key' ? { key: value } : { externalReference: value } };
}

/** camunda:formRef (+ formRefBinding latest | deployment | version, formRefVersion); undefined when absent. */
function camundaFormRef(ctx: ProcessCtx, el: XNode, id: string): CompiledForm | null | undefined {
  const ref = nonEmpty(str(el, 'camunda:formRef'));
  const binding = nonEmpty(str(el, 'camunda:formRefBinding'));
  const version = nonEmpty(str(el, 'camunda:formRefVersion'));
  if (ref === null) {
    if (binding !== null || version !== null) problem(ctx, id, 'camunda:formRefBinding / camunda:formRefVersion without camunda:formRef');
    return binding !== null || version !== null ? null : undefined;
  }
  if (isExpression(ref)) {
    problem(ctx, id, `camunda:formRef="${ref}" must be a static form id; expressions are not supported here`);
    return null;
  }
  const b = binding ?? 'latest';
  if (!CAMUNDA_BINDINGS.has(b)) {
    problem(ctx, id, `camunda:formRefBinding="${b}" is not supported; use latest, deployment or version`);
    return null;
  }
  if ((b === 'version') !== (version !== null)) {
    problem(ctx, id, b === 'version' ? 'camunda:formRefBinding="version" needs camunda:formRefVersion' : 'camunda:formRefVersion needs camunda:formRefBinding="version"');
    return null;
  }
  if (version !== null && !/^\d{1,9}$/.test(version)) {
    problem(ctx, id, `camunda:formRefVersion="${version}" is not a version number`);
    return null;
  }
  return { literal: version !== null ? { ref: ref.trim(), binding: b, version: Number(version) } : { ref: ref.trim(), binding: b } };
}

/** zeebe:formDefinition: exactly one of formKey, formId (+ bindingType, versionTag), externalReference. */
function zeebeForm(ctx: ProcessCtx, def: XNode, id: string): CompiledForm | null {
  const key = nonEmpty(str(def, 'zeebe:formKey'));
  const formId = nonEmpty(str(def, 'zeebe:formId'));
  const external = nonEmpty(str(def, 'zeebe:externalReference'));
  const set = [key !== null && 'formKey', formId !== null && 'formId', external !== null && 'externalReference'].filter((x): x is string => x !== false);
  if (set.length !== 1) {
    problem(ctx, id, set.length === 0 ? 'zeebe:formDefinition needs formKey, formId or externalReference' : `zeebe:formDefinition sets ${set.join(' and ')}; set one`);
    return null;
  }
  if (external !== null) return textForm(ctx, id, 'zeebe:formDefinition externalReference', 'externalReference', external);
  if (key !== null) {
    if (isExpression(key)) {
      problem(ctx, id, `zeebe:formDefinition formKey="${key}" must be static; expressions are not supported here`);
      return null;
    }
    return { literal: { key: key.trim() } };
  }
  const fid = formId as string;
  const binding = nonEmpty(str(def, 'zeebe:bindingType')) ?? 'latest';
  const versionTag = nonEmpty(str(def, 'zeebe:versionTag'));
  if (isExpression(fid)) {
    problem(ctx, id, `zeebe:formDefinition formId="${fid}" must be static; expressions are not supported here`);
    return null;
  }
  if (!ZEEBE_BINDINGS.has(binding)) {
    problem(ctx, id, `zeebe:formDefinition bindingType="${binding}" is not supported; use latest, deployment or versionTag`);
    return null;
  }
  if ((binding === 'versionTag') !== (versionTag !== null)) {
    problem(ctx, id, binding === 'versionTag' ? 'zeebe:formDefinition bindingType="versionTag" needs versionTag' : 'zeebe:formDefinition versionTag needs bindingType="versionTag"');
    return null;
  }
  return { literal: versionTag !== null ? { id: fid.trim(), binding, versionTag } : { id: fid.trim(), binding } };
}

/** The forms embedded in the process (zeebe:userTaskForm id → its JSON), as they will be stored with the definition. */
export function compileEmbeddedForms(ctx: ProcessCtx, proc: XNode): Record<string, unknown> {
  const forms: Record<string, unknown> = {};
  for (const f of extensions(proc).filter((e) => e.type === 'zeebe:UserTaskForm')) {
    const formId = nonEmpty(str(f, 'zeebe:id'));
    if (formId === null) {
      problem(ctx, ctx.processId, 'zeebe:userTaskForm without id');
      continue;
    }
    if (Object.hasOwn(forms, formId)) {
      problem(ctx, ctx.processId, `zeebe:userTaskForm id="${formId}" is defined more than once`);
      continue;
    }
    const body = str(f, 'zeebe:body') ?? '';
    try {
      forms[formId] = JSON.parse(body) as unknown;
    } catch (e) {
      problem(ctx, ctx.processId, `zeebe:userTaskForm id="${formId}" is not JSON (${e instanceof Error ? e.message : String(e)})`);
    }
  }
  return forms;
}

/** Every embedded-form key (camunda-forms:bpmn:<id>) of a node names a form of the process; forms nothing uses are warned about. */
export function checkEmbeddedFormKeys(ctx: ProcessCtx, nodes: Record<string, CompiledNode>, forms: Record<string, unknown>): void {
  const used = new Set<string>();
  for (const node of Object.values(nodes)) {
    const key = node.form !== undefined && 'key' in node.form ? node.form.key : null;
    if (key === null || !key.startsWith(EMBEDDED_PREFIX)) continue;
    const formId = key.slice(EMBEDDED_PREFIX.length);
    used.add(formId);
    if (!Object.hasOwn(forms, formId)) problem(ctx, node.id, `form key "${key}" names no zeebe:userTaskForm of the process (id "${formId}")`);
  }
  for (const formId of Object.keys(forms)) {
    if (!used.has(formId)) warn(ctx, ctx.processId, `zeebe:userTaskForm id="${formId}" is not used by any user task or start event`);
  }
}

/**
 * camunda:formData: the fields of a Camunda 7 generated form, in model order
 * (id, label, type string | long | boolean | date | enum, datePattern,
 * defaultValue, validation constraints, properties, enum values), and the
 * field that holds the business key. A default value given as an expression
 * is evaluated when the task is created (`defaults`); the engine does not
 * validate submitted values (as Camunda 7's task completion does not).
 */
function compileFormData(ctx: ProcessCtx, el: XNode, id: string): ElementForm['generated'] {
  const data = extensions(el).filter((e) => e.type === 'camunda:FormData');
  const properties = extensions(el).filter((e) => e.type === 'camunda:FormProperty');
  if (data.length > 0 && properties.length > 0) problem(ctx, id, 'camunda:formData and camunda:formProperty both describe the form; use one');
  if (data.length === 0) return properties.length > 0 ? compileFormProperties(ctx, properties, id) : null;
  if (data.length > 1) problem(ctx, id, 'camunda:formData is given more than once');
  const fields: FormField[] = [];
  const defaults: Record<string, CompiledValue> = {};
  for (const f of kids(data[0], 'camunda:fields')) {
    const field = compileFormField(ctx, f, id, fields);
    if (field === null) continue;
    fields.push(field.field);
    if (field.default !== null) defaults[field.field.id] = field.default;
  }
  const businessKey = nonEmpty(str(data[0], 'camunda:businessKey'));
  if (businessKey !== null && !fields.some((f) => f.id === businessKey)) {
    problem(ctx, id, `camunda:formData businessKey="${businessKey}" names no form field`);
  }
  return { form: businessKey !== null ? { fields, businessKey } : { fields }, defaults };
}

function compileFormField(ctx: ProcessCtx, f: XNode, id: string, before: FormField[]): { field: FormField; default: CompiledValue | null } | null {
  const fieldId = nonEmpty(str(f, 'camunda:id'));
  if (fieldId === null) {
    problem(ctx, id, 'camunda:formField without id');
    return null;
  }
  const what = `camunda:formField "${fieldId}"`;
  if (before.some((b) => b.id === fieldId)) {
    problem(ctx, id, `${what} is defined more than once`);
    return null;
  }
  const type = fieldType(ctx, id, what, f);
  if (type === null) return null;
  const field: FormField = { id: fieldId, type };
  const label = nonEmpty(str(f, 'camunda:label'));
  if (label !== null) field.label = label;
  const datePattern = nonEmpty(str(f, 'camunda:datePattern'));
  if (datePattern !== null) {
    if (type !== 'date') problem(ctx, id, `${what}: datePattern belongs to date fields`);
    field.datePattern = datePattern;
  }
  const values = enumValues(f);
  if (type === 'enum') {
    if (values.length === 0) problem(ctx, id, `${what}: an enum field needs camunda:value entries`);
    if (values.some((v) => v.id === '')) problem(ctx, id, `${what}: a camunda:value without id`);
    field.values = values;
  } else if (values.length > 0) {
    problem(ctx, id, `${what}: camunda:value entries belong to enum fields (type is "${type}")`);
  }
  const validation = kids(f, 'camunda:validation').flatMap((v) => kids(v, 'camunda:constraints'));
  if (validation.length > 0) {
    field.validation = validation.map((c) => {
      const name = str(c, 'camunda:name') ?? '';
      const config = str(c, 'camunda:config');
      if (!CONSTRAINTS.has(name)) warn(ctx, id, `${what}: validation constraint "${name}" is not one of Camunda's built-in ones (${[...CONSTRAINTS].join(', ')}); it is passed to the task list as it is`);
      return config !== undefined ? { name, config } : { name };
    });
  }
  const props = kids(f, 'camunda:properties').flatMap((p) => kids(p, 'camunda:values'));
  if (props.length > 0) field.properties = Object.fromEntries(props.map((p) => [str(p, 'camunda:id') ?? '', str(p, 'camunda:value') ?? '']));
  const raw = str(f, 'camunda:defaultValue');
  if (raw === undefined) return { field, default: null };
  if (!isExpression(raw)) {
    field.defaultValue = raw;
    return { field, default: null };
  }
  const r = compileExpression(raw, 'value');
  if (!r.ok) {
    problem(ctx, id, `${what} defaultValue: ${r.message}`);
    return null;
  }
  return { field, default: { expr: r.expr } };
}

/**
 * camunda:formProperty (Camunda 7's older generated forms): each readable
 * property a field (id, name → label, type, datePattern, default, enum
 * values; required="true" and writable="false" become the constraints
 * required and readonly). A property stored under another variable
 * (camunda:variable) or computed by an expression is refused.
 */
function compileFormProperties(ctx: ProcessCtx, properties: XNode[], id: string): ElementForm['generated'] {
  const fields: FormField[] = [];
  const defaults: Record<string, CompiledValue> = {};
  for (const p of properties) {
    const fieldId = nonEmpty(str(p, 'camunda:id'));
    const what = `camunda:formProperty "${fieldId ?? ''}"`;
    if (fieldId === null) {
      problem(ctx, id, 'camunda:formProperty without id');
      continue;
    }
    const variable = nonEmpty(str(p, 'camunda:variable'));
    if (variable !== null && variable !== fieldId) problem(ctx, id, `${what}: camunda:variable="${variable}" (a field stored under another variable) is not supported; name the property after its variable`);
    if (str(p, 'camunda:expression') !== undefined) problem(ctx, id, `${what}: camunda:expression is not supported; use camunda:default for a default value`);
    if (str(p, 'camunda:readable') === 'false') continue;
    if (fields.some((f) => f.id === fieldId)) {
      problem(ctx, id, `${what} is defined more than once`);
      continue;
    }
    const type = fieldType(ctx, id, what, p);
    if (type === null) continue;
    const field: FormField = { id: fieldId, type };
    const label = nonEmpty(str(p, 'camunda:name'));
    if (label !== null) field.label = label;
    const datePattern = nonEmpty(str(p, 'camunda:datePattern'));
    if (datePattern !== null) field.datePattern = datePattern;
    const values = enumValues(p);
    if (type === 'enum') {
      if (values.length === 0) problem(ctx, id, `${what}: an enum property needs camunda:value entries`);
      field.values = values;
    }
    const validation = [
      ...(str(p, 'camunda:required') === 'true' ? [{ name: 'required' }] : []),
      ...(str(p, 'camunda:writable') === 'false' ? [{ name: 'readonly' }] : []),
    ];
    if (validation.length > 0) field.validation = validation;
    const raw = str(p, 'camunda:default');
    if (raw !== undefined && !isExpression(raw)) field.defaultValue = raw;
    else if (raw !== undefined) {
      const r = compileExpression(raw, 'value');
      if (r.ok) defaults[fieldId] = { expr: r.expr };
      else problem(ctx, id, `${what} default: ${r.message}`);
    }
    fields.push(field);
  }
  return { form: { fields }, defaults };
}

/** The type of a form field or property (default string); null, with a problem, for one generated forms do not have. */
function fieldType(ctx: ProcessCtx, id: string, what: string, el: XNode): string | null {
  const type = nonEmpty(str(el, 'camunda:type')) ?? 'string';
  if (FIELD_TYPES.has(type)) return type;
  problem(ctx, id, `${what}: type "${type}" is not supported; use string, long, boolean, date or enum`);
  return null;
}

/** The camunda:value entries of a field or property (the values of an enum). */
function enumValues(el: XNode): Array<{ id: string; name: string }> {
  return kids(el, 'camunda:values').map((v) => ({ id: str(v, 'camunda:id') ?? '', name: str(v, 'camunda:name') ?? '' }));
}
