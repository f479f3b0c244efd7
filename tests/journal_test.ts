import assert from "node:assert/strict";
import { join } from "node:path";
import {
  encodeRecord as encodeBytes,
  Journal,
  type JournalRecord,
  readJournal,
} from "../lib/durability/journal.ts";
import { tempDir } from "./helpers.ts";

/** A record as journal text. */
const encodeRecord = (r: JournalRecord) => new TextDecoder().decode(encodeBytes(r));
const HEADER = '{"format":"lvalertMP-journal","version":1,"base":0}\n';

function record(seq: number): JournalRecord {
  return {
    seq,
    node: "n",
    id: `i${seq}`,
    t0: 1000 + seq,
    alert: { uid: `G${seq}`, alert_type: "new" },
  };
}

Deno.test("Journal appends records that read back in order, files private", async () => {
  await using dir = await tempDir();
  const path = join(dir.path, "journal.log");
  const { journal, read } = await Journal.open(path);
  assert.deepEqual(read, { base: 0, records: [], ends: [], cut: null });
  await journal.append([record(1), record(2)]);
  await journal.append([record(3)]);
  assert.equal(journal.lastSeq, 3);
  await journal.close();
  assert.equal((await Deno.stat(path)).mode! & 0o777, 0o600);
  const again = await Journal.open(path);
  assert.deepEqual(again.read.records.map((r) => r.seq), [1, 2, 3]);
  assert.equal(again.journal.lastSeq, 3);
  await again.journal.close();
});

Deno.test("Journal finds a torn or damaged tail, reports it and cuts it", async (t) => {
  const good = HEADER + encodeRecord(record(1)) + encodeRecord(record(2));
  await t.step("a last line without its newline (died mid-write)", async () => {
    await using dir = await tempDir({ "j.log": good + encodeRecord(record(3)).slice(0, 30) });
    const path = join(dir.path, "j.log");
    const { journal, read } = await Journal.open(path);
    assert.deepEqual(read.records.map((r) => r.seq), [1, 2]);
    assert.equal(read.cut?.line, 4);
    assert.match(read.cut!.reason, /torn last line/);
    assert.equal(await Deno.readTextFile(path), good, "the tail is cut from the file");
    await journal.append([record(3)]);
    await journal.close();
    assert.deepEqual(readJournal(await Deno.readTextFile(path), path).records.map((r) => r.seq), [
      1,
      2,
      3,
    ]);
  });
  await t.step("a damaged line in the middle: everything from it on is cut", async () => {
    const bad = encodeRecord(record(3)).replace("G3", "G9");
    await using dir = await tempDir({ "j.log": good + bad + encodeRecord(record(4)) });
    const { journal, read } = await Journal.open(join(dir.path, "j.log"));
    await journal.close();
    assert.deepEqual(read.records.map((r) => r.seq), [1, 2]);
    assert.deepEqual([read.cut?.line, read.cut?.reason], [4, "checksum mismatch"]);
  });
  await t.step("a torn header starts a fresh journal", async () => {
    await using dir = await tempDir({ "j.log": HEADER.slice(0, 10) });
    const { journal, read } = await Journal.open(join(dir.path, "j.log"));
    await journal.close();
    assert.equal(read.records.length, 0);
    assert.equal(await Deno.readTextFile(join(dir.path, "j.log")), HEADER);
  });
  await t.step("another format is refused, not overwritten", async () => {
    await using dir = await tempDir({ "j.log": '{"format":"other"}\nstuff\n' });
    await assert.rejects(
      Journal.open(join(dir.path, "j.log")),
      /j\.log:1: not an lvalertMP journal/,
    );
  });
});

Deno.test("Journal.trim drops records a snapshot covers", async () => {
  await using dir = await tempDir();
  const path = join(dir.path, "journal.log");
  const { journal } = await Journal.open(path);
  await journal.append([record(1), record(2), record(3)]);
  assert.equal(await journal.trim(2), 2);
  await journal.append([record(4)]);
  assert.deepEqual(readJournal(await Deno.readTextFile(path), path).records.map((r) => r.seq), [
    3,
    4,
  ]);
  assert.equal(await journal.trim(4), 2);
  await journal.close();
  assert.equal((await Deno.stat(path)).mode! & 0o777, 0o600);
  const read = readJournal(await Deno.readTextFile(path), path);
  assert.deepEqual([read.base, read.records.length], [4, 0]);
  const reopened = await Journal.open(path);
  assert.equal(reopened.journal.lastSeq, 4, "numbering goes on after an empty journal");
  await reopened.journal.close();
});
