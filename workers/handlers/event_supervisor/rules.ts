/**
 * The rules a check applies, as JSON data (they live in tasks, and tasks
 * live in snapshots), and how each is judged against what GraceDB holds.
 * A rule reads GraceDB only through {@linkcode Facts}, so judging is the
 * same whether the answers come from the network or from a test.
 *
 * @module
 */

import type { GraceDbLogEntry } from "../../../lib/gracedb/mod.ts";
import { hasTags, isSupereventId, parseCreated, pyExp, pyFixed, rx, sameTags } from "./format.ts";
import { readSkymap } from "./skymap.ts";

/** PASS iff some log comment contains one of `texts` (and carries `tags`, when given). */
export interface LogRule {
  kind: "log";
  texts: string[];
  found: string;
  missing: string;
  tags?: string[];
}

/** PASS iff some log comment matches `pattern` (`re.match`; and carries `tags`, when given). */
export interface LogRxRule {
  kind: "logrx";
  pattern: string;
  found: string;
  missing: string;
  tags?: string[];
}

/** A file that must exist, with tags and log text on its latest log entry when asked. */
export interface FileRule {
  kind: "file";
  /** A file name, or a `re.match` pattern when `regex`. */
  name: string;
  regex: boolean;
  /** Tags the file's latest log entry must carry; null: not checked. */
  tags: string[] | null;
  /** `exact`: the same tags, no more (the original); `all`: at least these. */
  tagMatch: "exact" | "all";
  /** Text the file's latest log entry must contain (or match, when `regex`). */
  log: { text: string; regex: boolean } | null;
  /** Fewer bytes than this FAIL ("suspiciously small"); null: not downloaded. */
  minBytes: number | null;
}

/** The trigger file of a cWB (`trigger_<gps>.txt`) or oLIB (`<gps>-*.json`) event. */
export interface TriggerRule {
  kind: "trigger";
  format: "cwb" | "olib";
}

/** The event's FAR lies within [min, max]. */
export interface FarRule {
  kind: "far";
  min: number;
  max: number;
}

/** No more than `(pWin + mWin) * maxRate` other events of the same kind nearby. */
export interface RateRule {
  kind: "rate";
  /** `gpstime`: events near the event's time; `created`: created near its creation. */
  by: "gpstime" | "created";
  group: string;
  pipeline: string;
  search: string | null;
  pWin: number;
  mWin: number;
  maxRate: number;
}

/** Mails `emails` that a new event exists (unless it is labelled INJ and `ignoreInj`). */
export interface NotifyRule {
  kind: "notify";
  emails: string[];
  ignoreInj: boolean;
  group: string;
  pipeline: string;
  search: string;
}

/** The sky map sums to one and is in equatorial coordinates. */
export interface SanityRule {
  kind: "sanity";
  fits: string;
}

/** `file` when V1 took part in the event; PASS without reading files otherwise. */
export interface IfVirgoRule {
  kind: "ifVirgo";
  file: FileRule;
}

/** multFITS started comparing the FITS files the event has when the check runs. */
export interface MultFitsStartRule {
  kind: "multFitsStart";
}

/** Any rule. */
export type Rule =
  | LogRule
  | LogRxRule
  | FileRule
  | TriggerRule
  | FarRule
  | RateRule
  | NotifyRule
  | SanityRule
  | IfVirgoRule
  | MultFitsStartRule;

/** A mail a check sends whatever `warnings` says (notify's). */
export interface VerdictMail {
  subject: string;
  body: string;
  to: string[];
}

/** What a check found. */
export interface Verdict {
  pass: boolean;
  /** The finding, for mails (`warning :` / `notes :`). */
  warning: string;
  /** The result line logged and annotated (`ES: ` + message). */
  message: string;
  /** Replaces the task's description (when only the answer tells it). */
  description?: string;
  /** Sent as is. */
  mail?: VerdictMail;
  /** Whether the result is written to GraceDB when `annotate` is on. @default {true} */
  annotate?: boolean;
}

/** The fields of an event or superevent the checks use. */
export interface EventView {
  far: number | null;
  gpstime: number | null;
  created: string | null;
  instruments: string;
}

/** One entry of a rate query. */
export interface Neighbour {
  id: string;
  group: string | null;
  pipeline: string | null;
  search: string | null;
}

/** GraceDB, as a check sees it: what it may read about its graceid. */
export interface Facts {
  readonly graceid: string;
  /** The event's (or superevent's) web page. */
  readonly url: string;
  event(): Promise<EventView>;
  logs(): Promise<GraceDbLogEntry[]>;
  files(): Promise<Record<string, string>>;
  labels(): Promise<string[]>;
  download(name: string): Promise<Uint8Array>;
  /** Events (or superevents, for a superevent) in a window: `gpstime` or `created`. */
  neighbours(by: "gpstime" | "created", start: number, stop: number): Promise<Neighbour[]>;
}

/** A PASS or FAIL with the original's message prefixes. */
export function verdict(pass: boolean, warning: string): Verdict {
  return {
    pass,
    warning,
    message: `${pass ? "no action required" : "action required"} : ${warning}`,
  };
}

/** Judges `rule` against GraceDB; throws when GraceDB fails or the answer is unusable. */
export async function judge(rule: Rule, facts: Facts): Promise<Verdict> {
  switch (rule.kind) {
    case "log":
    case "logrx":
      return judgeLog(rule, await facts.logs());
    case "file":
      return await judgeFile(rule, facts);
    case "trigger":
      return await judgeTrigger(rule, facts);
    case "far":
      return judgeFar(rule, await facts.event());
    case "rate":
      return await judgeRate(rule, facts);
    case "notify":
      return await judgeNotify(rule, facts);
    case "sanity":
      return judgeSanity(rule, await facts.download(rule.fits));
    case "ifVirgo":
      return await judgeIfVirgo(rule, facts);
    case "multFitsStart":
      return await judgeMultFitsStart(facts);
  }
}

/** Whether one log entry satisfies a log rule. */
export function logMatches(rule: LogRule | LogRxRule, entry: GraceDbLogEntry): boolean {
  if (rule.tags && !hasTags(entry.tag_names, rule.tags)) return false;
  return rule.kind === "log"
    ? rule.texts.some((t) => entry.comment.includes(t))
    : rx(rule.pattern).test(entry.comment);
}

function judgeLog(rule: LogRule | LogRxRule, logs: GraceDbLogEntry[]): Verdict {
  const pass = logs.some((entry) => logMatches(rule, entry));
  return verdict(pass, pass ? rule.found : rule.missing);
}

/** The name a file rule finds in a file list, versions cut off; undefined when none. */
export function findFile(rule: FileRule, names: Iterable<string>): string | undefined {
  for (const key of names) {
    if (rule.regex ? rx(rule.name).test(key) : key === rule.name) return key.split(",")[0]!;
  }
  return undefined;
}

/**
 * The verdict on a file's latest log entry (tags and log text), or the
 * plain "found" verdict when neither is asked for.
 */
export function judgeFileEntry(
  rule: FileRule,
  found: string,
  entry: GraceDbLogEntry | undefined,
): Verdict {
  if (!rule.tags && !rule.log) {
    return verdict(true, `found ${found} while ignoring tagnames and log message`);
  }
  if (!entry) throw new Error(`could not find ${found} in association with any log messages`);
  const tagsOk = !rule.tags ||
    (rule.tagMatch === "exact"
      ? sameTags(entry.tag_names, rule.tags)
      : hasTags(entry.tag_names, rule.tags));
  const log = rule.log;
  const logOk = !log ||
    (log.regex ? rx(log.text).test(entry.comment) : entry.comment.includes(log.text));
  if (rule.tags && !log) {
    return tagsOk
      ? verdict(
        true,
        `found ${found} with correct tagnames (${rule.tags.join(",")}) while ignoring log message`,
      )
      : verdict(
        false,
        `found ${found} but with incorrect tagnames (${
          entry.tag_names.join(",")
        }) while ignoring log message`,
      );
  }
  if (!rule.tags) {
    return logOk
      ? verdict(true, `found ${found} with correct log message while ignoring tagnames`)
      : verdict(false, `found ${found} but with incorrect log message while ignoring tagnames`);
  }
  // Both asked for: the original read a wrong field here and raised; judged as written.
  return tagsOk && logOk
    ? verdict(true, `found ${found} with correct tagnames (${rule.tags.join(",")}) and log message`)
    : verdict(
      false,
      `found ${found} but with incorrect tagnames (${entry.tag_names.join(",")}) or log message`,
    );
}

async function judgeFile(rule: FileRule, facts: Facts): Promise<Verdict> {
  const files = await facts.files();
  const found = findFile(rule, Object.keys(files));
  if (found === undefined) return verdict(false, `could not find ${rule.name}`);
  let entry: GraceDbLogEntry | undefined;
  if (rule.tags || rule.log) entry = (await facts.logs()).findLast((l) => l.filename === found);
  const result = judgeFileEntry(rule, found, entry);
  if (result.pass && rule.minBytes !== null) {
    const bytes = await facts.download(found);
    if (bytes.length < rule.minBytes) {
      return verdict(
        false,
        `${result.warning}. However, the file's size seems suspiciously small.`,
      );
    }
  }
  return result;
}

async function judgeTrigger(rule: TriggerRule, facts: Facts): Promise<Verdict> {
  const gps = (await facts.event()).gpstime;
  if (gps === null) throw new Error(`${facts.graceid} has no gpstime`);
  const file: FileRule = rule.format === "cwb"
    ? { ...PLAIN_FILE, name: `trigger_${pyFixed(gps, 4)}.txt` }
    // oLIB names whole-second events "1187008882.0-...", so every ".00" becomes ".0".
    : { ...PLAIN_FILE, name: `${pyFixed(gps, 2)}-(.*).json`.replaceAll(".00", ".0"), regex: true };
  return await judgeFile(file, facts);
}

const PLAIN_FILE: FileRule = {
  kind: "file",
  name: "",
  regex: false,
  tags: null,
  tagMatch: "exact",
  log: null,
  minBytes: null,
};

function judgeFar(rule: FarRule, event: EventView): Verdict {
  const { far } = event;
  const { min, max } = rule;
  if (far === null) return verdict(false, "FAR is not defined!");
  if (far > max) return verdict(false, `FAR=${pyExp(far, 3)} > ${pyExp(max, 3)}`);
  if (far < min) return verdict(false, `FAR=${pyExp(far, 3)} < ${pyExp(min, 3)}`);
  return verdict(true, `${pyExp(min, 3)} <= FAR=${pyExp(far, 3)} <= ${pyExp(max, 3)}`);
}

async function judgeRate(rule: RateRule, facts: Facts): Promise<Verdict> {
  const event = await facts.event();
  let center: number;
  if (rule.by === "gpstime") {
    if (event.gpstime === null) throw new Error(`${facts.graceid} has no gpstime`);
    center = event.gpstime;
  } else {
    center = parseCreated(event.created ?? "");
    if (!Number.isFinite(center)) {
      throw new Error(`${facts.graceid} has no readable creation time: ${event.created}`);
    }
  }
  const start = Math.floor(center - rule.mWin);
  const stop = Math.ceil(center + rule.pWin);
  const all = await facts.neighbours(rule.by, start, stop);
  // Superevents have no group, pipeline or search of their own: every other one counts.
  const superevent = isSupereventId(facts.graceid);
  const count = all.filter((n) =>
    n.id !== facts.graceid &&
    (superevent || (n.group === rule.group && n.pipeline === rule.pipeline &&
      n.search === rule.search))
  ).length;
  const pass = count <= (rule.pWin + rule.mWin) * rule.maxRate;
  const warning = `found ${count} events within (-${pyFixed(rule.mWin, 3)}, +${
    pyFixed(rule.pWin, 3)
  }) of ${facts.graceid}`;
  if (rule.by === "created") {
    return { ...verdict(pass, warning), message: `${verdict(pass, warning).message} creation` };
  }
  // The original's local-rate PASS carries an inner prefix; kept byte-exact.
  return pass
    ? { pass, warning, message: `event_supervisor : no action required : ${warning}` }
    : verdict(false, warning);
}

async function judgeNotify(rule: NotifyRule, facts: Facts): Promise<Verdict> {
  if (rule.ignoreInj && (await facts.labels()).includes("INJ")) {
    return { ...verdict(true, "event is labelled INJ: nobody notified"), annotate: false };
  }
  const body = [
    `group    : ${rule.group}`,
    `pipeline : ${rule.pipeline}`,
    `search   : ${rule.search}`,
    "",
    facts.url,
  ].join("\n");
  return {
    ...verdict(true, `notified ${rule.emails.join(" ")}`),
    annotate: false,
    mail: { subject: `new GraceDb Event: ${facts.graceid}`, body, to: rule.emails },
  };
}

async function judgeSanity(rule: SanityRule, bytes: Uint8Array): Promise<Verdict> {
  const map = await readSkymap(bytes);
  if (map.coordsys === undefined) throw new Error(`${rule.fits} has no COORDSYS keyword`);
  const r = pyExp(1 - map.sum, 6);
  const normed = Math.abs(1 - map.sum) < 1e-6;
  const coord = map.coordsys === "C";
  const f = rule.fits;
  if (normed && coord) {
    return verdict(true, `${f} is properly normalized (1-sum=${r}) and in Equatorial coordinates`);
  }
  if (normed) {
    // The original wrote "no action required" here yet failed; a FAIL says "action required".
    return verdict(
      false,
      `${f} is properly normalized (1-sum=${r}) but is not in Equatorial coordinates`,
    );
  }
  if (coord) {
    return verdict(
      false,
      `${f} is not properly normalized (1-sum=${r}) but is in Equatorial coordinates`,
    );
  }
  const warning =
    `${f} is not properly normalized (1-sum=${r}) and is not in Equatorial coordinates`;
  return { pass: false, warning, message: `event_supervisor : action required : ${warning}` };
}

async function judgeIfVirgo(rule: IfVirgoRule, facts: Facts): Promise<Verdict> {
  const instruments = (await facts.event()).instruments.split(",").map((s) => s.trim());
  if (!instruments.includes("V1")) {
    // The original left the warning unset here, so mails said "notes : None".
    return verdict(
      true,
      "V1 not in list of instruments and therefore existence of bayestar_no_virgo.fits.gz is irrelevant",
    );
  }
  return await judgeFile(rule.file, facts);
}

/** FITS names of a file list, sorted, without versioned keys. */
export function fitsNames(files: Record<string, string>): string[] {
  return Object.keys(files).filter((k) => k.endsWith(".fits") || k.endsWith(".fits.gz")).sort();
}

async function judgeMultFitsStart(facts: Facts): Promise<Verdict> {
  const names = fitsNames(await facts.files());
  const list = names.join(", ");
  const rule: LogRxRule = {
    kind: "logrx",
    pattern: `started skymap comparison for .*${names.join(".*")}.*`,
    found: `found multFITS start message for ${list}`,
    missing: `could not find multFITS start message for ${list}`,
  };
  return {
    ...judgeLog(rule, await facts.logs()),
    description: `check that multFITS started processing ${list}`,
  };
}
