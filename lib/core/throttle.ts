/**
 * At most one message of a kind per period: the original's warning mails
 * (an unreadable payload, an exception in parseAlert) are sent at most once
 * per `warnDelay`, and the next one says how many were held back.
 *
 * @module
 */

/**
 * Per-key rate limit: one pass per `period` seconds.
 *
 * @example
 * ```ts
 * const throttle = new Throttle(3600);
 * throttle.attempt("parse"); // { send: true, suppressed: 0 }
 * throttle.attempt("parse"); // { send: false }
 * ```
 */
export class Throttle {
  #period: number;
  #now: () => number;
  #keys = new Map<string, { last: number; held: number }>();

  /** A limit of one per `period` seconds, on the clock `now` (epoch seconds). */
  constructor(period: number, now: () => number = () => Date.now() / 1000) {
    this.#period = period;
    this.#now = now;
  }

  /** Whether a message of `key` may go now; if so, how many were held back since the last. */
  attempt(key: string): { send: true; suppressed: number } | { send: false } {
    const now = this.#now();
    const k = this.#keys.get(key);
    if (k && now - k.last < this.#period) {
      k.held++;
      return { send: false };
    }
    this.#keys.set(key, { last: now, held: 0 });
    return { send: true, suppressed: k?.held ?? 0 };
  }
}
