/**
 * What the session does after each (re)connect, before it calls itself
 * online: record the baseline of nodes never watched before subscribing to
 * them, subscribe to every configured node, and catch up on each node,
 * oldest item first.
 *
 * Subscribing is idempotent on both servers (one subscription, one
 * delivery), and done at every (re)connect rather than after asking:
 * Prosody 0.12 reports a subscription to a node deleted and created again
 * under the same name that delivers nothing, and never answers the
 * all-node `<subscriptions/>` request once a subscribed node was deleted.
 *
 * @module
 */

import type { ChildLog } from "../core/log.ts";
import type { RouteInput } from "../core/source.ts";
import { catchUp, type CatchUpResult, type CatchUpSeen, takeBaseline } from "./catch_up.ts";
import { XmppFailure } from "./failure.ts";
import type { XmppClient } from "./client.ts";
import { condition, Pubsub } from "./pubsub.ts";

/** What a sync needs. */
export interface NodeSyncOptions {
  pubsub: Pubsub;
  /** The session's full JID (subscriptions are made for it). */
  jid: string;
  nodes: readonly string[];
  seen: CatchUpSeen;
  /** Items per catch-up request; 0 turns catch-up off. */
  pageSize: number;
  /** Most items caught up per node. */
  ceiling: number;
  createMissingNodes: boolean;
  /** The first connection: a missing node is fatal then, and only named afterwards. */
  first: boolean;
  log: ChildLog;
  /** Epoch seconds. */
  now(): number;
}

/** What the sync tells the session as it goes. */
export interface NodeSyncHooks {
  /** A caught-up item to route (oldest first). */
  route(input: RouteInput): void;
  /** The node receives from now on. */
  subscribed(node: string): void;
  /** A configured node does not exist (any more). */
  missing(node: string): void;
  /**
   * The node is caught up: `routed` holds the ids just routed, `result` is
   * undefined when catch-up was off or failed.
   */
  caughtUp(node: string, routed: ReadonlySet<string>, result: CatchUpResult | undefined): void;
}

/** Whether a request failed with an answer from the server (not a timeout or a lost connection). */
export function isStanzaError(error: unknown): boolean {
  return (error as { name?: string } | null)?.name === "StanzaError";
}

async function create(o: NodeSyncOptions, nodes: string[]): Promise<void> {
  for (const node of nodes) {
    await o.pubsub.create(node);
    o.log.event("warning", "node_created", { node }, `node ${node} did not exist and was created`);
  }
}

/** Whether a request failed because the node does not exist. */
function notFound(error: unknown): boolean {
  return condition(error) === "item-not-found";
}

/** On a node never watched, what it holds now is history: recorded, never routed. */
async function baseline(o: NodeSyncOptions, node: string): Promise<void> {
  if (o.seen.knows(node)) return;
  try {
    const items = await takeBaseline(node, o);
    o.log.event(
      "info",
      "baseline",
      { node, items },
      `${items} existing item(s) of ${node} are history`,
    );
  } catch (error) {
    if (!isStanzaError(error) || notFound(error)) throw error;
    // Nothing to list (a node without persistent items): nothing to replay either.
    o.seen.mark(node);
    await o.seen.flush();
    o.log.event("warning", "baseline_failed", { node, condition: condition(error) ?? null });
  }
}

/** Baseline, then subscription; false when the node does not exist. */
async function join(o: NodeSyncOptions, node: string): Promise<boolean> {
  try {
    // Before subscribing: what the server pushes on subscribe is then known as history.
    await baseline(o, node);
    await o.pubsub.subscribe(node, o.jid);
  } catch (error) {
    if (notFound(error)) return false;
    throw error;
  }
  o.log.event("debug", "subscribed", { node, jid: o.jid });
  return true;
}

/**
 * Routes what `node` received since the newest item seen, oldest first,
 * then tells `hooks.caughtUp`. A refusal by the server is logged (and the
 * node counts as caught up); any other failure is thrown.
 */
export async function catchUpNode(
  o: Pick<NodeSyncOptions, "pubsub" | "seen" | "pageSize" | "ceiling" | "log" | "now">,
  node: string,
  hooks: Pick<NodeSyncHooks, "route" | "caughtUp">,
): Promise<void> {
  const routed = new Set<string>();
  if (o.pageSize === 0) return hooks.caughtUp(node, routed, undefined);
  const started = performance.now();
  let result: CatchUpResult;
  try {
    result = await catchUp(node, o, o.now);
  } catch (error) {
    // A lost connection or a timeout: the reconnect starts over.
    if (!isStanzaError(error)) throw error;
    o.log.event("warning", "catch_up_failed", {
      node,
      condition: condition(error) ?? null,
      error: (error as Error).message,
    }, `catch-up on ${node} refused: alerts published while disconnected may be missing`);
    return hooks.caughtUp(node, routed, undefined);
  }
  for (const item of result.items) {
    routed.add(item.id);
    hooks.route({
      node,
      id: item.id,
      payload: item.payload,
      t0: o.now(),
      where: `catch-up ${node} item ${item.id}`,
    });
  }
  o.log.event("info", "caught_up", {
    node,
    items: result.fetched,
    routed: result.items.length,
    requests: result.requests,
    paging: result.paging,
    end: result.end,
    ms: Math.round((performance.now() - started) * 10) / 10,
  });
  hooks.caughtUp(node, routed, result);
}

/**
 * Brings every configured node in sync on a fresh connection.
 *
 * @throws {XmppFailure} (`missing_nodes`) on the first connection when nodes do not exist
 * @throws the request's error when one fails other than by a server's answer
 */
export async function syncNodes(o: NodeSyncOptions, hooks: NodeSyncHooks): Promise<void> {
  const joined = await Promise.all(o.nodes.map((node) => join(o, node)));
  let missing = o.nodes.filter((_, i) => !joined[i]);
  if (missing.length > 0 && o.createMissingNodes) {
    await create(o, missing);
    for (const node of missing) if (!(await join(o, node))) throw new Error(`${node} vanished`);
    missing = [];
  }
  if (missing.length > 0 && o.first) {
    throw new XmppFailure(
      "missing_nodes",
      `Node(s) not found on ${o.pubsub.service}: ${missing.join(", ")} ` +
        "(create them with `lvalert_listenMP admin --create --node N`, or pass --create-missing-nodes)",
    );
  }
  for (const node of missing) hooks.missing(node);
  const ready = o.nodes.filter((node) => !missing.includes(node));
  for (const node of ready) hooks.subscribed(node);
  for (const node of ready) await catchUpNode(o, node, hooks);
}

/**
 * Nodes `jid` is subscribed to that are not configured, or undefined when
 * the server does not answer within 5 s: Prosody 0.12 never answers the
 * all-node request once a subscribed node was deleted, so nothing may
 * wait for it.
 */
export async function unconfiguredSubscriptions(
  client: XmppClient,
  service: string,
  jid: string,
  nodes: readonly string[],
  o: { signal: AbortSignal; log: ChildLog },
): Promise<string[] | undefined> {
  try {
    const all = await new Pubsub(client, service, 5000, o.signal).subscriptions();
    const configured = new Set(nodes);
    const mine = all.filter((s) => s.jid === jid && s.subscription === "subscribed");
    return [...new Set(mine.map((s) => s.node))].filter((node) => !configured.has(node));
  } catch (error) {
    o.log.event("debug", "subscriptions_unanswered", { error: (error as Error).message });
    return undefined;
  }
}
