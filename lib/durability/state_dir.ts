/**
 * The state folder: journal, checkpoints, seen item ids, control socket.
 * Private to its owner (0700; files 0600).
 *
 * @module
 */

import { basename, join } from "node:path";

/**
 * The default state folder for a listener config:
 * `$XDG_STATE_HOME/lvalertMP/<config name>` or
 * `~/.local/state/lvalertMP/<config name>`.
 */
export function defaultStateDir(configPath: string): string {
  const base = Deno.env.get("XDG_STATE_HOME") ||
    join(Deno.env.get("HOME") ?? ".", ".local", "state");
  return join(base, "lvalertMP", basename(configPath).replace(/\.ini$/, ""));
}

/** Creates the folder if needed and makes it private (0700). */
export async function openStateDir(path: string): Promise<string> {
  await Deno.mkdir(path, { recursive: true, mode: 0o700 });
  await Deno.chmod(path, 0o700);
  return path;
}

/**
 * Writes a file atomically and privately: temp file (0600), data synced,
 * renamed over the target, folder synced.
 */
export async function writePrivateFile(
  path: string,
  data: string | Uint8Array | (string | Uint8Array)[],
): Promise<void> {
  const temp = tempPath(path);
  try {
    const file = await Deno.open(temp, { write: true, create: true, truncate: true, mode: 0o600 });
    try {
      // A list is written piece by piece: no one huge buffer, and the event
      // loop runs between pieces.
      for (const piece of Array.isArray(data) ? data : [data]) {
        await writeAll(file, typeof piece === "string" ? new TextEncoder().encode(piece) : piece);
      }
      await file.syncData();
    } finally {
      file.close();
    }
    await Deno.rename(temp, path);
  } catch (error) {
    // A full disk must not leave half-written temp files behind.
    await Deno.remove(temp).catch(() => {});
    throw error;
  }
  await syncDir(join(path, ".."));
}

/**
 * Bytes a long write puts in the page cache before it syncs them. On ext4
 * (ordered data) the journal's every `fdatasync` commits the file system's
 * running transaction, which first flushes the data of every file written
 * meanwhile: a snapshot synced once at its end held the journal's syncs up
 * for the whole flush. Synced every 512 KB, the journal's sync p99 fell
 * from 2.6-3.6 ms to 1.3-1.5 ms next to a 4 MB file written every 0.3 s,
 * and its longest from 15-24 ms to 4-8 ms next to 20 MB files (one 1 KB
 * append + sync a millisecond).
 */
export const SYNC_EVERY = 512 * 1024;

/** What names a temp file of {@linkcode writePrivateFile}. */
const TEMP_MARK = ".tmp-";

/**
 * A temp file's name beside `path`, unique to this process and call; one
 * an interrupted write leaves behind is removed by {@linkcode removeStaleTemps}.
 */
export function tempPath(path: string): string {
  return `${path}${TEMP_MARK}${Deno.pid}-${crypto.randomUUID().slice(0, 8)}`;
}

/**
 * Removes temp files an interrupted {@linkcode writePrivateFile} left in a
 * folder (the process died between writing and renaming); returns how many.
 */
export async function removeStaleTemps(dir: string): Promise<number> {
  let removed = 0;
  try {
    for await (const entry of Deno.readDir(dir)) {
      if (!entry.isFile || !entry.name.includes(TEMP_MARK)) continue;
      await Deno.remove(join(dir, entry.name)).catch(() => {});
      removed++;
    }
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
  return removed;
}

/** Flushes a folder's entries (a rename) to disk, where the platform allows. */
export async function syncDir(path: string): Promise<void> {
  try {
    const dir = await Deno.open(path, { read: true });
    try {
      await dir.sync();
    } finally {
      dir.close();
    }
  } catch {
    // Not every platform can sync a directory; the rename itself stands.
  }
}

/** A file's text, or undefined when it does not exist (other errors throw). */
export async function readIfExists(path: string): Promise<string | undefined> {
  const bytes = await readBytesIfExists(path);
  return bytes && new TextDecoder().decode(bytes);
}

/** A file's bytes, or undefined when there is no such file. */
export async function readBytesIfExists(path: string): Promise<Uint8Array | undefined> {
  try {
    return await Deno.readFile(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return undefined;
    throw error;
  }
}

/**
 * Reads exactly `into.length` bytes from where the file is (a read may
 * give only part); false when the file ends first.
 */
export async function readFull(
  from: { read(p: Uint8Array): Promise<number | null> },
  into: Uint8Array,
): Promise<boolean> {
  for (let n = 0; n < into.length;) {
    const got = await from.read(into.subarray(n));
    if (got === null) return false;
    n += got;
  }
  return true;
}

/** Writes all of `bytes` (a write may take only part). */
export async function writeAll(
  to: { write(p: Uint8Array): Promise<number> },
  bytes: Uint8Array,
): Promise<void> {
  for (let n = 0; n < bytes.length;) n += await to.write(bytes.subarray(n));
}
