/**
 * `deno task release`: builds the portable release,
 * `dist/lvalert_listenMP-<version>-<os>-<arch>.tar.gz` and its `.sha256`,
 * for hosts without Node or Deno and without access to Deno's download
 * server. The archive holds the Deno runtime this build runs on (copied),
 * the program (main.ts, lib/, workers/, etc/), its npm packages installed
 * into node_modules/ for offline use, deno.lock, the `lvalert_listenMP`
 * launcher (POSIX sh), INSTALL and README.md. Build tool only: nothing the
 * listener runs imports this folder, and the release leaves it out. It
 * imports only the platform (`node:` built-ins) and its own modules.
 *
 * Usage: deno task release [--out-dir DIR]
 *
 * @module
 */

import { parseArgs } from "node:util";
import { basename, dirname, join, relative } from "node:path";
import { hostPlatform, installText, releaseName } from "./install.ts";
import { launcherScript, permissionFlags } from "./launcher.ts";

const ROOT = new URL("../../", import.meta.url).pathname;

/** What the release ships of the repository (besides node_modules/ and the runtime). */
const PROGRAM = ["main.ts", "deno.lock", "README.md", "lib", "workers", "etc"];

/** Left out: this build tool, and what running the demo leaves in etc/. */
function shipped(path: string): boolean {
  return !path.startsWith("lib/release/") && !path.startsWith("etc/demo-logs/") &&
    !path.endsWith(".log");
}

interface DenoJson {
  name: string;
  version: string;
  imports: Record<string, string>;
  tasks: Record<string, string>;
  [key: string]: unknown;
}

interface Lockfile {
  version: string;
  specifiers?: Record<string, string>;
  npm?: Record<string, { integrity?: string }>;
  [key: string]: unknown;
}

/** What a build produced. */
export interface Release {
  archive: string;
  sha256: string;
  bytes: number;
  entries: number;
}

function fail(message: string): never {
  throw new Error(`release: ${message}`);
}

async function run(
  program: string,
  args: string[],
  options: { cwd?: string; env?: Record<string, string>; clearEnv?: boolean } = {},
): Promise<string> {
  const out = await new Deno.Command(program, {
    args,
    stdout: "piped",
    stderr: "piped",
    ...options,
  }).output();
  const text = new TextDecoder().decode(out.stdout);
  if (!out.success) {
    fail(`${program} ${args.join(" ")} failed:\n${new TextDecoder().decode(out.stderr)}${text}`);
  }
  return text;
}

async function* walk(dir: string): AsyncGenerator<string> {
  const entries = [];
  for await (const entry of Deno.readDir(dir)) entries.push(entry);
  entries.sort((a, b) => a.name < b.name ? -1 : 1);
  for (const entry of entries) {
    const path = join(dir, entry.name);
    if (entry.isDirectory) yield* walk(path);
    else if (entry.isFile) yield path;
  }
}

/** Copies the program's files into `top`; returns the .ts files among them. */
async function copyProgram(top: string): Promise<string[]> {
  const sources: string[] = [];
  for (const item of PROGRAM) {
    const from = join(ROOT, item);
    const files = (await Deno.stat(from)).isDirectory ? await Array.fromAsync(walk(from)) : [from];
    for (const file of files) {
      const rel = relative(ROOT, file);
      if (!shipped(rel)) continue;
      await Deno.mkdir(join(top, dirname(rel)), { recursive: true });
      await Deno.copyFile(file, join(top, rel));
      if (rel.endsWith(".ts")) sources.push(rel);
    }
  }
  return sources;
}

/**
 * The release's deno.json: the program's settings and only the imports its
 * shipped code uses (test and benchmark packages stay out); no tasks.
 */
async function releaseConfig(top: string, config: DenoJson, sources: string[]): Promise<string[]> {
  const text = (await Promise.all(sources.map((s) => Deno.readTextFile(join(top, s))))).join("\n");
  const used = (key: string) => text.includes(`"${key}"`) || text.includes(`"${key}/`);
  const imports = Object.fromEntries(Object.entries(config.imports).filter(([key]) => used(key)));
  const { name, version, exports, nodeModulesDir, unstable, compilerOptions } = config;
  const release = { name, version, exports, nodeModulesDir, unstable, compilerOptions, imports };
  await Deno.writeTextFile(join(top, "deno.json"), JSON.stringify(release, null, 2) + "\n");
  return Object.keys(config.imports).filter((key) => !used(key));
}

/** Installs the npm packages into node_modules/, then checks nothing was resolved anew. */
async function vendor(top: string, sources: string[]): Promise<void> {
  const entrypoints = sources.filter((s) => s === "main.ts" || s.startsWith("workers/"));
  await run(Deno.execPath(), ["install", "--quiet", "--entrypoint", ...entrypoints], {
    cwd: top,
    env: { DENO_NO_UPDATE_CHECK: "1", NO_COLOR: "1" },
  });
  const before = JSON.parse(await Deno.readTextFile(join(ROOT, "deno.lock"))) as Lockfile;
  const after = JSON.parse(await Deno.readTextFile(join(top, "deno.lock"))) as Lockfile;
  for (const [pkg, info] of Object.entries(after.npm ?? {})) {
    if (before.npm?.[pkg]?.integrity !== info.integrity) {
      fail(`${pkg} is not in deno.lock as installed; run deno install and commit deno.lock`);
    }
  }
  for (const [spec, version] of Object.entries(after.specifiers ?? {})) {
    if (before.specifiers?.[spec] !== version) fail(`deno.lock does not pin ${spec}`);
  }
  await Deno.stat(join(top, "node_modules", ".deno")).catch(() => fail("no node_modules/ made"));
}

/** The runtime this build runs on, and its licence when it lies beside it. */
async function copyRuntime(top: string): Promise<string> {
  const exe = await Deno.realPath(Deno.execPath());
  await Deno.mkdir(join(top, "runtime"));
  await Deno.copyFile(exe, join(top, "runtime", "deno"));
  await Deno.chmod(join(top, "runtime", "deno"), 0o755);
  for (const licence of ["LICENSE", "LICENSE.md"]) {
    try {
      await Deno.copyFile(join(dirname(exe), licence), join(top, "runtime", "LICENSE"));
      break;
    } catch (error) {
      if (!(error instanceof Deno.errors.NotFound)) throw error;
    }
  }
  return Deno.version.deno;
}

/** Seconds since 1970 for every entry: SOURCE_DATE_EPOCH, else the last commit's time. */
async function sourceDate(): Promise<number> {
  const env = Deno.env.get("SOURCE_DATE_EPOCH");
  if (env && /^\d+$/.test(env)) return Number(env);
  try {
    const out = await new Deno.Command("git", {
      args: ["log", "-1", "--format=%ct"],
      cwd: ROOT,
      stdout: "piped",
      stderr: "null",
    }).output();
    const time = new TextDecoder().decode(out.stdout).trim();
    if (out.success && /^\d+$/.test(time)) return Number(time);
  } catch {
    // No git: a fixed date.
  }
  return 0;
}

/**
 * Cuts a byte stream into pieces of exactly `size` bytes (the last one
 * shorter): CompressionStream's output depends on how its input is cut,
 * and a pipe cuts it differently each time.
 */
function pieces(size: number): TransformStream<Uint8Array, Uint8Array<ArrayBuffer>> {
  let buffer = new Uint8Array(size);
  let used = 0;
  return new TransformStream({
    transform(chunk, controller) {
      while (chunk.length > 0) {
        const n = Math.min(size - used, chunk.length);
        buffer.set(chunk.subarray(0, n), used);
        used += n;
        chunk = chunk.subarray(n);
        if (used === size) {
          controller.enqueue(buffer);
          buffer = new Uint8Array(size);
          used = 0;
        }
      }
    },
    flush(controller) {
      if (used > 0) controller.enqueue(buffer.subarray(0, used));
    },
  });
}

/** tar (GNU: sorted entries, fixed times and owners), gzipped, into `archive`. */
async function pack(stage: string, name: string, archive: string): Promise<number> {
  const version = await run("tar", ["--version"]);
  if (!version.includes("GNU tar")) fail("needs GNU tar (for --sort=name and --mtime)");
  const mtime = await sourceDate();
  const tar = new Deno.Command("tar", {
    args: [
      "--create",
      "--format=gnu",
      "--sort=name",
      `--mtime=@${mtime}`,
      "--owner=0",
      "--group=0",
      "--numeric-owner",
      "--mode=a+rX,u+w,go-w",
      "--directory",
      stage,
      "--file=-",
      name,
    ],
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const partial = `${archive}.partial`;
  const file = await Deno.open(partial, { write: true, create: true, truncate: true });
  const [, status, stderr] = await Promise.all([
    tar.stdout.pipeThrough(pieces(1 << 20)).pipeThrough(new CompressionStream("gzip")).pipeTo(
      file.writable,
    ),
    tar.status,
    new Response(tar.stderr).text(),
  ]);
  if (!status.success) fail(`tar failed: ${stderr}`);
  await Deno.rename(partial, archive);
  const list = await run("tar", ["--list", "--gzip", "--file", archive]);
  return list.split("\n").filter(Boolean).length;
}

async function sha256(path: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", await Deno.readFile(path));
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

/** Builds the release into `outDir`. */
export async function buildRelease(outDir: string): Promise<Release> {
  if (Deno.build.os !== "linux") fail("builds on Linux only (the runtime is this machine's)");
  const config = JSON.parse(await Deno.readTextFile(join(ROOT, "deno.json"))) as DenoJson;
  const start = config.tasks.start ?? fail("deno.json has no start task");
  const flags = permissionFlags(start);
  if (flags.length === 0) fail("the start task has no permission flags");
  const platform = hostPlatform();
  const name = releaseName(config.version, platform);
  const stage = await Deno.makeTempDir({ prefix: "lvalertmp-release-" });
  try {
    const top = join(stage, name);
    const sources = await copyProgram(top);
    const left = await releaseConfig(top, config, sources);
    console.error(`release: import-map entries the shipped code does not use: ${left.join(", ")}`);
    await vendor(top, sources);
    const denoVersion = await copyRuntime(top);
    const launcher = join(top, "lvalert_listenMP");
    await Deno.writeTextFile(
      launcher,
      launcherScript({ version: config.version, platform, flags }),
    );
    await Deno.chmod(launcher, 0o755);
    await Deno.writeTextFile(
      join(top, "INSTALL"),
      installText(config.version, platform, denoVersion),
    );

    // It must start as built, offline and away from this checkout.
    const home = join(stage, "home");
    await Deno.mkdir(home);
    const said = await run(launcher, ["-w"], {
      cwd: home,
      clearEnv: true,
      env: { PATH: "/usr/bin:/bin", HOME: home, DENO_DIR: join(stage, "cache") },
    });
    if (!said.includes(config.version)) fail(`the launcher's -w said: ${said}`);

    await Deno.mkdir(outDir, { recursive: true });
    const archive = join(outDir, `${name}.tar.gz`);
    const entries = await pack(stage, name, archive);
    const sum = await sha256(archive);
    await Deno.writeTextFile(`${archive}.sha256`, `${sum}  ${basename(archive)}\n`);
    const { size } = await Deno.stat(archive);
    return { archive, sha256: sum, bytes: size, entries };
  } finally {
    await Deno.remove(stage, { recursive: true });
  }
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: { "out-dir": { type: "string" }, help: { type: "boolean", short: "h" } },
  });
  if (values.help) {
    console.log("usage: deno task release [--out-dir DIR]   (default: dist/)");
    Deno.exit(0);
  }
  try {
    const outDir = values["out-dir"] ?? join(ROOT, "dist");
    const release = await buildRelease(outDir);
    console.log(
      `${release.archive}\n  ${(release.bytes / 1e6).toFixed(1)} MB, ${release.entries} entries` +
        `\n  sha256 ${release.sha256} (${basename(release.archive)}.sha256)`,
    );
  } catch (error) {
    console.error((error as Error).message);
    Deno.exit(1);
  }
}
