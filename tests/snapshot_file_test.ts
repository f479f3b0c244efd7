/**
 * Snapshots written while they are serialized: chunks to a temp file as
 * they fill, the header into room kept before them (or the body moved
 * when it outgrew it), then synced and renamed into place.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { BODY_CHUNK, readSnapshot, SnapshotWriter } from "../lib/durability/snapshot.ts";
import { HEAD_ROOM, headRoomFor, SnapshotFile } from "../lib/durability/snapshot_file.ts";
import * as testHandler from "../workers/handlers/test.ts";
import { tempDir } from "./helpers.ts";
import { registry } from "./snapshot_helpers.ts";

const HEAD = { child: "kid", seq: 7, taken: 1000, applied: [["n", "i1"]] as [string, string][] };

/** Test-handler items (~90 bytes each in a snapshot), graceids G0, G1, ... */
function items(count: number): testHandler.TestItem[] {
  return Array.from({ length: count }, (_, i) => {
    const alert = { uid: `G${i}`, alert_type: "new" };
    return new testHandler.TestItem(1000 + i, [new testHandler.PrintAlertTask(60 + i, alert)], {
      graceid: alert.uid,
    });
  });
}

/** The same items through a writer that keeps its chunks: header and body bytes. */
function inMemory(list: testHandler.TestItem[]): { head: unknown; body: Uint8Array } {
  const writer = new SnapshotWriter(HEAD);
  list.forEach((item) => writer.add(item));
  const [head, ...body] = writer.pieces();
  return { head: JSON.parse(new TextDecoder().decode(head)), body: concat(body) };
}

function concat(parts: Uint8Array[]): Uint8Array {
  const all = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    all.set(p, at);
    at += p.length;
  }
  return all;
}

/** Writes `list` through a SnapshotFile with `room` for the header. */
async function streamed(dir: string, list: testHandler.TestItem[], room: number) {
  const pool: ArrayBuffer[] = [];
  const path = join(dir, "snapshot.json");
  const out = await SnapshotFile.create(path, room, pool);
  let sunk = 0;
  const writer = new SnapshotWriter(HEAD, {
    pool,
    sink: (chunk) => {
      sunk++;
      out.sink(chunk);
    },
  });
  list.forEach((item) => writer.add(item));
  const pieces = writer.pieces();
  const size = await out.finish(pieces, join(dir, "snapshot.prev.json"));
  return { path, size, sunk, pool, head: pieces[0]! };
}

Deno.test("a snapshot streamed chunk by chunk is the same snapshot, its header padded into its room", async () => {
  await using dir = await tempDir();
  await Deno.writeTextFile(join(dir.path, "snapshot.json"), "the one before");
  const list = items(20_000);
  const { path, size, sunk, pool, head } = await streamed(dir.path, list, HEAD_ROOM);
  assert.ok(sunk >= 4, `${sunk} chunks went to the file as they filled`);
  assert.ok(
    pool.length > 0 && pool.every((b) => b.byteLength === BODY_CHUNK),
    "buffers given back",
  );
  const bytes = await Deno.readFile(path);
  assert.equal(bytes.length, size);
  assert.equal((await Deno.stat(path)).mode! & 0o777, 0o600);
  assert.equal(await Deno.readTextFile(join(dir.path, "snapshot.prev.json")), "the one before");
  // The header line fills its room: JSON, spaces, newline.
  const newline = bytes.indexOf(10);
  assert.equal(newline, HEAD_ROOM - 1);
  const line = new TextDecoder().decode(bytes.subarray(0, newline));
  assert.match(line, /^\{.*\} +$/);
  const expected = inMemory(list);
  assert.deepEqual(JSON.parse(line), expected.head);
  assert.deepEqual(bytes.subarray(newline + 1), expected.body);
  assert.equal(head.length, new TextEncoder().encode(JSON.stringify(expected.head) + "\n").length);
  // And it reads back: every item, in order.
  const read = await readSnapshot(path, registry());
  assert.equal(read.seq, 7);
  assert.deepEqual(read.items.map((i) => i.graceid), list.map((i) => i.graceid));
  assert.deepEqual(read.applied, [["n", "i1"]]);
  // No temp file is left.
  const names = [];
  for await (const e of Deno.readDir(dir.path)) names.push(e.name);
  assert.deepEqual(names.sort(), ["snapshot.json", "snapshot.prev.json"]);
});

Deno.test("a small snapshot's one chunk goes back to the pool for the next", async () => {
  await using dir = await tempDir();
  const { pool, sunk } = await streamed(dir.path, items(10), HEAD_ROOM);
  assert.equal(sunk, 0, "it never filled a chunk");
  assert.equal(pool.length, 1);
  assert.equal(pool[0]!.byteLength, BODY_CHUNK);
});

Deno.test("a header that outgrew its room: the body is moved after it, the file exact", async () => {
  await using dir = await tempDir();
  const list = items(8000);
  const { path, head } = await streamed(dir.path, list, 16);
  const bytes = await Deno.readFile(path);
  const expected = inMemory(list);
  assert.equal(bytes.indexOf(10), head.length - 1, "the header line is exact, not padded");
  assert.deepEqual(
    JSON.parse(new TextDecoder().decode(bytes.subarray(0, head.length))),
    expected.head,
  );
  assert.deepEqual(bytes.subarray(head.length), expected.body);
  const read = await readSnapshot(path, registry());
  assert.deepEqual(read.items.map((i) => i.graceid), list.map((i) => i.graceid));
  // The next one keeps twice the room, in whole 4 KB.
  assert.equal(
    headRoomFor(head.length),
    Math.max(HEAD_ROOM, Math.ceil(2 * head.length / 4096) * 4096),
  );
});

Deno.test("a snapshot that cannot be put in place leaves the last one and no temp file", async () => {
  await using dir = await tempDir();
  const path = join(dir.path, "snapshot.json");
  await Deno.writeTextFile(path, "the last good one");
  // The previous snapshot's name is taken by a folder that is not empty: the rename fails.
  await Deno.mkdir(join(dir.path, "snapshot.prev.json", "x"), { recursive: true });
  const out = await SnapshotFile.create(path, HEAD_ROOM, []);
  const writer = new SnapshotWriter(HEAD, { sink: out.sink });
  items(600).forEach((item) => writer.add(item));
  await assert.rejects(out.finish(writer.pieces(), join(dir.path, "snapshot.prev.json")));
  await out.abort();
  assert.equal(await Deno.readTextFile(path), "the last good one");
  const names = [];
  for await (const e of Deno.readDir(dir.path)) names.push(e.name);
  assert.deepEqual(names.sort(), ["snapshot.json", "snapshot.prev.json"]);
});
