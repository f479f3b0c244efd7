/**
 * What the XMPP benchmark's plain subscribers share: the stock
 * `@xmpp/client`, subscribed to one node, handing over each item's
 * payload text as it comes. Prints `{"ready":true}` once subscribed.
 *
 * @module
 */

import { client, xml } from "@xmpp/client";

/** One pubsub item as it came. */
export interface PlainItem {
  node: string;
  id: string;
  /** The payload's text. */
  text: string;
}

interface Element {
  attrs: Record<string, string>;
  is(name: string): boolean;
  getChild(name: string, ns?: string): Element | undefined;
  getChildren(name: string): Element[];
  text(): string;
}

/** Connects to Prosody on loopback as user "other", subscribes to `node`, calls `onItem` per item. */
export async function subscribe(
  options: { port: string; password: string; node: string; resource: string },
  onItem: (item: PlainItem) => void,
): Promise<void> {
  const xmpp = client({
    service: `xmpp://localhost:${options.port}`,
    domain: "localhost",
    resource: options.resource,
    username: "other",
    password: options.password,
  });
  xmpp.reconnect.stop();
  xmpp.on("error", () => {});
  xmpp.on("stanza", (stanza: Element) => {
    if (!stanza.is("message")) return;
    const items = stanza.getChild("event", "http://jabber.org/protocol/pubsub#event")?.getChild(
      "items",
    );
    if (!items) return;
    for (const item of items.getChildren("item")) {
      onItem({
        node: items.attrs.node ?? "",
        id: item.attrs.id ?? "",
        text: item.getChild("entry")?.text() ?? "{}",
      });
    }
  });
  await xmpp.start();
  await xmpp.iqCaller.set(
    xml(
      "pubsub",
      { xmlns: "http://jabber.org/protocol/pubsub" },
      xml("subscribe", { node: options.node, jid: xmpp.jid.toString() }),
    ),
    "pubsub.localhost",
  );
  console.log(JSON.stringify({ ready: true }));
}
