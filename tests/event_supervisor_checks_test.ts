/**
 * The original's execution scenarios (EVENT_SUPERVISOR.md §6.3) made
 * deterministic: each check family against the GraceDB test server in a
 * PASS, a FAIL and an ERROR case, asserting the exact annotation and mail.
 * The child runs in process (a real ChildRuntime, scheduler and client).
 */

import assert from "node:assert/strict";
import { ChildRuntime } from "../lib/child/runtime.ts";
import { GraceDbClient } from "../lib/gracedb/mod.ts";
import type { Alert, ChildLog, JsonObject } from "../lib/mod.ts";
import * as handler from "../workers/handlers/event_supervisor.ts";
import { ini, type Sent } from "./event_supervisor_context.ts";
import { general, section, skymapFits } from "./event_supervisor_helpers.ts";
import { GraceDbTestServer } from "./gracedb_server.ts";

interface Run {
  outcomes: JsonObject[];
  mails: Sent[];
  notes: string[];
  logged: JsonObject[];
}

/** Runs `alerts` through a child over `sections` until its queue is empty. */
async function run(
  gdb: GraceDbTestServer,
  sections: string,
  alerts: Alert[],
  more: Record<string, string | number | boolean> = {},
): Promise<Run> {
  const logged: JsonObject[] = [];
  const mails: Sent[] = [];
  const record = (level: string, event: string, fields: JsonObject = {}, msg = "") =>
    logged.push({ ...fields, level, event, msg });
  const log: ChildLog = {
    debug: (m, f) => record("debug", "message", f, m),
    info: (m, f) => record("info", "message", f, m),
    warning: (m, f) => record("warning", "message", f, m),
    error: (m, f) => record("error", "message", f, m),
    event: record,
  };
  const { promise: empty, resolve } = Promise.withResolvers<void>();
  const before = gdb.requests.length;
  const config = ini(
    general(gdb.url, { check_timeout: 0.8, graceid_logs: false, ...more }) + sections,
  );
  handler.validateConfig(config);
  await using runtime = new ChildRuntime({
    child: "es",
    handler,
    handlerExports: handler,
    config,
    log,
    logDirectory: "/nonexistent",
    recipients: ["listener@example.org"],
    gracedb: new GraceDbClient(gdb.url, { minBackoffMs: 100, version: "test" }),
    notify: (subject, body, to) => mails.push({ subject, body, to }),
    publish: () => {},
    onChange: (s) => s.queue === 0 && resolve(),
  });
  const now = Date.now() / 1000;
  for (const alert of alerts) await runtime.deliver(alert, now);
  await empty;
  const notes = gdb.requests.slice(before).filter((r) => r.method === "POST").map((r) =>
    (r.body as { comment: string }).comment
  );
  return { outcomes: logged.filter((e) => e.event === "check_outcome"), mails, notes, logged };
}

const newEvent = (uid: string, object: JsonObject = {}): Alert => ({
  uid,
  alert_type: "new",
  description: "",
  file: "",
  object: { group: "CBC", pipeline: "gstlal", ...object },
});
const upload = (uid: string, description: string, file = "", tags: string[] = []): Alert => ({
  uid,
  alert_type: "update",
  description,
  file,
  object: { comment: description, filename: file, tag_names: tags },
});

async function server(): Promise<GraceDbTestServer> {
  return await GraceDbTestServer.start();
}

Deno.test("far: PASS, FAIL, and an exception when GraceDB answers 500 (exact texts)", async () => {
  await using gdb = await server();
  const ok = gdb.addEvent({ far: 1e-5 });
  const loud = gdb.addEvent({ far: 2e-3 });
  const broken = gdb.addEvent({ far: 1e-5 });
  gdb.inject({ path: `events/${broken}`, method: "GET", status: 500, times: 100 });
  const far = section("far", {
    dt: 0,
    "min far": 0,
    "max far": 1e-3,
    "email on success": "yay@example.org",
  });
  const r = await run(gdb, far, [newEvent(ok), newEvent(loud), newEvent(broken)]);
  assert.deepEqual(r.notes.sort(), [
    "ES: action required : FAR=2.000e-03 > 1.000e-03",
    "ES: no action required : 0.000e+00 <= FAR=1.000e-05 <= 1.000e-03",
  ]);
  const url = gdb.url.replace(/api\/$/, "");
  const bySubject = Object.fromEntries(r.mails.map((m) => [m.subject, m]));
  assert.deepEqual(bySubject[`${ok}: far succeeded`], {
    subject: `${ok}: far succeeded`,
    to: ["yay@example.org"],
    body: `${ok}: far succeeded\n${url}events/view/${ok}\n` +
      "event_supervisor found only expected behavior when performing a check for propper FAR\n" +
      "notes : 0.000e+00 <= FAR=1.000e-05 <= 1.000e-03",
  });
  assert.equal(
    bySubject[`${loud}: far requires attention`]?.body,
    `${loud}: far requires attention\n${url}events/view/${loud}\n` +
      "event_supervisor found suspicous behavior when performing a check for propper FAR\n" +
      "warning : FAR=2.000e-03 > 1.000e-03",
  );
  assert.match(
    bySubject[`${broken}: far FAILED`]?.body ?? "",
    /check FAILED\n.*\n.*\nGraceDbError: GraceDB answered 500/,
  );
});

Deno.test("log checks: found, missing; unblind injections PASSes when the statement is there", async () => {
  await using gdb = await server();
  const a = gdb.addEvent();
  const b = gdb.addEvent();
  gdb.addLog(a, "Coincidence search complete");
  gdb.addLog(a, "No unblind injections in window");
  const sections = section("external triggers", { dt: 0 }) +
    section("unblind injections", { dt: 0 });
  const r = await run(gdb, sections, [newEvent(a), newEvent(b)], { complete_early: false });
  assert.deepEqual(
    r.outcomes.map((e) => `${e.graceid} ${e.message}`).sort(),
    [
      `${a} no action required : found external triggers coinc search completion message`,
      `${a} no action required : process reported that no unblind injections were found`,
      `${b} action required : could not find a statement about unblind injections`,
      `${b} action required : could not find external triggers search completion message`,
    ].sort(),
  );
});

Deno.test("event creation: a suspiciously small psd, cWB and oLIB trigger files by GPS time", async () => {
  await using gdb = await server();
  const cbc = gdb.addEvent();
  gdb.addLog(cbc, "coinc", { file: { name: "coinc.xml", data: "<x/>" } });
  gdb.addLog(cbc, "psd", { file: { name: "psd.xml.gz", data: "tiny" } });
  const cwb = gdb.addEvent({ group: "Burst", pipeline: "CWB", gpstime: 1187008882.43 });
  gdb.addFile(cwb, "trigger_1187008882.4300.txt", "x");
  const olib = gdb.addEvent({ group: "Burst", pipeline: "LIB", gpstime: 1187008882.0 });
  gdb.addFile(olib, "1187008882.0-0.json", "{}");
  const r = await run(gdb, section("event creation", { dt: 0 }), [
    newEvent(cbc),
    newEvent(cwb, { group: "Burst", pipeline: "CWB" }),
    newEvent(olib, { group: "Burst", pipeline: "LIB" }),
  ]);
  assert.deepEqual(r.outcomes.map((e) => `${e.task} ${e.message}`).sort(), [
    "cWBTrigger no action required : found trigger_1187008882.4300.txt while ignoring tagnames and log message",
    "cbcCoinc no action required : found coinc.xml while ignoring tagnames and log message",
    "cbcPSD action required : found psd.xml.gz while ignoring tagnames and log message. However, the file's size seems suspiciously small.",
    "oLIBTrigger no action required : found 1187008882.0-0.json while ignoring tagnames and log message",
  ]);
});

Deno.test("skymap sanity: normalized and equatorial, each way wrong, and no COORDSYS", async () => {
  await using gdb = await server();
  const maps: [number, string | null][] = [[1, "C"], [0.5, "C"], [1, "G"], [0.5, "G"], [1, null]];
  const ids: string[] = [];
  for (const [sum, coordsys] of maps) {
    const id = gdb.addEvent();
    gdb.addLog(id, "map", {
      file: { name: "bayestar.fits.gz", data: await skymapFits({ sum, coordsys }) },
    });
    ids.push(id);
  }
  const r = await run(
    gdb,
    section("skymap sanity", { dt: 0 }),
    ids.map((id) => upload(id, "map", "bayestar.fits.gz")),
  );
  const by = (id: string) => r.outcomes.find((e) => e.graceid === id);
  const f = "bayestar.fits.gz";
  assert.equal(
    by(ids[0]!)?.message,
    `no action required : ${f} is properly normalized (1-sum=0.000000e+00) and in Equatorial coordinates`,
  );
  assert.equal(
    by(ids[1]!)?.message,
    `action required : ${f} is not properly normalized (1-sum=5.000000e-01) but is in Equatorial coordinates`,
  );
  assert.equal(
    by(ids[2]!)?.message,
    `action required : ${f} is properly normalized (1-sum=0.000000e+00) but is not in Equatorial coordinates`,
  );
  assert.equal(
    by(ids[3]!)?.message,
    `event_supervisor : action required : ${f} is not properly normalized (1-sum=5.000000e-01) and is not in Equatorial coordinates`,
  );
  assert.equal(by(ids[4]!)?.result, "exception");
  assert.match(String(by(ids[4]!)?.message), /has no COORDSYS keyword/);
});

Deno.test("plot skymap: tags must equal the upload's; a file with no log entry is an exception", async () => {
  await using gdb = await server();
  const good = gdb.addEvent();
  const wrong = gdb.addEvent();
  const orphan = gdb.addEvent();
  gdb.addLog(good, "plot", {
    file: { name: "bayestar.png", data: "p" },
    tags: ["lvem", "sky_loc"],
  });
  gdb.addLog(wrong, "plot", { file: { name: "bayestar.png", data: "p" }, tags: ["sky_loc"] });
  gdb.addFile(orphan, "bayestar.png", "p");
  const alerts = [good, wrong, orphan].map((id) =>
    upload(id, "map", "bayestar.fits.gz", ["sky_loc", "lvem"])
  );
  const r = await run(gdb, section("plot skymap", { dt: 0 }), alerts);
  const by = (id: string) => r.outcomes.find((e) => e.graceid === id);
  assert.equal(
    by(good)?.message,
    "no action required : found bayestar.png with correct tagnames (sky_loc,lvem) while ignoring log message",
  );
  assert.equal(
    by(wrong)?.message,
    "action required : found bayestar.png but with incorrect tagnames (sky_loc) while ignoring log message",
  );
  assert.equal(by(orphan)?.result, "exception");
  assert.match(
    String(by(orphan)?.message),
    /could not find bayestar.png in association with any log messages/,
  );
});

Deno.test("bayestarNoVirgo: irrelevant without V1 (and says so in the mail), checked with it", async () => {
  await using gdb = await server();
  const hl = gdb.addEvent({ instruments: "H1,L1" });
  const hlv = gdb.addEvent({ instruments: "H1,L1,V1" });
  const psd = (id: string) => upload(id, "psd", "psd.xml.gz");
  const r = await run(
    gdb,
    section("bayestarNoVirgo", { "skymap dt": 0, "email on success": "a@example.org" }),
    [psd(hl), psd(hlv)],
  );
  const text =
    "V1 not in list of instruments and therefore existence of bayestar_no_virgo.fits.gz is irrelevant";
  assert.equal(r.outcomes.find((e) => e.graceid === hl)?.message, `no action required : ${text}`);
  assert.equal(
    r.outcomes.find((e) => e.graceid === hlv)?.message,
    "action required : could not find bayestar_no_virgo.fits.gz",
  );
  assert.match(
    r.mails.find((m) => m.subject === `${hl}: bayestarNoVirgoSkymap succeeded`)?.body ?? "",
    new RegExp(`notes : ${text}$`),
  );
});

Deno.test("notify: mails by email whatever warnings says, not for an INJ event, never annotates", async () => {
  await using gdb = await server();
  const real = gdb.addEvent({ search: "AllSky" });
  const inj = gdb.addEvent();
  gdb.addLabel(inj, "INJ");
  const notify = section("notify", {
    dt: 0,
    "ignore inj": "True",
    "by email": "a@example.org b@example.org",
  });
  const r = await run(gdb, notify + section("far", { dt: 0, "min far": 1, "max far": 2 }), [
    newEvent(real, { search: "AllSky" }),
    newEvent(inj),
  ], { warnings: false });
  assert.deepEqual(r.mails, [{
    subject: `new GraceDb Event: ${real}`,
    to: ["a@example.org", "b@example.org"],
    body: `group    : CBC\npipeline : gstlal\nsearch   : AllSky\n\n${
      gdb.url.replace(/api\/$/, "")
    }events/view/${real}`,
  }], "the far FAILs mail nobody with warnings off");
  assert.ok(r.notes.every((n) => !n.includes("notif")));
});

Deno.test("iDQ files by pattern with their log text; multFITS start compares the FITS files there at its deadline", async () => {
  await using gdb = await server();
  const id = gdb.addEvent();
  const within = "within [1, 2]";
  gdb.addLog(id, `minimum glitch-FAP for ovl at H1 ${within} is 0.1`, {
    file: { name: `H1_ovl_minFAP_${id}-1-1.json`, data: "{}" },
  });
  gdb.addLog(id, "wrong text", { file: { name: `H1_ovl_maxRANK_${id}-1-1.json`, data: "{}" } });
  gdb.addLog(id, "a", { file: { name: "a.fits.gz", data: "x" } });
  gdb.addLog(id, "b", { file: { name: "b.fits", data: "x" } });
  gdb.addLog(id, "started skymap comparison for a.fits.gz, b.fits");
  const dts = [
    "glitch fap",
    "fap frame",
    "rank frame",
    "timeseries plot",
    "active chan",
    "active chan plot",
    "calib",
    "calib plot",
    "roc",
    "roc plot",
    "calib stats",
    "train stats",
    "finish",
  ];
  const idq = section("idq", {
    classifiers: "ovl",
    ...Object.fromEntries(dts.map((d) => [`${d} dt`, 0])),
  });
  const r = await run(gdb, idq + section("multFITS start", { dt: 0 }), [
    upload(id, `Started searching for iDQ information ${within} at H1`),
    upload(id, "finished skymap summary for x"),
  ], { complete_early: false });
  const by = (task: string) => r.outcomes.find((e) => e.task === task)?.message;
  assert.equal(
    by("idqGlitchFAP"),
    `no action required : found H1_ovl_minFAP_${id}-1-1.json with correct log message while ignoring tagnames`,
  );
  assert.equal(
    by("idqRank"),
    `action required : found H1_ovl_maxRANK_${id}-1-1.json but with incorrect log message while ignoring tagnames`,
  );
  assert.equal(
    by("idqFAPFrame"),
    "action required : could not find H1_idq_ovl_fap(.*)-(.*)-(.*).gwf",
  );
  assert.equal(
    by("multFITSStart"),
    "no action required : found multFITS start message for a.fits.gz, b.fits",
  );
  assert.equal(r.outcomes.length, 15);
});

Deno.test("a failed annotation does not hide the FAIL: the result mail goes out, then an exception mail about it", async () => {
  await using gdb = await server();
  const id = gdb.addEvent();
  gdb.inject({ path: `events/${id}/log/`, method: "POST", status: 503, times: 100 });
  const r = await run(gdb, section("lldqReport", { dt: 0 }), [newEvent(id)]);
  assert.deepEqual(r.outcomes.map((e) => [e.result, e.annotation]), [["fail", "failed"]]);
  assert.deepEqual(r.mails.map((m) => m.subject), [
    `${id}: lldqReport requires attention`,
    `${id}: lldqReport FAILED`,
  ]);
  assert.match(r.mails[1]!.body, /could not annotate G\d+ in GraceDB: GraceDB answered 503/);
});

Deno.test("an annotation answered 503 once is looked for, then written once", async () => {
  await using gdb = await server();
  const id = gdb.addEvent();
  gdb.inject({ path: `events/${id}/log/`, method: "POST", status: 503 });
  const r = await run(gdb, section("lldqReport", { dt: 0 }), [newEvent(id)]);
  assert.deepEqual(r.outcomes.map((e) => [e.result, e.annotation]), [["fail", "written"]]);
  const lines = gdb.logsOf(id).map((l) => String(l.comment)).filter((c) => c.startsWith("ES: "));
  assert.equal(lines.length, 1, lines.join("\n"));
  const log = `/api/events/${id}/log/`;
  const calls = gdb.requests.filter((q) => q.path === log).map((q) => `${q.method} ${q.status}`);
  // The check reads the log first; then the annotation.
  assert.deepEqual(calls.slice(calls.indexOf("POST 503")), ["POST 503", "GET 200", "POST 201"]);
  assert.deepEqual(r.mails.map((m) => m.subject), [`${id}: lldqReport requires attention`]);
});

Deno.test("a site's own checks from the childConfig: created by new or by a matching update, with tags", async () => {
  await using gdb = await server();
  const id = gdb.addEvent();
  gdb.addLog(id, "sky localization complete", {
    file: { name: "bayestar.multiorder.fits", data: "x" },
    tags: ["sky_loc", "public"],
  });
  gdb.addLog(id, "p_astro computed", { tags: ["p_astro"] });
  const own = (name: string, options: Record<string, string | number>) => section(name, options);
  const sections = own("gwcelery sky map", {
    check: "file bayestar.multiorder.fits\n  logrx sky localization (complete|done)",
    tags: "sky_loc",
    dt: 0,
  }) +
    own("p_astro", {
      "created by": "update ~ ^EM bright",
      check: "log p_astro computed",
      tags: "em_bright",
      dt: 0,
    });
  const r = await run(
    gdb,
    sections,
    [newEvent(id), upload(id, "EM bright classification started")],
    {
      complete_early: false,
    },
  );
  assert.deepEqual(r.outcomes.map((e) => `${e.task} ${e.result} ${e.message}`).sort(), [
    "gwcelery sky map 1 pass no action required : found bayestar.multiorder.fits with correct tagnames (sky_loc) while ignoring log message",
    'gwcelery sky map 2 pass no action required : found a log message matching "sky localization (complete|done)" tagged sky_loc',
    'p_astro fail action required : could not find log message "p_astro computed" tagged em_bright',
  ]);
});
