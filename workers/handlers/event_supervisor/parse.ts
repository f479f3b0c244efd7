/**
 * `parseAlert`: which checks an alert creates (the original's NEW list
 * with `far thr`, FITS list and PARENT_CHILD table, then a site's own
 * checks), each built on its own so one that cannot be built costs
 * only itself (the original lost every item of the alert). It never
 * reads GraceDB: checks do, when they come due.
 *
 * @module
 */

import type { Alert, ChildContext, Ini } from "../../../lib/mod.ts";
import { type Change, classifyUpdate, isFits, readChange } from "./alerts.ts";
import { buildItem, type Origin } from "./build.ts";
import type { CheckSpec } from "./catalog_types.ts";
import { completeEarly } from "./early.ts";
import { isSupereventId, pyExp, words } from "./format.ts";
import { isAnnotation } from "./rules.ts";
import { type Settings, settingsOf } from "./settings.ts";
import { CheckItem } from "./task.ts";

const announced = new WeakSet<Ini>();

type Creating = Extract<Change, { kind: "new" | "update" }>;

/** The checks a new event creates, `far thr` applied. */
function forNew(
  ctx: ChildContext,
  s: Settings,
  config: Ini,
  graceid: string,
  change: Creating & { kind: "new" },
) {
  const out: CheckSpec[] = [];
  for (const spec of s.checks) {
    if (spec.on !== "new") continue;
    const far = change.far;
    if (far !== null && config.has(spec.section, "far thr")) {
      const thr = config.getFloat(spec.section, "far thr");
      if (far > thr) {
        ctx.log.event(
          "info",
          "item_skipped",
          { graceid, item: spec.section, far, thr },
          `skipping QueueItem=${spec.section} (large FAR ${pyExp(far, 3)} > ${pyExp(thr, 3)})`,
        );
        continue;
      }
    }
    out.push(spec);
  }
  return out;
}

/** The checks an update creates: the FITS list, its update name's children, a site's matches. */
function forUpdate(s: Settings, config: Ini, change: Creating & { kind: "update" }) {
  const fits = isFits(change.file) ? s.checks.filter((spec) => spec.on === "fits") : [];
  const chansets = (section: string) =>
    config.hasSection(section) ? words(config.get(section, "chansets", "")) : undefined;
  const name = classifyUpdate(change.description, change.file, chansets);
  const children = name === null ? [] : s.checks.filter((spec) => spec.on === name);
  const own = s.checks.filter((spec) =>
    spec.on === "update" && spec.match !== undefined &&
    [change.description, change.comment].some((text) =>
      spec.match!.regex ? new RegExp(spec.match!.text).test(text) : text.includes(spec.match!.text)
    )
  );
  return [...fits, ...children, ...own];
}

function duplicate(ctx: ChildContext, item: CheckItem): boolean {
  return ctx.queue.byGraceId(item.graceid ?? "").some((other) =>
    other instanceof CheckItem && other.name === item.name && other.key === item.key
  );
}

function create(ctx: ChildContext, s: Settings, spec: CheckSpec, origin: Origin): void {
  const { graceid } = origin;
  if (spec.section === "event creation" && isSupereventId(graceid)) {
    ctx.log.info(
      `skipping QueueItem=${spec.section} for ${graceid} (trigger files belong to events)`,
    );
    return;
  }
  let item: CheckItem;
  try {
    item = buildItem(spec, origin);
  } catch (error) {
    const reason = (error as Error)?.message ?? String(error);
    ctx.log.event(
      "error",
      "item_failed",
      { graceid, item: spec.section, reason },
      `could not create QueueItem=${spec.section} for ${graceid}: ${reason}`,
    );
    ctx.notify(
      `WARNING: event_supervisor could not create QueueItem=${spec.section} for ${graceid} on ${ctx.identity.hostname}`,
      `child   : ${ctx.child}\ngraceid : ${graceid}\nitem    : ${spec.section}\n\n${reason}`,
    );
    return;
  }
  if (item.complete) {
    ctx.log.debug(`skipping QueueItem=${spec.section} for ${graceid} (no task to run)`);
    return;
  }
  if (s.general.dedupe && duplicate(ctx, item)) {
    ctx.log.event(
      "info",
      "item_duplicate",
      { graceid, item: spec.section, key: item.key },
      `skipping QueueItem=${spec.section} for ${graceid} (one is already pending${
        item.key ? ` for ${item.key}` : ""
      })`,
    );
    return;
  }
  ctx.queue.insert(item);
  ctx.log.event("info", "item_added", {
    graceid,
    item: spec.section,
    key: item.key,
    tasks: item.tasks.length,
    due: item.expiration,
  }, `added QueueItem=${spec.section} for ${graceid}`);
}

/** Applies one alert (see the module doc). */
export function parseAlert(ctx: ChildContext, alert: Alert, t0: number, config: Ini): void {
  const s = settingsOf(config);
  if (!announced.has(config)) {
    announced.add(config);
    if (s.unread.length > 0) {
      ctx.log.info(`sections nothing reads: ${s.unread.map((x) => `[${x}]`).join(" ")}`);
    }
  }
  const change = readChange(alert);
  const graceid = alert.uid;
  if (change.kind === "ignore") {
    ctx.log.event("info", "alert_ignored", {
      uid: graceid,
      alert_type: alert.alert_type,
      reason: change.reason,
    }, `${graceid}: ${change.reason}`);
    return;
  }
  if (change.kind === "label" || change.kind === "signoff") return;
  let specs: CheckSpec[];
  if (change.kind === "new") specs = forNew(ctx, s, config, graceid, change);
  else {
    if (isAnnotation({ comment: change.comment, tag_names: change.tags ?? [] })) return;
    if (s.general.completeEarly) completeEarly(ctx, graceid, change);
    specs = forUpdate(s, config, change);
  }
  const origin: Origin = { graceid, t0, change, config, general: s.general };
  for (const spec of specs) create(ctx, s, spec, origin);
}
