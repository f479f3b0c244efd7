/**
 * `lvalert_listenMP command`: send a command to running listeners through
 * a node they listen to, in lvalert_commandMP's wire format.
 *
 * @module
 */

import type { JsonObject } from "../core/alert.ts";
import { BUILTIN_COMMANDS, checkCommand } from "../child/commands.ts";
import { parseFlags } from "../config/cli.ts";
import { failed, type Outcome } from "../core/outcome.ts";
import { CONNECTION_OPTIONS, connectionArgs } from "./session.ts";
import { connectionHelp, publishWithRetries } from "./send.ts";

export const COMMAND_USAGE = `Usage: lvalert_listenMP command --node NODE [key,val ...] CMD

Sends {"uid": "command", "alert_type": CMD, "object": {key: val, ...}} to
every listener child on NODE, as lvalert_commandMP. Values that read as
numbers are sent as numbers.

  -n, --node NODE          a node the child listens to (required)
      --show-commands      list the built-in commands
      --show-kwargs        show CMD's required and forbidden keyword arguments
  -m, --max-attempts N     tries before giving up (default 10)
${connectionHelp("sender")}

Built-in commands: ${BUILTIN_COMMANDS.map((c) => c.name).join(", ")}; a
handler may add its own.`;

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
      "show-kwargs": { type: "boolean" },
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
  const known = new Map(BUILTIN_COMMANDS.map((c) => [c.name, c]));
  if (values["show-commands"]) {
    console.log(
      `known commands are :\n\t${[...known.keys()].sort().join("\n\t")}`,
    );
    return { ok: true };
  }
  const parsed = parseCommandWords(positionals);
  if (typeof parsed === "string") return failed("usage", parsed);
  const spec = known.get(parsed.command);
  if (values["show-kwargs"]) {
    if (!spec) {
      return failed("usage", `"${parsed.command}" is not a built-in command`);
    }
    console.log(
      `cmd=${spec.name}\n  requires\n\t${(spec.required ?? []).join("\n\t")}\n  forbids\n\t${
        (spec.forbidden ?? []).join("\n\t")
      }`,
    );
    return { ok: true };
  }
  // Built-in commands are checked here too, so a typo fails before it is sent.
  if (spec) {
    const check = checkCommand(known, parsed.command, parsed.kwargs);
    if (!check.ok) return failed("usage", check.reason);
  } else if (values.verbose) {
    console.error(
      `note: "${parsed.command}" is not built in; the child's handler must define it`,
    );
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
