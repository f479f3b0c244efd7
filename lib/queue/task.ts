/**
 * The unit of follow-up work.
 *
 * @module
 */

import type { ChildContext } from "./context.ts";
import type { QueueItem } from "./queue_item.ts";

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
 * import type { ChildContext } from "./context.ts";
 * import { QueueItem } from "./queue_item.ts";
 *
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
