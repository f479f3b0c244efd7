/**
 * A real ejabberd on loopback for tests: a private instance (own config
 * folder, spool, logs, Erlang node name, cookie and distribution port) run
 * with `ejabberdctl foreground` as the `ejabberd` user, never the system
 * service. STARTTLS with a test CA, users registered through mod_http_api on
 * loopback, `kick_session` through ejabberdctl, stopped by the pid of its
 * Erlang VM.
 *
 * Start about 1.3 s (Prosody 0.7 s), SIGTERM stop 1.05 s (the Erlang VM
 * halts a second after ejabberd has stopped), resume 1.3 s, dispose 20 ms
 * (SIGKILL: the spool is thrown away). An instance whose test process dies
 * stops by itself (see WATCHDOG).
 *
 * ## What the servers do (ejabberd 23.01-1, Prosody 0.12.3, default node config)
 *
 * Asserted in tests/ejabberd_test.ts on both servers; exact XML there.
 *
 * | behaviour | ejabberd | Prosody |
 * |---|---|---|
 * | node defaults | max_items 1000 (also its ceiling: more is `resource-constraint`), persist_items 1, send_last_published_item `on_sub_and_presence`, notify_delete 0, headline | max_items 20 (ceiling pubsub_max_items, 10000 here), persist_items 1, `never`, notify_delete 1, headline |
 * | id of an item published without one | hex of the publish time's megaseconds, seconds, microseconds, unpadded: `703CDB0DD2B52`; unique, not ordered as text | UUID v4 |
 * | `<items node/>` | every item, oldest first | every item, oldest first |
 * | `<items node max_items=K/>` | newest K, oldest first, with `<set>`: count = stored items, `<first index=count-K>` (negative when K > count), first/last = publication stamps | newest K, oldest first, no `<set>`; K > stored gives all |
 * | XEP-0059 `<set><max>K</max><before/></set>` | newest page; `<before>FIRST</before>` pages back, `<after>LAST</after>` forward, `<index>` works; FIRST/LAST are stamps, not item ids (`<after>ID</after>` answers no items); past the oldest: `<set><count>N</count></set>`, no first/last; the oldest page says index -1 for 0 | `<set>` ignored: every item, no `<set>` |
 * | more items than max_items | oldest dropped | oldest dropped |
 * | items of a persist_items=0 node | the last item only | `feature-not-implemented` + `<persistent-items xmlns="...pubsub#errors"/>` |
 * | last item on subscribe | sent, with `<delay xmlns="urn:xmpp:delay" stamp="2026-11-28T05:08:31.881806Z"/>` (publication time, microseconds, no `from`) | not sent (on_sub: sent without `<delay/>`) |
 * | last item when a subscriber comes online (presence) | sent again, without `<delay/>`, often after newer items; a bare-JID subscription gets it on every new resource | not sent |
 * | node deleted | subscribers hear nothing (notify_delete=1: `<event><delete node="N"/></event>`) | `<event><delete node="N"/></event>` |
 * | disco#info, items, subscribe on a deleted node | `item-not-found` + text "Node not found" | `item-not-found` |
 * | `<subscriptions/>` of all nodes after a subscribed node was deleted | answered, without it | never answered (util/pubsub.lua:733 raises); with `node=` answered |
 * | node deleted, then created again under its name | old subscriptions gone | old subscriptions still reported (per node), yet nothing delivered through them |
 * | subscribing again when subscribed | one subscription; the last item pushed again, `<delay/>`-stamped | one subscription |
 * | second login on the same resource | old stream ends: `<conflict/>` + `<text xml:lang="en">Replaced by new connection</text>` | same, `<text>` without xml:lang |
 * | `ejabberdctl kick_session U H R REASON` | `<conflict/>` + `<text xml:lang="en">REASON</text>` (no text if empty); no ban | (no such command here) |
 * | SIGTERM | `<system-shutdown/>`, no text | `<system-shutdown/>` + `<text>Received SIGTERM</text>` |
 * | restart | nodes, items (same ids), subscriptions kept; subscribers get the last item again on coming online | kept (persistent file storage) |
 * | SIGKILL (a crash) | changes of the last second are lost: a node and item made 0.5 s before were gone after restart, 1.5 s before kept | - |
 * | event | `<message from to type="headline">`, no id; `<entry>` without xmlns (now in pubsub#event) | `<message from id to type="headline">`, `<entry xmlns=".../pubsub">` |
 *
 * A kick and a replaced session are both `<conflict/>`: only the text tells
 * them apart ("Replaced by new connection" is the server's own).
 *
 * @module
 */

import { join } from "node:path";
import { createXmppClient } from "../lib/xmpp/client.ts";
import { Pubsub } from "../lib/xmpp/pubsub.ts";
import { DOMAIN, freePort, PUBSUB, serverFlags, USERS, writeNetrc } from "./prosody.ts";

/** Options for {@linkcode startEjabberd}. */
export interface EjabberdOptions {
  /**
   * Require STARTTLS with the test CA, or accept plain-text streams.
   * @default {true}
   */
  tls?: boolean;
}

/** Node configuration at creation (`pubsub#...` fields); unset fields keep the server's default. */
export interface NodeOptions {
  /** `pubsub#persist_items` */
  persistItems?: boolean;
  /** `pubsub#max_items` */
  maxItems?: number;
  /** `pubsub#send_last_published_item` */
  sendLastPublishedItem?: "never" | "on_sub" | "on_sub_and_presence";
  /** `pubsub#notify_delete` */
  notifyDelete?: boolean;
}

/** The data form fields of {@linkcode NodeOptions}, for `Pubsub.create`. */
export function nodeConfig(options: NodeOptions): Record<string, string> {
  const fields: Record<string, string> = {};
  const flag = (b: boolean) => (b ? "1" : "0");
  if (options.persistItems !== undefined) {
    fields["pubsub#persist_items"] = flag(options.persistItems);
  }
  if (options.maxItems !== undefined) fields["pubsub#max_items"] = String(options.maxItems);
  if (options.sendLastPublishedItem !== undefined) {
    fields["pubsub#send_last_published_item"] = options.sendLastPublishedItem;
  }
  if (options.notifyDelete !== undefined) {
    fields["pubsub#notify_delete"] = flag(options.notifyDelete);
  }
  return fields;
}

function openssl(args: string[], cwd: string): void {
  const out = new Deno.Command("openssl", { args, cwd, stdout: "piped", stderr: "piped" })
    .outputSync();
  if (!out.success) {
    throw new Error(`openssl ${args[0]} failed: ${new TextDecoder().decode(out.stderr)}`);
  }
}

/** CA and leaf (P-256: fast to make), made once per test process. */
let certificates: { ca: string; server: string } | undefined;

function makeCertificates(): { ca: string; server: string } {
  if (certificates) return certificates;
  const dir = Deno.makeTempDirSync({ prefix: "lvalertmp-certs-" });
  try {
    Deno.writeTextFileSync(
      join(dir, "leaf.cnf"),
      "[ext]\nsubjectAltName=DNS:localhost,DNS:pubsub.localhost,IP:127.0.0.1,IP:::1\n" +
        "basicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n" +
        "keyUsage=digitalSignature,keyEncipherment\n",
    );
    const ec = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2";
    const words = (line: string) => line.split(" ");
    openssl([
      ...words(`req -x509 ${ec} -keyout ca.key -out ca.pem`),
      ...["-subj", "/CN=lvalertMP test CA"],
      ...words("-addext basicConstraints=critical,CA:TRUE"),
      ...words("-addext keyUsage=critical,keyCertSign,cRLSign"),
    ], dir);
    openssl(words(`req ${ec} -subj /CN=localhost -keyout leaf.key -out leaf.csr`), dir);
    openssl(
      words(
        "x509 -req -in leaf.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 " +
          "-extfile leaf.cnf -extensions ext -out leaf.crt",
      ),
      dir,
    );
    const read = (name: string) => Deno.readTextFileSync(join(dir, name));
    const ca = read("ca.pem");
    certificates = { ca, server: read("leaf.crt") + read("leaf.key") + ca };
    return certificates;
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
}

interface Ports {
  c2s: number;
  http: number;
}

function configText(dir: string, ports: Ports, tls: boolean): string {
  const q = (s: string) => JSON.stringify(s);
  return `hosts: [${DOMAIN}]
loglevel: info
log_rotate_count: 0
${tls ? `certfiles: [${q(join(dir, "certs", "server.pem"))}]` : ""}
listen:
  - port: ${ports.c2s}
    ip: "127.0.0.1"
    module: ejabberd_c2s
    starttls: ${tls}
    starttls_required: ${tls}
    shaper: c2s_shaper
    max_stanza_size: 262144
  - port: ${ports.http}
    ip: "127.0.0.1"
    module: ejabberd_http
    request_handlers:
      /api: mod_http_api
auth_method: internal
auth_password_format: scram
acl:
  local:
    user_regexp: ""
access_rules:
  c2s:
    allow: all
  pubsub_createnode:
    allow: local
api_permissions:
  "console commands":
    from: [ejabberd_ctl]
    who: all
    what: "*"
  "loopback registration":
    from: [mod_http_api]
    who:
      ip: 127.0.0.1/8
    what: [register, status]
shaper_rules:
  c2s_shaper: none
modules:
  mod_adhoc: {}
  mod_admin_extra: {}
  mod_caps: {}
  mod_disco: {}
  mod_http_api: {}
  mod_ping: {}
  mod_pubsub:
    host: ${PUBSUB}
    access_createnode: pubsub_createnode
    plugins: [flat, pep]
  mod_roster: {}
  mod_stream_mgmt: {}
`;
}

/**
 * Erlang run at start: `init:stop()` once stdin reaches its end. No spaces
 * and no brackets: ejabberdctl splits ERL_OPTIONS into words unquoted.
 */
const WATCHDOG = "spawn(fun()->P=open_port({fd,0,1},tuple_to_list({eof}))," +
  "W=fun(F)->(receive{P,eof}->init:stop();_->F(F)end)end,W(W)end)";

/** Debian's place for it; not on every user's PATH. */
const EJABBERDCTL = "/usr/sbin/ejabberdctl";

/**
 * The `ejabberd` system user's ids (from /etc/passwd), which ejabberdctl
 * insists on running as: tests run as root switch to it.
 */
function systemUser(): { uid: number; gid: number } {
  const line = Deno.readTextFileSync("/etc/passwd").split("\n")
    .find((l) => l.startsWith("ejabberd:"));
  const [, , uid, gid] = line?.split(":") ?? [];
  let installed = false;
  try {
    installed = Deno.statSync(EJABBERDCTL).isFile;
  } catch {
    // Not installed.
  }
  if (uid === undefined || gid === undefined || !installed) {
    throw new Error(
      `ejabberd is not installed (no ${EJABBERDCTL} or no ejabberd user): run ` +
        "`deno task test` (its set-up installs it) or apt-get install -y ejabberd, " +
        "or set LVALERT_SKIP_XMPP=1 to skip the XMPP tests",
    );
  }
  if (Deno.uid() !== 0 && Deno.uid() !== Number(uid)) {
    throw new Error(
      "ejabberdctl runs only as root or as the ejabberd user: run the tests as root, " +
        "or set LVALERT_SKIP_XMPP=1 to skip the XMPP tests",
    );
  }
  return { uid: Number(uid), gid: Number(gid) };
}

/** Pids whose parent is `pid` (read from /proc: children files are not always there). */
function childrenOf(pid: number): number[] {
  const found: number[] = [];
  for (const entry of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(entry.name)) continue;
    try {
      const stat = Deno.readTextFileSync(`/proc/${entry.name}/stat`);
      // The command name may hold spaces; the parent pid follows its ")".
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      if (ppid === pid) found.push(Number(entry.name));
    } catch {
      // Gone meanwhile.
    }
  }
  return found;
}

function signal(pid: number | undefined, sig: Deno.Signal): void {
  if (pid === undefined) return;
  try {
    Deno.kill(pid, sig);
  } catch {
    // Already gone.
  }
}

/** A running private ejabberd; `await using` stops it and removes its folder. */
export class Ejabberd {
  readonly kind = "ejabberd";
  readonly dir: string;
  readonly port: number;
  /** mod_http_api on loopback (registration and status). */
  readonly httpPort: number;
  /** Erlang distribution port of the node (no epmd). */
  readonly distPort: number;
  /** Erlang node name, unique per instance. */
  readonly node: string;
  readonly tls: boolean;
  readonly domain = DOMAIN;
  readonly pubsub = PUBSUB;
  readonly users = USERS;
  readonly caFile: string;
  readonly logFile: string;
  #process: Deno.ChildProcess | undefined;
  #stdin: WritableStreamDefaultWriter<Uint8Array> | undefined;
  #user: { uid: number; gid: number };

  private constructor(dir: string, tls: boolean, user: { uid: number; gid: number }) {
    this.dir = dir;
    this.#user = user;
    this.tls = tls;
    this.port = freePort();
    this.httpPort = freePort();
    this.distPort = freePort();
    this.node = `lvalertmp_${crypto.randomUUID().slice(0, 8)}@localhost`;
    this.caFile = join(dir, "certs", "ca.pem");
    this.logFile = join(dir, "logs", "ejabberd.log");
  }

  /** Writes the instance's files, starts it and registers the users. */
  static async start(options: EjabberdOptions = {}): Promise<Ejabberd> {
    const user = systemUser();
    const dir = await Deno.makeTempDir({ prefix: "lvalertmp-ejabberd-" });
    const server = new Ejabberd(dir, options.tls ?? true, user);
    try {
      await server.#writeFiles();
      await server.resume();
      for (const [user, password] of Object.entries(USERS)) {
        await server.#api("register", { user, host: DOMAIN, password });
      }
      return server;
    } catch (error) {
      await server[Symbol.asyncDispose]();
      throw error;
    }
  }

  async #writeFiles(): Promise<void> {
    const { dir } = this;
    for (const sub of ["conf", "spool", "logs", "run", "certs", "msgs"]) {
      await Deno.mkdir(join(dir, sub));
    }
    if (this.tls) {
      const { ca, server } = makeCertificates();
      await Deno.writeTextFile(this.caFile, ca);
      await Deno.writeTextFile(join(dir, "certs", "server.pem"), server, { mode: 0o600 });
    }
    const ports = { c2s: this.port, http: this.httpPort };
    await Deno.writeTextFile(join(dir, "conf", "ejabberd.yml"), configText(dir, ports, this.tls));
    const cookie = crypto.randomUUID().replaceAll("-", "");
    // Read by both the server and every ejabberdctl call. Setting the
    // distribution interface here, not as INET_DIST_INTERFACE, spares
    // ejabberdctl one extra Erlang VM per call.
    await Deno.writeTextFile(
      join(dir, "conf", "vm.args"),
      `-setcookie ${cookie}\n-kernel inet_dist_use_interface {127,0,0,1}\n`,
    );
    await Deno.writeTextFile(
      join(dir, "conf", "ejabberdctl.cfg"),
      [
        "ERL_EPMD_ADDRESS=127.0.0.1",
        `ERL_DIST_PORT=${this.distPort}`,
        `EJABBERD_PID_PATH=${join(dir, "run", "ejabberd.pid")}`,
        "EJABBERD_BYPASS_WARNINGS=true",
        "# The server reads nothing from stdin: it stops when stdin closes, that is",
        "# when the test process that started it has ended, however it ended.",
        `case "$1" in foreground) ERL_OPTIONS='-eval ${WATCHDOG}';; esac`,
        "",
      ].join("\n"),
    );
    await Deno.writeTextFile(
      join(dir, "conf", "inetrc"),
      '{lookup,["file","native"]}.\n{host,{127,0,0,1},["localhost"]}.\n',
    );
    await this.#chownTree(dir);
  }

  async #chownTree(path: string): Promise<void> {
    if (Deno.uid() !== 0) return;
    await Deno.chown(path, this.#user.uid, this.#user.gid);
    if (!(await Deno.stat(path)).isDirectory) return;
    for await (const entry of Deno.readDir(path)) await this.#chownTree(join(path, entry.name));
  }

  /**
   * The environment of every ejabberdctl call. No translation files: building
   * their cache takes most of a second at each first start, and tests read
   * English texts only.
   */
  #env(): Record<string, string> {
    return { HOME: this.dir, EJABBERD_MSGS_PATH: join(this.dir, "msgs") };
  }

  /** argv running ejabberdctl against this instance, as the ejabberd user. */
  #ctlArgv(...args: string[]): [string, string[]] {
    const ctl = [
      EJABBERDCTL,
      "--config-dir",
      join(this.dir, "conf"),
      "--spool",
      join(this.dir, "spool"),
      "--logs",
      join(this.dir, "logs"),
      "--node",
      this.node,
      ...args,
    ];
    if (Deno.uid() !== 0) return [ctl[0]!, ctl.slice(1)];
    // setpriv execs (no parent left behind, unlike su or runuser).
    const { uid, gid } = this.#user;
    return ["setpriv", [`--reuid=${uid}`, `--regid=${gid}`, "--init-groups", ...ctl]];
  }

  /** Runs one ejabberdctl command against this instance; resolves with its output. */
  async ctl(...args: string[]): Promise<string> {
    const [cmd, argv] = this.#ctlArgv(...args);
    const out = await new Deno.Command(cmd, {
      args: argv,
      env: this.#env(),
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
    if (!out.success) throw new Error(`ejabberdctl ${args.join(" ")} failed: ${text.trim()}`);
    return text;
  }

  /** Kicks one session: the client sees a stream error carrying `reason`. */
  async kick(user: keyof typeof USERS, resource: string, reason: string): Promise<void> {
    await this.ctl("kick_session", user, DOMAIN, resource, reason);
  }

  /** Calls mod_http_api; resolves with the JSON answer. */
  async #api(
    command: string,
    body: Record<string, string>,
    signal?: AbortSignal,
  ): Promise<unknown> {
    const response = await fetch(`http://127.0.0.1:${this.httpPort}/api/${command}`, {
      method: "POST",
      body: JSON.stringify(body),
      ...(signal ? { signal } : {}),
    });
    const text = await response.text();
    if (!response.ok) throw new Error(`ejabberd API ${command} failed: ${response.status} ${text}`);
    return JSON.parse(text);
  }

  /** Starts (or starts again after {@linkcode stop}) and waits until it serves. */
  async resume(): Promise<void> {
    if (this.#process) throw new Error("ejabberd is already running");
    await Deno.remove(join(this.dir, "run", "ejabberd.pid")).catch(() => {});
    const [cmd, argv] = this.#ctlArgv("foreground");
    const process = new Deno.Command(cmd, {
      args: argv,
      env: this.#env(),
      stdin: "piped",
      stdout: "null",
      stderr: "null",
    }).spawn();
    this.#process = process;
    // Held open, never written: see WATCHDOG.
    this.#stdin = process.stdin.getWriter();
    let exited = false;
    const gone = process.status.then((s) => {
      exited = true;
      return s;
    });
    // About a second when the machine is idle; much longer on a busy one.
    const deadline = AbortSignal.timeout(60_000);
    // Listeners accept TCP connections before ejabberd has started, but
    // serve them only once it has: the first answered request is readiness.
    for (;;) {
      try {
        await Promise.race([
          this.#api("status", {}, deadline),
          gone.then((s) => Promise.reject(new Error(`ejabberd exited with code ${s.code}`))),
        ]);
        return;
      } catch (error) {
        if (exited || deadline.aborted) {
          await this.stop();
          const log = await Deno.readTextFile(this.logFile).catch(() => "");
          throw new Error(`ejabberd did not start: ${error}\n${log.slice(-3000)}`, {
            cause: error,
          });
        }
        // Not listening yet, or a pooled connection to the previous run.
        await new Promise((r) => setTimeout(r, 50));
      }
    }
  }

  /** The Erlang VM's pid: the pid file, else the child of ejabberdctl. */
  #beamPid(process: Deno.ChildProcess): number | undefined {
    try {
      const pid = Number(Deno.readTextFileSync(join(this.dir, "run", "ejabberd.pid")).trim());
      if (pid > 0) return pid;
    } catch {
      // Not written yet.
    }
    return childrenOf(process.pid)[0];
  }

  /**
   * Stops the server by its pid and waits for it: SIGTERM is an orderly
   * shutdown (clients get `system-shutdown`, the spool is kept), SIGKILL a
   * crash.
   */
  async stop(sig: "SIGTERM" | "SIGKILL" = "SIGTERM"): Promise<void> {
    const process = this.#process;
    if (!process) return;
    this.#process = undefined;
    const beam = this.#beamPid(process);
    signal(beam ?? process.pid, sig);
    const killer = setTimeout(() => {
      signal(beam, "SIGKILL");
      signal(process.pid, "SIGKILL");
    }, 10_000);
    await process.status;
    clearTimeout(killer);
    await this.#stdin?.close().catch(() => {});
    this.#stdin = undefined;
  }

  /** A real outage: an orderly stop, then a start on the same spool. */
  async restart(): Promise<void> {
    await this.stop();
    await this.resume();
  }

  /** Creates a node as `publisher` with the given configuration. */
  async createNode(node: string, options: NodeOptions = {}): Promise<void> {
    const client = createXmppClient({
      server: "127.0.0.1",
      domain: DOMAIN,
      port: this.port,
      username: "publisher",
      password: USERS.publisher,
      resource: `create-${crypto.randomUUID().slice(0, 8)}`,
      ...(this.tls ? { ca: await Deno.readTextFile(this.caFile) } : { allowPlaintext: true }),
    });
    client.on("error", () => {});
    await client.start();
    try {
      await new Pubsub(client, PUBSUB).create(node, nodeConfig(options));
    } finally {
      await client.stop().catch(() => {});
    }
  }

  /** Flags that point `lvalert_listenMP` (or a subcommand) at this server. */
  flags(user: keyof typeof USERS = "listener"): string[] {
    return serverFlags(this, user);
  }

  /** A netrc file with the user's password, mode 0600. */
  netrc(user: keyof typeof USERS = "listener"): Promise<string> {
    return writeNetrc(this.dir, user);
  }

  /** Stops at once (SIGKILL: the spool is thrown away) and removes the folder. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop("SIGKILL");
    await Deno.remove(this.dir, { recursive: true }).catch(() => {});
  }
}

/** Starts a private ejabberd with users `listener`, `publisher` and `other`. */
export function startEjabberd(options: EjabberdOptions = {}): Promise<Ejabberd> {
  return Ejabberd.start(options);
}
