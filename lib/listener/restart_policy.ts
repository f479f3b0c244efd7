/**
 * What to do when a child dies: restart it, give up on it after too many
 * deaths within a window, or stop the listener (the section's
 * `on_child_death = exit`, as the original did).
 *
 * @module
 */

/** The section settings a policy follows. */
export interface RestartRules {
  onChildDeath: "restart" | "exit";
  /** Deaths tolerated within the window. */
  maxRestarts: number;
  /** Seconds. */
  restartWindow: number;
}

/** What to do about one death. */
export type RestartDecision =
  | { action: "restart"; deaths: number }
  | { action: "give_up"; deaths: number }
  | { action: "exit" };

/**
 * One child's deaths, judged against its section's rules.
 *
 * @example
 * ```ts
 * const policy = new RestartPolicy({ onChildDeath: "restart", maxRestarts: 1, restartWindow: 60 });
 * policy.died(0).action; // "restart"
 * policy.died(1000).action; // "give_up"
 * ```
 */
export class RestartPolicy {
  #rules: RestartRules;
  #deaths: number[] = [];

  /** A policy for one child. */
  constructor(rules: RestartRules) {
    this.#rules = rules;
  }

  /** Records a death at `now` (ms, monotonic) and says what to do. */
  died(now: number = performance.now()): RestartDecision {
    const rules = this.#rules;
    if (rules.onChildDeath === "exit") return { action: "exit" };
    this.#deaths = this.#deaths.filter((t) => now - t < rules.restartWindow * 1000);
    this.#deaths.push(now);
    const deaths = this.#deaths.length;
    return deaths > rules.maxRestarts
      ? { action: "give_up", deaths }
      : { action: "restart", deaths };
  }
}
