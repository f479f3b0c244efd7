/**
 * Shared by the snapshot tests: the test handler's class registry, resealed
 * snapshot text, and a clock that moves at a snapshot's fix.
 */

import { crc32 } from "node:zlib";
import type { ChildRuntime } from "../lib/child/runtime.ts";
import { ClassRegistry } from "../lib/durability/snapshot.ts";
import type { FakeClock } from "../lib/queue/clock.ts";
import * as testHandler from "../workers/handlers/test.ts";

/** A registry holding the test handler's item and task classes. */
export function registry(): ClassRegistry {
  const r = new ClassRegistry();
  r.registerModule(testHandler);
  return r;
}

/**
 * Snapshot text with its body lines (everything after the header, split at
 * newlines) changed by `edit`, and the header's `bytes` and `crc` made to
 * match again, so the change is read past the checksum; `head` sets other
 * header fields.
 */
export function resealSnapshot(
  text: string,
  edit: (body: string[]) => string[],
  head: Record<string, unknown> = {},
): string {
  const [first, ...body] = text.split("\n");
  const bytes = new TextEncoder().encode(edit(body).join("\n"));
  const header = {
    ...JSON.parse(first!),
    ...head,
    bytes: bytes.length,
    crc: crc32(bytes).toString(16).padStart(8, "0"),
  };
  return JSON.stringify(header) + "\n" + new TextDecoder().decode(bytes);
}

/**
 * Advances `clock` by `seconds` once the runtime's next snapshot has fixed
 * its state (the call that sets its hooks; the alerts' gate alone is set
 * before it), so every task due by then runs during the slices. Returns the
 * advance, to await once the snapshot is written (undefined if none came).
 */
export function advanceAtFix(
  runtime: ChildRuntime,
  clock: FakeClock,
  seconds: number,
): () => Promise<void> | undefined {
  const snapshotting = runtime.snapshotting.bind(runtime);
  let advanced: Promise<void> | undefined;
  runtime.snapshotting = (...args) => {
    snapshotting(...args);
    if (args.length > 1) advanced ??= clock.advance(seconds);
  };
  return () => advanced;
}
