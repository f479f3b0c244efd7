/**
 * Snapshots of a child's queue: JSON (never code), versioned, checksummed,
 * restored through a registry of the item and task classes a handler
 * exports.
 *
 * Format, version 2 (JSON Lines):
 * - line 1, the header: `{"format":"lvalertMP-snapshot","version":2,
 *   "child","seq","taken","items":N,"bytes":B,"crc":"hex","shapes":[...]}`,
 *   where `seq` is the last journal record the snapshot includes, `bytes`
 *   and `crc` (CRC-32) cover everything after the header line, and each
 *   shape is `[className, [fieldName, ...]]`;
 * - line 2: the applied alert ids, `[[node, id], ...]`;
 * - one line per item: `[shape, value, ..., [[shape, value, ...], ...]]`,
 *   its fields in its shape's order, then its remaining tasks.
 *
 * Field and class names are written once per shape, not once per item, and
 * the header alone tells the listener the snapshot's journal position.
 * Version 1 (one JSON object with `items: [{class, fields, tasks}]`) is
 * still read.
 *
 * @module
 */

import { crc32 } from "node:zlib";
import * as v from "valibot";
import { isJsonObject, type JsonObject } from "../core/alert.ts";
import { initRestored, QueueItem, resetInternals, Task } from "../queue/queue_item.ts";

export const SNAPSHOT_FORMAT = "lvalertMP-snapshot";
export const SNAPSHOT_VERSION = 2;

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
  version: v.literal(SNAPSHOT_VERSION),
  child: v.string(),
  seq: v.pipe(v.number(), v.integer(), v.minValue(0)),
  taken: v.number(),
  items: v.pipe(v.number(), v.integer(), v.minValue(0)),
  bytes: v.pipe(v.number(), v.integer(), v.minValue(0)),
  crc: v.pipe(v.string(), v.regex(/^[0-9a-f]{8}$/)),
  shapes: v.array(v.tuple([v.string(), v.array(v.string())])),
});

const AppliedSchema = v.array(v.tuple([v.string(), v.string()]));

/** What a snapshot says besides its items; the applied ids as a list or as JSON text. */
export type SnapshotHead =
  | Omit<SnapshotData, "items">
  | Omit<SnapshotData, "items" | "applied"> & { appliedJson: string };

/**
 * Builds a version-2 snapshot item by item (so a big queue can be
 * serialized in slices while tasks keep running), then gives its text in
 * pieces to write.
 *
 * @example
 * ```ts
 * import { QueueItem } from "../queue/queue_item.ts";
 * const writer = new SnapshotWriter({ child: "a", seq: 3, taken: 0, applied: [] });
 * writer.add(new QueueItem(0, []));
 * const bytes = writer.pieces(); // write them in order
 * ```
 */
export class SnapshotWriter {
  #head: SnapshotHead;
  /** Shapes by class: each seen field list and its index in the table. */
  #byClass = new Map<Constructor, [string[], number][]>();
  #shapes = new Map<string, number>();
  #table: [string, string[]][] = [];
  /** Item lines not yet encoded. */
  #lines: string[] = [];
  /**
   * The body so far, encoded into one buffer that grows by doubling (one
   * allocation per snapshot rather than one per piece: allocating many
   * buffers makes V8 collect the whole heap, which at 1e5 items costs
   * more than the encoding), with its CRC and length.
   */
  #body: Uint8Array;
  #crc = 0;
  #bytes = 0;
  #count = 0;
  #encoder = new TextEncoder();

  /**
   * `head.applied` may come as JSON text already (`appliedJson`);
   * `sizeHint`: the bytes the body is expected to take.
   */
  constructor(head: SnapshotHead, sizeHint = 64 * 1024) {
    this.#head = head;
    this.#body = new Uint8Array(Math.max(1024, Math.ceil(sizeHint * 1.1)));
    this.#append(("appliedJson" in head ? head.appliedJson : JSON.stringify(head.applied)) + "\n");
  }

  /** Items added so far. */
  get count(): number {
    return this.#count;
  }

  /**
   * Adds one item (and its remaining tasks): one `JSON.stringify` per
   * item; every PIECE items are encoded and checksummed at once, so the
   * work is spread over the slices that add them.
   */
  add(item: QueueItem): void {
    const row = this.#row(item);
    const tasks = item.tasks;
    const rows = new Array(tasks.length);
    for (let i = 0; i < tasks.length; i++) rows[i] = this.#row(tasks[i]!);
    row.push(rows);
    this.#lines.push(JSON.stringify(row));
    this.#count++;
    if (this.#lines.length === PIECE) this.#flush();
  }

  /** The snapshot's bytes: the header line, then the body. */
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
    return [
      this.#encoder.encode(JSON.stringify(header) + "\n"),
      this.#body.subarray(0, this.#bytes),
    ];
  }

  #flush(): void {
    if (this.#lines.length === 0) return;
    this.#append(this.#lines.join("\n") + "\n");
    this.#lines = [];
  }

  #append(text: string): void {
    const from = this.#bytes;
    let read = 0;
    for (;;) {
      const done = this.#encoder.encodeInto(
        read === 0 ? text : text.slice(read),
        this.#body.subarray(this.#bytes),
      );
      read += done.read;
      this.#bytes += done.written;
      if (read >= text.length) break;
      const grown = new Uint8Array(this.#body.length * 2);
      grown.set(this.#body.subarray(0, this.#bytes));
      this.#body = grown;
    }
    this.#crc = crc32(this.#body.subarray(from, this.#bytes), this.#crc);
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
    for (const [fields, index] of known) if (sameNames(fields, names)) return index;
    const className = ctor.name;
    const key = `${className}\u0000${names.join("\u0000")}`;
    let shape = this.#shapes.get(key);
    if (shape === undefined) {
      shape = this.#table.length;
      this.#shapes.set(key, shape);
      this.#table.push([className, names]);
    }
    known.push([names, shape]);
    return shape;
  }
}

/** Item lines encoded together. */
const PIECE = 256;

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
  if (head.version !== SNAPSHOT_VERSION) {
    throw new SnapshotError(
      file,
      `snapshot version ${head.version}; this build reads ${SNAPSHOT_VERSION} and 1`,
    );
  }
  const header = v.safeParse(HeaderSchema, head);
  if (!header.success) throw new SnapshotError(file, `bad header: ${header.issues[0].message}`);
  const h = header.output;
  const body = new TextEncoder().encode(text.slice(newline + 1));
  if (body.length !== h.bytes) {
    throw new SnapshotError(file, `body is ${body.length} bytes, the header says ${h.bytes}`);
  }
  if (crc32(body).toString(16).padStart(8, "0") !== h.crc) {
    throw new SnapshotError(file, "checksum mismatch: the snapshot was changed or damaged");
  }
  const lines = text.slice(newline + 1).split("\n");
  const applied = v.safeParse(AppliedSchema, JSON.parse(lines[0]!));
  if (!applied.success) throw new SnapshotError(file, "bad applied ids");
  const items: ItemJson[] = [];
  for (let i = 1; i <= h.items; i++) items.push(readItem(lines[i], h.shapes, file));
  return { child: h.child, seq: h.seq, taken: h.taken, applied: applied.output, items };
}

/** One item line back into class, fields and tasks. */
function readItem(line: string | undefined, shapes: [string, string[]][], file: string): ItemJson {
  const row = line === undefined ? undefined : JSON.parse(line);
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

/** The registered class of that name, checked to be (or extend) `base`. */
function checkedClass(
  name: string,
  registry: ClassRegistry,
  base: abstract new (...args: never[]) => object,
  file: string,
): Constructor {
  const ctor = registry.get(name);
  if (!ctor) {
    throw new SnapshotError(
      file,
      `unknown class "${name}": the handler must export it to restore this snapshot`,
      name,
    );
  }
  if (!(ctor.prototype instanceof base) && ctor !== base) {
    throw new SnapshotError(file, `class "${name}" is not a ${base.name}`, name);
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

/** How one shape is revived: its class and fields. */
interface Reviver {
  ctor: Constructor;
  names: string[];
}

/**
 * Reads and restores a snapshot file's bytes in one pass: the checksum is
 * taken over the bytes as read, and each version-2 row becomes its
 * object directly (no intermediate field objects), so 1e5 items restore
 * in a fraction of a second. Version 1 goes through
 * {@linkcode parseSnapshot} and {@linkcode restoreItems}.
 *
 * @throws {SnapshotError} for bytes that are not an intact snapshot, or
 * that name a class the registry does not hold
 */
export function loadSnapshot(
  bytes: Uint8Array,
  registry: ClassRegistry,
  file: string,
): LoadedSnapshot {
  const decoder = new TextDecoder();
  const newline = bytes.indexOf(10);
  const first = decoder.decode(newline < 0 ? bytes : bytes.subarray(0, newline));
  let head: unknown;
  try {
    head = JSON.parse(first);
  } catch (error) {
    throw new SnapshotError(file, `not JSON (${(error as Error).message})`);
  }
  if (!isJsonObject(head) || head.version !== SNAPSHOT_VERSION) {
    // Version 1, or no snapshot at all: the general reader says which.
    const data = parseSnapshot(decoder.decode(bytes), file);
    return { ...data, items: restoreItems(data, registry, file) };
  }
  const header = v.safeParse(HeaderSchema, head);
  if (!header.success) throw new SnapshotError(file, `bad header: ${header.issues[0].message}`);
  const h = header.output;
  const body = bytes.subarray(newline + 1);
  if (body.length !== h.bytes) {
    throw new SnapshotError(file, `body is ${body.length} bytes, the header says ${h.bytes}`);
  }
  if (crc32(body).toString(16).padStart(8, "0") !== h.crc) {
    throw new SnapshotError(file, "checksum mismatch: the snapshot was changed or damaged");
  }
  const lines = decoder.decode(body).split("\n");
  const applied = v.safeParse(AppliedSchema, JSON.parse(lines[0]!));
  if (!applied.success) throw new SnapshotError(file, "bad applied ids");
  const revivers: (Reviver | undefined)[] = [];
  const reviver = (row: unknown, base: typeof QueueItem | typeof Task): Reviver => {
    if (!Array.isArray(row)) throw new SnapshotError(file, "malformed task");
    const index = row[0];
    const shape = typeof index === "number" ? h.shapes[index] : undefined;
    if (!shape || shape[1].length !== row.length - 1 - (base === QueueItem ? 1 : 0)) {
      throw new SnapshotError(file, "an entry does not match its shape");
    }
    let known = revivers[index as number];
    if (!known) {
      const ctor = checkedClass(shape[0], registry, base, file);
      revivers[index as number] = known = { ctor, names: shape[1] };
    }
    // One shape is one kind: an item's shape never stands for a task.
    if (!(known.ctor.prototype instanceof base) && known.ctor !== base) {
      throw new SnapshotError(file, `class "${shape[0]}" is not a ${base.name}`, shape[0]);
    }
    return known;
  };
  const items: QueueItem[] = new Array(h.items);
  for (let i = 0; i < h.items; i++) {
    const line = lines[i + 1];
    const row = line === undefined ? undefined : JSON.parse(line);
    if (!Array.isArray(row) || !Array.isArray(row.at(-1))) {
      throw new SnapshotError(file, "malformed item line");
    }
    const itemShape = reviver(row, QueueItem);
    const rows = row[row.length - 1] as unknown[];
    const tasks: Task[] = new Array(rows.length);
    for (let j = 0; j < rows.length; j++) {
      const taskShape = reviver(rows[j], Task);
      const task = Reflect.construct(Object, [], taskShape.ctor) as Task;
      fill(task, taskShape.names, rows[j] as unknown[]);
      // JSON turns NaN into null.
      if (task.expiration === null) task.expiration = NaN;
      tasks[j] = task;
    }
    const item = Reflect.construct(Object, [], itemShape.ctor) as QueueItem;
    fill(item, itemShape.names, row);
    initRestored(item, tasks);
    items[i] = item;
  }
  return { child: h.child, seq: h.seq, taken: h.taken, applied: applied.output, items };
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
