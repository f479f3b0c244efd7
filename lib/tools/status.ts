/**
 * `lvalert_listenMP status`: a Nagios plugin. Reads the running listener's
 * state through its control socket and prints one line
 * `LVALERTMP OK|WARNING|CRITICAL|UNKNOWN - ... | perfdata`, exiting
 * 0/1/2/3.
 *
 * @module
 */

import { isJsonObject, type JsonObject } from "../core/alert.ts";
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

/** The verdict on a status document. */
export interface Verdict {
  code: 0 | 1 | 2 | 3;
  line: string;
}

const LABELS = ["OK", "WARNING", "CRITICAL", "UNKNOWN"] as const;

function perfName(name: string): string {
  return `'${name.replace(/['=\s]+/g, "_")}'`;
}

/** Judges a listener's status against the thresholds. */
export function judge(
  status: JsonObject,
  downCrit: number,
  lagWarn: number,
  now = Date.now() / 1000,
): Verdict {
  const crit: string[] = [];
  const warn: string[] = [];
  const perf: string[] = [];
  const children = Array.isArray(status.children) ? status.children.filter(isJsonObject) : [];
  for (const c of children) {
    const name = String(c.child);
    const queue = Number(c.queue ?? 0);
    const warnThr = typeof c.warnThr === "number" ? c.warnThr : Infinity;
    if (c.state === "given_up") crit.push(`child ${name} given up`);
    else if (c.state === "dead") crit.push(`child ${name} dead`);
    else if (c.state === "restarting") warn.push(`child ${name} restarting`);
    if (c.journalFailing === true) crit.push(`child ${name} journal writes failing`);
    const losses = Array.isArray(c.losses) ? c.losses.length : 0;
    const quarantined = Number(c.quarantined ?? 0);
    if (quarantined > 0) {
      warn.push(
        `child ${name} set ${quarantined} alert(s) aside (poison.jsonl; ctl --acknowledge)`,
      );
    }
    if (losses > 0) {
      crit.push(`child ${name} may have lost alerts (${losses} report(s); ctl --acknowledge)`);
    }
    if (queue > warnThr) warn.push(`child ${name} queue ${queue} > ${warnThr}`);
    const lag = Number(c.oldestInFlight ?? 0);
    if (lag > lagWarn) warn.push(`child ${name} journal lag ${lag.toFixed(1)} s`);
    perf.push(
      `${perfName(`queue_${name}`)}=${queue};${Number.isFinite(warnThr) ? warnThr : ""};;0`,
    );
    perf.push(`${perfName(`inflight_${name}`)}=${Number(c.inFlight ?? 0)};;;0`);
  }
  const xmpp = isJsonObject(status.xmpp) ? status.xmpp : undefined;
  let where = `${children.length} children`;
  if (xmpp) {
    const configured = Array.isArray(xmpp.configured) ? xmpp.configured.map(String) : [];
    const subscribed = new Set(Array.isArray(xmpp.subscribed) ? xmpp.subscribed.map(String) : []);
    const extra = Array.isArray(xmpp.extra) ? xmpp.extra.map(String) : [];
    if (xmpp.online === true) {
      const missing = configured.filter((n) => !subscribed.has(n));
      if (missing.length > 0) crit.push(`not subscribed to ${missing.join(", ")}`);
      if (extra.length > 0) crit.push(`subscribed to unconfigured ${extra.join(", ")}`);
      where += `, xmpp online, ${subscribed.size}/${configured.length} nodes`;
    } else {
      const since = typeof xmpp.offline_since === "number" ? xmpp.offline_since : now;
      const down = now - since;
      (down > downCrit ? crit : warn).push(`xmpp down ${down.toFixed(0)} s`);
      where += ", xmpp down";
    }
    const gaps = Array.isArray(xmpp.gaps) ? xmpp.gaps.filter(isJsonObject) : [];
    for (const gap of gaps) {
      warn.push(
        `catch-up gap on ${gap.node} (${
          gap.reason === "ceiling" ? "more than --catch-up-max missed" : "last item seen is gone"
        }; ctl --ack-gap)`,
      );
    }
    perf.push(`'subscribed'=${subscribed.size};;;0;${configured.length}`);
  } else where += ", replay source";
  const code = crit.length > 0 ? 2 : warn.length > 0 ? 1 : 0;
  const text = [...crit, ...warn].join("; ") || where;
  return { code, line: `LVALERTMP ${LABELS[code]} - ${text} | ${perf.join(" ")}`.trimEnd() };
}

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
    Number(values["down-crit"] ?? 120),
    Number(values["lag-warn"] ?? 30),
  );
  console.log(verdict.line);
  return { ok: true, code: verdict.code };
}
