/**
 * Building a record: from the `new` alert's dict, or, for an event first
 * seen through another alert (missed `new`, or forgotten), from GraceDB
 * (§1.9): VOEvents, signoffs, sky maps, iDQ and EM-Bright comments, the
 * FAR verdict and the Grouper's decision. Unlike the original it also
 * rebuilds the state from labels and VOEvents, and remembers AP's own log
 * texts as already acted on, so a rebuilt event is neither stuck nor
 * re-announced.
 *
 * @module
 */

import { type GraceDbLogEntry, isEventId } from "../../../lib/gracedb/mod.ts";
import { type ChildContext, isJsonObject, type JsonObject } from "../../../lib/mod.ts";
import type { LogFacts } from "./alerts.ts";
import type { ApSettings } from "./config.ts";
import { attempt, callOptions, client, notFound } from "./gracedb.ts";
import { Plan } from "./plan.ts";
import {
  badLabels,
  eventFacts,
  type EventRecord,
  isIgnoredId,
  newRecord,
  type State,
} from "./record.ts";
import { recordSignoff, recordUpdate } from "./recorders.ts";
import { adoptVoEvents } from "./voevent.ts";

/** The dict of an event or superevent, or undefined when GraceDB has none (404). */
async function fetchObject(
  ctx: ChildContext,
  id: string,
  s: ApSettings,
): Promise<JsonObject | undefined> {
  try {
    return await attempt(`reading ${id}`, () => client(ctx).get(id, callOptions(s)));
  } catch (error) {
    if (notFound(error)) return undefined;
    throw error;
  }
}

/**
 * A record from an event or superevent dict; a superevent without its
 * preferred event's details has them fetched.
 */
export async function recordFrom(
  ctx: ChildContext,
  id: string,
  object: JsonObject,
  s: ApSettings,
): Promise<EventRecord> {
  let facts = eventFacts(id, object);
  const preferred = object.preferred_event;
  if (facts.incomplete && typeof preferred === "string" && isEventId(preferred)) {
    const event = await fetchObject(ctx, preferred, s) ??
      (isJsonObject(object.preferred_event_data) ? object.preferred_event_data : undefined);
    if (event) facts = eventFacts(id, object, event);
  }
  return newRecord(facts, s);
}

/** The state an event's labels and VOEvents imply (the original kept the initial one). */
function derivedState(rec: EventRecord, s: ApSettings): State {
  const has = (label: string) => rec.labels.includes(label);
  if (has("EM_Throttled")) return "throttled";
  if (has("EM_Superseded")) return "superseded";
  if (rec.labels.some((l) => badLabels(s).includes(l))) return "rejected";
  if (has("PE_READY")) return "complete";
  if (has("EM_READY")) return "initial_to_update";
  if (rec.voevents.some((v) => v.endsWith("-preliminary"))) return "preliminary_to_initial";
  if (has("EM_Selected")) return "selected_to_preliminary";
  return rec.currentstate;
}

function logFacts(entry: GraceDbLogEntry): LogFacts {
  return {
    comment: entry.comment,
    filename: entry.filename,
    tags: entry.tag_names,
    issuer: typeof entry.issuer === "string" ? entry.issuer : "",
    fileUrl: typeof entry.file === "string" ? entry.file : null,
  };
}

async function grouperDecision(ctx: ChildContext, p: Plan, entry: GraceDbLogEntry) {
  if (typeof entry.file !== "string") return;
  const file = entry.file;
  try {
    const bytes = await attempt(
      "reading a Grouper decision",
      () => client(ctx).downloadUrl(file, callOptions(p.s)),
    );
    const d = JSON.parse(new TextDecoder().decode(bytes));
    if (isJsonObject(d) && typeof d.groupTag === "string") {
      p.rec.grouperGroupTag = d.groupTag;
      const superseded = Array.isArray(d.EM_Superseded) ? d.EM_Superseded.map(String) : [];
      p.rec.grouperGroupMembers = [String(d.EM_Selected), ...superseded];
    }
  } catch (error) {
    if (!(error instanceof SyntaxError) && !notFound(error)) throw error;
  }
}

/** Applies one log comment, newest to oldest (so the oldest of a kind wins). */
async function applyComment(ctx: ChildContext, p: Plan, entry: GraceDbLogEntry): Promise<void> {
  const c = entry.comment;
  const rec = p.rec;
  if (c.startsWith("AP: Candidate event rejected due to large FAR")) {
    rec.farCheckresult = false;
    rec.farlogkey = "yes";
    rec.configuration.default_farthresh = Number(c.split(">= ")[1]);
  } else if (c.startsWith("AP: Candidate event has low enough FAR")) {
    rec.farCheckresult = true;
    rec.farlogkey = "yes";
    rec.configuration.default_farthresh = Number(c.split("< ")[1]);
  } else if (
    c.includes("AP: Automatically passed Virgo DQ check") || c.includes("AP: Passed Virgo DQ check")
  ) {
    rec.virgo_dqCheckresult = true;
  } else if (c.includes("AP: Rejecting because of Virgo veto")) {
    rec.virgo_dqCheckresult = false;
  } else if (c.includes("AP: Grouper made a selection")) {
    await grouperDecision(ctx, p, entry);
  } else if (
    c.startsWith("minimum glitch-FAP") ||
    c.startsWith("EM-Bright probabilities computed from detection pipeline") ||
    (p.s.virgo && (c.includes("V1 veto channel") || c.includes("V1 hardware injection")))
  ) {
    recordUpdate(p, { ...logFacts(entry), filename: "" });
  }
}

/** Reads what GraceDB knows of a GW candidate into its fresh record (§1.9). */
async function readHistory(ctx: ChildContext, rec: EventRecord, s: ApSettings): Promise<void> {
  const gracedb = client(ctx);
  const id = rec.graceid;
  const p = new Plan(ctx, rec, s, []);
  await adoptVoEvents(
    ctx,
    rec,
    await attempt("listing VOEvents", () => gracedb.voEvents(id, callOptions(s))),
    s,
  );
  const signoffs = await attempt("listing signoffs", () => gracedb.signoffs(id, callOptions(s)));
  for (const signoff of signoffs) recordSignoff(p, signoff);
  const logs = await attempt("reading the log", () => gracedb.logs(id, callOptions(s)));
  for (const entry of logs) {
    if (entry.filename.includes(".fits")) recordUpdate(p, logFacts(entry));
  }
  for (const entry of [...logs].reverse()) await applyComment(ctx, p, entry);
  // AP's own entries: what it wrote is not written again.
  const own = logs.filter((e) => e.comment.startsWith("AP: ")).map((e) => e.comment.slice(4));
  rec.loggermessages.push(...own.filter((t) => !rec.loggermessages.includes(t)));
  rec.currentstate = derivedState(rec, s);
  const acted = ["EM_Selected", "EM_Superseded", "EM_Throttled"].some((l) =>
    rec.labels.includes(l)
  );
  rec.newSeen = acted || own.length > 0;
}

/**
 * Builds the record of an event first seen through an alert other than
 * `new`; undefined when GraceDB does not know the event.
 *
 * @throws {Deferred} when GraceDB did not answer
 */
export async function reconstruct(
  ctx: ChildContext,
  id: string,
  s: ApSettings,
): Promise<EventRecord | undefined> {
  const object = await fetchObject(ctx, id, s);
  if (!object) return undefined;
  const rec = await recordFrom(ctx, id, object, s);
  if (rec.kind === "gw" && !isIgnoredId(id, s) && !(rec.offline && s.ignoreOffline)) {
    await readHistory(ctx, rec, s);
  }
  return rec;
}
