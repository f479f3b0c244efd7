/**
 * The listener's Prometheus metrics, kept with `prom-client` (the
 * maintained Prometheus client for JavaScript) in a registry of their own:
 * counters and histograms fed by the listener's events, gauges read from
 * its status when scraped.
 *
 * @module
 */

import { Counter, Gauge, Histogram, Registry } from "prom-client";
import { LATENESS_BUCKETS } from "../child/report.ts";
import type { TaskTally } from "../child/messages.ts";
import { assess } from "../listener/health.ts";
import type { ListenerView, RouteEvent } from "../listener/view.ts";

const P = "lvalertmp_";

/** Upper bounds (seconds) of the routing latency histogram. */
export const ROUTING_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1];
/** Upper bounds (seconds) of the snapshot duration histogram. */
export const SNAPSHOT_BUCKETS = [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5];

/** A rejection's reason as a label of few values. */
export function rejectionReason(event: Pick<RouteEvent, "node" | "reason">): string {
  const text = event.reason ?? "";
  if (event.node === null) return "bad_line";
  if (text.startsWith("payload is not JSON")) return "not_json";
  if (text.startsWith("payload must be a JSON object")) return "not_object";
  if (text.includes('no "uid"')) return "no_uid";
  if (text.startsWith('"uid" must be')) return "bad_uid";
  if (text.startsWith("command without a name")) return "command_without_name";
  return "other";
}

function counter(r: Registry, name: string, help: string, labelNames: string[] = []) {
  return new Counter({ name: P + name, help, labelNames, registers: [r] });
}

function histogram(r: Registry, name: string, help: string, buckets: number[]) {
  return new Histogram({ name: P + name, help, labelNames: ["child"], buckets, registers: [r] });
}

/** The metrics of one listener. */
export class Metrics {
  readonly registry: Registry = new Registry();
  #view: ListenerView;
  #off: (() => void)[] = [];
  #alerts;
  #tasks;
  #hist;

  constructor(view: ListenerView) {
    this.#view = view;
    const r = this.registry;
    this.#alerts = {
      received: counter(r, "alerts_received_total", "Inputs received, by node", ["node"]),
      routed: counter(r, "alerts_routed_total", "Alerts routed, by node and child", [
        "node",
        "child",
      ]),
      rejected: counter(r, "alerts_rejected_total", "Inputs rejected, by reason", ["reason"]),
      duplicates: counter(r, "alerts_duplicate_total", "Duplicates dropped, by node and child", [
        "node",
        "child",
      ]),
      unrouted: counter(r, "alerts_unrouted_total", "Alerts on a node no child owns", ["node"]),
      deferred: counter(r, "alerts_deferred_total", "Alerts left on the server", ["child"]),
      applied: counter(r, "alerts_applied_total", "Alerts applied by their child", ["child"]),
      refused: counter(r, "alerts_refused_total", "Alerts refused by their child", ["child"]),
    };
    this.#tasks = {
      executed: counter(r, "tasks_executed_total", "Tasks run", ["child"]),
      failed: counter(r, "tasks_failed_total", "Tasks that threw or timed out", ["child"]),
    };
    this.#hist = {
      lateness: histogram(r, "task_lateness_seconds", "Task start after its due time", [
        ...LATENESS_BUCKETS,
      ]),
      routing: histogram(r, "routing_latency_seconds", "Arrival to journaled", ROUTING_BUCKETS),
      snapshot: histogram(r, "snapshot_duration_seconds", "Snapshot time", SNAPSHOT_BUCKETS),
    };
    this.#gauges();
    this.#restarts();
    if (view.xmpp) this.#session();
    this.#zero();
    this.#listen();
  }

  /** Every configured node and child has its series from the start. */
  #zero(): void {
    const a = this.#alerts;
    for (const [node, child] of this.#view.config.owners) {
      a.received.inc({ node }, 0);
      a.routed.inc({ node, child }, 0);
      a.duplicates.inc({ node, child }, 0);
    }
    for (const { name: child } of this.#view.config.sections) {
      for (const c of [a.applied, a.refused, ...Object.values(this.#tasks)]) c.inc({ child }, 0);
      for (const h of Object.values(this.#hist)) h.zero({ child });
    }
  }

  #listen(): void {
    const view = this.#view;
    const bus = view.children;
    this.#off.push(
      view.events.on("route", (e) => this.#route(e)),
      view.events.on(
        "routed",
        ({ event, latency }) => this.#hist.routing.observe({ child: event.child ?? "" }, latency),
      ),
      bus.on("ack", ({ child, ok, duplicate }) => {
        if (ok) this.#alerts.applied.inc({ child });
        else if (!duplicate) this.#alerts.refused.inc({ child });
      }),
      bus.on("report", ({ child, tally }) => this.#tally(child, tally)),
      bus.on(
        "checkpointed",
        ({ child, seconds }) => this.#hist.snapshot.observe({ child }, seconds),
      ),
    );
  }

  #route(e: RouteEvent): void {
    const a = this.#alerts;
    const node = e.node ?? "";
    const child = e.child ?? "";
    if (e.outcome !== "deferred" || e.reason !== "the listener is stopping") {
      a.received.inc({ node });
    }
    switch (e.outcome) {
      case "routed":
        return a.routed.inc({ node, child });
      case "duplicate":
        return a.duplicates.inc({ node, child });
      case "rejected":
        return a.rejected.inc({ reason: rejectionReason(e) });
      case "unrouted":
        return a.unrouted.inc({ node });
      case "deferred":
        return a.deferred.inc({ child });
      case "ignored":
        return;
      default: {
        const never: never = e.outcome;
        return never;
      }
    }
  }

  /**
   * Adds a child's task outcomes. The histogram takes one observation at
   * a time: each bucket's runs are added at their mean, which lies in the
   * same bucket, so bucket counts and the sum come out exact.
   */
  #tally(child: string, t: TaskTally): void {
    if (t.executed > 0) this.#tasks.executed.inc({ child }, t.executed);
    if (t.failed > 0) this.#tasks.failed.inc({ child }, t.failed);
    const h = this.#hist.lateness.labels({ child });
    t.counts.forEach((n, i) => {
      const mean = (t.sums[i] ?? 0) / n;
      for (let k = 0; k < n; k++) h.observe(mean);
    });
  }

  /** Gauges read from the listener's status when scraped. */
  #gauges(): void {
    const r = this.registry;
    const view = this.#view;
    const warnThr = new Map(view.config.sections.map((s) => [s.name, s.warnThr]));
    const gauge = (name: string, help: string, read: (g: Gauge) => void, labels = ["child"]) =>
      new Gauge({
        name: P + name,
        help,
        labelNames: labels,
        registers: [r],
        collect() {
          read(this);
        },
      });
    const perChild = (name: string, help: string, value: (c: ChildLike) => number) =>
      gauge(name, help, (g) => {
        for (const c of view.childStatus()) g.set({ child: c.child }, value(c));
      });
    perChild("queue_length", "Pending items in the child's queue", (c) => c.queue);
    perChild("queue_warn_threshold", "The child's warnThr", (c) => warnThr.get(c.child) ?? -1);
    perChild(
      "journal_lag_seconds",
      "Longest wait of an alert not yet applied",
      (c) => c.oldestInFlight,
    );
    perChild("alerts_in_flight", "Alerts journaled, not yet applied", (c) => c.inFlight);
    perChild("child_up", "1 while the child runs", (c) => c.state === "ready" ? 1 : 0);
    perChild(
      "child_given_up",
      "1 once the child is given up on",
      (c) => c.state === "given_up" ? 1 : 0,
    );
    gauge(
      "health_status",
      "The status verdict: 0 OK, 1 WARNING, 2 CRITICAL",
      (g) => g.set(assess(view.status()).code),
      [],
    );
    gauge(
      "start_time_seconds",
      "When the listener started (epoch seconds)",
      (g) => g.set(view.started),
      [],
    );
  }

  /** Restarts, counted from the deaths the listener reports when scraped. */
  #restarts(): void {
    const view = this.#view;
    const r = this.registry;
    const restarts = new Map<string, number>();
    new Counter({
      name: P + "child_restarts_total",
      help: "Times the child was restarted after a death",
      labelNames: ["child"],
      registers: [r],
      collect() {
        for (const c of view.childStatus()) {
          const now = restartsOf(c);
          this.inc({ child: c.child }, Math.max(0, now - (restarts.get(c.child) ?? 0)));
          restarts.set(c.child, Math.max(now, restarts.get(c.child) ?? 0));
        }
      },
    });
  }

  /** The XMPP session's metrics (none for a replay). */
  #session(): void {
    const r = this.registry;
    const view = this.#view;
    const reconnects = counter(r, "xmpp_reconnects_total", "Times the session came back");
    reconnects.inc(0);
    this.#off.push(view.events.on("session", ({ reconnect }) => {
      if (reconnect) reconnects.inc();
    }));
    const set = (name: string, help: string, value: () => number) =>
      new Gauge({
        name: P + name,
        help,
        registers: [r],
        collect() {
          this.set(value());
        },
      });
    set(
      "xmpp_session_up",
      "1 while subscribed and caught up",
      () => view.session()?.online ? 1 : 0,
    );
    set(
      "xmpp_nodes_configured",
      "Nodes of the config",
      () => view.session()?.configured.length ?? 0,
    );
    set(
      "xmpp_nodes_subscribed",
      "Nodes the session receives",
      () => view.session()?.subscribed.length ?? 0,
    );
  }

  /** The metrics in Prometheus text format. */
  text(): Promise<string> {
    return this.registry.metrics();
  }

  /** The content type of {@linkcode Metrics.text}. */
  get contentType(): string {
    return this.registry.contentType;
  }

  /** Stops listening. */
  close(): void {
    for (const off of this.#off) off();
    this.#off = [];
  }
}

/** Restarts of a child: its deaths, but the one after which it was given up. */
export function restartsOf(c: { deaths: number; state: string }): number {
  return Math.max(0, c.deaths - (c.state === "given_up" ? 1 : 0));
}

interface ChildLike {
  child: string;
  queue: number;
  oldestInFlight: number;
  inFlight: number;
  state: string;
}
