/**
 * Every message between the listener (main) and a child worker: one
 * discriminated union per direction, and parsers that narrow
 * `MessageEvent.data` into them.
 *
 * @module
 */

import { isJsonObject, type JsonObject } from "../core/alert.ts";
import type { IniData } from "../config/ini.ts";
import type { LogFormat } from "../core/log.ts";
import type { QueueWatchOptions } from "./queue_watch.ts";

/** Everything a worker needs to run its child; built by main. */
export interface ChildSettings {
  child: string;
  /** URL of the handler module to import. */
  handlerUrl: string;
  processType: string;
  childConfig: IniData;
  logFile: string;
  logDirectory: string;
  logLevel: number;
  logFormat: LogFormat;
  print2stdout: boolean;
  taskTimeout: number;
  maxComplete: number;
  maxFrac: number;
  recipients: string[];
  watch: QueueWatchOptions;
  identity: { hostname: string; username: string; pid: number; config: string };
  /** Load and validate only (for `--check-config`), then stop. */
  checkOnly: boolean;
  /** The child's state folder: journal and snapshots. */
  stateDir: string;
  /** Checkpoint after this many alerts, or this many seconds after a change. */
  checkpointEvery: number;
  checkpointInterval: number;
}

/** One alert for a child, numbered in its journal order. */
export interface AlertDelivery {
  seq: number;
  node: string;
  id: string | null;
  /** The alert's JSON text: cheaper to post than the parsed object. */
  text: string;
  t0: number;
  /** A command from the control socket: where its outcome goes. */
  token: string | null;
}

/** The outcome of one alert. */
export interface AlertAck {
  seq: number;
  ok: boolean;
  reason: string | null;
}

/** Main to worker. */
export type ToChild =
  | { type: "init"; settings: ChildSettings }
  /** Alerts in routing order; a burst travels as one message. */
  | { type: "alerts"; alerts: AlertDelivery[] }
  | { type: "ping"; n: number }
  | { type: "shutdown" };

/** Worker to main. */
export type FromChild =
  /** Started; recovered up to `replayedTo` in the journal. */
  | {
    type: "ready";
    commands: string[];
    snapshotSeq: number;
    replayedTo: number;
  }
  /** A snapshot covering the journal up to `seq` is on disk. */
  | { type: "checkpointed"; seq: number; previous: number }
  /** The outcome of a command that came with a token. */
  | {
    type: "command_result";
    token: string;
    ok: boolean;
    output: string | null;
    error: string | null;
  }
  /** The child could not start: a start-up (configuration) failure. */
  | { type: "init_failed"; message: string }
  /** The child is about to die on its own (it called close()). */
  | { type: "fatal"; message: string }
  /** Alerts applied (or refused), with the queue as it stands after them. */
  | { type: "acks"; acks: AlertAck[]; queue: number; next: number | null }
  | { type: "state"; queue: number; next: number | null }
  | { type: "log"; line: string }
  | { type: "notify"; subject: string; body: string; recipients: string[] }
  | { type: "publish"; node: string; payload: JsonObject }
  | { type: "pong"; n: number }
  | { type: "stopped" };

type FieldType =
  | "string"
  | "number"
  | "boolean"
  | "string|null"
  | "number|null"
  | "strings"
  | "object"
  /** An array whose every element has these fields. */
  | { each: Record<string, FieldType> };

const isType: Record<Exclude<FieldType, { each: unknown }>, (v: unknown) => boolean> = {
  "string": (v) => typeof v === "string",
  "number": (v) => typeof v === "number",
  "boolean": (v) => typeof v === "boolean",
  "string|null": (v) => v === null || typeof v === "string",
  "number|null": (v) => v === null || typeof v === "number",
  "strings": (v) => Array.isArray(v) && v.every((s) => typeof s === "string"),
  "object": isJsonObject,
};

type Shapes<U extends { type: string }> = {
  [K in U["type"]]: Record<string, FieldType>;
};

const TO_CHILD: Shapes<ToChild> = {
  init: { settings: "object" },
  alerts: {
    alerts: {
      each: {
        seq: "number",
        node: "string",
        id: "string|null",
        text: "string",
        t0: "number",
        token: "string|null",
      },
    },
  },
  ping: { n: "number" },
  shutdown: {},
};

const FROM_CHILD: Shapes<FromChild> = {
  ready: {
    commands: "strings",
    snapshotSeq: "number",
    replayedTo: "number",
  },
  checkpointed: { seq: "number", previous: "number" },
  command_result: { token: "string", ok: "boolean", output: "string|null", error: "string|null" },
  init_failed: { message: "string" },
  fatal: { message: "string" },
  acks: {
    acks: { each: { seq: "number", ok: "boolean", reason: "string|null" } },
    queue: "number",
    next: "number|null",
  },
  state: { queue: "number", next: "number|null" },
  log: { line: "string" },
  notify: { subject: "string", body: "string", recipients: "strings" },
  publish: { node: "string", payload: "object" },
  pong: { n: "number" },
  stopped: {},
};

function narrow<U extends { type: string }>(
  shapes: Shapes<U>,
  data: unknown,
): U | null {
  if (!isJsonObject(data) || typeof data.type !== "string") return null;
  if (!Object.hasOwn(shapes, data.type)) return null;
  const shape = shapes[data.type as U["type"]];
  return hasShape(data, shape) ? data as U : null;
}

function matches(value: unknown, type: FieldType): boolean {
  if (typeof type === "string") return isType[type](value);
  return Array.isArray(value) && value.every((v) => isJsonObject(v) && hasShape(v, type.each));
}

function hasShape(data: Record<string, unknown>, shape: Record<string, FieldType>): boolean {
  for (const [key, type] of Object.entries(shape)) {
    if (!matches(data[key], type)) return false;
  }
  return true;
}

/** Narrows a message a worker received; null when it is not one. */
export function readToChild(data: unknown): ToChild | null {
  return narrow(TO_CHILD, data);
}

/** Narrows a message main received from a worker; null when it is not one. */
export function readFromChild(data: unknown): FromChild | null {
  return narrow(FROM_CHILD, data);
}

/** For the `default` of exhaustive switches. */
export function unreachable(value: never): never {
  throw new Error(`Unhandled message: ${JSON.stringify(value)}`);
}
