/**
 * bpm.deploy and `pgbpm deploy`: versioning per key and tenant, identical
 * redeploys, instances staying on their version, one transaction per
 * deployment, who may deploy, and every BP501 the engine raises for a payload
 * it could not walk.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import type pg from 'pg';
import { createTestDb, type TestDb } from '../../helpers/db';
import { FIXTURES, bpmnProcess, deployFixture, deployProcess, expectRejectedUnchanged } from '../../helpers/engine';
import {
  compiledResources,
  count,
  deployRaw,
  graphAround,
  handMadeResource,
  history,
  instance,
  one,
  openUserTask,
  re,
  start,
  userTaskBody,
} from './support';

const run = promisify(execFile);
const ROOT = path.join(__dirname, '..', '..', '..');
const TENANT = 'deploy-t';

let db: TestDb;
let designer: pg.Client;
let admin: pg.Client;

beforeAll(async () => {
  db = await createTestDb();
  designer = await db.connectAs({ role: 'bpm_designer', tenant: TENANT, user: 'dora' });
  admin = await db.connectAs({ role: 'bpm_admin', tenant: TENANT, user: 'adam' });
});
afterAll(() => db.close());

interface DefinitionRow {
  id: string;
  key: string;
  version: number;
  name: string | null;
  deployment_id: string;
  resource_hash: string;
  tenant_id: string;
}

const definitions = (key: string, tenant = TENANT): Promise<DefinitionRow[]> =>
  db.root
    .query<DefinitionRow>('select * from bpm.process_definition where key = $1 and tenant_id = $2 order by version', [key, tenant])
    .then((r) => r.rows);

describe('versioning', () => {
  test('deploying a changed model of a key creates version n+1 with its own deployment', async () => {
    const v1 = await deployProcess(designer, 'ver', userTaskBody());
    const v2 = await deployProcess(designer, 'ver', userTaskBody('camunda:assignee="someone"'));
    const v3 = await deployProcess(designer, 'ver', userTaskBody('camunda:assignee="someone-else"'));
    expect([v1.version, v2.version, v3.version]).toEqual([1, 2, 3]);
    expect(new Set([v1.id, v2.id, v3.id]).size).toBe(3);
    const rows = await definitions('ver');
    expect(rows.map((r) => r.version)).toEqual([1, 2, 3]);
    expect(new Set(rows.map((r) => r.deployment_id)).size).toBe(3);
    const deployment = await one<{ name: string; deployed_by: string; xml: string; resource_hash: string }>(
      db.root,
      'select name, deployed_by, xml, resource_hash from bpm.deployment where id = $1',
      [rows[2]?.deployment_id],
    );
    expect(deployment).toEqual({
      name: 'ver.bpmn',
      deployed_by: 'dora',
      xml: bpmnProcess('ver', userTaskBody('camunda:assignee="someone-else"')),
      resource_hash: rows[2]?.resource_hash,
    });
  });

  test('deploying a file byte-identical to the latest version returns that definition and stores nothing', async () => {
    const [first] = await deployFixture(designer, 'straight.bpmn');
    const before = await count(db.root, 'select 1 from bpm.deployment');
    const [again] = await deployFixture(designer, 'straight.bpmn');
    expect(again).toEqual(first);
    expect(again?.version).toBe(1);
    expect(await count(db.root, 'select 1 from bpm.deployment')).toBe(before);
    expect(await definitions('straight')).toHaveLength(1);
  });

  test('the identical-file check compares with the latest version only: redeploying an older model makes a new version', async () => {
    const a = await deployProcess(designer, 'flip', userTaskBody());
    await deployProcess(designer, 'flip', userTaskBody('camunda:assignee="x"'));
    const back = await deployProcess(designer, 'flip', userTaskBody());
    expect(back.version).toBe(3);
    expect(back.id).not.toBe(a.id);
  });

  test('versions count per tenant: the same key starts at version 1 in another tenant', async () => {
    await deployProcess(designer, 'per-tenant', userTaskBody());
    await deployProcess(designer, 'per-tenant', userTaskBody('camunda:assignee="x"'));
    const other = await db.connectAs({ role: 'bpm_designer', tenant: 'deploy-other' });
    const def = await deployProcess(other, 'per-tenant', userTaskBody());
    expect(def.version).toBe(1);
    expect((await definitions('per-tenant')).map((d) => d.version)).toEqual([1, 2]);
    expect((await definitions('per-tenant', 'deploy-other')).map((d) => d.version)).toEqual([1]);
  });

  test('running instances stay on their version while new starts use the latest', async () => {
    const body = (task: string): string => `
      <startEvent id="start"/><sequenceFlow id="f1" sourceRef="start" targetRef="${task}"/>
      <userTask id="${task}"/><sequenceFlow id="f2" sourceRef="${task}" targetRef="end"/>
      <endEvent id="end"/>`;
    const v1 = await deployProcess(designer, 'moving', body('old_task'));
    const early = await start(admin, 'moving');
    const v2 = await deployProcess(designer, 'moving', body('new_task'));
    const late = await start(admin, 'moving');
    expect(early.definition_id).toBe(v1.id);
    expect(late.definition_id).toBe(v2.id);
    expect((await openUserTask(db.root, late.id)).element_id).toBe('new_task');

    const earlyTask = await openUserTask(db.root, early.id);
    expect(earlyTask.element_id).toBe('old_task');
    await admin.query('select bpm.complete_task($1)', [earlyTask.id]);
    expect(await instance(db.root, early.id)).toMatchObject({ state: 'completed', definition_id: v1.id });
    expect(await history(db.root, early.id)).toEqual(['start:completed', 'old_task:completed', 'end:completed']);
  });

  test('one deployment of several files assigns each key its version and returns them in file order', async () => {
    const rows = await deployFixture(admin, 'parallel.bpmn', 'exclusive.bpmn');
    expect(rows.map((r) => [r.key, r.version, r.name])).toEqual([
      ['parallel', 1, 'Parallel'],
      ['exclusive', 1, 'Exclusive'],
    ]);
    const deployments = await db.root.query<{ name: string; deployed_by: string }>(
      `select d.name, d.deployed_by from bpm.deployment d join bpm.process_definition p on p.deployment_id = d.id
       where p.key in ('parallel', 'exclusive') order by d.name`,
    );
    expect(deployments.rows).toEqual([
      { name: 'exclusive.bpmn', deployed_by: 'adam' },
      { name: 'parallel.bpmn', deployed_by: 'adam' },
    ]);
  });
});

describe('one transaction', () => {
  test('when the second file of a deployment has a graph the engine rejects, nothing of the first is stored (BP501)', async () => {
    const [good] = await compiledResources([{ name: 'tx-good.bpmn', xml: bpmnProcess('tx_good', userTaskBody()) }]);
    const broken = handMadeResource('tx_broken', graphAround({ id: 'wait', type: 'timerCatchEvent' }));
    await expectRejectedUnchanged(
      db.root,
      () => deployRaw(designer, [good, broken]),
      'BP501',
      /invalid process graph for tx_broken: node wait has unsupported type timerCatchEvent/,
    );
    expect(await definitions('tx_good')).toEqual([]);
  });

  test('a later version that fails leaves the earlier versions of the key as they were', async () => {
    const v1 = await deployProcess(designer, 'tx_keep', userTaskBody());
    const broken = handMadeResource('tx_keep', { start: 'nowhere', nodes: {}, flows: {} });
    await expectRejectedUnchanged(
      db.root,
      () => deployRaw(designer, [broken]),
      'BP501',
      /invalid process graph for tx_keep: start node nowhere does not exist/,
    );
    expect((await definitions('tx_keep')).map((d) => d.id)).toEqual([v1.id]);
  });
});

describe('payloads the engine refuses (BP501)', () => {
  const withNode = (graph: unknown, id: string, patch: Record<string, unknown>): unknown => {
    const g = graph as { nodes: Record<string, Record<string, unknown>> };
    g.nodes[id] = { ...g.nodes[id], ...patch };
    return g;
  };
  const cases: Array<[string, () => unknown, RegExp]> = [
    ['a JSON object instead of a list', () => ({ name: 'x' }), /expected a non-empty array of compiled resources/],
    ['an empty list', () => [], /expected a non-empty array of compiled resources/],
    ['a JSON string', () => 'straight.bpmn', /expected a non-empty array of compiled resources/],
    [
      'a resource without xml',
      () => [{ name: 'no-xml.bpmn', hash: 'h', processes: [] }],
      /resource no-xml\.bpmn lacks name, hash, xml or processes/,
    ],
    [
      'a resource whose processes are not a list',
      () => [{ name: 'odd.bpmn', hash: 'h', xml: '<x/>', processes: {} }],
      /resource odd\.bpmn lacks name, hash, xml or processes/,
    ],
    [
      'a list of resources that are not objects',
      () => [1, 2],
      /invalid deployment: resource \? lacks name, hash, xml or processes/,
    ],
    [
      'a process without a key',
      () => [{ name: 'keyless.bpmn', hash: 'h', xml: '<x/>', processes: [{ name: 'p', graph: {} }] }],
      /invalid deployment: a process of resource keyless\.bpmn has no key/,
    ],
    ['a graph that is not an object', () => [handMadeResource('g_scalar', 'graph')], /invalid process graph for g_scalar: graph must be an object with nodes and flows/],
    [
      'a start form that is not an object',
      () => {
        const resource = handMadeResource('g_form', graphAround({ id: 'mid', type: 'task' })) as { processes: Array<Record<string, unknown>> };
        resource.processes[0].startForm = 'embedded:form.html';
        return [resource];
      },
      /invalid deployment: process g_form has a startForm or forms that is not a JSON object/,
    ],
    [
      'a graph without flows',
      () => [handMadeResource('g_noflows', { start: 's', nodes: { s: { id: 's', type: 'startEvent', in: [], out: [] } } })],
      /invalid process graph for g_noflows: graph must be an object with nodes and flows/,
    ],
    [
      'a node of a type the engine cannot execute',
      () => [handMadeResource('g_type', graphAround({ id: 'sub', type: 'complexGateway' }))],
      /invalid process graph for g_type: node sub has unsupported type complexGateway/,
    ],
    [
      'a node whose id differs from its key',
      () => [handMadeResource('g_id', withNode(graphAround({ id: 'mid', type: 'task' }), 'mid', { id: 'other' }))],
      /invalid process graph for g_id: node mid has id other/,
    ],
    [
      'a node without a list of outgoing flows',
      () => [handMadeResource('g_out', withNode(graphAround({ id: 'mid', type: 'task' }), 'mid', { out: 'f2' }))],
      /invalid process graph for g_out: node mid lacks its in or out list of flows/,
    ],
    [
      'a flow to a node that does not exist',
      () => {
        const graph = graphAround({ id: 'mid', type: 'task' }) as { flows: Record<string, Record<string, unknown>> };
        graph.flows.f2 = { id: 'f2', source: 'mid', target: 'ghost', condition: null };
        return [handMadeResource('g_flow', graph)];
      },
      /invalid process graph for g_flow: flow f2 connects unknown nodes/,
    ],
    [
      'a node whose outgoing flow does not exist',
      () => [handMadeResource('g_out_flow', withNode(graphAround({ id: 'mid', type: 'task' }), 'mid', { out: ['f2', 'f9'] }))],
      /invalid process graph for g_out_flow: node mid has outgoing flow f9, which does not exist/,
    ],
    [
      'a process without a graph',
      () => [handMadeResource('g_none', undefined)],
      /invalid process graph for g_none: graph must be an object with nodes and flows/,
    ],
  ];

  test.each(cases)('%s', async (_name, payload, message) => {
    await expectRejectedUnchanged(db.root, () => deployRaw(designer, payload()), 'BP501', message);
  });
});

describe('who may deploy', () => {
  test('bpm_designer and bpm_admin may deploy', async () => {
    const byDesigner = await deployProcess(designer, 'who_designer', userTaskBody());
    const byAdmin = await deployProcess(admin, 'who_admin', userTaskBody());
    expect([byDesigner.version, byAdmin.version]).toEqual([1, 1]);
  });

  test.each(['bpm_user', 'bpm_engine'] as const)('%s has no execute grant on bpm.deploy (42501)', async (role) => {
    const client = await db.connectAs({ role, tenant: TENANT, user: 'eve' });
    const resources = await compiledResources([{ name: 'who.bpmn', xml: bpmnProcess('who_denied', userTaskBody()) }]);
    await expectRejectedUnchanged(db.root, () => deployRaw(client, resources), '42501', /permission denied for function deploy/);
  });

  test.each([null, ''])('a designer without a tenant (bpm.tenant_id = %p) cannot deploy (BP001)', async (tenant) => {
    const client = await db.connectAs({ role: 'bpm_designer', tenant });
    const resources = await compiledResources([{ name: 'nt.bpmn', xml: bpmnProcess('no_tenant', userTaskBody()) }]);
    await expectRejectedUnchanged(db.root, () => deployRaw(client, resources), 'BP001', /no tenant: set bpm\.tenant_id before calling deploy/);
  });
});

describe('pgbpm deploy (CLI)', () => {
  const CLI_TENANT = 'cli-t';

  beforeAll(async () => {
    // npm test type-checks but does not build: the CLI runs from dist/
    await run('npx', ['tsc', '-p', 'tsconfig.build.json'], { cwd: ROOT, timeout: 120_000 });
  }, 150_000);

  function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
    const env: NodeJS.ProcessEnv = { ...process.env, DATABASE_URL: db.urls.root };
    delete env.AUTH_DATABASE_URL;
    return new Promise((resolve) => {
      execFile('node', [path.join(ROOT, 'bin', 'pgbpm.js'), 'deploy', ...args], { cwd: ROOT, env, timeout: 60_000 }, (error, stdout, stderr) => {
        const code = error ? (typeof error.code === 'number' ? error.code : -1) : 0;
        resolve({ code, stdout, stderr });
      });
    });
  }

  test('deploys fixtures for a tenant and prints the definitions as JSON', async () => {
    const result = await cli([path.join(FIXTURES, 'straight.bpmn'), path.join(FIXTURES, 'external.bpmn'), '--tenant', CLI_TENANT]);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    const printed = JSON.parse(result.stdout) as Array<Record<string, unknown>>;
    const stored = await db.root.query<{ id: string; key: string; version: number; name: string }>(
      `select id, key, version, name from bpm.process_definition where tenant_id = $1 order by key`,
      [CLI_TENANT],
    );
    expect(printed.map((d) => Object.keys(d).sort())).toEqual([
      ['id', 'key', 'name', 'version'],
      ['id', 'key', 'name', 'version'],
    ]);
    expect([...printed].sort((a, b) => String(a.key).localeCompare(String(b.key)))).toEqual(stored.rows);
    expect(stored.rows.map((r) => [r.key, r.version, r.name])).toEqual([
      ['external', 1, 'External task'],
      ['straight', 1, 'Straight'],
    ]);
  }, 60_000);

  test('an invalid file among valid ones: exit 1, every problem named by file and element, nothing deployed', async () => {
    const invalid = path.join(FIXTURES, 'invalid-service-task.bpmn');
    const before = await count(db.root, 'select 1 from bpm.process_definition');
    const deploymentsBefore = await count(db.root, 'select 1 from bpm.deployment');
    const result = await cli([path.join(FIXTURES, 'parallel.bpmn'), invalid, path.join(FIXTURES, 'terminate.bpmn'), '--tenant', CLI_TENANT]);
    expect(result.code).toBe(1);
    expect(result.stdout).toBe('');
    expect(result.stderr).toMatch(new RegExp(`${re(invalid)}: element noTopic: external task without topic`));
    expect(result.stderr).toMatch(new RegExp(`${re(invalid)}: element topicOnly: camunda:topic without camunda:type="external"`));
    expect(result.stderr).toMatch(/nothing deployed/);
    expect(result.stderr).not.toMatch(/parallel\.bpmn|terminate\.bpmn/);
    expect(await count(db.root, 'select 1 from bpm.process_definition')).toBe(before);
    expect(await count(db.root, 'select 1 from bpm.deployment')).toBe(deploymentsBefore);
  }, 60_000);

  test('the fixture files deployed by the CLI are stored byte for byte', async () => {
    const file = path.join(FIXTURES, 'terminate.bpmn');
    const result = await cli([file, '--tenant', CLI_TENANT, '--user', 'cli-user']);
    expect(result.code).toBe(0);
    const [printed] = JSON.parse(result.stdout) as Array<{ id: string }>;
    const stored = await one<{ xml: string; deployed_by: string; tenant_id: string }>(
      db.root,
      'select d.xml, d.deployed_by, d.tenant_id from bpm.deployment d join bpm.process_definition p on p.deployment_id = d.id where p.id = $1',
      [printed?.id],
    );
    expect(stored).toEqual({ xml: fs.readFileSync(file, 'utf8'), deployed_by: 'cli-user', tenant_id: CLI_TENANT });
  }, 60_000);
});
