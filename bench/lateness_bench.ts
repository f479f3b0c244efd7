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
  count: number;
  p50: number;
  p99: number;
  max: number;
}

function quantile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ??
    NaN;
}

async function run(
  pending: number,
  probes: number,
  spacing: number,
): Promise<Lateness> {
  const dir = await Deno.makeTempDir({ prefix: "lvalertmp-bench-" });
  try {
    const handler = new URL("./handlers/lateness.ts", import.meta.url).pathname;
    await Deno.writeTextFile(
      join(dir, "l.ini"),
      "[bench]\nnodes = n\nchildConfig = c.ini\nwarnThr = 1e9\n",
    );
    await Deno.writeTextFile(
      join(dir, "c.ini"),
      `[general]\nprocess_type = lateness\nhandler = ${handler}\nlog_level = 20\nprint2stdout = False\n`,
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
    const now = () => (performance.timeOrigin + performance.now()) / 1000;
    supervisor.deliver({
      child: "bench",
      node: "n",
      id: null,
      alert: { uid: "fill", alert_type: "new", object: { pending } },
      t0: now(),
    });
    // Let the fill land, and its checkpoint be written, before probes are
    // timed (the next checkpoint of so big a queue is ~10 s away).
    while (supervisor.status()[0]!.queue < pending || supervisor.status()[0]!.checkpointSeq < 1) {
      await new Promise((r) => setTimeout(r, 50));
    }
    const start = 0.5;
    supervisor.deliver({
      child: "bench",
      node: "n",
      id: null,
      alert: {
        uid: "probe",
        alert_type: "new",
        object: { probes, start, spacing },
      },
      t0: now(),
    });
    await new Promise((r) => setTimeout(r, (start + probes * spacing + 1) * 1000));
    await supervisor.shutdown();
    const text = await Deno.readTextFile(join(dir, "lateness_c.log"));
    const late = text.split("\n").filter((l) => l.includes('"task_executed"'))
      .map((l) => JSON.parse(l))
      .filter((e) => e.task === "Probe").map((e) => e.lateness_ms as number)
      .sort((a, b) => a - b);
    if (late.length !== probes) {
      throw new Error(`expected ${probes} probes, got ${late.length}`);
    }
    return {
      pending,
      count: late.length,
      p50: quantile(late, 0.5),
      p99: quantile(late, 0.99),
      max: late.at(-1)!,
    };
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

export async function benchLateness(
  pending = 1e5,
  probes = 1000,
  spacing = 0.005,
): Promise<Lateness[]> {
  return [await run(0, probes, spacing), await run(pending, probes, spacing)];
}
