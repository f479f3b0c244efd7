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
  #members = new Set<T>();
  #limit: number;

  /** A set keeping at most `limit` members. */
  constructor(limit: number) {
    this.#limit = limit;
  }

  /** Members held. */
  get size(): number {
    return this.#members.size;
  }

  /** Whether `value` is held. */
  has(value: T): boolean {
    return this.#members.has(value);
  }

  /** Adds `value` as the newest member; returns the member forgotten, if any. */
  add(value: T): T | undefined {
    this.#members.delete(value);
    this.#members.add(value);
    if (this.#members.size <= this.#limit) return undefined;
    const oldest = this.#members.values().next().value as T;
    this.#members.delete(oldest);
    return oldest;
  }

  /** Members, oldest first. */
  [Symbol.iterator](): Iterator<T> {
    return this.#members[Symbol.iterator]();
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
