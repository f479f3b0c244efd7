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

/** Wall-clock time from the high-resolution monotonic timer. */
export const systemClock: Clock = {
  now: () => (performance.timeOrigin + performance.now()) / 1000,
  setTimer: (fn, ms) => {
    const handle = setTimeout(fn, ms);
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
