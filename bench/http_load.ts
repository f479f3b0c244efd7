/**
 * The load of `bench/http_bench.ts`, in a process of its own so that it
 * does not share the listener's event loop: `CLIENTS` viewers, each
 * loading the status page (the page, then its event stream until the
 * first update) and again `PAUSE` ms after, until stdin closes. Prints the
 * page loads done.
 *
 * Usage: deno run --allow-net bench/http_load.ts URL CLIENTS PAUSE
 */

const [url, clients, pause] = [Deno.args[0]!, Number(Deno.args[1]), Number(Deno.args[2])];
let loads = 0;
let failures = 0;
let stopping = false;

async function load(): Promise<void> {
  const page = await fetch(url);
  await page.text();
  const events = await fetch(`${url}events`);
  const reader = events.body!.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  while (!text.includes("event: update")) {
    const { value, done } = await reader.read();
    if (done) break;
    text += value;
  }
  await reader.cancel();
}

async function viewer(): Promise<void> {
  while (!stopping) {
    try {
      await load();
      loads++;
      if (pause > 0) await new Promise((r) => setTimeout(r, pause));
    } catch {
      failures++;
    }
  }
}

const viewers = Array.from({ length: clients }, viewer);
// The bench closes stdin to stop the load.
for await (const _ of Deno.stdin.readable) { /* wait */ }
stopping = true;
await Promise.all(viewers);
console.log(JSON.stringify({ loads, failures }));
