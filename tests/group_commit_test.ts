/**
 * GroupCommit under every interleaving fast-check can find of pushes,
 * writes that succeed or fail, drains and turns of the event loop: every
 * item is committed exactly once, in order, none waits for a writer that
 * stopped, and a drain resolves only once what was pushed before it is
 * committed.
 */

import assert from "node:assert/strict";
import fc from "fast-check";
import { GroupCommit } from "../lib/durability/group_commit.ts";

type Command =
  | { kind: "push"; count: number }
  | { kind: "finish"; ok: boolean }
  | { kind: "drain" }
  | { kind: "microtask" }
  | { kind: "macrotask" };

const command: fc.Arbitrary<Command> = fc.oneof(
  fc.record({ kind: fc.constant("push" as const), count: fc.integer({ min: 1, max: 3 }) }),
  fc.record({ kind: fc.constant("finish" as const), ok: fc.boolean() }),
  fc.constant({ kind: "drain" as const }),
  fc.constant({ kind: "microtask" as const }),
  fc.constant({ kind: "macrotask" as const }),
);

const macrotask = () => new Promise((r) => setTimeout(r, 0));

/** A GroupCommit whose writes finish only when the test says so. */
function harness(maxBatch: number, gatherMs = 0) {
  const writes: { batch: number[]; finish(ok: boolean): void }[] = [];
  const committed: number[] = [];
  const commit = new GroupCommit<number>({
    write: (batch) =>
      new Promise<void>((resolve, reject) => {
        writes.push({
          batch: [...batch],
          finish: (ok) => ok ? resolve() : reject(new Error("disk full")),
        });
      }),
    committed: (batch) => committed.push(...batch),
    failed: () => {},
    retryAfter: 0,
    maxBatch,
    gatherMs,
    gatherFrom: 2,
  });
  return { commit, writes, committed };
}

Deno.test("GroupCommit commits every item once, in order, under any interleaving", async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.array(command, { maxLength: 40 }),
      fc.integer({ min: 1, max: 4 }),
      fc.constantFrom(0, 1),
      async (commands, maxBatch, gatherMs) => {
        const h = harness(maxBatch, gatherMs);
        let next = 0;
        const drains: { promise: Promise<void>; pushed: number; committedAt?: number }[] = [];
        for (const c of commands) {
          if (c.kind === "push") { for (let i = 0; i < c.count; i++) h.commit.push(next++); }
          else if (c.kind === "finish") h.writes.shift()?.finish(c.ok);
          else if (c.kind === "drain") {
            const drain: (typeof drains)[number] = { promise: Promise.resolve(), pushed: next };
            drain.promise = h.commit.drain().then(() => {
              drain.committedAt = h.committed.length;
            });
            drains.push(drain);
          } else if (c.kind === "microtask") await Promise.resolve();
          else await macrotask();
        }
        // Then let every write succeed until nothing is left.
        for (let turns = 0; h.commit.pending > 0 || h.writes.length > 0; turns++) {
          assert.ok(turns < 10_000, "the writer stopped with items pending");
          h.writes.shift()?.finish(true);
          await macrotask();
        }
        await Promise.all(drains.map((d) => d.promise));
        assert.deepEqual(h.committed, Array.from({ length: next }, (_, i) => i));
        for (const d of drains) {
          assert.ok(d.committedAt! >= d.pushed, "a drain resolved before its items were committed");
        }
        assert.equal(h.commit.pending, 0);
        assert.equal(h.commit.failing, false);
      },
    ),
    { numRuns: 300 },
  );
});

Deno.test("GroupCommit picks up an item pushed just as the writer finds nothing left", async () => {
  const h = harness(512);
  h.commit.push(1);
  await Promise.resolve();
  h.writes.shift()!.finish(true);
  // The write's continuation runs in the microtasks after this one: push in between.
  await Promise.resolve();
  h.commit.push(2);
  for (let i = 0; i < 5 && h.writes.length === 0; i++) await Promise.resolve();
  await macrotask();
  assert.equal(h.writes.length, 1, "a write was started for the last item");
  h.writes.shift()!.finish(true);
  await h.commit.drain();
  assert.deepEqual(h.committed, [1, 2]);
});

Deno.test("GroupCommit writes a long backlog in pieces and reports how long the oldest waited", async () => {
  const h = harness(2);
  for (let i = 0; i < 5; i++) h.commit.push(i);
  await Promise.resolve();
  assert.deepEqual(h.writes.map((w) => w.batch), [[0, 1]]);
  assert.ok(h.commit.oldestWait(performance.now() + 50) >= 50);
  h.writes.shift()!.finish(false);
  for (let i = 0; i < 10 && h.writes.length === 0; i++) await macrotask();
  assert.equal(h.commit.failing, true);
  assert.deepEqual(h.writes.map((w) => w.batch), [[0, 1]], "the failed piece is tried again first");
  while (h.writes.length > 0) {
    h.writes.shift()!.finish(true);
    await macrotask();
  }
  await h.commit.drain();
  assert.deepEqual(h.committed, [0, 1, 2, 3, 4]);
  assert.equal(h.commit.failing, false);
  assert.equal(h.commit.oldestWait(), 0);
});

Deno.test("GroupCommit gathers a stream into fewer writes, and writes a lone item at once", async () => {
  const gather = 300;
  const h = harness(512, gather);
  // A lone item after a quiet spell: written in the same turn, no gathering.
  h.commit.push(0);
  await Promise.resolve();
  assert.deepEqual(h.writes.map((w) => w.batch), [[0]]);
  h.writes.shift()!.finish(true);
  await h.commit.drain();
  // A stream: the first batch (three items) is written at once ...
  for (const i of [1, 2, 3]) h.commit.push(i);
  await Promise.resolve();
  assert.deepEqual(h.writes.map((w) => w.batch), [[1, 2, 3]]);
  // ... and what arrives after it waits for the next ones, one turn apart.
  for (const i of [4, 5, 6]) {
    h.commit.push(i);
    await macrotask();
  }
  const pushed = performance.now();
  h.writes.shift()!.finish(true);
  for (let i = 0; i < 5; i++) await macrotask();
  assert.equal(h.writes.length, 0, "the second batch waits for more");
  h.commit.push(7);
  while (h.writes.length === 0) await macrotask();
  const waited = performance.now() - pushed;
  assert.deepEqual(h.writes.map((w) => w.batch), [[4, 5, 6, 7]], "one write for the four");
  assert.ok(waited < gather + 200, `the oldest waited about ${gather} ms, not ${waited}`);
  h.writes.shift()!.finish(true);
  await h.commit.drain();
  assert.deepEqual(h.committed, [0, 1, 2, 3, 4, 5, 6, 7]);
});
