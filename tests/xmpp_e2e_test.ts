/**
 * End to end through real XMPP servers, Prosody and ejabberd: the
 * listener, send, command and admin as real processes. Each server is
 * started once and shared by the steps of its test; every step gets fresh
 * nodes and a fresh folder. Skipped (and counted as ignored) only with
 * LVALERT_SKIP_XMPP=1; without the servers they fail.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import parsePrometheus from "parse-prometheus-text-format";
import { eventItems } from "../lib/xmpp/pubsub.ts";
import { jsonLines, ListenerProcess, runListener } from "./helpers.ts";
import { TcpProxy } from "./xmpp_proxy.ts";
import { connect, SERVERS, startServer, type XmppServer, xmppTest } from "./xmpp_servers.ts";
import { createNode, NODES, type World, world, type WorldOptions } from "./xmpp_world.ts";

async function fixtureLines(name: string): Promise<{ node: string; payload: unknown }[]> {
  const text = await Deno.readTextFile(
    join(new URL(".", import.meta.url).pathname, "fixtures", name),
  );
  return text.split("\n").filter(Boolean).map((l) => JSON.parse(l));
}

/** Publishes a marker alert and waits until the listener has it: what came before has arrived. */
async function barrier(w: World, listener: ListenerProcess, node = "burst_cwb_allsky") {
  const uid = `barrier-${crypto.randomUUID()}`;
  await (await w.pubsub()).publish(node, JSON.stringify({ uid, alert_type: "new" }));
  await listener.until(() => listener.named("alert").some((e) => e.uid === uid), uid);
}

/** A scenario run on each server, in a fresh world. */
interface Scenario {
  name: string;
  world?: WorldOptions;
  run(w: World): Promise<void>;
}

const SCENARIOS: Scenario[] = [];
const scenario = (name: string, run: (w: World) => Promise<void>, options?: WorldOptions) =>
  SCENARIOS.push({ name, run, ...(options ? { world: options } : {}) });

scenario(
  "alerts published on the server reach the same children with the same events as a replay",
  async (w) => {
    const listener = await w.start();
    const replayed = await runListener([
      "-c",
      w.config,
      "--replay",
      join(w.dir, "alerts-legacy.jsonl"),
      "--speed",
      "0",
      "--exit-when-idle",
      "--log-format",
      "json",
    ]);
    assert.equal(replayed.code, 0, replayed.stderr);
    const pubsub = await w.pubsub();
    for (const line of await fixtureLines("alerts-legacy.jsonl")) {
      await pubsub.publish(line.node, JSON.stringify(line.payload));
    }
    const key = (e: Record<string, unknown>) => `${e.child}|${e.node}|${e.uid}|${e.alert_type}`;
    const want = replayed.events.filter((e) => e.event === "alert").map(key).sort();
    await listener.until(() => listener.named("alert").length >= want.length, "every alert");
    await listener.until(() => listener.named("alert_duplicate").length === 1, "the duplicate");
    assert.deepEqual(listener.named("alert").map(key).sort(), want);
    assert.equal(listener.named("alert_duplicate")[0]?.node, "cbc_gstlal_lowmass");
    await listener.until(
      () => listener.named("item_completed").length === want.length,
      "every item to complete",
      30,
    );
    // Seconds after the last alert: a copy applied twice would show by now.
    assert.equal(listener.named("alert").length, want.length, "no alert applied twice");
    const sent = Date.now();
    assert.equal(await listener.stop("SIGTERM"), 0);
    assert.ok(Date.now() - sent < 5000, "a clean stop within seconds");
    assert.equal(listener.named("summary")[0]?.routed, want.length);
  },
);

scenario(
  "send -p - reads stdin, command delivers printMessage, admin creates and lists a node",
  async (w) => {
    const listener = await w.start();
    const tool = (...args: string[]) => [...args, ...w.toolFlags()];
    const sent = await runListener(tool("send", "-n", "burst_cwb_allsky", "-p", "-", "-v"), {
      stdin: '{"uid":"G42","alert_type":"new","object":{"group":"Burst"}}\n',
    });
    assert.equal(sent.code, 0, sent.stderr);
    assert.match(sent.stdout, /published item \S+ on burst_cwb_allsky/);
    await listener.until(
      () => listener.named("alert").some((e) => e.uid === "G42" && e.child === "burst"),
      "G42",
    );

    const commanded = await runListener(
      tool("command", "--node", "command-watcher", "message,hello there", "printMessage"),
    );
    assert.equal(commanded.code, 0, commanded.stderr);
    await listener.until(
      () => listener.named("command").some((e) => e.message === "hello there"),
      "printMessage",
    );

    const bad = await runListener(tool("command", "--node", "command-watcher", "clearGraceID"));
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /is missing required kwarg=graceid/);

    const created = await runListener(tool("admin", "--create", "--node", "brand_new"));
    assert.equal(created.code, 0, created.stderr);
    const listed = await runListener(tool("admin", "--get-nodes"));
    assert.equal(listed.code, 0, listed.stderr);
    assert.deepEqual(listed.stdout.trim().split("\n").sort(), [...NODES, "brand_new"].sort());
    const subs = await runListener(tool("admin", "-f", "-q", "brand_new"));
    assert.equal(subs.code, 0, subs.stderr);
    const mine = await runListener(tool("admin", "-i"));
    assert.match(mine.stdout, /^brand_new\tpublisher@localhost\/admin\tsubscribed/m);
    assert.equal(await listener.stop(), 0);
  },
);

scenario(
  "a certificate that fails verification ends the listener and the tools at once, with the TLS error",
  async (w) => {
    const withoutCa = (flags: string[]) =>
      flags.filter((f, i, all) => f !== "--ca-file" && all[i - 1] !== "--ca-file");
    const r = await runListener(["-c", w.config, ...withoutCa(w.listenFlags())], { timeout: 30 });
    assert.equal(r.code, 69);
    assert.match(r.stderr, /TLS with localhost failed: .*(certificate|verify)/i);
    assert.equal(r.events.filter((e) => e.event === "xmpp_retry").length, 0, "no retry loop");
    const started = Date.now();
    const sent = await runListener(
      ["send", "-n", "cbc_gstlal", "-p", "-", ...withoutCa(w.toolFlags())],
      { stdin: '{"uid":"T1","alert_type":"new"}' },
    );
    assert.equal(sent.code, 69, sent.stderr);
    assert.match(sent.stderr, /TLS with localhost failed/);
    assert.ok(Date.now() - started < 10_000, `send gave up in ${Date.now() - started} ms`);
  },
);

scenario("a wrong password exits 77 with the server's reason, and no retry", async (w) => {
  const r = await runListener([
    "-c",
    w.config,
    ...w.listenFlags(),
    "-a",
    "listener",
    "-b",
    "wrong",
  ]);
  assert.equal(r.code, 77);
  assert.match(r.stderr, /Login as listener refused by localhost: not-authorized/);
  assert.match(r.stderr, /-b\/--password puts the password in argv/);
  assert.doesNotMatch(r.stdout + r.stderr, /\bwrong\b/, "the password appears nowhere");
  const started = Date.now();
  const sent = await runListener(
    ["send", "-n", "cbc_gstlal", "-p", "-", ...w.toolFlags(), "-b", "wrong"],
    { stdin: '{"uid":"T1","alert_type":"new"}' },
  );
  assert.equal(sent.code, 77, sent.stderr);
  assert.ok(Date.now() - started < 10_000, `send gave up in ${Date.now() - started} ms`);
});

scenario("a missing node is named (exit 69) unless --create-missing-nodes", async (w) => {
  const r = await runListener(["-c", w.config, ...w.listenFlags()]);
  assert.equal(r.code, 69);
  assert.match(
    r.stderr,
    /Node\(s\) not found on pubsub\.localhost: cbc_gstlal_lowmass, burst_cwb_allsky/,
  );
  // Only the publisher (an admin on Prosody) may create nodes everywhere, so let it listen.
  const flags = w.listenFlags("--create-missing-nodes").map((f) =>
    f.endsWith("netrc-listener") ? join(w.server.dir, "netrc-publisher") : f
  );
  const listener = new ListenerProcess(["-c", w.config, ...flags]);
  await listener.until(() => listener.named("caught_up").length === NODES.length, "catch-up");
  assert.deepEqual(listener.named("node_created").map((e) => e.node).sort(), [
    "burst_cwb_allsky",
    "cbc_gstlal_lowmass",
  ]);
  assert.equal(await listener.stop(), 0);
}, { nodes: ["cbc_gstlal", "command-watcher"] });

scenario("the same alert on two nodes of one child is processed once", async (w) => {
  const listener = await w.start();
  const payload = JSON.stringify({ uid: "G77", alert_type: "new", object: {} });
  const pubsub = await w.pubsub();
  await pubsub.publish("cbc_gstlal", payload);
  await pubsub.publish("cbc_gstlal_lowmass", payload);
  await listener.until(() => listener.named("alert_duplicate").length === 1, "the duplicate");
  // The router names the twin as it arrives, before the child logs the first copy: a later
  // alert through the same child shows that whatever was delivered of G77 has been applied.
  await barrier(w, listener, "cbc_gstlal");
  assert.equal(listener.named("alert").filter((e) => e.uid === "G77").length, 1);
  assert.equal(await listener.stop(), 0);
});

scenario(
  "a listener restarted after alerts were published catches up on them exactly once",
  async (w) => {
    const pubsub = await w.pubsub();
    const first = await w.start();
    await pubsub.publish("cbc_gstlal", JSON.stringify({ uid: "B1", alert_type: "new" }));
    await first.until(() => first.named("alert").length === 1, "B1");
    assert.equal(await first.stop(), 0);
    for (const uid of ["D1", "D2", "D3"]) {
      await pubsub.publish("burst_cwb_allsky", JSON.stringify({ uid, alert_type: "new" }));
    }
    const second = await w.start();
    // Caught up before it is ready; anything repeated would reach each child before these.
    await barrier(w, second, "cbc_gstlal");
    await barrier(w, second, "burst_cwb_allsky");
    assert.deepEqual(
      second.named("alert").map((e) => String(e.uid)).filter((u) => !u.startsWith("barrier-"))
        .sort(),
      ["D1", "D2", "D3"],
      "B1 is not repeated",
    );
    assert.equal(second.named("caught_up").find((e) => e.node === "burst_cwb_allsky")?.routed, 3);
    assert.equal(await second.stop(), 0);
  },
);

scenario(
  "a second listener on the same resource ends the first with a clear message",
  async (w) => {
    const first = await w.start();
    const second = await w.start("--state-dir", join(w.dir, "state2"));
    assert.equal(await first.exited(), 1);
    assert.match(
      first.stderr,
      /Another client logged in as listener@localhost\/listener \(stream conflict: "Replaced by new connection"\); not reconnecting/,
    );
    // An alert through the second after the first is gone: it is still connected and routing.
    await barrier(w, second);
    assert.equal(second.named("xmpp_disconnected").length, 0, "the second one stays");
    assert.equal(await second.stop(), 0);
  },
);

scenario("heartbeat requests are answered on the same node within a second", async (w) => {
  const pubsub = await w.pubsub();
  // Nodes publish only for their publishers: the listener must be one to answer.
  await pubsub.affiliate("cbc_gstlal", "listener@localhost", "publisher");
  await using monitor = await connect(w.server, "other", "monitor", { presence: false });
  await monitor.pubsub.subscribe("cbc_gstlal", monitor.jid);
  const listener = await w.start("-v");
  const sent = Date.now();
  await pubsub.publish(
    "cbc_gstlal",
    JSON.stringify({ uid: "heartbeat", ptype: "request", key: "k-1" }),
  );
  const responses = () =>
    monitor.events("cbc_gstlal").flatMap(eventItems).map((i) => JSON.parse(i.payload))
      .filter((p) => p.ptype === "response");
  const response = await monitor.until(
    () => responses().find((p) => p.key === "k-1"),
    "the heartbeat response",
    5000,
  );
  assert.ok(Date.now() - sent < 1500, `answered in ${Date.now() - sent} ms`);
  assert.equal(response.child, "gstlal watcher");
  assert.equal(typeof response.pid, "number");
  await listener.until(() => listener.named("alert_ignored").length === 1, "its own response");
  assert.equal(await listener.stop(), 0);
  assert.equal(jsonLines(listener.stdout).filter((e) => e.event === "alert_rejected").length, 0);
});

scenario(
  "SIGKILL 20 times while alerts are published on the server: each applied once, no task lost",
  async (w) => {
    const pubsub = await w.pubsub();
    await createNode(pubsub, "cbc_gstlal", { maxItems: 200 });
    const dir = w.dir;
    await Deno.writeTextFile(
      join(dir, "kill.ini"),
      "[watch]\nnodes = cbc_gstlal\nchildConfig = kill-child.ini\ncheckpoint_interval = 0.2\n",
    );
    await Deno.writeTextFile(
      join(dir, "kill-child.ini"),
      "[general]\nprocess_type = test\nlog_level = 20\nprint2stdout = False\n[test]\ndelays = 1 2\nrepeats = 2\ninterval = 0.5\n",
    );
    const args = ["-c", join(dir, "kill.ini"), ...w.listenFlags("--catch-up", "200")];
    const first = new ListenerProcess(args);
    await first.until(() => first.named("xmpp_ready").length === 1, "the first start");
    const uids = Array.from({ length: 60 }, (_, i) => `K${i}`);
    const publishing = (async () => {
      for (const uid of uids) {
        await pubsub.publish("cbc_gstlal", JSON.stringify({ uid, alert_type: "new" }));
        await new Promise((r) => setTimeout(r, 200)); // the pace of the alerts
      }
    })();
    let seed = 977;
    const random = () => (seed = (seed * 16807) % 2147483647) / 2147483647;
    let current = first;
    for (let round = 0; round < 20; round++) {
      // The moment of each kill, at random.
      await new Promise((r) => setTimeout(r, 200 + random() * 600));
      await current.stop("SIGKILL");
      current = new ListenerProcess(args);
    }
    await publishing;
    await current.until(() => current.named("xmpp_ready").length === 1, "the last start", 30);
    const logFile = join(dir, "test_kill-child.log");
    const logged = () => jsonLines(Deno.readTextFileSync(logFile));
    const tasks = (uid: string, events: Record<string, unknown>[]) => {
      const alerts = events.filter((e) => e.event === "alert" && e.uid === uid);
      const t0 = alerts[0]?.t0 as number;
      return ([["print@1s", t0 + 1], ["print@2s", t0 + 2], ["repeat", t0 + 0.5], [
        "repeat",
        t0 + 1,
      ]] as const).map(([task, due]) =>
        events.filter((e) =>
          e.event === "task_executed" && e.graceid === uid && e.task === task &&
          Math.abs((e.due as number) - due) < 1e-6
        ).length
      );
    };
    // Every task of every alert has run (the last ones up to 2 s after their alert).
    await current.until(
      () => {
        const events = logged();
        return uids.every((uid) => tasks(uid, events).every((n) => n >= 1));
      },
      "every task of every alert",
      30,
    );
    assert.equal(await current.stop(), 0);
    const events = logged();
    let reruns = 0;
    for (const uid of uids) {
      const alerts = events.filter((e) => e.event === "alert" && e.uid === uid);
      assert.ok(alerts.filter((e) => e.recovered !== true).length <= 1, `${uid} routed once`);
      for (const n of tasks(uid, events)) reruns += n - 1;
    }
    console.log(`${w.server.kind}: tasks run twice across 20 kills: ${reruns}`);
  },
  { nodes: [] },
);

scenario("every command reaches a child through XMPP", async (w) => {
  const listener = await w.start();
  const send = (...words: string[]) =>
    runListener(["command", "--node", "command-watcher", ...words, ...w.toolFlags()]);
  // A command item that waits 10 minutes keeps one item (graceid G1) queued.
  assert.equal((await send("message,tick", "sleep,600", "graceid,G1", "printMessage")).code, 0);
  await listener.until(() => listener.named("alert").length === 1, "the waiting item");
  const sequence: [string[], (e: Record<string, unknown>) => boolean][] = [
    [
      ["message,over xmpp", "printMessage"],
      (e) => e.event === "command" && e.message === "over xmpp",
    ],
    [
      ["raiseWarning"],
      (e) =>
        e.event === "task_failed" && e.level === "warning" &&
        e.error === "raiseWarning command received",
    ],
    [
      ["raiseException"],
      (e) => e.event === "task_failed" && e.error === "raiseException command received",
    ],
    [["filename,STDOUT", "printQueue"], (e) => e.event === "queue" && e.size === 1],
    [
      ["filename,x.json", "checkpointQueue"],
      (e) => e.event === "command" && e.command === "checkpointQueue" && e.items === 1,
    ],
    [
      ["graceid,G1", "clearGraceID"],
      (e) => e.event === "command" && e.command === "clearGraceID" && e.cleared === 1,
    ],
    [
      ["filename,x.json", "loadQueue"],
      (e) => e.event === "command" && e.command === "loadQueue" && e.items === 1,
    ],
    [["clearQueue"], (e) => e.event === "command" && e.command === "clearQueue" && e.cleared === 1],
    [
      ["recipients,nobody@example.org", "sendEmail"],
      (e) => e.event === "command" && e.command === "sendEmail",
    ],
  ];
  for (const [words, seen] of sequence) {
    const r = await send(...words);
    assert.equal(r.code, 0, r.stderr);
    await listener.until(() => listener.events.some(seen), words.join(" "));
  }
  assert.equal(await listener.stop(), 0);
});

scenario(
  "status is OK while subscribed and CRITICAL once a configured node is deleted",
  async (w) => {
    // ejabberd says nothing when a node goes: the check every second finds it.
    const listener = await w.start("--node-check-interval", "1");
    const state = join(w.dir, "state");
    const ok = await runListener(["status", "--state-dir", state]);
    assert.equal(ok.code, 0, ok.stdout);
    assert.match(ok.stdout, /^LVALERTMP OK - 2 children, xmpp online, 4\/4 nodes \|/);
    await (await w.pubsub()).delete("cbc_gstlal_lowmass");
    await listener.until(() => listener.named("node_deleted").length === 1, "the deletion");
    const critical = await runListener(["status", "--state-dir", state]);
    assert.equal(critical.code, 2, critical.stdout);
    assert.match(critical.stdout, /^LVALERTMP CRITICAL - not subscribed to cbc_gstlal_lowmass/);
    assert.equal(await listener.stop(), 0);
  },
);

/** The session's gauges and counter, read back with a Prometheus parser. */
async function sessionMetrics(url: string): Promise<Record<string, number>> {
  const text = await (await fetch(`${url}metrics`)).text();
  const families = parsePrometheus(text) as { name: string; metrics: { value?: string }[] }[];
  const read: Record<string, number> = {};
  for (const f of families) {
    if (f.name.startsWith("lvalertmp_xmpp_")) read[f.name] = Number(f.metrics[0]?.value);
  }
  return read;
}

scenario(
  "over --http: the session up, nodes subscribed of configured, a reconnect counted",
  async (w) => {
    await using proxy = new TcpProxy(w.server.port);
    const listener = new ListenerProcess([
      "-c",
      w.config,
      ...w.flagsVia(proxy.port, "--http", "127.0.0.1:0", "--backoff", "0.2,1"),
    ]);
    try {
      await listener.until(() => listener.named("xmpp_ready").length === 1, "the session");
      const url = String(listener.named("http_listening")[0]!.url);
      const n = NODES.length;
      assert.deepEqual(await sessionMetrics(url), {
        lvalertmp_xmpp_reconnects_total: 0,
        lvalertmp_xmpp_session_up: 1,
        lvalertmp_xmpp_nodes_configured: n,
        lvalertmp_xmpp_nodes_subscribed: n,
      });
      proxy.cut();
      await listener.until(() => listener.named("xmpp_disconnected").length === 1, "the cut");
      assert.equal((await sessionMetrics(url)).lvalertmp_xmpp_session_up, 0);
      assert.match(await (await fetch(url)).text(), /data-online="false"/);
      proxy.restore();
      await listener.until(() => listener.named("xmpp_reconnected").length === 1, "the return");
      assert.deepEqual(await sessionMetrics(url), {
        lvalertmp_xmpp_reconnects_total: 1,
        lvalertmp_xmpp_session_up: 1,
        lvalertmp_xmpp_nodes_configured: n,
        lvalertmp_xmpp_nodes_subscribed: n,
      });
      const page = await (await fetch(url)).text();
      assert.match(page, /data-online="true"/);
      assert.match(page, /<dd id="reconnects">1<\/dd>/);
      assert.match(page, new RegExp(`<dd id="nodes">${n} of ${n} subscribed</dd>`));
      assert.equal(await listener.stop(), 0);
    } finally {
      await listener.stop("SIGKILL");
    }
  },
);

for (const kind of SERVERS) {
  xmppTest(`the listener and the tools end to end on ${kind}`, async (t) => {
    await using server: XmppServer = await startServer(kind);
    for (const s of SCENARIOS) {
      await t.step(s.name, async () => {
        await using w = await world(server, s.world);
        await s.run(w);
      });
    }
  });
}
