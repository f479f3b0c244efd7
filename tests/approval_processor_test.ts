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

/** Runs an event through the Grouper to preliminary_to_initial (or its rejection). */
async function selected(schema: Schema, input: Record<string, unknown>, config = "") {
  const ap = await startAp({ schema, config });
  const g = ap.addEvent({ ...CBC, ...input });
  await ap.pump();
  await ap.advance(60);
  return { ap, g };
}

for (const schema of SCHEMAS) {
  Deno.test(`a high FAR is held: rejected at selection, no VOEvent, no DQV (${schema})`, async () => {
    const { ap, g } = await selected(schema, { far: 1.9e-7 });
    await using _ = ap;
    assert.equal(ap.record(g).currentstate, "rejected");
    assert.deepEqual(ap.voevents(g), []);
    assert.deepEqual(ap.server.labelsOf(g), ["EM_Selected"]);
    const comments = ap.comments(g);
    assert.ok(
      comments.includes("AP: Candidate event rejected due to large FAR. 1.9e-07 >= 1.9e-07"),
    );
    assert.ok(comments.includes("AP: Failed farCheck in currentstate: selected_to_preliminary."));
    assert.ok(comments.includes("AP: State: selected_to_preliminary --> rejected."));
  });

  Deno.test(`a missing or NaN FAR is rejected with the missing-FAR log (${schema})`, async () => {
    for (const far of [null, "NaN"]) {
      const { ap, g } = await selected(schema, { far });
      await using _ = ap;
      assert.equal(ap.record(g).currentstate, "rejected");
      assert.equal(ap.record(g).far, null);
      assert.ok(ap.comments(g).includes("AP: Candidate event is missing FAR."));
    }
  });

  Deno.test(`ifosCheck: H1,L1,V1 passes, H1,V1 is rejected without DQV (${schema})`, async () => {
    await using ap = await startAp({ schema });
    const triple = ap.addEvent({ ...CBC, instruments: "H1,L1,V1" });
    const pair = ap.addEvent({ ...CBC, gpstime: 1e9 + 100, instruments: "H1,V1" });
    await ap.pump();
    await ap.advance(60);
    assert.equal(ap.record(triple).currentstate, "preliminary_to_initial");
    assert.deepEqual(ap.server.labelsOf(triple), [
      "EM_Selected",
      "H1OPS",
      "L1OPS",
      "V1OPS",
      "ADVREQ",
    ]);
    assert.equal(ap.record(pair).currentstate, "rejected");
    const log = ap.server.logsOf(pair).find((l) =>
      l.comment === "AP: Candidate event rejected due to single ifo OR V1 in two-ifo coinc"
    );
    assert.deepEqual(log?.tag_names, [], "written without a tag");
    assert.ok(!ap.server.labelsOf(pair).includes("DQV"));
  });

  Deno.test(`iDQ: a low minimum FAP rejects a Burst event early with DQV, and its preliminary is retracted (${schema})`, async () => {
    const { ap, g } = await selected(schema, { group: "Burst", pipeline: "CWB", search: "AllSky" });
    await using _ = ap;
    assert.equal(ap.record(g).currentstate, "preliminary_to_initial");
    ap.server.addLog(g, "minimum glitch-FAP for ovl at H1 with 2 s window is 0.001", { tags: [] });
    await ap.pump();
    assert.equal(ap.record(g).currentstate, "rejected");
    assert.ok(ap.server.labelsOf(g).includes("DQV"));
    const comments = ap.comments(g);
    assert.ok(comments.includes(
      "AP: Finished running iDQ checks. Candidate event rejected because incomplete joint min-FAP " +
        "value already less than iDQ threshold. 0.001 < 0.01",
    ));
    assert.ok(comments.includes("AP: Labeling DQV."));
    assert.deepEqual(ap.voevents(g).map((v) => v.voevent_type), ["PR", "RE"]);
  });

  Deno.test(`iDQ: H1 and L1 at 0.5 give a joint FAP of 0.25, which passes (${schema})`, async () => {
    const { ap, g } = await selected(schema, { group: "Burst", pipeline: "CWB", search: "AllSky" });
    await using _ = ap;
    ap.server.addLog(g, "minimum glitch-FAP for ovl at H1 with 2 s window is 0.5", { tags: [] });
    ap.server.addLog(g, "minimum glitch-FAP for ovl at L1 with 2 s window is 0.5", { tags: [] });
    await ap.pump();
    assert.equal(ap.record(g).idq_joint_fapCheckresult, true);
    assert.ok(
      ap.comments(g).includes(
        "AP: Finished running iDQ checks. Candidate event passed iDQ checks. 0.25 > 0.01",
      ),
    );
    assert.equal(ap.record(g).currentstate, "preliminary_to_initial");
  });

  Deno.test(`signoffs: an operator NO from one of two sites rejects at once, without DQV (${schema})`, async () => {
    const { ap, g } = await selected(schema, {});
    await using _ = ap;
    await ap.signoff(g, "OP", "NO", "L1");
    await ap.pump();
    assert.equal(ap.record(g).currentstate, "rejected");
    const comments = ap.comments(g);
    assert.ok(comments.includes("AP: Candidate event failed operator signoff check."));
    assert.ok(
      comments.includes(
        "AP: Failed operator_signoffCheck in currentstate: preliminary_to_initial.",
      ),
    );
    assert.ok(comments.includes(
      "AP: Not labeling DQV because signoffCheck is separate from explicit data quality checks.",
    ));
    assert.ok(!ap.server.labelsOf(g).includes("DQV"));
    assert.ok(!ap.server.labelsOf(g).includes("EM_READY"));
  });

  Deno.test(`signoffs: an advocate NO rejects, without DQV; an advocate OK with operators OK passes (${schema})`, async () => {
    for (const status of ["NO", "OK"] as const) {
      const { ap, g } = await selected(schema, {});
      await using _ = ap;
      ap.uploadSkymap(g, "bayestar.fits.gz");
      await ap.signoff(g, "OP", "OK", "H1");
      await ap.signoff(g, "OP", "OK", "L1");
      await ap.signoff(g, "ADV", status);
      await ap.pump();
      const labels = ap.server.labelsOf(g);
      if (status === "NO") {
        assert.equal(ap.record(g).currentstate, "rejected");
        assert.ok(ap.comments(g).includes("AP: Candidate event failed advocate signoff check."));
        assert.ok(!labels.includes("DQV") && !labels.includes("EM_READY"));
      } else {
        assert.equal(ap.record(g).currentstate, "initial_to_update");
        assert.ok(labels.includes("EM_READY"));
      }
    }
  });

  Deno.test(`injections: one found near the gpstime labels INJ and rejects; treated as real with hardware_inj = yes (${schema})`, async () => {
    for (const real of [false, true]) {
      await using ap = await startAp({
        schema,
        config: real ? "\n[labelCheck]\nhardware_inj = yes\n" : "",
      });
      ap.server.addEvent({ group: "CBC", pipeline: "HardwareInjection", gpstime: 1e9 + 1.5 });
      const g = ap.addEvent(CBC);
      await ap.pump();
      await ap.advance(60);
      assert.ok(ap.server.labelsOf(g).includes("INJ"));
      const comments = ap.comments(g);
      if (!real) {
        assert.equal(ap.record(g).currentstate, "rejected");
        assert.ok(comments.includes(
          "AP: Ignoring new event because we found a hardware injection +/- 2.0 seconds of event " +
            "gpstime or from Virgo injections statement if V1 is involved.",
        ));
        assert.deepEqual(ap.voevents(g), []);
      } else {
        assert.equal(
          ap.record(g).currentstate,
          "preliminary_to_initial",
          "INJ is no bad label then",
        );
        assert.ok(comments.includes(
          "AP: Found hardware injection +/- 2.0 seconds of event gpstime or from Virgo injections " +
            "statement if V1 is involved but treating as real event in config.",
        ));
        assert.equal(ap.voevents(g)[0]?.hardware_inj, true);
      }
    }
  });

  Deno.test(`bad labels: DQV after a preliminary rejects with one retraction; a second bad label sends none (${schema})`, async () => {
    const { ap, g } = await selected(schema, {});
    await using _ = ap;
    ap.server.addLabel(g, "DQV");
    await ap.pump();
    assert.equal(ap.record(g).currentstate, "rejected");
    ap.server.addLabel(g, "H1NO");
    await ap.pump();
    assert.deepEqual(ap.voevents(g).map((v) => v.voevent_type), ["PR", "RE"]);
    assert.equal(ap.voevents(g)[1]?.internal, true, "force_all_internal");
  });

  Deno.test(`the once-only gate: a repeated EM_READY label sends no second initial VOEvent (${schema})`, async () => {
    const { ap, g } = await selected(schema, {});
    await using _ = ap;
    ap.uploadSkymap(g, "bayestar.fits.gz");
    ap.server.addLabel(g, "EM_READY");
    await ap.pump();
    const label = schema === "legacy"
      ? { uid: g, alert_type: "label", description: "EM_READY", file: "" }
      : { uid: g, alert_type: "label_added", data: { name: "EM_READY" } };
    await ap.deliver(label);
    await ap.pump();
    assert.deepEqual(ap.voevents(g).map((v) => v.voevent_type), ["PR", "PR", "IN"]);
    assert.equal(ap.record(g).currentstate, "initial_to_update");
    const lines = ap.lines(g);
    assert.equal(lines.filter((l) => l.endsWith("-- Sending initial VOEvent.")).length, 1);
    assert.ok(!lines.some((l) => l.includes("This initial VOEvent has been sent previously")));
  });
}

Deno.test("a per-pipeline FAR threshold (farthresh[gstlal.LowMass]) overrides the default", async () => {
  const { ap, g } = await selected(
    "legacy",
    {},
    "\n[farCheck]\nfarthresh[gstlal.LowMass] = 1e-9\n",
  );
  await using _ = ap;
  assert.equal(ap.record(g).currentstate, "rejected");
  assert.ok(
    ap.comments(g).includes("AP: Candidate event rejected due to large FAR. 1e-08 >= 1e-09"),
  );
});

Deno.test("VOEvent flags: preliminary_internal, open alerts below open_default_farthresh, vetted", async () => {
  const config =
    "\n[general]\nforce_all_internal = no\n[farCheck]\nopen_default_farthresh = 1e-6\n";
  const { ap, g } = await selected("legacy", {}, config);
  await using _ = ap;
  ap.uploadSkymap(g, "bayestar.fits.gz");
  ap.server.addLabel(g, "EM_READY");
  await ap.pump();
  ap.server.addLabel(g, "DQV");
  await ap.pump();
  const flags = ap.voevents(g).map((
    v,
  ) => [v.voevent_type, v.internal, v.open_alert, v.skymap_type]);
  assert.deepEqual(flags, [
    ["PR", true, true, null],
    ["PR", true, true, "bayestar-CBCLowMass"],
    ["IN", false, true, "bayestar-CBCLowMass"],
    ["RE", false, true, null],
  ]);
  assert.deepEqual(ap.record(g).voevents.map((v) => v.replace(/^\d+-\(.*?\):/, "")), [
    "(1,0,1,0,None)-preliminary",
    "(1,0,1,0,bayestar.fits.gz)-preliminary",
    "(0,1,1,0,bayestar.fits.gz)-initial",
    "(0,1,1,0,None)-retraction",
  ]);
});
