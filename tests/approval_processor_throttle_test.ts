/**
 * approval_processor's PipelineThrottle (spec §3 and the §8 scenarios
 * T1-T5): the Poisson threshold, counting distinct triggers, labelling,
 * expiry, manual reset and the resetThrottle command.
 */

import assert from "node:assert/strict";
import { PipelineThrottle, poissonThreshold } from "../workers/handlers/approval_processor.ts";
import { commands } from "../workers/handlers/approval_processorMP.ts";
import { type ApHarness, startAp } from "./fixtures/approval_processor/harness.ts";

const GSTLAL = { group: "CBC", pipeline: "gstlal", search: "LowMass" };

Deno.test("poissonThreshold gives the spec's reference values", () => {
  const win = 3600;
  assert.equal(poissonThreshold(1e-5 * win, 0.9999), 2);
  assert.equal(poissonThreshold(1e-4 * win, 0.9999), 4);
  assert.equal(poissonThreshold(2.5e-6 * win, 0.9999), 1);
  assert.equal(poissonThreshold(1.6e-3 * win, 0.9999), 17);
  assert.equal(poissonThreshold(1e-5 * win, 0.9), 0);
  assert.equal(poissonThreshold(0.36, 1), Infinity, "conf = 1 never throttles (and ends)");
  assert.equal(poissonThreshold(0, 0.9999), 0);
  assert.throws(() => poissonThreshold(1, 1.5), /unphysical confidence level!/);
});

Deno.test("a throttle counts triggers closer than grouperWin in gpstime once", () => {
  const th = new PipelineThrottle(0, "CBC_gstlal", {
    throttleWin: 3600,
    targetRate: 1e-5,
    requireManualReset: false,
    conf: 0.9999,
  }, 3);
  const add = (graceid: string, gpstime: number) => th.addEvent({ graceid, t0: 0, gpstime });
  assert.deepEqual(add("G1", 100), []);
  assert.deepEqual(add("G2", 101), [], "a re-upload of the same trigger");
  assert.deepEqual(add("G3", 110), []);
  assert.equal(th.distinct(), 2);
  // 6 s from G1's and 4 s from G3's trigger: a third distinct one turns the throttle on.
  assert.deepEqual(add("G4", 106), ["G1", "G2", "G3", "G4"]);
  assert.equal(th.distinct(), 3);
  assert.equal(th.throttled(), true);
  assert.deepEqual(add("G5", 200), ["G5"], "already throttled: only the new one");
});

function command(ap: ApHarness, name: string, object: Record<string, unknown>) {
  return ap.deliver({ uid: "command", alert_type: name, object });
}

for (const schema of ["legacy", "current"] as const) {
  Deno.test(`T1: three gstlal events in one window are all throttled; resetThrottle lets a 4th through (${schema})`, async () => {
    await using ap = await startAp({ schema });
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      ids.push(ap.addEvent({ ...GSTLAL, gpstime: 1e9 + 10 * i }));
      await ap.advance(10);
    }
    for (const id of ids) assert.ok(ap.server.labelsOf(id).includes("EM_Throttled"), id);
    assert.equal(ap.record(ids[2]!).currentstate, "throttled");
    await ap.advance(60);
    // The first two sat in Groupers of their own: selected, then rejected by labelCheck.
    for (const id of ids.slice(0, 2)) {
      assert.equal(ap.record(id).currentstate, "rejected", id);
      assert.ok(
        ap.comments(id).includes("AP: Failed labelCheck in currentstate: selected_to_preliminary."),
      );
    }
    assert.equal(ap.record(ids[2]!).currentstate, "throttled");
    assert.deepEqual(ap.voevents(ids[0]!), []);

    await command(ap, "resetThrottle", { group: "CBC", pipeline: "gstlal", search: "LowMass" });
    const lines = ap.events("command").map((r) => r.msg);
    assert.ok(lines.includes("received PipelineThrottle throttleKey: CBC_gstlal_LowMass"));
    assert.ok(lines.includes("Found PipelineThrottle QueueItem, calling reset method"));
    assert.ok(lines.includes("After reset, events list: []"));
    assert.equal(ap.items("PipelineThrottle").length, 0);
    await ap.advance(20);
    const fourth = ap.addEvent({ ...GSTLAL, gpstime: 1e9 + 100 });
    await ap.pump();
    assert.ok(!ap.server.labelsOf(fourth).includes("EM_Throttled"));
    assert.equal(ap.record(fourth).currentstate, "new_awaiting_grouperSelection");
    for (const id of ids) assert.ok(ap.server.labelsOf(id).includes("EM_Throttled"), "labels stay");
  });
}

Deno.test("T2: a two-part key (Test_CWB2G) and its reset; events at one gpstime count once", async () => {
  await using ap = await startAp();
  const test = { group: "Test", pipeline: "CWB2G", search: null };
  const same = [1, 2, 3].map(() => ap.addEvent({ ...test, gpstime: 1174686081.12 }));
  await ap.pump();
  for (const id of same) assert.ok(!ap.server.labelsOf(id).includes("EM_Throttled"));
  const apart = [1, 2].map((i) => ap.addEvent({ ...test, gpstime: 1174686081.12 + 10 * i }));
  await ap.pump();
  for (const id of [...same, ...apart]) assert.ok(ap.server.labelsOf(id).includes("EM_Throttled"));
  await command(ap, "resetThrottle", { group: "Test", pipeline: "CWB2G" });
  const before = ap.events("command").find((r) => String(r.msg).startsWith("Before reset"));
  assert.equal(before?.events, 5);
  assert.equal(ap.items("PipelineThrottle").length, 0);
  await command(ap, "resetThrottle", { group: "Test", pipeline: "CWB2G" });
  assert.ok(
    ap.events("command").some((r) =>
      r.msg === "Did not find PipelineThrottle QueueItem in QueueByGraceid"
    ),
  );
});

const SHORT = (manual: boolean) =>
  `\n[CBC_gstlal_LowMass]\nthrottleWin = 100\ntargetRate = 1e-5\nrequireManualReset = ${
    manual ? "True" : "False"
  }\nconf = 0.9999\n`;

Deno.test("T4: without manual reset the throttle ends once its window passes", async () => {
  await using ap = await startAp({ config: SHORT(false) });
  const a = ap.addEvent({ ...GSTLAL, gpstime: 1e9 });
  const b = ap.addEvent({ ...GSTLAL, gpstime: 1e9 + 10 });
  await ap.pump();
  assert.ok(ap.server.labelsOf(a).includes("EM_Throttled"), "Nthr is 1 for k = 0.001");
  assert.ok(ap.server.labelsOf(b).includes("EM_Throttled"));
  await ap.advance(101);
  assert.equal(ap.items("PipelineThrottle").length, 0, "the throttle item is gone");
  const c = ap.addEvent({ ...GSTLAL, gpstime: 1e9 + 500 });
  await ap.pump();
  assert.ok(!ap.server.labelsOf(c).includes("EM_Throttled"));
});

Deno.test("T5: with requireManualReset the throttle holds past its window until resetThrottle", async () => {
  await using ap = await startAp({ config: SHORT(true) });
  ap.addEvent({ ...GSTLAL, gpstime: 1e9 });
  ap.addEvent({ ...GSTLAL, gpstime: 1e9 + 10 });
  await ap.pump();
  await ap.advance(500);
  assert.equal(ap.items("PipelineThrottle").length, 1);
  const c = ap.addEvent({ ...GSTLAL, gpstime: 1e9 + 600 });
  await ap.pump();
  assert.ok(ap.server.labelsOf(c).includes("EM_Throttled"), "still throttled");
  await command(ap, "resetThrottle", { group: "CBC", pipeline: "gstlal", search: "LowMass" });
  const d = ap.addEvent({ ...GSTLAL, gpstime: 1e9 + 700 });
  await ap.pump();
  assert.ok(!ap.server.labelsOf(d).includes("EM_Throttled"));
});

Deno.test("the handler's commands: resetThrottle with the original's arguments, printEventDicts", () => {
  assert.deepEqual(commands.map((c) => c.name), ["resetThrottle", "printEventDicts"]);
  assert.deepEqual(commands[1]?.optional, ["graceid"]);
  const spec = commands.find((c) => c.name === "resetThrottle");
  assert.deepEqual(spec?.required, ["group", "pipeline"]);
  assert.deepEqual(spec?.optional, ["search"]);
  assert.match(spec?.description ?? "", /throttle/i);
});
