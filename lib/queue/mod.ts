/**
 * The queue engine: tasks, queue items and the context they run in, the
 * 4-ary heap that orders items by expiration, and the injectable clock.
 *
 * May import only `core/` and `config/`.
 *
 * @module
 */

export * from "./clock.ts";
export * from "./queue_item.ts";
export * from "./sorted_queue.ts";
