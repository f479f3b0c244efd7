/**
 * A set that forgets its oldest members past a limit: the memory of ids
 * already seen (per node, per child) must stay bounded.
 *
 * @module
 */

/**
 * An insertion-ordered set of at most `limit` members; adding one more
 * drops the oldest. Adding a member again makes it the newest.
 *
 * @example
 * ```ts
 * const ids = new BoundedSet<string>(2);
 * ids.add("a"); ids.add("b"); ids.add("c");
 * ids.has("a"); // false
 * ```
 */
export class BoundedSet<T> implements Iterable<T> {
  /** Each member and the stamp of its latest add. */
  #stamps = new Map<T, number>();
  /**
   * Adds in order, as member and stamp; an entry whose stamp is not its
   * member's latest is stale and skipped. A Set's own order would do, but
   * dropping its oldest member walks over every slot deleted before
   * (V8 compacts only when it grows), which made each add cost ~17 µs
   * at 10,000 members.
   */
  #order: (T | number)[] = [];
  /** Index in `#order` of the oldest entry not yet dropped. */
  #head = 0;
  #stamp = 0;
  #limit: number;

  /** A set keeping at most `limit` members. */
  constructor(limit: number) {
    this.#limit = limit;
  }

  /** Members held. */
  get size(): number {
    return this.#stamps.size;
  }

  /** Whether `value` is held. */
  has(value: T): boolean {
    return this.#stamps.has(value);
  }

  /** Adds `value` as the newest member; returns the member forgotten, if any. */
  add(value: T): T | undefined {
    const stamp = ++this.#stamp;
    this.#stamps.set(value, stamp);
    this.#order.push(value, stamp);
    let dropped: T | undefined;
    if (this.#stamps.size > this.#limit) {
      for (;;) {
        const oldest = this.#order[this.#head] as T;
        const at = this.#order[this.#head + 1] as number;
        this.#head += 2;
        if (this.#stamps.get(oldest) === at) {
          this.#stamps.delete(oldest);
          dropped = oldest;
          break;
        }
      }
    }
    // Stale entries from re-adds, and dropped ones, are cut now and then.
    if (this.#head > 64 && this.#head * 2 > this.#order.length) this.#compact();
    return dropped;
  }

  #compact(): void {
    const live: (T | number)[] = [];
    for (let i = this.#head; i < this.#order.length; i += 2) {
      const member = this.#order[i] as T;
      const at = this.#order[i + 1] as number;
      if (this.#stamps.get(member) === at) live.push(member, at);
    }
    this.#order = live;
    this.#head = 0;
  }

  /** Members, oldest first. */
  *[Symbol.iterator](): Iterator<T> {
    for (let i = this.#head; i < this.#order.length; i += 2) {
      const member = this.#order[i] as T;
      if (this.#stamps.get(member) === this.#order[i + 1]) yield member;
    }
  }
}

/**
 * Bounded sets of ids per key (a node, a child): one {@linkcode BoundedSet}
 * per key, each with the same limit.
 *
 * @example
 * ```ts
 * const seen = new KeyedIds(1000);
 * seen.add("cbc_gstlal", "item-1");
 * seen.has("cbc_gstlal", "item-1"); // true
 * ```
 */
export class KeyedIds {
  #sets = new Map<string, BoundedSet<string>>();
  #limit: number;

  /** At most `limit` ids per key. */
  constructor(limit: number) {
    this.#limit = limit;
  }

  /** Whether `id` is held under `key`. */
  has(key: string, id: string): boolean {
    return this.#sets.get(key)?.has(id) ?? false;
  }

  /** How many ids are held under `key`. */
  size(key: string): number {
    return this.#sets.get(key)?.size ?? 0;
  }

  /** Adds `id` under `key` as its newest. */
  add(key: string, id: string): void {
    let set = this.#sets.get(key);
    if (!set) this.#sets.set(key, set = new BoundedSet(this.#limit));
    set.add(id);
  }

  /** Every (key, id), oldest first within each key. */
  *entries(): IterableIterator<[string, string]> {
    for (const [key, set] of this.#sets) for (const id of set) yield [key, id];
  }
}
