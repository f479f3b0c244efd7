/**
 * What an alert source (the XMPP session, a replay file) hands to the
 * router, and the memory of item ids already routed that both consult.
 *
 * @module
 */

import { KeyedIds } from "./bounded_set.ts";

/** An alert as a source hands it over. */
export interface RouteInput {
  node: string;
  /** The pubsub item id (or replay `id`), when there is one. */
  id: string | null;
  /** The payload: JSON text, or an already parsed value. */
  payload: unknown;
  /** Epoch seconds of receipt. */
  t0: number;
  /** Where it came from, for messages (`file:line`). */
  where?: string;
  /** Called once the alert is durable in its child's journal (when it is routed). */
  onJournaled?: () => void;
}

/** Remembers item ids already routed, per node. */
export interface SeenIds {
  /** Whether `id` was routed from `node`. */
  has(node: string, id: string): boolean;
  /** Remembers `id` as routed from `node`. */
  add(node: string, id: string): void;
  /**
   * Remembers `id` for good at once: for an item that is never journaled
   * (ignored, refused, a duplicate payload), so a catch-up stops at it
   * rather than offering it again or paging back past it. Without it, `add`.
   */
  record?(node: string, id: string): void;
}

/**
 * {@linkcode SeenIds} in memory only, bounded per node.
 *
 * @example
 * ```ts
 * const seen = new MemorySeenIds(1000);
 * seen.add("cbc_gstlal", "a1");
 * seen.has("cbc_gstlal", "a1"); // true
 * ```
 */
export class MemorySeenIds extends KeyedIds implements SeenIds {
  /** At most `limit` ids per node. @default {10000} */
  constructor(limit = 10_000) {
    super(limit);
  }
}
