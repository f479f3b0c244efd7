/**
 * How a command ended. Only `main.ts` turns this into an exit code.
 *
 * @module
 */

/** The ways a run can fail, each with its own exit code in main. */
export type FailureKind =
  | "usage"
  | "config"
  | "runtime"
  | "unavailable"
  | "auth";

/** The result of running the listener or a companion tool. */
export type Outcome =
  /** `code` overrides 0 where a tool defines its own codes (`status`). */
  | { ok: true; code?: number }
  | { ok: false; kind: FailureKind; error: Error };

/** A failed outcome. */
export function failed(kind: FailureKind, error: Error | string): Outcome {
  return {
    ok: false,
    kind,
    error: typeof error === "string" ? new Error(error) : error,
  };
}
