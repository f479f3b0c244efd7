/**
 * approval_processor over an event's life: forgetting, rebuilding a
 * record from GraceDB, MDC, offline and external triggers, RAVEN, bad
 * input, GraceDB failures, and superevents in the current schema.
 */

import assert from "node:assert/strict";
import type { Alert } from "../lib/core/alert.ts";
import { GraceDbClient } from "../lib/gracedb/mod.ts";
import { type ApHarness, startAp } from "./fixtures/approval_processor/harness.ts";

const CBC = { group: "CBC", pipeline: "gstlal", search: "LowMass", gpstime: 1e9 };

function count(list: string[], item: string): number {
  return list.filter((x) => x === item).length;
}

async function throughSelection(ap: ApHarness, input: Record<string, unknown> = {}) {
  const g = ap.addEvent({ ...CBC, ...input });
  await ap.pump();
  await ap.advance(60);
  return g;
}

Deno.test("the forget timer drops a record after forgetmenow_timeout; the next alert rebuilds it", async () => {
  await using ap = await startAp({ config: "\n[general]\nforgetmenow_timeout = 1000\n" });
  const g = await throughSelection(ap);
  await ap.advance(999);
  assert.equal(ap.record(g).currentstate, "preliminary_to_initial");
  await ap.advance(2);
  assert.deepEqual(ap.runtime.queue.byGraceId(g), [], "record and work items are gone");
  assert.ok(ap.lines(g).includes(`${g} -- Removing event dictionary upon expiration time.`));

  await ap.signoff(g, "OP", "OK", "H1");
  await ap.pump();
  const rec = ap.record(g);
  assert.equal(rec.currentstate, "preliminary_to_initial", "the state comes back from GraceDB");
  assert.equal(rec.voevents.length, 1);
  assert.equal(rec.farCheckresult, true);
  assert.deepEqual(rec.operatorsignoffs, { H1: "OK" });
  const comments = ap.comments(g);
  assert.equal(count(comments, "AP: Created event dictionary."), 2);
  assert.equal(count(comments, "AP: Labeling H1OPS."), 1, "what AP wrote is not written again");
  assert.equal(ap.items("ApEvent").length, 1);
  assert.equal(ap.runtime.queue.byGraceId(g)[0]?.tasks[0]?.name, "ForgetMeNow");
});

Deno.test("a signoff for an event never seen rebuilds its record from GraceDB, then goes on", async () => {
  await using ap = await startAp();
  const g = ap.server.addEvent({ ...CBC, far: 1e-8 });
  const gracedb = new GraceDbClient(ap.server.url);
  ap.server.addLog(g, "AP: Created event dictionary.", { tags: ["em_follow"] });
  ap.server.addLog(g, "AP: Candidate event has low enough FAR. 1e-08 < 1.9e-07", { tags: [] });
  ap.server.addLog(g, "skymap", {
    tags: ["lvem"],
    file: { name: "bayestar.fits.gz", data: "x" },
    issuer: "bayestar",
  });
  await gracedb.createVoEvent(g, "preliminary", {
    internal: true,
    skymapFilename: "bayestar.fits.gz",
    skymapType: "bayestar-CBCLowMass",
  });
  for (const label of ["EM_Selected", "H1OPS", "L1OPS", "ADVREQ"]) ap.server.addLabel(g, label);
  ap.server.addSignoff(g, { signoff_type: "OP", instrument: "H1", status: "OK" });
  ap.track(g);
  await ap.signoff(g, "OP", "OK", "L1");
  const rec = ap.record(g);
  assert.equal(rec.currentstate, "preliminary_to_initial");
  assert.deepEqual(rec.voevents, [
    "1-(internal,vetted,open_alert,hardware_inj,skymap):(1,0,0,0,bayestar.fits.gz)-preliminary",
  ]);
  assert.equal(rec.lastsentpreliminaryskymap, "bayestar.fits.gz");
  assert.deepEqual(rec.lvemskymaps, { "1-bayestar.fits.gz": "bayestar" });
  assert.deepEqual(rec.operatorsignoffs, { H1: "OK", L1: "OK" });
  assert.equal(rec.farCheckresult, true);
  await ap.signoff(g, "ADV", "OK");
  await ap.pump();
  assert.equal(ap.record(g).currentstate, "initial_to_update");
  assert.deepEqual(
    ap.voevents(g).map((v) => v.voevent_type),
    ["PR", "IN"],
    "no second preliminary",
  );
});

Deno.test("MDC events (graceid M...) get only the MDC log; offline ones with ignore_offline_triggers", async () => {
  await using ap = await startAp({ config: "\n[general]\nignore_offline_triggers = yes\n" });
  const m = ap.addEvent({ ...CBC, search: "MDC" });
  const off = ap.addEvent({ ...CBC, gpstime: 1e9 + 100, instruments: "H1,L1,V1", offline: true });
  await ap.pump();
  await ap.advance(70);
  ap.server.addLabel(m, "H1OK");
  ap.server.addLabel(off, "H1OK");
  await ap.pump();
  assert.match(m, /^M/);
  assert.deepEqual(ap.comments(m), [
    "AP: Created event dictionary.",
    "AP: Mock data challenge or simulation. Ignoring.",
  ]);
  assert.deepEqual(ap.comments(off), [
    "AP: Created event dictionary.",
    "AP: Offline trigger. Ignoring.",
  ]);
  assert.equal(ap.items("Grouper").length + ap.items("PipelineThrottle").length, 0);
});

Deno.test("an external trigger's on-source significance becomes a coincidence JSON and a mail", async () => {
  await using ap = await startAp();
  const e = ap.addEvent({ group: "External", pipeline: "Fermi", search: "GRB", gpstime: 1e9 });
  await ap.pump();
  const comment =
    "PyGRB Online: Significant event in on-source (FAP = 0.0012 for the most significant event)";
  ap.server.addLog(e, comment, { tags: [] });
  await ap.pump();
  const upload = ap.server.logsOf(e).find((l) =>
    l.comment === "GRB-GW Coincidence JSON file: grb_online_json"
  );
  assert.equal(upload?.filename, `coinc_${e}.json`);
  const json = JSON.parse(
    new TextDecoder().decode(ap.server.fileVersions(e, `coinc_${e}.json`)[0]),
  );
  assert.match(
    json.message,
    new RegExp(`coincident with ${e} produced .* Probability of such a coincidence is 0.0012\\.`),
  );
  assert.equal(
    JSON.parse(ap.record(e).grb_online_json!).loaded_to_gracedb,
    1,
    "the upload came back",
  );
  const mail = ap.mails.find((m) => m.subject === `Coincidence JSON created for ${e}`);
  assert.deepEqual(mail?.recipients, ["cbc+grb@example.org", "burst+grb@example.org"]);
  assert.equal(ap.items("PipelineThrottle").length, 0, "no throttle for external triggers");
});

Deno.test("a RAVEN coincidence uploads the JSON to both events, naming the external pipeline", async () => {
  await using ap = await startAp();
  const e = ap.server.addEvent({
    group: "External",
    pipeline: "Swift",
    search: "GRB",
    gpstime: 1e9,
  });
  const g = await throughSelection(ap);
  ap.server.addLog(
    g,
    `RAVEN: Temporal coincidence with external trigger <a href='https://x/events/${e}'>${e}</a> ` +
      "gives a coincident FAR = 1.2e-05 Hz",
    { tags: ["ext_coinc"] },
  );
  await ap.pump();
  for (const id of [g, e]) {
    const name = `coinc_${id}.json`;
    assert.ok(ap.comments(id).includes("GRB-GW Coincidence JSON file: em_coinc_json"), id);
    const json = JSON.parse(new TextDecoder().decode(ap.server.fileVersions(id, name)[0]));
    assert.match(
      json.message,
      new RegExp(
        `GRB trigger ${e} from Swift and a gravitational-wave trigger ${g}\\. .* is 1\\.2e-05\\.`,
      ),
    );
  }
  assert.equal(ap.record(g).external_trigger, e);
  assert.ok(ap.mails.some((m) => m.subject === `Coincidence JSON created for ${e}`));
});

Deno.test("bad input is logged and changes nothing: malformed alerts, unknown events, out of order", async () => {
  await using ap = await startAp();
  await ap.deliver({ uid: "G1", alert_type: "label", file: "" });
  await ap.deliver({ uid: "G1", alert_type: "new" });
  await ap.deliver({ uid: "G1", alert_type: "signoff", object: { instrument: "H1" } });
  await ap.deliver({ uid: "no such id!", alert_type: "update", object: {} });
  assert.equal(ap.events("ap_bad_alert").length, 4);
  await ap.deliver({ uid: "G999", alert_type: "label", description: "DQV", file: "" });
  assert.equal(ap.events("ap_unknown_event").length, 1);
  assert.equal(ap.runtime.queue.size, 0, "nothing is left behind");
  // A signoff before the event's new alert: rebuilt from GraceDB, then the new alert is taken.
  const g = ap.track(ap.server.addEvent({ ...CBC }));
  await ap.signoff(g, "OP", "OK", "H1");
  assert.equal(ap.record(g).currentstate, "new_awaiting_grouperSelection");
  const object = await (await fetch(`${ap.server.url}events/${g}`)).json();
  await ap.deliver({ uid: g, alert_type: "new", object });
  await ap.deliver({ uid: g, alert_type: "new", object });
  await ap.pump();
  assert.equal(ap.items("Grouper").length, 1, "the late new alert went to the Grouper, once");
  await ap.advance(60);
  assert.equal(ap.record(g).currentstate, "preliminary_to_initial");
  assert.deepEqual(ap.record(g).operatorsignoffs, { H1: "OK" });
  assert.equal(ap.events("task_failed").length, 0);
});

Deno.test("GraceDB failing: actions are kept, reported once, retried, and completed in order", async () => {
  await using ap = await startAp();
  const g = ap.addEvent(CBC);
  await ap.pump();
  const fault = ap.server.inject({
    path: /\/voevent\/$/,
    method: "POST",
    status: 503,
    times: 1000,
  });
  await ap.advance(60);
  const rec = ap.record(g);
  assert.equal(rec.currentstate, "selected_to_preliminary", "the state waits for the VOEvent");
  assert.deepEqual(ap.server.labelsOf(g), ["EM_Selected"], "nothing after the VOEvent yet");
  assert.ok(ap.events("ap_gracedb_retry").length >= 1);
  const failing = ap.mails.filter((m) =>
    m.subject === `approval_processor: GraceDB failing for ${g}`
  );
  assert.equal(failing.length, 1);
  const vo = ap.mails.filter((m) => m.subject === `Problem sending ${g} VOEvent: preliminary`);
  assert.deepEqual(vo.map((m) => m.recipients), [["voevent-errors@example.org"]]);
  await ap.advance(30);
  assert.equal(
    ap.mails.filter((m) => m.subject.includes("GraceDB failing")).length,
    1,
    "reported once",
  );
  fault.remove();
  await ap.advance(60);
  assert.equal(ap.record(g).currentstate, "preliminary_to_initial");
  assert.deepEqual(ap.voevents(g).map((v) => v.voevent_type), ["PR"]);
  assert.deepEqual(ap.server.labelsOf(g), ["EM_Selected", "H1OPS", "L1OPS", "ADVREQ"]);
  assert.equal(count(ap.comments(g), "AP: Sending preliminary VOEvent."), 1);
  assert.deepEqual(ap.record(g).voeventerrors, [], "the error is cleared by the success");
  assert.equal(ap.events("ap_gracedb_recovered").length, 1);
});

Deno.test("a log write GraceDB took but never answered is not written again", async () => {
  await using ap = await startAp();
  const g = ap.addEvent(CBC);
  const comment = "AP: Created event dictionary.";
  // Answered after the call's 2 s: the client gives up, GraceDB writes it all the same.
  ap.server.inject({ path: `events/${g}/log/`, method: "POST", delayMs: 2500 });
  await ap.pump();
  const retry = ap.events("ap_gracedb_retry");
  assert.equal(retry.length, 1, "the unanswered write defers the work");
  assert.match(String(retry[0]?.error), /writing a log entry "AP: Created event dictionary\."/);
  const deadline = Date.now() + 10_000;
  while (count(ap.comments(g), comment) === 0) {
    assert.ok(Date.now() < deadline, "GraceDB writes the delayed entry");
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  await ap.advance(60);
  assert.equal(count(ap.comments(g), comment), 1, "the entry is not written twice");
  assert.ok(ap.lines(g).some((l) => l.includes("not written again")));
  assert.equal(ap.record(g).currentstate, "preliminary_to_initial", "the rest goes on");
  assert.equal(new Set(ap.comments(g)).size, ap.comments(g).length, "no entry twice");
});

Deno.test("a log write answered 503 once is looked for, not found, and written again in the same run", async () => {
  await using ap = await startAp();
  const g = ap.addEvent(CBC);
  ap.server.inject({ path: `events/${g}/log/`, method: "POST", status: 503 });
  await ap.pump();
  assert.equal(count(ap.comments(g), "AP: Created event dictionary."), 1);
  assert.equal(ap.events("ap_gracedb_retry").length, 0, "no deferral, no mail");
  const requests = ap.server.requests.map((r) => `${r.method} ${r.path} ${r.status}`);
  const log = `/api/events/${g}/log/`;
  const first = requests.indexOf(`POST ${log} 503`);
  assert.ok(first >= 0, requests.join("\n"));
  assert.equal(requests[first + 1], `GET ${log} 200`, "looked for before writing again");
  assert.equal(requests[first + 2], `POST ${log} 201`);
});

Deno.test("a log write that failed (503s) is looked for, not found, and written on the retry", async () => {
  await using ap = await startAp();
  const g = ap.addEvent(CBC);
  const fault = ap.server.inject({
    path: `events/${g}/log/`,
    method: "POST",
    status: 503,
    times: 1000,
  });
  await ap.pump();
  fault.remove();
  assert.equal(count(ap.comments(g), "AP: Created event dictionary."), 0);
  assert.equal(ap.events("ap_gracedb_retry").length, 1);
  await ap.advance(60);
  assert.equal(count(ap.comments(g), "AP: Created event dictionary."), 1);
  assert.ok(!ap.lines(g).some((l) => l.includes("not written again")));
  assert.ok(
    ap.server.requests.some((r) => r.method === "GET" && r.path === `/api/events/${g}/log/`),
    "the retry looked for the entry first",
  );
  assert.equal(ap.record(g).currentstate, "preliminary_to_initial");
});

Deno.test("a VOEvent request answered 503 is not sent again before GraceDB's list is read", async () => {
  await using ap = await startAp();
  const g = ap.addEvent(CBC);
  await ap.pump();
  ap.server.inject({ path: /\/voevent\/$/, method: "POST", status: 503 });
  await ap.advance(60);
  const voevent = `/api/events/${g}/voevent/`;
  const calls = ap.server.requests.filter((r) => r.path === voevent).map((r) =>
    `${r.method} ${r.status}`
  );
  const failed = calls.indexOf("POST 503");
  assert.ok(failed >= 0, calls.join(", "));
  assert.deepEqual(calls.slice(failed + 1, failed + 3), ["GET 200", "POST 201"], calls.join(", "));
  assert.deepEqual(ap.voevents(g).map((v) => v.voevent_type), ["PR"]);
  assert.equal(ap.record(g).currentstate, "preliminary_to_initial");
});

Deno.test("a refused action (4xx) is reported and dropped; the rest goes on", async () => {
  await using ap = await startAp();
  const g = ap.addEvent(CBC);
  await ap.pump();
  ap.server.inject({
    path: `events/${g}/labels/H1OPS`,
    method: "PUT",
    status: 400,
    body: "No such Label 'H1OPS'",
  });
  await ap.advance(60);
  assert.deepEqual(ap.server.labelsOf(g), ["EM_Selected", "L1OPS", "ADVREQ"]);
  assert.equal(ap.events("ap_action_failed").length, 1);
  assert.ok(
    ap.mails.some((m) => m.subject === `approval_processor: label H1OPS on ${g} failed for ${g}`),
  );
  assert.equal(ap.record(g).currentstate, "preliminary_to_initial");
});

Deno.test("a superevent (current schema) goes from new to complete", async () => {
  await using ap = await startAp({ schema: "current" });
  const s = ap.addSupereventWith({ ...CBC, gpstime: 1331490617.3 });
  await ap.pump();
  await ap.advance(60);
  assert.equal(ap.record(s).currentstate, "preliminary_to_initial");
  assert.equal(ap.record(s).pipeline, "gstlal", "from the preferred event");
  ap.uploadSkymap(s, "bayestar.multiorder.fits");
  await ap.signoff(s, "OP", "OK", "H1");
  await ap.signoff(s, "OP", "OK", "L1");
  await ap.signoff(s, "ADV", "OK");
  await ap.pump();
  ap.uploadSkymap(s, "Bilby.multiorder.fits");
  await ap.pump();
  assert.equal(ap.record(s).currentstate, "complete");
  assert.deepEqual(
    ap.voevents(s).map((v) => [v.voevent_type, v.skymap_filename]),
    [["PR", null], ["PR", "bayestar.multiorder.fits"], ["IN", "bayestar.multiorder.fits"], [
      "UP",
      "Bilby.multiorder.fits",
    ]],
  );
  assert.deepEqual(ap.server.labelsOf(s), [
    "EM_Selected",
    "H1OPS",
    "L1OPS",
    "ADVREQ",
    "EM_READY",
    "PE_READY",
  ]);
});

Deno.test("the shared sample streams (both schemas, and bad alerts) pass through without a failure", async () => {
  await using ap = await startAp();
  const dir = new URL("./fixtures/approval_processor/", import.meta.url);
  for (const name of ["alerts-legacy.jsonl", "alerts-current.jsonl", "bad-alerts.jsonl"]) {
    const text = await Deno.readTextFile(new URL(name, dir));
    for (const line of text.split("\n").filter((l) => l.trim())) {
      const { payload } = JSON.parse(line);
      let alert: unknown = payload;
      try {
        alert = typeof payload === "string" ? JSON.parse(payload) : payload;
      } catch {
        continue; // not JSON: the listener refuses it before any child
      }
      const a = alert as { uid?: unknown; alert_type?: unknown };
      if (typeof a.uid !== "string" || !a.uid || typeof a.alert_type !== "string") continue;
      await ap.deliver(alert as Alert);
    }
  }
  await ap.advance(120);
  // T129911 came twice as new (two nodes): one record, one throttle entry; its DQV label rejected it.
  assert.equal(ap.record("T129911").currentstate, "rejected");
  assert.equal(ap.record("T129911").group, "CBC");
  assert.deepEqual(ap.record("T129911").operatorsignoffs, { H1: "OK" });
  assert.equal(ap.record("S220316r").gpstime, 1331490617.3);
  assert.ok(ap.events("ap_unknown_event").length >= 1, "alerts for events GraceDB does not know");
});
