/**
 * The childConfig of approval_processor, read once and checked at start:
 * every key the original read on every alert must be there and have the
 * right type, so a bad file stops the listener with `file:line` (exit 78)
 * instead of failing on each alert as the original did.
 *
 * @module
 */

import { ConfigError, type Ini } from "../../../lib/mod.ts";
import { addresses, commaList } from "./text.ts";

/** Parameters of one pipeline throttle (a `[<group>_<pipeline>[_<search>]]` section). */
export interface ThrottleParams {
  throttleWin: number;
  targetRate: number;
  requireManualReset: boolean;
  conf: number;
}

/** Everything the handler reads from its childConfig. */
export interface ApSettings {
  /** The childConfig file. */
  file: string;
  forgetTimeout: number;
  forceAllInternal: boolean;
  preliminaryInternal: string[];
  voeventErrorEmail: string[];
  /** Graceid prefixes ignored as MDC or simulation (`[general] ignore_prefixes`). */
  ignorePrefixes: string[];
  /** [opt-offline] `[general] ignore_offline_triggers`. */
  ignoreOffline: boolean;
  /** Seconds one GraceDB call may take, its retries included. */
  callTime: number;
  /** Seconds before a failed GraceDB action is first retried (then doubling, up to 600). */
  retryDelay: number;
  emCoincText: string;
  coincText: string;
  notificationText: string;
  grbEmail: string[];
  hardwareInj: boolean;
  waitForHardwareInj: number;
  farThresh: number;
  openFarThresh: number;
  injectionWindow: number;
  /** [opt-virgo] Virgo comments are read (either Virgo key is present). */
  virgo: boolean;
  useVirgoInjComment: boolean;
  useVirgoDQComment: boolean;
  humanscimons: boolean;
  advocates: boolean;
  advocateText: string;
  advocateEmail: string[];
  ignoreIdq: string;
  idqThresh: number;
  idqPipelines: string[];
  /** Log tags that make an uploaded sky map count as the LV-EM one. */
  skymapTags: string[];
  grouperWin: number;
  /** The Grouper runs (baseline); off, the master flow with its injection wait. */
  grouper: boolean;
  decisionWin: number;
  /** The raw file, for per-pipeline thresholds and throttle sections. */
  ini: Ini;
}

const THROTTLE_KEYS = ["throttleWin", "targetRate", "requireManualReset", "conf"] as const;

function fail(ini: Ini, section: string, key: string | undefined, message: string): ConfigError {
  return new ConfigError(ini.file, message, { line: ini.line(section, key) });
}

function text(ini: Ini, section: string, key: string, fallback?: string): string {
  if (!ini.hasSection(section) && fallback === undefined) {
    throw new ConfigError(ini.file, `approval_processor needs section [${section}] (${key})`);
  }
  return ini.get(section, key, fallback).trim();
}

function yesNo(ini: Ini, section: string, key: string): boolean {
  const value = text(ini, section, key);
  if (value !== "yes" && value !== "no") {
    throw fail(
      ini,
      section,
      key,
      `[${section}] ${key.toLowerCase()} must be yes or no, got "${value}"`,
    );
  }
  return value === "yes";
}

interface Range {
  min?: number;
  max?: number;
  above?: number;
}

function number(ini: Ini, section: string, key: string, range: Range = {}, fallback?: number) {
  if (fallback === undefined) text(ini, section, key);
  const value = ini.getFloat(section, key, fallback);
  const bad = Number.isNaN(value) ||
    (range.min !== undefined && value < range.min) ||
    (range.max !== undefined && value > range.max) ||
    (range.above !== undefined && !(value > range.above));
  if (bad) {
    const want = range.above !== undefined
      ? `> ${range.above}`
      : range.max !== undefined
      ? `between ${range.min} and ${range.max}`
      : `>= ${range.min}`;
    throw fail(ini, section, key, `[${section}] ${key.toLowerCase()} must be a number ${want}`);
  }
  return value;
}

/** Checks the per-pipeline overrides (`farthresh[gstlal.LowMass] = ...`). */
function checkOverrides(ini: Ini, section: string, prefix: string): void {
  if (!ini.hasSection(section)) return;
  for (const option of ini.options(section)) {
    if (option.startsWith(`${prefix}[`)) number(ini, section, option, { min: 0 });
  }
}

/** The throttle parameters of one section, checked. */
export function readThrottle(ini: Ini, section: string): ThrottleParams {
  const missing = THROTTLE_KEYS.filter((key) => !ini.has(section, key));
  if (missing.length > 0) {
    throw fail(ini, section, undefined, `[${section}] lacks ${missing.join(", ")}`);
  }
  return {
    throttleWin: number(ini, section, "throttleWin", { above: 0 }),
    targetRate: number(ini, section, "targetRate", { min: 0 }),
    requireManualReset: ini.getBoolean(section, "requireManualReset"),
    conf: number(ini, section, "conf", { min: 0, max: 1 }),
  };
}

/** Every section holding a throttle key is a throttle section; each is checked. */
function checkThrottles(ini: Ini): void {
  readThrottle(ini, "default_PipelineThrottle");
  for (const section of ini.sections()) {
    if (
      THROTTLE_KEYS.some((key) => ini.data.sections.get(section)?.entries.has(key.toLowerCase()))
    ) {
      readThrottle(ini, section);
    }
  }
}

function readGraceDb(ini: Ini): void {
  if (ini.has("general", "gracedb")) return;
  if (!ini.has("general", "client")) {
    throw fail(
      ini,
      "general",
      undefined,
      "approval_processor needs a GraceDB: set [general] client (or gracedb) to its API URL",
    );
  }
  const client = ini.get("general", "client").trim();
  if (!/^https?:\/\//i.test(client)) {
    throw fail(
      ini,
      "general",
      "client",
      `[general] client must be a GraceDB API URL, got "${client}": the original's local ` +
        "fake GraceDB folder is not supported (run a GraceDB test server and name its URL)",
    );
  }
}

function readGrouper(ini: Ini): Pick<ApSettings, "grouperWin" | "grouper" | "decisionWin"> {
  const grouperWin = number(ini, "grouper", "grouperWin", { above: 0 });
  const hasDecision = ini.has("grouper", "decisionWin");
  const grouper = ini.getBoolean("grouper", "use_grouper", hasDecision);
  if (grouper && !hasDecision) {
    throw fail(ini, "grouper", "use_grouper", "[grouper] use_grouper needs decisionWin");
  }
  const decisionWin = hasDecision ? number(ini, "grouper", "decisionWin", { min: 0 }) : 0;
  return { grouperWin, grouper, decisionWin };
}

/**
 * Reads and checks the whole childConfig.
 *
 * @throws {ConfigError} naming the file and line of the first problem
 */
export function readSettings(ini: Ini): ApSettings {
  readGraceDb(ini);
  checkThrottles(ini);
  checkOverrides(ini, "farCheck", "farthresh");
  checkOverrides(ini, "idq_joint_fapCheck", "idqthresh");
  const virgo = ini.has("injectionCheck", "use_virgoInjComment") ||
    ini.has("virgo_dqCheck", "use_virgoDQComment");
  return {
    file: ini.file,
    forgetTimeout: number(ini, "general", "forgetmenow_timeout", { above: 0 }),
    forceAllInternal: yesNo(ini, "general", "force_all_internal"),
    preliminaryInternal: commaList(text(ini, "general", "preliminary_internal")),
    voeventErrorEmail: addresses(text(ini, "general", "voeventerror_email")),
    ignorePrefixes: addresses(text(ini, "general", "ignore_prefixes", "M")),
    ignoreOffline: ini.getBoolean("general", "ignore_offline_triggers", false),
    callTime: number(ini, "general", "gracedb_call_time", { above: 0 }, 20),
    retryDelay: number(ini, "general", "gracedb_retry_delay", { above: 0 }, 30),
    emCoincText: text(ini, "GRB_alerts", "em_coinc_text"),
    coincText: text(ini, "GRB_alerts", "coinc_text"),
    notificationText: text(ini, "GRB_alerts", "notification_text"),
    grbEmail: addresses(text(ini, "GRB_alerts", "grb_email")),
    hardwareInj: yesNo(ini, "labelCheck", "hardware_inj"),
    waitForHardwareInj: number(ini, "labelCheck", "wait_for_hardware_inj", { min: 0 }),
    farThresh: number(ini, "farCheck", "default_farthresh", {}),
    openFarThresh: number(ini, "farCheck", "open_default_farthresh", {}),
    injectionWindow: number(ini, "injectionCheck", "time_duration", { min: 0 }),
    virgo,
    useVirgoInjComment: virgo && ini.getBoolean("injectionCheck", "use_virgoInjComment", false),
    useVirgoDQComment: virgo && ini.getBoolean("virgo_dqCheck", "use_virgoDQComment", false),
    humanscimons: yesNo(ini, "operator_signoffCheck", "humanscimons"),
    advocates: yesNo(ini, "advocate_signoffCheck", "advocates"),
    advocateText: text(ini, "advocate_signoffCheck", "advocate_text"),
    advocateEmail: addresses(text(ini, "advocate_signoffCheck", "advocate_email")),
    ignoreIdq: text(ini, "idq_joint_fapCheck", "ignore_idq"),
    idqThresh: number(ini, "idq_joint_fapCheck", "default_idqthresh", {}),
    idqPipelines: commaList(text(ini, "idq_joint_fapCheck", "idq_pipelines")),
    skymapTags: addresses(text(ini, "have_lvem_skymapCheck", "skymap_tags", "lvem")),
    ...readGrouper(ini),
    ini,
  };
}

const cache = new WeakMap<Ini, ApSettings>();

/** The settings of a childConfig, read once per loaded file. */
export function settingsOf(ini: Ini): ApSettings {
  let settings = cache.get(ini);
  if (!settings) cache.set(ini, settings = readSettings(ini));
  return settings;
}

/** A per-pipeline threshold (`<prefix>[<pipeline>.<search>]`), or the default. */
export function threshold(
  s: ApSettings,
  section: string,
  prefix: string,
  pipeline: string,
  search: string,
  fallback: number,
): number {
  const key = `${prefix}[${pipeline}.${search}]`;
  return s.ini.has(section, key) ? s.ini.getFloat(section, key) : fallback;
}

/** The throttle parameters for a key: its own section, else `[default_PipelineThrottle]`. */
export function throttleParams(s: ApSettings, key: string): ThrottleParams {
  const own = s.ini.hasSection(key) && s.ini.has(key, "throttleWin");
  return readThrottle(s.ini, own ? key : "default_PipelineThrottle");
}
