/**
 * The supervisor: one Web Worker per listener section, started with its
 * own permissions, fed alerts in order, watched for death and hangs.
 *
 * @module
 */

import { join } from "node:path";
import { pathToFileURL } from "node:url";
import type { JsonObject } from "./alert.ts";
import { type ChildSection, type ListenerConfig, logFileName } from "./config.ts";
import type { ChildLog } from "./context.ts";
import type { LogFormat } from "./log.ts";
import {
  type AlertDelivery,
  type ChildSettings,
  type FromChild,
  readFromChild,
  type ToChild,
  unreachable,
} from "./messages.ts";
import { childPermissions } from "./permissions.ts";
import type { Delivery } from "./router.ts";

/** A child could not start: a start-up failure (exit 78). */
export class ChildStartError extends Error {
  readonly child: string;

  constructor(child: string, message: string, options?: ErrorOptions) {
    super(`Child [${child}] could not start: ${message}`, options);
    this.name = "ChildStartError";
    this.child = child;
  }
}

/** A child died after it started. */
export class ChildDiedError extends Error {
  readonly child: string;

  constructor(child: string, message: string, options?: ErrorOptions) {
    super(`Child [${child}] died: ${message}`, options);
    this.name = "ChildDiedError";
    this.child = child;
  }
}

/** Options for {@linkcode Supervisor}. */
export interface SupervisorOptions {
  config: ListenerConfig;
  logFormat: LogFormat;
  /** The listener's own log. */
  log: ChildLog;
  /** Where child log lines for stdout go. */
  writeLine(line: string): void;
  notify(
    section: ChildSection,
    subject: string,
    body: string,
    recipients: string[],
  ): void;
  publish(child: string, node: string, payload: JsonObject): void;
  /** A child died and its section says the listener must stop. */
  onFatal(error: ChildDiedError): void;
  /** Acks or queue state changed (for `--exit-when-idle`). */
  onChange?(): void;
  /** A child applied (ok) or refused an alert. */
  onAck?(ok: boolean): void;
  identity: { hostname: string; username: string; pid: number };
  /** Load and validate each child, then stop it (`--check-config`). */
  checkOnly?: boolean;
  /** Seconds between liveness pings. @default {1} */
  pingInterval?: number;
  /**
   * Seconds beyond the section's `task_timeout` a child may go without
   * answering a ping before it counts as hung and is terminated.
   * @default {5}
   */
  hangGrace?: number;
  /** Seconds a child may take to start. @default {30} */
  startTimeout?: number;
}

/** What the listener knows of a child. */
export interface ChildStatus {
  child: string;
  state: "starting" | "ready" | "stopping" | "stopped" | "dead";
  queue: number;
  next: number | null;
  /** Alerts handed over and not yet applied. */
  inFlight: number;
  commands: string[];
}

interface Handle {
  section: ChildSection;
  worker: Worker;
  status: ChildStatus;
  pending: Set<number>;
  outbox: AlertDelivery[];
  seq: number;
  lastPong: number;
  ping: number;
  ready: PromiseWithResolvers<void>;
  stopped: PromiseWithResolvers<void>;
}

const WORKER_URL = new URL("../workers/child.ts", import.meta.url);

/** Builds what a worker needs from its section. */
export function childSettings(
  section: ChildSection,
  logFormat: LogFormat,
  identity: SupervisorOptions["identity"],
  configPath: string,
  checkOnly: boolean,
): ChildSettings {
  const { child } = section;
  return {
    child: section.name,
    handlerUrl: pathToFileURL(child.handlerPath).href,
    processType: child.processType,
    childConfig: child.ini,
    logFile: join(child.logDirectory, logFileName(child)),
    logDirectory: child.logDirectory,
    logLevel: child.logLevel,
    logFormat,
    print2stdout: child.print2stdout,
    verbose: section.verbose,
    taskTimeout: section.taskTimeout,
    maxComplete: section.maxComplete,
    maxFrac: section.maxFrac,
    recipients: section.recipients,
    watch: {
      warnThr: section.warnThr,
      recipients: section.recipients,
      warnDelay: section.warnDelay,
      maxWarn: section.maxWarn,
      hostname: identity.hostname,
      username: identity.username,
      config: configPath,
    },
    identity: { hostname: identity.hostname, pid: identity.pid },
    checkOnly,
  };
}

/** Runs every child of a listener config. */
export class Supervisor {
  #o: SupervisorOptions;
  #children = new Map<string, Handle>();
  #pinger: ReturnType<typeof setInterval> | undefined;

  constructor(options: SupervisorOptions) {
    this.#o = options;
  }

  /**
   * Starts every child and waits until each has loaded its handler.
   *
   * @throws {ChildStartError} for the first child that fails; the others
   * are stopped
   */
  async start(): Promise<void> {
    for (const section of this.#o.config.sections) this.#spawn(section);
    const timeout = (this.#o.startTimeout ?? 30) * 1000;
    try {
      await Promise.all(
        [...this.#children.values()].map((h) =>
          Promise.race([
            h.ready.promise,
            new Promise<never>((_, reject) =>
              setTimeout(
                () =>
                  reject(
                    new ChildStartError(
                      h.section.name,
                      `not ready after ${timeout / 1000} s`,
                    ),
                  ),
                timeout,
              )
            ),
          ])
        ),
      );
    } catch (error) {
      this.#terminateAll();
      throw error;
    }
    const interval = (this.#o.pingInterval ?? 1) * 1000;
    this.#pinger = setInterval(() => this.#watchdog(), interval);
  }

  /** Hands an alert to its child. */
  deliver(delivery: Delivery): void {
    const h = this.#children.get(delivery.child);
    if (!h || h.status.state !== "ready") {
      this.#o.log.event("error", "alert_undelivered", {
        child: delivery.child,
        node: delivery.node,
        id: delivery.id,
        reason: `child is ${h?.status.state ?? "unknown"}`,
      });
      return;
    }
    const seq = ++h.seq;
    h.pending.add(seq);
    h.status.inFlight = h.pending.size;
    const { node, id, alert, t0 } = delivery;
    // Alerts routed in the same tick (one burst off the socket) share a message.
    if (h.outbox.length === 0) queueMicrotask(() => this.#sendOutbox(h));
    h.outbox.push({ seq, node, id, alert, t0 });
  }

  #sendOutbox(h: Handle): void {
    const alerts = h.outbox;
    h.outbox = [];
    if (alerts.length > 0 && h.status.state === "ready") this.#post(h, { type: "alerts", alerts });
  }

  /** True when no alert is in flight and every queue is empty. */
  isIdle(): boolean {
    for (const h of this.#children.values()) {
      if (h.pending.size > 0 || h.status.queue > 0) return false;
    }
    return true;
  }

  status(): ChildStatus[] {
    return [...this.#children.values()].map((h) => ({ ...h.status }));
  }

  /**
   * Asks every child to finish what it holds and stop; terminates those
   * that have not stopped by the deadline.
   */
  async shutdown(deadlineSeconds = 10): Promise<void> {
    clearInterval(this.#pinger);
    this.#pinger = undefined;
    const live = [...this.#children.values()].filter((h) =>
      h.status.state === "ready" || h.status.state === "starting"
    );
    for (const h of live) {
      h.status.state = "stopping";
      this.#post(h, { type: "shutdown" });
    }
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      Promise.all(live.map((h) => h.stopped.promise)),
      new Promise<void>((resolve) => timer = setTimeout(resolve, deadlineSeconds * 1000)),
    ]);
    clearTimeout(timer);
    for (const h of live) {
      if (h.status.state !== "stopped") {
        this.#o.log.event("warning", "child_killed", {
          child: h.section.name,
          reason: `did not stop within ${deadlineSeconds} s`,
        });
      }
    }
    this.#terminateAll();
  }

  #spawn(section: ChildSection): void {
    const worker = new Worker(WORKER_URL, {
      type: "module",
      name: section.name,
      deno: { permissions: childPermissions(section) },
    });
    const h: Handle = {
      section,
      worker,
      status: {
        child: section.name,
        state: "starting",
        queue: 0,
        next: null,
        inFlight: 0,
        commands: [],
      },
      pending: new Set(),
      outbox: [],
      seq: 0,
      lastPong: performance.now(),
      ping: 0,
      ready: Promise.withResolvers(),
      stopped: Promise.withResolvers(),
    };
    // Keep unhandled rejections of these out of the way; callers race them.
    h.ready.promise.catch(() => {});
    this.#children.set(section.name, h);
    worker.onmessage = (event: MessageEvent<unknown>) => {
      const message = readFromChild(event.data);
      if (message) this.#receive(h, message);
      else {
        this.#o.log.event("error", "bad_message", {
          child: section.name,
          data: JSON.stringify(event.data) ?? String(event.data),
        });
      }
    };
    worker.onerror = (event: ErrorEvent) => {
      event.preventDefault();
      this.#died(h, event.message || String(event.error));
    };
    worker.onmessageerror = () => this.#died(h, "a message from the worker could not be read");
    this.#post(h, {
      type: "init",
      settings: childSettings(
        section,
        this.#o.logFormat,
        this.#o.identity,
        this.#o.config.path,
        this.#o.checkOnly ?? false,
      ),
    });
  }

  #receive(h: Handle, message: FromChild): void {
    const name = h.section.name;
    switch (message.type) {
      case "ready":
        h.status.state = "ready";
        h.status.commands = message.commands;
        h.lastPong = performance.now();
        h.ready.resolve();
        return;
      case "init_failed":
        h.status.state = "dead";
        h.ready.reject(new ChildStartError(name, message.message));
        return;
      case "fatal":
        this.#died(h, message.message);
        return;
      case "acks":
        for (const ack of message.acks) {
          h.pending.delete(ack.seq);
          this.#o.onAck?.(ack.ok);
        }
        h.status.inFlight = h.pending.size;
        h.status.queue = message.queue;
        h.status.next = message.next;
        this.#o.onChange?.();
        return;
      case "state":
        h.status.queue = message.queue;
        h.status.next = message.next;
        this.#o.onChange?.();
        return;
      case "log":
        this.#o.writeLine(message.line);
        return;
      case "notify":
        this.#o.notify(
          h.section,
          message.subject,
          message.body,
          message.recipients,
        );
        return;
      case "publish":
        this.#o.publish(name, message.node, message.payload);
        return;
      case "pong":
        h.lastPong = performance.now();
        return;
      case "stopped":
        h.status.state = "stopped";
        h.stopped.resolve();
        return;
      default:
        unreachable(message);
    }
  }

  #post(h: Handle, message: ToChild): void {
    h.worker.postMessage(message);
  }

  #watchdog(): void {
    const now = performance.now();
    for (const h of this.#children.values()) {
      if (h.status.state !== "ready") continue;
      const limit = (h.section.taskTimeout + (this.#o.hangGrace ?? 5)) * 1000;
      if (now - h.lastPong > limit) {
        this.#died(
          h,
          `no answer for ${
            Math.round((now - h.lastPong) / 1000)
          } s (a task is hung); worker terminated`,
        );
        continue;
      }
      this.#post(h, { type: "ping", n: ++h.ping });
    }
  }

  #died(h: Handle, reason: string): void {
    if (h.status.state === "dead" || h.status.state === "stopped") return;
    const starting = h.status.state === "starting";
    h.status.state = "dead";
    h.worker.terminate();
    if (starting) {
      h.ready.reject(new ChildStartError(h.section.name, reason));
      return;
    }
    h.stopped.resolve();
    const error = new ChildDiedError(h.section.name, reason);
    this.#o.log.event("error", "child_died", {
      child: h.section.name,
      error: reason,
      in_flight: h.pending.size,
      queue: h.status.queue,
    }, error.message);
    this.#o.onFatal(error);
  }

  #terminateAll(): void {
    clearInterval(this.#pinger);
    this.#pinger = undefined;
    for (const h of this.#children.values()) {
      if (h.status.state !== "dead") h.worker.terminate();
      if (h.status.state !== "dead") h.status.state = "stopped";
    }
  }
}
