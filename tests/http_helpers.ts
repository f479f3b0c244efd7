/**
 * Shared by the HTTP tests: a listener config with two children and a
 * handler whose tasks come due soon (they run), within ten minutes (marks
 * on the time axis) and later; alerts whose uid starts with `fail` make a
 * task that throws, `poison` kills the child.
 */

import { join } from "node:path";
import { ListenerProcess, replayFlags, tempDir } from "./helpers.ts";

const MOD = new URL("../lib/mod.ts", import.meta.url).href;

const HANDLER = `
import { QueueItem, Task } from "${MOD}";
export class Note extends Task {
  execute(ctx, item) {
    if (item.graceid.startsWith("fail")) throw new Error("no sky map for " + item.graceid);
    ctx.log.event("info", "noted", { graceid: item.graceid });
  }
}
export class Followup extends QueueItem {}
export function parseAlert(ctx, alert, t0, config) {
  if (alert.uid === "poison") setTimeout(() => { throw new Error("poisoned"); }, 0);
  const delays = config.get("watch", "delays", "0.1").split(" ").map(Number);
  ctx.queue.insert(new Followup(t0, delays.map((d) => new Note(d, "note@" + d + "s")), {
    graceid: alert.uid,
  }));
}
`;

/** Files of a listener with children `alpha` (nodes a1, a2) and `beta` (b1, warnThr 5). */
export function watchFiles(delays = "0.1 0.2 150 330 900"): Record<string, string> {
  const child = `[general]\nprocess_type = watch\nhandler = watch.ts\nlog_level = 20\n` +
    `print2stdout = False\n\n[watch]\ndelays = ${delays}\n`;
  return {
    "l.ini": "[alpha]\nnodes = a1 a2\nchildConfig = alpha.ini\nmax_restarts = 1\n\n" +
      "[beta]\nnodes = b1\nchildConfig = beta.ini\nwarnThr = 5\n",
    "alpha.ini": child,
    "beta.ini": child,
    "watch.ts": HANDLER,
  };
}

/** One replay line. */
export interface Line {
  node?: string;
  t?: number;
  id?: string;
  payload: unknown;
}

/** A running listener with `--http`, and the base URL it serves on. */
export interface HttpListener {
  listener: ListenerProcess;
  url: string;
  dir: string;
  [Symbol.asyncDispose](): Promise<void>;
}

/**
 * Writes the files and the replay stream (`lines` as JSON, or raw text),
 * starts the listener with `--http 127.0.0.1:0` and waits until it serves.
 */
export async function startHttpListener(
  lines: (Line | string)[],
  extra: string[] = [],
  files: Record<string, string> = watchFiles(),
): Promise<HttpListener> {
  const dir = await tempDir(files);
  const stream = lines.map((l) => typeof l === "string" ? l : JSON.stringify(l)).join("\n");
  await Deno.writeTextFile(join(dir.path, "r.jsonl"), stream + "\n");
  const listener = new ListenerProcess([
    ...replayFlags(join(dir.path, "l.ini"), join(dir.path, "r.jsonl"), join(dir.path, "state")),
    "--http",
    "127.0.0.1:0",
    ...extra,
  ]);
  try {
    await listener.until(() => listener.named("http_listening").length > 0, "the HTTP server");
  } catch (error) {
    await listener.stop("SIGKILL");
    await dir[Symbol.asyncDispose]();
    throw error;
  }
  return {
    listener,
    url: String(listener.named("http_listening")[0]!.url),
    dir: dir.path,
    async [Symbol.asyncDispose]() {
      await listener.stop("SIGTERM");
      await dir[Symbol.asyncDispose]();
    },
  };
}

/** GET (or another method) with an optional bearer token; the status and body. */
export async function get(
  url: string,
  options: { token?: string; method?: string } = {},
): Promise<{ status: number; body: string; headers: Headers }> {
  const headers: Record<string, string> = {};
  if (options.token !== undefined) headers.authorization = `Bearer ${options.token}`;
  const response = await fetch(url, { method: options.method ?? "GET", headers });
  return { status: response.status, body: await response.text(), headers: response.headers };
}
