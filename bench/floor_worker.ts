/// <reference no-default-lib="true" />
/// <reference lib="deno.worker" />
/**
 * The floor subscriber's child (bench/floor_subscriber.ts): parses each
 * alert, counts its latency, queues an item due 0.5 s later in a plain
 * array (one timer for the earliest), and answers each batch with the
 * last position it applied.
 *
 * @module
 */

import { PhaseCounter, type PhaseReport } from "./phase_counter.ts";

/** One durable alert, as the floor subscriber posts it. */
export interface FloorAlert {
  seq: number;
  t0: number;
  text: string;
}

/** The answer to a batch: the last position applied, and a phase's report at its end marker. */
export interface FromFloor {
  applied: number;
  phase?: PhaseReport;
}

interface Item {
  due: number;
  uid: string;
  summary: string;
}

const now = () => performance.timeOrigin + performance.now();
const counter = new PhaseCounter();
const items: Item[] = [];
let head = 0;
let timer: ReturnType<typeof setTimeout> | undefined;
function runDue(): void {
  timer = undefined;
  const t = now();
  // Running an item: a handler's task would log, below the benchmark's level.
  while (head < items.length && items[head]!.due <= t) head++;
  if (head > 4096 && head * 2 > items.length) {
    items.splice(0, head);
    head = 0;
  }
  arm();
}

function arm(): void {
  if (timer !== undefined || head >= items.length) return;
  timer = setTimeout(runDue, Math.max(0, items[head]!.due - now()));
}

self.onmessage = ({ data }: MessageEvent<FloorAlert[]>) => {
  let phase: PhaseReport | undefined;
  for (const { text } of data) {
    const alert = JSON.parse(text);
    const t = now();
    const report = counter.take(alert, t);
    if (report) phase = report;
    else items.push({ due: t + 500, uid: alert.uid, summary: `${alert.alert_type} ${alert.uid}` });
  }
  arm();
  const answer: FromFloor = { applied: data.at(-1)?.seq ?? 0, ...(phase ? { phase } : {}) };
  self.postMessage(answer);
};
