/**
 * `printEventDicts`: the records as the original's `EventDicts.txt` showed
 * them (each graceid, then its fields in sorted order, the once-only
 * memory left out), for operators asking what the processor knows.
 *
 * @module
 */

import type { ChildContext, CommandSpec } from "../../../lib/mod.ts";
import { ApEvent } from "./events.ts";
import type { EventRecord } from "./record.ts";

function value(v: unknown): string {
  return typeof v === "string" ? v : JSON.stringify(v);
}

/** One record in the `EventDicts.txt` layout. */
export function describeRecord(rec: EventRecord): string {
  const keys = Object.keys(rec).filter((k) => k !== "loggermessages").sort();
  const fields = rec as unknown as Record<string, unknown>;
  return [rec.graceid, ...keys.map((k) => `    ${k}: ${value(fields[k])}`), ""].join("\n");
}

function records(ctx: ChildContext, graceid: string | undefined): EventRecord[] {
  const items = graceid === undefined ? ctx.queue.items() : ctx.queue.byGraceId(graceid);
  return items
    .filter((i): i is ApEvent => i instanceof ApEvent)
    .flatMap((i) => (i.record ? [i.record] : []))
    .sort((a, b) => a.graceid.localeCompare(b.graceid));
}

/** Shows the records (all, or the one of `graceid`). */
export const printEventDicts: CommandSpec = {
  name: "printEventDicts",
  description: "shows the event records as EventDicts.txt did ('graceid' for one)",
  optional: ["graceid"],
  run(ctx, kwargs) {
    const graceid = kwargs.graceid === undefined ? undefined : String(kwargs.graceid);
    const found = records(ctx, graceid);
    ctx.log.event("info", "command", { command: "printEventDicts", records: found.length });
    if (found.length === 0) return graceid ? `no record for ${graceid}` : "no records";
    return found.map(describeRecord).join("\n");
  },
};
