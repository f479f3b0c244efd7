/**
 * The item and task classes event_supervisor queues. Both hold plain
 * JSON-safe fields only (snapshots rebuild them without constructors).
 *
 * A task never waits on GraceDB while the child's line is held. When it
 * comes due it starts its job (`job.ts`) and parks: it moves its own
 * expiration past the job's longest possible run, which the engine treats
 * as "run again then". The child's collector (`collector.ts`) moves it due
 * as soon as the job settles; that run reports the result and the task
 * is done. Every check due at one moment therefore reads GraceDB at once,
 * and alerts and other items keep flowing meanwhile.
 *
 * @module
 */

import { type ChildContext, type QueueItem, QueueItem as Item, Task } from "../../../lib/mod.ts";
import { eventUrl } from "./format.ts";
import { ensureCollector } from "./collector.ts";
import { type JobResult, runCheck, startJob, takeJob } from "./job.ts";
import { report, type Subject } from "./report.ts";
import type { Rule, Verdict } from "./rules.ts";
import { settingsOf } from "./settings.ts";

/** Mail recipients of one check section. */
export interface Emails {
  success: string[];
  failure: string[];
  exception: string[];
}

/** What a {@linkcode CheckItem} is made with. */
export interface CheckItemInit {
  graceid: string;
  /** The check section, which is also the item's name. */
  section: string;
  /** Deduplication key within (graceid, section). */
  key: string;
  description: string;
  emails: Emails;
  annotate: boolean;
  warnings: boolean;
}

/** One monitored process for one event: the tasks of one check section. */
export class CheckItem extends Item {
  key: string;
  description: string;
  emails: Emails;
  annotate: boolean;
  warnings: boolean;

  constructor(t0: number, tasks: CheckTask[], init: CheckItemInit) {
    super(t0, tasks, { graceid: init.graceid, name: init.section });
    this.key = init.key;
    this.description = init.description;
    this.emails = init.emails;
    this.annotate = init.annotate;
    this.warnings = init.warnings;
  }
}

/** The default GraceDB API root, when a task runs without a client (tests only). */
const DEFAULT_API = "https://gracedb.ligo.org/api/";

/** One expectation of a check, judged when it comes due (or when an alert proves it). */
export class CheckTask extends Task {
  description: string;
  rule: Rule;
  /** A PASS an alert proved (early completion): GraceDB is not read. */
  proof: Verdict | null = null;
  /** The running job's id, once started. */
  job: string | null = null;

  constructor(timeout: number, name: string, description: string, rule: Rule) {
    super(timeout, name);
    this.description = description;
    this.rule = rule;
  }

  execute(ctx: ChildContext, item: QueueItem): void {
    if (!(item instanceof CheckItem)) throw new TypeError(`${this.name} runs in a CheckItem only`);
    const now = ctx.now();
    if (this.job !== null) {
      const state = takeJob(this.job);
      if (state === "running") {
        // Woken early, or the job outlived its bounds: look again later.
        this.expiration = now + settingsOf(ctx.config).general.checkTimeout;
        return;
      }
      if (state !== "lost") return finish(ctx, this, item, state);
      ctx.log.event("info", "check_restarted", {
        graceid: item.graceid ?? null,
        item: item.name,
        task: this.name,
      }, `${item.graceid} : ${item.name} : ${this.name} : started again (its job was lost)`);
    }
    const settings = settingsOf(ctx.config).general;
    const url = eventUrl(ctx.gracedb?.url ?? DEFAULT_API, item.graceid ?? "");
    if (this.proof && (!item.annotate || this.proof.annotate === false)) {
      // Nothing to read, nothing to write: the outcome is known now.
      return finish(ctx, this, item, { verdict: this.proof, error: null, annotation: "skipped" });
    }
    const wake = () => {
      if (item.complete || !item.tasks.includes(this)) return;
      this.expiration = Math.min(this.expiration, ctx.now());
      item.sortTasks();
    };
    this.job = startJob(
      runCheck({
        client: ctx.gracedb,
        graceid: item.graceid ?? "",
        rule: this.rule,
        proof: this.proof,
        annotate: item.annotate,
        deadline: now + settings.checkTimeout,
        annotateWithin: settings.checkTimeout,
        now: () => ctx.now(),
        url,
      }),
      wake,
    );
    // Parked past the job's bounds (reads, then the annotation); woken when it settles.
    this.expiration = now + 2 * settings.checkTimeout + 1;
    ensureCollector(ctx);
  }
}

/** Reports a task's outcome; the task is done once this returns (its expiration unchanged). */
function finish(ctx: ChildContext, task: CheckTask, item: CheckItem, result: JobResult): void {
  task.job = null;
  const settings = settingsOf(ctx.config).general;
  const subject: Subject = {
    graceid: item.graceid ?? "",
    item: item.name,
    task: task.name,
    description: task.description,
    url: eventUrl(ctx.gracedb?.url ?? DEFAULT_API, item.graceid ?? ""),
    emails: item.emails,
    warnings: item.warnings,
    graceidLogs: settings.graceidLogs,
    early: task.proof !== null,
  };
  report(ctx, subject, result);
}
