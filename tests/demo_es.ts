/**
 * `deno task demo-es`: event_supervisor watching one realistic event.
 *
 * A GraceDB test server holds a gstlal event; the listener (a real
 * process, etc/childConfig-event_supervisor-demo.ini) replays its alert
 * stream: `new`, then the log messages and uploads its follow-up processes
 * write, each written to GraceDB just before its alert, as GraceDB does.
 * The EM-bright classification never comes. The demo prints each check's
 * outcome as it happens, the mail, and the `ES:` annotations.
 */

import { join } from "node:path";
import { GraceDbTestServer } from "./gracedb_server.ts";
import { healthyFollowups, legacyUpdate } from "./event_supervisor_helpers.ts";
import { ListenerProcess, ROOT, tempDir } from "./helpers.ts";

const MISSING = "Source_Classification_G1001.json";
const SPACING = 0.1;

const MAIL_SH =
  '#!/bin/sh\n{ printf "%s|" "$@"; echo; cat; } > "$(mktemp "$(dirname "$0")/mail.XXXXXX")"\n';

async function main(): Promise<number> {
  await using gdb = await GraceDbTestServer.start();
  const graceid = gdb.addEvent({
    graceid: "G1001",
    group: "CBC",
    pipeline: "gstlal",
    search: "AllSky",
    far: 1e-8,
    gpstime: 1187008882.43,
    instruments: "H1,L1",
  });
  const config = (await Deno.readTextFile(join(ROOT, "etc/childConfig-event_supervisor-demo.ini")))
    .replace(/^gracedb\s*=.*$/m, `gracedb      = ${gdb.url}`);
  await using dir = await tempDir({
    "l.ini": "[gstlal]\nnodes = cbc_gstlal\nchildConfig = c.ini\nmail_command = ./mail.sh\n" +
      "recipients = listener@example.org\n",
    "c.ini": config,
    "mail.sh": MAIL_SH,
  });
  await Deno.chmod(join(dir.path, "mail.sh"), 0o755);
  const followups = (await healthyFollowups(graceid)).filter((f) => f.file?.name !== MISSING);
  const event =
    await (await fetch(`${gdb.url}events/${graceid}`, { headers: { "User-Agent": "demo" } }))
      .json();
  const lines = [
    {
      node: "cbc_gstlal",
      t: 0,
      id: "new",
      payload: { uid: graceid, alert_type: "new", description: "", file: "", object: event },
    },
    ...followups.map((f, i) => ({
      node: "cbc_gstlal",
      t: SPACING * (i + 1),
      id: `log${i}`,
      payload: legacyUpdate(graceid, f, i + 1),
    })),
  ];
  await Deno.writeTextFile(
    join(dir.path, "r.jsonl"),
    lines.map((l) => JSON.stringify(l)).join("\n") + "\n",
  );
  gdb.clearRequests();
  console.log(
    `GraceDB test server at ${gdb.url} holds ${graceid} (gstlal CBC AllSky, FAR 1e-8, H1,L1)`,
  );
  console.log(
    `Replaying ${lines.length} alerts over ${
      (SPACING * lines.length).toFixed(1)
    } s: new, then the ` +
      `follow-up log messages and uploads; ${MISSING} never comes`,
  );
  console.log(
    "Each check: time after the replay began, result, what decided it (an alert that proved it, " +
      "or GraceDB read at its deadline), task, result message\n",
  );
  const listener = new ListenerProcess(
    [
      "-c",
      "l.ini",
      "--replay",
      "r.jsonl",
      "--speed",
      "1",
      "--exit-when-idle",
      "--log-format",
      "json",
      "--state-dir",
      "state",
    ],
    { cwd: dir.path },
  );
  await listener.until(() => listener.named("listening").length > 0, "the replay to start");
  const start = performance.now();
  // GraceDB writes each entry, then publishes its alert.
  const timers = followups.map((f, i) =>
    setTimeout(() => {
      gdb.addLog(graceid, f.comment, {
        ...(f.tags ? { tags: f.tags } : {}),
        ...(f.file ? { file: f.file } : {}),
      });
    }, Math.max(0, SPACING * (i + 1) * 1000 - 30))
  );
  let shown = 0;
  const show = () => {
    const outcomes = listener.named("check_outcome");
    for (; shown < outcomes.length; shown++) {
      const e = outcomes[shown]!;
      const at = ((performance.now() - start) / 1000).toFixed(1).padStart(4);
      const how = e.early ? "alert  " : "GraceDB";
      const result = String(e.result).toUpperCase().padEnd(4);
      console.log(`  +${at} s ${result} ${how} ${String(e.task).padEnd(21)} ${e.message}`);
    }
  };
  const timer = setInterval(show, 50);
  const code = await listener.exited();
  clearInterval(timer);
  timers.forEach(clearTimeout);
  show();
  await summary(gdb, graceid, dir.path, listener);
  return code;
}

async function summary(
  gdb: GraceDbTestServer,
  graceid: string,
  dir: string,
  listener: ListenerProcess,
) {
  const outcomes = listener.named("check_outcome");
  const count = (result: string) => outcomes.filter((e) => e.result === result).length;
  const early = outcomes.filter((e) => e.early).length;
  console.log(
    `\nChecks: ${count("pass")} passed (${early} proved early by alerts), ${
      count("fail")
    } failed, ` +
      `${count("exception")} exceptions; GraceDB reads ${
        gdb.requests.filter((r) => r.method === "GET").length
      }, ` +
      `writes ${gdb.writes().length}`,
  );
  console.log("\nMail:");
  for await (const entry of Deno.readDir(dir)) {
    if (!entry.name.startsWith("mail.") || entry.name === "mail.sh") continue;
    const text = await Deno.readTextFile(join(dir, entry.name));
    const [argv = "", ...body] = text.split("\n");
    const args = argv.split("|").slice(0, -1);
    const s = args.indexOf("-s");
    console.log(`  To: ${args.filter((_, i) => i !== s && i !== s + 1).join(" ")}`);
    console.log(`  Subject: ${args[s + 1]}`);
    for (const line of body) console.log(`  | ${line}`);
  }
  const notes = gdb.logsOf(graceid).filter((l) => String(l.comment).startsWith("ES: "));
  const failing = notes.filter((l) => !String(l.comment).includes("no action required"));
  console.log(
    `\nGraceDB annotations: ${notes.length} "ES: ..." log entries tagged event_supervisor; the failing one:`,
  );
  for (const l of failing) {
    console.log(`  N=${l.N} ${l.comment}  tags=${JSON.stringify(l.tag_names)}`);
  }
}

if (import.meta.main) Deno.exit(await main());
