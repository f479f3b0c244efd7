/**
 * A small typed event emitter: components announce what happened to them
 * (`ready`, `died`, `online`, ...) and whoever wired them listens, instead
 * of passing callback bags down through constructors.
 *
 * @module
 */

/** A listener of one event type. */
export type Listener<T> = (payload: T) => void;

/** Options for {@linkcode Emitter.on}. */
export interface OnOptions {
  /** Removes the listener when it aborts. */
  signal?: AbortSignal | undefined;
  /** Removes the listener after its first call. @default {false} */
  once?: boolean;
}

/**
 * Typed events: `Events` maps each event name to its payload type.
 * Listeners run synchronously, in the order they were added; an error a
 * listener throws reaches the caller of {@linkcode Emitter.emit}, as with
 * Node's `EventEmitter`.
 *
 * @example
 * ```ts
 * const events = new Emitter<{ ready: { child: string } }>();
 * events.on("ready", ({ child }) => console.log(child));
 * events.emit("ready", { child: "cbc" });
 * ```
 */
export class Emitter<Events extends Record<string, unknown>> {
  #listeners = new Map<keyof Events, Set<Listener<never>>>();

  /** Adds a listener; returns a function that removes it. */
  on<K extends keyof Events>(
    type: K,
    listener: Listener<Events[K]>,
    options: OnOptions = {},
  ): () => void {
    let set = this.#listeners.get(type);
    if (!set) this.#listeners.set(type, set = new Set());
    const fn: Listener<Events[K]> = options.once
      ? (payload) => {
        off();
        listener(payload);
      }
      : listener;
    set.add(fn as Listener<never>);
    const off = () => {
      set.delete(fn as Listener<never>);
      options.signal?.removeEventListener("abort", off);
    };
    options.signal?.addEventListener("abort", off, { once: true });
    return off;
  }

  /** Resolves with the payload of the next `type` event. */
  next<K extends keyof Events>(
    type: K,
    options: { signal?: AbortSignal } = {},
  ): Promise<Events[K]> {
    return new Promise((resolve, reject) => {
      if (options.signal?.aborted) return reject(options.signal.reason);
      const off = this.on(type, (payload) => {
        options.signal?.removeEventListener("abort", abort);
        resolve(payload);
      }, { once: true });
      const abort = () => {
        off();
        reject(options.signal!.reason);
      };
      options.signal?.addEventListener("abort", abort, { once: true });
    });
  }

  /** Calls every listener of `type` with `payload`. */
  emit<K extends keyof Events>(type: K, payload: Events[K]): void {
    const set = this.#listeners.get(type);
    if (!set) return;
    for (const listener of [...set]) (listener as Listener<Events[K]>)(payload);
  }
}
