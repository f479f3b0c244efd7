/**
 * The README's handler examples compile as written: every TypeScript block
 * that imports the handler API is type-checked against the real modules.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { ROOT, tempDir } from "./helpers.ts";

const README = await Deno.readTextFile(join(ROOT, "README.md"));
const BLOCKS = [...README.matchAll(/```ts\n([\s\S]*?)```/g)]
  .map((m) => m[1]!)
  .filter((code) => code.includes("../../lib/mod.ts") || code.includes("../../lib/gracedb/mod.ts"));

Deno.test("the README's handler examples type-check as written", async () => {
  assert.ok(BLOCKS.length >= 1, "the README shows at least one handler");
  await using dir = await tempDir();
  const files: string[] = [];
  for (const [i, code] of BLOCKS.entries()) {
    // Written as if in workers/handlers/: point the imports at the real modules.
    const text = code.replaceAll("../../lib/", new URL("../lib/", import.meta.url).href);
    const file = join(dir.path, `example_${i}.ts`);
    await Deno.writeTextFile(file, text);
    files.push(file);
  }
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["check", "--config", join(ROOT, "deno.json"), ...files],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.ok(out.success, new TextDecoder().decode(out.stderr));
});
