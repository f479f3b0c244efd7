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
  options: { cwd?: string; env?: Record<string, string>; timeout?: number } =
    {},
): Promise<RunResult> {
  const command = new Deno.Command(Deno.execPath(), {
    args: ["run", ...LISTEN_FLAGS, MAIN, ...args],
    cwd: options.cwd ?? ROOT,
    env: { NO_COLOR: "1", ...options.env },
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout((options.timeout ?? 60) * 1000),
  });
  const out = await command.output();
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
