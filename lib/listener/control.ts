/**
 * The control socket: a Unix socket in the state folder (mode 0600) on
 * which `lvalert_listenMP ctl` and `status` talk to a running listener.
 * One JSON request line, one JSON reply line:
 * `{"op":"status"}`, `{"op":"command","child":C?,"name":N,"kwargs":{...}}`,
 * `{"op":"acknowledge","child":C?}` (loss reports) or `{"op":"ack_gap","node":N?}`
 * (a catch-up gap).
 *
 * @module
 */

import * as v from "valibot";
import { isJsonObject, type JsonObject } from "../core/alert.ts";
import type { ChildLog } from "../core/log.ts";
import { writeAll } from "../durability/state_dir.ts";
import type { CommandOutcome } from "./supervisor.ts";

/** What the socket serves. */
export interface ControlHandlers {
  status(): JsonObject;
  command(child: string | undefined, name: string, kwargs: JsonObject): Promise<CommandOutcome[]>;
  /** Clears loss reports (of one child or all); returns how many. */
  acknowledge(child: string | undefined): number;
  /** Acknowledges the catch-up gaps of `node` (or all); returns the nodes acknowledged. */
  ackGap?(node: string | undefined): string[];
}

const jsonObject = v.custom<JsonObject>(isJsonObject, '"kwargs" must be an object');

/** A request as the socket takes it. */
const ControlRequestSchema = v.variant(
  "op",
  [
    v.object({ op: v.literal("status") }),
    v.object({
      op: v.literal("acknowledge"),
      child: v.optional(v.string('"child" must be a string')),
    }),
    v.object({
      op: v.literal("command"),
      child: v.optional(v.string('"child" must be a string')),
      name: v.pipe(v.string('"name" must be a string'), v.minLength(1, '"name" is empty')),
      kwargs: v.optional(jsonObject, {}),
    }),
    v.object({ op: v.literal("ack_gap"), node: v.optional(v.string('"node" must be a string')) }),
  ],
  'unknown request: "op" must be "status", "acknowledge", "ack_gap" or "command" (with "name")',
);

/** A request as the socket takes it. */
export type ControlRequest = v.InferInput<typeof ControlRequestSchema>;
type ParsedRequest = v.InferOutput<typeof ControlRequestSchema>;

const MAX_REQUEST = 1 << 20;

/** Seconds a client has to send its request line. */
const REQUEST_TIMEOUT = 5;

/** The first line the client sends, within {@linkcode REQUEST_TIMEOUT} seconds. */
async function readRequest(conn: Deno.Conn): Promise<string> {
  const timer = setTimeout(() => {
    try {
      conn.close();
    } catch {
      // Already closed.
    }
  }, REQUEST_TIMEOUT * 1000);
  try {
    return await readLine(conn);
  } catch (error) {
    throw new Error(`no complete request within ${REQUEST_TIMEOUT} s`, { cause: error });
  } finally {
    clearTimeout(timer);
  }
}

async function readLine(conn: Deno.Conn): Promise<string> {
  const decoder = new TextDecoder();
  const buffer = new Uint8Array(4096);
  let text = "";
  while (!text.includes("\n")) {
    const n = await conn.read(buffer);
    if (n === null) break;
    text += decoder.decode(buffer.subarray(0, n), { stream: true });
    if (text.length > MAX_REQUEST) throw new Error("request too long");
  }
  return text.split("\n")[0] ?? "";
}

function parseRequest(line: string): ParsedRequest | string {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    return "request is not JSON";
  }
  if (!isJsonObject(value)) return "request must be a JSON object";
  const parsed = v.safeParse(ControlRequestSchema, value);
  return parsed.success ? parsed.output : parsed.issues[0].message;
}

/** A listening control socket. */
export class ControlServer implements AsyncDisposable {
  readonly path: string;
  #listener: Deno.Listener;
  #serving: Promise<void>;

  private constructor(
    path: string,
    listener: Deno.Listener,
    handlers: ControlHandlers,
    log: ChildLog,
  ) {
    this.path = path;
    this.#listener = listener;
    this.#serving = this.#serve(handlers, log);
  }

  /**
   * Listens on `path`. A stale socket file is replaced; one that answers
   * belongs to a running listener, and this one refuses to share it.
   *
   * @throws {Error} when another listener uses the socket
   */
  static async start(
    path: string,
    handlers: ControlHandlers,
    log: ChildLog,
  ): Promise<ControlServer> {
    try {
      const conn = await Deno.connect({ transport: "unix", path });
      conn.close();
      throw new Error(
        `Another listener is running with this state folder (its control socket ${path} answers)`,
      );
    } catch (error) {
      if (error instanceof Error && error.message.startsWith("Another listener")) throw error;
      await Deno.remove(path).catch(() => {});
    }
    const listener = Deno.listen({ transport: "unix", path });
    await Deno.chmod(path, 0o600);
    return new ControlServer(path, listener, handlers, log);
  }

  async #serve(handlers: ControlHandlers, log: ChildLog): Promise<void> {
    for await (const conn of this.#listener) {
      void (async () => {
        try {
          const request = parseRequest(await readRequest(conn));
          let reply: JsonObject;
          if (typeof request === "string") reply = { ok: false, error: request };
          else if (request.op === "status") reply = { ok: true, status: handlers.status() };
          else if (request.op === "acknowledge") {
            const cleared = handlers.acknowledge(request.child);
            log.event("info", "acknowledged", { child: request.child ?? null, cleared });
            reply = { ok: true, cleared };
          } else if (request.op === "ack_gap") {
            reply = { ok: true, acknowledged: handlers.ackGap?.(request.node) ?? [] };
          } else {
            log.event("info", "control_command", {
              name: request.name,
              child: request.child ?? null,
            });
            const results = await handlers.command(request.child, request.name, request.kwargs);
            reply = { ok: results.every((r) => r.ok), results: results.map((r) => ({ ...r })) };
          }
          await writeAll(conn, new TextEncoder().encode(JSON.stringify(reply) + "\n"));
        } catch (error) {
          log.event("warning", "control_error", { error: (error as Error).message });
        } finally {
          try {
            conn.close();
          } catch {
            // Already closed by the client.
          }
        }
      })();
    }
  }

  /** Closes, for `await using`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  /** Stops listening and removes the socket file. */
  async close(): Promise<void> {
    try {
      this.#listener.close();
    } catch {
      // Already closed.
    }
    await this.#serving.catch(() => {});
    await Deno.remove(this.path).catch(() => {});
  }
}

/**
 * Sends one request to a listener's control socket and returns its reply.
 *
 * @throws {Error} when nothing listens there (the listener is not running)
 */
export async function controlRequest(
  path: string,
  request: ControlRequest,
  timeoutSeconds = 60,
): Promise<JsonObject> {
  const conn = await Deno.connect({ transport: "unix", path });
  const timer = setTimeout(() => conn.close(), timeoutSeconds * 1000);
  try {
    await writeAll(conn, new TextEncoder().encode(JSON.stringify(request) + "\n"));
    const line = await readLine(conn);
    if (!line) throw new Error(`No reply on ${path} within ${timeoutSeconds} s`);
    const reply = JSON.parse(line);
    if (!isJsonObject(reply)) throw new Error(`Bad reply on ${path}`);
    return reply;
  } finally {
    clearTimeout(timer);
    try {
      conn.close();
    } catch {
      // Closed by the timer.
    }
  }
}
