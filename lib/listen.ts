/**
 * The listener: config -> children -> router -> source, and a clean stop.
 *
 * @module
 */

import type { JsonObject } from "./alert.ts";
import type { ListenArgs } from "./cli.ts";
import { type ListenerConfig, loadListenerConfig } from "./config.ts";
import { ConfigError } from "./config_error.ts";
import { Logger, stdoutSink } from "./log.ts";
import { sendMail } from "./notifier.ts";
import { childPermissions, describePermissions } from "./permissions.ts";
import { replayFile } from "./replay.ts";
import { Router } from "./router.ts";
import {
  type ChildDiedError,
  ChildStartError,
  Supervisor,
} from "./supervisor.ts";

/** How a listener run ended; main turns it into an exit code. */
export type ListenOutcome =
  | { ok: true }
  | {
    ok: false;
    kind: "config" | "runtime" | "unavailable" | "auth";
    error: Error;
  };

function identity() {
  let hostname = "localhost";
  try {
    hostname = Deno.hostname();
  } catch {
    // Without sys permission the name is only cosmetic.
  }
  const username = Deno.env.get("USER") ?? Deno.env.get("LOGNAME") ??
    "unknown";
  return { hostname, username, pid: Deno.pid };
}

function summary(config: ListenerConfig): string {
  const lines = [`config: ${config.path}`];
  for (const s of config.sections) {
    lines.push(
      `[${s.name}] nodes: ${s.nodes.join(", ")}`,
      `  handler: ${s.child.processType} (${s.child.handlerPath}), loaded`,
      `  childConfig: ${s.child.path}; log: ${s.child.logDirectory}`,
      `  permissions: ${describePermissions(childPermissions(s))}`,
    );
  }
  const nodes = config.sections.reduce((n, s) => n + s.nodes.length, 0);
  lines.push(`OK: ${config.sections.length} children, ${nodes} nodes`);
  return lines.join("\n");
}

/**
 * Runs the listener until the source ends (with `--exit-when-idle`), a
 * signal arrives, or a child dies.
 */
export async function listen(args: ListenArgs): Promise<ListenOutcome> {
  const log = new Logger({
    child: null,
    format: args.logFormat,
    level: args.verbose || args.debug ? 10 : 20,
    sinks: [stdoutSink],
  });
  let config: ListenerConfig;
  try {
    config = await loadListenerConfig(args.configFile!);
  } catch (error) {
    if (error instanceof ConfigError) {
      return { ok: false, kind: "config", error };
    }
    throw error;
  }
  for (const warning of config.warnings) {
    log.event("warning", "config_warning", {}, warning);
  }
  if (!args.replay && !args.checkConfig) {
    return {
      ok: false,
      kind: "unavailable",
      error: new Error("No XMPP source in this build: use --replay FILE"),
    };
  }

  const stop = new AbortController();
  /** Mail being sent; a stop waits for it. */
  const mail = new Set<Promise<void>>();
  let fatal: ChildDiedError | undefined;
  const idle = Promise.withResolvers<void>();
  let sourceDone = false;
  let applied = 0;
  let refused = 0;
  const checkIdle = () => {
    if (args.exitWhenIdle && sourceDone && supervisor.isIdle()) idle.resolve();
  };
  const supervisor = new Supervisor({
    config,
    logFormat: args.logFormat,
    log,
    writeLine: stdoutSink,
    identity: identity(),
    checkOnly: args.checkConfig,
    notify: (section, subject, body, recipients) => {
      log.event("info", "notify", { child: section.name, subject, recipients });
      const sending = sendMail(section.mailCommand, subject, recipients, body)
        .then((r) => {
          if (!r.ok) {
            log.event("warning", "notify_failed", {
              child: section.name,
              subject,
              reason: r.reason,
            }, r.reason);
          }
        }).finally(() => mail.delete(sending));
      mail.add(sending);
    },
    publish: (child: string, node: string, payload: JsonObject) => {
      // Without a server, what would be published is logged instead.
      log.event("info", "publish", { child, node, payload });
    },
    onFatal: (error) => {
      fatal ??= error;
      stop.abort();
    },
    onChange: checkIdle,
    onAck: (ok) => ok ? applied++ : refused++,
  });

  try {
    await supervisor.start();
  } catch (error) {
    if (error instanceof ChildStartError) {
      return { ok: false, kind: "config", error };
    }
    throw error;
  }
  if (args.checkConfig) {
    await supervisor.shutdown(5);
    stdoutSink(summary(config));
    return { ok: true };
  }

  const onSignal = () => stop.abort();
  Deno.addSignalListener("SIGINT", onSignal);
  Deno.addSignalListener("SIGTERM", onSignal);
  const router = new Router({
    owners: config.owners,
    log,
    deliver: (d) => supervisor.deliver(d),
    ...(args.show
      ? {
        show: (child: string, text: string) => stdoutSink(`${child} < ${text}`),
      }
      : {}),
  });
  try {
    log.event("info", "listening", {
      source: `replay ${args.replay}`,
      children: config.sections.map((s) => s.name),
    });
    try {
      for await (
        const line of replayFile(args.replay!, {
          speed: args.speed,
          signal: stop.signal,
        })
      ) {
        const where = `${args.replay}:${line.line}`;
        if (!line.ok) router.reject(where, line.reason);
        else {
          router.route({
            node: line.node,
            id: line.id,
            payload: line.payload,
            t0: (performance.timeOrigin + performance.now()) / 1000,
            where,
          });
        }
      }
    } catch (error) {
      if (!(error instanceof Deno.errors.NotFound)) throw error;
      return {
        ok: false,
        kind: "config",
        error: new ConfigError(args.replay!, "Replay file not found", {
          cause: error,
        }),
      };
    }
    sourceDone = true;
    log.event("info", "source_done", { source: `replay ${args.replay}` });
    checkIdle();
    const stopped = new Promise<void>((resolve) => {
      if (stop.signal.aborted) resolve();
      stop.signal.addEventListener("abort", () => resolve(), { once: true });
    });
    await Promise.race([idle.promise, stopped]);
  } finally {
    Deno.removeSignalListener("SIGINT", onSignal);
    Deno.removeSignalListener("SIGTERM", onSignal);
    await supervisor.shutdown();
    await Promise.all(mail);
    const c = router.counts;
    log.event("info", "summary", {
      ...c,
      applied,
      rejected: c.rejected + refused,
      rejected_by_child: refused,
    });
  }
  if (fatal) return { ok: false, kind: "runtime", error: fatal };
  return { ok: true };
}
