/**
 * The child's queue: a 4-ary heap of {@linkcode QueueItem}s ordered by
 * (expiration, insertion order).
 *
 * @module
 */

import { type ChildQueue, ENTRY, KEY, OWNER, type QueueItem } from "./queue_item.ts";

/** Options for {@linkcode SortedQueue}. */
export interface SortedQueueOptions {
  /**
   * Dead heap slots (completed or re-timed items) tolerated before a
   * clean-up pass, as the old `maxComplete`.
   *
   * @default {100}
   */
  maxComplete?: number;
  /**
   * Fraction of the heap that may be dead slots before a clean-up pass,
   * as the old `maxFrac`. The lower of the two limits applies.
   *
   * @default {0.5}
   */
  maxFrac?: number;
  /** Hears about every item inserted (the engine notes which alert made it). */
  onInsert?: (item: QueueItem) => void;
}

/** Seconds in a century: no follow-up is meant to come due further away than that. */
const CENTURY = 100 * 365.25 * 86400;

/**
 * Checks that an item's tasks come due at real times: finite, and within a
 * century of now (a corrupted or hostile expiration must not arm a timer
 * that spins or never fires).
 *
 * @throws {RangeError} naming the item and the time
 * @param now epoch seconds (many items are checked against one reading)
 */
export function checkTime(
  item: QueueItem,
  expiration = item.expiration,
  now = Date.now() / 1000,
): void {
  for (const task of item.tasks) {
    const t = task.expiration;
    if (Number.isNaN(t)) throw new RangeError(`Item ${item.name} has a task with no expiration`);
    if (!Number.isFinite(t) || Math.abs(t - now) > CENTURY) {
      throw new RangeError(
        `Item ${item.name}: task ${task.name} comes due at ${t}, not a time within a century of now`,
      );
    }
  }
  if (Number.isNaN(expiration)) {
    throw new RangeError(`Item ${item.name} has a task with no expiration`);
  }
}

/** Gives a woken dormant item to the queue, with its row in its snapshot (its place in line). */
export type PutDormant = (item: QueueItem, row: number) => void;

/**
 * Items restored lazily (a snapshot's pieces still as text): the queue
 * counts them as pending, and wakes them into the heap when it needs them:
 * when the earliest of them is due before its own top, when their graceid
 * is looked up, or when the whole queue is read.
 */
export interface Dormant {
  /** Items in all, woken or not: the queue keeps their places in line. */
  readonly total: number;
  /** Items still dormant. */
  readonly count: number;
  /** The earliest expiration among the dormant items; Infinity when none. */
  firstKey(): number;
  /** Wakes the items of the earliest piece. */
  wakeFirst(put: PutDormant): void;
  /** Wakes every piece that holds items of `graceid`. */
  wakeGraceId(graceid: string, put: PutDormant): void;
  /** Wakes everything. */
  wakeAll(put: PutDormant): void;
}

/**
 * The heap's slots as they were when {@linkcode SortedQueue.freeze} was
 * called, read without copying them: a slot the queue overwrites before
 * the reader passed it keeps its old item aside.
 */
export class FrozenSlots {
  /** Slots at the freeze. */
  readonly length: number;
  /** The heap's array at the freeze. */
  readonly items: readonly QueueItem[];
  /** Slots below this were read already: their old items need not be kept. */
  cursor = 0;
  /** Old items of slots overwritten since the freeze, not yet read. */
  readonly kept = new Map<number, QueueItem>();

  constructor(items: QueueItem[], length: number) {
    this.items = items;
    this.length = length;
  }

  /** The item slot `i` held at the freeze (read slots in order: the cursor follows). */
  read(i: number): QueueItem {
    this.cursor = i + 1;
    const kept = this.kept.get(i);
    if (kept === undefined) return this.items[i]!;
    this.kept.delete(i);
    return kept;
  }
}

function byTime(a: QueueItem, b: QueueItem): number {
  const ka = a[KEY]!;
  const kb = b[KEY]!;
  return ka < kb ? -1 : ka > kb ? 1 : a[ENTRY]! - b[ENTRY]!;
}

/**
 * Items sorted by when they next come due. Insert and pop are O(log n);
 * equal expirations come out first-in first-out. Completed items drop out
 * of the count and the graceid index at once and out of the heap lazily;
 * nobody has to remove them by hand. Re-timing a queued item (adding or
 * removing tasks) moves it.
 *
 * The heap keeps keys and insertion numbers in typed arrays beside the
 * items, so comparisons stay in contiguous memory; a slot is live while
 * its item still carries that slot's insertion number.
 *
 * @example
 * ```ts
 * import { QueueItem } from "./queue_item.ts";
 *
 * const queue = new SortedQueue();
 * const item = new QueueItem(Date.now() / 1000, []);
 * queue.insert(item);
 * queue.peek()?.expiration; // earliest pending
 * queue.byGraceId("G123");  // that event's pending items
 * ```
 */
export class SortedQueue<T extends QueueItem = QueueItem> implements Iterable<T>, ChildQueue {
  #items: QueueItem[] = [];
  #keys = new Float64Array(64);
  #orders = new Float64Array(64);
  #n = 0;
  #order = 0;
  #pending = 0;
  #dead = 0;
  /**
   * Pending items by graceid: the item itself while it is the only one
   * (most graceids have one), else a set. A set for each of 1e5 items
   * would cost ~100 bytes apiece and most of a snapshot's restore time.
   */
  #byGraceId = new Map<string, T | Set<T>>();
  #maxComplete: number;
  #maxFrac: number;
  #onInsert: ((item: QueueItem) => void) | undefined;
  /** The slots a snapshot is reading, while it does (see `freeze`). */
  #frozen: FrozenSlots | undefined;
  /** Items restored lazily, until all are woken; their places in line start at `#dormantBase`. */
  #dormant: Dormant | undefined;
  #dormantBase = 0;

  constructor(options: SortedQueueOptions = {}) {
    this.#maxComplete = options.maxComplete ?? 100;
    this.#maxFrac = options.maxFrac ?? 0.5;
    this.#onInsert = options.onInsert;
  }

  /** Number of pending (not complete) items, dormant ones included. */
  get size(): number {
    return this.#pending + (this.#dormant?.count ?? 0);
  }

  /** Same as {@linkcode SortedQueue.size}, for readers of the old code. */
  get length(): number {
    return this.size;
  }

  /**
   * Fixes the heap's slots as they are now, for a snapshot to read in
   * slices while the queue goes on (see {@linkcode FrozenSlots}): O(1) now,
   * and one map entry per slot overwritten before it is read. Clean-up
   * passes wait until {@linkcode SortedQueue.thaw}.
   *
   * @throws {Error} when already frozen
   */
  freeze(): FrozenSlots {
    if (this.#frozen) throw new Error("the queue is already frozen");
    return this.#frozen = new FrozenSlots(this.#items, this.#n);
  }

  /** Ends {@linkcode SortedQueue.freeze}; a clean-up pass it held back runs now. */
  thaw(): void {
    this.#frozen = undefined;
    this.#maybeCompact();
  }

  /** Keeps slot `i`'s item aside before it is overwritten, while a reader still needs it. */
  #keep(frozen: FrozenSlots, i: number): void {
    if (
      i < frozen.length && i >= frozen.cursor && frozen.items === this.#items &&
      !frozen.kept.has(i)
    ) frozen.kept.set(i, this.#items[i]!);
  }

  /**
   * Takes items restored lazily, after those of
   * {@linkcode SortedQueue.insertAll} and before any inserted later: each
   * comes into the heap in its place when woken, as if inserted now.
   */
  adopt(dormant: Dormant): void {
    if (this.#dormant) throw new Error("the queue already holds dormant items");
    this.#dormantBase = this.#order;
    this.#order += dormant.total;
    this.#dormant = dormant.count > 0 ? dormant : undefined;
  }

  /** The items restored lazily and not woken yet, if any (a snapshot copies them as they are). */
  dormant(): Dormant | undefined {
    return this.#dormant;
  }

  /**
   * Wakes the earliest dormant piece, if any (idle time: so that none is
   * left to wake when it is due); returns the items still dormant.
   */
  wakeSome(): number {
    const dormant = this.#dormant;
    if (!dormant) return 0;
    dormant.wakeFirst(this.#put);
    return this.#settleDormant();
  }

  /** A woken item into the heap, in its reserved place in line. */
  #put = (item: QueueItem, row: number): void => {
    this.#admit(item as T, false);
    this.#push(item, item.expiration, this.#dormantBase + row);
  };

  /** Drops the dormant items once all are woken; returns how many are left. */
  #settleDormant(): number {
    const left = this.#dormant?.count ?? 0;
    if (left === 0) this.#dormant = undefined;
    return left;
  }

  /** Wakes the dormant items due no later than the heap's top, so the top is the earliest. */
  #wakeDue(): void {
    const dormant = this.#dormant;
    if (!dormant) return;
    for (;;) {
      this.#dropDeadTop();
      const top = this.#n > 0 ? this.#keys[0]! : Infinity;
      const left = dormant.count;
      if (left === 0 || dormant.firstKey() > top) break;
      dormant.wakeFirst(this.#put);
      // A piece that would not wake (none can: its time is finite) must not hold this up.
      if (dormant.count === left) break;
    }
    this.#settleDormant();
  }

  /** Wakes every dormant item. */
  #wakeAll(): void {
    const dormant = this.#dormant;
    if (!dormant) return;
    dormant.wakeAll(this.#put);
    this.#settleDormant();
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
    const key = item.expiration;
    checkTime(item, key);
    this.#admit(item);
    this.#push(item, key);
  }

  /**
   * Makes a checked item pending here: owner, count, listener (unless it
   * is a restored one waking), graceid index.
   */
  #admit(item: T, inserted = true): void {
    item[OWNER] = this;
    this.#pending++;
    if (inserted) this.#onInsert?.(item);
    this.#index(item);
  }

  /** Adds a pending item to its graceid's set. */
  #index(item: T): void {
    const graceid = item.graceid;
    if (graceid === undefined) return;
    const entry = this.#byGraceId.get(graceid);
    if (entry === undefined) this.#byGraceId.set(graceid, item);
    else if (entry instanceof Set) entry.add(item);
    else if (entry !== item) this.#byGraceId.set(graceid, new Set([entry, item]));
  }

  /**
   * Adds many items at once (restoring a snapshot), as
   * {@linkcode SortedQueue.insert} would one by one, in the same order, but
   * builds the heap in one O(n) pass rather than sifting each item up.
   * Every item is checked before any goes in: all or nothing.
   *
   * @throws {Error} as `insert` does
   */
  insertAll(items: readonly T[]): void {
    const now = Date.now() / 1000;
    for (const item of items) {
      if (item[OWNER]) throw new Error(`Item ${item.name} is already in a queue`);
      if (!item.complete) checkTime(item, item.expiration, now);
    }
    while (this.#keys.length < this.#n + items.length) this.#grow();
    const keys = this.#keys;
    const orders = this.#orders;
    for (const item of items) {
      // Complete, or given twice: left out, as insert would.
      if (item.complete || item[OWNER]) continue;
      this.#admit(item);
      const order = this.#order++;
      const key = item.expiration;
      item[ENTRY] = order;
      item[KEY] = key;
      keys[this.#n] = key;
      orders[this.#n] = order;
      if (this.#frozen) this.#keep(this.#frozen, this.#n);
      this.#items[this.#n++] = item;
    }
    this.#heapify();
  }

  /** The earliest pending item, left in place. */
  peek(): T | undefined {
    this.#wakeDue();
    this.#dropDeadTop();
    return this.#n > 0 ? this.#items[0] as T : undefined;
  }

  /**
   * When the earliest pending item comes due, read from the heap without
   * touching the item's tasks (nor waking a dormant one); undefined when
   * empty.
   */
  nextExpiration(): number | undefined {
    this.#dropDeadTop();
    const top = this.#n > 0 ? this.#keys[0]! : Infinity;
    const next = this.#dormant ? Math.min(top, this.#dormant.firstKey()) : top;
    return next === Infinity ? undefined : next;
  }

  /** Removes and returns the earliest pending item. */
  pop(): T | undefined {
    this.#wakeDue();
    this.#dropDeadTop();
    if (this.#n === 0) return undefined;
    const item = this.#items[0] as T;
    this.#removeTop();
    this.#detach(item);
    return item;
  }

  /** Pending items of one graceid, earliest first. */
  byGraceId(graceid: string): T[] {
    if (this.#dormant) {
      this.#dormant.wakeGraceId(graceid, this.#put);
      this.#settleDormant();
    }
    const entry = this.#byGraceId.get(graceid);
    if (entry === undefined) return [];
    return entry instanceof Set ? [...entry].sort(byTime) : [entry];
  }

  /** Graceids that have pending items. */
  graceIds(): string[] {
    this.#wakeAll();
    return [...this.#byGraceId.keys()];
  }

  /** Marks every pending item complete and empties the queue. */
  clear(): T[] {
    this.#wakeAll();
    const items = this.items();
    for (const item of items) this.#detach(item);
    for (const item of items) item.complete = true;
    this.#items = [];
    this.#n = 0;
    this.#dead = 0;
    return items;
  }

  /** Whether `item` is pending in this queue. */
  holds(item: QueueItem): boolean {
    return item[OWNER] === this && !item.complete;
  }

  /** Pending items in no particular order (a copy; cheaper than `items()`). */
  live(): T[] {
    this.#wakeAll();
    const items: T[] = [];
    for (let i = 0; i < this.#n; i++) {
      const item = this.#items[i]!;
      if (item[ENTRY] === this.#orders[i]) items.push(item as T);
    }
    return items;
  }

  /** Pending items, earliest first (a copy). */
  items(): T[] {
    return this.live().sort(byTime);
  }

  /**
   * The `k` earliest pending items, earliest first, read from the heap
   * without disturbing it: O(k log k) rather than a sort of the queue.
   */
  earliest(k: number): T[] {
    const dormant = this.#dormant;
    if (k <= 0) return [];
    for (;;) {
      const out = this.#earliestInHeap(k);
      // Enough items, none due after a dormant one (one due at the same time
      // may be listed in another order among them).
      const last = out.at(-1);
      if (
        !dormant || dormant.count === 0 || (out.length === k && last![KEY]! <= dormant.firstKey())
      ) {
        this.#settleDormant();
        return out;
      }
      const left = dormant.count;
      dormant.wakeFirst(this.#put);
      if (dormant.count === left) return out;
    }
  }

  #earliestInHeap(k: number): T[] {
    const out: T[] = [];
    // Slots that may hold the next earliest: a best-first walk down the heap.
    const open = this.#n > 0 ? [0] : [];
    while (out.length < k && open.length > 0) {
      let best = 0;
      for (let j = 1; j < open.length; j++) {
        const a = open[j]!;
        const b = open[best]!;
        const ka = this.#keys[a]!;
        const kb = this.#keys[b]!;
        if (ka < kb || (ka === kb && this.#orders[a]! < this.#orders[b]!)) best = j;
      }
      const i = open[best]!;
      open[best] = open[open.length - 1]!;
      open.pop();
      const item = this.#items[i]!;
      if (item[ENTRY] === this.#orders[i]) out.push(item as T);
      for (let c = 4 * i + 1; c < Math.min(4 * i + 5, this.#n); c++) open.push(c);
    }
    return out;
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
    if (item[OWNER] !== this || item[KEY] === item.expiration) return;
    this.#dead++;
    this.#push(item, item.expiration);
    this.#maybeCompact();
  }

  #detach(item: T): void {
    item[OWNER] = undefined;
    item[ENTRY] = undefined;
    this.#pending--;
    const graceid = item.graceid;
    if (graceid === undefined) return;
    const entry = this.#byGraceId.get(graceid);
    if (entry === item) this.#byGraceId.delete(graceid);
    else if (entry instanceof Set) {
      entry.delete(item);
      // Back to the item alone once it is the only one left.
      if (entry.size === 1) this.#byGraceId.set(graceid, entry.values().next().value!);
    }
  }

  #push(item: QueueItem, key: number, order = this.#order++): void {
    item[ENTRY] = order;
    item[KEY] = key;
    if (this.#n === this.#keys.length) this.#grow();
    const keys = this.#keys;
    const orders = this.#orders;
    const items = this.#items;
    const frozen = this.#frozen;
    let i = this.#n++;
    while (i > 0) {
      const p = (i - 1) >> 2;
      const pk = keys[p]!;
      if (key > pk || (key === pk && order > orders[p]!)) break;
      keys[i] = pk;
      orders[i] = orders[p]!;
      if (frozen) this.#keep(frozen, i);
      items[i] = items[p]!;
      i = p;
    }
    keys[i] = key;
    orders[i] = order;
    if (frozen) this.#keep(frozen, i);
    items[i] = item;
  }

  #grow(): void {
    const keys = new Float64Array(this.#keys.length * 2);
    keys.set(this.#keys);
    this.#keys = keys;
    const orders = new Float64Array(this.#orders.length * 2);
    orders.set(this.#orders);
    this.#orders = orders;
  }

  #removeTop(): void {
    const last = --this.#n;
    const item = this.#items[last]!;
    if (this.#frozen) this.#keep(this.#frozen, last);
    this.#items[last] = undefined as unknown as QueueItem;
    if (last > 0) {
      this.#siftDown(0, this.#keys[last]!, this.#orders[last]!, item);
    }
  }

  /** Places a slot at or below `i`, moving earlier children up. */
  #siftDown(start: number, key: number, order: number, item: QueueItem): void {
    const keys = this.#keys;
    const orders = this.#orders;
    const items = this.#items;
    const n = this.#n;
    const frozen = this.#frozen;
    let i = start;
    for (;;) {
      const first = 4 * i + 1;
      if (first >= n) break;
      let c = first;
      let ck = keys[c]!;
      const end = Math.min(first + 4, n);
      for (let j = first + 1; j < end; j++) {
        const jk = keys[j]!;
        if (jk < ck || (jk === ck && orders[j]! < orders[c]!)) {
          c = j;
          ck = jk;
        }
      }
      if (key < ck || (key === ck && order < orders[c]!)) break;
      keys[i] = ck;
      orders[i] = orders[c]!;
      if (frozen) this.#keep(frozen, i);
      items[i] = items[c]!;
      i = c;
    }
    keys[i] = key;
    orders[i] = order;
    if (frozen) this.#keep(frozen, i);
    items[i] = item;
  }

  #dropDeadTop(): void {
    // With no dead slots the top is live: skip touching the item.
    if (this.#dead === 0) return;
    while (this.#n > 0 && this.#items[0]![ENTRY] !== this.#orders[0]) {
      this.#removeTop();
      this.#dead--;
    }
  }

  #maybeCompact(): void {
    // Not while a snapshot reads the slots: `thaw` runs it.
    if (this.#frozen) return;
    const limit = Math.min(this.#n * this.#maxFrac, this.#maxComplete);
    if (this.#dead <= limit) return;
    let n = 0;
    for (let i = 0; i < this.#n; i++) {
      const item = this.#items[i]!;
      if (item[ENTRY] !== this.#orders[i]) continue;
      this.#items[n] = item;
      this.#keys[n] = this.#keys[i]!;
      this.#orders[n] = this.#orders[i]!;
      n++;
    }
    this.#items.length = n;
    this.#n = n;
    this.#dead = 0;
    this.#heapify();
  }

  /** Restores the heap order over all slots: O(n), bottom up. */
  #heapify(): void {
    for (let i = (this.#n - 2) >> 2; i >= 0; i--) {
      this.#siftDown(i, this.#keys[i]!, this.#orders[i]!, this.#items[i]!);
    }
  }
}
