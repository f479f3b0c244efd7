/**
 * The interactive queue: what a child does with alerts and time. It owns
 * the queue, arms one timer for the earliest expiration, and runs alerts
 * and due items one at a time, in order.
 *
 * @module
 */

import { type Alert, alertSchema, type JsonObject } from "../core/alert.ts";
import { systemClock } from "../queue/clock.ts";
import type { Clock } from "../queue/clock.ts";
import {
  BUILTIN_COMMANDS,
  checkCommand,
  CommandItem,
  type CommandSpec,
  CommandTask,
} from "./commands.ts";
import type { ChildContext, ChildLog } from "../queue/context.ts";
import type { HandlerModule } from "./handler.ts";
import type { Ini } from "../config/ini.ts";
import type { QueueItem } from "../queue/queue_item.ts";
import { QueueWatch, type QueueWatchOptions } from "./queue_watch.ts";
import { ClassRegistry } from "../durability/snapshot.ts";
import { SNAPSHOT_COMMANDS } from "./snapshot_commands.ts";
import { SortedQueue, type SortedQueueOptions } from "../queue/sorted_queue.ts";
import type { Task } from "../queue/task.ts";

/** Options for {@linkcode ChildRuntime}. */
export interface ChildRuntimeOptions {
  child: string;
  handler: HandlerModule;
  config: Ini;
  log: ChildLog;
  /** Folder the child may write to. */
  logDirectory: string;
  /** Default mail recipients (the section's `recipients`). @default {[]} */
  recipients?: readonly string[];
  /** @default {systemClock} */
  clock?: Clock;
  /** Seconds an async task may take before it counts as failed. @default {60} */
  taskTimeout?: number;
  queue?: SortedQueueOptions;
  /** Queue-length warnings; none when absent. */
  watch?: QueueWatchOptions;
  /** Host and pid reported in heartbeat responses. */
  identity?: { hostname: string; pid: number };
  notify(subject: string, body: string, recipients: readonly string[]): void;
  publish(node: string, payload: JsonObject): void;
  /** Called after every change of the queue. */
  onChange?(state: RuntimeState): void;
  /** Restores snapshot classes (`loadQueue`). @default {built-in classes only} */
  registry?: ClassRegistry;
  /** Receives the outcome of a command that came with a reply token. */
  reply?(token: string, result: CommandReply): void;
  /** Alert ids remembered as applied. @default {10000} */
  appliedLimit?: number;
}

/** What a command sent through `ctl` answers. */
export type CommandReply = { ok: true; output: string } | { ok: false; error: string };

/** What the listener needs to know about a child's queue. */
export interface RuntimeState {
  queue: number;
  /** Epoch seconds of the earliest expiration, or null when empty. */
  next: number | null;
}

/** Where an alert came from. */
export interface AlertMeta {
  node?: string;
  id?: string | null;
  seq?: number;
  /** Re-applied from the journal after a restart. */
  recovered?: boolean;
  /** For a command: where its outcome goes (`ctl`). */
  token?: string;
}

/** Outcome of delivering an alert. */
export type DeliverResult = { ok: true } | { ok: false; reason: string };

/** Milliseconds, rounded to microseconds for readable logs. */
function ms(seconds: number): number {
  return Math.round(seconds * 1e6) / 1e3;
}

function errorFields(error: unknown): JsonObject {
  return error instanceof Error
    ? { error: error.message, stack: error.stack ?? "" }
    : { error: String(error) };
}

/**
 * Runs one child's queue.
 *
 * @example
 * ```ts
 * const runtime = new ChildRuntime({ child, handler, config, log, ... });
 * await runtime.deliver(alert, Date.now() / 1000, { node: "cbc_gstlal" });
 * await runtime.stop();
 * ```
 */
export class ChildRuntime {
  readonly queue: SortedQueue;
  readonly context: ChildContext;
  #o: ChildRuntimeOptions;
  #clock: Clock;
  #chain: Promise<unknown> = Promise.resolve();
  #cancelTimer: (() => void) | undefined;
  #armedFor = Infinity;
  #stopped = false;
  #watch: QueueWatch | undefined;
  #commands: Map<string, CommandSpec>;
  /** node + id of applied alerts, oldest first */
  #applied = new Map<string, [string, string]>();
  #tokens = new WeakMap<Task, string>();
  #appliedSeq = 0;
  /** Errors already logged as task failures. */
  #reported = new WeakSet<object>();
  /** While set, alerts wait for it (a snapshot is being written). */
  #gate: Promise<void> | undefined;
  #beforeRun: ((item: QueueItem) => void) | undefined;

  constructor(options: ChildRuntimeOptions) {
    this.#o = options;
    this.#clock = options.clock ?? systemClock;
    this.queue = new SortedQueue(options.queue);
    this.#watch = options.watch && new QueueWatch(options.watch);
    this.#commands = new Map(
      [...BUILTIN_COMMANDS, ...SNAPSHOT_COMMANDS, ...options.handler.commands ?? []].map((
        c,
      ) => [c.name, c]),
    );
    const clock = this.#clock;
    const recipients = options.recipients ?? [];
    this.context = {
      child: options.child,
      queue: this.queue,
      config: options.config,
      log: options.log,
      recipients,
      logDirectory: options.logDirectory,
      commands: this.#commands,
      registry: options.registry ?? new ClassRegistry(),
      now: () => clock.now(),
      notify: (subject, body, to = recipients) => {
        if (to.length > 0) options.notify(subject, body, to);
      },
      publish: (node, payload) => options.publish(node, payload),
      runTask: (item, task) => this.#runTask(item, task),
    };
  }

  /**
   * Applies an alert: commands and heartbeats are handled here, anything
   * else goes to the handler's `parseAlert`. Resolves once applied.
   */
  deliver(
    alert: Alert,
    t0: number,
    meta: AlertMeta = {},
  ): Promise<DeliverResult> {
    const gate = this.#gate;
    if (gate) return gate.then(() => this.deliver(alert, t0, meta));
    return this.#enqueue(async () => {
      const result = await this.#apply(alert, t0, meta);
      if (meta.seq !== undefined) this.#appliedSeq = Math.max(this.#appliedSeq, meta.seq);
      this.#afterChange();
      return result;
    });
  }

  /** Inserts an item from outside an alert (restores, tests). */
  insert(item: QueueItem): Promise<void> {
    return this.#enqueue(() => {
      this.queue.insert(item);
      this.#afterChange();
      return Promise.resolve();
    });
  }

  /**
   * Lets a snapshot be written while tasks keep their times: alerts wait
   * until `until` settles, and `beforeRun` sees each item just before it
   * runs (to save it first). Pass nothing to end it.
   */
  snapshotting(until?: Promise<void>, beforeRun?: (item: QueueItem) => void): void {
    this.#gate = until;
    this.#beforeRun = beforeRun;
  }

  /** Runs `work` alone: no alert or task runs meanwhile (snapshots). */
  exclusive<T>(work: () => Promise<T> | T): Promise<T> {
    return this.#enqueue(async () => await work());
  }

  /** The journal position of the last alert applied (read it inside `exclusive`). */
  get appliedSeq(): number {
    return this.#appliedSeq;
  }

  /** Puts a snapshot's items, applied ids and journal position back. */
  restore(items: readonly QueueItem[], applied: readonly [string, string][], seq: number): void {
    this.#appliedSeq = seq;
    for (const [node, id] of applied) this.#remember(node, id);
    for (const item of items) this.queue.insert(item);
    this.#afterChange();
  }

  /** The remembered ids of applied alerts, oldest first. */
  appliedIds(): [string, string][] {
    return [...this.#applied.values()];
  }

  #remember(node: string, id: string): void {
    const key = `${node}\u0000${id}`;
    this.#applied.delete(key);
    this.#applied.set(key, [node, id]);
    if (this.#applied.size > (this.#o.appliedLimit ?? 10_000)) {
      this.#applied.delete(this.#applied.keys().next().value!);
    }
  }

  /** Resolves when nothing is running or waiting to run. */
  async settled(): Promise<void> {
    let seen: Promise<unknown>;
    do {
      seen = this.#chain;
      await seen;
    } while (seen !== this.#chain);
  }

  /** Stops the timer and waits for work in flight. */
  async stop(): Promise<void> {
    this.#stopped = true;
    this.#cancelTimer?.();
    this.#cancelTimer = undefined;
    await this.settled();
  }

  #enqueue<T>(work: () => Promise<T>): Promise<T> {
    const run = this.#chain.then(work);
    this.#chain = run.catch(() => {});
    return run;
  }

  async #apply(
    alert: Alert,
    t0: number,
    meta: AlertMeta,
  ): Promise<DeliverResult> {
    const log = this.#o.log;
    const schema = alertSchema(alert);
    const { node, id } = meta;
    if (node !== undefined && id != null) {
      if (this.#applied.has(`${node}\u0000${id}`)) {
        log.event("info", "alert_duplicate", {
          node,
          id,
          uid: alert.uid,
          reason: "already applied",
        });
        return { ok: false, reason: `item ${id} on ${node} was already applied` };
      }
      this.#remember(node, id);
    }
    log.event("info", "alert", {
      node: node ?? null,
      uid: alert.uid,
      alert_type: alert.alert_type,
      id: id ?? null,
      schema,
      t0,
      ...(meta.seq === undefined ? {} : { seq: meta.seq }),
      ...(meta.recovered ? { recovered: true } : {}),
    });
    // A heartbeat replayed after a restart was answered long ago.
    if (schema === "heartbeat") return meta.recovered ? { ok: true } : this.#heartbeat(alert, meta);
    if (schema === "command") {
      const check = checkCommand(
        this.#commands,
        alert.alert_type,
        alert.object,
      );
      if (!check.ok) {
        log.event("warning", "alert_rejected", {
          uid: alert.uid,
          alert_type: alert.alert_type,
          reason: check.reason,
        }, check.reason);
        if (meta.token) this.#o.reply?.(meta.token, { ok: false, error: check.reason });
        return { ok: false, reason: check.reason };
      }
      const graceid = check.kwargs.graceid;
      const task = new CommandTask(check.spec.name, check.kwargs, check.sleep);
      if (meta.token) this.#tokens.set(task, meta.token);
      const item = new CommandItem(
        t0,
        task,
        typeof graceid === "string" ? graceid : undefined,
      );
      this.queue.insert(item);
      return { ok: true };
    }
    try {
      await this.#o.handler.parseAlert(this.context, alert, t0, this.#o.config);
      return { ok: true };
    } catch (error) {
      const reason = `parseAlert failed: ${(error as Error)?.message ?? error}`;
      log.event("error", "alert_failed", {
        uid: alert.uid,
        alert_type: alert.alert_type,
        ...errorFields(error),
      }, reason);
      return { ok: false, reason };
    }
  }

  #heartbeat(alert: Alert, meta: AlertMeta): DeliverResult {
    if (alert.ptype !== "request") {
      return {
        ok: false,
        reason: `heartbeat with ptype ${JSON.stringify(alert.ptype)} ignored`,
      };
    }
    if (meta.node === undefined) {
      return {
        ok: false,
        reason: "heartbeat request without a node to answer on",
      };
    }
    const identity = this.#o.identity ?? { hostname: "", pid: 0 };
    this.#o.publish(meta.node, {
      uid: "heartbeat",
      ptype: "response",
      key: alert.key ?? null,
      child: this.#o.child,
      host: identity.hostname,
      pid: identity.pid,
      queue: this.queue.size,
    });
    return { ok: true };
  }

  async #runDue(): Promise<void> {
    const log = this.#o.log;
    for (;;) {
      if (this.#stopped) break;
      const item = this.queue.peek();
      if (!item || item.expiration > this.#clock.now()) break;
      this.queue.pop();
      let failed = false;
      this.#beforeRun?.(item);
      try {
        await item.execute(this.context);
      } catch (error) {
        failed = true;
        item.complete = true;
        // Errors from a task were logged with it; this one came from the item itself.
        if (!(error instanceof Object && this.#reported.has(error))) {
          log.event("error", "item_failed", {
            graceid: item.graceid ?? null,
            item: item.name,
            ...errorFields(error),
          }, `item ${item.name} failed: ${(error as Error)?.message ?? error}`);
        }
      }
      if (!item.complete) {
        this.queue.insert(item);
        continue;
      }
      log.event("info", "item_completed", {
        graceid: item.graceid ?? null,
        item: item.name,
        tasks: item.completedTasks.length,
        failed,
      });
    }
    this.#afterChange();
  }

  async #runTask(item: QueueItem, task: Task): Promise<void> {
    const clock = this.#clock;
    const due = task.expiration;
    const start = clock.now();
    const fields: JsonObject = {
      graceid: item.graceid ?? null,
      item: item.name,
      task: task.name,
      due,
      lateness_ms: ms(start - due),
    };
    const token = this.#tokens.get(task);
    let output: unknown;
    try {
      output = await this.#limited(task, task.execute(this.context, item));
    } catch (error) {
      const message = (error as Error)?.message ?? String(error);
      this.#o.log.event(
        "error",
        "task_failed",
        { ...fields, ...errorFields(error) },
        `task ${task.name} of ${item.name} failed: ${message}`,
      );
      this.context.notify(
        `lvalertMP: task ${task.name} failed in ${this.#o.child}`,
        `child    : ${this.#o.child}\nitem     : ${item.name}\n` +
          `graceid  : ${item.graceid ?? "-"}\ntask     : ${task.name}\n\n` +
          `${error instanceof Error ? error.stack : String(error)}\n`,
      );
      if (token) this.#o.reply?.(token, { ok: false, error: message });
      if (error instanceof Object) this.#reported.add(error);
      throw error;
    }
    this.#o.log.event("info", "task_executed", { ...fields, duration_ms: ms(clock.now() - start) });
    if (token) {
      this.#o.reply?.(token, { ok: true, output: output === undefined ? "" : String(output) });
    }
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
          cancel = this.#clock.setTimer(
            () => reject(new Error(`Task ${task.name} timed out after ${limit} s`)),
            limit * 1000,
          );
        }),
      ]);
    } finally {
      cancel?.();
    }
  }

  #afterChange(): void {
    if (this.#stopped) return;
    const next = this.queue.peek();
    const expiration = next?.expiration ?? Infinity;
    if (expiration !== this.#armedFor) {
      this.#cancelTimer?.();
      this.#cancelTimer = undefined;
      this.#armedFor = expiration;
      if (next) {
        const delay = Math.max(0, (expiration - this.#clock.now()) * 1000);
        this.#cancelTimer = this.#clock.setTimer(() => {
          this.#cancelTimer = undefined;
          this.#armedFor = Infinity;
          this.#enqueue(() => this.#runDue());
        }, delay);
      }
    }
    this.#watch?.check(this.queue.size, this.#clock.now(), {
      log: this.#o.log,
      notify: (s, b, r) => this.#o.notify(s, b, r),
    });
    this.#o.onChange?.({
      queue: this.queue.size,
      next: next ? next.expiration : null,
    });
  }
}
