/**
 * What the queue runtime hands to handlers and tasks.
 *
 * @module
 */

import type { JsonObject } from "../core/alert.ts";
import type { CommandSpec } from "../child/commands.ts";
import type { Ini } from "../config/ini.ts";
import type { QueueItem } from "./queue_item.ts";
import type { ClassRegistry } from "../durability/snapshot.ts";
import type { SortedQueue } from "./sorted_queue.ts";
import type { Task } from "./task.ts";

/** Log levels, lowest first. */
export type Level = "debug" | "info" | "warning" | "error";

/** A child's logger: records go to its log file and, if asked, stdout. */
export interface ChildLog {
  debug(message: string, fields?: JsonObject): void;
  info(message: string, fields?: JsonObject): void;
  warning(message: string, fields?: JsonObject): void;
  error(message: string, fields?: JsonObject): void;
  /** A structured event with a stable name (`task_executed`, ...). */
  event(
    level: Level,
    event: string,
    fields?: JsonObject,
    message?: string,
  ): void;
}

/** The child a handler runs in: its queue, config, clock and outlets. */
export interface ChildContext {
  /** The listener section name of this child. */
  readonly child: string;
  /** The child's queue. Items marked complete leave it on their own. */
  readonly queue: SortedQueue;
  /** The whole childConfig, for the handler's own sections. */
  readonly config: Ini;
  readonly log: ChildLog;
  /** The section's `recipients`, the default for {@linkcode ChildContext.notify}. */
  readonly recipients: readonly string[];
  /** The folder this child may write to (its `log_directory`). */
  readonly logDirectory: string;
  /** Commands this child understands, built-in and the handler's. */
  readonly commands: ReadonlyMap<string, CommandSpec>;
  /** The item and task classes snapshots of this child may name. */
  readonly registry: ClassRegistry;
  /** Seconds since the epoch, from the runtime's clock. */
  now(): number;
  /** Sends mail (through the listener; workers cannot run programs). */
  notify(subject: string, body: string, recipients?: readonly string[]): void;
  /** Publishes a payload on an XMPP node through the listener's session. */
  publish(node: string, payload: JsonObject): void;
  /**
   * Runs one task under the runtime's time limit, with timing and logging.
   * {@linkcode QueueItem.execute} calls it; handlers that override
   * `execute` should go through `super.execute(ctx)`.
   *
   * @throws the task's error, or a timeout error, after logging it
   */
  runTask(item: QueueItem, task: Task): Promise<void>;
}
