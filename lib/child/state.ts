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
import type { ChildRuntime } from "./runtime.ts";
import type { ChildLog } from "../core/log.ts";
import { nextTurn } from "../core/async.ts";
import { readJournal } from "../durability/journal.ts";
import { type QueueItem, SAVED } from "../queue/queue_item.ts";
import {
  type DormantPiece,
  DormantPieces,
  type ReadSnapshot,
  readSnapshot,
  readSnapshotSeq,
  SnapshotError,
  SnapshotWriter,
} from "../durability/snapshot.ts";
import { readBytesIfExists, removeStaleTemps } from "../durability/state_dir.ts";
import { HEAD_ROOM, headRoomFor, SnapshotFile } from "../durability/snapshot_file.ts";

/** Options for {@linkcode ChildState}. */
export interface ChildStateOptions {
  /** The child's state folder. */
  dir: string;
  child: string;
  runtime: ChildRuntime;
  log: ChildLog;
  /** Checkpoint after this many alerts. @default {1000} */
  every?: number;
  /**
   * Seconds after a change before its checkpoint, unless checkpoints are
   * expensive: they never take more than a tenth of the time. @default {0.5}
   */
  interval?: number;
  /** Journal positions never to apply (quarantined alerts). @default {[]} */
  skip?: readonly number[];
  /**
   * A snapshot of this many items or more is restored lazily: recovery
   * reads its index, and its items wake as they are needed, and in idle
   * time. @default {4096}
   */
  lazyFrom?: number;
  /** A checkpoint is on disk: it covers journal records up to `seq`; it took `seconds`. */
  onCheckpoint(seq: number, previous: number, seconds: number): void;
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
  /** What could not be recovered (unusable snapshots, gaps), for the listener to report. */
  problems: string[];
}

/**
 * Recovery's time by step, in milliseconds, as the `recovered` log event
 * carries it: what to cut when recovery is slow. Snapshot steps count
 * every snapshot tried (a damaged one too).
 */
export interface RecoveryTimings {
  /** Reading and parsing the journal file. */
  journal_ms: number;
  /** Waiting for reads of snapshot files. */
  read_ms: number;
  /** Checking snapshots (checksum, header) and reviving their rows into items, reads aside. */
  load_ms: number;
  /** Putting the items and applied ids back into the queue and intake. */
  restore_ms: number;
  /** Applying the journaled alerts after the snapshot. */
  replay_ms: number;
  /** All of recovery, start to end. */
  total_ms: number;
}

/**
 * Numbers checkpoints across every child state of the worker, so an
 * item's {@linkcode SAVED} mark names one checkpoint only.
 */
let checkpoints = 0;

/** Milliseconds rounded to microseconds, for readable logs. */
function roundMs(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}

/** Milliseconds since `from` (a `performance.now()`), rounded as {@linkcode roundMs}. */
function since(from: number): number {
  return roundMs(performance.now() - from);
}

/** The longest a snapshot holds the child's thread at once, in ms. */
const SLICE_MS = 1;
/** A slice ends this long before a task's due time, in ms. */
const DUE_MARGIN_MS = 0.3;
/** A task this late is held up by something else (a long task): slices go on. */
const STUCK_MS = 2;

/**
 * Milliseconds the next slice of a snapshot may take: a whole slice, or
 * what is left before the next task is due (0: the least, one chunk of
 * items), so a snapshot does not hold the thread across a due time.
 * `next` and `now` are epoch seconds.
 */
export function sliceRoom(next: number | undefined, now: number): number {
  if (next === undefined) return SLICE_MS;
  const until = (next - now) * 1000;
  if (until < -STUCK_MS) return SLICE_MS;
  return Math.max(0, Math.min(SLICE_MS, until - DUE_MARGIN_MS));
}

/** Items from which a snapshot is restored lazily, unless the child says otherwise. */
const LAZY_FROM = 4096;

/**
 * Whether an idle turn should wake one more dormant piece: it has spent
 * `elapsed` ms and woken `woken` pieces; a piece took `pieceMs` last time.
 * A piece must end short of the next task's due time (`next`, `now`: epoch
 * seconds); past the first, a turn stops after {@linkcode SLICE_MS}. A
 * piece that takes longer than a slice still wakes, one a turn.
 */
export function wakeMore(
  next: number | undefined,
  now: number,
  elapsed: number,
  woken: number,
  pieceMs: number,
): boolean {
  if (woken > 0 && elapsed >= SLICE_MS) return false;
  if (next === undefined) return true;
  const until = (next - now) * 1000;
  return until < -STUCK_MS || elapsed + pieceMs <= until - DUE_MARGIN_MS;
}

/** The longest a snapshot waits to start in a gap between due tasks, in ms. */
const START_WAIT_MS = 50;

/**
 * Milliseconds a snapshot should wait before it fixes the queue's items,
 * a step that cannot be sliced and took `fixMs` last time: 0 when the next
 * task is due after it would end, with 30% to spare (or is held up
 * elsewhere), else until just after that task is due, so that it runs
 * first. `next` and `now` are epoch seconds.
 */
export function startDelay(next: number | undefined, now: number, fixMs: number): number {
  if (next === undefined) return 0;
  const until = (next - now) * 1000;
  if (until < -STUCK_MS || until >= 1.3 * fixMs + DUE_MARGIN_MS) return 0;
  return Math.max(0, until) + DUE_MARGIN_MS;
}

/** Recovery and checkpoints for one child. */
export class ChildState implements AsyncDisposable {
  #o: ChildStateOptions;
  #covered = 0;
  #previous = 0;
  #alertsSince = 0;
  #dirty = false;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #minGap = 0;
  #lastAt = 0;
  #writing: Promise<void> | undefined;
  #closed = false;
  #recovering = false;
  #problems: string[] = [];
  /** Room for the next snapshot's header: twice the last one's. */
  #headRoom = HEAD_ROOM;
  /**
   * Chunk buffers the last snapshot wrote, for the next to encode into
   * (memory already touched: fresh memory costs a page fault a page).
   */
  #pool: ArrayBuffer[] = [];
  /** Milliseconds the last snapshot took to fix its items (see startDelay). */
  #fixMs = 0;
  /** Set as `close` starts: no more idle waking (a recovery still under way ends without it). */
  #closing = false;
  /** The next idle turn that wakes dormant items, while some are left. */
  #waking: ReturnType<typeof setTimeout> | undefined;
  /** Milliseconds the last dormant piece took to wake. */
  #wakeMs = 0;

  constructor(options: ChildStateOptions) {
    this.#o = options;
  }

  get #snapshotPath(): string {
    return join(this.#o.dir, "snapshots", "snapshot.json");
  }

  get #previousPath(): string {
    return join(this.#o.dir, "snapshots", "snapshot.prev.json");
  }

  /**
   * Loads the newest readable snapshot, then applies the journal after it,
   * with each alert's original `t0` (overdue tasks then run at once).
   *
   * @throws {SnapshotError} when a snapshot names a class the handler does
   * not export (restoring without it would drop that item's timers)
   */
  async recover(): Promise<Recovery> {
    this.#recovering = true;
    let recovery: Recovery;
    try {
      recovery = await this.#recover();
    } finally {
      this.#recovering = false;
    }
    // What the snapshot already holds needs no new one; replayed alerts do.
    this.#dirty = recovery.replayed > 0;
    if (this.#dirty) this.changed();
    this.#wakeLater();
    return recovery;
  }

  /**
   * Wakes the queue's dormant items (restored lazily) in idle turns, the
   * earliest first, each turn only while no task is about to come due.
   */
  #wakeLater(wait = 0): void {
    const { runtime } = this.#o;
    if (this.#closing || this.#waking !== undefined || !runtime.queue.dormant()) return;
    this.#waking = setTimeout(() => {
      this.#waking = undefined;
      if (this.#closing) return;
      const queue = runtime.queue;
      const from = performance.now();
      const next = queue.nextExpiration();
      const now = runtime.context.now();
      let woken = 0;
      for (; queue.dormant(); woken++) {
        const start = performance.now();
        if (!wakeMore(next, now, start - from, woken, this.#wakeMs)) break;
        queue.wakeSome();
        this.#wakeMs = performance.now() - start;
      }
      if (woken > 0) return this.#wakeLater();
      // No room before the next task: try again after it (a piece's cost,
      // once slow, is not held against every later turn).
      this.#wakeMs *= 0.8;
      this.#wakeLater(next === undefined ? 0 : Math.max(0, (next - now) * 1000) + 1);
    }, wait);
  }

  async #recover(): Promise<Recovery> {
    const snapshots = join(this.#o.dir, "snapshots");
    await Deno.mkdir(snapshots, { recursive: true, mode: 0o700 });
    await removeStaleTemps(snapshots);
    const { runtime, log } = this.#o;
    const start = performance.now();
    const journal = readJournal(await readBytesIfExists(join(this.#o.dir, "journal.log")) ?? "");
    const timings: RecoveryTimings = {
      journal_ms: since(start),
      read_ms: 0,
      load_ms: 0,
      restore_ms: 0,
      replay_ms: 0,
      total_ms: 0,
    };
    const used = await this.#restoreNewest(journal.base, timings);
    this.#covered = used?.seq ?? 0;
    this.#previous = used?.previous ?? 0;
    const skip = new Set(this.#o.skip ?? []);
    const pending = journal.records.filter((r) => r.seq > this.#covered && !skip.has(r.seq));
    const replayStart = performance.now();
    const results = pending.map((r) =>
      runtime.deliver(r.alert, r.t0, { node: r.node, id: r.id, seq: r.seq, recovered: true })
    );
    await Promise.all(results);
    timings.replay_ms = since(replayStart);
    timings.total_ms = since(start);
    const recovery: Recovery = {
      snapshotSeq: this.#covered,
      previousSeq: this.#previous,
      replayedTo: Math.max(runtime.appliedSeq, journal.records.at(-1)?.seq ?? 0),
      restored: used?.restored ?? 0,
      replayed: pending.length,
      problems: this.#problems,
    };
    if (used || pending.length > 0) {
      log.event("info", "recovered", { ...recovery, queue: runtime.queue.size, ...timings });
    }
    // The next checkpoint follows as after any change, not on this path.
    return recovery;
  }

  /**
   * Restores the newest usable snapshot: the current one, else the one
   * before it (the journal still holds what came after it), else none,
   * reporting what could not be recovered.
   */
  async #restoreNewest(
    journalBase: number,
    timings: RecoveryTimings,
  ): Promise<{ seq: number; previous: number; restored: number } | undefined> {
    const { runtime } = this.#o;
    let unusable = 0;
    for (const path of [this.#snapshotPath, this.#previousPath]) {
      let data: ReadSnapshot;
      const loadStart = performance.now();
      try {
        data = await readSnapshot(path, runtime.registry, {
          lazyFrom: this.#o.lazyFrom ?? LAZY_FROM,
          report: (message) => this.#o.log.event("error", "snapshot_item_lost", {}, message),
        });
      } catch (error) {
        timings.load_ms += since(loadStart);
        if (error instanceof Deno.errors.NotFound) continue;
        if (!(error instanceof SnapshotError || error instanceof SyntaxError)) throw error;
        unusable++;
        await this.#moveAside(path, error);
        continue;
      }
      // The file is read a piece at a time, between the pieces' loading.
      const readMs = roundMs(data.readMs);
      timings.read_ms += readMs;
      timings.load_ms += roundMs(since(loadStart) - readMs);
      try {
        const items = data.items;
        await runtime.exclusive(() => {
          const restoreStart = performance.now();
          runtime.restore(items, data.applied, data.seq, data.dormant);
          timings.restore_ms += since(restoreStart);
        });
        const previous = path === this.#snapshotPath
          ? await readSnapshotSeq(this.#previousPath) ?? 0
          : 0;
        if (data.seq < journalBase) {
          this.#problem(
            "snapshot_gap",
            `${path} covers up to journal record ${data.seq}, but the journal starts after ` +
              `${journalBase}: alerts ${data.seq + 1}..${journalBase} are not recovered`,
          );
        }
        return { seq: data.seq, previous, restored: items.length + (data.dormant?.total ?? 0) };
      } catch (error) {
        if (!(error instanceof SnapshotError || error instanceof SyntaxError)) throw error;
        unusable++;
        await this.#moveAside(path, error);
      }
    }
    if (unusable > 0) {
      this.#problem(
        "snapshot_fallback",
        journalBase > 0
          ? `no usable snapshot: the queue was rebuilt from the journal alone; what alerts up ` +
            `to journal record ${journalBase} had queued is lost`
          : "no usable snapshot: the queue was rebuilt from the whole journal; nothing is lost",
      );
    }
    return undefined;
  }

  async #moveAside(path: string, error: Error): Promise<void> {
    const aside = `${path}.corrupt-${Date.now()}`;
    await Deno.rename(path, aside).catch(() => {});
    this.#o.log.event("error", "snapshot_corrupt", {
      file: path,
      moved_to: aside,
      error: error.message,
    }, `${error.message}; moved to ${aside}`);
  }

  #problem(event: string, message: string): void {
    this.#problems.push(message);
    this.#o.log.event("error", event, {}, message);
  }

  /** Notes that an alert was applied (the runtime keeps its position). */
  applied(): void {
    this.#alertsSince++;
    this.changed();
  }

  /** Notes that the queue changed; a checkpoint follows soon. */
  changed(): void {
    this.#dirty = true;
    // Recovery ends with its own call; a snapshot taken halfway through it
    // would not match its journal position.
    if (this.#closed || this.#recovering) return;
    // Checkpoints take at most a tenth of the time: a big queue waits longer.
    const gap = this.#lastAt + this.#minGap - performance.now();
    if (this.#alertsSince >= (this.#o.every ?? 1000) && gap <= 0) {
      void this.checkpoint();
      return;
    }
    if (this.#timer === undefined) {
      const wait = Math.max((this.#o.interval ?? 0.5) * 1000, gap);
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
    this.#writing = this.#write()
      .catch((error) => {
        this.#dirty = true;
        this.#o.log.event("error", "checkpoint_failed", { error: (error as Error).message });
      })
      .finally(() => {
        this.#writing = undefined;
        // Changes made while it was written get their own checkpoint.
        if (this.#dirty && !this.#closed) this.changed();
      });
    return this.#writing;
  }

  /** Closes, for `await using`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  /** A last checkpoint; no more after it. */
  async close(): Promise<void> {
    this.#closing = true;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    clearTimeout(this.#waking);
    this.#waking = undefined;
    await this.#writing;
    await this.checkpoint();
    this.#closed = true;
    // A change reported while it was written may have armed the timer again.
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  /**
   * The break between a snapshot's slices, for timers (and I/O) to run:
   * the shortest there is (a turn of the event loop, ~20 µs) while alerts
   * wait for the snapshot, else a timer's (1-2 ms). Working without real
   * breaks made the same serialization take 25-30% more of the thread's
   * CPU (measured with `deno task bench snapshot`: 264-309 ms against
   * 195-248 at 1e5 items), but halves the wall time alerts would wait.
   */
  #pause(): Promise<void> {
    return this.#o.runtime.alertsWaiting
      ? nextTurn()
      : new Promise((resolve) => setTimeout(resolve, 0));
  }

  /**
   * Runs `work` alone in the runtime's line, as a reader: a turn that only
   * reads is no change, or each snapshot would ask for the next one, for
   * ever, every `checkpoint_interval`.
   */
  #reading<T>(work: () => T): Promise<T> {
    return this.#o.runtime.exclusive(work, { readOnly: true });
  }

  /**
   * Writes a snapshot without stopping the clock. The state is fixed at
   * the start (between alerts and tasks, and in a gap before the next due
   * task when there is one soon); items are then serialized in
   * slices of about a millisecond, and tasks keep running in between: an
   * item about to run is serialized first, as it was, and what its task
   * puts in the queue is left out (after a restart from this snapshot the
   * task runs again and makes it again). Alerts wait only
   * until the last item is serialized, so the snapshot holds exactly the
   * alerts up to its journal position; the disk work comes after.
   */
  async #write(): Promise<void> {
    const { runtime, log } = this.#o;
    const start = performance.now();
    // Saves each item once, however often it is met: before it runs, or in
    // the heap's slots (an item re-timed has more than one).
    const stamp = ++checkpoints;
    let writer: SnapshotWriter | undefined;
    let seq = 0;
    // Pieces still dormant are copied as they are; their items, woken
    // meanwhile, are in the snapshot as they were then.
    let asleep: DormantPiece[] = [];
    const dormant = runtime.queue.dormant();
    if (dormant && !(dormant instanceof DormantPieces)) {
      throw new Error("dormant items that are not a snapshot's pieces cannot be saved");
    }
    const save = (item: QueueItem) => {
      if (item[SAVED] === stamp || item.complete) return;
      item[SAVED] = stamp;
      writer!.add(item);
    };
    // The body goes to the file as it is serialized, chunk by chunk.
    const out = await SnapshotFile.create(this.#snapshotPath, this.#headRoom, this.#pool);
    // Fixing the items is one step (the writer's set-up, ~0.1 ms): it
    // starts in a gap between due tasks, when one comes within 50 ms (a
    // dense stream of tasks delays a snapshot that long at most).
    for (const giveUp = performance.now() + START_WAIT_MS;;) {
      const wait = startDelay(runtime.queue.nextExpiration(), runtime.context.now(), this.#fixMs);
      if (wait === 0 || performance.now() + wait > giveUp) break;
      await new Promise((r) => setTimeout(r, wait));
    }
    const done = Promise.withResolvers<void>();
    // The child's own time the snapshot takes (its thread is busy with it);
    // the rest is waiting for the disk, while tasks and alerts go on.
    let busy = 0;
    const timed = <T>(work: () => T): T => {
      const from = performance.now();
      try {
        return work();
      } finally {
        busy += performance.now() - from;
      }
    };
    try {
      // Alerts wait from now on, not only from the fix: one let through
      // while the fix waits its turn in line would run after it, during the
      // slices, and its items would be saved under a position before it.
      runtime.snapshotting(done.promise);
      const items = await this.#reading(() =>
        timed(() => {
          const fixStart = performance.now();
          this.#dirty = false;
          this.#alertsSince = 0;
          seq = runtime.appliedSeq;
          // The heap's slots, frozen (nothing copied: a slot overwritten
          // before the slices below read it keeps its old item aside); which
          // are pending is read in the slices. An item that runs meanwhile
          // is saved first (as it was); one a task removed meanwhile is left
          // out, as the task, saved before it ran, removes it again after a
          // restart.
          const slots = runtime.queue.freeze();
          asleep = dormant?.pieces() ?? [];
          dormant?.watch((woken) => woken.forEach((item) => item[SAVED] = stamp));
          writer = new SnapshotWriter(
            {
              child: this.#o.child,
              seq,
              taken: runtime.context.now(),
              appliedJson: runtime.appliedJson(),
            },
            { sink: out.sink, pool: this.#pool, ...(dormant ? { shapes: dormant.shapes } : {}) },
          );
          runtime.snapshotting(done.promise, save);
          this.#fixMs = performance.now() - fixStart;
          return slots;
        })
      );
      const queue = runtime.queue;
      for (let i = 0; i < asleep.length;) {
        const from = performance.now();
        const slice = from + sliceRoom(queue.nextExpiration(), runtime.context.now());
        do writer!.addDormant(asleep[i++]!); while (i < asleep.length && performance.now() < slice);
        busy += performance.now() - from;
        await this.#pause();
      }
      for (let i = 0; i < items.length;) {
        const from = performance.now();
        // At least 32 items (~0.1 ms) a turn, so a dense stream of due
        // tasks slows a snapshot down but never stalls it.
        const slice = from + sliceRoom(queue.nextExpiration(), runtime.context.now());
        do {
          const item = items.read(i++);
          if (queue.holds(item)) save(item);
        } while (i < items.length && (i % 32 !== 0 || performance.now() < slice));
        busy += performance.now() - from;
        if (i < items.length) await this.#pause();
      }
    } catch (error) {
      // An item that cannot be serialized: no temp file stays behind.
      void out.abort();
      throw error;
    } finally {
      dormant?.watch();
      runtime.snapshotting();
      done.resolve();
      runtime.queue.thaw();
    }
    const w = writer!;
    const pieces = timed(() => w.pieces());
    let bytes: number;
    try {
      bytes = await out.finish(pieces, this.#previousPath);
    } catch (error) {
      await out.abort();
      this.#dirty = true;
      log.event("error", "checkpoint_failed", { error: (error as Error).message });
      return;
    }
    this.#headRoom = headRoomFor(pieces[0]!.length);
    const took = performance.now() - start;
    this.#lastAt = performance.now();
    // A big queue checkpoints less often: at most a tenth of the time.
    this.#minGap = took * 10;
    const previous = this.#covered;
    this.#previous = previous;
    this.#covered = seq;
    log.event("debug", "checkpoint", {
      seq,
      items: w.count,
      bytes,
      ms: roundMs(took),
      busy_ms: roundMs(busy),
    });
    this.#o.onCheckpoint(seq, previous, took / 1000);
  }
}
