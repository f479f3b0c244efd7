/**
 * event_supervisor throughput: checks per second one child sustains when
 * GraceDB takes 50 ms to answer every request, beside the serial bound
 * (one check at a time, each waiting for its read and its annotation).
 *
 * A real worker (the listener's Supervisor) runs the handler; the GraceDB
 * test server runs in this process with a 50 ms delay injected on every
 * request. N events arrive at once; each has one `far` check (read the
 * event, then write the `ES:` annotation), all due one second later. The
 * figure is N over the time from that deadline to the N-th annotation
 * (best of three rounds: the machine is shared).
 */

import { join } from "node:path";
import { loadListenerConfig } from "../lib/config/config.ts";
import { Logger } from "../lib/core/log.ts";
import { Supervisor } from "../lib/listener/supervisor.ts";
import { GraceDbTestServer } from "../tests/gracedb_server.ts";

/** One measured run. */
export interface EsThroughput {
  checks: number;
  /** GraceDB answer time, ms. */
  latencyMs: number;
  /** Requests each check makes one after the other. */
  serialRequests: number;
  checksPerSecond: number;
  /** What a child checking one at a time could reach: 1000 / (requests × latency). */
  serialBound: number;
  /** Seconds from the deadline to the last annotation. */
  seconds: number;
}

async function once(checks: number, latencyMs: number): Promise<EsThroughput> {
  const dir = await Deno.makeTempDir({ prefix: "lvalertmp-bench-es-" });
  await using gdb = await GraceDbTestServer.start();
  try {
    const ids = Array.from({ length: checks }, () => gdb.addEvent({ far: 1e-9 }));
    gdb.inject({ path: /.*/, delayMs: latencyMs, times: Number.MAX_SAFE_INTEGER });
    await Deno.writeTextFile(
      join(dir, "l.ini"),
      "[bench]\nnodes = n\nchildConfig = c.ini\nwarnThr = 1e9\n",
    );
    await Deno.writeTextFile(
      join(dir, "c.ini"),
      `[general]\nprocess_type = event_supervisor\ngracedb = ${gdb.url}\nannotate = True\n` +
        "warnings = False\nlog_level = 30\nprint2stdout = False\ngraceid_logs = False\n" +
        "[far]\ndt = 3\nmin far = 0\nmax far = 1\nemail on success =\nemail on failure =\n" +
        "email on exception =\n",
    );
    const supervisor = new Supervisor({
      config: await loadListenerConfig(join(dir, "l.ini")),
      stateDir: join(dir, "state"),
      logFormat: "json",
      log: new Logger({ child: null, format: "json", level: 40, sinks: [] }),
      identity: { hostname: "bench", username: "bench", pid: Deno.pid },
    });
    await supervisor.start();
    const t0 = Date.now() / 1000;
    for (const [i, uid] of ids.entries()) {
      supervisor.deliver({
        child: "bench",
        node: "n",
        id: `a${i}`,
        alert: { uid, alert_type: "new", description: "", file: "", object: { far: 1e-9 } },
        t0,
      });
    }
    const posts = () => gdb.requests.filter((r) => r.method === "POST").length;
    const deadline = Date.now() + 120_000;
    while (posts() < checks && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    const last = Math.max(...gdb.requests.filter((r) => r.method === "POST").map((r) => r.time));
    await supervisor.shutdown();
    if (posts() < checks) throw new Error(`only ${posts()} of ${checks} checks annotated`);
    const seconds = (last - (t0 + 3) * 1000) / 1000;
    return {
      checks,
      latencyMs,
      serialRequests: 2,
      checksPerSecond: checks / seconds,
      serialBound: 1000 / (2 * latencyMs),
      seconds,
    };
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** Runs the benchmark at a few sizes, `rounds` times each; keeps each size's best round. */
export async function benchEventSupervisor(
  sizes: readonly number[] = [100, 1000],
  latencyMs = 50,
  rounds = 3,
): Promise<EsThroughput[]> {
  const out: EsThroughput[] = [];
  for (const n of sizes) {
    let best: EsThroughput | undefined;
    for (let i = 0; i < rounds; i++) {
      const r = await once(n, latencyMs);
      if (!best || r.checksPerSecond > best.checksPerSecond) best = r;
    }
    out.push(best!);
  }
  return out;
}

if (import.meta.main) {
  for (const r of await benchEventSupervisor()) console.log(r);
}
