/**
 * Catch-up after a (re)connect: page back through a node's items, newest
 * first, until reaching the newest item already seen, the node's oldest
 * item, or a ceiling; what lies after the newest seen item is new, and is
 * handed back oldest first. Where the server offers XEP-0059 result set
 * management (ejabberd), each request asks for the page before the last
 * one; where it does not (Prosody 0.12 ignores `<set>`), each request asks
 * for twice as many of the newest items as the one before.
 *
 * When the newest seen item is no longer on the server (the node's
 * `max_items` or an expiry dropped it) or the ceiling is reached first,
 * alerts may have been lost in between: the result carries a
 * {@linkcode CatchUpGap}, never silence.
 *
 * On a node never watched before, what exists is history: the baseline
 * records its newest items as seen, without routing them.
 *
 * @module
 */

import type { ItemsPage, PubsubItem } from "./pubsub.ts";

/** What the catch-up reads and writes of the seen-id store. */
export interface CatchUpSeen {
  /** Whether the node was watched before (its baseline is recorded). */
  knows(node: string): boolean;
  has(node: string, id: string): boolean;
  /** Ids remembered for the node (0: nothing routed from it yet). */
  count(node: string): number;
  record(node: string, id: string): void;
  mark(node: string): void;
  flush(): Promise<void>;
}

/** What a catch-up needs. */
export interface CatchUpOptions {
  pubsub: { itemsPage(node: string, max: number, before?: string): Promise<ItemsPage> };
  seen: CatchUpSeen;
  /** Items per request (`--catch-up`). */
  pageSize: number;
  /** Most items caught up per node (`--catch-up-max`). */
  ceiling: number;
}

/** How paging back ended: at the newest seen item, at the node's oldest item, or at the ceiling. */
export type CatchUpEnd = "seen" | "oldest" | "ceiling";

/** Alerts may have been lost on a node: the catch-up could not reach the last item seen. */
export interface CatchUpGap {
  node: string;
  /**
   * `seen_gone`: the newest item seen is no longer on the server;
   * `ceiling`: more than `ceiling` items are newer than it.
   */
  reason: "seen_gone" | "ceiling";
  /** Items routed by this catch-up all the same. */
  routed: number;
  /** Items the node holds now, when the server says (or when all were read). */
  held: number | null;
  ceiling: number;
  /** Epoch seconds. */
  at: number;
  message: string;
}

/** What a catch-up found on one node. */
export interface CatchUpResult {
  node: string;
  /** Items newer than the newest one seen, oldest first: to route. */
  items: PubsubItem[];
  end: CatchUpEnd;
  /** Requests made. */
  requests: number;
  /** Items read from the server. */
  fetched: number;
  /** How the server paged: XEP-0059 result sets, or growing `max_items`. */
  paging: "rsm" | "max_items";
  /** Set when alerts may have been lost. */
  gap?: CatchUpGap;
}

/** Position of the newest seen item in `list`, or -1. */
function lastSeen(list: PubsubItem[], node: string, seen: CatchUpSeen): number {
  for (let i = list.length - 1; i >= 0; i--) if (seen.has(node, list[i]!.id)) return i;
  return -1;
}

/** The newest items, paged back until the newest seen item, the oldest item or `limit`. */
async function pageBack(
  node: string,
  o: CatchUpOptions,
  limit: number,
): Promise<Omit<CatchUpResult, "gap" | "node"> & { held: number | null }> {
  let list: PubsubItem[] = [];
  const ids = new Set<string>();
  let size = Math.max(1, Math.min(o.pageSize, limit));
  let before = "";
  let requests = 0;
  let fetched = 0;
  let held: number | null = null;
  let paging: "rsm" | "max_items" = "max_items";
  for (;;) {
    const page = await o.pubsub.itemsPage(node, size, before);
    requests++;
    fetched += page.items.length;
    let oldest: boolean;
    if (page.rsm) {
      paging = "rsm";
      const older = page.items.filter((item) => !ids.has(item.id));
      for (const item of older) ids.add(item.id);
      list = [...older, ...list];
      held = page.rsm.count ?? held;
      // A page that brings nothing new would bring nothing new forever.
      oldest = page.items.length < size || older.length === 0 || page.rsm.first === undefined ||
        (page.rsm.firstIndex ?? 1) <= 0;
      before = page.rsm.first ?? "";
      size = Math.max(1, Math.min(o.pageSize, limit - list.length));
    } else {
      // Each answer is the node's newest `size` items: it replaces the last.
      list = page.items;
      oldest = page.items.length < size;
      size = Math.min(size * 2, limit);
    }
    const cut = lastSeen(list, node, o.seen);
    const base = { requests, fetched, paging, held };
    if (cut >= 0) return { ...base, items: list.slice(cut + 1), end: "seen" };
    if (oldest) return { ...base, items: list, end: "oldest", held: held ?? list.length };
    if (list.length >= limit) return { ...base, items: list, end: "ceiling" };
  }
}

/**
 * Finds what a node received since the newest item seen. Routing is the
 * caller's: the result's `items`, in order.
 *
 * @throws the request's error (a stanza error, a timeout)
 */
export async function catchUp(
  node: string,
  o: CatchUpOptions,
  now: () => number = () => Date.now() / 1000,
): Promise<CatchUpResult> {
  // One more than the ceiling: the newest seen item may lie just past it.
  const found = await pageBack(node, o, o.ceiling + 1);
  const { held, ...rest } = found;
  const items = rest.end === "ceiling" ? rest.items.slice(-o.ceiling) : rest.items;
  const result: CatchUpResult = { node, ...rest, items };
  const seenBefore = o.seen.count(node) > 0;
  if (rest.end === "seen" || (rest.end === "oldest" && !seenBefore)) return result;
  const reason = rest.end === "ceiling" ? "ceiling" : "seen_gone";
  const message = reason === "ceiling"
    ? `more than ${o.ceiling} items on node ${node} are newer than the last one seen: ` +
      `the newest ${items.length} were routed, older ones may be lost (raise --catch-up-max)`
    : `the last item seen on node ${node} is no longer on the server (it holds ${
      held ?? "?"
    } items): ${items.length} were routed, alerts published before them may be lost`;
  result.gap = { node, reason, routed: items.length, held, ceiling: o.ceiling, at: now(), message };
  return result;
}

/**
 * Records a node's newest items as seen (history, not to be routed) and
 * marks the node as watched, on disk, before anything on it is routed.
 * Resolves with how many items were recorded.
 *
 * @throws the request's error
 */
export async function takeBaseline(node: string, o: CatchUpOptions): Promise<number> {
  const page = await o.pubsub.itemsPage(node, Math.max(1, o.pageSize));
  for (const item of page.items) if (item.id) o.seen.record(node, item.id);
  o.seen.mark(node);
  await o.seen.flush();
  return page.items.length;
}
