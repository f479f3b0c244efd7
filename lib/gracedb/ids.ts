/**
 * GraceDB ids and the REST paths under the API root that belong to each
 * kind: events (`G123`: no trailing slash) and superevents (`S190425z`:
 * a trailing slash everywhere except on files).
 *
 * @module
 */

/** The two kinds of GraceDB objects, with different paths. */
export type GraceDbKind = "event" | "superevent";

const EVENT_ID = /^(G|E|H|M|T)\d+/;
const SAFE_ID = /^[A-Za-z0-9_-]+$/;

/**
 * Whether `id` names an event (`G`, `E`, `H`, `M` or `T` then digits), as
 * the official client decides; anything else is a superevent.
 *
 * @example
 * ```ts
 * isEventId("G194533"); // true
 * isEventId("S190425z"); // false
 * isEventId("MS190425a"); // false: an MDC superevent
 * ```
 */
export function isEventId(id: string): boolean {
  return EVENT_ID.test(id);
}

/**
 * The kind of `id`; throws a `RangeError` for an empty id or one with
 * characters no GraceDB id has (so it can never leave its path).
 *
 * @example
 * ```ts
 * graceDbKind("T0140"); // "event"
 * graceDbKind("TS170101z"); // "superevent"
 * ```
 */
export function graceDbKind(id: string): GraceDbKind {
  if (!SAFE_ID.test(id)) {
    throw new RangeError(`Not a GraceDB id: ${JSON.stringify(id)}`);
  }
  return isEventId(id) ? "event" : "superevent";
}

/**
 * Encodes one path part, keeping `,` (file versions) readable.
 *
 * @example
 * ```ts
 * pathPart("skymap v2.fits,1"); // "skymap%20v2.fits,1"
 * ```
 */
export function pathPart(text: string): string {
  return encodeURIComponent(text).replace(/%2C/gi, ",");
}

/**
 * REST paths of one object, relative to the API root (`.../api/`). Event
 * paths have no trailing slash; superevent paths have one except files.
 *
 * @example
 * ```ts
 * graceDbPaths("S1a").label("EM_READY"); // "superevents/S1a/labels/EM_READY/"
 * graceDbPaths("G1").label("EM_READY"); // "events/G1/labels/EM_READY"
 * ```
 */
export interface GraceDbPaths {
  /** Which kind the id names. */
  readonly kind: GraceDbKind;
  /** The object itself. */
  readonly self: string;
  /** Its log list (GET, POST). */
  readonly logs: string;
  /** Tags of log entry `n`. */
  logTags(n: number): string;
  /** Its file list. */
  readonly files: string;
  /** One file, `name` or `name,version`. */
  file(name: string): string;
  /** Its label list (GET; POST for superevents). */
  readonly labels: string;
  /** One label (PUT/DELETE for events, DELETE for superevents). */
  label(name: string): string;
  /** Its VOEvent list (GET, POST). */
  readonly voevents: string;
  /** Its signoff list. */
  readonly signoffs: string;
}

/**
 * The paths of `id`, relative to the API root (see {@linkcode GraceDbPaths}).
 *
 * @example
 * ```ts
 * graceDbPaths("G1").logs; // "events/G1/log/"
 * graceDbPaths("S1a").files; // "superevents/S1a/files/"
 * ```
 */
export function graceDbPaths(id: string): GraceDbPaths {
  const kind = graceDbKind(id);
  if (kind === "event") {
    const base = `events/${id}`;
    return {
      kind,
      self: base,
      logs: `${base}/log/`,
      logTags: (n) => `${base}/log/${logNumber(n)}/tag/`,
      files: `${base}/files/`,
      file: (name) => `${base}/files/${pathPart(name)}`,
      labels: `${base}/labels/`,
      label: (name) => `${base}/labels/${pathPart(name)}`,
      voevents: `${base}/voevent/`,
      signoffs: `${base}/signoff/`,
    };
  }
  const base = `superevents/${id}/`;
  return {
    kind,
    self: base,
    logs: `${base}logs/`,
    logTags: (n) => `${base}logs/${logNumber(n)}/tags/`,
    files: `${base}files/`,
    file: (name) => `${base}files/${pathPart(name)}`,
    labels: `${base}labels/`,
    label: (name) => `${base}labels/${pathPart(name)}/`,
    voevents: `${base}voevents/`,
    signoffs: `${base}signoffs/`,
  };
}

function logNumber(n: number): number {
  if (!Number.isSafeInteger(n) || n < 1) throw new RangeError(`Not a log number: ${n}`);
  return n;
}
