/**
 * XMPP throughput and latency, side by side against one Prosody: a bare
 * stock @xmpp/client subscriber; the design's floor (bench/floor_subscriber.ts:
 * the same client, the listener's journal, a worker, nothing else); then
 * lvalert_listenMP routing to a test-handler child. Each gets a burst
 * (throughput) and a paced stream (latency from publish to delivery, to
 * the floor's worker, or to parseAlert for the listener).
 */

import { join } from "node:path";
import { Pubsub } from "../lib/xmpp/pubsub.ts";
import { createXmppClient } from "../lib/xmpp/client.ts";
import { LISTEN_FLAGS, MAIN, ROOT } from "../tests/helpers.ts";
import { DOMAIN, Prosody, PUBSUB, USERS } from "../tests/prosody.ts";

export interface XmppRow {
  name: string;
  burstRate: number;
  p50: number;
  p99: number;
  /**
   * The listener's paced latency in two parts: publication to the moment
   * the listener took the alert in, and from then to parseAlert (journal,
   * worker hop, child). The bare subscriber's whole latency is the first
   * part's counterpart.
   */
  split?: { arrival: Quantiles; afterArrival: Quantiles };
  /** CPU time of the whole process (all threads) per alert received, µs. */
  cpuPerAlert: number;
  /** The same, by thread: main (XMPP, routing, journal), worker (the child), other (I/O, V8). */
  cpuThreads: { main: number; worker: number; other: number };
}

interface Phase {
  phase: string;
  count: number;
  first: number;
  last: number;
  latencies: number[];
  /** The listener's: milliseconds from taking each alert in to parseAlert. */
  afterArrival?: number[];
}

/** Milliseconds at the 50th and 99th percentile. */
export interface Quantiles {
  p50: number;
  p99: number;
}

/** Where the listener writes a CPU profile of its thread, when set. */
const PROFILE_DIR = Deno.env.get("LVALERTMP_CPU_PROF");
const now = () => performance.timeOrigin + performance.now();
const PAD = "x".repeat(900);

function quantile(values: number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? NaN;
}

async function publishBurst(
  pubsub: Pubsub,
  node: string,
  count: number,
  window = 200,
): Promise<void> {
  for (let i = 0; i < count; i += window) {
    const batch = [];
    for (let j = i; j < Math.min(count, i + window); j++) {
      batch.push(
        pubsub.publish(
          node,
          JSON.stringify({ uid: `B${j}`, alert_type: "new", sent: now(), object: { pad: PAD } }),
        ),
      );
    }
    await Promise.all(batch);
  }
}

async function publishPaced(pubsub: Pubsub, node: string, count: number): Promise<void> {
  for (let i = 0; i < count; i++) {
    await pubsub.publish(
      node,
      JSON.stringify({ uid: `P${i}`, alert_type: "new", sent: now(), object: { pad: PAD } }),
    );
    await new Promise((r) => setTimeout(r, 2));
  }
}

/** Reads JSON lines from a process's stdout, handing each to `on`. */
async function readLines(
  stream: ReadableStream<Uint8Array>,
  on: (v: Record<string, unknown>) => void,
) {
  let partial = "";
  for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
    const lines = (partial + chunk).split("\n");
    partial = lines.pop() ?? "";
    for (const line of lines) {
      if (line.startsWith("{")) on(JSON.parse(line));
    }
  }
}

/** Waits until `get` returns something. */
async function until<T>(get: () => T | undefined, seconds = 120): Promise<T> {
  const end = Date.now() + seconds * 1000;
  for (;;) {
    const v = get();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error("benchmark timed out");
    await new Promise((r) => setTimeout(r, 20));
  }
}

/**
 * The fsync probe in a worker of this process, run while one subscriber
 * takes its paced alerts: see `fsync_probe_worker.ts`.
 */
class BackgroundProbe {
  #worker = new Worker(new URL("./fsync_probe_worker.ts", import.meta.url), { type: "module" });
  #dir: string;

  constructor(dir: string) {
    this.#dir = dir;
  }

  /** Runs the probe while `work` runs; resolves with each sync's milliseconds. */
  async during(work: () => Promise<unknown>): Promise<number[]> {
    const took = new Promise<number[]>((resolve, reject) => {
      this.#worker.onmessage = (event: MessageEvent<number[]>) => resolve(event.data);
      this.#worker.onerror = (event) => {
        event.preventDefault();
        reject(new Error(`fsync probe: ${event.message}`));
      };
    });
    this.#worker.postMessage({ type: "start", path: join(this.#dir, "fsync-probe-bg") });
    try {
      await work();
    } finally {
      this.#worker.postMessage({ type: "stop" });
    }
    return await took;
  }

  [Symbol.dispose](): void {
    this.#worker.terminate();
  }
}

/**
 * Paced alerts on `node`, then an end marker; resolves with the phase
 * once the subscriber has them all.
 */
async function pacedPhase(
  pubsub: Pubsub,
  node: string,
  phases: Phase[],
  phase: string,
  count: number,
): Promise<Phase> {
  await publishPaced(pubsub, node, count);
  await pubsub.publish(node, JSON.stringify({ uid: "end", alert_type: "new", end: phase }));
  return await until(() => phases.find((x) => x.phase === phase));
}

/** One burst and one paced stream on `node`; resolves with both phases. */
async function runPhases(
  pubsub: Pubsub,
  node: string,
  phases: Phase[],
  round: number,
  burst: number,
  paced: number,
): Promise<[Phase, Phase]> {
  await publishBurst(pubsub, node, burst);
  await pubsub.publish(
    node,
    JSON.stringify({ uid: "end", alert_type: "new", end: `burst-${round}` }),
  );
  const b = await until(() => phases.find((p) => p.phase === `burst-${round}`));
  const p = await pacedPhase(pubsub, node, phases, `paced-${round}`, paced);
  return [b, p];
}

/** CPU seconds (user + system, all threads) a process has used so far. */
async function cpuSeconds(pid: number): Promise<number> {
  const stat = await Deno.readTextFile(`/proc/${pid}/stat`);
  // Fields after the command name (which may hold spaces): utime is the 12th, stime the 13th.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/** CPU seconds per kind of thread: the main thread, workers, I/O pool, V8 helpers. */
export async function threadSeconds(pid: number): Promise<Record<string, number>> {
  const kinds: Record<string, number> = {};
  for await (const task of Deno.readDir(`/proc/${pid}/task`)) {
    let stat: string;
    try {
      stat = await Deno.readTextFile(`/proc/${pid}/task/${task.name}/stat`);
    } catch {
      continue; // the thread ended meanwhile
    }
    const name = stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")"));
    const kind = task.name === String(pid)
      ? "main"
      : name.startsWith("worker-")
      ? "worker"
      : name.startsWith("tokio")
      ? "io"
      : "v8";
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    kinds[kind] = (kinds[kind] ?? 0) + (Number(fields[11]) + Number(fields[12])) / 100;
  }
  return kinds;
}

/** CPU seconds (user + system) the calling thread has used so far (10 ms ticks). */
function threadCpuSeconds(): number {
  const stat = Deno.readTextFileSync("/proc/thread-self/stat");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/**
 * One 1 KB write plus `fdatasync`, `count` times, in `dir` (the state
 * folder's disk): the floor under the journal's latency. Milliseconds
 * each, and the CPU seconds they took in all (mostly the kernel's: what
 * each sync of the journal costs, on whichever thread makes it).
 */
export function fsyncProbe(dir: string, count = 200): { took: number[]; cpu: number } {
  const path = join(dir, "fsync-probe");
  const file = Deno.openSync(path, { write: true, create: true, append: true });
  const line = new TextEncoder().encode("x".repeat(1023) + "\n");
  const took: number[] = [];
  const cpu = threadCpuSeconds();
  try {
    for (let i = 0; i < count; i++) {
      const start = performance.now();
      file.writeSync(line);
      file.syncDataSync();
      took.push(performance.now() - start);
    }
  } finally {
    file.close();
    Deno.removeSync(path);
  }
  return { took, cpu: threadCpuSeconds() - cpu };
}

/** The fsync probe's figures, over every round of a run. */
export interface FsyncRow {
  /** Between rounds, with nothing else running. */
  p50: number;
  p99: number;
  /** CPU milliseconds per write + sync. */
  cpu: number;
  /**
   * Under the benchmark's load: every 2 ms in a worker, while the bare
   * subscriber takes paced alerts (a phase of its own, not measured).
   */
  loaded: { p50: number; p99: number };
}

function rate(p: Phase): number {
  return (p.count - 1) / ((p.last - p.first) / 1000);
}

/**
 * Starts a plain subscriber (`bare_subscriber.ts`, or `floor_subscriber.ts`
 * with its journal in `dir`) on `node`; resolves once it is subscribed.
 */
async function startPlain(
  server: Prosody,
  script: "bare" | "floor",
  dir: string,
  node: string,
  phases: Phase[],
) {
  let ready = false;
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-net",
      "--allow-env",
      ...(script === "floor" ? [`--allow-read`, `--allow-write=${dir}`] : []),
      new URL(`./${script}_subscriber.ts`, import.meta.url).pathname,
      String(server.port),
      USERS.other,
      node,
      ...(script === "floor" ? [dir] : []),
    ],
    env: { DENO_CERT: server.caFile },
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const reading = readLines(
    child.stdout,
    (v) => v.ready ? ready = true : phases.push(v as unknown as Phase),
  );
  await until(() => ready || undefined);
  return { child, reading };
}

/** Starts the listener with a timed test-handler child on `node`. */
async function startListener(server: Prosody, dir: string, node: string, phases: Phase[]) {
  const handler = new URL("./handlers/xmpp_latency.ts", import.meta.url).pathname;
  await Deno.writeTextFile(
    join(dir, "l.ini"),
    `[bench]\nnodes = ${node}\nchildConfig = c.ini\nwarnThr = 1e9\n`,
  );
  await Deno.writeTextFile(
    join(dir, "c.ini"),
    `[general]\nprocess_type = test\nhandler = ${handler}\nlog_level = 30\n[test]\ndelays = 0.5\nrepeats = 0\n`,
  );
  let ready = false;
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      ...LISTEN_FLAGS,
      // A CPU profile of the listener's thread, for `bench/profile.ts`.
      ...(PROFILE_DIR ? ["--cpu-prof", `--cpu-prof-dir=${PROFILE_DIR}`] : []),
      MAIN,
      "-c",
      join(dir, "l.ini"),
      "-s",
      DOMAIN,
      "--port",
      String(server.port),
      "--ca-file",
      server.caFile,
      "-N",
      await server.netrc("listener"),
      "--state-dir",
      join(dir, "state"),
      "--log-format",
      "json",
    ],
    cwd: ROOT,
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const reading = readLines(child.stdout, (v) => {
    if (v.event === "xmpp_ready") ready = true;
    if (v.event === "bench_phase") phases.push(v as unknown as Phase);
  });
  await until(() => ready || undefined);
  return { child, reading };
}

/**
 * The subscribers run at once, each on its own node; each round starts
 * with the next one, so machine noise hits each. Rates are the best round's,
 * latencies pooled over all rounds.
 */
export async function benchXmpp(
  burst = 5000,
  paced = 1000,
  rounds = 3,
): Promise<{ rows: [XmppRow, XmppRow, XmppRow]; fsync: FsyncRow }> {
  await using server = await Prosody.start({ persistent: false });
  const publisher = createXmppClient({
    server: DOMAIN,
    port: server.port,
    username: "publisher",
    password: USERS.publisher,
    resource: "bench",
    ca: await Deno.readTextFile(server.caFile),
  });
  publisher.on("error", () => {});
  await publisher.start();
  const pubsub = new Pubsub(publisher, PUBSUB, 120_000);
  for (const node of ["bench_bare", "bench_floor", "bench_listener"]) {
    await pubsub.create(node, { "pubsub#persist_items": "0" });
  }
  const dir = await Deno.makeTempDir({ prefix: "lvalertmp-bench-" });
  const subscriber = (name: string, node: string) => ({
    name,
    node,
    phases: [] as Phase[],
    results: [] as [Phase, Phase][],
  });
  const subscribers = [
    subscriber("bare @xmpp/client", "bench_bare"),
    subscriber("the design's floor", "bench_floor"),
    subscriber("lvalert_listenMP", "bench_listener"),
  ];
  const alerts = rounds * (burst + Math.ceil(paced / rounds) + 2);
  const floorDir = join(dir, "floor");
  await Deno.mkdir(floorDir);
  const processes = [
    await startPlain(server, "bare", dir, "bench_bare", subscribers[0]!.phases),
    await startPlain(server, "floor", floorDir, "bench_floor", subscribers[1]!.phases),
    await startListener(server, dir, "bench_listener", subscribers[2]!.phases),
  ];
  using background = new BackgroundProbe(dir);
  const loaded: number[] = [];
  const cpu = processes.map(() => 0);
  const syncs: number[] = [];
  let syncCpu = 0;
  const threads: Record<string, number>[] = processes.map(() => ({}));
  const pids = processes.map((p) => p.child.pid);
  try {
    const before = await Promise.all(pids.map(cpuSeconds));
    const beforeThreads = await Promise.all(pids.map(threadSeconds));
    for (let round = 1; round <= rounds; round++) {
      // Each round starts with the next subscriber, so machine noise hits each.
      const first = (round - 1) % subscribers.length;
      const order = [...subscribers.slice(first), ...subscribers.slice(0, first)];
      for (const s of order) {
        s.results.push(
          await runPhases(pubsub, s.node, s.phases, round, burst, Math.ceil(paced / rounds)),
        );
      }
      // The disk as it is this round, between the rounds (not to slow any subscriber).
      const probe = fsyncProbe(dir);
      syncs.push(...probe.took);
      syncCpu += probe.cpu;
    }
    for (let i = 0; i < pids.length; i++) {
      cpu[i] = await cpuSeconds(pids[i]!) - before[i]!;
      const after = await threadSeconds(pids[i]!);
      for (const kind of ["main", "worker"]) {
        threads[i]![kind] = (after[kind] ?? 0) - (beforeThreads[i]![kind] ?? 0);
      }
    }
    // The disk under the same load (Prosody, the publisher, a subscriber
    // taking paced alerts), in a phase of its own after the measured ones
    // (and their CPU figures), so it slows no subscriber: the bare
    // subscriber takes these alerts.
    const { node, phases } = subscribers[0]!;
    loaded.push(...await background.during(() => pacedPhase(pubsub, node, phases, "probe", paced)));
  } finally {
    for (const p of processes) {
      p.child.kill("SIGTERM");
      await p.child.status;
      await p.reading.catch(() => {});
    }
    await publisher.stop();
    await Deno.remove(dir, { recursive: true });
  }
  const quantiles = (ms: number[]): Quantiles => ({
    p50: quantile(ms, 0.5),
    p99: quantile(ms, 0.99),
  });
  const rows = subscribers.map((s, i) => {
    const latencies = s.results.flatMap(([, p]) => p.latencies);
    const after = s.results.flatMap(([, p]) => p.afterArrival ?? []);
    return {
      name: s.name,
      burstRate: Math.max(...s.results.map(([b]) => rate(b))),
      ...quantiles(latencies),
      ...(after.length === latencies.length && after.length > 0
        ? {
          split: {
            arrival: quantiles(latencies.map((ms, j) => ms - after[j]!)),
            afterArrival: quantiles(after),
          },
        }
        : {}),
      cpuPerAlert: cpu[i]! / alerts * 1e6,
      cpuThreads: {
        main: threads[i]!.main! / alerts * 1e6,
        worker: threads[i]!.worker! / alerts * 1e6,
        other: (cpu[i]! - threads[i]!.main! - threads[i]!.worker!) / alerts * 1e6,
      },
    };
  });
  const fsync = {
    ...quantiles(syncs),
    cpu: syncCpu * 1000 / syncs.length,
    loaded: quantiles(loaded),
  };
  return { rows: rows as [XmppRow, XmppRow, XmppRow], fsync };
}
