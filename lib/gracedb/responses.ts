/**
 * The JSON GraceDB answers with, narrowed from `unknown`: each type names
 * the fields the handlers rely on and keeps every other field as it came.
 *
 * @module
 */

import { isJsonObject, type JsonObject } from "../core/alert.ts";

export type { JsonObject };

/** An event (`GET /api/events/{graceid}`); other fields as GraceDB sent them. */
export interface GraceDbEvent extends JsonObject {
  /** `G123`, `T45`, ... */
  graceid: string;
}

/** A superevent (`GET /api/superevents/{id}/`); other fields as GraceDB sent them. */
export interface GraceDbSuperevent extends JsonObject {
  /** `S190425z`, ... */
  superevent_id: string;
}

/** A log entry of an event or superevent. */
export interface GraceDbLogEntry extends JsonObject {
  /** 1-based number within its object. */
  N: number;
  /** The text of the entry. */
  comment: string;
  /** The uploaded file's name, or `""`. */
  filename: string;
  /** The uploaded file's version, or null. */
  file_version: number | null;
  /** Names of its tags. */
  tag_names: string[];
}

/** A label applied to an event or superevent. */
export interface GraceDbLabel extends JsonObject {
  /** The label, e.g. `EM_READY`. */
  name: string;
}

/** A tag of a log entry. */
export interface GraceDbTag extends JsonObject {
  /** The tag, e.g. `em_follow`. */
  name: string;
}

/** A VOEvent GraceDB built for an event or superevent. */
export interface GraceDbVoEvent extends JsonObject {
  /** 1-based number within its object. */
  N: number;
  /** `PR`, `IN`, `UP`, `RE` (or `EW`). */
  voevent_type: string;
  /** The XML file's name, e.g. `G1-1-Preliminary.xml`. */
  filename: string;
}

/** An operator or advocate signoff. */
export interface GraceDbSignoff extends JsonObject {
  /** `OP` or `ADV`. */
  signoff_type: string;
  /** `H1`, `L1`, `V1`, or `""` for advocates. */
  instrument: string;
  /** `OK` or `NO`. */
  status: string;
}

/** A narrowing result: the value, or why the JSON is not one. */
export type Narrowed<T> = { ok: true; value: T } | { ok: false; reason: string };

type Check = (o: JsonObject) => string | undefined;

const str = (key: string): Check => (o) =>
  typeof o[key] === "string" ? undefined : `"${key}" is not a string`;
const int = (key: string): Check => (o) =>
  Number.isInteger(o[key]) ? undefined : `"${key}" is not an integer`;
const strOrMissing = (key: string): Check => (o) =>
  o[key] === undefined || o[key] === null || typeof o[key] === "string"
    ? undefined
    : `"${key}" is not a string`;
const strings = (key: string): Check => (o) =>
  o[key] === undefined || (Array.isArray(o[key]) && o[key].every((t) => typeof t === "string"))
    ? undefined
    : `"${key}" is not a list of strings`;

function narrow<T extends JsonObject>(value: unknown, what: string, checks: Check[]): Narrowed<T> {
  if (!isJsonObject(value)) return { ok: false, reason: `${what} is not a JSON object` };
  for (const check of checks) {
    const reason = check(value);
    if (reason) return { ok: false, reason: `${what}: ${reason}` };
  }
  return { ok: true, value: value as T };
}

/**
 * Narrows an event dict.
 *
 * @example
 * ```ts
 * readEvent({ graceid: "G1", far: 1e-7 }).ok; // true
 * ```
 */
export function readEvent(value: unknown): Narrowed<GraceDbEvent> {
  return narrow(value, "event", [str("graceid")]);
}

/**
 * Narrows a superevent dict.
 *
 * @example
 * ```ts
 * readSuperevent({ superevent_id: "S190425z" }).ok; // true
 * ```
 */
export function readSuperevent(value: unknown): Narrowed<GraceDbSuperevent> {
  return narrow(value, "superevent", [str("superevent_id")]);
}

/**
 * Narrows a log entry; a missing `filename`, `file_version` or
 * `tag_names` becomes `""`, null or `[]`.
 *
 * @example
 * ```ts
 * const r = readLogEntry({ N: 1, comment: "hi" });
 * if (r.ok) console.log(r.value.tag_names); // []
 * ```
 */
export function readLogEntry(value: unknown): Narrowed<GraceDbLogEntry> {
  const r = narrow<GraceDbLogEntry>(value, "log entry", [
    int("N"),
    str("comment"),
    strOrMissing("filename"),
    strings("tag_names"),
  ]);
  if (!r.ok) return r;
  const v = r.value;
  return {
    ok: true,
    value: {
      ...v,
      filename: v.filename ?? "",
      file_version: Number.isInteger(v.file_version) ? v.file_version : null,
      tag_names: v.tag_names ?? [],
    },
  };
}

/**
 * Narrows a label dict.
 *
 * @example
 * ```ts
 * readLabel({ name: "DQV" }).ok; // true
 * ```
 */
export function readLabel(value: unknown): Narrowed<GraceDbLabel> {
  return narrow(value, "label", [str("name")]);
}

/**
 * Narrows a tag dict.
 *
 * @example
 * ```ts
 * readTag({ name: "em_follow" }).ok; // true
 * ```
 */
export function readTag(value: unknown): Narrowed<GraceDbTag> {
  return narrow(value, "tag", [str("name")]);
}

/**
 * Narrows a VOEvent dict.
 *
 * @example
 * ```ts
 * readVoEvent({ N: 1, voevent_type: "PR", filename: "G1-1-Preliminary.xml" }).ok; // true
 * ```
 */
export function readVoEvent(value: unknown): Narrowed<GraceDbVoEvent> {
  return narrow(value, "VOEvent", [int("N"), str("voevent_type"), str("filename")]);
}

/**
 * Narrows a signoff dict.
 *
 * @example
 * ```ts
 * readSignoff({ signoff_type: "OP", instrument: "H1", status: "OK" }).ok; // true
 * ```
 */
export function readSignoff(value: unknown): Narrowed<GraceDbSignoff> {
  return narrow(value, "signoff", [str("signoff_type"), str("instrument"), str("status")]);
}

/**
 * Narrows the list under `key` of a list answer (`{"log": [...]}`), each
 * item with `read`.
 *
 * @example
 * ```ts
 * const r = readList({ labels: [{ name: "DQV" }] }, "labels", readLabel);
 * if (r.ok) console.log(r.value[0]?.name); // "DQV"
 * ```
 */
export function readList<T>(
  body: unknown,
  key: string,
  read: (value: unknown) => Narrowed<T>,
): Narrowed<T[]> {
  const list = isJsonObject(body) ? body[key] : undefined;
  if (!Array.isArray(list)) return { ok: false, reason: `the answer has no "${key}" list` };
  const out: T[] = [];
  for (const item of list) {
    const r = read(item);
    if (!r.ok) return r;
    out.push(r.value);
  }
  return { ok: true, value: out };
}

/**
 * Narrows a file list (`{name: url}`, versioned `name,V` and plain names).
 *
 * @example
 * ```ts
 * readFileList({ "coinc.xml": "https://x/api/events/G1/files/coinc.xml" });
 * ```
 */
export function readFileList(body: unknown): Narrowed<Record<string, string>> {
  if (!isJsonObject(body)) return { ok: false, reason: "the file list is not a JSON object" };
  for (const [name, url] of Object.entries(body)) {
    if (typeof url !== "string") {
      return { ok: false, reason: `the file list's entry ${JSON.stringify(name)} is no URL` };
    }
  }
  return { ok: true, value: body as Record<string, string> };
}
