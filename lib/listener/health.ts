/**
 * The health verdict on a status document: one judge for every view that
 * says whether the listener is well (the `status` Nagios plugin and the
 * HTTP `/healthz` endpoint), so both apply the same logic and thresholds.
 *
 * @module
 */

import { isJsonObject, type JsonObject } from "../core/alert.ts";

/** The thresholds a verdict applies. */
export interface HealthThresholds {
  /** Seconds of XMPP outage before CRITICAL. @default {120} */
  downCrit: number;
  /** Seconds an alert may wait in the journal before WARNING. @default {30} */
  lagWarn: number;
}

/** The thresholds `status` and `/healthz` use unless told otherwise. */
export const DEFAULT_THRESHOLDS: Readonly<HealthThresholds> = { downCrit: 120, lagWarn: 30 };

/** Nagios labels, by exit code. */
export const HEALTH_LABELS = ["OK", "WARNING", "CRITICAL", "UNKNOWN"] as const;

/** One thing wrong, and how badly. */
export interface HealthProblem {
  level: "critical" | "warning";
  text: string;
}

/** What {@linkcode assess} finds. */
export interface Assessment {
  code: 0 | 1 | 2;
  label: "OK" | "WARNING" | "CRITICAL";
  /** Critical problems first. */
  problems: HealthProblem[];
  /** What is well, said when nothing is wrong (`2 children, xmpp online, 4/4 nodes`). */
  summary: string;
  /** Nagios perfdata items. */
  perf: string[];
}

/** The verdict on a status document, as the `status` plugin prints it. */
export interface Verdict {
  code: 0 | 1 | 2 | 3;
  line: string;
}

function perfName(name: string): string {
  return `'${name.replace(/['=\s]+/g, "_")}'`;
}

function judgeChild(c: JsonObject, lagWarn: number, crit: string[], warn: string[]): string[] {
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
    warn.push(`child ${name} set ${quarantined} alert(s) aside (poison.jsonl; ctl --acknowledge)`);
  }
  if (losses > 0) {
    crit.push(`child ${name} may have lost alerts (${losses} report(s); ctl --acknowledge)`);
  }
  if (queue > warnThr) warn.push(`child ${name} queue ${queue} > ${warnThr}`);
  const lag = Number(c.oldestInFlight ?? 0);
  if (lag > lagWarn) warn.push(`child ${name} journal lag ${lag.toFixed(1)} s`);
  return [
    `${perfName(`queue_${name}`)}=${queue};${Number.isFinite(warnThr) ? warnThr : ""};;0`,
    `${perfName(`inflight_${name}`)}=${Number(c.inFlight ?? 0)};;;0`,
  ];
}

function judgeSession(
  xmpp: JsonObject,
  downCrit: number,
  now: number,
  out: { crit: string[]; warn: string[]; perf: string[] },
): string {
  const configured = Array.isArray(xmpp.configured) ? xmpp.configured.map(String) : [];
  const subscribed = new Set(Array.isArray(xmpp.subscribed) ? xmpp.subscribed.map(String) : []);
  const extra = Array.isArray(xmpp.extra) ? xmpp.extra.map(String) : [];
  let where: string;
  if (xmpp.online === true) {
    const missing = configured.filter((n) => !subscribed.has(n));
    if (missing.length > 0) out.crit.push(`not subscribed to ${missing.join(", ")}`);
    if (extra.length > 0) out.crit.push(`subscribed to unconfigured ${extra.join(", ")}`);
    where = `, xmpp online, ${subscribed.size}/${configured.length} nodes`;
  } else {
    const since = typeof xmpp.offline_since === "number" ? xmpp.offline_since : now;
    const down = now - since;
    (down > downCrit ? out.crit : out.warn).push(`xmpp down ${down.toFixed(0)} s`);
    where = ", xmpp down";
  }
  const gaps = Array.isArray(xmpp.gaps) ? xmpp.gaps.filter(isJsonObject) : [];
  for (const gap of gaps) {
    out.warn.push(
      `catch-up gap on ${gap.node} (${
        gap.reason === "ceiling" ? "more than --catch-up-max missed" : "last item seen is gone"
      }; ctl --ack-gap)`,
    );
  }
  out.perf.push(`'subscribed'=${subscribed.size};;;0;${configured.length}`);
  return where;
}

/**
 * Judges a listener's status document: CRITICAL when a child is dead or
 * given up, its journal fails or may have lost alerts, the session has
 * been down past `downCrit` or its nodes differ from the configured ones;
 * WARNING for a queue over its `warnThr`, a journal lag past `lagWarn`, a
 * shorter outage, a child restarting, an alert set aside or a catch-up gap.
 */
export function assess(
  status: JsonObject,
  thresholds: HealthThresholds = DEFAULT_THRESHOLDS,
  now: number = Date.now() / 1000,
): Assessment {
  const out = { crit: [] as string[], warn: [] as string[], perf: [] as string[] };
  const children = Array.isArray(status.children) ? status.children.filter(isJsonObject) : [];
  for (const c of children) out.perf.push(...judgeChild(c, thresholds.lagWarn, out.crit, out.warn));
  let summary = `${children.length} children`;
  const xmpp = isJsonObject(status.xmpp) ? status.xmpp : undefined;
  summary += xmpp ? judgeSession(xmpp, thresholds.downCrit, now, out) : ", replay source";
  const code = out.crit.length > 0 ? 2 : out.warn.length > 0 ? 1 : 0;
  return {
    code,
    label: HEALTH_LABELS[code],
    problems: [
      ...out.crit.map((text) => ({ level: "critical" as const, text })),
      ...out.warn.map((text) => ({ level: "warning" as const, text })),
    ],
    summary,
    perf: out.perf,
  };
}

/** Judges a listener's status against the thresholds, as one Nagios line. */
export function judge(
  status: JsonObject,
  downCrit: number = DEFAULT_THRESHOLDS.downCrit,
  lagWarn: number = DEFAULT_THRESHOLDS.lagWarn,
  now: number = Date.now() / 1000,
): Verdict {
  const a = assess(status, { downCrit, lagWarn }, now);
  const text = a.problems.map((p) => p.text).join("; ") || a.summary;
  return {
    code: a.code,
    line: `LVALERTMP ${a.label} - ${text} | ${a.perf.join(" ")}`.trimEnd(),
  };
}
