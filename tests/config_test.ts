import assert from "node:assert/strict";
import { join } from "node:path";
import { loadListenerConfig, logFileName } from "../lib/config/config.ts";
import { ConfigError } from "../lib/core/config_error.ts";
import { copyFixtures, tempDir } from "./helpers.ts";

const CHILD = "[general]\nprocess_type = test\n";

async function rejects(
  files: Record<string, string>,
  pattern: RegExp,
  where: { file: string; line?: number },
) {
  await using dir = await tempDir(files);
  await assert.rejects(
    loadListenerConfig(join(dir.path, "l.ini")),
    (error: unknown) => {
      assert.ok(error instanceof ConfigError, `not a ConfigError: ${error}`);
      assert.equal(error.file, join(dir.path, where.file));
      assert.equal(error.line, where.line);
      assert.match(error.message, pattern);
      return true;
    },
  );
}

Deno.test("loadListenerConfig reads the fixture into typed sections", async () => {
  await using dir = await tempDir();
  await copyFixtures(dir.path);
  const config = await loadListenerConfig(
    join(dir.path, "lvalert_listenMP.ini"),
  );
  assert.deepEqual(config.sections.map((s) => s.name), [
    "gstlal watcher",
    "burst",
  ]);
  const [gstlal, burst] = config.sections;
  assert.deepEqual(gstlal!.nodes, [
    "cbc_gstlal",
    "cbc_gstlal_lowmass",
    "command-watcher",
  ]);
  assert.equal(gstlal!.verbose, true);
  assert.equal(gstlal!.warnThr, 1000);
  assert.equal(gstlal!.maxFrac, 0.5);
  assert.deepEqual(gstlal!.recipients, ["oncall@example.org"]);
  assert.equal(gstlal!.child.path, join(dir.path, "childConfig-test.ini"));
  assert.equal(gstlal!.child.logDirectory, dir.path);
  assert.equal(gstlal!.child.logLevel, 10);
  assert.equal(gstlal!.child.processType, "test");
  assert.match(gstlal!.child.handlerPath, /workers\/handlers\/test\.ts$/);
  assert.equal(logFileName(gstlal!.child), "test_childConfig-test.log");
  assert.equal(burst!.verbose, false);
  assert.equal(burst!.maxWarn, 24);
  assert.equal(config.owners.get("burst_cwb_allsky"), "burst");
  assert.equal(config.owners.get("command-watcher"), "gstlal watcher");
});

Deno.test("loadListenerConfig resolves paths against the file that names them", async () => {
  await using dir = await tempDir({
    "l.ini": "[a]\nnodes = n\nchildConfig = sub/c.ini\n",
    "sub/c.ini": "[general]\nprocess_type = test\nlog_directory = logs\n",
  });
  const config = await loadListenerConfig(join(dir.path, "l.ini"));
  assert.equal(
    config.sections[0]!.child.logDirectory,
    join(dir.path, "sub/logs"),
  );
});

Deno.test("loadListenerConfig warns about unknown keys and quoted paths", async () => {
  await using dir = await tempDir({
    "l.ini": "[a]\nnodes = n\nchildConfig = c.ini\ncolour = blue\n",
    "c.ini": '[general]\nprocess_type = test\nlog_directory = "."\n',
  });
  const config = await loadListenerConfig(join(dir.path, "l.ini"));
  assert.equal(config.warnings.length, 2);
  assert.match(
    config.warnings.join("\n"),
    /c\.ini:3: \[general\] log_directory is quoted/,
  );
  assert.match(
    config.warnings.join("\n"),
    /l\.ini:4: \[a\] unknown key "colour"/,
  );
  assert.equal(config.sections[0]!.child.logDirectory, join(dir.path, '"."'));
});

Deno.test("loadListenerConfig refuses each kind of bad config with file and line", async (t) => {
  await t.step("a node under two sections", () =>
    rejects(
      {
        "l.ini":
          "[a]\nnodes = x y\nchildConfig = c.ini\n\n[b]\nnodes = z\n  y\nchildConfig = c.ini\n",
        "c.ini": CHILD,
      },
      /Node "y" is listed under both \[a\] and \[b\]/,
      { file: "l.ini", line: 6 },
    ));
  await t.step(
    "a missing childConfig key",
    () =>
      rejects(
        { "l.ini": "[a]\nnodes = x\n" },
        /Missing required option "childconfig" in \[a\]/,
        {
          file: "l.ini",
          line: 1,
        },
      ),
  );
  await t.step("a childConfig that does not exist", () =>
    rejects(
      { "l.ini": "[a]\nnodes = x\nchildConfig = nope.ini\n" },
      /\[a\] childConfig: .*nope\.ini: No such file/,
      { file: "l.ini", line: 3 },
    ));
  await t.step("a childConfig that cannot be read", () =>
    rejects(
      { "l.ini": "[a]\nnodes = x\nchildConfig = dir\n", "dir/f": "" },
      /\[a\] childConfig: .*dir: (Is a directory|Cannot read)/,
      { file: "l.ini", line: 3 },
    ));
  await t.step("an unknown process_type", () =>
    rejects(
      {
        "l.ini": "[a]\nnodes = x\nchildConfig = c.ini\n",
        "c.ini": "[general]\n\nprocess_type = nosuch\n",
      },
      /c\.ini:3: No handler for process_type "nosuch".*built-in: .*test/,
      { file: "l.ini", line: 3 },
    ));
  await t.step("a process_type that is not a name", () =>
    rejects(
      {
        "l.ini": "[a]\nnodes = x\nchildConfig = c.ini\n",
        "c.ini": "[general]\nprocess_type = ../../x\n",
      },
      /is not a handler name/,
      { file: "l.ini", line: 3 },
    ));
  await t.step("a childConfig without [general]", () =>
    rejects(
      {
        "l.ini": "[a]\nnodes = x\nchildConfig = c.ini\n",
        "c.ini": "[other]\nk = v\n",
      },
      /Missing section \[general\]/,
      { file: "l.ini", line: 3 },
    ));
  await t.step("a childConfig without process_type", () =>
    rejects(
      {
        "l.ini": "[a]\nnodes = x\nchildConfig = c.ini\n",
        "c.ini": "[general]\nlog_level = 10\n",
      },
      /Missing required option "process_type"/,
      { file: "l.ini", line: 3 },
    ));
  await t.step("a number that is not one", () =>
    rejects(
      {
        "l.ini": "[a]\nnodes = x\nchildConfig = c.ini\nwarnThr = lots\n",
        "c.ini": CHILD,
      },
      /\[a\] warnthr is not a number: "lots"/,
      { file: "l.ini", line: 4 },
    ));
  await t.step("a fraction out of range", () =>
    rejects(
      {
        "l.ini": "[a]\nnodes = x\nchildConfig = c.ini\nmaxFrac = 2\n",
        "c.ini": CHILD,
      },
      /maxFrac must be between 0 and 1/,
      { file: "l.ini", line: 4 },
    ));
  await t.step("a boolean that is not one", () =>
    rejects(
      {
        "l.ini": "[a]\nnodes = x\nchildConfig = c.ini\nverbose = maybe\n",
        "c.ini": CHILD,
      },
      /not a boolean: "maybe"/,
      { file: "l.ini", line: 4 },
    ));
  await t.step("an empty nodes list", () =>
    rejects(
      { "l.ini": "[a]\nnodes =\nchildConfig = c.ini\n", "c.ini": CHILD },
      /\[a\] nodes is empty/,
      { file: "l.ini", line: 2 },
    ));
  await t.step("an unknown on_child_death", () =>
    rejects(
      {
        "l.ini": "[a]\nnodes = x\nchildConfig = c.ini\non_child_death = shrug\n",
        "c.ini": CHILD,
      },
      /on_child_death must be "restart" or "exit"/,
      { file: "l.ini", line: 4 },
    ));
  await t.step("an unknown allow_sys name", () =>
    rejects(
      {
        "l.ini": "[a]\nnodes = x\nchildConfig = c.ini\n",
        "c.ini": CHILD + "allow_sys = everything\n",
      },
      /allow_sys: unknown name\(s\) everything/,
      { file: "l.ini", line: 3 },
    ));
  await t.step(
    "a file with no sections",
    () => rejects({ "l.ini": "# nothing\n" }, /No sections/, { file: "l.ini" }),
  );
  await t.step(
    "a listener config that does not exist",
    () => rejects({}, /No such file/, { file: "l.ini" }),
  );
});
