/**
 * Small async building blocks shared by every long-lived component:
 * {@linkcode delay} and {@linkcode retry} (shaped like Deno std's
 * `async/delay` and `async/retry`), {@linkcode nextTurn},
 * {@linkcode deadline} and {@linkcode Serializer}.
 *
 * @module
 */

/** Options for {@linkcode delay}. */
export interface DelayOptions {
  /** Aborting it ends the wait at once, rejecting with the signal's reason. */
  signal?: AbortSignal | undefined;
  /**
   * Whether the timer keeps the process alive while it waits.
   *
   * @default {true}
   */
  persistent?: boolean;
}

/**
 * Resolves on a later turn of the event loop, once what was ready meanwhile
 * has run (timers come due, messages): the break long work takes between
 * slices. A message to itself: 10-20 µs, where `setTimeout(fn, 0)` takes
 * 1-2 ms in Deno 2.9 (measured on Linux), which made sliced work wait
 * twice as long as it worked.
 *
 * @example
 * ```ts
 * await nextTurn();
 * ```
 */
export function nextTurn(): Promise<void> {
  const { port1, port2 } = new MessageChannel();
  return new Promise((resolve) => {
    port2.onmessage = () => {
      // Both closed: a port left open stays in the runtime's resource table
      // for good (and port2, listening, would keep the event loop alive).
      port1.close();
      port2.close();
      resolve();
    };
    port1.postMessage(null);
  });
}

/**
 * Resolves after `ms` milliseconds, or rejects with the signal's reason as
 * soon as `signal` aborts. The timer and the listener are always removed.
 *
 * @example
 * ```ts
 * const stop = new AbortController();
 * await delay(10, { signal: stop.signal });
 * ```
 */
export function delay(ms: number, options: DelayOptions = {}): Promise<void> {
  const { signal, persistent = true } = options;
  if (signal?.aborted) return Promise.reject(signal.reason);
  return new Promise((resolve, reject) => {
    const abort = () => {
      clearTimeout(timer);
      reject(signal!.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", abort);
      resolve();
    }, Math.max(0, ms));
    if (!persistent) Deno.unrefTimer(timer);
    signal?.addEventListener("abort", abort, { once: true });
  });
}

/**
 * Resolves once `signal` aborts (at once if it already has).
 *
 * @example
 * ```ts
 * const stop = new AbortController();
 * setTimeout(() => stop.abort(), 10);
 * await whenAborted(stop.signal);
 * ```
 */
export function whenAborted(signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    signal.addEventListener("abort", () => resolve(), { once: true });
  });
}

/** Thrown by {@linkcode retry} when every attempt failed; the last error is its `cause`. */
export class RetryError extends Error {
  /** How many attempts were made. */
  readonly attempts: number;

  /** Wraps the last attempt's error. */
  constructor(cause: unknown, attempts: number) {
    super(
      `Retrying exceeded the maximum attempts (${attempts}): ${
        cause instanceof Error ? cause.message : String(cause)
      }`,
      { cause },
    );
    this.name = "RetryError";
    this.attempts = attempts;
  }
}

/** Options for {@linkcode retry}. */
export interface RetryOptions {
  /** Growth factor of the wait between attempts. @default {2} */
  multiplier?: number;
  /** Longest wait between attempts, in ms. @default {60000} */
  maxTimeout?: number;
  /** Attempts in all (`Infinity`: until it works or is aborted). @default {5} */
  maxAttempts?: number;
  /** First wait, in ms. @default {1000} */
  minTimeout?: number;
  /**
   * Fraction of each wait that is random: 0 waits exactly, 1 anywhere from
   * nothing to the full wait, 0.5 (keeps retrying clients apart without
   * retrying early) between half and all of it.
   *
   * @default {1}
   */
  jitter?: number;
  /** Aborting it ends the waiting at once (rejecting with its reason). */
  signal?: AbortSignal | undefined;
  /**
   * Whether an error is worth another attempt; an error it refuses is
   * thrown at once, as it is.
   *
   * @default {every error}
   */
  shouldRetry?: (error: unknown, attempt: number) => boolean;
  /** Hears about each failed attempt before the wait that follows it. */
  onRetry?: (error: unknown, attempt: number, waitMs: number) => void;
}

/**
 * The wait before attempt `attempt + 1` (0-based `attempt`), with jitter.
 *
 * @example
 * ```ts
 * backoff(3, { minTimeout: 1000, maxTimeout: 30000, jitter: 0 }); // 8000
 * ```
 */
export function backoff(attempt: number, options: RetryOptions = {}): number {
  const { multiplier = 2, maxTimeout = 60_000, minTimeout = 1000, jitter = 1 } = options;
  const full = Math.min(maxTimeout, minTimeout * multiplier ** attempt);
  return full - Math.random() * jitter * full;
}

/**
 * Calls `fn` until it resolves, waiting longer after each failure
 * (exponential backoff with jitter).
 *
 * @throws {RetryError} after `maxAttempts` failures (the last error is its cause)
 * @throws the error itself when `shouldRetry` refuses it
 * @throws the signal's reason when `signal` aborts
 *
 * @example
 * ```ts
 * const text = await retry(() => fetch("http://127.0.0.1:1/").then((r) => r.text()), {
 *   maxAttempts: 1,
 * }).catch((error) => String(error));
 * ```
 */
export async function retry<T>(
  fn: (attempt: number) => Promise<T> | T,
  options: RetryOptions = {},
): Promise<T> {
  const maxAttempts = options.maxAttempts ?? 5;
  for (let attempt = 0;; attempt++) {
    options.signal?.throwIfAborted();
    try {
      return await fn(attempt);
    } catch (error) {
      if (options.signal?.aborted) throw options.signal.reason;
      if (options.shouldRetry && !options.shouldRetry(error, attempt)) throw error;
      if (attempt + 1 >= maxAttempts) throw new RetryError(error, attempt + 1);
      const wait = backoff(attempt, options);
      options.onRetry?.(error, attempt, wait);
      await delay(wait, { signal: options.signal });
    }
  }
}

/** Thrown by {@linkcode deadline} when the time is up. */
export class DeadlineError extends Error {
  /** Builds the error; `message` says what did not finish. */
  constructor(message: string) {
    super(message);
    this.name = "DeadlineError";
  }
}

/**
 * Settles like `promise`, or rejects with a {@linkcode DeadlineError} after
 * `ms` milliseconds, whichever comes first. The timer is always cleared.
 *
 * @example
 * ```ts
 * await deadline(Promise.resolve(1), 1000, "answer");
 * ```
 */
export async function deadline<T>(promise: Promise<T>, ms: number, what = "work"): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new DeadlineError(`${what} did not finish within ${ms / 1000} s`)),
          ms,
        );
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Runs async work one piece at a time, in the order it was given: each
 * piece starts once the one before it has settled (a failure does not
 * stop the line).
 *
 * @example
 * ```ts
 * const line = new Serializer();
 * const a = line.run(async () => 1);
 * const b = line.run(() => 2); // starts after a settles
 * console.log(await a + await b);
 * ```
 */
export class Serializer {
  #tail: Promise<unknown> = Promise.resolve();

  /** Queues `work`; resolves or rejects with its result. */
  run<T>(work: () => Promise<T> | T): Promise<T> {
    const result = this.#tail.then(work);
    this.#tail = result.catch(() => {});
    return result;
  }

  /** Resolves once everything queued so far (and queued meanwhile) has settled. */
  async idle(): Promise<void> {
    let seen: Promise<unknown>;
    do {
      seen = this.#tail;
      await seen;
    } while (seen !== this.#tail);
  }
}
