import assert from "node:assert/strict";
import {
  GraceDbClient,
  type GraceDbClientOptions,
  GraceDbError,
  type GraceDbEvent,
  type GraceDbSuperevent,
  retryAfterMs,
  serverMessage,
} from "../lib/gracedb/mod.ts";
import { GraceDbTestServer } from "./gracedb_server.ts";

/** A client with short timeouts and backoffs, so failures are quick. */
function clientFor(gdb: GraceDbTestServer, options: GraceDbClientOptions = {}): GraceDbClient {
  return new GraceDbClient(gdb.url, {
    version: "0.1.0",
    timeoutMs: 2000,
    totalTimeMs: 5000,
    minBackoffMs: 10,
    maxBackoffMs: 40,
    jitter: 0,
    ...options,
  });
}

/** `METHOD /path` of each request, to compare with what a call should send. */
function calls(gdb: GraceDbTestServer): string[] {
  return gdb.requests.map((r) => `${r.method} ${r.path}`);
}

async function rejection(promise: Promise<unknown>): Promise<GraceDbError> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof GraceDbError, `expected a GraceDbError, got ${error}`);
    return error;
  }
  assert.fail("the call should have failed");
}

Deno.test("GraceDbClient reads an event, its logs, files, labels, log tags and signoffs", async () => {
  await using gdb = await GraceDbTestServer.start();
  const gracedb = clientFor(gdb);
  const id = gdb.addEvent({ group: "CBC", pipeline: "gstlal", gpstime: 1187008882.43, far: 3e-6 });
  gdb.addLog(id, "Uploaded coinc.xml", { file: { name: "coinc.xml", data: "<v1/>" } });
  gdb.addLog(id, "INFO:BAYESTAR:sky localization complete", {
    tags: ["sky_loc", "lvem"],
    file: { name: "coinc.xml", data: "<v2/>" },
  });
  gdb.addLabel(id, "EM_READY");
  gdb.addSignoff(id, { signoff_type: "OP", instrument: "H1", status: "OK" });
  gdb.clearRequests();

  const event = await gracedb.get(id) as GraceDbEvent;
  assert.equal(event.graceid, id);
  assert.equal(event.far, 3e-6);
  assert.equal(event.gpstime, 1187008882.43);
  assert.deepEqual(event.labels, ["EM_READY"]);
  const logs = await gracedb.logs(id);
  assert.deepEqual(
    logs.map((l) => [l.N, l.comment, l.filename, l.file_version, l.tag_names]),
    [
      [1, "Uploaded coinc.xml", "coinc.xml", 0, []],
      [2, "INFO:BAYESTAR:sky localization complete", "coinc.xml", 1, ["sky_loc", "lvem"]],
    ],
  );
  assert.deepEqual(Object.keys(await gracedb.files(id)).sort(), [
    "coinc.xml",
    "coinc.xml,0",
    "coinc.xml,1",
  ]);
  assert.equal(
    await gracedb.downloadText(id, "coinc.xml"),
    "<v2/>",
    "the plain name is the latest",
  );
  assert.equal(await gracedb.downloadText(id, "coinc.xml,0"), "<v1/>");
  assert.deepEqual(await gracedb.download(id, "coinc.xml,1"), new TextEncoder().encode("<v2/>"));
  assert.equal(
    new TextDecoder().decode(await gracedb.downloadUrl(String(logs[0]!.file))),
    "<v1/>",
    "a log entry's file URL",
  );
  assert.deepEqual((await gracedb.labels(id)).map((l) => l.name), ["EM_READY"]);
  assert.deepEqual((await gracedb.logTags(id, 2)).map((t) => t.name), ["sky_loc", "lvem"]);
  assert.deepEqual(
    (await gracedb.signoffs(id)).map((s) => [s.signoff_type, s.instrument, s.status]),
    [["OP", "H1", "OK"]],
  );
  assert.deepEqual(calls(gdb), [
    `GET /api/events/${id}`,
    `GET /api/events/${id}/log/`,
    `GET /api/events/${id}/files/`,
    `GET /api/events/${id}/files/coinc.xml`,
    `GET /api/events/${id}/files/coinc.xml,0`,
    `GET /api/events/${id}/files/coinc.xml,1`,
    `GET /api/events/${id}/files/coinc.xml,0`,
    `GET /api/events/${id}/labels/`,
    `GET /api/events/${id}/log/2/tag/`,
    `GET /api/events/${id}/signoff/`,
  ]);
  assert.ok(gdb.requests.every((r) => r.userAgent === "lvalertMP/0.1.0"));
  assert.deepEqual(gdb.writes(), []);
});

Deno.test("GraceDbClient reads a superevent through its trailing-slash paths", async () => {
  await using gdb = await GraceDbTestServer.start({ token: "t" });
  const gracedb = clientFor(gdb, { auth: { kind: "bearer", token: "t", source: "test" } });
  const g = gdb.addEvent({ gpstime: 1e9 });
  const s = gdb.addSuperevent({ t_0: 1e9, preferred_event: g, gw_events: [g] });
  gdb.addLog(s, "sky map", { tags: ["sky_loc"], file: { name: "bayestar.fits.gz", data: "xx" } });
  gdb.addLabel(s, "ADVREQ");
  gdb.addSignoff(s, { signoff_type: "ADV", status: "NO" });
  gdb.clearRequests();

  const superevent = await gracedb.get(s) as GraceDbSuperevent;
  assert.equal(superevent.superevent_id, s);
  assert.equal(superevent.preferred_event, g);
  assert.deepEqual(superevent.labels, ["ADVREQ"]);
  assert.deepEqual((await gracedb.logs(s)).map((l) => [l.comment, l.tag_names]), [
    ["sky map", ["sky_loc"]],
  ]);
  assert.deepEqual(Object.keys(await gracedb.files(s)), ["bayestar.fits.gz", "bayestar.fits.gz,0"]);
  assert.equal(await gracedb.downloadText(s, "bayestar.fits.gz,0"), "xx");
  assert.deepEqual((await gracedb.labels(s)).map((l) => l.name), ["ADVREQ"]);
  assert.deepEqual((await gracedb.logTags(s, 1)).map((t) => t.name), ["sky_loc"]);
  assert.deepEqual((await gracedb.signoffs(s)).map((x) => [x.signoff_type, x.status]), [
    ["ADV", "NO"],
  ]);
  assert.deepEqual(await gracedb.voEvents(s), []);
  assert.deepEqual(calls(gdb), [
    `GET /api/superevents/${s}/`,
    `GET /api/superevents/${s}/logs/`,
    `GET /api/superevents/${s}/files/`,
    `GET /api/superevents/${s}/files/bayestar.fits.gz,0`,
    `GET /api/superevents/${s}/labels/`,
    `GET /api/superevents/${s}/logs/1/tags/`,
    `GET /api/superevents/${s}/signoffs/`,
    `GET /api/superevents/${s}/voevents/`,
  ]);
  await assert.rejects(gracedb.event(s), RangeError, "event() refuses a superevent id");
  await assert.rejects(gracedb.superevent(g), RangeError);
  await assert.rejects(gracedb.get("G1/../../x"), RangeError, "ids never leave their path");
});

Deno.test("GraceDbClient.writeLogOnce never sends a log entry twice unread", async (t) => {
  await using gdb = await GraceDbTestServer.start();
  const gracedb = clientFor(gdb);
  const id = gdb.addEvent();
  const log = `/api/events/${id}/log/`;
  const statuses = () => gdb.requests.map((r) => `${r.method} ${r.path} ${r.status}`);
  await t.step("answered 503 once: the log is read, then the entry sent again", async () => {
    gdb.clearRequests();
    gdb.inject({ path: `events/${id}/log/`, method: "POST", status: 503 });
    assert.equal(await gracedb.writeLogOnce(id, "first", { tags: ["x"] }), "written");
    assert.deepEqual(statuses(), [`POST ${log} 503`, `GET ${log} 200`, `POST ${log} 201`]);
  });
  await t.step("lookFirst finds an entry already there and sends nothing", async () => {
    gdb.clearRequests();
    assert.equal(await gracedb.writeLogOnce(id, "first", { lookFirst: true }), "found");
    assert.deepEqual(statuses(), [`GET ${log} 200`]);
  });
  await t.step("no answer: it fails at once, without looking or sending again", async () => {
    gdb.clearRequests();
    gdb.inject({ path: `events/${id}/log/`, method: "POST", delayMs: 1000 });
    const error = await rejection(gracedb.writeLogOnce(id, "second", { totalTimeMs: 300 }));
    assert.equal(error.status, undefined);
    assert.deepEqual(calls(gdb), [`POST ${log}`]);
  });
  await t.step("503 every time: three requests, a look before each of the last two", async () => {
    gdb.clearRequests();
    const fault = gdb.inject({
      path: `events/${id}/log/`,
      method: "POST",
      status: 503,
      times: 100,
    });
    const error = await rejection(gracedb.writeLogOnce(id, "third"));
    fault.remove();
    assert.equal(error.status, 503);
    assert.deepEqual(calls(gdb), [
      `POST ${log}`,
      `GET ${log}`,
      `POST ${log}`,
      `GET ${log}`,
      `POST ${log}`,
    ]);
  });
});

Deno.test("GraceDbClient.writeLog sends JSON without a file and multipart with one", async (t) => {
  await using gdb = await GraceDbTestServer.start();
  const gracedb = clientFor(gdb);
  for (const id of [gdb.addEvent(), gdb.addSuperevent()]) {
    await t.step(id, async () => {
      gdb.clearRequests();
      const plain = await gracedb.writeLog(id, "ES: no action required : ok", {
        tags: ["event_supervisor"],
      });
      assert.equal(plain.comment, "ES: no action required : ok");
      assert.deepEqual(plain.tag_names, ["event_supervisor"]);
      const [write] = gdb.writes();
      assert.equal(write?.contentType, "application/json");
      assert.deepEqual(write?.body, {
        comment: "ES: no action required : ok",
        tagname: ["event_supervisor"],
        displayName: [],
      });

      const withFile = await gracedb.writeLog(id, "GRB-GW Coincidence JSON file: em_coinc_json", {
        tags: ["em_follow"],
        file: { name: "coinc.json", data: '{"message":"x"}', contentType: "application/json" },
      });
      assert.deepEqual(
        [withFile.filename, withFile.file_version, withFile.tag_names],
        ["coinc.json", 0, ["em_follow"]],
      );
      const second = gdb.writes()[1];
      assert.match(second?.contentType ?? "", /^multipart\/form-data; boundary=/);
      assert.deepEqual(second?.body, {
        comment: "GRB-GW Coincidence JSON file: em_coinc_json",
        tagname: "em_follow",
        upload: { file: "coinc.json", size: 15, type: "application/json" },
      });
      assert.equal(await gracedb.downloadText(id, "coinc.json"), '{"message":"x"}');
      assert.deepEqual(
        gdb.logsOf(id).map((l) => l.comment),
        ["ES: no action required : ok", "GRB-GW Coincidence JSON file: em_coinc_json"],
      );
    });
  }
});

Deno.test("GraceDbClient adds and removes event labels with PUT and DELETE on labels/X", async () => {
  await using gdb = await GraceDbTestServer.start();
  const gracedb = clientFor(gdb);
  const id = gdb.addEvent();
  assert.deepEqual(await gracedb.addLabel(id, "EM_READY"), { changed: true });
  assert.deepEqual(await gracedb.addLabel(id, "EM_READY"), {
    changed: false,
    detail: `Event ${id} already labeled with 'EM_READY'`,
  });
  assert.deepEqual(gdb.labelsOf(id), ["EM_READY"]);
  assert.deepEqual(await gracedb.removeLabel(id, "EM_READY"), { changed: true });
  assert.deepEqual(await gracedb.removeLabel(id, "EM_READY"), {
    changed: false,
    detail: `No label 'EM_READY' associated with event ${id}`,
  });
  assert.deepEqual(gdb.labelsOf(id), []);
  assert.deepEqual(calls(gdb), [
    `PUT /api/events/${id}/labels/EM_READY`,
    `PUT /api/events/${id}/labels/EM_READY`,
    `DELETE /api/events/${id}/labels/EM_READY`,
    `DELETE /api/events/${id}/labels/EM_READY`,
  ]);
  const unknown = await rejection(gracedb.addLabel(id, "NOT_A_LABEL"));
  assert.equal(unknown.status, 400);
  assert.equal(unknown.detail, "No such Label 'NOT_A_LABEL'");
  assert.equal(gdb.requests.length, 5, "a 400 is not retried");
});

Deno.test("GraceDbClient adds superevent labels with POST labels/ and removes them with DELETE labels/X/", async () => {
  await using gdb = await GraceDbTestServer.start();
  const gracedb = clientFor(gdb);
  const id = gdb.addSuperevent();
  assert.deepEqual(await gracedb.addLabel(id, "ADVREQ"), { changed: true });
  assert.deepEqual(await gracedb.addLabel(id, "ADVREQ"), {
    changed: false,
    detail: "The fields superevent, name must make a unique set.",
  });
  assert.deepEqual(await gracedb.removeLabel(id, "ADVREQ"), { changed: true });
  assert.deepEqual(await gracedb.removeLabel(id, "ADVREQ"), {
    changed: false,
    detail: "Not found.",
  });
  assert.deepEqual(calls(gdb), [
    `POST /api/superevents/${id}/labels/`,
    `POST /api/superevents/${id}/labels/`,
    `DELETE /api/superevents/${id}/labels/ADVREQ/`,
    `DELETE /api/superevents/${id}/labels/ADVREQ/`,
  ]);
  assert.deepEqual(gdb.writes()[0]?.body, { name: "ADVREQ" });
  assert.deepEqual(gdb.labelsOf(id), []);
});

Deno.test("GraceDbClient.createVoEvent sends approval_processor's flags; GraceDB logs it tagged em_follow", async (t) => {
  await using gdb = await GraceDbTestServer.start();
  const gracedb = clientFor(gdb);
  for (const id of [gdb.addEvent(), gdb.addSuperevent()]) {
    await t.step(id, async () => {
      gdb.addLog(id, "sky map", { tags: ["lvem"], file: { name: "bayestar.fits.gz", data: "m" } });
      gdb.clearRequests();
      const voevent = await gracedb.createVoEvent(id, "preliminary", {
        internal: false,
        vetted: false,
        openAlert: false,
        hardwareInj: true,
        skymapFilename: "bayestar.fits.gz",
        skymapType: "bayestar-CBCAllSky",
        skymapImageFilename: "bayestar.png",
        coincComment: false,
        probHasNs: 0.5,
        probHasRemnant: null,
      });
      assert.equal(voevent.voevent_type, "PR");
      assert.equal(voevent.filename, `${id}-1-Preliminary.xml`);
      assert.deepEqual(gdb.writes()[0]?.body, {
        voevent_type: "PR",
        internal: 0,
        vetted: 0,
        open_alert: 0,
        hardware_inj: 1,
        skymap_filename: "bayestar.fits.gz",
        skymap_type: "bayestar-CBCAllSky",
        skymap_image_filename: "bayestar.png",
        CoincComment: 0,
        ProbHasNS: 0.5,
        ProbHasRemnant: null,
      });
      const xml = new TextDecoder().decode(
        await gracedb.downloadUrl(String((voevent.links as { file: string }).file)),
      );
      assert.match(xml, /<Param name="internal" dataType="int" value="0"\/>/);
      assert.match(xml, /<Param name="HardwareInj" dataType="int" value="1"\/>/);
      const logs = await gracedb.logs(id);
      assert.deepEqual(
        logs.at(-1) && [logs.at(-1)!.comment, logs.at(-1)!.filename, logs.at(-1)!.tag_names],
        ["New VOEvent", `${id}-1-Preliminary.xml`, ["em_follow"]],
      );
      assert.deepEqual((await gracedb.voEvents(id)).map((v) => [v.N, v.voevent_type]), [[1, "PR"]]);
      const bad = await rejection(
        gracedb.createVoEvent(id, "initial", { skymapFilename: "nope.fits", skymapType: "x" }),
      );
      assert.equal(bad.status, 400);
      assert.match(bad.detail, /Skymap file nope\.fits (does not exist|not found)/);
    });
  }
});

Deno.test("GraceDbClient.queryEvents follows links.next across pages", async () => {
  await using gdb = await GraceDbTestServer.start();
  const gracedb = clientFor(gdb);
  const inside: string[] = [];
  for (let i = 0; i < 23; i++) inside.push(gdb.addEvent({ gpstime: 1000 + i }));
  gdb.addEvent({ gpstime: 5000 });
  gdb.clearRequests();
  const found = await gracedb.queryEvents("gpstime: 1000 .. 1100", { pageSize: 10 });
  assert.deepEqual(found.map((e) => e.graceid).sort(), [...inside].sort());
  assert.equal(gdb.requests.length, 3);
  assert.deepEqual(
    gdb.requests.map((r) => new URLSearchParams(r.query).get("start") ?? "0"),
    ["0", "10", "20"],
  );
  assert.ok(
    gdb.requests.every((r) =>
      new URLSearchParams(r.query).get("query") === "gpstime: 1000 .. 1100"
    ),
  );
  assert.equal((await gracedb.queryEvents("1000 .. 1004")).length, 5, "a bare range");
  assert.equal((await gracedb.queryEvents("gpstime: 1000 .. 1100", { limit: 4 })).length, 4);
  const invalid = await rejection(gracedb.queryEvents("nonsense: 1"));
  assert.deepEqual([invalid.status, invalid.detail], [400, "Invalid query"]);
});

Deno.test("GraceDbClient.querySuperevents follows links.next until it is null", async () => {
  await using gdb = await GraceDbTestServer.start();
  const gracedb = clientFor(gdb);
  for (let i = 0; i < 12; i++) gdb.addSuperevent({ t_0: 2000 + i });
  gdb.addSuperevent({ t_0: 2001.5, category: "Test" });
  gdb.clearRequests();
  const found = await gracedb.querySuperevents("t_0: 2000 .. 2020", { pageSize: 5 });
  assert.equal(found.length, 12, "Test superevents are left out unless asked for");
  assert.equal(gdb.requests.length, 3);
  assert.ok(gdb.requests.every((r) => r.path === "/api/superevents/"));
  assert.equal((await gracedb.querySuperevents("category: Test")).length, 1);
});

Deno.test("GraceDbClient retries a 500 and then succeeds", async () => {
  await using gdb = await GraceDbTestServer.start();
  const id = gdb.addEvent();
  const retried: number[] = [];
  const gracedb = clientFor(gdb, { onRetry: (error) => retried.push(error.status ?? 0) });
  gdb.inject({ path: `events/${id}`, status: 500, times: 2 });
  assert.equal(((await gracedb.get(id)) as GraceDbEvent).graceid, id);
  assert.deepEqual(gdb.requests.map((r) => r.status), [500, 500, 200]);
  assert.deepEqual(retried, [500, 500]);
});

Deno.test("GraceDbClient retries 502, 503, 504 and 408 but never other 4xx", async (t) => {
  for (const status of [502, 503, 504, 408]) {
    await t.step(`${status} is retried`, async () => {
      await using gdb = await GraceDbTestServer.start();
      const id = gdb.addEvent();
      gdb.inject({ path: `events/${id}/labels/`, status });
      await clientFor(gdb).labels(id);
      assert.deepEqual(gdb.requests.map((r) => r.status), [status, 200]);
    });
  }
  for (const status of [400, 401, 403, 404, 409, 413]) {
    await t.step(`${status} is not retried`, async () => {
      await using gdb = await GraceDbTestServer.start();
      const id = gdb.addEvent();
      gdb.inject({ path: `events/${id}/labels/`, status, body: { detail: `refused ${status}` } });
      const error = await rejection(clientFor(gdb).labels(id));
      assert.deepEqual([error.status, error.detail, error.attempts], [
        status,
        `refused ${status}`,
        1,
      ]);
      assert.equal(gdb.requests.length, 1);
    });
  }
});

Deno.test("GraceDbClient does not retry a 404 and says what the server said", async () => {
  await using gdb = await GraceDbTestServer.start();
  const gracedb = clientFor(gdb);
  const missing = await rejection(gracedb.get("G999"));
  assert.equal(missing.status, 404);
  assert.equal(missing.detail, "Event not found.", "plain text body");
  assert.equal(missing.method, "GET");
  assert.equal(missing.url, `${gdb.url}events/G999`);
  assert.equal(
    missing.message,
    `GraceDB answered 404 to GET ${gdb.url}events/G999: Event not found.`,
  );
  assert.equal(missing.retryable, false);
  const superevent = await rejection(gracedb.logs("S990101zz"));
  assert.deepEqual([superevent.status, superevent.detail], [404, "Not found."], '{"detail"} body');
  const file = await rejection(gracedb.download(gdb.addEvent(), "none.txt"));
  assert.deepEqual(
    [file.status, file.detail],
    [404, "File none.txt not found"],
    "bare JSON string",
  );
  assert.equal(gdb.requests.length, 3);
});

Deno.test("GraceDbClient times out a hung request and retries it", async () => {
  await using gdb = await GraceDbTestServer.start();
  const id = gdb.addEvent();
  const retried: GraceDbError[] = [];
  const gracedb = clientFor(gdb, { timeoutMs: 150, onRetry: (e) => retried.push(e) });
  gdb.inject({ path: `events/${id}/log/`, hang: true });
  assert.deepEqual(await gracedb.logs(id), []);
  assert.equal(gdb.requests.length, 2);
  assert.equal(retried.length, 1);
  assert.equal(retried[0]?.timedOut, true);
  assert.equal(retried[0]?.status, undefined);
  assert.match(
    retried[0]?.message ?? "",
    /^GraceDB did not answer GET .*: no answer within 0\.15 s$/,
  );
});

Deno.test("GraceDbClient times out a slow answer and takes the next one", async () => {
  await using gdb = await GraceDbTestServer.start();
  const id = gdb.addEvent();
  const gracedb = clientFor(gdb, { timeoutMs: 100 });
  gdb.inject({ path: `events/${id}`, delayMs: 400 });
  assert.equal(((await gracedb.get(id)) as GraceDbEvent).graceid, id);
  assert.equal(gdb.requests.length, 2);
  assert.ok(gdb.requests[0]?.fault);
});

Deno.test("GraceDbClient waits as long as Retry-After asks on a 429", async () => {
  await using gdb = await GraceDbTestServer.start();
  const id = gdb.addEvent();
  gdb.inject({ path: `events/${id}`, status: 429, retryAfter: 1 });
  await clientFor(gdb).get(id);
  const [first, second] = gdb.requests;
  assert.equal(first?.status, 429);
  assert.equal(second?.status, 200);
  const gap = second!.time - first!.time;
  assert.ok(gap >= 950, `waited ${gap} ms, the backoff alone is 10 ms`);
});

Deno.test("GraceDbClient gives up at once when Retry-After is beyond reason or beyond the bound", async (t) => {
  await t.step("longer than maxRetryAfterMs", async () => {
    await using gdb = await GraceDbTestServer.start();
    const id = gdb.addEvent();
    gdb.inject({ path: `events/${id}`, status: 429, retryAfter: 120 });
    const error = await rejection(clientFor(gdb, { maxRetryAfterMs: 30_000 }).get(id));
    assert.equal(error.status, 429);
    assert.equal(error.detail, "Request was throttled. Expected available in 120 seconds.");
    assert.equal(error.retryAfterMs, 120_000);
    assert.equal(gdb.requests.length, 1);
  });
  await t.step("longer than the time left", async () => {
    await using gdb = await GraceDbTestServer.start();
    const id = gdb.addEvent();
    gdb.inject({ path: `events/${id}`, status: 503, retryAfter: 10 });
    const started = performance.now();
    const error = await rejection(clientFor(gdb).get(id, { totalTimeMs: 2000 }));
    assert.equal(error.status, 503);
    assert.equal(gdb.requests.length, 1);
    assert.ok(performance.now() - started < 3000, "did not wait the 10 s");
  });
});

Deno.test("GraceDbClient keeps a call within its total time bound", async (t) => {
  await t.step("failing answers", async () => {
    await using gdb = await GraceDbTestServer.start();
    const id = gdb.addEvent();
    gdb.inject({ path: `events/${id}`, status: 503, times: Infinity });
    const gracedb = clientFor(gdb, { maxAttempts: 1000, minBackoffMs: 20, maxBackoffMs: 20 });
    const started = performance.now();
    const error = await rejection(gracedb.get(id, { totalTimeMs: 300 }));
    const took = performance.now() - started;
    assert.ok(took >= 250 && took < 2000, `took ${took} ms for a 300 ms bound`);
    assert.equal(error.status, 503);
    assert.ok(error.attempts > 3, `${error.attempts} attempts`);
    // The bound may cut an attempt short before its request reaches the server.
    const served = gdb.requests.length;
    assert.ok(served === error.attempts || served === error.attempts - 1, `${served} served`);
    assert.match(error.message, /\(after \d+ attempts\)$/);
  });
  await t.step("no answer at all", async () => {
    await using gdb = await GraceDbTestServer.start();
    const id = gdb.addEvent();
    gdb.inject({ path: `events/${id}`, hang: true, times: Infinity });
    const started = performance.now();
    const error = await rejection(
      clientFor(gdb, { timeoutMs: 10_000 }).get(id, { totalTimeMs: 250 }),
    );
    const took = performance.now() - started;
    assert.ok(took >= 200 && took < 2000, `took ${took} ms for a 250 ms bound`);
    assert.equal(error.status, undefined);
    assert.equal(error.timedOut, true);
    assert.match(error.detail, /no answer within the 0\.25 s bound/);
  });
  await t.step("maxAttempts", async () => {
    await using gdb = await GraceDbTestServer.start();
    const id = gdb.addEvent();
    gdb.inject({ path: `events/${id}`, status: 500, times: Infinity });
    const error = await rejection(clientFor(gdb, { maxAttempts: 3 }).get(id));
    assert.deepEqual([error.status, error.attempts, gdb.requests.length], [500, 3, 3]);
    assert.equal(error.detail, "Server Error (500)", "HTML body without its tags");
  });
});

Deno.test("GraceDbClient stops at once when the caller's signal aborts", async () => {
  await using gdb = await GraceDbTestServer.start();
  const id = gdb.addEvent();
  gdb.inject({ path: `events/${id}`, hang: true, times: Infinity });
  const stop = new AbortController();
  const call = clientFor(gdb, { timeoutMs: 60_000 }).get(id, { signal: stop.signal });
  const reason = new Error("handler deadline");
  stop.abort(reason);
  await assert.rejects(call, (e) => e === reason);
});

Deno.test("GraceDbClient with retryWrites false does not repeat a POST", async () => {
  await using gdb = await GraceDbTestServer.start();
  const id = gdb.addEvent();
  gdb.inject({ path: `events/${id}/log/`, method: "POST", status: 503 });
  const error = await rejection(clientFor(gdb, { retryWrites: false }).writeLog(id, "x"));
  assert.equal(error.status, 503);
  assert.equal(gdb.writes().length, 1);
  gdb.inject({ path: `events/${id}/log/`, method: "POST", status: 503 });
  await clientFor(gdb).writeLog(id, "y");
  assert.deepEqual(gdb.writes().map((w) => w.status), [503, 503, 201], "retried by default");
});

Deno.test("GraceDbClient sends bearer and basic credentials; GraceDB refuses events without them", async (t) => {
  await using gdb = await GraceDbTestServer.start({
    requireAuth: true,
    token: "tok-123",
    basic: { username: "albert", password: "pw" },
  });
  const id = gdb.addEvent();
  await t.step("bearer", async () => {
    gdb.clearRequests();
    const gracedb = clientFor(gdb, { auth: { kind: "bearer", token: "tok-123", source: "test" } });
    await gracedb.writeLog(id, "with a token");
    assert.equal(gdb.logsOf(id).at(-1)?.issuer, "albert.einstein@LIGO.ORG");
    assert.deepEqual(gdb.requests.map((r) => r.auth), ["bearer"]);
  });
  await t.step("basic", async () => {
    gdb.clearRequests();
    const gracedb = clientFor(gdb, {
      auth: { kind: "basic", username: "albert", password: "pw", source: "test" },
    });
    await gracedb.writeLog(id, "with a password");
    assert.equal(gdb.logsOf(id).at(-1)?.issuer, "albert");
    assert.deepEqual(gdb.requests.map((r) => r.auth), ["basic"]);
  });
  await t.step("none", async () => {
    const error = await rejection(clientFor(gdb).get(id));
    assert.deepEqual(
      [error.status, error.detail],
      [403, "Authentication credentials were not provided."],
    );
  });
  await t.step("a wrong token", async () => {
    const gracedb = clientFor(gdb, { auth: { kind: "bearer", token: "nope", source: "test" } });
    assert.equal((await rejection(gracedb.labels(id))).status, 403);
  });
  await t.step("credentials never go to another origin", async () => {
    const gracedb = clientFor(gdb, { auth: { kind: "bearer", token: "tok-123", source: "t" } });
    await assert.rejects(
      gracedb.downloadUrl("http://example.org/api/events/G1/files/x"),
      RangeError,
    );
    assert.doesNotMatch(String(gracedb), /tok-123/);
  });
});

Deno.test("GraceDbClient works in a worker that may reach only the GraceDB host", async () => {
  await using gdb = await GraceDbTestServer.start({ requireAuth: true, token: "tk" });
  const id = gdb.addEvent();
  const mod = new URL("../lib/gracedb/mod.ts", import.meta.url).href;
  const code = `
    import { GraceDbClient } from "${mod}";
    self.onmessage = async ({ data: { url, auth, id } }) => {
      const gracedb = new GraceDbClient(url, { auth, version: "0.1.0" });
      let env = "readable";
      try { Deno.env.get("HOME"); } catch { env = "denied"; }
      try {
        await gracedb.addLabel(id, "DQV");
        self.postMessage({ labels: (await gracedb.labels(id)).map((l) => l.name), env });
      } catch (error) {
        self.postMessage({ error: String(error), env });
      }
    };`;
  const script = URL.createObjectURL(new Blob([code], { type: "application/javascript" }));
  const worker = new Worker(script, {
    type: "module",
    deno: { permissions: { net: [new URL(gdb.url).host], read: false, env: false } },
  });
  try {
    const answer = await new Promise((resolve, reject) => {
      worker.onmessage = (e) => resolve(e.data);
      worker.onerror = (e) => reject(e.error ?? new Error(e.message));
      // The auth value crosses postMessage as a plain object.
      worker.postMessage({ url: gdb.url, auth: { kind: "bearer", token: "tk", source: "t" }, id });
    });
    assert.deepEqual(answer, { labels: ["DQV"], env: "denied" });
  } finally {
    worker.terminate();
    URL.revokeObjectURL(script);
  }
});

Deno.test("GraceDbClient retries a refused connection and reports it without a status", async () => {
  const gdb = await GraceDbTestServer.start();
  await gdb.close();
  const retried: GraceDbError[] = [];
  const gracedb = clientFor(gdb, { maxAttempts: 2, onRetry: (e) => retried.push(e) });
  const error = await rejection(gracedb.get("G1"));
  assert.equal(error.status, undefined);
  assert.equal(error.timedOut, false);
  assert.equal(error.attempts, 2);
  assert.equal(retried.length, 1);
  assert.match(
    error.message,
    /^GraceDB did not answer GET http:\/\/127\.0\.0\.1:\d+\/api\/events\/G1: .+ \(after 2 attempts\)$/,
  );
});

Deno.test("serverMessage unwraps every GraceDB error body format", () => {
  const cases: [string, string, string][] = [
    ['{"detail":"Not found."}', "application/json", "Not found."],
    ['{"error":"Invalid query"}', "application/json", "Invalid query"],
    [
      '"Tag is already applied to this log message"',
      "application/json",
      "Tag is already applied to this log message",
    ],
    ['["a", "b"]', "application/json", "a; b"],
    [
      '{"comment":["This field is required."]}',
      "application/json",
      "comment: This field is required.",
    ],
    [
      '{"non_field_errors":["The fields superevent, name must make a unique set."]}',
      "application/json",
      "The fields superevent, name must make a unique set.",
    ],
    [
      '"{\\"warning\\": \\"Event G1 already labeled with \'DQV\'\\"}"',
      "application/json",
      "Event G1 already labeled with 'DQV'",
    ],
    ["Event not found.", "text/html; charset=utf-8", "Event not found."],
    ["<h1>Server Error (500)</h1>", "text/html", "Server Error (500)"],
    ["", "text/plain", "(empty body)"],
  ];
  for (const [body, type, expected] of cases) {
    assert.equal(serverMessage(body, type), expected, body);
  }
  assert.equal(serverMessage("x".repeat(600)).length, 501);
  assert.equal(retryAfterMs("2"), 2000);
  assert.equal(retryAfterMs(new Date(10_000).toUTCString(), 4000), 6000);
  assert.equal(retryAfterMs("soon"), undefined);
});

Deno.test("GraceDbClient refuses an answer that is not the JSON it expects, without retrying", async () => {
  await using gdb = await GraceDbTestServer.start();
  const id = gdb.addEvent();
  gdb.inject({ path: `events/${id}/log/`, status: 200, body: "<html>login page</html>" });
  const notJson = await rejection(clientFor(gdb).logs(id));
  assert.equal(notJson.status, 200);
  assert.match(notJson.detail, /^Unexpected answer: not JSON/);
  gdb.inject({ path: `events/${id}/labels/`, status: 200, body: { labels: [{ nom: "DQV" }] } });
  const wrongShape = await rejection(clientFor(gdb).labels(id));
  assert.equal(wrongShape.detail, 'Unexpected answer: label: "name" is not a string');
  assert.equal(gdb.requests.length, 2);
});
