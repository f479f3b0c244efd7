/**
 * `lvalert_listenMP`: the entry point. Parses argv, picks the subcommand,
 * runs it, and is the only place that decides the exit code.
 *
 * @module
 */

import denoJson from "./deno.json" with { type: "json" };
import { LISTEN_USAGE, parseListenArgs } from "./lib/config/cli.ts";
import { listen } from "./lib/listener/listen.ts";
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

export const VERSION: string = denoJson.version;

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
  return exitCode(await listen(args), "lvalert_listenMP", LISTEN_USAGE);
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
