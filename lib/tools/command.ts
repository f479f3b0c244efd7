/**
 * `lvalert_listenMP command`: send a command to running listeners through
 * a node they listen to, in lvalert_commandMP's wire format.
 *
 * @module
 */

import type { JsonObject } from "../core/alert.ts";
import { BUILTIN_COMMANDS, checkCommand } from "../child/commands.ts";
import { SNAPSHOT_COMMANDS } from "../child/snapshot_commands.ts";
import { describeKwargs, knownCommands } from "./known_commands.ts";
import { parseFlags } from "../config/cli.ts";
import { failed, type Outcome } from "../core/outcome.ts";
import {
  CONNECTION_OPTIONS,
  connectionArgs,
  connectionHelp,
  publishWithRetries,
} from "./session.ts";

export const COMMAND_USAGE = `Usage: lvalert_listenMP command --node NODE [key,val ...] CMD

Sends {"uid": "command", "alert_type": CMD, "object": {key: val, ...}} to
every listener child on NODE, as lvalert_commandMP. Values that read as
numbers are sent as numbers.

  -n, --node NODE          a node the child listens to (required)
      --show-commands      list the known commands (built in, and the handlers')
                           with their keyword arguments
      --show-kwargs CMD    show CMD's required, optional and forbidden keyword arguments
      --unchecked          send a command this tool does not know
  -m, --max-attempts N     tries before giving up (default 10)
${connectionHelp("sender")}

Built-in commands: ${
  [...BUILTIN_COMMANDS, ...SNAPSHOT_COMMANDS].map((c) => c.name).join(", ")
}; a handler may add its own (--show-commands lists them).`;

/** Reads `key,val` pairs and the one command name from positionals. */
export function parseCommandWords(
  words: string[],
): { command: string; kwargs: JsonObject } | string {
  let command: string | undefined;
  const kwargs: JsonObject = {};
  for (const word of words) {
    const comma = word.indexOf(",");
    if (comma < 0) {
      if (command !== undefined) {
        return `Give exactly one command (got "${command}" and "${word}")`;
      }
      command = word;
      continue;
    }
    const key = word.slice(0, comma);
    const raw = word.slice(comma + 1);
    const number = Number(raw);
    kwargs[key] = raw.trim() !== "" && Number.isFinite(number) ? number : raw;
  }
  return command === undefined ? "Give a command, such as printMessage" : { command, kwargs };
}

export async function command(argv: string[]): Promise<Outcome> {
  const flags = parseFlags(
    argv,
    {
      ...CONNECTION_OPTIONS,
      server: { type: "string", short: "s" },
      node: { type: "string", short: "n" },
      "max-attempts": { type: "string", short: "m" },
      max_attempts: { type: "string" },
      "show-commands": { type: "boolean" },
      "show-kwargs": { type: "string" },
      unchecked: { type: "boolean" },
      library: { type: "string", short: "l" },
      debug: { type: "boolean", short: "g" },
    },
    true,
  );
  if (!flags.ok) return failed("usage", flags.message);
  const { values, positionals } = flags;
  if (values.help) {
    console.log(COMMAND_USAGE);
    return { ok: true };
  }
  const known = await knownCommands();
  if (values["show-commands"]) {
    console.log(`known commands are :\n${[...known.values()].map(describeKwargs).join("\n")}`);
    return { ok: true };
  }
  if (values["show-kwargs"] !== undefined) {
    const found = known.get(values["show-kwargs"]);
    if (!found) return failed("usage", `Command=${values["show-kwargs"]} is not known`);
    console.log(describeKwargs(found));
    return { ok: true };
  }
  const parsed = parseCommandWords(positionals);
  if (typeof parsed === "string") return failed("usage", parsed);
  // A command is checked before it is sent, so a typo fails here, as the original's client did.
  if (!values.unchecked) {
    if (!known.has(parsed.command)) {
      return failed(
        "usage",
        `Command=${parsed.command} is not known (see --show-commands; --unchecked sends it anyway)`,
      );
    }
    const specs = new Map([...known].map(([name, k]) => [name, k.spec]));
    const check = checkCommand(specs, parsed.command, parsed.kwargs);
    if (!check.ok) return failed("usage", check.reason);
  }
  const conn = connectionArgs(values, "sender");
  if (typeof conn === "string") return failed("usage", conn);
  if (!values.node) return failed("usage", "-n/--node is required");
  const attempts = Number(values["max-attempts"] ?? values.max_attempts ?? 10);
  if (!Number.isInteger(attempts) || attempts < 1) {
    return failed("usage", "-m/--max-attempts must be a whole number >= 1");
  }
  const text = JSON.stringify({
    uid: "command",
    alert_type: parsed.command,
    object: parsed.kwargs,
  });
  const result = await publishWithRetries(conn, values.node, text, attempts);
  if (result.ok && conn.verbose) console.log(`sent ${text} to ${values.node}`);
  return result;
}
