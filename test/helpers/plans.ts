/**
 * The plans PostgreSQL uses inside engine calls, as a session meets them:
 * a superuser connection (auto_explain may only be loaded so) switched to an
 * API role and tenant, whose every statement, nested ones included, reports
 * its plan as a notice.
 *
 *   const s = await explainingSession(db.root, 'bpm_engine', 't1');
 *   const plans = s.record('process_instance');   // from now on
 *   await s.session.query('select bpm.…');
 *   await s.close();
 */
import type pg from 'pg';

export interface ExplainingSession {
  session: pg.PoolClient;
  /** From now on, collects the plans whose text includes `match` (whitespace collapsed). */
  record(match: string): string[];
  /** Stops recording and discards the connection. */
  close(): Promise<void>;
}

export interface ExplainOptions {
  /** Plans with the rows each node really returned ("actual rows=", "Rows Removed by Filter"; no timings). */
  analyze?: boolean;
}

export async function explainingSession(root: pg.Pool, role: string, tenant: string, options: ExplainOptions = {}): Promise<ExplainingSession> {
  const session = await root.connect();
  const listeners: Array<(n: { message?: string }) => void> = [];
  try {
    await session.query(`load 'auto_explain'`);
    // (superuser settings: before the role)
    await session.query(`set auto_explain.log_min_duration = 0; set auto_explain.log_nested_statements = on; set auto_explain.log_level = notice; set client_min_messages = notice`);
    if (options.analyze) await session.query(`set auto_explain.log_analyze = on; set auto_explain.log_timing = off`);
    await session.query(`select set_config('role', $1, false), set_config('bpm.tenant_id', $2, false)`, [role, tenant]);
  } catch (e) {
    session.release(true);
    throw e;
  }
  return {
    session,
    record(match) {
      const plans: string[] = [];
      const onNotice = (n: { message?: string }): void => {
        const text = n.message?.replace(/\s+/g, ' ');
        if (text?.includes(match)) plans.push(text);
      };
      listeners.push(onNotice);
      session.on('notice', onNotice);
      return plans;
    },
    async close() {
      for (const l of listeners) session.off('notice', l);
      await session.query('reset role').catch(() => undefined);
      session.release(true);
    },
  };
}
