/**
 * PipelineThrottle (§3): per `<group>_<pipeline>[_<search>]`, the events
 * of the last `throttleWin` seconds; more distinct triggers than a Poisson
 * upper limit throttles the pipeline. The throttle is a queue item keyed
 * by its key, so it is checkpointed with the queue; its one task drops
 * old events and removes the item once none is left.
 *
 * @module
 */

import { type ChildContext, type CommandSpec, QueueItem, Task } from "../../../lib/mod.ts";
import type { ThrottleParams } from "./config.ts";
import { throttleKey } from "./record.ts";

/**
 * The smallest N >= 0 with P(n <= N) >= conf for a Poisson mean `k`
 * (a one-sided upper limit), summed in log space; conf = 1 is Infinity.
 *
 * @example
 * ```ts
 * poissonThreshold(1e-5 * 3600, 0.9999); // 2
 * poissonThreshold(1.6e-3 * 3600, 0.9999); // 17
 * ```
 */
export function poissonThreshold(k: number, conf: number): number {
  if (!(conf >= 0 && conf <= 1)) throw new RangeError("unphysical confidence level!");
  if (conf === 1) return Infinity;
  if (k <= 0) return 0;
  const logConf = Math.log(conf);
  const logK = Math.log(k);
  let logTerm = -k; // ln P(0)
  let logSum = logTerm;
  let n = 0;
  while (logSum < logConf) {
    n++;
    logTerm += logK - Math.log(n);
    const hi = Math.max(logSum, logTerm);
    logSum = hi + Math.log(Math.exp(logSum - hi) + Math.exp(logTerm - hi));
    if (n > 1e7) throw new RangeError(`no threshold below 1e7 for k=${k}, conf=${conf}`);
  }
  return n;
}

/** One event a throttle counts. */
export interface ThrottledEvent {
  graceid: string;
  /** When its `new` alert arrived. */
  t0: number;
  gpstime: number;
}

/** The throttle of one key, with its events. */
export class PipelineThrottle extends QueueItem {
  key: string;
  params: ThrottleParams;
  /** Triggers closer than this in gpstime count once. */
  grouperWin: number;
  nthr: number | null;
  events: ThrottledEvent[] = [];

  constructor(t0: number, key: string, params: ThrottleParams, grouperWin: number) {
    super(t0, [new ManageThrottle(params.throttleWin)], { graceid: key });
    this.key = key;
    this.params = params;
    this.grouperWin = grouperWin;
    const nthr = poissonThreshold(params.targetRate * params.throttleWin, params.conf);
    // JSON has no Infinity: null stands for "never throttles".
    this.nthr = Number.isFinite(nthr) ? nthr : null;
  }

  /** Triggers whose gpstimes differ from every other counted one by at least grouperWin. */
  distinct(): number {
    const times: number[] = [];
    for (const e of this.events) {
      if (times.every((t) => Math.abs(e.gpstime - t) >= this.grouperWin)) times.push(e.gpstime);
    }
    return times.length;
  }

  /** Whether the pipeline is throttled now. */
  throttled(): boolean {
    return this.nthr !== null && this.distinct() > this.nthr;
  }

  /**
   * Adds an event; returns the graceids to label `EM_Throttled`: this one
   * if the throttle was on already, every one if it just turned on.
   */
  addEvent(event: ThrottledEvent): string[] {
    if (this.events.some((e) => e.graceid === event.graceid)) return [];
    const was = this.throttled();
    const at = this.events.findIndex((e) => event.t0 < e.t0);
    this.events.splice(at < 0 ? this.events.length : at, 0, event);
    if (was) return [event.graceid];
    return this.throttled() ? this.events.map((e) => e.graceid) : [];
  }
}

/** Drops events older than the window; re-arms for the oldest left, or ends the throttle. */
export class ManageThrottle extends Task {
  execute(ctx: ChildContext, item: QueueItem): void {
    const th = item as PipelineThrottle;
    const now = ctx.now();
    const win = th.params.throttleWin;
    const manual = th.params.requireManualReset && th.throttled();
    if (manual) {
      // Held until resetThrottle; look again a window later (timers stay short).
      this.expiration = Math.max(now, this.expiration) + win;
      return;
    }
    th.events = th.events.filter((e) => e.t0 > now - win);
    const oldest = th.events[0];
    if (oldest) this.expiration = Math.max(oldest.t0 + win, this.expiration + 1e-3);
    ctx.log.event("info", "ap_throttle", {
      key: th.key,
      events: th.events.length,
      throttled: th.throttled(),
    });
  }
}

/** The throttle of a key, if there is one. */
export function findThrottle(ctx: ChildContext, key: string): PipelineThrottle | undefined {
  return ctx.queue.byGraceId(key).find((i): i is PipelineThrottle => i instanceof PipelineThrottle);
}

function word(value: unknown): string {
  return value === undefined || value === null ? "" : String(value);
}

/** `resetThrottle`: empties a pipeline's throttle; the next event starts a fresh one (§7). */
export const resetThrottle: CommandSpec = {
  name: "resetThrottle",
  description: "empties the PipelineThrottle of 'group', 'pipeline' and optional 'search' " +
    "(the next event starts a fresh one; labels already applied stay)",
  required: ["group", "pipeline"],
  optional: ["search"],
  run(ctx, kwargs) {
    const key = throttleKey(word(kwargs.group), word(kwargs.pipeline), word(kwargs.search));
    const log = (message: string, fields = {}) =>
      ctx.log.event("info", "command", { command: "resetThrottle", key, ...fields }, message);
    log(`received PipelineThrottle throttleKey: ${key}`);
    const th = findThrottle(ctx, key);
    if (!th) {
      log("Did not find PipelineThrottle QueueItem in QueueByGraceid");
      return `no PipelineThrottle for ${key}`;
    }
    const before = th.events.map((e) => [e.graceid, e.t0]);
    log("Found PipelineThrottle QueueItem, calling reset method");
    log(`Before reset, events list: ${JSON.stringify(before)}`, { events: before.length });
    th.events = [];
    th.complete = true;
    log("After reset, events list: []");
    return `reset PipelineThrottle ${key} (${before.length} event(s) dropped)`;
  },
};
