/**
 * event_supervisor when things go wrong: GraceDB answering 500 or not at
 * all, an event GraceDB does not know, a check that cannot be built, and
 * the listener killed in the middle of a scenario.
 */

import assert from "node:assert/strict";
import { general, newAlert, publish, scenario, section } from "./event_supervisor_helpers.ts";

type Event = Record<string, unknown>;

const outcomes = (events: Event[]) => events.filter((e) => e.event === "check_outcome");
const time = (e: Event | undefined) => Date.parse(String(e?.ts));

Deno.test("GraceDB answering 500: the check retries until its deadline, then reports an exception; other checks are not delayed", async () => {
  await using s = await scenario();
  const graceid = s.gdb.addEvent({ graceid: "G4001", far: 1e-8 });
  const fault = s.gdb.inject({
    path: `events/${graceid}/log/`,
    method: "GET",
    status: 500,
    times: 1000,
  });
  await s.writeConfig(
    general(s.gdb.url, { check_timeout: 2 }) +
      section("far", { dt: 0.2, "min far": 0, "max far": 1e-3 }) +
      section("lldqReport", { dt: 0.2 }) +
      section("external triggers", { dt: 0.2 }),
  );
  const lines = [await newAlert(s.gdb, graceid)];
  s.gdb.clearRequests();
  const listener = s.start(lines, ["--exit-when-idle", "--speed", "0"]);
  assert.equal(await listener.exited(), 0, listener.stderr);
  const results = outcomes(listener.events);
  const far = results.find((e) => e.task === "far");
  assert.equal(far?.result, "pass");
  const broken = results.filter((e) => e.task !== "far");
  assert.deepEqual(broken.map((e) => [e.task, e.result, e.status]).sort(), [
    ["externalTriggers", "exception", 500],
    ["lldqReport", "exception", 500],
  ]);
  for (const e of broken) {
    assert.ok(time(e) - time(far) > 1000, "the far check did not wait for them");
  }
  // Both log checks came due together and shared each read; it was tried more than once.
  const tries = s.gdb.requests.filter((r) => r.method === "GET" && r.path.endsWith("/log/"));
  assert.ok(tries.length >= 2, `${tries.length} attempts`);
  assert.equal(fault.remaining, 1000 - tries.length);
  const mails = await s.mails();
  assert.deepEqual(mails.map((m) => m.subject).sort(), [
    "G4001: externalTriggers FAILED",
    "G4001: lldqReport FAILED",
  ]);
  const body = mails.find((m) => m.subject === "G4001: lldqReport FAILED")!.body;
  assert.match(
    body,
    /^G4001: lldqReport check FAILED\nhttp:\/\/127\.0\.0\.1:\d+\/events\/view\/G4001\n/,
  );
  assert.match(
    body,
    /event_supervisor caught an exception when performing a check that the lldq-report page was posted\nGraceDbError: GraceDB answered 500/,
  );
  // No FAIL is claimed and nothing is annotated for the exceptions.
  const notes = s.gdb.requests.filter((r) => r.method === "POST").map((r) =>
    (r.body as { comment: string }).comment
  );
  assert.deepEqual(notes, ["ES: no action required : 0.000e+00 <= FAR=1.000e-08 <= 1.000e-03"]);
});

Deno.test("GraceDB hanging: an exception at the check's deadline; the child keeps taking alerts meanwhile", async () => {
  await using s = await scenario();
  const hung = s.gdb.addEvent({ graceid: "G4101" });
  const fine = s.gdb.addEvent({ graceid: "G4102" });
  s.gdb.inject({ path: `events/${hung}/log/`, method: "GET", hang: true, times: 100 });
  await s.writeConfig(
    general(s.gdb.url, { check_timeout: 1.5, annotate: false }) +
      section("lldqReport", { dt: 0.1 }),
  );
  const lines = [
    await newAlert(s.gdb, hung),
    { ...await newAlert(s.gdb, fine), t: 0.5 },
    ...publish(s.gdb, fine, [{ comment: "Automatic Data-quality report posted" }]).map((l) => ({
      ...l,
      t: 0.5,
    })),
  ];
  const listener = s.start(lines, ["--exit-when-idle", "--speed", "1"]);
  assert.equal(await listener.exited(), 0, listener.stderr);
  const results = outcomes(listener.events);
  const bad = results.find((e) => e.graceid === hung);
  const good = results.find((e) => e.graceid === fine);
  assert.equal(bad?.result, "exception");
  assert.match(String(bad?.message), /no answer within/);
  assert.equal(good?.result, "pass");
  assert.ok(time(good) < time(bad), "the second event's check finished while the first one hung");
});

Deno.test("an event GraceDB does not know: logged as an exception, no crash, no retry of the 404", async () => {
  await using s = await scenario();
  await s.writeConfig(
    general(s.gdb.url, { annotate: false }) +
      section("far", { dt: 0.1, "min far": 0, "max far": 1 }),
  );
  const lines = [{
    id: "x",
    payload: { uid: "G9999", alert_type: "new", description: "", file: "", object: { far: 1e-9 } },
  }];
  const listener = s.start(lines, ["--exit-when-idle", "--speed", "0"]);
  assert.equal(await listener.exited(), 0, listener.stderr);
  const [e] = outcomes(listener.events);
  assert.equal(e?.result, "exception");
  assert.equal(e?.status, 404);
  assert.equal(s.gdb.requests.filter((r) => r.path === "/api/events/G9999").length, 1);
  assert.deepEqual((await s.mails()).map((m) => m.subject), ["G9999: far FAILED"]);
});

Deno.test("a check that cannot be built costs only itself: the alert's other items are made", async () => {
  await using s = await scenario();
  const graceid = s.gdb.addEvent({ graceid: "G4201", pipeline: "Fermi", group: "External" });
  await s.writeConfig(
    general(s.gdb.url, { annotate: false }) + section("event creation", { dt: 0.1 }) +
      section("far", { dt: 0.1, "min far": 0, "max far": 1 }),
  );
  const listener = s.start([await newAlert(s.gdb, graceid)], ["--exit-when-idle", "--speed", "0"]);
  assert.equal(await listener.exited(), 0, listener.stderr);
  assert.deepEqual(listener.named("item_failed").map((e) => [e.item, e.reason]), [
    ["event creation", "pipeline=Fermi not understood"],
  ]);
  assert.deepEqual(outcomes(listener.events).map((e) => e.task), ["far"]);
  const mails = await s.mails();
  assert.deepEqual(mails.map((m) => [m.subject.replace(/ on .*/, ""), m.recipients]), [
    ["WARNING: event_supervisor could not create QueueItem=event creation for G4201", [
      "listener@example.org",
    ]],
  ]);
});

Deno.test("killed mid-scenario: after a restart on the same state folder the checks go on, none twice", async () => {
  await using s = await scenario();
  const graceid = s.gdb.addEvent({ graceid: "G4301" });
  // A slow answer keeps the lldqReport check's read in flight across the kill.
  s.gdb.inject({ path: `events/${graceid}/log/`, method: "GET", delayMs: 1500, times: 1 });
  await s.writeConfig(
    general(s.gdb.url, { annotate: false }) +
      section("far", { dt: 0.2, "min far": 0, "max far": 1 }) +
      section("lldqReport", { dt: 0.5 }) +
      section("external triggers", { dt: 2.5 }),
  );
  // Written to GraceDB without an alert: only the deadline read finds it.
  s.gdb.addLog(graceid, "Coincidence search complete");
  const lines = [await newAlert(s.gdb, graceid)];
  const first = s.start(lines, ["--speed", "1"]);
  await first.until(() => outcomes(first.events).some((e) => e.task === "far"), "far checked");
  await first.until(
    () => first.events.some((e) => e.event === "task_executed" && e.task === "lldqReport"),
    "lldqReport started",
  );
  // Kill once a checkpoint taken after both (far done, lldqReport waiting on GraceDB) is written:
  // the second one logged after them began after them.
  const after = Math.max(
    first.events.findIndex((e) => e.event === "check_outcome" && e.task === "far"),
    first.events.findIndex((e) => e.event === "task_executed" && e.task === "lldqReport"),
  );
  await first.until(
    () => first.events.slice(after).filter((e) => e.event === "checkpoint").length >= 2,
    "two checkpoints after both",
  );
  assert.equal(await first.stop("SIGKILL"), 137);
  assert.ok(
    !outcomes(first.events).some((e) => e.task === "lldqReport"),
    "killed before lldqReport ended",
  );
  const second = s.start(lines, ["--speed", "1", "--exit-when-idle"]);
  assert.equal(await second.exited(), 0, second.stderr);
  const all = [...outcomes(first.events), ...outcomes(second.events)];
  assert.deepEqual(all.map((e) => [e.task, e.result]).sort(), [
    ["externalTriggers", "pass"],
    ["far", "pass"],
    ["lldqReport", "fail"],
  ]);
  assert.equal(second.named("recovered").length, 1, "restored from its snapshot");
  assert.deepEqual(second.named("check_restarted").map((e) => e.task), ["lldqReport"]);
  assert.equal(
    second.named("alert").filter((e) => e.recovered !== true).length,
    0,
    "no alert applied twice",
  );
});
