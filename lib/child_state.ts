/**
 * A child's durable state, worker side: recovery at start (snapshot, then
 * the journal after it) and checkpoints while it runs.
 *
 * Files in the child's state folder: `journal.log` (written by the
 * listener), `snapshot.json` and `snapshot.prev.json` (written here,
 * atomically, 0600). The previous snapshot is kept, and the journal is
 * trimmed only behind it, so a damaged snapshot falls back to the one
 * before without losing an alert.
 *
 * @module
 */

import { join } from "node:path";
import type { ChildRuntime } from "./child_runtime.ts";
import type { ChildLog } from "./context.ts";
import { readJournal } from "./journal.ts";
import {
  type ClassRegistry,
  parseSnapshot,
  restoreItems,
  type SnapshotData,
  SnapshotError,
  takeSnapshot,
} from "./snapshot.ts";
import { readIfExists, syncDir, writePrivateFile } from "./state_dir.ts";

/** Options for {@linkcode ChildState}. */
export interface ChildStateOptions {
  /** The child's state folder. */
  dir: string;
  child: string;
  runtime: ChildRuntime;
  registry: ClassRegistry;
  log: ChildLog;
  /** Checkpoint after this many alerts. @default {100} */
  every?: number;
  /**
   * Seconds a change may wait for its checkpoint at most; checkpoints come
   * sooner while they are cheap (under a tenth of the time). @default {1}
   */
  interval?: number;
  /** A checkpoint is on disk: it covers journal records up to `seq`. */
  onCheckpoint(seq: number, previous: number): void;
}

/** What recovery did. */
export interface Recovery {
  /** Journal position of the snapshot used (0: none). */
  snapshotSeq: number;
  /** Position of the snapshot before it (0: none). */
  previousSeq: number;
  /** Last journal record applied. */
  replayedTo: number;
  restored: number;
  replayed: number;
}

/** Recovery and checkpoints for one child. */
export class ChildState {
  #o: ChildStateOptions;
  #applied = 0;
  #covered = 0;
  #previous = 0;
  #alertsSince = 0;
  #dirty = false;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #minGap = 0;
  #lastAt = 0;
  #writing: Promise<void> | undefined;
  #closed = false;

  constructor(options: ChildStateOptions) {
    this.#o = options;
  }

  get #snapshotPath(): string {
    return join(this.#o.dir, "snapshot.json");
  }

  get #previousPath(): string {
    return join(this.#o.dir, "snapshot.prev.json");
  }

  /**
   * Loads the newest readable snapshot, then applies the journal after it,
   * with each alert's original `t0` (overdue tasks then run at once).
   *
   * @throws {SnapshotError} when a snapshot names a class the handler does
   * not export (restoring without it would drop that item's timers)
   */
  async recover(): Promise<Recovery> {
    const { runtime, log } = this.#o;
    const [current, previous] = [
      await this.#load(this.#snapshotPath),
      await this.#load(this.#previousPath),
    ];
    const snapshot = current ?? previous;
    let restored = 0;
    if (snapshot) {
      const path = snapshot === current ? this.#snapshotPath : this.#previousPath;
      const items = restoreItems(snapshot, this.#o.registry, path);
      await runtime.exclusive(() => runtime.restore(items, snapshot.applied));
      restored = items.length;
      this.#covered = this.#applied = snapshot.seq;
      this.#previous = snapshot === current ? previous?.seq ?? 0 : 0;
    }
    const journalPath = join(this.#o.dir, "journal.log");
    const journal = readJournal(await readIfExists(journalPath) ?? "", journalPath);
    const pending = journal.records.filter((r) => r.seq > this.#applied);
    const results = pending.map((r) =>
      runtime.deliver(r.alert, r.t0, { node: r.node, id: r.id, seq: r.seq, recovered: true })
    );
    await Promise.all(results);
    if (pending.length > 0) this.#applied = pending.at(-1)!.seq;
    const recovery: Recovery = {
      snapshotSeq: this.#covered,
      previousSeq: this.#previous,
      replayedTo: Math.max(this.#applied, journal.records.at(-1)?.seq ?? 0),
      restored,
      replayed: pending.length,
    };
    if (snapshot || pending.length > 0) {
      log.event("info", "recovered", { ...recovery, queue: runtime.queue.size });
    }
    // The next checkpoint follows as after any change, not on this path.
    if (pending.length > 0) this.changed();
    return recovery;
  }

  /** Notes that the alert with this journal position was applied. */
  applied(seq: number): void {
    this.#applied = Math.max(this.#applied, seq);
    this.#alertsSince++;
    this.changed();
  }

  /** Notes that the queue changed; a checkpoint follows soon. */
  changed(): void {
    this.#dirty = true;
    if (this.#closed) return;
    if (this.#alertsSince >= (this.#o.every ?? 100)) {
      void this.checkpoint();
      return;
    }
    if (this.#timer === undefined) {
      // As soon as checkpoints stay under a tenth of the time (and changes
      // have had 10 ms to gather), and never later than `interval`.
      const wait = Math.min(
        (this.#o.interval ?? 1) * 1000,
        Math.max(10, this.#lastAt + this.#minGap - performance.now()),
      );
      this.#timer = setTimeout(() => {
        this.#timer = undefined;
        void this.checkpoint();
      }, wait);
    }
  }

  /** Writes a snapshot now if anything changed since the last one. */
  checkpoint(): Promise<void> {
    if (this.#writing) return this.#writing;
    if (!this.#dirty) return Promise.resolve();
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#writing = this.#write().finally(() => this.#writing = undefined);
    return this.#writing;
  }

  /** A last checkpoint; no more after it. */
  async close(): Promise<void> {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    await this.#writing;
    await this.checkpoint();
    this.#closed = true;
  }

  async #write(): Promise<void> {
    const { runtime, log } = this.#o;
    const start = performance.now();
    // Taken between alerts and tasks, so it is consistent.
    const data = await runtime.exclusive(() => {
      this.#dirty = false;
      this.#alertsSince = 0;
      return takeSnapshot(
        this.#o.child,
        this.#applied,
        runtime.queue.items(),
        runtime.appliedIds(),
        runtime.context.now(),
      );
    });
    const text = JSON.stringify(data);
    try {
      await Deno.rename(this.#snapshotPath, this.#previousPath).catch((e) => {
        if (!(e instanceof Deno.errors.NotFound)) throw e;
      });
      await writePrivateFile(this.#snapshotPath, text);
      await syncDir(this.#o.dir);
    } catch (error) {
      this.#dirty = true;
      log.event("error", "checkpoint_failed", { error: (error as Error).message });
      return;
    }
    const took = performance.now() - start;
    this.#lastAt = performance.now();
    // A big queue checkpoints less often: at most a tenth of the time.
    this.#minGap = took * 10;
    const previous = this.#covered;
    this.#previous = previous;
    this.#covered = data.seq;
    log.event("debug", "checkpoint", {
      seq: data.seq,
      items: data.items.length,
      bytes: text.length,
      ms: Math.round(took * 1000) / 1000,
    });
    this.#o.onCheckpoint(data.seq, previous);
  }

  /** Reads a snapshot; a damaged one is reported, moved aside, and skipped. */
  async #load(path: string): Promise<SnapshotData | undefined> {
    const text = await readIfExists(path);
    if (text === undefined) return undefined;
    try {
      return parseSnapshot(text, path);
    } catch (error) {
      if (!(error instanceof SnapshotError)) throw error;
      const aside = `${path}.corrupt-${Date.now()}`;
      await Deno.rename(path, aside).catch(() => {});
      this.#o.log.event("error", "snapshot_corrupt", {
        file: path,
        moved_to: aside,
        error: error.message,
      }, error.message);
      return undefined;
    }
  }
}
