/**
 * The replay source: alerts from a JSON Lines file instead of a server,
 * one per line, `{"node": N, "t": seconds, "id": I, "payload": {...}}`.
 *
 * @module
 */

import * as v from "valibot";
import { isJsonObject } from "../core/alert.ts";

/** What a replay line that lacks a required key is told. */
const MISSING: Record<string, string> = {
  node: '"node" must be a non-empty string',
  payload: 'missing "payload"',
};

/** One line of a replay file. */
const ReplayLineSchema = v.object({
  node: v.pipe(
    v.string('"node" must be a non-empty string'),
    v.minLength(1, '"node" must be a non-empty string'),
  ),
  t: v.optional(
    v.pipe(
      v.number('"t" must be a number of seconds >= 0'),
      v.minValue(0, '"t" must be a number of seconds >= 0'),
      v.finite('"t" must be a number of seconds >= 0'),
    ),
  ),
  id: v.optional(v.union([v.string(), v.number()], '"id" must be a string')),
  payload: v.unknown(),
}, (issue) => MISSING[issue.expected?.slice(1, -1) ?? ""] ?? issue.message);

/** One line of a replay file, read or refused. */
export type ReplayLine =
  | {
    ok: true;
    line: number;
    node: string;
    id: string | null;
    /** Seconds after replay start; 0 when absent. */
    t: number;
    payload: unknown;
  }
  | { ok: false; line: number; reason: string };

/** Options for {@linkcode replayFile}. */
export interface ReplayOptions {
  /** Time factor: 2 plays twice as fast; 0 as fast as possible. @default {1} */
  speed?: number;
  signal?: AbortSignal;
}

/** Reads one line of a replay file. */
export function parseReplayLine(text: string, line: number): ReplayLine {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    return { ok: false, line, reason: `not JSON: ${(error as Error).message}` };
  }
  if (!isJsonObject(value)) {
    return { ok: false, line, reason: "a replay line must be a JSON object" };
  }
  const parsed = v.safeParse(ReplayLineSchema, value);
  if (!parsed.success) return { ok: false, line, reason: parsed.issues[0].message };
  const { node, t, id, payload } = parsed.output;
  return { ok: true, line, node, id: id === undefined ? null : String(id), t: t ?? 0, payload };
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  if (ms <= 0) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener("abort", done, { once: true });
  });
}

/**
 * Yields the lines of a replay file, each at its time `t` (scaled by
 * `speed`) after the start. Broken lines are yielded as refusals naming
 * the line, and reading goes on. Stops early when `signal` aborts.
 *
 * @example
 * ```ts
 * for await (const line of replayFile("alerts.jsonl", { speed: 0 })) {
 *   if (line.ok) console.log(line.node);
 * }
 * ```
 */
export async function* replayFile(
  path: string,
  options: ReplayOptions = {},
): AsyncGenerator<ReplayLine> {
  const speed = options.speed ?? 1;
  const signal = options.signal;
  const text = await Deno.readTextFile(path);
  const start = performance.now();
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    if (signal?.aborted) return;
    const raw = (lines[i] ?? "").trim();
    if (raw === "") continue;
    const line = parseReplayLine(raw, i + 1);
    if (line.ok && speed > 0) {
      await sleep(start + (line.t * 1000) / speed - performance.now(), signal);
      if (signal?.aborted) return;
    }
    yield line;
  }
}
