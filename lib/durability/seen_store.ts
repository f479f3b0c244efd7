/**
 * Item ids already routed, per node, kept in the state folder so a
 * restart neither loses nor repeats alerts the server still holds.
 *
 * @module
 */

import { join } from "node:path";
import * as v from "valibot";
import { KeyedIds } from "../core/bounded_set.ts";
import type { SeenIds } from "../core/source.ts";
import { readIfExists, writeAll, writePrivateFile } from "./state_dir.ts";

/** Options for {@linkcode SeenStore.open}. */
export interface SeenStoreOptions {
  /** Ids remembered per node (the oldest are forgotten). @default {1000} */
  limit?: number;
  /** Hears about a failed write (it is retried). */
  onError?(error: Error): void;
}

/** Ids remembered per node unless told otherwise. */
export const SEEN_LIMIT = 1000;

/** How long ids wait to share one write and sync. */
const FLUSH_MS = 100;

/** One line of the file: a node's id, or (without `i`) a node caught up at least once. */
const LineSchema = v.object({ n: v.string(), i: v.optional(v.string()) });
type Line = v.InferOutput<typeof LineSchema>;

/**
 * A persistent {@linkcode SeenIds}: an append-only file, compacted on
 * open. Ids are written when their alerts are safe in a journal.
 */
export class SeenStore implements SeenIds, AsyncDisposable {
  readonly path: string;
  #nodes: KeyedIds;
  #limit: number;
  /** Nodes caught up at least once. */
  #marked = new Set<string>();
  #onError: ((error: Error) => void) | undefined;
  #file: Deno.FsFile | undefined;
  #pending: string[] = [];
  #flushing: Promise<void> | undefined;
  #timer: ReturnType<typeof setTimeout> | undefined;

  private constructor(path: string, limit: number, onError?: (error: Error) => void) {
    this.path = path;
    this.#nodes = new KeyedIds(limit);
    this.#limit = limit;
    this.#onError = onError;
  }

  static async open(
    dir: string,
    options: SeenStoreOptions = {},
  ): Promise<SeenStore> {
    const store = new SeenStore(
      join(dir, "seen.jsonl"),
      options.limit ?? SEEN_LIMIT,
      options.onError,
    );
    const text = await readIfExists(store.path) ?? "";
    for (const raw of text.split("\n")) {
      if (!raw) continue;
      let value: unknown;
      try {
        value = JSON.parse(raw);
      } catch {
        // A torn last line from a crash: everything before it stands.
        continue;
      }
      const parsed = v.safeParse(LineSchema, value);
      if (!parsed.success) continue;
      const line = parsed.output;
      if (line.i !== undefined) store.#remember(line.n, line.i);
      else store.#marked.add(line.n);
    }
    await writePrivateFile(store.path, store.#dump());
    store.#file = await Deno.open(store.path, { append: true, mode: 0o600 });
    return store;
  }

  /**
   * Whether this node was caught up before (its marker is on disk). Ids
   * alone do not count: live alerts may arrive before the first catch-up.
   */
  knows(node: string): boolean {
    return this.#marked.has(node);
  }

  has(node: string, id: string): boolean {
    return this.#nodes.has(node, id);
  }

  /** How many ids of `node` are remembered (0: nothing routed from it yet). */
  count(node: string): number {
    return this.#nodes.size(node);
  }

  /** Ids remembered per node; older ones are forgotten. */
  get limit(): number {
    return this.#limit;
  }

  /**
   * Remembers an id in memory only: the router calls this on receipt,
   * and the id is written once its alert is in a journal
   * ({@linkcode SeenStore.record}), so a crash between the two cannot
   * mark as seen an alert that was never kept.
   */
  add(node: string, id: string): void {
    this.#remember(node, id);
  }

  /** Remembers an id and writes it down. */
  record(node: string, id: string): void {
    this.#remember(node, id);
    this.#write({ n: node, i: id });
  }

  /** Records that a node is watched from now on, even with no items yet. */
  mark(node: string): void {
    if (this.knows(node)) return;
    this.#marked.add(node);
    this.#write({ n: node });
  }

  /** Waits until every id added so far is on disk. */
  async flush(): Promise<void> {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    while (this.#flushing || this.#pending.length > 0) {
      await (this.#flushing ?? this.#startFlush());
    }
  }

  /** Writes what is pending and closes the file. */
  async close(): Promise<void> {
    await this.flush();
    this.#file?.close();
    this.#file = undefined;
  }

  /** Closes, for `await using`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  #remember(node: string, id: string): void {
    this.#nodes.add(node, id);
  }

  #dump(): string {
    const lines = [...this.#marked].map((n) => JSON.stringify({ n }));
    for (const [node, id] of this.#nodes.entries()) lines.push(JSON.stringify({ n: node, i: id }));
    return lines.length ? lines.join("\n") + "\n" : "";
  }

  #write(line: Line): void {
    this.#pending.push(JSON.stringify(line) + "\n");
    // One write and one sync serve every id added within a short window;
    // an id lost in a crash only means that alert may be offered again
    // (delivery is at least once).
    this.#timer ??= setTimeout(() => {
      this.#timer = undefined;
      void this.#startFlush();
    }, FLUSH_MS);
  }

  #startFlush(): Promise<void> {
    if (this.#flushing) return this.#flushing;
    const batch = this.#pending.join("");
    this.#pending = [];
    if (!batch || !this.#file) return Promise.resolve();
    const file = this.#file;
    this.#flushing = (async () => {
      try {
        await writeAll(file, new TextEncoder().encode(batch));
        await file.syncData();
      } catch (error) {
        // Kept for the next try; the journal still holds these alerts.
        this.#pending.unshift(batch);
        this.#onError?.(error as Error);
        await new Promise((r) => setTimeout(r, 1000));
      } finally {
        this.#flushing = undefined;
        if (this.#pending.length > 0) void this.#startFlush();
      }
    })();
    return this.#flushing;
  }
}
