/**
 * SortedQueue against the original's data structure (a list kept sorted by
 * linear insertion, popped from the front), side by side in one run.
 */

import { QueueItem, Task } from "../lib/mod.ts";
import { SortedQueue } from "../lib/queue/sorted_queue.ts";
import { PrintAlertTask, TestItem } from "../workers/handlers/test.ts";

class Noop extends Task {
  execute(): void {}
}

/** The original design: a sorted array with linear insertion. */
class SortedArray {
  items: QueueItem[] = [];

  insert(item: QueueItem): void {
    const e = item.expiration;
    let i = 0;
    while (i < this.items.length && this.items[i]!.expiration <= e) i++;
    this.items.splice(i, 0, item);
  }

  pop(): QueueItem | undefined {
    return this.items.shift();
  }

  nextExpiration(): number | undefined {
    return this.items[0]?.expiration;
  }
}

function makeItem(expiration: number): QueueItem {
  return new QueueItem(0, [new Noop(expiration)]);
}

interface Queue {
  insert(i: QueueItem): void;
  pop(): QueueItem | undefined;
  nextExpiration(): number | undefined;
}

/**
 * The hold model: pop the earliest, insert one due a random while after
 * it; ops/s for ~budget ms.
 */
function measure(
  queue: Queue,
  pending: number,
  budgetMs: number,
): number {
  // xorshift32: cheap enough not to dominate what is measured.
  let seed = 2463534242;
  const random = () => {
    seed ^= seed << 13;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    return (seed >>> 0) / 4294967296;
  };
  for (let i = 0; i < pending; i++) queue.insert(makeItem(random() * pending));
  const spare = Array.from({ length: 1024 }, () => makeItem(0));
  let ops = 0;
  const start = performance.now();
  let now = start;
  while (now - start < budgetMs) {
    for (let k = 0; k < 256; k++) {
      const now = queue.nextExpiration()!;
      const item = queue.pop()!;
      const next = spare[ops & 1023]!;
      next.tasks[0]!.expiration = now + random() * pending;
      spare[ops & 1023] = item;
      queue.insert(next);
      ops++;
    }
    now = performance.now();
  }
  return ops / ((now - start) / 1000);
}

export interface QueueRow {
  pending: number;
  heap: number;
  baseline: number;
}

export function benchQueue(budgetMs = 700): QueueRow[] {
  return [1e3, 1e4, 1e5].map((pending) => ({
    pending,
    heap: measure(
      new SortedQueue({ maxComplete: 100, maxFrac: 0.5 }),
      pending,
      budgetMs,
    ),
    baseline: measure(new SortedArray(), pending, budgetMs),
  }));
}

/** Heap bytes per pending item of two tasks (needs --v8-flags=--expose-gc). */
export function benchMemory(count = 1e5): number {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) throw new Error("Run with --v8-flags=--expose-gc to measure memory");
  gc();
  const before = Deno.memoryUsage().heapUsed;
  const queue = new SortedQueue();
  for (let i = 0; i < count; i++) {
    // As the test handler builds them: one item per alert, each its own
    // graceid, two tasks holding the (parsed) alert.
    const alert = {
      uid: `G${i}`,
      alert_type: "new",
      object: { graceid: `G${i}` },
    };
    queue.insert(
      new TestItem(i, [
        new PrintAlertTask(5, alert),
        new PrintAlertTask(10, alert),
      ], { graceid: alert.uid }),
    );
  }
  gc();
  const after = Deno.memoryUsage().heapUsed;
  if (queue.size !== count) throw new Error("queue lost items");
  return (after - before) / count;
}
