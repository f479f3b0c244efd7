/**
 * The portable release (`deno task release`), built and run for real.
 *
 * The archive is built into a temp folder, checked against its .sha256 and
 * installed with the README's commands (with /opt and /usr/local/bin moved
 * into the temp folder), the install folder is made read-only
 * (`chmod -R a-w`), and the launcher is called by name through symbolic
 * links with `env -i`: PATH holds only the links and sh and ls (node, npm,
 * npx and deno are checked absent with `command -v`), HOME is an empty
 * read-only folder. Where `unshare --net` works the runs have no network (a
 * new network namespace holding only loopback); as root they run as nobody
 * (setpriv), so the read-only folder really is read-only to them. The test
 * prints what it used, the archive's size and the start times.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import denoJson from "../deno.json" with { type: "json" };
import { jsonLines, LISTEN_FLAGS, ROOT, tempDir } from "./helpers.ts";
import { launcherFlags, launcherScript, permissionFlags } from "../lib/release/launcher.ts";
import {
  hostPlatform,
  installCommands,
  releaseName,
  serviceCommands,
  START_COMMANDS,
} from "../lib/release/install.ts";

const VERSION = denoJson.version;
const decode = (bytes: Uint8Array) => new TextDecoder().decode(bytes);

Deno.test("the listener's permission flags are the same in every task", () => {
  const flags = permissionFlags(denoJson.tasks.start);
  assert.ok(flags.includes("--allow-sys=hostname"), `start task flags: ${flags}`);
  for (const task of ["demo", "compile", "install"] as const) {
    assert.deepEqual(permissionFlags(denoJson.tasks[task]), flags, `the ${task} task`);
  }
  assert.deepEqual(LISTEN_FLAGS, flags, "tests/helpers.ts LISTEN_FLAGS");
  for (const task of ["compile", "install"] as const) {
    assert.match(denoJson.tasks[task], /--unstable-worker-options/, task);
  }
});

Deno.test("the README's Installing section leads with the release and gives its commands", async () => {
  const readme = await Deno.readTextFile(join(ROOT, "README.md"));
  const section = /^## Installing\n([\s\S]*?)^## /m.exec(readme)?.[1];
  assert.ok(section, "an Installing section");
  const release = section.indexOf("deno task release");
  assert.ok(release >= 0, "it names deno task release");
  assert.ok(
    release < section.indexOf("deno task compile") &&
      release < section.indexOf("deno task install"),
    "the portable release comes first",
  );
  for (const line of [...installCommands(VERSION, "linux-x64"), ...serviceCommands()]) {
    assert.ok(section.includes(`\n${line}\n`), `README lacks: ${line}`);
  }
  for (const line of START_COMMANDS) assert.ok(section.includes(line), `README lacks: ${line}`);
  // What those commands rely on in the files they copy.
  const unit = await Deno.readTextFile(join(ROOT, "etc", "lvalert_listenMP.service"));
  assert.match(
    unit,
    /^ExecStart=\/usr\/local\/bin\/lvalert_listenMP .*-c \/etc\/lvalertMP\/listener\.ini /m,
  );
  assert.match(unit, /^Environment=NETRC=\/etc\/lvalertMP\/netrc$/m);
  assert.match(unit, /^ReadWritePaths=.*\/var\/log\/lvalertMP/m);
  assert.match(unit, /^User=lvalert$/m);
  const child = await Deno.readTextFile(join(ROOT, "etc", "childConfig-example.ini"));
  assert.match(child, /^log_directory = /m, "the sed command's line");
  const listener = await Deno.readTextFile(join(ROOT, "etc", "lvalert_listenMP-example.ini"));
  assert.match(listener, /^childConfig\s*=\s*childConfig-example\.ini$/m);
});

Deno.test("the launcher refuses an install folder whose path a file URL would encode", async () => {
  await using dir = await tempDir();
  const folder = join(dir.path, "with space");
  await Deno.mkdir(folder);
  const launcher = join(folder, "lvalert_listenMP");
  const flags = permissionFlags(denoJson.tasks.start);
  await Deno.writeTextFile(launcher, launcherScript({ version: VERSION, platform: "x", flags }));
  await Deno.chmod(launcher, 0o755);
  const out = await new Deno.Command(launcher, { args: ["-w"], stdout: "piped", stderr: "piped" })
    .output();
  assert.equal(out.code, 78, decode(out.stderr));
  assert.match(decode(out.stderr), /with space.*move it/s);
});

/** How the runs are kept from the network and from writing the install folder. */
interface Isolation {
  prefix: string[];
  network: string;
  user: string;
  uid: number;
}

async function succeeds(argv: string[]): Promise<boolean> {
  try {
    const out = await new Deno.Command(argv[0]!, {
      args: argv.slice(1),
      stdout: "null",
      stderr: "null",
    }).output();
    return out.success;
  } catch {
    return false;
  }
}

async function isolation(): Promise<Isolation> {
  if (Deno.uid() === 0) {
    const drop = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--"];
    assert.ok(await succeeds([...drop, "true"]), "as root, the test needs setpriv (util-linux)");
    const net = await succeeds(["unshare", "--net", "--", "true"]);
    return {
      prefix: [...(net ? ["unshare", "--net", "--"] : []), ...drop],
      network: net
        ? "none (unshare --net: a new network namespace, loopback only)"
        : "NOT isolated (unshare --net failed here)",
      user: "nobody (uid 65534, via setpriv; the files belong to root)",
      uid: 65534,
    };
  }
  const unshare = ["unshare", "--user", "--map-current-user", "--net", "--"];
  const net = await succeeds([...unshare, "true"]);
  return {
    prefix: net ? unshare : [],
    network: net
      ? "none (unshare --user --map-current-user --net: new namespaces, loopback only)"
      : "NOT isolated (unshare failed here: no user namespaces)",
    user: `uid ${Deno.uid()} (unprivileged)`,
    uid: Deno.uid()!,
  };
}

interface Run {
  code: number;
  stdout: string;
  stderr: string;
  ms: number;
}

/** Lists a tree: path, type, size and mtime of each entry (to see that nothing changed). */
async function snapshot(dir: string, prefix = ""): Promise<string[]> {
  const lines: string[] = [];
  for await (const entry of Deno.readDir(join(dir, prefix))) {
    const rel = join(prefix, entry.name);
    const info = await Deno.lstat(join(dir, rel));
    lines.push(
      `${rel} ${
        info.isDirectory ? "d" : info.isSymlink ? "l" : "f"
      } ${info.size} ${info.mtime?.getTime()} ${info.mode}`,
    );
    if (entry.isDirectory) lines.push(...await snapshot(dir, rel));
  }
  return lines.sort();
}

async function hostTool(name: string): Promise<string> {
  const out = await new Deno.Command("sh", { args: ["-c", `command -v ${name}`], stdout: "piped" })
    .output();
  const path = decode(out.stdout).trim();
  assert.ok(out.success && path.startsWith("/"), `${name} not found on this machine`);
  return path;
}

Deno.test({
  name: "deno task release: the unpacked archive runs read-only, offline, without node or deno",
  fn: async (t) => {
    const dir = await Deno.makeTempDir({ prefix: "lvalertmp-release-test-" });
    await Deno.chmod(dir, 0o755);
    const name = releaseName(VERSION, hostPlatform());
    const install = join(dir, "opt", `lvalertMP-${VERSION}`);
    try {
      const iso = await isolation();
      const dist = join(dir, "dist");
      const archive = join(dist, `${name}.tar.gz`);

      await t.step("builds the archive and its SHA-256 file", async () => {
        const t0 = performance.now();
        const out = await new Deno.Command(Deno.execPath(), {
          args: ["task", "release", "--out-dir", dist],
          cwd: ROOT,
          env: { NO_COLOR: "1" },
          stdout: "piped",
          stderr: "piped",
        }).output();
        const seconds = (performance.now() - t0) / 1000;
        assert.ok(out.success, decode(out.stderr) + decode(out.stdout));
        const bytes = await Deno.readFile(archive);
        const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
        const hex = Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
        assert.equal(await Deno.readTextFile(`${archive}.sha256`), `${hex}  ${name}.tar.gz\n`);
        console.log(
          `release: ${name}.tar.gz, ${(bytes.length / 1e6).toFixed(1)} MB, built in ${
            seconds.toFixed(1)
          } s`,
        );
      });

      await t.step("entries are sorted, with one time and owner", async () => {
        const out = await new Deno.Command("tar", {
          args: ["--list", "--verbose", "--full-time", "--numeric-owner", "--gzip", "-f", archive],
          stdout: "piped",
        }).output();
        const rows = decode(out.stdout).split("\n").filter(Boolean).map((line) => {
          const [, owner, date, time, path] =
            /^\S+ (\S+) +\d+ (\S+) (\S+) (.*?)(?: -> .*)?$/.exec(line) ?? [];
          assert.ok(path, line);
          return { owner, when: `${date} ${time}`, path: path.replace(/\/$/, "") };
        });
        assert.ok(rows.every((r) => r.owner === "0/0"), "owner 0/0");
        assert.equal(new Set(rows.map((r) => r.when)).size, 1, "one modification time");
        const last = new Map<string, string>();
        for (const { path } of rows) {
          const parent = path.slice(0, path.lastIndexOf("/") + 1);
          const before = last.get(parent);
          assert.ok(before === undefined || before < path, `${path} after ${before}`);
          last.set(parent, path);
        }
        assert.ok(rows.every((r) => r.path.startsWith(name)), `all under ${name}/`);
      });

      const bin = join(dir, "bin");
      const front = join(dir, "front");
      const path = join(dir, "path");
      const home = join(dir, "home");
      const work = join(dir, "work");

      await t.step("installs with the README's commands (under the temp folder)", async () => {
        await Deno.mkdir(bin);
        const moved = (line: string) =>
          line.replaceAll("/opt/", `${dir}/opt/`).replaceAll("/usr/local/bin/", `${bin}/`);
        for (const line of installCommands(VERSION, hostPlatform())) {
          if (line.startsWith("lvalert_listenMP")) continue; // run below, isolated
          const out = await new Deno.Command("sh", {
            args: ["-c", moved(line)],
            cwd: dist,
            stdout: "piped",
            stderr: "piped",
          }).output();
          assert.ok(out.success, `${moved(line)}: ${decode(out.stderr)}`);
        }
        for (
          const file of [
            "lvalert_listenMP",
            "INSTALL",
            "README.md",
            "main.ts",
            "deno.json",
            "deno.lock",
            "runtime/deno",
            "lib/mod.ts",
            "workers/child.ts",
            "workers/handlers/test.ts",
            "etc/lvalert_listenMP.service",
            "etc/lvalert_listenMP-example.ini",
            "node_modules/.deno",
            "node_modules/@xmpp/client-core/package.json",
          ]
        ) await Deno.lstat(join(install, file));
        const listing = await snapshot(install);
        for (const left of ["tests", "bench", "lib/release", "cache", "etc/demo-logs"]) {
          assert.ok(!listing.some((l) => l.startsWith(`${left} `)), `${left} is shipped`);
        }
        for (const dev of ["fast-check@", "@xmpp+client@"]) {
          assert.ok(!listing.some((l) => l.includes(`.deno/${dev}`)), `${dev} is shipped`);
        }
        const runtime = await Deno.stat(join(install, "runtime/deno"));
        assert.equal(runtime.size, (await Deno.stat(Deno.execPath())).size, "the build's deno");
        assert.ok(
          (runtime.mode! & 0o111) !== 0 &&
            (await Deno.stat(join(install, "lvalert_listenMP"))).mode! & 0o111,
        );
        const launcher = await Deno.readTextFile(join(install, "lvalert_listenMP"));
        assert.deepEqual(launcherFlags(launcher), permissionFlags(denoJson.tasks.start));
        assert.match(launcher, /^exec "\$here\/runtime\/deno" run --cached-only --frozen /m);
        const text = await Deno.readTextFile(join(install, "INSTALL"));
        for (const line of installCommands(VERSION, hostPlatform())) assert.ok(text.includes(line));

        // A second, relative link in front of the README's absolute one.
        await Deno.mkdir(front);
        await Deno.symlink("../bin/lvalert_listenMP", join(front, "lvalert_listenMP"));
        await Deno.mkdir(path);
        for (const tool of ["sh", "ls"]) await Deno.symlink(await hostTool(tool), join(path, tool));
        await Deno.mkdir(home);
        await Deno.chmod(home, 0o555);
        await Deno.mkdir(work);
        if (Deno.uid() === 0) await Deno.chown(work, iso.uid, iso.uid);
        await new Deno.Command("chmod", { args: ["-R", "a-w", install] }).output();
      });

      const before = await snapshot(install);
      const run = async (argv: string[], cwd = home): Promise<Run> => {
        const full = [
          ...iso.prefix,
          "env",
          "-i",
          `PATH=${front}:${path}`,
          `HOME=${home}`,
          "NO_COLOR=1",
          ...argv,
        ];
        const t0 = performance.now();
        const out = await new Deno.Command(full[0]!, {
          args: full.slice(1),
          cwd,
          stdout: "piped",
          stderr: "piped",
          signal: AbortSignal.timeout(60_000),
        }).output();
        const ms = performance.now() - t0;
        return { code: out.code, stdout: decode(out.stdout), stderr: decode(out.stderr), ms };
      };

      await t.step("no node, npm or deno on PATH; no network", async () => {
        const found = await run([
          "sh",
          "-c",
          'for p in node npm npx deno; do command -v "$p" && exit 1; done; command -v lvalert_listenMP',
        ]);
        assert.equal(found.code, 0, `found: ${found.stdout}`);
        assert.equal(found.stdout.trim(), join(front, "lvalert_listenMP"));
        const net = await run([
          "sh",
          "-c",
          'while read -r l; do echo "$l"; done </proc/self/net/dev',
        ]);
        const interfaces = net.stdout.split("\n").slice(2).filter(Boolean).map((l) =>
          l.split(":")[0]
        );
        if (!iso.network.startsWith("NOT")) assert.deepEqual(interfaces, ["lo"]);
        console.log(
          `isolation: network ${iso.network}; user ${iso.user}; PATH ${front}:${path} ` +
            `(links to the launcher, sh, ls); HOME an empty read-only folder; install folder chmod -R a-w; ` +
            `interfaces seen: ${interfaces.join(", ")}`,
        );
      });

      const starts: string[] = [];

      await t.step("-w prints the version from deno.json", async () => {
        for (let i = 0; i < 2; i++) {
          const out = await run(["lvalert_listenMP", "-w"]);
          assert.equal(out.code, 0, out.stderr);
          assert.equal(out.stdout, `lvalert_listenMP (lvalertMP) ${VERSION}\n`);
          assert.equal(out.stderr, "");
          starts.push(`-w ${out.ms.toFixed(0)} ms`);
        }
      });

      await t.step("--check-config on the example config", async () => {
        const config = join(dir, "opt", "lvalertMP", "etc", "lvalert_listenMP-example.ini");
        const out = await run(["lvalert_listenMP", "-c", config, "--check-config"]);
        assert.equal(out.code, 0, out.stderr + out.stdout);
        assert.match(out.stdout, /^OK: 1 children, 3 nodes$/m);
        assert.match(out.stdout, /handler: test \(.*\), loaded/);
        // The workers' code folders are the real install folder, found through the links.
        assert.ok(out.stdout.includes(`read: ${install}/lib/, ${install}/workers/`), out.stdout);
        starts.push(`--check-config ${out.ms.toFixed(0)} ms`);
      });

      await t.step(
        "a handler's npm import resolves from node_modules/ inside its worker",
        async () => {
          const handler = `${install}/workers/handlers/test.ts`;
          await Deno.writeTextFile(
            join(work, "npm_handler.ts"),
            `import { xml } from "@xmpp/client-core";
import { validateConfig as validate } from "${handler}";
export * from "${handler}";
export function validateConfig(config: Parameters<typeof validate>[0]): void {
  validate(config);
  const made = xml("presence", { type: "probe" }).toString();
  if (made !== '<presence type="probe"/>') throw new Error("@xmpp/client-core made " + made);
}
`,
          );
          const child = await Deno.readTextFile(join(install, "etc", "childConfig-demo.ini"));
          await Deno.writeTextFile(
            join(work, "npm_child.ini"),
            child.replace(
              /^process_type = test$/m,
              "process_type = test\nhandler = npm_handler.ts",
            ),
          );
          await Deno.writeTextFile(
            join(work, "npm.ini"),
            "[npm watcher]\nnodes = npm_node\nchildConfig = npm_child.ini\n",
          );
          const out = await run(["lvalert_listenMP", "-c", "npm.ini", "--check-config"], work);
          assert.equal(out.code, 0, out.stderr + out.stdout);
          assert.ok(
            out.stdout.includes(`handler: test (${work}/npm_handler.ts), loaded`),
            out.stdout,
          );
          assert.ok(
            !out.stdout.includes("node_modules"),
            "the worker was not granted node_modules",
          );
        },
      );

      await t.step("replays the demo stream: every alert routed, every task run", async () => {
        for (
          const file of ["lvalert_listenMP-demo.ini", "childConfig-demo.ini", "alerts-demo.jsonl"]
        ) {
          await Deno.copyFile(join(install, "etc", file), join(work, file));
        }
        const wall = Date.now();
        const out = await run([
          "lvalert_listenMP",
          "-c",
          "lvalert_listenMP-demo.ini",
          "--replay",
          "alerts-demo.jsonl",
          "--speed",
          "0",
          "--exit-when-idle",
          "--log-format",
          "json",
          "--state-dir",
          "state",
        ], work);
        assert.equal(out.code, 0, out.stderr + out.stdout.slice(-3000));
        const events = jsonLines(out.stdout);
        const named = (event: string) => events.filter((e) => e.event === event);
        const listening = named("listening")[0];
        assert.ok(listening, "a listening event");
        starts.push(`listening (2 workers up) ${Date.parse(String(listening.ts)) - wall} ms`);

        const stream = (await Deno.readTextFile(join(work, "alerts-demo.jsonl"))).split("\n")
          .filter(Boolean).map((line) =>
            JSON.parse(line) as { node: string; id?: string; payload: unknown }
          );
        const child = await Deno.readTextFile(join(work, "childConfig-demo.ini"));
        const setting = (key: string) => new RegExp(`^${key}\\s*=\\s*(.+)$`, "m").exec(child)![1]!;
        const delays = setting("delays").trim().split(/\s+/).map(Number);
        const repeats = Number(setting("repeats"));

        const seen = new Set<string>();
        const routed: string[] = [];
        const duplicates: string[] = [];
        const printed = new Map<string, number>();
        let alerts = 0;
        let commands = 0;
        for (const { node, id, payload } of stream) {
          if (typeof payload !== "object" || payload === null) continue;
          const key = JSON.stringify(payload);
          if (seen.has(key)) {
            duplicates.push(`${node}/${id}`);
            continue;
          }
          seen.add(key);
          routed.push(`${node}/${id ?? null}`);
          const { uid, alert_type } = payload as { uid: string; alert_type: string };
          if (uid === "command") {
            commands++;
            continue;
          }
          alerts++;
          for (const delay of delays) {
            const k = `${uid} ${alert_type} ${delay}`;
            printed.set(k, (printed.get(k) ?? 0) + 1);
          }
        }
        const rejected = stream.length - seen.size - duplicates.length;

        assert.deepEqual(named("alert").map((e) => `${e.node}/${e.id}`).sort(), routed.sort());
        assert.deepEqual(
          named("alert_duplicate").map((e) => `${e.node}/${e.id}`).sort(),
          duplicates.sort(),
        );
        assert.equal(named("alert_rejected").length, rejected);
        const got = new Map<string, number>();
        for (const e of named("alert_printed")) {
          const k = `${e.graceid} ${e.alert_type} ${e.delay}`;
          got.set(k, (got.get(k) ?? 0) + 1);
        }
        assert.deepEqual(got, printed, "each alert's tasks ran once per delay");
        assert.equal(named("repeat").length, alerts * repeats);
        assert.equal(named("task_executed").length, alerts * (delays.length + repeats) + commands);
        assert.equal(named("command").length, commands);
        const completed = named("item_completed");
        assert.equal(completed.length, routed.length);
        assert.ok(completed.every((e) => e.failed === false));
        for (const bad of ["task_failed", "item_failed", "child_died", "alert_unrouted"]) {
          assert.deepEqual(named(bad), [], bad);
        }
        const [summary] = named("summary");
        assert.deepEqual(
          {
            received: summary?.received,
            routed: summary?.routed,
            rejected: summary?.rejected,
            duplicates: summary?.duplicates,
            unrouted: summary?.unrouted,
            applied: summary?.applied,
          },
          {
            received: stream.length,
            routed: routed.length,
            rejected,
            duplicates: duplicates.length,
            unrouted: 0,
            applied: routed.length,
          },
        );
        starts.push(`demo ${(out.ms / 1000).toFixed(1)} s`);
      });

      await t.step("nothing was written to the install folder or HOME", async () => {
        assert.deepEqual(await snapshot(install), before);
        assert.deepEqual(await Array.fromAsync(Deno.readDir(home)), []);
        console.log(`start times (cold, nothing cached): ${starts.join("; ")}`);
      });
    } finally {
      await new Deno.Command("chmod", { args: ["-R", "u+w", dir] }).output();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
