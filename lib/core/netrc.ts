/**
 * netrc files, as the old lvalert tools read them:
 * `machine SERVER login USER password PW`.
 *
 * @module
 */

import { ConfigError } from "./config_error.ts";

/** One `machine` (or `default`) entry. */
export interface NetrcEntry {
  machine: string | null;
  login?: string;
  password?: string;
  account?: string;
}

/** Splits netrc text into entries; `#` starts a comment, `macdef` bodies are skipped. */
export function parseNetrc(text: string, file: string): NetrcEntry[] {
  const entries: NetrcEntry[] = [];
  const lines = text.split("\n");
  const tokens: { word: string; line: number }[] = [];
  for (let i = 0; i < lines.length; i++) {
    const line = (lines[i] ?? "").replace(/\r$/, "");
    if (line.trimStart().startsWith("#")) continue;
    for (const m of line.matchAll(/"((?:[^"\\]|\\.)*)"|(\S+)/g)) {
      tokens.push({
        word: m[1] !== undefined ? m[1].replace(/\\(.)/g, "$1") : m[2]!,
        line: i + 1,
      });
    }
    if (tokens.at(-2)?.word === "macdef" && tokens.at(-2)?.line === i + 1) {
      // A macro runs to the next empty line.
      tokens.splice(-2, 2);
      while (i + 1 < lines.length && (lines[i + 1] ?? "").trim() !== "") i++;
    }
  }
  let current: NetrcEntry | undefined;
  for (let t = 0; t < tokens.length; t++) {
    const { word, line } = tokens[t]!;
    if (word === "machine" || word === "default") {
      current = {
        machine: word === "default" ? null : tokens[++t]?.word ?? "",
      };
      entries.push(current);
      continue;
    }
    if (word === "login" || word === "password" || word === "account") {
      if (!current) {
        throw new ConfigError(file, `"${word}" before any "machine"`, { line });
      }
      const value = tokens[++t];
      if (!value) {
        throw new ConfigError(file, `"${word}" without a value`, { line });
      }
      current[word] = value.word;
      continue;
    }
    // The word is not echoed: it may be part of a password.
    throw new ConfigError(
      file,
      "Unexpected word (not machine, default, login, password, account)",
      { line },
    );
  }
  return entries;
}

/** Credentials found for a server. */
export interface NetrcMatch {
  login: string;
  password: string | undefined;
}

/**
 * Reads the netrc at `path` and finds the entry for `server` (and `login`,
 * when given). A missing file is no error (undefined). A file that group
 * or others may read is refused: it holds passwords.
 *
 * @throws {ConfigError} when the file is too open or malformed
 */
export async function readNetrc(
  path: string,
  server: string,
  login?: string,
): Promise<NetrcMatch | undefined> {
  let info: Deno.FileInfo;
  try {
    info = await Deno.stat(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return undefined;
    throw new ConfigError(path, `Cannot read: ${(error as Error).message}`, {
      cause: error,
    });
  }
  const mode = info.mode ?? 0;
  if ((mode & 0o077) !== 0) {
    throw new ConfigError(
      path,
      `netrc is readable by group or others (mode ${(mode & 0o777).toString(8)}); ` +
        `it holds passwords: chmod 600 ${path}`,
    );
  }
  const entries = parseNetrc(await Deno.readTextFile(path), path);
  const fits = (e: NetrcEntry) => login === undefined || e.login === login;
  const entry = entries.find((e) => e.machine === server && fits(e)) ??
    entries.find((e) => e.machine === null && fits(e));
  if (!entry?.login) return undefined;
  return { login: entry.login, password: entry.password };
}
