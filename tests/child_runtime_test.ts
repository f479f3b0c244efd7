import assert from "node:assert/strict";
import type { Alert, JsonObject } from "../lib/core/alert.ts";
import { ChildRuntime, type ChildRuntimeOptions } from "../lib/child/runtime.ts";
import { FakeClock } from "../lib/queue/clock.ts";
import { type ChildContext, QueueItem, Task } from "../lib/queue/queue_item.ts";
import type { HandlerModule } from "../lib/child/handler.ts";
import { Ini, parseIni } from "../lib/config/ini.ts";
import { Logger, type LogRecord } from "../lib/core/log.ts";
import * as testHandler from "../workers/handlers/test.ts";

interface Harness {
  runtime: ChildRuntime;
  clock: FakeClock;
  records: LogRecord[];
  mails: { subject: string; body: string; recipients: readonly string[] }[];
  published: { node: string; payload: JsonObject }[];
  events(name: string): LogRecord[];
  advance(seconds: number): Promise<void>;
}

function harness(
  handler: HandlerModule = testHandler,
  ini = "[general]\nprocess_type = test\n[test]\ndelays = 1 2 3\nrepeats = 2\ninterval = 1\n",
  options: Partial<ChildRuntimeOptions> = {},
): Harness {
  const clock = new FakeClock(1_000);
  const records: LogRecord[] = [];
  const mails: Harness["mails"] = [];
  const published: Harness["published"] = [];
  const runtime = new ChildRuntime({
    child: "kid",
    handler,
    config: new Ini(parseIni(ini, "child.ini")),
    log: new Logger({
      child: "kid",
      format: "json",
      now: () => clock.now(),
      sinks: [(_line, record) => records.push(record)],
    }),
    logDirectory: "/nonexistent",
    recipients: ["ops@example.org"],
    clock,
    identity: { hostname: "h", username: "u", pid: 42, config: "listener.ini" },
    notify: (subject, body, recipients) => mails.push({ subject, body, recipients }),
    publish: (node, payload) => published.push({ node, payload }),
    ...options,
  });
  return {
    runtime,
    clock,
    records,
    mails,
    published,
    events: (name) => records.filter((r) => r.event === name),
    advance: (seconds) => clock.advance(seconds, () => runtime.settled()),
  };
}

const NEW: Alert = { uid: "G1", alert_type: "new", object: { graceid: "G1" } };

Deno.test("ChildRuntime runs every task of a multi-task item at its time, on one timer", async () => {
  const h = harness();
  await h.runtime.deliver(NEW, 1_000, { node: "n", id: "i1" });
  assert.equal(h.runtime.queue.size, 1);
  assert.equal(h.clock.pending, 1, "one timer, no polling");
  await h.advance(0.999);
  assert.equal(h.events("task_executed").length, 0);
  await h.advance(10);
  const ran = h.events("task_executed").map((r) => [r.task, r.due]);
  assert.deepEqual(ran, [
    ["print@1s", 1_001],
    ["repeat", 1_001],
    ["print@2s", 1_002],
    ["repeat", 1_002],
    ["print@3s", 1_003],
  ]);
  assert.ok(h.events("task_executed").every((r) => r.lateness_ms === 0));
  assert.deepEqual(h.events("repeat").map((r) => r.run), [1, 2]);
  assert.equal(h.events("item_completed").length, 1);
  assert.equal(h.runtime.queue.size, 0);
  assert.equal(h.clock.pending, 0);
  assert.deepEqual(h.events("alert")[0], {
    ts: h.events("alert")[0]!.ts,
    level: "info",
    child: "kid",
    event: "alert",
    node: "n",
    uid: "G1",
    alert_type: "new",
    id: "i1",
    schema: "legacy",
    t0: 1_000,
  });
});

class Boom extends Task {
  execute(): void {
    throw new Error("boom");
  }
}

class Note extends Task {
  execute(ctx: ChildContext, item: QueueItem): void {
    ctx.log.event("info", "note", { graceid: item.graceid ?? null });
  }
}

class Slow extends Task {
  execute(): Promise<void> {
    return new Promise(() => {}); // never settles
  }
}

function handlerOf(
  make: (t0: number, alert: Alert) => QueueItem[],
): HandlerModule {
  return {
    parseAlert(ctx, alert, t0) {
      for (const item of make(t0, alert)) ctx.queue.insert(item);
    },
  };
}

Deno.test("ChildRuntime turns a throwing task into a failed item, a log with stack and a mail", async () => {
  const h = harness(handlerOf((t0, a) => [
    new QueueItem(t0, [new Boom(1), new Note(2)], { graceid: a.uid }),
    new QueueItem(t0, [new Note(3)], { graceid: "other" }),
  ]));
  await h.runtime.deliver(NEW, 1_000);
  await h.advance(5);
  const [failed] = h.events("task_failed");
  assert.equal(failed?.task, "Boom");
  assert.equal(failed?.error, "boom");
  assert.match(String(failed?.stack), /Error: boom\n\s+at Boom\.execute/);
  assert.deepEqual(
    h.events("item_completed").map((r) => [r.graceid, r.failed]),
    [["G1", true], ["other", false]],
  );
  assert.deepEqual(
    h.events("note").map((r) => r.graceid),
    ["other"],
    "the failed item's later task never runs",
  );
  assert.equal(h.mails.length, 1);
  // The original's execute_subject names the item (interactiveQueue.py).
  assert.match(h.mails[0]!.subject, /^WARNING: QueueItem\.execute caught an exception on h$/);
  assert.match(h.mails[0]!.body, /Error: boom/);
  assert.deepEqual(h.mails[0]!.recipients, ["ops@example.org"]);
});

Deno.test("ChildRuntime gives up on an async task after its time limit and goes on", async () => {
  const h = harness(
    handlerOf((
      t0,
    ) => [new QueueItem(t0, [new Slow(1)]), new QueueItem(t0, [new Note(2)])]),
    undefined,
    {
      taskTimeout: 5,
    },
  );
  await h.runtime.deliver(NEW, 1_000);
  // The hung task holds the child's queue, so settle on a macrotask, not on it.
  const tick = () => new Promise<void>((resolve) => setTimeout(resolve, 0));
  await h.clock.advance(1, tick);
  await h.clock.advance(5, tick);
  await h.runtime.settled();
  assert.match(
    String(h.events("task_failed")[0]?.error),
    /Slow timed out after 5 s/,
  );
  await h.advance(1);
  assert.equal(h.events("note").length, 1);
  assert.equal(h.runtime.queue.size, 0);
});

Deno.test("ChildRuntime reports a task that ends after the stop, so the last checkpoint holds it", async () => {
  const gate = Promise.withResolvers<void>();
  let started = false;
  class Gated extends Task {
    execute(): Promise<void> {
      started = true;
      return gate.promise;
    }
  }
  const reports: number[] = [];
  const h = harness(handlerOf((t0) => [new QueueItem(t0, [new Gated(1)])]), undefined, {
    onChange: (state) => reports.push(state.queue),
  });
  await h.runtime.deliver(NEW, 1_000);
  const tick = () => new Promise<void>((resolve) => setTimeout(resolve, 0));
  await h.clock.advance(1, tick);
  assert.ok(started, "the task is running");
  const stopping = h.runtime.stop();
  const before = reports.length;
  gate.resolve();
  await stopping;
  assert.deepEqual(reports.slice(before), [0], "its end is reported: the queue is empty now");
});

Deno.test("ChildRuntime logs and refuses an alert whose parseAlert throws, then goes on", async () => {
  let calls = 0;
  const h = harness({
    parseAlert() {
      if (++calls === 1) throw new Error("bad handler");
    },
  });
  const first = await h.runtime.deliver(NEW, 1_000);
  assert.deepEqual(first, {
    ok: false,
    reason: "parseAlert failed: bad handler",
  });
  assert.deepEqual(await h.runtime.deliver(NEW, 1_000), { ok: true });
  assert.equal(h.events("alert_failed").length, 1);
});

function command(name: string, object: JsonObject = {}): Alert {
  return { uid: "command", alert_type: name, object };
}

Deno.test("ChildRuntime commands", async (t) => {
  await t.step("printMessage logs its message", async () => {
    const h = harness();
    assert.deepEqual(
      await h.runtime.deliver(
        command("printMessage", { message: "hi" }),
        1_000,
      ),
      { ok: true },
    );
    await h.advance(0);
    assert.equal(h.events("command")[0]?.message, "hi");
  });
  await t.step(
    "missing and forbidden kwargs and unknown commands are refused by name",
    async () => {
      const h = harness();
      const missing = await h.runtime.deliver(command("clearGraceID"), 1_000);
      assert.deepEqual(missing, {
        ok: false,
        reason: "Command=clearGraceID is missing required kwarg=graceid",
      });
      const unknown = await h.runtime.deliver(command("noSuchCommand"), 1_000);
      assert.ok(
        !unknown.ok &&
          /unknown command "noSuchCommand"; known: .*printMessage/.test(
            unknown.reason,
          ),
      );
      const badSleep = await h.runtime.deliver(
        command("printMessage", { message: "x", sleep: -1 }),
        1_000,
      );
      assert.ok(
        !badSleep.ok && /"sleep" must be a number/.test(badSleep.reason),
      );
      assert.equal(h.events("alert_rejected").length, 3);
      assert.equal(h.runtime.queue.size, 0);
    },
  );
  await t.step("clearGraceID completes that event's items only", async () => {
    const h = harness();
    await h.runtime.deliver(NEW, 1_000);
    await h.runtime.deliver({ ...NEW, uid: "G2" }, 1_000);
    await h.runtime.deliver(command("clearGraceID", { graceid: "G1" }), 1_000);
    await h.advance(0);
    assert.equal(h.events("command")[0]?.cleared, 1);
    assert.deepEqual(h.runtime.queue.graceIds(), ["G2"]);
  });
  await t.step("clearQueue empties the queue", async () => {
    const h = harness();
    await h.runtime.deliver(NEW, 1_000);
    await h.runtime.deliver({ ...NEW, uid: "G2" }, 1_000);
    await h.runtime.deliver(command("clearQueue"), 1_000);
    await h.advance(0);
    assert.equal(h.events("command")[0]?.cleared, 2);
    assert.equal(h.runtime.queue.size, 0);
  });
  await t.step(
    "raiseException fails its item and the child goes on",
    async () => {
      const h = harness();
      await h.runtime.deliver(command("raiseException"), 1_000);
      await h.runtime.deliver(
        command("printMessage", { message: "alive" }),
        1_000,
      );
      await h.advance(0);
      assert.equal(
        h.events("task_failed")[0]?.error,
        "raiseException command received",
      );
      assert.equal(h.events("command")[0]?.message, "alive");
    },
  );
  await t.step(
    "a sleep kwarg delays a command by sleep seconds; it runs once (commands.py, CommandQueueItem)",
    async () => {
      const h = harness();
      await h.runtime.deliver(
        command("printMessage", { message: "tick", sleep: 2 }),
        1_000,
      );
      await h.advance(7);
      assert.deepEqual(h.events("task_executed").map((r) => r.due), [1_002]);
      assert.equal(h.runtime.queue.size, 0);
    },
  );
  await t.step("a sleep below one second is refused", async () => {
    const h = harness();
    const r = await h.runtime.deliver(
      command("printMessage", { message: "x", sleep: 0.001 }),
      1_000,
    );
    assert.deepEqual(r, {
      ok: false,
      reason: 'command printMessage: "sleep" must be at least 1 s',
    });
  });
  await t.step("printQueue to STDOUT logs the queue", async () => {
    const h = harness();
    await h.runtime.deliver(NEW, 1_000);
    await h.runtime.deliver(
      command("printQueue", { filename: "STDOUT" }),
      1_000,
    );
    await h.advance(0);
    const [dump] = h.events("queue");
    assert.equal(dump?.size, 1);
    assert.match(String(dump?.msg), /TestItem graceid=G1/);
  });
  await t.step("sendEmail asks for mail", async () => {
    const h = harness();
    await h.runtime.deliver(
      command("sendEmail", { subject: "s", body: "b", recipients: "a@example.org, b@example.org" }),
      1_000,
    );
    await h.advance(0);
    assert.deepEqual(h.mails, [{
      subject: "s",
      body: "b",
      recipients: ["a@example.org", "b@example.org"],
    }]);
  });
});

Deno.test("ChildRuntime answers a heartbeat request on the node it came from", async () => {
  const h = harness();
  await h.runtime.deliver(NEW, 1_000);
  const result = await h.runtime.deliver(
    { uid: "heartbeat", alert_type: "heartbeat", ptype: "request", key: "k1" },
    1_000,
    {
      node: "cbc_gstlal",
    },
  );
  assert.deepEqual(result, { ok: true });
  assert.deepEqual(h.published, [{
    node: "cbc_gstlal",
    payload: {
      uid: "heartbeat",
      alert_type: "heartbeat",
      ptype: "response",
      key: "k1",
      hostname: "h",
      user: "u",
      pid: 42,
      name: "kid",
      child: "kid",
      host: "h",
      queue: 1,
    },
  }]);
});

Deno.test("ChildRuntime warns when the queue passes warnThr, at most maxWarn times, and recovers", async () => {
  const h = harness(undefined, undefined, {
    watch: {
      warnThr: 2,
      recipients: ["ops@example.org"],
      warnDelay: 0,
      maxWarn: 2,
      hostname: "h",
      username: "u",
      config: "l.ini",
    },
  });
  for (const uid of ["A", "B", "C", "D"]) {
    await h.runtime.deliver({ ...NEW, uid }, 1_000);
  }
  const subjects = h.mails.map((m) => m.subject);
  assert.deepEqual(subjects, [
    "WARNING: queue is too long on h",
    "FINAL WARNING: queue is too long on h",
  ]);
  assert.match(h.mails[1]!.body, /This is the final warning!/);
  assert.equal(
    h.events("warning").filter((r) => r.reason === "queue_long").length,
    2,
  );
  await h.advance(10);
  assert.equal(h.mails.at(-1)?.subject, "RECOVERY: queue has shortened on h");
  assert.match(h.mails.at(-1)!.body, /Recovery has un-silenced warnings/);
  assert.equal(
    h.events("warning").filter((r) => r.reason === "queue_recovered").length,
    1,
  );
});

Deno.test("ChildRuntime catches up overdue tasks at once, in order, with their lateness", async () => {
  const h = harness();
  await h.runtime.deliver(NEW, 990); // received 10 s ago: everything is overdue
  await h.advance(0);
  const ran = h.events("task_executed").map((r) => [r.task, r.lateness_ms]);
  assert.deepEqual(ran, [
    ["print@1s", 9000],
    ["repeat", 9000],
    ["print@2s", 8000],
    ["repeat", 8000],
    ["print@3s", 7000],
  ]);
});
