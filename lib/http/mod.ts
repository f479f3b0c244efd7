/**
 * Watching a running listener over HTTP (`--http ADDR:PORT`): a status
 * page that updates live (`/`, `/events`), Prometheus metrics
 * (`/metrics`) and the `status` verdict as JSON (`/healthz`), loopback
 * only unless a bearer token is required.
 *
 * May import every lower layer: `core/`, `config/`, `gracedb/`, `queue/`,
 * `durability/`, `xmpp/`, `child/`, `listener/`. Nothing in `lib/` imports
 * it: `main.ts` hands {@linkcode watchOverHttp} to `listen()`.
 *
 * @module
 */

import type { ListenerView } from "../listener/view.ts";
import { StatusServer } from "./server.ts";
import type { HttpSettings } from "./settings.ts";

export * from "./event_stream.ts";
export * from "./live.ts";
export * from "./metrics.ts";
export * from "./page.ts";
export * from "./render.ts";
export * from "./server.ts";
export * from "./settings.ts";

/** What `listen()` starts once its children are ready: the HTTP server, stopped with it. */
export function watchOverHttp(
  settings: HttpSettings,
): (view: ListenerView) => Promise<AsyncDisposable> {
  return (view) => Promise.resolve(StatusServer.start(settings, view));
}
