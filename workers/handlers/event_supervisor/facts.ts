/**
 * GraceDB as a check reads it: each read bounded by the check's deadline
 * (retried by the client on network errors, timeouts and 5xx until
 * then), and reads of the same thing about the same graceid that are in
 * flight at once shared (the 18 flag checks of segdb2grcdb, due together,
 * make one file list request, not 18).
 *
 * @module
 */

import type { GraceDbCallOptions, GraceDbClient } from "../../../lib/gracedb/mod.ts";
import { isJsonObject, type JsonObject } from "../../../lib/mod.ts";
import { isSupereventId, utcText } from "./format.ts";
import type { EventView, Facts, Neighbour } from "./rules.ts";

/** Reads in flight, by client, graceid and what. */
const inFlight = new Map<string, Promise<unknown>>();

function shared<T>(key: string, read: () => Promise<T>): Promise<T> {
  const pending = inFlight.get(key);
  if (pending) return pending as Promise<T>;
  const started = read().finally(() => inFlight.delete(key));
  inFlight.set(key, started);
  return started;
}

const num = (v: unknown): number | null => {
  const n = typeof v === "string" && v.trim() !== "" ? Number(v) : v;
  return typeof n === "number" && Number.isFinite(n) ? n : null;
};
const str = (v: unknown): string | null => typeof v === "string" ? v : null;

/** The fields the checks use, from an event or a superevent dict. */
export function eventView(dict: JsonObject): EventView {
  if (typeof dict.superevent_id === "string") {
    const preferred = isJsonObject(dict.preferred_event_data) ? dict.preferred_event_data : {};
    return {
      far: num(dict.far),
      gpstime: num(dict.t_0),
      created: str(dict.created),
      instruments: str(preferred.instruments) ?? "",
    };
  }
  return {
    far: num(dict.far),
    gpstime: num(dict.gpstime),
    created: str(dict.created),
    instruments: str(dict.instruments) ?? "",
  };
}

/** Options for {@linkcode graceDbFacts}. */
export interface FactsOptions {
  /** The check gives up retrying at this time (epoch seconds). */
  deadline: number;
  /** The child's clock (epoch seconds). */
  now(): number;
  /** The event's web page. */
  url: string;
}

/** {@linkcode Facts} about `graceid` read from GraceDB through `client`. */
export function graceDbFacts(client: GraceDbClient, graceid: string, o: FactsOptions): Facts {
  const call = (): GraceDbCallOptions => {
    const left = Math.max(1, Math.round((o.deadline - o.now()) * 1000));
    return { totalTimeMs: left, timeoutMs: Math.min(30_000, left), maxAttempts: 1000 };
  };
  const key = (what: string) => `${client.url}\u0000${graceid}\u0000${what}`;
  const superevent = isSupereventId(graceid);
  return {
    graceid,
    url: o.url,
    event: () => shared(key("event"), async () => eventView(await client.get(graceid, call()))),
    logs: () => shared(key("logs"), () => client.logs(graceid, call())),
    files: () => shared(key("files"), () => client.files(graceid, call())),
    labels: () =>
      shared(key("labels"), async () => (await client.labels(graceid, call())).map((l) => l.name)),
    download: (name) => shared(key(`file:${name}`), () => client.download(graceid, name, call())),
    neighbours: (by, start, stop) =>
      shared(key(`near:${by}:${start}:${stop}`), async (): Promise<Neighbour[]> => {
        const window = by === "gpstime"
          ? `${superevent ? "t_0: " : ""}${start} .. ${stop}`
          : `created: ${utcText(start)} .. ${utcText(stop)}`;
        if (superevent) {
          const found = await client.querySuperevents(window, call());
          return found.map((s) => ({
            id: s.superevent_id,
            group: null,
            pipeline: null,
            search: null,
          }));
        }
        return (await client.queryEvents(window, call())).map((e) => ({
          id: e.graceid,
          group: str(e.group),
          pipeline: str(e.pipeline),
          search: str(e.search),
        }));
      }),
  };
}
