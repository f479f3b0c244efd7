/**
 * Worker permissions, built from nothing for each section.
 *
 * @module
 */

import { dirname, join } from "node:path";
import type { ChildSection } from "./config.ts";

/** The project's code folders a worker must read to load its modules. */
export const CODE_DIRS: readonly URL[] = [
  new URL("../", import.meta.url),
  new URL("../../workers/", import.meta.url),
];

/**
 * The permissions of one child's worker: read its code, its handler's
 * folder and its childConfig; write its log directory and its own state
 * folder's snapshots (and read its journal); nothing else unless
 * the childConfig grants it (`allow_net`, `allow_read`, ...). FFI and
 * imports from the network are never allowed.
 */
export function childPermissions(
  section: ChildSection,
  stateDir?: string,
): Deno.PermissionOptionsObject {
  const { child } = section;
  const orFalse = (list: string[]) => list.length > 0 ? [...list] : false;
  const read = [
    ...CODE_DIRS.map((url) => url.pathname),
    dirname(child.handlerPath),
    child.path,
    child.logDirectory,
    ...(stateDir ? [stateDir] : []),
    ...child.grants.read,
  ];
  return {
    read: [...new Set(read)],
    // Snapshots only: the journal is the listener's to write.
    write: [
      child.logDirectory,
      ...(stateDir ? [join(stateDir, "snapshots")] : []),
      ...child.grants.write,
    ],
    net: orFalse(child.grants.net),
    env: orFalse(child.grants.env),
    run: orFalse(child.grants.run),
    // loadChildConfig accepts only Deno's sys names in allow_sys.
    sys: orFalse(child.grants.sys) as NonNullable<
      Deno.PermissionOptionsObject["sys"]
    >,
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
