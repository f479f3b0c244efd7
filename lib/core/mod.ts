/**
 * The lowest layer: plain building blocks every other subsystem uses. Alerts
 * of both GraceDB schemas narrowed from unknown JSON, the log, the outcome
 * of a run, configuration errors, the netrc reader, async helpers (delay,
 * retry, deadline, a serializer), bounded id sets, a typed emitter, and
 * what alert sources hand to the router.
 *
 * Imports only the platform (Deno, `node:` built-ins) and npm packages;
 * nothing else of `lib/`.
 *
 * @module
 */

export * from "./alert.ts";
export * from "./async.ts";
export * from "./bounded_set.ts";
export * from "./config_error.ts";
export * from "./emitter.ts";
export * from "./log.ts";
export * from "./netrc.ts";
export * from "./outcome.ts";
export * from "./source.ts";
