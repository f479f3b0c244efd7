/**
 * External triggers (§2.12): labels are recorded; an X-pipeline or PyGRB
 * significance comment becomes a coincidence JSON uploaded to the event's
 * log, with mail to the GRB list. No throttle, Grouper, checks or VOEvents.
 *
 * @module
 */

import type { Entry } from "./alerts.ts";
import type { Plan } from "./plan.ts";
import { recordJsonLoaded } from "./recorders.ts";
import { format } from "./text.ts";

function significance(p: Plan, comment: string): void {
  const m = /^(.*?): Significant event in on-source \(FAP = (.*?) for the most significant event\)/
    .exec(comment);
  if (!m) return p.note(`Could not read: ${comment}`);
  const [, pipe = "", fap = ""] = m;
  if (!p.once(`${pipe} coincidence found with FAP ${fap}.`)) return;
  const rec = p.rec;
  const json = JSON.stringify({
    message: format(p.s.coincText, [rec.graceid, fap]),
    loaded_to_gracedb: 0,
  });
  const field = pipe.includes("Online")
    ? "grb_online_json"
    : pipe.includes("Offline")
    ? "grb_offline_json"
    : null;
  if (field === null) return p.note(`${pipe} is neither an Online nor an Offline pipeline.`);
  rec[field] = json;
  p.upload(
    rec.graceid,
    `GRB-GW Coincidence JSON file: ${field}`,
    `coinc_${rec.graceid}.json`,
    json,
  );
  p.mail(p.s.grbEmail, `Coincidence JSON created for ${rec.graceid}`, p.s.notificationText);
}

/** Decides on one alert for an external trigger. */
export function decideExternal(p: Plan, entry: Entry): void {
  if (entry.kind === "label" && entry.label) {
    p.rec.labels.push(entry.label);
    return;
  }
  const comment = entry.log?.comment ?? "";
  if (comment.includes("Significant event in on-source")) significance(p, comment);
  else if (comment.includes("GRB-GW Coincidence JSON file")) recordJsonLoaded(p, comment);
}
