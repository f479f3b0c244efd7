/**
 * The per-event record (the original's event dictionary), as plain JSON
 * so that it lives in a queue item and is checkpointed with it, and its
 * construction from an event or superevent dict of either GraceDB schema.
 *
 * @module
 */

import { isJsonObject, type JsonObject } from "../../../lib/mod.ts";
import type { ApSettings } from "./config.ts";

/** States of a GW candidate (§1.8). */
export type State =
  | "new_awaiting_grouperSelection"
  | "new_to_preliminary"
  | "selected_to_preliminary"
  | "preliminary_to_initial"
  | "initial_to_update"
  | "complete"
  | "rejected"
  | "throttled"
  | "superseded";

/** A check's verdict: passed, failed, or not decidable yet. */
export type Verdict = boolean | null;

/** The record of one event or superevent; field names are the original's. */
export interface EventRecord {
  graceid: string;
  /** `gw` (a candidate), `external` (a GRB or other external trigger). */
  kind: "gw" | "external";
  group: string;
  pipeline: string;
  /** `""` when the event has none (absent or null). */
  search: string;
  far: number | null;
  gpstime: number;
  instruments: string[];
  labels: string[];
  currentstate: State;
  configuration: Record<string, string | number | null>;
  expirationtime: string | null;
  /** The once-only gate: local texts already acted on. */
  loggermessages: string[];
  ifosCheckresult: Verdict;
  farCheckresult: Verdict;
  labelCheckresult: Verdict;
  injectionCheckresult: Verdict;
  have_lvem_skymapCheckresult: Verdict;
  idq_joint_fapCheckresult: Verdict;
  operator_signoffCheckresult: Verdict;
  advocate_signoffCheckresult: Verdict;
  virgo_dqCheckresult: Verdict;
  ifoslogkey: "yes" | "no";
  farlogkey: "yes" | "no";
  injectionlogkey: "yes" | "no";
  idqlogkey: "yes" | "no";
  operatorlogkey: "yes" | "no";
  advocatelogkey: "yes" | "no";
  virgo_dqlogkey: "yes" | "no";
  injectionsfound: number | null;
  idqvalues: Record<string, number>;
  jointfapvalues: Record<string, number>;
  lvemskymaps: Record<string, string>;
  lastsentskymap: string | null;
  lastsentpreliminaryskymap: string | null;
  voevents: string[];
  voeventerrors: string[];
  operatorsignoffs: Record<string, string>;
  advocatesignoffs: string[];
  external_trigger: string | null;
  em_coinc_json: string | null;
  em_bright_info:
    | { ProbHasNS: number; ProbHasRemnant: number; RemnantMassThreshInM_Sun: number }
    | null;
  virgo_dqIsVetoed: boolean | null;
  virgoInjections: number | null;
  grouperGroupTag: string | null;
  grouperGroupMembers: string[];
  offline: boolean;
  grb_online_json: string | null;
  grb_offline_json: string | null;
  /** The `new` alert has been through the throttle and the Grouper. */
  newSeen: boolean;
  /** Hardware injections GraceDB listed near the gpstime (queried once). */
  injectionHits: number | null;
  /** [M] The end of the wait for an INJ label before the first checks. */
  injWaitUntil: number | null;
  /** External triggers' pipelines, looked up for RAVEN coincidences. */
  extPipelines: Record<string, string>;
}

const EXTERNAL_PIPELINES = new Set(["Swift", "Fermi", "SNEWS"]);

function str(value: unknown): string {
  return typeof value === "string"
    ? value
    : value === undefined || value === null
    ? ""
    : String(value);
}

/** A FAR as a number, or null when absent, null, NaN or not a number. */
export function readFar(value: unknown): number | null {
  const far = typeof value === "string" && value.trim() !== "" ? Number(value) : value;
  return typeof far === "number" && Number.isFinite(far) ? far : null;
}

/** Label names from a dict keyed by name (2017 GraceDB), a list of names, or of label dicts. */
export function labelNames(value: unknown): string[] {
  if (Array.isArray(value)) {
    return value.map((l) => (isJsonObject(l) ? str(l.name) : str(l))).filter(Boolean);
  }
  return isJsonObject(value) ? Object.keys(value) : [];
}

/** The parts of an event or superevent dict a record is made of. */
export interface EventFacts {
  graceid: string;
  group: string;
  pipeline: string;
  search: string;
  far: number | null;
  gpstime: number;
  instruments: string[];
  labels: string[];
  offline: boolean;
  /** Whether a superevent still lacks its preferred event's details. */
  incomplete: boolean;
}

/**
 * Facts of an event dict, or of a superevent dict (group, pipeline,
 * search and instruments then come from its `preferred_event_data`, or
 * from `preferred` when given).
 */
export function eventFacts(id: string, object: JsonObject, preferred?: JsonObject): EventFacts {
  const superevent = "superevent_id" in object || "t_0" in object;
  const details = preferred ??
    (superevent && isJsonObject(object.preferred_event_data)
      ? object.preferred_event_data
      : object);
  const gps = Number(superevent ? object.t_0 : object.gpstime);
  const instruments = details.instruments;
  return {
    graceid: id,
    group: str(details.group),
    pipeline: str(details.pipeline),
    search: str(details.search),
    far: readFar(object.far),
    gpstime: Number.isFinite(gps) ? gps : 0,
    instruments: Array.isArray(instruments) ? instruments.map(str) : str(instruments).split(","),
    labels: labelNames(object.labels),
    offline: details.offline === true || object.offline === true,
    incomplete: superevent && details === object,
  };
}

/** Whether an event is an external trigger (§1.4 step 5). */
export function isExternal(facts: EventFacts): boolean {
  return facts.graceid.startsWith("E") || facts.group === "External" ||
    EXTERNAL_PIPELINES.has(facts.pipeline) || facts.search === "GRB";
}

/** A fresh record from an event's facts (§1.5). */
export function newRecord(facts: EventFacts, s: ApSettings): EventRecord {
  return {
    graceid: facts.graceid,
    kind: isExternal(facts) ? "external" : "gw",
    group: facts.group,
    pipeline: facts.pipeline,
    search: facts.search,
    far: facts.far,
    gpstime: facts.gpstime,
    instruments: facts.instruments,
    labels: [...facts.labels],
    currentstate: s.grouper ? "new_awaiting_grouperSelection" : "new_to_preliminary",
    configuration: {
      force_all_internal: s.forceAllInternal ? "yes" : "no",
      preliminary_internal: s.preliminaryInternal.join(", "),
      hardware_inj: s.hardwareInj ? "yes" : "no",
      default_farthresh: s.farThresh,
      humanscimons: s.humanscimons ? "yes" : "no",
      advocates: s.advocates ? "yes" : "no",
      ignore_idq: s.ignoreIdq,
      default_idqthresh: s.idqThresh,
      client: s.ini.get("general", "gracedb", s.ini.get("general", "client", "")),
    },
    expirationtime: null,
    loggermessages: [],
    ifosCheckresult: null,
    farCheckresult: null,
    labelCheckresult: null,
    injectionCheckresult: null,
    have_lvem_skymapCheckresult: null,
    idq_joint_fapCheckresult: null,
    operator_signoffCheckresult: null,
    advocate_signoffCheckresult: null,
    virgo_dqCheckresult: null,
    ifoslogkey: "no",
    farlogkey: "no",
    injectionlogkey: "no",
    idqlogkey: "no",
    operatorlogkey: "no",
    advocatelogkey: "no",
    virgo_dqlogkey: "no",
    injectionsfound: null,
    idqvalues: {},
    jointfapvalues: {},
    lvemskymaps: {},
    lastsentskymap: null,
    lastsentpreliminaryskymap: null,
    voevents: [],
    voeventerrors: [],
    operatorsignoffs: {},
    advocatesignoffs: [],
    external_trigger: null,
    em_coinc_json: null,
    em_bright_info: null,
    virgo_dqIsVetoed: null,
    // The baseline hard-codes 0 (never waits); [opt-virgo] waits for the comment.
    virgoInjections: s.useVirgoInjComment ? null : 0,
    grouperGroupTag: null,
    grouperGroupMembers: [],
    offline: facts.offline,
    grb_online_json: null,
    grb_offline_json: null,
    newSeen: false,
    injectionHits: null,
    injWaitUntil: null,
    extPipelines: {},
  };
}

/** Whether the graceid is ignored as MDC or simulation. */
export function isIgnoredId(graceid: string, s: ApSettings): boolean {
  return s.ignorePrefixes.some((prefix) => graceid.startsWith(prefix));
}

/** The lvem sky maps, oldest first: `[n, filename]` (the original sorted the keys as text). */
export function skymaps(rec: EventRecord): [number, string][] {
  return Object.keys(rec.lvemskymaps)
    .map((key): [number, string] => {
      const dash = key.indexOf("-");
      return [Number(key.slice(0, dash)), key.slice(dash + 1)];
    })
    .sort((a, b) => a[0] - b[0]);
}

/** The newest lvem sky map's filename, or null. */
export function currentSkymap(rec: EventRecord): string | null {
  return skymaps(rec).at(-1)?.[1] ?? null;
}

/** The throttle key: `<group>_<pipeline>[_<search>]` (§3). */
export function throttleKey(group: string, pipeline: string, search: string): string {
  return search ? `${group}_${pipeline}_${search}` : `${group}_${pipeline}`;
}

/** Bad labels (§2.3): any of them rejects an event. */
export function badLabels(s: ApSettings): string[] {
  const bad = ["DQV", "EM_Throttled", "EM_Superseded", "H1NO", "L1NO", "V1NO", "ADVNO"];
  return s.hardwareInj ? bad : [...bad, "INJ"];
}
