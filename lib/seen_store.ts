/**
 * Item ids already routed, per node, kept in the state folder so a
 * restart neither loses nor repeats alerts the server still holds.
 *
 * @module
 */

import { join } from "node:path";
import type { SeenIds } from "./router.ts";
import { readIfExists, writePrivateFile } from "./state_dir.ts";

/** Options for {@linkcode SeenStore.open}. */
export interface SeenStoreOptions {
  /** Ids remembered per node (the oldest are forgotten). @default {1000} */
  limit?: number;
}

/** How long ids wait to share one write and sync. */
const FLUSH_MS = 100;

interface Line {
  n: string;
  i?: string;
}

/**
 * A persistent {@linkcode SeenIds}: an append-only file, compacted on
 * open. Ids are written when their alerts are safe in a journal.
 */
export class SeenStore implements SeenIds {
  readonly path: string;
  #nodes = new Map<string, Set<string>>();
  #limit: number;
  #file: Deno.FsFile | undefined;
  #pending: string[] = [];
  #flushing: Promise<void> | undefined;
  #timer: ReturnType<typeof setTimeout> | undefined;

  private constructor(path: string, limit: number) {
    this.path = path;
    this.#limit = limit;
  }

  static async open(
    dir: string,
    options: SeenStoreOptions = {},
  ): Promise<SeenStore> {
    const store = new SeenStore(join(dir, "seen.jsonl"), options.limit ?? 1000);
    const text = await readIfExists(store.path) ?? "";
    for (const raw of text.split("\n")) {
      if (!raw) continue;
      try {
        const line = JSON.parse(raw) as Line;
        if (typeof line.n !== "string") continue;
        store.#remember(
          line.n,
          typeof line.i === "string" ? line.i : undefined,
        );
      } catch {
        // A torn last line from a crash: everything before it stands.
      }
    }
    await writePrivateFile(store.path, store.#dump());
    store.#file = await Deno.open(store.path, { append: true, mode: 0o600 });
    return store;
  }

  /** Whether this node was ever watched (ids or a start marker). */
  knows(node: string): boolean {
    return this.#nodes.has(node);
  }

  has(node: string, id: string): boolean {
    return this.#nodes.get(node)?.has(id) ?? false;
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
    this.#remember(node, undefined);
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

  async close(): Promise<void> {
    await this.flush();
    this.#file?.close();
    this.#file = undefined;
  }

  #remember(node: string, id: string | undefined): void {
    let ids = this.#nodes.get(node);
    if (!ids) this.#nodes.set(node, ids = new Set());
    if (id === undefined) return;
    ids.delete(id);
    ids.add(id);
    if (ids.size > this.#limit) ids.delete(ids.values().next().value!);
  }

  #dump(): string {
    const lines: string[] = [];
    for (const [node, ids] of this.#nodes) {
      lines.push(JSON.stringify({ n: node }));
      for (const id of ids) lines.push(JSON.stringify({ n: node, i: id }));
    }
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
        const bytes = new TextEncoder().encode(batch);
        let written = 0;
        while (written < bytes.length) {
          written += await file.write(bytes.subarray(written));
        }
        await file.syncData();
      } finally {
        this.#flushing = undefined;
        if (this.#pending.length > 0) void this.#startFlush();
      }
    })();
    return this.#flushing;
  }
}
