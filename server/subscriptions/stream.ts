/**
 * The async iterator grafast consumes for one subscription: a queue the hub
 * pushes delivered events into, in id order. It never drops an item; the hub
 * stops reading for a subscription whose queue is full (backpressure) and
 * resumes from its cursor when the client has caught up.
 */

/** An event as a subscription delivers it (the `EventLogEntry` fields). */
export interface EventItem {
  /** Event id (bigint as a decimal string): resume with `after: id`. */
  id: string;
  tenantId: string;
  kind: string;
  instanceId: string | null;
  subjectId: string | null;
  elementId: string | null;
  createdAt: string;
}

export class EventStream implements AsyncIterableIterator<EventItem> {
  private readonly queue: EventItem[] = [];
  private head = 0;
  private waiter: { resolve: (result: IteratorResult<EventItem>) => void; reject: (error: Error) => void } | null = null;
  private ended = false;
  private failure: Error | null = null;
  private full = false;
  private readonly onEnd: () => void;
  private readonly highWater: number;
  private readonly onDrain: (() => void) | undefined;

  /**
   * `onEnd` runs once, when the consumer returns (unsubscribes) or the stream
   * fails; `onDrain` when the consumer has taken everything after the queue
   * had reached `highWater` (the producer paused then).
   */
  constructor(onEnd: () => void, options: { highWater?: number; onDrain?: () => void } = {}) {
    this.onEnd = onEnd;
    this.highWater = options.highWater ?? Infinity;
    this.onDrain = options.onDrain;
  }

  /** Items delivered but not yet consumed. */
  get buffered(): number {
    return this.queue.length - this.head;
  }

  get isEnded(): boolean {
    return this.ended;
  }

  push(item: EventItem): void {
    if (this.ended) return;
    const waiter = this.waiter;
    if (waiter) {
      this.waiter = null;
      waiter.resolve({ value: item, done: false });
      return;
    }
    this.queue.push(item);
    if (this.buffered >= this.highWater) this.full = true;
  }

  /** Ends the stream with an error, after the items already queued. */
  fail(error: Error): void {
    if (this.ended) return;
    this.finish();
    const waiter = this.waiter;
    if (waiter) {
      this.waiter = null;
      waiter.reject(error);
    } else {
      this.failure = error;
    }
  }

  next(): Promise<IteratorResult<EventItem>> {
    if (this.head < this.queue.length) {
      const value = this.queue[this.head] as EventItem;
      this.head++;
      if (this.head > 256 && this.head * 2 > this.queue.length) {
        this.queue.splice(0, this.head);
        this.head = 0;
      }
      if (this.full && this.buffered === 0) {
        this.full = false;
        this.onDrain?.();
      }
      return Promise.resolve({ value, done: false });
    }
    if (this.failure) {
      const failure = this.failure;
      this.failure = null;
      return Promise.reject(failure);
    }
    if (this.ended) return Promise.resolve({ value: undefined, done: true });
    if (this.waiter) return Promise.reject(new Error('EventStream: next() called while another next() is pending'));
    return new Promise((resolve, reject) => {
      this.waiter = { resolve, reject };
    });
  }

  return(): Promise<IteratorResult<EventItem>> {
    this.close();
    return Promise.resolve({ value: undefined, done: true });
  }

  throw(error?: unknown): Promise<IteratorResult<EventItem>> {
    this.close();
    return Promise.reject(error instanceof Error ? error : new Error(String(error)));
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<EventItem> {
    return this;
  }

  /** Ends the stream (no error): pending next() resolves done, queued items are dropped. */
  close(): void {
    if (this.ended) {
      this.queue.length = 0;
      this.head = 0;
      return;
    }
    this.finish();
    this.queue.length = 0;
    this.head = 0;
    const waiter = this.waiter;
    this.waiter = null;
    waiter?.resolve({ value: undefined, done: true });
  }

  private finish(): void {
    this.ended = true;
    this.onEnd();
  }
}
