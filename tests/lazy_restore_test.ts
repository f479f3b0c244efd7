import assert from "node:assert/strict";
import { join } from "node:path";
import { ChildRuntime } from "../lib/child/runtime.ts";
import { ChildState } from "../lib/child/state.ts";
import { Ini, parseIni } from "../lib/config/ini.ts";
import { Logger, type LogRecord } from "../lib/core/log.ts";
import {
  ClassRegistry,
  parseSnapshot,
  readSnapshot,
  restoreItems,
  SnapshotError,
  snapshotText,
} from "../lib/durability/snapshot.ts";
import { FakeClock } from "../lib/queue/clock.ts";
import type { QueueItem } from "../lib/queue/queue_item.ts";
import { SortedQueue } from "../lib/queue/sorted_queue.ts";
import * as testHandler from "../workers/handlers/test.ts";
import { tempDir, waitFor } from "./helpers.ts";
import { advanceAtFix, registry, resealSnapshot } from "./snapshot_helpers.ts";

const now = () => Date.now() / 1000;

/** A small deterministic random source (xorshift). */
function random(seed: number): () => number {
  let x = seed;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 2 ** 32;
  };
}

/** An item due `due` seconds after `t0`, with a second task an hour on. */
function item(t0: number, due: number, graceid: string): testHandler.TestItem {
  const alert = { uid: graceid, alert_type: "new" };
  return new testHandler.TestItem(t0, [
    new testHandler.PrintAlertTask(due, alert),
    new testHandler.PrintAlertTask(3600, alert),
  ], { graceid });
}

/** A snapshot of `count` items G0, G1, ..., all due 60 s after `t0`. */
function sameTimeSnapshot(count: number, t0: number): string {
  return snapshotText(
    "kid",
    3,
    Array.from({ length: count }, (_, i) => item(t0, 60, `G${i}`)),
    [],
    t0,
  );
}

/** What tells items apart: graceid, due times. */
const view = (items: readonly QueueItem[]) =>
  items.map((i) => `${i.graceid}@${i.tasks.map((t) => t.expiration).join(",")}`);

Deno.test("a queue restored lazily gives its items in the same order as one restored at once", async () => {
  const next = random(7);
  const t0 = now();
  // Few distinct due times (ties keep their order) and shared graceids.
  const items = Array.from(
    { length: 1500 },
    (_, i) => item(t0, 60 + Math.floor(next() * 40), `G${Math.floor(next() * 900)}-${i % 3}`),
  );
  await using dir = await tempDir({ "s.json": snapshotText("kid", 3, items, [], t0) });
  const path = join(dir.path, "s.json");
  const eager = new SortedQueue();
  eager.insertAll((await readSnapshot(path, registry())).items);
  const read = await readSnapshot(path, registry(), { lazyFrom: 1000 });
  assert.equal(read.items.length, 0);
  assert.equal(read.dormant?.total, 1500);
  const lazy = new SortedQueue();
  lazy.insertAll(read.items);
  lazy.adopt(read.dormant!);
  assert.equal(lazy.size, 1500);
  // Items inserted after the restore come after restored ones due at the same time.
  for (let i = 0; i < 50; i++) {
    const due = 60 + Math.floor(next() * 40);
    eager.insert(item(t0, due, `N${i}`));
    lazy.insert(item(t0, due, `N${i}`));
  }
  assert.equal(lazy.size, eager.size);
  assert.ok(lazy.dormant(), "still dormant: nothing read the whole queue");
  assert.deepEqual(view(lazy.earliest(5)), view(eager.earliest(5)));
  for (const graceid of ["G17-0", "G400-1", "N3", "nobody"]) {
    assert.deepEqual(view(lazy.byGraceId(graceid)), view(eager.byGraceId(graceid)), graceid);
  }
  // Woken a few pieces at most, not all: the rest stay text.
  assert.ok(lazy.dormant()!.count > 500, `${lazy.dormant()!.count} still dormant`);
  const popped: QueueItem[] = [];
  const expected: QueueItem[] = [];
  for (let item = lazy.pop(); item; item = lazy.pop()) popped.push(item);
  for (let item = eager.pop(); item; item = eager.pop()) expected.push(item);
  assert.equal(popped.length, 1550);
  assert.deepEqual(view(popped), view(expected));
  assert.equal(lazy.dormant(), undefined);
  assert.equal(lazy.size, 0);
});

Deno.test("a queue restored lazily reports its earliest time without waking, and wakes in idle turns", async () => {
  const t0 = now();
  const items = Array.from({ length: 600 }, (_, i) => item(t0, 100 + ((i * 37) % 600), `G${i}`));
  await using dir = await tempDir({ "s.json": snapshotText("kid", 3, items, [], t0) });
  const read = await readSnapshot(join(dir.path, "s.json"), registry(), { lazyFrom: 1 });
  const queue = new SortedQueue();
  queue.adopt(read.dormant!);
  assert.equal(queue.nextExpiration(), t0 + 100);
  assert.equal(queue.dormant()?.count, 600, "nothing woken to tell the time");
  let left = queue.size;
  for (let turns = 0; left > 0; turns++) {
    assert.ok(turns < 10, "a turn wakes a piece");
    left = queue.wakeSome();
  }
  assert.equal(queue.dormant(), undefined);
  const order = items.map((it, j) => [it.tasks[0]!.expiration, j] as const)
    .sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  assert.deepEqual(queue.items().map((i) => i.graceid), order.map(([, j]) => `G${j}`));
});

Deno.test("a dormant item that no longer reads is reported and left out; the rest restore", async () => {
  const t0 = now();
  // A row naming a shape the table lacks, in a body whose checksum still holds.
  const text = resealSnapshot(sameTimeSnapshot(300, t0), (body) => {
    const rows = JSON.parse(body[2]!);
    rows[5][0] = 99;
    body[2] = JSON.stringify(rows);
    return body;
  });
  await using dir = await tempDir({ "s.json": text });
  const path = join(dir.path, "s.json");
  // Eagerly, the snapshot is refused whole, as ever.
  await assert.rejects(readSnapshot(path, registry()), SnapshotError);
  const reports: string[] = [];
  const read = await readSnapshot(path, registry(), {
    lazyFrom: 1,
    report: (message) => reports.push(message),
  });
  const queue = new SortedQueue();
  queue.adopt(read.dormant!);
  assert.equal(queue.items().length, 299);
  assert.equal(reports.length, 1);
  assert.match(
    reports[0]!,
    /s\.json: item row 5 \(.*does not match its shape\) could not be restored/,
  );
  assert.ok(!queue.byGraceId("G5").length);
});

Deno.test("a snapshot restored lazily still names a class the handler lost, at once", async () => {
  const t0 = now();
  await using dir = await tempDir({ "s.json": sameTimeSnapshot(200, t0) });
  const error = await readSnapshot(join(dir.path, "s.json"), new ClassRegistry(), { lazyFrom: 1 })
    .then(() => undefined, (e) => e);
  assert.ok(error instanceof SnapshotError);
  assert.equal(error.className, "TestItem");
});

/** A real runtime and its ChildState over a folder, restoring lazily from `lazyFrom` items. */
function child(dir: string, lazyFrom: number, clock?: FakeClock) {
  const records: LogRecord[] = [];
  const log = new Logger({ child: "kid", format: "json", sinks: [(_l, r) => records.push(r)] });
  const runtime = new ChildRuntime({
    child: "kid",
    handler: testHandler,
    config: new Ini(parseIni("[general]\nprocess_type = test\n[test]\ndelays = 1 2\n", "c.ini")),
    log,
    handlerExports: testHandler,
    logDirectory: dir,
    notify: () => {},
    publish: () => {},
    onChange: () => state.changed(),
    ...(clock ? { clock } : {}),
  });
  const state = new ChildState({
    dir,
    child: "kid",
    runtime,
    log,
    every: 1,
    interval: 0.05,
    lazyFrom,
    onCheckpoint() {},
  });
  return { runtime, state, events: (name: string) => records.filter((r) => r.event === name) };
}

Deno.test("a child restored lazily runs due items on time, and its snapshots hold each item once", async () => {
  await using dir = await tempDir({ "snapshots/.keep": "" });
  const count = 20_000;
  const soon = 4000;
  const t0 = now();
  {
    const first = child(dir.path, Infinity);
    await first.state.recover();
    // The first `soon` come due over the 0.3 s after the restart below; the rest in an hour.
    await first.runtime.exclusive(() => {
      for (let i = 0; i < count; i++) {
        first.runtime.queue.insert(item(t0, i < soon ? 3 + (i % 300) / 1000 : 3600, `S${i}`));
      }
    });
    await first.state.close();
    await first.runtime.stop();
  }
  const c = child(dir.path, 1000);
  // Restarted just before the first comes due.
  await new Promise((r) => setTimeout(r, Math.max(0, (t0 + 2.9 - now()) * 1000)));
  const recovery = await c.state.recover();
  const recovered = now();
  assert.equal(recovery.restored, count);
  assert.ok(c.runtime.queue.dormant(), "restored lazily");
  assert.equal(c.runtime.queue.size, count);
  // A change, then a snapshot while pieces are still dormant and tasks come due.
  await c.runtime.insert(item(now(), 3600, "new"));
  await c.state.checkpoint();
  const during = await Deno.readTextFile(join(dir.path, "snapshots", "snapshot.json"));
  await waitFor(() => c.events("task_executed").length >= soon, "the due tasks ran");
  await waitFor(() => c.runtime.queue.dormant() === undefined, "every item woken in idle turns");
  assert.equal(c.runtime.queue.size, count + 1);
  // Those due after the recovery ran on time, not after the rest woke (~1 s).
  const timed = c.events("task_executed").filter((e) => (e.due as number) > recovered);
  assert.ok(timed.length > 0, "tasks came due after the recovery");
  const late = timed.filter((e) => (e.lateness_ms as number) > 500);
  assert.deepEqual(late, [], "none waited for the rest to wake");
  await c.state.close();
  await c.runtime.stop();
  const after = await Deno.readTextFile(join(dir.path, "snapshots", "snapshot.json"));
  for (const [name, text] of [["during", during], ["after", after]] as const) {
    const items = restoreItems(parseSnapshot(text, name), registry(), name);
    const ids = items.map((i) => i.graceid!);
    assert.equal(new Set(ids).size, ids.length, `${name}: each item once`);
    // Every item not due soon, and the new one, is there; a due one at most as it was.
    const kept = new Set(ids);
    for (let i = soon; i < count; i++) assert.ok(kept.has(`S${i}`), `${name}: S${i}`);
    assert.ok(kept.has("new"), `${name}: the item inserted after the restart`);
    assert.ok(items.every((i) => i.tasks.length === 2 || i.tasks.length === 1));
  }
  // Each due item ran its first task once; the rest still have both.
  const final = restoreItems(parseSnapshot(after, "after"), registry(), "after");
  assert.equal(final.length, count + 1);
  for (const i of final) {
    const n = i.graceid === "new" ? count : Number(i.graceid!.slice(1));
    assert.equal(i.tasks.length, n < soon ? 1 : 2, i.graceid);
  }
});

Deno.test("items woken and run while a snapshot is written are in it once, as they were", async () => {
  await using dir = await tempDir({ "snapshots/.keep": "" });
  const t = now();
  const count = 20_000;
  const items = Array.from({ length: count }, (_, i) => item(t, 10, `S${i}`));
  await Deno.writeTextFile(
    join(dir.path, "snapshots", "snapshot.json"),
    snapshotText("kid", 0, items, [], t),
  );
  const clock = new FakeClock(t);
  const c = child(dir.path, 1000, clock);
  await c.state.recover();
  assert.equal(c.runtime.queue.dormant()?.count, count);
  // Once the snapshot has fixed its state, every item comes due.
  const advanced = advanceAtFix(c.runtime, clock, 11);
  c.state.changed();
  await c.state.checkpoint();
  const ran = c.events("task_executed").length;
  const text = await Deno.readTextFile(join(dir.path, "snapshots", "snapshot.json"));
  await advanced();
  await c.state.close();
  await c.runtime.stop();
  assert.ok(ran > 0, "items ran while the snapshot was written");
  const saved = restoreItems(parseSnapshot(text, "s"), registry(), "s");
  const ids = saved.map((i) => i.graceid!);
  assert.equal(new Set(ids).size, ids.length, "each item once");
  assert.equal(saved.length, count, "every item (each still has its hour task)");
  // Saved as at the start: before its first task ran.
  assert.ok(saved.every((i) => i.tasks.length === 2));
});

Deno.test("an index line whose time is not finite is refused with the snapshot, eagerly and lazily", async () => {
  const t0 = now();
  // 1e999 parses as Infinity: a piece no time would wake. The checksum still holds.
  const text = resealSnapshot(sameTimeSnapshot(200, t0), (body) => {
    body[3] = body[3]!.replace(/^\[(\d+),[^,]+,/, "[$1,1e999,");
    return body;
  });
  await using dir = await tempDir({ "s.json": text });
  const path = join(dir.path, "s.json");
  for (const lazyFrom of [Infinity, 1]) {
    await assert.rejects(readSnapshot(path, registry(), { lazyFrom }), /malformed index line/);
  }
});

Deno.test("items whose graceid is not a string are indexed as the queue indexes them", async () => {
  const t0 = now();
  // A handler in JavaScript may use numbers or null.
  const odd = [item(t0, 60, "G1"), item(t0, 61, "x"), item(t0, 62, "y")];
  (odd[1] as { graceid: unknown }).graceid = 7;
  (odd[2] as { graceid: unknown }).graceid = null;
  await using dir = await tempDir({ "s.json": snapshotText("kid", 3, odd, [], t0) });
  const path = join(dir.path, "s.json");
  assert.equal((await readSnapshot(path, registry())).items.length, 3);
  const read = await readSnapshot(path, registry(), { lazyFrom: 1 });
  const queue = new SortedQueue();
  queue.adopt(read.dormant!);
  assert.deepEqual(queue.byGraceId(7 as unknown as string).map((i) => i.graceid), [7]);
  assert.equal(queue.items().length, 3);
});
