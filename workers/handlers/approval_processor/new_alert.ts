/**
 * A GW candidate's `new` alert (§1.7 step 4, §3, §4): the pipeline
 * throttle, then the Grouper (baseline) or the wait for an INJ label
 * (master flow, a deadline instead of the original's blocking sleep).
 *
 * @module
 */

import { isEventId } from "../../../lib/gracedb/mod.ts";
import type { ChildContext, JsonObject, Task } from "../../../lib/mod.ts";
import type { Entry } from "./alerts.ts";
import { type ApSettings, throttleParams } from "./config.ts";
import { findRecord } from "./events.ts";
import { attempt, callOptions, client } from "./gracedb.ts";
import { findGroup, Grouper, groupTag } from "./grouper.ts";
import type { Plan } from "./plan.ts";
import { type EventRecord, labelNames, throttleKey } from "./record.ts";
import { findThrottle, PipelineThrottle } from "./throttle.ts";
import { pyFloat } from "./text.ts";

/**
 * Whether GraceDB already holds an `EM_Selected` event or superevent
 * within grouperWin of this one: a Grouper decided before it arrived.
 * Asked only when no Grouper would take the event.
 *
 * @throws {Deferred} when GraceDB did not answer
 */
export async function selectedAlready(
  ctx: ChildContext,
  rec: EventRecord,
  s: ApSettings,
): Promise<boolean> {
  if (!s.grouper || findGroup(ctx, rec.gpstime, s.grouperWin)) return false;
  const range = `${pyFloat(rec.gpstime - s.grouperWin)} .. ${pyFloat(rec.gpstime + s.grouperWin)}`;
  const gracedb = client(ctx);
  const superevent = !isEventId(rec.graceid);
  const options = callOptions(s);
  const query = (): Promise<JsonObject[]> =>
    superevent ? gracedb.querySuperevents(range, options) : gracedb.queryEvents(range, options);
  const found = await attempt("querying for a selection already made", query);
  const id = (o: JsonObject) => o.graceid ?? o.superevent_id;
  return found.some((o) => id(o) !== rec.graceid && labelNames(o.labels).includes("EM_Selected"));
}

/** Puts the event through its pipeline's throttle; true when the pipeline is throttled. */
function throttle(p: Plan, ctx: ChildContext, t0: number): boolean {
  const rec = p.rec;
  const key = throttleKey(rec.group, rec.pipeline, rec.search);
  let th = findThrottle(ctx, key);
  if (!th) {
    th = new PipelineThrottle(t0, key, throttleParams(p.s, key), p.s.grouperWin);
    ctx.queue.insert(th);
  }
  for (const id of th.addEvent({ graceid: rec.graceid, t0, gpstime: rec.gpstime })) {
    p.label("EM_Throttled", id);
  }
  const throttled = th.throttled();
  if (throttled) p.note(`Pipeline ${key} is throttled (${th.distinct()} triggers > ${th.nthr}).`);
  return throttled;
}

/** Puts the event in its group, or supersedes it when a selection was already made. */
function group(p: Plan, ctx: ChildContext, t0: number, late: boolean, decide: () => Task): void {
  const rec = p.rec;
  let grouper = findGroup(ctx, rec.gpstime, p.s.grouperWin);
  if (!grouper) {
    if (late) {
      p.note("A trigger near this gpstime was selected already: superseding this one.");
      p.label("EM_Superseded");
      return;
    }
    grouper = new Grouper(t0, groupTag(rec.gpstime), rec.gpstime, decide());
    ctx.queue.insert(grouper);
  }
  grouper.addMember({
    graceid: rec.graceid,
    group: rec.group,
    pipeline: rec.pipeline,
    search: rec.search,
    far: rec.far,
  });
  rec.grouperGroupTag = grouper.tag;
  const members = grouper.members.map((m) => m.graceid);
  for (const id of members) {
    const member = id === rec.graceid ? rec : findRecord(ctx, id);
    if (member) member.grouperGroupMembers = [...members];
  }
}

/**
 * Decides on the `new` alert of a GW candidate. `late` is what
 * {@linkcode selectedAlready} found; `decide` makes a Grouper's task.
 */
export function onNew(
  p: Plan,
  ctx: ChildContext,
  entry: Entry,
  late: boolean,
  decide: () => Task,
): void {
  const rec = p.rec;
  rec.newSeen = true;
  if (throttle(p, ctx, entry.t0)) return;
  if (p.s.grouper) group(p, ctx, entry.t0, late, decide);
  else rec.injWaitUntil = entry.t0 + p.s.waitForHardwareInj;
}
