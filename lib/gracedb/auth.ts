/**
 * Finding GraceDB credentials the way the official client does, on the
 * listener's main thread (workers have no env or file access): a bearer
 * token (SciToken) first, then basic credentials from the netrc entry of
 * the GraceDB host, else none. The result is a plain value that crosses
 * `postMessage` into a worker.
 *
 * @module
 */

import { readNetrc } from "../core/netrc.ts";

/**
 * Credentials for GraceDB: a plain, structured-clone-able value. `source`
 * says where they came from (never the secret), for `--check-config`.
 * `skipped` lists places that held something unusable (an expired token).
 */
export type GraceDbAuth =
  | {
    kind: "bearer";
    token: string;
    source: string;
    /** Expiry (Unix seconds) when the token is a JWT that has one. */
    expires?: number;
    skipped?: string[];
  }
  | { kind: "basic"; username: string; password: string; source: string; skipped?: string[] }
  | { kind: "none"; source?: string; skipped?: string[] };

/** Options for {@linkcode resolveGraceDbAuth}; tests point them at temp folders. */
export interface ResolveGraceDbAuthOptions {
  /**
   * Reads an environment variable.
   *
   * @default {(name) => Deno.env.get(name)}
   */
  env?: (name: string) => string | undefined;
  /**
   * The user id in `bt_u<uid>` file names; when unknown, those files are
   * not looked for.
   *
   * @default {Deno.uid(), or the Uid line of /proc/self/status}
   */
  uid?: number | undefined;
  /** The folder of the last-resort token file `bt_u<uid>`. @default {"/tmp"} */
  tmpDir?: string;
  /** The netrc file. @default {$NETRC, else $HOME/.netrc} */
  netrc?: string | undefined;
  /** Skip token discovery (basic credentials from netrc, or none). @default {false} */
  noToken?: boolean;
  /** Skip everything: no credentials at all. @default {false} */
  noAuth?: boolean;
  /** Take a JWT's `exp` as passed at this time (Unix seconds). @default {Date.now() / 1000} */
  now?: number;
}

interface Candidate {
  source: string;
  read: () => Promise<string | undefined>;
}

/**
 * Finds GraceDB credentials for `url` as the official client does:
 *
 * 1. a bearer token from `$SCITOKEN` (the token itself), `$SCITOKEN_FILE`,
 *    `$_CONDOR_CREDS/*.use` (`scitokens.use` first), `$BEARER_TOKEN`,
 *    `$BEARER_TOKEN_FILE`, `$XDG_RUNTIME_DIR/bt_u<uid>`, `/tmp/bt_u<uid>`;
 *    a JWT whose `exp` has passed is skipped (noted in `skipped`);
 * 2. basic credentials from the netrc entry of the URL's host (`$NETRC`
 *    or `~/.netrc`), refusing a netrc that group or others may read;
 * 3. none.
 *
 * @throws {Error} (a `ConfigError`) when the netrc is too open or malformed
 *
 * @example
 * ```ts
 * const auth = await resolveGraceDbAuth("https://gracedb.ligo.org/api/", {
 *   env: () => undefined,
 *   uid: 1000,
 *   tmpDir: "/nonexistent",
 *   netrc: "/nonexistent/netrc",
 * });
 * console.log(describeGraceDbAuth(auth)); // "no credentials"
 * ```
 */
export async function resolveGraceDbAuth(
  url: string | URL,
  options: ResolveGraceDbAuthOptions = {},
): Promise<GraceDbAuth> {
  if (options.noAuth) return { kind: "none", source: "disabled" };
  const env = options.env ?? ((name: string) => Deno.env.get(name));
  const skipped: string[] = [];
  const withSkipped = <T extends GraceDbAuth>(auth: T): T =>
    skipped.length ? { ...auth, skipped } : auth;
  if (!options.noToken) {
    const now = options.now ?? Date.now() / 1000;
    for (const candidate of await tokenCandidates(env, options)) {
      let token: string | undefined;
      try {
        token = (await candidate.read())?.trim();
      } catch (error) {
        skipped.push(`${candidate.source}: ${(error as Error).message}`);
        continue;
      }
      if (!token) continue;
      const expires = jwtExpiry(token);
      if (expires !== undefined && expires <= now) {
        skipped.push(`${candidate.source}: expired at ${new Date(expires * 1000).toISOString()}`);
        continue;
      }
      const auth: GraceDbAuth = { kind: "bearer", token, source: candidate.source };
      return withSkipped(expires === undefined ? auth : { ...auth, expires });
    }
  }
  const host = new URL(url).hostname;
  const path = options.netrc ?? env("NETRC") ?? `${env("HOME") ?? ""}/.netrc`;
  const found = await readNetrc(path, host);
  if (found?.password !== undefined) {
    return withSkipped({
      kind: "basic",
      username: found.login,
      password: found.password,
      source: `netrc ${path} (machine ${host})`,
    });
  }
  if (found) skipped.push(`netrc ${path}: no password for ${host}`);
  return withSkipped({ kind: "none" });
}

async function tokenCandidates(
  env: (name: string) => string | undefined,
  options: ResolveGraceDbAuthOptions,
): Promise<Candidate[]> {
  const fromEnv = (name: string): Candidate => ({
    source: `$${name}`,
    read: () => Promise.resolve(env(name)),
  });
  const fromFile = (source: string, path: string | undefined): Candidate[] =>
    path ? [{ source: `${source} (${path})`, read: () => readIfThere(path) }] : [];
  const uid = "uid" in options ? options.uid : currentUid();
  const xdg = env("XDG_RUNTIME_DIR");
  return [
    fromEnv("SCITOKEN"),
    ...fromFile("$SCITOKEN_FILE", env("SCITOKEN_FILE")),
    ...(await condorCredentials(env("_CONDOR_CREDS"))),
    fromEnv("BEARER_TOKEN"),
    ...fromFile("$BEARER_TOKEN_FILE", env("BEARER_TOKEN_FILE")),
    ...(uid === undefined ? [] : [
      ...fromFile("$XDG_RUNTIME_DIR/bt_u<uid>", xdg ? `${xdg}/bt_u${uid}` : undefined),
      ...fromFile("bt_u<uid> in the temp folder", `${options.tmpDir ?? "/tmp"}/bt_u${uid}`),
    ]),
  ];
}

async function condorCredentials(dir: string | undefined): Promise<Candidate[]> {
  if (!dir) return [];
  const names: string[] = [];
  try {
    for await (const entry of Deno.readDir(dir)) {
      if (entry.isFile && entry.name.endsWith(".use")) names.push(entry.name);
    }
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return [];
    throw error;
  }
  names.sort((a, b) => (a === "scitokens.use" ? -1 : b === "scitokens.use" ? 1 : a < b ? -1 : 1));
  return names.map((name) => ({
    source: `$_CONDOR_CREDS (${dir}/${name})`,
    read: () => readIfThere(`${dir}/${name}`),
  }));
}

async function readIfThere(path: string): Promise<string | undefined> {
  try {
    return await Deno.readTextFile(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return undefined;
    throw error;
  }
}

function currentUid(): number | undefined {
  try {
    if (Deno.permissions.querySync({ name: "sys", kind: "uid" }).state === "granted") {
      return Deno.uid() ?? undefined;
    }
    // The listener may run without --allow-sys=uid; it can read /proc.
    if (
      Deno.permissions.querySync({ name: "read", path: "/proc/self/status" }).state !== "granted"
    ) {
      return undefined;
    }
    const line = Deno.readTextFileSync("/proc/self/status").match(/^Uid:\s+(\d+)/m);
    return line ? Number(line[1]) : undefined;
  } catch {
    return undefined;
  }
}

/** The `exp` claim of a JWT, or undefined for an opaque token or no `exp`. */
function jwtExpiry(token: string): number | undefined {
  const parts = token.split(".");
  if (parts.length !== 3 || parts[1] === undefined) return undefined;
  try {
    const base64 = parts[1].replace(/-/g, "+").replace(/_/g, "/");
    const claims: unknown = JSON.parse(atob(base64.padEnd(Math.ceil(base64.length / 4) * 4, "=")));
    const exp = typeof claims === "object" && claims !== null
      ? (claims as { exp?: unknown }).exp
      : undefined;
    return typeof exp === "number" ? exp : undefined;
  } catch {
    return undefined;
  }
}

/**
 * One line saying which credentials are used and where they came from,
 * never the secret: for `--check-config` and logs.
 *
 * @example
 * ```ts
 * describeGraceDbAuth({ kind: "bearer", token: "t0k", source: "$SCITOKEN" });
 * // "bearer token from $SCITOKEN"
 * ```
 */
export function describeGraceDbAuth(auth: GraceDbAuth): string {
  let text: string;
  switch (auth.kind) {
    case "bearer":
      text = `bearer token from ${auth.source}` +
        (auth.expires === undefined
          ? ""
          : `, expires ${new Date(auth.expires * 1000).toISOString()}`);
      break;
    case "basic":
      text = `basic credentials for ${auth.username} from ${auth.source}`;
      break;
    case "none":
      text = auth.source === undefined ? "no credentials" : `no credentials (${auth.source})`;
      break;
    default: {
      const never: never = auth;
      throw new TypeError(`Unknown credentials: ${JSON.stringify(never)}`);
    }
  }
  return auth.skipped?.length ? `${text}; skipped ${auth.skipped.join("; ")}` : text;
}

/**
 * Holds {@linkcode GraceDbAuth} so that printing, logging or serialising
 * it never shows the secret: `toString`, `toJSON` and `Deno.inspect` give
 * only the kind, the source and a username. Wrap the value where it may be
 * printed; pass `.auth` (a plain value) to a worker.
 *
 * @example
 * ```ts
 * const held = new GraceDbCredentials({ kind: "bearer", token: "s3cret", source: "$SCITOKEN" });
 * String(held); // "GraceDbCredentials(bearer token from $SCITOKEN)"
 * JSON.stringify(held); // '{"kind":"bearer","source":"$SCITOKEN"}'
 * ```
 */
export class GraceDbCredentials {
  readonly #auth: GraceDbAuth;

  /** Wraps `auth`. */
  constructor(auth: GraceDbAuth) {
    this.#auth = auth;
  }

  /** The plain value, secret included. */
  get auth(): GraceDbAuth {
    return this.#auth;
  }

  /** The kind and source, without the secret. */
  toString(): string {
    return `GraceDbCredentials(${describeGraceDbAuth(this.#auth)})`;
  }

  /** The kind, source and username, without the secret. */
  toJSON(): { kind: GraceDbAuth["kind"]; source?: string; username?: string } {
    const a = this.#auth;
    const out: { kind: GraceDbAuth["kind"]; source?: string; username?: string } = {
      kind: a.kind,
    };
    if (a.source !== undefined) out.source = a.source;
    if (a.kind === "basic") out.username = a.username;
    return out;
  }

  /** What `console.log` shows. */
  [Symbol.for("Deno.customInspect")](): string {
    return this.toString();
  }
}
