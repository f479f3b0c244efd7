/**
 * One child, whatever runs it (a Web Worker, or a process of its own):
 * loads its handler, recovers its queue from the snapshot and journal,
 * runs it, checkpoints it, and talks to the listener only through the
 * messages of `messages.ts`, over the transport it is given.
 *
 * @module
 */

import { readAlert } from "../core/alert.ts";
import { fileSink, Logger } from "../core/log.ts";
import { Ini } from "../config/ini.ts";
import { GraceDbClient } from "../gracedb/client.ts";
import { useDoorbell } from "../queue/clock.ts";
import { asHandlerModule } from "./handler.ts";
import {
  type AlertAck,
  type AlertDelivery,
  type ChildSettings,
  type FromChild,
  readToChild,
  type ToChild,
  unreachable,
} from "./messages.ts";
import { ChildReporter } from "./report.ts";
import { ChildRuntime } from "./runtime.ts";
import { ChildState, type Recovery } from "./state.ts";

/** How a child talks to the listener. */
export interface ChildTransport {
  post(message: FromChild): void;
  /** Calls `handler` with each message that arrives (not yet checked). */
  listen(handler: (data: unknown) => void): void;
}

const NOTHING_RECOVERED: Recovery = {
  snapshotSeq: 0,
  previousSeq: 0,
  replayedTo: 0,
  restored: 0,
  replayed: 0,
  problems: [],
};

/** Milliseconds a change of the queue waits to be told, gathering the changes after it. */
const STATE_MS = 10;

/** Runs one child over a transport. */
export class ChildHost {
  #t: ChildTransport;
  #runtime: ChildRuntime | undefined;
  #state: ChildState | undefined;
  #logFile: Deno.FsFile | undefined;
  #started: Promise<boolean> | undefined;
  #delivering = 0;
  #queueState: { queue: number; next: number | null } = { queue: 0, next: null };
  /** Next due tasks and task outcomes, for the status page and metrics (not in a config check). */
  #reporter: ChildReporter | undefined;
  /** Where the journal position being applied is shown to the listener (0: none). */
  #applying: Float64Array | undefined;
  /** Set while a state message is due: one per STATE_MS of task runs, not one per run. */
  #stateTimer: ReturnType<typeof setTimeout> | undefined;

  constructor(transport: ChildTransport) {
    this.#t = transport;
    transport.listen((data) => {
      const read = readToChild(data);
      if (read.ok) return void this.#handle(read.message);
      this.#runtime?.context.log.event("error", "bad_message", {
        reason: read.reason,
        data: JSON.stringify(data)?.slice(0, 500) ?? String(data),
      });
    });
  }

  /** Logs an error no task or alert caught (an unhandled rejection). */
  unhandled(reason: unknown): void {
    const text = reason instanceof Error ? reason.stack ?? reason.message : String(reason);
    this.#runtime?.context.log.event("error", "unhandled_rejection", { error: text }, text);
  }

  async #openLog(settings: ChildSettings): Promise<Logger> {
    const sinks: ((line: string) => void)[] = [];
    // A config check loads and validates; it leaves no files behind.
    if (!settings.checkOnly) {
      this.#logFile = await Deno.open(settings.logFile, {
        append: true,
        create: true,
        mode: 0o640,
      });
      sinks.push(fileSink(this.#logFile));
    }
    if (settings.print2stdout) sinks.push((line) => this.#post({ type: "log", line }));
    return new Logger({
      child: settings.child,
      format: settings.logFormat,
      level: settings.logLevel,
      sinks,
    });
  }

  /** The runtime for these settings, its outlets posting to the listener. */
  #makeRuntime(
    settings: ChildSettings,
    module: Record<string, unknown>,
    log: Logger,
  ): ChildRuntime {
    const post = (m: FromChild) => this.#post(m);
    const config = new Ini(settings.childConfig);
    const handler = asHandlerModule(module, settings.handlerUrl);
    handler.validateConfig?.(config);
    const gracedb = settings.gracedb
      ? new GraceDbClient(settings.gracedb.url, {
        auth: settings.gracedb.auth,
        version: settings.version,
      })
      : undefined;
    return new ChildRuntime({
      child: settings.child,
      handler,
      handlerExports: module,
      config,
      log,
      logDirectory: settings.logDirectory,
      filesDirectory: settings.filesDirectory,
      commandFolder: settings.commandFolder,
      networkCommands: settings.networkCommands,
      recipients: settings.recipients,
      taskTimeout: settings.taskTimeout,
      queue: { maxComplete: settings.maxComplete, maxFrac: settings.maxFrac },
      watch: settings.watch,
      identity: settings.identity,
      heartbeatName: settings.heartbeatName,
      gracedb,
      taskRan: (run) => this.#reporter?.ran(run),
      applying: (seq) => {
        if (this.#applying) this.#applying[0] = seq;
        else post({ type: "marker", seq });
      },
      notify: (subject, body, recipients) =>
        post({ type: "notify", subject, body, recipients: [...recipients] }),
      publish: (node, payload) => post({ type: "publish", node, payload }),
      reply: (token, r) =>
        post({
          type: "command_result",
          token,
          ok: r.ok,
          output: r.ok ? r.output : null,
          error: r.ok ? null : r.error,
        }),
      onChange: (s) => {
        this.#queueState = s;
        this.#state?.changed();
        this.#reporter?.changed();
        // While alerts are being applied, their acks carry the state.
        if (this.#delivering === 0) this.#postState();
      },
    });
  }

  /**
   * Tells the listener the queue's state at most STATE_MS after it
   * changed: a stream of timers makes one message per window, not one per
   * task (the status page and `--exit-when-idle` read it). Any other
   * message goes after the state it may depend on (see `#post`).
   */
  #postState(): void {
    this.#stateTimer ??= setTimeout(() => {
      this.#stateTimer = undefined;
      this.#t.post({ type: "state", ...this.#queueState });
    }, STATE_MS);
  }

  /** Posts a message; a state still due goes first (acks carry it themselves). */
  #post(message: FromChild): void {
    if (this.#stateTimer !== undefined) {
      clearTimeout(this.#stateTimer);
      this.#stateTimer = undefined;
      if (message.type !== "acks") this.#t.post({ type: "state", ...this.#queueState });
    }
    this.#t.post(message);
  }

  async #init(
    settings: ChildSettings,
    applying: SharedArrayBuffer | null,
    doorbell: SharedArrayBuffer | null,
  ): Promise<boolean> {
    if (applying) this.#applying = new Float64Array(applying);
    if (doorbell) useDoorbell(new Int32Array(doorbell));
    try {
      const log = await this.#openLog(settings);
      const rt = this.#makeRuntime(settings, await import(settings.handlerUrl), log);
      this.#runtime = rt;
      let recovery = NOTHING_RECOVERED;
      if (!settings.checkOnly) {
        this.#state = new ChildState({
          dir: settings.stateDir,
          child: settings.child,
          runtime: rt,
          log,
          every: settings.checkpointEvery,
          interval: settings.checkpointInterval,
          skip: settings.quarantined,
          onCheckpoint: (seq, previous, seconds) =>
            this.#post({ type: "checkpointed", seq, previous, seconds }),
        });
        this.#reporter = new ChildReporter({ post: (m) => this.#post(m), queue: rt.queue });
        recovery = await this.#state.recover();
      }
      log.event("info", "child_started", {
        process_type: settings.processType,
        handler: settings.handlerUrl,
        check_only: settings.checkOnly,
      });
      this.#post({
        type: "ready",
        commands: rt.commands.names,
        snapshotSeq: recovery.snapshotSeq,
        replayedTo: recovery.replayedTo,
        problems: recovery.problems,
      });
      return true;
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      this.#post({ type: "init_failed", message });
      return false;
    }
  }

  async #apply(alerts: AlertDelivery[]): Promise<void> {
    this.#delivering++;
    try {
      const results = alerts.map(({ seq, node, id, text, t0, token }) => {
        // The listener checked each text before journaling it; a text that
        // fails here was damaged on the way and is refused, not applied.
        const read = readAlert(text);
        if (!read.ok) {
          return Promise.resolve({ seq, ok: false, reason: read.reason, duplicate: false });
        }
        const meta = { node, id, seq, ...(token ? { token } : {}) };
        return this.#runtime!.deliver(read.alert, t0, meta).then((r): AlertAck => {
          this.#state?.applied();
          const duplicate = !r.ok && !!r.duplicate;
          return { seq, ok: r.ok, reason: r.ok ? null : r.reason, duplicate };
        });
      });
      this.#post({ type: "acks", acks: await Promise.all(results), ...this.#queueState });
    } finally {
      this.#delivering--;
    }
  }

  async #handle(message: ToChild): Promise<void> {
    switch (message.type) {
      case "init":
        this.#started = this.#init(message.settings, message.applying, message.doorbell);
        return;
      case "alerts":
        if (await this.#started) await this.#apply(message.alerts);
        return;
      case "ping":
        this.#post({ type: "pong", n: message.n });
        return;
      case "shutdown":
        // A child still starting finishes that first.
        await this.#started;
        await this.#runtime?.stop();
        await this.#state?.close();
        this.#reporter?.close();
        this.#logFile?.close();
        this.#logFile = undefined;
        this.#post({ type: "stopped" });
        return;
      default:
        unreachable(message);
    }
  }
}
