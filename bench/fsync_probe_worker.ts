/// <reference no-default-lib="true" />
/// <reference lib="deno.worker" />
/**
 * The fsync probe as a background load: in its own thread, one 1 KB
 * write plus `fdatasync` every 2 ms (a journal's pace under the paced
 * alerts), from `start` until `stop`; then it posts how long each took,
 * in milliseconds. The benchmark runs it while the bare subscriber takes
 * paced alerts (a phase of its own), so the probe sees the disk and the
 * CPUs under the load a journal meets, not as they are between rounds.
 *
 * @module
 */

let running = false;

self.onmessage = async (
  event: MessageEvent<{ type: "start"; path: string } | { type: "stop" }>,
) => {
  const message = event.data;
  if (message.type === "stop") {
    running = false;
    return;
  }
  running = true;
  const file = Deno.openSync(message.path, { write: true, create: true, append: true });
  const line = new TextEncoder().encode("x".repeat(1023) + "\n");
  const took: number[] = [];
  try {
    while (running) {
      const start = performance.now();
      file.writeSync(line);
      file.syncDataSync();
      took.push(performance.now() - start);
      await new Promise((r) => setTimeout(r, 2));
    }
  } finally {
    file.close();
    Deno.removeSync(message.path);
  }
  self.postMessage(took);
};
