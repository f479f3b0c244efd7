/**
 * GraceDB REST client for the handlers (event_supervisor,
 * approval_processor): read events and superevents, their logs, files,
 * labels, log tags, VOEvents and signoffs; write log entries (with tags
 * and an optional file), add and remove labels, request VOEvents; query
 * events and superevents across pages. Every call has a timeout, retries
 * network errors, timeouts, 408, 429 and 5xx with exponential backoff
 * (never other 4xx), keeps within a total time bound, and fails with one
 * error class, {@linkcode GraceDbError}.
 *
 * Credentials are found on the listener's main thread with
 * {@linkcode resolveGraceDbAuth} (token files, environment, netrc) and
 * handed to the worker as a plain value; the client itself needs only
 * network access to the GraceDB host.
 *
 * This subsystem imports only from `lib/core/`.
 *
 * @example
 * ```ts
 * import { GraceDbClient, resolveGraceDbAuth } from "./mod.ts";
 *
 * const url = "https://gracedb.ligo.org/api/";
 * const auth = await resolveGraceDbAuth(url, { env: () => undefined, netrc: "/nonexistent" });
 * const gracedb = new GraceDbClient(url, { auth, version: "0.1.0" });
 * const work = async () => {
 *   await gracedb.addLabel("S190425z", "EM_READY");
 *   const events = await gracedb.queryEvents("gpstime: 1000000000 .. 1000000100");
 *   return events.length;
 * };
 * ```
 *
 * @module
 */

export * from "./auth.ts";
export * from "./client.ts";
export * from "./error.ts";
export * from "./ids.ts";
export * from "./responses.ts";
export * from "./voevent.ts";
