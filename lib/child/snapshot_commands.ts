/**
 * The commands that save and load a queue: checkpointQueue and loadQueue,
 * with the original's `filename` keyword argument. Files are JSON
 * snapshots (never pickle), in the child's command-file folder
 * (`<log_directory>/queue/`).
 *
 * @module
 */

import { parseSnapshot, restoreItems, snapshotText } from "../durability/snapshot.ts";
import { checkTime } from "../queue/sorted_queue.ts";
import { readCommandFile, writeCommandFile } from "./command_files.ts";
import type { CommandSpec, EngineContext } from "./commands.ts";

/**
 * Whether a file's text is a Python pickle: the original's checkpoint
 * format (protocol 0 starts with an opcode such as `(dp0`, later ones with
 * byte 0x80).
 */
function isPickle(text: string): boolean {
  return text.startsWith("\u0080") || text.startsWith("\ufffd") || /^\((?:dp|lp)\d/.test(text);
}

/** checkpointQueue and loadQueue. */
export const SNAPSHOT_COMMANDS: readonly CommandSpec<EngineContext>[] = [
  {
    name: "checkpointQueue",
    description:
      "writes the queue to 'filename' as a JSON snapshot (in log_directory/queue/); with 'sleep', every sleep s",
    required: ["filename"],
    optional: ["sleep"],
    types: { filename: "text" },
    async run(ctx, kwargs, self) {
      // The command's own item is running, so it is not in the queue.
      const items = ctx.queue.items().filter((item) => item !== self);
      const path = await writeCommandFile(
        ctx.commandFolder,
        String(kwargs.filename),
        snapshotText(ctx.child, 0, items, [], ctx.now()),
      );
      ctx.log.event("info", "command", { command: "checkpointQueue", path, items: items.length });
      return `${items.length} item(s) written to ${path}`;
    },
  },
  {
    name: "loadQueue",
    description: "adds the items of a checkpointQueue file (in log_directory/queue/) to the queue",
    required: ["filename"],
    optional: ["sleep"],
    types: { filename: "text" },
    async run(ctx, kwargs) {
      const name = String(kwargs.filename);
      const text = await readCommandFile(ctx.commandFolder, name);
      if (isPickle(text)) {
        throw new Error(
          `${name} is a Python pickle (the original lvalertMP's checkpoint format); ` +
            "lvalertMP loads only its own JSON checkpoints (written by checkpointQueue)",
        );
      }
      const items = restoreItems(parseSnapshot(text, name), ctx.registry, name);
      // Every item's times are checked before any goes in: all or nothing.
      for (const item of items) checkTime(item);
      for (const item of items) ctx.queue.insert(item);
      ctx.log.event("info", "command", { command: "loadQueue", file: name, items: items.length });
      return `${items.length} item(s) loaded from ${name}`;
    },
  },
];
