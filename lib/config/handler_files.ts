/**
 * The code a worker may read: the project's code folders, and for a
 * handler outside them, that module and the local modules it imports.
 *
 * @module
 */

import { dirname, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";

/** The project's code folders a worker must read to load its modules. */
export const CODE_DIRS: readonly string[] = [
  fileURLToPath(new URL("../", import.meta.url)),
  fileURLToPath(new URL("../../workers/", import.meta.url)),
];

/** Whether `path` is `dir` or lies below it. */
export function inside(path: string, dir: string): boolean {
  const p = resolve(path);
  const d = resolve(dir);
  return p === d || p.startsWith(d.endsWith(sep) ? d : d + sep);
}

const IMPORT_RE = /(?:\bfrom\s*|\bimport\s*\(?\s*)["']([^"']+)["']/g;

/**
 * The local modules a handler outside the code folders consists of: the
 * module and every relative or `file:` module it imports, transitively.
 * The worker may read these files and no others beside its code.
 */
export async function handlerFiles(handlerPath: string): Promise<string[]> {
  const seen = new Set<string>();
  const todo = [resolve(handlerPath)];
  while (todo.length > 0 && seen.size < 1000) {
    const file = todo.pop()!;
    if (seen.has(file) || CODE_DIRS.some((dir) => inside(file, dir))) continue;
    seen.add(file);
    let text: string;
    try {
      text = await Deno.readTextFile(file);
    } catch {
      continue;
    }
    for (const [, spec] of text.matchAll(IMPORT_RE)) {
      if (spec!.startsWith("./") || spec!.startsWith("../")) {
        todo.push(resolve(dirname(file), spec!));
      } else if (spec!.startsWith("file:")) todo.push(fileURLToPath(spec!));
    }
  }
  return [...seen];
}
