/**
 * The supervisor: one Web Worker per listener section, started with its
 * own permissions, fed journaled alerts in order, watched for death and
 * hangs, restarted from its snapshot and journal, given up on after too
 * many deaths.
 *
 * @module
 */

import { join } from "node:path";
import { pathToFileURL } from "node:url";
import type { JsonObject } from "../core/alert.ts";
import { ChildLink, type ChildStatus } from "./child_link.ts";
import { systemClock } from "../queue/clock.ts";
import { type ChildSection, type ListenerConfig, logFileName } from "../config/config.ts";
import type { ChildLog } from "../core/log.ts";
import type { LogFormat } from "../core/log.ts";
import type { ChildSettings } from "../child/messages.ts";
import type { Delivery } from "./router.ts";

export type { ChildStatus } from "./child_link.ts";

/** A child could not start: a start-up failure (exit 78). */
export class ChildStartError extends Error {
  readonly child: string;

  constructor(child: string, message: string, options?: ErrorOptions) {
    super(`Child [${child}] could not start: ${message}`, options);
    this.name = "ChildStartError";
    this.child = child;
  }
}

/** A child died and its section says the listener must stop. */
export class ChildDiedError extends Error {
  readonly child: string;

  constructor(child: string, message: string, options?: ErrorOptions) {
    super(`Child [${child}] died: ${message}`, options);
    this.name = "ChildDiedError";
    this.child = child;
  }
}

/** What a command sent to children answered, per child. */
export interface CommandOutcome {
  child: string;
  ok: boolean;
  output: string | null;
  error: string | null;
}

/** Options for {@linkcode Supervisor}. */
export interface SupervisorOptions {
  config: ListenerConfig;
  /** Where journals and snapshots live (one folder per child below it). */
  stateDir: string;
  logFormat: LogFormat;
  /** The listener's own log. */
  log: ChildLog;
  /** Where child log lines for stdout go. */
  writeLine(line: string): void;
  notify(section: ChildSection, subject: string, body: string, recipients: string[]): void;
  publish(child: string, node: string, payload: JsonObject): void;
  /** A child died and its section says the listener must stop. */
  onFatal(error: ChildDiedError): void;
  /** Acks or queue state changed (for `--exit-when-idle`). */
  onChange?(): void;
  /** A child applied (ok) or refused an alert. */
  onAck?(ok: boolean): void;
  /** An alert with this node and item id is on disk in a journal. */
  onJournaled?(node: string, id: string): void;
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

/** Builds what a worker needs from its section. */
export function childSettings(
  section: ChildSection,
  logFormat: LogFormat,
  identity: SupervisorOptions["identity"],
  configPath: string,
  checkOnly: boolean,
  stateDir: string,
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
    identity: { ...identity, config: configPath },
    checkOnly,
    stateDir,
    checkpointEvery: section.checkpointEvery,
    checkpointInterval: section.checkpointInterval,
  };
}

/** Runs every child of a listener config. */
export class Supervisor {
  #o: SupervisorOptions;
  #links = new Map<string, ChildLink>();
  #deaths = new Map<ChildLink, number[]>();
  #starting = new Map<ChildLink, PromiseWithResolvers<void>>();
  /** token -> what to do with the answer of a command sent with it */
  #replies = new Map<string, (ok: boolean, output: string | null, error: string | null) => void>();
  #pinger: ReturnType<typeof setInterval> | undefined;
  #restartTimers = new Map<ChildLink, ReturnType<typeof setTimeout>>();
  #stopping = false;

  constructor(options: SupervisorOptions) {
    this.#o = options;
  }

  /**
   * Opens every child's journal and starts every child, waiting until each
   * has loaded its handler and recovered its queue.
   *
   * @returns the (node, id) of every alert the journals hold
   * @throws {ChildStartError} for the first child that fails; the others
   * are stopped
   */
  async start(): Promise<[string, string][]> {
    const o = this.#o;
    const ids: [string, string][] = [];
    for (const section of o.config.sections) {
      const link = new ChildLink(
        section,
        o.stateDir,
        (dir) =>
          childSettings(section, o.logFormat, o.identity, o.config.path, o.checkOnly ?? false, dir),
        this.#events(),
        o.log,
      );
      this.#links.set(section.name, link);
      if (!o.checkOnly) {
        for (const r of (await link.openJournal()).records) {
          if (r.id !== null) ids.push([r.node, r.id]);
        }
      }
    }
    const timeout = (o.startTimeout ?? 30) * 1000;
    try {
      await Promise.all([...this.#links.values()].map((link) => {
        const ready = Promise.withResolvers<void>();
        this.#starting.set(link, ready);
        link.spawn(o.checkOnly);
        const timer = setTimeout(
          () =>
            ready.reject(
              new ChildStartError(link.section.name, `not ready after ${timeout / 1000} s`),
            ),
          timeout,
        );
        return ready.promise.finally(() => clearTimeout(timer));
      }));
    } catch (error) {
      await this.#closeAll();
      throw error;
    } finally {
      this.#starting.clear();
    }
    this.#pinger = setInterval(() => this.#watchdog(), (o.pingInterval ?? 1) * 1000);
    return ids;
  }

  /** Journals an alert for its child and hands it over. */
  deliver(delivery: Delivery, token: string | null = null): void {
    const link = this.#links.get(delivery.child);
    if (!link) {
      this.#o.log.event("error", "alert_undelivered", {
        child: delivery.child,
        reason: "no such child",
      });
      return;
    }
    const { node, id, alert, t0 } = delivery;
    link.deliver({ node, id, text: delivery.text ?? JSON.stringify(alert), t0, token });
  }

  /**
   * Sends a command to one child or all; resolves with each child's
   * answer (its output, or why it was refused or failed).
   */
  command(
    child: string | undefined,
    name: string,
    kwargs: JsonObject,
    timeoutSeconds = 30,
  ): Promise<CommandOutcome[]> {
    const links = child === undefined
      ? [...this.#links.values()]
      : [this.#links.get(child)].filter((l) => l !== undefined);
    if (links.length === 0) {
      return Promise.resolve([{
        child: child ?? "",
        ok: false,
        output: null,
        error: `no child named "${child}"`,
      }]);
    }
    const t0 = systemClock.now();
    return Promise.all(links.map((link) => {
      const token = crypto.randomUUID();
      const { promise, resolve } = Promise.withResolvers<CommandOutcome>();
      const timer = setTimeout(() => {
        this.#replies.delete(token);
        resolve({
          child: link.section.name,
          ok: false,
          output: null,
          error: `no answer within ${timeoutSeconds} s`,
        });
      }, timeoutSeconds * 1000);
      this.#replies.set(token, (ok, output, error) => {
        clearTimeout(timer);
        this.#replies.delete(token);
        resolve({ child: link.section.name, ok, output, error });
      });
      link.deliver({
        node: "ctl",
        id: null,
        text: JSON.stringify({ uid: "command", alert_type: name, object: kwargs }),
        t0,
        token,
      });
      return promise;
    }));
  }

  /** True when no alert is in flight and every queue is empty. */
  isIdle(): boolean {
    for (const link of this.#links.values()) {
      const s = link.refresh();
      if (s.inFlight > 0 || s.queue > 0) return false;
    }
    return true;
  }

  status(): ChildStatus[] {
    return [...this.#links.values()].map((link) => ({ ...link.refresh() }));
  }

  /**
   * Asks every child to finish what it holds, checkpoint and stop; kills
   * those that have not stopped by the deadline.
   */
  async shutdown(deadlineSeconds = 10): Promise<void> {
    this.#stopping = true;
    clearInterval(this.#pinger);
    let timer: ReturnType<typeof setTimeout> | undefined;
    const links = [...this.#links.values()];
    const stopped = Promise.all(links.map((link) => link.requestStop()));
    await Promise.race([
      stopped,
      new Promise<void>((r) => timer = setTimeout(r, deadlineSeconds * 1000)),
    ]);
    clearTimeout(timer);
    for (const link of links) {
      if (link.status.state === "stopping") {
        this.#o.log.event("warning", "child_killed", {
          child: link.section.name,
          reason: `did not stop within ${deadlineSeconds} s`,
        });
      }
    }
    await this.#closeAll();
  }

  async #closeAll(): Promise<void> {
    clearInterval(this.#pinger);
    for (const timer of this.#restartTimers.values()) clearTimeout(timer);
    for (const link of this.#links.values()) await link.close();
  }

  #events() {
    const o = this.#o;
    return {
      ready: (link: ChildLink) => {
        this.#starting.get(link)?.resolve();
        clearTimeout(this.#restartTimers.get(link));
        o.onChange?.();
      },
      startFailed: (link: ChildLink, message: string) => {
        const starting = this.#starting.get(link);
        if (starting) starting.reject(new ChildStartError(link.section.name, message));
        else this.#died(link, `restart failed: ${message}`);
      },
      died: (link: ChildLink, reason: string) => this.#died(link, reason),
      ack: (
        _link: ChildLink,
        _seq: number,
        ok: boolean,
        reason: string | null,
        token: string | null,
      ) => {
        o.onAck?.(ok);
        // A command refused before it ran answers here.
        if (token && !ok) this.#replies.get(token)?.(false, null, reason);
      },
      changed: () => o.onChange?.(),
      journaled: (node: string, id: string) => o.onJournaled?.(node, id),
      line: (text: string) => o.writeLine(text),
      notify: o.notify,
      publish: o.publish,
      commandResult: (token: string, ok: boolean, output: string | null, error: string | null) =>
        this.#replies.get(token)?.(ok, output, error),
    };
  }

  #died(link: ChildLink, reason: string): void {
    const o = this.#o;
    const section = link.section;
    o.log.event("error", "child_died", {
      child: section.name,
      error: reason,
      in_flight: link.refresh().inFlight,
      queue: link.status.queue,
    }, `Child [${section.name}] died: ${reason}`);
    if (this.#stopping) return;
    if (section.onChildDeath === "exit") {
      o.onFatal(new ChildDiedError(section.name, reason));
      return;
    }
    const now = performance.now();
    const recent = (this.#deaths.get(link) ?? []).filter((t) =>
      now - t < section.restartWindow * 1000
    );
    recent.push(now);
    this.#deaths.set(link, recent);
    if (recent.length > section.maxRestarts) {
      link.status.state = "given_up";
      const message =
        `Child [${section.name}] died ${recent.length} times within ${section.restartWindow} s; ` +
        "not restarting it (its alerts are still journaled). Fix the cause and restart the listener.";
      o.log.event(
        "error",
        "child_given_up",
        { child: section.name, deaths: recent.length },
        message,
      );
      if (section.recipients.length > 0) {
        o.notify(
          section,
          `CRITICAL: lvalertMP child ${section.name} given up on ${o.identity.hostname}`,
          message + "\n",
          section.recipients,
        );
      }
      o.onChange?.();
      return;
    }
    o.log.event("warning", "child_restarting", {
      child: section.name,
      deaths: recent.length,
      of: section.maxRestarts,
    });
    link.status.state = "restarting";
    link.spawn();
    // A restart that never gets ready (it hangs recovering) counts as a death.
    const timeout = o.startTimeout ?? 30;
    const timer = setTimeout(() => {
      if (link.status.state === "restarting") link.die(`not ready ${timeout} s after a restart`);
    }, timeout * 1000);
    this.#restartTimers.set(link, timer);
  }

  #watchdog(): void {
    const now = performance.now();
    for (const link of this.#links.values()) {
      if (link.status.state !== "ready") continue;
      const limit = (link.section.taskTimeout + (this.#o.hangGrace ?? 5)) * 1000;
      if (now - link.lastPong > limit) {
        link.die(
          `no answer for ${
            Math.round((now - link.lastPong) / 1000)
          } s (a task is hung); worker terminated`,
        );
        continue;
      }
      link.sendPing();
    }
  }
}
