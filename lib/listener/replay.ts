/**
 * The replay source: alerts from a JSON Lines file instead of a server,
 * one per line, `{"node": N, "t": seconds, "id": I, "payload": {...}}`.
 * The file is read in pieces, never whole, and each line comes with the
 * byte offset just after it, so a replay can resume where it stopped.
 *
 * @module
 */

import * as v from "valibot";
import { delay } from "../core/async.ts";
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

/** One line of a replay file, read or refused, with where it ends in the file. */
export type ReplayLine =
  & (
    | {
      ok: true;
      node: string;
      id: string | null;
      /** Seconds after replay start; 0 when absent. */
      t: number;
      payload: unknown;
    }
    | { ok: false; reason: string }
  )
  & {
    /** 1-based line number. */
    line: number;
    /** Byte offset just after the line (its newline included). */
    end: number;
  };

/** Where to start reading: after `line`, at byte `offset`. */
export interface ReplayStart {
  line: number;
  offset: number;
}

/** Options for {@linkcode replayFile}. */
export interface ReplayOptions {
  /** Time factor: 2 plays twice as fast; 0 as fast as possible. @default {1} */
  speed?: number;
  signal?: AbortSignal;
  /** Resume after a line already handled. @default {the start of the file} */
  from?: ReplayStart;
}

/** Reads one line of a replay file. */
export function parseReplayLine(
  text: string,
  line: number,
  end = 0,
): ReplayLine {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    return { ok: false, line, end, reason: `not JSON: ${(error as Error).message}` };
  }
  if (!isJsonObject(value)) {
    return { ok: false, line, end, reason: "a replay line must be a JSON object" };
  }
  const parsed = v.safeParse(ReplayLineSchema, value);
  if (!parsed.success) return { ok: false, line, end, reason: parsed.issues[0].message };
  const { node, t, id, payload } = parsed.output;
  return {
    ok: true,
    line,
    end,
    node,
    id: id === undefined ? null : String(id),
    t: t ?? 0,
    payload,
  };
}

/** The lines of a file with the byte offset after each, read in pieces from `offset`. */
async function* lines(
  path: string,
  offset: number,
): AsyncGenerator<{ text: string; end: number }> {
  using file = await Deno.open(path, { read: true });
  await file.seek(offset, Deno.SeekMode.Start);
  const decoder = new TextDecoder();
  const buffer = new Uint8Array(64 * 1024);
  let pending = new Uint8Array(0);
  let position = offset;
  for (;;) {
    const n = await file.read(buffer);
    if (n === null) break;
    const chunk = new Uint8Array(pending.length + n);
    chunk.set(pending);
    chunk.set(buffer.subarray(0, n), pending.length);
    let start = 0;
    for (let i = 0; i < chunk.length; i++) {
      if (chunk[i] !== 10) continue;
      position += i + 1 - start;
      yield { text: decoder.decode(chunk.subarray(start, i)), end: position };
      start = i + 1;
    }
    pending = chunk.slice(start);
  }
  if (pending.length > 0) yield { text: decoder.decode(pending), end: position + pending.length };
}

/**
 * Yields the lines of a replay file, each at its time `t` (scaled by
 * `speed`) after the start. Broken lines are yielded as refusals naming
 * the line, and reading goes on. Stops when `signal` aborts.
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
  const start = performance.now();
  let line = options.from?.line ?? 0;
  for await (const { text, end } of lines(path, options.from?.offset ?? 0)) {
    line++;
    if (signal?.aborted) return;
    const raw = text.trim();
    if (raw === "") continue;
    const parsed = parseReplayLine(raw, line, end);
    if (parsed.ok && speed > 0) {
      const wait = start + (parsed.t * 1000) / speed - performance.now();
      if (wait > 0) await delay(wait, { signal }).catch(() => {});
      if (signal?.aborted) return;
    }
    yield parsed;
  }
}
