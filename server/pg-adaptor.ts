/**
 * The PostGraphile adaptor of the API: @dataplan/pg's `pg` adaptor, with a
 * request's transaction set up in fewer round trips.
 *
 * @dataplan/pg runs a request with settings as begin → set_config(…) →
 * queries → commit, waiting for each answer: four round trips for a
 * one-query request, each costing a parse and a network wake-up on both
 * sides (on a VM, a socket write alone costs about 0.1 ms of CPU). Here the
 * request's connections run in pg's pipeline mode: `begin` and every setting
 * go out as one simple query, in the same socket write as the request's first
 * statement and without waiting for its answer, so a one-query request takes
 * two writes and two round trips (begin + settings + query, then commit).
 *
 * Unchanged: settings are transaction-local (set_config(…, true)), so nothing
 * outlives the request on a pooled connection; a request without settings
 * runs without a transaction; a failed setup fails the request (the queries
 * behind it meet an aborted transaction, and the setup's own error is the one
 * reported); RAISE NOTICEs are not collected (nothing here reads them);
 * prepared statements are kept per connection, the least recently
 * used deallocated past PREPARED_STATEMENTS. Introspection (the SUPERUSER
 * variant) uses @dataplan/pg's own withPgClient.
 */
import type pg from 'pg';
import * as dataplanPg from 'postgraphile/adaptors/pg';
import type { NodePostgresPgClient, PgAdaptorSettings } from 'postgraphile/adaptors/pg';
import type { PgClientQuery, PgClientResult } from 'postgraphile/@dataplan/pg';

/** Prepared statements kept per connection (as @dataplan/pg's default). */
export const PREPARED_STATEMENTS = 100;

type PgSettings = Record<string, string | undefined> | null;
type WithPgClient = <T>(pgSettings: PgSettings, callback: (client: NodePostgresPgClient) => T | Promise<T>) => Promise<T>;

/** pg's connection internals that a prepared-statement cache must keep in step. */
interface ConnectionInternals {
  parsedStatements?: Record<string, string>;
}

const prepared = new WeakMap<pg.PoolClient, Map<string, true>>();
const configured = new WeakSet<pg.PoolClient>();

/** Marks `name` as used on `client`; deallocates the least recently used beyond the limit. */
function usePrepared(client: pg.PoolClient, name: string): void {
  let names = prepared.get(client);
  if (!names) {
    names = new Map();
    prepared.set(client, names);
  }
  names.delete(name);
  names.set(name, true);
  if (names.size <= PREPARED_STATEMENTS) return;
  const oldest = names.keys().next().value as string;
  names.delete(oldest);
  const connection = (client as unknown as { connection?: ConnectionInternals }).connection;
  client
    .query(`deallocate ${client.escapeIdentifier(oldest)}`)
    .then(() => {
      if (connection?.parsedStatements) delete connection.parsedStatements[oldest];
    })
    .catch(() => undefined); // the connection failed; the pool drops it
}

/** `begin` and the settings as one simple query (values as escaped literals). */
export function setupText(client: pg.ClientBase, settings: Array<[string, string]>): string {
  const calls = settings.map(([k, v]) => `pg_catalog.set_config(${client.escapeLiteral(k)}, ${client.escapeLiteral(v)}, true)`);
  return `begin; select ${calls.join(', ')}`;
}

async function runQuery<TData>(client: pg.PoolClient, opts: PgClientQuery): Promise<PgClientResult<TData>> {
  const config: pg.QueryConfig & { rowMode?: 'array' } = { text: opts.text, values: opts.values };
  if (opts.arrayMode) config.rowMode = 'array';
  if (opts.name != null) {
    usePrepared(client, opts.name);
    config.name = opts.name;
  }
  const { rows, rowCount } = await client.query(config);
  return { rows: rows as TData[], rowCount };
}

/** pg's socket, to cork: what is written while corked goes out in one write. */
interface Corkable {
  cork?(): void;
  uncork?(): void;
}
function streamOf(client: pg.PoolClient): Corkable | undefined {
  return (client as unknown as { connection?: { stream?: Corkable } }).connection?.stream;
}

/**
 * A request's transaction set-up (begin + settings), written together with
 * the request's first statement, in the same socket write; nothing when the
 * request has no settings.
 */
class Setup {
  /** The set-up's answer, once written. */
  issued: Promise<unknown> | null = null;
  constructor(private text: string | null) {}

  /** Runs `issue`, which writes its statement synchronously; the set-up, if not written yet, goes first. */
  before<T>(client: pg.PoolClient, issue: () => Promise<T>): Promise<T> {
    if (this.text === null) return issue();
    const stream = streamOf(client);
    stream?.cork?.();
    try {
      this.issued = client.query(this.text);
      this.issued.catch(() => undefined); // awaited by the request, after its statements
      this.text = null;
      return issue();
    } finally {
      stream?.uncork?.();
    }
  }
}

/** The request's client: statements in order on one connection; withTransaction nests as savepoints. */
function requestClient(client: pg.PoolClient, depth: number, setup: Setup): NodePostgresPgClient {
  let queue: Promise<unknown> = Promise.resolve();
  const serial = <T>(run: () => Promise<T>): Promise<T> => {
    const result = queue.then(run, run);
    queue = result.catch(() => undefined);
    return result;
  };
  const self: NodePostgresPgClient = {
    rawClient: client,
    query: (opts) => serial(() => setup.before(client, () => runQuery(client, opts))),
    withTransaction: (callback) =>
      serial(async () => {
        const name = `tx${depth}`;
        await setup.before(client, () => client.query(`savepoint ${name}`));
        try {
          const result = await callback(requestClient(client, depth + 1, setup) as typeof self);
          await client.query(`release savepoint ${name}`);
          return result;
        } catch (e) {
          await client.query(`rollback to savepoint ${name}`).catch(() => undefined);
          throw e;
        }
      }),
  };
  return self;
}

/** A withPgClient over `pool`, whose clients must be in pipeline mode (`pipeline: true`). */
export function makePipelinedWithPgClient(pool: pg.Pool): WithPgClient {
  return async (pgSettings, callback) => {
    const client = await pool.connect();
    let broken: Error | undefined;
    try {
      if (!configured.has(client)) {
        configured.add(client);
        // as @dataplan/pg: no JIT optimisation for its short queries
        client.query('set jit_optimize_above_cost = -1').catch(() => undefined);
      }
      const settings = Object.entries(pgSettings ?? {}).filter((e): e is [string, string] => e[1] != null);
      const setup = new Setup(settings.length > 0 ? setupText(client, settings) : null);
      try {
        const result = await callback(requestClient(client, 1, setup));
        if (setup.issued) {
          await setup.issued;
          await client.query('commit');
        }
        return result;
      } catch (e) {
        if (!setup.issued) throw e;
        const setupError = await setup.issued.then(
          () => undefined,
          (err: unknown) => err,
        );
        await client.query('rollback').catch((err: unknown) => {
          broken = err instanceof Error ? err : new Error(String(err));
        });
        throw setupError ?? e;
      }
    } finally {
      client.release(broken);
    }
  };
}

/** @dataplan/pg's `pg` adaptor, with makePipelinedWithPgClient for requests. */
export const pipelinedPgAdaptor = {
  ...dataplanPg,
  createWithPgClient(settings: PgAdaptorSettings | undefined, variant?: string | null) {
    if (variant === 'SUPERUSER' || !settings?.pool) return dataplanPg.createWithPgClient(settings, variant === 'SUPERUSER' ? variant : null);
    return makePipelinedWithPgClient(settings.pool);
  },
};
