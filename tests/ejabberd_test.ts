/**
 * The ejabberd harness, and each behaviour of the real servers that the
 * listener's catch-up and error handling rely on, asserted on Prosody and on
 * ejabberd: a server upgrade that changes one fails here first. The table in
 * tests/ejabberd.ts sums these facts up.
 */

import assert from "node:assert/strict";
import { x, type XmlElement } from "../lib/xmpp/client.ts";
import { NS_PUBSUB, NS_PUBSUB_OWNER } from "../lib/xmpp/pubsub.ts";
import { Ejabberd, startEjabberd } from "./ejabberd.ts";
import {
  connect,
  type ServerKind,
  SERVERS,
  type Session,
  startServer,
  USERS,
  type XmppServer,
  xmppTest,
} from "./xmpp_servers.ts";

const NS_RSM = "http://jabber.org/protocol/rsm";
const NS_STREAMS = "urn:ietf:params:xml:ns:xmpp-streams";

/** An IQ to the pubsub service; resolves with the reply or the `<error>` element. */
async function ask(
  session: Session,
  type: "get" | "set",
  child: XmlElement,
  timeoutMs?: number,
): Promise<{ ok: true; reply: XmlElement } | { ok: false; condition: string; error: string }> {
  try {
    const iq = x("iq", { type, to: session.pubsub.service }, child);
    return { ok: true, reply: await session.client.request(iq, timeoutMs) };
  } catch (error) {
    const { condition, element } = error as { condition?: string; element?: XmlElement };
    if (condition === undefined) throw error;
    return { ok: false, condition, error: shape(element) };
  }
}

/** `<pubsub><items node=.../>[<set>...</set>]</pubsub>`, answered. */
async function items(
  session: Session,
  node: string,
  attrs: Record<string, string> = {},
  ...set: XmlElement[]
): Promise<XmlElement> {
  const rsm = set.length > 0 ? x("set", { xmlns: NS_RSM }, ...set) : undefined;
  const r = await ask(
    session,
    "get",
    x("pubsub", { xmlns: NS_PUBSUB }, x("items", { node, ...attrs }), rsm),
  );
  if (!r.ok) throw new Error(`items ${node} failed: ${r.error}`);
  return r.reply.getChild("pubsub", NS_PUBSUB)!;
}

/** Payload numbers of an answer or event, in order (`{"n":3}` -> 3). */
function numbers(el: XmlElement): number[] {
  return [...String(el).matchAll(/\{"n":(\d+)\}/g)].map((m) => Number(m[1]));
}

/**
 * The XML with attributes sorted (Prosody's order changes from stanza to
 * stanza) and what changes from run to run replaced by fixed words.
 */
function shape(el: XmlElement | string | undefined): string {
  if (el === undefined) return "undefined";
  if (typeof el === "string") return el.replace(/&/g, "&amp;").replace(/</g, "&lt;");
  const attrs = Object.entries(el.attrs)
    .filter((a): a is [string, string] => a[1] !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : 1))
    .map(([k, v]) => {
      const fixed = k === "id" || k === "subid" ? "ID" : k === "stamp" ? "STAMP" : v;
      return ` ${k}="${fixed.replace(/&/g, "&amp;").replace(/"/g, "&quot;")}"`;
    }).join("");
  const inner = el.name === "first" || el.name === "last"
    ? "STAMP"
    : el.children.map(shape).join("");
  return inner === "" ? `<${el.name}${attrs}/>` : `<${el.name}${attrs}>${inner}</${el.name}>`;
}

const STAMP = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/;

async function publishNumbers(session: Session, node: string, count: number): Promise<string[]> {
  const ids: string[] = [];
  for (let n = 1; n <= count; n++) ids.push(await session.pubsub.publish(node, `{"n":${n}}`));
  return ids;
}

/** Waits until `session` has an event on `node` carrying `{"n":n}`. */
function eventWith(session: Session, node: string, n: number): Promise<XmlElement> {
  return session.until(
    () => session.events(node).find((e) => numbers(e).includes(n)),
    `n=${n} on ${node}`,
  );
}

/** The stream error a session received, in `shape`, or what it got instead. */
function streamError(session: Session): string {
  const error = session.errors.find((e) => e.name === "StreamError") as
    | { element?: XmlElement }
    | undefined;
  return error ? shape(error.element) : `no stream error: ${session.errors.join("; ")}`;
}

// ---------------------------------------------------------------- harness

xmppTest(
  "startEjabberd: a private instance on loopback whose users log in; stop and resume keep them",
  async () => {
    const started = performance.now();
    await using server = await startEjabberd();
    const startMs = performance.now() - started;
    assert.match(server.node, /^lvalertmp_[0-9a-f]{8}@localhost$/);
    assert.equal(server.domain, "localhost");
    assert.equal(server.pubsub, "pubsub.localhost");
    for (const user of Object.keys(USERS) as (keyof typeof USERS)[]) {
      await using session = await connect(server, user, "harness");
      assert.equal(session.jid, `${user}@localhost/harness`);
    }
    assert.equal(
      (await server.ctl("registered_users", "localhost")).trim().split("\n").sort().join(" "),
      "listener other publisher",
    );
    await server.createNode("kept", { maxItems: 5 });
    const stopping = performance.now();
    await server.stop();
    const stopMs = performance.now() - stopping;
    await assert.rejects(Deno.connect({ hostname: "127.0.0.1", port: server.port }));
    const resuming = performance.now();
    await server.resume();
    const resumeMs = performance.now() - resuming;
    await using session = await connect(server, "listener", "again");
    assert.equal(await session.pubsub.exists("kept"), true);
    console.log(
      `ejabberd: start ${startMs.toFixed(0)} ms, stop ${stopMs.toFixed(0)} ms, ` +
        `resume ${resumeMs.toFixed(0)} ms`,
    );
  },
);

xmppTest(
  "startEjabberd: a crashed instance blocks neither a new one nor its own restart beside it",
  async () => {
    await using a = await startEjabberd();
    await a.stop("SIGKILL");
    await using c = await startEjabberd();
    assert.notEqual(a.node, c.node);
    assert.notEqual(a.port, c.port);
    await a.resume();
    await using onA = await connect(a, "listener", "a");
    await using onC = await connect(c, "listener", "c");
    assert.equal(onA.closed || onC.closed, false);
  },
);

xmppTest("startEjabberd: a server whose test process ended stops by itself", async () => {
  const module = new URL("./ejabberd.ts", import.meta.url).href;
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "eval",
      `import { startEjabberd } from ${JSON.stringify(module)};
       const s = await startEjabberd();
       console.log(JSON.stringify({ port: s.port, dir: s.dir }));
       for await (const _ of Deno.stdin.readable);
       Deno.exit(0);`,
    ],
    stdin: "piped",
    stdout: "piped",
    stderr: "null",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let line = "";
  while (!line.includes("\n")) {
    const { value, done } = await reader.read();
    if (done) break;
    line += value;
  }
  reader.releaseLock();
  const { port, dir } = JSON.parse(line) as { port: number; dir: string };
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    await child.stdin.close();
    assert.equal((await child.status).code, 0);
    // The process that owned the server is gone without stopping it: the
    // server closes this connection when it stops on its own.
    const buffer = new Uint8Array(4096);
    while ((await conn.read(buffer).catch(() => null)) !== null);
  } finally {
    conn.close();
    await child.stdout.cancel().catch(() => {});
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
});

// ------------------------------------------------------- server behaviours

/** Per server, the exact answers seen (volatile parts replaced, see `shape`). */
const EXPECT = {
  prosody: {
    idFormat: /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/,
    defaults: {
      "pubsub#max_items": "20",
      "pubsub#persist_items": "1",
      "pubsub#send_last_published_item": "never",
      "pubsub#notify_delete": "1",
      "pubsub#notification_type": "headline",
    },
    maxItems3Set: "",
    maxItems10Set: "",
    item: (n: number) =>
      `<item id="ID" xmlns="http://jabber.org/protocol/pubsub"><entry>{"n":${n}}</entry></item>`,
    event: (node: string, n: number, to: string) =>
      `<message from="pubsub.localhost" id="ID" to="${to}" type="headline"><event xmlns="http://jabber.org/protocol/pubsub#event"><items node="${node}"><item id="ID"><entry xmlns="http://jabber.org/protocol/pubsub">{"n":${n}}</entry></item></items></event></message>`,
    deleteEvent: (node: string, to: string) =>
      `<message from="pubsub.localhost" id="ID" to="${to}" type="headline"><event xmlns="http://jabber.org/protocol/pubsub#event"><delete node="${node}"/></event></message>`,
    notFound:
      '<error type="cancel"><item-not-found xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"/></error>',
    conflict:
      `<stream:error><conflict xmlns="${NS_STREAMS}"/><text xmlns="${NS_STREAMS}">Replaced by new connection</text></stream:error>`,
    shutdown:
      `<stream:error><system-shutdown xmlns="${NS_STREAMS}"/><text xmlns="${NS_STREAMS}">Received SIGTERM</text></stream:error>`,
  },
  ejabberd: {
    // Hex of the publication time's megaseconds, seconds and microseconds, unpadded.
    idFormat: /^[0-9A-F]{5,13}$/,
    defaults: {
      "pubsub#max_items": "1000",
      "pubsub#persist_items": "1",
      "pubsub#send_last_published_item": "on_sub_and_presence",
      "pubsub#notify_delete": "0",
      "pubsub#notification_type": "headline",
    },
    maxItems3Set:
      `<set xmlns="${NS_RSM}"><count>5</count><first index="2">STAMP</first><last>STAMP</last></set>`,
    maxItems10Set:
      `<set xmlns="${NS_RSM}"><count>5</count><first index="-5">STAMP</first><last>STAMP</last></set>`,
    item: (n: number) => `<item id="ID"><entry>{"n":${n}}</entry></item>`,
    event: (node: string, n: number, to: string, delayed = false) =>
      `<message from="pubsub.localhost" to="${to}" type="headline"><event xmlns="http://jabber.org/protocol/pubsub#event"><items node="${node}"><item id="ID"><entry>{"n":${n}}</entry></item></items></event>${
        delayed ? '<delay stamp="STAMP" xmlns="urn:xmpp:delay"/>' : ""
      }</message>`,
    deleteEvent: (node: string, to: string) =>
      `<message from="pubsub.localhost" to="${to}" type="headline"><event xmlns="http://jabber.org/protocol/pubsub#event"><delete node="${node}"/></event></message>`,
    notFound:
      '<error type="cancel"><item-not-found xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"/><text xml:lang="en" xmlns="urn:ietf:params:xml:ns:xmpp-stanzas">Node not found</text></error>',
    conflict:
      `<stream:error><conflict xmlns="${NS_STREAMS}"/><text xml:lang="en" xmlns="${NS_STREAMS}">Replaced by new connection</text></stream:error>`,
    shutdown: `<stream:error><system-shutdown xmlns="${NS_STREAMS}"/></stream:error>`,
  },
} as const;

function itemsAnswer(kind: ServerKind, node: string, set: string, ns: number[]): string {
  const list = ns.map((n) => EXPECT[kind].item(n)).join("");
  return `<pubsub xmlns="${NS_PUBSUB}">${set}<items node="${node}">${list}</items></pubsub>`;
}

for (const kind of SERVERS) {
  xmppTest(`pubsub behaviours the listener relies on, on ${kind}`, async (t) => {
    await using server = await startServer(kind, { persistent: true });
    await using publisher = await connect(server, "publisher", "facts");
    await factsOfItems(t, server, publisher);
    await factsOfDelivery(t, server, publisher);
    await factsOfDeletion(t, server, publisher);
    await factsOfRecreation(t, server, publisher);
    await factsOfSessions(t, server);
    await factsOfRestart(t, server, publisher);
  });
}

async function factsOfItems(t: Deno.TestContext, server: XmppServer, publisher: Session) {
  const kind = server.kind;
  const expect = EXPECT[kind];

  await t.step("node defaults (owner configure form)", async () => {
    await server.createNode("defaults");
    const r = await ask(
      publisher,
      "get",
      x("pubsub", { xmlns: NS_PUBSUB_OWNER }, x("configure", { node: "defaults" })),
    );
    assert.ok(r.ok);
    const form = r.reply.getChild("pubsub", NS_PUBSUB_OWNER)?.getChild("configure")?.getChild(
      "x",
      "jabber:x:data",
    );
    const values = Object.fromEntries(
      (form?.getChildren("field") ?? []).map((
        f,
      ) => [f.attrs.var ?? "", f.getChildText("value") ?? ""]),
    );
    for (const [field, value] of Object.entries(expect.defaults)) {
      assert.equal(values[field], value, field);
    }
  });

  await t.step(
    "items published without an id get server-assigned ids, returned in the publish reply",
    async () => {
      await server.createNode("ids");
      const ids = await publishNumbers(publisher, "ids", 3);
      for (const id of ids) assert.match(id, expect.idFormat);
      assert.equal(new Set(ids).size, 3);
      if (kind === "ejabberd") {
        const megaseconds = Math.floor(Date.now() / 1e9).toString(16).toUpperCase();
        assert.ok(
          ids.every((id) => id.startsWith(megaseconds)),
          `${ids} start with ${megaseconds}`,
        );
      }
    },
  );

  await server.createNode("order");
  const ids = await publishNumbers(publisher, "order", 5);

  await t.step(
    "items answer: oldest first; max_items=N gives the newest N; more than stored gives all",
    async () => {
      assert.equal(
        shape(await items(publisher, "order")),
        itemsAnswer(kind, "order", "", [1, 2, 3, 4, 5]),
      );
      assert.equal(
        shape(await items(publisher, "order", { max_items: "3" })),
        itemsAnswer(kind, "order", expect.maxItems3Set, [3, 4, 5]),
      );
      assert.equal(
        shape(await items(publisher, "order", { max_items: "10" })),
        itemsAnswer(kind, "order", expect.maxItems10Set, [1, 2, 3, 4, 5]),
      );
      const all = await items(publisher, "order");
      assert.deepEqual(all.getChild("items")?.getChildren("item").map((i) => i.attrs.id), ids);
    },
  );

  await t.step(
    "result set management (XEP-0059) on items: pages of <max>, back with <before>",
    async () => {
      const max = x("max", {}, "2");
      if (kind === "prosody") {
        // Ignored: every item, no <set>.
        for (const set of [[max, x("before")], [max], [x("max", {}, "0")]]) {
          const answer = await items(publisher, "order", {}, ...set);
          assert.deepEqual(numbers(answer), [1, 2, 3, 4, 5]);
          assert.equal(answer.getChild("set", NS_RSM), undefined);
        }
        return;
      }
      // Newest page first; <first>/<last> are publication stamps, not item ids.
      const pages: string[] = [];
      let answer = await items(publisher, "order", {}, max, x("before"));
      for (;;) {
        const set = answer.getChild("set", NS_RSM)!;
        pages.push(`${numbers(answer).join(",")} ${shape(set)}`);
        const first = set.getChildText("first");
        if (first === null) break;
        assert.match(first, STAMP);
        answer = await items(publisher, "order", {}, max, x("before", {}, first));
      }
      const set = (index: number) =>
        `<set xmlns="${NS_RSM}"><count>5</count><first index="${index}">STAMP</first><last>STAMP</last></set>`;
      assert.deepEqual(pages, [
        `4,5 ${set(3)}`,
        `2,3 ${set(1)}`,
        `1 ${set(-1)}`, // sic: the index of item 1 is 0
        ` <set xmlns="${NS_RSM}"><count>5</count></set>`,
      ]);
      const forward = await items(publisher, "order", {}, max);
      assert.equal(
        `${numbers(forward)} ${shape(forward.getChild("set", NS_RSM))}`,
        `1,2 ${set(0)}`,
      );
      const after = await items(
        publisher,
        "order",
        {},
        max,
        x("after", {}, forward.getChild("set", NS_RSM)!.getChildText("last")!),
      );
      assert.deepEqual(numbers(after), [3, 4]);
      // An item id is no RSM key: <after>ID</after> answers nothing.
      const byId = await items(publisher, "order", {}, max, x("after", {}, ids[1]!));
      assert.equal(
        shape(byId),
        `<pubsub xmlns="${NS_PUBSUB}"><set xmlns="${NS_RSM}"><count>5</count></set><items node="order"/></pubsub>`,
      );
    },
  );

  await t.step("a node keeps its newest max_items items, dropping the oldest", async () => {
    await server.createNode("capped", { maxItems: 3 });
    await publishNumbers(publisher, "capped", 5);
    assert.deepEqual(numbers(await items(publisher, "capped")), [3, 4, 5]);
  });

  await t.step("pubsub#persist_items=0: what an items request answers", async () => {
    await server.createNode("volatile", { persistItems: false });
    await publishNumbers(publisher, "volatile", 3);
    const r = await ask(
      publisher,
      "get",
      x("pubsub", { xmlns: NS_PUBSUB }, x("items", { node: "volatile" })),
    );
    if (kind === "prosody") {
      assert.ok(!r.ok);
      assert.equal(
        r.error,
        '<error type="cancel"><feature-not-implemented xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"/><persistent-items xmlns="http://jabber.org/protocol/pubsub#errors"/></error>',
      );
    } else {
      assert.ok(r.ok);
      assert.deepEqual(numbers(r.reply), [3], "only the last item, kept in memory");
    }
  });

  await t.step("pubsub#max_items above the server's limit", async () => {
    const r = await server.createNode("huge", { maxItems: 5000 }).then(
      () => "created",
      (e) => `${e.condition}: ${e.text}`,
    );
    assert.equal(
      r,
      kind === "prosody"
        ? "created" // up to pubsub_max_items, 10000 in this harness
        : "resource-constraint: Bad value of field 'pubsub#max_items' of type 'http://jabber.org/protocol/pubsub#node_config'",
    );
  });
}

async function factsOfDelivery(t: Deno.TestContext, server: XmppServer, publisher: Session) {
  const kind = server.kind;
  const expect = EXPECT[kind];

  await t.step("last published item on subscribe", async () => {
    await server.createNode("last");
    await publisher.pubsub.publish("last", '{"n":1}');
    const published = Date.now();
    await using other = await connect(server, "other", "last");
    await other.pubsub.subscribe("last", other.jid);
    if (kind === "ejabberd") await eventWith(other, "last", 1);
    await publisher.pubsub.publish("last", '{"n":2}');
    await eventWith(other, "last", 2);
    const events = other.events("last");
    if (kind === "prosody") {
      assert.deepEqual(events.map(shape), [EXPECT.prosody.event("last", 2, other.jid)]);
      return;
    }
    assert.deepEqual(events.map(shape), [
      EXPECT.ejabberd.event("last", 1, other.jid, true),
      EXPECT.ejabberd.event("last", 2, other.jid),
    ]);
    const stamp = events[0]!.getChild("delay", "urn:xmpp:delay")!.attrs.stamp!;
    assert.match(stamp, STAMP);
    assert.ok(Math.abs(Date.parse(stamp) - published) < 5000, `${stamp} is the publication time`);
  });

  await t.step("last published item again each time a subscriber comes online", async () => {
    // The subscription of other@localhost/last from the step above.
    await using other = await connect(server, "other", "last");
    // Presence is handled before this round trip; then a fresh item follows.
    await other.pubsub.subscriptions("last");
    await publisher.pubsub.publish("last", '{"n":3}');
    await eventWith(other, "last", 3);
    if (kind === "ejabberd") {
      // Pushed again (no <delay/> this time), often after newer items.
      await eventWith(other, "last", 2);
      assert.deepEqual(
        other.events("last").map(shape).sort(),
        [
          expect.event("last", 2, other.jid),
          expect.event("last", 3, other.jid),
        ].sort(),
      );
    } else {
      assert.deepEqual(other.events("last").map(numbers), [[3]]);
    }
  });

  await t.step("a bare-JID subscription: what a resource coming online gets", async () => {
    await server.createNode("bare");
    await publisher.pubsub.publish("bare", '{"n":1}');
    await using first = await connect(server, "listener", "bare-1");
    await first.pubsub.subscribe("bare", "listener@localhost");
    await using second = await connect(server, "listener", "bare-2");
    await second.pubsub.subscriptions("bare");
    await publisher.pubsub.publish("bare", '{"n":2}');
    await eventWith(second, "bare", 2);
    if (kind === "ejabberd") await eventWith(second, "bare", 1);
    assert.deepEqual(
      second.events("bare").map(numbers).flat().sort(),
      kind === "ejabberd" ? [1, 2] : [2],
    );
  });

  await t.step("pubsub#send_last_published_item=on_sub and never", async () => {
    await server.createNode("onsub", { sendLastPublishedItem: "on_sub" });
    await server.createNode("never", { sendLastPublishedItem: "never" });
    await publisher.pubsub.publish("onsub", '{"n":1}');
    await publisher.pubsub.publish("never", '{"n":1}');
    await using other = await connect(server, "other", "onsub");
    await other.pubsub.subscribe("onsub", other.jid);
    await eventWith(other, "onsub", 1);
    await other.pubsub.subscribe("never", other.jid);
    await publisher.pubsub.publish("never", '{"n":2}');
    await eventWith(other, "never", 2);
    // Prosody sends it without a <delay/>.
    assert.deepEqual(other.events("onsub").map(shape), [
      kind === "prosody"
        ? EXPECT.prosody.event("onsub", 1, other.jid)
        : EXPECT.ejabberd.event("onsub", 1, other.jid, true),
    ]);
    assert.deepEqual(other.events("never").map(numbers), [[2]]);
  });
}

async function factsOfDeletion(t: Deno.TestContext, server: XmppServer, publisher: Session) {
  const kind = server.kind;
  const expect = EXPECT[kind];

  await t.step(
    "node deletion: what subscribers hear, and what requests on the node answer",
    async () => {
      for (const node of ["gone", "barrier"]) await server.createNode(node);
      await server.createNode("gone-notified", { notifyDelete: true });
      await using listener = await connect(server, "listener", "deletion");
      for (const node of ["gone", "gone-notified", "barrier"]) {
        await listener.pubsub.subscribe(node, listener.jid);
      }
      await publisher.pubsub.delete("gone");
      await publisher.pubsub.delete("gone-notified");
      await publisher.pubsub.publish("barrier", '{"n":1}');
      const deletions = () => listener.stanzas.filter((s) => s.toString().includes("<delete "));
      await listener.until(
        () => deletions().some((s) => s.toString().includes('"gone-notified"')),
        "the deletion of gone-notified",
      );
      await eventWith(listener, "barrier", 1);
      assert.deepEqual(
        deletions().map(shape),
        [
          ...(kind === "prosody" ? [expect.deleteEvent("gone", listener.jid)] : []),
          expect.deleteEvent("gone-notified", listener.jid),
        ],
      );
      const disco = await ask(
        listener,
        "get",
        x("query", { xmlns: "http://jabber.org/protocol/disco#info", node: "gone" }),
      );
      const fetch = await ask(
        listener,
        "get",
        x("pubsub", { xmlns: NS_PUBSUB }, x("items", { node: "gone" })),
      );
      const subscribe = await ask(
        listener,
        "set",
        x("pubsub", { xmlns: NS_PUBSUB }, x("subscribe", { node: "gone", jid: listener.jid })),
      );
      for (const r of [disco, fetch, subscribe]) {
        assert.ok(!r.ok);
        assert.equal(r.error, expect.notFound);
      }
    },
  );

  await t.step("all-node <subscriptions/> after a subscribed node was deleted", async () => {
    await using listener = await connect(server, "listener", "deletion");
    let answered = false;
    const timeout = kind === "prosody" ? 1500 : undefined;
    const all = ask(listener, "get", x("pubsub", { xmlns: NS_PUBSUB }, x("subscriptions")), timeout)
      .finally(() => (answered = true));
    // Requests are handled in order: once a later one is answered, so is the first, if ever.
    await ask(
      listener,
      "get",
      x("pubsub", { xmlns: NS_PUBSUB }, x("subscriptions", { node: "barrier" })),
    );
    if (kind === "ejabberd") {
      const r = await all;
      assert.ok(r.ok);
      const nodes = r.reply.getChild("pubsub", NS_PUBSUB)?.getChild("subscriptions")?.getChildren(
        "subscription",
      )
        .filter((s) => s.attrs.jid === listener.jid).map((s) => s.attrs.node);
      assert.deepEqual(nodes, ["barrier"]);
      return;
    }
    // Prosody 0.12.3: util/pubsub.lua raises on the deleted node; no answer at all.
    assert.equal(answered, false);
    await assert.rejects(all, { name: "TimeoutError" });
    const log = await Deno.readTextFile(`${server.dir}/prosody.log`);
    assert.match(log, /pubsub\.lua:\d+: attempt to index a nil value/);
  });
}

async function factsOfRecreation(t: Deno.TestContext, server: XmppServer, publisher: Session) {
  const kind = server.kind;

  await t.step(
    "a node created again under a deleted node's name; subscribing twice is one subscription",
    async () => {
      // listener@localhost/deletion was subscribed to "gone" before it was deleted.
      await server.createNode("gone");
      await using listener = await connect(server, "listener", "deletion", { presence: false });
      const reported = (await listener.pubsub.subscriptions("gone")).map((s) => s.jid);
      // Prosody still reports the old subscription, yet delivers nothing on it.
      assert.deepEqual(reported, kind === "prosody" ? [listener.jid] : []);
      await publisher.pubsub.publish("gone", '{"n":1}');
      await publisher.pubsub.publish("barrier", '{"n":2}');
      await eventWith(listener, "barrier", 2);
      assert.deepEqual(listener.events("gone"), [], "nothing through the old subscription");
      await listener.pubsub.subscribe("gone", listener.jid);
      await listener.pubsub.subscribe("gone", listener.jid);
      assert.equal((await listener.pubsub.subscriptions("gone")).length, 1);
      await publisher.pubsub.publish("gone", '{"n":3}');
      await publisher.pubsub.publish("barrier", '{"n":4}');
      await eventWith(listener, "barrier", 4);
      assert.deepEqual(
        listener.events("gone").map(numbers),
        kind === "ejabberd" ? [[1], [1], [3]] : [[3]],
        "each subscribe pushes the last item on ejabberd; the item itself comes once",
      );
    },
  );
}

async function factsOfSessions(t: Deno.TestContext, server: XmppServer) {
  const kind = server.kind;

  await t.step("a second login on the same resource ends the first with <conflict/>", async () => {
    await using first = await connect(server, "listener", "twice");
    await using second = await connect(server, "listener", "twice");
    await first.until(() => first.closed, "the first session to close");
    assert.equal(streamError(first), EXPECT[kind].conflict);
    assert.equal(second.closed, false);
  });

  await t.step({
    name: "ejabberdctl kick_session ends a session with <conflict/> and the admin's text",
    ignore: kind !== "ejabberd",
    fn: async () => {
      assert.ok(server instanceof Ejabberd);
      await using kicked = await connect(server, "listener", "kicked");
      await server.kick("listener", "kicked", "Maintenance at 10:00");
      await kicked.until(() => kicked.closed, "the kicked session to close");
      assert.equal(
        streamError(kicked),
        `<stream:error><conflict xmlns="${NS_STREAMS}"/><text xml:lang="en" xmlns="${NS_STREAMS}">Maintenance at 10:00</text></stream:error>`,
      );
      await using silent = await connect(server, "listener", "kicked");
      await server.kick("listener", "kicked", "");
      await silent.until(() => silent.closed, "the second kicked session to close");
      assert.equal(
        streamError(silent),
        `<stream:error><conflict xmlns="${NS_STREAMS}"/></stream:error>`,
      );
      // A kick is no ban: the same resource logs in again at once.
      await using back = await connect(server, "listener", "kicked");
      assert.equal(back.closed, false);
    },
  });
}

async function factsOfRestart(t: Deno.TestContext, server: XmppServer, publisher: Session) {
  const kind = server.kind;
  await server.createNode("persist");
  const id = await publisher.pubsub.publish("persist", '{"n":1}');
  const listener = await connect(server, "listener", "persist");
  await listener.pubsub.subscribe("persist", listener.jid);

  await t.step("an orderly shutdown: the stream error clients see", async () => {
    // ejabberd 23.01 now and then stops before a session has sent its
    // <system-shutdown/> (its log then has no "Closing c2s session" line):
    // the session just closes. So up to three stops, on the same resource:
    // the notice must come, and a stop without it is a close with no stream
    // error at all, and on ejabberd only.
    let session = listener;
    for (let stop = 1;; stop++) {
      if (stop > 1) {
        await server.resume();
        session = await connect(server, "listener", "persist");
        // A round trip: the session is settled in before the stop.
        await session.pubsub.subscriptions("persist");
      }
      const stopping = server.stop();
      await session.until(() => session.closed, "the shutdown");
      await stopping;
      await session[Symbol.asyncDispose]();
      const seen = streamError(session);
      if (seen === EXPECT[kind].shutdown || stop === 3) {
        assert.equal(seen, EXPECT[kind].shutdown);
        break;
      }
      assert.equal(kind, "ejabberd", `${kind}: ${seen}`);
      assert.equal(seen, "no stream error: ", "a close without any stream error");
    }
  });

  await t.step("nodes, items and subscriptions survive a restart", async () => {
    await server.resume();
    await using again = await connect(server, "listener", "persist");
    assert.deepEqual((await again.pubsub.items("persist", 10)).map((i) => i.id), [id]);
    const subscriptions = await again.pubsub.subscriptions("persist");
    assert.deepEqual(subscriptions.map((s) => [s.jid, s.subscription]), [[
      again.jid,
      "subscribed",
    ]]);
    await using newPublisher = await connect(server, "publisher", "after");
    await newPublisher.pubsub.publish("persist", '{"n":2}');
    await eventWith(again, "persist", 2);
    if (kind === "ejabberd") await eventWith(again, "persist", 1); // last item on coming online
    assert.deepEqual(
      again.events("persist").map(numbers).flat().sort(),
      kind === "ejabberd" ? [1, 2] : [2],
    );
  });
}
