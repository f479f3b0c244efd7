/**
 * Durability costs, each beside its baseline: journal throughput with
 * group commit against no journal (and against one sync per alert);
 * snapshot time and size; recovery time from snapshot + journal.
 */

import { join } from "node:path";
import { ChildRuntime } from "../lib/child/runtime.ts";
import { ChildState, type RecoveryTimings } from "../lib/child/state.ts";
import { GroupCommit } from "../lib/durability/group_commit.ts";
import { Ini, parseIni } from "../lib/config/ini.ts";
import { Journal, type JournalRecord } from "../lib/durability/journal.ts";
import { type ChildLog, Logger } from "../lib/core/log.ts";
import * as testHandler from "../workers/handlers/test.ts";

const PAD = "x".repeat(900);

function record(seq: number): JournalRecord {
  return {
    seq,
    node: "cbc_gstlal",
    id: `item-${seq}`,
    t0: Date.now() / 1000,
    alert: { uid: `G${seq}`, alert_type: "new", object: { pad: PAD } },
  };
}

/** How alerts reach the listener's thread in a journal benchmark. */
export type Arrival = "stream" | "task";

/**
 * Feeds `count` alerts through a group commit; returns alerts/s.
 * "stream": lines read from a pipe written by another process as fast as
 * it can, the way stanzas come off the XMPP socket (what arrived while the
 * thread was busy is read at once). "task": each alert alone in its own
 * event-loop task (the worst case for batching).
 */
async function pipeline(
  count: number,
  write: (batch: JournalRecord[]) => Promise<void>,
  arrival: Arrival,
): Promise<number> {
  let committed = 0;
  const commit = new GroupCommit<JournalRecord>({
    write,
    committed: (batch) => committed += batch.length,
    failed: (error) => {
      throw error;
    },
  });
  const start = performance.now();
  if (arrival === "stream") {
    const writer = new Deno.Command(Deno.execPath(), {
      args: [
        "eval",
        `const line = new TextEncoder().encode(${JSON.stringify(JSON.stringify(PAD))} + "\\n");
         for (let i = 0; i < ${count}; i++) await Deno.stdout.write(line);`,
      ],
      stdout: "piped",
    }).spawn();
    let seq = 0;
    for await (const chunk of writer.stdout) {
      for (const byte of chunk) if (byte === 10) commit.push(record(++seq));
    }
    await writer.status;
  } else {
    const channel = new MessageChannel();
    const turn = () =>
      new Promise<void>((resolve) => {
        channel.port2.onmessage = () => resolve();
        channel.port1.postMessage(0);
      });
    for (let i = 1; i <= count; i++) {
      commit.push(record(i));
      await turn();
    }
    channel.port1.close();
    channel.port2.close();
  }
  await commit.drain();
  const seconds = (performance.now() - start) / 1000;
  if (committed !== count) throw new Error(`lost records: ${committed} of ${count}`);
  return count / seconds;
}

export interface JournalRow {
  arrival: Arrival;
  none: number;
  groupCommit: number;
}

/** Group commit against no journal, for each way alerts arrive. */
export async function benchJournal(count = 20_000): Promise<JournalRow[]> {
  const dir = await Deno.makeTempDir({ prefix: "lvalertmp-bench-" });
  try {
    const rows: JournalRow[] = [];
    for (const arrival of ["stream", "task"] as const) {
      const none = await pipeline(count, () => Promise.resolve(), arrival);
      const { journal } = await Journal.open(join(dir, `${arrival}.log`));
      const groupCommit = await pipeline(count, (batch) => journal.append(batch), arrival);
      await journal.close();
      rows.push({ arrival, none, groupCommit });
    }
    return rows;
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** One write and one sync per alert: what group commit avoids. */
export async function benchSyncEach(count = 2000): Promise<number> {
  const dir = await Deno.makeTempDir({ prefix: "lvalertmp-bench-" });
  try {
    const { journal } = await Journal.open(join(dir, "single.log"));
    const start = performance.now();
    for (let i = 1; i <= count; i++) await journal.append([record(i)]);
    const seconds = (performance.now() - start) / 1000;
    await journal.close();
    return count / seconds;
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

function runtime(dir: string, log: Logger) {
  return new ChildRuntime({
    child: "bench",
    handler: testHandler,
    config: new Ini(
      parseIni(
        "[general]\nprocess_type = test\n[test]\ndelays = 3600 7200\nrepeats = 0\n",
        "c.ini",
      ),
    ),
    log,
    handlerExports: testHandler,
    logDirectory: dir,
    notify: () => {},
    publish: () => {},
  });
}

export interface SnapshotRow {
  items: number;
  /** From the start of the checkpoint to the snapshot renamed into place. */
  writeMs: number;
  /**
   * Of which the child's thread was at the snapshot's slices (wall time
   * inside them, as the child logs it: a slice the system preempts counts
   * whole).
   */
  busyMs: number;
  /** CPU time of the child's thread from the checkpoint's start to the snapshot in place. */
  cpuMs: number;
  bytes: number;
  recoverMs: number;
  /** Until every item restored lazily is woken (in idle turns after the child was ready). */
  awakeMs: number;
  /** Recovery's own breakdown, from its `recovered` log event. */
  timings: RecoveryTimings;
  replayed: number;
  /** The same recovery in a fresh process (a restarted listener). */
  fresh: RecoveryRun;
}

/** Test-handler items as parseAlert makes them: two tasks each, own graceid. */
export function testItems(count: number, t0: number): testHandler.TestItem[] {
  return Array.from({ length: count }, (_, i) => {
    const alert = { uid: `G${i}`, alert_type: "new", object: { graceid: `G${i}`, far: 1e-9 } };
    return new testHandler.TestItem(t0, [
      new testHandler.PrintAlertTask(3600, alert),
      new testHandler.PrintAlertTask(7200, alert),
    ], { graceid: alert.uid });
  });
}

/**
 * A child's checkpoint of `count` pending items, as it runs (sliced, then
 * written); returns the milliseconds until it is on disk (`log` hears the
 * rest).
 */
async function checkpointOf(
  count: number,
  dir: string,
  log: Logger,
  quiet: Logger,
): Promise<{ writeMs: number; cpuMs: number }> {
  const rt = runtime(dir, quiet);
  const state = new ChildState({ dir, child: "bench", runtime: rt, log, onCheckpoint() {} });
  await state.recover();
  const items = testItems(count, Date.now() / 1000);
  await rt.exclusive(() => items.forEach((item) => rt.queue.insert(item)));
  state.changed();
  const start = performance.now();
  const cpu = threadCpuMs();
  await state.checkpoint();
  const cpuMs = threadCpuMs() - cpu;
  const writeMs = performance.now() - start;
  await rt.stop();
  await state.close();
  return { writeMs, cpuMs };
}

/** CPU milliseconds the calling thread has run (from the scheduler's own count, in ns). */
function threadCpuMs(): number {
  return Number(Deno.readTextFileSync("/proc/thread-self/schedstat").split(" ")[0]) / 1e6;
}

/**
 * A child's checkpoint of `count` pending items, as it runs (sliced, then
 * written), then recovery of a new child from that snapshot plus
 * `journaled` alerts after it.
 */
export async function benchSnapshot(count = 1e5, journaled = 1000): Promise<SnapshotRow> {
  const dir = await Deno.makeTempDir({ prefix: "lvalertmp-bench-" });
  const checkpoints: Record<string, unknown>[] = [];
  const log = new Logger({
    child: "bench",
    format: "json",
    level: 10,
    sinks: [(_, record) => record.event === "checkpoint" && checkpoints.push(record)],
  });
  const quiet = new Logger({ child: "bench", format: "json", level: 40, sinks: [] });
  try {
    const { writeMs, cpuMs } = await checkpointOf(count, dir, log, quiet);
    const busyMs = checkpoints[0]?.busy_ms as number;
    const bytes = (await Deno.stat(join(dir, "snapshots", "snapshot.json"))).size;
    const { journal } = await Journal.open(join(dir, "journal.log"));
    await journal.append(Array.from({ length: journaled }, (_, i) => record(1 + i)));
    await journal.close();
    // Each recovers a copy: a recovered child checkpoints what it replayed.
    const expect = count + journaled;
    const fresh = await recoverInProcess(await copyDir(dir, "process"), expect);
    const { recoverMs, awakeMs, timings, replayed } = await recoverInWorker(
      await copyDir(dir, "worker"),
      expect,
    );
    return {
      items: count,
      writeMs,
      busyMs,
      cpuMs,
      bytes,
      recoverMs,
      awakeMs,
      timings,
      replayed,
      fresh,
    };
  } finally {
    for (const path of [dir, `${dir}-process`, `${dir}-worker`]) {
      await Deno.remove(path, { recursive: true }).catch(() => {});
    }
  }
}

/** A copy of the state folder `dir`, beside it, named with `suffix`. */
async function copyDir(dir: string, suffix: string): Promise<string> {
  const copy = `${dir}-${suffix}`;
  const out = await new Deno.Command("cp", { args: ["-a", dir, copy] }).output();
  if (!out.success) throw new Error(`cp -a ${dir} ${copy} failed`);
  return copy;
}

/** What {@linkcode recoverChild} measured. */
export interface RecoveryRun {
  /** Until the child is ready: its queue restored (lazily at this size), the journal replayed. */
  recoverMs: number;
  /** Until every item restored lazily is woken, in idle turns after it was ready. */
  awakeMs: number;
  timings: RecoveryTimings;
  replayed: number;
}

/**
 * Recovers a test-handler child from `dir` (its snapshot and journal) and
 * checks it holds `expect` items: what a restarted child does first.
 */
export async function recoverChild(dir: string, expect: number): Promise<RecoveryRun> {
  const quiet = new Logger({ child: "bench", format: "json", level: 40, sinks: [] });
  const again = runtime(dir, quiet);
  // Keeps the `recovered` event alone: formatting every log record would
  // add to the time measured.
  let timings: RecoveryTimings | undefined;
  const noteRecovered: ChildLog = {
    debug() {},
    info() {},
    warning() {},
    error() {},
    event(_level, event, fields) {
      if (event === "recovered") timings = fields as unknown as RecoveryTimings;
    },
  };
  const recovering = new ChildState({
    dir,
    child: "bench",
    runtime: again,
    log: noteRecovered,
    onCheckpoint() {},
  });
  const begin = performance.now();
  const recovery = await recovering.recover();
  const recoverMs = performance.now() - begin;
  if (again.queue.size !== expect) throw new Error(`recovered ${again.queue.size} items`);
  while (again.queue.dormant()) await new Promise((r) => setTimeout(r, 1));
  const awakeMs = performance.now() - begin;
  if (again.queue.live().length !== expect) throw new Error("items lost waking");
  await again.stop();
  // Its checkpoint timer would otherwise keep retrying in a folder removed after.
  await recovering.close();
  if (!timings) throw new Error("recovery logged no timings");
  return { recoverMs, awakeMs, timings, replayed: recovery.replayed };
}

/**
 * {@linkcode recoverChild} in a fresh worker, as a child restarted by a
 * running listener recovers: its own heap, empty at the start (in the
 * benchmark's thread, it would find a heap grown by earlier sections).
 */
function recoverInWorker(dir: string, expect: number): Promise<RecoveryRun> {
  const worker = new Worker(new URL("./recovery_worker.ts", import.meta.url), { type: "module" });
  return new Promise<RecoveryRun>((resolve, reject) => {
    worker.onmessage = (e: MessageEvent<{ run?: RecoveryRun; error?: string }>) => {
      worker.terminate();
      if (e.data.run) resolve(e.data.run);
      else reject(new Error(`recovery failed: ${e.data.error}`));
    };
    worker.onerror = (e) => {
      e.preventDefault();
      worker.terminate();
      reject(new Error(`recovery worker: ${e.message}`));
    };
    worker.postMessage({ dir, expect });
  });
}

/**
 * {@linkcode recoverChild} in a fresh process, as a child recovers when
 * the whole listener restarts: every page of its heap is new memory
 * (a worker in a running process reuses pages earlier heaps gave back).
 */
async function recoverInProcess(dir: string, expect: number): Promise<RecoveryRun> {
  const program = new URL("./recovery_worker.ts", import.meta.url).pathname;
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", program, dir, String(expect)],
    stderr: "inherit",
  }).output();
  if (!out.success) throw new Error(`recovery process failed (${out.code})`);
  return JSON.parse(new TextDecoder().decode(out.stdout)) as RecoveryRun;
}
