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
  // Typed as a worker's scope: the file is also a program, so it cannot take the worker lib.
  const scope = self as unknown as {
    onmessage: (e: MessageEvent<{ dir: string; expect: number }>) => void;
    postMessage(message: unknown): void;
  };
  scope.onmessage = async (e) => {
    try {
      scope.postMessage({ run: await recoverChild(e.data.dir, e.data.expect) });
    } catch (error) {
      scope.postMessage({ error: (error as Error)?.stack ?? String(error) });
    }
  };
}
