/**
 * End to end: the listener as a real process on replayed fixture streams,
 * asserting on its JSON-lines events.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import {
  copyFixtures,
  jsonLines,
  LISTEN_FLAGS,
  MAIN,
  readMail,
  ROOT,
  runListener,
  tempDir,
} from "./helpers.ts";

type Event = Record<string, unknown>;

/** Replays `stream` through `config` until idle, with JSON logs. */
function replay(config: string, stream: string, ...extra: string[]) {
  return runListener([
    "-c",
    config,
    "--replay",
    stream,
    "--exit-when-idle",
    "--log-format",
    "json",
    ...extra,
  ]);
}

function ofEvent(events: Event[], name: string, child?: string): Event[] {
  return events.filter((e) => e.event === name && (child === undefined || e.child === child));
}

/**
 * Every alert applied by a child has its test-handler tasks run once each,
 * at t0 + delay, never early.
 */
function assertTasksRanOnTime(
  events: Event[],
  delays = [1, 2, 3],
  repeats = 2,
) {
  const executed = ofEvent(events, "task_executed");
  const keys = executed.map((e) => `${e.child}|${e.graceid}|${e.task}|${e.due}`);
  assert.equal(new Set(keys).size, keys.length, "no task ran twice");
  for (const alert of ofEvent(events, "alert")) {
    if (alert.uid === "command") continue;
    const t0 = alert.t0 as number;
    const mine = executed.filter((e) => e.child === alert.child && e.graceid === alert.uid);
    for (const d of delays) {
      assert.ok(
        mine.some((e) =>
          e.task === `print@${d}s` &&
          Math.abs((e.due as number) - (t0 + d)) < 1e-6
        ),
        `print@${d}s of ${alert.uid} in ${alert.child}`,
      );
    }
    for (let r = 1; r <= repeats; r++) {
      assert.ok(
        mine.some((e) => e.task === "repeat" && Math.abs((e.due as number) - (t0 + r)) < 1e-6),
      );
    }
  }
  for (const e of executed) {
    assert.ok((e.lateness_ms as number) >= 0, "never early");
    assert.ok(Date.parse(e.ts as string) / 1000 >= (e.due as number) - 0.001);
  }
}

Deno.test("listener routes the legacy stream to the right children and runs every task once on time", async () => {
  await using dir = await tempDir();
  await copyFixtures(dir.path);
  const r = await replay(
    join(dir.path, "lvalert_listenMP.ini"),
    join(dir.path, "alerts-legacy.jsonl"),
  );
  assert.equal(r.code, 0, r.stderr);
  const alerts = ofEvent(r.events, "alert").map((e) =>
    `${e.child}|${e.node}|${e.id}|${e.alert_type}`
  );
  assert.deepEqual(alerts.sort(), [
    "burst|burst_cwb_allsky|b1|new",
    "gstlal watcher|cbc_gstlal|a1|new",
    "gstlal watcher|cbc_gstlal|a2|update",
    "gstlal watcher|cbc_gstlal|a3|label",
    "gstlal watcher|cbc_gstlal|a4|signoff",
  ]);
  const [dup] = ofEvent(r.events, "alert_duplicate");
  assert.equal(
    dup?.node,
    "cbc_gstlal_lowmass",
    "the same alert on a second node of the child is routed once",
  );
  assertTasksRanOnTime(r.events);
  assert.equal(
    ofEvent(r.events, "task_executed", "gstlal watcher").length,
    4 * 5,
  );
  assert.equal(ofEvent(r.events, "task_executed", "burst").length, 5);
  assert.equal(ofEvent(r.events, "item_completed").length, 5);
  const summary = ofEvent(r.events, "summary")[0]!;
  assert.deepEqual(
    [
      summary.received,
      summary.routed,
      summary.applied,
      summary.duplicates,
      summary.rejected,
    ],
    [6, 5, 5, 1, 0],
  );
  const log = await Deno.readTextFile(
    join(dir.path, "test_childConfig-test.log"),
  );
  assert.equal(
    jsonLines(log).filter((e) => e.event === "task_executed").length,
    25,
    "both children log to the file",
  );
});

Deno.test("listener handles the current GraceDB schema", async () => {
  await using dir = await tempDir({
    "l.ini": "[superevents]\nnodes = superevent\nchildConfig = childConfig-test.ini\n",
  });
  await copyFixtures(dir.path, [
    "childConfig-test.ini",
    "alerts-current.jsonl",
  ]);
  const r = await runListener([
    "-c",
    join(dir.path, "l.ini"),
    "--replay",
    join(dir.path, "alerts-current.jsonl"),
    "--exit-when-idle",
    "--log-format=json",
    "--speed=4",
  ]);
  assert.equal(r.code, 0, r.stderr);
  const types = ofEvent(r.events, "alert").map((e) => [e.alert_type, e.schema]);
  assert.deepEqual(types, [
    ["new", "current"],
    ["event_added", "current"],
    ["log", "current"],
    ["label_added", "current"],
    ["signoff_created", "current"],
  ]);
  assertTasksRanOnTime(r.events);
  const printed = ofEvent(r.events, "alert_printed").filter((e) => e.delay === 1).map((e) => e.msg);
  assert.deepEqual(printed, [
    "S220316r : new",
    "S220316r : event_added G194543",
    "S220316r : log: sky localization complete",
    "S220316r : label_added SKYMAP_READY",
    "S220316r : signoff_created ADV OK",
  ]);
});

Deno.test("listener logs and counts every bad alert once, and processes the good one after them", async () => {
  await using dir = await tempDir();
  await copyFixtures(dir.path);
  const r = await replay(
    join(dir.path, "lvalert_listenMP.ini"),
    join(dir.path, "bad-alerts.jsonl"),
  );
  assert.equal(r.code, 0, r.stderr);
  const rejected = ofEvent(r.events, "alert_rejected");
  const reasons = rejected.map((e) => e.msg as string);
  const expected = [
    /bad-alerts\.jsonl:1: .*payload is not JSON/,
    /payload must be a JSON object, got an array/,
    /payload has no "uid"/,
    /"uid" must be a non-empty string/,
    /unknown command "noSuchCommand"/,
    /Command=clearGraceID is missing required kwarg=graceid/,
  ];
  assert.equal(reasons.length, expected.length, reasons.join("\n"));
  for (const pattern of expected) {
    assert.equal(
      reasons.filter((reason) => pattern.test(reason)).length,
      1,
      `${pattern}`,
    );
  }
  const unrouted = ofEvent(r.events, "alert_unrouted");
  assert.equal(unrouted.length, 1);
  assert.equal(unrouted[0]?.node, "not_subscribed_node");
  // An alert_type GraceDB is not known to send is delivered (the handler
  // decides), and named once.
  const unknown = ofEvent(r.events, "alert_type_unknown");
  assert.deepEqual(unknown.map((e) => e.alert_type), ["no_such_type"]);
  assert.deepEqual(
    ofEvent(r.events, "item_completed").map((e) => e.graceid).sort(),
    ["T1", "T3"],
    "the deliverable alerts' items complete",
  );
  const summary = ofEvent(r.events, "summary")[0]!;
  assert.deepEqual([
    summary.received,
    summary.rejected,
    summary.unrouted,
    summary.applied,
    summary.unknown_type,
  ], [9, 6, 1, 2, 1]);
});

Deno.test("listener names a broken replay line and goes on", async () => {
  await using dir = await tempDir({
    "r.jsonl": [
      '{"node":"burst_cwb_allsky","payload":{"uid":"G1","alert_type":"new"}}',
      "this is not json",
      '{"payload":{"uid":"G2","alert_type":"new"}}',
      "",
      '{"node":"burst_cwb_allsky","t":-1,"payload":{"uid":"G3","alert_type":"new"}}',
      '{"node":"burst_cwb_allsky","payload":"{\\"uid\\":\\"G4\\",\\"alert_type\\":\\"new\\"}"}',
    ].join("\n"),
  });
  await copyFixtures(dir.path);
  const r = await replay(
    join(dir.path, "lvalert_listenMP.ini"),
    join(dir.path, "r.jsonl"),
  );
  assert.equal(r.code, 0, r.stderr);
  const reasons = ofEvent(r.events, "alert_rejected").map((e) => e.msg);
  assert.equal(reasons.length, 3);
  assert.match(String(reasons[0]), /r\.jsonl:2: not JSON/);
  assert.match(
    String(reasons[1]),
    /r\.jsonl:3: "node" must be a non-empty string/,
  );
  assert.match(
    String(reasons[2]),
    /r\.jsonl:5: "t" must be a number of seconds >= 0/,
  );
  assert.deepEqual(ofEvent(r.events, "alert").map((e) => e.uid), ["G1", "G4"]);
});

Deno.test("listener runs commands from the stream and survives raiseException", async () => {
  await using dir = await tempDir();
  await copyFixtures(dir.path);
  const r = await replay(
    join(dir.path, "lvalert_listenMP.ini"),
    join(dir.path, "commands.jsonl"),
  );
  assert.equal(r.code, 0, r.stderr);
  const messages = ofEvent(r.events, "command").filter((e) => e.command === "printMessage").map((
    e,
  ) => e.message);
  assert.deepEqual(messages, [
    "hello from the operator",
    "still alive after an exception",
  ]);
  assert.equal(ofEvent(r.events, "queue").length, 1);
  assert.equal(
    ofEvent(r.events, "task_failed")[0]?.error,
    "raiseException command received",
  );
  assert.equal(ofEvent(r.events, "summary")[0]?.applied, 5);
});

Deno.test("listener -S prints child < payload for each routed alert", async () => {
  await using dir = await tempDir({
    "r.jsonl": '{"node":"burst_cwb_allsky","payload":{"uid":"G1","alert_type":"new"}}\n',
  });
  await copyFixtures(dir.path);
  const r = await runListener([
    "-S",
    "-c",
    join(dir.path, "lvalert_listenMP.ini"),
    "--replay",
    join(dir.path, "r.jsonl"),
    "--exit-when-idle",
  ]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^burst < \{"uid":"G1","alert_type":"new"\}$/m);
  assert.match(
    r.stdout,
    /\| burst : INFO : task_executed graceid=G1 item=TestItem task=print@1s/,
  );
});

Deno.test("listener exit codes", async (t) => {
  await t.step(
    "a bad config: 78, the error names file and line, nothing runs",
    async () => {
      await using dir = await tempDir({
        "l.ini": "[a]\nnodes = x\nchildConfig = c.ini\n[b]\nnodes = x\nchildConfig = c.ini\n",
        "c.ini": "[general]\nprocess_type = test\n",
        "r.jsonl": '{"node":"x","payload":{"uid":"G1","alert_type":"new"}}\n',
      });
      const r = await runListener([
        "-c",
        join(dir.path, "l.ini"),
        "--replay",
        join(dir.path, "r.jsonl"),
        "--exit-when-idle",
      ]);
      assert.equal(r.code, 78);
      assert.match(
        r.stderr,
        /l\.ini:5: Node "x" is listed under both \[a\] and \[b\]/,
      );
      assert.doesNotMatch(r.stdout, /child_started|alert/);
      assert.deepEqual(
        [...Deno.readDirSync(dir.path)].map((e) => e.name).sort(),
        ["c.ini", "l.ini", "r.jsonl"],
      );
    },
  );
  await t.step("a handler config error found by the worker: 78", async () => {
    await using dir = await tempDir({
      "l.ini": "[a]\nnodes = x\nchildConfig = c.ini\n",
      "c.ini": "[general]\nprocess_type = test\n[test]\nrepeats = -1\n",
    });
    const r = await runListener([
      "-c",
      join(dir.path, "l.ini"),
      "--check-config",
    ]);
    assert.equal(r.code, 78);
    assert.match(
      r.stderr,
      /Child \[a\] could not start: .*c\.ini:4: \[test\] repeats must be >= 0/,
    );
  });
  await t.step("an unknown flag: 2 and the usage", async () => {
    const r = await runListener(["--no-such-flag"]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /Unknown option '--no-such-flag'/);
    assert.match(r.stderr, /Usage: lvalert_listenMP/);
  });
  await t.step("a flag without its value: 2", async () => {
    const r = await runListener(["-c"]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /argument missing/);
  });
  await t.step("a bad --speed: 2", async () => {
    const r = await runListener(["-c", "x.ini", "--speed", "fast"]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /--speed must be a number >= 0, got "fast"/);
  });
  await t.step("-w prints the version: 0", async () => {
    const r = await runListener(["-w"]);
    assert.equal(r.code, 0);
    assert.match(r.stdout, /^lvalert_listenMP \(lvalertMP\) \d+\.\d+\.\d+$/m);
  });
  await t.step("a missing replay file: 78", async () => {
    await using dir = await tempDir();
    await copyFixtures(dir.path);
    const r = await runListener([
      "-c",
      join(dir.path, "lvalert_listenMP.ini"),
      "--replay",
      join(dir.path, "nope.jsonl"),
    ]);
    assert.equal(r.code, 78);
    assert.match(r.stderr, /nope\.jsonl: Replay file not found/);
  });
});

Deno.test("listener --check-config prints children, nodes, handlers and permissions", async () => {
  await using dir = await tempDir();
  await copyFixtures(dir.path);
  const r = await runListener([
    "-c",
    join(dir.path, "lvalert_listenMP.ini"),
    "--check-config",
  ]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(
    r.stdout,
    /\[gstlal watcher\] nodes: cbc_gstlal, cbc_gstlal_lowmass, command-watcher/,
  );
  assert.match(
    r.stdout,
    /handler: test \(.*workers\/handlers\/test\.ts\), loaded/,
  );
  assert.match(
    r.stdout,
    /permissions: read: .*; write: .*; net: none; env: none; run: none; sys: none; ffi: none/,
  );
  assert.match(r.stdout, /OK: 2 children, 4 nodes/);
});

Deno.test("listener stops cleanly on SIGTERM: exit 0 within seconds", async () => {
  await using dir = await tempDir({
    "r.jsonl": '{"node":"burst_cwb_allsky","payload":{"uid":"G1","alert_type":"new"}}\n' +
      '{"node":"burst_cwb_allsky","t":600,"payload":{"uid":"G2","alert_type":"new"}}\n',
  });
  await copyFixtures(dir.path);
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      ...LISTEN_FLAGS,
      MAIN,
      "-c",
      join(dir.path, "lvalert_listenMP.ini"),
      "--replay",
      join(dir.path, "r.jsonl"),
      "--log-format",
      "json",
    ],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  while (!text.includes('"event":"alert"')) {
    const { value, done } = await reader.read();
    if (done) break;
    text += value;
  }
  const sent = Date.now();
  child.kill("SIGTERM");
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    text += value;
  }
  const status = await child.status;
  await child.stderr.cancel();
  assert.equal(status.code, 0);
  assert.ok(Date.now() - sent < 10_000, "stopped within seconds");
  const events = jsonLines(text);
  assert.equal(ofEvent(events, "summary")[0]?.routed, 1);
});

Deno.test("the example and demo configs in etc/ pass --check-config and leave no files", async (t) => {
  for (
    const name of ["lvalert_listenMP-example.ini", "lvalert_listenMP-demo.ini"]
  ) {
    await t.step(name, async () => {
      const before = [...Deno.readDirSync(join(ROOT, "etc"))].map((e) => e.name)
        .sort();
      const r = await runListener([
        "-c",
        join(ROOT, "etc", name),
        "--check-config",
      ]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /OK: \d+ children/);
      assert.deepEqual(
        [...Deno.readDirSync(join(ROOT, "etc"))].map((e) => e.name).sort(),
        before,
      );
    });
  }
});

Deno.test("listener mails through the configured mail command, run by main", async () => {
  await using dir = await tempDir({
    // One file per mail: mails may be sent at the same time.
    "mail.sh":
      '#!/bin/sh\n{ printf "%s|" "$@"; echo; cat; } > "$(mktemp "$(dirname "$0")/mail.XXXXXX")"\n',
    "l.ini":
      "[a]\nnodes = n\nchildConfig = c.ini\nrecipients = x@example.org y@example.org\nmail_command = ./mail.sh\n",
    "c.ini": "[general]\nprocess_type = test\n",
    "r.jsonl": [
      '{"node":"n","payload":{"uid":"command","alert_type":"sendEmail","object":{"subject":"hello","body":"line one","recipients":"p@example.org, q@example.org"}}}',
      '{"node":"n","payload":{"uid":"command","alert_type":"raiseException","object":{}}}',
    ].join("\n"),
  });
  await Deno.chmod(join(dir.path, "mail.sh"), 0o755);
  const r = await runListener([
    "-c",
    "l.ini",
    "--replay",
    "r.jsonl",
    "--exit-when-idle",
    "--log-format",
    "json",
  ], {
    cwd: dir.path,
  });
  assert.equal(r.code, 0, r.stderr);
  // Mail goes out asynchronously; the listener waits for it before exiting.
  const mail = await readMail(dir.path);
  // sendEmail mails the command's recipients; a failed task, the section's.
  assert.match(mail, /^-s\|hello\|p@example\.org\|q@example\.org\|\nline one/m);
  assert.match(
    mail,
    /-s\|WARNING: raiseException\.execute caught an exception on [^|]+\|x@example\.org\|y@example\.org\|/,
  );
  assert.match(mail, /QueueItem marked complete to avoid repeated errors\./);
  assert.match(mail, /Error: raiseException command received\n\s+at /);
});

Deno.test("listener with on_child_death = exit stops with exit 1 when a child dies, naming it", async () => {
  await using dir = await tempDir({
    "l.ini": "[doomed child]\nnodes = n\nchildConfig = c.ini\non_child_death = exit\n",
    "c.ini": "[general]\nprocess_type = crash\nhandler = crash.ts\n",
    "crash.ts":
      "export function parseAlert() { setTimeout(() => { throw new Error('handler bug'); }, 0); }\n",
    "r.jsonl": '{"node":"n","payload":{"uid":"G1","alert_type":"new"}}\n',
  });
  // No --exit-when-idle: the listener would run on until the death.
  const r = await runListener([
    "-c",
    join(dir.path, "l.ini"),
    "--replay",
    join(dir.path, "r.jsonl"),
    "--log-format",
    "json",
  ]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /Child \[doomed child\] died: .*handler bug/);
  assert.equal(ofEvent(r.events, "child_died")[0]?.child, "doomed child");
});
