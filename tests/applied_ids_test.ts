/**
 * The applied-id memory: it refuses an id twice, keeps at least its limit
 * of the newest, forgets the oldest a chunk at a time, and gives exactly
 * the pairs it holds, oldest first, as JSON.
 */

import assert from "node:assert/strict";
import fc from "fast-check";
import { APPLIED_CHUNK, AppliedIds } from "../lib/child/applied_ids.ts";

Deno.test("applied ids: an id is taken once, and the list is its pairs as JSON", () => {
  const applied = new AppliedIds(10);
  assert.equal(applied.json(), "[]");
  assert.equal(applied.add("node_a", "1"), true);
  assert.equal(applied.add("node_a", "1"), false);
  assert.equal(applied.add("node_b", "1"), true);
  assert.equal(applied.add("node_a", 'a "quoted" id\u0000'), true);
  assert.equal(applied.has("node_a", "1"), true);
  assert.equal(applied.has("node_c", "1"), false);
  assert.deepEqual(JSON.parse(applied.json()), [
    ["node_a", "1"],
    ["node_b", "1"],
    ["node_a", 'a "quoted" id\u0000'],
  ]);
});

Deno.test("applied ids: the newest `limit` are always held, the oldest forgotten a chunk at a time", () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 700 }),
      fc.array(fc.integer({ min: 0, max: 3000 }), { maxLength: 3000, size: "max" }),
      (limit, ids) => {
        const applied = new AppliedIds(limit);
        // What it must hold: every distinct id added, in order of first add
        // since it was last forgotten (a forgotten id may come back).
        const added: string[] = [];
        for (const n of ids) {
          const id = String(n);
          const fresh = !applied.has("n", id);
          assert.equal(applied.add("n", id), fresh);
          if (fresh) added.push(id);
          assert.ok(applied.size >= Math.min(limit, added.length), "fewer than the limit held");
          assert.ok(applied.size < limit + APPLIED_CHUNK, "a chunk too many held");
        }
        const held = (JSON.parse(applied.json()) as [string, string][]).map(([, id]) => id);
        assert.equal(held.length, applied.size);
        // The held ones are the newest added, oldest first.
        assert.deepEqual(held, added.slice(added.length - held.length));
        for (const id of held) assert.equal(applied.has("n", id), true);
        for (const id of added.slice(0, added.length - held.length)) {
          if (!held.includes(id)) assert.equal(applied.has("n", id), false);
        }
      },
    ),
    // Thousands of ids a run: a failure is reported as found, not shrunk.
    { numRuns: 200, endOnFailure: true },
  );
});
