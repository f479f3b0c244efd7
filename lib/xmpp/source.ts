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

import { backoff, delay, retry, RetryError, type RetryOptions } from "../core/async.ts";
import { Emitter } from "../core/emitter.ts";
import type { ChildLog } from "../core/log.ts";
import type { RouteInput } from "../core/source.ts";
import { systemClock } from "../queue/clock.ts";
import type { CatchUpGap, CatchUpResult, CatchUpSeen } from "./catch_up.ts";
import type { XmlElement, XmppClient, XmppClientOptions } from "./client.ts";
import { closeConnection, type Connection, openConnection } from "./connection.ts";
import { classify, retryable, type XmppFailure } from "./failure.ts";
import { HeldItems } from "./held_items.ts";
import { catchUpNode, isStanzaError, syncNodes, unconfiguredSubscriptions } from "./node_sync.ts";
import { NodeWatch } from "./node_watch.ts";
import { eventItems, NS_PUBSUB_EVENT } from "./pubsub.ts";

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

const now = systemClock.now;

/** `host`, `host:port` or `[v6]:port` of a see-other-host redirect. */
function parseHost(text: string, port: number): { server: string; port: number } {
  const m = /^\[([^\]]+)\](?::(\d+))?$/.exec(text) ?? /^([^:]+)(?::(\d+))?$/.exec(text);
  return m ? { server: m[1]!, port: m[2] ? Number(m[2]) : port } : { server: text, port };
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
  #gaps = new Map<string, CatchUpGap>();
  #held = new HeldItems();
  #redirect: { server: string; port: number } | undefined;
  #watch: NodeWatch;

  constructor(options: XmppSourceOptions) {
    this.#o = options;
    this.#watch = new NodeWatch({
      nodes: options.nodes,
      service: options.service,
      interval: options.nodeCheckInterval ?? 60,
      log: options.log,
      deleted: (node, how) => {
        this.#subscribed.delete(node);
        this.#release(node, new Set());
        this.events.emit("node_deleted", { node, how });
      },
    });
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
    return this.#watch.deleted;
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
      await retry(() => this.#attempt(true), {
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

  /**
   * Catches `nodes` up again on the open session: what each received since
   * its newest item seen (alerts deferred meanwhile) is routed oldest first,
   * after `resumed(node)`; items pushed meanwhile wait for it, as after a
   * reconnect. Without a session it does nothing: the reconnect's catch-up
   * takes them. A lost connection ends it the same way.
   */
  async catchUpAgain(nodes: readonly string[], resumed: (node: string) => void): Promise<void> {
    const conn = this.#conn;
    if (!conn || !this.online) return;
    const mine = nodes.filter((node) => this.#subscribed.has(node) && !this.#held.holds(node));
    this.#held.add(mine);
    for (const node of mine) {
      if (conn !== this.#conn || conn.lost.signal.aborted) return;
      resumed(node);
      try {
        await catchUpNode(
          {
            pubsub: conn.pubsub,
            seen: this.#o.seen,
            // Even with catch-up off (0): deferred alerts are on the server only.
            pageSize: Math.max(1, this.#o.catchUp),
            ceiling: this.#o.catchUpMax ?? 1000,
            log: this.#o.log,
            now,
          },
          node,
          {
            route: (input) => this.events.emit("item", input),
            caughtUp: (node, routed, result) => this.#caughtUp(node, routed, result),
          },
        );
      } catch (error) {
        // The connection went: the reconnect catches every node up.
        this.#o.log.event("warning", "catch_up_failed", {
          node,
          error: (error as Error).message,
        });
        if (conn === this.#conn) this.#release(node, new Set());
        return;
      }
    }
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
    const client = this.#o.client;
    const conn = await openConnection({
      client: redirect
        ? { ...client, ...redirect, domain: client.domain ?? client.server }
        : client,
      service: this.#o.service,
      timeout: (this.#o.requestTimeout ?? 30) * 1000,
      log: this.#o.log,
      debug: this.#o.debug,
      connect: this.#o.connect,
      signal,
      stanza: (stanza) => this.#onStanza(stanza),
      streamError: (conn, failure) => this.#onStreamError(conn, failure),
      closed: (conn) => {
        if (conn === this.#conn) this.#onDisconnect();
      },
    }, (conn) => {
      this.#conn = conn;
      // Whatever the server pushes from now on waits for its node's catch-up.
      this.#held.hold(this.#o.nodes);
    });
    this.#o.log.event("info", "xmpp_online", {
      jid: String(conn.client.jid),
      service: this.#o.service,
    });
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
    this.#watch.disarm();
    const conn = this.#conn;
    this.#conn = undefined;
    this.#held.clear();
    if (conn) await closeConnection(conn);
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
    this.#watch.disarm();
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
      await retry(() => this.#attempt(false), {
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
    if (this.#conn) this.#watch.arm(this.#conn.pubsub, () => this.subscribed);
  }

  /** One attempt: connected, subscribed and caught up on a connection still open. */
  async #attempt(first: boolean): Promise<void> {
    await this.#connect();
    await this.#prepare(first);
    // Lost after its last answer: nobody else would notice.
    const conn = this.#conn;
    if (conn?.lost.signal.aborted) {
      throw conn.failure ?? new Error("The connection was lost while catching up");
    }
  }

  /** Subscribes where needed (full JID, no presence), then catches up. */
  async #prepare(first: boolean): Promise<void> {
    const conn = this.#conn!;
    const jid = String(conn.client.jid);
    void unconfiguredSubscriptions(conn.client, this.#o.service, jid, this.#o.nodes, {
      signal: conn.lost.signal,
      log: this.#o.log,
    }).then((extra) => {
      if (extra) this.#extra = extra;
    });
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
        this.#watch.found(node);
      },
      missing: (node) => this.#watch.gone(node, "reconnect"),
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
    if (deleted !== undefined) return this.#watch.gone(deleted, "notified");
    const purged = event.getChild("purge")?.attrs.node;
    if (purged !== undefined) {
      // Its items are gone: the next catch-up there cannot find the last one seen.
      this.#o.log.event("warning", "node_purged", { node: purged }, `node ${purged} was purged`);
    }
    const configured = event.getChild("configuration")?.attrs.node;
    if (configured !== undefined) {
      this.#o.log.event("info", "node_configured", { node: configured });
    }
    const t0 = now();
    for (const item of eventItems(stanza)) {
      const input = { node: item.node, id: item.id || null, payload: item.payload, t0 };
      if (!this.#held.offer(input)) this.events.emit("item", input);
    }
  }
}
