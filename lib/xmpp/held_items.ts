/**
 * Items pushed by the server while their node is not yet caught up. A
 * server may push at once after a (re)connect or a subscription: new
 * items, and old ones again (ejabberd's last item on subscribe, with a
 * `<delay/>` stamp). They wait here until the node's baseline and
 * catch-up are done, so that history is recognised as such, and catch-up
 * items (older) are routed before them.
 *
 * @module
 */

import type { RouteInput } from "../core/source.ts";

/**
 * Per-node queues of held items.
 *
 * @example
 * ```ts
 * const held = new HeldItems();
 * held.hold(["n"]);
 * held.offer({ node: "n", id: "1", payload: "{}", t0: 0 }); // true: kept
 * held.release("n", () => false).length; // 1
 * held.offer({ node: "n", id: "2", payload: "{}", t0: 0 }); // false: route it now
 * ```
 */
export class HeldItems {
  #nodes = new Map<string, RouteInput[]>();

  /** Holds what arrives for `nodes` from now on (and drops anything held before). */
  hold(nodes: Iterable<string>): void {
    this.#nodes = new Map([...nodes].map((node) => [node, []]));
  }

  /** Holds what arrives for `nodes` from now on too, keeping what other nodes hold. */
  add(nodes: Iterable<string>): void {
    for (const node of nodes) if (!this.#nodes.has(node)) this.#nodes.set(node, []);
  }

  /** Whether `node`'s items are being held. */
  holds(node: string): boolean {
    return this.#nodes.has(node);
  }

  /** Keeps `input` if its node is held; false when it should be routed now. */
  offer(input: RouteInput): boolean {
    const queue = this.#nodes.get(input.node);
    if (!queue) return false;
    queue.push(input);
    return true;
  }

  /**
   * Stops holding `node`; returns what was held, in arrival order, without
   * the items `known` says were routed already.
   */
  release(node: string, known: (input: RouteInput) => boolean): RouteInput[] {
    const queue = this.#nodes.get(node);
    this.#nodes.delete(node);
    return (queue ?? []).filter((input) => !known(input));
  }

  /** Nodes still held. */
  nodes(): string[] {
    return [...this.#nodes.keys()];
  }

  /** Drops everything held (the connection they came on is gone). */
  clear(): void {
    this.#nodes.clear();
  }
}
