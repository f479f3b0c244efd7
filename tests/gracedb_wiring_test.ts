/**
 * A child whose childConfig names a GraceDB gets `ctx.gracedb`: the
 * listener finds the credentials (the worker can read no file or variable),
 * the worker may reach that host and no other, and `--check-config` shows
 * both. Real listener process, real worker, the GraceDB test server.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { runListener, tempDir } from "./helpers.ts";
import { GraceDbTestServer } from "./gracedb_server.ts";

/** A handler that annotates each new event, and tries a host it was not granted. */
const HANDLER = `
import type { Alert, ChildContext } from "${new URL("../lib/mod.ts", import.meta.url).href}";
export async function parseAlert(ctx: ChildContext, alert: Alert) {
  await ctx.gracedb!.writeLog(alert.uid, "seen by the child", { tags: ["lvalertMP"] });
  let other = "reached";
  try {
    await fetch("http://127.0.0.2:18080/");
  } catch (error) {
    other = (error as Error).name + ": " + (error as Error).message;
  }
  ctx.log.event("info", "probe", { other });
}
`;

Deno.test("a child gets a GraceDB client for its configured host only, logged in by the listener", async () => {
  await using gdb = await GraceDbTestServer.start({ requireAuth: true, token: "s3cret-token" });
  const graceid = gdb.addEvent({ group: "CBC", pipeline: "gstlal", gpstime: 1e9 });
  await using dir = await tempDir({
    "l.ini": "[a]\nnodes = n\nchildConfig = c.ini\n",
    "c.ini":
      `[general]\nprocess_type = probe\nhandler = h.ts\nlog_directory = logs\ngracedb = ${gdb.url}\n`,
    "h.ts": HANDLER,
    "r.jsonl": JSON.stringify({ node: "n", payload: { uid: graceid, alert_type: "new" } }) + "\n",
    "token": "s3cret-token\n",
  });
  const env = { BEARER_TOKEN_FILE: join(dir.path, "token"), HOME: dir.path };
  const check = await runListener(["-c", join(dir.path, "l.ini"), "--check-config"], { env });
  assert.equal(check.code, 0, check.stderr);
  const host = new URL(gdb.url).host;
  assert.match(check.stdout, new RegExp(`net: ${host.replace(".", "\\.")}`));
  assert.match(
    check.stdout,
    /gracedb: http:\/\/127\.0\.0\.1:\d+\/api\/ \(bearer token from \$BEARER_TOKEN_FILE/,
  );
  assert.doesNotMatch(check.stdout + check.stderr, /s3cret-token/);

  const run = await runListener([
    "-c",
    join(dir.path, "l.ini"),
    "--replay",
    join(dir.path, "r.jsonl"),
    "--exit-when-idle",
    "--log-format",
    "json",
  ], { env });
  assert.equal(run.code, 0, run.stderr);
  const writes = gdb.writes();
  assert.equal(writes.length, 1);
  assert.equal(writes[0]!.path, `/api/events/${graceid}/log/`);
  assert.equal(writes[0]!.auth, "bearer");
  assert.equal(writes[0]!.status, 201);
  assert.match(writes[0]!.userAgent ?? "", /^lvalertMP\/\d+\.\d+\.\d+/);
  const probe = run.events.find((e) => e.event === "probe");
  assert.match(
    String(probe?.other),
    /^NotCapable: /,
    "another host must be out of the worker's reach",
  );
  assert.doesNotMatch(run.stdout + run.stderr, /s3cret-token/);
});

Deno.test("a gracedb that is not an http(s) URL is a config error naming file and line", async () => {
  await using dir = await tempDir({
    "l.ini": "[a]\nnodes = n\nchildConfig = c.ini\n",
    "c.ini": "[general]\nprocess_type = test\n\ngracedb = gracedb.ligo.org\n",
  });
  const check = await runListener(["-c", join(dir.path, "l.ini"), "--check-config"]);
  assert.equal(check.code, 78);
  assert.match(check.stderr, /c\.ini:4: \[general\] gracedb must be an http\(s\) URL/);
});
