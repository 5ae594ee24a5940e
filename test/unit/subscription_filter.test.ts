/**
 * What one subscription delivers from the batches the hub reads for it
 * (server/subscriptions/subscription.ts): events above its cursor, in order,
 * once; its filter; task events of tasks it may see, and once more when a
 * task it was shown left its view.
 */
import type { EventRow } from '../../server/subscriptions/reader';
import { EventStream, type EventItem } from '../../server/subscriptions/stream';
import { Subscription, type EventFilter } from '../../server/subscriptions/subscription';

const I1 = '00000000-0000-4000-8000-000000000001';
const I2 = '00000000-0000-4000-8000-000000000002';
const T1 = '00000000-0000-4000-8000-0000000000a1';
const T2 = '00000000-0000-4000-8000-0000000000a2';

function row(id: number, kind: string, extra: Partial<EventRow> = {}): EventRow {
  return {
    id: BigInt(id),
    tenantId: 't',
    instanceId: I1,
    kind,
    subjectId: null,
    elementId: null,
    createdAt: '2026-01-01T00:00:00+00:00',
    taskVisible: false,
    ...extra,
  };
}

function make(filter: EventFilter, cursor = 0): { sub: Subscription; delivered: () => Promise<EventItem[]> } {
  const stream = new EventStream(() => undefined);
  const sub = new Subscription(filter, BigInt(cursor), stream);
  const delivered = async (): Promise<EventItem[]> => {
    const out: EventItem[] = [];
    while (stream.buffered > 0) {
      const next = await stream.next();
      if (!next.done) out.push(next.value);
    }
    return out;
  };
  return { sub, delivered };
}

test('delivers the events above its cursor once, in order, and moves the cursor to the end of the batch', async () => {
  const { sub, delivered } = make({ field: 'tenantEvents' }, 2);
  const batch = [row(1, 'instanceStarted'), row(2, 'activityStarted'), row(3, 'activityCompleted'), row(5, 'instanceCompleted')];
  expect(sub.offer(batch, 5n)).toBe(2);
  expect((await delivered()).map((e) => e.id)).toEqual(['3', '5']);
  expect(sub.cursor).toBe(5n);
  // the same batch again (another subscription of the feed was behind): nothing twice
  expect(sub.offer(batch, 5n)).toBe(0);
  expect(await delivered()).toEqual([]);
});

test('instanceEvents: only its instance, but the cursor passes the others', async () => {
  const { sub, delivered } = make({ field: 'instanceEvents', instanceId: I2 });
  sub.offer([row(1, 'instanceStarted'), row(2, 'instanceStarted', { instanceId: I2 }), row(3, 'activityStarted')], 3n);
  expect((await delivered()).map((e) => [e.id, e.instanceId])).toEqual([['2', I2]]);
  expect(sub.cursor).toBe(3n);
});

test('taskEvents: task events of visible tasks; a task it was shown that left its view, once, then nothing', async () => {
  const { sub, delivered } = make({ field: 'taskEvents' });
  sub.offer(
    [
      row(1, 'activityStarted', { subjectId: T1 }),
      row(2, 'taskCreated', { subjectId: T1, taskVisible: true }),
      row(3, 'taskCreated', { subjectId: T2, taskVisible: false }), // offered to someone else
      row(4, 'taskAssigned', { subjectId: T2, taskVisible: false }),
    ],
    4n,
  );
  expect((await delivered()).map((e) => [e.id, e.kind])).toEqual([['2', 'taskCreated']]);
  // T1 is assigned to someone else: told once, then its completion is none of its business
  sub.offer([row(5, 'taskAssigned', { subjectId: T1 }), row(6, 'taskCompleted', { subjectId: T1 })], 6n);
  expect((await delivered()).map((e) => [e.id, e.kind])).toEqual([['5', 'taskAssigned']]);
});

test('an ended stream takes nothing', async () => {
  const { sub, delivered } = make({ field: 'tenantEvents' });
  await sub.stream.return();
  expect(sub.offer([row(1, 'instanceStarted')], 1n)).toBe(0);
  expect(await delivered()).toEqual([]);
});

test('a stream that reached its high-water mark reports when it has been drained', async () => {
  let drained = 0;
  const stream = new EventStream(() => undefined, { highWater: 2, onDrain: () => drained++ });
  const item = (id: string): EventItem => ({ id, tenantId: 't', kind: 'instanceStarted', instanceId: I1, subjectId: null, elementId: null, createdAt: '' });
  stream.push(item('1'));
  stream.push(item('2'));
  await stream.next();
  expect(drained).toBe(0);
  await stream.next();
  expect(drained).toBe(1);
});
