/**
 * Drop-in for the Python lvalertMP: one test per behaviour a deployed setup
 * relies on, each written from the original (named in a comment) and fed
 * with payloads in the original's own formats.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { Ini, parseIni } from "../lib/config/ini.ts";
import { loadListenerConfig } from "../lib/config/config.ts";
import { ConfigError } from "../lib/core/config_error.ts";
import { readMail, runListener, tempDir } from "./helpers.ts";

type Event = Record<string, unknown>;
const of = (events: Event[], name: string) => events.filter((e) => e.event === name);

/** A handler that logs what it is given, so a test sees what reached the child. */
const RECORDER = `import type { Alert, ChildContext } from "${
  new URL("../lib/mod.ts", import.meta.url).href
}";
export function parseAlert(ctx: ChildContext, alert: Alert) {
  if (alert.uid === "boom") throw new Error("handler cannot read this");
  const far = (alert.object as Record<string, unknown> | undefined)?.far;
  ctx.log.event("info", "got", {
    uid: alert.uid,
    alert_type: alert.alert_type ?? null,
    far: typeof far === "number" ? String(far) : null,
  });
}
`;

const MAIL_SH =
  '#!/bin/sh\n{ printf "%s|" "$@"; echo; cat; } > "$(mktemp "$(dirname "$0")/mail.XXXXXX")"\n';

/** A folder with a listener config for one child on node `n`, run by `handler`. */
async function setup(extra: Record<string, string>, section = "", child = "") {
  const dir = await tempDir({
    "l.ini": `[a]\nnodes = n\nchildConfig = c.ini\nrecipients = ops@example.org\n` +
      `mail_command = ./mail.sh\n${section}`,
    "c.ini": `[general]\nprocess_type = recorder\nhandler = rec.ts\n${child}`,
    "rec.ts": RECORDER,
    "mail.sh": MAIL_SH,
    ...extra,
  });
  await Deno.chmod(join(dir.path, "mail.sh"), 0o755);
  return dir;
}

function replay(dir: string, ...extra: string[]) {
  return runListener(
    ["-c", "l.ini", "--replay", "r.jsonl", "--exit-when-idle", "--log-format", "json", ...extra],
    { cwd: dir },
  );
}

const line = (payload: unknown, t?: number) =>
  JSON.stringify({ node: "n", ...(t === undefined ? {} : { t }), payload });

Deno.test("every JSON object with a string uid reaches the child, whatever its alert_type; NaN and Infinity read as json.loads reads them", async () => {
  // interactiveQueue.py, interactiveQueue(): every payload json.loads reads
  // goes to parseAlert; lvalert_libraryTestsMP sends {"uid": "test", ...}
  // with no alert_type, and Python's json.dumps writes NaN and Infinity.
  await using dir = await setup({
    "r.jsonl": [
      line({ uid: "test", content: "k1" }),
      line({ uid: "G1", alert_type: "brand_new_type" }),
      line({ uid: "G2", alert_type: "brand_new_type" }),
      // Payloads as strings, exactly as Python's json.dumps wrote them.
      line('{"uid": "G3", "alert_type": "update", "object": {"far": NaN}}'),
      line('{"uid": "G4", "alert_type": "new", "object": {"far": -Infinity}}'),
      line('{"format": "bad"}'),
    ].join("\n"),
  });
  const r = await replay(dir.path);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(of(r.events, "got").map((e) => [e.uid, e.alert_type, e.far]), [
    ["test", "", null],
    ["G1", "brand_new_type", null],
    ["G2", "brand_new_type", null],
    ["G3", "update", "NaN"],
    ["G4", "new", "-Infinity"],
  ]);
  // A new alert_type is named once per child, and counted each time.
  assert.deepEqual(of(r.events, "alert_type_unknown").map((e) => e.alert_type).sort(), [
    "",
    "brand_new_type",
  ]);
  const summary = of(r.events, "summary")[0]!;
  assert.equal(summary.unknown_type, 3);
  // Only the object without a uid is dropped, and it is said why.
  assert.equal(summary.rejected, 1);
  assert.match(String(of(r.events, "alert_rejected")[0]?.reason), /uid/);
});

Deno.test("an unreadable payload and a parseAlert exception mail the recipients, once per warnDelay, the next mail counting those held back", async () => {
  // interactiveQueue.py, interactiveQueue(): the json.loads failure mail
  // (lvalert_subject/lvalert_body) and the parseAlert exception mail
  // (parseAlert_subject/parseAlert_body); lvalert_sanityChecksMP sends
  // 'bad message format' and then {'format': 'bad'}.
  await using dir = await setup({
    "r.jsonl": [
      line("bad message format", 0),
      line("bad message format", 0),
      line({ uid: "boom", alert_type: "new" }, 0),
      line({ uid: "boom", alert_type: "new" }, 0),
      line("still bad", 1.5),
      line({ uid: "G1", alert_type: "new" }, 1.6),
    ].join("\n"),
  }, "warnDelay = 1\n");
  const r = await replay(dir.path);
  assert.equal(r.code, 0, r.stderr);
  const mail = await readMail(dir.path);
  const parse = mail.match(/WARNING: could not parse lvalert payload on /g) ?? [];
  const exception = mail.match(/WARNING: parseAlert caught an exception on /g) ?? [];
  assert.equal(parse.length, 2, mail);
  assert.equal(exception.length, 1, mail);
  assert.match(mail, /\|ops@example\.org\|\ntime \(localtime\): \n {2}\w{3} \w{3} [ \d]\d /);
  assert.match(mail, /lvalert message: \n {2}bad message format/);
  assert.match(mail, /Error: handler cannot read this\n\s+at /);
  assert.match(mail, /username : .*\n {4}hostname : .*\n {4}config {3}: /);
  assert.match(
    mail,
    /lvalert message: \n {2}still bad[^]*\(1 more since the last mail were not mailed/,
  );
  // The log keeps every occurrence; the child went on to the good alert.
  assert.equal(of(r.events, "alert_rejected").length, 3);
  assert.equal(of(r.events, "alert_failed").length, 2);
  assert.deepEqual(of(r.events, "got").map((e) => e.uid), ["G1"]);
});

Deno.test("commands as lvalert_commandMP sends them: sleep delays, only checkpointQueue repeats, raiseWarning fails as a warning, sendEmail needs recipients", async () => {
  // commands.py: Command.genQueueItems (sleep delays the one run),
  // CheckpointQueueTask (repeats every sleep s), RaiseWarningTask
  // (RuntimeWarning), SendEmail.required; lvalert_commandMP casts values
  // that read as numbers to float.
  await using dir = await setup({
    "r.jsonl": [
      line({
        uid: "command",
        alert_type: "printMessage",
        object: { message: "later", sleep: 1.0 },
      }),
      line({ uid: "command", alert_type: "clearGraceID", object: { graceid: 123.0 } }),
      line({ uid: "command", alert_type: "raiseWarning", object: {} }),
      line({ uid: "command", alert_type: "sendEmail", object: { subject: "s", body: "b" } }),
      line({
        uid: "command",
        alert_type: "sendEmail",
        object: { recipients: "a@example.org", subject: 5.0, body: "numbers are text" },
      }),
      line({
        uid: "command",
        alert_type: "sendEmail",
        object: { recipients: "a@example.org", subject: { not: "text" } },
      }),
    ].join("\n"),
  });
  const start = Date.now();
  const r = await replay(dir.path);
  assert.equal(r.code, 0, r.stderr);
  const printed = of(r.events, "command").filter((e) => e.command === "printMessage");
  assert.equal(printed.length, 1, "printMessage with sleep runs once");
  assert.ok(Date.now() - start >= 1000, "and not before its sleep");
  assert.deepEqual(
    of(r.events, "command").filter((e) => e.command === "clearGraceID").map((e) => e.graceid),
    ["123"],
  );
  const failed = of(r.events, "task_failed");
  assert.equal(failed.length, 1);
  assert.equal(failed[0]?.level, "warning");
  assert.match(String(failed[0]?.stack), /^RuntimeWarning: raiseWarning command received/);
  const rejected = of(r.events, "alert_rejected").map((e) => String(e.reason));
  assert.ok(
    rejected.includes("Command=sendEmail is missing required kwarg=recipients"),
    `${rejected}`,
  );
  assert.ok(rejected.some((why) => /subject/.test(why)), `an object is not a subject: ${rejected}`);
  const mail = await readMail(dir.path);
  assert.match(mail, /WARNING: raiseWarning\.execute caught an exception on /);
  assert.match(mail, /^-s\|5\|a@example\.org\|\nnumbers are text/m);
});

Deno.test("checkpointQueue with sleep repeats, and loadQueue refuses a Python pickle by name", async () => {
  // commands.py, CheckpointQueueTask.execute (sets its next expiration) and
  // LoadQueueTask.execute (pickle.load in the original).
  await using dir = await setup({
    "r.jsonl": [
      line({
        uid: "command",
        alert_type: "checkpointQueue",
        object: { filename: "q.json", sleep: 1 },
      }),
      line({ uid: "command", alert_type: "loadQueue", object: { filename: "old.pkl" } }),
      line({ uid: "command", alert_type: "clearQueue", object: {} }, 2.5),
    ].join("\n"),
    "queue/old.pkl": "(lp0\nccopy_reg\n_reconstructor\np1\n",
  });
  const r = await replay(dir.path);
  assert.equal(r.code, 0, r.stderr);
  const checkpoints = of(r.events, "command").filter((e) => e.command === "checkpointQueue");
  assert.ok(checkpoints.length >= 2, `checkpointQueue repeats: ${checkpoints.length}`);
  const failed = of(r.events, "task_failed").map((e) => String(e.error));
  assert.ok(failed.some((why) => /old\.pkl is a Python pickle/.test(why)), `${failed}`);
});

Deno.test("command lists all nine built-ins, shows kwargs, and refuses a name it does not know", async () => {
  // bin/lvalert_commandMP: --show-commands, --show-kwargs, and
  // commands.initCommand raising for an unknown name.
  const list = await runListener(["command", "--show-commands"]);
  assert.equal(list.code, 0, list.stderr);
  for (
    const name of [
      "clearQueue",
      "clearGraceID",
      "printQueue",
      "printMessage",
      "raiseException",
      "raiseWarning",
      "sendEmail",
      "checkpointQueue",
      "loadQueue",
    ]
  ) assert.match(list.stdout, new RegExp(`cmd=${name} `));
  // A handler's command is known too.
  assert.match(list.stdout, /cmd=resetThrottle \(approval_processor\)/);
  const kwargs = await runListener(["command", "--show-kwargs", "sendEmail"]);
  assert.match(kwargs.stdout, /requires\n\trecipients\n {2}optional\n\tsubject\n\tbody\n\tsleep/);
  const unknown = await runListener(["command", "--node", "n", "noSuchCommand"]);
  assert.equal(unknown.code, 2);
  assert.match(unknown.stderr, /Command=noSuchCommand is not known/);
  const wrong = await runListener(["command", "--node", "n", "sendEmail"]);
  assert.equal(wrong.code, 2);
  assert.match(wrong.stderr, /Command=sendEmail is missing required kwarg=recipients/);
  // --unchecked goes past the check to the connection (nothing listens on port 1).
  const unchecked = await runListener([
    "command",
    "--node",
    "n",
    "--server",
    "127.0.0.1",
    "--port",
    "1",
    "-m",
    "1",
    "--unchecked",
    "noSuchCommand",
  ]);
  assert.notEqual(unchecked.code, 2, unchecked.stderr);
  assert.doesNotMatch(unchecked.stderr, /is not known/);
});

Deno.test("a heartbeat request without a uid is answered as lvalertHeartbeat expects, named by [data] name", async () => {
  // lvalertHeartbeat/lvalert_heartbeat.py, Packet and the response built in
  // its listener (ptype 'response', hostname, user, pid, name); the monitor
  // (bin/lvalert_heartbeat-server) matches on name, user and hostname.
  await using dir = await setup(
    {
      "r.jsonl": [
        line({ ptype: "request", server: "lvalert.cgca.uwm.edu", node: "n", key: "k42" }),
        line({ uid: "heartbeat", ptype: "request", server: "s", node: "n", key: "k43" }),
        line(["ptype", "request"]),
      ].join("\n"),
    },
    "",
    "[data]\nname = lvalertMP_o2\n",
  );
  const r = await replay(dir.path);
  assert.equal(r.code, 0, r.stderr);
  const published = of(r.events, "publish");
  assert.equal(published.length, 2);
  const response = published[0]?.payload as Event;
  assert.equal(published[0]?.node, "n");
  for (
    const [key, value] of Object.entries({
      ptype: "response",
      server: "lvalert.cgca.uwm.edu",
      node: "n",
      key: "k42",
      name: "lvalertMP_o2",
    })
  ) {
    assert.equal(response[key], value, key);
  }
  assert.equal(typeof response.hostname, "string");
  assert.equal(typeof response.user, "string");
  assert.equal(typeof response.pid, "number");
  assert.equal((published[1]?.payload as Event).key, "k43");
  // A packet that is not an object is refused, saying so; nothing else moves.
  assert.match(String(of(r.events, "alert_rejected")[0]?.reason), /object/);
});

Deno.test("the listener config is read as ConfigParser reads it, childConfigs as SafeConfigParser", async () => {
  // bin/lvalert_listenMP reads its config with ConfigParser.ConfigParser();
  // interactiveQueue.py reads the childConfig with SafeConfigParser().
  const text = "[DEFAULT]\nhost = example.org\n[s]\n" +
    "lone = ops%team@example.org\n" + // line 4
    "double = 100%%\n" + // line 5
    "ref = me@%(host)s 50%%\n" + // line 6
    "refs = %(double)s\n" + // line 7
    "bad = %(host)s 50%\n"; // line 8
  const classic = new Ini(parseIni(text, "l.ini", "ConfigParser"));
  assert.equal(classic.get("s", "lone"), "ops%team@example.org");
  assert.equal(classic.get("s", "double"), "100%%");
  assert.equal(classic.get("s", "ref"), "me@example.org 50%");
  assert.equal(classic.get("s", "refs"), "100%%");
  assert.throws(
    () => classic.get("s", "bad"),
    (e) => e instanceof ConfigError && /l\.ini:8/.test(e.message) && /%%/.test(e.message),
  );
  const safe = new Ini(parseIni(text, "c.ini"));
  assert.throws(
    () => safe.get("s", "lone"),
    (e) => e instanceof ConfigError && /c\.ini:4/.test(e.message),
  );
  assert.equal(safe.get("s", "double"), "100%");
  assert.equal(safe.get("s", "ref"), "me@example.org 50%");

  // Through the real loader: a % in a recipient of the listener config is kept.
  await using dir = await tempDir({
    "l.ini": "[a]\nnodes = n\nchildConfig = c.ini\nrecipients = ops%team@example.org\n",
    "c.ini": "[general]\nprocess_type = test\n",
  });
  const config = await loadListenerConfig(join(dir.path, "l.ini"));
  assert.deepEqual(config.sections[0]?.recipients, ["ops%team@example.org"]);
});

Deno.test("a childConfig found only from the working folder is used with a warning; print2stdout and -n as the original read them", async () => {
  // bin/lvalert_listenMP: childConfig opened as given (from the working
  // folder), print2stdout read from the listener section, -n/--node parsed
  // and never used.
  await using dir = await tempDir({
    "conf/l.ini": "[a]\nnodes = n\nchildConfig = c.ini\nprint2stdout = False\n",
    "c.ini": "[general]\nprocess_type = test\n[test]\ndelays = 0\nrepeats = 0\n",
    "r.jsonl": line({ uid: "G1", alert_type: "new" }),
  });
  const r = await runListener([
    "-c",
    "conf/l.ini",
    "-n",
    "cbc_gstlal",
    "-S",
    "--replay",
    "r.jsonl",
    "--exit-when-idle",
  ], { cwd: dir.path });
  assert.equal(r.code, 0, r.stderr);
  assert.match(
    r.stderr + r.stdout,
    /childConfig c\.ini is not beside the listener config; using .*\/c\.ini/,
  );
  assert.match(r.stderr, /-n\/--node cbc_gstlal is ignored/);
  // -S prints the original's line before the payload.
  assert.match(r.stdout, /^Payload received at \w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d \d{4}\na < /m);
  // print2stdout = False in the listener section: the child's own log lines stay in its log file.
  assert.doesNotMatch(r.stdout, /item_completed|\| a : /);
  const logged = await Deno.readTextFile(join(dir.path, "test_c.log"));
  assert.match(logged, /G1/);
});
