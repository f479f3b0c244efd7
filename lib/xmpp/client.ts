/**
 * An XMPP client composed from xmpp.js's parts (`@xmpp/client`'s own
 * building blocks), so TLS can be verified against a private CA: the stock
 * `@xmpp/client` upgrades with STARTTLS without passing a CA, and has no
 * way to require TLS. Here STARTTLS is mandatory unless plain text is
 * explicitly allowed, the certificate is verified (against `caFile` too when
 * given), and only SCRAM-SHA-1 or, under TLS, PLAIN are offered.
 *
 * @module
 */

import net from "node:net";
import tls from "node:tls";
import { Client, jid as makeJid, xml } from "@xmpp/client-core";
import _iqCallee from "@xmpp/iq/callee.js";
import _iqCaller from "@xmpp/iq/caller.js";
import _middleware from "@xmpp/middleware";
import _resourceBinding from "@xmpp/resource-binding";
import _sasl from "@xmpp/sasl";
import plain from "@xmpp/sasl-plain";
import scramsha1 from "@xmpp/sasl-scram-sha-1";
import _streamFeatures from "@xmpp/stream-features";
import _tcp from "@xmpp/tcp";
import SASLFactory from "saslmechanisms";

/** An XML element as xmpp.js (ltx) builds and parses them. */
export interface XmlElement {
  name: string;
  attrs: Record<string, string | undefined>;
  children: (XmlElement | string)[];
  getChild(name: string, xmlns?: string): XmlElement | undefined;
  getChildren(name: string, xmlns?: string): XmlElement[];
  getChildText(name: string, xmlns?: string): string | null;
  getText(): string;
  text(): string;
  is(name: string, xmlns?: string): boolean;
  toString(): string;
}

/** Builds an element: `x("iq", { type: "get" }, child, ...)`. */
export const x = xml as (
  name: string,
  attrs?: Record<string, string | number | undefined>,
  ...children: (XmlElement | string | undefined | null)[]
) => XmlElement;

/** What callers see of a connected client. */
export interface XmppClient {
  /** `offline`, `connecting`, `online`, ... (xmpp.js statuses). */
  readonly status: string;
  /** The bound full JID once online. */
  readonly jid: { toString(): string; bare(): { toString(): string } } | null;
  start(): Promise<unknown>;
  stop(): Promise<unknown>;
  send(element: XmlElement): Promise<void>;
  /** Sends an IQ and resolves with its reply (rejects with a StanzaError). */
  request(iq: XmlElement, timeoutMs?: number): Promise<XmlElement>;
  on(event: "stanza", fn: (stanza: XmlElement) => void): void;
  on(event: "error", fn: (error: Error) => void): void;
  on(event: "online" | "offline", fn: () => void): void;
  on(event: "disconnect", fn: (info: { clean: boolean }) => void): void;
  on(event: "status", fn: (status: string) => void): void;
  on(event: "input" | "output", fn: (text: string) => void): void;
  /** Every element received (`element`) or sent (`send`), for debug logs. */
  on(event: "element" | "send", fn: (element: XmlElement) => void): void;
  removeAllListeners(): void;
}

/** Options for {@linkcode createXmppClient}. */
export interface XmppClientOptions {
  /** Host to connect to (also the XMPP domain unless `domain` is set). */
  server: string;
  /** @default {5222} */
  port?: number;
  domain?: string;
  username: string;
  password: string;
  resource: string;
  /** PEM text of the CA certificate(s) to verify the server against, instead of the system roots. */
  ca?: string;
  /** Skip certificate verification. */
  insecureTls?: boolean;
  /** Allow a stream without TLS. */
  allowPlaintext?: boolean;
  /**
   * Milliseconds to wait for the server to open a stream (and for other
   * steps of the connection) before giving up. @default {2000}
   */
  timeoutMs?: number;
}

const NS_TLS = "urn:ietf:params:xml:ns:xmpp-tls";

/** TLS could not be set up or the certificate failed verification. */
export class TlsError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "TlsError";
  }
}

type Entity = XmppClient & {
  socket: unknown;
  options: { domain: string };
  transports: unknown[];
  isSecure(): boolean;
  sendReceive(el: XmlElement): Promise<XmlElement>;
  _attachSocket(socket: unknown): void;
  restart(): Promise<unknown>;
  emit(event: string, ...args: unknown[]): void;
};

/** The socket wrapper xmpp.js's TCP transport expects after an upgrade. */
function upgradedSocket(secure: tls.TLSSocket) {
  // xmpp.js reads `.secure`, listens to close/data/error/connect and calls
  // write/end; a TLSSocket does all of that itself.
  return Object.assign(secure, { secure: true });
}

function starttls(
  streamFeatures: { use(name: string, ns: string, fn: unknown): void },
  options: XmppClientOptions,
) {
  streamFeatures.use(
    "starttls",
    NS_TLS,
    async ({ entity }: { entity: Entity }, next: () => Promise<void>) => {
      const socket = entity.socket;
      if (!(socket instanceof net.Socket) || socket instanceof tls.TLSSocket) {
        return next();
      }
      const reply = await entity.sendReceive(x("starttls", { xmlns: NS_TLS }));
      if (!reply.is("proceed", NS_TLS)) {
        throw new TlsError("The server refused STARTTLS");
      }
      const secure = await new Promise<tls.TLSSocket>((resolve, reject) => {
        const s = tls.connect({
          socket,
          host: entity.options.domain,
          servername: entity.options.domain,
          // A private CA replaces the system roots for this connection.
          ...(options.ca ? { ca: options.ca } : {}),
          rejectUnauthorized: !options.insecureTls,
        });
        s.once("secureConnect", () => resolve(s));
        s.once("error", (error: Error) =>
          reject(
            new TlsError(
              `TLS with ${entity.options.domain} failed: ${error.message}`,
              { cause: error },
            ),
          ));
      });
      entity._attachSocket(upgradedSocket(secure));
      await entity.restart();
    },
  );
}

/**
 * Creates (does not start) a client for `username@domain/resource`.
 *
 * @example
 * ```ts
 * const ca = await Deno.readTextFile("ca.pem");
 * const client = createXmppClient({
 *   server: "localhost",
 *   port: 5222,
 *   username: "u",
 *   password: "p",
 *   resource: "listener",
 *   ca,
 * });
 * await client.start();
 * ```
 */
export function createXmppClient(options: XmppClientOptions): XmppClient {
  const domain = options.domain ?? options.server;
  const service = `xmpp://${options.server}:${options.port ?? 5222}`;
  // Untyped boundary: xmpp.js ships JavaScript only.
  // deno-lint-ignore no-explicit-any
  const entity = new (Client as any)({ service, domain, timeout: options.timeoutMs }) as Entity;
  (entity as unknown as { jid: unknown }).jid = makeJid(
    options.username,
    domain,
  );
  _tcp({ entity });
  const middleware = _middleware({ entity });
  const streamFeatures = _streamFeatures({ middleware });
  const iqCaller = _iqCaller({ middleware, entity });
  const iqCallee = _iqCallee({ middleware, entity });
  iqCallee.get("urn:xmpp:ping", "ping", () => ({}));

  starttls(streamFeatures, options);

  const saslFactory = new SASLFactory();
  scramsha1(saslFactory);
  plain(saslFactory);
  _sasl(
    { streamFeatures, saslFactory },
    async (
      authenticate: (creds: unknown, mechanism: string) => Promise<void>,
      mechanisms: string[],
      _fast: unknown,
      e: Entity,
    ) => {
      const secure = e.isSecure();
      if (!secure && !options.allowPlaintext) {
        throw new TlsError(
          "The server offers no STARTTLS; refusing to log in without TLS " +
            "(--allow-plaintext permits it, for test servers)",
        );
      }
      // PLAIN only under TLS; otherwise SCRAM keeps the password off the wire.
      const mechanism = mechanisms.find((m) => secure || m !== "PLAIN");
      if (!mechanism) throw new Error("SASL: no mechanism both sides support");
      await authenticate(
        { username: options.username, password: options.password },
        mechanism,
      );
    },
  );
  _resourceBinding({ iqCaller, streamFeatures }, options.resource);

  return Object.assign(entity, {
    request: (iq: XmlElement, timeoutMs?: number) =>
      iqCaller.request(iq, timeoutMs) as Promise<XmlElement>,
  });
}
