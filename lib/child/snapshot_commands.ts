/**
 * The commands that save and load a queue: checkpointQueue and loadQueue,
 * with the original's `filename` keyword argument. Files are JSON
 * snapshots (never pickle); relative names are under log_directory.
 *
 * @module
 */

import type { JsonObject } from "../core/alert.ts";
import { commandFile, type CommandSpec, type EngineContext } from "./commands.ts";
import type { ChildContext } from "../queue/queue_item.ts";
import { parseSnapshot, restoreItems, snapshotText } from "../durability/snapshot.ts";
import { writePrivateFile } from "../durability/state_dir.ts";

function target(ctx: ChildContext, kwargs: JsonObject): string {
  return commandFile(ctx, String(kwargs.filename));
}

/** checkpointQueue and loadQueue. */
export const SNAPSHOT_COMMANDS: readonly CommandSpec<EngineContext>[] = [
  {
    name: "checkpointQueue",
    description: "writes the queue to 'filename' as a JSON snapshot (under log_directory)",
    required: ["filename"],
    async run(ctx, kwargs, self) {
      const path = target(ctx, kwargs);
      // The command's own item is running, so it is not in the queue.
      const items = ctx.queue.items().filter((item) => item !== self);
      await writePrivateFile(
        path,
        snapshotText(ctx.child, 0, items, [], ctx.now()),
      );
      ctx.log.event("info", "command", { command: "checkpointQueue", path, items: items.length });
      return `${items.length} item(s) written to ${path}`;
    },
  },
  {
    name: "loadQueue",
    description: "adds the items of a checkpointQueue file to the queue",
    required: ["filename"],
    async run(ctx, kwargs) {
      const path = target(ctx, kwargs);
      const items = restoreItems(
        parseSnapshot(await Deno.readTextFile(path), path),
        ctx.registry,
        path,
      );
      for (const item of items) ctx.queue.insert(item);
      ctx.log.event("info", "command", { command: "loadQueue", path, items: items.length });
      return `${items.length} item(s) loaded from ${path}`;
    },
  },
];
