/**
 * Migrations with graphile-migrate (2.0), used programmatically.
 *
 * Settings come from the project's .gmrc (placeholders, actions, … if any),
 * with the connection strings filled in by the caller and migrationsFolder
 * resolved against the project root (PGBPM_MIGRATIONS_FOLDER overrides it).
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import { current, Logger, migrate, type Settings } from 'graphile-migrate';
import { getSettingsFromJSON } from 'graphile-migrate/dist/commands/_common';
import { clearAllPools } from 'graphile-migrate/dist/pgReal';
import { installWorkerSchema } from '../worker/schema';
import { AUTHENTICATOR_ROLE, parseUrl } from './database';
import { migrationsFolder as defaultMigrationsFolder, projectRoot } from './paths';

export type MigrateLogLevel = 'error' | 'warning' | 'info' | 'debug';
export type MigrateLog = (level: MigrateLogLevel, message: string) => void;

export interface MigrateOptions {
  /** Give bpm_authenticator this password afterwards (ALTER ROLE); null/undefined leaves it alone. */
  authenticatorPassword?: string | null;
  /**
   * Also run db/migrations/current.sql (the uncommitted migration) after the
   * committed ones, as `graphile-migrate current` does. For development and
   * tests only; `pgbpm migrate` runs committed migrations only.
   */
  includeCurrent?: boolean;
  /** Defaults to PGBPM_MIGRATIONS_FOLDER, else .gmrc's migrationsFolder, else <root>/db/migrations. */
  migrationsFolder?: string;
  /** graphile-migrate's messages. Default: errors and warnings to stderr, the rest dropped. */
  log?: MigrateLog;
}

export interface MigrateReport {
  /** File name of the newest committed migration in the database, or null. */
  lastMigration: string | null;
  /** Whether the current.sql was run. */
  ranCurrent: boolean;
  /** Whether bpm_authenticator exists (created by the first migration). */
  authenticatorExists: boolean;
  /** Whether its password was set. */
  authenticatorPasswordSet: boolean;
}

const defaultLog: MigrateLog = (level, message) => {
  if (level === 'error' || level === 'warning') process.stderr.write(`${message}\n`);
};

function makeLogger(log: MigrateLog): Logger {
  return new Logger(() => (level, message) => log(level as MigrateLogLevel, message));
}

/** Raw settings from <root>/.gmrc (JSON5), without connection strings. */
async function loadGmrc(): Promise<Settings> {
  const file = path.join(projectRoot(), '.gmrc');
  if (!fs.existsSync(file)) return {};
  const raw = await getSettingsFromJSON(file);
  const { connectionString: _c, shadowConnectionString: _s, rootConnectionString: _r, ...rest } = raw;
  if (rest.migrationsFolder !== undefined) rest.migrationsFolder = path.resolve(projectRoot(), rest.migrationsFolder);
  return rest;
}

export interface SettingsInput {
  connectionString: string;
  shadowConnectionString?: string;
  rootConnectionString?: string;
  migrationsFolder?: string;
  log?: MigrateLog;
}

/** graphile-migrate Settings for this project (migrationsFolder always set, absolute). */
export async function buildSettings(input: SettingsInput): Promise<Settings & { migrationsFolder: string }> {
  const gmrc = await loadGmrc();
  // explicit argument, else PGBPM_MIGRATIONS_FOLDER, else .gmrc, else <root>/db/migrations
  const folder =
    input.migrationsFolder ??
    (process.env.PGBPM_MIGRATIONS_FOLDER ? defaultMigrationsFolder() : gmrc.migrationsFolder ?? defaultMigrationsFolder());
  const settings: Settings & { migrationsFolder: string } = {
    ...gmrc,
    connectionString: input.connectionString,
    migrationsFolder: folder,
    logger: makeLogger(input.log ?? defaultLog),
  };
  if (input.shadowConnectionString) settings.shadowConnectionString = input.shadowConnectionString;
  if (input.rootConnectionString) settings.rootConnectionString = input.rootConnectionString;
  return settings;
}

function withApplicationName(connectionString: string, applicationName: string): string {
  const url = parseUrl(connectionString, 'connection string');
  url.searchParams.set('application_name', applicationName);
  return url.toString();
}

function hasCurrentMigration(folder: string): boolean {
  return fs.existsSync(path.join(folder, 'current.sql')) || fs.existsSync(path.join(folder, 'current'));
}

/**
 * Installs or upgrades graphile-worker's schema (graphile_worker, the job
 * queue: see worker/schema.ts), then brings the database to the latest
 * committed migration (plus current.sql with includeCurrent), then sets
 * bpm_authenticator's password if asked. The job queue comes first because
 * pgbpm's migrations grant on it. Idempotent. Needs a login that may create
 * roles and schemas (superuser, or a CREATEROLE owner login).
 *
 * When it returns, graphile-migrate's connections to the database are closed
 * (so it can serve as a template right away).
 */
export async function migrateDatabase(connectionString: string, options: MigrateOptions = {}): Promise<MigrateReport> {
  const database = decodeURIComponent(parseUrl(connectionString, 'connection string').pathname.slice(1)) || '(default)';
  const applicationName = `pgbpm-migrate-${crypto.randomBytes(4).toString('hex')}`;
  const settings = await buildSettings({
    connectionString: withApplicationName(connectionString, applicationName),
    migrationsFolder: options.migrationsFolder,
    log: options.log,
  });
  const folder = settings.migrationsFolder;
  const ranCurrent = options.includeCurrent === true && hasCurrentMigration(folder);
  try {
    await installWorkerSchema(connectionString, {
      applicationName,
      log: options.log ?? defaultLog,
    });
  } catch (err) {
    throw migrationError(`installing graphile-worker's schema in database "${database}"`, err);
  }
  try {
    if (ranCurrent) await current(settings);
    else await migrate(settings);
  } catch (err) {
    throw migrationError(`migrating database "${database}" from ${folder}${ranCurrent ? ' (committed + current.sql)' : ''}`, err);
  } finally {
    clearAllPools();
  }

  const client = new pg.Client({ connectionString });
  client.on('error', () => undefined);
  await client.connect();
  try {
    await waitForDisconnect(client, applicationName);
    const last = await client.query<{ filename: string }>(
      `select filename from graphile_migrate.migrations order by filename desc limit 1`,
    );
    const role = await client.query('select 1 from pg_catalog.pg_roles where rolname = $1', [AUTHENTICATOR_ROLE]);
    const authenticatorExists = (role.rowCount ?? 0) > 0;
    let authenticatorPasswordSet = false;
    if (authenticatorExists && options.authenticatorPassword) {
      try {
        await client.query(
          `alter role ${client.escapeIdentifier(AUTHENTICATOR_ROLE)} password ${client.escapeLiteral(options.authenticatorPassword)}`,
        );
      } catch (err) {
        throw new Error(`setting the password of ${AUTHENTICATOR_ROLE} in "${database}": ${describePgError(err)}`);
      }
      authenticatorPasswordSet = true;
    }
    return { lastMigration: last.rows[0]?.filename ?? null, ranCurrent, authenticatorExists, authenticatorPasswordSet };
  } finally {
    await client.end();
  }
}

/** graphile-migrate ends its pools asynchronously; wait until its backends are gone (at most 5 s). */
async function waitForDisconnect(client: pg.Client, applicationName: string): Promise<void> {
  const deadline = Date.now() + 5000;
  for (;;) {
    const { rows } = await client.query<{ n: number }>(
      'select count(*)::int as n from pg_catalog.pg_stat_activity where application_name = $1 and pid <> pg_backend_pid()',
      [applicationName],
    );
    if ((rows[0]?.n ?? 0) === 0 || Date.now() > deadline) return;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

interface PgErrorFields {
  message?: string;
  code?: string;
  detail?: string;
  hint?: string;
  where?: string;
  _gmMessageOverride?: string;
}

/** "message (SQLSTATE xxxxx)" plus detail/hint/context when present. */
export function describePgError(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const e = err as Error & PgErrorFields;
  let text = e.message;
  if (e.code) text += ` (SQLSTATE ${e.code})`;
  if (e.detail) text += `\n  detail: ${e.detail}`;
  if (e.hint) text += `\n  hint: ${e.hint}`;
  if (e.where) text += `\n  context: ${e.where}`;
  return text;
}

function stripAnsi(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/\u001b\[[0-9;]*m/g, '');
}

export class MigrationError extends Error {
  readonly code: string | undefined;
  constructor(message: string, options: { cause: unknown; code: string | undefined }) {
    super(message, { cause: options.cause });
    this.name = 'MigrationError';
    this.code = options.code;
  }
}

function migrationError(context: string, err: unknown): MigrationError {
  const e = (err instanceof Error ? err : new Error(String(err))) as Error & PgErrorFields;
  const location = e._gmMessageOverride ? `\n${stripAnsi(e._gmMessageOverride)}` : '';
  return new MigrationError(`${context}: ${describePgError(e)}${location}`, { cause: err, code: e.code });
}
