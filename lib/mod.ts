/**
 * The public API for handler authors: the queue engine's classes, the
 * context a handler runs in, alerts of both GraceDB schemas, and config
 * access.
 *
 * A handler is a module in `workers/handlers/<process_type>.ts` that
 * exports `parseAlert(ctx, alert, t0, config)` and the item and task
 * classes it creates:
 *
 * ```ts
 * import { type Alert, type ChildContext, QueueItem, Task } from "../../lib/mod.ts";
 *
 * export class CheckSkymap extends Task {
 *   execute(ctx: ChildContext, item: QueueItem) {
 *     ctx.log.warning(`no sky map for ${item.graceid} after ${this.timeout} s`);
 *   }
 * }
 * export class Followup extends QueueItem {}
 *
 * export function parseAlert(ctx: ChildContext, alert: Alert, t0: number) {
 *   if (alert.alert_type !== "new") return;
 *   ctx.queue.insert(new Followup(t0, [new CheckSkymap(60)], { graceid: alert.uid }));
 * }
 * ```
 *
 * @module
 */

export * from "./core/alert.ts";
export * from "./child/commands.ts";
export * from "./config/config_error.ts";
export * from "./queue/context.ts";
export * from "./child/handler.ts";
export * from "./config/ini.ts";
export * from "./queue/sorted_queue.ts";
export * from "./queue/task.ts";
export { QueueItem, type QueueItemOptions } from "./queue/queue_item.ts";
