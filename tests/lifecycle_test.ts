/**
 * Starting and stopping: the first SIGINT/SIGTERM stops the listener
 * cleanly even while it is still connecting or backing off; a second one
 * exits at once and says what it abandons; `--stop-timeout` bounds a stop
 * whose child hangs. Real listener processes.
 */

import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { ListenerProcess, tempDir, waitFor } from "./helpers.ts";
import { freePort } from "./prosody.ts";

const MOD = new URL("../lib/mod.ts", import.meta.url).href;

/** A handler whose every task waits for ever (until its time limit). */
const HANGING = `
import { type ChildContext, QueueItem, Task } from "${MOD}";
export class Hang extends Task {
  execute() { return new Promise(() => {}); }
}
export function parseAlert(ctx: ChildContext, alert: { uid: string }, t0: number) {
  ctx.queue.insert(new QueueItem(t0, [new Hang(0)], { graceid: alert.uid }));
}
`;

async function hangingWorld() {
  const dir = await tempDir({
    "l.ini": "[a]\nnodes = n\nchildConfig = c.ini\ntask_timeout = 600\n",
    "c.ini": "[general]\nprocess_type = hang\nhandler = h.ts\n",
    "h.ts": HANGING,
    "r.jsonl": JSON.stringify({ node: "n", payload: { uid: "G1", alert_type: "new" } }) + "\n",
  });
  return dir;
}

Deno.test("SIGINT while backing off from an unreachable server stops at once, exit 0", async () => {
  await using dir = await tempDir({
    "l.ini": "[a]\nnodes = n\nchildConfig = c.ini\n",
    "c.ini": "[general]\nprocess_type = test\n",
    "netrc": "machine 127.0.0.1 login u password p\n",
  });
  await Deno.chmod(join(dir.path, "netrc"), 0o600);
  await using listener = new ListenerProcess([
    ...["-c", join(dir.path, "l.ini"), "-s", "127.0.0.1", "--port", String(freePort())],
    ...["-N", join(dir.path, "netrc"), "--allow-plaintext", "--state-dir", join(dir.path, "s")],
    ...["--log-format", "json"],
  ]);
  await listener.until(() => listener.named("xmpp_retry").length === 1, "the first retry");
  assert.equal(await listener.stop("SIGINT"), 0, listener.stderr);
  // The wait before the second attempt (>= 0.5 s) was cut short: no second attempt.
  assert.equal(listener.named("xmpp_retry").length, 1);
  assert.equal(listener.named("summary").length, 1);
});

Deno.test("a second SIGTERM exits at once with 143 and names what it abandons", async () => {
  await using dir = await hangingWorld();
  await using listener = new ListenerProcess([
    ...["-c", join(dir.path, "l.ini"), "--replay", join(dir.path, "r.jsonl")],
    ...["--state-dir", join(dir.path, "s"), "--log-format", "json"],
  ]);
  await listener.until(() => listener.named("alert").length === 1, "the alert");
  listener.signal("SIGTERM");
  await listener.until(() => listener.named("stopping").length === 1, "the stop to begin");
  // The children are told to stop once the control socket is closed (and its file gone).
  await waitFor(() => !existsSync(join(dir.path, "s", "control.sock")), "the control socket gone");
  listener.signal("SIGTERM");
  assert.equal(await listener.exited(), 143);
  assert.match(listener.stderr, /second SIGTERM: exiting at once; abandoned: \[a\] stopping/);
});

Deno.test("--stop-timeout ends a stop whose child hangs, and says so", async () => {
  await using dir = await hangingWorld();
  await using listener = new ListenerProcess([
    ...["-c", join(dir.path, "l.ini"), "--replay", join(dir.path, "r.jsonl")],
    ...["--state-dir", join(dir.path, "s"), "--log-format", "json", "--stop-timeout", "0.5"],
  ]);
  await listener.until(() => listener.named("alert").length === 1, "the alert");
  assert.equal(await listener.stop("SIGTERM"), 0, listener.stderr);
  const killed = listener.named("child_killed");
  assert.equal(killed.length, 1);
  assert.match(String(killed[0]!.msg), /did not stop within 0\.5 s and was terminated/);
  assert.equal(listener.named("summary").length, 1);
});
