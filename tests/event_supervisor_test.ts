/**
 * event_supervisor in process: the original's assembly and instantiation
 * test scenarios (EVENT_SUPERVISOR.md §6.1, §6.2) against the test
 * childConfig, and the scenarios the original implies but never tested.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { parseAlert } from "../workers/handlers/event_supervisor.ts";
import type { CheckItem, CheckTask } from "../workers/handlers/event_supervisor/task.ts";
import type { FileRule, RateRule } from "../workers/handlers/event_supervisor/rules.ts";
import { ini, testContext } from "./event_supervisor_context.ts";

const FIXTURES = new URL("./fixtures/event_supervisor/", import.meta.url).pathname;
const TESTS = await Deno.readTextFile(join(FIXTURES, "Tests.ini"));
const T0 = 1_700_000_000;

function assemble(alert: Record<string, unknown>, text = TESTS) {
  const ctx = testContext(ini(text), { now: T0 });
  parseAlert(ctx, { uid: "G123FAKE", ...alert } as never, T0, ctx.config);
  const items = ctx.queue.items() as CheckItem[];
  const added = ctx.logged.filter((e) => e.event === "item_added").map((e) => e.item);
  return { ctx, items, added, ids: ctx.queue.graceIds() };
}

const update = (description: string, more: Record<string, unknown> = {}) => ({
  alert_type: "update",
  description,
  file: "",
  object: { comment: description, tag_names: [] },
  ...more,
});

const NEW_LIST = [
  "event creation",
  "far",
  "local rate",
  "creation rate",
  "external triggers",
  "unblind injections",
  "lldqReport",
  "idq start",
  "h1 omega scan start",
  "l1 omega scan start",
  "cit omega scan start",
  "segdb2grcdb start",
  "notify",
  "bayeswave pe start",
  "cwb pe",
  "lalinf start",
  "lib pe start",
];
const FITS = ["skymap sanity", "plot skymap", "skyviewer", "snglFITS start"];
const anchor = (name: string) => `<a href="does not matter">${name}</a>`;

Deno.test("assembly (§6.1): each alert makes exactly the original's items, keyed by its graceid", async (t) => {
  const cases: [string, Record<string, unknown>, string[]][] = [
    [
      "new",
      { alert_type: "new", object: { group: "CBC", pipeline: "gstlal", far: 1e-8 } },
      NEW_LIST,
    ],
    ["psd", update("irrelevant", { file: "psd.xml.gz" }), [
      "bayestar start",
      "bayestarNoVirgo",
      "em bright",
    ]],
    [
      "fits",
      update("meaningless", { file: "fake.fits.gz", object: { tag_names: ["faketag"] } }),
      FITS,
    ],
    ["snglFITSStart", update(`started skymap summary for ${anchor("G123FAKE")}`), ["snglFITS"]],
    ["snglFITSFinish", update(`finished skymap summary for ${anchor("x")}`), ["multFITS start"]],
    [
      "multFITSStart",
      update(
        `started skymap comparison for ${
          anchor("fake.fits.gz")
        }, <a href="unimportant">faker.fits</a>`,
      ),
      ["multFITS"],
    ],
    [
      "idqStart",
      update("Started searching for iDQ information within [1162558843.270, 1162558843.370] at H1"),
      ["idq"],
    ],
    [
      "idqGlitchFAP",
      update("minimum glitch-FAP for ovl at H1 within [1, 2] is 1.000e+00", {
        file: "https://x/f.json",
      }),
      [],
    ],
    ["idqActiveChan", update("iDQ (possible) active channels for ovl at L1 between [1, 2]"), []],
    ["omegaScanStart", update("automatic OmegaScans begun for: l1_llhoft, l1_r-selected"), [
      "l1 omega scan",
    ]],
    ["segDbStart", update("began searching for segments in : https://segments.ligo.org"), [
      "segdb2grcdb",
    ]],
    ["bayestarStart", update("INFO:BAYESTAR:starting sky localization"), ["bayestar"]],
    [
      "bayestarSkymap",
      update("INFO:BAYESTAR:uploaded sky map", {
        file: "bayestar.fits.gz",
        object: { tag_names: ["faketag"] },
      }),
      [...FITS, "bayestar finish"],
    ],
    ["bayeswavePEStart", update("BayesWaveBurst launched"), ["bayeswave pe"]],
    ["lalinfStart", update("LALInference online estimation started"), ["lalinf"]],
    ["libPEStart", update("LIB Parameter estimation started."), ["lib pe"]],
  ];
  for (const [name, alert, want] of cases) {
    await t.step(name, () => {
      const { added, ids, items } = assemble(alert);
      assert.deepEqual(added, want);
      assert.deepEqual(ids, want.length ? ["G123FAKE"] : []);
      assert.equal(items.length, want.length);
    });
  }
});

Deno.test("instantiation (§6.2): tasks, timeouts, lists and parsed names as the original built them", async (t) => {
  const byName = (r: ReturnType<typeof assemble>, name: string) =>
    r.items.find((i) => i.name === name)!;
  const tasks = (i: CheckItem) => i.tasks as CheckTask[];
  await t.step("every new item: expirations, email lists, not complete", () => {
    const r = assemble({
      alert_type: "new",
      object: { group: "CBC", pipeline: "gstlal", far: 1e-8 },
    });
    for (const item of r.items) {
      assert.equal(item.graceid, "G123FAKE");
      assert.equal(item.complete, false);
      assert.equal(item.annotate, false);
      assert.equal(item.expiration, T0 + Math.min(...item.tasks.map((x) => x.timeout)));
      for (const task of item.tasks) assert.equal(task.expiration, T0 + task.timeout);
      assert.deepEqual(item.emails.failure, ["es-tests@example.org"]);
    }
    const notify = tasks(byName(r, "notify"));
    assert.deepEqual(notify.map((x) => x.name), ["notifyByEmail"]);
    assert.deepEqual((notify[0]!.rule as { emails: string[] }).emails, ["es-tests@example.org"]);
    assert.deepEqual(tasks(byName(r, "far"))[0]!.rule, { kind: "far", min: 0, max: 1 });
    const rate = tasks(byName(r, "local rate"))[0]!.rule as RateRule;
    assert.deepEqual([rate.group, rate.pipeline, rate.search, rate.pWin, rate.mWin], [
      "CBC",
      "gstlal",
      null,
      5,
      5,
    ]);
    assert.equal(tasks(byName(r, "idq start")).length, 2);
    assert.equal(tasks(byName(r, "lldqReport")).length, 1);
    assert.equal(tasks(byName(r, "cwb pe")).length, 3);
    const omega = tasks(byName(r, "l1 omega scan start"));
    assert.deepEqual((omega[0]!.rule as { texts: string[] }).texts, [
      "automatic OmegaScans begun for: l1_llhoft, l1_r-selected",
    ]);
  });
  await t.step("event creation by pipeline", () => {
    for (
      const [pipeline, names] of [
        ["CWB", ["cWBTrigger"]],
        ["LIB", ["oLIBTrigger"]],
        ["gstlal", ["cbcCoinc", "cbcPSD"]],
        ["gstlal-spiir", ["cbcCoinc", "cbcPSD"]],
        ["MBTAOnline", ["cbcCoinc", "cbcPSD"]],
        ["pycbc", ["cbcCoinc", "cbcPSD"]],
      ] as const
    ) {
      const r = assemble({ alert_type: "new", object: { group: "CBC", pipeline } });
      assert.deepEqual(tasks(byName(r, "event creation")).map((x) => x.name), names);
    }
  });
  await t.step("sky-map items keep the file and the upload's tags", () => {
    const r = assemble(update("x", { file: "fake.fits.gz", object: { tag_names: [] } }));
    const plot = tasks(byName(r, "plot skymap"))[0]!.rule as FileRule;
    assert.deepEqual([plot.name, plot.tags], ["fake.png", []]);
    assert.equal((tasks(byName(r, "skyviewer"))[0]!.rule as FileRule).name, "fake.json");
    assert.equal(
      tasks(byName(r, "snglFITS start"))[0]!.description,
      "check that snglFITS started processing fake.fits.gz",
    );
    assert.equal(byName(r, "plot skymap").key, "fake.fits.gz");
  });
  await t.step("snglFITS and multFITS parse their names and have 2 tasks", () => {
    const s = assemble(
      update(`started skymap summary for <a href="not real">bayestar_gstlal.fits.gz</a>`),
    );
    const sngl = byName(s, "snglFITS");
    assert.equal(sngl.key, "bayestar_gstlal.fits.gz");
    assert.deepEqual(
      tasks(sngl).map((x) => (x.rule as FileRule).name ?? x.name),
      [
        "bayestar_gstlal-skymapSummary.html",
        undefined,
      ].map((v, i) => v ?? tasks(sngl)[i]!.name),
    );
    const m = assemble(
      update(`started skymap comparison for ${anchor("b.fits.gz")}, ${anchor("a.fits")}`),
    );
    assert.equal(byName(m, "multFITS").key, "a.fits, b.fits.gz");
    assert.equal(tasks(byName(m, "multFITS")).length, 2);
  });
  await t.step("PE items and their task counts; tags from skymap tagnames or none", () => {
    const counts: [string, string, number][] = [
      ["INFO:BAYESTAR:starting sky localization", "bayestar", 1],
      ["BayesWaveBurst launched", "bayeswave pe", 4],
      ["LIB Parameter estimation started.", "lib pe", 4],
      ["LALInference online estimation started", "lalinf", 2],
    ];
    for (const [text, name, n] of counts) {
      assert.equal(tasks(byName(assemble(update(text)), name)).length, n);
    }
    const bayestar = tasks(
      byName(assemble(update("INFO:BAYESTAR:starting sky localization")), "bayestar"),
    )[0]!;
    assert.equal((bayestar.rule as FileRule).tags, null);
    const tagged = TESTS.replace("[bayestar]\n", "[bayestar]\nskymap tagnames = sky_loc lvem\n");
    const withTags = tasks(
      byName(assemble(update("INFO:BAYESTAR:starting sky localization"), tagged), "bayestar"),
    )[0]!;
    assert.deepEqual((withTags.rule as FileRule).tags, ["sky_loc", "lvem"]);
  });
  await t.step("idq: 13 tasks per classifier and a finish, for the message's IFO", () => {
    const r = assemble(update("blah blah blah H1"), TESTS);
    assert.equal(r.items.length, 0, "not an iDQ start message");
    const idq = byName(
      assemble(update("Started searching for iDQ information within [1, 2] at H1")),
      "idq",
    );
    assert.equal(idq.key, "H1");
    assert.equal(idq.tasks.length, 14);
    assert.equal(
      tasks(idq)[0]!.description,
      "a check that iDQ reported a glitch-FAP for ovl at H1",
    );
  });
  await t.step(
    "omega scans: chansets from either comment form, one data task each plus a finish",
    () => {
      for (
        const comment of [
          "automatic OmegaScans begun for: h1_r-selected. WARNING: we will not track the individual OmegaScan processes to ensure completion",
          "automatic OmegaScans begun for: h1_r-selected.",
        ]
      ) {
        const item = byName(assemble(update(comment)), "h1 omega scan");
        assert.deepEqual(tasks(item).map((x) => x.name), ["omegaScanData", "omegaScanFinish"]);
        assert.equal((tasks(item)[0]!.rule as FileRule).name, "h1_r-selected.json");
      }
    },
  );
  await t.step("segdb2grcdb: a task per flag, any, finish", () => {
    const item = byName(assemble(update("began searching for segments in : x")), "segdb2grcdb");
    assert.deepEqual(tasks(item).map((x) => x.name), [
      "segDB2grcDBFlag",
      "segDB2grcDBFlag",
      "segDB2grcDBAny",
      "segDB2grcDBFinish",
    ]);
    assert.equal(
      (tasks(item)[0]!.rule as FileRule).name,
      "H1-DMT_ANALYSIS_READY_1-(.*)-(.*).xml.gz",
    );
  });
});

Deno.test("label and signoff alerts add nothing; an unknown legacy type is ignored with a reason", () => {
  for (const alert_type of ["label", "signoff", "label_added", "signoff_created"]) {
    assert.deepEqual(assemble({ alert_type, description: "DQV", data: {} }).added, []);
  }
  const { ctx, added } = assemble({ alert_type: "frobnicate", object: {} });
  assert.deepEqual(added, []);
  assert.match(String(ctx.logged.find((e) => e.event === "alert_ignored")?.reason), /frobnicate/);
});

Deno.test("an update is classified by its first matching rule (a psd upload whose text is an iDQ start)", () => {
  const { added } = assemble(
    update("Started searching for iDQ information within [1, 2] at L1", { file: "psd.xml.gz" }),
  );
  assert.deepEqual(added, ["idq"]);
});

Deno.test("notify with an empty by email makes no item", () => {
  const text = TESTS.replace("by email = es-tests@example.org", "by email =");
  const { added } = assemble({ alert_type: "new", object: { pipeline: "gstlal" } }, text);
  assert.ok(!added.includes("notify"));
  assert.equal(added.length, NEW_LIST.length - 1);
});

Deno.test("deduplication: the same alert twice, or a sky map uploaded again, makes its items once", () => {
  const ctx = testContext(ini(TESTS), { now: T0 });
  const alert = update("INFO:BAYESTAR:uploaded sky map", {
    file: "bayestar.fits.gz",
    object: { tag_names: [] },
  });
  for (let i = 0; i < 2; i++) parseAlert(ctx, { uid: "G1", ...alert } as never, T0 + i, ctx.config);
  assert.equal(ctx.queue.size, 5);
  assert.equal(ctx.logged.filter((e) => e.event === "item_duplicate").length, 5);
  const other = update("x", { file: "other.fits.gz", object: { tag_names: [] } });
  parseAlert(ctx, { uid: "G1", ...other } as never, T0 + 2, ctx.config);
  assert.equal(ctx.queue.size, 9, "another sky map is another key");
});

Deno.test("early completion marks the task proved and due now; a later deadline is not waited for", () => {
  const ctx = testContext(ini(TESTS), { now: T0 });
  parseAlert(
    ctx,
    { uid: "G1", ...update("INFO:BAYESTAR:starting sky localization") } as never,
    T0,
    ctx.config,
  );
  ctx.clock.now = T0 + 0.3;
  const upload = update("sky map", {
    file: "bayestar.fits.gz",
    object: { comment: "sky map", tag_names: ["x"] },
  });
  parseAlert(ctx, { uid: "G1", ...upload } as never, T0 + 0.3, ctx.config);
  const bayestar = ctx.queue.items().find((i) => i.name === "bayestar")!;
  const task = bayestar.tasks[0] as CheckTask;
  assert.equal(task.expiration, T0 + 0.3);
  assert.equal(
    task.proof?.message,
    "no action required : found bayestar.fits.gz while ignoring tagnames and log message",
  );
});

Deno.test("our own ES: annotations, published back as log alerts, create and prove nothing", () => {
  const text = TESTS + "\n[p_astro]\ncheck = log p_astro computed\ndt = 5\n" +
    "email on success =\nemail on failure = a@example.org\nemail on exception =\n";
  const ctx = testContext(ini(text), { now: T0 });
  parseAlert(
    ctx,
    { uid: "G1", alert_type: "new", object: { pipeline: "gstlal" } } as never,
    T0,
    ctx.config,
  );
  const before = ctx.queue.size;
  const comment = 'ES: action required : could not find log message "p_astro computed"';
  const own = update(comment, { object: { comment, tag_names: ["event_supervisor"] } });
  parseAlert(ctx, { uid: "G1", ...own } as never, T0 + 1, ctx.config);
  assert.equal(ctx.queue.size, before);
  assert.ok(!ctx.logged.some((e) => e.event === "check_proved"));
  const someone = update(comment, { object: { comment, tag_names: [] } });
  parseAlert(ctx, { uid: "G1", ...someone } as never, T0 + 2, ctx.config);
  assert.ok(
    ctx.logged.some((e) => e.event === "check_proved" && e.item === "p_astro"),
    "anyone else's text counts",
  );
});

Deno.test("the original's texts: Python number formats, event pages, names parsed the intended way", async () => {
  const { pyExp, eventUrl } = await import("../workers/handlers/event_supervisor/format.ts");
  const { snglFitsName, omegaChansets, multFitsNames } = await import(
    "../workers/handlers/event_supervisor/alerts.ts"
  );
  const { flagPattern } = await import("../workers/handlers/event_supervisor/build.ts");
  assert.deepEqual([pyExp(1e-3, 3), pyExp(0, 3), pyExp(3.8e-6, 3), pyExp(1.5e120, 6)], [
    "1.000e-03",
    "0.000e+00",
    "3.800e-06",
    "1.500000e+120",
  ]);
  assert.equal(
    eventUrl("https://gracedb.ligo.org/api/", "G123"),
    "https://gracedb.ligo.org/events/view/G123",
  );
  assert.equal(
    eventUrl("https://gracedb-playground.ligo.org/api", "S190425z"),
    "https://gracedb-playground.ligo.org/superevents/S190425z/view/",
  );
  // The original stripped characters: a name ending in "a" lost it, "v1_llhoft" became "v1_llh".
  assert.equal(
    snglFitsName('started skymap summary for <a href="x">gstlal_lalinfa</a>'),
    "gstlal_lalinfa",
  );
  assert.deepEqual(
    omegaChansets("automatic OmegaScans begun for: l1_llhoft, h1_llhoft, v1_llhoft"),
    [
      "l1_llhoft",
      "h1_llhoft",
      "v1_llhoft",
    ],
  );
  assert.deepEqual(multFitsNames('x for <a href="a">b.fits.gz</a>, <a href="b">a.fits</a>'), [
    "a.fits",
    "b.fits.gz",
  ]);
  assert.throws(
    () => multFitsNames("started skymap comparison for nothing"),
    /cannot find a FITS file name/,
  );
  assert.equal(flagPattern("H1:DMT-ANALYSIS_READY:1"), "H1-DMT_ANALYSIS_READY_1-(.*)-(.*).xml.gz");
});

Deno.test("sky maps read in memory: plain, gzipped, multi-order; a file that is no FITS is an error", async () => {
  const { readSkymap } = await import("../workers/handlers/event_supervisor/skymap.ts");
  const { skymapFits } = await import("./event_supervisor_helpers.ts");
  const near = (a: number, b: number) => assert.ok(Math.abs(a - b) < 1e-9, `${a} ~ ${b}`);
  near((await readSkymap(await skymapFits({ gzip: false }))).sum, 1);
  near((await readSkymap(await skymapFits({ sum: 0.25 }))).sum, 0.25);
  const multi = await readSkymap(await skymapFits({ multiorder: true }));
  near(multi.sum, 1);
  assert.equal(multi.ordering, "NUNIQ");
  assert.equal((await readSkymap(await skymapFits({ coordsys: "G" }))).coordsys, "G");
  await assert.rejects(() => readSkymap(new TextEncoder().encode("not a fits file")), /FITS/);
});
