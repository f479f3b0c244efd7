/**
 * approval_processor's Grouper (spec §4 and the §8 scenarios G-R, G-L,
 * G-M, G-J) and, with the Grouper off, the master flow's wait for an INJ
 * label as a deadline instead of a sleep.
 */

import assert from "node:assert/strict";
import { preferred, select } from "../workers/handlers/approval_processor/grouper.ts";
import { type ApHarness, BUSY_THROTTLES, startAp } from "./fixtures/approval_processor/harness.ts";

/** The grouper test config: both busy pipelines get Nthr = 17. */
const GROUPER_CONFIG = BUSY_THROTTLES;

const CWB = { group: "Burst", pipeline: "CWB", search: "AllSky" };
const GSTLAL = { group: "CBC", pipeline: "gstlal", search: "LowMass" };

/** The five-trigger mix of simulate_group.sh, near one gpstime. */
function five(ap: ApHarness, shift = 0, winnerFar = 2e-8) {
  return {
    cwbDouble: ap.addEvent({ ...CWB, gpstime: 1e9 + 0.11, far: 1e-9 }),
    gstlalDouble: ap.addEvent({ ...GSTLAL, gpstime: 1e9 + 0.32, far: 3e-8 }),
    cwbTriple: ap.addEvent({
      ...CWB,
      gpstime: 1e9 + 0.53 + shift,
      far: 1e-9,
      instruments: "H1,L1,V1",
    }),
    gstlalTriple: ap.addEvent({
      ...GSTLAL,
      gpstime: 1e9 + 0.74 + shift,
      far: winnerFar,
      instruments: "H1,L1,V1",
    }),
    gstlalHV: ap.addEvent({ ...GSTLAL, gpstime: 1e9 + 0.95, far: 5e-8, instruments: "H1,V1" }),
  };
}

function selectedOnes(ap: ApHarness, ids: string[]): string[] {
  return ids.filter((id) => ap.server.labelsOf(id).includes("EM_Selected"));
}

for (const schema of ["legacy", "current"] as const) {
  Deno.test(`G-R: one group of five; the lowest-FAR gstlal event is selected, four superseded (${schema})`, async () => {
    await using ap = await startAp({ schema, config: GROUPER_CONFIG });
    const e = five(ap);
    const ids = Object.values(e);
    await ap.pump();
    assert.equal(ap.items("Grouper").length, 1);
    await ap.advance(59);
    assert.deepEqual(selectedOnes(ap, ids), [], "no decision before decisionWin");
    await ap.advance(1);
    assert.deepEqual(selectedOnes(ap, ids), [e.gstlalTriple]);
    for (const id of ids.filter((id) => id !== e.gstlalTriple)) {
      assert.ok(ap.server.labelsOf(id).includes("EM_Superseded"), id);
      assert.equal(ap.record(id).currentstate, "superseded");
    }
    assert.equal(ap.record(e.gstlalTriple).currentstate, "preliminary_to_initial");
    const tag = "Group_1000000000.11";
    for (const id of ids) {
      const entry = ap.server.logsOf(id).find((l) => l.comment === "AP: Grouper made a selection.");
      assert.equal(entry?.filename, `${tag}.json`, id);
      const json = JSON.parse(
        new TextDecoder().decode(ap.server.fileVersions(id, `${tag}.json`)[0]),
      );
      assert.deepEqual(json, {
        groupTag: tag,
        EM_Selected: e.gstlalTriple,
        EM_Superseded: ids.filter((x) => x !== e.gstlalTriple),
      });
      assert.deepEqual(ap.record(id).grouperGroupMembers, ids);
    }
    assert.equal(ap.items("Grouper").length, 0, "the Grouper is done");
  });
}

Deno.test("G-R variants: the lower FAR decides among gstlal events; a winning H1,V1 event is rejected by ifosCheck", async () => {
  await using ap = await startAp({ config: GROUPER_CONFIG });
  const e = five(ap, 0, 9e-8);
  await ap.pump();
  await ap.advance(60);
  assert.deepEqual(selectedOnes(ap, Object.values(e)), [e.gstlalDouble]);
  await using ap2 = await startAp({ config: GROUPER_CONFIG });
  const hv = ap2.addEvent({ ...GSTLAL, gpstime: 1e9, far: 1e-9, instruments: "H1,V1" });
  ap2.addEvent({ ...CWB, gpstime: 1e9 + 0.5, far: 1e-10 });
  await ap2.pump();
  await ap2.advance(60);
  assert.ok(ap2.server.labelsOf(hv).includes("EM_Selected"));
  assert.equal(ap2.record(hv).currentstate, "rejected");
  assert.deepEqual(ap2.voevents(hv), [], "nothing is sent for the group");
});

Deno.test("G-L: a trigger arriving after the decision is superseded at once; no new Grouper", async () => {
  await using ap = await startAp({ config: GROUPER_CONFIG });
  const e = five(ap);
  await ap.pump();
  await ap.advance(90);
  const late = ap.addEvent({ ...GSTLAL, gpstime: 1e9 + 0.6, far: 1e-12, instruments: "H1,L1" });
  await ap.pump();
  assert.ok(ap.server.labelsOf(late).includes("EM_Superseded"));
  assert.equal(ap.record(late).currentstate, "superseded");
  assert.equal(ap.items("Grouper").length, 0);
  assert.deepEqual(selectedOnes(ap, [...Object.values(e), late]), [e.gstlalTriple]);
});

Deno.test("G-M: the triple pair 3 s later forms a second group; one selection per group", async () => {
  await using ap = await startAp({ config: GROUPER_CONFIG });
  const e = five(ap, 3);
  await ap.pump();
  assert.equal(ap.items("Grouper").length, 2);
  await ap.advance(60);
  const chosen = selectedOnes(ap, Object.values(e));
  assert.deepEqual(chosen.sort(), [e.gstlalDouble, e.gstlalTriple].sort());
  assert.equal(ap.record(e.cwbTriple).grouperGroupTag, ap.record(e.gstlalTriple).grouperGroupTag);
  assert.notEqual(ap.record(e.cwbDouble).grouperGroupTag, ap.record(e.cwbTriple).grouperGroupTag);
});

Deno.test("G-J: ranks, then the lower FAR; a missing FAR never wins; ties keep the first", () => {
  const m = (
    graceid: string,
    group: string,
    pipeline: string,
    far: number | null,
    search = "",
  ) => ({
    graceid,
    group,
    pipeline,
    search,
    far,
  });
  assert.equal(select([m("a", "Burst", "CWB", 1e-8), m("b", "Burst", "LIB", 2e-9)])?.graceid, "b");
  assert.equal(
    select([
      m("a", "CBC", "pycbc", 5e-8),
      m("b", "CBC", "MBTAOnline", 1e-8),
      m("c", "CBC", "gstlal", 3e-8),
    ])
      ?.graceid,
    "b",
  );
  assert.equal(
    select([m("a", "Burst", "CWB", 1e-12), m("b", "CBC", "gstlal", 1e-7)])?.graceid,
    "b",
  );
  assert.equal(
    select([m("a", "CBC", "gstlal", null), m("b", "CBC", "gstlal", 1e-7)])?.graceid,
    "b",
  );
  assert.equal(select([m("a", "CBC", "gstlal", 1e-8), m("b", "CBC", "pycbc", 1e-8)])?.graceid, "a");
  assert.equal(
    preferred(m("x", "CBC", "gstlal", 1e-9, "AllSkyLong"), m("y", "CBC", "gstlal", 1e-7, "AllSky")),
    false,
    "AllSkyLong ranks below AllSky",
  );
  assert.equal(preferred(m("x", "CBC", "newpipe", 1e-9), m("y", "CBC", "gstlal", 1e-7)), false);
});

const MASTER = "\n[grouper]\nuse_grouper = no\n";

Deno.test("master flow: the first checks run when wait_for_hardware_inj is over, without blocking others", async () => {
  await using ap = await startAp({ config: MASTER });
  const g = ap.addEvent({ ...GSTLAL, gpstime: 1e9 });
  await ap.pump();
  assert.equal(ap.record(g).currentstate, "new_to_preliminary");
  ap.uploadSkymap(g, "bayestar.fits.gz");
  const other = ap.addEvent({ ...GSTLAL, gpstime: 1e9 + 500 });
  await ap.pump();
  assert.equal(
    ap.record(other).currentstate,
    "new_to_preliminary",
    "the other event was taken at once",
  );
  assert.equal(ap.record(g).currentstate, "new_to_preliminary", "no checks during the wait");
  await ap.advance(9.9);
  assert.deepEqual(ap.voevents(g), []);
  await ap.advance(0.1);
  assert.equal(ap.record(g).currentstate, "preliminary_to_initial");
  assert.ok(ap.comments(g).includes("AP: Passed all new_to_preliminary checks."));
  assert.deepEqual(ap.voevents(g).map((v) => v.skymap_filename), ["bayestar.fits.gz"]);
});

Deno.test("master flow: an INJ label applied during the wait rejects before any check", async () => {
  await using ap = await startAp({ config: MASTER });
  const g = ap.addEvent({ ...GSTLAL, gpstime: 1e9 });
  await ap.pump();
  await ap.advance(5);
  ap.server.addLabel(g, "INJ");
  await ap.advance(10);
  assert.equal(ap.record(g).currentstate, "rejected");
  assert.deepEqual(ap.voevents(g), []);
  assert.ok(!ap.comments(g).some((c) => c.includes("Passed all")));
});
