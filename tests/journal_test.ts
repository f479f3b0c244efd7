import assert from "node:assert/strict";
import { join } from "node:path";
import { crc32 } from "node:zlib";
import {
  ALLOCATE_AHEAD,
  encodeRecord as encodeBytes,
  encodeRecords,
  Journal,
  type JournalRecord,
  readJournal,
} from "../lib/durability/journal.ts";
import { fillDisk, mountTmpfs, tempDir, unmountTmpfs } from "./helpers.ts";

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
  assert.deepEqual(read, {
    base: 0,
    records: [],
    ends: [],
    cut: null,
    damaged: [],
    header: "ok",
  });
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

Deno.test("a batch of records is encoded in one buffer: each line CRC-checked, with its byte length", async () => {
  // Text as received (kept as it is), multi-byte characters, and an alert object.
  const entries = [
    {
      seq: 1,
      node: "n",
      id: "i1",
      t0: 1.5,
      text: '{"uid":"G1","alert_type":"new","note":"é ✓ 🌊"}',
    },
    { seq: 2, node: "nœud", id: null, t0: 2, alert: { uid: "G2", alert_type: "update", x: "∆" } },
    { seq: 3, node: "n", id: "i3", t0: 3, text: '{"uid":"G3","alert_type":"new"}' },
  ];
  const { bytes, lengths } = encodeRecords(entries);
  const text = new TextDecoder().decode(bytes);
  const lines = text.split("\n").slice(0, -1);
  assert.equal(lines.length, 3);
  let at = 0;
  for (const [i, line] of lines.entries()) {
    const ownBytes = new TextEncoder().encode(line + "\n");
    assert.equal(lengths[i], ownBytes.length, `line ${i + 1}'s byte length`);
    assert.deepEqual(bytes.subarray(at, at + ownBytes.length), ownBytes);
    at += ownBytes.length;
    const json = line.slice(9);
    assert.equal(line.slice(0, 9), crc32(json).toString(16).padStart(8, "0") + " ");
    // The same line as a record encoded alone.
    assert.equal(new TextDecoder().decode(encodeBytes(entries[i]!)), line + "\n");
  }
  assert.equal(at, bytes.length);
  assert.equal(JSON.parse(lines[0]!.slice(9)).alert.note, "é ✓ 🌊");
  // Journaled, they read back whole, at the offsets the lengths give.
  await using dir = await tempDir();
  const path = join(dir.path, "journal.log");
  const { journal } = await Journal.open(path);
  await journal.append(entries);
  await journal.close();
  const read = readJournal(await Deno.readFile(path));
  assert.deepEqual(read.records.map((r) => [r.seq, r.node, r.alert.uid]), [
    [1, "n", "G1"],
    [2, "nœud", "G2"],
    [3, "n", "G3"],
  ]);
  const head = new TextEncoder().encode(HEADER).length;
  assert.deepEqual(read.ends, [head + lengths[0]!, head + lengths[0]! + lengths[1]!, head + at]);
  assert.deepEqual(read.damaged, []);
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
    assert.deepEqual(readJournal(await Deno.readTextFile(path)).records.map((r) => r.seq), [
      1,
      2,
      3,
    ]);
  });
  await t.step(
    "a damaged line in the middle is skipped; the intact ones after it are kept",
    async () => {
      const bad = encodeRecord(record(3)).replace("G3", "G9");
      await using dir = await tempDir({
        "j.log": good + bad + encodeRecord(record(4)),
      });
      const path = join(dir.path, "j.log");
      const { journal, read, movedAside } = await Journal.open(path);
      await journal.close();
      assert.deepEqual(read.records.map((r) => r.seq), [1, 2, 4]);
      assert.deepEqual(read.damaged, [{ line: 4, reason: "checksum mismatch" }]);
      assert.ok(
        movedAside && (await Deno.readTextFile(movedAside)).includes("G9"),
        "original kept aside",
      );
      const clean = readJournal(await Deno.readTextFile(path));
      assert.deepEqual([clean.records.map((r) => r.seq), clean.damaged], [[1, 2, 4], []]);
    },
  );
  await t.step("a torn header starts a fresh journal", async () => {
    await using dir = await tempDir({ "j.log": HEADER.slice(0, 10) });
    const { journal, read } = await Journal.open(join(dir.path, "j.log"));
    await journal.close();
    assert.equal(read.records.length, 0);
    assert.equal(await Deno.readTextFile(join(dir.path, "j.log")), HEADER);
  });
  await t.step("a file of another format is moved aside and a new journal begins", async () => {
    await using dir = await tempDir({ "j.log": '{"format":"other"}\nstuff\n' });
    const path = join(dir.path, "j.log");
    const { journal, read, movedAside } = await Journal.open(path, { floor: 7 });
    assert.equal(read.records.length, 0);
    assert.equal(await Deno.readTextFile(movedAside!), '{"format":"other"}\nstuff\n');
    assert.equal(journal.lastSeq, 7, "numbering continues above the floor");
    await journal.close();
  });
});

Deno.test("Journal: one flipped bit in record 76 of 100 costs that record only", async () => {
  const lines = Array.from({ length: 100 }, (_, i) => encodeBytes(record(i + 1)));
  const bytes = new Uint8Array(lines.reduce((n, l) => n + l.length, 0));
  let at = 0;
  for (const line of lines) {
    bytes.set(line, at);
    at += line.length;
  }
  const offset = lines.slice(0, 75).reduce((n, l) => n + l.length, 0) + 40;
  bytes[offset]! ^= 0x04;
  await using dir = await tempDir({ "j.log": HEADER });
  const path = join(dir.path, "j.log");
  const file = await Deno.open(path, { append: true });
  await file.write(bytes);
  file.close();
  const { journal, read } = await Journal.open(path);
  assert.equal(read.records.length, 99);
  assert.deepEqual(read.damaged.map((d) => d.line), [77]);
  assert.ok(!read.records.some((r) => r.seq === 76));
  assert.equal(journal.lastSeq, 100);
  await journal.close();
});

Deno.test("Journal: a damaged header is rebuilt from the records, never a crash", async () => {
  const body = [1, 2, 3].map((n) => encodeRecord(record(n))).join("");
  await using dir = await tempDir({ "j.log": HEADER.replace("lvalertMP", "lvalertXP") + body });
  const path = join(dir.path, "j.log");
  const { journal, read } = await Journal.open(path);
  assert.equal(read.header, "rebuilt");
  assert.deepEqual(read.records.map((r) => r.seq), [1, 2, 3]);
  await journal.append([record(4)]);
  await journal.close();
  const again = readJournal(await Deno.readTextFile(path));
  assert.deepEqual([again.header, again.records.map((r) => r.seq)], ["ok", [1, 2, 3, 4]]);
});

Deno.test("Journal: a journal lost or shorter than the snapshot is reported; numbering never goes back", async (t) => {
  await t.step("deleted", async () => {
    await using dir = await tempDir();
    const { journal, lost } = await Journal.open(join(dir.path, "j.log"), { floor: 50 });
    assert.deepEqual(lost, { floor: 50, last: 0 });
    assert.equal(journal.lastSeq, 50);
    await journal.close();
  });
  await t.step("emptied", async () => {
    await using dir = await tempDir({ "j.log": "" });
    const { journal, lost } = await Journal.open(join(dir.path, "j.log"), { floor: 50 });
    assert.deepEqual(lost, { floor: 50, last: 0 });
    await journal.append([record(51)]);
    await journal.close();
    const again = await Journal.open(join(dir.path, "j.log"), { floor: 50 });
    assert.equal(again.lost, null);
    assert.equal(again.journal.lastSeq, 51);
    await again.journal.close();
  });
});

Deno.test("Journal.trim rewrites only when it drops a megabyte and as much as it keeps", async () => {
  await using dir = await tempDir();
  const path = join(dir.path, "journal.log");
  const { journal } = await Journal.open(path);
  await journal.append([record(1), record(2), record(3)]);
  assert.equal(await journal.trim(3), 0, "a few records wait for a bigger trim");
  assert.equal(readJournal(await Deno.readTextFile(path)).records.length, 3);
  // ~1.5 MB more: dropping all but the newest is now worth a rewrite.
  const big = (seq: number) => ({
    ...record(seq),
    alert: { ...record(seq).alert, pad: "x".repeat(4096) },
  });
  const records = Array.from({ length: 384 }, (_, i) => big(i + 4));
  await journal.append(records);
  assert.equal(await journal.trim(100), 0, "drops less than it keeps");
  assert.equal(await journal.trim(386), 386);
  assert.deepEqual(readJournal(await Deno.readTextFile(path)).records.map((r) => r.seq), [387]);
  await journal.close();
});

Deno.test("Journal.trim drops records a snapshot covers", async () => {
  await using dir = await tempDir();
  const path = join(dir.path, "journal.log");
  const { journal } = await Journal.open(path, { trimBytes: 0 });
  await journal.append([record(1), record(2), record(3)]);
  assert.equal(await journal.trim(2), 2);
  await journal.append([record(4)]);
  assert.deepEqual(readJournal(await Deno.readTextFile(path)).records.map((r) => r.seq), [
    3,
    4,
  ]);
  assert.equal(await journal.trim(4), 2);
  await journal.close();
  assert.equal((await Deno.stat(path)).mode! & 0o777, 0o600);
  const read = readJournal(await Deno.readTextFile(path));
  assert.deepEqual([read.base, read.records.length], [4, 0]);
  const reopened = await Journal.open(path);
  assert.equal(reopened.journal.lastSeq, 4, "numbering goes on after an empty journal");
  await reopened.journal.close();
});

/** What `promise` gives, or "still waiting" after five seconds. */
async function within<T>(promise: Promise<T>): Promise<T | "still waiting"> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<"still waiting">((resolve) =>
    timer = setTimeout(() => resolve("still waiting"), 5000)
  );
  try {
    return await Promise.race([promise, late]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Starts a trim up to `seq` and waits until it has copied what it keeps;
 * its swap waits for `release`.
 */
async function trimHeldAtSwap(
  journal: Journal,
  seq: number,
): Promise<{ trim: Promise<number>; release: () => void }> {
  const copied = Promise.withResolvers<void>();
  const held = Promise.withResolvers<void>();
  const trim = journal.trim(seq, {
    copied: () => {
      copied.resolve();
      return held.promise;
    },
  });
  assert.equal(await within(copied.promise.then(() => "copied")), "copied");
  return { trim, release: () => held.resolve() };
}

Deno.test("Journal.trim lets appends through while it copies; they are in the new file", async () => {
  await using dir = await tempDir();
  const path = join(dir.path, "journal.log");
  const { journal } = await Journal.open(path, { trimBytes: 0 });
  await journal.append([record(1), record(2), record(3), record(4)]);
  const { trim, release } = await trimHeldAtSwap(journal, 2);
  assert.equal(await journal.trim(4), 0, "one trim at a time");
  // The swap waits: an append made now is durable before it.
  assert.equal(await within(journal.append([record(5)]).then(() => "appended")), "appended");
  assert.deepEqual(readJournal(await Deno.readTextFile(path)).records.map((r) => r.seq), [
    1,
    2,
    3,
    4,
    5,
  ]);
  release();
  assert.equal(await trim, 2);
  await journal.append([record(6)]);
  assert.equal(await journal.record(5).then((r) => r?.id), "i5", "offsets follow the new file");
  await journal.close();
  const read = readJournal(await Deno.readTextFile(path));
  assert.deepEqual([read.base, read.records.map((r) => r.seq)], [2, [3, 4, 5, 6]]);
  assert.equal((await Deno.stat(path)).mode! & 0o777, 0o600);
  assert.deepEqual([...Deno.readDirSync(dir.path)].map((e) => e.name), ["journal.log"]);
  // The new file came with zeros ahead of what it copied; 5 and 6 went into them.
  assert.equal((await Deno.stat(path)).size, read.ends[1]! + ALLOCATE_AHEAD);
});

Deno.test("Journal.close during a trim gives the trim up and keeps the journal whole", async () => {
  await using dir = await tempDir();
  const path = join(dir.path, "journal.log");
  const { journal } = await Journal.open(path, { trimBytes: 0 });
  await journal.append([record(1), record(2), record(3)]);
  const { trim, release } = await trimHeldAtSwap(journal, 2);
  await journal.append([record(4)]);
  const closing = journal.close();
  release();
  await assert.rejects(trim, /closed during a trim/);
  await closing;
  const read = readJournal(await Deno.readTextFile(path));
  assert.deepEqual([read.base, read.records.map((r) => r.seq)], [0, [1, 2, 3, 4]]);
  assert.deepEqual([...Deno.readDirSync(dir.path)].map((e) => e.name), ["journal.log"]);
});

Deno.test("readJournal gives byte offsets, from text or bytes, with non-ASCII alerts", () => {
  const wide = (seq: number): JournalRecord => ({
    ...record(seq),
    alert: { uid: `G${seq}`, alert_type: "new", comment: "é ✓ 🚀 \ud800 lone" },
  });
  const lines = [HEADER, encodeRecord(record(1)), encodeRecord(wide(2)), encodeRecord(record(3))];
  const torn = encodeRecord(wide(4)).slice(0, 30);
  const text = lines.join("") + torn;
  const bytes = new TextEncoder().encode(text);
  const byteEnd = (n: number) => new TextEncoder().encode(lines.slice(0, n + 1).join("")).length;
  for (const input of [text, bytes]) {
    const read = readJournal(input);
    assert.deepEqual(read.records.map((r) => r.seq), [1, 2, 3]);
    assert.deepEqual(read.ends, [byteEnd(1), byteEnd(2), byteEnd(3)]);
    assert.equal(read.cut?.byteOffset, byteEnd(3));
    // JSON escapes a lone surrogate, so it comes back as it went in.
    assert.equal(read.records[1]!.alert.comment, "é ✓ 🚀 \ud800 lone");
  }
});

Deno.test("readJournal: bytes that are not UTF-8 damage their record only, and no offset after it", () => {
  const enc = new TextEncoder();
  const good = (seq: number) => enc.encode(encodeRecord(record(seq)));
  const bad = enc.encode(encodeRecord(record(2)));
  // Three invalid bytes in a row decode to three U+FFFD, nine bytes as text.
  bad.set([0xff, 0xfe, 0xe2], 30);
  // Not all ASCII, so offsets cannot be read off the characters.
  const wide = enc.encode(encodeRecord({ ...record(4), alert: { uid: "G4", alert_type: "é" } }));
  const parts = [enc.encode(HEADER), good(1), bad, good(3), wide];
  const bytes = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  const ends: number[] = [];
  for (const part of parts) {
    bytes.set(part, at);
    at += part.length;
    ends.push(at);
  }
  const read = readJournal(bytes);
  assert.deepEqual(read.records.map((r) => r.seq), [1, 3, 4]);
  assert.deepEqual(read.damaged.map((d) => [d.line, d.reason]), [[3, "checksum mismatch"]]);
  assert.deepEqual(read.ends, [ends[1], ends[3], ends[4]], "offsets of the bytes on disk");
});

/** The file's size and the records read back from it. */
async function sizeAndSeqs(path: string): Promise<[number, number[]]> {
  const bytes = await Deno.readFile(path);
  return [bytes.length, readJournal(bytes).records.map((r) => r.seq)];
}

Deno.test("Journal writes zeros ahead: appends overwrite them, readers skip them, a reopen goes on", async () => {
  await using dir = await tempDir();
  const path = join(dir.path, "journal.log");
  const { journal } = await Journal.open(path);
  assert.equal(
    (await Deno.stat(path)).size,
    HEADER.length,
    "nothing ahead before the first append",
  );
  await journal.append([record(1)]);
  const first = HEADER.length + encodeRecord(record(1)).length;
  assert.deepEqual(await sizeAndSeqs(path), [first + ALLOCATE_AHEAD, [1]]);
  await journal.append([record(2), record(3)]);
  assert.deepEqual(await sizeAndSeqs(path), [first + ALLOCATE_AHEAD, [1, 2, 3]], "no growth");
  await journal.close();
  // Text readers skip the zeros as well.
  assert.deepEqual(readJournal(await Deno.readTextFile(path)).records.map((r) => r.seq), [1, 2, 3]);
  const again = await Journal.open(path);
  assert.equal(again.read.cut, null);
  assert.deepEqual(again.read.damaged, []);
  await again.journal.append([record(4)]);
  assert.equal(await again.journal.record(4).then((r) => r?.id), "i4");
  await again.journal.close();
  assert.deepEqual(await sizeAndSeqs(path), [first + ALLOCATE_AHEAD, [1, 2, 3, 4]]);
  // A batch that reaches past the zeros writes the next ones after itself.
  const big = Array.from({ length: 40 }, (_, i) => ({
    ...record(5 + i),
    alert: { uid: `G${5 + i}`, alert_type: "new", pad: "x".repeat(30_000) },
  }));
  const { journal: third } = await Journal.open(path);
  await third.append(big);
  await third.close();
  const bytes = await Deno.readFile(path);
  const read = readJournal(bytes);
  assert.equal(read.records.length, 44);
  assert.equal(bytes.length, read.ends.at(-1)! + ALLOCATE_AHEAD);
});

Deno.test("Journal: a record torn inside the zeros written ahead is cut; the journal goes on", async () => {
  const good = HEADER + encodeRecord(record(1)) + encodeRecord(record(2));
  const torn = encodeRecord(record(3)).slice(0, 30);
  await using dir = await tempDir({ "j.log": good + torn + "\0".repeat(4096) });
  const path = join(dir.path, "j.log");
  const { journal, read } = await Journal.open(path);
  assert.deepEqual(read.records.map((r) => r.seq), [1, 2]);
  assert.equal(read.cut?.line, 4);
  assert.match(read.cut!.reason, /torn last line/);
  assert.deepEqual(read.damaged, []);
  assert.equal(await Deno.readTextFile(path), good, "the torn record and the zeros are cut");
  await journal.append([record(3)]);
  await journal.close();
  assert.deepEqual((await sizeAndSeqs(path))[1], [1, 2, 3]);
});

Deno.test("Journal on a nearly full disk: a batch that fits is written without the zeros ahead", async (t) => {
  await using dir = await tempDir();
  const mount = join(dir.path, "tmpfs");
  if (!await mountTmpfs(t, mount)) return;
  try {
    const path = join(mount, "journal.log");
    const { journal } = await Journal.open(path);
    // Leave well under a megabyte free (the tmpfs holds 2 MB).
    await fillDisk(join(mount, "filler"));
    await Deno.truncate(
      join(mount, "filler"),
      (await Deno.stat(join(mount, "filler"))).size - 65536,
    );
    await journal.append([record(1), record(2)]);
    await journal.append([record(3)]);
    const [size, seqs] = await sizeAndSeqs(path);
    assert.deepEqual(seqs, [1, 2, 3]);
    assert.equal(
      size,
      HEADER.length + [1, 2, 3].map((n) => encodeRecord(record(n)).length)
        .reduce((a, b) => a + b),
      "no zeros ahead: there is no room for them",
    );
    // Room again: the next batch writes them.
    await Deno.remove(join(mount, "filler"));
    await journal.append([record(4)]);
    await journal.close();
    const after = await sizeAndSeqs(path);
    assert.deepEqual(after, [size + encodeRecord(record(4)).length + ALLOCATE_AHEAD, [1, 2, 3, 4]]);
  } finally {
    await unmountTmpfs(mount);
  }
});
