/**
 * XEP-0060 publish-subscribe requests used by the listener and the
 * companion tools, over an {@linkcode XmppClient}.
 *
 * @module
 */

import { x, type XmlElement, type XmppClient } from "./client.ts";

export const NS_PUBSUB = "http://jabber.org/protocol/pubsub";
export const NS_PUBSUB_EVENT = "http://jabber.org/protocol/pubsub#event";
export const NS_PUBSUB_OWNER = "http://jabber.org/protocol/pubsub#owner";
const NS_DISCO_INFO = "http://jabber.org/protocol/disco#info";
const NS_DISCO_ITEMS = "http://jabber.org/protocol/disco#items";
const NS_DATA = "jabber:x:data";
export const NS_RSM = "http://jabber.org/protocol/rsm";

/** One published item: its id and its payload text. */
export interface PubsubItem {
  node: string;
  id: string;
  payload: string;
}

/**
 * One page of a node's items, oldest first, and the XEP-0059 result set
 * the server described it with (ejabberd does; Prosody 0.12 does not).
 */
export interface ItemsPage {
  items: PubsubItem[];
  rsm?: {
    /** Items the node holds. */
    count?: number;
    /** Key of the page's oldest item, to page back with (ejabberd: a publication stamp). */
    first?: string;
    /** Position of the page's oldest item; 0 or less on the node's oldest page. */
    firstIndex?: number;
  };
}

/** A subscription as the service reports it. */
export interface Subscription {
  node: string;
  jid: string;
  subscription: string;
  subid?: string;
}

/** The XMPP condition of a failed request (`item-not-found`, ...), if any. */
export function condition(error: unknown): string | undefined {
  const c = (error as { condition?: unknown } | null)?.condition;
  return typeof c === "string" ? c : undefined;
}

function payloadOf(item: XmlElement): string {
  const entry = item.children.find((c): c is XmlElement => typeof c !== "string");
  return (entry ? entry.text() : item.text()).trim();
}

/** The items an event message carries (none for other messages). */
export function eventItems(stanza: XmlElement): PubsubItem[] {
  if (stanza.name !== "message") return [];
  const items = stanza.getChild("event", NS_PUBSUB_EVENT)?.getChild("items");
  const node = items?.attrs.node;
  if (!items || node === undefined) return [];
  return items.getChildren("item").map((item) => ({
    node,
    id: item.attrs.id ?? "",
    payload: payloadOf(item),
  }));
}

/** A pubsub session with one service (`pubsub.SERVER`). */
export class Pubsub {
  readonly client: XmppClient;
  readonly service: string;
  /** IQ timeout in ms. */
  timeout: number;

  #signal: AbortSignal | undefined;

  /**
   * Requests to `service` through `client`. Aborting `signal` (the
   * connection was lost) fails every request still waiting at once, with
   * the signal's reason, rather than after `timeout` ms.
   */
  constructor(client: XmppClient, service: string, timeout = 30_000, signal?: AbortSignal) {
    this.client = client;
    this.service = service;
    this.timeout = timeout;
    this.#signal = signal;
  }

  #iq(type: "get" | "set", ...children: XmlElement[]): Promise<XmlElement> {
    const request = this.client.request(
      x("iq", { type, to: this.service }, ...children),
      this.timeout,
    );
    const signal = this.#signal;
    if (!signal) return request;
    if (signal.aborted) {
      request.catch(() => {});
      return Promise.reject(signal.reason);
    }
    return new Promise((resolve, reject) => {
      const abort = () => reject(signal.reason);
      signal.addEventListener("abort", abort, { once: true });
      request.then(resolve, reject).finally(() => signal.removeEventListener("abort", abort));
    });
  }

  #pubsub(
    type: "get" | "set",
    child: XmlElement,
    ns = NS_PUBSUB,
    ...more: XmlElement[]
  ): Promise<XmlElement> {
    return this.#iq(type, x("pubsub", { xmlns: ns }, child, ...more));
  }

  /** Publishes a payload (JSON text); resolves with the item id. */
  async publish(node: string, payload: string, id?: string): Promise<string> {
    const reply = await this.#pubsub(
      "set",
      x(
        "publish",
        { node },
        x(
          "item",
          id === undefined ? {} : { id },
          x("entry", { xmlns: NS_PUBSUB }, payload),
        ),
      ),
    );
    return reply.getChild("pubsub", NS_PUBSUB)?.getChild("publish")?.getChild(
      "item",
    )?.attrs.id ?? id ?? "";
  }

  async subscribe(node: string, jid: string): Promise<void> {
    await this.#pubsub("set", x("subscribe", { node, jid }));
  }

  async unsubscribe(node: string, jid: string, subid?: string): Promise<void> {
    await this.#pubsub("set", x("unsubscribe", { node, jid, subid }));
  }

  /**
   * This account's subscriptions, on one node or all. Prosody 0.12 never
   * answers the request for all nodes once a node the account was
   * subscribed to has been deleted: ask per node where an answer matters.
   */
  async subscriptions(node?: string): Promise<Subscription[]> {
    const reply = await this.#pubsub(
      "get",
      x("subscriptions", node === undefined ? {} : { node }),
    );
    const list = reply.getChild("pubsub", NS_PUBSUB)?.getChild("subscriptions");
    return (list?.getChildren("subscription") ?? []).map((s) => ({
      node: s.attrs.node ?? node ?? "",
      jid: s.attrs.jid ?? "",
      subscription: s.attrs.subscription ?? "",
      ...(s.attrs.subid ? { subid: s.attrs.subid } : {}),
    }));
  }

  /** The most recent `max` items of a node, oldest first. */
  async items(node: string, max: number): Promise<PubsubItem[]> {
    const reply = await this.#pubsub(
      "get",
      x("items", { node, max_items: String(max) }),
    );
    const items = reply.getChild("pubsub", NS_PUBSUB)?.getChild("items");
    return (items?.getChildren("item") ?? []).map((item) => ({
      node,
      id: item.attrs.id ?? "",
      payload: payloadOf(item),
    }));
  }

  /**
   * The newest `max` items, or with `before` (a key from a previous page's
   * `rsm.first`) the `max` items before that page, oldest first. Asks
   * with both `max_items` and XEP-0059 `<set>`: a server without result
   * set management answers the newest `max` items and no `<set>`.
   */
  async itemsPage(node: string, max: number, before = ""): Promise<ItemsPage> {
    const set = x(
      "set",
      { xmlns: NS_RSM },
      x("max", {}, String(max)),
      before ? x("before", {}, before) : x("before"),
    );
    const reply = await this.#pubsub(
      "get",
      x("items", { node, max_items: String(max) }),
      NS_PUBSUB,
      set,
    );
    const pubsub = reply.getChild("pubsub", NS_PUBSUB);
    const items = (pubsub?.getChild("items")?.getChildren("item") ?? []).map((item) => ({
      node,
      id: item.attrs.id ?? "",
      payload: payloadOf(item),
    }));
    const rsm = pubsub?.getChild("set", NS_RSM);
    if (!rsm) return { items };
    const number = (text: string | null | undefined) =>
      text === null || text === undefined || text.trim() === "" ? undefined : Number(text);
    const first = rsm.getChild("first");
    const page: ItemsPage["rsm"] = {};
    const count = number(rsm.getChildText("count"));
    if (count !== undefined && Number.isFinite(count)) page.count = count;
    if (first && first.text()) page.first = first.text();
    const index = number(first?.attrs.index);
    if (index !== undefined && Number.isFinite(index)) page.firstIndex = index;
    return { items, rsm: page };
  }

  /** Whether a node exists. */
  async exists(node: string): Promise<boolean> {
    try {
      await this.#iq("get", x("query", { xmlns: NS_DISCO_INFO, node }));
      return true;
    } catch (error) {
      if (condition(error) === "item-not-found") return false;
      throw error;
    }
  }

  /** Node names the service lists. */
  async nodes(): Promise<string[]> {
    const reply = await this.#iq("get", x("query", { xmlns: NS_DISCO_ITEMS }));
    return (reply.getChild("query", NS_DISCO_ITEMS)?.getChildren("item") ?? [])
      .map((i) => i.attrs.node ?? "").filter(Boolean);
  }

  /**
   * Creates a node, with `pubsub#...` options if given (for example
   * `{ "pubsub#persist_items": "0" }`).
   */
  async create(
    node: string,
    options: Record<string, string> = {},
  ): Promise<void> {
    const fields = Object.entries(options);
    const configure = fields.length === 0 ? undefined : x(
      "configure",
      {},
      x(
        "x",
        { xmlns: NS_DATA, type: "submit" },
        x(
          "field",
          { var: "FORM_TYPE", type: "hidden" },
          x("value", {}, `${NS_PUBSUB}#node_config`),
        ),
        ...fields.map(([name, value]) => x("field", { var: name }, x("value", {}, value))),
      ),
    );
    await this.#iq(
      "set",
      x("pubsub", { xmlns: NS_PUBSUB }, x("create", { node }), configure),
    );
  }

  async delete(node: string): Promise<void> {
    await this.#pubsub("set", x("delete", { node }), NS_PUBSUB_OWNER);
  }

  /** Affiliations on a node (owner only): jid -> affiliation. */
  async affiliations(node: string): Promise<Map<string, string>> {
    const reply = await this.#pubsub(
      "get",
      x("affiliations", { node }),
      NS_PUBSUB_OWNER,
    );
    const list = reply.getChild("pubsub", NS_PUBSUB_OWNER)?.getChild(
      "affiliations",
    );
    return new Map(
      (list?.getChildren("affiliation") ?? []).map((
        a,
      ) => [a.attrs.jid ?? "", a.attrs.affiliation ?? ""]),
    );
  }

  /** Sets one JID's affiliation on a node (`publisher`, `none`, ...). */
  async affiliate(
    node: string,
    jid: string,
    affiliation: string,
  ): Promise<void> {
    await this.#pubsub(
      "set",
      x("affiliations", { node }, x("affiliation", { jid, affiliation })),
      NS_PUBSUB_OWNER,
    );
  }
}
