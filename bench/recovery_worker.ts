/**
 * Benchmark: recovers a child from a state folder in a fresh heap, as a
 * restarted child does, and reports what it measured. As a worker, it
 * answers a `{dir, expect}` message; as a program (`deno run ...
 * recovery_worker.ts DIR EXPECT`, a fresh process: its heap's memory
 * comes fresh from the system), it prints the result as JSON.
 */

import { recoverChild } from "./durability_bench.ts";

// A worker's entry module is its `import.meta.main` too: tell them apart by the global scope.
if (!("DedicatedWorkerGlobalScope" in globalThis)) {
  const [dir, expect] = Deno.args;
  console.log(JSON.stringify(await recoverChild(dir!, Number(expect))));
} else {
  self.onmessage = async (e: MessageEvent<{ dir: string; expect: number }>) => {
    try {
      self.postMessage({ run: await recoverChild(e.data.dir, e.data.expect) });
    } catch (error) {
      self.postMessage({ error: (error as Error)?.stack ?? String(error) });
    }
  };
}
