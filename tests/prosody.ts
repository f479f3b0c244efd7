/**
 * A real Prosody XMPP server on loopback for tests and benchmarks: a temp
 * folder, a free port, TLS with a CA and a leaf certificate made by openssl
 * at start, users registered with prosodyctl, stopped by its pid.
 */

import { join } from "node:path";

/** Tests that need Prosody are skipped (and counted) only when this is set. */
export const SKIP_XMPP = Deno.env.get("LVALERT_SKIP_XMPP") === "1";

export const DOMAIN = "localhost";
export const PUBSUB = `pubsub.${DOMAIN}`;

/** Users every server has; `publisher` is an admin (it may create nodes). */
export const USERS = {
  listener: "listenerpw",
  publisher: "publisherpw",
  other: "otherpw",
} as const;

export interface ProsodyOptions {
  /** Require TLS (the default) or accept plain-text streams. */
  tls?: boolean;
  /** Keep published items on disk (outage tests) or in memory only. */
  persistent?: boolean;
}

function run(cmd: string, args: string[], cwd?: string): void {
  const out = new Deno.Command(cmd, {
    args,
    ...(cwd ? { cwd } : {}),
    stdout: "piped",
    stderr: "piped",
  }).outputSync();
  if (!out.success) {
    throw new Error(
      `${cmd} ${args.join(" ")} failed: ${new TextDecoder().decode(out.stderr)}`,
    );
  }
}

/** A loopback port nobody listens on right now. */
/** Flags that point `lvalert_listenMP` (or a subcommand) at a test server. */
export function serverFlags(
  server: { port: number; tls: boolean; caFile: string },
  user: keyof typeof USERS,
): string[] {
  return [
    ...["-s", DOMAIN, "--port", String(server.port), "-a", user],
    ...(server.tls ? ["--ca-file", server.caFile] : ["--allow-plaintext"]),
  ];
}

/** A netrc file in `dir` with the user's password, mode 0600. */
export async function writeNetrc(dir: string, user: keyof typeof USERS): Promise<string> {
  const path = join(dir, `netrc-${user}`);
  await Deno.writeTextFile(path, `machine ${DOMAIN} login ${user} password ${USERS[user]}\n`, {
    mode: 0o600,
  });
  await Deno.chmod(path, 0o600);
  return path;
}

export function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr as Deno.NetAddr;
  listener.close();
  return port;
}

function makeCertificates(dir: string): void {
  const conf = join(dir, "leaf.cnf");
  Deno.writeTextFileSync(
    conf,
    "[req]\ndistinguished_name=dn\n[dn]\n[ext]\nsubjectAltName=DNS:localhost,IP:127.0.0.1\n" +
      "basicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\nkeyUsage=digitalSignature,keyEncipherment\n",
  );
  run("openssl", [
    "req",
    "-x509",
    "-newkey",
    "rsa:2048",
    "-nodes",
    "-days",
    "2",
    "-subj",
    "/CN=lvalertMP test CA",
    "-addext",
    "basicConstraints=critical,CA:TRUE",
    "-addext",
    "keyUsage=critical,keyCertSign,cRLSign",
    "-keyout",
    "ca.key",
    "-out",
    "ca.pem",
  ], dir);
  run("openssl", [
    "req",
    "-newkey",
    "rsa:2048",
    "-nodes",
    "-subj",
    "/CN=localhost",
    "-keyout",
    "leaf.key",
    "-out",
    "leaf.csr",
  ], dir);
  run("openssl", [
    "x509",
    "-req",
    "-in",
    "leaf.csr",
    "-CA",
    "ca.pem",
    "-CAkey",
    "ca.key",
    "-CAcreateserial",
    "-days",
    "2",
    "-extfile",
    conf,
    "-extensions",
    "ext",
    "-out",
    "leaf.crt",
  ], dir);
  // Prosody runs as root here but reads keys as any user would.
  Deno.chmodSync(join(dir, "leaf.key"), 0o644);
}

function configText(
  dir: string,
  port: number,
  tls: boolean,
  persistent: boolean,
): string {
  const q = (s: string) => JSON.stringify(s);
  return [
    "run_as_root = true",
    "daemonize = false",
    `pidfile = ${q(join(dir, "prosody.pid"))}`,
    `data_path = ${q(join(dir, "data"))}`,
    `certificates = ${q(dir)}`,
    `log = { warn = ${q(join(dir, "prosody.log"))} }`,
    'interfaces = { "127.0.0.1" }',
    `c2s_ports = { ${port} }`,
    "c2s_direct_tls_ports = { }",
    "legacy_ssl_ports = { }",
    "s2s_ports = { }",
    'modules_enabled = { "disco"; "roster"; "saslauth"; "ping"; "posix"; "tls" }',
    'modules_disabled = { "s2s" }',
    'authentication = "internal_hashed"',
    "default_iteration_count = 4096",
    `admins = { "publisher@${DOMAIN}" }`,
    "network_settings = { nagle = false }",
    `c2s_require_encryption = ${tls}`,
    tls
      ? `ssl = { certificate = ${q(join(dir, "leaf.crt"))}; key = ${q(join(dir, "leaf.key"))} }`
      : "",
    // Items in memory: the file store rewrites every item on each publish.
    persistent ? "" : 'storage = { pubsub_data = "memory" }',
    // The memory store refuses a node's 1001st item (internal-server-error,
    // "quota-limit") rather than dropping the oldest, whatever max_items says.
    "storage_archive_item_limit = 20000",
    `VirtualHost "${DOMAIN}"`,
    `Component "${PUBSUB}" "pubsub"`,
    "  pubsub_max_items = 10000",
    "",
  ].join("\n");
}

/** A running Prosody; `await using` stops it. */
export class Prosody {
  readonly dir: string;
  readonly port: number;
  readonly tls: boolean;
  readonly config: string;
  readonly caFile: string;
  #process: Deno.ChildProcess | undefined;

  private constructor(dir: string, port: number, tls: boolean) {
    this.dir = dir;
    this.port = port;
    this.tls = tls;
    this.config = join(dir, "prosody.cfg.lua");
    this.caFile = join(dir, "ca.pem");
  }

  /** Makes certificates and users, then starts the server. */
  static async start(options: ProsodyOptions = {}): Promise<Prosody> {
    const dir = await Deno.makeTempDir({ prefix: "lvalertmp-prosody-" });
    const tls = options.tls ?? true;
    const server = new Prosody(dir, freePort(), tls);
    try {
      await Deno.mkdir(join(dir, "data"));
      if (tls) makeCertificates(dir);
      await Deno.writeTextFile(
        server.config,
        configText(dir, server.port, tls, options.persistent ?? false),
      );
      for (const [user, password] of Object.entries(USERS)) {
        run("prosodyctl", [
          "--config",
          server.config,
          "register",
          user,
          DOMAIN,
          password,
        ]);
      }
      await server.resume();
      return server;
    } catch (error) {
      await server[Symbol.asyncDispose]();
      throw error;
    }
  }

  /** Starts (or restarts) the server process and waits for its port. */
  async resume(): Promise<void> {
    if (this.#process) throw new Error("Prosody is already running");
    this.#process = new Deno.Command("prosody", {
      args: ["--config", this.config],
      stdout: "null",
      stderr: "null",
    }).spawn();
    const deadline = Date.now() + 10_000;
    for (;;) {
      try {
        (await Deno.connect({ hostname: "127.0.0.1", port: this.port }))
          .close();
        return;
      } catch {
        if (Date.now() > deadline) {
          await this.stop();
          const log = await Deno.readTextFile(join(this.dir, "prosody.log"))
            .catch(() => "");
          throw new Error(`Prosody did not open port ${this.port}: ${log}`);
        }
        await new Promise((r) => setTimeout(r, 50));
      }
    }
  }

  /** Stops the server process by its pid (SIGTERM), waiting for it. */
  async stop(): Promise<void> {
    const process = this.#process;
    if (!process) return;
    this.#process = undefined;
    try {
      process.kill("SIGTERM");
    } catch {
      // Already gone.
    }
    const killer = setTimeout(() => {
      try {
        process.kill("SIGKILL");
      } catch {
        // Already gone.
      }
    }, 5000);
    await process.status;
    clearTimeout(killer);
  }

  /** Flags that point `lvalert_listenMP` (or a subcommand) at this server. */
  flags(user: keyof typeof USERS = "listener"): string[] {
    return serverFlags(this, user);
  }

  /** A netrc file with the user's password, mode 0600. */
  netrc(user: keyof typeof USERS = "listener"): Promise<string> {
    return writeNetrc(this.dir, user);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
    await Deno.remove(this.dir, { recursive: true }).catch(() => {});
  }
}
