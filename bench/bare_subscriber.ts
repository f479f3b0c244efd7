/**
 * The baseline for the XMPP benchmark: a bare stock `@xmpp/client`
 * subscriber that only counts items. Prints one JSON line per phase when
 * it sees that phase's end marker.
 *
 * Usage: bare_subscriber.ts PORT PASSWORD NODE  (trust the CA with DENO_CERT)
 */

import { client, xml } from "@xmpp/client";

const [port, password, node] = Deno.args;
const now = () => performance.timeOrigin + performance.now();
const xmpp = client({
  service: `xmpp://localhost:${port}`,
  domain: "localhost",
  resource: "bare",
  username: "other",
  password,
});
xmpp.reconnect.stop();
let latencies: number[] = [];
let first = 0;
let last = 0;
xmpp.on("error", () => {});
xmpp.on(
  "stanza",
  (
    stanza: {
      is(n: string): boolean;
      getChild(
        n: string,
        ns?: string,
      ): {
        getChild(
          n: string,
        ):
          | { getChildren(n: string): { getChild(n: string): { text(): string } | undefined }[] }
          | undefined;
      } | undefined;
    },
  ) => {
    if (!stanza.is("message")) return;
    const items = stanza.getChild("event", "http://jabber.org/protocol/pubsub#event")?.getChild(
      "items",
    );
    for (const item of items?.getChildren("item") ?? []) {
      const payload = JSON.parse(item.getChild("entry")?.text() ?? "{}");
      const t = now();
      if (payload.end) {
        console.log(
          JSON.stringify({ phase: payload.end, count: latencies.length, first, last, latencies }),
        );
        latencies = [];
        continue;
      }
      if (latencies.length === 0) first = t;
      last = t;
      latencies.push(t - payload.sent);
    }
  },
);
await xmpp.start();
await xmpp.iqCaller.set(
  xml(
    "pubsub",
    { xmlns: "http://jabber.org/protocol/pubsub" },
    xml("subscribe", { node, jid: xmpp.jid.toString() }),
  ),
  "pubsub.localhost",
);
console.log(JSON.stringify({ ready: true }));
