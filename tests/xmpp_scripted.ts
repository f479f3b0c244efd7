/**
 * A scripted connection for the XMPP source's unit tests only: an
 * in-memory publish-subscribe service and clients that talk to it through
 * the {@linkcode XmppClient} interface, each reply and push delivered in
 * order on its own turn of the event loop, as from one socket. It can
 * behave like either real server where they differ (result sets on items,
 * the last item pushed on subscribe, delete notifications, Prosody 0.12's
 * unanswered all-node subscriptions request) and can refuse connections,
 * cut them, or end them with any stream error.
 *
 * The end-to-end tests use real servers (tests/xmpp_servers.ts); this is
 * only for the reconnect, resubscribe and catch-up logic, where a test must
 * choose exactly when things happen.
 */

import { x, type XmlElement, type XmppClient, type XmppClientOptions } from "../lib/xmpp/client.ts";
import { NS_PUBSUB, NS_PUBSUB_EVENT, NS_PUBSUB_OWNER, NS_RSM } from "../lib/xmpp/pubsub.ts";

const NS_STREAM = "http://etherx.jabber.org/streams";
const NS_STREAMS = "urn:ietf:params:xml:ns:xmpp-streams";
const NS_DISCO_INFO = "http://jabber.org/protocol/disco#info";
const NS_DISCO_ITEMS = "http://jabber.org/protocol/disco#items";

/** How the scripted service behaves where the real servers differ. */
export interface ScriptedOptions {
  /** XEP-0059 result sets on items, paged by publication stamps (ejabberd), or none (Prosody 0.12). */
  rsm: boolean;
  /** Push a node's last item, `<delay/>`-stamped, to a new subscriber (ejabberd's default). */
  lastItemOnSubscribe?: boolean;
  /** Tell subscribers when a node is deleted (Prosody's default). */
  notifyDelete?: boolean;
  /** Never answer the all-node `<subscriptions/>` once a subscribed node was deleted (Prosody 0.12). */
  silentAfterDelete?: boolean;
}

interface Item {
  id: string;
  payload: string;
  stamp: string;
}

interface Node {
  items: Item[];
  maxItems: number;
  subscribers: Set<string>;
}

/** A stanza error as xmpp.js's IQ caller rejects with. */
class StanzaError extends Error {
  readonly condition: string;
  constructor(condition: string) {
    super(condition);
    this.name = "StanzaError";
    this.condition = condition;
  }
}

/** The in-memory service, and the script's handles on it. */
export class ScriptedServer {
  readonly service = "pubsub.localhost";
  readonly options: ScriptedOptions;
  readonly nodes = new Map<string, Node>();
  readonly clients = new Set<ScriptedClient>();
  /** Every request, summed up (`items n max=20 before=s3`), in order. */
  readonly requests: string[] = [];
  /** The options of every connection attempt. */
  readonly attempts: XmppClientOptions[] = [];
  /** Connection attempts are refused while true (the server is down). */
  down = false;
  /** Called with each request before it is answered (to act at a precise moment). */
  onRequest: ((summary: string) => void) | undefined;
  /** Nodes deleted while someone was subscribed (Prosody 0.12 then stops answering). */
  #deletedSubscribed = false;
  #clock = 0;

  constructor(options: ScriptedOptions) {
    this.options = options;
  }

  /** Makes a client, as `XmppSourceOptions.connect`. */
  readonly connect = (options: XmppClientOptions): XmppClient => {
    this.attempts.push(options);
    return new ScriptedClient(this, options);
  };

  createNode(name: string, maxItems = 1000): void {
    this.nodes.set(name, { items: [], maxItems, subscribers: new Set() });
  }

  /** Publishes `count` payloads `{"uid":"<prefix><n>"}`; resolves with their ids. */
  publishMany(node: string, prefix: string, count: number, from = 1): string[] {
    const ids = [];
    for (let n = from; n < from + count; n++) {
      ids.push(this.publish(node, `{"uid":"${prefix}${n}"}`));
    }
    return ids;
  }

  /** Publishes one payload; pushes it to online subscribers. */
  publish(name: string, payload: string): string {
    const node = this.#node(name);
    const stamp = `s${String(++this.#clock).padStart(8, "0")}`;
    const id = `id-${this.#clock}`;
    node.items.push({ id, payload, stamp });
    if (node.items.length > node.maxItems) node.items.splice(0, node.items.length - node.maxItems);
    for (const client of this.clients) {
      if (node.subscribers.has(client.full)) {
        client.deliver(this.#event(name, client, [{ id, payload, stamp }]));
      }
    }
    return id;
  }

  deleteNode(name: string): void {
    const node = this.#node(name);
    this.nodes.delete(name);
    if (node.subscribers.size > 0) this.#deletedSubscribed = true;
    if (!this.options.notifyDelete) return;
    for (const client of this.clients) {
      if (!node.subscribers.has(client.full)) continue;
      client.deliver(
        x(
          "message",
          { from: this.service, to: client.full, type: "headline" },
          x("event", { xmlns: NS_PUBSUB_EVENT }, x("delete", { node: name })),
        ),
      );
    }
  }

  /** Ends every session on `resource` with a stream error, as a server does. */
  endStream(condition: string, text = "", resource?: string, body?: string): void {
    for (const client of [...this.clients]) {
      if (resource !== undefined && client.options.resource !== resource) continue;
      client.deliver(
        x(
          "stream:error",
          { "xmlns:stream": NS_STREAM },
          x(condition, { xmlns: NS_STREAMS }, body),
          text ? x("text", { xmlns: NS_STREAMS }, text) : undefined,
        ),
      );
      client.deliver(() => client.close());
    }
  }

  /** Cuts every connection without a word (a network outage). */
  cut(): void {
    for (const client of [...this.clients]) client.close();
  }

  /** Answers one request, or undefined to leave it unanswered. */
  answer(client: ScriptedClient, iq: XmlElement): XmlElement | StanzaError | undefined {
    const pubsub = iq.getChild("pubsub", NS_PUBSUB);
    const owner = iq.getChild("pubsub", NS_PUBSUB_OWNER);
    const query = iq.getChild("query");
    const request =
      pubsub?.children.find((c): c is XmlElement => typeof c !== "string" && c.name !== "set") ??
        owner?.getChild("delete") ?? query;
    if (!request) return new StanzaError("bad-request");
    try {
      return this.#answer(client, iq, request);
    } catch (error) {
      if (error instanceof StanzaError) return error;
      throw error;
    }
  }

  #answer(client: ScriptedClient, iq: XmlElement, r: XmlElement): XmlElement | undefined {
    const node = r.attrs.node;
    const reply = (...children: (XmlElement | undefined)[]) =>
      x(
        "iq",
        { type: "result", id: iq.attrs.id, from: this.service, to: client.full },
        ...children,
      );
    if (r.name === "items") {
      return reply(this.#items(node!, r, iq.getChild("pubsub")?.getChild("set", NS_RSM)));
    }
    const kind = r.attrs.xmlns === NS_DISCO_ITEMS
      ? "disco#items"
      : r.attrs.xmlns === NS_DISCO_INFO
      ? "disco#info"
      : r.name;
    this.#log(`${kind} ${node ?? "*"}`);
    switch (kind) {
      case "subscriptions":
        return this.#subscriptions(client, node, reply);
      case "subscribe":
        this.#node(node!).subscribers.add(r.attrs.jid!);
        this.#pushLast(client, node!);
        return reply();
      case "create":
        this.createNode(node!);
        return reply();
      case "publish": {
        const id = this.publish(node!, r.getChild("item")?.text() ?? "");
        return reply(x("pubsub", { xmlns: NS_PUBSUB }, x("publish", { node }, x("item", { id }))));
      }
      case "delete":
        this.deleteNode(node!);
        return reply();
      case "disco#items":
        return reply(
          x(
            "query",
            { xmlns: NS_DISCO_ITEMS },
            ...[...this.nodes.keys()].map((n) => x("item", { jid: this.service, node: n })),
          ),
        );
      case "disco#info":
        this.#node(node!);
        return reply(x("query", { xmlns: NS_DISCO_INFO, node }));
      default:
        throw new StanzaError("feature-not-implemented");
    }
  }

  #log(summary: string): void {
    this.requests.push(summary);
    this.onRequest?.(summary);
  }

  #node(name: string): Node {
    const node = this.nodes.get(name);
    if (!node) throw new StanzaError("item-not-found");
    return node;
  }

  #items(name: string, r: XmlElement, set: XmlElement | undefined): XmlElement {
    const maxItems = r.attrs.max_items === undefined ? Infinity : Number(r.attrs.max_items);
    const before = set?.getChildText("before") ?? "";
    this.#log(
      `items ${name} max=${r.attrs.max_items ?? "all"}${
        this.options.rsm && before ? ` before=${before}` : ""
      }`,
    );
    const all = this.#node(name).items;
    const item = (i: Item) => x("item", { id: i.id }, x("entry", { xmlns: NS_PUBSUB }, i.payload));
    if (!this.options.rsm) {
      const page = all.slice(Math.max(0, all.length - maxItems));
      return x("pubsub", { xmlns: NS_PUBSUB }, x("items", { node: name }, ...page.map(item)));
    }
    const max = Math.min(maxItems, Number(set?.getChildText("max") ?? Infinity));
    const older = before ? all.filter((i) => i.stamp < before) : all;
    const start = Math.max(0, older.length - max);
    const page = older.slice(start);
    const rsm = page.length === 0
      ? x("set", { xmlns: NS_RSM }, x("count", {}, String(all.length)))
      : x(
        "set",
        { xmlns: NS_RSM },
        x("count", {}, String(all.length)),
        x("first", { index: String(start) }, page[0]!.stamp),
        x("last", {}, page.at(-1)!.stamp),
      );
    return x("pubsub", { xmlns: NS_PUBSUB }, rsm, x("items", { node: name }, ...page.map(item)));
  }

  #subscriptions(
    client: ScriptedClient,
    node: string | undefined,
    reply: (...children: XmlElement[]) => XmlElement,
  ): XmlElement | undefined {
    if (node === undefined && this.options.silentAfterDelete && this.#deletedSubscribed) {
      return undefined;
    }
    const names = node === undefined ? [...this.nodes.keys()] : [node];
    if (node !== undefined) this.#node(node);
    const bare = client.full.split("/")[0]!;
    const list = names.flatMap((n) =>
      [...this.nodes.get(n)!.subscribers].filter((jid) => jid.startsWith(`${bare}/`))
        .map((jid) => x("subscription", { node: n, jid, subscription: "subscribed" }))
    );
    return reply(
      x(
        "pubsub",
        { xmlns: NS_PUBSUB },
        x("subscriptions", node === undefined ? {} : { node }, ...list),
      ),
    );
  }

  #pushLast(client: ScriptedClient, name: string): void {
    const last = this.nodes.get(name)?.items.at(-1);
    if (!this.options.lastItemOnSubscribe || !last) return;
    client.deliver(this.#event(name, client, [last], true));
  }

  #event(node: string, client: ScriptedClient, items: Item[], delayed = false): XmlElement {
    return x(
      "message",
      { from: this.service, to: client.full, type: "headline" },
      x(
        "event",
        { xmlns: NS_PUBSUB_EVENT },
        x(
          "items",
          { node },
          ...items.map((i) => x("item", { id: i.id }, x("entry", { xmlns: NS_PUBSUB }, i.payload))),
        ),
      ),
      delayed
        ? x("delay", { xmlns: "urn:xmpp:delay", stamp: "2026-01-01T00:00:00.000000Z" })
        : undefined,
    );
  }
}

type Listener = (...args: never[]) => void;

/** One client of the scripted server. */
export class ScriptedClient implements XmppClient {
  status = "offline";
  jid: { toString(): string; bare(): { toString(): string } } | null = null;
  readonly options: XmppClientOptions;
  readonly full: string;
  #server: ScriptedServer;
  #listeners = new Map<string, Set<Listener>>();
  #tail: Promise<void> = Promise.resolve();
  #timers = new Set<ReturnType<typeof setTimeout>>();
  #generation = 0;

  constructor(server: ScriptedServer, options: XmppClientOptions) {
    this.#server = server;
    this.options = options;
    this.full = `${options.username}@${options.domain ?? options.server}/${options.resource}`;
  }

  on(event: string, fn: Listener): void {
    let set = this.#listeners.get(event);
    if (!set) this.#listeners.set(event, set = new Set());
    set.add(fn);
  }

  removeAllListeners(): void {
    this.#listeners.clear();
  }

  #emit(event: string, ...args: unknown[]): void {
    for (const fn of [...(this.#listeners.get(event) ?? [])]) {
      (fn as (...a: unknown[]) => void)(...args);
    }
  }

  #status(status: string): void {
    this.status = status;
    this.#emit("status", status);
  }

  async start(): Promise<unknown> {
    this.#status("connecting");
    await new Promise((r) => setTimeout(r, 0));
    if (this.#server.down) {
      this.#status("disconnect");
      this.status = "offline";
      throw Object.assign(new Error(`connect ECONNREFUSED ${this.options.server}`), {
        code: "ECONNREFUSED",
      });
    }
    // A second login on the same full JID replaces the first, as real servers do.
    this.#server.endStream("conflict", "Replaced by new connection", this.options.resource);
    this.#server.clients.add(this);
    const full = this.full;
    this.jid = { toString: () => full, bare: () => ({ toString: () => full.split("/")[0]! }) };
    this.#status("online");
    this.#emit("online");
    return this.jid;
  }

  async stop(): Promise<unknown> {
    if (this.status !== "offline") this.close();
    this.#status("offline");
    return await Promise.resolve();
  }

  /** The connection closes (the server went away, or ended the stream). */
  close(): void {
    if (!this.#server.clients.delete(this) && this.status !== "online") return;
    this.#generation++;
    for (const timer of this.#timers) clearTimeout(timer);
    this.#timers.clear();
    // Like xmpp.js: requests in flight stay unanswered (until their timeout).
    this.#status("disconnect");
    this.#emit("disconnect", { clean: false });
  }

  send(element: XmlElement): Promise<void> {
    return Promise.resolve(void element);
  }

  /** Delivers an element (or runs a step) after everything delivered before it. */
  deliver(what: XmlElement | (() => void)): void {
    const generation = this.#generation;
    this.#tail = this.#tail.then(() => new Promise<void>((r) => setTimeout(r, 0))).then(() => {
      if (generation !== this.#generation) return;
      if (typeof what === "function") return what();
      this.#emit("element", what);
      if (["iq", "message", "presence"].includes(what.name)) this.#emit("stanza", what);
    });
  }

  request(iq: XmlElement, timeoutMs = 30_000): Promise<XmlElement> {
    if (!this.#server.clients.has(this)) return Promise.reject(new Error("Not connected"));
    const generation = this.#generation;
    return new Promise((resolve, reject) => {
      const answer = this.#server.answer(this, iq);
      if (answer === undefined) {
        const timer = setTimeout(() => {
          this.#timers.delete(timer);
          reject(Object.assign(new Error("Request timed out"), { name: "TimeoutError" }));
        }, timeoutMs);
        this.#timers.add(timer);
        return;
      }
      this.deliver(() => {
        if (generation !== this.#generation) return;
        if (answer instanceof Error) reject(answer);
        else resolve(answer);
      });
    });
  }
}
