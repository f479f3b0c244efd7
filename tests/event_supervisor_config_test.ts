/**
 * event_supervisor childConfigs at start-up (`--check-config`): every O2
 * form passes unchanged; a missing option or a value of the wrong type
 * stops the listener with exit 78 and `file:line`; a site's own checks
 * are read the same way.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { ROOT, runListener, tempDir } from "./helpers.ts";

const FIXTURES = new URL("./fixtures/event_supervisor/", import.meta.url).pathname;

async function checkConfig(childConfig: string) {
  await using dir = await tempDir({
    "l.ini": "[es]\nnodes = cbc_gstlal\nchildConfig = c.ini\n",
    "c.ini": childConfig,
  });
  const r = await runListener(["-c", join(dir.path, "l.ini"), "--check-config"]);
  return { ...r, file: join(dir.path, "c.ini") };
}

Deno.test("every O2 childConfig form, the original's test config and etc/'s pass --check-config unchanged", async () => {
  const forms = [
    "O2-gstlal.ini",
    "O2-cWB.ini",
    "O2-cWBLong.ini",
    "O2-oLIB.ini",
    "O2-External.ini",
    "Tests.ini",
  ]
    .map((name) => join(FIXTURES, name));
  forms.push(
    join(ROOT, "etc/childConfig-event_supervisor.ini"),
    join(ROOT, "etc/childConfig-event_supervisor-demo.ini"),
  );
  // One child per form, in one listener config: one start-up checks them all.
  await using dir = await tempDir({
    "l.ini": forms.map((path, i) => `[child${i}]\nnodes = node${i}\nchildConfig = ${path}\n`).join(
      "\n",
    ),
  });
  const r = await runListener(["-c", join(dir.path, "l.ini"), "--check-config"]);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.equal(r.stdout.match(/handler: event_supervisor .*loaded/g)?.length, forms.length);
  assert.match(r.stdout, /net: gracedb\.ligo\.org/);
  assert.match(r.stdout, new RegExp(`OK: ${forms.length} children`));
});

Deno.test("a missing or mistyped option stops start-up with exit 78 and file:line", async (t) => {
  const o2 = await Deno.readTextFile(join(FIXTURES, "O2-gstlal.ini"));
  const lineOf = (text: string, needle: string) =>
    text.split("\n").findIndex((l) => l.startsWith(needle)) + 1;
  const cases: [string, string, RegExp, string][] = [
    [
      "ER10's single email option",
      await Deno.readTextFile(join(FIXTURES, "ER10-far.ini")),
      /Missing required option "email on success" in \[far\]/,
      "[far]",
    ],
    [
      "a timeout that is no number",
      o2.replace("dt = 60.0\nifos", "dt = soon\nifos"),
      /\[idq start\] dt is not a number: "soon"/,
      "dt = soon",
    ],
    [
      "ignore inj that is no boolean",
      o2.replace("ignore inj = True", "ignore inj = perhaps"),
      /\[notify\] ignore inj is not a boolean: "perhaps"/,
      "ignore inj",
    ],
    [
      "annotate missing",
      o2.replace("annotate = True\n", ""),
      /Missing required option "annotate" in \[general\]/,
      "[general]",
    ],
    [
      "gracedb missing",
      o2.replace("gracedb = https://gracedb.ligo.org/api/\n", ""),
      /Missing required option "gracedb" in \[general\]/,
      "[general]",
    ],
    [
      "veto defs set",
      o2.replace("veto defs = ", "veto defs = H1:VETO"),
      /\[segdb2grcdb\] veto defs is not implemented/,
      "veto defs",
    ],
    [
      "by sms set",
      o2.replace("by sms = ", "by sms = 5551234"),
      /\[notify\] by sms is not implemented/,
      "by sms",
    ],
    [
      "a missing timeout",
      o2.replace("finish dt = 90.0\n", ""),
      /Missing required option "finish dt" in \[bayestar finish\]/,
      "[bayestar finish]",
    ],
  ];
  // Each case is its own start-up; they run side by side.
  const results = await Promise.all(cases.map(([, text]) => checkConfig(text)));
  for (const [i, [what, text, message, line]] of cases.entries()) {
    await t.step(what, () => {
      if (i > 0) assert.notEqual(text, o2, "the case edits the config");
      const r = results[i]!;
      assert.equal(r.code, 78, r.stdout + r.stderr);
      const output = r.stdout + r.stderr;
      assert.match(output, message);
      assert.ok(
        output.includes(`${r.file}:${lineOf(text, line)}:`),
        `names ${line} at ${lineOf(text, line)}: ${output}`,
      );
    });
  }
});

Deno.test("a site's own check in the childConfig: accepted, and its mistakes named at start", async (t) => {
  const base =
    "[general]\nprocess_type = event_supervisor\ngracedb = https://gracedb.example.org/api/\n" +
    "annotate = True\nwarnings = True\n";
  const own = (body: string) =>
    `${base}\n[gwcelery sky map]\n${body}\nemail on success =\nemail on failure = ops@example.org\nemail on exception =\n`;
  const accepted = own(
    "created by = new\ncheck = file bayestar.multiorder.fits\n        logrx sky localization (complete|done)\ntags = sky_loc\ndt = 120",
  );
  const cases = [
    ["an unknown kind", "check = lgo text\ndt = 1", /check: "lgo text" is not "log TEXT"/],
    ["a bad pattern", "check = logrx (unclosed\ndt = 1", /not a regular expression/],
    ["an unknown place", "check = file {fits}.png\ndt = 1", /\{fits\} is not known here/],
    [
      "a bad trigger",
      "created by = label DQV\ncheck = log x\ndt = 1",
      /created by must be new, fits/,
    ],
    ["no timeout", "check = log x", /Missing required option "dt" in \[gwcelery sky map\]/],
  ] as const;
  // Each case is its own start-up; they run side by side.
  const [ok, ...results] = await Promise.all(
    [accepted, ...cases.map(([, body]) => own(body))].map(checkConfig),
  );
  await t.step("accepted", () => assert.equal(ok!.code, 0, ok!.stdout + ok!.stderr));
  for (const [i, [what, , message]] of cases.entries()) {
    await t.step(what, () => {
      const r = results[i]!;
      assert.equal(r.code, 78, r.stdout + r.stderr);
      assert.match(r.stdout + r.stderr, message);
      assert.match(r.stdout + r.stderr, /c\.ini:\d+: /);
    });
  }
});
