/**
 * Per-test-file databases for the "db" jest project.
 *
 *   const db = await createTestDb();          // fresh clone of the migrated template
 *   const alice = await db.connectAs({ role: 'bpm_user', tenant: 't1', user: 'alice', groups: ['sales'] });
 *   await alice.query('select …');
 *   await db.close();                         // ends every client/pool, drops the database
 *
 * API connections log in as bpm_authenticator (never a superuser) and switch
 * role and context at session level, so tests exercise the real privileges and
 * row-level security. `root` is a superuser pool for setup and inspection only.
 */
import crypto from 'node:crypto';
import pg from 'pg';
import { withDatabase } from '../../cli/database';
import { ENV_AUTH_URL, ENV_ROOT_URL, ENV_RUN_ID, ENV_TEMPLATE, TEST_DB_PREFIX, requireEnv } from './shared';

export const API_ROLES = ['bpm_admin', 'bpm_designer', 'bpm_user', 'bpm_engine'] as const;
export type ApiRole = (typeof API_ROLES)[number];

export interface SessionContext {
  role: ApiRole;
  /** bpm.tenant_id; omitted or null: not set (current_setting('bpm.tenant_id', true) is null). */
  tenant?: string | null;
  /** bpm.user_id; omitted or null: not set. */
  user?: string | null;
  /** bpm.groups, stored comma-separated (names must not contain commas); omitted: not set. */
  groups?: string[];
}

export interface TestDb {
  /** The database name (pgbpm_t_…). */
  name: string;
  /** Connection strings of this database: superuser, and bpm_authenticator. */
  urls: { root: string; authenticator: string };
  /** Superuser pool on this database: setup and inspection only, never to test behaviour. */
  root: pg.Pool;
  /** A new client logged in as bpm_authenticator, switched to ctx.role, with ctx set for the session. */
  connectAs(ctx: SessionContext): Promise<pg.Client>;
  /** A pool whose every connection is set up like connectAs(ctx). */
  pool(ctx: SessionContext, size?: number): pg.Pool;
  /** Ends every client and pool made by this TestDb and drops the database. Idempotent. */
  close(): Promise<void>;
}

/** One statement that applies the context: role, then the bpm.* settings, all session-level. */
function sessionSetup(ctx: SessionContext): { text: string; values: string[] } {
  if (!(API_ROLES as readonly string[]).includes(ctx.role)) {
    throw new Error(`connectAs: role must be one of ${API_ROLES.join(', ')}, got ${JSON.stringify(ctx.role)}`);
  }
  const settings: Array<[string, string]> = [['role', ctx.role]];
  if (ctx.tenant != null) settings.push(['bpm.tenant_id', ctx.tenant]);
  if (ctx.user != null) settings.push(['bpm.user_id', ctx.user]);
  if (ctx.groups !== undefined) {
    const bad = ctx.groups.find((g) => g.includes(','));
    if (bad !== undefined) throw new Error(`connectAs: group names must not contain commas (bpm.groups is comma-separated): ${bad}`);
    settings.push(['bpm.groups', ctx.groups.join(',')]);
  }
  const values: string[] = [];
  const calls = settings.map(([name, value]) => {
    values.push(name, value);
    return `pg_catalog.set_config($${values.length - 1}, $${values.length}, false)`;
  });
  return { text: `select ${calls.join(', ')}`, values };
}

function describeCtx(ctx: SessionContext): string {
  return `role ${ctx.role}, tenant ${ctx.tenant ?? '(unset)'}, user ${ctx.user ?? '(unset)'}`;
}

export async function createTestDb(): Promise<TestDb> {
  const rootUrl = requireEnv(ENV_ROOT_URL);
  const authUrl = requireEnv(ENV_AUTH_URL);
  const template = requireEnv(ENV_TEMPLATE);
  const runId = requireEnv(ENV_RUN_ID);
  const worker = process.env.JEST_WORKER_ID ?? '0';
  const name = `${TEST_DB_PREFIX}${runId}_${worker}_${crypto.randomBytes(4).toString('hex')}`;

  const admin = new pg.Client({ connectionString: rootUrl, application_name: 'pgbpm-test-admin' });
  admin.on('error', () => undefined);
  await admin.connect();
  try {
    await admin.query(`create database ${admin.escapeIdentifier(name)} template ${admin.escapeIdentifier(template)}`);
  } catch (err) {
    throw new Error(`createTestDb: cloning ${template} into ${name} failed: ${(err as Error).message}`);
  } finally {
    await admin.end();
  }

  const urls = { root: withDatabase(rootUrl, name), authenticator: withDatabase(authUrl, name) };
  const root = new pg.Pool({ connectionString: urls.root, max: 4, application_name: 'pgbpm-test-root' });
  root.on('error', () => undefined);
  const clients = new Set<pg.Client>();
  const pools = new Set<pg.Pool>();
  let closed: Promise<void> | undefined;

  const connectAs = async (ctx: SessionContext): Promise<pg.Client> => {
    if (closed) throw new Error(`connectAs: ${name} is closed`);
    const setup = sessionSetup(ctx);
    const client = new pg.Client({ connectionString: urls.authenticator, application_name: 'pgbpm-test' });
    client.on('error', () => undefined);
    try {
      await client.connect();
    } catch (err) {
      throw new Error(`connectAs: cannot log in as bpm_authenticator to ${name}: ${(err as Error).message}`);
    }
    clients.add(client);
    client.once('end', () => clients.delete(client));
    try {
      await client.query(setup);
    } catch (err) {
      await client.end().catch(() => undefined);
      throw new Error(`connectAs(${describeCtx(ctx)}): ${(err as Error).message}`);
    }
    return client;
  };

  const pool = (ctx: SessionContext, size = 4): pg.Pool => {
    if (closed) throw new Error(`pool: ${name} is closed`);
    const setup = sessionSetup(ctx);
    // Each new connection runs the setup as part of connecting; if it fails
    // the connection is closed and the pending query fails with that error,
    // so nothing ever runs without the intended role.
    class SessionClient extends pg.Client {
      override connect(): Promise<pg.Client>;
      override connect(callback: ((err: Error) => void) | ((err: null, c: pg.Client) => void)): void;
      override connect(
        callback?: ((err: Error) => void) | ((err: null, c: pg.Client) => void),
      ): Promise<pg.Client> | void {
        const ready = super
          .connect()
          .then(() => this.query(setup))
          .then(
            (): pg.Client => this,
            async (err: unknown): Promise<never> => {
              await this.end().catch(() => undefined);
              throw new Error(`pool(${describeCtx(ctx)}): session setup failed: ${(err as Error).message}`);
            },
          );
        if (!callback) return ready;
        const cb = callback as (err: Error | null, c?: pg.Client) => void;
        ready.then(
          (c) => cb(null, c),
          (err: Error) => cb(err),
        );
      }
    }
    const p = new pg.Pool({
      connectionString: urls.authenticator,
      max: size,
      application_name: 'pgbpm-test',
      Client: SessionClient,
    });
    p.on('error', () => undefined);
    pools.add(p);
    return p;
  };

  const close = (): Promise<void> => {
    closed ??= (async () => {
      await Promise.allSettled([...clients].map((c) => c.end()));
      await Promise.allSettled([...pools].map((p) => p.end()));
      await root.end().catch(() => undefined);
      const dropper = new pg.Client({ connectionString: rootUrl, application_name: 'pgbpm-test-admin' });
      dropper.on('error', () => undefined);
      await dropper.connect();
      try {
        // FORCE (PostgreSQL 13+) ends connections a test leaked
        await dropper.query(`drop database if exists ${dropper.escapeIdentifier(name)} with (force)`);
      } finally {
        await dropper.end();
      }
    })();
    return closed;
  };

  return { name, urls, root, connectAs, pool, close };
}
