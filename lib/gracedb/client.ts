/**
 * The GraceDB REST client the handlers use: reads and writes of events and
 * superevents (the id decides which paths), each call with a timeout,
 * retries and a bound on its total time.
 *
 * @module
 */

import { type GraceDbAuth, GraceDbCredentials } from "./auth.ts";
import { GraceDbError } from "./error.ts";
import { graceDbPaths, isEventId } from "./ids.ts";
import {
  type GraceDbEvent,
  type GraceDbLabel,
  type GraceDbLogEntry,
  type GraceDbSignoff,
  type GraceDbSuperevent,
  type GraceDbTag,
  type GraceDbVoEvent,
  type Narrowed,
  readEvent,
  readFileList,
  readLabel,
  readList,
  readLogEntry,
  readSignoff,
  readSuperevent,
  readTag,
  readVoEvent,
} from "./responses.ts";
import { type Answer, type RequestSpec, Transport } from "./transport.ts";
import { voEventBody, type VoEventFields, type VoEventType } from "./voevent.ts";

/** Options for a {@linkcode GraceDbClient}. */
export interface GraceDbClientOptions {
  /** Credentials from `resolveGraceDbAuth` (plain or wrapped). @default {{ kind: "none" }} */
  auth?: GraceDbAuth | GraceDbCredentials;
  /** The tool's version, for the User-Agent `lvalertMP/<version>`. @default {"dev"} */
  version?: string;
  /** The whole User-Agent, instead of `lvalertMP/<version>`. */
  userAgent?: string;
  /** Time for one attempt, answer body included, in ms. @default {30000} */
  timeoutMs?: number;
  /** Time for a whole call, retries and waits included, in ms. @default {120000} */
  totalTimeMs?: number;
  /** Attempts per call in all. @default {5} */
  maxAttempts?: number;
  /** First wait between attempts, in ms (then doubling). @default {1000} */
  minBackoffMs?: number;
  /** Longest wait between attempts, in ms. @default {30000} */
  maxBackoffMs?: number;
  /** Random fraction of each wait (0: exact). @default {0.5} */
  jitter?: number;
  /** A longer `Retry-After` than this (ms) is not waited for: the call fails. @default {60000} */
  maxRetryAfterMs?: number;
  /**
   * Whether POSTs (log entries, VOEvents, superevent labels) are retried
   * too. A POST whose answer was lost may then be applied twice; GWCelery
   * retries them, and label POSTs are safe (a repeat counts as success).
   *
   * @default {true}
   */
  retryWrites?: boolean;
  /** Aborting it ends every call of this client at once. */
  signal?: AbortSignal;
  /** Hears about each failed attempt before the wait that follows (for logs). */
  onRetry?: (error: GraceDbError, attempt: number, waitMs: number) => void;
}

/** Per-call options: every method takes them last. */
export interface GraceDbCallOptions {
  /** Aborting it ends the call at once, rejecting with the signal's reason. */
  signal?: AbortSignal;
  /** Overrides the client's `timeoutMs` for this call. */
  timeoutMs?: number;
  /** Overrides the client's `totalTimeMs` for this call (e.g. to fit a deadline). */
  totalTimeMs?: number;
  /** Overrides the client's `maxAttempts` for this call. */
  maxAttempts?: number;
}

/** A file to attach to a log entry. */
export interface GraceDbUpload {
  /** The file name GraceDB stores it under (versions are added by GraceDB). */
  name: string;
  /** The contents; a string is sent as UTF-8. */
  data: Uint8Array | string;
  /** Its media type. @default {"application/octet-stream"} */
  contentType?: string;
}

/** Options for {@linkcode GraceDbClient.writeLog}. */
export interface WriteLogOptions extends GraceDbCallOptions {
  /** Tag names for the entry (e.g. `em_follow`). */
  tags?: string[];
  /** Display names, one per tag (or none). */
  displayNames?: string[];
  /** A file to upload with the entry (sent as multipart/form-data). */
  file?: GraceDbUpload;
}

/** Options for {@linkcode GraceDbClient.queryEvents} and `querySuperevents`. */
export interface GraceDbQueryOptions extends GraceDbCallOptions {
  /** Results per page (`count`). @default {GraceDB's: 10} */
  pageSize?: number;
  /** Sort order, e.g. `-created` or `gpstime`. @default {GraceDB's: -created} */
  sort?: string;
  /** Stop after this many results. @default {Infinity} */
  limit?: number;
}

/** Options for {@linkcode GraceDbClient.createVoEvent}. */
export interface CreateVoEventOptions extends GraceDbCallOptions, VoEventFields {}

/** What adding or removing a label did. */
export interface LabelChange {
  /** False when the label was already there (add) or already gone (remove). */
  changed: boolean;
  /** GraceDB's warning or message when nothing changed. */
  detail?: string;
}

/**
 * A GraceDB REST client. Event ids (`G123`) and superevent ids
 * (`S190425z`) are both accepted; the id decides the paths. Every call
 * retries network errors, timeouts, 408, 429 and 5xx with exponential
 * backoff, never other 4xx, and fails with a {@linkcode GraceDbError}.
 *
 * @example
 * ```ts
 * const gracedb = new GraceDbClient("https://gracedb.ligo.org/api/", {
 *   auth: { kind: "none" },
 *   version: "0.1.0",
 *   totalTimeMs: 10_000,
 * });
 * const run = async () => {
 *   const event = await gracedb.get("G194533");
 *   const logs = await gracedb.logs("G194533");
 *   await gracedb.writeLog("G194533", "ES: no action required", { tags: ["event_supervisor"] });
 *   return { far: event.far, comments: logs.map((l) => l.comment) };
 * };
 * ```
 */
export class GraceDbClient {
  readonly #base: URL;
  readonly #transport: Transport;
  readonly #auth: GraceDbCredentials;
  readonly #totalTimeMs: number;

  /** A client for the API root `url` (e.g. `https://gracedb.ligo.org/api/`). */
  constructor(url: string | URL, options: GraceDbClientOptions = {}) {
    const base = new URL(url);
    if (!base.pathname.endsWith("/")) base.pathname += "/";
    const auth = options.auth instanceof GraceDbCredentials
      ? options.auth
      : new GraceDbCredentials(options.auth ?? { kind: "none" });
    this.#base = base;
    this.#auth = auth;
    this.#totalTimeMs = options.totalTimeMs ?? 120_000;
    this.#transport = new Transport({
      base,
      auth: auth.auth,
      userAgent: options.userAgent ?? `lvalertMP/${options.version ?? "dev"}`,
      timeoutMs: options.timeoutMs ?? 30_000,
      totalTimeMs: this.#totalTimeMs,
      maxAttempts: options.maxAttempts ?? 5,
      minBackoffMs: options.minBackoffMs ?? 1000,
      maxBackoffMs: options.maxBackoffMs ?? 30_000,
      jitter: options.jitter ?? 0.5,
      maxRetryAfterMs: options.maxRetryAfterMs ?? 60_000,
      retryWrites: options.retryWrites ?? true,
      signal: options.signal,
      onRetry: options.onRetry,
    });
  }

  /** The API root, with its trailing slash. */
  get url(): string {
    return this.#base.href;
  }

  /** An event (`GET events/{id}`) or a superevent (`GET superevents/{id}/`). */
  async get(
    id: string,
    options: GraceDbCallOptions = {},
  ): Promise<GraceDbEvent | GraceDbSuperevent> {
    return isEventId(id) ? await this.event(id, options) : await this.superevent(id, options);
  }

  /** An event (`GET events/{graceid}`); a superevent id is a `RangeError`. */
  async event(graceid: string, options: GraceDbCallOptions = {}): Promise<GraceDbEvent> {
    const paths = graceDbPaths(graceid);
    if (paths.kind !== "event") throw new RangeError(`Not an event id: ${graceid}`);
    return await this.#call({ method: "GET", target: paths.self }, options, readEvent);
  }

  /** A superevent (`GET superevents/{id}/`); an event id is a `RangeError`. */
  async superevent(id: string, options: GraceDbCallOptions = {}): Promise<GraceDbSuperevent> {
    const paths = graceDbPaths(id);
    if (paths.kind !== "superevent") throw new RangeError(`Not a superevent id: ${id}`);
    return await this.#call({ method: "GET", target: paths.self }, options, readSuperevent);
  }

  /** The log entries, oldest first. */
  async logs(id: string, options: GraceDbCallOptions = {}): Promise<GraceDbLogEntry[]> {
    return await this.#list(graceDbPaths(id).logs, "log", readLogEntry, options);
  }

  /** The tags of log entry `n`. */
  async logTags(id: string, n: number, options: GraceDbCallOptions = {}): Promise<GraceDbTag[]> {
    return await this.#list(graceDbPaths(id).logTags(n), "tags", readTag, options);
  }

  /** The files, as `{name: url}`: each `name,version` and the plain (latest) `name`. */
  async files(id: string, options: GraceDbCallOptions = {}): Promise<Record<string, string>> {
    return await this.#call(
      { method: "GET", target: graceDbPaths(id).files },
      options,
      readFileList,
    );
  }

  /** A file's bytes; `name` is `name` (latest) or `name,version`. */
  async download(id: string, name: string, options: GraceDbCallOptions = {}): Promise<Uint8Array> {
    const spec: RequestSpec = { method: "GET", target: graceDbPaths(id).file(name), accept: "*/*" };
    return (await this.#transport.send(spec, options)).bytes;
  }

  /** A file's text (UTF-8). */
  async downloadText(id: string, name: string, options: GraceDbCallOptions = {}): Promise<string> {
    return new TextDecoder().decode(await this.download(id, name, options));
  }

  /**
   * The bytes at a GraceDB URL, such as a log entry's `file` or a VOEvent's
   * `links.file`; a URL on another origin is refused (`RangeError`), so
   * credentials never leave GraceDB.
   */
  async downloadUrl(url: string | URL, options: GraceDbCallOptions = {}): Promise<Uint8Array> {
    const spec: RequestSpec = {
      method: "GET",
      target: this.#transport.resolve(url),
      accept: "*/*",
    };
    return (await this.#transport.send(spec, options)).bytes;
  }

  /** The labels applied. */
  async labels(id: string, options: GraceDbCallOptions = {}): Promise<GraceDbLabel[]> {
    return await this.#list(graceDbPaths(id).labels, "labels", readLabel, options);
  }

  /**
   * Writes a log entry with `tags`, and a file if given: JSON without a
   * file (GraceDB refuses form data then), multipart/form-data with one.
   */
  async writeLog(
    id: string,
    comment: string,
    options: WriteLogOptions = {},
  ): Promise<GraceDbLogEntry> {
    const tags = options.tags ?? [];
    const names = options.displayNames ?? [];
    let spec: RequestSpec;
    if (options.file) {
      const form = new FormData();
      form.append("comment", comment);
      for (const tag of tags) form.append("tagname", tag);
      for (const name of names) form.append("displayName", name);
      const { name, data, contentType = "application/octet-stream" } = options.file;
      const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
      form.append(
        "upload",
        new File([bytes as Uint8Array<ArrayBuffer>], name, { type: contentType }),
      );
      spec = { method: "POST", target: graceDbPaths(id).logs, body: form };
    } else {
      const body = JSON.stringify({ comment, tagname: tags, displayName: names });
      spec = { method: "POST", target: graceDbPaths(id).logs, body };
    }
    return await this.#call(spec, options, readLogEntry);
  }

  /**
   * Writes a log entry without ever sending it twice unread: each POST is
   * one request (a re-sent POST may double an entry GraceDB took), and
   * after one answered with a transient error (5xx, 429, 408) the log is
   * read and the entry sent again only if it is not there, up to `tries`
   * requests. `lookFirst` reads the log before the first request too (an
   * earlier attempt failed). Resolves `written`, or `found` when the entry
   * (same comment and file name) was there already; `totalTimeMs` bounds
   * the whole.
   *
   * @throws {GraceDbError} after a failure without an answer (the request
   * may still be on its way in: looking now could miss it), a refusal, or
   * the last try
   */
  async writeLogOnce(
    id: string,
    comment: string,
    options: WriteLogOptions & { tries?: number; lookFirst?: boolean } = {},
  ): Promise<"written" | "found"> {
    const { tries = 3, lookFirst = false, ...write } = options;
    const name = options.file?.name ?? "";
    const ends = write.totalTimeMs === undefined ? Infinity : performance.now() + write.totalTimeMs;
    // Each call gets what is left of the whole.
    const bounded = (): GraceDbCallOptions => {
      const call = write.signal ? { signal: write.signal } : {};
      if (ends === Infinity) {
        return write.timeoutMs ? { ...call, timeoutMs: write.timeoutMs } : call;
      }
      const left = Math.max(1, Math.round(ends - performance.now()));
      return { ...call, totalTimeMs: left, timeoutMs: Math.min(write.timeoutMs ?? left, left) };
    };
    let look = lookFirst;
    for (let tried = 1;; tried++) {
      if (look) {
        const entries = await this.logs(id, bounded());
        if (entries.some((e) => e.comment === comment && e.filename === name)) return "found";
      }
      try {
        await this.writeLog(id, comment, { ...write, ...bounded(), maxAttempts: 1 });
        return "written";
      } catch (error) {
        const answered = error instanceof GraceDbError && error.retryable &&
          error.status !== undefined;
        if (!answered || tried >= tries || performance.now() >= ends) throw error;
        look = true;
      }
    }
  }

  /**
   * Applies a label: `PUT events/{id}/labels/{label}`, or
   * `POST superevents/{id}/labels/` with `{"name": label}`. A label that
   * is already applied is success with `changed: false`, as GWCelery
   * treats it: the event's 200 with a warning, the superevent's 400
   * "... must make a unique set".
   */
  async addLabel(
    id: string,
    label: string,
    options: GraceDbCallOptions = {},
  ): Promise<LabelChange> {
    const paths = graceDbPaths(id);
    if (paths.kind === "event") {
      const answer = await this.#transport.send(
        { method: "PUT", target: paths.label(label) },
        options,
      );
      if (answer.status === 201) return { changed: true };
      const detail = messageOf(answer);
      return detail ? { changed: false, detail } : { changed: false };
    }
    const body = JSON.stringify({ name: label });
    try {
      await this.#transport.send({ method: "POST", target: paths.labels, body }, options);
      return { changed: true };
    } catch (error) {
      if (error instanceof GraceDbError && error.status === 400 && ALREADY.test(error.detail)) {
        return { changed: false, detail: error.detail };
      }
      throw error;
    }
  }

  /**
   * Removes a label: `DELETE events/{id}/labels/{label}` or
   * `DELETE superevents/{id}/labels/{label}/`. A label that is not applied
   * is success with `changed: false`, as GWCelery treats it: a 404, or
   * the event's 400 "No label 'X' associated with event".
   */
  async removeLabel(
    id: string,
    label: string,
    options: GraceDbCallOptions = {},
  ): Promise<LabelChange> {
    const paths = graceDbPaths(id);
    try {
      await this.#transport.send({ method: "DELETE", target: paths.label(label) }, options);
      return { changed: true };
    } catch (error) {
      if (
        error instanceof GraceDbError &&
        (error.status === 404 || (error.status === 400 && NOT_APPLIED.test(error.detail)))
      ) {
        return { changed: false, detail: error.detail };
      }
      throw error;
    }
  }

  /**
   * Asks GraceDB to build a VOEvent (`POST .../voevent/` or `.../voevents/`);
   * GraceDB also writes a "New VOEvent" log entry tagged `em_follow`. The
   * XML is at the answer's `links.file` (see {@linkcode downloadUrl}).
   */
  async createVoEvent(
    id: string,
    type: VoEventType,
    options: CreateVoEventOptions = {},
  ): Promise<GraceDbVoEvent> {
    const paths = graceDbPaths(id);
    const body = JSON.stringify(voEventBody(type, options, paths.kind));
    return await this.#call({ method: "POST", target: paths.voevents, body }, options, readVoEvent);
  }

  /** The VOEvents built so far, oldest first. */
  async voEvents(id: string, options: GraceDbCallOptions = {}): Promise<GraceDbVoEvent[]> {
    return await this.#list(graceDbPaths(id).voevents, "voevents", readVoEvent, options);
  }

  /** The operator and advocate signoffs. */
  async signoffs(id: string, options: GraceDbCallOptions = {}): Promise<GraceDbSignoff[]> {
    return await this.#list(graceDbPaths(id).signoffs, "signoffs", readSignoff, options);
  }

  /**
   * Events matching a GraceDB query (e.g. `gpstime: 1000 .. 2000`, or a
   * bare `1000 .. 2000`), every page (following `links.next`); the
   * call's total time bound covers all pages.
   */
  async queryEvents(query: string, options: GraceDbQueryOptions = {}): Promise<GraceDbEvent[]> {
    return await this.#query("events/", "events", readEvent, query, options);
  }

  /** Superevents matching a GraceDB query, every page (see {@linkcode queryEvents}). */
  async querySuperevents(
    query: string,
    options: GraceDbQueryOptions = {},
  ): Promise<GraceDbSuperevent[]> {
    return await this.#query("superevents/", "superevents", readSuperevent, query, options);
  }

  /** The API root and the credentials' source, never the secret. */
  toString(): string {
    return `GraceDbClient(${this.#base.href}, ${this.#auth.toString()})`;
  }

  async #query<T>(
    path: string,
    key: string,
    read: (value: unknown) => Narrowed<T>,
    query: string,
    options: GraceDbQueryOptions,
  ): Promise<T[]> {
    const limit = options.limit ?? Infinity;
    const first = new URL(path, this.#base);
    first.searchParams.set("query", query);
    if (options.pageSize !== undefined) first.searchParams.set("count", String(options.pageSize));
    if (options.sort !== undefined) first.searchParams.set("sort", options.sort);
    // One bound for the whole query, all pages.
    const until = performance.now() + (options.totalTimeMs ?? this.#totalTimeMs);
    const results: T[] = [];
    const seen = new Set<string>();
    let target: URL | undefined = first;
    while (target && results.length < limit) {
      seen.add(target.search);
      const call = { ...options, totalTimeMs: Math.max(1, until - performance.now()) };
      const page: { items: T[]; next: URL | undefined } = await this.#call(
        { method: "GET", target },
        call,
        (body) => {
          const items = readList(body, key, read);
          return items.ok
            ? { ok: true, value: { items: items.value, next: nextPage(body, first, seen) } }
            : items;
        },
      );
      results.push(...page.items);
      target = page.next;
    }
    return results.slice(0, limit);
  }

  async #list<T>(
    path: string,
    key: string,
    read: (value: unknown) => Narrowed<T>,
    options: GraceDbCallOptions,
  ): Promise<T[]> {
    return await this.#call(
      { method: "GET", target: path },
      options,
      (body) => readList(body, key, read),
    );
  }

  /** Sends `spec`, reads the answer as JSON and narrows it with `read`. */
  async #call<T>(
    spec: RequestSpec,
    options: GraceDbCallOptions,
    read: (body: unknown) => Narrowed<T>,
  ): Promise<T> {
    const answer = await this.#transport.send(spec, options);
    let body: unknown;
    try {
      body = JSON.parse(new TextDecoder().decode(answer.bytes));
    } catch (error) {
      throw unexpected(answer, spec, `not JSON (${(error as Error).message})`);
    }
    const narrowed = read(body);
    if (!narrowed.ok) throw unexpected(answer, spec, narrowed.reason);
    return narrowed.value;
  }
}

const ALREADY = /unique set|already/i;
const NOT_APPLIED = /No label .* associated with/i;

/** The next page's URL: `links.next`'s query on our own list path (never another host). */
function nextPage(body: unknown, first: URL, seen: Set<string>): URL | undefined {
  const links = typeof body === "object" && body !== null
    ? (body as { links?: unknown }).links
    : undefined;
  const next = typeof links === "object" && links !== null
    ? (links as { next?: unknown }).next
    : undefined;
  if (typeof next !== "string" || next === "") return undefined;
  const url = new URL(first);
  url.search = new URL(next, first).search;
  return seen.has(url.search) ? undefined : url;
}

function messageOf(answer: Answer): string | undefined {
  const text = new TextDecoder().decode(answer.bytes).trim();
  if (text === "") return undefined;
  let value: unknown = text;
  // The event label PUT answers with a JSON string holding JSON: "{\"warning\": ...}".
  for (let i = 0; i < 2 && typeof value === "string"; i++) {
    try {
      value = JSON.parse(value);
    } catch {
      break;
    }
  }
  if (typeof value === "object" && value !== null) {
    const o = value as Record<string, unknown>;
    const m = o.warning ?? o.detail ?? o.error;
    return typeof m === "string" ? m : undefined;
  }
  return typeof value === "string" && value !== "" ? value : undefined;
}

function unexpected(answer: Answer, spec: RequestSpec, reason: string): GraceDbError {
  return new GraceDbError({
    method: spec.method,
    url: answer.url,
    status: answer.status,
    detail: `Unexpected answer: ${reason}`,
  });
}
