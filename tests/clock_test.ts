/**
 * The system clock's doorbell: a thread waiting out a timer's last
 * milliseconds sleeps until the target or the next message posted to it.
 */

import assert from "node:assert/strict";
import { nextTurn } from "../lib/core/async.ts";
import { ringDoorbell, systemClock, waitForPost } from "../lib/queue/clock.ts";

/** How many resources the runtime holds open (ports among them). */
function openResources(): number {
  // deno-lint-ignore no-explicit-any
  const core = (Deno as any)[(Deno as any).internal]?.core;
  assert.equal(typeof core?.resources, "function", "Deno's resource table is readable");
  return Object.keys(core.resources()).length;
}

/** A worker from source text (module URLs made absolute). */
function workerFrom(code: string): { worker: Worker; [Symbol.dispose](): void } {
  const script = URL.createObjectURL(new Blob([code], { type: "application/javascript" }));
  const worker = new Worker(script, { type: "module" });
  return {
    worker,
    [Symbol.dispose]() {
      worker.terminate();
      URL.revokeObjectURL(script);
    },
  };
}

const CLOCK = new URL("../lib/queue/clock.ts", import.meta.url).href;

Deno.test("waitForPost: a message already counted and not taken ends the wait at once", () => {
  const bell = new Int32Array(new SharedArrayBuffer(4));
  ringDoorbell(bell);
  // Ten seconds would fail the test by its length; "pending" comes back without sleeping.
  assert.equal(waitForPost(bell, 0, 10_000), "pending");
  // Taken: nothing waits, so the wait runs to its end.
  assert.equal(waitForPost(bell, 1, 5), "timed-out");
  // The count wraps around without losing track.
  Atomics.store(bell, 0, 2 ** 31 - 1);
  ringDoorbell(bell);
  assert.equal(Atomics.load(bell, 0), -(2 ** 31));
  assert.equal(waitForPost(bell, 2 ** 31 - 1, 10_000), "pending");
  assert.equal(waitForPost(bell, -(2 ** 31), 5), "timed-out");
});

Deno.test("waitForPost: a message posted during the wait wakes the sleeper", async () => {
  using w = workerFrom(`
    import { ringDoorbell } from "${CLOCK}";
    self.onmessage = ({ data }) => {
      const bell = new Int32Array(data);
      // Rings once the other thread sleeps: it must wake before its timeout.
      setTimeout(() => ringDoorbell(bell), 50);
      self.postMessage("armed");
    };`);
  const outcomes: string[] = [];
  // The ring may land before the wait starts on a stalled machine ("pending"); try again then.
  for (let attempt = 0; attempt < 5 && outcomes.at(-1) !== "posted"; attempt++) {
    const bell = new Int32Array(new SharedArrayBuffer(4));
    const armed = new Promise((resolve) => w.worker.onmessage = resolve);
    w.worker.postMessage(bell.buffer);
    await armed;
    outcomes.push(waitForPost(bell, 0, 5_000));
    assert.equal(Atomics.load(bell, 0), 1);
  }
  assert.equal(outcomes.at(-1), "posted", `outcomes: ${outcomes.join(", ")}`);
});

Deno.test("precise timers with a doorbell each fire once, never early, and let messages through", async () => {
  using w = workerFrom(`
    import { systemClock, takeMessages, useDoorbell } from "${CLOCK}";
    const fired = [];
    let answered = 0;
    self.onmessage = ({ data }) => take(data);
    const take = takeMessages((data) => {
      if (data.bell) {
        useDoorbell(new Int32Array(data.bell));
        // Timers 4 ms apart: each waits out its last milliseconds.
        const start = performance.now();
        for (let i = 0; i < 40; i++) {
          const target = start + 10 + 4 * i;
          systemClock.setTimer(() => {
            fired.push({ i, early: target - performance.now() });
            if (fired.length === 40) self.postMessage({ fired, answered });
          }, target - performance.now());
        }
        return;
      }
      answered++;
    });`);
  const bell = new Int32Array(new SharedArrayBuffer(4));
  const done = new Promise<{ fired: { i: number; early: number }[]; answered: number }>(
    (resolve) => w.worker.onmessage = (e) => resolve(e.data),
  );
  const post = (message: unknown) => {
    w.worker.postMessage(message);
    ringDoorbell(bell);
  };
  post({ bell: bell.buffer });
  // Messages while the timers wait: each rings the bell.
  let sent = 0;
  const sending = setInterval(() => {
    post({ n: ++sent });
  }, 1);
  const { fired, answered } = await done;
  clearInterval(sending);
  // Each fires once (separate timers promise no order among themselves).
  assert.deepEqual(fired.map((f) => f.i).sort((a, b) => a - b), [...Array(40).keys()]);
  const early = fired.filter((f) => f.early > 0);
  assert.deepEqual(early, [], "no timer fires before its target");
  // Messages were taken while the timers waited, not held until they were done.
  assert.ok(answered >= 10, `${answered} of ${sent} messages answered before the last timer`);
});

Deno.test("a message counts as taken only after the microtasks its handler queued", async () => {
  // In a worker: the doorbell is the thread's own.
  using w = workerFrom(`
    import { messagesPending, ringDoorbell, takeMessages, useDoorbell } from "${CLOCK}";
    const bell = new Int32Array(new SharedArrayBuffer(4));
    useDoorbell(bell);
    const seen = [];
    const look = (step) => seen.push(step + (messagesPending() ? ": pending" : ": taken"));
    // Like the child host: the alert's handling goes on after an await.
    const take = takeMessages(async () => {
      look("handler");
      await null;
      look("handling, after its await");
    });
    ringDoorbell(bell);
    look("posted");
    take("alert");
    // What a timer's wait-out, run next in the same turn, would see.
    look("handler returned");
    await new Promise((resolve) => setTimeout(resolve, 0));
    look("next turn");
    self.postMessage(seen);`);
  const seen = await new Promise((resolve) => w.worker.onmessage = (e) => resolve(e.data));
  assert.deepEqual(seen, [
    "posted: pending",
    "handler: pending",
    "handler returned: pending",
    "handling, after its await: pending",
    "next turn: taken",
  ]);
});

Deno.test("nextTurn: resolves after what was ready ran, and holds nothing open", async () => {
  const order: string[] = [];
  const channel = new MessageChannel();
  const heard = new Promise<void>((resolve) =>
    channel.port2.onmessage = () => {
      order.push("message");
      resolve();
    }
  );
  channel.port1.postMessage(null);
  queueMicrotask(() => order.push("microtask"));
  await nextTurn();
  order.push("next turn");
  await heard;
  channel.port1.close();
  assert.deepEqual(order, ["microtask", "message", "next turn"]);
  // Both its ports are closed: nothing stays in the resource table...
  const open = openResources();
  for (let i = 0; i < 200; i++) await nextTurn();
  assert.equal(openResources(), open, "ports left open");
  // ...and a program that awaited it still ends by itself.
  const ASYNC = new URL("../lib/core/async.ts", import.meta.url).href;
  const program = new Deno.Command(Deno.execPath(), {
    args: [
      "eval",
      `import { nextTurn } from "${ASYNC}"; for (let i = 0; i < 3; i++) await nextTurn();`,
    ],
    stdout: "null",
    stderr: "inherit",
  }).spawn();
  const killer = setTimeout(() => program.kill("SIGKILL"), 10_000);
  const status = await program.status;
  clearTimeout(killer);
  assert.equal(status.code, 0, "the program did not end by itself");
});

Deno.test("a precise timer that waited in turns of the event loop leaves no port open", async () => {
  const open = openResources();
  for (let i = 0; i < 20; i++) {
    // Armed a millisecond early, each waits out the rest in turns (no doorbell here).
    await new Promise<void>((resolve) => systemClock.setTimer(resolve, 3));
  }
  // A cancelled one too, while it waits.
  const cancel = systemClock.setTimer(() => {}, 1);
  await new Promise((r) => setTimeout(r, 1));
  cancel();
  assert.equal(openResources(), open, "ports left open");
});
