/**
 * The per-child journal: every alert routed to a child, appended and
 * synced to disk before the child gets it. One sync serves every alert
 * that arrived meanwhile (group commit). Lines carry a CRC so a torn or
 * damaged tail (the process died mid-write) is found and cut, never fatal.
 *
 * Format, version 1: a header line
 * `{"format":"lvalertMP-journal","version":1}`, then one record per line,
 * `CRC32HEX JSON`, where JSON is `{"seq","node","id","t0","alert"}`.
 *
 * @module
 */

import type { Alert } from "./alert.ts";
import { isJsonObject } from "./alert.ts";
import { readIfExists, writePrivateFile } from "./state_dir.ts";

export const JOURNAL_FORMAT = "lvalertMP-journal";
export const JOURNAL_VERSION = 1;
/**
 * The header line; `base` is the highest sequence number trimmed away, so
 * numbering never restarts (a snapshot still refers to those numbers).
 */
function header(base: number): string {
  return JSON.stringify({ format: JOURNAL_FORMAT, version: JOURNAL_VERSION, base });
}

/** One journaled alert. */
export interface JournalRecord {
  seq: number;
  node: string;
  id: string | null;
  t0: number;
  alert: Alert;
}

/** What reading a journal found. */
export interface JournalRead {
  /** The highest sequence number trimmed from the file. */
  base: number;
  records: JournalRecord[];
  /** Where the good part ends, when a bad tail was found. */
  cut: { line: number; reason: string; byteOffset: number } | null;
}

const TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

/** CRC-32 (IEEE) of a string's UTF-8 bytes. */
export function crc32(text: string): number {
  const bytes = new TextEncoder().encode(text);
  let c = 0xffffffff;
  for (const b of bytes) c = TABLE[(c ^ b) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** One record as a journal line (with its newline). */
export function encodeRecord(record: JournalRecord): string {
  const json = JSON.stringify(record);
  return `${crc32(json).toString(16).padStart(8, "0")} ${json}\n`;
}

function decodeRecord(line: string): JournalRecord | string {
  const space = line.indexOf(" ");
  if (space !== 8) return "no checksum";
  const json = line.slice(9);
  if (parseInt(line.slice(0, 8), 16) !== crc32(json)) return "checksum mismatch";
  let value: unknown;
  try {
    value = JSON.parse(json);
  } catch {
    return "not JSON";
  }
  if (
    !isJsonObject(value) || typeof value.seq !== "number" || typeof value.node !== "string" ||
    typeof value.t0 !== "number" || !isJsonObject(value.alert) ||
    !(value.id === null || typeof value.id === "string")
  ) return "not a journal record";
  return value as unknown as JournalRecord;
}

/**
 * Parses journal text. Everything after the first bad line is the
 * damaged tail: it is reported in `cut`, not returned.
 *
 * @throws {Error} when the header names another format or version
 */
export function readJournal(text: string, file: string): JournalRead {
  const records: JournalRecord[] = [];
  if (text === "") return { base: 0, records, cut: null };
  const lines = text.split("\n");
  const first = lines[0] ?? "";
  if (!text.includes("\n")) {
    return { base: 0, records, cut: { line: 1, reason: "torn header", byteOffset: 0 } };
  }
  let head: unknown;
  try {
    head = JSON.parse(first);
  } catch {
    head = undefined;
  }
  if (!isJsonObject(head) || head.format !== JOURNAL_FORMAT || head.version !== JOURNAL_VERSION) {
    throw new Error(
      `${file}:1: not an lvalertMP journal (version ${JOURNAL_VERSION}): ${first.slice(0, 80)}`,
    );
  }
  const base = typeof head.base === "number" ? head.base : 0;
  let offset = new TextEncoder().encode(first + "\n").length;
  let lastSeq = base;
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i]!;
    const isLast = i === lines.length - 1;
    if (isLast && line === "") break;
    const decoded = isLast ? "torn last line (no newline)" : decodeRecord(line);
    const record = typeof decoded === "string"
      ? decoded
      : decoded.seq <= lastSeq
      ? "sequence goes backwards"
      : decoded;
    if (typeof record === "string") {
      return { base, records, cut: { line: i + 1, reason: record, byteOffset: offset } };
    }
    records.push(record);
    lastSeq = record.seq;
    offset += new TextEncoder().encode(line + "\n").length;
  }
  return { base, records, cut: null };
}

/** The writer side, owned by the listener's main thread. */
export class Journal {
  readonly path: string;
  #file: Deno.FsFile;
  #last: number;
  #queue: Promise<unknown> = Promise.resolve();

  private constructor(path: string, file: Deno.FsFile, last: number) {
    this.path = path;
    this.#file = file;
    this.#last = last;
  }

  /**
   * Opens (creating if needed, mode 0600) and checks a journal; a damaged
   * tail is cut off the file before anything is appended.
   */
  static async open(path: string): Promise<{ journal: Journal; read: JournalRead }> {
    const text = await readIfExists(path) ?? "";
    const read = readJournal(text, path);
    if (text === "" || read.cut?.byteOffset === 0) {
      await writePrivateFile(path, header(0) + "\n");
    } else if (read.cut) {
      await Deno.truncate(path, read.cut.byteOffset);
    }
    const file = await Deno.open(path, { append: true, mode: 0o600 });
    if (read.cut) await file.syncData();
    const last = read.records.at(-1)?.seq ?? read.base;
    return { journal: new Journal(path, file, last), read };
  }

  /** The highest sequence number written. */
  get lastSeq(): number {
    return this.#last;
  }

  /** Appends records and syncs them to disk (one write, one sync). */
  append(records: JournalRecord[]): Promise<void> {
    if (records.length === 0) return Promise.resolve();
    this.#last = Math.max(this.#last, records.at(-1)!.seq);
    const bytes = new TextEncoder().encode(records.map(encodeRecord).join(""));
    return this.#serial(async () => {
      let written = 0;
      while (written < bytes.length) written += await this.#file.write(bytes.subarray(written));
      await this.#file.syncData();
    });
  }

  /** Drops records up to `seq` (a snapshot covers them): atomic rewrite. */
  trim(seq: number): Promise<number> {
    return this.#serial(async () => {
      const read = readJournal(await Deno.readTextFile(this.path), this.path);
      const keep = read.records.filter((r) => r.seq > seq);
      if (keep.length === read.records.length) return 0;
      const base = Math.max(
        read.base,
        ...read.records.filter((r) => r.seq <= seq).map((r) => r.seq),
      );
      this.#file.close();
      await writePrivateFile(this.path, header(base) + "\n" + keep.map(encodeRecord).join(""));
      this.#file = await Deno.open(this.path, { append: true, mode: 0o600 });
      return read.records.length - keep.length;
    });
  }

  /** Waits for pending writes, then closes. */
  async close(): Promise<void> {
    await this.#queue.catch(() => {});
    this.#file.close();
  }

  #serial<T>(work: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(work);
    this.#queue = run.catch(() => {});
    return run;
  }
}
