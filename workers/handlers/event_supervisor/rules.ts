/**
 * The rules a check applies, as JSON data (they live in tasks, and tasks
 * live in snapshots), and the LOG and FILE primitives of the original
 * (`judge.ts` judges every rule). A rule reads GraceDB only through
 * {@linkcode Facts}, so judging is the same whether the answers come from
 * the network or from a test.
 *
 * @module
 */

import type { GraceDbLogEntry } from "../../../lib/gracedb/mod.ts";
import { hasTags, rx, sameTags } from "./format.ts";

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

/** Whether a log entry is one of event_supervisor's own `ES:` annotations. */
export function isAnnotation(entry: Pick<GraceDbLogEntry, "comment" | "tag_names">): boolean {
  return entry.comment.startsWith("ES: ") && entry.tag_names.includes("event_supervisor");
}

/**
 * Whether one log entry satisfies a log rule. Our own annotations never
 * do: a site's "could not find log message X" must not satisfy the next
 * check for X.
 */
export function logMatches(rule: LogRule | LogRxRule, entry: GraceDbLogEntry): boolean {
  if (isAnnotation(entry)) return false;
  if (rule.tags && !hasTags(entry.tag_names, rule.tags)) return false;
  return rule.kind === "log"
    ? rule.texts.some((t) => entry.comment.includes(t))
    : rx(rule.pattern).test(entry.comment);
}

export function judgeLog(rule: LogRule | LogRxRule, logs: GraceDbLogEntry[]): Verdict {
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

export async function judgeFile(rule: FileRule, facts: Facts): Promise<Verdict> {
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
