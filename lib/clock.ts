/**
 * The one clock the queue runtime reads and arms timers on, so tests can
 * drive time by hand.
 *
 * @module
 */

/** Time source and timer for the queue runtime. Times are epoch seconds. */
export interface Clock {
  /** Seconds since the Unix epoch, with sub-millisecond precision. */
  now(): number;
  /** Calls `fn` after `ms` milliseconds; returns a function that cancels it. */
  setTimer(fn: () => void, ms: number): () => void;
}

/** How early a timer is armed, to absorb the event loop's coarse wake-ups. */
const EARLY_MS = 1;
/** A timer that wakes this close to its target waits out the rest. */
const SPIN_MS = 2;

/**
 * Wall-clock time from the high-resolution monotonic timer. Its timers
 * are armed a millisecond early and then wait out the remainder, so they
 * fire within a fraction of a millisecond of their target rather than
 * one event-loop tick late.
 */
export const systemClock: Clock = {
  now: () => (performance.timeOrigin + performance.now()) / 1000,
  setTimer: (fn, ms) => {
    const target = performance.now() + ms;
    const fire = () => {
      const left = target - performance.now();
      if (left > SPIN_MS) {
        handle = setTimeout(fire, left - EARLY_MS);
        return;
      }
      while (performance.now() < target) {
        // Sub-millisecond wait: no timer is this precise.
      }
      fn();
    };
    let handle = setTimeout(fire, Math.max(0, ms - EARLY_MS));
    return () => clearTimeout(handle);
  },
};

/**
 * A clock that moves only when told to. Timers fire in due order inside
 * {@linkcode FakeClock.advance}.
 */
export class FakeClock implements Clock {
  #now: number;
  #next = 1;
  #timers = new Map<number, { at: number; fn: () => void }>();

  constructor(start = 1_000_000) {
    this.#now = start;
  }

  now(): number {
    return this.#now;
  }

  setTimer(fn: () => void, ms: number): () => void {
    const handle = this.#next++;
    this.#timers.set(handle, { at: this.#now + Math.max(0, ms) / 1000, fn });
    return () => this.#timers.delete(handle);
  }

  /** Number of armed timers. */
  get pending(): number {
    return this.#timers.size;
  }

  /**
   * Moves time forward by `seconds`, firing every timer that comes due, in
   * order; after each, awaits `settle` so async work it started can arm the
   * next timer.
   */
  async advance(
    seconds: number,
    settle: () => Promise<void> = () => Promise.resolve(),
  ): Promise<void> {
    const end = this.#now + seconds;
    for (;;) {
      let due: [number, { at: number; fn: () => void }] | undefined;
      for (const entry of this.#timers) {
        if (entry[1].at <= end && (!due || entry[1].at < due[1].at)) {
          due = entry;
        }
      }
      if (!due) break;
      this.#timers.delete(due[0]);
      this.#now = Math.max(this.#now, due[1].at);
      due[1].fn();
      await settle();
    }
    this.#now = end;
  }
}
