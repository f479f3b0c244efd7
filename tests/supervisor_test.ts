import assert from "node:assert/strict";
import { join } from "node:path";
import { loadListenerConfig } from "../lib/config/config.ts";
import { Logger, type LogRecord } from "../lib/core/log.ts";
import {
  ChildDiedError,
  ChildStartError,
  Supervisor,
  type SupervisorOptions,
} from "../lib/listener/supervisor.ts";
import { copyFixtures, jsonLines, ROOT, tempDir } from "./helpers.ts";

const MOD = new URL("../lib/mod.ts", import.meta.url).href;

/** A real supervisor with real workers; collects what they say. */
async function start(
  configPath: string,
  options: Partial<SupervisorOptions> = {},
) {
  const lines: string[] = [];
  const main: LogRecord[] = [];
  const fatal: ChildDiedError[] = [];
  const changed = { n: 0 };
  const supervisor = new Supervisor({
    config: await loadListenerConfig(configPath),
    stateDir: join(configPath, "..", "state"),
    logFormat: "json",
    log: new Logger({
      child: null,
      format: "json",
      sinks: [(_l, r) => main.push(r)],
    }),
    identity: { hostname: "h", username: "u", pid: 1 },
    ...options,
  });
  supervisor.events.on("line", ({ text }) => lines.push(text));
  supervisor.events.on("fatal", ({ error }) => fatal.push(error));
  supervisor.events.on("changed", () => changed.n++);
  await supervisor.start();
  return {
    supervisor,
    lines,
    main,
    fatal,
    /** Sends the probe handler an alert of this type. */
    probe: (alertType: string) =>
      supervisor.deliver({
        child: "probe",
        node: "n",
        id: null,
        alert: { uid: "G1", alert_type: alertType },
        t0: Date.now() / 1000,
      }),
    events: (name: string) => jsonLines(lines.join("\n")).filter((e) => e.event === name),
    async until(what: () => boolean, seconds = 10) {
      const end = Date.now() + seconds * 1000;
      while (!what()) {
        if (Date.now() > end) throw new Error("Timed out waiting");
        await new Promise((r) => setTimeout(r, 20));
      }
    },
  };
}

Deno.test("Supervisor runs each section in its own worker and routes alerts to it", async () => {
  await using dir = await tempDir();
  await copyFixtures(dir.path);
  const s = await start(join(dir.path, "lvalert_listenMP.ini"));
  const t0 = Date.now() / 1000;
  s.supervisor.deliver({
    child: "burst",
    node: "burst_cwb_allsky",
    id: "b1",
    alert: { uid: "G9", alert_type: "new" },
    t0,
  });
  s.supervisor.deliver({
    child: "gstlal watcher",
    node: "cbc_gstlal",
    id: "a1",
    alert: { uid: "T1", alert_type: "new" },
    t0,
  });
  await s.until(() => s.events("item_completed").length === 2);
  const byChild = s.events("task_executed").map((e) => `${e.child}:${e.graceid}:${e.task}`).sort();
  assert.deepEqual(byChild, [
    "burst:G9:print@1s",
    "burst:G9:print@2s",
    "burst:G9:print@3s",
    "burst:G9:repeat",
    "burst:G9:repeat",
    "gstlal watcher:T1:print@1s",
    "gstlal watcher:T1:print@2s",
    "gstlal watcher:T1:print@3s",
    "gstlal watcher:T1:repeat",
    "gstlal watcher:T1:repeat",
  ]);
  // The child tells its queue's state at most 10 ms after a task run.
  await s.until(() => s.supervisor.isIdle());
  await s.supervisor.shutdown();
  assert.deepEqual(s.supervisor.status().map((c) => c.state), [
    "stopped",
    "stopped",
  ]);
  const log = await Deno.readTextFile(
    join(dir.path, "test_childConfig-test.log"),
  );
  assert.match(log, /"event":"task_executed"/);
  assert.equal(s.fatal.length, 0);
});

function probeFiles(extra = "", death = "exit") {
  return {
    "l.ini":
      `[probe]\nnodes = n\nchildConfig = c.ini\ntask_timeout = 0.5\non_child_death = ${death}\n`,
    "c.ini": `[general]\nprocess_type = probe\nhandler = probe.ts\nlog_directory = logs\n${extra}`,
    "probe.ts": `
import { QueueItem, Task } from "${MOD}";
async function attempt(what, fn) {
  try { await fn(); return what + ": allowed"; }
  catch (e) { return what + ": " + (/Requires .* access/.test(e.message) ? "denied" : e.name); }
}
class Probe extends Task {
  async execute(ctx) {
    const results = [
      await attempt("read", () => Deno.readTextFile("/etc/hostname")),
      await attempt("write", () => Deno.writeTextFile("${ROOT}/should-not-exist", "x")),
      await attempt("env", () => Deno.env.get("HOME")),
      await attempt("run", () => new Deno.Command("true").output()),
      await attempt("net", () => Deno.connect({ hostname: "127.0.0.1", port: 65000 }).then((c) => c.close())),
      await attempt("sys", () => Deno.hostname()),
      await attempt("files", () => Deno.writeTextFile(ctx.filesDirectory + "/ok.txt", "x")),
      await attempt("logdir", () => Deno.writeTextFile(ctx.logDirectory + "/c.ini", "x")),
    ];
    ctx.log.event("info", "probe", { results });
  }
}
class Hang extends Task { execute() { for (;;) {} } }
class Crash extends Task { execute() { setTimeout(() => { throw new Error("uncaught in worker"); }, 0); } }
export function parseAlert(ctx, alert, t0) {
  const task = alert.alert_type === "new" ? new Probe(0) : alert.alert_type === "update" ? new Hang(0) : new Crash(0);
  ctx.queue.insert(new QueueItem(t0, [task]));
}
`,
  };
}

Deno.test("Supervisor gives a worker only its section's permissions", async (t) => {
  await t.step(
    "by default: read code and childConfig, write its own files folder, nothing else",
    async () => {
      await using dir = await tempDir(probeFiles());
      const s = await start(join(dir.path, "l.ini"));
      s.probe("new");
      await s.until(() => s.events("probe").length === 1);
      await s.supervisor.shutdown();
      assert.deepEqual(s.events("probe")[0]?.results, [
        "read: denied",
        "write: denied",
        "env: denied",
        "run: denied",
        "net: denied",
        "sys: denied",
        "files: allowed",
        "logdir: denied",
      ]);
    },
  );
  await t.step(
    "grants in the childConfig open exactly what they name",
    async () => {
      await using dir = await tempDir(
        probeFiles(
          "allow_env = HOME\nallow_sys = hostname\nallow_net = 127.0.0.1:65000\n",
        ),
      );
      const s = await start(join(dir.path, "l.ini"));
      s.probe("new");
      await s.until(() => s.events("probe").length === 1);
      await s.supervisor.shutdown();
      const results = s.events("probe")[0]?.results as string[];
      assert.deepEqual(results.filter((r) => !r.startsWith("net")), [
        "read: denied",
        "write: denied",
        "env: allowed",
        "run: denied",
        "sys: allowed",
        "files: allowed",
        "logdir: denied",
      ]);
      assert.notEqual(
        results[4],
        "net: denied",
        "net to the granted host is permitted (the connection itself may fail)",
      );
    },
  );
});

Deno.test("Supervisor reports a child whose worker dies, by name", async () => {
  await using dir = await tempDir(probeFiles());
  const s = await start(join(dir.path, "l.ini"));
  s.probe("label");
  await s.until(() => s.fatal.length === 1);
  assert.ok(s.fatal[0] instanceof ChildDiedError);
  assert.equal(s.fatal[0].child, "probe");
  assert.match(
    s.fatal[0].message,
    /Child \[probe\] died: .*uncaught in worker/,
  );
  assert.equal(s.main.filter((r) => r.event === "child_died").length, 1);
  await s.supervisor.shutdown(1);
});

Deno.test("Supervisor terminates a child whose task hangs past its time limit", async () => {
  await using dir = await tempDir(probeFiles());
  const s = await start(join(dir.path, "l.ini"), {
    pingInterval: 0.1,
    hangGrace: 0.5,
  });
  s.probe("update");
  await s.until(() => s.fatal.length === 1);
  assert.match(s.fatal[0]!.message, /no answer for \d+ s \(a task is hung\)/);
  await s.supervisor.shutdown(1);
});

Deno.test("Supervisor.start() fails with the child's name when its handler cannot load", async (t) => {
  await t.step("a handler without parseAlert", async () => {
    await using dir = await tempDir({
      "l.ini": "[bad one]\nnodes = n\nchildConfig = c.ini\n",
      "c.ini": "[general]\nprocess_type = x\nhandler = h.ts\n",
      "h.ts": "export const nothing = 1;\n",
    });
    await assert.rejects(start(join(dir.path, "l.ini")), (e: unknown) => {
      assert.ok(e instanceof ChildStartError);
      assert.equal(e.child, "bad one");
      assert.match(
        e.message,
        /h\.ts: Handler does not export a parseAlert function/,
      );
      return true;
    });
  });
  await t.step("a handler's own config check", async () => {
    await using dir = await tempDir({
      "l.ini": "[a]\nnodes = n\nchildConfig = c.ini\n",
      "c.ini": "[general]\nprocess_type = test\n[test]\ndelays = 1 soon\n",
    });
    await assert.rejects(
      start(join(dir.path, "l.ini")),
      /c\.ini:4: \[test\] delays must be numbers of seconds >= 0, got "soon"/,
    );
  });
  await t.step("a handler with a syntax error", async () => {
    await using dir = await tempDir({
      "l.ini": "[a]\nnodes = n\nchildConfig = c.ini\n",
      "c.ini": "[general]\nprocess_type = x\nhandler = h.ts\n",
      "h.ts": "export function parseAlert( {\n",
    });
    await assert.rejects(
      start(join(dir.path, "l.ini")),
      /Child \[a\] could not start: .*h\.ts/s,
    );
  });
});

Deno.test("Supervisor: alerts still being journaled at the stop are applied before it", async () => {
  await using dir = await tempDir();
  await copyFixtures(dir.path);
  const s = await start(join(dir.path, "lvalert_listenMP.ini"));
  let applied = 0;
  s.supervisor.events.on("ack", ({ ok }) => ok && applied++);
  const t0 = Date.now() / 1000;
  for (let i = 0; i < 600; i++) {
    s.supervisor.deliver({
      child: "burst",
      node: "burst_cwb_allsky",
      id: `b${i}`,
      alert: { uid: `G${i}`, alert_type: "new" },
      t0,
    });
  }
  // The stop comes while the journal is still writing them.
  await s.supervisor.shutdown();
  assert.equal(applied, 600, "every alert taken was applied");
  assert.deepEqual(s.supervisor.status().map((c) => c.state), ["stopped", "stopped"]);
});
