/**
 * XMPP: a client composed from xmpp.js parts with verified TLS,
 * publish-subscribe requests, credentials (netrc, prompt), and the
 * listener's session (subscriptions, outages, catch-up) that hands alerts
 * to the router.
 *
 * May import only `core/`, `config/`, `queue/` and `durability/`.
 *
 * @module
 */

export * from "./client.ts";
export * from "./credentials.ts";
export * from "./pubsub.ts";
export * from "./source.ts";
