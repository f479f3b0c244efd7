import assert from "node:assert/strict";
import type { JsonObject } from "../lib/core/alert.ts";
import { judge } from "../lib/tools/status.ts";

function doc(children: JsonObject[], xmpp: JsonObject | null = null): JsonObject {
  return { children, xmpp };
}

const ready = {
  child: "gstlal watcher",
  state: "ready",
  queue: 3,
  warnThr: 1000,
  inFlight: 0,
  oldestInFlight: 0,
};
const online = {
  online: true,
  offline_since: null,
  configured: ["a", "b"],
  subscribed: ["a", "b"],
  extra: [],
};

Deno.test("status judges OK, WARNING and CRITICAL", async (t) => {
  await t.step("OK with perfdata", () => {
    const v = judge(doc([ready], online), 120, 30);
    assert.equal(v.code, 0);
    assert.equal(
      v.line,
      "LVALERTMP OK - 1 children, xmpp online, 2/2 nodes | 'queue_gstlal_watcher'=3;1000;;0 'inflight_gstlal_watcher'=0;;;0 'subscribed'=2;;;0;2",
    );
  });
  await t.step("WARNING: a queue over warnThr, or a journal lag", () => {
    assert.equal(judge(doc([{ ...ready, queue: 1001 }]), 120, 30).code, 1);
    const lag = judge(doc([{ ...ready, oldestInFlight: 45 }]), 120, 30);
    assert.equal(lag.code, 1);
    assert.match(lag.line, /^LVALERTMP WARNING - child gstlal watcher journal lag 45\.0 s/);
  });
  await t.step("WARNING: the session down for a short while; CRITICAL past the threshold", () => {
    const now = 10_000;
    assert.equal(
      judge(doc([ready], { ...online, online: false, offline_since: now - 30 }), 120, 30, now).code,
      1,
    );
    const long = judge(
      doc([ready], { ...online, online: false, offline_since: now - 300 }),
      120,
      30,
      now,
    );
    assert.equal(long.code, 2);
    assert.match(long.line, /xmpp down 300 s/);
  });
  await t.step("CRITICAL: a child given up or dead", () => {
    const v = judge(doc([ready, { ...ready, child: "fragile", state: "given_up" }]), 120, 30);
    assert.equal(v.code, 2);
    assert.match(v.line, /^LVALERTMP CRITICAL - child fragile given up/);
    assert.equal(judge(doc([{ ...ready, state: "dead" }]), 120, 30).code, 2);
  });
  await t.step("CRITICAL: a configured node not subscribed, or an extra one", () => {
    const missing = judge(doc([ready], { ...online, subscribed: ["a"] }), 120, 30);
    assert.equal(missing.code, 2);
    assert.match(missing.line, /not subscribed to b/);
    const extra = judge(doc([ready], { ...online, extra: ["zzz"] }), 120, 30);
    assert.match(extra.line, /CRITICAL - subscribed to unconfigured zzz/);
  });
});
