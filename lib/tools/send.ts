/**
 * `lvalert_listenMP send`: publish one payload on a node, as lvalert_send.
 *
 * @module
 */

import { parseFlags } from "../config/cli.ts";
import { failed, type Outcome } from "../core/outcome.ts";
import {
  CONNECTION_OPTIONS,
  connectionArgs,
  connectionHelp,
  publishWithRetries,
} from "./session.ts";

export const SEND_USAGE = `Usage: lvalert_listenMP send -n NODE -p FILE|- [options]

Publishes the JSON payload in FILE (- reads stdin) on NODE, as lvalert_send.

  -n, --node NODE          node to publish on (required)
  -p, --file FILE          payload file, or - for stdin (required)
  -m, --max-attempts N     tries before giving up (default 10)
${connectionHelp("sender")}`;

/** Reads a payload and checks it is JSON; a reason when it is not. */
export async function readPayload(
  file: string,
): Promise<{ ok: true; text: string } | { ok: false; reason: string }> {
  let text: string;
  try {
    text = file === "-"
      ? await new Response(Deno.stdin.readable).text()
      : await Deno.readTextFile(file);
  } catch (error) {
    return { ok: false, reason: `${file}: ${(error as Error).message}` };
  }
  text = text.trim();
  try {
    JSON.parse(text);
  } catch (error) {
    return {
      ok: false,
      reason: `${file === "-" ? "stdin" : file}: the payload is not JSON: ${
        (error as Error).message
      }`,
    };
  }
  return { ok: true, text };
}

export async function send(argv: string[]): Promise<Outcome> {
  const parsed = parseFlags(
    argv,
    {
      ...CONNECTION_OPTIONS,
      server: { type: "string", short: "s" },
      node: { type: "string", short: "n" },
      file: { type: "string", short: "p" },
      "max-attempts": { type: "string", short: "m" },
      max_attempts: { type: "string" },
      debug: { type: "boolean", short: "g" },
    },
  );
  if (!parsed.ok) return failed("usage", parsed.message);
  const { values } = parsed;
  if (values.help) {
    console.log(SEND_USAGE);
    return { ok: true };
  }
  const conn = connectionArgs(values, "sender");
  if (typeof conn === "string") return failed("usage", conn);
  if (!values.node) return failed("usage", "-n/--node is required");
  if (!values.file) {
    return failed("usage", "-p/--file is required (- for stdin)");
  }
  const attempts = Number(values["max-attempts"] ?? values.max_attempts ?? 10);
  if (!Number.isInteger(attempts) || attempts < 1) {
    return failed("usage", "-m/--max-attempts must be a whole number >= 1");
  }
  const payload = await readPayload(values.file);
  if (!payload.ok) return failed("usage", payload.reason);
  const result = await publishWithRetries(
    conn,
    values.node,
    payload.text,
    attempts,
  );
  if (result.ok && conn.verbose) {
    console.log(`published item ${result.id} on ${values.node}`);
  }
  return result;
}
