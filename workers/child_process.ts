/**
 * Process entry: one child in a process of its own (`isolation = process`),
 * started by the listener with the child's permission set and a heap
 * limit. Messages come on stdin and go on stdout, one per line
 * (`lib/child/wire.ts`); whatever a handler prints goes to stderr.
 *
 * @module
 */

import { contain } from "../lib/child/containment.ts";
import { ChildHost } from "../lib/child/host.ts";
import type { FromChild } from "../lib/child/messages.ts";
import { decodeMessage, encodeMessage, lines } from "../lib/child/wire.ts";

const encoder = new TextEncoder();
const exit = Deno.exit.bind(Deno);

function post(message: FromChild): void {
  const bytes = encoder.encode(encodeMessage(message));
  for (let n = 0; n < bytes.length;) n += Deno.stdout.writeSync(bytes.subarray(n));
}

// stdout carries the messages: a handler's console output goes to stderr.
for (const name of ["log", "info", "debug", "warn"] as const) console[name] = console.error;

contain((why) => post({ type: "fatal", message: why }), () => exit(1));

const host = new ChildHost({
  post,
  listen: (handler) => {
    void (async () => {
      for await (const line of lines(Deno.stdin.readable)) {
        const decoded = decodeMessage(line);
        if (decoded) handler(decoded.message);
      }
      // The listener is gone: so is this child.
      exit(0);
    })();
  },
});

globalThis.addEventListener("unhandledrejection", (event) => {
  event.preventDefault();
  host.unhandled(event.reason);
});
