/**
 * Why an XMPP session could not start or had to end, told apart from
 * whatever xmpp.js or the socket threw: a refused login, a certificate
 * failing verification, a server out of reach, and each stream error the
 * server may end a session with (a second login on the same resource, an
 * administrator's kick, a shutdown, a redirect, a policy violation, ...).
 * Shared by the listener's session and the companion tools.
 *
 * @module
 */

import type { FailureKind } from "../core/outcome.ts";
import { condition } from "./pubsub.ts";
import { TlsError, type XmlElement, type XmppClientOptions } from "./client.ts";

/**
 * Why the XMPP session could not start or had to end.
 *
 * - `conflict`: another client logged in on the same resource (final)
 * - `kicked`: an administrator ended the session (`<conflict/>` with their text, or none)
 * - `shutdown`: the server is going down (`<system-shutdown/>`)
 * - `redirect`: the server sent the client elsewhere (`<see-other-host/>`)
 * - `stream`: any other stream error (`<policy-violation/>`, `<reset/>`, ...)
 */
export type XmppFailureKind =
  | "auth"
  | "tls"
  | "unavailable"
  | "missing_nodes"
  | "conflict"
  | "kicked"
  | "shutdown"
  | "redirect"
  | "stream";

/** What a stream error said: its condition and the server's text. */
export interface StreamErrorInfo {
  /** RFC 6120 condition (`conflict`, `system-shutdown`, ...). */
  condition: string;
  /** The server's `<text/>`, empty when it sent none. */
  text: string;
  /** `<see-other-host/>`: where to connect instead. */
  host?: string;
}

/** A failure of the XMPP session that stops the listener (or a tool). */
export class XmppFailure extends Error {
  /** What kind of failure it is (it decides the exit code, and whether to reconnect). */
  readonly kind: XmppFailureKind;
  /** The stream error behind it, when there was one. */
  readonly stream: StreamErrorInfo | undefined;

  /** A failure of `kind`, with a message that says what to do. */
  constructor(
    kind: XmppFailureKind,
    message: string,
    options?: ErrorOptions & { stream?: StreamErrorInfo },
  ) {
    super(message, options);
    this.name = "XmppFailure";
    this.kind = kind;
    this.stream = options?.stream;
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

/**
 * How each kind of failure ends a run (its exit status): a refused login is
 * `auth` (77), a session another login took over is `runtime` (1), any
 * other is `unavailable` (69).
 */
export const FAILURE_EXIT: Readonly<Record<XmppFailureKind, FailureKind>> = {
  auth: "auth",
  tls: "unavailable",
  unavailable: "unavailable",
  missing_nodes: "unavailable",
  conflict: "runtime",
  kicked: "unavailable",
  shutdown: "unavailable",
  redirect: "unavailable",
  stream: "unavailable",
};

/**
 * Whether a failure is worth another attempt: the server may come back, or
 * let the session in again. A refused login, a certificate failing
 * verification, missing nodes and a second login on the same resource are
 * final.
 */
export function retryable(failure: XmppFailure): boolean {
  switch (failure.kind) {
    case "unavailable":
    case "kicked":
    case "shutdown":
    case "redirect":
    case "stream":
      return true;
    case "auth":
    case "tls":
    case "missing_nodes":
    case "conflict":
      return false;
    default: {
      const never: never = failure.kind;
      return never;
    }
  }
}

const NS_STREAM = "http://etherx.jabber.org/streams";

/** The text a server sends when a second login replaces a session (ejabberd and Prosody). */
export const REPLACED_TEXT = "Replaced by new connection";

/** Reads a `<stream:error>` element; undefined for any other element. */
export function streamErrorOf(element: XmlElement): StreamErrorInfo | undefined {
  if (!element.is("error", NS_STREAM)) return undefined;
  const children = element.children.filter((c): c is XmlElement => typeof c !== "string");
  const first = children.find((c) => c.name !== "text");
  if (!first) return undefined;
  const text = children.find((c) => c.name === "text")?.text().trim() ?? "";
  const info: StreamErrorInfo = { condition: first.name, text };
  if (first.name === "see-other-host" && first.text().trim()) info.host = first.text().trim();
  return info;
}

function quoted(info: StreamErrorInfo): string {
  return info.text ? `${info.condition}: "${info.text}"` : info.condition;
}

/** Turns a stream error into the failure it means, with the server's text in the message. */
export function streamFailure(info: StreamErrorInfo, o: XmppClientOptions): XmppFailure {
  const who = `${o.username}@${o.domain ?? o.server}/${o.resource}`;
  const options = { stream: info };
  switch (info.condition) {
    case "conflict":
      if (info.text === REPLACED_TEXT) {
        return new XmppFailure(
          "conflict",
          `Another client logged in as ${who} (stream ${quoted(info)}); not reconnecting. ` +
            "Give a second listener its own -r/--resource",
          options,
        );
      }
      return new XmppFailure(
        "kicked",
        `${o.server} ended the session of ${who} (stream ${quoted(info)}: ` +
          "an administrator's kick, not a second login); reconnecting",
        options,
      );
    case "system-shutdown":
      return new XmppFailure("shutdown", `${o.server} is shutting down (${quoted(info)})`, options);
    case "see-other-host":
      return new XmppFailure(
        "redirect",
        `${o.server} sends clients to ${info.host ?? "another host"} (${quoted(info)})`,
        options,
      );
    default:
      return new XmppFailure(
        "stream",
        `${o.server} ended the stream with an error (${quoted(info)})`,
        options,
      );
  }
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
  const e = error as {
    name?: string;
    message?: string;
    code?: string;
    text?: string;
    element?: XmlElement;
  };
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
  if (e?.name === "StreamError") {
    const info = (e.element && streamErrorOf(e.element)) ??
      { condition: condition(error) ?? "undefined-condition", text: e.text ?? "" };
    const failure = streamFailure(info, o);
    return new XmppFailure(failure.kind, failure.message, { cause: error, stream: info });
  }
  if (e?.name === "StanzaError") {
    const why = [condition(error), e.text].filter(Boolean).join(": ");
    return new XmppFailure("unavailable", `${o.server} refused a request: ${why || e.message}`, {
      cause: error,
    });
  }
  const code = e?.code && NETWORK_CODES.has(e.code) ? ` (${e.code})` : "";
  return new XmppFailure(
    "unavailable",
    `Cannot reach ${where}${code}: ${e?.message ?? String(error)}`,
    { cause: error },
  );
}
