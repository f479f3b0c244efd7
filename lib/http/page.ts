/**
 * The status page: one HTML document served by the program itself (no
 * CDN, no build step), its style and a few lines of plain DOM script
 * inline, allowed by their hashes. The sections come rendered from the
 * server; the script only swaps in new ones from the server-sent events
 * and shows a mark's details on hover.
 *
 * @module
 */

import { createHash } from "node:crypto";
import { esc } from "./render.ts";

const STYLE = `
:root { color-scheme: light; --ok: #1a7f37; --warn: #9a6700; --crit: #cf222e; --info: #57606a;
  --line: #d0d7de; font: 14px/1.4 system-ui, sans-serif; }
body { margin: 0 auto; max-width: 1200px; padding: 0 16px 32px; color: #1f2328; }
header { display: flex; align-items: baseline; gap: 16px; border-bottom: 1px solid var(--line); }
header h1 { font-size: 20px; margin: 12px 0; }
#live { color: var(--info); font-size: 12px; }
#live.on::before { content: "● "; color: var(--ok); }
#live.off::before { content: "● "; color: var(--crit); }
h2 { font-size: 16px; margin: 20px 0 6px; }
h3 { font-size: 14px; margin: 10px 0 4px; }
dl.summary { display: flex; flex-wrap: wrap; gap: 4px 28px; margin: 8px 0; }
dl.summary div { display: flex; gap: 6px; }
dt { color: var(--info); } dd { margin: 0; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: 3px 8px; border-bottom: 1px solid var(--line); }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
.badge { display: inline-block; padding: 0 7px; border-radius: 9px; color: #fff; font-size: 12px;
  background: var(--info); }
.badge.ok { background: var(--ok); } .badge.warn { background: var(--warn); }
.badge.crit { background: var(--crit); }
.queue.over { color: var(--crit); font-weight: bold; }
meter { width: 80px; vertical-align: middle; }
small { color: var(--info); }
svg.timeline { width: 100%; height: auto; border: 1px solid var(--line); background: #f6f8fa; }
svg .tick { stroke: var(--line); } svg .row { stroke: #afb8c1; }
svg .ticklabel { font-size: 11px; fill: var(--info); text-anchor: middle; }
svg .rowlabel { font-size: 12px; fill: #1f2328; }
svg .later { font-size: 11px; fill: var(--info); text-anchor: end; }
svg .mark { fill: #0969da; fill-opacity: 0.75; stroke: #fff; cursor: pointer; }
svg .mark.overdue { fill: var(--crit); }
svg .mark:hover { fill-opacity: 1; stroke: #1f2328; }
#tip { position: fixed; display: none; background: #1f2328; color: #fff; padding: 6px 9px;
  border-radius: 6px; font-size: 12px; pointer-events: none; white-space: pre; z-index: 1; }
ul.warnings li.crit { color: var(--crit); } ul.warnings li.warn { color: var(--warn); }
li.none { color: var(--info); list-style: none; }
.columns { display: grid; grid-template-columns: 3fr 2fr; gap: 24px; }
@media (max-width: 900px) { .columns { grid-template-columns: 1fr; } }
`;

/**
 * Swaps in the sections each server-sent event brings, and shows the
 * details of the time axis' mark under the pointer. Plain DOM, no library.
 */
const SCRIPT = `
"use strict";
const live = document.getElementById("live");
const tip = document.getElementById("tip");
let updates = 0;
function connect() {
  const source = new EventSource("events");
  source.addEventListener("open", () => { live.className = "on"; live.textContent = "live"; });
  source.addEventListener("error", () => { live.className = "off"; live.textContent = "reconnecting"; });
  source.addEventListener("update", (message) => {
    const data = JSON.parse(message.data);
    for (const [id, html] of Object.entries(data.sections)) {
      const element = document.getElementById(id);
      if (element) element.innerHTML = html;
    }
    document.title = "lvalertMP " + data.label;
    document.body.dataset.updates = String(++updates);
  });
}
document.addEventListener("mouseover", (event) => {
  const mark = event.target.closest && event.target.closest(".mark");
  if (!mark) { tip.style.display = "none"; return; }
  const d = mark.dataset;
  tip.textContent = "child   " + d.child + "\\ngraceid " + d.graceid + "\\nitem    " + d.item +
    "\\ntask    " + d.task + "\\ndue     " + new Date(Number(d.due) * 1000).toISOString();
  tip.style.display = "block";
});
document.addEventListener("mousemove", (event) => {
  tip.style.left = event.clientX + 12 + "px";
  tip.style.top = event.clientY + 12 + "px";
});
connect();
`;

function sha256(text: string): string {
  return createHash("sha256").update(text).digest("base64");
}

/**
 * The page's Content-Security-Policy: only its own inline style and script
 * (named by their hashes, so a page can be served to many viewers as is),
 * and event streams from the same origin.
 */
export const PAGE_CSP = `default-src 'none'; script-src 'sha256-${sha256(SCRIPT)}'; ` +
  `style-src 'sha256-${sha256(STYLE)}'; connect-src 'self'; img-src 'self' data:; ` +
  "base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/** The whole page, with the sections rendered for now. */
export function renderPage(sections: Record<string, string>, label: string): string {
  const section = (id: string, title: string) =>
    `<section><h2>${title}</h2><div id="${id}">${sections[id] ?? ""}</div></section>`;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<title>lvalertMP ${esc(label)}</title>
<style>${STYLE}</style></head>
<body data-updates="0">
<header><h1>lvalertMP listener</h1><span id="live">static page (reload to refresh)</span></header>
<div id="summary">${sections.summary ?? ""}</div>
${section("children", "children")}
${section("timeline", "next due tasks (next 10 minutes; hover a mark)")}
<div class="columns">
${section("alerts", "last 50 alerts")}
${section("problems", "warnings and failures")}
</div>
<div id="tip" role="tooltip"></div>
<script>${SCRIPT}</script>
</body></html>
`;
}
