/**
 * A check's GraceDB work, run beside the child's line: the reads and the
 * judgement, then the `ES:` annotation. A task starts a job and comes
 * back for its result a few milliseconds later (see `task.ts`), so no
 * task ever waits on the network while holding the child.
 *
 * Jobs live in this worker's memory only, never in a snapshot: a task
 * restored after a restart finds its job gone and starts it again (the
 * documented at-least-once).
 *
 * @module
 */

import type { GraceDbClient } from "../../../lib/gracedb/mod.ts";
import { graceDbFacts } from "./facts.ts";
import { judge } from "./judge.ts";
import type { Rule, Verdict } from "./rules.ts";

/** What a job found out. */
export interface JobResult {
  /** The verdict; null when the check raised. */
  verdict: Verdict | null;
  /** Why the check raised (GraceDB error after retries, unusable answer, ...). */
  error: { message: string; stack: string; status: number | null } | null;
  /** Whether the result was written to GraceDB. */
  annotation: "written" | "skipped" | { error: string };
}

/** What a job needs. */
export interface CheckRun {
  client: GraceDbClient | undefined;
  graceid: string;
  rule: Rule;
  /** A verdict an alert already proved: GraceDB is not read. */
  proof: Verdict | null;
  annotate: boolean;
  /** Reads give up at this time (epoch seconds). */
  deadline: number;
  /** Seconds the annotation may take, retries included. */
  annotateWithin: number;
  now(): number;
  url: string;
}

interface Job {
  result: JobResult | undefined;
  settledAt: number;
  /** Tells the task its result is ready (moves it due). */
  wake: () => void;
}

const jobs = new Map<string, Job>();
/** Settled jobs whose tasks have not been woken yet. */
const ready: string[] = [];
let running = 0;
let counter = 0;
let lastSweep = 0;
/** Results nobody came back for (their item was cleared) are dropped after this. */
const FORGET_AFTER_MS = 15 * 60_000;

function errorOf(error: unknown): NonNullable<JobResult["error"]> {
  const e = error instanceof Error ? error : new Error(String(error));
  const status = (e as { status?: unknown }).status;
  return {
    message: e.message,
    stack: e.stack ?? e.message,
    status: typeof status === "number" ? status : null,
  };
}

/** Runs one check: judge (unless proved), then annotate when asked. Never rejects. */
export async function runCheck(r: CheckRun): Promise<JobResult> {
  let verdict: Verdict;
  try {
    if (r.proof) verdict = r.proof;
    else {
      if (!r.client) throw new Error("No GraceDB to read: [general] gracedb is not set");
      verdict = await judge(r.rule, graceDbFacts(r.client, r.graceid, r));
    }
  } catch (error) {
    return { verdict: null, error: errorOf(error), annotation: "skipped" };
  }
  if (!r.annotate || verdict.annotate === false) {
    return { verdict, error: null, annotation: "skipped" };
  }
  try {
    if (!r.client) throw new Error("No GraceDB to annotate: [general] gracedb is not set");
    // Never sent twice unread: a re-sent POST could double the line.
    await r.client.writeLogOnce(r.graceid, `ES: ${verdict.message}`, {
      tags: ["event_supervisor"],
      totalTimeMs: Math.round(r.annotateWithin * 1000),
    });
    return { verdict, error: null, annotation: "written" };
  } catch (error) {
    return { verdict, error: null, annotation: { error: errorOf(error).message } };
  }
}

/** Starts `work`; `wake` runs (from {@linkcode wakeReady}) once it settled. Returns its id. */
export function startJob(work: Promise<JobResult>, wake: () => void): string {
  const now = Date.now();
  if (now - lastSweep > FORGET_AFTER_MS) {
    lastSweep = now;
    for (const [id, job] of jobs) {
      if (job.result && now - job.settledAt > FORGET_AFTER_MS) jobs.delete(id);
    }
  }
  const id = `${now.toString(36)}.${(++counter).toString(36)}`;
  const job: Job = { result: undefined, settledAt: 0, wake };
  jobs.set(id, job);
  running++;
  void work.then((result) => {
    job.result = result;
    job.settledAt = Date.now();
    running--;
    ready.push(id);
  });
  return id;
}

/** Wakes the tasks of every job settled since the last call; returns how many. */
export function wakeReady(): number {
  const woken = ready.splice(0);
  for (const id of woken) jobs.get(id)?.wake();
  return woken.length;
}

/** Whether this worker started the job `id` (and its result was not yet taken). */
export function knownJob(id: string): boolean {
  return jobs.has(id);
}

/** Jobs still running. */
export function runningJobs(): number {
  return running;
}

/**
 * A job's state: `running`, its result (once, then forgotten), or
 * `lost` (started before a restart of this worker).
 */
export function takeJob(id: string): "running" | "lost" | JobResult {
  const job = jobs.get(id);
  if (!job) return "lost";
  if (!job.result) return "running";
  jobs.delete(id);
  return job.result;
}
