import assert from "node:assert/strict";
import { ConfigError } from "../lib/core/config_error.ts";
import { Ini, parseIni } from "../lib/config/ini.ts";

function ini(text: string): Ini {
  return new Ini(parseIni(text, "x.ini"));
}

function throwsAt(
  fn: () => unknown,
  line: number | undefined,
  pattern: RegExp,
) {
  assert.throws(fn, (error: unknown) => {
    assert.ok(error instanceof ConfigError, `not a ConfigError: ${error}`);
    assert.equal(error.file, "x.ini");
    assert.equal(error.line, line);
    assert.match(error.message, pattern);
    return true;
  });
}

Deno.test("Ini splits on the first '=' or ':' and keeps signs and spaces in names", () => {
  const c = ini("[s]\nmin far = 1e-7\nwin+: 5\nurl = http://x:80/a=b\nk:v=w\n");
  assert.equal(c.get("s", "min far"), "1e-7");
  assert.equal(c.get("s", "win+"), "5");
  assert.equal(c.get("s", "url"), "http://x:80/a=b");
  assert.equal(c.get("s", "k"), "v=w");
});

Deno.test("Ini option names are case-insensitive, section names are not", () => {
  const c = ini("[Gstlal Watcher]\nMaxComplete = 100\n");
  assert.equal(c.get("Gstlal Watcher", "maxcomplete"), "100");
  assert.equal(c.get("Gstlal Watcher", "MAXCOMPLETE"), "100");
  assert.equal(c.hasSection("gstlal watcher"), false);
  assert.deepEqual(c.sections(), ["Gstlal Watcher"]);
});

Deno.test("Ini comments: '#', ';' and 'rem' lines; ';' after whitespace inside a value", async (t) => {
  const c = ini(
    "# top\n; also\nrem old style\nREM too\n[s]\na = 1 ; note\nb = x;y\nc = a # b\nd = ;lead\nremote = kept\n",
  );
  await t.step("whole-line comments are skipped", () => {
    assert.deepEqual(c.sections(), ["s"]);
  });
  await t.step("inline ';' needs whitespace before it", () => {
    assert.equal(c.get("s", "a"), "1");
    assert.equal(c.get("s", "b"), "x;y");
  });
  await t.step("'#' inside a value is kept", () => {
    assert.equal(c.get("s", "c"), "a # b");
  });
  await t.step("a leading ';' is kept, as Python 2.7 does", () => {
    assert.equal(c.get("s", "d"), ";lead");
  });
  await t.step("only the word rem starts a comment", () => {
    assert.equal(c.get("s", "remote"), "kept");
  });
});

Deno.test("Ini joins indented continuation lines with newlines, blank lines between allowed", () => {
  const c = ini("[s]\nnodes = a b\n   c\n\n\td ; kept\nnext = 1\n");
  assert.equal(c.get("s", "nodes"), "a b\nc\nd ; kept");
  assert.equal(c.line("s", "nodes"), 2);
  assert.equal(c.get("s", "next"), "1");
});

Deno.test('Ini reads "" as empty and keeps other quotes', () => {
  const c = ini('[s]\nempty = ""\ndot = "."\nsingle = \'x\'\n');
  assert.equal(c.get("s", "empty"), "");
  assert.equal(c.get("s", "dot"), '"."');
  assert.equal(c.get("s", "single"), "'x'");
});

Deno.test("Ini DEFAULT shows through and interpolates %(name)s and %%", () => {
  const c = ini(
    "[DEFAULT]\nroot = /data\nlevel = 10\n[a]\nlog = %(root)s/logs\npct = 50%%\nname = %(__name__)s\n[b]\nroot = /other\nlog = %(root)s/x\n",
  );
  assert.equal(c.get("a", "log"), "/data/logs");
  assert.equal(c.get("a", "pct"), "50%");
  assert.equal(c.get("a", "name"), "a");
  assert.equal(c.get("a", "level"), "10");
  assert.equal(c.get("b", "log"), "/other/x");
  assert.deepEqual(c.sections(), ["a", "b"]);
  assert.ok(c.options("a").includes("root"));
});

Deno.test("Ini interpolation errors name the option and line", async (t) => {
  const c = ini(
    "[s]\nbad = 5%\nmissing = %(nope)s\nloop = %(loop)s\nopen = %(x\n",
  );
  await t.step(
    "a lone %",
    () => throwsAt(() => c.get("s", "bad"), 2, /must be followed by/),
  );
  await t.step(
    "a missing reference",
    () => throwsAt(() => c.get("s", "missing"), 3, /names no option/),
  );
  await t.step(
    "a reference loop",
    () => throwsAt(() => c.get("s", "loop"), 4, /deeper than 10/),
  );
  await t.step(
    "an unclosed reference",
    () => throwsAt(() => c.get("s", "open"), 5, /bad interpolation/),
  );
});

Deno.test("Ini getters parse as getfloat/getint/getboolean do", async (t) => {
  const c = ini(
    "[s]\nf1 = 1e3\nf2 = -.5\nf3 = inf\ni = +7\nb1 = Yes\nb2 = off\nb3 = 1\nbad = maybe\nx = 5.0\n",
  );
  await t.step("floats", () => {
    assert.equal(c.getFloat("s", "f1"), 1000);
    assert.equal(c.getFloat("s", "f2"), -0.5);
    assert.equal(c.getFloat("s", "f3"), Infinity);
    assert.equal(c.getFloat("s", "absent", 2.5), 2.5);
  });
  await t.step("ints", () => {
    assert.equal(c.getInt("s", "i"), 7);
    throwsAt(() => c.getInt("s", "x"), 10, /not an integer/);
  });
  await t.step("booleans", () => {
    assert.equal(c.getBoolean("s", "b1"), true);
    assert.equal(c.getBoolean("s", "b2"), false);
    assert.equal(c.getBoolean("s", "b3"), true);
    throwsAt(() => c.getBoolean("s", "bad"), 9, /not a boolean: "maybe"/);
  });
  await t.step("a number that is not one", () => {
    throwsAt(() => c.getFloat("s", "b1"), 6, /not a number/);
  });
});

Deno.test("Ini parse errors name the line", async (t) => {
  await t.step("an option before any section", () => {
    throwsAt(() => parseIni("\n\nkey = 1\n", "x.ini"), 3, /no section headers/);
  });
  await t.step("a line that is not an option", () => {
    throwsAt(
      () => parseIni("[s]\na = 1\njust words\n", "x.ini"),
      3,
      /Cannot parse line/,
    );
  });
  await t.step("an indented line right after a header", () => {
    throwsAt(() => parseIni("[s]\n  stray\n", "x.ini"), 2, /Cannot parse line/);
  });
  await t.step("a missing option names the section line", () => {
    throwsAt(
      () => ini("\n[s]\na = 1\n").get("s", "b"),
      2,
      /Missing required option "b" in \[s\]/,
    );
  });
});

Deno.test("Ini repeated sections merge and later values win, as in Python 2.7", () => {
  const c = ini("[s]\na = 1\n[t]\n[s]\na = 2\nb = 3\n");
  assert.equal(c.get("s", "a"), "2");
  assert.equal(c.get("s", "b"), "3");
  assert.deepEqual(c.sections(), ["s", "t"]);
});

Deno.test("Ini handles CRLF files and a BOM", () => {
  const c = ini("\uFEFF[s]\r\na = 1\r\n  b\r\n");
  assert.equal(c.get("s", "a"), "1\nb");
});
