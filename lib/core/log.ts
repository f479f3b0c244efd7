/**
 * Log records as text lines or JSON Lines, with stable event names.
 *
 * @module
 */

import type { JsonObject } from "./alert.ts";

/** Log levels, lowest first. */
export type Level = "debug" | "info" | "warning" | "error";

/**
 * A child's logger: records go to its log file and, if asked, to the
 * listener's standard output.
 *
 * @example
 * ```ts
 * function report(log: ChildLog, graceid: string) {
 *   log.event("warning", "skymap_missing", { graceid }, `no sky map for ${graceid}`);
 * }
 * ```
 */
export interface ChildLog {
  /** A debug-level message (event name `message`). */
  debug(message: string, fields?: JsonObject): void;
  /** An info-level message (event name `message`). */
  info(message: string, fields?: JsonObject): void;
  /** A warning (event name `message`). */
  warning(message: string, fields?: JsonObject): void;
  /** An error (event name `message`). */
  error(message: string, fields?: JsonObject): void;
  /** A structured event with a stable name (`task_executed`, ...) and fields. */
  event(level: Level, event: string, fields?: JsonObject, message?: string): void;
}

/** Output format of log records. */
export type LogFormat = "text" | "json";

/** Python logging level numbers, which `log_level` and `-v`/`-g` use. */
export const LEVEL_NUMBER: Readonly<Record<Level, number>> = {
  debug: 10,
  info: 20,
  warning: 30,
  error: 40,
};

/** One log record; JSON lines carry exactly these keys first. */
export interface LogRecord extends JsonObject {
  ts: string;
  level: Level;
  child: string | null;
  event: string;
}

const RESERVED = new Set(["ts", "level", "child", "event", "msg"]);

/** Control characters that would break a text line, escaped. */
function oneLine(text: string): string {
  return text.replace(/[\r\n\u2028\u2029]/g, (c) => JSON.stringify(c).slice(1, -1));
}

function textValue(value: unknown): string {
  if (typeof value === "string" && /^[^\s"=]+$/.test(value)) return value;
  return JSON.stringify(value) ?? "undefined";
}

/**
 * Formats a record. Text lines read
 * `TS | CHILD : LEVEL : event: message key=value ...`, like the original's
 * `asctime | name : levelname : message`.
 */
export function formatRecord(record: LogRecord, format: LogFormat): string {
  if (format === "json") return JSON.stringify(record);
  const parts = [
    `${record.ts} | ${record.child ?? "main"} : ${record.level.toUpperCase()} : ${record.event}`,
  ];
  if (typeof record.msg === "string" && record.msg !== "") {
    // A message may hold text from the network: it must not start a line of its own.
    parts[0] += `: ${oneLine(record.msg)}`;
  }
  for (const [key, value] of Object.entries(record)) {
    if (RESERVED.has(key) || key === "stack") continue;
    parts.push(`${key}=${textValue(value)}`);
  }
  let line = parts.join(" ");
  if (typeof record.stack === "string" && record.stack) {
    // Continuation lines are marked, so none can pass for a record of its own.
    line += record.stack.split("\n").map((l) => `\n    | ${oneLine(l)}`).join("");
  }
  return line;
}

/** Options for {@linkcode Logger}. */
export interface LoggerOptions {
  /** Child name, or null for the listener itself. */
  child: string | null;
  format: LogFormat;
  /** Records below this Python level number are dropped. @default {0} */
  level?: number;
  /** Epoch seconds for timestamps. @default {Date.now} */
  now?: () => number;
  /** Where formatted lines go (each without a newline). */
  sinks: Array<(line: string, record: LogRecord) => void>;
}

/** A logger writing formatted records to its sinks. */
export class Logger implements ChildLog {
  #o: LoggerOptions;
  #min: number;

  constructor(options: LoggerOptions) {
    this.#o = options;
    this.#min = options.level ?? 0;
  }

  /** Whether records of `level` are kept. */
  enabled(level: Level): boolean {
    return LEVEL_NUMBER[level] >= this.#min;
  }

  event(
    level: Level,
    event: string,
    fields: JsonObject = {},
    message?: string,
  ): void {
    if (!this.enabled(level)) return;
    const now = this.#o.now?.() ?? Date.now() / 1000;
    const ts = new Date(now * 1000).toISOString();
    // The listener's records about one child carry that child's name.
    const child = this.#o.child ??
      (typeof fields.child === "string" ? fields.child : null);
    const record: LogRecord = {
      ts,
      level,
      child,
      event,
      ...(message === undefined ? {} : { msg: message }),
      ...fields,
    };
    // Fields never override the envelope (their keys keep its order).
    Object.assign(record, { ts, level, child, event });
    const line = formatRecord(record, this.#o.format);
    for (const sink of this.#o.sinks) sink(line, record);
  }

  debug(message: string, fields?: JsonObject): void {
    this.event("debug", "message", fields, message);
  }

  info(message: string, fields?: JsonObject): void {
    this.event("info", "message", fields, message);
  }

  warning(message: string, fields?: JsonObject): void {
    this.event("warning", "message", fields, message);
  }

  error(message: string, fields?: JsonObject): void {
    this.event("error", "message", fields, message);
  }
}

const encoder = new TextEncoder();

/** A sink appending lines to an open file, one write per line. */
export function fileSink(file: Deno.FsFile): (line: string) => void {
  return (line) => {
    const bytes = encoder.encode(line + "\n");
    let written = 0;
    while (written < bytes.length) {
      written += file.writeSync(bytes.subarray(written));
    }
  };
}

/** A sink writing lines to standard output. */
export function stdoutSink(line: string): void {
  const bytes = encoder.encode(line + "\n");
  let written = 0;
  while (written < bytes.length) {
    written += Deno.stdout.writeSync(bytes.subarray(written));
  }
}

/**
 * A time as Python's `time.ctime()` writes it, in local time (the
 * original's mails and its `-S` line use it).
 *
 * @example
 * ```ts
 * ctime(0); // "Thu Jan  1 00:00:00 1970" where local time is UTC
 * ```
 */
export function ctime(seconds: number): string {
  const d = new Date(seconds * 1000);
  const day = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"][d.getDay()];
  const month =
    ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"][
      d.getMonth()
    ];
  return `${day} ${month} ${String(d.getDate()).padStart(2, " ")} ${
    d.toTimeString().slice(0, 8)
  } ${d.getFullYear()}`;
}
