/**
 * retryTransient: a report the database aborted for a lock cycle (40P01) or
 * a serialization conflict (40001) changed nothing and is sent again; any
 * other error is not retried.
 */
import { retryTransient } from '../../worker/errors';

const pgError = (code: string): Error & { code: string } => Object.assign(new Error(`sqlstate ${code}`), { code });

test('a call that deadlocks twice, then succeeds, returns its result after three calls', async () => {
  let calls = 0;
  const result = await retryTransient(async () => {
    calls++;
    if (calls < 3) throw pgError(calls === 1 ? '40P01' : '40001');
    return 'done';
  });
  expect(result).toBe('done');
  expect(calls).toBe(3);
});

test('other errors are thrown at once; transient ones after the last attempt', async () => {
  let calls = 0;
  await expect(retryTransient(async () => { calls++; throw pgError('BP203'); })).rejects.toMatchObject({ code: 'BP203' });
  expect(calls).toBe(1);
  calls = 0;
  await expect(retryTransient(async () => { calls++; throw pgError('40P01'); }, 3)).rejects.toMatchObject({ code: '40P01' });
  expect(calls).toBe(3);
  calls = 0;
  await expect(retryTransient(async () => { calls++; throw new Error('no code'); })).rejects.toThrow('no code');
  expect(calls).toBe(1);
});
