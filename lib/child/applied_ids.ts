/**
 * The ids of the alerts a child applied, as the memory that refuses an
 * alert applied twice and as the JSON list every snapshot carries.
 *
 * @module
 */

/** Ids per chunk: a chunk is joined into JSON text once, when it fills. */
export const APPLIED_CHUNK = 256;

/**
 * The `[node, id]` pairs of applied alerts, oldest first, at least
 * `limit` of them once that many were added, and fewer than
 * `limit + APPLIED_CHUNK`: the oldest are forgotten a chunk at a time.
 * Each full chunk keeps its JSON text, so a snapshot's list is a join of
 * a few dozen texts, not of every id (a checkpoint every half second
 * under a stream of alerts would otherwise rebuild 10,000 of them).
 *
 * @example
 * ```ts
 * const applied = new AppliedIds(1000);
 * applied.add("cbc_gstlal", "item-1");
 * applied.has("cbc_gstlal", "item-1"); // true
 * applied.json(); // '[["cbc_gstlal","item-1"]]'
 * ```
 */
export class AppliedIds {
  /** Each pair as its JSON text. */
  #keys = new Set<string>();
  /** Full chunks, oldest first: their keys and those joined. */
  #full: { keys: string[]; json: string }[] = [];
  /** Index in `#full` of the oldest chunk kept. */
  #head = 0;
  #open: string[] = [];
  #limit: number;

  /** Keeps at least the newest `limit` pairs. */
  constructor(limit: number) {
    this.#limit = limit;
  }

  /** Pairs held. */
  get size(): number {
    return this.#keys.size;
  }

  /** Whether the alert `id` of `node` was applied (as far as this remembers). */
  has(node: string, id: string): boolean {
    return this.#keys.has(JSON.stringify([node, id]));
  }

  /** Remembers an applied alert; false when it was remembered already. */
  add(node: string, id: string): boolean {
    const key = JSON.stringify([node, id]);
    if (this.#keys.has(key)) return false;
    this.#keys.add(key);
    this.#open.push(key);
    if (this.#open.length === APPLIED_CHUNK) {
      this.#full.push({ keys: this.#open, json: this.#open.join(",") });
      this.#open = [];
    }
    for (;;) {
      const oldest = this.#full[this.#head];
      if (!oldest || this.#keys.size - oldest.keys.length < this.#limit) break;
      for (const old of oldest.keys) this.#keys.delete(old);
      this.#head++;
    }
    if (this.#head > 64 && this.#head * 2 > this.#full.length) {
      this.#full = this.#full.slice(this.#head);
      this.#head = 0;
    }
    return true;
  }

  /** The pairs, oldest first, as the JSON list `[[node, id], ...]`. */
  json(): string {
    const parts: string[] = [];
    for (let i = this.#head; i < this.#full.length; i++) parts.push(this.#full[i]!.json);
    if (this.#open.length > 0) parts.push(this.#open.join(","));
    return `[${parts.join(",")}]`;
  }
}
