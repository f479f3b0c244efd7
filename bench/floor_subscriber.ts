/**
 * The XMPP benchmark's floor: the listener's design with nothing else.
 * Each alert's payload is checked as the router checks it, journaled by
 * the listener's own journal and group commit, and once durable posted,
 * a batch at a time, to a worker that parses it and queues an item to
 * run 0.5 s later in a plain array (bench/floor_worker.ts); the worker's
 * answer lets the copy held for it go. No seen ids, child state, logs,
 * metrics or handler API: what the design costs at the least, beside
 * what the listener costs. Prints one JSON line per phase, as the bare
 * subscriber does.
 *
 * Usage: floor_subscriber.ts PORT PASSWORD NODE DIR  (trust the CA with DENO_CERT)
 */

import { join } from "node:path";
import { readAlert } from "../lib/core/alert.ts";
import { GroupCommit } from "../lib/durability/group_commit.ts";
import { Journal, type JournalEntry } from "../lib/durability/journal.ts";
import { STREAM_GATHER_MS } from "../lib/listener/child_link.ts";
import { subscribe } from "./plain_subscriber.ts";
import type { FloorAlert, FromFloor } from "./floor_worker.ts";

const [port = "", password = "", node = "", dir = ""] = Deno.args;
const now = () => performance.timeOrigin + performance.now();
const { journal } = await Journal.open(join(dir, "floor-journal.log"));
const worker = new Worker(new URL("./floor_worker.ts", import.meta.url), { type: "module" });
/** Payloads posted and not yet applied, by journal position (kept to post again). */
const held = new Map<number, string>();
worker.onmessage = ({ data }: MessageEvent<FromFloor>) => {
  if (data.phase) console.log(JSON.stringify(data.phase));
  for (const [seq] of held) {
    if (seq > data.applied) break;
    held.delete(seq);
  }
};
const outbox = new GroupCommit<JournalEntry>({
  write: (batch) => journal.append(batch),
  committed: (batch) => {
    const alerts: FloorAlert[] = [];
    for (const { seq, t0, text } of batch) {
      held.set(seq, text);
      alerts.push({ seq, t0, text });
    }
    worker.postMessage(alerts);
  },
  failed: (error) => console.error(`floor journal: ${error}`),
  gatherMs: STREAM_GATHER_MS,
});
let seq = 0;
await subscribe({ port, password, node, resource: "floor" }, ({ node, id, text }) => {
  const t0 = now() / 1000;
  if (readAlert(text).ok) outbox.push({ seq: ++seq, node, id, t0, text: text.trim() });
});
