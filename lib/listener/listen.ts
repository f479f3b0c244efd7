/**
 * The listener: config -> state folder -> children -> router -> source
 * (XMPP or replay), a control socket, and a clean stop. This module only
 * wires the parts together; each part owns its own behaviour.
 *
 * Shutdown order, on a signal, a fatal failure or (`--exit-when-idle`)
 * when all is done: stop taking alerts and commands; let the children
 * finish what they hold and checkpoint (at most `--stop-timeout` s; their
 * journals are then closed); close the XMPP session; wait for mail in
 * flight; close the seen-id file.
 *
 * @module
 */

import { join } from "node:path";
import { delay, whenAborted } from "../core/async.ts";
import { ConfigError } from "../core/config_error.ts";
import type { ChildLog } from "../core/log.ts";
import { ctime, Logger, stdoutSink } from "../core/log.ts";
import { Throttle } from "../core/throttle.ts";
import { failed, type Outcome } from "../core/outcome.ts";
import type { ListenArgs } from "../config/cli.ts";
import { type ListenerConfig, loadListenerConfig } from "../config/config.ts";
import { describeGraceDbAuth, type GraceDbAuth, resolveGraceDbAuth } from "../gracedb/auth.ts";
import {
  childPaths,
  childPermissions,
  describePermissions,
  grantWarnings,
  inside,
} from "../config/permissions.ts";
import { SEEN_LIMIT, SeenStore } from "../durability/seen_store.ts";
import { defaultStateDir, openStateDir } from "../durability/state_dir.ts";
import { systemClock } from "../queue/clock.ts";
import { type Credentials, CredentialsError, resolveCredentials } from "../xmpp/credentials.ts";
import { type XmppFailure, XmppSource } from "../xmpp/source.ts";
import { FAILURE_EXIT } from "../xmpp/failure.ts";
import { ChildStartError } from "./child_events.ts";
import { compiled } from "./child_handle.ts";
import { childDirName } from "./child_link.ts";
import { ControlServer } from "./control.ts";
import { Mailer } from "./mailer.ts";
import { replayFile } from "./replay.ts";
import { ReplayPosition } from "./replay_position.ts";
import { type RouteEvent, Router } from "./router.ts";
import { statusDocument } from "./status.ts";
import { type Identity, Supervisor } from "./supervisor.ts";
import { ListenerView } from "./view.ts";

/** Lets the caller of {@linkcode listen} say what a forced exit would abandon. */
export class ListenProgress {
  /** What is still under way; set by the listener while it runs. */
  describe: () => string = () => "nothing had started";
}

/** Options for {@linkcode listen}. */
export interface ListenOptions {
  /** Aborting it stops the listener cleanly (the first SIGINT/SIGTERM). */
  signal?: AbortSignal;
  /** Kept up to date with what is still under way. */
  progress?: ListenProgress;
  /**
   * Started once the children are ready, with a view of the running
   * listener (the HTTP status server); it joins the listener's resources
   * and stops with it, right after intake stops. A failure to start it
   * stops the listener (exit 1).
   */
  watch?: (view: ListenerView) => Promise<AsyncDisposable>;
}

/** What a run needs besides the config, read before any child starts. */
interface Setup {
  credentials: Credentials | undefined;
  ca: string | undefined;
  stateDir: string;
  /** Removed at exit (a replay without --state-dir). */
  ephemeral: boolean;
  /** GraceDB credentials per child whose childConfig names a GraceDB. */
  gracedbAuth: Map<string, GraceDbAuth>;
}

/** Finds the GraceDB credentials of every child that names a GraceDB (main thread only). */
async function gracedbAuth(config: ListenerConfig): Promise<Map<string, GraceDbAuth>> {
  const found = new Map<string, GraceDbAuth>();
  for (const s of config.sections) {
    if (s.child.gracedb) found.set(s.name, await resolveGraceDbAuth(s.child.gracedb));
  }
  return found;
}

function identity(): Identity {
  let hostname = "localhost";
  try {
    hostname = Deno.hostname();
  } catch {
    // Without sys permission the name is only cosmetic.
  }
  const username = Deno.env.get("USER") ?? Deno.env.get("LOGNAME") ?? "unknown";
  return { hostname, username, pid: Deno.pid };
}

async function readCa(path: string): Promise<string> {
  try {
    return await Deno.readTextFile(path);
  } catch (error) {
    throw new ConfigError(path, `Cannot read the CA file: ${(error as Error).message}`, {
      cause: error,
    });
  }
}

async function prepare(args: ListenArgs, config: ListenerConfig): Promise<Setup> {
  const xmpp = !args.replay;
  if (args.replay) {
    try {
      if (!(await Deno.stat(args.replay)).isFile) throw new Error("not a file");
    } catch (error) {
      const why = error instanceof Deno.errors.NotFound
        ? "Replay file not found"
        : `Replay file not readable: ${(error as Error).message}`;
      throw new ConfigError(args.replay, why, { cause: error });
    }
  }
  const credentials = xmpp
    ? await resolveCredentials({
      server: args.server,
      username: args.username,
      password: args.password,
      netrc: args.netrc,
    })
    : undefined;
  const ca = xmpp && args.caFile ? await readCa(args.caFile) : undefined;
  // A replay keeps no state between runs unless asked to.
  const ephemeral = !xmpp && args.stateDir === undefined;
  if (!ephemeral) checkLayout(config, args.stateDir ?? defaultStateDir(config.path));
  const stateDir = ephemeral
    ? await Deno.makeTempDir({ prefix: "lvalertmp-replay-" })
    : await openStateDir(args.stateDir ?? defaultStateDir(config.path));
  return { credentials, ca, stateDir, ephemeral, gracedbAuth: await gracedbAuth(config) };
}

/**
 * Refuses a layout in which a child could write what it must not: the
 * state folder (journals, snapshots, the control socket), a config or a
 * handler inside a folder a child may write (its command-file folder or
 * its own files folder).
 *
 * @throws {ConfigError} naming the childConfig
 */
function checkLayout(config: ListenerConfig, stateDir: string): void {
  const guarded: [string, string][] = [["the state folder", stateDir], [
    "the listener config",
    config.path,
  ]];
  for (const { child } of config.sections) {
    guarded.push(["a childConfig", child.path], ["a handler", child.handlerPath]);
  }
  for (const { child } of config.sections) {
    const { commandFolder, filesDirectory } = childPaths(child);
    for (const writable of [commandFolder, filesDirectory]) {
      for (const [what, path] of guarded) {
        if (!inside(path, writable)) continue;
        throw new ConfigError(
          child.path,
          `${what} (${path}) lies inside ${writable}, which the child may write; keep it apart`,
        );
      }
    }
  }
}

/** Reads the config (and, unless only checking, credentials and the state folder). */
async function load(
  args: ListenArgs,
  log: ChildLog,
): Promise<{ config: ListenerConfig; setup: Setup | undefined } | Outcome> {
  try {
    const config = await loadListenerConfig(args.configFile!);
    for (const warning of config.warnings) log.event("warning", "config_warning", {}, warning);
    for (const s of config.sections) {
      if (s.isolation === "process" && compiled()) {
        throw new ConfigError(
          config.path,
          `[${s.name}] isolation = process needs the Deno runtime (the portable release, or ` +
            "deno run); a deno compile binary can run children only as workers",
          { line: s.line },
        );
      }
    }
    return { config, setup: args.checkConfig ? undefined : await prepare(args, config) };
  } catch (error) {
    if (error instanceof ConfigError || error instanceof CredentialsError) {
      return failed("config", error);
    }
    throw error;
  }
}

/**
 * Runs the listener until the source ends (with `--exit-when-idle`), the
 * signal aborts, or a child or the session dies.
 */
export async function listen(args: ListenArgs, options: ListenOptions = {}): Promise<Outcome> {
  const log = new Logger({
    child: null,
    format: args.logFormat,
    level: args.verbose || args.debug ? 10 : 20,
    sinks: [stdoutSink],
  });
  const loaded = await load(args, log);
  if ("ok" in loaded) return loaded;
  const { config, setup } = loaded;
  if (!setup) return await checkConfig(args, config, log);
  if (args.insecureTls && setup.credentials) {
    log.event(
      "warning",
      "insecure_tls",
      {},
      "--insecure-tls: the server's certificate is NOT verified; anyone on the path can read and forge alerts",
    );
  }
  try {
    return await run(args, config, setup, log, options);
  } finally {
    if (setup.ephemeral) await Deno.remove(setup.stateDir, { recursive: true }).catch(() => {});
  }
}

/** `--check-config`: every child loads its handler and checks its config, then stops. */
async function checkConfig(
  args: ListenArgs,
  config: ListenerConfig,
  log: ChildLog,
): Promise<Outcome> {
  const auth = await gracedbAuth(config);
  const supervisor = new Supervisor({
    config,
    stateDir: "",
    logFormat: args.logFormat,
    log,
    identity: identity(),
    checkOnly: true,
    gracedbAuth: auth,
  });
  supervisor.events.on("line", ({ text }) => stdoutSink(text));
  try {
    await supervisor.start();
  } catch (error) {
    if (error instanceof ChildStartError) return failed("config", error);
    throw error;
  } finally {
    await supervisor.shutdown(5);
  }
  const stateDir = args.stateDir ?? defaultStateDir(config.path);
  const lines = [`config: ${config.path}`, `state folder: ${stateDir}`];
  const context = {
    home: Deno.env.get("HOME"),
    netrc: args.netrc ?? Deno.env.get("NETRC") ?? join(Deno.env.get("HOME") ?? "", ".netrc"),
    stateDir,
  };
  for (const s of config.sections) {
    const childState = join(stateDir, "children", childDirName(s.name));
    lines.push(
      `[${s.name}] nodes: ${s.nodes.join(", ")}`,
      `  handler: ${s.child.processType} (${s.child.handlerPath}), loaded`,
      `  childConfig: ${s.child.path}; log: ${s.child.logDirectory}; isolation: ${s.isolation}`,
      `  permissions: ${describePermissions(childPermissions(s, childState))}`,
    );
    for (const w of grantWarnings(s, context)) {
      lines.push(`  WARNING: ${w}`);
      log.event("warning", "grant_warning", { child: s.name }, w);
    }
    const gdb = auth.get(s.name);
    if (s.child.gracedb && gdb) {
      lines.push(`  gracedb: ${s.child.gracedb} (${describeGraceDbAuth(gdb)})`);
    }
  }
  const nodes = config.sections.reduce((n, s) => n + s.nodes.length, 0);
  lines.push(`OK: ${config.sections.length} children, ${nodes} nodes`);
  stdoutSink(lines.join("\n"));
  return { ok: true };
}

/** Everything a running listener holds, for the parts that report on it. */
interface Running {
  args: ListenArgs;
  config: ListenerConfig;
  setup: Setup;
  log: ChildLog;
  /** Aborted to stop: by the caller's signal, a fatal failure, or idleness. */
  stop: AbortController;
  fail(outcome: Outcome): void;
  seen: SeenStore;
  mailer: Mailer;
  supervisor: Supervisor;
  router: Router;
  /** The XMPP session, once there is one. */
  source: XmppSource | undefined;
  /** Where a replay through a kept state folder got to. */
  position: ReplayPosition | undefined;
  counts: { applied: number; refused: number; skipped: number };
  started: number;
  /** What a watcher (`ListenOptions.watch`) sees; none without one. */
  view: ListenerView | undefined;
}

async function run(
  args: ListenArgs,
  config: ListenerConfig,
  setup: Setup,
  log: ChildLog,
  options: ListenOptions,
): Promise<Outcome> {
  const stop = new AbortController();
  if (options.signal?.aborted) stop.abort(options.signal.reason);
  options.signal?.addEventListener("abort", () => stop.abort(options.signal?.reason), {
    once: true,
  });
  stop.signal.addEventListener("abort", () => {
    const reason = stop.signal.reason;
    log.event("info", "stopping", {
      reason: typeof reason === "string" ? reason : failureReason(reason),
    });
  }, { once: true });
  let failure: Outcome | undefined;
  const fail = (outcome: Outcome) => {
    failure ??= outcome;
    stop.abort(outcome);
  };
  let outcome: Outcome | undefined;
  let r: Running;
  {
    await using stack = new AsyncDisposableStack();
    const base = { args, config, setup, log, stop, fail };
    const assembled = await assemble(stack, base, options.watch);
    if ("ok" in assembled) return assembled;
    r = assembled;
    if (options.progress) options.progress.describe = () => pending(r);
    if (setup.credentials) {
      r.source = makeSource(r, setup.credentials);
      outcome = await runXmpp(r, r.source);
    } else outcome = await runReplay(r);
  }
  const c = r.router.counts;
  log.event("info", "summary", {
    ...c,
    applied: r.counts.applied,
    rejected: c.rejected + r.counts.refused,
    rejected_by_child: r.counts.refused,
    skipped_applied: r.counts.skipped,
  });
  return failure ?? outcome ?? { ok: true };
}

/**
 * Opens the parts in the order that makes the stack dispose them in the
 * shutdown order: intake, control socket, children (they finish and
 * checkpoint; journals close), session, mail, seen ids.
 */
async function assemble(
  stack: AsyncDisposableStack,
  base: Pick<Running, "args" | "config" | "setup" | "log" | "stop" | "fail">,
  watch?: ListenOptions["watch"],
): Promise<Running | Outcome> {
  const { args, config, setup, log } = base;
  const seen = stack.use(
    await SeenStore.open(setup.stateDir, {
      // A catch-up never pages back past what the seen ids remember.
      limit: Math.max(SEEN_LIMIT, args.catchUpMax),
      onError: (error) => log.event("error", "seen_write_failed", { error: error.message }),
    }),
  );
  const mailer = stack.use(new Mailer(log));
  // Flushed after the children have stopped, when every journal write is done.
  const position = args.replay && !setup.ephemeral
    ? stack.use(await ReplayPosition.open(setup.stateDir, args.replay, log))
    : undefined;
  const supervisor = new Supervisor({
    config,
    stateDir: setup.stateDir,
    logFormat: args.logFormat,
    log,
    identity: identity(),
    stopTimeout: args.stopTimeout,
    gracedbAuth: setup.gracedbAuth,
  });
  const started = Date.now() / 1000;
  // The view reads the running listener only once it runs.
  const view = watch ? makeView(() => r, base, started, supervisor) : undefined;
  const r: Running = {
    ...base,
    seen,
    mailer,
    supervisor,
    router: makeRouter({ args, config, log, supervisor, seen, mailer }, view),
    source: undefined,
    position,
    counts: { applied: 0, refused: 0, skipped: 0 },
    started,
    view,
  };
  stack.defer(() => r.source?.stop());
  wireChildren(r);
  let journalIds: [string, string][];
  try {
    journalIds = await supervisor.start();
  } catch (error) {
    if (error instanceof ChildStartError) return failed("config", error);
    throw error;
  }
  stack.use(supervisor);
  // An alert journaled just before a crash may not have reached the seen file.
  for (const [node, id] of journalIds) if (!seen.has(node, id)) seen.record(node, id);
  const control = await openControl(r);
  if (!control.ok) return control.outcome;
  stack.use(control.server);
  const watching = view && watch ? await startWatch(stack, watch, view) : undefined;
  if (watching) return watching;
  stack.defer(() => r.router.close());
  return r;
}

/** Starts a watcher of the listener on its stack; the failure, if it cannot start. */
async function startWatch(
  stack: AsyncDisposableStack,
  watch: NonNullable<ListenOptions["watch"]>,
  view: ListenerView,
): Promise<Outcome | undefined> {
  try {
    stack.use(await watch(view));
    return undefined;
  } catch (error) {
    return failed("runtime", error as Error);
  }
}

/** The status document of the running listener. */
function statusOf(r: Running) {
  return statusDocument({
    started: r.started,
    config: r.config,
    session: r.source,
    children: r.supervisor.status(),
    counts: r.router.counts,
    applied: r.counts.applied,
    refused: r.counts.refused,
  });
}

function makeView(
  running: () => Running,
  { config, setup, log }: Pick<Running, "config" | "setup" | "log">,
  started: number,
  supervisor: Supervisor,
): ListenerView {
  return new ListenerView({
    config,
    started,
    log,
    xmpp: setup.credentials !== undefined,
    children: supervisor.events,
    status: () => statusOf(running()),
    childStatus: () => supervisor.status(),
    session: () => running().source,
  });
}

/** Mails the recipients of `child`'s section; nothing when it names none. */
function mailSection(
  r: Pick<Running, "config" | "mailer">,
  child: string,
  subject: string,
  body: string,
): void {
  const section = r.config.sections.find((s) => s.name === child);
  if (!section || section.recipients.length === 0) return;
  const { mailCommand: command, recipients } = section;
  r.mailer.send({ child, command, subject, body, recipients });
}

/** Listens to the children: mail, publishing, log lines, journal receipts, deaths. */
function wireChildren(r: Running): void {
  const bus = r.supervisor.events;
  const sections = new Map(r.config.sections.map((s) => [s.name, s]));
  bus.on(
    "notify",
    ({ child, subject, body, recipients }) =>
      r.mailer.send({
        child,
        command: sections.get(child)!.mailCommand,
        subject,
        body,
        recipients,
      }),
  );
  const host = identity().hostname;
  bus.on(
    "given_up",
    ({ child, message }) =>
      mailSection(
        r,
        child,
        `CRITICAL: lvalertMP child ${child} given up on ${host}`,
        message + "\n",
      ),
  );
  bus.on("loss", ({ child, message }) =>
    mailSection(
      r,
      child,
      `CRITICAL: lvalertMP child ${child} may have lost alerts on ${host}`,
      `${message}\n\nAcknowledge with: lvalertMP ctl --acknowledge (status stays CRITICAL until then)\n`,
    ));
  bus.on("quarantined", ({ child, seq, message }) => {
    r.log.event("error", "alert_quarantined", { child, seq }, message);
    mailSection(
      r,
      child,
      `WARNING: lvalertMP child ${child} set an alert aside on ${host}`,
      `${message}\n`,
    );
  });
  bus.on("publish", ({ child, node, payload }) => {
    const session = r.source;
    // Without a server, what would be published is logged instead.
    if (!session) return r.log.event("info", "publish", { child, node, payload });
    session.publish(node, JSON.stringify(payload)).catch((error) =>
      r.log.event("warning", "publish_failed", { child, node, error: (error as Error).message })
    );
  });
  bus.on("line", ({ text }) => stdoutSink(text));
  bus.on("journaled", ({ node, id }) => r.seen.record(node, id));
  bus.on("ack", ({ ok, duplicate }) => {
    if (ok) r.counts.applied++;
    else if (duplicate) r.counts.skipped++;
    else r.counts.refused++;
  });
  bus.on("fatal", ({ error }) => r.fail({ ok: false, kind: "runtime", error }));
}

function makeRouter(
  r: Pick<Running, "args" | "config" | "log" | "supervisor" | "seen" | "mailer">,
  view: ListenerView | undefined,
): Router {
  const throttles = new Map(r.config.sections.map((s) => [s.name, new Throttle(s.warnDelay)]));
  const id = identity();
  return new Router({
    ...(view ? { observe: (event: RouteEvent) => view.observe(event) } : {}),
    owners: r.config.owners,
    log: r.log,
    deliver: (d) => r.supervisor.deliver(d),
    accepts: (child) => r.supervisor.accepts(child),
    seen: r.seen,
    // The original's mail (interactiveQueue.py, lvalert_subject/lvalert_body), once per warnDelay.
    unreadable: (child, payload, reason) => {
      const pass = throttles.get(child)!.attempt("payload");
      if (!pass.send) return;
      const held = pass.suppressed > 0
        ? `\n(${pass.suppressed} more since the last mail were not mailed; the log has each)\n`
        : "";
      mailSection(
        r,
        child,
        `WARNING: could not parse lvalert payload on ${id.hostname}`,
        `time (localtime): \n  ${ctime(Date.now() / 1000)}\n\nlvalert message: \n  ${payload}` +
          `\n\n${reason}\n\n    username : ${id.username}\n    hostname : ${id.hostname}\n` +
          `    config   : ${r.config.path}\n${held}`,
      );
    },
    ...(r.args.show ? { show: (child: string, text: string) => showAlert(child, text) } : {}),
  });
}

/** `-S`: the original's line, then `child < payload`. */
function showAlert(child: string, text: string): void {
  stdoutSink(`Payload received at ${ctime(Date.now() / 1000)}`);
  stdoutSink(`${child} < ${text}`);
}

async function openControl(
  r: Running,
): Promise<{ ok: true; server: ControlServer } | { ok: false; outcome: Outcome }> {
  try {
    const server = await ControlServer.start(join(r.setup.stateDir, "control.sock"), {
      status: () => statusOf(r),
      command: (child, name, kwargs) => r.supervisor.command(child, name, kwargs),
      // One acknowledgement clears what the operator has seen: loss and
      // quarantine reports, and (for the whole listener) catch-up gaps.
      acknowledge: (child) =>
        r.supervisor.acknowledge(child) +
        (child === undefined ? r.source?.acknowledgeGaps(undefined).length ?? 0 : 0),
      ackGap: (node) => r.source?.acknowledgeGaps(node) ?? [],
    }, r.log);
    return { ok: true, server };
  } catch (error) {
    return { ok: false, outcome: failed("runtime", error as Error) };
  }
}

function makeSource(r: Running, credentials: Credentials): XmppSource {
  const { args } = r;
  const source = new XmppSource({
    client: {
      server: args.server,
      port: args.port,
      username: credentials.username,
      password: credentials.password,
      resource: args.resource,
      ...(r.setup.ca ? { ca: r.setup.ca } : {}),
      insecureTls: args.insecureTls,
      allowPlaintext: args.allowPlaintext,
    },
    service: args.pubsubService ?? `pubsub.${args.server}`,
    nodes: [...r.config.owners.keys()],
    catchUp: args.catchUp,
    catchUpMax: args.catchUpMax,
    nodeCheckInterval: args.nodeCheckInterval,
    backoff: args.backoff,
    createMissingNodes: args.createMissingNodes,
    seen: r.seen,
    log: r.log,
    debug: args.debug,
    signal: r.stop.signal,
  });
  source.events.on("item", (input) => r.router.route(input));
  source.events.on("fatal", (f) => r.fail(failed(FAILURE_EXIT[f.kind], f)));
  source.events.on("online", () => r.view?.sessionChanged(true));
  source.events.on("offline", () => {
    r.view?.sessionChanged(false);
    // The reconnect catches every node up, deferred alerts included.
    for (const node of r.router.deferredNodes) r.router.resume(node);
  });
  mailSessionEvents(r, source);
  recatchDeferred(r, source);
  return source;
}

/**
 * Once a child takes alerts again, the nodes whose alerts were deferred
 * (its journal could not keep up) are caught up on the open session, so
 * those alerts come now, in order, not at the next reconnect.
 */
function recatchDeferred(r: Running, source: XmppSource): void {
  let running = false;
  const check = () => {
    // Called on every ack: nothing to do, at once, in the common case.
    if (running || r.router.deferredNodes.size === 0 || !source.online) return;
    const nodes = [...r.router.deferredNodes].filter((node) =>
      r.supervisor.accepts(r.config.owners.get(node)!)
    );
    if (nodes.length === 0) return;
    running = true;
    r.log.event("info", "deferred_catch_up", { nodes });
    void source.catchUpAgain(nodes, (node) => r.router.resume(node)).finally(() => {
      running = false;
    });
  };
  const bus = r.supervisor.events;
  bus.on("journal_state", check);
  bus.on("ack", check);
}

/** Mails a catch-up gap or a deleted node to the recipients of the section listening to it. */
function mailSessionEvents(r: Running, source: XmppSource): void {
  const host = identity().hostname;
  const mail = (node: string, subject: string, body: string) => {
    const child = r.config.owners.get(node);
    if (child) mailSection(r, child, subject, body);
  };
  source.events.on("catch_up_gap", (gap) =>
    mail(
      gap.node,
      `WARNING: lvalertMP catch-up gap on ${gap.node} (${host})`,
      `${gap.message}.\n\n\`lvalert_listenMP status\` warns until the next clean catch-up on ` +
        `${gap.node} or \`lvalert_listenMP ctl --ack-gap ${gap.node}\`.\n`,
    ));
  source.events.on("node_deleted", ({ node }) =>
    mail(
      node,
      `CRITICAL: lvalertMP node ${node} deleted (${host})`,
      `Node ${node} no longer exists on ${source.service}: nothing more will come from it.\n`,
    ));
}

async function runXmpp(r: Running, source: XmppSource): Promise<Outcome | undefined> {
  const { args } = r;
  r.log.event("info", "listening", {
    source: `xmpp ${args.server}:${args.port}`,
    children: r.config.sections.map((s) => s.name),
    state_dir: r.setup.stateDir,
  });
  try {
    await source.start();
  } catch (error) {
    // Interrupted while still connecting: a clean stop, not a failure.
    if (r.stop.signal.aborted) return undefined;
    const f = error as XmppFailure;
    return failed(FAILURE_EXIT[f.kind] ?? "unavailable", f);
  }
  await whenAborted(r.stop.signal);
  return undefined;
}

/** In-flight alerts per child beyond which a replay waits for its children. */
const REPLAY_HIGH_WATER = 2000;

/**
 * Feeds a replay file to the router, in order and at its pace; waits while
 * a child is saturated; stops taking lines at a signal. With
 * `--exit-when-idle`, then waits until all is done.
 */
async function runReplay(r: Running): Promise<Outcome | undefined> {
  const { args, router } = r;
  const signal = r.stop.signal;
  const from = r.position?.start;
  r.log.event("info", "listening", {
    source: `replay ${args.replay}`,
    ...(from?.line ? { resume_after_line: from.line } : {}),
  });
  let n = 0;
  let last = 0;
  // Lines taken once the stop began (none: the loop looks at the signal before each line).
  let atStop: number | undefined;
  signal.addEventListener("abort", () => atStop = n, { once: true });
  for await (
    const line of replayFile(args.replay!, { speed: args.speed, signal, ...(from ? { from } : {}) })
  ) {
    // A child whose journal cannot keep up (max_held) makes the replay wait, not defer.
    const child = line.ok ? r.config.owners.get(line.node) : undefined;
    while (!signal.aborted && child !== undefined && !r.supervisor.accepts(child)) {
      await delay(20, { signal }).catch(() => {});
    }
    if (signal.aborted) break;
    last = line.line;
    const where = `${args.replay}:${line.line}`;
    r.position?.begin(line.line, line.end);
    const done = () => r.position?.done(line.line);
    if (!line.ok) {
      router.reject(where, line.reason);
      done();
    } else {
      const input = {
        node: line.node,
        id: line.id,
        payload: line.payload,
        t0: systemClock.now(),
        where,
      };
      if (router.route({ ...input, onJournaled: done }) !== "routed") done();
    }
    // Let signals, acks and journal writes through; wait while a child is saturated.
    if (++n % 256 === 0) {
      await delay(0);
      while (!signal.aborted && r.supervisor.busy(REPLAY_HIGH_WATER)) {
        await delay(20, { signal }).catch(() => {});
      }
    }
  }
  if (signal.aborted) {
    r.log.event("info", "replay_stopped", {
      source: `replay ${args.replay}`,
      line: last,
      taken_after_stop: n - (atStop ?? n),
    });
    return undefined;
  }
  r.log.event("info", "source_done", { source: `replay ${args.replay}` });
  if (!args.exitWhenIdle) {
    await whenAborted(signal);
    return undefined;
  }
  const idle = () => {
    if (r.supervisor.isIdle()) r.stop.abort("idle");
  };
  const bus = r.supervisor.events;
  for (const on of [bus.on("changed", idle), bus.on("ack", idle), bus.on("given_up", idle)]) {
    signal.addEventListener("abort", on, { once: true });
  }
  idle();
  await whenAborted(signal);
  return undefined;
}

/** Why a stop began, for the `stopping` log line. */
function failureReason(reason: unknown): string {
  if (reason && typeof reason === "object" && "error" in reason && reason.error instanceof Error) {
    return `failure: ${reason.error.message}`;
  }
  return reason === undefined ? "done" : String(reason);
}

/** What a forced exit now would abandon. */
function pending(r: Running): string {
  const busy = r.supervisor.status().filter((c) => c.inFlight > 0 || c.state === "stopping");
  const parts = busy.map((c) => `[${c.child}] ${c.state}, ${c.inFlight} alert(s) not yet applied`);
  if (r.mailer.inFlight > 0) parts.push(`${r.mailer.inFlight} mail(s) being sent`);
  return parts.length === 0
    ? "nothing (journals and snapshots are consistent)"
    : `${parts.join("; ")} (the journals keep every alert for the next start)`;
}
