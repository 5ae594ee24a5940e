/**
 * Reading the event log as a subscriber: every read runs in its own short
 * transaction with the subscriber's own settings (role, bpm.tenant_id,
 * bpm.user_id, bpm.groups, statement_timeout — what an HTTP request with the
 * same token gets), so row-level security decides what a subscription sees,
 * exactly as for queries.
 *
 * Reads are REPEATABLE READ, READ ONLY: the horizon (see below) and the
 * events come from one snapshot.
 */
import type pg from 'pg';

/** Settings applied with set_config(name, value, true) at the start of a transaction; `role` first. */
export type PgSettings = Readonly<Record<string, string>>;

/** Event kinds of user tasks (subject = the user task id). */
export const TASK_EVENT_KINDS: ReadonlySet<string> = new Set([
  'taskCreated',
  'taskAssigned',
  'taskUpdated',
  'taskCompleted',
  'taskCancelled',
  'taskOverdue',
  'taskFollowUpDue',
  'taskEscalated',
]);

/** One row of bpm.event as a subscription reads it. */
export interface EventRow {
  id: bigint;
  tenantId: string;
  instanceId: string | null;
  kind: string;
  subjectId: string | null;
  elementId: string | null;
  /** ISO 8601 with offset. */
  createdAt: string;
  /** For task events read with `taskVisibility`: whether the reader may see the user task now (RLS). */
  taskVisible: boolean;
}

export interface EventBatch {
  events: EventRow[];
  /**
   * pg_snapshot_xmin << 20 of the read's snapshot: every event id below it
   * belongs to a finished transaction. A notified id at or above it may still
   * be held back by events_after (an older transaction is running).
   */
  horizon: bigint;
}

/** The error of a failed read, with what was being done. */
export class EventReadError extends Error {
  constructor(what: string, cause: unknown) {
    super(`${what}: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
    this.name = 'EventReadError';
  }
}

function settingsStatement(settings: PgSettings): { text: string; values: string[] } {
  const entries = Object.entries(settings);
  const values: string[] = [];
  const calls = entries.map(([name, value]) => {
    values.push(name, value);
    return `pg_catalog.set_config($${values.length - 1}, $${values.length}, true)`;
  });
  // the horizon is read by the same statement, i.e. from the transaction's snapshot
  calls.push(`(pg_catalog.pg_snapshot_xmin(pg_catalog.pg_current_snapshot())::text::bigint << 20)::text as horizon`);
  return { text: `select ${calls.join(', ')}`, values };
}

/**
 * Runs `fn` in a transaction of a pool connection with `settings` applied
 * locally (they end with the transaction, as PostGraphile does it).
 * `readOnly` (default): REPEATABLE READ READ ONLY. Returns fn's result and the horizon.
 */
export async function withSettings<T>(
  pool: pg.Pool,
  settings: PgSettings,
  fn: (client: pg.PoolClient, horizon: bigint) => Promise<T>,
  options: { readOnly?: boolean } = {},
): Promise<{ result: T; horizon: bigint }> {
  const client = await pool.connect();
  let broken: Error | undefined;
  try {
    await client.query(options.readOnly === false ? 'begin' : 'begin isolation level repeatable read read only');
    try {
      const { rows } = await client.query<{ horizon: string }>(settingsStatement(settings));
      const horizon = BigInt(rows[0]?.horizon ?? '0');
      const result = await fn(client, horizon);
      await client.query('commit');
      return { result, horizon };
    } catch (e) {
      await client.query('rollback').catch((rollbackError: unknown) => {
        broken = rollbackError instanceof Error ? rollbackError : new Error(String(rollbackError));
      });
      throw e;
    }
  } finally {
    // a connection whose rollback failed is discarded, never reused with its settings
    client.release(broken);
  }
}

interface RawEventRow {
  id: string;
  tenant_id: string;
  instance_id: string | null;
  kind: string;
  subject_id: string | null;
  element_id: string | null;
  created_at: string;
  task_visible: boolean;
}

/**
 * Events after `after` (of one instance, if given), oldest first, at most
 * `limit`, through bpm.events_after (gapless: see db/functions/events/emit.sql).
 * With `taskVisibility`, each task event says whether the reader may read the
 * user task now.
 */
export async function readEvents(
  client: pg.ClientBase,
  after: bigint,
  instanceId: string | null,
  limit: number,
  taskVisibility: boolean,
): Promise<EventRow[]> {
  const { rows } = await client.query<RawEventRow>({
    text: `select e.id::text as id, e.tenant_id, e.instance_id, e.kind, e.subject_id, e.element_id,
                  to_json(e.created_at) #>> '{}' as created_at,
                  case when $4::boolean and e.kind = any($5::text[])
                       then exists (select 1 from bpm.user_task t where t.tenant_id = e.tenant_id and t.id = e.subject_id)
                       else false end as task_visible
             from bpm.events_after($1::bigint, $2::uuid, $3::int) e
             order by e.id`,
    values: [after.toString(), instanceId, limit, taskVisibility, [...TASK_EVENT_KINDS]],
  });
  return rows.map((r) => ({
    id: BigInt(r.id),
    tenantId: r.tenant_id,
    instanceId: r.instance_id,
    kind: r.kind,
    subjectId: r.subject_id,
    elementId: r.element_id,
    createdAt: r.created_at,
    taskVisible: r.task_visible,
  }));
}

/** Whether the reader may see the process instance (RLS). */
export async function instanceVisible(client: pg.ClientBase, instanceId: string): Promise<boolean> {
  const { rows } = await client.query<{ visible: boolean }>({
    text: 'select exists (select 1 from bpm.process_instance i where i.id = $1::uuid) as visible',
    values: [instanceId],
  });
  return rows[0]?.visible === true;
}

/** Registers (or renews) this server's event listener lease of the caller's tenant; returns its expiry. */
export async function registerListener(client: pg.ClientBase, listenerId: string, ttlSeconds: number): Promise<Date> {
  const { rows } = await client.query<{ expires_at: Date }>({
    text: `select bpm.register_event_listener($1, make_interval(secs => $2)) as expires_at`,
    values: [listenerId, ttlSeconds],
  });
  const expiresAt = rows[0]?.expires_at;
  if (!expiresAt) throw new Error('register_event_listener returned nothing');
  return expiresAt;
}

/**
 * Whether the database has the event log (bpm.event and bpm.events_after),
 * read from the catalog: the API login has no privilege on schema bpm itself.
 */
export async function hasEventLog(pool: pg.Pool): Promise<boolean> {
  const { rows } = await pool.query<{ present: boolean }>(
    `select exists (
       select 1 from pg_catalog.pg_class c join pg_catalog.pg_namespace n on n.oid = c.relnamespace
       where n.nspname = 'bpm' and c.relname = 'event' and c.relkind in ('r', 'p')
     ) and exists (
       select 1 from pg_catalog.pg_proc p join pg_catalog.pg_namespace n on n.oid = p.pronamespace
       where n.nspname = 'bpm' and p.proname = 'events_after'
     ) as present`,
  );
  return rows[0]?.present === true;
}
