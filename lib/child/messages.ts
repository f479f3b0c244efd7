/**
 * Every message between the listener (main) and a child worker: one
 * schema per direction (valibot), from which the TypeScript union is
 * inferred, and readers that narrow `MessageEvent.data` with it.
 *
 * @module
 */

import * as v from "valibot";
import { isJsonObject, type JsonObject } from "../core/alert.ts";

const jsonObject = v.custom<JsonObject>(isJsonObject, "must be a JSON object");
const strings = v.array(v.string());

const iniEntry = v.object({ value: v.string(), line: v.number() });
const iniData = v.object({
  file: v.string(),
  defaults: v.map(v.string(), iniEntry),
  sections: v.map(
    v.string(),
    v.object({ line: v.number(), entries: v.map(v.string(), iniEntry) }),
  ),
});

/** GraceDB credentials, found by main (the worker can read no file and no variable). */
const gracedbAuth = v.variant("kind", [
  v.object({
    kind: v.literal("bearer"),
    token: v.string(),
    source: v.string(),
    expires: v.exactOptional(v.number()),
    skipped: v.exactOptional(strings),
  }),
  v.object({
    kind: v.literal("basic"),
    username: v.string(),
    password: v.string(),
    source: v.string(),
    skipped: v.exactOptional(strings),
  }),
  v.object({
    kind: v.literal("none"),
    source: v.exactOptional(v.string()),
    skipped: v.exactOptional(strings),
  }),
]);

/** Everything a worker needs to run its child; built by main. */
export const ChildSettingsSchema = v.object({
  child: v.string(),
  /** URL of the handler module to import. */
  handlerUrl: v.string(),
  processType: v.string(),
  childConfig: iniData,
  logFile: v.string(),
  logDirectory: v.string(),
  /** The handler's own files (`ctx.filesDirectory`). */
  filesDirectory: v.string(),
  /** Where command files live (`<log_directory>/queue`). */
  commandFolder: v.string(),
  /** Commands accepted from the network. */
  networkCommands: v.union([v.literal("all"), v.literal("none"), strings]),
  logLevel: v.number(),
  logFormat: v.picklist(["text", "json"]),
  print2stdout: v.boolean(),
  taskTimeout: v.number(),
  maxComplete: v.number(),
  maxFrac: v.number(),
  recipients: strings,
  watch: v.object({
    warnThr: v.number(),
    recipients: strings,
    warnDelay: v.number(),
    maxWarn: v.number(),
    hostname: v.string(),
    username: v.string(),
    config: v.string(),
  }),
  identity: v.object({
    hostname: v.string(),
    username: v.string(),
    pid: v.number(),
    config: v.string(),
  }),
  /** Load and validate only (for `--check-config`), then stop. */
  checkOnly: v.boolean(),
  /** The child's state folder: journal and snapshots. */
  stateDir: v.string(),
  /** Checkpoint after this many alerts, or this many seconds after a change. */
  checkpointEvery: v.number(),
  checkpointInterval: v.number(),
  /** Journal positions of alerts quarantined for killing the child: never applied. */
  quarantined: v.array(v.number()),
  /** The `name` heartbeat responses carry (`[data] name`, else the process_type). */
  heartbeatName: v.string(),
  /** The program's version (User-Agent of the GraceDB client). */
  version: v.string(),
  /** The GraceDB API this child uses, and how it logs in; null when none. */
  gracedb: v.nullable(v.object({ url: v.string(), auth: gracedbAuth })),
});

/** Everything a worker needs to run its child; built by main. */
export type ChildSettings = v.InferOutput<typeof ChildSettingsSchema>;

/** One alert for a child, numbered in its journal order. */
const alertDelivery = v.object({
  seq: v.number(),
  node: v.string(),
  id: v.nullable(v.string()),
  /** The alert's JSON text: cheaper to post than the parsed object. */
  text: v.string(),
  t0: v.number(),
  /** A command from the control socket: where its outcome goes. */
  token: v.nullable(v.string()),
});

/** One alert for a child, numbered in its journal order. */
export type AlertDelivery = v.InferOutput<typeof alertDelivery>;

const alertAck = v.object({
  seq: v.number(),
  ok: v.boolean(),
  reason: v.nullable(v.string()),
  /** Refused because it had been applied already (after a restart). */
  duplicate: v.boolean(),
});

/** The outcome of one alert. */
export type AlertAck = v.InferOutput<typeof alertAck>;

/** A task due to run, as the status page shows it. */
const dueTask = v.object({
  graceid: v.nullable(v.string()),
  item: v.string(),
  task: v.string(),
  /** Epoch seconds. */
  due: v.number(),
});

/** A task due to run, as the status page shows it. */
export type DueTask = v.InferOutput<typeof dueTask>;

/**
 * Task outcomes since the last report: counts, and the lateness histogram
 * as per-bucket counts and sums (buckets of `LATENESS_BUCKETS`, then +Inf).
 */
const taskTally = v.object({
  executed: v.number(),
  failed: v.number(),
  counts: v.array(v.number()),
  sums: v.array(v.number()),
});

/** Task outcomes since the last report. */
export type TaskTally = v.InferOutput<typeof taskTally>;

const taskFailure = v.object({
  graceid: v.nullable(v.string()),
  item: v.string(),
  task: v.string(),
  due: v.number(),
  error: v.string(),
});

/** A task that failed. */
export type TaskFailure = v.InferOutput<typeof taskFailure>;

/** Main to worker. */
export const ToChildSchema = v.variant("type", [
  v.object({
    type: v.literal("init"),
    settings: ChildSettingsSchema,
    /** Where the child shows the journal position it is applying (a Web Worker only). */
    applying: v.nullable(v.instance(SharedArrayBuffer)),
    /**
     * Where the listener counts the messages it posts to the child, and
     * wakes it (a Web Worker only): its timers wait for their target in one
     * sleep that a message ends (`useDoorbell` in lib/queue/clock.ts).
     */
    doorbell: v.nullable(v.instance(SharedArrayBuffer)),
  }),
  /** Alerts in routing order; a burst travels as one message. */
  v.object({ type: v.literal("alerts"), alerts: v.array(alertDelivery) }),
  v.object({ type: v.literal("ping"), n: v.number() }),
  v.object({ type: v.literal("shutdown") }),
]);

/** Main to worker. */
export type ToChild = v.InferOutput<typeof ToChildSchema>;

/** Worker to main. */
export const FromChildSchema = v.variant("type", [
  /** Started; recovered up to `replayedTo` in the journal. */
  v.object({
    type: v.literal("ready"),
    commands: strings,
    snapshotSeq: v.number(),
    replayedTo: v.number(),
    /** What recovery could not bring back. */
    problems: strings,
  }),
  /** A snapshot covering the journal up to `seq` is on disk. */
  v.object({
    type: v.literal("checkpointed"),
    seq: v.number(),
    previous: v.number(),
    /** How long the snapshot took. */
    seconds: v.number(),
  }),
  /** The outcome of a command that came with a token. */
  v.object({
    type: v.literal("command_result"),
    token: v.string(),
    ok: v.boolean(),
    output: v.nullable(v.string()),
    error: v.nullable(v.string()),
  }),
  /** The child could not start: a start-up (configuration) failure. */
  v.object({ type: v.literal("init_failed"), message: v.string() }),
  /** The child is about to die on its own (it called close()). */
  v.object({ type: v.literal("fatal"), message: v.string() }),
  /** Alerts applied (or refused), with the queue as it stands after them. */
  v.object({
    type: v.literal("acks"),
    acks: v.array(alertAck),
    queue: v.number(),
    next: v.nullable(v.number()),
  }),
  v.object({ type: v.literal("state"), queue: v.number(), next: v.nullable(v.number()) }),
  /** Throttled (a few a second at most): the next due tasks, task outcomes since the last. */
  v.object({
    type: v.literal("report"),
    due: v.array(dueTask),
    tally: taskTally,
    failures: v.array(taskFailure),
  }),
  v.object({ type: v.literal("log"), line: v.string() }),
  v.object({
    type: v.literal("notify"),
    subject: v.string(),
    body: v.string(),
    recipients: strings,
  }),
  v.object({ type: v.literal("publish"), node: v.string(), payload: jsonObject }),
  v.object({ type: v.literal("pong"), n: v.number() }),
  /** The alert at work (a child process; a worker uses shared memory instead). */
  v.object({ type: v.literal("marker"), seq: v.number() }),
  v.object({ type: v.literal("stopped") }),
]);

/** Worker to main. */
export type FromChild = v.InferOutput<typeof FromChildSchema>;

/** A message that did not match its schema, with the reason. */
export type ReadMessage<T> = { ok: true; message: T } | { ok: false; reason: string };

function read<T>(schema: v.GenericSchema<unknown, T>, data: unknown): ReadMessage<T> {
  const result = v.safeParse(schema, data);
  if (result.success) return { ok: true, message: result.output };
  const issue = result.issues[0];
  const path = issue.path?.map((p) => String(p.key)).join(".");
  return { ok: false, reason: `${path ? `${path}: ` : ""}${issue.message}` };
}

type Fields = Record<string, unknown>;

const isObject = (value: unknown): value is Fields =>
  typeof value === "object" && value !== null && !Array.isArray(value);

const stringOrNull = (value: unknown) => value === null || typeof value === "string";

/** The schema's check of one alert, written out: it runs for every alert. */
function isAlertDelivery(a: unknown): boolean {
  return isObject(a) && typeof a.seq === "number" && typeof a.node === "string" &&
    stringOrNull(a.id) && typeof a.text === "string" && typeof a.t0 === "number" &&
    stringOrNull(a.token);
}

function isAck(a: unknown): boolean {
  return isObject(a) && typeof a.seq === "number" && typeof a.ok === "boolean" &&
    stringOrNull(a.reason) && typeof a.duplicate === "boolean";
}

/**
 * The messages that come once per batch of alerts, checked without
 * copying: true when `data` is one of them and well formed. Anything else
 * goes through the schema, which also says what is wrong.
 */
function fastPath(data: unknown, list: "alerts" | "acks", each: (a: unknown) => boolean): boolean {
  if (!isObject(data) || data.type !== list) return false;
  const items = data[list];
  if (!Array.isArray(items)) return false;
  for (const item of items) if (!each(item)) return false;
  if (list === "alerts") return Object.keys(data).length === 2;
  return typeof data.queue === "number" && (data.next === null || typeof data.next === "number");
}

/** Narrows a message a worker received. */
export function readToChild(data: unknown): ReadMessage<ToChild> {
  if (fastPath(data, "alerts", isAlertDelivery)) return { ok: true, message: data as ToChild };
  return read(ToChildSchema, data);
}

/** Narrows a message main received from a worker. */
export function readFromChild(data: unknown): ReadMessage<FromChild> {
  if (fastPath(data, "acks", isAck)) return { ok: true, message: data as FromChild };
  return read(FromChildSchema, data);
}

/** For the `default` of exhaustive switches. */
export function unreachable(value: never): never {
  throw new Error(`Unhandled message: ${JSON.stringify(value)}`);
}
