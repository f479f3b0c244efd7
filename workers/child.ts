/// <reference no-default-lib="true" />
/// <reference lib="deno.worker" />
/**
 * Worker entry: one child in a Web Worker. Contains what its handler may
 * do to the listener's process, then runs the child host over
 * `postMessage`.
 *
 * @module
 */

import { contain } from "../lib/child/containment.ts";
import { ChildHost } from "../lib/child/host.ts";
import type { FromChild } from "../lib/child/messages.ts";
import { takeMessages } from "../lib/queue/clock.ts";

const post = (message: FromChild) => self.postMessage(message);

// Before any handler code loads: nothing it runs may act on the whole
// process, and a child that ends itself says so at once.
contain((why) => post({ type: "fatal", message: why }));

const host = new ChildHost({
  post,
  listen: (handler) => {
    const take = takeMessages(handler);
    self.onmessage = (event: MessageEvent<unknown>) => take(event.data);
    // Counted too: the clock's doorbell compares the counts.
    self.onmessageerror = takeMessages(() => {});
  },
});

self.addEventListener("unhandledrejection", (event) => {
  event.preventDefault();
  host.unhandled(event.reason);
});
