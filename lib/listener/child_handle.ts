/**
 * What runs a child: a Web Worker in the listener's process (the default),
 * or a process of its own (`isolation = process`), started with the same
 * permission set as command-line flags and a heap limit. Deno 2.9 cannot
 * limit one Web Worker's heap, so a handler that may allocate without
 * bound belongs in a process: there it ends only itself.
 *
 * @module
 */

import { fileURLToPath } from "node:url";
import type { ChildSection } from "../config/config.ts";
import { childPermissions } from "../config/permissions.ts";
import type { ToChild } from "../child/messages.ts";
import { decodeMessage, encodeMessage, lines } from "../child/wire.ts";
import { ringDoorbell } from "../queue/clock.ts";

/** A running child, whatever runs it. */
export interface ChildHandle {
  post(message: ToChild): void;
  /** Where a Web Worker is told of each message posted (see `useDoorbell`); null for a process. */
  doorbell: SharedArrayBuffer | null;
  /** Ends it at once. */
  terminate(): void;
}

/** What a handle reports. */
export interface HandleEvents {
  message(data: unknown): void;
  /** It ended or failed; it is of no further use. */
  ended(reason: string): void;
  /** A line the child printed outside the message channel (a process's stderr). */
  output?(line: string): void;
}

const WORKER_URL = new URL("../../workers/child.ts", import.meta.url);
const PROCESS_ENTRY = fileURLToPath(new URL("../../workers/child_process.ts", import.meta.url));
const DENO_JSON = fileURLToPath(new URL("../../deno.json", import.meta.url));

/** A child in a Web Worker, with its section's permissions. */
export function workerChild(
  section: ChildSection,
  stateDir: string | undefined,
  events: HandleEvents,
): ChildHandle {
  const worker = new Worker(WORKER_URL, {
    type: "module",
    name: section.name,
    deno: { permissions: childPermissions(section, stateDir) },
  });
  worker.onmessage = (event: MessageEvent<unknown>) => events.message(event.data);
  worker.onerror = (event: ErrorEvent) => {
    event.preventDefault();
    events.ended(event.message || String(event.error));
  };
  worker.onmessageerror = () => events.ended("a message from the worker could not be read");
  const doorbell = new SharedArrayBuffer(4);
  const bell = new Int32Array(doorbell);
  return {
    post: (message) => {
      worker.postMessage(message);
      ringDoorbell(bell);
    },
    doorbell,
    terminate: () => worker.terminate(),
  };
}

/** Command-line permission flags for a permission set. */
export function permissionFlags(p: Deno.PermissionOptionsObject): string[] {
  const flags: string[] = [];
  for (const kind of ["read", "write", "net", "env", "run", "sys"] as const) {
    const value = p[kind];
    if (value === true || value === "inherit") flags.push(`--allow-${kind}`);
    else if (Array.isArray(value) && value.length > 0) {
      const list = value.map(String);
      const bad = list.find((v) => v.includes(","));
      if (bad) throw new Error(`A ${kind} grant holds a comma, which a flag cannot carry: ${bad}`);
      flags.push(`--allow-${kind}=${list.join(",")}`);
    }
  }
  return flags;
}

/** Whether this program runs from a `deno compile` binary (which cannot start `deno run`). */
export function compiled(): boolean {
  return import.meta.url.includes("/deno-compile-");
}

/** A child in a process of its own, with the same permissions and a heap limit. */
export function processChild(
  section: ChildSection,
  stateDir: string | undefined,
  events: HandleEvents,
): ChildHandle {
  const args = [
    "run",
    "--quiet",
    "--no-prompt",
    "--no-remote",
    "--cached-only",
    "--config",
    DENO_JSON,
    `--v8-flags=--max-old-space-size=${section.heapMb}`,
    ...permissionFlags(childPermissions(section, stateDir)),
    PROCESS_ENTRY,
  ];
  const child = new Deno.Command(Deno.execPath(), {
    args,
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
    env: { DENO_NO_UPDATE_CHECK: "1" },
  }).spawn();
  const writer = child.stdin.getWriter();
  const encoder = new TextEncoder();
  let done = false;
  const end = (reason: string) => {
    if (done) return;
    done = true;
    events.ended(reason);
  };
  void (async () => {
    for await (const line of lines(child.stdout)) {
      const decoded = decodeMessage(line);
      if (decoded) events.message(decoded.message);
      else if (line.trim() !== "") events.output?.(line);
    }
  })();
  void (async () => {
    for await (const line of lines(child.stderr)) events.output?.(line);
  })();
  void child.status.then((status) => {
    const how = status.signal ? `signal ${status.signal}` : `code ${status.code}`;
    end(`the child process ended (${how})`);
  });
  return {
    doorbell: null,
    post: (message) => {
      if (done) return;
      writer.write(encoder.encode(encodeMessage(message))).catch(() => {});
    },
    terminate: () => {
      done = true;
      try {
        child.kill("SIGKILL");
      } catch {
        // Already gone.
      }
    },
  };
}
