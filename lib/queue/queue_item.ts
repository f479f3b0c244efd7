/**
 * The unit of follow-up work and what it runs in: {@linkcode Task},
 * {@linkcode QueueItem} (ordered tasks sharing one start time), and the
 * {@linkcode ChildContext} both see. One module, because each names the
 * others: a task runs in a context for an item, a context queues items.
 *
 * @module
 */

import type { JsonObject } from "../core/alert.ts";
import type { ChildLog } from "../core/log.ts";
import type { Ini } from "../config/ini.ts";
import type { GraceDbClient } from "../gracedb/client.ts";

/**
 * The child's queue, as handlers use it: items go in with
 * {@linkcode ChildQueue.insert}, are found by graceid, and leave it on
 * their own once complete (`item.complete = true`).
 *
 * @example
 * ```ts
 * function forget(queue: ChildQueue, graceid: string): number {
 *   const items = queue.byGraceId(graceid);
 *   for (const item of items) item.complete = true;
 *   return items.length;
 * }
 * ```
 */
export interface ChildQueue {
  /** Number of pending items. */
  readonly size: number;
  /**
   * Adds an item; its tasks come due at their expirations.
   *
   * @throws {Error} when the item is already queued or a task's expiration
   * is not a finite time
   */
  insert(item: QueueItem): void;
  /** Pending items of one graceid (or superevent id), earliest first. */
  byGraceId(graceid: string): QueueItem[];
  /** Graceids that have pending items. */
  graceIds(): string[];
  /** Pending items, earliest first (a copy). */
  items(): QueueItem[];
  /** The earliest pending item, left in place. */
  peek(): QueueItem | undefined;
}

/** Where a child runs, for texts meant for people (mail bodies, annotations). */
export interface ChildIdentity {
  /** Host name of the listener's machine. */
  readonly hostname: string;
  /** The user the listener runs as. */
  readonly username: string;
  /** The listener's process id. */
  readonly pid: number;
  /** Path of the listener config. */
  readonly config: string;
}

/**
 * The child a handler runs in. `parseAlert` and every task's `execute`
 * get it.
 *
 * @example
 * ```ts
 * function warn(ctx: ChildContext, graceid: string) {
 *   ctx.log.warning(`${graceid}: no sky map`);
 *   ctx.notify(`no sky map for ${graceid}`, `checked at ${ctx.now()} on ${ctx.identity.hostname}`);
 * }
 * ```
 */
export interface ChildContext {
  /** The listener section name of this child. */
  readonly child: string;
  /** The child's queue. Items marked complete leave it on their own. */
  readonly queue: ChildQueue;
  /** The whole childConfig, for the handler's own sections. */
  readonly config: Ini;
  /** The child's log. */
  readonly log: ChildLog;
  /** The section's `recipients`, the default for {@linkcode ChildContext.notify}. */
  readonly recipients: readonly string[];
  /** The child's `log_directory` (where its log file is). */
  readonly logDirectory: string;
  /**
   * A folder the handler may write its own files to,
   * `<log_directory>/<process_type>/`: the worker may write nowhere else
   * but its log file, its command-file folder and its snapshots.
   */
  readonly filesDirectory: string;
  /** Where the child runs. */
  readonly identity: ChildIdentity;
  /**
   * A client of the GraceDB the childConfig names (`[general] gracedb`),
   * logged in with the credentials the listener found; `undefined` when the
   * childConfig names none (the worker may then reach no network at all).
   */
  readonly gracedb: GraceDbClient | undefined;
  /** Seconds since the epoch, from the child's clock. */
  now(): number;
  /**
   * Sends mail through the listener (workers run no programs); to the
   * section's `recipients` unless others are given. Without recipients,
   * nothing is sent.
   */
  notify(subject: string, body: string, recipients?: readonly string[]): void;
  /** Publishes a payload on an XMPP node through the listener's session. */
  publish(node: string, payload: JsonObject): void;
}

/**
 * A piece of work that comes due `timeout` seconds after its item's `t0`.
 * Extend it and implement {@linkcode Task.execute}. A task that moves its
 * own `expiration` later while it runs repeats at the new time; any other
 * task is done once it has run.
 *
 * Own enumerable fields are what a snapshot saves: keep them JSON-safe.
 *
 * @example
 * ```ts
 * class Hello extends Task {
 *   execute(ctx: ChildContext) {
 *     ctx.log.info("hello");
 *   }
 * }
 * const item = new QueueItem(Date.now() / 1000, [new Hello(5)]); // due 5 s after t0
 * ```
 */
export abstract class Task {
  /** Shown in logs; defaults to the class name. */
  name: string;
  /** Seconds after the item's `t0` at which the task comes due. */
  timeout: number;
  /** Epoch seconds at which it comes due; `NaN` until it joins an item. */
  expiration: number = NaN;

  /** A task due `timeout` seconds after its item's `t0`, named `name` (default: the class name). */
  constructor(timeout: number, name?: string) {
    this.timeout = timeout;
    this.name = name ?? this.constructor.name;
  }

  /** Sets `expiration` to `t0 + timeout`. */
  setExpiration(t0: number): void {
    this.expiration = t0 + this.timeout;
  }

  /** Whether the task is due at `now` (epoch seconds). */
  hasExpired(now: number): boolean {
    return now >= this.expiration;
  }

  /**
   * Does the work. May be async; it runs under the child's time limit.
   * A task that throws fails its item (logged, mailed); the child goes on.
   */
  abstract execute(ctx: ChildContext, item: QueueItem): unknown;
}

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
/**
 * The number of the last checkpoint that saved the item (internal): a
 * checkpoint meets an item more than once (before it runs, in the heap's
 * slots, as inserted) and saves it once, without a set of 1e5 entries.
 */
export const SAVED: unique symbol = Symbol("saved");
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
  /** @ignore */
  [SAVED] = 0;

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
  item[SAVED] = 0;
}

/**
 * Gives an item made without its constructor (restored from a snapshot:
 * `Reflect.construct(Object, [], ItemClass)`, its own fields set) the
 * engine state of a fresh, unqueued, pending item holding `tasks`. The
 * internal fields are added in the order the constructor adds them after
 * the base fields, so restored items mostly share the hidden class of
 * items the handler makes, and its code stays fast on both.
 */
export function initRestored(item: QueueItem, tasks: Task[]): void {
  item[TASKS] = tasks;
  item[DONE] = [];
  resetInternals(item);
}
