/**
 * The supervisor: one Web Worker per listener section, started with its
 * own permissions, fed journaled alerts in order, watched for death and
 * hangs, restarted from its snapshot and journal by its restart policy.
 * What happens to children is announced on the {@linkcode ChildBus}
 * (`events`).
 *
 * @module
 */

import { pathToFileURL } from "node:url";
import type { JsonObject } from "../core/alert.ts";
import type { ChildLog, LogFormat } from "../core/log.ts";
import type { ChildSection, ListenerConfig } from "../config/config.ts";
import { childPaths } from "../config/permissions.ts";
import { openCommandFolder } from "../child/command_files.ts";
import { VERSION } from "../core/version.ts";
import type { GraceDbAuth } from "../gracedb/auth.ts";
import { systemClock } from "../queue/clock.ts";
import type { ChildSettings } from "../child/messages.ts";
import { ChildBus, ChildDiedError, ChildStartError } from "./child_events.ts";
import { ChildLink, type ChildStatus } from "./child_link.ts";
import { type CommandOutcome, CommandReplies } from "./command_replies.ts";
import { RestartPolicy } from "./restart_policy.ts";
import type { Delivery } from "./router.ts";

export { ChildDiedError, ChildStartError } from "./child_events.ts";
export type { ChildStatus } from "./child_link.ts";
export type { CommandOutcome } from "./command_replies.ts";

/** Where the listener runs, for worker settings and messages to people. */
export interface Identity {
  hostname: string;
  username: string;
  pid: number;
}

/** Options for {@linkcode Supervisor}. */
export interface SupervisorOptions {
  config: ListenerConfig;
  /** Where journals and snapshots live (one folder per child below it). */
  stateDir: string;
  logFormat: LogFormat;
  /** The listener's own log. */
  log: ChildLog;
  identity: Identity;
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
  /** Seconds children may take to stop before they are terminated. @default {30} */
  stopTimeout?: number;
  /** GraceDB credentials per child (found by main). */
  gracedbAuth?: ReadonlyMap<string, GraceDbAuth>;
}

/** What {@linkcode childSettings} needs besides the section. */
export interface SettingsContext {
  logFormat: LogFormat;
  identity: Identity;
  configPath: string;
  checkOnly: boolean;
  /** The child's state folder. */
  stateDir: string;
  /** GraceDB credentials for the child, when its childConfig names a GraceDB. */
  gracedbAuth: GraceDbAuth | undefined;
}

/** Builds what a worker needs from its section. */
export function childSettings(section: ChildSection, c: SettingsContext): ChildSettings {
  const { child } = section;
  const { logFormat, identity, configPath, checkOnly, stateDir } = c;
  return {
    child: section.name,
    handlerUrl: pathToFileURL(child.handlerPath).href,
    processType: child.processType,
    childConfig: child.ini,
    ...childPaths(child),
    logDirectory: child.logDirectory,
    networkCommands: section.networkCommands,
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
    version: VERSION,
    quarantined: [],
    heartbeatName: child.heartbeatName,
    gracedb: child.gracedb === undefined
      ? null
      : { url: child.gracedb, auth: c.gracedbAuth ?? { kind: "none" } },
  };
}

/** Runs every child of a listener config. */
export class Supervisor implements AsyncDisposable {
  /** What happens to children. */
  readonly events: ChildBus = new ChildBus();
  #o: SupervisorOptions;
  #links = new Map<string, ChildLink>();
  #policies = new Map<string, RestartPolicy>();
  #starting = new Map<string, PromiseWithResolvers<void>>();
  #replies = new CommandReplies();
  #pinger: ReturnType<typeof setInterval> | undefined;
  #restartTimers = new Map<string, ReturnType<typeof setTimeout>>();
  #stopping = false;
  /** The alert each child was applying when it last died (0: none). */
  #suspects = new Map<string, number>();

  constructor(options: SupervisorOptions) {
    this.#o = options;
    const o = options;
    for (const section of o.config.sections) {
      const settings = (stateDir: string) =>
        childSettings(section, {
          logFormat: o.logFormat,
          identity: o.identity,
          configPath: o.config.path,
          checkOnly: o.checkOnly ?? false,
          stateDir,
          gracedbAuth: o.gracedbAuth?.get(section.name),
        });
      const link = new ChildLink({
        section,
        stateDir: o.stateDir,
        maxHeld: section.maxHeld,
        settings,
        bus: this.events,
        log: o.log,
      });
      this.#links.set(section.name, link);
      this.#policies.set(section.name, new RestartPolicy(section));
    }
    this.events.on("ready", ({ child }) => {
      this.#starting.get(child)?.resolve();
      clearTimeout(this.#restartTimers.get(child));
    });
    this.events.on("start_failed", ({ child, message }) => {
      const starting = this.#starting.get(child);
      if (starting) starting.reject(new ChildStartError(child, message));
      else void this.#died(child, `restart failed: ${message}`);
    });
    this.events.on("died", ({ child, reason }) => void this.#died(child, reason));
    // A command refused before it ran answers through its ack.
    this.events.on("ack", ({ ok, reason, token }) => {
      if (token && !ok) this.#replies.settle(token, false, null, reason);
    });
    this.events.on(
      "command_result",
      ({ token, ok, output, error }) => this.#replies.settle(token, ok, output, error),
    );
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
    if (!o.checkOnly) {
      // The workers may write only inside these; the listener makes them.
      for (const { child } of o.config.sections) {
        const paths = childPaths(child);
        await Deno.mkdir(child.logDirectory, { recursive: true });
        await openCommandFolder(paths.commandFolder);
        await Deno.mkdir(paths.filesDirectory, { recursive: true, mode: 0o700 });
      }
      for (const link of this.#links.values()) {
        for (const r of (await link.openJournal()).records) {
          if (r.id !== null) ids.push([r.node, r.id]);
        }
      }
    }
    const timeout = (o.startTimeout ?? 30) * 1000;
    try {
      await Promise.all([...this.#links.values()].map((link) => {
        const child = link.section.name;
        const ready = Promise.withResolvers<void>();
        this.#starting.set(child, ready);
        link.spawn(o.checkOnly);
        const timer = setTimeout(
          () => ready.reject(new ChildStartError(child, `not ready after ${timeout / 1000} s`)),
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
    link.deliver(
      { node, id, text: delivery.text ?? JSON.stringify(alert), t0, token },
      delivery.onJournaled,
    );
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
    const text = JSON.stringify({ uid: "command", alert_type: name, object: kwargs });
    return Promise.all(links.map((link) => {
      const token = crypto.randomUUID();
      const answer = this.#replies.expect(token, link.section.name, timeoutSeconds);
      link.deliver({ node: "ctl", id: null, text, t0, token });
      return answer;
    }));
  }

  /** Whether a child takes more alerts (its journal keeps up). */
  accepts(child: string): boolean {
    return this.#links.get(child)?.accepting ?? false;
  }

  /** Whether any child holds more than `limit` alerts not yet applied (a replay waits then). */
  busy(limit: number): boolean {
    for (const link of this.#links.values()) if (link.status().inFlight > limit) return true;
    return false;
  }

  /** Clears the loss reports of one child or all; returns how many were cleared. */
  acknowledge(child?: string): number {
    let n = 0;
    for (const link of this.#links.values()) {
      if (child === undefined || link.section.name === child) n += link.acknowledge();
    }
    return n;
  }

  /** True when no alert is in flight and every queue is empty. */
  isIdle(): boolean {
    for (const link of this.#links.values()) {
      // A child given up on holds its alerts in its journal, for the next start.
      if (link.state === "given_up") continue;
      const s = link.status();
      if (s.inFlight > 0 || s.queue > 0) return false;
    }
    return true;
  }

  /** What the listener knows of each child. */
  status(): ChildStatus[] {
    return [...this.#links.values()].map((link) => link.status());
  }

  /**
   * Asks every child to finish what it holds, checkpoint and stop; kills
   * those that have not stopped by the deadline (their journals still hold
   * what they had not applied).
   */
  async shutdown(deadlineSeconds = this.#o.stopTimeout ?? 30): Promise<void> {
    this.#stopping = true;
    clearInterval(this.#pinger);
    const links = [...this.#links.values()];
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      Promise.all(links.map((link) => link.requestStop())),
      new Promise<void>((r) => timer = setTimeout(r, deadlineSeconds * 1000)),
    ]);
    clearTimeout(timer);
    for (const link of links) {
      if (link.state !== "stopping") continue;
      const s = link.status();
      this.#o.log.event(
        "warning",
        "child_killed",
        {
          child: link.section.name,
          in_flight: s.inFlight,
          reason: `did not stop within ${deadlineSeconds} s`,
        },
        `Child [${link.section.name}] did not stop within ${deadlineSeconds} s and was ` +
          `terminated; its journal keeps the ${s.inFlight} alert(s) it had not applied`,
      );
    }
    this.#replies.cancelAll("the listener is stopping");
    await this.#closeAll();
  }

  /** Shuts down, for `await using`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.shutdown();
  }

  async #closeAll(): Promise<void> {
    clearInterval(this.#pinger);
    for (const timer of this.#restartTimers.values()) clearTimeout(timer);
    for (const link of this.#links.values()) await link.close();
  }

  async #died(child: string, reason: string): Promise<void> {
    const o = this.#o;
    const link = this.#links.get(child)!;
    const section = link.section;
    const s = link.status();
    const suspect = link.suspect();
    o.log.event("error", "child_died", {
      child,
      error: reason,
      in_flight: s.inFlight,
      queue: s.queue,
      applying: suspect || null,
    }, `Child [${child}] died: ${reason}`);
    if (this.#stopping) return;
    // The same alert in hand at two deaths in a row: set it aside, go on without it.
    const last = this.#suspects.get(child);
    this.#suspects.set(child, suspect);
    if (suspect > 0 && suspect === last) {
      this.#suspects.delete(child);
      await link.quarantine(suspect, reason);
    }
    const decision = this.#policies.get(child)!.died();
    if (decision.action === "exit") {
      this.events.emit("fatal", { child, error: new ChildDiedError(child, reason) });
      return;
    }
    if (decision.action === "give_up") {
      link.giveUp();
      const message =
        `Child [${child}] died ${decision.deaths} times within ${section.restartWindow} s; ` +
        "not restarting it (its alerts are still journaled). Fix the cause and restart the listener.";
      o.log.event("error", "child_given_up", { child, deaths: decision.deaths }, message);
      this.events.emit("given_up", { child, deaths: decision.deaths, message });
      return;
    }
    o.log.event("warning", "child_restarting", {
      child,
      deaths: decision.deaths,
      of: section.maxRestarts,
    });
    link.spawn();
    // A restart that never gets ready (it hangs recovering) counts as a death.
    const timeout = o.startTimeout ?? 30;
    this.#restartTimers.set(
      child,
      setTimeout(() => {
        if (link.state === "restarting") link.die(`not ready ${timeout} s after a restart`);
      }, timeout * 1000),
    );
  }

  #watchdog(): void {
    const now = performance.now();
    for (const link of this.#links.values()) {
      if (link.state !== "ready") continue;
      const limit = (link.section.taskTimeout + (this.#o.hangGrace ?? 5)) * 1000;
      if (now - link.lastPong > limit) {
        const silent = Math.round((now - link.lastPong) / 1000);
        link.die(`no answer for ${silent} s (a task is hung); worker terminated`);
        continue;
      }
      link.sendPing();
    }
  }
}
