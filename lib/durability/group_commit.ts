/**
 * Group commit: items queue up while one batch is being written; the next
 * write takes all of them at once. One write (and one sync) serves every
 * item that arrived meanwhile, so throughput grows with load instead of
 * being capped by the disk's sync rate.
 *
 * One loop owns the "writer running" state: it starts when an item
 * arrives and nothing runs, and it ends only in the same synchronous step
 * in which it finds nothing left to write, so an item can never be left
 * waiting for a writer that has already decided to stop.
 *
 * @module
 */

import { delay } from "../core/async.ts";

/** Options for {@linkcode GroupCommit}. */
export interface GroupCommitOptions<T> {
  /** Makes a batch durable (write + sync); on failure nothing of it counts. */
  write(batch: T[]): Promise<void>;
  /** Called with each batch once it is durable, in order. */
  committed(batch: T[]): void;
  /** Called when a write fails; the batch is kept and tried again. */
  failed(error: unknown, batch: T[]): void;
  /** Called when writes work again after failing. */
  recovered?(): void;
  /** Seconds before a failed batch is tried again. @default {1} */
  retryAfter?: number;
  /**
   * Items per write at most: a long backlog is written in pieces, each
   * durable on its own, so a disk with a little room left takes what fits.
   *
   * @default {512}
   */
  maxBatch?: number;
  /**
   * While items stream in (the last batch held at least `gatherFrom`), a
   * batch waits until its oldest item is this many milliseconds old, or
   * holds `maxBatch`, before it is written: one sync then serves several
   * times more items (a sync costs 0.1-0.2 ms of CPU on a virtual disk,
   * besides its wait). A lone item, or a trickle, is written at once.
   * 0 turns it off.
   *
   * @default {0}
   */
  gatherMs?: number;
  /** Items in the last batch that mean a stream is flowing. @default {3} */
  gatherFrom?: number;
}

/** An ordered queue that writes in batches. */
export class GroupCommit<T> {
  #o: GroupCommitOptions<T>;
  #queue: T[] = [];
  /** Arrival time (performance.now()) of each queued item, oldest first. */
  #arrived: number[] = [];
  #writing: T[] = [];
  #writingSince = 0;
  /** The loop, while one runs: its only owner is `#run` itself. */
  #loop: Promise<void> | undefined;
  #failing = false;

  constructor(options: GroupCommitOptions<T>) {
    this.#o = options;
  }

  /** Items queued or being written. */
  get pending(): number {
    return this.#queue.length + this.#writing.length;
  }

  /** Whether the last write failed (and none has worked since). */
  get failing(): boolean {
    return this.#failing;
  }

  /** Milliseconds the oldest pending item has waited (0 when none). */
  oldestWait(now: number = performance.now()): number {
    const oldest = this.#writing.length > 0 ? this.#writingSince : this.#arrived[0];
    return oldest === undefined ? 0 : Math.max(0, now - oldest);
  }

  /**
   * Queues an item. The first write starts once the current task is done,
   * so everything routed from one read of the socket shares one write.
   */
  push(item: T): void {
    this.#queue.push(item);
    this.#arrived.push(performance.now());
    this.#loop ??= this.#run();
  }

  /** Resolves when everything pushed so far (and meanwhile) is committed. */
  async drain(): Promise<void> {
    while (this.#loop) await this.#loop;
  }

  async #run(): Promise<void> {
    // Let the rest of the current task push too.
    await Promise.resolve();
    const max = this.#o.maxBatch ?? 512;
    const gather = this.#o.gatherMs ?? 0;
    const stream = this.#o.gatherFrom ?? 3;
    let last = 0;
    while (this.#queue.length > 0) {
      if (gather > 0 && last >= stream && this.#queue.length < max && !this.#failing) {
        const wait = this.#arrived[0]! + gather - performance.now();
        if (wait > 0) await delay(wait);
      }
      const batch = this.#queue.splice(0, max);
      const arrived = this.#arrived.splice(0, batch.length);
      this.#writing = batch;
      this.#writingSince = arrived[0] ?? performance.now();
      try {
        await this.#o.write(batch);
      } catch (error) {
        // Nothing is lost: the batch goes back in front, in order.
        this.#queue.unshift(...batch);
        this.#arrived.unshift(...arrived);
        this.#writing = [];
        this.#failing = true;
        this.#o.failed(error, batch);
        await delay((this.#o.retryAfter ?? 1) * 1000);
        continue;
      }
      this.#writing = [];
      last = batch.length;
      if (this.#failing) {
        this.#failing = false;
        this.#o.recovered?.();
      }
      this.#o.committed(batch);
    }
    // Same synchronous step as the emptiness check above: no push can slip in between.
    this.#loop = undefined;
  }
}
