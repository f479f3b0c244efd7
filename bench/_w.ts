import { testItems } from "./durability_bench.ts";
import { SnapshotWriter } from "../lib/durability/snapshot.ts";
const items = testItems(1e5, Date.now() / 1000);
function t(name: string, f: () => void) {
  const s = performance.now();
  f();
  console.log(name.padEnd(24), (performance.now() - s).toFixed(0), "ms");
}
for (let r = 0; r < 3; r++) {
  t("writer", () => {
    const w = new SnapshotWriter({ child: "a", seq: 1, taken: 0, applied: [] });
    for (const it of items) w.add(it);
    w.pieces();
  });
  t("keys+rows", () => {
    let n = 0;
    for (const it of items) {
      const k = Object.keys(it);
      const row: unknown[] = [0];
      for (const x of k) row.push((it as any)[x]);
      for (const task of it.tasks) {
        const tk = Object.keys(task);
        const tr: unknown[] = [0];
        for (const x of tk) tr.push((task as any)[x]);
        row.push(tr);
      }
      n += row.length;
    }
  });
  t("stringify rows", () => {
    for (const it of items) {
      JSON.stringify([1, it.name, it.t0, it.graceid, [[
        0,
        it.tasks[0]!.name,
        it.tasks[0]!.timeout,
        it.tasks[0]!.expiration,
        "G1",
        "new",
        "new / event far=1e-9",
      ], [
        0,
        it.tasks[1]!.name,
        it.tasks[1]!.timeout,
        it.tasks[1]!.expiration,
        "G1",
        "new",
        "new / event far=1e-9",
      ]]]);
    }
  });
  t("stringify item", () => {
    for (const it of items) {
      JSON.stringify(it);
      JSON.stringify(it.tasks);
    }
  });
  t("numbers", () => {
    for (const it of items) {
      String(it.t0);
      String(it.tasks[0]!.expiration);
      String(it.tasks[1]!.expiration);
    }
  });
}
