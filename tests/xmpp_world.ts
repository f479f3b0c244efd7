/**
 * What the XMPP end-to-end tests share: a fresh folder with the fixture
 * configs, fresh nodes on a server shared by the steps of a test, a
 * publisher session that comes back after a server restart, and the
 * listener's flags.
 */

import { join } from "node:path";
import type { Pubsub } from "../lib/xmpp/pubsub.ts";
import { copyFixtures, ListenerProcess, tempDir } from "./helpers.ts";
import { nodeConfig } from "./ejabberd.ts";
import { connect, type NodeOptions, type Session, type XmppServer } from "./xmpp_servers.ts";

/** The nodes of the fixture config (tests/fixtures/lvalert_listenMP.ini). */
export const NODES = ["cbc_gstlal", "cbc_gstlal_lowmass", "command-watcher", "burst_cwb_allsky"];

/** Options for {@linkcode world}. */
export interface WorldOptions {
  /** Nodes to create (after deleting every node the server has). @default {NODES} */
  nodes?: string[];
  /** Their configuration. */
  nodeOptions?: NodeOptions;
}

/** A test's folder, nodes and publisher on a running server. */
export interface World extends AsyncDisposable {
  readonly server: XmppServer;
  /** Temp folder holding the fixtures (logs land here). */
  readonly dir: string;
  /** The fixture listener config in `dir`. */
  readonly config: string;
  /** The publisher's requests (logged in again if the server restarted). */
  pubsub(): Promise<Pubsub>;
  /** Listener flags: server, netrc, a state folder in `dir`, JSON logs, then `extra`. */
  listenFlags(...extra: string[]): string[];
  /** As {@linkcode listenFlags}, through another port (a {@linkcode TcpProxy}). */
  flagsVia(port: number, ...extra: string[]): string[];
  /** Flags for send, command and admin as the publisher. */
  toolFlags(): string[];
  /** Starts the listener on the fixture config and waits until it is caught up. */
  start(...extra: string[]): Promise<ListenerProcess>;
}

/** Deletes every node the server has and creates `nodes`. */
async function freshNodes(pubsub: Pubsub, nodes: string[], options: NodeOptions): Promise<void> {
  for (const node of await pubsub.nodes()) await pubsub.delete(node).catch(() => {});
  for (const node of nodes) await createNode(pubsub, node, options);
}

/** Creates a node with its configuration. */
export async function createNode(pubsub: Pubsub, node: string, options: NodeOptions = {}) {
  await pubsub.create(node, nodeConfig(options));
}

/** A fresh folder and fresh nodes on `server`. */
export async function world(server: XmppServer, options: WorldOptions = {}): Promise<World> {
  const dir = await tempDir();
  await copyFixtures(dir.path);
  let session: Session | undefined;
  const pubsub = async () => {
    if (!session || session.closed) {
      await session?.[Symbol.asyncDispose]();
      session = await connect(server, "publisher", `publisher-${crypto.randomUUID()}`);
    }
    return session.pubsub;
  };
  await freshNodes(await pubsub(), options.nodes ?? NODES, options.nodeOptions ?? {});
  const netrc = await server.netrc("listener");
  const publisherNetrc = await server.netrc("publisher");
  const flags = (port: number, extra: string[]) => [
    ...server.flags("listener").filter((f, i, all) => f !== "-a" && all[i - 1] !== "-a")
      .map((f, i, all) => all[i - 1] === "--port" ? String(port) : f),
    "-N",
    netrc,
    "--state-dir",
    join(dir.path, "state"),
    "--log-format",
    "json",
    ...extra,
  ];
  const config = join(dir.path, "lvalert_listenMP.ini");
  const w: World = {
    server,
    dir: dir.path,
    config,
    pubsub,
    listenFlags: (...extra) => flags(server.port, extra),
    flagsVia: (port, ...extra) => flags(port, extra),
    toolFlags: () => [...server.flags("publisher"), "-N", publisherNetrc],
    async start(...extra) {
      const listener = new ListenerProcess(["-c", config, ...flags(server.port, extra)]);
      try {
        await listener.until(() => listener.named("xmpp_ready").length >= 1, "the listener");
      } catch (error) {
        await listener.stop("SIGKILL");
        throw error;
      }
      return listener;
    },
    async [Symbol.asyncDispose]() {
      await session?.[Symbol.asyncDispose]();
      await dir[Symbol.asyncDispose]();
    },
  };
  return w;
}
