import assert from "node:assert/strict";
import { Logger, type LogRecord } from "../lib/core/log.ts";
import { MemorySeenIds } from "../lib/core/source.ts";
import { type Delivery, payloadKey, Router } from "../lib/listener/router.ts";

function router(window = 60) {
  const delivered: Delivery[] = [];
  const records: LogRecord[] = [];
  const r = new Router({
    owners: new Map([["a", "kid"], ["b", "kid"], ["c", "other"]]),
    deliver: (d) => delivered.push(d),
    log: new Logger({ child: null, format: "json", sinks: [(_l, rec) => records.push(rec)] }),
    dedupWindow: window,
    seen: new MemorySeenIds(3),
  });
  return { r, delivered, records };
}

const NEW = '{"uid":"G1","alert_type":"new"}';

Deno.test("Router drops the same payload on another node of the same child within the window", () => {
  const { r, delivered } = router();
  assert.equal(r.route({ node: "a", id: "1", payload: NEW, t0: 100 }), "routed");
  assert.equal(r.route({ node: "b", id: "9", payload: NEW, t0: 100.01 }), "duplicate");
  assert.equal(
    r.route({ node: "c", id: "1", payload: NEW, t0: 100.02 }),
    "routed",
    "another child gets its own copy",
  );
  assert.equal(
    r.route({ node: "a", id: "2", payload: NEW, t0: 101 }),
    "routed",
    "a repeat on the same node is a new alert",
  );
  assert.equal(
    r.route({ node: "b", id: "3", payload: NEW, t0: 200 }),
    "routed",
    "outside the window",
  );
  assert.deepEqual(delivered.map((d) => `${d.child}:${d.node}`), [
    "kid:a",
    "other:c",
    "kid:a",
    "kid:b",
  ]);
  assert.deepEqual(r.counts, {
    received: 5,
    routed: 4,
    rejected: 0,
    unrouted: 0,
    duplicates: 1,
    ignored: 0,
    deferred: 0,
    unknown_type: 0,
  });
});

Deno.test("Router drops an item id it already routed on that node", () => {
  const { r } = router();
  assert.equal(r.route({ node: "a", id: "x", payload: NEW, t0: 1 }), "routed");
  assert.equal(
    r.route({ node: "a", id: "x", payload: '{"uid":"G2","alert_type":"new"}', t0: 2 }),
    "duplicate",
  );
  assert.equal(r.route({ node: "c", id: "x", payload: NEW, t0: 3 }), "routed", "ids are per node");
});

Deno.test("Router ignores heartbeat responses and counts bad input with a reason", () => {
  const { r, records } = router();
  assert.equal(
    r.route({ node: "a", id: null, payload: { uid: "heartbeat", ptype: "response" }, t0: 1 }),
    "ignored",
  );
  assert.equal(r.route({ node: "a", id: null, payload: "[]", t0: 1 }), "rejected");
  assert.equal(r.route({ node: "zzz", id: null, payload: NEW, t0: 1 }), "unrouted");
  r.reject("file:3", "not JSON");
  assert.deepEqual(records.filter((x) => x.level === "warning").map((x) => x.msg), [
    "node a: payload must be a JSON object, got an array",
    'no child listens to node "zzz"; alert dropped',
    "file:3: not JSON",
  ]);
  assert.equal(r.counts.rejected, 2);
});

Deno.test("payloadKey tells payloads apart and is stable", () => {
  const keys = new Set<string>();
  for (let i = 0; i < 20_000; i++) keys.add(payloadKey(`{"uid":"G${i}","alert_type":"new"}`));
  assert.equal(keys.size, 20_000);
  assert.equal(payloadKey(NEW), payloadKey(NEW));
  assert.notEqual(payloadKey("ab"), payloadKey("ba"));
});

Deno.test("Router: once an alert of a node is deferred, the node's later alerts wait too, until resumed", () => {
  const delivered: Delivery[] = [];
  let full = true;
  const r = new Router({
    owners: new Map([["a", "kid"], ["b", "kid"]]),
    deliver: (d) => delivered.push(d),
    log: new Logger({ child: null, format: "json", sinks: [] }),
    seen: new MemorySeenIds(100),
    accepts: () => !full,
  });
  const alert = (uid: string) => `{"uid":"${uid}","alert_type":"new"}`;
  assert.equal(r.route({ node: "a", id: "1", payload: alert("G1"), t0: 1 }), "deferred");
  full = false;
  // Routing it would mark it seen, and a catch-up stops at the newest seen item.
  assert.equal(r.route({ node: "a", id: "2", payload: alert("G2"), t0: 2 }), "deferred");
  assert.equal(r.route({ node: "b", id: "1", payload: alert("G3"), t0: 3 }), "routed");
  assert.deepEqual([...r.deferredNodes], ["a"]);
  r.resume("a");
  assert.deepEqual([...r.deferredNodes], []);
  // The catch-up offers them again, oldest first.
  assert.equal(r.route({ node: "a", id: "1", payload: alert("G1"), t0: 4 }), "routed");
  assert.equal(r.route({ node: "a", id: "2", payload: alert("G2"), t0: 4 }), "routed");
  assert.deepEqual(delivered.map((d) => d.alert.uid), ["G3", "G1", "G2"]);
  assert.equal(r.counts.deferred, 2);
});

Deno.test("Router remembers for good the items it never journals: refused, ignored, a duplicate payload", () => {
  const recorded: string[] = [];
  const added: string[] = [];
  const r = new Router({
    owners: new Map([["a", "kid"], ["b", "kid"]]),
    deliver: () => {},
    log: new Logger({ child: null, format: "json", sinks: [] }),
    seen: {
      has: (node, id) => [...recorded, ...added].includes(`${node}/${id}`),
      add: (node, id) => void added.push(`${node}/${id}`),
      record: (node, id) => void recorded.push(`${node}/${id}`),
    },
  });
  assert.equal(r.route({ node: "a", id: "1", payload: "not json", t0: 1 }), "rejected");
  const response = '{"uid":"heartbeat","ptype":"response","name":"kid"}';
  assert.equal(r.route({ node: "a", id: "2", payload: response, t0: 2 }), "ignored");
  assert.equal(r.route({ node: "a", id: "3", payload: NEW, t0: 3 }), "routed");
  assert.equal(r.route({ node: "b", id: "4", payload: NEW, t0: 3.1 }), "duplicate");
  // A catch-up stops at any of them; the routed one is written down once journaled.
  assert.deepEqual(recorded, ["a/1", "a/2", "b/4"]);
  assert.deepEqual(added, ["a/3"]);
});
