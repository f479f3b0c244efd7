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

/** The longest delay one `setTimeout` takes (2^31 - 1 ms, about 24.8 days). */
const MAX_TIMEOUT_MS = 2 ** 31 - 1;

/** How early a timer is armed, to absorb the event loop's coarse wake-ups. */
const EARLY_MS = 1;
/** A timer that wakes this close to its target waits out the rest. */
const SPIN_MS = 2;
/** Timers coming this close together are a busy stream: no waiting out. */
const BUSY_MS = 2;
/** The longest the event loop is held at once while waiting out. */
const SLICE_MS = 0.1;
let lastFire = -Infinity;
const cell = new Int32Array(new SharedArrayBuffer(4));

/** Sleeps up to `ms` (a fraction of a millisecond) without using the CPU. */
function nap(ms: number): void {
  try {
    Atomics.wait(cell, 0, 0, ms);
  } catch {
    // A main thread may not block: spin instead, it is that short.
    const end = performance.now() + ms;
    while (performance.now() < end) {
      // Sub-millisecond wait: no timer is this precise.
    }
  }
}

/**
 * Where the thread that posts messages to this one counts them, once set
 * ({@linkcode useDoorbell}), and how many this thread has taken.
 */
let doorbell: Int32Array | undefined;
let taken = 0;

/** Counts a message this thread took from the one that rings its doorbell. */
function messageTaken(): void {
  taken = (taken + 1) | 0;
}

/**
 * Wraps this thread's handler of messages from the thread that rings its
 * doorbell: install it for every message (also one that could not be
 * read), from the very first. A message counts as taken only once its
 * handler has run and the microtasks that handler queued have too. A
 * timer's wait-out can run between the two (its port's message may come
 * in the same turn of the event loop as the alert): it then still sees
 * the message pending and lets it through, where counting it at once let
 * the wait-out sleep until its target (up to 2 ms) with the alert's
 * handling held in the microtask queue.
 */
export function takeMessages<T>(handler: (data: T) => void): (data: T) => void {
  return (data) => {
    try {
      handler(data);
    } finally {
      queueMicrotask(messageTaken);
    }
  };
}

/** Whether messages were posted to this thread (its doorbell rung) and not yet taken. */
export function messagesPending(): boolean {
  return doorbell !== undefined && ((Atomics.load(doorbell, 0) - taken) | 0) > 0;
}

/**
 * Lets this thread's timers wait out their last milliseconds in one sleep
 * that a posted message ends: the poster adds 1 to `bell[0]` and notifies
 * it after each `postMessage` ({@linkcode ringDoorbell}). Without one, the
 * wait is cut into naps of a tenth of a millisecond, each followed by a
 * turn of the event loop to let messages in, which costs far more CPU.
 */
export function useDoorbell(bell: Int32Array): void {
  doorbell = bell;
}

/** The poster's side: a message was posted to the thread that waits on `bell`. */
export function ringDoorbell(bell: Int32Array): void {
  Atomics.add(bell, 0, 1);
  Atomics.notify(bell, 0);
}

/**
 * Sleeps up to `ms` unless a message is posted meanwhile (or is already
 * waiting: fewer than the count on the bell were `took`). Says which.
 */
export function waitForPost(
  bell: Int32Array,
  took: number,
  ms: number,
): "pending" | "posted" | "timed-out" {
  const posted = Atomics.load(bell, 0);
  if (((posted - took) | 0) > 0) return "pending";
  const woke = Atomics.wait(bell, 0, posted, ms);
  return woke === "timed-out" ? "timed-out" : "posted";
}

/**
 * Wall-clock time from the high-resolution monotonic timer. Its timers
 * are armed a millisecond early and then wait out the remainder, so they
 * fire within a fraction of a millisecond of their target rather than one
 * event-loop tick late, without holding up messages: with a doorbell in
 * one sleep that a posted message ends, else in naps of a tenth of a
 * millisecond with messages let in between.
 */
export const systemClock: Clock = {
  now: () => (performance.timeOrigin + performance.now()) / 1000,
  setTimer: (fn, ms) => {
    // Longer waits are re-armed in pieces: setTimeout cannot wait that long.
    if (ms > MAX_TIMEOUT_MS / 2) {
      const target = performance.now() + ms;
      let cancel = () => {};
      const arm = () => {
        const left = target - performance.now();
        if (left <= MAX_TIMEOUT_MS / 2) cancel = systemClock.setTimer(fn, left);
        else {
          const piece = setTimeout(arm, MAX_TIMEOUT_MS / 2);
          cancel = () => clearTimeout(piece);
        }
      };
      arm();
      return () => cancel();
    }
    const target = performance.now() + ms;
    let cancelled = false;
    const run = () => {
      lastFire = performance.now();
      fn();
    };
    if (target - lastFire < BUSY_MS) {
      // A dense stream of timers runs at the event loop's precision.
      const plain = setTimeout(run, ms);
      return () => clearTimeout(plain);
    }
    let port: MessageChannel | undefined;
    // Both ports: one left open stays in the runtime's resource table for good.
    const close = () => {
      port?.port1.close();
      port?.port2.close();
      port = undefined;
    };
    const step = () => {
      const left = target - performance.now();
      if (cancelled) return;
      if (left <= 0) {
        close();
        return run();
      }
      if (!doorbell) nap(Math.min(left, SLICE_MS));
      else if (waitForPost(doorbell, taken, left) === "timed-out") return step();
      // A macrotask between naps lets pending messages (alerts) through.
      port ??= new MessageChannel();
      port.port2.onmessage = step;
      port.port1.postMessage(null);
    };
    const fire = () => {
      const left = target - performance.now();
      if (left > SPIN_MS) handle = setTimeout(fire, left - EARLY_MS);
      else step();
    };
    let handle = setTimeout(fire, Math.max(0, ms - EARLY_MS));
    return () => {
      cancelled = true;
      clearTimeout(handle);
      close();
    };
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
