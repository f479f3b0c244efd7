/**
 * The per-child journal: every alert routed to a child, appended and
 * synced to disk before the child gets it. One sync serves every alert
 * that arrived meanwhile (group commit). Each line carries a CRC, so
 * damage is found record by record and is never fatal: a torn last line
 * (the process died mid-write) is cut; a damaged record is skipped and
 * reported while the intact ones after it are kept; a damaged header is
 * rebuilt from the records; a file that is no journal at all is moved
 * aside and a new one started. Numbering never goes backwards: the newest
 * snapshot's position is its floor.
 *
 * Format, version 1: a header line
 * `{"format":"lvalertMP-journal","version":1,"base":N}` (N: the highest
 * sequence number trimmed away), then one record per line,
 * `CRC32HEX JSON`, where JSON is `{"seq","node","id","t0","alert"}`, then
 * possibly zero bytes: space written ahead ({@linkcode ALLOCATE_AHEAD}),
 * which no record contains (JSON text has no NUL), so a reader ignores it.
 *
 * @module
 */

import { dirname } from "node:path";
import { crc32 } from "node:zlib";
import * as v from "valibot";
import { Serializer } from "../core/async.ts";
import { type Alert, isJsonObject, readAlert } from "../core/alert.ts";
import {
  readBytesIfExists,
  readFull,
  SYNC_EVERY,
  syncDir,
  tempPath,
  writeAll,
  writePrivateFile,
} from "./state_dir.ts";

export const JOURNAL_FORMAT = "lvalertMP-journal";
export const JOURNAL_VERSION = 1;

/**
 * The header line; `base` is the highest sequence number trimmed away, so
 * numbering never restarts (a snapshot still refers to those numbers).
 */
function header(base: number): string {
  return JSON.stringify({ format: JOURNAL_FORMAT, version: JOURNAL_VERSION, base }) + "\n";
}

/** One journaled alert. */
export interface JournalRecord {
  seq: number;
  node: string;
  id: string | null;
  t0: number;
  alert: Alert;
}

/** A line of the journal that was not an intact record. */
export interface JournalDamage {
  /** 1-based line number. */
  line: number;
  reason: string;
}

/** What reading a journal found. */
export interface JournalRead {
  /** The highest sequence number trimmed from the file. */
  base: number;
  records: JournalRecord[];
  /** Byte offset just after each record's line. */
  ends: number[];
  /** A torn last line (no newline): where the good part ends. */
  cut: { line: number; reason: string; byteOffset: number } | null;
  /** Lines skipped in the middle of the file (intact records after them are kept). */
  damaged: JournalDamage[];
  /** `ok`, or `rebuilt` when the header was damaged and `base` derived from the records. */
  header: "ok" | "rebuilt";
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const NEWLINE = 10;

/**
 * Bytes of zeros the journal writes (and syncs) ahead of its records, a
 * megabyte at a time, so that appends overwrite space the file already
 * has: an `fdatasync` then flushes the data alone, where one that grows
 * the file must also commit the file system's metadata journal (on ext4
 * with ordered data, after the data of every other file written
 * meanwhile). One 1 KB write + `fdatasync` a millisecond, beside a file
 * written every 50 ms: p50 0.26-0.42 ms against 0.32-0.51 when appending,
 * p99 2.1-2.7 against 3.2. In `deno task bench xmpp`, three alternating
 * pairs each: routing overhead p99 3.6-4.7 ms against 5.6-6.1 with trims
 * off in both; as shipped, against the code before, 4.6-6.5 against
 * 3.9-7.3 (paced p50 1.8-2.2 against 1.9-2.3 ms).
 */
export const ALLOCATE_AHEAD = 1024 * 1024;

/**
 * Writes {@linkcode ALLOCATE_AHEAD} zeros at `end` (where the file now
 * ends), then syncs them if asked; the file's new size. When the disk has
 * no room for them (or the sync fails), the file is cut back to `end`.
 */
async function writeZerosAhead(file: Deno.FsFile, end: number, sync = false): Promise<number> {
  try {
    await file.seek(end, Deno.SeekMode.Start);
    await writeAll(file, new Uint8Array(ALLOCATE_AHEAD));
    if (sync) await file.syncData();
    return end + ALLOCATE_AHEAD;
  } catch {
    await file.truncate(end);
    return end;
  }
}

/**
 * Where the bytes end, leaving out the zeros written ahead. After a crash
 * a batch not yet synced may have reached the disk in part, a later page
 * without an earlier one: its lines then read as damaged, not torn (never
 * a record that was synced).
 */
function contentEnd(bytes: Uint8Array): number {
  let end = bytes.length;
  while (end > 0 && bytes[end - 1] === 0) end--;
  return end;
}

const HeaderSchema = v.object({
  format: v.literal(JOURNAL_FORMAT),
  version: v.literal(JOURNAL_VERSION),
  base: v.optional(v.pipe(v.number(), v.integer(), v.minValue(0)), 0),
});

/** What is written for one record: the alert as JSON text. */
export interface JournalEntry {
  seq: number;
  node: string;
  id: string | null;
  t0: number;
  /** The alert's JSON text, written as it is. */
  text: string;
}

/** One record as journal line bytes (with its newline). */
export function encodeRecord(record: JournalRecord | JournalEntry): Uint8Array {
  // A copy: the batch's buffer has room for three bytes a character.
  return encodeRecords([record]).bytes.slice();
}

/**
 * Records as journal lines, `CRC32HEX JSON\n` each, encoded straight into
 * one buffer (no buffer per line, no copy to join them); `lengths` gives
 * each line's bytes.
 */
export function encodeRecords(
  records: (JournalRecord | JournalEntry)[],
): { bytes: Uint8Array; lengths: number[] } {
  const jsons = records.map(({ seq, node, id, t0, ...rest }) =>
    `{"seq":${seq},"node":${JSON.stringify(node)},"id":${JSON.stringify(id)},"t0":${t0},"alert":${
      "text" in rest ? rest.text : JSON.stringify(rest.alert)
    }}`
  );
  // A UTF-16 unit takes at most three bytes; each line adds 10 (CRC, space, newline).
  let room = 0;
  for (const json of jsons) room += json.length * 3 + 10;
  const bytes = new Uint8Array(room);
  const lengths: number[] = [];
  let at = 0;
  for (const json of jsons) {
    const { written } = encoder.encodeInto(json, bytes.subarray(at + 9));
    const hex = crc32(bytes.subarray(at + 9, at + 9 + written)).toString(16).padStart(8, "0");
    for (let k = 0; k < 8; k++) bytes[at + k] = hex.charCodeAt(k);
    bytes[at + 8] = 32;
    bytes[at + 9 + written] = NEWLINE;
    lengths.push(written + 10);
    at += written + 10;
  }
  return { bytes: bytes.subarray(0, at), lengths };
}

/**
 * One record from its line (without the newline): the CRC over the JSON,
 * then the JSON, then its fields (the alert checked as any payload is); a
 * reason when it is not intact.
 */
function decodeRecord(line: string): JournalRecord | string {
  if (line.indexOf(" ") !== 8) return "no checksum";
  const json = line.slice(9);
  if (parseInt(line.slice(0, 8), 16) !== crc32(json)) return "checksum mismatch";
  let value: unknown;
  try {
    value = JSON.parse(json);
  } catch {
    return "not JSON";
  }
  if (!isJsonObject(value)) return "not a journal record";
  const { seq, node, id, t0 } = value;
  if (
    !Number.isInteger(seq) || (seq as number) < 1 || typeof node !== "string" ||
    (id !== null && typeof id !== "string") || typeof t0 !== "number"
  ) return "not a journal record";
  const alert = readAlert(value.alert);
  if (!alert.ok) return "not a journal record";
  return { seq: seq as number, node, id, t0, alert: alert.alert };
}

/** The UTF-8 length of `text`, counted without encoding it. */
function utf8Length(text: string): number {
  let n = text.length;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x80) continue;
    if (c < 0x800) n += 1;
    else {
      // Three bytes; a surrogate pair is four for its two units, and a lone
      // surrogate is encoded as U+FFFD, three.
      n += 2;
      const next = text.charCodeAt(i + 1);
      if (c >= 0xd800 && c <= 0xdbff && next >= 0xdc00 && next <= 0xdfff) i++;
    }
  }
  return n;
}

function readHeader(line: string): number | undefined {
  let head: unknown;
  try {
    head = JSON.parse(line);
  } catch {
    return undefined;
  }
  const parsed = v.safeParse(HeaderSchema, head);
  return parsed.success ? parsed.output.base : undefined;
}

/**
 * Parses a journal (its text, or its bytes as read) record by record: a
 * damaged or out-of-order line is skipped and reported in `damaged`, a
 * torn last line in `cut`, and a damaged header is rebuilt (`base` just
 * below the first record).
 *
 * @example
 * ```ts
 * const read = readJournal("");
 * read.records.length; // 0
 * ```
 */
export function readJournal(input: string | Uint8Array): JournalRead {
  const read: JournalRead = {
    base: 0,
    records: [],
    ends: [],
    cut: null,
    damaged: [],
    header: "ok",
  };
  // One decode of the whole file. Offsets are of its bytes: the characters
  // themselves when every one is ASCII (the common case); else the bytes'
  // own newlines (a damaged byte decodes to U+FFFD, three bytes, but never
  // takes a newline with it), or, for text, its UTF-8 length.
  // The zeros written ahead are not part of it.
  const bytes = typeof input === "string" ? undefined : input.subarray(0, contentEnd(input));
  const text = bytes ? decoder.decode(bytes) : (input as string).replace(/\0+$/, "");
  if (text === "") return read;
  const ascii = (bytes ? bytes.length : utf8Length(text)) === text.length;
  const lines = text.split("\n");
  const base = readHeader(lines[0]!);
  let offset = 0;
  let lastSeq = base ?? 0;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    const start = offset;
    const last = i === lines.length - 1;
    if (!last) {
      if (ascii) offset += line.length + 1;
      else if (bytes) offset = bytes.indexOf(NEWLINE, offset) + 1;
      else offset += utf8Length(line) + 1;
    }
    if (i === 0 && base !== undefined) continue;
    if (last) {
      if (line !== "") {
        read.cut = { line: i + 1, reason: "torn last line (no newline)", byteOffset: start };
      }
      break;
    }
    const decoded = decodeRecord(line);
    const reason = typeof decoded === "string"
      ? decoded
      : decoded.seq <= lastSeq
      ? `sequence goes backwards (${decoded.seq} after ${lastSeq})`
      : undefined;
    if (reason !== undefined || typeof decoded === "string") {
      read.damaged.push({ line: i + 1, reason: i === 0 ? `damaged header (${reason})` : reason! });
      continue;
    }
    read.records.push(decoded);
    read.ends.push(offset);
    lastSeq = decoded.seq;
  }
  if (base === undefined) {
    read.header = "rebuilt";
    read.base = Math.max(0, (read.records[0]?.seq ?? 1) - 1);
  } else read.base = base;
  return read;
}

/** Where a test may step into {@linkcode Journal.trim}. */
export interface TrimHooks {
  /** The records to keep are copied and synced; the swap waits for this. */
  copied?(): Promise<void>;
}

/** Options for {@linkcode Journal.open}. */
export interface JournalOpenOptions {
  /**
   * The lowest number the next record may take minus one: the newest
   * snapshot's position. Numbering continues above it even when the
   * journal was lost or is shorter than the snapshot says.
   *
   * @default {0}
   */
  floor?: number;
  /**
   * Bytes a trim must drop at least before it rewrites the file (it also
   * waits until it drops as much as it keeps). A rewrite copies what it
   * keeps and holds the appends up for two small syncs at its swap, so it
   * is done now and then rather than after every checkpoint; recovery
   * reads a megabyte of journal in about ten milliseconds.
   *
   * @default {1048576}
   */
  trimBytes?: number;
}

/** What {@linkcode Journal.open} found and did. */
export interface JournalOpened {
  journal: Journal;
  read: JournalRead;
  /** The journal ends below the floor: records the snapshot says existed are gone. */
  lost: { floor: number; last: number } | null;
  /** Where a damaged original was moved before a clean journal was written, if it was. */
  movedAside: string | null;
}

/** The writer side, owned by the listener's main thread. */
export class Journal implements AsyncDisposable {
  readonly path: string;
  #file: Deno.FsFile;
  #base: number;
  /** seq and end offset of each record in the file, oldest first */
  #seqs: number[];
  #ends: number[];
  /** Byte offset where the next record will start. */
  #next: number;
  /** The file's size: from `#next` on, zeros written ahead. */
  #allocated: number;
  #line = new Serializer();

  #floor: number;
  #trimBytes: number;
  /** The trim under way, if one is. */
  #trimming: Promise<number> | undefined;
  #closed = false;

  private constructor(
    path: string,
    file: Deno.FsFile,
    read: JournalRead,
    floor: number,
    trimBytes: number,
    size: number,
  ) {
    this.path = path;
    this.#file = file;
    this.#base = read.base;
    this.#floor = floor;
    this.#trimBytes = trimBytes;
    this.#seqs = read.records.map((r) => r.seq);
    this.#ends = [...read.ends];
    this.#next = this.#ends.at(-1) ?? encoder.encode(header(read.base)).length;
    this.#allocated = Math.max(size, this.#next);
  }

  /**
   * Opens (creating if needed, mode 0600) and checks a journal. A torn
   * last line is cut off; damaged records or a damaged header make the
   * original move aside (`journal.log.damaged-<ms>`) and a clean journal
   * of the intact records take its place; a journal that ends below
   * `floor` is reported as `lost`, and numbering continues above the floor.
   */
  static async open(path: string, options: JournalOpenOptions = {}): Promise<JournalOpened> {
    const floor = options.floor ?? 0;
    const bytes = await readBytesIfExists(path);
    let read = readJournal(bytes ?? "");
    const last = read.records.at(-1)?.seq ?? read.base;
    const lost = floor > last ? { floor, last } : null;
    let movedAside: string | null = null;
    if (!bytes?.length || (read.records.length === 0 && read.damaged.length === 0)) {
      // New, or nothing but a torn start: begin at the floor.
      await writePrivateFile(path, header(Math.max(read.base, floor)));
    } else if (read.damaged.length > 0 || read.header === "rebuilt") {
      movedAside = `${path}.damaged-${Date.now()}`;
      await Deno.rename(path, movedAside);
      await writePrivateFile(path, [header(read.base), ...read.records.map(encodeRecord)]);
    } else if (read.cut) {
      await Deno.truncate(path, read.cut.byteOffset);
    }
    const opened = read;
    if (movedAside || !bytes?.length || read.cut) read = readJournal(await Deno.readFile(path));
    // Not in append mode: appends overwrite the zeros written ahead.
    const file = await Deno.open(path, { write: true, mode: 0o600 });
    if (read !== opened) await file.syncData();
    const size = (await file.stat()).size;
    const journal = new Journal(path, file, read, floor, options.trimBytes ?? 1024 * 1024, size);
    return { journal, read: opened, lost, movedAside };
  }

  /** The highest sequence number written, or the floor it continues above. */
  get lastSeq(): number {
    return Math.max(this.#seqs.at(-1) ?? this.#base, this.#floor);
  }

  /**
   * Appends records and syncs them to disk (one write, one sync). On a
   * failed write the file is cut back to its last good record, so the
   * batch can be tried again.
   *
   * The write only copies into the page cache and is done on the calling
   * thread; the sync, which waits for the disk, runs on an I/O thread, so
   * the listener keeps reading the socket and routing meanwhile, and what
   * arrives forms the next batch. Measured with `deno task bench xmpp`:
   * the async sync costs a few microseconds of CPU per batch, far less
   * than the listener stood still for while a blocking sync waited.
   *
   * The records go into the zeros written ahead; a batch that reaches
   * past them writes the next {@linkcode ALLOCATE_AHEAD} after itself,
   * under the same sync (when the disk has no room for them, the batch
   * is written alone, as far as it fits).
   */
  append(records: (JournalRecord | JournalEntry)[]): Promise<void> {
    if (records.length === 0) return Promise.resolve();
    const { bytes, lengths } = encodeRecords(records);
    return this.#serial(async () => {
      const written = this.#next + bytes.length;
      try {
        this.#file.seekSync(this.#next, Deno.SeekMode.Start);
        for (let n = 0; n < bytes.length;) n += this.#file.writeSync(bytes.subarray(n));
        if (written > this.#allocated) {
          this.#allocated = await writeZerosAhead(this.#file, written);
        }
        await this.#file.syncData();
      } catch (error) {
        // No torn line may stay in the middle of the journal.
        await Deno.truncate(this.path, this.#next).catch(() => {});
        this.#allocated = this.#next;
        throw error;
      }
      let end = this.#next;
      for (let i = 0; i < lengths.length; i++) {
        end += lengths[i]!;
        this.#seqs.push(records[i]!.seq);
        this.#ends.push(end);
      }
      this.#next = end;
    });
  }

  /**
   * Drops records up to `seq` (a snapshot covers them) by an atomic
   * rewrite that copies the rest as it is. Small trims wait until they
   * are worth a rewrite (`trimBytes`, and at least as much dropped as
   * kept); returns how many records were dropped (0 too when another
   * trim is under way: the next one takes these as well).
   *
   * Appends go on while the records to keep are copied and synced into a
   * new file, with zeros written ahead after them; they are held only for
   * the swap: copying what they added meanwhile (a few records), one
   * small sync, the rename and the folder's sync.
   */
  trim(seq: number, hooks: TrimHooks = {}): Promise<number> {
    if (this.#trimming) return Promise.resolve(0);
    const trimming = this.#trim(seq, hooks).finally(() => this.#trimming = undefined);
    this.#trimming = trimming;
    return trimming;
  }

  async #trim(seq: number, hooks: TrimHooks): Promise<number> {
    // Where things stand now: the bytes up to `copyTo` do not change while
    // the copy reads them (appends only add after them).
    const plan = await this.#serial(() => {
      let drop = 0;
      while (drop < this.#seqs.length && this.#seqs[drop]! <= seq) drop++;
      if (drop === 0) return undefined;
      const cutAt = this.#ends[drop - 1]!;
      const dropped = cutAt - encoder.encode(header(this.#base)).length;
      if (dropped < Math.max(this.#trimBytes, this.#next - cutAt)) return undefined;
      return { drop, cutAt, copyTo: this.#next, base: this.#seqs[drop - 1]! };
    });
    if (!plan) return 0;
    const { drop, cutAt, copyTo, base } = plan;
    const head = encoder.encode(header(base));
    const temp = tempPath(this.path);
    const file = await Deno.open(temp, { write: true, create: true, truncate: true, mode: 0o600 });
    let closed = false;
    try {
      await writeAll(file, head);
      // In pieces, each synced: no sync of an append waits for the whole copy.
      for (let from = cutAt; from < copyTo; from += SYNC_EVERY) {
        await writeAll(file, await this.#readRange(from, Math.min(copyTo, from + SYNC_EVERY)));
        await file.syncData();
      }
      // Space ahead, so that the first appends after the swap need not grow it.
      const copied = head.length + copyTo - cutAt;
      const allocated = await writeZerosAhead(file, copied, true);
      await hooks.copied?.();
      return await this.#serial(async () => {
        if (this.#closed) throw new Error(`${this.path}: closed during a trim`);
        // What was appended during the copy: a few records.
        if (this.#next > copyTo) {
          await file.seek(copied, Deno.SeekMode.Start);
          await writeAll(file, await this.#readRange(copyTo, this.#next));
        }
        await file.syncData();
        file.close();
        closed = true;
        await Deno.rename(temp, this.path);
        await syncDir(dirname(this.path));
        // The old handle stays usable until the new file is in place.
        const old = this.#file;
        this.#file = await Deno.open(this.path, { write: true, mode: 0o600 });
        old.close();
        const shift = head.length - cutAt;
        this.#base = base;
        this.#seqs = this.#seqs.slice(drop);
        this.#ends = this.#ends.slice(drop).map((end) => end + shift);
        this.#next += shift;
        this.#allocated = Math.max(allocated, this.#next);
        return drop;
      });
    } catch (error) {
      if (!closed) file.close();
      // Unless it was renamed into place, the old journal stands as it was.
      await Deno.remove(temp).catch(() => {});
      throw error;
    }
  }

  /** Bytes `from` up to `to` of the journal file, read back. */
  async #readRange(from: number, to: number): Promise<Uint8Array> {
    const bytes = new Uint8Array(to - from);
    using reader = await Deno.open(this.path, { read: true });
    await reader.seek(from, Deno.SeekMode.Start);
    if (!await readFull(reader, bytes)) throw new Error(`${this.path}: shorter than expected`);
    return bytes;
  }

  /** The record numbered `seq`, read back from the file; undefined when not there. */
  record(seq: number): Promise<JournalRecord | undefined> {
    return this.#serial(async () => {
      const i = this.#seqs.indexOf(seq);
      if (i < 0) return undefined;
      const end = this.#ends[i]!;
      const start = i > 0 ? this.#ends[i - 1]! : end - 1;
      using file = await Deno.open(this.path, { read: true });
      // The first record's start is not kept: read back to the header's end.
      const from = i > 0 ? start : 0;
      const bytes = new Uint8Array(end - from);
      await file.seek(from, Deno.SeekMode.Start);
      if (!await readFull(file, bytes)) return undefined;
      const text = decoder.decode(bytes).replace(/\n$/, "");
      const decoded = decodeRecord(text.slice(text.lastIndexOf("\n") + 1));
      return typeof decoded === "string" ? undefined : decoded;
    });
  }

  /** Waits for pending writes, then closes (a trim under way is given up). */
  async close(): Promise<void> {
    await this.#line.idle();
    this.#closed = true;
    await this.#trimming?.catch(() => {});
    await this.#line.idle();
    this.#file.close();
  }

  /** Closes, for `await using`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  #serial<T>(work: () => Promise<T> | T): Promise<T> {
    return this.#line.run(work);
  }
}
