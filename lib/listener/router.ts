/**
 * The router: node -> child, payload checks and de-duplication. It runs on
 * the listener's thread and does no user work.
 *
 * @module
 */

import { type Alert, type JsonObject, readAlert } from "../core/alert.ts";
import type { ChildLog } from "../core/log.ts";
import { MemorySeenIds, type RouteInput, type SeenIds } from "../core/source.ts";

export type { RouteInput, SeenIds } from "../core/source.ts";

/** An alert on its way to a child. */
export interface Delivery {
  child: string;
  node: string;
  id: string | null;
  alert: Alert;
  /** The alert's JSON text as received (journaled and posted as is). */
  text?: string;
  t0: number;
  /** Called once the alert is durable in the journal. */
  onJournaled?: () => void;
}

/** What became of one input. */
export type RouteOutcome =
  | "routed"
  | "rejected"
  | "unrouted"
  | "duplicate"
  | "ignored"
  | "deferred";

/** What became of one input, for whoever watches the routing (the status page, metrics). */
export interface RouteEvent {
  /** null for input that never became an alert on a node (a bad replay line). */
  node: string | null;
  id: string | null;
  uid: string | null;
  alert_type: string | null;
  /** The child that owns the node, when one does. */
  child: string | null;
  outcome: RouteOutcome;
  /** When it arrived (epoch seconds). */
  t0: number;
  /** Why it was rejected, deferred or taken for a duplicate. */
  reason: string | null;
}

/** Counters, reported at exit and by `status`. */
export interface RouteCounts {
  received: number;
  routed: number;
  rejected: number;
  unrouted: number;
  duplicates: number;
  ignored: number;
  /** Offered while the listener was stopping: left on the server for the next start. */
  deferred: number;
  /** Routed with an alert_type GraceDB is not known to send (each type logged once per child). */
  unknown_type: number;
}

/**
 * A 64-bit hash of a payload, with its length: a small key that stands
 * for the text, so the duplicate window does not hold every payload.
 */
export function payloadKey(text: string): string {
  // Two FNV-1a lanes with different offsets: 64 bits in all.
  let a = 0x811c9dc5;
  let b = 0x01000193 ^ text.length;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    a = Math.imul(a ^ c, 0x01000193);
    b = Math.imul(b ^ c, 0x01000193 + 0x100);
  }
  return `${(a >>> 0).toString(36)}.${(b >>> 0).toString(36)}.${text.length}`;
}

/** Options for {@linkcode Router}. */
export interface RouterOptions {
  /** node -> child */
  owners: ReadonlyMap<string, string>;
  deliver(delivery: Delivery): void;
  log: ChildLog;
  /** `-S`: called with the child and payload text of each routed alert. */
  show?: (child: string, text: string) => void;
  /**
   * Seconds within which the same payload on another node of the same
   * child counts as a duplicate. @default {60}
   */
  dedupWindow?: number;
  /** Item ids already routed; kept in memory when absent. */
  seen?: SeenIds;
  /**
   * Whether a child takes more alerts now; when it does not (its journal
   * cannot keep up, the disk is full), the alert is deferred: neither
   * journaled nor remembered, so the server still offers it later.
   * @default {every child, always}
   */
  accepts?(child: string): boolean;
  /** Hears about a payload that could not be read on a node a child owns. */
  unreadable?(child: string, payload: string, reason: string): void;
  /**
   * Hears what became of each input; for a routed alert it may return a
   * function, called once the alert is journaled (routing latency).
   */
  observe?(event: RouteEvent): (() => void) | undefined;
}

/** Routes alerts from any source to the child that owns their node. */
export class Router {
  readonly counts: RouteCounts = {
    received: 0,
    routed: 0,
    rejected: 0,
    unrouted: 0,
    duplicates: 0,
    ignored: 0,
    deferred: 0,
    unknown_type: 0,
  };
  /** child -> alert types not known, already logged */
  #unknownTypes = new Map<string, Set<string>>();
  #closed = false;
  #o: RouterOptions;
  #seen: SeenIds;
  #window: number;
  /** child -> payload key -> (node, t0), oldest first */
  #recent = new Map<string, Map<string, { node: string; t0: number }>>();
  /**
   * Children that listen to more than one node: only they can get the same
   * payload twice from different nodes, so only their payloads are hashed
   * and remembered (1-2 µs an alert, and the window's memory).
   */
  #manyNodes = new Set<string>();
  /**
   * Nodes with an alert deferred: everything after it on the node is
   * deferred too, until a catch-up takes them in order. Routing a later
   * alert would mark it seen, and a catch-up stops at the newest seen item:
   * the deferred ones before it would never come back.
   */
  #deferredNodes = new Set<string>();

  constructor(options: RouterOptions) {
    this.#o = options;
    this.#seen = options.seen ?? new MemorySeenIds();
    this.#window = options.dedupWindow ?? 60;
    const seen = new Set<string>();
    for (const child of options.owners.values()) {
      if (seen.has(child)) this.#manyNodes.add(child);
      seen.add(child);
    }
  }

  /**
   * Stops taking alerts (the listener is stopping): what is offered from
   * now on is neither journaled nor remembered as seen, so the server
   * still holds it for the next start's catch-up.
   */
  close(): void {
    this.#closed = true;
  }

  /** Nodes whose alerts wait for a catch-up since one was deferred. */
  get deferredNodes(): ReadonlySet<string> {
    return this.#deferredNodes;
  }

  /**
   * Takes alerts of `node` again: its catch-up is about to route what the
   * server kept, oldest first (call it before the catch-up routes).
   */
  resume(node: string): void {
    this.#deferredNodes.delete(node);
  }

  /** Counts and logs input that never became an alert (a bad replay line). */
  reject(where: string, reason: string): void {
    this.counts.received++;
    this.#rejected(where, reason, {});
    this.#tell(null, null, null, "rejected", Date.now() / 1000, reason);
  }

  /** Tells the observer, if any, what became of an input. */
  #tell(
    node: string | null,
    id: string | null,
    alert: Alert | null,
    outcome: RouteOutcome,
    t0: number,
    reason: string | null = null,
    child: string | null = null,
  ): (() => void) | undefined {
    if (!this.#o.observe) return undefined;
    const uid = alert?.uid ?? null;
    const type = alert ? alert.alert_type : null;
    return this.#o.observe({ node, id, uid, alert_type: type, child, outcome, t0, reason });
  }

  #rejected(where: string, reason: string, fields: JsonObject): void {
    this.counts.rejected++;
    this.#o.log.event(
      "warning",
      "alert_rejected",
      { where, reason, ...fields },
      `${where}: ${reason}`,
    );
  }

  /** Routes one input to its child; says what became of it. */
  route(input: RouteInput): RouteOutcome {
    if (this.#closed) {
      this.counts.deferred++;
      this.#tell(input.node, input.id, null, "deferred", input.t0, "the listener is stopping");
      return "deferred";
    }
    this.counts.received++;
    const { node, id, t0 } = input;
    const where = input.where ??
      `node ${node}${id === null ? "" : ` item ${id}`}`;
    const log = this.#o.log;
    const child = this.#o.owners.get(node);
    if (child === undefined) {
      this.counts.unrouted++;
      log.event(
        "warning",
        "alert_unrouted",
        { node, id, where },
        `no child listens to node "${node}"; alert dropped`,
      );
      this.#tell(node, id, null, "unrouted", t0, "no child listens to the node");
      return "unrouted";
    }
    const read = readAlert(input.payload);
    if (!read.ok) {
      this.#settle(node, id);
      this.#rejected(where, read.reason, { node, id, child });
      const text = typeof input.payload === "string"
        ? input.payload
        : JSON.stringify(input.payload);
      this.#o.unreadable?.(child, text ?? String(input.payload), read.reason);
      this.#tell(node, id, null, "rejected", t0, read.reason, child);
      return "rejected";
    }
    const alert = read.alert;
    if (read.schema === "heartbeat" && alert.ptype !== "request") {
      // Our own heartbeat responses come back on the node; not alerts.
      this.#settle(node, id);
      this.counts.ignored++;
      log.event("debug", "alert_ignored", {
        node,
        id,
        reason: "heartbeat response",
      });
      this.#tell(node, id, alert, "ignored", t0, "heartbeat response", child);
      return "ignored";
    }
    const duplicate = (reason: string): RouteOutcome => {
      this.counts.duplicates++;
      log.event("info", "alert_duplicate", {
        node,
        id,
        child,
        uid: alert.uid,
        reason,
      });
      this.#tell(node, id, alert, "duplicate", t0, reason, child);
      return "duplicate";
    };
    if (id !== null && this.#seen.has(node, id)) {
      return duplicate("item id already routed");
    }
    const waiting = this.#deferredNodes.has(node);
    if (waiting || (this.#o.accepts && !this.#o.accepts(child))) {
      this.#deferredNodes.add(node);
      this.counts.deferred++;
      const reason = waiting
        ? "an earlier alert of the node was deferred; the catch-up takes them in order"
        : "the child's journal is not keeping up; the server keeps the alert";
      log.event("warning", "alert_deferred", { node, id, child, uid: alert.uid, reason });
      this.#tell(node, id, alert, "deferred", t0, reason, child);
      return "deferred";
    }
    const text = typeof input.payload === "string"
      ? input.payload.trim()
      : JSON.stringify(input.payload);
    const twin = this.#manyNodes.has(child) ? this.#twin(child, text, node, t0) : undefined;
    if (twin !== undefined) {
      this.#settle(node, id);
      return duplicate(`same payload already routed from node ${twin}`);
    }
    // Written down once journaled (the listener records it then).
    if (id !== null) this.#seen.add(node, id);
    this.counts.routed++;
    if (!read.known && read.schema !== "command" && read.schema !== "heartbeat") {
      this.#unknownType(child, alert.alert_type, node);
    }
    this.#o.show?.(child, text);
    const heard = this.#tell(node, id, alert, "routed", t0, null, child);
    const caller = input.onJournaled;
    const onJournaled = heard && caller
      ? () => {
        caller();
        heard();
      }
      : heard ?? caller;
    this.#o.deliver({ child, node, id, alert, text, t0, ...(onJournaled ? { onJournaled } : {}) });
    return "routed";
  }

  /** Remembers an item that will never be journaled, for good, at once. */
  #settle(node: string, id: string | null): void {
    if (id === null) return;
    if (this.#seen.record) this.#seen.record(node, id);
    else this.#seen.add(node, id);
  }

  /** Counts an alert_type GraceDB is not known to send; logs it the first time per child. */
  #unknownType(child: string, type: string, node: string): void {
    this.counts.unknown_type++;
    let seen = this.#unknownTypes.get(child);
    if (!seen) this.#unknownTypes.set(child, seen = new Set());
    if (seen.has(type)) return;
    seen.add(type);
    this.#o.log.event(
      "warning",
      "alert_type_unknown",
      { child, node, alert_type: type },
      `alert_type "${type}" is new to this listener; delivered to ${child}, whose handler decides`,
    );
  }

  /** The other node this payload reached the child from recently, if any. */
  #twin(
    child: string,
    text: string,
    node: string,
    t0: number,
  ): string | undefined {
    let recent = this.#recent.get(child);
    if (!recent) this.#recent.set(child, recent = new Map());
    for (const [key, seen] of recent) {
      if (t0 - seen.t0 <= this.#window) break;
      recent.delete(key);
    }
    const key = payloadKey(text);
    const seen = recent.get(key);
    if (seen && seen.node !== node && t0 - seen.t0 <= this.#window) {
      return seen.node;
    }
    recent.delete(key);
    recent.set(key, { node, t0 });
    return undefined;
  }
}
