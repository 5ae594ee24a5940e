/**
 * The PostGraphile adaptor of the API: @dataplan/pg's `pg` adaptor, with a
 * request's statements run in fewer round trips.
 *
 * @dataplan/pg runs a withPgClient call with settings as begin →
 * set_config(…) → queries → commit, waiting for each answer: four round trips
 * for a one-query call, each costing a parse and a network wake-up on both
 * sides (on a VM, a socket write alone costs about 0.1 ms of CPU). Every
 * withPgClient call of @dataplan/pg runs one statement (a query's SQL, or a
 * mutation's function call, which "needs no transaction"), or a
 * withTransaction. Here the connections run in pg's pipeline mode, and:
 *   - a statement outside withTransaction is a transaction of its own:
 *     `begin` and every setting (one simple query), the statement and
 *     `commit` go out in one socket write without waiting for any answer, so
 *     it takes one round trip. A call that runs several such statements runs
 *     each in its own transaction, with the same settings;
 *   - withTransaction opens one transaction (begin + settings written with its
 *     savepoint) that every later statement of the call joins, committed when
 *     the call ends, rolled back if it fails.
 *
 * The call's result is returned only after its commits have answered: a
 * commit that fails fails the call. Settings are transaction-local
 * (set_config(…, true)), so nothing outlives the call on a pooled
 * connection; a call without settings runs without a transaction; a failed
 * set-up fails the call (the statements behind it meet an aborted
 * transaction, and the set-up's own error is the one reported; the commit
 * behind a failed statement answers ROLLBACK); RAISE NOTICEs are not
 * collected (nothing here reads them); prepared statements are kept per
 * connection, the least recently used deallocated past PREPARED_STATEMENTS.
 * Introspection (the SUPERUSER variant) uses @dataplan/pg's own withPgClient.
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

/** Runs `write`, whose statements are written synchronously, with the socket corked: they go out in one write. */
function corked<T>(client: pg.PoolClient, write: () => T): T {
  const stream = streamOf(client);
  stream?.cork?.();
  try {
    return write();
  } finally {
    stream?.uncork?.();
  }
}

/** The set-up's error if it failed (the statements behind it then met an aborted transaction), else `e`. */
async function setupErrorOr(setup: Promise<unknown>, e: unknown): Promise<unknown> {
  const failed = await setup.then(
    () => undefined,
    (err: unknown) => err,
  );
  return failed ?? e;
}

/**
 * A request's transactions on one connection. A statement outside
 * withTransaction is a transaction of its own, written in one socket write
 * as begin + settings, the statement and commit: one round trip. withTransaction
 * opens a transaction (begin + settings written with its savepoint) that stays
 * open for the rest of the request, committed when the request ends.
 */
class RequestTransactions {
  /** The open transaction's set-up, while one is open. */
  open: Promise<unknown> | null = null;
  /** Commits written behind single statements, each with its set-up, awaited when the request ends. */
  readonly commits: Array<{ setup: Promise<unknown>; commit: Promise<unknown> }> = [];
  constructor(
    readonly client: pg.PoolClient,
    private readonly setupText: string | null,
  ) {}

  /** `statement` alone, in a transaction of its own with the settings (or inside the open one). */
  single<T>(statement: () => Promise<T>): Promise<T> {
    if (this.setupText === null || this.open) return statement();
    const text = this.setupText;
    const { setup, result, commit } = corked(this.client, () => {
      const setup = this.client.query(text);
      const result = statement();
      const commit = this.client.query('commit');
      return { setup, result, commit };
    });
    setup.catch(() => undefined);
    commit.catch(() => undefined);
    this.commits.push({ setup, commit });
    return result.catch(async (e: unknown) => {
      throw await setupErrorOr(setup, e);
    });
  }

  /** Opens the request's transaction, if none is, with `first` written behind its set-up. */
  opening<T>(first: () => Promise<T>): Promise<T> {
    if (this.setupText === null || this.open) return first();
    const text = this.setupText;
    return corked(this.client, () => {
      const setup = this.client.query(text);
      setup.catch(() => undefined); // awaited when the request ends
      this.open = setup;
      return first();
    });
  }
}

/** The request's client: statements in order on one connection; withTransaction nests as savepoints. */
function requestClient(tx: RequestTransactions, depth: number): NodePostgresPgClient {
  const { client } = tx;
  let queue: Promise<unknown> = Promise.resolve();
  const serial = <T>(run: () => Promise<T>): Promise<T> => {
    const result = queue.then(run, run);
    queue = result.catch(() => undefined);
    return result;
  };
  const self: NodePostgresPgClient = {
    rawClient: client,
    query: (opts) => serial(() => tx.single(() => runQuery(client, opts))),
    withTransaction: (callback) =>
      serial(async () => {
        const name = `tx${depth}`;
        await tx.opening(() => client.query(`savepoint ${name}`));
        try {
          const result = await callback(requestClient(tx, depth + 1) as typeof self);
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
  return async <T>(pgSettings: PgSettings, callback: (client: NodePostgresPgClient) => T | Promise<T>): Promise<T> => {
    const client = await pool.connect();
    let broken: Error | undefined;
    try {
      if (!configured.has(client)) {
        configured.add(client);
        // as @dataplan/pg: no JIT optimisation for its short queries
        client.query('set jit_optimize_above_cost = -1').catch(() => undefined);
      }
      const settings = Object.entries(pgSettings ?? {}).filter((e): e is [string, string] => e[1] != null);
      const tx = new RequestTransactions(client, settings.length > 0 ? setupText(client, settings) : null);
      const outcome = await Promise.resolve()
        .then(() => callback(requestClient(tx, 1)))
        .then(
          (value) => ({ ok: true as const, value }),
          (error: unknown) => ({ ok: false as const, error }),
        );
      // single statements' commits were written behind them; their answers follow (a failed statement's commit answers ROLLBACK)
      let commitError: unknown;
      for (const { setup, commit } of tx.commits) {
        await commit.catch(async (e: unknown) => {
          commitError ??= await setupErrorOr(setup, e);
        });
      }
      if (!outcome.ok) {
        if (!tx.open) throw outcome.error;
        const err = await setupErrorOr(tx.open, outcome.error);
        await client.query('rollback').catch((e: unknown) => {
          broken = e instanceof Error ? e : new Error(String(e));
        });
        throw err;
      }
      if (commitError !== undefined) throw commitError;
      if (tx.open) {
        await tx.open;
        await client.query('commit');
      }
      return outcome.value;
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
