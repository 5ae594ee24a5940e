/**
 * Engine test helpers: deploy BPMN through the real compiler, build small
 * models inline, snapshot the whole engine state, and assert SQLSTATEs.
 */
import fs from 'node:fs';
import path from 'node:path';
import type pg from 'pg';
import { compileBpmnFiles, formatProblems } from '../../compiler';

export const FIXTURES = path.join(__dirname, '..', 'fixtures', 'bpmn');

export interface DeployedDefinition {
  id: string;
  key: string;
  version: number;
  name: string | null;
}

/** Compiles BPMN files (given as name + XML) and deploys them with bpm.deploy as the client's role. */
export async function deployXml(client: pg.ClientBase, files: { name: string; xml: string }[]): Promise<DeployedDefinition[]> {
  const compiled = await compileBpmnFiles(files);
  if (!compiled.ok) throw new Error(`test model does not compile:\n${formatProblems(compiled.problems)}`);
  const { rows } = await client.query<DeployedDefinition>(
    'select id, key, version, name from bpm.deploy($1::jsonb)',
    [JSON.stringify(compiled.resources)],
  );
  return rows;
}

/** Deploys fixtures from test/fixtures/bpmn by file name. */
export async function deployFixture(client: pg.ClientBase, ...names: string[]): Promise<DeployedDefinition[]> {
  return deployXml(client, names.map((name) => ({ name, xml: fs.readFileSync(path.join(FIXTURES, name), 'utf8') })));
}

/**
 * A minimal executable BPMN process around the given flow elements (no
 * diagram), for single-purpose tests:
 *   bpmnProcess('p', `<startEvent id="s"/><sequenceFlow id="f" sourceRef="s" targetRef="e"/><endEvent id="e"/>`)
 */
export function bpmnProcess(key: string, body: string): string {
  return `<?xml version="1.0" encoding="UTF-8"?>
<definitions xmlns="http://www.omg.org/spec/BPMN/20100524/MODEL"
  xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
  xmlns:camunda="http://camunda.org/schema/1.0/bpmn"
  xmlns:zeebe="http://camunda.org/schema/zeebe/1.0"
  id="defs_${key}" targetNamespace="http://pgbpm.test">
  <process id="${key}" isExecutable="true">
${body}
  </process>
</definitions>`;
}

/** Deploys an inline model built with bpmnProcess. */
export async function deployProcess(client: pg.ClientBase, key: string, body: string): Promise<DeployedDefinition> {
  const [def] = await deployXml(client, [{ name: `${key}.bpmn`, xml: bpmnProcess(key, body) }]);
  return def;
}

const SNAPSHOT_TABLES = [
  'bpm.deployment',
  'bpm.process_definition',
  'bpm.decision_definition',
  'bpm.process_instance',
  'bpm.user_task',
  'bpm.external_task',
  'bpm.incident',
  'bpm.activity_instance',
  'bpm.event',
  'bpm.event_subscription',
  'bpm.message_buffer',
  'bpm_private.token',
] as const;

/** Every row of every engine table (as superuser, all tenants), for "nothing changed" assertions. */
export async function snapshot(root: pg.Pool): Promise<Record<string, unknown[]>> {
  const result: Record<string, unknown[]> = {};
  for (const table of SNAPSHOT_TABLES) {
    const { rows } = await root.query(`select to_jsonb(t) as row from ${table} t order by tenant_id, id`);
    result[table] = rows.map((r: { row: unknown }) => r.row);
  }
  return result;
}

/** Runs `action`, expects it to fail with `sqlstate` (and a message matching `message`), and returns the error. */
export async function expectSqlState(
  action: Promise<unknown>,
  sqlstate: string,
  message?: RegExp,
): Promise<Error & { code?: string }> {
  let error: (Error & { code?: string }) | undefined;
  try {
    await action;
  } catch (e) {
    error = e as Error & { code?: string };
  }
  if (!error) throw new Error(`expected SQLSTATE ${sqlstate}, but the call succeeded`);
  if (error.code !== sqlstate) {
    throw new Error(`expected SQLSTATE ${sqlstate}, got ${error.code ?? 'none'}: ${error.message}`);
  }
  if (message && !message.test(error.message)) {
    throw new Error(`SQLSTATE ${sqlstate} as expected, but message ${JSON.stringify(error.message)} does not match ${message}`);
  }
  return error;
}

/**
 * Expects `action` to fail with `sqlstate` and to leave every engine table
 * exactly as before (the whole call rolled back).
 */
export async function expectRejectedUnchanged(
  root: pg.Pool,
  action: () => Promise<unknown>,
  sqlstate: string,
  message?: RegExp,
): Promise<void> {
  const before = await snapshot(root);
  await expectSqlState(action(), sqlstate, message);
  expect(await snapshot(root)).toEqual(before);
}
