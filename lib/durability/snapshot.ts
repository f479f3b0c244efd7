/**
 * Snapshots of a child's queue: JSON (never code), versioned, checksummed,
 * restored through a registry of the item and task classes a handler
 * exports.
 *
 * Format, version 4 (JSON Lines):
 * - line 1, the header: `{"format":"lvalertMP-snapshot","version":4,
 *   "child","seq","taken","items":N,"bytes":B,"crc":"hex","shapes":[...]}`,
 *   where `seq` is the last journal record the snapshot includes, `bytes`
 *   and `crc` (CRC-32) cover everything after the header line, and each
 *   shape is `[className, [fieldName, ...]]`;
 * - line 2: the applied alert ids, `[[node, id], ...]`;
 * - then pieces of up to {@linkcode PIECE} items, two lines each: the
 *   piece's index, `[rows, earliest, [graceid, ...]]` (its item count, the
 *   earliest expiration among them, its items' distinct graceids), then its
 *   rows, `[row, ...]`; N rows in all. A row is
 *   `[shape, value, ..., [[shape, value, ...], ...]]`, an item's fields in
 *   its shape's order, then its remaining tasks.
 *
 * Field and class names are written once per shape, not once per item, and
 * the header alone tells the listener the snapshot's journal position.
 * A line holds many rows so that writing takes one `JSON.stringify` (and
 * reading one `JSON.parse`) per line, not one string per item.
 *
 * The index lets a big queue be restored lazily ({@linkcode DormantPieces}):
 * recovery reads the indexes and keeps each piece's rows as text, and a
 * piece becomes items when one of them is due or looked up (or in idle
 * time); a snapshot taken meanwhile copies the pieces still dormant as they
 * are.
 *
 * Versions 3 (no index lines), 2 (one item row per line) and 1 (one JSON
 * object with `items: [{class, fields, tasks}]`) are still read.
 *
 * @module
 */

import { crc32 } from "node:zlib";
import * as v from "valibot";
import { isJsonObject, type JsonObject } from "../core/alert.ts";
import { initRestored, QueueItem, resetInternals, Task } from "../queue/queue_item.ts";
import { checkTime, type Dormant, type PutDormant } from "../queue/sorted_queue.ts";

/** The `format` of every snapshot's header. */
export const SNAPSHOT_FORMAT = "lvalertMP-snapshot";
/** The version this build writes; it reads this one, 3, 2 and 1. */
export const SNAPSHOT_VERSION = 4;
/** The version before: pieces of rows without their index lines. */
const UNINDEXED_VERSION = 3;
/** The version before that: one item row per line. */
const ROW_PER_LINE_VERSION = 2;

/** Whether a version is one with a header line and a checksummed body (4, 3 and 2, not 1). */
function headerAndBody(version: unknown): boolean {
  return version === SNAPSHOT_VERSION || version === UNINDEXED_VERSION ||
    version === ROW_PER_LINE_VERSION;
}

/** A class name and the object's own fields. */
interface ObjectJson {
  class: string;
  fields: JsonObject;
}

/** An item: its class, fields and remaining tasks. */
interface ItemJson extends ObjectJson {
  tasks: ObjectJson[];
}

/** A parsed snapshot file. */
export interface SnapshotData {
  child: string;
  /** The last journal record the snapshot includes. */
  seq: number;
  taken: number;
  applied: [string, string][];
  items: ItemJson[];
}

/** A snapshot that cannot be read or restored; names the file (and class). */
export class SnapshotError extends Error {
  readonly file: string;
  readonly className: string | undefined;

  constructor(file: string, message: string, className?: string) {
    super(`${file}: ${message}`);
    this.name = "SnapshotError";
    this.file = file;
    this.className = className;
  }
}

// deno-lint-ignore ban-types
type Constructor = Function & { prototype: object };

/** Item and task classes by name, for restoring snapshots. */
export class ClassRegistry {
  #classes = new Map<string, Constructor>();

  constructor(classes: Iterable<Constructor> = [QueueItem]) {
    for (const c of classes) this.register(c);
  }

  register(ctor: Constructor): void {
    this.#classes.set(ctor.name, ctor);
  }

  /** Registers every exported class of a module that extends QueueItem or Task. */
  registerModule(mod: Record<string, unknown>): void {
    for (const value of Object.values(mod)) {
      if (typeof value !== "function") continue;
      const proto = (value as Constructor).prototype;
      if (proto instanceof QueueItem || proto instanceof Task) this.register(value as Constructor);
    }
  }

  get(name: string): Constructor | undefined {
    return this.#classes.get(name);
  }
}

const HeaderSchema = v.object({
  format: v.literal(SNAPSHOT_FORMAT),
  version: v.union([
    v.literal(SNAPSHOT_VERSION),
    v.literal(UNINDEXED_VERSION),
    v.literal(ROW_PER_LINE_VERSION),
  ]),
  child: v.string(),
  seq: v.pipe(v.number(), v.integer(), v.minValue(0)),
  taken: v.number(),
  items: v.pipe(v.number(), v.integer(), v.minValue(0)),
  bytes: v.pipe(v.number(), v.integer(), v.minValue(0)),
  crc: v.pipe(v.string(), v.regex(/^[0-9a-f]{8}$/)),
  shapes: v.array(v.tuple([v.string(), v.array(v.string())])),
});

const AppliedSchema = v.array(v.tuple([v.string(), v.string()]));

/** Whether a value is a list of `[node, id]` string pairs (as AppliedSchema, without its cost). */
function isAppliedList(value: unknown): value is [string, string][] {
  if (!Array.isArray(value)) return false;
  for (const pair of value) {
    if (
      !Array.isArray(pair) || pair.length !== 2 || typeof pair[0] !== "string" ||
      typeof pair[1] !== "string"
    ) return false;
  }
  return true;
}

/** What a snapshot says besides its items; the applied ids as a list or as JSON text. */
export type SnapshotHead =
  | Omit<SnapshotData, "items">
  | Omit<SnapshotData, "items" | "applied"> & { appliedJson: string };

/** Options for {@linkcode SnapshotWriter}. */
export interface SnapshotWriterOptions {
  /**
   * The shape table of the snapshot whose dormant pieces the writer will
   * copy ({@linkcode SnapshotWriter.addDormant}), so their rows keep their
   * meaning.
   */
  shapes?: readonly [string, string[]][];
  /**
   * Takes each chunk of the body as it fills, in order (to write it at
   * once); without one, the writer keeps them for
   * {@linkcode SnapshotWriter.pieces}.
   */
  sink?: (chunk: Uint8Array) => void;
  /**
   * Buffers of {@linkcode BODY_CHUNK} bytes to encode into, taken as
   * needed (new ones are made when it is empty): give a chunk's buffer
   * back once it is written, so snapshots reuse memory already touched
   * (fresh memory costs a page fault per 4 KB, and many new buffers make
   * V8 collect its whole heap).
   */
  pool?: ArrayBuffer[];
}

/** Bytes per chunk of a snapshot's body. */
export const BODY_CHUNK = 256 * 1024;

/**
 * Builds a snapshot item by item (so a big queue can be serialized in
 * slices while tasks keep running), encoding the body into chunks as it
 * goes (handed to a sink as they fill, or kept), then gives the header
 * line and the rest.
 *
 * @example
 * ```ts
 * import { QueueItem } from "../queue/queue_item.ts";
 * const writer = new SnapshotWriter({ child: "a", seq: 3, taken: 0, applied: [] });
 * writer.add(new QueueItem(0, []));
 * const bytes = writer.pieces(); // the header line, then the body: write them in order
 * ```
 */
export class SnapshotWriter {
  #head: SnapshotHead;
  /** Shapes by class: each seen field list and its index in the table. */
  #byClass = new Map<Constructor, ShapeSeen[]>();
  #shapes = new Map<string, number>();
  #table: [string, string[]][] = [];
  /** Item rows not yet encoded: the next piece, its earliest expiration and graceids. */
  #rows: unknown[][] = [];
  #earliest = Infinity;
  /** As the queue indexes them: any value but undefined (a handler in JavaScript may use others). */
  #graceIds = new Set<unknown>();
  /** The chunk being filled, its bytes used and those not yet checksummed. */
  #chunk: Uint8Array;
  #used = 0;
  #summed = 0;
  /** Full chunks kept (no sink). */
  #full: Uint8Array[] = [];
  #sink: ((chunk: Uint8Array) => void) | undefined;
  #pool: ArrayBuffer[];
  /** The body's CRC and length so far. */
  #crc = 0;
  #bytes = 0;
  #count = 0;
  #encoder = new TextEncoder();

  /** `head.applied` may come as JSON text already (`appliedJson`). */
  constructor(head: SnapshotHead, options: SnapshotWriterOptions = {}) {
    this.#head = head;
    for (const [className, names] of options.shapes ?? []) {
      this.#shapes.set(shapeKey(className, names), this.#table.length);
      this.#table.push([className, names]);
    }
    this.#sink = options.sink;
    this.#pool = options.pool ?? [];
    this.#chunk = this.#newChunk();
    this.#append("appliedJson" in head ? head.appliedJson : JSON.stringify(head.applied));
  }

  /** Items added so far. */
  get count(): number {
    return this.#count;
  }

  /**
   * Adds one item (and its remaining tasks) as a row; every PIECE rows
   * are encoded and checksummed as one line, so the work is spread over
   * the slices that add them.
   */
  add(item: QueueItem): void {
    const row = this.#row(item);
    const tasks = item.tasks;
    const rows = new Array(tasks.length);
    for (let i = 0; i < tasks.length; i++) rows[i] = this.#row(tasks[i]!);
    row.push(rows);
    this.#rows.push(row);
    this.#count++;
    const expiration = item.expiration;
    if (expiration < this.#earliest) this.#earliest = expiration;
    if (item.graceid !== undefined) this.#graceIds.add(item.graceid);
    if (this.#rows.length === PIECE) this.#flush();
  }

  /**
   * Adds a restored snapshot's piece still dormant, its two lines as they
   * are (the writer was given that snapshot's shapes).
   */
  addDormant(piece: DormantPiece): void {
    this.#flush();
    this.#append(piece.index);
    this.#append(piece.rows);
    this.#count += piece.count;
  }

  /**
   * The header line, then the body (what of it a sink did not take); no
   * more may be added after.
   */
  pieces(): Uint8Array[] {
    this.#flush();
    const header = {
      format: SNAPSHOT_FORMAT,
      version: SNAPSHOT_VERSION,
      child: this.#head.child,
      seq: this.#head.seq,
      taken: this.#head.taken,
      items: this.#count,
      bytes: this.#bytes,
      crc: this.#crc.toString(16).padStart(8, "0"),
      shapes: this.#table,
    };
    this.#sum();
    return [
      this.#encoder.encode(JSON.stringify(header) + "\n"),
      ...this.#full,
      this.#chunk.subarray(0, this.#used),
    ];
  }

  #flush(): void {
    if (this.#rows.length === 0) return;
    // An item always has a task, so a time; JSON would write Infinity as null.
    const earliest = Number.isFinite(this.#earliest) ? this.#earliest : 0;
    this.#append(JSON.stringify([this.#rows.length, earliest, [...this.#graceIds]]));
    this.#append(JSON.stringify(this.#rows));
    this.#rows = [];
    this.#earliest = Infinity;
    this.#graceIds.clear();
  }

  /** Encodes `text` and a newline after the body so far, and checksums them. */
  #append(text: string): void {
    let read = 0;
    for (;;) {
      const done = this.#encoder.encodeInto(
        read === 0 ? text : text.slice(read),
        this.#chunk.subarray(this.#used),
      );
      read += done.read;
      this.#used += done.written;
      this.#bytes += done.written;
      // Room for the newline too.
      if (read >= text.length && this.#used < this.#chunk.length) break;
      this.#handOff();
    }
    this.#chunk[this.#used++] = NEWLINE;
    this.#bytes++;
    this.#sum();
  }

  /** Checksums the bytes of the chunk not yet summed. */
  #sum(): void {
    if (this.#summed === this.#used) return;
    this.#crc = crc32(this.#chunk.subarray(this.#summed, this.#used), this.#crc);
    this.#summed = this.#used;
  }

  /** Gives the chunk filled so far to the sink (or keeps it), and starts another. */
  #handOff(): void {
    this.#sum();
    const full = this.#chunk.subarray(0, this.#used);
    if (this.#sink) this.#sink(full);
    else this.#full.push(full);
    this.#chunk = this.#newChunk();
    this.#used = 0;
    this.#summed = 0;
  }

  #newChunk(): Uint8Array {
    const spare = this.#pool.pop();
    return spare && spare.byteLength === BODY_CHUNK
      ? new Uint8Array(spare)
      : new Uint8Array(BODY_CHUNK);
  }

  /** `[shape, value, ...]` of an object's own defined fields. */
  #row(object: object): unknown[] {
    const fields = object as Record<string, unknown>;
    const names = Object.keys(fields);
    const row: unknown[] = [0];
    // The names of the defined fields, once one is found undefined.
    let defined: string[] | undefined;
    for (let i = 0; i < names.length; i++) {
      const value = fields[names[i]!];
      if (value === undefined) {
        defined ??= names.slice(0, i);
        continue;
      }
      row.push(value);
      defined?.push(names[i]!);
    }
    row[0] = this.#shape(object.constructor as Constructor, defined ?? names);
    return row;
  }

  /** The table index of a class with these fields, added the first time. */
  #shape(ctor: Constructor, names: string[]): number {
    let known = this.#byClass.get(ctor);
    if (!known) this.#byClass.set(ctor, known = []);
    for (let i = 0; i < known.length; i++) {
      const seen = known[i]!;
      if (sameNames(seen.names, names)) return seen.index;
    }
    const className = ctor.name;
    const key = shapeKey(className, names);
    let shape = this.#shapes.get(key);
    if (shape === undefined) {
      shape = this.#table.length;
      this.#shapes.set(key, shape);
      this.#table.push([className, names]);
    }
    known.push({ names, index: shape });
    return shape;
  }
}

/** The key of a shape in a writer's table. */
function shapeKey(className: string, names: readonly string[]): string {
  return `${className}\u0000${names.join("\u0000")}`;
}

/** A field list a writer has met for a class, and its shape's index. */
interface ShapeSeen {
  names: string[];
  index: number;
}

/**
 * Item rows per line: a line is encoded at once, inside the slice that
 * adds its last item, so it must stay well under a slice's millisecond.
 */
const PIECE = 128;

const NEWLINE = 10;

function sameNames(a: readonly string[], b: readonly string[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** A snapshot of the given items, as text (checkpointQueue files, tests). */
export function snapshotText(
  child: string,
  seq: number,
  items: readonly QueueItem[],
  applied: [string, string][],
  taken: number,
): string {
  const writer = new SnapshotWriter({ child, seq, taken, applied });
  for (const item of items) writer.add(item);
  const decoder = new TextDecoder();
  return writer.pieces().map((piece) => decoder.decode(piece)).join("");
}

/**
 * The journal position a snapshot file says it covers, read from its first
 * line only; undefined when there is no such file or no readable header.
 */
export async function readSnapshotSeq(path: string): Promise<number | undefined> {
  let file: Deno.FsFile;
  try {
    file = await Deno.open(path, { read: true });
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return undefined;
    throw error;
  }
  try {
    const buffer = new Uint8Array(64 * 1024);
    const n = await file.read(buffer) ?? 0;
    const text = new TextDecoder().decode(buffer.subarray(0, n));
    // Version 2 puts seq in its header line; version 1 near the start.
    const seq = /"seq":(\d+)[,}]/.exec(text.split("\n", 1)[0]!)?.[1];
    return seq === undefined ? undefined : Number(seq);
  } finally {
    file.close();
  }
}

/**
 * Parses snapshot text (version 2, or version 1), checking the checksum.
 *
 * @throws {SnapshotError} for text that is not an intact snapshot
 */
export function parseSnapshot(text: string, file: string): SnapshotData {
  const newline = text.indexOf("\n");
  let head: unknown;
  try {
    head = JSON.parse(newline < 0 ? text : text.slice(0, newline));
  } catch (error) {
    throw new SnapshotError(file, `not JSON (${(error as Error).message})`);
  }
  if (!isJsonObject(head) || head.format !== SNAPSHOT_FORMAT) {
    throw new SnapshotError(file, "not an lvalertMP snapshot");
  }
  if (head.version === 1) return parseVersion1(head, file);
  const body = new TextEncoder().encode(newline < 0 ? "" : text.slice(newline + 1));
  const h = checkBody(head, body, file);
  const items: ItemJson[] = [];
  const applied = readBody(h, body, file, (row) => items.push(readItem(row, h.shapes, file)));
  return { child: h.child, seq: h.seq, taken: h.taken, applied, items };
}

/** A checked version-2 or version-3 header. */
type Header = v.InferOutput<typeof HeaderSchema>;

/**
 * Checks a version-2 or version-3 header, and the body's length and
 * checksum against it: past this, the body is the bytes the writer wrote.
 *
 * @throws {SnapshotError} for another version, a bad header, or a body
 * changed or cut short
 */
function checkBody(head: JsonObject, body: Uint8Array, file: string): Header {
  const h = checkHeader(head, file);
  checkSum(h, body.length, crc32(body), file);
  return h;
}

/**
 * Checks a version-2 or version-3 header.
 *
 * @throws {SnapshotError} for another version or a bad header
 */
function checkHeader(head: JsonObject, file: string): Header {
  if (!headerAndBody(head.version)) {
    throw new SnapshotError(
      file,
      `snapshot version ${head.version}; this build reads ${SNAPSHOT_VERSION}, ${UNINDEXED_VERSION}, ${ROW_PER_LINE_VERSION} and 1`,
    );
  }
  const header = v.safeParse(HeaderSchema, head);
  if (!header.success) throw new SnapshotError(file, `bad header: ${header.issues[0].message}`);
  return header.output;
}

/**
 * Checks a body's length and CRC-32 against its header.
 *
 * @throws {SnapshotError} for a body changed or cut short
 */
function checkSum(h: Header, length: number, crc: number, file: string): void {
  if (length !== h.bytes) {
    throw new SnapshotError(file, `body is ${length} bytes, the header says ${h.bytes}`);
  }
  if (crc.toString(16).padStart(8, "0") !== h.crc) {
    throw new SnapshotError(file, "checksum mismatch: the snapshot was changed or damaged");
  }
}

/**
 * Reads a checked body: returns its applied ids, and gives each item row,
 * in order, to `row`.
 *
 * @throws {SnapshotError} when a line is not JSON, or the rows are not as
 * many as the header says
 */
function readBody(
  h: Header,
  body: Uint8Array,
  file: string,
  row: (row: unknown) => void,
): [string, string][] {
  const parser = new BodyParser(h, file, row);
  eachLine(body, parser.line);
  return parser.finish();
}

/**
 * Reads a body's lines as they come: the applied ids, then item rows,
 * by pieces in version 4 (an index line, then a line of rows) and 3 (lines
 * of rows), one a line in version 2. Given `dormant`, a version-4 body's
 * pieces are kept there as text instead of read as rows.
 */
class BodyParser {
  #h: Header;
  #file: string;
  #row: (row: unknown) => void;
  #dormant: DormantPiece[] | undefined;
  #applied: [string, string][] | undefined;
  #rows = 0;
  /** The index line just read, and its text, until its rows come. */
  #index: PieceIndex | undefined;
  #indexText = "";

  /** `row` gets each item row, in order. */
  constructor(
    h: Header,
    file: string,
    row: (row: unknown) => void,
    dormant?: DormantPiece[],
  ) {
    this.#h = h;
    this.#file = file;
    this.#row = row;
    this.#dormant = dormant;
  }

  /**
   * Reads the next line (without its newline).
   *
   * @throws {SnapshotError} when it is not JSON, or holds more rows than the header says
   */
  line = (text: string): void => {
    const file = this.#file;
    if (this.#applied === undefined) {
      const value = parseLine(text, file, "bad applied ids");
      if (!isAppliedList(value)) throw new SnapshotError(file, "bad applied ids");
      this.#applied = value;
      return;
    }
    const items = this.#h.items;
    if (this.#h.version === ROW_PER_LINE_VERSION) {
      // Version 2 was read by the header's count of lines: any after them are left.
      if (this.#rows === items) return;
      this.#row(parseLine(text, file, "malformed item line"));
      this.#rows++;
      return;
    }
    let index: PieceIndex | undefined;
    if (this.#h.version === SNAPSHOT_VERSION) {
      if (this.#index === undefined) {
        const value = parseLine(text, file, "malformed index line");
        if (!isPieceIndex(value)) throw new SnapshotError(file, "malformed index line");
        this.#index = value;
        this.#indexText = text;
        return;
      }
      index = this.#index;
      this.#index = undefined;
      if (this.#rows + index[0] > items) {
        throw new SnapshotError(file, `malformed index line (the header says ${items} items)`);
      }
      if (this.#dormant) {
        this.#dormant.push({
          count: index[0],
          earliest: index[1],
          graceIds: index[2],
          index: this.#indexText,
          rows: text,
        });
        this.#rows += index[0];
        return;
      }
    }
    const rows = parseLine(text, file, "malformed item line");
    if (
      !Array.isArray(rows) || this.#rows + rows.length > items ||
      (index !== undefined && rows.length !== index[0])
    ) {
      throw new SnapshotError(file, `malformed item line (the header says ${items} items)`);
    }
    for (let i = 0; i < rows.length; i++) this.#row(rows[i]);
    this.#rows += rows.length;
  };

  /**
   * The applied ids, once every line is read.
   *
   * @throws {SnapshotError} when the rows were fewer than the header says
   */
  finish(): [string, string][] {
    if (this.#applied === undefined) throw new SnapshotError(this.#file, "bad applied ids");
    if (this.#rows !== this.#h.items || this.#index !== undefined) {
      throw new SnapshotError(
        this.#file,
        `malformed item line: ${this.#rows} items, the header says ${this.#h.items}`,
      );
    }
    return this.#applied;
  }
}

/** A piece's index line: its item count, earliest expiration and graceids. */
type PieceIndex = [number, number, unknown[]];

function isPieceIndex(value: unknown): value is PieceIndex {
  // A finite time: a piece no time could wake would never be due.
  return Array.isArray(value) && value.length === 3 && Number.isInteger(value[0]) &&
    value[0] > 0 && Number.isFinite(value[1]) && Array.isArray(value[2]);
}

/** One line's JSON; a line that is not JSON is a SnapshotError saying `what`. */
function parseLine(text: string, file: string, what: string): unknown {
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new SnapshotError(file, `${what} (${(error as Error).message})`);
  }
}

/** Bytes decoded at once when reading a body. */
const CHUNK = 64 * 1024;

/**
 * Gives each line of `body` to `line`, decoding about {@linkcode CHUNK}
 * bytes at a time, each ending at a newline: never one string of the whole
 * body (at 1e5 items, ~20 MB in V8's old space, which then collects it).
 * A newline byte is never part of a multi-byte character, so no character
 * is cut.
 */
function eachLine(body: Uint8Array, line: (text: string) => void, chunk = CHUNK): void {
  const decoder = new TextDecoder();
  for (let from = 0; from < body.length;) {
    const cut = body.indexOf(NEWLINE, Math.min(body.length, from + chunk));
    const end = cut < 0 ? body.length : cut + 1;
    const text = decoder.decode(body.subarray(from, end));
    for (let at = 0; at < text.length;) {
      let next = text.indexOf("\n", at);
      if (next < 0) next = text.length;
      line(text.slice(at, next));
      at = next + 1;
    }
    from = end;
  }
}

/** Bytes read from a snapshot file at once. */
const READ_CHUNK = 1 << 20;

/** A snapshot read from its file, and the time spent waiting for the disk. */
export interface ReadSnapshot extends LoadedSnapshot {
  /** Milliseconds spent in reads of the file. */
  readMs: number;
  /** Its items still as text, when restored lazily (`items` is then empty). */
  dormant?: DormantPieces | undefined;
}

/** How {@linkcode readSnapshot} restores. */
export interface ReadSnapshotOptions {
  /**
   * Restore a version-4 snapshot of this many items or more lazily, as
   * {@linkcode DormantPieces}.
   *
   * @default {Infinity}
   */
  lazyFrom?: number;
  /**
   * Hears of an item a dormant piece could not give back when woken (the
   * checksum makes it all but impossible; the item is left out).
   */
  report?: (message: string) => void;
}

/**
 * Reads and restores a snapshot file a megabyte at a time, as
 * {@linkcode loadSnapshot} does its bytes: the checksum is taken as the
 * bytes come, and rows are revived as their lines complete, so the file
 * is never held whole (at 1e5 items, ~20 MB of fresh memory, which costs
 * a page fault a page). Nothing it made is returned unless the whole body
 * matches its checksum; a body that does not is reported as changed or
 * damaged even when a line of it failed to parse first.
 *
 * @throws {Deno.errors.NotFound} when there is no such file
 * @throws {SnapshotError} for a file that is not an intact snapshot, or
 * that names a class the registry does not hold
 */
export async function readSnapshot(
  path: string,
  registry: ClassRegistry,
  options: ReadSnapshotOptions = {},
): Promise<ReadSnapshot> {
  const file = await Deno.open(path, { read: true });
  let readMs = 0;
  let buffer = new Uint8Array(READ_CHUNK);
  /** Bytes in `buffer` not yet read as lines. */
  let filled = 0;
  /** Reads more after `filled`, growing the buffer when full; false at the end. */
  const more = async (): Promise<boolean> => {
    if (filled === buffer.length) {
      const grown = new Uint8Array(buffer.length * 2);
      grown.set(buffer);
      buffer = grown;
    }
    const start = performance.now();
    const n = await file.read(buffer.subarray(filled));
    readMs += performance.now() - start;
    if (n === null) return false;
    filled += n;
    return true;
  };
  try {
    // The header line.
    let newline = -1;
    for (let searched = 0; newline < 0;) {
      if (!(await more())) break;
      newline = buffer.subarray(0, filled).indexOf(NEWLINE, searched);
      searched = filled;
    }
    const decoder = new TextDecoder();
    let head: unknown;
    try {
      head = JSON.parse(decoder.decode(buffer.subarray(0, newline < 0 ? filled : newline)));
    } catch {
      head = undefined;
    }
    if (
      newline < 0 || !isJsonObject(head) || head.format !== SNAPSHOT_FORMAT ||
      !headerAndBody(head.version)
    ) {
      // Version 1, or no snapshot at all: read whole, the general reader says which.
      while (await more());
      return { ...loadSnapshot(buffer.subarray(0, filled), registry, path), readMs };
    }
    const h = checkHeader(head, path);
    const reviver = new RowReviver(h.shapes, registry, path);
    const items: QueueItem[] = [];
    const lazy = h.version === SNAPSHOT_VERSION && h.items >= (options.lazyFrom ?? Infinity);
    // Every class is checked now, as an eager restore would find it missing.
    if (lazy) h.shapes.forEach(([name]) => checkedClass(name, registry, QueueItem, path, Task));
    const pieces: DormantPiece[] | undefined = lazy ? [] : undefined;
    const parser = new BodyParser(h, path, (row) => items.push(reviver.item(row)), pieces);
    // The body so far: its length and checksum, and the first error met in it.
    let bytes = 0;
    let crc = 0;
    let failure: unknown;
    /** Takes in `buffer[from, filled)`, just arrived; reads the lines it completes. */
    const arrived = (from: number) => {
      if (filled === from) return;
      bytes += filled - from;
      crc = crc32(buffer.subarray(from, filled), crc);
      // `buffer[0, from)` holds no newline: the last line read ended before it.
      const last = buffer.lastIndexOf(NEWLINE, filled - 1);
      if (last < from) return;
      if (failure === undefined) {
        try {
          // Lines kept as text (dormant pieces) are slices of what is decoded at
          // once: in pieces over 128 KB, V8 puts it straight in its old space
          // (not copied by every young-generation collection).
          eachLine(buffer.subarray(0, last + 1), parser.line, pieces ? READ_CHUNK : CHUNK);
        } catch (error) {
          failure = error;
        }
      }
      buffer.copyWithin(0, last + 1, filled);
      filled -= last + 1;
    };
    buffer.copyWithin(0, newline + 1, filled);
    filled -= newline + 1;
    arrived(0);
    for (;;) {
      const from = filled;
      if (!(await more())) break;
      arrived(from);
    }
    // A last line without its newline.
    if (filled > 0 && failure === undefined) {
      try {
        eachLine(buffer.subarray(0, filled), parser.line);
      } catch (error) {
        failure = error;
      }
    }
    checkSum(h, bytes, crc, path);
    if (failure !== undefined) throw failure;
    const applied = parser.finish();
    const dormant = pieces &&
      new DormantPieces(pieces, h.shapes, reviver, path, options.report);
    return { child: h.child, seq: h.seq, taken: h.taken, applied, items, readMs, dormant };
  } finally {
    file.close();
  }
}

/** One item row back into class, fields and tasks. */
function readItem(row: unknown, shapes: [string, string[]][], file: string): ItemJson {
  if (!Array.isArray(row) || !Array.isArray(row.at(-1))) {
    throw new SnapshotError(file, "malformed item line");
  }
  const item = readRow(row.slice(0, -1), shapes, file);
  const tasks = (row.at(-1) as unknown[]).map((t) => {
    if (!Array.isArray(t)) throw new SnapshotError(file, "malformed task");
    return readRow(t, shapes, file);
  });
  return { ...item, tasks };
}

function readRow(row: unknown[], shapes: [string, string[]][], file: string): ObjectJson {
  const shape = typeof row[0] === "number" ? shapes[row[0]] : undefined;
  if (!shape || shape[1].length !== row.length - 1) {
    throw new SnapshotError(file, "an entry does not match its shape");
  }
  const fields: JsonObject = {};
  for (let i = 0; i < shape[1].length; i++) fields[shape[1][i]!] = row[i + 1];
  return { class: shape[0], fields };
}

function isObjectJson(value: unknown): value is ObjectJson {
  return isJsonObject(value) && typeof value.class === "string" && isJsonObject(value.fields);
}

const Version1Schema = v.object({
  child: v.string(),
  seq: v.pipe(v.number(), v.integer(), v.minValue(0)),
  taken: v.number(),
  applied: AppliedSchema,
  items: v.array(
    v.custom<ItemJson>(
      (value) =>
        isObjectJson(value) && isJsonObject(value) && Array.isArray(value.tasks) &&
        value.tasks.every(isObjectJson),
      "malformed item entry in the snapshot",
    ),
  ),
});

function parseVersion1(value: JsonObject, file: string): SnapshotData {
  const parsed = v.safeParse(Version1Schema, value);
  if (!parsed.success) {
    const issue = parsed.issues[0];
    const path = issue.path?.map((p) => String(p.key)).join(".");
    throw new SnapshotError(file, `${path ? `${path}: ` : ""}${issue.message}`);
  }
  return parsed.output;
}

/** The registered class of that name, checked to be (or extend) `base` (or `or`). */
function checkedClass(
  name: string,
  registry: ClassRegistry,
  base: abstract new (...args: never[]) => object,
  file: string,
  or?: abstract new (...args: never[]) => object,
): Constructor {
  const ctor = registry.get(name);
  if (!ctor) {
    throw new SnapshotError(
      file,
      `unknown class "${name}": the handler must export it to restore this snapshot`,
      name,
    );
  }
  const is = (b: typeof base) => ctor.prototype instanceof b || ctor === b;
  if (!is(base) && !(or && is(or))) {
    throw new SnapshotError(
      file,
      `class "${name}" is not a ${base.name}${or ? ` or a ${or.name}` : ""}`,
      name,
    );
  }
  return ctor;
}

function revive<T extends object>(
  json: ObjectJson,
  registry: ClassRegistry,
  base: abstract new (...args: never[]) => T,
  file: string,
): T {
  const ctor = checkedClass(json.class, registry, base, file);
  return Object.assign(Object.create(ctor.prototype), json.fields) as T;
}

/**
 * Rebuilds queue items from a snapshot's entries.
 *
 * @throws {SnapshotError} naming the class and file when a class is unknown
 */
export function restoreItems(
  data: SnapshotData,
  registry: ClassRegistry,
  file: string,
): QueueItem[] {
  return data.items.map((entry) => {
    const item = revive(entry, registry, QueueItem, file);
    resetInternals(item);
    item.completedTasks = [];
    item.tasks = entry.tasks.map((t) => {
      const task = revive(t, registry, Task, file);
      // JSON turns NaN into null.
      if (task.expiration === null) task.expiration = NaN;
      return task;
    });
    return item;
  });
}

/** A snapshot read and restored: its position, applied ids and items. */
export interface LoadedSnapshot {
  child: string;
  seq: number;
  taken: number;
  applied: [string, string][];
  items: QueueItem[];
}

/** How rows of one shape become objects: their class and field names. */
interface Reviver {
  ctor: Constructor;
  names: string[];
}

/** Arguments for constructing an object without running its class's constructor. */
const NO_ARGS: never[] = [];

/**
 * Revives version-2/3 rows into items and tasks. Each shape's class is
 * looked up and checked once, for items or for tasks; past that, a row
 * costs a check of its shape index and length, one object and its fields
 * (the checksum has proved the bytes are the writer's).
 */
class RowReviver {
  #shapes: [string, string[]][];
  #registry: ClassRegistry;
  #file: string;
  /** By shape index: the revivers of item rows and of task rows. */
  #items: (Reviver | undefined)[] = [];
  #tasks: (Reviver | undefined)[] = [];

  constructor(shapes: [string, string[]][], registry: ClassRegistry, file: string) {
    this.#shapes = shapes;
    this.#registry = registry;
    this.#file = file;
  }

  /** `[shape, value, ..., [task rows]]` as a fresh, unqueued, pending item. */
  item(row: unknown): QueueItem {
    const taskRows = Array.isArray(row) ? row[row.length - 1] : undefined;
    if (!Array.isArray(taskRows)) throw new SnapshotError(this.#file, "malformed item line");
    const shape = this.#reviver(row as unknown[], 2, this.#items, QueueItem);
    const tasks: Task[] = new Array(taskRows.length);
    for (let i = 0; i < taskRows.length; i++) tasks[i] = this.#task(taskRows[i]);
    const item = Reflect.construct(Object, NO_ARGS, shape.ctor) as QueueItem;
    fill(item, shape.names, row as unknown[]);
    initRestored(item, tasks);
    return item;
  }

  #task(row: unknown): Task {
    if (!Array.isArray(row)) throw new SnapshotError(this.#file, "malformed task");
    const shape = this.#reviver(row, 1, this.#tasks, Task);
    const task = Reflect.construct(Object, NO_ARGS, shape.ctor) as Task;
    fill(task, shape.names, row);
    // JSON turns NaN into null.
    if (task.expiration === null) task.expiration = NaN;
    return task;
  }

  /** The reviver of a row's shape; `extra`: the row's entries besides its fields. */
  #reviver(
    row: unknown[],
    extra: number,
    known: (Reviver | undefined)[],
    base: typeof QueueItem | typeof Task,
  ): Reviver {
    const index = row[0];
    const reviver = typeof index === "number" ? known[index] : undefined;
    if (reviver && reviver.names.length === row.length - extra) return reviver;
    const shape = typeof index === "number" ? this.#shapes[index] : undefined;
    if (!shape || shape[1].length !== row.length - extra) {
      throw new SnapshotError(this.#file, "an entry does not match its shape");
    }
    // One shape is one kind: an item's shape never stands for a task.
    const ctor = checkedClass(shape[0], this.#registry, base, this.#file);
    return known[index as number] = { ctor, names: shape[1] };
  }
}

/** A snapshot's piece kept as its two lines of text (index and rows). */
export interface DormantPiece {
  /** Its items. */
  readonly count: number;
  /** The earliest expiration among them. */
  readonly earliest: number;
  /** Their distinct graceids. */
  readonly graceIds: readonly unknown[];
  /** The index line, as written. */
  readonly index: string;
  /** The rows line, as written. */
  readonly rows: string;
}

/**
 * A snapshot's items restored lazily: its pieces kept as text, each woken
 * (its rows revived into items, given to the queue with their places in
 * line) when the queue needs it: its earliest item is due, its graceids
 * are looked up, or the whole queue is read. Recovery then costs the
 * index lines, not 1e5 items built in a fresh heap (~600 ms here).
 */
export class DormantPieces implements Dormant {
  /** The snapshot's shape table (a snapshot copying these pieces starts from it). */
  readonly shapes: readonly [string, string[]][];
  /** Items in all, woken or not. */
  readonly total: number;
  /** In file order; undefined once woken. */
  #pieces: (DormantPiece | undefined)[];
  /** Each piece's first row in the snapshot. */
  #first: number[];
  /** Piece numbers, earliest first; `#at`: the first maybe still dormant. */
  #byTime: number[];
  #at = 0;
  #count: number;
  /** Piece numbers by graceid, made when first asked. */
  #byGraceId: Map<unknown, number[]> | undefined;
  #reviver: RowReviver;
  #file: string;
  #report: (message: string) => void;
  #woken: ((items: QueueItem[]) => void) | undefined;

  constructor(
    pieces: DormantPiece[],
    shapes: readonly [string, string[]][],
    reviver: RowReviver,
    file: string,
    report: (message: string) => void = () => {},
  ) {
    this.shapes = shapes;
    this.#pieces = pieces;
    let row = 0;
    this.#first = pieces.map((piece) => (row += piece.count) - piece.count);
    this.total = this.#count = row;
    this.#byTime = pieces.map((_, i) => i).sort((a, b) =>
      pieces[a]!.earliest - pieces[b]!.earliest || a - b
    );
    this.#reviver = reviver;
    this.#file = file;
    this.#report = report;
  }

  /** Items still dormant. */
  get count(): number {
    return this.#count;
  }

  /** The earliest expiration of a dormant item; Infinity when none is left. */
  firstKey(): number {
    const byTime = this.#byTime;
    while (this.#at < byTime.length && this.#pieces[byTime[this.#at]!] === undefined) this.#at++;
    return this.#at < byTime.length ? this.#pieces[byTime[this.#at]!]!.earliest : Infinity;
  }

  /** Wakes the piece holding the earliest dormant item. */
  wakeFirst(put: PutDormant): void {
    if (this.firstKey() !== Infinity) this.#wake(this.#byTime[this.#at]!, put);
  }

  /** Wakes every piece holding items of `graceid`. */
  wakeGraceId(graceid: string, put: PutDormant): void {
    if (this.#count === 0) return;
    if (!this.#byGraceId) {
      const map = this.#byGraceId = new Map();
      this.#pieces.forEach((piece, i) => {
        for (const g of piece?.graceIds ?? []) {
          const list = map.get(g);
          if (list) list.push(i);
          else map.set(g, [i]);
        }
      });
    }
    const list = this.#byGraceId.get(graceid);
    if (!list) return;
    this.#byGraceId.delete(graceid);
    for (const i of list) if (this.#pieces[i]) this.#wake(i, put);
  }

  /** Wakes every piece. */
  wakeAll(put: PutDormant): void {
    for (let i = 0; i < this.#pieces.length; i++) if (this.#pieces[i]) this.#wake(i, put);
  }

  /** The pieces still dormant, in file order (a snapshot copies them as they are). */
  pieces(): DormantPiece[] {
    return this.#pieces.filter((piece) => piece !== undefined);
  }

  /** While set, `woken` hears the items of each piece woken (a snapshot marks them saved). */
  watch(woken?: (items: QueueItem[]) => void): void {
    this.#woken = woken;
  }

  #wake(i: number, put: PutDormant): void {
    const piece = this.#pieces[i]!;
    this.#pieces[i] = undefined;
    this.#count -= piece.count;
    const lost = (what: string) =>
      this.#report(`${this.#file}: ${what} could not be restored and is left out`);
    let rows: unknown;
    try {
      rows = JSON.parse(piece.rows);
    } catch {
      rows = undefined;
    }
    if (!Array.isArray(rows) || rows.length !== piece.count) {
      return lost(`a piece of ${piece.count} items (rows ${this.#first[i]}..)`);
    }
    const woken: QueueItem[] = [];
    const now = Date.now() / 1000;
    for (let j = 0; j < rows.length; j++) {
      try {
        const item = this.#reviver.item(rows[j]);
        checkTime(item, item.expiration, now);
        put(item, this.#first[i]! + j);
        woken.push(item);
      } catch (error) {
        lost(`item row ${this.#first[i]! + j} (${(error as Error).message})`);
      }
    }
    this.#woken?.(woken);
  }
}

/**
 * Reads and restores a snapshot file's bytes: the checksum is taken over
 * the bytes as read, the body decoded a piece at a time, and each row of
 * version 4, 3 or 2 becomes its object directly (no intermediate field
 * objects): 1e5 items in ~0.3 s in a grown heap, 0.6-0.9 s in a new one
 * (a child's recovery reads big snapshots lazily instead, through
 * {@linkcode readSnapshot}). Version 1
 * goes through {@linkcode parseSnapshot} and {@linkcode restoreItems}.
 *
 * @throws {SnapshotError} for bytes that are not an intact snapshot, or
 * that name a class the registry does not hold
 */
export function loadSnapshot(
  bytes: Uint8Array,
  registry: ClassRegistry,
  file: string,
): LoadedSnapshot {
  const newline = bytes.indexOf(NEWLINE);
  const decoder = new TextDecoder();
  const first = decoder.decode(newline < 0 ? bytes : bytes.subarray(0, newline));
  let head: unknown;
  try {
    head = JSON.parse(first);
  } catch (error) {
    throw new SnapshotError(file, `not JSON (${(error as Error).message})`);
  }
  if (
    !isJsonObject(head) || head.format !== SNAPSHOT_FORMAT ||
    !headerAndBody(head.version)
  ) {
    // Version 1, or no snapshot at all: the general reader says which.
    const data = parseSnapshot(decoder.decode(bytes), file);
    return { ...data, items: restoreItems(data, registry, file) };
  }
  const body = newline < 0 ? new Uint8Array(0) : bytes.subarray(newline + 1);
  const h = checkBody(head, body, file);
  const reviver = new RowReviver(h.shapes, registry, file);
  // Grown as rows come: the header's count is checked against them, not trusted.
  const items: QueueItem[] = [];
  const applied = readBody(h, body, file, (row) => items.push(reviver.item(row)));
  return { child: h.child, seq: h.seq, taken: h.taken, applied, items };
}

/**
 * Sets the row's values as the object's fields. The object comes from
 * `Reflect.construct(Object, [], ctor)`: made for its class (room for its
 * fields) without running its constructor.
 */
function fill(object: object, names: readonly string[], row: unknown[]): void {
  const fields = object as Record<string, unknown>;
  for (let i = 0; i < names.length; i++) fields[names[i]!] = row[i + 1];
}
