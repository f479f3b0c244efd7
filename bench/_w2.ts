import process from "node:process";
import { testItems } from "./durability_bench.ts";
import { SnapshotWriter } from "../lib/durability/snapshot.ts";
const items = testItems(1e5, Date.now() / 1000);
const res: Record<string, number[]> = {};
for (let r = 0; r < 6; r++) {
  for (const hint of [64 * 1024, 20e6]) {
    const c = process.cpuUsage();
    const w = new SnapshotWriter({ child: "a", seq: 1, taken: 0, applied: [] }, hint);
    for (const it of items) w.add(it);
    w.pieces();
    const d = process.cpuUsage(c);
    (res[hint] ??= []).push(Math.round((d.user + d.system) / 1000));
  }
}
console.log(res);
