/**
 * The XMPP source: one session with the LVAlert server that receives
 * every configured node, survives outages, and catches up on what it
 * missed. It hands payloads to the router and does no other work.
 *
 * @module
 */

import { systemClock } from "../queue/clock.ts";
import type { ChildLog } from "../core/log.ts";
import { condition, eventItems, NS_PUBSUB_EVENT, Pubsub } from "./pubsub.ts";
import type { RouteInput } from "../core/source.ts";
import type { SeenStore } from "../durability/seen_store.ts";
import {
  createXmppClient,
  TlsError,
  type XmlElement,
  type XmppClient,
  type XmppClientOptions,
} from "./client.ts";

/** Why the XMPP session could not start or had to end. */
export type XmppFailureKind =
  | "auth"
  | "tls"
  | "unavailable"
  | "missing_nodes"
  | "conflict";

/** A failure of the XMPP session that stops the listener. */
export class XmppFailure extends Error {
  readonly kind: XmppFailureKind;

  constructor(kind: XmppFailureKind, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "XmppFailure";
    this.kind = kind;
  }
}

/** Options for {@linkcode XmppSource}. */
export interface XmppSourceOptions {
  client: XmppClientOptions;
  /** The pubsub service JID (`pubsub.SERVER`). */
  service: string;
  nodes: readonly string[];
  /** Items fetched per node after each (re)connect. */
  catchUp: number;
  createMissingNodes: boolean;
  seen: SeenStore;
  log: ChildLog;
  route(input: RouteInput): void;
  /** Called when the session ends for good after start (login refused, conflict). */
  onFatal(failure: XmppFailure): void;
  /** Connection attempts at start before giving up. @default {5} */
  attempts?: number;
  /** Log every stanza (credentials masked). */
  debug?: boolean;
  /** Backoff bounds in seconds. @default {[1, 30]} */
  backoff?: [number, number];
}

const NS_SASL = "urn:ietf:params:xml:ns:xmpp-sasl";
const NETWORK_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ETIMEDOUT",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "EPIPE",
  "ENOTFOUND",
]);

const now = systemClock.now;

/** Turns whatever a failed start threw into an {@linkcode XmppFailure}. */
export function classify(error: unknown, o: XmppClientOptions): XmppFailure {
  if (error instanceof XmppFailure) return error;
  const e = error as {
    name?: string;
    message?: string;
    code?: string;
    text?: string;
  };
  const where = `${o.server}:${o.port ?? 5222}`;
  if (e?.name === "SASLError") {
    const why = [condition(error), e.text].filter(Boolean).join(": ");
    return new XmppFailure(
      "auth",
      `Login as ${o.username} refused by ${o.server}: ${why || e.message}`,
      { cause: error },
    );
  }
  if (error instanceof TlsError) {
    return new XmppFailure("tls", error.message, { cause: error });
  }
  if (e?.name === "StreamError" && condition(error) === "conflict") {
    return new XmppFailure(
      "conflict",
      `Another client logged in as ${o.username}@${
        o.domain ?? o.server
      }/${o.resource} (stream conflict); ` +
        "not reconnecting. Give a second listener its own -r/--resource",
      { cause: error },
    );
  }
  const code = e?.code && NETWORK_CODES.has(e.code) ? ` (${e.code})` : "";
  return new XmppFailure(
    "unavailable",
    `Cannot reach ${where}${code}: ${e?.message ?? String(error)}`,
    { cause: error },
  );
}

function masked(el: XmlElement): string {
  return el.attrs.xmlns === NS_SASL
    ? `<${el.name} xmlns="${NS_SASL}">[hidden]</${el.name}>`
    : el.toString();
}

/** The listener's XMPP session. */
export class XmppSource {
  #o: XmppSourceOptions;
  #client: XmppClient | undefined;
  #pubsub: Pubsub | undefined;
  #stopping = false;
  #started = false;
  #failures = 0;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #offlineSince: number | null = null;
  #subscribed = new Set<string>();
  #extra: string[] = [];

  constructor(options: XmppSourceOptions) {
    this.#o = options;
  }

  /** True while the session is up and subscribed. */
  get online(): boolean {
    return this.#client?.status === "online" && this.#offlineSince === null;
  }

  /** Epoch seconds since the session has been down, or null when up. */
  get offlineSince(): number | null {
    return this.#offlineSince;
  }

  /** Nodes this session receives. */
  get subscribed(): string[] {
    return [...this.#subscribed];
  }

  /** Nodes this JID is subscribed to that no child listens to. */
  get extra(): string[] {
    return [...this.#extra];
  }

  /**
   * Connects (retrying a few times when the server cannot be reached),
   * makes sure every node is received, and catches up.
   *
   * @throws {XmppFailure} when it cannot start
   */
  async start(): Promise<void> {
    const attempts = this.#o.attempts ?? 5;
    for (let attempt = 1;; attempt++) {
      try {
        await this.#connect();
        break;
      } catch (error) {
        const failure = classify(error, this.#o.client);
        if (
          failure.kind !== "unavailable" || attempt >= attempts ||
          this.#stopping
        ) throw failure;
        const delay = this.#delay(attempt - 1);
        this.#o.log.event("warning", "xmpp_retry", {
          attempt,
          of: attempts,
          in_s: delay,
        }, failure.message);
        await new Promise((r) => setTimeout(r, delay * 1000));
      }
    }
    try {
      await this.#prepare(true);
    } catch (error) {
      await this.stop();
      throw error instanceof XmppFailure ? error : classify(error, this.#o.client);
    }
    this.#started = true;
  }

  /** Publishes on a node through this session (heartbeat responses). */
  async publish(node: string, payload: string): Promise<void> {
    if (!this.#pubsub || !this.online) {
      this.#o.log.event("warning", "publish_dropped", {
        node,
        reason: "XMPP session is down",
      });
      return;
    }
    await this.#pubsub.publish(node, payload);
  }

  /** Ends the session; no reconnect follows. */
  async stop(): Promise<void> {
    this.#stopping = true;
    clearTimeout(this.#timer);
    await this.#teardown();
  }

  #delay(failures: number): number {
    const [low, high] = this.#o.backoff ?? [1, 30];
    const base = Math.min(high, low * 2 ** failures);
    // Full jitter in the upper half keeps restarted listeners apart.
    return Math.max(low, Math.min(high, base * (0.5 + Math.random() * 0.5)));
  }

  async #connect(): Promise<void> {
    await this.#teardown();
    const client = createXmppClient(this.#o.client);
    this.#client = client;
    this.#pubsub = new Pubsub(client, this.#o.service);
    const log = this.#o.log;
    client.on("stanza", (stanza) => this.#onStanza(stanza));
    client.on("error", (error) => {
      const failure = classify(error, this.#o.client);
      if (failure.kind === "conflict" && this.#started) this.#fatal(failure);
      else {log.event("debug", "xmpp_error", {
          error: (error as Error)?.message ?? String(error),
        });}
    });
    client.on("status", (status) => {
      if (status === "disconnect" && client === this.#client) {
        this.#onDisconnect();
      }
    });
    if (this.#o.debug) {
      const c = client as unknown as {
        on(e: string, fn: (el: XmlElement) => void): void;
      };
      c.on(
        "element",
        (el) => log.event("debug", "xmpp_in", { xml: masked(el) }),
      );
      c.on("send", (el) => log.event("debug", "xmpp_out", { xml: masked(el) }));
    }
    await client.start();
    log.event("info", "xmpp_online", {
      jid: String(client.jid),
      service: this.#o.service,
    });
  }

  async #teardown(): Promise<void> {
    const client = this.#client;
    this.#client = undefined;
    this.#pubsub = undefined;
    if (!client) return;
    client.removeAllListeners();
    // An emitter without an error listener throws; this one is done for.
    client.on("error", () => {});
    if (client.status !== "offline") await client.stop().catch(() => {});
  }

  #fatal(failure: XmppFailure): void {
    if (this.#stopping) return;
    this.#stopping = true;
    clearTimeout(this.#timer);
    void this.#teardown();
    this.#o.log.event(
      "error",
      "xmpp_fatal",
      { kind: failure.kind },
      failure.message,
    );
    this.#o.onFatal(failure);
  }

  #onDisconnect(): void {
    if (this.#stopping || !this.#started || this.#timer) return;
    this.#offlineSince ??= now();
    this.#subscribed.clear();
    const delay = this.#delay(this.#failures++);
    this.#o.log.event("warning", "xmpp_disconnected", {
      reconnect_in_s: Math.round(delay * 100) / 100,
    });
    this.#timer = setTimeout(() => void this.#reconnect(), delay * 1000);
  }

  async #reconnect(): Promise<void> {
    this.#timer = undefined;
    if (this.#stopping) return;
    try {
      await this.#connect();
      await this.#prepare(false);
    } catch (error) {
      const failure = classify(error, this.#o.client);
      if (failure.kind === "auth" || failure.kind === "conflict") {
        return this.#fatal(failure);
      }
      this.#o.log.event(
        failure.kind === "tls" ? "error" : "warning",
        "xmpp_reconnect_failed",
        { kind: failure.kind },
        failure.message,
      );
      // The failed client may not report a disconnect; schedule the next try here.
      if (!this.#timer && !this.#stopping) {
        const delay = this.#delay(this.#failures++);
        this.#timer = setTimeout(() => void this.#reconnect(), delay * 1000);
      }
      return;
    }
    const down = this.#offlineSince === null ? 0 : now() - this.#offlineSince;
    this.#failures = 0;
    this.#offlineSince = null;
    this.#o.log.event("info", "xmpp_reconnected", {
      down_s: Math.round(down * 1000) / 1000,
    });
  }

  /** Subscribes where needed (full JID, no presence), then catches up. */
  async #prepare(first: boolean): Promise<void> {
    const pubsub = this.#pubsub!;
    const jid = String(this.#client!.jid);
    const log = this.#o.log;
    const mine = new Set(
      (await pubsub.subscriptions()).filter((s) => s.jid === jid && s.subscription === "subscribed")
        .map((s) => s.node),
    );
    const configured = new Set(this.#o.nodes);
    this.#extra = [...mine].filter((node) => !configured.has(node));
    const missing: string[] = [];
    for (const node of this.#o.nodes) {
      if (!mine.has(node)) {
        try {
          await pubsub.subscribe(node, jid);
          log.event("info", "subscribed", { node, jid });
        } catch (error) {
          if (condition(error) !== "item-not-found") throw error;
          missing.push(node);
          continue;
        }
      }
      this.#subscribed.add(node);
    }
    if (missing.length > 0 && this.#o.createMissingNodes) {
      for (const node of missing.splice(0)) {
        await pubsub.create(node);
        await pubsub.subscribe(node, jid);
        this.#subscribed.add(node);
        log.event(
          "warning",
          "node_created",
          { node },
          `node ${node} did not exist and was created`,
        );
      }
    }
    if (missing.length > 0) {
      const message = `Node(s) not found on ${this.#o.service}: ${missing.join(", ")} ` +
        "(create them with `lvalert_listenMP admin --create --node N`, or pass --create-missing-nodes)";
      if (first) throw new XmppFailure("missing_nodes", message);
      log.event("error", "nodes_missing", { nodes: missing }, message);
    }
    for (const node of this.#subscribed) await this.#catchUp(node);
    log.event("info", "xmpp_ready", { nodes: [...this.#subscribed] });
  }

  async #catchUp(node: string): Promise<void> {
    const { seen, log, catchUp } = this.#o;
    if (catchUp === 0) {
      seen.mark(node);
      return await seen.flush();
    }
    let items;
    try {
      items = await this.#pubsub!.items(node, catchUp);
    } catch (error) {
      log.event("warning", "catch_up_failed", {
        node,
        condition: condition(error) ?? null,
        error: (error as Error).message,
      });
      return;
    }
    // On a node never watched before, its history is not ours to replay.
    const baseline = !seen.knows(node);
    let routed = 0;
    for (const item of items) {
      if (seen.has(node, item.id)) continue;
      if (baseline) {
        seen.record(node, item.id);
        continue;
      }
      routed++;
      this.#o.route({
        node,
        id: item.id,
        payload: item.payload,
        t0: now(),
        where: `catch-up ${node} item ${item.id}`,
      });
    }
    seen.mark(node);
    // The node's baseline must be on disk before anything new is counted on it.
    if (baseline) await seen.flush();
    log.event("info", "caught_up", {
      node,
      items: items.length,
      routed,
      baseline,
    });
  }

  #onStanza(stanza: XmlElement): void {
    if (stanza.name !== "message") return;
    const from = stanza.attrs.from;
    const deleted = stanza.getChild("event", NS_PUBSUB_EVENT)?.getChild("delete")?.attrs.node;
    if (deleted !== undefined && from === this.#o.service && this.#subscribed.delete(deleted)) {
      // Nothing more will come from it; `status` reports the gap.
      this.#o.log.event(
        "error",
        "node_deleted",
        { node: deleted },
        `node ${deleted} was deleted on ${from}`,
      );
      return;
    }
    const items = eventItems(stanza);
    if (items.length === 0) return;
    if (from !== this.#o.service) {
      this.#o.log.event("warning", "event_ignored", {
        from: from ?? null,
        reason: "not from the pubsub service",
      });
      return;
    }
    const t0 = now();
    for (const item of items) {
      this.#o.route({
        node: item.node,
        id: item.id || null,
        payload: item.payload,
        t0,
      });
    }
  }
}
