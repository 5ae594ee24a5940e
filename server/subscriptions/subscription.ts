/**
 * One live subscription: what it asked for, how far it has read (its cursor)
 * and which of the events read on its behalf it delivers.
 *
 * The hub reads a batch covering every event id in (from, last] that the
 * subscriber may see (from <= this cursor); `offer` delivers the matching
 * events above the cursor in id order and moves the cursor to `last`. So each
 * event is considered exactly once, whatever the batches: no gap, no duplicate.
 *
 * taskEvents and tasks a subscriber can no longer see: a task event is
 * delivered when the subscriber may read the user task at the time of the
 * read (RLS as the subscriber: for a bpm_user, offered to them or assigned to
 * them). A task that leaves their view (claimed by or assigned to someone
 * else) is no longer readable, so its taskAssigned/taskCompleted/
 * taskCancelled event is delivered — with `userTask: null` — only to
 * subscriptions that delivered an earlier event of that task, so that a task
 * list can drop it; nobody learns of a task that was never theirs.
 * Limits, both from RLS and kept on purpose (nothing is read for a subscriber
 * beyond what their role may read):
 * - a bpm_user sees the events of an instance only while they see the
 *   instance (they started it, or a task of it is offered to them). When the
 *   task assigned away was their only one in an instance they did not start,
 *   the event itself is invisible to them and nothing is delivered;
 * - this memory is per subscription (at most MAX_KNOWN_TASKS ids): a resumed
 *   subscription has not seen the task and skips such an event.
 * So a task list should reload its tasks when it (re)connects and may
 * re-check a task when acting on it; taskEvents tells it what appears.
 */
import { TASK_EVENT_KINDS, type EventRow } from './reader';
import type { EventItem, EventStream } from './stream';

export type EventFilter =
  | { field: 'tenantEvents' }
  | { field: 'instanceEvents'; instanceId: string }
  | { field: 'taskEvents' };

export type SubscriptionField = EventFilter['field'];

/** Task ids remembered per taskEvents subscription (oldest forgotten first). */
export const MAX_KNOWN_TASKS = 10_000;

const TERMINAL_TASK_KINDS: ReadonlySet<string> = new Set(['taskCompleted', 'taskCancelled']);

export function toItem(row: EventRow): EventItem {
  return {
    id: row.id.toString(),
    tenantId: row.tenantId,
    kind: row.kind,
    instanceId: row.instanceId,
    subjectId: row.subjectId,
    elementId: row.elementId,
    createdAt: row.createdAt,
  };
}

export class Subscription {
  /** The last event id considered: everything up to it was delivered or filtered out. */
  cursor: bigint;
  readonly filter: EventFilter;
  readonly stream: EventStream;
  private readonly knownTasks = new Set<string>();

  constructor(filter: EventFilter, cursor: bigint, stream: EventStream) {
    this.filter = filter;
    this.cursor = cursor;
    this.stream = stream;
  }

  /** The instance whose events alone it wants, if any. */
  get instanceId(): string | null {
    return this.filter.field === 'instanceEvents' ? this.filter.instanceId : null;
  }

  /** Whether reads for it must say which user tasks the reader may see. */
  get needsTaskVisibility(): boolean {
    return this.filter.field === 'taskEvents';
  }

  /** Takes the events of (from, last] (from <= cursor), delivers those it wants; returns how many. */
  offer(events: readonly EventRow[], last: bigint): number {
    if (this.stream.isEnded) return 0;
    let delivered = 0;
    for (const event of events) {
      if (event.id <= this.cursor) continue;
      if (this.wants(event)) {
        this.stream.push(toItem(event));
        delivered++;
      }
    }
    if (last > this.cursor) this.cursor = last;
    return delivered;
  }

  private wants(event: EventRow): boolean {
    switch (this.filter.field) {
      case 'tenantEvents':
        return true;
      case 'instanceEvents':
        return event.instanceId === this.filter.instanceId;
      case 'taskEvents':
        return this.wantsTaskEvent(event);
    }
  }

  private wantsTaskEvent(event: EventRow): boolean {
    const task = event.subjectId;
    if (!TASK_EVENT_KINDS.has(event.kind) || task === null) return false;
    if (event.taskVisible) {
      if (TERMINAL_TASK_KINDS.has(event.kind)) this.knownTasks.delete(task);
      else this.remember(task);
      return true;
    }
    // no longer visible to the subscriber: tell it once, if it was shown the task
    return this.knownTasks.delete(task);
  }

  private remember(task: string): void {
    if (this.knownTasks.has(task)) return;
    if (this.knownTasks.size >= MAX_KNOWN_TASKS) {
      const oldest = this.knownTasks.values().next();
      if (!oldest.done) this.knownTasks.delete(oldest.value);
    }
    this.knownTasks.add(task);
  }
}
