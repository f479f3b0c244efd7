/**
 * The status page in real headless Chromium (Debian's `chromium`, driven
 * by puppeteer-core), on a listener replaying a stream: it updates live
 * (the alert list grows without a reload), shows the children and their
 * queues as the metrics count them, marks every due task of the next ten
 * minutes on the time axis with its details on hover, lists warnings and
 * failures, and reads the same without JavaScript. It takes a screenshot
 * into a temporary folder; with LVALERT_SCREENSHOT=1 it writes the README's
 * (`docs/status-page.png`) instead.
 *
 * `tests/setup.ts` installs Chromium when missing; LVALERT_SKIP_BROWSER=1
 * skips this test (counted as ignored). Without Chromium and without that
 * variable it fails.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import puppeteer, { type Browser, type Page } from "puppeteer-core";
import { ROOT, tempDir } from "./helpers.ts";
import { get, type Line, startHttpListener } from "./http_helpers.ts";

const CHROMIUM = Deno.env.get("LVALERT_CHROMIUM") ?? "/usr/bin/chromium";
const SKIP = Deno.env.get("LVALERT_SKIP_BROWSER") === "1";
/** The README's picture is rewritten only when asked for. */
const UPDATE_SCREENSHOT = Deno.env.get("LVALERT_SCREENSHOT") === "1";

async function launch(): Promise<Browser & AsyncDisposable> {
  try {
    await Deno.stat(CHROMIUM);
  } catch {
    throw new Error(
      `Chromium not found at ${CHROMIUM}: run tests/setup.ts (it installs Debian's chromium), ` +
        "set LVALERT_CHROMIUM, or skip this test with LVALERT_SKIP_BROWSER=1",
    );
  }
  const profile = await Deno.makeTempDir({ prefix: "lvalertmp-chromium-" });
  const browser = await puppeteer.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      `--user-data-dir=${profile}`,
    ],
  });
  return Object.assign(browser, {
    async [Symbol.asyncDispose]() {
      await browser.close();
      await Deno.remove(profile, { recursive: true }).catch(() => {});
    },
  });
}

/** 16 alerts, one every 0.4 s from t = 1 s: beta ends over its warnThr, one task fails. */
function stream(): Line[] {
  const lines: Line[] = [];
  for (let i = 0; i < 16; i++) {
    const beta = i % 2 === 1 || i > 10;
    const uid = i === 4 ? "fail-S4" : `S26112${i.toString().padStart(2, "0")}a`;
    lines.push({
      node: beta ? "b1" : i % 4 === 0 ? "a1" : "a2",
      t: 1 + 0.4 * i,
      id: `item-${i}`,
      payload: { uid, alert_type: i % 3 === 2 ? "label_added" : "new" },
    });
  }
  return lines;
}

const rows = (page: Page) => page.$$eval("#alerts tbody tr", (r) => r.length);

async function checkLive(page: Page, url: string): Promise<void> {
  await page.waitForSelector("#live.on", { timeout: 15_000 });
  const names = await page.$$eval(
    "#children tr[data-child]",
    (r) => r.map((e) => e.getAttribute("data-child")),
  );
  assert.deepEqual(names, ["alpha", "beta"]);
  await page.waitForFunction(`document.querySelectorAll("#alerts tbody tr").length >= 2`, {
    timeout: 15_000,
  });
  // Read together: an update may land between two reads.
  const [before, updates] = await page.$eval("body", (b) => [
    b.ownerDocument.querySelectorAll("#alerts tbody tr").length,
    Number(b.dataset.updates),
  ]);
  await page.waitForFunction(
    `document.querySelectorAll("#alerts tbody tr").length > ${before}`,
    { timeout: 15_000 },
  );
  assert.ok(await page.$eval("body", (b) => Number(b.dataset.updates)) > updates, "live updates");
  // All 16 in, every child's queue settled as the metrics count it.
  await page.waitForFunction(
    `document.querySelectorAll("#alerts tbody tr").length === 16 &&
      document.querySelector("#children tr[data-child=beta] .queue")?.textContent === "10" &&
      document.querySelector("ul.failures li:not(.none)") !== null`,
    { timeout: 20_000 },
  );
  const metrics = (await get(`${url}metrics`)).body;
  for (const child of ["alpha", "beta"]) {
    const shown = await page.$eval(
      `#children tr[data-child=${child}] .queue`,
      (e) => e.textContent,
    );
    assert.match(metrics, new RegExp(`lvalertmp_queue_length\\{child="${child}"\\} ${shown}\\n`));
  }
}

async function checkTimeline(page: Page): Promise<void> {
  // Each pending item has tasks due at +150 s and +330 s (on the axis) and +900 s (later).
  await page.waitForFunction(`document.querySelectorAll("#timeline circle.mark").length === 30`, {
    timeout: 10_000,
  });
  const later = await page.$$eval("#timeline text.later", (t) => t.map((e) => e.textContent));
  assert.deepEqual(later, ["5 later", "10 later"]);
  const mark = await page.$eval(
    "#timeline circle.mark",
    (e) => ["child", "graceid", "item", "task", "due"].map((a) => e.getAttribute(`data-${a}`)),
  );
  assert.ok(mark.every((v) => v), "mark details");
  assert.equal(mark[2], "Followup");
  await page.hover("#timeline circle.mark[data-child=beta]");
  const tip = {
    shown: await page.evaluate(`getComputedStyle(document.getElementById("tip")).display`),
    text: await page.$eval("#tip", (e) => e.textContent ?? ""),
  };
  assert.equal(tip.shown, "block", "the tooltip shows on hover");
  assert.match(tip.text, /child\s+beta\ngraceid\s+S26112\d\da\nitem\s+Followup\ntask\s+note@\d+s/);
  const warnings = await page.$eval("ul.warnings", (e) => e.textContent);
  assert.match(warnings ?? "", /child beta queue 10 > 5/);
  const failures = await page.$eval("ul.failures", (e) => e.textContent);
  assert.match(failures ?? "", /task note@0\.1s of Followup \(fail-S4\) failed: no sky map/);
}

Deno.test({
  name:
    "the status page in headless Chromium updates live, marks the due tasks and reads without JavaScript",
  ignore: SKIP,
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    await using run = await startHttpListener(stream());
    await using browser = await launch();
    const page = await browser.newPage();
    await page.setViewport({ width: 1280, height: 900 });
    await page.goto(run.url);
    await checkLive(page, run.url);
    await checkTimeline(page);
    await using shots = await tempDir();
    const screenshot = UPDATE_SCREENSHOT
      ? join(ROOT, "docs/status-page.png")
      : join(shots.path, "status-page.png");
    await page.screenshot({ path: screenshot as `${string}.png`, fullPage: true });
    const png = await Deno.readFile(screenshot);
    assert.deepEqual([...png.subarray(1, 4)], [0x50, 0x4e, 0x47], "a PNG was written");
    assert.ok(png.length > 20_000, `the screenshot holds a page (${png.length} bytes)`);

    const plain = await browser.newPage();
    await plain.setJavaScriptEnabled(false);
    await plain.goto(run.url);
    assert.equal(
      await plain.$eval("#live", (e) => e.textContent),
      "static page (reload to refresh)",
    );
    assert.equal(await rows(plain), 16, "the alerts, rendered by the server");
    assert.equal(await plain.$$eval("#timeline circle.mark", (m) => m.length), 30);
    const title = await plain.$eval("#timeline circle.mark title", (e) => e.textContent);
    assert.match(
      title ?? "",
      /^(alpha|beta) · \S+ · Followup · note@\d+s · due \d\d:\d\d:\d\d UTC$/,
    );
  },
});
