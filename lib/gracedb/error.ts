/**
 * The one error a GraceDB call fails with: the HTTP status (or none, when
 * no answer came), the method and URL, and the server's own message taken
 * out of whichever body format GraceDB used.
 *
 * @module
 */

import { isJsonObject } from "../core/alert.ts";

/** What went wrong, for the message and for callers that branch on it. */
export interface GraceDbErrorInit {
  /** The HTTP method of the request. */
  method: string;
  /** The full URL of the request. */
  url: string;
  /** The HTTP status; undefined when no answer came (network error, timeout). */
  status?: number | undefined;
  /** The server's message, or what happened instead of an answer. */
  detail: string;
  /** Seconds (or an HTTP date) from a `Retry-After` header, in ms from now. */
  retryAfterMs?: number | undefined;
  /** Whether the request ran out of time (per request or in total). */
  timedOut?: boolean | undefined;
  /** How many attempts were made. @default {1} */
  attempts?: number | undefined;
  /** The underlying error (a network error, or the last attempt's error). */
  cause?: unknown;
}

/**
 * A GraceDB request that failed. `status` is the HTTP status, or undefined
 * when no answer came; `detail` is the server's own message, unwrapped from
 * `{"detail": ..}`, `{"error": ..}`, a bare JSON string, a list of strings
 * or plain text.
 *
 * @example
 * ```ts
 * const error = new GraceDbError({
 *   method: "GET",
 *   url: "https://gracedb.ligo.org/api/events/G1",
 *   status: 404,
 *   detail: "Event not found.",
 * });
 * console.log(error.message); // GraceDB answered 404 to GET https://...: Event not found.
 * console.log(error.retryable); // false
 * ```
 */
export class GraceDbError extends Error {
  /** The HTTP status, or undefined when no answer came. */
  readonly status: number | undefined;
  /** The HTTP method of the request. */
  readonly method: string;
  /** The full URL of the request. */
  readonly url: string;
  /** The server's message (or what happened instead of an answer). */
  readonly detail: string;
  /** The wait the server asked for with `Retry-After`, in ms. */
  readonly retryAfterMs: number | undefined;
  /** Whether the request ran out of time. */
  readonly timedOut: boolean;
  /** How many attempts were made before giving up. */
  readonly attempts: number;

  /** Builds the error; the message names the status, method, URL and detail. */
  constructor(init: GraceDbErrorInit) {
    const attempts = init.attempts ?? 1;
    const what = init.status === undefined
      ? `GraceDB did not answer ${init.method} ${init.url}`
      : `GraceDB answered ${init.status} to ${init.method} ${init.url}`;
    const tries = attempts > 1 ? ` (after ${attempts} attempts)` : "";
    super(`${what}: ${init.detail}${tries}`, { cause: init.cause });
    this.name = "GraceDbError";
    this.status = init.status;
    this.method = init.method;
    this.url = init.url;
    this.detail = init.detail;
    this.retryAfterMs = init.retryAfterMs;
    this.timedOut = init.timedOut ?? false;
    this.attempts = attempts;
  }

  /**
   * Whether trying again may help: no answer (network error, timeout),
   * 408, 429 or any 5xx. Other 4xx answers never are.
   */
  get retryable(): boolean {
    const s = this.status;
    return s === undefined || s === 408 || s === 429 || (s >= 500 && s <= 599);
  }

  /** The same error, counting `attempts` and keeping `cause` as its cause. */
  afterAttempts(attempts: number, detail = this.detail): GraceDbError {
    return new GraceDbError({
      method: this.method,
      url: this.url,
      status: this.status,
      detail,
      retryAfterMs: this.retryAfterMs,
      timedOut: this.timedOut,
      attempts,
      cause: this,
    });
  }
}

const MAX_DETAIL = 500;

function flatten(value: unknown, depth = 0): string {
  if (typeof value === "string") {
    // GraceDB sometimes sends a JSON string that holds JSON (label PUT).
    const inner = depth < 2 && /^\s*[[{"]/.test(value) ? tryJson(value) : undefined;
    return inner === undefined ? value : flatten(inner.value, depth + 1);
  }
  if (Array.isArray(value)) return value.map((v) => flatten(v, depth + 1)).join("; ");
  if (isJsonObject(value)) {
    for (const key of ["detail", "error", "message", "warning"]) {
      if (value[key] !== undefined) return flatten(value[key], depth + 1);
    }
    if (value.non_field_errors !== undefined) return flatten(value.non_field_errors, depth + 1);
    return Object.entries(value)
      .map(([k, v]) => `${k}: ${flatten(v, depth + 1)}`)
      .join("; ");
  }
  return value === undefined ? "" : String(value);
}

function tryJson(text: string): { value: unknown } | undefined {
  try {
    return { value: JSON.parse(text) };
  } catch {
    return undefined;
  }
}

/**
 * The server's message in an error body, whatever its format: a JSON
 * object (`detail`, `error`, `message`, `warning`, `non_field_errors`, or
 * each field's messages), a bare JSON string (which may itself hold JSON),
 * a list, an HTML page (tags dropped) or plain text. Long texts are cut.
 *
 * @example
 * ```ts
 * serverMessage('{"detail":"Not found."}'); // "Not found."
 * serverMessage('"Tag is already applied to this log message"'); // without the quotes
 * serverMessage("<h1>Not Found</h1>", "text/html"); // "Not Found"
 * ```
 */
export function serverMessage(body: string, contentType = ""): string {
  const text = body.trim();
  if (text === "") return "(empty body)";
  const json = contentType.includes("html") ? undefined : tryJson(text);
  let message = json === undefined ? text : flatten(json.value);
  if (json === undefined && (contentType.includes("html") || /^<!doctype|^<html/i.test(text))) {
    message = text.replace(/<(script|style)[\s\S]*?<\/\1>/gi, " ").replace(/<[^>]*>/g, " ");
  }
  message = message.replace(/\s+/g, " ").trim();
  return message.length > MAX_DETAIL ? `${message.slice(0, MAX_DETAIL)}…` : message;
}

/**
 * A `Retry-After` header in ms from `now`: delay-seconds or an HTTP date;
 * undefined when absent or unreadable.
 *
 * @example
 * ```ts
 * retryAfterMs("3"); // 3000
 * retryAfterMs(null); // undefined
 * ```
 */
export function retryAfterMs(header: string | null, now: number = Date.now()): number | undefined {
  if (header === null || header.trim() === "") return undefined;
  const value = header.trim();
  if (/^\d+(\.\d+)?$/.test(value)) return Number(value) * 1000;
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}
