/**
 * The original's virgoImplementation run (spec §8): nine events with
 * humans and lvem sky maps, iDQ for Burst, Virgo DQ statements; with the
 * [opt-virgo] switch the statements decide, without it they are ignored.
 */

import assert from "node:assert/strict";
import { type ApHarness, BUSY_THROTTLES, startAp } from "./fixtures/approval_processor/harness.ts";

const BUSY = BUSY_THROTTLES;

interface Case {
  pipeline: "CWB" | "gstlal";
  ifos: string;
  idq?: "pass" | "fail";
  vetoed?: boolean;
  /** With the Virgo statement used, and without. */
  expect: [string, string];
}

const CASES: Case[] = [
  {
    pipeline: "CWB",
    ifos: "H1,L1,V1",
    idq: "pass",
    vetoed: false,
    expect: ["EM_READY", "EM_READY"],
  },
  { pipeline: "CWB", ifos: "H1,L1,V1", idq: "pass", vetoed: true, expect: ["DQV", "EM_READY"] },
  { pipeline: "CWB", ifos: "H1,L1,V1", idq: "fail", vetoed: false, expect: ["DQV", "DQV"] },
  { pipeline: "CWB", ifos: "H1,L1,V1", idq: "fail", vetoed: true, expect: ["DQV", "DQV"] },
  { pipeline: "gstlal", ifos: "H1,L1,V1", vetoed: false, expect: ["EM_READY", "EM_READY"] },
  { pipeline: "gstlal", ifos: "H1,L1,V1", vetoed: true, expect: ["DQV", "EM_READY"] },
  { pipeline: "CWB", ifos: "H1,L1", idq: "pass", expect: ["EM_READY", "EM_READY"] },
  { pipeline: "CWB", ifos: "H1,L1", idq: "fail", expect: ["DQV", "DQV"] },
  { pipeline: "gstlal", ifos: "H1,L1", expect: ["EM_READY", "EM_READY"] },
];

async function run(ap: ApHarness, c: Case, i: number): Promise<string> {
  const burst = c.pipeline === "CWB";
  const g = ap.addEvent({
    group: burst ? "Burst" : "CBC",
    pipeline: c.pipeline,
    search: burst ? "AllSky" : "LowMass",
    gpstime: 1e9 + 100 * i,
    instruments: c.ifos,
  });
  await ap.pump();
  await ap.advance(60);
  ap.uploadSkymap(g, "skymap.fits.gz");
  if (c.idq) {
    const h1 = c.idq === "pass" ? "0.5" : "1e-06";
    ap.server.addLog(g, `minimum glitch-FAP for ovl at H1 with 1 s window is ${h1}`, { tags: [] });
    ap.server.addLog(g, "minimum glitch-FAP for ovl at L1 with 1 s window is 0.5", { tags: [] });
  }
  if (c.vetoed !== undefined) {
    const verdict = c.vetoed ? "IS" : "IS NOT";
    ap.server.addLog(g, `V1 veto channel V1:DQ_VETO: this event ${verdict} vetoed`, { tags: [] });
  }
  await ap.pump();
  for (const ifo of c.ifos.split(",")) await ap.signoff(g, "OP", "OK", ifo);
  await ap.signoff(g, "ADV", "OK");
  await ap.pump();
  return g;
}

for (const [index, name] of [[0, "used"], [1, "ignored (the baseline)"]] as const) {
  Deno.test(`Virgo DQ statements ${name}: the virgoImplementation run's EM_READY and DQV events`, async () => {
    const virgo = index === 0 ? "\n[virgo_dqCheck]\nuse_virgoDQComment = yes\n" : "";
    await using ap = await startAp({ config: BUSY + virgo });
    const got: string[] = [];
    for (const [i, c] of CASES.entries()) {
      const g = await run(ap, c, i);
      const labels = ap.server.labelsOf(g);
      got.push(labels.includes("DQV") ? "DQV" : labels.includes("EM_READY") ? "EM_READY" : "none");
      if (labels.includes("EM_READY")) {
        assert.equal(ap.record(g).currentstate, "initial_to_update", `case ${i}`);
        const vo = ap.voevents(g).map((v) => [v.voevent_type, v.internal]);
        assert.deepEqual(vo, [["PR", true], ["PR", true], ["IN", true]], `case ${i}`);
        for (const ifo of c.ifos.split(",")) assert.ok(labels.includes(`${ifo}OPS`), `case ${i}`);
        assert.ok(labels.includes("ADVREQ"));
      }
    }
    assert.deepEqual(got, CASES.map((c) => c.expect[index]));
  });
}
