/**
 * The commands a listener's children know: the built-in ones, and those
 * the handlers in `workers/handlers/` export (as approval_processor's
 * `resetThrottle`), so the `command` and `ctl` tools can check a command
 * before they send it.
 *
 * @module
 */

import { fileURLToPath } from "node:url";
import { BUILTIN_COMMANDS, type CommandSpec } from "../child/commands.ts";
import { SNAPSHOT_COMMANDS } from "../child/snapshot_commands.ts";
import { HANDLERS_DIR } from "../config/config.ts";

/** A command, and where it comes from (`built-in` or a handler's name). */
export interface KnownCommand {
  spec: CommandSpec<never>;
  from: string;
}

/** Every command known: the built-in ones first, then each handler's. */
export async function knownCommands(): Promise<Map<string, KnownCommand>> {
  const known = new Map<string, KnownCommand>();
  for (const spec of [...BUILTIN_COMMANDS, ...SNAPSHOT_COMMANDS]) {
    known.set(spec.name, { spec: spec as CommandSpec<never>, from: "built-in" });
  }
  const names: string[] = [];
  try {
    for await (const entry of Deno.readDir(fileURLToPath(HANDLERS_DIR))) {
      if (entry.isFile && entry.name.endsWith(".ts")) names.push(entry.name);
    }
  } catch {
    return known;
  }
  for (const name of names.sort()) {
    let mod: { commands?: unknown };
    try {
      mod = await import(new URL(name, HANDLERS_DIR).href);
    } catch {
      continue;
    }
    if (!Array.isArray(mod.commands)) continue;
    for (const spec of mod.commands as CommandSpec<never>[]) {
      if (typeof spec?.name === "string" && !known.has(spec.name)) {
        known.set(spec.name, { spec, from: name.replace(/\.ts$/, "") });
      }
    }
  }
  return known;
}

/** One command's keyword arguments, as `--show-kwargs` prints them. */
export function describeKwargs({ spec, from }: KnownCommand): string {
  const list = (names: readonly string[] | undefined) =>
    names && names.length > 0 ? names.map((n) => `\t${n}`).join("\n") : "\t(none)";
  return `cmd=${spec.name} (${from})\n  ${spec.description}\n  requires\n${
    list(spec.required)
  }\n  optional\n${list(spec.optional)}\n  forbids\n${list(spec.forbidden)}`;
}
