/**
 * approval_processor against the GraceDB test server, in a real child
 * runtime: the original's acceptance scenarios (spec §8), in both alert
 * schemas, with GraceDB's own alerts fed back as LVAlert would.
 */

import assert from "node:assert/strict";
import { type Schema, startAp } from "./fixtures/approval_processor/harness.ts";

const SCHEMAS: Schema[] = ["legacy", "current"];
const CBC = { group: "CBC", pipeline: "gstlal", search: "LowMass", gpstime: 1e9 };

for (const schema of SCHEMAS) {
  Deno.test(`a clean event goes to complete with its labels and VOEvents in order (${schema})`, async () => {
    await using ap = await startAp({ schema });
    const g = ap.addEvent(CBC);
    await ap.pump();
    assert.equal(ap.record(g).currentstate, "new_awaiting_grouperSelection");
    assert.deepEqual(ap.comments(g), ["AP: Created event dictionary."]);

    await ap.advance(60);
    assert.equal(ap.record(g).currentstate, "preliminary_to_initial");
    assert.deepEqual(ap.server.labelsOf(g), ["EM_Selected", "H1OPS", "L1OPS", "ADVREQ"]);
    const adv = ap.mails.filter((m) => m.subject === `${g} passed criteria for follow-up`);
    assert.equal(adv.length, 1);
    assert.deepEqual(adv[0]!.recipients, ["advocates@example.org"]);

    ap.uploadSkymap(g, "bayestar.fits.gz");
    await ap.pump();
    await ap.signoff(g, "OP", "OK", "H1");
    await ap.signoff(g, "OP", "OK", "L1");
    await ap.pump();
    assert.ok(!ap.server.labelsOf(g).includes("EM_READY"), "advocates have not signed off");
    await ap.signoff(g, "ADV", "OK");
    await ap.pump();
    assert.equal(ap.record(g).currentstate, "initial_to_update");

    ap.uploadSkymap(g, "lalinference.fits.gz");
    await ap.pump();
    assert.equal(ap.record(g).currentstate, "complete");
    assert.deepEqual(ap.server.labelsOf(g), [
      "EM_Selected",
      "H1OPS",
      "L1OPS",
      "ADVREQ",
      "EM_READY",
      "PE_READY",
    ]);
    const vo = ap.voevents(g).map((v) => [v.voevent_type, v.skymap_filename, v.internal]);
    assert.deepEqual(vo, [
      ["PR", null, true],
      ["PR", "bayestar.fits.gz", true],
      ["IN", "bayestar.fits.gz", true],
      ["UP", "lalinference.fits.gz", true],
    ]);
    const comments = ap.comments(g).filter((c) => c.startsWith("AP: "));
    assert.deepEqual(comments, [
      "AP: Created event dictionary.",
      "AP: Grouper made a selection.",
      "AP: Candidate event has low enough FAR. 1e-08 < 1.9e-07",
      "AP: No hardware injection found near event gpstime +/- 2.0 seconds or from Virgo injections statement if V1 is involved.",
      "AP: Passed all selected_to_preliminary checks.",
      "AP: Sending preliminary VOEvent.",
      "AP: State: selected_to_preliminary --> preliminary_to_initial.",
      "AP: Labeling H1OPS.",
      "AP: Labeling L1OPS.",
      "AP: Labeling ADVREQ.",
      "AP: Candidate event passed operator signoff check.",
      "AP: Candidate event passed advocate signoff check.",
      "AP: Passed all preliminary_to_initial checks.",
      "AP: Labeling EM_READY.",
      "AP: Received EM_READY label. Sending initial VOEvent.",
      "AP: State: preliminary_to_initial --> initial_to_update.",
      "AP: Passed all initial_to_update checks.",
      "AP: Labeling PE_READY.",
      "AP: Received PE_READY label. Sending update VOEvent.",
      "AP: State: initial_to_update --> complete.",
    ]);
  });
}
