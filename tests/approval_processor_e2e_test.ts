/**
 * approval_processor in the real listener process: the original's config
 * form accepted by --check-config (and a wrong type refused with exit 78
 * and file:line), a clean event driven to `complete` through replayed
 * alert streams with GraceDB's own alerts fed back between runs, mail
 * through mail_command, resetThrottle as a command alert and through ctl,
 * and a SIGKILL in the middle of an action, then recovery.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import type { Alert } from "../lib/core/alert.ts";
import { GraceDbTestServer } from "./gracedb_server.ts";
import { ListenerProcess, readMail, runListener, tempDir } from "./helpers.ts";
import { GraceDbBridge } from "./fixtures/approval_processor/bridge.ts";
import { CONFIG_TEXT } from "./fixtures/approval_processor/harness.ts";

const CBC = { group: "CBC", pipeline: "gstlal", search: "LowMass", gpstime: 1e9 };
const LISTENER = "[approval_processorMP]\n" +
  "nodes = cbc_gstlal burst_cwb approval_processorMPcommands\n" +
  "childConfig = childConfig-approval_processorMP.ini\n" +
  "verbose = True\nsleep = 0.1\nmaxComplete = 100\nmaxFrac = 0.5\n" +
  "recipients = ops@example.org\nmail_command = ./mail.sh\n";
// One file per mail: mails may be sent at the same time.
const MAIL_SH =
  '#!/bin/sh\n{ printf "%s|" "$@"; echo; cat; } > "$(mktemp "$(dirname "$0")/mail.XXXXXX")"\n';

Deno.test("--check-config accepts the original's childConfig form; a wrong type exits 78 with file:line", async () => {
  await using dir = await tempDir({
    "l.ini": LISTENER,
    "childConfig-approval_processorMP.ini": CONFIG_TEXT,
  });
  const ok = await runListener(["-c", join(dir.path, "l.ini"), "--check-config"]);
  assert.equal(ok.code, 0, ok.stderr);
  assert.match(ok.stdout, /handler: approval_processorMP .*loaded/);
  assert.match(ok.stdout, /gracedb: https:\/\/gracedb-test\.ligo\.org\/api\//);
  const etc = new URL("../etc/childConfig-approval_processor.ini", import.meta.url).pathname;
  await Deno.writeTextFile(
    join(dir.path, "etc.ini"),
    LISTENER.replace(/childConfig = .*/, `childConfig = ${etc}`),
  );
  const example = await runListener(["-c", join(dir.path, "etc.ini"), "--check-config"]);
  assert.equal(example.code, 0, example.stderr);
  const cases: [string, string, RegExp][] = [
    [
      "forgetmenow_timeout = 604800",
      "forgetmenow_timeout = a week",
      /:13: .*forgetmenow_timeout is not a number/,
    ],
    ["hardware_inj = no", "hardware_inj = 0", /:24: \[labelCheck\] hardware_inj must be yes or no/],
    [
      "conf = 0.9999\n\n[CBC_MBTAOnline]",
      "conf = 1.5\n\n[CBC_MBTAOnline]",
      /:57: \[default_PipelineThrottle\] conf must be a number between 0 and 1/,
    ],
    [
      "client = https://gracedb-test.ligo.org/api/",
      "client = /home/me/fakedb",
      /:9: \[general\] client must be a GraceDB API URL/,
    ],
  ];
  for (const [from, to, error] of cases) {
    await Deno.writeTextFile(
      join(dir.path, "childConfig-approval_processorMP.ini"),
      CONFIG_TEXT.replace(from, to),
    );
    const bad = await runListener(["-c", join(dir.path, "l.ini"), "--check-config"]);
    assert.equal(bad.code, 78, `${to}\n${bad.stdout}${bad.stderr}`);
    assert.match(bad.stderr, error);
  }
});

/** A scenario run as a series of listener runs on one state folder. */
class Stage {
  readonly bridge: GraceDbBridge;
  readonly dir: string;
  #phase = 0;

  constructor(readonly server: GraceDbTestServer, dir: string) {
    this.bridge = new GraceDbBridge(server);
    this.dir = dir;
  }

  get state(): string {
    return join(this.dir, "state");
  }

  /** Writes GraceDB's pending alerts (and `extra`) as this run's replay file. */
  async stream(extra: Alert[] = []): Promise<string> {
    const alerts = [...await this.bridge.changes(), ...extra];
    const n = ++this.#phase;
    const file = join(this.dir, `phase${n}.jsonl`);
    const lines = alerts.map((payload, i) =>
      JSON.stringify({ node: "cbc_gstlal", id: `p${n}-${i}`, payload })
    );
    await Deno.writeTextFile(file, lines.join("\n") + "\n");
    return file;
  }

  start(file: string): ListenerProcess {
    return new ListenerProcess(
      ["-c", "l.ini", "--replay", file, "--state-dir", this.state, "--log-format", "json"],
      { cwd: this.dir },
    );
  }

  /** One listener run: replays GraceDB's alerts, waits for `done`, stops it. */
  async run(done: () => boolean, what: string, extra: Alert[] = []): Promise<void> {
    const listener = this.start(await this.stream(extra));
    await listener.until(done, what, 30);
    assert.equal(await listener.stop(), 0, listener.stderr);
    assert.equal(listener.named("task_failed").length, 0, listener.stdout);
  }
}

async function stage(dir: string, server: GraceDbTestServer): Promise<Stage> {
  await Deno.writeTextFile(join(dir, "l.ini"), LISTENER);
  await Deno.writeTextFile(join(dir, "mail.sh"), MAIL_SH);
  await Deno.chmod(join(dir, "mail.sh"), 0o755);
  await Deno.writeTextFile(
    join(dir, "childConfig-approval_processorMP.ini"),
    `${CONFIG_TEXT}\n[general]\nclient = ${server.url}\ngracedb_call_time = 5\n` +
      "gracedb_retry_delay = 1\n[grouper]\ngrouperWin = 2\ndecisionWin = 1\n",
  );
  return new Stage(server, dir);
}

const EXPECTED_LABELS = ["EM_Selected", "H1OPS", "L1OPS", "ADVREQ", "EM_READY", "PE_READY"];

/** Drives one event from `new` to `complete`; `kill` may interrupt the selection run. */
async function clean(
  s: Stage,
  kill?: (s: Stage, file: string, g: string) => Promise<void>,
): Promise<string> {
  const g = s.bridge.addEvent(CBC);
  const has = (label: string) => () => s.server.labelsOf(g).includes(label);
  const comments = () => s.server.logsOf(g).map((l) => l.comment);
  await s.run(() => comments().includes("AP: Grouper made a selection."), "the Grouper's decision");
  if (kill) await kill(s, await s.stream(), g);
  else await s.run(has("ADVREQ"), "pass-1");
  s.bridge.uploadSkymap(g, "bayestar.fits.gz");
  const signoffs = [
    await s.bridge.signoff(g, "OP", "OK", "H1"),
    await s.bridge.signoff(g, "OP", "OK", "L1"),
    await s.bridge.signoff(g, "ADV", "OK"),
  ];
  await s.run(has("EM_READY"), "EM_READY", signoffs);
  await s.run(() => s.server.voEventsOf(g).length === 3, "the initial VOEvent");
  s.bridge.uploadSkymap(g, "lalinference.fits.gz");
  await s.run(has("PE_READY"), "PE_READY");
  await s.run(() => s.server.voEventsOf(g).length === 4, "the update VOEvent");
  return g;
}

function assertComplete(s: Stage, g: string): void {
  assert.deepEqual(s.server.labelsOf(g), EXPECTED_LABELS);
  assert.deepEqual(
    s.server.voEventsOf(g).map((v) => [v.voevent_type, v.skymap_filename]),
    [["PR", null], ["PR", "bayestar.fits.gz"], ["IN", "bayestar.fits.gz"], [
      "UP",
      "lalinference.fits.gz",
    ]],
  );
}

Deno.test("a clean event reaches complete through the real listener, runs apart, with its mail", async () => {
  await using server = await GraceDbTestServer.start();
  await using dir = await tempDir();
  const s = await stage(dir.path, server);
  const g = await clean(s);
  assertComplete(s, g);
  const comments = server.logsOf(g).map((l) => String(l.comment)).filter((c) =>
    c.startsWith("AP: ")
  );
  assert.equal(new Set(comments).size, comments.length, "no log entry written twice");
  const mail = await readMail(dir.path);
  assert.match(
    mail,
    new RegExp(`-s\\|${g} passed criteria for follow-up\\|advocates@example\\.org\\|`),
  );
});

Deno.test("SIGKILL while a VOEvent request is in flight: after recovery nothing is lost and no VOEvent or label repeats", async () => {
  await using server = await GraceDbTestServer.start();
  await using dir = await tempDir();
  const s = await stage(dir.path, server);
  const inFlight = () =>
    server.requests.find((r) => r.method === "POST" && r.path.endsWith("/voevent/"));
  const g = await clean(s, async (s, file, g) => {
    server.inject({ path: /\/voevent\/$/, method: "POST", delayMs: 1500 });
    const first = s.start(file);
    await first.until(() => inFlight() !== undefined, "the preliminary VOEvent request");
    assert.equal(await first.stop("SIGKILL"), 137);
    // The request GraceDB was serving completes; the restart must find it there.
    await first.until(() => inFlight()?.status === 201, "GraceDB to finish the request");
    const again = s.start(file);
    await again.until(() => server.labelsOf(g).includes("ADVREQ"), "pass-1 after the restart", 30);
    assert.ok(again.named("recovered").length > 0, "recovered from snapshot and journal");
    // Logged before the label is asked for, but it reaches us through the listener.
    await again.until(
      () =>
        again.named("ap").some((e) =>
          /This preliminary VOEvent has been sent previously/.test(String(e.msg))
        ),
      "the VOEvent GraceDB made before the kill found, not requested again",
    );
    assert.equal(await again.stop(), 0);
  });
  assertComplete(s, g);
  const comments = server.logsOf(g).map((l) => String(l.comment)).filter((c) =>
    c.startsWith("AP: ")
  );
  for (const c of new Set(comments)) {
    assert.ok(comments.filter((x) => x === c).length <= 2, `"${c}" at most twice (at least once)`);
  }
  for (const c of ["AP: Labeling H1OPS.", "AP: Labeling ADVREQ.", "AP: Labeling EM_READY."]) {
    assert.equal(comments.filter((x) => x === c).length, 1, `${c} written after the kill, once`);
  }
  const advreq = (await readMail(dir.path)).split(`${g} passed criteria for follow-up`).length - 1;
  assert.equal(advreq, 1);
});

Deno.test("resetThrottle as a command alert and through ctl, on a running listener", async () => {
  await using server = await GraceDbTestServer.start();
  await using dir = await tempDir();
  const s = await stage(dir.path, server);
  const ids = [0, 10, 20].map((dt) => s.bridge.addEvent({ ...CBC, gpstime: 1e9 + dt }));
  const reset = {
    uid: "command",
    alert_type: "resetThrottle",
    object: { group: "CBC", pipeline: "gstlal", search: "LowMass" },
  };
  const listener = s.start(await s.stream([reset]));
  await listener.until(
    () => ids.every((id) => server.labelsOf(id).includes("EM_Throttled")),
    "three events throttled",
  );
  await listener.until(
    () => listener.named("command").some((e) => e.msg === "After reset, events list: []"),
    "the reset",
  );
  const ctl = await runListener([
    "ctl",
    "--state-dir",
    s.state,
    "group,CBC",
    "pipeline,gstlal",
    "search,LowMass",
    "resetThrottle",
  ]);
  assert.equal(ctl.code, 0, ctl.stderr);
  assert.match(ctl.stdout, /\[approval_processorMP\] no PipelineThrottle for CBC_gstlal_LowMass/);
  const dump = await runListener([
    "ctl",
    "--state-dir",
    s.state,
    `graceid,${ids[0]}`,
    "printEventDicts",
  ]);
  assert.equal(dump.code, 0, dump.stderr);
  assert.match(dump.stdout, new RegExp(`^${ids[0]}$`, "m"));
  assert.match(dump.stdout, /^ {4}currentstate: new_awaiting_grouperSelection$/m);
  assert.match(dump.stdout, /^ {4}pipeline: gstlal$/m);
  assert.doesNotMatch(dump.stdout, /loggermessages/);
  const missing = await runListener(["ctl", "--state-dir", s.state, "group,CBC", "resetThrottle"]);
  assert.notEqual(missing.code, 0);
  assert.match(
    missing.stdout + missing.stderr,
    /Command=resetThrottle is missing required kwarg=pipeline/,
  );
  assert.equal(await listener.stop(), 0);
});
