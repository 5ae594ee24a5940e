/**
 * Which PostgreSQL server pgbpm talks to.
 *
 * - purpose 'app' (the CLI): DATABASE_URL when set (an admin/owner login used
 *   for migrations; AUTH_DATABASE_URL optionally names the bpm_authenticator
 *   login), else the embedded cluster in .pgbpm/data on port 54329
 *   (PGBPM_EMBEDDED_PORT), database `pgbpm`.
 * - purpose 'test' (jest): TEST_DATABASE_URL when set (any database of a
 *   server on which we may create databases), else the embedded cluster in
 *   .pgbpm/test-data on port 54339 (PGBPM_TEST_EMBEDDED_PORT).
 */
import path from 'node:path';
import pg from 'pg';
import { dataRoot } from './paths';
import {
  EMBEDDED_SUPERUSER,
  EMBEDDED_SUPERUSER_PASSWORD,
  embeddedUrl,
  startEmbeddedCluster,
  type EmbeddedCluster,
} from './embedded';

export type DatabasePurpose = 'app' | 'test';

/** The login role API connections use; it may SET ROLE to bpm_admin/bpm_designer/bpm_user/bpm_engine. */
export const AUTHENTICATOR_ROLE = 'bpm_authenticator';
/** Password of bpm_authenticator on the embedded server unless PGBPM_AUTHENTICATOR_PASSWORD is set. */
export const EMBEDDED_AUTHENTICATOR_PASSWORD = 'pgbpm-dev';
export const EMBEDDED_APP_DATABASE = 'pgbpm';
export const DEFAULT_APP_PORT = 54329;
export const DEFAULT_TEST_PORT = 54339;

export interface ResolvedDatabase {
  /** Superuser (embedded) or the DATABASE_URL login: for migrations and administration. */
  connectionString: string;
  /**
   * Login for API work: bpm_authenticator on the embedded server;
   * AUTH_DATABASE_URL, else DATABASE_URL (callers then `set role`), for an external one.
   */
  authenticatorConnectionString: string;
  /** The password migrateDatabase() should give bpm_authenticator, or null to leave it alone. */
  authenticatorPassword: string | null;
  embedded: boolean;
  /** The embedded cluster, when embedded. */
  cluster: EmbeddedCluster | null;
  /** Stops the embedded server if this process started it; otherwise does nothing. */
  stop(): Promise<void>;
}

export interface ResolveOptions {
  env?: NodeJS.ProcessEnv;
  /** Progress messages (embedded server start, initdb, reuse). */
  log?: (message: string) => void;
}

export async function resolveDatabase(purpose: DatabasePurpose, options: ResolveOptions = {}): Promise<ResolvedDatabase> {
  const env = options.env ?? process.env;
  const log = options.log ?? (() => undefined);
  const passwordFromEnv = env.PGBPM_AUTHENTICATOR_PASSWORD || null;

  const externalUrl = purpose === 'app' ? env.DATABASE_URL : env.TEST_DATABASE_URL;
  if (externalUrl) {
    const varName = purpose === 'app' ? 'DATABASE_URL' : 'TEST_DATABASE_URL';
    parseUrl(externalUrl, varName);
    let authenticatorConnectionString: string;
    if (purpose === 'app') {
      authenticatorConnectionString = env.AUTH_DATABASE_URL || externalUrl;
      if (env.AUTH_DATABASE_URL) parseUrl(env.AUTH_DATABASE_URL, 'AUTH_DATABASE_URL');
    } else {
      authenticatorConnectionString = withCredentials(externalUrl, AUTHENTICATOR_ROLE, passwordFromEnv);
    }
    return {
      connectionString: externalUrl,
      authenticatorConnectionString,
      authenticatorPassword: passwordFromEnv,
      embedded: false,
      cluster: null,
      stop: () => Promise.resolve(),
    };
  }

  const port = embeddedPort(purpose, env);
  const dataDir = path.join(dataRoot(env), purpose === 'app' ? 'data' : 'test-data');
  const cluster = await startEmbeddedCluster({ dataDir, port, log });
  const database = purpose === 'app' ? EMBEDDED_APP_DATABASE : 'postgres';
  const authenticatorPassword = passwordFromEnv ?? EMBEDDED_AUTHENTICATOR_PASSWORD;
  try {
    if (purpose === 'app') await ensureDatabase(cluster.superuserUrl('postgres'), EMBEDDED_APP_DATABASE);
  } catch (err) {
    await cluster.stop();
    throw err;
  }
  return {
    connectionString: cluster.superuserUrl(database),
    authenticatorConnectionString: embeddedUrl(cluster.port, AUTHENTICATOR_ROLE, authenticatorPassword, database),
    authenticatorPassword,
    embedded: true,
    cluster,
    stop: () => cluster.stop(),
  };
}

function embeddedPort(purpose: DatabasePurpose, env: NodeJS.ProcessEnv): number {
  const varName = purpose === 'app' ? 'PGBPM_EMBEDDED_PORT' : 'PGBPM_TEST_EMBEDDED_PORT';
  const raw = env[varName];
  if (!raw) return purpose === 'app' ? DEFAULT_APP_PORT : DEFAULT_TEST_PORT;
  const port = Number(raw);
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new Error(`${varName} must be a TCP port number, got "${raw}"`);
  return port;
}

/** Creates `database` (owned by the connecting superuser) unless it exists. */
export async function ensureDatabase(maintenanceUrl: string, database: string): Promise<void> {
  const client = new pg.Client({ connectionString: maintenanceUrl });
  client.on('error', () => undefined);
  await client.connect();
  try {
    const { rowCount } = await client.query('select 1 from pg_catalog.pg_database where datname = $1', [database]);
    if (!rowCount) {
      try {
        await client.query(`create database ${client.escapeIdentifier(database)}`);
      } catch (err) {
        // lost a race with another process creating it
        if ((err as { code?: string }).code !== '42P04') throw err;
      }
    }
  } finally {
    await client.end();
  }
}

export function parseUrl(connectionString: string, what: string): URL {
  let url: URL;
  try {
    url = new URL(connectionString);
  } catch {
    throw new Error(`${what} must be a postgres:// URL (postgres://user:password@host:port/database)`);
  }
  if (url.protocol !== 'postgres:' && url.protocol !== 'postgresql:') {
    throw new Error(`${what} must be a postgres:// URL, got protocol "${url.protocol}"`);
  }
  return url;
}

/** The same server and options, another database. */
export function withDatabase(connectionString: string, database: string): string {
  const url = parseUrl(connectionString, 'connection string');
  url.pathname = `/${encodeURIComponent(database)}`;
  return url.toString();
}

/** The same server, database and options, another login. */
export function withCredentials(connectionString: string, user: string, password: string | null): string {
  const url = parseUrl(connectionString, 'connection string');
  url.username = encodeURIComponent(user);
  url.password = password === null ? '' : encodeURIComponent(password);
  return url.toString();
}

/** For printing: the connection string with its password masked. */
export function redactPassword(connectionString: string): string {
  try {
    const url = new URL(connectionString);
    if (url.password) url.password = '***';
    return url.toString();
  } catch {
    return connectionString.replace(/:\/\/([^:/@]+):[^@]*@/, '://$1:***@');
  }
}

export { EMBEDDED_SUPERUSER, EMBEDDED_SUPERUSER_PASSWORD };
