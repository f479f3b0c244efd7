/**
 * Who to log in as, and with what password: `-a`, then the netrc, then a
 * prompt without echo. Passwords stay in this process: never logged, never
 * sent to a worker.
 *
 * @module
 */

import { join } from "node:path";
import { readNetrc } from "../core/netrc.ts";

/** A login; `toString` and JSON hide the password. */
export class Credentials {
  readonly username: string;
  readonly #password: string;

  constructor(username: string, password: string) {
    this.username = username;
    this.#password = password;
  }

  get password(): string {
    return this.#password;
  }

  toString(): string {
    return `Credentials(${this.username}, password hidden)`;
  }

  toJSON(): { username: string } {
    return { username: this.username };
  }
}

/** A problem finding credentials (exit 78 at start-up). */
export class CredentialsError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "CredentialsError";
  }
}

/** Options for {@linkcode resolveCredentials}. */
export interface ResolveOptions {
  server: string;
  /** `-a` */
  username?: string | undefined;
  /** `-b` */
  password?: string | undefined;
  /** `-N`; default `$NETRC` or `~/.netrc` */
  netrc?: string | undefined;
  /** Ask on the terminal when nothing else gives a password. @default {promptPassword} */
  prompt?: (question: string) => Promise<string | undefined>;
}

/** The netrc path the old tools used: `-N`, `$NETRC`, or `~/.netrc`. */
export function netrcPath(given?: string): string {
  const path = given ?? Deno.env.get("NETRC") ?? "~/.netrc";
  const home = Deno.env.get("HOME") ?? "";
  return path.startsWith("~/") ? join(home, path.slice(2)) : path;
}

/** Finds the username and password, as the old lvalert tools did. */
export async function resolveCredentials(
  o: ResolveOptions,
): Promise<Credentials> {
  const path = netrcPath(o.netrc);
  const found = await readNetrc(path, o.server, o.username);
  const username = o.username ?? found?.login;
  if (!username) {
    throw new CredentialsError(
      `No username: give -a USER, or a "machine ${o.server} login USER password PW" line in ${path}`,
    );
  }
  const password = o.password ??
    (found?.login === username ? found.password : undefined) ??
    await (o.prompt ?? promptPassword)(
      `Password for ${username}@${o.server}: `,
    );
  if (password === undefined) {
    throw new CredentialsError(
      `No password for ${username}@${o.server}: add it to ${path} (mode 600), or run on a terminal to be asked`,
    );
  }
  return new Credentials(username, password);
}

/** Reads a password from the terminal without echo; undefined off a terminal. */
export async function promptPassword(
  question: string,
): Promise<string | undefined> {
  if (!Deno.stdin.isTerminal()) return undefined;
  const encoder = new TextEncoder();
  await Deno.stderr.write(encoder.encode(question));
  Deno.stdin.setRaw(true);
  const bytes: number[] = [];
  try {
    const buffer = new Uint8Array(1);
    for (;;) {
      const n = await Deno.stdin.read(buffer);
      const byte = buffer[0]!;
      if (n === null || byte === 0x0d || byte === 0x0a) break;
      if (byte === 0x03) throw new CredentialsError("Interrupted");
      if (byte === 0x7f || byte === 0x08) bytes.pop();
      else bytes.push(byte);
    }
  } finally {
    Deno.stdin.setRaw(false);
    await Deno.stderr.write(encoder.encode("\n"));
  }
  return new TextDecoder().decode(new Uint8Array(bytes));
}
