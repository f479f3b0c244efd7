/**
 * Processing an event's alerts: an {@linkcode ApWork} item (one per event
 * with work to do) runs {@linkcode ProcessAlerts}, which builds the
 * record if needed, carries out pending actions, then takes the inbox in
 * order: GraceDB reads first, then the synchronous decision, then its
 * actions. A GraceDB outage leaves everything queued and retries later
 * with growing delays (or at the event's next alert); it is reported once.
 * The work item is separate from the record, so even a task that runs
 * out of time loses no state.
 *
 * @module
 */

import { isEventId } from "../../../lib/gracedb/mod.ts";
import { type ChildContext, QueueItem, Task } from "../../../lib/mod.ts";
import type { Entry } from "./alerts.ts";
import { type ApSettings, settingsOf } from "./config.ts";
import { type ApEvent, expirationText, findEvent, findRecord } from "./events.ts";
import { decideExternal } from "./external.ts";
import {
  attempt,
  beginRun,
  callOptions,
  client,
  Deferred,
  endRun,
  OutOfTime,
  transient,
} from "./gracedb.ts";
import type { Grouper } from "./grouper.ts";
import { decide, runChecks } from "./machine.ts";
import { onNew, selectedAlready } from "./new_alert.ts";
import { runOutbox } from "./outbox.ts";
import { Plan } from "./plan.ts";
import { reconstruct, recordFrom } from "./reconstruct.ts";
import { badLabels, type EventRecord, isIgnoredId, labelNames } from "./record.ts";
import { ravenFacts } from "./recorders.ts";
import { pyFloat } from "./text.ts";

/** How long one run may start new work. */
const BUDGET_MS = 30_000;
/** How long one run may take in all: below the child's default task_timeout (60 s). */
const RUN_MS = 50_000;
/** The longest wait between retries of a failing event. */
const MAX_RETRY_S = 600;

function plan(ctx: ChildContext, ev: ApEvent, s: ApSettings): Plan {
  return new Plan(ctx, ev.record!, s, ev.outbox, (id) => findRecord(ctx, id));
}

/** Hardware injections GraceDB lists within `time_duration` of the gpstime (§2.4). */
async function queryInjections(
  ctx: ChildContext,
  rec: EventRecord,
  s: ApSettings,
): Promise<number> {
  const t = s.injectionWindow;
  const query = `HardwareInjection ${pyFloat(rec.gpstime - t)} .. ${pyFloat(rec.gpstime + t)}`;
  try {
    return (await attempt(
      "querying hardware injections",
      () => client(ctx).queryEvents(query, callOptions(s)),
    )).length;
  } catch (error) {
    if (error instanceof Deferred) throw error;
    ctx.log.event("error", "ap_query_failed", {
      graceid: rec.graceid,
      query,
      error: String(error),
    });
    ctx.notify(`approval_processor: injection query failed for ${rec.graceid}`, `${error}\n`);
    return 0;
  }
}

/** Whether deciding on `entry` may run injectionCheck (a check or a VOEvent). */
function needsInjections(rec: EventRecord, entry: Entry, s: ApSettings): boolean {
  if (rec.injectionHits !== null || rec.injectionsfound !== null) return false;
  if (entry.kind === "label") {
    const label = entry.label ?? "";
    return ["EM_Selected", "EM_READY", "PE_READY"].includes(label) ||
      (rec.voevents.length > 0 && badLabels(s).includes(label));
  }
  return ["selected_to_preliminary", "preliminary_to_initial", "initial_to_update"]
    .includes(rec.currentstate) ||
    (rec.currentstate === "new_to_preliminary" && rec.injWaitUntil === null);
}

/** GraceDB reads deciding on `entry` needs, done before anything changes. */
async function readInputs(ctx: ChildContext, rec: EventRecord, entry: Entry, s: ApSettings) {
  if (needsInjections(rec, entry, s)) rec.injectionHits = await queryInjections(ctx, rec, s);
  const raven =
    entry.log && entry.log.comment.includes("Temporal coincidence with external trigger")
      ? ravenFacts(entry.log.comment)
      : undefined;
  if (
    raven && !findRecord(ctx, raven.ext) && !(raven.ext in rec.extPipelines) && isEventId(raven.ext)
  ) {
    try {
      const ext = await attempt(
        "reading the external trigger",
        () => client(ctx).event(raven.ext, callOptions(s)),
      );
      rec.extPipelines[raven.ext] = typeof ext.pipeline === "string" ? ext.pipeline : "unknown";
    } catch (error) {
      if (error instanceof Deferred) throw error;
      rec.extPipelines[raven.ext] = "unknown";
    }
  }
}

/** Reads, then decides on, one alert. */
async function step(ctx: ChildContext, ev: ApEvent, entry: Entry, s: ApSettings): Promise<void> {
  const rec = ev.record!;
  const p = plan(ctx, ev, s);
  if (isIgnoredId(rec.graceid, s)) {
    p.onceLogged("Mock data challenge or simulation. Ignoring.");
  } else if (rec.offline && s.ignoreOffline) {
    p.onceLogged("Offline trigger. Ignoring.");
  } else if (rec.kind === "external") {
    decideExternal(p, entry);
  } else if (entry.kind === "new") {
    if (rec.newSeen) return p.note("A repeated new alert: ignored (the event is tracked).");
    const late = await selectedAlready(ctx, rec, s);
    onNew(p, ctx, entry, late, () => new GrouperDecide(s.decisionWin));
  } else {
    await readInputs(ctx, rec, entry, s);
    decide(p, entry);
  }
}

/** Builds the record: from the `new` alert's dict, else from GraceDB. */
async function materialize(
  ctx: ChildContext,
  ev: ApEvent,
  s: ApSettings,
): Promise<EventRecord | undefined> {
  const id = ev.graceid!;
  const first = ev.inbox[0];
  return first?.kind === "new" && first.object
    ? await recordFrom(ctx, id, first.object, s)
    : await reconstruct(ctx, id, s);
}

/** [M] The end of the wait for an INJ label: labels read again, then the first checks. */
async function injectionWaitOver(ctx: ChildContext, ev: ApEvent, s: ApSettings): Promise<void> {
  const rec = ev.record!;
  if (rec.currentstate !== "new_to_preliminary" || rec.injWaitUntil === null) return;
  if (ctx.now() < rec.injWaitUntil) return;
  const labels = await attempt(
    "reading labels",
    () => client(ctx).labels(rec.graceid, callOptions(s)),
  );
  if (rec.injectionHits === null) rec.injectionHits = await queryInjections(ctx, rec, s);
  rec.labels = labelNames(labels);
  rec.injWaitUntil = null;
  const p = plan(ctx, ev, s);
  runChecks(p, "new_to_preliminary");
  await runOutbox(p);
}

function dropEntry(ctx: ChildContext, ev: ApEvent, error: unknown): void {
  const entry = ev.inbox.shift();
  const text = `${ev.graceid}: ${entry?.alertType} alert failed and is dropped: ${error}`;
  ctx.log.event(
    "error",
    "ap_alert_failed",
    { graceid: ev.graceid ?? null, error: String(error) },
    text,
  );
  ctx.notify(`approval_processor: an alert for ${ev.graceid} failed`, `${text}\n`);
}

/**
 * Does the event's pending work; returns when to run again (the master
 * flow's wait, or more work than one run may do), if ever.
 *
 * @throws {Deferred} when GraceDB did not answer (all work stays queued)
 */
export async function drive(
  ctx: ChildContext,
  ev: ApEvent,
  s: ApSettings,
): Promise<number | undefined> {
  const started = performance.now();
  if (!ev.record) {
    const rec = await materialize(ctx, ev, s);
    if (!rec) {
      ctx.log.event(
        "warning",
        "ap_unknown_event",
        { graceid: ev.graceid ?? null },
        `${ev.graceid}: GraceDB does not know this event; its alerts are dropped`,
      );
      ev.complete = true;
      return undefined;
    }
    ev.record = rec;
    rec.expirationtime = expirationText(ev.expiration);
    const p = plan(ctx, ev, s);
    if (p.once(`Created event dictionary for ${rec.graceid}.`)) {
      p.log("AP: Created event dictionary.");
    }
  }
  await runOutbox(plan(ctx, ev, s));
  await injectionWaitOver(ctx, ev, s);
  while (ev.inbox.length > 0) {
    if (performance.now() - started > BUDGET_MS) return ctx.now();
    try {
      await step(ctx, ev, ev.inbox[0]!, s);
    } catch (error) {
      if (error instanceof Deferred) throw error;
      dropEntry(ctx, ev, error);
      continue;
    }
    ev.inbox.shift();
    await runOutbox(plan(ctx, ev, s));
  }
  const until = ev.record.injWaitUntil;
  return ev.record.currentstate === "new_to_preliminary" && until !== null ? until : undefined;
}

/** Processes an event's alerts and actions (see the module doc). */
export class ProcessAlerts extends Task {
  async execute(ctx: ChildContext, item: QueueItem): Promise<void> {
    const ev = findEvent(ctx, item.graceid ?? "");
    if (!ev) return;
    const s = settingsOf(ctx.config);
    const due = this.expiration;
    beginRun(RUN_MS);
    try {
      const next = await drive(ctx, ev, s);
      if (ev.failures > 0) {
        ctx.log.event("info", "ap_gracedb_recovered", {
          graceid: ev.graceid ?? null,
          failures: ev.failures,
        });
        ev.failures = 0;
      }
      if (next !== undefined) this.expiration = Math.max(next, due + 1e-3);
    } catch (error) {
      if (error instanceof OutOfTime) this.expiration = Math.max(ctx.now(), due + 1e-3);
      else if (error instanceof Deferred || transient(error)) retryLater(ctx, ev, this, error, s);
      else throw error;
    } finally {
      endRun();
    }
  }
}

function retryLater(
  ctx: ChildContext,
  ev: ApEvent,
  task: Task,
  error: unknown,
  s: ApSettings,
): void {
  ev.failures++;
  const delay = Math.min(MAX_RETRY_S, s.retryDelay * 2 ** (ev.failures - 1));
  task.expiration = Math.max(ctx.now(), task.expiration) + delay;
  const message = (error as Error)?.message ?? String(error);
  ctx.log.event("warning", "ap_gracedb_retry", {
    graceid: ev.graceid ?? null,
    failures: ev.failures,
    retry_in: delay,
    error: message,
  }, `${ev.graceid}: GraceDB failed (${message}); retrying in ${delay} s`);
  if (ev.failures === 1) {
    ctx.notify(
      `approval_processor: GraceDB failing for ${ev.graceid}`,
      `${message}\n\nThe event's pending alerts and actions are kept and retried ` +
        `(next in ${delay} s, and at its next alert).\n`,
    );
  }
}

/** The item that runs an event's {@linkcode ProcessAlerts}. */
export class ApWork extends QueueItem {
  constructor(t0: number, graceid: string) {
    super(t0, [new ProcessAlerts(0)], { graceid });
  }
}

/** Makes the event's work run at `at` at the latest. */
export function kick(ctx: ChildContext, graceid: string, at: number): void {
  const work = ctx.queue.byGraceId(graceid).find((i) => i instanceof ApWork);
  if (!work) return ctx.queue.insert(new ApWork(at, graceid));
  const task = work.tasks[0];
  if (task && task.expiration > at) {
    task.expiration = at;
    work.sortTasks();
  }
}

/** The Grouper's decision (§4): labels and the JSON upload go to each member's outbox. */
export class GrouperDecide extends Task {
  execute(ctx: ChildContext, item: QueueItem): void {
    const d = (item as unknown as Grouper).decide();
    if (!d) return;
    const s = settingsOf(ctx.config);
    ctx.log.event(
      "info",
      "ap_grouper_decision",
      { ...d },
      `${d.groupTag}: selected ${d.EM_Selected}`,
    );
    const json = JSON.stringify(d);
    for (const id of [d.EM_Selected, ...d.EM_Superseded]) {
      const ev = findEvent(ctx, id);
      if (!ev?.record) {
        ctx.log.event("warning", "ap_grouper_member_gone", { graceid: id, group: d.groupTag });
        continue;
      }
      const p = plan(ctx, ev, s);
      p.label(id === d.EM_Selected ? "EM_Selected" : "EM_Superseded");
      p.upload(id, "AP: Grouper made a selection.", `${d.groupTag}.json`, json);
      kick(ctx, id, ctx.now());
    }
  }
}
