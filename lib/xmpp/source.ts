/**
 * The XMPP source: one session with the LVAlert server that receives
 * every configured node, survives outages, and catches up on what it
 * missed. It announces what it receives and what happens to it as events
 * (`item`, `online`, `offline`, `fatal`, `node_deleted`, `catch_up_gap`)
 * and does no other work.
 *
 * After each (re)connect, items the server pushes wait until their node is
 * caught up (see {@linkcode syncNodes}): history stays history, and
 * caught-up items are routed, oldest first, before what arrived meanwhile.
 *
 * @module
 */

import {
  backoff,
  delay,
  retry,
  RetryError,
  type RetryOptions,
  whenAborted,
} from "../core/async.ts";
import { Emitter } from "../core/emitter.ts";
import type { ChildLog } from "../core/log.ts";
import type { RouteInput } from "../core/source.ts";
import { systemClock } from "../queue/clock.ts";
import type { CatchUpGap, CatchUpResult, CatchUpSeen } from "./catch_up.ts";
import {
  createXmppClient,
  type XmlElement,
  type XmppClient,
  type XmppClientOptions,
} from "./client.ts";
import { classify, retryable, streamErrorOf, streamFailure, type XmppFailure } from "./failure.ts";
import { HeldItems } from "./held_items.ts";
import { isStanzaError, syncNodes } from "./node_sync.ts";
import { eventItems, NS_PUBSUB_EVENT, Pubsub } from "./pubsub.ts";

export { classify, XmppFailure, type XmppFailureKind } from "./failure.ts";
export type { CatchUpGap } from "./catch_up.ts";

/** What an {@linkcode XmppSource} announces. */
export interface XmppSourceEvents extends Record<string, unknown> {
  /** A published item to route (live or caught up). */
  item: RouteInput;
  /** Subscribed and caught up, after the start or a reconnect. */
  online: { jid: string; nodes: string[]; downSeconds: number };
  /** The session broke (`failure`: the server's stream error, if any); a reconnect follows. */
  offline: { reason: string; failure: XmppFailure | null };
  /** The session ended for good (login refused, another client on the resource). */
  fatal: XmppFailure;
  /** A configured node was deleted on the server (`how` it was noticed). */
  node_deleted: { node: string; how: "notified" | "reconnect" | "check" };
  /** A catch-up could not reach the last item seen: alerts may have been lost. */
  catch_up_gap: CatchUpGap;
}

/** Options for {@linkcode XmppSource}. */
export interface XmppSourceOptions {
  client: XmppClientOptions;
  /** The pubsub service JID (`pubsub.SERVER`). */
  service: string;
  nodes: readonly string[];
  /** Items per catch-up request after each (re)connect (0: no catch-up). */
  catchUp: number;
  /** Most items caught up per node; keep it within the seen store's limit. @default {1000} */
  catchUpMax?: number;
  createMissingNodes: boolean;
  seen: CatchUpSeen;
  log: ChildLog;
  /** Connection attempts at start before giving up. @default {5} */
  attempts?: number;
  /** Log every stanza (credentials masked). */
  debug?: boolean;
  /** Backoff bounds in seconds. @default {[1, 30]} */
  backoff?: [number, number];
  /** Seconds between checks that every node still exists (0: never). @default {60} */
  nodeCheckInterval?: number;
  /** Seconds a request may wait for its answer. @default {30} */
  requestTimeout?: number;
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

/** `host`, `host:port` or `[v6]:port` of a see-other-host redirect. */
function parseHost(text: string, port: number): { server: string; port: number } {
  const m = /^\[([^\]]+)\](?::(\d+))?$/.exec(text) ?? /^([^:]+)(?::(\d+))?$/.exec(text);
  return m ? { server: m[1]!, port: m[2] ? Number(m[2]) : port } : { server: text, port };
}

/** One connection: its client, requests, and the signal of its loss. */
interface Connection {
  client: XmppClient;
  pubsub: Pubsub;
  lost: AbortController;
  /** The stream error the server ended it with. */
  failure: XmppFailure | undefined;
}

/** The listener's XMPP session. */
export class XmppSource implements AsyncDisposable {
  /** What happens to the session, and what it receives. */
  readonly events: Emitter<XmppSourceEvents> = new Emitter();
  #o: XmppSourceOptions;
  #abort = new AbortController();
  #conn: Connection | undefined;
  #started = false;
  #reconnecting: Promise<void> | undefined;
  #offlineSince: number | null = null;
  #subscribed = new Set<string>();
  #extra: string[] = [];
  #deleted = new Set<string>();
  #gaps = new Map<string, CatchUpGap>();
  #held = new HeldItems();
  #redirect: { server: string; port: number } | undefined;
  #check: ReturnType<typeof setTimeout> | undefined;

  constructor(options: XmppSourceOptions) {
    this.#o = options;
    options.signal?.addEventListener("abort", () => void this.stop(), { once: true });
  }

  /** True while the session is up and subscribed. */
  get online(): boolean {
    return this.#conn?.client.status === "online" && this.#offlineSince === null;
  }

  /** Epoch seconds since the session has been down, or null when up. */
  get offlineSince(): number | null {
    return this.#offlineSince;
  }

  /** The pubsub service JID. */
  get service(): string {
    return this.#o.service;
  }

  /** Nodes this session receives. */
  get subscribed(): string[] {
    return [...this.#subscribed];
  }

  /** Nodes this JID is subscribed to that no child listens to. */
  get extra(): string[] {
    return [...this.#extra];
  }

  /** Configured nodes found deleted on the server. */
  get deleted(): string[] {
    return [...this.#deleted];
  }

  /** Catch-up gaps not yet acknowledged nor closed by a clean catch-up. */
  get gaps(): CatchUpGap[] {
    return [...this.#gaps.values()];
  }

  /** Forgets the gaps of `node` (or of every node); returns the nodes acknowledged. */
  acknowledgeGaps(node?: string): string[] {
    const nodes = node === undefined ? [...this.#gaps.keys()] : this.#gaps.has(node) ? [node] : [];
    for (const n of nodes) this.#gaps.delete(n);
    if (nodes.length > 0) this.#o.log.event("info", "catch_up_gap_acknowledged", { nodes });
    return nodes;
  }

  #retryOptions(): RetryOptions {
    const [low, high] = this.#o.backoff ?? [1, 30];
    return { minTimeout: low * 1000, maxTimeout: high * 1000, jitter: 0.5 };
  }

  /** What a failed attempt means: the server's stream error if it sent one. */
  #failureOf(error: unknown): XmppFailure {
    return this.#conn?.failure ?? classify(error, this.#o.client);
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
    const attempts = this.#o.attempts ?? 5;
    try {
      await retry(async () => {
        await this.#connect();
        await this.#prepare(true);
      }, {
        ...this.#retryOptions(),
        maxAttempts: attempts,
        signal,
        shouldRetry: (error) => !isStanzaError(error) && retryable(this.#failureOf(error)),
        onRetry: (error, attempt, wait) =>
          this.#o.log.event("warning", "xmpp_retry", {
            attempt: attempt + 1,
            of: attempts,
            in_s: Math.round(wait) / 1000,
          }, this.#failureOf(error).message),
      });
    } catch (error) {
      const last = error instanceof RetryError ? error.cause : error;
      const failure = signal.aborted ? signal.reason : this.#failureOf(last);
      await this.stop();
      throw failure;
    }
    this.#started = true;
    this.#announceOnline(0);
  }

  /** Publishes on a node through this session (heartbeat responses). */
  async publish(node: string, payload: string): Promise<void> {
    if (!this.#conn || !this.online) {
      this.#o.log.event("warning", "publish_dropped", { node, reason: "XMPP session is down" });
      return;
    }
    await this.#conn.pubsub.publish(node, payload);
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
    const redirect = this.#redirect;
    this.#redirect = undefined;
    const options = redirect
      ? { ...this.#o.client, ...redirect, domain: this.#o.client.domain ?? this.#o.client.server }
      : this.#o.client;
    const client = (this.#o.connect ?? createXmppClient)(options);
    const lost = new AbortController();
    const timeout = (this.#o.requestTimeout ?? 30) * 1000;
    const pubsub = new Pubsub(client, this.#o.service, timeout, lost.signal);
    const conn: Connection = { client, pubsub, lost, failure: undefined };
    this.#conn = conn;
    // Whatever the server pushes from now on waits for its node's catch-up.
    this.#held.hold(this.#o.nodes);
    this.#listen(conn);
    // Stopping while connecting ends the attempt at once: the client is
    // told to stop, and nobody waits for it to finish opening the stream.
    const started = client.start();
    started.catch(() => {});
    // A connection closed while opening: the client's own error says most, if it comes.
    const closed = whenAborted(lost.signal).then(() =>
      Promise.race([started, delay(200, { persistent: false })])
    ).then(() => {
      throw conn.failure ?? new Error("The connection closed while opening");
    });
    closed.catch(() => {});
    await Promise.race([started, whenAborted(signal), closed]);
    signal.throwIfAborted();
    this.#o.log.event("info", "xmpp_online", { jid: String(client.jid), service: this.#o.service });
  }

  #listen(conn: Connection): void {
    const { client } = conn;
    const log = this.#o.log;
    client.on("stanza", (stanza) => this.#onStanza(stanza));
    client.on("element", (el) => {
      const info = streamErrorOf(el);
      if (info) this.#onStreamError(conn, streamFailure(info, this.#o.client));
      if (this.#o.debug) log.event("debug", "xmpp_in", { xml: masked(el) });
    });
    client.on("error", (error) => {
      log.event("debug", "xmpp_error", { error: (error as Error)?.message ?? String(error) });
    });
    client.on("status", (status) => {
      if (status !== "disconnect") return;
      conn.lost.abort(conn.failure ?? new Error("The XMPP connection was lost"));
      if (conn === this.#conn) this.#onDisconnect();
    });
    if (this.#o.debug) {
      client.on("send", (el) => log.event("debug", "xmpp_out", { xml: masked(el) }));
    }
  }

  #onStreamError(conn: Connection, failure: XmppFailure): void {
    conn.failure = failure;
    const host = failure.stream?.host;
    if (failure.kind === "redirect" && host) {
      this.#redirect = parseHost(host, this.#o.client.port ?? 5222);
    }
    if (failure.kind === "conflict" && this.#started) this.#fatal(failure);
  }

  async #teardown(): Promise<void> {
    clearTimeout(this.#check);
    this.#check = undefined;
    const conn = this.#conn;
    this.#conn = undefined;
    this.#held.clear();
    if (!conn) return;
    const { client } = conn;
    client.removeAllListeners();
    // An emitter without an error listener throws; this one is done for.
    client.on("error", () => {});
    conn.lost.abort(new Error("The XMPP connection was closed"));
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
    clearTimeout(this.#check);
    const failure = this.#conn?.failure ?? null;
    const reason = failure?.message ?? "the connection was lost";
    this.#o.log.event("warning", "xmpp_disconnected", {
      kind: failure?.kind ?? null,
      condition: failure?.stream?.condition ?? null,
      text: failure?.stream?.text ?? null,
    }, reason);
    this.events.emit("offline", { reason, failure });
    this.#reconnecting = this.#reconnect(failure).finally(() => this.#reconnecting = undefined);
  }

  /** Reconnects with backoff until it works, the session is stopped, or a failure is final. */
  async #reconnect(why: XmppFailure | null): Promise<void> {
    const signal = this.#abort.signal;
    try {
      // An administrator's kick or a refusal: coming straight back would defy it.
      if (why && (why.kind === "kicked" || why.kind === "stream")) {
        await delay(backoff(0, this.#retryOptions()), { signal });
      }
      await retry(async () => {
        await this.#connect();
        await this.#prepare(false);
      }, {
        ...this.#retryOptions(),
        maxAttempts: Infinity,
        signal,
        shouldRetry: (error) => {
          const kind = this.#failureOf(error).kind;
          return kind !== "auth" && kind !== "conflict";
        },
        onRetry: (error, _attempt, wait) => {
          const failure = this.#failureOf(error);
          this.#o.log.event(
            failure.kind === "tls" ? "error" : "warning",
            "xmpp_reconnect_failed",
            { kind: failure.kind, reconnect_in_s: Math.round(wait) / 1000 },
            failure.message,
          );
        },
      });
    } catch (error) {
      if (!signal.aborted) this.#fatal(this.#failureOf(error));
      return;
    }
    const down = this.#offlineSince === null ? 0 : now() - this.#offlineSince;
    this.#offlineSince = null;
    this.#o.log.event("info", "xmpp_reconnected", { down_s: Math.round(down * 1000) / 1000 });
    this.#announceOnline(down);
  }

  #announceOnline(downSeconds: number): void {
    this.events.emit("online", {
      jid: String(this.#conn?.client.jid),
      nodes: this.subscribed,
      downSeconds,
    });
    this.#armCheck();
  }

  /** Subscribes where needed (full JID, no presence), then catches up. */
  async #prepare(first: boolean): Promise<void> {
    const conn = this.#conn!;
    const jid = String(conn.client.jid);
    void this.#findExtra(conn, jid);
    await syncNodes({
      pubsub: conn.pubsub,
      jid,
      nodes: this.#o.nodes,
      seen: this.#o.seen,
      pageSize: this.#o.catchUp,
      ceiling: this.#o.catchUpMax ?? 1000,
      createMissingNodes: this.#o.createMissingNodes,
      first,
      log: this.#o.log,
      now,
    }, {
      route: (input) => this.events.emit("item", input),
      subscribed: (node) => {
        this.#subscribed.add(node);
        this.#deleted.delete(node);
      },
      missing: (node) => this.#gone(node, "reconnect"),
      caughtUp: (node, routed, result) => this.#caughtUp(node, routed, result),
    });
    for (const node of this.#held.nodes()) this.#release(node, new Set());
    this.#o.log.event("info", "xmpp_ready", { nodes: [...this.#subscribed] });
  }

  #caughtUp(node: string, routed: ReadonlySet<string>, result: CatchUpResult | undefined): void {
    const gap = result?.gap;
    if (gap) {
      this.#gaps.set(node, gap);
      this.#o.log.event("error", "catch_up_gap", {
        node,
        reason: gap.reason,
        routed: gap.routed,
        held: gap.held,
        ceiling: gap.ceiling,
      }, gap.message);
      this.events.emit("catch_up_gap", gap);
    } else if (result && this.#gaps.delete(node)) {
      this.#o.log.event("info", "catch_up_gap_closed", { node }, `catch-up on ${node} is clean`);
    }
    this.#release(node, routed);
  }

  /** Routes what the server pushed while `node` was being caught up, except repeats. */
  #release(node: string, routed: ReadonlySet<string>): void {
    const seen = this.#o.seen;
    const fresh = this.#held.release(node, (input) => {
      const repeat = input.id !== null && (routed.has(input.id) || seen.has(node, input.id));
      if (repeat) this.#o.log.event("debug", "item_repeated", { node, id: input.id });
      return repeat;
    });
    for (const input of fresh) this.events.emit("item", input);
  }

  /** Lists this JID's subscriptions on every node, for those no child listens to. */
  async #findExtra(conn: Connection, jid: string): Promise<void> {
    // Prosody 0.12 never answers this once a subscribed node was deleted:
    // it only feeds `extra`, and must not hold anything up.
    const pubsub = new Pubsub(conn.client, this.#o.service, 5000, conn.lost.signal);
    try {
      const mine = (await pubsub.subscriptions())
        .filter((s) => s.jid === jid && s.subscription === "subscribed").map((s) => s.node);
      const configured = new Set(this.#o.nodes);
      this.#extra = [...new Set(mine)].filter((node) => !configured.has(node));
    } catch (error) {
      this.#o.log.event("debug", "subscriptions_unanswered", {
        error: (error as Error).message,
      });
    }
  }

  /** A configured node is gone: reported once, until it is subscribed again. */
  #gone(node: string, how: XmppSourceEvents["node_deleted"]["how"]): void {
    if (!this.#o.nodes.includes(node)) return;
    this.#subscribed.delete(node);
    this.#release(node, new Set());
    if (this.#deleted.has(node)) return;
    this.#deleted.add(node);
    this.#o.log.event(
      "error",
      "node_deleted",
      { node, how },
      `node ${node} was deleted on ${this.#o.service}: nothing more will come from it`,
    );
    this.events.emit("node_deleted", { node, how });
  }

  #armCheck(): void {
    const seconds = this.#o.nodeCheckInterval ?? 60;
    clearTimeout(this.#check);
    if (!(seconds > 0) || this.#abort.signal.aborted) return;
    this.#check = setTimeout(() => void this.#checkNodes(), seconds * 1000);
  }

  /** One disco#items request: are the nodes still there? (Not every server says when one goes.) */
  async #checkNodes(): Promise<void> {
    const conn = this.#conn;
    if (!conn || !this.online) return;
    try {
      const listed = new Set(await conn.pubsub.nodes());
      for (const node of [...this.#subscribed]) {
        // A long list may be cut short: ask about the node itself before concluding.
        if (!listed.has(node) && !(await conn.pubsub.exists(node))) this.#gone(node, "check");
      }
    } catch (error) {
      this.#o.log.event("debug", "node_check_failed", { error: (error as Error).message });
    }
    if (conn === this.#conn && this.online) this.#armCheck();
  }

  #onStanza(stanza: XmlElement): void {
    if (stanza.name !== "message") return;
    const event = stanza.getChild("event", NS_PUBSUB_EVENT);
    if (!event) return;
    const from = stanza.attrs.from;
    if (from !== this.#o.service) {
      this.#o.log.event("warning", "event_ignored", {
        from: from ?? null,
        reason: "not from the pubsub service",
      });
      return;
    }
    const deleted = event.getChild("delete")?.attrs.node;
    if (deleted !== undefined) return this.#gone(deleted, "notified");
    const purged = event.getChild("purge")?.attrs.node;
    if (purged !== undefined) {
      this.#o.log.event("warning", "node_purged", { node: purged }, `node ${purged} was purged`);
    }
    const t0 = now();
    for (const item of eventItems(stanza)) {
      const input = { node: item.node, id: item.id || null, payload: item.payload, t0 };
      if (!this.#held.offer(input)) this.events.emit("item", input);
    }
  }
}
