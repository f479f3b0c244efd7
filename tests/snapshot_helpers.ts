/** Shared by the snapshot tests: the test handler's class registry, and resealed snapshot text. */

import { crc32 } from "node:zlib";
import { ClassRegistry } from "../lib/durability/snapshot.ts";
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
