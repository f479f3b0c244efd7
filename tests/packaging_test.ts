/**
 * The two ways users get the command: `deno install` (tested for real)
 * and `deno compile`, whose module graph, `--include` folders and flags are
 * checked here with this machine's own deno standing in for the runtime it
 * cannot download; that output is discarded, never run as the product.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import denoJson from "../deno.json" with { type: "json" };
import { copyFixtures, ROOT, tempDir } from "./helpers.ts";

function taskArgs(task: string): string[] {
  // The tasks are plain commands: split on spaces, drop the leading "deno".
  return task.split(/\s+/).slice(1);
}

Deno.test("deno task install puts a working lvalert_listenMP on the PATH", async () => {
  await using dir = await tempDir();
  await copyFixtures(dir.path);
  const install = await new Deno.Command(Deno.execPath(), {
    args: [...taskArgs(denoJson.tasks.install), "--root", dir.path],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.ok(install.success, new TextDecoder().decode(install.stderr));
  const bin = join(dir.path, "bin", "lvalert_listenMP");
  const script = await Deno.readTextFile(bin);
  assert.match(script, /--unstable-worker-options/);
  assert.match(script, /--allow-sys=hostname/);
  const path = `${join(Deno.execPath(), "..")}:${Deno.env.get("PATH")}`;
  const run = await new Deno.Command(bin, {
    args: ["-c", join(dir.path, "lvalert_listenMP.ini"), "--check-config"],
    cwd: dir.path,
    env: { PATH: path },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const out = new TextDecoder().decode(run.stdout);
  assert.equal(run.code, 0, new TextDecoder().decode(run.stderr));
  assert.match(out, /OK: 2 children, 4 nodes/);
});

Deno.test("deno task compile has a valid module graph, includes and flags", async () => {
  await using dir = await tempDir();
  const args = taskArgs(denoJson.tasks.compile);
  assert.ok(
    args.includes("--include") && args.includes("workers/"),
    "handlers load by dynamic import",
  );
  assert.ok(
    args.includes("--unstable-worker-options"),
    "workers get scoped permissions",
  );
  const output = args.indexOf("--output");
  args[output + 1] = join(dir.path, "stand-in");
  const compile = await new Deno.Command(Deno.execPath(), {
    args,
    cwd: ROOT,
    env: { DENORT_BIN: Deno.execPath() },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(compile.stderr) +
    new TextDecoder().decode(compile.stdout);
  assert.ok(compile.success, text);
  assert.match(
    text,
    /workers\/\*/,
    "the workers and handlers folder is embedded",
  );
});

Deno.test("the systemd unit's command line is one the listener accepts", async () => {
  const { parseListenArgs } = await import("../lib/config/cli.ts");
  const unit = await Deno.readTextFile(join(ROOT, "etc", "lvalert_listenMP.service"));
  const exec = /^ExecStart=(\S+) (.*)$/m.exec(unit);
  assert.ok(exec, "an ExecStart line");
  assert.match(exec[1]!, /lvalert_listenMP$/);
  const parsed = parseListenArgs(exec[2]!.split(/\s+/));
  assert.ok(parsed.ok, parsed.ok ? "" : parsed.message);
  assert.equal(parsed.value.stateDir, "/var/lib/lvalertMP");
  assert.match(unit, /^KillSignal=SIGTERM$/m);
  assert.match(unit, /^Restart=on-failure$/m);
  assert.match(unit, /^RestartPreventExitStatus=77 78$/m);
});
