/**
 * One child's runtime: its handler's context, its scheduler (queue and
 * timer), its alert intake and its command table, put together. The
 * worker entry (`workers/child.ts`) drives it.
 *
 * @module
 */

import { join } from "node:path";
import type { Alert, JsonObject } from "../core/alert.ts";
import { type ChildLog, ctime } from "../core/log.ts";
import type { Ini } from "../config/ini.ts";
import { ClassRegistry } from "../durability/snapshot.ts";
import type { GraceDbClient } from "../gracedb/client.ts";
import type { Clock } from "../queue/clock.ts";
import {
  type ChildContext,
  type ChildIdentity,
  QueueItem,
  type Task,
} from "../queue/queue_item.ts";
import type { Dormant, SortedQueue, SortedQueueOptions } from "../queue/sorted_queue.ts";
import {
  BUILTIN_COMMANDS,
  CommandItem,
  CommandTable,
  CommandTask,
  type EngineContext,
} from "./commands.ts";
import type { HandlerModule } from "./handler.ts";
import { AlertIntake, type AlertMeta, type DeliverResult } from "./intake.ts";
import { QueueWatch, type QueueWatchOptions } from "./queue_watch.ts";
import type { TaskRun } from "./report.ts";
import { type QueueState, Scheduler } from "./scheduler.ts";
import { SNAPSHOT_COMMANDS } from "./snapshot_commands.ts";

export type { AlertMeta, DeliverResult } from "./intake.ts";
export type { QueueState as RuntimeState } from "./scheduler.ts";

/** Options for {@linkcode ChildRuntime}. */
export interface ChildRuntimeOptions {
  child: string;
  handler: HandlerModule;
  /** The handler module's exports: its item and task classes are restorable. */
  handlerExports?: Record<string, unknown>;
  config: Ini;
  log: ChildLog;
  /** The child's log_directory. */
  logDirectory: string;
  /** The folder the handler may write its own files to. @default {logDirectory} */
  filesDirectory?: string;
  /** The folder command files live in. @default {`<logDirectory>/queue`} */
  commandFolder?: string;
  /** Default mail recipients (the section's `recipients`). @default {[]} */
  recipients?: readonly string[];
  /** Where the child runs. */
  identity?: ChildIdentity;
  /** The GraceDB client handlers get as `ctx.gracedb`. */
  gracedb?: GraceDbClient | undefined;
  /** @default {systemClock} */
  clock?: Clock;
  /** Seconds an async task may take before it counts as failed. @default {60} */
  taskTimeout?: number;
  queue?: SortedQueueOptions;
  /** Queue-length warnings; none when absent. */
  watch?: QueueWatchOptions;
  notify(subject: string, body: string, recipients: readonly string[]): void;
  publish(node: string, payload: JsonObject): void;
  /** Called after every change of the queue. */
  onChange?(state: QueueState): void;
  /** Receives the outcome of a command that came with a reply token. */
  reply?(token: string, result: CommandReply): void;
  /** Alert ids remembered as applied. @default {10000} */
  appliedLimit?: number;
  /** Commands accepted from the network. @default {"all"} */
  networkCommands?: "all" | "none" | readonly string[];
  /** Hears the journal position of the alert being applied (0 once it is). */
  applying?(seq: number): void;
  /** Hears every task run, with its lateness and outcome (for the metrics). */
  taskRan?(run: TaskRun): void;
  /** The `name` of heartbeat responses. @default {the child's name} */
  heartbeatName?: string;
}

/** What a command sent through `ctl` answers. */
export type CommandReply = { ok: true; output: string } | { ok: false; error: string };

function taskRun(item: QueueItem, task: Task, lateness: number, error: string | null): TaskRun {
  const due = task.expiration;
  return { graceid: item.graceid ?? null, item: item.name, task: task.name, due, lateness, error };
}

const NO_IDENTITY: ChildIdentity = { hostname: "localhost", username: "", pid: 0, config: "" };

/**
 * Runs one child's queue.
 *
 * @example
 * ```ts
 * import type { Alert } from "../core/alert.ts";
 *
 * async function once(options: ChildRuntimeOptions, alert: Alert) {
 *   await using runtime = new ChildRuntime(options);
 *   await runtime.deliver(alert, Date.now() / 1000, { node: "cbc_gstlal" });
 * }
 * ```
 */
export class ChildRuntime {
  /** The handler's view of the child. */
  readonly context: ChildContext;
  /** Item and task classes snapshots of this child may name. */
  readonly registry: ClassRegistry;
  readonly commands: CommandTable;
  #scheduler: Scheduler;
  #intake: AlertIntake;
  #engine: EngineContext;
  #tokens = new WeakMap<Task, string>();

  constructor(options: ChildRuntimeOptions) {
    const recipients = options.recipients ?? [];
    const watch = options.watch && new QueueWatch(options.watch);
    const scheduler = new Scheduler({
      log: options.log,
      ...(options.clock ? { clock: options.clock } : {}),
      ...(options.taskTimeout ? { taskTimeout: options.taskTimeout } : {}),
      ...(options.queue ? { queue: options.queue } : {}),
      ...(options.applying ? { marker: options.applying } : {}),
      execute: (task, item) =>
        task instanceof CommandTask
          ? this.commands.run(this.#engine, task, item)
          : task.execute(this.context, item),
      succeeded: (item, task, output, lateness) => {
        options.taskRan?.(taskRun(item, task, lateness, null));
        const token = this.#tokens.get(task);
        if (token) {
          options.reply?.(token, { ok: true, output: output === undefined ? "" : String(output) });
        }
      },
      failed: (item, task, error, lateness) => {
        options.taskRan?.(
          taskRun(item, task, lateness, (error as Error)?.message ?? String(error)),
        );
        this.#failed(options, item, task, error);
      },
      changed: (state) => {
        watch?.check(state.queue, this.#scheduler.clock.now(), {
          log: options.log,
          notify: (s, b, r) => options.notify(s, b, r),
        });
        options.onChange?.(state);
      },
    });
    this.#scheduler = scheduler;
    const clock = scheduler.clock;
    this.context = {
      child: options.child,
      queue: scheduler.queue,
      config: options.config,
      log: options.log,
      recipients,
      logDirectory: options.logDirectory,
      filesDirectory: options.filesDirectory ?? options.logDirectory,
      identity: options.identity ?? NO_IDENTITY,
      gracedb: options.gracedb,
      now: () => clock.now(),
      notify: (subject, body, to = recipients) => {
        if (to.length > 0) options.notify(subject, body, to);
      },
      publish: (node, payload) => options.publish(node, payload),
    };
    this.registry = new ClassRegistry([QueueItem, CommandItem, CommandTask]);
    if (options.handlerExports) this.registry.registerModule(options.handlerExports);
    this.#engine = {
      ...this.context,
      registry: this.registry,
      commandFolder: options.commandFolder ?? join(options.logDirectory, "queue"),
    };
    this.commands = new CommandTable([
      ...BUILTIN_COMMANDS,
      ...SNAPSHOT_COMMANDS,
      ...options.handler.commands ?? [],
    ]);
    this.#intake = new AlertIntake({
      handler: options.handler,
      config: options.config,
      context: this.context,
      scheduler,
      commands: this.commands,
      identity: options.identity ?? NO_IDENTITY,
      commandQueued: (task, token) => this.#tokens.set(task, token),
      ...(options.appliedLimit ? { appliedLimit: options.appliedLimit } : {}),
      ...(options.networkCommands ? { networkCommands: options.networkCommands } : {}),
      heartbeatName: options.heartbeatName ?? options.child,
      ...(options.watch ? { warnDelay: options.watch.warnDelay } : {}),
    });
  }

  /** The child's whole queue (the engine's view). */
  get queue(): SortedQueue {
    return this.#scheduler.queue;
  }

  /**
   * Applies an alert (see {@linkcode AlertIntake.deliver}); a command
   * refused here is answered through its ack.
   */
  deliver(alert: Alert, t0: number, meta: AlertMeta = {}): Promise<DeliverResult> {
    return this.#intake.deliver(alert, t0, meta);
  }

  /** Inserts an item from outside an alert (tests, restores). */
  insert(item: QueueItem): Promise<void> {
    return this.#scheduler.run(() => this.queue.insert(item));
  }

  /**
   * Runs `work` alone: no alert or task runs meanwhile (snapshots). With
   * `readOnly`, the work changes nothing, and no change is reported.
   */
  exclusive<T>(work: () => Promise<T> | T, options: { readOnly?: boolean } = {}): Promise<T> {
    return this.#scheduler.run(work, options);
  }

  /** See {@linkcode Scheduler.snapshotting}. */
  snapshotting(
    until?: Promise<void>,
    beforeRun?: (item: QueueItem) => void,
  ): void {
    this.#scheduler.snapshotting(until, beforeRun);
  }

  /** Whether alerts wait for the snapshot being taken (see {@linkcode snapshotting}). */
  get alertsWaiting(): boolean {
    return this.#scheduler.waiting > 0;
  }

  /** The journal position of the last alert applied (read it inside `exclusive`). */
  get appliedSeq(): number {
    return this.#intake.appliedSeq;
  }

  /** The remembered ids of applied alerts, oldest first. */
  appliedIds(): [string, string][] {
    return this.#intake.appliedIds();
  }

  /** {@linkcode ChildRuntime.appliedIds} as JSON text (cheaper: snapshots take it as it is). */
  appliedJson(): string {
    return this.#intake.appliedJson();
  }

  /**
   * Puts a snapshot's items (and those restored lazily), applied ids and
   * journal position back (inside `exclusive`).
   */
  restore(
    items: readonly QueueItem[],
    applied: readonly [string, string][],
    seq: number,
    dormant?: Dormant,
  ): void {
    this.#intake.restore(applied, seq);
    this.queue.insertAll(items);
    if (dormant) this.queue.adopt(dormant);
  }

  /** Resolves when nothing is running or waiting to run. */
  settled(): Promise<void> {
    return this.#scheduler.settled();
  }

  /** Stops the timer and waits for work in flight. */
  stop(): Promise<void> {
    return this.#scheduler.stop();
  }

  /** Stops, for `await using`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.stop();
  }

  #failed(options: ChildRuntimeOptions, item: QueueItem, task: Task, error: unknown): void {
    // The original's mail (interactiveQueue.py, execute_subject/execute_body).
    const id = this.context.identity;
    this.context.notify(
      `WARNING: ${item.name}.execute caught an exception on ${id.hostname}`,
      `time (localtime): \n  ${ctime(this.context.now())}\n\nQueueItem = ${item.name}: \n` +
        `  graceid=${item.graceid ?? "-"} task=${task.name} child=${options.child}\n\n` +
        `${error instanceof Error ? error.stack : String(error)}\n\n` +
        `    username : ${id.username}\n    hostname : ${id.hostname}\n    config   : ${id.config}\n\n` +
        "QueueItem marked complete to avoid repeated errors.\n",
    );
    const token = this.#tokens.get(task);
    if (token) {
      options.reply?.(token, { ok: false, error: (error as Error)?.message ?? String(error) });
    }
  }
}
