/**
 * The HTTP server of a real listener process on replayed streams:
 * `/metrics` read back with a Prometheus text-format parser from npm and
 * checked against a stream of known counts, `/healthz` against the
 * `status` verdict, the token check, the refusal of an open address
 * without a token, 404 and 405, and event streams that fall behind.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import parsePrometheus from "parse-prometheus-text-format";
import { parseHttpAddress } from "../lib/config/cli.ts";
import { EventStreams, isLoopback, rejectionReason } from "../lib/http/mod.ts";
import { replayFlags, runListener, tempDir } from "./helpers.ts";
import { get, type Line, startHttpListener, watchFiles } from "./http_helpers.ts";

interface Family {
  name: string;
  type: string;
  metrics: {
    value?: string;
    labels?: Record<string, string>;
    buckets?: Record<string, string>;
    count?: string;
    sum?: string;
  }[];
}

function parse(text: string): Family[] {
  return parsePrometheus(text) as Family[];
}

/** The value of one counter or gauge series (undefined when absent). */
function value(families: Family[], name: string, labels: Record<string, string> = {}) {
  const family = families.find((f) => f.name === name);
  const series = family?.metrics.find((m) =>
    Object.entries(labels).every(([k, v]) => m.labels?.[k] === v) &&
    Object.keys(m.labels ?? {}).length === Object.keys(labels).length
  );
  return series?.value === undefined ? undefined : Number(series.value);
}

/**
 * One histogram series. The parser reads a histogram's series right only
 * when they carry no label but `le` (it merges the others), so it is given
 * the lines of one series at a time, that series' label taken off.
 */
function histogram(text: string, name: string, label: string) {
  const lines = text.split("\n").filter((l) =>
    l.startsWith(`# HELP ${name} `) || l.startsWith(`# TYPE ${name} `) ||
    (l.startsWith(name) && l.includes(label))
  ).map((l) => l.replace(`,${label}`, "").replace(`{${label}}`, ""));
  const series = parse(lines.join("\n") + "\n")[0]?.metrics[0];
  assert.ok(series, `${name}{${label}} in the metrics`);
  return { count: Number(series.count), sum: Number(series.sum), buckets: series.buckets ?? {} };
}

const A1 = { uid: "A1", alert_type: "new" };

/** A stream of known counts. */
const STREAM: (Line | string)[] = [
  { node: "a1", id: "1", payload: A1 },
  { node: "a2", id: "1", payload: A1 }, // the same payload on the child's other node
  { node: "a1", id: "2", payload: { uid: "A2", alert_type: "new" } },
  { node: "a1", id: "1", payload: { uid: "A9", alert_type: "update" } }, // an item id seen
  { node: "a1", id: "3", payload: { uid: "fail-1", alert_type: "new" } },
  { node: "b1", id: "1", payload: { uid: "B1", alert_type: "new" } },
  { node: "zz", id: "1", payload: { uid: "Z1", alert_type: "new" } },
  { node: "a1", id: "4", payload: "{not json" },
  { node: "a1", id: "5", payload: { alert_type: "new" } },
  "this line is not JSON",
];

Deno.test("/metrics, read back with a Prometheus parser, counts a replayed stream exactly", async () => {
  await using run = await startHttpListener(STREAM);
  const metrics = () => get(`${run.url}metrics`).then((r) => r.body);
  // Barrier: every task that comes due soon has run and been reported, and a snapshot taken.
  let text = "";
  const end = Date.now() + 20_000;
  for (;;) {
    text = await metrics();
    const f = parse(text);
    const done = value(f, "lvalertmp_tasks_executed_total", { child: "alpha" }) === 4 &&
      value(f, "lvalertmp_tasks_executed_total", { child: "beta" }) === 2 &&
      value(f, "lvalertmp_tasks_failed_total", { child: "alpha" }) === 1 &&
      histogram(text, "lvalertmp_snapshot_duration_seconds", 'child="alpha"').count >= 1;
    if (done) break;
    assert.ok(Date.now() < end, `tasks not all reported:\n${text}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  const f = parse(text);
  const expect = (name: string, labels: Record<string, string>, want: number) =>
    assert.equal(value(f, name, labels), want, `${name}${JSON.stringify(labels)}`);
  expect("lvalertmp_alerts_received_total", { node: "a1" }, 6);
  expect("lvalertmp_alerts_received_total", { node: "a2" }, 1);
  expect("lvalertmp_alerts_received_total", { node: "b1" }, 1);
  expect("lvalertmp_alerts_received_total", { node: "zz" }, 1);
  expect("lvalertmp_alerts_routed_total", { node: "a1", child: "alpha" }, 3);
  expect("lvalertmp_alerts_routed_total", { node: "a2", child: "alpha" }, 0);
  expect("lvalertmp_alerts_routed_total", { node: "b1", child: "beta" }, 1);
  expect("lvalertmp_alerts_duplicate_total", { node: "a2", child: "alpha" }, 1);
  expect("lvalertmp_alerts_duplicate_total", { node: "a1", child: "alpha" }, 1);
  expect("lvalertmp_alerts_rejected_total", { reason: "not_json" }, 1);
  expect("lvalertmp_alerts_rejected_total", { reason: "no_uid" }, 1);
  expect("lvalertmp_alerts_rejected_total", { reason: "bad_line" }, 1);
  expect("lvalertmp_alerts_unrouted_total", { node: "zz" }, 1);
  expect("lvalertmp_alerts_applied_total", { child: "alpha" }, 3);
  expect("lvalertmp_alerts_applied_total", { child: "beta" }, 1);
  // A1 and A2 wait for their later tasks; fail-1's item ended with its failure.
  expect("lvalertmp_queue_length", { child: "alpha" }, 2);
  expect("lvalertmp_queue_length", { child: "beta" }, 1);
  expect("lvalertmp_queue_warn_threshold", { child: "beta" }, 5);
  expect("lvalertmp_journal_lag_seconds", { child: "alpha" }, 0);
  expect("lvalertmp_child_up", { child: "alpha" }, 1);
  expect("lvalertmp_child_restarts_total", { child: "alpha" }, 0);
  expect("lvalertmp_health_status", {}, 0);
  assert.equal(f.find((x) => x.name === "lvalertmp_xmpp_session_up"), undefined, "a replay");
  const lateness = histogram(text, "lvalertmp_task_lateness_seconds", 'child="alpha"');
  assert.equal(lateness.count, 5, "4 tasks run, 1 failed");
  assert.equal(Number(lateness.buckets["+Inf"]), 5);
  assert.ok(lateness.sum >= 0 && lateness.sum < 5, `lateness sum ${lateness.sum}`);
  const routing = histogram(text, "lvalertmp_routing_latency_seconds", 'child="alpha"');
  assert.equal(routing.count, 3);
  assert.ok(routing.sum > 0);
  assert.equal(histogram(text, "lvalertmp_routing_latency_seconds", 'child="beta"').count, 1);
  assert.ok(histogram(text, "lvalertmp_snapshot_duration_seconds", 'child="alpha"').count >= 1);
});

Deno.test("/healthz says the status verdict: 200 while OK, 503 once a child is given up", async () => {
  await using run = await startHttpListener([
    { node: "b1", t: 0, id: "1", payload: { uid: "B1", alert_type: "new" } },
    { node: "a1", t: 3, id: "1", payload: { uid: "poison", alert_type: "new" } },
  ]);
  const ok = await get(`${run.url}healthz`);
  assert.equal(ok.status, 200);
  assert.equal(JSON.parse(ok.body).status, "OK");
  await run.listener.until(() => run.listener.named("child_given_up").length === 1, "a give-up");
  const crit = await get(`${run.url}healthz`);
  assert.equal(crit.status, 503);
  const body = JSON.parse(crit.body);
  assert.equal(body.status, "CRITICAL");
  assert.deepEqual(body.problems[0], { level: "critical", text: "child alpha given up" });
  const f = parse((await get(`${run.url}metrics`)).body);
  assert.equal(value(f, "lvalertmp_child_given_up", { child: "alpha" }), 1);
  assert.equal(value(f, "lvalertmp_child_restarts_total", { child: "alpha" }), 1);
  assert.equal(value(f, "lvalertmp_health_status"), 2);
});

Deno.test("with --http-token every request needs the bearer token (401 otherwise)", async () => {
  const token = "s3cret-token-0123456789";
  await using files = await tempDir({ token: token + "\n" });
  await Deno.chmod(join(files.path, "token"), 0o600);
  await using run = await startHttpListener([], ["--http-token", join(files.path, "token")]);
  for (const path of ["", "metrics", "healthz", "events", "nowhere"]) {
    const none = await get(`${run.url}${path}`);
    assert.equal(none.status, 401, `/${path} without a token`);
    assert.match(none.headers.get("www-authenticate") ?? "", /^Bearer/);
    assert.equal((await get(`${run.url}${path}`, { token: token + "x" })).status, 401);
  }
  assert.equal((await get(`${run.url}healthz`, { token })).status, 200);
  assert.equal((await get(`${run.url}metrics`, { token })).status, 200);
  const page = await get(run.url, { token });
  assert.equal(page.status, 200);
  assert.match(page.body, /<table class="children">/);
});

Deno.test("--http refusals are configuration errors: exit 78, nothing started", async (t) => {
  await using dir = await tempDir({ ...watchFiles(), "r.jsonl": "", "open": "x".repeat(20) });
  await Deno.chmod(join(dir.path, "open"), 0o644);
  const run = (...extra: string[]) =>
    runListener([
      ...replayFlags(join(dir.path, "l.ini"), join(dir.path, "r.jsonl"), join(dir.path, "state")),
      ...extra,
    ]);
  await t.step("a non-loopback address without a token", async () => {
    const r = await run("--http", "0.0.0.0:0");
    assert.equal(r.code, 78, r.stderr);
    assert.match(r.stderr, /0\.0\.0\.0 is not a loopback address: give --http-token FILE/);
    assert.deepEqual(r.events, [], "nothing logged, nothing started");
    await assert.rejects(Deno.stat(join(dir.path, "state")), Deno.errors.NotFound);
  });
  await t.step("a token file that others may read", async () => {
    const r = await run("--http", "127.0.0.1:0", "--http-token", join(dir.path, "open"));
    assert.equal(r.code, 78, r.stderr);
    assert.match(r.stderr, /readable by group or others \(mode 644\)/);
  });
  await t.step("a malformed address is a usage error", async () => {
    const r = await run("--http", "localhost");
    assert.equal(r.code, 2, r.stderr);
  });
});

Deno.test("unknown paths are 404, methods other than GET 405; the server stops with the listener", async () => {
  await using run = await startHttpListener([]);
  assert.equal((await get(`${run.url}nowhere`)).status, 404);
  assert.equal((await get(`${run.url}metrics/x`)).status, 404);
  for (const method of ["POST", "PUT", "DELETE", "HEAD"]) {
    const r = await get(`${run.url}metrics`, { method });
    assert.equal(r.status, 405, method);
    assert.equal(r.headers.get("allow"), "GET");
  }
  // A viewer that goes away at once leaves the server serving.
  const abort = new AbortController();
  const events = await fetch(`${run.url}events`, { signal: abort.signal });
  assert.equal(events.headers.get("content-type"), "text/event-stream");
  const first = await events.body!.getReader().read();
  assert.match(new TextDecoder().decode(first.value), /retry: 2000/);
  abort.abort();
  assert.equal((await get(`${run.url}healthz`)).status, 200);
  // The server stops with the listener, even with a viewer still connected.
  const viewer = await fetch(`${run.url}events`);
  assert.equal(await run.listener.stop("SIGTERM"), 0);
  await viewer.body?.cancel().catch(() => {});
  await assert.rejects(fetch(`${run.url}healthz`), TypeError);
});

Deno.test("EventStreams drops a client that falls behind and forgets one that leaves", async () => {
  const dropped: number[] = [];
  const streams = new EventStreams({ maxBuffered: 4096, dropped: (n) => dropped.push(n) });
  const slow = streams.open()!;
  const gone = streams.open()!;
  assert.equal(streams.size, 2);
  await gone.cancel();
  assert.equal(streams.size, 1, "a client that left is forgotten");
  for (let i = 0; i < 10 && streams.size > 0; i++) streams.send("update", "x".repeat(1000));
  assert.equal(streams.size, 0, "the client that never read is dropped");
  assert.deepEqual(dropped, [0]);
  await assert.rejects(slow.getReader().read(), /fell behind/);
  streams.close();
  assert.equal(streams.open(), undefined, "no stream after close");
});

Deno.test("--http addresses: syntax, loopback, rejection reasons", () => {
  assert.deepEqual(parseHttpAddress("[::1]:9108"), { hostname: "::1", port: 9108 });
  assert.deepEqual(parseHttpAddress("localhost:0"), { hostname: "localhost", port: 0 });
  assert.equal(typeof parseHttpAddress("::1:9108"), "string");
  assert.equal(typeof parseHttpAddress("host:99999"), "string");
  for (const h of ["127.0.0.1", "127.1.2.3", "localhost", "::1"]) assert.ok(isLoopback(h), h);
  for (const h of ["0.0.0.0", "10.0.0.1", "::", "example.org", "127.0.0.256"]) {
    assert.ok(!isLoopback(h), h);
  }
  const reason = (node: string | null, text: string) => rejectionReason({ node, reason: text });
  assert.equal(reason("n", "payload is not JSON: Unexpected token"), "not_json");
  assert.equal(reason("n", "payload must be a JSON object, got an array"), "not_object");
  assert.equal(reason("n", 'payload has no "uid"'), "no_uid");
  assert.equal(reason(null, "not JSON: x"), "bad_line");
});
