/**
 * The childConfig, read once and checked whole at start (a missing
 * option or a value of the wrong type is a `ConfigError` naming
 * `file:line`, so the listener exits 78 before anything runs, not at the
 * first alert as the original did).
 *
 * @module
 */

import { ConfigError, type Ini } from "../../../lib/mod.ts";
import { CATALOG, UNREACHABLE } from "./catalog.ts";
import type { CheckSpec, OptionKind, TaskEntry } from "./catalog_types.ts";
import { customCheck } from "./custom.ts";
import { strtobool, words } from "./format.ts";

/** `[general]` as event_supervisor reads it. */
export interface General {
  /** Write each result to the event's GraceDB log (`ES: ...`). */
  annotate: boolean;
  /** Send the per-check mails (success, failure, exception). */
  warnings: boolean;
  /** Seconds a check keeps retrying GraceDB after it comes due (extension). */
  checkTimeout: number;
  /** Complete checks an alert already proves, without reading GraceDB (extension). */
  completeEarly: boolean;
  /** Make no second item per (graceid, check, key) while one is pending (extension). */
  dedupe: boolean;
  /** Also log each result to `<log_directory>/<graceid>.log`. */
  graceidLogs: boolean;
}

/** Everything the handler reads from the childConfig. */
export interface Settings {
  general: General;
  /** Enabled checks (built-in sections present, then the site's own), in creation order. */
  checks: CheckSpec[];
  /** Sections present that nothing reads (for one log line at the first alert). */
  unread: string[];
}

const COMMON: Record<string, OptionKind> = {
  "email on success": "words",
  "email on failure": "words",
  "email on exception": "words",
  "far thr": "number?",
};

function fail(config: Ini, section: string, option: string | undefined, message: string): never {
  throw new ConfigError(config.file, message, { line: config.line(section, option) });
}

/** Checks one option against its kind; missing required options are errors. */
export function checkOption(config: Ini, section: string, option: string, kind: OptionKind): void {
  const optional = kind.endsWith("?");
  const base = kind.replace("?", "");
  if (!config.has(section, option)) {
    if (optional) return;
    fail(config, section, undefined, `Missing required option "${option}" in [${section}]`);
  }
  const value = config.get(section, option).trim();
  switch (base) {
    case "seconds":
    case "number": {
      const n = config.getFloat(section, option);
      if (Number.isNaN(n) || (base === "seconds" && !(n >= 0 && Number.isFinite(n)))) {
        fail(
          config,
          section,
          option,
          `[${section}] ${option} must be ${
            base === "seconds" ? "a number of seconds >= 0" : "a number"
          }, got "${value}"`,
        );
      }
      return;
    }
    case "strtobool":
      if (strtobool(value) === undefined) {
        fail(
          config,
          section,
          option,
          `[${section}] ${option} is not a boolean: "${value}" (y/yes/t/true/on/1 or n/no/f/false/off/0)`,
        );
      }
      return;
    case "empty":
      if (value !== "") {
        fail(config, section, option, `[${section}] ${option} is not implemented: leave it empty`);
      }
      return;
  }
}

/** The timeout options a check's tasks read, with their kinds. */
export function dtOptions(entries: readonly TaskEntry[], out = new Map<string, OptionKind>()) {
  for (const entry of entries) {
    if ("forEach" in entry) dtOptions(entry.tasks, out);
    else if ("byPipeline" in entry) {
      for (const tasks of Object.values(entry.byPipeline)) dtOptions(tasks, out);
    } else if (out.get(entry.dt) !== "seconds") {
      out.set(entry.dt, entry.ifOption === entry.dt ? "seconds?" : "seconds");
    }
  }
  return out;
}

function checkSection(config: Ini, spec: CheckSpec): void {
  const options = { ...COMMON, ...Object.fromEntries(dtOptions(spec.tasks)), ...spec.options };
  for (const [option, kind] of Object.entries(options)) {
    checkOption(config, spec.section, option, kind);
  }
  for (const option of ["chansets", "ifos", "classifiers"]) {
    if (options[option] && words(config.get(spec.section, option)).length === 0) {
      fail(config, spec.section, option, `[${spec.section}] ${option} must name at least one`);
    }
  }
}

function readGeneral(config: Ini): General {
  const bool = (option: string, fallback?: boolean) =>
    config.getBoolean("general", option, fallback);
  if (!config.has("general", "gracedb")) {
    fail(
      config,
      "general",
      undefined,
      'Missing required option "gracedb" in [general]: event_supervisor reads GraceDB ' +
        "(e.g. gracedb = https://gracedb.ligo.org/api/), and its worker may reach only that host",
    );
  }
  for (const option of ["annotate", "warnings"]) {
    if (!config.has("general", option)) {
      fail(config, "general", undefined, `Missing required option "${option}" in [general]`);
    }
  }
  checkOption(config, "general", "check_timeout", "seconds?");
  const checkTimeout = config.getFloat("general", "check_timeout", 60);
  if (!(checkTimeout > 0)) {
    fail(config, "general", "check_timeout", "[general] check_timeout must be > 0");
  }
  return {
    annotate: bool("annotate"),
    warnings: bool("warnings"),
    checkTimeout,
    completeEarly: bool("complete_early", true),
    dedupe: bool("dedupe", true),
    graceidLogs: bool("graceid_logs", true),
  };
}

const OWN = new Set(["general", "data"]);

/** Reads and checks the whole childConfig. */
export function readSettings(config: Ini): Settings {
  const general = readGeneral(config);
  const builtIn = new Set(CATALOG.map((s) => s.section));
  const checks: CheckSpec[] = [];
  for (const spec of CATALOG) {
    if (!config.hasSection(spec.section)) continue;
    checkSection(config, spec);
    checks.push(spec);
  }
  const unread: string[] = [];
  for (const section of config.sections()) {
    if (OWN.has(section) || builtIn.has(section)) continue;
    if (config.has(section, "check") && !UNREACHABLE.includes(section)) {
      const spec = customCheck(config, section);
      checkSection(config, spec);
      checks.push(spec);
    } else {
      unread.push(section);
    }
  }
  return { general, checks, unread };
}

const cache = new WeakMap<Ini, Settings>();

/** {@linkcode readSettings}, once per childConfig. */
export function settingsOf(config: Ini): Settings {
  let s = cache.get(config);
  if (!s) cache.set(config, s = readSettings(config));
  return s;
}
