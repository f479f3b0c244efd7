/**
 * Group commit: items queue up while one batch is being written; the next
 * write takes all of them at once. One write (and one sync) serves every
 * item that arrived meanwhile, so throughput grows with load instead of
 * being capped by the disk's sync rate.
 *
 * @module
 */

/** Options for {@linkcode GroupCommit}. */
export interface GroupCommitOptions<T> {
  /** Makes a batch durable (write + sync); on failure nothing of it counts. */
  write(batch: T[]): Promise<void>;
  /** Called with each batch once it is durable, in order. */
  committed(batch: T[]): void;
  /** Called when a write fails; the batch is kept and tried again. */
  failed(error: unknown, batch: T[]): void;
  /** Seconds before a failed batch is tried again. @default {1} */
  retryAfter?: number;
}

/** An ordered queue that writes in batches. */
export class GroupCommit<T> {
  #o: GroupCommitOptions<T>;
  #queue: T[] = [];
  #writing = 0;
  #running: Promise<void> | undefined;

  constructor(options: GroupCommitOptions<T>) {
    this.#o = options;
  }

  /** Items queued or being written. */
  get pending(): number {
    return this.#queue.length + this.#writing;
  }

  /**
   * Queues an item. The first write starts once the current task is done,
   * so everything routed from one read of the socket shares one write.
   */
  push(item: T): void {
    this.#queue.push(item);
    this.#running ??= Promise.resolve().then(() => this.#run()).finally(() =>
      this.#running = undefined
    );
  }

  /** Resolves when everything pushed so far is committed. */
  async drain(): Promise<void> {
    while (this.#running) await this.#running;
  }

  async #run(): Promise<void> {
    while (this.#queue.length > 0) {
      const batch = this.#queue;
      this.#queue = [];
      this.#writing = batch.length;
      try {
        await this.#o.write(batch);
      } catch (error) {
        // Nothing is lost: the batch goes back in front, in order.
        this.#queue = [...batch, ...this.#queue];
        this.#writing = 0;
        this.#o.failed(error, batch);
        await new Promise((r) => setTimeout(r, (this.#o.retryAfter ?? 1) * 1000));
        continue;
      }
      this.#writing = 0;
      this.#o.committed(batch);
    }
  }
}
