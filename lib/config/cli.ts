/**
 * Command-line flags of `lvalert_listenMP`, parsed with `node:util`'s
 * `parseArgs` (the JSR `@std/cli` is not reachable from every build host).
 *
 * @module
 */

import { parseArgs, type ParseArgsOptionsConfig } from "node:util";
import type { LogFormat } from "../core/log.ts";

/** The listener's options, validated. */
export interface ListenArgs {
  username: string | undefined;
  password: string | undefined;
  server: string;
  resource: string;
  configFile: string | undefined;
  netrc: string | undefined;
  show: boolean;
  verbose: boolean;
  debug: boolean;
  version: boolean;
  help: boolean;
  port: number;
  pubsubService: string | undefined;
  caFile: string | undefined;
  insecureTls: boolean;
  allowPlaintext: boolean;
  stateDir: string | undefined;
  replay: string | undefined;
  speed: number;
  exitWhenIdle: boolean;
  checkConfig: boolean;
  logFormat: LogFormat;
  catchUp: number;
  /** Most items caught up per node after a (re)connect. */
  catchUpMax: number;
  /** Seconds between checks that every node still exists (0: never). */
  nodeCheckInterval: number;
  /** Seconds between reconnect attempts: first and longest. */
  backoff: [number, number];
  createMissingNodes: boolean;
  /** Seconds children may take to stop before they are terminated. */
  stopTimeout: number;
  /** `-n/--node`, which the original accepted and ignored (the config names the nodes). */
  ignoredNode: string | undefined;
  /** `--http ADDR:PORT`: where the status page, metrics and health endpoint listen. */
  http: HttpAddress | undefined;
  /** `--http-token FILE`: the bearer token every HTTP request must carry. */
  httpToken: string | undefined;
}

/** An address to listen on. */
export interface HttpAddress {
  /** A name or IP address, without brackets. */
  hostname: string;
  port: number;
}

/** A parse that worked, or the message for a usage error (exit 2). */
export type ParseResult<T> = { ok: true; value: T } | {
  ok: false;
  message: string;
};

export const LISTEN_USAGE = `Usage: lvalert_listenMP [options] -c CONFIG
       lvalert_listenMP send|command|admin|status|ctl ... (see --help of each)

Listens to LVAlert (XMPP pubsub) nodes and routes each alert to the child
that the config file assigns its node to.

Options of the original tool:
  -a, --username USER      XMPP user (default: the netrc login for the server)
  -b, --password PW        accepted for old scripts; other users can read argv
  -s, --server HOST        XMPP server (default lvalert.cgca.uwm.edu)
  -r, --resource RES       XMPP resource (default listener)
  -c, --config-file FILE   listener config (required)
  -N, --netrc FILE         netrc file (default $NETRC or ~/.netrc)
  -S, --show               print "child < payload" for each routed alert
  -v, --verbose            debug-level logs of the listener
  -g, --debug              as -v, plus XMPP traffic
  -w, --version            print the version
  -h, --help               this text
  -n, --node NODE          accepted and ignored, as the original did: the
                           config file names the nodes

New options:
      --port N             XMPP port (default 5222)
      --pubsub-service JID pubsub service (default pubsub.SERVER)
      --ca-file PEM        verify the server against this CA (not the system roots)
      --insecure-tls       do not verify the server's certificate (unsafe)
      --allow-plaintext    allow a connection without TLS (tests only)
      --state-dir DIR      journal, checkpoints and control socket
      --replay FILE        read alerts from a JSON Lines file, not a server
      --speed X            replay time factor (default 1; 0 = no waiting)
      --exit-when-idle     exit 0 once the source is done and queues are empty
      --check-config       validate config, childConfigs and handlers; exit
      --log-format F       text (default) or json
      --catch-up N         items per request when catching up on a node after a
                           (re)connect (default 20; 0: no catch-up)
      --catch-up-max N     most items caught up per node (default 1000); past it,
                           or when the last item seen is gone, a gap is reported
      --node-check-interval S  seconds between checks that every node still
                           exists (default 60; 0: never)
      --backoff MIN,MAX    seconds between reconnect attempts, doubling from MIN
                           up to MAX (default 1,30)
      --create-missing-nodes  create configured nodes that do not exist
      --stop-timeout S     seconds children may take to stop (default 30);
                           a second SIGINT/SIGTERM exits at once
      --http ADDR:PORT     serve a status page (/), Prometheus metrics
                           (/metrics) and a health check (/healthz); loopback
                           only unless --http-token is given
      --http-token FILE    every HTTP request must carry
                           "Authorization: Bearer <the file's token>"; the
                           file must be private (chmod 600)

Exit codes: 0 ok, 1 failure, 2 usage, 69 server unavailable,
77 authentication refused, 78 configuration error.`;

function number(
  raw: string | undefined,
  fallback: number,
  flag: string,
  ok: (n: number) => boolean,
  want: string,
): number | string {
  if (raw === undefined) return fallback;
  const value = Number(raw);
  return raw.trim() !== "" && ok(value) ? value : `${flag} must be ${want}, got "${raw}"`;
}

/**
 * Strict `parseArgs` that answers a usage message instead of throwing
 * (unknown flags, missing values).
 */
export function parseFlags<T extends ParseArgsOptionsConfig>(
  args: string[],
  options: T,
  allowPositionals = false,
) {
  try {
    const parsed = parseArgs({ args, options, strict: true, allowPositionals: true });
    if (!allowPositionals && parsed.positionals.length > 0) {
      return { ok: false as const, message: `Unexpected argument '${parsed.positionals[0]}'` };
    }
    return { ok: true as const, ...parsed };
  } catch (error) {
    return { ok: false as const, message: (error as Error).message };
  }
}

/** `--catch-up-max`, `--node-check-interval` and `--backoff`, or a usage message. */
function xmppTimings(
  values: Record<string, string | boolean | undefined>,
): Pick<ListenArgs, "catchUpMax" | "nodeCheckInterval" | "backoff"> | string {
  const str = (k: string) => typeof values[k] === "string" ? values[k] as string : undefined;
  const catchUpMax = number(
    str("catch-up-max"),
    1000,
    "--catch-up-max",
    (n) => Number.isInteger(n) && n >= 1,
    "a whole number >= 1",
  );
  const nodeCheckInterval = number(
    str("node-check-interval"),
    60,
    "--node-check-interval",
    (n) => n >= 0 && Number.isFinite(n),
    "a number of seconds >= 0",
  );
  if (typeof catchUpMax === "string") return catchUpMax;
  if (typeof nodeCheckInterval === "string") return nodeCheckInterval;
  const raw = str("backoff") ?? "1,30";
  const [low, high] = raw.split(",").map((p) => p.trim() === "" ? NaN : Number(p));
  if (
    raw.split(",").length !== 2 || !(low! > 0) || !(high! >= low!) || !Number.isFinite(high!)
  ) {
    return `--backoff must be MIN,MAX seconds with 0 < MIN <= MAX, got "${raw}"`;
  }
  return { catchUpMax, nodeCheckInterval, backoff: [low!, high!] };
}

/** `ADDR:PORT` (`127.0.0.1:9108`, `[::1]:9108`, `localhost:9108`), or a usage message. */
export function parseHttpAddress(text: string): HttpAddress | string {
  const m = /^\[([0-9A-Fa-f:.]+)\]:(\d+)$/.exec(text) ?? /^([^:\[\]\s]+):(\d+)$/.exec(text);
  const port = Number(m?.[2]);
  if (!m || !Number.isInteger(port) || port < 0 || port > 65535) {
    return `--http must be ADDR:PORT (127.0.0.1:9108, [::1]:9108), got "${text}"`;
  }
  return { hostname: m[1]!, port };
}

/** `--http` and `--http-token`, or a usage message. */
function httpFlags(
  values: Record<string, string | boolean | undefined>,
): Pick<ListenArgs, "http" | "httpToken"> | string {
  const raw = typeof values.http === "string" ? values.http : undefined;
  const token = typeof values["http-token"] === "string" ? values["http-token"] : undefined;
  if (raw === undefined) {
    return token === undefined
      ? { http: undefined, httpToken: undefined }
      : "--http-token needs --http";
  }
  const http = parseHttpAddress(raw);
  return typeof http === "string" ? http : { http, httpToken: token };
}

/** Parses the listener's flags. */
export function parseListenArgs(argv: string[]): ParseResult<ListenArgs> {
  const parsed = parseFlags(argv, {
    username: { type: "string", short: "a" },
    password: { type: "string", short: "b" },
    server: { type: "string", short: "s" },
    resource: { type: "string", short: "r" },
    "config-file": { type: "string", short: "c" },
    node: { type: "string", short: "n" },
    netrc: { type: "string", short: "N" },
    show: { type: "boolean", short: "S" },
    verbose: { type: "boolean", short: "v" },
    debug: { type: "boolean", short: "g" },
    version: { type: "boolean", short: "w" },
    help: { type: "boolean", short: "h" },
    port: { type: "string" },
    "pubsub-service": { type: "string" },
    "ca-file": { type: "string" },
    "insecure-tls": { type: "boolean" },
    "allow-plaintext": { type: "boolean" },
    "state-dir": { type: "string" },
    replay: { type: "string" },
    speed: { type: "string" },
    "exit-when-idle": { type: "boolean" },
    "check-config": { type: "boolean" },
    "log-format": { type: "string" },
    "catch-up": { type: "string" },
    "catch-up-max": { type: "string" },
    "node-check-interval": { type: "string" },
    backoff: { type: "string" },
    "create-missing-nodes": { type: "boolean" },
    "stop-timeout": { type: "string" },
    http: { type: "string" },
    "http-token": { type: "string" },
  });
  if (!parsed.ok) return parsed;
  const { values } = parsed;
  const port = number(
    values.port,
    5222,
    "--port",
    (n) => Number.isInteger(n) && n > 0 && n < 65536,
    "a port number",
  );
  const speed = number(
    values.speed,
    1,
    "--speed",
    (n) => n >= 0 && Number.isFinite(n),
    "a number >= 0",
  );
  const catchUp = number(
    values["catch-up"],
    20,
    "--catch-up",
    (n) => Number.isInteger(n) && n >= 0,
    "a whole number >= 0",
  );
  const stopTimeout = number(
    values["stop-timeout"],
    30,
    "--stop-timeout",
    (n) => n > 0 && Number.isFinite(n),
    "a number of seconds > 0",
  );
  const xmpp = xmppTimings(values);
  if (typeof xmpp === "string") return { ok: false, message: xmpp };
  const http = httpFlags(values);
  if (typeof http === "string") return { ok: false, message: http };
  for (const v of [port, speed, catchUp, stopTimeout]) {
    if (typeof v === "string") return { ok: false, message: v };
  }
  if (xmpp.catchUpMax < (catchUp as number)) {
    return { ok: false, message: "--catch-up-max must be at least --catch-up" };
  }
  const format = values["log-format"] ?? "text";
  if (format !== "text" && format !== "json") {
    return {
      ok: false,
      message: `--log-format must be text or json, got "${format}"`,
    };
  }
  const value: ListenArgs = {
    username: values.username,
    password: values.password,
    server: values.server ?? "lvalert.cgca.uwm.edu",
    resource: values.resource ?? "listener",
    configFile: values["config-file"],
    netrc: values.netrc,
    show: values.show ?? false,
    verbose: values.verbose ?? false,
    debug: values.debug ?? false,
    version: values.version ?? false,
    help: values.help ?? false,
    port: port as number,
    pubsubService: values["pubsub-service"],
    caFile: values["ca-file"],
    insecureTls: values["insecure-tls"] ?? false,
    allowPlaintext: values["allow-plaintext"] ?? false,
    stateDir: values["state-dir"],
    replay: values.replay,
    speed: speed as number,
    exitWhenIdle: values["exit-when-idle"] ?? false,
    checkConfig: values["check-config"] ?? false,
    logFormat: format,
    catchUp: catchUp as number,
    ...xmpp,
    createMissingNodes: values["create-missing-nodes"] ?? false,
    stopTimeout: stopTimeout as number,
    ...http,
    ignoredNode: values.node,
  };
  if (!value.version && !value.help && value.configFile === undefined) {
    return { ok: false, message: "-c/--config-file is required" };
  }
  return { ok: true, value };
}
