/**
 * Worker permissions, built from nothing for each section, and the checks
 * `--check-config` makes of what a childConfig grants.
 *
 * A child may read its code (`lib/`, `workers/`, and a handler outside
 * them: that module and the local modules it imports, not its folder), its
 * childConfig, its command-file folder, its own files folder and its own
 * state folder; it may write its log file, its command-file folder, its
 * own files folder and its snapshots. Nothing else (no network,
 * environment, subprocess, system, FFI or remote import) unless the
 * childConfig grants it with `allow_*`.
 *
 * @module
 */

import { join, resolve } from "node:path";
import { type ChildConfig, type ChildSection, logFileName } from "./config.ts";
import { CODE_DIRS, inside } from "./handler_files.ts";

export { CODE_DIRS, inside } from "./handler_files.ts";

/** Where a child's files go, below its log_directory. */
export interface ChildPaths {
  /** The child's log file. */
  logFile: string;
  /** Files that commands name (printQueue, checkpointQueue, loadQueue). */
  commandFolder: string;
  /** The handler's own files. */
  filesDirectory: string;
}

/** The paths of a child below its log_directory. */
export function childPaths(child: ChildConfig): ChildPaths {
  return {
    logFile: join(child.logDirectory, logFileName(child)),
    commandFolder: join(child.logDirectory, "queue"),
    filesDirectory: join(child.logDirectory, child.processType),
  };
}

/**
 * The permissions of one child: see the module documentation. `stateDir`
 * is the child's own state folder (absent for `--check-config`, which
 * only loads the handler).
 */
export function childPermissions(
  section: ChildSection,
  stateDir?: string,
): Deno.PermissionOptionsObject {
  const { child } = section;
  const paths = childPaths(child);
  const orFalse = (list: string[]) => list.length > 0 ? [...list] : false;
  const read = [
    ...CODE_DIRS,
    ...child.handlerFiles,
    child.path,
    paths.commandFolder,
    paths.filesDirectory,
    ...(stateDir ? [stateDir] : []),
    ...child.grants.read,
  ];
  return {
    read: [...new Set(read)],
    // Snapshots only: the journal is the listener's to write.
    write: [
      paths.logFile,
      paths.commandFolder,
      paths.filesDirectory,
      ...(stateDir ? [join(stateDir, "snapshots")] : []),
      ...child.grants.write,
    ],
    net: orFalse(child.grants.net),
    env: orFalse(child.grants.env),
    run: orFalse(child.grants.run),
    // loadChildConfig accepts only Deno's sys names in allow_sys.
    sys: orFalse(child.grants.sys) as NonNullable<Deno.PermissionOptionsObject["sys"]>,
    ffi: false,
    import: false,
  };
}

/** One line per permission kind, for `--check-config`. */
export function describePermissions(p: Deno.PermissionOptionsObject): string {
  const show = (v: unknown) =>
    Array.isArray(v) ? v.join(", ") : v === false || v === undefined ? "none" : String(v);
  return (["read", "write", "net", "env", "run", "sys", "ffi"] as const)
    .map((k) => `${k}: ${show(p[k])}`).join("; ");
}

/** What makes a grant worth a warning. */
export interface GrantContext {
  home: string | undefined;
  /** The netrc file the listener reads. */
  netrc: string | undefined;
  /** The listener's state folder. */
  stateDir: string | undefined;
}

/**
 * Warnings about what a childConfig grants: the whole file system, the
 * home folder, or a folder that holds the netrc or the state folder.
 */
export function grantWarnings(section: ChildSection, c: GrantContext): string[] {
  const warnings: string[] = [];
  const { child } = section;
  for (
    const [kind, paths] of [["read", child.grants.read], ["write", child.grants.write]] as const
  ) {
    for (const path of paths) {
      const p = resolve(path);
      const what = p === "/"
        ? "the whole file system"
        : c.home && p === resolve(c.home)
        ? "$HOME"
        : c.netrc && inside(c.netrc, p)
        ? `a folder holding the netrc (${c.netrc})`
        : c.stateDir && inside(c.stateDir, p)
        ? `a folder holding the state folder (${c.stateDir})`
        : undefined;
      if (what) warnings.push(`${child.path}: [general] allow_${kind} = ${path} grants ${what}`);
    }
  }
  if (child.grants.run.length > 0) {
    warnings.push(
      `${child.path}: [general] allow_run = ${
        child.grants.run.join(" ")
      } lets the handler run programs`,
    );
  }
  return warnings;
}
