/**
 * Handler API v1: everything a handler module imports, and nothing of the
 * engine behind it.
 *
 * A handler is a module in `workers/handlers/<process_type>.ts` (or one a
 * childConfig names with `handler =`) that exports
 * `parseAlert(ctx, alert, t0, config)` and the item and task classes it
 * creates, so snapshots can restore them:
 *
 * ```ts
 * import { type Alert, type ChildContext, QueueItem, Task } from "./mod.ts";
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
 * What each part is for:
 * - {@linkcode Task} and {@linkcode QueueItem}: the follow-up work, by
 *   inheritance; the child runs an item's due tasks itself.
 * - {@linkcode ChildContext}: the queue ({@linkcode ChildQueue}: insert, find
 *   by graceid, complete), the childConfig ({@linkcode Ini}), the log
 *   ({@linkcode ChildLog}), `now()`, `notify` (mail), `publish` (XMPP), and
 *   where the child runs ({@linkcode ChildIdentity}).
 * - {@linkcode Alert}, {@linkcode describeAlert}, {@linkcode alertSchema}:
 *   alerts of both GraceDB schemas.
 * - `ctx.gracedb`: a GraceDB client (`lib/gracedb/mod.ts`) for the GraceDB
 *   the childConfig names in `[general] gracedb`.
 * - {@linkcode HandlerModule}, {@linkcode CommandSpec},
 *   {@linkcode ConfigError}: the module's own shape, its extra commands and
 *   its config checks (exit 78 at start).
 *
 * @module
 */

export {
  type Alert,
  type AlertSchema,
  alertSchema,
  describeAlert,
  isJsonObject,
  type JsonObject,
} from "./core/alert.ts";
export type { ChildLog, Level } from "./core/log.ts";
export { ConfigError, type ConfigErrorOptions } from "./core/config_error.ts";
export {
  Ini,
  type IniData,
  type IniDialect,
  type IniEntry,
  type IniSectionData,
} from "./config/ini.ts";
export type { ChildContext, ChildIdentity, ChildQueue } from "./queue/queue_item.ts";
export { QueueItem, type QueueItemOptions } from "./queue/queue_item.ts";
export { Task } from "./queue/queue_item.ts";
export type { CommandSpec } from "./child/commands.ts";
export type { HandlerModule } from "./child/handler.ts";
