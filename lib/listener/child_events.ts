/**
 * The events children announce, on one bus per listener: each child link
 * emits what happens to its child, and whoever cares listens (the
 * supervisor for deaths and readiness, the listener for mail, publishing,
 * log lines and journal receipts).
 *
 * @module
 */

import type { JsonObject } from "../core/alert.ts";
import type { DueTask, TaskFailure, TaskTally } from "../child/messages.ts";
import { Emitter } from "../core/emitter.ts";

/** What happens to children, by event name. */
export interface ChildEvents extends Record<string, unknown> {
  /** A child is ready: started, or restarted and recovered. */
  ready: { child: string };
  /** A child could not start (or restart). */
  start_failed: { child: string; message: string };
  /** A ready child's worker died. */
  died: { child: string; reason: string };
  /** An alert was applied (`ok`) or refused by its child. */
  ack: {
    child: string;
    seq: number;
    ok: boolean;
    reason: string | null;
    /** Refused because it had been applied already. */
    duplicate: boolean;
    token: string | null;
  };
  /** A child's queue or in-flight alerts changed. */
  changed: { child: string };
  /** An alert with an item id is durable in a child's journal. */
  journaled: { child: string; node: string; id: string };
  /** A child log line meant for the listener's standard output. */
  line: { child: string; text: string };
  /** A child asks for mail. */
  notify: { child: string; subject: string; body: string; recipients: string[] };
  /** A child asks to publish on a node (heartbeat responses). */
  publish: { child: string; node: string; payload: JsonObject };
  /** The outcome of a command sent with a reply token. */
  command_result: {
    child: string;
    token: string;
    ok: boolean;
    output: string | null;
    error: string | null;
  };
  /**
   * Something a child held may be lost (its journal ends below its
   * snapshot, no usable snapshot): reported until an operator acknowledges it.
   */
  loss: { child: string; message: string };
  /** An alert killed its child twice in a row; it is set aside and never applied. */
  quarantined: { child: string; seq: number; file: string; message: string };
  /** A child's journal writes fail (`failing`), or work again. */
  journal_state: { child: string; failing: boolean; error: string | null };
  /**
   * A child's throttled report: its next due tasks, and its task outcomes
   * since the last report (for the status page and the metrics).
   */
  report: { child: string; due: DueTask[]; tally: TaskTally; failures: TaskFailure[] };
  /** A child's snapshot is on disk; it took `seconds`. */
  checkpointed: { child: string; seq: number; seconds: number };
  /** A child died too often and is no longer restarted. */
  given_up: { child: string; deaths: number; message: string };
  /** A child died and its section says the listener must stop. */
  fatal: { child: string; error: ChildDiedError };
}

/** A child could not start: a start-up failure (exit 78). */
export class ChildStartError extends Error {
  /** The child's name. */
  readonly child: string;

  /** Child `child` could not start, because of `message`. */
  constructor(child: string, message: string, options?: ErrorOptions) {
    super(`Child [${child}] could not start: ${message}`, options);
    this.name = "ChildStartError";
    this.child = child;
  }
}

/** A child died and its section says the listener must stop. */
export class ChildDiedError extends Error {
  /** The child's name. */
  readonly child: string;

  /** Child `child` died, because of `message`. */
  constructor(child: string, message: string, options?: ErrorOptions) {
    super(`Child [${child}] died: ${message}`, options);
    this.name = "ChildDiedError";
    this.child = child;
  }
}

/** The bus the links of one listener share. */
export class ChildBus extends Emitter<ChildEvents> {}
