/**
 * The baseline for the XMPP benchmark: a bare stock `@xmpp/client`
 * subscriber that only counts items. Prints one JSON line per phase when
 * it sees that phase's end marker.
 *
 * Usage: bare_subscriber.ts PORT PASSWORD NODE  (trust the CA with DENO_CERT)
 */

import { PhaseCounter } from "./phase_counter.ts";
import { subscribe } from "./plain_subscriber.ts";

const [port = "", password = "", node = ""] = Deno.args;
const now = () => performance.timeOrigin + performance.now();
const counter = new PhaseCounter();
await subscribe({ port, password, node, resource: "bare" }, ({ text }) => {
  const report = counter.take(JSON.parse(text), now());
  if (report) console.log(JSON.stringify(report));
});
