/**
 * The listener (the main thread): routing alerts from a source to the
 * child that owns their node, journaling them first; one supervised
 * worker per section, restarted from its snapshot and journal; the
 * control socket; mail; replay files; and `listen()`, which wires it all.
 *
 * May import every lower layer: `core/`, `config/`, `gracedb/`, `queue/`,
 * `durability/`, `xmpp/`, `child/`.
 *
 * @module
 */

export * from "./child_link.ts";
export * from "./control.ts";
export * from "./health.ts";
export * from "./listen.ts";
export * from "./notifier.ts";
export * from "./replay.ts";
export * from "./router.ts";
export * from "./supervisor.ts";
export * from "./view.ts";
