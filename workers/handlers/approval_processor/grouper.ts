/**
 * The Grouper (§4): near-simultaneous triggers join one group, keyed by
 * its tag; `decisionWin` seconds after the first joined, one is selected
 * (`EM_Selected`) and the others superseded (`EM_Superseded`), and each
 * member's log gets the decision as JSON. The decision's GraceDB writes go
 * to the members' outboxes (see `process.ts`), so they are retried like
 * any other action.
 *
 * @module
 */

import { type ChildContext, QueueItem, type Task } from "../../../lib/mod.ts";
import { pyFloat } from "./text.ts";

/** A member as the decision compares it. */
export interface GroupMember {
  graceid: string;
  group: string;
  pipeline: string;
  search: string;
  far: number | null;
}

const PIPELINES = new Set(["gstlal", "MBTAOnline", "pycbc", "gstlal-spiir", "CWB", "LIB"]);
const SEARCHES = new Set(["LowMass", "HighMass", "AllSky", ""]);

function rank(m: GroupMember): [number, number, number] {
  const group = m.group === "CBC" ? 1 : m.group === "Burst" ? 0 : -1;
  return [group, PIPELINES.has(m.pipeline) ? 0 : -1, SEARCHES.has(m.search) ? 0 : -1];
}

/**
 * Whether `m` wins over the `current` selection: higher group, pipeline,
 * then search rank; then the lower FAR (a missing FAR counts as the
 * highest); on a tie the current selection stays.
 */
export function preferred(m: GroupMember, current: GroupMember): boolean {
  const a = rank(m);
  const b = rank(current);
  for (let i = 0; i < 3; i++) {
    if (a[i] !== b[i]) return a[i]! > b[i]!;
  }
  const far = (x: GroupMember) => x.far ?? Infinity;
  return far(m) < far(current);
}

/** The member selected among `members` (the first wins ties). */
export function select(members: readonly GroupMember[]): GroupMember | undefined {
  let best = members[0];
  for (const m of members.slice(1)) if (best && preferred(m, best)) best = m;
  return best;
}

/** The tag of a new group: `Group_<gpstime>`. */
export function groupTag(gpstime: number): string {
  return `Group_${pyFloat(gpstime)}`;
}

/** The decision, as uploaded to each member's log. */
export interface Decision {
  groupTag: string;
  EM_Selected: string;
  EM_Superseded: string[];
}

/** One group of near-simultaneous triggers; its one task decides. */
export class Grouper extends QueueItem {
  tag: string;
  /** The first member's gpstime: later ones join when within grouperWin of it. */
  gpstime: number;
  members: GroupMember[] = [];

  constructor(t0: number, tag: string, gpstime: number, decide: Task) {
    super(t0, [decide], { graceid: tag });
    this.tag = tag;
    this.gpstime = gpstime;
  }

  /** Adds a member (once). */
  addMember(member: GroupMember): void {
    if (!this.members.some((m) => m.graceid === member.graceid)) this.members.push(member);
  }

  /** The decision: the selected member and the superseded ones. */
  decide(): Decision | undefined {
    const winner = select(this.members);
    if (!winner) return undefined;
    return {
      groupTag: this.tag,
      EM_Selected: winner.graceid,
      EM_Superseded: this.members.filter((m) => m !== winner).map((m) => m.graceid),
    };
  }
}

/** The Grouper a new trigger joins: the nearest whose first member is within `win` seconds. */
export function findGroup(ctx: ChildContext, gpstime: number, win: number): Grouper | undefined {
  let best: Grouper | undefined;
  for (const item of ctx.queue.items()) {
    if (!(item instanceof Grouper)) continue;
    const d = Math.abs(item.gpstime - gpstime);
    if (d < win && (!best || d < Math.abs(best.gpstime - gpstime))) best = item;
  }
  return best;
}
