/**
 * The `approval_processor` handler (the original's `approval_processorMP`):
 * vets GraceDB candidates and drives their alerts. Each event gets a
 * record, checks (detectors, FAR, labels, hardware injections, iDQ,
 * operator and advocate signoffs, sky maps) and a state machine
 * (`new_to_preliminary` or, with the Grouper, `new_awaiting_grouperSelection`,
 * then `selected_to_preliminary`, `preliminary_to_initial`,
 * `initial_to_update`, `complete`, or `rejected`, `throttled`,
 * `superseded`); as it goes it applies labels, asks GraceDB for VOEvents
 * and mails people. A throttle per pipeline labels floods `EM_Throttled`;
 * the Grouper selects one of near-simultaneous triggers.
 *
 * Everything it knows lives in the child's queue, so checkpoints and the
 * journal cover it: one item per event (record, unprocessed alerts,
 * pending actions, forget timer), one per throttle, one per group.
 * `parseAlert` only files the alert; the event's work item does the
 * GraceDB reads and writes, and keeps them queued while GraceDB fails.
 *
 * Behaviour: `APPROVAL_PROCESSOR.md`; the README's `approval_processor`
 * section lists where it departs from the original.
 *
 * @module
 */

import { graceDbKind } from "../../lib/gracedb/mod.ts";
import type { Alert, ChildContext, CommandSpec, Ini } from "../../lib/mod.ts";
import { readEntry } from "./approval_processor/alerts.ts";
import { readSettings, settingsOf } from "./approval_processor/config.ts";
import { printEventDicts } from "./approval_processor/dump.ts";
import { ApEvent, findEvent } from "./approval_processor/events.ts";
import { kick } from "./approval_processor/process.ts";
import { resetThrottle } from "./approval_processor/throttle.ts";

export { ApEvent, ForgetMeNow } from "./approval_processor/events.ts";
export { Grouper } from "./approval_processor/grouper.ts";
export { ApWork, GrouperDecide, ProcessAlerts } from "./approval_processor/process.ts";
export {
  ManageThrottle,
  PipelineThrottle,
  poissonThreshold,
} from "./approval_processor/throttle.ts";

/**
 * The handler's own commands: `resetThrottle` (group, pipeline, optional
 * search), as the original's, and `printEventDicts` (optional graceid).
 */
export const commands: readonly CommandSpec[] = [resetThrottle, printEventDicts];

/** Checks the childConfig at start: every key of the original, with its type. */
export function validateConfig(config: Ini): void {
  readSettings(config);
}

function validId(id: string): boolean {
  try {
    graceDbKind(id);
    return true;
  } catch {
    return false;
  }
}

/**
 * Files an alert in its event's inbox (creating the event's item and
 * forget timer on first sight, re-arming the timer otherwise) and makes
 * the event's work run. Never waits for GraceDB.
 */
export function parseAlert(ctx: ChildContext, alert: Alert, t0: number, config: Ini): void {
  const s = settingsOf(config);
  const read = readEntry(alert, t0);
  const fields = { uid: alert.uid, alert_type: alert.alert_type };
  if (!read.ok) {
    ctx.log.event(
      "warning",
      "ap_bad_alert",
      { ...fields, reason: read.reason },
      `${alert.uid}: ${read.reason}`,
    );
    return;
  }
  if (!validId(alert.uid)) {
    const reason = "not a GraceDB id";
    ctx.log.event("warning", "ap_bad_alert", { ...fields, reason }, `${alert.uid}: ${reason}`);
    return;
  }
  let ev = findEvent(ctx, alert.uid);
  if (!ev) {
    ev = new ApEvent(t0, alert.uid, s.forgetTimeout);
    ctx.queue.insert(ev);
  } else if (read.entry.kind !== "new") {
    ev.rearm(t0, s.forgetTimeout);
  }
  ev.inbox.push(read.entry);
  kick(ctx, alert.uid, t0);
}
