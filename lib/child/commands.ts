/**
 * Commands to a running child, sent as alerts with `uid: "command"` (the
 * wire format of lvalert_commandMP) or through the control socket. Each
 * command becomes a queue item like any other follow-up, so it is timed,
 * logged and checkpointed the same way; the child's command table runs it.
 *
 * @module
 */

import { isJsonObject, type JsonObject } from "../core/alert.ts";
import type { ClassRegistry } from "../durability/snapshot.ts";
import { type ChildContext, QueueItem, Task } from "../queue/queue_item.ts";
import { writeCommandFile } from "./command_files.ts";

/**
 * A command a child understands. Handlers may export more (as
 * approval_processor's `resetThrottle`).
 *
 * @example
 * ```ts
 * const hello: CommandSpec = {
 *   name: "hello",
 *   description: "logs a greeting for 'who'",
 *   required: ["who"],
 *   run(ctx, kwargs) {
 *     ctx.log.info(`hello ${kwargs.who}`);
 *     return "greeted";
 *   },
 * };
 * ```
 */
export interface CommandSpec<C extends ChildContext = ChildContext> {
  /** The command's name (the alert's `alert_type`). */
  name: string;
  /** One line for `command --show-commands`. */
  description: string;
  /** Keyword arguments that must be present. */
  required?: readonly string[];
  /** Keyword arguments that may be present (shown by `--show-kwargs`). */
  optional?: readonly string[];
  /** Keyword arguments that must not be present. */
  forbidden?: readonly string[];
  /**
   * What each keyword argument must be, where it matters: `text` (a string,
   * or a number, which the original's client sent for digits), `texts` (a
   * string or a list of strings).
   */
  types?: Readonly<Record<string, "text" | "texts">>;
  /**
   * Does the work when the command's item comes due; what it returns (a
   * text) is the reply a `ctl` user sees. Throwing fails the command.
   */
  run(ctx: C, kwargs: JsonObject, item: QueueItem): unknown;
}

/** What built-in commands see beyond a handler's context. */
export interface EngineContext extends ChildContext {
  /** Item and task classes snapshots may name (loadQueue). */
  readonly registry: ClassRegistry;
  /** The folder command files live in (`<log_directory>/queue/`). */
  readonly commandFolder: string;
}

/** Result of checking a command alert. */
export type CommandCheck<C extends ChildContext = ChildContext> =
  | { ok: true; spec: CommandSpec<C>; kwargs: JsonObject; sleep: number | null }
  | { ok: false; reason: string };

/**
 * A warning that fails its task, as the original's `RuntimeWarning` did:
 * logged at warning level, mailed like any failure.
 */
export class RuntimeWarning extends Error {
  override name = "RuntimeWarning";
}

/** The commands a `sleep` keyword argument makes repeat (the others it only delays). */
export const REPEATING_COMMANDS: ReadonlySet<string> = new Set(["checkpointQueue"]);

/**
 * One command, run by its child's command table. With a `sleep` keyword
 * argument it comes due `sleep` seconds after `t0`; checkpointQueue then
 * repeats every `sleep` seconds, as in the original. Without one it runs
 * at once.
 */
export class CommandTask extends Task {
  command: string;
  kwargs: JsonObject;
  sleep: number | null;
  /** Whether it runs again every `sleep` seconds. */
  repeats: boolean;

  constructor(command: string, kwargs: JsonObject, sleep: number | null) {
    super(sleep ?? 0, command);
    this.command = command;
    this.kwargs = kwargs;
    this.sleep = sleep;
    this.repeats = sleep !== null && REPEATING_COMMANDS.has(command);
  }

  /** Commands are run by the child's {@linkcode CommandTable}, never on their own. */
  execute(): never {
    throw new Error(`Command ${this.command} must be run by its child's command table`);
  }
}

/** The item holding one {@linkcode CommandTask}. */
export class CommandItem extends QueueItem {
  constructor(t0: number, task: CommandTask, graceid?: string) {
    super(t0, [task], { graceid, name: task.command });
  }
}

/** The commands a child knows, by name: checks command alerts and runs command tasks. */
export class CommandTable {
  #specs: Map<string, CommandSpec<EngineContext>>;

  constructor(specs: Iterable<CommandSpec<EngineContext>>) {
    this.#specs = new Map([...specs].map((spec) => [spec.name, spec]));
  }

  /** Command names, sorted. */
  get names(): string[] {
    return [...this.#specs.keys()].sort();
  }

  /** Checks a command alert's name and keyword arguments. */
  check(name: string, object: unknown): CommandCheck<EngineContext> {
    return checkCommand(this.#specs, name, object);
  }

  /** Runs a command task; repeats it `sleep` seconds later when it has one. */
  async run(ctx: EngineContext, task: CommandTask, item: QueueItem): Promise<unknown> {
    const spec = this.#specs.get(task.command);
    if (!spec) throw new Error(`Unknown command "${task.command}"`);
    try {
      return await spec.run(ctx, task.kwargs, item);
    } finally {
      if (task.repeats && task.sleep !== null) task.expiration += task.sleep;
    }
  }
}

function kwargString(kwargs: JsonObject, key: string): string {
  const value = kwargs[key];
  return typeof value === "string" ? value : JSON.stringify(value);
}

/** Text dump of a queue, as the original printQueue wrote it. */
export function describeQueue(ctx: ChildContext): string {
  const lines = [`queue: ${ctx.queue.size} pending item(s)`];
  for (const item of ctx.queue.items()) {
    const tasks = item.tasks.map((t) => `${t.name}@${new Date(t.expiration * 1000).toISOString()}`);
    lines.push(
      `  ${item.name} graceid=${item.graceid ?? "-"} expiration=${
        new Date(item.expiration * 1000).toISOString()
      } tasks=[${tasks.join(", ")}]`,
    );
  }
  for (const graceid of ctx.queue.graceIds()) {
    lines.push(`${graceid} : ${ctx.queue.byGraceId(graceid).length} item(s)`);
  }
  return lines.join("\n");
}

/** The commands every child knows (besides checkpointQueue and loadQueue). */
export const BUILTIN_COMMANDS: readonly CommandSpec<EngineContext>[] = [
  {
    name: "printMessage",
    description: "logs 'message'",
    required: ["message"],
    optional: ["sleep"],
    types: { message: "text" },
    run(ctx, kwargs) {
      const message = kwargString(kwargs, "message");
      ctx.log.event("info", "command", { command: "printMessage", message }, message);
      return message;
    },
  },
  {
    name: "raiseException",
    description: "fails on purpose: the item fails, the child goes on",
    optional: ["sleep"],
    run() {
      throw new Error("raiseException command received");
    },
  },
  {
    name: "raiseWarning",
    description: "raises a warning on purpose: the item fails (logged as a warning, mailed)",
    optional: ["sleep"],
    run() {
      // The original raised RuntimeWarning, which failed the task like any error.
      throw new RuntimeWarning("raiseWarning command received");
    },
  },
  {
    name: "clearQueue",
    description: "marks every pending item complete",
    optional: ["sleep"],
    run(ctx) {
      const items = ctx.queue.items();
      for (const item of items) item.complete = true;
      const cleared = items.length;
      ctx.log.event("info", "command", { command: "clearQueue", cleared });
      return `cleared ${cleared} item(s)`;
    },
  },
  {
    name: "clearGraceID",
    description: "marks every pending item of 'graceid' complete",
    required: ["graceid"],
    optional: ["sleep"],
    types: { graceid: "text" },
    run(ctx, kwargs, self) {
      const graceid = kwargString(kwargs, "graceid");
      let cleared = 0;
      for (const item of ctx.queue.byGraceId(graceid)) {
        if (item === self) continue;
        item.complete = true;
        cleared++;
      }
      ctx.log.event("info", "command", { command: "clearGraceID", graceid, cleared });
      return `cleared ${cleared} item(s) of ${graceid}`;
    },
  },
  {
    name: "printQueue",
    description:
      "writes the queue to 'filename' (STDOUT, STDERR, or a file in log_directory/queue/)",
    required: ["filename"],
    optional: ["sleep"],
    types: { filename: "text" },
    async run(ctx, kwargs) {
      const filename = kwargString(kwargs, "filename");
      const text = describeQueue(ctx);
      if (filename === "STDOUT" || filename === "STDERR") {
        ctx.log.event("info", "queue", { command: "printQueue", size: ctx.queue.size }, text);
        return text;
      }
      const path = await writeCommandFile(ctx.commandFolder, filename, text + "\n");
      ctx.log.event("info", "command", { command: "printQueue", path });
      return `queue written to ${path}`;
    },
  },
  {
    name: "sendEmail",
    description:
      "sends mail to 'recipients' (space- or comma-separated), with 'subject' and 'body'",
    required: ["recipients"],
    optional: ["subject", "body", "sleep"],
    types: { recipients: "texts", subject: "text", body: "text" },
    run(ctx, kwargs) {
      const raw = kwargs.recipients;
      const recipients = typeof raw === "string"
        ? raw.split(/[\s,]+/).filter(Boolean)
        : Array.isArray(raw)
        ? raw.map(String)
        : [];
      if (recipients.length === 0) throw new Error("sendEmail: 'recipients' names nobody");
      // lvalert_commandMP sends what reads as a number as a float: 5 is the subject "5".
      const subject = "subject" in kwargs
        ? kwargString(kwargs, "subject")
        : `lvalertMP message from ${ctx.child}`;
      const body = "body" in kwargs
        ? kwargString(kwargs, "body")
        : typeof kwargs.message === "string"
        ? kwargs.message
        : `sendEmail command received by ${ctx.child}`;
      ctx.notify(subject, body, recipients);
      ctx.log.event("info", "command", { command: "sendEmail", recipients });
      return `mail to ${recipients.join(" ")}`;
    },
  },
];

/**
 * Checks a command alert's name and keyword arguments against the known
 * commands.
 */
export function checkCommand<C extends ChildContext>(
  commands: ReadonlyMap<string, CommandSpec<C>>,
  name: string,
  object: unknown,
): CommandCheck<C> {
  const spec = commands.get(name);
  if (!spec) {
    return {
      ok: false,
      reason: `unknown command "${name}"; known: ${[...commands.keys()].sort().join(", ")}`,
    };
  }
  const kwargs = object === undefined ? {} : object;
  if (!isJsonObject(kwargs)) {
    return { ok: false, reason: `command ${name}: "object" must be a JSON object` };
  }
  // The original's messages (commands.py, Command.checkObject).
  const missing = (spec.required ?? []).find((k) => !(k in kwargs));
  if (missing !== undefined) {
    return { ok: false, reason: `Command=${name} is missing required kwarg=${missing}` };
  }
  const forbidden = (spec.forbidden ?? []).find((k) => k in kwargs);
  if (forbidden !== undefined) {
    return { ok: false, reason: `Command=${name} contains forbidden kwarg=${forbidden}` };
  }
  for (const [key, type] of Object.entries(spec.types ?? {})) {
    if (!(key in kwargs)) continue;
    const v = kwargs[key];
    const text = typeof v === "string" || typeof v === "number";
    const ok = type === "text"
      ? text
      : text || (Array.isArray(v) && v.every((x) => typeof x === "string"));
    if (!ok) {
      const want = type === "text" ? "a string" : "a string or a list of strings";
      return {
        ok: false,
        reason: `Command=${name}: kwarg ${key} must be ${want}, got ${JSON.stringify(v)}`,
      };
    }
  }
  let sleep: number | null = null;
  if ("sleep" in kwargs) {
    const raw = kwargs.sleep;
    const value = typeof raw === "string" ? Number(raw) : raw;
    if (typeof value !== "number" || !(value > 0) || !Number.isFinite(value)) {
      return {
        ok: false,
        reason: `command ${name}: "sleep" must be a number of seconds > 0, got ${
          JSON.stringify(raw)
        }`,
      };
    }
    sleep = value;
  }
  return { ok: true, spec, kwargs, sleep };
}
