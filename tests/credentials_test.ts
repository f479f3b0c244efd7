import assert from "node:assert/strict";
import { join } from "node:path";
import { ConfigError } from "../lib/core/config_error.ts";
import { CredentialsError, resolveCredentials } from "../lib/xmpp/credentials.ts";
import { parseNetrc, readNetrc } from "../lib/core/netrc.ts";
import { parseCommandWords } from "../lib/tools/command.ts";
import { tempDir } from "./helpers.ts";

Deno.test("parseNetrc reads machine, default, quoted words, comments and macdef", () => {
  const entries = parseNetrc(
    [
      "# a comment",
      "machine lvalert.example.org login albert password 's3cret'",
      "machine other",
      '  login bob password "two words"',
      "macdef init",
      "cd /tmp",
      "",
      "default login anon password guest",
    ].join("\n"),
    "n",
  );
  assert.deepEqual(entries, [
    { machine: "lvalert.example.org", login: "albert", password: "'s3cret'" },
    { machine: "other", login: "bob", password: "two words" },
    { machine: null, login: "anon", password: "guest" },
  ]);
  assert.throws(() => parseNetrc("login x", "n"), /n:1: "login" before any "machine"/);
  assert.throws(() => parseNetrc("machine a\nbogus", "n"), (e: unknown) => {
    assert.match(String(e), /n:2: Unexpected word/);
    assert.doesNotMatch(String(e), /bogus/, "the word may be part of a password");
    return true;
  });
});

Deno.test("readNetrc refuses a netrc that group or others can read", async () => {
  await using dir = await tempDir({ netrc: "machine s login u password p\n" });
  const path = join(dir.path, "netrc");
  await Deno.chmod(path, 0o644);
  await assert.rejects(readNetrc(path, "s"), (e: unknown) => {
    assert.ok(e instanceof ConfigError);
    assert.match(e.message, /readable by group or others \(mode 644\).*chmod 600/);
    return true;
  });
  await Deno.chmod(path, 0o600);
  assert.deepEqual(await readNetrc(path, "s"), { login: "u", password: "p" });
  assert.equal(await readNetrc(join(dir.path, "missing"), "s"), undefined);
});

Deno.test("resolveCredentials follows the old tools: -a, then netrc, then a prompt", async (t) => {
  await using dir = await tempDir({
    netrc: "machine srv login alice password fromnetrc\nmachine srv login bob password bobpw\n",
  });
  const netrc = join(dir.path, "netrc");
  await Deno.chmod(netrc, 0o600);
  const asked: string[] = [];
  const prompt = (q: string) => {
    asked.push(q);
    return Promise.resolve("typed");
  };
  await t.step("the netrc login and password", async () => {
    const c = await resolveCredentials({ server: "srv", netrc, prompt });
    assert.deepEqual([c.username, c.password], ["alice", "fromnetrc"]);
  });
  await t.step("-a picks the netrc entry with that login", async () => {
    const c = await resolveCredentials({ server: "srv", netrc, username: "bob", prompt });
    assert.equal(c.password, "bobpw");
  });
  await t.step("-a with no netrc entry asks", async () => {
    const c = await resolveCredentials({ server: "srv", netrc, username: "carol", prompt });
    assert.equal(c.password, "typed");
    assert.deepEqual(asked, ["Password for carol@srv: "]);
  });
  await t.step("-b wins", async () => {
    const c = await resolveCredentials({ server: "srv", netrc, password: "argv", prompt });
    assert.equal(c.password, "argv");
  });
  await t.step("no terminal and no password: a clear error", async () => {
    await assert.rejects(
      resolveCredentials({
        server: "srv",
        netrc,
        username: "carol",
        prompt: () => Promise.resolve(undefined),
      }),
      (e: unknown) => e instanceof CredentialsError && /No password for carol@srv/.test(e.message),
    );
  });
  await t.step("the password never shows in strings or JSON", async () => {
    const c = await resolveCredentials({ server: "srv", netrc, prompt });
    assert.doesNotMatch(`${c} ${JSON.stringify(c)} ${Deno.inspect(c)}`, /fromnetrc/);
  });
});

Deno.test("command words: key,val pairs (numbers as numbers) and exactly one command", () => {
  assert.deepEqual(parseCommandWords(["graceid,G1", "sleep,60", "note,a,b", "clearGraceID"]), {
    command: "clearGraceID",
    kwargs: { graceid: "G1", sleep: 60, note: "a,b" },
  });
  assert.match(String(parseCommandWords(["a", "b"])), /exactly one command/);
  assert.match(String(parseCommandWords(["k,v"])), /Give a command/);
});
