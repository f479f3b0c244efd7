/**
 * Where the HTTP server listens and who may ask it: `--http ADDR:PORT` is
 * loopback only unless `--http-token FILE` names a private file holding a
 * bearer token. Checked before anything starts: a problem is a
 * configuration error (exit 78).
 *
 * @module
 */

import { ConfigError } from "../core/config_error.ts";
import type { HttpAddress } from "../config/cli.ts";

/** What the HTTP server needs to start. */
export interface HttpSettings {
  hostname: string;
  port: number;
  /** The bearer token every request must carry; none on a loopback address without a token. */
  token: string | undefined;
}

/** Whether a listening address is reachable from this machine only. */
export function isLoopback(hostname: string): boolean {
  const h = hostname.toLowerCase();
  if (h === "localhost" || h === "::1" || h === "0:0:0:0:0:0:0:1") return true;
  const v4 = /^127\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(h);
  return v4 !== null && v4.slice(1).every((n) => Number(n) <= 255);
}

/**
 * Reads a bearer token: the file's first line, at least 16 characters.
 * The file must be private, as the netrc is: one that group or others may
 * read is refused.
 *
 * @throws {ConfigError} naming the file
 */
export async function readToken(path: string): Promise<string> {
  let info: Deno.FileInfo;
  let text: string;
  try {
    info = await Deno.stat(path);
    text = await Deno.readTextFile(path);
  } catch (error) {
    throw new ConfigError(path, `Cannot read the HTTP token: ${(error as Error).message}`, {
      cause: error,
    });
  }
  const mode = info.mode ?? 0;
  if ((mode & 0o077) !== 0) {
    throw new ConfigError(
      path,
      `HTTP token file is readable by group or others (mode ${(mode & 0o777).toString(8)}): ` +
        `chmod 600 ${path}`,
    );
  }
  const token = text.split("\n")[0]!.trim();
  if (token.length < 16 || /\s/.test(token)) {
    throw new ConfigError(
      path,
      "HTTP token must be one word of at least 16 characters on the first line",
    );
  }
  return token;
}

/**
 * Checks `--http` and `--http-token`; undefined without `--http`.
 *
 * @throws {ConfigError} for a non-loopback address without a token, or a
 * token file that is unreadable, open to others or too short
 */
export async function httpSettings(
  address: HttpAddress | undefined,
  tokenFile: string | undefined,
): Promise<HttpSettings | undefined> {
  if (!address) return undefined;
  const token = tokenFile === undefined ? undefined : await readToken(tokenFile);
  if (token === undefined && !isLoopback(address.hostname)) {
    throw new ConfigError(
      "--http",
      `${address.hostname} is not a loopback address: give --http-token FILE so that ` +
        "every request must carry the token, or listen on 127.0.0.1",
    );
  }
  return { hostname: address.hostname, port: address.port, token };
}
