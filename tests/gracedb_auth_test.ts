import assert from "node:assert/strict";
import { join } from "node:path";
import {
  describeGraceDbAuth,
  GraceDbClient,
  GraceDbCredentials,
  resolveGraceDbAuth,
  type ResolveGraceDbAuthOptions,
} from "../lib/gracedb/mod.ts";
import { GraceDbTestServer } from "./gracedb_server.ts";
import { tempDir } from "./helpers.ts";

const URL_ = "https://gracedb.example.org/api/";

/** A JWT with the given claims (unsigned: only `exp` is read). */
function jwt(claims: Record<string, unknown>): string {
  const part = (o: unknown) =>
    btoa(JSON.stringify(o)).replace(/=+$/, "").replace(/\+/g, "-").replace(/\//g, "_");
  return `${part({ alg: "ES256", typ: "JWT" })}.${part(claims)}.c2ln`;
}

/** Resolve options that see only `vars` and the temp folder `dir`. */
function isolated(
  dir: string,
  vars: Record<string, string>,
  more: ResolveGraceDbAuthOptions = {},
): ResolveGraceDbAuthOptions {
  return {
    env: (name) => vars[name],
    uid: 4242,
    tmpDir: join(dir, "tmp"),
    netrc: join(dir, "netrc"),
    ...more,
  };
}

async function writeSecret(path: string, text: string): Promise<void> {
  await Deno.mkdir(join(path, ".."), { recursive: true });
  await Deno.writeTextFile(path, text);
  await Deno.chmod(path, 0o600);
}

Deno.test("resolveGraceDbAuth looks for a bearer token where the official client does, in order", async (t) => {
  await using dir = await tempDir();
  const d = dir.path;
  await writeSecret(join(d, "scitoken"), "from-scitoken-file\n");
  await writeSecret(join(d, "condor", "scitokens.use"), "from-condor\n");
  await writeSecret(join(d, "condor", "other.use"), "from-condor-other\n");
  await writeSecret(join(d, "bearer"), "from-bearer-file");
  await writeSecret(join(d, "xdg", "bt_u4242"), "from-xdg");
  await writeSecret(join(d, "tmp", "bt_u4242"), "from-tmp");
  await writeSecret(join(d, "netrc"), "machine gracedb.example.org login albert password pw\n");
  const all: Record<string, string> = {
    SCITOKEN: "from-scitoken",
    SCITOKEN_FILE: join(d, "scitoken"),
    _CONDOR_CREDS: join(d, "condor"),
    BEARER_TOKEN: "from-bearer",
    BEARER_TOKEN_FILE: join(d, "bearer"),
    XDG_RUNTIME_DIR: join(d, "xdg"),
  };
  const expected: [string, string, RegExp][] = [
    ["SCITOKEN", "from-scitoken", /^\$SCITOKEN$/],
    ["SCITOKEN_FILE", "from-scitoken-file", /^\$SCITOKEN_FILE \(.*scitoken\)$/],
    ["_CONDOR_CREDS", "from-condor", /^\$_CONDOR_CREDS \(.*scitokens\.use\)$/],
    ["BEARER_TOKEN", "from-bearer", /^\$BEARER_TOKEN$/],
    ["BEARER_TOKEN_FILE", "from-bearer-file", /^\$BEARER_TOKEN_FILE/],
    ["XDG_RUNTIME_DIR", "from-xdg", /^\$XDG_RUNTIME_DIR\/bt_u<uid> \(.*xdg\/bt_u4242\)$/],
  ];
  const vars = { ...all };
  for (const [name, token, source] of expected) {
    await t.step(`${name} when nothing before it is set`, async () => {
      const auth = await resolveGraceDbAuth(URL_, isolated(d, vars));
      assert.equal(auth.kind, "bearer");
      assert.equal(auth.kind === "bearer" && auth.token, token, "trimmed");
      assert.match(auth.kind === "bearer" ? auth.source : "", source);
      delete vars[name];
    });
  }
  await t.step("bt_u<uid> in the temp folder last", async () => {
    const auth = await resolveGraceDbAuth(URL_, isolated(d, vars));
    assert.deepEqual(auth.kind === "bearer" && [auth.token, auth.source], [
      "from-tmp",
      `bt_u<uid> in the temp folder (${join(d, "tmp", "bt_u4242")})`,
    ]);
  });
  await t.step("then the netrc", async () => {
    await Deno.remove(join(d, "tmp", "bt_u4242"));
    const auth = await resolveGraceDbAuth(URL_, isolated(d, vars));
    assert.deepEqual(auth, {
      kind: "basic",
      username: "albert",
      password: "pw",
      source: `netrc ${join(d, "netrc")} (machine gracedb.example.org)`,
    });
  });
  await t.step("noToken skips tokens, noAuth everything", async () => {
    const token = await resolveGraceDbAuth(URL_, isolated(d, all, { noToken: true }));
    assert.equal(token.kind, "basic");
    assert.deepEqual(await resolveGraceDbAuth(URL_, isolated(d, all, { noAuth: true })), {
      kind: "none",
      source: "disabled",
    });
  });
});

Deno.test("resolveGraceDbAuth skips an expired JWT and says so", async () => {
  await using dir = await tempDir();
  const now = 1_700_000_000;
  const expired = jwt({ sub: "a", exp: now - 10 });
  const valid = jwt({ sub: "a", exp: now + 3600 });
  const auth = await resolveGraceDbAuth(
    URL_,
    isolated(dir.path, { SCITOKEN: expired, BEARER_TOKEN: valid }, { now }),
  );
  assert.equal(auth.kind, "bearer");
  assert.equal(auth.kind === "bearer" && auth.token, valid);
  assert.equal(auth.kind === "bearer" && auth.expires, now + 3600);
  assert.deepEqual(auth.skipped, ["$SCITOKEN: expired at 2023-11-14T22:13:10.000Z"]);
  assert.match(
    describeGraceDbAuth(auth),
    /^bearer token from \$BEARER_TOKEN, expires .*; skipped \$SCITOKEN: expired/,
  );
  assert.doesNotMatch(describeGraceDbAuth(auth), new RegExp(valid.slice(0, 20)));
});

Deno.test("resolveGraceDbAuth reads the netrc entry of the GraceDB host only", async (t) => {
  await using dir = await tempDir();
  const d = dir.path;
  await writeSecret(
    join(d, "netrc"),
    "machine lvalert.example.org login xmpp password x\nmachine gracedb.example.org login albert password 's3'\n",
  );
  await t.step("the host's entry", async () => {
    const auth = await resolveGraceDbAuth(URL_, isolated(d, {}));
    assert.equal(auth.kind === "basic" && auth.username, "albert");
  });
  await t.step("another host has none", async () => {
    const auth = await resolveGraceDbAuth("https://gracedb-test.example.org/api/", isolated(d, {}));
    assert.deepEqual(auth, { kind: "none" });
    assert.equal(describeGraceDbAuth(auth), "no credentials");
  });
  await t.step("$NETRC, then $HOME/.netrc", async () => {
    await writeSecret(
      join(d, "home", ".netrc"),
      "machine gracedb.example.org login home password h\n",
    );
    const fromEnv = { env: (n: string) => ({ NETRC: join(d, "netrc"), HOME: join(d, "home") })[n] };
    const viaNetrc = await resolveGraceDbAuth(URL_, { ...fromEnv, uid: undefined });
    assert.equal(viaNetrc.kind === "basic" && viaNetrc.username, "albert");
    const home = { env: (n: string) => ({ HOME: join(d, "home") })[n], uid: undefined };
    const viaHome = await resolveGraceDbAuth(URL_, home);
    assert.equal(viaHome.kind === "basic" && viaHome.username, "home");
  });
  await t.step("a netrc that group or others may read is refused", async () => {
    await Deno.chmod(join(d, "netrc"), 0o640);
    await assert.rejects(resolveGraceDbAuth(URL_, isolated(d, {})), (e: unknown) => {
      assert.ok(e instanceof Error);
      assert.equal(e.name, "ConfigError");
      assert.match(e.message, /readable by group or others \(mode 640\).*chmod 600/);
      assert.doesNotMatch(e.message, /s3/);
      return true;
    });
  });
});

Deno.test("GraceDB credentials cross postMessage as plain values and never print their secret", () => {
  const bearer = { kind: "bearer" as const, token: "sekrit-token", source: "$SCITOKEN" };
  const basic = {
    kind: "basic" as const,
    username: "albert",
    password: "sekrit-pw",
    source: "netrc n",
  };
  assert.deepEqual(structuredClone(bearer), bearer);
  for (const auth of [bearer, basic]) {
    const held = new GraceDbCredentials(auth);
    for (
      const shown of [
        String(held),
        JSON.stringify(held),
        Deno.inspect(held),
        describeGraceDbAuth(auth),
      ]
    ) {
      assert.doesNotMatch(shown, /sekrit/);
    }
    assert.deepEqual(held.auth, auth);
    const client = new GraceDbClient("https://gracedb.example.org/api/", { auth: held });
    assert.doesNotMatch(`${client} ${Deno.inspect(client)}`, /sekrit/);
  }
  assert.equal(
    JSON.stringify(new GraceDbCredentials(basic)),
    '{"kind":"basic","source":"netrc n","username":"albert"}',
  );
  assert.equal(describeGraceDbAuth(basic), "basic credentials for albert from netrc n");
});

Deno.test("Credentials found in a netrc reach the test server as basic auth", async () => {
  await using dir = await tempDir();
  await using gdb = await GraceDbTestServer.start({
    requireAuth: true,
    basic: { username: "albert", password: "pw 2" },
  });
  await writeSecret(join(dir.path, "netrc"), 'machine 127.0.0.1 login albert password "pw 2"\n');
  const auth = await resolveGraceDbAuth(gdb.url, isolated(dir.path, {}));
  const id = gdb.addEvent();
  const gracedb = new GraceDbClient(gdb.url, { auth, version: "0.1.0" });
  await gracedb.addLabel(id, "EM_READY");
  assert.deepEqual(gdb.labelsOf(id), ["EM_READY"]);
  assert.deepEqual(gdb.requests.map((r) => r.auth), ["basic"]);
});

Deno.test("resolveGraceDbAuth finds bt_u<uid> for the user running it when no uid is given", async () => {
  await using dir = await tempDir();
  const uid = Deno.uid();
  assert.ok(uid !== null);
  await writeSecret(join(dir.path, "tmp", `bt_u${uid}`), "mine");
  const { uid: _, ...options } = isolated(dir.path, {});
  const auth = await resolveGraceDbAuth(URL_, options);
  assert.equal(auth.kind === "bearer" && auth.token, "mine");
});
