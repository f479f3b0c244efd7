/**
 * Files that commands name (printQueue, checkpointQueue, loadQueue): they
 * live in one folder that holds nothing else, `<log_directory>/queue/`
 * (0700). Commands come from anyone who may publish on a node, so a name
 * is refused when it leaves that folder, when any part of the path is a
 * symbolic link, or (for writes) when it names a file the listener did
 * not create there. Writes go to a new temp file that is then renamed
 * into place, which replaces a link rather than following it.
 *
 * @module
 */

import { join, normalize, relative, resolve, sep } from "node:path";
import { readIfExists } from "../durability/state_dir.ts";

/** The list of files the listener created in the folder (one name per line). */
const MANIFEST = ".lvalertmp-files";

/** Creates the folder (0700) if needed; refuses one that is a link. */
export async function openCommandFolder(dir: string): Promise<void> {
  await Deno.mkdir(dir, { recursive: true, mode: 0o700 });
  const info = await Deno.lstat(dir);
  if (info.isSymlink || !info.isDirectory) {
    throw new Error(`${dir}: the command-file folder must be a plain folder, not a link`);
  }
}

/**
 * The path of a command file, checked: relative, inside `dir`, and no
 * component of it an existing link.
 *
 * @throws {Error} naming the file and why it is refused
 */
export async function commandFilePath(dir: string, name: string): Promise<string> {
  const clean = normalize(name);
  const path = resolve(dir, clean);
  const rel = relative(resolve(dir), path);
  if (name === "" || rel === "" || rel.startsWith("..") || rel.includes(`..${sep}`)) {
    throw new Error(`${name}: command files must lie inside log_directory/queue/ (${dir})`);
  }
  if (rel.split(sep).includes(MANIFEST)) throw new Error(`${name}: a reserved name`);
  let at = resolve(dir);
  for (const part of rel.split(sep)) {
    at = join(at, part);
    try {
      if ((await Deno.lstat(at)).isSymlink) {
        throw new Error(`${name}: ${at} is a symbolic link; command files never follow links`);
      }
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) break;
      throw error;
    }
  }
  return path;
}

async function created(dir: string): Promise<Set<string>> {
  const text = await readIfExists(join(dir, MANIFEST)) ?? "";
  return new Set(text.split("\n").filter(Boolean));
}

/**
 * Writes a command file: a new temp file, renamed into place. An existing
 * file there is replaced only if the listener created it.
 *
 * @throws {Error} for a refused name or a file the listener did not create
 */
export async function writeCommandFile(
  dir: string,
  name: string,
  data: string | (string | Uint8Array)[],
): Promise<string> {
  await openCommandFolder(dir);
  const path = await commandFilePath(dir, name);
  const rel = relative(resolve(dir), path);
  const mine = await created(dir);
  let exists = true;
  try {
    await Deno.lstat(path);
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
    exists = false;
  }
  if (exists && !mine.has(rel)) {
    throw new Error(`${name}: the listener did not create this file; it will not overwrite it`);
  }
  const temp = join(dir, `.tmp-${crypto.randomUUID()}`);
  const file = await Deno.open(temp, { write: true, createNew: true, mode: 0o600 });
  try {
    const encoder = new TextEncoder();
    for (const piece of Array.isArray(data) ? data : [data]) {
      const bytes = typeof piece === "string" ? encoder.encode(piece) : piece;
      for (let n = 0; n < bytes.length;) n += await file.write(bytes.subarray(n));
    }
  } catch (error) {
    file.close();
    await Deno.remove(temp).catch(() => {});
    throw error;
  }
  file.close();
  await Deno.rename(temp, path);
  if (!mine.has(rel)) {
    await Deno.writeTextFile(join(dir, MANIFEST), rel + "\n", { append: true, mode: 0o600 });
  }
  return path;
}

/**
 * Reads a command file (a regular file in the folder, reached through no link).
 *
 * @throws {Error} for a refused name, a missing file or one that is not a plain file
 */
export async function readCommandFile(dir: string, name: string): Promise<string> {
  const path = await commandFilePath(dir, name);
  const info = await Deno.lstat(path);
  if (!info.isFile) throw new Error(`${name}: not a plain file`);
  return await Deno.readTextFile(path);
}
