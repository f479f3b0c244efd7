/**
 * Alerts of both GraceDB schemas read into one shape, and updates
 * classified as the original did (first matching rule wins).
 *
 * Current-schema mapping (an extension; the original knew the legacy
 * schema only): `new` as new (object = `object`, else `data`), `log` as
 * update (description = `data.comment`, file = `data.filename`, object =
 * `data`), `label_added`/`label_removed` as label, `signoff_*` as
 * signoff, anything else ignored with a reason.
 *
 * @module
 */

import { type Alert, alertSchema, isJsonObject, type JsonObject } from "../../../lib/mod.ts";
import { words } from "./format.ts";

/** What an alert means to event_supervisor. */
export type Change =
  | { kind: "new"; object: JsonObject; far: number | null; event: EventFields }
  | {
    kind: "update";
    description: string;
    file: string;
    object: JsonObject;
    /** The log comment (`object.comment`, else the description). */
    comment: string;
    /** The log entry's tags, when the alert says. */
    tags: string[] | null;
  }
  | { kind: "label" }
  | { kind: "signoff" }
  | { kind: "ignore"; reason: string };

/** Who made an event: the fields notify and the rate checks read from the alert. */
export interface EventFields {
  group: string | null;
  pipeline: string | null;
  search: string | null;
}

const str = (v: unknown): string | null => typeof v === "string" ? v : null;

function obj(v: unknown): JsonObject {
  return isJsonObject(v) ? v : {};
}

function strings(v: unknown): string[] | null {
  return Array.isArray(v) && v.every((t) => typeof t === "string") ? v : null;
}

/** Group, pipeline and search of an event dict, or of a superevent's preferred event. */
export function eventFields(object: JsonObject): EventFields {
  const preferred = obj(object.preferred_event_data);
  const pick = (key: string) => str(object[key]) ?? str(preferred[key]);
  return { group: pick("group"), pipeline: pick("pipeline"), search: pick("search") };
}

function update(description: string, file: string, object: JsonObject): Change {
  return {
    kind: "update",
    description,
    file,
    object,
    comment: str(object.comment) ?? description,
    tags: strings(object.tag_names),
  };
}

/** Reads an alert of either schema (never a command or heartbeat). */
export function readChange(alert: Alert): Change {
  const type = alert.alert_type;
  if (alertSchema(alert) === "legacy") {
    if (type === "new") return newEvent(obj(alert.object));
    if (type === "update") {
      return update(str(alert.description) ?? "", str(alert.file) ?? "", obj(alert.object));
    }
    if (type === "label") return { kind: "label" };
    if (type === "signoff") return { kind: "signoff" };
    return { kind: "ignore", reason: `do not understand alert_type=${type}` };
  }
  const data = obj(alert.data);
  if (type === "new") return newEvent(isJsonObject(alert.object) ? alert.object : data);
  if (type === "log") return update(str(data.comment) ?? "", str(data.filename) ?? "", data);
  if (type === "label_added" || type === "label_removed") return { kind: "label" };
  if (type.startsWith("signoff")) return { kind: "signoff" };
  return { kind: "ignore", reason: `alert_type=${type} creates no checks` };
}

function newEvent(object: JsonObject): Change {
  const far = object.far;
  return {
    kind: "new",
    object,
    far: typeof far === "number" && Number.isFinite(far) ? far : null,
    event: eventFields(object),
  };
}

/** Whether an update carries a sky map (`.fits.gz` or `.fits`). */
export function isFits(file: string): boolean {
  return file.endsWith(".fits.gz") || file.endsWith(".fits");
}

/** Omega-scan start sections rule 4-6 read, in the original's order. */
const OMEGA_STARTS = ["l1 omega scan start", "h1 omega scan start", "cit omega scan start"];

const CONTAINS: [string, string][] = [
  ["Started searching for iDQ information within", "idq start"],
  ["minimum glitch-FAP for", "idqGlitchFAP"],
  ["iDQ (possible) active channels for", "idqActiveChan"],
];

const LATER: [string, string][] = [
  ["automatic OmegaScans begun for: ", "omega scan start"],
  ["began searching for segments in ", "segdb2grcdb start"],
];

const AFTER_PSD: [string, string][] = [
  ["INFO:BAYESTAR:starting sky localization", "bayestar start"],
  ["INFO:BAYESTAR:uploaded sky map", "bayestar skymap"],
  ["BayesWaveBurst launched", "bayeswave pe start"],
  ["LALInference online estimation started", "lalinf start"],
  ["LIB Parameter estimation started", "lib pe start"],
  ["started skymap summary for", "snglFITS start"],
  ["finished skymap summary for", "snglFITSFinish"],
  ["started skymap comparison for", "multFITS start"],
];

/**
 * The update name of an update (section 1.5 of the spec): the first rule
 * that matches the description `d` (or the file `f`), or null.
 * `chansets(section)` gives an omega-scan start section's channel sets,
 * or undefined when the childConfig has no such section.
 */
export function classifyUpdate(
  d: string,
  f: string,
  chansets: (section: string) => string[] | undefined,
): string | null {
  for (const [text, name] of CONTAINS) if (d.includes(text)) return name;
  for (const section of OMEGA_STARTS) {
    const sets = chansets(section);
    if (sets && d.includes(`automatic OmegaScans begun for: ${sets.join(", ")}`)) return section;
  }
  for (const [text, name] of LATER) if (d.includes(text)) return name;
  if (f === "psd.xml.gz") return "psd";
  for (const [text, name] of AFTER_PSD) if (d.includes(text)) return name;
  return null;
}

/**
 * The FITS file a snglFITS message names: the text of its last anchor
 * (the original stripped the characters `<`, `/`, `a`, `>` instead, which
 * broke names ending in `a`), else the text after "summary for".
 *
 * @example
 * ```ts
 * snglFitsName('started skymap summary for <a href="x">bayestar.fits.gz</a>'); // "bayestar.fits.gz"
 * ```
 */
export function snglFitsName(description: string): string {
  const anchors = [...description.matchAll(/<a\b[^>]*>([^<]*)<\/a>/g)];
  const last = anchors.at(-1)?.[1];
  if (last !== undefined) return last.trim();
  const m = /summary for\s*(\S+)/.exec(description);
  if (!m) throw new Error(`cannot find a FITS file name in "${description}"`);
  return m[1]!;
}

/**
 * The FITS files a multFITS message names, sorted: each comma-separated
 * fragment's `re.match` of `(.*.fits.gz|.*.fits)`, after its last `>`.
 *
 * @throws {Error} when a fragment names no FITS file (as the original)
 */
export function multFitsNames(description: string): string[] {
  return description.split(",").map((fragment) => {
    const m = /^(?:.*.fits.gz|.*.fits)/.exec(fragment);
    if (!m) throw new Error(`cannot find a FITS file name in "${fragment}"`);
    return m[0].slice(m[0].lastIndexOf(">") + 1);
  }).sort();
}

/**
 * The channel sets an omega-scan start message names: the text after
 * "begun for:" up to the first `.`, split on commas (the original stripped
 * a set of characters instead of the prefix, cutting names short).
 *
 * @example
 * ```ts
 * omegaChansets("automatic OmegaScans begun for: h1_r-reduced, h1_r-standard. WARNING: ..."); // ["h1_r-reduced", "h1_r-standard"]
 * ```
 */
export function omegaChansets(comment: string): string[] {
  const m = /begun for:\s*([^.]*)/.exec(comment);
  if (!m) throw new Error(`cannot find channel sets in "${comment}"`);
  return m[1]!.split(",").map((s) => s.trim()).filter(Boolean);
}

/** The IFO an iDQ start message names: its last word. */
export function idqIfo(description: string): string {
  const ifo = words(description).at(-1);
  if (ifo === undefined) throw new Error("cannot find an IFO in an empty iDQ message");
  return ifo;
}
