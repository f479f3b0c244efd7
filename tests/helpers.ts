/** Shared test helpers: temp folders, fixtures, running the listener. */

import { join } from "node:path";

export const ROOT = new URL("../", import.meta.url).pathname;
export const FIXTURES = join(ROOT, "tests/fixtures");
export const MAIN = join(ROOT, "main.ts");

/** A temp folder with the given files, removed by `using`. */
export async function tempDir(
  files: Record<string, string> = {},
): Promise<{ path: string; [Symbol.asyncDispose](): Promise<void> }> {
  const path = await Deno.makeTempDir({ prefix: "lvalertmp-test-" });
  for (const [name, text] of Object.entries(files)) {
    await Deno.mkdir(join(path, name, ".."), { recursive: true });
    await Deno.writeTextFile(join(path, name), text);
  }
  return {
    path,
    [Symbol.asyncDispose]: () => Deno.remove(path, { recursive: true }),
  };
}

/**
 * Mounts a 2 MB tmpfs at `path` (made here): a disk that fills up. Where
 * mounting is not allowed it says so, marks a step of `t` skipped and
 * returns false. {@linkcode unmountTmpfs} takes it down.
 */
export async function mountTmpfs(t: Deno.TestContext, path: string): Promise<boolean> {
  await Deno.mkdir(path);
  const mounted = await new Deno.Command("mount", {
    args: ["-t", "tmpfs", "-o", "size=2m", "tmpfs", path],
    stderr: "piped",
  }).output();
  if (mounted.success) return true;
  console.log(
    `skipped: cannot mount a tmpfs here (${new TextDecoder().decode(mounted.stderr).trim()})`,
  );
  await t.step({ name: "mount a 2 MB tmpfs", ignore: true, fn: () => {} });
  return false;
}

/**
 * Fills the disk under `path` with a file of zeros there (`dd` until the
 * disk is full); removing the file frees the space again.
 */
export async function fillDisk(path: string): Promise<void> {
  await new Deno.Command("sh", {
    args: ["-c", `dd if=/dev/zero of=${path} bs=4k 2>/dev/null; true`],
  }).output();
}

/** Takes down a tmpfs {@linkcode mountTmpfs} mounted (lazily, should a file still be open). */
export async function unmountTmpfs(path: string): Promise<void> {
  await new Deno.Command("umount", { args: ["-l", path] }).output();
}

/**
 * Waits until `test` holds (checked every few milliseconds), or fails
 * after `seconds` naming `what`: a barrier on a fact, not a fixed sleep.
 */
export async function waitFor(test: () => boolean, what: string, seconds = 10): Promise<void> {
  const end = Date.now() + seconds * 1000;
  while (!test()) {
    if (Date.now() > end) throw new Error(`Timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** Copies fixtures into a folder, so logs written beside them land there. */
export async function copyFixtures(
  dir: string,
  names?: string[],
): Promise<void> {
  for await (const entry of Deno.readDir(FIXTURES)) {
    if (!entry.isFile || (names && !names.includes(entry.name))) continue;
    await Deno.copyFile(join(FIXTURES, entry.name), join(dir, entry.name));
  }
}

/** Permission flags the listener runs with (as the start task). */
/** Flags for a replay of `replay` with `config`, through the state folder `stateDir`, logging JSON. */
export function replayFlags(config: string, replay: string, stateDir: string): string[] {
  return ["-c", config, "--replay", replay, "--state-dir", stateDir, "--log-format", "json"];
}

export const LISTEN_FLAGS = [
  "--allow-read",
  "--allow-write",
  "--allow-net",
  "--allow-env",
  "--allow-run",
  "--allow-sys=hostname",
];

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
  /** stdout lines that parse as JSON objects (with --log-format json). */
  events: Record<string, unknown>[];
}

/** Runs `main.ts` as a real child process and collects its output. */
export async function runListener(
  args: string[],
  options: { cwd?: string; env?: Record<string, string>; timeout?: number; stdin?: string } = {},
): Promise<RunResult> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", ...LISTEN_FLAGS, MAIN, ...args],
    cwd: options.cwd ?? ROOT,
    env: { NO_COLOR: "1", ...options.env },
    stdin: options.stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout((options.timeout ?? 60) * 1000),
  }).spawn();
  if (options.stdin !== undefined) {
    const writer = child.stdin.getWriter();
    await writer.write(new TextEncoder().encode(options.stdin));
    await writer.close();
  }
  const out = await child.output();
  const stdout = new TextDecoder().decode(out.stdout);
  const stderr = new TextDecoder().decode(out.stderr);
  return { code: out.code, stdout, stderr, events: jsonLines(stdout) };
}

/** The JSON-object lines of a text. */
export function jsonLines(text: string): Record<string, unknown>[] {
  const events: Record<string, unknown>[] = [];
  for (const line of text.split("\n")) {
    if (!line.startsWith("{")) continue;
    try {
      events.push(JSON.parse(line));
    } catch {
      // Not an event line.
    }
  }
  return events;
}

/**
 * The listener running as a real process; its JSON-lines events are read
 * as they come.
 */
export class ListenerProcess {
  readonly events: Record<string, unknown>[] = [];
  stdout = "";
  stderr = "";
  #child: Deno.ChildProcess;
  #done: Promise<void>;

  constructor(args: string[], options: { cwd?: string; env?: Record<string, string> } = {}) {
    this.#child = new Deno.Command(Deno.execPath(), {
      args: ["run", ...LISTEN_FLAGS, MAIN, ...args],
      cwd: options.cwd ?? ROOT,
      env: { NO_COLOR: "1", ...options.env },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const read = async (stream: ReadableStream<Uint8Array>, out: "stdout" | "stderr") => {
      let partial = "";
      for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
        this[out] += chunk;
        if (out !== "stdout") continue;
        const lines = (partial + chunk).split("\n");
        partial = lines.pop() ?? "";
        this.events.push(...jsonLines(lines.join("\n")));
      }
    };
    this.#done = Promise.all([
      read(this.#child.stdout, "stdout"),
      read(this.#child.stderr, "stderr"),
    ]).then(() => {});
  }

  /** Events of one name. */
  named(event: string): Record<string, unknown>[] {
    return this.events.filter((e) => e.event === event);
  }

  /** Waits until `test` holds, or fails after `seconds` with what was seen. */
  async until(test: () => boolean, what: string, seconds = 20): Promise<void> {
    const end = Date.now() + seconds * 1000;
    while (!test()) {
      if (Date.now() > end) {
        throw new Error(
          `Timed out waiting for ${what}\nstdout:\n${this.stdout.slice(-4000)}\nstderr:\n${
            this.stderr.slice(-2000)
          }`,
        );
      }
      await new Promise((r) => setTimeout(r, 25));
    }
  }

  /** Resolves with the exit code once the process ends (output read). */
  async exited(): Promise<number> {
    const status = await this.#child.status;
    await this.#done;
    return status.code;
  }

  /** Sends a signal without waiting. */
  signal(signal: Deno.Signal): void {
    this.#child.kill(signal);
  }

  /** Sends a signal and waits for the exit code. */
  stop(signal: Deno.Signal = "SIGTERM"): Promise<number> {
    try {
      this.#child.kill(signal);
    } catch {
      // Already gone.
    }
    return this.exited();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop("SIGKILL");
  }
}

/** Every mail the test mail command wrote (one `mail.*` file each), joined. */
export async function readMail(dir: string): Promise<string> {
  const parts: string[] = [];
  for await (const entry of Deno.readDir(dir)) {
    if (entry.name.startsWith("mail.") && entry.name !== "mail.sh") {
      parts.push(await Deno.readTextFile(join(dir, entry.name)));
    }
  }
  return parts.join("\n");
}
