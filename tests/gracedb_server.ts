/**
 * A GraceDB-compatible HTTP server for tests and demos: a real
 * `Deno.serve` on 127.0.0.1 holding events, superevents, logs (with
 * tags), files (versions `name,V` and the plain name), labels, VOEvents
 * and signoffs in memory. It records every request and can inject faults
 * per path (statuses, `Retry-After`, hangs, slow answers).
 *
 * Matches GRACEDB.md:
 * - §1 the root document (links, a few templates, label names),
 *   `user-info/`, the trailing-slash rules (event paths none; superevent
 *   paths one, except `files/` names); the wrong form is a 404;
 * - §2 event dicts (eventToDict fields and links), the paginated event
 *   list `{links: {self, first, last, next?}, events, numRows}` (count 10
 *   by default), 400 `{"error": "Invalid query"}`;
 * - §3 superevent dicts (fields hidden from anonymous callers dropped),
 *   the paginated list `{numRows, superevents, links: {self, next,
 *   previous, first, last}}` with null at the ends, 400 `{"detail": ..}`;
 * - §4 log lists and entries for both kinds, POST as JSON or multipart
 *   (`comment`, `tagname`, `displayName`, `upload`, and `label` for
 *   events), 201 with a Location header, the display-name count rule;
 * - §5 event labels (list whose `links` is a list; PUT 201/200 with the
 *   JSON-string body; DELETE 204, or 400 when not applied; "No such
 *   Label"), superevent labels (POST 201, duplicate 400 "... must make a
 *   unique set.", DELETE 204 or 404);
 * - §6 file lists `{name: url}` and downloads with a guessed Content-Type
 *   (octet-stream with Content-Disposition: attachment), 404 for a
 *   missing file or version;
 * - §7 VOEvent create and list (GraceDB writes the XML file and a "New
 *   VOEvent" log entry tagged em_follow), the event `{"error": ..}` and
 *   superevent bare-string 400s, the skymap rules;
 * - §8 signoff lists (GET only);
 * - §9 403 `{"detail": "Authentication credentials were not provided."}`
 *   on event endpoints (and superevent writes) without credentials when
 *   `requireAuth` is set, 403 for wrong credentials, 400 text without a
 *   User-Agent (or with gracedb-client older than 2.0.0);
 * - §10 error bodies: `{"detail"}`, `{"error"}`, bare JSON strings, and
 *   the plain-text "Event not found.".
 *
 * Query terms understood (ANDed): `gpstime: A .. B` (for superevents
 * `t_0`), a bare `A .. B`, `graceid` ranges `G1 .. G9`, `far < X` (also
 * `<=`, `>`, `>=`, `far: A .. B`), `created: DATE .. DATE` (UTC
 * `YYYY-MM-DD[ HH:MM:SS]`, or `now`), `pipeline:`, `group:`, `search:`,
 * `instruments:`, `submitter:`, `superevent:`, `in_superevent:`,
 * `label:`, and for superevents `id:`, `category:`, `preferred_event:`,
 * `t_start:`, `t_end:`, `t_0:`, `is_gw:`; a bare word is a graceid, a
 * group, pipeline or search name, or a label (`~LABEL` negates). Test
 * group and MDC search events are left out unless asked for; superevents
 * are Production only unless a category is given. Anything else is 400.
 *
 * Not modelled: event creation and replacement, EM observations,
 * permissions and exposure, signoff writes, log tag writes, PATCH of
 * superevents, label protection and signoff-dependent label refusals,
 * throttling (inject 429s instead), the log entries old GraceDB wrote for
 * labels and tags, external (LV-EM) users' filtered views, X.509, and
 * Django's redirect of a GET that lacks a trailing slash (here a 404, so
 * a client with wrong paths fails). Refusing multipart/form log entries
 * without a file follows the gracedb-sdk note, unverified on the server.
 *
 * One file (over the usual size) so the whole stand-in is in one place.
 *
 * Command line: `deno run --allow-net --allow-read tests/gracedb_server.ts
 * --port N [--data file.json] [--require-auth --token T]`
 *
 * @module
 */

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type JsonRecord = Record<string, unknown>;

/** Options for {@linkcode GraceDbTestServer.start}. */
export interface GraceDbTestServerOptions {
  /** Port to listen on. @default {0 (a free port)} */
  port?: number;
  /** Refuse event endpoints (and superevent writes) without credentials. @default {false} */
  requireAuth?: boolean;
  /** The bearer token accepted. */
  token?: string;
  /** The basic credentials accepted. */
  basic?: { username: string; password: string };
  /** The user a valid token stands for. @default {"albert.einstein@LIGO.ORG"} */
  tokenUser?: string;
  /** Label names that exist. @default {GraceDB's common labels} */
  labels?: string[];
  /** The clock for `created` fields (ms since the epoch). @default {Date.now} */
  now?: () => number;
}

/** One request, as received. */
export interface RecordedRequest {
  method: string;
  /** The path, e.g. `/api/events/G1/log/`. */
  path: string;
  /** The query string without `?`. */
  query: string;
  /** JSON parsed; form fields as an object (files as `{file, size, type}`); else text. */
  body: unknown;
  contentType: string;
  userAgent: string | null;
  /** The Authorization header's scheme, or none. */
  auth: "bearer" | "basic" | "none" | "other";
  /** The status answered (undefined while a hang lasts). */
  status: number | undefined;
  /** Arrival, ms since the epoch. */
  time: number;
  /** Whether an injected fault answered (or delayed) it. */
  fault: boolean;
}

/** A fault to inject; the first fault that matches a request applies. */
export interface GraceDbFault {
  /** Exact path (relative to `/api/` unless it starts with `/`), or a pattern. */
  path: string | RegExp;
  /** Only this method. @default {any} */
  method?: string;
  /** Answer with this status (and a GraceDB-like body) instead of the real answer. */
  status?: number;
  /** The body for `status` (JSON, or a string sent as text). */
  body?: Json;
  /** A `Retry-After` header for `status`. */
  retryAfter?: number | string;
  /** Wait this long first (then the fault's status, or the real answer). */
  delayMs?: number;
  /** Never answer (until the server closes). */
  hang?: boolean;
  /** How many requests it applies to. @default {1} */
  times?: number;
}

/** A fault in place. */
export interface FaultHandle {
  /** How many more requests it applies to. */
  readonly remaining: number;
  /** Takes it away. */
  remove(): void;
}

/** An event to add; missing fields get GraceDB-like defaults. */
export interface EventInput extends JsonRecord {
  graceid?: string;
  group?: string;
  pipeline?: string;
  search?: string | null;
  gpstime?: number | string;
  far?: number | null;
  instruments?: string;
  /** ms since the epoch, or GraceDB's `YYYY-MM-DD HH:MM:SS UTC`. */
  created?: number | string;
  submitter?: string;
}

/** A superevent to add. */
export interface SupereventInput extends JsonRecord {
  superevent_id?: string;
  category?: "Production" | "Test" | "MDC";
  t_0?: number;
  t_start?: number;
  t_end?: number;
  preferred_event?: string | null;
  gw_events?: string[];
  em_events?: string[];
  far?: number | null;
  created?: number | string;
  submitter?: string;
}

/** A file for {@linkcode GraceDbTestServer.addLog}. */
export interface FileInput {
  name: string;
  data: Uint8Array | string;
}

interface LogRecord {
  N: number;
  comment: string;
  created: number;
  issuer: string;
  filename: string;
  file_version: number | null;
  tags: { name: string; displayName: string }[];
}

interface VoRecord {
  N: number;
  fields: JsonRecord;
  created: number;
  issuer: string;
  filename: string;
  file_version: number;
  ivorn: string;
}

interface Entry {
  kind: "event" | "superevent";
  id: string;
  order: number;
  created: number;
  submitter: string;
  fields: JsonRecord;
  logs: LogRecord[];
  files: Map<string, Uint8Array[]>;
  labels: { name: string; creator: string; created: number }[];
  voevents: VoRecord[];
  signoffs: JsonRecord[];
}

interface Caller {
  user: string;
  anonymous: boolean;
}

interface Body {
  fields: Map<string, (string | File)[]>;
  json: unknown;
  form: boolean;
  recorded: unknown;
}

const DEFAULT_LABELS = (
  "ADVNO ADVOK ADVREQ DQOK DQV EMBRIGHT_READY EM_COINC EM_READY EM_SENT EM_Selected " +
  "EM_Superseded EM_Throttled GCN_PRELIM_SENT H1NO H1OK H1OPS INJ L1NO L1OK L1OPS " +
  "LOW_SIGNIF_LOCKED PASTRO_READY PE_READY RAVEN_ALERT SKYMAP_READY V1NO V1OK V1OPS"
).split(" ");

const VOEVENT_NAMES: Record<string, string> = {
  PR: "Preliminary",
  IN: "Initial",
  UP: "Update",
  RE: "Retraction",
  EW: "Earlywarning",
};

const NO_CREDENTIALS = { detail: "Authentication credentials were not provided." };
const OUTDATED_CLIENT = "Your client software is out of date. Please upgrade to gracedb-client " +
  ">= 2.0.0 (or send a User-Agent header).";

/** GraceDB's time format: `2018-09-19 18:28:54 UTC`. */
export function graceDbTime(ms: number): string {
  return new Date(ms).toISOString().replace("T", " ").replace(/\.\d+Z$/, " UTC");
}

function parseTime(value: number | string | undefined, fallback: number): number {
  if (typeof value === "number") return value;
  if (typeof value !== "string") return fallback;
  const ms = Date.parse(value.replace(" UTC", "Z").replace(" ", "T"));
  return Number.isNaN(ms) ? fallback : ms;
}

function json(body: unknown, status = 200, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { "content-type": "application/json", ...headers },
  });
}

function text(body: string, status: number, type = "text/html; charset=utf-8"): Response {
  return new Response(body, { status, headers: { "content-type": type } });
}

const NOT_FOUND_PAGE = "<!doctype html><html><head><title>Not Found</title></head><body>" +
  "<h1>Not Found</h1><p>The requested resource was not found on this server.</p></body></html>";

/** A real GraceDB-compatible HTTP server on 127.0.0.1 (see the module doc). */
export class GraceDbTestServer {
  readonly #server: Deno.HttpServer<Deno.NetAddr>;
  readonly #options: GraceDbTestServerOptions;
  readonly #closing = new AbortController();
  readonly #entries = new Map<string, Entry>();
  readonly #requests: RecordedRequest[] = [];
  readonly #faults: { fault: GraceDbFault; left: number }[] = [];
  readonly #labels: Set<string>;
  #nextEvent = 1;
  #order = 0;
  /** The API root, ending in `/api/`. */
  readonly url: string;

  private constructor(options: GraceDbTestServerOptions) {
    this.#options = options;
    this.#labels = new Set(options.labels ?? DEFAULT_LABELS);
    this.#server = Deno.serve(
      { hostname: "127.0.0.1", port: options.port ?? 0, onListen: () => {} },
      (request) => this.#handle(request),
    );
    this.url = `http://127.0.0.1:${this.#server.addr.port}/api/`;
  }

  /**
   * Starts a server on a free port.
   *
   * @example
   * ```ts
   * await using gdb = await GraceDbTestServer.start({ requireAuth: true, token: "t" });
   * const graceid = gdb.addEvent({ group: "CBC", pipeline: "gstlal", gpstime: 1e9 });
   * ```
   */
  static start(options: GraceDbTestServerOptions = {}): Promise<GraceDbTestServer> {
    return Promise.resolve(new GraceDbTestServer(options));
  }

  /** Every request so far, in arrival order. */
  get requests(): readonly RecordedRequest[] {
    return this.#requests;
  }

  /** The requests that were not reads (POST, PUT, DELETE, PATCH). */
  writes(): RecordedRequest[] {
    return this.#requests.filter((r) => !["GET", "HEAD", "OPTIONS"].includes(r.method));
  }

  /** Forgets the requests recorded so far (e.g. after set-up). */
  clearRequests(): void {
    this.#requests.length = 0;
  }

  /** Injects a fault; the first matching fault applies, `times` times. */
  inject(fault: GraceDbFault): FaultHandle {
    const slot = { fault, left: fault.times ?? 1 };
    this.#faults.push(slot);
    const faults = this.#faults;
    return {
      get remaining() {
        return slot.left;
      },
      remove() {
        const i = faults.indexOf(slot);
        if (i >= 0) faults.splice(i, 1);
      },
    };
  }

  /** Adds an event; returns its graceid (given, or the next free one). */
  addEvent(input: EventInput = {}): string {
    const { graceid: given, created, submitter, ...fields } = input;
    const group = fields.group ?? "CBC";
    const pipeline = fields.pipeline ?? "gstlal";
    const prefix = group === "Test"
      ? "T"
      : group === "External"
      ? "E"
      : pipeline === "HardwareInjection"
      ? "H"
      : fields.search === "MDC"
      ? "M"
      : "G";
    const graceid = given ?? `${prefix}${this.#nextEvent}`;
    if (!/^[GEHMT]\d+$/.test(graceid)) throw new RangeError(`Not an event id: ${graceid}`);
    this.#nextEvent = Math.max(this.#nextEvent, Number(graceid.slice(1))) + 1;
    this.#add("event", graceid, created, submitter, {
      group,
      pipeline,
      search: null,
      gpstime: 1000000000,
      far: 1e-7,
      instruments: "H1,L1",
      nevents: 2,
      offline: false,
      likelihood: null,
      extra_attributes: {},
      superevent: null,
      ...fields,
    });
    return graceid;
  }

  /** Adds a superevent; returns its id (given, or `S<yymmdd><letters>`). */
  addSuperevent(input: SupereventInput = {}): string {
    const { superevent_id: given, created, submitter, ...fields } = input;
    const id = given ?? this.#supereventId();
    if (/^[GEHMT]\d+/.test(id) || !/^[A-Za-z0-9]+$/.test(id)) {
      throw new RangeError(`Not a superevent id: ${id}`);
    }
    const t0 = fields.t_0 ?? 1000000000;
    this.#add("superevent", id, created, submitter, {
      category: "Production",
      gw_id: null,
      em_type: null,
      t_start: t0 - 1,
      t_0: t0,
      t_end: t0 + 1,
      preferred_event: null,
      gw_events: [],
      em_events: [],
      far: null,
      time_coinc_far: null,
      space_coinc_far: null,
      ...fields,
    });
    return id;
  }

  /** Adds a log entry (and its file, as a new version); returns its N. */
  addLog(
    id: string,
    comment: string,
    options: { tags?: string[]; file?: FileInput; issuer?: string } = {},
  ): number {
    const entry = this.#entry(id);
    let filename = "";
    let version: number | null = null;
    if (options.file) {
      filename = options.file.name;
      version = this.addFile(id, filename, options.file.data);
    }
    return this.#log(
      entry,
      comment,
      options.issuer ?? entry.submitter,
      filename,
      version,
      options.tags ?? [],
    )
      .N;
  }

  /** Stores a new version of a file (without a log entry); returns the version. */
  addFile(id: string, name: string, data: Uint8Array | string): number {
    if (name.includes(",")) throw new RangeError(`A file name has no comma: ${name}`);
    const versions = this.#entry(id).files.get(name) ?? [];
    versions.push(typeof data === "string" ? new TextEncoder().encode(data) : data);
    this.#entry(id).files.set(name, versions);
    return versions.length - 1;
  }

  /** Applies a label (no alert, no log entry). */
  addLabel(id: string, name: string, creator = "albert.einstein@LIGO.ORG"): void {
    const entry = this.#entry(id);
    if (!entry.labels.some((l) => l.name === name)) {
      entry.labels.push({ name, creator, created: this.#now() });
    }
  }

  /** Adds a signoff (`signoff_type` OP/ADV, `instrument`, `status` OK/NO, `comment`). */
  addSignoff(
    id: string,
    signoff: {
      signoff_type: "OP" | "ADV";
      instrument?: string;
      status: "OK" | "NO";
      comment?: string;
    },
  ): void {
    this.#entry(id).signoffs.push({
      submitter: "albert.einstein@LIGO.ORG",
      instrument: signoff.instrument ?? "",
      status: signoff.status,
      comment: signoff.comment ?? "",
      signoff_type: signoff.signoff_type,
    });
  }

  /** The label names applied now. */
  labelsOf(id: string): string[] {
    return this.#entry(id).labels.map((l) => l.name);
  }

  /** The log entries now, as GraceDB would list them. */
  logsOf(id: string): JsonRecord[] {
    const entry = this.#entry(id);
    return entry.logs.map((l) => this.#logDict(entry, l));
  }

  /** Every stored version of a file (empty when there is none). */
  fileVersions(id: string, name: string): Uint8Array[] {
    return [...(this.#entry(id).files.get(name) ?? [])];
  }

  /** The VOEvents now, as GraceDB would list them. */
  voEventsOf(id: string): JsonRecord[] {
    const entry = this.#entry(id);
    return entry.voevents.map((v) => this.#voDict(entry, v));
  }

  /** Stops serving; hung and delayed requests end first. */
  async close(): Promise<void> {
    if (this.#closing.signal.aborted) return;
    this.#closing.abort();
    await this.#server.shutdown();
  }

  /** Same as {@linkcode close}. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  // --- state -------------------------------------------------------------

  #now(): number {
    return (this.#options.now ?? Date.now)();
  }

  #add(
    kind: Entry["kind"],
    id: string,
    created: number | string | undefined,
    submitter: string | undefined,
    fields: JsonRecord,
  ): void {
    if (this.#entries.has(id)) throw new RangeError(`Already there: ${id}`);
    this.#entries.set(id, {
      kind,
      id,
      order: this.#order++,
      created: parseTime(created, this.#now()),
      submitter: submitter ?? "albert.einstein@LIGO.ORG",
      fields,
      logs: [],
      files: new Map(),
      labels: [],
      voevents: [],
      signoffs: [],
    });
  }

  #entry(id: string): Entry {
    const entry = this.#entries.get(id);
    if (!entry) throw new RangeError(`No such event or superevent: ${id}`);
    return entry;
  }

  #supereventId(): string {
    const day = new Date(this.#now()).toISOString().slice(2, 10).replace(/-/g, "");
    for (let n = 0;; n++) {
      let letters = "";
      for (let k = n; k >= 0; k = Math.floor(k / 26) - 1) {
        letters = String.fromCharCode(97 + (k % 26)) + letters;
      }
      if (!this.#entries.has(`S${day}${letters}`)) return `S${day}${letters}`;
    }
  }

  #log(
    entry: Entry,
    comment: string,
    issuer: string,
    filename: string,
    version: number | null,
    tags: string[],
    displayNames: string[] = [],
  ): LogRecord {
    const record: LogRecord = {
      N: entry.logs.length + 1,
      comment,
      created: this.#now(),
      issuer,
      filename,
      file_version: version,
      tags: tags.map((name, i) => ({ name, displayName: displayNames[i] ?? "" })),
    };
    entry.logs.push(record);
    return record;
  }

  // --- request handling -----------------------------------------------------

  async #handle(request: Request): Promise<Response> {
    const url = new URL(request.url);
    const record: RecordedRequest = {
      method: request.method,
      path: url.pathname,
      query: url.search.slice(1),
      body: undefined,
      contentType: request.headers.get("content-type") ?? "",
      userAgent: request.headers.get("user-agent"),
      auth: authScheme(request.headers.get("authorization")),
      status: undefined,
      time: Date.now(),
      fault: false,
    };
    this.#requests.push(record);
    const body = await readBody(request);
    record.body = body.recorded;
    const response = await this.#answer(request, url, body, record);
    record.status = response.status;
    return response;
  }

  async #answer(
    request: Request,
    url: URL,
    body: Body,
    record: RecordedRequest,
  ): Promise<Response> {
    const slot = this.#faults.find(({ fault, left }) =>
      left > 0 && (fault.method === undefined || fault.method === request.method) &&
      matches(fault.path, url.pathname)
    );
    if (slot) {
      slot.left--;
      record.fault = true;
      const { fault } = slot;
      const closing = this.#closing.signal;
      if (fault.hang) {
        await new Promise((resolve) => closing.addEventListener("abort", resolve, { once: true }));
        return json({ detail: "Server shutting down." }, 503);
      }
      if (fault.delayMs) {
        const gone = await new Promise<boolean>((resolve) => {
          const timer = setTimeout(() => resolve(false), fault.delayMs);
          closing.addEventListener("abort", () => {
            clearTimeout(timer);
            resolve(true);
          }, { once: true });
        });
        if (gone) return json({ detail: "Server shutting down." }, 503);
      }
      if (fault.status !== undefined) return faultResponse(fault);
    }
    const agent = request.headers.get("user-agent") ?? "";
    const official = agent.match(/gracedb-client\/(\d+)/);
    if (agent.trim() === "" || (official && Number(official[1]) < 2)) {
      return text(OUTDATED_CLIENT, 400, "text/plain; charset=utf-8");
    }
    const caller = this.#caller(request.headers.get("authorization"));
    if (caller === "invalid") return json({ detail: "Invalid username/password or token." }, 403);
    if (!url.pathname.startsWith("/api/")) return text(NOT_FOUND_PAGE, 404);
    let rest: string[];
    try {
      rest = url.pathname.slice("/api/".length).split("/").map(decodeURIComponent);
    } catch {
      return text(NOT_FOUND_PAGE, 404);
    }
    return await this.#route(request.method, rest, url, body, caller);
  }

  #caller(header: string | null): Caller | "invalid" {
    const o = this.#options;
    if (header === null) return { user: "AnonymousUser", anonymous: true };
    const [scheme, value = ""] = header.split(/\s+/, 2);
    if (scheme?.toLowerCase() === "bearer" && o.token !== undefined && value === o.token) {
      return { user: o.tokenUser ?? "albert.einstein@LIGO.ORG", anonymous: false };
    }
    if (scheme?.toLowerCase() === "basic" && o.basic) {
      let decoded = "";
      try {
        decoded = new TextDecoder().decode(Uint8Array.from(atob(value), (c) => c.charCodeAt(0)));
      } catch {
        return "invalid";
      }
      if (decoded === `${o.basic.username}:${o.basic.password}`) {
        return { user: o.basic.username, anonymous: false };
      }
    }
    return "invalid";
  }

  #route(
    method: string,
    parts: string[],
    url: URL,
    body: Body,
    caller: Caller,
  ): Response | Promise<Response> {
    const [top, id, ...sub] = parts;
    if (top === "" && parts.length === 1) return this.#root(method);
    if (top === "user-info" && id === "" && sub.length === 0) {
      return caller.anonymous ? json({ username: "AnonymousUser" }) : json({
        username: caller.user,
        first_name: "",
        last_name: "",
        email: caller.user,
        is_internal_user: true,
        upload_to_pipeline: [],
      });
    }
    if (top === "events" && id !== undefined) {
      if (this.#options.requireAuth && caller.anonymous) return json(NO_CREDENTIALS, 403);
      if (id === "" && sub.length === 0) {
        return allow(method, ["GET"]) ?? this.#list("event", url, caller);
      }
      if (!/^[GEHMT]\d+$/.test(id)) return text(NOT_FOUND_PAGE, 404);
      return this.#eventRoute(method, id, sub, body, caller);
    }
    if (top === "superevents" && id !== undefined) {
      const write = method !== "GET";
      if (this.#options.requireAuth && caller.anonymous && write) {
        return json(NO_CREDENTIALS, 403);
      }
      if (id === "" && sub.length === 0) {
        return allow(method, ["GET"]) ?? this.#list("superevent", url, caller);
      }
      return this.#supereventRoute(method, id, sub, body, caller);
    }
    return text(NOT_FOUND_PAGE, 404);
  }

  #eventRoute(
    method: string,
    id: string,
    sub: string[],
    body: Body,
    caller: Caller,
  ): Response | Promise<Response> {
    const route = eventRoute(sub);
    if (!route) return text(NOT_FOUND_PAGE, 404);
    const entry = this.#entries.get(id);
    if (!entry || entry.kind !== "event") return text("Event not found.", 404);
    return this.#resource(method, entry, route, body, caller);
  }

  #supereventRoute(
    method: string,
    id: string,
    sub: string[],
    body: Body,
    caller: Caller,
  ): Response | Promise<Response> {
    const route = supereventRoute(sub);
    if (!route) return text(NOT_FOUND_PAGE, 404);
    const entry = this.#entries.get(id);
    if (!entry || entry.kind !== "superevent") return json({ detail: "Not found." }, 404);
    return this.#resource(method, entry, route, body, caller);
  }

  #resource(
    method: string,
    entry: Entry,
    { name, arg }: Route,
    body: Body,
    caller: Caller,
  ): Response | Promise<Response> {
    const get = (answer: () => Response) => allow(method, ["GET"]) ?? answer();
    const getPost = (list: () => JsonRecord, post: () => Response | Promise<Response>) =>
      allow(method, ["GET", "POST"]) ?? (method === "GET" ? json(list()) : post());
    const event = entry.kind === "event";
    switch (name) {
      case "self":
        return get(() =>
          json(event ? this.#eventDict(entry) : this.#supereventDict(entry, caller))
        );
      case "logs":
        return getPost(() => this.#logList(entry), () => this.#postLog(entry, body, caller));
      case "log":
        return get(() => this.#logDetail(entry, Number(arg)));
      case "logTags":
        return get(() => this.#tagList(entry, Number(arg)));
      case "files":
        return get(() => arg === "" ? json(this.#fileList(entry)) : serveFile(entry, arg, event));
      case "labels":
        return event
          ? get(() => json(this.#labelList(entry)))
          : getPost(() => this.#labelList(entry), () =>
            this.#postSupereventLabel(entry, body, caller));
      case "label":
        return event
          ? this.#eventLabel(method, entry, arg, caller)
          : allow(method, ["GET", "DELETE"]) ?? this.#supereventLabel(method, entry, arg);
      case "voevents":
        return getPost(() => this.#voList(entry), () => this.#postVoEvent(entry, body, caller));
      case "voevent":
        return get(() => this.#voDetail(entry, Number(arg)));
      case "signoffs":
        return get(() => json(this.#signoffList(entry)));
      default: {
        const never: never = name;
        throw new Error(`Unknown route: ${never}`);
      }
    }
  }

  // --- serialisers ------------------------------------------------------------

  #base(entry: Entry): string {
    return entry.kind === "event"
      ? `${this.url}events/${entry.id}`
      : `${this.url}superevents/${entry.id}/`;
  }

  #root(method: string): Response {
    const u = this.url;
    return allow(method, ["GET"]) ?? json({
      links: {
        events: `${u}events/`,
        superevents: `${u}superevents/`,
        self: u,
        performance: `${u}performance/`,
        "user-info": `${u}user-info/`,
      },
      templates: {
        "event-detail-template": `${u}events/{graceid}`,
        "event-log-template": `${u}events/{graceid}/log/`,
        "event-label-template": `${u}events/{graceid}/labels/{label}`,
        "files-template": `${u}events/{graceid}/files/{filename}`,
        "superevent-detail-template": `${u}superevents/{superevent_id}/`,
        "superevent-log-list-template": `${u}superevents/{superevent_id}/logs/`,
        "superevent-label-detail-template": `${u}superevents/{superevent_id}/labels/{label_name}/`,
        "superevent-file-detail-template": `${u}superevents/{superevent_id}/files/{file_name}`,
        "superevent-voevent-list-template": `${u}superevents/{superevent_id}/voevents/`,
      },
      groups: ["CBC", "Burst", "External", "Test"],
      pipelines: ["gstlal", "pycbc", "MBTAOnline", "spiir", "CWB", "oLIB", "HardwareInjection"],
      searches: ["AllSky", "LowMass", "HighMass", "BBH", "EarlyWarning", "MDC"],
      labels: [...this.#labels].sort(),
      "superevent-categories": { P: "Production", T: "Test", M: "MDC" },
      "voevent-types": { PR: "preliminary", IN: "initial", UP: "update", RE: "retraction" },
      "signoff-types": { OP: "operator", ADV: "advocate" },
      "signoff-statuses": { OK: "OKAY", NO: "NOT OKAY" },
      instruments: { H1: "LHO", L1: "LLO", V1: "Virgo" },
      "api-versions": ["default", "v1"],
      "server-version": "test",
    });
  }

  #eventDict(entry: Entry): JsonRecord {
    const b = this.#base(entry);
    return {
      submitter: entry.submitter,
      created: graceDbTime(entry.created),
      graceid: entry.id,
      ...entry.fields,
      labels: entry.labels.map((l) => l.name),
      superevent_neighbours: {},
      links: {
        neighbors: `${b}/neighbors/`,
        log: `${b}/log/`,
        emobservations: `${b}/emobservation/`,
        files: `${b}/files/`,
        labels: `${b}/labels/`,
        self: b,
        tags: `${b}/tag/`,
      },
    };
  }

  #supereventDict(entry: Entry, caller: Caller): JsonRecord {
    const b = this.#base(entry);
    const preferred = this.#entries.get(String(entry.fields.preferred_event ?? ""));
    const dict: JsonRecord = {
      superevent_id: entry.id,
      created: graceDbTime(entry.created),
      submitter: entry.submitter,
      ...entry.fields,
      labels: entry.labels.map((l) => l.name),
      links: {
        events: `${b}events/`,
        labels: `${b}labels/`,
        logs: `${b}logs/`,
        files: `${b}files/`,
        self: b,
        voevents: `${b}voevents/`,
        emobservations: `${b}emobservations/`,
      },
      preferred_event_data: preferred?.kind === "event" ? this.#eventDict(preferred) : null,
      pipeline_preferred_events: {},
    };
    if (caller.anonymous) {
      for (
        const key of ["gw_events", "em_events", "pipeline_preferred_events", "preferred_event"]
      ) {
        delete dict[key];
      }
      delete (dict.links as JsonRecord).events;
    }
    return dict;
  }

  #logDict(entry: Entry, log: LogRecord): JsonRecord {
    const b = this.#base(entry);
    const file = log.filename && log.file_version !== null
      ? `${b}${entry.kind === "event" ? "/" : ""}files/${log.filename},${log.file_version}`
      : null;
    const common = {
      N: log.N,
      comment: log.comment,
      created: graceDbTime(log.created),
      issuer: log.issuer,
      filename: log.filename,
      file_version: log.file_version,
      tag_names: log.tags.map((t) => t.name),
      file,
    };
    return entry.kind === "event"
      ? { ...common, self: `${b}/log/${log.N}`, tags: `${b}/log/${log.N}/tag/` }
      : { self: `${b}logs/${log.N}/`, ...common };
  }

  #listShape(entry: Entry, key: string, items: unknown[]): JsonRecord {
    const self = `${this.#base(entry)}`;
    return {
      start: 0,
      numRows: items.length,
      links: { self, first: self, last: self },
      [key]: items,
    };
  }

  #logList(entry: Entry): JsonRecord {
    return this.#listShape(entry, "log", entry.logs.map((l) => this.#logDict(entry, l)));
  }

  #logDetail(entry: Entry, n: number): Response {
    const log = entry.logs[n - 1];
    if (!log) {
      return entry.kind === "event"
        ? json("Log does not exist.", 404)
        : json({ detail: "Not found." }, 404);
    }
    return json(this.#logDict(entry, log));
  }

  #tagList(entry: Entry, n: number): Response {
    const log = entry.logs[n - 1];
    if (!log) {
      return entry.kind === "event"
        ? json("Log does not exist.", 404)
        : json({ detail: "Not found." }, 404);
    }
    const b = this.#base(entry);
    return json({
      tags: log.tags.map((t) => ({
        self: entry.kind === "event"
          ? `${b}/log/${n}/tag/${t.name}`
          : `${b}logs/${n}/tags/${t.name}/`,
        name: t.name,
        displayName: t.displayName,
      })),
    });
  }

  #fileList(entry: Entry): Record<string, string> {
    const b = this.#base(entry);
    const names: string[] = [];
    for (const [name, versions] of entry.files) {
      versions.forEach((_, v) => names.push(`${name},${v}`));
      names.push(name);
    }
    if (entry.kind === "superevent") names.sort();
    const sep = entry.kind === "event" ? "/" : "";
    return Object.fromEntries(names.map((n) => [n, `${b}${sep}files/${encodeURIComponent(n)}`]));
  }

  #labelList(entry: Entry): JsonRecord {
    const b = this.#base(entry);
    const labels = entry.labels.map((l) => this.#labelDict(entry, l));
    return entry.kind === "event"
      ? { links: [{ self: `${b}/labels/`, event: b }], labels }
      : { labels, links: { self: `${b}labels/`, superevent: b } };
  }

  #labelDict(entry: Entry, l: Entry["labels"][number]): JsonRecord {
    const b = this.#base(entry);
    return {
      name: l.name,
      creator: l.creator,
      created: graceDbTime(l.created),
      self: entry.kind === "event" ? `${b}/labels/${l.name}` : `${b}labels/${l.name}/`,
    };
  }

  #voDict(entry: Entry, v: VoRecord): JsonRecord {
    const b = this.#base(entry);
    const f = v.fields;
    const sep = entry.kind === "event" ? "/" : "";
    return {
      links: {
        self: entry.kind === "event" ? `${b}/voevent/${v.N}` : `${b}voevents/${v.N}/`,
        file: `${b}${sep}files/${v.filename},${v.file_version}`,
      },
      N: v.N,
      issuer: v.issuer,
      ivorn: v.ivorn,
      filename: v.filename,
      file_version: v.file_version,
      voevent_type: f.voevent_type,
      created: graceDbTime(v.created),
      skymap_type: f.skymap_type ?? null,
      skymap_filename: f.skymap_filename ?? null,
      internal: asBool(f.internal, true),
      open_alert: asBool(f.open_alert, false),
      hardware_inj: asBool(f.hardware_inj, false),
      coinc_comment: asBool(f.CoincComment, false),
      prob_has_ns: f.ProbHasNS ?? null,
      prob_has_remnant: f.ProbHasRemnant ?? null,
      prob_bns: f.BNS ?? null,
      prob_nsbh: f.NSBH ?? null,
      prob_bbh: f.BBH ?? null,
      prob_terrestrial: f.Terrestrial ?? null,
      prob_mass_gap: f.HasMassGap ?? f.MassGap ?? null,
    };
  }

  #voList(entry: Entry): JsonRecord {
    return this.#listShape(entry, "voevents", entry.voevents.map((v) => this.#voDict(entry, v)));
  }

  #voDetail(entry: Entry, n: number): Response {
    const v = entry.voevents[n - 1];
    if (v) return json(this.#voDict(entry, v));
    return entry.kind === "event"
      ? json("VOEvent does not exist.", 404)
      : json({ detail: "Not found." }, 404);
  }

  #signoffList(entry: Entry): JsonRecord {
    const b = this.#base(entry);
    const items = entry.kind === "event" ? entry.signoffs : entry.signoffs.map((s) => ({
      ...s,
      self: `${b}signoffs/${s.signoff_type}${s.instrument}/`,
    }));
    return this.#listShape(entry, "signoffs", items);
  }

  // --- writes -------------------------------------------------------------------

  async #postLog(entry: Entry, body: Body, caller: Caller): Promise<Response> {
    const event = entry.kind === "event";
    const bad = (message: string) => json(message, 400);
    const upload = body.fields.get("upload")?.[0];
    if (body.form && !(upload instanceof File)) {
      return bad("Form data without a file is not accepted: send JSON");
    }
    const comment = body.fields.get("comment")?.[0];
    if (typeof comment !== "string" || (comment === "" && !(upload instanceof File))) {
      return json({ comment: ["This field is required."] }, 400);
    }
    const tags = strings(body.fields.get("tagname"));
    const displayNames = strings(body.fields.get("displayName"));
    if (displayNames.length && displayNames.length !== tags.length && !event) {
      return bad(
        "There should either be as many display names as tags, or there should be no display names",
      );
    }
    const label = body.fields.get("label")?.[0];
    if (event && typeof label === "string" && label !== "") {
      if (!this.#labels.has(label)) return bad(`No such Label '${label}'`);
      this.addLabel(entry.id, label, caller.user);
    }
    let filename = "";
    let version: number | null = null;
    if (upload instanceof File) {
      if (upload.name.includes(",")) return bad("Filename cannot contain a comma");
      filename = upload.name;
      version = this.addFile(entry.id, filename, await upload.bytes());
    }
    const log = this.#log(entry, comment, caller.user, filename, version, tags, displayNames);
    const dict = this.#logDict(entry, log);
    return json(dict, 201, { location: String(dict.self) });
  }

  #eventLabel(method: string, entry: Entry, name: string, caller: Caller): Response {
    const refused = allow(method, ["GET", "PUT", "DELETE"]);
    if (refused) return refused;
    const applied = entry.labels.find((l) => l.name === name);
    if (method === "GET") {
      return applied ? json(this.#labelDict(entry, applied)) : json(`Label ${name} Not Found`, 404);
    }
    if (!this.#labels.has(name)) return json(`No such Label '${name}'`, 400);
    if (method === "PUT") {
      if (applied) {
        const warning = `Event ${entry.id} already labeled with '${name}'`;
        return json(JSON.stringify({ warning }), 200);
      }
      this.addLabel(entry.id, name, caller.user);
      return json("{}", 201);
    }
    if (!applied) return json(`No label '${name}' associated with event ${entry.id}`, 400);
    entry.labels.splice(entry.labels.indexOf(applied), 1);
    return new Response(null, { status: 204 });
  }

  #postSupereventLabel(entry: Entry, body: Body, caller: Caller): Response {
    const name = body.fields.get("name")?.[0];
    if (typeof name !== "string" || name === "") {
      return json({ name: ["This field is required."] }, 400);
    }
    if (!this.#labels.has(name)) return json(`Object with name=${name} does not exist.`, 400);
    if (entry.labels.some((l) => l.name === name)) {
      return json("The fields superevent, name must make a unique set.", 400);
    }
    this.addLabel(entry.id, name, caller.user);
    const dict = this.#labelDict(entry, entry.labels.at(-1)!);
    return json(dict, 201, { location: String(dict.self) });
  }

  #supereventLabel(method: string, entry: Entry, name: string): Response {
    const applied = entry.labels.find((l) => l.name === name);
    if (!applied) return json({ detail: "Not found." }, 404);
    if (method === "GET") return json(this.#labelDict(entry, applied));
    entry.labels.splice(entry.labels.indexOf(applied), 1);
    return new Response(null, { status: 204 });
  }

  #postVoEvent(entry: Entry, body: Body, caller: Caller): Response {
    const event = entry.kind === "event";
    const bad = (message: string) => json(event ? { error: message } : message, 400);
    const fields: JsonRecord = {};
    for (const [key, values] of body.fields) {
      const v = values[0];
      if (typeof v === "string" || typeof v === "number" || typeof v === "boolean" || v === null) {
        fields[key] = v;
      }
    }
    if (isRecord(body.json)) Object.assign(fields, body.json);
    const type = fields.voevent_type;
    if (typeof type !== "string" || !(type in VOEVENT_NAMES)) {
      return bad(
        event ? "You must provide a valid voevent_type." : `"${type}" is not a valid choice.`,
      );
    }
    const skymap = fields.skymap_filename;
    const skymapType = fields.skymap_type;
    if (Boolean(skymap) !== Boolean(skymapType)) {
      return bad("Both or neither of skymap_type and skymap_filename must be specified.");
    }
    if (!event && (type === "IN" || type === "UP") && !skymap) {
      return bad("Skymap filename and type must be provided for Initial and Update VOEvents.");
    }
    if (typeof skymap === "string" && skymap !== "" && !entry.files.has(skymap.split(",")[0]!)) {
      return bad(
        event
          ? `Skymap file ${skymap} does not exist`
          : `Skymap file ${skymap} not found for this superevent.`,
      );
    }
    const N = entry.voevents.length + 1;
    const name = `${entry.id}-${N}-${VOEVENT_NAMES[type]}`;
    const filename = `${name}.xml`;
    const ivorn = `ivo://gwnet/LVC#${name}`;
    const version = this.addFile(entry.id, filename, voEventXml(entry, ivorn, fields, this.url));
    const record: VoRecord = {
      N,
      fields,
      created: this.#now(),
      issuer: caller.user,
      filename,
      file_version: version,
      ivorn,
    };
    entry.voevents.push(record);
    this.#log(entry, "New VOEvent", caller.user, filename, version, ["em_follow"]);
    const dict = this.#voDict(entry, record);
    return json(dict, 201, { location: String((dict.links as JsonRecord).self) });
  }

  // --- queries ------------------------------------------------------------------

  #list(kind: Entry["kind"], url: URL, caller: Caller): Response {
    const params = url.searchParams;
    const query = params.get("query") ?? "";
    const filter = parseQuery(query, kind);
    if (!filter.ok) {
      return json(kind === "event" ? { error: "Invalid query" } : { detail: "Invalid query" }, 400);
    }
    const count = Math.max(1, Number(params.get("count") ?? 10) || 10);
    const start = Math.max(0, Number(params.get("start") ?? 0) || 0);
    const sort = params.get("sort") ?? "-created";
    const matching = [...this.#entries.values()]
      .filter((e) => e.kind === kind && filter.test(e, this.#view(e)))
      .sort(byField(sort, (e) => this.#view(e)));
    const numRows = matching.length;
    const page = matching.slice(start, start + count).map((e) =>
      kind === "event" ? this.#eventDict(e) : this.#supereventDict(e, caller)
    );
    const base = `${this.url}${kind}s/`;
    const link = (s: number) => {
      const p = new URLSearchParams({ start: String(s), count: String(count), sort });
      if (query) p.set("query", query);
      return `${base}?${p}`;
    };
    const last = Math.floor(Math.max(0, numRows - 1) / count) * count;
    const hasNext = start + count < numRows;
    if (kind === "event") {
      const links: JsonRecord = { self: url.href, first: link(0), last: link(last) };
      if (hasNext) links.next = link(start + count);
      return json({ links, events: page, numRows });
    }
    return json({
      numRows,
      superevents: page,
      links: {
        self: url.href,
        next: hasNext ? link(start + count) : null,
        previous: start > 0 ? link(Math.max(0, start - count)) : null,
        first: link(0),
        last: link(last),
      },
    });
  }

  /** The fields a query or sort sees. */
  #view(e: Entry): JsonRecord {
    return {
      ...e.fields,
      graceid: e.id,
      superevent_id: e.id,
      created: e.created,
      submitter: e.submitter,
      labels: e.labels.map((l) => l.name),
      order: e.order,
    };
  }
}

// --- helpers ------------------------------------------------------------------

type RouteName =
  | "self"
  | "logs"
  | "log"
  | "logTags"
  | "files"
  | "labels"
  | "label"
  | "voevents"
  | "voevent"
  | "signoffs";

/** A resource of one event or superevent; `arg` is a log or VOEvent number, a label or a file. */
interface Route {
  name: RouteName;
  arg: string;
}

const NUMBER = /^[1-9]\d*$/;

/** The event resource `sub` (the path parts after the graceid) names: no trailing slash. */
function eventRoute(sub: string[]): Route | undefined {
  const [a, b = "", c, d] = sub;
  const route = (name: RouteName, arg = ""): Route => ({ name, arg });
  if (sub.length === 0) return route("self");
  if (a === "files" && sub.length >= 2) return route("files", sub.slice(1).join("/"));
  if (sub.length === 2 && b === "") {
    const lists: Record<string, RouteName> = {
      log: "logs",
      labels: "labels",
      voevent: "voevents",
      signoff: "signoffs",
    };
    const name = lists[a ?? ""];
    return name ? route(name) : undefined;
  }
  if (sub.length === 2) {
    if (a === "log" && NUMBER.test(b)) return route("log", b);
    if (a === "labels") return route("label", b);
    if (a === "voevent" && NUMBER.test(b)) return route("voevent", b);
  }
  if (sub.length === 4 && a === "log" && NUMBER.test(b) && c === "tag" && d === "") {
    return route("logTags", b);
  }
  return undefined;
}

/** The superevent resource `sub` names: a trailing slash everywhere except file names. */
function supereventRoute(sub: string[]): Route | undefined {
  const [a, b = "", c, d] = sub;
  const route = (name: RouteName, arg = ""): Route => ({ name, arg });
  if (sub.length === 1 && a === "") return route("self");
  if (a === "files" && sub.length >= 2) {
    return sub.at(-1) === "" && sub.length > 2 ? undefined : route("files", sub.slice(1).join("/"));
  }
  if (sub.length === 2 && b === "") {
    const lists: Record<string, RouteName> = {
      logs: "logs",
      labels: "labels",
      voevents: "voevents",
      signoffs: "signoffs",
    };
    const name = lists[a ?? ""];
    return name ? route(name) : undefined;
  }
  if (sub.length === 3 && b !== "" && c === "") {
    if (a === "logs" && NUMBER.test(b)) return route("log", b);
    if (a === "labels") return route("label", b);
    if (a === "voevents" && NUMBER.test(b)) return route("voevent", b);
  }
  if (sub.length === 4 && a === "logs" && NUMBER.test(b) && c === "tags" && d === "") {
    return route("logTags", b);
  }
  return undefined;
}

function allow(method: string, methods: string[]): Response | undefined {
  return methods.includes(method)
    ? undefined
    : json({ detail: `Method "${method}" not allowed.` }, 405, { allow: methods.join(", ") });
}

function serveFile(entry: Entry, spec: string, event: boolean): Response {
  const comma = spec.lastIndexOf(",");
  const name = comma < 0 ? spec : spec.slice(0, comma);
  const versions = entry.files.get(name);
  const version = comma < 0 ? (versions?.length ?? 0) - 1 : Number(spec.slice(comma + 1));
  const bytes = Number.isInteger(version) ? versions?.[version] : undefined;
  if (!bytes) {
    return json(event ? `File ${spec} not found` : { detail: `File ${spec} not found` }, 404);
  }
  const type = contentType(name);
  const headers: Record<string, string> = { "content-type": type };
  if (type === "application/octet-stream") {
    headers["content-disposition"] = `attachment; filename="${name}"`;
  }
  return new Response(bytes as Uint8Array<ArrayBuffer>, { status: 200, headers });
}

function contentType(name: string): string {
  const types: [RegExp, string][] = [
    [/\.json$/, "application/json"],
    [/\.xml$/, "application/xml"],
    [/\.png$/, "image/png"],
    [/\.html?$/, "text/html"],
    [/\.(txt|log|dat)$/, "text/plain"],
  ];
  return types.find(([re]) => re.test(name))?.[1] ?? "application/octet-stream";
}

function faultResponse(fault: GraceDbFault): Response {
  const status = fault.status!;
  const headers: Record<string, string> = {};
  if (fault.retryAfter !== undefined) headers["retry-after"] = String(fault.retryAfter);
  if (typeof fault.body === "string") {
    return new Response(fault.body, {
      status,
      headers: { "content-type": "text/plain", ...headers },
    });
  }
  if (fault.body !== undefined) return json(fault.body, status, headers);
  if (status === 429) {
    const wait = fault.retryAfter ?? 1;
    return json(
      { detail: `Request was throttled. Expected available in ${wait} seconds.` },
      429,
      headers,
    );
  }
  if (status === 500) {
    return new Response("<h1>Server Error (500)</h1>", {
      status,
      headers: { "content-type": "text/html", ...headers },
    });
  }
  return json({ detail: `Injected fault (${status})` }, status, headers);
}

function matches(pattern: string | RegExp, path: string): boolean {
  if (pattern instanceof RegExp) return pattern.test(path);
  return path === (pattern.startsWith("/") ? pattern : `/api/${pattern}`);
}

function authScheme(header: string | null): RecordedRequest["auth"] {
  if (header === null) return "none";
  const scheme = header.split(" ")[0]?.toLowerCase();
  return scheme === "bearer" || scheme === "basic" ? scheme : "other";
}

async function readBody(request: Request): Promise<Body> {
  const type = request.headers.get("content-type") ?? "";
  const fields = new Map<string, (string | File)[]>();
  const add = (key: string, value: string | File) =>
    fields.set(key, [...(fields.get(key) ?? []), value]);
  if (
    type.startsWith("multipart/form-data") || type.startsWith("application/x-www-form-urlencoded")
  ) {
    const form = await request.formData();
    const recorded: Record<string, unknown> = {};
    for (const [key, value] of form) {
      add(key, value);
      const shown = typeof value === "string"
        ? value
        : { file: value.name, size: value.size, type: value.type };
      const prev = recorded[key];
      recorded[key] = prev === undefined
        ? shown
        : Array.isArray(prev)
        ? [...prev, shown]
        : [prev, shown];
    }
    return { fields, json: undefined, form: true, recorded };
  }
  const raw = request.body ? await request.text() : "";
  if (raw === "") return { fields, json: undefined, form: false, recorded: undefined };
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    return { fields, json: undefined, form: false, recorded: raw };
  }
  if (isRecord(parsed)) {
    for (const [key, value] of Object.entries(parsed)) {
      for (const v of Array.isArray(value) ? value : [value]) {
        add(key, typeof v === "string" ? v : JSON.stringify(v));
      }
    }
  }
  return { fields, json: parsed, form: false, recorded: parsed };
}

function strings(values: (string | File)[] | undefined): string[] {
  return (values ?? []).filter((v): v is string => typeof v === "string");
}

function isRecord(value: unknown): value is JsonRecord {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function asBool(value: unknown, fallback: boolean): boolean {
  if (value === undefined || value === null) return fallback;
  if (typeof value === "string") return !["0", "false", "False", ""].includes(value);
  return Boolean(value);
}

function voEventXml(entry: Entry, ivorn: string, fields: JsonRecord, root: string): string {
  const param = (name: string, value: unknown) =>
    `    <Param name="${name}" dataType="int" value="${asBool(value, false) ? 1 : 0}"/>`;
  const skymap = typeof fields.skymap_filename === "string" && fields.skymap_filename
    ? `    <Param name="skymap_fits_basic" dataType="string" value="${root}${entry.kind}s/${entry.id}/files/${fields.skymap_filename}"/>\n`
    : "";
  return [
    `<?xml version='1.0' encoding='UTF-8'?>`,
    `<voe:VOEvent xmlns:voe="http://www.ivoa.net/xml/VOEvent/v2.0" version="2.0" ivorn="${ivorn}">`,
    `  <What>`,
    `    <Param name="GraceID" dataType="string" value="${entry.id}"/>`,
    `    <Param name="AlertType" dataType="string" value="${
      VOEVENT_NAMES[String(fields.voevent_type)]
    }"/>`,
    param("internal", fields.internal ?? 1),
    param("Vetted", fields.vetted),
    param("OpenAlert", fields.open_alert),
    param("HardwareInj", fields.hardware_inj),
    `${skymap}  </What>`,
    `</voe:VOEvent>`,
    ``,
  ].join("\n");
}

// --- query language -----------------------------------------------------------

type Predicate = (e: Entry, view: JsonRecord) => boolean;
type Parsed = { ok: true; test: Predicate } | { ok: false };

const KEYS = new Set(
  (
    "gpstime far created pipeline group search instruments submitter superevent " +
    "in_superevent label id category preferred_event t_start t_end t_0 is_gw graceid"
  ).split(" "),
);

/** Parses a GraceDB query (the subset in the module doc) into a predicate. */
export function parseQuery(query: string, kind: "event" | "superevent"): Parsed {
  const tests: Predicate[] = [];
  const mentioned = new Set<string>();
  // Split into `key: value` terms and bare text, keeping quoted values whole.
  const pieces = query.split(/(?<=^|\s)(?=[a-z_][a-z_0-9]*:)/i).map((p) => p.trim()).filter(
    Boolean,
  );
  for (const piece of pieces) {
    const keyed = piece.match(/^([a-z_0-9]+):\s*(.*)$/is);
    if (keyed) {
      const key = keyed[1]!.toLowerCase();
      if (!KEYS.has(key)) return { ok: false };
      const { value, rest } = splitValue(key, keyed[2]!);
      const test = keyedTest(key, value, kind);
      if (!test) return { ok: false };
      tests.push(test);
      mentioned.add(`${key}:${value.toLowerCase()}`);
      if (rest && !bareTerms(rest, kind, tests, mentioned)) return { ok: false };
    } else if (!bareTerms(piece, kind, tests, mentioned)) {
      return { ok: false };
    }
  }
  if (kind === "event") {
    if (!mentioned.has("group:test")) tests.push((_, v) => v.group !== "Test");
    if (!mentioned.has("search:mdc")) tests.push((_, v) => v.search !== "MDC");
  } else if (![...mentioned].some((m) => m.startsWith("category:"))) {
    tests.push((_, v) => v.category === "Production");
  }
  return { ok: true, test: (e, v) => tests.every((t) => t(e, v)) };
}

const RANGED = new Set(["gpstime", "far", "created", "t_start", "t_end", "t_0"]);

function splitValue(key: string, text: string): { value: string; rest: string } {
  const t = text.trim();
  if (RANGED.has(key)) {
    if (t.includes("..") || key === "created") return { value: t, rest: "" };
    const [value = "", ...rest] = t.split(/\s+/);
    return { value, rest: rest.join(" ") };
  }
  const quoted = t.match(/^"([^"]*)"\s*(.*)$/s);
  if (quoted) return { value: quoted[1]!, rest: quoted[2]! };
  const [value = "", ...rest] = t.split(/\s+/);
  return { value, rest: rest.join(" ") };
}

function numberRange(value: string): [number, number] | undefined {
  const m = value.match(/^\s*(-?[\d.e+-]+)\s*\.\.\s*(-?[\d.e+-]+)\s*$/i);
  if (!m) {
    const one = Number(value);
    return value.trim() !== "" && Number.isFinite(one) ? [one, one] : undefined;
  }
  const lo = Number(m[1]);
  const hi = Number(m[2]);
  return Number.isFinite(lo) && Number.isFinite(hi) ? [lo, hi] : undefined;
}

function dateValue(text: string): number | undefined {
  const t = text.trim();
  if (t === "now") return Date.now();
  const ms = Date.parse(`${t.replace(" ", "T")}${/\d:\d\d$/.test(t) ? "Z" : "T00:00:00Z"}`);
  return Number.isNaN(ms) ? undefined : ms;
}

function keyedTest(
  key: string,
  value: string,
  kind: "event" | "superevent",
): Predicate | undefined {
  const field = (name: string) => (_: Entry, v: JsonRecord) => v[name];
  const inRange = (get: (e: Entry, v: JsonRecord) => unknown, r: [number, number]) =>
  (
    e: Entry,
    v: JsonRecord,
  ) => {
    const x = Number(get(e, v));
    return Number.isFinite(x) && x >= r[0] && x <= r[1];
  };
  const equals = (name: string) => (_: Entry, v: JsonRecord) =>
    String(v[name] ?? "").toLowerCase() === value.toLowerCase();
  switch (key) {
    case "gpstime":
    case "t_0":
    case "t_start":
    case "t_end":
    case "far": {
      const r = numberRange(value);
      const name = key === "gpstime" && kind === "superevent" ? "t_0" : key;
      return r && inRange(field(name), r);
    }
    case "created": {
      const [a = "", b] = value.split("..");
      const lo = dateValue(a);
      const hi = b === undefined ? lo : dateValue(b);
      if (lo === undefined || hi === undefined) return undefined;
      return inRange(field("created"), [lo, b === undefined ? lo + 86_400_000 : hi]);
    }
    case "label":
      return (_, v) => (v.labels as string[]).includes(value);
    case "in_superevent":
      return (_, v) =>
        (v.superevent !== null && v.superevent !== undefined) === /^true$/i.test(value);
    case "is_gw":
      return (_, v) => (v.gw_id !== null && v.gw_id !== undefined) === /^true$/i.test(value);
    case "id":
    case "graceid":
      return equals(kind === "event" ? "graceid" : "superevent_id");
    default:
      return equals(key);
  }
}

function bareTerms(
  text: string,
  kind: "event" | "superevent",
  tests: Predicate[],
  mentioned: Set<string>,
): boolean {
  const words = text.trim().split(/\s+/).filter(Boolean);
  for (let i = 0; i < words.length; i++) {
    const word = words[i]!;
    const next = words[i + 1];
    const after = words[i + 2];
    if (next === ".." && after !== undefined) {
      i += 2;
      const ids = word.match(/^([GEHMT])(\d+)$/) && after.match(/^([GEHMT])(\d+)$/);
      if (ids) {
        const lo = Number(word.slice(1));
        const hi = Number(after.slice(1));
        tests.push((_, v) => {
          const n = Number(String(v.graceid).slice(1));
          return kind === "event" && n >= lo && n <= hi;
        });
        continue;
      }
      const test = keyedTest("gpstime", `${word} .. ${after}`, kind);
      if (!test) return false;
      tests.push(test);
      continue;
    }
    if (word === "far" && next && /^[<>]=?$/.test(next) && after !== undefined) {
      const limit = Number(after);
      if (!Number.isFinite(limit)) return false;
      i += 2;
      tests.push((_, v) => {
        const far = v.far;
        if (typeof far !== "number") return false;
        return next === "<"
          ? far < limit
          : next === "<="
          ? far <= limit
          : next === ">"
          ? far > limit
          : far >= limit;
      });
      continue;
    }
    if (!/^~?[A-Za-z0-9_.-]+$/.test(word)) return false;
    const negate = word.startsWith("~");
    const name = negate ? word.slice(1) : word;
    const low = name.toLowerCase();
    for (const key of ["group", "pipeline", "search"]) mentioned.add(`${key}:${low}`);
    tests.push((e, v) => {
      const hit = e.id === name || (v.labels as string[]).includes(name) ||
        ["group", "pipeline", "search"].some((k) => String(v[k] ?? "").toLowerCase() === low);
      return negate ? !hit : hit;
    });
  }
  return true;
}

function byField(sort: string, view: (e: Entry) => JsonRecord) {
  const keys = sort.split(",").map((s) => s.trim()).filter(Boolean);
  return (a: Entry, b: Entry): number => {
    const va = view(a);
    const vb = view(b);
    for (const key of keys) {
      const desc = key.startsWith("-");
      const name = desc ? key.slice(1) : key;
      const x = va[name];
      const y = vb[name];
      const cmp = typeof x === "number" && typeof y === "number"
        ? x - y
        : String(x ?? "").localeCompare(String(y ?? ""));
      if (cmp !== 0) return desc ? -cmp : cmp;
    }
    return a.order - b.order;
  };
}

// --- command line ---------------------------------------------------------------

interface DataFile {
  events?: EventInput[];
  superevents?: SupereventInput[];
  logs?: {
    id: string;
    comment: string;
    tags?: string[];
    file?: { name: string; text?: string; base64?: string };
  }[];
  files?: { id: string; name: string; text?: string; base64?: string }[];
  labels?: { id: string; name: string }[];
  signoffs?: { id: string; signoff_type: "OP" | "ADV"; instrument?: string; status: "OK" | "NO" }[];
}

function fileData(f: { text?: string; base64?: string }): Uint8Array | string {
  return f.base64 !== undefined
    ? Uint8Array.from(atob(f.base64), (c) => c.charCodeAt(0))
    : f.text ?? "";
}

/** Loads a demo data file (see `tests/fixtures/gracedb/demo.json`) into `server`. */
export function loadData(server: GraceDbTestServer, data: DataFile): void {
  for (const e of data.events ?? []) server.addEvent(e);
  for (const s of data.superevents ?? []) server.addSuperevent(s);
  for (const f of data.files ?? []) server.addFile(f.id, f.name, fileData(f));
  for (const l of data.logs ?? []) {
    server.addLog(l.id, l.comment, {
      ...(l.tags ? { tags: l.tags } : {}),
      ...(l.file ? { file: { name: l.file.name, data: fileData(l.file) } } : {}),
    });
  }
  for (const l of data.labels ?? []) server.addLabel(l.id, l.name);
  for (const s of data.signoffs ?? []) server.addSignoff(s.id, s);
}

async function main(args: string[]): Promise<void> {
  const value = (flag: string) => {
    const i = args.indexOf(flag);
    return i >= 0 ? args[i + 1] : undefined;
  };
  const port = Number(value("--port") ?? 0);
  const token = value("--token");
  const server = await GraceDbTestServer.start({
    port,
    requireAuth: args.includes("--require-auth"),
    ...(token ? { token } : {}),
  });
  const data = value("--data");
  if (data) loadData(server, JSON.parse(await Deno.readTextFile(data)) as DataFile);
  console.log(`GraceDB test server at ${server.url}`);
  const stop = () => {
    Deno.removeSignalListener("SIGINT", stop);
    Deno.removeSignalListener("SIGTERM", stop);
    void server.close();
  };
  Deno.addSignalListener("SIGINT", stop);
  Deno.addSignalListener("SIGTERM", stop);
}

if (import.meta.main) await main(Deno.args);
