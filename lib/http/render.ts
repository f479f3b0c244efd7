/**
 * The status page's sections as HTML, rendered on the server from a
 * {@linkcode Snapshot}: the same text serves the first page load (readable
 * without JavaScript) and every live update (the page swaps sections in).
 * Every value from outside (uids, node and task names, errors) is escaped.
 *
 * @module
 */

import type { AlertRecord, ChildView, Snapshot } from "./live.ts";
import { restartsOf } from "./metrics.ts";

/** The time axis' span, in seconds. */
export const AXIS_SECONDS = 600;

/** Text for HTML content and attribute values. */
export function esc(value: unknown): string {
  return String(value ?? "").replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** UTC time of day, `HH:MM:SS`. */
export function clock(epoch: number): string {
  return new Date(epoch * 1000).toISOString().slice(11, 19);
}

/** A duration for people: `42 s`, `3 min`, `2 h 5 min`, `3 d 4 h`. */
export function span(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  if (s < 120) return `${s} s`;
  if (s < 7200) return `${Math.floor(s / 60)} min`;
  if (s < 172800) return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
  return `${Math.floor(s / 86400)} d ${Math.floor((s % 86400) / 3600)} h`;
}

const CHILD_STATE: Record<string, [string, string]> = {
  ready: ["alive", "ok"],
  starting: ["starting", "warn"],
  restarting: ["restarting", "warn"],
  stopping: ["stopping", "warn"],
  stopped: ["stopped", "warn"],
  new: ["new", "warn"],
  dead: ["dead", "crit"],
  given_up: ["given up", "crit"],
};

function badge(text: string, kind: string): string {
  return `<span class="badge ${kind}">${esc(text)}</span>`;
}

/** The verdict, the session and the uptime. */
export function renderSummary(s: Snapshot): string {
  const h = s.health;
  const kind = ["ok", "warn", "crit"][h.code]!;
  const rows = [
    `<div><dt>status</dt><dd id="health" data-code="${h.code}">${badge(h.label, kind)}</dd></div>`,
    `<div><dt>up</dt><dd>${span(s.now - s.started)} (since ${
      clock(s.started)
    } UTC, pid ${s.pid})</dd></div>`,
  ];
  const x = s.session;
  if (x) {
    const missing = x.configured.filter((n) => !x.subscribed.includes(n));
    rows.push(
      `<div><dt>XMPP session</dt><dd id="session" data-online="${x.online}">${
        badge(x.online ? "up" : "down", x.online ? "ok" : "crit")
      } for ${span(s.now - x.since)} (since ${clock(x.since)} UTC)</dd></div>`,
      `<div><dt>reconnects</dt><dd id="reconnects">${x.reconnects}</dd></div>`,
      `<div><dt>nodes</dt><dd id="nodes">${x.subscribed.length} of ${x.configured.length} subscribed${
        missing.length > 0 ? `; missing: ${esc(missing.join(", "))}` : ""
      }</dd></div>`,
    );
  } else rows.push(`<div><dt>source</dt><dd id="session">replay file (no XMPP session)</dd></div>`);
  return `<dl class="summary">${rows.join("")}</dl>`;
}

function childRow(c: ChildView, now: number): string {
  const [state, kind] = CHILD_STATE[c.state] ?? [c.state, "warn"];
  const thr = Number.isFinite(c.warnThr) ? c.warnThr : 0;
  const over = thr > 0 && c.queue > thr;
  const last = c.lastAlert
    ? `${esc(c.lastAlert.uid)} <small>${esc(c.lastAlert.alert_type)}, ${
      span(now - c.lastAlert.at)
    } ago</small>`
    : "<small>none yet</small>";
  return `<tr data-child="${esc(c.child)}"><th scope="row">${esc(c.child)}</th>` +
    `<td>${badge(state, kind)}</td><td class="num">${restartsOf(c)}</td>` +
    `<td class="num"><span class="queue${over ? " over" : ""}">${c.queue}</span> / ${thr}` +
    ` <meter min="0" max="${thr || 1}" high="${(thr || 1) * 0.8}" value="${
      Math.min(c.queue, thr || 1)
    }">${c.queue}</meter></td>` +
    `<td class="num">${c.inFlight}</td><td class="num">${c.oldestInFlight.toFixed(1)} s</td>` +
    `<td>${last}</td></tr>`;
}

/** One row per child: state, restarts, queue against warnThr, journal lag, last alert. */
export function renderChildren(s: Snapshot): string {
  const rows = s.children.map((c) => childRow(c, s.now)).join("");
  return `<table class="children"><thead><tr><th>child</th><th>state</th><th>restarts</th>` +
    `<th>queue / warnThr</th><th>in flight</th><th>journal lag</th><th>last alert</th></tr>` +
    `</thead><tbody>${rows}</tbody></table>`;
}

const LEFT = 170;
const RIGHT = 960;
const ROW = 30;

/** The next due tasks of every child on a ten-minute axis; each mark names its task. */
export function renderTimeline(s: Snapshot): string {
  const width = RIGHT - LEFT;
  const height = 30 + ROW * Math.max(1, s.children.length);
  const parts: string[] = [];
  for (let m = 0; m <= AXIS_SECONDS / 60; m++) {
    const x = LEFT + (width * m * 60) / AXIS_SECONDS;
    parts.push(
      `<line class="tick" x1="${x}" x2="${x}" y1="18" y2="${height}"/>`,
      `<text class="ticklabel" x="${x}" y="12">${m === 0 ? "now" : `+${m} min`}</text>`,
    );
  }
  s.children.forEach((c, i) => {
    const y = 30 + ROW * i + ROW / 2;
    parts.push(`<text class="rowlabel" x="0" y="${y + 4}">${esc(c.child)}</text>`);
    parts.push(`<line class="row" x1="${LEFT}" x2="${RIGHT}" y1="${y}" y2="${y}"/>`);
    let later = 0;
    for (const t of c.due) {
      const ahead = t.due - s.now;
      if (ahead > AXIS_SECONDS) {
        later++;
        continue;
      }
      const x = LEFT + (width * Math.max(0, ahead)) / AXIS_SECONDS;
      const what = `${c.child} · ${t.graceid ?? "-"} · ${t.item} · ${t.task} · due ${
        clock(t.due)
      } UTC`;
      parts.push(
        `<circle class="mark${ahead < 0 ? " overdue" : ""}" cx="${x.toFixed(1)}" cy="${y}" r="6"` +
          ` data-child="${esc(c.child)}" data-graceid="${esc(t.graceid ?? "-")}"` +
          ` data-item="${esc(t.item)}" data-task="${esc(t.task)}" data-due="${t.due}">` +
          `<title>${esc(what)}</title></circle>`,
      );
    }
    if (later > 0) {
      parts.push(`<text class="later" x="${RIGHT}" y="${y - 8}">${later} later</text>`);
    }
  });
  return `<svg class="timeline" viewBox="0 0 1000 ${height}" role="img" ` +
    `aria-label="next due tasks, next ${AXIS_SECONDS / 60} minutes">${parts.join("")}</svg>`;
}

const OUTCOME_KIND: Record<string, string> = {
  routed: "ok",
  duplicate: "info",
  ignored: "info",
  deferred: "warn",
  rejected: "crit",
  unrouted: "warn",
};

function alertRow(a: AlertRecord): string {
  const e = a.event;
  const latency = a.latency === null
    ? (e.outcome === "routed" ? "…" : "")
    : `${(a.latency * 1000).toFixed(1)} ms`;
  const where = e.outcome === "routed" ? `→ ${e.child}` : e.reason ?? "";
  return `<tr><td>${clock(e.t0)}</td><td>${esc(e.node ?? "-")}</td><td>${esc(e.uid ?? "-")}</td>` +
    `<td>${esc(e.alert_type ?? "")}</td><td>${badge(e.outcome, OUTCOME_KIND[e.outcome] ?? "")}` +
    ` <small>${esc(where.slice(0, 120))}</small></td><td class="num">${latency}</td></tr>`;
}

/** The last alerts, newest first: node, uid, type, where they went, routing latency. */
export function renderAlerts(s: Snapshot): string {
  const rows = s.alerts.map(alertRow).join("");
  return `<table class="alerts"><thead><tr><th>arrived (UTC)</th><th>node</th><th>uid</th>` +
    `<th>alert_type</th><th>outcome</th><th>routing latency</th></tr></thead>` +
    `<tbody>${rows || '<tr><td colspan="6"><small>no alert yet</small></td></tr>'}</tbody></table>`;
}

/** Open warnings (the `status` verdict's) and recent task failures. */
export function renderProblems(s: Snapshot): string {
  const warnings = s.health.problems.map((p) =>
    `<li class="${p.level === "critical" ? "crit" : "warn"}">${esc(p.text)}</li>`
  );
  const failures = s.failures.map((f) =>
    `<li><b>${esc(f.child)}</b> ${clock(f.at)} UTC: task ${esc(f.task)} of ${esc(f.item)}` +
    ` (${esc(f.graceid ?? "-")}) failed: <code>${esc(f.error)}</code></li>`
  );
  return `<h3>open warnings</h3><ul class="warnings">${
    warnings.join("") || '<li class="none">none</li>'
  }</ul><h3>recent task failures</h3><ul class="failures">${
    failures.join("") || '<li class="none">none</li>'
  }</ul>`;
}

/** Every section by its element id. */
export function renderSections(s: Snapshot): Record<string, string> {
  return {
    summary: renderSummary(s),
    children: renderChildren(s),
    timeline: renderTimeline(s),
    alerts: renderAlerts(s),
    problems: renderProblems(s),
  };
}
