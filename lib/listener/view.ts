/**
 * A read-only view of a running listener for whoever watches it from
 * outside the routing (the HTTP status page and metrics): its config, its
 * status document, its children's events, and what became of each alert,
 * with its routing latency. Watching costs the hot path one event per
 * alert and nothing else.
 *
 * @module
 */

import type { JsonObject } from "../core/alert.ts";
import { Emitter } from "../core/emitter.ts";
import type { ChildLog } from "../core/log.ts";
import type { ListenerConfig } from "../config/config.ts";
import { systemClock } from "../queue/clock.ts";
import type { ChildBus } from "./child_events.ts";
import type { ChildStatus } from "./child_link.ts";
import type { RouteEvent } from "./router.ts";
import type { SessionStatus } from "./status.ts";

export type { RouteEvent } from "./router.ts";

/** What a {@linkcode ListenerView} announces. */
export interface ListenerViewEvents extends Record<string, unknown> {
  /** What became of one input. */
  route: RouteEvent;
  /** A routed alert is journaled and handed to its child, `latency` seconds after it arrived. */
  routed: { event: RouteEvent; latency: number };
  /** The XMPP session came up (again, when `reconnect`) or went down. */
  session: { online: boolean; reconnect: boolean };
}

/** The XMPP session as the view reports it. */
export interface SessionView {
  online: boolean;
  /** Epoch seconds of the last change (up or down); the start before the first. */
  since: number;
  /** Times the session came back after it was lost. */
  reconnects: number;
  configured: string[];
  subscribed: string[];
}

/** What a {@linkcode ListenerView} reads the listener through. */
export interface ListenerViewOptions {
  config: ListenerConfig;
  /** Epoch seconds the listener started. */
  started: number;
  /** Whether alerts come from an XMPP session (else a replay). */
  xmpp: boolean;
  children: ChildBus;
  /** The listener's log. */
  log: ChildLog;
  /** The status document, as `ctl --status` serves it. */
  status(): JsonObject;
  childStatus(): ChildStatus[];
  /** The session, once there is one. */
  session(): SessionStatus | undefined;
}

/** A running listener, seen from outside. */
export class ListenerView {
  /** What happens to alerts and to the session. */
  readonly events: Emitter<ListenerViewEvents> = new Emitter();
  readonly config: ListenerConfig;
  readonly started: number;
  readonly xmpp: boolean;
  /** What happens to children. */
  readonly children: ChildBus;
  /** The listener's log. */
  readonly log: ChildLog;
  #o: ListenerViewOptions;
  #reconnects = 0;
  #everOnline = false;
  #since: number;

  constructor(options: ListenerViewOptions) {
    this.#o = options;
    this.config = options.config;
    this.started = options.started;
    this.xmpp = options.xmpp;
    this.children = options.children;
    this.log = options.log;
    this.#since = options.started;
  }

  /** The status document (the `status` verdict is judged on it). */
  status(): JsonObject {
    return this.#o.status();
  }

  /** What the listener knows of each child. */
  childStatus(): ChildStatus[] {
    return this.#o.childStatus();
  }

  /** The XMPP session; null for a replay. */
  session(): SessionView | null {
    if (!this.xmpp) return null;
    const s = this.#o.session();
    return {
      online: s?.online ?? false,
      since: this.#since,
      reconnects: this.#reconnects,
      configured: [...this.config.owners.keys()],
      subscribed: s?.subscribed ?? [],
    };
  }

  /** For the router: tells what became of an input; routed ones are timed to their journal. */
  observe(event: RouteEvent): (() => void) | undefined {
    this.events.emit("route", event);
    if (event.outcome !== "routed") return undefined;
    return () => this.events.emit("routed", { event, latency: systemClock.now() - event.t0 });
  }

  /** For the listener: the session came up or went down. */
  sessionChanged(online: boolean): void {
    const reconnect = online && this.#everOnline;
    if (online) this.#everOnline = true;
    if (reconnect) this.#reconnects++;
    this.#since = systemClock.now();
    this.events.emit("session", { online, reconnect });
  }
}
