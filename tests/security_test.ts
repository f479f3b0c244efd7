/**
 * Attacks on the listener, from a node publisher (who may send commands)
 * and from a buggy or hostile handler: each must fail, and the listener
 * must go on. Real listener processes, real files, links, subprocesses.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { ListenerProcess, runListener, tempDir } from "./helpers.ts";

const MOD = new URL("../lib/mod.ts", import.meta.url).href;
const LISTENER = "[a]\nnodes = n\nchildConfig = c.ini\n";
const TEST_CHILD = "[general]\nprocess_type = test\n[test]\ndelays = 600\nrepeats = 0\n";

function command(name: string, object: Record<string, unknown> = {}, t = 0): string {
  return JSON.stringify({ node: "n", t, payload: { uid: "command", alert_type: name, object } });
}

/** A listener on a replayed stream, stopped once `until` holds. */
async function run(
  dir: string,
  lines: string[],
  until: (l: ListenerProcess) => boolean,
  options: { env?: Record<string, string>; config?: string } = {},
): Promise<ListenerProcess> {
  await Deno.writeTextFile(join(dir, "r.jsonl"), lines.join("\n") + "\n");
  const listener = new ListenerProcess([
    ...["-c", join(dir, options.config ?? "l.ini"), "--replay", join(dir, "r.jsonl")],
    ...["--state-dir", join(dir, "state"), "--log-format", "json"],
  ], options.env ? { env: options.env } : {});
  await listener.until(() => until(listener), "the scenario");
  assert.equal(await listener.stop(), 0, listener.stderr);
  return listener;
}

Deno.test("a network printQueue cannot write outside the command-file folder", async () => {
  await using home = await tempDir({
    "cfg/l.ini": LISTENER,
    "cfg/c.ini": TEST_CHILD,
    ".ssh/authorized_keys": "original\n",
  });
  const cfg = join(home.path, "cfg");
  const l = await run(
    cfg,
    [
      JSON.stringify({
        node: "n",
        payload: { uid: "G1\nprintQueue filename=x", alert_type: "new" },
      }),
      command("printQueue", { filename: "../../.ssh/authorized_keys" }),
      command("printQueue", { filename: "../c.ini" }),
      command("checkpointQueue", { filename: "c.ini" }),
    ],
    (l) => l.named("task_failed").length + l.named("task_executed").length >= 3,
    {
      env: { HOME: home.path },
    },
  );
  assert.equal(await Deno.readTextFile(join(home.path, ".ssh/authorized_keys")), "original\n");
  assert.equal(await Deno.readTextFile(join(cfg, "c.ini")), TEST_CHILD, "the config is intact");
  assert.match(String(l.named("task_failed")[0]?.error), /must lie inside log_directory\/queue/);
  // A name inside the folder is fine, and stays inside it.
  assert.ok((await Deno.readTextFile(join(cfg, "queue", "c.ini"))).includes("lvalertMP-snapshot"));
});

Deno.test("a log_directory of $HOME is refused before anything starts", async () => {
  await using home = await tempDir({
    "l.ini": LISTENER,
    "c.ini": "[general]\nprocess_type = test\nlog_directory = .\n",
  });
  const r = await runListener(["-c", join(home.path, "l.ini"), "--check-config"], {
    env: { HOME: home.path },
  });
  assert.equal(r.code, 78);
  assert.match(r.stderr, /c\.ini:3: \[general\] log_directory is \$HOME/);
});

Deno.test("links inside the command-file folder are never followed", async () => {
  await using dir = await tempDir({
    "l.ini": LISTENER,
    "c.ini": TEST_CHILD,
    "outside/secret": "s3cret-data\n",
  });
  await Deno.mkdir(join(dir.path, "queue"), { mode: 0o700 });
  await Deno.symlink(join(dir.path, "outside"), join(dir.path, "queue", "dir"));
  await Deno.symlink(join(dir.path, "outside", "secret"), join(dir.path, "queue", "file.json"));
  const l = await run(dir.path, [
    command("printQueue", { filename: "dir/written.txt" }),
    command("printQueue", { filename: "file.json" }),
    command("loadQueue", { filename: "file.json" }),
    command("loadQueue", { filename: "dir/secret" }),
  ], (l) => l.named("task_failed").length >= 4);
  const errors = l.named("task_failed").map((e) => String(e.error));
  assert.equal(errors.filter((e) => /symbolic link/.test(e)).length, 4, errors.join("\n"));
  assert.equal(await Deno.readTextFile(join(dir.path, "outside", "secret")), "s3cret-data\n");
  await assert.rejects(Deno.stat(join(dir.path, "outside", "written.txt")));
  assert.doesNotMatch(l.stdout + l.stderr, /s3cret/);
});

Deno.test("a flood of mail from one command is refused or bounded, and ends in one digest", async () => {
  await using dir = await tempDir({
    "l.ini": LISTENER + "mail_command = mail.sh\nrecipients = ops@example.org\n",
    "c.ini": TEST_CHILD,
    "mail.sh": '#!/bin/sh\ncat > /dev/null\necho x >> "$(dirname "$0")/calls"\n',
  });
  await Deno.writeTextFile(
    join(dir.path, "l.ini"),
    LISTENER + `mail_command = ${join(dir.path, "mail.sh")}\nrecipients = ops@example.org\n`,
  );
  await Deno.chmod(join(dir.path, "mail.sh"), 0o755);
  const lines = [command("sendEmail", { recipients: "a@example.org", sleep: 0.001 })];
  for (let i = 0; i < 40; i++) {
    lines.push(command("sendEmail", { recipients: "a@example.org", subject: `m${i}` }));
  }
  const l = await run(dir.path, lines, (l) => l.named("task_executed").length >= 40, {});
  assert.match(String(l.named("alert_rejected")[0]?.reason), /"sleep" must be at least 1 s/);
  const calls = (await Deno.readTextFile(join(dir.path, "calls"))).split("\n").filter(Boolean);
  assert.equal(calls.length, 11, "ten mails, then one digest of the other thirty");
  assert.equal(l.named("notify_suppressed").length, 30);
});

Deno.test("a task 30 days away waits without spinning; an expiration of 1e308 is refused", async () => {
  await using dir = await tempDir({
    "l.ini": LISTENER,
    "c.ini": "[general]\nprocess_type = test\n[test]\ndelays = 2592000\nrepeats = 0\n",
  });
  const t0 = Date.now() / 1000;
  const item = {
    class: "QueueItem",
    fields: { name: "far", t0, graceid: "X" },
    tasks: [{
      class: "CommandTask",
      fields: {
        name: "t",
        timeout: 0,
        expiration: 1e308,
        command: "printMessage",
        kwargs: { message: "m" },
        sleep: null,
        repeats: false,
      },
    }],
  };
  await Deno.mkdir(join(dir.path, "queue"), { mode: 0o700 });
  await Deno.writeTextFile(
    join(dir.path, "queue", "far.json"),
    JSON.stringify({
      format: "lvalertMP-snapshot",
      version: 1,
      child: "a",
      seq: 0,
      taken: t0,
      applied: [],
      items: [item],
    }),
  );
  const l = await run(dir.path, [
    JSON.stringify({ node: "n", payload: { uid: "G1", alert_type: "new" } }),
    command("loadQueue", { filename: "far.json" }, 0.5),
  ], (l) => l.named("task_failed").length === 1);
  assert.match(String(l.named("task_failed")[0]?.error), /not a time within a century/);
  assert.doesNotMatch(l.stderr, /TimeoutOverflowWarning/);
});

/** A handler that does something hostile for each alert type. */
const HOSTILE = `
import { QueueItem, Task } from "${MOD}";
export class Act extends Task {
  what = "";
  execute(ctx) {
    if (this.what === "kill") Deno.kill(Deno.pid, "SIGKILL");
    if (this.what === "term") Deno.kill(Deno.pid, "SIGTERM");
    if (this.what === "exit") Deno.exit(3);
    if (this.what === "grow") { const keep = []; for (;;) keep.push(new Array(1e5).fill(Math.random())); }
    if (this.what === "netrc") return Deno.readTextFile(new URL("./.netrc", import.meta.url));
    ctx.log.event("info", "acted", { what: this.what });
  }
}
export function parseAlert(ctx, alert, t0) {
  const task = new Act(0);
  task.what = alert.alert_type;
  ctx.queue.insert(new QueueItem(t0, [task], { graceid: alert.uid }));
}
`;

function act(what: string, uid = what, t = 0): string {
  return JSON.stringify({ node: "n", t, id: uid, payload: { uid, alert_type: what } });
}

Deno.test("a handler cannot kill, stop or exhaust the listener", async (t) => {
  await t.step("Deno.kill is not available to it", async () => {
    await using dir = await tempDir({
      "l.ini": LISTENER,
      "c.ini": "[general]\nprocess_type = h\nhandler = h.ts\n",
      "h.ts": HOSTILE,
    });
    const l = await run(
      dir.path,
      [act("kill"), act("term"), act("fine", "ok", 0.2)],
      (l) => l.named("acted").length === 1,
    );
    const errors = l.named("task_failed").map((e) => String(e.error));
    assert.deepEqual(errors.map((e) => /Deno\.kill is not available/.test(e)), [true, true]);
  });
  await t.step("Deno.exit ends only its child, noticed at once, and it is restarted", async () => {
    await using dir = await tempDir({
      "l.ini": LISTENER,
      "c.ini": "[general]\nprocess_type = h\nhandler = h.ts\n",
      "h.ts": HOSTILE,
    });
    const start = performance.now();
    const l = await run(
      dir.path,
      [act("exit"), act("fine", "ok", 1)],
      (l) => l.named("acted").length === 1,
    );
    const died = l.named("child_died");
    assert.ok(died.length >= 1);
    assert.match(String(died[0]!.error), /Deno\.exit\(3\)/);
    assert.ok(performance.now() - start < 30_000, "not after the hang watchdog's minute");
  });
  await t.step("unbounded allocation in a process child ends only that child", async () => {
    await using dir = await tempDir({
      "l.ini": LISTENER + "isolation = process\nheap_mb = 64\nmax_restarts = 10\n",
      "c.ini": "[general]\nprocess_type = h\nhandler = h.ts\n",
      "h.ts": HOSTILE,
    });
    const l = await run(
      dir.path,
      [act("grow"), act("fine", "ok", 0.5)],
      (l) => l.named("acted").length === 1 || l.named("alert_quarantined").length === 1,
    );
    assert.ok(l.named("child_died").length >= 1, "the child died of its heap limit");
    await l.until(() => true, "");
  });
});

Deno.test("an alert that kills its child twice in a row is set aside; the child goes on", async () => {
  await using dir = await tempDir({
    "l.ini": LISTENER +
      "max_restarts = 3\n",
    "c.ini": "[general]\nprocess_type = h\nhandler = h.ts\n",
    "h.ts": HOSTILE,
    "mail.sh": '#!/bin/sh\ncat >> "$(dirname "$0")/mail"\n',
  });
  await Deno.chmod(join(dir.path, "mail.sh"), 0o755);
  await Deno.writeTextFile(
    join(dir.path, "l.ini"),
    LISTENER +
      `max_restarts = 3\nmail_command = ${
        join(dir.path, "mail.sh")
      }\nrecipients = ops@example.org\n`,
  );
  const l = await run(
    dir.path,
    [act("exit", "poison"), act("fine", "after", 0.2)],
    (l) => l.named("acted").length === 1,
  );
  assert.equal(l.named("alert_quarantined").length, 1);
  assert.equal(l.named("child_given_up").length, 0);
  const poison =
    (await Array.fromAsync(Deno.readDir(join(dir.path, "state", "children"))))[0]!.name;
  const line = JSON.parse(
    (await Deno.readTextFile(join(dir.path, "state", "children", poison, "poison.jsonl"))).trim(),
  );
  assert.equal(line.id, "poison");
  assert.match(
    await Deno.readTextFile(join(dir.path, "mail")),
    /killed child \[a\] twice in a row/,
  );
});

Deno.test("a handler outside the code folders reads its modules, not its folder (a netrc there stays private)", async () => {
  await using home = await tempDir({
    "l.ini": LISTENER,
    "c.ini": "[general]\nprocess_type = h\nhandler = h/h.ts\nlog_directory = logs\n",
    "h/h.ts": HOSTILE,
    "h/.netrc": "machine x login u password p\n",
  });
  const l = await run(home.path, [act("netrc")], (l) => l.named("task_failed").length === 1);
  assert.match(String(l.named("task_failed")[0]?.error), /Requires read access|NotCapable/);
});

Deno.test("--check-config names every grant and warns of broad ones; unknown allow_* keys are refused", async () => {
  await using dir = await tempDir({
    "l.ini": LISTENER,
    "c.ini":
      "[general]\nprocess_type = test\nallow_read = /\nallow_write = /\nallow_run = /bin/sh\n",
    "bad.ini": "[a]\nnodes = n\nchildConfig = c2.ini\n",
    "c2.ini": "[general]\nprocess_type = test\nallow_ffi = x\n",
  });
  const ok = await runListener([
    "-c",
    join(dir.path, "l.ini"),
    "--check-config",
    "--state-dir",
    join(dir.path, "s"),
  ]);
  assert.equal(ok.code, 0, ok.stderr);
  assert.match(ok.stdout, /write: .*snapshots/, "the state folder's grant is shown");
  assert.match(ok.stdout, /WARNING: .* allow_read = \/ grants the whole file system/);
  assert.match(ok.stdout, /WARNING: .* allow_run = \/bin\/sh lets the handler run programs/);
  const bad = await runListener(["-c", join(dir.path, "bad.ini"), "--check-config"]);
  assert.equal(bad.code, 78);
  assert.match(bad.stderr, /c2\.ini:3: \[general\] allow_ffi: unknown grant/);
});

Deno.test("network_commands = none refuses commands from nodes; ctl still sends them", async () => {
  await using dir = await tempDir({
    "l.ini": LISTENER + "network_commands = none\n",
    "c.ini": TEST_CHILD,
  });
  await Deno.writeTextFile(
    join(dir.path, "r.jsonl"),
    command("printMessage", { message: "from the network" }) + "\n",
  );
  await using l = new ListenerProcess([
    ...["-c", join(dir.path, "l.ini"), "--replay", join(dir.path, "r.jsonl")],
    ...["--state-dir", join(dir.path, "state"), "--log-format", "json"],
  ]);
  await l.until(() => l.named("alert_rejected").length === 1, "the refusal");
  assert.match(String(l.named("alert_rejected")[0]!.reason), /not accepted from the network/);
  const ctl = await runListener([
    "ctl",
    "--state-dir",
    join(dir.path, "state"),
    "message,local",
    "printMessage",
  ]);
  assert.match(ctl.stdout, /\[a\] local/);
});

Deno.test("idle control connections are closed after 5 s; the socket keeps answering", async () => {
  await using dir = await tempDir({ "l.ini": LISTENER, "c.ini": TEST_CHILD, "r.jsonl": "" });
  await using l = new ListenerProcess([
    ...["-c", join(dir.path, "l.ini"), "--replay", join(dir.path, "r.jsonl")],
    ...["--state-dir", join(dir.path, "state"), "--log-format", "json"],
  ]);
  await l.until(() => l.named("listening").length === 1, "start");
  const path = join(dir.path, "state", "control.sock");
  const idle = await Promise.all(
    Array.from({ length: 200 }, () => Deno.connect({ transport: "unix", path })),
  );
  const status = await runListener(["ctl", "--state-dir", join(dir.path, "state"), "--status"]);
  assert.equal(status.code, 0, "answers while 200 connections idle");
  // Each idle connection is closed by the listener: a read returns end of stream.
  const ended = await Promise.all(idle.map((c) => c.read(new Uint8Array(8)).catch(() => null)));
  assert.ok(ended.every((n) => n === null));
  for (const c of idle) {
    try {
      c.close();
    } catch {
      // Closed already.
    }
  }
});

Deno.test("a text log line cannot be forged by a message holding newlines", async () => {
  await using dir = await tempDir({ "l.ini": LISTENER, "c.ini": TEST_CHILD });
  await Deno.writeTextFile(
    join(dir.path, "r.jsonl"),
    command("printMessage", { message: "hi\n2026-01-01T00:00:00.000Z | main : ERROR : forged" }) +
      "\n",
  );
  const r = await runListener([
    ...["-c", join(dir.path, "l.ini"), "--replay", join(dir.path, "r.jsonl")],
    ...["--state-dir", join(dir.path, "state"), "--exit-when-idle"],
  ]);
  assert.equal(r.code, 0, r.stderr);
  assert.ok(!r.stdout.split("\n").some((line) => line.startsWith("2026-01-01T00:00:00.000Z")));
  assert.match(r.stdout, /hi\\n2026-01-01/);
});

Deno.test("10,000 fuzzed lines: each counted once, every bad one named once, no crash", async () => {
  const fc = (await import("fast-check")).default;
  const value = fc.oneof(
    fc.constant("NaN"),
    fc.constant("Infinity"),
    fc.string(),
    fc.integer().map(String),
    fc.constant("null"),
    fc.constant('"new"'),
  );
  const payload = fc.oneof(
    fc.string().map((s) => JSON.stringify(s)),
    fc.record({
      uid: fc.oneof(fc.string(), fc.constant("command"), fc.constant("heartbeat"), fc.integer()),
      alert_type: fc.oneof(
        fc.constant("new"),
        fc.constant("update"),
        fc.string(),
        fc.constant(undefined),
      ),
    }).map((o) => JSON.stringify(o)),
    fc.tuple(fc.string(), value).map(([k, v]) => `{"uid":"G1",${JSON.stringify(k)}:${v}}`),
    fc.string(),
  );
  const line = fc.tuple(fc.oneof(fc.constant("n"), fc.constant("other")), payload).map((
    [node, p],
  ) => JSON.stringify({ node, payload: p }));
  const lines = fc.sample(fc.oneof(line, fc.string().filter((s) => !s.includes("\n"))), {
    numRuns: 10_000,
    seed: 20261128,
  });
  await using dir = await tempDir({
    "l.ini": LISTENER,
    "c.ini": "[general]\nprocess_type = test\nlog_level = 40\n[test]\ndelays = 0\nrepeats = 0\n",
  });
  await Deno.writeTextFile(join(dir.path, "r.jsonl"), lines.join("\n") + "\n");
  const r = await runListener([
    ...["-c", join(dir.path, "l.ini"), "--replay", join(dir.path, "r.jsonl")],
    ...["--speed", "0", "--exit-when-idle", "--log-format", "json"],
  ], { timeout: 180 });
  assert.equal(r.code, 0, r.stderr.slice(-2000));
  const s = r.events.find((e) => e.event === "summary")!;
  const nonBlank = lines.filter((l) => l.trim() !== "").length;
  assert.equal(s.received, nonBlank, "every line counted once");
  // The summary's `rejected` adds what children refused after routing.
  const refusedByRouter = (s.rejected as number) - (s.rejected_by_child as number);
  const parts = ["routed", "unrouted", "duplicates", "ignored", "deferred"];
  assert.equal(parts.reduce((n, k) => n + (s[k] as number), refusedByRouter), s.received);
  // The router's refusals name where the line came from (`where`); a child's do not.
  const named = r.events.filter((e) => e.event === "alert_rejected" && "where" in e).length;
  assert.equal(named, refusedByRouter, "every bad line named once");
  assert.ok(
    refusedByRouter > 1000 && (s.routed as number) > 100,
    `the mix holds both kinds: ${JSON.stringify(s)}`,
  );
});
