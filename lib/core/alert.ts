/**
 * GraceDB alert payloads: narrowing `unknown` JSON into an {@linkcode Alert}
 * of either schema, with a reason when it is not one.
 *
 * @module
 */

import { parsePythonJson } from "./json.ts";

/** A JSON object. */
export type JsonObject = { [key: string]: unknown };

/**
 * An alert as GraceDB publishes it. Both schemas share `uid` and
 * `alert_type`; the rest is read by handlers.
 */
export interface Alert extends JsonObject {
  /** A graceid or superevent id, or `command` / `heartbeat`. */
  uid: string;
  /** What happened: `new`, `update`, `label_added`, ... or a command's name. */
  alert_type: string;
  /** Legacy: the event, log entry or signoff; current: the event or superevent. */
  object?: unknown;
  /** Current schema: what changed (log entry, label, signoff, ...). */
  data?: unknown;
  /** Legacy schema: a free-text description. */
  description?: unknown;
  /** Legacy schema: a file name or URL. */
  file?: unknown;
}

/** Which schema an alert follows. */
export type AlertSchema = "legacy" | "current" | "command" | "heartbeat";

/** Alert types of the LVAlert-era (legacy) schema. */
export const LEGACY_ALERT_TYPES: ReadonlySet<string> = new Set([
  "new",
  "update",
  "label",
  "signoff",
]);

/** Alert types GraceDB publishes in the current schema, events and superevents. */
export const CURRENT_ALERT_TYPES: ReadonlySet<string> = new Set([
  "new",
  "update",
  "log",
  "label_added",
  "label_removed",
  "signoff_created",
  "signoff_updated",
  "signoff_deleted",
  "voevent",
  "emobservation",
  "embb_event_log",
  "event_added",
  "event_removed",
  "confirmed_as_gw",
  "exposure",
]);

/** Result of reading a payload. */
export type AlertResult =
  /** `known`: the alert_type is one GraceDB is known to send. */
  | { ok: true; alert: Alert; schema: AlertSchema; known: boolean }
  | { ok: false; reason: string };

/**
 * Whether a value is a JSON object (not null, not an array).
 *
 * @example
 * ```ts
 * isJsonObject({ a: 1 }); // true
 * isJsonObject([1]); // false
 * ```
 */
export function isJsonObject(value: unknown): value is JsonObject {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function describe(value: unknown): string {
  if (Array.isArray(value)) return "an array";
  if (value === null) return "null";
  return `a ${typeof value}`;
}

/**
 * Which schema an alert with a known `alert_type` follows: the current one
 * carries `data`, or uses a type only it has; otherwise legacy.
 */
export function alertSchema(alert: Alert): AlertSchema {
  if (alert.uid === "command") return "command";
  if (alert.uid === "heartbeat") return "heartbeat";
  if ("data" in alert || !LEGACY_ALERT_TYPES.has(alert.alert_type)) {
    return "current";
  }
  return "legacy";
}

/**
 * Narrows a payload (JSON text, read as Python's `json.loads` reads it, or
 * an already parsed value) into an alert: any JSON object with a string
 * `uid`, whatever its `alert_type` (a missing one reads as ""). Commands
 * and heartbeats pass with any name/`ptype`; their contents are checked
 * by whoever runs them.
 *
 * @example
 * ```ts
 * const r = readAlert('{"uid":"G1","alert_type":"new","object":{}}');
 * if (r.ok) console.log(r.schema); // "legacy"
 * ```
 */
export function readAlert(payload: unknown): AlertResult {
  let value = payload;
  if (typeof payload === "string") {
    try {
      value = parsePythonJson(payload);
    } catch (error) {
      return { ok: false, reason: `payload is not JSON: ${(error as Error).message}` };
    }
  }
  if (!isJsonObject(value)) {
    return { ok: false, reason: `payload must be a JSON object, got ${describe(value)}` };
  }
  const { uid, alert_type: type } = value;
  // lvalertHeartbeat's packets may come without a uid.
  if (uid === "heartbeat" || (uid === undefined && typeof value.ptype === "string")) {
    const alert = { alert_type: "heartbeat", ...value, uid: "heartbeat" } as Alert;
    return { ok: true, alert, schema: "heartbeat", known: true };
  }
  if (typeof uid !== "string" || uid === "") {
    return {
      ok: false,
      reason: uid === undefined
        ? 'payload has no "uid"'
        : `"uid" must be a non-empty string, got ${JSON.stringify(uid)}`,
    };
  }
  if (uid === "command") {
    if (typeof type !== "string" || type === "") {
      return { ok: false, reason: `command without a name ("alert_type")` };
    }
    return { ok: true, alert: value as Alert, schema: "command", known: true };
  }
  // Any alert_type is delivered (GraceDB adds types over time); handlers decide.
  const alert = (typeof type === "string" ? value : { ...value, alert_type: "" }) as Alert;
  const known = LEGACY_ALERT_TYPES.has(alert.alert_type) ||
    CURRENT_ALERT_TYPES.has(alert.alert_type);
  return { ok: true, alert, schema: alertSchema(alert), known };
}

function field(value: unknown, key: string): unknown {
  return isJsonObject(value) ? value[key] : undefined;
}

function text(value: unknown): string {
  return typeof value === "string" ? value : JSON.stringify(value) ?? "";
}

/**
 * A one-line human summary of an alert of either schema, such as
 * `label DQV` or `log: sky localization complete`.
 */
export function describeAlert(alert: Alert): string {
  const type = alert.alert_type;
  switch (alertSchema(alert)) {
    case "command":
      return `command ${type}`;
    case "heartbeat":
      return `heartbeat ${text(alert.ptype)}`;
    case "legacy": {
      if (type === "new") {
        const o = alert.object;
        return `new ${text(field(o, "group"))}/${text(field(o, "pipeline"))} event` +
          (field(o, "far") === undefined ? "" : ` far=${text(field(o, "far"))}`);
      }
      if (type === "label") return `label ${text(alert.description)}`;
      return `${type}: ${text(alert.description)}`;
    }
    case "current": {
      const d = alert.data;
      if (type === "label_added" || type === "label_removed") {
        return `${type} ${text(field(d, "name"))}`;
      }
      if (type === "log") return `log: ${text(field(d, "comment"))}`;
      if (type.startsWith("signoff")) {
        return `${type} ${text(field(d, "signoff_type"))} ${text(field(d, "status"))}`;
      }
      if (type === "event_added") {
        return `event_added ${text(field(d, "graceid"))}`;
      }
      return type;
    }
  }
}
