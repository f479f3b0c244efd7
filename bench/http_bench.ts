/**
 * Routing latency (arrival to journaled and handed to the child) of a
 * listener with `--http`, replaying alerts at a steady pace, without and
 * then with 100 viewers loading its status page over and over from
 * another process. The listener runs in this process so that each alert's
 * latency is read exactly, from the view the HTTP server watches.
 */

import { join } from "node:path";
import { cpuUsage } from "node:process";
import { parseListenArgs } from "../lib/config/cli.ts";
import { StatusServer } from "../lib/http/mod.ts";
import { listen } from "../lib/listener/listen.ts";

/** One phase's figures. */
export interface HttpBenchRow {
  name: string;
  alerts: number;
  p50: number;
  p99: number;
  max: number;
  /** Page loads (page + first event) done meanwhile. */
  loads: number;
  /** The listener's event loop: p99 and worst delay of a 10 ms timer, ms. */
  loopP99: number;
  loopMax: number;
  /** CPU time of the listener's process (all its threads) over the phase, ms. */
  cpuMs: number;
}

/** Delays of a 10 ms timer on this event loop, until stopped. */
function loopProbe(): () => number[] {
  const lags: number[] = [];
  let last = performance.now();
  const timer = setInterval(() => {
    const now = performance.now();
    lags.push(Math.max(0, now - last - 10));
    last = now;
  }, 10);
  return () => {
    clearInterval(timer);
    return lags.toSorted((a, b) => a - b);
  };
}

const ROOT = new URL("../", import.meta.url).pathname;

function quantile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? NaN;
}

async function files(dir: string, alerts: number, rate: number): Promise<void> {
  await Deno.writeTextFile(
    join(dir, "l.ini"),
    "[alpha]\nnodes = a1\nchildConfig = c.ini\n\n[beta]\nnodes = b1\nchildConfig = c.ini\n",
  );
  await Deno.writeTextFile(
    join(dir, "c.ini"),
    "[general]\nprocess_type = test\nlog_level = 30\nprint2stdout = False\n\n" +
      "[test]\ndelays = 0.05 120\nrepeats = 0\n",
  );
  const lines = Array.from({ length: alerts }, (_, i) =>
    JSON.stringify({
      node: i % 2 ? "a1" : "b1",
      t: i / rate,
      id: `i${i}`,
      payload: { uid: `S${i}`, alert_type: "new", object: { far: 1e-9, pad: "x".repeat(600) } },
    }));
  await Deno.writeTextFile(join(dir, "r.jsonl"), lines.join("\n") + "\n");
}

async function phase(
  name: string,
  clients: number,
  pause: number,
  alerts: number,
  rate: number,
): Promise<HttpBenchRow> {
  const dir = await Deno.makeTempDir({ prefix: "lvalertmp-bench-http-" });
  await files(dir, alerts, rate);
  const parsed = parseListenArgs([
    "-c",
    join(dir, "l.ini"),
    "--replay",
    join(dir, "r.jsonl"),
    "--state-dir",
    join(dir, "s"),
    "--log-format",
    "json",
    "--http",
    "127.0.0.1:0",
  ]);
  if (!parsed.ok) throw new Error(parsed.message);
  const latencies: number[] = [];
  const stop = new AbortController();
  let loader: Deno.ChildProcess | undefined;
  const run = listen(parsed.value, {
    signal: stop.signal,
    watch: (view) => {
      const server = StatusServer.start({ hostname: "127.0.0.1", port: 0, token: undefined }, view);
      view.events.on("routed", ({ latency }) => {
        latencies.push(latency * 1000);
        if (latencies.length === alerts) stop.abort("done");
      });
      if (clients > 0) {
        // The viewers would be on other machines: here they share the cores, at a low priority.
        loader = new Deno.Command("nice", {
          args: [
            "-n",
            "19",
            Deno.execPath(),
            "run",
            "--allow-net",
            join(ROOT, "bench/http_load.ts"),
            `http://127.0.0.1:${server.address.port}/`,
            String(clients),
            String(pause),
          ],
          stdin: "piped",
          stdout: "piped",
          stderr: "inherit",
        }).spawn();
      }
      return Promise.resolve(server);
    },
  });
  const lag = loopProbe();
  const cpu = cpuUsage();
  await run;
  const used = cpuUsage(cpu);
  const lags = lag();
  let loads = 0;
  if (loader) {
    await loader.stdin.close();
    loads = JSON.parse(new TextDecoder().decode((await loader.output()).stdout)).loads;
  }
  await Deno.remove(dir, { recursive: true });
  const sorted = latencies.toSorted((a, b) => a - b);
  return {
    name,
    alerts: sorted.length,
    p50: quantile(sorted, 0.5),
    p99: quantile(sorted, 0.99),
    max: sorted.at(-1) ?? NaN,
    loads,
    loopP99: quantile(lags, 0.99),
    loopMax: lags.at(-1) ?? NaN,
    cpuMs: (used.user + used.system) / 1000,
  };
}

/** The phases, alternating for `rounds` rounds, `alerts` at `rate` a second in each. */
export async function benchHttp(rounds = 3, alerts = 3000, rate = 300): Promise<HttpBenchRow[]> {
  const rows: HttpBenchRow[] = [];
  for (let i = 0; i < rounds; i++) {
    rows.push(await phase("no viewers", 0, 0, alerts, rate));
    rows.push(await phase("100 viewers, a load a second each", 100, 1000, alerts, rate));
    rows.push(await phase("100 viewers, loading without pause", 100, 0, alerts, rate));
  }
  return rows;
}

if (import.meta.main) {
  for (const r of await benchHttp()) console.log(JSON.stringify(r));
}
