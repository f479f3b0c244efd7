/**
 * The test handler, timed: records how long after publication each alert
 * reached parseAlert, and how long of that after the listener took it in
 * (`t0`: journal, worker hop, child), and reports each phase at its end
 * marker.
 */

import type { Alert, ChildContext, Ini } from "../../lib/mod.ts";
import * as test from "../../workers/handlers/test.ts";

let latencies: number[] = [];
let afterArrival: number[] = [];
let first = 0;
let last = 0;

export const validateConfig = test.validateConfig;

export function parseAlert(ctx: ChildContext, alert: Alert, t0: number, config: Ini): void {
  const t = ctx.now() * 1000;
  if (typeof alert.end === "string") {
    ctx.log.event("warning", "bench_phase", {
      phase: alert.end,
      count: latencies.length,
      first,
      last,
      latencies,
      afterArrival,
    });
    latencies = [];
    afterArrival = [];
    return;
  }
  if (latencies.length === 0) first = t;
  last = t;
  latencies.push(t - (alert.sent as number));
  afterArrival.push(t - t0 * 1000);
  test.parseAlert(ctx, alert, t0, config);
}
