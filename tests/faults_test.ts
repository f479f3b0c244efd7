/**
 * An operator's bad day, end to end: a paced stream whose last alert must
 * not get stuck, journals deleted, emptied or damaged, snapshots damaged,
 * a full disk, a signal in the middle of a fast replay, and the same
 * replay run again through one state folder. Real listener processes,
 * real files (a real tmpfs for the full disk).
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { childDirName } from "../lib/listener/child_link.ts";
import {
  fillDisk,
  ListenerProcess,
  mountTmpfs,
  runListener,
  tempDir,
  unmountTmpfs,
  waitFor,
} from "./helpers.ts";

const LISTENER = "[a]\nnodes = n\nchildConfig = c.ini\n";
const QUICK = "[general]\nprocess_type = test\n[test]\ndelays = 0\nrepeats = 0\n";
const PENDING = "[general]\nprocess_type = test\n[test]\ndelays = 3600\nrepeats = 0\n";

/** A replay file of `count` alerts with ids `<prefix><i>`, `step` seconds apart. */
function stream(prefix: string, count: number, step = 0): string {
  return Array.from({ length: count }, (_, i) =>
    JSON.stringify({
      node: "n",
      t: i * step,
      id: `${prefix}${i}`,
      payload: { uid: `G${prefix}${i}`, alert_type: "new" },
    })).join("\n") + "\n";
}

function summary(events: Record<string, unknown>[]): Record<string, unknown> {
  const found = events.filter((e) => e.event === "summary");
  assert.equal(found.length, 1, "one summary");
  return found[0]!;
}

async function status(state: string): Promise<Record<string, unknown>> {
  const out = await runListener(["ctl", "--state-dir", state, "--status"]);
  assert.equal(out.code, 0, out.stderr);
  return JSON.parse(out.stdout);
}

async function nagios(state: string): Promise<{ code: number; stdout: string }> {
  const out = await runListener(["status", "--state-dir", state]);
  return { code: out.code, stdout: out.stdout };
}

Deno.test("the last alert of a paced burst is applied and --exit-when-idle finishes", async () => {
  await using dir = await tempDir({
    "l.ini": LISTENER,
    "c.ini": QUICK,
    "r.jsonl": stream("p", 2000, 0.0005),
  });
  const run = await runListener([
    ...["-c", join(dir.path, "l.ini"), "--replay", join(dir.path, "r.jsonl")],
    ...["--speed", "1", "--exit-when-idle", "--log-format", "json"],
  ], { timeout: 120 });
  assert.equal(run.code, 0, run.stderr);
  const s = summary(run.events);
  assert.deepEqual([s.routed, s.applied], [2000, 2000]);
});

/** Starts a listener on a replay and waits until it has applied `n` alerts. */
async function applyThenStop(
  dir: string,
  replay: string,
  n: number,
  signal: Deno.Signal,
  extra: string[] = [],
): Promise<ListenerProcess> {
  const listener = new ListenerProcess([
    ...["-c", join(dir, "l.ini"), "--replay", join(dir, replay)],
    ...["--state-dir", join(dir, "s"), "--log-format", "json", ...extra],
  ]);
  await listener.until(
    () => listener.named("alert").filter((e) => e.child === "a").length >= n,
    `${n} alerts applied`,
    60,
  );
  await listener.stop(signal);
  return listener;
}

for (const damage of ["deleted", "emptied"] as const) {
  Deno.test(`${damage === "deleted" ? "a" : "an"} ${damage} journal is reported, numbering continues above the snapshot, nothing is skipped later`, async () => {
    await using dir = await tempDir({
      "l.ini": LISTENER + "checkpoint_every = 100000\ncheckpoint_interval = 3600\n",
      "c.ini": PENDING,
      "r1.jsonl": stream("a", 50),
      "r2.jsonl": stream("b", 50),
      "r3.jsonl": stream("c", 10),
    });
    // A clean stop: a snapshot at seq 50. Then 50 more journaled, killed before any snapshot.
    await applyThenStop(dir.path, "r1.jsonl", 50, "SIGTERM");
    await applyThenStop(dir.path, "r2.jsonl", 50, "SIGKILL");
    const journal = join(dir.path, "s", "children", childDirName("a"), "journal.log");
    if (damage === "deleted") await Deno.remove(journal);
    else await Deno.writeTextFile(journal, "");
    await using third = new ListenerProcess([
      ...["-c", join(dir.path, "l.ini"), "--replay", join(dir.path, "r3.jsonl")],
      ...["--state-dir", join(dir.path, "s"), "--log-format", "json"],
    ]);
    await third.until(() => third.named("alert").filter((e) => e.child === "a").length >= 10, "c");
    const loss = third.named("journal_lost");
    assert.equal(loss.length, 1);
    assert.match(String(loss[0]!.msg), /snapshot covers up to 50/);
    const seqs = third.named("alert").filter((e) => e.child === "a").map((e) => e.seq);
    assert.deepEqual(seqs, Array.from({ length: 10 }, (_, i) => 51 + i));
    const check = await nagios(join(dir.path, "s"));
    assert.equal(check.code, 2);
    assert.match(check.stdout, /may have lost alerts/);
    const ack = await runListener(["ctl", "--state-dir", join(dir.path, "s"), "--acknowledge"]);
    assert.match(ack.stdout, /acknowledged 1 report/);
    assert.equal((await nagios(join(dir.path, "s"))).code, 0);
    assert.equal(await third.stop("SIGTERM"), 0);
    // After another restart the ten new alerts are still there, not skipped as applied.
    await using fourth = new ListenerProcess([
      ...["-c", join(dir.path, "l.ini"), "--replay", join(dir.path, "r3.jsonl")],
      ...["--state-dir", join(dir.path, "s"), "--log-format", "json"],
    ]);
    await fourth.until(() => fourth.named("recovered").length === 1, "recovery");
    assert.equal(fourth.named("recovered")[0]!.queue, 60);
    const children = (await status(join(dir.path, "s"))).children as Record<string, unknown>[];
    assert.equal(children[0]!.queue, 60);
    assert.equal(await fourth.stop("SIGTERM"), 0);
  });
}

Deno.test("a damaged snapshot falls back to the previous one and the journal; never exit 78", async (t) => {
  for (
    const [what, damage] of [
      ["a class name", (text: string) => text.replace('"TestItem"', '"TestItme"')],
      [
        "a number",
        (text: string) =>
          text.replace(
            /("print@3600s",3600,)(\d)/,
            (_m, head, d) => `${head}${(Number(d) + 1) % 10}`,
          ),
      ],
    ] as const
  ) {
    await t.step(what, async () => {
      await using dir = await tempDir({
        "l.ini": LISTENER + "checkpoint_every = 1\ncheckpoint_interval = 0.05\n",
        "c.ini": PENDING,
        "r1.jsonl": stream("a", 5),
        "r2.jsonl": stream("b", 1),
      });
      // Two snapshots (5 items, then 6), so there is a previous one to fall back to.
      await applyThenStop(dir.path, "r1.jsonl", 5, "SIGTERM");
      await applyThenStop(dir.path, "r2.jsonl", 1, "SIGTERM");
      const snapshot = join(
        dir.path,
        "s",
        "children",
        childDirName("a"),
        "snapshots",
        "snapshot.json",
      );
      const text = await Deno.readTextFile(snapshot);
      const damaged = damage(text);
      assert.notEqual(damaged, text, "the damage applies");
      await Deno.writeTextFile(snapshot, damaged);
      await using again = new ListenerProcess([
        ...["-c", join(dir.path, "l.ini"), "--replay", join(dir.path, "r2.jsonl")],
        ...["--state-dir", join(dir.path, "s"), "--log-format", "json"],
      ]);
      await again.until(() => again.named("recovered").length === 1, "recovery");
      assert.equal(again.named("snapshot_corrupt").length, 1);
      assert.equal(again.named("recovered")[0]!.queue, 6, "every item is back");
      assert.equal(await again.stop("SIGTERM"), 0);
    });
  }
});

Deno.test("SIGTERM during a --speed 0 replay stops taking alerts at once", async () => {
  await using dir = await tempDir({
    "l.ini": LISTENER,
    "c.ini": QUICK,
    "r.jsonl": stream("x", 30000),
  });
  await using listener = new ListenerProcess([
    ...["-c", join(dir.path, "l.ini"), "--replay", join(dir.path, "r.jsonl")],
    ...["--speed", "0", "--state-dir", join(dir.path, "s"), "--log-format", "json"],
  ]);
  await listener.until(() => listener.named("alert").length >= 100, "the first alerts", 60);
  listener.signal("SIGTERM");
  await listener.until(() => listener.named("stopping").length === 1, "the stop");
  assert.equal(await listener.exited(), 0);
  const s = summary(listener.events);
  assert.ok((s.routed as number) < 30000, `routed ${s.routed}: it stopped taking alerts`);
  assert.equal(s.applied, s.routed, "what was taken was applied");
  const [stopped] = listener.named("replay_stopped");
  assert.ok(stopped, "the replay says where it stopped");
  assert.equal(stopped.line, s.routed, "the lines read are the alerts routed");
  // The loop looks at the signal before each line.
  assert.equal(stopped.taken_after_stop, 0);
});

Deno.test("the same replay run three times through one state folder applies each alert once", async (t) => {
  // Each alert leaves one item waiting an hour (after one task at once), so the
  // final queue counts the alerts applied: a line lost or applied twice shows.
  const ONE_WAITING = "[general]\nprocess_type = test\n[test]\ndelays = 0 3600\nrepeats = 0\n";
  for (const stop of ["SIGTERM", "SIGKILL"] as const) {
    await t.step(`stopped part way by ${stop}, twice`, async () => {
      await using dir = await tempDir({
        "l.ini": LISTENER,
        "c.ini": ONE_WAITING,
        // Paced (1 ms apart), so a stop after 500 applied comes part way:
        // unpaced, the listener may have taken the whole file by then.
        "r.jsonl": stream("y", 3000, 0.001),
      });
      const state = join(dir.path, "s");
      const fresh: string[] = [];
      let tasks = 0;
      for (let run = 0; run < 3; run++) {
        await using listener = new ListenerProcess([
          ...["-c", join(dir.path, "l.ini"), "--replay", join(dir.path, "r.jsonl")],
          ...["--speed", "1", "--state-dir", state, "--log-format", "json"],
        ]);
        if (run < 2) {
          const applied = () => listener.named("alert").filter((e) => !e.recovered).length;
          await listener.until(() => applied() >= 500, "progress", 60);
        } else {
          await listener.until(() => listener.named("source_done").length === 1, "the end", 60);
          // Every line's alert is in the queue once: 3000 items, each graceid once.
          await waitFor(
            () => (listener.named("alert").at(-1)?.id === "y2999"),
            "the last line applied",
            60,
          );
          // The child logs an alert before its ack (with the queue's size) is
          // posted; its task due at once runs after that ack.
          await waitFor(
            () => listener.named("task_executed").some((e) => e.graceid === "Gy2999"),
            "the last alert's first task",
          );
          const children = (await status(state)).children as Record<string, unknown>[];
          assert.equal(children[0]!.queue, 3000, "each line's alert applied exactly once");
        }
        await listener.stop(run < 2 ? stop : "SIGTERM");
        for (const e of listener.named("alert")) if (!e.recovered) fresh.push(String(e.id));
        tasks += listener.named("task_executed").length;
      }
      // No line's alert is taken from the file twice (after kill -9, one journaled
      // but not yet applied comes back from the journal, marked recovered).
      assert.equal(new Set(fresh).size, fresh.length, "no line's alert taken twice");
      // A clean stop checkpoints, so no task runs twice. (After kill -9 a task
      // run since the last checkpoint may run again, and the log lines the
      // listener had not yet written die with it, so the log cannot count them.)
      if (stop === "SIGTERM") assert.equal(tasks, 3000);
    });
  }
});

Deno.test("a full disk: status CRITICAL, alerts held (bounded), resumed once space is freed", async (t) => {
  // At most 5 held in memory: the replay waits for the child rather than defer.
  await using dir = await tempDir({ "l.ini": LISTENER + "max_held = 5\n", "c.ini": QUICK });
  const mount = join(dir.path, "tmpfs");
  if (!await mountTmpfs(t, mount)) return;
  try {
    const state = join(mount, "s");
    const big = "x".repeat(2000);
    // The burst comes a second in, once the disk is full.
    const lines = Array.from({ length: 300 }, (_, i) =>
      JSON.stringify({
        node: "n",
        t: 1,
        id: `f${i}`,
        payload: { uid: `G${i}`, alert_type: "new", pad: big },
      }));
    await Deno.writeTextFile(join(dir.path, "r.jsonl"), lines.join("\n") + "\n");
    await using listener = new ListenerProcess([
      ...["-c", join(dir.path, "l.ini"), "--replay", join(dir.path, "r.jsonl")],
      ...["--state-dir", state, "--log-format", "json", "--exit-when-idle"],
    ]);
    await listener.until(() => listener.named("listening").length === 1, "start");
    // Fill the disk.
    const filler = join(mount, "filler");
    await fillDisk(filler);
    await listener.until(
      () => listener.named("journal_failed").length >= 1,
      "a failed journal write",
      60,
    );
    const check = await nagios(state);
    assert.equal(check.code, 2, check.stdout);
    assert.match(check.stdout, /journal writes failing/);
    // Free part of it: the held alerts are written in pieces that fit.
    await Deno.truncate(filler, Math.max(0, (await Deno.stat(filler)).size - 1_500_000));
    assert.equal(await listener.exited(), 0, listener.stderr);
    const s = summary(listener.events);
    assert.equal(s.applied, 300);
    assert.equal(s.deferred, 0, "a replay waits, it defers nothing");
    const held = listener.named("journal_failed").map((e) => e.held as number);
    assert.ok(held.every((n) => n <= 5), `held at most 5: ${held}`);
    assert.equal(listener.named("journal_recovered").length >= 1, true);
    const leftovers: string[] = [];
    for await (const e of Deno.readDir(join(state, "children", childDirName("a"), "snapshots"))) {
      if (e.name.includes(".tmp-")) leftovers.push(e.name);
    }
    assert.deepEqual(leftovers, [], "no temp file left behind");
  } finally {
    await unmountTmpfs(mount);
  }
});
