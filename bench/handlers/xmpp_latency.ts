/**
 * The test handler, timed: records how long after publication each alert
 * reached parseAlert, and how long of that after the listener took it in
 * (`t0`: journal, worker hop, child), and reports each phase at its end
 * marker.
 */

import type { Alert, ChildContext, Ini } from "../../lib/mod.ts";
import * as test from "../../workers/handlers/test.ts";
import { PhaseCounter } from "../phase_counter.ts";

const counter = new PhaseCounter();
let afterArrival: number[] = [];

export const validateConfig = test.validateConfig;

export function parseAlert(ctx: ChildContext, alert: Alert, t0: number, config: Ini): void {
  const t = ctx.now() * 1000;
  const report = counter.take(alert, t);
  if (report) {
    ctx.log.event("warning", "bench_phase", { ...report, afterArrival });
    afterArrival = [];
    return;
  }
  afterArrival.push(t - t0 * 1000);
  test.parseAlert(ctx, alert, t0, config);
}
