/**
 * Catch-up after a (re)connect: a node's recent persisted items, routed
 * when not seen before. On a node never watched, what exists is history:
 * it is recorded as seen, not routed.
 *
 * @module
 */

import type { ChildLog } from "../core/log.ts";
import type { RouteInput } from "../core/source.ts";
import type { SeenStore } from "../durability/seen_store.ts";
import { condition, type Pubsub } from "./pubsub.ts";

/** What a catch-up needs. */
export interface CatchUpOptions {
  pubsub: Pubsub;
  seen: SeenStore;
  log: ChildLog;
  /** Items fetched per node. */
  limit: number;
  route(input: RouteInput): void;
  /** Epoch seconds, for `t0`. */
  now(): number;
}

/** Routes a node's recent items that were not seen before. */
export async function catchUp(node: string, o: CatchUpOptions): Promise<void> {
  const { seen, log } = o;
  if (o.limit === 0) {
    seen.mark(node);
    return await seen.flush();
  }
  let items;
  try {
    items = await o.pubsub.items(node, o.limit);
  } catch (error) {
    log.event("warning", "catch_up_failed", {
      node,
      condition: condition(error) ?? null,
      error: (error as Error).message,
    });
    return;
  }
  // On a node never watched before, its history is not ours to replay.
  const baseline = !seen.knows(node);
  let routed = 0;
  for (const item of items) {
    if (seen.has(node, item.id)) continue;
    if (baseline) {
      seen.record(node, item.id);
      continue;
    }
    routed++;
    o.route({
      node,
      id: item.id,
      payload: item.payload,
      t0: o.now(),
      where: `catch-up ${node} item ${item.id}`,
    });
  }
  seen.mark(node);
  // The node's baseline must be on disk before anything new is counted on it.
  if (baseline) await seen.flush();
  log.event("info", "caught_up", { node, items: items.length, routed, baseline });
}
