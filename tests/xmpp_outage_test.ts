/**
 * Outages against real servers, Prosody and ejabberd: a server down for
 * 20 s while a publisher keeps publishing and flushes its backlog when the
 * server returns; a connection cut (through a TCP proxy) while more is
 * published than a node keeps; first subscriptions to nodes holding items;
 * a kick; a node deleted without notification.
 *
 * How the servers' defaults differ, and which step covers each difference
 * (the facts themselves are asserted in tests/ejabberd_test.ts):
 * - last item pushed on subscribe: ejabberd yes (`<delay/>`-stamped),
 *   Prosody no: "first subscription" checks nothing old is routed on both,
 *   and that ejabberd's push was seen and recognised;
 * - delete notification: Prosody yes, ejabberd no: "node deletion" expects
 *   the notification on Prosody and the periodic check on ejabberd;
 * - item ids: UUIDs (Prosody), hex publication times (ejabberd, not in
 *   order as text): the listener never orders by them, only compares them;
 * - item order: both answer oldest first, the newest `max_items`; "a gap
 *   that cannot be closed" checks the caught-up alerts arrive in
 *   publication order, across two nodes, on both;
 * - items paging: ejabberd pages with XEP-0059 result sets, Prosody ignores
 *   them (growing `max_items` instead): the 20 s outage needs several
 *   requests per node on each, and logs which paging it used.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { delay } from "../lib/core/async.ts";
import {
  fillDisk,
  ListenerProcess,
  mountTmpfs,
  runListener,
  tempDir,
  unmountTmpfs,
} from "./helpers.ts";
import { TcpProxy } from "./xmpp_proxy.ts";
import {
  connect,
  type ServerKind,
  SERVERS,
  type Session,
  startServer,
  type XmppServer,
  xmppTest,
} from "./xmpp_servers.ts";
import { createNode } from "./xmpp_world.ts";

/** A listener config of one child on `nodes`, mailing through a script that writes files. */
function files(child: string, nodes: string[]): Record<string, string> {
  return {
    "l.ini": `[${child}]\nnodes = ${nodes.join(" ")}\nchildConfig = c.ini\n` +
      "recipients = ops@example.org\nmail_command = ./mail.sh\n",
    "c.ini": "[general]\nprocess_type = test\nlog_level = 30\n[test]\ndelays = 0\nrepeats = 0\n",
    "mail.sh":
      '#!/bin/sh\n{ printf "%s|" "$@"; echo; cat; } > "$(mktemp "$(dirname "$0")/mail.XXXXXX")"\n',
  };
}

/** The listener as a process in `dir`, on `server` (or through `port`), printing what it routes (-S). */
async function listen(
  server: XmppServer,
  dir: string,
  port: number,
  ...extra: string[]
): Promise<ListenerProcess> {
  await Deno.chmod(join(dir, "mail.sh"), 0o755);
  const flags = server.flags("listener").map((f, i, all) =>
    all[i - 1] === "--port" ? `${port}` : f
  );
  const listener = new ListenerProcess([
    "-c",
    "l.ini",
    ...flags,
    "-N",
    await server.netrc("listener"),
    "--state-dir",
    join(dir, "state"),
    "--log-format",
    "json",
    "-S",
    ...extra,
  ], { cwd: dir });
  await listener.until(() => listener.named("xmpp_ready").length === 1, "the listener to start");
  return listener;
}

/** The uids the listener routed, in order (its -S lines). */
function routed(listener: ListenerProcess, child: string): string[] {
  return listener.stdout.split("\n").filter((l) => l.startsWith(`${child} < `))
    .map((l) => JSON.parse(l.slice(child.length + 3)).uid as string);
}

/** Every mail the listener sent so far, joined. */
function mail(dir: string): string {
  return [...Deno.readDirSync(dir)].filter((e) =>
    e.name.startsWith("mail.") && e.name !== "mail.sh"
  )
    .map((e) => Deno.readTextFileSync(join(dir, e.name))).join("\n");
}

async function status(dir: string): Promise<{ code: number; stdout: string }> {
  return await runListener(["status", "--state-dir", join(dir, "state")]);
}

// ------------------------------------------------------------ a 20 s outage

/**
 * Publishes `{uid}` alerts at a steady rate, round robin over nodes, from
 * its own session; while the server is away they queue up, and go out as
 * soon as it is back (a publisher flushing its backlog).
 */
class BacklogPublisher {
  readonly published: string[] = [];
  generated = 0;
  #queue: { node: string; uid: string }[] = [];
  #server: XmppServer;
  #timer: ReturnType<typeof setInterval>;
  #session: Session | undefined;
  #held = false;
  #finished = false;
  #wake: (() => void) | undefined;
  #idle: (() => void) | undefined;
  #pump: Promise<void>;

  constructor(server: XmppServer, nodes: string[], perSecond: number, total: number) {
    this.#server = server;
    this.#timer = setInterval(() => {
      const n = ++this.generated;
      this.#queue.push({ node: nodes[n % nodes.length]!, uid: `A${n}` });
      if (n === total) clearInterval(this.#timer);
      this.#wake?.();
    }, 1000 / perSecond);
    this.#pump = this.#run();
    this.#pump.catch(() => {});
  }

  /** Stops at once, dropping what is queued (a test that failed). */
  abandon(): void {
    clearInterval(this.#timer);
    this.#queue.length = 0;
    this.#finished = true;
    this.#wake?.();
  }

  async #run(): Promise<void> {
    for (;;) {
      if (this.#finished && this.#queue.length === 0) break;
      if (this.#held || this.#queue.length === 0) {
        this.#idle?.();
        await new Promise<void>((resolve) => this.#wake = resolve);
        continue;
      }
      const session = await this.#connect();
      if (!session) {
        // The server is down: try again soon (what a real publisher does).
        await delay(250);
        continue;
      }
      const batch = this.#queue.splice(0, 10);
      const results = await Promise.allSettled(
        batch.map((a) =>
          session.pubsub.publish(a.node, JSON.stringify({ uid: a.uid, alert_type: "new" }))
        ),
      );
      results.forEach((r, i) => {
        if (r.status === "fulfilled") this.published.push(batch[i]!.uid);
        else throw new Error(`Publishing ${batch[i]!.uid} failed: ${r.reason}`);
      });
    }
    await this.#session?.[Symbol.asyncDispose]();
  }

  async #connect(): Promise<Session | undefined> {
    if (this.#session && !this.#session.closed) return this.#session;
    await this.#session?.[Symbol.asyncDispose]();
    this.#session = undefined;
    try {
      this.#session = await connect(this.#server, "publisher", "backlog");
    } catch {
      return undefined;
    }
    return this.#session;
  }

  /** Alerts made but not yet published. */
  get backlog(): number {
    return this.#queue.length;
  }

  /** Stops sending (alerts keep queueing) once what is in flight is answered. */
  async hold(): Promise<void> {
    this.#held = true;
    const idle = new Promise<void>((resolve) => this.#idle = resolve);
    this.#wake?.();
    await idle;
  }

  /** Sends again; while the server is down, it keeps trying to connect. */
  release(): void {
    this.#held = false;
    this.#wake?.();
  }

  /** Stops making alerts and waits until every one is published. */
  async finish(): Promise<void> {
    clearInterval(this.#timer);
    this.#finished = true;
    this.#wake?.();
    await this.#pump;
  }
}

async function twentySecondOutage(kind: ServerKind): Promise<string> {
  const nodes = ["o1", "o2", "o3", "o4"];
  await using server = await startServer(kind, { persistent: true });
  await using dir = await tempDir(files("outage", nodes));
  await using proxy = new TcpProxy(server.port);
  {
    await using setup = await connect(server, "publisher", "setup");
    for (const node of nodes) await createNode(setup.pubsub, node, { maxItems: 100 });
  }
  // Default catch-up flags; only the reconnect backoff is short, to keep the test short.
  const listener = await listen(server, dir.path, proxy.port, "--backoff", "0.5,2");
  // 15 a second, 420 in all: 105 per node, so however long the listener stays away, a node
  // keeping 100 holds everything it missed (15 of each node's alerts go out before the outage).
  const publisher = new BacklogPublisher(server, nodes, 15, 420);
  try {
    await listener.until(() => publisher.published.length >= 60, "60 alerts before the outage");
    await publisher.hold();
    await server.stop();
    // The server's shutdown notice reaches the listener before the proxy is cut
    // (cut first, the notice could be dropped on its way through the proxy).
    await listener.until(() => listener.named("xmpp_disconnected").length === 1, "the outage");
    // The listener stays out until half the backlog is back on the server:
    // it must catch up on many items while the rest still streams in.
    proxy.cut();
    publisher.release();
    // ejabberd 23.01 now and then stops before the session has sent its
    // <system-shutdown/> (see the ejabberd facts test): a close with no reason.
    const why = listener.named("xmpp_disconnected")[0]?.kind;
    if (kind === "ejabberd" && why === null) console.log("ejabberd: closed without its notice");
    else assert.equal(why, "shutdown");
    await delay(20_000); // the outage itself
    await server.resume();
    const flushed = publisher.published.length + publisher.backlog / 2;
    await listener.until(() => publisher.published.length >= flushed, "half the backlog", 60);
    proxy.restore();
    await listener.until(
      () => listener.named("xmpp_reconnected").length === 1,
      "the reconnect",
      60,
    );
    await listener.until(() => publisher.generated >= 420, "420 alerts made", 60);
    await publisher.finish();
    await listener.until(
      () => routed(listener, "outage").length >= publisher.published.length,
      "every alert",
      60,
    );
    const uids = routed(listener, "outage");
    assert.equal(new Set(uids).size, uids.length, `${kind}: no alert routed twice`);
    assert.deepEqual([...uids].sort(), [...publisher.published].sort(), `${kind}: none lost`);
    assert.equal(listener.named("catch_up_gap").length, 0, `${kind}: no gap`);
    const caught = listener.named("caught_up").filter((e) => e.routed as number > 0);
    const byCatchUp = caught.reduce((n, e) => n + (e.routed as number), 0);
    assert.ok(byCatchUp > 4 * 20, `${kind}: more than a page per node caught up (${byCatchUp})`);
    assert.equal(await listener.stop(), 0);
    return `${kind}: ${uids.length} alerts, ${byCatchUp} by catch-up (${
      caught[0]?.paging
    } paging, ${caught.reduce((n, e) => n + (e.requests as number), 0)} requests), the rest live`;
  } finally {
    publisher.abandon();
    await listener.stop("SIGKILL");
  }
}

xmppTest(
  "a 20 s server outage while a publisher keeps publishing and flushes its backlog: 400+ alerts, none lost, none repeated, on Prosody and ejabberd",
  async () => {
    // Both servers at once: the outage is mostly waiting.
    const results = await Promise.allSettled(SERVERS.map(twentySecondOutage));
    const failures = results.flatMap((r) => r.status === "rejected" ? [r.reason] : []);
    if (failures.length > 0) throw new AggregateError(failures, failures.map(String).join("\n"));
    for (const r of results) if (r.status === "fulfilled") console.log(r.value);
  },
);

// ------------------------------------------- a cut connection, kicks, deletions

for (const kind of SERVERS) {
  xmppTest(`outages and node changes on ${kind}, through a connection the test cuts`, async (t) => {
    await using server = await startServer(kind, { persistent: true });
    await using dir = await tempDir(files("cut", ["g1", "g2"]));
    await using proxy = new TcpProxy(server.port);
    await using publisher = await connect(server, "publisher", "cut");
    await createNode(publisher.pubsub, "g1", { maxItems: 5 });
    await createNode(publisher.pubsub, "g2", { maxItems: 100 });
    for (const node of ["g1", "g2"]) {
      for (let n = 1; n <= 3; n++) {
        await publisher.pubsub.publish(node, `{"uid":"OLD-${node}-${n}","alert_type":"new"}`);
      }
    }
    const publish = (node: string, uid: string) =>
      publisher.pubsub.publish(node, `{"uid":"${uid}","alert_type":"new"}`);
    const listener = await listen(
      server,
      dir.path,
      proxy.port,
      "-v",
      "--backoff",
      "0.2,1",
      "--node-check-interval",
      "1",
    );
    try {
      await t.step("first subscription to nodes holding items routes nothing old", async () => {
        await publish("g1", "NEW1");
        await listener.until(() => routed(listener, "cut").includes("NEW1"), "NEW1");
        assert.deepEqual(routed(listener, "cut"), ["NEW1"]);
        assert.deepEqual(listener.named("baseline").map((e) => e.items), [3, 3]);
        // ejabberd pushed each node's last item on subscribe; it was known as history.
        const repeated = listener.named("item_repeated").map((e) => e.node).sort();
        assert.deepEqual(repeated, kind === "ejabberd" ? ["g1", "g2"] : []);
      });

      await t.step(
        "a gap that cannot be closed: routed what is left, said so everywhere",
        async () => {
          proxy.cut();
          await listener.until(() => listener.named("xmpp_disconnected").length === 1, "the cut");
          for (let n = 1; n <= 12; n++) await publish("g1", `G${n}`);
          for (let n = 1; n <= 3; n++) await publish("g2", `H${n}`);
          proxy.restore();
          await listener.until(
            () => listener.named("xmpp_reconnected").length === 1,
            "the reconnect",
          );
          const after = routed(listener, "cut").slice(1);
          assert.deepEqual(after, ["G8", "G9", "G10", "G11", "G12", "H1", "H2", "H3"]);
          const [gap, ...more] = listener.named("catch_up_gap");
          assert.equal(more.length, 0);
          assert.equal(gap?.node, "g1");
          assert.equal(gap?.reason, "seen_gone");
          assert.equal(gap?.routed, 5);
          await listener.until(() => mail(dir.path).includes("catch-up gap on g1"), "the mail");
          assert.match(
            mail(dir.path),
            /-s\|WARNING: lvalertMP catch-up gap on g1 \(.*\)\|ops@example\.org\|/,
          );
          const warning = await status(dir.path);
          assert.equal(warning.code, 1, warning.stdout);
          assert.match(
            warning.stdout,
            /^LVALERTMP WARNING - catch-up gap on g1 \(last item seen is gone; ctl --ack-gap\)/,
          );
          const ack = await runListener([
            "ctl",
            "--state-dir",
            join(dir.path, "state"),
            "--ack-gap",
            "g1",
          ]);
          assert.equal(ack.code, 0, ack.stderr);
          assert.equal(ack.stdout.trim(), "acknowledged the catch-up gap on g1");
          const ok = await status(dir.path);
          assert.equal(ok.code, 0, ok.stdout);
        },
      );

      await t.step({
        name: "an administrator's kick: reconnected, with the reason logged",
        ignore: server.kind !== "ejabberd",
        fn: async () => {
          if (server.kind !== "ejabberd") return;
          await server.kick("listener", "listener", "Maintenance at 10:00");
          await listener.until(
            () => listener.named("xmpp_reconnected").length === 2,
            "the reconnect",
          );
          const [, kicked] = listener.named("xmpp_disconnected");
          assert.equal(kicked?.kind, "kicked");
          assert.equal(kicked?.text, "Maintenance at 10:00");
          assert.match(String(kicked?.msg), /"Maintenance at 10:00": an administrator's kick/);
          await publish("g2", "K1");
          await listener.until(() => routed(listener, "cut").includes("K1"), "K1");
        },
      });

      await t.step(
        "a deleted node is noticed within the check interval, on either server",
        async () => {
          const deleted = Date.now();
          await publisher.pubsub.delete("g2");
          await listener.until(() => listener.named("node_deleted").length === 1, "the deletion");
          const [event] = listener.named("node_deleted");
          assert.equal(event?.how, kind === "ejabberd" ? "check" : "notified");
          assert.ok(Date.now() - deleted < 3000, `noticed in ${Date.now() - deleted} ms`);
          const critical = await status(dir.path);
          assert.equal(critical.code, 2, critical.stdout);
          assert.match(critical.stdout, /^LVALERTMP CRITICAL - not subscribed to g2/);
          await listener.until(() => mail(dir.path).includes("node g2 deleted"), "the mail");
        },
      );
      assert.equal(await listener.stop(), 0);
    } finally {
      await listener.stop("SIGKILL");
    }
  });
}

// ------------------------------------------------------- a full disk, live

for (const kind of SERVERS) {
  xmppTest(
    `a full disk on ${kind}: alerts beyond max_held are deferred, and caught up on the open session once space is freed, in order`,
    async (t) => {
      await using server = await startServer(kind, { persistent: true });
      const config = files("disk", ["d1"]);
      config["l.ini"] += "max_held = 5\n";
      // Each alert applied is logged (info).
      config["c.ini"] = "[general]\nprocess_type = test\n[test]\ndelays = 0\nrepeats = 0\n";
      await using dir = await tempDir(config);
      const state = join(dir.path, "state");
      if (!await mountTmpfs(t, state)) return;
      let listener: ListenerProcess | undefined;
      try {
        await using publisher = await connect(server, "publisher", "disk");
        await createNode(publisher.pubsub, "d1", { maxItems: 100 });
        // The journal writes a megabyte of zeros ahead and goes on filling them on a
        // full disk: 27 alerts of 60 KB need more than that, so some are deferred.
        const pad = "x".repeat(60_000);
        const publish = (uid: string) =>
          publisher.pubsub.publish("d1", `{"uid":"${uid}","alert_type":"new","pad":"${pad}"}`);
        listener = await listen(server, dir.path, server.port);
        const l = listener;
        for (let n = 1; n <= 3; n++) await publish(`F${n}`);
        await l.until(() => l.named("alert").length === 3, "the first three applied");
        // Fill the disk: journal writes fail once the zeros written ahead are used up.
        const filler = join(state, "filler");
        await fillDisk(filler);
        for (let n = 4; n <= 30; n++) await publish(`F${n}`);
        await l.until(() => l.named("journal_failed").length >= 1, "a failed journal write");
        // A set: a catch-up that starts early routes deferred alerts a second time.
        await l.until(
          () =>
            new Set([...routed(l, "disk"), ...l.named("alert_deferred").map((e) => e.uid)])
              .size === 30,
          "each alert routed or deferred",
        );
        const held = l.named("journal_failed").map((e) => e.held as number);
        assert.ok(held.every((n) => n <= 5), `five held in memory, at most: ${held}`);
        assert.ok(l.named("alert_deferred").length >= 5, "the rest deferred");
        await Deno.remove(filler);
        // At least one: a checkpoint that frees a few KB while the disk is
        // full can let the child take alerts, and a catch-up run, earlier.
        await l.until(() => l.named("deferred_catch_up").length >= 1, "the catch-up", 30);
        await l.until(() => l.named("alert").length === 30, "all thirty applied", 30);
        const uids = Array.from({ length: 30 }, (_, i) => `F${i + 1}`);
        assert.deepEqual(routed(l, "disk"), uids, `${kind}: each once, in order`);
        assert.deepEqual(l.named("alert").map((e) => e.uid), uids);
        // Live alerts are routed as before.
        await publish("F31");
        await l.until(() => l.named("alert").length === 31, "a live one after");
        assert.equal(await l.stop(), 0);
      } finally {
        await listener?.stop("SIGKILL");
        await unmountTmpfs(state);
      }
    },
  );
}
