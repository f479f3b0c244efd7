/**
 * The child's queue: a binary heap of {@linkcode QueueItem}s ordered by
 * (expiration, insertion order).
 *
 * @module
 */

import { ENTRY, type ItemOwner, OWNER, type QueueItem } from "./queue_item.ts";

interface Entry {
  item: QueueItem;
  key: number;
  order: number;
}

/** Options for {@linkcode SortedQueue}. */
export interface SortedQueueOptions {
  /**
   * Dead heap entries (completed or re-timed items) tolerated before a
   * clean-up pass, as the old `maxComplete`.
   *
   * @default {100}
   */
  maxComplete?: number;
  /**
   * Fraction of the heap that may be dead entries before a clean-up pass,
   * as the old `maxFrac`. The lower of the two limits applies.
   *
   * @default {0.5}
   */
  maxFrac?: number;
}

function before(a: Entry, b: Entry): boolean {
  return a.key < b.key || (a.key === b.key && a.order < b.order);
}

function compare(a: Entry, b: Entry): number {
  return before(a, b) ? -1 : before(b, a) ? 1 : 0;
}

/**
 * Items sorted by when they next come due. Insert and pop are O(log n);
 * equal expirations come out first-in first-out. Completed items drop out
 * of the count and the graceid index at once and out of the heap lazily;
 * nobody has to remove them by hand. Re-timing a queued item (adding or
 * removing tasks) moves it.
 *
 * @example
 * ```ts
 * const queue = new SortedQueue();
 * queue.insert(item);
 * queue.peek()?.expiration; // earliest pending
 * queue.byGraceId("G123");  // that event's pending items
 * ```
 */
export class SortedQueue<T extends QueueItem = QueueItem>
  implements Iterable<T>, ItemOwner {
  #heap: Entry[] = [];
  #order = 0;
  #pending = 0;
  #dead = 0;
  #byGraceId = new Map<string, Set<T>>();
  #maxComplete: number;
  #maxFrac: number;

  constructor(options: SortedQueueOptions = {}) {
    this.#maxComplete = options.maxComplete ?? 100;
    this.#maxFrac = options.maxFrac ?? 0.5;
  }

  /** Number of pending (not complete) items. */
  get size(): number {
    return this.#pending;
  }

  /** Same as {@linkcode SortedQueue.size}, for readers of the old code. */
  get length(): number {
    return this.#pending;
  }

  /**
   * Adds an item. A complete item is ignored.
   *
   * @throws {Error} if the item is already in a queue or has a task with
   * no expiration
   */
  insert(item: T): void {
    if (item[OWNER]) {
      throw new Error(`Item ${item.name} is already in a queue`);
    }
    if (item.complete) return;
    if (Number.isNaN(item.expiration)) {
      throw new Error(`Item ${item.name} has a task with no expiration`);
    }
    item[OWNER] = this;
    this.#pending++;
    if (item.graceid !== undefined) {
      let set = this.#byGraceId.get(item.graceid);
      if (!set) this.#byGraceId.set(item.graceid, set = new Set());
      set.add(item);
    }
    this.#push(item);
  }

  /** The earliest pending item, left in place. */
  peek(): T | undefined {
    this.#dropDeadTop();
    return this.#heap[0]?.item as T | undefined;
  }

  /** Removes and returns the earliest pending item. */
  pop(): T | undefined {
    this.#dropDeadTop();
    const top = this.#heap[0];
    if (!top) return undefined;
    this.#removeTop();
    const item = top.item as T;
    this.#detach(item);
    return item;
  }

  /** Pending items of one graceid, earliest first. */
  byGraceId(graceid: string): T[] {
    return this.#sorted([...this.#byGraceId.get(graceid) ?? []]);
  }

  /** Graceids that have pending items. */
  graceIds(): string[] {
    return [...this.#byGraceId.keys()];
  }

  /** Marks every pending item complete and empties the queue. */
  clear(): T[] {
    const items = this.items();
    for (const item of items) this.#detach(item);
    for (const item of items) item.complete = true;
    this.#heap = [];
    this.#dead = 0;
    return items;
  }

  /** Pending items, earliest first (a copy). */
  items(): T[] {
    const items: T[] = [];
    for (const entry of this.#heap) {
      if (entry.item[ENTRY] === entry) items.push(entry.item as T);
    }
    return this.#sorted(items);
  }

  [Symbol.iterator](): Iterator<T> {
    return this.items()[Symbol.iterator]();
  }

  /** Called by an item marked complete while queued (internal). */
  completed(item: QueueItem): void {
    if (item[OWNER] !== this) return;
    this.#detach(item as T);
    this.#dead++;
    this.#maybeCompact();
  }

  /** Called by a queued item whose expiration may have changed (internal). */
  rekey(item: QueueItem): void {
    if (item[OWNER] !== this) return;
    const entry = item[ENTRY] as Entry | undefined;
    if (entry && entry.key === item.expiration) return;
    this.#dead++;
    this.#push(item);
    this.#maybeCompact();
  }

  #sorted(items: T[]): T[] {
    const entries = items.map((item) => item[ENTRY] as Entry);
    entries.sort(compare);
    return entries.map((e) => e.item as T);
  }

  #detach(item: T): void {
    item[OWNER] = undefined;
    item[ENTRY] = undefined;
    this.#pending--;
    if (item.graceid !== undefined) {
      const set = this.#byGraceId.get(item.graceid);
      set?.delete(item);
      if (set?.size === 0) this.#byGraceId.delete(item.graceid);
    }
  }

  #push(item: QueueItem): void {
    const entry: Entry = { item, key: item.expiration, order: this.#order++ };
    item[ENTRY] = entry;
    const heap = this.#heap;
    let i = heap.length;
    heap.push(entry);
    while (i > 0) {
      const parent = (i - 1) >> 1;
      const p = heap[parent]!;
      if (!before(entry, p)) break;
      heap[i] = p;
      i = parent;
    }
    heap[i] = entry;
  }

  #removeTop(): void {
    const last = this.#heap.pop()!;
    if (this.#heap.length > 0) this.#siftDown(0, last);
  }

  /** Places `entry` at or below slot `i`, moving smaller children up. */
  #siftDown(start: number, entry: Entry): void {
    const heap = this.#heap;
    const n = heap.length;
    let i = start;
    for (;;) {
      const left = 2 * i + 1;
      if (left >= n) break;
      const right = left + 1;
      const child = right < n && before(heap[right]!, heap[left]!)
        ? right
        : left;
      if (!before(heap[child]!, entry)) break;
      heap[i] = heap[child]!;
      i = child;
    }
    heap[i] = entry;
  }

  #dropDeadTop(): void {
    for (;;) {
      const top = this.#heap[0];
      if (!top || top.item[ENTRY] === top) return;
      this.#removeTop();
      this.#dead--;
    }
  }

  #maybeCompact(): void {
    const limit = Math.min(
      this.#heap.length * this.#maxFrac,
      this.#maxComplete,
    );
    if (this.#dead <= limit) return;
    this.#heap = this.#heap.filter((entry) => entry.item[ENTRY] === entry);
    this.#dead = 0;
    for (let i = (this.#heap.length >> 1) - 1; i >= 0; i--) {
      this.#siftDown(i, this.#heap[i]!);
    }
  }
}
