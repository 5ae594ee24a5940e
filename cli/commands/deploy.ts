import fsp from 'node:fs/promises';
import { parseArgs } from 'node:util';
import pg from 'pg';
import type { CompiledResource } from '../../compiler/graph';
import { redactPassword } from '../database';
import { CliError, UsageError, errorMessage } from '../errors';
import { err, out } from '../io';
import { describePgError } from '../migrate';
import { migrateApp, resolveAppDatabase } from './migrate';

export const summary = 'compile BPMN and DMN files and deploy them for a tenant';

const DEPLOY_ROLES = ['bpm_designer', 'bpm_admin'] as const;
type DeployRole = (typeof DEPLOY_ROLES)[number];

export const usage = `usage: pgbpm deploy FILE... --tenant TENANT [--role bpm_designer|bpm_admin] [--user USER]

Compiles the BPMN and DMN files; if any has a problem, prints every problem
("file: element <id>: reason") and deploys nothing (exit 1). Otherwise deploys
them all in one transaction as TENANT and prints the process definitions as
JSON: [{"id","key","version","name"}] (the decisions of DMN files become rows
of bpm.decision_definition). Warnings go to stderr.

  --tenant T   tenant to deploy for (required)
  --role R     database role to act as: bpm_designer (default) or bpm_admin
  --user U     recorded as the deployer (bpm.user_id)

Connection: the embedded server is migrated first, then used as
bpm_authenticator. With DATABASE_URL, pgbpm logs in with AUTH_DATABASE_URL if
set (the bpm_authenticator login), else with DATABASE_URL, and in both cases
switches to the role with SET LOCAL ROLE (the login must be a member of it).
DATABASE_URL databases are not migrated by deploy: run pgbpm migrate.`;

/** compiler/index.ts, loaded on demand: it pulls in bpmn-moddle, which the other commands do not need. */
type CompilerModule = typeof import('../../compiler/index');

function loadCompiler(): CompilerModule {
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    return require('../../compiler/index') as CompilerModule;
  } catch (e) {
    throw new CliError(`pgbpm deploy: cannot load the BPMN compiler (compiler/index): ${errorMessage(e)}`);
  }
}

interface DeployedDefinition {
  id: string;
  key: string;
  version: number;
  name: string | null;
}

function prefixLines(text: string, prefix: string): string {
  return text
    .split('\n')
    .filter((line) => line.length > 0)
    .map((line) => `${prefix}${line}`)
    .join('\n');
}

export async function run(args: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      allowPositionals: true,
      strict: true,
      options: {
        tenant: { type: 'string', short: 't' },
        role: { type: 'string', default: 'bpm_designer' },
        user: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (e) {
    throw new UsageError(`pgbpm deploy: ${errorMessage(e)}\n\n${usage}`);
  }
  const { values, positionals: files } = parsed;
  if (values.help) {
    out(usage);
    return 0;
  }
  if (files.length === 0) throw new UsageError(`pgbpm deploy: no BPMN or DMN file given\n\n${usage}`);
  const tenant = values.tenant;
  if (!tenant) throw new UsageError(`pgbpm deploy: --tenant is required\n\n${usage}`);
  const role = values.role as string;
  if (!(DEPLOY_ROLES as readonly string[]).includes(role)) {
    throw new UsageError(`pgbpm deploy: --role must be one of ${DEPLOY_ROLES.join(', ')}, got "${role}"`);
  }

  // the exact bytes: the compiler checks the encoding and hashes them
  const inputs: Array<{ name: string; xml: Buffer }> = [];
  for (const file of files) {
    try {
      inputs.push({ name: file, xml: await fsp.readFile(file) });
    } catch (e) {
      throw new CliError(`pgbpm deploy: cannot read ${file}: ${errorMessage(e)}`);
    }
  }

  const compiler = loadCompiler();
  const result = await compiler.compileBpmnFiles(inputs);
  if (result.warnings.length > 0) err(prefixLines(compiler.formatProblems(result.warnings), 'warning: '));
  if (!result.ok) {
    err(compiler.formatProblems(result.problems));
    const n = result.problems.length;
    err(`pgbpm deploy: ${n} problem${n === 1 ? '' : 's'} found; nothing deployed`);
    return 1;
  }

  const rows = await deployResources(result.resources, { tenant, role: role as DeployRole, user: values.user ?? null });
  out(JSON.stringify(rows, null, 2));
  return 0;
}

async function deployResources(
  resources: CompiledResource[],
  ctx: { tenant: string; role: DeployRole; user: string | null },
): Promise<DeployedDefinition[]> {
  const db = await resolveAppDatabase();
  try {
    if (db.embedded) await migrateApp(db);
    const client = new pg.Client({ connectionString: db.authenticatorConnectionString });
    client.on('error', () => undefined);
    try {
      await client.connect();
    } catch (e) {
      throw new CliError(`pgbpm deploy: cannot connect to ${redactPassword(db.authenticatorConnectionString)}: ${describePgError(e)}`);
    }
    try {
      await client.query('begin');
      await client.query(`set local role ${client.escapeIdentifier(ctx.role)}`);
      await client.query(`select set_config('bpm.tenant_id', $1, true), set_config('bpm.user_id', $2, true)`, [
        ctx.tenant,
        ctx.user ?? '',
      ]);
      const { rows } = await client.query<DeployedDefinition>(
        'select id, key, version, name from bpm.deploy($1::jsonb)',
        [JSON.stringify(resources)],
      );
      await client.query('commit');
      return rows;
    } catch (e) {
      await client.query('rollback').catch(() => undefined);
      throw new CliError(`pgbpm deploy: ${describePgError(e)}`);
    } finally {
      await client.end().catch(() => undefined);
    }
  } finally {
    await db.stop();
  }
}
