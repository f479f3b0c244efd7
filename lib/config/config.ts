/**
 * Listener config and childConfig files, validated into typed objects.
 * Every problem is a {@linkcode ConfigError} naming the file and line.
 *
 * @module
 */

import { basename, dirname, isAbsolute, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { ConfigError } from "../core/config_error.ts";
import { handlerFiles } from "./handler_files.ts";
import { type Ini, type IniData, readIni } from "./ini.ts";

/** Extra permissions a childConfig grants its worker. */
export interface Grants {
  net: string[];
  read: string[];
  write: string[];
  env: string[];
  run: string[];
  sys: string[];
}

/** A validated childConfig file. */
export interface ChildConfig {
  /** Absolute path of the childConfig file. */
  path: string;
  processType: string;
  /** Absolute path of the handler module. */
  handlerPath: string;
  /** The handler's local modules outside the code folders (the worker may read them). */
  handlerFiles: string[];
  logDirectory: string;
  /** Python logging level: records below it are dropped (0 keeps all). */
  logLevel: number;
  print2stdout: boolean;
  /**
   * The GraceDB API the handler talks to (`[general] gracedb`, or
   * approval_processor's `[general] client` when it is a URL); the worker
   * may reach that host and no other.
   */
  gracedb: string | undefined;
  grants: Grants;
  /** The `name` heartbeat responses carry: `[data] name` (O2 configs), else the process_type. */
  heartbeatName: string;
  /** The whole file, for the handler's own sections. */
  ini: IniData;
}

/** What a child does when its worker dies. */
export type OnChildDeath = "restart" | "exit";

/** One listener section: one long-lived child. */
export interface ChildSection {
  name: string;
  line: number;
  nodes: string[];
  verbose: boolean;
  maxComplete: number;
  maxFrac: number;
  warnThr: number;
  recipients: string[];
  warnDelay: number;
  maxWarn: number;
  onChildDeath: OnChildDeath;
  maxRestarts: number;
  restartWindow: number;
  /** Checkpoint after this many alerts... */
  checkpointEvery: number;
  /** ...or this many seconds after a change. */
  checkpointInterval: number;
  /** Alerts held in memory while the journal cannot take them; beyond, they are deferred. */
  maxHeld: number;
  /** Seconds a task may run before it is abandoned. */
  taskTimeout: number;
  /** argv of a `mail`-compatible command. */
  mailCommand: string[];
  /** Commands accepted from the network (`ctl` may send any). */
  networkCommands: "all" | "none" | string[];
  /** How the child is run: a Web Worker in the listener's process, or a process of its own. */
  isolation: "worker" | "process";
  /** With `isolation = process`: the child's heap limit in MB. */
  heapMb: number;
  child: ChildConfig;
}

/** A validated listener config. */
export interface ListenerConfig {
  path: string;
  sections: ChildSection[];
  /** node name -> section name */
  owners: Map<string, string>;
  /** Non-fatal remarks (unknown keys, quoted paths). */
  warnings: string[];
}

/** Where the built-in handlers live. */
export const HANDLERS_DIR = new URL("../../workers/handlers/", import.meta.url);

const KNOWN_SECTION_KEYS = new Set([
  "nodes",
  "childconfig",
  "verbose",
  "sleep",
  "maxcomplete",
  "maxfrac",
  "warnthr",
  "recipients",
  "warndelay",
  "maxwarn",
  "on_child_death",
  "max_restarts",
  "restart_window",
  "task_timeout",
  "mail_command",
  "checkpoint_every",
  "checkpoint_interval",
  "max_held",
  "network_commands",
  "isolation",
  "heap_mb",
  "print2stdout",
  // Keys of the original example that it never read.
  "timeout",
  "buffer",
  "checkpointpath",
  "checkpointcadence",
]);

const GRANT_KEYS = ["net", "read", "write", "env", "run", "sys"] as const;
const SYS_NAMES = new Set([
  "hostname",
  "osRelease",
  "osUptime",
  "loadavg",
  "networkInterfaces",
  "systemMemoryInfo",
  "uid",
  "gid",
  "cpus",
  "homedir",
  "statfs",
  "getPriority",
  "setPriority",
  "userInfo",
]);
const PROCESS_TYPE_RE = /^[A-Za-z_][A-Za-z0-9_]*$/;
const LEVEL_NAMES: Record<string, number> = {
  notset: 0,
  debug: 10,
  info: 20,
  warning: 30,
  warn: 30,
  error: 40,
  critical: 50,
};

function words(text: string): string[] {
  return text.split(/\s+/).filter((w) => w !== "");
}

function checkRange(
  ini: Ini,
  section: string,
  key: string,
  value: number,
  ok: boolean,
  want: string,
): number {
  if (!ok || Number.isNaN(value)) {
    throw new ConfigError(
      ini.file,
      `[${section}] ${key} must be ${want}, got ${value}`,
      { line: ini.line(section, key) },
    );
  }
  return value;
}

function quotedPathWarning(
  ini: Ini,
  section: string,
  key: string,
  value: string,
): string | undefined {
  if (!/^(["']).*\1$/.test(value)) return undefined;
  return `${ini.file}:${ini.line(section, key)}: [${section}] ${key} is quoted ` +
    `(${value}); the quotes are part of the path, as in the Python tool`;
}

/** Resolves `value` against the folder of the file that names it. */
function beside(file: string, value: string): string {
  return isAbsolute(value) ? value : resolve(dirname(file), value);
}

/**
 * Reads and validates a childConfig. The handler module must exist; whether
 * it loads is checked by the worker that will run it.
 */
export async function loadChildConfig(
  path: string,
  warnings: string[] = [],
): Promise<ChildConfig> {
  const ini = await readIni(path);
  if (!ini.hasSection("general")) {
    throw new ConfigError(path, "Missing section [general]");
  }
  const processType = ini.get("general", "process_type").trim();
  let handlerPath: string;
  if (ini.has("general", "handler")) {
    handlerPath = beside(path, ini.get("general", "handler").trim());
  } else {
    if (!PROCESS_TYPE_RE.test(processType)) {
      throw new ConfigError(
        path,
        `[general] process_type "${processType}" is not a handler name (letters, digits, _)`,
        { line: ini.line("general", "process_type") },
      );
    }
    handlerPath = fileURLToPath(new URL(`${processType}.ts`, HANDLERS_DIR));
  }
  try {
    const info = await Deno.stat(handlerPath);
    if (!info.isFile) throw new Error("not a file");
  } catch (error) {
    const known = await builtInHandlers();
    throw new ConfigError(
      path,
      `No handler for process_type "${processType}" (${handlerPath}); ` +
        `built-in: ${known.join(", ") || "none found"}`,
      {
        line: ini.line(
          "general",
          ini.has("general", "handler") ? "handler" : "process_type",
        ),
        cause: error,
      },
    );
  }
  const logRaw = ini.get("general", "log_directory", dirname(path));
  const quoted = quotedPathWarning(ini, "general", "log_directory", logRaw);
  if (quoted) warnings.push(quoted);
  const home = Deno.env.get("HOME");
  if (home && resolve(beside(path, logRaw)) === resolve(home)) {
    throw new ConfigError(
      path,
      `[general] log_directory is $HOME (${home}); give the child a folder of its own`,
      { line: ini.line("general", "log_directory") ?? ini.line("general") },
    );
  }
  for (const option of ini.options("general")) {
    if (
      option.startsWith("allow_") && !(GRANT_KEYS as readonly string[]).includes(option.slice(6))
    ) {
      throw new ConfigError(
        path,
        `[general] ${option}: unknown grant; known: ${
          GRANT_KEYS.map((k) => `allow_${k}`).join(", ")
        }`,
        { line: ini.line("general", option) },
      );
    }
  }
  const grants = {} as Grants;
  for (const key of GRANT_KEYS) {
    grants[key] = words(ini.get("general", `allow_${key}`, ""));
  }
  const badSys = grants.sys.filter((name) => !SYS_NAMES.has(name));
  if (badSys.length > 0) {
    throw new ConfigError(
      path,
      `[general] allow_sys: unknown name(s) ${badSys.join(", ")}; known: ${
        [...SYS_NAMES].join(", ")
      }`,
      { line: ini.line("general", "allow_sys") },
    );
  }
  grants.read = grants.read.map((p) => beside(path, p));
  grants.write = grants.write.map((p) => beside(path, p));
  const gracedb = gracedbUrl(ini);
  if (gracedb !== undefined) {
    const { host } = new URL(gracedb);
    if (!grants.net.includes(host)) grants.net.push(host);
  }
  return {
    path,
    processType,
    handlerPath,
    handlerFiles: await handlerFiles(handlerPath),
    heartbeatName: ini.get("data", "name", processType).trim() || processType,
    logDirectory: beside(path, logRaw),
    logLevel: parseLogLevel(ini),
    print2stdout: ini.getBoolean("general", "print2stdout", true),
    gracedb,
    grants,
    ini: ini.data,
  };
}

/**
 * The GraceDB API URL of a childConfig: `[general] gracedb`, else
 * `[general] client` when it is an http(s) URL (approval_processor's key;
 * there a plain folder meant a fake GraceDB of the original's tests).
 */
function gracedbUrl(ini: Ini): string | undefined {
  const key = ini.has("general", "gracedb")
    ? "gracedb"
    : /^https?:/i.test(ini.get("general", "client", "").trim())
    ? "client"
    : undefined;
  if (key === undefined) return undefined;
  const raw = ini.get("general", key).trim();
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    url = new URL("invalid:");
  }
  if (url.protocol !== "https:" && url.protocol !== "http:") {
    throw new ConfigError(ini.file, `[general] ${key} must be an http(s) URL, got "${raw}"`, {
      line: ini.line("general", key),
    });
  }
  if (!url.pathname.endsWith("/")) url.pathname += "/";
  return url.href;
}

function parseLogLevel(ini: Ini): number {
  if (!ini.has("general", "log_level")) return 0;
  const raw = ini.get("general", "log_level").trim().toLowerCase();
  const named = LEVEL_NAMES[raw];
  if (named !== undefined) return named;
  return checkRange(
    ini,
    "general",
    "log_level",
    ini.getInt("general", "log_level"),
    true,
    "an integer",
  );
}

async function builtInHandlers(): Promise<string[]> {
  const names: string[] = [];
  try {
    for await (const entry of Deno.readDir(HANDLERS_DIR)) {
      if (entry.isFile && entry.name.endsWith(".ts")) {
        names.push(entry.name.slice(0, -3));
      }
    }
  } catch {
    // Listing is only a hint in an error message.
  }
  return names.sort();
}

function readSection(
  ini: Ini,
  name: string,
  child: ChildConfig,
): ChildSection {
  const num = (
    key: string,
    fallback: number,
    ok: (v: number) => boolean,
    want: string,
  ) => {
    const v = ini.getFloat(name, key, fallback);
    return checkRange(ini, name, key, v, ok(v), want);
  };
  const int = (key: string, fallback: number, want: string) => {
    const v = ini.getInt(name, key, fallback);
    return checkRange(ini, name, key, v, v >= 0, want);
  };
  const death = ini.get(name, "on_child_death", "restart").trim();
  if (death !== "restart" && death !== "exit") {
    throw new ConfigError(
      ini.file,
      `[${name}] on_child_death must be "restart" or "exit", got "${death}"`,
      { line: ini.line(name, "on_child_death") },
    );
  }
  const isolation = ini.get(name, "isolation", "worker").trim();
  if (isolation !== "worker" && isolation !== "process") {
    throw new ConfigError(
      ini.file,
      `[${name}] isolation must be "worker" or "process", got "${isolation}"`,
      { line: ini.line(name, "isolation") },
    );
  }
  const network = words(ini.get(name, "network_commands", "all"));
  const networkCommands = network.length === 1 && (network[0] === "all" || network[0] === "none")
    ? network[0]
    : network;
  const mailCommand = words(ini.get(name, "mail_command", "mail"));
  if (mailCommand.length === 0) {
    throw new ConfigError(ini.file, `[${name}] mail_command is empty`, {
      line: ini.line(name, "mail_command"),
    });
  }
  return {
    name,
    line: ini.line(name) ?? 0,
    nodes: words(ini.get(name, "nodes")),
    verbose: ini.getBoolean(name, "verbose", false),
    maxComplete: int("maxComplete", 100, "a whole number >= 0"),
    maxFrac: num("maxFrac", 0.5, (v) => v >= 0 && v <= 1, "between 0 and 1"),
    warnThr: num("warnThr", 1e3, (v) => v >= 0, "a number >= 0"),
    recipients: words(ini.get(name, "recipients", "")),
    warnDelay: num("warnDelay", 3600, (v) => v >= 0, "a number >= 0"),
    maxWarn: int("maxWarn", 24, "a whole number >= 0"),
    onChildDeath: death,
    maxRestarts: int("max_restarts", 5, "a whole number >= 0"),
    restartWindow: num("restart_window", 60, (v) => v > 0, "a number > 0"),
    checkpointEvery: int("checkpoint_every", 1000, "a whole number >= 0"),
    checkpointInterval: num("checkpoint_interval", 0.5, (v) => v > 0, "a number of seconds > 0"),
    maxHeld: num("max_held", 10_000, (v) => Number.isInteger(v) && v >= 1, "a whole number >= 1"),
    taskTimeout: num(
      "task_timeout",
      60,
      (v) => v > 0,
      "a number of seconds > 0",
    ),
    mailCommand,
    networkCommands,
    isolation,
    heapMb: int("heap_mb", 1024, "a whole number of MB >= 0"),
    // The original read print2stdout from the listener section; there it wins.
    child: ini.has(name, "print2stdout")
      ? { ...child, print2stdout: ini.getBoolean(name, "print2stdout") }
      : child,
  };
}

/**
 * Where a section's childConfig is: beside the listener config, or, as the
 * original read it, relative to the working folder when only that exists.
 */
async function childConfigPath(
  ini: Ini,
  name: string,
  raw: string,
  warnings: string[],
): Promise<string> {
  const near = beside(ini.file, raw);
  if (isAbsolute(raw) || await exists(near)) return near;
  const here = resolve(raw);
  if (here === near || !await exists(here)) return near;
  warnings.push(
    `${ini.file}:${ini.line(name, "childConfig")}: [${name}] childConfig ${raw} is not ` +
      `beside the listener config; using ${here}, relative to the working folder ` +
      `as the Python tool read it (write the path from the config's folder to silence this)`,
  );
  return here;
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}

/**
 * Reads a listener config and every childConfig it names.
 *
 * @throws {ConfigError} for the first problem found, naming file and line.
 */
export async function loadListenerConfig(
  path: string,
): Promise<ListenerConfig> {
  const file = resolve(path);
  // The original read its listener config with ConfigParser, not SafeConfigParser.
  const ini = await readIni(file, "ConfigParser");
  const warnings: string[] = [];
  const owners = new Map<string, string>();
  const sections: ChildSection[] = [];
  if (ini.sections().length === 0) {
    throw new ConfigError(file, "No sections: each section names one child");
  }
  for (const name of ini.sections()) {
    for (const key of ini.data.sections.get(name)?.entries.keys() ?? []) {
      if (!KNOWN_SECTION_KEYS.has(key)) {
        warnings.push(
          `${file}:${ini.line(name, key)}: [${name}] unknown key "${key}" ignored`,
        );
      }
    }
    const childRaw = ini.get(name, "childConfig").trim();
    if (!childRaw) {
      throw new ConfigError(file, `[${name}] childConfig is empty`, {
        line: ini.line(name, "childConfig"),
      });
    }
    const quoted = quotedPathWarning(ini, name, "childConfig", childRaw);
    if (quoted) warnings.push(quoted);
    const childPath = await childConfigPath(ini, name, childRaw, warnings);
    let child: ChildConfig;
    try {
      child = await loadChildConfig(childPath, warnings);
    } catch (error) {
      if (!(error instanceof ConfigError)) throw error;
      throw new ConfigError(
        file,
        `[${name}] childConfig: ${error.message}`,
        { line: ini.line(name, "childConfig"), cause: error },
      );
    }
    const section = readSection(ini, name, child);
    if (section.nodes.length === 0) {
      throw new ConfigError(file, `[${name}] nodes is empty`, {
        line: ini.line(name, "nodes"),
      });
    }
    for (const node of section.nodes) {
      const other = owners.get(node);
      if (other !== undefined) {
        throw new ConfigError(
          file,
          `Node "${node}" is listed under both [${other}] and [${name}]; a node feeds one child`,
          { line: ini.line(name, "nodes") },
        );
      }
      owners.set(node, name);
    }
    sections.push(section);
  }
  return { path: file, sections, owners, warnings };
}

/** The log file name of a child: `<process_type>_<childConfig stem>.log`. */
export function logFileName(child: ChildConfig): string {
  const stem = basename(child.path).replace(/\.ini$/, "");
  return `${child.processType}_${stem}.log`;
}
