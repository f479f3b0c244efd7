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
import { QueueItem, resetInternals, Task } from "../queue/queue_item.ts";

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
  #head: Omit<SnapshotData, "items">;
  #shapes = new Map<string, number>();
  #table: [string, string[]][] = [];
  #lines: string[] = [];

  constructor(head: Omit<SnapshotData, "items">) {
    this.#head = head;
  }

  /** Items added so far. */
  get count(): number {
    return this.#lines.length;
  }

  /** Adds one item (and its remaining tasks). */
  add(item: QueueItem): void {
    const tasks = item.tasks.map((t) => `[${this.#row(t)}]`);
    this.#lines.push(`[${this.#row(item)},[${tasks.join(",")}]]`);
  }

  /** The snapshot's bytes: the header line first, then the body in pieces of ~1000 lines. */
  pieces(): Uint8Array[] {
    const encoder = new TextEncoder();
    const body = [encoder.encode(JSON.stringify(this.#head.applied) + "\n")];
    for (let i = 0; i < this.#lines.length; i += 1000) {
      body.push(encoder.encode(this.#lines.slice(i, i + 1000).join("\n") + "\n"));
    }
    let crc = 0;
    let bytes = 0;
    for (const piece of body) {
      crc = crc32(piece, crc);
      bytes += piece.length;
    }
    const header = {
      format: SNAPSHOT_FORMAT,
      version: SNAPSHOT_VERSION,
      child: this.#head.child,
      seq: this.#head.seq,
      taken: this.#head.taken,
      items: this.#lines.length,
      bytes,
      crc: crc.toString(16).padStart(8, "0"),
      shapes: this.#table,
    };
    return [encoder.encode(JSON.stringify(header) + "\n"), ...body];
  }

  /** `shape,value,...` of an object's own defined fields. */
  #row(object: object): string {
    const names: string[] = [];
    const values: string[] = [];
    for (const [name, value] of Object.entries(object)) {
      if (value === undefined) continue;
      names.push(name);
      values.push(JSON.stringify(value));
    }
    const className = object.constructor.name;
    const key = `${className}\u0000${names.join("\u0000")}`;
    let shape = this.#shapes.get(key);
    if (shape === undefined) {
      shape = this.#table.length;
      this.#shapes.set(key, shape);
      this.#table.push([className, names]);
    }
    return values.length === 0 ? String(shape) : `${shape},${values.join(",")}`;
  }
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

function revive<T extends object>(
  json: ObjectJson,
  registry: ClassRegistry,
  base: abstract new (...args: never[]) => T,
  file: string,
): T {
  const ctor = registry.get(json.class);
  if (!ctor) {
    throw new SnapshotError(
      file,
      `unknown class "${json.class}": the handler must export it to restore this snapshot`,
      json.class,
    );
  }
  if (!(ctor.prototype instanceof base) && ctor !== base) {
    throw new SnapshotError(file, `class "${json.class}" is not a ${base.name}`, json.class);
  }
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
