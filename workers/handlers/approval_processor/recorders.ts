/**
 * What log entries and signoffs add to a record (§2.9, §2.11): lvem sky
 * maps, iDQ minimum FAPs, EM-Bright probabilities, resent VOEvents, RAVEN
 * coincidences, and [opt-virgo] Virgo statements.
 *
 * @module
 */

import type { LogFacts, SignoffFacts } from "./alerts.ts";
import type { Plan } from "./plan.ts";
import { skymaps } from "./record.ts";
import { format, pyFloat } from "./text.ts";

function between(text: string, start: string, end: string): string | undefined {
  const a = text.indexOf(start);
  if (a < 0) return undefined;
  const b = text.indexOf(end, a + start.length);
  return b < 0 ? undefined : text.slice(a + start.length, b);
}

/** Records an lvem-tagged sky map upload (each file name once). */
function recordSkymap(p: Plan, log: LogFacts): void {
  const known = skymaps(p.rec);
  if (known.some(([, name]) => name === log.filename)) return;
  p.rec.lvemskymaps[`${known.length + 1}-${log.filename}`] = log.issuer;
  p.once(`Got the lvem skymap ${log.filename}.`);
}

function recordIdq(p: Plan, comment: string): void {
  const pipeline = between(comment, "for ", " at ");
  const ifo = between(comment, "at ", " with");
  const is = comment.indexOf("is ");
  const value = is < 0 ? NaN : parseFloat(comment.slice(is + 3));
  if (!pipeline || !ifo || Number.isNaN(value)) {
    p.note(`Could not read the iDQ comment: ${comment}`);
    return;
  }
  p.rec.idqvalues[`${pipeline}.${ifo}`] = value;
  p.once(`Got the minfap for ${ifo} using ${pipeline} is ${pyFloat(value)}.`);
}

function recordResent(p: Plan, comment: string): void {
  const m = /^resent VOEvent (.*) in (voevents|voeventerrors)\s*$/.exec(comment);
  if (!m) return p.note(`Could not read the resent VOEvent comment: ${comment}`);
  p.rec[m[2] as "voevents" | "voeventerrors"].push(m[1]!);
}

function recordEmBright(p: Plan, comment: string): void {
  const ns = /neutron star\s*=\s*([-+\d.eE]+)\s*%/.exec(comment);
  const remnant = /in excess of\s*([-+\d.eE]+)\s*M_sun\s*=\s*([-+\d.eE]+)\s*%/.exec(comment);
  if (!ns || !remnant) return p.note("Could not read the EM-Bright probabilities.");
  p.rec.em_bright_info = {
    ProbHasNS: Number(ns[1]) / 100,
    ProbHasRemnant: Number(remnant[2]) / 100,
    RemnantMassThreshInM_Sun: Number(remnant[1]),
  };
  p.once("EM Bright probabilities recorded.");
}

/** The external trigger and FAR a RAVEN comment names. */
export function ravenFacts(comment: string): { ext: string; far: string } | undefined {
  const ext = /external trigger\s*<a[^>]*>([^<]+)<\/a>/.exec(comment)?.[1] ??
    /external trigger\s+([A-Za-z0-9]+)/.exec(comment)?.[1];
  const far = /FAR = (.*?)(?: Hz|$)/.exec(comment)?.[1];
  return ext && far !== undefined ? { ext: ext.trim(), far: far.trim() } : undefined;
}

function recordRaven(p: Plan, comment: string): void {
  const facts = ravenFacts(comment);
  if (!facts) return p.note(`Could not read the RAVEN comment: ${comment}`);
  const { ext, far } = facts;
  if (!p.once(`RAVEN coincidence found with FAR ${far}. External trigger ${ext}.`)) return;
  const rec = p.rec;
  rec.external_trigger = ext;
  const other = p.lookup(ext);
  const pipeline = other?.pipeline ?? rec.extPipelines[ext] ?? "unknown";
  const json = JSON.stringify({
    message: format(p.s.emCoincText, [ext, pipeline, rec.graceid, far]),
    loaded_to_gracedb: 0,
  });
  rec.em_coinc_json = json;
  if (other) other.em_coinc_json = json;
  const comment2 = "GRB-GW Coincidence JSON file: em_coinc_json";
  p.upload(rec.graceid, comment2, `coinc_${rec.graceid}.json`, json);
  p.upload(ext, comment2, `coinc_${ext}.json`, json);
  p.mail(p.s.grbEmail, `Coincidence JSON created for ${ext}`, p.s.notificationText);
}

/** A coincidence JSON file came back in the log: it is loaded into GraceDB. */
export function recordJsonLoaded(p: Plan, comment: string): void {
  const field = /file: (\w+)/.exec(comment)?.[1];
  if (field !== "em_coinc_json" && field !== "grb_online_json" && field !== "grb_offline_json") {
    return;
  }
  const stored = p.rec[field];
  if (stored === null) return;
  try {
    p.rec[field] = JSON.stringify({ ...JSON.parse(stored), loaded_to_gracedb: 1 });
  } catch {
    p.note(`The stored ${field} is not JSON`);
  }
}

function recordVirgoDq(p: Plan, comment: string): void {
  const verdict = between(comment, "this event ", " vetoed");
  if (verdict !== "IS" && verdict !== "IS NOT") return p.note(`Could not read: ${comment}`);
  const rec = p.rec;
  rec.virgo_dqIsVetoed = verdict === "IS";
  if (p.s.useVirgoDQComment) {
    p.once(`Virgo ${verdict} vetoing this trigger. Config setting: virgo_dqCheck turned on.`);
    return;
  }
  p.once(
    `Virgo ${verdict} vetoing this trigger. Config setting: virgo_dqCheck turned off. ` +
      "Thus, if vetoed, labeling DQV.",
  );
  rec.virgo_dqCheckresult = verdict !== "IS";
  if (verdict === "IS" && p.onceLogged("Labeling DQV.")) p.label("DQV");
}

function recordVirgoInjections(p: Plan, comment: string): void {
  const text = between(comment, "V1 hardware injection: ", " injections");
  if (text !== "DID NOT FIND" && text !== "DID FIND" && text !== "FOUND") {
    return p.note(`Could not read: ${comment}`);
  }
  const rec = p.rec;
  rec.virgoInjections = text === "DID NOT FIND" ? 0 : 1;
  const setting = p.s.useVirgoInjComment ? "on" : "off";
  p.once(`Virgo ${text} injections. Config setting: use_virgoInjComment turned ${setting}.`);
  if (p.s.useVirgoInjComment || text !== "DID FIND") return;
  if (rec.injectionCheckresult !== null) {
    rec.injectionCheckresult = false;
    rec.injectionsfound = (rec.injectionsfound ?? 0) + 1;
  }
  if (!rec.labels.includes("INJ")) {
    p.log("AP: Labeling INJ.");
    p.label("INJ");
  }
}

/** Records a log entry of a GW candidate (§1.7 step 4, `update`). */
export function recordUpdate(p: Plan, log: LogFacts): void {
  if (/\.fits(\.gz)?$/.test(log.filename)) {
    if (log.tags.some((tag) => p.s.skymapTags.includes(tag))) recordSkymap(p, log);
    return;
  }
  const c = log.comment;
  if (!c) return;
  if (c.startsWith("minimum glitch-FAP")) recordIdq(p, c);
  else if (c.startsWith("resent VOEvent")) recordResent(p, c);
  else if (c.includes("EM-Bright probabilities computed from detection pipeline")) {
    recordEmBright(p, c);
  } else if (c.includes("Temporal coincidence with external trigger")) recordRaven(p, c);
  else if (c.includes("GRB-GW Coincidence JSON file")) recordJsonLoaded(p, c);
  else if (p.s.virgo && c.includes("V1 veto channel") && c.endsWith("vetoed")) recordVirgoDq(p, c);
  else if (p.s.virgo && c.includes("V1 hardware injection") && c.endsWith("injections")) {
    recordVirgoInjections(p, c);
  }
}

/** Records a signoff: operators by instrument (the last one wins), advocates in a list. */
export function recordSignoff(p: Plan, signoff: SignoffFacts): void {
  if (signoff.signoff_type === "OP") {
    p.rec.operatorsignoffs[signoff.instrument] = signoff.status;
  } else if (signoff.signoff_type === "ADV") {
    p.rec.advocatesignoffs.push(signoff.status);
  } else {
    p.note(`Ignoring a signoff of type ${signoff.signoff_type}.`);
  }
}
