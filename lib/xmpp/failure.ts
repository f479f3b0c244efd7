/**
 * Why an XMPP session could not start or had to end, told apart from
 * whatever xmpp.js or the socket threw: a refused login, a certificate
 * failing verification, a server out of reach, a stream conflict.
 * Shared by the listener's session and the companion tools.
 *
 * @module
 */

import { condition } from "./pubsub.ts";
import { TlsError, type XmppClientOptions } from "./client.ts";

/** Why the XMPP session could not start or had to end. */
export type XmppFailureKind =
  | "auth"
  | "tls"
  | "unavailable"
  | "missing_nodes"
  | "conflict";

/** A failure of the XMPP session that stops the listener (or a tool). */
export class XmppFailure extends Error {
  /** What kind of failure it is (it decides the exit code). */
  readonly kind: XmppFailureKind;

  /** A failure of `kind`, with a message that says what to do. */
  constructor(kind: XmppFailureKind, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "XmppFailure";
    this.kind = kind;
  }
}

const NETWORK_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ETIMEDOUT",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "EPIPE",
  "ENOTFOUND",
]);

/** Whether a failure is worth another attempt (the server may come back). */
export function retryable(failure: XmppFailure): boolean {
  return failure.kind === "unavailable";
}

/**
 * Turns whatever a failed start or a broken session threw into an
 * {@linkcode XmppFailure}.
 *
 * @example
 * ```ts
 * const failure = classify(new Error("connect ECONNREFUSED"), {
 *   server: "localhost",
 *   username: "u",
 *   password: "",
 *   resource: "r",
 * });
 * failure.kind; // "unavailable"
 * ```
 */
export function classify(error: unknown, o: XmppClientOptions): XmppFailure {
  if (error instanceof XmppFailure) return error;
  const e = error as { name?: string; message?: string; code?: string; text?: string };
  const where = `${o.server}:${o.port ?? 5222}`;
  if (e?.name === "SASLError") {
    const why = [condition(error), e.text].filter(Boolean).join(": ");
    return new XmppFailure(
      "auth",
      `Login as ${o.username} refused by ${o.server}: ${why || e.message}`,
      { cause: error },
    );
  }
  if (error instanceof TlsError) return new XmppFailure("tls", error.message, { cause: error });
  if (e?.name === "StreamError" && condition(error) === "conflict") {
    return new XmppFailure(
      "conflict",
      `Another client logged in as ${o.username}@${o.domain ?? o.server}/${o.resource} ` +
        "(stream conflict); not reconnecting. Give a second listener its own -r/--resource",
      { cause: error },
    );
  }
  const code = e?.code && NETWORK_CODES.has(e.code) ? ` (${e.code})` : "";
  return new XmppFailure(
    "unavailable",
    `Cannot reach ${where}${code}: ${e?.message ?? String(error)}`,
    { cause: error },
  );
}
