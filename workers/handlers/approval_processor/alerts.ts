/**
 * Alerts of both GraceDB schemas turned into one plain, JSON-safe form
 * (an {@linkcode Entry}) that waits in an event's inbox until it is
 * processed. The current schema is mapped as the spec recommends: `log`
 * to `update`, `label_added` to `label`, `signoff_created` to `signoff`.
 *
 * @module
 */

import { type Alert, alertSchema, isJsonObject, type JsonObject } from "../../../lib/mod.ts";

/** What an alert is to the approval processor. */
export type EntryKind = "new" | "update" | "label" | "label_removed" | "signoff" | "other";

/** A log entry as an alert carries it. */
export interface LogFacts {
  comment: string;
  /** The uploaded file's name, or `""`. */
  filename: string;
  tags: string[];
  /** The submitter's display name (legacy) or user name (current). */
  issuer: string;
  /** The file's URL, when the alert gives it. */
  fileUrl: string | null;
}

/** A signoff as an alert carries it. */
export interface SignoffFacts {
  instrument: string;
  signoff_type: string;
  status: string;
}

/** One alert, read. */
export interface Entry {
  kind: EntryKind;
  /** The alert's own type, for logs. */
  alertType: string;
  /** When the listener received it. */
  t0: number;
  /** `new`: the event or superevent dict. */
  object?: JsonObject;
  /** `label`, `label_removed`: the label. */
  label?: string;
  /** `update`: the log entry. */
  log?: LogFacts;
  /** `signoff`. */
  signoff?: SignoffFacts;
}

/** An entry, or why the alert cannot be one. */
export type EntryResult = { ok: true; entry: Entry } | { ok: false; reason: string };

function str(value: unknown): string {
  return typeof value === "string" ? value : "";
}

function strings(value: unknown): string[] {
  return Array.isArray(value) ? value.filter((t): t is string => typeof t === "string") : [];
}

function logFacts(log: JsonObject, file: unknown): LogFacts {
  const issuer = log.issuer;
  const filename = str(file) || str(log.filename);
  return {
    comment: str(log.comment),
    // Legacy alerts name the file in `file`; some give a URL there.
    filename: filename.includes("/") ? filename.slice(filename.lastIndexOf("/") + 1) : filename,
    tags: strings(log.tag_names),
    issuer: isJsonObject(issuer) ? str(issuer.display_name) || str(issuer.username) : str(issuer),
    fileUrl: str(log.file) || null,
  };
}

function signoffFacts(value: unknown): SignoffFacts | undefined {
  if (!isJsonObject(value)) return undefined;
  const { instrument, signoff_type: type, status } = value;
  if (typeof type !== "string" || typeof status !== "string") return undefined;
  return { instrument: str(instrument), signoff_type: type, status };
}

function legacy(alert: Alert, t0: number): EntryResult {
  const base = { alertType: alert.alert_type, t0 };
  const object = alert.object;
  switch (alert.alert_type) {
    case "new":
      return isJsonObject(object)
        ? { ok: true, entry: { ...base, kind: "new", object } }
        : { ok: false, reason: "a new alert without its event dict (object)" };
    case "update":
      return isJsonObject(object)
        ? { ok: true, entry: { ...base, kind: "update", log: logFacts(object, alert.file) } }
        : { ok: false, reason: "an update alert without its log entry (object)" };
    case "label":
      return typeof alert.description === "string" && alert.description !== ""
        ? { ok: true, entry: { ...base, kind: "label", label: alert.description } }
        : { ok: false, reason: "a label alert without the label's name (description)" };
    case "signoff": {
      const signoff = signoffFacts(object);
      return signoff
        ? { ok: true, entry: { ...base, kind: "signoff", signoff } }
        : { ok: false, reason: "a signoff alert without signoff_type and status (object)" };
    }
    default:
      return { ok: true, entry: { ...base, kind: "other" } };
  }
}

function current(alert: Alert, t0: number): EntryResult {
  const base = { alertType: alert.alert_type, t0 };
  const data = isJsonObject(alert.data) ? alert.data : undefined;
  const object = isJsonObject(alert.object) ? alert.object : data;
  switch (alert.alert_type) {
    case "new":
      return object
        ? { ok: true, entry: { ...base, kind: "new", object } }
        : { ok: false, reason: "a new alert without its event or superevent dict" };
    case "log":
      return data
        ? { ok: true, entry: { ...base, kind: "update", log: logFacts(data, undefined) } }
        : { ok: false, reason: "a log alert without its log entry (data)" };
    case "label_added":
    case "label_removed": {
      const name = str(data?.name);
      if (!name) return { ok: false, reason: `a ${alert.alert_type} alert without data.name` };
      const kind = alert.alert_type === "label_added" ? "label" : "label_removed";
      return { ok: true, entry: { ...base, kind, label: name } };
    }
    case "signoff_created":
    case "signoff_updated": {
      const signoff = signoffFacts(data);
      return signoff
        ? { ok: true, entry: { ...base, kind: "signoff", signoff } }
        : { ok: false, reason: `a ${alert.alert_type} alert without its signoff (data)` };
    }
    default:
      return { ok: true, entry: { ...base, kind: "other" } };
  }
}

/**
 * Reads an alert of either schema.
 *
 * @example
 * ```ts
 * const r = readEntry({ uid: "G1", alert_type: "label", description: "DQV" }, 0);
 * if (r.ok) console.log(r.entry.label); // "DQV"
 * ```
 */
export function readEntry(alert: Alert, t0: number): EntryResult {
  return alertSchema(alert) === "current" ? current(alert, t0) : legacy(alert, t0);
}
