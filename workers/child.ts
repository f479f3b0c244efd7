/// <reference no-default-lib="true" />
/// <reference lib="deno.worker" />
/**
 * Worker entry: one child. Loads its handler, recovers its queue from the
 * snapshot and journal, runs it, checkpoints it, and talks to the listener
 * only through the messages of `lib/messages.ts`.
 *
 * @module
 */

import { readAlert } from "../lib/core/alert.ts";
import { GraceDbClient } from "../lib/gracedb/client.ts";
import { ChildRuntime } from "../lib/child/runtime.ts";
import { ChildState, type Recovery } from "../lib/child/state.ts";
import { asHandlerModule } from "../lib/child/handler.ts";
import { Ini } from "../lib/config/ini.ts";
import { fileSink, Logger } from "../lib/core/log.ts";
import {
  type AlertAck,
  type AlertDelivery,
  type ChildSettings,
  type FromChild,
  readToChild,
  type ToChild,
  unreachable,
} from "../lib/child/messages.ts";

function post(message: FromChild): void {
  self.postMessage(message);
}

let runtime: ChildRuntime | undefined;
let state: ChildState | undefined;
let logFile: Deno.FsFile | undefined;
let started: Promise<boolean> | undefined;
let delivering = 0;
let queueState: { queue: number; next: number | null } = { queue: 0, next: null };

// A handler that closes its own worker must not vanish silently.
const close = self.close.bind(self);
self.close = () => {
  post({ type: "fatal", message: "the worker closed itself (close() called)" });
  close();
};

self.addEventListener("unhandledrejection", (event) => {
  event.preventDefault();
  const reason = event.reason;
  const text = reason instanceof Error ? reason.stack ?? reason.message : String(reason);
  runtime?.context.log.event("error", "unhandled_rejection", { error: text }, text);
});

async function openLog(settings: ChildSettings): Promise<Logger> {
  const sinks: ((line: string) => void)[] = [];
  // A config check loads and validates; it leaves no files behind.
  if (!settings.checkOnly) {
    await Deno.mkdir(settings.logDirectory, { recursive: true });
    logFile = await Deno.open(settings.logFile, { append: true, create: true, mode: 0o640 });
    sinks.push(fileSink(logFile));
  }
  if (settings.print2stdout) sinks.push((line) => post({ type: "log", line }));
  return new Logger({
    child: settings.child,
    format: settings.logFormat,
    level: settings.logLevel,
    sinks,
  });
}

/** The runtime for these settings, its outlets posting to the listener. */
function makeRuntime(
  settings: ChildSettings,
  module: Record<string, unknown>,
  log: Logger,
): ChildRuntime {
  const config = new Ini(settings.childConfig);
  const handler = asHandlerModule(module, settings.handlerUrl);
  handler.validateConfig?.(config);
  return new ChildRuntime({
    child: settings.child,
    handler,
    handlerExports: module,
    config,
    log,
    logDirectory: settings.logDirectory,
    recipients: settings.recipients,
    taskTimeout: settings.taskTimeout,
    queue: { maxComplete: settings.maxComplete, maxFrac: settings.maxFrac },
    watch: settings.watch,
    identity: settings.identity,
    gracedb: settings.gracedb
      ? new GraceDbClient(settings.gracedb.url, {
        auth: settings.gracedb.auth,
        version: settings.version,
      })
      : undefined,
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
      queueState = s;
      state?.changed();
      // While alerts are being applied, their acks carry the state.
      if (delivering === 0) post({ type: "state", ...s });
    },
  });
}

const NOTHING_RECOVERED: Recovery = {
  snapshotSeq: 0,
  previousSeq: 0,
  replayedTo: 0,
  restored: 0,
  replayed: 0,
  problems: [],
};

async function init(settings: ChildSettings): Promise<boolean> {
  try {
    const log = await openLog(settings);
    const rt = makeRuntime(settings, await import(settings.handlerUrl), log);
    runtime = rt;
    let recovery = NOTHING_RECOVERED;
    if (!settings.checkOnly) {
      state = new ChildState({
        dir: settings.stateDir,
        child: settings.child,
        runtime: rt,
        log,
        every: settings.checkpointEvery,
        interval: settings.checkpointInterval,
        onCheckpoint: (seq, previous) => post({ type: "checkpointed", seq, previous }),
      });
      recovery = await state.recover();
    }
    log.event("info", "child_started", {
      process_type: settings.processType,
      handler: settings.handlerUrl,
      check_only: settings.checkOnly,
    });
    post({
      type: "ready",
      commands: rt.commands.names,
      snapshotSeq: recovery.snapshotSeq,
      replayedTo: recovery.replayedTo,
      problems: recovery.problems,
    });
    return true;
  } catch (error) {
    post({ type: "init_failed", message: error instanceof Error ? error.message : String(error) });
    return false;
  }
}

async function apply(alerts: AlertDelivery[]): Promise<void> {
  delivering++;
  try {
    const results = alerts.map(({ seq, node, id, text, t0, token }) => {
      // The listener checked each text before journaling it; a text that
      // fails here was damaged on the way and is refused, not applied.
      const read = readAlert(text);
      if (!read.ok) {
        return Promise.resolve({ seq, ok: false, reason: read.reason, duplicate: false });
      }
      const meta = { node, id, seq, ...(token ? { token } : {}) };
      return runtime!.deliver(read.alert, t0, meta).then((r): AlertAck => {
        state?.applied();
        return { seq, ok: r.ok, reason: r.ok ? null : r.reason, duplicate: !r.ok && !!r.duplicate };
      });
    });
    post({ type: "acks", acks: await Promise.all(results), ...queueState });
  } finally {
    delivering--;
  }
}

async function handle(message: ToChild): Promise<void> {
  switch (message.type) {
    case "init":
      started = init(message.settings);
      return;
    case "alerts":
      if (await started) await apply(message.alerts);
      return;
    case "ping":
      post({ type: "pong", n: message.n });
      return;
    case "shutdown":
      // A child still starting finishes that first.
      await started;
      await runtime?.stop();
      await state?.close();
      logFile?.close();
      logFile = undefined;
      post({ type: "stopped" });
      return;
    default:
      unreachable(message);
  }
}

self.onmessage = (event: MessageEvent<unknown>) => {
  const read = readToChild(event.data);
  if (!read.ok) {
    runtime?.context.log.event("error", "bad_message", {
      reason: read.reason,
      data: JSON.stringify(event.data)?.slice(0, 500) ?? String(event.data),
    });
    return;
  }
  void handle(read.message);
};
