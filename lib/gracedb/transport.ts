/**
 * One GraceDB HTTP call, whole: headers (User-Agent, Accept,
 * Authorization for the GraceDB origin only), a timeout per attempt,
 * retries with exponential backoff on network errors, timeouts, 408, 429
 * and 5xx (waiting at least what `Retry-After` asks, within reason), and a
 * bound on the total time. Not exported from `mod.ts`: the client wraps it.
 *
 * @module
 */

import { delay, retry, RetryError } from "../core/async.ts";
import type { GraceDbAuth } from "./auth.ts";
import { GraceDbError, retryAfterMs, serverMessage } from "./error.ts";

/** Settings of a {@linkcode Transport}, filled by the client. */
export interface TransportSettings {
  base: URL;
  auth: GraceDbAuth;
  userAgent: string;
  timeoutMs: number;
  totalTimeMs: number;
  maxAttempts: number;
  minBackoffMs: number;
  maxBackoffMs: number;
  jitter: number;
  maxRetryAfterMs: number;
  retryWrites: boolean;
  signal: AbortSignal | undefined;
  onRetry: ((error: GraceDbError, attempt: number, waitMs: number) => void) | undefined;
}

/** Per-call overrides. */
export interface CallSettings {
  signal?: AbortSignal | undefined;
  timeoutMs?: number | undefined;
  totalTimeMs?: number | undefined;
  maxAttempts?: number | undefined;
}

/** A request: a path under the API root, or an absolute URL on the same origin. */
export interface RequestSpec {
  method: "GET" | "POST" | "PUT" | "DELETE";
  target: string | URL;
  body?: string | FormData;
  /** Content-Type of a string body. */
  contentType?: string;
  /** The Accept header. @default {"application/json"} */
  accept?: string;
}

/** A successful (2xx) answer, read whole. */
export interface Answer {
  status: number;
  headers: Headers;
  bytes: Uint8Array;
  url: string;
}

const MULTIPLIER = 2;

/** Sends GraceDB requests with timeouts, retries and a total bound. */
export class Transport {
  readonly #s: TransportSettings;
  readonly #authorization: string | undefined;

  constructor(settings: TransportSettings) {
    this.#s = settings;
    this.#authorization = authorizationHeader(settings.auth);
  }

  /** The absolute URL of `target`; refuses another origin (credentials stay home). */
  resolve(target: string | URL): URL {
    const url = new URL(target, this.#s.base);
    if (url.origin !== this.#s.base.origin) {
      throw new RangeError(`Not a URL of ${this.#s.base.origin}: ${url.href}`);
    }
    return url;
  }

  /** Sends `spec`; resolves with a 2xx answer or rejects with a {@linkcode GraceDbError}. */
  async send(spec: RequestSpec, call: CallSettings = {}): Promise<Answer> {
    const s = this.#s;
    const url = this.resolve(spec.target);
    const total = call.totalTimeMs ?? s.totalTimeMs;
    const perAttempt = call.timeoutMs ?? s.timeoutMs;
    const started = performance.now();
    using totalTimer = timer(total);
    const overall = AbortSignal.any(
      [totalTimer.signal, call.signal, s.signal].filter((x): x is AbortSignal => x !== undefined),
    );
    const rewritable = spec.method !== "POST" || s.retryWrites;
    let last: GraceDbError | undefined;
    let attempts = 0;
    let extraWait = 0;
    const attempt = async (): Promise<Answer> => {
      if (extraWait > 0) await delay(extraWait, { signal: overall });
      extraWait = 0;
      attempts++;
      return await this.#once(spec, url, perAttempt, overall);
    };
    try {
      return await retry(attempt, {
        maxAttempts: call.maxAttempts ?? s.maxAttempts,
        minTimeout: s.minBackoffMs,
        maxTimeout: s.maxBackoffMs,
        multiplier: MULTIPLIER,
        jitter: s.jitter,
        signal: overall,
        shouldRetry: (error, n) => {
          if (!(error instanceof GraceDbError)) return false;
          last = error;
          if (!error.retryable || !rewritable) return false;
          // Give up now, with the real error, when the wait cannot fit.
          const left = total - (performance.now() - started);
          const asked = error.retryAfterMs ?? 0;
          if (asked > s.maxRetryAfterMs || asked >= left) return false;
          const shortest = Math.min(s.maxBackoffMs, s.minBackoffMs * MULTIPLIER ** n) *
            (1 - s.jitter);
          return shortest < left;
        },
        onRetry: (error, n, waitMs) => {
          const asked = error instanceof GraceDbError ? error.retryAfterMs ?? 0 : 0;
          extraWait = Math.max(0, asked - waitMs);
          if (error instanceof GraceDbError) s.onRetry?.(error, n + 1, Math.max(asked, waitMs));
        },
      });
    } catch (error) {
      if (call.signal?.aborted) throw call.signal.reason;
      if (s.signal?.aborted) throw s.signal.reason;
      const cause = error instanceof RetryError ? error.cause : error;
      if (cause instanceof GraceDbError) {
        throw attempts > 1 ? cause.afterAttempts(attempts) : cause;
      }
      if (!totalTimer.signal.aborted) throw error;
      const bound = `the ${total / 1000} s bound`;
      if (last) throw last.afterAttempts(attempts, `${last.detail}; gave up at ${bound}`);
      throw new GraceDbError({
        method: spec.method,
        url: url.href,
        detail: `no answer within ${bound}`,
        timedOut: true,
        cause: error,
      });
    }
  }

  async #once(spec: RequestSpec, url: URL, timeoutMs: number, overall: AbortSignal) {
    const s = this.#s;
    const headers = new Headers({
      "User-Agent": s.userAgent,
      Accept: spec.accept ?? "application/json",
    });
    if (this.#authorization) headers.set("Authorization", this.#authorization);
    if (typeof spec.body === "string") {
      headers.set("Content-Type", spec.contentType ?? "application/json");
    }
    using timeout = timer(timeoutMs);
    const signal = AbortSignal.any([overall, timeout.signal]);
    const fail = (detail: string, cause: unknown, timedOut = false) =>
      new GraceDbError({ method: spec.method, url: url.href, detail, cause, timedOut });
    let response: Response;
    let bytes: Uint8Array;
    try {
      response = await fetch(url, {
        method: spec.method,
        headers,
        ...(spec.body === undefined ? {} : { body: spec.body }),
        signal,
      });
      bytes = await response.bytes();
    } catch (error) {
      if (overall.aborted) throw overall.reason;
      if (timeout.signal.aborted) throw fail(`no answer within ${timeoutMs / 1000} s`, error, true);
      throw fail((error as Error).message ?? String(error), error);
    }
    if (response.ok) {
      return { status: response.status, headers: response.headers, bytes, url: url.href };
    }
    const text = new TextDecoder().decode(bytes);
    throw new GraceDbError({
      method: spec.method,
      url: url.href,
      status: response.status,
      detail: serverMessage(text, response.headers.get("content-type") ?? "") ||
        response.statusText,
      retryAfterMs: retryAfterMs(response.headers.get("retry-after")),
    });
  }
}

/** An abort signal that fires after `ms`, with a timer `using` clears. */
function timer(ms: number): { signal: AbortSignal; [Symbol.dispose](): void } {
  const controller = new AbortController();
  const id = setTimeout(
    () => controller.abort(new DOMException("Signal timed out.", "TimeoutError")),
    ms,
  );
  return { signal: controller.signal, [Symbol.dispose]: () => clearTimeout(id) };
}

function authorizationHeader(auth: GraceDbAuth): string | undefined {
  switch (auth.kind) {
    case "bearer":
      return `Bearer ${auth.token}`;
    case "basic": {
      const bytes = new TextEncoder().encode(`${auth.username}:${auth.password}`);
      return `Basic ${btoa(String.fromCharCode(...bytes))}`;
    }
    case "none":
      return undefined;
  }
}
