/**
 * The XMPP source's reconnect, resubscribe and catch-up logic against a
 * scripted connection (tests/xmpp_scripted.ts), where each test decides
 * exactly when the server publishes, cuts, refuses or ends a stream. The
 * same behaviours run against real Prosody and ejabberd servers in
 * tests/xmpp_e2e_test.ts and tests/xmpp_outage_test.ts.
 */

import assert from "node:assert/strict";
import type { RouteInput } from "../lib/core/source.ts";
import { Logger, type LogRecord } from "../lib/core/log.ts";
import { SeenStore } from "../lib/durability/seen_store.ts";
import { XmppSource, type XmppSourceEvents, type XmppSourceOptions } from "../lib/xmpp/source.ts";
import { ScriptedServer } from "./xmpp_scripted.ts";
import { waitFor } from "./helpers.ts";

/** A source on a scripted server, with a router stand-in that records what it gets. */
interface Harness extends AsyncDisposable {
  source: XmppSource;
  seen: SeenStore;
  routed: RouteInput[];
  /** Ids offered again after they were routed. */
  duplicates: string[];
  /** While set, items are deferred as a router does when a child takes no more: not remembered. */
  deferring: boolean;
  deferred: string[];
  records: LogRecord[];
  uids(): string[];
  named(event: string): LogRecord[];
  /** Resolves once `count` records of `event` were logged. */
  logged(event: string, count?: number): Promise<void>;
  /** Resolves with the next `event`. */
  next<K extends keyof XmppSourceEvents>(event: K): Promise<XmppSourceEvents[K]>;
}

const CLIENT = {
  server: "localhost",
  username: "listener",
  password: "pw",
  resource: "listener",
};

async function harness(
  server: ScriptedServer,
  options: Partial<XmppSourceOptions> = {},
  stateDir?: string,
): Promise<Harness> {
  const dir = stateDir ?? await Deno.makeTempDir({ prefix: "lvalertmp-source-" });
  const seen = await SeenStore.open(dir);
  const records: LogRecord[] = [];
  const waiters = new Set<() => void>();
  const log = new Logger({
    child: null,
    format: "json",
    sinks: [(_, r) => {
      records.push(r);
      for (const wake of [...waiters]) wake();
    }],
  });
  const named = (event: string) => records.filter((r) => r.event === event);
  const source = new XmppSource({
    client: CLIENT,
    service: server.service,
    nodes: [...server.nodes.keys()],
    catchUp: 20,
    createMissingNodes: false,
    seen,
    log,
    backoff: [0.005, 0.02],
    nodeCheckInterval: 0,
    connect: server.connect,
    ...options,
  });
  const routed: RouteInput[] = [];
  const duplicates: string[] = [];
  const deferred: string[] = [];
  // What the router does with ids: a repeat is a duplicate, the rest is remembered.
  source.events.on("item", (input) => {
    if (input.id !== null && seen.has(input.node, input.id)) return void duplicates.push(input.id);
    if (h.deferring) return void deferred.push(JSON.parse(String(input.payload)).uid);
    if (input.id !== null) seen.record(input.node, input.id);
    routed.push(input);
  });
  const h: Harness = {
    source,
    seen,
    routed,
    duplicates,
    deferring: false,
    deferred,
    records,
    uids: () => routed.map((r) => JSON.parse(String(r.payload)).uid),
    named,
    logged: (event, count = 1) =>
      new Promise<void>((resolve) => {
        const wake = () => {
          if (named(event).length < count) return;
          waiters.delete(wake);
          resolve();
        };
        waiters.add(wake);
        wake();
      }),
    next: (event) => source.events.next(event),
    async [Symbol.asyncDispose]() {
      await source.stop();
      await seen.close();
      if (!stateDir) await Deno.remove(dir, { recursive: true });
    },
  };
  return h;
}

/** Cuts the connection, lets `whileDown` act, and waits until the source is back online. */
async function outage(h: Harness, server: ScriptedServer, whileDown: () => void): Promise<void> {
  const offline = h.next("offline");
  server.down = true;
  server.cut();
  await offline;
  whileDown();
  const online = h.next("online");
  server.down = false;
  await online;
}

/** Publishes one item and waits until it is routed (everything before it has been, too). */
async function barrier(h: Harness, server: ScriptedServer, node: string, uid: string) {
  const routed = new Promise<void>((resolve) => {
    const off = h.source.events.on("item", (input) => {
      if (String(input.payload).includes(`"${uid}"`)) {
        off();
        resolve();
      }
    });
  });
  server.publish(node, `{"uid":"${uid}"}`);
  await routed;
}

const range = (prefix: string, from: number, to: number) =>
  Array.from({ length: to - from + 1 }, (_, i) => `${prefix}${from + i}`);

for (const rsm of [true, false]) {
  const paging = rsm ? "result sets (as ejabberd)" : "growing max_items (as Prosody 0.12)";

  Deno.test(`XmppSource catches up after an outage with ${paging}: every missed item once, oldest first`, async () => {
    const server = new ScriptedServer({ rsm });
    server.createNode("n");
    server.publishMany("n", "OLD", 5);
    await using h = await harness(server);
    await h.source.start();
    assert.deepEqual(h.routed, [], "what the node held before is history");
    await barrier(h, server, "n", "L1");
    const before = server.requests.length;
    await outage(h, server, () => server.publishMany("n", "M", 45));
    await barrier(h, server, "n", "L2");
    assert.deepEqual(h.uids(), ["L1", ...range("M", 1, 45), "L2"]);
    assert.deepEqual(h.duplicates, []);
    const items = server.requests.slice(before).filter((r) => r.startsWith("items"));
    if (rsm) {
      assert.equal(items.length, 3);
      assert.deepEqual(items.map((r) => r.replace(/ before=\S+/, " before")), [
        "items n max=20",
        "items n max=20 before",
        "items n max=20 before",
      ]);
    } else {
      assert.deepEqual(items, ["items n max=20", "items n max=40", "items n max=80"]);
    }
    const caught = h.named("caught_up").at(-1)!;
    assert.equal(caught.routed, 45);
    assert.equal(caught.end, "seen");
    assert.equal(caught.paging, rsm ? "rsm" : "max_items");
    assert.deepEqual(h.source.gaps, []);
  });

  Deno.test(`XmppSource reports a gap when the last item seen is gone, with ${paging}`, async (t) => {
    const server = new ScriptedServer({ rsm });
    server.createNode("n", 10);
    await using h = await harness(server);
    const gaps: XmppSourceEvents["catch_up_gap"][] = [];
    h.source.events.on("catch_up_gap", (gap) => gaps.push(gap));
    await h.source.start();
    await barrier(h, server, "n", "L1");

    await t.step("15 missed on a node keeping 10: the 10 routed, the gap reported", async () => {
      await outage(h, server, () => server.publishMany("n", "M", 15));
      await barrier(h, server, "n", "L2");
      assert.deepEqual(h.uids(), ["L1", ...range("M", 6, 15), "L2"]);
      assert.equal(gaps.length, 1);
      assert.equal(gaps[0]!.node, "n");
      assert.equal(gaps[0]!.reason, "seen_gone");
      assert.equal(gaps[0]!.routed, 10);
      assert.equal(gaps[0]!.held, 10);
      assert.match(gaps[0]!.message, /the last item seen on node n is no longer on the server/);
      assert.equal(h.named("catch_up_gap")[0]?.level, "error");
      assert.deepEqual(h.source.gaps.map((g) => g.node), ["n"]);
    });

    await t.step("a clean catch-up closes it", async () => {
      await outage(h, server, () => server.publishMany("n", "P", 3));
      assert.deepEqual(h.source.gaps, []);
      assert.equal(h.named("catch_up_gap_closed").length, 1);
    });

    await t.step("or an acknowledgement", async () => {
      await outage(h, server, () => server.publishMany("n", "Q", 12));
      assert.equal(gaps.length, 2);
      assert.deepEqual(h.source.acknowledgeGaps("other"), []);
      assert.deepEqual(h.source.acknowledgeGaps(), ["n"]);
      assert.deepEqual(h.source.gaps, []);
      assert.deepEqual(h.duplicates, []);
    });
  });

  Deno.test(`XmppSource stops at --catch-up-max and says so, with ${paging}`, async (t) => {
    const server = new ScriptedServer({ rsm });
    server.createNode("n");
    await using h = await harness(server, { catchUpMax: 30 });
    await h.source.start();
    await barrier(h, server, "n", "L1");

    await t.step("exactly the ceiling missed: all routed, no gap", async () => {
      await outage(h, server, () => server.publishMany("n", "A", 30));
      await barrier(h, server, "n", "L2");
      assert.deepEqual(h.uids(), ["L1", ...range("A", 1, 30), "L2"]);
      assert.deepEqual(h.source.gaps, []);
    });

    await t.step("more than the ceiling: the newest routed, the gap reported", async () => {
      await outage(h, server, () => server.publishMany("n", "B", 50));
      await barrier(h, server, "n", "L3");
      assert.deepEqual(h.uids().slice(32), [...range("B", 21, 50), "L3"]);
      assert.deepEqual(h.source.gaps.map((g) => [g.reason, g.routed, g.ceiling]), [[
        "ceiling",
        30,
        30,
      ]]);
    });
  });
}

Deno.test("XmppSource: history stays history on first subscription, whatever the server pushes", async (t) => {
  await t.step("the last item pushed on subscribe (<delay/>) is not routed", async () => {
    const server = new ScriptedServer({ rsm: true, lastItemOnSubscribe: true });
    server.createNode("n");
    server.publishMany("n", "OLD", 5);
    await using h = await harness(server);
    await h.source.start();
    await barrier(h, server, "n", "NEW");
    assert.deepEqual(h.uids(), ["NEW"]);
    assert.equal(h.named("baseline")[0]?.items, 5);
    assert.ok(h.named("item_repeated").length >= 1, "the pushed item was recognised");
  });

  await t.step("items published during the subscription are routed once, in order", async () => {
    const server = new ScriptedServer({ rsm: true, lastItemOnSubscribe: true });
    server.createNode("n");
    server.publishMany("n", "OLD", 5);
    let items = 0;
    server.onRequest = (request) => {
      // After the baseline: one before the subscription, one while catching up.
      if (request === "subscribe n") server.publish("n", '{"uid":"D1"}');
      if (request.startsWith("items") && ++items === 2) server.publish("n", '{"uid":"D2"}');
    };
    await using h = await harness(server);
    await h.source.start();
    server.onRequest = undefined;
    await barrier(h, server, "n", "D3");
    assert.deepEqual(h.uids(), ["D1", "D2", "D3"]);
    assert.deepEqual(h.duplicates, []);
  });

  await t.step("a node with no items: everything after the start is new", async () => {
    const server = new ScriptedServer({ rsm: false });
    server.createNode("n");
    await using h = await harness(server);
    await h.source.start();
    await outage(h, server, () => server.publishMany("n", "E", 3));
    assert.deepEqual(h.uids(), ["E1", "E2", "E3"]);
    assert.deepEqual(h.source.gaps, [], "nothing was seen before: no gap");
  });
});

Deno.test("XmppSource: pushes that arrive while a node catches up follow its caught-up items", async () => {
  const server = new ScriptedServer({ rsm: true });
  server.createNode("n");
  await using h = await harness(server);
  await h.source.start();
  await barrier(h, server, "n", "L1");
  let pages = 0;
  await outage(h, server, () => {
    server.publishMany("n", "M", 30);
    server.onRequest = (request) => {
      // Subscribed already: these are pushed at once, and newer than every page.
      if (request.startsWith("items") && ++pages <= 2) server.publish("n", `{"uid":"P${pages}"}`);
    };
  });
  server.onRequest = undefined;
  await barrier(h, server, "n", "L2");
  assert.deepEqual(h.uids(), ["L1", ...range("M", 1, 30), "P1", "P2", "L2"]);
  assert.deepEqual(h.duplicates, []);
});

Deno.test("XmppSource subscribes to every node again at each reconnect, whatever the server says it has", async () => {
  const server = new ScriptedServer({ rsm: true });
  server.createNode("a");
  server.createNode("b");
  await using h = await harness(server);
  await h.source.start();
  assert.equal(server.requests.filter((r) => r.startsWith("subscribe")).length, 2);
  const before = server.requests.length;
  // The server lost b's subscription (Prosody: a node created again under its name).
  await outage(h, server, () => server.nodes.get("b")!.subscribers.clear());
  assert.deepEqual(
    server.requests.slice(before).filter((r) => r.startsWith("subscribe")).sort(),
    ["subscribe a", "subscribe b"],
  );
  assert.deepEqual(h.source.subscribed.sort(), ["a", "b"]);
  await barrier(h, server, "b", "B1");
});

Deno.test("XmppSource reconnects with backoff while the server is down, and reports the outage", async () => {
  const server = new ScriptedServer({ rsm: true });
  server.createNode("n");
  await using h = await harness(server, { backoff: [0.01, 0.02] });
  await h.source.start();
  const offline = h.next("offline");
  server.down = true;
  server.cut();
  assert.equal((await offline).failure, null);
  assert.equal(h.source.online, false);
  assert.notEqual(h.source.offlineSince, null);
  // Three refused attempts, then the server is back.
  await h.logged("xmpp_reconnect_failed", 3);
  const online = h.next("online");
  server.down = false;
  const back = await online;
  assert.ok(back.downSeconds > 0);
  assert.equal(h.source.online, true);
  assert.equal(h.source.offlineSince, null);
  assert.match(String(h.named("xmpp_reconnect_failed")[0]?.msg), /ECONNREFUSED/);
});

Deno.test("XmppSource tells stream errors apart: only a second login on its resource is final", async (t) => {
  const server = new ScriptedServer({ rsm: true });
  server.createNode("n");
  await using h = await harness(server);
  await h.source.start();
  const ends: [string, string, string, RegExp][] = [
    [
      "an administrator's kick",
      "conflict",
      "Maintenance at 10:00",
      /"Maintenance at 10:00": an administrator's kick/,
    ],
    [
      "a kick without a reason",
      "conflict",
      "",
      /ended the session .*\(stream conflict: an administrator's kick/,
    ],
    [
      "a shutdown",
      "system-shutdown",
      "Received SIGTERM",
      /shutting down \(system-shutdown: "Received SIGTERM"\)/,
    ],
    ["a policy violation", "policy-violation", "Too many stanzas", /"Too many stanzas"/],
    ["a reset", "reset", "", /\(reset\)/],
  ];
  const kinds = {
    conflict: "kicked",
    "system-shutdown": "shutdown",
    "policy-violation": "stream",
    reset: "stream",
  };
  for (const [name, condition, text, message] of ends) {
    await t.step(`${name}: reconnect, with the server's text in the message`, async () => {
      const offline = h.next("offline");
      const online = h.next("online");
      server.endStream(condition, text);
      const { failure } = await offline;
      assert.equal(failure?.kind, kinds[condition as keyof typeof kinds]);
      assert.match(failure!.message, message);
      await online;
      await barrier(h, server, "n", `after-${condition}-${text.length}`);
    });
  }

  await t.step("see-other-host: the next connection goes to the host named", async () => {
    const online = h.next("online");
    server.endStream("see-other-host", "", undefined, "xmpp2.example.org:5223");
    await online;
    const last = server.attempts.at(-1)!;
    assert.equal(last.server, "xmpp2.example.org");
    assert.equal(last.port, 5223);
    assert.equal(last.domain, "localhost", "the XMPP domain stays the same");
  });

  await t.step("a second login on the same resource stops the session", async () => {
    const fatal = h.next("fatal");
    const attempts = server.attempts.length;
    server.endStream("conflict", "Replaced by new connection");
    const failure = await fatal;
    assert.equal(failure.kind, "conflict");
    assert.match(
      failure.message,
      /Another client logged in as listener@localhost\/listener \(stream conflict: "Replaced by new connection"\); not reconnecting/,
    );
    await h.source.stop();
    assert.equal(server.attempts.length, attempts, "no reconnect");
  });
});

Deno.test("XmppSource notices a deleted node on every server", async (t) => {
  await t.step("told by the server (Prosody)", async () => {
    const server = new ScriptedServer({ rsm: false, notifyDelete: true });
    server.createNode("a");
    server.createNode("b");
    await using h = await harness(server);
    await h.source.start();
    const deleted = h.next("node_deleted");
    server.deleteNode("b");
    assert.deepEqual(await deleted, { node: "b", how: "notified" });
    assert.deepEqual(h.source.subscribed, ["a"]);
    assert.deepEqual(h.source.deleted, ["b"]);
  });

  await t.step("not told (ejabberd): the periodic check finds it", async () => {
    const server = new ScriptedServer({ rsm: true });
    server.createNode("a");
    server.createNode("b");
    await using h = await harness(server, { nodeCheckInterval: 0.02 });
    await h.source.start();
    const deleted = h.next("node_deleted");
    server.deleteNode("b");
    assert.deepEqual(await deleted, { node: "b", how: "check" });
    assert.deepEqual(h.source.subscribed, ["a"]);
    assert.ok(server.requests.includes("disco#items *"));
  });

  await t.step("deleted while disconnected: found at the reconnect, reported once", async () => {
    const server = new ScriptedServer({ rsm: true });
    server.createNode("a");
    server.createNode("b");
    await using h = await harness(server);
    const reports: string[] = [];
    h.source.events.on("node_deleted", ({ node, how }) => reports.push(`${node} ${how}`));
    await h.source.start();
    await outage(h, server, () => server.deleteNode("b"));
    await outage(h, server, () => {});
    assert.deepEqual(reports, ["b reconnect"]);
    assert.deepEqual(h.source.subscribed, ["a"]);
  });
});

Deno.test("XmppSource does not wait for Prosody 0.12's unanswered all-node subscriptions request", async () => {
  const server = new ScriptedServer({ rsm: false, notifyDelete: true, silentAfterDelete: true });
  server.createNode("a");
  server.createNode("b");
  await using h = await harness(server, { requestTimeout: 30 });
  await h.source.start();
  const deleted = h.next("node_deleted");
  server.deleteNode("b");
  await deleted;
  const started = performance.now();
  await outage(h, server, () => server.publishMany("a", "A", 2));
  const ms = performance.now() - started;
  assert.ok(ms < 2000, `back online in ${ms.toFixed(0)} ms, not after the request timeout`);
  assert.deepEqual(h.uids(), ["A1", "A2"]);
});

Deno.test("XmppSource: a connection lost while catching up is caught up again, without waiting for timeouts", async () => {
  const server = new ScriptedServer({ rsm: true });
  server.createNode("n");
  await using h = await harness(server, { requestTimeout: 30 });
  await h.source.start();
  await barrier(h, server, "n", "L1");
  let pages = 0;
  const started = performance.now();
  await outage(h, server, () => {
    server.publishMany("n", "M", 50);
    server.onRequest = (request) => {
      // The second page is never answered: the connection drops under it.
      if (request.startsWith("items") && ++pages === 2) queueMicrotask(() => server.cut());
    };
  });
  server.onRequest = undefined;
  await barrier(h, server, "n", "L2");
  assert.ok(pages > 3, "the catch-up started over");
  assert.ok(performance.now() - started < 5000);
  assert.deepEqual(h.uids(), ["L1", ...range("M", 1, 50), "L2"]);
  assert.deepEqual(h.duplicates, []);
});

Deno.test("XmppSource: a restart with the same state catches up from where it stopped", async () => {
  const server = new ScriptedServer({ rsm: false });
  server.createNode("n");
  const dir = await Deno.makeTempDir({ prefix: "lvalertmp-source-" });
  try {
    {
      await using first = await harness(server, {}, dir);
      await first.source.start();
      await barrier(first, server, "n", "L1");
    }
    server.publishMany("n", "R", 25);
    await using second = await harness(server, {}, dir);
    await second.source.start();
    assert.deepEqual(second.uids(), range("R", 1, 25));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("XmppSource: stop() while backing off ends the reconnect at once", async () => {
  const server = new ScriptedServer({ rsm: true });
  server.createNode("n");
  await using h = await harness(server, { backoff: [30, 30] });
  await h.source.start();
  const offline = h.next("offline");
  server.down = true;
  server.cut();
  await offline;
  const started = performance.now();
  await h.source.stop();
  assert.ok(performance.now() - started < 1000);
});

Deno.test("XmppSource catches deferred items up again on the open session, in order, with what came meanwhile", async () => {
  const server = new ScriptedServer({ rsm: true });
  server.createNode("n");
  server.createNode("m");
  await using h = await harness(server);
  await h.source.start();
  await barrier(h, server, "n", "A1");
  // The child takes no more: these are deferred, neither routed nor remembered.
  h.deferring = true;
  for (const uid of ["D1", "D2", "D3"]) server.publish("n", `{"uid":"${uid}"}`);
  await waitFor(() => h.deferred.length === 3, "the deferrals");
  h.deferring = false;
  const resumed: string[] = [];
  const again = h.source.catchUpAgain(["n", "m"], (node) => {
    resumed.push(node);
    // Pushed while the node is caught up: held, then routed after the deferred ones.
    if (node === "n") server.publish("n", `{"uid":"LIVE"}`);
  });
  await again;
  await barrier(h, server, "n", "A2");
  assert.deepEqual(resumed, ["n", "m"]);
  assert.deepEqual(h.uids(), ["A1", "D1", "D2", "D3", "LIVE", "A2"]);
  assert.deepEqual(h.duplicates, []);
  assert.equal(h.named("caught_up").at(-1)?.node, "m");
});
