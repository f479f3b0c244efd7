/**
 * Benchmark handler: fills the queue with far-future items, then adds
 * probe items due at known times; the runtime logs each probe's lateness.
 */

import type { Alert, ChildContext } from "../../lib/mod.ts";
import { QueueItem, Task } from "../../lib/mod.ts";

class Filler extends Task {
  execute(): void {}
}

class Probe extends Task {
  execute(): void {}
}

export function parseAlert(ctx: ChildContext, alert: Alert, t0: number): void {
  const o = (alert.object ?? {}) as {
    pending?: number;
    probes?: number;
    start?: number;
    spacing?: number;
  };
  for (let i = 0; i < (o.pending ?? 0); i++) {
    ctx.queue.insert(
      new QueueItem(t0, [new Filler(3600 + i * 0.001)], { graceid: `F${i}` }),
    );
  }
  for (let i = 0; i < (o.probes ?? 0); i++) {
    ctx.queue.insert(
      new QueueItem(t0, [new Probe((o.start ?? 1) + i * (o.spacing ?? 0.01))], {
        graceid: "probe",
      }),
    );
  }
}
