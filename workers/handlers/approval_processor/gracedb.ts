/**
 * How the handler talks to GraceDB: every call bounded in time (so a
 * task ends well inside the child's task time limit), and failures sorted
 * into those worth retrying later ({@linkcode Deferred}) and the others.
 *
 * @module
 */

import {
  type GraceDbCallOptions,
  type GraceDbClient,
  GraceDbError,
} from "../../../lib/gracedb/mod.ts";
import type { ChildContext } from "../../../lib/mod.ts";
import type { ApSettings } from "./config.ts";

/** A GraceDB failure that may pass: the work stays queued and is retried later. */
export class Deferred extends Error {
  constructor(what: string, cause: unknown) {
    super(`${what}: ${(cause as Error)?.message ?? cause}`, { cause });
    this.name = "Deferred";
  }
}

/** Whether trying again later may help: no answer, a timeout, 408, 429 or 5xx. */
export function transient(error: unknown): boolean {
  return error instanceof GraceDbError && error.retryable;
}

/** The run is out of time: its work waits for the next run (no GraceDB failure). */
export class OutOfTime extends Deferred {
  constructor() {
    super("this run is out of time", "the rest waits for the next run");
    this.name = "OutOfTime";
  }
}

// The child runs one task at a time, so one deadline serves the running one.
let runEnds = Infinity;

/**
 * Starts a run that must end within `ms` (inside the child's task time
 * limit): no GraceDB call outlives it, so a task never times out with a
 * call still changing its event behind the next run's back.
 */
export function beginRun(ms: number): void {
  runEnds = performance.now() + ms;
}

/** Ends the run (calls outside a run are bounded by `gracedb_call_time` only). */
export function endRun(): void {
  runEnds = Infinity;
}

/**
 * Options for one call: it ends within `gracedb_call_time`, retries
 * included, and within the run.
 *
 * @throws {OutOfTime} when less than a second of the run is left
 */
export function callOptions(s: ApSettings): GraceDbCallOptions {
  const left = runEnds - performance.now();
  if (left < 1000) throw new OutOfTime();
  const total = Math.min(s.callTime * 1000, left);
  return { totalTimeMs: total, timeoutMs: Math.min(total, 30_000) };
}

/** The child's GraceDB client; the config check makes sure there is one. */
export function client(ctx: ChildContext): GraceDbClient {
  if (!ctx.gracedb) {
    throw new Error("approval_processor has no GraceDB client: set [general] client to its URL");
  }
  return ctx.gracedb;
}

/**
 * Runs a GraceDB call; a transient failure becomes a {@linkcode Deferred}
 * (naming `what`), any other failure is thrown as it is.
 */
export async function attempt<T>(what: string, call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (error) {
    if (transient(error)) throw new Deferred(what, error);
    throw error;
  }
}

/** A GraceDB answer's 404 (the event or file is not there). */
export function notFound(error: unknown): boolean {
  return error instanceof GraceDbError && error.status === 404;
}
