/**
 * Timer lateness on a real worker: the same probes on an empty queue and
 * on a queue holding many pending items, one after the other.
 */

import { join } from "node:path";
import { loadListenerConfig } from "../lib/config/config.ts";
import { Logger } from "../lib/core/log.ts";
import { Supervisor } from "../lib/listener/supervisor.ts";

export interface Lateness {
  pending: number;
  /** What else the child does while probes run. */
  load: Load;
  count: number;
  p50: number;
  p99: number;
  max: number;
  /** Snapshots written while the probes ran (their wall time, ms). */
  snapshots: number[];
}

/**
 * `quiet`: nothing else; `alerts`: alerts arrive at 200/s through the
 * journal; `snapshot`: only the probes due while the child writes a
 * snapshot of its whole queue count (4x the probes, so that one comes
 * due meanwhile).
 */
export type Load = "quiet" | "alerts" | "snapshot";

function quantile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ??
    NaN;
}

const now = () => (performance.timeOrigin + performance.now()) / 1000;

async function run(
  pending: number,
  probes: number,
  spacing: number,
  load: Load,
): Promise<Lateness> {
  const dir = await Deno.makeTempDir({ prefix: "lvalertmp-bench-" });
  try {
    const handler = new URL("./handlers/lateness.ts", import.meta.url).pathname;
    await Deno.writeTextFile(
      join(dir, "l.ini"),
      "[bench]\nnodes = n\nchildConfig = c.ini\nwarnThr = 1e9\n",
    );
    // Debug level logs each checkpoint with its duration.
    await Deno.writeTextFile(
      join(dir, "c.ini"),
      `[general]\nprocess_type = lateness\nhandler = ${handler}\nlog_level = ${
        load === "snapshot" ? 10 : 20
      }\nprint2stdout = False\n`,
    );
    const supervisor = new Supervisor({
      config: await loadListenerConfig(join(dir, "l.ini")),
      stateDir: join(dir, "state"),
      logFormat: "json",
      log: new Logger({ child: null, format: "json", level: 30, sinks: [] }),
      identity: { hostname: "bench", username: "bench", pid: Deno.pid },
    });
    supervisor.events.on("fatal", ({ error }) => {
      throw error;
    });
    await supervisor.start();
    const deliver = (uid: string, object: Record<string, number>) =>
      supervisor.deliver({
        child: "bench",
        node: "n",
        id: null,
        alert: { uid, alert_type: "new", object },
        t0: now(),
      });
    deliver("fill", { pending });
    // Let the fill land, and its checkpoint be written, before probes are
    // timed (the next checkpoint of so big a queue is ~10 s away, since
    // checkpoints take at most a tenth of the time).
    const status = () => supervisor.status()[0]!;
    while (status().queue < pending || status().checkpointSeq < 1) {
      await new Promise((r) => setTimeout(r, 20));
    }
    const start = 0.3;
    // `snapshot`: probes for long enough that the next checkpoint comes
    // while they run; an alert every 100 ms keeps the queue changed.
    const count = load === "snapshot" ? probes * 4 : probes;
    deliver("probe", { probes: count, start, spacing });
    const window = (start + count * spacing + 0.5) * 1000;
    const every = load === "alerts" ? 5 : load === "snapshot" ? 100 : 0;
    if (every > 0) {
      // Alerts at a steady pace, each journaled and applied, for the whole window.
      const begin = performance.now();
      for (let i = 0; performance.now() - begin < window; i++) {
        deliver(`a${i}`, {});
        const next = begin + (i + 1) * every;
        await new Promise((r) => setTimeout(r, Math.max(0, next - performance.now())));
      }
    } else await new Promise((r) => setTimeout(r, window));
    await supervisor.shutdown();
    const events = (await Deno.readTextFile(join(dir, "lateness_c.log"))).split("\n")
      .filter((l) => l.includes('"task_executed"') || l.includes('"checkpoint"'))
      .map((l) => JSON.parse(l));
    // A checkpoint is logged as it ends, with its duration.
    const writes = events.filter((e) => e.event === "checkpoint").map((e) => {
      const end = Date.parse(e.ts) / 1000;
      return { from: end - e.ms / 1000, to: end, ms: e.ms as number };
    });
    const probed = events.filter((e) => e.event === "task_executed" && e.task === "Probe");
    if (probed.length !== count) {
      throw new Error(`expected ${count} probes, got ${probed.length}`);
    }
    const during = probed.filter((e) => writes.some((w) => e.due >= w.from && e.due <= w.to));
    const counted = load === "snapshot" ? during : probed;
    if (counted.length === 0) throw new Error("no probe came due during a snapshot");
    const late = counted.map((e) => e.lateness_ms as number).sort((a, b) => a - b);
    const first = probed[0].due;
    const last = probed.at(-1).due;
    return {
      pending,
      load,
      count: late.length,
      p50: quantile(late, 0.5),
      p99: quantile(late, 0.99),
      max: late.at(-1)!,
      snapshots: writes.filter((w) => w.to >= first && w.from <= last).map((w) => w.ms),
    };
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** An empty queue, then `pending` items quiet, under alerts, and during a snapshot. */
export async function benchLateness(
  pending = 1e5,
  probes = 1000,
  spacing = 0.005,
): Promise<Lateness[]> {
  return [
    await run(0, probes, spacing, "quiet"),
    await run(pending, probes, spacing, "quiet"),
    await run(pending, probes, spacing, "alerts"),
    await run(pending, probes, spacing, "snapshot"),
  ];
}
