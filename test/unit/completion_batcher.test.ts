/**
 * The worker's completion batcher (worker/external/completions.ts) against a
 * stand-in pool: a result goes out at once when no report of its tenant is
 * under way, results that arrive meanwhile go together next, each promise
 * settles with its own task's report, and a transient failure sends the
 * batch again. (The SQL function itself: test/db/api/external_tasks.test.ts;
 * the worker end to end: test/db/worker/external_tasks.test.ts.)
 */
import type pg from 'pg';
import { CompletionRefused, createCompletionBatcher } from '../../worker/external/completions';

interface Call {
  tenant: string;
  ids: string[];
  variables: unknown[];
}

/** A pool whose connections record complete_external_tasks calls and answer them with `answer` once `release()` lets them. */
function standInPool(answer: (call: Call) => Array<{ error_code: string | null; error_message: string | null }> | Error) {
  const calls: Call[] = [];
  const held: Array<() => void> = [];
  let hold = false;
  const connect = async () => {
    const client = {
      tenant: '',
      async query(config: string | { text: string; values?: unknown[] }, values?: unknown[]) {
        const text = typeof config === 'string' ? config : config.text;
        const args = (typeof config === 'string' ? values : config.values) ?? [];
        if (text.includes('set_config')) {
          client.tenant = args[0] as string;
          return { rows: [] };
        }
        const call: Call = {
          tenant: client.tenant,
          ids: args[0] as string[],
          variables: (args[2] as string[]).map((v) => JSON.parse(v)),
        };
        calls.push(call);
        if (hold) await new Promise<void>((resolve) => held.push(resolve));
        const result = answer(call);
        if (result instanceof Error) throw result;
        return {
          rows: call.ids.map((id, i) => ({ task_id: id, ...result[i] })),
        };
      },
      release() {},
    };
    return client;
  };
  const pool = { connect } as unknown as pg.Pool;
  return {
    pool,
    calls,
    holdCalls: () => {
      hold = true;
    },
    releaseCalls: () => {
      hold = false;
      held.splice(0).forEach((r) => r());
    },
  };
}

const ok = (call: Call) => call.ids.map(() => ({ error_code: null, error_message: null }));
const flush = () => new Promise((resolve) => setImmediate(resolve));

test('a result alone goes out at once; those arriving while a report is under way go together next', async () => {
  const s = standInPool(ok);
  const batcher = createCompletionBatcher(s.pool, 'w1');
  s.holdCalls();
  const first = batcher.complete('t1', 'a', { x: 1 });
  await flush();
  expect(s.calls.map((c) => c.ids)).toEqual([['a']]);
  const rest = ['b', 'c', 'd'].map((id) => batcher.complete('t1', id, { id }));
  await flush();
  expect(s.calls).toHaveLength(1);
  s.releaseCalls();
  await first;
  await flush();
  s.releaseCalls();
  await Promise.all(rest);
  expect(s.calls).toEqual([
    { tenant: 't1', ids: ['a'], variables: [{ x: 1 }] },
    {
      tenant: 't1',
      ids: ['b', 'c', 'd'],
      variables: [{ id: 'b' }, { id: 'c' }, { id: 'd' }],
    },
  ]);
});

test('each promise settles with its own report: a refused completion rejects with the SQLSTATE and message, the others resolve', async () => {
  const s = standInPool((call) =>
    call.ids.map((id) =>
      id === 'bad' ? { error_code: 'BP205', error_message: 'not locked by worker w1' } : { error_code: null, error_message: null },
    ),
  );
  const batcher = createCompletionBatcher(s.pool, 'w1');
  s.holdCalls();
  const first = batcher.complete('t1', 'first', {});
  await flush();
  const good = batcher.complete('t1', 'good', {});
  const bad = batcher.complete('t1', 'bad', {}).then(
    () => null,
    (e: unknown) => e,
  );
  s.releaseCalls();
  await first;
  await flush();
  s.releaseCalls();
  await expect(good).resolves.toBeUndefined();
  const refused = await bad;
  expect(refused).toBeInstanceOf(CompletionRefused);
  expect(refused).toMatchObject({
    code: 'BP205',
    message: 'not locked by worker w1',
  });
  expect(s.calls.map((c) => c.ids)).toEqual([['first'], ['good', 'bad']]);
});

test('tenants are reported separately, and a batch holds at most maxBatch results', async () => {
  const s = standInPool(ok);
  const batcher = createCompletionBatcher(s.pool, 'w1', 1, 2);
  s.holdCalls();
  const done = [batcher.complete('t1', 'a', {}), batcher.complete('t2', 'b', {})];
  await flush();
  done.push(...['c', 'd', 'e'].map((id) => batcher.complete('t1', id, {})));
  s.releaseCalls();
  for (let i = 0; i < 5; i++) {
    await flush();
    s.releaseCalls();
  }
  await Promise.all(done);
  expect(s.calls.map((c) => [c.tenant, c.ids])).toEqual([
    ['t1', ['a']],
    ['t2', ['b']],
    ['t1', ['c', 'd']],
    ['t1', ['e']],
  ]);
});

test('a deadlock sends the batch again; an error without a SQLSTATE rejects every result of the batch', async () => {
  let failures = 1;
  const s = standInPool((call) => {
    if (call.ids.includes('deadlocked') && failures-- > 0) return Object.assign(new Error('deadlock detected'), { code: '40P01' });
    if (call.ids.includes('broken')) return new Error('connection terminated');
    return ok(call);
  });
  const batcher = createCompletionBatcher(s.pool, 'w1');
  await expect(batcher.complete('t1', 'deadlocked', {})).resolves.toBeUndefined();
  expect(s.calls.map((c) => c.ids)).toEqual([['deadlocked'], ['deadlocked']]);
  await expect(batcher.complete('t1', 'broken', {})).rejects.toThrow('connection terminated');
});
