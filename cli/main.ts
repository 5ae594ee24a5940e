/**
 * pgbpm command line: `pgbpm <command> [options]` (bin/pgbpm.js runs this).
 */
import fs from 'node:fs';
import path from 'node:path';
import * as deploy from './commands/deploy';
import * as migrate from './commands/migrate';
import * as serve from './commands/serve';
import * as start from './commands/start';
import * as token from './commands/token';
import * as worker from './commands/worker';
import { CliError } from './errors';
import { err, flushOutput, out } from './io';
import { describePgError } from './migrate';
import { projectRoot } from './paths';

interface Command {
  summary: string;
  run(args: string[]): Promise<number>;
}

const COMMANDS: Record<string, Command> = { start, serve, migrate, deploy, token, worker };

function version(): string {
  try {
    const pkg: unknown = JSON.parse(fs.readFileSync(path.join(projectRoot(), 'package.json'), 'utf8'));
    const v = (pkg as { version?: unknown }).version;
    return typeof v === 'string' ? v : 'unknown';
  } catch {
    return 'unknown';
  }
}

function help(): string {
  const width = Math.max(...Object.keys(COMMANDS).map((n) => n.length));
  const commands = Object.entries(COMMANDS)
    .map(([name, c]) => `  ${name.padEnd(width)}  ${c.summary}`)
    .join('\n');
  return `pgbpm ${version()}: a BPMN 2.0 engine whose execution core is PostgreSQL

usage: pgbpm <command> [options]     (pgbpm <command> --help for details)

commands:
${commands}

environment:
  DATABASE_URL                  the database to use (admin/owner login, used for migrations);
                                unset: an embedded PostgreSQL 17 in .pgbpm/data, port 54329
  AUTH_DATABASE_URL             the bpm_authenticator login for API work (with DATABASE_URL)
  PGBPM_AUTHENTICATOR_PASSWORD  password migrate gives bpm_authenticator (embedded default: pgbpm-dev)
  PGBPM_EMBEDDED_PORT           port of the embedded server (default 54329)
  PGBPM_DATA_DIR                where embedded clusters live (default .pgbpm in the project)
  PORT, HOST                    where start/serve listen (default 127.0.0.1:4000)
  PGBPM_JWT_SECRET              HS256 secret of API tokens (or PGBPM_JWKS_URL; see pgbpm serve --help)
  PGBPM_WORKER_TENANTS, PGBPM_HANDLERS   tenants and handler module of the worker (see pgbpm worker --help)
  PGBPM_HTTP_ALLOW_HOSTS        hosts the built-in HTTP connector may call (default: none)
  NODE_ENV=production           no GraphiQL, no introspection, no development secret or tokens`;
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...args] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    out(help());
    return name === undefined ? 2 : 0;
  }
  if (name === '--version' || name === '-v') {
    out(version());
    return 0;
  }
  const command = Object.prototype.hasOwnProperty.call(COMMANDS, name) ? COMMANDS[name] : undefined;
  if (!command) {
    err(`pgbpm: unknown command "${name}"\n\n${help()}`);
    return 2;
  }
  try {
    return await command.run(args);
  } catch (e) {
    if (e instanceof CliError) {
      err(e.message);
      return e.exitCode;
    }
    err(`pgbpm ${name}: ${describePgError(e)}`);
    if (process.env.PGBPM_DEBUG && e instanceof Error && e.stack) err(e.stack);
    return 1;
  }
}

/** Runs the CLI and exits the process with its status (after output is flushed). */
export function run(argv: string[]): void {
  main(argv).then(
    async (code) => {
      await flushOutput();
      process.exit(code);
    },
    async (e: unknown) => {
      err(`pgbpm: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
      await flushOutput();
      process.exit(1);
    },
  );
}
