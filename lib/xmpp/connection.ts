/**
 * One connection of the listener's session: the client, its requests
 * (failing at once when the connection drops, rather than after their
 * timeout), the stream error the server ended it with, and a polite close.
 *
 * @module
 */

import { delay, whenAborted } from "../core/async.ts";
import type { ChildLog } from "../core/log.ts";
import {
  createXmppClient,
  type XmlElement,
  type XmppClient,
  type XmppClientOptions,
} from "./client.ts";
import { streamErrorOf, streamFailure, type XmppFailure } from "./failure.ts";
import { Pubsub } from "./pubsub.ts";

/** One connection: its client, requests, and the signal of its loss. */
export interface Connection {
  client: XmppClient;
  pubsub: Pubsub;
  /** Aborted when the connection closes, for whatever reason. */
  lost: AbortController;
  /** The stream error the server ended it with. */
  failure: XmppFailure | undefined;
}

/** What {@linkcode openConnection} needs. */
export interface ConnectionOptions {
  client: XmppClientOptions;
  service: string;
  /** Milliseconds a request may wait for its answer. */
  timeout: number;
  log: ChildLog;
  /** Log every stanza (credentials masked). */
  debug?: boolean | undefined;
  connect?: ((options: XmppClientOptions) => XmppClient) | undefined;
  /** Aborting it ends the attempt at once. */
  signal: AbortSignal;
  stanza(stanza: XmlElement): void;
  /** The server ended the stream with an error (before the close). */
  streamError(conn: Connection, failure: XmppFailure): void;
  /** The connection closed. */
  closed(conn: Connection): void;
}

const NS_SASL = "urn:ietf:params:xml:ns:xmpp-sasl";

function masked(el: XmlElement): string {
  return el.attrs.xmlns === NS_SASL
    ? `<${el.name} xmlns="${NS_SASL}">[hidden]</${el.name}>`
    : el.toString();
}

function listen(conn: Connection, o: ConnectionOptions): void {
  const { client } = conn;
  const log = o.log;
  client.on("stanza", (stanza) => o.stanza(stanza));
  client.on("element", (el) => {
    const info = streamErrorOf(el);
    if (info) {
      conn.failure = streamFailure(info, o.client);
      o.streamError(conn, conn.failure);
    }
    if (o.debug) log.event("debug", "xmpp_in", { xml: masked(el) });
  });
  client.on("error", (error) => {
    log.event("debug", "xmpp_error", { error: (error as Error)?.message ?? String(error) });
  });
  client.on("status", (status) => {
    if (status !== "disconnect") return;
    conn.lost.abort(conn.failure ?? new Error("The XMPP connection was lost"));
    o.closed(conn);
  });
  if (o.debug) client.on("send", (el) => log.event("debug", "xmpp_out", { xml: masked(el) }));
}

/**
 * Makes a client, wires it, and resolves once it is online; `created` gets
 * the connection before it opens (so its closing is seen).
 *
 * @throws what the client's start threw, the server's stream error, or the signal's reason
 */
export async function openConnection(
  o: ConnectionOptions,
  created: (conn: Connection) => void,
): Promise<Connection> {
  const client = (o.connect ?? createXmppClient)(o.client);
  const lost = new AbortController();
  const pubsub = new Pubsub(client, o.service, o.timeout, lost.signal);
  const conn: Connection = { client, pubsub, lost, failure: undefined };
  created(conn);
  listen(conn, o);
  // Stopping while connecting ends the attempt at once: the client is
  // told to stop, and nobody waits for it to finish opening the stream.
  const started = client.start();
  started.catch(() => {});
  // A connection closed while opening: the client's own error says most, if it comes.
  const closed = whenAborted(lost.signal).then(() =>
    Promise.race([started, delay(200, { persistent: false })])
  ).then(() => {
    throw conn.failure ?? new Error("The connection closed while opening");
  });
  closed.catch(() => {});
  await Promise.race([started, whenAborted(o.signal), closed]);
  o.signal.throwIfAborted();
  return conn;
}

/** Closes a connection; waits at most half a second for an open one to close politely. */
export async function closeConnection(conn: Connection): Promise<void> {
  const { client } = conn;
  client.removeAllListeners();
  // An emitter without an error listener throws; this one is done for.
  client.on("error", () => {});
  conn.lost.abort(new Error("The XMPP connection was closed"));
  if (client.status === "offline") return;
  const stopped = client.stop().catch(() => {});
  // A server that does not answer the closing stream must not hold up a stop.
  if (client.status === "online") await Promise.race([stopped, delay(500, { persistent: false })]);
}
