/**
 * One interface over the real XMPP servers the end-to-end tests run
 * against, so a scenario is written once and run on each:
 *
 * ```ts
 * for (const kind of SERVERS) {
 *   xmppTest(`alerts reach the listener on ${kind}`, async () => {
 *     await using server = await startServer(kind);
 *     await using publisher = await connect(server, "publisher", "pub");
 *     ...
 *   });
 * }
 * ```
 *
 * Tests are skipped (and counted as ignored) only with LVALERT_SKIP_XMPP=1;
 * otherwise a server that is missing or fails to start fails them.
 */

import { createXmppClient, x, type XmlElement, type XmppClient } from "../lib/xmpp/client.ts";
import { NS_PUBSUB_EVENT, Pubsub } from "../lib/xmpp/pubsub.ts";
import { Ejabberd, nodeConfig, type NodeOptions } from "./ejabberd.ts";
import { DOMAIN, Prosody, PUBSUB, SKIP_XMPP, USERS } from "./prosody.ts";

export { SKIP_XMPP, USERS };
export type { NodeOptions };

export type ServerKind = "prosody" | "ejabberd";
export const SERVERS: readonly ServerKind[] = ["prosody", "ejabberd"];
export type User = keyof typeof USERS;

/** Options for {@linkcode startServer}. */
export interface ServerOptions {
  /**
   * Require STARTTLS with the test CA, or accept plain-text streams.
   * @default {true}
   */
  tls?: boolean;
  /**
   * Prosody: keep pubsub data on disk (outage tests) rather than in memory.
   * ejabberd always keeps it in its Mnesia spool on disk.
   * @default {false}
   */
  persistent?: boolean;
}

/** What every server handle offers. */
export interface XmppServerBase {
  readonly kind: ServerKind;
  readonly dir: string;
  readonly port: number;
  readonly tls: boolean;
  readonly domain: string;
  /** The pubsub service JID. */
  readonly pubsub: string;
  readonly caFile: string;
  readonly users: typeof USERS;
  /** Orderly stop by pid (a real outage); {@linkcode resume} starts it again. */
  stop(): Promise<void>;
  resume(): Promise<void>;
  /** stop() then resume(); nodes, items and subscriptions kept where the server keeps them. */
  restart(): Promise<void>;
  /** Creates a node as `publisher` (an admin on Prosody, a local user on ejabberd). */
  createNode(node: string, options?: NodeOptions): Promise<void>;
  flags(user?: User): string[];
  netrc(user?: User): Promise<string>;
  [Symbol.asyncDispose](): Promise<void>;
}

/** The Prosody harness behind the common interface. */
export class ProsodyServer implements XmppServerBase {
  readonly kind = "prosody";
  readonly domain = DOMAIN;
  readonly pubsub = PUBSUB;
  readonly users = USERS;
  readonly prosody: Prosody;

  constructor(prosody: Prosody) {
    this.prosody = prosody;
  }

  get dir(): string {
    return this.prosody.dir;
  }
  get port(): number {
    return this.prosody.port;
  }
  get tls(): boolean {
    return this.prosody.tls;
  }
  get caFile(): string {
    return this.prosody.caFile;
  }
  stop(): Promise<void> {
    return this.prosody.stop();
  }
  resume(): Promise<void> {
    return this.prosody.resume();
  }
  async restart(): Promise<void> {
    await this.prosody.stop();
    await this.prosody.resume();
  }
  async createNode(node: string, options: NodeOptions = {}): Promise<void> {
    await using session = await connect(this, "publisher", `create-${crypto.randomUUID()}`);
    await session.pubsub.create(node, nodeConfig(options));
  }
  flags(user: User = "listener"): string[] {
    return this.prosody.flags(user);
  }
  netrc(user: User = "listener"): Promise<string> {
    return this.prosody.netrc(user);
  }
  [Symbol.asyncDispose](): Promise<void> {
    return this.prosody[Symbol.asyncDispose]();
  }
}

/** A running server of either kind; narrow on `kind` for server-only tools (ejabberd's kick). */
export type XmppServer = ProsodyServer | Ejabberd;

/** Starts a private server of the given kind on loopback, users registered. */
export async function startServer(
  kind: ServerKind,
  options: ServerOptions = {},
): Promise<XmppServer> {
  switch (kind) {
    case "prosody":
      return new ProsodyServer(
        await Prosody.start({
          ...(options.tls === undefined ? {} : { tls: options.tls }),
          ...(options.persistent === undefined ? {} : { persistent: options.persistent }),
        }),
      );
    case "ejabberd":
      return await Ejabberd.start(options.tls === undefined ? {} : { tls: options.tls });
    default: {
      const never: never = kind;
      throw new Error(`Unknown server kind: ${never}`);
    }
  }
}

/** `Deno.test` for tests that need a real XMPP server: ignored (and counted) only with LVALERT_SKIP_XMPP=1. */
export function xmppTest(
  name: string,
  fn: (t: Deno.TestContext) => Promise<void>,
): void {
  Deno.test({ name, ignore: SKIP_XMPP, fn });
}

/** A logged-in client that records what it receives. */
export interface Session {
  readonly client: XmppClient;
  readonly pubsub: Pubsub;
  /** The bound full JID. */
  readonly jid: string;
  /** Every stanza received, in order. */
  readonly stanzas: XmlElement[];
  /** Errors the client emitted (stream errors carry `condition`, `text`, `element`). */
  readonly errors: Error[];
  /** Whether the connection has closed. */
  readonly closed: boolean;
  /** Pubsub event messages received (optionally on one node). */
  events(node?: string): XmlElement[];
  /**
   * Resolves with the first truthy value of `find`, checked now and after
   * each stanza, error or disconnect; rejects after `timeoutMs`.
   */
  until<T>(find: () => T | undefined | false, what: string, timeoutMs?: number): Promise<T>;
  [Symbol.asyncDispose](): Promise<void>;
}

/** Options for {@linkcode connect}. */
export interface ConnectOptions {
  /**
   * Send initial presence once online.
   * @default {true}
   */
  presence?: boolean;
}

/** Logs `user` in on `resource` (over STARTTLS with the server's CA when it has TLS). */
export async function connect(
  server: XmppServerBase,
  user: User,
  resource: string,
  options: ConnectOptions = {},
): Promise<Session> {
  const client = createXmppClient({
    server: "127.0.0.1",
    domain: server.domain,
    port: server.port,
    username: user,
    password: USERS[user],
    resource,
    ...(server.tls ? { ca: await Deno.readTextFile(server.caFile) } : { allowPlaintext: true }),
    // A server started a moment ago on a busy machine can take seconds to open a stream.
    timeoutMs: 10_000,
  });
  const stanzas: XmlElement[] = [];
  const errors: Error[] = [];
  const waiters = new Set<() => void>();
  let closed = false;
  const wake = () => {
    for (const waiter of [...waiters]) waiter();
  };
  client.on("stanza", (stanza) => {
    stanzas.push(stanza);
    wake();
  });
  client.on("error", (error) => {
    errors.push(error);
    wake();
  });
  client.on("disconnect", () => {
    closed = true;
    wake();
  });
  await client.start();
  if (options.presence ?? true) await client.send(x("presence"));
  const jid = String(client.jid);
  const session: Session = {
    client,
    pubsub: new Pubsub(client, server.pubsub),
    jid,
    stanzas,
    errors,
    get closed() {
      return closed;
    },
    events(node?: string) {
      return stanzas.filter((s) => {
        const event = s.name === "message" ? s.getChild("event", NS_PUBSUB_EVENT) : undefined;
        if (!event) return false;
        return node === undefined ||
          event.children.some((c) => typeof c !== "string" && c.attrs.node === node);
      });
    },
    until<T>(find: () => T | undefined | false, what: string, timeoutMs = 10_000): Promise<T> {
      return new Promise<T>((resolve, reject) => {
        const check = () => {
          let found: T | undefined | false;
          try {
            found = find();
          } catch (error) {
            done();
            reject(error);
            return;
          }
          if (found) {
            done();
            resolve(found);
          }
        };
        const timer = setTimeout(() => {
          done();
          reject(new Error(`Timed out after ${timeoutMs} ms waiting for ${what} (${jid})`));
        }, timeoutMs);
        const done = () => {
          clearTimeout(timer);
          waiters.delete(check);
        };
        waiters.add(check);
        check();
      });
    },
    async [Symbol.asyncDispose]() {
      if (!closed) await client.stop().catch(() => {});
      client.removeAllListeners();
    },
  };
  return session;
}
