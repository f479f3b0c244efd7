import process from "node:process";
import { testItems } from "./durability_bench.ts";
import { ClassRegistry, loadSnapshot, SnapshotWriter } from "../lib/durability/snapshot.ts";
import { SortedQueue } from "../lib/queue/sorted_queue.ts";
import * as testHandler from "../workers/handlers/test.ts";
const items = testItems(1e5, Date.now() / 1000);
const w = new SnapshotWriter({ child: "a", seq: 1, taken: 0, applied: [] }, 20e6);
for (const it of items) w.add(it);
const pieces = w.pieces();
const all = new Uint8Array(pieces.reduce((n, p) => n + p.length, 0));
let at = 0;
for (const p of pieces) {
  all.set(p, at);
  at += p.length;
}
const reg = new ClassRegistry();
reg.registerModule(testHandler);
const cpu = (f: () => void) => {
  const c = process.cpuUsage();
  f();
  const d = process.cpuUsage(c);
  return Math.round((d.user + d.system) / 1000);
};
const decoder = new TextDecoder();
for (let r = 0; r < 5; r++) {
  let loaded: any;
  const dec = cpu(() => decoder.decode(all).split("\n"));
  const load = cpu(() => {
    loaded = loadSnapshot(all, reg, "x");
  });
  const ins = cpu(() => {
    const q = new SortedQueue();
    for (const it of loaded.items) q.insert(it);
  });
  console.log({ dec, load, ins });
}
