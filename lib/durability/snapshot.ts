/**
 * Snapshots of a child's queue: JSON (never code), versioned, restored
 * through a registry of the item and task classes a handler exports.
 *
 * Format, version 1:
 * `{"format":"lvalertMP-snapshot","version":1,"child","seq","taken",
 *   "applied":[[node,id],...],"items":[{"class","fields","tasks":[{"class","fields"}]}]}`
 * where `seq` is the last journal record the snapshot includes.
 *
 * @module
 */

import * as v from "valibot";
import { isJsonObject, type JsonObject } from "../core/alert.ts";
import { QueueItem, resetInternals, Task } from "../queue/queue_item.ts";

export const SNAPSHOT_FORMAT = "lvalertMP-snapshot";
export const SNAPSHOT_VERSION = 1;

/** A class name and the object's own fields. */
interface ObjectJson {
  class: string;
  fields: JsonObject;
}

/** An item: its class, fields and remaining tasks. */
interface ItemJson extends ObjectJson {
  tasks: ObjectJson[];
}

function isObjectJson(value: unknown): value is ObjectJson {
  return isJsonObject(value) && typeof value.class === "string" && isJsonObject(value.fields);
}

/**
 * An item entry, checked by a plain guard rather than a nested schema: a
 * snapshot holds up to ~1e5 of them and recovery must stay fast.
 */
const itemJson = v.custom<ItemJson>(
  (value) =>
    isJsonObject(value) && isObjectJson(value) && Array.isArray(value.tasks) &&
    value.tasks.every(isObjectJson),
  "malformed item entry in the snapshot",
);

const SnapshotSchema = v.object({
  format: v.literal(SNAPSHOT_FORMAT, "not an lvalertMP snapshot"),
  version: v.literal(SNAPSHOT_VERSION, `this build reads snapshot version ${SNAPSHOT_VERSION}`),
  child: v.string(),
  seq: v.pipe(v.number(), v.integer(), v.minValue(0)),
  taken: v.number(),
  applied: v.array(v.tuple([v.string(), v.string()])),
  items: v.array(itemJson),
});

/** A parsed snapshot file. */
export type SnapshotData = v.InferOutput<typeof SnapshotSchema>;

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

/** A snapshot of the given pending items. */
export function takeSnapshot(
  child: string,
  seq: number,
  items: readonly QueueItem[],
  applied: [string, string][],
  taken: number,
): SnapshotData {
  return {
    ...snapshotHead(child, seq, applied, taken),
    items: items.map((item) => JSON.parse(itemText(item))),
  };
}

/** A snapshot without its items (they can be written one by one after it). */
export function snapshotHead(
  child: string,
  seq: number,
  applied: [string, string][],
  taken: number,
): Omit<SnapshotData, "items"> {
  return { format: SNAPSHOT_FORMAT, version: SNAPSHOT_VERSION, child, seq, taken, applied };
}

/**
 * One item as snapshot JSON text. An item's and a task's own enumerable
 * fields are exactly what JSON.stringify writes (an item keeps its tasks
 * behind accessors), so this is one native pass per object.
 */
export function itemText(item: QueueItem): string {
  const tasks = item.tasks.map((t) =>
    `{"class":${JSON.stringify(t.constructor.name)},"fields":${JSON.stringify(t)}}`
  );
  return `{"class":${JSON.stringify(item.constructor.name)},"fields":${
    JSON.stringify(item)
  },"tasks":[${tasks.join(",")}]}`;
}

/**
 * Parses snapshot text.
 *
 * @throws {SnapshotError} for text that is not a version-1 snapshot
 */
export function parseSnapshot(text: string, file: string): SnapshotData {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new SnapshotError(file, `not JSON (${(error as Error).message})`);
  }
  if (!isJsonObject(value) || value.format !== SNAPSHOT_FORMAT) {
    throw new SnapshotError(file, "not an lvalertMP snapshot");
  }
  if (value.version !== SNAPSHOT_VERSION) {
    throw new SnapshotError(
      file,
      `snapshot version ${value.version}; this build reads ${SNAPSHOT_VERSION}`,
    );
  }
  const parsed = v.safeParse(SnapshotSchema, value);
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
