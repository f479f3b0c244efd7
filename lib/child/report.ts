/**
 * What a child tells the listener about its work, for the status page and
 * the metrics: its next due tasks and its task outcomes (counts, a
 * lateness histogram, the last failures). Outcomes are added up here and
 * sent together, in one throttled `report` message: never one message per
 * task.
 *
 * @module
 */

import type { QueueItem } from "../queue/queue_item.ts";
import type { SortedQueue } from "../queue/sorted_queue.ts";
import type { DueTask, FromChild, TaskFailure, TaskTally } from "./messages.ts";

/** Upper bounds (seconds) of the task lateness histogram's buckets. */
export const LATENESS_BUCKETS: readonly number[] = [
  0.0005,
  0.001,
  0.0025,
  0.005,
  0.01,
  0.05,
  0.1,
  0.5,
  1,
  5,
  30,
];

/** Due tasks a report carries, at most. */
export const DUE_REPORTED = 50;

/** Failures a report carries, at most (the latest). */
export const FAILURES_REPORTED = 10;

/** One task run, as the runtime reports it. */
export interface TaskRun {
  graceid: string | null;
  item: string;
  task: string;
  due: number;
  /** Seconds after `due` it started. */
  lateness: number;
  /** Why it failed; null when it ran. */
  error: string | null;
}

/** An empty tally (bucket `i` counts runs up to `LATENESS_BUCKETS[i]`; the last is +Inf). */
export function emptyTally(): TaskTally {
  const n = LATENESS_BUCKETS.length + 1;
  return { executed: 0, failed: 0, counts: new Array(n).fill(0), sums: new Array(n).fill(0) };
}

/** The bucket a lateness falls in. */
export function latenessBucket(seconds: number): number {
  let i = 0;
  while (i < LATENESS_BUCKETS.length && seconds > LATENESS_BUCKETS[i]!) i++;
  return i;
}

/**
 * The `k` earliest tasks of a queue, earliest first: they all belong to
 * its `k` earliest items, whose tasks are each in time order.
 */
export function dueTasks(queue: SortedQueue, k: number = DUE_REPORTED): DueTask[] {
  const due: DueTask[] = [];
  for (const item of queue.earliest(k) as QueueItem[]) {
    for (const task of item.tasks) {
      due.push({
        graceid: item.graceid ?? null,
        item: item.name,
        task: task.name,
        due: task.expiration,
      });
    }
  }
  return due.sort((a, b) => a.due - b.due).slice(0, k);
}

/** Options for {@linkcode ChildReporter}. */
export interface ChildReporterOptions {
  post(message: FromChild): void;
  /** The queue whose next tasks are reported. */
  queue: SortedQueue;
  /** Milliseconds between reports, at least. @default {250} */
  interval?: number;
}

/** Adds up a child's task outcomes and sends them, with its next due tasks, now and then. */
export class ChildReporter {
  #o: ChildReporterOptions;
  #tally = emptyTally();
  #failures: TaskFailure[] = [];
  #timer: ReturnType<typeof setTimeout> | undefined;
  #last = -Infinity;
  #closed = false;

  constructor(options: ChildReporterOptions) {
    this.#o = options;
  }

  /** Counts one task run (cheap: no message). */
  ran(run: TaskRun): void {
    const t = this.#tally;
    const b = latenessBucket(run.lateness);
    t.counts[b]!++;
    t.sums[b]! += run.lateness;
    if (run.error === null) t.executed++;
    else {
      t.failed++;
      const { graceid, item, task, due, error } = run;
      this.#failures.push({ graceid, item, task, due, error: error.slice(0, 500) });
      if (this.#failures.length > FAILURES_REPORTED) this.#failures.shift();
    }
    this.changed();
  }

  /** The queue changed: a report follows within the interval. */
  changed(): void {
    if (this.#closed || this.#timer !== undefined) return;
    const wait = Math.max(0, this.#last + (this.#o.interval ?? 250) - performance.now());
    this.#timer = setTimeout(() => this.flush(), wait);
  }

  /** Sends what is pending now. */
  flush(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#last = performance.now();
    const tally = this.#tally;
    this.#tally = emptyTally();
    const failures = this.#failures;
    this.#failures = [];
    this.#o.post({ type: "report", due: dueTasks(this.#o.queue), tally, failures });
  }

  /** A last report; none after it. */
  close(): void {
    if (this.#closed) return;
    this.flush();
    this.#closed = true;
  }
}
