/**
 * Alert intake: what a child does with each alert it is handed. Commands
 * become command items, heartbeat requests are answered, anything else
 * goes to the handler's `parseAlert`; an alert id already applied (after a
 * restart) is not applied twice.
 *
 * @module
 */

import { type Alert, alertSchema, type JsonObject } from "../core/alert.ts";
import { ctime } from "../core/log.ts";
import { Throttle } from "../core/throttle.ts";
import type { Ini } from "../config/ini.ts";
import type { ChildContext } from "../queue/queue_item.ts";
import { CommandItem, type CommandTable, CommandTask, REPEATING_COMMANDS } from "./commands.ts";
import { AppliedIds } from "./applied_ids.ts";
import type { HandlerModule } from "./handler.ts";
import { errorFields, type Scheduler } from "./scheduler.ts";

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

/** Outcome of delivering an alert; `duplicate` when it had been applied already. */
export type DeliverResult = { ok: true } | { ok: false; reason: string; duplicate?: boolean };

/** Options for {@linkcode AlertIntake}. */
export interface AlertIntakeOptions {
  handler: HandlerModule;
  config: Ini;
  context: ChildContext;
  scheduler: Scheduler;
  commands: CommandTable;
  /** Host, user and pid reported in heartbeat responses. */
  identity: { hostname: string; username?: string; pid: number };
  /** The `name` heartbeat responses carry (lvalertHeartbeat's monitor matches on it). */
  heartbeatName?: string;
  /** Seconds between two mails about exceptions in parseAlert. @default {3600} */
  warnDelay?: number;
  /** A command accepted with a reply token; its outcome will follow. */
  commandQueued?(task: CommandTask, token: string): void;
  /**
   * Alert ids remembered as applied, at least (the oldest are forgotten
   * 256 at a time). @default {10000}
   */
  appliedLimit?: number;
  /**
   * Commands accepted from the network (commands through the control
   * socket are always accepted): `"all"`, `"none"`, or a list of names.
   * @default {"all"}
   */
  networkCommands?: "all" | "none" | readonly string[];
}

/** The shortest `sleep` a command may have, in seconds. */
export const MIN_SLEEP = 1;
/** Repeating commands (checkpointQueue with `sleep`) a child holds at most. */
export const MAX_REPEATING = 8;

/** Applies alerts to a child, one at a time, in the scheduler's line. */
export class AlertIntake {
  #o: AlertIntakeOptions;
  /** node + id of applied alerts, oldest first */
  #applied: AppliedIds;
  #appliedSeq = 0;
  #throttle: Throttle;

  constructor(options: AlertIntakeOptions) {
    this.#o = options;
    this.#throttle = new Throttle(options.warnDelay ?? 3600, () => options.context.now());
    this.#applied = new AppliedIds(options.appliedLimit ?? 10_000);
  }

  /** The journal position of the last alert applied. */
  get appliedSeq(): number {
    return this.#appliedSeq;
  }

  /** The remembered ids of applied alerts, oldest first. */
  appliedIds(): [string, string][] {
    return JSON.parse(this.appliedJson());
  }

  /** {@linkcode appliedIds} as JSON text, made without stringifying each id again. */
  appliedJson(): string {
    return this.#applied.json();
  }

  /** Puts back what a snapshot remembered. */
  restore(applied: readonly [string, string][], seq: number): void {
    this.#appliedSeq = seq;
    for (const [node, id] of applied) this.#applied.add(node, id);
  }

  /**
   * Applies an alert: commands and heartbeats are handled here, anything
   * else goes to the handler's `parseAlert`. Resolves once applied; waits
   * first while a snapshot is being taken.
   */
  async deliver(alert: Alert, t0: number, meta: AlertMeta = {}): Promise<DeliverResult> {
    const scheduler = this.#o.scheduler;
    while (scheduler.gate) {
      scheduler.waiting++;
      try {
        await scheduler.gate;
      } finally {
        scheduler.waiting--;
      }
    }
    return scheduler.run(async () => {
      scheduler.applying(meta.seq ?? 0);
      try {
        const result = await this.#apply(alert, t0, meta);
        if (meta.seq !== undefined) this.#appliedSeq = Math.max(this.#appliedSeq, meta.seq);
        return result;
      } finally {
        scheduler.applying(0);
      }
    });
  }

  async #apply(alert: Alert, t0: number, meta: AlertMeta): Promise<DeliverResult> {
    const log = this.#o.context.log;
    const schema = alertSchema(alert);
    const { node, id } = meta;
    if (node !== undefined && id != null) {
      if (!this.#applied.add(node, id)) {
        log.event("info", "alert_duplicate", {
          node,
          id,
          uid: alert.uid,
          reason: "already applied",
        });
        return { ok: false, reason: `item ${id} on ${node} was already applied`, duplicate: true };
      }
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
    if (schema === "command") return this.#command(alert, t0, meta);
    try {
      await this.#o.handler.parseAlert(this.#o.context, alert, t0, this.#o.config);
      return { ok: true };
    } catch (error) {
      const reason = `parseAlert failed: ${(error as Error)?.message ?? error}`;
      log.event("error", "alert_failed", {
        uid: alert.uid,
        alert_type: alert.alert_type,
        ...errorFields(error),
      }, reason);
      this.#mailException(alert, error);
      return { ok: false, reason };
    }
  }

  /** Why a command may not run now, if it may not. */
  #refusal(alert: Alert, meta: AlertMeta, sleep: number | null): string | undefined {
    const name = alert.alert_type;
    const allowed = this.#o.networkCommands ?? "all";
    // Commands through the control socket carry a reply token; the network's do not.
    if (
      meta.token === undefined && allowed !== "all" &&
      (allowed === "none" || !allowed.includes(name))
    ) {
      return `command ${name} is not accepted from the network (network_commands)`;
    }
    if (sleep === null) return undefined;
    if (sleep < MIN_SLEEP) return `command ${name}: "sleep" must be at least ${MIN_SLEEP} s`;
    if (!REPEATING_COMMANDS.has(name)) return undefined;
    const repeating =
      this.#o.scheduler.queue.live().filter((item) =>
        item.tasks.some((t) => t instanceof CommandTask && t.repeats)
      ).length;
    return repeating >= MAX_REPEATING
      ? `command ${name}: this child already holds ${repeating} repeating commands (at most ${MAX_REPEATING})`
      : undefined;
  }

  /** The original's mail about an exception in parseAlert, at most once per warnDelay. */
  #mailException(alert: Alert, error: unknown): void {
    const pass = this.#throttle.attempt("parseAlert");
    if (!pass.send) return;
    const { context } = this.#o;
    const id = context.identity;
    const held = pass.suppressed > 0
      ? `\n(${pass.suppressed} more since the last mail were not mailed; the log has each)\n`
      : "";
    context.notify(
      `WARNING: parseAlert caught an exception on ${id.hostname}`,
      `time (localtime): \n  ${ctime(context.now())}\n\nlvalert message: \n  ${
        JSON.stringify(alert)
      }\n\n${error instanceof Error ? error.stack : String(error)}\n\n` +
        `    username : ${id.username}\n    hostname : ${id.hostname}\n    config   : ${id.config}\n` +
        held,
    );
  }

  #command(alert: Alert, t0: number, meta: AlertMeta): DeliverResult {
    const check = this.#o.commands.check(alert.alert_type, alert.object);
    const reason = check.ok ? this.#refusal(alert, meta, check.sleep) : check.reason;
    if (!check.ok || reason !== undefined) {
      this.#o.context.log.event("warning", "alert_rejected", {
        uid: alert.uid,
        alert_type: alert.alert_type,
        reason: reason!,
      }, reason!);
      return { ok: false, reason: reason! };
    }
    const graceid = check.kwargs.graceid;
    const task = new CommandTask(check.spec.name, check.kwargs, check.sleep);
    if (meta.token) this.#o.commandQueued?.(task, meta.token);
    this.#o.scheduler.queue.insert(
      new CommandItem(t0, task, typeof graceid === "string" ? graceid : undefined),
    );
    return { ok: true };
  }

  #heartbeat(alert: Alert, meta: AlertMeta): DeliverResult {
    if (alert.ptype !== "request") {
      return { ok: false, reason: `heartbeat with ptype ${JSON.stringify(alert.ptype)} ignored` };
    }
    if (meta.node === undefined) {
      return { ok: false, reason: "heartbeat request without a node to answer on" };
    }
    const { hostname, username, pid } = this.#o.identity;
    // lvalertHeartbeat's response: the request, ptype "response", and who answers.
    const response: JsonObject = {
      ...alert,
      ptype: "response",
      key: alert.key ?? null,
      hostname,
      user: username ?? "",
      pid,
      name: this.#o.heartbeatName ?? this.#o.context.child,
      child: this.#o.context.child,
      host: hostname,
      queue: this.#o.scheduler.queue.size,
    };
    this.#o.context.publish(meta.node, response);
    return { ok: true };
  }
}
