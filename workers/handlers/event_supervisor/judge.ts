/**
 * Every rule judged against GraceDB: the dispatcher, and the checks that
 * read more than logs and files (FAR, rates, notify, sky-map sanity,
 * trigger files, bayestarNoVirgo, multFITS start).
 *
 * @module
 */

import { isSupereventId, parseCreated, pyExp, pyFixed } from "./format.ts";
import {
  type EventView,
  type Facts,
  type FarRule,
  type FileRule,
  type IfVirgoRule,
  judgeFile,
  judgeLog,
  type LogRxRule,
  type NotifyRule,
  type RateRule,
  type Rule,
  type SanityRule,
  type TriggerRule,
  type Verdict,
  verdict,
} from "./rules.ts";
import { readSkymap } from "./skymap.ts";

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
