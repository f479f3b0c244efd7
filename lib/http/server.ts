/**
 * The HTTP server: `/` the status page, `/events` its live updates
 * (server-sent events), `/metrics` Prometheus text, `/healthz` the
 * `status` verdict as JSON. GET only; with a token, every request must
 * carry it. It reads the listener and never holds it up: pages are
 * rendered at most a few times a second whatever the number of viewers.
 *
 * @module
 */

import { createHash, timingSafeEqual } from "node:crypto";
import { assess } from "../listener/health.ts";
import type { ListenerView } from "../listener/view.ts";
import { EventStreams } from "./event_stream.ts";
import { LiveState } from "./live.ts";
import { Metrics } from "./metrics.ts";
import { PAGE_CSP, renderPage } from "./page.ts";
import { renderSections } from "./render.ts";
import type { HttpSettings } from "./settings.ts";

/** Options for {@linkcode StatusServer.start}. */
export interface StatusServerOptions {
  /** Milliseconds between live updates, at least. @default {500} */
  interval?: number;
  /** Seconds between updates when nothing changed (the time axis moves on). @default {2} */
  idleUpdate?: number;
}

const PATHS = new Set(["/", "/events", "/metrics", "/healthz"]);

const COMMON_HEADERS = {
  "cache-control": "no-store",
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
};

function sha256(text: string): Buffer {
  return createHash("sha256").update(text).digest();
}

function reply(status: number, body: string, headers: Record<string, string> = {}): Response {
  return new Response(body, {
    status,
    headers: { "content-type": "text/plain; charset=utf-8", ...COMMON_HEADERS, ...headers },
  });
}

/** The running HTTP server of one listener. */
export class StatusServer implements AsyncDisposable {
  #server: Deno.HttpServer<Deno.NetAddr>;
  #view: ListenerView;
  #live: LiveState;
  #metrics: Metrics;
  #streams: EventStreams;
  #token: Buffer | undefined;
  #dirty = true;
  #sent = 0;
  /** The last rendering: the page, and the same sections as an event. */
  #cache: { at: number; page: string; update: Uint8Array } | undefined;
  #timer: ReturnType<typeof setInterval>;
  #o: StatusServerOptions;

  private constructor(settings: HttpSettings, view: ListenerView, o: StatusServerOptions) {
    this.#view = view;
    this.#o = o;
    this.#token = settings.token === undefined ? undefined : sha256(settings.token);
    this.#live = new LiveState(view, () => this.#dirty = true);
    this.#metrics = new Metrics(view);
    this.#streams = new EventStreams({
      dropped: (clients) => view.log.event("info", "http_client_dropped", { clients }),
    });
    this.#server = Deno.serve({
      hostname: settings.hostname,
      port: settings.port,
      onListen: () => {},
      onError: (error) => {
        view.log.event("error", "http_error", { error: (error as Error)?.message ?? "" });
        return reply(500, "Internal error\n");
      },
    }, (request) => this.#handle(request));
    this.#timer = setInterval(() => this.#tick(), o.interval ?? 500);
  }

  /**
   * Listens on the settings' address.
   *
   * @throws {Deno.errors.AddrInUse} and the like when it cannot
   */
  static start(
    settings: HttpSettings,
    view: ListenerView,
    options: StatusServerOptions = {},
  ): StatusServer {
    const server = new StatusServer(settings, view, options);
    const { hostname, port } = server.address;
    view.log.event("info", "http_listening", {
      url: `http://${hostname.includes(":") ? `[${hostname}]` : hostname}:${port}/`,
      token: settings.token !== undefined,
    });
    return server;
  }

  /** Where it listens (the port chosen, for port 0). */
  get address(): { hostname: string; port: number } {
    return { hostname: this.#server.addr.hostname, port: this.#server.addr.port };
  }

  #authorized(request: Request): boolean {
    if (!this.#token) return true;
    const m = /^Bearer\s+(\S+)\s*$/i.exec(request.headers.get("authorization") ?? "");
    return m !== null && timingSafeEqual(sha256(m[1]!), this.#token);
  }

  async #handle(request: Request): Promise<Response> {
    if (!this.#authorized(request)) {
      return reply(401, "Unauthorized\n", { "www-authenticate": 'Bearer realm="lvalertMP"' });
    }
    const path = new URL(request.url).pathname;
    if (!PATHS.has(path)) return reply(404, "Not found\n");
    if (request.method !== "GET") return reply(405, "Method not allowed\n", { allow: "GET" });
    switch (path) {
      case "/metrics":
        return reply(200, await this.#metrics.text(), {
          "content-type": this.#metrics.contentType,
        });
      case "/healthz":
        return this.#healthz();
      case "/events":
        return this.#events();
      default:
        return this.#page();
    }
  }

  #healthz(): Response {
    const a = assess(this.#view.status());
    const body = JSON.stringify({
      status: a.label,
      code: a.code,
      summary: a.summary,
      problems: a.problems,
    });
    return reply(a.code === 2 ? 503 : 200, body + "\n", {
      "content-type": "application/json",
    });
  }

  #page(): Response {
    return new Response(this.#render(200).page, {
      headers: {
        "content-type": "text/html; charset=utf-8",
        "content-security-policy": PAGE_CSP,
        ...COMMON_HEADERS,
      },
    });
  }

  #events(): Response {
    const stream = this.#streams.open(this.#render(200).update);
    if (!stream) return reply(503, "Too many viewers\n", { "retry-after": "5" });
    return new Response(stream, {
      headers: { "content-type": "text/event-stream", ...COMMON_HEADERS },
    });
  }

  /**
   * The page and the update event, rendered anew unless a rendering
   * younger than `maxAge` ms is at hand (however many viewers come, the
   * listener renders a few times a second at most).
   */
  #render(maxAge: number): { page: string; update: Uint8Array } {
    const now = performance.now();
    if (this.#cache && now - this.#cache.at < maxAge) return this.#cache;
    this.#dirty = false;
    const snapshot = this.#live.snapshot();
    const sections = renderSections(snapshot);
    const label = snapshot.health.label;
    this.#cache = {
      at: now,
      page: renderPage(sections, label),
      update: EventStreams.encode("update", JSON.stringify({ sections, label })),
    };
    return this.#cache;
  }

  /** Sends an update when something changed, or now and then for the moving time axis. */
  #tick(): void {
    const now = performance.now();
    if (this.#streams.size === 0) return;
    const idle = now - this.#sent >= (this.#o.idleUpdate ?? 2) * 1000;
    if (!this.#dirty && !idle) return;
    this.#sent = now;
    this.#streams.write(this.#render(0).update);
  }

  /** Closes every event stream and stops listening. */
  async [Symbol.asyncDispose](): Promise<void> {
    clearInterval(this.#timer);
    this.#streams.close();
    this.#live.close();
    this.#metrics.close();
    await this.#server.shutdown();
  }
}
