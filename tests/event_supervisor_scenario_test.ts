/**
 * event_supervisor end to end: the listener as a real process replaying
 * alert streams of both schemas, the GraceDB test server answering (and
 * failing), mail written to files. Each scenario asserts which GraceDB
 * reads and writes and which mails happened.
 */

import assert from "node:assert/strict";
import {
  cbcSections,
  general,
  healthyFollowups,
  newAlert,
  publish,
  scenario,
  section,
  skymapFits,
} from "./event_supervisor_helpers.ts";
import type { RecordedRequest } from "./gracedb_server.ts";

type Event = Record<string, unknown>;

const outcomes = (events: Event[]) => events.filter((e) => e.event === "check_outcome");
const reads = (requests: readonly RecordedRequest[]) =>
  requests.filter((r) => r.method === "GET").map((r) => r.path);
const annotations = (requests: readonly RecordedRequest[]) =>
  requests.filter((r) => r.method === "POST" && r.path.endsWith("/log/")).map((r) =>
    r.body as { comment: string; tagname: string[] }
  );

async function healthy(schema: "legacy" | "current") {
  await using s = await scenario();
  const graceid = s.gdb.addEvent({
    graceid: "G1001",
    group: "CBC",
    pipeline: "gstlal",
    search: "AllSky",
    far: 1e-8,
    gpstime: 1187008882.43,
    instruments: "H1,L1",
  });
  await s.writeConfig(general(s.gdb.url) + cbcSections());
  const lines = [
    await newAlert(s.gdb, graceid, schema),
    ...publish(s.gdb, graceid, await healthyFollowups(graceid), schema),
  ];
  s.gdb.clearRequests();
  const listener = s.start(lines, ["--exit-when-idle", "--speed", "0"]);
  assert.equal(await listener.exited(), 0, listener.stderr);
  const results = outcomes(listener.events);
  const bad = results.filter((e) => e.result !== "pass");
  assert.deepEqual(bad, [], "every check passes");
  assert.deepEqual(await s.mails(), [], "nobody is mailed");
  // One ES: annotation per task, each tagged event_supervisor, all "no action required".
  const notes = annotations(s.gdb.requests);
  assert.equal(notes.length, results.length);
  for (const note of notes) {
    assert.match(note.comment, /^ES: (event_supervisor : )?no action required : /);
    assert.deepEqual(note.tagname, ["event_supervisor"]);
  }
  // Checks an alert proved read nothing; the others read what their rule needs.
  const early = results.filter((e) => e.early === true);
  assert.ok(early.length >= 20, `${early.length} checks completed early`);
  const items = new Set(listener.named("item_added").map((e) => e.item));
  for (
    const name of [
      "event creation",
      "far",
      "local rate",
      "creation rate",
      "idq",
      "h1 omega scan",
      "segdb2grcdb",
      "bayestar start",
      "bayestarNoVirgo",
      "em bright",
      "bayestar",
      "bayestar finish",
      "skymap sanity",
      "plot skymap",
      "snglFITS",
      "multFITS start",
      "multFITS",
      "lalinf start",
    ]
  ) assert.ok(items.has(name), `${name} was created`);
  return { results, reads: reads(s.gdb.requests) };
}

Deno.test("a healthy CBC event (legacy schema): every check passes, nobody is mailed, one ES: line per task", async () => {
  const { results, reads } = await healthy("legacy");
  const late = results.filter((e) => e.early !== true).map((e) => e.task);
  // What still reads GraceDB at its deadline: the event, the rate queries, sky map and files.
  assert.ok(reads.includes("/api/events/G1001"));
  assert.ok(reads.some((p) => p === "/api/events/"), "rate queries");
  assert.ok(
    reads.includes("/api/events/G1001/files/bayestar.fits.gz"),
    "sanity downloads the sky map",
  );
  assert.ok(late.includes("far") && late.includes("skymapSanity") && late.includes("cbcPSD"));
});

Deno.test("a healthy CBC event (current schema): the same outcome", async () => {
  await healthy("current");
});

Deno.test("a missing sky map: one failure mail and one ES: action-required line tagged event_supervisor", async () => {
  await using s = await scenario();
  const graceid = s.gdb.addEvent({ graceid: "G1002", far: 1e-8, gpstime: 1187008882.43 });
  await s.writeConfig(general(s.gdb.url) + cbcSections());
  const lines = [
    await newAlert(s.gdb, graceid),
    ...publish(s.gdb, graceid, await healthyFollowups(graceid, false)),
  ];
  s.gdb.clearRequests();
  const listener = s.start(lines, ["--exit-when-idle", "--speed", "0"]);
  assert.equal(await listener.exited(), 0, listener.stderr);
  const failed = outcomes(listener.events).filter((e) => e.result !== "pass");
  assert.deepEqual(failed.map((e) => [e.task, e.result, e.message]), [
    ["bayestarSkymap", "fail", "action required : could not find bayestar.fits.gz"],
  ]);
  const mails = await s.mails();
  assert.deepEqual(mails.map((m) => [m.subject, m.recipients]), [
    ["G1002: bayestarSkymap requires attention", ["ops@example.org"]],
  ]);
  assert.equal(
    mails[0]!.body,
    "G1002: bayestarSkymap requires attention\n" +
      `${s.gdb.url.replace(/api\/$/, "")}events/view/G1002\n` +
      "event_supervisor found suspicous behavior when performing a check that bayestar produced a skymap\n" +
      "warning : could not find bayestar.fits.gz",
  );
  const actions = annotations(s.gdb.requests).filter((a) => !a.comment.includes("no action"));
  assert.deepEqual(actions, [{
    comment: "ES: action required : could not find bayestar.fits.gz",
    tagname: ["event_supervisor"],
    displayName: [],
  }]);
  // The sky-map checks an upload would have created never were.
  const items = listener.named("item_added").map((e) => e.item);
  assert.ok(!items.includes("skymap sanity") && !items.includes("bayestar finish"));
});

Deno.test("a high-FAR event: items with far thr are skipped; a null FAR still creates them", async () => {
  await using s = await scenario();
  const loud = s.gdb.addEvent({ graceid: "G2001", far: 1e-3 });
  const quiet = s.gdb.addEvent({ graceid: "G2002", far: 1e-9 });
  const unknown = s.gdb.addEvent({ graceid: "G2003", far: null });
  await s.writeConfig(
    general(s.gdb.url, { annotate: false }) +
      section("lalinf start", { dt: 0.2, "far thr": 1.65343e-6 }) +
      section("lib pe start", { dt: 0.2, "far thr": 2.777778e-4 }) +
      section("far", { dt: 0.2, "min far": 0, "max far": 1e-2 }),
  );
  const lines = [
    await newAlert(s.gdb, loud),
    await newAlert(s.gdb, quiet, "current"),
    await newAlert(s.gdb, unknown),
  ];
  const listener = s.start(lines, ["--exit-when-idle", "--speed", "0"]);
  assert.equal(await listener.exited(), 0, listener.stderr);
  const added = listener.named("item_added").map((e) => `${e.graceid} ${e.item}`);
  assert.deepEqual(added.sort(), [
    "G2001 far",
    "G2002 far",
    "G2002 lalinf start",
    "G2002 lib pe start",
    "G2003 far",
    "G2003 lalinf start",
    "G2003 lib pe start",
  ]);
  assert.deepEqual(listener.named("item_skipped").map((e) => e.msg), [
    "skipping QueueItem=lalinf start (large FAR 1.000e-03 > 1.653e-06)",
    "skipping QueueItem=lib pe start (large FAR 1.000e-03 > 2.778e-04)",
  ]);
  const far = outcomes(listener.events).filter((e) => e.task === "far").map((
    e,
  ) => [e.graceid, e.message]);
  assert.deepEqual(far.sort(), [
    ["G2001", "no action required : 0.000e+00 <= FAR=1.000e-03 <= 1.000e-02"],
    ["G2002", "no action required : 0.000e+00 <= FAR=1.000e-09 <= 1.000e-02"],
    ["G2003", "action required : FAR is not defined!"],
  ]);
});

Deno.test("a sky map uploaded before its deadline completes its check early, without reading GraceDB", async () => {
  await using s = await scenario();
  const graceid = s.gdb.addEvent({ graceid: "G3001" });
  await s.writeConfig(
    general(s.gdb.url) +
      section("bayestar start", { dt: 5 }) +
      section("bayestar", { "skymap dt": 5, "skymap tagnames": "sky_loc lvem" }),
  );
  const lines = [
    await newAlert(s.gdb, graceid),
    ...publish(s.gdb, graceid, [
      { comment: "Uploaded psd", file: { name: "psd.xml.gz", data: "x".repeat(200) } },
      { comment: "INFO:BAYESTAR:starting sky localization" },
      {
        comment: "INFO:BAYESTAR:uploaded sky map",
        file: { name: "bayestar.fits.gz", data: "x" },
        tags: ["sky_loc", "lvem"],
      },
    ]),
  ];
  s.gdb.clearRequests();
  const started = Date.now();
  const listener = s.start(lines, ["--exit-when-idle", "--speed", "0"]);
  assert.equal(await listener.exited(), 0, listener.stderr);
  assert.ok(Date.now() - started < 4500, "done long before the 5 s deadlines");
  assert.deepEqual(outcomes(listener.events).map((e) => [e.task, e.result, e.early]).sort(), [
    ["bayestarSkymap", "pass", true],
    ["bayestarStart", "pass", true],
  ]);
  assert.deepEqual(reads(s.gdb.requests), [], "no GraceDB read at all");
  assert.deepEqual(annotations(s.gdb.requests).map((a) => a.comment).sort(), [
    "ES: no action required : found BAYESTAR starting message",
    "ES: no action required : found bayestar.fits.gz with correct tagnames (sky_loc,lvem) while ignoring log message",
  ]);
});

Deno.test("a burst of events: local rate and creation rate fire", async () => {
  await using s = await scenario();
  const ids = [0, 1, 2, 3, 4].map((i) =>
    s.gdb.addEvent({ group: "CBC", pipeline: "gstlal", search: "AllSky", gpstime: 1e9 + 10 * i })
  );
  await s.writeConfig(
    general(s.gdb.url, { annotate: false }) +
      section("local rate", { dt: 0.2, "win+": 0, "win-": 100, "max rate": 0.02 }) +
      section("creation rate", { dt: 0.2, "win+": 10, "win-": 100, "max rate": 0.02 }),
  );
  const lines = await Promise.all(ids.map((id) => newAlert(s.gdb, id)));
  const listener = s.start(lines, ["--exit-when-idle", "--speed", "0"]);
  assert.equal(await listener.exited(), 0, listener.stderr);
  const failed = outcomes(listener.events).filter((e) => e.result === "fail");
  assert.deepEqual(
    failed.filter((e) => e.task === "localRate").map((e) => e.message).sort(),
    [
      `action required : found 3 events within (-100.000, +0.000) of ${ids[3]}`,
      `action required : found 4 events within (-100.000, +0.000) of ${ids[4]}`,
    ],
  );
  assert.equal(failed.filter((e) => e.task === "createRate").length, 5);
  assert.match(
    String(failed.find((e) => e.task === "createRate")?.message),
    /^action required : found 4 events within \(-100\.000, \+10\.000\) of G\d+ creation$/,
  );
  const subjects = (await s.mails()).map((m) => m.subject).sort();
  assert.equal(subjects.length, 7);
  assert.ok(subjects.includes(`${ids[4]}: localRate requires attention`));
  assert.ok(subjects.includes(`${ids[0]}: createRate requires attention`));
});

Deno.test("a superevent in the current schema: superevent paths, a multi-order sky map, its plot", async () => {
  await using s = await scenario();
  const id = s.gdb.addSuperevent({ superevent_id: "S190425z", t_0: 1240215503.0, far: 4.5e-13 });
  await s.writeConfig(
    general(s.gdb.url) +
      section("far", { dt: 0.2, "min far": 0, "max far": 1e-3 }) +
      section("local rate", { dt: 0.2, "win+": 0, "win-": 100, "max rate": 0.02 }) +
      section("lldqReport", { dt: 0.2 }) +
      section("skymap sanity", { dt: 0.2 }) +
      section("plot skymap", { dt: 1 }),
  );
  const lines = [
    { ...await newAlert(s.gdb, id, "current"), node: "superevent" },
    ...publish(s.gdb, id, [
      {
        comment: "sky localization complete",
        file: {
          name: "bayestar.multiorder.fits",
          data: await skymapFits({ multiorder: true, gzip: false }),
        },
        tags: ["sky_loc", "public"],
      },
      {
        comment: "Mollweide projection",
        file: { name: "bayestar.png", data: "png" },
        tags: ["sky_loc", "public"],
      },
    ], "current").map((l) => ({ ...l, node: "superevent" })),
  ];
  s.gdb.clearRequests();
  const listener = s.start(lines, ["--exit-when-idle", "--speed", "0"]);
  assert.equal(await listener.exited(), 0, listener.stderr);
  const results = outcomes(listener.events).map((e) => [e.task, e.result, e.message]);
  assert.deepEqual(
    results.sort(),
    [
      ["far", "pass", "no action required : 0.000e+00 <= FAR=4.500e-13 <= 1.000e-03"],
      ["lldqReport", "fail", "action required : could not find a lldq-report post"],
      [
        "localRate",
        "pass",
        "event_supervisor : no action required : found 0 events within (-100.000, +0.000) of S190425z",
      ],
      [
        "plotSkymap",
        "pass",
        "no action required : found bayestar.png with correct tagnames (sky_loc,public) while ignoring log message",
      ],
      [
        "skymapSanity",
        "pass",
        "no action required : bayestar.multiorder.fits is properly normalized (1-sum=0.000000e+00) and in Equatorial coordinates",
      ],
    ].sort(),
  );
  const paths = new Set(reads(s.gdb.requests));
  for (
    const p of [
      "/api/superevents/S190425z/",
      "/api/superevents/S190425z/logs/",
      "/api/superevents/S190425z/files/bayestar.multiorder.fits",
      "/api/superevents/",
    ]
  ) assert.ok(paths.has(p), `read ${p}: ${[...paths].join(" ")}`);
  assert.ok(
    s.gdb.requests.some((r) => r.method === "POST" && r.path === "/api/superevents/S190425z/logs/"),
  );
  const mail = (await s.mails()).find((m) =>
    m.subject === "S190425z: lldqReport requires attention"
  );
  assert.match(mail?.body ?? "", /\/superevents\/S190425z\/view\/\n/);
});
