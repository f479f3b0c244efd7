/**
 * `lvalert_listenMP status`: a Nagios plugin. Reads the running listener's
 * state through its control socket and prints one line
 * `LVALERTMP OK|WARNING|CRITICAL|UNKNOWN - ... | perfdata`, exiting
 * 0/1/2/3.
 *
 * @module
 */

import { isJsonObject, type JsonObject } from "../core/alert.ts";
import { DEFAULT_THRESHOLDS, judge } from "../listener/health.ts";
import { controlRequest } from "../listener/control.ts";
import { parseFlags } from "../config/cli.ts";
import { failed, type Outcome } from "../core/outcome.ts";
import { SOCKET_OPTIONS, socketPath } from "./ctl.ts";

export const STATUS_USAGE =
  `Usage: lvalert_listenMP status [--state-dir DIR | -c CONFIG] [thresholds]

A Nagios plugin: exit 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN, with one line
of text and perfdata.

CRITICAL: a child is dead or given up; a child's journal writes fail; a child
may have lost alerts (until \`ctl --acknowledge\`); the XMPP session has been
down longer than --down-crit; the subscribed nodes differ from the configured
ones.
WARNING: a queue is longer than its warnThr; an alert has waited in the
journal longer than --lag-warn; the XMPP session is down (shorter); a
catch-up could not reach the last item seen on a node (alerts may be lost)
until the next clean catch-up there or \`ctl --ack-gap\`.

  --state-dir DIR     the listener's state folder
  -c, --config-file   or its config (the default state folder is derived from it)
  --down-crit S       seconds of XMPP outage before CRITICAL (default 120)
  --lag-warn S        seconds an alert may wait to be applied (default 30)
  --timeout S         seconds to wait for the listener (default 10)
  -h, --help          this text`;

export { judge, type Verdict } from "../listener/health.ts";

export async function status(argv: string[]): Promise<Outcome> {
  const parsed = parseFlags(
    argv,
    {
      ...SOCKET_OPTIONS,
      "down-crit": { type: "string" },
      "lag-warn": { type: "string" },
    },
  );
  if (!parsed.ok) {
    console.log(`LVALERTMP UNKNOWN - ${parsed.message}`);
    return { ok: true, code: 3 };
  }
  const { values } = parsed;
  if (values.help) {
    console.log(STATUS_USAGE);
    return { ok: true };
  }
  const path = socketPath(values["state-dir"], values["config-file"]);
  if (!path) return failed("usage", "give --state-dir DIR or -c CONFIG");
  let reply: JsonObject;
  try {
    reply = await controlRequest(path, { op: "status" }, Number(values.timeout ?? 10));
  } catch (error) {
    console.log(`LVALERTMP UNKNOWN - no listener answers on ${path}: ${(error as Error).message}`);
    return { ok: true, code: 3 };
  }
  if (!isJsonObject(reply.status)) {
    console.log(`LVALERTMP UNKNOWN - bad reply: ${JSON.stringify(reply).slice(0, 200)}`);
    return { ok: true, code: 3 };
  }
  const verdict = judge(
    reply.status,
    Number(values["down-crit"] ?? DEFAULT_THRESHOLDS.downCrit),
    Number(values["lag-warn"] ?? DEFAULT_THRESHOLDS.lagWarn),
  );
  console.log(verdict.line);
  return { ok: true, code: verdict.code };
}
