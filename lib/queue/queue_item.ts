/**
 * A follow-up process: an ordered list of tasks sharing one start time.
 *
 * @module
 */

import type { Task } from "./task.ts";

/**
 * What a queue holding an item must hear about (the engine's side of an
 * item; handlers never touch it).
 */
interface ItemOwner {
  completed(item: QueueItem): void;
  rekey(item: QueueItem): void;
}

/** The queue an item sits in (internal). */
export const OWNER: unique symbol = Symbol("owner");
/** The insertion number of the item's live heap slot (internal). */
export const ENTRY: unique symbol = Symbol("entry");
/** The expiration the item was queued under (internal). */
export const KEY: unique symbol = Symbol("key");
const COMPLETE: unique symbol = Symbol("complete");
const TASKS: unique symbol = Symbol("tasks");
const DONE: unique symbol = Symbol("done");

/** Options for {@linkcode QueueItem}. */
export interface QueueItemOptions {
  /** Key for `queue.byGraceId()`; commands such as clearGraceID use it. */
  graceid?: string | undefined;
  /** Shown in logs; defaults to the class name. */
  name?: string;
}

/**
 * An item of the queue. Its `expiration` is its earliest task's; it is
 * `complete` once no task is left, or when a handler says so, and then it
 * leaves the queue and its graceid index by itself.
 *
 * Snapshots rebuild items and tasks from their own enumerable fields
 * without calling constructors, so subclasses keep their state in plain
 * JSON-safe fields, not `#private` ones.
 *
 * @example
 * ```ts
 * import type { ChildContext } from "./context.ts";
 * import { Task } from "./task.ts";
 *
 * class Remind extends Task {
 *   execute(ctx: ChildContext, item: QueueItem) {
 *     ctx.log.info(`${item.graceid}: reminder`);
 *   }
 * }
 * function onNew(ctx: ChildContext, t0: number) {
 *   ctx.queue.insert(new QueueItem(t0, [new Remind(60), new Remind(600)], { graceid: "S220316r" }));
 * }
 * function onRetraction(ctx: ChildContext) {
 *   for (const old of ctx.queue.byGraceId("S220316r")) old.complete = true;
 * }
 * ```
 */
export class QueueItem {
  /** Shown in logs; defaults to the class name. */
  name: string;
  /** Epoch seconds the item's task timeouts count from. */
  t0: number;
  /** The event or superevent the item follows, for `queue.byGraceId()`. */
  graceid: string | undefined;
  // Kept under symbols (behind accessors) so that an item's JSON is its
  // own fields alone: snapshots write tasks separately. The engine's
  // bookkeeping is no part of the handler API.
  /** @ignore */
  [TASKS]: Task[] = [];
  /** @ignore */
  [DONE]: Task[] = [];
  /** @ignore */
  [OWNER]: ItemOwner | undefined;
  /** @ignore */
  [ENTRY]: number | undefined;
  /** @ignore */
  [KEY]: number | undefined;
  /** @ignore */
  [COMPLETE] = false;

  /** An item starting at `t0` (epoch seconds) with `tasks`; with none, it is complete at once. */
  constructor(t0: number, tasks: Task[], options: QueueItemOptions = {}) {
    this.name = options.name ?? this.constructor.name;
    this.t0 = t0;
    this.graceid = options.graceid;
    this.add(tasks);
    if (tasks.length === 0) this[COMPLETE] = true;
  }

  /** Remaining tasks, earliest first. */
  get tasks(): Task[] {
    return this[TASKS];
  }

  /** Replaces the remaining tasks (restoring a snapshot). */
  set tasks(tasks: Task[]) {
    this[TASKS] = tasks;
  }

  /** Tasks that ran and are done. */
  get completedTasks(): Task[] {
    return this[DONE];
  }

  /** Replaces the done tasks (restoring a snapshot). */
  set completedTasks(tasks: Task[]) {
    this[DONE] = tasks;
  }

  /** Earliest remaining task's expiration; `-Infinity` with none left. */
  get expiration(): number {
    return this[TASKS][0]?.expiration ?? -Infinity;
  }

  /** Whether the item is done: it no longer counts as pending anywhere. */
  get complete(): boolean {
    return this[COMPLETE] === true;
  }

  /** Marking an item complete removes it from its queue and indexes. */
  set complete(value: boolean) {
    if (value === this.complete) return;
    this[COMPLETE] = value;
    if (value) this[OWNER]?.completed(this);
  }

  /** Adds tasks; a task without an expiration gets `t0 + timeout`. */
  add(tasks: Task | Task[]): void {
    for (const task of Array.isArray(tasks) ? tasks : [tasks]) {
      if (Number.isNaN(task.expiration)) task.setExpiration(this.t0);
      place(this.tasks, task);
    }
    this[OWNER]?.rekey(this);
  }

  /**
   * Removes and returns the first remaining task named `name`.
   *
   * @throws {RangeError} when no remaining task has that name
   */
  remove(name: string): Task {
    const index = this.tasks.findIndex((task) => task.name === name);
    if (index < 0) {
      throw new RangeError(`No task named "${name}" in item ${this.name}`);
    }
    const [task] = this.tasks.splice(index, 1);
    this[OWNER]?.rekey(this);
    return task!;
  }

  /** Re-times every remaining task from a new `t0`. */
  setExpiration(t0: number): void {
    this.t0 = t0;
    for (const task of this.tasks) task.setExpiration(t0);
    this.sortTasks();
  }

  /** Re-sorts tasks; call it after changing a task's expiration by hand. */
  sortTasks(): void {
    this.tasks.sort((a, b) => a.expiration - b.expiration);
    this[OWNER]?.rekey(this);
  }

  /** Whether the earliest task is due at `now`. */
  hasExpired(now: number): boolean {
    return now >= this.expiration;
  }
}

/** Inserts a task in expiration order (after equal ones). */
function place(tasks: Task[], task: Task): void {
  let i = tasks.length;
  while (i > 0 && tasks[i - 1]!.expiration > task.expiration) i--;
  tasks.splice(i, 0, task);
}

/**
 * Gives an item made without its constructor (restored from a snapshot)
 * the engine's internal state of a fresh, unqueued, pending item.
 */
export function resetInternals(item: QueueItem): void {
  item[OWNER] = undefined;
  item[ENTRY] = undefined;
  item[KEY] = undefined;
  item[COMPLETE] = false;
}
