/**
 * What a handler and its tasks see of the child they run in: its queue,
 * config, log, clock and outlets. Nothing of the engine behind it.
 *
 * @module
 */

import type { JsonObject } from "../core/alert.ts";
import type { ChildLog } from "../core/log.ts";
import type { Ini } from "../config/ini.ts";
import type { QueueItem } from "./queue_item.ts";

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
  /** The folder this child may write to (its `log_directory`). */
  readonly logDirectory: string;
  /** Where the child runs. */
  readonly identity: ChildIdentity;
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
