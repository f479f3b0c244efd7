/**
 * The listener: config -> state folder -> children -> router -> source
 * (XMPP or replay), a control socket, and a clean stop.
 *
 * @module
 */

import { join } from "node:path";
import type { JsonObject } from "../core/alert.ts";
import type { ListenArgs } from "../config/cli.ts";
import { type ListenerConfig, loadListenerConfig } from "../config/config.ts";
import { ConfigError } from "../core/config_error.ts";
import { ControlServer } from "./control.ts";
import { type Credentials, CredentialsError, resolveCredentials } from "../xmpp/credentials.ts";
import { Logger, stdoutSink } from "../core/log.ts";
import { sendMail } from "./notifier.ts";
import { failed, type Outcome } from "../core/outcome.ts";
import { childPermissions, describePermissions } from "../config/permissions.ts";
import { systemClock } from "../queue/clock.ts";
import { replayFile } from "./replay.ts";
import { Router } from "./router.ts";
import { SeenStore } from "../durability/seen_store.ts";
import { defaultStateDir, openStateDir } from "../durability/state_dir.ts";
import { type ChildDiedError, ChildStartError, Supervisor } from "./supervisor.ts";
import { type XmppFailure, XmppSource } from "../xmpp/source.ts";

/** How a listener run ended; main turns it into an exit code. */
export type ListenOutcome = Outcome;

function identity() {
  let hostname = "localhost";
  try {
    hostname = Deno.hostname();
  } catch {
    // Without sys permission the name is only cosmetic.
  }
  const username = Deno.env.get("USER") ?? Deno.env.get("LOGNAME") ?? "unknown";
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

const XMPP_EXIT: Record<XmppFailure["kind"], "auth" | "unavailable" | "runtime"> = {
  auth: "auth",
  tls: "unavailable",
  unavailable: "unavailable",
  missing_nodes: "unavailable",
  conflict: "runtime",
};

/** What a run needs besides the config, read before any child starts. */
interface Setup {
  credentials: Credentials | undefined;
  ca: string | undefined;
  stateDir: string;
  /** Removed at exit (a replay without --state-dir). */
  ephemeral: boolean;
}

async function prepare(args: ListenArgs, config: ListenerConfig): Promise<Setup> {
  const xmpp = !args.replay;
  const credentials = xmpp
    ? await resolveCredentials({
      server: args.server,
      username: args.username,
      password: args.password,
      netrc: args.netrc,
    })
    : undefined;
  let ca: string | undefined;
  if (xmpp && args.caFile) {
    try {
      ca = await Deno.readTextFile(args.caFile);
    } catch (error) {
      throw new ConfigError(args.caFile, `Cannot read the CA file: ${(error as Error).message}`, {
        cause: error,
      });
    }
  }
  // A replay keeps no state between runs unless asked to.
  const ephemeral = !xmpp && args.stateDir === undefined;
  const stateDir = ephemeral
    ? await Deno.makeTempDir({ prefix: "lvalertmp-replay-" })
    : await openStateDir(args.stateDir ?? defaultStateDir(config.path));
  return { credentials, ca, stateDir, ephemeral };
}

/**
 * Runs the listener until the source ends (with `--exit-when-idle`), a
 * signal arrives, or a child or the session dies.
 */
export async function listen(args: ListenArgs): Promise<ListenOutcome> {
  const log = new Logger({
    child: null,
    format: args.logFormat,
    level: args.verbose || args.debug ? 10 : 20,
    sinks: [stdoutSink],
  });
  let config: ListenerConfig;
  let setup: Setup | undefined;
  try {
    config = await loadListenerConfig(args.configFile!);
    for (const warning of config.warnings) log.event("warning", "config_warning", {}, warning);
    if (!args.checkConfig) setup = await prepare(args, config);
  } catch (error) {
    if (error instanceof ConfigError || error instanceof CredentialsError) {
      return failed("config", error);
    }
    throw error;
  }
  if (args.insecureTls && setup?.credentials) {
    log.event(
      "warning",
      "insecure_tls",
      {},
      "--insecure-tls: the server's certificate is NOT verified; anyone on the path can read and forge alerts",
    );
  }
  try {
    return await run(args, config, setup, log);
  } finally {
    if (setup?.ephemeral) await Deno.remove(setup.stateDir, { recursive: true }).catch(() => {});
  }
}

async function run(
  args: ListenArgs,
  config: ListenerConfig,
  setup: Setup | undefined,
  log: Logger,
): Promise<Outcome> {
  const stop = new AbortController();
  let failure: Outcome | undefined;
  const fail = (outcome: Outcome) => {
    failure ??= outcome;
    stop.abort();
  };
  /** Mail being sent; a stop waits for it. */
  const mail = new Set<Promise<void>>();
  const idle = Promise.withResolvers<void>();
  let sourceDone = false;
  let applied = 0;
  let refused = 0;
  let source: XmppSource | undefined;
  const seen = setup
    ? await SeenStore.open(setup.stateDir, {
      onError: (error) => log.event("error", "seen_write_failed", { error: error.message }),
    })
    : undefined;
  const started = Date.now() / 1000;
  const checkIdle = () => {
    if (args.exitWhenIdle && sourceDone && supervisor.isIdle()) idle.resolve();
  };
  const supervisor = new Supervisor({
    config,
    stateDir: setup?.stateDir ?? "",
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
      if (!source) {
        // Without a server, what would be published is logged instead.
        log.event("info", "publish", { child, node, payload });
        return;
      }
      source.publish(node, JSON.stringify(payload)).catch((error) =>
        log.event("warning", "publish_failed", { child, node, error: (error as Error).message })
      );
    },
    onFatal: (error: ChildDiedError) => fail({ ok: false, kind: "runtime", error }),
    onChange: checkIdle,
    onAck: (ok) => ok ? applied++ : refused++,
    onJournaled: (node, id) => seen?.record(node, id),
  });

  let journalIds: [string, string][];
  try {
    journalIds = await supervisor.start();
  } catch (error) {
    await seen?.close();
    if (error instanceof ChildStartError) return failed("config", error);
    throw error;
  }
  if (!setup || !seen) {
    await supervisor.shutdown(5);
    stdoutSink(summary(config));
    return { ok: true };
  }

  // An alert journaled just before a crash may not have reached the seen file.
  for (const [node, id] of journalIds) if (!seen.has(node, id)) seen.record(node, id);
  const router = new Router({
    owners: config.owners,
    log,
    deliver: (d) => supervisor.deliver(d),
    seen,
    ...(args.show
      ? { show: (child: string, text: string) => stdoutSink(`${child} < ${text}`) }
      : {}),
  });
  let control: ControlServer;
  try {
    control = await ControlServer.start(join(setup.stateDir, "control.sock"), {
      status: () => ({
        pid: Deno.pid,
        started,
        uptime: Date.now() / 1000 - started,
        source: source ? "xmpp" : "replay",
        xmpp: source
          ? {
            online: source.online,
            offline_since: source.offlineSince,
            configured: [...config.owners.keys()],
            subscribed: source.subscribed,
            extra: source.extra,
          }
          : null,
        children: supervisor.status().map((s) => ({
          ...s,
          warnThr: config.sections.find((c) => c.name === s.child)?.warnThr ?? null,
        })),
        counts: { ...router.counts, applied, rejected_by_child: refused },
      }),
      command: (child, name, kwargs) => supervisor.command(child, name, kwargs),
    }, log);
  } catch (error) {
    await supervisor.shutdown(5);
    await seen.close();
    return failed("runtime", error as Error);
  }

  const onSignal = () => {
    stop.abort();
    // Also ends a start still retrying the server.
    void source?.stop();
  };
  Deno.addSignalListener("SIGINT", onSignal);
  Deno.addSignalListener("SIGTERM", onSignal);
  const stopped = new Promise<void>((resolve) => {
    if (stop.signal.aborted) resolve();
    stop.signal.addEventListener("abort", () => resolve(), { once: true });
  });
  try {
    if (setup.credentials) {
      source = new XmppSource({
        client: {
          server: args.server,
          port: args.port,
          username: setup.credentials.username,
          password: setup.credentials.password,
          resource: args.resource,
          ...(setup.ca ? { ca: setup.ca } : {}),
          insecureTls: args.insecureTls,
          allowPlaintext: args.allowPlaintext,
        },
        service: args.pubsubService ?? `pubsub.${args.server}`,
        nodes: [...config.owners.keys()],
        catchUp: args.catchUp,
        createMissingNodes: args.createMissingNodes,
        seen,
        log,
        debug: args.debug,
        route: (input) => router.route(input),
        onFatal: (f) => fail({ ok: false, kind: XMPP_EXIT[f.kind], error: f }),
      });
      log.event("info", "listening", {
        source: `xmpp ${args.server}:${args.port}`,
        children: config.sections.map((s) => s.name),
        state_dir: setup.stateDir,
      });
      try {
        await source.start();
      } catch (error) {
        const f = error as XmppFailure;
        source = undefined;
        // Interrupted while still connecting: a clean stop, not a failure.
        if (stop.signal.aborted) return failure ?? { ok: true };
        return failed(XMPP_EXIT[f.kind] ?? "unavailable", f);
      }
      await stopped;
    } else {
      const outcome = await replay(args, router, log, stop.signal);
      if (outcome) return outcome;
      sourceDone = true;
      checkIdle();
      await Promise.race([idle.promise, stopped]);
    }
  } finally {
    Deno.removeSignalListener("SIGINT", onSignal);
    Deno.removeSignalListener("SIGTERM", onSignal);
    await source?.stop();
    await control.close();
    await supervisor.shutdown();
    await Promise.all(mail);
    await seen.close();
    const c = router.counts;
    log.event("info", "summary", {
      ...c,
      applied,
      rejected: c.rejected + refused,
      rejected_by_child: refused,
    });
  }
  return failure ?? { ok: true };
}

/** Feeds a replay file to the router; an outcome only when it cannot. */
async function replay(
  args: ListenArgs,
  router: Router,
  log: Logger,
  signal: AbortSignal,
): Promise<Outcome | undefined> {
  log.event("info", "listening", { source: `replay ${args.replay}` });
  try {
    for await (const line of replayFile(args.replay!, { speed: args.speed, signal })) {
      const where = `${args.replay}:${line.line}`;
      if (!line.ok) router.reject(where, line.reason);
      else {
        router.route({
          node: line.node,
          id: line.id,
          payload: line.payload,
          t0: systemClock.now(),
          where,
        });
      }
    }
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
    return failed(
      "config",
      new ConfigError(args.replay!, "Replay file not found", { cause: error }),
    );
  }
  log.event("info", "source_done", { source: `replay ${args.replay}` });
  return undefined;
}
