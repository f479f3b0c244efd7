/**
 * VOEvent requests (§2.10): the original's flags, its signature string and
 * de-duplication, and the record's `voevents` list rebuilt from GraceDB's
 * own list, so a request repeated after a crash is not sent twice.
 *
 * @module
 */

import type { GraceDbVoEvent, VoEventFields } from "../../../lib/gracedb/mod.ts";
import type { ChildContext } from "../../../lib/mod.ts";
import type { ApSettings } from "./config.ts";
import { attempt, callOptions, client, Deferred } from "./gracedb.ts";
import type { Plan, VoType } from "./plan.ts";
import { currentSkymap, type EventRecord } from "./record.ts";

const CODE_TYPES: Record<string, VoType> = {
  PR: "preliminary",
  IN: "initial",
  UP: "update",
  RE: "retraction",
};

/** The flags of a VOEvent the record would get now. */
export interface VoFlags {
  internal: 0 | 1;
  vetted: 0 | 1;
  openAlert: 0 | 1;
  hardwareInj: 0 | 1;
  skymap: string | null;
}

const bit = (b: boolean): 0 | 1 => (b ? 1 : 0);

function lastType(rec: EventRecord): string | undefined {
  const last = rec.voevents.at(-1);
  return last?.slice(last.lastIndexOf("-") + 1);
}

/** The flags of a `type` VOEvent for the record as it is (§2.10). */
export function voFlags(rec: EventRecord, type: VoType, s: ApSettings): VoFlags {
  const listed = s.preliminaryInternal.includes(rec.pipeline);
  const internal = s.forceAllInternal ||
    (type === "preliminary" && listed) ||
    (type === "retraction" && listed && lastType(rec) === "preliminary");
  const injections = rec.injectionsfound ?? rec.injectionHits ?? 0;
  return {
    internal: bit(internal),
    vetted: bit(type !== "preliminary"),
    openAlert: bit(rec.far !== null && rec.far < s.openFarThresh),
    hardwareInj: bit(injections > 0),
    skymap: type === "retraction" ? null : currentSkymap(rec),
  };
}

/** The original's signature of a VOEvent, e.g. `(internal,...):(1,0,0,0,None)-preliminary`. */
export function signature(f: VoFlags, type: VoType): string {
  return "(internal,vetted,open_alert,hardware_inj,skymap):" +
    `(${f.internal},${f.vetted},${f.openAlert},${f.hardwareInj},${f.skymap ?? "None"})-${type}`;
}

function sentBefore(list: string[], sig: string): boolean {
  return list.some((entry) => entry.slice(entry.indexOf("-") + 1) === sig);
}

function flag(value: unknown): 0 | 1 {
  return bit(value === true || value === 1 || value === "1" || value === "true");
}

/** The XML's Param values, for a GraceDB whose VOEvent dicts lack the flags. */
function xmlParams(xml: string): Record<string, string> {
  const params: Record<string, string> = {};
  for (const m of xml.matchAll(/<Param\b[^>]*\bname="([^"]+)"[^>]*\bvalue="([^"]*)"/g)) {
    params[m[1]!] = m[2]!;
  }
  return params;
}

/** One GraceDB VOEvent as the record lists it (§1.9 step 1), or undefined for other types. */
export async function describeVoEvent(
  ctx: ChildContext,
  v: GraceDbVoEvent,
  s: ApSettings,
): Promise<{ type: VoType; sig: string } | undefined> {
  const type = CODE_TYPES[v.voevent_type];
  if (!type) return undefined;
  let fields: Record<string, unknown> = v;
  const links = v.links as { file?: unknown } | undefined;
  if (v.internal === undefined && typeof links?.file === "string") {
    const file = links.file;
    const xml = await attempt(
      "reading a VOEvent",
      () => client(ctx).downloadUrl(file, callOptions(s)),
    );
    const p = xmlParams(new TextDecoder().decode(xml));
    const map = p.skymap_fits_basic;
    fields = {
      internal: p.internal,
      open_alert: p.OpenAlert,
      hardware_inj: p.HardwareInj,
      skymap_filename: map ? map.slice(map.indexOf("files/") + 6) : null,
    };
  }
  const skymap = typeof fields.skymap_filename === "string" && fields.skymap_filename
    ? fields.skymap_filename.split(",")[0]!
    : null;
  const f: VoFlags = {
    internal: fields.internal === undefined ? 1 : flag(fields.internal),
    vetted: bit(type !== "preliminary"),
    openAlert: flag(fields.open_alert),
    hardwareInj: flag(fields.hardware_inj),
    skymap,
  };
  return { type, sig: signature(f, type) };
}

/** Rebuilds `voevents` and the last-sent sky maps from GraceDB's list. */
export async function adoptVoEvents(
  ctx: ChildContext,
  rec: EventRecord,
  list: GraceDbVoEvent[],
  s: ApSettings,
): Promise<void> {
  const voevents: string[] = [];
  for (const v of list) {
    const d = await describeVoEvent(ctx, v, s);
    if (!d) continue;
    voevents.push(`${voevents.length + 1}-${d.sig}`);
    const skymap = /,([^,)]*)\)-/.exec(d.sig)?.[1];
    if (skymap && skymap !== "None") {
      if (d.type === "preliminary") rec.lastsentpreliminaryskymap = skymap;
      else if (d.type !== "retraction") rec.lastsentskymap = skymap;
    }
  }
  rec.voevents = voevents;
}

function failed(p: Plan, type: VoType, sig: string, error: unknown): void {
  const rec = p.rec;
  const text = `Error sending ${type} VOEvent! ${(error as Error)?.message ?? error}.`;
  p.note(text);
  if (!rec.voeventerrors.some((e) => e.endsWith(`-${type}`))) {
    p.ctx.notify(`Problem sending ${rec.graceid} VOEvent: ${type}`, text, p.s.voeventErrorEmail);
  }
  if (!sentBefore(rec.voeventerrors, sig)) {
    rec.voeventerrors.push(`${rec.voeventerrors.length + 1}-${sig}`);
  }
}

/** What GraceDB is asked for: the flags, the sky map and its type, coincidence and EM-Bright. */
function request(rec: EventRecord, f: VoFlags): VoEventFields {
  const base = f.skymap?.replace(/\.fits(\.gz)?$/, "");
  return {
    internal: f.internal === 1,
    vetted: f.vetted === 1,
    openAlert: f.openAlert === 1,
    hardwareInj: f.hardwareInj === 1,
    ...(f.skymap && base !== undefined
      ? {
        skymapFilename: f.skymap,
        skymapType: `${base}-${rec.group}${rec.search}`,
        skymapImageFilename: `${base}.png`,
      }
      : {}),
    coincComment: rec.external_trigger !== null,
    ...(rec.em_bright_info
      ? {
        probHasNs: rec.em_bright_info.ProbHasNS,
        probHasRemnant: rec.em_bright_info.ProbHasRemnant,
      }
      : {}),
  };
}

/** The flags and signature of the VOEvent to send, or undefined when it was sent already. */
async function unsent(p: Plan, type: VoType): Promise<{ f: VoFlags; sig: string } | undefined> {
  const { rec, s } = p;
  const pending = () =>
    type !== "retraction" ||
    (rec.voevents.length > 0 && !rec.voevents.some((v) => v.endsWith("-retraction")));
  const decide = () => {
    if (!pending()) return undefined;
    const f = voFlags(rec, type, s);
    const sig = signature(f, type);
    if (!sentBefore(rec.voevents, sig)) return { f, sig };
    p.note(`This ${type} VOEvent has been sent previously.`);
    return undefined;
  };
  const first = decide();
  if (!first) return undefined;
  const gracedb = client(p.ctx);
  const remote = await attempt(
    "listing VOEvents",
    () => gracedb.voEvents(rec.graceid, callOptions(s)),
  );
  if (remote.length <= rec.voevents.length) return first;
  // GraceDB built more than the record knows (a crash after a request): adopt its list.
  await adoptVoEvents(p.ctx, rec, remote, s);
  return decide();
}

/**
 * Carries out a VOEvent request: skipped when the same VOEvent (or, for a
 * retraction, any retraction) was sent; otherwise GraceDB's list is read
 * first, so one sent before a crash, or by a request that failed, is
 * recognised, then GraceDB is asked, once (never re-sent unread).
 *
 * @throws {Deferred} when GraceDB did not answer (the request is kept)
 */
export async function sendVoEvent(p: Plan, type: VoType): Promise<void> {
  const { rec, s } = p;
  const todo = await unsent(p, type);
  if (!todo) return;
  const { f, sig } = todo;
  p.note(`Requesting ${type} VOEvent from GraceDB.`);
  // One request: sent again only at the next try, after GraceDB's list is read (`unsent`).
  const options = { ...callOptions(s), maxAttempts: 1 };
  try {
    await client(p.ctx).createVoEvent(rec.graceid, type, { ...options, ...request(rec, f) });
  } catch (error) {
    failed(p, type, sig, error);
    if (error instanceof Deferred || (error as { retryable?: boolean })?.retryable === true) {
      throw new Deferred(`requesting a ${type} VOEvent`, error);
    }
    p.log(`AP: Could not send VOEvent type ${type}.`);
    return;
  }
  rec.voevents.push(`${rec.voevents.length + 1}-${sig}`);
  rec.voeventerrors = rec.voeventerrors.filter((e) => !e.endsWith(`-${type}`));
  if (type === "preliminary") rec.lastsentpreliminaryskymap = f.skymap;
  else if (type !== "retraction") rec.lastsentskymap = f.skymap;
  p.note(`${type} VOEvent created in GraceDB.`);
}
