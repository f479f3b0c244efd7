/**
 * End to end through a real Prosody: the listener, send, command and admin
 * as real processes. Skipped (and counted as ignored) only with
 * LVALERT_SKIP_XMPP=1; without Prosody they fail.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { Pubsub } from "../lib/xmpp/pubsub.ts";
import { createXmppClient } from "../lib/xmpp/client.ts";
import { copyFixtures, jsonLines, ListenerProcess, runListener, tempDir } from "./helpers.ts";
import { DOMAIN, Prosody, PUBSUB, SKIP_XMPP, USERS } from "./prosody.ts";

const NODES = ["cbc_gstlal", "cbc_gstlal_lowmass", "command-watcher", "burst_cwb_allsky"];

/** A server, its nodes, the fixture configs in a temp folder, and a publisher. */
async function world(options: { persistent?: boolean; nodes?: string[] } = {}) {
  const server = await Prosody.start({ persistent: options.persistent ?? false });
  const dir = await tempDir();
  await copyFixtures(dir.path);
  const client = createXmppClient({
    server: DOMAIN,
    port: server.port,
    username: "publisher",
    password: USERS.publisher,
    resource: "test-publisher",
    ca: await Deno.readTextFile(server.caFile),
  });
  client.on("error", () => {});
  await client.start();
  const pubsub = new Pubsub(client, PUBSUB);
  for (const node of options.nodes ?? NODES) await pubsub.create(node);
  const netrc = await server.netrc("listener");
  return {
    server,
    dir: dir.path,
    pubsub,
    config: join(dir.path, "lvalert_listenMP.ini"),
    /** Flags for the listener: this server, the listener's netrc, a state folder. */
    listenFlags: (...extra: string[]) => [
      ...server.flags("listener").filter((f, i, all) => f !== "-a" && all[i - 1] !== "-a"),
      "-N",
      netrc,
      "--state-dir",
      join(dir.path, "state"),
      "--log-format",
      "json",
      ...extra,
    ],
    async [Symbol.asyncDispose]() {
      await client.stop().catch(() => {});
      await server[Symbol.asyncDispose]();
      await dir[Symbol.asyncDispose]();
    },
  };
}

type World = Awaited<ReturnType<typeof world>>;

/** Starts the listener and waits until it has caught up on every node. */
async function startListener(w: World, ...extra: string[]): Promise<ListenerProcess> {
  const listener = new ListenerProcess(["-c", w.config, ...w.listenFlags(...extra)]);
  await listener.until(
    () => listener.named("caught_up").length >= NODES.length,
    "the listener to catch up",
  );
  return listener;
}

function xmppTest(name: string, fn: () => Promise<void>) {
  Deno.test({ name, ignore: SKIP_XMPP, fn });
}

async function fixtureLines(name: string): Promise<{ node: string; payload: unknown }[]> {
  const text = await Deno.readTextFile(
    join(new URL(".", import.meta.url).pathname, "fixtures", name),
  );
  return text.split("\n").filter(Boolean).map((l) => JSON.parse(l));
}

xmppTest(
  "alerts published on the server reach the same children with the same events as a replay",
  async () => {
    await using w = await world();
    const listener = await startListener(w);
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
    for (const line of await fixtureLines("alerts-legacy.jsonl")) {
      await w.pubsub.publish(line.node, JSON.stringify(line.payload));
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
    const sent = Date.now();
    assert.equal(await listener.stop("SIGTERM"), 0);
    assert.ok(Date.now() - sent < 5000, "a clean stop within seconds");
    assert.equal(listener.named("summary")[0]?.routed, want.length);
  },
);

xmppTest(
  "send -p - reads stdin, command delivers printMessage, admin creates and lists a node",
  async () => {
    await using w = await world();
    const listener = await startListener(w);
    const tool = (
      ...args: string[]
    ) => [...args, ...w.server.flags("publisher"), "-N", join(w.server.dir, "netrc-publisher")];
    await w.server.netrc("publisher");

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
    assert.match(bad.stderr, /missing required kwarg\(s\): graceid/);

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

xmppTest(
  "TLS is verified: without the CA the listener exits with the certificate error",
  async () => {
    await using w = await world();
    const flags = w.listenFlags().filter((f, i, all) =>
      f !== "--ca-file" && all[i - 1] !== "--ca-file"
    );
    const r = await runListener(["-c", w.config, ...flags], { timeout: 30 });
    assert.equal(r.code, 69);
    assert.match(r.stderr, /TLS with localhost failed: .*(certificate|verify)/i);
    assert.equal(r.events.filter((e) => e.event === "xmpp_retry").length, 0, "no retry loop");
  },
);

xmppTest("a wrong password exits 77 with the server's reason, and no retry", async () => {
  await using w = await world();
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
});

xmppTest("a missing node is named (exit 69) unless --create-missing-nodes", async () => {
  await using w = await world({ nodes: ["cbc_gstlal", "command-watcher"] });
  const r = await runListener(["-c", w.config, ...w.listenFlags()]);
  assert.equal(r.code, 69);
  assert.match(
    r.stderr,
    /Node\(s\) not found on pubsub\.localhost: cbc_gstlal_lowmass, burst_cwb_allsky/,
  );
  // Only the publisher (an admin) may create nodes here, so let it listen.
  await w.server.netrc("publisher");
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
});

xmppTest("the same alert on two nodes of one child is processed once", async () => {
  await using w = await world();
  const listener = await startListener(w);
  const payload = JSON.stringify({ uid: "G77", alert_type: "new", object: {} });
  await w.pubsub.publish("cbc_gstlal", payload);
  await w.pubsub.publish("cbc_gstlal_lowmass", payload);
  await listener.until(() => listener.named("alert_duplicate").length === 1, "the duplicate");
  assert.equal(listener.named("alert").filter((e) => e.uid === "G77").length, 1);
  assert.equal(await listener.stop(), 0);
});

xmppTest(
  "a listener restarted after alerts were published catches up on them exactly once",
  async () => {
    await using w = await world({ persistent: true });
    const first = await startListener(w);
    await w.pubsub.publish("cbc_gstlal", JSON.stringify({ uid: "B1", alert_type: "new" }));
    await first.until(() => first.named("alert").length === 1, "B1");
    assert.equal(await first.stop(), 0);
    for (const uid of ["D1", "D2", "D3"]) {
      await w.pubsub.publish("burst_cwb_allsky", JSON.stringify({ uid, alert_type: "new" }));
    }
    const second = await startListener(w);
    await second.until(() => second.named("alert").length === 3, "the alerts published while down");
    await new Promise((r) => setTimeout(r, 500));
    assert.deepEqual(
      second.named("alert").map((e) => e.uid),
      ["D1", "D2", "D3"],
      "B1 is not repeated",
    );
    assert.equal(second.named("caught_up").find((e) => e.node === "burst_cwb_allsky")?.routed, 3);
    assert.equal(await second.stop(), 0);
  },
);

xmppTest(
  "Prosody restarted while alerts are published: the listener reconnects and processes each alert once",
  async () => {
    await using w = await world({ persistent: true });
    const listener = await startListener(w);
    const published: string[] = [];
    let stopPublishing = false;
    // A separate publisher that reconnects on its own, publishing throughout.
    const publisher = (async () => {
      let n = 0;
      while (!stopPublishing) {
        const uid = `R${++n}`;
        const r = await runListener([
          "send",
          "-n",
          "cbc_gstlal",
          "-p",
          "-",
          "-m",
          "30",
          ...w.server.flags("publisher"),
          "-N",
          await w.server.netrc("publisher"),
        ], { stdin: JSON.stringify({ uid, alert_type: "new" }) });
        if (r.code === 0) published.push(uid);
        else throw new Error(`send failed: ${r.stderr}`);
      }
    })();
    await listener.until(() => published.length >= 3, "some alerts before the outage");
    await w.server.stop();
    await new Promise((r) => setTimeout(r, 1500));
    await w.server.resume();
    await listener.until(
      () => listener.named("xmpp_reconnected").length === 1,
      "the reconnect",
      60,
    );
    const after = published.length;
    await listener.until(() => published.length >= after + 3, "some alerts after the outage", 60);
    stopPublishing = true;
    await publisher;
    await listener.until(
      () => listener.named("alert").length >= published.length,
      "every alert",
      30,
    );
    await new Promise((r) => setTimeout(r, 500));
    const uids = listener.named("alert").map((e) => e.uid as string);
    assert.deepEqual([...uids].sort(), [...published].sort(), "each alert exactly once");
    assert.ok(listener.named("xmpp_disconnected").length >= 1);
    assert.equal(await listener.stop(), 0);
  },
);

xmppTest("a second listener on the same resource ends the first with a clear message", async () => {
  await using w = await world();
  const first = await startListener(w);
  const second = await startListener(w, "--state-dir", join(w.dir, "state2"));
  assert.equal(await first.exited(), 1);
  assert.match(
    first.stderr,
    /Another client logged in as listener@localhost\/listener \(stream conflict\); not reconnecting/,
  );
  assert.equal(await second.stop(), 0);
});

xmppTest("heartbeat requests are answered on the same node within a second", async () => {
  await using w = await world();
  // Nodes publish only for their publishers: the listener must be one to answer.
  await w.pubsub.affiliate("cbc_gstlal", "listener@localhost", "publisher");
  const listener = await startListener(w, "-v");
  const sent = Date.now();
  await w.pubsub.publish(
    "cbc_gstlal",
    JSON.stringify({ uid: "heartbeat", ptype: "request", key: "k-1" }),
  );
  let response: Record<string, unknown> | undefined;
  while (!response && Date.now() - sent < 5000) {
    const items = await w.pubsub.items("cbc_gstlal", 5);
    response = items.map((i) => JSON.parse(i.payload)).find((p) =>
      p.ptype === "response" && p.key === "k-1"
    );
    if (!response) await new Promise((r) => setTimeout(r, 50));
  }
  assert.ok(response, "a response was published");
  assert.ok(Date.now() - sent < 1500, `answered in ${Date.now() - sent} ms`);
  assert.equal(response.child, "gstlal watcher");
  assert.equal(typeof response.pid, "number");
  assert.equal(listener.named("alert_ignored").length, 1, "its own response is not an alert");
  assert.equal(await listener.stop(), 0);
  assert.equal(jsonLines(listener.stdout).filter((e) => e.event === "alert_rejected").length, 0);
});

xmppTest(
  "SIGKILL 20 times while alerts are published on the server: each applied once, no task lost",
  async () => {
    await using w = await world({ persistent: true, nodes: [] });
    for (const node of NODES) await w.pubsub.create(node, { "pubsub#max_items": "200" });
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
        await w.pubsub.publish("cbc_gstlal", JSON.stringify({ uid, alert_type: "new" }));
        await new Promise((r) => setTimeout(r, 200));
      }
    })();
    let seed = 977;
    const random = () => (seed = (seed * 16807) % 2147483647) / 2147483647;
    let current = first;
    for (let round = 0; round < 20; round++) {
      await new Promise((r) => setTimeout(r, 200 + random() * 600));
      await current.stop("SIGKILL");
      current = new ListenerProcess(args);
    }
    await publishing;
    await current.until(() => current.named("xmpp_ready").length === 1, "the last start", 30);
    const logFile = join(dir, "test_kill-child.log");
    const logged = () => jsonLines(Deno.readTextFileSync(logFile));
    const applied = (uid: string) => logged().some((e) => e.event === "alert" && e.uid === uid);
    await current.until(() => uids.every(applied), "every alert applied", 30);
    await new Promise((r) => setTimeout(r, 2500));
    assert.equal(await current.stop(), 0);
    const events = logged();
    let reruns = 0;
    for (const uid of uids) {
      const alerts = events.filter((e) => e.event === "alert" && e.uid === uid);
      assert.ok(alerts.filter((e) => e.recovered !== true).length <= 1, `${uid} routed once`);
      const t0 = alerts[0]!.t0 as number;
      for (
        const [task, due] of [["print@1s", t0 + 1], ["print@2s", t0 + 2], ["repeat", t0 + 0.5], [
          "repeat",
          t0 + 1,
        ]] as const
      ) {
        const n = events.filter((e) =>
          e.event === "task_executed" && e.graceid === uid && e.task === task &&
          Math.abs((e.due as number) - due) < 1e-6
        ).length;
        assert.ok(n >= 1, `${uid} ${task} ran`);
        reruns += n - 1;
      }
    }
    console.log(`tasks run twice across 20 kills: ${reruns}`);
  },
);

xmppTest("every command reaches a child through XMPP", async () => {
  await using w = await world();
  const listener = await startListener(w);
  await w.server.netrc("publisher");
  const send = (...words: string[]) =>
    runListener([
      "command",
      "--node",
      "command-watcher",
      ...words,
      ...w.server.flags("publisher"),
      "-N",
      join(w.server.dir, "netrc-publisher"),
    ]);
  // A command item that waits 10 minutes keeps one item (graceid G1) queued.
  assert.equal((await send("message,tick", "sleep,600", "graceid,G1", "printMessage")).code, 0);
  await listener.until(() => listener.named("alert").length === 1, "the waiting item");
  const sequence: [string[], (e: Record<string, unknown>) => boolean][] = [
    [
      ["message,over xmpp", "printMessage"],
      (e) => e.event === "command" && e.message === "over xmpp",
    ],
    [["raiseWarning"], (e) => e.event === "warning" && e.command === "raiseWarning"],
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

xmppTest(
  "status is OK while subscribed and CRITICAL once a configured node is deleted",
  async () => {
    await using w = await world();
    const listener = await startListener(w);
    const state = join(w.dir, "state");
    const ok = await runListener(["status", "--state-dir", state]);
    assert.equal(ok.code, 0, ok.stdout);
    assert.match(ok.stdout, /^LVALERTMP OK - 2 children, xmpp online, 4\/4 nodes \|/);
    await w.pubsub.delete("cbc_gstlal_lowmass");
    await listener.until(() => listener.named("node_deleted").length === 1, "the deletion");
    const critical = await runListener(["status", "--state-dir", state]);
    assert.equal(critical.code, 2, critical.stdout);
    assert.match(critical.stdout, /^LVALERTMP CRITICAL - not subscribed to cbc_gstlal_lowmass/);
    assert.equal(await listener.stop(), 0);
  },
);
