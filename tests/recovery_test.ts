import assert from "node:assert/strict";
import { join } from "node:path";
import { ChildRuntime } from "../lib/child/runtime.ts";
import { ChildState, sliceRoom, startDelay, wakeMore } from "../lib/child/state.ts";
import { Ini, parseIni } from "../lib/config/ini.ts";
import { encodeRecord as encodeBytes, type JournalRecord } from "../lib/durability/journal.ts";
import { Logger, type LogRecord } from "../lib/core/log.ts";
import {
  parseSnapshot,
  readSnapshot,
  restoreItems,
  SnapshotError,
  snapshotText,
} from "../lib/durability/snapshot.ts";
import { FakeClock } from "../lib/queue/clock.ts";
import { type ChildContext, type QueueItem, Task } from "../lib/queue/queue_item.ts";
import * as testHandler from "../workers/handlers/test.ts";
import { tempDir, waitFor } from "./helpers.ts";
import { advanceAtFix, registry, resealSnapshot } from "./snapshot_helpers.ts";

/** A record as journal text. */
const encodeRecord = (r: JournalRecord) => new TextDecoder().decode(encodeBytes(r));
const HEADER = '{"format":"lvalertMP-journal","version":1,"base":0}\n';
const now = () => Date.now() / 1000;

/** A real runtime and its ChildState over a folder. */
function child(
  dir: string,
  ini = "[general]\nprocess_type = test\n[test]\ndelays = 1 2\nrepeats = 0\n",
  clock?: FakeClock,
) {
  const records: LogRecord[] = [];
  const log = new Logger({ child: "kid", format: "json", sinks: [(_l, r) => records.push(r)] });
  const runtime = new ChildRuntime({
    child: "kid",
    handler: testHandler,
    config: new Ini(parseIni(ini, "c.ini")),
    log,
    handlerExports: testHandler,
    logDirectory: dir,
    notify: () => {},
    publish: () => {},
    onChange: () => state.changed(),
    ...(clock ? { clock } : {}),
  });
  const checkpoints: [number, number][] = [];
  const state = new ChildState({
    dir,
    child: "kid",
    runtime,
    log,
    every: 1,
    interval: 0.05,
    onCheckpoint: (seq, previous) => checkpoints.push([seq, previous]),
  });
  return {
    runtime,
    state,
    records,
    checkpoints,
    events: (name: string) => records.filter((r) => r.event === name),
  };
}

function alertRecord(seq: number, t0: number, uid = `G${seq}`): JournalRecord {
  return { seq, node: "n", id: `i${seq}`, t0, alert: { uid, alert_type: "new" } };
}

Deno.test("snapshots round-trip handler items and tasks through JSON", () => {
  const t0 = 5000;
  const alert = { uid: "G1", alert_type: "new" };
  const item = new testHandler.TestItem(t0, [
    new testHandler.PrintAlertTask(5, alert),
    new testHandler.RepeatTask(3, 2),
  ], {
    graceid: "G1",
  });
  const data = parseSnapshot(
    snapshotText("kid", 7, [item], [["n", "i1"]], 1),
    "s.json",
  );
  const [back] = restoreItems(data, registry(), "s.json");
  assert.ok(back instanceof testHandler.TestItem);
  assert.equal(back.graceid, "G1");
  assert.equal(back.complete, false);
  assert.deepEqual(back.tasks.map((t) => [t.constructor.name, t.name, t.expiration]), [
    ["RepeatTask", "repeat", 5002],
    ["PrintAlertTask", "print@5s", 5005],
  ]);
  assert.equal((back.tasks[1] as testHandler.PrintAlertTask).summary, "new / event");
  assert.deepEqual(data.applied, [["n", "i1"]]);
});

Deno.test("a snapshot naming a class the handler does not export fails with the class and the file", () => {
  const data = parseSnapshot(
    JSON.stringify({
      format: "lvalertMP-snapshot",
      version: 1,
      child: "kid",
      seq: 1,
      taken: 1,
      applied: [],
      items: [{ class: "GoneItem", fields: { t0: 1 }, tasks: [] }],
    }),
    "/state/snapshot.json",
  );
  assert.throws(() => restoreItems(data, registry(), "/state/snapshot.json"), (e: unknown) => {
    assert.ok(e instanceof SnapshotError);
    assert.equal(e.className, "GoneItem");
    assert.match(
      e.message,
      /^\/state\/snapshot\.json: unknown class "GoneItem": the handler must export it/,
    );
    return true;
  });
  assert.throws(
    () => parseSnapshot('{"format":"lvalertMP-snapshot","version":9}', "s"),
    /snapshot version 9/,
  );
  assert.throws(() => parseSnapshot("{oops", "s"), /^Error|s: not JSON/);
});

Deno.test("ChildState recovers: snapshot, then the journal after it, with overdue tasks run at once", async () => {
  await using dir = await tempDir({ "snapshots/.keep": "" });
  const t0 = now() - 10;
  // The snapshot covers seq 1; the journal holds 1..3, as after a crash.
  const snapshotted = new testHandler.TestItem(t0, [
    new testHandler.PrintAlertTask(30, { uid: "G1", alert_type: "new" }),
  ], {
    graceid: "G1",
  });
  await Deno.writeTextFile(
    join(dir.path, "snapshots", "snapshot.json"),
    snapshotText("kid", 1, [snapshotted], [["n", "i1"]], now()),
  );
  await Deno.writeTextFile(
    join(dir.path, "journal.log"),
    HEADER +
      [alertRecord(1, t0), alertRecord(2, t0), alertRecord(3, now() + 100)].map(encodeRecord).join(
        "",
      ),
  );
  const c = child(dir.path);
  const recovery = await c.state.recover();
  assert.deepEqual(recovery, {
    snapshotSeq: 1,
    previousSeq: 0,
    replayedTo: 3,
    restored: 1,
    replayed: 2,
    problems: [],
  });
  // Overdue timers fire on the next turn of the event loop.
  await waitFor(() => c.events("task_executed").length >= 2, "the overdue tasks");
  await c.runtime.settled();
  const ran = c.events("task_executed").map((e) => [e.graceid, e.task]);
  assert.deepEqual(
    ran,
    [["G2", "print@1s"], ["G2", "print@2s"]],
    "G2's overdue tasks ran at once; G1's are not due yet",
  );
  assert.ok(
    c.events("task_executed").every((e) => (e.lateness_ms as number) > 7000),
    "with their lateness",
  );
  assert.deepEqual(c.runtime.queue.graceIds().sort(), ["G1", "G3"]);
  assert.equal(c.events("alert").filter((e) => e.recovered === true).length, 2);
  await c.state.close();
  await c.runtime.stop();
  const snapshot = parseSnapshot(
    await Deno.readTextFile(join(dir.path, "snapshots", "snapshot.json")),
    "s",
  );
  assert.equal(snapshot.seq, 3);
  assert.equal(
    (await Deno.stat(join(dir.path, "snapshots", "snapshot.json"))).mode! & 0o777,
    0o600,
  );
  assert.deepEqual(
    c.checkpoints[0],
    [3, 1],
    "reports the snapshot before, which the journal must keep",
  );
});

Deno.test("ChildState falls back to the previous snapshot when the newest is damaged", async () => {
  await using dir = await tempDir({ "snapshots/.keep": "" });
  const t0 = now() + 100;
  const old = new testHandler.TestItem(t0, [
    new testHandler.PrintAlertTask(1, { uid: "G1", alert_type: "new" }),
  ], { graceid: "G1" });
  await Deno.writeTextFile(
    join(dir.path, "snapshots", "snapshot.prev.json"),
    snapshotText("kid", 1, [old], [], now()),
  );
  await Deno.writeTextFile(
    join(dir.path, "snapshots", "snapshot.json"),
    '{"format":"lvalertMP-snapshot","vers',
  );
  await Deno.writeTextFile(
    join(dir.path, "journal.log"),
    HEADER + [alertRecord(2, t0)].map(encodeRecord).join(""),
  );
  const c = child(dir.path);
  const recovery = await c.state.recover();
  assert.deepEqual([recovery.snapshotSeq, recovery.restored, recovery.replayed], [1, 1, 1]);
  assert.deepEqual(c.runtime.queue.graceIds().sort(), ["G1", "G2"]);
  const [corrupt] = c.events("snapshot_corrupt");
  assert.match(String(corrupt?.error), /snapshot\.json: not JSON/);
  const names = [];
  for await (const e of Deno.readDir(join(dir.path, "snapshots"))) names.push(e.name);
  assert.ok(
    names.some((n) => n.startsWith("snapshot.json.corrupt-")),
    "the damaged file is kept aside",
  );
  await c.state.close();
  await c.runtime.stop();
});

Deno.test("ChildState refuses an alert id it already applied", async () => {
  await using dir = await tempDir();
  const c = child(dir.path);
  await c.state.recover();
  assert.deepEqual(
    await c.runtime.deliver({ uid: "G1", alert_type: "new" }, now(), { node: "n", id: "x" }),
    { ok: true },
  );
  const again = await c.runtime.deliver({ uid: "G1", alert_type: "new" }, now(), {
    node: "n",
    id: "x",
  });
  assert.equal(again.ok, false);
  await c.state.close();
  await c.runtime.stop();
});

Deno.test("a child whose queue waits without changing writes one snapshot, not one per interval", async () => {
  await using dir = await tempDir();
  const c = child(dir.path, "[general]\nprocess_type = test\n[test]\ndelays = 600\nrepeats = 0\n");
  await c.state.recover();
  await c.runtime.deliver({ uid: "G1", alert_type: "new" }, now(), { node: "n", id: "x", seq: 1 });
  await waitFor(() => c.events("checkpoint").length === 1, "the checkpoint of the alert");
  // Reading the queue for a snapshot is not a change: ten intervals pass with no new one.
  await new Promise((r) => setTimeout(r, 500));
  assert.equal(c.events("checkpoint").length, 1);
  await c.state.close();
  await c.runtime.stop();
  assert.equal(c.events("checkpoint").length, 1, "nor at close");
});

Deno.test("a snapshot taken while tasks run holds every pending item once, none lost or doubled", async () => {
  await using dir = await tempDir({ "snapshots/.keep": "" });
  const c = child(dir.path);
  await c.state.recover();
  const t0 = now();
  const count = 20_000;
  // Each item's first task comes due within the snapshot's slices; the second an hour on.
  await c.runtime.exclusive(() => {
    for (let i = 0; i < count; i++) {
      const alert = { uid: `S${i}`, alert_type: "new" };
      c.runtime.queue.insert(
        new testHandler.TestItem(t0, [
          new testHandler.PrintAlertTask(0.02 + (i % 400) / 1000, alert),
          new testHandler.PrintAlertTask(3600, alert),
        ], { graceid: alert.uid }),
      );
    }
  });
  await c.state.checkpoint();
  const ranBy = c.events("task_executed").length;
  // Read before the next checkpoint (tasks ran: one follows soon) can replace it.
  const text = await Deno.readTextFile(join(dir.path, "snapshots", "snapshot.json"));
  assert.ok(ranBy > 0, "tasks ran while the snapshot was written");
  // Closed, so no checkpoint is still writing when the test ends.
  await c.state.close();
  await c.runtime.stop();
  const snapshot = parseSnapshot(text, "s");
  const items = restoreItems(snapshot, registry(), "s");
  const ids = items.map((i) => i.graceid);
  assert.equal(items.length, count, "every pending item");
  assert.equal(new Set(ids).size, count, "each once");
  // An item is saved as it was before a task of it ran, or after: one or two tasks left.
  assert.ok(items.every((i) => i.tasks.length === 1 || i.tasks.length === 2));
});

Deno.test("an alert that comes while a snapshot waits for its turn waits for the snapshot, and is not in it", async () => {
  await using dir = await tempDir({ "snapshots/.keep": "" });
  const c = child(dir.path);
  await c.state.recover();
  const t0 = now();
  await c.runtime.deliver({ uid: "G1", alert_type: "new" }, t0, { node: "n", id: "1", seq: 1 });
  await c.state.checkpoint();
  // The line is busy (its work waits on `release`) when the snapshot asks for its turn.
  const release = Promise.withResolvers<void>();
  const busy = c.runtime.exclusive(() => release.promise);
  c.state.changed();
  const writing = c.state.checkpoint();
  // Time for it to open its file and take its place in line.
  await new Promise((r) => setTimeout(r, 100));
  const second = c.runtime.deliver({ uid: "G2", alert_type: "new" }, t0, {
    node: "n",
    id: "2",
    seq: 2,
  });
  // It waits (and the snapshot, seeing it, breaks its slices for the shortest time).
  await new Promise((r) => setTimeout(r, 10));
  assert.equal(c.runtime.alertsWaiting, true);
  release.resolve();
  await busy;
  await writing;
  const text = await Deno.readTextFile(join(dir.path, "snapshots", "snapshot.json"));
  await second;
  assert.equal(c.runtime.alertsWaiting, false);
  await c.state.close();
  await c.runtime.stop();
  const snapshot = parseSnapshot(text, "s");
  // Taken after G1 and before G2: G2's item would come back twice after a restart
  // (once from the snapshot, once from the journal after position 1).
  assert.equal(snapshot.seq, 1);
  assert.deepEqual(restoreItems(snapshot, registry(), "s").map((i) => i.graceid), ["G1"]);
});

/** A task that puts a new item in the queue when it runs: `made-<graceid>`. */
class SpawnTask extends Task {
  execute(ctx: ChildContext, item: QueueItem): void {
    const uid = `made-${item.graceid}`;
    ctx.queue.insert(
      new testHandler.TestItem(ctx.now(), [
        new testHandler.PrintAlertTask(3600, { uid, alert_type: "new" }),
      ], {
        graceid: uid,
      }),
    );
  }
}

Deno.test("items a task makes while a snapshot is written are not in it, since the task, saved before it ran, runs again", async () => {
  await using dir = await tempDir({ "snapshots/.keep": "" });
  const t0 = now();
  const clock = new FakeClock(t0);
  const c = child(dir.path, undefined, clock);
  await c.state.recover();
  const count = 5000;
  await c.runtime.exclusive(() => {
    for (let i = 0; i < count; i++) {
      const alert = { uid: `S${i}`, alert_type: "new" };
      c.runtime.queue.insert(
        new testHandler.TestItem(t0, [
          new SpawnTask(10, "spawn"),
          new testHandler.PrintAlertTask(3600, alert),
        ], { graceid: alert.uid }),
      );
    }
  });
  // Once the snapshot has fixed its state, every spawn comes due.
  const advanced = advanceAtFix(c.runtime, clock, 11);
  c.state.changed();
  await c.state.checkpoint();
  const text = await Deno.readTextFile(join(dir.path, "snapshots", "snapshot.json"));
  await advanced();
  const ran = c.events("task_executed").length;
  await c.state.close();
  await c.runtime.stop();
  assert.ok(ran > 0, "spawns ran while the snapshot was written");
  const r = registry();
  r.registerModule({ SpawnTask });
  const items = restoreItems(parseSnapshot(text, "s"), r, "s");
  // Every item is in it as before its spawn ran (after a restart the spawn runs
  // again and makes its item then, once), and what the spawns made is not.
  assert.equal(items.length, count);
  assert.ok(items.every((i) => i.tasks[0] instanceof SpawnTask));
  assert.deepEqual(items.filter((i) => i.graceid!.startsWith("made-")).map((i) => i.graceid), []);
});

/** Test-handler items, one task each, graceids G0, G1, ... */
function pendingItems(count: number, t0: number): testHandler.TestItem[] {
  return Array.from({ length: count }, (_, i) => {
    const alert = { uid: `G${i}`, alert_type: "new" };
    return new testHandler.TestItem(t0, [new testHandler.PrintAlertTask(60 + i, alert)], {
      graceid: alert.uid,
    });
  });
}

/**
 * A version-4 snapshot's text as an older version wrote it, with its own
 * length and checksum: version 3 without the index lines, version 2 also
 * one row a line.
 */
function olderSnapshot(current: string, version: 2 | 3): string {
  return resealSnapshot(current, ([appliedLine, ...lines]) => {
    const pieces = lines.filter((l) => l !== "").filter((_, i) => i % 2 === 1);
    const rows = version === 2
      ? pieces.flatMap((l) => JSON.parse(l)).map((r) => JSON.stringify(r))
      : pieces;
    return [appliedLine!, ...rows, ""];
  }, { version });
}

for (const version of [2, 3] as const) {
  Deno.test(`a version-${version} snapshot is still read, eagerly whatever its size`, async () => {
    const items = pendingItems(300, now());
    const text = olderSnapshot(snapshotText("kid", 4, items, [["n", "i1"]], 1), version);
    const expected = items.map((i) => [i.graceid, i.tasks[0]!.expiration]);
    const parsed = restoreItems(parseSnapshot(text, "s"), registry(), "s");
    assert.deepEqual(parsed.map((i) => [i.graceid, i.tasks[0]!.expiration]), expected);
    await using dir = await tempDir({ "s.json": text });
    const read = await readSnapshot(join(dir.path, "s.json"), registry(), { lazyFrom: 1 });
    assert.equal(read.dormant, undefined);
    assert.deepEqual(read.items.map((i) => [i.graceid, i.tasks[0]!.expiration]), expected);
    assert.deepEqual([read.seq, read.applied], [4, [["n", "i1"]]]);
  });
}

Deno.test("a snapshot of many lines, read a megabyte at a time, comes back whole and in order", async () => {
  const items = pendingItems(20_000, now());
  const applied: [string, string][] = [["n", "i1"], ["n", "i2"]];
  const text = snapshotText("kid", 9, items, applied, 1);
  assert.ok(text.length > 2 ** 21, "more than one read");
  await using dir = await tempDir({ "s.json": text });
  const read = await readSnapshot(join(dir.path, "s.json"), registry());
  assert.equal(read.items.length, items.length);
  assert.ok(read.items.every((item, i) => item.graceid === `G${i}` && item.tasks.length === 1));
  assert.ok(read.items[7] instanceof testHandler.TestItem);
  assert.deepEqual([read.seq, read.applied], [9, applied]);
});

Deno.test("a damaged snapshot body is a checksum mismatch, also where a line no longer parses", async () => {
  const text = snapshotText("kid", 1, pendingItems(300, now()), [], 1);
  await using dir = await tempDir({
    "broken.json": text.replace('"G20"', '"G20'),
    "changed.json": text.replace('"G20"', '"G21"'),
    "short.json": text.slice(0, -200),
  });
  for (const name of ["broken.json", "changed.json", "short.json"]) {
    await assert.rejects(
      readSnapshot(join(dir.path, name), registry()),
      (e: unknown) => e instanceof SnapshotError && /checksum|bytes/.test(e.message),
      name,
    );
  }
});

Deno.test("a snapshot's slice ends short of the next task's due time, and is the least when it is near", () => {
  const now = 1_000_000;
  assert.equal(sliceRoom(undefined, now), 1, "nothing pending: a whole slice");
  assert.equal(sliceRoom(now + 10, now), 1, "due in 10 s: a whole slice");
  const short = sliceRoom(now + 0.0008, now);
  assert.ok(Math.abs(short - 0.5) < 1e-6, `due in 0.8 ms: 0.5 ms (${short})`);
  assert.equal(sliceRoom(now + 0.0002, now), 0, "due in 0.2 ms: the least slice");
  assert.equal(sliceRoom(now - 0.001, now), 0, "1 ms overdue: its timer is about to run it");
  assert.equal(sliceRoom(now - 0.01, now), 1, "10 ms overdue: held up elsewhere, go on");
});

Deno.test("a snapshot fixes its items in a gap between due tasks", () => {
  const now = 1_000_000;
  const close = (a: number, b: number) => Math.abs(a - b) < 1e-6;
  assert.equal(startDelay(undefined, now, 3), 0, "nothing pending: at once");
  assert.equal(startDelay(now + 0.005, now, 3), 0, "due in 5 ms, fixing takes 3: at once");
  const wait = startDelay(now + 0.002, now, 3);
  assert.ok(close(wait, 2.3), `due in 2 ms: after it (${wait})`);
  assert.ok(close(startDelay(now - 0.001, now, 3), 0.3), "1 ms overdue: its timer runs it first");
  assert.equal(startDelay(now - 0.01, now, 3), 0, "10 ms overdue: held up elsewhere, go on");
  assert.equal(startDelay(now + 0.001, now, 0), 0, "fixing took no time: at once");
});

Deno.test("an idle turn wakes dormant pieces short of the next task, one at least however slow", () => {
  const now = 1_000_000;
  // Nothing due: one piece always, even one slower than a slice; more only within the slice.
  assert.equal(wakeMore(undefined, now, 0, 0, 5), true);
  assert.equal(wakeMore(undefined, now, 0.5, 1, 5), true);
  assert.equal(wakeMore(undefined, now, 1, 1, 0.2), false);
  // A task due in 10 ms: a 5 ms piece fits, not after 5 ms spent.
  assert.equal(wakeMore(now + 0.01, now, 0, 0, 5), true);
  assert.equal(wakeMore(now + 0.01, now, 5, 0, 5), false);
  // Due in 1 ms: a 0.5 ms piece fits (0.3 ms to spare), a 0.8 ms one waits for it.
  assert.equal(wakeMore(now + 0.001, now, 0, 0, 0.5), true);
  assert.equal(wakeMore(now + 0.001, now, 0, 0, 0.8), false);
  // A task held up elsewhere does not stop the waking.
  assert.equal(wakeMore(now - 0.01, now, 0, 0, 0.8), true);
});
