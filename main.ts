/**
 * `lvalert_listenMP`: the entry point. Parses argv, picks the subcommand,
 * runs it, and is the only place that decides the exit code.
 *
 * @module
 */

import { LISTEN_USAGE, type ListenArgs, parseListenArgs } from "./lib/config/cli.ts";
import { ConfigError } from "./lib/core/config_error.ts";
import { VERSION } from "./lib/core/version.ts";
import { httpSettings, watchOverHttp } from "./lib/http/mod.ts";
import { listen, ListenProgress } from "./lib/listener/listen.ts";
import type { Outcome } from "./lib/core/outcome.ts";
import { admin, ADMIN_USAGE } from "./lib/tools/admin.ts";
import { command, COMMAND_USAGE } from "./lib/tools/command.ts";
import { send, SEND_USAGE } from "./lib/tools/send.ts";
import { ctl, CTL_USAGE } from "./lib/tools/ctl.ts";
import { status, STATUS_USAGE } from "./lib/tools/status.ts";

/** sysexits-style exit codes. */
export const EXIT = {
  ok: 0,
  failure: 1,
  usage: 2,
  unavailable: 69,
  auth: 77,
  config: 78,
} as const;

export { VERSION };

const TOOLS: Record<
  string,
  { run: (argv: string[]) => Promise<Outcome>; usage: string }
> = {
  send: { run: send, usage: SEND_USAGE },
  command: { run: command, usage: COMMAND_USAGE },
  admin: { run: admin, usage: ADMIN_USAGE },
  ctl: { run: ctl, usage: CTL_USAGE },
  status: { run: status, usage: STATUS_USAGE },
};

function exitCode(outcome: Outcome, name: string, usage: string): number {
  if (outcome.ok) return outcome.code ?? EXIT.ok;
  const message = `${name}: ${outcome.error.message}`;
  switch (outcome.kind) {
    case "usage":
      console.error(`${message}\n\n${usage}`);
      return EXIT.usage;
    case "config":
      console.error(message);
      return EXIT.config;
    case "unavailable":
      console.error(message);
      return EXIT.unavailable;
    case "auth":
      console.error(message);
      return EXIT.auth;
    case "runtime":
      console.error(message);
      return EXIT.failure;
    default: {
      const never: never = outcome.kind;
      return never;
    }
  }
}

async function runListener(argv: string[]): Promise<number> {
  const parsed = parseListenArgs(argv);
  if (!parsed.ok) {
    return exitCode(
      { ok: false, kind: "usage", error: new Error(parsed.message) },
      "lvalert_listenMP",
      LISTEN_USAGE,
    );
  }
  const args = parsed.value;
  if (args.help) {
    console.log(LISTEN_USAGE);
    return EXIT.ok;
  }
  if (args.version) {
    console.log(`lvalert_listenMP (lvalertMP) ${VERSION}`);
    return EXIT.ok;
  }
  if (args.password !== undefined) {
    console.error(
      "lvalert_listenMP: warning: -b/--password puts the password in argv, " +
        "where other users can read it; use a netrc file",
    );
  }
  if (args.ignoredNode !== undefined) {
    console.error(
      `lvalert_listenMP: warning: -n/--node ${args.ignoredNode} is ignored, as the Python ` +
        "tool ignored it: the config file names the nodes each child listens to",
    );
  }
  let http;
  try {
    http = await httpSettings(args.http, args.httpToken);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    return exitCode({ ok: false, kind: "config", error }, "lvalert_listenMP", LISTEN_USAGE);
  }
  const watch = http ? { watch: watchOverHttp(http) } : {};
  return await withSignals(
    args,
    (signal, progress) => listen(args, { signal, progress, ...watch }),
  );
}

/** Exit status of a forced exit on a second signal (128 + the signal's number). */
const FORCED: Record<"SIGINT" | "SIGTERM", number> = { SIGINT: 130, SIGTERM: 143 };

/**
 * Runs the listener with named SIGINT/SIGTERM handlers: the first signal
 * stops it cleanly (children finish and checkpoint, within
 * `--stop-timeout`); a second one exits at once, saying what it abandons.
 * A safety timer ends a stop that still hangs well past its deadline.
 */
async function withSignals(
  args: ListenArgs,
  run: (signal: AbortSignal, progress: ListenProgress) => Promise<Outcome>,
): Promise<number> {
  const stop = new AbortController();
  const progress = new ListenProgress();
  let safety: ReturnType<typeof setTimeout> | undefined;
  const onSignal = (name: "SIGINT" | "SIGTERM") => {
    if (!stop.signal.aborted) {
      stop.abort(name);
      safety = setTimeout(() => {
        console.error(
          `lvalert_listenMP: the stop did not finish within ${args.stopTimeout + 15} s; ` +
            `exiting; abandoned: ${progress.describe()}`,
        );
        Deno.exit(EXIT.failure);
      }, (args.stopTimeout + 15) * 1000);
      Deno.unrefTimer(safety);
      return;
    }
    console.error(
      `lvalert_listenMP: second ${name}: exiting at once; abandoned: ${progress.describe()}`,
    );
    Deno.exit(FORCED[name]);
  };
  const onInt = () => onSignal("SIGINT");
  const onTerm = () => onSignal("SIGTERM");
  Deno.addSignalListener("SIGINT", onInt);
  Deno.addSignalListener("SIGTERM", onTerm);
  try {
    return exitCode(await run(stop.signal, progress), "lvalert_listenMP", LISTEN_USAGE);
  } finally {
    clearTimeout(safety);
    Deno.removeSignalListener("SIGINT", onInt);
    Deno.removeSignalListener("SIGTERM", onTerm);
  }
}

/** Runs the command line; resolves with the exit code. */
export async function main(argv: string[]): Promise<number> {
  try {
    const [first, ...rest] = argv;
    const tool = first === undefined ? undefined : TOOLS[first];
    if (!tool) return await runListener(argv);
    if (rest.includes("-w") || rest.includes("--version")) {
      console.log(`lvalert_listenMP ${first} (lvalertMP) ${VERSION}`);
      return EXIT.ok;
    }
    if (rest.includes("-b") || rest.some((a) => a.startsWith("--password"))) {
      console.error(
        `lvalert_listenMP ${first}: warning: -b/--password puts the password in argv; use a netrc file`,
      );
    }
    return exitCode(
      await tool.run(rest),
      `lvalert_listenMP ${first}`,
      tool.usage,
    );
  } catch (error) {
    console.error(`lvalert_listenMP: ${(error as Error)?.stack ?? error}`);
    return EXIT.failure;
  }
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
