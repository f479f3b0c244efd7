import assert from "node:assert/strict";
import { join } from "node:path";
import { GraceDbTestServer } from "./gracedb_server.ts";
import { FIXTURES, ROOT } from "./helpers.ts";

const UA = { "User-Agent": "lvalertMP/test" };

async function call(
  gdb: GraceDbTestServer,
  method: string,
  path: string,
  init: { body?: BodyInit; headers?: Record<string, string> } = {},
): Promise<{ status: number; body: unknown; type: string }> {
  const response = await fetch(new URL(path, gdb.url), {
    method,
    headers: { ...UA, ...init.headers },
    ...(init.body === undefined ? {} : { body: init.body }),
  });
  const text = await response.text();
  const type = response.headers.get("content-type") ?? "";
  let body: unknown = text;
  if (type.includes("json")) body = JSON.parse(text);
  return { status: response.status, body, type };
}

Deno.test("GraceDbTestServer answers 404 to the wrong trailing-slash form of every path", async () => {
  await using gdb = await GraceDbTestServer.start();
  const g = gdb.addEvent();
  const s = gdb.addSuperevent();
  gdb.addLabel(g, "DQV");
  gdb.addLabel(s, "DQV");
  gdb.addLog(g, "f", { file: { name: "a.txt", data: "a" } });
  gdb.addLog(s, "f", { file: { name: "a.txt", data: "a" } });
  const pairs: [string, string][] = [
    [`events/${g}`, `events/${g}/`],
    [`events/${g}/log/`, `events/${g}/log`],
    [`events/${g}/log/1`, `events/${g}/log/1/`],
    [`events/${g}/log/1/tag/`, `events/${g}/log/1/tag`],
    [`events/${g}/files/`, `events/${g}/files`],
    [`events/${g}/labels/`, `events/${g}/labels`],
    [`events/${g}/labels/DQV`, `events/${g}/labels/DQV/`],
    [`events/${g}/voevent/`, `events/${g}/voevent`],
    [`events/${g}/signoff/`, `events/${g}/signoff`],
    [`superevents/${s}/`, `superevents/${s}`],
    [`superevents/${s}/logs/`, `superevents/${s}/logs`],
    [`superevents/${s}/logs/1/`, `superevents/${s}/logs/1`],
    [`superevents/${s}/logs/1/tags/`, `superevents/${s}/logs/1/tags`],
    [`superevents/${s}/files/`, `superevents/${s}/files`],
    [`superevents/${s}/files/a.txt`, `superevents/${s}/files/a.txt/`],
    [`superevents/${s}/labels/`, `superevents/${s}/labels`],
    [`superevents/${s}/labels/DQV/`, `superevents/${s}/labels/DQV`],
    [`superevents/${s}/voevents/`, `superevents/${s}/voevents`],
    [`superevents/${s}/signoffs/`, `superevents/${s}/signoffs`],
  ];
  for (const [right, wrong] of pairs) {
    assert.equal((await call(gdb, "GET", right)).status, 200, right);
    assert.equal((await call(gdb, "GET", wrong)).status, 404, wrong);
  }
  assert.equal((await call(gdb, "DELETE", `superevents/${s}/labels/DQV`)).status, 404);
  assert.equal((await call(gdb, "DELETE", `events/${g}/labels/DQV/`)).status, 404);
  assert.equal((await call(gdb, "PUT", `events/${g}/labels/DQV/`)).status, 404);
  assert.deepEqual(gdb.labelsOf(g), ["DQV"]);
  assert.deepEqual(gdb.labelsOf(s), ["DQV"]);
});

Deno.test("GraceDbTestServer refuses a request without a User-Agent, or from gracedb-client 1.x", async () => {
  await using gdb = await GraceDbTestServer.start();
  const empty = await call(gdb, "GET", "", { headers: { "User-Agent": "" } });
  assert.equal(empty.status, 400);
  assert.match(String(empty.body), /^Your client software is out of date/);
  assert.equal(
    (await call(gdb, "GET", "", { headers: { "User-Agent": "gracedb-client/1.29" } })).status,
    400,
  );
  assert.equal(
    (await call(gdb, "GET", "", { headers: { "User-Agent": "gracedb-client/2.7.0" } })).status,
    200,
  );
  const root = await call(gdb, "GET", "");
  assert.equal((root.body as { links: { events: string } }).links.events, `${gdb.url}events/`);
  assert.deepEqual((await call(gdb, "GET", "user-info/")).body, { username: "AnonymousUser" });
});

Deno.test("GraceDbTestServer with requireAuth refuses event endpoints and superevent writes to anonymous callers", async () => {
  await using gdb = await GraceDbTestServer.start({ requireAuth: true, token: "t" });
  const g = gdb.addEvent();
  const s = gdb.addSuperevent({ preferred_event: g, gw_events: [g] });
  for (const path of [`events/${g}`, `events/${g}/log/`, "events/?query=G1", `events/G404`]) {
    const answer = await call(gdb, "GET", path);
    assert.deepEqual([answer.status, answer.body], [
      403,
      { detail: "Authentication credentials were not provided." },
    ], path);
  }
  const anonymous = await call(gdb, "GET", `superevents/${s}/`);
  assert.equal(anonymous.status, 200, "superevent reads are public");
  const dict = anonymous.body as Record<string, unknown>;
  assert.equal(dict.superevent_id, s);
  assert.equal("gw_events" in dict || "preferred_event" in dict, false, "but not every field");
  const write = await call(gdb, "POST", `superevents/${s}/logs/`, { body: '{"comment":"x"}' });
  assert.equal(write.status, 403);
  const withToken = await call(gdb, "GET", `superevents/${s}/`, {
    headers: { Authorization: "Bearer t" },
  });
  assert.deepEqual((withToken.body as Record<string, unknown>).gw_events, [g]);
  assert.equal(
    (await call(gdb, "GET", `events/${g}`, { headers: { Authorization: "Bearer wrong" } })).status,
    403,
  );
});

Deno.test("GraceDbTestServer understands the query terms its module doc lists", async (t) => {
  await using gdb = await GraceDbTestServer.start();
  const created = (s: string) => Date.parse(`${s}Z`);
  const a = gdb.addEvent({
    group: "CBC",
    pipeline: "gstlal",
    search: "AllSky",
    gpstime: 1000,
    far: 1e-8,
    created: created("2019-04-25T08:00:00"),
  });
  const b = gdb.addEvent({
    group: "Burst",
    pipeline: "CWB",
    gpstime: 1500,
    far: 1e-4,
    created: created("2019-04-25T09:00:00"),
  });
  const h = gdb.addEvent({ group: "CBC", pipeline: "HardwareInjection", gpstime: 1010, far: 1 });
  const test = gdb.addEvent({ group: "Test", pipeline: "gstlal", gpstime: 1005 });
  const mdc = gdb.addEvent({ group: "CBC", pipeline: "gstlal", search: "MDC", gpstime: 1006 });
  gdb.addLabel(a, "EM_READY");
  const query = async (q: string) => {
    const answer = await call(gdb, "GET", `events/?query=${encodeURIComponent(q)}&count=100`);
    assert.equal(answer.status, 200, q);
    return (answer.body as { events: { graceid: string }[] }).events.map((e) => e.graceid).sort();
  };
  const cases: [string, string[]][] = [
    ["gpstime: 999 .. 1020", [a, h].sort()],
    ["999 .. 1020", [a, h].sort()],
    ["pipeline: CWB", [b]],
    ["group: CBC", [a, h].sort()],
    ["group: Test", [test]],
    ["search: MDC", [mdc]],
    ["far < 1e-6", [a]],
    ["far >= 1e-6", [b, h].sort()],
    ["created: 2019-04-25 08:30:00 .. 2019-04-25 10:00:00", [b]],
    ["EM_READY", [a]],
    ["~EM_READY gpstime: 0 .. 2000", [b, h].sort()],
    [`HardwareInjection 1000 .. 1020`, [h]],
    [`${a} .. ${b}`, [a, b].sort()],
    ["gstlal AllSky", [a]],
    ['group: CBC pipeline: "gstlal"', [a]],
    ["", [a, b, h].sort()],
  ];
  for (const [q, expected] of cases) {
    await t.step(q || "(empty)", async () => assert.deepEqual(await query(q), expected));
  }
  await t.step("invalid queries", async () => {
    const events = await call(gdb, "GET", "events/?query=color%3A%20blue");
    assert.deepEqual([events.status, events.body], [400, { error: "Invalid query" }]);
    const superevents = await call(gdb, "GET", "superevents/?query=far%20%3C%20x");
    assert.deepEqual([superevents.status, superevents.body], [400, { detail: "Invalid query" }]);
  });
});

Deno.test("GraceDbTestServer pages event and superevent lists like GraceDB", async () => {
  await using gdb = await GraceDbTestServer.start();
  for (let i = 0; i < 3; i++) gdb.addEvent({ gpstime: i });
  for (let i = 0; i < 3; i++) gdb.addSuperevent({ t_0: i });
  const events = (await call(gdb, "GET", "events/?count=2&start=2")).body as Record<
    string,
    unknown
  >;
  assert.equal(events.numRows, 3);
  assert.deepEqual(Object.keys(events.links as object).sort(), ["first", "last", "self"]);
  const first = (await call(gdb, "GET", "events/?count=2")).body as { links: { next: string } };
  assert.match(first.links.next, /start=2/);
  assert.equal((await call(gdb, "GET", "events/")).status, 200);
  const last = (await call(gdb, "GET", "superevents/?count=2&start=2")).body as {
    links: Record<string, unknown>;
    superevents: unknown[];
  };
  assert.equal(last.superevents.length, 1);
  assert.equal(last.links.next, null);
  assert.match(String(last.links.previous), /start=0/);
});

Deno.test("GraceDbTestServer refuses log entries GraceDB refuses", async () => {
  await using gdb = await GraceDbTestServer.start();
  const g = gdb.addEvent();
  const s = gdb.addSuperevent();
  const form = new FormData();
  form.append("comment", "no file");
  const noFile = await call(gdb, "POST", `events/${g}/log/`, { body: form });
  assert.equal(noFile.status, 400, "form data without a file");
  const names = JSON.stringify({ comment: "x", tagname: ["a", "b"], displayName: ["A"] });
  const mismatch = await call(gdb, "POST", `superevents/${s}/logs/`, { body: names });
  assert.equal(mismatch.status, 400);
  assert.match(String(mismatch.body), /as many display names as tags/);
  const noComment = await call(gdb, "POST", `events/${g}/log/`, { body: "{}" });
  assert.deepEqual([noComment.status, noComment.body], [400, {
    comment: ["This field is required."],
  }]);
  const withLabel = await call(gdb, "POST", `events/${g}/log/`, {
    body: JSON.stringify({ comment: "labelled", label: "DQV" }),
  });
  assert.equal(withLabel.status, 201);
  assert.deepEqual(gdb.labelsOf(g), ["DQV"]);
  assert.deepEqual(gdb.logsOf(s), []);
});

Deno.test("GraceDbTestServer.inject matches by path and method, counts down, and can be removed", async () => {
  await using gdb = await GraceDbTestServer.start();
  const g = gdb.addEvent();
  const byPattern = gdb.inject({ path: /\/labels\/$/, method: "GET", status: 503, times: 2 });
  assert.equal((await call(gdb, "GET", `events/${g}/labels/`)).status, 503);
  assert.equal(byPattern.remaining, 1);
  assert.equal((await call(gdb, "GET", `events/${g}/log/`)).status, 200, "another path");
  assert.equal((await call(gdb, "GET", `events/${g}/labels/`)).status, 503);
  assert.equal((await call(gdb, "GET", `events/${g}/labels/`)).status, 200, "used up");
  const forever = gdb.inject({ path: `/api/events/${g}`, status: 500, times: Infinity });
  assert.equal((await call(gdb, "GET", `events/${g}`)).status, 500);
  forever.remove();
  assert.equal((await call(gdb, "GET", `events/${g}`)).status, 200);
  assert.deepEqual(gdb.requests.map((r) => [r.status, r.fault]), [
    [503, true],
    [200, false],
    [503, true],
    [200, false],
    [500, true],
    [200, false],
  ]);
  gdb.inject({ path: `events/${g}`, status: 429, retryAfter: 7 });
  const throttled = await fetch(new URL(`events/${g}`, gdb.url), { headers: UA });
  assert.equal(throttled.headers.get("retry-after"), "7");
  assert.deepEqual(await throttled.json(), {
    detail: "Request was throttled. Expected available in 7 seconds.",
  });
});

Deno.test("gracedb_server.ts runs from the command line with a data file and prints its URL", async () => {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-net",
      "--allow-read",
      join(ROOT, "tests/gracedb_server.ts"),
      "--port",
      "0",
      "--data",
      join(FIXTURES, "gracedb/demo.json"),
    ],
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  try {
    const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
    let out = "";
    while (!out.includes("\n")) {
      const { value, done } = await reader.read();
      if (done) break;
      out += value;
    }
    const url = out.match(/GraceDB test server at (http:\/\/127\.0\.0\.1:\d+\/api\/)/)?.[1];
    assert.ok(url, out);
    const response = await fetch(`${url}events/G1002`, { headers: UA });
    const event = await response.json();
    assert.deepEqual([event.graceid, event.labels], ["G1002", ["EM_READY"]]);
    const logs = await (await fetch(`${url}events/G1002/log/`, { headers: UA })).json();
    assert.equal(logs.numRows, 3);
    await reader.cancel();
  } finally {
    child.kill("SIGTERM");
    await child.status;
  }
});
