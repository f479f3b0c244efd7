/**
 * Where each event's state lives: an {@linkcode ApEvent} queue item keyed
 * by its graceid, whose fields are the record, the alerts not yet
 * processed (inbox) and the actions not yet carried out (outbox), and
 * whose one task is the forget timer. Snapshots save it like any item, so
 * a restart finds every record, and every pending action, as it was.
 *
 * @module
 */

import { type ChildContext, QueueItem, Task } from "../../../lib/mod.ts";
import type { Entry } from "./alerts.ts";
import type { Effect } from "./plan.ts";
import type { EventRecord } from "./record.ts";
import { stamp } from "./text.ts";

/** Forgets the record `forgetmenow_timeout` seconds after the event's last alert (§5). */
export class ForgetMeNow extends Task {
  execute(ctx: ChildContext, item: QueueItem): void {
    const ev = item as ApEvent;
    const id = ev.graceid ?? "";
    ctx.log.event(
      "info",
      "ap",
      { graceid: id },
      `${id} -- Removing event dictionary upon expiration time.`,
    );
    if (ev.outbox.length > 0 || ev.inbox.length > 0) {
      ctx.log.event(
        "warning",
        "ap_forgotten_with_work",
        {
          graceid: id,
          inbox: ev.inbox.length,
          outbox: ev.outbox.length,
        },
        `${id}: forgotten with ${ev.inbox.length} alert(s) and ${ev.outbox.length} action(s) pending`,
      );
    }
    // cleanUpQueue: the event's other items go with it.
    for (const other of ctx.queue.byGraceId(id)) if (other !== ev) other.complete = true;
  }
}

/** One event's record and pending work. */
export class ApEvent extends QueueItem {
  /** Null until built from the `new` alert or from GraceDB. */
  record: EventRecord | null = null;
  /** Alerts waiting to be processed, oldest first. */
  inbox: Entry[] = [];
  /** Actions waiting to be carried out, oldest first. */
  outbox: Effect[] = [];
  /** GraceDB failures in a row (for retry delays and reports). */
  failures = 0;

  constructor(t0: number, graceid: string, forgetTimeout: number) {
    super(t0, [new ForgetMeNow(forgetTimeout)], { graceid });
  }

  /** Re-arms the forget timer from `t0` (an alert arrived). */
  rearm(t0: number, forgetTimeout: number): void {
    for (const task of this.tasks) task.timeout = forgetTimeout;
    this.setExpiration(t0);
    if (this.record) this.record.expirationtime = expirationText(this.expiration);
  }
}

/** `<unix time> -- <YYYY-mm-dd HH:MM:SS>` as the record shows its expiry. */
export function expirationText(seconds: number): string {
  return `${seconds} -- ${stamp(seconds)}`;
}

/** The event's item, if it is tracked. */
export function findEvent(ctx: ChildContext, graceid: string): ApEvent | undefined {
  return ctx.queue.byGraceId(graceid).find((i): i is ApEvent => i instanceof ApEvent);
}

/** The record of a tracked event, if built. */
export function findRecord(ctx: ChildContext, graceid: string): EventRecord | undefined {
  return findEvent(ctx, graceid)?.record ?? undefined;
}
