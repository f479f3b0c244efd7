/**
 * What the status page shows, kept up to date from the listener's events:
 * the last alerts and what became of them, each child's last alert, next
 * due tasks and recent task failures. Bounded: rings of fixed size, one
 * due list per child. A snapshot joins it with the status document.
 *
 * @module
 */

import type { DueTask, TaskFailure } from "../child/messages.ts";
import { assess, type Assessment } from "../listener/health.ts";
import type { ChildStatus } from "../listener/child_link.ts";
import type { ListenerView, RouteEvent, SessionView } from "../listener/view.ts";

/** Alerts the page lists, at most. */
export const ALERTS_KEPT = 50;
/** Task failures the page lists, at most. */
export const FAILURES_KEPT = 20;

/** One alert in the page's list. */
export interface AlertRecord {
  event: RouteEvent;
  /** Seconds from arrival to journaled and handed over; null until then, or when not routed. */
  latency: number | null;
}

/** A task failure, with its child and when the listener heard of it. */
export interface FailureRecord extends TaskFailure {
  child: string;
  at: number;
}

/** A child as the page shows it. */
export interface ChildView extends ChildStatus {
  warnThr: number;
  lastAlert: { uid: string; alert_type: string; at: number } | null;
  due: DueTask[];
}

/** Everything the page shows, at one moment. */
export interface Snapshot {
  now: number;
  started: number;
  pid: number;
  session: SessionView | null;
  children: ChildView[];
  /** Newest first. */
  alerts: AlertRecord[];
  /** Newest first. */
  failures: FailureRecord[];
  health: Assessment;
}

/** A fixed-size ring, newest last. */
class Ring<T> {
  #items: T[] = [];
  #size: number;
  constructor(size: number) {
    this.#size = size;
  }
  push(item: T): void {
    this.#items.push(item);
    if (this.#items.length > this.#size) this.#items.shift();
  }
  newestFirst(): T[] {
    return this.#items.toReversed();
  }
}

/** The page's data, fed by a listener's events. */
export class LiveState {
  #view: ListenerView;
  #alerts = new Ring<AlertRecord>(ALERTS_KEPT);
  #pending = new WeakMap<RouteEvent, AlertRecord>();
  #failures = new Ring<FailureRecord>(FAILURES_KEPT);
  #due = new Map<string, DueTask[]>();
  #last = new Map<string, { uid: string; alert_type: string; at: number }>();
  #changed: () => void;
  #off: (() => void)[] = [];

  /** Listens to `view`; `changed` is called after anything the page shows changed. */
  constructor(view: ListenerView, changed: () => void = () => {}) {
    this.#view = view;
    this.#changed = changed;
    const bus = view.children;
    this.#off.push(
      view.events.on("route", (event) => this.#route(event)),
      view.events.on("routed", ({ event, latency }) => {
        const record = this.#pending.get(event);
        if (record) record.latency = latency;
        changed();
      }),
      view.events.on("session", changed),
      bus.on("report", ({ child, due, failures }) => {
        this.#due.set(child, due);
        const at = Date.now() / 1000;
        for (const f of failures) this.#failures.push({ ...f, child, at });
        changed();
      }),
      bus.on("given_up", ({ child }) => {
        this.#due.delete(child);
        changed();
      }),
      bus.on("changed", changed),
      bus.on("ready", changed),
      bus.on("died", changed),
    );
  }

  #route(event: RouteEvent): void {
    const record: AlertRecord = { event, latency: null };
    this.#alerts.push(record);
    if (event.outcome === "routed") {
      this.#pending.set(event, record);
      if (event.child !== null && event.uid !== null) {
        this.#last.set(event.child, {
          uid: event.uid,
          alert_type: event.alert_type ?? "",
          at: event.t0,
        });
      }
    }
    this.#changed();
  }

  /** What the page shows now. */
  snapshot(now: number = Date.now() / 1000): Snapshot {
    const view = this.#view;
    const warnThr = new Map(view.config.sections.map((s) => [s.name, s.warnThr]));
    const children = view.childStatus().map((c): ChildView => ({
      ...c,
      warnThr: warnThr.get(c.child) ?? Infinity,
      lastAlert: this.#last.get(c.child) ?? null,
      due: c.state === "given_up" ? [] : this.#due.get(c.child) ?? [],
    }));
    return {
      now,
      started: view.started,
      pid: Deno.pid,
      session: view.session(),
      children,
      alerts: this.#alerts.newestFirst(),
      failures: this.#failures.newestFirst(),
      health: assess(view.status(), undefined, now),
    };
  }

  /** Stops listening. */
  close(): void {
    for (const off of this.#off) off();
    this.#off = [];
  }
}
