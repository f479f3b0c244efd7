/**
 * `lvalert_listenMP ctl`: send a command to a running listener through its
 * control socket and print each child's answer.
 *
 * @module
 */

import { join } from "node:path";
import { isJsonObject, type JsonObject } from "../core/alert.ts";
import { checkCommand } from "../child/commands.ts";
import { knownCommands } from "./known_commands.ts";
import { controlRequest } from "../listener/control.ts";
import { parseFlags } from "../config/cli.ts";
import { failed, type Outcome } from "../core/outcome.ts";
import { defaultStateDir } from "../durability/state_dir.ts";
import { parseCommandWords } from "./command.ts";

export const CTL_USAGE =
  `Usage: lvalert_listenMP ctl [--state-dir DIR | -c CONFIG] [--child NAME] CMD [key,val ...]
       lvalert_listenMP ctl [--state-dir DIR | -c CONFIG] --status
       lvalert_listenMP ctl [--state-dir DIR | -c CONFIG] [--child NAME] --acknowledge
       lvalert_listenMP ctl [--state-dir DIR | -c CONFIG] --ack-gap [NODE]

Sends CMD (a command, as with \`command\`) to a running listener through its
control socket (DIR/control.sock, mode 0600) and prints each child's answer.

  --state-dir DIR     the listener's state folder
  -c, --config-file   or its config (the default state folder is derived from it)
  --child NAME        only this child (default: every child)
  --status            print the listener's status as JSON
  --acknowledge       clear what status reports until an operator has seen it:
                      possibly lost alerts, quarantined alerts and (without
                      --child) catch-up gaps
  --ack-gap [NODE]    acknowledge the catch-up gap reported on NODE (default:
                      every node), which \`status\` warns about until then
  --timeout S         seconds to wait for the answer (default 60)
  -h, --help          this text`;

/** Where a listener's control socket is, from --state-dir or -c. */
export function socketPath(
  stateDir: string | undefined,
  config: string | undefined,
): string | undefined {
  if (stateDir) return join(stateDir, "control.sock");
  if (config) return join(defaultStateDir(config), "control.sock");
  return undefined;
}

/** What `ctl` and `status` share: the socket flags. */
export const SOCKET_OPTIONS = {
  "state-dir": { type: "string" },
  "config-file": { type: "string", short: "c" },
  timeout: { type: "string" },
  help: { type: "boolean", short: "h" },
} as const;

export async function ctl(argv: string[]): Promise<Outcome> {
  const flags = parseFlags(
    argv,
    {
      ...SOCKET_OPTIONS,
      child: { type: "string" },
      status: { type: "boolean" },
      acknowledge: { type: "boolean" },
      "ack-gap": { type: "boolean" },
    },
    true,
  );
  if (!flags.ok) return failed("usage", flags.message);
  const { values, positionals } = flags;
  if (values.help) {
    console.log(CTL_USAGE);
    return { ok: true };
  }
  const path = socketPath(values["state-dir"], values["config-file"]);
  if (!path) return failed("usage", "give --state-dir DIR or -c CONFIG");
  const timeout = Number(values.timeout ?? 60);
  if (values["ack-gap"]) return await ackGap(path, positionals, timeout);
  let request;
  if (values.status) request = { op: "status" as const };
  else if (values.acknowledge) {
    request = { op: "acknowledge" as const, ...(values.child ? { child: values.child } : {}) };
  } else {
    const parsed = parseCommandWords(positionals);
    if (typeof parsed === "string") return failed("usage", parsed);
    const known = new Map([...await knownCommands()].map(([name, k]) => [name, k.spec]));
    if (known.has(parsed.command)) {
      const check = checkCommand(known, parsed.command, parsed.kwargs);
      if (!check.ok) return failed("usage", check.reason);
    }
    request = {
      op: "command" as const,
      name: parsed.command,
      kwargs: parsed.kwargs,
      ...(values.child ? { child: values.child } : {}),
    };
  }
  let reply: JsonObject;
  try {
    reply = await controlRequest(path, request, timeout);
  } catch (error) {
    return failed("unavailable", `no listener answers on ${path}: ${(error as Error).message}`);
  }
  if (values.status) {
    console.log(JSON.stringify(reply.status ?? reply, null, 2));
    return reply.ok === true ? { ok: true } : failed("runtime", String(reply.error));
  }
  if (values.acknowledge) {
    console.log(`acknowledged ${reply.cleared ?? 0} report(s)`);
    return reply.ok === true ? { ok: true } : failed("runtime", String(reply.error));
  }
  if (!Array.isArray(reply.results)) return failed("runtime", String(reply.error ?? "bad reply"));
  for (const r of reply.results) {
    if (!isJsonObject(r)) continue;
    const text = r.ok ? String(r.output ?? "") : `error: ${r.error}`;
    console.log(`[${r.child}] ${text.includes("\n") ? "\n" + text : text}`);
  }
  return reply.ok === true
    ? { ok: true }
    : failed("runtime", "a child refused or failed the command");
}

/** `ctl --ack-gap [NODE]`: the gap is known; `status` stops warning about it. */
async function ackGap(path: string, positionals: string[], timeout: number): Promise<Outcome> {
  if (positionals.length > 1) return failed("usage", "--ack-gap takes at most one node");
  const node = positionals[0];
  let reply: JsonObject;
  try {
    reply = await controlRequest(path, { op: "ack_gap", ...(node ? { node } : {}) }, timeout);
  } catch (error) {
    return failed("unavailable", `no listener answers on ${path}: ${(error as Error).message}`);
  }
  if (reply.ok !== true || !Array.isArray(reply.acknowledged)) {
    return failed("runtime", String(reply.error ?? "bad reply"));
  }
  const nodes = reply.acknowledged.map(String);
  console.log(
    nodes.length > 0
      ? `acknowledged the catch-up gap on ${nodes.join(", ")}`
      : `no catch-up gap${node ? ` on ${node}` : ""} to acknowledge`,
  );
  return { ok: true };
}
