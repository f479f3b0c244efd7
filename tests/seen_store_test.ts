import assert from "node:assert/strict";
import { join } from "node:path";
import { GroupCommit } from "../lib/durability/group_commit.ts";
import { SeenStore } from "../lib/durability/seen_store.ts";
import { tempDir } from "./helpers.ts";

Deno.test("SeenStore: only a catch-up marks a node as watched; marks and recorded ids persist", async () => {
  await using dir = await tempDir();
  const store = await SeenStore.open(dir.path);
  store.add("n", "live-1");
  store.record("n", "journaled-1");
  assert.equal(
    store.knows("n"),
    false,
    "live alerts before the first catch-up leave its baseline in place",
  );
  assert.ok(store.has("n", "live-1"));
  store.mark("n");
  assert.ok(store.knows("n"));
  await store.close();
  assert.equal((await Deno.stat(join(dir.path, "seen.jsonl"))).mode! & 0o777, 0o600);
  const again = await SeenStore.open(dir.path);
  assert.ok(again.knows("n"));
  assert.ok(again.has("n", "journaled-1"));
  assert.equal(again.has("n", "live-1"), false, "an id never journaled is not kept");
  await again.close();
});

Deno.test("GroupCommit keeps a batch whose write failed and writes it again, in order", async () => {
  const written: number[][] = [];
  const failures: unknown[] = [];
  let fail = 1;
  const commit = new GroupCommit<number>({
    write: (batch) => {
      if (fail-- > 0) return Promise.reject(new Error("disk full"));
      written.push([...batch]);
      return Promise.resolve();
    },
    committed: () => {},
    failed: (error) => failures.push(error),
    retryAfter: 0.01,
  });
  commit.push(1);
  commit.push(2);
  await new Promise((r) => setTimeout(r, 0));
  commit.push(3);
  await commit.drain();
  assert.equal(failures.length, 1);
  assert.deepEqual(written.flat(), [1, 2, 3]);
  assert.equal(commit.pending, 0);
});
