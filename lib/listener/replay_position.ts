/**
 * Where a replay through a state folder got to, like a consumer's offset:
 * the last line whose alert is safe in a journal (or that needed none).
 * Running the same replay again resumes after it, so nothing is applied
 * twice, whatever stopped the run before (a signal, kill -9).
 *
 * Stored in `<state>/replay.json` (0600):
 * `{"path","line","offset","sample"}`, where `sample` is a hash of the
 * file's first 4 KiB and of the 4 KiB before `offset`: a file that was
 * replaced (not appended to) starts again from its beginning.
 *
 * @module
 */

import { join, resolve } from "node:path";
import * as v from "valibot";
import type { ChildLog } from "../core/log.ts";
import { readIfExists, writePrivateFile } from "../durability/state_dir.ts";
import type { ReplayStart } from "./replay.ts";

const SAMPLE = 4096;

const StoredSchema = v.object({
  path: v.string(),
  line: v.pipe(v.number(), v.integer(), v.minValue(0)),
  offset: v.pipe(v.number(), v.integer(), v.minValue(0)),
  sample: v.string(),
});

type Stored = v.InferOutput<typeof StoredSchema>;

/** A hash of a file's first bytes and of the bytes before `offset`. */
async function sample(path: string, offset: number): Promise<string> {
  using file = await Deno.open(path, { read: true });
  const head = new Uint8Array(Math.min(SAMPLE, offset));
  const tail = new Uint8Array(Math.min(SAMPLE, offset));
  await readExactly(file, head, 0);
  await readExactly(file, tail, offset - tail.length);
  const digest = await crypto.subtle.digest("SHA-256", new Uint8Array([...head, ...tail]));
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

async function readExactly(file: Deno.FsFile, into: Uint8Array, at: number): Promise<void> {
  await file.seek(at, Deno.SeekMode.Start);
  for (let n = 0; n < into.length;) {
    const got = await file.read(into.subarray(n));
    if (got === null) throw new Error("file shorter than expected");
    n += got;
  }
}

/** Tracks which replay lines are done and keeps the position on disk. */
export class ReplayPosition implements AsyncDisposable {
  /** Where this run starts. */
  readonly start: ReplayStart;
  #file: string;
  #path: string;
  #open: { line: number; end: number; done: boolean }[] = [];
  #byLine = new Map<number, { line: number; end: number; done: boolean }>();
  #at: ReplayStart;
  #saved: ReplayStart;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #writing: Promise<void> = Promise.resolve();

  private constructor(file: string, path: string, start: ReplayStart) {
    this.#file = file;
    this.#path = path;
    this.start = start;
    this.#at = start;
    this.#saved = start;
  }

  /**
   * Reads the stored position for `replay` from the state folder; a
   * position for another file, or for a file that changed, is dropped.
   */
  static async open(stateDir: string, replay: string, log: ChildLog): Promise<ReplayPosition> {
    const file = join(stateDir, "replay.json");
    const path = resolve(replay);
    const stored = await ReplayPosition.#read(file);
    let start: ReplayStart = { line: 0, offset: 0 };
    if (stored && stored.path === path) {
      const same = await sample(path, stored.offset).then((s) => s === stored.sample, () => false);
      if (same) start = { line: stored.line, offset: stored.offset };
      log.event(
        same ? "info" : "warning",
        same ? "replay_resumed" : "replay_position_reset",
        { file: path, line: stored.line },
        same
          ? `resuming ${path} after line ${stored.line} (the lines before it were applied)`
          : `${path} changed since line ${stored.line} was replayed; starting from its beginning`,
      );
    }
    return new ReplayPosition(file, path, start);
  }

  static async #read(file: string): Promise<Stored | undefined> {
    const text = await readIfExists(file);
    if (text === undefined) return undefined;
    try {
      const parsed = v.safeParse(StoredSchema, JSON.parse(text));
      return parsed.success ? parsed.output : undefined;
    } catch {
      return undefined;
    }
  }

  /** A line is being handled; it ends at byte `end`. */
  begin(line: number, end: number): void {
    const entry = { line, end, done: false };
    this.#open.push(entry);
    this.#byLine.set(line, entry);
  }

  /** A line is done: its alert is journaled, or it needed no journal. */
  done(line: number): void {
    const entry = this.#byLine.get(line);
    if (entry) entry.done = true;
    let n = 0;
    while (this.#open[n]?.done) n++;
    if (n > 0) {
      const last = this.#open[n - 1]!;
      this.#at = { line: last.line, offset: last.end };
      for (const e of this.#open.splice(0, n)) this.#byLine.delete(e.line);
    }
    this.#timer ??= setTimeout(() => {
      this.#timer = undefined;
      void this.flush();
    }, 200);
  }

  /** Writes the position if it moved. */
  flush(): Promise<void> {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#writing = this.#writing.then(async () => {
      const at = this.#at;
      if (at.offset === this.#saved.offset) return;
      const stored: Stored = {
        path: this.#path,
        ...at,
        sample: await sample(this.#path, at.offset),
      };
      await writePrivateFile(this.#file, JSON.stringify(stored) + "\n");
      this.#saved = at;
    }).catch(() => {
      // The next flush tries again; at worst a rerun repeats lines.
    });
    return this.#writing;
  }

  /** Flushes, for `await using`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.flush();
  }
}
