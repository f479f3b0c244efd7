/**
 * The child's clockwork: its queue, one timer armed for the earliest
 * expiration, and the one line in which alerts and due items take turns.
 * The scheduler runs each due task itself, under the child's time limit,
 * and reports it; items and tasks never call back into it.
 *
 * @module
 */

import { Serializer } from "../core/async.ts";
import type { JsonObject } from "../core/alert.ts";
import type { ChildLog } from "../core/log.ts";
import { type Clock, systemClock } from "../queue/clock.ts";
import type { QueueItem, Task } from "../queue/queue_item.ts";
import { SortedQueue, type SortedQueueOptions } from "../queue/sorted_queue.ts";

/** What the listener needs to know about a child's queue. */
export interface QueueState {
  queue: number;
  /** Epoch seconds of the earliest expiration, or null when empty. */
  next: number | null;
}

/** Options for {@linkcode Scheduler}. */
export interface SchedulerOptions {
  log: ChildLog;
  /** @default {systemClock} */
  clock?: Clock;
  /** Seconds an async task may take before it counts as failed. @default {60} */
  taskTimeout?: number;
  queue?: SortedQueueOptions;
  /** Runs one task (the runtime sends commands to their table). */
  execute(task: Task, item: QueueItem): unknown;
  /** A task ran, `lateness` seconds after it was due; `output` is what it returned. */
  succeeded?(item: QueueItem, task: Task, output: unknown, lateness: number): void;
  /** A task threw or timed out; its item is complete. */
  failed?(item: QueueItem, task: Task, error: unknown, lateness: number): void;
  /** After every change of the queue. */
  changed?(state: QueueState): void;
  /**
   * Hears the journal position of the alert at work: the alert being
   * applied, or the alert that made the item whose tasks are running (0:
   * none known), so a death can be blamed on it.
   */
  marker?(seq: number): void;
}

/** Milliseconds, rounded to microseconds for readable logs. */
export function ms(seconds: number): number {
  return Math.round(seconds * 1e6) / 1e3;
}

/** An error as log fields. */
export function errorFields(error: unknown): JsonObject {
  return error instanceof Error
    ? { error: error.message, stack: error.stack ?? "" }
    : { error: String(error) };
}

/**
 * The queue and its timer. Work given to {@linkcode Scheduler.run} and due
 * items run one at a time, in order.
 *
 * @example
 * ```ts
 * import type { ChildLog } from "../core/log.ts";
 * import type { ChildContext } from "../queue/queue_item.ts";
 * import type { QueueItem } from "../queue/queue_item.ts";
 *
 * async function runOne(log: ChildLog, ctx: ChildContext, item: QueueItem) {
 *   const scheduler = new Scheduler({ log, execute: (task, it) => task.execute(ctx, it) });
 *   await scheduler.run(() => scheduler.queue.insert(item));
 *   await scheduler.stop();
 * }
 * ```
 */
export class Scheduler {
  readonly queue: SortedQueue;
  readonly clock: Clock;
  #o: SchedulerOptions;
  #line = new Serializer();
  #cancelTimer: (() => void) | undefined;
  #armedFor = Infinity;
  #stopped = false;
  /** While set, alerts wait for it (a snapshot is being taken). */
  #gate: Promise<void> | undefined;
  #beforeRun: ((item: QueueItem) => void) | undefined;
  /** The journal position of the alert that made each item, while known. */
  #origin = new WeakMap<QueueItem, number>();
  /** The alert being applied now (0: none). */
  #applying = 0;

  constructor(options: SchedulerOptions) {
    this.#o = options;
    this.clock = options.clock ?? systemClock;
    this.queue = new SortedQueue({
      ...options.queue,
      onInsert: (item) => {
        if (this.#applying > 0 && !this.#origin.has(item)) this.#origin.set(item, this.#applying);
      },
    });
  }

  /** Notes the alert being applied (its journal position; 0 once done). */
  applying(seq: number): void {
    this.#applying = seq;
    this.#o.marker?.(seq);
  }

  /**
   * Runs `work` in the line: no alert or task runs meanwhile; re-arms the
   * timer and reports the queue after it, unless `readOnly` says the work
   * only looked (a snapshot reading the queue is not a change to save).
   */
  run<T>(work: () => Promise<T> | T, options: { readOnly?: boolean } = {}): Promise<T> {
    return this.#line.run(async () => {
      try {
        return await work();
      } finally {
        if (!options.readOnly) this.changed();
      }
    });
  }

  /** Settles when the snapshot being taken lets alerts through again; undefined when none is. */
  get gate(): Promise<void> | undefined {
    return this.#gate;
  }

  /** Alerts waiting at the gate now. */
  waiting = 0;

  /**
   * Lets a snapshot be written while tasks keep their times: alerts wait
   * until `until` settles, and `beforeRun` sees each item just before it
   * runs (to save it first). Pass nothing to end it.
   */
  snapshotting(until?: Promise<void>, beforeRun?: (item: QueueItem) => void): void {
    this.#gate = until;
    this.#beforeRun = beforeRun;
  }

  /** Resolves when nothing is running or waiting to run. */
  settled(): Promise<void> {
    return this.#line.idle();
  }

  /** Stops the timer and waits for work in flight. */
  async stop(): Promise<void> {
    this.#stopped = true;
    this.#cancelTimer?.();
    this.#cancelTimer = undefined;
    await this.settled();
  }

  /**
   * Re-arms the timer for the earliest expiration and reports the queue.
   * Once stopped, it only reports: a task that ends after the stop changed
   * the queue, and the last checkpoint must hold that.
   */
  changed(): void {
    const next = this.queue.nextExpiration();
    const expiration = next ?? Infinity;
    if (!this.#stopped && expiration !== this.#armedFor) {
      this.#cancelTimer?.();
      this.#cancelTimer = undefined;
      this.#armedFor = expiration;
      if (next !== undefined) {
        const delay = Math.max(0, (expiration - this.clock.now()) * 1000);
        this.#cancelTimer = this.clock.setTimer(() => {
          this.#cancelTimer = undefined;
          this.#armedFor = Infinity;
          void this.run(() => this.#runDue());
        }, delay);
      }
    }
    this.#o.changed?.({ queue: this.queue.size, next: next ?? null });
  }

  async #runDue(): Promise<void> {
    for (;;) {
      if (this.#stopped) return;
      const item = this.queue.peek();
      if (!item || item.expiration > this.clock.now()) return;
      this.queue.pop();
      this.#beforeRun?.(item);
      const failed = !(await this.#runItem(item));
      if (!item.complete) {
        this.queue.insert(item);
        continue;
      }
      this.#o.log.event("info", "item_completed", {
        graceid: item.graceid ?? null,
        item: item.name,
        tasks: item.completedTasks.length,
        failed,
      });
    }
  }

  /**
   * Runs every task of the item that is due, earliest first. A task that
   * moved its expiration later goes back in line; the item is complete
   * when none is left, or as soon as a task fails.
   */
  async #runItem(item: QueueItem): Promise<boolean> {
    for (;;) {
      const task = item.tasks[0];
      if (!task || task.expiration > this.clock.now()) break;
      item.tasks.shift();
      const before = task.expiration;
      if (!(await this.#runTask(item, task))) {
        item.complete = true;
        return false;
      }
      if (task.expiration > before) item.add(task);
      else item.completedTasks.push(task);
    }
    if (item.tasks.length === 0) item.complete = true;
    return true;
  }

  async #runTask(item: QueueItem, task: Task): Promise<boolean> {
    const clock = this.clock;
    const due = task.expiration;
    const start = clock.now();
    const fields: JsonObject = {
      graceid: item.graceid ?? null,
      item: item.name,
      task: task.name,
      due,
      lateness_ms: ms(start - due),
    };
    let output: unknown;
    this.#o.marker?.(this.#origin.get(item) ?? 0);
    try {
      output = await this.#limited(task, this.#o.execute(task, item)).finally(() =>
        this.#o.marker?.(0)
      );
    } catch (error) {
      const message = (error as Error)?.message ?? String(error);
      // A RuntimeWarning (raiseWarning) fails its task too, logged as a warning.
      const level = (error as Error)?.name === "RuntimeWarning" ? "warning" : "error";
      this.#o.log.event(
        level,
        "task_failed",
        { ...fields, ...errorFields(error) },
        `task ${task.name} of ${item.name} failed: ${message}`,
      );
      this.#o.failed?.(item, task, error, start - due);
      return false;
    }
    this.#o.log.event("info", "task_executed", { ...fields, duration_ms: ms(clock.now() - start) });
    this.#o.succeeded?.(item, task, output, start - due);
    return true;
  }

  /** Awaits a task's result under the child's time limit. */
  async #limited(task: Task, result: unknown): Promise<unknown> {
    if (!(result instanceof Promise)) return result;
    const limit = this.#o.taskTimeout ?? 60;
    let cancel: (() => void) | undefined;
    try {
      return await Promise.race([
        result,
        new Promise<never>((_, reject) => {
          cancel = this.clock.setTimer(
            () => reject(new Error(`Task ${task.name} timed out after ${limit} s`)),
            limit * 1000,
          );
        }),
      ]);
    } finally {
      cancel?.();
    }
  }
}
