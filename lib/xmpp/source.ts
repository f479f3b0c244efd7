/**
 * The XMPP source: one session with the LVAlert server that receives
 * every configured node, survives outages, and catches up on what it
 * missed. It announces what it receives and what happens to it as events
 * (`item`, `online`, `offline`, `fatal`, `node_deleted`) and does no
 * other work.
 *
 * @module
 */

import { delay, retry, RetryError, whenAborted } from "../core/async.ts";
import { Emitter } from "../core/emitter.ts";
import type { ChildLog } from "../core/log.ts";
import type { RouteInput } from "../core/source.ts";
import type { SeenStore } from "../durability/seen_store.ts";
import { systemClock } from "../queue/clock.ts";
import { catchUp } from "./catch_up.ts";
import {
  createXmppClient,
  type XmlElement,
  type XmppClient,
  type XmppClientOptions,
} from "./client.ts";
import { classify, retryable, XmppFailure } from "./failure.ts";
import { condition, eventItems, NS_PUBSUB_EVENT, Pubsub } from "./pubsub.ts";

export { classify, XmppFailure, type XmppFailureKind } from "./failure.ts";

/** What an {@linkcode XmppSource} announces. */
export interface XmppSourceEvents extends Record<string, unknown> {
  /** A published item to route (live or caught up). */
  item: RouteInput;
  /** Subscribed and caught up, after the start or a reconnect. */
  online: { jid: string; nodes: string[]; downSeconds: number };
  /** The session broke; a reconnect follows. */
  offline: { reason: string };
  /** The session ended for good (login refused, another client on the resource). */
  fatal: XmppFailure;
  /** A configured node was deleted on the server. */
  node_deleted: { node: string };
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
  /** Connection attempts at start before giving up. @default {5} */
  attempts?: number;
  /** Log every stanza (credentials masked). */
  debug?: boolean;
  /** Backoff bounds in seconds. @default {[1, 30]} */
  backoff?: [number, number];
  /** Aborting it stops the session, and any start or reconnect under way. */
  signal?: AbortSignal | undefined;
  /** Makes the XMPP client (tests may script one). @default {createXmppClient} */
  connect?: (options: XmppClientOptions) => XmppClient;
}

const NS_SASL = "urn:ietf:params:xml:ns:xmpp-sasl";
const now = systemClock.now;

function masked(el: XmlElement): string {
  return el.attrs.xmlns === NS_SASL
    ? `<${el.name} xmlns="${NS_SASL}">[hidden]</${el.name}>`
    : el.toString();
}

/** The listener's XMPP session. */
export class XmppSource implements AsyncDisposable {
  /** What happens to the session, and what it receives. */
  readonly events: Emitter<XmppSourceEvents> = new Emitter();
  #o: XmppSourceOptions;
  #abort = new AbortController();
  #client: XmppClient | undefined;
  #pubsub: Pubsub | undefined;
  #started = false;
  #reconnecting: Promise<void> | undefined;
  #offlineSince: number | null = null;
  #subscribed = new Set<string>();
  #extra: string[] = [];

  constructor(options: XmppSourceOptions) {
    this.#o = options;
    options.signal?.addEventListener("abort", () => void this.stop(), { once: true });
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
   * Connects (retrying with backoff while the server cannot be reached),
   * makes sure every node is received, and catches up.
   *
   * @throws {XmppFailure} when it cannot start
   * @throws the abort reason when stopped meanwhile
   */
  async start(): Promise<void> {
    const signal = this.#abort.signal;
    const [low, high] = this.#o.backoff ?? [1, 30];
    await retry(() => this.#connect(), {
      maxAttempts: this.#o.attempts ?? 5,
      minTimeout: low * 1000,
      maxTimeout: high * 1000,
      jitter: 0.5,
      signal,
      shouldRetry: (error) => retryable(classify(error, this.#o.client)),
      onRetry: (error, attempt, wait) =>
        this.#o.log.event("warning", "xmpp_retry", {
          attempt: attempt + 1,
          of: this.#o.attempts ?? 5,
          in_s: Math.round(wait) / 1000,
        }, classify(error, this.#o.client).message),
    }).catch((error) => {
      const last = error instanceof RetryError ? error.cause : error;
      throw signal.aborted ? signal.reason : classify(last, this.#o.client);
    });
    try {
      await this.#prepare(true);
    } catch (error) {
      const failure = signal.aborted ? signal.reason : classify(error, this.#o.client);
      await this.stop();
      throw failure;
    }
    this.#started = true;
    this.events.emit("online", {
      jid: String(this.#client?.jid),
      nodes: this.subscribed,
      downSeconds: 0,
    });
  }

  /** Publishes on a node through this session (heartbeat responses). */
  async publish(node: string, payload: string): Promise<void> {
    if (!this.#pubsub || !this.online) {
      this.#o.log.event("warning", "publish_dropped", { node, reason: "XMPP session is down" });
      return;
    }
    await this.#pubsub.publish(node, payload);
  }

  /** Ends the session; no reconnect follows. Takes at most about a second. */
  async stop(): Promise<void> {
    this.#abort.abort(new DOMException("The XMPP session was stopped", "AbortError"));
    await this.#teardown();
    await this.#reconnecting;
  }

  /** Stops, for `await using`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.stop();
  }

  async #connect(): Promise<void> {
    await this.#teardown();
    const signal = this.#abort.signal;
    signal.throwIfAborted();
    const client = (this.#o.connect ?? createXmppClient)(this.#o.client);
    this.#client = client;
    this.#pubsub = new Pubsub(client, this.#o.service);
    this.#listen(client);
    // Stopping while connecting ends the attempt at once: the client is
    // told to stop, and nobody waits for it to finish opening the stream.
    const started = client.start();
    started.catch(() => {});
    await Promise.race([started, whenAborted(signal)]);
    signal.throwIfAborted();
    this.#o.log.event("info", "xmpp_online", { jid: String(client.jid), service: this.#o.service });
  }

  #listen(client: XmppClient): void {
    const log = this.#o.log;
    client.on("stanza", (stanza) => this.#onStanza(stanza));
    client.on("error", (error) => {
      const failure = classify(error, this.#o.client);
      if (failure.kind === "conflict" && this.#started) this.#fatal(failure);
      else log.event("debug", "xmpp_error", { error: (error as Error)?.message ?? String(error) });
    });
    client.on("status", (status) => {
      if (status === "disconnect" && client === this.#client) this.#onDisconnect();
    });
    if (this.#o.debug) {
      client.on("element", (el) => log.event("debug", "xmpp_in", { xml: masked(el) }));
      client.on("send", (el) => log.event("debug", "xmpp_out", { xml: masked(el) }));
    }
  }

  async #teardown(): Promise<void> {
    const client = this.#client;
    this.#client = undefined;
    this.#pubsub = undefined;
    if (!client) return;
    client.removeAllListeners();
    // An emitter without an error listener throws; this one is done for.
    client.on("error", () => {});
    if (client.status === "offline") return;
    const stopped = client.stop().catch(() => {});
    // Only an open session is worth a polite close; a server that does not
    // answer the closing stream must not hold up a stop.
    if (client.status === "online") {
      await Promise.race([stopped, delay(500, { persistent: false })]);
    }
  }

  #fatal(failure: XmppFailure): void {
    if (this.#abort.signal.aborted) return;
    this.#abort.abort(failure);
    void this.#teardown();
    this.#o.log.event("error", "xmpp_fatal", { kind: failure.kind }, failure.message);
    this.events.emit("fatal", failure);
  }

  #onDisconnect(): void {
    if (this.#abort.signal.aborted || !this.#started || this.#reconnecting) return;
    this.#offlineSince ??= now();
    this.#subscribed.clear();
    this.#o.log.event("warning", "xmpp_disconnected", {});
    this.events.emit("offline", { reason: "disconnected" });
    this.#reconnecting = this.#reconnect().finally(() => this.#reconnecting = undefined);
  }

  /** Reconnects with backoff until it works, the session is stopped, or a failure is final. */
  async #reconnect(): Promise<void> {
    const [low, high] = this.#o.backoff ?? [1, 30];
    const signal = this.#abort.signal;
    try {
      await retry(async () => {
        await this.#connect();
        await this.#prepare(false);
      }, {
        maxAttempts: Infinity,
        minTimeout: low * 1000,
        maxTimeout: high * 1000,
        jitter: 0.5,
        signal,
        shouldRetry: (error) => {
          const kind = classify(error, this.#o.client).kind;
          return kind !== "auth" && kind !== "conflict";
        },
        onRetry: (error, _attempt, wait) => {
          const failure = classify(error, this.#o.client);
          this.#o.log.event(
            failure.kind === "tls" ? "error" : "warning",
            "xmpp_reconnect_failed",
            { kind: failure.kind, reconnect_in_s: Math.round(wait) / 1000 },
            failure.message,
          );
        },
      });
    } catch (error) {
      if (!signal.aborted) this.#fatal(classify(error, this.#o.client));
      return;
    }
    const down = this.#offlineSince === null ? 0 : now() - this.#offlineSince;
    this.#offlineSince = null;
    this.#o.log.event("info", "xmpp_reconnected", { down_s: Math.round(down * 1000) / 1000 });
    this.events.emit("online", {
      jid: String(this.#client?.jid),
      nodes: this.subscribed,
      downSeconds: down,
    });
  }

  /** Subscribes where needed (full JID, no presence), then catches up. */
  async #prepare(first: boolean): Promise<void> {
    const pubsub = this.#pubsub!;
    const jid = String(this.#client!.jid);
    const mine = new Set(
      (await pubsub.subscriptions()).filter((s) => s.jid === jid && s.subscription === "subscribed")
        .map((s) => s.node),
    );
    const configured = new Set(this.#o.nodes);
    this.#extra = [...mine].filter((node) => !configured.has(node));
    const missing = await this.#subscribe(pubsub, jid, mine);
    if (missing.length > 0) {
      const message = `Node(s) not found on ${this.#o.service}: ${missing.join(", ")} ` +
        "(create them with `lvalert_listenMP admin --create --node N`, or pass --create-missing-nodes)";
      if (first) throw new XmppFailure("missing_nodes", message);
      this.#o.log.event("error", "nodes_missing", { nodes: missing }, message);
    }
    const options = {
      pubsub,
      seen: this.#o.seen,
      log: this.#o.log,
      limit: this.#o.catchUp,
      route: (input: RouteInput) => this.events.emit("item", input),
      now,
    };
    for (const node of this.#subscribed) await catchUp(node, options);
    this.#o.log.event("info", "xmpp_ready", { nodes: [...this.#subscribed] });
  }

  /** Subscribes to every configured node not yet subscribed; returns those missing. */
  async #subscribe(pubsub: Pubsub, jid: string, mine: Set<string>): Promise<string[]> {
    const missing: string[] = [];
    for (const node of this.#o.nodes) {
      if (!mine.has(node)) {
        try {
          await pubsub.subscribe(node, jid);
          this.#o.log.event("info", "subscribed", { node, jid });
        } catch (error) {
          if (condition(error) !== "item-not-found") throw error;
          missing.push(node);
          continue;
        }
      }
      this.#subscribed.add(node);
    }
    if (missing.length === 0 || !this.#o.createMissingNodes) return missing;
    for (const node of missing) {
      await pubsub.create(node);
      await pubsub.subscribe(node, jid);
      this.#subscribed.add(node);
      this.#o.log.event(
        "warning",
        "node_created",
        { node },
        `node ${node} did not exist and was created`,
      );
    }
    return [];
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
      this.events.emit("node_deleted", { node: deleted });
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
      this.events.emit("item", { node: item.node, id: item.id || null, payload: item.payload, t0 });
    }
  }
}
