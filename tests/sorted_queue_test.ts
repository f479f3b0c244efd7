import assert from "node:assert/strict";
import fc from "fast-check";
import { dueTasks } from "../lib/child/report.ts";
import { QueueItem, Task } from "../lib/queue/queue_item.ts";
import { SortedQueue } from "../lib/queue/sorted_queue.ts";

class Noop extends Task {
  execute(): void {}
}

function item(expiration: number, graceid?: string): QueueItem {
  return new QueueItem(0, [new Noop(expiration)], { graceid });
}

Deno.test("SortedQueue.pop() returns items earliest first", () => {
  const q = new SortedQueue();
  for (const e of [5, 1, 4, 2, 3]) q.insert(item(e));
  assert.deepEqual([1, 2, 3, 4, 5].map(() => q.pop()!.expiration), [
    1,
    2,
    3,
    4,
    5,
  ]);
  assert.equal(q.pop(), undefined);
  assert.equal(q.size, 0);
});

Deno.test("SortedQueue.pop() returns equal expirations in insertion order", () => {
  const q = new SortedQueue();
  const items = Array.from({ length: 50 }, () => item(7));
  for (const i of items) q.insert(i);
  for (const i of items) assert.equal(q.pop(), i);
});

Deno.test("SortedQueue drops completed items from size, index and pops by itself", () => {
  const q = new SortedQueue({ maxComplete: 1000, maxFrac: 1 });
  const a = item(1, "G1");
  const b = item(2, "G1");
  const c = item(3, "G2");
  for (const i of [a, b, c]) q.insert(i);
  assert.deepEqual(q.byGraceId("G1"), [a, b]);
  a.complete = true;
  assert.equal(q.size, 2);
  assert.deepEqual(q.byGraceId("G1"), [b]);
  assert.equal(q.peek(), b);
  b.complete = true;
  assert.deepEqual(q.graceIds(), ["G2"]);
  assert.equal(q.pop(), c);
  assert.equal(q.pop(), undefined);
});

Deno.test("SortedQueue moves an item whose tasks change while queued", () => {
  const q = new SortedQueue();
  const a = item(10);
  const b = item(5);
  q.insert(a);
  q.insert(b);
  a.add(new Noop(1));
  assert.equal(q.peek(), a);
  assert.equal(q.pop(), a);
  assert.equal(q.pop(), b);
  assert.equal(q.size, 0);
});

Deno.test("SortedQueue.clear() completes every pending item", () => {
  const q = new SortedQueue();
  const items = [item(1, "G"), item(2), item(3, "G")];
  for (const i of items) q.insert(i);
  assert.equal(q.clear().length, 3);
  assert.ok(items.every((i) => i.complete));
  assert.equal(q.size, 0);
  assert.deepEqual(q.graceIds(), []);
  assert.equal(q.pop(), undefined);
});

Deno.test("SortedQueue refuses an item already queued and one with an unset task", () => {
  const q = new SortedQueue();
  const a = item(1);
  q.insert(a);
  assert.throws(() => q.insert(a), /already in a queue/);
  const b = item(1);
  b.tasks[0]!.expiration = NaN;
  assert.throws(() => q.insert(b), /no expiration/);
});

type Op =
  | { op: "insert"; key: number; graceid: number }
  | { op: "pop" }
  | { op: "complete"; pick: number }
  | { op: "retime"; pick: number; key: number };

const ops = fc.array(
  fc.oneof(
    fc.record({
      op: fc.constant("insert" as const),
      key: fc.integer({ min: 0, max: 20 }),
      graceid: fc.integer({ min: 0, max: 3 }),
    }),
    fc.record({ op: fc.constant("pop" as const) }),
    fc.record({ op: fc.constant("complete" as const), pick: fc.nat() }),
    fc.record({
      op: fc.constant("retime" as const),
      pick: fc.nat(),
      key: fc.integer({ min: 0, max: 20 }),
    }),
  ),
  { maxLength: 300, size: "large" },
);

Deno.test("SortedQueue behaves like a sorted-array model under random operations", () => {
  let runs = 0;
  fc.assert(
    fc.property(
      ops,
      fc.integer({ min: 0, max: 10 }),
      fc.double({ min: 0, max: 1, noNaN: true }),
      (list: Op[], maxComplete: number, maxFrac: number) => {
        const q = new SortedQueue({ maxComplete, maxFrac });
        // The model: pending items with (key, order), kept in a plain array.
        let model: { item: QueueItem; key: number; order: number }[] = [];
        let order = 0;
        for (const o of list) {
          if (o.op === "insert") {
            const i = item(o.key, `G${o.graceid}`);
            q.insert(i);
            model.push({ item: i, key: o.key, order: order++ });
          } else if (o.op === "pop") {
            model.sort((a, b) => a.key - b.key || a.order - b.order);
            const want = model.shift();
            assert.equal(q.pop(), want?.item);
          } else if (model.length > 0) {
            const entry = model[o.pick % model.length]!;
            if (o.op === "complete") {
              entry.item.complete = true;
              model = model.filter((m) => m !== entry);
            } else {
              entry.item.add(new Noop(o.key));
              const key = Math.min(entry.key, o.key);
              if (key !== entry.key) {
                entry.key = key;
                entry.order = order++;
              }
            }
          }
          assert.equal(q.size, model.length);
          for (let g = 0; g < 4; g++) {
            const want = model.filter((m) => m.item.graceid === `G${g}`)
              .sort((a, b) => a.key - b.key || a.order - b.order).map((m) => m.item);
            assert.deepEqual(q.byGraceId(`G${g}`), want);
          }
        }
        model.sort((a, b) => a.key - b.key || a.order - b.order);
        assert.deepEqual(q.items(), model.map((m) => m.item));
        runs++;
      },
    ),
    { numRuns: 300 },
  );
  assert.equal(runs, 300);
});

Deno.test("SortedQueue.earliest(k) is the first k of items(), completed and moved items included", () => {
  fc.assert(
    fc.property(
      fc.array(fc.tuple(fc.integer({ min: 0, max: 50 }), fc.constantFrom("keep", "done", "move"))),
      fc.integer({ min: 0, max: 60 }),
      (ops, k) => {
        const q = new SortedQueue();
        const items = ops.map(([e]) => item(e));
        for (const it of items) q.insert(it);
        ops.forEach(([, what], i) => {
          if (what === "done") items[i]!.complete = true;
          if (what === "move") items[i]!.add(new Noop(-1));
        });
        assert.deepEqual(q.earliest(k), q.items().slice(0, k));
      },
    ),
  );
});

Deno.test("dueTasks() reports the k earliest tasks of a queue, earliest first", () => {
  const q = new SortedQueue();
  q.insert(new QueueItem(0, [new Noop(3), new Noop(30)], { graceid: "G1" }));
  q.insert(new QueueItem(0, [new Noop(1), new Noop(2)], { graceid: "G2" }));
  q.insert(new QueueItem(0, [new Noop(10)], { graceid: "G3" }));
  assert.deepEqual(dueTasks(q, 4).map((t) => `${t.graceid}@${t.due}`), [
    "G2@1",
    "G2@2",
    "G1@3",
    "G3@10",
  ]);
});

Deno.test("SortedQueue.insertAll() pops and indexes as inserting one by one does", () => {
  fc.assert(fc.property(
    fc.array(fc.tuple(fc.integer({ min: 0, max: 20 }), fc.constantFrom("A", "B", undefined))),
    (specs) => {
      const one = new SortedQueue();
      const all = new SortedQueue();
      const a = specs.map(([e, g]) => item(e, g));
      const b = specs.map(([e, g]) => item(e, g));
      for (const x of a) one.insert(x);
      all.insertAll(b);
      assert.equal(all.size, one.size);
      for (const g of ["A", "B"]) {
        assert.deepEqual(
          all.byGraceId(g).map((i) => b.indexOf(i)),
          one.byGraceId(g).map((i) => a.indexOf(i)),
        );
      }
      // The graceid index follows completions: down to one item, then none.
      for (const x of b.filter((i) => i.graceid === "A").slice(1)) x.complete = true;
      assert.equal(
        all.byGraceId("A").length,
        Math.min(1, a.filter((i) => i.graceid === "A").length),
      );
      for (const x of a.filter((i) => i.graceid === "A").slice(1)) x.complete = true;
      while (one.size > 0) assert.equal(b.indexOf(all.pop()!), a.indexOf(one.pop()!));
      assert.equal(all.size, 0);
      assert.deepEqual(all.graceIds(), []);
    },
  ));
});

Deno.test("a frozen queue's slots read as at the freeze while the queue changes, and it compacts after", () => {
  fc.assert(
    fc.property(
      // Full-size arrays: the default size draws a dozen items and ops at most.
      fc.array(fc.integer({ min: 1, max: 50 }), { minLength: 1, maxLength: 300, size: "max" }),
      fc.array(fc.tuple(fc.integer({ min: 0, max: 4 }), fc.integer({ min: 1, max: 60 })), {
        maxLength: 400,
        size: "max",
      }),
      fc.integer({ min: 1, max: 40 }),
      (start, ops, chunk) => {
        const q = new SortedQueue({ maxComplete: 5 });
        const all = start.map((e) => item(e));
        q.insertAll(all);
        // Re-timed (an earlier task): each leaves a dead slot behind.
        for (const it of all.slice(0, 3)) it.add(new Noop(0.5));
        const frozen = q.freeze();
        const expected = frozen.items.slice(0, frozen.length);
        const read: QueueItem[] = [];
        let next = 0;
        for (const [op, value] of ops) {
          if (op === 0) q.insert(item(value));
          else if (op === 1) q.pop();
          else if (op === 2) q.peek()?.add(new Noop(value));
          else if (op === 3) {
            const top = q.peek();
            if (top) top.complete = true;
          } else {
            for (let i = 0; i < chunk && next < frozen.length; i++) read.push(frozen.read(next++));
          }
        }
        while (next < frozen.length) read.push(frozen.read(next++));
        assert.equal(read.length, expected.length);
        assert.ok(read.every((it, i) => it === expected[i]), "the very items, slot by slot");
        assert.equal(frozen.kept.size, 0, "nothing kept once read");
        // Held back while frozen, the clean-up runs at the thaw: few dead slots are left.
        q.thaw();
        const after = q.freeze();
        assert.ok(after.length - q.size <= 5, `${after.length - q.size} dead slots after the thaw`);
        q.thaw();
        const pending = q.items();
        const popped: QueueItem[] = [];
        for (let it = q.pop(); it; it = q.pop()) popped.push(it);
        assert.deepEqual(popped, pending);
        for (let i = 1; i < popped.length; i++) {
          assert.ok(popped[i - 1]!.expiration <= popped[i]!.expiration);
        }
      },
    ),
    { numRuns: 300 },
  );
});
