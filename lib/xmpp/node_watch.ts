/**
 * Which configured nodes still exist. Prosody tells subscribers when a
 * node is deleted; ejabberd, by default, does not: so besides the
 * notification and what each reconnect finds, the session asks at an
 * interval (one disco#items request for all nodes, then disco#info for a
 * node missing from the list, which may have been cut short).
 *
 * @module
 */

import type { ChildLog } from "../core/log.ts";
import type { Pubsub } from "./pubsub.ts";

/** How a deletion was noticed. */
export type DeletionHow = "notified" | "reconnect" | "check";

/** Options for {@linkcode NodeWatch}. */
export interface NodeWatchOptions {
  nodes: readonly string[];
  /** The pubsub service, for messages. */
  service: string;
  /** Seconds between checks (0: never). */
  interval: number;
  log: ChildLog;
  /** A configured node was found deleted (once, until it is subscribed again). */
  deleted(node: string, how: DeletionHow): void;
}

/** Deleted nodes, and the periodic check that finds them. */
export class NodeWatch {
  #o: NodeWatchOptions;
  #deleted = new Set<string>();
  #timer: ReturnType<typeof setTimeout> | undefined;

  constructor(options: NodeWatchOptions) {
    this.#o = options;
  }

  /** Configured nodes found deleted. */
  get deleted(): string[] {
    return [...this.#deleted];
  }

  /** The node is subscribed (again): it exists. */
  found(node: string): void {
    this.#deleted.delete(node);
  }

  /** The node is gone; reported once, until it is {@linkcode found} again. */
  gone(node: string, how: DeletionHow): void {
    if (!this.#o.nodes.includes(node) || this.#deleted.has(node)) return;
    this.#deleted.add(node);
    this.#o.log.event(
      "error",
      "node_deleted",
      { node, how },
      `node ${node} was deleted on ${this.#o.service}: nothing more will come from it`,
    );
    this.#o.deleted(node, how);
  }

  /** Checks `subscribed()` nodes through `pubsub` every interval, until {@linkcode disarm}. */
  arm(pubsub: Pubsub, subscribed: () => string[]): void {
    this.disarm();
    const seconds = this.#o.interval;
    if (!(seconds > 0)) return;
    this.#timer = setTimeout(async () => {
      await this.#check(pubsub, subscribed);
      if (this.#timer !== undefined) this.arm(pubsub, subscribed);
    }, seconds * 1000);
  }

  /** Stops checking. */
  disarm(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  async #check(pubsub: Pubsub, subscribed: () => string[]): Promise<void> {
    try {
      const listed = new Set(await pubsub.nodes());
      for (const node of subscribed()) {
        // A long list may be cut short: ask about the node itself before concluding.
        if (!listed.has(node) && !(await pubsub.exists(node))) this.gone(node, "check");
      }
    } catch (error) {
      this.#o.log.event("debug", "node_check_failed", { error: (error as Error).message });
    }
  }
}
