/**
 * `lvalert_listenMP send`: publish one payload on a node, as lvalert_send.
 *
 * @module
 */

import { parseFlags } from "../config/cli.ts";
import { failed, type Outcome } from "../core/outcome.ts";
import {
  CONNECTION_OPTIONS,
  type ConnectionArgs,
  connectionArgs,
  openSession,
  sessionFailure,
  worthRetrying,
} from "./session.ts";

export const SEND_USAGE = `Usage: lvalert_listenMP send -n NODE -p FILE|- [options]

Publishes the JSON payload in FILE (- reads stdin) on NODE, as lvalert_send.

  -n, --node NODE          node to publish on (required)
  -p, --file FILE          payload file, or - for stdin (required)
  -m, --max-attempts N     tries before giving up (default 10)
${connectionHelp("sender")}`;

/** Connection flags, shared by the help texts of the tools. */
export function connectionHelp(resource: string): string {
  return `  -a, --username USER      login (default: the netrc login for the server)
  -b, --password PW        accepted for old scripts; argv is visible to others
  -s, --server HOST        XMPP server (default lvalert.cgca.uwm.edu)
  -r, --resource RES       XMPP resource (default ${resource})
  -N, --netrc FILE         netrc (default $NETRC or ~/.netrc)
      --port N             XMPP port (default 5222)
      --pubsub-service JID pubsub service (default pubsub.SERVER)
      --ca-file PEM        verify the server against this CA
      --insecure-tls       do not verify the certificate (unsafe)
      --allow-plaintext    allow a connection without TLS (tests only)
  -v, --verbose            say what happens
  -h, --help               this text`;
}

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

/**
 * Publishes `text` on `node`, trying up to `attempts` times when the
 * server cannot be reached or does not answer.
 */
export async function publishWithRetries(
  conn: ConnectionArgs,
  node: string,
  text: string,
  attempts: number,
): Promise<Outcome & { id?: string }> {
  let last: Outcome = failed("unavailable", "no attempt made");
  for (let attempt = 1; attempt <= attempts; attempt++) {
    try {
      await using session = await openSession(conn);
      const id = await session.pubsub.publish(node, text);
      return { ok: true, id };
    } catch (error) {
      const stanza = (error as { name?: string }).name === "StanzaError";
      const timeout = (error as { name?: string }).name === "TimeoutError" ||
        /timeout/i.test((error as Error).message);
      last = stanza
        ? failed(
          "runtime",
          `Publishing on ${node} refused: ${(error as Error).message}`,
        )
        : sessionFailure(error, conn);
      // Only an unreachable server, or one that did not answer, is worth
      // another try: a refused login or certificate stops at once.
      if (!timeout && !worthRetrying(error, conn)) return last;
      if (attempt < attempts) {
        await new Promise((r) => setTimeout(r, Math.min(5000, 500 * attempt)));
      }
    }
  }
  return last;
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
